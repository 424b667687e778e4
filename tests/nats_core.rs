//! Core NATS transport against real nats-server processes (each test runs
//! against every installed server version).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use eventwire::nats::{NatsConfig, NatsTransport};
use eventwire::prelude::*;
use eventwire::{Error, PublishError, PublishOptions, TransportErrorKind};
use support::{eventually, server_binaries, NatsServer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.nats.order-placed", version = 3)]
struct OrderPlaced {
    #[event(key)]
    order_id: String,
    n: u32,
    note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.nats.order-cancelled")]
struct OrderCancelled {
    order_id: String,
}

#[derive(Debug, Clone)]
struct Received {
    handler: &'static str,
    instance: u32,
    event: OrderPlaced,
    id: String,
    source: String,
    topic: String,
    key: Option<String>,
    correlation: Option<String>,
    tenant: Option<String>,
    time: SystemTime,
    attempt: u32,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Received>>>);

impl Log {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy)]
struct Instance(u32);

fn record(handler: &'static str, evt: OrderPlaced, ctx: &Context, log: &Log, me: Instance) {
    log.0.lock().unwrap().push(Received {
        handler,
        instance: me.0,
        event: evt,
        id: ctx.event_id().to_string(),
        source: ctx.source().to_owned(),
        topic: ctx.topic().to_owned(),
        key: ctx.key().map(str::to_owned),
        correlation: ctx.correlation_id().map(str::to_owned),
        tenant: ctx.header("x-tenant").map(str::to_owned),
        time: ctx.occurred_at(),
        attempt: ctx.attempt(),
    });
}

#[handler(group = "billing")]
async fn bill(evt: OrderPlaced, ctx: Context, State(log): State<Log>, State(me): State<Instance>) {
    record("bill", evt, &ctx, &log, me);
}

#[handler(group = "shipping", concurrency = 4)]
async fn ship(evt: OrderPlaced, ctx: Context, State(log): State<Log>, State(me): State<Instance>) {
    record("ship", evt, &ctx, &log, me);
}

#[derive(Clone, Default)]
struct Cancelled(Arc<Mutex<Vec<String>>>);

#[handler(group = "billing")]
async fn refund(evt: OrderCancelled, State(c): State<Cancelled>) {
    c.0.lock().unwrap().push(evt.order_id);
}

#[handler(group = "ledger", ordered, concurrency = 8)]
async fn ledger(
    evt: OrderPlaced,
    ctx: Context,
    State(log): State<Log>,
    State(me): State<Instance>,
) {
    if evt.n % 3 == 0 {
        tokio::task::yield_now().await;
    }
    record("ledger", evt, &ctx, &log, me);
}

async fn app(server: &NatsServer, names: &[&str], log: &Log, instance: u32) -> App {
    App::builder()
        .service("orders")
        .transport_url(&server.url("nats"))
        .unwrap()
        .handlers(HandlerSelection::names(names.iter().copied()))
        .state(log.clone())
        .state(Instance(instance))
        .state(Cancelled::default())
        .build()
        .await
        .unwrap_or_else(|e| panic!("build on {}: {e}", server.binary.version))
}

fn order(n: u32) -> OrderPlaced {
    OrderPlaced {
        order_id: format!("o-{}", n % 10),
        n,
        note: format!("ünïcødé {n} \"quoted\""),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_arrive_with_exact_payload_and_metadata() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let log = Log::default();
        let consumer = app(&server, &["bill"], &log, 0).await;
        let producer = app(&server, &["refund"], &Log::default(), 9).await;
        let publisher = producer.publisher();
        let before = SystemTime::now();
        let mut ids = HashMap::new();
        for n in 0..1000 {
            let opts = PublishOptions::new().header("x-tenant", format!("t{}", n % 3));
            let id = publisher.publish_with(&order(n), opts).await.unwrap();
            ids.insert(n, id.to_string());
        }
        eventually(Duration::from_secs(20), "1000 events", || log.len() == 1000).await;
        for r in log.all() {
            assert_eq!(r.event, order(r.event.n), "payload of {}", r.event.n);
            assert_eq!(r.id, ids[&r.event.n]);
            assert_eq!(r.source, "orders");
            assert_eq!(r.topic, "test.nats.order-placed");
            assert_eq!(
                r.key.as_deref(),
                Some(format!("o-{}", r.event.n % 10).as_str())
            );
            assert_eq!(r.correlation.as_deref(), Some(r.id.as_str()));
            assert_eq!(
                r.tenant.as_deref(),
                Some(format!("t{}", r.event.n % 3).as_str())
            );
            assert_eq!(r.attempt, 1);
            assert!(r.time >= before - Duration::from_secs(1) && r.time <= SystemTime::now());
        }
        consumer.shutdown().await.unwrap();
        producer.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_gets_every_event_and_instances_share_the_work() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let log = Log::default();
        let billing = app(&server, &["bill"], &log, 0).await;
        let mut shipping = Vec::new();
        for i in 1..=3 {
            shipping.push(app(&server, &["ship"], &log, i).await);
        }
        let publisher = billing.publisher();
        for n in 0..1000 {
            publisher.publish(&order(n)).await.unwrap();
        }
        eventually(Duration::from_secs(20), "2000 deliveries", || {
            log.len() == 2000
        })
        .await;
        let all = log.all();
        for handler in ["bill", "ship"] {
            let got: Vec<u32> = all
                .iter()
                .filter(|r| r.handler == handler)
                .map(|r| r.event.n)
                .collect();
            let distinct: HashSet<u32> = got.iter().copied().collect();
            assert_eq!(got.len(), 1000, "{handler} on {}", binary.version);
            assert_eq!(distinct.len(), 1000, "{handler}: each event once");
        }
        let instances: HashSet<u32> = all
            .iter()
            .filter(|r| r.handler == "ship")
            .map(|r| r.instance)
            .collect();
        assert_eq!(
            instances,
            HashSet::from([1, 2, 3]),
            "the queue group spread the work"
        );
        // Nothing more arrives later (no duplicates in flight).
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(log.len(), 2000);
        billing.shutdown().await.unwrap();
        for a in shipping {
            a.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_do_not_leak_and_per_key_order_holds() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let log = Log::default();
        let cancelled = Cancelled::default();
        let app = App::builder()
            .service("orders")
            .transport_url(&server.url("nats"))
            .unwrap()
            .handlers(HandlerSelection::names(["ledger", "refund"]))
            .state(log.clone())
            .state(Instance(0))
            .state(cancelled.clone())
            .build()
            .await
            .unwrap();
        let publisher = app.publisher();
        for n in 0..500 {
            publisher.publish(&order(n)).await.unwrap();
            if n % 50 == 0 {
                publisher
                    .publish(&OrderCancelled {
                        order_id: format!("c-{n}"),
                    })
                    .await
                    .unwrap();
            }
        }
        eventually(Duration::from_secs(20), "500 ledger entries", || {
            log.len() == 500
        })
        .await;
        eventually(Duration::from_secs(5), "10 refunds", || {
            cancelled.0.lock().unwrap().len() == 10
        })
        .await;
        let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
        for r in log.all() {
            assert_eq!(r.handler, "ledger", "only OrderPlaced reaches the ledger");
            by_key
                .entry(r.event.order_id.clone())
                .or_default()
                .push(r.event.n);
        }
        for (key, ns) in by_key {
            let mut sorted = ns.clone();
            sorted.sort_unstable();
            assert_eq!(ns, sorted, "order of key {key} on {}", binary.version);
        }
        assert!(cancelled
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|id| id.starts_with("c-")));
        app.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_typed_errors_and_the_connection_stays_usable() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let log = Log::default();
        let consumer = app(&server, &["bill"], &log, 0).await;
        let transport =
            NatsTransport::connect(NatsConfig::new([format!("127.0.0.1:{}", server.port)]))
                .await
                .unwrap();
        let max = transport.client().server_info().max_payload;
        let producer = App::builder()
            .service("orders")
            .transport(transport.clone())
            .handlers(HandlerSelection::names(["refund"]))
            .state(Cancelled::default())
            .build()
            .await
            .unwrap();
        let publisher = producer.publisher();

        // Oversized payload.
        let mut big = order(1);
        big.note = "x".repeat(max + 1);
        match publisher.publish(&big).await {
            Err(PublishError::PayloadTooLarge { topic, size, limit }) => {
                assert_eq!(topic, "test.nats.order-placed");
                assert_eq!(limit, max);
                assert!(size > max);
            }
            other => panic!("expected PayloadTooLarge, got {other:?}"),
        }

        // A header value with CR/LF would split the header block.
        let err = publisher
            .publish_with(
                &order(2),
                PublishOptions::new().header("x-note", "a\r\nInjected: 1"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::Header { .. }), "{err:?}");

        // Invalid topics of forwarded envelopes.
        for bad in [
            "orders.*",
            "orders..created",
            "orders created",
            "$sys.x",
            "",
        ] {
            let mut env = publisher
                .envelope(&order(3), PublishOptions::new())
                .unwrap();
            env.topic = bad.to_owned().into();
            let err = publisher.publish_envelope(env).await.unwrap_err();
            assert!(matches!(err, PublishError::Topic(_)), "{bad:?}: {err:?}");
        }

        // Invalid subject prefixes are configuration errors.
        for bad in ["a.*", "a..b", "a b", ">", "$js"] {
            let url = format!("{}?prefix={}", server.url("nats"), bad.replace(' ', "%20"));
            match App::builder().transport_url(&url) {
                Err(Error::Url(e)) => {
                    assert!(e.to_string().contains("subject prefix"), "{e}")
                }
                other => panic!("{bad:?}: expected a URL error, got {other:?}"),
            }
        }
        let err = NatsTransport::connect(NatsConfig::new(["127.0.0.1:1"]).subject_prefix("a.>"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Config, "{err:?}");

        // Still usable: a normal event goes through.
        publisher.publish(&order(4)).await.unwrap();
        eventually(Duration::from_secs(10), "the valid event", || {
            log.len() == 1
        })
        .await;
        assert_eq!(log.all()[0].event, order(4));
        assert_eq!(transport.stats().failed_publishes, 0);
        consumer.shutdown().await.unwrap();
        producer.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_missing_server_is_a_clear_error() {
    let port = support::free_port();
    let err = App::builder()
        .transport_url(&format!("nats://127.0.0.1:{port}"))
        .unwrap()
        .handlers(HandlerSelection::names(["refund"]))
        .state(Cancelled::default())
        .build()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "cannot connect to NATS at nats://127.0.0.1:{port}"
        )),
        "{text}"
    );
}

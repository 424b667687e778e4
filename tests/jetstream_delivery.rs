//! JetStream transport against real nats-server processes (every installed
//! version): at-least-once delivery, groups, order, retries, dead letters,
//! ack wait, de-duplication.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::nats::async_nats;
use eventwire::prelude::*;
use eventwire::PublishOptions;
use futures_util::StreamExt;
use support::{eventually, server_binaries, NatsServer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.js.payment", version = 2)]
struct Payment {
    #[event(key)]
    account: String,
    n: u32,
    fail_times: u32,
    poison: bool,
}

fn payment(n: u32) -> Payment {
    Payment {
        account: format!("acct-{}", n % 7),
        n,
        fail_times: 0,
        poison: false,
    }
}

#[derive(Debug, Clone)]
struct Seen {
    handler: &'static str,
    instance: u32,
    n: u32,
    id: String,
    attempt: u32,
    key: Option<String>,
    source: String,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn push(&self, handler: &'static str, me: u32, evt: &Payment, ctx: &Context) {
        self.0.lock().unwrap().push(Seen {
            handler,
            instance: me,
            n: evt.n,
            id: ctx.event_id().to_string(),
            attempt: ctx.attempt(),
            key: ctx.key().map(str::to_owned),
            source: ctx.source().to_owned(),
        });
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy)]
struct Me(u32);

/// Side effects, counted per event number.
#[derive(Clone, Default)]
struct Effects(Arc<Mutex<HashMap<u32, u32>>>);

impl Effects {
    fn apply(&self, n: u32) {
        *self.0.lock().unwrap().entry(n).or_default() += 1;
    }
    fn get(&self) -> HashMap<u32, u32> {
        self.0.lock().unwrap().clone()
    }
}

#[handler(
    group = "settle",
    concurrency = 16,
    retries = 4,
    backoff = "20ms..100ms"
)]
async fn settle(
    evt: Payment,
    ctx: Context,
    State(log): State<Log>,
    State(me): State<Me>,
    State(fx): State<Effects>,
) -> Result<(), HandlerError> {
    log.push("settle", me.0, &evt, &ctx);
    if evt.poison {
        return Err(HandlerError::msg(format!(
            "cannot settle payment {}",
            evt.n
        )));
    }
    if ctx.attempt() <= evt.fail_times {
        return Err(HandlerError::msg("ledger unavailable"));
    }
    fx.apply(evt.n);
    Ok(())
}

#[handler(group = "audit", concurrency = 8)]
async fn audit(evt: Payment, ctx: Context, State(log): State<Log>, State(me): State<Me>) {
    log.push("audit", me.0, &evt, &ctx);
}

#[handler(group = "statements", ordered, concurrency = 8)]
async fn statement(evt: Payment, ctx: Context, State(log): State<Log>, State(me): State<Me>) {
    if evt.n % 5 == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    log.push("statement", me.0, &evt, &ctx);
}

#[handler(group = "slow", timeout = "10s")]
async fn slow_settle(evt: Payment, ctx: Context, State(log): State<Log>, State(me): State<Me>) {
    log.push("slow_settle", me.0, &evt, &ctx);
    // Three times the ack wait of the test stream.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
}

async fn try_app(
    url: &str,
    names: &[&str],
    log: &Log,
    me: u32,
    fx: &Effects,
) -> Result<App, eventwire::Error> {
    App::builder()
        .service("payments")
        .transport_url(url)?
        .handlers(HandlerSelection::names(names.iter().copied()))
        .state(log.clone())
        .state(Me(me))
        .state(fx.clone())
        .build()
        .await
}

async fn app(url: &str, names: &[&str], log: &Log, me: u32, fx: &Effects) -> App {
    try_app(url, names, log, me, fx)
        .await
        .unwrap_or_else(|e| panic!("build: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_instances_and_exact_delivery() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let url = server.url("jetstream");
        let (log, fx) = (Log::default(), Effects::default());
        let audit_app = app(&url, &["audit"], &log, 0, &fx).await;
        let mut settlers = Vec::new();
        for i in 1..=3 {
            settlers.push(app(&url, &["settle"], &log, i, &fx).await);
        }
        let publisher = audit_app.publisher();
        let events: Vec<Payment> = (0..1000).map(payment).collect();
        let ids: Vec<String> = publisher
            .publish_batch(&events)
            .await
            .into_iter()
            .map(|r| r.unwrap().to_string())
            .collect();
        eventually(Duration::from_secs(30), "2000 deliveries", || {
            log.len() >= 2000
        })
        .await;
        let all = log.all();
        for handler in ["audit", "settle"] {
            let got: Vec<&Seen> = all.iter().filter(|s| s.handler == handler).collect();
            let distinct: HashSet<u32> = got.iter().map(|s| s.n).collect();
            assert_eq!(got.len(), 1000, "{handler} on {}", binary.version);
            assert_eq!(distinct.len(), 1000);
            for s in got {
                assert_eq!(s.id, ids[s.n as usize], "ce-id travels unchanged");
                assert_eq!(s.key.as_deref(), Some(format!("acct-{}", s.n % 7).as_str()));
                assert_eq!(s.source, "payments");
                assert_eq!(s.attempt, 1);
            }
        }
        let instances: HashSet<u32> = all
            .iter()
            .filter(|s| s.handler == "settle")
            .map(|s| s.instance)
            .collect();
        assert_eq!(
            instances,
            HashSet::from([1, 2, 3]),
            "the durable consumer is shared by the instances"
        );
        assert!(fx.get().values().all(|&c| c == 1));

        // Nats-Msg-Id = ce-id: the same envelope published again is stored once.
        let env = publisher
            .envelope(&payment(5000), PublishOptions::new())
            .unwrap();
        publisher.publish_envelope(env.clone()).await.unwrap();
        publisher.publish_envelope(env.clone()).await.unwrap();
        eventually(Duration::from_secs(10), "the re-published event", || {
            log.all().iter().filter(|s| s.n == 5000).count() == 2
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            log.all().iter().filter(|s| s.n == 5000).count(),
            2,
            "one per group, not two"
        );

        audit_app.shutdown().await.unwrap();
        for a in settlers {
            a.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_under_concurrency() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let (log, fx) = (Log::default(), Effects::default());
        let a = app(&server.url("jetstream"), &["statement"], &log, 0, &fx).await;
        let events: Vec<Payment> = (0..700).map(payment).collect();
        for r in a.publisher().publish_batch(&events).await {
            r.unwrap();
        }
        eventually(Duration::from_secs(30), "700 statements", || {
            log.len() == 700
        })
        .await;
        let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
        for s in log.all() {
            by_key.entry(s.key.unwrap()).or_default().push(s.n);
        }
        assert_eq!(by_key.len(), 7);
        for (k, ns) in by_key {
            let mut sorted = ns.clone();
            sorted.sort_unstable();
            assert_eq!(ns, sorted, "order of {k} on {}", binary.version);
        }
        a.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_then_success_and_poison_to_dead_letters() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let (log, fx) = (Log::default(), Effects::default());
        let a = app(&server.url("jetstream"), &["settle"], &log, 0, &fx).await;
        let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
            .await
            .unwrap();
        let mut dlq = raw.subscribe("eventwire.dlq.>").await.unwrap();
        raw.flush().await.unwrap();
        let publisher = a.publisher();

        // Fails 3 times, then succeeds: 4 deliveries, 1 side effect.
        let flaky = Payment {
            fail_times: 3,
            ..payment(1)
        };
        publisher.publish(&flaky).await.unwrap();
        eventually(Duration::from_secs(20), "4 deliveries", || {
            fx.get().get(&1) == Some(&1)
        })
        .await;
        let attempts: Vec<u32> = log
            .all()
            .iter()
            .filter(|s| s.n == 1)
            .map(|s| s.attempt)
            .collect();
        assert_eq!(attempts, [1, 2, 3, 4], "on {}", binary.version);

        // A poison event: retries = 4, so exactly 5 attempts, then a dead letter.
        let poison = Payment {
            poison: true,
            ..payment(2)
        };
        let poison_id = publisher.publish(&poison).await.unwrap();
        let events: Vec<Payment> = (100..1100).map(payment).collect();
        for r in publisher.publish_batch(&events).await {
            r.unwrap();
        }
        let letter = tokio::time::timeout(Duration::from_secs(30), dlq.next())
            .await
            .expect("a dead letter")
            .unwrap();
        assert_eq!(letter.subject.as_str(), "eventwire.dlq.test.js.payment");
        let h = letter.headers.clone().unwrap();
        let get = |name: &str| h.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(get("ce-id").as_deref(), Some(poison_id.as_str()));
        assert_eq!(get("ce-type").as_deref(), Some("test.js.payment"));
        assert_eq!(get("ce-schemaversion").as_deref(), Some("2"));
        assert_eq!(
            get("eventwire-dlq-error").as_deref(),
            Some("cannot settle payment 2")
        );
        assert_eq!(
            get("eventwire-dlq-error-kind").as_deref(),
            Some("retryable")
        );
        assert_eq!(get("eventwire-dlq-handler").as_deref(), Some("settle"));
        assert_eq!(get("eventwire-dlq-group").as_deref(), Some("settle"));
        assert_eq!(get("eventwire-dlq-attempts").as_deref(), Some("5"));
        assert!(
            get("eventwire-dlq-stream-sequence")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 0
        );
        assert!(get("eventwire-dlq-failed-at").is_some());
        let original: Payment = serde_json::from_slice(&letter.payload).unwrap();
        assert_eq!(original, poison);
        let poison_attempts = log.all().iter().filter(|s| s.n == 2).count();
        assert_eq!(poison_attempts, 5);

        eventually(Duration::from_secs(30), "the 1000 others", || {
            let fx = fx.get();
            (100..1100).all(|n| fx.get(&n) == Some(&1))
        })
        .await;
        // The dead letter is stored in its own stream.
        let js = async_nats::jetstream::new(raw.clone());
        let mut dlq_stream = js.get_stream("EVENTWIRE_DLQ").await.unwrap();
        assert_eq!(dlq_stream.info().await.unwrap().state.messages, 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            log.all().iter().filter(|s| s.n == 2).count(),
            5,
            "terminated: never redelivered"
        );
        a.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_longer_than_ack_wait_is_not_redelivered() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let (log, fx) = (Log::default(), Effects::default());
        let url = format!("{}?ack_wait=1s", server.url("jetstream"));
        let a = app(&url, &["slow_settle"], &log, 0, &fx).await;
        a.publisher().publish(&payment(1)).await.unwrap();
        eventually(Duration::from_secs(10), "the slow handler started", || {
            log.len() == 1
        })
        .await;
        // Well past three ack waits: progress signals kept the message ours.
        tokio::time::sleep(Duration::from_millis(4_000)).await;
        assert_eq!(
            log.len(),
            1,
            "redelivered while running on {}",
            binary.version
        );
        assert_eq!(a.metrics().handlers["slow_settle"].succeeded, 1);
        a.shutdown().await.unwrap();
    }
}

static IN_FLIGHT_DONE: AtomicU32 = AtomicU32::new(0);

#[handler(group = "drain", concurrency = 20, timeout = "none")]
async fn drain_me(evt: Payment, ctx: Context, State(log): State<Log>, State(me): State<Me>) {
    log.push("drain_me", me.0, &evt, &ctx);
    tokio::time::sleep(Duration::from_millis(200)).await;
    IN_FLIGHT_DONE.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_or_returns_every_event() {
    for binary in server_binaries() {
        IN_FLIGHT_DONE.store(0, Ordering::SeqCst);
        let server = NatsServer::start(&binary);
        let url = server.url("jetstream");
        let (log, fx) = (Log::default(), Effects::default());
        let first = app(&url, &["drain_me"], &log, 1, &fx).await;
        let events: Vec<Payment> = (0..200).map(payment).collect();
        for r in first.publisher().publish_batch(&events).await {
            r.unwrap();
        }
        eventually(Duration::from_secs(10), "20 in flight", || log.len() >= 20).await;
        let report = first.shutdown().await.unwrap();
        assert_eq!(report.aborted, 0);
        let finished_by_first = IN_FLIGHT_DONE.load(Ordering::SeqCst);
        let started_by_first = log.len() as u32;
        assert_eq!(
            finished_by_first, started_by_first,
            "every started handler finished"
        );

        // A new instance gets everything the first did not finish.
        let second = app(&url, &["drain_me"], &log, 2, &fx).await;
        eventually(Duration::from_secs(30), "all 200 handled", || {
            log.all().iter().map(|s| s.n).collect::<HashSet<_>>().len() == 200
        })
        .await;
        second.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_mode_refuses_a_stream_that_does_not_cover_the_topics() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let (log, fx) = (Log::default(), Effects::default());
        // No stream yet: verify refuses to create one.
        let url = format!("{}?provision=verify", server.url("jetstream"));
        let err = try_app(&url, &["audit"], &log, 0, &fx)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("stream `EVENTWIRE` does not exist"), "{err}");

        // A stream made by hand that lacks the topic: the error names it.
        let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
            .await
            .unwrap();
        let js = async_nats::jetstream::new(raw);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "EVENTWIRE".into(),
            subjects: vec!["other.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let err = try_app(&url, &["audit"], &log, 0, &fx)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not cover test.js.payment"), "{err}");

        // Create mode adds the missing subjects to the existing stream.
        let a = app(&server.url("jetstream"), &["audit"], &log, 0, &fx).await;
        let mut stream = js.get_stream("EVENTWIRE").await.unwrap();
        let subjects = stream.info().await.unwrap().config.subjects.clone();
        assert!(subjects.contains(&"other.>".to_owned()), "{subjects:?}");
        assert!(
            subjects.contains(&"test.js.payment".to_owned()),
            "{subjects:?}"
        );
        a.publisher().publish(&payment(1)).await.unwrap();
        eventually(Duration::from_secs(10), "the event", || log.len() == 1).await;
        a.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_consumer_is_recreated() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        let (log, fx) = (Log::default(), Effects::default());
        let a = app(&server.url("jetstream"), &["audit"], &log, 0, &fx).await;
        a.publisher().publish(&payment(1)).await.unwrap();
        eventually(Duration::from_secs(10), "the first event", || {
            log.len() == 1
        })
        .await;

        let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
            .await
            .unwrap();
        let js = async_nats::jetstream::new(raw);
        js.get_stream("EVENTWIRE")
            .await
            .unwrap()
            .delete_consumer("audit__audit")
            .await
            .unwrap();
        // The pull notices (heartbeats stop, or the server says so) and the
        // consumer comes back; events published after that are delivered.
        let publisher = a.publisher();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut n = 2;
        while log.len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "consumer not recreated on {}",
                binary.version
            );
            let stream = js.get_stream("EVENTWIRE").await.unwrap();
            if stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>("audit__audit")
                .await
                .is_ok()
            {
                publisher.publish(&payment(n)).await.unwrap();
                n += 1;
                eventually(Duration::from_secs(10), "an event after recreation", || {
                    log.len() >= 2
                })
                .await;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        a.shutdown().await.unwrap();
    }
}

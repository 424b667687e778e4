//! JetStream under failure: a consuming app restarted mid-stream, and a
//! nats-server killed with SIGKILL and restarted on the same store. Nothing
//! that was accepted is lost, and side effects stay unique.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::nats::{async_nats, JetStreamTransport, NatsConfig};
use eventwire::prelude::*;
use eventwire::{InMemoryIdempotency, PublishOptions};
use support::{eventually, server_binaries, NatsServer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.recovery.transfer")]
struct Transfer {
    n: u32,
}

/// Side effects by event number, and every delivery seen.
#[derive(Clone, Default)]
struct Ledger {
    applied: Arc<Mutex<HashMap<u32, u32>>>,
    deliveries: Arc<Mutex<u64>>,
}

impl Ledger {
    fn applied(&self) -> HashMap<u32, u32> {
        self.applied.lock().unwrap().clone()
    }
}

#[handler(group = "ledger", concurrency = 32, timeout = "none")]
async fn apply_transfer(evt: Transfer, State(ledger): State<Ledger>) {
    *ledger.deliveries.lock().unwrap() += 1;
    // The handler's work: long enough to be cut off mid-event.
    tokio::time::sleep(Duration::from_millis(1)).await;
    *ledger.applied.lock().unwrap().entry(evt.n).or_default() += 1;
}

async fn consumer(
    url: &str,
    ledger: &Ledger,
    guard: &InMemoryIdempotency,
    shutdown: Duration,
) -> App {
    App::builder()
        .service("bank")
        .transport_url(url)
        .unwrap()
        .handlers(HandlerSelection::names(["apply_transfer"]))
        .state(ledger.clone())
        .idempotency(guard.clone())
        .shutdown_timeout(shutdown)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_consumer_mid_stream_loses_nothing_and_repeats_nothing() {
    for binary in server_binaries() {
        let server = NatsServer::start(&binary);
        // A short ack wait: events fetched by the stopped instance but never
        // handed to a handler come back after it.
        let url = format!("{}?ack_wait=2s", server.url("jetstream"));
        let ledger = Ledger::default();
        // Stands for a durable store shared by the instances (a database table).
        let guard = InMemoryIdempotency::new(1_000_000);
        let first = consumer(&url, &ledger, &guard, Duration::from_millis(20)).await;
        let publisher = first.publisher();
        let events: Vec<Transfer> = (0..3000).map(|n| Transfer { n }).collect();
        let mut ids = Vec::new();
        for r in publisher.publish_batch(&events).await {
            ids.push(r.unwrap());
        }
        eventually(Duration::from_secs(30), "a third handled", || {
            ledger.applied().len() >= 1000
        })
        .await;
        // Stop mid-stream with handlers running: they are cut off at the
        // deadline and their events go back to the server.
        let report = first.shutdown().await.unwrap();
        let handled_before = ledger.applied().len();
        assert!(handled_before < 3000, "the restart happened mid-stream");

        // Duplicates the server cannot catch: the same ce-id under another
        // Nats-Msg-Id (a producer that retried after the duplicate window).
        let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
            .await
            .unwrap();
        let js = async_nats::jetstream::new(raw);
        let sample = App::builder()
            .service("bank")
            .handlers(HandlerSelection::names(Vec::<String>::new()))
            .build()
            .await
            .unwrap();
        for n in [1u32, 2, 3, 10, 999] {
            let env = sample
                .publisher()
                .envelope(
                    &Transfer { n },
                    PublishOptions::new().id(ids[n as usize].clone()),
                )
                .unwrap();
            let mut headers = async_nats::HeaderMap::new();
            for (k, v) in env.to_headers() {
                headers.insert(k, v.as_str());
            }
            headers.insert("Nats-Msg-Id", format!("replay-{n}").as_str());
            js.publish_with_headers("test.recovery.transfer", headers, env.payload.clone())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        sample.shutdown().await.unwrap();

        let second = consumer(&url, &ledger, &guard, Duration::from_secs(10)).await;
        eventually(Duration::from_secs(60), "every transfer applied", || {
            ledger.applied().len() == 3000
        })
        .await;
        eventually(
            Duration::from_secs(10),
            "the injected duplicates seen",
            || second.metrics().handlers["apply_transfer"].duplicates >= 5,
        )
        .await;
        let applied = ledger.applied();
        let repeated: Vec<_> = applied.iter().filter(|(_, c)| **c != 1).collect();
        assert!(
            repeated.is_empty(),
            "side effects repeated on {}: {repeated:?} (aborted {})",
            binary.version,
            report.aborted
        );
        second.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_loses_no_acknowledged_event() {
    const EVENTS: u32 = 20_000;
    for binary in server_binaries() {
        let mut server = NatsServer::start(&binary);
        let port = server.port;
        let config = NatsConfig::new([format!("127.0.0.1:{port}")]);
        let transport = JetStreamTransport::connect(config.clone()).await.unwrap();
        let ledger = Ledger::default();
        let guard = InMemoryIdempotency::new(1_000_000);
        let app = App::builder()
            .service("bank")
            .transport(transport.clone())
            .handlers(HandlerSelection::names(["apply_transfer"]))
            .state(ledger.clone())
            .idempotency(guard.clone())
            .build()
            .await
            .unwrap();
        let publisher = app.publisher();

        let accepted: Arc<Mutex<HashSet<u32>>> = Arc::default();
        let producer = {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let mut failed = 0u32;
                for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(500) {
                    let events: Vec<Transfer> = chunk.iter().map(|&n| Transfer { n }).collect();
                    let results = publisher.publish_batch(&events).await;
                    for (evt, r) in events.iter().zip(results) {
                        match r {
                            Ok(_) => {
                                accepted.lock().unwrap().insert(evt.n);
                            }
                            Err(_) => failed += 1,
                        }
                    }
                }
                failed
            })
        };
        eventually(Duration::from_secs(60), "5000 accepted", || {
            accepted.lock().unwrap().len() >= 5000
        })
        .await;
        let pid = server.pid();
        server.kill(); // SIGKILL, by PID
                       // Down until the client has noticed: publishes meet a dead server.
        eventually(
            Duration::from_secs(30),
            "the client to see the outage",
            || transport.stats().disconnects >= 1,
        )
        .await;
        server.restart();
        assert_ne!(server.pid(), pid);
        let failed = tokio::time::timeout(Duration::from_secs(120), producer)
            .await
            .expect("the producer finished")
            .unwrap();
        let accepted = accepted.lock().unwrap().clone();
        assert_eq!(accepted.len() as u32 + failed, EVENTS);
        eventually(
            Duration::from_secs(120),
            "every accepted event handled",
            || {
                let applied = ledger.applied();
                accepted.iter().all(|n| applied.contains_key(n))
            },
        )
        .await;
        let applied = ledger.applied();
        let repeated: Vec<_> = applied.iter().filter(|(_, c)| **c != 1).collect();
        assert!(repeated.is_empty(), "side effects repeated: {repeated:?}");
        let stats = transport.stats();
        assert!(stats.disconnects >= 1 && stats.reconnects >= 1, "{stats:?}");
        eprintln!(
            "{}: {} accepted, {failed} rejected while the server was down, {} deliveries, {stats:?}",
            binary.version,
            accepted.len(),
            *ledger.deliveries.lock().unwrap()
        );
        app.shutdown().await.unwrap();
        transport_close(&transport).await;
    }
}

async fn transport_close(t: &JetStreamTransport) {
    use eventwire::Transport;
    t.close().await.unwrap();
}

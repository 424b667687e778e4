//! What is specific to JetStream, against real nats-server processes (the
//! oldest and the newest installed): progress signals while a handler runs
//! past the ack wait, stream provisioning and verification, a deleted
//! consumer recreated. The delivery guarantees of JetStream (groups, order,
//! retries, dead letters, de-duplication, shutdown, ...) are proven by the
//! guarantee suite (`conformance/`, run by `tests/conformance.rs`).
//!
//! The tests share one nats-server per version and keep apart by a subject
//! prefix of their own, which also names their stream.

#[macro_use]
mod support;

use std::time::Duration;

use eventwire::nats::{async_nats, NatsConfig};
use eventwire::prelude::*;
use support::{
    eventually, eventually_async, server_binary, shared_server, unique_prefix, Arrival, Instance,
    Recorder, ServerSlot, SharedServer,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.js.payment", version = 2)]
struct Payment {
    #[event(key)]
    account: String,
    n: u32,
}

fn payment(n: u32) -> Payment {
    Payment {
        account: format!("acct-{}", n % 7),
        n,
    }
}

#[handler(group = "audit", concurrency = 8)]
async fn audit(
    evt: Payment,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Event {
        rec.applied(&ctx, evt.n);
    }
}

/// Three times the ack wait the test gives its consumer.
const SLOW: Duration = Duration::from_millis(3_000);

#[handler(group = "slow", timeout = "10s")]
async fn slow_settle(
    evt: Payment,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.arrived(&ctx, me, evt.n);
    // The handler's own work: it takes longer than the ack wait.
    tokio::time::sleep(SLOW).await;
    rec.applied(&ctx, evt.n);
}

async fn try_app(url: &str, names: &[&str], rec: &Recorder) -> Result<App, eventwire::Error> {
    App::builder()
        .service("payments")
        .transport_url(url)?
        .handlers(HandlerSelection::names(names.iter().copied()))
        .state(rec.clone())
        .state(Instance(0))
        .build()
        .await
}

async fn app(url: &str, names: &[&str], rec: &Recorder) -> App {
    try_app(url, names, rec)
        .await
        .unwrap_or_else(|e| panic!("build: {e}"))
}

/// `jetstream://…?prefix=<unique>` on the shared server, and that prefix.
fn test_url(server: &SharedServer) -> (String, String) {
    let prefix = unique_prefix();
    (
        format!("{}?prefix={prefix}", server.url("jetstream")),
        prefix,
    )
}

async fn js(server: &SharedServer) -> async_nats::jetstream::Context {
    let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    async_nats::jetstream::new(raw)
}

// One test per server version: `<name>::oldest`, `<name>::newest` (skipped
// by name when only one nats-server is installed).

on_each_server!(
    a_handler_running_past_the_ack_wait_is_not_redelivered,
    verify_mode_refuses_a_stream_that_does_not_cover_the_topics,
    a_deleted_consumer_is_recreated,
);

/// A handler that runs three times the ack wait keeps its message with
/// progress signals: the server delivers it once.
async fn a_handler_running_past_the_ack_wait_is_not_redelivered(server: SharedServer) {
    let rec = Recorder::default();
    let (url, _) = test_url(&server);
    let url = format!("{url}&ack_wait=1s");
    let a = app(&url, &["slow_settle"], &rec).await;
    a.publisher().publish(&payment(1)).await.unwrap();
    eventually(Duration::from_secs(30), "the slow handler done", || {
        a.metrics().handlers["slow_settle"].succeeded == 1
    })
    .await;
    // The server's own count of deliveries: a redelivery while the handler
    // ran would have raised the consumer sequence past 1.
    let js = js(&server).await;
    let stream = js
        .get_stream(NatsConfig::from_url(&url).unwrap().stream_name())
        .await
        .unwrap();
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("slow__slow_settle")
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(
        info.delivered.consumer_sequence, 1,
        "redelivered while running on {}: {info:?}",
        server.binary.version
    );
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(rec.count("slow_settle"), 1);
    assert_eq!(a.metrics().handlers["slow_settle"].duplicates, 0);
    a.shutdown().await.unwrap();
}

/// `provision=verify` refuses a missing stream and a stream that lacks a
/// topic, naming it; `provision=create` adds the missing topic to the
/// existing stream and keeps what it had.
async fn verify_mode_refuses_a_stream_that_does_not_cover_the_topics(server: SharedServer) {
    let rec = Recorder::default();
    let (url, prefix) = test_url(&server);
    let stream_name = NatsConfig::from_url(&url).unwrap().stream_name();
    let verify = format!("{url}&provision=verify");
    // No stream yet: verify refuses to create one.
    let err = try_app(&verify, &["audit"], &rec)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("stream `{stream_name}` does not exist")),
        "{err}"
    );

    // A stream made by hand that lacks the topic: the error names it.
    let js = js(&server).await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream_name.clone(),
        subjects: vec![format!("{prefix}.other.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let err = try_app(&verify, &["audit"], &rec)
        .await
        .unwrap_err()
        .to_string();
    // The list names every topic the binary's handlers declare (the
    // conformance suite's too, as it is linked in): ours must be among them.
    assert!(
        err.contains("does not cover") && err.contains(&format!("{prefix}.test.js.payment")),
        "{err}"
    );

    // Create mode adds the missing subjects to the existing stream.
    let a = app(&url, &["audit"], &rec).await;
    let mut stream = js.get_stream(&stream_name).await.unwrap();
    let subjects = stream.info().await.unwrap().config.subjects.clone();
    assert!(
        subjects.contains(&format!("{prefix}.other.>")),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&format!("{prefix}.test.js.payment")),
        "{subjects:?}"
    );
    a.publisher().publish(&payment(1)).await.unwrap();
    eventually(Duration::from_secs(10), "the event", || {
        rec.count("audit") == 1
    })
    .await;
    a.shutdown().await.unwrap();
}

/// A consumer deleted on the server while the app runs comes back by
/// itself; events published after that are delivered.
async fn a_deleted_consumer_is_recreated(server: SharedServer) {
    let rec = Recorder::default();
    let (url, _) = test_url(&server);
    let stream_name = NatsConfig::from_url(&url).unwrap().stream_name();
    let a = app(&url, &["audit"], &rec).await;
    a.publisher().publish(&payment(1)).await.unwrap();
    eventually(Duration::from_secs(10), "the first event", || {
        rec.count("audit") == 1
    })
    .await;

    let js = js(&server).await;
    // nats-server 2.9 sometimes fails a delete racing the consumer's own
    // state write ("unlinkat ... directory not empty", error 10051); the
    // consumer is then still there: delete again.
    let mut tries = 0;
    loop {
        tries += 1;
        match js
            .get_stream(&stream_name)
            .await
            .unwrap()
            .delete_consumer("audit__audit")
            .await
        {
            Ok(_) => break,
            Err(e) if tries < 5 => {
                eprintln!("delete_consumer failed ({e}); trying again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("delete_consumer failed {tries} times: {e}"),
        }
    }
    // The pull notices (heartbeats stop, or the server says so) and the
    // consumer comes back; it starts with new events, so publish after.
    eventually_async(
        Duration::from_secs(30),
        "the consumer recreated",
        || async {
            let Ok(stream) = js.get_stream(&stream_name).await else {
                return false;
            };
            stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>("audit__audit")
                .await
                .is_ok()
        },
    )
    .await;
    a.publisher().publish(&payment(2)).await.unwrap();
    eventually(Duration::from_secs(30), "an event after recreation", || {
        rec.has_applied("audit", 2)
    })
    .await;
    a.shutdown().await.unwrap();
}

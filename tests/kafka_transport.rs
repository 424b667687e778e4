//! The Kafka transport against a real Kafka-compatible broker (tansu,
//! shared by this file's tests; each keeps to a topic prefix of its own):
//! what the conformance suite does not cover. The wire format read and
//! written by a Python service through the CloudEvents SDK's Kafka binding;
//! offsets that never pass an unfinished event; records that are not
//! envelopes; provisioning; typed errors for bad URLs and absent brokers.
//! `scripts/test` installs tansu, kafka-python and cloudevents into `.tools/`.

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::kafka::rdkafka::config::ClientConfig;
use eventwire::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use eventwire::kafka::rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use eventwire::kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use eventwire::kafka::rdkafka::{Offset, TopicPartitionList};
use eventwire::kafka::{KafkaConfig, KafkaTransport};
use eventwire::prelude::*;
use eventwire::{PublishOptions, TransportErrorKind};
use support::{eventually, free_port, shared_kafka, unique_prefix};
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.kafka.order-shipped", version = 2)]
struct OrderShipped {
    #[event(key)]
    order_id: String,
    items: Vec<String>,
    total_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.kafka.invoice", version = 3)]
struct InvoiceIssued {
    #[event(key)]
    invoice_id: String,
    amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.kafka.step")]
struct Step {
    #[event(key)]
    key: String,
    n: u32,
}

/// What a handler saw of one event.
#[derive(Debug, Clone)]
struct Got {
    event: OrderShipped,
    source: String,
    key: Option<String>,
    correlation: Option<String>,
    traceparent: Option<String>,
    carrier: Option<String>,
    version: u32,
}

type Received = Arc<Mutex<Vec<Got>>>;

#[handler(group = "kafka-interop")]
async fn kafka_from_python(evt: OrderShipped, ctx: Context, State(got): State<Received>) {
    got.lock().unwrap().push(Got {
        event: evt,
        source: ctx.source().to_owned(),
        key: ctx.key().map(str::to_owned),
        correlation: ctx.correlation_id().map(str::to_owned),
        traceparent: ctx.traceparent().map(str::to_owned),
        carrier: ctx.header("x-carrier").map(str::to_owned),
        version: ctx.envelope().schema_version,
    });
}

/// Event 0 waits at the gate; the others finish at once.
#[derive(Clone, Default)]
struct Gate {
    open: Arc<Notify>,
    done: Arc<AtomicU32>,
}

impl Gate {
    /// Event 0 waits until the gate opens; every event is then counted.
    async fn pass(&self, evt: &Step) {
        if evt.n == 0 {
            self.open.notified().await;
        }
        self.done.fetch_add(1, Ordering::SeqCst);
    }
}

#[handler(group = "kafka-offsets", concurrency = 4)]
async fn kafka_gated_step(evt: Step, State(gate): State<Gate>) {
    gate.pass(&evt).await;
}

/// One worker; event 0 holds it until the gate opens.
#[handler(group = "kafka-held")]
async fn kafka_held_step(evt: Step, State(gate): State<Gate>) {
    gate.pass(&evt).await;
}

#[handler(group = "kafka-malformed")]
async fn kafka_counted_step(_evt: Step, State(gate): State<Gate>) {
    gate.done.fetch_add(1, Ordering::SeqCst);
}

fn url(address: &str, prefix: &str, extra: &str) -> String {
    format!(
        "kafka://{address}?prefix={prefix}&session_timeout=6s&commit_interval=100ms&linger=1ms{extra}"
    )
}

/// An app of `service` running `handler` with `state`, on the test's prefix.
async fn build<S: Clone + Send + Sync + 'static>(
    address: &str,
    prefix: &str,
    extra: &str,
    service: &str,
    handler: &'static str,
    state: S,
) -> eventwire::Result<App> {
    App::builder()
        .service(service)
        .transport_url(&url(address, prefix, extra))?
        .handlers(HandlerSelection::names([handler]))
        .state(state)
        .build()
        .await
}

async fn broker() -> String {
    tokio::task::spawn_blocking(shared_kafka).await.unwrap()
}

fn python(args: &[&str]) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("tests/interop/kafka_peer.py"))
        .args(args)
        .env("PYTHONPATH", root.join(".tools/python-kafka"));
    cmd
}

fn consumer(address: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_cloudevents_service_reads_and_writes_eventwire_records() {
    let address = broker().await;
    let prefix = unique_prefix();
    let got = Received::default();
    let app = build(
        &address,
        &prefix,
        "",
        "billing",
        "kafka_from_python",
        got.clone(),
    )
    .await
    .unwrap();

    // Python → Rust: the CloudEvents SDK's `to_binary`, sent by kafka-python.
    let topic = format!("{prefix}.test.kafka.order-shipped");
    let out = python(&["publish", &address, &topic, "test.kafka.order-shipped"])
        .output()
        .expect("python3 runs (scripts/test installs kafka-python and cloudevents)");
    assert!(
        out.status.success(),
        "the python publisher failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(20), "the python event", || {
        got.lock().unwrap().len() == 1
    })
    .await;
    let g = got.lock().unwrap()[0].clone();
    assert_eq!(
        g.event,
        OrderShipped {
            order_id: "o-42".into(),
            items: vec!["book".into(), "pen".into()],
            total_cents: 1250
        }
    );
    assert_eq!(g.source, "python-shipping");
    assert_eq!(g.key.as_deref(), Some("o-42"));
    assert_eq!(g.version, 2);
    assert_eq!(g.correlation.as_deref(), Some("corr-py"));
    // The SDK writes the tracing extension as `ce_traceparent`.
    assert_eq!(
        g.traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(g.carrier.as_deref(), Some("dhl"));

    // Rust → Python: `from_binary` reads every attribute eventwire writes.
    let id = app
        .publisher()
        .publish_with(
            &InvoiceIssued {
                invoice_id: "inv-9".into(),
                amount_cents: 4200,
            },
            PublishOptions::new()
                .correlation_id("checkout-9")
                .header("x-region", "eu"),
        )
        .await
        .unwrap();
    let topic = format!("{prefix}.test.kafka.invoice");
    let out = tokio::task::spawn_blocking(move || {
        python(&["read", &address, &topic, "1"]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the python reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = out.stdout.lines().next().unwrap().unwrap();
    let read: serde_json::Value = serde_json::from_str(&line).unwrap();
    let a = &read["attributes"];
    assert_eq!(a["specversion"], "1.0");
    assert_eq!(a["id"], id.as_str());
    assert_eq!(a["type"], "test.kafka.invoice");
    assert_eq!(a["source"], "billing");
    assert_eq!(a["datacontenttype"], "application/json");
    assert_eq!(a["schemaversion"], "3");
    assert_eq!(a["partitionkey"], "inv-9");
    assert_eq!(a["correlationid"], "checkout-9");
    assert!(
        a["time"].as_str().is_some_and(|t| t.starts_with("20")),
        "{a}"
    );
    assert_eq!(
        read["data"],
        serde_json::json!({"invoice_id": "inv-9", "amount_cents": 4200})
    );
    app.shutdown().await.unwrap();
}

/// The committed offset of `group` on partition 0 of `topic`.
fn committed(address: &str, group: &str, topic: &str) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let c = consumer(address, group)
        .committed_offsets(tpl, Duration::from_secs(5))
        .unwrap();
    match c.elements()[0].offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_never_committed_past_an_unfinished_event() {
    let address = broker().await;
    let prefix = unique_prefix();
    let gate = Gate::default();
    let app = build(
        &address,
        &prefix,
        "&partitions=1",
        "steps",
        "kafka_gated_step",
        gate.clone(),
    )
    .await
    .unwrap();
    let publisher = app.publisher();
    for n in 0..20 {
        publisher
            .publish(&Step {
                key: format!("k{}", n % 3),
                n,
            })
            .await
            .unwrap();
    }
    // Events 1..19 finish around event 0, which waits.
    eventually(Duration::from_secs(20), "19 events done", || {
        gate.done.load(Ordering::SeqCst) == 19
    })
    .await;
    let group = format!("{prefix}.kafka-offsets__kafka_gated_step");
    let topic = format!("{prefix}.test.kafka.step");
    // Several commit intervals pass: nothing past event 0 (offset 0) is committed.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (a, g, t) = (address.clone(), group.clone(), topic.clone());
    let held = tokio::task::spawn_blocking(move || committed(&a, &g, &t))
        .await
        .unwrap();
    assert_eq!(
        held,
        Some(0),
        "the group's offset stays at the unfinished event"
    );
    gate.open.notify_one();
    eventually(Duration::from_secs(20), "all 20 committed", || {
        committed(&address, &group, &topic) == Some(20)
    })
    .await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_are_not_envelopes_are_dead_lettered_and_the_rest_flow() {
    let address = broker().await;
    let prefix = unique_prefix();
    let gate = Gate::default();
    let app = build(
        &address,
        &prefix,
        "&partitions=1",
        "steps",
        "kafka_counted_step",
        gate.clone(),
    )
    .await
    .unwrap();
    let topic = format!("{prefix}.test.kafka.step");
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &address)
        .create()
        .unwrap();
    // No CloudEvents headers at all; then a header value that is not UTF-8.
    raw.send(
        FutureRecord::<str, _>::to(&topic).payload("plain text"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    raw.send(
        FutureRecord::<str, _>::to(&topic)
            .payload("{}")
            .headers(OwnedHeaders::new().insert(Header {
                key: "ce_id",
                value: Some(&b"\xff\xfe"[..]),
            })),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    app.publisher()
        .publish(&Step {
            key: "k".into(),
            n: 1,
        })
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the valid event after them",
        || gate.done.load(Ordering::SeqCst) == 1,
    )
    .await;
    // Both went to the dead-letter topic, as decode failures, with what they carried.
    let dlq = format!("{prefix}.eventwire.dlq.test.kafka.step");
    let letters = tokio::task::spawn_blocking(move || {
        let c = consumer(&address, &format!("{prefix}.reader"));
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&dlq, 0, Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let mut letters = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while letters.len() < 2 && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                let headers: Vec<(String, String)> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                letters.push((headers, m.payload().unwrap_or_default().to_vec()));
            }
        }
        letters
    })
    .await
    .unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let get = |i: usize, name: &str| {
        letters[i]
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    for i in 0..2 {
        assert_eq!(
            get(i, "eventwire-dlq-error-kind").as_deref(),
            Some("decode")
        );
        assert_eq!(
            get(i, "eventwire-dlq-handler").as_deref(),
            Some("kafka_counted_step")
        );
    }
    // Dead-lettered concurrently: in either order.
    let plain = letters
        .iter()
        .position(|(_, payload)| payload == b"plain text")
        .expect("the record without headers");
    let bad_header = 1 - plain;
    assert_eq!(letters[bad_header].1, b"{}");
    assert!(
        get(bad_header, "eventwire-original-ce_id").is_some(),
        "{:?}",
        letters[bad_header]
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_verify_refuses_topics_that_do_not_exist() {
    let address = broker().await;
    let prefix = unique_prefix();
    let err = build(
        &address,
        &prefix,
        "&provision=verify",
        "steps",
        "kafka_counted_step",
        Gate::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("do not exist") && err.contains(&format!("{prefix}.test.kafka.step")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_absent_brokers_are_typed_errors() {
    for bad in [
        "kafka://h?partitions=0",
        "kafka://h?provision=sometimes",
        "kafka://user:secret@h",
    ] {
        let err = App::builder().transport_url(bad).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
    let nobody = format!("kafka://127.0.0.1:{}?connect_timeout=1s", free_port());
    let err = KafkaTransport::connect(KafkaConfig::from_url(&nobody).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Connect, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_holding_every_slot_does_not_stop_a_rebalance() {
    let address = broker().await;
    let prefix = unique_prefix();
    let gate = Gate::default();
    // One partition: every event behind event 0, which holds the only worker.
    let first = build(
        &address,
        &prefix,
        "&partitions=1",
        "steps",
        "kafka_held_step",
        gate.clone(),
    )
    .await
    .unwrap();
    for n in 0..20 {
        first
            .publisher()
            .publish(&Step { key: "k".into(), n })
            .await
            .unwrap();
    }
    // The workers' queue (2 records) is full and the rest waits in the poll
    // thread: a second instance still joins, which needs the first one to
    // take part in the rebalance.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joined = std::time::Instant::now();
    let second = tokio::time::timeout(
        Duration::from_secs(30),
        build(
            &address,
            &prefix,
            "&partitions=1",
            "steps",
            "kafka_held_step",
            gate.clone(),
        ),
    )
    .await
    .expect("the second instance joined while the first one's worker was held")
    .unwrap();
    eprintln!("second instance joined in {:?}", joined.elapsed());
    gate.open.notify_waiters();
    gate.open.notify_one();
    eventually(Duration::from_secs(30), "all 20 events handled", || {
        gate.done.load(Ordering::SeqCst) >= 20
    })
    .await;
    second.shutdown().await.unwrap();
    first.shutdown().await.unwrap();
}

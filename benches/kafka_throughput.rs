//! eventwire over Kafka against raw rdkafka, in one run against one broker
//! that the benchmark starts itself (tansu, in memory) and stops by PID.
//!
//! The broker binary: `EVENTWIRE_TANSU`, else `.tools/tansu/bin/tansu`
//! (installed by `scripts/test`).
//!
//! ```text
//! cargo bench --bench kafka_throughput                 # 50 000 events, 3 rounds
//! EVENTS=100000 ROUNDS=5 cargo bench --bench kafka_throughput
//! ```
//!
//! Without `--bench` in the arguments (`cargo test --benches`) it runs one
//! tiny round. Both sides use the same producer settings (idempotent,
//! `acks=all`, `linger.ms=5`) and send the same records: the 53–58-byte JSON
//! `{"id":…,"customer":"customer-42","total_cents":12345}` with the
//! CloudEvents headers eventwire writes (built per event on the raw side,
//! with a fresh id and time, as eventwire does). Each round runs the two
//! sides in turns, alternating which goes first; the medians are printed.
//!
//! 1. publish: 256 acknowledgements awaited at once (raw: `send_result`
//!    futures joined per window of 256; eventwire: `publish_batch` of 256).
//! 2. publish -> handler: a group consumer already joined, counting (raw: a
//!    `BaseConsumer` on a thread, decoding the JSON and storing each offset;
//!    eventwire: a `#[handler]` with `concurrency = 64`), from the first
//!    publish to the N-th event handled.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use eventwire::envelope::format_time;
use eventwire::kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use eventwire::kafka::rdkafka::client::DefaultClientContext;
use eventwire::kafka::rdkafka::config::ClientConfig;
use eventwire::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use eventwire::kafka::rdkafka::message::{Header, Message, OwnedHeaders};
use eventwire::kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use eventwire::prelude::*;
use eventwire::EventId;

const WINDOW: usize = 256;

/// Row 1: nobody consumes this topic.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.ew.publish")]
struct PublishOrder {
    id: u64,
    customer: String,
    total_cents: i64,
}

/// Row 2: handled by `kafka_order_sink`.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.ew.order")]
struct Order {
    id: u64,
    customer: String,
    total_cents: i64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct RawOrder {
    id: u64,
    customer: String,
    total_cents: i64,
}

#[handler(group = "bench", concurrency = 64)]
async fn kafka_order_sink(_evt: Order, State(count): State<Arc<AtomicU64>>) {
    count.fetch_add(1, Ordering::Relaxed);
}

struct Broker {
    child: Child,
    address: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Broker {
    let binary = std::env::var("EVENTWIRE_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/tansu/bin/tansu")
        });
    assert!(
        binary.exists(),
        "no tansu at {}: run `scripts/test --setup-only`",
        binary.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(&binary)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Broker {
        child,
        address: format!("127.0.0.1:{port}"),
    }
}

fn payload(id: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id, "customer": "customer-42", "total_cents": 12345
    }))
    .unwrap()
}

/// The headers eventwire writes for an `Order` of version 1 published as a
/// root event, built per event.
fn raw_headers(topic: &str) -> OwnedHeaders {
    let id = EventId::new();
    let time = format_time(SystemTime::now());
    let pairs = [
        ("ce_specversion", "1.0"),
        ("ce_id", id.as_str()),
        ("ce_source", "bench"),
        ("ce_type", topic),
        ("ce_time", time.as_str()),
        ("content-type", "application/json"),
        ("ce_schemaversion", "1"),
        // A root event's correlation id is its own id.
        ("ce_correlationid", id.as_str()),
    ];
    let mut h = OwnedHeaders::new_with_capacity(pairs.len());
    for (key, value) in pairs {
        h = h.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    h
}

fn producer(address: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

async fn raw_publish(p: &FutureProducer, topic: &str, ce_type: &str, from: u64, n: u64) {
    let mut id = from;
    while id < from + n {
        let end = (id + WINDOW as u64).min(from + n);
        let mut window = Vec::with_capacity(WINDOW);
        for i in id..end {
            let body = payload(i);
            let record = FutureRecord::<str, _>::to(topic)
                .payload(&body)
                .headers(raw_headers(ce_type));
            window.push(p.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        for d in futures_util::future::join_all(window).await {
            d.unwrap().map_err(|(e, _)| e).unwrap();
        }
        id = end;
    }
}

async fn ew_publish<E: Event>(app: &App, make: impl Fn(u64) -> E, from: u64, n: u64) {
    let publisher = app.publisher();
    let mut id = from;
    while id < from + n {
        let end = (id + WINDOW as u64).min(from + n);
        let batch: Vec<E> = (id..end).map(&make).collect();
        for r in publisher.publish_batch(&batch).await {
            r.unwrap();
        }
        id = end;
    }
}

/// A raw group consumer counting on a thread of its own.
fn raw_consumer(address: &str, topic: &str, count: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", "raw-bench")
        .set("session.timeout.ms", "6000")
        .set("auto.offset.reset", "latest")
        .set("enable.auto.offset.store", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                let _: RawOrder = serde_json::from_slice(m.payload().unwrap()).unwrap();
                consumer
                    .store_offset(m.topic(), m.partition(), m.offset())
                    .unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

async fn wait_for(count: &AtomicU64, target: u64) {
    let mut last = (count.load(Ordering::Relaxed), Instant::now());
    while count.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = count.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(30),
            "stalled at {now} of {target}"
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (events, rounds) = if quick {
        (200, 1)
    } else {
        (env("EVENTS", 50_000), env("ROUNDS", 3))
    };
    let broker = start_broker();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let url = format!(
            "kafka://{}?session_timeout=6s&linger=5ms&partitions=4",
            broker.address
        );
        let raw = producer(&broker.address);
        let counted = Arc::new(AtomicU64::new(0));
        let app = App::builder()
            .service("bench")
            .transport_url(&url)
            .unwrap()
            .handlers(HandlerSelection::names(["kafka_order_sink"]))
            .state(counted.clone())
            .build()
            .await
            .unwrap();
        // The raw side's topics, created like eventwire's, and its consumer joined.
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &broker.address)
            .create()
            .unwrap();
        let topics = ["bench.rw.order", "bench.rw.publish"]
            .map(|t| NewTopic::new(t, 4, TopicReplication::Fixed(1)));
        admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .unwrap();
        raw_publish(&raw, "bench.rw.order", "bench.rw.order", 0, 1).await;
        raw_publish(&raw, "bench.rw.publish", "bench.rw.publish", 0, 1).await;
        let raw_count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        raw_consumer(
            &broker.address,
            "bench.rw.order",
            raw_count.clone(),
            stop.clone(),
        );
        // Joined once a probe record arrives.
        let mut probe = 1_000_000_000;
        while raw_count.load(Ordering::Relaxed) == 0 {
            raw_publish(&raw, "bench.rw.order", "bench.rw.order", probe, 1).await;
            probe += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let order = |id| Order {
            id,
            customer: "customer-42".into(),
            total_cents: 12345,
        };
        let publish_order = |id| PublishOrder {
            id,
            customer: "customer-42".into(),
            total_cents: 12345,
        };
        let mut rows: [(Vec<f64>, Vec<f64>); 2] = Default::default();
        let mut next = 0u64;
        for round in 0..=rounds {
            for side in 0..2 {
                let ew_turn = (side + round as usize).is_multiple_of(2);
                // Row 1: publish.
                let t = Instant::now();
                if ew_turn {
                    ew_publish(&app, publish_order, next, events).await;
                } else {
                    raw_publish(&raw, "bench.rw.publish", "bench.rw.publish", next, events).await;
                }
                let rate1 = events as f64 / t.elapsed().as_secs_f64();
                // Row 2: publish -> handler.
                let (count, base) = if ew_turn {
                    (&counted, counted.load(Ordering::Relaxed))
                } else {
                    (&raw_count, raw_count.load(Ordering::Relaxed))
                };
                let t = Instant::now();
                if ew_turn {
                    ew_publish(&app, order, next, events).await;
                } else {
                    raw_publish(&raw, "bench.rw.order", "bench.rw.order", next, events).await;
                }
                wait_for(count, base + events).await;
                let rate2 = events as f64 / t.elapsed().as_secs_f64();
                next += events;
                if round > 0 || quick {
                    let i = usize::from(ew_turn);
                    rows[0].0.push(if i == 1 { rate1 } else { f64::NAN });
                    rows[0].1.push(if i == 0 { rate1 } else { f64::NAN });
                    rows[1].0.push(if i == 1 { rate2 } else { f64::NAN });
                    rows[1].1.push(if i == 0 { rate2 } else { f64::NAN });
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        app.shutdown().await.unwrap();
        println!("kafka (tansu, in memory), {events} events, median of {rounds} rounds");
        println!("| work | raw rdkafka | eventwire | eventwire / raw |");
        println!("|---|---|---|---|");
        for (name, (ew, raw)) in ["publish, 256 acks in flight", "publish -> handler"]
            .iter()
            .zip(rows)
        {
            let ew = median(ew.into_iter().filter(|x| !x.is_nan()).collect());
            let raw = median(raw.into_iter().filter(|x| !x.is_nan()).collect());
            println!(
                "| {name} | {:.1} k/s | {:.1} k/s | {:.2}x |",
                raw / 1000.0,
                ew / 1000.0,
                ew / raw
            );
        }
    });
}

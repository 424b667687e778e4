//! In-memory bus throughput against its raw baseline, in one run:
//!
//! - raw: `tokio::sync::mpsc` (capacity 1024), the producer encodes the
//!   payload with serde_json, the consumer decodes it;
//! - eventwire: `publish` → in-memory bus (capacity 1024) → `#[handler]`,
//!   with the same payload through the same codec, plus the envelope, the
//!   UUIDv7 id, dispatch and acknowledgement.
//!
//! Both sides flood: the producer publishes as fast as the bounded queue
//! takes events, the consumer counts them; the rate is taken when the last
//! event arrived. The event is `{"id":…,"customer":"customer-42",
//! "total_cents":12345}` (53 bytes of JSON with a one-digit id, 58 with a
//! six-digit one). Median of the rounds after a warm-up, the sides taking
//! turns at going first; `VERBOSE=1` prints every round.
//!
//! ```text
//! cargo bench --bench memory_throughput            # 200 000 events, 5 rounds
//! EVENTS=1000000 ROUNDS=3 cargo bench --bench memory_throughput
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventwire::prelude::*;
use eventwire::MemoryTransport;
use tokio::sync::Notify;

#[path = "support/alloc_count.rs"]
mod alloc_count;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.order.placed")]
struct OrderPlaced {
    id: u64,
    customer: String,
    total_cents: i64,
}

fn sample(id: u64) -> OrderPlaced {
    OrderPlaced {
        id,
        customer: "customer-42".to_owned(),
        total_cents: 12_345,
    }
}

#[derive(Clone)]
struct Counter {
    handled: Arc<AtomicU64>,
    target: u64,
    done: Arc<Notify>,
}

#[handler(group = "bench")]
async fn count(evt: OrderPlaced, State(c): State<Counter>) {
    std::hint::black_box(&evt);
    if c.handled.fetch_add(1, Ordering::Relaxed) + 1 == c.target {
        c.done.notify_one();
    }
}

async fn raw_mpsc(events: u64) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1024);
    let start = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(bytes) = rx.recv().await {
            let evt: OrderPlaced = serde_json::from_slice(&bytes).unwrap();
            std::hint::black_box(&evt);
            n += 1;
        }
        n
    });
    for id in 0..events {
        tx.send(serde_json::to_vec(&sample(id)).unwrap())
            .await
            .unwrap();
    }
    drop(tx);
    assert_eq!(consumer.await.unwrap(), events);
    start.elapsed()
}

async fn eventwire_bus(events: u64) -> Duration {
    let counter = Counter {
        handled: Arc::new(AtomicU64::new(0)),
        target: events,
        done: Arc::new(Notify::new()),
    };
    let app = App::builder()
        .service("bench")
        .transport(MemoryTransport::new().with_capacity(1024))
        .handlers(HandlerSelection::names(["count"]))
        .state(counter.clone())
        .build()
        .await
        .unwrap();
    let publisher = app.publisher();
    let done = counter.done.notified();
    tokio::pin!(done);
    done.as_mut().enable();
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        for id in 0..events {
            publisher.publish(&sample(id)).await.unwrap();
        }
    });
    done.await;
    let elapsed = start.elapsed();
    producer.await.unwrap();
    assert_eq!(counter.handled.load(Ordering::Relaxed), events);
    app.shutdown().await.unwrap();
    elapsed
}

fn per_sec(events: u64, d: Duration) -> f64 {
    events as f64 / d.as_secs_f64()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs benches with `--bench`-less args; keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let events = if quick { 2_000 } else { env("EVENTS", 200_000) };
    let rounds = if quick { 1 } else { env("ROUNDS", 5) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(serde_json::to_vec(&sample(7)).unwrap().len(), 53);
    let (mut raw, mut ew) = (Vec::new(), Vec::new());
    let mut allocs = (0.0, 0.0);
    rt.block_on(async {
        // Allocations per event, in a phase of their own (whole process,
        // start-up and shutdown of the app included, spread over the events).
        allocs.0 = alloc_count::per_event(events, raw_mpsc(events)).await;
        allocs.1 = alloc_count::per_event(events, eventwire_bus(events)).await;
        // Warm-up.
        raw_mpsc(events / 10 + 1).await;
        eventwire_bus(events / 10 + 1).await;
        for round in 0..rounds {
            // Sides alternate, so a drift of the machine favours neither.
            if round % 2 == 0 {
                raw.push(per_sec(events, raw_mpsc(events).await));
                ew.push(per_sec(events, eventwire_bus(events).await));
            } else {
                ew.push(per_sec(events, eventwire_bus(events).await));
                raw.push(per_sec(events, raw_mpsc(events).await));
            }
        }
    });
    if std::env::var("VERBOSE").is_ok_and(|v| v != "0") {
        let each = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("  rounds: raw {} | eventwire {}", each(&raw), each(&ew));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (raw, ew) = (median(&mut raw), median(&mut ew));
    println!("memory_throughput: {events} events x {rounds} rounds (median), 2 worker threads");
    println!(
        "  {:<34} {:>14} {:>14} {:>8}",
        "row", "raw", "eventwire", "ew/raw"
    );
    println!(
        "  {:<34} {:>9.0} ev/s {:>9.0} ev/s {:>7.2}x",
        "publish->handler (throughput)",
        raw,
        ew,
        ew / raw
    );
    println!(
        "  {:<34} {:>14.2} {:>14.2} {:>7.2}x",
        "allocations per event (lower=better)",
        allocs.0,
        allocs.1,
        allocs.1 / allocs.0
    );
    println!("  (raw: tokio mpsc(1024) + serde_json encode/decode; eventwire: memory bus of capacity 1024, default concurrency)");
}

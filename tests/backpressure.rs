//! Bounded queues: a slow consumer slows publishers down; nothing is dropped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventwire::prelude::*;
use eventwire::{MemoryTransport, PublishError};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.backpressure.job")]
struct Job {
    n: u32,
    blob: String,
}

static SLOW_DONE: AtomicU32 = AtomicU32::new(0);

#[handler(group = "slow-consumer")]
async fn slow_consumer(_job: Job) {
    // The handler's work: slower than the producer.
    tokio::time::sleep(Duration::from_millis(1)).await;
    SLOW_DONE.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_bounds_the_queue_and_loses_nothing() {
    const CAPACITY: usize = 8;
    const EVENTS: u32 = 300;
    let bus = MemoryTransport::new().with_capacity(CAPACITY);
    let app = App::builder()
        .service("bp")
        .transport(bus.clone())
        .handlers(HandlerSelection::names(["slow_consumer"]))
        .build()
        .await
        .unwrap();
    let publisher = app.publisher();
    let producer = tokio::spawn(async move {
        for n in 0..EVENTS {
            // 4 KiB each: an unbounded queue would hold ~1.2 MiB here.
            publisher
                .publish(&Job {
                    n,
                    blob: "x".repeat(4096),
                })
                .await
                .unwrap();
        }
    });
    let mut max_queued = 0;
    let mut max_outstanding = 0;
    while !producer.is_finished() {
        max_queued = max_queued.max(bus.queued("slow-consumer__slow_consumer"));
        max_outstanding = max_outstanding.max(bus.outstanding());
        // A sampling interval while the producer runs, not a wait for an
        // outcome: the loop ends on the producer finishing.
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    producer.await.unwrap();
    app.wait_idle().await.unwrap();
    assert_eq!(SLOW_DONE.load(Ordering::SeqCst), EVENTS, "no event dropped");
    assert!(max_queued <= CAPACITY, "queue stayed bounded: {max_queued}");
    // Queued, plus the one being handled, plus the one the blocked publisher holds.
    assert!(
        max_outstanding <= CAPACITY + 2,
        "memory bounded: {max_outstanding}"
    );
    assert!(
        max_queued >= CAPACITY / 2,
        "the producer was actually held back: {max_queued}"
    );
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.backpressure.gate")]
struct Gated {
    n: u32,
}

static GATED_DONE: AtomicU32 = AtomicU32::new(0);

#[handler(group = "gated", timeout = "none")]
async fn gated(_evt: Gated, State(gate): State<Arc<Semaphore>>) {
    gate.acquire().await.unwrap().forget();
    GATED_DONE.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test]
async fn a_publish_timeout_turns_a_full_queue_into_a_typed_error() {
    let gate = Arc::new(Semaphore::new(0));
    let bus = MemoryTransport::new()
        .with_capacity(2)
        .with_publish_timeout(Duration::from_millis(50));
    let app = App::builder()
        .service("gated")
        .transport(bus.clone())
        .handlers(HandlerSelection::names(["gated"]))
        .state(gate.clone())
        .build()
        .await
        .unwrap();
    let publisher = app.publisher();
    // One event in the handler, two in the queue.
    let mut accepted = 0;
    let mut rejected = None;
    for n in 0..10 {
        match publisher.publish(&Gated { n }).await {
            Ok(_) => accepted += 1,
            Err(e) => {
                rejected = Some(e);
                break;
            }
        }
    }
    let err = rejected.expect("a full queue fails the publish");
    match &err {
        PublishError::Backpressure {
            topic,
            consumer,
            waited,
        } => {
            assert_eq!(topic, "test.backpressure.gate");
            assert_eq!(consumer, "gated__gated");
            assert_eq!(*waited, Duration::from_millis(50));
        }
        other => panic!("expected Backpressure, got {other:?}"),
    }
    assert!(err.to_string().contains("stayed full"), "{err}");
    assert!((2..=3).contains(&accepted), "accepted {accepted}");
    // Everything accepted is still delivered once the consumer catches up.
    gate.add_permits(100);
    app.wait_idle().await.unwrap();
    assert_eq!(GATED_DONE.load(Ordering::SeqCst), accepted);
    app.shutdown().await.unwrap();
}

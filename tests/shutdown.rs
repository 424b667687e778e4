//! Graceful shutdown: stop taking events, finish what runs, leave nothing behind.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use eventwire::prelude::*;
use eventwire::MemoryTransport;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.shutdown.task")]
struct Task {
    n: u32,
}

static STARTED: AtomicU32 = AtomicU32::new(0);
static FINISHED: AtomicU32 = AtomicU32::new(0);

#[handler(group = "drain", concurrency = 100)]
async fn long_task(_evt: Task) {
    STARTED.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    FINISHED.fetch_add(1, Ordering::SeqCst);
}

async fn wait_for(cond: impl Fn() -> bool, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_in_flight_handlers_and_returns() {
    let app = App::builder()
        .service("drain")
        .handlers(HandlerSelection::names(["long_task"]))
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    for n in 0..100 {
        app.publisher().publish(&Task { n }).await.unwrap();
    }
    wait_for(
        || STARTED.load(Ordering::SeqCst) == 100,
        "100 handlers in flight",
    )
    .await;
    assert_eq!(app.metrics().handlers["long_task"].in_flight, 100);
    assert!(FINISHED.load(Ordering::SeqCst) < 100);

    let report = app.shutdown().await.unwrap();
    assert_eq!(
        FINISHED.load(Ordering::SeqCst),
        100,
        "every in-flight handler completed"
    );
    assert_eq!(report.aborted, 0);
}

static SLOW_STARTED: AtomicU32 = AtomicU32::new(0);
static SLOW_FINISHED: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.shutdown.slow")]
struct Slow {
    n: u32,
}

#[handler(group = "deadline", concurrency = 4, timeout = "none")]
async fn very_slow(evt: Slow, ctx: Context) {
    SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
    // The first delivery hangs; a redelivery completes.
    if ctx.attempt() == 1 && evt.n < 4 && SLOW_STARTED.load(Ordering::SeqCst) <= 4 {
        std::future::pending::<()>().await;
    }
    SLOW_FINISHED.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_handlers_are_stopped_and_their_events_redelivered() {
    let bus = MemoryTransport::new();
    let app = App::builder()
        .service("deadline")
        .transport(bus.clone())
        .handlers(HandlerSelection::names(["very_slow"]))
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    for n in 0..4 {
        app.publisher().publish(&Slow { n }).await.unwrap();
    }
    wait_for(
        || SLOW_STARTED.load(Ordering::SeqCst) == 4,
        "4 hanging handlers",
    )
    .await;
    let report = tokio::time::timeout(Duration::from_secs(5), app.shutdown())
        .await
        .expect("shutdown returns at its deadline")
        .unwrap();
    assert_eq!(report.aborted, 4);
    assert_eq!(SLOW_FINISHED.load(Ordering::SeqCst), 0);
    assert_eq!(
        bus.outstanding(),
        4,
        "the stopped events are back in the queue, not lost"
    );

    // Another instance on the same bus picks them up.
    let successor = App::builder()
        .service("deadline")
        .transport(bus.clone())
        .handlers(HandlerSelection::names(["very_slow"]))
        .build()
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), bus.wait_idle())
        .await
        .expect("redelivered events handled");
    assert_eq!(SLOW_FINISHED.load(Ordering::SeqCst), 4);
    successor.shutdown().await.unwrap();
}

#[tokio::test]
async fn run_until_stops_on_the_given_future_and_on_a_handle() {
    let app = App::builder()
        .service("run-until")
        .handlers(HandlerSelection::names(["long_task"]))
        .build()
        .await
        .unwrap();
    let handle = app.shutdown_handle();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        handle.shutdown();
    });
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        app.run_until(std::future::pending::<()>()),
    )
    .await
    .expect("the handle stopped the app")
    .unwrap();
    assert_eq!(report.aborted, 0);
}

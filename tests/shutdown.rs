//! Stopping an app from outside: `run_until` returns when its future
//! completes or a `ShutdownHandle` fires. Draining in-flight handlers and the
//! shutdown deadline are guarantees proven on every transport by the
//! guarantee suite (`conformance/src/scenarios/lifecycle.rs`).

use std::time::Duration;

use eventwire::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.shutdown.task")]
struct Task {
    n: u32,
}

#[handler(group = "run-until")]
async fn idle_task(_evt: Task) {}

#[tokio::test]
async fn run_until_stops_on_the_given_future_and_on_a_handle() {
    let app = App::builder()
        .service("run-until")
        .handlers(HandlerSelection::names(["idle_task"]))
        .build()
        .await
        .unwrap();
    let handle = app.shutdown_handle();
    // Fired from another task, whenever it runs: the handle works whether
    // `run_until` is already waiting or not yet.
    tokio::spawn(async move { handle.shutdown() });
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        app.run_until(std::future::pending::<()>()),
    )
    .await
    .expect("the handle stopped the app")
    .unwrap();
    assert_eq!(report.aborted, 0);

    // The given future completing stops it too.
    let app = App::builder()
        .service("run-until")
        .handlers(HandlerSelection::names(["idle_task"]))
        .build()
        .await
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(5), app.run_until(async {}))
        .await
        .expect("the future stopped the app")
        .unwrap();
    assert_eq!(report.aborted, 0);
}

//! What an `Observer` sees, and when: every handler run is on record by the
//! time the transport reports the event settled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::prelude::*;
use eventwire::{HandlerRun, MemoryTransport, Observer, Outcome};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.observer.ping")]
struct Ping {
    n: u32,
}

#[handler(group = "test-observer")]
async fn observe_ping(evt: Ping) -> Result<(), HandlerError> {
    if evt.n == 0 {
        return Err(HandlerError::permanent_msg("zero is refused"));
    }
    Ok(())
}

/// Records runs slowly, as an exporter that takes a lock or does I/O would.
#[derive(Clone, Default)]
struct SlowRecorder(Arc<Mutex<Vec<HandlerRun>>>);

impl Observer for SlowRecorder {
    fn handler_finished(&self, run: &HandlerRun) {
        std::thread::sleep(Duration::from_millis(100));
        self.0.lock().unwrap().push(run.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_is_recorded_before_the_bus_reports_idle() {
    let bus = MemoryTransport::new();
    let recorder = SlowRecorder::default();
    let app = App::builder()
        .service("observer-test")
        .transport(bus.clone())
        .observer(recorder.clone())
        .handlers(HandlerSelection::groups(["test-observer"]))
        .build()
        .await
        .unwrap();
    let publisher = app.publisher();
    for n in [1, 0, 2] {
        publisher.publish(&Ping { n }).await.unwrap();
        bus.wait_idle().await;
        // No waiting here: idle means settled, and settled means recorded.
        let runs = recorder.0.lock().unwrap().clone();
        let last = runs
            .last()
            .unwrap_or_else(|| panic!("run of {n} not recorded at idle"));
        match n {
            0 => assert!(
                matches!(last.outcome, Outcome::DeadLettered { .. }),
                "{last:?}"
            ),
            _ => assert!(matches!(last.outcome, Outcome::Succeeded), "{last:?}"),
        }
    }
    assert_eq!(recorder.0.lock().unwrap().len(), 3);
    assert_eq!(bus.dead_letters().len(), 1);
    app.shutdown().await.unwrap();
}

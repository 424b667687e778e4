//! Recovery: an instance that dies without a word, a durable consumer that
//! comes back, consumers that come and go while events are published.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::prelude::*;
use event_runtime::App;

use crate::bus::{Bus, PATIENCE};
use crate::features::Features;
use crate::harness::ConnectOptions;
use crate::scenarios::delivery::publish_all;
use crate::scenarios::lifecycle::Gate;
use crate::support::{eventually, Arrival, Instance, Recorder};

/// An event of the scenarios here (topic `eventwire-conformance.job`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.job")]
pub struct Job {
    #[event(key)]
    key: String,
    n: u32,
}

fn job(n: u32) -> Job {
    Job {
        key: format!("j-{}", n % 5),
        n,
    }
}

/// The sentinel of the jobs (see [`Bus::drain`]).
fn last_job() -> Job {
    job(u32::MAX)
}

/// Another process, as far as the broker can tell: an app built here runs
/// on a runtime of its own (its connections, pumps and handlers), and
/// [`Process::kill`] drops that runtime's tasks without running the app's
/// shutdown or its destructor, as `kill -9` would.
struct Process {
    runtime: tokio::runtime::Runtime,
}

impl Process {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the doomed instance");
        Process { runtime }
    }

    /// Runs `start` (building an app) on this process's runtime.
    fn start<F: Future<Output = App>>(&self, start: F) -> App {
        tokio::task::block_in_place(|| self.runtime.block_on(start))
    }

    fn kill(self, app: App) {
        std::mem::forget(app);
        self.runtime.shutdown_background();
    }
}

/// Redelivery soon after an instance vanished (JetStream: the ack wait).
fn prompt_redelivery() -> ConnectOptions {
    ConnectOptions::redelivery_after(Duration::from_secs(2))
}

#[handler(group = "conformance-crash", concurrency = 4, timeout = "none")]
async fn conformance_crash_job(
    evt: Job,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
    State(gate): State<Gate>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    gate.pass().await;
    rec.applied(&ctx, evt.n);
}

/// An instance dies (its runtime dropped, no shutdown: `kill -9`) with 4
/// handlers in flight: a successor gets every event, the ones the dead
/// instance held included (as redeliveries), and each is applied exactly
/// once.
pub async fn killed_instance_events_are_redelivered(bus: &Bus, features: &Features) {
    const H: &str = "conformance_crash_job";
    const EVENTS: u32 = 50;
    let rec = Recorder::default();
    let doomed = Process::new();
    let doomed_options = prompt_redelivery().killed_later();
    let app = doomed.start(bus.app_with(&[H], &rec, &doomed_options, |b| b.state(Gate::closed())));
    let producer = bus.app(&[], &rec).await;
    let publisher = producer.publisher();
    publish_all(&publisher, &(0..EVENTS).map(job).collect::<Vec<_>>()).await;
    eventually(
        PATIENCE,
        "4 handlers in flight in the doomed instance",
        || rec.count(H) >= 4,
    )
    .await;
    doomed.kill(app);
    let held: BTreeSet<u32> = rec.deliveries(H).iter().map(|d| d.n).collect();
    assert_eq!(held.len(), 4, "concurrency 4: {held:?}");

    let successor = bus
        .app_with(&[H], &rec, &prompt_redelivery(), |b| b.state(Gate::open()))
        .await;
    eventually(PATIENCE, "every event applied", || {
        rec.applied_events(H) as u32 == EVENTS
    })
    .await;
    // Instances: 0 died, 1 publishes, 2 took over.
    bus.drain(&publisher, &last_job(), &rec, &[(H, 2)]).await;

    let effects = rec.effects(H);
    assert_eq!(effects.len() as u32, EVENTS, "every event applied");
    assert!(
        effects.values().all(|&c| c == 1),
        "each applied exactly once: {effects:?}"
    );
    for n in &held {
        let again: Vec<_> = rec
            .deliveries(H)
            .into_iter()
            .filter(|d| d.n == *n && d.instance == 2)
            .collect();
        assert_eq!(
            again.len(),
            1,
            "event {n} held by the dead instance came back once"
        );
        // Where the broker counts deliveries, the copy says it is one.
        assert!(
            again[0].attempt >= 2 || !features.capabilities.counts_deliveries,
            "event {n} came back as a redelivery (attempt {})",
            again[0].attempt
        );
    }
    successor.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

#[handler(group = "conformance-resume", concurrency = 4)]
async fn conformance_resume_job(
    evt: Job,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.record(&ctx, me, evt.n);
}

/// A durable consumer stops after 100 events; 100 more are published while
/// no instance runs; the next instance gets exactly those 100: nothing
/// from before again, nothing missed.
pub async fn durable_consumer_resumes_where_it_stopped(bus: &Bus, _features: &Features) {
    const H: &str = "conformance_resume_job";
    const EACH: u32 = 100;
    let rec = Recorder::default();
    let producer = bus.app(&[], &rec).await;
    let publisher = producer.publisher();
    let first = bus.app(&[H], &rec).await;
    publish_all(&publisher, &(0..EACH).map(job).collect::<Vec<_>>()).await;
    eventually(PATIENCE, "the first 100", || {
        rec.applied_events(H) as u32 == EACH
    })
    .await;
    bus.drain(&publisher, &last_job(), &rec, &[(H, 1)]).await;
    first.shutdown().await.unwrap();

    publish_all(&publisher, &(EACH..2 * EACH).map(job).collect::<Vec<_>>()).await;
    let second = bus.app(&[H], &rec).await;
    eventually(PATIENCE, "the 100 published while away", || {
        rec.applied_events(H) as u32 == 2 * EACH
    })
    .await;
    bus.drain(&publisher, &last_job(), &rec, &[(H, 2)]).await;

    let resumed: Vec<u32> = rec
        .deliveries(H)
        .iter()
        .filter(|d| d.instance == 2)
        .map(|d| d.n)
        .collect();
    let resumed_set: BTreeSet<u32> = resumed.iter().copied().collect();
    assert_eq!(resumed.len(), resumed_set.len(), "nothing delivered twice");
    assert_eq!(
        resumed_set,
        (EACH..2 * EACH).collect(),
        "exactly the events published while no instance ran"
    );
    second.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

/// How long the last instance of the churn may take: less than
/// JetStream's default ack wait.
const HANDED_BACK_WITHIN: Duration = Duration::from_secs(20);

#[handler(group = "conformance-churn", concurrency = 8)]
async fn conformance_churn_job(
    evt: Job,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.record(&ctx, me, evt.n);
}

/// While 2 000 events are published, an instance of the group is started
/// and shut down 20 times (their connections stay open, as in a process
/// that stops one app and goes on); a last instance then takes what is
/// left within 20 s. Nothing is lost, nothing is applied twice, and nothing
/// a stopped instance was owed waits for a redelivery timer.
pub async fn subscribe_and_close_while_publishing(bus: &Bus, _features: &Features) {
    const H: &str = "conformance_churn_job";
    const EVENTS: u32 = 2_000;
    const ROUNDS: usize = 20;
    let rec = Recorder::default();
    let producer = bus.app(&[], &rec).await;
    let publisher = producer.publisher();
    // The group's consumer exists before the first publish.
    bus.app(&[H], &rec).await.shutdown().await.unwrap();
    let publishing = Arc::new(AtomicBool::new(true));
    let feeding = {
        let publisher = publisher.clone();
        let publishing = publishing.clone();
        tokio::spawn(async move {
            for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(50) {
                let jobs: Vec<Job> = chunk.iter().copied().map(job).collect();
                publish_all(&publisher, &jobs).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            publishing.store(false, Ordering::Release);
        })
    };
    for _ in 0..ROUNDS {
        let before = rec.count(H);
        let app = bus.app(&[H], &rec).await;
        // Until it took something, or briefly when nothing is left.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while rec.count(H) == before {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        app.shutdown().await.unwrap();
    }
    // The last instance starts before the publisher is awaited: a bus that
    // applies back-pressure (the in-memory one) holds a publish until some
    // instance takes events.
    let last = bus.app(&[H], &rec).await;
    tokio::time::timeout(HANDED_BACK_WITHIN, feeding)
        .await
        .expect("the publisher finished once an instance ran")
        .unwrap();
    assert!(!publishing.load(Ordering::Acquire));
    // Well within JetStream's default ack wait (30 s): no event waits for
    // a redelivery timer because an instance stopped.
    eventually(HANDED_BACK_WITHIN, "every event applied", || {
        rec.applied_events(H) as u32 == EVENTS
    })
    .await;
    // Instances: 0 publishes, 1 made the consumer, 2..=21 came and went.
    let last_instance = (ROUNDS + 2) as u32;
    bus.drain(&publisher, &last_job(), &rec, &[(H, last_instance)])
        .await;

    let effects = rec.effects(H);
    assert_eq!(effects.len() as u32, EVENTS, "nothing lost");
    let twice: Vec<_> = effects.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    assert!(
        rec.instances(H).len() > 2,
        "the events were shared by the instances that came and went"
    );
    last.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

#[handler(group = "conformance-restart", concurrency = 4)]
async fn conformance_restart_job(
    evt: Job,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    // A little work, so that events are in flight when the broker dies.
    tokio::time::sleep(Duration::from_millis(2)).await;
    rec.applied(&ctx, evt.n);
}

/// The broker is killed (`kill -9`) and started again while events are
/// published and handled: every event whose publish was acknowledged is
/// handled, none lost; publishes during the outage fail with typed errors
/// and go through when retried (with the same event id); the consumer
/// resumes by itself. Where the transport de-duplicates publishes, each
/// event is applied exactly once (a retried publish the broker had stored
/// is dropped by its id, a redelivery by the idempotency guard).
pub async fn broker_restarted_under_load(bus: &Bus, features: &Features) {
    const H: &str = "conformance_restart_job";
    const EVENTS: u32 = 600;
    let rec = Recorder::default();
    let consumer = bus.app(&[H], &rec).await;
    let producer = bus.app(&[], &rec).await;
    let publisher = producer.publisher();
    let publishing = tokio::spawn(async move {
        let mut failures = 0u32;
        for n in 0..EVENTS {
            let id = EventId::new();
            while publisher
                .publish_with(&job(n), event_runtime::PublishOptions::new().id(id.clone()))
                .await
                .is_err()
            {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if n % 5 == 0 {
                // A steady flow (about 2.4 s) rather than one burst, so
                // that publishing goes on through the restart.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        failures
    });
    eventually(PATIENCE, "a quarter of the events handled", || {
        rec.applied_events(H) as u32 >= EVENTS / 4
    })
    .await;
    bus.restart_broker().await;
    let handled_at_restart = rec.applied_events(H);
    let failures = publishing.await.expect("the publishing task");
    eventually(PATIENCE, "every acknowledged event handled", || {
        rec.applied_events(H) as u32 == EVENTS
    })
    .await;
    let effects = rec.effects(H);
    assert_eq!(effects.len() as u32, EVENTS, "every event applied");
    if features.capabilities.deduplicates_publishes {
        assert!(
            effects.values().all(|&c| c == 1),
            "each applied exactly once: {effects:?}"
        );
    }
    eprintln!(
        "  restarted with {handled_at_restart} of {EVENTS} handled; {failures} publishes failed \
         during the outage and were retried"
    );
    assert!(
        (handled_at_restart as u32) < EVENTS,
        "the broker restarted under load, not after it"
    );
    consumer.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

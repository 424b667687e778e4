//! Graceful shutdown: stop taking events, let running handlers finish, and
//! (where the transport keeps them) leave every other event to the next
//! instance; past the deadline, stop the handlers and hand their events back.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::prelude::*;
use tokio::sync::watch;

use crate::bus::{Bus, PATIENCE};
use crate::features::Features;
use crate::harness::ConnectOptions;
use crate::scenarios::delivery::publish_all;
use crate::support::{eventually, Arrival, Instance, Recorder};

/// An event of the scenarios here (topic `eventwire-conformance.task`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.task")]
pub struct Task {
    n: u32,
}

/// Holds handlers until the test opens it: "in flight" for exactly as long
/// as the test needs, without timing.
#[derive(Clone)]
pub struct Gate(watch::Sender<bool>);

impl Gate {
    pub(crate) fn closed() -> Self {
        Gate(watch::channel(false).0)
    }

    pub(crate) fn open() -> Self {
        Gate(watch::channel(true).0)
    }

    pub(crate) fn release(&self) {
        self.0.send_replace(true);
    }

    pub(crate) async fn pass(&self) {
        let mut rx = self.0.subscribe();
        rx.wait_for(|open| *open).await.unwrap();
    }
}

const CONCURRENCY: usize = 20;

/// Transport options of every app here: the defaults. (JetStream: the
/// events a stopped instance's open pull request still brings are handed
/// back at once, not after the ack wait; these scenarios would wait 30 s
/// otherwise.)
fn handback() -> ConnectOptions {
    ConnectOptions::default()
}

#[handler(group = "conformance-drain", concurrency = 20, timeout = "none")]
async fn conformance_drain_task(
    evt: Task,
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

/// Starts an instance, publishes `events`, waits until it runs a full
/// concurrency of handlers (held by a closed gate), shuts it down while they
/// run, then opens the gate. Returns how many it started.
async fn stop_mid_stream(bus: &Bus, rec: &Recorder, events: u32) -> usize {
    let gate = Gate::closed();
    let g = gate.clone();
    let first = bus
        .app_with(&["conformance_drain_task"], rec, &handback(), move |b| {
            b.state(g).shutdown_timeout(PATIENCE)
        })
        .await;
    let tasks: Vec<Task> = (0..events).map(|n| Task { n }).collect();
    publish_all(&first.publisher(), &tasks).await;
    eventually(PATIENCE, "a full concurrency of handlers in flight", || {
        rec.count("conformance_drain_task") >= CONCURRENCY
    })
    .await;
    assert_eq!(
        first.metrics().handlers["conformance_drain_task"].in_flight,
        CONCURRENCY as u64
    );
    assert!(
        rec.effects("conformance_drain_task").is_empty(),
        "all held at the gate"
    );

    // Stop taking events first; the handlers finish while shutdown waits.
    first.shutdown_handle().shutdown();
    let stopping = tokio::spawn(first.shutdown());
    gate.release();
    let report = stopping.await.unwrap().unwrap();
    assert_eq!(report.aborted, 0, "no handler was cut off");
    let started = rec.count("conformance_drain_task");
    assert_eq!(started, CONCURRENCY, "no event taken after the stop");
    assert_eq!(
        rec.effects("conformance_drain_task").len(),
        started,
        "every started handler finished"
    );
    started
}

/// Shutdown with handlers in flight: it waits for every one of them, takes
/// no new event, and reports none aborted.
pub async fn shutdown_finishes_in_flight_handlers(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    stop_mid_stream(bus, &rec, 100).await;
}

/// After such a shutdown, a successor instance of the group gets every
/// event the first did not finish: none is lost, none handled twice.
pub async fn shutdown_hands_unstarted_events_to_a_successor(bus: &Bus, _features: &Features) {
    const EVENTS: u32 = 100;
    let rec = Recorder::default();
    stop_mid_stream(bus, &rec, EVENTS).await;
    let successor = bus
        .app_with(&["conformance_drain_task"], &rec, &handback(), |b| {
            b.state(Gate::open())
        })
        .await;
    eventually(PATIENCE, "every event handled", || {
        rec.applied_events("conformance_drain_task") as u32 == EVENTS
    })
    .await;
    // The successor publishes the sentinel: instance 1 is the successor.
    bus.drain(
        &successor.publisher(),
        &Task { n: u32::MAX },
        &rec,
        &[("conformance_drain_task", 1)],
    )
    .await;
    let effects = rec.effects("conformance_drain_task");
    assert_eq!(
        effects,
        (0..EVENTS).map(|n| (n, 1)).collect::<BTreeMap<_, _>>(),
        "every event handled exactly once across the two instances"
    );
    successor.shutdown().await.unwrap();
}

/// An event of the scenarios here (topic `eventwire-conformance.stuck`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.stuck")]
pub struct Stuck {
    n: u32,
}

#[handler(group = "conformance-stuck", concurrency = 4, timeout = "none")]
async fn conformance_hang_in_first_instance(
    evt: Stuck,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    if me.0 == 0 {
        std::future::pending::<()>().await;
    }
    rec.applied(&ctx, evt.n);
}

/// Handlers still running at the shutdown deadline are stopped, reported
/// as aborted, and their events go to the next instance, not lost.
pub async fn shutdown_deadline_returns_stopped_events(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    let first = bus
        .app_with(
            &["conformance_hang_in_first_instance"],
            &rec,
            &handback(),
            |b| b.shutdown_timeout(Duration::from_millis(100)),
        )
        .await;
    for n in 0..4 {
        first.publisher().publish(&Stuck { n }).await.unwrap();
    }
    eventually(PATIENCE, "4 hanging handlers", || {
        rec.count("conformance_hang_in_first_instance") == 4
    })
    .await;
    let report = tokio::time::timeout(PATIENCE, first.shutdown())
        .await
        .expect("shutdown returns at its deadline")
        .unwrap();
    assert_eq!(report.aborted, 4);
    assert!(rec.effects("conformance_hang_in_first_instance").is_empty());

    let successor = bus
        .app_with(
            &["conformance_hang_in_first_instance"],
            &rec,
            &handback(),
            |b| b,
        )
        .await;
    eventually(
        PATIENCE,
        "the stopped events handled by the successor",
        || rec.applied_events("conformance_hang_in_first_instance") == 4,
    )
    .await;
    bus.drain(
        &successor.publisher(),
        &Stuck { n: u32::MAX },
        &rec,
        &[("conformance_hang_in_first_instance", 1)],
    )
    .await;
    assert_eq!(
        rec.effects("conformance_hang_in_first_instance"),
        (0..4).map(|n| (n, 1)).collect::<BTreeMap<_, _>>()
    );
    successor.shutdown().await.unwrap();
}

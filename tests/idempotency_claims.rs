//! The idempotency claim of a handler, against real nats-server processes
//! (the oldest and the newest installed), JetStream:
//!
//! - a handler stopped at the shutdown deadline releases its claim, so a new
//!   instance sharing the store handles its events at once (it used to
//!   defer them until the claim timed out, 10 minutes by default);
//! - a delivery deferred because another delivery holds the claim comes
//!   again with a growing delay, and is not counted as an attempt.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use eventwire::prelude::*;
use eventwire::{IdempotencyKey, IdempotencyStore, InMemoryIdempotency, Outcome, PublishOptions};
use support::{
    eventually, server_binary, shared_server, unique_prefix, Arrival, Instance, Recorder,
    ServerSlot, SharedServer,
};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.claims.job")]
struct Job {
    n: u32,
}

/// Instance 0 holds every event far longer than its app's shutdown
/// timeout; any other instance applies it at once.
#[handler(group = "claims", concurrency = 8, timeout = "none")]
async fn hold_job(evt: Job, ctx: Context, State(rec): State<Recorder>, State(me): State<Instance>) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    if me == Instance(0) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    rec.applied(&ctx, evt.n);
}

const EVENTS: u32 = 8;

async fn app(url: &str, store: &InMemoryIdempotency, rec: &Recorder, me: Instance) -> App {
    App::builder()
        .service("claims")
        .transport_url(url)
        .unwrap()
        .handlers(HandlerSelection::names(["hold_job"]))
        .idempotency(store.clone())
        .observer(rec.clone())
        .state(rec.clone())
        .state(me)
        .shutdown_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap_or_else(|e| panic!("build: {e}"))
}

/// `jetstream://…?prefix=<unique>`; a short ack wait bounds how long a
/// nats-server 2.9 keeps an event handed back at shutdown in the pull
/// request of the stopped instance (see `conformance/src/scenarios/lifecycle.rs`).
fn test_url(server: &SharedServer) -> String {
    format!(
        "{}?prefix={}&ack_wait=2s",
        server.url("jetstream"),
        unique_prefix()
    )
}

on_each_server!(
    a_handler_stopped_at_the_deadline_releases_its_claim,
    a_deferral_backs_off_and_is_not_an_attempt,
);

/// Eight events in flight in an instance stopped at its shutdown deadline;
/// a second instance sharing the store handles all eight within seconds,
/// each once, without deferring any: their attempt number is the server's
/// delivery count (2: the stopped run was the first), not inflated by
/// deferrals.
async fn a_handler_stopped_at_the_deadline_releases_its_claim(server: SharedServer) {
    let url = test_url(&server);
    let store = InMemoryIdempotency::default();
    let first_rec = Recorder::default();
    let first = app(&url, &store, &first_rec, Instance(0)).await;
    let publisher = first.publisher();
    for n in 0..EVENTS {
        publisher.publish(&Job { n }).await.unwrap();
    }
    eventually(Duration::from_secs(10), "8 events in flight", || {
        first_rec.count("hold_job") == EVENTS as usize
    })
    .await;
    let report = first.shutdown().await.unwrap();
    assert_eq!(report.aborted, EVENTS as usize, "{report:?}");

    let rec = Recorder::default();
    let started = Instant::now();
    let second = app(&url, &store, &rec, Instance(1)).await;
    let deferred = || rec.runs_where("hold_job", |o| matches!(o, Outcome::Deferred { .. }));
    let within = Duration::from_secs(10);
    while rec.applied_events("hold_job") < EVENTS as usize {
        assert!(
            started.elapsed() < within,
            "on {}: the new instance applied {} of 8 in {within:?}, deferred {} deliveries, highest attempt seen {:?}",
            server.binary.version,
            rec.applied_events("hold_job"),
            deferred(),
            rec.runs("hold_job").iter().map(|r| r.attempt).max()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    let deferred = deferred();
    assert_eq!(
        deferred, 0,
        "deferred on {}: the claims of the stopped handlers were kept",
        server.binary.version
    );
    for (n, count) in rec.effects("hold_job") {
        assert_eq!(count, 1, "event {n} applied {count} times");
    }
    // The stopped run was the server's first delivery: the new instance
    // sees attempt 2. The stopping instance's pull request may still bring
    // an event after it stopped; it hands that back with a nak (a delivery
    // the server made, not a deferral: none happened, above), so attempt 3
    // is possible on every server version.
    let expected: &[u32] = &[2, 3];
    let attempts = rec.attempts("hold_job");
    assert_eq!(attempts.len(), EVENTS as usize);
    for (id, seen) in &attempts {
        assert!(
            seen.len() == 1 && expected.contains(&seen[0]),
            "event {id} on {}: attempts {seen:?}, expected one of {expected:?}",
            server.binary.version
        );
    }
    eprintln!(
        "{}: 8 of 8 handled by the new instance in {took:?}, 0 deferrals, attempts {:?}",
        server.binary.version,
        attempts.values().flatten().collect::<Vec<_>>()
    );
    second.shutdown().await.unwrap();
}

/// A claim held elsewhere (another instance's run, here the test's own)
/// makes the app defer the event: 100 ms, then 200, 400, 800 ms... Once the
/// claim is released the handler runs with attempt 1, its retry budget
/// untouched.
async fn a_deferral_backs_off_and_is_not_an_attempt(server: SharedServer) {
    let url = test_url(&server);
    let store = InMemoryIdempotency::default();
    let id = format!("held-{}", unique_prefix());
    let key = IdempotencyKey {
        group: "claims".into(),
        handler: "hold_job",
        event_id: id.as_str().into(),
    };
    assert_eq!(store.claim(&key).await.unwrap(), eventwire::Claim::Run);

    let rec = Recorder::default();
    let a = app(&url, &store, &rec, Instance(1)).await;
    a.publisher()
        .publish_with(&Job { n: 1 }, PublishOptions::new().id(id.as_str()))
        .await
        .unwrap();
    let deferrals = || rec.runs_where("hold_job", |o| matches!(o, Outcome::Deferred { .. }));
    eventually(Duration::from_secs(10), "four deferrals", || {
        deferrals() >= 4
    })
    .await;
    store.release(&key).await.unwrap();
    eventually(Duration::from_secs(15), "the event applied", || {
        rec.has_applied("hold_job", 1)
    })
    .await;

    let delays: Vec<Duration> = rec
        .runs("hold_job")
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Deferred { delay } => Some(delay),
            _ => None,
        })
        .collect();
    let ms = |d: &Duration| d.as_millis() as u64;
    assert_eq!(
        delays.iter().take(4).map(ms).collect::<Vec<_>>(),
        [100, 200, 400, 800],
        "deferral delays on {}: {delays:?}",
        server.binary.version
    );
    assert_eq!(
        rec.attempts_of("hold_job", 1),
        [1],
        "deferred {} times on {}: a deferral counted as an attempt",
        delays.len(),
        server.binary.version
    );
    for run in rec.runs("hold_job") {
        if matches!(run.outcome, Outcome::Deferred { .. }) {
            assert_eq!(run.attempt, 1, "a deferred delivery reported {run:?}");
        }
    }
    eprintln!(
        "{}: {} deferrals ({delays:?}), then attempt 1",
        server.binary.version,
        delays.len()
    );
    a.shutdown().await.unwrap();
}

//! Failures: retries with exact attempt counts, dead letters after the last
//! attempt or at once for what can never succeed, panics and timeouts
//! contained; the consumer keeps going through all of it.

use std::time::Duration;

use crate::prelude::*;
use eventwire::{HandlerErrorKind, Outcome, PublishOptions};

use crate::bus::{Bus, PATIENCE};
use crate::features::Features;
use crate::scenarios::delivery::publish_all;
use crate::support::{eventually, Arrival, Instance, Recorder};

/// An event of the scenarios here (topic `eventwire-conformance.flaky`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.flaky")]
pub struct Flaky {
    n: u32,
    fail_times: u32,
}

#[handler(group = "conformance-flaky", retries = 5, backoff = "1ms")]
async fn conformance_flaky(
    evt: Flaky,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) -> Result<(), HandlerError> {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return Ok(());
    }
    if ctx.attempt() <= evt.fail_times {
        return Err(HandlerError::msg(format!(
            "attempt {} fails",
            ctx.attempt()
        )));
    }
    rec.applied(&ctx, evt.n);
    Ok(())
}

/// A handler that fails 3 times then succeeds (retries = 5): exactly 4
/// attempts, numbered 1 to 4, one side effect, no dead letter.
pub async fn retry_then_success(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    let app = bus.app(&["conformance_flaky"], &rec).await;
    let publisher = app.publisher();
    let id = publisher
        .publish(&Flaky {
            n: 1,
            fail_times: 3,
        })
        .await
        .unwrap();
    eventually(PATIENCE, "the success after 3 failures", || {
        rec.runs_where("conformance_flaky", |o| *o == Outcome::Succeeded) == 1
    })
    .await;
    let sentinel = Flaky {
        n: u32::MAX,
        fail_times: 0,
    };
    bus.drain(&publisher, &sentinel, &rec, &[("conformance_flaky", 0)])
        .await;

    assert_eq!(rec.attempts_of("conformance_flaky", 1), [1, 2, 3, 4]);
    let runs = rec.runs("conformance_flaky");
    assert_eq!(runs.len(), 4, "3 failures then a success: {runs:#?}");
    assert!(runs.iter().all(|r| r.event_id == id));
    assert_eq!(
        runs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    for (i, run) in runs[..3].iter().enumerate() {
        let expected = format!("attempt {} fails", i + 1);
        assert!(
            matches!(&run.outcome, Outcome::Retrying { error, kind: HandlerErrorKind::Retryable, .. } if *error == expected),
            "{:?}",
            run.outcome
        );
    }
    assert_eq!(runs[3].outcome, Outcome::Succeeded);
    assert_eq!(
        rec.effects("conformance_flaky").get(&1),
        Some(&1),
        "one side effect"
    );
    assert!(bus.dead_letters().is_empty());
    app.shutdown().await.unwrap();
}

/// An event of the scenarios here (topic `eventwire-conformance.payment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.payment", version = 2)]
pub struct Payment {
    #[event(key)]
    id: u32,
    poison: bool,
}

#[handler(
    group = "conformance-payments",
    retries = 4,
    backoff = "1ms..4ms",
    concurrency = 4
)]
async fn conformance_charge(
    evt: Payment,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) -> Result<(), HandlerError> {
    if rec.arrived(&ctx, me, evt.id) == Arrival::Sentinel {
        return Ok(());
    }
    if evt.poison {
        return Err(HandlerError::msg(format!(
            "card declined for payment {}",
            evt.id
        )));
    }
    rec.applied(&ctx, evt.id);
    Ok(())
}

/// A poison event (retries = 4) among 1 000 good ones: exactly 5 attempts,
/// then a dead letter carrying the event unchanged and why it failed; the
/// others all go through meanwhile, and the poison never comes back.
pub async fn poison_is_dead_lettered_while_others_flow(bus: &Bus, features: &Features) {
    const OTHERS: u32 = 1_000;
    let rec = Recorder::default();
    let app = bus.app(&["conformance_charge"], &rec).await;
    let publisher = app.publisher();
    let poison = Payment {
        id: 0,
        poison: true,
    };
    let poison_id = publisher.publish(&poison).await.unwrap();
    let others: Vec<Payment> = (1..=OTHERS)
        .map(|id| Payment { id, poison: false })
        .collect();
    publish_all(&publisher, &others).await;
    eventually(PATIENCE, "the dead letter and the others", || {
        !bus.dead_letters().is_empty() && rec.applied_events("conformance_charge") as u32 == OTHERS
    })
    .await;
    let sentinel = Payment {
        id: u32::MAX,
        poison: false,
    };
    bus.drain(&publisher, &sentinel, &rec, &[("conformance_charge", 0)])
        .await;

    let letters = bus.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:#?}");
    let letter = &letters[0];
    assert_eq!(letter.event_id, poison_id.as_str());
    assert_eq!(letter.attempts, 5, "retries = 4 means 5 attempts");
    assert_eq!(letter.handler, "conformance_charge");
    assert_eq!(letter.group, "conformance-payments");
    assert_eq!(letter.error, "card declined for payment 0");
    assert_eq!(letter.kind, HandlerErrorKind::Retryable);
    assert_eq!(letter.topic, "eventwire.dlq.eventwire-conformance.payment");
    assert_eq!(letter.event_type, "eventwire-conformance.payment");
    assert_eq!(letter.schema_version, 2);
    assert!(letter.has_failure_time);
    assert_eq!(
        letter.stream_sequence.is_some_and(|s| s > 0),
        features.stream_positions(),
        "the stream position is recorded where the transport has one"
    );
    let original: Payment = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(original, poison, "the payload is kept unchanged");

    assert_eq!(
        rec.attempts_of("conformance_charge", 0),
        [1, 2, 3, 4, 5],
        "exactly 5 attempts, never redelivered after the dead letter"
    );
    let effects = rec.effects("conformance_charge");
    assert_eq!(effects.len() as u32, OTHERS);
    assert!(effects.values().all(|&c| c == 1));
    match bus.stored_dead_letters().await {
        Some(stored) => assert_eq!(stored, 1, "the dead letter is kept once"),
        None => eprintln!(
            "note: {} publishes dead letters without keeping them",
            features.label
        ),
    }
    app.shutdown().await.unwrap();
}

/// An event of the scenarios here (topic `eventwire-conformance.typed`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.typed", version = 2)]
pub struct Typed {
    amount: i64,
}

#[handler(group = "conformance-typed", retries = 5)]
async fn conformance_typed(
    evt: Typed,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    let n = evt.amount as u32;
    if rec.arrived(&ctx, me, n) == Arrival::Event {
        rec.applied(&ctx, n);
    }
}

/// Events that cannot be decoded (malformed payload, a newer schema version,
/// another codec) are dead-lettered at the first attempt, never retried, and
/// the handler goes on with the next event.
pub async fn decode_failure_is_dead_lettered_at_once(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    let app = bus.app(&["conformance_typed"], &rec).await;
    let publisher = app.publisher();
    let good = publisher
        .envelope(&Typed { amount: 5 }, PublishOptions::new())
        .unwrap();
    let mut malformed = good.clone();
    malformed.id = EventId::new();
    malformed.payload = br#"{"amount": "five"}"#.to_vec().into();
    let mut newer = good.clone();
    newer.id = EventId::new();
    newer.schema_version = 3;
    let mut wrong_codec = good.clone();
    wrong_codec.id = EventId::new();
    wrong_codec.content_type = "application/protobuf".into();
    for env in [malformed.clone(), newer.clone(), wrong_codec.clone(), good] {
        publisher.publish_envelope(env).await.unwrap();
    }
    let decode_failures = || {
        rec.runs_where("conformance_typed", |o| {
            matches!(
                o,
                Outcome::DeadLettered {
                    kind: HandlerErrorKind::Decode,
                    ..
                }
            )
        })
    };
    // Runs are reported after their delivery is settled: wait for them too.
    eventually(PATIENCE, "the valid event and 3 dead letters", || {
        rec.runs_where("conformance_typed", |o| *o == Outcome::Succeeded) == 1
            && bus.dead_letters().len() >= 3
            && decode_failures() == 3
    })
    .await;
    bus.drain(
        &publisher,
        &Typed { amount: -1 },
        &rec,
        &[("conformance_typed", 0)],
    )
    .await;

    assert_eq!(
        rec.count("conformance_typed"),
        1,
        "only the valid event reached the handler"
    );
    let letters = bus.dead_letters();
    assert_eq!(letters.len(), 3, "{letters:#?}");
    for l in &letters {
        assert_eq!(l.attempts, 1, "decode failures are never retried");
        assert_eq!(l.kind, HandlerErrorKind::Decode);
        assert_eq!(l.handler, "conformance_typed");
    }
    let by_id = |id: &EventId| {
        letters
            .iter()
            .find(|l| l.event_id == id.as_str())
            .unwrap_or_else(|| panic!("no dead letter for {id}"))
    };
    let error = &by_id(&malformed.id).error;
    assert!(error.contains("malformed payload"), "{error}");
    let error = &by_id(&newer.id).error;
    assert!(
        error.contains("unknown schema version 3; this consumer reads version 2"),
        "{error}"
    );
    let error = &by_id(&wrong_codec.id).error;
    assert!(error.contains("content type"), "{error}");
    assert_eq!(decode_failures(), 3);
    assert_eq!(rec.effects("conformance_typed").get(&5), Some(&1));
    app.shutdown().await.unwrap();
}

/// An event of the scenarios here (topic `eventwire-conformance.explosive`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.explosive")]
pub struct Explosive {
    n: u32,
}

#[handler(group = "conformance-explosive", retries = 1, backoff = "1ms")]
async fn conformance_explode(
    evt: Explosive,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    if evt.n == 3 || (evt.n == 5 && ctx.attempt() == 1) {
        panic!("boom on {}", evt.n);
    }
    rec.applied(&ctx, evt.n);
}

/// The panics `conformance_explode` provokes are expected: their reports (backtraces
/// are slow to print in a debug build) stay out of the output; any other
/// panic reports as usual.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .unwrap_or("");
            if !message.starts_with("boom on ") {
                report(info)
            }
        }));
    });
}

/// A panicking handler (retries = 1): the panic is caught and retried; an
/// event that panics on every attempt is dead-lettered (kind `panic`, the
/// panic message kept) after 2 attempts; the consumer handles the rest.
pub async fn panic_is_contained_and_retried(bus: &Bus, _features: &Features) {
    quiet_expected_panics();
    let rec = Recorder::default();
    let app = bus.app(&["conformance_explode"], &rec).await;
    let publisher = app.publisher();
    for n in 0..10 {
        publisher.publish(&Explosive { n }).await.unwrap();
    }
    eventually(PATIENCE, "9 survivors and a dead letter", || {
        rec.applied_events("conformance_explode") == 9 && !bus.dead_letters().is_empty()
    })
    .await;
    bus.drain(
        &publisher,
        &Explosive { n: u32::MAX },
        &rec,
        &[("conformance_explode", 0)],
    )
    .await;

    let effects = rec.effects("conformance_explode");
    assert_eq!(
        effects.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 4, 5, 6, 7, 8, 9]
    );
    assert!(effects.values().all(|&c| c == 1));
    assert_eq!(
        rec.attempts_of("conformance_explode", 5),
        [1, 2],
        "retried after a panic"
    );
    let letters = bus.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0].kind, HandlerErrorKind::Panic);
    assert_eq!(letters[0].attempts, 2);
    assert!(
        letters[0].error.contains("boom on 3"),
        "{}",
        letters[0].error
    );
    assert_eq!(rec.attempts_of("conformance_explode", 3), [1, 2]);
    app.shutdown().await.unwrap();
}

/// An event of the scenarios here (topic `eventwire-conformance.slow-once`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.slow-once")]
pub struct SlowOnce {
    n: u32,
}

#[handler(
    group = "conformance-slow-once",
    timeout = "50ms",
    retries = 2,
    backoff = "1ms"
)]
async fn conformance_slow_once(
    evt: SlowOnce,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    if ctx.attempt() == 1 {
        // Far beyond the timeout: the attempt is cut off, not waited for.
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
    rec.applied(&ctx, evt.n);
}

/// A handler that overruns its timeout (50ms) on the first attempt: the
/// attempt is stopped, reported as a timeout, and the retry succeeds.
pub async fn timeout_is_retried(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    let app = bus.app(&["conformance_slow_once"], &rec).await;
    let publisher = app.publisher();
    publisher.publish(&SlowOnce { n: 1 }).await.unwrap();
    eventually(PATIENCE, "the retry's success", || {
        rec.runs_where("conformance_slow_once", |o| *o == Outcome::Succeeded) == 1
    })
    .await;
    bus.drain(
        &publisher,
        &SlowOnce { n: u32::MAX },
        &rec,
        &[("conformance_slow_once", 0)],
    )
    .await;

    let runs = rec.runs("conformance_slow_once");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(
        matches!(&runs[0].outcome, Outcome::Retrying { kind: HandlerErrorKind::Timeout, error, .. } if error.contains("timed out after 50ms")),
        "{:?}",
        runs[0].outcome
    );
    assert_eq!(runs[1].outcome, Outcome::Succeeded);
    assert_eq!(runs[1].attempt, 2);
    assert_eq!(rec.effects("conformance_slow_once").get(&1), Some(&1));
    assert!(bus.dead_letters().is_empty());
    app.shutdown().await.unwrap();
}

/// An event of the scenarios here (topic `eventwire-conformance.delayed-retry`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.delayed-retry")]
pub struct DelayedRetry {
    n: u32,
    fail: bool,
}

#[handler(
    group = "conformance-delayed-retry",
    retries = 2,
    backoff = "400ms..800ms"
)]
async fn conformance_delayed_retry(
    evt: DelayedRetry,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) -> Result<(), HandlerError> {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return Ok(());
    }
    if evt.fail && ctx.attempt() < 3 {
        return Err(HandlerError::msg("not yet"));
    }
    rec.applied(&ctx, evt.n);
    Ok(())
}

/// A failed attempt is handed back with its backoff as the delay (a nak
/// with delay): an event failing twice (backoff 400 ms, then 800 ms) comes
/// back no earlier than each delay and within a tolerance of it (2 s, for
/// a loaded machine), and 200 events published after it all go through
/// while it waits: the delay holds the event, not the consumer.
pub async fn retry_delay_is_honoured(bus: &Bus, _features: &Features) {
    const H: &str = "conformance_delayed_retry";
    const OTHERS: u32 = 200;
    const TOLERANCE: Duration = Duration::from_secs(2);
    let rec = Recorder::default();
    let app = bus.app(&[H], &rec).await;
    let publisher = app.publisher();
    publisher
        .publish(&DelayedRetry { n: 0, fail: true })
        .await
        .unwrap();
    eventually(PATIENCE, "the first attempt", || {
        !rec.attempts_of(H, 0).is_empty()
    })
    .await;
    let others: Vec<DelayedRetry> = (1..=OTHERS)
        .map(|n| DelayedRetry { n, fail: false })
        .collect();
    publish_all(&publisher, &others).await;
    eventually(PATIENCE, "the third attempt and every other event", || {
        rec.applied_events(H) as u32 == OTHERS + 1
    })
    .await;
    let sentinel = DelayedRetry {
        n: u32::MAX,
        fail: false,
    };
    bus.drain(&publisher, &sentinel, &rec, &[(H, 0)]).await;

    let deliveries = rec.deliveries(H);
    let delayed: Vec<_> = deliveries.iter().filter(|d| d.n == 0).collect();
    let attempts: Vec<u32> = delayed.iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "two failures, then success");
    for (i, backoff) in [
        (1, Duration::from_millis(400)),
        (2, Duration::from_millis(800)),
    ] {
        let gap = delayed[i].arrived_at - delayed[i - 1].arrived_at;
        assert!(
            gap >= backoff,
            "attempt {} came {gap:?} after the one before, sooner than its {backoff:?} backoff",
            i + 1
        );
        assert!(
            gap <= backoff + TOLERANCE,
            "attempt {} came {gap:?} after the one before: its backoff is {backoff:?}",
            i + 1
        );
    }
    let last_other = deliveries
        .iter()
        .filter(|d| d.n != 0)
        .map(|d| d.arrived_at)
        .max()
        .unwrap();
    assert!(
        last_other < delayed[2].arrived_at,
        "the other events waited for the delayed event's retries"
    );
    assert_eq!(
        rec.effects(H).values().copied().collect::<Vec<_>>(),
        vec![1; OTHERS as usize + 1],
        "each event applied once"
    );
    app.shutdown().await.unwrap();
}

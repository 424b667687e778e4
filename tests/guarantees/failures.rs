//! Failures: retries with exact attempt counts, dead letters after the last
//! attempt or at once for what can never succeed, panics and timeouts
//! contained; the consumer keeps going through all of it.

use eventwire::prelude::*;
use eventwire::{HandlerErrorKind, Outcome, PublishOptions};

use crate::bus::{Bus, PATIENCE};
use crate::delivery::publish_all;
use crate::features::Features;
use crate::support::{eventually, Arrival, Instance, Recorder};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.flaky")]
pub struct Flaky {
    n: u32,
    fail_times: u32,
}

#[handler(group = "g-flaky", retries = 5, backoff = "1ms")]
async fn flaky(
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
    let app = bus.app(&["flaky"], &rec).await;
    let publisher = app.publisher();
    let id = publisher
        .publish(&Flaky {
            n: 1,
            fail_times: 3,
        })
        .await
        .unwrap();
    eventually(PATIENCE, "the success after 3 failures", || {
        rec.runs_where("flaky", |o| *o == Outcome::Succeeded) == 1
    })
    .await;
    let sentinel = Flaky {
        n: u32::MAX,
        fail_times: 0,
    };
    bus.drain(&publisher, &sentinel, &rec, &[("flaky", 0)])
        .await;

    assert_eq!(rec.attempts_of("flaky", 1), [1, 2, 3, 4]);
    let runs = rec.runs("flaky");
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
    assert_eq!(rec.effects("flaky").get(&1), Some(&1), "one side effect");
    assert!(bus.dead_letters().is_empty());
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.payment", version = 2)]
pub struct Payment {
    #[event(key)]
    id: u32,
    poison: bool,
}

#[handler(
    group = "g-payments",
    retries = 4,
    backoff = "1ms..4ms",
    concurrency = 4
)]
async fn charge(
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

/// A poison event (retries = 4) among 300 good ones: exactly 5 attempts,
/// then a dead letter carrying the event unchanged and why it failed; the
/// others all go through meanwhile, and the poison never comes back.
pub async fn poison_is_dead_lettered_while_others_flow(bus: &Bus, features: &Features) {
    const OTHERS: u32 = 300;
    let rec = Recorder::default();
    let app = bus.app(&["charge"], &rec).await;
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
        !bus.dead_letters().is_empty() && rec.applied_events("charge") as u32 == OTHERS
    })
    .await;
    let sentinel = Payment {
        id: u32::MAX,
        poison: false,
    };
    bus.drain(&publisher, &sentinel, &rec, &[("charge", 0)])
        .await;

    let letters = bus.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:#?}");
    let letter = &letters[0];
    assert_eq!(letter.event_id, poison_id.as_str());
    assert_eq!(letter.attempts, 5, "retries = 4 means 5 attempts");
    assert_eq!(letter.handler, "charge");
    assert_eq!(letter.group, "g-payments");
    assert_eq!(letter.error, "card declined for payment 0");
    assert_eq!(letter.kind, HandlerErrorKind::Retryable);
    assert_eq!(letter.topic, "eventwire.dlq.test.guarantees.payment");
    assert_eq!(letter.event_type, "test.guarantees.payment");
    assert_eq!(letter.schema_version, 2);
    assert!(letter.has_failure_time);
    assert_eq!(
        letter.stream_sequence.is_some_and(|s| s > 0),
        features.stream_positions,
        "the stream position is recorded where the transport has one"
    );
    let original: Payment = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(original, poison, "the payload is kept unchanged");

    assert_eq!(
        rec.attempts_of("charge", 0),
        [1, 2, 3, 4, 5],
        "exactly 5 attempts, never redelivered after the dead letter"
    );
    let effects = rec.effects("charge");
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

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.typed", version = 2)]
pub struct Typed {
    amount: i64,
}

#[handler(group = "g-typed", retries = 5)]
async fn typed(evt: Typed, ctx: Context, State(rec): State<Recorder>, State(me): State<Instance>) {
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
    let app = bus.app(&["typed"], &rec).await;
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
        rec.runs_where("typed", |o| {
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
        rec.runs_where("typed", |o| *o == Outcome::Succeeded) == 1
            && bus.dead_letters().len() >= 3
            && decode_failures() == 3
    })
    .await;
    bus.drain(&publisher, &Typed { amount: -1 }, &rec, &[("typed", 0)])
        .await;

    assert_eq!(
        rec.count("typed"),
        1,
        "only the valid event reached the handler"
    );
    let letters = bus.dead_letters();
    assert_eq!(letters.len(), 3, "{letters:#?}");
    for l in &letters {
        assert_eq!(l.attempts, 1, "decode failures are never retried");
        assert_eq!(l.kind, HandlerErrorKind::Decode);
        assert_eq!(l.handler, "typed");
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
    assert_eq!(rec.effects("typed").get(&5), Some(&1));
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.explosive")]
pub struct Explosive {
    n: u32,
}

#[handler(group = "g-explosive", retries = 1, backoff = "1ms")]
async fn explode(
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

/// The panics `explode` provokes are expected: their reports (backtraces
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
    let app = bus.app(&["explode"], &rec).await;
    let publisher = app.publisher();
    for n in 0..10 {
        publisher.publish(&Explosive { n }).await.unwrap();
    }
    eventually(PATIENCE, "9 survivors and a dead letter", || {
        rec.applied_events("explode") == 9 && !bus.dead_letters().is_empty()
    })
    .await;
    bus.drain(
        &publisher,
        &Explosive { n: u32::MAX },
        &rec,
        &[("explode", 0)],
    )
    .await;

    let effects = rec.effects("explode");
    assert_eq!(
        effects.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 4, 5, 6, 7, 8, 9]
    );
    assert!(effects.values().all(|&c| c == 1));
    assert_eq!(
        rec.attempts_of("explode", 5),
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
    assert_eq!(rec.attempts_of("explode", 3), [1, 2]);
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.slow-once")]
pub struct SlowOnce {
    n: u32,
}

#[handler(group = "g-slow-once", timeout = "50ms", retries = 2, backoff = "1ms")]
async fn slow_once(
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
    let app = bus.app(&["slow_once"], &rec).await;
    let publisher = app.publisher();
    publisher.publish(&SlowOnce { n: 1 }).await.unwrap();
    eventually(PATIENCE, "the retry's success", || {
        rec.runs_where("slow_once", |o| *o == Outcome::Succeeded) == 1
    })
    .await;
    bus.drain(
        &publisher,
        &SlowOnce { n: u32::MAX },
        &rec,
        &[("slow_once", 0)],
    )
    .await;

    let runs = rec.runs("slow_once");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(
        matches!(&runs[0].outcome, Outcome::Retrying { kind: HandlerErrorKind::Timeout, error, .. } if error.contains("timed out after 50ms")),
        "{:?}",
        runs[0].outcome
    );
    assert_eq!(runs[1].outcome, Outcome::Succeeded);
    assert_eq!(runs[1].attempt, 2);
    assert_eq!(rec.effects("slow_once").get(&1), Some(&1));
    assert!(bus.dead_letters().is_empty());
    app.shutdown().await.unwrap();
}

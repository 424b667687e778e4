//! What happened to each event: per-handler outcomes and counters, and,
//! with the `metrics` feature, the same through the `metrics` facade.
//!
//! # Metrics (feature `metrics`)
//!
//! Recorded through the [`metrics`](https://docs.rs/metrics) facade, so any
//! recorder (Prometheus exporter, StatsD, ...) receives them; with none
//! installed they cost a check of the global recorder. Names follow the
//! Prometheus conventions:
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `eventwire_published_total` | counter | `transport`, `topic` | events whose publish returned `Ok` |
//! | `eventwire_publish_failures_total` | counter | `transport`, `topic` | publishes that returned an error |
//! | `eventwire_handled_total` | counter | `transport`, `topic`, `group`, `handler`, `outcome` | handler runs by outcome: `succeeded`, `retrying`, `dead_lettered`, `dead_letter_failed`, `dropped`, `duplicate`, `deferred` |
//! | `eventwire_handler_duration_seconds` | histogram | `transport`, `topic`, `group`, `handler`, `outcome` | time in the handler per run |
//! | `eventwire_end_to_end_latency_seconds` | histogram | `transport`, `topic`, `group`, `handler` | from the event's `ce-time` to its handler's success |
//! | `eventwire_handlers_in_flight` | gauge | `group`, `handler` | attempts running now |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::delivery::HandlerErrorKind;
use crate::envelope::EventId;

/// The outcome of one attempt of one handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler succeeded; the event was acknowledged.
    Succeeded,
    /// The event was already processed by this handler (a redelivery or a
    /// duplicate publish); acknowledged without running the handler.
    Duplicate,
    /// Another delivery of the same event was running; this one was handed
    /// back to the transport, to come again after `delay` (growing with each
    /// deferral of the delivery). Not an attempt: the handler did not run,
    /// and the next attempt number does not count it.
    Deferred {
        /// Delay before it comes again.
        delay: Duration,
    },
    /// The attempt failed; the event will be delivered again after `delay`.
    Retrying {
        /// The error, as text.
        error: String,
        /// Its class.
        kind: HandlerErrorKind,
        /// Delay before the next attempt.
        delay: Duration,
    },
    /// The handler gave up; the event is in dead letters.
    DeadLettered {
        /// The error, as text.
        error: String,
        /// Its class.
        kind: HandlerErrorKind,
    },
    /// The handler gave up but the dead letter could not be stored; the event
    /// was handed back (the transport was closing) and will be delivered
    /// again.
    DeadLetterFailed {
        /// The handler's error.
        error: String,
        /// Why the dead letter failed.
        dead_letter_error: String,
    },
    /// The handler gave up and its dead letter failed on every try: the
    /// event was terminated rather than redelivered forever (which would
    /// stall its consumer). Counted in [`HandlerMetrics::dropped`] and
    /// logged at error level with the event id, topic and both errors.
    DeadLetterDropped {
        /// The handler's error.
        error: String,
        /// Why the last try of the dead letter failed.
        dead_letter_error: String,
        /// Tries of the dead letter made.
        tries: u32,
    },
}

/// One attempt of one handler on one event.
#[derive(Debug, Clone)]
pub struct HandlerRun {
    /// The handler.
    pub handler: &'static str,
    /// Its group.
    pub group: Arc<str>,
    /// The event.
    pub event_id: EventId,
    /// The event's topic.
    pub topic: String,
    /// Attempt number, 1 for the first.
    pub attempt: u32,
    /// What happened.
    pub outcome: Outcome,
    /// How long the attempt took.
    pub elapsed: Duration,
}

/// Receives every [`HandlerRun`] of an app (the test harness records them;
/// an exporter can turn them into metrics).
pub trait Observer: Send + Sync + 'static {
    /// Called after every attempt, once its outcome is known and before the
    /// delivery is settled: a transport that reports an event settled (an
    /// idle in-memory bus) has reported its run here first.
    fn handler_finished(&self, run: &HandlerRun);
}

/// Counters of one handler.
#[derive(Debug, Default)]
pub(crate) struct HandlerCounters {
    pub(crate) succeeded: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) busy_nanos: AtomicU64,
}

impl Outcome {
    /// The `outcome` label of the metrics: `succeeded`, `retrying`,
    /// `dead_lettered`, `dead_letter_failed`, `dropped`, `duplicate` or
    /// `deferred`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Duplicate => "duplicate",
            Outcome::Deferred { .. } => "deferred",
            Outcome::Retrying { .. } => "retrying",
            Outcome::DeadLettered { .. } => "dead_lettered",
            Outcome::DeadLetterFailed { .. } => "dead_letter_failed",
            Outcome::DeadLetterDropped { .. } => "dropped",
        }
    }
}

/// Emission through the `metrics` facade.
#[cfg(feature = "metrics")]
pub(crate) mod export {
    use std::time::{Duration, SystemTime};

    use metrics::{counter, gauge, histogram, SharedString};

    use super::Outcome;

    /// One handler run, once its outcome is known.
    pub(crate) fn handler_run(
        transport: &'static str,
        topic: &str,
        group: &str,
        handler: &'static str,
        outcome: &Outcome,
        elapsed: Duration,
        event_time: SystemTime,
    ) {
        let topic = SharedString::from(topic.to_owned());
        let group = SharedString::from(group.to_owned());
        let labels = [
            ("transport", SharedString::const_str(transport)),
            ("topic", topic.clone()),
            ("group", group.clone()),
            ("handler", SharedString::const_str(handler)),
            ("outcome", SharedString::const_str(outcome.label())),
        ];
        counter!("eventwire_handled_total", &labels).increment(1);
        histogram!("eventwire_handler_duration_seconds", &labels).record(elapsed.as_secs_f64());
        if *outcome == Outcome::Succeeded {
            if let Ok(latency) = SystemTime::now().duration_since(event_time) {
                histogram!(
                    "eventwire_end_to_end_latency_seconds",
                    "transport" => transport,
                    "topic" => topic,
                    "group" => group,
                    "handler" => handler,
                )
                .record(latency.as_secs_f64());
            }
        }
    }

    /// One more (or one less) attempt running.
    pub(crate) fn in_flight(group: &str, handler: &'static str, delta: f64) {
        gauge!("eventwire_handlers_in_flight", "group" => group.to_owned(), "handler" => handler)
            .increment(delta);
    }
}

impl HandlerCounters {
    pub(crate) fn record(&self, outcome: &Outcome, elapsed: Duration) {
        let counter = match outcome {
            Outcome::Succeeded => &self.succeeded,
            Outcome::Duplicate | Outcome::Deferred { .. } => &self.duplicates,
            Outcome::Retrying { .. } | Outcome::DeadLetterFailed { .. } => &self.retried,
            Outcome::DeadLettered { .. } => &self.dead_lettered,
            Outcome::DeadLetterDropped { .. } => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.busy_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn snapshot(&self) -> HandlerMetrics {
        HandlerMetrics {
            succeeded: self.succeeded.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// A snapshot of one handler's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandlerMetrics {
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Deliveries skipped by the idempotency guard.
    pub duplicates: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Events given up and dead-lettered.
    pub dead_lettered: u64,
    /// Events given up whose dead letter failed on every try, terminated
    /// ([`Outcome::DeadLetterDropped`]).
    pub dropped: u64,
    /// Attempts running now.
    pub in_flight: u64,
    /// Time spent in the handler, all attempts summed.
    pub busy: Duration,
}

/// Counters of every handler of an app, by handler name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Per handler.
    pub handlers: BTreeMap<&'static str, HandlerMetrics>,
}

impl Metrics {
    pub(crate) fn collect<'a>(
        it: impl Iterator<Item = (&'static str, &'a HandlerCounters)>,
    ) -> Self {
        Metrics {
            handlers: it.map(|(name, c)| (name, c.snapshot())).collect(),
        }
    }
}

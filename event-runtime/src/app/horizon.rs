//! The start-up check of the idempotency guard against the transport: does
//! the guard remember a completed event for as long as the transport may
//! deliver it again, and does it see every instance of the service?
//!
//! Horizons compared (JetStream; other transports never redeliver what was
//! acknowledged and are not checked):
//!
//! - the *redelivery horizon* of a handler: how long after its first
//!   delivery an event may come again, `ack_wait` × attempts (eventwire's
//!   `max_deliver`) plus the retry backoff. A copy delivered after the
//!   guard forgot the event runs the handler again.
//! - the stream's *duplicate window*: re-publishes of an event id within it
//!   are dropped by the server; later ones are stored again, and only the
//!   guard catches them.
//!
//! A store that forgets sooner than one ack wait is certainly wrong (any
//! lost acknowledgement duplicates an effect): a typed error. Shorter
//! horizons are warnings; a store bounded by a number of keys is reported
//! with the event rate above which it forgets too soon.

use std::time::Duration;

use humantime::format_duration;

use crate::delivery::RetryPolicy;
use crate::handler::IdempotencyStore;
use crate::registry::ValidationError;
use crate::transport::{RedeliveryWindows, Transport};

/// What the check needs of one handler.
pub(super) struct HandlerHorizon {
    pub(super) name: &'static str,
    pub(super) retry: RetryPolicy,
    pub(super) timeout: Option<Duration>,
}

/// How long after its first delivery an event may be delivered again to
/// a handler with this retry policy.
fn redelivery_horizon(windows: &RedeliveryWindows, retry: &RetryPolicy) -> Duration {
    let attempts = retry.max_attempts();
    let waits = windows.ack_wait.saturating_mul(attempts);
    (1..attempts).fold(waits, |total, n| {
        total.saturating_add(retry.backoff.delay(n))
    })
}

/// Warns when the default, process-local guard runs on an at-least-once
/// transport: the app cannot tell how many instances run.
pub(super) fn warn_process_local_guard(service: &str, transport: &dyn Transport) {
    tracing::warn!(
        service,
        transport = transport.kind(),
        "the idempotency guard is in memory, in this process: if this service runs more than one instance, duplicates across instances are not caught: give `AppBuilder::idempotency` a shared store"
    );
}

/// Compares the store's retention with the transport's redelivery. `Err`
/// only for a retention shorter than the ack wait; the rest is logged.
pub(super) fn check_horizons(
    store: &dyn IdempotencyStore,
    transport: &dyn Transport,
    handlers: &[HandlerHorizon],
) -> Result<(), ValidationError> {
    let (Some(windows), Some(retention)) = (transport.redelivery(), store.retention()) else {
        return Ok(());
    };
    let Some((longest, horizon)) = handlers
        .iter()
        .map(|h| (h.name, redelivery_horizon(&windows, &h.retry)))
        .max_by_key(|(_, horizon)| *horizon)
    else {
        return Ok(());
    };
    if let Some(age) = retention.max_age {
        if age < windows.ack_wait {
            return Err(ValidationError::IdempotencyRetention {
                retention: age,
                ack_wait: windows.ack_wait,
            });
        }
        if age < horizon {
            tracing::warn!(
                handler = longest,
                retention = %format_duration(age),
                redelivery_horizon = %format_duration(horizon),
                "the idempotency guard forgets a completed event after {}, but handler `{longest}` may get it again up to {} after its first delivery (ack wait {} x attempts, plus backoff): a copy delivered later runs the handler again; keep completed events longer",
                format_duration(age),
                format_duration(horizon),
                format_duration(windows.ack_wait),
            );
        }
        if let Some(window) = windows.duplicate_window.filter(|w| age < *w) {
            tracing::warn!(
                retention = %format_duration(age),
                duplicate_window = %format_duration(window),
                "the stream drops re-published event ids for {}, the idempotency guard remembers completed events for only {}: it catches no re-publish the stream lets through; keep completed events longer than the duplicate window",
                format_duration(window),
                format_duration(age),
            );
        }
    }
    if let Some(keys) = retention.max_keys {
        let rate = keys as f64 / horizon.as_secs_f64().max(1e-3);
        tracing::info!(
            max_keys = keys,
            redelivery_horizon = %format_duration(horizon),
            "the idempotency guard keeps the last {keys} completed events: above {rate:.0} events/s (of every handler it guards) it forgets events the transport may still deliver again within {}",
            format_duration(horizon),
        );
    }
    if let Some(claim_timeout) = retention.claim_timeout {
        for h in handlers {
            if let Some(timeout) = h.timeout.filter(|t| *t > claim_timeout) {
                tracing::warn!(
                    handler = h.name,
                    timeout = %format_duration(timeout),
                    claim_timeout = %format_duration(claim_timeout),
                    "handler `{}` may run for {}, but the idempotency guard takes a claim for dead after {}: a copy delivered meanwhile runs too; raise the claim timeout above the handler's timeout",
                    h.name,
                    format_duration(timeout),
                    format_duration(claim_timeout),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Backoff;

    #[test]
    fn horizon_is_ack_wait_times_attempts_plus_backoff() {
        let windows = RedeliveryWindows::new(Duration::from_secs(30), None);
        let retry = RetryPolicy {
            retries: 3,
            backoff: Backoff::DEFAULT,
        };
        // 4 x 30 s + 100 + 200 + 400 ms
        assert_eq!(
            redelivery_horizon(&windows, &retry),
            Duration::from_millis(120_700)
        );
    }
}

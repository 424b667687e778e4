//! Counters of what a NATS connection lost or survived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What happened on a NATS connection that a user of at-most-once delivery
/// needs to see: every count here is an event that may have been lost or
/// delayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatsStats {
    /// The server or the client dropped messages for a subscription that did
    /// not keep up (NATS "slow consumer").
    pub slow_consumer_events: u64,
    /// Times the connection was lost.
    pub disconnects: u64,
    /// Times it was re-established.
    pub reconnects: u64,
    /// Publishes that failed (connection closed, buffer full while disconnected).
    pub failed_publishes: u64,
    /// Received messages that were not eventwire envelopes (dead-lettered).
    pub malformed_messages: u64,
    /// Consumer recoveries after a missed heartbeat, a deleted consumer or a
    /// server restart (JetStream).
    pub consumer_recoveries: u64,
    /// Malformed messages whose dead letter failed (core NATS: its one try;
    /// JetStream: on 4 deliveries), dropped so they cannot stall their
    /// consumer.
    pub malformed_dropped: u64,
    /// Messages the server stopped delivering at the consumer's
    /// `max_deliver` (its advisory), then dead-lettered from the stream by
    /// sequence (JetStream).
    pub max_deliveries: u64,
    /// Subscriptions and publishes the server refused for lack of
    /// permission. A refused core NATS publish has already returned `Ok`
    /// (the server says so afterwards): this count and a warning naming the
    /// subject are where it shows; a refused subscription fails `build()`.
    pub permission_violations: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    /// Woken on every reconnection: pull consumers renew their pull
    /// requests at once instead of waiting for the old ones to expire.
    pub(crate) reconnected: tokio::sync::Notify,
    pub(crate) slow_consumer_events: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) failed_publishes: AtomicU64,
    pub(crate) malformed_messages: AtomicU64,
    pub(crate) consumer_recoveries: AtomicU64,
    pub(crate) malformed_dropped: AtomicU64,
    pub(crate) max_deliveries: AtomicU64,
    pub(crate) permission_violations: AtomicU64,
    /// Woken on every refusal.
    pub(crate) refusal_seen: tokio::sync::Notify,
    /// The subjects of the last refusals, newest last (at most 64).
    pub(crate) refusals: std::sync::Mutex<std::collections::VecDeque<Refusal>>,
}

/// What the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) subscription: bool,
    pub(crate) subject: String,
    /// `permission_violations` after this one was counted.
    pub(crate) seq: u64,
}

impl Refusal {
    /// Reads `Permissions Violation for Subscription to "x"` (or `Publish
    /// to "x"`, with an optional ` using queue "q"`), as the server writes it.
    pub(crate) fn parse(error: &str) -> Option<Refusal> {
        let rest = error
            .trim()
            .trim_matches('\'')
            .strip_prefix("Permissions Violation for ")?;
        let (what, rest) = rest.split_once(" to \"")?;
        let (subject, _) = rest.split_once('"')?;
        Some(Refusal {
            subscription: what.eq_ignore_ascii_case("subscription"),
            subject: subject.to_owned(),
            seq: 0,
        })
    }
}

impl StatsCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NatsStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NatsStats {
            slow_consumer_events: l(&self.slow_consumer_events),
            disconnects: l(&self.disconnects),
            reconnects: l(&self.reconnects),
            failed_publishes: l(&self.failed_publishes),
            malformed_messages: l(&self.malformed_messages),
            consumer_recoveries: l(&self.consumer_recoveries),
            malformed_dropped: l(&self.malformed_dropped),
            max_deliveries: l(&self.max_deliveries),
            permission_violations: l(&self.permission_violations),
        }
    }

    pub(crate) fn refused(&self, mut refusal: Refusal) {
        let mut r = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        refusal.seq = self.permission_violations.fetch_add(1, Ordering::Relaxed) + 1;
        if r.len() == 64 {
            r.pop_front();
        }
        r.push_back(refusal);
        drop(r);
        self.refusal_seen.notify_waiters();
    }

    /// Waits at most `within` for the refusal of a subscription to
    /// `subject`; returns at once when it is already known.
    pub(crate) async fn wait_for_refusal(&self, subject: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = self.refusal_seen.notified();
            if self.subscription_refused(subject) {
                return;
            }
            if tokio::time::timeout_at(deadline, seen).await.is_err() {
                return;
            }
        }
    }

    /// Refusals counted so far.
    pub(crate) fn refusal_count(&self) -> u64 {
        self.permission_violations.load(Ordering::Relaxed)
    }

    /// Ends when the server refuses a publish to `subject` (a refusal
    /// counted after `since`); pending otherwise.
    pub(crate) async fn publish_refused(&self, subject: &str, since: u64) {
        loop {
            let seen = self.refusal_seen.notified();
            let refused = self
                .refusals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|r| !r.subscription && r.seq > since && r.subject == subject);
            if refused {
                return;
            }
            seen.await;
        }
    }

    /// Whether the server refused a subscription to `subject`.
    pub(crate) fn subscription_refused(&self, subject: &str) -> bool {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|r| r.subscription && r.subject == subject)
    }
}

#[cfg(test)]
mod tests {
    use super::Refusal;

    #[test]
    fn permission_violations_as_the_server_writes_them() {
        assert_eq!(
            Refusal::parse(
                "Permissions Violation for Subscription to \"orders.created\" using queue \"g__h\""
            ),
            Some(Refusal {
                subscription: true,
                subject: "orders.created".into(),
                seq: 0,
            })
        );
        assert_eq!(
            Refusal::parse("'Permissions Violation for Publish to \"a.b\"'"),
            Some(Refusal {
                subscription: false,
                subject: "a.b".into(),
                seq: 0,
            })
        );
        assert_eq!(Refusal::parse("Authorization Violation"), None);
    }
}

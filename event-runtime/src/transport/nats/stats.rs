//! Counters of what a NATS connection lost or survived.

use std::sync::atomic::{AtomicU64, Ordering};

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
        }
    }
}

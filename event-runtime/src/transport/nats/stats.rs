//! Counters of what a NATS connection lost or survived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// Connects with an event callback that feeds the counters and the logs.
pub(crate) async fn connect(
    config: &super::NatsConfig,
    stats: Arc<StatsCounters>,
) -> Result<async_nats::Client, crate::transport::TransportError> {
    let connected_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = config.connect_options()?.event_callback(move |event| {
        let stats = stats.clone();
        let connected_once = connected_once.clone();
        async move {
            match event {
                async_nats::Event::SlowConsumer(sid) => {
                    StatsCounters::bump(&stats.slow_consumer_events);
                    tracing::warn!(
                        subscription = sid,
                        "NATS slow consumer: messages were dropped"
                    );
                }
                async_nats::Event::Disconnected => {
                    StatsCounters::bump(&stats.disconnects);
                    tracing::warn!("NATS connection lost; reconnecting");
                }
                async_nats::Event::Connected => {
                    if connected_once.swap(true, Ordering::Relaxed) {
                        StatsCounters::bump(&stats.reconnects);
                        stats.reconnected.notify_waiters();
                        tracing::info!("NATS connection re-established");
                    }
                }
                other => tracing::info!(event = %other, "NATS connection event"),
            }
        }
    });
    let servers: Vec<async_nats::ServerAddr> = config
        .servers
        .iter()
        .map(|s| {
            s.parse().map_err(|e| {
                crate::transport::TransportError::Config(format!(
                    "invalid server address `{s}`: {e}"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    options.connect(servers).await.map_err(|e| {
        crate::transport::TransportError::io(
            format!("cannot connect to NATS at {}", config.servers.join(", ")),
            e,
        )
    })
}

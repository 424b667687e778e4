//! Connecting to NATS: one client per transport, with an event callback
//! that feeds the connection's counters and the logs.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::config::NatsConfig;
use super::stats::StatsCounters;
use crate::error::{TransportError, TransportErrorKind};

/// Connects with an event callback that feeds the counters and the logs.
pub(crate) async fn connect(
    config: &NatsConfig,
    stats: Arc<StatsCounters>,
) -> Result<async_nats::Client, TransportError> {
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
            s.parse()
                .map_err(|e| TransportError::config(format!("invalid server address `{s}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    options.connect(servers).await.map_err(|e| {
        TransportError::with_source(
            TransportErrorKind::Connect,
            format!("cannot connect to NATS at {}", config.servers.join(", ")),
            e,
        )
    })
}

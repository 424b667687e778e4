//! Connecting to NATS: one client per transport, with an event callback
//! that feeds the connection's counters and the logs.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::config::NatsConfig;
use super::stats::{Refusal, StatsCounters};
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
                async_nats::Event::ServerError(async_nats::ServerError::Other(error)) => {
                    match Refusal::parse(&error) {
                        Some(refusal) => {
                            tracing::warn!(subject = %refusal.subject, subscription = refusal.subscription, "the NATS server refused this for lack of permission: {error}");
                            stats.refused(refusal);
                        }
                        None => tracing::warn!(%error, "NATS server error"),
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

/// Whether `publish` must flush each event itself: a connection made on a
/// current-thread runtime. There no `Drop` can wait for the connection task
/// (it runs on the very thread that would wait), so publishes still in the
/// client's buffer when the program returns from `main` would be lost.
pub(crate) fn flush_each_publish(runtime: &tokio::runtime::Handle) -> bool {
    runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
}

/// Flushes `client` from synchronous code (a `Drop`): the flush runs on
/// the client's runtime while this thread waits, at most `within`. On a
/// worker thread of a multi-thread runtime the worker is handed to another
/// thread first (`block_in_place`), so the connection task cannot be stuck
/// behind the waiting thread. No tokio timer is used: this may run while
/// the runtime shuts down, where timers panic.
pub(crate) fn flush_blocking(
    client: &async_nats::Client,
    runtime: &tokio::runtime::Handle,
    within: std::time::Duration,
) -> Result<(), &'static str> {
    use std::sync::mpsc::RecvTimeoutError;
    use tokio::runtime::{Handle, RuntimeFlavor};

    let current = Handle::try_current().ok();
    if current
        .as_ref()
        .is_some_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread)
    {
        return Err("dropped on a current-thread runtime, which cannot wait for its connection");
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let flushing = client.clone();
    // On a runtime that is shutting down the task is dropped at once, and
    // with it `tx`: the wait below ends.
    runtime.spawn(async move {
        let _ = tx.send(flushing.flush().await.is_ok());
    });
    let wait = move || rx.recv_timeout(within);
    let waited = match current {
        None => wait(),
        Some(_) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(wait)
        }))
        .map_err(|_| "cannot block on this thread")?,
    };
    match waited {
        Ok(true) => Ok(()),
        Ok(false) => Err("the flush failed"),
        Err(RecvTimeoutError::Timeout) => Err("the flush did not finish in time"),
        Err(RecvTimeoutError::Disconnected) => Err("the runtime of the connection has stopped"),
    }
}

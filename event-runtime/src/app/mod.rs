//! The app: collects the registered handlers, validates them, subscribes them
//! to the transport, runs until told to stop, then drains.
//!
//! [`AppBuilder`] (in `builder.rs`) configures and starts an [`App`]; the
//! transport is chosen from a URL in `url.rs`; this file holds the running
//! app and its lifecycle.

mod builder;
mod error;
mod horizon;
mod url;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

pub use self::builder::AppBuilder;
pub use self::error::{Error, Result, UrlError, UrlErrorKind};
use crate::handler::dispatch::HandlerRuntime;
use crate::observe::Metrics;
use crate::publisher::Publisher;
use crate::stop::StopSignal;
use crate::transport::{Subscription, Transport};

/// The environment variable read by [`AppBuilder::transport_from_env`].
pub const URL_ENV: &str = "EVENTWIRE_URL";

/// Default time [`App::shutdown`] waits for running handlers.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// A running set of handlers connected to a transport.
///
/// ```
/// use eventwire::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eventwire::Result<()> {
/// let app = App::builder().service("docs").build().await?;
/// let publisher = app.publisher(); // clone it into HTTP handlers, tasks, ...
/// # let _ = publisher;
/// // app.run().await  // until SIGINT / SIGTERM
/// let report = app.shutdown().await?;
/// assert_eq!(report.aborted, 0);
/// # Ok(()) }
/// ```
pub struct App {
    service: Arc<str>,
    transport: Arc<dyn Transport>,
    owns_transport: bool,
    publisher: Publisher,
    handlers: Vec<Arc<HandlerRuntime>>,
    subscriptions: Vec<Arc<dyn Subscription>>,
    tasks: JoinSet<()>,
    stop: StopSignal,
    shutdown_timeout: Duration,
    /// `shutdown` ran (it flushes and closes what the app owns).
    shut_down: bool,
}

/// The longest a dropped [`App`] waits for its transport to flush.
pub const FLUSH_ON_DROP_TIMEOUT: Duration = Duration::from_secs(5);

impl Drop for App {
    /// Dropped without [`App::shutdown`] (returning from `main` right after
    /// a publish): the transport is flushed, waiting at most
    /// [`FLUSH_ON_DROP_TIMEOUT`], so that events whose `publish` returned
    /// `Ok` leave the process. Only the app does this, not publisher clones
    /// or handler contexts, which may be dropped in tasks as the runtime
    /// shuts down, where nothing can wait.
    fn drop(&mut self) {
        if !self.shut_down {
            self.transport.flush_before_drop(FLUSH_ON_DROP_TIMEOUT);
        }
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("service", &self.service)
            .field("transport", &self.transport.kind())
            .field("handlers", &self.handler_names())
            .finish()
    }
}

/// What [`App::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Time from the stop signal until every worker ended.
    pub elapsed: Duration,
    /// Workers stopped at the deadline while still running a handler; their
    /// events were left for redelivery.
    pub aborted: usize,
}

/// Triggers the shutdown of an [`App`] from elsewhere (a task, a test).
#[derive(Debug, Clone)]
pub struct ShutdownHandle(StopSignal);

impl ShutdownHandle {
    /// Asks the app to stop; [`App::run`] returns after draining.
    pub fn shutdown(&self) {
        self.0.stop()
    }
}

impl App {
    /// Starts configuring an app.
    pub fn builder() -> AppBuilder {
        AppBuilder::default()
    }

    /// A publisher bound to this app's transport and service name.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The transport's kind (`memory`, `nats`, `jetstream`).
    pub fn transport_kind(&self) -> &'static str {
        self.transport.kind()
    }

    /// Names of the handlers this app runs.
    pub fn handler_names(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|h| h.name).collect()
    }

    /// Counters of every handler.
    pub fn metrics(&self) -> Metrics {
        Metrics::collect(self.handlers.iter().map(|h| (h.name, &h.counters)))
    }

    /// Waits until no event is queued or in flight (in-memory bus only).
    pub async fn wait_idle(&self) -> Result<()> {
        match self.transport.wait_idle() {
            Some(idle) => {
                idle.await;
                Ok(())
            }
            None => Err(Error::Unsupported {
                transport: self.transport.kind(),
                operation: "tell when it is idle",
            }),
        }
    }

    /// A handle that stops the app from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Runs until SIGINT or SIGTERM (or a [`ShutdownHandle`]), then drains.
    pub async fn run(self) -> Result<()> {
        let stop = self.stop.clone();
        let signal = tokio::select! {
            r = shutdown_signal() => r,
            _ = stop.stopped() => Ok(()),
        };
        self.shutdown().await?;
        signal
    }

    /// Runs until `until` completes (or a [`ShutdownHandle`] fires), then drains.
    pub async fn run_until<F: Future>(self, until: F) -> Result<ShutdownReport> {
        let stop = self.stop.clone();
        tokio::select! {
            _ = until => {}
            _ = stop.stopped() => {}
        }
        self.shutdown().await
    }

    /// Stops taking new events, waits for running handlers up to the
    /// shutdown timeout, stops the rest (their events are redelivered, and
    /// their idempotency claims released, so that another instance sharing
    /// the store runs them at once), and
    /// closes the transport when the app created it. No task is left running.
    pub async fn shutdown(mut self) -> Result<ShutdownReport> {
        let started = Instant::now();
        self.stop.stop();
        for s in &self.subscriptions {
            s.stop().await;
        }
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        let mut aborted = 0;
        if drained.is_err() {
            aborted = self.tasks.len();
            tracing::warn!(
                running = aborted,
                timeout = ?self.shutdown_timeout,
                "shutdown deadline passed; stopping running handlers, their events will be redelivered"
            );
            self.tasks.shutdown().await;
        }
        for s in &self.subscriptions {
            s.close().await;
        }
        self.shut_down = true;
        if self.owns_transport {
            self.transport.close().await?;
        }
        tracing::info!(service = %self.service, elapsed = ?started.elapsed(), "eventwire app stopped");
        Ok(ShutdownReport {
            elapsed: started.elapsed(),
            aborted,
        })
    }
}

async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(Error::Signal),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(Error::Signal)
    }
}

//! The app: collects the registered handlers, validates them, subscribes them
//! to the transport, runs until told to stop, then drains.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stop::StopSignal;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::handler::dispatch::HandlerRuntime;
use crate::handler::{Durability, IdempotencyStore, InMemoryIdempotency, StateMap};
use crate::observe::{HandlerCounters, Metrics, Observer};
use crate::publisher::Publisher;
use crate::registry::{HandlerSelection, Registry, ValidationError, ValidationErrors};
use crate::topic::validate_name;
use crate::transport::memory::MemoryTransport;
use crate::transport::{Capabilities, ConsumerSpec, ProvisionPlan, Subscription, Transport};

/// The environment variable read by [`AppBuilder::transport_from_env`].
pub const URL_ENV: &str = "EVENTWIRE_URL";

/// Default time [`App::shutdown`] waits for running handlers.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

enum IdempotencyChoice {
    /// An in-memory guard for at-least-once transports, none otherwise.
    Default,
    Off,
    Store(Arc<dyn IdempotencyStore>),
}

enum TransportChoice {
    Memory,
    Shared(Arc<dyn Transport>),
    #[cfg(feature = "nats")]
    Nats(crate::transport::nats::NatsConfig),
    #[cfg(feature = "nats")]
    JetStream(crate::transport::nats::NatsConfig),
}

/// Configures an [`App`]. Start with [`App::builder`].
pub struct AppBuilder {
    service: Option<String>,
    transport: TransportChoice,
    state: StateMap,
    selection: HandlerSelection,
    shutdown_timeout: Duration,
    observer: Option<Arc<dyn Observer>>,
    registry: Option<Registry>,
    idempotency: IdempotencyChoice,
    transport_url: Option<String>,
    /// The test harness runs JetStream-only options on the memory bus.
    pub(crate) relax_durability: bool,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("service", &self.service)
            .field("selection", &self.selection)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for AppBuilder {
    fn default() -> Self {
        AppBuilder {
            service: None,
            transport: TransportChoice::Memory,
            state: StateMap::default(),
            selection: HandlerSelection::All,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            observer: None,
            registry: None,
            idempotency: IdempotencyChoice::Default,
            transport_url: None,
            relax_durability: false,
        }
    }
}

impl AppBuilder {
    /// Names the service: `ce-source` of what it publishes and the default
    /// group of its handlers. Defaults to `EVENTWIRE_SERVICE`, else the
    /// executable's name.
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Uses this transport. The app does not close a transport given here
    /// (several apps may share one, as instances of a group do).
    pub fn transport<T: Transport>(mut self, transport: T) -> Self {
        self.transport = TransportChoice::Shared(Arc::new(transport));
        self
    }

    /// Uses a shared transport.
    pub fn transport_arc(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = TransportChoice::Shared(transport);
        self
    }

    /// Chooses the transport from a URL: `memory://`, `nats://host:port`,
    /// `jetstream://host:port`.
    pub fn transport_url(mut self, url: &str) -> Result<Self> {
        self.transport = parse_url(url)?;
        self.transport_url = Some(crate::app::redact(url));
        Ok(self)
    }

    /// Chooses the transport from `EVENTWIRE_URL`; unset or empty means `memory://`.
    pub fn transport_from_env(self) -> Result<Self> {
        match std::env::var(URL_ENV) {
            Ok(url) if !url.trim().is_empty() => self.transport_url(url.trim()),
            _ => Ok(self),
        }
    }

    /// Gives a value to handlers that take `State<T>`.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Runs only some of the registered handlers.
    pub fn handlers(mut self, selection: HandlerSelection) -> Self {
        self.selection = selection;
        self
    }

    /// How long [`App::shutdown`] waits for running handlers.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Receives the outcome of every handler attempt.
    pub fn observer<O: Observer>(mut self, observer: O) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Guards handlers against running twice for one event with this store
    /// (by default, an [`InMemoryIdempotency`] on at-least-once transports).
    pub fn idempotency<S: IdempotencyStore>(mut self, store: S) -> Self {
        self.idempotency = IdempotencyChoice::Store(Arc::new(store));
        self
    }

    /// Turns the idempotency guard off.
    pub fn without_idempotency(mut self) -> Self {
        self.idempotency = IdempotencyChoice::Off;
        self
    }

    pub(crate) fn registry_or_global(&self) -> Registry {
        self.registry.clone().unwrap_or_else(Registry::global)
    }

    pub(crate) fn selection(&self) -> &HandlerSelection {
        &self.selection
    }

    /// The transport URL, when one was given (for descriptions).
    pub(crate) fn transport_url_text(&self) -> Option<String> {
        self.transport_url.clone()
    }

    /// Uses these descriptors instead of everything linked in.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    pub(crate) fn service_name(&self) -> String {
        self.service
            .clone()
            .or_else(|| {
                std::env::var("EVENTWIRE_SERVICE")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(executable_name)
    }

    /// The transport and whether the app owns it (and closes it).
    async fn resolve_transport(&self) -> Result<(Arc<dyn Transport>, bool)> {
        Ok(match &self.transport {
            TransportChoice::Memory => (Arc::new(MemoryTransport::new()), true),
            TransportChoice::Shared(t) => (t.clone(), false),
            #[cfg(feature = "nats")]
            TransportChoice::Nats(config) => (
                Arc::new(crate::transport::nats::NatsTransport::connect(config.clone()).await?),
                true,
            ),
            #[cfg(feature = "nats")]
            TransportChoice::JetStream(config) => (
                Arc::new(
                    crate::transport::nats::JetStreamTransport::connect(config.clone()).await?,
                ),
                true,
            ),
        })
    }

    fn capabilities(&self, transport: &dyn Transport) -> Capabilities {
        let mut caps = transport.capabilities();
        if self.relax_durability {
            caps.durable_consumers = true;
            caps.replay = true;
        }
        caps
    }

    /// Runs start-up validation without subscribing anything (a remote
    /// transport is connected to learn its capabilities, then closed).
    pub async fn check(&self) -> Result<()> {
        let (transport, owned) = self.resolve_transport().await?;
        let registry = self.registry.clone().unwrap_or_else(Registry::global);
        let result = registry.validate_with(
            transport.kind(),
            self.capabilities(&*transport),
            &self.service_name(),
            &self.selection,
        );
        if owned {
            transport.close().await?;
        }
        result.map_err(Into::into)
    }

    /// Validates, subscribes every selected handler and starts them.
    pub async fn build(self) -> Result<App> {
        let service = self.service_name();
        let (transport, owns_transport) = self.resolve_transport().await?;
        let registry = self.registry.clone().unwrap_or_else(Registry::global);
        let caps = self.capabilities(&*transport);
        registry.validate_with(transport.kind(), caps, &service, &self.selection)?;

        let service: Arc<str> = Arc::from(service);
        let publisher = Publisher::new(transport.clone(), service.clone());
        let idempotency: Option<Arc<dyn IdempotencyStore>> = match &self.idempotency {
            IdempotencyChoice::Off => None,
            IdempotencyChoice::Store(s) => Some(s.clone()),
            IdempotencyChoice::Default if caps.at_least_once => {
                Some(Arc::new(InMemoryIdempotency::default()))
            }
            IdempotencyChoice::Default => None,
        };
        let mut runtimes = Vec::new();
        let mut errors = Vec::new();
        for d in registry.select(&service, &self.selection) {
            let handler = match (d.build)(&self.state) {
                Ok(h) => h,
                Err(missing) => {
                    errors.push(ValidationError::MissingState {
                        handler: d.name,
                        type_name: missing.type_name,
                    });
                    continue;
                }
            };
            let group: Arc<str> = Arc::from(Registry::group_of(d, &service));
            let options = d.options;
            let durable = match options.durable {
                Durability::Ephemeral => None,
                Durability::Named(n) => Some(n.to_owned()),
                Durability::Default => Some(format!("{group}__{}", d.name)),
            };
            let spec = ConsumerSpec {
                handler: d.name,
                group: group.clone(),
                topic: d.topic,
                concurrency: options.concurrency(),
                retry: options.retry_policy(),
                timeout: options.timeout(),
                ordered: options.ordered,
                durable,
                start: options.start.unwrap_or_default(),
            };
            runtimes.push((
                spec,
                HandlerRuntime {
                    name: d.name,
                    group,
                    handler,
                    retry: options.retry_policy(),
                    timeout: options.timeout(),
                    concurrency: options.concurrency(),
                    ordered: options.ordered,
                    dead_letter_topic: options.dead_letter,
                    transport: transport.clone(),
                    publisher: publisher.clone(),
                    observer: self.observer.clone(),
                    counters: HandlerCounters::default(),
                    idempotency: idempotency.clone(),
                },
            ));
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        if let Err(e) = validate_name("service name", &service) {
            return Err(ValidationErrors(vec![e.into()]).into());
        }

        let mut plan = ProvisionPlan {
            topics: registry.events().iter().map(|e| e.topic).collect(),
            dead_letter_topics: runtimes
                .iter()
                .filter_map(|(_, rt)| rt.dead_letter_topic)
                .collect(),
        };
        plan.topics.extend(runtimes.iter().map(|(s, _)| s.topic));
        plan.topics.sort_unstable();
        plan.topics.dedup();
        plan.dead_letter_topics.sort_unstable();
        plan.dead_letter_topics.dedup();
        transport.prepare(&plan).await?;

        let stop = StopSignal::default();
        let mut tasks = JoinSet::new();
        let mut handlers = Vec::with_capacity(runtimes.len());
        let mut subscriptions: Vec<Arc<dyn Subscription>> = Vec::with_capacity(runtimes.len());
        for (spec, rt) in runtimes {
            let subscription: Arc<dyn Subscription> = match transport.subscribe(spec).await {
                Ok(s) => Arc::from(s),
                Err(e) => {
                    stop.stop();
                    tasks.shutdown().await;
                    return Err(e.into());
                }
            };
            let rt = Arc::new(rt);
            rt.spawn(subscription.clone(), stop.clone(), &mut tasks);
            tracing::debug!(handler = rt.name, group = %rt.group, "handler subscribed");
            handlers.push(rt);
            subscriptions.push(subscription);
        }
        tracing::info!(
            service = %service,
            transport = transport.kind(),
            handlers = handlers.len(),
            "eventwire app started"
        );
        Ok(App {
            service,
            transport,
            owns_transport,
            publisher,
            handlers,
            subscriptions,
            tasks,
            stop,
            shutdown_timeout: self.shutdown_timeout,
        })
    }
}

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
            None => Err(Error::Unsupported(format!(
                "the {} transport cannot tell when it is idle",
                self.transport.kind()
            ))),
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
    /// shutdown timeout, stops the rest (their events are redelivered), and
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

fn parse_url(url: &str) -> Result<TransportChoice> {
    let bad = |reason: &str| Error::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((scheme, _rest)) = url.split_once("://") else {
        return Err(bad(
            "expected `memory://`, `nats://host:port` or `jetstream://host:port`",
        ));
    };
    match scheme {
        "memory" => Ok(TransportChoice::Memory),
        #[cfg(feature = "nats")]
        "nats" | "tls" => Ok(TransportChoice::Nats(
            crate::transport::nats::NatsConfig::from_url(url).map_err(|e| bad(&e.to_string()))?,
        )),
        #[cfg(feature = "nats")]
        "jetstream" => Ok(TransportChoice::JetStream(
            crate::transport::nats::NatsConfig::from_url(url).map_err(|e| bad(&e.to_string()))?,
        )),
        #[cfg(not(feature = "nats"))]
        "nats" | "tls" | "jetstream" => Err(Error::Unsupported(format!(
            "the `{scheme}://` transport is not compiled in: enable the `nats` feature of eventwire"
        ))),
        other => Err(bad(&format!(
            "unknown scheme `{other}`; expected `memory`, `nats` or `jetstream`"
        ))),
    }
}

fn executable_name() -> String {
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "app".to_owned()
    } else {
        cleaned
    }
}

/// A URL without its credentials (for descriptions and logs).
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.split('?').next().unwrap_or(rest);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{rest}")
        }
        None => url.to_owned(),
    }
}

//! Configuring an app and starting it: transport, state, selection,
//! idempotency, then validation, subscription and the workers.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::error::Result;
use super::horizon::{check_horizons, warn_process_local_guard, HandlerHorizon};
use super::url::{parse_url, TransportChoice};
use super::{App, DEFAULT_SHUTDOWN_TIMEOUT, URL_ENV};
use crate::handler::dispatch::HandlerRuntime;
use crate::handler::erased::ErasedHandler;
use crate::handler::{HandlerDescriptor, IdempotencyStore, InMemoryIdempotency, StateMap};
use crate::observe::{HandlerCounters, Observer};
use crate::publisher::Publisher;
use crate::registry::{HandlerSelection, Registry, ValidationError, ValidationErrors};
use crate::stop::StopSignal;
use crate::transport::memory::MemoryTransport;
use crate::transport::url::redact;
use crate::transport::{Capabilities, ConsumerSpec, ProvisionPlan, Subscription, Transport};

enum IdempotencyChoice {
    /// An in-memory guard for at-least-once transports, none otherwise.
    Default,
    Off,
    Store(Arc<dyn IdempotencyStore>),
}

/// Configures an [`App`]. Start with [`App::builder`].
#[must_use = "an AppBuilder does nothing until `build()` is awaited"]
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
    /// `jetstream://host:port`, `kafka://host:port` (feature `kafka`).
    pub fn transport_url(mut self, url: &str) -> Result<Self> {
        self.transport = parse_url(url)?;
        self.transport_url = Some(redact(url));
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

    /// Runs no handler: the app only publishes, though the binary links
    /// handlers (shorthand for `handlers(HandlerSelection::None)`).
    pub fn publisher_only(self) -> Self {
        self.handlers(HandlerSelection::None)
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

    #[cfg(feature = "cli")]
    pub(crate) fn selection(&self) -> &HandlerSelection {
        &self.selection
    }

    /// The transport URL, when one was given (for descriptions).
    #[cfg(feature = "cli")]
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
            #[cfg(feature = "kafka")]
            TransportChoice::Kafka(config) => (
                Arc::new(crate::transport::kafka::KafkaTransport::connect(config.clone()).await?),
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

    /// Runs start-up validation without subscribing anything: the registry,
    /// the selection, the options against the transport, and every
    /// `State<T>` a selected handler takes (a remote transport is connected
    /// to learn its capabilities, then closed).
    pub async fn check(&self) -> Result<()> {
        let (transport, owned) = self.resolve_transport().await?;
        let service = self.service_name();
        let result = self
            .validate(&self.registry_or_global(), &*transport, &service)
            .and_then(|handlers| {
                let descriptors: Vec<_> = handlers.iter().map(|(d, _)| *d).collect();
                self.check_guard(&*transport, &service, &descriptors)
            });
        if owned {
            transport.close().await?;
        }
        result.map(drop)
    }

    /// Validates, subscribes every selected handler and starts them. An
    /// app whose selection is [`HandlerSelection::None`] only publishes.
    pub async fn build(self) -> Result<App> {
        let (transport, owns_transport) = self.resolve_transport().await?;
        match self.start(transport.clone(), owns_transport).await {
            Ok(app) => Ok(app),
            Err(e) => {
                if owns_transport {
                    let _ = transport.close().await;
                }
                Err(e)
            }
        }
    }

    /// Every check of [`AppBuilder::check`]; returns the selected handlers
    /// built with the app's state.
    fn validate(
        &self,
        registry: &Registry,
        transport: &dyn Transport,
        service: &str,
    ) -> Result<Vec<(&'static HandlerDescriptor, Arc<dyn ErasedHandler>)>> {
        let caps = self.capabilities(transport);
        let mut errors =
            match registry.validate_with(transport.kind(), caps, service, &self.selection) {
                Ok(()) => Vec::new(),
                Err(ValidationErrors(errors)) => errors,
            };
        let mut built = Vec::new();
        for d in registry.select(service, &self.selection) {
            match (d.build)(&self.state) {
                Ok(handler) => built.push((d, handler)),
                Err(missing) => errors.push(ValidationError::MissingState {
                    handler: d.name,
                    type_name: missing.type_name,
                }),
            }
        }
        if errors.is_empty() {
            Ok(built)
        } else {
            Err(ValidationErrors(errors).into())
        }
    }

    async fn start(self, transport: Arc<dyn Transport>, owns_transport: bool) -> Result<App> {
        let registry = self.registry_or_global();
        let service: Arc<str> = Arc::from(self.service_name());
        let handlers = self.validate(&registry, &*transport, &service)?;
        let publisher = Publisher::new(transport.clone(), service.clone());
        let idempotency = self.idempotency_store(self.capabilities(&*transport));
        let descriptors: Vec<&'static HandlerDescriptor> =
            handlers.iter().map(|(d, _)| *d).collect();
        let runtimes: Vec<(ConsumerSpec, HandlerRuntime)> = handlers
            .into_iter()
            .map(|(d, handler)| {
                let group: Arc<str> = Arc::from(Registry::group_of(d, &service));
                let options = d.options;
                let spec = ConsumerSpec {
                    handler: d.name,
                    group: group.clone(),
                    topic: d.topic,
                    concurrency: options.concurrency(),
                    retry: options.retry_policy(),
                    timeout: options.timeout(),
                    ordered: options.ordered,
                    durable: options.durable_name(&group, d.name),
                    start: options.start.unwrap_or_default(),
                };
                let runtime = HandlerRuntime {
                    name: d.name,
                    group,
                    handler,
                    retry: spec.retry,
                    timeout: spec.timeout,
                    concurrency: spec.concurrency,
                    ordered: options.ordered,
                    dead_letter_topic: options.dead_letter,
                    transport: transport.clone(),
                    publisher: publisher.clone(),
                    observer: self.observer.clone(),
                    counters: HandlerCounters::default(),
                    idempotency: idempotency.clone(),
                    deferrals: Default::default(),
                };
                (spec, runtime)
            })
            .collect();
        transport
            .prepare(&provision_plan(&registry, &runtimes))
            .await?;
        // After `prepare`: the transport knows the stream's duplicate window.
        self.check_guard(&*transport, &service, &descriptors)?;

        let stop = StopSignal::default();
        let mut tasks = JoinSet::new();
        let mut handlers = Vec::with_capacity(runtimes.len());
        let mut subscriptions: Vec<Arc<dyn Subscription>> = Vec::with_capacity(runtimes.len());
        for (spec, rt) in runtimes {
            let subscription: Arc<dyn Subscription> = match transport.subscribe(spec).await {
                Ok(s) => Arc::from(s),
                Err(e) => {
                    stop.stop();
                    for s in &subscriptions {
                        s.stop().await;
                    }
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
            shut_down: false,
        })
    }

    /// The start-up check of the idempotency guard (see `horizon.rs`):
    /// warns when the default guard is process-local on an at-least-once
    /// transport, and compares the store's retention with the transport's
    /// redelivery.
    fn check_guard(
        &self,
        transport: &dyn Transport,
        service: &str,
        handlers: &[&'static HandlerDescriptor],
    ) -> Result<()> {
        if handlers.is_empty() {
            return Ok(());
        }
        let Some(store) = self.idempotency_store(self.capabilities(transport)) else {
            return Ok(());
        };
        if matches!(self.idempotency, IdempotencyChoice::Default)
            && transport.redelivery().is_some()
        {
            warn_process_local_guard(service, transport);
        }
        let horizons: Vec<HandlerHorizon> = handlers
            .iter()
            .map(|d| HandlerHorizon {
                name: d.name,
                retry: d.options.retry_policy(),
                timeout: d.options.timeout(),
            })
            .collect();
        check_horizons(&*store, transport, &horizons).map_err(|e| ValidationErrors(vec![e]).into())
    }

    fn idempotency_store(&self, caps: Capabilities) -> Option<Arc<dyn IdempotencyStore>> {
        match &self.idempotency {
            IdempotencyChoice::Off => None,
            IdempotencyChoice::Store(s) => Some(s.clone()),
            IdempotencyChoice::Default if caps.at_least_once => {
                Some(Arc::new(InMemoryIdempotency::default()))
            }
            IdempotencyChoice::Default => None,
        }
    }
}

/// What the transport must provision: every registered event's topic, the
/// topic patterns and dead-letter topics of the handlers that run.
fn provision_plan(
    registry: &Registry,
    runtimes: &[(ConsumerSpec, HandlerRuntime)],
) -> ProvisionPlan {
    let mut topics: Vec<&'static str> = registry.events().iter().map(|e| e.topic).collect();
    topics.extend(runtimes.iter().map(|(s, _)| s.topic));
    topics.sort_unstable();
    topics.dedup();
    let mut dead_letter_topics: Vec<&'static str> = runtimes
        .iter()
        .filter_map(|(_, rt)| rt.dead_letter_topic)
        .collect();
    dead_letter_topics.sort_unstable();
    dead_letter_topics.dedup();
    ProvisionPlan {
        topics,
        dead_letter_topics,
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

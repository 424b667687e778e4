//! The transport under test as the scenarios use it: apps built on it,
//! its dead letters, and the wait until nothing more will arrive.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use event_runtime::{App, AppBuilder, Event, HandlerSelection, PublishOptions, Publisher};

use crate::features::Features;
use crate::harness::{ConnectOptions, Harness, Idle, Letter};
use crate::support::{eventually, Instance, Recorder, SENTINEL_HEADER};

/// The service name of every app of the suite (`ce-source`).
pub const SERVICE: &str = "conformance";

/// How long a scenario waits for what it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One test's transport: a [`Harness`] and the [`Features`] its transport
/// declared. Apps built here are numbered instances (`State<Instance>`)
/// recording into a [`Recorder`].
pub struct Bus {
    harness: Box<dyn Harness>,
    features: Features,
    instances: AtomicU32,
}

impl Bus {
    /// Starts a test on `harness`: connects once to read the transport's
    /// capabilities.
    pub async fn start(harness: Box<dyn Harness>) -> Result<Bus, String> {
        let probe = harness.connect(&ConnectOptions::default()).await?;
        let features = Features {
            label: harness.label(),
            capabilities: probe.capabilities(),
            restartable_broker: harness.restart_broker().is_some(),
        };
        Ok(Bus {
            harness,
            features,
            instances: AtomicU32::new(0),
        })
    }

    /// The transport's label and capabilities.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// An app running `handlers` as instance `Instance(n)` (the next number),
    /// recording into `rec`, on a connection of its own.
    pub async fn app(&self, handlers: &[&str], rec: &Recorder) -> App {
        self.app_with(handlers, rec, &ConnectOptions::default(), |b| b)
            .await
    }

    /// [`Bus::app`] with transport options and more builder settings.
    pub async fn app_with(
        &self,
        handlers: &[&str],
        rec: &Recorder,
        options: &ConnectOptions,
        configure: impl FnOnce(AppBuilder) -> AppBuilder,
    ) -> App {
        let instance = Instance(self.instances.fetch_add(1, Ordering::Relaxed));
        let transport = self
            .harness
            .connect(options)
            .await
            .unwrap_or_else(|e| panic!("connect an app to {}: {e}", self.features.label));
        let builder = App::builder()
            .service(SERVICE)
            .handlers(HandlerSelection::names(handlers.iter().copied()))
            .state(rec.clone())
            .state(instance)
            .observer(rec.clone())
            .transport_arc(transport);
        configure(builder)
            .build()
            .await
            .unwrap_or_else(|e| panic!("build an app with {handlers:?}: {e}"))
    }

    /// Waits until nothing more will be delivered: every event published so
    /// far by `publisher` went through every consumer, and no redelivery is
    /// pending. Then a scenario may assert exact counts.
    ///
    /// Where the broker can tell ([`Harness::wait_idle`]), until it reports
    /// idle. Otherwise `sentinel` is published (from the same connection,
    /// after the events) until every `(handler, instance)` of `consumers`
    /// has handled one: a transport delivers one publisher's events to a
    /// subscriber in order, so a consumer that handled a sentinel has taken
    /// every earlier event (and such a transport never redelivers).
    pub async fn drain<E: Event>(
        &self,
        publisher: &Publisher,
        sentinel: &E,
        rec: &Recorder,
        consumers: &[(&'static str, u32)],
    ) {
        match self.harness.wait_idle(PATIENCE).await {
            Ok(Idle::Reached) => return,
            Ok(Idle::Unknowable) => {}
            Err(e) => panic!("{e}"),
        }
        let mut handlers: Vec<&str> = consumers.iter().map(|(h, _)| *h).collect();
        handlers.sort_unstable();
        handlers.dedup();
        let deadline = Instant::now() + PATIENCE;
        while !consumers.iter().all(|(h, i)| rec.saw_sentinel(h, *i)) {
            assert!(
                Instant::now() < deadline,
                "sentinels did not reach every consumer of {consumers:?}"
            );
            let id = publisher
                .publish_with(sentinel, PublishOptions::new().header(SENTINEL_HEADER, "1"))
                .await
                .unwrap();
            // A group hands it to one of its instances.
            eventually(PATIENCE, "a sentinel through every group", || {
                handlers.iter().all(|h| rec.saw_sentinel_id(h, id.as_str()))
            })
            .await;
        }
    }

    /// Restarts the broker (see [`Harness::restart_broker`]).
    pub async fn restart_broker(&self) {
        let restart = self
            .harness
            .restart_broker()
            .unwrap_or_else(|| panic!("{} cannot restart its broker", self.features.label));
        restart
            .await
            .unwrap_or_else(|e| panic!("restarting the broker of {}: {e}", self.features.label));
    }

    /// Dead letters so far.
    pub fn dead_letters(&self) -> Vec<Letter> {
        self.harness.dead_letters()
    }

    /// Dead letters the transport keeps; `None` where they are only
    /// published.
    pub async fn stored_dead_letters(&self) -> Option<u64> {
        self.harness.stored_dead_letters().await
    }

    /// Publishes that failed inside the client; `None` where not counted.
    pub fn failed_publishes(&self) -> Option<u64> {
        self.harness.failed_publishes()
    }

    /// Closes what the test opened.
    pub async fn finish(self) {
        self.harness.finish().await;
    }
}

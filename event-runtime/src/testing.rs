//! A harness for testing handlers: an app on the in-memory bus built from the
//! registry, with everything that happened recorded. No sleeps: publish, wait
//! until idle, look.
//!
//! ```
//! use eventwire::prelude::*;
//! use eventwire::testing::TestApp;
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! #[event(topic = "docs.testing.ping")]
//! struct Ping { n: u32 }
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! #[event(topic = "docs.testing.pong")]
//! struct Pong { n: u32 }
//!
//! #[handler(group = "docs-testing")]
//! async fn reply(evt: Ping, ctx: Context) -> Result<(), HandlerError> {
//!     ctx.publish(&Pong { n: evt.n + 1 }).await?;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> eventwire::Result<()> {
//! let app = TestApp::builder()
//!     .handlers(HandlerSelection::groups(["docs-testing"]))
//!     .build()
//!     .await?;
//! app.publish(&Ping { n: 1 }).await?;
//! app.wait_idle().await;
//! assert_eq!(app.published::<Pong>(), vec![Pong { n: 2 }]);
//! assert_eq!(app.succeeded("reply"), 1);
//! app.shutdown().await?;
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::Result;
use crate::app::{App, AppBuilder, ShutdownReport};
use crate::delivery::DeadLetter;
use crate::envelope::{Envelope, EventId};
use crate::error::PublishError;
use crate::event::Event;
use crate::observe::{HandlerRun, Observer, Outcome};
use crate::publisher::Publisher;
use crate::registry::{HandlerSelection, Registry};
use crate::transport::memory::MemoryTransport;

/// How long [`TestApp::wait_idle`] waits before failing the test.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<HandlerRun>>>);

impl Observer for Recorder {
    fn handler_finished(&self, run: &HandlerRun) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(run.clone());
    }
}

/// Configures a [`TestApp`].
#[derive(Debug)]
#[must_use = "a TestAppBuilder does nothing until `build()` is awaited"]
pub struct TestAppBuilder {
    builder: AppBuilder,
    bus: MemoryTransport,
    idle_timeout: Duration,
}

impl TestAppBuilder {
    /// Names the service (the default group of its handlers).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.builder = self.builder.service(name);
        self
    }

    /// Gives a value to handlers that take `State<T>`.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.builder = self.builder.state(value);
        self
    }

    /// Runs only some of the registered handlers.
    pub fn handlers(mut self, selection: HandlerSelection) -> Self {
        self.builder = self.builder.handlers(selection);
        self
    }

    /// Uses these descriptors instead of everything linked in.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.builder = self.builder.registry(registry);
        self
    }

    /// Queue capacity of every consumer.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.bus = self.bus.with_capacity(capacity);
        self
    }

    /// How long `wait_idle` waits before failing.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long shutdown waits for running handlers.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.builder = self.builder.shutdown_timeout(timeout);
        self
    }

    /// Builds and starts the app.
    pub async fn build(self) -> Result<TestApp> {
        let recorder = Recorder::default();
        let mut builder = self
            .builder
            .transport(self.bus.clone())
            .observer(recorder.clone());
        // `durable` and `start` describe JetStream consumers; the harness
        // tests what handlers do, so it accepts them on the memory bus.
        builder.relax_durability = true;
        let app = builder.build().await?;
        Ok(TestApp {
            app,
            bus: self.bus,
            runs: recorder,
            idle_timeout: self.idle_timeout,
        })
    }
}

/// An app on a recording in-memory bus. See the [module docs](self).
pub struct TestApp {
    app: App,
    bus: MemoryTransport,
    runs: Recorder,
    idle_timeout: Duration,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("app", &self.app).finish()
    }
}

impl TestApp {
    /// Starts configuring a test app.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            builder: App::builder().service("test"),
            bus: MemoryTransport::new().with_recording(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// The app under test.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The bus.
    pub fn bus(&self) -> &MemoryTransport {
        &self.bus
    }

    /// A publisher on the bus.
    pub fn publisher(&self) -> Publisher {
        self.app.publisher()
    }

    /// Publishes an event.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<EventId, PublishError> {
        self.app.publisher().publish(event).await
    }

    /// Waits until no event is queued, in flight or waiting for a retry.
    ///
    /// # Panics
    /// When the bus is not idle within the idle timeout (10 s by default),
    /// with what is still outstanding.
    pub async fn wait_idle(&self) {
        if tokio::time::timeout(self.idle_timeout, self.bus.wait_idle())
            .await
            .is_err()
        {
            panic!(
                "the bus was not idle after {:?}: {} event copies still queued or in flight; handler runs so far: {}",
                self.idle_timeout,
                self.bus.outstanding(),
                self.runs().len()
            );
        }
    }

    /// Every event of type `E` published so far, decoded, in order.
    pub fn published<E: Event>(&self) -> Vec<E> {
        self.bus
            .published()
            .iter()
            .filter(|e| &*e.topic == E::TOPIC)
            .map(|e| {
                e.decode::<E>().unwrap_or_else(|err| {
                    panic!("a published `{}` does not decode: {err}", E::NAME)
                })
            })
            .collect()
    }

    /// Every envelope published so far, in order.
    pub fn published_envelopes(&self) -> Vec<Arc<Envelope>> {
        self.bus.published()
    }

    /// Every handler attempt so far, in the order they finished.
    pub fn runs(&self) -> Vec<HandlerRun> {
        self.runs
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The attempts of one handler.
    pub fn runs_of(&self, handler: &str) -> Vec<HandlerRun> {
        self.runs()
            .into_iter()
            .filter(|r| r.handler == handler)
            .collect()
    }

    /// How many events `handler` processed successfully.
    pub fn succeeded(&self, handler: &str) -> usize {
        self.runs_of(handler)
            .iter()
            .filter(|r| r.outcome == Outcome::Succeeded)
            .count()
    }

    /// Dead letters so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.bus.dead_letters()
    }

    /// Stops the app (draining running handlers).
    pub async fn shutdown(self) -> Result<ShutdownReport> {
        let report = self.app.shutdown().await?;
        crate::transport::Transport::close(&self.bus).await?;
        Ok(report)
    }
}

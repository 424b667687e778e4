//! Publishing events.

use std::sync::Arc;
use std::time::Duration;

pub use crate::envelope::PublishOptions;
pub use crate::error::PublishError;

use crate::envelope::{Envelope, EventId};
use crate::event::Event;
use crate::transport::Transport;

/// Publishes events. Cheap to clone; use it from anywhere (an HTTP handler,
/// a background task).
///
/// When the app and every publisher it gave out are dropped without
/// [`App::shutdown`](crate::App::shutdown) (a program that publishes and
/// returns from `main`), the transport is flushed before they go, waiting at
/// most [`FLUSH_ON_DROP_TIMEOUT`]: an event whose `publish` returned `Ok` is
/// not lost because the process exited. Dropping must then happen inside
/// the runtime (as at the end of a `#[tokio::main]` function): a publisher
/// kept in a task, publishing after the app was dropped and dropped only as
/// the runtime shuts down, cannot flush, and says so in a warning.
/// `App::shutdown` flushes in every case. On a current-thread runtime core
/// NATS flushes each publish instead (see `eventwire::nats::NatsTransport`).
///
/// ```no_run
/// # use eventwire::prelude::*;
/// # #[derive(Debug, Serialize, Deserialize, Event)] struct OrderPlaced { id: u64 }
/// # async fn f(app: &App) -> Result<(), eventwire::PublishError> {
/// let publisher = app.publisher();
/// let id = publisher.publish(&OrderPlaced { id: 7 }).await?;
/// println!("published {id}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<PublisherInner>,
}

/// The longest a dropped app or publisher waits for the transport to flush.
pub const FLUSH_ON_DROP_TIMEOUT: Duration = Duration::from_secs(5);

struct PublisherInner {
    transport: Arc<dyn Transport>,
    source: Arc<str>,
    /// A handle users publish through: its last drop flushes the transport.
    flush_on_drop: bool,
}

impl Drop for PublisherInner {
    fn drop(&mut self) {
        if self.flush_on_drop {
            self.transport.flush_before_drop(FLUSH_ON_DROP_TIMEOUT);
        }
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("transport", &self.inner.transport.kind())
            .field("source", &self.inner.source)
            .finish()
    }
}

impl Publisher {
    /// The app's publisher, the one users publish through.
    pub(crate) fn new(transport: Arc<dyn Transport>, source: Arc<str>) -> Self {
        Publisher {
            inner: Arc::new(PublisherInner {
                transport,
                source,
                flush_on_drop: true,
            }),
        }
    }

    /// The publisher of handler contexts: it lives in worker tasks, which
    /// may be dropped as the runtime shuts down, where no flush can run; the
    /// app's publisher flushes for it.
    pub(crate) fn for_handlers(transport: Arc<dyn Transport>, source: Arc<str>) -> Self {
        Publisher {
            inner: Arc::new(PublisherInner {
                transport,
                source,
                flush_on_drop: false,
            }),
        }
    }

    /// Whether clones of this publisher exist elsewhere.
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.inner) > 1
    }

    /// Publishes an event; returns its id once the transport accepted it.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<EventId, PublishError> {
        self.publish_with(event, PublishOptions::default()).await
    }

    /// Publishes an event with options.
    pub async fn publish_with<E: Event>(
        &self,
        event: &E,
        options: PublishOptions,
    ) -> Result<EventId, PublishError> {
        let envelope = self.envelope(event, options)?;
        let id = envelope.id.clone();
        self.inner.transport.publish(envelope).await?;
        Ok(id)
    }

    /// Publishes several events in order. On JetStream the server's
    /// acknowledgements are awaited in a pipeline (up to `publish_window` at
    /// once), which is much faster than one `publish` after another. One
    /// result per event, in the same order.
    #[must_use = "each event's result says whether it was published"]
    pub async fn publish_batch<E: Event>(
        &self,
        events: &[E],
    ) -> Vec<Result<EventId, PublishError>> {
        let mut results: Vec<Result<EventId, PublishError>> = Vec::with_capacity(events.len());
        let mut envelopes = Vec::with_capacity(events.len());
        let mut slots = Vec::with_capacity(events.len());
        for event in events {
            match self.envelope(event, PublishOptions::default()) {
                Ok(env) => {
                    slots.push(Some(results.len()));
                    results.push(Ok(env.id.clone()));
                    envelopes.push(env);
                }
                Err(e) => {
                    slots.push(None);
                    results.push(Err(e));
                }
            }
        }
        let sent = self.inner.transport.publish_batch(envelopes).await;
        let positions = slots.into_iter().flatten();
        for (pos, outcome) in positions.zip(sent) {
            if let Err(e) = outcome {
                results[pos] = Err(e);
            }
        }
        results
    }

    /// Builds the envelope `publish_with` would send, without sending it.
    pub fn envelope<E: Event>(
        &self,
        event: &E,
        options: PublishOptions,
    ) -> Result<Envelope, PublishError> {
        Envelope::for_event(event, self.inner.source.clone(), options)
    }

    /// Publishes a ready-made envelope (to forward or replay an event). The
    /// topic is checked, the envelope is sent as it is.
    pub async fn publish_envelope(&self, envelope: Envelope) -> Result<EventId, PublishError> {
        envelope.validate()?;
        let id = envelope.id.clone();
        self.inner.transport.publish(envelope).await?;
        Ok(id)
    }

    /// The name written into `ce-source`.
    pub fn source(&self) -> &str {
        &self.inner.source
    }
}

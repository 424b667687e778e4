//! Publishing events.

use std::sync::Arc;

pub use crate::envelope::PublishOptions;
pub use crate::error::PublishError;

use crate::envelope::{Envelope, EventId};
use crate::event::Event;
use crate::transport::Transport;

/// Publishes events. Cheap to clone; use it from anywhere (an HTTP handler,
/// a background task).
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
    /// The event being handled, for the publisher of a handler's
    /// [`Context`](crate::Context): every event published through it is
    /// linked to this one (causation, correlation, trace context).
    cause: Option<Arc<Envelope>>,
}

struct PublisherInner {
    transport: Arc<dyn Transport>,
    source: Arc<str>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("transport", &self.inner.transport.kind())
            .field("source", &self.inner.source)
            .field("caused_by", &self.cause.as_ref().map(|c| &c.id))
            .finish()
    }
}

impl Publisher {
    pub(crate) fn new(transport: Arc<dyn Transport>, source: Arc<str>) -> Self {
        Publisher {
            inner: Arc::new(PublisherInner { transport, source }),
            cause: None,
        }
    }

    /// This publisher, linking what it publishes to `cause`.
    pub(crate) fn caused_by(&self, cause: Arc<Envelope>) -> Self {
        Publisher {
            inner: self.inner.clone(),
            cause: Some(cause),
        }
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
        // A producer span with the OpenTelemetry messaging fields.
        let span = tracing::info_span!(
            "eventwire.publish",
            otel.kind = "producer",
            messaging.system = self.inner.transport.kind(),
            messaging.operation.type = "publish",
            messaging.destination.name = %envelope.topic,
            messaging.message.id = %id,
        );
        #[cfg(feature = "metrics")]
        let topic = envelope.topic.clone();
        let result =
            tracing::Instrument::instrument(self.inner.transport.publish(envelope), span).await;
        #[cfg(feature = "metrics")]
        published_metric(self.inner.transport.kind(), &topic, result.is_ok());
        result?;
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
    /// From a handler's [`Context::publisher`](crate::Context::publisher),
    /// it is linked to the event being handled: causation id = its id,
    /// correlation id = its correlation id (or its id), trace context passed
    /// on, unless `options` set them.
    pub fn envelope<E: Event>(
        &self,
        event: &E,
        options: PublishOptions,
    ) -> Result<Envelope, PublishError> {
        let options = match &self.cause {
            Some(cause) => options.caused_by(cause),
            None => options,
        };
        Envelope::for_event(event, self.inner.source.clone(), options)
    }

    /// Publishes a ready-made envelope (to forward or replay an event). The
    /// topic is checked, the envelope is sent as it is (not linked to a
    /// handler's event, even from [`Context::publisher`](crate::Context::publisher)).
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

/// A publish, with its result, through the `metrics` facade
/// (`eventwire_published_total`, `eventwire_publish_failures_total`; the
/// table is in [`crate::observe`]).
#[cfg(feature = "metrics")]
fn published_metric(transport: &'static str, topic: &str, ok: bool) {
    let name = if ok {
        "eventwire_published_total"
    } else {
        "eventwire_publish_failures_total"
    };
    metrics::counter!(name, "transport" => transport, "topic" => topic.to_owned()).increment(1);
}

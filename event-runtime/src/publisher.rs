//! Publishing events.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::codec::EncodeError;
use crate::envelope::{Envelope, EventId};
use crate::topic::{validate_topic, TopicError};
use crate::transport::{BoxError, Transport};
use crate::Event;

/// A failed publish. Nothing was sent unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The event could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The topic or a subject part is invalid.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A header name or value cannot be sent.
    #[error("invalid header `{name}`: {reason}")]
    Header {
        /// The header name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The payload is larger than the transport accepts.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes on `{topic}`")]
    PayloadTooLarge {
        /// The topic.
        topic: String,
        /// Encoded size.
        size: usize,
        /// The transport's limit.
        limit: usize,
    },
    /// The consumers' queues stayed full for longer than the publish timeout.
    #[error(
        "backpressure: queue of consumer `{consumer}` on `{topic}` stayed full for {waited:?}"
    )]
    Backpressure {
        /// The topic.
        topic: String,
        /// The consumer whose queue is full.
        consumer: String,
        /// How long the publish waited.
        waited: Duration,
    },
    /// The transport is closed.
    #[error("transport is closed")]
    Closed,
    /// The transport failed; the event may or may not have been delivered.
    #[error("publish to `{topic}` failed: {source}")]
    Transport {
        /// The topic.
        topic: String,
        /// What failed.
        #[source]
        source: BoxError,
    },
}

/// Options of one publish: extra headers, ids, trace context.
///
/// ```
/// use eventwire::PublishOptions;
/// let opts = PublishOptions::new()
///     .header("x-tenant", "acme")
///     .correlation_id("checkout-42")
///     .traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    id: Option<EventId>,
    headers: Vec<(String, String)>,
    correlation_id: Option<EventId>,
    causation_id: Option<EventId>,
    traceparent: Option<Arc<str>>,
    tracestate: Option<Arc<str>>,
}

impl PublishOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this event id instead of a new UUIDv7 (for a publish retried by
    /// the caller, so consumers and JetStream de-duplicate it).
    pub fn id(mut self, id: impl Into<EventId>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds a header carried unchanged to handlers.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the correlation id (by default the event's own id).
    pub fn correlation_id(mut self, id: impl AsRef<str>) -> Self {
        self.correlation_id = Some(EventId::from(id.as_ref()));
        self
    }

    /// Sets the causation id.
    pub fn causation_id(mut self, id: impl AsRef<str>) -> Self {
        self.causation_id = Some(EventId::from(id.as_ref()));
        self
    }

    /// Sets the W3C `traceparent`.
    pub fn traceparent(mut self, value: impl AsRef<str>) -> Self {
        self.traceparent = Some(Arc::from(value.as_ref()));
        self
    }

    /// Sets the W3C `tracestate`.
    pub fn tracestate(mut self, value: impl AsRef<str>) -> Self {
        self.tracestate = Some(Arc::from(value.as_ref()));
        self
    }

    /// Links to the event being handled: causation = its id, correlation =
    /// its correlation id, trace context passed on.
    pub(crate) fn caused_by(mut self, parent: &Envelope) -> Self {
        self.causation_id = Some(parent.id.clone());
        if self.correlation_id.is_none() {
            self.correlation_id = Some(
                parent
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| parent.id.clone()),
            );
        }
        if self.traceparent.is_none() {
            self.traceparent = parent.traceparent.clone();
            self.tracestate = parent.tracestate.clone();
        }
        self
    }
}

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
            .finish()
    }
}

impl Publisher {
    pub(crate) fn new(transport: Arc<dyn Transport>, source: Arc<str>) -> Self {
        Publisher {
            inner: Arc::new(PublisherInner { transport, source }),
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
        self.inner.transport.publish(envelope).await?;
        Ok(id)
    }

    /// Publishes several events in order. On JetStream the server's
    /// acknowledgements are awaited in a pipeline (up to `publish_window` at
    /// once), which is much faster than one `publish` after another. One
    /// result per event, in the same order.
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
        let payload = event.encode()?;
        let id = options.id.unwrap_or_default();
        for (name, value) in &options.headers {
            check_header(name, value)?;
        }
        Ok(Envelope {
            correlation_id: Some(options.correlation_id.unwrap_or_else(|| id.clone())),
            id,
            topic: Cow::Borrowed(E::TOPIC),
            source: self.inner.source.clone(),
            time: SystemTime::now(),
            schema_version: E::VERSION,
            content_type: Cow::Borrowed(E::FORMAT.content_type()),
            key: event.key().map(|k| Arc::from(&*k)),
            causation_id: options.causation_id,
            traceparent: options.traceparent,
            tracestate: options.tracestate,
            headers: options.headers,
            payload,
        })
    }

    /// Publishes a ready-made envelope (to forward or replay an event). The
    /// topic is checked, the envelope is sent as it is.
    pub async fn publish_envelope(&self, envelope: Envelope) -> Result<EventId, PublishError> {
        validate_topic(&envelope.topic)?;
        for (name, value) in &envelope.headers {
            check_header(name, value)?;
        }
        let id = envelope.id.clone();
        self.inner.transport.publish(envelope).await?;
        Ok(id)
    }

    /// The name written into `ce-source`.
    pub fn source(&self) -> &str {
        &self.inner.source
    }
}

/// Header names are tokens; values are single-line text (a CR or LF would
/// split the header block on the wire).
fn check_header(name: &str, value: &str) -> Result<(), PublishError> {
    let err = |reason| PublishError::Header {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(err("empty name"));
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(err("names are printable ASCII without `:` or spaces"));
    }
    if value.contains(['\r', '\n']) {
        return Err(err("values must not contain CR or LF"));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("ce-")
        || lower == "content-type"
        || lower == "traceparent"
        || lower == "tracestate"
        || lower.starts_with("nats-")
    {
        return Err(err(
            "reserved for the envelope; use the publish options instead",
        ));
    }
    Ok(())
}

//! What a handler knows about the event it is processing.

use std::sync::Arc;
use std::time::SystemTime;

use crate::codec::DecodeError;
use crate::envelope::{Envelope, EventId, PublishOptions};
use crate::error::PublishError;
use crate::event::Event;
use crate::publisher::Publisher;

/// The delivery context of one event, taken by a handler as an argument.
///
/// Publishing through the context links the new event to the one being
/// handled: its causation id is this event's id, its correlation id is this
/// event's correlation id, and the trace context is passed on.
///
/// ```
/// use eventwire::prelude::*;
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// struct PaymentReceived { order_id: String }
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// struct OrderPaid { order_id: String }
///
/// #[handler]
/// async fn mark_paid(evt: PaymentReceived, ctx: Context) -> Result<(), HandlerError> {
///     tracing_like_log(ctx.event_id().as_str(), ctx.attempt());
///     ctx.publish(&OrderPaid { order_id: evt.order_id }).await?;
///     Ok(())
/// }
/// # fn tracing_like_log(_: &str, _: u32) {}
/// ```
#[derive(Clone)]
pub struct Context {
    envelope: Arc<Envelope>,
    attempt: u32,
    handler: &'static str,
    publisher: Publisher,
}

impl Context {
    pub(crate) fn new(
        envelope: Arc<Envelope>,
        attempt: u32,
        handler: &'static str,
        publisher: Publisher,
    ) -> Self {
        Context {
            envelope,
            attempt,
            handler,
            publisher,
        }
    }

    /// The event id (`ce-id`).
    pub fn event_id(&self) -> &EventId {
        &self.envelope.id
    }

    /// When the event was published (`ce-time`).
    pub fn occurred_at(&self) -> SystemTime {
        self.envelope.time
    }

    /// The attempt number, 1 for the first delivery.
    ///
    /// It counts the runs of the handler on this event, as the transport
    /// counts deliveries (on JetStream, the server's delivery count), less
    /// the deliveries this process *deferred*: handed back without running
    /// the handler because another delivery of the event held its
    /// idempotency claim. A deferral never uses up the retry budget. Two
    /// limits: a deferral made by another instance of the group is counted
    /// by the JetStream server and not subtracted here; and a run stopped at
    /// the shutdown deadline counts on JetStream (the server delivered it),
    /// not on the in-memory bus (which puts the event back as it was).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The topic the event was published on.
    pub fn topic(&self) -> &str {
        &self.envelope.topic
    }

    /// The service that published the event (`ce-source`).
    pub fn source(&self) -> &str {
        &self.envelope.source
    }

    /// The correlation id shared by every event of this flow.
    pub fn correlation_id(&self) -> Option<&str> {
        self.envelope.correlation_id.as_deref()
    }

    /// The id of the event whose handler published this one.
    pub fn causation_id(&self) -> Option<&str> {
        self.envelope.causation_id.as_deref()
    }

    /// The W3C `traceparent` the publisher sent.
    pub fn traceparent(&self) -> Option<&str> {
        self.envelope.traceparent.as_deref()
    }

    /// The event key (`ce-partitionkey`).
    pub fn key(&self) -> Option<&str> {
        self.envelope.key.as_deref()
    }

    /// Extra headers the publisher attached (not the envelope's own attributes).
    pub fn headers(&self) -> &[(String, String)] {
        &self.envelope.headers
    }

    /// One extra header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.envelope.header(name)
    }

    /// The name of the handler running.
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// The whole envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    pub(crate) fn envelope_arc(&self) -> Arc<Envelope> {
        self.envelope.clone()
    }

    /// A publisher whose events are caused by this one: each carries this
    /// event's id as its causation id, its correlation id (or its id), and
    /// its trace context, as with [`Context::publish`]. Hand it to code that
    /// takes a [`Publisher`]; it is cheap to clone.
    pub fn publisher(&self) -> Publisher {
        self.publisher.caused_by(self.envelope.clone())
    }

    /// Publishes an event caused by this one.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<EventId, PublishError> {
        self.publish_with(event, PublishOptions::default()).await
    }

    /// Publishes an event caused by this one, with extra options.
    pub async fn publish_with<E: Event>(
        &self,
        event: &E,
        options: PublishOptions,
    ) -> Result<EventId, PublishError> {
        self.publisher().publish_with(event, options).await
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("event_id", &self.envelope.id)
            .field("topic", &self.envelope.topic)
            .field("attempt", &self.attempt)
            .field("handler", &self.handler)
            .finish()
    }
}

/// An event that is not decoded: the first parameter of handlers that
/// subscribe to wildcard topics (`orders.*`, `orders.>`) or want the bytes.
///
/// ```
/// use eventwire::prelude::*;
///
/// #[handler(topic = "orders.>", group = "audit")]
/// async fn audit(evt: RawEvent) {
///     println!("{} {} bytes", evt.topic(), evt.payload().len());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RawEvent {
    envelope: Arc<Envelope>,
}

impl RawEvent {
    pub(crate) fn new(envelope: Arc<Envelope>) -> Self {
        RawEvent { envelope }
    }

    /// The topic it was published on.
    pub fn topic(&self) -> &str {
        &self.envelope.topic
    }

    /// The encoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.envelope.payload
    }

    /// The schema version.
    pub fn schema_version(&self) -> u32 {
        self.envelope.schema_version
    }

    /// The payload's content type.
    pub fn content_type(&self) -> &str {
        &self.envelope.content_type
    }

    /// The whole envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Decodes the payload as `E`, checking topic-independent rules: content
    /// type and schema version.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        self.envelope.decode()
    }
}

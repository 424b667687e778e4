//! The transport trait: how envelopes move between publishers and handlers.
//!
//! The trait is shaped after the strongest semantics eventwire supports
//! (JetStream pull consumers): a delivery carries its attempt number and is
//! settled exactly once by ack, nak with a delay, or terminate; a long
//! handler can signal progress. Weaker transports implement as much as they
//! can and say what they do not promise through [`Capabilities`].

pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;

use crate::envelope::Envelope;
use crate::handler::{HandlerErrorKind, RetryPolicy, StartPosition};
use crate::publisher::PublishError;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a transport guarantees; start-up validation rejects handler options
/// the chosen transport cannot honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Consumers keep their position across restarts (`durable = "..."`).
    pub durable_consumers: bool,
    /// A new consumer can read events published before it existed (`start = "all"`).
    pub replay: bool,
    /// Unacknowledged events survive a crash of the consumer (at-least-once).
    pub at_least_once: bool,
    /// Largest payload accepted, when the transport has a limit.
    pub max_payload: Option<usize>,
}

/// Everything a transport needs to create one consumer: one per
/// (group, handler).
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The handler's name.
    pub handler: &'static str,
    /// The consumer group; instances with the same group and handler share
    /// the events, each event goes to one of them.
    pub group: Arc<str>,
    /// Topic or topic pattern.
    pub topic: &'static str,
    /// Events in flight at once in this instance.
    pub concurrency: usize,
    /// Attempts and backoff (JetStream maps them to `max_deliver` and `backoff`).
    pub retry: RetryPolicy,
    /// Handler timeout, when set (JetStream derives `ack_wait` from it).
    pub timeout: Option<Duration>,
    /// Per-key ordering requested.
    pub ordered: bool,
    /// Durable consumer name; `None` for an ephemeral consumer.
    pub durable: Option<String>,
    /// Where a new consumer starts.
    pub start: StartPosition,
}

impl ConsumerSpec {
    /// The consumer's name: `<group>__<handler>`, valid as a subject token
    /// and a JetStream consumer name.
    pub fn consumer_name(&self) -> String {
        format!("{}__{}", self.group, self.handler)
    }
}

/// One delivered event, to be settled once.
pub struct Delivery {
    /// The event.
    pub envelope: Arc<Envelope>,
    /// Delivery attempt, 1 for the first.
    pub attempt: u32,
    /// Position in the stream, where the transport has one.
    pub stream_sequence: Option<u64>,
    /// Settles the delivery.
    pub acker: AckHandle,
}

/// Settles one delivery: the transport's [`Acker`], or the in-memory bus's
/// own (kept inline: no allocation per event).
pub struct AckHandle(AckRepr);

enum AckRepr {
    Memory(memory::MemoryAcker),
    Dyn(Box<dyn Acker>),
}

impl AckHandle {
    /// Wraps a transport's acker.
    pub fn new(acker: Box<dyn Acker>) -> Self {
        AckHandle(AckRepr::Dyn(acker))
    }

    pub(crate) fn memory(acker: memory::MemoryAcker) -> Self {
        AckHandle(AckRepr::Memory(acker))
    }

    /// See [`Acker::ack`].
    pub fn ack(self) -> Settle {
        match self.0 {
            AckRepr::Memory(mut m) => m.settle(None),
            AckRepr::Dyn(a) => a.ack(),
        }
    }

    /// See [`Acker::nak`].
    pub fn nak(self, delay: Duration) -> Settle {
        match self.0 {
            AckRepr::Memory(mut m) => m.settle(Some(delay)),
            AckRepr::Dyn(a) => a.nak(delay),
        }
    }

    /// See [`Acker::term`].
    pub fn term(self) -> Settle {
        match self.0 {
            AckRepr::Memory(mut m) => m.settle(None),
            AckRepr::Dyn(a) => a.term(),
        }
    }

    /// See [`Acker::in_progress`].
    pub fn in_progress(&self) -> Completion<'_, Result<(), TransportError>> {
        match &self.0 {
            AckRepr::Memory(_) => Settle::done(),
            AckRepr::Dyn(a) => a.in_progress(),
        }
    }

    /// See [`Acker::progress_interval`].
    pub fn progress_interval(&self) -> Option<Duration> {
        match &self.0 {
            AckRepr::Memory(_) => None,
            AckRepr::Dyn(a) => a.progress_interval(),
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.envelope.id)
            .field("topic", &self.envelope.topic)
            .field("attempt", &self.attempt)
            .field("stream_sequence", &self.stream_sequence)
            .finish()
    }
}

/// A future that is often complete at once: the in-memory bus finishes
/// most publishes and every settle without waiting, and then no allocation
/// is made; remote transports box their network round trip.
#[must_use = "futures do nothing unless awaited"]
pub struct Completion<'a, T>(CompletionRepr<'a, T>);

enum CompletionRepr<'a, T> {
    Ready(Option<T>),
    Pending(BoxFuture<'a, T>),
}

impl<'a, T> Completion<'a, T> {
    /// Already complete.
    pub fn ready(value: T) -> Self {
        Completion(CompletionRepr::Ready(Some(value)))
    }

    /// Completes when `fut` does.
    pub fn pending<F>(fut: F) -> Self
    where
        F: std::future::Future<Output = T> + Send + 'a,
    {
        Completion(CompletionRepr::Pending(Box::pin(fut)))
    }
}

impl<'a> Completion<'a, Result<(), TransportError>> {
    /// Already settled successfully.
    pub fn done() -> Self {
        Self::ready(Ok(()))
    }
}

impl<T> Unpin for Completion<'_, T> {}

impl<T> std::future::Future for Completion<'_, T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        match &mut self.0 {
            CompletionRepr::Ready(r) => {
                std::task::Poll::Ready(r.take().expect("Completion polled after it completed"))
            }
            CompletionRepr::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// The future of settling a delivery.
pub type Settle = Completion<'static, Result<(), TransportError>>;

/// The future of a publish.
pub type PublishFuture<'a> = Completion<'a, Result<(), PublishError>>;

/// Settles a delivery. Dropping an acker without settling it must make the
/// event available again (as a nak without delay would).
pub trait Acker: Send + Sync {
    /// The handler succeeded: never deliver again.
    fn ack(self: Box<Self>) -> Settle;
    /// The handler failed: deliver again after `delay`.
    fn nak(self: Box<Self>, delay: Duration) -> Settle;
    /// Never deliver again (the event was dead-lettered).
    fn term(self: Box<Self>) -> Settle;
    /// The handler is still working: postpone redelivery.
    fn in_progress(&self) -> Completion<'_, Result<(), TransportError>>;
    /// How often a running handler should call [`Acker::in_progress`];
    /// `None` when the transport never redelivers a running event.
    fn progress_interval(&self) -> Option<Duration> {
        None
    }
}

/// A stream of deliveries for one consumer. `next` may be called from several
/// workers at once.
pub trait Subscription: Send + Sync {
    /// The next delivery; `None` once the subscription is stopped or closed.
    fn next(&self) -> BoxFuture<'_, Option<Delivery>>;
    /// A delivery that is ready now, without waiting (a fast path; `None`
    /// does not mean the subscription ended).
    fn try_next(&self) -> Option<Delivery> {
        None
    }
    /// Stops taking new events; deliveries already handed out stay valid.
    fn stop(&self) -> BoxFuture<'_, ()>;
}

/// An event that exhausted its attempts or failed permanently.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The original envelope, payload and headers unchanged.
    pub envelope: Arc<Envelope>,
    /// The last error, as text.
    pub error: String,
    /// The class of the last error.
    pub error_kind: HandlerErrorKind,
    /// The handler that gave up.
    pub handler: String,
    /// Its group.
    pub group: String,
    /// Attempts made.
    pub attempts: u32,
    /// Position in the stream, where the transport has one.
    pub stream_sequence: Option<u64>,
    /// When the handler gave up.
    pub failed_at: SystemTime,
    /// Topic the dead letter is published to.
    pub topic: String,
}

/// What a program publishes and consumes, for transports that provision
/// server-side resources at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisionPlan {
    /// Topics of every registered event and topic patterns of every selected handler.
    pub topics: Vec<&'static str>,
    /// Dead-letter topics the selected handlers name.
    pub dead_letter_topics: Vec<&'static str>,
}

/// The default topic of dead letters of events on `topic`.
pub fn default_dead_letter_topic(topic: &str) -> String {
    format!("eventwire.dlq.{topic}")
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The transport was closed.
    #[error("transport is closed")]
    Closed,
    /// The URL or options are wrong.
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The transport is not compiled into this build.
    #[error("{0}")]
    Unavailable(String),
    /// Connecting, subscribing or settling failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// What failed.
        #[source]
        source: BoxError,
    },
}

impl TransportError {
    /// Wraps an error with what was being done.
    pub fn io(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        TransportError::Io {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Moves envelopes between publishers and handlers.
pub trait Transport: Send + Sync + 'static {
    /// Short name (`memory`, `nats`, `jetstream`) used in errors.
    fn kind(&self) -> &'static str;

    /// What this transport guarantees.
    fn capabilities(&self) -> Capabilities;

    /// Creates or checks what the program's topics need (streams) before any
    /// consumer is created.
    fn prepare<'a>(&'a self, plan: &'a ProvisionPlan) -> BoxFuture<'a, Result<(), TransportError>> {
        let _ = plan;
        Box::pin(async { Ok(()) })
    }

    /// Publishes one envelope; returns once the transport accepted it (for
    /// JetStream: once the server acknowledged it).
    fn publish(&self, envelope: Envelope) -> PublishFuture<'_>;

    /// Publishes several envelopes, in order; a transport that confirms
    /// publishes overlaps the confirmations. One result per envelope.
    fn publish_batch(
        &self,
        envelopes: Vec<Envelope>,
    ) -> BoxFuture<'_, Vec<Result<(), PublishError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(envelopes.len());
            for envelope in envelopes {
                results.push(self.publish(envelope).await);
            }
            results
        })
    }

    /// Creates (or joins) the consumer described by `spec`.
    fn subscribe(
        &self,
        spec: ConsumerSpec,
    ) -> BoxFuture<'_, Result<Box<dyn Subscription>, TransportError>>;

    /// Stores or publishes a dead letter.
    fn dead_letter(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), PublishError>>;

    /// Resolves once no event is queued or in flight, where the transport
    /// can tell (the in-memory bus can); `None` otherwise.
    fn wait_idle(&self) -> Option<BoxFuture<'static, ()>> {
        None
    }

    /// Flushes what was published and releases the connection.
    fn close(&self) -> BoxFuture<'_, Result<(), TransportError>>;
}

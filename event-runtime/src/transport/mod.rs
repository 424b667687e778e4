//! The transport trait: how envelopes move between publishers and handlers.
//!
//! The trait is shaped after the strongest semantics eventwire supports
//! (JetStream pull consumers): a delivery carries its attempt number and is
//! settled exactly once by ack, nak with a delay, or terminate; a long
//! handler can signal progress. Weaker transports implement as much as they
//! can and say what they do not promise through [`Capabilities`].

mod ack;
#[cfg(any(feature = "nats", feature = "kafka"))]
pub(crate) mod dead_letter;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;
pub mod url;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use self::ack::{AckHandle, Acker, Completion, PublishFuture, Settle};
pub(crate) use self::ack::{LocalAck, LocalQueue};
use crate::delivery::{DeadLetter, RetryPolicy, StartPosition};
use crate::envelope::Envelope;
use crate::error::{PublishError, TransportError};

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
    /// Events queued for a consumer group wait in the bus while no instance
    /// of the group runs: a stopped instance's unstarted events go to the
    /// next one even without at-least-once delivery (the in-memory bus).
    pub queues_outlive_instances: bool,
    /// The same event id published twice (within a window) is stored and
    /// delivered once (JetStream: `Nats-Msg-Id` and the duplicate window).
    pub deduplicates_publishes: bool,
    /// Deliveries carry a position in a stream, and dead letters record it
    /// (JetStream's stream sequence).
    pub stream_positions: bool,
    /// The broker counts deliveries: an event redelivered after its
    /// consumer died carries the next attempt number (JetStream). Where it
    /// does not (Kafka), the attempt number restarts at 1 after a crash or
    /// a rebalance, so an event may get up to `max_attempts` attempts per
    /// consumer that takes it.
    pub counts_deliveries: bool,
}

/// How long after a handler completed an event the transport may deliver
/// it again, for the start-up check of the idempotency guard (which must
/// remember the event at least that long to catch the copy).
///
/// ```
/// use std::time::Duration;
/// use eventwire::transport::RedeliveryWindows;
///
/// let w = RedeliveryWindows::new(Duration::from_secs(30), Some(Duration::from_secs(120)));
/// assert_eq!(w.ack_wait, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedeliveryWindows {
    /// Time after which a delivery not acknowledged (its ack lost with the
    /// connection, its process gone) is delivered again: JetStream's
    /// `ack_wait`. Each attempt may take that long.
    pub ack_wait: Duration,
    /// How long the server drops a re-publish of an event id (JetStream's
    /// duplicate window); later re-publishes are stored again and only the
    /// guard catches them. `None` when the server does not de-duplicate.
    pub duplicate_window: Option<Duration>,
}

impl RedeliveryWindows {
    /// The windows of a transport.
    pub const fn new(ack_wait: Duration, duplicate_window: Option<Duration>) -> Self {
        RedeliveryWindows {
            ack_wait,
            duplicate_window,
        }
    }
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
    /// The consumer's name: [`crate::naming::consumer_name`] of the group
    /// and the handler.
    pub fn consumer_name(&self) -> String {
        crate::naming::consumer_name(&self.group, self.handler)
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
    /// Called once after the workers finished with their deliveries (or
    /// were stopped): releases what this instance holds on the broker, and
    /// resolves once it did (a Kafka consumer commits what finished and
    /// leaves its group, so that the next instance's join is not mixed up
    /// with its departure). Nothing to do by default.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
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

/// Checks a topic at the transport boundary, before anything is sent:
/// every transport calls it for every publish and dead letter, so an
/// envelope built by hand (`Transport::publish` is public) cannot reach a
/// wildcard, an upper-case or a server API subject (`$JS.API...`).
/// Allocation-free on the valid path.
pub fn check_topic(topic: &str) -> Result<(), PublishError> {
    crate::topic::validate_topic(topic).map_err(PublishError::Topic)
}

/// Moves envelopes between publishers and handlers.
pub trait Transport: Send + Sync + 'static {
    /// Short name (`memory`, `nats`, `jetstream`) used in errors.
    fn kind(&self) -> &'static str;

    /// What this transport guarantees.
    fn capabilities(&self) -> Capabilities;

    /// When the transport may deliver a completed event again, for
    /// at-least-once transports with a server that redelivers; `None` (the
    /// default) for transports that never redeliver what was acknowledged.
    /// Read after [`Transport::prepare`], it reflects the provisioned
    /// resources (the stream's actual duplicate window).
    fn redelivery(&self) -> Option<RedeliveryWindows> {
        None
    }

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

    /// Makes sure, from synchronous code, that what was published left the
    /// process, waiting at most `within`: called when the last handle users
    /// publish through (an [`App`](crate::App) and the
    /// [`Publisher`](crate::Publisher)s it gave out) is dropped without
    /// `close`, as when `main` returns right after a publish. Nothing to do
    /// (the default) for a transport whose `publish` returns once the event
    /// is stored (the in-memory bus, JetStream).
    fn flush_before_drop(&self, within: Duration) {
        let _ = within;
    }
}

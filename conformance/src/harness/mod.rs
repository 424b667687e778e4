//! The transport under test, as the suite sees it: a [`Harness`] connects
//! app instances to one namespace of the transport, shows what went to dead
//! letters, and says when nothing more will be delivered.

use std::sync::Arc;
use std::time::Duration;

use event_runtime::{HandlerErrorKind, Transport};
use futures_util::future::BoxFuture;

#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;

/// What a transport author implements to run the suite: one harness per
/// test, keeping that test to a namespace of its own (a subject prefix, a
/// vhost, a topic prefix) on a broker that tests may share.
pub trait Harness: Send + Sync + 'static {
    /// Names the transport in the suite's output: `memory`,
    /// `jetstream (nats-server 2.9.10)`.
    fn label(&self) -> String;

    /// A transport for one more app instance, in the test's namespace. Where
    /// the transport has connections, each instance gets its own, as
    /// separate processes would have.
    fn connect<'a>(
        &'a self,
        options: &'a ConnectOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, String>>;

    /// Waits until the broker reports that nothing is pending or awaiting an
    /// acknowledgement for any consumer of the test, within `within`.
    /// [`Idle::Unknowable`] at once where the broker cannot tell (core
    /// NATS): the suite then publishes sentinel events after the test's
    /// events until every consumer has handled one.
    fn wait_idle(&self, within: Duration) -> BoxFuture<'_, Result<Idle, String>>;

    /// Every dead letter of the test so far, as the transport delivers them.
    fn dead_letters(&self) -> Vec<Letter>;

    /// Dead letters the transport keeps (a dead-letter stream or queue);
    /// `None` where they are only published.
    fn stored_dead_letters(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async { None })
    }

    /// Publishes that failed inside the client after being accepted (not
    /// the typed refusals before a send); `None` where the transport does
    /// not count them.
    fn failed_publishes(&self) -> Option<u64> {
        None
    }

    /// Kills the broker (`kill -9`, by PID) and starts it again on the same
    /// address and storage, returning once it accepts connections again.
    /// `None` (the default) where the harness does not own its broker (a
    /// broker tests share): the restart scenario is then skipped.
    fn restart_broker(&self) -> Option<BoxFuture<'_, Result<(), String>>> {
        None
    }

    /// Closes what the harness opened; called once at the end of a test.
    fn finish(&self) -> BoxFuture<'_, ()>;
}

/// What a scenario asks of the transport of one app instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Events a stopped instance fetched without settling should reach the
    /// next instance within about this long (JetStream: the ack wait).
    pub redelivery_after: Option<Duration>,
    /// The scenario kills this instance (its runtime dropped without a
    /// shutdown, as `kill -9` would): its connection will not close
    /// cleanly, and [`Harness::finish`] must not expect it to.
    pub killed_later: bool,
}

impl ConnectOptions {
    /// Options that ask for prompt redelivery of events a stopped instance
    /// held.
    pub fn redelivery_after(within: Duration) -> Self {
        ConnectOptions {
            redelivery_after: Some(within),
            killed_later: false,
        }
    }

    /// Marks the instance as one the scenario will kill.
    pub fn killed_later(mut self) -> Self {
        self.killed_later = true;
        self
    }
}

/// What [`Harness::wait_idle`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// The broker reports nothing pending and nothing awaiting an ack.
    Reached,
    /// The broker cannot tell; the suite uses sentinel events instead.
    Unknowable,
}

/// A dead letter as any transport delivers it.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The original event's id (`ce-id`).
    pub event_id: String,
    /// Where the dead letter went (`eventwire.dlq.<topic>` by default),
    /// without the test's namespace prefix.
    pub topic: String,
    /// The original event's topic (`ce-type`).
    pub event_type: String,
    /// The original event's schema version.
    pub schema_version: u32,
    /// The last error.
    pub error: String,
    /// The kind of the last error.
    pub kind: HandlerErrorKind,
    /// The handler that gave up.
    pub handler: String,
    /// Its consumer group.
    pub group: String,
    /// Attempts made.
    pub attempts: u32,
    /// Position in the stream, where the transport has one.
    pub stream_sequence: Option<u64>,
    /// Whether the time of the failure is recorded.
    pub has_failure_time: bool,
    /// The original payload, unchanged.
    pub payload: Vec<u8>,
}

impl Letter {
    /// A dead letter read off the wire: `get` reads one header of the
    /// message; the CloudEvents attributes are named `<ce_prefix>id`,
    /// `<ce_prefix>type`, ... (`ce-` on NATS, `ce_` on Kafka), the rest are
    /// the `eventwire-dlq-*` headers of docs/wire-format.md.
    pub fn from_wire(
        topic: String,
        payload: Vec<u8>,
        ce_prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Letter {
        let ce = |name: &str| get(&format!("{ce_prefix}{name}"));
        let kind = match get("eventwire-dlq-error-kind").as_deref() {
            Some("retryable") => HandlerErrorKind::Retryable,
            Some("permanent") => HandlerErrorKind::Permanent,
            Some("decode") => HandlerErrorKind::Decode,
            Some("timeout") => HandlerErrorKind::Timeout,
            Some("panic") => HandlerErrorKind::Panic,
            other => panic!("dead letter with error kind {other:?}"),
        };
        Letter {
            event_id: ce("id").unwrap_or_default(),
            topic,
            event_type: ce("type").unwrap_or_default(),
            schema_version: ce("schemaversion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            error: get("eventwire-dlq-error").unwrap_or_default(),
            kind,
            handler: get("eventwire-dlq-handler").unwrap_or_default(),
            group: get("eventwire-dlq-group").unwrap_or_default(),
            attempts: get("eventwire-dlq-attempts")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            stream_sequence: get("eventwire-dlq-stream-sequence").and_then(|v| v.parse().ok()),
            has_failure_time: get("eventwire-dlq-failed-at").is_some(),
            payload,
        }
    }
}

/// Polls `busy` every `every` until it says nothing is pending (`Ok(None)`:
/// [`Idle::Reached`]), fails, or `within` passed: the loop of a
/// [`Harness::wait_idle`] whose broker can tell. `Ok(Some(what))` names
/// what is still pending, for the error at the deadline.
pub async fn poll_idle<F, Fut>(
    within: Duration,
    every: Duration,
    mut busy: F,
) -> Result<Idle, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, String>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        let Some(pending) = busy().await? else {
            return Ok(Idle::Reached);
        };
        if std::time::Instant::now() >= deadline {
            return Err(format!("{pending} not idle after {within:?}"));
        }
        tokio::time::sleep(every).await;
    }
}

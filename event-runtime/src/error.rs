//! Errors of the layers below the app: one boxed-error alias, the
//! transport's error with a kind to match on, and the error of a publish.
//!
//! Each error prints its own message and exposes what caused it through
//! [`std::error::Error::source`], never both, so a chain printed by
//! [`crate::Error`]'s `Debug` (or anyhow) reads each cause once.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::codec::EncodeError;
use crate::topic::TopicError;

/// A boxed error source, `Send + Sync` so it crosses tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of transport operation failed; match on it, the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The transport was closed.
    Closed,
    /// The URL or options are wrong.
    Config,
    /// The transport is not compiled into this build (a cargo feature is off).
    NotCompiled,
    /// The server lacks something the transport needs (JetStream not enabled).
    Unavailable,
    /// Connecting failed.
    Connect,
    /// Creating or checking server-side resources (streams, consumers) failed.
    Provision,
    /// Subscribing failed.
    Subscribe,
    /// The broker did not accept a publish.
    Publish,
    /// Acknowledging, rejecting or extending a delivery failed.
    Settle,
    /// The server refused a subscription or a publish: the account lacks
    /// the permission (NATS `Permissions Violation`).
    PermissionDenied,
}

/// A transport failure: a [`TransportErrorKind`], a message, and the cause.
///
/// ```
/// use eventwire::{TransportError, TransportErrorKind};
/// let e = TransportError::config("no NATS server address");
/// assert_eq!(e.kind(), TransportErrorKind::Config);
/// assert_eq!(e.to_string(), "no NATS server address");
/// ```
pub struct TransportError {
    kind: TransportErrorKind,
    message: Cow<'static, str>,
    source: Option<BoxError>,
}

impl TransportError {
    /// An error of `kind` described by `message`.
    pub fn new(kind: TransportErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` caused by `source`; `message` says what was being done.
    pub fn with_source(
        kind: TransportErrorKind,
        message: impl Into<Cow<'static, str>>,
        source: impl Into<BoxError>,
    ) -> Self {
        TransportError {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The transport was closed.
    pub fn closed() -> Self {
        Self::new(TransportErrorKind::Closed, "transport is closed")
    }

    /// Wrong URL or options.
    pub fn config(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(TransportErrorKind::Config, message)
    }

    /// What kind of operation failed.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TransportError");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

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
    /// The event id is empty: consumers could not tell events apart.
    #[error("event id must not be empty")]
    EmptyId,
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
    /// The transport failed or is closed; unless its kind is
    /// [`TransportErrorKind::Closed`], the event may or may not have been delivered.
    #[error("publish to `{topic}` failed")]
    Transport {
        /// The topic.
        topic: String,
        /// What failed.
        #[source]
        source: TransportError,
    },
}

impl PublishError {
    /// A publish refused because the transport is closed.
    pub fn closed(topic: &str) -> Self {
        PublishError::Transport {
            topic: topic.to_owned(),
            source: TransportError::closed(),
        }
    }

    /// A publish the broker did not accept.
    pub fn rejected(topic: &str, message: &'static str, source: impl Into<BoxError>) -> Self {
        PublishError::Transport {
            topic: topic.to_owned(),
            source: TransportError::with_source(TransportErrorKind::Publish, message, source),
        }
    }

    /// Whether the transport was closed (nothing was sent).
    pub fn is_closed(&self) -> bool {
        matches!(self, PublishError::Transport { source, .. } if source.kind() == TransportErrorKind::Closed)
    }
}

//! Runtime of eventwire: the [`Event`] trait, envelopes and codecs, the
//! link-time registry, handler dispatch, transports and the [`App`].
//!
//! Users depend on the `eventwire` facade crate, which re-exports this crate
//! together with the macros.
#![warn(missing_docs, unreachable_pub)]

// Layers, lowest first; a module imports only from modules listed above
// it (`scripts/check-layers` enforces it):
//   core types   topic, naming, duration, codec, event, envelope, delivery, error, stop
//   transport    transport (the trait, memory/, nats/)
//   publisher    publisher
//   dispatch     observe, handler, registry
//   app          app, and beside it testing, describe, schema, cli
pub mod codec;
pub mod delivery;
pub mod duration;
pub mod envelope;
pub mod error;
pub mod event;
pub mod naming;
mod stop;
pub mod topic;

pub mod transport;

pub mod publisher;

pub mod handler;
pub mod observe;
pub mod registry;

pub mod app;
#[cfg(feature = "cli")]
pub mod cli;
pub mod describe;
pub mod schema;
pub mod testing;

pub use app::{App, AppBuilder, Error, Result, ShutdownHandle, ShutdownReport};
pub use codec::{DecodeError, DecodeErrorKind, EncodeError, Format};
pub use delivery::{Backoff, DeadLetter, HandlerErrorKind, RetryPolicy, StartPosition};
pub use envelope::{Envelope, EnvelopeError, EventId, PublishOptions};
pub use error::{BoxError, PublishError, TransportError, TransportErrorKind};
pub use event::{Event, EventDescriptor, EventKey, FieldDescriptor, UpcastFrom};
pub use handler::{
    Claim, Context, HandlerDescriptor, HandlerError, HandlerOptions, IdempotencyKey,
    IdempotencyStore, InMemoryIdempotency, RawEvent, State,
};
pub use observe::{HandlerMetrics, HandlerRun, Metrics, Observer, Outcome};
pub use publisher::Publisher;
pub use registry::{HandlerSelection, Registry, ValidationError, ValidationErrors};
pub use transport::memory::MemoryTransport;
#[cfg(feature = "nats")]
pub use transport::nats;
pub use transport::Transport;

/// Items used by the code `#[derive(Event)]` and `#[handler]` generate. Not
/// public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use bytes::Bytes;
    pub use linkme;
    pub use std::borrow::Cow;

    pub use crate::codec::json;
    #[cfg(feature = "protobuf")]
    pub use crate::codec::protobuf;
    pub use crate::codec::{DecodeError, EncodeError, Format};
    pub use crate::delivery::{Backoff, StartPosition};
    pub use crate::event::schema_probe;
    pub use crate::event::{Event, EventDescriptor, EventKey, FieldDescriptor, UpcastFrom};
    pub use crate::handler::erased::{raw_handler, typed_handler, ErasedHandler};
    pub use crate::handler::options::{Durability, TimeoutSetting};
    pub use crate::handler::{
        Context, FromContext, HandlerDescriptor, HandlerError, HandlerOptions, IntoHandlerResult,
        MissingState, RawEvent, StateMap,
    };
    pub use crate::registry::{EVENTS, HANDLERS};
    pub use serde_json::Value as JsonValue;
    pub use std::sync::Arc;
    pub use std::time::Duration;

    /// Checks at compile time that a handler's written topic equals its
    /// event type's topic.
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Length of the message built by [`concat_bytes`].
    pub const fn concat_len(parts: &[&str]) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < parts.len() {
            n += parts[i].len();
            i += 1;
        }
        n
    }

    /// Concatenates strings at compile time (for messages of const assertions).
    pub const fn concat_bytes<const N: usize>(parts: &[&str]) -> [u8; N] {
        let mut out = [0u8; N];
        let mut at = 0;
        let mut i = 0;
        while i < parts.len() {
            let bytes = parts[i].as_bytes();
            let mut j = 0;
            while j < bytes.len() {
                out[at] = bytes[j];
                at += 1;
                j += 1;
            }
            i += 1;
        }
        out
    }

    /// The bytes of [`concat_bytes`] as text.
    pub const fn bytes_str(bytes: &[u8]) -> &str {
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => "<invalid utf-8>",
        }
    }
}

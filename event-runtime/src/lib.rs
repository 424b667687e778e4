//! Runtime of eventwire: the [`Event`] trait, envelopes and codecs, the
//! link-time registry, handler dispatch, transports and the [`App`].
//!
//! Users depend on the `eventwire` facade crate, which re-exports this crate
//! together with the macros.
#![warn(missing_docs, unreachable_pub)]

pub mod app;
#[cfg(feature = "cli")]
pub mod cli;
pub mod codec;
pub mod describe;
pub mod envelope;
mod error;
pub mod event;
pub mod handler;
pub mod observe;
pub mod publisher;
pub mod registry;
pub mod schema;
mod stop;
pub mod testing;
pub mod topic;
pub mod transport;

pub use app::{App, AppBuilder, ShutdownHandle, ShutdownReport};
pub use codec::{DecodeError, DecodeErrorKind, EncodeError, Format};
pub use envelope::{Envelope, EnvelopeError, EventId};
pub use error::{Error, Result};
pub use event::{Event, EventDescriptor, EventKey, FieldDescriptor, UpcastFrom};
pub use handler::{
    Backoff, Claim, Context, HandlerDescriptor, HandlerError, HandlerErrorKind, HandlerOptions,
    IdempotencyKey, IdempotencyStore, InMemoryIdempotency, RawEvent, RetryPolicy, State,
};
pub use observe::{HandlerMetrics, HandlerRun, Metrics, Observer, Outcome};
pub use publisher::{PublishError, PublishOptions, Publisher};
pub use registry::{HandlerSelection, Registry, ValidationError, ValidationErrors};
pub use transport::memory::MemoryTransport;
#[cfg(feature = "nats")]
pub use transport::nats;
pub use transport::{DeadLetter, Transport, TransportError};

/// Items used by the code `#[derive(Event)]` and `#[handler]` generate. Not
/// public API: it changes without notice.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

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
//   (hidden)     __private (private.rs), __fuzz (fuzzing.rs)
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

pub use app::{
    App, AppBuilder, Error, Result, ShutdownHandle, ShutdownReport, FLUSH_ON_DROP_TIMEOUT,
};
pub use codec::{DecodeError, DecodeErrorKind, EncodeError, Format};
pub use delivery::{Backoff, DeadLetter, HandlerErrorKind, RetryPolicy, StartPosition};
pub use envelope::{Envelope, EnvelopeError, EventId, PublishOptions};
pub use error::{BoxError, PublishError, TransportError, TransportErrorKind};
pub use event::{Event, EventDescriptor, EventKey, FieldDescriptor, UpcastFrom};
pub use handler::{
    Claim, Context, HandlerDescriptor, HandlerError, HandlerOptions, IdempotencyKey,
    IdempotencyStore, InMemoryIdempotency, RawEvent, Retention, State,
};
pub use observe::{HandlerMetrics, HandlerRun, Metrics, Observer, Outcome};
pub use publisher::Publisher;
pub use registry::{HandlerSelection, Registry, ValidationError, ValidationErrors};
#[cfg(feature = "kafka")]
pub use transport::kafka;
pub use transport::memory::MemoryTransport;
#[cfg(feature = "nats")]
pub use transport::nats;
pub use transport::Transport;

/// Items used by the code `#[derive(Event)]` and `#[handler]` generate. Not
/// public API: it changes without notice.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`).
/// Not public API: it changes without notice.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;

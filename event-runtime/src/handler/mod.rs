//! Handlers: what `#[handler]` registers, the arguments a handler takes, the
//! errors it returns, and the policy that runs it.

mod context;
mod deferral;
pub(crate) mod dispatch;
pub(crate) mod erased;
mod error;
mod extract;
mod idempotency;
pub(crate) mod options;

pub use context::{Context, RawEvent};
pub use error::{HandlerError, IntoHandlerResult};
pub use extract::{FromContext, MissingState, State, StateMap};
pub use idempotency::{Claim, IdempotencyKey, IdempotencyStore, InMemoryIdempotency, Retention};
pub use options::{HandlerDescriptor, HandlerOptions};

pub use crate::delivery::{Backoff, HandlerErrorKind, RetryPolicy, StartPosition};

//! Handlers: what `#[handler]` registers, the arguments a handler takes, the
//! errors it returns, and the policy that runs it.

mod context;
pub(crate) mod dispatch;
mod error;
mod extract;
mod idempotency;
mod retry;

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub(crate) use context::decode_envelope;
pub use context::{Context, RawEvent};
pub use error::{HandlerError, HandlerErrorKind, IntoHandlerResult};
pub use extract::{FromContext, MissingState, State, StateMap};
pub use idempotency::{Claim, IdempotencyKey, IdempotencyStore, InMemoryIdempotency};
pub use retry::{Backoff, RetryPolicy};

use crate::Event;

/// Where a new durable consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// Only events published after the consumer was created (the default).
    #[default]
    New,
    /// Every event the stream still holds.
    All,
}

/// Whether the consumer of a handler outlives the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Durable, named after the group and the handler (the default).
    #[default]
    Default,
    /// Durable with this consumer name.
    Named(&'static str),
    /// Removed when the process stops (`durable = false`).
    Ephemeral,
}

/// A handler's timeout setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeoutSetting {
    /// [`HandlerOptions::DEFAULT_TIMEOUT`].
    #[default]
    Default,
    /// No timeout (`timeout = "none"`).
    Never,
    /// This timeout.
    After(Duration),
}

/// The options written in `#[handler(...)]`; `None` means the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerOptions {
    /// Consumer group; defaults to the service name.
    pub group: Option<&'static str>,
    /// Attempts after the first one.
    pub retries: Option<u32>,
    /// Delay between attempts.
    pub backoff: Option<Backoff>,
    /// How long one attempt may take.
    pub timeout: TimeoutSetting,
    /// Events processed at once by one instance.
    pub concurrency: Option<u32>,
    /// Keep the order of events with the same key.
    pub ordered: bool,
    /// Consumer durability (JetStream).
    pub durable: Durability,
    /// Where a new consumer starts (JetStream).
    pub start: Option<StartPosition>,
    /// Topic dead letters are published to, instead of the default.
    pub dead_letter: Option<&'static str>,
}

impl HandlerOptions {
    /// Every option at its default.
    pub const DEFAULT: HandlerOptions = HandlerOptions {
        group: None,
        retries: None,
        backoff: None,
        timeout: TimeoutSetting::Default,
        concurrency: None,
        ordered: false,
        durable: Durability::Default,
        start: None,
        dead_letter: None,
    };

    /// Timeout when none is written: 30 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The retry policy these options describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries.unwrap_or(RetryPolicy::DEFAULT_RETRIES),
            backoff: self.backoff.unwrap_or_default(),
        }
    }

    /// The timeout of one attempt, `None` for no timeout.
    pub fn timeout(&self) -> Option<Duration> {
        match self.timeout {
            TimeoutSetting::Default => Some(Self::DEFAULT_TIMEOUT),
            TimeoutSetting::Never => None,
            TimeoutSetting::After(d) => Some(d),
        }
    }

    /// Events processed at once; 1 when not written.
    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(1).max(1) as usize
    }
}

impl Default for HandlerOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Builds a handler's runtime form once the app's state is known.
pub type BuildHandler = fn(&StateMap) -> Result<Arc<dyn ErasedHandler>, MissingState>;

/// What the registry knows about one `#[handler]`.
#[derive(Debug)]
pub struct HandlerDescriptor {
    /// Handler name (the function name unless `name = "..."`).
    pub name: &'static str,
    /// Path of the function (`my_app::inventory::reserve_stock`).
    pub function: &'static str,
    /// Topic or topic pattern subscribed to.
    pub topic: &'static str,
    /// Rust name of the event type; `None` for a `RawEvent` handler.
    pub event: Option<&'static str>,
    /// The options written in the attribute.
    pub options: HandlerOptions,
    /// Builds the runtime form.
    pub build: BuildHandler,
}

/// A handler with its argument types erased: takes a delivery context,
/// decodes the event, calls the function.
pub trait ErasedHandler: Send + Sync + 'static {
    /// Runs the handler for the event in `ctx`.
    fn call(&self, ctx: Context) -> BoxFuture<'static, Result<(), HandlerError>>;
}

struct TypedHandler<E, F> {
    f: F,
    _event: PhantomData<fn() -> E>,
}

impl<E, F, Fut> ErasedHandler for TypedHandler<E, F>
where
    E: Event,
    F: Fn(E, &Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn call(&self, ctx: Context) -> BoxFuture<'static, Result<(), HandlerError>> {
        match decode_envelope::<E>(ctx.envelope()) {
            Ok(event) => Box::pin((self.f)(event, &ctx)),
            Err(e) => Box::pin(std::future::ready(Err(HandlerError::decode(e)))),
        }
    }
}

/// Wraps a function of a typed event (used by `#[handler]`).
pub fn typed_handler<E, F, Fut>(f: F) -> Arc<dyn ErasedHandler>
where
    E: Event,
    F: Fn(E, &Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Arc::new(TypedHandler {
        f,
        _event: PhantomData,
    })
}

struct RawHandler<F>(F);

impl<F, Fut> ErasedHandler for RawHandler<F>
where
    F: Fn(RawEvent, &Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn call(&self, ctx: Context) -> BoxFuture<'static, Result<(), HandlerError>> {
        let raw = RawEvent::new(ctx.envelope_arc());
        Box::pin((self.0)(raw, &ctx))
    }
}

/// Wraps a function of a [`RawEvent`] (used by `#[handler]`).
pub fn raw_handler<F, Fut>(f: F) -> Arc<dyn ErasedHandler>
where
    F: Fn(RawEvent, &Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Arc::new(RawHandler(f))
}

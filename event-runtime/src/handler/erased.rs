//! The plumbing between `#[handler]` and dispatch: a handler with its
//! argument types erased. Reached by generated code through
//! `eventwire::__private`; not public API.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Context, HandlerError, MissingState, RawEvent, StateMap};
use crate::event::Event;

/// Builds a handler's runtime form once the app's state is known.
pub(crate) type BuildHandler = fn(&StateMap) -> Result<Arc<dyn ErasedHandler>, MissingState>;

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
        match ctx.envelope().decode::<E>() {
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

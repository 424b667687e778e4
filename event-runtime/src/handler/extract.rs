//! Handler arguments after the event: extractors.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;

use super::Context;

/// Values given to the app builder with `.state(value)`, by type.
#[derive(Default)]
pub struct StateMap {
    values: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl StateMap {
    /// Stores a value, replacing any earlier value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The value of type `T`, if one was given.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref())
    }
}

impl std::fmt::Debug for StateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMap")
            .field("len", &self.values.len())
            .finish()
    }
}

/// A `State<T>` argument whose `T` was never given to the builder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no state of type `{type_name}`; give it to the builder with `.state(value)`")]
pub struct MissingState {
    /// The missing type.
    pub type_name: &'static str,
}

/// A handler argument built from the app and the delivery.
///
/// Arguments are prepared once when the app is built (a missing
/// [`State`] is a start-up error, not a failure of every event) and
/// extracted for every event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler argument",
    label = "not an extractor",
    note = "after the event, handler arguments are extractors: `Context` or `State<T>` (a value given to the builder with `.state(...)`)"
)]
pub trait FromContext: Sized {
    /// What is kept between events.
    type Prepared: Send + Sync + 'static;

    /// Runs once at start-up.
    fn prepare(state: &StateMap) -> Result<Self::Prepared, MissingState>;

    /// Runs for every event.
    fn extract(prepared: &Self::Prepared, ctx: &Context) -> Self;
}

impl FromContext for Context {
    type Prepared = ();

    fn prepare(_: &StateMap) -> Result<(), MissingState> {
        Ok(())
    }

    fn extract(_: &(), ctx: &Context) -> Self {
        ctx.clone()
    }
}

/// A value given to the app builder with `.state(value)`, cloned for every
/// event (wrap large values in `Arc`).
///
/// ```
/// use eventwire::prelude::*;
/// use std::sync::Arc;
///
/// #[derive(Clone)]
/// struct Db(Arc<String>);
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// struct UserSignedUp { email: String }
///
/// #[handler]
/// async fn welcome(evt: UserSignedUp, State(db): State<Db>) {
///     let _ = (&db.0, evt.email);
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromContext for State<T> {
    type Prepared = T;

    fn prepare(state: &StateMap) -> Result<T, MissingState> {
        state.get::<T>().cloned().ok_or(MissingState {
            type_name: type_name::<T>(),
        })
    }

    fn extract(prepared: &T, _: &Context) -> Self {
        State(prepared.clone())
    }
}

impl<T> std::ops::Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

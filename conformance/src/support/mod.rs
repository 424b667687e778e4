//! What the scenarios use to observe: the [`Recorder`] of what handlers
//! saw, and waiting on conditions with a deadline.

mod eventually;
mod recorder;

pub use eventually::{eventually, eventually_async};
pub use recorder::{Arrival, Delivery, Effect, Instance, Recorder, SENTINEL_HEADER};

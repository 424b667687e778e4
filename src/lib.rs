//! # eventwire
//!
//! Typed, event-driven services. Put `#[derive(Event)]` on structs and
//! `#[handler]` on async functions; the macros generate topics, schema
//! versions, serialization and a link-time registry of handlers, and
//! [`App`] wires every handler to a bus at start-up: in memory by default,
//! NATS or NATS JetStream across processes.
//!
//! ```
//! use eventwire::prelude::*;
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, Event)]
//! #[event(topic = "greetings.sent")]
//! struct GreetingSent {
//!     #[event(key)]
//!     to: String,
//! }
//!
//! #[handler(group = "lib-docs")]
//! async fn print_greeting(evt: GreetingSent, ctx: Context) {
//!     println!("hello {} (event {})", evt.to, ctx.event_id());
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> eventwire::Result<()> {
//! let app = App::builder()
//!     .service("greeter")
//!     .handlers(HandlerSelection::groups(["lib-docs"]))
//!     .build()
//!     .await?;
//! app.publisher().publish(&GreetingSent { to: "world".into() }).await?;
//! app.wait_idle().await?;
//! app.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! See the README for the wire format, the transports and the delivery rules.
#![warn(missing_docs)]

pub use event_derive::{handler, Event};
pub use event_runtime::*;

/// Testing helpers: the recording [`TestApp`](testing::TestApp) harness,
/// and with feature `conformance` the transport conformance suite.
pub mod testing {
    pub use event_runtime::testing::*;

    /// The transport conformance suite (feature `conformance`): every
    /// delivery guarantee, run on a transport through a small harness. See
    /// the crate `eventwire-conformance`.
    #[cfg(feature = "conformance")]
    pub use eventwire_conformance as conformance;
}

/// The names most programs need.
pub mod prelude {
    pub use event_derive::{handler, Event};
    pub use event_runtime::{
        App, Context, Event, EventId, HandlerError, HandlerSelection, Publisher, RawEvent, State,
    };
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use event_runtime::__private::*;
}

//! The conformance suite of eventwire transports: every delivery guarantee
//! eventwire makes, written once and run on any [`Transport`] through a
//! small [`Harness`]. Users reach it as `eventwire::testing::conformance`
//! (feature `conformance`); this repository runs it on the in-memory bus,
//! core NATS, JetStream and Kafka in `tests/conformance.rs`.
//!
//! A transport declares what it promises in its [`Capabilities`]; each
//! [`Scenario`] names the [`Claim`]s it needs, and a scenario whose claim
//! the transport does not make is skipped with the reason printed
//! (`skip: <scenario> on <label> (<why>)` on stderr), never silently.
//!
//! A transport author implements [`Harness`] (how to connect one more app
//! instance, how to see dead letters, whether the broker can say it is
//! idle) and gets one test per scenario from [`conformance_tests!`]:
//!
//! ```no_run
//! use eventwire_conformance::{conformance_tests, MemoryHarness};
//!
//! mod memory {
//!     use super::*;
//!     // One #[test] per scenario: memory::publish_subscribe, ...
//!     conformance_tests!(|| async { Ok::<_, String>(MemoryHarness::new()) });
//! }
//! # fn main() {}
//! ```
//!
//! The scenarios register their own events (topics `eventwire-conformance.*`)
//! and handlers (names `conformance_*`). Those handlers run only when an
//! app names them: [`HandlerSelection::All`](event_runtime::HandlerSelection)
//! and group selections leave them out, so linking the suite into a test
//! binary changes nothing for the program's own apps.
//!
//! [`Transport`]: event_runtime::Transport
//! [`Capabilities`]: event_runtime::transport::Capabilities
#![warn(missing_docs)]

// The macros expand to `::eventwire::__private`: the runtime's.
extern crate event_runtime as eventwire;

mod bus;
mod features;
mod harness;
mod run;
pub mod scenarios;
mod support;

pub use bus::{Bus, PATIENCE, SERVICE};
pub use features::{Claim, Features};
#[cfg(feature = "kafka")]
pub use harness::kafka::KafkaHarness;
pub use harness::memory::MemoryHarness;
#[cfg(feature = "nats")]
pub use harness::nats::{NatsHarness, Restart};
pub use harness::{poll_idle, ConnectOptions, Harness, Idle, Letter};
pub use run::{run_scenario, run_test, Scenario, Verdict, SCENARIOS};
pub use support::SENTINEL_HEADER;
pub use support::{eventually, eventually_async, Arrival, Delivery, Effect, Instance, Recorder};

/// What the scenarios import.
mod prelude {
    pub use event_derive::{handler, Event};
    pub use event_runtime::{Context, Event, EventId, HandlerError, Publisher, State};
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use tokio;
}

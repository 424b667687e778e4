//! NATS transports: core NATS (`nats://`, at-most-once, queue groups) and
//! JetStream (`jetstream://`, at-least-once, durable pull consumers).
//!
//! Both speak the wire format of `docs/wire-format.md` and work with
//! nats-server 2.9 and newer: no option that needs a newer server is used.

mod config;
mod connection;
mod core;
mod jetstream;
mod stats;
mod url;
mod wire;

pub use self::config::{Auth, NatsConfig, Provision, Storage, StreamSettings, Tls};
pub use self::core::NatsTransport;
pub use self::jetstream::JetStreamTransport;
pub use self::stats::NatsStats;

// The receive and dead-letter paths of the wire format, for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) use self::wire::{dead_letter_message, envelope_of, headers, malformed_letter, MSG_ID};

/// The NATS client crate, for what eventwire does not wrap (inspecting
/// streams, reading dead letters with a plain consumer).
pub use async_nats;

//! Test support, one file per concept:
//!
//! - [`nats_server`]: nats-server processes started by the tests themselves
//!   on free ports: owned by one test (to kill or restart it), or shared by
//!   every test of one test binary in one run;
//! - [`eventually`]: waiting on a condition with a deadline, never on luck;
//! - [`recorder`]: what handlers saw, per event, attempt, instance and key;
//! - [`log_capture`]: what the code under test logged through `tracing`.
#![allow(dead_code, unused_imports)]

pub mod eventually;
pub mod log_capture;
pub mod nats_server;
pub mod recorder;

pub use eventually::{eventually, eventually_async};
pub use log_capture::{LogCapture, LogLine};
pub use nats_server::{
    free_port, server_binaries, server_binary, shared_server, unique_prefix, NatsServer,
    ServerBinary, ServerSlot, SharedServer,
};
pub use recorder::{Arrival, Delivery, Effect, Instance, Recorder, SENTINEL_HEADER};

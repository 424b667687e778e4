//! Test support, one file per concept:
//!
//! - [`nats_server`]: nats-server processes started by the tests themselves
//!   on free ports: owned by one test (to kill or restart it), or shared by
//!   every test of one test binary in one run;
//! - waiting on a condition with a deadline, never on luck, and the
//!   recorder of what handlers saw (per event, attempt, instance and key):
//!   the conformance suite's own ([`eventwire_conformance`]);
//! - [`log_capture`]: what the code under test logged through `tracing`.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod certs;
pub mod kafka_broker;
pub mod log_capture;
pub mod nats_server;

pub use certs::certificates;
pub use eventwire_conformance::{
    eventually, eventually_async, Arrival, Delivery, Effect, Instance, Recorder, SENTINEL_HEADER,
};
pub use kafka_broker::{shared_kafka, tansu_version};
pub use log_capture::{LogCapture, LogLine};
pub use nats_server::{
    free_port, server_binaries, server_binary, shared_server, unique_prefix, NatsServer,
    ServerBinary, ServerSlot, SharedServer,
};

/// One multi-threaded test per nats-server version for each named async
/// function taking a [`SharedServer`]: `on_each_server!(f, g)` makes
/// `f::oldest`, `f::newest`, ... A version that is not installed is skipped
/// with its reason printed. Needs `#[macro_use] mod support;`.
macro_rules! on_each_server {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn oldest() {
                run(ServerSlot::Oldest).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn newest() {
                run(ServerSlot::Newest).await
            }

            async fn run(slot: ServerSlot) {
                match server_binary(slot) {
                    Ok(binary) => {
                        let server = tokio::task::spawn_blocking(move || shared_server(&binary))
                            .await
                            .unwrap();
                        super::$name(server).await
                    }
                    Err(why) => eprintln!("skip: {} on {slot:?} ({why})", stringify!($name)),
                }
            }
        }
    )*};
}

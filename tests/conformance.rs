//! The transport conformance suite (`eventwire::testing::conformance`, the
//! crate `eventwire-conformance`) on every transport of this repository:
//! the in-memory bus, core NATS and JetStream on the oldest and the
//! newest installed nats-server, and Kafka on tansu. One test per (transport, scenario), named
//! `<transport>::<scenario>`, so nextest runs them in parallel and its
//! output reads as the matrix.
//!
//! The NATS entries share one nats-server per version for the whole test
//! binary, the Kafka entries one tansu broker; each test keeps to a subject
//! or topic prefix (and stream, consumer groups) of its own. A
//! scenario a transport does not claim passes as skipped, with the reason
//! on stderr:
//!
//! ```text
//! cargo nextest run --test conformance --no-capture 2>&1 | grep -E '^(run|skip):' | sort
//! ```
//!
//! Transport-specific behaviour (JetStream provisioning, ack wait, consumer
//! recreation, server restarts, security, core NATS configuration) stays in
//! the transports' own test files.

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};

use eventwire_conformance::{
    conformance_tests, run_test, KafkaHarness, MemoryHarness, NatsHarness, Restart,
};
use support::{server_binary, shared_kafka, shared_server, tansu_version, NatsServer, ServerSlot};

/// A harness on the shared nats-server of `slot`: core NATS, or JetStream.
async fn nats(slot: ServerSlot, jetstream: bool) -> Result<NatsHarness, String> {
    let binary = server_binary(slot)?;
    let server = tokio::task::spawn_blocking(move || shared_server(&binary))
        .await
        .unwrap();
    let (major, minor, patch) = server.binary.semver();
    let scheme = if jetstream { "jetstream" } else { "nats" };
    NatsHarness::connect(
        &format!("127.0.0.1:{}", server.port),
        jetstream,
        format!("{scheme} (nats-server {major}.{minor}.{patch})"),
    )
    .await
}

/// A harness on the shared Kafka-compatible broker (tansu).
async fn kafka_harness() -> Result<KafkaHarness, String> {
    let address = tokio::task::spawn_blocking(shared_kafka).await.unwrap();
    KafkaHarness::connect(&address, format!("kafka ({})", tansu_version())).await
}

mod memory {
    use super::*;
    conformance_tests!(|| async { Ok::<_, String>(MemoryHarness::new()) });
}

mod nats_oldest {
    use super::*;
    conformance_tests!(|| nats(ServerSlot::Oldest, false));
}

mod nats_newest {
    use super::*;
    conformance_tests!(|| nats(ServerSlot::Newest, false));
}

mod jetstream_oldest {
    use super::*;
    conformance_tests!(|| nats(ServerSlot::Oldest, true));
}

mod jetstream_newest {
    use super::*;
    conformance_tests!(|| nats(ServerSlot::Newest, true));
}

mod kafka {
    use super::*;
    conformance_tests!(kafka_harness);
}

/// The scenario that kills and restarts the broker needs a server of its
/// own (file storage, stopped by PID): one per nats-server version. In the
/// modules above it is skipped (their harnesses share their servers). The
/// tansu broker of the Kafka tests keeps nothing across a restart (memory
/// storage), so Kafka does not run it.
mod broker_restart {
    use super::*;

    fn run(slot: ServerSlot) {
        run_test("broker_restarted_under_load", || async move {
            let binary = server_binary(slot)?;
            let server = tokio::task::spawn_blocking(move || NatsServer::start(&binary))
                .await
                .unwrap();
            let (major, minor, patch) = server.binary.semver();
            let address = format!("127.0.0.1:{}", server.port);
            let server = Arc::new(Mutex::new(server));
            let restart: Restart = Arc::new(move || {
                let server = server.clone();
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || server.lock().unwrap().restart())
                        .await
                        .map_err(|e| e.to_string())
                })
            });
            NatsHarness::connect(
                &address,
                true,
                format!("jetstream (nats-server {major}.{minor}.{patch}, own server)"),
            )
            .await
            .map(|h| h.with_restart(restart))
        });
    }

    #[test]
    fn jetstream_oldest() {
        run(ServerSlot::Oldest)
    }

    #[test]
    fn jetstream_newest() {
        run(ServerSlot::Newest)
    }
}

/// The scenarios' handlers run only when an app names them: an app that
/// selects every handler of this binary gets none of them.
#[test]
fn the_suite_adds_no_handler_to_apps_that_select_all() {
    let registry = eventwire::Registry::global();
    let selected: Vec<_> = registry
        .select("any", &eventwire::HandlerSelection::All)
        .map(|h| h.function)
        .collect();
    assert!(
        selected
            .iter()
            .all(|f| !f.starts_with("eventwire_conformance::")),
        "{selected:?}"
    );
    assert!(registry
        .handlers()
        .iter()
        .any(|h| h.is_conformance_scenario()));
}

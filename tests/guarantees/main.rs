//! The guarantee suite: every delivery guarantee eventwire makes is one
//! function here, run on every transport through one entry point that takes
//! the transport (a [`Bus`] builds apps on it) and its [`Features`] (its
//! `Capabilities` plus a table of claims). A guarantee a transport does not
//! claim is skipped by name, with the reason printed (`skip: ... (...)`).
//!
//! The table below is the matrix: one test per (guarantee, transport), named
//! `<guarantee>::<transport>`, so nextest runs them in parallel and its
//! output reads as the matrix. Transports: `memory`, core NATS and
//! JetStream on the oldest and the newest installed nats-server
//! (`nats_oldest`, `nats_newest`, `jetstream_oldest`, `jetstream_newest`).
//! The NATS entries share one nats-server per version for the whole test
//! binary; each test keeps to a subject prefix (and stream) of its own.
//!
//! nextest shows a skipped pair as passed; the reasons are on stderr:
//!
//! ```text
//! cargo nextest run --test guarantees --no-capture 2>&1 | grep -E '^(run|skip):' | sort
//! ```
//!
//! Transport-specific behaviour (JetStream provisioning, ack wait, consumer
//! recreation, server restarts, security, core NATS configuration) stays in
//! the transports' own test files.

#[path = "../support/mod.rs"]
mod support;

mod bus;
mod causality;
mod delivery;
mod failures;
mod features;
mod lifecycle;
mod ordering;
mod publishing;

use bus::Bus;
use features::{Claim, Features, TransportKind};
use support::ServerSlot;

/// Connects the transport and checks the claims the guarantee needs.
/// `None`, with the reason printed, when the pair is skipped.
async fn setup(guarantee: &str, kind: TransportKind, claims: &[Claim]) -> Option<(Bus, Features)> {
    let (bus, features) = match Bus::connect(kind).await {
        Ok(connected) => connected,
        Err(why) => {
            eprintln!("skip: {guarantee} on {} ({why})", kind.entry());
            return None;
        }
    };
    for claim in claims {
        if let Some(why) = features.lacks(*claim) {
            eprintln!("skip: {guarantee} on {} ({why})", features.label);
            bus.finish().await;
            return None;
        }
    }
    eprintln!("run: {guarantee} on {}", features.label);
    Some((bus, features))
}

/// `module::guarantee requires [Claim, ...];` makes the module `guarantee`
/// with one test per transport.
macro_rules! guarantees {
    ($($module:ident :: $name:ident requires [$($claim:ident),*];)*) => {$(
        mod $name {
            use super::*;
            guarantees!(@entry $module $name [$($claim),*] memory TransportKind::Memory);
            guarantees!(@entry $module $name [$($claim),*] nats_oldest TransportKind::Nats(ServerSlot::Oldest));
            guarantees!(@entry $module $name [$($claim),*] nats_newest TransportKind::Nats(ServerSlot::Newest));
            guarantees!(@entry $module $name [$($claim),*] jetstream_oldest TransportKind::JetStream(ServerSlot::Oldest));
            guarantees!(@entry $module $name [$($claim),*] jetstream_newest TransportKind::JetStream(ServerSlot::Newest));
        }
    )*};
    (@entry $module:ident $name:ident [$($claim:ident),*] $entry:ident $kind:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $entry() {
            let Some((bus, features)) =
                setup(stringify!($name), $kind, &[$(Claim::$claim),*]).await
            else {
                return;
            };
            crate::$module::$name(&bus, &features).await;
            bus.finish().await;
        }
    };
}

guarantees! {
    delivery::publish_subscribe requires [];
    delivery::group_instances_share_events requires [];
    delivery::fan_out_to_every_group requires [];
    delivery::concurrent_publishers requires [];
    delivery::duplicate_publish_is_delivered_once requires [DeduplicatesPublishes];
    ordering::per_key_order_under_concurrency requires [];
    failures::retry_then_success requires [];
    failures::poison_is_dead_lettered_while_others_flow requires [];
    failures::decode_failure_is_dead_lettered_at_once requires [];
    failures::panic_is_contained_and_retried requires [];
    failures::timeout_is_retried requires [];
    lifecycle::shutdown_finishes_in_flight_handlers requires [];
    lifecycle::shutdown_hands_unstarted_events_to_a_successor requires [UnfinishedEventsOutliveTheInstance];
    lifecycle::shutdown_deadline_returns_stopped_events requires [UnfinishedEventsOutliveTheInstance];
    publishing::oversized_payload_is_a_typed_error requires [PayloadLimit];
    publishing::invalid_headers_and_topics_are_typed_errors requires [];
    causality::correlation_and_causation_through_ctx_publish requires [];
}

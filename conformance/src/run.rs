//! The table of scenarios and how one runs on a harness.

use std::future::Future;

use futures_util::future::BoxFuture;

use crate::bus::Bus;
use crate::features::Claim;
use crate::harness::Harness;
use crate::scenarios::{causality, delivery, failures, lifecycle, ordering, publishing, recovery};

/// One guarantee of the suite.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// The function's name: `publish_subscribe`.
    pub name: &'static str,
    /// What the transport must claim for the scenario to apply.
    pub requires: &'static [Claim],
    run: for<'a> fn(&'a Bus) -> BoxFuture<'a, ()>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("requires", &self.requires)
            .finish_non_exhaustive()
    }
}

/// What became of a scenario on a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It ran and passed (a failure panics, as a test does).
    Passed,
    /// The transport does not claim what it needs, or could not be set up
    /// here; the reason.
    Skipped(String),
}

macro_rules! scenarios {
    ($($module:ident :: $name:ident requires [$($claim:ident),*];)*) => {
        /// Every scenario, in the order the README's matrix lists them.
        pub const SCENARIOS: &[Scenario] = &[$(
            Scenario {
                name: stringify!($name),
                requires: &[$(Claim::$claim),*],
                run: |bus| Box::pin($module::$name(bus, bus.features())),
            },
        )*];

        /// One `#[test]` per scenario, named after it, on the harness that
        /// `$make` (a closure returning a future of `Result<impl Harness,
        /// String>`) builds for each test; `Err` skips the test with the
        /// reason printed. Each test runs on a two-thread tokio runtime.
        ///
        /// ```no_run
        /// mod memory {
        ///     eventwire_conformance::conformance_tests!(|| async {
        ///         Ok::<_, String>(eventwire_conformance::MemoryHarness::new())
        ///     });
        /// }
        /// # fn main() {}
        /// ```
        #[macro_export]
        macro_rules! conformance_tests {
            ($make:expr) => {$(
                #[test]
                fn $name() {
                    $crate::run_test(stringify!($name), $make);
                }
            )*};
        }
    };
}

scenarios! {
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
    failures::retry_delay_is_honoured requires [];
    recovery::killed_instance_events_are_redelivered requires [RedeliversAfterACrash];
    recovery::durable_consumer_resumes_where_it_stopped requires [KeepsEventsWhileNoInstanceRuns];
    recovery::subscribe_and_close_while_publishing requires [KeepsEventsWhileNoInstanceRuns];
    recovery::broker_restarted_under_load requires [SurvivesBrokerRestart];
    lifecycle::shutdown_finishes_in_flight_handlers requires [];
    lifecycle::shutdown_hands_unstarted_events_to_a_successor requires [UnfinishedEventsOutliveTheInstance];
    lifecycle::shutdown_deadline_returns_stopped_events requires [UnfinishedEventsOutliveTheInstance];
    publishing::oversized_payload_is_a_typed_error requires [PayloadLimit];
    publishing::invalid_headers_and_topics_are_typed_errors requires [];
    causality::correlation_and_causation_through_ctx_publish_and_ctx_publisher requires [];
}

/// Runs the scenario `name` on `harness`: skipped, with the reason, when
/// the transport lacks a claim it needs. Prints `run: ...` or `skip: ...`
/// on stderr. Panics when the scenario fails or `name` is unknown.
pub async fn run_scenario(name: &str, harness: Box<dyn Harness>) -> Verdict {
    let scenario = SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no conformance scenario named {name}"));
    let label = harness.label();
    let bus = match Bus::start(harness).await {
        Ok(bus) => bus,
        Err(why) => panic!("{name} on {label}: the harness could not connect: {why}"),
    };
    for claim in scenario.requires {
        if let Some(why) = bus.features().lacks(*claim) {
            eprintln!("skip: {name} on {label} ({why})");
            bus.finish().await;
            return Verdict::Skipped(why);
        }
    }
    eprintln!("run: {name} on {label}");
    (scenario.run)(&bus).await;
    bus.finish().await;
    Verdict::Passed
}

/// The body of each test [`conformance_tests!`](crate::conformance_tests)
/// makes: builds a two-thread runtime, the harness, and runs the scenario.
/// A harness that cannot be built here (`Err`) skips the test with the
/// reason printed.
pub fn run_test<F, Fut, H>(name: &str, make: F) -> Verdict
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, String>>,
    H: Harness,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        match make().await {
            Ok(harness) => run_scenario(name, Box::new(harness)).await,
            Err(why) => {
                eprintln!("skip: {name} ({why})");
                Verdict::Skipped(why)
            }
        }
    })
}

//! A steady JetStream flow is never interrupted: 100 000 events published
//! while a handler consumes them, the handler slower than the publisher at
//! times, and the consumer is never recreated (no missed heartbeat, no
//! "consumer recovery") and never pauses.
//!
//! The pull loop hands messages to the workers through a bounded channel.
//! When that channel is full the loop must not stop polling the pull
//! subscription for so long that async-nats reports a missed idle heartbeat:
//! that rebuilt the consumer and stopped the flow for about ten seconds.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventwire::nats::{JetStreamTransport, NatsConfig};
use eventwire::prelude::*;
use support::{server_binary, shared_server, unique_prefix, ServerSlot, SharedServer};

/// 100 000 events when built with optimizations; a debug build (the test
/// script's) consumes JetStream at about a thousand events a second on a
/// loaded two-core machine, so it runs a fifth of them.
const EVENTS: u64 = if cfg!(debug_assertions) {
    20_000
} else {
    100_000
};
/// The longest the handler may go without an event while some are stored.
const MAX_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.flow.order")]
struct Order {
    n: u64,
    customer: String,
    total_cents: i64,
}

/// What the handler saw: how many events, and the longest time between two.
#[derive(Clone)]
struct Flow(Arc<FlowInner>);

struct FlowInner {
    handled: AtomicU64,
    /// (last arrival, longest gap, events handled before it)
    gaps: Mutex<(Option<Instant>, Duration, u64)>,
}

impl Flow {
    fn new() -> Self {
        Flow(Arc::new(FlowInner {
            handled: AtomicU64::new(0),
            gaps: Mutex::new((None, Duration::ZERO, 0)),
        }))
    }

    async fn hit(&self, n: u64) {
        let now = Instant::now();
        let handled = self.0.handled.fetch_add(1, Ordering::AcqRel);
        {
            let mut g = self.0.gaps.lock().unwrap();
            if let Some(last) = g.0 {
                if now - last > g.1 {
                    *g = (g.0, now - last, handled);
                }
            }
            g.0 = Some(now);
        }
        // Slower than the publisher at times: one stretch of 200 events in
        // every 10 000 takes a millisecond each.
        if n % 10_000 < 200 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn handled(&self) -> u64 {
        self.0.handled.load(Ordering::Acquire)
    }

    fn longest_gap(&self) -> (Duration, u64) {
        let g = self.0.gaps.lock().unwrap();
        (g.1, g.2)
    }
}

#[handler(group = "flow", concurrency = 64, timeout = "none")]
async fn steady_wide(evt: Order, State(flow): State<Flow>) {
    flow.hit(evt.n).await;
}

#[handler(group = "flow", timeout = "none")]
async fn steady_narrow(evt: Order, State(flow): State<Flow>) {
    flow.hit(evt.n).await;
}

on_each_server!(
    a_steady_flow_with_64_in_flight_never_recreates_the_consumer,
    a_steady_flow_with_the_default_concurrency_never_recreates_the_consumer,
);

async fn a_steady_flow_with_64_in_flight_never_recreates_the_consumer(server: SharedServer) {
    steady_flow(server, "steady_wide").await
}

async fn a_steady_flow_with_the_default_concurrency_never_recreates_the_consumer(
    server: SharedServer,
) {
    steady_flow(server, "steady_narrow").await
}

async fn steady_flow(server: SharedServer, handler: &'static str) {
    let url = format!(
        "{}?prefix={}&storage=memory",
        server.url("jetstream"),
        unique_prefix()
    );
    let transport = JetStreamTransport::connect(NatsConfig::from_url(&url).unwrap())
        .await
        .unwrap();
    let flow = Flow::new();
    let app = App::builder()
        .service("flow")
        .transport(transport.clone())
        .handlers(HandlerSelection::names([handler]))
        .state(flow.clone())
        .build()
        .await
        .unwrap();
    // The publisher has a connection of its own, as another service would:
    // its bursts do not queue in front of the consumer's acks.
    let source = App::builder()
        .service("flow-source")
        .transport_url(&url)
        .unwrap()
        .handlers(HandlerSelection::names(Vec::<&str>::new()))
        .build()
        .await
        .unwrap();
    let publisher = source.publisher();
    let started = Instant::now();

    let producer = tokio::spawn(async move {
        for chunk in 0..EVENTS / 1_000 {
            let events: Vec<Order> = (chunk * 1_000..(chunk + 1) * 1_000)
                .map(|n| Order {
                    n,
                    customer: "customer-42".to_owned(),
                    total_cents: 12_345,
                })
                .collect();
            for r in publisher.publish_batch(&events).await {
                r.unwrap();
            }
        }
    });

    // Progress once a second, so that a stall shows where it happened.
    let deadline = started + Duration::from_secs(50);
    let mut last = 0;
    while flow.handled() < EVENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = flow.handled();
        eprintln!(
            "{:>5.1}s {handler}: {n} handled (+{}), {:?}",
            started.elapsed().as_secs_f64(),
            n - last,
            transport.stats()
        );
        last = n;
    }
    producer.await.unwrap();
    let elapsed = started.elapsed();
    let stats = transport.stats();
    let (gap, at) = flow.longest_gap();
    let version = &server.binary.version;
    eprintln!(
        "{handler} on {version}: {} events in {elapsed:?}, longest gap {gap:?} after {at}, {stats:?}",
        flow.handled()
    );
    assert!(
        flow.handled() >= EVENTS,
        "{handler} on {version}: {} of {EVENTS} handled in {elapsed:?}; {stats:?}",
        flow.handled()
    );
    assert_eq!(
        stats.consumer_recoveries, 0,
        "{handler} on {version}: the consumer was recreated mid-stream; {stats:?}"
    );
    assert!(
        gap <= MAX_PAUSE,
        "{handler} on {version}: no event for {gap:?} after {at} handled; {stats:?}"
    );
    app.shutdown().await.unwrap();
    source.shutdown().await.unwrap();
}

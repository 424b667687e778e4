//! Delivery: what is published arrives, intact, exactly once per group, to
//! the subscribers of its topic only; instances of a group share the events;
//! many publishers at once lose nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::prelude::*;
use eventwire::PublishOptions;
use futures_util::future::join_all;

use crate::bus::{Bus, PATIENCE, SERVICE};
use crate::features::Features;
use crate::support::{eventually, Arrival, Instance, Recorder};

/// An event of the scenarios here (topic `eventwire-conformance.note`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.note", version = 3)]
pub struct Note {
    #[event(key)]
    key: String,
    n: u32,
    text: String,
}

fn note(n: u32) -> Note {
    Note {
        key: format!("k-{}", n % 10),
        n,
        text: format!("ünïcødé {n} \"quoted\""),
    }
}

/// The sentinel of the notes (see `Bus::drain`).
fn sentinel() -> Note {
    note(u32::MAX)
}

/// An event of the scenarios here (topic `eventwire-conformance.other-note`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.other-note")]
pub struct OtherNote {
    n: u32,
}

#[handler(group = "conformance-pubsub")]
async fn conformance_pubsub_receive(
    evt: Note,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    // The side effect stands for "the payload arrived intact".
    if evt == note(evt.n) {
        rec.applied(&ctx, evt.n);
    }
}

#[handler(group = "conformance-pubsub")]
async fn conformance_pubsub_receive_other(
    evt: OtherNote,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    rec.applied(&ctx, evt.n);
}

/// Publish N events (with a custom header) from one app, receive them in
/// another: every event exactly once, payload and metadata intact
/// (id, source, topic, key, correlation = own id, header, attempt 1, time);
/// events of another topic published in between reach only their own handler.
pub async fn publish_subscribe(bus: &Bus, _features: &Features) {
    const N: u32 = 300;
    let rec = Recorder::default();
    let consumer = bus
        .app(
            &[
                "conformance_pubsub_receive",
                "conformance_pubsub_receive_other",
            ],
            &rec,
        )
        .await;
    let producer = bus.app(&[], &rec).await;
    let publisher = producer.publisher();
    let before = SystemTime::now();
    let mut ids = BTreeMap::new();
    // In flight together (one connection): JetStream confirms in a pipeline.
    let publishes = (0..N).map(|n| {
        let publisher = &publisher;
        async move {
            let opts = PublishOptions::new().header("x-tenant", format!("t{}", n % 3));
            let id = publisher.publish_with(&note(n), opts).await.unwrap();
            if n % 10 == 0 {
                publisher.publish(&OtherNote { n }).await.unwrap();
            }
            (n, id.to_string())
        }
    });
    ids.extend(join_all(publishes).await);
    eventually(PATIENCE, "every note", || {
        rec.count("conformance_pubsub_receive") as u32 >= N
            && rec.count("conformance_pubsub_receive_other") as u32 >= N / 10
    })
    .await;
    bus.drain(
        &publisher,
        &sentinel(),
        &rec,
        &[("conformance_pubsub_receive", 0)],
    )
    .await;
    bus.drain(
        &publisher,
        &OtherNote { n: u32::MAX },
        &rec,
        &[("conformance_pubsub_receive_other", 0)],
    )
    .await;

    let deliveries = rec.deliveries("conformance_pubsub_receive");
    assert_eq!(deliveries.len() as u32, N, "each note exactly once");
    let after = SystemTime::now();
    for d in &deliveries {
        assert_eq!(d.event_id, ids[&d.n], "ce-id travels unchanged");
        assert_eq!(d.source, SERVICE);
        assert_eq!(
            d.topic, "eventwire-conformance.note",
            "only notes reach this handler"
        );
        assert_eq!(d.key.as_deref(), Some(format!("k-{}", d.n % 10).as_str()));
        assert_eq!(
            d.correlation.as_deref(),
            Some(d.event_id.as_str()),
            "a root event correlates to itself"
        );
        let tenant = d.headers.iter().find(|(k, _)| k == "x-tenant");
        assert_eq!(
            tenant.map(|(_, v)| v.as_str()),
            Some(format!("t{}", d.n % 3).as_str())
        );
        assert_eq!(d.attempt, 1);
        assert!(d.time >= before - Duration::from_secs(1) && d.time <= after);
    }
    let intact = rec.effects("conformance_pubsub_receive");
    assert_eq!(intact.len() as u32, N, "every payload arrived intact");
    let others = rec.deliveries("conformance_pubsub_receive_other");
    assert_eq!(others.len() as u32, N / 10);
    assert!(others
        .iter()
        .all(|d| d.topic == "eventwire-conformance.other-note"));

    consumer.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

/// An event of the scenarios here (topic `eventwire-conformance.work-item`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.work-item")]
pub struct WorkItem {
    #[event(key)]
    key: String,
    n: u32,
}

/// Publishes in order, in one batch (JetStream confirms in a pipeline).
pub async fn publish_all<E: Event>(publisher: &Publisher, events: &[E]) {
    for result in publisher.publish_batch(events).await {
        result.unwrap();
    }
}

fn work(n: u32) -> WorkItem {
    WorkItem {
        key: format!("w-{}", n % 7),
        n,
    }
}

#[handler(group = "conformance-share", concurrency = 8)]
async fn conformance_share_work(
    evt: WorkItem,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Sentinel {
        return;
    }
    if evt.n.is_multiple_of(64) {
        tokio::task::yield_now().await;
    }
    rec.applied(&ctx, evt.n);
}

/// Three instances of one group, 10 000 events: each event is handled by
/// exactly one of them, exactly once, and all three take part.
pub async fn group_instances_share_events(bus: &Bus, _features: &Features) {
    const N: u32 = 10_000;
    let rec = Recorder::default();
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(bus.app(&["conformance_share_work"], &rec).await);
    }
    let publisher = apps[0].publisher();
    publish_all(&publisher, &(0..N).map(work).collect::<Vec<_>>()).await;
    eventually(PATIENCE, "every work item", || {
        rec.count("conformance_share_work") as u32 >= N
    })
    .await;
    let consumers = [
        ("conformance_share_work", 0),
        ("conformance_share_work", 1),
        ("conformance_share_work", 2),
    ];
    bus.drain(&publisher, &work(u32::MAX), &rec, &consumers)
        .await;

    let effects = rec.effects("conformance_share_work");
    assert_eq!(effects.len() as u32, N, "every event handled");
    assert!(
        effects.values().all(|&c| c == 1),
        "each event handled exactly once in the group"
    );
    assert_eq!(
        rec.count("conformance_share_work") as u32,
        N,
        "no event delivered twice"
    );
    assert_eq!(
        rec.instances("conformance_share_work"),
        BTreeSet::from([0, 1, 2]),
        "all three instances took part"
    );
    for app in apps {
        app.shutdown().await.unwrap();
    }
}

#[handler(group = "conformance-fan-a")]
async fn conformance_fan_a(
    evt: WorkItem,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.record(&ctx, me, evt.n);
}

#[handler(group = "conformance-fan-b", concurrency = 4)]
async fn conformance_fan_b(
    evt: WorkItem,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.record(&ctx, me, evt.n);
}

#[handler(group = "conformance-fan-c", concurrency = 4)]
async fn conformance_fan_c(
    evt: WorkItem,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.record(&ctx, me, evt.n);
}

/// Three groups, the last one with two instances: every group receives
/// every event exactly once.
pub async fn fan_out_to_every_group(bus: &Bus, _features: &Features) {
    const N: u32 = 300;
    let rec = Recorder::default();
    // Instances 0, 1 and 2, 3 (two of group c).
    let a = bus.app(&["conformance_fan_a"], &rec).await;
    let b = bus.app(&["conformance_fan_b"], &rec).await;
    let c1 = bus.app(&["conformance_fan_c"], &rec).await;
    let c2 = bus.app(&["conformance_fan_c"], &rec).await;
    let publisher = a.publisher();
    publish_all(&publisher, &(0..N).map(work).collect::<Vec<_>>()).await;
    eventually(PATIENCE, "every event in every group", || {
        [
            "conformance_fan_a",
            "conformance_fan_b",
            "conformance_fan_c",
        ]
        .iter()
        .all(|h| rec.count(h) as u32 >= N)
    })
    .await;
    let consumers = [
        ("conformance_fan_a", 0),
        ("conformance_fan_b", 1),
        ("conformance_fan_c", 2),
        ("conformance_fan_c", 3),
    ];
    bus.drain(&publisher, &work(u32::MAX), &rec, &consumers)
        .await;
    for handler in [
        "conformance_fan_a",
        "conformance_fan_b",
        "conformance_fan_c",
    ] {
        let effects = rec.effects(handler);
        assert_eq!(effects.len() as u32, N, "{handler} got every event");
        assert!(
            effects.values().all(|&c| c == 1),
            "{handler} got each event exactly once"
        );
    }
    for app in [a, b, c1, c2] {
        app.shutdown().await.unwrap();
    }
}

/// An event of the scenarios here (topic `eventwire-conformance.reading`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.reading")]
pub struct Reading {
    publisher: u32,
    n: u32,
}

#[handler(group = "conformance-readings", concurrency = 64)]
async fn conformance_collect_reading(
    evt: Reading,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    let n = evt.publisher.wrapping_mul(1000).wrapping_add(evt.n);
    if rec.arrived(&ctx, me, n) == Arrival::Event {
        rec.applied(&ctx, n);
    }
}

/// 20 publishers at once, 500 events each, through one app's publisher
/// (one connection): all 10,000 delivered, each exactly once.
pub async fn concurrent_publishers(bus: &Bus, _features: &Features) {
    const PUBLISHERS: u32 = 20;
    const EACH: u32 = 500;
    let rec = Recorder::default();
    let consumer = bus.app(&["conformance_collect_reading"], &rec).await;
    let producer = bus.app(&[], &rec).await;
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let publisher = producer.publisher();
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                publisher
                    .publish(&Reading { publisher: p, n })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = PUBLISHERS * EACH;
    eventually(PATIENCE, "every reading", || {
        rec.count("conformance_collect_reading") as u32 >= total
    })
    .await;
    let sentinel = Reading {
        publisher: u32::MAX,
        n: 0,
    };
    bus.drain(
        &producer.publisher(),
        &sentinel,
        &rec,
        &[("conformance_collect_reading", 0)],
    )
    .await;
    let effects = rec.effects("conformance_collect_reading");
    assert_eq!(effects.len() as u32, total, "every reading delivered");
    assert!(
        effects.values().all(|&c| c == 1),
        "each reading exactly once"
    );
    assert_eq!(
        effects.keys().copied().collect::<Vec<_>>(),
        (0..PUBLISHERS)
            .flat_map(|p| (0..EACH).map(move |n| p * 1000 + n))
            .collect::<Vec<_>>()
    );
    consumer.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

#[handler(group = "conformance-dedup-a")]
async fn conformance_dedup_a(
    evt: Note,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.record(&ctx, me, evt.n);
}

#[handler(group = "conformance-dedup-b", concurrency = 4)]
async fn conformance_dedup_b(
    evt: Note,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.record(&ctx, me, evt.n);
}

/// The same envelope (same event id) published twice is delivered once
/// per group.
pub async fn duplicate_publish_is_delivered_once(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    let a = bus.app(&["conformance_dedup_a"], &rec).await;
    let b = bus.app(&["conformance_dedup_b"], &rec).await;
    let publisher = a.publisher();
    let env = publisher.envelope(&note(7), PublishOptions::new()).unwrap();
    let first = publisher.publish_envelope(env.clone()).await.unwrap();
    let second = publisher.publish_envelope(env).await.unwrap();
    assert_eq!(first, second);
    publisher.publish(&note(8)).await.unwrap();
    eventually(PATIENCE, "the events in both groups", || {
        rec.has_applied("conformance_dedup_a", 8) && rec.has_applied("conformance_dedup_b", 8)
    })
    .await;
    bus.drain(
        &publisher,
        &sentinel(),
        &rec,
        &[("conformance_dedup_a", 0), ("conformance_dedup_b", 1)],
    )
    .await;
    for handler in ["conformance_dedup_a", "conformance_dedup_b"] {
        assert_eq!(
            rec.effects(handler),
            BTreeMap::from([(7, 1), (8, 1)]),
            "{handler}: one delivery per event id"
        );
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

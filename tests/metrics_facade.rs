//! The `metrics` feature: what flows through the facade after events ran on
//! the in-memory bus, read back with `metrics-util`'s debugging recorder
//! (installed for this thread; the app runs on a current-thread runtime).

use std::time::Duration;

use eventwire::prelude::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.metrics.order")]
struct Order {
    n: u32,
}

#[handler(group = "metrics", retries = 1, backoff = "1ms")]
async fn count_order(evt: Order, ctx: Context) -> Result<(), HandlerError> {
    match evt.n {
        // Fails once, then succeeds.
        2 if ctx.attempt() == 1 => Err(HandlerError::msg("once")),
        // Never succeeds: dead-lettered.
        3 => Err(HandlerError::permanent_msg("never")),
        _ => Ok(()),
    }
}

/// (name, labels as `k=v` sorted, value) of every metric.
fn read(snapshotter: &Snapshotter) -> Vec<(MetricKind, String, Vec<String>, DebugValue)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (kind, key.name().to_owned(), labels, value)
        })
        .collect()
}

fn counter(
    metrics: &[(MetricKind, String, Vec<String>, DebugValue)],
    name: &str,
    with: &[&str],
) -> u64 {
    metrics
        .iter()
        .filter(|(_, n, labels, _)| n == name && with.iter().all(|w| labels.iter().any(|l| l == w)))
        .map(|(_, _, _, v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

fn histogram_samples(
    metrics: &[(MetricKind, String, Vec<String>, DebugValue)],
    name: &str,
    with: &[&str],
) -> usize {
    metrics
        .iter()
        .filter(|(_, n, labels, _)| n == name && with.iter().all(|w| labels.iter().any(|l| l == w)))
        .map(|(_, _, _, v)| match v {
            DebugValue::Histogram(h) => h.len(),
            _ => 0,
        })
        .sum()
}

#[tokio::test(flavor = "current_thread")]
async fn handler_and_publish_metrics_flow_through_the_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let app = App::builder()
        .service("metrics")
        .handlers(HandlerSelection::names(["count_order"]))
        .build()
        .await
        .unwrap();
    let p = app.publisher();
    for n in 1..=3 {
        p.publish(&Order { n }).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = app.metrics().handlers["count_order"];
        if m.succeeded == 2 && m.dead_lettered == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.shutdown().await.unwrap();

    let m = read(&snapshotter);
    let base = [
        "transport=memory",
        "topic=test.metrics.order",
        "group=metrics",
        "handler=count_order",
    ];
    let with = |outcome: &'static str| {
        let mut v = base.to_vec();
        v.push(outcome);
        v
    };
    assert_eq!(
        counter(
            &m,
            "eventwire_published_total",
            &["transport=memory", "topic=test.metrics.order"]
        ),
        3,
        "{m:?}"
    );
    assert_eq!(counter(&m, "eventwire_publish_failures_total", &[]), 0);
    assert_eq!(
        counter(&m, "eventwire_handled_total", &with("outcome=succeeded")),
        2
    );
    assert_eq!(
        counter(&m, "eventwire_handled_total", &with("outcome=retrying")),
        1
    );
    assert_eq!(
        counter(
            &m,
            "eventwire_handled_total",
            &with("outcome=dead_lettered")
        ),
        1
    );
    assert_eq!(
        histogram_samples(&m, "eventwire_handler_duration_seconds", &base),
        4,
        "one sample per run"
    );
    assert_eq!(
        histogram_samples(&m, "eventwire_end_to_end_latency_seconds", &base),
        2,
        "one sample per success"
    );
    let in_flight = m
        .iter()
        .find(|(_, n, _, _)| n == "eventwire_handlers_in_flight")
        .map(|(_, _, labels, v)| (labels, v));
    match in_flight {
        Some((labels, DebugValue::Gauge(g))) => {
            assert!(
                labels.contains(&"handler=count_order".to_owned()),
                "{labels:?}"
            );
            assert_eq!(g.into_inner(), 0.0, "nothing runs after shutdown");
        }
        other => panic!("no in-flight gauge: {other:?}"),
    }
}

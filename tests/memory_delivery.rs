//! Delivery on the in-memory bus: groups, instances, ordering, retries, dead
//! letters, panics, timeouts, decode failures, correlation.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::prelude::*;
use eventwire::testing::TestApp;
use eventwire::{HandlerErrorKind, MemoryTransport, Outcome, PublishOptions};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.fanout")]
struct FanOut {
    n: u32,
}

type Seen = Arc<Mutex<Vec<(&'static str, u32)>>>;

#[handler(group = "fanout-a")]
async fn fanout_a(evt: FanOut, State(seen): State<Seen>) {
    seen.lock().unwrap().push(("a", evt.n));
}

#[handler(group = "fanout-b")]
async fn fanout_b(evt: FanOut, State(seen): State<Seen>) {
    seen.lock().unwrap().push(("b", evt.n));
}

#[tokio::test]
async fn every_group_receives_every_event() {
    let seen = Seen::default();
    let app = TestApp::builder()
        .handlers(HandlerSelection::groups(["fanout-a", "fanout-b"]))
        .state(seen.clone())
        .build()
        .await
        .unwrap();
    for n in 0..100 {
        app.publish(&FanOut { n }).await.unwrap();
    }
    app.wait_idle().await;
    let seen = seen.lock().unwrap().clone();
    for group in ["a", "b"] {
        let mut got: Vec<u32> = seen
            .iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, n)| *n)
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "group {group}");
    }
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.work")]
struct WorkItem {
    n: u32,
}

#[derive(Clone)]
struct Instance {
    id: usize,
    log: Arc<Mutex<Vec<(usize, u32)>>>,
}

#[handler(group = "workers", concurrency = 4)]
async fn work(evt: WorkItem, State(me): State<Instance>) {
    if evt.n % 64 == 0 {
        tokio::task::yield_now().await;
    }
    me.log.lock().unwrap().push((me.id, evt.n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_of_one_group_share_the_work_each_event_once() {
    let bus = MemoryTransport::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut apps = Vec::new();
    for id in 0..3 {
        apps.push(
            App::builder()
                .service("workers")
                .transport(bus.clone())
                .handlers(HandlerSelection::names(["work"]))
                .state(Instance {
                    id,
                    log: log.clone(),
                })
                .build()
                .await
                .unwrap(),
        );
    }
    let publisher = apps[0].publisher();
    for n in 0..10_000 {
        publisher.publish(&WorkItem { n }).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), bus.wait_idle())
        .await
        .expect("all events handled");
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 10_000, "each event handled exactly once");
    let distinct: HashSet<u32> = log.iter().map(|(_, n)| *n).collect();
    assert_eq!(distinct.len(), 10_000);
    let per_instance: HashMap<usize, usize> = log.iter().fold(HashMap::new(), |mut m, (i, _)| {
        *m.entry(*i).or_default() += 1;
        m
    });
    assert_eq!(
        per_instance.len(),
        3,
        "all three instances took part: {per_instance:?}"
    );
    for app in apps {
        app.shutdown().await.unwrap();
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.ordered")]
struct Step {
    #[event(key)]
    account: String,
    seq: u32,
}

type Steps = Arc<Mutex<HashMap<String, Vec<u32>>>>;

#[handler(
    group = "ordered",
    ordered,
    concurrency = 8,
    retries = 3,
    backoff = "1ms..2ms"
)]
async fn apply_step(
    evt: Step,
    ctx: Context,
    State(steps): State<Steps>,
) -> Result<(), HandlerError> {
    // Vary the time each event takes so lanes interleave.
    for _ in 0..(evt.seq % 3) {
        tokio::task::yield_now().await;
    }
    if evt.seq % 17 == 5 && ctx.attempt() == 1 {
        return Err(HandlerError::msg("transient failure"));
    }
    steps
        .lock()
        .unwrap()
        .entry(evt.account)
        .or_default()
        .push(evt.seq);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_is_kept_under_concurrency() {
    let steps = Steps::default();
    let app = TestApp::builder()
        .handlers(HandlerSelection::names(["apply_step"]))
        .state(steps.clone())
        .build()
        .await
        .unwrap();
    for seq in 0..100 {
        for account in 0..20 {
            app.publish(&Step {
                account: format!("acct-{account}"),
                seq,
            })
            .await
            .unwrap();
        }
    }
    app.wait_idle().await;
    let steps = steps.lock().unwrap().clone();
    assert_eq!(steps.len(), 20);
    for (account, seqs) in steps.iter() {
        assert_eq!(seqs, &(0..100).collect::<Vec<_>>(), "order of {account}");
    }
    let retried: HashSet<_> = app
        .runs_of("apply_step")
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Retrying { .. }))
        .map(|r| r.event_id.clone())
        .collect();
    assert!(!retried.is_empty(), "some events were retried in place");
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.flaky")]
struct Flaky {
    fail_times: u32,
}

static FLAKY_SIDE_EFFECTS: AtomicU32 = AtomicU32::new(0);

#[handler(group = "flaky", retries = 5, backoff = "1ms")]
async fn flaky(evt: Flaky, ctx: Context) -> Result<(), HandlerError> {
    if ctx.attempt() <= evt.fail_times {
        return Err(HandlerError::msg(format!(
            "attempt {} fails",
            ctx.attempt()
        )));
    }
    FLAKY_SIDE_EFFECTS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test]
async fn retry_then_success_counts_attempts() {
    let app = TestApp::builder()
        .handlers(HandlerSelection::names(["flaky"]))
        .build()
        .await
        .unwrap();
    let id = app.publish(&Flaky { fail_times: 3 }).await.unwrap();
    app.wait_idle().await;
    let runs = app.runs_of("flaky");
    assert_eq!(runs.len(), 4, "3 failures then a success: {runs:#?}");
    assert!(runs.iter().all(|r| r.event_id == id));
    assert_eq!(
        runs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(
        matches!(runs[0].outcome, Outcome::Retrying { ref error, .. } if error == "attempt 1 fails")
    );
    assert_eq!(runs[3].outcome, Outcome::Succeeded);
    assert_eq!(FLAKY_SIDE_EFFECTS.load(Ordering::SeqCst), 1);
    assert!(app.dead_letters().is_empty());
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.payment")]
struct Payment {
    #[event(key)]
    id: u32,
    poison: bool,
}

#[handler(group = "payments", retries = 4, backoff = "1ms..4ms", concurrency = 4)]
async fn charge(evt: Payment) -> Result<(), HandlerError> {
    if evt.poison {
        return Err(HandlerError::msg(format!(
            "card declined for payment {}",
            evt.id
        )));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_event_is_dead_lettered_after_exactly_n_attempts_while_others_flow() {
    let app = TestApp::builder()
        .handlers(HandlerSelection::names(["charge"]))
        .build()
        .await
        .unwrap();
    let poison_id = app
        .publish(&Payment {
            id: 0,
            poison: true,
        })
        .await
        .unwrap();
    for id in 1..=1000 {
        app.publish(&Payment { id, poison: false }).await.unwrap();
    }
    app.wait_idle().await;

    let letters = app.dead_letters();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.envelope.id, poison_id);
    assert_eq!(letter.attempts, 5, "retries = 4 means 5 attempts");
    assert_eq!(letter.handler, "charge");
    assert_eq!(letter.group, "payments");
    assert_eq!(letter.error, "card declined for payment 0");
    assert_eq!(letter.error_kind, HandlerErrorKind::Retryable);
    assert_eq!(letter.topic, "eventwire.dlq.test.delivery.payment");
    let original: Payment = serde_json::from_slice(&letter.envelope.payload).unwrap();
    assert!(original.poison);

    let runs = app.runs_of("charge");
    let poison_runs = runs.iter().filter(|r| r.event_id == poison_id).count();
    assert_eq!(poison_runs, 5);
    assert_eq!(app.succeeded("charge"), 1000);
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.explosive")]
struct Explosive {
    n: u32,
}

static SURVIVORS: AtomicU32 = AtomicU32::new(0);

#[handler(group = "explosive", retries = 1, backoff = "1ms")]
async fn explode(evt: Explosive) {
    if evt.n == 3 {
        panic!("boom on {}", evt.n);
    }
    SURVIVORS.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test]
async fn a_panicking_handler_does_not_stop_the_consumer() {
    let app = TestApp::builder()
        .handlers(HandlerSelection::names(["explode"]))
        .build()
        .await
        .unwrap();
    for n in 0..10 {
        app.publish(&Explosive { n }).await.unwrap();
    }
    app.wait_idle().await;
    assert_eq!(SURVIVORS.load(Ordering::SeqCst), 9);
    let letters = app.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error_kind, HandlerErrorKind::Panic);
    assert_eq!(letters[0].attempts, 2);
    assert!(
        letters[0].error.contains("boom on 3"),
        "{}",
        letters[0].error
    );
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.slow")]
struct SlowOnce {
    n: u32,
}

#[handler(group = "slow", timeout = "50ms", retries = 2, backoff = "1ms")]
async fn slow_once(_evt: SlowOnce, ctx: Context) {
    if ctx.attempt() == 1 {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn a_timed_out_handler_is_retried() {
    let app = TestApp::builder()
        .handlers(HandlerSelection::names(["slow_once"]))
        .build()
        .await
        .unwrap();
    app.publish(&SlowOnce { n: 1 }).await.unwrap();
    app.wait_idle().await;
    let runs = app.runs_of("slow_once");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(
        matches!(&runs[0].outcome, Outcome::Retrying { kind: HandlerErrorKind::Timeout, error, .. } if error.contains("timed out after 50ms")),
        "{:?}",
        runs[0].outcome
    );
    assert_eq!(runs[1].outcome, Outcome::Succeeded);
    assert_eq!(runs[1].attempt, 2);
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.typed", version = 2)]
struct Typed {
    amount: i64,
}

static TYPED_CALLS: AtomicU32 = AtomicU32::new(0);

#[handler(group = "typed", retries = 5)]
async fn typed(_evt: Typed) {
    TYPED_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test]
async fn a_decode_failure_goes_straight_to_dead_letters() {
    let app = TestApp::builder()
        .handlers(HandlerSelection::names(["typed"]))
        .build()
        .await
        .unwrap();
    let publisher = app.publisher();
    let good = publisher
        .envelope(&Typed { amount: 5 }, PublishOptions::new())
        .unwrap();

    let mut malformed = good.clone();
    malformed.id = eventwire::EventId::new();
    malformed.payload = eventwire::__private::Bytes::from_static(br#"{"amount": "five"}"#);
    let mut newer = good.clone();
    newer.id = eventwire::EventId::new();
    newer.schema_version = 3;
    let mut wrong_codec = good.clone();
    wrong_codec.id = eventwire::EventId::new();
    wrong_codec.content_type = "application/protobuf".into();

    for env in [malformed.clone(), newer.clone(), wrong_codec.clone(), good] {
        publisher.publish_envelope(env).await.unwrap();
    }
    app.wait_idle().await;

    assert_eq!(
        TYPED_CALLS.load(Ordering::SeqCst),
        1,
        "only the valid event reached the handler"
    );
    let letters = app.dead_letters();
    assert_eq!(letters.len(), 3);
    for l in &letters {
        assert_eq!(l.attempts, 1, "decode failures are never retried");
        assert_eq!(l.error_kind, HandlerErrorKind::Decode);
    }
    let by_id = |id: &eventwire::EventId| letters.iter().find(|l| &l.envelope.id == id).unwrap();
    assert!(
        by_id(&malformed.id).error.contains("malformed payload"),
        "{}",
        by_id(&malformed.id).error
    );
    assert!(
        by_id(&newer.id)
            .error
            .contains("unknown schema version 3; this consumer reads version 2"),
        "{}",
        by_id(&newer.id).error
    );
    assert!(
        by_id(&wrong_codec.id).error.contains("content type"),
        "{}",
        by_id(&wrong_codec.id).error
    );
    app.shutdown().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.checkout")]
struct CheckoutStarted {
    cart: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.delivery.invoice")]
struct InvoiceIssued {
    cart: u32,
}

#[derive(Debug, Clone, Default)]
struct Seen2 {
    correlation: Option<String>,
    causation: Option<String>,
    traceparent: Option<String>,
    tenant: Option<String>,
}

#[handler(group = "checkout")]
async fn issue_invoice(evt: CheckoutStarted, ctx: Context) -> Result<(), HandlerError> {
    ctx.publish(&InvoiceIssued { cart: evt.cart }).await?;
    Ok(())
}

#[handler(group = "billing")]
async fn record_invoice(_evt: InvoiceIssued, ctx: Context, State(seen): State<Arc<Mutex<Seen2>>>) {
    *seen.lock().unwrap() = Seen2 {
        correlation: ctx.correlation_id().map(str::to_owned),
        causation: ctx.causation_id().map(str::to_owned),
        traceparent: ctx.traceparent().map(str::to_owned),
        tenant: ctx.header("x-tenant").map(str::to_owned),
    };
}

#[tokio::test]
async fn publishing_from_a_handler_propagates_correlation_and_causation() {
    let seen = Arc::new(Mutex::new(Seen2::default()));
    let app = TestApp::builder()
        .handlers(HandlerSelection::groups(["checkout", "billing"]))
        .state(seen.clone())
        .build()
        .await
        .unwrap();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let root = app
        .publisher()
        .publish_with(
            &CheckoutStarted { cart: 9 },
            PublishOptions::new()
                .correlation_id("checkout-9")
                .traceparent(traceparent)
                .header("x-tenant", "acme"),
        )
        .await
        .unwrap();
    app.wait_idle().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.correlation.as_deref(), Some("checkout-9"));
    assert_eq!(seen.causation.as_deref(), Some(root.as_str()));
    assert_eq!(seen.traceparent.as_deref(), Some(traceparent));
    assert_eq!(
        seen.tenant, None,
        "custom headers belong to one event, they are not inherited"
    );

    let invoices = app.published_envelopes();
    let invoice = invoices
        .iter()
        .find(|e| &*e.topic == "test.delivery.invoice")
        .unwrap();
    assert_eq!(invoice.causation_id.as_deref(), Some(root.as_str()));
    assert_eq!(app.published::<InvoiceIssued>().len(), 1);

    // A root event without an explicit correlation id correlates to itself.
    let root2 = app.publish(&CheckoutStarted { cart: 10 }).await.unwrap();
    app.wait_idle().await;
    let envs = app.published_envelopes();
    let second_invoice = envs
        .iter()
        .rev()
        .find(|e| &*e.topic == "test.delivery.invoice")
        .unwrap();
    assert_eq!(
        second_invoice.correlation_id.as_deref(),
        Some(root2.as_str())
    );
    app.shutdown().await.unwrap();
}

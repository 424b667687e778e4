//! eventwire over NATS against raw async-nats, in one run against one
//! nats-server that the benchmark starts itself and stops by PID at the end.
//!
//! The server binary: `EVENTWIRE_NATS_SERVER`, else the newest
//! `.tools/nats-server-*/bin/nats-server` (installed by `scripts/test`), else
//! `/usr/sbin/nats-server`.
//!
//! ```text
//! cargo bench --bench nats_throughput                  # 20 000 core / 10 000 JetStream events
//! EVENTS=50000 ROUNDS=5 cargo bench --bench nats_throughput
//! ```
//!
//! `EVENTS=n` (default 200 000) sets the core rows to `n` events and the
//! JetStream rows to `n / 2`; `ROUNDS` (default 5, after an unreported
//! warm-up round) sets how many rounds the printed medians are taken over,
//! the sides taking turns at going first; `VERBOSE=1` also prints every
//! round's figures. Without `--bench` in the arguments (`cargo test
//! --benches`) it runs one tiny round.
//!
//! The events of the throughput rows are the JSON
//! `{"id":…,"customer":"customer-42","total_cents":12345}`: 53 bytes with
//! a one-digit id, 58 with a six-digit one. Two raw
//! columns: raw async-nats with no headers (`publish`), and raw with the
//! headers eventwire sends (`publish_with_headers`, the headers of
//! `docs/wire-format.md` built per event, with a fresh id and time, as
//! eventwire does). Each row prints eventwire / raw against both.
//!
//! Throughput rows (a flooding publisher; the rate is taken when the last
//! event arrived):
//!
//! 1. core publish: publish then `flush`, nobody subscribed.
//! 2. core publish -> handler: a counting subscriber (raw: a task decoding
//!    the JSON; eventwire: a `#[handler]` with the default concurrency) on
//!    the publishing connection. Events lost to a slow consumer are
//!    reported, and the round's figure is then left out.
//! 3. JetStream publish with acknowledgements, 256 in flight: raw
//!    `publish_with_headers` with `Nats-Msg-Id` and a `FuturesOrdered`
//!    window; eventwire `Publisher::publish_batch`.
//! 4. JetStream consume + ack of the events stored by row 3, 64 in flight on
//!    both sides (raw: `max_ack_pending` 64, batches of 64; eventwire:
//!    `concurrency = 64`), from nothing to the N-th event.
//! 5. start-up: the part of row 4 before the first pull (raw: connect,
//!    stream lookup, consumer creation; eventwire: `App::build`).
//!
//! Latency rows (p50 / p99 at a steady 5 000 events/s, bursts of 5 every
//! millisecond, from just before the publish to the handler's entry; the
//! send time travels in the payload; raw with eventwire's headers).
//!
//! Reference: after the warm-up round, while no eventwire app runs, the raw
//! client alone (a connection of its own) runs
//! row 2 without headers (3 times, median). If the raw figure measured in
//! the rounds is not within 0.8–1.25x of it, the benchmark prints a warning:
//! the raw side did not run at its own speed (a loaded machine, or the
//! benchmark itself in its way), and the ratios of that run are suspect.
//!
//! The raw side takes its ids and timestamps from the same crates eventwire
//! uses (`EventId::new()` is `uuid::Uuid::now_v7()`, `format_time` is the
//! `time` crate's RFC 3339); at start-up the benchmark checks that both
//! sides send the same header names and the same payload bytes.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use eventwire::envelope::format_time;
use eventwire::nats::async_nats::jetstream::{self, consumer, stream};
use eventwire::nats::async_nats::{self, HeaderMap};
use eventwire::nats::{JetStreamTransport, NatsConfig, NatsTransport};
use eventwire::prelude::*;
use eventwire::Transport;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use tokio::sync::Notify;

#[path = "support/alloc_count.rs"]
mod alloc_count;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

const SERVICE: &str = "bench";

// eventwire topics and raw subjects have the same lengths, so both sides
// send the same number of header bytes.
const EW_PUBLISH: &str = "bench.ew.publish";
const RAW_PUBLISH: &str = "bench.rw.publish";
const RAW_E2E: &str = "bench.rw.e2e";
/// Row 2: raw with headers, raw without (subjects of eventwire's length).
const RAW_ORDER: &str = "bench.rw.order";
const RAW_ORDER_BARE: &str = "bench.rb.order";
const RAW_JS: &str = "bench.rw.js";
const RAW_STREAM: &str = "RAWBENCH";
/// The stream eventwire provisions by default, and its dead-letter stream.
const EW_STREAMS: [&str; 2] = ["EVENTWIRE", "EVENTWIRE_DLQ"];
/// Acknowledgements in flight (eventwire's default `publish_window`).
const WINDOW: usize = 256;
/// JetStream consume: unacknowledged messages in flight, both sides.
const IN_FLIGHT: usize = 64;
/// The raw figure is trusted within this range of its reference.
const REFERENCE_RANGE: (f64, f64) = (0.8, 1.25);
/// Latency rows: events per burst, one burst per millisecond.
const BURST: u64 = 5;
/// A wait for deliveries gives up after this long without progress.
const STALL: Duration = Duration::from_secs(10);

/// Row 1: nobody subscribes to this topic.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.ew.publish")]
struct PublishOrder {
    id: u64,
    customer: String,
    total_cents: i64,
}

/// Row 2: handled by `nats_order_sink`.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.ew.order")]
struct Order {
    id: u64,
    customer: String,
    total_cents: i64,
}

/// Latency rows: handled by `nats_e2e_sink`; the send time travels along.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.ew.e2e")]
struct E2ePing {
    seq: u64,
    sent_ns: u64,
    customer: String,
    total_cents: i64,
}

/// Rows 3 and 4: stored by JetStream, handled by `nats_js_sink`.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.ew.js")]
struct JsOrder {
    id: u64,
    customer: String,
    total_cents: i64,
}

fn publish_order(id: u64) -> PublishOrder {
    PublishOrder {
        id,
        customer: "customer-42".to_owned(),
        total_cents: 12_345,
    }
}

fn order(id: u64) -> Order {
    Order {
        id,
        customer: "customer-42".to_owned(),
        total_cents: 12_345,
    }
}

fn e2e_ping(seq: u64, base: Instant) -> E2ePing {
    E2ePing {
        seq,
        sent_ns: base.elapsed().as_nanos() as u64,
        customer: "customer-42".to_owned(),
        total_cents: 12_345,
    }
}

fn js_order(id: u64) -> JsOrder {
    JsOrder {
        id,
        customer: "customer-42".to_owned(),
        total_cents: 12_345,
    }
}

/// The headers eventwire writes for an event without key, causation or
/// trace context (`docs/wire-format.md`), built by hand.
fn raw_headers(topic: &str, msg_id: bool) -> HeaderMap {
    let id = EventId::new();
    let mut h = HeaderMap::new();
    h.insert("ce-specversion", "1.0");
    h.insert("ce-id", id.as_str());
    h.insert("ce-source", SERVICE);
    h.insert("ce-type", topic);
    h.insert("ce-time", format_time(SystemTime::now()));
    h.insert("content-type", "application/json");
    h.insert("ce-schemaversion", "1");
    h.insert("ce-correlationid", id.as_str());
    if msg_id {
        h.insert("Nats-Msg-Id", id.as_str());
    }
    h
}

/// Counts deliveries, records latencies, wakes the waiter at the target.
#[derive(Clone)]
struct Sink(Arc<SinkInner>);

struct SinkInner {
    base: Instant,
    count: AtomicU64,
    target: AtomicU64,
    record: AtomicBool,
    done: Notify,
    latencies_ns: Mutex<Vec<u64>>,
}

impl Sink {
    fn new(base: Instant) -> Self {
        Sink(Arc::new(SinkInner {
            base,
            count: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            record: AtomicBool::new(false),
            done: Notify::new(),
            latencies_ns: Mutex::new(Vec::new()),
        }))
    }

    /// Expects `target` deliveries from now on; `record`: keep latencies.
    fn arm(&self, target: u64, record: bool) {
        let s = &self.0;
        let mut l = s.latencies_ns.lock().unwrap();
        l.clear();
        if record {
            l.reserve(target as usize);
        }
        drop(l);
        s.record.store(record, Ordering::SeqCst);
        s.count.store(0, Ordering::SeqCst);
        s.target.store(target, Ordering::SeqCst);
    }

    /// One delivery, `sent_ns` after the shared base instant.
    fn hit(&self, sent_ns: u64) {
        let s = &self.0;
        if s.record.load(Ordering::Relaxed) {
            let now = s.base.elapsed().as_nanos() as u64;
            s.latencies_ns
                .lock()
                .unwrap()
                .push(now.saturating_sub(sent_ns));
        }
        if s.count.fetch_add(1, Ordering::AcqRel) + 1 == s.target.load(Ordering::Acquire) {
            s.done.notify_one();
        }
    }

    fn count(&self) -> u64 {
        self.0.count.load(Ordering::Acquire)
    }

    /// Waits for the target; on a stall, reports what arrived and returns
    /// `false` (core NATS is at-most-once: a slow consumer loses events).
    async fn wait(&self, what: &str) -> bool {
        let target = self.0.target.load(Ordering::Acquire);
        let (mut last, mut since) = (self.count(), Instant::now());
        loop {
            let n = self.count();
            if n >= target {
                return true;
            }
            if n != last {
                (last, since) = (n, Instant::now());
            } else if since.elapsed() > STALL {
                eprintln!("  !! {what}: {n} of {target} events arrived; gave up after {STALL:?} without progress");
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), self.0.done.notified()).await;
        }
    }

    fn latencies_ns(&self) -> Vec<u64> {
        self.0.latencies_ns.lock().unwrap().clone()
    }
}

#[handler(group = "bench-nats-e2e")]
async fn nats_e2e_sink(evt: E2ePing, State(sink): State<Sink>) {
    sink.hit(evt.sent_ns);
}

#[handler(group = "bench-nats-order")]
async fn nats_order_sink(evt: Order, State(sink): State<Sink>) {
    std::hint::black_box(&evt);
    sink.hit(0);
}

#[handler(group = "bench-nats-js", concurrency = 64, start = "all")]
async fn nats_js_sink(evt: JsOrder, State(sink): State<Sink>) {
    std::hint::black_box(&evt);
    sink.hit(0);
}

// ---------------------------------------------------------------- server

struct Server {
    child: Child,
    port: u16,
    binary: PathBuf,
    version: String,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill(); // by PID
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `nats-server-2.15.1` → `[2, 15, 1]`, so that 2.15 sorts after 2.9.
fn version_of(dir_name: &str) -> Vec<u64> {
    dir_name
        .trim_start_matches("nats-server-")
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("EVENTWIRE_NATS_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools");
    let newest = std::fs::read_dir(tools).ok().and_then(|entries| {
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let bin = e.path().join("bin/nats-server");
                (name.starts_with("nats-server-") && bin.is_file())
                    .then(|| (version_of(&name), bin))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, bin)| bin)
    });
    newest.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

fn start_server() -> Server {
    let binary = server_binary();
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; set EVENTWIRE_NATS_SERVER or run scripts/test --setup-only",
                binary.display()
            )
        });
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free port")
        .port();
    let dir = std::env::temp_dir().join(format!(
        "eventwire-nats-bench-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("cannot create the store directory");
    let mut child = Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{} exited at start-up: {status}", binary.display());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not accept connections within 10 s",
                binary.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Server {
        child,
        port,
        binary,
        version,
        dir,
    }
}

// ---------------------------------------------------------------- rows

#[derive(Clone, Copy)]
struct Sizes {
    core: u64,
    latency: u64,
    js: u64,
}

/// One row of one round: raw without headers (NaN where it does not
/// apply), raw with eventwire's headers, eventwire.
#[derive(Clone, Copy)]
struct Triple {
    bare: f64,
    raw: f64,
    ew: f64,
}

impl Triple {
    fn with_headers((raw, ew): (f64, f64)) -> Self {
        Triple {
            bare: f64::NAN,
            raw,
            ew,
        }
    }
}

struct Round {
    core_publish: Triple,
    e2e: Triple,
    /// Allocations per event of row 2 (whole process), in a phase apart.
    allocs: Triple,
    p50_us: Triple,
    p99_us: Triple,
    js_publish: Triple,
    js_consume: Triple,
    /// Part of the consume row before the first pull.
    js_setup_ms: Triple,
}

/// Runs the sides of a row in order, or (`flip`) in reverse order, so a
/// drift of the shared machine does not always favour the same side.
macro_rules! both {
    ($flip:expr, $raw:expr, $ew:expr) => {
        if $flip {
            let ew = $ew;
            let raw = $raw;
            (raw, ew)
        } else {
            let raw = $raw;
            let ew = $ew;
            (raw, ew)
        }
    };
}

macro_rules! three {
    ($flip:expr, $bare:expr, $raw:expr, $ew:expr) => {
        if $flip {
            let ew = $ew;
            let raw = $raw;
            let bare = $bare;
            Triple { bare, raw, ew }
        } else {
            let bare = $bare;
            let raw = $raw;
            let ew = $ew;
            Triple { bare, raw, ew }
        }
    };
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1_000.0
}

/// Checks that the raw side sends what eventwire sends: same header names,
/// same fixed values, same payload bytes.
async fn check_wire_parity(
    raw: &async_nats::Client,
    publisher: &Publisher,
    transport: &NatsTransport,
) {
    let mut sub = raw.subscribe(EW_PUBLISH).await.unwrap();
    raw.flush().await.unwrap();
    // nats-server (2.9 and 2.15 alike) sometimes drops the first publish a
    // connection makes after a request (eventwire's start-up asks for the
    // JetStream account info) to a subscription made just before on another
    // connection; nats-py shows the same. This check is about the bytes, so
    // it publishes again when nothing came.
    let mut msg = None;
    for _ in 0..5 {
        publisher.publish(&publish_order(7)).await.unwrap();
        // Core publishes are buffered: flush, so the check waits on nothing else.
        transport.client().flush().await.unwrap();
        if let Ok(m) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
            msg = m;
            break;
        }
    }
    let msg = msg.expect("no message from eventwire in 5 tries");
    sub.unsubscribe().await.unwrap();
    let names = |h: &HeaderMap| {
        let mut v: Vec<String> = h
            .iter()
            .map(|(n, _)| <_ as AsRef<str>>::as_ref(n).to_ascii_lowercase())
            .collect();
        v.sort();
        v
    };
    let ew = msg.headers.expect("eventwire sent no headers");
    let mine = raw_headers(EW_PUBLISH, false);
    assert_eq!(names(&ew), names(&mine), "header names differ");
    for fixed in [
        "ce-specversion",
        "ce-source",
        "ce-type",
        "content-type",
        "ce-schemaversion",
    ] {
        assert_eq!(
            ew.get(fixed).map(|v| v.as_str()),
            mine.get(fixed).map(|v| v.as_str()),
            "header {fixed} differs"
        );
    }
    assert_eq!(
        ew.get("ce-id").map(|v| v.as_str()),
        ew.get("ce-correlationid").map(|v| v.as_str()),
        "eventwire's correlation id of a root event is its id"
    );
    let payload = serde_json::to_vec(&publish_order(7)).unwrap();
    assert_eq!(&msg.payload[..], &payload[..], "payloads differ");
    assert_eq!(
        payload.len(),
        53,
        "the throughput event of id 7 is 53 bytes"
    );
}

// Row 1: core publish to a subject nobody subscribes to, then flush.

async fn raw_core_publish(raw: &async_nats::Client, n: u64, headers: bool) -> f64 {
    let t = Instant::now();
    for id in 0..n {
        let payload = serde_json::to_vec(&publish_order(id)).unwrap().into();
        if headers {
            raw.publish_with_headers(RAW_PUBLISH, raw_headers(RAW_PUBLISH, false), payload)
                .await
                .unwrap();
        } else {
            raw.publish(RAW_PUBLISH, payload).await.unwrap();
        }
    }
    raw.flush().await.unwrap();
    rate(n, t.elapsed())
}

async fn ew_core_publish(publisher: &Publisher, transport: &NatsTransport, n: u64) -> f64 {
    let t = Instant::now();
    for id in 0..n {
        publisher.publish(&publish_order(id)).await.unwrap();
    }
    transport.client().flush().await.unwrap();
    rate(n, t.elapsed())
}

// Row 2: core publish -> counting subscriber / handler.

/// Publishes as fast as possible; the rate is taken when the N-th arrived
/// (NaN when events were lost).
async fn raw_e2e(raw: &async_nats::Client, sink: &Sink, n: u64, headers: bool) -> f64 {
    sink.arm(n, false);
    let t = Instant::now();
    for id in 0..n {
        let payload = serde_json::to_vec(&order(id)).unwrap().into();
        if headers {
            raw.publish_with_headers(RAW_ORDER, raw_headers(RAW_ORDER, false), payload)
                .await
                .unwrap();
        } else {
            raw.publish(RAW_ORDER_BARE, payload).await.unwrap();
        }
    }
    let what = if headers {
        "raw publish->subscriber, with headers"
    } else {
        "raw publish->subscriber, no headers"
    };
    if sink.wait(what).await {
        rate(n, t.elapsed())
    } else {
        f64::NAN
    }
}

async fn ew_e2e(publisher: &Publisher, sink: &Sink, n: u64) -> f64 {
    sink.arm(n, false);
    let t = Instant::now();
    for id in 0..n {
        publisher.publish(&order(id)).await.unwrap();
    }
    if sink.wait("eventwire publish->handler").await {
        rate(n, t.elapsed())
    } else {
        f64::NAN
    }
}

/// A raw subscriber task that decodes each event and counts it.
async fn raw_reader(
    raw: &async_nats::Client,
    subject: &'static str,
    sink: Sink,
) -> tokio::task::JoinHandle<()> {
    let mut sub = raw.subscribe(subject).await.unwrap();
    raw.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if subject == RAW_E2E {
                let e: E2ePing = serde_json::from_slice(&msg.payload).unwrap();
                sink.hit(e.sent_ns);
            } else {
                let e: Order = serde_json::from_slice(&msg.payload).unwrap();
                std::hint::black_box(&e);
                sink.hit(0);
            }
        }
    })
}

fn pacer() -> tokio::time::Interval {
    let mut i = tokio::time::interval(Duration::from_millis(1));
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// Latencies (sorted, ns) at a steady rate: BURST events every millisecond.
async fn raw_latency(raw: &async_nats::Client, sink: &Sink, n: u64, base: Instant) -> Vec<u64> {
    sink.arm(n, true);
    let (mut tick, mut seq) = (pacer(), 0);
    while seq < n {
        tick.tick().await;
        for _ in 0..BURST.min(n - seq) {
            let e = e2e_ping(seq, base);
            raw.publish_with_headers(
                RAW_E2E,
                raw_headers(RAW_E2E, false),
                serde_json::to_vec(&e).unwrap().into(),
            )
            .await
            .unwrap();
            seq += 1;
        }
    }
    sink.wait("raw latency").await;
    let mut l = sink.latencies_ns();
    l.sort_unstable();
    l
}

async fn ew_latency(publisher: &Publisher, sink: &Sink, n: u64, base: Instant) -> Vec<u64> {
    sink.arm(n, true);
    let (mut tick, mut seq) = (pacer(), 0);
    while seq < n {
        tick.tick().await;
        for _ in 0..BURST.min(n - seq) {
            publisher.publish(&e2e_ping(seq, base)).await.unwrap();
            seq += 1;
        }
    }
    sink.wait("eventwire latency").await;
    let mut l = sink.latencies_ns();
    l.sort_unstable();
    l
}

/// The reference: the raw client alone, no headers, publish -> subscriber,
/// on a connection of its own, while no eventwire app runs.
async fn reference(port: u16, base: Instant, n: u64) -> f64 {
    let raw = async_nats::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let sink = Sink::new(base);
    let reader = raw_reader(&raw, RAW_ORDER_BARE, sink.clone()).await;
    let mut v = Vec::new();
    for _ in 0..3 {
        v.push(raw_e2e(&raw, &sink, n, false).await);
    }
    reader.abort();
    let _ = reader.await;
    median(v)
}

/// Rows 1 and 2, and the latency rows: core NATS.
async fn core_rows(
    port: u16,
    raw: &async_nats::Client,
    base: Instant,
    sizes: Sizes,
    first: bool,
    flip: bool,
) -> (Triple, Triple, Triple, Triple, Triple) {
    let transport = NatsTransport::connect(NatsConfig::new([format!("127.0.0.1:{port}")]))
        .await
        .unwrap();
    let sink = Sink::new(base);
    let app = App::builder()
        .service(SERVICE)
        .transport(transport.clone())
        .handlers(HandlerSelection::names([
            "nats_order_sink",
            "nats_e2e_sink",
        ]))
        .state(sink.clone())
        .build()
        .await
        .unwrap();
    let publisher = app.publisher();
    if first {
        check_wire_parity(raw, &publisher, &transport).await;
    }
    // The raw subscribers share the publishing connection, as the
    // eventwire handlers do.
    let (bare_sink, raw_sink, lat_sink) = (Sink::new(base), Sink::new(base), Sink::new(base));
    let readers = [
        raw_reader(raw, RAW_ORDER_BARE, bare_sink.clone()).await,
        raw_reader(raw, RAW_ORDER, raw_sink.clone()).await,
        raw_reader(raw, RAW_E2E, lat_sink.clone()).await,
    ];

    let n = sizes.core;
    let publish = three!(
        flip,
        raw_core_publish(raw, n, false).await,
        raw_core_publish(raw, n, true).await,
        ew_core_publish(&publisher, &transport, n).await
    );
    let e2e = three!(
        flip,
        raw_e2e(raw, &bare_sink, n, false).await,
        raw_e2e(raw, &raw_sink, n, true).await,
        ew_e2e(&publisher, &sink, n).await
    );
    let (rl, el) = both!(
        flip,
        raw_latency(raw, &lat_sink, sizes.latency, base).await,
        ew_latency(&publisher, &sink, sizes.latency, base).await
    );
    let a = n.min(20_000);
    let allocs = Triple {
        bare: alloc_count::per_event(a, raw_e2e(raw, &bare_sink, a, false)).await,
        raw: alloc_count::per_event(a, raw_e2e(raw, &raw_sink, a, true)).await,
        ew: alloc_count::per_event(a, ew_e2e(&publisher, &sink, a)).await,
    };

    for reader in readers {
        reader.abort();
        let _ = reader.await;
    }
    app.shutdown().await.unwrap();
    let stats = transport.stats();
    if stats.slow_consumer_events + stats.failed_publishes + stats.disconnects > 0 {
        eprintln!("  !! eventwire core connection: {stats:?}");
    }
    transport.close().await.unwrap();
    (
        publish,
        e2e,
        allocs,
        Triple::with_headers((percentile_us(&rl, 0.50), percentile_us(&el, 0.50))),
        Triple::with_headers((percentile_us(&rl, 0.99), percentile_us(&el, 0.99))),
    )
}

// Row 3: JetStream publish, acknowledgements pipelined, WINDOW in flight.

async fn raw_js_publish(js: &jetstream::Context, events: &[JsOrder]) -> f64 {
    let t = Instant::now();
    let mut acks = FuturesOrdered::new();
    for e in events {
        if acks.len() >= WINDOW {
            let ack: Result<_, _> = acks.next().await.unwrap();
            ack.unwrap();
        }
        let ack = js
            .publish_with_headers(
                RAW_JS,
                raw_headers(RAW_JS, true),
                serde_json::to_vec(e).unwrap().into(),
            )
            .await
            .unwrap();
        acks.push_back(std::future::IntoFuture::into_future(ack));
    }
    while let Some(ack) = acks.next().await {
        ack.unwrap();
    }
    rate(events.len() as u64, t.elapsed())
}

async fn ew_js_publish(publisher: &Publisher, events: &[JsOrder]) -> f64 {
    let t = Instant::now();
    let results = publisher.publish_batch(events).await;
    let r = rate(events.len() as u64, t.elapsed());
    for result in results {
        result.unwrap();
    }
    r
}

// Row 4: JetStream consume with acknowledgements, from nothing to the N-th
// event. Returns (events/s, setup ms).

async fn raw_js_consume(url: &str, n: u64) -> (f64, f64) {
    let t = Instant::now();
    let client = async_nats::connect(url).await.unwrap();
    let consumer = jetstream::new(client.clone())
        .get_stream(RAW_STREAM)
        .await
        .unwrap()
        .create_consumer(consumer::pull::Config {
            durable_name: Some("raw-consume".to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            max_ack_pending: IN_FLIGHT as i64,
            ..Default::default()
        })
        .await
        .unwrap();
    let setup = t.elapsed();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(IN_FLIGHT)
        .messages()
        .await
        .unwrap();
    let mut got = 0;
    while got < n {
        let msg = messages.next().await.expect("stream ended").unwrap();
        let e: JsOrder = serde_json::from_slice(&msg.payload).unwrap();
        std::hint::black_box(&e);
        msg.ack().await.unwrap();
        got += 1;
    }
    let r = rate(n, t.elapsed());
    drop(messages);
    client.flush().await.unwrap();
    (r, setup.as_secs_f64() * 1e3)
}

async fn ew_js_consume(ew_url: &str, base: Instant, n: u64) -> (f64, f64) {
    let sink = Sink::new(base);
    sink.arm(n, false);
    let t = Instant::now();
    let transport = JetStreamTransport::connect(NatsConfig::from_url(ew_url).unwrap())
        .await
        .unwrap();
    let app = App::builder()
        .service(SERVICE)
        .transport(transport.clone())
        .handlers(HandlerSelection::names(["nats_js_sink"]))
        .state(sink.clone())
        .build()
        .await
        .unwrap();
    let setup = t.elapsed();
    let r = if sink.wait("eventwire JetStream consume").await {
        rate(n, t.elapsed())
    } else {
        f64::NAN
    };
    app.shutdown().await.unwrap();
    let recoveries = transport.stats().consumer_recoveries;
    if recoveries > 0 {
        eprintln!("  !! eventwire JetStream consumer recreated {recoveries} time(s) mid-stream");
    }
    (r, setup.as_secs_f64() * 1e3)
}

async fn stored(js: &jetstream::Context, name: &str) -> u64 {
    let mut s = js.get_stream(name).await.unwrap();
    s.info().await.unwrap().state.messages
}

/// Rows 3 and 4: JetStream. The streams are deleted at the end, so every
/// round starts from nothing.
async fn jetstream_rows(
    port: u16,
    raw: &async_nats::Client,
    base: Instant,
    sizes: Sizes,
    flip: bool,
) -> (Triple, Triple, Triple) {
    let n = sizes.js;
    let url = format!("127.0.0.1:{port}");
    let ew_url = format!("jetstream://{url}?storage=memory");
    let js = jetstream::new(raw.clone());
    // The settings of eventwire's stream: memory, 2 min duplicate window.
    js.create_stream(stream::Config {
        name: RAW_STREAM.to_owned(),
        subjects: vec![RAW_JS.to_owned()],
        storage: stream::StorageType::Memory,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .unwrap();
    // Provisions EVENTWIRE (every topic of this binary) and EVENTWIRE_DLQ.
    let ew_pub = App::builder()
        .service(SERVICE)
        .transport_url(&ew_url)
        .unwrap()
        .handlers(HandlerSelection::names(Vec::<&str>::new()))
        .build()
        .await
        .unwrap();
    let publisher = ew_pub.publisher();

    let events: Vec<JsOrder> = (0..n).map(js_order).collect();
    let publish = both!(
        flip,
        raw_js_publish(&js, &events).await,
        ew_js_publish(&publisher, &events).await
    );
    ew_pub.shutdown().await.unwrap();
    assert_eq!(stored(&js, RAW_STREAM).await, n, "raw stream");
    assert_eq!(stored(&js, EW_STREAMS[0]).await, n, "eventwire stream");

    let (raw_c, ew_c) = both!(
        flip,
        raw_js_consume(&url, n).await,
        ew_js_consume(&ew_url, base, n).await
    );

    js.delete_stream(RAW_STREAM).await.unwrap();
    for s in EW_STREAMS {
        js.delete_stream(s).await.unwrap();
    }
    (
        Triple::with_headers(publish),
        Triple::with_headers((raw_c.0, ew_c.0)),
        Triple::with_headers((raw_c.1, ew_c.1)),
    )
}

async fn round(
    port: u16,
    raw: &async_nats::Client,
    base: Instant,
    sizes: Sizes,
    first: bool,
    flip: bool,
) -> Round {
    let (core_publish, e2e, allocs, p50_us, p99_us) =
        core_rows(port, raw, base, sizes, first, flip).await;
    let (js_publish, js_consume, js_setup_ms) = jetstream_rows(port, raw, base, sizes, flip).await;
    Round {
        core_publish,
        e2e,
        allocs,
        p50_us,
        p99_us,
        js_publish,
        js_consume,
        js_setup_ms,
    }
}

async fn run(port: u16, sizes: Sizes, warm_up: Option<Sizes>, rounds: usize) -> (f64, Vec<Round>) {
    let base = Instant::now();
    let raw = async_nats::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut first = true;
    if let Some(w) = warm_up {
        round(port, &raw, base, w, true, false).await;
        first = false;
    }
    // After the warm-up (whose apps are shut down by now), before the rounds.
    let reference = reference(port, base, sizes.core).await;
    let mut out = Vec::with_capacity(rounds);
    for i in 0..rounds {
        out.push(round(port, &raw, base, sizes, first, i % 2 == 1).await);
        first = false;
    }
    (reference, out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

type Pick = fn(&Round) -> Triple;

fn print_rows(title: &str, rows: &[(&str, &str, Pick)], results: &[Round], verbose: bool) {
    println!("  {title}");
    println!(
        "  {:<34} {:>13} {:>13} {:>13} {:>8} {:>8}",
        "row", "raw, no hdrs", "raw, headers", "eventwire", "ew/bare", "ew/raw"
    );
    for &(name, unit, pick) in rows {
        let col = |side: fn(Triple) -> f64| median(results.iter().map(|r| side(pick(r))).collect());
        let (bare, raw, ew) = (col(|t| t.bare), col(|t| t.raw), col(|t| t.ew));
        let digits = if unit == "ev/s" { 0 } else { 1 };
        let cell = |v: f64| {
            if v.is_nan() {
                format!("{:>13}", "-")
            } else {
                format!("{:>8.digits$} {unit:<4}", v)
            }
        };
        let ratio = |v: f64| {
            if v.is_nan() {
                format!("{:>8}", "-")
            } else {
                format!("{:>7.2}x", v)
            }
        };
        println!(
            "  {name:<34} {} {} {} {} {}",
            cell(bare),
            cell(raw),
            cell(ew),
            ratio(ew / bare),
            ratio(ew / raw)
        );
        if verbose {
            let each = |side: fn(Triple) -> f64| {
                let v: Vec<String> = results
                    .iter()
                    .map(|r| format!("{:.digits$}", side(pick(r))))
                    .collect();
                v.join(" ")
            };
            println!(
                "      rounds: bare {} | raw {} | eventwire {}",
                each(|t| t.bare),
                each(|t| t.raw),
                each(|t| t.ew)
            );
        }
    }
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: one tiny round.
    let quick = !std::env::args().any(|a| a == "--bench");
    let verbose = env("VERBOSE").is_some_and(|v| v > 0);
    let (sizes, warm_up, rounds) = if quick {
        let s = Sizes {
            core: 200,
            latency: 100,
            js: 200,
        };
        (s, None, 1)
    } else {
        let core = env("EVENTS").unwrap_or(200_000).max(1);
        let s = Sizes {
            core,
            latency: (core / 40).clamp(100, 5_000),
            js: (core / 2).max(1),
        };
        let w = Sizes {
            core: (core / 10).clamp(1, 20_000),
            latency: 100,
            js: (core / 20).clamp(1, 10_000),
        };
        (s, Some(w), env("ROUNDS").unwrap_or(5).max(1) as usize)
    };

    let server = start_server();
    println!(
        "nats_throughput: {} ({}), port {}, 2 tokio worker threads",
        server.version,
        server.binary.display(),
        server.port
    );
    println!(
        "  {} core events, {} latency samples at {}/ms, {} JetStream events ({} publish acks, {} consume in flight); {}",
        sizes.core,
        sizes.latency,
        BURST,
        sizes.js,
        WINDOW,
        IN_FLIGHT,
        if quick {
            "quick mode (no --bench): one round".to_owned()
        } else {
            format!("median of {rounds} rounds after a warm-up round")
        }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let port = server.port;
    // Everything runs on the two workers, not on this thread.
    let (reference, results) = rt
        .block_on(rt.spawn(run(port, sizes, warm_up, rounds)))
        .unwrap();
    drop(rt);
    drop(server);

    let throughput: [(&str, &str, Pick); 5] = [
        ("core publish", "ev/s", |r| r.core_publish),
        ("core publish->handler", "ev/s", |r| r.e2e),
        ("jetstream publish, 256 acks open", "ev/s", |r| r.js_publish),
        ("jetstream consume+ack, 64 open", "ev/s", |r| r.js_consume),
        ("jetstream start-up (lower=better)", "ms", |r| r.js_setup_ms),
    ];
    let cost: [(&str, &str, Pick); 1] = [("core publish->handler allocs/event", "", |r| r.allocs)];
    let latency: [(&str, &str, Pick); 2] = [
        ("core p50 (lower is better)", "µs", |r| r.p50_us),
        ("core p99 (lower is better)", "µs", |r| r.p99_us),
    ];
    print_rows("throughput", &throughput, &results, verbose);
    print_rows("latency", &latency, &results, verbose);
    print_rows(
        "cost (whole process, lower is better)",
        &cost,
        &results,
        verbose,
    );

    let measured = median(results.iter().map(|r| r.e2e.bare).collect());
    let (lo, hi) = REFERENCE_RANGE;
    println!(
        "  reference: raw async-nats alone, no headers, publish->subscriber: {reference:.0} ev/s; in the rounds: {measured:.0} ev/s ({:.2}x)",
        measured / reference
    );
    if !(measured / reference >= lo && measured / reference <= hi) {
        println!(
            "  !! WARNING: the raw figure is outside {lo}-{hi}x of its reference: the raw side did not run at its own speed in this run; treat the ratios with suspicion"
        );
    }
}

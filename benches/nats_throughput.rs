//! eventwire over NATS against raw async-nats, in one run against one
//! nats-server that the benchmark starts itself (the newest installed:
//! `.tools/nats-server-*` from `scripts/test`, else `nats-server` on PATH,
//! or `EVENTWIRE_NATS_SERVER`). Each row prints both figures and the ratio.
//!
//! ```text
//! cargo bench --bench nats_throughput
//! EVENTS=50000 cargo bench --bench nats_throughput
//! ```
//!
//! Rows: core publish, core publish → handler (throughput and p50/p99
//! latency), JetStream publish with acknowledgements (pipelined), JetStream
//! consume with acknowledgements. The raw side sends the same headers and
//! the same JSON payload; eventwire adds ids, envelope parsing, dispatch,
//! retries/timeouts bookkeeping and (JetStream) the idempotency guard.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventwire::nats::async_nats::{self, HeaderMap};
use eventwire::nats::{NatsConfig, NatsTransport};
use eventwire::prelude::*;
use eventwire::PublishOptions;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use tokio::sync::Notify;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.nats.core")]
struct CorePing {
    seq: u64,
    sent_ns: u64,
    customer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "bench.nats.js")]
struct JsPing {
    seq: u64,
    sent_ns: u64,
    customer: String,
}

fn ping(seq: u64, base: Instant) -> CorePing {
    CorePing {
        seq,
        sent_ns: base.elapsed().as_nanos() as u64,
        customer: "customer-42".into(),
    }
}

fn js_ping(seq: u64) -> JsPing {
    JsPing {
        seq,
        sent_ns: 0,
        customer: "customer-42".into(),
    }
}

/// Counts deliveries; records latencies; wakes the waiter at the target.
#[derive(Clone)]
struct Sink {
    count: Arc<AtomicU64>,
    target: Arc<AtomicU64>,
    done: Arc<Notify>,
    latencies: Arc<Mutex<Vec<u64>>>,
    base: Instant,
}

impl Sink {
    fn new(base: Instant) -> Self {
        Sink {
            count: Arc::default(),
            target: Arc::new(AtomicU64::new(u64::MAX)),
            done: Arc::default(),
            latencies: Arc::default(),
            base,
        }
    }
    fn reset(&self, target: u64) {
        self.count.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
        self.latencies.lock().unwrap().clear();
    }
    fn hit(&self, sent_ns: u64, record: bool) {
        if record {
            let now = self.base.elapsed().as_nanos() as u64;
            self.latencies
                .lock()
                .unwrap()
                .push(now.saturating_sub(sent_ns));
        }
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.target.load(Ordering::SeqCst) {
            self.done.notify_one();
        }
    }
    async fn wait(&self) {
        while self.count.load(Ordering::SeqCst) < self.target.load(Ordering::SeqCst) {
            let _ = tokio::time::timeout(Duration::from_millis(50), self.done.notified()).await;
        }
    }
}

#[handler(group = "bench-core", concurrency = 1)]
async fn core_sink(evt: CorePing, State(sink): State<Sink>) {
    sink.hit(evt.sent_ns, true);
}

#[handler(group = "bench-js", concurrency = 256, start = "all")]
async fn js_sink(evt: JsPing, State(sink): State<Sink>) {
    sink.hit(evt.sent_ns, false);
}

struct Server {
    child: Child,
    port: u16,
    version: String,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill(); // by PID
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = std::env::var("EVENTWIRE_NATS_SERVER")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(".tools"))
                .ok()?
                .flatten()
                .map(|e| e.path().join("bin/nats-server"))
                .filter(|p| p.exists())
                .collect();
            found.sort();
            found.pop()
        })
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"));
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/test --setup-only",
                binary.display()
            )
        });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("eventwire-bench-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        port,
        version,
        _dir: TempDir(dir),
    }
}

/// One measured row: name, raw figure, eventwire figure, unit, higher is better.
type Row = (&'static str, f64, f64, &'static str, bool);

thread_local! {
    static ROWS: std::cell::RefCell<Vec<Row>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn row(name: &'static str, raw: f64, ew: f64, unit: &'static str, higher_is_better: bool) {
    ROWS.with(|r| r.borrow_mut().push((name, raw, ew, unit, higher_is_better)));
}

/// Prints the median of every row over the rounds.
fn report(rows: Vec<Row>) {
    let mut names: Vec<&str> = Vec::new();
    for r in &rows {
        if !names.contains(&r.0) {
            names.push(r.0);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    for name in names {
        let of: Vec<&Row> = rows.iter().filter(|r| r.0 == name).collect();
        let (unit, hib) = (of[0].3, of[0].4);
        let raw = median(of.iter().map(|r| r.1).collect());
        let ew = median(of.iter().map(|r| r.2).collect());
        let ratio = if hib { ew / raw } else { raw / ew };
        println!("  {name:<42} raw {raw:>9.0} {unit:<4} eventwire {ew:>9.0} {unit:<4} ratio {ratio:>5.2}x");
    }
}

fn percentile(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0
}

/// Headers as eventwire writes them, so the raw side carries the same bytes.
fn raw_headers(publisher: &Publisher, event: &CorePing, msg_id: bool) -> HeaderMap {
    let env = publisher.envelope(event, PublishOptions::new()).unwrap();
    let mut h = HeaderMap::new();
    for (k, v) in env.to_headers() {
        h.insert(k, v.as_str());
    }
    if msg_id {
        h.insert("Nats-Msg-Id", env.id.as_str());
    }
    h
}

async fn run(server: &Server, core_n: u64, js_n: u64, latency_n: u64) {
    let base = Instant::now();
    let url = format!("127.0.0.1:{}", server.port);
    let raw = async_nats::connect(&url).await.unwrap();
    let sink = Sink::new(base);
    let transport = NatsTransport::connect(NatsConfig::new([url.clone()]))
        .await
        .unwrap();
    let app = App::builder()
        .service("bench")
        .transport(transport.clone())
        .handlers(HandlerSelection::names(["core_sink"]))
        .state(sink.clone())
        .build()
        .await
        .unwrap();
    let publisher = app.publisher();

    // 1. Core publish.
    let t = Instant::now();
    for seq in 0..core_n {
        let e = ping(seq, base);
        let h = raw_headers(&publisher, &e, false);
        raw.publish_with_headers(
            "bench.raw.publish",
            h,
            serde_json::to_vec(&e).unwrap().into(),
        )
        .await
        .unwrap();
    }
    raw.flush().await.unwrap();
    let raw_rate = core_n as f64 / t.elapsed().as_secs_f64();
    // eventwire publishes to a topic nobody subscribes to in this row.
    let side = App::builder()
        .service("bench")
        .transport(transport.clone())
        .handlers(HandlerSelection::names(Vec::<String>::new()))
        .build()
        .await
        .unwrap();
    #[derive(Debug, Clone, Serialize, Deserialize, Event)]
    #[event(topic = "bench.nats.publish-only")]
    struct PublishOnly {
        seq: u64,
        sent_ns: u64,
        customer: String,
    }
    let t = Instant::now();
    for seq in 0..core_n {
        side.publisher()
            .publish(&PublishOnly {
                seq,
                sent_ns: 0,
                customer: "customer-42".into(),
            })
            .await
            .unwrap();
    }
    transport.client().flush().await.unwrap();
    row(
        "core publish (events/s)",
        raw_rate,
        core_n as f64 / t.elapsed().as_secs_f64(),
        "ev/s",
        true,
    );

    // 2. Core publish -> handler, throughput.
    let raw_sink = Sink::new(base);
    let mut sub = raw.subscribe("bench.raw.e2e").await.unwrap();
    raw.flush().await.unwrap();
    let rs = raw_sink.clone();
    let reader = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let e: CorePing = serde_json::from_slice(&msg.payload).unwrap();
            rs.hit(e.sent_ns, true);
        }
    });
    raw_sink.reset(core_n);
    let t = Instant::now();
    for seq in 0..core_n {
        let e = ping(seq, base);
        let h = raw_headers(&publisher, &e, false);
        raw.publish_with_headers("bench.raw.e2e", h, serde_json::to_vec(&e).unwrap().into())
            .await
            .unwrap();
    }
    raw_sink.wait().await;
    let raw_rate = core_n as f64 / t.elapsed().as_secs_f64();
    sink.reset(core_n);
    let t = Instant::now();
    for seq in 0..core_n {
        publisher.publish(&ping(seq, base)).await.unwrap();
    }
    sink.wait().await;
    row(
        "core publish->handler (events/s)",
        raw_rate,
        core_n as f64 / t.elapsed().as_secs_f64(),
        "ev/s",
        true,
    );

    // 2b. Latency: one event in flight at a time.
    raw_sink.reset(latency_n);
    for seq in 0..latency_n {
        let e = ping(seq, base);
        let h = raw_headers(&publisher, &e, false);
        raw.publish_with_headers("bench.raw.e2e", h, serde_json::to_vec(&e).unwrap().into())
            .await
            .unwrap();
        raw.flush().await.unwrap();
        while raw_sink.count.load(Ordering::SeqCst) <= seq {
            tokio::task::yield_now().await;
        }
    }
    sink.reset(latency_n);
    for seq in 0..latency_n {
        publisher.publish(&ping(seq, base)).await.unwrap();
        transport.client().flush().await.unwrap();
        while sink.count.load(Ordering::SeqCst) <= seq {
            tokio::task::yield_now().await;
        }
    }
    let (mut rl, mut el) = (
        raw_sink.latencies.lock().unwrap().clone(),
        sink.latencies.lock().unwrap().clone(),
    );
    row(
        "core latency p50 (µs, lower is better)",
        percentile(&mut rl, 0.5),
        percentile(&mut el, 0.5),
        "µs",
        false,
    );
    row(
        "core latency p99 (µs, lower is better)",
        percentile(&mut rl, 0.99),
        percentile(&mut el, 0.99),
        "µs",
        false,
    );
    reader.abort();
    app.shutdown().await.unwrap();
    side.shutdown().await.unwrap();

    // 3. JetStream publish with acks, pipelined (window 256).
    let js = async_nats::jetstream::new(raw.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "RAWBENCH".into(),
        subjects: vec!["bench.raw.js".into()],
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let js_url = format!("jetstream://{url}?storage=memory");
    let consumer_app_sink = Sink::new(base);
    let js_pub = App::builder()
        .service("bench")
        .transport_url(&js_url)
        .unwrap()
        .handlers(HandlerSelection::names(Vec::<String>::new()))
        .build()
        .await
        .unwrap();
    let t = Instant::now();
    let mut acks = FuturesOrdered::new();
    for seq in 0..js_n {
        if acks.len() >= 256 {
            let ack: Result<_, _> = acks.next().await.unwrap();
            ack.unwrap();
        }
        let e = ping(seq, base);
        let h = raw_headers(&publisher, &e, true);
        acks.push_back(std::future::IntoFuture::into_future(
            js.publish_with_headers("bench.raw.js", h, serde_json::to_vec(&e).unwrap().into())
                .await
                .unwrap(),
        ));
    }
    while let Some(a) = acks.next().await {
        a.unwrap();
    }
    let raw_rate = js_n as f64 / t.elapsed().as_secs_f64();
    let events: Vec<JsPing> = (0..js_n).map(js_ping).collect();
    let t = Instant::now();
    for r in js_pub.publisher().publish_batch(&events).await {
        r.unwrap();
    }
    row(
        "jetstream publish, acked (events/s)",
        raw_rate,
        js_n as f64 / t.elapsed().as_secs_f64(),
        "ev/s",
        true,
    );

    // 4. JetStream consume with acks (the events published above).
    let stream = js.get_stream("RAWBENCH").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 256,
            ..Default::default()
        })
        .await
        .unwrap();
    let t = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(256)
        .messages()
        .await
        .unwrap();
    let mut got = 0;
    while got < js_n {
        let msg = messages.next().await.unwrap().unwrap();
        let e: CorePing = serde_json::from_slice(&msg.payload).unwrap();
        std::hint::black_box(e);
        msg.ack().await.unwrap();
        got += 1;
    }
    let raw_rate = js_n as f64 / t.elapsed().as_secs_f64();
    consumer_app_sink.reset(js_n);
    let t = Instant::now();
    let js_app = App::builder()
        .service("bench")
        .transport_url(&js_url)
        .unwrap()
        .handlers(HandlerSelection::names(["js_sink"]))
        .state(consumer_app_sink.clone())
        .build()
        .await
        .unwrap();
    consumer_app_sink.wait().await;
    row(
        "jetstream consume, acked (events/s)",
        raw_rate,
        js_n as f64 / t.elapsed().as_secs_f64(),
        "ev/s",
        true,
    );
    js_app.shutdown().await.unwrap();
    js_pub.shutdown().await.unwrap();
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("EVENTS", 20_000);
    let rounds = if quick { 1 } else { env("ROUNDS", 3) };
    let (core_n, js_n, lat_n) = if quick {
        (200, 200, 50)
    } else {
        (n, n / 2, 2_000)
    };
    let mut version = String::new();
    for _ in 0..rounds {
        // A fresh server per round: every round starts from empty streams.
        let server = start_server();
        version = server.version.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(&server, core_n, js_n, lat_n));
    }
    println!(
        "nats_throughput against {version}: {core_n} core events, {js_n} JetStream events, \
         {lat_n} latency samples; median of {rounds} rounds, 2 worker threads"
    );
    report(ROWS.with(|r| r.take()));
}

//! The wire format, proven with a non-Rust client: a Python service using
//! nats-py publishes an event exactly as docs/wire-format.md says and a
//! `#[handler]` receives it; then it reads an event eventwire published and
//! checks every documented header. `scripts/test` installs nats-py into
//! `.tools/python`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::prelude::*;
use eventwire::PublishOptions;
use support::{eventually, server_binaries, NatsServer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.interop.order-shipped", version = 2)]
struct OrderShipped {
    #[event(key)]
    order_id: String,
    items: Vec<String>,
    total_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.interop.invoice", version = 3)]
struct InvoiceIssued {
    #[event(key)]
    invoice_id: String,
    amount_cents: i64,
}

#[derive(Debug, Clone)]
struct Got {
    event: OrderShipped,
    source: String,
    key: Option<String>,
    correlation: Option<String>,
    traceparent: Option<String>,
    carrier: Option<String>,
}

type Received = Arc<Mutex<Vec<Got>>>;

#[handler(group = "interop")]
async fn from_python(evt: OrderShipped, ctx: Context, State(got): State<Received>) {
    got.lock().unwrap().push(Got {
        event: evt,
        source: ctx.source().to_owned(),
        key: ctx.key().map(str::to_owned),
        correlation: ctx.correlation_id().map(str::to_owned),
        traceparent: ctx.traceparent().map(str::to_owned),
        carrier: ctx.header("x-carrier").map(str::to_owned),
    });
}

fn python(args: &[&str]) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("tests/interop/peer.py"))
        .args(args)
        .env("PYTHONPATH", root.join(".tools/python"));
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_service_publishes_and_consumes_eventwire_events() {
    let binary = server_binaries().remove(0);
    let server = NatsServer::start(&binary);
    let port = server.port.to_string();
    let got = Received::default();
    let app = App::builder()
        .service("billing")
        .transport_url(&server.url("nats"))
        .unwrap()
        .handlers(HandlerSelection::names(["from_python"]))
        .state(got.clone())
        .build()
        .await
        .unwrap();

    // Python → Rust.
    let status = python(&["publish", &port])
        .status()
        .expect("python3 runs (scripts/test installs nats-py)");
    assert!(status.success(), "the python publisher failed");
    eventually(Duration::from_secs(10), "the python event", || {
        got.lock().unwrap().len() == 1
    })
    .await;
    let g = got.lock().unwrap()[0].clone();
    assert_eq!(
        g.event,
        OrderShipped {
            order_id: "py-7".into(),
            items: vec!["mug".into(), "tea".into()],
            total_cents: 1999
        }
    );
    assert_eq!(g.source, "shipping-py");
    assert_eq!(g.key.as_deref(), Some("py-7"));
    assert_eq!(g.correlation.as_deref(), Some("checkout-py-7"));
    assert_eq!(
        g.traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(g.carrier.as_deref(), Some("dhl"));

    // Rust → Python: the peer checks every documented header.
    let mut peer = python(&["consume", &port])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
    let ready = tokio::task::spawn_blocking(move || {
        let first = lines.next().map(|l| l.unwrap());
        (first, lines)
    });
    let (first, lines) = tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("READY"));
    app.publisher()
        .publish_with(
            &InvoiceIssued {
                invoice_id: "inv-9".into(),
                amount_cents: 4200,
            },
            PublishOptions::new()
                .correlation_id("checkout-9")
                .traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
                .header("x-region", "eu"),
        )
        .await
        .unwrap();
    let rest: Vec<String> =
        tokio::task::spawn_blocking(move || lines.map(|l| l.unwrap()).collect())
            .await
            .unwrap();
    let status = peer.wait().unwrap();
    assert!(
        status.success() && rest.contains(&"OK".to_owned()),
        "python peer: {rest:?}"
    );
    app.shutdown().await.unwrap();
}

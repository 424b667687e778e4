//! `kafkas://` (feature `kafka-tls`) against a real broker behind TLS with
//! client certificates: tansu, whose own TLS listener does not start in
//! 0.6.0, behind socat terminating TLS (`verify=1`: a client certificate
//! signed by the test CA is required). The broker advertises the TLS port,
//! so every connection the clients make goes through TLS. Both run on free
//! ports and are stopped by PID; `scripts/test` installs socat.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventwire::kafka::{KafkaConfig, KafkaTransport};
use eventwire::prelude::*;
use eventwire::TransportErrorKind;
use support::{certificates, eventually, free_port, kafka_broker::tansu_binary, unique_prefix};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.kafka-tls.ping")]
struct Ping {
    n: u32,
}

#[handler(group = "kafka-tls")]
async fn kafka_tls_ping(_evt: Ping, State(count): State<Arc<AtomicU32>>) {
    count.fetch_add(1, Ordering::SeqCst);
}

/// Processes stopped by PID when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_listening(port: u16) {
    support::nats_server::wait_listening(port, "the TLS test's broker", Duration::from_secs(15));
}

/// tansu on a plain port advertising `tls_port`, and socat on `tls_port`.
fn start(dir: &Path) -> (Procs, u16) {
    let (plain, tls) = (free_port(), free_port());
    let advertised = format!("tcp://127.0.0.1:{tls}");
    let tansu = Command::new(tansu_binary())
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{plain}"),
        ])
        .args(["--advertised-listener-url", &advertised])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts");
    let mut procs = Procs(vec![tansu]);
    wait_listening(plain);
    let pem = |name: &str| dir.join(name).display().to_string();
    let socat = Command::new("socat")
        .arg(format!(
            "OPENSSL-LISTEN:{tls},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
            pem("server.pem"),
            pem("server.key"),
            pem("ca.pem")
        ))
        .arg(format!("TCP:127.0.0.1:{plain}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat runs (scripts/test installs it)");
    procs.0.push(socat);
    wait_listening(tls);
    (procs, tls)
}

fn cert_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eventwire-kafka-tls-{}", unique_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_over_tls_with_a_client_certificate() {
    let dir = cert_dir();
    let (_procs, port) = start(&dir);
    let file = |name: &str| dir.join(name).display().to_string();
    let url = format!(
        "kafkas://127.0.0.1:{port}?tls_ca={}&tls_cert={}&tls_key={}&prefix={}&session_timeout=6s",
        file("ca.pem"),
        file("client.pem"),
        file("client.key"),
        unique_prefix()
    );
    let count = Arc::new(AtomicU32::new(0));
    let app = App::builder()
        .service("tls")
        .transport_url(&url)
        .unwrap()
        .handlers(HandlerSelection::names(["kafka_tls_ping"]))
        .state(count.clone())
        .build()
        .await
        .unwrap();
    for n in 0..5 {
        app.publisher().publish(&Ping { n }).await.unwrap();
    }
    eventually(Duration::from_secs(20), "5 events over TLS", || {
        count.load(Ordering::SeqCst) == 5
    })
    .await;
    app.shutdown().await.unwrap();

    // Without the client certificate, or trusting another CA, nothing connects.
    for url in [
        format!(
            "kafkas://127.0.0.1:{port}?tls_ca={}&connect_timeout=3s",
            file("ca.pem")
        ),
        format!(
            "kafkas://127.0.0.1:{port}?tls_ca={}&tls_cert={}&tls_key={}&connect_timeout=3s",
            file("client.pem"),
            file("client.pem"),
            file("client.key")
        ),
    ] {
        let err = KafkaTransport::connect(KafkaConfig::from_url(&url).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Connect, "{url}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

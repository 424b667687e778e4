//! Authentication and TLS against real nats-server processes: tokens,
//! user/password, TLS with a custom CA and a client certificate. Secrets
//! never show up in errors.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventwire::prelude::*;
use support::{certificates, eventually, server_binaries, NatsServer};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.security.ping")]
struct Ping {
    n: u32,
}

#[handler(group = "secure")]
async fn secure_ping(_evt: Ping, State(count): State<Arc<AtomicU32>>) {
    count.fetch_add(1, Ordering::SeqCst);
}

async fn round_trip(url: &str) -> Result<(), eventwire::Error> {
    let count = Arc::new(AtomicU32::new(0));
    let app = App::builder()
        .service("secure")
        .transport_url(url)?
        .handlers(HandlerSelection::names(["secure_ping"]))
        .state(count.clone())
        .build()
        .await?;
    app.publisher().publish(&Ping { n: 1 }).await?;
    eventually(
        Duration::from_secs(10),
        "the event over the secured connection",
        || count.load(Ordering::SeqCst) == 1,
    )
    .await;
    app.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_user_password() {
    for binary in server_binaries() {
        let server = NatsServer::start_with(&binary, &["--auth", "s3cr3t-token"]);
        round_trip(&format!("nats://s3cr3t-token@127.0.0.1:{}", server.port))
            .await
            .unwrap();
        round_trip(&format!(
            "nats://127.0.0.1:{}?token=s3cr3t-token",
            server.port
        ))
        .await
        .unwrap();
        let err = round_trip(&format!("nats://wrong-token@127.0.0.1:{}", server.port))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot connect to NATS"), "{err}");
        assert!(!err.contains("wrong-token"), "the secret leaked: {err}");

        let server = NatsServer::start_with(&binary, &["--user", "alice", "--pass", "wonder land"]);
        round_trip(&format!(
            "nats://alice:wonder%20land@127.0.0.1:{}",
            server.port
        ))
        .await
        .unwrap();
        let err = round_trip(&format!("nats://alice:nope@127.0.0.1:{}", server.port))
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("nope"), "the secret leaked: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_custom_ca_and_a_client_certificate() {
    let dir = std::env::temp_dir().join(format!(
        "eventwire-tls-{}-{}",
        std::process::id(),
        support::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    let p = |f: &str| dir.join(f).display().to_string();
    for binary in server_binaries() {
        let server = NatsServer::start_with(
            &binary,
            &[
                "--tls",
                "--tlscert",
                &p("server.pem"),
                "--tlskey",
                &p("server.key"),
                "--tlsverify",
                "--tlscacert",
                &p("ca.pem"),
            ],
        );
        let base = format!("tls://127.0.0.1:{}", server.port);
        round_trip(&format!(
            "{base}?tls_ca={}&tls_cert={}&tls_key={}",
            p("ca.pem"),
            p("client.pem"),
            p("client.key")
        ))
        .await
        .unwrap_or_else(|e| panic!("TLS on {}: {e}", binary.version));
        // Without the client certificate the server refuses the connection.
        let err = round_trip(&format!("{base}?tls_ca={}", p("ca.pem")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot connect to NATS"), "{err}");
        // Without the CA the client refuses the server's certificate.
        assert!(round_trip(&format!(
            "{base}?tls_cert={}&tls_key={}",
            p("client.pem"),
            p("client.key")
        ))
        .await
        .is_err());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

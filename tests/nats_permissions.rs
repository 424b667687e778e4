//! What the server refuses for lack of permission is never silent, against
//! real nats-server processes (every installed version), core NATS:
//!
//! - a handler whose subscription the account may not make fails `build()`
//!   with `TransportErrorKind::PermissionDenied` (it used to build, with a
//!   handler that never ran);
//! - a publish the account may not make has already returned `Ok` when the
//!   server refuses it (core NATS does not wait for the server): it is
//!   counted in `NatsStats::permission_violations`, and logged with its
//!   subject (it used to vanish without a trace);
//! - a JetStream publish the account may not make fails with
//!   `PermissionDenied` as soon as the server refuses it (it used to wait
//!   for the acknowledgement's timeout, then say "not acknowledged").

mod support;

use std::error::Error as _;
use std::io::Write;
use std::time::Duration;

use eventwire::nats::{NatsConfig, NatsTransport};
use eventwire::prelude::*;
use eventwire::TransportErrorKind;
use support::{eventually, server_binaries, NatsServer};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "perm.denied.created")]
struct Denied {
    n: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "perm.ok.created")]
struct Allowed {
    n: u32,
}

#[handler(group = "perm")]
async fn on_denied(_evt: Denied) {}

#[handler(group = "perm")]
async fn on_allowed(_evt: Allowed) {}

/// A server where user `limited` may only publish and subscribe under
/// `perm.ok.>` (and use inboxes and the JetStream API).
fn server_with_permissions(binary: &support::ServerBinary) -> (NatsServer, std::path::PathBuf) {
    let conf = std::env::temp_dir().join(format!(
        "eventwire-perm-{}-{}.conf",
        std::process::id(),
        support::free_port()
    ));
    let mut f = std::fs::File::create(&conf).unwrap();
    writeln!(
        f,
        r#"authorization {{
  users = [
    {{ user: limited, password: pw, permissions: {{
        publish: {{ allow: ["perm.ok.>", "_INBOX.>", "$JS.API.>"] }},
        subscribe: {{ allow: ["perm.ok.>", "_INBOX.>"] }}
    }} }}
  ]
}}"#
    )
    .unwrap();
    let server = NatsServer::start_with(binary, &["-c", conf.to_str().unwrap()]);
    (server, conf)
}

async fn transport(server: &NatsServer) -> NatsTransport {
    let url = format!("nats://limited:pw@127.0.0.1:{}", server.port);
    NatsTransport::connect(NatsConfig::from_url(&url).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_the_server_are_typed_or_counted() {
    for binary in server_binaries() {
        let (server, conf) = server_with_permissions(&binary);

        // A subscription the account may not make: build() fails, typed.
        let t = transport(&server).await;
        let err = App::builder()
            .service("perm")
            .transport(t.clone())
            .handlers(HandlerSelection::names(["on_denied"]))
            .build()
            .await
            .expect_err("a refused subscription must fail build()");
        let transport_error = match &err {
            eventwire::Error::Transport(e) => e,
            other => panic!(
                "{}: expected a transport error, got {other:?}",
                binary.version
            ),
        };
        assert_eq!(
            transport_error.kind(),
            TransportErrorKind::PermissionDenied,
            "{}: {err:?}",
            binary.version
        );
        assert!(
            err.to_string().contains("perm.denied.created"),
            "the error names the subject: {err}"
        );
        assert!(err.source().is_none() || !format!("{err:?}").contains("pw"));

        // The allowed handler builds and runs; a refused publish is counted.
        let t = transport(&server).await;
        let app = App::builder()
            .service("perm")
            .transport(t.clone())
            .handlers(HandlerSelection::names(["on_allowed"]))
            .build()
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", binary.version));
        let p = app.publisher();
        p.publish(&Allowed { n: 1 }).await.unwrap();
        p.publish(&Denied { n: 1 }).await.unwrap();
        eventually(
            Duration::from_secs(5),
            "the refused publish counted",
            || t.stats().permission_violations == 1,
        )
        .await;
        eventually(Duration::from_secs(5), "the allowed event handled", || {
            app.metrics().handlers["on_allowed"].succeeded == 1
        })
        .await;
        eprintln!("{}: {:?}", binary.version, t.stats());
        app.shutdown().await.unwrap();

        // JetStream: the refused publish fails, typed, without the timeout.
        let js = App::builder()
            .service("perm")
            .transport_url(&format!("jetstream://limited:pw@127.0.0.1:{}", server.port))
            .unwrap()
            .publisher_only()
            .build()
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", binary.version));
        js.publisher().publish(&Allowed { n: 2 }).await.unwrap();
        let started = std::time::Instant::now();
        let err = js
            .publisher()
            .publish(&Denied { n: 2 })
            .await
            .expect_err("a refused JetStream publish must fail");
        match &err {
            eventwire::PublishError::Transport { source, .. } => {
                assert_eq!(
                    source.kind(),
                    TransportErrorKind::PermissionDenied,
                    "{err:?}"
                )
            }
            other => panic!("{}: {other:?}", binary.version),
        }
        eprintln!(
            "{}: refused JetStream publish failed after {:?}: {err}",
            binary.version,
            started.elapsed()
        );
        js.shutdown().await.unwrap();
        let _ = std::fs::remove_file(conf);
    }
}

//! Core NATS configuration: what is specific to connecting to NATS. The
//! delivery guarantees of core NATS (groups, order, retries, dead letters,
//! payload limit, bad input, ...) are proven by the guarantee suite
//! (`conformance/`, run by `tests/conformance.rs`), on every installed nats-server.

mod support;

use eventwire::nats::{NatsConfig, NatsTransport};
use eventwire::prelude::*;
use eventwire::{Error, TransportErrorKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.nats.order-cancelled")]
struct OrderCancelled {
    order_id: String,
}

#[handler(group = "billing")]
async fn refund(_evt: OrderCancelled) {}

#[tokio::test]
async fn invalid_subject_prefixes_are_configuration_errors() {
    for bad in ["a.*", "a..b", "a b", ">", "$js"] {
        let url = format!("nats://127.0.0.1:4222?prefix={}", bad.replace(' ', "%20"));
        match App::builder().transport_url(&url) {
            Err(Error::Url(e)) => {
                assert!(e.to_string().contains("subject prefix"), "{bad:?}: {e}")
            }
            other => panic!("{bad:?}: expected a URL error, got {other:?}"),
        }
    }
    // Checked before connecting: no server is needed to find out.
    let err = NatsTransport::connect(NatsConfig::new(["127.0.0.1:1"]).subject_prefix("a.>"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Config, "{err:?}");
}

#[tokio::test]
async fn a_missing_server_is_a_clear_error() {
    let port = support::free_port();
    let err = App::builder()
        .transport_url(&format!("nats://127.0.0.1:{port}"))
        .unwrap()
        .handlers(HandlerSelection::names(["refund"]))
        .build()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "cannot connect to NATS at nats://127.0.0.1:{port}"
        )),
        "{text}"
    );
}

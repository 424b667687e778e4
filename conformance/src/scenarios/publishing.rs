//! Publishing bad input: a conformance_typed error for the caller, nothing sent, and the
//! connection stays usable for the next event.

use crate::prelude::*;
use eventwire::{PublishError, PublishOptions};

use crate::bus::{Bus, PATIENCE};
use crate::features::Features;
use crate::support::{eventually, Arrival, Instance, Recorder};

/// An event of the scenarios here (topic `eventwire-conformance.parcel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.parcel")]
pub struct Parcel {
    n: u32,
    contents: String,
}

fn parcel(n: u32) -> Parcel {
    Parcel {
        n,
        contents: format!("parcel {n}"),
    }
}

#[handler(group = "conformance-parcels")]
async fn conformance_receive_parcel(
    evt: Parcel,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    if rec.arrived(&ctx, me, evt.n) == Arrival::Event && evt == parcel(evt.n) {
        rec.applied(&ctx, evt.n);
    }
}

/// A payload over the transport's limit fails with `PayloadTooLarge`
/// (topic, size, the transport's limit); nothing is delivered, nothing is
/// counted as a failed send, and the next event goes through.
pub async fn oversized_payload_is_a_typed_error(bus: &Bus, features: &Features) {
    let max = features.max_payload().expect("claimed");
    let rec = Recorder::default();
    let consumer = bus.app(&["conformance_receive_parcel"], &rec).await;
    let producer = bus.app(&[], &rec).await;
    let publisher = producer.publisher();
    let big = Parcel {
        n: 1,
        contents: "x".repeat(max + 1),
    };
    match publisher.publish(&big).await {
        Err(PublishError::PayloadTooLarge { topic, size, limit }) => {
            assert_eq!(topic, "eventwire-conformance.parcel");
            assert_eq!(limit, max);
            assert!(size > max, "{size} > {max}");
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    only_this_one_arrives(bus, &publisher, &rec, 2, "the oversized event never left").await;
    // Where the transport counts sends that failed after being accepted.
    assert!(
        matches!(bus.failed_publishes(), None | Some(0)),
        "{:?}",
        bus.failed_publishes()
    );
    consumer.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

/// A header value with CR/LF (it would split the header block) fails with
/// `PublishError::Header`; forwarded envelopes with invalid topics fail
/// with `PublishError::Topic`; then a valid event goes through.
pub async fn invalid_headers_and_topics_are_typed_errors(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    let consumer = bus.app(&["conformance_receive_parcel"], &rec).await;
    let producer = bus.app(&[], &rec).await;
    let publisher = producer.publisher();

    let err = publisher
        .publish_with(
            &parcel(1),
            PublishOptions::new().header("x-note", "a\r\nInjected: 1"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Header { .. }), "{err:?}");

    for bad in [
        "parcels.*",
        "parcels.>",
        "parcels..sent",
        "parcels sent",
        "$sys.x",
        "",
    ] {
        let mut env = publisher
            .envelope(&parcel(3), PublishOptions::new())
            .unwrap();
        env.topic = bad.to_owned().into();
        let err = publisher.publish_envelope(env).await.unwrap_err();
        assert!(matches!(err, PublishError::Topic(_)), "{bad:?}: {err:?}");
    }

    only_this_one_arrives(
        bus,
        &publisher,
        &rec,
        4,
        "only the valid event was delivered",
    )
    .await;
    if let Some(failed) = bus.failed_publishes() {
        assert_eq!(failed, 0, "refused before anything was sent");
    }
    consumer.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

/// After the refused publishes, parcel `n` goes through, and it is the only
/// event the consumer received (`why` says what that proves).
async fn only_this_one_arrives(
    bus: &Bus,
    publisher: &Publisher,
    rec: &Recorder,
    n: u32,
    why: &str,
) {
    const H: &str = "conformance_receive_parcel";
    publisher.publish(&parcel(n)).await.unwrap();
    eventually(PATIENCE, "the next event", || rec.has_applied(H, n)).await;
    bus.drain(publisher, &parcel(u32::MAX), rec, &[(H, 0)])
        .await;
    assert_eq!(rec.count(H), 1, "{why}");
}

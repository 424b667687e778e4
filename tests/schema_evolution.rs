//! Schema versions: older versions are upcast along `upcast_from` links,
//! newer ones are refused (dead-lettered, never mis-decoded), and the
//! consumer keeps going.

use std::sync::{Arc, Mutex};

use eventwire::prelude::*;
use eventwire::testing::TestApp;
use eventwire::{HandlerErrorKind, PublishOptions, Registry};

/// Version 1: the total as a float of euros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.schema.order-created", version = 1)]
struct OrderCreatedV1 {
    order_id: String,
    total: f64,
}

/// Version 2: integer cents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.schema.order-created", version = 2, upcast_from = OrderCreatedV1)]
struct OrderCreatedV2 {
    order_id: String,
    total_cents: i64,
}

impl From<OrderCreatedV1> for OrderCreatedV2 {
    fn from(v1: OrderCreatedV1) -> Self {
        OrderCreatedV2 {
            order_id: v1.order_id,
            total_cents: (v1.total * 100.0).round() as i64,
        }
    }
}

/// Version 3 (current): adds the currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.schema.order-created", version = 3, upcast_from = OrderCreatedV2)]
struct OrderCreated {
    order_id: String,
    total_cents: i64,
    currency: String,
}

impl From<OrderCreatedV2> for OrderCreated {
    fn from(v2: OrderCreatedV2) -> Self {
        OrderCreated {
            order_id: v2.order_id,
            total_cents: v2.total_cents,
            currency: "EUR".into(),
        }
    }
}

type Seen = Arc<Mutex<Vec<OrderCreated>>>;

#[handler(group = "billing")]
async fn bill(evt: OrderCreated, State(seen): State<Seen>) {
    seen.lock().unwrap().push(evt);
}

#[tokio::test]
async fn older_versions_are_upcast_and_newer_ones_refused() {
    let seen = Seen::default();
    let app = TestApp::builder()
        .handlers(HandlerSelection::names(["bill"]))
        .state(seen.clone())
        .build()
        .await
        .unwrap();
    // Old publishers still running.
    app.publish(&OrderCreatedV1 {
        order_id: "a".into(),
        total: 12.5,
    })
    .await
    .unwrap();
    app.publish(&OrderCreatedV2 {
        order_id: "b".into(),
        total_cents: 700,
    })
    .await
    .unwrap();
    app.publish(&OrderCreated {
        order_id: "c".into(),
        total_cents: 5,
        currency: "USD".into(),
    })
    .await
    .unwrap();
    // A publisher already on version 4, deployed before this consumer.
    let mut newer = app
        .publisher()
        .envelope(
            &OrderCreated {
                order_id: "d".into(),
                total_cents: 1,
                currency: "EUR".into(),
            },
            PublishOptions::new(),
        )
        .unwrap();
    newer.schema_version = 4;
    let newer_id = app.publisher().publish_envelope(newer).await.unwrap();
    app.publish(&OrderCreatedV1 {
        order_id: "e".into(),
        total: 1.0,
    })
    .await
    .unwrap();
    app.wait_idle().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter()
            .map(|o| (o.order_id.as_str(), o.total_cents, o.currency.as_str()))
            .collect::<Vec<_>>(),
        [
            ("a", 1250, "EUR"),
            ("b", 700, "EUR"),
            ("c", 5, "USD"),
            ("e", 100, "EUR")
        ],
        "every known version reached the handler as the current type, and the consumer kept going"
    );
    let letters = app.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].envelope.id, newer_id);
    assert_eq!(letters[0].error_kind, HandlerErrorKind::Decode);
    assert_eq!(letters[0].attempts, 1);
    assert!(
        letters[0]
            .error
            .contains("unknown schema version 4; this consumer reads version 3"),
        "{}",
        letters[0].error
    );
    app.shutdown().await.unwrap();
}

#[test]
fn linked_versions_may_share_a_topic() {
    let registry = Registry::global();
    let chain: Vec<_> = registry
        .events()
        .iter()
        .filter(|e| e.topic == "test.schema.order-created")
        .map(|e| (e.name, e.version, e.upcast_from.map(|f| f().name)))
        .collect();
    assert_eq!(chain.len(), 3);
    assert!(chain.contains(&("OrderCreated", 3, Some("OrderCreatedV2"))));
    assert!(chain.contains(&("OrderCreatedV2", 2, Some("OrderCreatedV1"))));
    assert!(chain.contains(&("OrderCreatedV1", 1, None)));
    let memory = eventwire::MemoryTransport::new();
    registry
        .validate(&memory, "svc", &HandlerSelection::all())
        .expect("a linked chain is valid");
}

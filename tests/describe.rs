//! Descriptions from the registry: an AsyncAPI 3.0 document that validates
//! against the official AsyncAPI 3.0.0 JSON Schema (vendored from
//! @asyncapi/specs), its YAML form, and a Mermaid topology.

use eventwire::describe::Description;
use eventwire::prelude::*;
use eventwire::Registry;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "shop.order-placed", version = 2)]
struct OrderPlaced {
    #[event(key)]
    order_id: String,
    quantity: u32,
    note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "shop.stock-reserved")]
struct StockReserved {
    order_id: String,
}

#[derive(Clone, PartialEq, prost::Message, Event)]
#[event(topic = "shop.parcel-scanned", format = "protobuf")]
struct ParcelScanned {
    #[prost(string, tag = "1")]
    parcel_id: String,
}

#[handler(group = "inventory")]
async fn reserve(_evt: OrderPlaced) {}

#[handler(group = "email")]
async fn confirm(_evt: StockReserved) {}

#[handler(topic = "shop.>", group = "audit")]
async fn audit_all(_evt: RawEvent) {}

#[handler(group = "tracking")]
async fn track(_evt: ParcelScanned) {}

fn description(registry: &Registry) -> Description<'_> {
    Description::new(registry, "shop")
        .server("jetstream://nats.internal:4222?stream=SHOP")
        .publishes("shop.order-placed")
}

#[test]
fn the_asyncapi_document_validates_against_the_asyncapi_3_schema() {
    let registry = Registry::global();
    let doc = description(&registry).asyncapi();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/asyncapi-3.0.0.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the AsyncAPI schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{errors:#?}\n{}",
        serde_json::to_string_pretty(&doc).unwrap()
    );
    // The validator does reject a broken document.
    let mut broken = doc.clone();
    broken["operations"]["inventory__reserve"]["action"] = serde_json::json!("consume");
    broken.as_object_mut().unwrap().remove("info");
    assert!(!validator.is_valid(&broken));

    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["servers"]["default"]["host"], "nats.internal:4222");
    assert_eq!(
        doc["channels"]["shop_order-placed"]["address"],
        "shop.order-placed"
    );
    assert_eq!(doc["operations"]["inventory__reserve"]["action"], "receive");
    assert_eq!(
        doc["operations"]["publish__shop_order-placed"]["action"],
        "send"
    );
    assert_eq!(doc["channels"]["shop__"]["address"], "shop.>");
    let msg = &doc["components"]["messages"]["OrderPlaced_v2"];
    assert_eq!(msg["contentType"], "application/json");
    assert_eq!(msg["payload"]["properties"]["quantity"]["type"], "integer");
    assert_eq!(
        msg["payload"]["required"],
        serde_json::json!(["order_id", "quantity"])
    );
    assert_eq!(
        msg["headers"]["properties"]["ce-schemaversion"]["const"],
        "2"
    );
    let proto = &doc["components"]["messages"]["ParcelScanned_v1"];
    assert_eq!(proto["contentType"], "application/protobuf");
    assert_eq!(
        proto["payload"]["properties"]["parcel_id"]["x-protobuf-tag"],
        1
    );
    // The wildcard handler receives every event of the topics it matches.
    let audit = doc["operations"]["audit__audit_all"]["messages"]
        .as_array()
        .unwrap();
    assert_eq!(audit.len(), 3);
}

#[test]
fn the_yaml_form_is_the_same_document() {
    let registry = Registry::global();
    let d = description(&registry);
    let from_yaml: serde_json::Value = serde_yaml::from_str(&d.asyncapi_yaml()).unwrap();
    assert_eq!(from_yaml, d.asyncapi());
}

#[test]
fn the_topology_is_mermaid() {
    let registry = Registry::global();
    let m = description(&registry).mermaid();
    assert!(m.starts_with("flowchart LR\n"), "{m}");
    assert!(
        m.contains("t_shop_order_placed[[\"shop.order-placed\"]]"),
        "{m}"
    );
    assert!(m.contains("g_inventory([\"inventory\"])"), "{m}");
    assert!(
        m.contains("t_shop_order_placed -->|reserve| g_inventory"),
        "{m}"
    );
    assert!(m.contains("t_shop__ -.->|audit_all| g_audit"), "{m}");
    assert!(
        m.contains("s_shop -->|publishes| t_shop_order_placed"),
        "{m}"
    );
}

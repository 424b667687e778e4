//! The decode entry of incoming payloads: `Envelope::decode::<E>()` (content
//! type check, then the code `#[derive(Event)]` generates: version dispatch,
//! upcast from an older version, JSON through serde or protobuf through
//! prost). Whatever decodes re-encodes and decodes to the same value; a
//! version newer than the type's is always refused.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use eventwire::envelope::header;
use eventwire::prelude::*;
use eventwire::{DecodeErrorKind, Envelope};
use libfuzzer_sys::fuzz_target;

/// Version 1 of the JSON event: a float total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "fuzz.order-placed", version = 1)]
struct OrderPlacedV1 {
    order_id: String,
    total: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Status {
    Open,
    Paid { at: String },
    Cancelled { reason: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: u32,
}

/// Version 2 (current): integer cents, lines, a tagged enum, a map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
#[event(topic = "fuzz.order-placed", version = 2, upcast_from = OrderPlacedV1)]
struct OrderPlaced {
    #[event(key)]
    order_id: String,
    total_cents: i64,
    #[serde(default)]
    lines: Vec<Line>,
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, u64>,
}

impl From<OrderPlacedV1> for OrderPlaced {
    fn from(v1: OrderPlacedV1) -> Self {
        OrderPlaced {
            order_id: v1.order_id,
            total_cents: (v1.total * 100.0).round() as i64,
            lines: Vec::new(),
            status: Status::Open,
            note: None,
            tags: BTreeMap::new(),
        }
    }
}

/// A protobuf event.
#[derive(Clone, PartialEq, prost::Message, Event)]
#[event(topic = "fuzz.parcel-scanned", version = 3, format = "protobuf")]
struct ParcelScanned {
    #[prost(string, tag = "1")]
    #[event(key)]
    parcel_id: String,
    #[prost(uint32, repeated, tag = "2")]
    depots: Vec<u32>,
    #[prost(sint64, tag = "3")]
    delta: i64,
    #[prost(bytes = "vec", tag = "4")]
    blob: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    origin: Option<Origin>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Origin {
    #[prost(string, tag = "1")]
    site: String,
    #[prost(bool, tag = "2")]
    manual: bool,
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "Application/JSON; charset=utf-8",
    "application/protobuf",
    "application/x-protobuf",
    "text/plain",
    "",
];

#[derive(Debug, Arbitrary)]
struct Input {
    content_type: u8,
    schema_version: u8,
    payload: Vec<u8>,
}

fn envelope(content_type: &str, version: u32, payload: &[u8]) -> Envelope {
    let version = version.to_string();
    Envelope::from_headers(
        [
            (header::SPEC_VERSION, "1.0"),
            (header::ID, "fuzz"),
            (header::SOURCE, "fuzz"),
            (header::TYPE, "fuzz.event"),
            (header::CONTENT_TYPE, content_type),
            (header::SCHEMA_VERSION, version.as_str()),
        ],
        bytes::Bytes::copy_from_slice(payload),
    )
    .expect("a well-formed envelope")
}

/// `exact`: the re-decoded event equals the first (not for floats: without
/// serde_json's `float_roundtrip` a float may come back one ULP off).
fn check<E: Event + PartialEq + std::fmt::Debug>(env: &Envelope, exact: bool) {
    match env.decode::<E>() {
        Ok(event) => {
            assert!(
                env.schema_version <= E::VERSION,
                "decoded a version from the future"
            );
            let encoded = event.encode().expect("a decoded event encodes");
            let again = E::decode(E::VERSION, &encoded).expect("an encoded event decodes");
            if exact {
                assert_eq!(event, again);
            }
        }
        Err(e) => {
            if env.schema_version > E::VERSION {
                assert!(
                    matches!(
                        e.kind,
                        DecodeErrorKind::UnknownVersion { .. }
                            | DecodeErrorKind::ContentType { .. }
                    ),
                    "version {} of {}: {e:?}",
                    env.schema_version,
                    E::NAME
                );
            }
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|input: Input| {
    let content_type = CONTENT_TYPES[input.content_type as usize % CONTENT_TYPES.len()];
    // 0 is refused by the envelope decoder; 1..=4 covers old, current and newer versions.
    let version = u32::from(input.schema_version % 4) + 1;
    let env = envelope(content_type, version, &input.payload);
    check::<OrderPlaced>(&env, true);
    check::<OrderPlacedV1>(&env, false);
    check::<ParcelScanned>(&env, true);
});

//! The schema lock catches a renamed field, a changed type, a removed field
//! without a version bump, and accepts a new version. The project's own lock
//! of these events is committed at tests/fixtures/eventwire.lock.

#![allow(dead_code)] // the events here are only registered, never built

use std::path::{Path, PathBuf};

use eventwire::prelude::*;
use eventwire::schema::{check_lock_with, LockError, SchemaLock};
use eventwire::Registry;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.lock.invoice-issued")]
struct InvoiceIssued {
    #[event(key)]
    invoice_id: String,
    total_cents: i64,
    #[serde(rename = "cur")]
    currency: String,
    #[serde(skip)]
    cached: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.lock.label-printed", version = 1)]
struct LabelPrintedV1 {
    label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.lock.label-printed", version = 2, upcast_from = LabelPrintedV1)]
struct LabelPrinted {
    label: String,
    printer: String,
}

impl From<LabelPrintedV1> for LabelPrinted {
    fn from(v1: LabelPrintedV1) -> Self {
        LabelPrinted {
            label: v1.label,
            printer: "unknown".into(),
        }
    }
}

#[derive(Clone, PartialEq, prost::Message, Event)]
#[event(topic = "test.lock.parcel-scanned", format = "protobuf")]
struct ParcelScanned {
    #[prost(string, tag = "1")]
    parcel_id: String,
    #[prost(uint32, repeated, tag = "2")]
    depots: Vec<u32>,
}

/// A nested type: only its JSON Schema (schemars) shows a change inside it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
struct Address {
    street: String,
    city: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Event)]
#[event(topic = "test.lock.customer-moved")]
struct CustomerMoved {
    customer_id: u64,
    address: Address,
}

fn temp_lock(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eventwire-lock-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eventwire.lock");
    let _ = std::fs::remove_file(&path);
    path
}

/// The lock as it would have been written by an earlier version of the code.
fn earlier(edit: impl FnOnce(&mut SchemaLock)) -> String {
    let mut lock = SchemaLock::from_registry(&Registry::global());
    edit(&mut lock);
    lock.to_text()
}

fn invoice(lock: &mut SchemaLock) -> &mut eventwire::schema::LockedEvent {
    lock.events
        .iter_mut()
        .find(|e| e.topic == "test.lock.invoice-issued")
        .unwrap()
}

fn changes_after(earlier_text: String, name: &str) -> Vec<String> {
    let path = temp_lock(name);
    std::fs::write(&path, earlier_text).unwrap();
    match check_lock_with(&path, &Registry::global(), false) {
        Err(LockError::Changed(changes)) => {
            assert_eq!(changes.len(), 1, "{changes:?}");
            assert_eq!(changes[0].topic, "test.lock.invoice-issued");
            assert_eq!(changes[0].version, 1);
            changes[0].changes.clone()
        }
        other => panic!("expected a schema change, got {other:?}"),
    }
}

#[test]
fn the_recorded_schema_follows_the_wire() {
    let lock = SchemaLock::from_registry(&Registry::global());
    let inv = lock
        .events
        .iter()
        .find(|e| e.topic == "test.lock.invoice-issued")
        .unwrap();
    let fields: Vec<(&str, &str)> = inv
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.ty.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("invoice_id", "String"),
            ("total_cents", "i64"),
            ("cur", "String")
        ]
    );
    let parcel = lock
        .events
        .iter()
        .find(|e| e.topic == "test.lock.parcel-scanned")
        .unwrap();
    assert_eq!(parcel.format, "protobuf");
    assert_eq!(parcel.fields[1].tag, Some(2));
    assert_eq!(
        parcel.fields[1].protobuf.as_deref(),
        Some("uint32 repeated")
    );
}

#[test]
fn a_renamed_field_is_caught() {
    let changes = changes_after(
        earlier(|l| invoice(l).fields[1].name = "amount".into()),
        "renamed",
    );
    assert_eq!(
        changes,
        ["field `amount` removed", "field `total_cents` added"]
    );
}

#[test]
fn a_changed_type_is_caught() {
    let changes = changes_after(earlier(|l| invoice(l).fields[1].ty = "i32".into()), "type");
    assert_eq!(changes, ["field `total_cents` type `i32` → `i64`"]);
}

#[test]
fn a_removed_field_is_caught() {
    let changes = changes_after(
        earlier(|l| {
            let f = invoice(l).fields[0].clone();
            invoice(l).fields.push(eventwire::schema::LockedField {
                name: "note".into(),
                ..f
            });
        }),
        "removed",
    );
    assert_eq!(changes, ["field `note` removed"]);
}

#[test]
fn a_field_that_stops_being_optional_is_caught() {
    // Locked when `total_cents` had `skip_serializing_if`: readers of this
    // version may meet payloads without it.
    let changes = changes_after(
        earlier(|l| invoice(l).fields[1].optional = true),
        "optional",
    );
    assert_eq!(changes, ["field `total_cents` is now always written"]);
}

#[test]
fn a_changed_protobuf_tag_is_caught() {
    let path = temp_lock("tag");
    std::fs::write(
        &path,
        earlier(|l| {
            let p = l
                .events
                .iter_mut()
                .find(|e| e.topic == "test.lock.parcel-scanned")
                .unwrap();
            p.fields[1].tag = Some(3);
        }),
    )
    .unwrap();
    let err = check_lock_with(&path, &Registry::global(), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.lock.parcel-scanned v1"), "{err}");
    assert!(err.contains("field `depots` protobuf"), "{err}");
    assert!(err.contains("EVENTWIRE_UPDATE_LOCK=1"), "{err}");
}

#[test]
fn a_new_version_passes_and_joins_the_lock() {
    let path = temp_lock("new-version");
    // The lock from before version 2 existed.
    std::fs::write(
        &path,
        earlier(|l| {
            l.events
                .retain(|e| !(e.topic == "test.lock.label-printed" && e.version == 2))
        }),
    )
    .unwrap();
    check_lock_with(&path, &Registry::global(), false).unwrap();
    let after = SchemaLock::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(after
        .events
        .iter()
        .any(|e| e.topic == "test.lock.label-printed" && e.version == 2));
}

#[test]
fn update_rewrites_the_lock() {
    let path = temp_lock("update");
    std::fs::write(&path, earlier(|l| invoice(l).fields[1].ty = "i32".into())).unwrap();
    check_lock_with(&path, &Registry::global(), true).unwrap();
    check_lock_with(&path, &Registry::global(), false).unwrap();
}

#[test]
fn the_committed_lock_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eventwire.lock");
    check_lock_with(&path, &Registry::global(), false).unwrap();
}

#[test]
fn a_change_inside_a_nested_type_is_caught_through_json_schema() {
    let path = temp_lock("nested");
    std::fs::write(
        &path,
        earlier(|l| {
            let e = l
                .events
                .iter_mut()
                .find(|e| e.topic == "test.lock.customer-moved")
                .unwrap();
            let schema = e.json_schema.as_mut().expect("schemars schema recorded");
            let props = schema["$defs"]["Address"]["properties"]
                .as_object_mut()
                .unwrap();
            let city = props.remove("city").unwrap();
            props.insert("town".into(), city);
        }),
    )
    .unwrap();
    match check_lock_with(&path, &Registry::global(), false) {
        Err(LockError::Changed(changes)) => {
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].topic, "test.lock.customer-moved");
            assert_eq!(
                changes[0].changes,
                ["nested type `Address` changed (JSON Schema)"]
            );
        }
        other => panic!("expected a schema change, got {other:?}"),
    }
}

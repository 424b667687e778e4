//! The schema lock records exactly the keys serde writes. For each serde
//! attribute users write on an event, a sample instance is serialized with
//! `serde_json::to_value` and its keys are compared with what the lock file
//! records for that event: every key written is recorded, every key recorded
//! as always present is written, fields that may be left out are recorded as
//! `optional`, and a tag is recorded with the value serde writes.

#![allow(dead_code)] // some fields are only serialized, never read

use std::collections::BTreeSet;

use eventwire::prelude::*;
use eventwire::schema::SchemaLock;
use eventwire::Registry;
use serde_json::Value;

/// One field as the lock file records it.
#[derive(Debug)]
struct Locked {
    name: String,
    ty: String,
    optional: bool,
    flatten: bool,
    constant: Option<String>,
}

/// The fields the lock file records for `E`, read from the file's text so
/// the test sees what users commit.
fn locked<E: Event>() -> Vec<Locked> {
    let text = SchemaLock::from_registry(&Registry::global()).to_text();
    let lock: Value = serde_json::from_str(&text).unwrap();
    let event = lock["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["topic"] == E::TOPIC && e["version"] == E::VERSION)
        .unwrap_or_else(|| panic!("`{}` is not in the lock", E::NAME));
    event["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Locked {
            name: f["name"].as_str().unwrap().to_owned(),
            ty: f["type"].as_str().unwrap().to_owned(),
            optional: f["optional"].as_bool().unwrap_or(false),
            flatten: f["flatten"].as_bool().unwrap_or(false),
            constant: f["const"].as_str().map(str::to_owned),
        })
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, serde wrote {value}"))
        .keys()
        .cloned()
        .collect()
}

/// Compares the keys serde writes for `sample` at one level (`object`) with
/// the lock entries of that level. `flattened` are the keys that flattened
/// fields contribute (unknown to the derive, so not recorded by name).
fn assert_level(object: &Value, fields: &[Locked], flattened: &BTreeSet<String>, what: &str) {
    let written = keys(object);
    let recorded: BTreeSet<String> = fields
        .iter()
        .filter(|f| !f.flatten)
        .map(|f| f.name.clone())
        .collect();
    let always: BTreeSet<String> = fields
        .iter()
        .filter(|f| !f.flatten && !f.optional)
        .map(|f| f.name.clone())
        .collect();
    let unrecorded: Vec<&String> = written
        .iter()
        .filter(|k| !recorded.contains(*k) && !flattened.contains(*k))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "{what}: serde writes {unrecorded:?}, which the lock does not record (lock: {fields:?}, written: {object})"
    );
    let missing: Vec<&String> = always.difference(&written).collect();
    assert!(
        missing.is_empty(),
        "{what}: the lock records {missing:?} as always written, serde did not write them (lock: {fields:?}, written: {object})"
    );
    for f in fields {
        if let Some(c) = &f.constant {
            assert_eq!(
                object[&f.name],
                Value::String(c.clone()),
                "{what}: tag `{}`",
                f.name
            );
        }
    }
}

/// A struct event: the top-level keys serde writes match the lock.
fn assert_struct<E: Event + Serialize>(sample: &E, flattened: &[&Value]) {
    let fields = locked::<E>();
    let flattened_keys = flattened.iter().flat_map(|v| keys(v)).collect();
    let value = serde_json::to_value(sample).unwrap();
    assert_level(&value, &fields, &flattened_keys, E::NAME);
    assert_eq!(
        fields.iter().filter(|f| f.flatten).count(),
        flattened.len(),
        "{}: every flattened field is recorded as flattened: {fields:?}",
        E::NAME
    );
}

/// An enum event: the lock records each variant as `Variant.key` entries
/// (the variant's serialized name first), with `tag` / `content` /
/// `untagged` entries for the representation; the JSON serde writes for
/// `sample`, of variant `variant`, matches them.
fn assert_variant<E: Event + Serialize>(sample: &E, variant: &str) {
    let all = locked::<E>();
    let prefix = format!("{variant}.");
    let own = |ty: &str| {
        all.iter()
            .find(|f| f.ty == ty && (f.name == variant || f.name.starts_with(&prefix)))
            .map(|f| f.name.strip_prefix(&prefix).unwrap_or(&f.name).to_owned())
    };
    let mut inner: Vec<Locked> = all
        .iter()
        .filter(|f| f.name.starts_with(&prefix))
        .filter(|f| !matches!(f.ty.as_str(), "tag" | "content"))
        .map(|f| Locked {
            name: f.name[prefix.len()..].to_owned(),
            ty: f.ty.clone(),
            optional: f.optional,
            flatten: f.flatten,
            constant: f.constant.clone(),
        })
        .collect();
    let what = format!("{}::{variant}", E::NAME);
    let value = serde_json::to_value(sample).unwrap();
    let none = BTreeSet::new();
    let tag = all
        .iter()
        .find(|f| f.ty == "tag" && f.name.starts_with(&prefix));
    if let Some(tag) = tag {
        let tag_key = &tag.name[prefix.len()..];
        assert_eq!(
            value[tag_key],
            Value::String(tag.constant.clone().expect("a tag records its value")),
            "{what}: tag `{tag_key}`"
        );
        match own("content") {
            // Adjacently tagged: `{tag: .., content: {..}}`.
            Some(content) => {
                assert_eq!(
                    keys(&value),
                    BTreeSet::from([tag_key.to_owned(), content.clone()]),
                    "{what}: {value}"
                );
                assert_level(&value[&content], &inner, &none, &what);
            }
            // Internally tagged: `{tag: .., fields..}`.
            None => {
                inner.push(Locked {
                    name: tag_key.to_owned(),
                    ty: "tag".into(),
                    optional: false,
                    flatten: false,
                    constant: tag.constant.clone(),
                });
                assert_level(&value, &inner, &none, &what);
            }
        }
    } else if own("untagged").is_some() {
        assert_level(&value, &inner, &none, &what);
    } else if own("variant").is_some() {
        // Externally tagged unit variant: its name.
        assert_eq!(value, Value::String(variant.into()), "{what}");
    } else {
        // Externally tagged: `{variant: {fields..}}`.
        assert_eq!(
            keys(&value),
            BTreeSet::from([variant.to_owned()]),
            "{what}: {value}"
        );
        assert_level(&value[variant], &inner, &none, &what);
    }
}

fn field<'a, E: Event>(fields: &'a [Locked], name: &str) -> &'a Locked {
    fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{}: no field `{name}` in {fields:?}", E::NAME))
}

// ---------------------------------------------------------------- rename

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.renamed")]
struct Renamed {
    #[serde(rename = "orderId")]
    order_id: String,
    r#type: String,
}

#[test]
fn rename() {
    assert_struct(
        &Renamed {
            order_id: "o-1".into(),
            r#type: "t".into(),
        },
        &[],
    );
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.renamed-per-direction")]
struct RenamedPerDirection {
    #[serde(rename(serialize = "sent_as", deserialize = "read_as"))]
    value: u32,
    #[serde(rename(deserialize = "read_only"))]
    other: u32,
}

#[test]
fn rename_serialize_and_deserialize() {
    assert_struct(&RenamedPerDirection { value: 1, other: 2 }, &[]);
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.aliased")]
struct Aliased {
    // An alias is read, never written: not a wire name.
    #[serde(alias = "total")]
    total_cents: i64,
    #[serde(rename = "cur", alias = "currency_code")]
    currency: String,
}

#[test]
fn alias_is_not_a_wire_name() {
    assert_struct(
        &Aliased {
            total_cents: 1,
            currency: "EUR".into(),
        },
        &[],
    );
}

// ------------------------------------------------------------ rename_all

// `tt`, not `literal`: a `literal` fragment reaches the derives wrapped in
// an invisible group, which `#[event(topic = ..)]` does not accept.
macro_rules! rename_all_cases {
    ($($ty:ident $topic:tt $case:tt;)*) => {
        $(
            #[derive(Serialize, Deserialize, Event)]
            #[event(topic = $topic)]
            #[serde(rename_all = $case)]
            struct $ty {
                order_id: String,
                total_cents: i64,
                #[serde(rename = "kept_as_is")]
                renamed_field: bool,
                x: u8,
            }
        )*

        #[test]
        fn rename_all_every_case() {
            $(
                assert_struct(
                    &$ty { order_id: "o".into(), total_cents: 1, renamed_field: true, x: 0 },
                    &[],
                );
            )*
        }
    };
}

rename_all_cases! {
    RenameAllLower "test.wire.rename-all.lower" "lowercase";
    RenameAllUpper "test.wire.rename-all.upper" "UPPERCASE";
    RenameAllPascal "test.wire.rename-all.pascal" "PascalCase";
    RenameAllCamel "test.wire.rename-all.camel" "camelCase";
    RenameAllSnake "test.wire.rename-all.snake" "snake_case";
    RenameAllScreamingSnake "test.wire.rename-all.screaming-snake" "SCREAMING_SNAKE_CASE";
    RenameAllKebab "test.wire.rename-all.kebab" "kebab-case";
    RenameAllScreamingKebab "test.wire.rename-all.screaming-kebab" "SCREAMING-KEBAB-CASE";
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.rename-all-serialize")]
#[serde(rename_all(serialize = "camelCase", deserialize = "kebab-case"))]
struct RenameAllPerDirection {
    order_id: String,
}

#[test]
fn rename_all_serialize_only() {
    assert_struct(
        &RenameAllPerDirection {
            order_id: "o".into(),
        },
        &[],
    );
}

// --------------------------------------------------------------- flatten

#[derive(Serialize, Deserialize)]
struct Audit {
    created_by: String,
    created_at: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.flattened")]
#[serde(rename_all = "camelCase")]
struct Flattened {
    order_id: String,
    #[serde(flatten)]
    audit: Audit,
}

#[test]
fn flatten() {
    let sample = Flattened {
        order_id: "o".into(),
        audit: Audit {
            created_by: "me".into(),
            created_at: 1,
        },
    };
    assert_struct(&sample, &[&serde_json::to_value(&sample.audit).unwrap()]);
    // The flattened type is recorded, so changing it is caught.
    let fields = locked::<Flattened>();
    let audit = fields.iter().find(|f| f.flatten).unwrap();
    assert_eq!(audit.ty, "Audit");
}

// ------------------------------------------------------------------ skip

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.skipped")]
struct Skipped {
    order_id: String,
    #[serde(skip)]
    cache: u8,
    #[serde(skip_serializing)]
    secret: String,
    // Written, never read.
    #[serde(skip_deserializing)]
    computed: u32,
}

#[test]
fn skip_and_skip_serializing() {
    assert_struct(
        &Skipped {
            order_id: "o".into(),
            cache: 1,
            secret: "s".into(),
            computed: 2,
        },
        &[],
    );
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.maybe-absent")]
struct MaybeAbsent {
    order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    // Written even when `None`: `null`.
    coupon: Option<String>,
}

#[test]
fn skip_serializing_if_is_recorded_as_optional() {
    let absent = MaybeAbsent {
        order_id: "o".into(),
        note: None,
        tags: Vec::new(),
        coupon: None,
    };
    let present = MaybeAbsent {
        note: Some("n".into()),
        tags: vec!["t".into()],
        ..absent
    };
    assert_struct(&present, &[]);
    let absent = MaybeAbsent {
        note: None,
        tags: Vec::new(),
        ..present
    };
    assert_struct(&absent, &[]);
    let fields = locked::<MaybeAbsent>();
    assert!(field::<MaybeAbsent>(&fields, "note").optional);
    assert!(field::<MaybeAbsent>(&fields, "tags").optional);
    assert!(!field::<MaybeAbsent>(&fields, "coupon").optional);
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.defaulted")]
struct Defaulted {
    order_id: String,
    // `default` is for reading: serde always writes the field.
    #[serde(default)]
    quantity: u32,
}

#[test]
fn default_is_always_written() {
    assert_struct(
        &Defaulted {
            order_id: "o".into(),
            quantity: 0,
        },
        &[],
    );
    let fields = locked::<Defaulted>();
    assert!(!field::<Defaulted>(&fields, "quantity").optional);
}

// ------------------------------------------------------------------- tag

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.tagged-struct")]
#[serde(tag = "kind", rename = "order_placed")]
struct TaggedStruct {
    order_id: String,
}

#[test]
fn tag_on_a_struct_writes_its_name() {
    assert_struct(
        &TaggedStruct {
            order_id: "o".into(),
        },
        &[],
    );
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.transparent")]
#[serde(transparent)]
struct Transparent {
    inner: Audit,
}

#[test]
fn transparent_is_recorded_as_its_one_field() {
    let sample = Transparent {
        inner: Audit {
            created_by: "me".into(),
            created_at: 1,
        },
    };
    // Serde writes the inner value itself: no key `inner`.
    let value = serde_json::to_value(&sample).unwrap();
    assert_eq!(value, serde_json::to_value(&sample.inner).unwrap());
    let fields = locked::<Transparent>();
    assert!(
        fields.iter().all(|f| f.name != "inner"),
        "`inner` is not on the wire: {fields:?}"
    );
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0].ty, "Audit");
}

// ----------------------------------------------------------------- enums

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.external")]
#[serde(rename_all = "snake_case", rename_all_fields = "camelCase")]
enum External {
    AccountOpened {
        account_id: u64,
    },
    #[serde(rename = "closed", rename_all = "UPPERCASE")]
    AccountClosed {
        account_id: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Frozen,
}

#[test]
fn enum_externally_tagged() {
    assert_variant(&External::AccountOpened { account_id: 1 }, "account_opened");
    assert_variant(
        &External::AccountClosed {
            account_id: 1,
            reason: None,
        },
        "closed",
    );
    assert_variant(&External::Frozen, "frozen");
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.internal")]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Internal {
    Opened { account_id: u64 },
    Moved(Audit),
    Frozen,
}

#[test]
fn enum_internally_tagged() {
    assert_variant(&Internal::Opened { account_id: 1 }, "opened");
    assert_variant(&Internal::Frozen, "frozen");
    let moved = Internal::Moved(Audit {
        created_by: "me".into(),
        created_at: 1,
    });
    // The newtype's own fields sit beside the tag: recorded as flattened.
    let fields = locked::<Internal>();
    assert!(field::<Internal>(&fields, "moved.0").flatten, "{fields:?}");
    let value = serde_json::to_value(&moved).unwrap();
    assert_eq!(
        keys(&value),
        BTreeSet::from(["type".into(), "created_by".into(), "created_at".into()])
    );
    assert_eq!(value["type"], "moved");
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.adjacent")]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Opened {
        #[serde(rename = "id")]
        account_id: u64,
    },
    Frozen,
}

#[test]
fn enum_adjacently_tagged() {
    assert_variant(&Adjacent::Opened { account_id: 1 }, "Opened");
    let fields = locked::<Adjacent>();
    let frozen = serde_json::to_value(Adjacent::Frozen).unwrap();
    let tag = field::<Adjacent>(&fields, "Frozen.t");
    assert_eq!(frozen, serde_json::json!({ "t": "Frozen" }));
    assert_eq!(tag.constant.as_deref(), Some("Frozen"));
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "test.wire.untagged")]
#[serde(untagged)]
enum Untagged {
    Opened {
        account_id: u64,
    },
    Moved {
        account_id: u64,
        #[serde(rename = "to")]
        destination: String,
    },
}

#[test]
fn enum_untagged() {
    assert_variant(&Untagged::Opened { account_id: 1 }, "Opened");
    assert_variant(
        &Untagged::Moved {
            account_id: 1,
            destination: "x".into(),
        },
        "Moved",
    );
}

//! The schema lock: a committed file that records the schema of every
//! (topic, version), so that a change to an event's fields without a version
//! bump fails the user's own test suite.
//!
//! ```no_run
//! // In a test of your program:
//! #[test]
//! fn event_schemas_are_locked() {
//!     eventwire::schema::check_lock("eventwire.lock").unwrap();
//! }
//! ```
//!
//! The lock records what goes on the wire: the keys serde writes (after
//! `rename`, `rename_all`, `skip`, `flatten`, `tag`, ...), which of them may
//! be left out (`skip_serializing_if`), and for protobuf the field numbers.
//!
//! The first run writes the file. Afterwards the check fails when a locked
//! (topic, version) changed: a field renamed, removed, added, or its type,
//! protobuf tag, presence or tag value changed; the error lists each change. A new version, or a
//! new event, passes (and is added by the update). `EVENTWIRE_UPDATE_LOCK=1`
//! rewrites the file from the code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::event::EventDescriptor;
use crate::registry::Registry;

/// Environment variable that makes [`check_lock`] rewrite the lock.
pub const UPDATE_ENV: &str = "EVENTWIRE_UPDATE_LOCK";

/// One locked field (see [`FieldDescriptor`](crate::FieldDescriptor)).
///
/// The keys added after the first release (`optional`, `flatten`, `const`)
/// are written only when set, so locks written before them read unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedField {
    /// Wire name.
    pub name: String,
    /// Rust type as written (or `tag`, `content`, `untagged`, `variant`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Protobuf field number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u32>,
    /// Protobuf kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protobuf: Option<String>,
    /// May be left out (`skip_serializing_if`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// `flatten`: the keys of the type are written in place of the field.
    #[serde(default, skip_serializing_if = "is_false")]
    pub flatten: bool,
    /// The value written under a `tag` key.
    #[serde(rename = "const", default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One locked (topic, version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedEvent {
    /// Topic.
    pub topic: String,
    /// Schema version.
    pub version: u32,
    /// Rust type name (informational).
    pub name: String,
    /// Codec (`json`, `protobuf`).
    pub format: String,
    /// Hash of the fields, to spot a change at a glance.
    pub fingerprint: String,
    /// The fields.
    pub fields: Vec<LockedField>,
    /// The JSON Schema (events that derive `schemars::JsonSchema`): catches
    /// changes inside nested types too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<serde_json::Value>,
}

/// The contents of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaLock {
    /// Format of the file itself.
    pub lock_version: u32,
    /// Every (topic, version), sorted.
    pub events: Vec<LockedEvent>,
}

/// A locked (topic, version) whose schema changed without a version bump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// Topic.
    pub topic: String,
    /// Version.
    pub version: u32,
    /// Rust type name in the code now.
    pub name: String,
    /// What changed, one line each (`field \`total\` removed`).
    pub changes: Vec<String>,
}

/// Why [`check_lock`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Schemas changed without a version bump.
    #[error("{}", describe(.0))]
    Changed(Vec<SchemaChange>),
    /// The file cannot be read or written.
    #[error("schema lock {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a schema lock.
    #[error("schema lock {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: serde_json::Error,
    },
}

fn describe(changes: &[SchemaChange]) -> String {
    let mut s = format!(
        "{} event schema(s) changed without a version bump; bump `#[event(version = ...)]` (and add `upcast_from`), or, if no deployed service depends on the old schema, rewrite the lock with {UPDATE_ENV}=1:",
        changes.len()
    );
    for c in changes {
        s.push_str(&format!("\n  {} v{} (`{}`):", c.topic, c.version, c.name));
        for line in &c.changes {
            s.push_str(&format!("\n    - {line}"));
        }
    }
    s
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} v{}: {}",
            self.topic,
            self.version,
            self.changes.join("; ")
        )
    }
}

fn fingerprint(fields: &[LockedField], json_schema: Option<&serde_json::Value>) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let schema = json_schema.map(|s| s.to_string()).unwrap_or_default();
    for f in fields {
        // The later facts only when set: fingerprints of locks written
        // before them stay the same.
        let mut line = format!("{}:{}:{:?}:{:?}", f.name, f.ty, f.tag, f.protobuf);
        if f.optional {
            line.push_str(":optional");
        }
        if f.flatten {
            line.push_str(":flatten");
        }
        if let Some(c) = &f.constant {
            line.push_str(&format!(":const={c}"));
        }
        line.push(';');
        line.push_str(&schema);
        for b in line.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn locked(e: &EventDescriptor) -> LockedEvent {
    let json_schema = (e.json_schema)();
    let fields: Vec<LockedField> = e
        .fields
        .iter()
        .map(|f| LockedField {
            name: f.name.to_owned(),
            ty: f.ty.to_owned(),
            tag: f.tag,
            protobuf: f.protobuf.map(str::to_owned),
            optional: f.optional,
            flatten: f.flatten,
            constant: f.constant.map(str::to_owned),
        })
        .collect();
    LockedEvent {
        topic: e.topic.to_owned(),
        version: e.version,
        name: e.name.to_owned(),
        format: e.format.name().to_owned(),
        fingerprint: fingerprint(&fields, json_schema.as_ref()),
        fields,
        json_schema,
    }
}

impl SchemaLock {
    /// The lock of everything in `registry`.
    pub fn from_registry(registry: &Registry) -> Self {
        let mut events: Vec<LockedEvent> = registry.events().iter().map(|e| locked(e)).collect();
        events.sort_by(|a, b| (&a.topic, a.version).cmp(&(&b.topic, b.version)));
        events.dedup_by(|a, b| a.topic == b.topic && a.version == b.version && a.name == b.name);
        SchemaLock {
            lock_version: 1,
            events,
        }
    }

    /// Parses a lock file's text.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The file's text (pretty JSON, stable order).
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Compares the code (`current`) with this lock. Locked (topic, version)
    /// pairs whose fields differ are changes; new pairs are not.
    pub fn compare(&self, current: &SchemaLock) -> Vec<SchemaChange> {
        let old: BTreeMap<(&str, u32), &LockedEvent> = self
            .events
            .iter()
            .map(|e| ((e.topic.as_str(), e.version), e))
            .collect();
        let mut out = Vec::new();
        for now in &current.events {
            let Some(before) = old.get(&(now.topic.as_str(), now.version)) else {
                continue;
            };
            let schema_changed = before.json_schema.is_some()
                && now.json_schema.is_some()
                && before.json_schema != now.json_schema;
            if before.fields == now.fields && before.format == now.format && !schema_changed {
                continue;
            }
            let mut changes = Vec::new();
            if before.format != now.format {
                changes.push(format!("format `{}` → `{}`", before.format, now.format));
            }
            // A flattened field's name is not on the wire: it does not
            // meet a key of the same name.
            let by_key = |fs: &[LockedField]| -> BTreeMap<(bool, String), LockedField> {
                fs.iter()
                    .map(|f| ((f.flatten, f.name.clone()), f.clone()))
                    .collect()
            };
            let (b, n) = (by_key(&before.fields), by_key(&now.fields));
            for (key, f) in &b {
                match n.get(key) {
                    None => changes.push(format!("{} removed", label(f))),
                    Some(g) => changes.extend(field_changes(f, g)),
                }
            }
            for (_, g) in n.iter().filter(|(k, _)| !b.contains_key(*k)) {
                changes.push(format!("{} added", label(g)));
            }
            if schema_changed {
                changes.extend(schema_changes(
                    before.json_schema.as_ref(),
                    now.json_schema.as_ref(),
                ));
            }
            if changes.is_empty() {
                changes.push("fields reordered".into());
            }
            out.push(SchemaChange {
                topic: now.topic.clone(),
                version: now.version,
                name: now.name.clone(),
                changes,
            });
        }
        out
    }
}

fn label(f: &LockedField) -> String {
    if f.flatten {
        format!("flattened field `{}`", f.name)
    } else {
        format!("field `{}`", f.name)
    }
}

/// What changed in one field that kept its name.
fn field_changes(before: &LockedField, now: &LockedField) -> Vec<String> {
    let label = label(now);
    let mut out = Vec::new();
    if before.ty != now.ty {
        out.push(format!("{label} type `{}` → `{}`", before.ty, now.ty));
    }
    if before.tag != now.tag || before.protobuf != now.protobuf {
        out.push(format!(
            "{label} protobuf {:?} {:?} → {:?} {:?}",
            before.protobuf, before.tag, now.protobuf, now.tag
        ));
    }
    match (before.optional, now.optional) {
        (false, true) => out.push(format!(
            "{label} may now be left out (`skip_serializing_if`)"
        )),
        (true, false) => out.push(format!("{label} is now always written")),
        _ => {}
    }
    if before.constant != now.constant {
        out.push(format!(
            "{label} value `{}` → `{}`",
            before.constant.as_deref().unwrap_or_default(),
            now.constant.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// Checks the program's events against the lock at `path` (see the module
/// docs). Writes the file when it does not exist yet or when
/// `EVENTWIRE_UPDATE_LOCK=1`; otherwise adds new (topic, version) pairs and
/// fails on changed ones.
pub fn check_lock(path: impl AsRef<Path>) -> Result<(), LockError> {
    check_lock_with(
        path.as_ref(),
        &Registry::global(),
        std::env::var_os(UPDATE_ENV).is_some(),
    )
}

/// [`check_lock`] for a given registry; `update` rewrites the file.
pub fn check_lock_with(path: &Path, registry: &Registry, update: bool) -> Result<(), LockError> {
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    let current = SchemaLock::from_registry(registry);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::write(path, current.to_text()).map_err(io);
        }
        Err(e) => return Err(io(e)),
    };
    if update {
        return std::fs::write(path, current.to_text()).map_err(io);
    }
    let lock = SchemaLock::parse(&text).map_err(|source| LockError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    let changes = lock.compare(&current);
    if !changes.is_empty() {
        return Err(LockError::Changed(changes));
    }
    // New events and versions join the lock; locked ones stay as they were.
    let mut merged = lock.clone();
    for e in current.events {
        if !merged
            .events
            .iter()
            .any(|l| l.topic == e.topic && l.version == e.version)
        {
            merged.events.push(e);
        }
    }
    merged
        .events
        .sort_by(|a, b| (&a.topic, a.version).cmp(&(&b.topic, b.version)));
    if merged != lock {
        std::fs::write(path, merged.to_text()).map_err(io)?;
    }
    Ok(())
}

/// The definitions (nested types) whose JSON Schema differs.
fn schema_changes(
    before: Option<&serde_json::Value>,
    now: Option<&serde_json::Value>,
) -> Vec<String> {
    let defs = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.get("$defs"))
            .and_then(|d| d.as_object())
            .cloned()
            .unwrap_or_default()
    };
    let (b, n) = (defs(before), defs(now));
    let mut out: Vec<String> = b
        .iter()
        .filter(|(k, v)| n.get(*k) != Some(v))
        .map(|(k, _)| format!("nested type `{k}` changed (JSON Schema)"))
        .collect();
    out.extend(
        n.keys()
            .filter(|k| !b.contains_key(*k))
            .map(|k| format!("nested type `{k}` added (JSON Schema)")),
    );
    if out.is_empty() {
        out.push("JSON Schema changed".into());
    }
    out
}

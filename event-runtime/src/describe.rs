//! Descriptions generated from the registry, so architecture documents never
//! drift from the code: an AsyncAPI 3.0 document (JSON or YAML) and a
//! Mermaid topology.
//!
//! ```
//! use eventwire::describe::Description;
//! use eventwire::Registry;
//!
//! let registry = Registry::global();
//! let doc = Description::new(&registry, "orders")
//!     .server("nats://127.0.0.1:4222")
//!     .asyncapi();
//! assert_eq!(doc["asyncapi"], "3.0.0");
//! let diagram = Description::new(&registry, "orders").mermaid();
//! assert!(diagram.starts_with("flowchart LR"));
//! ```

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::event::{EventDescriptor, FieldDescriptor};
use crate::handler::HandlerDescriptor;
use crate::registry::{HandlerSelection, Registry};
use crate::topic::is_pattern;

/// What to describe: a registry, seen as one service.
#[derive(Debug, Clone)]
pub struct Description<'a> {
    registry: &'a Registry,
    service: String,
    selection: HandlerSelection,
    servers: Vec<String>,
    publishes: Vec<&'static str>,
}

impl<'a> Description<'a> {
    /// Describes `registry` as the service `service` (the default group).
    pub fn new(registry: &'a Registry, service: impl Into<String>) -> Self {
        Description {
            registry,
            service: service.into(),
            selection: HandlerSelection::All,
            servers: Vec::new(),
            publishes: Vec::new(),
        }
    }

    /// Only the handlers this service runs.
    pub fn handlers(mut self, selection: HandlerSelection) -> Self {
        self.selection = selection;
        self
    }

    /// A server, from a transport URL (`nats://host:4222`, `jetstream://…`).
    pub fn server(mut self, url: &str) -> Self {
        self.servers.push(url.to_owned());
        self
    }

    /// Declares that the service publishes events of this topic (a `send`
    /// operation in AsyncAPI).
    pub fn publishes(mut self, topic: &'static str) -> Self {
        self.publishes.push(topic);
        self
    }

    fn handlers_selected(&self) -> Vec<&'static HandlerDescriptor> {
        self.registry
            .select(&self.service, &self.selection)
            .collect()
    }

    /// The AsyncAPI 3.0.0 document as JSON.
    pub fn asyncapi(&self) -> Value {
        let mut channels = Map::new();
        let mut operations = Map::new();
        let mut messages = Map::new();
        let events = self.registry.events();
        let id = |s: &str| s.replace(['.', '>', '*'], "_");
        let channel_of = |topic: &str,
                          events_on: &[&EventDescriptor],
                          channels: &mut Map<String, Value>| {
            let cid = id(topic);
            if !channels.contains_key(&cid) {
                let mut refs = Map::new();
                for e in events_on {
                    let mid = format!("{}_v{}", e.name, e.version);
                    refs.insert(
                        mid.clone(),
                        json!({ "$ref": format!("#/components/messages/{mid}") }),
                    );
                }
                channels.insert(
                    cid.clone(),
                    json!({ "address": topic, "messages": refs, "description": format!("Events on `{topic}`") }),
                );
            }
            cid
        };
        for e in events {
            let mid = format!("{}_v{}", e.name, e.version);
            messages.insert(mid, message(e));
        }
        for h in self.handlers_selected() {
            let on: Vec<&EventDescriptor> = events
                .iter()
                .copied()
                .filter(|e| crate::topic::matches(h.topic, e.topic))
                .collect();
            let cid = channel_of(h.topic, &on, &mut channels);
            let msgs: Vec<Value> = on
                .iter()
                .map(|e| json!({ "$ref": format!("#/channels/{cid}/messages/{}_v{}", e.name, e.version) }))
                .collect();
            let group = Registry::group_of(h, &self.service);
            operations.insert(
                crate::naming::consumer_name(group, h.name),
                json!({
                    "action": "receive",
                    "channel": { "$ref": format!("#/channels/{cid}") },
                    "messages": msgs,
                    "summary": format!("handler `{}` (group `{group}`)", h.function),
                }),
            );
        }
        for topic in &self.publishes {
            let on: Vec<&EventDescriptor> = events
                .iter()
                .copied()
                .filter(|e| e.topic == *topic)
                .collect();
            let cid = channel_of(topic, &on, &mut channels);
            let msgs: Vec<Value> = on
                .iter()
                .map(|e| json!({ "$ref": format!("#/channels/{cid}/messages/{}_v{}", e.name, e.version) }))
                .collect();
            operations.insert(
                format!("publish__{cid}"),
                json!({ "action": "send", "channel": { "$ref": format!("#/channels/{cid}") }, "messages": msgs }),
            );
        }
        let mut servers = Map::new();
        for (i, url) in self.servers.iter().enumerate() {
            let (scheme, rest) = url.split_once("://").unwrap_or(("nats", url));
            let host = rest.split(['?', '/']).next().unwrap_or(rest);
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let protocol = if scheme == "memory" { "memory" } else { "nats" };
            servers.insert(
                if i == 0 { "default".into() } else { format!("server{i}") },
                json!({ "host": host, "protocol": protocol, "description": format!("eventwire {scheme} transport") }),
            );
        }
        let mut doc = json!({
            "asyncapi": "3.0.0",
            "info": {
                "title": self.service,
                "version": "1.0.0",
                "description": format!("Events and handlers of `{}`, generated by eventwire from its registry. Wire format: CloudEvents 1.0 binary mode over NATS headers (see docs/wire-format.md).", self.service),
            },
            "defaultContentType": "application/json",
            "channels": channels,
            "operations": operations,
            "components": { "messages": messages },
        });
        if !servers.is_empty() {
            doc["servers"] = Value::Object(servers);
        }
        doc
    }

    /// The AsyncAPI document as YAML.
    pub fn asyncapi_yaml(&self) -> String {
        let mut out = String::new();
        yaml(&self.asyncapi(), 0, &mut out);
        out
    }

    /// The topology as a Mermaid flowchart: topics, and the groups whose
    /// handlers receive them.
    pub fn mermaid(&self) -> String {
        let node = |s: &str| s.replace(['.', '>', '*', '-'], "_");
        let mut lines = vec!["flowchart LR".to_owned()];
        let mut topics: BTreeMap<&str, ()> = BTreeMap::new();
        for e in self.registry.events() {
            topics.insert(e.topic, ());
        }
        for h in self.handlers_selected() {
            topics.insert(h.topic, ());
        }
        for t in &self.publishes {
            topics.insert(t, ());
        }
        for t in topics.keys() {
            lines.push(format!("    t_{}[[\"{t}\"]]", node(t)));
        }
        let mut groups: BTreeMap<&str, ()> = BTreeMap::new();
        let handlers = self.handlers_selected();
        for h in &handlers {
            groups.insert(Registry::group_of(h, &self.service), ());
        }
        for g in groups.keys() {
            lines.push(format!("    g_{}([\"{g}\"])", node(g)));
        }
        for h in &handlers {
            let g = Registry::group_of(h, &self.service);
            let arrow = if is_pattern(h.topic) { "-.->" } else { "-->" };
            lines.push(format!(
                "    t_{} {arrow}|{}| g_{}",
                node(h.topic),
                h.name,
                node(g)
            ));
        }
        if !self.publishes.is_empty() {
            lines.push(format!(
                "    s_{}{{{{\"{}\"}}}}",
                node(&self.service),
                self.service
            ));
            for t in &self.publishes {
                lines.push(format!(
                    "    s_{} -->|publishes| t_{}",
                    node(&self.service),
                    node(t)
                ));
            }
        }
        lines.join("\n") + "\n"
    }
}

fn message(e: &EventDescriptor) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut flattened = Vec::new();
    for f in e.fields {
        if f.name.contains('.') {
            continue; // enum variant fields: described by the variant list below
        }
        if f.flatten {
            // Its keys are written in place of the field: not a property.
            flattened.push(f.ty);
            continue;
        }
        let schema = match f.constant {
            Some(value) => json!({ "type": "string", "const": value }),
            None => field_schema(f),
        };
        properties.insert(f.name.to_owned(), schema);
        // What serde may leave out is not required.
        if !f.ty.starts_with("Option<") && !f.optional {
            required.push(f.name);
        }
    }
    let payload = if e
        .fields
        .iter()
        .any(|f| f.name.contains('.') || f.ty == "variant")
    {
        let variants: Vec<&str> = e
            .fields
            .iter()
            .map(|f| f.name.split('.').next().unwrap_or(f.name))
            .collect();
        json!({ "description": format!("one of the variants {variants:?}") })
    } else {
        let mut schema =
            json!({ "type": "object", "properties": properties, "required": required });
        if !flattened.is_empty() {
            schema["description"] = json!(format!(
                "also holds the keys of {} (`#[serde(flatten)]`)",
                flattened
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        schema
    };
    json!({
        "name": e.name,
        "title": format!("{} (schema version {})", e.name, e.version),
        "contentType": e.format.content_type(),
        "headers": {
            "type": "object",
            "required": ["ce-specversion", "ce-id", "ce-source", "ce-type"],
            "properties": {
                "ce-specversion": { "type": "string", "const": "1.0" },
                "ce-id": { "type": "string" },
                "ce-source": { "type": "string" },
                "ce-type": { "type": "string", "const": e.topic },
                "ce-time": { "type": "string", "format": "date-time" },
                "ce-schemaversion": { "type": "string", "const": e.version.to_string() },
                "ce-partitionkey": { "type": "string" },
                "ce-correlationid": { "type": "string" },
                "ce-causationid": { "type": "string" },
                "traceparent": { "type": "string" },
            }
        },
        "payload": payload,
    })
}

fn field_schema(f: &FieldDescriptor) -> Value {
    let ty = f.ty.trim_start_matches("Option<").trim_end_matches('>');
    let mut schema = match ty {
        "String" | "&str" | "str" | "char" | "Uuid" | "uuid::Uuid" => json!({ "type": "string" }),
        "bool" => json!({ "type": "boolean" }),
        "f32" | "f64" => json!({ "type": "number" }),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => json!({ "type": "integer" }),
        t if t.starts_with("Vec<") => json!({ "type": "array" }),
        _ => json!({ "description": format!("Rust type `{}`", f.ty) }),
    };
    if let Some(tag) = f.tag {
        schema["x-protobuf-tag"] = json!(tag);
    }
    if let Some(kind) = f.protobuf {
        schema["x-protobuf-type"] = json!(kind);
    }
    schema
}

/// A small YAML emitter (block style, strings always quoted).
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str(" {}\n");
                return;
            }
            if indent > 0 || !out.is_empty() {
                out.push('\n');
            }
            for (k, val) in map {
                out.push_str(&format!(
                    "{pad}{}:",
                    serde_json::to_string(k).unwrap_or_default()
                ));
                yaml(val, indent + 1, out);
            }
        }
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str(" []\n");
                return;
            }
            out.push('\n');
            for item in items {
                out.push_str(&format!("{pad}-"));
                match item {
                    Value::Object(_) | Value::Array(_) => yaml(item, indent + 1, out),
                    scalar => out.push_str(&format!(" {scalar}\n")),
                }
            }
        }
        scalar => out.push_str(&format!(" {scalar}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;

    const fn field(name: &'static str, ty: &'static str) -> FieldDescriptor {
        FieldDescriptor {
            name,
            ty,
            tag: None,
            protobuf: None,
            optional: false,
            flatten: false,
            constant: None,
        }
    }

    static FIELDS: [FieldDescriptor; 5] = [
        field("orderId", "String"),
        FieldDescriptor {
            optional: true,
            ..field("note", "String")
        },
        field("discount", "Option<u32>"),
        FieldDescriptor {
            flatten: true,
            ..field("meta", "Meta")
        },
        FieldDescriptor {
            constant: Some("OrderPlaced"),
            ..field("kind", "tag")
        },
    ];

    static EVENT: EventDescriptor = EventDescriptor {
        name: "OrderPlaced",
        type_path: "shop::OrderPlaced",
        topic: "orders.placed",
        version: 1,
        format: Format::Json,
        key_field: None,
        upcast_from: None,
        fields: &FIELDS,
        json_schema: || None,
    };

    #[test]
    fn payloads_follow_what_serde_writes() {
        let payload = &message(&EVENT)["payload"];
        assert_eq!(payload["required"], json!(["orderId", "kind"]));
        assert_eq!(
            payload["properties"]["kind"],
            json!({ "type": "string", "const": "OrderPlaced" })
        );
        assert!(payload["properties"].get("meta").is_none(), "{payload}");
        assert!(
            payload["description"].as_str().unwrap().contains("`Meta`"),
            "{payload}"
        );
        assert_eq!(payload["properties"]["note"], json!({ "type": "string" }));
    }
}

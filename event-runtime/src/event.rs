//! The [`Event`] trait, implemented by `#[derive(Event)]`, and the descriptors it registers.

use std::borrow::Cow;

use bytes::Bytes;

use crate::codec::{DecodeError, DecodeErrorKind, EncodeError, Format};

/// A typed event: a value with a topic, a schema version and a codec.
///
/// Implemented by `#[derive(Event)]`; implementing it by hand is possible but
/// the derive also registers the event in the link-time registry, checks the
/// topic at compile time and keeps `encode`/`decode` consistent with `FORMAT`.
///
/// ```
/// use eventwire::prelude::*;
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// #[event(topic = "orders.created", version = 2)]
/// struct OrderCreated {
///     #[event(key)]
///     order_id: String,
///     total_cents: i64,
/// }
///
/// const TOPIC: &str = OrderCreated::TOPIC;
/// assert_eq!(TOPIC, "orders.created");
/// assert_eq!(OrderCreated::VERSION, 2);
/// let evt = OrderCreated { order_id: "o-1".into(), total_cents: 100 };
/// assert_eq!(evt.key().as_deref(), Some("o-1"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an eventwire event",
    label = "`{Self}` does not implement `Event`",
    note = "add `#[derive(Event)]` to `{Self}` (with `#[event(topic = \"...\")]` to choose its topic), or take `RawEvent` to receive undecoded events"
)]
pub trait Event: Sized + Send + Sync + 'static {
    /// The topic every event of this type is published on (`orders.created`).
    const TOPIC: &'static str;
    /// The schema version written into every envelope; at least 1.
    const VERSION: u32;
    /// The Rust type name (`OrderCreated`), used in errors and descriptions.
    const NAME: &'static str;
    /// How the payload is encoded.
    const FORMAT: Format;
    /// Whether events of this type carry a key (the derive sets it for an
    /// `#[event(key)]` field); `#[handler(ordered)]` is refused at compile
    /// time for events without one.
    const HAS_KEY: bool = false;

    /// The ordering / partition key, from the field marked `#[event(key)]`.
    fn key(&self) -> Option<Cow<'_, str>>;

    /// Encodes the payload with the event's codec.
    fn encode(&self) -> Result<Bytes, EncodeError>;

    /// Decodes a payload that was published with schema `version`.
    ///
    /// A version this type does not know is an error, never a best-effort decode.
    fn decode(version: u32, payload: &[u8]) -> Result<Self, DecodeError>;

    /// The registry entry of this event type.
    fn descriptor() -> &'static EventDescriptor;
}

/// Turns the value of an `#[event(key)]` field into the event key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event key",
    label = "the `#[event(key)]` field has type `{Self}`",
    note = "event keys are strings or integers (`String`, `&str`, `u64`, `Uuid`, ...); implement `EventKey` for other types"
)]
pub trait EventKey {
    /// The key as text; equal keys must produce equal text.
    fn event_key(&self) -> Cow<'_, str>;
}

impl EventKey for String {
    fn event_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl EventKey for str {
    fn event_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl<T: EventKey + ?Sized> EventKey for &T {
    fn event_key(&self) -> Cow<'_, str> {
        (**self).event_key()
    }
}

impl<T: EventKey + ?Sized> EventKey for Box<T> {
    fn event_key(&self) -> Cow<'_, str> {
        (**self).event_key()
    }
}

impl EventKey for Cow<'_, str> {
    fn event_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl EventKey for uuid::Uuid {
    fn event_key(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}

macro_rules! integer_keys {
    ($($t:ty)*) => {$(
        impl EventKey for $t {
            fn event_key(&self) -> Cow<'_, str> {
                Cow::Owned(self.to_string())
            }
        }
    )*};
}
integer_keys!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize char);

/// What the registry knows about one event type.
#[derive(Debug)]
pub struct EventDescriptor {
    /// Rust type name (`OrderCreated`).
    pub name: &'static str,
    /// Full path of the type (`my_app::orders::OrderCreated`).
    pub type_path: &'static str,
    /// The topic.
    pub topic: &'static str,
    /// The schema version.
    pub version: u32,
    /// The codec.
    pub format: Format,
    /// The name of the `#[event(key)]` field, if any.
    pub key_field: Option<&'static str>,
    /// The event type of the previous schema version (`#[event(upcast_from = ...)]`).
    pub upcast_from: Option<fn() -> &'static EventDescriptor>,
    /// The fields as they travel (serde names; protobuf tags), for the schema lock.
    pub fields: &'static [FieldDescriptor],
    /// The JSON Schema of the type, when it derives `schemars::JsonSchema`.
    pub json_schema: fn() -> Option<serde_json::Value>,
}

/// Finds a type's JSON Schema when it has one: autoref specialization picks
/// [`ViaJsonSchema`] for types that implement `schemars::JsonSchema` and
/// [`NoJsonSchema`] for the others (used by `#[derive(Event)]`).
#[doc(hidden)]
pub mod schema_probe {
    use std::marker::PhantomData;

    /// The probe.
    pub struct Probe<T>(PhantomData<T>);

    impl<T> Probe<T> {
        /// A probe for `T`.
        pub const fn new() -> Self {
            Probe(PhantomData)
        }
    }

    impl<T> Default for Probe<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Chosen when `T: JsonSchema`.
    pub trait ViaJsonSchema {
        /// The schema.
        fn json_schema(&self) -> Option<serde_json::Value>;
    }

    #[cfg(feature = "schemars")]
    impl<T: schemars::JsonSchema> ViaJsonSchema for &Probe<T> {
        fn json_schema(&self) -> Option<serde_json::Value> {
            serde_json::to_value(schemars::schema_for!(T)).ok()
        }
    }

    /// Chosen otherwise.
    pub trait NoJsonSchema {
        /// No schema.
        fn json_schema(&self) -> Option<serde_json::Value>;
    }

    impl<T> NoJsonSchema for Probe<T> {
        fn json_schema(&self) -> Option<serde_json::Value> {
            None
        }
    }
}

/// One entry of an event's schema, as recorded by `#[derive(Event)]`: what
/// goes on the wire, read from the `#[serde]` attributes by serde's own
/// attribute parser (JSON), or from the `#[prost]` attributes (protobuf).
///
/// For a struct, one entry per key serde writes. A payload that is not an
/// object (a newtype, a tuple, `#[serde(transparent)]`, `#[serde(into)]`) is
/// described by position: `0`, `1`, ... For an enum event, every entry is
/// `Variant.key` (the variant's serialized name first), and the enum's
/// representation adds entries of their own type: `Variant` of type
/// `variant` (an externally tagged unit variant, written as its name),
/// `Variant.tag` of type `tag` (internally or adjacently tagged),
/// `Variant.content` of type `content` (adjacently tagged), `Variant` of
/// type `untagged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDescriptor {
    /// The key on the wire, as serde writes it (after `rename` and
    /// `rename_all`); a position or `Variant.key` as described above; the
    /// Rust name of a `flatten` field, whose own name is not on the wire.
    pub name: &'static str,
    /// The Rust type as written, or `tag`, `content`, `untagged`, `variant`
    /// for what serde's representation of the type adds.
    pub ty: &'static str,
    /// The protobuf field number.
    pub tag: Option<u32>,
    /// The protobuf kind (`string`, `uint32 repeated`, ...).
    pub protobuf: Option<&'static str>,
    /// The key may be left out: `#[serde(skip_serializing_if = "...")]`.
    pub optional: bool,
    /// `#[serde(flatten)]`: the keys of `ty` are written in place of this
    /// field. The derive cannot see them; the JSON Schema lists them when the
    /// event derives `schemars::JsonSchema`.
    pub flatten: bool,
    /// The value serde writes by itself under this key: the serialized name
    /// of the type or variant, for a `tag` entry.
    pub constant: Option<&'static str>,
}

/// How an older schema version becomes the current event type: implemented
/// for every `From<Old>`; `#[event(upcast_from = Old)]` requires it.
#[diagnostic::on_unimplemented(
    message = "broken upcast link: `{Self}` cannot be made from `{Old}`",
    label = "`upcast_from` names `{Old}`, but there is no conversion into `{Self}`",
    note = "implement `From<{Old}> for {Self}`: it turns an event of the previous schema version into the current one"
)]
pub trait UpcastFrom<Old>: Sized {
    /// Converts the older event.
    fn upcast(old: Old) -> Self;
}

impl<Old, New: From<Old>> UpcastFrom<Old> for New {
    fn upcast(old: Old) -> Self {
        New::from(old)
    }
}

impl DecodeError {
    /// A version the consumer's event type `E` does not know.
    pub fn unknown_version<E: Event>(found: u32) -> Self {
        DecodeError {
            event: E::NAME,
            version: found,
            format: E::FORMAT,
            kind: DecodeErrorKind::UnknownVersion {
                found,
                expected: E::VERSION,
            },
        }
    }
}

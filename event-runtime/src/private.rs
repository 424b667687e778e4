//! Items used by the code `#[derive(Event)]` and `#[handler]` generate,
//! reached as `::eventwire::__private`. Not public API: it changes without
//! notice.

pub use bytes::Bytes;
pub use linkme;
pub use std::borrow::Cow;

pub use crate::codec::json;
#[cfg(feature = "protobuf")]
pub use crate::codec::protobuf;
pub use crate::codec::{DecodeError, EncodeError, Format};
pub use crate::delivery::{Backoff, StartPosition};
pub use crate::event::schema_probe;
pub use crate::event::{Event, EventDescriptor, EventKey, FieldDescriptor, UpcastFrom};
pub use crate::handler::erased::{raw_handler, typed_handler, ErasedHandler};
pub use crate::handler::options::{Durability, TimeoutSetting};
pub use crate::handler::{
    Context, FromContext, HandlerDescriptor, HandlerError, HandlerOptions, IntoHandlerResult,
    MissingState, RawEvent, StateMap,
};
pub use crate::registry::{EVENTS, HANDLERS};
pub use serde_json::Value as JsonValue;
pub use std::sync::Arc;
pub use std::time::Duration;

/// Checks at compile time that a handler's written topic equals its
/// event type's topic.
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Length of the message built by [`concat_bytes`].
pub const fn concat_len(parts: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// Concatenates strings at compile time (for messages of const assertions).
pub const fn concat_bytes<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        let bytes = parts[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            out[at] = bytes[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// The bytes of [`concat_bytes`] as text.
pub const fn bytes_str(bytes: &[u8]) -> &str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => "<invalid utf-8>",
    }
}

/// Makes `#[handler]` reject an event parameter that is not an `Event`
/// with the trait's own message.
pub const fn assert_event<E: Event>() {}

/// Makes `#[handler]` reject a return type that is not `()` or
/// `Result<(), E: Into<HandlerError>>`.
pub fn assert_return<R: IntoHandlerResult>() {}

/// Digits of a `u32` at compile time, for messages of const assertions.
pub struct Digits {
    buf: [u8; 10],
    len: usize,
}

impl Digits {
    /// The digits of `n`.
    pub const fn of(mut n: u32) -> Digits {
        let mut tmp = [0u8; 10];
        let mut len = 0;
        loop {
            tmp[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut buf = [0u8; 10];
        let mut i = 0;
        while i < len {
            buf[i] = tmp[len - 1 - i];
            i += 1;
        }
        Digits { buf, len }
    }

    /// The digits as text.
    pub const fn as_str(&self) -> &str {
        bytes_str(self.buf.split_at(self.len).0)
    }
}

/// What a handler's first parameter can be: an [`Event`], or a [`RawEvent`]
/// (also behind a type alias). `#[handler]` reaches the event type only
/// through this trait, so a type that is neither is reported once.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an eventwire event",
    label = "`{Self}` does not implement `Event`",
    note = "add `#[derive(Event)]` to `{Self}` (with `#[event(topic = \"...\")]` to choose its topic), or take `RawEvent` to receive undecoded events"
)]
pub trait HandlerEvent: Sized + Send + 'static {
    /// The event type's topic; `None` for `RawEvent`, whose handler names one.
    const TOPIC: Option<&'static str>;
    /// The event type's Rust name; `None` for `RawEvent`.
    const NAME: Option<&'static str>;
    /// Whether events carry a key (`ordered` needs one); raw events may.
    const HAS_KEY: bool;

    /// The runtime form of a handler function taking this parameter.
    fn handler<F, Fut>(f: F) -> Arc<dyn ErasedHandler>
    where
        F: Fn(Self, &Context) -> Fut + Send + Sync + 'static,
        Fut: core::future::Future<Output = Result<(), HandlerError>> + Send + 'static;
}

impl<E: Event> HandlerEvent for E {
    const TOPIC: Option<&'static str> = Some(E::TOPIC);
    const NAME: Option<&'static str> = Some(E::NAME);
    const HAS_KEY: bool = E::HAS_KEY;

    fn handler<F, Fut>(f: F) -> Arc<dyn ErasedHandler>
    where
        F: Fn(Self, &Context) -> Fut + Send + Sync + 'static,
        Fut: core::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        typed_handler::<E, F, Fut>(f)
    }
}

impl HandlerEvent for RawEvent {
    const TOPIC: Option<&'static str> = None;
    const NAME: Option<&'static str> = None;
    const HAS_KEY: bool = true;

    fn handler<F, Fut>(f: F) -> Arc<dyn ErasedHandler>
    where
        F: Fn(Self, &Context) -> Fut + Send + Sync + 'static,
        Fut: core::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        raw_handler(f)
    }
}

/// The codec functions of one event type, chosen once by `#[derive(Event)]`
/// so that a type the codec cannot carry is reported once, on the user's
/// token, and not at every use.
pub struct Codec<E> {
    /// Encodes a payload.
    pub encode: fn(&E) -> Result<Bytes, EncodeError>,
    /// Decodes a payload of the event's own version.
    pub decode: fn(u32, &[u8]) -> Result<E, DecodeError>,
}

impl<E> Codec<E> {
    /// The codec of a type that failed its compile-time check; never runs,
    /// because the program does not compile.
    fn refused() -> Self {
        Codec {
            encode: |_| unreachable!("refused at compile time"),
            decode: |_, _| unreachable!("refused at compile time"),
        }
    }
}

/// Picks the JSON codec (autoref specialization: `(&&Probe::<E>::new()).codec()`).
/// Serialization is checked first and deserialization only when it holds,
/// so a type with neither derive gets one error.
pub mod json_probe {
    use core::marker::PhantomData;

    use super::{Codec, Event};
    use crate::codec::json;

    /// The probe.
    pub struct Probe<E>(PhantomData<fn() -> E>);

    impl<E> Probe<E> {
        /// A probe for `E`.
        pub const fn new() -> Self {
            Probe(PhantomData)
        }
    }

    impl<E> Default for Probe<E> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// `E` serializes: it must deserialize too.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be decoded from JSON",
        label = "add `#[derive(Deserialize)]` to `{Self}`",
        note = "events travel as JSON through serde unless `#[event(format = \"protobuf\")]`: derive `Serialize` and `Deserialize` (both in `eventwire::prelude`)"
    )]
    pub trait JsonDecode: serde::de::DeserializeOwned {}
    impl<E: serde::de::DeserializeOwned> JsonDecode for E {}

    /// `E` does not serialize.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be encoded as JSON",
        label = "add `#[derive(Serialize, Deserialize)]` to `{Self}`",
        note = "events travel as JSON through serde unless `#[event(format = \"protobuf\")]`: derive `Serialize` and `Deserialize` (both in `eventwire::prelude`)"
    )]
    pub trait JsonEncode: serde::Serialize {}
    impl<E: serde::Serialize> JsonEncode for E {}

    /// Chosen when `E: Serialize`.
    pub trait ViaSerde<E> {
        /// The JSON codec of `E`.
        fn codec(&self) -> Codec<E>
        where
            E: JsonDecode;
    }

    impl<E: Event + serde::Serialize> ViaSerde<E> for &Probe<E> {
        fn codec(&self) -> Codec<E>
        where
            E: JsonDecode,
        {
            Codec {
                encode: |event| json::encode(event, E::NAME),
                decode: |version, payload| json::decode(E::NAME, version, payload),
            }
        }
    }

    /// Chosen otherwise: an error that names the missing derives.
    pub trait NoSerde<E> {
        /// Never returns in a program that compiles.
        fn codec(&self) -> Codec<E>
        where
            E: JsonEncode;
    }

    impl<E> NoSerde<E> for Probe<E> {
        fn codec(&self) -> Codec<E>
        where
            E: JsonEncode,
        {
            Codec::refused()
        }
    }
}

/// Picks the protobuf codec, like [`json_probe`]: a type without
/// `prost::Message` gets one error, on the `format = "protobuf"` literal.
#[cfg(feature = "protobuf")]
pub mod protobuf_probe {
    use core::marker::PhantomData;

    use super::{Codec, Event};
    use crate::codec::protobuf;

    /// The probe.
    pub struct Probe<E>(PhantomData<fn() -> E>);

    impl<E> Probe<E> {
        /// A probe for `E`.
        pub const fn new() -> Self {
            Probe(PhantomData)
        }
    }

    impl<E> Default for Probe<E> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// A prost message must also be `Default` (the derive provides it).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` implements `prost::Message` but not `Default`",
        label = "protobuf decoding starts from `{Self}::default()`",
        note = "`#[derive(prost::Message)]` implements `Default`; a hand-written `prost::Message` needs `impl Default for {Self}` too"
    )]
    pub trait ProstDefault: Default {}
    impl<E: Default> ProstDefault for E {}

    /// Not a prost message.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a protobuf message",
        label = "`format = \"protobuf\"` needs `#[derive(prost::Message)]` on `{Self}`",
        note = "derive `prost::Message` (fields with `#[prost(..., tag = \"N\")]`), or use `format = \"json\"` with serde"
    )]
    pub trait ProstMessage: prost::Message {}
    impl<E: prost::Message> ProstMessage for E {}

    /// Chosen when `E: prost::Message`.
    pub trait ViaProst<E> {
        /// The protobuf codec of `E`.
        fn codec(&self) -> Codec<E>
        where
            E: ProstDefault;
    }

    impl<E: Event + prost::Message> ViaProst<E> for &Probe<E> {
        fn codec(&self) -> Codec<E>
        where
            E: ProstDefault,
        {
            Codec {
                encode: |event| protobuf::encode(event, E::NAME),
                decode: |version, payload| protobuf::decode(E::NAME, version, payload),
            }
        }
    }

    /// Chosen otherwise: an error that names the missing derive.
    pub trait NoProst<E> {
        /// Never returns in a program that compiles.
        fn codec(&self) -> Codec<E>
        where
            E: ProstMessage;
    }

    impl<E> NoProst<E> for Probe<E> {
        fn codec(&self) -> Codec<E>
        where
            E: ProstMessage,
        {
            Codec::refused()
        }
    }
}

/// Without the `protobuf` feature, `format = "protobuf"` gets one error that
/// says how to enable it.
#[cfg(not(feature = "protobuf"))]
pub mod protobuf_probe {
    use core::marker::PhantomData;

    use super::Codec;

    /// The probe.
    pub struct Probe<E>(PhantomData<fn() -> E>);

    impl<E> Probe<E> {
        /// A probe for `E`.
        pub const fn new() -> Self {
            Probe(PhantomData)
        }
    }

    impl<E> Default for Probe<E> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Implemented for no type: the feature is off.
    #[diagnostic::on_unimplemented(
        message = "`format = \"protobuf\"` needs eventwire's `protobuf` feature",
        label = "the `protobuf` feature of `eventwire` is off",
        note = "enable it in Cargo.toml: `eventwire = {{ version = \"0.1\", features = [\"protobuf\"] }}`, or use `format = \"json\"`"
    )]
    pub trait ProtobufFeature {}

    /// Never implemented without the feature.
    pub trait ViaProst<E> {
        /// Unused.
        fn codec(&self) -> Codec<E>;
    }

    /// Always chosen without the feature: the error.
    pub trait NoProst<E> {
        /// Never returns in a program that compiles.
        fn codec(&self) -> Codec<E>
        where
            E: ProtobufFeature;
    }

    impl<E> NoProst<E> for Probe<E> {
        fn codec(&self) -> Codec<E>
        where
            E: ProtobufFeature,
        {
            Codec::refused()
        }
    }
}

/// Converts the result of a handler that returns
/// `Result<(), Box<dyn Error + Send + Sync>>` (a boxed error cannot use the
/// `From` conversion: `Box<dyn Error>` is not itself an `Error`).
pub fn boxed_error_result(
    result: Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<(), HandlerError> {
    result.map_err(HandlerError::retryable)
}

/// The error type `E` of a handler returning `Result<_, E>`, converted on
/// its own so that a type that does not convert is reported on `E` with a
/// message naming the fix.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler error",
    label = "`{Self}` does not convert into `HandlerError`",
    note = "use `HandlerError` (`HandlerError::msg(...)` for a message), or an error type that implements `std::error::Error + Send + Sync + 'static`"
)]
pub trait IntoHandlerError {
    /// The conversion.
    fn into_handler_error(self) -> HandlerError;
}

impl<E: Into<HandlerError>> IntoHandlerError for E {
    fn into_handler_error(self) -> HandlerError {
        self.into()
    }
}

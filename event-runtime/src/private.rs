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
pub use crate::event::schema_probe;
pub use crate::event::{Event, EventDescriptor, EventKey, FieldDescriptor, UpcastFrom};
pub use crate::handler::{
    raw_handler, typed_handler, Backoff, Context, Durability, ErasedHandler, FromContext,
    HandlerDescriptor, HandlerError, HandlerOptions, IntoHandlerResult, MissingState, RawEvent,
    StartPosition, StateMap, TimeoutSetting,
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

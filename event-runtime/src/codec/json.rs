//! JSON through serde, the default codec.

use bytes::Bytes;

use super::{DecodeError, DecodeErrorKind, EncodeError, Format};

/// Encodes a value as JSON; `event` names its type in errors.
pub fn encode<T: serde::Serialize + ?Sized>(
    value: &T,
    event: &'static str,
) -> Result<Bytes, EncodeError> {
    serde_json::to_vec(value)
        // An exact-size buffer becomes `Bytes` without a second allocation.
        .map(|v| Bytes::from(v.into_boxed_slice()))
        .map_err(|e| EncodeError {
            event,
            format: Format::Json,
            source: Box::new(e),
        })
}

/// Decodes a JSON payload of schema `version`; `event` names the type in errors.
pub fn decode<T: serde::de::DeserializeOwned>(
    event: &'static str,
    version: u32,
    payload: &[u8],
) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| DecodeError {
        event,
        version,
        format: Format::Json,
        kind: DecodeErrorKind::Malformed(Box::new(e)),
    })
}

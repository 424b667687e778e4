//! JSON through serde, the default codec.

use bytes::Bytes;

use super::{DecodeError, DecodeErrorKind, EncodeError, Format};
use crate::Event;

/// Encodes an event as JSON.
pub fn encode<E: Event + serde::Serialize>(event: &E) -> Result<Bytes, EncodeError> {
    serde_json::to_vec(event)
        // An exact-size buffer becomes `Bytes` without a second allocation.
        .map(|v| Bytes::from(v.into_boxed_slice()))
        .map_err(|e| EncodeError {
            event: E::NAME,
            format: Format::Json,
            source: Box::new(e),
        })
}

/// Decodes a JSON payload of the event's own version.
pub fn decode<E: Event + serde::de::DeserializeOwned>(
    version: u32,
    payload: &[u8],
) -> Result<E, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| DecodeError {
        event: E::NAME,
        version,
        format: Format::Json,
        kind: DecodeErrorKind::Malformed(Box::new(e)),
    })
}

//! Protocol buffers through prost (`#[event(format = "protobuf")]` on a
//! struct that also derives `prost::Message`).

use bytes::Bytes;

use super::{DecodeError, DecodeErrorKind, EncodeError, Format};
use crate::Event;

/// A type the protobuf codec can carry: a prost message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a protobuf message",
    label = "`format = \"protobuf\"` needs `#[derive(prost::Message)]` on `{Self}`",
    note = "derive `prost::Message` (fields with `#[prost(..., tag = \"N\")]`), or use `format = \"json\"` with serde"
)]
pub trait ProtobufMessage: prost::Message + Default {}

impl<T: prost::Message + Default> ProtobufMessage for T {}

/// Encodes an event with prost.
pub fn encode<E: Event + ProtobufMessage>(event: &E) -> Result<Bytes, EncodeError> {
    Ok(Bytes::from(event.encode_to_vec()))
}

/// Decodes a protobuf payload of the event's own version.
pub fn decode<E: Event + ProtobufMessage>(version: u32, payload: &[u8]) -> Result<E, DecodeError> {
    <E as prost::Message>::decode(payload).map_err(|e| DecodeError {
        event: <E as Event>::NAME,
        version,
        format: Format::Protobuf,
        kind: DecodeErrorKind::Malformed(Box::new(e)),
    })
}

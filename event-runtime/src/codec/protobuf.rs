//! Protocol buffers through prost (`#[event(format = "protobuf")]` on a
//! struct that also derives `prost::Message`).

use bytes::Bytes;

use super::{DecodeError, DecodeErrorKind, EncodeError, Format};

/// A type the protobuf codec can carry: a prost message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a protobuf message",
    label = "`format = \"protobuf\"` needs `#[derive(prost::Message)]` on `{Self}`",
    note = "derive `prost::Message` (fields with `#[prost(..., tag = \"N\")]`), or use `format = \"json\"` with serde"
)]
pub trait ProtobufMessage: prost::Message + Default {}

impl<T: prost::Message + Default> ProtobufMessage for T {}

/// Encodes a message with prost (which cannot fail on a message in memory);
/// `event` names its type in errors.
pub fn encode<T: ProtobufMessage>(value: &T, event: &'static str) -> Result<Bytes, EncodeError> {
    let _ = event;
    Ok(Bytes::from(value.encode_to_vec()))
}

/// Decodes a protobuf payload of schema `version`; `event` names the type in errors.
pub fn decode<T: ProtobufMessage>(
    event: &'static str,
    version: u32,
    payload: &[u8],
) -> Result<T, DecodeError> {
    <T as prost::Message>::decode(payload).map_err(|e| DecodeError {
        event,
        version,
        format: Format::Protobuf,
        kind: DecodeErrorKind::Malformed(Box::new(e)),
    })
}

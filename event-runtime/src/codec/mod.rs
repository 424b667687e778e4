//! Payload codecs. The codec belongs to the event type (`#[event(format = ...)]`);
//! every transport, the in-memory bus included, carries encoded bytes.

pub mod json;
#[cfg(feature = "protobuf")]
pub mod protobuf;

use std::fmt;

/// The payload encoding of an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// JSON through serde (`content-type: application/json`).
    Json,
    /// Protocol buffers through prost (`content-type: application/protobuf`).
    Protobuf,
}

impl Format {
    /// The `content-type` written next to the payload.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/protobuf",
        }
    }

    /// The short name used in attributes and descriptions (`json`, `protobuf`).
    pub const fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Protobuf => "protobuf",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An event could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode `{event}` as {format}")]
pub struct EncodeError {
    /// Rust name of the event type.
    pub event: &'static str,
    /// The codec that failed.
    pub format: Format,
    /// What the codec reported.
    #[source]
    // The codec sits below `crate::error` (whose `PublishError` wraps
    // `EncodeError`), so it spells out the boxed error instead of using `BoxError`.
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// A payload could not be decoded into an event type.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode `{event}` (schema version {version}, {format})")]
pub struct DecodeError {
    /// Rust name of the event type that was asked for.
    pub event: &'static str,
    /// The schema version carried by the envelope.
    pub version: u32,
    /// The codec of the event type.
    pub format: Format,
    /// What failed.
    #[source]
    pub kind: DecodeErrorKind,
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The envelope carries a schema version the event type cannot read.
    #[error("unknown schema version {found}; this consumer reads version {expected}")]
    UnknownVersion {
        /// Version found in the envelope.
        found: u32,
        /// Newest version the consumer knows.
        expected: u32,
    },
    /// The envelope's `content-type` is not the event type's codec.
    #[error("content type `{found}` does not match `{expected}`")]
    ContentType {
        /// Content type of the envelope.
        found: String,
        /// Content type of the codec.
        expected: &'static str,
    },
    /// The codec rejected the bytes.
    #[error("malformed payload")]
    Malformed(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cause of a chain, each printed once (`HandlerError`, anyhow and
    /// `eventwire::Error`'s `Debug` walk `source()`).
    fn chain(e: &dyn std::error::Error) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut next = e.source();
        while let Some(e) = next {
            out.push(e.to_string());
            next = e.source();
        }
        out
    }

    #[test]
    fn a_decode_error_names_each_cause_once() {
        let cause = serde_json::from_slice::<u32>(b"").unwrap_err();
        let detail = cause.to_string();
        let e = DecodeError {
            event: "OrderCreated",
            version: 1,
            format: Format::Json,
            kind: DecodeErrorKind::Malformed(Box::new(cause)),
        };
        let chain = chain(&e);
        assert_eq!(
            chain,
            [
                "cannot decode `OrderCreated` (schema version 1, json)".to_owned(),
                "malformed payload".to_owned(),
                detail.clone(),
            ]
        );
        assert_eq!(chain.join(": ").matches(&detail).count(), 1);
    }
}

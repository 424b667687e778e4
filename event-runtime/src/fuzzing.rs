//! Entry points for the fuzz targets in `fuzz/`, compiled only with the
//! internal cargo feature `fuzzing`. Not public API: it changes without
//! notice.
//!
//! Only what the public API does not reach is here, as thin wrappers; the
//! targets call public parsers (`Envelope::from_headers`,
//! `NatsConfig::from_url`, `transport::url`, `topic`, `duration`, the
//! codecs) directly.

/// The NATS wire format (`transport/nats/wire.rs`): received messages into
/// envelopes, envelopes into headers, malformed messages into dead letters.
#[cfg(feature = "nats")]
pub mod nats {
    use async_nats::HeaderMap;
    use bytes::Bytes;

    use crate::envelope::{Envelope, EnvelopeError};
    use crate::error::PublishError;
    use crate::transport::nats::{self as wire, NatsConfig};

    /// `Nats-Msg-Id`, which the decoder drops.
    pub const MSG_ID: &str = wire::MSG_ID;

    /// The envelope of a message received on `subject`.
    pub fn envelope_of(
        config: &NatsConfig,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: Bytes,
    ) -> Result<Envelope, EnvelopeError> {
        wire::envelope_of(config, subject, headers, payload)
    }

    /// The headers an envelope is published with.
    pub fn headers(envelope: &Envelope, msg_id: bool) -> Result<HeaderMap, PublishError> {
        wire::headers(envelope, msg_id)
    }

    /// The server's default `max_payload` (1 MiB): dead letters are cut to it.
    pub const MAX_PAYLOAD: usize = 1 << 20;

    /// What a consumer publishes for a message that is not an envelope: the
    /// dead letter's subject, headers and payload, cut to [`MAX_PAYLOAD`].
    pub fn malformed_dead_letter(
        config: &NatsConfig,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: Bytes,
        error: &EnvelopeError,
    ) -> Result<(String, HeaderMap, Bytes), PublishError> {
        let topic = config.topic_of(subject);
        let letter = wire::malformed_letter(
            subject,
            headers,
            payload,
            error,
            Some(1),
            ("group", "handler"),
            topic,
        );
        wire::dead_letter_message(config, &letter, MAX_PAYLOAD)
    }
}

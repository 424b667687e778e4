//! Envelopes as NATS messages: subject, headers, payload (docs/wire-format.md).

use std::sync::Arc;

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;

use super::config::NatsConfig;
use crate::delivery::{DeadLetter, HandlerErrorKind};
use crate::envelope::{format_time, Envelope, EnvelopeError};
use crate::error::PublishError;
use crate::topic::validate_pattern;

/// `Nats-Msg-Id`: JetStream de-duplicates publishes by it.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";

/// Dead-letter headers added to the original ones.
pub(crate) mod dlq {
    pub(crate) const ERROR: &str = "eventwire-dlq-error";
    pub(crate) const ERROR_KIND: &str = "eventwire-dlq-error-kind";
    pub(crate) const HANDLER: &str = "eventwire-dlq-handler";
    pub(crate) const GROUP: &str = "eventwire-dlq-group";
    pub(crate) const ATTEMPTS: &str = "eventwire-dlq-attempts";
    pub(crate) const STREAM_SEQUENCE: &str = "eventwire-dlq-stream-sequence";
    pub(crate) const FAILED_AT: &str = "eventwire-dlq-failed-at";
}

fn header_error(name: &str, reason: &'static str) -> PublishError {
    PublishError::Header {
        name: name.to_owned(),
        reason,
    }
}

/// Adds one header with the fallible constructors: async-nats' `From<&str>`
/// panics on CR/LF, these return an error instead.
pub(crate) fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), PublishError> {
    let n: HeaderName = name
        .parse()
        .map_err(|_| header_error(name, "not a valid header name"))?;
    let v: HeaderValue = value
        .parse()
        .map_err(|_| header_error(name, "values must not contain CR or LF"))?;
    headers.append(n, v);
    Ok(())
}

/// The headers of an envelope; with `msg_id`, `Nats-Msg-Id` = event id.
pub(crate) fn headers(envelope: &Envelope, msg_id: bool) -> Result<HeaderMap, PublishError> {
    let mut map = HeaderMap::new();
    for (name, value) in envelope.to_headers() {
        insert(&mut map, name, &value)?;
    }
    if msg_id {
        insert(&mut map, MSG_ID, envelope.id.as_str())?;
    }
    Ok(map)
}

/// Bytes the server counts against `max_payload`: headers plus payload.
pub(crate) fn wire_size(headers: &HeaderMap, payload: &Bytes) -> usize {
    // "NATS/1.0\r\n" + "name: value\r\n"... + "\r\n"
    let mut size = 12;
    for (name, values) in headers.iter() {
        for v in values {
            size += <HeaderName as AsRef<str>>::as_ref(name).len() + 2 + v.as_str().len() + 2;
        }
    }
    size + payload.len()
}

/// The typed error for a message the client refused as larger than the
/// server's `max_payload` (async-nats checks before sending, so the
/// connection stays up; reading the limit clones the server info, so it is
/// only read on this path).
pub(crate) fn payload_too_large(
    client: &async_nats::Client,
    topic: &str,
    size: usize,
) -> PublishError {
    PublishError::PayloadTooLarge {
        topic: topic.to_owned(),
        size,
        limit: client.server_info().max_payload,
    }
}

/// The envelope of a received message.
pub(crate) fn envelope_of(
    config: &NatsConfig,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: Bytes,
) -> Result<Envelope, EnvelopeError> {
    let empty = HeaderMap::new();
    let headers = headers.unwrap_or(&empty);
    let pairs = headers.iter().flat_map(|(name, values)| {
        values
            .iter()
            .map(move |v| (<HeaderName as AsRef<str>>::as_ref(name), v.as_str()))
    });
    let mut envelope = Envelope::from_headers(
        pairs.filter(|(n, _)| !n.eq_ignore_ascii_case(MSG_ID)),
        payload,
    )?;
    // The subject is what the server routed on: it is the topic. A foreign
    // publisher's different `ce-type` is kept for the handler to see.
    let topic = config.topic_of(subject);
    if envelope.topic != topic {
        let ce_type = std::mem::replace(
            &mut envelope.topic,
            std::borrow::Cow::Owned(topic.to_owned()),
        );
        envelope
            .headers
            .push(("eventwire-ce-type".to_owned(), ce_type.into_owned()));
    }
    Ok(envelope)
}

/// A dead letter as a message: original headers and payload, plus the
/// `eventwire-dlq-*` headers.
pub(crate) fn dead_letter_message(
    config: &NatsConfig,
    letter: &DeadLetter,
) -> Result<(String, HeaderMap, Bytes), PublishError> {
    validate_pattern(&letter.topic)?;
    let subject = config.subject(&letter.topic);
    let mut map = headers(&letter.envelope, false)?;
    let error = letter.error.replace(['\r', '\n'], " ");
    insert(&mut map, dlq::ERROR, &error)?;
    insert(&mut map, dlq::ERROR_KIND, letter.error_kind.name())?;
    insert(&mut map, dlq::HANDLER, &letter.handler)?;
    insert(&mut map, dlq::GROUP, &letter.group)?;
    insert(&mut map, dlq::ATTEMPTS, &letter.attempts.to_string())?;
    if let Some(seq) = letter.stream_sequence {
        insert(&mut map, dlq::STREAM_SEQUENCE, &seq.to_string())?;
    }
    insert(&mut map, dlq::FAILED_AT, &format_time(letter.failed_at))?;
    // Unique per dead letter, so JetStream never drops one as a duplicate.
    insert(
        &mut map,
        MSG_ID,
        &format!(
            "dlq-{}-{}-{}",
            letter.envelope.id, letter.group, letter.handler
        ),
    )?;
    Ok((subject, map, letter.envelope.payload.clone()))
}

/// A message that is not a valid envelope, kept as received so it can be
/// dead-lettered with everything it carried.
pub(crate) fn malformed_letter(
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: Bytes,
    error: &EnvelopeError,
    stream_sequence: Option<u64>,
    consumer: (&str, &str),
    topic_of: &str,
) -> DeadLetter {
    let mut envelope = Envelope {
        id: crate::envelope::EventId::from(
            headers
                .and_then(|h| h.get(crate::envelope::header::ID).or_else(|| h.get(MSG_ID)))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_else(|| format!("malformed-{}", crate::envelope::EventId::new())),
        ),
        topic: std::borrow::Cow::Owned(topic_of.to_owned()),
        source: Arc::from("unknown"),
        time: std::time::SystemTime::now(),
        schema_version: 1,
        content_type: std::borrow::Cow::Borrowed("application/octet-stream"),
        key: None,
        correlation_id: None,
        causation_id: None,
        traceparent: None,
        tracestate: None,
        headers: Vec::new(),
        payload,
    };
    if let Some(h) = headers {
        for (name, values) in h.iter() {
            for v in values {
                envelope.headers.push((
                    format!("eventwire-original-{}", name.as_ref() as &str),
                    v.as_str().to_owned(),
                ));
            }
        }
    }
    envelope
        .headers
        .push(("eventwire-subject".to_owned(), subject.to_owned()));
    DeadLetter {
        envelope: Arc::new(envelope),
        error: format!("not an eventwire envelope: {error}"),
        error_kind: HandlerErrorKind::Decode,
        handler: consumer.1.to_owned(),
        group: consumer.0.to_owned(),
        attempts: 1,
        stream_sequence,
        failed_at: std::time::SystemTime::now(),
        topic: crate::naming::dead_letter_topic(topic_of),
    }
}

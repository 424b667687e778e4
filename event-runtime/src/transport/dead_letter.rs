//! What every transport writes on a dead letter besides the original
//! envelope: the `eventwire-dlq-*` headers (docs/wire-format.md).

/// Dead-letter headers added to the original ones.
pub(crate) mod header {
    pub(crate) const ERROR: &str = "eventwire-dlq-error";
    pub(crate) const ERROR_KIND: &str = "eventwire-dlq-error-kind";
    pub(crate) const HANDLER: &str = "eventwire-dlq-handler";
    pub(crate) const GROUP: &str = "eventwire-dlq-group";
    pub(crate) const ATTEMPTS: &str = "eventwire-dlq-attempts";
    pub(crate) const STREAM_SEQUENCE: &str = "eventwire-dlq-stream-sequence";
    pub(crate) const FAILED_AT: &str = "eventwire-dlq-failed-at";
    /// The dead-letter topic that was not valid; the letter went to the fallback.
    pub(crate) const INVALID_TOPIC: &str = "eventwire-dlq-invalid-topic";
    /// Size in bytes of the original payload, when the letter carries only
    /// its beginning (the whole did not fit the broker's limit).
    pub(crate) const PAYLOAD_TRUNCATED: &str = "eventwire-dlq-payload-truncated";
    /// How many of the original's own headers were left out to fit.
    pub(crate) const HEADERS_DROPPED: &str = "eventwire-dlq-headers-dropped";
}

/// Longest `eventwire-dlq-error` kept, in bytes; a longer error is cut.
pub(crate) const MAX_ERROR_LEN: usize = 1024;

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The `eventwire-dlq-*` headers of a letter, in wire order (without the
/// size notes, which depend on the transport's limit).
pub(crate) fn letter_headers(letter: &crate::delivery::DeadLetter) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            header::ERROR,
            cut(&letter.error.replace(['\r', '\n'], " "), MAX_ERROR_LEN),
        ),
        (header::ERROR_KIND, letter.error_kind.name().to_owned()),
        (header::HANDLER, letter.handler.clone()),
        (header::GROUP, letter.group.clone()),
        (header::ATTEMPTS, letter.attempts.to_string()),
    ];
    if let Some(seq) = letter.stream_sequence {
        out.push((header::STREAM_SEQUENCE, seq.to_string()));
    }
    out.push((
        header::FAILED_AT,
        crate::envelope::format_time(letter.failed_at),
    ));
    if let Some(invalid) = &letter.invalid_topic {
        out.push((header::INVALID_TOPIC, cut(invalid, MAX_ERROR_LEN)));
    }
    out
}

/// What a received message that is not an envelope carried, for its dead letter.
pub(crate) struct Malformed<'a> {
    /// Its event id, when it had one (`ce-id`); otherwise one is made up.
    pub(crate) id: Option<String>,
    /// The topic it arrived on (without the prefix).
    pub(crate) topic: &'a str,
    /// Its headers, kept as `eventwire-original-<name>`, and any note the
    /// transport adds (`eventwire-subject`).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) payload: bytes::Bytes,
    pub(crate) error: &'a crate::envelope::EnvelopeError,
    pub(crate) stream_sequence: Option<u64>,
    /// (group, handler) of the consumer that received it.
    pub(crate) consumer: (&'a str, &'a str),
}

/// The dead letter of a message that is not an envelope: kept as received
/// (payload, headers renamed), a decode failure after one attempt.
pub(crate) fn malformed_letter(m: Malformed<'_>) -> crate::delivery::DeadLetter {
    use crate::envelope::{Envelope, EventId};
    use std::borrow::Cow;
    use std::sync::Arc;
    let envelope = Envelope {
        id: EventId::from(m.id.unwrap_or_else(|| format!("malformed-{}", EventId::new()))),
        topic: Cow::Owned(m.topic.to_owned()),
        source: Arc::from("unknown"),
        time: std::time::SystemTime::now(),
        schema_version: 1,
        content_type: Cow::Borrowed("application/octet-stream"),
        key: None,
        correlation_id: None,
        causation_id: None,
        traceparent: None,
        tracestate: None,
        headers: m.headers,
        payload: m.payload,
    };
    let (topic, invalid_topic) =
        crate::naming::dead_letter_route(m.topic, None, m.consumer.0, m.consumer.1);
    crate::delivery::DeadLetter {
        envelope: Arc::new(envelope),
        error: format!("not an eventwire envelope: {}", m.error),
        error_kind: crate::delivery::HandlerErrorKind::Decode,
        handler: m.consumer.1.to_owned(),
        group: m.consumer.0.to_owned(),
        attempts: 1,
        stream_sequence: m.stream_sequence,
        failed_at: std::time::SystemTime::now(),
        topic,
        invalid_topic,
    }
}

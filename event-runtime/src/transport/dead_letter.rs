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

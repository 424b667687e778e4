//! Events into envelopes and back: building the envelope of a typed event
//! with its publish options, checking envelopes built elsewhere, and decoding
//! the payload as a typed event.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use super::{header, Envelope, EventId};
use crate::codec::{DecodeError, DecodeErrorKind, Format};
use crate::error::PublishError;
use crate::event::Event;
use crate::topic::validate_topic;

/// Options of one publish: extra headers, ids, trace context.
///
/// ```
/// use eventwire::PublishOptions;
/// let opts = PublishOptions::new()
///     .header("x-tenant", "acme")
///     .correlation_id("checkout-42")
///     .traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "options do nothing until passed to `publish_with`"]
pub struct PublishOptions {
    id: Option<EventId>,
    headers: Vec<(String, String)>,
    correlation_id: Option<EventId>,
    causation_id: Option<EventId>,
    traceparent: Option<Arc<str>>,
    tracestate: Option<Arc<str>>,
}

impl PublishOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this event id instead of a new UUIDv7 (for a publish retried by
    /// the caller, so consumers and JetStream de-duplicate it). An empty id
    /// is refused by the publish ([`PublishError::EmptyId`]).
    pub fn id(mut self, id: impl Into<EventId>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds a header carried unchanged to handlers.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the correlation id (by default the event's own id).
    pub fn correlation_id(mut self, id: impl AsRef<str>) -> Self {
        self.correlation_id = Some(EventId::from(id.as_ref()));
        self
    }

    /// Sets the causation id.
    pub fn causation_id(mut self, id: impl AsRef<str>) -> Self {
        self.causation_id = Some(EventId::from(id.as_ref()));
        self
    }

    /// Sets the W3C `traceparent`.
    pub fn traceparent(mut self, value: impl AsRef<str>) -> Self {
        self.traceparent = Some(Arc::from(value.as_ref()));
        self
    }

    /// Sets the W3C `tracestate`.
    pub fn tracestate(mut self, value: impl AsRef<str>) -> Self {
        self.tracestate = Some(Arc::from(value.as_ref()));
        self
    }

    /// Links to the event being handled: causation = its id, correlation =
    /// its correlation id, trace context passed on.
    pub(crate) fn caused_by(mut self, parent: &Envelope) -> Self {
        self.causation_id = Some(parent.id.clone());
        if self.correlation_id.is_none() {
            self.correlation_id = Some(
                parent
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| parent.id.clone()),
            );
        }
        if self.traceparent.is_none() {
            // The same trace, one step further: a new parent id, so the
            // event names the publish that made it, not its cause's.
            self.traceparent = parent
                .traceparent
                .as_deref()
                .map(|tp| child_traceparent(tp).map_or_else(|| Arc::from(tp), Arc::from));
            self.tracestate = parent.tracestate.clone();
        }
        self
    }
}

/// A W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`) for a child of
/// `parent`: the same version, trace id and flags, a new random parent id.
/// `None` when `parent` is not a version-00 traceparent (it is then passed
/// on as it is: eventwire does not rewrite what it cannot read).
///
/// ```
/// let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// let child = eventwire::envelope::child_traceparent(parent).unwrap();
/// assert_eq!(&child[..36], &parent[..36]);
/// assert_eq!(&child[52..], "-01");
/// assert_ne!(&child[36..52], &parent[36..52]);
/// assert_eq!(eventwire::envelope::child_traceparent("bogus"), None);
/// ```
pub fn child_traceparent(parent: &str) -> Option<String> {
    let b = parent.as_bytes();
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if b.len() != 55
        || &b[..3] != b"00-"
        || b[35] != b'-'
        || b[52] != b'-'
        || !hex(3..35)
        || !hex(36..52)
        || !hex(53..55)
        || b[3..35].iter().all(|&c| c == b'0')
    {
        return None;
    }
    let random = uuid::Uuid::new_v4();
    let mut span = u64::from_le_bytes(random.as_bytes()[..8].try_into().ok()?);
    if span == 0 {
        span = 1;
    }
    Some(format!("{}{span:016x}{}", &parent[..36], &parent[52..]))
}

impl Envelope {
    /// The envelope of `event`, published by the service `source`.
    ///
    /// The topic, version and content type come from the event type (checked
    /// when it was derived); only what the caller wrote (id, extra headers)
    /// is checked here.
    pub fn for_event<E: Event>(
        event: &E,
        source: Arc<str>,
        options: PublishOptions,
    ) -> Result<Envelope, PublishError> {
        // `#[derive(Event)]` checks its topic literal; this catches a
        // hand-written `impl Event` with a wildcard or server API subject, at
        // compile time and at no cost per event.
        const {
            assert!(
                crate::topic::is_valid_topic(E::TOPIC),
                "the `TOPIC` of this `Event` impl is not a valid topic: dot-separated tokens of `a-z`, `0-9`, `_` and `-`"
            )
        };
        let payload = event.encode()?;
        let id = match options.id {
            Some(id) if id.is_empty() => return Err(PublishError::EmptyId),
            Some(id) => id,
            None => EventId::new(),
        };
        for (name, value) in &options.headers {
            check_header(name, value)?;
        }
        Ok(Envelope {
            correlation_id: Some(options.correlation_id.unwrap_or_else(|| id.clone())),
            id,
            topic: Cow::Borrowed(E::TOPIC),
            source,
            time: SystemTime::now(),
            schema_version: E::VERSION,
            content_type: Cow::Borrowed(E::FORMAT.content_type()),
            key: event.key().map(|k| Arc::from(&*k)),
            causation_id: options.causation_id,
            traceparent: options.traceparent,
            tracestate: options.tracestate,
            headers: options.headers,
            payload,
        })
    }

    /// Checks an envelope built elsewhere (to forward or replay an event)
    /// before it is sent: a concrete topic, a non-empty id, extra headers
    /// that fit the wire format and do not impersonate the envelope's own.
    pub fn validate(&self) -> Result<(), PublishError> {
        validate_topic(&self.topic)?;
        if self.id.is_empty() {
            return Err(PublishError::EmptyId);
        }
        for (name, value) in &self.headers {
            check_header(name, value)?;
        }
        Ok(())
    }

    /// Decodes the payload as `E`: the content type must be `E`'s codec, the
    /// version one `E` can read.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        let expected = E::FORMAT.content_type();
        if !content_type_matches(&self.content_type, E::FORMAT) {
            return Err(DecodeError {
                event: E::NAME,
                version: self.schema_version,
                format: E::FORMAT,
                kind: DecodeErrorKind::ContentType {
                    found: self.content_type.to_string(),
                    expected,
                },
            });
        }
        E::decode(self.schema_version, &self.payload)
    }
}

fn content_type_matches(found: &str, format: Format) -> bool {
    // `application/json; charset=utf-8` is still JSON.
    let base = found.split(';').next().unwrap_or("").trim();
    base.eq_ignore_ascii_case(format.content_type())
        || (format == Format::Protobuf && base.eq_ignore_ascii_case("application/x-protobuf"))
}

/// Header names are tokens; values are single-line text (a CR or LF would
/// split the header block on the wire). The envelope's own attributes and
/// transport control headers cannot be set as extra headers.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), PublishError> {
    let err = |reason| PublishError::Header {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(err("empty name"));
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(err("names are printable ASCII without `:` or spaces"));
    }
    if value.contains(['\r', '\n']) {
        return Err(err("values must not contain CR or LF"));
    }
    let reserved = |prefix: &str| {
        name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if reserved("ce-")
        || reserved("ce_")
        || reserved("cloudEvents")
        || name.eq_ignore_ascii_case(header::CONTENT_TYPE)
        || name.eq_ignore_ascii_case(header::TRACEPARENT)
        || name.eq_ignore_ascii_case(header::TRACESTATE)
        || reserved("nats-")
    {
        return Err(err(
            "reserved for the envelope; use the publish options instead",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        for (name, value) in [
            ("", "v"),
            ("a b", "v"),
            ("a:b", "v"),
            ("x-ok", "line\r\nInjected: 1"),
            ("CE-ID", "forged"),
            ("ce_type", "forged"),
            ("Content-Type", "text/plain"),
            ("traceparent", "00-00"),
            ("Nats-Msg-Id", "dup"),
            ("Nats-Expected-Stream", "other"),
        ] {
            assert!(check_header(name, value).is_err(), "{name:?}: {value:?}");
        }
        check_header("x-tenant", "acme").unwrap();
    }

    #[test]
    fn content_types_match_case_insensitively_with_parameters() {
        assert!(content_type_matches(
            "Application/JSON; charset=utf-8",
            Format::Json
        ));
        assert!(content_type_matches(
            "application/x-protobuf",
            Format::Protobuf
        ));
        assert!(!content_type_matches("text/plain", Format::Json));
    }
}

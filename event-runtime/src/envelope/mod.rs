//! The envelope every event travels in, and its mapping to message headers.
//!
//! The mapping follows CloudEvents 1.0 binary content mode: every attribute is
//! a header with the `ce-` prefix, the payload is the encoded event alone. The
//! full table lives in `docs/wire-format.md`; the names are the constants of
//! [`header`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

mod build;
mod id;

pub use build::{child_traceparent, PublishOptions};
pub use id::EventId;

/// Header names of the wire format.
pub mod header {
    /// CloudEvents `id`: the event id (UUIDv7 when eventwire publishes).
    pub const ID: &str = "ce-id";
    /// CloudEvents `source`: the publishing service.
    pub const SOURCE: &str = "ce-source";
    /// CloudEvents `type`: the topic of the event (`orders.created`).
    pub const TYPE: &str = "ce-type";
    /// CloudEvents `specversion`: always `1.0`.
    pub const SPEC_VERSION: &str = "ce-specversion";
    /// CloudEvents `time`: when the event occurred, RFC 3339.
    pub const TIME: &str = "ce-time";
    /// Content type of the payload.
    pub const CONTENT_TYPE: &str = "content-type";
    /// Extension `schemaversion`: the event's schema version, a decimal integer >= 1.
    pub const SCHEMA_VERSION: &str = "ce-schemaversion";
    /// Extension `partitionkey` (CloudEvents partitioning): the ordering key.
    pub const PARTITION_KEY: &str = "ce-partitionkey";
    /// Extension `correlationid`: id shared by every event of one flow.
    pub const CORRELATION_ID: &str = "ce-correlationid";
    /// Extension `causationid`: id of the event whose handler published this one.
    pub const CAUSATION_ID: &str = "ce-causationid";
    /// W3C trace context, passed through unchanged.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state, passed through unchanged.
    pub const TRACESTATE: &str = "tracestate";
    /// The CloudEvents version written and accepted.
    pub const SPEC_VERSION_VALUE: &str = "1.0";
}

/// One event in transit: metadata plus the encoded payload.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `ce-id`.
    pub id: EventId,
    /// The topic (`ce-type`); the subject is the transport's prefix plus this.
    pub topic: Cow<'static, str>,
    /// `ce-source`: the service that published the event.
    pub source: Arc<str>,
    /// `ce-time`: when the event was published.
    pub time: SystemTime,
    /// `ce-schemaversion`.
    pub schema_version: u32,
    /// `content-type` of the payload.
    pub content_type: Cow<'static, str>,
    /// `ce-partitionkey`.
    pub key: Option<Arc<str>>,
    /// `ce-correlationid`.
    pub correlation_id: Option<EventId>,
    /// `ce-causationid`.
    pub causation_id: Option<EventId>,
    /// `traceparent`.
    pub traceparent: Option<Arc<str>>,
    /// `tracestate`.
    pub tracestate: Option<Arc<str>>,
    /// Other headers, carried unchanged.
    pub headers: Vec<(String, String)>,
    /// The encoded event.
    pub payload: Bytes,
}

/// A message whose headers do not form a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// A required header is absent or empty.
    #[error("missing required header `{0}`")]
    Missing(&'static str),
    /// `ce-specversion` is not `1.0`.
    #[error("unsupported `ce-specversion` `{0}`; expected `1.0`")]
    SpecVersion(String),
    /// `ce-schemaversion` is not an integer >= 1.
    #[error("invalid `ce-schemaversion` `{0}`; expected an integer >= 1")]
    SchemaVersion(String),
    /// `ce-time` is not RFC 3339.
    #[error("invalid `ce-time` `{0}`; expected an RFC 3339 timestamp")]
    Time(String),
    /// A header value is not UTF-8 text (transports whose headers are bytes: Kafka).
    #[error("header `{0}` is not UTF-8 text")]
    NotUtf8(String),
}

impl Envelope {
    /// The envelope's metadata as `(name, value)` header pairs, in wire order.
    ///
    /// Values are plain text; a transport with header-value rules (no CR/LF)
    /// validates them with its own fallible constructors.
    pub fn to_headers(&self) -> Vec<(&str, String)> {
        let mut out: Vec<(&str, String)> = Vec::with_capacity(10 + self.headers.len());
        out.push((header::SPEC_VERSION, header::SPEC_VERSION_VALUE.to_owned()));
        out.push((header::ID, self.id.as_str().to_owned()));
        out.push((header::SOURCE, self.source.to_string()));
        out.push((header::TYPE, self.topic.to_string()));
        out.push((header::TIME, format_time(self.time)));
        out.push((header::CONTENT_TYPE, self.content_type.to_string()));
        out.push((header::SCHEMA_VERSION, self.schema_version.to_string()));
        let optional = [
            (header::PARTITION_KEY, self.key.as_deref()),
            (header::CORRELATION_ID, self.correlation_id.as_deref()),
            (header::CAUSATION_ID, self.causation_id.as_deref()),
            (header::TRACEPARENT, self.traceparent.as_deref()),
            (header::TRACESTATE, self.tracestate.as_deref()),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                out.push((name, v.to_owned()));
            }
        }
        for (k, v) in &self.headers {
            out.push((k.as_str(), v.clone()));
        }
        out
    }

    /// Rebuilds an envelope from headers and payload.
    ///
    /// Header names are matched case-insensitively. Headers that are not part
    /// of the envelope are kept in [`Envelope::headers`]. A missing
    /// `ce-schemaversion` means version 1 (a publisher that never versioned).
    pub fn from_headers<'a, I>(headers: I, payload: Bytes) -> Result<Envelope, EnvelopeError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut id = None;
        let mut source = None;
        let mut topic = None;
        let mut spec = None;
        let mut time = None;
        let mut content_type = None;
        let mut version = None;
        let mut env_key = None;
        let mut correlation = None;
        let mut causation = None;
        let mut traceparent = None;
        let mut tracestate = None;
        let mut rest = Vec::new();
        for (name, value) in headers {
            // Case-insensitive, without allocating a lowercase copy per header.
            let is = |h: &str| name.eq_ignore_ascii_case(h);
            let slot = if is(header::ID) {
                &mut id
            } else if is(header::SOURCE) {
                &mut source
            } else if is(header::TYPE) {
                &mut topic
            } else if is(header::SPEC_VERSION) {
                &mut spec
            } else if is(header::TIME) {
                &mut time
            } else if is(header::CONTENT_TYPE) {
                &mut content_type
            } else if is(header::SCHEMA_VERSION) {
                &mut version
            } else if is(header::PARTITION_KEY) {
                &mut env_key
            } else if is(header::CORRELATION_ID) {
                &mut correlation
            } else if is(header::CAUSATION_ID) {
                &mut causation
            } else if is(header::TRACEPARENT) {
                &mut traceparent
            } else if is(header::TRACESTATE) {
                &mut tracestate
            } else {
                rest.push((name.to_owned(), value.to_owned()));
                continue;
            };
            // The first occurrence wins, as in CloudEvents' HTTP binding.
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        fn required<'v>(v: Option<&'v str>, name: &'static str) -> Result<&'v str, EnvelopeError> {
            match v {
                Some(s) if !s.is_empty() => Ok(s),
                _ => Err(EnvelopeError::Missing(name)),
            }
        }
        let spec = required(spec, header::SPEC_VERSION)?;
        if spec != header::SPEC_VERSION_VALUE {
            return Err(EnvelopeError::SpecVersion(spec.to_owned()));
        }
        let id = required(id, header::ID)?;
        let source = required(source, header::SOURCE)?;
        let topic = required(topic, header::TYPE)?;
        let time = match time {
            None | Some("") => SystemTime::now(),
            Some(t) => parse_time(t).ok_or_else(|| EnvelopeError::Time(t.to_owned()))?,
        };
        let schema_version = match version {
            None => 1,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(EnvelopeError::SchemaVersion(v.to_owned())),
            },
        };
        let opt = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Arc::from);
        Ok(Envelope {
            id: EventId::from(id),
            topic: Cow::Owned(topic.to_owned()),
            source: Arc::from(source),
            time,
            schema_version,
            content_type: Cow::Owned(content_type.unwrap_or("application/json").to_owned()),
            key: opt(env_key),
            correlation_id: correlation.filter(|s| !s.is_empty()).map(EventId::from),
            causation_id: causation.filter(|s| !s.is_empty()).map(EventId::from),
            traceparent: opt(traceparent),
            tracestate: opt(tracestate),
            headers: rest,
            payload,
        })
    }

    /// The value of an extra header (not one of the envelope's own attributes).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Formats a time as RFC 3339 in UTC with nanoseconds (`2026-11-23T10:00:00.123456789Z`).
///
/// Every time [`parse_time`] accepts formats back to the same instant; a
/// time outside RFC 3339 (UTC years 0000 to 9999), which only an envelope
/// built by hand can hold, is written as `1970-01-01T00:00:00Z`.
pub fn format_time(t: SystemTime) -> String {
    utc(t)
        .and_then(|dt| {
            dt.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses an RFC 3339 timestamp. An instant whose UTC year is outside 0000
/// to 9999 (`9999-12-31T23:59:59-01:00`) is refused: it could not be
/// written back when the envelope is forwarded or dead-lettered.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)?;
    utc(t)
        .filter(|dt| (0..=9999).contains(&dt.year()))
        .map(|_| t)
}

/// `t` in UTC; `None` past `time`'s range (its `From<SystemTime>` panics there).
fn utc(t: SystemTime) -> Option<time::OffsetDateTime> {
    let epoch = time::OffsetDateTime::UNIX_EPOCH;
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => epoch.checked_add(time::Duration::try_from(after).ok()?),
        Err(before) => epoch.checked_sub(time::Duration::try_from(before.duration()).ok()?),
    }
}

/// The envelope the transports' wire tests map (fixed id and time, a key,
/// a correlation id, a traceparent, one extra header).
#[cfg(test)]
pub(crate) fn wire_sample() -> Envelope {
    Envelope {
        id: EventId::from("0192-id"),
        topic: Cow::Borrowed("orders.created"),
        source: Arc::from("shop"),
        time: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        schema_version: 2,
        content_type: Cow::Borrowed("application/json"),
        key: Some(Arc::from("o-1")),
        correlation_id: Some(EventId::from("corr")),
        causation_id: None,
        traceparent: Some(Arc::from(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )),
        tracestate: None,
        headers: vec![("x-tenant".into(), "acme".into())],
        payload: Bytes::from_static(br#"{"n":1}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            id: EventId::new(),
            source: Arc::from("orders"),
            time: SystemTime::now(),
            schema_version: 3,
            payload: Bytes::from_static(b"{}"),
            ..wire_sample()
        }
    }

    #[test]
    fn headers_round_trip() {
        let env = sample();
        let headers = env.to_headers();
        let back = Envelope::from_headers(
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            env.payload.clone(),
        )
        .unwrap();
        assert_eq!(back.id, env.id);
        assert_eq!(back.topic, env.topic);
        assert_eq!(back.source, env.source);
        assert_eq!(back.time, env.time);
        assert_eq!(back.schema_version, 3);
        assert_eq!(back.key, env.key);
        assert_eq!(back.correlation_id, env.correlation_id);
        assert_eq!(back.causation_id, None);
        assert_eq!(back.traceparent, env.traceparent);
        assert_eq!(back.header("X-Tenant"), Some("acme"));
    }

    #[test]
    fn foreign_ids_are_kept_as_text() {
        let id = EventId::from("order-42/created");
        assert_eq!(id.as_str(), "order-42/created");
        let uuid = EventId::new();
        assert_eq!(EventId::from(uuid.as_str()), uuid);
        assert_eq!(EventId::from("ABC").as_str(), "ABC");
    }

    #[test]
    fn uuid_v7_ids_are_time_ordered() {
        let a = EventId::new();
        let b = EventId::new();
        assert!(a < b, "{a} < {b}");
        assert_eq!(
            uuid::Uuid::parse_str(a.as_str()).unwrap().get_version_num(),
            7
        );
    }

    #[test]
    fn times_outside_rfc_3339_are_refused_and_never_panic() {
        // Year 10000 in UTC: formatting it back (re-publish, dead letter)
        // once panicked in `time`'s conversion from `SystemTime`.
        assert_eq!(parse_time("9999-12-31T23:59:59.999999999-23:59"), None);
        // Year -1 in UTC: it came back as 1970 when re-published.
        assert_eq!(parse_time("0000-01-01T00:00:00+23:59"), None);
        let t = parse_time("9999-12-31T23:59:59.999999999Z").unwrap();
        assert_eq!(format_time(t), "9999-12-31T23:59:59.999999999Z");
        let t = parse_time("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(format_time(t), "0000-01-01T00:00:00Z");
        // Envelopes built by hand can hold any time; showing one never panics.
        let far = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 40);
        let _ = format_time(far);
        let mut env = sample();
        env.time = far;
        let _ = env.to_headers();
        let base = [
            (header::SPEC_VERSION, "1.0"),
            (header::ID, "x"),
            (header::SOURCE, "s"),
            (header::TYPE, "a.b"),
            (header::TIME, "0000-01-01T00:00:00+23:59"),
        ];
        assert!(matches!(
            Envelope::from_headers(base, Bytes::new()),
            Err(EnvelopeError::Time(_))
        ));
    }

    #[test]
    fn rejects_bad_headers() {
        let base = [
            (header::SPEC_VERSION, "1.0"),
            (header::ID, "x"),
            (header::SOURCE, "s"),
            (header::TYPE, "a.b"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut h: Vec<_> = base.to_vec();
            h.retain(|(k, _)| *k != extra.0);
            h.push(extra);
            Envelope::from_headers(h, Bytes::new())
        };
        assert!(with((header::CONTENT_TYPE, "application/json")).is_ok());
        assert_eq!(
            with((header::SPEC_VERSION, "0.3")).unwrap_err(),
            EnvelopeError::SpecVersion("0.3".into())
        );
        assert_eq!(
            with((header::SCHEMA_VERSION, "0")).unwrap_err(),
            EnvelopeError::SchemaVersion("0".into())
        );
        assert_eq!(
            with((header::TIME, "yesterday")).unwrap_err(),
            EnvelopeError::Time("yesterday".into())
        );
        assert_eq!(
            with((header::ID, "")).unwrap_err(),
            EnvelopeError::Missing(header::ID)
        );
    }
}

//! Envelopes as Kafka records: the CloudEvents Kafka protocol binding in
//! binary mode (docs/wire-format.md). Every `ce-<attribute>` header of the
//! envelope travels as `ce_<attribute>`, `content-type` as `content-type`,
//! `traceparent`/`tracestate` and the application's headers as they are;
//! the partition key is the record key as well as `ce_partitionkey`.
//! Reading accepts `ce_traceparent`/`ce_tracestate` (the CloudEvents
//! distributed-tracing extension) as well.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use rdkafka::message::{Header, Headers, OwnedHeaders};

use super::config::KafkaConfig;
use crate::delivery::DeadLetter;
use crate::envelope::{header, Envelope, EnvelopeError};
use crate::error::PublishError;
use crate::transport::dead_letter::{
    header as dlq, letter_headers, malformed_letter as malformed, Malformed,
};

/// Bytes a record's headers and key take besides the payload, per header
/// (Kafka's record format: varint lengths, at most 5 bytes each).
const HEADER_OVERHEAD: usize = 10;

/// Bytes kept free below `max_message_bytes` for the record batch framing.
const SIZE_MARGIN: usize = 512;

/// eventwire's own `ce-` headers and their Kafka names, so that the hot
/// path maps them without allocating.
const CE_NAMES: [(&str, &str); 10] = [
    (header::SPEC_VERSION, "ce_specversion"),
    (header::ID, "ce_id"),
    (header::SOURCE, "ce_source"),
    (header::TYPE, "ce_type"),
    (header::TIME, "ce_time"),
    (header::SCHEMA_VERSION, "ce_schemaversion"),
    (header::PARTITION_KEY, "ce_partitionkey"),
    (header::CORRELATION_ID, "ce_correlationid"),
    (header::CAUSATION_ID, "ce_causationid"),
    ("ce-dataschema", "ce_dataschema"),
];

/// The wire name of an envelope header: `ce-id` → `ce_id`.
pub(crate) fn wire_name(name: &str) -> Cow<'_, str> {
    if let Some((_, wire)) = CE_NAMES.iter().find(|(n, _)| *n == name) {
        return Cow::Borrowed(wire);
    }
    match name.strip_prefix("ce-") {
        Some(rest) => Cow::Owned(format!("ce_{rest}")),
        None => Cow::Borrowed(name),
    }
}

/// The envelope header name of a wire header: `ce_id` → `ce-id`. The
/// CloudEvents distributed-tracing extension (`ce_traceparent`,
/// `ce_tracestate`, as the CloudEvents SDKs write it) is read as the W3C
/// `traceparent`/`tracestate` that eventwire writes.
fn envelope_name(name: &str) -> Cow<'_, str> {
    if let Some((envelope, _)) = CE_NAMES.iter().find(|(_, w)| *w == name) {
        return Cow::Borrowed(envelope);
    }
    match name.strip_prefix("ce_") {
        Some("traceparent") => Cow::Borrowed(header::TRACEPARENT),
        Some("tracestate") => Cow::Borrowed(header::TRACESTATE),
        Some(rest) => Cow::Owned(format!("ce-{rest}")),
        None => Cow::Borrowed(name),
    }
}

/// The record headers of an envelope, with the bytes they take.
pub(crate) fn headers(envelope: &Envelope) -> (OwnedHeaders, usize) {
    let pairs = envelope.to_headers();
    let mut out = OwnedHeaders::new_with_capacity(pairs.len());
    let mut size = 0;
    for (name, value) in &pairs {
        let name = wire_name(name);
        size += name.len() + value.len() + HEADER_OVERHEAD;
        out = out.insert(Header {
            key: &name,
            value: Some(value.as_bytes()),
        });
    }
    (out, size)
}

/// The envelope of a received record.
pub(crate) fn envelope_of<H: Headers>(
    config: &KafkaConfig,
    kafka_topic: &str,
    key: Option<&[u8]>,
    headers: Option<&H>,
    payload: Bytes,
) -> Result<Envelope, EnvelopeError> {
    let mut pairs: Vec<(Cow<'_, str>, &str)> = Vec::new();
    if let Some(h) = headers {
        for header in h.iter() {
            let value = match header.value {
                None => "",
                Some(v) => std::str::from_utf8(v)
                    .map_err(|_| EnvelopeError::NotUtf8(header.key.to_owned()))?,
            };
            pairs.push((envelope_name(header.key), value));
        }
    }
    let mut envelope =
        Envelope::from_headers(pairs.iter().map(|(n, v)| (n.as_ref(), *v)), payload)?;
    if envelope.key.is_none() {
        if let Some(k) = key.and_then(|k| std::str::from_utf8(k).ok()) {
            envelope.key = Some(Arc::from(k));
        }
    }
    // The record's topic is what the broker routed on: it is the topic. A
    // foreign publisher's different `ce_type` is kept for the handler to see.
    let topic = config.topic_of(kafka_topic);
    if envelope.topic != topic {
        let ce_type = std::mem::replace(&mut envelope.topic, Cow::Owned(topic.to_owned()));
        envelope
            .headers
            .push(("eventwire-ce-type".to_owned(), ce_type.into_owned()));
    }
    Ok(envelope)
}

/// A dead letter as a record: the original headers and payload plus the
/// `eventwire-dlq-*` headers, the original's key. When the whole would
/// exceed `max_bytes`, the original's own headers, then the end of the
/// payload, are left out, each fact recorded (`eventwire-dlq-headers-dropped`,
/// `-payload-truncated`).
pub(crate) fn dead_letter_record(
    letter: &DeadLetter,
    max_bytes: usize,
) -> Result<(OwnedHeaders, Bytes), PublishError> {
    crate::topic::validate_topic(&letter.topic)?;
    let envelope = &letter.envelope;
    let all = envelope.to_headers();
    let own = all.len() - envelope.headers.len();
    let mut pairs: Vec<(Cow<'_, str>, String)> = all[..own]
        .iter()
        .map(|(n, v)| (wire_name(n), v.clone()))
        .collect();
    for (name, value) in letter_headers(letter) {
        pairs.push((Cow::Borrowed(name), value));
    }
    let size_of = |pairs: &[(Cow<'_, str>, String)]| -> usize {
        pairs
            .iter()
            .map(|(n, v)| n.len() + v.len() + HEADER_OVERHEAD)
            .sum::<usize>()
            + envelope.key.as_deref().map_or(0, str::len)
    };
    let budget = max_bytes.saturating_sub(SIZE_MARGIN);
    let mut size = size_of(&pairs) + envelope.payload.len();
    let mut dropped = 0usize;
    for (name, value) in &all[own..] {
        let extra = name.len() + value.len() + HEADER_OVERHEAD;
        if size + extra > budget {
            dropped += 1;
            continue;
        }
        size += extra;
        pairs.push((Cow::Borrowed(name), value.clone()));
    }
    if dropped > 0 {
        pairs.push((Cow::Borrowed(dlq::HEADERS_DROPPED), dropped.to_string()));
    }
    let payload = &envelope.payload;
    let payload = if size_of(&pairs) + payload.len() > budget {
        pairs.push((
            Cow::Borrowed(dlq::PAYLOAD_TRUNCATED),
            payload.len().to_string(),
        ));
        let room = budget.saturating_sub(size_of(&pairs));
        payload.slice(..room.min(payload.len()))
    } else {
        payload.clone()
    };
    let mut out = OwnedHeaders::new_with_capacity(pairs.len());
    for (name, value) in &pairs {
        out = out.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        });
    }
    Ok((out, payload))
}

/// A record that is not a valid envelope, kept as received so it can be
/// dead-lettered with everything it carried.
pub(crate) fn malformed_letter<H: Headers>(
    kafka_topic: &str,
    topic: &str,
    headers: Option<&H>,
    payload: Bytes,
    error: &EnvelopeError,
    consumer: (&str, &str),
) -> DeadLetter {
    let mut id = None;
    let mut kept = Vec::new();
    if let Some(h) = headers {
        for header in h.iter() {
            let value = String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
            if header.key == "ce_id" && id.is_none() {
                id = Some(value.clone());
            }
            kept.push((format!("eventwire-original-{}", header.key), value));
        }
    }
    kept.push(("eventwire-kafka-topic".to_owned(), kafka_topic.to_owned()));
    malformed(Malformed {
        id,
        topic,
        headers: kept,
        payload,
        error,
        stream_sequence: None,
        consumer,
    })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::delivery::HandlerErrorKind;

    fn envelope() -> Envelope {
        crate::envelope::wire_sample()
    }

    fn value<'a>(h: &'a OwnedHeaders, name: &str) -> Option<&'a str> {
        h.iter()
            .find(|x| x.key == name)
            .and_then(|x| x.value)
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn envelope_headers_follow_the_cloudevents_kafka_binding() {
        let (h, size) = headers(&envelope());
        assert_eq!(value(&h, "ce_specversion"), Some("1.0"));
        assert_eq!(value(&h, "ce_id"), Some("0192-id"));
        assert_eq!(value(&h, "ce_source"), Some("shop"));
        assert_eq!(value(&h, "ce_type"), Some("orders.created"));
        assert_eq!(value(&h, "ce_time"), Some("2023-11-14T22:13:20.123Z"));
        assert_eq!(value(&h, "content-type"), Some("application/json"));
        assert_eq!(value(&h, "ce_schemaversion"), Some("2"));
        assert_eq!(value(&h, "ce_partitionkey"), Some("o-1"));
        assert_eq!(value(&h, "ce_correlationid"), Some("corr"));
        assert!(value(&h, "traceparent").is_some());
        assert_eq!(value(&h, "x-tenant"), Some("acme"));
        assert_eq!(value(&h, header::ID), None);
        assert!(size > 100);
    }

    #[test]
    fn records_round_trip_and_the_topic_comes_from_the_record() {
        let config = KafkaConfig::new(["h"]).prefix("staging");
        let sent = envelope();
        let (h, _) = headers(&sent);
        let got = envelope_of(
            &config,
            "staging.orders.created",
            Some(b"o-1"),
            Some(&h),
            sent.payload.clone(),
        )
        .unwrap();
        assert_eq!(got.id, sent.id);
        assert_eq!(got.topic, "orders.created");
        assert_eq!(got.time, sent.time);
        assert_eq!(got.schema_version, 2);
        assert_eq!(got.key.as_deref(), Some("o-1"));
        assert_eq!(got.headers, [("x-tenant".to_owned(), "acme".to_owned())]);
        let got = envelope_of(
            &config,
            "staging.orders.legacy",
            None,
            Some(&h),
            Bytes::new(),
        )
        .unwrap();
        assert_eq!(got.topic, "orders.legacy");
        assert_eq!(got.header("eventwire-ce-type"), Some("orders.created"));
    }

    #[test]
    fn records_that_are_not_envelopes_are_typed_errors() {
        let config = KafkaConfig::new(["h"]);
        assert!(envelope_of::<OwnedHeaders>(&config, "t", None, None, Bytes::new()).is_err());
        let h = OwnedHeaders::new().insert(Header {
            key: "ce_id",
            value: Some(&b"\xff"[..]),
        });
        assert!(envelope_of(&config, "t", None, Some(&h), Bytes::new()).is_err());
        let letter = malformed_letter(
            "t",
            "t",
            Some(&h),
            Bytes::from_static(b"x"),
            &EnvelopeError::Missing(header::SPEC_VERSION),
            ("g", "h"),
        );
        assert_eq!(letter.topic, "eventwire.dlq.t");
        assert_eq!(letter.error_kind, HandlerErrorKind::Decode);
        assert_eq!(
            letter.envelope.header("eventwire-original-ce_id"),
            Some("\u{fffd}")
        );
    }

    #[test]
    fn a_letter_too_large_is_cut_to_fit_and_says_so() {
        let mut e = envelope();
        e.headers.push(("x-big".into(), "h".repeat(1500)));
        e.payload = Bytes::from(vec![b'p'; 3000]);
        let letter = DeadLetter {
            envelope: Arc::new(e),
            error: "boom".into(),
            error_kind: HandlerErrorKind::Permanent,
            handler: "reserve".into(),
            group: "inventory".into(),
            attempts: 3,
            stream_sequence: None,
            failed_at: SystemTime::UNIX_EPOCH,
            topic: "eventwire.dlq.orders.created".into(),
            invalid_topic: None,
        };
        let (h, payload) = dead_letter_record(&letter, 4096).unwrap();
        assert_eq!(value(&h, dlq::ERROR), Some("boom"));
        assert_eq!(value(&h, dlq::ATTEMPTS), Some("3"));
        assert_eq!(value(&h, dlq::HEADERS_DROPPED), Some("2"));
        assert_eq!(value(&h, dlq::PAYLOAD_TRUNCATED), Some("3000"));
        assert!(payload.len() < 3000 && letter.envelope.payload.starts_with(&payload));
        assert_eq!(value(&h, "ce_id"), Some("0192-id"));
        let (h, payload) = dead_letter_record(&letter, 1 << 20).unwrap();
        assert_eq!(payload.len(), 3000);
        assert_eq!(value(&h, "x-big").map(str::len), Some(1500));
    }
}

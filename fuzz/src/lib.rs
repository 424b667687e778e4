//! What the fuzz targets share: structured header input and the envelope
//! invariants (a decoded envelope survives its own wire mapping unchanged).

use arbitrary::Arbitrary;
use bytes::Bytes;
use eventwire::envelope::header;
use eventwire::Envelope;

/// Header names the decoder gives a meaning to, plus NATS' own.
pub const KNOWN_NAMES: &[&str] = &[
    header::ID,
    header::SOURCE,
    header::TYPE,
    header::SPEC_VERSION,
    header::TIME,
    header::CONTENT_TYPE,
    header::SCHEMA_VERSION,
    header::PARTITION_KEY,
    header::CORRELATION_ID,
    header::CAUSATION_ID,
    header::TRACEPARENT,
    header::TRACESTATE,
    "Nats-Msg-Id",
    "eventwire-ce-type",
    "x-tenant",
];

/// Values that get past the first checks, so the fuzzer reaches the later ones.
pub const KNOWN_VALUES: &[&str] = &[
    "1.0",
    "0192f0c1-7a3e-7b8c-9d0e-123456789abc",
    "orders.created",
    "shop",
    "2026-11-23T10:00:00.123456789Z",
    "1985-04-12T23:20:50.52+05:00",
    "0000-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999999-23:59",
    "application/json",
    "application/protobuf; charset=utf-8",
    "2",
    "4294967295",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "",
];

/// A header name: one the decoder knows (in any letter case) or any text.
#[derive(Debug, Arbitrary)]
pub enum Name {
    Known { index: u8, case: u8 },
    Other(String),
}

/// A header value: one that passes the first checks, or any text.
#[derive(Debug, Arbitrary)]
pub enum Value {
    Known(u8),
    Other(String),
}

impl Name {
    pub fn text(&self) -> String {
        match self {
            Name::Known { index, case } => {
                let name = KNOWN_NAMES[*index as usize % KNOWN_NAMES.len()];
                // Bit i of `case` upper-cases letter i (mod 8): headers match
                // case-insensitively.
                name.chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if case & (1 << (i % 8)) != 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect()
            }
            Name::Other(s) => s.clone(),
        }
    }
}

impl Value {
    pub fn text(&self) -> String {
        match self {
            Value::Known(i) => KNOWN_VALUES[*i as usize % KNOWN_VALUES.len()].to_owned(),
            Value::Other(s) => s.clone(),
        }
    }
}

/// `(name, value)` pairs with the mandatory envelope headers in front most of
/// the time, so most inputs decode.
#[derive(Debug, Arbitrary)]
pub struct Headers {
    pub with_required: bool,
    pub pairs: Vec<(Name, Value)>,
}

impl Headers {
    pub fn texts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.with_required {
            for (n, v) in [
                (header::SPEC_VERSION, "1.0"),
                (header::ID, "0192f0c1-7a3e-7b8c-9d0e-123456789abc"),
                (header::SOURCE, "shop"),
                (header::TYPE, "orders.created"),
            ] {
                out.push((n.to_owned(), v.to_owned()));
            }
            // Later pairs lose to these (the first occurrence wins), so put
            // the fuzzed ones first half of the time.
            if self.pairs.len() % 2 == 1 {
                out.reverse();
            }
        }
        let mut fuzzed: Vec<_> = self
            .pairs
            .iter()
            .map(|(n, v)| (n.text(), v.text()))
            .collect();
        if self.pairs.len() % 2 == 1 {
            fuzzed.append(&mut out);
            fuzzed
        } else {
            out.append(&mut fuzzed);
            out
        }
    }
}

/// The invariants of every envelope the decoder accepts:
/// the required attributes are there, and writing the envelope's headers and
/// reading them back gives the same envelope.
pub fn check_decoded(env: &Envelope) {
    assert!(!env.id.is_empty(), "accepted an empty id");
    assert!(!env.topic.is_empty(), "accepted an empty ce-type");
    assert!(!env.source.is_empty(), "accepted an empty ce-source");
    assert!(env.schema_version >= 1, "accepted schema version 0");
    for (name, _) in &env.headers {
        assert!(
            !KNOWN_NAMES[..12]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(name)),
            "envelope attribute {name:?} left among the extra headers"
        );
    }
    let headers = env.to_headers();
    let back = Envelope::from_headers(
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        env.payload.clone(),
    )
    .unwrap_or_else(|e| panic!("re-reading the envelope's own headers failed: {e}\n{headers:?}"));
    assert_same(env, &back);
    // Never panics, whatever it says.
    let _ = env.validate();
}

/// Field-by-field equality (`Envelope` has no `PartialEq`); extra headers as
/// a multiset, since a header map does not keep their order.
pub fn assert_same(a: &Envelope, b: &Envelope) {
    assert_eq!(a.id, b.id);
    assert_eq!(a.topic, b.topic);
    assert_eq!(a.source, b.source);
    assert_eq!(
        a.time,
        b.time,
        "ce-time changed: {} vs {}",
        eventwire::envelope::format_time(a.time),
        eventwire::envelope::format_time(b.time)
    );
    assert_eq!(a.schema_version, b.schema_version);
    assert_eq!(a.content_type, b.content_type);
    assert_eq!(a.key, b.key);
    assert_eq!(a.correlation_id, b.correlation_id);
    assert_eq!(a.causation_id, b.causation_id);
    assert_eq!(a.traceparent, b.traceparent);
    assert_eq!(a.tracestate, b.tracestate);
    let mut ha = a.headers.clone();
    let mut hb = b.headers.clone();
    ha.sort();
    hb.sort();
    assert_eq!(ha, hb);
    assert_eq!(a.payload, b.payload);
}

/// The payload as `Bytes`.
pub fn payload(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

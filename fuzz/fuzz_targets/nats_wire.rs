//! The NATS wire decoder (`transport/nats/wire.rs`): a received message
//! (subject, `async_nats::HeaderMap`, payload) into an envelope, and a
//! message that is not one into its dead letter.
//!
//! The header map is built from fuzz data with async-nats' fallible
//! constructors, as its protocol parser builds it (names without controls or
//! `:`, values without CR/LF). Invariants: the topic is the subject without
//! the prefix, `Nats-Msg-Id` is dropped, the envelope's headers decode back to
//! the same envelope; a malformed message either becomes a dead letter or a
//! typed error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use event_runtime::__fuzz::nats::{envelope_of, headers, malformed_dead_letter, MSG_ID};
use eventwire::nats::async_nats::{HeaderMap, HeaderName, HeaderValue};
use eventwire::nats::NatsConfig;
use eventwire_fuzz::{assert_same, check_decoded, payload, Headers};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Subject {
    Topic,
    Prefixed,
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    prefix: Option<String>,
    subject: Subject,
    headers: Option<Headers>,
    payload: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut config = NatsConfig::new(["127.0.0.1:4222"]);
    if let Some(p) = input
        .prefix
        .filter(|p| eventwire::topic::validate_prefix(p).is_ok())
    {
        config = config.subject_prefix(p);
    }
    // The server delivers on subjects that match a subscription: non-empty
    // tokens, no whitespace.
    let subject = match &input.subject {
        Subject::Other(s)
            if s.split('.')
                .all(|t| !t.is_empty() && !t.contains(char::is_whitespace))
                && !config.topic_of(s).is_empty() =>
        {
            s.clone()
        }
        Subject::Topic | Subject::Other(_) => "orders.created".to_owned(),
        Subject::Prefixed => config.subject("orders.created"),
    };
    let map = input.headers.as_ref().map(|h| {
        let mut map = HeaderMap::new();
        for (name, value) in h.texts() {
            if let (Ok(n), Ok(v)) = (name.parse::<HeaderName>(), value.parse::<HeaderValue>()) {
                map.append(n, v);
            }
        }
        map
    });
    let body = payload(&input.payload);
    match envelope_of(&config, &subject, map.as_ref(), body.clone()) {
        Ok(env) => {
            assert_eq!(env.topic, config.topic_of(&subject));
            assert!(
                !env.headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(MSG_ID)),
                "Nats-Msg-Id kept: {:?}",
                env.headers
            );
            check_decoded(&env);
            // What was read from a header map can be written to one, and
            // reads back the same.
            let sent = headers(&env, true)
                .unwrap_or_else(|e| panic!("cannot write a received envelope back: {e}"));
            let again = envelope_of(&config, &subject, Some(&sent), body)
                .unwrap_or_else(|e| panic!("cannot read back what was written: {e}"));
            assert_same(&env, &again);
        }
        Err(e) => {
            // A dead letter can always be built (reliability defect 1).
            let (dlq_subject, dlq_headers, dlq_payload) =
                malformed_dead_letter(&config, &subject, map.as_ref(), body.clone(), &e)
                    .unwrap_or_else(|err| panic!("no dead letter for {subject:?}: {err}"));
            assert!(
                dlq_headers.get(MSG_ID).is_some(),
                "dead letter without Nats-Msg-Id"
            );
            assert!(
                dlq_headers.iter().all(|(name, _)| {
                    let n: &str = name.as_ref();
                    !n.to_ascii_lowercase().starts_with("nats-") || n == MSG_ID
                }),
                "a server header of the original reached the dead letter"
            );
            assert!(body.starts_with(&dlq_payload), "the payload kept is its beginning");
            assert!(dlq_subject.contains("eventwire.dlq."), "{dlq_subject}");
        }
    }
});

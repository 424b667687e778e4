//! Topic checks (`topic.rs`): the `const fn` checker agrees with the detailed
//! one, a valid topic has only allowed characters and no empty token, names
//! and patterns keep their rules, and `matches` agrees with a token-by-token
//! reference.
#![no_main]

use eventwire::topic::{
    is_pattern, is_valid_topic, matches, validate_name, validate_pattern, validate_prefix,
    validate_topic, MAX_LEN, MAX_TOKENS,
};
use libfuzzer_sys::fuzz_target;

fn topic_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')
}

/// NATS subject matching, written the slow and obvious way.
fn reference_matches(pattern: &[&str], topic: &[&str]) -> bool {
    match (pattern.split_first(), topic.split_first()) {
        (Some((&">", _)), Some(_)) => true,
        (Some((&"*", p)), Some((_, t))) => reference_matches(p, t),
        (Some((a, p)), Some((b, t))) => a == b && reference_matches(p, t),
        (None, None) => true,
        _ => false,
    }
}

fn check_topic(t: &str) {
    let fast = is_valid_topic(t);
    assert_eq!(fast, validate_topic(t).is_ok(), "{t:?}");
    // `validate_topic` answers from `is_valid_topic` when it can; a subject
    // prefix has the same rules and goes through the detailed checker only.
    assert_eq!(
        fast,
        validate_prefix(t).is_ok(),
        "{t:?}: const and detailed checks disagree"
    );
    if fast {
        assert!(!t.is_empty() && t.len() <= MAX_LEN, "{t:?}");
        assert!(!t.chars().any(char::is_whitespace), "{t:?}");
        let tokens: Vec<&str> = t.split('.').collect();
        assert!(tokens.len() <= MAX_TOKENS, "{t:?}");
        for token in &tokens {
            assert!(!token.is_empty(), "empty token in {t:?}");
            assert!(token.chars().all(topic_char), "{t:?}");
        }
        assert!(validate_pattern(t).is_ok(), "a topic is a pattern: {t:?}");
        assert!(!is_pattern(t), "{t:?}");
        assert!(matches(t, t), "{t:?}");
    } else if let Err(e) = validate_topic(t) {
        assert_eq!(e.value, t);
        let _ = e.to_string();
    }
}

/// Dead letters of an event on any subject `t` (valid or not: a foreign
/// publisher's subject may be upper case) have a route that is a valid topic
/// under `eventwire.dlq.>`: `eventwire.dlq.<t>` when that is valid, the
/// fallback `eventwire.dlq._invalid.<group>__<handler>` otherwise
/// (fuzz/regressions/topic-dead-letter-topic-too-long.md, fixed by
/// `naming::dead_letter_route`).
fn check_dead_letter_route(t: &str) {
    use eventwire::naming::{dead_letter_route, dead_letter_topic, DEAD_LETTER_PATTERN};
    let (route, invalid) = dead_letter_route(t, None, "Group", "handler");
    assert!(is_valid_topic(&route), "route {route:?} of {t:?} is not a topic");
    assert!(matches(DEAD_LETTER_PATTERN, &route), "{route:?}");
    let derived = dead_letter_topic(t);
    if is_valid_topic(&derived) {
        assert_eq!((route, invalid), (derived, None));
    } else {
        assert_eq!(invalid.as_deref(), Some(derived.as_str()));
    }
}

fn check_pattern(p: &str, t: &str) {
    let ok = validate_pattern(p).is_ok();
    if ok && !is_pattern(p) {
        assert!(
            is_valid_topic(p),
            "a valid pattern without wildcards is a topic: {p:?}"
        );
    }
    if ok {
        assert!(p.split('.').rev().skip(1).all(|tok| tok != ">"), "{p:?}");
    }
    let got = matches(p, t);
    if ok && is_valid_topic(t) {
        let pt: Vec<&str> = p.split('.').collect();
        let tt: Vec<&str> = t.split('.').collect();
        assert_eq!(got, reference_matches(&pt, &tt), "matches({p:?}, {t:?})");
    }
}

fn check_name(n: &str) {
    if validate_name("group", n).is_ok() {
        assert!(!n.is_empty() && n.len() <= MAX_LEN, "{n:?}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{n:?}"
        );
    }
}

// Two strings, split at the first NUL (a pattern and a topic).
fuzz_target!(|data: &str| {
    let (a, b) = data.split_once('\0').unwrap_or((data, data));
    for t in [a, b] {
        check_topic(t);
        check_name(t);
        check_dead_letter_route(t);
    }
    check_pattern(a, b);
});

//! Topic syntax and wildcard matching.
//!
//! A topic is dot-separated tokens of `[a-z0-9_-]`: no empty token, at most
//! [`MAX_TOKENS`] tokens and [`MAX_LEN`] bytes. `#[derive(Event)]` checks
//! literal topics at compile time with the same rules; this module checks the
//! parts only known at run time (a subject prefix, a topic given as a string).

use std::fmt;

/// Most tokens a topic may have.
pub const MAX_TOKENS: usize = 16;
/// Most bytes a topic may have.
pub const MAX_LEN: usize = 255;

/// Why a topic or a subject token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {reason}")]
pub struct TopicError {
    /// What was checked (`topic`, `subject prefix`, `group`, ...).
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
    /// The rule it breaks.
    pub reason: TopicRule,
}

/// The rule a rejected topic breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicRule {
    /// Empty text, or an empty token (`a..b`, a leading or trailing `.`).
    EmptyToken,
    /// A character outside `[a-z0-9_-]` (or `[A-Za-z0-9_-]` for names).
    Character(char),
    /// A `*` or `>` where wildcards are not allowed.
    Wildcard,
    /// `>` anywhere but the last token.
    TailWildcardNotLast,
    /// More than [`MAX_TOKENS`] tokens.
    TooManyTokens,
    /// More than [`MAX_LEN`] bytes.
    TooLong,
}

impl fmt::Display for TopicRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicRule::EmptyToken => f.write_str("empty token"),
            TopicRule::Character(c) => write!(f, "character {c:?} is not allowed"),
            TopicRule::Wildcard => f.write_str("wildcards are not allowed here"),
            TopicRule::TailWildcardNotLast => f.write_str("`>` must be the last token"),
            TopicRule::TooManyTokens => write!(f, "more than {MAX_TOKENS} tokens"),
            TopicRule::TooLong => write!(f, "longer than {MAX_LEN} bytes"),
        }
    }
}

fn check(
    what: &'static str,
    value: &str,
    wildcards: bool,
    token_char: fn(char) -> bool,
) -> Result<(), TopicError> {
    let err = |reason| TopicError {
        what,
        value: value.to_owned(),
        reason,
    };
    if value.len() > MAX_LEN {
        return Err(err(TopicRule::TooLong));
    }
    let tokens: Vec<&str> = value.split('.').collect();
    if tokens.len() > MAX_TOKENS {
        return Err(err(TopicRule::TooManyTokens));
    }
    for (i, token) in tokens.iter().enumerate() {
        match *token {
            "" => return Err(err(TopicRule::EmptyToken)),
            "*" | ">" if !wildcards => return Err(err(TopicRule::Wildcard)),
            "*" => {}
            ">" if i + 1 == tokens.len() => {}
            ">" => return Err(err(TopicRule::TailWildcardNotLast)),
            t => {
                if let Some(c) = t.chars().find(|c| !token_char(*c)) {
                    return Err(err(if c == '*' || c == '>' {
                        TopicRule::Wildcard
                    } else {
                        TopicRule::Character(c)
                    }));
                }
            }
        }
    }
    Ok(())
}

/// Whether `topic` is a valid concrete topic; the same rules as
/// [`validate_topic`], in a `const fn` that does not allocate (it runs on
/// every publish at the transport boundary, and at compile time for the
/// topic of every `Event` type).
pub const fn is_valid_topic(topic: &str) -> bool {
    let bytes = topic.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_LEN {
        return false;
    }
    let mut tokens = 1;
    let mut token_len = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if token_len == 0 {
                    return false;
                }
                tokens += 1;
                token_len = 0;
            }
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => token_len += 1,
            _ => return false,
        }
        i += 1;
    }
    token_len > 0 && tokens <= MAX_TOKENS
}

fn topic_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')
}

fn name_char(c: char) -> bool {
    matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-')
}

/// Checks a concrete topic (no wildcards).
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    if is_valid_topic(topic) {
        return Ok(());
    }
    check("topic", topic, false, topic_char)
}

/// Checks a subscription pattern (`orders.*`, `orders.>`).
pub fn validate_pattern(pattern: &str) -> Result<(), TopicError> {
    check("topic pattern", pattern, true, topic_char)
}

/// Checks a subject prefix (`staging`, `tenant-a.prod`): topic syntax, no wildcard.
pub fn validate_prefix(prefix: &str) -> Result<(), TopicError> {
    check("subject prefix", prefix, false, topic_char)
}

/// Checks a name that becomes one subject token or a consumer name
/// (service, group, handler, durable): one token of `[A-Za-z0-9_-]`.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), TopicError> {
    if name.contains('.') {
        return Err(TopicError {
            what,
            value: name.to_owned(),
            reason: TopicRule::Character('.'),
        });
    }
    check(what, name, false, name_char)
}

/// Whether `pattern` (which may hold `*` and a final `>`) matches `topic`.
pub fn matches(pattern: &str, topic: &str) -> bool {
    let mut p = pattern.split('.');
    let mut t = topic.split('.');
    loop {
        match (p.next(), t.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether a pattern holds a wildcard token.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.split('.').any(|t| t == "*" || t == ">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_rules() {
        assert!(validate_topic("orders.created").is_ok());
        assert!(validate_topic("a_b-c.d9").is_ok());
        for (bad, rule) in [
            ("", TopicRule::EmptyToken),
            ("orders..created", TopicRule::EmptyToken),
            (".orders", TopicRule::EmptyToken),
            ("orders.", TopicRule::EmptyToken),
            ("Orders", TopicRule::Character('O')),
            ("orders created", TopicRule::Character(' ')),
            ("orders.*", TopicRule::Wildcard),
            ("orders.>", TopicRule::Wildcard),
            ("orders.cr*", TopicRule::Wildcard),
            ("$sys.x", TopicRule::Character('$')),
        ] {
            assert_eq!(validate_topic(bad).unwrap_err().reason, rule, "{bad:?}");
        }
        let long = vec!["a"; 17].join(".");
        assert_eq!(
            validate_topic(&long).unwrap_err().reason,
            TopicRule::TooManyTokens
        );
        let long = "a".repeat(256);
        assert_eq!(
            validate_topic(&long).unwrap_err().reason,
            TopicRule::TooLong
        );
    }

    #[test]
    fn patterns() {
        assert!(validate_pattern("orders.*").is_ok());
        assert!(validate_pattern("orders.>").is_ok());
        assert_eq!(
            validate_pattern("orders.>.x").unwrap_err().reason,
            TopicRule::TailWildcardNotLast
        );
        assert!(matches("orders.*", "orders.created"));
        assert!(!matches("orders.*", "orders.created.v2"));
        assert!(matches("orders.>", "orders.created.v2"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches("orders.created", "orders.created"));
        assert!(!matches("orders.created", "orders.cancelled"));
        assert!(matches("*.created", "orders.created"));
    }

    #[test]
    fn names() {
        assert!(validate_name("group", "Inventory_v2-a").is_ok());
        assert!(validate_name("group", "a.b").is_err());
        assert!(validate_name("group", "a b").is_err());
        assert!(validate_name("group", "*").is_err());
        assert!(validate_name("group", "").is_err());
    }

    #[test]
    fn the_const_check_agrees_with_the_detailed_one() {
        let long = "a".repeat(MAX_LEN + 1);
        let many = vec!["a"; MAX_TOKENS + 1].join(".");
        let most = vec!["a"; MAX_TOKENS].join(".");
        for t in [
            "orders.created",
            "a",
            "a-b_c.0",
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "A.b",
            "a.*",
            "a.>",
            ">",
            "$JS.API.STREAM.DELETE.x",
            "a b",
            "é",
            &long,
            &many,
            &most,
        ] {
            assert_eq!(
                is_valid_topic(t),
                check("topic", t, false, topic_char).is_ok(),
                "{t:?}"
            );
        }
    }
}

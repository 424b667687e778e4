//! Compile-time topic rules (the runtime's `topic` module applies the same
//! rules to parts only known at run time).

pub(crate) const MAX_TOKENS: usize = 16;
pub(crate) const MAX_LEN: usize = 255;

/// Checks a topic; with `wildcards`, `*` tokens and a final `>` are allowed.
pub(crate) fn check(topic: &str, wildcards: bool) -> Result<(), String> {
    if topic.is_empty() {
        return Err("a topic cannot be empty".into());
    }
    if topic.len() > MAX_LEN {
        return Err(format!(
            "topic is {} bytes long; the limit is {MAX_LEN}",
            topic.len()
        ));
    }
    let tokens: Vec<&str> = topic.split('.').collect();
    if tokens.len() > MAX_TOKENS {
        return Err(format!(
            "topic has {} tokens; the limit is {MAX_TOKENS}",
            tokens.len()
        ));
    }
    for (i, token) in tokens.iter().enumerate() {
        match *token {
            "" => {
                return Err(
                    "empty token: topics are dot-separated tokens like `orders.created`, with no leading, trailing or double dot".into(),
                )
            }
            "*" | ">" if !wildcards => {
                return Err(format!(
                    "wildcard `{token}` is not allowed in an event topic; events are published on one concrete topic"
                ))
            }
            "*" => {}
            ">" if i + 1 == tokens.len() => {}
            ">" => return Err("`>` matches the rest of a topic and must be its last token".into()),
            t => {
                if let Some(c) = t
                    .chars()
                    .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
                {
                    let hint = if c.is_ascii_uppercase() {
                        " (topics are lowercase)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "character {c:?} is not allowed in a topic{hint}; tokens use `a-z`, `0-9`, `_` and `-`"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether a concrete topic is matched by a pattern (`*` one token, a final
/// `>` one or more); a concrete pattern matches only itself.
pub(crate) fn matches(pattern: &str, topic: &str) -> bool {
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

/// Checks a name used as a subject token or consumer name (group, handler,
/// durable): `[A-Za-z0-9_-]+`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("cannot be empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "character {c:?} is not allowed; use `A-Z`, `a-z`, `0-9`, `_` and `-`"
        ));
    }
    if name.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes"));
    }
    Ok(())
}

/// The default topic of a type: `OrderCreated` → `order.created`,
/// `HTTPRequestFailed` → `http.request.failed`, `Order2Shipped` → `order2.shipped`.
pub(crate) fn from_type_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !out.is_empty() && !out.ends_with('.') {
                out.push('.');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('.') {
                out.push('.');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_topics() {
        assert_eq!(from_type_name("OrderCreated"), "order.created");
        assert_eq!(from_type_name("HTTPRequestFailed"), "http.request.failed");
        assert_eq!(from_type_name("Order2Shipped"), "order2.shipped");
        assert_eq!(from_type_name("Ping"), "ping");
        assert_eq!(from_type_name("user_signed_up"), "user.signed.up");
    }

    #[test]
    fn rules() {
        assert!(check("orders.created", false).is_ok());
        assert!(check("orders..created", false).is_err());
        assert!(check("Orders", false).unwrap_err().contains("lowercase"));
        assert!(check("orders.*", false).is_err());
        assert!(check("orders.*", true).is_ok());
        assert!(check("orders.>", true).is_ok());
        assert!(check("orders.>.x", true).is_err());
        assert!(check(&vec!["a"; 17].join("."), false).is_err());
        assert!(check(&"a".repeat(256), false).is_err());
        assert!(check_name("inventory-v2").is_ok());
        assert!(check_name("a.b").is_err());
    }

    #[test]
    fn patterns() {
        assert!(matches("orders.created", "orders.created"));
        assert!(!matches("orders.created", "orders.created.dlq"));
        assert!(matches("orders.*", "orders.failed"));
        assert!(!matches("orders.*", "orders.failed.x"));
        assert!(matches("orders.>", "orders.failed.x"));
        assert!(!matches("orders.>", "orders"));
        assert!(!matches("orders.>", "billing.failed"));
    }
}

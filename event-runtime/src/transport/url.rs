//! Transport URLs: the parts every broker URL shares
//! (`scheme://[user[:password]@]host[:port][,host...][/path][?key=value&...]`),
//! percent-decoding, and the one redactor used wherever a URL is shown.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::error::TransportError;

/// Query keys whose values are secrets, redacted by [`redact`].
const SECRET_KEYS: &[&str] = &[
    "token",
    "nkey",
    "password",
    "pass",
    "secret",
    "key_password",
];

/// The text shown in place of a secret.
const REDACTED: &str = "***";

/// A transport URL split into its parts, values percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// `nats`, `jetstream`, `kafka`, ...
    pub scheme: String,
    /// The user name, when the URL has user info.
    pub user: Option<String>,
    /// The password, when the user info has a `:`.
    pub password: Option<String>,
    /// `host[:port]` items, as written (comma-separated in the URL).
    pub hosts: Vec<String>,
    /// The path without its leading `/` (a vhost, a database number), empty when absent.
    pub path: String,
    /// `key=value` options in order; a key without `=` has an empty value.
    pub query: Vec<(String, String)>,
}

impl UrlParts {
    /// Splits `url`; an error names the URL with its secrets redacted.
    pub fn parse(url: &str) -> Result<UrlParts, TransportError> {
        let bad = |why: &str| TransportError::config(format!("{}: {why}", redact(url)));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected `scheme://host:port`"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let decode = |s: &str| decode(s).map_err(|_| bad("percent-encoded text is not UTF-8"));
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, password)) => (Some(decode(user)?), Some(decode(password)?)),
                None => (Some(decode(u)?), None),
            },
        };
        let mut options = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            options.push((decode(k)?, decode(v)?));
        }
        Ok(UrlParts {
            scheme: scheme.to_owned(),
            user,
            password,
            hosts: hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            path: decode(path.trim_end_matches('/'))?,
            query: options,
        })
    }
}

/// Percent-decodes URL text; text that decodes to invalid UTF-8 is an error.
pub fn decode(text: &str) -> Result<String, std::str::Utf8Error> {
    percent_decode_str(text).decode_utf8().map(Cow::into_owned)
}

/// `true`/`false` as URL options write them (`1`, `yes`, an empty value for true).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" | "yes" | "" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// The URL with every password, token and key replaced by `***`, for
/// errors, logs and descriptions. Never fails: text that is not a URL is
/// returned with anything after `@` hidden.
///
/// ```
/// use eventwire::transport::url::redact;
/// assert_eq!(redact("nats://alice:s3cret@host:4222?name=a&token=t0k"),
///            "nats://alice:***@host:4222?name=a&token=***");
/// assert_eq!(redact("nats://t0k@host"), "nats://***@host");
/// ```
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("{REDACTED}@{host}"),
            None => url.to_owned(),
        };
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    // `UrlParts::parse` ends the user info at the last `@` before the first
    // `/`; everything up to the last `@` at all is hidden, and the user is
    // shown only where the parser, too, reads it as a user followed by a
    // password (a user without a password is a token).
    let parsed_userinfo_end = authority.split('/').next().and_then(|a| a.rfind('@'));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) if parsed_userinfo_end.is_none_or(|end| user.len() < end) => {
                format!("{user}:{REDACTED}@{hosts}")
            }
            _ => format!("{REDACTED}@{hosts}"),
        },
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}");
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => {
                    out.push_str(k);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

/// Whether a query key names a secret; the key is percent-decoded first,
/// as `UrlParts::parse` decodes it (`%74oken` is `token`).
fn is_secret_key(raw: &str) -> bool {
    let key = percent_decode_str(raw).decode_utf8_lossy();
    SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_part() {
        let p = UrlParts::parse("amqp://u%40x:p%3Aw@h1:5672,h2/vh%2F1?a=1&b&c=%20").unwrap();
        assert_eq!(p.scheme, "amqp");
        assert_eq!(p.user.as_deref(), Some("u@x"));
        assert_eq!(p.password.as_deref(), Some("p:w"));
        assert_eq!(p.hosts, ["h1:5672", "h2"]);
        assert_eq!(p.path, "vh/1");
        assert_eq!(
            p.query,
            [
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("c".into(), " ".into())
            ]
        );
    }

    #[test]
    fn percent_decoding_never_panics_on_multibyte_text() {
        // `%a` followed by a multi-byte character once split a UTF-8 sequence.
        for text in ["%aé", "%é", "%", "%%", "%zz", "é%a", "%e9"] {
            let _ = decode(text);
        }
        assert_eq!(decode("%aé").unwrap(), "%aé");
        assert!(decode("%e9").is_err(), "a lone Latin-1 byte is not UTF-8");
    }

    #[test]
    fn redaction_hides_every_secret() {
        for (url, secret) in [
            ("nats://alice:s3cret@host?bogus=1", "s3cret"),
            ("nats://t0ken@host", "t0ken"),
            ("jetstream://host?token=t0ken", "t0ken"),
            ("nats://host?nkey=SUAXYZ&name=a", "SUAXYZ"),
            ("amqp://guest:gu3st@host/vh", "gu3st"),
            ("redis://:pw0rd@host/0", "pw0rd"),
            ("not a url but:s3cret@host", "s3cret"),
        ] {
            let shown = redact(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
        }
        assert_eq!(redact("memory://"), "memory://");
        assert_eq!(redact("nats://h:4222?name=x"), "nats://h:4222?name=x");
    }

    #[test]
    fn redaction_hides_what_the_parser_reads_as_a_secret() {
        // A token as the parser reads it (the authority ends at the first
        // `/`) was shown as the "user" of a longer user info.
        let url = "nats://t0ken@host:1/x:y@z";
        assert_eq!(UrlParts::parse(url).unwrap().user.as_deref(), Some("t0ken"));
        assert!(!redact(url).contains("t0ken"), "{}", redact(url));
        // Query keys are percent-decoded by the parser: `%74oken` is `token`.
        let url = "nats://host?%74oken=s3cret&Pass%77ord=pw0rd";
        let p = UrlParts::parse(url).unwrap();
        assert_eq!(p.query[0], ("token".into(), "s3cret".into()));
        let shown = redact(url);
        assert!(
            !shown.contains("s3cret") && !shown.contains("pw0rd"),
            "{shown}"
        );
        assert_eq!(redact(&shown), shown);
    }

    #[test]
    fn parse_errors_do_not_show_secrets() {
        let err = UrlParts::parse("nats://alice:s3cret@host/%ff").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}

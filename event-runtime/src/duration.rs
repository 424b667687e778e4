//! The one duration grammar of eventwire, shared by `#[handler(timeout =
//! "...")]` (the macro parses it with the same crate) and transport URLs:
//! humantime's (`250ms`, `30s`, `5m`, `1h 30m`, `7d`; units `ns` to `d`).

use std::time::Duration;

/// A duration that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason}; expected e.g. `250ms`, `30s`, `5m`, `1h 30m`, `7d`")]
pub struct DurationError {
    /// The text given.
    pub input: String,
    /// What humantime reported.
    pub reason: String,
}

/// Parses a duration (`250ms`, `30s`, `1h 30m`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(eventwire::duration::parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
/// assert!(eventwire::duration::parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|e| DurationError {
        input: text.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_from_nanoseconds_to_days() {
        for (text, expected) in [
            ("5ns", Duration::from_nanos(5)),
            ("7us", Duration::from_micros(7)),
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("2h", Duration::from_secs(7200)),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("1h 30m", Duration::from_secs(5400)),
            ("1h30m", Duration::from_secs(5400)),
        ] {
            assert_eq!(parse_duration(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in ["", "30", "s", "-1s", "1 fortnight", "99999999999999999999d"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.to_string().contains("invalid duration"), "{err}");
        }
    }
}

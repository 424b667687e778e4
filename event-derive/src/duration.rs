//! Durations written in attributes, in humantime's grammar (the runtime's
//! too): `"30s"`, `"250ms"`, `"1m 30s"`, `"2d"`.

use std::time::Duration;

/// Parses a duration with `humantime::parse_duration`: numbers with units
/// from `ns` to `d` (and humantime's longer spellings), summed.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!(
            "invalid duration `{text}` ({e}); write a number and a unit, e.g. \"30s\", \"250ms\", \"1m 30s\" or \"2d\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("5ns"), Ok(Duration::from_nanos(5)));
    }

    #[test]
    fn bad_durations_name_the_grammar() {
        for bad in ["3 parsecs", "", "s", "10", "soon"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
            assert!(e.contains("e.g. \"30s\""), "{e}");
        }
    }
}

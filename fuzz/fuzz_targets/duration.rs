//! `duration::parse_duration` (humantime's grammar: handler timeouts and URL
//! options). A parsed duration prints back (humantime) to text that parses to
//! the same duration; errors say what was given.
#![no_main]

use eventwire::duration::parse_duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match parse_duration(text) {
        Ok(d) => {
            assert!(!text.trim().is_empty(), "{text:?} parsed as {d:?}");
            let shown = humantime::format_duration(d).to_string();
            assert_eq!(
                parse_duration(&shown).ok(),
                Some(d),
                "{text:?} -> {shown:?}"
            );
        }
        Err(e) => {
            assert_eq!(e.input, text);
            assert!(e.to_string().contains("invalid duration"), "{e}");
        }
    }
});

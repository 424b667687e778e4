//! `Envelope::from_headers` on raw bytes read as a header block:
//! `name: value` lines up to an empty line, then the payload (the shape of
//! NATS' and HTTP's header blocks; lines need not be valid UTF-8 or well
//! formed). An accepted envelope must survive its own header mapping.
#![no_main]

use eventwire::Envelope;
use eventwire_fuzz::{check_decoded, payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (block, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(block);
    let pairs: Vec<(&str, &str)> = text
        .split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            match line.split_once(':') {
                Some((name, value)) => (name, value.trim_start()),
                None => (line, ""),
            }
        })
        .collect();
    match Envelope::from_headers(pairs, payload(body)) {
        Ok(env) => check_decoded(&env),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

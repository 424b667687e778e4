//! `Envelope::from_headers` on structured input: header pairs (known names in
//! any case, known or arbitrary values) plus a payload. An accepted envelope
//! must survive its own header mapping unchanged, and `validate` never panics.
#![no_main]

use arbitrary::Arbitrary;
use eventwire::Envelope;
use eventwire_fuzz::{check_decoded, payload, Headers};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    headers: Headers,
    payload: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let pairs = input.headers.texts();
    let decoded = Envelope::from_headers(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        payload(&input.payload),
    );
    match decoded {
        Ok(env) => check_decoded(&env),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

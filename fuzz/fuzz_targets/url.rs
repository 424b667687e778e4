//! Transport URLs: the shared parts parser, percent-decoding and redaction
//! (`transport/url.rs`), the NATS URL/config parser (`transport/nats/url.rs`)
//! and the app-level choice (`App::builder().transport_url`, `app/url.rs`).
//!
//! Besides "no panic": redaction is idempotent and never shows a secret the
//! URL carries (the password, a token written as the user, the value of a
//! secret query key); errors and a parsed config's `Debug` never show one
//! either; a redacted URL parses without panicking.
#![no_main]

use eventwire::nats::NatsConfig;
use eventwire::transport::url::{decode, parse_bool, redact, UrlParts};
use eventwire::App;
use libfuzzer_sys::fuzz_target;

/// The query keys whose values are secrets (`SECRET_KEYS` in transport/url.rs).
const SECRET_KEYS: &[&str] = &[
    "token",
    "nkey",
    "password",
    "pass",
    "secret",
    "key_password",
];

/// Text of the error messages and of `NatsConfig`'s `Debug`, which a secret
/// may happen to spell (`pas` is in `password: <redacted>`).
const MESSAGE_TEXT: &str = "invalid transport URL expected `memory://`, `nats://host:port` or \
    `jetstream://host:port` unknown scheme `memory`, `nats` or `jetstream` the `://` transport is \
    not compiled in: enable the `` feature of eventwire expected `scheme://host:port` \
    percent-encoded text is not UTF-8 unexpected path `/`: NATS URLs have none no server address \
    tls_required ``: expected a boolean storage `file` or `memory` replicas 1 to 5 publish_window \
    an integer >= 1 provision `create` or `verify` unknown option `tls_cert` and `tls_key` go \
    together invalid subject prefix stream name use `A-Z`, `a-z`, `0-9`, `_` and `-` no NATS \
    server address invalid duration e.g. `250ms`, `30s`, `5m`, `1h 30m`, `7d` configuration \
    NatsConfig { servers: [\"nats://127.0.0.1:4222\"], name: None, auth: None, \
    auth: Token(<redacted>) auth: NkeySeed(<redacted>) auth: CredentialsFile(\"/\") \
    auth: UserPassword { user: \"\", password: <redacted> }, tls: Tls { required: false, \
    required: true, ca_file: None, client_cert: None }, subject_prefix: None, \
    connect_timeout: 5s, stream: StreamSettings { name: None, dead_letter_name: None, \
    storage: File, storage: Memory, replicas: 1, max_age: None, duplicate_window: 120s, \
    provision: Create, provision: Verify, ack_wait: 30s, publish_window: 256 } } \
    AppBuilder { service: None, selection: All, shutdown_timeout: 30s, .. } \
    Caused by: 0: 1: configuration error: ";

/// The secrets of `url` as `UrlParts::parse` splits it: each raw slice of
/// `url` (still percent-encoded), which the redactor must remove.
fn secret_slices(url: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return out;
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, _) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        match userinfo.split_once(':') {
            Some((_, password)) => out.push(password),
            // A user without a password is a token.
            None => out.push(userinfo),
        }
    }
    for pair in query.split('&') {
        // A key without `=` has no value to hide.
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let key = decode(k).unwrap_or_default();
        if SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s)) {
            out.push(v);
        }
    }
    out
}

/// `url` with the byte ranges of `slices` (sub-slices of it) cut out.
fn without(url: &str, slices: &[&str]) -> String {
    let mut ranges: Vec<(usize, usize)> = slices
        .iter()
        .map(|s| {
            let start = s.as_ptr() as usize - url.as_ptr() as usize;
            (start, start + s.len())
        })
        .collect();
    ranges.sort();
    let mut out = String::new();
    let mut at = 0;
    for (start, end) in ranges {
        if start >= at {
            out.push_str(&url[at..start]);
            at = end;
        }
    }
    out.push_str(&url[at..]);
    out
}

fn lossy_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn check(url: &str) {
    let parts = UrlParts::parse(url);
    let shown = redact(url);
    assert_eq!(
        redact(&shown),
        shown,
        "redaction is not idempotent on {url:?}"
    );
    let nats = NatsConfig::from_url(url);
    let app = App::builder().transport_url(url);

    // A redacted URL is still text to parse without panicking.
    let _ = UrlParts::parse(&shown);
    let _ = NatsConfig::from_url(&shown);
    let _ = App::builder().transport_url(&shown);

    let mut texts = vec![("redacted URL", shown.clone())];
    if let Err(e) = &parts {
        texts.push(("UrlParts error", e.to_string()));
    }
    match &nats {
        Ok(config) => {
            texts.push(("NatsConfig Debug", format!("{config:?}")));
            assert!(!config.servers.is_empty());
            for server in &config.servers {
                let port = server.rsplit_once(':').map_or("", |(_, p)| p);
                assert!(
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                    "server {server:?} has no port"
                );
            }
            if let Some(prefix) = &config.subject_prefix {
                assert!(
                    eventwire::topic::validate_prefix(prefix).is_ok(),
                    "{prefix:?}"
                );
            }
            let _ = config.stream_name();
            let _ = config.dead_letter_stream_name();
        }
        Err(e) => texts.push(("NatsConfig error", e.to_string())),
    }
    match app {
        Ok(builder) => texts.push(("AppBuilder Debug", format!("{builder:?}"))),
        Err(e) => {
            texts.push(("App error", e.to_string()));
            texts.push(("App error Debug", format!("{e:?}")));
        }
    }

    let secrets = secret_slices(url);
    let rest = without(url, &secrets);
    let rest_decoded = lossy_decode(&rest);
    for raw in &secrets {
        let decoded = decode(raw).ok();
        // Only secrets that nothing else in the URL spells (a host named
        // like the password is not a leak), and not `*` (the mask itself).
        let unique = |s: &str| !s.contains('*') && !rest.contains(s) && !rest_decoded.contains(s);
        for (what, text) in &texts {
            // The redacted URL is the rest of the URL verbatim plus `***`
            // and separators, so a secret the rest does not spell must be
            // gone from it. Messages and `Debug` add words of their own, so
            // there only secrets of 8 bytes or more that they do not spell.
            let checked = |s: &str| {
                unique(s)
                    && if *what == "redacted URL" {
                        !s.is_empty()
                    } else {
                        s.len() >= 8 && !MESSAGE_TEXT.contains(s)
                    }
            };
            if checked(raw) {
                assert!(
                    !text.contains(raw),
                    "{what} shows the secret {raw:?} of {url:?}: {text}"
                );
            }
            if let Some(d) = decoded.as_deref().filter(|d| checked(d)) {
                assert!(
                    !text.contains(d),
                    "{what} shows the secret {d:?} of {url:?}: {text}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        // Not UTF-8: only the percent-decoder sees such bytes, escaped.
        let escaped: String = data.iter().map(|b| format!("%{b:02x}")).collect();
        let _ = decode(&escaped);
        return;
    };
    let _ = decode(url);
    let _ = parse_bool(url);
    check(url);
});

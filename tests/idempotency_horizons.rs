//! The start-up check of the idempotency guard, against real nats-server
//! processes (the oldest and the newest installed), JetStream: what `build`
//! logs or refuses when the guard cannot catch every duplicate the
//! transport may deliver.
//!
//! - the default guard is per process: a warning says so (the app cannot
//!   know how many instances run);
//! - a store that forgets a completed event sooner than one ack wait is a
//!   typed validation error; sooner than the redelivery horizon (ack wait ×
//!   attempts + backoff) or the stream's duplicate window, a warning;
//! - a claim timeout below a handler's timeout, a warning.
//!
//! The tests run on a current-thread runtime: everything `build` does is
//! logged on the test's thread, where the capture is installed.

mod support;

use std::time::Duration;

use eventwire::nats::{async_nats, NatsConfig};
use eventwire::prelude::*;
use eventwire::{InMemoryIdempotency, ValidationError, ValidationErrors};
use support::{server_binary, shared_server, unique_prefix, LogCapture, ServerSlot, SharedServer};
use tracing::Level;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.horizons.note")]
struct Note {
    n: u32,
}

/// Default retries (3): 4 attempts.
#[handler(group = "horizons")]
async fn take_note(_evt: Note) {}

#[handler(group = "horizons", timeout = "20m")]
async fn slow_note(_evt: Note) {}

const PER_PROCESS: &str = "if this service runs more than one instance, duplicates across instances are not caught: give `AppBuilder::idempotency` a shared store";

fn builder(url: &str, names: &[&'static str]) -> eventwire::AppBuilder {
    App::builder()
        .service("horizons")
        .transport_url(url)
        .unwrap()
        .handlers(HandlerSelection::names(names.iter().copied()))
}

/// `jetstream://…?prefix=<unique>&ack_wait=5s`: a redelivery horizon of
/// 4 × 5 s + 100 + 200 + 400 ms = 20.7 s for `take_note`.
fn test_url(server: &SharedServer) -> String {
    format!(
        "{}?prefix={}&ack_wait=5s",
        server.url("jetstream"),
        unique_prefix()
    )
}

macro_rules! on_each_server {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn oldest() {
                run(ServerSlot::Oldest).await
            }

            #[tokio::test]
            async fn newest() {
                run(ServerSlot::Newest).await
            }

            async fn run(slot: ServerSlot) {
                match server_binary(slot) {
                    Ok(binary) => {
                        let server = tokio::task::spawn_blocking(move || shared_server(&binary))
                            .await
                            .unwrap();
                        super::$name(server).await
                    }
                    Err(why) => eprintln!("skip: {} on {slot:?} ({why})", stringify!($name)),
                }
            }
        }
    )*};
}

on_each_server!(
    the_default_guard_warns_that_it_is_per_process,
    a_store_that_forgets_before_the_ack_wait_is_refused,
    a_store_that_forgets_before_redelivery_is_reported,
);

/// JetStream with the default guard warns, once; a store given to the
/// builder, a publisher-only app and the in-memory bus do not.
async fn the_default_guard_warns_that_it_is_per_process(server: SharedServer) {
    let (logs, _guard) = LogCapture::install();
    let url = test_url(&server);
    let app = builder(&url, &["take_note"]).build().await.unwrap();
    app.shutdown().await.unwrap();
    assert_eq!(
        logs.warnings_with(PER_PROCESS).len(),
        1,
        "on {}: {:#?}",
        server.binary.version,
        logs.lines()
    );
    // The default store keeps 100 000 keys: the rate above which it
    // forgets too soon is reported (100 000 / 20.7 s).
    let rate = logs.with(Level::INFO, "keeps the last 100000 completed events");
    assert!(
        rate.iter().any(|l| l.contains("above 4831 events/s")),
        "{rate:#?}"
    );

    logs.clear();
    let app = builder(&url, &["take_note"])
        .idempotency(InMemoryIdempotency::default())
        .build()
        .await
        .unwrap();
    app.shutdown().await.unwrap();
    let app = builder(&url, &[]).publisher_only().build().await.unwrap();
    app.shutdown().await.unwrap();
    let app = App::builder()
        .service("horizons")
        .handlers(HandlerSelection::names(["take_note"]))
        .build()
        .await
        .unwrap();
    app.shutdown().await.unwrap();
    assert!(
        logs.warnings_with("instance").is_empty(),
        "{:#?}",
        logs.lines()
    );
}

/// A store that forgets a completed event after 1 s, on a transport that
/// redelivers an unacknowledged one after 5 s: every lost ack would run a
/// handler twice. `build` and `check` refuse it with a typed error.
async fn a_store_that_forgets_before_the_ack_wait_is_refused(server: SharedServer) {
    let url = test_url(&server);
    let store = InMemoryIdempotency::default().with_retention(Duration::from_secs(1));
    let expected = ValidationError::IdempotencyRetention {
        retention: Duration::from_secs(1),
        ack_wait: Duration::from_secs(5),
    };
    let b = builder(&url, &["take_note"]).idempotency(store);
    match b.check().await {
        Err(eventwire::Error::Validation(ValidationErrors(errors))) => {
            assert_eq!(errors, std::slice::from_ref(&expected))
        }
        other => panic!("check on {}: {other:?}", server.binary.version),
    }
    match b.build().await {
        Err(eventwire::Error::Validation(ValidationErrors(errors))) => {
            assert_eq!(errors, std::slice::from_ref(&expected));
            let text = errors[0].to_string();
            assert!(
                text.contains("after 1s") && text.contains("ack wait 5s"),
                "{text}"
            );
        }
        other => panic!("build on {}: {other:?}", server.binary.version),
    }
}

/// Retention shorter than the redelivery horizon (20.7 s) or than the
/// stream's duplicate window (that of the stream as it exists on the
/// server, not the URL's), and a claim timeout below a handler's timeout:
/// warnings naming the figures. A store that keeps long enough: none.
async fn a_store_that_forgets_before_redelivery_is_reported(server: SharedServer) {
    let url = test_url(&server);
    // The stream exists already, with a duplicate window of 10 minutes.
    let config = NatsConfig::from_url(&url).unwrap();
    let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    async_nats::jetstream::new(raw)
        .create_stream(async_nats::jetstream::stream::Config {
            name: config.stream_name(),
            subjects: vec![config.subject("test.horizons.note")],
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .unwrap();
    let (logs, _guard) = LogCapture::install();

    let keep = |retention: u64| {
        InMemoryIdempotency::default().with_retention(Duration::from_secs(retention))
    };
    let app = builder(&url, &["take_note"])
        .idempotency(keep(10))
        .build()
        .await
        .unwrap();
    app.shutdown().await.unwrap();
    let horizon = logs.warnings_with("may get it again up to 20s 700ms");
    assert_eq!(horizon.len(), 1, "{:#?}", logs.lines());
    assert!(
        horizon[0].contains("after 10s") && horizon[0].contains("`take_note`"),
        "{horizon:?}"
    );
    let window = logs.warnings_with("drops re-published event ids for 10m");
    assert_eq!(window.len(), 1, "{:#?}", logs.lines());

    // Longer than the horizon, shorter than the stream's window.
    logs.clear();
    let app = builder(&url, &["take_note"])
        .idempotency(keep(300))
        .build()
        .await
        .unwrap();
    app.shutdown().await.unwrap();
    let warnings = logs.with(Level::WARN, "");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("drops re-published event ids for 10m")
            && warnings[0].contains("for only 5m"),
        "{warnings:?}"
    );

    // A handler that may run 20 minutes, claims taken for dead after 1.
    logs.clear();
    let app = builder(&url, &["slow_note"])
        .idempotency(keep(3600).with_claim_timeout(Duration::from_secs(60)))
        .build()
        .await
        .unwrap();
    app.shutdown().await.unwrap();
    let claims = logs.warnings_with("takes a claim for dead after 1m");
    assert_eq!(claims.len(), 1, "{:#?}", logs.lines());
    assert!(
        claims[0].contains("`slow_note` may run for 20m"),
        "{claims:?}"
    );

    // Long enough for all of it: nothing to say.
    logs.clear();
    let app = builder(&url, &["take_note"])
        .idempotency(keep(3600))
        .build()
        .await
        .unwrap();
    app.shutdown().await.unwrap();
    assert!(logs.with(Level::WARN, "").is_empty(), "{:#?}", logs.lines());
}

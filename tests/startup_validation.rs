//! Start-up validation: typed errors for impossible options, missing state,
//! selections and bad configuration.

use eventwire::app::{UrlError, UrlErrorKind};
use eventwire::prelude::*;
use eventwire::{Error, ValidationError};

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(topic = "test.validation.replay")]
struct Replayed {
    n: u32,
}

#[handler(group = "replayers", start = "all")]
async fn replay_everything(_evt: Replayed) {}

#[derive(Clone)]
struct Db;

#[handler(group = "needs-state")]
async fn needs_db(_evt: Replayed, State(_db): State<Db>) {}

fn all_errors(err: Error) -> Vec<ValidationError> {
    match err {
        Error::Validation(v) => v.0,
        other => panic!("expected validation errors, got {other}"),
    }
}

#[tokio::test]
async fn missing_state_is_a_start_up_error() {
    let err = App::builder()
        .service("svc")
        .handlers(HandlerSelection::names(["needs_db"]))
        .build()
        .await
        .unwrap_err();
    let errors = all_errors(err);
    assert_eq!(
        errors,
        [ValidationError::MissingState {
            handler: "needs_db",
            type_name: "startup_validation::Db",
        }]
    );
    // Given the state, the same selection starts.
    let app = App::builder()
        .service("svc")
        .handlers(HandlerSelection::names(["needs_db"]))
        .state(Db)
        .build()
        .await
        .unwrap();
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_selection_naming_nothing_is_an_error() {
    let err = App::builder()
        .service("svc")
        .handlers(HandlerSelection::groups(["replayers", "no-such-group"]))
        .build()
        .await
        .unwrap_err();
    let errors = all_errors(err);
    assert!(errors.contains(&ValidationError::UnknownSelection {
        what: "group",
        value: "no-such-group".into(),
    }));
}

#[tokio::test]
async fn the_service_name_must_be_a_subject_token() {
    let err = App::builder()
        .service("my service")
        .handlers(HandlerSelection::names(["needs_db"]))
        .state(Db)
        .build()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("invalid service name `my service`"), "{text}");
}

#[tokio::test]
async fn check_validates_without_starting_anything() {
    let builder = App::builder()
        .service("svc")
        .handlers(HandlerSelection::names(["replay_everything"]));
    let text = builder.check().await.unwrap_err().to_string();
    assert!(
        text.contains("`start = \"all\"` is not supported by the memory transport"),
        "{text}"
    );
}

#[tokio::test]
async fn the_test_harness_accepts_jetstream_only_options() {
    let app = eventwire::testing::TestApp::builder()
        .handlers(HandlerSelection::names(["replay_everything"]))
        .build()
        .await
        .unwrap();
    app.publish(&Replayed { n: 1 }).await.unwrap();
    app.wait_idle().await;
    assert_eq!(app.succeeded("replay_everything"), 1);
    app.shutdown().await.unwrap();
}

#[test]
fn transport_urls_are_checked() {
    assert!(App::builder().transport_url("memory://").is_ok());
    assert!(App::builder()
        .transport_url("kafka://localhost:9092")
        .is_ok());
    match App::builder().transport_url("mqtt://localhost:1883") {
        Err(Error::Url(e)) => {
            assert_eq!(e.url, "mqtt://localhost:1883");
            assert!(
                matches!(&e.kind, UrlErrorKind::UnknownScheme(s) if s == "mqtt"),
                "{e}"
            );
            assert!(e.to_string().contains("unknown scheme `mqtt`"), "{e}");
        }
        other => panic!("expected a URL error, got {other:?}"),
    }
    assert!(matches!(
        App::builder().transport_url("localhost"),
        Err(Error::Url(UrlError {
            kind: UrlErrorKind::MissingScheme,
            ..
        }))
    ));
}

#[tokio::test]
async fn a_publisher_only_app_starts_beside_handlers_it_could_not_run() {
    // This binary links `replay_everything` (`start = "all"`: no replay on
    // the memory bus) and `needs_db` (state not given): an app running them
    // cannot start here, a front end that only publishes can.
    let bus = eventwire::MemoryTransport::new().with_recording();
    let app = App::builder()
        .service("front")
        .transport(bus.clone())
        .publisher_only()
        .build()
        .await
        .unwrap();
    assert!(app.handler_names().is_empty());
    app.publisher().publish(&Replayed { n: 1 }).await.unwrap();
    assert_eq!(bus.published().len(), 1);
    // No consumer was created, so nothing is left queued for one.
    bus.wait_idle().await;
    assert_eq!(bus.outstanding(), 0);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn check_reports_missing_state_as_build_would() {
    let builder = App::builder()
        .service("svc")
        .handlers(HandlerSelection::names(["needs_db"]));
    let errors = all_errors(builder.check().await.unwrap_err());
    assert_eq!(
        errors,
        [ValidationError::MissingState {
            handler: "needs_db",
            type_name: "startup_validation::Db",
        }]
    );
    App::builder()
        .service("svc")
        .handlers(HandlerSelection::names(["needs_db"]))
        .state(Db)
        .check()
        .await
        .unwrap();
}

#[tokio::test]
async fn errors_read_well_from_main_and_never_show_secrets() {
    // `fn main() -> eventwire::Result<()>` prints the error with `Debug`.
    let err = App::builder()
        .transport_url("nats://alice:s3cret@127.0.0.1:1?bogus=1&token=t0k3n")
        .unwrap_err();
    let shown = format!("{err:?}");
    assert!(
        shown.starts_with("invalid transport URL `nats://alice:***@127.0.0.1:1?bogus=1&token=***`"),
        "{shown}"
    );
    assert!(shown.contains("unknown option `bogus`"), "{shown}");
    for secret in ["s3cret", "t0k3n"] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!err.to_string().contains(secret), "{err}");
    }

    // A failure with causes prints each of them once, one per line.
    let err = App::builder()
        .service("svc")
        .handlers(HandlerSelection::none())
        .transport_url("nats://127.0.0.1:1?connect_timeout=500ms")
        .unwrap()
        .build()
        .await
        .unwrap_err();
    let shown = format!("{err:?}");
    assert!(
        shown.starts_with("cannot connect to NATS at nats://127.0.0.1:1\n\nCaused by:\n    0: "),
        "{shown}"
    );
    assert!(
        !shown.contains("Transport("),
        "not the derived Debug: {shown}"
    );
    let first_cause = shown.lines().nth(3).unwrap().trim_start_matches("    0: ");
    assert_eq!(shown.matches(first_cause).count(), 1, "{shown}");
}

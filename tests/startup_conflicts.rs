//! Start-up validation of registry conflicts: a program with two event types
//! on one topic and two handlers with one name does not start, and every
//! problem is reported at once.

use eventwire::prelude::*;
use eventwire::{Error, MemoryTransport, Registry, ValidationError};

// Two event types claiming one topic.
#[derive(Debug, Serialize, Deserialize, Event)]
#[event(topic = "test.validation.clash")]
struct ClashA {
    a: u32,
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(topic = "test.validation.clash")]
struct ClashB {
    b: u32,
}

mod first {
    use super::*;
    #[handler(group = "dupes")]
    pub async fn same_name(_evt: ClashA) {}
}

mod second {
    use super::*;
    #[handler(group = "dupes")]
    pub async fn same_name(_evt: ClashB) {}
}

// Two versions of one topic that are not linked by `upcast_from`.
#[allow(dead_code)] // only registered, never built
#[derive(Debug, Serialize, Deserialize, Event)]
#[event(topic = "test.validation.versions", version = 1)]
struct StrayV1 {
    a: u32,
}

#[allow(dead_code)] // only registered, never built
#[derive(Debug, Serialize, Deserialize, Event)]
#[event(topic = "test.validation.versions", version = 2)]
struct Unlinked {
    a: u32,
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(topic = "test.validation.replay")]
struct Replayed {
    n: u32,
}

#[handler(group = "replayers", start = "all")]
async fn replay_everything(_evt: Replayed) {}

fn all_errors(err: Error) -> Vec<ValidationError> {
    match err {
        Error::Validation(v) => v.0,
        other => panic!("expected validation errors, got {other}"),
    }
}

#[test]
fn registry_conflicts_are_reported_together() {
    let errors = Registry::global()
        .validate(&MemoryTransport::new(), "svc", &HandlerSelection::all())
        .unwrap_err();
    let text = errors.to_string();
    assert!(
        errors.0.contains(&ValidationError::DuplicateTopic {
            topic: "test.validation.clash",
            first: "startup_conflicts::ClashA",
            second: "startup_conflicts::ClashB",
        }),
        "{text}"
    );
    assert!(
        errors.0.contains(&ValidationError::DuplicateHandler {
            name: "same_name",
            first: "startup_conflicts::first::same_name",
            second: "startup_conflicts::second::same_name",
        }),
        "{text}"
    );
    assert!(
        errors.0.contains(&ValidationError::UnsupportedOption {
            handler: "replay_everything",
            option: "start = \"all\"",
            transport: "memory",
            reason: "it keeps no history to replay; use the jetstream transport",
        }),
        "{text}"
    );
    assert!(
        text.contains("give one of them another `#[event(topic = ...)]`"),
        "{text}"
    );
}

#[tokio::test]
async fn build_fails_with_every_problem_listed() {
    let err = App::builder().service("svc").build().await.unwrap_err();
    let errors = all_errors(err);
    assert!(errors.len() >= 3, "{errors:?}");
}

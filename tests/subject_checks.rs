//! Nothing reaches a subject unchecked: every transport refuses a topic
//! that is not a concrete eventwire topic (a wildcard, upper case, a server
//! API subject such as `$JS.API.STREAM.DELETE.<stream>`), for publishes and
//! dead letters alike, whatever built the envelope; an empty event id is
//! refused before anything is sent.

mod support;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use eventwire::nats::{JetStreamTransport, NatsConfig, NatsTransport};
use eventwire::prelude::*;
use eventwire::transport::ProvisionPlan;
use eventwire::{DeadLetter, Envelope, HandlerErrorKind, MemoryTransport, PublishError, Transport};
use support::{server_binaries, shared_server, unique_prefix};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.subjects.ok")]
struct Ok1 {
    n: u32,
}

const HOSTILE: &[&str] = &[
    ">",
    "a.*",
    "a.>",
    "A.B",
    "$JS.API.STREAM.DELETE.EVENTWIRE",
    "a..b",
    "",
    "a b",
];

fn envelope(topic: &str) -> Envelope {
    let mut env =
        Envelope::for_event(&Ok1 { n: 1 }, Arc::from("subjects"), Default::default()).unwrap();
    env.topic = Cow::Owned(topic.to_owned());
    env
}

fn letter(topic: &str) -> DeadLetter {
    DeadLetter {
        envelope: Arc::new(envelope("test.subjects.ok")),
        error: "boom".into(),
        error_kind: HandlerErrorKind::Permanent,
        handler: "h".into(),
        group: "g".into(),
        attempts: 1,
        stream_sequence: None,
        failed_at: SystemTime::now(),
        topic: topic.to_owned(),
        invalid_topic: None,
    }
}

async fn refuses_hostile_subjects(transport: &dyn Transport) {
    for topic in HOSTILE {
        match transport.publish(envelope(topic)).await {
            Err(PublishError::Topic(_)) => {}
            other => panic!("{}: publish to {topic:?} gave {other:?}", transport.kind()),
        }
        match transport.dead_letter(letter(topic)).await {
            Err(PublishError::Topic(_)) => {}
            other => panic!(
                "{}: dead letter to {topic:?} gave {other:?}",
                transport.kind()
            ),
        }
    }
    // Still usable.
    transport
        .publish(envelope("test.subjects.ok"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_memory_bus_refuses_hostile_subjects() {
    let bus = MemoryTransport::new().with_recording();
    refuses_hostile_subjects(&bus).await;
    assert_eq!(
        bus.published().len(),
        1,
        "only the valid event was accepted"
    );
    assert!(bus.dead_letters().is_empty());
}

#[tokio::test]
async fn an_empty_event_id_is_refused_before_sending() {
    let app = App::builder()
        .service("subjects")
        .publisher_only()
        .build()
        .await
        .unwrap();
    let err = app
        .publisher()
        .publish_with(&Ok1 { n: 1 }, eventwire::PublishOptions::new().id(""))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::EmptyId), "{err:?}");
    let mut env = envelope("test.subjects.ok");
    env.id = "".into();
    let err = app.publisher().publish_envelope(env).await.unwrap_err();
    assert!(matches!(err, PublishError::EmptyId), "{err:?}");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn nats_and_jetstream_refuse_hostile_subjects_and_the_stream_survives() {
    for binary in server_binaries() {
        let server = shared_server(&binary);
        let prefix = unique_prefix();
        let core = NatsTransport::connect(NatsConfig::from_url(&server.url("nats")).unwrap())
            .await
            .unwrap();
        refuses_hostile_subjects(&core).await;
        core.close().await.unwrap();

        let config = NatsConfig::from_url(&server.url("jetstream"))
            .unwrap()
            .subject_prefix(prefix.clone());
        let stream = config.stream_name();
        let js = JetStreamTransport::connect(config).await.unwrap();
        js.prepare(&ProvisionPlan {
            topics: vec!["test.subjects.ok"],
            dead_letter_topics: vec![],
        })
        .await
        .unwrap();
        refuses_hostile_subjects(&js).await;
        // The stream a `$JS.API.STREAM.DELETE` subject would have deleted.
        let mut events = js
            .context()
            .get_stream(&stream)
            .await
            .unwrap_or_else(|e| panic!("{}: stream {stream} is gone: {e}", binary.version));
        let info = events.info().await.unwrap();
        assert_eq!(
            info.state.messages, 1,
            "{}: only the valid event is stored",
            binary.version
        );
        js.close().await.unwrap();
    }
}

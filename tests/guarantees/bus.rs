//! The transport under test: how a guarantee builds apps on it, sees its
//! dead letters, and learns that nothing more will arrive.
//!
//! One [`Bus`] per test. Memory: one in-memory bus shared by the test's apps.
//! NATS and JetStream: the nats-server of the chosen version shared by the
//! whole test binary ([`shared_server`]), a subject prefix of the test's own
//! (so its own JetStream stream and consumers), and a connection per app,
//! as separate processes would have.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::nats::{async_nats, JetStreamTransport, NatsConfig, NatsTransport};
use eventwire::prelude::*;
use eventwire::{HandlerErrorKind, MemoryTransport, PublishOptions, Transport as _};
use futures_util::StreamExt;

use crate::features::{Features, TransportKind};
use crate::support::{
    eventually, eventually_async, server_binary, shared_server, unique_prefix, Instance, Recorder,
    SharedServer, SENTINEL_HEADER,
};

/// The service name of every app of the suite (`ce-source`).
pub const SERVICE: &str = "guarantees";

/// How long a guarantee waits for what it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A dead letter as any transport delivers it: from the in-memory bus's
/// store, or read off the wire (`eventwire-dlq-*` headers) on NATS.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The original event's id (`ce-id`).
    pub event_id: String,
    /// Where the dead letter went (`eventwire.dlq.<topic>` by default).
    pub topic: String,
    /// The original event's topic (`ce-type`).
    pub event_type: String,
    pub schema_version: u32,
    pub error: String,
    pub kind: HandlerErrorKind,
    pub handler: String,
    pub group: String,
    pub attempts: u32,
    pub stream_sequence: Option<u64>,
    pub has_failure_time: bool,
    /// The original payload, unchanged.
    pub payload: Vec<u8>,
}

enum Connection {
    Nats(NatsTransport),
    JetStream(JetStreamTransport),
}

struct Remote {
    server: SharedServer,
    scheme: &'static str,
    prefix: String,
    /// A plain client: dead-letter tap, JetStream consumer state.
    client: async_nats::Client,
    letters: Arc<Mutex<Vec<Letter>>>,
    connections: Mutex<Vec<Connection>>,
}

/// See the [module docs](self).
pub struct Bus {
    kind: TransportKind,
    memory: Option<MemoryTransport>,
    remote: Option<Remote>,
    instances: AtomicU32,
}

impl Bus {
    /// Connects to the transport of `kind`, and reads its capabilities.
    /// `Err` names why this transport cannot run here (no second server).
    pub async fn connect(kind: TransportKind) -> Result<(Bus, Features), String> {
        let (slot, scheme) = match kind {
            TransportKind::Memory => {
                let memory = MemoryTransport::new();
                let features = Features::of(kind, "memory".into(), &memory);
                let bus = Bus {
                    kind,
                    memory: Some(memory),
                    remote: None,
                    instances: AtomicU32::new(0),
                };
                return Ok((bus, features));
            }
            TransportKind::Nats(slot) => (slot, "nats"),
            TransportKind::JetStream(slot) => (slot, "jetstream"),
        };
        let binary = server_binary(slot)?;
        let server = tokio::task::spawn_blocking(move || shared_server(&binary))
            .await
            .unwrap();
        let client = async_nats::connect(format!("127.0.0.1:{}", server.port))
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", server.binary.version));
        let prefix = unique_prefix();
        let letters = Arc::new(Mutex::new(Vec::new()));
        let mut tap = client
            .subscribe(format!("{prefix}.eventwire.dlq.>"))
            .await
            .unwrap();
        client.flush().await.unwrap();
        {
            let letters = letters.clone();
            let prefix = prefix.clone();
            tokio::spawn(async move {
                while let Some(msg) = tap.next().await {
                    letters.lock().unwrap().push(letter_of(&prefix, &msg));
                }
            });
        }
        let remote = Remote {
            server,
            scheme,
            prefix,
            client,
            letters,
            connections: Mutex::new(Vec::new()),
        };
        let bus = Bus {
            kind,
            memory: None,
            remote: Some(remote),
            instances: AtomicU32::new(0),
        };
        let probe = bus.connection("").await;
        let remote = bus.remote.as_ref().unwrap();
        let (major, minor, patch) = remote.server.binary.semver();
        let label = format!("{scheme} (nats-server {major}.{minor}.{patch})");
        let features = match &probe {
            Connection::Nats(t) => Features::of(kind, label, t),
            Connection::JetStream(t) => Features::of(kind, label, t),
        };
        remote.connections.lock().unwrap().push(probe);
        Ok((bus, features))
    }

    /// The URL of this test's transport, with extra query options.
    pub fn url(&self, options: &str) -> Option<String> {
        let r = self.remote.as_ref()?;
        let mut url = format!("{}?prefix={}", r.server.url(r.scheme), r.prefix);
        if !options.is_empty() {
            url.push('&');
            url.push_str(options);
        }
        Some(url)
    }

    async fn connection(&self, options: &str) -> Connection {
        let url = self.url(options).unwrap();
        let config = NatsConfig::from_url(&url).unwrap();
        match self.kind {
            TransportKind::Nats(_) => {
                Connection::Nats(NatsTransport::connect(config).await.unwrap())
            }
            TransportKind::JetStream(_) => {
                Connection::JetStream(JetStreamTransport::connect(config).await.unwrap())
            }
            TransportKind::Memory => unreachable!(),
        }
    }

    /// An app running `handlers` as instance `Instance(n)` (the next number),
    /// recording into `rec`, on a connection of its own.
    pub async fn app(&self, handlers: &[&str], rec: &Recorder) -> App {
        self.app_with(handlers, rec, "", |b| b).await
    }

    /// [`Bus::app`] with transport URL options (JetStream: `ack_wait=1s`)
    /// and more builder settings.
    pub async fn app_with(
        &self,
        handlers: &[&str],
        rec: &Recorder,
        url_options: &str,
        configure: impl FnOnce(eventwire::AppBuilder) -> eventwire::AppBuilder,
    ) -> App {
        let instance = Instance(self.instances.fetch_add(1, Ordering::Relaxed));
        let builder = App::builder()
            .service(SERVICE)
            .handlers(HandlerSelection::names(handlers.iter().copied()))
            .state(rec.clone())
            .state(instance)
            .observer(rec.clone());
        let builder = match (&self.memory, &self.remote) {
            (Some(memory), _) => builder.transport(memory.clone()),
            (None, Some(remote)) => {
                let connection = self.connection(url_options).await;
                let builder = match &connection {
                    Connection::Nats(t) => builder.transport(t.clone()),
                    Connection::JetStream(t) => builder.transport(t.clone()),
                };
                remote.connections.lock().unwrap().push(connection);
                builder
            }
            (None, None) => unreachable!(),
        };
        configure(builder)
            .build()
            .await
            .unwrap_or_else(|e| panic!("build an app with {handlers:?}: {e}"))
    }

    /// Waits until nothing more will be delivered: every event published so
    /// far by `publisher` went through every consumer, and no redelivery is
    /// pending. Then a test may assert exact counts ("nothing more arrives").
    ///
    /// - memory: the bus reports idle (nothing queued, in flight or waiting
    ///   for a retry);
    /// - JetStream: the server reports every consumer of the test's stream
    ///   with nothing pending and nothing awaiting an ack;
    /// - core NATS has no such report: `sentinel` is published (from the
    ///   same connection, after the events) until every `(handler, instance)`
    ///   of `consumers` has handled one. NATS delivers one publisher's
    ///   messages to a subscriber in order, so a consumer that handled a
    ///   sentinel has taken every earlier event; and a core NATS server
    ///   never redelivers.
    pub async fn drain<E: Event>(
        &self,
        publisher: &Publisher,
        sentinel: &E,
        rec: &Recorder,
        consumers: &[(&'static str, u32)],
    ) {
        match self.kind {
            TransportKind::Memory => {
                let bus = self.memory.as_ref().unwrap();
                tokio::time::timeout(PATIENCE, bus.wait_idle())
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "the memory bus was not idle after {PATIENCE:?}: {} outstanding",
                            bus.outstanding()
                        )
                    });
            }
            TransportKind::JetStream(_) => {
                let r = self.remote.as_ref().unwrap();
                let js = async_nats::jetstream::new(r.client.clone());
                let stream_name = NatsConfig::from_url(&self.url("").unwrap())
                    .unwrap()
                    .stream_name();
                eventually_async(PATIENCE, "every JetStream consumer idle", || {
                    let js = js.clone();
                    let stream_name = stream_name.clone();
                    async move {
                        let Ok(stream) = js.get_stream(&stream_name).await else {
                            return false;
                        };
                        let mut infos = stream.consumers();
                        let mut idle = true;
                        while let Some(info) = infos.next().await {
                            let Ok(info) = info else { return false };
                            idle &= info.num_pending == 0 && info.num_ack_pending == 0;
                        }
                        idle
                    }
                })
                .await;
            }
            TransportKind::Nats(_) => {
                let mut handlers: Vec<&str> = consumers.iter().map(|(h, _)| *h).collect();
                handlers.sort_unstable();
                handlers.dedup();
                let deadline = std::time::Instant::now() + PATIENCE;
                while !consumers.iter().all(|(h, i)| rec.saw_sentinel(h, *i)) {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "sentinels did not reach every consumer of {consumers:?}"
                    );
                    let id = publisher
                        .publish_with(sentinel, PublishOptions::new().header(SENTINEL_HEADER, "1"))
                        .await
                        .unwrap();
                    // A queue group hands it to one of its instances.
                    eventually(PATIENCE, "a sentinel through every group", || {
                        handlers.iter().all(|h| rec.saw_sentinel_id(h, id.as_str()))
                    })
                    .await;
                }
            }
        }
    }

    /// Dead letters so far.
    pub fn dead_letters(&self) -> Vec<Letter> {
        match (&self.memory, &self.remote) {
            (Some(memory), _) => memory
                .dead_letters()
                .into_iter()
                .map(|l| Letter {
                    event_id: l.envelope.id.to_string(),
                    topic: l.topic.clone(),
                    event_type: l.envelope.topic.to_string(),
                    schema_version: l.envelope.schema_version,
                    error: l.error.clone(),
                    kind: l.error_kind,
                    handler: l.handler.clone(),
                    group: l.group.clone(),
                    attempts: l.attempts,
                    stream_sequence: l.stream_sequence,
                    has_failure_time: true,
                    payload: l.envelope.payload.to_vec(),
                })
                .collect(),
            (None, Some(r)) => r.letters.lock().unwrap().clone(),
            (None, None) => unreachable!(),
        }
    }

    /// Dead letters the transport keeps (memory: in the bus; JetStream: in
    /// the dead-letter stream); `None` where they are only published.
    pub async fn stored_dead_letters(&self) -> Option<u64> {
        match self.kind {
            TransportKind::Memory => Some(self.memory.as_ref()?.dead_letters().len() as u64),
            TransportKind::Nats(_) => None,
            TransportKind::JetStream(_) => {
                let r = self.remote.as_ref()?;
                let js = async_nats::jetstream::new(r.client.clone());
                let name = NatsConfig::from_url(&self.url("")?)
                    .ok()?
                    .dead_letter_stream_name();
                let mut stream = js.get_stream(name).await.ok()?;
                Some(stream.info().await.ok()?.state.messages)
            }
        }
    }

    /// Publishes that failed inside the NATS client (not counting the typed
    /// refusals before a send); `None` on the memory bus.
    pub fn failed_publishes(&self) -> Option<u64> {
        let r = self.remote.as_ref()?;
        let connections = r.connections.lock().unwrap();
        Some(
            connections
                .iter()
                .map(|c| match c {
                    Connection::Nats(t) => t.stats().failed_publishes,
                    Connection::JetStream(t) => t.stats().failed_publishes,
                })
                .sum(),
        )
    }

    /// Closes every connection the test opened.
    pub async fn finish(self) {
        if let Some(r) = self.remote {
            let connections = std::mem::take(&mut *r.connections.lock().unwrap());
            for c in connections {
                let closed = match &c {
                    Connection::Nats(t) => t.close().await,
                    Connection::JetStream(t) => t.close().await,
                };
                closed.unwrap();
            }
        }
    }
}

fn letter_of(prefix: &str, msg: &async_nats::Message) -> Letter {
    let headers = msg.headers.clone().unwrap_or_default();
    let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    let kind = match get("eventwire-dlq-error-kind").as_deref() {
        Some("retryable") => HandlerErrorKind::Retryable,
        Some("permanent") => HandlerErrorKind::Permanent,
        Some("decode") => HandlerErrorKind::Decode,
        Some("timeout") => HandlerErrorKind::Timeout,
        Some("panic") => HandlerErrorKind::Panic,
        other => panic!("dead letter with error kind {other:?}"),
    };
    Letter {
        event_id: get("ce-id").unwrap_or_default(),
        topic: msg
            .subject
            .as_str()
            .strip_prefix(prefix)
            .and_then(|s| s.strip_prefix('.'))
            .unwrap_or(msg.subject.as_str())
            .to_owned(),
        event_type: get("ce-type").unwrap_or_default(),
        schema_version: get("ce-schemaversion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        error: get("eventwire-dlq-error").unwrap_or_default(),
        kind,
        handler: get("eventwire-dlq-handler").unwrap_or_default(),
        group: get("eventwire-dlq-group").unwrap_or_default(),
        attempts: get("eventwire-dlq-attempts")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        stream_sequence: get("eventwire-dlq-stream-sequence").and_then(|v| v.parse().ok()),
        has_failure_time: get("eventwire-dlq-failed-at").is_some(),
        payload: msg.payload.to_vec(),
    }
}

//! JetStream: streams provisioned at start-up, durable pull consumers,
//! at-least-once delivery with server-side redelivery and de-duplication.
//!
//! - Streams: one for events (subjects = every topic of the program), one
//!   for dead letters. Created, or extended with missing topics, at start-up
//!   (`provision=create`); or only checked (`provision=verify`).
//! - Publishing waits for the server's acknowledgement; `Nats-Msg-Id` is the
//!   event id, so a publish retried within the duplicate window is stored
//!   once. `publish_batch` pipelines up to `publish_window` acknowledgements.
//! - One durable pull consumer per (group, handler); `concurrency` is its
//!   `max_ack_pending`. A delivery is acknowledged only after the handler
//!   succeeded; a failure is a nak with the retry policy's delay (the attempt
//!   number is the server's delivery count); the last attempt or a permanent
//!   error publishes a dead letter and then terminates the message; a failed
//!   dead-letter publish leaves the message unacknowledged. Running handlers
//!   send progress signals so they are not redelivered while they work.
//! - A consumer that was deleted, missed heartbeats or lost its server is
//!   recreated by itself (logged, and counted in [`NatsStats`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream;
use async_nats::jetstream::{self, Context};
use async_nats::Client;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, Mutex};
use tokio_util::task::TaskTracker;

use super::config::{NatsConfig, Provision, Storage};
use super::stats::{connect, NatsStats, StatsCounters};
use super::wire;
use crate::envelope::Envelope;
use crate::handler::StartPosition;
use crate::publisher::PublishError;
use crate::stop::StopSignal;
use crate::transport::{
    AckHandle, Acker, Capabilities, Completion, ConsumerSpec, DeadLetter, Delivery, ProvisionPlan,
    PublishFuture, Settle, Subscription, Transport, TransportError,
};

/// How long a pull waits for a heartbeat before the consumer is recreated.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long an ephemeral consumer survives without a subscriber.
const EPHEMERAL_INACTIVE: Duration = Duration::from_secs(300);

/// The JetStream transport (`jetstream://host:4222`).
#[derive(Clone)]
pub struct JetStreamTransport {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    js: Context,
    config: NatsConfig,
    stats: Arc<StatsCounters>,
    closed: StopSignal,
    tasks: TaskTracker,
}

impl std::fmt::Debug for JetStreamTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamTransport")
            .field("config", &self.inner.config)
            .finish()
    }
}

fn io(
    context: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> TransportError {
    TransportError::io(context, e)
}

impl JetStreamTransport {
    /// Connects and checks that the server has JetStream enabled.
    pub async fn connect(config: NatsConfig) -> Result<Self, TransportError> {
        config.validate()?;
        let stats = Arc::new(StatsCounters::default());
        let client = connect(&config, stats.clone()).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .ack_timeout(Duration::from_secs(10))
            .max_ack_inflight(config.stream.publish_window.max(1))
            .backpressure_on_inflight(true)
            .build(client.clone());
        check_jetstream(&client).await?;
        Ok(JetStreamTransport {
            inner: Arc::new(Inner {
                client,
                js,
                config,
                stats,
                closed: StopSignal::default(),
                tasks: TaskTracker::new(),
            }),
        })
    }

    /// What the connection lost or survived so far.
    pub fn stats(&self) -> NatsStats {
        self.inner.stats.snapshot()
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The JetStream context.
    pub fn context(&self) -> &Context {
        &self.inner.js
    }

    /// The settings.
    pub fn config(&self) -> &NatsConfig {
        &self.inner.config
    }
}

/// Asks the server for its JetStream account info. async-nats' typed
/// `query_account` cannot parse a 2.9 server's answer, so the answer is read
/// as plain JSON: enough to tell "enabled" from "not enabled".
async fn check_jetstream(client: &Client) -> Result<(), TransportError> {
    let not_enabled = "JetStream is not enabled on this server (start nats-server with `-js`)";
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("$JS.API.INFO", bytes::Bytes::new()),
    )
    .await
    .map_err(|_| TransportError::Unavailable(format!("{not_enabled}: no answer within 10 s")))?
    .map_err(|e| io(not_enabled, e))?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| io("unreadable JetStream account info", e))?;
    if let Some(error) = info.get("error") {
        return Err(TransportError::Unavailable(format!(
            "{not_enabled}: {error}"
        )));
    }
    Ok(())
}

/// Whether stream subject `have` covers subject `want` (both may hold wildcards).
fn covers(have: &str, want: &str) -> bool {
    let mut h = have.split('.');
    let mut w = want.split('.');
    loop {
        match (h.next(), w.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl Inner {
    /// Creates the stream, adds missing subjects, or (verify) checks them.
    async fn ensure_stream(&self, name: &str, subjects: Vec<String>) -> Result<(), TransportError> {
        let provision = self.config.stream.provision;
        match self.js.get_stream(name).await {
            Ok(mut stream) => {
                let info = stream
                    .info()
                    .await
                    .map_err(|e| io(format!("reading stream `{name}`"), e))?;
                let mut config = info.config.clone();
                let missing: Vec<String> = subjects
                    .into_iter()
                    .filter(|s| !config.subjects.iter().any(|have| covers(have, s)))
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                if provision == Provision::Verify {
                    return Err(TransportError::Config(format!(
                        "stream `{name}` does not cover {}; add these subjects to it, or start with provision=create",
                        missing.join(", ")
                    )));
                }
                tracing::info!(stream = name, subjects = ?missing, "adding subjects to stream");
                config.subjects.extend(missing);
                self.js
                    .update_stream(config)
                    .await
                    .map_err(|e| io(format!("updating stream `{name}`"), e))?;
                Ok(())
            }
            Err(_) if provision == Provision::Verify => Err(TransportError::Config(format!(
                "stream `{name}` does not exist; create it, or start with provision=create"
            ))),
            Err(_) => {
                let s = &self.config.stream;
                let config = stream::Config {
                    name: name.to_owned(),
                    subjects,
                    storage: match s.storage {
                        Storage::File => stream::StorageType::File,
                        Storage::Memory => stream::StorageType::Memory,
                    },
                    num_replicas: s.replicas,
                    max_age: s.max_age.unwrap_or_default(),
                    duplicate_window: s.duplicate_window,
                    ..Default::default()
                };
                tracing::info!(stream = name, subjects = ?config.subjects, "creating stream");
                self.js
                    .create_stream(config)
                    .await
                    .map_err(|e| io(format!("creating stream `{name}`"), e))?;
                Ok(())
            }
        }
    }

    async fn publish_js(&self, envelope: &Envelope) -> Result<(), PublishError> {
        let ack = self.send(envelope).await?;
        ack.await
    }

    /// Sends one publish; the returned future waits for its acknowledgement.
    async fn send(
        &self,
        envelope: &Envelope,
    ) -> Result<BoxFuture<'static, Result<(), PublishError>>, PublishError> {
        if self.closed.is_stopped() {
            return Err(PublishError::Closed);
        }
        let headers = wire::headers(envelope, true)?;
        let size = wire::wire_size(&headers, &envelope.payload);
        let topic = envelope.topic.to_string();
        let failed =
            |e: Box<dyn std::error::Error + Send + Sync>, topic: String, stats: &StatsCounters| {
                StatsCounters::bump(&stats.failed_publishes);
                PublishError::Transport { topic, source: e }
            };
        let ack = self
            .js
            .publish_with_headers(
                self.config.subject(&envelope.topic),
                headers,
                envelope.payload.clone(),
            )
            .await
            .map_err(|e| {
                if e.kind() == async_nats::jetstream::context::PublishErrorKind::MaxPayloadExceeded
                {
                    return wire::payload_too_large(&self.client, &topic, size);
                }
                failed(Box::new(e), topic.clone(), &self.stats)
            })?;
        let stats = self.stats.clone();
        Ok(async move {
            ack.await
                .map(|_| ())
                .map_err(|e| failed(Box::new(e), topic, &stats))
        }
        .boxed())
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        let (subject, headers, payload) = wire::dead_letter_message(&self.config, letter)?;
        let topic = letter.topic.clone();
        let err = |e: Box<dyn std::error::Error + Send + Sync>| PublishError::Transport {
            topic: topic.clone(),
            source: e,
        };
        self.js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| err(Box::new(e)))?
            .await
            .map_err(|e| err(Box::new(e)))?;
        Ok(())
    }

    fn consumer_config(&self, spec: &ConsumerSpec) -> pull::Config {
        pull::Config {
            durable_name: spec.durable.clone(),
            description: Some(format!(
                "eventwire handler `{}` of group `{}`",
                spec.handler, spec.group
            )),
            filter_subject: self.config.subject(spec.topic),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.config.stream.ack_wait,
            // eventwire counts attempts and dead-letters the last one; the
            // server never gives up on a message by itself.
            max_deliver: -1,
            max_ack_pending: spec.concurrency.max(1) as i64,
            deliver_policy: match spec.start {
                StartPosition::New => DeliverPolicy::New,
                StartPosition::All => DeliverPolicy::All,
            },
            inactive_threshold: if spec.durable.is_none() {
                EPHEMERAL_INACTIVE
            } else {
                Duration::ZERO
            },
            ..Default::default()
        }
    }

    /// Creates the consumer or updates it; an existing consumer whose
    /// settings cannot change is used as it is.
    async fn ensure_consumer(
        &self,
        stream_name: &str,
        config: &pull::Config,
    ) -> Result<PullConsumer, TransportError> {
        let stream = self
            .js
            .get_stream(stream_name)
            .await
            .map_err(|e| io(format!("opening stream `{stream_name}`"), e))?;
        match stream.create_consumer(config.clone()).await {
            Ok(c) => Ok(c),
            Err(create_err) => match &config.durable_name {
                Some(name) => match stream.get_consumer::<pull::Config>(name).await {
                    Ok(c) => {
                        tracing::warn!(consumer = %name, error = %create_err, "using the existing consumer: its settings could not be updated");
                        Ok(c)
                    }
                    Err(_) => Err(io(format!("creating consumer `{name}`"), create_err)),
                },
                None => Err(io("creating an ephemeral consumer", create_err)),
            },
        }
    }
}

impl Transport for JetStreamTransport {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable_consumers: true,
            replay: true,
            at_least_once: true,
            max_payload: Some(self.inner.client.server_info().max_payload),
        }
    }

    fn prepare<'a>(&'a self, plan: &'a ProvisionPlan) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            let c = &self.inner.config;
            let subjects = plan.topics.iter().map(|t| c.subject(t)).collect();
            self.inner.ensure_stream(&c.stream_name(), subjects).await?;
            let mut dlq = vec![c.subject("eventwire.dlq.>")];
            dlq.extend(plan.dead_letter_topics.iter().map(|t| c.subject(t)));
            self.inner
                .ensure_stream(&c.dead_letter_stream_name(), dlq)
                .await
        })
    }

    fn publish(&self, envelope: Envelope) -> PublishFuture<'_> {
        Completion::pending(async move { self.inner.publish_js(&envelope).await })
    }

    fn publish_batch(
        &self,
        envelopes: Vec<Envelope>,
    ) -> BoxFuture<'_, Vec<Result<(), PublishError>>> {
        Box::pin(async move {
            let window = self.inner.config.stream.publish_window.max(1);
            let mut results = Vec::with_capacity(envelopes.len());
            let mut acks = FuturesOrdered::new();
            for envelope in &envelopes {
                if acks.len() >= window {
                    if let Some(r) = acks.next().await {
                        results.push(r);
                    }
                }
                match self.inner.send(envelope).await {
                    Ok(ack) => acks.push_back(ack),
                    Err(e) => acks.push_back(std::future::ready(Err(e)).boxed()),
                }
            }
            while let Some(r) = acks.next().await {
                results.push(r);
            }
            results
        })
    }

    fn subscribe(
        &self,
        spec: ConsumerSpec,
    ) -> BoxFuture<'_, Result<Box<dyn Subscription>, TransportError>> {
        Box::pin(async move {
            let stream_name = self.inner.config.stream_name();
            let config = self.inner.consumer_config(&spec);
            let consumer = self.inner.ensure_consumer(&stream_name, &config).await?;
            let (tx, rx) = mpsc::channel(spec.concurrency.max(1));
            let stopped = StopSignal::default();
            let pump = Pump {
                inner: self.inner.clone(),
                stream_name,
                config,
                spec,
                tx,
                stopped: stopped.clone(),
            };
            self.inner.tasks.spawn(pump.run(consumer));
            Ok(Box::new(JsSubscription {
                rx: Mutex::new(rx),
                stopped,
            }) as Box<dyn Subscription>)
        })
    }

    fn dead_letter(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async move { self.inner.dead_letter(&letter).await })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            self.inner.closed.stop();
            self.inner.tasks.close();
            self.inner.tasks.wait().await;
            self.inner
                .client
                .flush()
                .await
                .map_err(|e| io("flushing NATS publishes", e))
        })
    }
}

/// Pulls messages for one consumer into the workers' channel, and rebuilds
/// the consumer when it is lost.
struct Pump {
    inner: Arc<Inner>,
    stream_name: String,
    config: pull::Config,
    spec: ConsumerSpec,
    tx: mpsc::Sender<Delivery>,
    stopped: StopSignal,
}

impl Pump {
    fn name(&self) -> String {
        self.config
            .durable_name
            .clone()
            .unwrap_or_else(|| self.spec.consumer_name())
    }

    async fn run(self, first: PullConsumer) {
        let mut consumer = Some(first);
        let mut recovering = false;
        while !self.stopped.is_stopped() && !self.inner.closed.is_stopped() {
            let c = match consumer.take() {
                Some(c) => c,
                None => match self
                    .inner
                    .ensure_consumer(&self.stream_name, &self.config)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(consumer = %self.name(), error = %e, "consumer not available yet; retrying");
                        self.pause(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            if recovering {
                StatsCounters::bump(&self.inner.stats.consumer_recoveries);
                tracing::info!(consumer = %self.name(), "consumer recovered");
            }
            recovering = true;
            self.pull(c).await;
            self.pause(Duration::from_millis(250)).await;
        }
    }

    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = self.stopped.stopped() => {}
            _ = self.inner.closed.stopped() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    /// Delivers messages until the consumer fails or the pump is stopped.
    async fn pull(&self, consumer: PullConsumer) {
        let batch = self.spec.concurrency.clamp(1, 256);
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(HEARTBEAT)
            .expires(HEARTBEAT * 6)
            .messages()
            .await;
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %self.name(), error = %e, "cannot pull messages; recreating the consumer");
                return;
            }
        };
        let mut errors_in_a_row = 0;
        // A pull request does not survive a server restart; after a
        // reconnection, pull anew instead of waiting for it to expire.
        let reconnected = self.inner.stats.reconnected.notified();
        tokio::pin!(reconnected);
        reconnected.as_mut().enable();
        loop {
            let item = tokio::select! {
                biased;
                _ = self.stopped.stopped() => return,
                _ = self.inner.closed.stopped() => return,
                _ = &mut reconnected => {
                    tracing::info!(consumer = %self.name(), "connection re-established; renewing the pull");
                    return;
                }
                item = messages.next() => item,
            };
            match item {
                None => {
                    tracing::warn!(consumer = %self.name(), "message stream ended; recreating the consumer");
                    return;
                }
                Some(Ok(msg)) => {
                    errors_in_a_row = 0;
                    if let Some(delivery) = self.delivery(msg).await {
                        if self.tx.send(delivery).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    errors_in_a_row += 1;
                    match e.kind() {
                        MessagesErrorKind::MissingHeartbeat
                        | MessagesErrorKind::ConsumerDeleted => {
                            tracing::warn!(consumer = %self.name(), error = %e, "consumer lost; recreating it");
                            return;
                        }
                        _ if errors_in_a_row >= 3 => {
                            tracing::warn!(consumer = %self.name(), error = %e, "repeated pull errors; recreating the consumer");
                            return;
                        }
                        _ => tracing::warn!(consumer = %self.name(), error = %e, "pull error"),
                    }
                }
            }
        }
    }

    async fn delivery(&self, msg: jetstream::Message) -> Option<Delivery> {
        let (attempt, sequence) = match msg.info() {
            Ok(info) => (
                u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX),
                Some(info.stream_sequence),
            ),
            Err(_) => (1, None),
        };
        let (message, acker) = msg.split();
        match wire::envelope_of(
            &self.inner.config,
            &message.subject,
            message.headers.as_ref(),
            message.payload.clone(),
        ) {
            Ok(envelope) => Some(Delivery {
                envelope: Arc::new(envelope),
                attempt,
                stream_sequence: sequence,
                acker: AckHandle::new(Box::new(JsAcker {
                    acker: Some(acker),
                    progress: self.inner.config.stream.ack_wait / 3,
                })),
            }),
            Err(error) => {
                StatsCounters::bump(&self.inner.stats.malformed_messages);
                let topic = self.inner.config.topic_of(&message.subject).to_owned();
                tracing::warn!(subject = %message.subject, %error, "message is not an eventwire envelope; dead-lettering it");
                let letter = wire::malformed_letter(
                    &message.subject,
                    message.headers.as_ref(),
                    message.payload,
                    &error,
                    sequence,
                    (&self.spec.group, self.spec.handler),
                    &topic,
                );
                let settled = match self.inner.dead_letter(&letter).await {
                    Ok(()) => acker.ack_with(AckKind::Term).await,
                    Err(e) => {
                        tracing::error!(error = %e, "dead letter failed; the message stays for redelivery");
                        acker
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await
                    }
                };
                if let Err(e) = settled {
                    tracing::warn!(error = %e, "settling a malformed message failed");
                }
                None
            }
        }
    }
}

struct JsSubscription {
    rx: Mutex<mpsc::Receiver<Delivery>>,
    stopped: StopSignal,
}

impl Subscription for JsSubscription {
    fn next(&self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            if self.stopped.is_stopped() {
                return None;
            }
            tokio::select! {
                biased;
                _ = self.stopped.stopped() => None,
                d = async { self.rx.lock().await.recv().await } => d,
            }
        })
    }

    fn try_next(&self) -> Option<Delivery> {
        if self.stopped.is_stopped() {
            return None;
        }
        self.rx.try_lock().ok()?.try_recv().ok()
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.stopped.stop();
            // Fetched but not handed out: give them back to the server now
            // rather than after the ack wait.
            let mut rx = self.rx.lock().await;
            rx.close();
            while let Ok(delivery) = rx.try_recv() {
                let _ = delivery.acker.nak(Duration::ZERO).await;
            }
        })
    }
}

struct JsAcker {
    acker: Option<jetstream::message::Acker>,
    progress: Duration,
}

impl JsAcker {
    fn send(mut self: Box<Self>, kind: AckKind) -> Settle {
        let Some(acker) = self.acker.take() else {
            return Settle::done();
        };
        Completion::pending(async move {
            acker
                .ack_with(kind)
                .await
                .map_err(|e| TransportError::io("acknowledging a JetStream message", e))
        })
    }
}

impl Drop for JsAcker {
    fn drop(&mut self) {
        // Unsettled (a worker stopped mid-event): hand it back at once.
        if let Some(acker) = self.acker.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = acker.ack_with(AckKind::Nak(None)).await;
                });
            }
        }
    }
}

impl Acker for JsAcker {
    fn ack(self: Box<Self>) -> Settle {
        self.send(AckKind::Ack)
    }

    fn nak(self: Box<Self>, delay: Duration) -> Settle {
        self.send(AckKind::Nak((!delay.is_zero()).then_some(delay)))
    }

    fn term(self: Box<Self>) -> Settle {
        self.send(AckKind::Term)
    }

    fn in_progress(&self) -> Completion<'_, Result<(), TransportError>> {
        match &self.acker {
            None => Completion::done(),
            Some(a) => Completion::pending(async move {
                a.ack_with(AckKind::Progress)
                    .await
                    .map_err(|e| TransportError::io("sending progress", e))
            }),
        }
    }

    fn progress_interval(&self) -> Option<Duration> {
        Some(self.progress.max(Duration::from_millis(100)))
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn stream_subject_coverage() {
        assert!(covers("orders.created", "orders.created"));
        assert!(covers("orders.*", "orders.created"));
        assert!(covers("orders.>", "orders.created.v2"));
        assert!(covers("orders.>", "orders.*"));
        assert!(covers(">", "anything.here"));
        assert!(!covers("orders.*", "orders.>"));
        assert!(!covers("orders.created", "orders.*"));
        assert!(!covers("orders.*", "orders.created.v2"));
    }
}

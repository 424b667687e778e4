//! JetStream: streams provisioned at start-up, durable pull consumers,
//! at-least-once delivery with server-side redelivery and de-duplication.
//!
//! - Streams: one for events (subjects = every topic of the program), one
//!   for dead letters. Created, or extended with missing topics, at start-up
//!   (`provision=create`); or only checked (`provision=verify`).
//! - Publishing waits for the server's acknowledgement; `Nats-Msg-Id` is the
//!   event id, so a publish retried within the duplicate window is stored
//!   once. `publish_batch` pipelines up to `publish_window` acknowledgements.
//! - One durable pull consumer per (group, handler); its `max_ack_pending`
//!   is `concurrency` + 1000, room for events waiting out a retry delay
//!   (each instance asks only for what its `concurrency` can take). A delivery is acknowledged only after the handler
//!   succeeded; a failure is a nak with the retry policy's delay (the attempt
//!   number is the server's delivery count); the last attempt or a permanent
//!   error publishes a dead letter and then terminates the message; a dead
//!   letter that fails on every try ends the message too, counted
//!   (docs/wire-format.md, "Dead letters"). Running handlers
//!   send progress signals so they are not redelivered while they work.
//! - A consumer that was deleted, missed heartbeats or lost its server is
//!   recreated by itself (logged, and counted in [`NatsStats`]).

mod acker;
mod advisory;
pub(super) mod provision;
mod pump;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use async_nats::Client;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, Mutex};
use tokio_util::task::TaskTracker;

use self::provision::check_jetstream;
use self::pump::{JsSubscription, Pump};
use super::config::NatsConfig;
use super::connection::connect;
use super::stats::{NatsStats, StatsCounters};
use super::wire;
use crate::delivery::DeadLetter;
use crate::envelope::Envelope;
use crate::error::{PublishError, TransportError, TransportErrorKind};
use crate::naming::DEAD_LETTER_PATTERN;
use crate::stop::StopSignal;
use crate::transport::{
    check_topic, Capabilities, Completion, ConsumerSpec, ProvisionPlan, PublishFuture,
    RedeliveryWindows, Subscription, Transport,
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
    /// The events stream's duplicate window, once `prepare` has read it.
    duplicate_window: std::sync::Mutex<Option<Duration>>,
}

impl std::fmt::Debug for JetStreamTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamTransport")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// A failure of `kind` caused by `e`, described by what was being done.
fn failure(
    kind: TransportErrorKind,
    context: impl Into<std::borrow::Cow<'static, str>>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> TransportError {
    TransportError::with_source(kind, context, e)
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
                duplicate_window: std::sync::Mutex::new(None),
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

impl Inner {
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
            return Err(PublishError::closed(&envelope.topic));
        }
        check_topic(&envelope.topic)?;
        let headers = wire::headers(envelope, true)?;
        let size = wire::wire_size(&headers, &envelope.payload);
        let topic = envelope.topic.to_string();
        let failed = |e: crate::error::BoxError, topic: &str, stats: &StatsCounters| {
            StatsCounters::bump(&stats.failed_publishes);
            PublishError::rejected(topic, "the JetStream publish was not acknowledged", e)
        };
        let subject = self.config.subject(&envelope.topic);
        let refusals_before = self.stats.refusal_count();
        let ack = self
            .js
            .publish_with_headers(subject.clone(), headers, envelope.payload.clone())
            .await
            .map_err(|e| {
                if e.kind() == async_nats::jetstream::context::PublishErrorKind::MaxPayloadExceeded
                {
                    return wire::payload_too_large(&self.client, &topic, size);
                }
                failed(Box::new(e), &topic, &self.stats)
            })?;
        let stats = self.stats.clone();
        Ok(async move {
            // A publish the account may not make is never acknowledged: the
            // server's refusal ends the wait at once instead of the timeout.
            tokio::select! {
                biased;
                acked = ack => acked
                    .map(|_| ())
                    .map_err(|e| failed(Box::new(e), &topic, &stats)),
                () = stats.publish_refused(&subject, refusals_before) => {
                    StatsCounters::bump(&stats.failed_publishes);
                    Err(PublishError::Transport {
                        topic: topic.clone(),
                        source: crate::error::TransportError::new(
                            TransportErrorKind::PermissionDenied,
                            format!("the NATS server refused the publish to `{subject}`: the account may not publish to it (Permissions Violation)"),
                        ),
                    })
                }
            }
        }
        .boxed())
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        check_topic(&letter.topic)?;
        let max_payload = self.client.server_info().max_payload;
        let (subject, headers, payload) =
            wire::dead_letter_message(&self.config, letter, max_payload)?;
        let topic = letter.topic.clone();
        let err = |e: crate::error::BoxError| {
            PublishError::rejected(&topic, "the dead letter was not acknowledged", e)
        };
        self.js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| err(Box::new(e)))?
            .await
            .map_err(|e| err(Box::new(e)))?;
        Ok(())
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
            queues_outlive_instances: false,
            deduplicates_publishes: true,
            stream_positions: true,
            counts_deliveries: true,
        }
    }

    fn redelivery(&self) -> Option<RedeliveryWindows> {
        let stream = &self.inner.config.stream;
        let provisioned = *self
            .inner
            .duplicate_window
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let window = provisioned.unwrap_or(stream.duplicate_window);
        Some(RedeliveryWindows::new(
            stream.ack_wait,
            (!window.is_zero()).then_some(window),
        ))
    }

    fn prepare<'a>(&'a self, plan: &'a ProvisionPlan) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            let c = &self.inner.config;
            let subjects = plan.topics.iter().map(|t| c.subject(t)).collect();
            let window = self.inner.ensure_stream(&c.stream_name(), subjects).await?;
            *self
                .inner
                .duplicate_window
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(window);
            let mut dlq = vec![c.subject(DEAD_LETTER_PATTERN)];
            dlq.extend(plan.dead_letter_topics.iter().map(|t| c.subject(t)));
            self.inner
                .ensure_stream(&c.dead_letter_stream_name(), dlq)
                .await
                .map(drop)
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
            let stopped = StopSignal::default();
            let watcher = advisory::Watcher {
                inner: self.inner.clone(),
                stream: stream_name.clone(),
                consumer: consumer.cached_info().name.clone(),
                owner: (spec.group.clone(), spec.handler),
                stopped: stopped.clone(),
            };
            let watching = watcher.start().await.map_err(|e| {
                failure(
                    TransportErrorKind::Subscribe,
                    "subscribing to the consumer's max-deliveries advisories",
                    e,
                )
            })?;
            self.inner.tasks.spawn(watching);
            let (tx, rx) = mpsc::channel(spec.concurrency.max(1));
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
                .map_err(|e| failure(TransportErrorKind::Publish, "flushing NATS publishes", e))
        })
    }
}

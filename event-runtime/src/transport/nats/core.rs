//! Core NATS: consumer groups as queue groups, at-most-once delivery.
//!
//! What it promises: every group receives each published event once while
//! its instances are connected and keep up; instances of a group share the
//! events (NATS queue groups). What it does not: an event published while no
//! instance of a group is subscribed, or dropped because a subscriber fell
//! behind (a "slow consumer"), or lost with a crashed process mid-handler,
//! is gone. Retries happen in the receiving process and end with it. Losses
//! that the client can see are counted in [`NatsStats`]. Use the JetStream
//! transport for at-least-once delivery.
//!
//! `publish` returns once the client took the event; the client writes it
//! out shortly after. So that returning from `main` right after a publish
//! loses nothing, the last handle users publish through (the `App` and the
//! `Publisher`s it gave out) flushes the connection when it is dropped
//! without `App::shutdown`, waiting at most a few seconds
//! ([`Transport::flush_before_drop`]). That costs nothing per event. On a
//! current-thread runtime no `Drop` can wait for the connection (its task
//! runs on the waiting thread), so there each `publish` flushes before it
//! returns (the client's buffer written to the socket; no server round
//! trip), and `publish_batch` once per batch.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Mutex};
use tokio_util::task::TaskTracker;

use super::config::NatsConfig;
use super::connection::{connect, flush_blocking, flush_each_publish};
use super::jetstream::provision::{check_jetstream, ensure_stream};
use super::stats::{NatsStats, StatsCounters};
use super::wire;
use crate::delivery::DeadLetter;
use crate::envelope::Envelope;
use crate::error::{PublishError, TransportError, TransportErrorKind};
use crate::naming::DEAD_LETTER_PATTERN;
use crate::stop::StopSignal;
use crate::transport::{
    check_topic, AckHandle, Acker, Capabilities, Completion, ConsumerSpec, Delivery, ProvisionPlan,
    PublishFuture, Settle, Subscription, Transport,
};

/// The core NATS transport (`nats://host:4222`).
#[derive(Clone)]
pub struct NatsTransport {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: NatsConfig,
    stats: Arc<StatsCounters>,
    /// Local redeliveries (naks) waiting for their delay.
    timers: TaskTracker,
    closed: StopSignal,
    /// The runtime the connection's task runs on.
    runtime: tokio::runtime::Handle,
    /// Connected on a current-thread runtime: `publish` flushes each event.
    flush_each_publish: bool,
}

impl std::fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTransport")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl NatsTransport {
    /// Connects.
    pub async fn connect(config: NatsConfig) -> Result<Self, TransportError> {
        config.validate()?;
        let stats = Arc::new(StatsCounters::default());
        let client = connect(&config, stats.clone()).await?;
        let runtime = tokio::runtime::Handle::current();
        Ok(NatsTransport {
            inner: Arc::new(Inner {
                client,
                config,
                stats,
                timers: TaskTracker::new(),
                closed: StopSignal::default(),
                flush_each_publish: flush_each_publish(&runtime),
                runtime,
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

    /// The settings.
    pub fn config(&self) -> &NatsConfig {
        &self.inner.config
    }
}

/// Publishes an envelope with core NATS: headers built and checked here,
/// so that only the client's send is boxed (not the whole envelope: a large
/// boxed future per event costs more than the publish itself). With
/// `flush`, returns once the client wrote the event to the socket.
pub(crate) fn publish_core<'a>(
    client: &'a Client,
    config: &NatsConfig,
    stats: &'a StatsCounters,
    envelope: Envelope,
    flush: bool,
) -> PublishFuture<'a> {
    let headers = match wire::headers(&envelope, false) {
        Ok(h) => h,
        Err(e) => return Completion::ready(Err(e)),
    };
    let size = wire::wire_size(&headers, &envelope.payload);
    let subject = config.subject(&envelope.topic);
    let topic = envelope.topic;
    let payload = envelope.payload;
    Completion::pending(async move {
        client
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| {
                if e.kind() == async_nats::client::PublishErrorKind::MaxPayloadExceeded {
                    return wire::payload_too_large(client, &topic, size);
                }
                StatsCounters::bump(&stats.failed_publishes);
                PublishError::rejected(&topic, "the NATS client refused the publish", e)
            })?;
        if flush {
            client.flush().await.map_err(|e| {
                StatsCounters::bump(&stats.failed_publishes);
                PublishError::rejected(&topic, "flushing the NATS connection failed", e)
            })?;
        }
        Ok(())
    })
}

impl NatsTransport {
    fn send(&self, envelope: Envelope, flush: bool) -> PublishFuture<'_> {
        if self.inner.closed.is_stopped() {
            return Completion::ready(Err(PublishError::closed(&envelope.topic)));
        }
        if let Err(e) = check_topic(&envelope.topic) {
            return Completion::ready(Err(e));
        }
        publish_core(
            &self.inner.client,
            &self.inner.config,
            &self.inner.stats,
            envelope,
            flush,
        )
    }
}

impl Transport for NatsTransport {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable_consumers: false,
            replay: false,
            at_least_once: false,
            max_payload: Some(self.inner.client.server_info().max_payload),
            queues_outlive_instances: false,
            deduplicates_publishes: false,
            stream_positions: false,
            counts_deliveries: false,
        }
    }

    fn publish(&self, envelope: Envelope) -> PublishFuture<'_> {
        self.send(envelope, self.inner.flush_each_publish)
    }

    /// In order; where each publish would flush (a current-thread
    /// runtime), the batch flushes once, after its last event.
    fn publish_batch(
        &self,
        envelopes: Vec<Envelope>,
    ) -> BoxFuture<'_, Vec<Result<(), PublishError>>> {
        Box::pin(async move {
            let mut sent = Vec::with_capacity(envelopes.len());
            for envelope in envelopes {
                let topic = envelope.topic.clone();
                sent.push((topic, self.send(envelope, false).await));
            }
            if self.inner.flush_each_publish && !sent.is_empty() {
                if let Err(e) = self.inner.client.flush().await {
                    StatsCounters::bump(&self.inner.stats.failed_publishes);
                    let why = e.to_string();
                    for (topic, result) in sent.iter_mut().filter(|(_, r)| r.is_ok()) {
                        *result = Err(PublishError::rejected(
                            topic,
                            "flushing the NATS connection failed",
                            why.clone(),
                        ));
                    }
                }
            }
            sent.into_iter().map(|(_, result)| result).collect()
        })
    }

    fn flush_before_drop(&self, within: Duration) {
        // Closed: `close` flushed. Flushing each publish: nothing is left.
        if self.inner.closed.is_stopped() || self.inner.flush_each_publish {
            return;
        }
        if let Err(why) = flush_blocking(&self.inner.client, &self.inner.runtime, within) {
            tracing::warn!(
                reason = why,
                "events published on core NATS may not have left this process: {why}; call `App::shutdown` (or `Transport::close`) before returning from `main`"
            );
        }
    }

    fn subscribe(
        &self,
        spec: ConsumerSpec,
    ) -> BoxFuture<'_, Result<Box<dyn Subscription>, TransportError>> {
        Box::pin(async move {
            let subject = self.inner.config.subject(spec.topic);
            let queue = spec.consumer_name();
            let subscriber = self
                .inner
                .client
                .queue_subscribe(subject.clone(), queue.clone())
                .await
                .map_err(|e| {
                    TransportError::with_source(
                        TransportErrorKind::Subscribe,
                        format!("cannot subscribe to `{subject}`"),
                        e,
                    )
                })?;
            // The subscription exists once the server has seen it: events
            // published after `build()` returns reach it.
            self.inner.client.flush().await.map_err(|e| {
                TransportError::with_source(
                    TransportErrorKind::Subscribe,
                    format!("cannot subscribe to `{subject}`"),
                    e,
                )
            })?;
            // A refusal comes before the flush's answer, but reaches the
            // counters through the connection's event task: give it a moment
            // (20 ms per core NATS handler at start-up).
            self.inner
                .stats
                .wait_for_refusal(&subject, Duration::from_millis(20))
                .await;
            if self.inner.stats.subscription_refused(&subject) {
                return Err(TransportError::new(
                    TransportErrorKind::PermissionDenied,
                    format!("the NATS server refused the subscription to `{subject}`: the account may not subscribe to it (Permissions Violation)"),
                ));
            }
            let (retry_tx, retry_rx) = mpsc::unbounded_channel();
            Ok(Box::new(CoreSubscription {
                inner: self.inner.clone(),
                spec,
                state: Mutex::new(State {
                    subscriber: Some(subscriber),
                    retry_rx,
                }),
                retry_tx,
                stopped: StopSignal::default(),
            }) as Box<dyn Subscription>)
        })
    }

    /// Creates (or extends, or with `provision=verify` checks) the
    /// dead-letter stream when the server has JetStream, so that dead
    /// letters are stored and acknowledged. Without JetStream, start-up
    /// warns: a dead letter then fails (nothing would store it) and the
    /// event is dropped after the tries, counted.
    fn prepare<'a>(&'a self, plan: &'a ProvisionPlan) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            let c = &self.inner.config;
            if let Err(e) = check_jetstream(&self.inner.client).await {
                tracing::warn!(error = %e, "core NATS without JetStream: dead letters cannot be stored; a handler that gives up drops its event (counted in `dropped`)");
                return Ok(());
            }
            let js = async_nats::jetstream::new(self.inner.client.clone());
            let mut subjects = vec![c.subject(DEAD_LETTER_PATTERN)];
            subjects.extend(plan.dead_letter_topics.iter().map(|t| c.subject(t)));
            ensure_stream(&js, c, &c.dead_letter_stream_name(), subjects)
                .await
                .map(drop)
        })
    }

    fn dead_letter(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async move { publish_dead_letter(&self.inner, &letter).await })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            self.inner.closed.stop();
            self.inner.timers.close();
            self.inner.timers.wait().await;
            self.inner.client.flush().await.map_err(|e| {
                TransportError::with_source(
                    TransportErrorKind::Publish,
                    "flushing NATS publishes",
                    e,
                )
            })?;
            Ok(())
        })
    }
}

/// How long a dead letter waits for the dead-letter stream's acknowledgement.
const DEAD_LETTER_ACK_WAIT: Duration = Duration::from_secs(2);

/// Publishes a dead letter as a request, so that the JetStream stream that
/// stores it acknowledges it: only then is the event "dead-lettered". With
/// no stream (and no subscriber) on the subject, or no acknowledgement, the
/// dead letter is an error, never reported as stored.
async fn publish_dead_letter(inner: &Inner, letter: &DeadLetter) -> Result<(), PublishError> {
    check_topic(&letter.topic)?;
    let max_payload = inner.client.server_info().max_payload;
    let (subject, headers, payload) =
        wire::dead_letter_message(&inner.config, letter, max_payload)?;
    let topic = &letter.topic;
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(payload)
        .timeout(Some(DEAD_LETTER_ACK_WAIT));
    let reply = inner
        .client
        .send_request(subject.clone(), request)
        .await
        .map_err(|e| {
            let why = match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    "no JetStream stream stores the dead-letter subject (the server may lack JetStream)"
                }
                async_nats::RequestErrorKind::TimedOut => {
                    "no acknowledgement of the dead letter within 2 s"
                }
                _ => "the NATS client refused the dead letter",
            };
            PublishError::rejected(topic, why, e)
        })?;
    // A stream's answer: `{"stream":..,"seq":..}` or `{"error":{..}}`.
    let answer: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(|e| {
        PublishError::rejected(topic, "unreadable acknowledgement of the dead letter", e)
    })?;
    if let Some(error) = answer.get("error") {
        return Err(PublishError::rejected(
            topic,
            "the dead-letter stream refused the dead letter",
            crate::error::BoxError::from(error.to_string()),
        ));
    }
    if answer.get("seq").is_none() {
        return Err(PublishError::rejected(
            topic,
            "the dead letter was answered, but not by a JetStream stream",
            crate::error::BoxError::from(answer.to_string()),
        ));
    }
    Ok(())
}

struct Redelivery {
    envelope: Arc<Envelope>,
    attempt: u32,
}

struct State {
    subscriber: Option<async_nats::Subscriber>,
    retry_rx: mpsc::UnboundedReceiver<Redelivery>,
}

struct CoreSubscription {
    inner: Arc<Inner>,
    spec: ConsumerSpec,
    state: Mutex<State>,
    retry_tx: mpsc::UnboundedSender<Redelivery>,
    stopped: StopSignal,
}

impl CoreSubscription {
    fn delivery(&self, envelope: Arc<Envelope>, attempt: u32) -> Delivery {
        Delivery {
            envelope: envelope.clone(),
            attempt,
            stream_sequence: None,
            acker: AckHandle::new(Box::new(CoreAcker {
                inner: self.inner.clone(),
                retry_tx: self.retry_tx.clone(),
                pending: Some(Redelivery { envelope, attempt }),
            })),
        }
    }

    fn malformed(&self, msg: async_nats::Message, error: crate::envelope::EnvelopeError) {
        StatsCounters::bump(&self.inner.stats.malformed_messages);
        let topic = self.inner.config.topic_of(&msg.subject).to_owned();
        tracing::warn!(subject = %msg.subject, %error, "received a message that is not an eventwire envelope; dead-lettering it");
        let letter = wire::malformed_letter(
            &msg.subject,
            msg.headers.as_ref(),
            msg.payload,
            &error,
            None,
            (&self.spec.group, self.spec.handler),
            &topic,
        );
        let inner = self.inner.clone();
        self.inner.timers.spawn(async move {
            if let Err(e) = publish_dead_letter(&inner, &letter).await {
                StatsCounters::bump(&inner.stats.malformed_dropped);
                tracing::error!(error = %e, "dead letter of a malformed message failed; it is lost (core NATS is at-most-once)");
            }
        });
    }
}

impl Subscription for CoreSubscription {
    fn try_next(&self) -> Option<Delivery> {
        use futures_util::FutureExt;
        if self.stopped.is_stopped() {
            return None;
        }
        let mut state = self.state.try_lock().ok()?;
        if let Ok(r) = state.retry_rx.try_recv() {
            return Some(self.delivery(r.envelope, r.attempt));
        }
        // A message already received by the client is taken without a
        // waker registration; anything else goes through `next`.
        let msg = state.subscriber.as_mut()?.next().now_or_never()??;
        match wire::envelope_of(
            &self.inner.config,
            &msg.subject,
            msg.headers.as_ref(),
            msg.payload.clone(),
        ) {
            Ok(env) => Some(self.delivery(Arc::new(env), 1)),
            Err(e) => {
                self.malformed(msg, e);
                None
            }
        }
    }

    fn next(&self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let State {
                subscriber,
                retry_rx,
            } = &mut *state;
            loop {
                if self.stopped.is_stopped() {
                    return None;
                }
                let sub = subscriber.as_mut()?;
                tokio::select! {
                    biased;
                    _ = self.stopped.stopped() => return None,
                    Some(r) = retry_rx.recv() => return Some(self.delivery(r.envelope, r.attempt)),
                    msg = sub.next() => {
                        let msg = msg?;
                        match wire::envelope_of(&self.inner.config, &msg.subject, msg.headers.as_ref(), msg.payload.clone()) {
                            Ok(env) => return Some(self.delivery(Arc::new(env), 1)),
                            Err(e) => self.malformed(msg, e),
                        }
                    }
                }
            }
        })
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.stopped.stop();
            let mut state = self.state.lock().await;
            if let Some(mut sub) = state.subscriber.take() {
                if let Err(e) = sub.unsubscribe().await {
                    tracing::debug!(error = %e, "unsubscribe failed");
                }
            }
        })
    }
}

struct CoreAcker {
    inner: Arc<Inner>,
    retry_tx: mpsc::UnboundedSender<Redelivery>,
    pending: Option<Redelivery>,
}

impl CoreAcker {
    /// Core NATS has no redelivery: a nak re-queues the event in this process.
    fn redeliver(&mut self, delay: Duration, next_attempt: bool) {
        let Some(mut r) = self.pending.take() else {
            return;
        };
        if next_attempt {
            r.attempt += 1;
        }
        if self.inner.closed.is_stopped() {
            return;
        }
        if delay.is_zero() {
            let _ = self.retry_tx.send(r);
            return;
        }
        let tx = self.retry_tx.clone();
        let closed = self.inner.closed.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            self.inner.timers.spawn(async move {
                tokio::select! {
                    _ = closed.stopped() => {}
                    _ = tokio::time::sleep(delay) => { let _ = tx.send(r); }
                }
            });
        }
    }
}

impl Drop for CoreAcker {
    fn drop(&mut self) {
        self.redeliver(Duration::ZERO, false);
    }
}

impl Acker for CoreAcker {
    fn ack(mut self: Box<Self>) -> Settle {
        self.pending = None;
        Settle::done()
    }

    fn nak(mut self: Box<Self>, delay: Duration) -> Settle {
        self.redeliver(delay, true);
        Settle::done()
    }

    fn term(mut self: Box<Self>) -> Settle {
        self.pending = None;
        Settle::done()
    }

    fn in_progress(&self) -> Completion<'_, Result<(), TransportError>> {
        Completion::done()
    }
}

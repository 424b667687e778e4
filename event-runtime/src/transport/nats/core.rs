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

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Mutex};
use tokio_util::task::TaskTracker;

use super::config::NatsConfig;
use super::connection::connect;
use super::stats::{NatsStats, StatsCounters};
use super::wire;
use crate::delivery::DeadLetter;
use crate::envelope::Envelope;
use crate::error::{PublishError, TransportError, TransportErrorKind};
use crate::stop::StopSignal;
use crate::transport::{
    check_topic, AckHandle, Acker, Capabilities, Completion, ConsumerSpec, Delivery, PublishFuture,
    Settle, Subscription, Transport,
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
        Ok(NatsTransport {
            inner: Arc::new(Inner {
                client,
                config,
                stats,
                timers: TaskTracker::new(),
                closed: StopSignal::default(),
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
/// boxed future per event costs more than the publish itself).
pub(crate) fn publish_core<'a>(
    client: &'a Client,
    config: &NatsConfig,
    stats: &'a StatsCounters,
    envelope: Envelope,
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
            })
    })
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
        }
    }

    fn publish(&self, envelope: Envelope) -> PublishFuture<'_> {
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
        )
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

async fn publish_dead_letter(inner: &Inner, letter: &DeadLetter) -> Result<(), PublishError> {
    check_topic(&letter.topic)?;
    let (subject, headers, payload) = wire::dead_letter_message(&inner.config, letter)?;
    inner
        .client
        .publish_with_headers(subject, headers, payload)
        .await
        .map_err(|e| {
            PublishError::rejected(&letter.topic, "the NATS client refused the dead letter", e)
        })?;
    // A dead letter is the last trace of an event: make sure it left.
    inner
        .client
        .flush()
        .await
        .map_err(|e| PublishError::rejected(&letter.topic, "flushing the dead letter failed", e))
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

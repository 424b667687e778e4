//! The pull loop of one consumer: fetches messages into the workers'
//! channel, turns them into deliveries, and rebuilds a lost consumer; and
//! the subscription the workers read from.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::AckKind;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Mutex};

use super::acker::JsAcker;
use super::{Inner, HEARTBEAT};
use crate::stop::StopSignal;
use crate::transport::nats::stats::StatsCounters;
use crate::transport::nats::wire;
use crate::transport::{AckHandle, ConsumerSpec, Delivery, Subscription};

/// Pulls messages for one consumer into the workers' channel, and rebuilds
/// the consumer when it is lost.
pub(super) struct Pump {
    pub(super) inner: Arc<Inner>,
    pub(super) stream_name: String,
    pub(super) config: pull::Config,
    pub(super) spec: ConsumerSpec,
    pub(super) tx: mpsc::Sender<Delivery>,
    pub(super) stopped: StopSignal,
}

impl Pump {
    fn name(&self) -> String {
        self.config
            .durable_name
            .clone()
            .unwrap_or_else(|| self.spec.consumer_name())
    }

    pub(super) async fn run(self, first: PullConsumer) {
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

    async fn delivery(&self, msg: async_nats::jetstream::Message) -> Option<Delivery> {
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

pub(super) struct JsSubscription {
    pub(super) rx: Mutex<mpsc::Receiver<Delivery>>,
    pub(super) stopped: StopSignal,
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

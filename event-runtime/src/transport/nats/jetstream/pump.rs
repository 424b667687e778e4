//! The pull loop of one consumer: fetches messages into the workers'
//! channel, turns them into deliveries, and rebuilds a lost consumer; and
//! the subscription the workers read from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::{self, BatchConfig};
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::AckKind;
use async_nats::{StatusCode, Subject};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Mutex};

use super::acker::JsAcker;
use super::{Inner, HEARTBEAT};
use crate::stop::StopSignal;
use crate::transport::nats::stats::StatsCounters;
use crate::transport::nats::wire;
use crate::transport::{AckHandle, ConsumerSpec, Delivery, Subscription};

/// Deliveries of a malformed message whose dead letter fails before it is
/// dropped (terminated and counted in `NatsStats::malformed_dropped`).
const MALFORMED_DEAD_LETTER_TRIES: u32 = 4;
/// How long one pull request waits on the server for messages.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// An open pull request that hears nothing (no message, no heartbeat) for
/// this long has been lost by the server.
const SILENCE: Duration = HEARTBEAT.saturating_mul(2);

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
    ///
    /// The pull requests are this loop's own (not async-nats's `messages()`
    /// stream, whose count of requested messages loses deliveries that
    /// arrive before it has booked their request: it then waits for
    /// messages the server no longer owes, misses heartbeats and stops the
    /// flow for twice the heartbeat). It asks for no more messages than the
    /// workers' channel has free slots, so a message never waits for room,
    /// and it expects heartbeats only while a request is open: when the
    /// workers are slow and nothing is asked for, it waits for room, and no
    /// heartbeat can be missed.
    async fn pull(&self, consumer: PullConsumer) {
        let inbox = Subject::from(self.inner.client.new_inbox());
        let mut replies = match self.inner.client.subscribe(inbox.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(consumer = %self.name(), error = %e, "cannot pull messages; recreating the consumer");
                return;
            }
        };
        let mut asked = Asked::new(self.tx.max_capacity());
        let mut errors_in_a_row = 0;
        let mut last_heard = Instant::now();
        let mut last_request = Instant::now();
        // Set to the earliest moment silence could be declared, and moved
        // on only when it fires: nothing to do per message.
        let silence = tokio::time::sleep(SILENCE);
        tokio::pin!(silence);
        // A pull request does not survive a server restart; after a
        // reconnection, pull anew instead of waiting for it to expire.
        let reconnected = self.inner.stats.reconnected.notified();
        tokio::pin!(reconnected);
        reconnected.as_mut().enable();
        loop {
            if let Some(batch) = asked.more(self.tx.capacity()) {
                let request = BatchConfig {
                    batch,
                    expires: Some(PULL_EXPIRES),
                    idle_heartbeat: HEARTBEAT,
                    ..Default::default()
                };
                if let Err(e) = consumer.request_batch(request, inbox.clone()).await {
                    tracing::warn!(consumer = %self.name(), error = %e, "cannot send a pull request; recreating the consumer");
                    return;
                }
                if !asked.is_open() {
                    last_heard = Instant::now();
                }
                last_request = Instant::now();
                asked.sent(batch);
            }
            let reply = tokio::select! {
                biased;
                _ = self.stopped.stopped() => {
                    self.hand_back_owed(replies, &asked, last_request);
                    return;
                }
                _ = self.inner.closed.stopped() => return,
                _ = &mut reconnected => {
                    tracing::info!(consumer = %self.name(), "connection re-established; renewing the pull");
                    return;
                }
                reply = replies.next() => reply,
                // Nothing asked for and no free slot: wait for the workers.
                room = self.tx.reserve(), if !asked.is_open() => match room {
                    Ok(permit) => {
                        drop(permit);
                        continue;
                    }
                    Err(_) => return,
                },
                _ = &mut silence, if asked.is_open() => {
                    let silent = last_heard.elapsed();
                    if silent >= SILENCE {
                        tracing::warn!(consumer = %self.name(), ?silent, "missed idle heartbeats; recreating the consumer");
                        return;
                    }
                    silence.as_mut().reset((Instant::now() + (SILENCE - silent)).into());
                    continue;
                }
            };
            let Some(reply) = reply else {
                tracing::warn!(consumer = %self.name(), "pull subscription ended; recreating the consumer");
                return;
            };
            last_heard = Instant::now();
            match reply.status.unwrap_or(StatusCode::OK) {
                StatusCode::OK => {
                    errors_in_a_row = 0;
                    asked.delivered();
                    let msg = async_nats::jetstream::Message {
                        message: reply,
                        context: self.inner.js.clone(),
                    };
                    if let Some(delivery) = self.delivery(msg).await {
                        if let Err(refused) = self.tx.send(delivery).await {
                            // Stopped while this one was in hand.
                            let _ = refused.0.acker.nak(Duration::ZERO).await;
                            self.hand_back_owed(replies, &asked, last_request);
                            return;
                        }
                    }
                }
                StatusCode::IDLE_HEARTBEAT => {}
                status => {
                    let description = reply.description.as_deref().unwrap_or("");
                    if description.eq_ignore_ascii_case("consumer deleted")
                        || description.eq_ignore_ascii_case("consumer is push based")
                    {
                        tracing::warn!(consumer = %self.name(), %status, description, "consumer lost; recreating it");
                        return;
                    }
                    // The request ended (expired, or cut short by the
                    // server): what it still owed will not come.
                    asked.released(pending_messages(&reply));
                    if status == StatusCode::TIMEOUT {
                        continue;
                    }
                    errors_in_a_row += 1;
                    if errors_in_a_row >= 3 {
                        tracing::warn!(consumer = %self.name(), %status, description, "repeated pull errors; recreating the consumer");
                        return;
                    }
                    tracing::warn!(consumer = %self.name(), %status, description, "pull error");
                }
            }
        }
    }

    /// On a stop: hands back what the open pull request still brings
    /// (see [`hand_back`]).
    fn hand_back_owed(
        &self,
        replies: async_nats::Subscriber,
        asked: &Asked,
        last_request: Instant,
    ) {
        if asked.is_open() {
            self.inner.tasks.spawn(hand_back(
                replies,
                asked.owed,
                last_request + PULL_EXPIRES,
                self.inner.closed.clone(),
                self.inner.js.clone(),
            ));
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
                    // Bounded: a message that can never be dead-lettered
                    // must not come back forever and stall the consumer.
                    Err(e) if attempt >= MALFORMED_DEAD_LETTER_TRIES => {
                        StatsCounters::bump(&self.inner.stats.malformed_dropped);
                        tracing::error!(subject = %letter.envelope.topic, stream_sequence = ?sequence, tries = attempt, error = %e, "dead letter of a malformed message failed on every try; message dropped");
                        acker.ack_with(AckKind::Term).await
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "dead letter failed; the message comes again in 1 s");
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

/// After a stop, what the server still sends for the pump's open pull
/// request is handed back at once (a nak without delay) until the request
/// is fulfilled, ends or expires, or the transport closes. Without this,
/// those messages went to a subscription nobody reads and came back only
/// after the ack wait (30 s by default) while the instance's connection
/// lived on: an app shut down inside a process that keeps running, on both
/// nats-server 2.9 and 2.15. (When the process exits, its connection closes
/// and the server drops the request.)
async fn hand_back(
    mut replies: async_nats::Subscriber,
    mut owed: usize,
    until: Instant,
    closed: StopSignal,
    js: async_nats::jetstream::Context,
) {
    let expired = tokio::time::sleep_until(until.into());
    tokio::pin!(expired);
    while owed > 0 {
        let reply = tokio::select! {
            _ = closed.stopped() => return,
            _ = &mut expired => return,
            reply = replies.next() => match reply {
                Some(reply) => reply,
                None => return,
            },
        };
        match reply.status.unwrap_or(StatusCode::OK) {
            StatusCode::OK => {
                owed -= 1;
                let msg = async_nats::jetstream::Message {
                    message: reply,
                    context: js.clone(),
                };
                if let Err(e) = msg.ack_with(AckKind::Nak(None)).await {
                    tracing::debug!(error = %e, "handing back a message after the stop failed; it comes back after the ack wait");
                }
            }
            StatusCode::IDLE_HEARTBEAT => {}
            // The request ended: nothing more will come.
            _ => return,
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

/// What the server still owes this pump: messages asked for by open pull
/// requests and neither delivered nor released by the server yet. Each
/// request is booked before any of its messages can arrive.
#[derive(Debug)]
struct Asked {
    /// Messages owed.
    owed: usize,
    /// Ask again once this many slots are free beyond what is owed, so
    /// that requests are neither one message each nor late.
    refill: usize,
}

impl Asked {
    fn new(slots: usize) -> Self {
        Asked {
            owed: 0,
            refill: (slots / 2).max(1),
        }
    }

    /// How many messages to ask for now that `free` slots of the workers'
    /// channel are free; `None`: none.
    fn more(&self, free: usize) -> Option<usize> {
        let room = free.checked_sub(self.owed).filter(|&r| r > 0)?;
        (self.owed == 0 || room >= self.refill).then_some(room)
    }

    /// A request for `n` messages was sent.
    fn sent(&mut self, n: usize) {
        self.owed += n;
    }

    /// One message arrived.
    fn delivered(&mut self) {
        self.owed = self.owed.saturating_sub(1);
    }

    /// A request ended with `pending` messages undelivered (`None`: the
    /// server did not say; nothing more is expected then).
    fn released(&mut self, pending: Option<usize>) {
        self.owed = pending.map_or(0, |p| self.owed.saturating_sub(p));
    }

    /// Whether a pull request is open on the server.
    fn is_open(&self) -> bool {
        self.owed > 0
    }
}

/// `Nats-Pending-Messages` of a status reply that ends a pull request.
fn pending_messages(reply: &async_nats::Message) -> Option<usize> {
    reply
        .headers
        .as_ref()?
        .get("Nats-Pending-Messages")?
        .as_str()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::Asked;

    #[test]
    fn asks_only_for_free_slots() {
        let mut a = Asked::new(64);
        assert_eq!(a.more(64), Some(64));
        a.sent(64);
        assert_eq!(a.more(64), None, "everything free is already owed");
        for _ in 0..40 {
            a.delivered();
        }
        // 24 owed, 40 in the channel: nothing free beyond what is owed.
        assert_eq!(a.more(24), None);
        // The workers took 40: 40 free beyond what is owed.
        assert_eq!(a.more(64), Some(40));
    }

    #[test]
    fn a_full_channel_asks_for_nothing_and_expects_nothing() {
        let mut a = Asked::new(8);
        a.sent(8);
        for _ in 0..8 {
            a.delivered();
        }
        assert!(!a.is_open(), "no heartbeat is expected");
        assert_eq!(a.more(0), None);
        assert_eq!(a.more(1), Some(1), "one free slot is asked for at once");
    }

    #[test]
    fn an_ended_request_releases_what_it_owed() {
        let mut a = Asked::new(64);
        a.sent(64);
        a.sent(32);
        a.released(Some(64));
        assert_eq!(a.more(64), Some(32));
        a.released(None);
        assert!(!a.is_open());
    }
}

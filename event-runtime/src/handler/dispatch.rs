//! Runs handlers on deliveries: workers, timeout, panics, retries, dead letters.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::stop::StopSignal;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::deferral::{Deferrals, DEFERRAL_BACKOFF};
use super::erased::ErasedHandler;
use super::{Claim, Context, HandlerError, IdempotencyKey, IdempotencyStore};
use crate::delivery::{DeadLetter, RetryPolicy};
use crate::envelope::Envelope;
use crate::naming::dead_letter_route;
use crate::observe::{HandlerCounters, HandlerRun, Observer, Outcome};
use crate::publisher::Publisher;
use crate::transport::{AckHandle, Delivery, Subscription, Transport};

/// One handler, resolved for one app: the function and its delivery policy.
pub(crate) struct HandlerRuntime {
    pub(crate) name: &'static str,
    pub(crate) group: Arc<str>,
    pub(crate) handler: Arc<dyn ErasedHandler>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
    pub(crate) concurrency: usize,
    pub(crate) ordered: bool,
    pub(crate) dead_letter_topic: Option<&'static str>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) publisher: Publisher,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    pub(crate) counters: HandlerCounters,
    pub(crate) idempotency: Option<Arc<dyn IdempotencyStore>>,
    /// Deliveries handed back because their event's claim was busy.
    pub(crate) deferrals: Deferrals,
}

/// Pauses between the tries of a dead letter: four tries over about 4 s,
/// then the event is dropped ([`Outcome::DeadLetterDropped`]).
const DEAD_LETTER_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

enum Verdict {
    Done,
    Retry(HandlerError),
    GiveUp(HandlerError),
}

impl HandlerRuntime {
    /// Starts the workers of this handler on `tasks`; they stop taking new
    /// events when `stop` is cancelled.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        subscription: Arc<dyn Subscription>,
        stop: StopSignal,
        tasks: &mut JoinSet<()>,
    ) {
        if self.ordered {
            self.spawn_ordered(subscription, stop, tasks);
            return;
        }
        for _ in 0..self.concurrency {
            let rt = self.clone();
            let sub = subscription.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                while let Some(delivery) = next_delivery(&*sub, &stop).await {
                    rt.process(delivery).await;
                }
            });
        }
    }

    /// Per-key order: one lane per unit of concurrency, events of one key
    /// always in the same lane, and failures retried in place so that a
    /// later event of the key never overtakes an earlier one.
    fn spawn_ordered(
        self: &Arc<Self>,
        subscription: Arc<dyn Subscription>,
        stop: StopSignal,
        tasks: &mut JoinSet<()>,
    ) {
        let mut lanes = Vec::with_capacity(self.concurrency);
        for _ in 0..self.concurrency {
            let (tx, mut rx) = mpsc::channel::<Delivery>(1);
            lanes.push(tx);
            let rt = self.clone();
            tasks.spawn(async move {
                while let Some(delivery) = rx.recv().await {
                    rt.process_in_place(delivery).await;
                }
            });
        }
        tasks.spawn(async move {
            while let Some(delivery) = next_delivery(&*subscription, &stop).await {
                let lane = lane_of(&delivery.envelope, lanes.len());
                if lanes[lane].send(delivery).await.is_err() {
                    break;
                }
            }
        });
    }

    async fn process(&self, delivery: Delivery) {
        let Delivery {
            envelope,
            attempt,
            stream_sequence,
            acker,
        } = delivery;
        let started = Instant::now();
        let Some((acker, attempt, key)) =
            self.claim(&envelope, attempt, stream_sequence, acker).await
        else {
            return;
        };
        // Declared after the acker, so dropped before it: a worker stopped
        // mid-handler (shutdown deadline) releases the claim before the
        // transport sees the delivery handed back.
        let claim = ClaimGuard { rt: self, key };
        let result = self.attempt(&envelope, attempt, &acker).await;
        // Each outcome is recorded before the delivery is settled: once a
        // transport sees the event settled (an idle bus), its run is on record.
        match self.judge(result, attempt) {
            Verdict::Done => {
                claim.settle(true).await;
                self.deferrals.forget(&envelope.id, stream_sequence);
                self.finish(&envelope, attempt, Outcome::Succeeded, started.elapsed());
                settle(acker.ack(), self.name, "ack").await;
            }
            Verdict::Retry(error) => {
                claim.settle(false).await;
                let delay = self.retry.backoff.delay(attempt);
                let outcome = retrying(self.name, &envelope, attempt, error, delay);
                self.finish(&envelope, attempt, outcome, started.elapsed());
                settle(acker.nak(delay), self.name, "nak").await;
            }
            Verdict::GiveUp(error) => {
                claim.settle(false).await;
                self.give_up(&envelope, attempt, stream_sequence, error, acker, started)
                    .await;
            }
        }
    }

    async fn process_in_place(&self, delivery: Delivery) {
        let Delivery {
            envelope,
            mut attempt,
            stream_sequence,
            acker,
        } = delivery;
        let Some((acker, first_attempt, key)) =
            self.claim(&envelope, attempt, stream_sequence, acker).await
        else {
            return;
        };
        // Dropped before the acker: see `process`.
        let claim = ClaimGuard { rt: self, key };
        attempt = first_attempt;
        loop {
            let started = Instant::now();
            let result = self.attempt(&envelope, attempt, &acker).await;
            match self.judge(result, attempt) {
                Verdict::Done => {
                    claim.settle(true).await;
                    self.deferrals.forget(&envelope.id, stream_sequence);
                    self.finish(&envelope, attempt, Outcome::Succeeded, started.elapsed());
                    settle(acker.ack(), self.name, "ack").await;
                    return;
                }
                Verdict::GiveUp(error) => {
                    claim.settle(false).await;
                    self.give_up(&envelope, attempt, stream_sequence, error, acker, started)
                        .await;
                    return;
                }
                Verdict::Retry(error) => {
                    let delay = self.retry.backoff.delay(attempt);
                    let outcome = retrying(self.name, &envelope, attempt, error, delay);
                    self.finish(&envelope, attempt, outcome, started.elapsed());
                    with_progress(&acker, tokio::time::sleep(delay)).await;
                    attempt += 1;
                }
            }
        }
    }

    fn key(&self, envelope: &Envelope) -> IdempotencyKey {
        IdempotencyKey {
            group: self.group.clone(),
            handler: self.name,
            event_id: envelope.id.clone(),
        }
    }

    /// Claims the event with the idempotency guard. Returns the acker, the
    /// attempt number and the claimed key when the handler should run;
    /// otherwise settles the delivery: acknowledged when the event was
    /// already processed, deferred (handed back, with a growing delay) when
    /// another delivery of it is running. A store that fails is not trusted
    /// to skip anything: the handler runs, unclaimed.
    ///
    /// The attempt number is the transport's less the deferrals of this
    /// delivery made here (see `deferral.rs`): a deferral is not an attempt.
    async fn claim(
        &self,
        envelope: &Envelope,
        delivered: u32,
        stream_sequence: Option<u64>,
        acker: AckHandle,
    ) -> Option<(AckHandle, u32, Option<IdempotencyKey>)> {
        let Some(store) = &self.idempotency else {
            return Some((acker, delivered, None));
        };
        let deferred = self.deferrals.count(&envelope.id, stream_sequence);
        let attempt = delivered.saturating_sub(deferred).max(1);
        let key = self.key(envelope);
        let claim = match store.claim(&key).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(handler = self.name, error = %e, "idempotency store claim failed; running the handler");
                return Some((acker, attempt, None));
            }
        };
        match claim {
            Claim::Run => Some((acker, attempt, Some(key))),
            Claim::Done => {
                tracing::debug!(handler = self.name, event_id = %envelope.id, "duplicate delivery skipped");
                self.deferrals.forget(&envelope.id, stream_sequence);
                self.finish(envelope, attempt, Outcome::Duplicate, Duration::ZERO);
                settle(acker.ack(), self.name, "ack").await;
                None
            }
            Claim::Busy => {
                let deferrals = self.deferrals.record(&envelope.id, stream_sequence);
                let delay = DEFERRAL_BACKOFF.delay(deferrals);
                tracing::debug!(handler = self.name, event_id = %envelope.id, deferrals, retry_in = ?delay, "another delivery of the event holds its claim; deferred");
                self.finish(
                    envelope,
                    attempt,
                    Outcome::Deferred { delay },
                    Duration::ZERO,
                );
                settle(acker.nak(delay), self.name, "nak").await;
                None
            }
        }
    }

    fn judge(&self, result: Result<(), HandlerError>, attempt: u32) -> Verdict {
        match result {
            Ok(()) => Verdict::Done,
            Err(e) if !e.is_retryable() || self.retry.is_last(attempt) => Verdict::GiveUp(e),
            Err(e) => Verdict::Retry(e),
        }
    }

    /// Runs the handler once: timeout applied, panics caught, progress
    /// signalled while it runs.
    async fn attempt(
        &self,
        envelope: &Arc<Envelope>,
        attempt: u32,
        acker: &AckHandle,
    ) -> Result<(), HandlerError> {
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        crate::observe::export::in_flight(&self.group, self.name, 1.0);
        let ctx = Context::new(envelope.clone(), attempt, self.name, self.publisher.clone());
        let handler = &self.handler;
        // The call itself decodes the payload: keep it inside the catch.
        let run = AssertUnwindSafe(async move { handler.call(ctx).await }).catch_unwind();
        // One consumer span per attempt, with the OpenTelemetry messaging
        // fields: every line the handler logs carries the event's id and
        // topic. Without a subscriber interested in it, this is a check of
        // the callsite's cached interest.
        let span = tracing::info_span!(
            "eventwire.handle",
            otel.kind = "consumer",
            messaging.system = self.transport.kind(),
            messaging.operation.type = "process",
            messaging.destination.name = %envelope.topic,
            messaging.message.id = %envelope.id,
            messaging.consumer.group.name = %self.group,
            messaging.message.conversation_id = tracing::field::Empty,
            eventwire.handler = self.name,
            eventwire.attempt = attempt,
            eventwire.outcome = tracing::field::Empty,
        );
        if let Some(correlation) = &envelope.correlation_id {
            span.record("messaging.message.conversation_id", correlation.as_str());
        }
        let outcome_span = span.clone();
        let run = tracing::Instrument::instrument(
            async {
                match run.await {
                    Ok(result) => result,
                    Err(panic) => Err(HandlerError::panic(panic)),
                }
            },
            span,
        );
        let result = match self.timeout {
            None => with_progress(acker, run).await,
            Some(limit) => {
                // Most handlers finish on their first poll; only arm the
                // timer (a timer-wheel registration) for those that wait.
                // A first poll cannot be interrupted anyway, so the limit
                // counts from the first time the handler waits.
                let mut run = std::pin::pin!(run);
                match futures_util::poll!(run.as_mut()) {
                    std::task::Poll::Ready(result) => result,
                    std::task::Poll::Pending => {
                        let limited = tokio::time::timeout(limit, run);
                        match with_progress(acker, limited).await {
                            Ok(result) => result,
                            Err(_) => Err(HandlerError::timeout(limit)),
                        }
                    }
                }
            }
        };
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        crate::observe::export::in_flight(&self.group, self.name, -1.0);
        if !outcome_span.is_disabled() {
            let outcome = match &result {
                Ok(()) => "ok",
                Err(e) => e.kind().name(),
            };
            outcome_span.record("eventwire.outcome", outcome);
        }
        result
    }

    async fn give_up(
        &self,
        envelope: &Arc<Envelope>,
        attempt: u32,
        stream_sequence: Option<u64>,
        error: HandlerError,
        acker: AckHandle,
        started: Instant,
    ) {
        let text = error.to_string();
        let (topic, invalid_topic) = dead_letter_route(
            &envelope.topic,
            self.dead_letter_topic,
            &self.group,
            self.name,
        );
        if let Some(invalid) = &invalid_topic {
            tracing::warn!(handler = self.name, event_id = %envelope.id, invalid_topic = %invalid, fallback = %topic, "the dead-letter topic is not a valid topic; using the fallback");
        }
        let letter = DeadLetter {
            envelope: envelope.clone(),
            error: text.clone(),
            error_kind: error.kind(),
            handler: self.name.to_owned(),
            group: self.group.to_string(),
            attempts: attempt,
            stream_sequence,
            failed_at: SystemTime::now(),
            topic,
            invalid_topic,
        };
        let (result, tries) = with_progress(&acker, self.store_dead_letter(letter)).await;
        match result {
            Ok(()) => {
                tracing::error!(
                    handler = self.name,
                    event_id = %envelope.id,
                    topic = %envelope.topic,
                    attempt,
                    error = %text,
                    "event dead-lettered"
                );
                let outcome = Outcome::DeadLettered {
                    error: text,
                    kind: error.kind(),
                };
                self.deferrals.forget(&envelope.id, stream_sequence);
                self.finish(envelope, attempt, outcome, started.elapsed());
                settle(acker.term(), self.name, "term").await;
            }
            Err(dl_error) if dl_error.is_closed() => {
                // Shutting down: hand the event back; the next instance
                // dead-letters it.
                tracing::warn!(
                    handler = self.name,
                    event_id = %envelope.id,
                    error = %text,
                    dead_letter_error = %dl_error,
                    "dead letter failed while closing; event handed back"
                );
                let outcome = Outcome::DeadLetterFailed {
                    error: text,
                    dead_letter_error: dl_error.to_string(),
                };
                self.finish(envelope, attempt, outcome, started.elapsed());
                settle(acker.nak(Duration::ZERO), self.name, "nak").await;
            }
            Err(dl_error) => {
                // Redelivering an event whose dead letter cannot be stored
                // would run its handler again and again and, with a bounded
                // number in flight, stall every later event of the consumer.
                tracing::error!(
                    handler = self.name,
                    event_id = %envelope.id,
                    topic = %envelope.topic,
                    attempt,
                    tries,
                    error = %text,
                    dead_letter_error = %dl_error,
                    "dead letter failed on every try; event dropped"
                );
                let outcome = Outcome::DeadLetterDropped {
                    error: text,
                    dead_letter_error: dl_error.to_string(),
                    tries,
                };
                self.deferrals.forget(&envelope.id, stream_sequence);
                self.finish(envelope, attempt, outcome, started.elapsed());
                settle(acker.term(), self.name, "term").await;
            }
        }
    }

    /// Stores a dead letter, trying again after [`DEAD_LETTER_RETRY_DELAYS`]
    /// (a broker that blinks, a stream being created); returns the last
    /// result and the number of tries. A closing transport is not retried.
    async fn store_dead_letter(
        &self,
        letter: DeadLetter,
    ) -> (Result<(), crate::error::PublishError>, u32) {
        let mut tries = 0;
        let mut delays = DEAD_LETTER_RETRY_DELAYS.iter();
        loop {
            tries += 1;
            let result = self.transport.dead_letter(letter.clone()).await;
            match (&result, delays.next()) {
                (Ok(()), _) | (Err(_), None) => return (result, tries),
                (Err(e), _) if e.is_closed() => return (result, tries),
                (Err(e), Some(delay)) => {
                    tracing::warn!(handler = self.name, event_id = %letter.envelope.id, error = %e, retry_in = ?delay, "dead letter failed; trying again");
                    tokio::time::sleep(*delay).await;
                }
            }
        }
    }

    fn finish(&self, envelope: &Envelope, attempt: u32, outcome: Outcome, elapsed: Duration) {
        self.counters.record(&outcome, elapsed);
        #[cfg(feature = "metrics")]
        crate::observe::export::handler_run(
            self.transport.kind(),
            &envelope.topic,
            &self.group,
            self.name,
            &outcome,
            elapsed,
            envelope.time,
        );
        if let Some(observer) = &self.observer {
            observer.handler_finished(&HandlerRun {
                handler: self.name,
                group: self.group.clone(),
                event_id: envelope.id.clone(),
                topic: envelope.topic.to_string(),
                attempt,
                outcome,
                elapsed,
            });
        }
    }
}

/// The idempotency claim of a running handler. Settled explicitly after the
/// attempt (completed or released); dropped unsettled (the worker was
/// stopped at the shutdown deadline, its future dropped mid-handler), it
/// releases the claim, so the next delivery of the event, here or in
/// another instance sharing the store, runs at once instead of being
/// deferred until the claim times out.
struct ClaimGuard<'a> {
    rt: &'a HandlerRuntime,
    /// `None` when there is nothing to settle (no guard, or a store that failed).
    key: Option<IdempotencyKey>,
}

impl ClaimGuard<'_> {
    /// Completes (after a success) or releases (after a failure) the claim.
    async fn settle(mut self, succeeded: bool) {
        let (Some(key), Some(store)) = (self.key.take(), &self.rt.idempotency) else {
            return;
        };
        let result = if succeeded {
            store.complete(&key).await
        } else {
            store.release(&key).await
        };
        if let Err(e) = result {
            tracing::warn!(handler = self.rt.name, error = %e, "idempotency store update failed");
        }
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        let (Some(key), Some(store)) = (self.key.take(), self.rt.idempotency.clone()) else {
            return;
        };
        let handler = self.rt.name;
        let mut release = Box::pin(async move {
            if let Err(e) = store.release(&key).await {
                tracing::warn!(handler, error = %e, "releasing the claim of a stopped handler failed; it expires after the store's claim timeout");
            }
        });
        // A store that answers at once (the in-memory one) is released
        // here, synchronously; a remote one on the runtime.
        if release.as_mut().now_or_never().is_some() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release);
            }
            Err(_) => tracing::warn!(
                handler,
                "the claim of a stopped handler was not released (no runtime); it expires after the store's claim timeout"
            ),
        }
    }
}

async fn next_delivery(sub: &dyn Subscription, stop: &StopSignal) -> Option<Delivery> {
    if stop.is_stopped() {
        return None;
    }
    if let Some(d) = sub.try_next() {
        return Some(d);
    }
    let mut next = sub.next();
    // Under load a delivery is ready: take it without registering a waiter
    // on the stop signal (that registration costs more than the delivery).
    if let std::task::Poll::Ready(d) = futures_util::poll!(&mut next) {
        return d;
    }
    tokio::select! {
        biased;
        _ = stop.stopped() => None,
        d = next => d,
    }
}

fn retrying(
    handler: &'static str,
    envelope: &Envelope,
    attempt: u32,
    error: HandlerError,
    delay: Duration,
) -> Outcome {
    tracing::warn!(
        handler,
        event_id = %envelope.id,
        topic = %envelope.topic,
        attempt,
        error = %error,
        retry_in = ?delay,
        "handler failed; will retry"
    );
    Outcome::Retrying {
        error: error.to_string(),
        kind: error.kind(),
        delay,
    }
}

async fn settle(op: crate::transport::Settle, handler: &'static str, what: &'static str) {
    if let Err(e) = op.await {
        tracing::warn!(handler, error = %e, "{what} failed; the transport will redeliver");
    }
}

/// Drives `fut`, telling the transport every `progress_interval` that the
/// event is still being worked on.
async fn with_progress<F: std::future::Future>(acker: &AckHandle, fut: F) -> F::Output {
    let Some(every) = acker.progress_interval() else {
        return fut.await;
    };
    tokio::pin!(fut);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = ticker.tick() => {
                if let Err(e) = acker.in_progress().await {
                    tracing::warn!(error = %e, "in-progress signal failed");
                }
            }
        }
    }
}

fn lane_of(envelope: &Envelope, lanes: usize) -> usize {
    let mut h = DefaultHasher::new();
    match &envelope.key {
        Some(key) => key.hash(&mut h),
        // Events without a key have no order to keep: spread them.
        None => envelope.id.hash(&mut h),
    }
    (h.finish() % lanes as u64) as usize
}

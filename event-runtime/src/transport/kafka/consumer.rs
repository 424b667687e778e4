//! Consumer groups: a poll thread per subscription, offsets committed only
//! below the oldest unfinished event of each partition, rebalances that
//! let handed-out events finish before their partitions move.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::{client_config, millis, wire, with_properties, Inner};
use crate::delivery::StartPosition;
use crate::envelope::Envelope;
use crate::error::{TransportError, TransportErrorKind};
use crate::stop::StopSignal;
use crate::transport::{
    AckHandle, Acker, Completion, ConsumerSpec, Delivery, Settle, Subscription,
};

/// How long a stopping subscription waits for its handed-out events before
/// it leaves the group anyway (their partitions' next owner redelivers them).
const STOP_WAIT: Duration = Duration::from_secs(60);

/// How long a poll waits for a record; also how often the poll thread
/// notices a stop.
const POLL: Duration = Duration::from_millis(100);

/// While the workers' queue is full: how long the poll thread waits for
/// room before it looks again (and, once paused, polls for rebalances; no
/// records come while the partitions are paused).
const BACKLOG_WAIT: Duration = Duration::from_millis(100);

/// How long the workers' queue may stay full before the partitions are
/// paused.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

type KafkaConsumer = BaseConsumer<Ctx>;

/// One record on its way to a handler.
struct Pending {
    envelope: Arc<Envelope>,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    epoch: u64,
    attempt: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Polled, not yet handed to a handler (or handed back for a retry).
    Queued,
    /// With a handler.
    Handed,
    /// Settled: its offset may be committed once every earlier one is.
    Done,
}

struct Part {
    epoch: u64,
    slots: BTreeMap<i64, Slot>,
    /// Being revoked: nothing more is handed out of it.
    revoking: bool,
}

/// The records of the assigned partitions that are not committed yet.
#[derive(Default)]
struct Tracker {
    parts: HashMap<Arc<str>, HashMap<i32, Part>>,
    epochs: u64,
    handed: usize,
}

impl Tracker {
    fn assign(&mut self, list: &TopicPartitionList) {
        for e in list.elements() {
            self.epochs += 1;
            let part = Part {
                epoch: self.epochs,
                slots: BTreeMap::new(),
                revoking: false,
            };
            if let Some(old) = self
                .parts
                .entry(Arc::from(e.topic()))
                .or_default()
                .insert(e.partition(), part)
            {
                self.forget(&old);
            }
        }
    }

    fn revoke(&mut self, list: &TopicPartitionList) {
        for e in list.elements() {
            if let Some(old) = self
                .parts
                .get_mut(e.topic())
                .and_then(|p| p.remove(&e.partition()))
            {
                self.forget(&old);
            }
        }
    }

    /// The partitions are about to be revoked: what is queued stays with
    /// them for their next owner.
    fn mark_revoking(&mut self, list: &TopicPartitionList) {
        for e in list.elements() {
            if let Some(part) = self
                .parts
                .get_mut(e.topic())
                .and_then(|p| p.get_mut(&e.partition()))
            {
                part.revoking = true;
            }
        }
    }

    fn revoke_all(&mut self) {
        self.parts.clear();
        self.handed = 0;
    }

    fn forget(&mut self, part: &Part) {
        self.handed -= part.slots.values().filter(|s| **s == Slot::Handed).count();
    }

    fn part(&mut self, topic: &str, partition: i32, epoch: u64) -> Option<&mut Part> {
        self.parts
            .get_mut(topic)
            .and_then(|p| p.get_mut(&partition))
            .filter(|p| p.epoch == epoch)
    }

    /// A polled record; `None` when its partition is not assigned.
    fn register(&mut self, topic: &str, partition: i32, offset: i64) -> Option<(Arc<str>, u64)> {
        let name = self.parts.get_key_value(topic)?.0.clone();
        let part = self.parts.get_mut(topic)?.get_mut(&partition)?;
        if part.revoking {
            return None;
        }
        // The same offset again within one assignment (an offset reset):
        // the slot it has keeps its state.
        part.slots.entry(offset).or_insert(Slot::Queued);
        Some((name, part.epoch))
    }

    /// Marks a queued record as handed out; `false` when its partition moved.
    fn hand_out(&mut self, p: &Pending) -> bool {
        let Some(part) = self
            .part(&p.topic, p.partition, p.epoch)
            .filter(|part| !part.revoking)
        else {
            return false;
        };
        match part.slots.get_mut(&p.offset) {
            Some(slot @ Slot::Queued) => {
                *slot = Slot::Handed;
                self.handed += 1;
                true
            }
            _ => false,
        }
    }

    /// A handed-out record goes back to the queue (a retry, a worker that stopped).
    fn hand_back(&mut self, topic: &str, partition: i32, epoch: u64, offset: i64) {
        if let Some(slot) = self
            .part(topic, partition, epoch)
            .and_then(|p| p.slots.get_mut(&offset))
        {
            if *slot == Slot::Handed {
                *slot = Slot::Queued;
                self.handed -= 1;
            }
        }
    }

    /// A record is settled; returns the offset up to which the partition
    /// may now be committed (inclusive), when it moved.
    fn complete(&mut self, topic: &str, partition: i32, epoch: u64, offset: i64) -> Option<i64> {
        let part = self.part(topic, partition, epoch)?;
        let slot = part.slots.get_mut(&offset)?;
        let was_handed = *slot == Slot::Handed;
        *slot = Slot::Done;
        let mut upto = None;
        while let Some(entry) = part.slots.first_entry() {
            if *entry.get() != Slot::Done {
                break;
            }
            upto = Some(*entry.key());
            entry.remove();
        }
        if was_handed {
            self.handed -= 1;
        }
        upto
    }

    fn busy(&self, list: &TopicPartitionList) -> bool {
        list.elements().iter().any(|e| {
            self.parts
                .get(e.topic())
                .and_then(|p| p.get(&e.partition()))
                .is_some_and(|p| p.slots.values().any(|s| *s == Slot::Handed))
        })
    }
}

/// What the poll thread, the subscription and the ackers share.
struct Shared {
    tracker: Mutex<Tracker>,
    changed: Condvar,
    /// The subscription stopped taking events.
    stopped: StopSignal,
    /// The runtime the subscription was made on is gone (its process was
    /// killed, as far as the test can tell): leave without waiting.
    orphaned: StopSignal,
    queue: mpsc::Sender<Pending>,
    /// Counts assignments, for `subscribe` to wait for the first.
    assigned: watch::Sender<u64>,
    /// Set once the consumer left its group (the poll thread ended).
    left: watch::Sender<bool>,
    start: StartPosition,
    /// Longest wait of a broker request made during a rebalance.
    request_timeout: Duration,
    /// Longest wait for the handed-out events of revoked partitions.
    revoke_wait: Duration,
    label: String,
}

impl Shared {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (blocking) until `done` holds or `within` passed.
    fn wait_until(&self, within: Duration, done: impl Fn(&Tracker) -> bool) {
        let deadline = Instant::now() + within;
        let mut tracker = self.tracker();
        while !done(&tracker) {
            let now = Instant::now();
            if now >= deadline || self.orphaned.is_stopped() {
                return;
            }
            tracker = self
                .changed
                .wait_timeout(tracker, (deadline - now).min(POLL))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn complete(
        &self,
        consumer: &KafkaConsumer,
        topic: &str,
        partition: i32,
        epoch: u64,
        offset: i64,
    ) {
        let mut tracker = self.tracker();
        if let Some(upto) = tracker.complete(topic, partition, epoch, offset) {
            // Under the lock (storing does not block), so that stores of one
            // partition happen in order. The partition may have moved
            // meanwhile: nothing is stored then.
            let _ = consumer.store_offset(topic, partition, upto);
        }
        drop(tracker);
        self.changed.notify_all();
    }
}

/// The consumer's callbacks: rebalances.
struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(consumer = %self.shared.label, facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(consumer = %self.shared.label, facility = fac, "librdkafka: {log_message}")
            }
            _ => {
                tracing::debug!(consumer = %self.shared.label, facility = fac, "librdkafka: {log_message}")
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                tracing::warn!(consumer = %self.shared.label, error = ?other, "Kafka rebalance failed; partitions released");
                let _ = consumer.unassign();
                self.shared.tracker().revoke_all();
                self.shared.changed.notify_all();
            }
        }
    }
}

impl Ctx {
    /// Takes the partitions at their committed offsets; a partition the
    /// group never committed starts where the handler asked (the end now,
    /// or the beginning), resolved to an offset and committed at once, so
    /// that an instance that stops before handling anything does not move
    /// the group's start.
    fn assign(&self, consumer: &KafkaConsumer, tpl: &TopicPartitionList) {
        let timeout = self.shared.request_timeout;
        let committed = consumer.committed_offsets(tpl.clone(), timeout);
        let mut assignment = TopicPartitionList::new();
        let mut fresh = TopicPartitionList::new();
        for e in tpl.elements() {
            let (topic, partition) = (e.topic(), e.partition());
            let stored = match &committed {
                Ok(c) => c.find_partition(topic, partition).map(|x| match x.error() {
                    Ok(()) => x.offset(),
                    // Unknown, not absent: never overwrite it.
                    Err(_) => Offset::Stored,
                }),
                // Let librdkafka read them itself (falling back to
                // `auto.offset.reset`).
                Err(_) => Some(Offset::Stored),
            };
            let offset = match stored {
                Some(o @ (Offset::Offset(_) | Offset::Stored)) => o,
                _ => {
                    // "New" means new since this consumer's first
                    // assignment: a partition that appears later (a topic
                    // created for a pattern, partitions added) is read
                    // from its beginning, or its first events are lost.
                    let first = *self.shared.assigned.borrow() == 0;
                    let start =
                        consumer
                            .fetch_watermarks(topic, partition, timeout)
                            .map(|(low, high)| match self.shared.start {
                                StartPosition::New if first => high,
                                _ => low,
                            });
                    match start {
                        Ok(n) => {
                            let _ = fresh.add_partition_offset(topic, partition, Offset::Offset(n));
                            Offset::Offset(n)
                        }
                        Err(_) => match self.shared.start {
                            StartPosition::All => Offset::Beginning,
                            StartPosition::New => Offset::End,
                        },
                    }
                }
            };
            let _ = assignment.add_partition_offset(topic, partition, offset);
        }
        if let Err(e) = consumer.assign(&assignment) {
            tracing::error!(consumer = %self.shared.label, error = %e, "Kafka assignment failed");
            return;
        }
        if fresh.count() > 0 {
            if let Err(e) = consumer.commit(&fresh, CommitMode::Sync) {
                tracing::warn!(consumer = %self.shared.label, error = %e, "committing the start offsets of new partitions");
            }
        }
        self.shared.tracker().assign(tpl);
        self.shared.changed.notify_all();
        self.shared.assigned.send_modify(|n| *n += 1);
    }

    /// Lets the handed-out events of the revoked partitions finish (a
    /// bounded time), commits what finished, and lets the rest go.
    fn revoke(&self, consumer: &KafkaConsumer, tpl: &TopicPartitionList) {
        self.shared.tracker().mark_revoking(tpl);
        self.shared
            .wait_until(self.shared.revoke_wait, |t| !t.busy(tpl));
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            if e.rdkafka_error_code() != Some(rdkafka::error::RDKafkaErrorCode::NoOffset) {
                tracing::warn!(consumer = %self.shared.label, error = %e, "committing offsets before a rebalance");
            }
        }
        self.shared.tracker().revoke(tpl);
        self.shared.changed.notify_all();
        let _ = consumer.unassign();
    }
}

/// Marks the subscription stopped and its consumer gone when the poll
/// thread ends.
struct Left(Arc<Shared>);

impl Drop for Left {
    fn drop(&mut self) {
        self.0.stopped.stop();
        self.0.left.send_replace(true);
    }
}

/// Sets a flag when dropped: the task holding it ended with its runtime.
struct OnDrop(StopSignal);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

pub(super) async fn subscribe(
    inner: Arc<Inner>,
    spec: ConsumerSpec,
) -> Result<Box<dyn Subscription>, TransportError> {
    if inner.closed.is_stopped() {
        return Err(TransportError::closed());
    }
    let config = &inner.config;
    if !crate::topic::is_pattern(spec.topic) {
        inner
            .ensure_topics(&[config.kafka_topic(spec.topic)])
            .await?;
    }
    let consumer_name = spec.consumer_name();
    let group_id = config.group_id(spec.durable.as_deref().unwrap_or(&consumer_name));
    let (queue, receiver) = mpsc::channel(spec.concurrency.max(1) * 2);
    let (assigned, mut assignments) = watch::channel(0u64);
    let (left, _) = watch::channel(false);
    let orphaned = StopSignal::default();
    let shared = Arc::new(Shared {
        tracker: Mutex::default(),
        changed: Condvar::new(),
        stopped: StopSignal::default(),
        orphaned: orphaned.clone(),
        queue,
        assigned,
        left,
        start: spec.start,
        request_timeout: config.connect_timeout,
        revoke_wait: (config.session_timeout / 2).min(Duration::from_secs(30)),
        label: group_id.clone(),
    });
    let mut settings = client_config(config);
    let session = config.session_timeout;
    settings
        .set("group.id", &group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", millis(config.commit_interval))
        .set(
            "auto.offset.reset",
            match spec.start {
                StartPosition::All => "earliest",
                StartPosition::New => "latest",
            },
        )
        .set("session.timeout.ms", millis(session))
        .set(
            "heartbeat.interval.ms",
            millis((session / 3).min(Duration::from_secs(3))),
        )
        .set(
            "max.poll.interval.ms",
            millis(session.max(Duration::from_secs(300))),
        );
    // librdkafka's warnings and errors reach `tracing` through `Ctx::log`.
    settings.set_log_level(RDKafkaLogLevel::Warning);
    let consumer: KafkaConsumer = with_properties(settings, config)
        .create_with_context(Ctx {
            shared: shared.clone(),
        })
        .map_err(|e| {
            TransportError::with_source(
                TransportErrorKind::Config,
                "invalid Kafka consumer settings",
                e,
            )
        })?;
    let subscription = config.subscription(spec.topic);
    consumer.subscribe(&[&subscription]).map_err(|e| {
        TransportError::with_source(
            TransportErrorKind::Subscribe,
            format!("subscribing consumer group `{group_id}` to `{subscription}`"),
            e,
        )
    })?;
    let consumer = Arc::new(consumer);
    inner
        .groups
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((group_id.clone(), spec.topic));
    let handle = tokio::runtime::Handle::current();
    // Ends with the runtime: the poll thread then leaves at once.
    handle.spawn(async move {
        let _guard = OnDrop(orphaned);
        std::future::pending::<()>().await
    });
    let poller = Poller {
        inner: inner.clone(),
        shared: shared.clone(),
        consumer: consumer.clone(),
        handle,
        names: (spec.group.to_string(), spec.handler.to_owned()),
    };
    let token = inner.consumers.token();
    std::thread::Builder::new()
        .name(format!("eventwire-kafka-{}", spec.handler))
        .spawn(move || {
            let _token = token;
            // However the thread ends (a panic in a callback included),
            // `close` and the workers learn that it did.
            let _left = Left(poller.shared.clone());
            poller.run()
        })
        .map_err(|e| {
            TransportError::with_source(
                TransportErrorKind::Subscribe,
                "starting the poll thread",
                e,
            )
        })?;
    // The first assignment: from then on, what is published is delivered
    // (a new group starts at the end of its partitions as they were then).
    let within = session + Duration::from_secs(30);
    let joined = tokio::time::timeout(within, assignments.wait_for(|n| *n > 0)).await;
    if !matches!(joined, Ok(Ok(_))) {
        shared.stopped.stop();
        return Err(TransportError::new(
            TransportErrorKind::Subscribe,
            format!("consumer group `{group_id}` got no partition assignment within {within:?}"),
        ));
    }
    Ok(Box::new(KafkaSubscription {
        shared,
        consumer,
        receiver: tokio::sync::Mutex::new(receiver),
    }))
}

/// The poll thread of one subscription.
struct Poller {
    inner: Arc<Inner>,
    shared: Arc<Shared>,
    consumer: Arc<KafkaConsumer>,
    handle: tokio::runtime::Handle,
    names: (String, String),
}

impl Poller {
    fn ending(&self) -> bool {
        self.shared.stopped.is_stopped()
            || self.shared.orphaned.is_stopped()
            || self.inner.closed.is_stopped()
            || self.shared.queue.is_closed()
    }

    fn run(self) {
        // Records polled that the workers' queue had no room for yet. When
        // the queue stays full longer than `PAUSE_AFTER`, the assigned
        // partitions are paused and the thread keeps polling (with no
        // records coming) so that rebalances and librdkafka's liveness
        // check go on however slow the handlers are; on resume, fetching
        // continues after the last record polled.
        let mut backlog: VecDeque<Pending> = VecDeque::new();
        let mut paused_at: Option<u64> = None;
        let mut blocked_since: Option<Instant> = None;
        while !self.ending() {
            while let Some(pending) = backlog.pop_front() {
                match self.shared.queue.try_send(pending) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(p)) => {
                        backlog.push_front(p);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        backlog.clear();
                        break;
                    }
                }
            }
            let timeout = if backlog.is_empty() {
                blocked_since = None;
                if paused_at.take().is_some() {
                    self.set_paused(false);
                }
                POLL
            } else {
                // Waiting for room is the common case and short: pausing
                // (which drops what librdkafka prefetched) only pays once
                // the workers stay busy for a while.
                let since = *blocked_since.get_or_insert_with(Instant::now);
                let generation = *self.shared.assigned.borrow();
                if since.elapsed() >= PAUSE_AFTER && paused_at != Some(generation) {
                    // Again after a rebalance: new partitions start unpaused.
                    self.set_paused(true);
                    paused_at = Some(generation);
                }
                // Until a worker takes a record (it signals `changed`).
                self.shared.wait_until(BACKLOG_WAIT, |_| {
                    self.shared.queue.capacity() > 0 || self.shared.stopped.is_stopped()
                });
                if paused_at.is_none() {
                    // Not paused: polling now would only add records.
                    continue;
                }
                Duration::ZERO
            };
            let Some(result) = self.consumer.poll(timeout) else {
                continue;
            };
            let message = match result {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(consumer = %self.shared.label, error = %e, "Kafka consumer error");
                    continue;
                }
            };
            if let Some(pending) = self.receive(&message) {
                backlog.push_back(pending);
            }
        }
        if !self.shared.orphaned.is_stopped() {
            // Handed-out events finish and their offsets are stored.
            self.shared.wait_until(STOP_WAIT, |t| t.handed == 0);
        }
        // Leave the group: the revoke callback commits what finished.
        if self.consumer.close_queue().is_ok() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !self.consumer.closed() && Instant::now() < deadline {
                let _ = self.consumer.poll(POLL);
            }
        }
    }

    /// The record as a delivery for the workers; a record that is not an
    /// envelope is dead-lettered instead (its offset completes once the
    /// letter is stored).
    fn receive(&self, message: &rdkafka::message::BorrowedMessage<'_>) -> Option<Pending> {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let (topic_name, epoch) = self.shared.tracker().register(topic, partition, offset)?;
        let payload = Bytes::copy_from_slice(message.payload().unwrap_or_default());
        match wire::envelope_of(
            &self.inner.config,
            topic,
            message.key(),
            message.headers(),
            payload.clone(),
        ) {
            Ok(envelope) => Some(Pending {
                envelope: Arc::new(envelope),
                topic: topic_name,
                partition,
                offset,
                epoch,
                attempt: 1,
            }),
            Err(error) => {
                let letter = wire::malformed_letter(
                    topic,
                    self.inner.config.topic_of(topic),
                    message.headers(),
                    payload,
                    &error,
                    (&self.names.0, &self.names.1),
                );
                tracing::warn!(consumer = %self.shared.label, topic, partition, offset, %error, "not an eventwire envelope: dead-lettered");
                let (inner, shared, consumer) = (
                    self.inner.clone(),
                    self.shared.clone(),
                    self.consumer.clone(),
                );
                self.handle.spawn(async move {
                    if let Err(e) = inner.dead_letter(letter).await {
                        tracing::error!(consumer = %shared.label, topic = %topic_name, partition, offset, error = %e, "dead-lettering a record that is not an envelope failed; the record is skipped");
                    }
                    shared.complete(&consumer, &topic_name, partition, epoch, offset);
                });
                None
            }
        }
    }

    /// Pauses or resumes fetching on every assigned partition.
    fn set_paused(&self, paused: bool) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };

        let done = if paused {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        if let Err(e) = done {
            tracing::warn!(consumer = %self.shared.label, error = %e, paused, "pausing or resuming Kafka partitions");
        }
    }
}

struct KafkaSubscription {
    shared: Arc<Shared>,
    consumer: Arc<KafkaConsumer>,
    receiver: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        self.shared.stopped.stop();
    }
}

impl Subscription for KafkaSubscription {
    fn next(&self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            loop {
                if self.shared.stopped.is_stopped() {
                    return None;
                }
                let pending = tokio::select! {
                    biased;
                    _ = self.shared.stopped.stopped() => return None,
                    p = async { self.receiver.lock().await.recv().await } => p?,
                };
                if !self.shared.tracker().hand_out(&pending) {
                    // Its partition moved: the new owner has it.
                    continue;
                }
                self.shared.changed.notify_all();
                return Some(Delivery {
                    envelope: pending.envelope.clone(),
                    attempt: pending.attempt,
                    stream_sequence: None,
                    acker: AckHandle::new(Box::new(KafkaAcker {
                        shared: self.shared.clone(),
                        consumer: self.consumer.clone(),
                        pending: Some(pending),
                    })),
                });
            }
        })
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        self.shared.stopped.stop();
        Box::pin(async {})
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.shared.stopped.stop();
        let mut left = self.shared.left.subscribe();
        Box::pin(async move {
            let _ = left.wait_for(|l| *l).await;
        })
    }
}

struct KafkaAcker {
    shared: Arc<Shared>,
    consumer: Arc<KafkaConsumer>,
    pending: Option<Pending>,
}

impl KafkaAcker {
    fn done(&mut self) -> Settle {
        if let Some(p) = self.pending.take() {
            self.shared
                .complete(&self.consumer, &p.topic, p.partition, p.epoch, p.offset);
        }
        Settle::done()
    }

    /// Puts the record back in the workers' queue after `delay` as attempt
    /// `attempt`; the offset stays uncommitted meanwhile.
    fn requeue(shared: Arc<Shared>, mut pending: Pending, attempt: u32, delay: Duration) {
        shared.tracker().hand_back(
            &pending.topic,
            pending.partition,
            pending.epoch,
            pending.offset,
        );
        shared.changed.notify_all();
        if shared.stopped.is_stopped() {
            // Uncommitted: the partition's next owner delivers it again.
            return;
        }
        pending.attempt = attempt;
        if delay.is_zero() {
            match shared.queue.try_send(pending) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(p)) => pending = p,
            }
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            tokio::select! {
                _ = shared.stopped.stopped() => {}
                _ = async {
                    tokio::time::sleep(delay).await;
                    let _ = shared.queue.send(pending).await;
                } => {}
            }
        });
    }
}

impl Drop for KafkaAcker {
    fn drop(&mut self) {
        // Unsettled (a worker stopped mid-event): hand it back at once.
        if let Some(p) = self.pending.take() {
            let attempt = p.attempt;
            Self::requeue(self.shared.clone(), p, attempt, Duration::ZERO);
        }
    }
}

impl Acker for KafkaAcker {
    fn ack(mut self: Box<Self>) -> Settle {
        self.done()
    }

    fn nak(mut self: Box<Self>, delay: Duration) -> Settle {
        if let Some(p) = self.pending.take() {
            let attempt = p.attempt + 1;
            Self::requeue(self.shared.clone(), p, attempt, delay);
        }
        Settle::done()
    }

    fn term(mut self: Box<Self>) -> Settle {
        self.done()
    }

    fn in_progress(&self) -> Completion<'_, Result<(), TransportError>> {
        // Kafka does not redeliver a running event (only a rebalance moves it).
        Completion::done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(partitions: &[i32]) -> TopicPartitionList {
        let mut l = TopicPartitionList::new();
        for p in partitions {
            l.add_partition("t", *p);
        }
        l
    }

    fn pending(t: &mut Tracker, partition: i32, offset: i64) -> Pending {
        let (topic, epoch) = t.register("t", partition, offset).unwrap();
        let p = Pending {
            envelope: Arc::new(crate::envelope::wire_sample()),
            topic,
            partition,
            offset,
            epoch,
            attempt: 1,
        };
        assert!(t.hand_out(&p));
        p
    }

    #[test]
    fn completions_out_of_order_commit_only_the_finished_prefix() {
        let mut t = Tracker::default();
        t.assign(&list(&[0, 1]));
        let p: Vec<Pending> = (10..14).map(|o| pending(&mut t, 0, o)).collect();
        let other = pending(&mut t, 1, 7);
        assert_eq!(t.handed, 5);
        assert_eq!(t.complete("t", 0, p[2].epoch, 12), None);
        assert_eq!(t.complete("t", 0, p[1].epoch, 11), None);
        assert_eq!(t.complete("t", 0, p[0].epoch, 10), Some(12));
        assert_eq!(t.complete("t", 1, other.epoch, 7), Some(7));
        assert!(t.busy(&list(&[0])) && !t.busy(&list(&[1])));
        // A retry hands the event back: still holding the partition's commit.
        t.hand_back("t", 0, p[3].epoch, 13);
        assert!(!t.busy(&list(&[0])));
        assert_eq!(t.handed, 0);
        assert!(t.hand_out(&p[3]));
        assert_eq!(t.complete("t", 0, p[3].epoch, 13), Some(13));
    }

    #[test]
    fn a_revoked_partition_ignores_late_completions_and_records_of_its_past() {
        let mut t = Tracker::default();
        t.assign(&list(&[0]));
        let old = pending(&mut t, 0, 5);
        t.revoke(&list(&[0]));
        assert_eq!(t.handed, 0);
        assert_eq!(t.complete("t", 0, old.epoch, 5), None);
        assert_eq!(t.register("t", 0, 6), None, "not assigned");
        t.assign(&list(&[0]));
        assert!(!t.hand_out(&old), "a record of the previous assignment");
        let new = pending(&mut t, 0, 5);
        assert_ne!(new.epoch, old.epoch);
        assert_eq!(t.complete("t", 0, old.epoch, 5), None);
        assert_eq!(t.complete("t", 0, new.epoch, 5), Some(5));
    }
}

//! The in-memory bus: the embedded default transport.
//!
//! One process, no server. It carries the same envelopes, encoded by the same
//! codecs, as the remote transports, and applies the same consumer-group,
//! retry and dead-letter rules:
//!
//! - every consumer (group, handler) has a bounded queue; every consumer
//!   whose topic pattern matches receives each event once; instances that
//!   join the same consumer share its queue, so each event reaches one of them;
//! - a full queue makes `publish` wait (backpressure); with
//!   [`MemoryTransport::with_publish_timeout`] it fails with
//!   [`PublishError::Backpressure`] instead. Nothing is ever dropped silently;
//! - a nak re-queues the event after its delay; a delivery dropped without
//!   being settled is re-queued at once;
//! - consumer queues outlive the apps that use them, so an app can stop and
//!   another take over on the same bus without losing queued events.
//!
//! What it does not promise: nothing survives the process. An event that no
//! consumer's pattern matches reaches nobody (as on NATS); it is still
//! counted by [`MemoryTransport::published`] when recording is on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, Notify};
use tokio_util::task::TaskTracker;

mod subscription;

use self::subscription::{Lane, MemorySubscription};
use crate::delivery::DeadLetter;
use crate::envelope::Envelope;
use crate::error::{PublishError, TransportError};
use crate::stop::StopSignal;
use crate::topic::matches;
use crate::transport::{
    check_topic, Capabilities, Completion, ConsumerSpec, PublishFuture, Subscription, Transport,
};

/// Default queue capacity of one consumer.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The in-memory bus. Clones share the same bus.
///
/// ```
/// use eventwire::MemoryTransport;
/// let bus = MemoryTransport::new().with_capacity(256);
/// assert_eq!(bus.dead_letters().len(), 0);
/// ```
#[derive(Clone)]
pub struct MemoryTransport {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    publish_timeout: Option<Duration>,
    consumers: RwLock<HashMap<String, Arc<Consumer>>>,
    routes: RwLock<HashMap<String, Arc<[Arc<Consumer>]>>>,
    dead_letters: Mutex<Vec<DeadLetter>>,
    published: Option<Mutex<Vec<Arc<Envelope>>>>,
    /// Copies of events queued, in flight or waiting for a redelivery.
    outstanding: AtomicUsize,
    idle: Notify,
    closed: StopSignal,
    timers: TaskTracker,
}

struct Consumer {
    name: String,
    pattern: &'static str,
    capacity: usize,
    tx: mpsc::Sender<Queued>,
    /// Instances of one consumer compete for its queue: each takes the
    /// receiver in turn.
    rx: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
}

struct Queued {
    envelope: Arc<Envelope>,
    attempt: u32,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("capacity", &self.inner.capacity)
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

impl MemoryTransport {
    /// A new bus with queues of [`DEFAULT_CAPACITY`].
    pub fn new() -> Self {
        Self::build(DEFAULT_CAPACITY, None, false)
    }

    fn build(capacity: usize, publish_timeout: Option<Duration>, record: bool) -> Self {
        MemoryTransport {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                publish_timeout,
                consumers: RwLock::default(),
                routes: RwLock::default(),
                dead_letters: Mutex::default(),
                published: record.then(Mutex::default),
                outstanding: AtomicUsize::new(0),
                idle: Notify::new(),
                closed: StopSignal::default(),
                timers: TaskTracker::new(),
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut (usize, Option<Duration>, bool))) -> Self {
        let mut cfg = (
            self.inner.capacity,
            self.inner.publish_timeout,
            self.inner.published.is_some(),
        );
        f(&mut cfg);
        Self::build(cfg.0, cfg.1, cfg.2)
    }

    /// Sets the queue capacity of every consumer (before the bus is used).
    #[must_use = "the configured bus is returned; the original is unchanged"]
    pub fn with_capacity(self, capacity: usize) -> Self {
        self.rebuild(|c| c.0 = capacity)
    }

    /// Fails a publish with [`PublishError::Backpressure`] when a queue stays
    /// full this long, instead of waiting indefinitely.
    #[must_use = "the configured bus is returned; the original is unchanged"]
    pub fn with_publish_timeout(self, timeout: Duration) -> Self {
        self.rebuild(|c| c.1 = Some(timeout))
    }

    /// Records every published envelope, for [`MemoryTransport::published`].
    #[must_use = "the configured bus is returned; the original is unchanged"]
    pub fn with_recording(self) -> Self {
        self.rebuild(|c| c.2 = true)
    }

    /// Every envelope published so far, in order (empty unless recording).
    pub fn published(&self) -> Vec<Arc<Envelope>> {
        match &self.inner.published {
            Some(log) => log.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Vec::new(),
        }
    }

    /// Dead letters stored so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner
            .dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Event copies queued, in flight, or waiting for a redelivery.
    pub fn outstanding(&self) -> usize {
        self.inner.outstanding.load(Ordering::Acquire)
    }

    /// Events waiting in the queue of one consumer (`<group>__<handler>`).
    pub fn queued(&self, consumer: &str) -> usize {
        self.inner
            .consumers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(consumer)
            .map_or(0, |c| c.capacity - c.tx.capacity())
    }

    /// Resolves once no event is queued, in flight or waiting for a redelivery.
    pub async fn wait_idle(&self) {
        self.inner.wait_idle().await
    }

    fn routes(&self, topic: &str) -> Arc<[Arc<Consumer>]> {
        if let Some(r) = self
            .inner
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
        {
            return r.clone();
        }
        let consumers = self
            .inner
            .consumers
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut matching: Vec<Arc<Consumer>> = consumers
            .values()
            .filter(|c| matches(c.pattern, topic))
            .cloned()
            .collect();
        // Deterministic fan-out order keeps tests and backpressure reproducible.
        matching.sort_by(|a, b| a.name.cmp(&b.name));
        let route: Arc<[Arc<Consumer>]> = matching.into();
        self.inner
            .routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_owned(), route.clone());
        route
    }

    /// Waits for room in the queue of `routes[from]`, then delivers to the
    /// remaining consumers (backpressure).
    async fn publish_slow(
        &self,
        routes: Arc<[Arc<Consumer>]>,
        from: usize,
        first: Queued,
    ) -> Result<(), PublishError> {
        let envelope = first.envelope.clone();
        self.send_waiting(&routes[from], first).await?;
        for consumer in routes.iter().skip(from + 1) {
            self.inner.outstanding.fetch_add(1, Ordering::AcqRel);
            let queued = Queued {
                envelope: envelope.clone(),
                attempt: 1,
            };
            self.send_waiting(consumer, queued).await?;
        }
        Ok(())
    }

    /// Sends, waiting for room up to the publish timeout; on failure the
    /// event copy is no longer outstanding.
    async fn send_waiting(&self, consumer: &Consumer, queued: Queued) -> Result<(), PublishError> {
        let topic = &queued.envelope.topic;
        let topic = topic.to_string();
        let send = consumer.tx.send(queued);
        let sent = match self.inner.publish_timeout {
            None => send.await.map_err(|_| PublishError::closed(&topic)),
            Some(limit) => match tokio::time::timeout(limit, send).await {
                Ok(r) => r.map_err(|_| PublishError::closed(&topic)),
                Err(_) => Err(PublishError::Backpressure {
                    topic,
                    consumer: consumer.name.clone(),
                    waited: limit,
                }),
            },
        };
        if sent.is_err() {
            self.inner.settled();
        }
        sent
    }
}

impl Inner {
    fn settled(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Puts an event back in its consumer's queue after `delay`.
    fn requeue(self: &Arc<Self>, consumer: Arc<Consumer>, queued: Queued, delay: Duration) {
        if delay.is_zero() {
            match consumer.tx.try_send(queued) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.settled();
                    return;
                }
                Err(mpsc::error::TrySendError::Full(q)) => {
                    return self.requeue_later(consumer, q, delay)
                }
            }
        }
        self.requeue_later(consumer, queued, delay)
    }

    fn requeue_later(self: &Arc<Self>, consumer: Arc<Consumer>, queued: Queued, delay: Duration) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime left (process exit): the bus dies with it.
            self.settled();
            return;
        };
        let inner = self.clone();
        let closed = self.closed.clone();
        self.timers.spawn_on(
            async move {
                let requeued = tokio::select! {
                    _ = closed.stopped() => false,
                    sent = async {
                        tokio::time::sleep(delay).await;
                        consumer.tx.send(queued).await.is_ok()
                    } => sent,
                };
                if !requeued {
                    inner.settled();
                }
            },
            &handle,
        );
    }
}

impl Transport for MemoryTransport {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable_consumers: true,
            replay: false,
            at_least_once: false,
            max_payload: None,
            queues_outlive_instances: true,
            deduplicates_publishes: false,
            stream_positions: false,
            counts_deliveries: true,
        }
    }

    fn publish(&self, envelope: Envelope) -> PublishFuture<'_> {
        if self.inner.closed.is_stopped() {
            return Completion::ready(Err(PublishError::closed(&envelope.topic)));
        }
        if let Err(e) = check_topic(&envelope.topic) {
            return Completion::ready(Err(e));
        }
        let envelope = Arc::new(envelope);
        if let Some(log) = &self.inner.published {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(envelope.clone());
        }
        let routes = self.routes(&envelope.topic);
        // Fast path: every queue has room, nothing to wait for.
        for (i, consumer) in routes.iter().enumerate() {
            self.inner.outstanding.fetch_add(1, Ordering::AcqRel);
            let queued = Queued {
                envelope: envelope.clone(),
                attempt: 1,
            };
            match consumer.tx.try_send(queued) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.inner.settled();
                    return Completion::ready(Err(PublishError::closed(&envelope.topic)));
                }
                Err(mpsc::error::TrySendError::Full(queued)) => {
                    return Completion::pending(self.publish_slow(routes.clone(), i, queued));
                }
            }
        }
        Completion::ready(Ok(()))
    }

    fn subscribe(
        &self,
        spec: ConsumerSpec,
    ) -> BoxFuture<'_, Result<Box<dyn Subscription>, TransportError>> {
        Box::pin(async move {
            if self.inner.closed.is_stopped() {
                return Err(TransportError::closed());
            }
            let name = spec.consumer_name();
            let consumer = {
                let mut consumers = self
                    .inner
                    .consumers
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                match consumers.get(&name) {
                    Some(c) if c.pattern != spec.topic => {
                        return Err(TransportError::config(format!(
                            "consumer `{name}` already subscribes to `{}`, not `{}`",
                            c.pattern, spec.topic
                        )))
                    }
                    Some(c) => c.clone(),
                    None => {
                        let (tx, rx) = mpsc::channel(self.inner.capacity);
                        let c = Arc::new(Consumer {
                            name: name.clone(),
                            pattern: spec.topic,
                            capacity: self.inner.capacity,
                            tx,
                            rx: tokio::sync::Mutex::new(rx),
                        });
                        consumers.insert(name, c.clone());
                        self.inner
                            .routes
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .clear();
                        c
                    }
                }
            };
            Ok(Box::new(MemorySubscription {
                lane: Arc::new(Lane {
                    inner: self.inner.clone(),
                    consumer,
                }),
                stopped: StopSignal::default(),
            }) as Box<dyn Subscription>)
        })
    }

    fn dead_letter(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), PublishError>> {
        if let Err(e) = check_topic(&letter.topic) {
            return Box::pin(std::future::ready(Err(e)));
        }
        self.inner
            .dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(letter);
        Box::pin(std::future::ready(Ok(())))
    }

    fn wait_idle(&self) -> Option<BoxFuture<'static, ()>> {
        let inner = self.inner.clone();
        Some(Box::pin(async move { inner.wait_idle().await }))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            self.inner.closed.stop();
            self.inner.timers.close();
            self.inner.timers.wait().await;
            for c in self
                .inner
                .consumers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
            {
                if let Ok(mut rx) = c.rx.try_lock() {
                    rx.close();
                }
            }
            Ok(())
        })
    }
}

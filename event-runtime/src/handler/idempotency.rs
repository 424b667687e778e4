//! The consumer-side de-duplication guard: a redelivered event (at-least-once
//! delivery, a publisher that retried) does not run a handler's side effect
//! twice.
//!
//! Before a handler runs, the guard asks its store whether this (group,
//! handler, event id) already completed; if so the delivery is acknowledged
//! without running the handler. After a success the key is recorded. The
//! window that remains (a crash after the side effect, before the record)
//! can only be closed by recording in the same transaction as the side
//! effect: implement [`IdempotencyStore`] on your database for that.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use crate::envelope::EventId;
use crate::transport::BoxError;

/// What identifies one handler's processing of one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// The consumer group.
    pub group: Arc<str>,
    /// The handler (two handlers of one group each process the event once).
    pub handler: &'static str,
    /// The event.
    pub event_id: EventId,
}

/// Where completed keys are recorded. Implement it on a durable store
/// (a database table, Redis) so that restarts keep the guard.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Whether `key` was recorded as completed.
    fn is_done<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<bool, BoxError>>;
    /// Records `key` as completed.
    fn mark_done<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// An in-process store keeping the most recent `capacity` keys.
///
/// ```
/// use eventwire::handler::InMemoryIdempotency;
/// let store = InMemoryIdempotency::new(100_000);
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryIdempotency {
    inner: Arc<Mutex<Recent>>,
}

#[derive(Debug)]
struct Recent {
    capacity: usize,
    keys: HashSet<IdempotencyKey>,
    order: VecDeque<IdempotencyKey>,
}

impl InMemoryIdempotency {
    /// Default number of keys kept.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A store that forgets the oldest keys beyond `capacity`.
    pub fn new(capacity: usize) -> Self {
        InMemoryIdempotency {
            inner: Arc::new(Mutex::new(Recent {
                capacity: capacity.max(1),
                keys: HashSet::new(),
                order: VecDeque::new(),
            })),
        }
    }

    /// Keys recorded.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .len()
    }

    /// Whether no key is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for InMemoryIdempotency {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl IdempotencyStore for InMemoryIdempotency {
    fn is_done<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<bool, BoxError>> {
        let done = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .contains(key);
        Box::pin(std::future::ready(Ok(done)))
    }

    fn mark_done<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<(), BoxError>> {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if r.keys.insert(key.clone()) {
            r.order.push_back(key.clone());
            while r.order.len() > r.capacity {
                if let Some(old) = r.order.pop_front() {
                    r.keys.remove(&old);
                }
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

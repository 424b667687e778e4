//! The consumer-side de-duplication guard: a redelivered event (at-least-once
//! delivery, a publisher that retried) does not run a handler's side effect
//! twice.
//!
//! Before a handler runs, the guard *claims* (group, handler, event id) in its
//! store. The claim fails when the key already completed (the delivery is
//! acknowledged without running the handler) or when another delivery of the
//! same event is running right now (this one is handed back for later). After
//! a success the key is recorded as completed; after a failure the claim is
//! released so a retry can run; a run stopped at the shutdown deadline
//! releases it too (when its worker is dropped), so the event's next
//! delivery runs at once, in this instance or in another sharing the store.
//! A delivery handed back because the claim is busy (a *deferral*) comes
//! again after 100 ms, then 200, 400 ms, ... at most 5 s, and is not counted
//! as an attempt (see [`Context::attempt`](crate::Context::attempt)).
//! The window that remains (a crash after the
//! side effect, before the record) can only be closed by recording in the
//! same transaction as the side effect: implement [`IdempotencyStore`] on
//! your database for that.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::envelope::EventId;
use crate::error::BoxError;

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

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody processed this event yet: run the handler.
    Run,
    /// The handler already completed for this event: skip it.
    Done,
    /// Another delivery of this event is running now: try again later.
    Busy,
}

/// Where claims and completed keys are recorded. Implement it on a durable
/// store (a database table, Redis) so that restarts keep the guard.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for one run, atomically.
    fn claim<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<Claim, BoxError>>;
    /// Records `key` as completed (releases the claim).
    fn complete<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Releases the claim after a failed run, so a retry can claim it.
    fn release<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// An in-process store keeping the most recent `capacity` completed keys.
/// A claim older than the claim timeout is taken to belong to a run that
/// died, and can be claimed again.
///
/// ```
/// use eventwire::InMemoryIdempotency;
/// let store = InMemoryIdempotency::new(100_000);
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryIdempotency {
    inner: Arc<Mutex<Recent>>,
}

#[derive(Debug)]
enum KeyState {
    Running(Instant),
    Done,
}

#[derive(Debug)]
struct Recent {
    capacity: usize,
    claim_timeout: Duration,
    keys: HashMap<IdempotencyKey, KeyState>,
    done_order: VecDeque<IdempotencyKey>,
}

impl InMemoryIdempotency {
    /// Default number of completed keys kept.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A store that forgets the oldest completed keys beyond `capacity`.
    pub fn new(capacity: usize) -> Self {
        InMemoryIdempotency {
            inner: Arc::new(Mutex::new(Recent {
                capacity: capacity.max(1),
                claim_timeout: Duration::from_secs(600),
                keys: HashMap::new(),
                done_order: VecDeque::new(),
            })),
        }
    }

    /// How long a claim holds before it is taken for dead (default 10 min;
    /// keep it above the longest handler run).
    #[must_use = "the configured store is returned"]
    pub fn with_claim_timeout(self, timeout: Duration) -> Self {
        self.lock().claim_timeout = timeout;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completed keys recorded.
    pub fn len(&self) -> usize {
        self.lock().done_order.len()
    }

    /// Whether no completed key is recorded.
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
    fn claim<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<Claim, BoxError>> {
        let mut r = self.lock();
        let timeout = r.claim_timeout;
        let claim = match r.keys.get(key) {
            Some(KeyState::Done) => Claim::Done,
            Some(KeyState::Running(since)) if since.elapsed() < timeout => Claim::Busy,
            _ => {
                r.keys
                    .insert(key.clone(), KeyState::Running(Instant::now()));
                Claim::Run
            }
        };
        Box::pin(std::future::ready(Ok(claim)))
    }

    fn complete<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<(), BoxError>> {
        let mut r = self.lock();
        if !matches!(
            r.keys.insert(key.clone(), KeyState::Done),
            Some(KeyState::Done)
        ) {
            r.done_order.push_back(key.clone());
            while r.done_order.len() > r.capacity {
                if let Some(old) = r.done_order.pop_front() {
                    r.keys.remove(&old);
                }
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<(), BoxError>> {
        let mut r = self.lock();
        if matches!(r.keys.get(key), Some(KeyState::Running(_))) {
            r.keys.remove(key);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> IdempotencyKey {
        IdempotencyKey {
            group: Arc::from("g"),
            handler: "h",
            event_id: EventId::from(id),
        }
    }

    #[tokio::test]
    async fn claims() {
        let s = InMemoryIdempotency::new(2);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Busy);
        s.release(&key("a")).await.unwrap();
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run);
        s.complete(&key("a")).await.unwrap();
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Done);
        for id in ["b", "c"] {
            s.claim(&key(id)).await.unwrap();
            s.complete(&key(id)).await.unwrap();
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run, "evicted");
    }

    #[tokio::test]
    async fn stale_claims_expire() {
        let s = InMemoryIdempotency::new(10).with_claim_timeout(Duration::ZERO);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run);
    }
}

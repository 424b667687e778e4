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

/// How long a store remembers, for the start-up check of the guard against
/// the transport's redelivery (see [`IdempotencyStore::retention`]).
///
/// ```
/// use std::time::Duration;
/// use eventwire::Retention;
///
/// let r = Retention::unbounded().max_age(Duration::from_secs(86_400));
/// assert_eq!(r.max_age, Some(Duration::from_secs(86_400)));
/// assert_eq!(r.max_keys, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Retention {
    /// Completed keys kept at most; beyond it the oldest are forgotten.
    pub max_keys: Option<usize>,
    /// How long a completed key is kept.
    pub max_age: Option<Duration>,
    /// How long a claim holds before it is taken for dead (its run crashed).
    pub claim_timeout: Option<Duration>,
}

impl Retention {
    /// Remembers every completed key for ever, and never expires a claim.
    pub const fn unbounded() -> Self {
        Retention {
            max_keys: None,
            max_age: None,
            claim_timeout: None,
        }
    }

    /// Keeps at most `n` completed keys.
    #[must_use = "the retention is returned"]
    pub const fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = Some(n);
        self
    }

    /// Keeps a completed key for `age`.
    #[must_use = "the retention is returned"]
    pub const fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Takes a claim for dead after `timeout`.
    #[must_use = "the retention is returned"]
    pub const fn claim_timeout(mut self, timeout: Duration) -> Self {
        self.claim_timeout = Some(timeout);
        self
    }
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

    /// How long the store remembers completed keys and holds claims; `None`
    /// (the default) when it cannot say. At start-up the app compares it
    /// with how long the transport may deliver an event again: a store that
    /// forgets before the transport's ack wait is refused
    /// ([`ValidationError::IdempotencyRetention`](crate::ValidationError::IdempotencyRetention)),
    /// shorter horizons are logged as warnings.
    fn retention(&self) -> Option<Retention> {
        None
    }
}

/// An in-process store keeping the most recent `capacity` completed keys,
/// for at most the retention when one is set. A claim older than the claim
/// timeout is taken to belong to a run that died, and can be claimed again.
///
/// It guards one process only: instances of a service in several processes
/// each have their own, so a duplicate that reaches another instance is not
/// caught. Give [`AppBuilder::idempotency`](crate::AppBuilder::idempotency)
/// a shared store (a database, Redis) when a service runs more than one
/// instance.
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
    Done(Instant),
}

#[derive(Debug)]
struct Recent {
    capacity: usize,
    claim_timeout: Duration,
    retention: Option<Duration>,
    keys: HashMap<IdempotencyKey, KeyState>,
    /// Completed keys, oldest first, with the time they completed.
    done_order: VecDeque<(IdempotencyKey, Instant)>,
}

impl Recent {
    /// Forgets the oldest completed keys beyond the capacity or the retention.
    fn evict(&mut self) {
        let now = Instant::now();
        while let Some((_, at)) = self.done_order.front() {
            let expired = self
                .retention
                .is_some_and(|r| now.saturating_duration_since(*at) >= r);
            if self.done_order.len() <= self.capacity && !expired {
                break;
            }
            let (old, at) = self.done_order.pop_front().expect("front exists");
            // Only the record this entry made: the key may have been
            // claimed and completed again since.
            if matches!(self.keys.get(&old), Some(KeyState::Done(t)) if *t == at) {
                self.keys.remove(&old);
            }
        }
    }
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
                retention: None,
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

    /// Forgets a completed key after `retention` (by default only the
    /// capacity bounds what is kept). Keep it above the transport's
    /// redelivery horizon (JetStream: `ack_wait` × attempts, and the
    /// stream's duplicate window); the app checks it at start-up.
    #[must_use = "the configured store is returned"]
    pub fn with_retention(self, retention: Duration) -> Self {
        self.lock().retention = Some(retention);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completed keys recorded.
    pub fn len(&self) -> usize {
        let mut r = self.lock();
        r.evict();
        r.done_order.len()
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
        r.evict();
        let timeout = r.claim_timeout;
        let claim = match r.keys.get(key) {
            Some(KeyState::Done(_)) => Claim::Done,
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
        if !matches!(r.keys.get(key), Some(KeyState::Done(_))) {
            let now = Instant::now();
            r.keys.insert(key.clone(), KeyState::Done(now));
            r.done_order.push_back((key.clone(), now));
        }
        r.evict();
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, key: &'a IdempotencyKey) -> BoxFuture<'a, Result<(), BoxError>> {
        let mut r = self.lock();
        if matches!(r.keys.get(key), Some(KeyState::Running(_))) {
            r.keys.remove(key);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn retention(&self) -> Option<Retention> {
        let r = self.lock();
        Some(Retention {
            max_keys: Some(r.capacity),
            max_age: r.retention,
            claim_timeout: Some(r.claim_timeout),
        })
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
    async fn completed_keys_expire_after_the_retention() {
        let s = InMemoryIdempotency::new(10).with_retention(Duration::from_millis(30));
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run);
        s.complete(&key("a")).await.unwrap();
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Done);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(s.len(), 0);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run, "forgotten");
        s.complete(&key("a")).await.unwrap();
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Done);
        assert_eq!(
            s.retention().unwrap(),
            Retention::unbounded()
                .max_keys(10)
                .max_age(Duration::from_millis(30))
                .claim_timeout(Duration::from_secs(600))
        );
    }

    #[tokio::test]
    async fn stale_claims_expire() {
        let s = InMemoryIdempotency::new(10).with_claim_timeout(Duration::ZERO);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run);
        assert_eq!(s.claim(&key("a")).await.unwrap(), Claim::Run);
    }
}

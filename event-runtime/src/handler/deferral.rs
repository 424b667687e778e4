//! Deferrals: deliveries handed back because another delivery of the same
//! event held its idempotency claim.
//!
//! A deferral is not an attempt: the handler did not run. Transports count
//! it all the same (a nak raises JetStream's delivery count, the in-memory
//! and core NATS buses requeue with the next attempt number), so each
//! handler keeps, per delivery, how many times it deferred it, and
//! subtracts that from the transport's attempt number. The count is kept in
//! this process: on JetStream, deferrals made by *another* instance of the
//! group are counted by the server and not subtracted here.
//!
//! Deferrals back off ([`DEFERRAL_BACKOFF`]): the claim's holder is either
//! still running (it ends within its timeout) or dead (its claim expires
//! after the store's claim timeout); asking again every 100 ms for either
//! only burns deliveries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::delivery::Backoff;
use crate::envelope::EventId;

/// Delay before a deferred delivery comes again: 100 ms after the first
/// deferral, doubled after each, at most 5 s.
pub(crate) const DEFERRAL_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

/// Beyond this many entries, entries not deferred for [`STALE`] are
/// dropped (their events went to another instance or were settled there).
const PRUNE_ABOVE: usize = 1024;
const STALE: Duration = Duration::from_secs(600);

/// One delivery: the event and, where the transport has one, its stream
/// position (two stream messages of one event id are two deliveries).
type DeliveryKey = (EventId, Option<u64>);

/// The deferrals of one handler in this process.
#[derive(Debug, Default)]
pub(crate) struct Deferrals {
    /// Whether `counts` may hold an entry: the path of an event never
    /// deferred (nearly all of them) reads this flag and takes no lock.
    any: AtomicBool,
    counts: Mutex<HashMap<DeliveryKey, (u32, Instant)>>,
}

impl Deferrals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeliveryKey, (u32, Instant)>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times this delivery was deferred here.
    pub(crate) fn count(&self, id: &EventId, sequence: Option<u64>) -> u32 {
        if !self.any.load(Ordering::Acquire) {
            return 0;
        }
        self.lock()
            .get(&(id.clone(), sequence))
            .map_or(0, |(n, _)| *n)
    }

    /// Records one more deferral of this delivery; returns how many there were.
    pub(crate) fn record(&self, id: &EventId, sequence: Option<u64>) -> u32 {
        let mut counts = self.lock();
        if counts.len() > PRUNE_ABOVE {
            counts.retain(|_, (_, last)| last.elapsed() < STALE);
        }
        let entry = counts
            .entry((id.clone(), sequence))
            .or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
        let n = entry.0;
        self.any.store(true, Ordering::Release);
        n
    }

    /// The delivery was settled for good (acknowledged or terminated).
    pub(crate) fn forget(&self, id: &EventId, sequence: Option<u64>) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut counts = self.lock();
        counts.remove(&(id.clone(), sequence));
        if counts.is_empty() {
            self.any.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_delivery_and_forgets() {
        let d = Deferrals::default();
        let a = EventId::from("a");
        assert_eq!(d.count(&a, Some(1)), 0);
        assert_eq!(d.record(&a, Some(1)), 1);
        assert_eq!(d.record(&a, Some(1)), 2);
        assert_eq!(d.count(&a, Some(1)), 2);
        assert_eq!(d.count(&a, Some(2)), 0, "another stream message");
        d.forget(&a, Some(1));
        assert_eq!(d.count(&a, Some(1)), 0);
        assert!(!d.any.load(Ordering::Relaxed));
    }

    #[test]
    fn deferrals_back_off_to_a_cap() {
        let delays: Vec<_> = (1..=8).map(|n| DEFERRAL_BACKOFF.delay(n)).collect();
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[3], Duration::from_millis(800));
        assert_eq!(delays[7], Duration::from_secs(5));
    }
}

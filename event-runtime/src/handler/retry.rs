//! Retry policy: how many attempts, how long to wait between them.

use std::time::Duration;

/// Exponential backoff: `initial`, doubled after every failed attempt, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The default: 100 ms doubling up to 30 s.
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(30),
    };

    /// Delay to wait after the failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How often a failing handler is tried again.
///
/// `retries` counts the attempts after the first: `retries = 3` means at most
/// four attempts; after the last one the event goes to dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub retries: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// Default number of retries when a handler sets none.
    pub const DEFAULT_RETRIES: u32 = 3;

    /// Total attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// Whether attempt number `attempt` (1-based) was the last one allowed.
    pub fn is_last(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: Self::DEFAULT_RETRIES,
            backoff: Backoff::DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_and_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(5), Duration::from_secs(1));
        assert_eq!(b.delay(100), Duration::from_secs(1));
    }

    #[test]
    fn attempts() {
        let p = RetryPolicy {
            retries: 2,
            backoff: Backoff::DEFAULT,
        };
        assert_eq!(p.max_attempts(), 3);
        assert!(!p.is_last(2));
        assert!(p.is_last(3));
    }
}

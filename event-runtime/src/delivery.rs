//! The delivery vocabulary shared by every layer: attempts and their retry
//! policy, where a consumer starts, why a handler failed, and the dead letter
//! of an event that gave up.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::envelope::Envelope;

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

/// Where a new durable consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// Only events published after the consumer was created (the default).
    #[default]
    New,
    /// Every event the stream still holds.
    All,
}

/// The class of a handler failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerErrorKind {
    /// May succeed on a later attempt.
    Retryable,
    /// Will never succeed: dead-letter without retrying.
    Permanent,
    /// The payload could not be decoded; never retried.
    Decode,
    /// The handler did not finish within its timeout; retried.
    Timeout,
    /// The handler panicked; retried.
    Panic,
}

impl HandlerErrorKind {
    /// The name written into dead letters and metrics (`retryable`, `permanent`,
    /// `decode`, `timeout`, `panic`).
    pub const fn name(self) -> &'static str {
        match self {
            HandlerErrorKind::Retryable => "retryable",
            HandlerErrorKind::Permanent => "permanent",
            HandlerErrorKind::Decode => "decode",
            HandlerErrorKind::Timeout => "timeout",
            HandlerErrorKind::Panic => "panic",
        }
    }

    /// Whether another attempt may succeed.
    pub const fn is_retryable(self) -> bool {
        !matches!(self, HandlerErrorKind::Permanent | HandlerErrorKind::Decode)
    }
}

/// An event that exhausted its attempts or failed permanently.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The original envelope, payload and headers unchanged.
    pub envelope: Arc<Envelope>,
    /// The last error, as text.
    pub error: String,
    /// The class of the last error.
    pub error_kind: HandlerErrorKind,
    /// The handler that gave up.
    pub handler: String,
    /// Its group.
    pub group: String,
    /// Attempts made.
    pub attempts: u32,
    /// Position in the stream, where the transport has one.
    pub stream_sequence: Option<u64>,
    /// When the handler gave up.
    pub failed_at: SystemTime,
    /// Topic the dead letter is published to.
    pub topic: String,
    /// The dead-letter topic that was written on the handler or derived from
    /// the event's topic but is not a valid topic (too many tokens, upper
    /// case from a foreign publisher); `topic` is then the fallback of
    /// [`naming::dead_letter_route`](crate::naming::dead_letter_route).
    pub invalid_topic: Option<String>,
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

//! Waiting on conditions with a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled: short next to what tests wait for,
/// long enough not to compete with the code under test for the CPU.
const POLL: Duration = Duration::from_millis(5);

/// Polls `cond` until it holds; fails the test, naming `what`, once
/// `within` has passed.
pub async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition that has to await (a server round trip).
pub async fn eventually_async<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL * 4).await;
    }
}

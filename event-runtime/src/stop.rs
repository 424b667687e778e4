//! A stop signal that is cheap to check on every event.
//!
//! `CancellationToken::is_cancelled` takes a lock; the hot paths (every
//! delivery checks whether its worker should stop) read an atomic instead,
//! and only waiters use the token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub(crate) struct StopSignal(Arc<Inner>);

#[derive(Default)]
struct Inner {
    stopped: AtomicBool,
    token: CancellationToken,
}

impl StopSignal {
    pub(crate) fn stop(&self) {
        self.0.stopped.store(true, Ordering::Release);
        self.0.token.cancel();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::Acquire)
    }

    /// Resolves once `stop` was called.
    pub(crate) async fn stopped(&self) {
        self.0.token.cancelled().await
    }
}

impl std::fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StopSignal")
            .field(&self.is_stopped())
            .finish()
    }
}

//! A subscription to the in-memory bus and the settling of its deliveries.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Consumer, Inner, Queued};
use crate::envelope::Envelope;
use crate::stop::StopSignal;
use crate::transport::{AckHandle, Delivery, LocalAck, LocalQueue, Subscription};

/// One consumer's queue as seen by its deliveries' ackers.
pub(super) struct Lane {
    pub(super) inner: Arc<Inner>,
    pub(super) consumer: Arc<Consumer>,
}

impl LocalQueue for Lane {
    fn settled(&self) {
        self.inner.settled();
    }

    fn requeue(self: Arc<Self>, envelope: Arc<Envelope>, attempt: u32, delay: Duration) {
        self.inner
            .requeue(self.consumer.clone(), Queued { envelope, attempt }, delay);
    }
}

/// One instance's subscription to a consumer's queue; instances of one
/// consumer compete for its receiver.
pub(super) struct MemorySubscription {
    pub(super) lane: Arc<Lane>,
    pub(super) stopped: StopSignal,
}

impl MemorySubscription {
    fn deliver(&self, queued: Queued) -> Delivery {
        Delivery {
            acker: AckHandle::local(LocalAck::new(
                self.lane.clone(),
                queued.envelope.clone(),
                queued.attempt,
            )),
            envelope: queued.envelope,
            attempt: queued.attempt,
            stream_sequence: None,
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.is_stopped() || self.lane.inner.closed.is_stopped()
    }
}

impl Subscription for MemorySubscription {
    fn try_next(&self) -> Option<Delivery> {
        if self.is_stopped() {
            return None;
        }
        let mut rx = self.lane.consumer.rx.try_lock().ok()?;
        rx.try_recv().ok().map(|q| self.deliver(q))
    }

    fn next(&self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            if self.is_stopped() {
                return None;
            }
            let queued = tokio::select! {
                biased;
                _ = self.stopped.stopped() => return None,
                _ = self.lane.inner.closed.stopped() => return None,
                q = async { self.lane.consumer.rx.lock().await.recv().await } => q?,
            };
            Some(self.deliver(queued))
        })
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        self.stopped.stop();
        Box::pin(async {})
    }
}

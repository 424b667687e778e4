//! Settling deliveries: the [`Acker`] a transport implements, the
//! [`AckHandle`] a delivery carries, and the [`Completion`] future that is
//! often ready at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::envelope::Envelope;
use crate::error::{PublishError, TransportError};

/// Settles one delivery: the transport's [`Acker`], or, for an in-process
/// queue, a [`LocalAck`] kept inline (no allocation per event).
pub struct AckHandle(AckRepr);

enum AckRepr {
    Local(LocalAck),
    Dyn(Box<dyn Acker>),
}

/// An in-process queue that settles without I/O (the in-memory bus): an ack
/// forgets the event, a nak puts it back after a delay.
pub(crate) trait LocalQueue: Send + Sync + 'static {
    /// The event was acknowledged or terminated.
    fn settled(&self);
    /// Deliver `envelope` again as attempt `attempt` after `delay`.
    fn requeue(self: Arc<Self>, envelope: Arc<Envelope>, attempt: u32, delay: Duration);
}

/// The acker of one delivery from a [`LocalQueue`]. Dropped unsettled (a
/// worker stopped mid-event), it puts the event back at once with the same
/// attempt number.
pub(crate) struct LocalAck {
    queue: Arc<dyn LocalQueue>,
    pending: Option<(Arc<Envelope>, u32)>,
}

impl LocalAck {
    pub(crate) fn new(queue: Arc<dyn LocalQueue>, envelope: Arc<Envelope>, attempt: u32) -> Self {
        LocalAck {
            queue,
            pending: Some((envelope, attempt)),
        }
    }

    fn settle(&mut self, redeliver: Option<Duration>) -> Settle {
        if let Some((envelope, attempt)) = self.pending.take() {
            match redeliver {
                None => self.queue.settled(),
                Some(delay) => self.queue.clone().requeue(envelope, attempt + 1, delay),
            }
        }
        Settle::done()
    }
}

impl Drop for LocalAck {
    fn drop(&mut self) {
        if let Some((envelope, attempt)) = self.pending.take() {
            self.queue
                .clone()
                .requeue(envelope, attempt, Duration::ZERO);
        }
    }
}

impl AckHandle {
    /// Wraps a transport's acker.
    pub fn new(acker: Box<dyn Acker>) -> Self {
        AckHandle(AckRepr::Dyn(acker))
    }

    pub(crate) fn local(acker: LocalAck) -> Self {
        AckHandle(AckRepr::Local(acker))
    }

    /// See [`Acker::ack`].
    pub fn ack(self) -> Settle {
        match self.0 {
            AckRepr::Local(mut m) => m.settle(None),
            AckRepr::Dyn(a) => a.ack(),
        }
    }

    /// See [`Acker::nak`].
    pub fn nak(self, delay: Duration) -> Settle {
        match self.0 {
            AckRepr::Local(mut m) => m.settle(Some(delay)),
            AckRepr::Dyn(a) => a.nak(delay),
        }
    }

    /// See [`Acker::term`].
    pub fn term(self) -> Settle {
        match self.0 {
            AckRepr::Local(mut m) => m.settle(None),
            AckRepr::Dyn(a) => a.term(),
        }
    }

    /// See [`Acker::in_progress`].
    pub fn in_progress(&self) -> Completion<'_, Result<(), TransportError>> {
        match &self.0 {
            AckRepr::Local(_) => Settle::done(),
            AckRepr::Dyn(a) => a.in_progress(),
        }
    }

    /// See [`Acker::progress_interval`].
    pub fn progress_interval(&self) -> Option<Duration> {
        match &self.0 {
            AckRepr::Local(_) => None,
            AckRepr::Dyn(a) => a.progress_interval(),
        }
    }
}

/// A future that is often complete at once: the in-memory bus finishes
/// most publishes and every settle without waiting, and then no allocation
/// is made; remote transports box their network round trip.
#[must_use = "futures do nothing unless awaited"]
pub struct Completion<'a, T>(CompletionRepr<'a, T>);

enum CompletionRepr<'a, T> {
    Ready(Option<T>),
    Pending(BoxFuture<'a, T>),
}

impl<'a, T> Completion<'a, T> {
    /// Already complete.
    pub fn ready(value: T) -> Self {
        Completion(CompletionRepr::Ready(Some(value)))
    }

    /// Completes when `fut` does.
    pub fn pending<F>(fut: F) -> Self
    where
        F: std::future::Future<Output = T> + Send + 'a,
    {
        Completion(CompletionRepr::Pending(Box::pin(fut)))
    }
}

impl<'a> Completion<'a, Result<(), TransportError>> {
    /// Already settled successfully.
    pub fn done() -> Self {
        Self::ready(Ok(()))
    }
}

impl<T> Unpin for Completion<'_, T> {}

impl<T> std::future::Future for Completion<'_, T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        match &mut self.0 {
            CompletionRepr::Ready(r) => {
                std::task::Poll::Ready(r.take().expect("Completion polled after it completed"))
            }
            CompletionRepr::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// The future of settling a delivery.
pub type Settle = Completion<'static, Result<(), TransportError>>;

/// The future of a publish.
pub type PublishFuture<'a> = Completion<'a, Result<(), PublishError>>;

/// Settles a delivery. Dropping an acker without settling it must make the
/// event available again (as a nak without delay would).
pub trait Acker: Send + Sync {
    /// The handler succeeded: never deliver again.
    fn ack(self: Box<Self>) -> Settle;
    /// The handler failed: deliver again after `delay`.
    fn nak(self: Box<Self>, delay: Duration) -> Settle;
    /// Never deliver again (the event was dead-lettered).
    fn term(self: Box<Self>) -> Settle;
    /// The handler is still working: postpone redelivery.
    fn in_progress(&self) -> Completion<'_, Result<(), TransportError>>;
    /// How often a running handler should call [`Acker::in_progress`];
    /// `None` when the transport never redelivers a running event.
    fn progress_interval(&self) -> Option<Duration> {
        None
    }
}

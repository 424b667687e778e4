//! Settling a JetStream delivery: ack, nak with delay, term, progress.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::message::AckKind;

use crate::error::{TransportError, TransportErrorKind};
use crate::transport::{Acker, Completion, Settle};

pub(super) struct JsAcker {
    pub(super) acker: Option<jetstream::message::Acker>,
    pub(super) progress: Duration,
}

impl JsAcker {
    fn send(mut self: Box<Self>, kind: AckKind) -> Settle {
        let Some(acker) = self.acker.take() else {
            return Settle::done();
        };
        Completion::pending(async move {
            acker.ack_with(kind).await.map_err(|e| {
                TransportError::with_source(
                    TransportErrorKind::Settle,
                    "acknowledging a JetStream message",
                    e,
                )
            })
        })
    }
}

impl Drop for JsAcker {
    fn drop(&mut self) {
        // Unsettled (a worker stopped mid-event): hand it back at once.
        if let Some(acker) = self.acker.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = acker.ack_with(AckKind::Nak(None)).await;
                });
            }
        }
    }
}

impl Acker for JsAcker {
    fn ack(self: Box<Self>) -> Settle {
        self.send(AckKind::Ack)
    }

    fn nak(self: Box<Self>, delay: Duration) -> Settle {
        self.send(AckKind::Nak((!delay.is_zero()).then_some(delay)))
    }

    fn term(self: Box<Self>) -> Settle {
        self.send(AckKind::Term)
    }

    fn in_progress(&self) -> Completion<'_, Result<(), TransportError>> {
        match &self.acker {
            None => Completion::done(),
            Some(a) => Completion::pending(async move {
                a.ack_with(AckKind::Progress).await.map_err(|e| {
                    TransportError::with_source(TransportErrorKind::Settle, "sending progress", e)
                })
            }),
        }
    }

    fn progress_interval(&self) -> Option<Duration> {
        Some(self.progress.max(Duration::from_millis(100)))
    }
}

//! The in-memory bus: one bus per test, shared by the test's apps.

use std::sync::Arc;
use std::time::Duration;

use event_runtime::{MemoryTransport, Transport};
use futures_util::future::BoxFuture;

use super::{ConnectOptions, Harness, Idle, Letter};

/// [`Harness`] of the in-memory bus: every app of a test on one
/// [`MemoryTransport`].
#[derive(Debug, Clone, Default)]
pub struct MemoryHarness {
    bus: MemoryTransport,
}

impl MemoryHarness {
    /// A fresh bus.
    pub fn new() -> Self {
        MemoryHarness::default()
    }
}

impl Harness for MemoryHarness {
    fn label(&self) -> String {
        "memory".into()
    }

    fn connect<'a>(
        &'a self,
        _options: &'a ConnectOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, String>> {
        let bus: Arc<dyn Transport> = Arc::new(self.bus.clone());
        Box::pin(async move { Ok(bus) })
    }

    fn wait_idle(&self, within: Duration) -> BoxFuture<'_, Result<Idle, String>> {
        Box::pin(async move {
            tokio::time::timeout(within, self.bus.wait_idle())
                .await
                .map(|()| Idle::Reached)
                .map_err(|_| {
                    format!(
                        "the memory bus was not idle after {within:?}: {} outstanding",
                        self.bus.outstanding()
                    )
                })
        })
    }

    fn dead_letters(&self) -> Vec<Letter> {
        self.bus
            .dead_letters()
            .into_iter()
            .map(|l| Letter {
                event_id: l.envelope.id.to_string(),
                topic: l.topic.clone(),
                event_type: l.envelope.topic.to_string(),
                schema_version: l.envelope.schema_version,
                error: l.error.clone(),
                kind: l.error_kind,
                handler: l.handler.clone(),
                group: l.group.clone(),
                attempts: l.attempts,
                stream_sequence: l.stream_sequence,
                has_failure_time: true,
                payload: l.envelope.payload.to_vec(),
            })
            .collect()
    }

    fn stored_dead_letters(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move { Some(self.bus.dead_letters().len() as u64) })
    }

    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

//! What each transport promises: its `Capabilities` (read from the running
//! transport) plus a small table of claims the trait does not express. A
//! guarantee that needs a claim a transport does not make is skipped by
//! name, with the reason printed.

use crate::support::ServerSlot;

/// A transport of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Memory,
    Nats(ServerSlot),
    JetStream(ServerSlot),
}

impl TransportKind {
    /// The test entry's name: `memory`, `nats_oldest`, `jetstream_newest`.
    pub fn entry(self) -> &'static str {
        match self {
            TransportKind::Memory => "memory",
            TransportKind::Nats(ServerSlot::Oldest) => "nats_oldest",
            TransportKind::Nats(ServerSlot::Newest) => "nats_newest",
            TransportKind::JetStream(ServerSlot::Oldest) => "jetstream_oldest",
            TransportKind::JetStream(ServerSlot::Newest) => "jetstream_newest",
        }
    }
}

/// A promise a guarantee may depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Publishing refuses payloads above a limit (`Capabilities::max_payload`).
    PayloadLimit,
    /// Events an instance fetched but did not finish, or never started, go
    /// to the next instance of the group after a shutdown: at-least-once
    /// (`Capabilities::at_least_once`), or queues held by the bus itself.
    UnfinishedEventsOutliveTheInstance,
    /// The same event id published twice is delivered once.
    DeduplicatesPublishes,
}

/// The table: what each transport claims beyond its `Capabilities`.
struct Table {
    /// Consumer queues live in the bus, not in the app: a stopped app's
    /// queued events wait for the next instance (memory).
    queues_outlive_apps: bool,
    /// `Nats-Msg-Id` = event id within the duplicate window (JetStream).
    deduplicates_publishes: bool,
    /// Deliveries carry a stream position, dead letters record it (JetStream).
    stream_positions: bool,
}

fn table(kind: TransportKind) -> Table {
    match kind {
        TransportKind::Memory => Table {
            queues_outlive_apps: true,
            deduplicates_publishes: false,
            stream_positions: false,
        },
        TransportKind::Nats(_) => Table {
            queues_outlive_apps: false,
            deduplicates_publishes: false,
            stream_positions: false,
        },
        TransportKind::JetStream(_) => Table {
            queues_outlive_apps: false,
            deduplicates_publishes: true,
            stream_positions: true,
        },
    }
}

/// The features of the transport under test.
#[derive(Debug, Clone)]
pub struct Features {
    /// `memory`, `jetstream (nats-server 2.9.10)`, ...
    pub label: String,
    pub at_least_once: bool,
    pub max_payload: Option<usize>,
    pub queues_outlive_apps: bool,
    pub deduplicates_publishes: bool,
    pub stream_positions: bool,
}

impl Features {
    /// From the running transport's capabilities (read through the
    /// `Transport` trait) and the table.
    pub fn of<T: eventwire::Transport>(kind: TransportKind, label: String, transport: &T) -> Self {
        let caps = transport.capabilities();
        let t = table(kind);
        Features {
            label,
            at_least_once: caps.at_least_once,
            max_payload: caps.max_payload,
            queues_outlive_apps: t.queues_outlive_apps,
            deduplicates_publishes: t.deduplicates_publishes,
            stream_positions: t.stream_positions,
        }
    }

    /// Why this transport does not make `claim`; `None` when it does.
    pub fn lacks(&self, claim: Claim) -> Option<String> {
        match claim {
            Claim::PayloadLimit if self.max_payload.is_none() => {
                Some("no payload limit: Capabilities::max_payload is None".into())
            }
            Claim::UnfinishedEventsOutliveTheInstance
                if !self.at_least_once && !self.queues_outlive_apps =>
            {
                Some("at-most-once: events a stopped instance held are lost".into())
            }
            Claim::DeduplicatesPublishes if !self.deduplicates_publishes => {
                Some("no de-duplication of publishes: each publish is a delivery".into())
            }
            _ => None,
        }
    }
}

//! What the transport under test promises, and what a scenario may need.

use event_runtime::transport::Capabilities;

/// A promise a scenario may depend on, read from the transport's
/// [`Capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// Publishing refuses payloads above a limit (`max_payload`).
    PayloadLimit,
    /// Events an instance fetched but did not finish, or never started, go
    /// to the next instance of the group after a shutdown: at-least-once
    /// delivery (`at_least_once`), or queues held by the bus itself
    /// (`queues_outlive_instances`).
    UnfinishedEventsOutliveTheInstance,
    /// The same event id published twice is delivered once
    /// (`deduplicates_publishes`).
    DeduplicatesPublishes,
    /// Events an instance held when it died without a word go to another
    /// instance: at-least-once delivery (`at_least_once`).
    RedeliversAfterACrash,
    /// A group's consumer keeps its position while no instance runs:
    /// events published meanwhile wait for the next instance
    /// (`durable_consumers`).
    KeepsEventsWhileNoInstanceRuns,
    /// The harness can restart the broker (it owns it), and the transport
    /// keeps what it acknowledged across the restart (at-least-once with
    /// durable consumers).
    SurvivesBrokerRestart,
}

/// The transport under test: its label and its [`Capabilities`].
#[derive(Debug, Clone)]
pub struct Features {
    /// `memory`, `jetstream (nats-server 2.9.10)`, ...
    pub label: String,
    /// What the transport declares.
    pub capabilities: Capabilities,
    /// The harness can restart the broker ([`Harness::restart_broker`](crate::Harness::restart_broker)).
    pub restartable_broker: bool,
}

impl Features {
    /// Why this transport does not make `claim`; `None` when it does.
    pub fn lacks(&self, claim: Claim) -> Option<String> {
        let caps = &self.capabilities;
        match claim {
            Claim::PayloadLimit if caps.max_payload.is_none() => {
                Some("no payload limit: Capabilities::max_payload is None".into())
            }
            Claim::UnfinishedEventsOutliveTheInstance
                if !caps.at_least_once && !caps.queues_outlive_instances =>
            {
                Some("at-most-once: events a stopped instance held are lost".into())
            }
            Claim::DeduplicatesPublishes if !caps.deduplicates_publishes => {
                Some("no de-duplication of publishes: each publish is a delivery".into())
            }
            Claim::RedeliversAfterACrash if !caps.at_least_once => {
                Some("at-most-once: what a dead instance held is lost".into())
            }
            Claim::KeepsEventsWhileNoInstanceRuns if !caps.durable_consumers => Some(
                "no durable consumers: events published while no instance runs are not kept".into(),
            ),
            Claim::SurvivesBrokerRestart if !caps.at_least_once || !caps.durable_consumers => {
                Some("at-most-once: what the broker held is lost when it dies".into())
            }
            Claim::SurvivesBrokerRestart if !self.restartable_broker => {
                Some("the harness shares its broker with other tests: it cannot restart it".into())
            }
            _ => None,
        }
    }

    /// Largest payload accepted, when the transport has a limit.
    pub fn max_payload(&self) -> Option<usize> {
        self.capabilities.max_payload
    }

    /// Whether deliveries carry a stream position that dead letters record.
    pub fn stream_positions(&self) -> bool {
        self.capabilities.stream_positions
    }
}

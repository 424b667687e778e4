//! What `#[handler(...)]` writes down: the options of one handler and its
//! registry entry.

use std::time::Duration;

use super::erased::BuildHandler;
use crate::delivery::{Backoff, RetryPolicy, StartPosition};

/// Whether the consumer of a handler outlives the process (written by
/// `#[handler(durable = ...)]`; read it through [`HandlerOptions::durable_name`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Durable, named after the group and the handler (the default).
    #[default]
    Default,
    /// Durable with this consumer name.
    Named(&'static str),
    /// Removed when the process stops (`durable = false`).
    Ephemeral,
}

/// A handler's timeout setting (written by `#[handler(timeout = ...)]`;
/// read it through [`HandlerOptions::timeout`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeoutSetting {
    /// [`HandlerOptions::DEFAULT_TIMEOUT`].
    #[default]
    Default,
    /// No timeout (`timeout = "none"`).
    Never,
    /// This timeout.
    After(Duration),
}

/// The options written in `#[handler(...)]`; `None` means the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerOptions {
    /// Consumer group; defaults to the service name.
    pub group: Option<&'static str>,
    /// Attempts after the first one.
    pub retries: Option<u32>,
    /// Delay between attempts.
    pub backoff: Option<Backoff>,
    /// How long one attempt may take.
    #[doc(hidden)]
    pub timeout: TimeoutSetting,
    /// Events processed at once by one instance.
    pub concurrency: Option<u32>,
    /// Keep the order of events with the same key.
    pub ordered: bool,
    /// Consumer durability (JetStream).
    #[doc(hidden)]
    pub durable: Durability,
    /// Where a new consumer starts (JetStream).
    pub start: Option<StartPosition>,
    /// Topic dead letters are published to, instead of the default.
    pub dead_letter: Option<&'static str>,
}

impl HandlerOptions {
    /// Every option at its default.
    pub const DEFAULT: HandlerOptions = HandlerOptions {
        group: None,
        retries: None,
        backoff: None,
        timeout: TimeoutSetting::Default,
        concurrency: None,
        ordered: false,
        durable: Durability::Default,
        start: None,
        dead_letter: None,
    };

    /// Timeout when none is written: 30 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The retry policy these options describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries.unwrap_or(RetryPolicy::DEFAULT_RETRIES),
            backoff: self.backoff.unwrap_or_default(),
        }
    }

    /// The timeout of one attempt, `None` for no timeout.
    pub fn timeout(&self) -> Option<Duration> {
        match self.timeout {
            TimeoutSetting::Default => Some(Self::DEFAULT_TIMEOUT),
            TimeoutSetting::Never => None,
            TimeoutSetting::After(d) => Some(d),
        }
    }

    /// The durable consumer name of this handler in `group`: the written
    /// `durable = "..."`, else [`crate::naming::consumer_name`]; `None` for
    /// `durable = false` (an ephemeral consumer).
    pub fn durable_name(&self, group: &str, handler: &str) -> Option<String> {
        match self.durable {
            Durability::Ephemeral => None,
            Durability::Named(n) => Some(n.to_owned()),
            Durability::Default => Some(crate::naming::consumer_name(group, handler)),
        }
    }

    /// Whether `durable = false` was written.
    pub fn is_ephemeral(&self) -> bool {
        self.durable == Durability::Ephemeral
    }

    /// Events processed at once; 1 when not written.
    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(1).max(1) as usize
    }
}

impl Default for HandlerOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the registry knows about one `#[handler]`.
#[derive(Debug)]
pub struct HandlerDescriptor {
    /// Handler name (the function name unless `name = "..."`).
    pub name: &'static str,
    /// Path of the function (`my_app::inventory::reserve_stock`).
    pub function: &'static str,
    /// Topic or topic pattern subscribed to.
    pub topic: &'static str,
    /// Rust name of the event type; `None` for a `RawEvent` handler.
    pub event: Option<&'static str>,
    /// The options written in the attribute.
    pub options: HandlerOptions,
    /// Builds the runtime form (macro plumbing).
    #[doc(hidden)]
    pub build: BuildHandler,
}

/// The crate of the transport conformance suite: its handlers run only when
/// an app names them.
const CONFORMANCE_CRATE: &str = "eventwire_conformance::";

impl HandlerDescriptor {
    /// Whether this handler belongs to the transport conformance suite
    /// (`eventwire::testing::conformance`). [`HandlerSelection::All`] and
    /// group selections leave those out, so linking the suite into a test
    /// binary changes no app of the program; only a selection by name runs
    /// them.
    ///
    /// [`HandlerSelection::All`]: crate::HandlerSelection::All
    pub fn is_conformance_scenario(&self) -> bool {
        self.function.starts_with(CONFORMANCE_CRATE)
    }
}

//! Names of attributes and options.

pub(crate) const EVENT: &str = "event";

// #[event(...)] on the type
pub(crate) const TOPIC: &str = "topic";
pub(crate) const VERSION: &str = "version";
pub(crate) const FORMAT: &str = "format";
pub(crate) const UPCAST_FROM: &str = "upcast_from";
// #[event(...)] on a field
pub(crate) const KEY: &str = "key";

// #[handler(...)]
pub(crate) const GROUP: &str = "group";
pub(crate) const NAME: &str = "name";
pub(crate) const RETRIES: &str = "retries";
pub(crate) const BACKOFF: &str = "backoff";
pub(crate) const TIMEOUT: &str = "timeout";
pub(crate) const CONCURRENCY: &str = "concurrency";
pub(crate) const ORDERED: &str = "ordered";
pub(crate) const DURABLE: &str = "durable";
pub(crate) const START: &str = "start";
pub(crate) const DEAD_LETTER: &str = "dead_letter";

pub(crate) const HANDLER_OPTIONS: &[&str] = &[
    TOPIC,
    GROUP,
    NAME,
    RETRIES,
    BACKOFF,
    TIMEOUT,
    CONCURRENCY,
    ORDERED,
    DURABLE,
    START,
    DEAD_LETTER,
];

pub(crate) const EVENT_OPTIONS: &[&str] = &[TOPIC, VERSION, FORMAT, UPCAST_FROM];

/// Name of the parameter type of handlers that take undecoded events.
pub(crate) const RAW_EVENT: &str = "RawEvent";
/// Names of the extractors, recognised as written to catch misplaced ones.
pub(crate) const CONTEXT: &str = "Context";
pub(crate) const STATE: &str = "State";

//! Every name eventwire derives from another one, in one place: consumer
//! names and dead-letter topics. Transports, the app and descriptions call
//! these instead of formatting names themselves.

/// The prefix of default dead-letter topics: dead letters of events on
/// `orders.created` go to `eventwire.dlq.orders.created`.
pub const DEAD_LETTER_PREFIX: &str = "eventwire.dlq";

/// The pattern matching every default dead-letter topic (`eventwire.dlq.>`).
pub const DEAD_LETTER_PATTERN: &str = "eventwire.dlq.>";

/// The default topic of dead letters of events on `topic`.
///
/// ```
/// assert_eq!(
///     eventwire::naming::dead_letter_topic("orders.created"),
///     "eventwire.dlq.orders.created"
/// );
/// ```
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{DEAD_LETTER_PREFIX}.{topic}")
}

/// The name of the consumer of one handler in one group:
/// `<group>__<handler>`, valid as a subject token, a JetStream consumer name,
/// a Kafka group id and a queue name.
///
/// ```
/// assert_eq!(eventwire::naming::consumer_name("billing", "charge"), "billing__charge");
/// ```
pub fn consumer_name(group: &str, handler: &str) -> String {
    format!("{group}__{handler}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_topics_stay_under_the_prefix_pattern() {
        let t = dead_letter_topic("a.b");
        assert!(crate::topic::matches(DEAD_LETTER_PATTERN, &t));
        crate::topic::validate_topic(&t).unwrap();
    }
}

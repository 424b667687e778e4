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

/// The token under [`DEAD_LETTER_PREFIX`] that collects dead letters whose
/// own dead-letter topic would not be a valid topic (an event on a 15- or
/// 16-token subject, or on a subject a foreign publisher wrote in upper
/// case): `eventwire.dlq._invalid.<group>__<handler>`.
pub const FALLBACK_DEAD_LETTER_TOKEN: &str = "_invalid";

/// Where the dead letter of an event on `topic` goes, given the topic
/// written on the handler (`#[handler(dead_letter = "...")]`), if any.
///
/// The written or derived topic when it is valid; otherwise the fallback
/// `eventwire.dlq._invalid.<group>__<handler>` (lower-cased), returned with
/// the topic that could not be used, so the dead letter records it. Every
/// result is a valid topic: a dead letter is always routable.
///
/// ```
/// use eventwire::naming::dead_letter_route;
/// assert_eq!(
///     dead_letter_route("orders.created", None, "billing", "charge"),
///     ("eventwire.dlq.orders.created".to_owned(), None)
/// );
/// let deep = vec!["a"; 16].join(".");
/// let (topic, invalid) = dead_letter_route(&deep, None, "billing", "charge");
/// assert_eq!(topic, "eventwire.dlq._invalid.billing__charge");
/// assert_eq!(invalid, Some(format!("eventwire.dlq.{deep}")));
/// ```
pub fn dead_letter_route(
    topic: &str,
    written: Option<&str>,
    group: &str,
    handler: &str,
) -> (String, Option<String>) {
    let preferred = written.map_or_else(|| dead_letter_topic(topic), str::to_owned);
    if crate::topic::is_valid_topic(&preferred) {
        return (preferred, None);
    }
    let fallback = format!(
        "{DEAD_LETTER_PREFIX}.{FALLBACK_DEAD_LETTER_TOKEN}.{}",
        consumer_name(group, handler).to_ascii_lowercase()
    );
    let fallback = if crate::topic::is_valid_topic(&fallback) {
        fallback
    } else {
        format!("{DEAD_LETTER_PREFIX}.{FALLBACK_DEAD_LETTER_TOKEN}")
    };
    (fallback, Some(preferred))
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

    #[test]
    fn every_route_is_a_valid_topic_under_the_prefix() {
        let sixteen = vec!["a"; 16].join(".");
        let long = "a".repeat(250);
        let cases = [
            ("orders.created", None, "g", "h"),
            ("orders.ABC", None, "g", "h"),
            (sixteen.as_str(), None, "g", "h"),
            (long.as_str(), None, "Group", "Handler"),
            ("orders.created", Some("dead.Letters"), "g", "h"),
            ("x", None, &*"G".repeat(200), &*"H".repeat(200)),
        ];
        for (topic, written, group, handler) in cases {
            let (route, invalid) = dead_letter_route(topic, written, group, handler);
            crate::topic::validate_topic(&route).unwrap();
            assert!(
                crate::topic::matches(DEAD_LETTER_PATTERN, &route),
                "{route}"
            );
            assert_eq!(invalid.is_some(), route.contains("._invalid"), "{route}");
        }
        assert_eq!(
            dead_letter_route("orders.ABC", None, "Billing", "charge").0,
            "eventwire.dlq._invalid.billing__charge"
        );
        assert_eq!(
            dead_letter_route("x", Some("audit.failed"), "g", "h"),
            ("audit.failed".to_owned(), None)
        );
    }
}

//! Settings of the Kafka transport, from a builder or a `kafka://` URL.

use std::path::PathBuf;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::error::TransportError;
use crate::topic::validate_prefix;
use crate::transport::url::{parse_bool, redact, UrlParts};

/// What to do with topics at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provision {
    /// Create missing topics (the program's topics at start-up, a dead-letter
    /// topic before its first letter), with [`KafkaConfig::partitions`] and
    /// [`KafkaConfig::replication_factor`] (the default).
    #[default]
    Create,
    /// Never create topics; fail start-up when one of the program's topics
    /// is missing.
    Verify,
}

/// TLS to the brokers (`kafkas://`, feature `kafka-tls`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaTls {
    /// `?tls_ca=/path`: PEM file of the CA certificates that sign the
    /// brokers' certificates; the system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// `?tls_cert=/path&tls_key=/path`: PEM files of a client certificate
    /// and its key, for brokers that require them (`ssl.client.auth`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `?tls_verify_hostname=false` turns off the check that the broker's
    /// certificate names the host connected to (on by default).
    pub verify_hostname: bool,
}

/// Settings of [`KafkaTransport`](super::KafkaTransport).
///
/// ```
/// use std::time::Duration;
/// use eventwire::kafka::KafkaConfig;
///
/// let c = KafkaConfig::from_url("kafka://k1:9092,k2?prefix=staging&partitions=12").unwrap();
/// assert_eq!(c.brokers, ["k1:9092", "k2:9092"]);
/// assert_eq!(c.kafka_topic("orders.created"), "staging.orders.created");
/// assert_eq!(c.partitions, 12);
/// assert_eq!(c.session_timeout, Duration::from_secs(45));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// `?prefix=staging`: Kafka topic = `staging.<topic>`, and consumer
    /// groups are named `staging.<group>__<handler>`, so that several
    /// environments share a cluster.
    pub prefix: Option<String>,
    /// `?client_id=`: the client id brokers log (default `eventwire`).
    pub client_id: String,
    /// `?provision=create|verify`.
    pub provision: Provision,
    /// `?partitions=4`: partitions of the topics eventwire creates. Instances
    /// of one consumer group share a topic by partitions: more instances
    /// than partitions leaves some idle.
    pub partitions: i32,
    /// `?replication_factor=1`: replicas of the topics eventwire creates
    /// (3 is usual in production).
    pub replication_factor: i32,
    /// `?session_timeout=45s`: how long the group coordinator waits for a
    /// silent instance before giving its partitions to others (Kafka's
    /// `session.timeout.ms`; brokers accept 6 s to 30 min by default).
    pub session_timeout: Duration,
    /// `?commit_interval=1s`: how often the offsets of finished events are
    /// committed; a crash redelivers at most this much work besides what
    /// was in flight.
    pub commit_interval: Duration,
    /// `?publish_timeout=30s`: how long a publish may wait for the broker's
    /// acknowledgement, retries included (`message.timeout.ms`).
    pub publish_timeout: Duration,
    /// `?max_message_bytes=1000000`: the largest record the producer sends
    /// (`message.max.bytes`); keep it at or below the broker's and the
    /// topic's `max.message.bytes`.
    pub max_message_bytes: usize,
    /// `?linger=5ms`: how long the producer waits to fill a batch
    /// (`linger.ms`).
    pub linger: Duration,
    /// `?connect_timeout=10s`: how long start-up waits for the cluster's metadata.
    pub connect_timeout: Duration,
    /// TLS, for `kafkas://` URLs (feature `kafka-tls`).
    pub tls: Option<KafkaTls>,
    /// `?rdkafka.<property>=<value>`: any other librdkafka property
    /// (`rdkafka.security.protocol=...`), set on producers and consumers
    /// after eventwire's own.
    pub properties: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Settings with defaults for these brokers (`host` or `host:port`, port 9092).
    pub fn new<I, S>(brokers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        KafkaConfig {
            brokers: brokers
                .into_iter()
                .map(|b| normalize_broker(b.as_ref()))
                .collect(),
            prefix: None,
            client_id: "eventwire".to_owned(),
            provision: Provision::Create,
            partitions: 4,
            replication_factor: 1,
            session_timeout: Duration::from_secs(45),
            commit_interval: Duration::from_secs(1),
            publish_timeout: Duration::from_secs(30),
            max_message_bytes: 1_000_000,
            linger: Duration::from_millis(5),
            connect_timeout: Duration::from_secs(10),
            tls: None,
            properties: Vec::new(),
        }
    }

    /// Sets the topic and consumer-group prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The Kafka topic of an eventwire topic.
    pub fn kafka_topic(&self, topic: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}.{topic}"),
            None => topic.to_owned(),
        }
    }

    /// The eventwire topic of a Kafka topic (the prefix removed).
    pub fn topic_of<'a>(&self, kafka_topic: &'a str) -> &'a str {
        match &self.prefix {
            Some(p) => kafka_topic
                .strip_prefix(p.as_str())
                .and_then(|t| t.strip_prefix('.'))
                .unwrap_or(kafka_topic),
            None => kafka_topic,
        }
    }

    /// What a consumer subscribes to: the Kafka topic, or for a pattern
    /// (`orders.*`, `orders.>`) a regular expression over Kafka topics
    /// (librdkafka's `^` convention).
    pub fn subscription(&self, pattern: &str) -> String {
        if !crate::topic::is_pattern(pattern) {
            return self.kafka_topic(pattern);
        }
        let mut re = String::from("^");
        if let Some(p) = &self.prefix {
            re.push_str(&escape(p));
            re.push_str("\\.");
        }
        for (i, token) in pattern.split('.').enumerate() {
            if i > 0 {
                re.push_str("\\.");
            }
            match token {
                "*" => re.push_str("[^.]+"),
                ">" => re.push_str(".+"),
                t => re.push_str(&escape(t)),
            }
        }
        re.push('$');
        re
    }

    /// The consumer group of a (group, handler) consumer, or of a durable name.
    pub fn group_id(&self, consumer: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}.{consumer}"),
            None => consumer.to_owned(),
        }
    }

    /// Parses `kafka://host[:port][,host[:port]...][?options]`, or
    /// `kafkas://...` for TLS (feature `kafka-tls`: `tls_ca`, `tls_cert`,
    /// `tls_key`, `tls_verify_hostname`).
    /// Options: `prefix`, `client_id`, `provision`, `partitions`,
    /// `replication_factor`, `session_timeout`, `commit_interval`,
    /// `publish_timeout`, `max_message_bytes`, `linger`, `connect_timeout`,
    /// and `rdkafka.<property>` for any librdkafka property. Durations use
    /// [`crate::duration`]'s grammar (`250ms`, `30s`).
    pub fn from_url(url: &str) -> Result<Self, TransportError> {
        let bad = |why: String| TransportError::config(format!("{}: {why}", redact(url)));
        let parts = UrlParts::parse(url)?;
        let tls = parts.scheme == "kafkas";
        if parts.scheme != "kafka" && !tls {
            return Err(bad(format!("unknown scheme `{}`", parts.scheme)));
        }
        if !parts.path.is_empty() {
            return Err(bad(format!(
                "unexpected path `/{}`: Kafka URLs have none",
                parts.path
            )));
        }
        if parts.user.is_some() {
            return Err(bad(
                "credentials in the URL: SASL is not supported by eventwire's Kafka transport yet \
                 (TLS client certificates are: `kafkas://...?tls_cert=&tls_key=`)"
                    .into(),
            ));
        }
        if parts.hosts.is_empty() {
            return Err(bad("no broker address".into()));
        }
        let mut config = KafkaConfig::new(&parts.hosts);
        let plain = KafkaTls {
            verify_hostname: true,
            ..KafkaTls::default()
        };
        let mut tls_settings = plain.clone();
        let (mut cert, mut key) = (None, None);
        let duration = |v: &str| parse_duration(v).map_err(|e| bad(e.to_string()));
        let positive = |k: &str, v: &str| -> Result<i64, TransportError> {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad(format!("{k} `{v}`: expected an integer >= 1")))
        };
        for (k, v) in parts.query {
            match k.as_str() {
                "prefix" => {
                    validate_prefix(&v).map_err(|e| bad(e.to_string()))?;
                    config.prefix = Some(v)
                }
                "client_id" => config.client_id = v,
                "provision" => {
                    config.provision = match v.as_str() {
                        "create" => Provision::Create,
                        "verify" => Provision::Verify,
                        _ => {
                            return Err(bad(format!(
                                "provision `{v}`: expected `create` or `verify`"
                            )))
                        }
                    }
                }
                "partitions" => config.partitions = positive(&k, &v)?.min(i32::MAX as i64) as i32,
                "replication_factor" => {
                    config.replication_factor = positive(&k, &v)?.min(i32::MAX as i64) as i32
                }
                "session_timeout" => config.session_timeout = duration(&v)?,
                "commit_interval" => config.commit_interval = duration(&v)?,
                "publish_timeout" => config.publish_timeout = duration(&v)?,
                "linger" => config.linger = duration(&v)?,
                "connect_timeout" => config.connect_timeout = duration(&v)?,
                "max_message_bytes" => {
                    config.max_message_bytes = positive(&k, &v)?.min(i32::MAX as i64) as usize
                }
                "tls_ca" => tls_settings.ca_file = Some(v.into()),
                "tls_cert" => cert = Some(PathBuf::from(v)),
                "tls_key" => key = Some(PathBuf::from(v)),
                "tls_verify_hostname" => {
                    tls_settings.verify_hostname = parse_bool(&v).ok_or_else(|| {
                        bad(format!("tls_verify_hostname `{v}`: expected a boolean"))
                    })?
                }
                other => match other.strip_prefix("rdkafka.") {
                    Some(property) if !property.is_empty() => {
                        config.properties.push((property.to_owned(), v))
                    }
                    _ => return Err(bad(format!("unknown option `{other}`"))),
                },
            }
        }
        tls_settings.client_cert = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(bad("tls_cert and tls_key go together".into())),
        };
        if tls {
            config.tls = Some(tls_settings);
        } else if tls_settings != plain {
            return Err(bad("tls_* options need a `kafkas://` URL".into()));
        }
        config
            .check_properties()
            .map_err(|e| bad(e.message().to_owned()))?;
        Ok(config)
    }
}

/// librdkafka properties eventwire sets itself and relies on: overriding
/// them would commit past unfinished events (`enable.auto.offset.store`),
/// split a consumer group (`group.id`), switch to a rebalance protocol the
/// consumer does not drive (`partition.assignment.strategy`,
/// `group.protocol`), or drop the publish guarantees (`acks`,
/// `enable.idempotence`).
pub const RESERVED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "partition.assignment.strategy",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
];

impl KafkaConfig {
    /// Refuses a librdkafka property in [`RESERVED_PROPERTIES`].
    pub fn check_properties(&self) -> Result<(), TransportError> {
        match self
            .properties
            .iter()
            .find(|(k, _)| RESERVED_PROPERTIES.contains(&k.as_str()))
        {
            Some((k, _)) => Err(TransportError::config(format!(
                "the librdkafka property `{k}` is set by eventwire and cannot be overridden \
                 (the URL option or handler attribute that controls it, if any, is in \
                 docs/operating-kafka.md)"
            ))),
            None => Ok(()),
        }
    }
}

fn normalize_broker(broker: &str) -> String {
    let b = broker.trim();
    // `host`, `host:port`, `[v6]`, `[v6]:port`.
    let has_port = match b.rsplit_once(':') {
        Some((host, port)) => {
            !host.ends_with(':')
                && port.parse::<u16>().is_ok()
                && !port.is_empty()
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        b.to_owned()
    } else {
        format!("{b}:9092")
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_set_every_option() {
        let c = KafkaConfig::from_url(
            "kafka://a,b:9093?prefix=t1&client_id=svc&provision=verify&partitions=3&\
             replication_factor=2&session_timeout=6s&commit_interval=250ms&publish_timeout=5s&\
             max_message_bytes=2048&linger=0ms&connect_timeout=2s&rdkafka.fetch.wait.max.ms=10",
        )
        .unwrap();
        assert_eq!(c.brokers, ["a:9092", "b:9093"]);
        assert_eq!(c.prefix.as_deref(), Some("t1"));
        assert_eq!(c.client_id, "svc");
        assert_eq!(c.provision, Provision::Verify);
        assert_eq!((c.partitions, c.replication_factor), (3, 2));
        assert_eq!(c.session_timeout, Duration::from_secs(6));
        assert_eq!(c.commit_interval, Duration::from_millis(250));
        assert_eq!(c.publish_timeout, Duration::from_secs(5));
        assert_eq!(c.max_message_bytes, 2048);
        assert_eq!(c.linger, Duration::ZERO);
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(
            c.properties,
            [("fetch.wait.max.ms".to_owned(), "10".to_owned())]
        );
    }

    #[test]
    fn bad_urls_are_config_errors_that_hide_secrets() {
        for url in [
            "kafka://",
            "kafka://h/path",
            "kafka://h?partitions=0",
            "kafka://h?provision=maybe",
            "kafka://h?session_timeout=soon",
            "kafka://h?nope=1",
            "kafka://h?rdkafka.=1",
            "kafka://h?prefix=Bad.Prefix",
            "kafka://h?rdkafka.enable.auto.offset.store=true",
            "kafka://h?rdkafka.group.id=other",
            "kafka://h?tls_ca=/ca.pem",
            "kafkas://h?tls_cert=/c.pem",
            "kafkas://h?tls_verify_hostname=maybe",
            "kafka://h?rdkafka.partition.assignment.strategy=cooperative-sticky",
            "nats://h",
        ] {
            let e = KafkaConfig::from_url(url).unwrap_err();
            assert_eq!(e.kind(), crate::error::TransportErrorKind::Config, "{url}");
        }
        let e = KafkaConfig::from_url("kafka://alice:s3cret@h").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn patterns_become_anchored_regular_expressions() {
        let c = KafkaConfig::new(["h"]).prefix("t-1");
        assert_eq!(c.subscription("orders.created"), "t-1.orders.created");
        assert_eq!(c.subscription("orders.*"), "^t\\-1\\.orders\\.[^.]+$");
        assert_eq!(c.subscription("orders.>"), "^t\\-1\\.orders\\..+$");
        assert_eq!(
            KafkaConfig::new(["h"]).subscription("*.created"),
            "^[^.]+\\.created$"
        );
        assert_eq!(c.topic_of("t-1.orders.created"), "orders.created");
        assert_eq!(c.group_id("billing__charge"), "t-1.billing__charge");
    }

    #[test]
    fn kafkas_urls_set_tls() {
        let c = KafkaConfig::from_url(
            "kafkas://k1:9093?tls_ca=/ca.pem&tls_cert=/c.pem&tls_key=/k.pem&tls_verify_hostname=false",
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(
            tls.ca_file.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert_eq!(
            tls.client_cert,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
        assert!(!tls.verify_hostname);
        assert!(
            KafkaConfig::from_url("kafkas://k1")
                .unwrap()
                .tls
                .unwrap()
                .verify_hostname
        );
        assert_eq!(KafkaConfig::from_url("kafka://k1").unwrap().tls, None);
    }
}

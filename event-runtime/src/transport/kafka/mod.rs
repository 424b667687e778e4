//! Kafka (`kafka://`): at-least-once delivery through consumer groups, with
//! offsets committed only for finished events.
//!
//! - A topic is a Kafka topic (`?prefix=` puts every topic under
//!   `<prefix>.`); topics are created at start-up (`?provision=create`, the
//!   default, with `?partitions=` and `?replication_factor=`) or verified
//!   (`?provision=verify`). A topic pattern (`orders.*`, `orders.>`) is a
//!   regular-expression subscription.
//! - Each (group, handler) is a Kafka consumer group named
//!   `<group>__<handler>` (or the handler's durable name); its instances
//!   share the topic's partitions. `#[event(key)]` is the record key, so the
//!   events of one key share a partition and reach `ordered` handlers in order.
//! - Records follow the CloudEvents Kafka binding in binary mode (`ce_*`
//!   headers, `content-type`); see `docs/wire-format.md`.
//! - `publish` returns once the broker acknowledged the record (`acks=all`,
//!   idempotent producer); `publish_batch` enqueues every record before
//!   awaiting the first acknowledgement.
//! - Handlers finish out of order under `concurrency > 1`; the offset of a
//!   partition is committed only up to its oldest unfinished event, so a
//!   crash redelivers what was in flight (and at most `?commit_interval=` of
//!   finished work), never skips it.
//! - A failed attempt is retried in place after its backoff, without
//!   blocking the partition for other events (the record stays uncommitted
//!   meanwhile). Kafka keeps no delivery count: the attempt number restarts
//!   at 1 when an event is redelivered after a crash or a rebalance.
//! - Dead letters go to `eventwire.dlq.<topic>` (under the prefix), with
//!   the original record's headers, key and payload plus the
//!   `eventwire-dlq-*` headers.
//! - A rebalance waits (a bounded time) for the handed-out events of the
//!   revoked partitions to finish, commits what finished, and drops the
//!   rest: the partition's next owner handles them again.

mod config;
mod consumer;
mod wire;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::task::TaskTracker;

pub use self::config::{KafkaConfig, KafkaTls, Provision, RESERVED_PROPERTIES};
use crate::delivery::DeadLetter;
use crate::envelope::Envelope;
use crate::error::{PublishError, TransportError, TransportErrorKind};
use crate::stop::StopSignal;
use crate::transport::url::redact;
use crate::transport::{
    check_topic, Capabilities, Completion, ConsumerSpec, ProvisionPlan, PublishFuture,
    RedeliveryWindows, Subscription, Transport,
};

/// The Kafka client crate, for what eventwire does not wrap (reading dead
/// letters with a plain consumer, admin tasks).
pub use rdkafka;

/// The Kafka transport. Clones share the producer and its connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), eventwire::TransportError> {
/// use eventwire::kafka::{KafkaConfig, KafkaTransport};
/// let kafka = KafkaTransport::connect(KafkaConfig::from_url("kafka://127.0.0.1:9092")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KafkaTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTransport")
            .field("brokers", &self.inner.config.brokers)
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

pub(crate) struct Inner {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// Kafka topics known to exist.
    known: RwLock<HashSet<String>>,
    closed: StopSignal,
    /// The poll threads of the subscriptions.
    consumers: TaskTracker,
    /// Consumer groups joined, with their topic patterns.
    groups: std::sync::Mutex<Vec<(String, &'static str)>>,
}

/// librdkafka settings shared by the producer, the admin client and consumers.
fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", config.brokers.join(","))
        .set("client.id", &config.client_id)
        .set(
            "socket.connection.setup.timeout.ms",
            millis(config.connect_timeout),
        );
    if let Some(tls) = &config.tls {
        c.set("security.protocol", "ssl");
        if let Some(ca) = &tls.ca_file {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        if let Some((cert, key)) = &tls.client_cert {
            c.set("ssl.certificate.location", cert.display().to_string())
                .set("ssl.key.location", key.display().to_string());
        }
        c.set(
            "ssl.endpoint.identification.algorithm",
            if tls.verify_hostname { "https" } else { "none" },
        );
    }
    c
}

fn with_properties(mut c: ClientConfig, config: &KafkaConfig) -> ClientConfig {
    for (k, v) in &config.properties {
        c.set(k, v);
    }
    c
}

fn millis(d: Duration) -> String {
    d.as_millis().clamp(1, i32::MAX as u128).to_string()
}

fn config_error(what: &'static str, e: KafkaError) -> TransportError {
    TransportError::with_source(TransportErrorKind::Config, what, e)
}

impl KafkaTransport {
    /// Creates the producer and checks that the cluster answers within
    /// [`KafkaConfig::connect_timeout`].
    pub async fn connect(config: KafkaConfig) -> Result<Self, TransportError> {
        if config.brokers.is_empty() {
            return Err(TransportError::config("no Kafka broker address"));
        }
        config.check_properties()?;
        if config.tls.is_some() && !cfg!(feature = "kafka-tls") {
            return Err(TransportError::new(
                TransportErrorKind::NotCompiled,
                "kafkas:// needs TLS in librdkafka: enable the `kafka-tls` feature of eventwire",
            ));
        }
        let mut producer = client_config(&config);
        producer
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.max.bytes", config.max_message_bytes.to_string())
            .set("message.timeout.ms", millis(config.publish_timeout))
            .set("linger.ms", config.linger.as_millis().to_string());
        let producer: FutureProducer = with_properties(producer, &config)
            .create()
            .map_err(|e| config_error("invalid Kafka producer settings", e))?;
        let admin: AdminClient<DefaultClientContext> =
            with_properties(client_config(&config), &config)
                .create()
                .map_err(|e| config_error("invalid Kafka admin settings", e))?;
        let probe = producer.clone();
        let timeout = config.connect_timeout;
        let brokers = redact(&config.brokers.join(","));
        tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout))
            .await
            .map_err(|e| TransportError::with_source(TransportErrorKind::Connect, "join", e))?
            .map_err(|e| {
                TransportError::with_source(
                    TransportErrorKind::Connect,
                    format!("no answer from the Kafka brokers {brokers} within {timeout:?}"),
                    e,
                )
            })?;
        Ok(KafkaTransport {
            inner: Arc::new(Inner {
                config,
                producer,
                admin,
                known: RwLock::default(),
                closed: StopSignal::default(),
                consumers: TaskTracker::new(),
                groups: std::sync::Mutex::default(),
            }),
        })
    }

    /// Connects with the settings of a `kafka://` URL.
    pub async fn connect_url(url: &str) -> Result<Self, TransportError> {
        Self::connect(KafkaConfig::from_url(url)?).await
    }

    /// The settings in use.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// The Kafka consumer groups this transport joined, with the topic or
    /// pattern each subscribes to (for tools that compute a group's lag).
    pub fn consumer_groups(&self) -> Vec<(String, &'static str)> {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Inner {
    fn is_known(&self, topic: &str) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
    }

    /// Creates (or, with `provision=verify`, checks) the Kafka topics that
    /// are not known to exist yet.
    async fn ensure_topics(&self, topics: &[String]) -> Result<(), TransportError> {
        let missing: Vec<&String> = topics.iter().filter(|t| !self.is_known(t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let provision_error =
            |message: String| TransportError::new(TransportErrorKind::Provision, message);
        match self.config.provision {
            Provision::Create => {
                let new: Vec<NewTopic<'_>> = missing
                    .iter()
                    .map(|t| {
                        NewTopic::new(
                            t,
                            self.config.partitions,
                            TopicReplication::Fixed(self.config.replication_factor),
                        )
                    })
                    .collect();
                let results = self
                    .admin
                    .create_topics(
                        &new,
                        &AdminOptions::new().operation_timeout(Some(self.config.connect_timeout)),
                    )
                    .await
                    .map_err(|e| {
                        TransportError::with_source(
                            TransportErrorKind::Provision,
                            "creating Kafka topics",
                            e,
                        )
                    })?;
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((topic, code)) => {
                            return Err(provision_error(format!(
                                "creating Kafka topic `{topic}`: {code}"
                            )))
                        }
                    }
                }
            }
            Provision::Verify => {
                let producer = self.producer.clone();
                let timeout = self.config.connect_timeout;
                let metadata = tokio::task::spawn_blocking(move || {
                    producer.client().fetch_metadata(None, timeout).map(|m| {
                        m.topics()
                            .iter()
                            .map(|t| t.name().to_owned())
                            .collect::<HashSet<_>>()
                    })
                })
                .await
                .map_err(|e| TransportError::with_source(TransportErrorKind::Provision, "join", e))?
                .map_err(|e| {
                    TransportError::with_source(
                        TransportErrorKind::Provision,
                        "reading the Kafka cluster's topics",
                        e,
                    )
                })?;
                let absent: Vec<&str> = missing
                    .iter()
                    .filter(|t| !metadata.contains(t.as_str()))
                    .map(|t| t.as_str())
                    .collect();
                if !absent.is_empty() {
                    return Err(provision_error(format!(
                        "provision=verify: the Kafka topics {} do not exist; create them or use \
                         provision=create",
                        absent.join(", ")
                    )));
                }
            }
        }
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(missing.into_iter().cloned());
        Ok(())
    }

    /// Sends one record and waits for the broker's acknowledgement.
    async fn send(
        &self,
        topic: &str,
        kafka_topic: &str,
        key: Option<&str>,
        headers: OwnedHeaders,
        payload: &Bytes,
        size: usize,
    ) -> Result<(), PublishError> {
        let limit = self.config.max_message_bytes;
        if size > limit {
            return Err(PublishError::PayloadTooLarge {
                topic: topic.to_owned(),
                size,
                limit,
            });
        }
        let mut record = FutureRecord::to(kafka_topic)
            .payload(&payload[..])
            .headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        let delivery = loop {
            match self.producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The producer's queue is full: wait for it to drain.
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(self.publish_error(topic, size, e)),
            }
        };
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(self.publish_error(topic, size, e)),
            Err(_) => Err(PublishError::closed(topic)),
        }
    }

    fn publish_error(&self, topic: &str, size: usize, e: KafkaError) -> PublishError {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge) => PublishError::PayloadTooLarge {
                topic: topic.to_owned(),
                size,
                limit: self.config.max_message_bytes,
            },
            _ => PublishError::rejected(topic, "the Kafka broker did not accept the event", e),
        }
    }

    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        let kafka_topic = self.config.kafka_topic(&envelope.topic);
        if !self.is_known(&kafka_topic) {
            self.ensure_topics(std::slice::from_ref(&kafka_topic))
                .await
                .map_err(|source| PublishError::Transport {
                    topic: envelope.topic.to_string(),
                    source,
                })?;
        }
        let (headers, header_size) = wire::headers(envelope);
        let size =
            envelope.payload.len() + header_size + envelope.key.as_deref().map_or(0, str::len);
        self.send(
            &envelope.topic,
            &kafka_topic,
            envelope.key.as_deref(),
            headers,
            &envelope.payload,
            size,
        )
        .await
    }
}

impl Inner {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), PublishError> {
        let (headers, payload) = wire::dead_letter_record(&letter, self.config.max_message_bytes)?;
        let kafka_topic = self.config.kafka_topic(&letter.topic);
        self.ensure_topics(std::slice::from_ref(&kafka_topic))
            .await
            .map_err(|source| PublishError::Transport {
                topic: letter.topic.clone(),
                source,
            })?;
        // Sized to fit by `dead_letter_record`.
        let size = payload.len().min(self.config.max_message_bytes);
        self.send(
            &letter.topic,
            &kafka_topic,
            letter.envelope.key.as_deref(),
            headers,
            &payload,
            size,
        )
        .await
    }
}

impl Transport for KafkaTransport {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable_consumers: true,
            replay: true,
            at_least_once: true,
            max_payload: Some(self.inner.config.max_message_bytes),
            queues_outlive_instances: true,
            deduplicates_publishes: false,
            stream_positions: false,
            counts_deliveries: false,
        }
    }

    fn redelivery(&self) -> Option<RedeliveryWindows> {
        // A finished event comes back when its offset was not committed
        // before its partition moved: a crash (noticed after the session
        // timeout) within a commit interval of its completion.
        Some(RedeliveryWindows::new(
            self.inner.config.session_timeout + self.inner.config.commit_interval,
            None,
        ))
    }

    fn prepare<'a>(&'a self, plan: &'a ProvisionPlan) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            let topics: Vec<String> = plan
                .topics
                .iter()
                .chain(&plan.dead_letter_topics)
                .filter(|t| !crate::topic::is_pattern(t))
                .map(|t| self.inner.config.kafka_topic(t))
                .collect();
            self.inner.ensure_topics(&topics).await
        })
    }

    fn publish(&self, envelope: Envelope) -> PublishFuture<'_> {
        if self.inner.closed.is_stopped() {
            return Completion::ready(Err(PublishError::closed(&envelope.topic)));
        }
        if let Err(e) = check_topic(&envelope.topic) {
            return Completion::ready(Err(e));
        }
        Completion::pending(async move { self.inner.publish(&envelope).await })
    }

    fn publish_batch(
        &self,
        envelopes: Vec<Envelope>,
    ) -> BoxFuture<'_, Vec<Result<(), PublishError>>> {
        Box::pin(async move {
            // Every record is enqueued before the first acknowledgement is
            // awaited: the producer batches them.
            let sends = envelopes.iter().map(|envelope| async move {
                if self.inner.closed.is_stopped() {
                    return Err(PublishError::closed(&envelope.topic));
                }
                check_topic(&envelope.topic)?;
                self.inner.publish(envelope).await
            });
            futures_util::future::join_all(sends).await
        })
    }

    fn subscribe(
        &self,
        spec: ConsumerSpec,
    ) -> BoxFuture<'_, Result<Box<dyn Subscription>, TransportError>> {
        Box::pin(consumer::subscribe(self.inner.clone(), spec))
    }

    fn dead_letter(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async move { self.inner.dead_letter(letter).await })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            self.inner.closed.stop();
            self.inner.consumers.close();
            self.inner.consumers.wait().await;
            let producer = self.inner.producer.clone();
            let within = self.inner.config.publish_timeout;
            tokio::task::spawn_blocking(move || producer.flush(within))
                .await
                .map_err(|e| TransportError::with_source(TransportErrorKind::Closed, "join", e))?
                .map_err(|e| {
                    TransportError::with_source(
                        TransportErrorKind::Publish,
                        "flushing the Kafka producer",
                        e,
                    )
                })
        })
    }
}

//! Kafka: a broker the tests may share, a topic and consumer-group prefix
//! per test, a producer and consumers per app instance, and a dead-letter
//! tap that reads the test's `eventwire.dlq.*` topics from their beginning.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_runtime::kafka::rdkafka::config::ClientConfig;
use event_runtime::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use event_runtime::kafka::rdkafka::message::{Headers, Message};
use event_runtime::kafka::rdkafka::{Offset, TopicPartitionList};
use event_runtime::kafka::{KafkaConfig, KafkaTransport};
use event_runtime::Transport;
use futures_util::future::BoxFuture;

use super::{poll_idle, ConnectOptions, Harness, Idle, Letter};

/// How often the tap looks for new dead-letter topics.
const TAP_SCAN: Duration = Duration::from_millis(200);

/// [`Harness`] of the Kafka transport (`kafka://`) on a running broker.
pub struct KafkaHarness {
    label: String,
    address: String,
    prefix: String,
    session_timeout: Duration,
    letters: Arc<Mutex<Vec<Letter>>>,
    tapped: Arc<Mutex<HashSet<String>>>,
    stop_tap: Arc<AtomicBool>,
    /// Connections to close at the end (not those of killed instances).
    connections: Mutex<Vec<KafkaTransport>>,
    /// Every connection, killed ones included: their consumer groups.
    all: Mutex<Vec<KafkaTransport>>,
    /// A consumer per group whose committed offsets are read (no subscription).
    inspectors: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl KafkaHarness {
    /// A harness on the broker at `address` (`127.0.0.1:9092`), labelled
    /// `label` in the output (`kafka (tansu 0.6.0)`). Consumer groups use a
    /// session timeout of 6 s (the smallest Apache Kafka accepts by
    /// default), so that a rebalance takes seconds, not the default 45 s.
    pub async fn connect(address: &str, label: impl Into<String>) -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "cf{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let harness = KafkaHarness {
            label: label.into(),
            address: address.to_owned(),
            prefix,
            session_timeout: Duration::from_secs(6),
            letters: Arc::default(),
            tapped: Arc::default(),
            stop_tap: Arc::default(),
            connections: Mutex::default(),
            all: Mutex::default(),
            inspectors: Mutex::default(),
        };
        // The broker answers, or the test says why not.
        let probe = harness.tap_consumer()?;
        tokio::task::spawn_blocking(move || {
            probe
                .fetch_metadata(None, Duration::from_secs(10))
                .map(|_| ())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("Kafka broker at {address}: {e}"))?;
        harness.start_tap();
        Ok(harness)
    }

    /// The transport URL of this test.
    fn url(&self) -> String {
        format!(
            "kafka://{}?prefix={}&session_timeout={}ms&commit_interval=100ms&linger=1ms&connect_timeout=10s",
            self.address,
            self.prefix,
            self.session_timeout.as_millis()
        )
    }

    fn tap_consumer(&self) -> Result<BaseConsumer, String> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", format!("{}.tap", self.prefix))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("Kafka tap consumer: {e}"))
    }

    /// Events not yet finished by each consumer group of the test, per
    /// group (those with none left out): end offsets minus committed ones.
    async fn lag(&self) -> Result<Vec<(String, i64)>, String> {
        let mut groups: Vec<(String, &'static str)> = self
            .all
            .lock()
            .unwrap()
            .iter()
            .flat_map(KafkaTransport::consumer_groups)
            .collect();
        groups.sort();
        groups.dedup();
        let mut inspectors = Vec::new();
        for (group, pattern) in groups {
            let consumer = {
                let mut cache = self.inspectors.lock().unwrap();
                match cache.get(&group) {
                    Some(c) => c.clone(),
                    None => {
                        let c = Arc::new(
                            ClientConfig::new()
                                .set("bootstrap.servers", &self.address)
                                .set("group.id", &group)
                                .set("enable.auto.commit", "false")
                                .create::<BaseConsumer>()
                                .map_err(|e| format!("Kafka inspector of {group}: {e}"))?,
                        );
                        cache.insert(group.clone(), c.clone());
                        c
                    }
                }
            };
            inspectors.push((group, pattern, consumer));
        }
        let prefix = self.prefix.clone();
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let mut lagging = Vec::new();
            let Some((_, _, any)) = inspectors.first() else {
                return Ok(lagging);
            };
            let metadata = any
                .fetch_metadata(None, timeout)
                .map_err(|e| format!("Kafka metadata: {e}"))?;
            for (group, pattern, consumer) in &inspectors {
                let mut tpl = TopicPartitionList::new();
                for topic in metadata.topics() {
                    let Some(t) = topic
                        .name()
                        .strip_prefix(prefix.as_str())
                        .and_then(|t| t.strip_prefix('.'))
                    else {
                        continue;
                    };
                    if !event_runtime::topic::matches(pattern, t) {
                        continue;
                    }
                    for p in topic.partitions() {
                        tpl.add_partition(topic.name(), p.id());
                    }
                }
                let committed = consumer
                    .committed_offsets(tpl, timeout)
                    .map_err(|e| format!("committed offsets of {group}: {e}"))?;
                let mut lag = 0;
                for e in committed.elements() {
                    let (low, high) = consumer
                        .fetch_watermarks(e.topic(), e.partition(), timeout)
                        .map_err(|e| format!("watermarks: {e}"))?;
                    let at = match e.offset() {
                        Offset::Offset(n) => n,
                        _ => low,
                    };
                    lag += (high - at).max(0);
                }
                if lag > 0 {
                    lagging.push((group.clone(), lag));
                }
            }
            Ok(lagging)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// A thread that finds the test's dead-letter topics as they appear
    /// and reads each from its beginning.
    fn start_tap(&self) {
        let Ok(scanner) = self.tap_consumer() else {
            return;
        };
        let dlq_prefix = format!("{}.eventwire.dlq.", self.prefix);
        let prefix = self.prefix.clone();
        let (letters, tapped, stop) = (
            self.letters.clone(),
            self.tapped.clone(),
            self.stop_tap.clone(),
        );
        let reader = match self.tap_consumer() {
            Ok(r) => r,
            Err(_) => return,
        };
        std::thread::spawn(move || {
            let mut assignment = TopicPartitionList::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(metadata) = scanner.fetch_metadata(None, Duration::from_secs(5)) {
                    let mut grew = false;
                    for topic in metadata.topics() {
                        if !topic.name().starts_with(&dlq_prefix)
                            || !tapped.lock().unwrap().insert(topic.name().to_owned())
                        {
                            continue;
                        }
                        for p in topic.partitions() {
                            let _ = assignment.add_partition_offset(
                                topic.name(),
                                p.id(),
                                Offset::Beginning,
                            );
                        }
                        grew = true;
                    }
                    if grew {
                        // Positions already read are kept: re-assigning
                        // takes the current positions of known partitions.
                        let mut current = reader.position().unwrap_or_default();
                        for e in assignment.elements() {
                            if current.find_partition(e.topic(), e.partition()).is_none() {
                                let _ = current.add_partition_offset(
                                    e.topic(),
                                    e.partition(),
                                    Offset::Beginning,
                                );
                            }
                        }
                        let _ = reader.assign(&current);
                    }
                }
                let deadline = std::time::Instant::now() + TAP_SCAN;
                while std::time::Instant::now() < deadline {
                    if let Some(Ok(m)) = reader.poll(Duration::from_millis(50)) {
                        letters.lock().unwrap().push(letter_of(&prefix, &m));
                    }
                }
            }
        });
    }
}

impl Harness for KafkaHarness {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn connect<'a>(
        &'a self,
        options: &'a ConnectOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, String>> {
        Box::pin(async move {
            let config = KafkaConfig::from_url(&self.url()).map_err(|e| e.to_string())?;
            let t = KafkaTransport::connect(config)
                .await
                .map_err(|e| e.to_string())?;
            if !options.killed_later {
                self.connections.lock().unwrap().push(t.clone());
            }
            self.all.lock().unwrap().push(t.clone());
            Ok(Arc::new(t) as Arc<dyn Transport>)
        })
    }

    fn wait_idle(&self, within: Duration) -> BoxFuture<'_, Result<Idle, String>> {
        // The transport commits a partition's offset only up to its oldest
        // unfinished event: a group whose committed offsets reached the end
        // of every partition it reads has finished everything (retries
        // included). The sentinels of the suite would not do: a key's
        // sentinels all land in one partition, so one instance.
        Box::pin(async move {
            poll_idle(within, Duration::from_millis(50), || async {
                let lag = self.lag().await?;
                Ok((!lag.is_empty()).then(|| format!("Kafka consumer groups {lag:?}")))
            })
            .await
        })
    }

    fn dead_letters(&self) -> Vec<Letter> {
        self.letters.lock().unwrap().clone()
    }

    fn stored_dead_letters(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move {
            let consumer = self.tap_consumer().ok()?;
            let dlq_prefix = format!("{}.eventwire.dlq.", self.prefix);
            tokio::task::spawn_blocking(move || {
                let metadata = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
                let mut total = 0u64;
                for topic in metadata.topics() {
                    if !topic.name().starts_with(&dlq_prefix) {
                        continue;
                    }
                    for p in topic.partitions() {
                        let (low, high) = consumer
                            .fetch_watermarks(topic.name(), p.id(), Duration::from_secs(5))
                            .ok()?;
                        total += (high - low).max(0) as u64;
                    }
                }
                Some(total)
            })
            .await
            .ok()?
        })
    }

    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.stop_tap.store(true, Ordering::Relaxed);
            let connections = std::mem::take(&mut *self.connections.lock().unwrap());
            for c in connections {
                c.close()
                    .await
                    .unwrap_or_else(|e| panic!("closing a connection of {}: {e}", self.label));
            }
        })
    }
}

/// A dead letter read off the wire (`ce_*` and `eventwire-dlq-*` headers).
fn letter_of(prefix: &str, m: &impl Message) -> Letter {
    let get = |name: &str| -> Option<String> {
        m.headers()?
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let topic = m
        .topic()
        .strip_prefix(prefix)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or(m.topic())
        .to_owned();
    Letter::from_wire(topic, m.payload().unwrap_or_default().to_vec(), "ce_", get)
}

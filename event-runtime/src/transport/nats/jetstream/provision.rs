//! Provisioning: the server's JetStream check, the events and dead-letter
//! streams (created, extended or verified), and the durable consumers.

use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream;
use async_nats::jetstream::Context;
use async_nats::Client;

use super::{failure, Inner, EPHEMERAL_INACTIVE};

/// Unacknowledged messages the server allows a consumer beyond the
/// handler's `concurrency`. A nak with delay keeps the message pending at
/// the server until it is redelivered, so with `max_ack_pending` =
/// `concurrency` a few events waiting out their retry backoff stopped the
/// consumer for every other event (and instances of one group shared one
/// concurrency's worth). Work in flight stays bounded by each instance's
/// `concurrency`: the pump asks only for free slots.
pub(super) const PENDING_HEADROOM: i64 = 1000;
use crate::delivery::StartPosition;
use crate::error::{TransportError, TransportErrorKind};
use crate::transport::nats::config::NatsConfig;
use crate::transport::nats::{Provision, Storage};
use crate::transport::ConsumerSpec;

/// Asks the server for its JetStream account info. async-nats' typed
/// `query_account` cannot parse a 2.9 server's answer, so the answer is read
/// as plain JSON: enough to tell "enabled" from "not enabled".
pub(in crate::transport::nats) async fn check_jetstream(
    client: &Client,
) -> Result<(), TransportError> {
    let not_enabled = "JetStream is not enabled on this server (start nats-server with `-js`)";
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("$JS.API.INFO", bytes::Bytes::new()),
    )
    .await
    .map_err(|_| {
        TransportError::new(
            TransportErrorKind::Unavailable,
            format!("{not_enabled}: no answer within 10 s"),
        )
    })?
    .map_err(|e| failure(TransportErrorKind::Unavailable, not_enabled, e))?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(|e| {
        failure(
            TransportErrorKind::Unavailable,
            "unreadable JetStream account info",
            e,
        )
    })?;
    if let Some(error) = info.get("error") {
        return Err(TransportError::new(
            TransportErrorKind::Unavailable,
            format!("{not_enabled}: {error}"),
        ));
    }
    Ok(())
}

/// `subjects` without those another one covers (and without repeats): the
/// server refuses a stream whose subjects overlap, such as `orders.>` of a
/// `RawEvent` handler beside `orders.created` of an event type.
fn without_overlaps(mut subjects: Vec<String>) -> Vec<String> {
    subjects.sort();
    subjects.dedup();
    let all = subjects.clone();
    subjects.retain(|s| !all.iter().any(|other| other != s && covers(other, s)));
    subjects
}

/// Whether stream subject `have` covers subject `want` (both may hold wildcards).
fn covers(have: &str, want: &str) -> bool {
    let mut h = have.split('.');
    let mut w = want.split('.');
    loop {
        match (h.next(), w.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl Inner {
    /// Creates the stream, adds missing subjects, or (verify) checks them.
    /// Returns the stream's duplicate window (an existing stream keeps its own).
    pub(super) async fn ensure_stream(
        &self,
        name: &str,
        subjects: Vec<String>,
    ) -> Result<Duration, TransportError> {
        ensure_stream(&self.js, &self.config, name, subjects).await
    }
}

/// Creates the stream, adds missing subjects, or (verify) checks them, with
/// the stream settings of `config`. Returns the stream's duplicate window
/// (an existing stream keeps its own). Core NATS provisions its dead-letter
/// stream with it too.
pub(in crate::transport::nats) async fn ensure_stream(
    js: &Context,
    config: &NatsConfig,
    name: &str,
    subjects: Vec<String>,
) -> Result<Duration, TransportError> {
    let provision = config.stream.provision;
    let subjects = without_overlaps(subjects);
    match js.get_stream(name).await {
        Ok(mut stream) => {
            let info = stream.info().await.map_err(|e| {
                failure(
                    TransportErrorKind::Provision,
                    format!("reading stream `{name}`"),
                    e,
                )
            })?;
            let mut config = info.config.clone();
            let window = config.duplicate_window;
            let missing: Vec<String> = subjects
                .into_iter()
                .filter(|s| !config.subjects.iter().any(|have| covers(have, s)))
                .collect();
            if missing.is_empty() {
                return Ok(window);
            }
            if provision == Provision::Verify {
                return Err(TransportError::config(format!(
                        "stream `{name}` does not cover {}; add these subjects to it, or start with provision=create",
                        missing.join(", ")
                    )));
            }
            tracing::info!(stream = name, subjects = ?missing, "adding subjects to stream");
            config.subjects.extend(missing);
            js.update_stream(config).await.map_err(|e| {
                failure(
                    TransportErrorKind::Provision,
                    format!("updating stream `{name}`"),
                    e,
                )
            })?;
            Ok(window)
        }
        Err(_) if provision == Provision::Verify => Err(TransportError::config(format!(
            "stream `{name}` does not exist; create it, or start with provision=create"
        ))),
        Err(_) => {
            let s = &config.stream;
            let config = stream::Config {
                name: name.to_owned(),
                subjects,
                storage: match s.storage {
                    Storage::File => stream::StorageType::File,
                    Storage::Memory => stream::StorageType::Memory,
                },
                num_replicas: s.replicas,
                max_age: s.max_age.unwrap_or_default(),
                duplicate_window: s.duplicate_window,
                ..Default::default()
            };
            tracing::info!(stream = name, subjects = ?config.subjects, "creating stream");
            let stream = js.create_stream(config).await.map_err(|e| {
                failure(
                    TransportErrorKind::Provision,
                    format!("creating stream `{name}`"),
                    e,
                )
            })?;
            // The server's, which fills in its default for a zero window.
            Ok(stream.cached_info().config.duplicate_window)
        }
    }
}

/// The consumer's `max_deliver`: the handler's attempts plus the extra
/// deliveries allowed.
pub(super) fn max_deliver(spec: &ConsumerSpec, extra: u32) -> i64 {
    i64::from(spec.retry.max_attempts()) + i64::from(extra)
}

impl Inner {
    pub(super) fn consumer_config(&self, spec: &ConsumerSpec) -> pull::Config {
        pull::Config {
            durable_name: spec.durable.clone(),
            description: Some(format!(
                "eventwire handler `{}` of group `{}`",
                spec.handler, spec.group
            )),
            filter_subject: self.config.subject(spec.topic),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.config.stream.ack_wait,
            // eventwire counts attempts and dead-letters the last one; the
            // server's limit is a backstop above them (see `extra_deliveries`)
            // so that no message is redelivered forever.
            max_deliver: max_deliver(spec, self.config.stream.extra_deliveries),
            max_ack_pending: spec.concurrency.max(1) as i64 + PENDING_HEADROOM,
            deliver_policy: match spec.start {
                StartPosition::New => DeliverPolicy::New,
                StartPosition::All => DeliverPolicy::All,
            },
            inactive_threshold: if spec.durable.is_none() {
                EPHEMERAL_INACTIVE
            } else {
                Duration::ZERO
            },
            ..Default::default()
        }
    }

    /// Creates the consumer or updates it; an existing consumer whose
    /// settings cannot change is used as it is.
    pub(super) async fn ensure_consumer(
        &self,
        stream_name: &str,
        config: &pull::Config,
    ) -> Result<PullConsumer, TransportError> {
        let stream = self.js.get_stream(stream_name).await.map_err(|e| {
            failure(
                TransportErrorKind::Provision,
                format!("opening stream `{stream_name}`"),
                e,
            )
        })?;
        match stream.create_consumer(config.clone()).await {
            Ok(c) => Ok(c),
            Err(create_err) => match &config.durable_name {
                Some(name) => match stream.get_consumer::<pull::Config>(name).await {
                    Ok(c) => {
                        tracing::warn!(consumer = %name, error = %create_err, "using the existing consumer: its settings could not be updated");
                        Ok(c)
                    }
                    Err(_) => Err(failure(
                        TransportErrorKind::Provision,
                        format!("creating consumer `{name}`"),
                        create_err,
                    )),
                },
                None => Err(failure(
                    TransportErrorKind::Provision,
                    "creating an ephemeral consumer",
                    create_err,
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{covers, without_overlaps};

    #[test]
    fn overlapping_subjects_are_left_out() {
        let subjects = [
            "orders.created",
            "orders.>",
            "orders.*",
            "pay.x",
            "pay.x",
            "a.*.c",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(without_overlaps(subjects), ["a.*.c", "orders.>", "pay.x"]);
    }

    #[test]
    fn stream_subject_coverage() {
        assert!(covers("orders.created", "orders.created"));
        assert!(covers("orders.*", "orders.created"));
        assert!(covers("orders.>", "orders.created.v2"));
        assert!(covers("orders.>", "orders.*"));
        assert!(covers(">", "anything.here"));
        assert!(!covers("orders.*", "orders.>"));
        assert!(!covers("orders.created", "orders.*"));
        assert!(!covers("orders.*", "orders.created.v2"));
    }
}

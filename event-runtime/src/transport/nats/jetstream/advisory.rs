//! The backstop under a consumer's `max_deliver`: when the server stops
//! delivering a message (its max-deliveries advisory), the message is read
//! from the stream by its sequence and dead-lettered, so it is neither lost
//! silently nor left to stall the consumer.
//!
//! This is how a message the client cannot even read ends: async-nats drops
//! the connection on a header block it cannot parse (a line without `:`,
//! invalid UTF-8, a name with a space), so such a message never reaches the
//! pull loop; it is redelivered until `max_deliver`, then the advisory names
//! its sequence. The stream's message API returns the header block as
//! base64 inside JSON, which the client reads without trouble; it is parsed
//! here leniently (unreadable lines are left out, and the dead letter says
//! so).

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;

use super::Inner;
use crate::delivery::HandlerErrorKind;
use crate::stop::StopSignal;
use crate::transport::nats::stats::StatsCounters;
use crate::transport::nats::wire;

/// Watches the max-deliveries advisories of one consumer.
pub(super) struct Watcher {
    pub(super) inner: Arc<Inner>,
    pub(super) stream: String,
    pub(super) consumer: String,
    /// (group, handler)
    pub(super) owner: (Arc<str>, &'static str),
    pub(super) stopped: StopSignal,
}

#[derive(Deserialize)]
struct Advisory {
    stream_seq: u64,
    deliveries: u64,
}

#[derive(Deserialize)]
struct MsgGet {
    message: Option<StoredMessage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct StoredMessage {
    subject: String,
    hdrs: Option<String>,
    data: Option<String>,
}

impl Watcher {
    /// The advisory subject of the consumer.
    pub(super) fn subject(stream: &str, consumer: &str) -> String {
        format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}")
    }

    /// Subscribes first (so that no advisory is missed once the consumer
    /// exists), then handles advisories until stopped.
    pub(super) async fn start(
        self,
    ) -> Result<impl std::future::Future<Output = ()>, async_nats::SubscribeError> {
        let subscriber = self
            .inner
            .client
            .subscribe(Self::subject(&self.stream, &self.consumer))
            .await?;
        Ok(self.run(subscriber))
    }

    async fn run(self, mut advisories: async_nats::Subscriber) {
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.stopped.stopped() => return,
                _ = self.inner.closed.stopped() => return,
                msg = advisories.next() => match msg {
                    Some(m) => m,
                    None => return,
                },
            };
            match serde_json::from_slice::<Advisory>(&msg.payload) {
                Ok(a) => self.dead_letter(a).await,
                Err(e) => {
                    tracing::warn!(consumer = %self.consumer, error = %e, "unreadable max-deliveries advisory")
                }
            }
        }
    }

    async fn dead_letter(&self, advisory: Advisory) {
        let seq = advisory.stream_seq;
        StatsCounters::bump(&self.inner.stats.max_deliveries);
        let Some((subject, header_block, payload)) = self.fetch(seq).await else {
            return;
        };
        let (headers, unreadable) = lenient_headers(header_block.as_deref());
        let config = &self.inner.config;
        let topic = config.topic_of(&subject).to_owned();
        let why = format!(
            "the server stopped delivering it after {} deliveries (max_deliver)",
            advisory.deliveries
        );
        let mut letter = match wire::envelope_of(config, &subject, Some(&headers), payload.clone())
        {
            Ok(envelope) if unreadable == 0 => {
                let (topic, invalid_topic) = crate::naming::dead_letter_route(
                    &envelope.topic,
                    None,
                    &self.owner.0,
                    self.owner.1,
                );
                crate::delivery::DeadLetter {
                    envelope: Arc::new(envelope),
                    error: why.clone(),
                    error_kind: HandlerErrorKind::Timeout,
                    handler: self.owner.1.to_owned(),
                    group: self.owner.0.to_string(),
                    attempts: u32::try_from(advisory.deliveries).unwrap_or(u32::MAX),
                    stream_sequence: Some(seq),
                    failed_at: std::time::SystemTime::now(),
                    topic,
                    invalid_topic,
                }
            }
            Ok(_) | Err(_) => {
                let error = crate::envelope::EnvelopeError::Missing(crate::envelope::header::ID);
                let mut letter = wire::malformed_letter(
                    &subject,
                    Some(&headers),
                    payload,
                    &error,
                    Some(seq),
                    (&self.owner.0, self.owner.1),
                    &topic,
                );
                letter.error = format!(
                    "{why}; the client could not read its header block ({unreadable} unreadable line(s) left out)"
                );
                letter
            }
        };
        letter.attempts = u32::try_from(advisory.deliveries).unwrap_or(u32::MAX);
        for attempt in 1..=4u32 {
            match self.inner.dead_letter(&letter).await {
                Ok(()) => {
                    tracing::error!(consumer = %self.consumer, stream_sequence = seq, deliveries = advisory.deliveries, "message dead-lettered after reaching max_deliver");
                    return;
                }
                Err(e) if attempt == 4 => {
                    tracing::error!(consumer = %self.consumer, stream_sequence = seq, error = %e, "dead letter of a message past max_deliver failed; it stays in the stream at its sequence");
                }
                Err(e) => {
                    tracing::warn!(consumer = %self.consumer, stream_sequence = seq, error = %e, "dead letter failed; trying again");
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                }
            }
        }
    }

    /// The stored message at `seq`: subject, raw header block, payload.
    async fn fetch(&self, seq: u64) -> Option<(String, Option<Vec<u8>>, Bytes)> {
        let request = serde_json::json!({ "seq": seq }).to_string();
        let api = format!("$JS.API.STREAM.MSG.GET.{}", self.stream);
        let reply = match self.inner.client.request(api, request.into()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(stream = %self.stream, stream_sequence = seq, error = %e, "cannot read a message past max_deliver");
                return None;
            }
        };
        let got: MsgGet = match serde_json::from_slice(&reply.payload) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(stream = %self.stream, stream_sequence = seq, error = %e, "unreadable answer reading a message past max_deliver");
                return None;
            }
        };
        let Some(m) = got.message else {
            tracing::warn!(stream = %self.stream, stream_sequence = seq, error = ?got.error, "a message past max_deliver is gone from the stream");
            return None;
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let hdrs = m.hdrs.and_then(|h| b64.decode(h).ok());
        let data = m.data.and_then(|d| b64.decode(d).ok()).unwrap_or_default();
        Some((m.subject, hdrs, Bytes::from(data)))
    }
}

/// The headers of a raw NATS header block, leaving out what cannot be read
/// (a line without `:`, a name or value async-nats refuses, invalid UTF-8);
/// returns them and how many lines were left out.
fn lenient_headers(block: Option<&[u8]>) -> (HeaderMap, usize) {
    let mut map = HeaderMap::new();
    let Some(block) = block else {
        return (map, 0);
    };
    let text = String::from_utf8_lossy(block);
    let mut unreadable = usize::from(matches!(text, std::borrow::Cow::Owned(_)));
    let mut lines = text.split("\r\n");
    if !lines.next().is_some_and(|v| v.starts_with("NATS/1.0")) {
        unreadable += 1;
    }
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            unreadable += 1;
            continue;
        };
        // Only names that every reader accepts: a dead letter must not
        // carry the same trouble on.
        let name = name.trim();
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid || wire::insert(&mut map, name, value.trim()).is_err() {
            unreadable += 1;
        }
    }
    (map, unreadable)
}

#[cfg(test)]
mod tests {
    use super::lenient_headers;

    #[test]
    fn unreadable_header_lines_are_left_out_and_counted() {
        let block = b"NATS/1.0\r\nce-id: 1\r\nno colon here\r\nx-a: b\r\n\r\n";
        let (map, bad) = lenient_headers(Some(block));
        assert_eq!(bad, 1);
        assert_eq!(map.get("ce-id").map(|v| v.as_str()), Some("1"));
        assert_eq!(map.get("x-a").map(|v| v.as_str()), Some("b"));

        let (_, bad) = lenient_headers(Some(b"HTTP/1.1\r\nbad name: v\r\nx: \xff\r\n\r\n"));
        assert_eq!(bad, 3, "version line, a name with a space, invalid UTF-8");
        assert_eq!(lenient_headers(None).1, 0);
    }
}

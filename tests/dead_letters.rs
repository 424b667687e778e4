//! Dead letters are always buildable, and one that still fails cannot stall
//! its consumer: against real nats-server processes (the oldest and the
//! newest installed), on JetStream and on core NATS, with one event in
//! flight per handler (`concurrency = 1`, the case where one stuck event
//! stops everything behind it).
//!
//! Each poison event below used to be redelivered forever
//! (`DeadLetterFailed` every backoff, 0 later events handled on JetStream):
//! - an event on a 15-token topic (its dead-letter topic has 17 tokens);
//! - a foreign message on a subject with an upper-case token;
//! - a payload that fits, but not with the dead-letter headers added;
//! - a foreign `Nats-Expected-Stream` header, which the dead-letter stream
//!   refuses when it is copied into the dead letter.
//!
//! Each is now dead-lettered (and stored: the dead-letter stream holds it,
//! on core NATS too, where the stream's acknowledgement is now awaited),
//! and the event published after it is handled. A dead letter that cannot
//! be stored at all (the dead-letter stream deleted) ends in
//! `Outcome::DeadLetterDropped`, counted, after a bounded number of tries.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventwire::nats::async_nats;
use eventwire::nats::async_nats::HeaderMap;
use eventwire::prelude::*;
use eventwire::{Envelope, PublishOptions};
use support::{
    eventually, eventually_async, server_binary, shared_server, unique_prefix, ServerSlot,
    SharedServer,
};

/// 15 tokens: valid, but `eventwire.dlq.` + it has 17.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.dl.a.b.c.d.e.f.g.h.i.j.k.l.deep")]
struct Deep {
    fail: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.dl.big")]
struct Big {
    fail: bool,
    blob: String,
}

/// Only its envelope is used, to write a foreign message by hand.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.dl.raw.probe")]
struct Probe {
    n: u32,
}

#[derive(Default)]
struct Handled {
    deep: AtomicU32,
    big: AtomicU32,
    raw: AtomicU32,
}

#[handler(group = "dl")]
async fn deep(evt: Deep, State(h): State<Arc<Handled>>) -> Result<(), HandlerError> {
    if evt.fail {
        return Err(HandlerError::permanent_msg("deep poison"));
    }
    h.deep.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[handler(group = "dl")]
async fn big(evt: Big, State(h): State<Arc<Handled>>) -> Result<(), HandlerError> {
    if evt.fail {
        // A long error: the dead letter carries it (cut at 1 KiB), which is
        // what pushes the letter over the server's max_payload.
        return Err(HandlerError::permanent_msg("x".repeat(2000)));
    }
    h.big.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[handler(group = "dl", topic = "test.dl.raw.>")]
async fn raw(evt: RawEvent, State(h): State<Arc<Handled>>) -> Result<(), HandlerError> {
    if evt.payload() == b"fail" {
        return Err(HandlerError::permanent_msg("raw poison"));
    }
    h.raw.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

struct Setup {
    app: App,
    handled: Arc<Handled>,
    raw: async_nats::Client,
    js: async_nats::jetstream::Context,
    prefix: String,
    events_stream: String,
    dlq_stream: String,
}

async fn setup(server: &SharedServer, scheme: &str, options: &str) -> Setup {
    let prefix = unique_prefix();
    let handled = Arc::new(Handled::default());
    let app = App::builder()
        .service("dl")
        .transport_url(&format!(
            "{}?prefix={prefix}&ack_wait=2s{options}",
            server.url(scheme)
        ))
        .unwrap()
        .handlers(HandlerSelection::names(["deep", "big", "raw"]))
        .state(handled.clone())
        .build()
        .await
        .unwrap_or_else(|e| panic!("build: {e:?}"));
    let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(raw.clone());
    let upper = prefix.to_ascii_uppercase().replace(['.', '-'], "_");
    Setup {
        app,
        handled,
        raw,
        js,
        events_stream: format!("EVENTWIRE_{upper}"),
        dlq_stream: format!("EVENTWIRE_{upper}_DLQ"),
        prefix,
    }
}

impl Setup {
    fn metrics(&self, handler: &str) -> eventwire::HandlerMetrics {
        self.app.metrics().handlers[handler]
    }

    /// The stored dead letters' headers, in order.
    async fn dead_letters(&self) -> Vec<HeaderMap> {
        let mut stream = self.js.get_stream(&self.dlq_stream).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push(m.headers);
            }
        }
        out
    }

    /// A hand-written message carrying a valid envelope, on `subject`
    /// (under the test's prefix), with extra headers.
    async fn publish_foreign(&self, subject: &str, payload: &'static [u8], extra: &[(&str, &str)]) {
        let envelope =
            Envelope::for_event(&Probe { n: 0 }, Arc::from("foreign"), PublishOptions::new())
                .unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in envelope.to_headers() {
            headers.insert(name, value.as_str());
        }
        for (name, value) in extra {
            headers.insert(*name, *value);
        }
        self.raw
            .publish_with_headers(
                format!("{}.{subject}", self.prefix),
                headers,
                payload.into(),
            )
            .await
            .unwrap();
        self.raw.flush().await.unwrap();
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.as_str())
}

on_each_server!(jetstream, core_nats);

async fn jetstream(server: SharedServer) {
    poison_events_are_dead_lettered_and_the_consumer_goes_on(&server, "jetstream").await;
    a_dead_letter_that_cannot_be_stored_is_dropped_and_counted(&server, "jetstream").await;
    a_message_the_client_cannot_read_is_dead_lettered_by_sequence(&server).await;
}

async fn core_nats(server: SharedServer) {
    poison_events_are_dead_lettered_and_the_consumer_goes_on(&server, "nats").await;
    a_dead_letter_that_cannot_be_stored_is_dropped_and_counted(&server, "nats").await;
}

async fn poison_events_are_dead_lettered_and_the_consumer_goes_on(
    server: &SharedServer,
    scheme: &str,
) {
    let s = setup(server, scheme, "").await;
    let p = s.app.publisher();
    let within = Duration::from_secs(20);

    // 1. A 15-token topic: the letter goes to the fallback topic.
    p.publish(&Deep { fail: true }).await.unwrap();
    p.publish(&Deep { fail: false }).await.unwrap();
    eventually(within, "the event after the deep poison handled", || {
        s.handled.deep.load(Ordering::SeqCst) == 1
    })
    .await;

    // 2. Upper case in a foreign publisher's subject: fallback topic too.
    s.publish_foreign("test.dl.raw.ABC", b"fail", &[]).await;
    s.publish_foreign("test.dl.raw.ok", b"ok", &[]).await;
    eventually(
        within,
        "the event after the upper-case poison handled",
        || s.handled.raw.load(Ordering::SeqCst) == 1,
    )
    .await;

    // 3. A foreign `Nats-Expected-Stream` naming the events stream: right
    //    for the original, wrong for the dead-letter stream.
    let expected = s.events_stream.clone();
    s.publish_foreign(
        "test.dl.raw.expect",
        b"fail",
        &[("Nats-Expected-Stream", expected.as_str())],
    )
    .await;
    s.publish_foreign("test.dl.raw.ok", b"ok", &[]).await;
    eventually(
        within,
        "the event after the Nats-Expected-Stream poison handled",
        || s.handled.raw.load(Ordering::SeqCst) == 2,
    )
    .await;

    // 4. A payload that fits alone but not with the dead-letter headers.
    let max = s.raw.server_info().max_payload;
    let blob = "b".repeat(max - 1200);
    p.publish(&Big { fail: true, blob }).await.unwrap();
    p.publish(&Big {
        fail: false,
        blob: String::new(),
    })
    .await
    .unwrap();
    eventually(
        within,
        "the event after the oversize poison handled",
        || s.handled.big.load(Ordering::SeqCst) == 1,
    )
    .await;

    eventually(within, "every poison dead-lettered", || {
        ["deep", "raw", "big"]
            .iter()
            .map(|h| s.metrics(h).dead_lettered)
            .sum::<u64>()
            == 4
    })
    .await;
    for h in ["deep", "raw", "big"] {
        assert_eq!(s.metrics(h).dropped, 0, "{h}: {:?}", s.metrics(h));
    }

    // Stored, each with the facts of what had to change.
    let letters = s.dead_letters().await;
    assert_eq!(letters.len(), 4, "dead letters stored ({scheme})");
    let deep = &letters[0];
    assert_eq!(
        header(deep, "eventwire-dlq-invalid-topic"),
        Some("eventwire.dlq.test.dl.a.b.c.d.e.f.g.h.i.j.k.l.deep")
    );
    assert_eq!(header(deep, "eventwire-dlq-handler"), Some("deep"));
    let upper = &letters[1];
    assert_eq!(
        header(upper, "eventwire-dlq-invalid-topic"),
        Some("eventwire.dlq.test.dl.raw.ABC")
    );
    let foreign = &letters[2];
    assert_eq!(header(foreign, "Nats-Expected-Stream"), None);
    assert_eq!(
        header(foreign, "eventwire-original-Nats-Expected-Stream"),
        Some(expected.as_str())
    );
    let big = &letters[3];
    let original: usize = header(big, "eventwire-dlq-payload-truncated")
        .expect("the truncation is recorded")
        .parse()
        .unwrap();
    assert!(original > max - 1200, "original size recorded: {original}");
    assert!(header(big, "eventwire-dlq-error").unwrap().len() <= 1030);
    s.app.shutdown().await.unwrap();
}

async fn a_dead_letter_that_cannot_be_stored_is_dropped_and_counted(
    server: &SharedServer,
    scheme: &str,
) {
    let s = setup(server, scheme, "").await;
    s.js.delete_stream(&s.dlq_stream).await.unwrap();
    let p = s.app.publisher();
    p.publish(&Deep { fail: true }).await.unwrap();
    p.publish(&Deep { fail: false }).await.unwrap();
    eventually(
        Duration::from_secs(30),
        "the poison dropped and the next event handled",
        || s.metrics("deep").dropped == 1 && s.handled.deep.load(Ordering::SeqCst) == 1,
    )
    .await;
    let m = s.metrics("deep");
    assert_eq!(m.dead_lettered, 0, "{m:?}");
    s.app.shutdown().await.unwrap();
}

/// Publishes with a hand-written protocol line, so that the header block
/// can be one no client library would write.
fn publish_raw_block(port: u16, subject: &str, block: &[u8], payload: &[u8]) {
    use std::io::{BufRead, BufReader, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut info = String::new();
    reader.read_line(&mut info).unwrap();
    let mut frame = Vec::new();
    frame.extend_from_slice(b"CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\n");
    frame.extend_from_slice(
        format!(
            "HPUB {subject} {} {}\r\n",
            block.len(),
            block.len() + payload.len()
        )
        .as_bytes(),
    );
    frame.extend_from_slice(block);
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\nPING\r\n");
    tcp.write_all(&frame).unwrap();
    let mut pong = String::new();
    reader.read_line(&mut pong).unwrap();
    assert_eq!(pong.trim(), "PONG", "the server took the frame");
}

/// A header line without `:` makes async-nats drop the connection when the
/// message arrives, so the pull loop never sees it: it used to be
/// redelivered every ack wait (with one event in flight, nothing after it
/// was handled). Now the consumer's finite `max_deliver` (attempts +
/// `extra_deliveries`) ends its deliveries, and the server's advisory gets
/// it dead-lettered from the stream by sequence, the readable headers kept.
async fn a_message_the_client_cannot_read_is_dead_lettered_by_sequence(server: &SharedServer) {
    let s = setup(server, "jetstream", "&extra_deliveries=1&ack_wait=1s").await;
    let envelope =
        Envelope::for_event(&Probe { n: 0 }, Arc::from("foreign"), PublishOptions::new()).unwrap();
    let mut block = b"NATS/1.0\r\n".to_vec();
    for (name, value) in envelope.to_headers() {
        block.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    block.extend_from_slice(b"this line has no colon\r\n\r\n");
    let port = server.port;
    let subject = format!("{}.test.dl.raw.unreadable", s.prefix);
    tokio::task::spawn_blocking(move || publish_raw_block(port, &subject, &block, b"ok"))
        .await
        .unwrap();
    s.publish_foreign("test.dl.raw.ok", b"ok", &[]).await;
    eventually(
        Duration::from_secs(60),
        "the event after the unreadable message handled",
        || s.handled.raw.load(Ordering::SeqCst) == 1,
    )
    .await;
    eventually_async(
        Duration::from_secs(30),
        "the unreadable message dead-lettered",
        || async { s.dead_letters().await.len() == 1 },
    )
    .await;
    let letter = &s.dead_letters().await[0];
    assert_eq!(header(letter, "eventwire-dlq-stream-sequence"), Some("1"));
    assert_eq!(header(letter, "eventwire-dlq-error-kind"), Some("decode"));
    assert!(
        header(letter, "eventwire-dlq-error")
            .unwrap()
            .contains("max_deliver"),
        "{letter:?}"
    );
    assert_eq!(
        header(letter, "eventwire-original-ce-id"),
        Some(envelope.id.as_str())
    );
    assert_eq!(s.metrics("raw").succeeded, 1);
    s.app.shutdown().await.unwrap();
}

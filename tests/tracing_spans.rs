//! Spans: one producer span per publish and one consumer span per handler
//! attempt, with the OpenTelemetry messaging fields; every line a handler
//! logs is inside its attempt's span, so it carries the event's id and
//! topic. On the in-memory bus, with a small subscriber that records spans
//! and, for each logged event, the fields of the spans it is in.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventwire::prelude::*;
use eventwire::PublishOptions;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Metadata, Subscriber};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.spans.order")]
struct OrderPlaced {
    n: u32,
}

#[handler(group = "spans", retries = 1, backoff = "1ms")]
async fn log_order(evt: OrderPlaced, ctx: Context) -> Result<(), HandlerError> {
    tracing::info!(n = evt.n, "handling the order");
    if evt.n == 2 && ctx.attempt() == 1 {
        return Err(HandlerError::msg("first attempt fails"));
    }
    Ok(())
}

#[derive(Default)]
struct Captured {
    /// Span id → name and `field=value` text.
    spans: HashMap<u64, (String, String)>,
    /// Entered spans, innermost last.
    stack: Vec<u64>,
    /// Each event: its message and the text of every span it was in.
    events: Vec<(String, Vec<(String, String)>)>,
    /// Spans as closed: name and fields.
    closed: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct SpanCapture(Arc<Mutex<Captured>>, Arc<AtomicU64>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for SpanCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.1.fetch_add(1, Ordering::Relaxed) + 1;
        let mut f = Fields(String::new());
        span.record(&mut f);
        self.0
            .lock()
            .unwrap()
            .spans
            .insert(id, (span.metadata().name().to_owned(), f.0));
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut f = Fields(String::new());
        values.record(&mut f);
        if let Some(s) = self.0.lock().unwrap().spans.get_mut(&span.into_u64()) {
            s.1.push_str(&f.0);
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &TracingEvent<'_>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        let mut c = self.0.lock().unwrap();
        let within = c
            .stack
            .iter()
            .filter_map(|id| c.spans.get(id).cloned())
            .collect();
        c.events.push((f.0, within));
    }
    fn enter(&self, span: &Id) {
        self.0.lock().unwrap().stack.push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut c = self.0.lock().unwrap();
        if let Some(pos) = c.stack.iter().rposition(|s| *s == span.into_u64()) {
            c.stack.remove(pos);
        }
    }
    fn try_close(&self, span: Id) -> bool {
        let mut c = self.0.lock().unwrap();
        if let Some(s) = c.spans.get(&span.into_u64()).cloned() {
            c.closed.push(s);
        }
        true
    }
}

/// Everything runs on this one thread (a current-thread runtime), so the
/// thread-local subscriber sees every span and event of the app.
#[tokio::test(flavor = "current_thread")]
async fn publish_and_handler_spans_carry_the_messaging_fields() {
    let capture = SpanCapture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let app = App::builder()
        .service("spans")
        .handlers(HandlerSelection::names(["log_order"]))
        .build()
        .await
        .unwrap();
    let p = app.publisher();
    let first = p
        .publish_with(
            &OrderPlaced { n: 1 },
            PublishOptions::new().correlation_id("flow-1"),
        )
        .await
        .unwrap();
    let second = p.publish(&OrderPlaced { n: 2 }).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.metrics().handlers["log_order"].succeeded < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "handlers did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.shutdown().await.unwrap();

    let c = capture.0.lock().unwrap();
    // Producer spans: one per publish.
    let publishes: Vec<&String> = c
        .spans
        .values()
        .filter(|(name, _)| name == "eventwire.publish")
        .map(|(_, f)| f)
        .collect();
    assert_eq!(publishes.len(), 2, "{publishes:?}");
    for fields in &publishes {
        for want in [
            "otel.kind=producer",
            "messaging.system=memory",
            "messaging.operation.type=publish",
            "messaging.destination.name=test.spans.order",
        ] {
            assert!(fields.contains(want), "{want} in {fields}");
        }
    }
    assert!(publishes
        .iter()
        .any(|f| f.contains(&format!("messaging.message.id={first}"))));

    // Every handler log line is inside a consumer span naming its event.
    let handler_lines: Vec<&(String, Vec<(String, String)>)> = c
        .events
        .iter()
        .filter(|(msg, _)| msg.contains("handling the order"))
        .collect();
    assert_eq!(
        handler_lines.len(),
        3,
        "two events, one retried: {handler_lines:?}"
    );
    for (msg, within) in &handler_lines {
        let (name, fields) = within
            .iter()
            .find(|(name, _)| name == "eventwire.handle")
            .unwrap_or_else(|| panic!("a handler line outside a handler span: {msg} {within:?}"));
        assert_eq!(name, "eventwire.handle");
        for want in [
            "otel.kind=consumer",
            "messaging.system=memory",
            "messaging.operation.type=process",
            "messaging.destination.name=test.spans.order",
            "messaging.consumer.group.name=spans",
            "eventwire.handler=log_order",
        ] {
            assert!(fields.contains(want), "{want} in {fields}");
        }
        let id = if msg.contains("n=1") { &first } else { &second };
        assert!(
            fields.contains(&format!("messaging.message.id={id}")),
            "{fields}"
        );
    }
    let first_span = &handler_lines
        .iter()
        .find(|(m, _)| m.contains("n=1"))
        .unwrap()
        .1;
    assert!(
        first_span
            .iter()
            .any(|(_, f)| f.contains("messaging.message.conversation_id=flow-1")),
        "the correlation id is the conversation id: {first_span:?}"
    );

    // Attempts and outcomes, recorded on the spans as they close.
    let handles: Vec<&String> = c
        .closed
        .iter()
        // Each handle of a span reports its close; the last one has the outcome.
        .filter(|(name, f)| name == "eventwire.handle" && f.contains("eventwire.outcome="))
        .map(|(_, f)| f)
        .collect();
    assert_eq!(handles.len(), 3, "{handles:?}");
    let second_attempts: Vec<&&String> = handles
        .iter()
        .filter(|f| f.contains(&format!("messaging.message.id={second}")))
        .collect();
    assert!(second_attempts
        .iter()
        .any(|f| f.contains("eventwire.attempt=1") && f.contains("eventwire.outcome=retryable")));
    assert!(second_attempts
        .iter()
        .any(|f| f.contains("eventwire.attempt=2") && f.contains("eventwire.outcome=ok")));
}

//! Captures what the code under test logs through `tracing`: every event's
//! level, target and fields, for tests of start-up warnings.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One logged event.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub level: Level,
    pub target: String,
    /// `message` first, then `name=value` of the other fields.
    pub text: String,
}

/// A subscriber that keeps every event (spans are ignored). Install it with
/// [`LogCapture::install`] for the current thread.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<LogLine>>>);

impl LogCapture {
    /// Captures on this thread until the guard is dropped. Tests that use
    /// it run on a current-thread runtime, so everything awaited by the
    /// test logs here.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = LogCapture::default();
        let guard = tracing::subscriber::set_default(capture.clone());
        (capture, guard)
    }

    /// Every captured line.
    pub fn lines(&self) -> Vec<LogLine> {
        self.0.lock().unwrap().clone()
    }

    /// Warnings whose text contains `needle`.
    pub fn warnings_with(&self, needle: &str) -> Vec<String> {
        self.with(Level::WARN, needle)
    }

    /// Lines of `level` whose text contains `needle`.
    pub fn with(&self, level: Level, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.level == level && l.text.contains(needle))
            .map(|l| l.text)
            .collect()
    }

    /// Forgets what was captured.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Subscriber for LogCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut text);
        self.0.lock().unwrap().push(LogLine {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            text: text.message + &text.fields,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

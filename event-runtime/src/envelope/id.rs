//! Event ids: UUIDv7 when eventwire publishes, any text from other publishers.

use std::fmt;
use std::sync::Arc;

/// The id of one event. eventwire writes UUIDv7 (time-ordered); ids from other
/// publishers are accepted as any non-empty string.
///
/// UUIDs are stored inline, so creating, cloning and dropping an id does not
/// allocate.
#[derive(Clone)]
pub struct EventId(IdRepr);

#[derive(Clone)]
enum IdRepr {
    /// A hyphenated lowercase UUID (ASCII).
    Uuid([u8; 36]),
    Other(Arc<str>),
}

impl EventId {
    /// A new time-ordered id (UUIDv7).
    pub fn new() -> Self {
        let mut text = [0u8; 36];
        uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
        EventId(IdRepr::Uuid(text))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Written by `encode_lower`: ASCII hex digits and hyphens.
            IdRepr::Uuid(text) => std::str::from_utf8(text).unwrap_or_default(),
            IdRepr::Other(s) => s,
        }
    }

    /// Whether the id is empty (ids received from other publishers may be).
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<&str> for EventId {
    fn from(s: &str) -> Self {
        let mut text = [0u8; 36];
        if s.len() == 36
            && uuid::Uuid::try_parse(s).is_ok()
            && !s.bytes().any(|b| b.is_ascii_uppercase())
        {
            text.copy_from_slice(s.as_bytes());
            return EventId(IdRepr::Uuid(text));
        }
        EventId(IdRepr::Other(Arc::from(s)))
    }
}

impl From<String> for EventId {
    fn from(s: String) -> Self {
        EventId::from(s.as_str())
    }
}

impl PartialEq for EventId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventId {}

impl PartialOrd for EventId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EventId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for EventId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::ops::Deref for EventId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl AsRef<str> for EventId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

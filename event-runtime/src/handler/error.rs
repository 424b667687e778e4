//! The error a handler returns.

use std::fmt;

use crate::codec::DecodeError;
use crate::delivery::HandlerErrorKind;
use crate::error::BoxError as Source;

/// Why a handler failed, and whether trying again can help.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into a retryable
/// `HandlerError`, so `?` works on the errors of the libraries a handler uses.
/// [`HandlerError::permanent`] marks a failure that no retry can fix: the
/// event goes to dead letters at once.
///
/// ```
/// use eventwire::HandlerError;
///
/// fn parse(n: &str) -> Result<u32, HandlerError> {
///     let v: u32 = n.parse()?; // retryable by default
///     if v == 0 {
///         return Err(HandlerError::permanent_msg("quantity must be positive"));
///     }
///     Ok(v)
/// }
/// assert!(parse("x").unwrap_err().is_retryable());
/// assert!(!parse("0").unwrap_err().is_retryable());
/// ```
pub struct HandlerError {
    kind: HandlerErrorKind,
    source: Source,
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl HandlerError {
    /// A failure that a later attempt may not repeat.
    pub fn retryable(error: impl Into<Source>) -> Self {
        Self::with_kind(HandlerErrorKind::Retryable, error.into())
    }

    /// A failure that no retry can fix.
    pub fn permanent(error: impl Into<Source>) -> Self {
        Self::with_kind(HandlerErrorKind::Permanent, error.into())
    }

    /// A retryable failure described by a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::retryable(Message(message.into()))
    }

    /// A permanent failure described by a message.
    pub fn permanent_msg(message: impl Into<String>) -> Self {
        Self::permanent(Message(message.into()))
    }

    pub(crate) fn with_kind(kind: HandlerErrorKind, source: Source) -> Self {
        HandlerError { kind, source }
    }

    pub(crate) fn decode(error: DecodeError) -> Self {
        Self::with_kind(HandlerErrorKind::Decode, Box::new(error))
    }

    pub(crate) fn timeout(after: std::time::Duration) -> Self {
        Self::with_kind(
            HandlerErrorKind::Timeout,
            Box::new(Message(format!("handler timed out after {after:?}"))),
        )
    }

    pub(crate) fn panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Self::with_kind(
            HandlerErrorKind::Panic,
            Box::new(Message(format!("handler panicked: {text}"))),
        )
    }

    /// The class of failure.
    pub fn kind(&self) -> HandlerErrorKind {
        self.kind
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The underlying error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// Marks this error permanent.
    pub fn into_permanent(mut self) -> Self {
        self.kind = HandlerErrorKind::Permanent;
        self
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)?;
        let mut next = self.source.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        HandlerError::retryable(error)
    }
}

/// What a handler may return: `()` or `Result<(), E>` with `E: Into<HandlerError>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid handler return type",
    label = "handlers return `()` or `Result<(), E>` where `E: Into<HandlerError>`",
    note = "return `Result<(), HandlerError>` to report failures; any `std::error::Error + Send + Sync` converts with `?`"
)]
pub trait IntoHandlerResult {
    /// Converts the handler's return value.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

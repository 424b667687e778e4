//! The error of app-level operations.

use std::fmt;

use crate::error::{PublishError, TransportError};
use crate::registry::ValidationErrors;

/// What can go wrong building, running or stopping an app.
///
/// Its `Debug` prints the message and every cause, one per line (as anyhow
/// does), so `fn main() -> eventwire::Result<()>` reports failures readably.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Start-up validation found problems (all of them are listed).
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A publish failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The transport URL cannot be used.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The operation needs something the transport does not offer.
    #[error("the {transport} transport cannot {operation}")]
    Unsupported {
        /// The transport's kind.
        transport: &'static str,
        /// What was asked (`tell when it is idle`).
        operation: &'static str,
    },
    /// A command line (`eventwire::cli`) that cannot be parsed; `--help`
    /// and `--version` arrive here too (their text is the error's).
    #[cfg(feature = "cli")]
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The schema lock does not match the code, or cannot be read.
    #[error(transparent)]
    Lock(#[from] crate::schema::LockError),
    /// Waiting for a signal failed.
    #[error("signal handling failed")]
    Signal(#[source] std::io::Error),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        // Transparent variants forward `source` to the wrapped error's cause,
        // so each cause is printed once.
        let mut next = std::error::Error::source(self);
        if next.is_some() {
            f.write_str("\n\nCaused by:")?;
        }
        let mut n = 0;
        while let Some(e) = next {
            write!(f, "\n    {n}: {e}")?;
            n += 1;
            next = e.source();
        }
        Ok(())
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A transport URL that cannot be used. The URL kept here has its
/// credentials redacted.
#[derive(Debug, thiserror::Error)]
#[error("invalid transport URL `{url}`: {kind}")]
pub struct UrlError {
    /// The URL, credentials redacted.
    pub url: String,
    /// What is wrong.
    #[source]
    pub kind: UrlErrorKind,
}

/// Why a transport URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlErrorKind {
    /// No `scheme://`.
    #[error(
        "expected `memory://`, `nats://host:port`, `jetstream://host:port` or `kafka://host:port`"
    )]
    MissingScheme,
    /// A scheme eventwire does not know.
    #[error("unknown scheme `{0}`; expected `memory`, `nats`, `jetstream` or `kafka`")]
    UnknownScheme(String),
    /// The scheme's transport is behind a cargo feature that is off.
    #[error("the `{scheme}://` transport is not compiled in: enable the `{feature}` feature of eventwire")]
    FeatureDisabled {
        /// The scheme.
        scheme: &'static str,
        /// The cargo feature to enable.
        feature: &'static str,
    },
    /// The transport rejected the URL's contents.
    #[error(transparent)]
    Invalid(TransportError),
}

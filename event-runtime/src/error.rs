//! The error of app-level operations.

use crate::publisher::PublishError;
use crate::registry::ValidationErrors;
use crate::transport::TransportError;

/// What can go wrong building, running or stopping an app.
#[derive(Debug, thiserror::Error)]
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
    #[error("invalid transport URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The operation needs something the transport does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// A command line (`eventwire::cli`) that cannot be carried out.
    #[error("{0}")]
    Cli(String),
    /// Waiting for a signal failed.
    #[error("signal handling failed: {0}")]
    Signal(#[source] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Choosing the transport from a URL (`EVENTWIRE_URL`).

use std::sync::Arc;

use super::error::{Result, UrlError, UrlErrorKind};
use crate::transport::url::redact;
use crate::transport::Transport;

pub(super) enum TransportChoice {
    Memory,
    Shared(Arc<dyn Transport>),
    #[cfg(feature = "nats")]
    Nats(crate::transport::nats::NatsConfig),
    #[cfg(feature = "nats")]
    JetStream(crate::transport::nats::NatsConfig),
    #[cfg(feature = "kafka")]
    Kafka(crate::transport::kafka::KafkaConfig),
}

/// The transport a URL names: `memory://`, `nats://...`, `tls://...`,
/// `jetstream://...`, `kafka://...`.
pub(super) fn parse_url(url: &str) -> Result<TransportChoice> {
    let bad = |kind| UrlError {
        url: redact(url),
        kind,
    };
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(bad(UrlErrorKind::MissingScheme).into());
    };
    match scheme {
        "memory" => Ok(TransportChoice::Memory),
        #[cfg(feature = "nats")]
        "nats" | "tls" => Ok(TransportChoice::Nats(
            crate::transport::nats::NatsConfig::from_url(url)
                .map_err(|e| bad(UrlErrorKind::Invalid(e)))?,
        )),
        #[cfg(feature = "nats")]
        "jetstream" => Ok(TransportChoice::JetStream(
            crate::transport::nats::NatsConfig::from_url(url)
                .map_err(|e| bad(UrlErrorKind::Invalid(e)))?,
        )),
        #[cfg(not(feature = "nats"))]
        "nats" | "tls" | "jetstream" => Err(bad(UrlErrorKind::FeatureDisabled {
            scheme: if scheme == "jetstream" {
                "jetstream"
            } else {
                "nats"
            },
            feature: "nats",
        })
        .into()),
        #[cfg(not(feature = "kafka-tls"))]
        "kafkas" => Err(bad(UrlErrorKind::FeatureDisabled {
            scheme: "kafkas",
            feature: "kafka-tls",
        })
        .into()),
        #[cfg(feature = "kafka-tls")]
        "kafkas" => Ok(TransportChoice::Kafka(
            crate::transport::kafka::KafkaConfig::from_url(url)
                .map_err(|e| bad(UrlErrorKind::Invalid(e)))?,
        )),
        #[cfg(feature = "kafka")]
        "kafka" => Ok(TransportChoice::Kafka(
            crate::transport::kafka::KafkaConfig::from_url(url)
                .map_err(|e| bad(UrlErrorKind::Invalid(e)))?,
        )),
        #[cfg(not(feature = "kafka"))]
        "kafka" => Err(bad(UrlErrorKind::FeatureDisabled {
            scheme: "kafka",
            feature: "kafka",
        })
        .into()),
        other => Err(bad(UrlErrorKind::UnknownScheme(other.to_owned())).into()),
    }
}

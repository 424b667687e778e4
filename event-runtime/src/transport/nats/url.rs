//! `nats://`, `tls://` and `jetstream://` URLs.

use std::path::PathBuf;

use super::config::{normalize_server, Auth, NatsConfig, Provision, Storage};
use crate::duration::parse_duration;
use crate::error::TransportError;
use crate::transport::url::{parse_bool, redact, UrlParts};

impl NatsConfig {
    /// Parses `nats://[user[:password]@]host[:port][,host[:port]...][?options]`
    /// (also `tls://` and `jetstream://`). A user without password is a token.
    /// Options: `name`, `prefix`, `token`, `nkey`, `creds`, `tls_required`,
    /// `tls_ca`, `tls_cert`, `tls_key`, `connect_timeout`, `subscription_capacity`,
    /// and for JetStream
    /// `stream`, `dead_letter_stream`, `storage`, `replicas`, `max_age`,
    /// `duplicate_window`, `provision`, `ack_wait`, `publish_window`,
    /// `extra_deliveries`.
    /// Durations use [`crate::duration`]'s grammar (`250ms`, `30s`, `7d`).
    ///
    /// ```
    /// use eventwire::nats::NatsConfig;
    /// let c = NatsConfig::from_url("jetstream://a:4222,b?prefix=staging&ack_wait=10s").unwrap();
    /// assert_eq!(c.servers, ["nats://a:4222", "nats://b:4222"]);
    /// assert_eq!(c.subject("orders.created"), "staging.orders.created");
    /// ```
    pub fn from_url(url: &str) -> Result<Self, TransportError> {
        let bad = |why: String| TransportError::config(format!("{}: {why}", redact(url)));
        let parts = UrlParts::parse(url)?;
        let tls_scheme = parts.scheme == "tls";
        if !matches!(parts.scheme.as_str(), "nats" | "tls" | "jetstream") {
            return Err(bad(format!("unknown scheme `{}`", parts.scheme)));
        }
        if !parts.path.is_empty() {
            return Err(bad(format!(
                "unexpected path `/{}`: NATS URLs have none",
                parts.path
            )));
        }
        if parts.hosts.is_empty() {
            return Err(bad("no server address".into()));
        }
        let server_scheme = if tls_scheme { "tls" } else { "nats" };
        let mut config = NatsConfig::new(Vec::<String>::new());
        config.servers = parts
            .hosts
            .iter()
            .map(|h| normalize_server(h, server_scheme))
            .collect();
        config.tls.required = tls_scheme;
        config.auth = match (parts.user, parts.password) {
            (Some(user), Some(password)) => Auth::UserPassword { user, password },
            (Some(token), None) => Auth::Token(token),
            _ => Auth::None,
        };
        let duration = |v: &str| parse_duration(v).map_err(|e| bad(e.to_string()));
        let mut cert = None;
        let mut key = None;
        for (k, v) in parts.query {
            match k.as_str() {
                "name" => config.name = Some(v),
                "prefix" => config.subject_prefix = Some(v),
                "token" => config.auth = Auth::Token(v),
                "nkey" => config.auth = Auth::NkeySeed(v),
                "creds" => config.auth = Auth::CredentialsFile(v.into()),
                "tls_required" => {
                    config.tls.required = parse_bool(&v)
                        .ok_or_else(|| bad(format!("tls_required `{v}`: expected a boolean")))?
                }
                "tls_ca" => config.tls.ca_file = Some(v.into()),
                "tls_cert" => cert = Some(PathBuf::from(v)),
                "tls_key" => key = Some(PathBuf::from(v)),
                "connect_timeout" => config.connect_timeout = duration(&v)?,
                "subscription_capacity" => {
                    config.subscription_capacity =
                        v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            bad(format!(
                                "subscription_capacity `{v}`: expected an integer >= 1"
                            ))
                        })?
                }
                "stream" => config.stream.name = Some(v),
                "dead_letter_stream" => config.stream.dead_letter_name = Some(v),
                "storage" => {
                    config.stream.storage = match v.as_str() {
                        "file" => Storage::File,
                        "memory" => Storage::Memory,
                        _ => {
                            return Err(bad(format!("storage `{v}`: expected `file` or `memory`")))
                        }
                    }
                }
                "replicas" => {
                    config.stream.replicas = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=5).contains(n))
                        .ok_or_else(|| bad(format!("replicas `{v}`: expected 1 to 5")))?
                }
                "max_age" => config.stream.max_age = Some(duration(&v)?),
                "duplicate_window" => config.stream.duplicate_window = duration(&v)?,
                "ack_wait" => config.stream.ack_wait = duration(&v)?,
                "extra_deliveries" => {
                    config.stream.extra_deliveries = v.parse().ok().ok_or_else(|| {
                        bad(format!("extra_deliveries `{v}`: expected an integer >= 0"))
                    })?
                }
                "publish_window" => {
                    config.stream.publish_window =
                        v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            bad(format!("publish_window `{v}`: expected an integer >= 1"))
                        })?
                }
                "provision" => {
                    config.stream.provision = match v.as_str() {
                        "create" => Provision::Create,
                        "verify" => Provision::Verify,
                        _ => {
                            return Err(bad(format!(
                                "provision `{v}`: expected `create` or `verify`"
                            )))
                        }
                    }
                }
                other => return Err(bad(format!("unknown option `{other}`"))),
            }
        }
        match (cert, key) {
            (Some(c), Some(k)) => config.tls.client_cert = Some((c, k)),
            (None, None) => {}
            _ => return Err(bad("`tls_cert` and `tls_key` go together".into())),
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::nats::{Auth, Provision, Storage};
    use std::time::Duration;

    #[test]
    fn parses_urls() {
        let c = NatsConfig::from_url(
            "jetstream://u:p%40ss@a:4222,b?name=svc&prefix=staging&stream=ORDERS&storage=memory&replicas=3&max_age=7d&duplicate_window=5m&provision=verify&ack_wait=10s&extra_deliveries=7&subscription_capacity=1000",
        )
        .unwrap();
        assert_eq!(c.servers, ["nats://a:4222", "nats://b:4222"]);
        assert_eq!(
            c.auth,
            Auth::UserPassword {
                user: "u".into(),
                password: "p@ss".into()
            }
        );
        assert_eq!(c.name.as_deref(), Some("svc"));
        assert_eq!(c.subject("orders.created"), "staging.orders.created");
        assert_eq!(c.topic_of("staging.orders.created"), "orders.created");
        assert_eq!(c.stream_name(), "ORDERS");
        assert_eq!(c.dead_letter_stream_name(), "ORDERS_DLQ");
        assert_eq!(c.stream.storage, Storage::Memory);
        assert_eq!(c.stream.replicas, 3);
        assert_eq!(c.stream.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.stream.duplicate_window, Duration::from_secs(300));
        assert_eq!(c.stream.provision, Provision::Verify);
        assert_eq!(c.stream.ack_wait, Duration::from_secs(10));
        assert_eq!(c.stream.extra_deliveries, 7);
        assert_eq!(c.subscription_capacity, 1000);
        assert!(NatsConfig::from_url("nats://a?subscription_capacity=0").is_err());
        assert!(NatsConfig::from_url("nats://a?extra_deliveries=-1").is_err());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("p@ss"), "{dbg}");
    }

    #[test]
    fn tokens_tls_and_errors() {
        let c = NatsConfig::from_url("tls://s3cr3t@host:4443?tls_ca=/ca.pem").unwrap();
        assert_eq!(c.servers, ["tls://host:4443"]);
        assert!(c.tls.required);
        assert_eq!(c.auth, Auth::Token("s3cr3t".into()));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let e = NatsConfig::from_url("nats://x:y@host?prefix=bad..prefix").unwrap_err();
        assert!(e.to_string().contains("invalid subject prefix"), "{e}");
        assert!(!e.to_string().contains("x:y"), "{e}");
        assert!(NatsConfig::from_url("nats://host?bogus=1").is_err());
        assert!(NatsConfig::from_url("nats://host?tls_cert=/a").is_err());
        assert!(NatsConfig::from_url("nats://?name=x").is_err());
        let e = NatsConfig::from_url("nats://u:pw@h:1?token=abc&bogus").unwrap_err();
        assert!(
            !e.to_string().contains("abc") && !e.to_string().contains(":pw"),
            "{e}"
        );
        assert!(NatsConfig::from_url("nats://host/path").is_err());
        assert_eq!(
            NatsConfig::default_stream_for_prefix("staging.eu-1"),
            "EVENTWIRE_STAGING_EU_1"
        );
    }

    impl NatsConfig {
        fn default_stream_for_prefix(p: &str) -> String {
            NatsConfig::new(["h"]).subject_prefix(p).stream_name()
        }
    }
}

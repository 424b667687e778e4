//! Connection and stream settings of the NATS transports, from a builder or a URL.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::topic::validate_prefix;
use crate::transport::TransportError;

/// How to authenticate to the server.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A token (`nats://token@host` or `?token=`).
    Token(String),
    /// User and password (`nats://user:password@host`).
    UserPassword {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// An NKey seed (`?nkey=SU...`).
    NkeySeed(String),
    /// A `.creds` file with a JWT and an NKey seed (`?creds=/path`).
    CredentialsFile(PathBuf),
}

impl fmt::Debug for Auth {
    // Secrets never reach logs: only which kind of credential is used.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: <redacted> }}")
            }
            Auth::NkeySeed(_) => f.write_str("NkeySeed(<redacted>)"),
            Auth::CredentialsFile(p) => f.debug_tuple("CredentialsFile").field(p).finish(),
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Refuse to connect without TLS (`?tls_required=true`, or a `tls://` URL).
    pub required: bool,
    /// PEM file of extra root certificates (`?tls_ca=/path`).
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key (`?tls_cert=...&tls_key=...`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Storage of the JetStream stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// On disk (the default).
    #[default]
    File,
    /// In memory.
    Memory,
}

/// What to do with streams at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provision {
    /// Create the streams, or add missing topics to existing ones (the default).
    #[default]
    Create,
    /// Never change streams; fail start-up when one does not cover the topics.
    Verify,
}

/// JetStream settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Stream of the events (`?stream=`, default `EVENTWIRE`, or
    /// `EVENTWIRE_<PREFIX>` with a subject prefix).
    pub name: Option<String>,
    /// Stream of the dead letters (default: the events stream's name + `_DLQ`).
    pub dead_letter_name: Option<String>,
    /// `?storage=file|memory`.
    pub storage: Storage,
    /// `?replicas=`.
    pub replicas: usize,
    /// `?max_age=7d`: how long the stream keeps events; `None` keeps them until limits.
    pub max_age: Option<Duration>,
    /// `?duplicate_window=2m`: how long the server remembers event ids.
    pub duplicate_window: Duration,
    /// `?provision=create|verify`.
    pub provision: Provision,
    /// `?ack_wait=30s`: how long the server waits for an ack before
    /// redelivering; running handlers extend it with progress signals.
    pub ack_wait: Duration,
    /// `?publish_window=256`: acknowledgements awaited at once by `publish_batch`.
    pub publish_window: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            name: None,
            dead_letter_name: None,
            storage: Storage::File,
            replicas: 1,
            max_age: None,
            duplicate_window: Duration::from_secs(120),
            provision: Provision::Create,
            ack_wait: Duration::from_secs(30),
            publish_window: 256,
        }
    }
}

/// Settings of the NATS and JetStream transports.
///
/// ```
/// use eventwire::nats::NatsConfig;
///
/// let config = NatsConfig::from_url("nats://alice:secret@127.0.0.1:4222,127.0.0.1:4223?name=orders&prefix=staging").unwrap();
/// assert_eq!(config.servers, ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]);
/// assert_eq!(config.subject_prefix.as_deref(), Some("staging"));
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URLs; the client connects to one and fails over to the others.
    pub servers: Vec<String>,
    /// Connection name shown by the server (`?name=`).
    pub name: Option<String>,
    /// Credentials.
    pub auth: Auth,
    /// TLS.
    pub tls: Tls,
    /// Prefix of every subject (`?prefix=staging` → `staging.orders.created`).
    pub subject_prefix: Option<String>,
    /// Time allowed for the first connection (`?connect_timeout=5s`).
    pub connect_timeout: Duration,
    /// JetStream settings (ignored by core NATS).
    pub stream: StreamSettings,
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers)
            .field("name", &self.name)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("subject_prefix", &self.subject_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("stream", &self.stream)
            .finish()
    }
}

impl NatsConfig {
    /// Settings for these servers (`"127.0.0.1:4222"` or `"nats://host:4222"`).
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(servers: I) -> Self {
        NatsConfig {
            servers: servers
                .into_iter()
                .map(|s| normalize_server(&s.into(), "nats"))
                .collect(),
            name: None,
            auth: Auth::None,
            tls: Tls::default(),
            subject_prefix: None,
            connect_timeout: Duration::from_secs(5),
            stream: StreamSettings::default(),
        }
    }

    /// Sets the connection name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the credentials.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets TLS.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Prefixes every subject (checked: topic syntax, no wildcard).
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = Some(prefix.into());
        self
    }

    /// Sets the JetStream settings.
    pub fn stream(mut self, stream: StreamSettings) -> Self {
        self.stream = stream;
        self
    }

    /// Parses `nats://[user[:password]@]host[:port][,host[:port]...][?options]`
    /// (also `tls://` and `jetstream://`). Options: `name`, `prefix`, `token`,
    /// `nkey`, `creds`, `tls_required`, `tls_ca`, `tls_cert`, `tls_key`,
    /// `connect_timeout`, and for JetStream `stream`, `dead_letter_stream`,
    /// `storage`, `replicas`, `max_age`, `duplicate_window`, `provision`,
    /// `ack_wait`, `publish_window`.
    pub fn from_url(url: &str) -> Result<Self, TransportError> {
        let bad = |why: String| TransportError::Config(format!("{}: {why}", redact_url(url)));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected `nats://host:port`".into()))?;
        let tls_scheme = scheme == "tls";
        if !matches!(scheme, "nats" | "tls" | "jetstream") {
            return Err(bad(format!("unknown scheme `{scheme}`")));
        }
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if hosts.is_empty() {
            return Err(bad("no server address".into()));
        }
        let server_scheme = if tls_scheme { "tls" } else { "nats" };
        let mut config = NatsConfig::new(Vec::<String>::new());
        config.servers = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| normalize_server(h, server_scheme))
            .collect();
        config.tls.required = tls_scheme;
        if let Some(userinfo) = userinfo {
            config.auth = match userinfo.split_once(':') {
                Some((user, password)) => Auth::UserPassword {
                    user: percent_decode(user),
                    password: percent_decode(password),
                },
                None => Auth::Token(percent_decode(userinfo)),
            };
        }
        let mut cert = None;
        let mut key = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "name" => config.name = Some(v),
                "prefix" => config.subject_prefix = Some(v),
                "token" => config.auth = Auth::Token(v),
                "nkey" => config.auth = Auth::NkeySeed(v),
                "creds" => config.auth = Auth::CredentialsFile(v.into()),
                "tls_required" => config.tls.required = parse_bool(&v).map_err(bad)?,
                "tls_ca" => config.tls.ca_file = Some(v.into()),
                "tls_cert" => cert = Some(PathBuf::from(v)),
                "tls_key" => key = Some(PathBuf::from(v)),
                "connect_timeout" => config.connect_timeout = parse_duration(&v).map_err(bad)?,
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
                "max_age" => config.stream.max_age = Some(parse_duration(&v).map_err(bad)?),
                "duplicate_window" => {
                    config.stream.duplicate_window = parse_duration(&v).map_err(bad)?
                }
                "ack_wait" => config.stream.ack_wait = parse_duration(&v).map_err(bad)?,
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

    /// Checks the parts that end up in subjects and names.
    pub fn validate(&self) -> Result<(), TransportError> {
        if self.servers.is_empty() {
            return Err(TransportError::Config("no NATS server address".into()));
        }
        if let Some(prefix) = &self.subject_prefix {
            validate_prefix(prefix).map_err(|e| TransportError::Config(e.to_string()))?;
        }
        for name in [&self.stream.name, &self.stream.dead_letter_name]
            .into_iter()
            .flatten()
        {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(TransportError::Config(format!(
                    "invalid stream name `{name}`: use `A-Z`, `a-z`, `0-9`, `_` and `-`"
                )));
            }
        }
        Ok(())
    }

    /// The events stream's name.
    pub fn stream_name(&self) -> String {
        self.stream
            .name
            .clone()
            .unwrap_or_else(|| match &self.subject_prefix {
                None => "EVENTWIRE".to_owned(),
                Some(p) => format!(
                    "EVENTWIRE_{}",
                    p.to_ascii_uppercase().replace(['.', '-'], "_")
                ),
            })
    }

    /// The dead-letter stream's name.
    pub fn dead_letter_stream_name(&self) -> String {
        self.stream
            .dead_letter_name
            .clone()
            .unwrap_or_else(|| format!("{}_DLQ", self.stream_name()))
    }

    /// The subject of a topic: the prefix, a dot, the topic.
    pub fn subject(&self, topic: &str) -> String {
        match &self.subject_prefix {
            Some(p) => format!("{p}.{topic}"),
            None => topic.to_owned(),
        }
    }

    /// The topic of a subject (the subject without the prefix).
    pub fn topic_of<'s>(&self, subject: &'s str) -> &'s str {
        match &self.subject_prefix {
            Some(p) => subject
                .strip_prefix(p.as_str())
                .and_then(|s| s.strip_prefix('.'))
                .unwrap_or(subject),
            None => subject,
        }
    }

    pub(crate) fn connect_options(&self) -> Result<async_nats::ConnectOptions, TransportError> {
        let mut o = match &self.auth {
            Auth::None => async_nats::ConnectOptions::new(),
            Auth::Token(t) => async_nats::ConnectOptions::with_token(t.clone()),
            Auth::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Auth::NkeySeed(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
            Auth::CredentialsFile(path) => {
                let contents = std::fs::read_to_string(path).map_err(|e| {
                    TransportError::Config(format!(
                        "cannot read credentials file {}: {e}",
                        path.display()
                    ))
                })?;
                async_nats::ConnectOptions::with_credentials(&contents).map_err(|e| {
                    TransportError::Config(format!(
                        "invalid credentials file {}: {e}",
                        path.display()
                    ))
                })?
            }
        };
        if let Some(name) = &self.name {
            o = o.name(name);
        }
        o = o.connection_timeout(self.connect_timeout);
        if self.tls.required {
            o = o.require_tls(true);
        }
        if let Some(ca) = &self.tls.ca_file {
            o = o.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls.client_cert {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(o)
    }
}

fn normalize_server(s: &str, scheme: &str) -> String {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_owned()
    } else {
        format!("{scheme}://{s}")
    };
    // Default port, as NATS clients do.
    let host = with_scheme.split_once("://").map_or("", |(_, h)| h);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
    {
        with_scheme
    } else {
        format!("{with_scheme}:4222")
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" | "" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("`{v}` is not a boolean")),
    }
}

/// `250ms`, `30s`, `5m`, `2h`, `7d`, or combinations (`1h30m`).
pub(crate) fn parse_duration(v: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration `{v}`: expected e.g. `30s`, `5m`, `7d`");
    let mut total = Duration::ZERO;
    let mut rest = v.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let n_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..n_len].parse().map_err(|_| err())?;
        rest = &rest[n_len..];
        let u_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let secs_per = match &rest[..u_len] {
            "ms" => {
                total += Duration::from_millis(n);
                rest = &rest[u_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(err()),
        };
        total += Duration::from_secs(n.checked_mul(secs_per).ok_or_else(err)?);
        rest = &rest[u_len..];
    }
    Ok(total)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with any password or token replaced, for errors and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    let authority = match authority.rsplit_once('@') {
        Some((_, hosts)) => format!("<redacted>@{hosts}"),
        None => authority.to_owned(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|p| match p.split_once('=') {
                Some((k @ ("token" | "nkey"), _)) => format!("{k}=<redacted>"),
                _ => p.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{authority}?{q}"),
        None => format!("{scheme}://{authority}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let c = NatsConfig::from_url(
            "jetstream://u:p%40ss@a:4222,b?name=svc&prefix=staging&stream=ORDERS&storage=memory&replicas=3&max_age=7d&duplicate_window=5m&provision=verify&ack_wait=10s",
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
        assert_eq!(
            redact_url("nats://u:pw@h:1?token=abc&name=n"),
            "nats://<redacted>@h:1?token=<redacted>&name=n"
        );
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

//! Connection and stream settings of the NATS transports, from a builder or a URL.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::TransportError;
use crate::topic::validate_prefix;

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
    /// `?extra_deliveries=50`: deliveries the server may make of one event
    /// beyond its handler's attempts (deferrals by the idempotency guard,
    /// events handed back at shutdown, deliveries the client could not
    /// read). The consumer's `max_deliver` is the attempts plus these, so
    /// the server never redelivers one event forever; an event that reaches
    /// it is dead-lettered from the stream by its sequence (the server's
    /// max-deliveries advisory).
    pub extra_deliveries: u32,
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
            extra_deliveries: 50,
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
#[must_use = "a NatsConfig does nothing until a transport connects with it"]
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
    /// Messages the client buffers per subscription before it drops them
    /// (`?subscription_capacity=65536`, core NATS: a handler that falls
    /// behind a flood loses what does not fit; the loss shows in
    /// `NatsStats::slow_consumer_events`). Each buffered message holds its
    /// payload and headers in memory.
    pub subscription_capacity: usize,
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
            .field("subscription_capacity", &self.subscription_capacity)
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
            subscription_capacity: 65_536,
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

    /// Checks the parts that end up in subjects and names.
    pub fn validate(&self) -> Result<(), TransportError> {
        if self.servers.is_empty() {
            return Err(TransportError::config("no NATS server address"));
        }
        if let Some(prefix) = &self.subject_prefix {
            validate_prefix(prefix).map_err(|e| TransportError::config(e.to_string()))?;
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
                return Err(TransportError::config(format!(
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
                    TransportError::config(format!(
                        "cannot read credentials file {}: {e}",
                        path.display()
                    ))
                })?;
                async_nats::ConnectOptions::with_credentials(&contents).map_err(|e| {
                    TransportError::config(format!(
                        "invalid credentials file {}: {e}",
                        path.display()
                    ))
                })?
            }
        };
        if let Some(name) = &self.name {
            o = o.name(name);
        }
        o = o
            .connection_timeout(self.connect_timeout)
            .subscription_capacity(self.subscription_capacity.max(1));
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

pub(super) fn normalize_server(s: &str, scheme: &str) -> String {
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

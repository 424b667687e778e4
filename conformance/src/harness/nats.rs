//! Core NATS and JetStream: a nats-server the tests may share, a subject
//! prefix per test (so a JetStream stream and consumers of its own), and a
//! connection per app instance.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_runtime::nats::{async_nats, JetStreamTransport, NatsConfig, NatsTransport};
use event_runtime::Transport;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;

use super::{poll_idle, ConnectOptions, Harness, Idle, Letter};

enum Connection {
    Nats(NatsTransport),
    JetStream(JetStreamTransport),
}

/// [`Harness`] of the core NATS (`nats://`) or JetStream (`jetstream://`)
/// transport on a running nats-server.
pub struct NatsHarness {
    label: String,
    address: String,
    jetstream: bool,
    prefix: String,
    /// A plain client: the dead-letter tap, JetStream consumer state.
    client: async_nats::Client,
    letters: Arc<Mutex<Vec<Letter>>>,
    /// Connections to close at the end (not those of killed instances).
    connections: Mutex<Vec<Connection>>,
    /// Restarts the server, when the harness owns it.
    restart: Option<Restart>,
}

/// Kills the server and starts it again on the same port and storage.
pub type Restart = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

impl NatsHarness {
    /// Connects to the nats-server at `address` (`127.0.0.1:4222`), with
    /// the JetStream transport when `jetstream`, core NATS otherwise.
    /// `label` names it in the output (`jetstream (nats-server 2.9.10)`).
    pub async fn connect(
        address: &str,
        jetstream: bool,
        label: impl Into<String>,
    ) -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let client = async_nats::connect(address)
            .await
            .map_err(|e| format!("connect to nats-server at {address}: {e}"))?;
        let prefix = format!(
            "cf{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let letters = Arc::new(Mutex::new(Vec::new()));
        let mut tap = client
            .subscribe(format!("{prefix}.eventwire.dlq.>"))
            .await
            .map_err(|e| format!("subscribe to dead letters: {e}"))?;
        client.flush().await.map_err(|e| format!("flush: {e}"))?;
        {
            let letters = letters.clone();
            let prefix = prefix.clone();
            tokio::spawn(async move {
                while let Some(msg) = tap.next().await {
                    letters.lock().unwrap().push(letter_of(&prefix, &msg));
                }
            });
        }
        Ok(NatsHarness {
            label: label.into(),
            address: address.to_owned(),
            jetstream,
            prefix,
            client,
            letters,
            connections: Mutex::new(Vec::new()),
            restart: None,
        })
    }

    /// The harness owns its server and restarts it with `restart` (for
    /// [`Harness::restart_broker`]).
    pub fn with_restart(mut self, restart: Restart) -> Self {
        self.restart = Some(restart);
        self
    }

    /// The transport URL of this test, with `options`.
    fn url(&self, options: &ConnectOptions) -> String {
        let scheme = if self.jetstream { "jetstream" } else { "nats" };
        let mut url = format!("{scheme}://{}?prefix={}", self.address, self.prefix);
        if let Some(after) = options.redelivery_after.filter(|_| self.jetstream) {
            url.push_str(&format!("&ack_wait={}ms", after.as_millis().max(1)));
        }
        url
    }

    fn config(&self, options: &ConnectOptions) -> Result<NatsConfig, String> {
        NatsConfig::from_url(&self.url(options)).map_err(|e| e.to_string())
    }
}

impl Harness for NatsHarness {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn connect<'a>(
        &'a self,
        options: &'a ConnectOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, String>> {
        Box::pin(async move {
            let config = self.config(options)?;
            let (connection, transport): (Connection, Arc<dyn Transport>) = if self.jetstream {
                let t = JetStreamTransport::connect(config)
                    .await
                    .map_err(|e| e.to_string())?;
                (Connection::JetStream(t.clone()), Arc::new(t))
            } else {
                let t = NatsTransport::connect(config)
                    .await
                    .map_err(|e| e.to_string())?;
                (Connection::Nats(t.clone()), Arc::new(t))
            };
            if !options.killed_later {
                self.connections.lock().unwrap().push(connection);
            }
            Ok(transport)
        })
    }

    fn wait_idle(&self, within: Duration) -> BoxFuture<'_, Result<Idle, String>> {
        Box::pin(async move {
            if !self.jetstream {
                return Ok(Idle::Unknowable);
            }
            let js = async_nats::jetstream::new(self.client.clone());
            let stream_name = self.config(&ConnectOptions::default())?.stream_name();
            poll_idle(within, Duration::from_millis(20), || async {
                Ok((!consumers_idle(&js, &stream_name).await)
                    .then(|| format!("JetStream consumers of {stream_name}")))
            })
            .await
        })
    }

    fn dead_letters(&self) -> Vec<Letter> {
        self.letters.lock().unwrap().clone()
    }

    fn stored_dead_letters(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move {
            if !self.jetstream {
                return None;
            }
            let js = async_nats::jetstream::new(self.client.clone());
            let name = self
                .config(&ConnectOptions::default())
                .ok()?
                .dead_letter_stream_name();
            let mut stream = js.get_stream(name).await.ok()?;
            Some(stream.info().await.ok()?.state.messages)
        })
    }

    fn failed_publishes(&self) -> Option<u64> {
        let connections = self.connections.lock().unwrap();
        Some(
            connections
                .iter()
                .map(|c| match c {
                    Connection::Nats(t) => t.stats().failed_publishes,
                    Connection::JetStream(t) => t.stats().failed_publishes,
                })
                .sum(),
        )
    }

    fn restart_broker(&self) -> Option<BoxFuture<'_, Result<(), String>>> {
        self.restart.as_ref().map(|restart| restart())
    }

    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let connections = std::mem::take(&mut *self.connections.lock().unwrap());
            for c in connections {
                let closed = match &c {
                    Connection::Nats(t) => t.close().await,
                    Connection::JetStream(t) => t.close().await,
                };
                closed.unwrap_or_else(|e| panic!("closing a connection of {}: {e}", self.label));
            }
        })
    }
}

/// Whether every consumer of the stream has nothing pending and nothing
/// awaiting an ack.
async fn consumers_idle(js: &async_nats::jetstream::Context, stream_name: &str) -> bool {
    let Ok(stream) = js.get_stream(stream_name).await else {
        return false;
    };
    let mut infos = stream.consumers();
    let mut idle = true;
    while let Some(info) = infos.next().await {
        let Ok(info) = info else { return false };
        idle &= info.num_pending == 0 && info.num_ack_pending == 0;
    }
    idle
}

/// A dead letter read off the wire (`eventwire-dlq-*` headers).
fn letter_of(prefix: &str, msg: &async_nats::Message) -> Letter {
    let headers = msg.headers.clone().unwrap_or_default();
    let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    let topic = msg
        .subject
        .as_str()
        .strip_prefix(prefix)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or(msg.subject.as_str())
        .to_owned();
    Letter::from_wire(topic, msg.payload.to_vec(), "ce-", get)
}

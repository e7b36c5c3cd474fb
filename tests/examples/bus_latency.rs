//! Benchmark: latency of mossd over a private system bus, measured in one run beside the same
//! work done in-process, so the figures are ratios that survive a noisy machine.
//!
//! 1. `ListInstalled` of 2,000 installed packages over the bus vs `Moss::list_installed` in
//!    process.
//! 2. A no-op transaction round trip (create, subscribe, `Start`, `Finished`): enabling an
//!    enabled repository, and a sync with nothing to do.
//!
//! Run as root: `cargo run --release -p moss-tests --example bus_latency -- [PACKAGES] [ROUNDS]`.

use std::{
    collections::HashMap,
    path::Path,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use moss_proto::{ManagerProxy, TransactionProxy};
use moss_tests::bus::{Mossd, TestBus, binaries};

fn median(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
    (samples[samples.len() / 2], p95)
}

fn moss(root: &Path, arguments: &[&str]) {
    let status = Command::new(&binaries().1)
        .arg("-D")
        .arg(root)
        .args(arguments)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "moss {arguments:?}");
}

async fn round_trip(
    connection: &zbus::Connection,
    create: impl std::future::Future<Output = zbus::Result<zbus::wire::OwnedObjectPath>>,
) -> Duration {
    let started = Instant::now();
    let path = create.await.unwrap();
    let transaction = TransactionProxy::builder(connection)
        .path(path)
        .build()
        .await
        .unwrap();
    let mut finished = transaction.receive_finished().await.unwrap();
    transaction.start().await.unwrap();
    let signal = finished.next().await.unwrap();
    assert_eq!(signal.args().unwrap().status(), &"succeeded");
    started.elapsed()
}

#[tokio::main]
#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
async fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let packages: usize = arguments
        .get(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(2000);
    let rounds: usize = arguments
        .get(2)
        .and_then(|text| text.parse().ok())
        .unwrap_or(50);
    let scratch = tempfile::Builder::new()
        .prefix("moss-bus-bench.")
        .tempdir_in("/dev/shm")
        .unwrap();
    let corpus = scratch.path().join("corpus");
    let status = Command::new("python3")
        .arg(moss_tests::shared_dir().join("bench/stonegen.py"))
        .args(["--out", &corpus.display().to_string()])
        .args(["--packages", &packages.to_string(), "--seed", "7"])
        .args([
            "--files-per-package",
            "4",
            "--size-model",
            "tiny",
            "--deps-per-package",
            "0",
        ])
        .arg("--quiet")
        .status()
        .unwrap();
    assert!(status.success(), "stonegen");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let index = format!("file://{}", corpus.join("stone.index").display());
    moss(&root, &["repo", "add", "corpus", &index, "--unsigned"]);
    let names: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".stone").map(|stem| {
                // name-version-release-build-arch
                let parts: Vec<&str> = stem.rsplitn(5, '-').collect();
                parts.last().unwrap().to_string()
            })
        })
        .collect();
    let mut install = vec!["install", "-y"];
    install.extend(names.iter().map(String::as_str));
    moss(&root, &install);

    // In process.
    let engine = moss::Moss::open_for_reading(&root, Arc::new(moss::events::Silent))
        .await
        .unwrap();
    let mut local = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let listing = engine.list_installed(false).await.unwrap();
        local.push(started.elapsed());
        assert_eq!(listing.len(), packages);
    }
    engine.database().close().await;
    drop(engine);

    // Over the bus.
    let bus = TestBus::start();
    let _mossd = Mossd::start(&bus, &root, &[]);
    let connection = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let manager = ManagerProxy::new(&connection).await.unwrap();
    manager.list_installed(false).await.unwrap();
    let mut remote = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let listing = manager.list_installed(false).await.unwrap();
        remote.push(started.elapsed());
        assert_eq!(listing.len(), packages);
    }
    let mut enable = Vec::new();
    let mut sync = Vec::new();
    for _ in 0..rounds.min(20) {
        enable.push(
            round_trip(
                &connection,
                manager.repo_enable("corpus", true, HashMap::new()),
            )
            .await,
        );
        sync.push(round_trip(&connection, manager.sync(false, false, HashMap::new())).await);
    }
    let (local_median, local_p95) = median(local);
    let (remote_median, remote_p95) = median(remote);
    let (enable_median, enable_p95) = median(enable);
    let (sync_median, sync_p95) = median(sync);
    println!("packages installed: {packages}, rounds: {rounds}");
    println!(
        "ListInstalled over the bus: median {remote_median:?}, p95 {remote_p95:?}; \
         in process: median {local_median:?}, p95 {local_p95:?}; ratio {:.2}",
        remote_median.as_secs_f64() / local_median.as_secs_f64()
    );
    println!(
        "no-op transaction round trip (RepoEnable of an enabled repository): median {enable_median:?}, p95 {enable_p95:?}"
    );
    println!(
        "no-op sync round trip (resolve {packages} packages, nothing to do): median {sync_median:?}, p95 {sync_p95:?}"
    );
}

//! Helpers for the daemon's end-to-end tests: busctl calls, transaction properties, snapshots of
//! what a change could alter, and a bus + polkitd + mossd setup with the example repository.

#![allow(missing_docs)]

use std::{
    path::Path,
    process::{Command, Output},
};

use crate::bus::{Mossd, TestBus, Who, example_repository, wait_for};

pub const MANAGER: [&str; 3] = [
    "com.serpentos.Moss1",
    "/com/serpentos/Moss1",
    "com.serpentos.Moss1",
];
pub const TRANSACTION: &str = "com.serpentos.Moss1.Transaction";

pub fn run(mut command: Command) -> Output {
    command.output().expect("run a command")
}

pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `moss ARGS` as `who`; panics unless it succeeds; returns stdout.
pub fn moss_ok(bus: &TestBus, who: Who, arguments: &[&str]) -> String {
    let mut command = bus.moss(who);
    command.args(arguments);
    let output = run(command);
    assert!(
        output.status.success(),
        "moss {arguments:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `busctl --system call` on the manager as `who`.
pub fn call(bus: &TestBus, who: Who, method: &str, signature: &str, arguments: &[&str]) -> Output {
    let mut command = bus.busctl(who);
    command.arg("call").args(MANAGER).arg(method);
    if !signature.is_empty() {
        command.arg(signature).args(arguments);
    }
    run(command)
}

pub fn object_path(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no object path in {}", text(output)))
        .trim_matches('"')
        .to_owned()
}

pub fn property(bus: &TestBus, path: &str, name: &str) -> String {
    let mut command = bus.busctl(Who::Root);
    command.args([
        "get-property",
        "com.serpentos.Moss1",
        path,
        TRANSACTION,
        name,
    ]);
    let output = run(command);
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Start an install of italian-pizza as root through busctl (the `start` option: no signals to
/// follow) and wait until it runs; its object path. Tests pause it with `MOSS_PAUSE_AT`.
pub fn start_running_install(bus: &TestBus) -> String {
    let output = call(
        bus,
        Who::Root,
        "Install",
        "asaha{sv}",
        &["1", "italian-pizza", "0", "1", "start", "b", "true"],
    );
    let path = object_path(&output);
    wait_for(
        || property(bus, &path, "Status").contains("running"),
        "the transaction to run",
    );
    path
}

/// Wait until the transaction at `path` has a final status, and return it.
pub fn wait_final(bus: &TestBus, path: &str) -> String {
    let mut last = String::new();
    wait_for(
        || {
            last = property(bus, path, "Status");
            ["succeeded", "failed", "cancelled"]
                .iter()
                .any(|status| last.contains(status))
        },
        "the transaction to finish",
    );
    last
}

pub fn transaction_result(bus: &TestBus, path: &str) -> String {
    let mut command = bus.busctl(Who::Root);
    command.args(["call", "com.serpentos.Moss1", path, TRANSACTION, "Result"]);
    String::from_utf8_lossy(&run(command).stdout).into_owned()
}

/// What a change could alter: installed packages, states, repositories, the active tree.
pub fn snapshot(bus: &TestBus, root: &Path) -> String {
    let installed = moss_ok(bus, Who::Root, &["list", "installed", "--format", "json"]);
    let states = moss_ok(bus, Who::Root, &["state", "list", "--format", "json"]);
    let repositories = moss_ok(bus, Who::Root, &["repo", "list", "--format", "json"]);
    let tree = std::fs::read_to_string(root.join("usr/.stateID")).unwrap_or_default();
    format!("{installed}{states}{repositories}{tree}")
}

/// A bus, polkitd and mossd on a fresh root with the example repository added and
/// `bash-completion` installed (state 1).
#[derive(Debug)]
pub struct Setup {
    /// The bus.
    pub bus: TestBus,
    /// The installation root.
    pub root: tempfile::TempDir,
    /// The example repository's index.
    pub repository: std::path::PathBuf,
    /// The daemon.
    pub mossd: Mossd,
}

impl Setup {
    /// Start it, with extra environment for mossd.
    pub fn new(environment: &[(&str, &str)]) -> Self {
        let bus = TestBus::start();
        let root = tempfile::Builder::new()
            .prefix("moss-root.")
            .tempdir()
            .unwrap();
        let mossd = Mossd::start(&bus, root.path(), environment);
        let repository = add_examples(&bus);
        moss_ok(&bus, Who::Root, &["install", "-y", "bash-completion"]);
        Self {
            bus,
            root,
            repository,
            mossd,
        }
    }
}

/// Build the example repository beside the bus and add it (unsigned) as `examples`; its path.
pub fn add_examples(bus: &TestBus) -> std::path::PathBuf {
    let repository = example_repository(bus.directory());
    let index = format!("file://{}", repository.display());
    moss_ok(
        bus,
        Who::Root,
        &["repo", "add", "examples", &index, "--unsigned"],
    );
    repository
}

/// A property of the manager as busctl prints it (`s "check"`, `u 1`), read by `nobody`.
pub fn manager_property(bus: &TestBus, name: &str) -> String {
    let mut command = bus.busctl(Who::Nobody);
    command.arg("get-property").args(MANAGER).arg(name);
    String::from_utf8_lossy(&run(command).stdout)
        .trim()
        .to_owned()
}

/// Pack `tool` at `release` (its file says which) into `repository`, replacing other releases,
/// and index it again.
pub fn publish_tool(repository: &Path, release: u32) {
    let tree = tempfile::tempdir().unwrap();
    let share = tree.path().join("usr/share/tool");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("release"), format!("{release}\n")).unwrap();
    let status = Command::new("python3")
        .arg(crate::shared_dir().join("bench/stonepack.py"))
        .arg("--tree")
        .arg(tree.path())
        .args(["--name", "tool", "--version", "1", "--release"])
        .arg(release.to_string())
        .args(["--summary", "A tool that gets updated", "--out"])
        .arg(repository.join(format!("tool-1-{release}-1-x86_64.stone")))
        .status()
        .unwrap();
    assert!(status.success(), "stonepack.py failed");
    for entry in std::fs::read_dir(repository).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("tool-") && !name.contains(&format!("-{release}-1-")) {
            std::fs::remove_file(path).unwrap();
        }
    }
    let status = Command::new(&crate::bus::binaries().1)
        .arg("index")
        .arg(repository)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

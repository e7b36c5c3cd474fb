//! mossd on a private system bus with the real polkitd: authorisation of every change for root,
//! a member of the allowed group and nobody; busctl, gdbus and the CLI as clients; concurrency,
//! cancellation, disconnects, SIGKILL and SIGTERM, idle exit, background updates.

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use moss_tests::bus::{Mossd, TestBus, Who, example_repository, wait_for};

const MANAGER: [&str; 3] = [
    "com.serpentos.Moss1",
    "/com/serpentos/Moss1",
    "com.serpentos.Moss1",
];
const TRANSACTION: &str = "com.serpentos.Moss1.Transaction";

fn run(mut command: Command) -> Output {
    command.output().expect("run a command")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `moss ARGS` as `who`; panics unless it succeeds; returns stdout.
fn moss_ok(bus: &TestBus, who: Who, arguments: &[&str]) -> String {
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
fn call(bus: &TestBus, who: Who, method: &str, signature: &str, arguments: &[&str]) -> Output {
    let mut command = bus.busctl(who);
    command.arg("call").args(MANAGER).arg(method);
    if !signature.is_empty() {
        command.arg(signature).args(arguments);
    }
    run(command)
}

fn object_path(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no object path in {}", text(output)))
        .trim_matches('"')
        .to_owned()
}

fn property(bus: &TestBus, path: &str, name: &str) -> String {
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

/// Wait until the transaction at `path` has a final status, and return it.
fn wait_final(bus: &TestBus, path: &str) -> String {
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

fn transaction_result(bus: &TestBus, path: &str) -> String {
    let mut command = bus.busctl(Who::Root);
    command.args(["call", "com.serpentos.Moss1", path, TRANSACTION, "Result"]);
    String::from_utf8_lossy(&run(command).stdout).into_owned()
}

/// What a change could alter: installed packages, states, repositories, the active tree.
fn snapshot(bus: &TestBus, root: &Path) -> String {
    let installed = moss_ok(bus, Who::Root, &["list", "installed", "--format", "json"]);
    let states = moss_ok(bus, Who::Root, &["state", "list", "--format", "json"]);
    let repositories = moss_ok(bus, Who::Root, &["repo", "list", "--format", "json"]);
    let tree = std::fs::read_to_string(root.join("usr/.stateID")).unwrap_or_default();
    format!("{installed}{states}{repositories}{tree}")
}

/// A bus, polkitd and mossd on a fresh root with the example repository added and
/// `bash-completion` installed (state 1).
struct Setup {
    bus: TestBus,
    root: tempfile::TempDir,
    repository: std::path::PathBuf,
    mossd: Mossd,
}

impl Setup {
    fn new(environment: &[(&str, &str)]) -> Self {
        let bus = TestBus::start();
        let root = tempfile::Builder::new()
            .prefix("moss-root.")
            .tempdir()
            .unwrap();
        let repository = example_repository(bus.directory());
        let mossd = Mossd::start(&bus, root.path(), environment);
        let index = format!("file://{}", repository.display());
        moss_ok(
            &bus,
            Who::Root,
            &["repo", "add", "examples", &index, "--unsigned"],
        );
        moss_ok(&bus, Who::Root, &["install", "-y", "bash-completion"]);
        Self {
            bus,
            root,
            repository,
            mossd,
        }
    }
}

/// Every method that changes the system, with busctl arguments that make sense on [`Setup`].
fn changes(build_root: &str) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let start = ["1", "start", "b", "true"].map(String::from).to_vec();
    let with = |mut arguments: Vec<String>| {
        arguments.extend(start.clone());
        arguments
    };
    let strings = |values: &[&str]| values.iter().map(|value| value.to_string()).collect();
    vec![
        (
            "Install",
            "asaha{sv}",
            with(strings(&["1", "italian-pizza", "0"])),
        ),
        ("Remove", "asa{sv}", with(strings(&["1", "italian-pizza"]))),
        ("Sync", "bba{sv}", with(strings(&["false", "false"]))),
        ("Refresh", "sa{sv}", with(strings(&[""]))),
        (
            "RepoAdd",
            "sstsasa{sv}",
            with(strings(&[
                "second",
                "file:///nonexistent/stone.index",
                "0",
                "",
                "0",
            ])),
        ),
        (
            "RepoEnable",
            "sba{sv}",
            with(strings(&["examples", "true"])),
        ),
        ("RepoRemove", "sa{sv}", with(strings(&["second"]))),
        ("StateActivate", "ta{sv}", with(strings(&["1"]))),
        ("StatePrune", "ta{sv}", with(strings(&["10"]))),
        ("StateRemove", "ata{sv}", with(strings(&["1", "999"]))),
        ("Repair", "a{sv}", with(Vec::new())),
        ("CachePrune", "a{sv}", with(Vec::new())),
        (
            "ComposeBuildRoot",
            "sasa{sv}",
            with(vec![build_root.to_owned(), "1".into(), "pineapple".into()]),
        ),
        ("AutomaticUpdate", "a{sv}", with(Vec::new())),
        (
            "BootSync",
            "ssa{sv}",
            with(vec![format!("{build_root}-esp"), String::new()]),
        ),
    ]
}

#[test]
fn nobody_is_refused_every_change_and_nothing_changes() {
    let setup = Setup::new(&[]);
    let before = snapshot(&setup.bus, setup.root.path());
    let build_root = setup.bus.directory().join("build-root-nobody");
    for (method, signature, arguments) in changes(&build_root.display().to_string()) {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        let output = call(&setup.bus, Who::Nobody, method, signature, &arguments);
        assert!(
            !output.status.success(),
            "{method} as nobody: {}",
            text(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not authorised") && stderr.contains("polkit denied"),
            "{method} as nobody: {}",
            text(&output)
        );
    }
    // The CLI maps the named error to exit code 77 with the daemon's message.
    let mut command = setup.bus.moss(Who::Nobody);
    command.args(["remove", "-y", "bash-completion"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("com.serpentos.moss.remove"));
    // gdbus reports the error by name.
    let mut command = setup.bus.command(Who::Nobody, "gdbus");
    command.args([
        "call",
        "--system",
        "--dest",
        "com.serpentos.Moss1",
        "--object-path",
        "/com/serpentos/Moss1",
        "--method",
        "com.serpentos.Moss1.Refresh",
        "",
        "{}",
    ]);
    let output = run(command);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("com.serpentos.Moss1.Error.NotAuthorized"),
        "{}",
        text(&output)
    );
    assert_eq!(snapshot(&setup.bus, setup.root.path()), before);
    assert!(!build_root.join("usr").exists());
    // Queries need no authorisation.
    let listing = moss_ok(&setup.bus, Who::Nobody, &["list", "installed"]);
    assert!(listing.contains("bash-completion"));
}

#[test]
fn root_and_the_allowed_group_may_make_every_change() {
    for who in [Who::Root, Who::Tester] {
        let setup = Setup::new(&[]);
        let build_root = setup.bus.directory().join(format!("build-root-{who:?}"));
        for (method, signature, arguments) in changes(&build_root.display().to_string()) {
            let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
            let output = call(&setup.bus, who, method, signature, &arguments);
            assert!(
                output.status.success(),
                "{method} as {who:?}: {}",
                text(&output)
            );
            let path = object_path(&output);
            let status = wait_final(&setup.bus, &path);
            let result = transaction_result(&setup.bus, &path);
            // A change may fail on its merits (the second repository does not exist), never
            // for want of permission.
            assert!(!result.contains("not authorised"), "{method}: {result}");
            // BootSync needs a kernel and a root partition this VM does not have.
            if !["RepoAdd", "RepoRemove", "StateRemove", "BootSync"].contains(&method) {
                assert!(
                    status.contains("succeeded"),
                    "{method} as {who:?}: {result}"
                );
            }
        }
        // The changes really happened: pizza was installed then removed, the build root has
        // pineapple, state 1 was activated.
        let listing = moss_ok(&setup.bus, Who::Root, &["list", "installed"]);
        assert!(listing.contains("bash-completion"), "{listing}");
        assert!(build_root.join("usr/share/defaults").exists() || build_root.join("usr").exists());
        let build_listing = moss_ok(
            &setup.bus,
            Who::Root,
            &["-D", &build_root.display().to_string(), "list", "installed"],
        );
        assert!(build_listing.contains("pineapple"), "{build_listing}");
    }
}

#[test]
fn polkit_unreachable_means_deny() {
    let bus = TestBus::start_with(false);
    let root = tempfile::tempdir().unwrap();
    let _mossd = Mossd::start(&bus, root.path(), &[]);
    let output = call(&bus, Who::Nobody, "Refresh", "sa{sv}", &["", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("polkit is unreachable"),
        "{}",
        text(&output)
    );
    // Root needs no polkit.
    let output = call(&bus, Who::Root, "Refresh", "sa{sv}", &["", "0"]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn the_cli_installs_lists_removes_and_rolls_back_through_the_daemon() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    moss_ok(bus, Who::Tester, &["install", "-y", "italian-pizza"]);
    let listing = moss_ok(bus, Who::Root, &["list", "installed", "--format", "json"]);
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bash-completion", "italian-pizza"]);
    assert!(
        setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );
    // A conflict is refused with the resolver's explanation and exit 1; nothing changes.
    let mut command = bus.moss(Who::Root);
    command.args(["install", "-y", "pineapple"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("conflicts"));
    moss_ok(bus, Who::Root, &["remove", "-y", "italian-pizza"]);
    assert!(
        !setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );
    moss_ok(bus, Who::Root, &["state", "activate", "2"]);
    assert!(
        setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );
    let states = moss_ok(bus, Who::Root, &["state", "list"]);
    assert!(states.contains("State #2 - Install (active)"), "{states}");
    // Queries of the daemon: info, search, search-file, history, state diff.
    assert!(moss_ok(bus, Who::Nobody, &["info", "pineapple"]).contains("Status       : available"));
    assert!(moss_ok(bus, Who::Nobody, &["search-file", "italian"]).contains("from italian-pizza"));
    let output = call(bus, Who::Nobody, "StateDiff", "tt", &["1", "2"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("italian-pizza"),
        "{}",
        text(&output)
    );
    let output = call(bus, Who::Nobody, "History", "", &[]);
    let history = String::from_utf8_lossy(&output.stdout);
    assert!(
        history.contains("Activate state") && history.contains("succeeded"),
        "{history}"
    );
    // A local stone goes to the daemon as a file descriptor.
    let pineapple = std::fs::read_dir(setup.repository.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.display().to_string().contains("pineapple"))
        .unwrap();
    moss_ok(bus, Who::Root, &["remove", "-y", "italian-pizza"]);
    moss_ok(
        bus,
        Who::Tester,
        &["install", "-y", &pineapple.display().to_string()],
    );
    assert!(moss_ok(bus, Who::Root, &["list", "installed"]).contains("pineapple"));
}

#[test]
fn twenty_clients_at_once_are_serialised_and_the_state_is_consistent() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    let children: Vec<_> = (0..20)
        .map(|index| {
            let mut command = bus.moss(if index % 2 == 0 {
                Who::Root
            } else {
                Who::Tester
            });
            // Alternate two different changes so that some join and some queue.
            if index % 4 < 2 {
                command.args(["install", "-y", "italian-pizza"]);
            } else {
                command.args(["repo", "update"]);
            }
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }
    let installed = moss_ok(bus, Who::Root, &["list", "installed"]);
    assert!(installed.contains("italian-pizza") && installed.contains("bash-completion"));
    moss_ok(bus, Who::Root, &["state", "verify"]);
    let log = setup.mossd.log_text();
    // One worker: a transaction runs only after the previous one finished.
    let mut running = None;
    let mut finished = 0;
    for line in log.lines() {
        if line.contains(" running ") || line.ends_with(" running") {
            assert_eq!(running, None, "two transactions ran at once:\n{log}");
            running = Some(line.to_owned());
        } else if line.contains("finished transaction=") {
            running = None;
            finished += 1;
        }
    }
    assert!(finished >= 3, "{log}");
    let states: serde_json::Value = serde_json::from_str(&moss_ok(
        bus,
        Who::Root,
        &["state", "list", "--format", "json"],
    ))
    .unwrap();
    // State 1 (setup) and exactly one install of pizza: the rest joined or found it installed.
    assert_eq!(states.as_array().unwrap().len(), 2, "{states}");
}

#[test]
fn queries_answer_while_a_long_transaction_runs_and_cancel_leaves_the_system_as_it_was() {
    let setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:4000")]);
    let bus = &setup.bus;
    let before = snapshot(bus, setup.root.path());
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
        "running",
    );
    let started = Instant::now();
    for _ in 0..5 {
        let listing = moss_ok(bus, Who::Nobody, &["list", "installed"]);
        assert!(listing.contains("bash-completion"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "queries waited for the transaction"
    );
    assert!(property(bus, &path, "Status").contains("running"));
    assert_eq!(property(bus, &path, "Cancellable"), "b true");
    let mut command = bus.busctl(Who::Root);
    command.args(["call", "com.serpentos.Moss1", &path, TRANSACTION, "Cancel"]);
    assert!(run(command).status.success());
    let status = wait_final(bus, &path);
    assert!(status.contains("cancelled"), "{status}");
    assert!(transaction_result(bus, &path).contains("nothing was changed"));
    assert_eq!(snapshot(bus, setup.root.path()), before);
    // Events were numbered from 1 and the percentage never went down.
    let mut command = bus.busctl(Who::Root);
    command.args([
        "--json=short",
        "call",
        "com.serpentos.Moss1",
        &path,
        TRANSACTION,
        "Events",
        "t",
        "0",
    ]);
    let events: serde_json::Value = serde_json::from_slice(&run(command).stdout).unwrap();
    let mut last = (0, 0);
    for event in events["data"][0].as_array().unwrap() {
        let sequence = event[0].as_u64().unwrap();
        let progress: serde_json::Value = serde_json::from_str(event[1].as_str().unwrap()).unwrap();
        let percentage = progress["percentage"].as_u64().unwrap();
        assert_eq!(sequence, last.0 + 1);
        assert!(percentage >= last.1);
        last = (sequence, percentage);
    }
    assert!(last.0 > 3);
}

#[test]
fn a_client_that_leaves_before_start_leaves_nothing_behind() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    let before = snapshot(bus, setup.root.path());
    // busctl exits after the call: the transaction's creator is gone before any Start.
    let output = call(
        bus,
        Who::Root,
        "Install",
        "asaha{sv}",
        &["1", "italian-pizza", "0", "0"],
    );
    let path = object_path(&output);
    wait_for(
        || {
            let mut command = bus.busctl(Who::Root);
            command.args(["introspect", "com.serpentos.Moss1", &path]);
            !run(command).status.success()
        },
        "the abandoned transaction to go",
    );
    let output = call(bus, Who::Root, "Transactions", "", &[]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ao 0");
    assert_eq!(snapshot(bus, setup.root.path()), before);
}

#[test]
fn sigkill_mid_transaction_then_restart_reports_it_and_the_root_is_whole() {
    let mut setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:10000")]);
    let bus = &setup.bus;
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
        "running",
    );
    std::thread::sleep(Duration::from_millis(300));
    setup.mossd.kill();
    let mossd = Mossd::start(bus, setup.root.path(), &[]);
    let output = call(bus, Who::Nobody, "Recovery", "", &[]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.starts_with("bs true"), "{report}");
    assert!(
        report.contains("Install") && report.contains("interrupted") && report.contains("state 1"),
        "{report}"
    );
    // Reported once.
    let output = call(bus, Who::Nobody, "Recovery", "", &[]);
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("bs false"));
    let states = moss_ok(bus, Who::Root, &["state", "list"]);
    assert!(
        states.contains("State #1 - Install (active)") && !states.contains("State #2"),
        "{states}"
    );
    moss_ok(bus, Who::Root, &["state", "verify"]);
    assert!(
        !setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );
    // The interrupted transaction is in the history, and the next install works.
    let output = call(bus, Who::Root, "History", "", &[]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("interrupted"));
    moss_ok(bus, Who::Root, &["install", "-y", "italian-pizza"]);
    drop(mossd);
}

#[test]
fn sigterm_abandons_an_uncommitted_transaction_safely_and_exits() {
    let mut setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:3000")]);
    let bus = &setup.bus;
    let before = snapshot(bus, setup.root.path());
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
        "running",
    );
    assert!(
        setup.mossd.terminate(),
        "mossd did not exit cleanly: {}",
        setup.mossd.log_text()
    );
    assert!(
        setup.mossd.log_text().contains("cancelled"),
        "{}",
        setup.mossd.log_text()
    );
    let _mossd = Mossd::start(bus, setup.root.path(), &[]);
    let output = call(bus, Who::Root, "Recovery", "", &[]);
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("bs false"));
    assert_eq!(snapshot(bus, setup.root.path()), before);
}

#[test]
fn idle_daemon_exits_and_a_busy_one_does_not() {
    let bus = TestBus::start();
    let root = tempfile::tempdir().unwrap();
    let mut mossd = Mossd::start_with(&bus, root.path(), &[], &["--idle-exit", "2"]);
    assert!(mossd.wait_exit(Duration::from_secs(10)), "no idle exit");
    assert!(!bus.has_name("com.serpentos.Moss1"));
}

#[test]
fn background_update_policy_check_counts_updates() {
    let bus = TestBus::start();
    let root = tempfile::tempdir().unwrap();
    let config = bus.directory().join("mossd.kdl");
    std::fs::write(&config, "update-policy \"check\"\nidle-exit-seconds 0\n").unwrap();
    let _mossd = Mossd::start_with(
        &bus,
        root.path(),
        &[],
        &["--config", &config.display().to_string()],
    );
    let repository = example_repository(bus.directory());
    let index = format!("file://{}", repository.display());
    moss_ok(
        &bus,
        Who::Root,
        &["repo", "add", "examples", &index, "--unsigned"],
    );
    let mut command = bus.moss(Who::Root);
    command.args(["sync", "--automatic"]);
    let output = run(command);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("0 updates available"),
        "{}",
        text(&output)
    );
    let mut command = bus.busctl(Who::Root);
    command.args([
        "get-property",
        "com.serpentos.Moss1",
        "/com/serpentos/Moss1",
        "com.serpentos.Moss1",
        "UpdatePolicy",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&run(command).stdout).trim(),
        "s \"check\""
    );
}

#[test]
fn the_cli_without_a_daemon_says_how_to_go_on() {
    let bus = TestBus::start();
    let mut command = bus.moss(Who::Root);
    command.args(["list", "installed"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(69), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("moss -D /"),
        "{}",
        text(&output)
    );
}

#[test]
fn ctrl_c_in_the_cli_cancels_the_transaction() {
    let setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:4000")]);
    let bus = &setup.bus;
    let before = snapshot(bus, setup.root.path());
    let mut command = bus.moss(Who::Root);
    command
        .args(["install", "-y", "italian-pizza"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    wait_for(
        || {
            let output = call(bus, Who::Root, "Transactions", "", &[]);
            let paths = String::from_utf8_lossy(&output.stdout).into_owned();
            paths.contains("Transaction/")
                && property(bus, paths.split('"').nth(1).unwrap_or("/"), "Status")
                    .contains("running")
        },
        "the install to run",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing was changed"));
    assert_eq!(snapshot(bus, setup.root.path()), before);
}

#[test]
fn the_shipped_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        // Only where systemd's tools exist (Debian's systemd package ships them).
        return;
    }
    // The units name installed paths; point them at the built binaries for the check.
    let directory = tempfile::tempdir().unwrap();
    let (mossd, moss) = moss_tests::bus::binaries();
    let units = moss_tests::bus::project_dir().join("systemd");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // moss-fstx.service runs in the initrd (it needs sysroot.mount): its own test checks it.
        if !(name.starts_with("mossd.")
            || name.starts_with("moss-update.")
            || name.starts_with("moss-offline-update."))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/libexec/mossd", &mossd.display().to_string())
            .replace("/usr/bin/moss ", &format!("{} ", moss.display()));
        std::fs::write(directory.path().join(&name), text).unwrap();
        names.push(name);
    }
    assert!(names.iter().any(|name| name == "mossd.service"));
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(names.iter().map(|name| directory.path().join(name)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Without systemd as PID 1, verify may note units it cannot load from the host; our units
    // themselves must raise nothing.
    for name in &names {
        assert!(
            !stderr.lines().any(|line| line.starts_with(name.as_str())),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn boot_sync_goes_through_the_daemon_with_its_permission() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    // This VM's root is not on a GPT partition: name the root for the kernel command line.
    let config = setup.root.path().join("etc/moss");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("boot.yaml"),
        "root: \"root=PARTUUID=00000000-test\"\n",
    )
    .unwrap();
    let esp = bus.directory().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let esp = esp.display().to_string();
    let mut command = bus.moss(Who::Nobody);
    command.args(["boot", "sync", "--esp", &esp]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("boot-configure"));
    let mut command = bus.moss(Who::Tester);
    command.args(["boot", "sync", "--esp", &esp]);
    let output = run(command);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("boot entries"),
        "{}",
        text(&output)
    );
    let output = call(bus, Who::Root, "History", "", &[]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("Boot sync"));
}

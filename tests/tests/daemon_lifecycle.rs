//! mossd's life cycle on a private system bus: long transactions beside queries, cancel and
//! Ctrl-C, a creator that leaves before Start, SIGKILL and SIGTERM mid-transaction, idle exit,
//! the background update policy, and the shipped units.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use moss_tests::{
    bus::{Mossd, TestBus, Who, wait_for},
    daemon_support::*,
};

#[test]
fn queries_answer_while_a_long_transaction_runs_and_cancel_leaves_the_system_as_it_was() {
    let setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:4000")]);
    let bus = &setup.bus;
    let before = snapshot(bus, setup.root.path());
    let path = start_running_install(bus);
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
    start_running_install(bus);
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
    start_running_install(bus);
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

fn transaction_number(path: &str) -> u64 {
    path.rsplit('/').next().unwrap().parse().unwrap()
}

#[test]
fn transaction_numbers_go_on_across_daemon_runs() {
    let mut setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:4000")]);
    let bus = &setup.bus;
    let running = start_running_install(bus);
    // A check queued behind the install is cancelled before it runs: the worker, which records
    // what it runs, never sees it, and it must be in the history all the same.
    let queued = call(
        bus,
        Who::Root,
        "Refresh",
        "sa{sv}",
        &["", "1", "start", "b", "true"],
    );
    let queued = object_path(&queued);
    let mut command = bus.busctl(Who::Root);
    command.args([
        "call",
        "com.serpentos.Moss1",
        &queued,
        TRANSACTION,
        "Cancel",
    ]);
    assert!(run(command).status.success());
    assert!(wait_final(bus, &queued).contains("cancelled"));
    assert!(wait_final(bus, &running).contains("succeeded"));
    assert!(setup.mossd.terminate(), "{}", setup.mossd.log_text());
    // The next run must not hand out a path the last one used: a window that followed one
    // would take the new transaction for the old one, and the history's numbers would repeat.
    let _second = Mossd::start(bus, setup.root.path(), &[]);
    let output = call(bus, Who::Root, "Refresh", "sa{sv}", &["", "0"]);
    assert!(output.status.success(), "{}", text(&output));
    let cancelled = transaction_number(&queued);
    assert_eq!(
        transaction_number(&object_path(&output)),
        cancelled + 1,
        "after {running} and {queued}"
    );
    let history = call(bus, Who::Root, "History", "", &[]);
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(
        history.contains(&format!(" {cancelled} \"Refresh\" 0 "))
            && history.contains("\"cancelled\""),
        "{history}"
    );
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
    add_examples(&bus);
    let mut command = bus.moss(Who::Root);
    command.args(["sync", "--automatic"]);
    let output = run(command);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("0 updates available"),
        "{}",
        text(&output)
    );
    assert_eq!(manager_property(&bus, "UpdatePolicy"), "s \"check\"");
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
fn the_bus_activates_mossd_with_the_shipped_service_file_and_it_exits_when_idle() {
    let root = tempfile::tempdir().unwrap();
    let bus = TestBus::start_activating(root.path(), 2);
    assert!(!bus.has_name("com.serpentos.Moss1"));
    // The first call starts it.
    let listing = moss_ok(&bus, Who::Nobody, &["list", "installed"]);
    assert!(listing.is_empty(), "{listing}");
    assert!(bus.has_name("com.serpentos.Moss1"));
    // Idle, it leaves; the next call starts it again.
    wait_for(|| !bus.has_name("com.serpentos.Moss1"), "idle exit");
    moss_ok(&bus, Who::Root, &["state", "list"]);
    assert!(bus.has_name("com.serpentos.Moss1"));
}

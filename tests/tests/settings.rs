//! The daemon's settings and boot entries over the bus: `SetUpdatePolicy` and `SetKeepStates`
//! need `com.serpentos.moss.configure` and write mossd's configuration file; `keep-states`
//! prunes older states after each transaction; `BootEntries` is a query anyone may make.

use moss_tests::{
    bus::{Mossd, TestBus, Who},
    daemon_support::{Setup, add_examples, call, manager_property, moss_ok, text},
};

fn policy(bus: &TestBus) -> String {
    manager_property(bus, "UpdatePolicy")
}

fn state_ids(bus: &TestBus) -> Vec<u64> {
    let listed: serde_json::Value = serde_json::from_str(&moss_ok(
        bus,
        Who::Root,
        &["state", "list", "--format", "json"],
    ))
    .unwrap();
    let mut ids: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|state| state["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn keep_states_is_set_with_its_permission_survives_a_restart_and_prunes_after_a_transaction() {
    let bus = TestBus::start();
    let root = tempfile::tempdir().unwrap();
    let config = bus.directory().join("mossd.kdl");
    std::fs::write(&config, "// kept\nupdate-policy \"check\"\n").unwrap();
    let arguments = ["--config", config.to_str().unwrap(), "--idle-exit", "0"];
    let mut mossd = Mossd::start_with(&bus, root.path(), &[], &arguments);
    assert_eq!(manager_property(&bus, "KeepStates"), "u 0");

    let refused = call(&bus, Who::Nobody, "SetKeepStates", "u", &["1"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("com.serpentos.moss.configure"),
        "{}",
        text(&refused)
    );
    assert_eq!(manager_property(&bus, "KeepStates"), "u 0");
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains("keep-states")
    );

    // Watchers learn of the change from PropertiesChanged (the window need not poll).
    let mut monitor = bus
        .busctl(Who::Root)
        .args(["monitor", "--match"])
        .arg("type='signal',member='PropertiesChanged',path='/com/serpentos/Moss1'")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let allowed = call(&bus, Who::Tester, "SetKeepStates", "u", &["1"]);
    assert!(allowed.status.success(), "{}", text(&allowed));
    assert_eq!(manager_property(&bus, "KeepStates"), "u 1");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = monitor.kill();
    let signals = String::from_utf8_lossy(&monitor.wait_with_output().unwrap().stdout).into_owned();
    assert!(
        signals.contains("KeepStates"),
        "no PropertiesChanged: {signals}"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "// kept\nupdate-policy \"check\"\nkeep-states 1\n"
    );

    // A restarted daemon reads it back, and the update policy beside it.
    assert!(mossd.terminate());
    let _mossd = Mossd::start_with(&bus, root.path(), &[], &arguments);
    assert_eq!(manager_property(&bus, "KeepStates"), "u 1");
    assert_eq!(policy(&bus), "s \"check\"");

    // Two installs and a remove make states 1, 2 and 3; keeping one older state leaves 2 and 3.
    add_examples(&bus);
    for package in ["bash-completion", "italian-pizza"] {
        moss_ok(&bus, Who::Root, &["install", "-y", package]);
    }
    assert_eq!(state_ids(&bus), [1, 2]);
    let archive = root.path().join(".moss/root/1");
    assert!(archive.exists(), "state 1 has no archived tree to prune");
    let removed = moss_ok(&bus, Who::Root, &["remove", "-y", "italian-pizza"]);
    assert_eq!(state_ids(&bus), [2, 3], "{removed}");
    assert!(!archive.exists(), "state 1's archived tree is still there");
    // The prune's garbage collection left the active state whole: Verify finds no problem.
    let verified = call(&bus, Who::Root, "Verify", "", &[]);
    assert!(
        String::from_utf8_lossy(&verified.stdout)
            .trim()
            .ends_with(" 0"),
        "{}",
        text(&verified)
    );

    // 0 keeps them all again.
    let all = call(&bus, Who::Root, "SetKeepStates", "u", &["0"]);
    assert!(all.status.success(), "{}", text(&all));
    moss_ok(&bus, Who::Root, &["install", "-y", "pineapple"]);
    assert_eq!(state_ids(&bus), [2, 3, 4]);
}

#[test]
fn the_update_policy_is_set_with_its_permission_and_written_to_the_configuration() {
    let bus = TestBus::start();
    let root = tempfile::tempdir().unwrap();
    let config = bus.directory().join("mossd.kdl");
    std::fs::write(&config, "// the test's settings\nidle-exit-seconds 0\n").unwrap();
    let arguments = ["--config", config.to_str().unwrap(), "--idle-exit", "0"];
    let mut mossd = Mossd::start_with(&bus, root.path(), &[], &arguments);
    assert_eq!(policy(&bus), "s \"none\"");

    let refused = call(&bus, Who::Nobody, "SetUpdatePolicy", "s", &["apply"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("com.serpentos.moss.configure"),
        "{}",
        text(&refused)
    );
    assert_eq!(policy(&bus), "s \"none\"");
    assert!(!std::fs::read_to_string(&config).unwrap().contains("apply"));

    let invalid = call(&bus, Who::Root, "SetUpdatePolicy", "s", &["sometimes"]);
    assert!(!invalid.status.success());
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("sometimes"));

    let allowed = call(&bus, Who::Tester, "SetUpdatePolicy", "s", &["download"]);
    assert!(allowed.status.success(), "{}", text(&allowed));
    assert_eq!(policy(&bus), "s \"download\"");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "// the test's settings\nidle-exit-seconds 0\nupdate-policy \"download\"\n"
    );

    // A restarted daemon reads it back.
    assert!(mossd.terminate());
    let _mossd = Mossd::start_with(&bus, root.path(), &[], &arguments);
    assert_eq!(policy(&bus), "s \"download\"");
}

#[test]
fn boot_entries_are_a_query_anyone_may_make() {
    let setup = Setup::new(&[]);
    let output = call(&setup.bus, Who::Nobody, "BootEntries", "", &[]);
    assert!(output.status.success(), "{}", text(&output));
    // No kernel is installed: no entries, and the reason boot entries are not managed here.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("a(stsbb)s 0 \""), "{stdout}");
}

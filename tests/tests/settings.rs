//! The daemon's settings and boot entries over the bus: `SetUpdatePolicy` needs
//! `com.serpentos.moss.configure` and writes mossd's configuration file; `BootEntries` is a query
//! anyone may make.

use std::process::Command;

use moss_tests::{
    bus::{Mossd, TestBus, Who},
    daemon_support::{MANAGER, Setup, call, run, text},
};

fn policy(bus: &TestBus) -> String {
    let mut command: Command = bus.busctl(Who::Nobody);
    command
        .arg("get-property")
        .args(MANAGER)
        .arg("UpdatePolicy");
    String::from_utf8_lossy(&run(command).stdout)
        .trim()
        .to_owned()
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

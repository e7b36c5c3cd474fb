//! Upstream parity through mossd on a private bus with the real polkitd: `moss state query`
//! (StateQuery, a query anyone may ask) and the recovery guard (a change losing /usr/bin/moss
//! is refused with the named error `Unrecoverable`, and goes through with the `force` option
//! for an authorised caller only).

use std::path::Path;

use moss_tests::{
    bus::{Mossd, TestBus, Who},
    daemon_support::*,
};

#[path = "../../crates/moss/tests/common/stones.rs"]
#[allow(dead_code)]
mod stones;

/// A package shipping `/usr/bin/moss` (a placeholder: the guard reads layouts, not programs).
fn moss_package(directory: &Path) -> std::path::PathBuf {
    let moss = stones::program("bin/moss", b"#!/bin/false\n".to_vec());
    stones::stone(directory, "moss-tool", "1", &[moss], &[])
}

#[test]
fn state_query_and_the_recovery_guard_through_mossd() {
    let bus = TestBus::start();
    let root = tempfile::tempdir().unwrap();
    let _mossd = Mossd::start(&bus, root.path(), &[]);
    let stone = moss_package(bus.directory());
    moss_ok(&bus, Who::Root, &["install", "-y", stone.to_str().unwrap()]);

    // A query: anyone, no polkit.
    let queried = moss_ok(
        &bus,
        Who::Nobody,
        &["state", "query", "1", "--format", "json"],
    );
    let details: serde_json::Value = serde_json::from_str(&queried).unwrap();
    assert_eq!(details["id"], 1);
    assert_eq!(details["kind"], "Install");
    assert_eq!(details["packages"][0]["name"], "moss-tool");
    let output = call(&bus, Who::Nobody, "StateQuery", "t", &["0"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("moss-tool"));
    let output = call(&bus, Who::Nobody, "StateQuery", "t", &["7"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("state 7 does not exist"),
        "{}",
        text(&output)
    );

    // The guard refuses for root too, by name; the CLI exits 3.
    let mut command = bus.moss(Who::Root);
    command.args(["remove", "-y", "moss-tool"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("/usr/bin/moss"), "{}", text(&output));
    let output = call(
        &bus,
        Who::Root,
        "Remove",
        "asa{sv}",
        &["1", "moss-tool", "1", "start", "b", "true"],
    );
    let path = object_path(&output);
    wait_final(&bus, &path);
    assert!(
        transaction_result(&bus, &path).contains("unrecoverable"),
        "{}",
        transaction_result(&bus, &path)
    );
    // `force` from a caller polkit refuses: nothing changes.
    let mut command = bus.moss(Who::Nobody);
    command.args(["remove", "-y", "--force", "moss-tool"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
    assert!(root.path().join("usr/bin/moss").exists());
    // Root with --force: done.
    moss_ok(&bus, Who::Root, &["remove", "-y", "--force", "moss-tool"]);
    assert!(!root.path().join("usr/bin/moss").exists());
}

//! Upstream parity through mossd on a private bus with the real polkitd: `moss state query`
//! (StateQuery, a query anyone may ask) and the recovery guard (a change losing /usr/bin/moss
//! is refused with the named error `Unrecoverable`, and goes through with the `force` option
//! for an authorised caller only).

use std::{fs, path::Path};

use moss::stone::{ContentSource, FileType, Package, Writer};
use moss_tests::{
    bus::{Mossd, TestBus, Who},
    daemon_support::*,
};

/// A package shipping `/usr/bin/moss` (a placeholder: the guard reads layouts, not programs).
fn moss_package(directory: &Path) -> std::path::PathBuf {
    let package = Package {
        name: "moss-tool".to_owned(),
        version: "1".to_owned(),
        release: 1,
        build_release: 1,
        architecture: "x86_64".to_owned(),
        summary: "moss".to_owned(),
        description: "moss".to_owned(),
        homepage: "https://example.org".to_owned(),
        licenses: vec!["MPL-2.0".to_owned()],
        source_id: "moss-tool".to_owned(),
        depends: Vec::new(),
        provides: Vec::new(),
        conflicts: Vec::new(),
        build_depends: Vec::new(),
        uri: None,
        hash: None,
        size: None,
        source_uri: None,
        source_path: None,
        source_ref: None,
        unknown: Vec::new(),
    };
    let mut writer = Writer::new(FileType::Binary);
    writer.add_meta(package.to_records());
    writer
        .add_file(
            "bin/moss".to_owned(),
            0o100755,
            ContentSource::Bytes(b"#!/bin/false\n".to_vec()),
        )
        .unwrap();
    let path = directory.join("moss-tool-1.stone");
    let mut bytes = Vec::new();
    writer.write(&mut bytes).unwrap();
    fs::write(&path, bytes).unwrap();
    path
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

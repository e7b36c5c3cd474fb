//! A root-index repository added and used through mossd on a private bus with the real polkitd:
//! the `root-index` option of RepoAdd carries the snapshot to follow.

use std::fs;

use moss_tests::{
    bus::{Mossd, TestBus, Who, example_repository},
    daemon_support::*,
};

#[test]
fn a_root_index_repository_is_added_listed_and_installed_from_through_mossd() {
    let bus = TestBus::start();
    let root = tempfile::tempdir().unwrap();
    let _mossd = Mossd::start(&bus, root.path(), &[]);
    // The example repository becomes history snapshot 3 of channel `main`.
    let examples = example_repository(bus.directory());
    let tree = bus.directory().join("tree");
    let snapshot = tree.join("main/history/3/x86_64");
    fs::create_dir_all(&snapshot).unwrap();
    for entry in fs::read_dir(examples.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), snapshot.join(entry.file_name())).unwrap();
    }
    fs::write(
        tree.join("main/moss-root-index.json"),
        r#"{"streams": {"volatile": {"format": "v0", "history": "3"}},
            "history": {"3": {"format": "v0"}}}"#,
    )
    .unwrap();
    let base = format!("file://{}/", tree.display());
    moss_ok(
        &bus,
        Who::Root,
        &[
            "repo",
            "add",
            "volatile",
            &base,
            "--root-index",
            "version=stream/volatile",
            "--unsigned",
        ],
    );
    let listed: serde_json::Value = serde_json::from_str(&moss_ok(
        &bus,
        Who::Nobody,
        &["repo", "list", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(
        listed[0]["root_index"],
        format!("(base-uri={base}, channel=main, version=stream/volatile, arch=x86_64)"),
        "{listed}"
    );
    let human = moss_ok(&bus, Who::Nobody, &["repo", "list"]);
    assert!(human.contains("version=stream/volatile"), "{human}");
    moss_ok(&bus, Who::Root, &["install", "-y", "pineapple"]);
    let installed = moss_ok(&bus, Who::Nobody, &["list", "installed"]);
    assert!(installed.contains("pineapple"), "{installed}");

    // A spec without a version is refused by name, and nothing is configured.
    let mut command = bus.moss(Who::Root);
    command.args([
        "repo",
        "add",
        "other",
        &base,
        "--root-index",
        "channel=main",
        "--unsigned",
    ]);
    let output = run(command);
    assert!(!output.status.success());
    assert!(text(&output).contains("needs version"), "{}", text(&output));
    assert!(!root.path().join("etc/moss/repo.d/other.kdl").exists());
}

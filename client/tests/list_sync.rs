//! `moss list sync --upgrade-only` and `--allow-downgrade` through the real CLI in direct mode,
//! on a corpus written by `shared/bench/stonegen.py`: revision 1 of every package is an upgrade
//! of revision 0, and going back to revision 0 is a downgrade that only `--allow-downgrade`
//! plans and `--upgrade-only` leaves out. A rebuild (the same version and release, a higher
//! build release) is an upgrade too.

#![allow(clippy::print_stderr, dead_code)]

#[path = "scenario/support.rs"]
mod support;

use std::{collections::BTreeSet, ffi::OsStr, fs, path::Path};

use serde_json::Value;
use stone::{ContentSource, FileType, Package, Writer};
use support::{Corpus, Root, generate, moss_ok, step};

fn index(dir: &Path) {
    moss_ok(&[OsStr::new("index"), dir.as_os_str()]);
}

/// The repository's stones become those of `from`, indexed.
fn publish(repo: &Path, from: &Path) {
    if repo.exists() {
        fs::remove_dir_all(repo).unwrap();
    }
    fs::create_dir_all(repo).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() == Some(OsStr::new("stone")) {
            fs::copy(&path, repo.join(path.file_name().unwrap())).unwrap();
        }
    }
    index(repo);
}

/// Names of the packages a plan changes, and whether the plan adds or removes anything.
fn changed(plan: &Value) -> BTreeSet<String> {
    plan["change"]
        .as_array()
        .expect("a change list")
        .iter()
        .map(|pair| pair[1]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn upgrade_only_leaves_out_downgrades() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let (zero, one, repo) = (
        work.join("revision-0"),
        work.join("revision-1"),
        work.join("repo"),
    );
    step("generate revisions 0 and 1");
    generate(&zero, 6, 11, 2, 0);
    generate(&one, 6, 11, 2, 1);
    let corpus = Corpus::load(&zero);
    let leaf = corpus.leaves().into_iter().next().expect("a leaf");
    let installed = corpus.closure([leaf.as_str()]);

    step("install a leaf from revision 0");
    publish(&repo, &zero);
    let root = Root::new(work.join("root"));
    let uri = format!("file://{}", repo.join("stone.index").display());
    root.ok(&["repo", "add", "test", &uri, "--unsigned"]);
    root.ok(&["install", &leaf, "-y"]);
    assert!(changed(&root.json(&["list", "sync", "--upgrade-only"])).is_empty());

    step("revision 1: every installed package moves up");
    publish(&repo, &one);
    root.ok(&["repo", "update"]);
    let all = root.json(&["list", "sync"]);
    assert_eq!(changed(&all), installed, "list sync: {all}");
    let upgrades = root.json(&["list", "sync", "--upgrade-only"]);
    assert_eq!(changed(&upgrades), installed, "--upgrade-only: {upgrades}");
    let human = root.ok(&["list", "sync", "--upgrade-only"]);
    assert!(human.contains(&leaf), "{human}");
    root.ok(&["sync", "-y"]);

    step("back to revision 0: only downgrades are offered");
    publish(&repo, &zero);
    root.ok(&["repo", "update"]);
    assert!(changed(&root.json(&["list", "sync"])).is_empty());
    let downgrades = root.json(&["list", "sync", "--allow-downgrade"]);
    assert_eq!(changed(&downgrades), installed, "{downgrades}");
    let upgrades = root.json(&["list", "sync", "--allow-downgrade", "--upgrade-only"]);
    assert!(
        changed(&upgrades).is_empty()
            && upgrades["add"].as_array().unwrap().is_empty()
            && upgrades["remove"].as_array().unwrap().is_empty(),
        "downgrades listed by --upgrade-only: {upgrades}"
    );
    let human = root.ok(&["list", "sync", "--allow-downgrade", "--upgrade-only"]);
    assert!(!human.contains(&leaf), "{human}");
}

/// One build of the package `rebuilt`: version 1.0, release 1, the given build release.
fn write_build(repo: &Path, build_release: u64) {
    let package = Package {
        name: "rebuilt".to_owned(),
        version: "1.0".to_owned(),
        release: 1,
        build_release,
        architecture: "x86_64".to_owned(),
        summary: "rebuilt summary".to_owned(),
        description: "A package rebuilt without a new release".to_owned(),
        source_id: "rebuilt".to_owned(),
        ..Package::default()
    };
    let mut writer = Writer::new(FileType::Binary);
    writer.add_meta(package.to_records());
    writer
        .add_file(
            "share/rebuilt/build".to_owned(),
            0o100644,
            ContentSource::Bytes(format!("build {build_release}\n").into_bytes()),
        )
        .unwrap();
    let mut bytes = Vec::new();
    writer.write(&mut bytes).unwrap();
    fs::create_dir_all(repo).unwrap();
    fs::write(repo.join(package.file_name()), bytes).unwrap();
}

#[test]
fn upgrade_only_lists_a_rebuild_of_the_same_release() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    write_build(&repo, 1);
    index(&repo);
    let root = Root::new(work.path().join("root"));
    let uri = format!("file://{}", repo.join("stone.index").display());
    root.ok(&["repo", "add", "test", &uri, "--unsigned"]);
    root.ok(&["install", "rebuilt", "-y"]);

    step("build release 2 of the same 1.0-1 is published");
    fs::remove_dir_all(&repo).unwrap();
    write_build(&repo, 2);
    index(&repo);
    root.ok(&["repo", "update"]);
    let upgrades = root.json(&["list", "sync", "--upgrade-only"]);
    assert_eq!(
        changed(&upgrades),
        BTreeSet::from(["rebuilt".to_owned()]),
        "a rebuild is an upgrade: {upgrades}"
    );
    let new = &upgrades["change"][0][1];
    assert_eq!(
        (new["release"].as_u64(), new["build_release"].as_u64()),
        (Some(1), Some(2))
    );

    step("going back to build release 1 is a downgrade");
    root.ok(&["sync", "-y"]);
    fs::remove_dir_all(&repo).unwrap();
    write_build(&repo, 1);
    index(&repo);
    root.ok(&["repo", "update"]);
    let downgrades = root.json(&["list", "sync", "--allow-downgrade"]);
    assert_eq!(changed(&downgrades).len(), 1, "{downgrades}");
    let upgrades = root.json(&["list", "sync", "--allow-downgrade", "--upgrade-only"]);
    assert!(changed(&upgrades).is_empty(), "{upgrades}");
}

//! What the resolver may choose from: the repositories and the local stones given on the command
//! line, never packages that only older states use. A synced system has nothing to do, and
//! installing one package never moves another.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

fn moss(root: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moss"))
        .arg("-D")
        .arg(root)
        .args(arguments)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("moss runs")
}

fn ok(root: &Path, arguments: &[&str]) -> String {
    let output = moss(root, arguments);
    assert!(
        output.status.success(),
        "moss {arguments:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Pack a one-file package with `stonepack.py`.
fn pack(directory: &Path, name: &str, version: &str, release: u32) -> PathBuf {
    let tree = directory.join(format!("tree-{name}-{release}"));
    std::fs::create_dir_all(tree.join("usr/share").join(name)).unwrap();
    std::fs::write(
        tree.join("usr/share").join(name).join("version"),
        format!("{version}-{release}\n"),
    )
    .unwrap();
    let stone = directory.join(format!("{name}-{version}-{release}-1-x86_64.stone"));
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/stonepack.py");
    let status = Command::new("python3")
        .arg(shared)
        .arg("--tree")
        .arg(&tree)
        .args(["--name", name, "--version", version])
        .args(["--release", &release.to_string()])
        .arg("--out")
        .arg(&stone)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "stonepack.py failed for {name}");
    stone
}

/// `name version-release` of every installed package.
fn installed(root: &Path) -> Vec<String> {
    let output = moss(root, &["list", "installed", "--format", "json"]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut list: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            format!(
                "{} {}-{}",
                package["name"].as_str().unwrap(),
                package["version"].as_str().unwrap(),
                package["release"]
            )
        })
        .collect();
    list.sort();
    list
}

#[test]
fn packages_of_older_states_are_never_candidates() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let stones = work.path().join("stones");
    let repository = work.path().join("repository");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&stones).unwrap();
    std::fs::create_dir_all(&repository).unwrap();

    // State 1: lib 1 from a local stone.
    let lib_one = pack(&stones, "lib", "1.0", 1);
    ok(&root, &["install", "-y", lib_one.to_str().unwrap()]);
    assert_eq!(installed(&root), ["lib 1.0-1"]);

    // The repository offers lib 2 and another package; sync moves lib to 2.
    pack(&repository, "lib", "2.0", 2);
    pack(&repository, "other", "1.0", 1);
    let index = Command::new(env!("CARGO_BIN_EXE_moss"))
        .arg("index")
        .arg(&repository)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(index.success());
    let uri = format!("file://{}/stone.index", repository.display());
    ok(&root, &["repo", "add", "main", &uri, "--unsigned"]);
    ok(&root, &["sync", "-y"]);
    assert_eq!(installed(&root), ["lib 2.0-2"]);

    // Synced: nothing to do, run after run; lib 1 stays in the store for state 1 only.
    for _ in 0..2 {
        let output = ok(&root, &["sync", "-y"]);
        assert!(output.contains("Nothing to do"), "{output}");
        assert_eq!(installed(&root), ["lib 2.0-2"]);
    }
    // Installing another package never moves lib back.
    let output = ok(&root, &["install", "-y", "other"]);
    assert!(!output.contains("lib"), "install touched lib: {output}");
    assert_eq!(installed(&root), ["lib 2.0-2", "other 1.0-1"]);
    let output = ok(&root, &["sync", "-y"]);
    assert!(output.contains("Nothing to do"), "{output}");

    // Asking for the old stone by path is explicit: then it is a candidate again.
    let output = ok(
        &root,
        &["install", "-y", "--dry-run", lib_one.to_str().unwrap()],
    );
    assert!(output.contains("lib  2.0-2 -> 1.0-1"), "{output}");
    assert_eq!(installed(&root), ["lib 2.0-2", "other 1.0-1"]);
}

#[test]
fn planning_a_local_stone_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let first = pack(work.path(), "first", "1.0", 1);
    ok(&root, &["install", "-y", first.to_str().unwrap()]);
    let second = pack(work.path(), "second", "1.0", 1);
    let count = |relative: &str| walk(&root.join(relative));
    let (assets, cache) = (count(".moss/assets"), count(".moss/cache"));
    let output = ok(&root, &["install", "--dry-run", second.to_str().unwrap()]);
    assert!(output.contains("second"), "{output}");
    assert_eq!(
        count(".moss/assets"),
        assets,
        "the dry run wrote to the store"
    );
    assert_eq!(
        count(".moss/cache"),
        cache,
        "the dry run wrote to the cache"
    );
    let output = ok(&root, &["list", "available"]);
    assert!(!output.contains("second"), "{output}");
}

fn walk(directory: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                1 + walk(&entry.path())
            } else {
                1
            }
        })
        .sum()
}

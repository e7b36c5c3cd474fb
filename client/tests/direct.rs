//! Direct mode (`moss -D ROOT`) on directories that are not, or not only, moss's: queries create
//! nothing and name the problem; an installation answers queries from an unprivileged user; a
//! change on a root whose `/usr` moss did not make is refused and the tree is left as it was.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde_json::Value;

const NOBODY: &str = "65534";

/// The `shared/` directory beside the repository: the nearest ancestor holding `shared/fixtures`.
fn pizza() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared/fixtures/stones/italian-pizza-1-1-1-x86_64.stone"))
        .find(|stone| stone.is_file())
        .expect("shared/fixtures beside the repository")
}

fn moss(root: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moss"))
        .arg("-D")
        .arg(root)
        .args(arguments)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the moss binary runs")
}

/// `moss -D ROOT ARGUMENTS` as `nobody` (no groups, no capabilities).
fn moss_as_nobody(root: &Path, arguments: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_moss"))
        .arg("-D")
        .arg(root)
        .args(arguments)
        .env("NO_COLOR", "1")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .expect("setpriv runs (util-linux)")
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

fn json(output: Output) -> Value {
    serde_json::from_str(&succeeded(output)).expect("JSON on stdout")
}

/// Every entry under `dir` (the directory itself included) with its type, mode, owner, size and
/// modification time: any creation, removal or write shows.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u32, u64, i64, i64)> {
    fn record(path: &Path, base: &Path, found: &mut BTreeMap<PathBuf, (u32, u32, u64, i64, i64)>) {
        let metadata = fs::symlink_metadata(path).unwrap();
        found.insert(
            path.strip_prefix(base).unwrap().to_owned(),
            (
                metadata.mode(),
                metadata.uid(),
                metadata.len(),
                metadata.mtime(),
                metadata.mtime_nsec(),
            ),
        );
        if metadata.is_dir() {
            for entry in fs::read_dir(path).unwrap().flatten() {
                record(&entry.path(), base, found);
            }
        }
    }
    let mut found = BTreeMap::new();
    record(dir, dir, &mut found);
    found
}

/// A temporary directory that `nobody` can traverse.
fn workspace() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    work
}

fn assert_root() {
    assert_eq!(
        fs::metadata("/proc/self").unwrap().uid(),
        0,
        "this test runs as root: it installs as root and queries as nobody"
    );
}

const QUERIES: &[&[&str]] = &[
    &["list", "installed"],
    &["list", "available"],
    &["list", "sync"],
    &["info", "bash"],
    &["search", "bash"],
    &["search-file", "/usr/bin/bash"],
    &["state", "list"],
    &["state", "active"],
    &["state", "verify"],
    &["repo", "list"],
];

#[test]
fn queries_on_a_directory_without_an_installation_create_nothing() {
    assert_root();
    let work = workspace();
    let empty = work.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let etc = work.path().join("etc-copy");
    let copy = Command::new("cp")
        .args(["-a", "/etc"])
        .arg(&etc)
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", describe(&copy));
    for dir in [&empty, &etc] {
        let before = snapshot(dir);
        let expected = format!(
            "error: {dir} is not a moss installation (no {dir}/.moss); check the path, or install a package into it to create one\n",
            dir = dir.display()
        );
        for query in QUERIES {
            for output in [moss(dir, query), moss_as_nobody(dir, query)] {
                // EX_CANTCREAT, the exit code of an unmanaged root (`ErrorKind::Unmanaged`).
                assert_eq!(
                    output.status.code(),
                    Some(73),
                    "{query:?}: {}",
                    describe(&output)
                );
                assert!(output.stdout.is_empty(), "{query:?}: {}", describe(&output));
                assert_eq!(
                    String::from_utf8_lossy(&output.stderr),
                    expected,
                    "{query:?}"
                );
            }
        }
        assert_eq!(snapshot(dir), before, "a query changed {}", dir.display());
    }
    // The report that started this: the real /etc, by a user who could not write it anyway.
    let output = moss_as_nobody(Path::new("/etc"), &["list", "installed"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/etc is not a moss installation"),
        "{}",
        describe(&output)
    );
}

#[test]
fn nobody_queries_an_installation_root_installed() {
    assert_root();
    let work = workspace();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    succeeded(moss(&root, &["-y", "install", pizza().to_str().unwrap()]));
    let database = root.join(".moss/db/moss.sqlite");
    assert!(
        !root.join(".moss/db/moss.sqlite-wal").exists(),
        "a clean close checkpoints the WAL away"
    );
    let before = snapshot(&root);

    let installed = json(moss_as_nobody(
        &root,
        &["list", "installed", "--format", "json"],
    ));
    let names: Vec<&str> = installed
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["italian-pizza"]);
    let states = json(moss_as_nobody(
        &root,
        &["state", "list", "--format", "json"],
    ));
    assert_eq!(states.as_array().unwrap().len(), 1, "{states}");
    assert_eq!(states[0]["id"], 1);
    assert_eq!(states[0]["summary"], "Install");
    assert_eq!(states[0]["active"], true);
    let text = succeeded(moss_as_nobody(&root, &["state", "list"]));
    assert!(text.starts_with("State #1 - Install (active)\n"), "{text}");
    for query in QUERIES {
        let output = moss_as_nobody(&root, query);
        // `info bash` finds nothing (an error by design); anything else answers.
        if query[0] != "info" {
            assert!(output.status.success(), "{query:?}: {}", describe(&output));
        }
    }
    assert_eq!(snapshot(&root), before, "a query changed the installation");

    // A writer killed after a commit leaves it in the WAL (and the -shm index beside it, both
    // root's, 0644): nobody reads through them without writing either.
    let crash = Command::new("python3")
        .arg("-c")
        .arg(
            "import os, sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1])\n\
             db.execute(\"UPDATE state SET summary = 'Left in the WAL' WHERE id = 1\")\n\
             db.commit()\n\
             os._exit(0)\n",
        )
        .arg(&database)
        .output()
        .expect("python3 runs");
    assert!(crash.status.success(), "{}", describe(&crash));
    assert!(
        fs::metadata(root.join(".moss/db/moss.sqlite-wal"))
            .unwrap()
            .len()
            > 0
    );
    let before = snapshot(&root);
    let states = json(moss_as_nobody(
        &root,
        &["state", "list", "--format", "json"],
    ));
    assert_eq!(states[0]["summary"], "Left in the WAL", "{states}");
    assert_eq!(snapshot(&root), before, "a query changed the installation");
}

#[test]
fn a_change_on_a_root_with_a_foreign_usr_is_refused_before_writing() {
    assert_root();
    let work = workspace();
    let root = work.path().join("root");
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/tool"), "#!/bin/sh\necho mine\n").unwrap();
    let before = snapshot(&root);
    let usr = root.join("usr");
    let expected = format!(
        "error: {usr} exists and is not managed by moss (no {usr}/.stateID); move it away, or use an empty directory as the installation root\n",
        usr = usr.display()
    );
    for change in [
        vec!["-y", "install", pizza().to_str().unwrap()],
        vec![
            "repo",
            "add",
            "extra",
            "file:///nonexistent/stone.index",
            "--unsigned",
        ],
        vec!["-y", "state", "prune"],
    ] {
        let output = moss(&root, &change);
        assert_eq!(
            output.status.code(),
            Some(73),
            "{change:?}: {}",
            describe(&output)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            expected,
            "{change:?}"
        );
    }
    assert_eq!(
        snapshot(&root),
        before,
        "a refused change wrote into the root"
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/bin/tool")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );

    // Moved away, the same directory takes the install.
    fs::rename(root.join("usr"), work.path().join("usr.mine")).unwrap();
    succeeded(moss(&root, &["-y", "install", pizza().to_str().unwrap()]));
    assert_eq!(fs::read_to_string(root.join("usr/.stateID")).unwrap(), "1");
}

//! Upstream's command-line conveniences through the real CLI in direct mode: the two-word
//! aliases, `version`, state ranges, `prune --include-newer` and `activate --skip-*`.

use std::{
    fs,
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
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn state_ids(root: &Path) -> Vec<u64> {
    let states: serde_json::Value =
        serde_json::from_str(&ok(root, &["state", "list", "--format", "json"])).unwrap();
    let mut ids: Vec<u64> = states
        .as_array()
        .unwrap()
        .iter()
        .map(|state| state["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// A root with the example repository and states 1..=4 (install, remove, install, remove).
fn root_with_states(work: &Path) -> PathBuf {
    let repository = work.join("repo");
    fs::create_dir_all(&repository).unwrap();
    let stones = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/stones");
    for entry in fs::read_dir(stones).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|extension| extension == "stone")
        {
            fs::copy(&path, repository.join(path.file_name().unwrap())).unwrap();
        }
    }
    let root = work.join("root");
    fs::create_dir_all(&root).unwrap();
    ok(&root, &["index", repository.to_str().unwrap()]);
    let uri = format!("file://{}/stone.index", repository.display());
    // `ar` = repo add, `lr` = repo list.
    ok(&root, &["ar", "examples", &uri, "--unsigned"]);
    assert!(ok(&root, &["lr"]).contains("examples"));
    for arguments in [
        ["install", "-y", "pineapple"],
        ["remove", "-y", "pineapple"],
        ["install", "-y", "bash-completion"],
        ["remove", "-y", "bash-completion"],
    ] {
        ok(&root, &arguments);
    }
    root
}

#[test]
fn aliases_and_version() {
    let work = tempfile::tempdir().unwrap();
    let root = root_with_states(work.path());
    ok(&root, &["install", "-y", "pineapple"]);
    assert!(ok(&root, &["li"]).contains("pineapple"));
    assert!(ok(&root, &["la"]).contains("bash-completion"));
    // A package named like an alias is not rewritten outside the subcommand position.
    let output = moss(&root, &["install", "--dry-run", "li"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("li"),
        "{output:?}"
    );
    let version = ok(&root, &["version", "--full"]);
    assert!(
        version.starts_with(&format!("moss {}\n", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains("engine schema"), "{version}");
}

#[test]
fn state_ranges_prune_newer_and_activate_without_triggers_or_boot() {
    let work = tempfile::tempdir().unwrap();
    let root = root_with_states(work.path());
    assert_eq!(state_ids(&root), [1, 2, 3, 4]);
    // Roll back to 2: states 3 and 4 are newer than the active one.
    ok(
        &root,
        &["state", "activate", "2", "--skip-triggers", "--skip-boot"],
    );
    let active: serde_json::Value =
        serde_json::from_str(&ok(&root, &["state", "active", "--format", "json"])).unwrap();
    assert_eq!(active["id"], 2);
    ok(
        &root,
        &["state", "prune", "--keep", "5", "--include-newer", "-y"],
    );
    assert_eq!(state_ids(&root), [1, 2]);
    // Ranges: `1-1` is state 1; a reversed range is refused by clap with the fix.
    let reversed = moss(&root, &["state", "remove", "3-1", "-y"]);
    assert!(!reversed.status.success());
    assert!(String::from_utf8_lossy(&reversed.stderr).contains("smaller id"));
    ok(&root, &["state", "remove", "1-1", "-y"]);
    assert_eq!(state_ids(&root), [2]);
}

#[test]
fn verbose_shows_the_engines_log_on_stderr() {
    let work = tempfile::tempdir().unwrap();
    let root = root_with_states(work.path());
    // Without -v no subscriber runs: stderr has progress and results only.
    let quiet = moss(&root, &["install", "-y", "pineapple"]);
    assert!(quiet.status.success());
    let quiet = String::from_utf8_lossy(&quiet.stderr);
    assert!(!quiet.contains("DEBUG"), "{quiet}");
    ok(&root, &["remove", "-y", "pineapple"]);
    // -vv: the engine's debug events of the transaction (composition, blit, switch).
    let verbose = moss(&root, &["-vv", "install", "-y", "pineapple"]);
    assert!(verbose.status.success(), "{verbose:?}");
    let verbose = String::from_utf8_lossy(&verbose.stderr);
    for event in ["composed", "blitted", "switched"] {
        assert!(
            verbose.contains("DEBUG") && verbose.contains(event),
            "no `{event}` debug event with -vv:\n{verbose}"
        );
    }
    // -v (info) leaves debug events out; `--verbose` after the subcommand is global too.
    let info = moss(&root, &["remove", "-y", "pineapple", "--verbose"]);
    assert!(info.status.success(), "{info:?}");
    assert!(!String::from_utf8_lossy(&info.stderr).contains("DEBUG"));
}

#[test]
fn state_export_without_a_path_uses_upstreams_file_name() {
    let work = tempfile::tempdir().unwrap();
    let root = root_with_states(work.path());
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let here = work.path().join("here");
    fs::create_dir_all(&here).unwrap();
    let export = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_moss"))
            .arg("-D")
            .arg(&root)
            .args(arguments)
            .current_dir(&here)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    // The active state (4) by default; a named state names the file.
    export(&["state", "export", "-o"]);
    let active = here.join(format!("system-model-{host}-fstxn-4.kdl"));
    assert_eq!(
        fs::read_to_string(&active).unwrap(),
        ok(&root, &["state", "export"])
    );
    export(&["state", "export", "3", "-o"]);
    let third = fs::read_to_string(here.join(format!("system-model-{host}-fstxn-3.kdl"))).unwrap();
    assert_eq!(third, ok(&root, &["state", "export", "3"]));
    assert!(third.contains("bash-completion"), "{third}");
    // An explicit path still wins.
    let named = work.path().join("model.kdl");
    export(&["state", "export", "-o", named.to_str().unwrap()]);
    assert!(named.is_file());
}

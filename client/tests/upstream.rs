//! Upstream moss's remaining commands through the real CLI in direct mode: `state query`,
//! `fetch` and installer mode (`install --to`, `sync --to`).

mod support;

use std::{fs, path::Path};

use support::{file, json, moss, ok, root_with_examples, stone, text};

/// A transaction trigger that deletes `/usr/share/cleanup/stale` when its package is there:
/// its absence shows the transaction triggers ran on a tree.
fn cleanup_package(directory: &Path) -> std::path::PathBuf {
    stone(
        directory,
        "cleanup",
        "1",
        &[
            file("share/cleanup/stale", "to be deleted\n"),
            file("share/cleanup/kept", "kept\n"),
            file(
                "share/cleanup/system-stale",
                "to be deleted by a system trigger\n",
            ),
            file(
                "share/moss/triggers/sys.d/cleanup-system.yaml",
                "name: cleanup-system\ndescription: d\nhandlers:\n  d:\n    delete: [\"/usr/share/cleanup/system-stale\"]\npaths:\n  \"/usr/share/cleanup/system-stale\":\n    handlers: [d]\n",
            ),
            file(
                "share/moss/triggers/tx.d/cleanup.yaml",
                "name: cleanup\ndescription: d\nhandlers:\n  d:\n    delete: [\"/usr/share/cleanup/stale\"]\npaths:\n  \"/usr/share/cleanup/stale\":\n    handlers: [d]\n",
            ),
        ],
        &[],
    )
}

/// The files `moss info --files` lists for an installed or available package.
fn files_of(root: &Path, name: &str) -> Vec<String> {
    let details = json(root, &["info", "--files", name]);
    let files: Vec<String> = details
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|report| report["files"].as_array().cloned().unwrap_or_default())
        .map(|path| path.as_str().unwrap().to_owned())
        .collect();
    files
}

#[test]
fn state_query_shows_packages_date_kind_and_boot_entries() {
    let work = tempfile::tempdir().unwrap();
    let root = root_with_examples(work.path());
    ok(&root, &["install", "-y", "pineapple"]);
    let kernel = stone(
        &work.path().join("local"),
        "kernel",
        "6.1.0",
        &[file(
            "lib/kernel/6.1.0-1.test/vmlinuz",
            "not really a kernel\n",
        )],
        &[],
    );
    ok(&root, &["install", "-y", kernel.to_str().unwrap()]);

    let first = json(&root, &["state", "query", "1"]);
    assert_eq!(first["id"], 1);
    assert_eq!(first["kind"], "Install");
    assert_eq!(first["active"], false);
    assert!(
        first["created"].as_i64().unwrap() > 1_600_000_000,
        "{first}"
    );
    let names: Vec<&str> = first["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pineapple"]);
    assert_eq!(first["packages"][0]["explicit"], true);
    assert_eq!(first["boot_entries"], serde_json::json!([]));

    let second = json(&root, &["state", "query", "2"]);
    assert_eq!(second["active"], true);
    assert_eq!(second["packages"].as_array().unwrap().len(), 2);
    assert_eq!(
        second["boot_entries"],
        serde_json::json!([{"file": "serpentos-2-6.1.0-1.test.conf", "kernel": "6.1.0-1.test"}])
    );
    let human = ok(&root, &["state", "query", "2"]);
    assert!(human.starts_with("State #2 (active)\n"), "{human}");
    for expected in [
        "  Kind: Install",
        "    kernel 6.1.0-1-1 (explicit)",
        "    pineapple 1-1-1 (explicit)",
        "    serpentos-2-6.1.0-1.test.conf (kernel 6.1.0-1.test)",
    ] {
        assert!(human.contains(expected), "{expected:?} in {human}");
    }
    let missing = moss(&root, &["state", "query", "9"]);
    assert_eq!(missing.status.code(), Some(66), "{}", text(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("state 9 does not exist"));
}

#[test]
fn fetch_writes_the_repository_files_under_their_names() {
    let work = tempfile::tempdir().unwrap();
    let root = root_with_examples(work.path());
    let out = work.path().join("out");
    let fetched = json(
        &root,
        &[
            "fetch",
            "pineapple",
            "bash-completion",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(fetched.as_array().unwrap().len(), 2, "{fetched}");
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bash-completion-2.11-1-1-x86_64.stone",
            "pineapple-1-1-1-x86_64.stone"
        ]
    );
    for name in &names {
        assert_eq!(
            fs::read(out.join(name)).unwrap(),
            fs::read(work.path().join("repo").join(name)).unwrap(),
            "{name} is the repository's file"
        );
    }
    // A second fetch finds the verified files and keeps them; the human form lists the paths.
    let again = ok(&root, &["fetch", "pineapple", "-o", out.to_str().unwrap()]);
    assert_eq!(again.trim(), out.join(&names[1]).display().to_string());
    // Nothing was installed, no state recorded.
    assert_eq!(json(&root, &["state", "list"]), serde_json::json!([]));
    assert!(!root.join("usr").exists());
    let unknown = moss(
        &root,
        &["fetch", "no-such-package", "-o", out.to_str().unwrap()],
    );
    assert_eq!(unknown.status.code(), Some(66), "{}", text(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-package"));
}

#[test]
fn installer_mode_composes_a_tree_without_recording_a_state() {
    let work = tempfile::tempdir().unwrap();
    let root = root_with_examples(work.path());
    let cleanup = cleanup_package(&work.path().join("local"));
    let target = work.path().join("target");
    let composed = json(
        &root,
        &[
            "install",
            "-y",
            "--to",
            target.to_str().unwrap(),
            "pineapple",
            cleanup.to_str().unwrap(),
        ],
    );
    assert_eq!(composed["packages"], 2, "{composed}");
    assert!(
        composed["triggers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["trigger"] == "cleanup" && run["success"] == true),
        "{composed}"
    );
    assert!(
        composed["triggers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["trigger"] == "cleanup-system"
                && run["scope"] == "system"
                && run["success"] == true),
        "{composed}"
    );
    // The tree: usr with both packages, the root links, both triggers' work done in it.
    assert!(target.join("usr/share/cleanup/kept").is_file());
    assert!(!target.join("usr/share/cleanup/stale").exists());
    assert!(!target.join("usr/share/cleanup/system-stale").exists());
    assert!(target.join("etc").is_dir() && target.join("var").is_dir());
    for path in files_of(&root, "pineapple") {
        assert!(
            target
                .join(path.trim_start_matches('/'))
                .symlink_metadata()
                .is_ok(),
            "{path} in the composed tree"
        );
    }
    assert_eq!(
        fs::read_link(target.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        fs::read_link(target.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    // The installation lent its store and repositories and changed no state.
    assert_eq!(json(&root, &["state", "list"]), serde_json::json!([]));
    assert!(!root.join("usr").exists());
    // An existing tree is never overwritten.
    let again = moss(
        &root,
        &[
            "install",
            "-y",
            "--to",
            target.to_str().unwrap(),
            "pineapple",
        ],
    );
    assert_eq!(again.status.code(), Some(64), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds files"));

    // sync --to: the installed packages (here: pineapple) into another directory.
    ok(&root, &["install", "-y", "pineapple"]);
    let synced = work.path().join("synced");
    let output = ok(&root, &["sync", "-y", "--to", synced.to_str().unwrap()]);
    assert!(output.is_empty() || output.contains("Nothing"), "{output}");
    for path in files_of(&root, "pineapple") {
        assert!(
            synced
                .join(path.trim_start_matches('/'))
                .symlink_metadata()
                .is_ok(),
            "{path} in the synced tree"
        );
    }
    assert_eq!(json(&root, &["state", "list"]).as_array().unwrap().len(), 1);

    // Through mossd it is refused before anything is asked of the daemon.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_moss"))
        .args(["install", "--to", "/nonexistent-target", "pineapple"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("-D ROOT"));
}

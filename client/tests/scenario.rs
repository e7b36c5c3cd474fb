//! End-to-end scenarios of `moss -D ROOT ...` on corpora written by `shared/bench/stonegen.py`:
//!
//! * `lifecycle`: index a repository, install by name (dry run first), remove with orphans,
//!   install a local `.stone` (made with `stonepack.py`) by path, upgrade to a later revision
//!   of the corpus with `repo update` / `list sync` / `sync`, roll back with `state activate`,
//!   prune states and the cache, verify / break (a deleted file, files changed in place) /
//!   repair, remove a state, disable / enable / remove the repository and downgrade with
//!   `sync -u --allow-downgrade`. After every transaction `ROOT/usr` is compared with the
//!   layouts of the installed packages (content digests computed independently of moss, modes,
//!   symlink targets, and nothing extra); every `--format json` output is parsed.
//! * `crash_points`: an install killed (`MOSS_CRASH_AT`) at every crash point leaves the
//!   installation on the old or the new state, complete, once it has been opened again, and the
//!   install can be repeated.
//! * `crash_points_during_rollback`: the same for `state activate`, which records no state.

#![allow(clippy::print_stderr)]

#[path = "scenario/support.rs"]
mod support;

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    fs,
    os::unix::{fs::PermissionsExt, process::ExitStatusExt},
    path::Path,
    process::Command,
};

use serde_json::Value;
use support::{Corpus, Root, expected_tree, generate, inspect_stones, moss_ok, shared, step};

const PACKAGES: usize = 15;
const SEED: u64 = 7;
const FILES_PER_PACKAGE: usize = 8;

/// Three leaves to install and which of them to remove: the first triple (in name order) in
/// which removing a member leaves orphans (dependencies nothing else needs), and a fourth leaf
/// that none of them pulls in.
struct Choice {
    explicit: Vec<String>,
    removed: String,
    orphans: BTreeSet<String>,
    extra: String,
}

fn choose(corpus: &Corpus) -> Choice {
    let leaves = corpus.leaves();
    assert!(
        leaves.len() >= 4,
        "the corpus needs at least 4 leaves: {leaves:?}"
    );
    for (a, first) in leaves.iter().enumerate() {
        for (b, second) in leaves.iter().enumerate().skip(a + 1) {
            for third in leaves.iter().skip(b + 1) {
                let triple = [first, second, third];
                let all = corpus.closure(triple.iter().map(|name| name.as_str()));
                for removed in triple {
                    let rest = corpus.closure(
                        triple
                            .iter()
                            .filter(|name| *name != &removed)
                            .map(|name| name.as_str()),
                    );
                    let orphans: BTreeSet<String> = all
                        .difference(&rest)
                        .filter(|name| *name != removed)
                        .cloned()
                        .collect();
                    let extra = leaves.iter().find(|leaf| !triple.contains(leaf));
                    if let (false, Some(extra)) = (orphans.is_empty(), extra) {
                        return Choice {
                            explicit: triple.iter().map(|name| (*name).clone()).collect(),
                            removed: removed.clone(),
                            orphans,
                            extra: extra.clone(),
                        };
                    }
                }
            }
        }
    }
    panic!("no triple of leaves with orphans on removal in this corpus");
}

/// Build a local package with `stonepack.py`: an executable, a plain file, a group-readable
/// private file, a symlink and nested directories; it depends on `dependency` by name.
fn local_stone(work: &Path, dependency: &str) -> std::path::PathBuf {
    let tree = work.join("local-tree");
    let write = |relative: &str, contents: &str, mode: u32| {
        let path = tree.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        "usr/bin/scenario-tool",
        "#!/bin/sh\necho scenario tool\n",
        0o755,
    );
    write(
        "usr/share/scenario/data.txt",
        "local scenario data, not in any repository\n",
        0o644,
    );
    write(
        "usr/share/scenario/private/notes.txt",
        "group readable notes of the scenario\n",
        0o640,
    );
    std::os::unix::fs::symlink("data.txt", tree.join("usr/share/scenario/current")).unwrap();
    let out = work.join("local/scenario-local-1.0-1-1-x86_64.stone");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let output = Command::new("python3")
        .arg(shared().join("bench/stonepack.py"))
        .arg("--tree")
        .arg(&tree)
        .args([
            "--name",
            "scenario-local",
            "--version",
            "1.0",
            "--release",
            "1",
        ])
        .args([
            "--summary",
            "A package given by path",
            "--depends",
            dependency,
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "stonepack failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn index(dir: &Path) {
    moss_ok(&[OsStr::new("index"), dir.as_os_str()]);
    assert!(
        dir.join("stone.index").is_file(),
        "moss index wrote no stone.index"
    );
}

fn copy_stones(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() == Some(OsStr::new("stone")) {
            fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Make the repository directory hold the stones of `from` instead (and no index yet).
fn replace_stones(repo: &Path, from: &Path) {
    for entry in fs::read_dir(repo).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() == Some(OsStr::new("stone"))
            || path.file_name() == Some(OsStr::new("stone.index"))
        {
            fs::remove_file(path).unwrap();
        }
    }
    copy_stones(from, repo);
}

fn names_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn borrowed(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

#[test]
fn lifecycle() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let repo = work.join("repo");
    let revision = work.join("revision-1");

    step("generate and index the corpus");
    generate(&repo, PACKAGES, SEED, FILES_PER_PACKAGE, 0);
    let corpus = Corpus::load(&repo);
    assert_eq!(corpus.packages.len(), PACKAGES);
    let stones = inspect_stones(&repo);
    assert_eq!(
        stones.keys().cloned().collect::<BTreeSet<_>>(),
        corpus.names()
    );
    index(&repo);
    let choice = choose(&corpus);
    let explicit = borrowed(&choice.explicit);

    let root = Root::new(work.join("root"));
    step("repo add / list");
    let refused = root.fails(&["repo", "add", "test", &file_uri(&repo.join("stone.index"))]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("--key") && message.contains("--unsigned"),
        "{message}"
    );
    root.ok(&[
        "repo",
        "add",
        "test",
        &file_uri(&repo.join("stone.index")),
        "--unsigned",
    ]);
    let repositories = root.json(&["repo", "list"]);
    assert_eq!(repositories.as_array().unwrap().len(), 1, "{repositories}");
    assert_eq!(repositories[0]["id"], "test");
    assert_eq!(repositories[0]["active"], true);
    assert_eq!(repositories[0]["signed"], false);
    assert!(root.ok(&["repo", "list"]).contains("(unsigned)"));
    let available = root.json(&["list", "available"]);
    assert_eq!(names_of(&available), corpus.names());
    assert!(
        available
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["repository"] == "test")
    );
    assert_eq!(root.active(), None);

    step("install --dry-run changes nothing");
    let expected_first = corpus.closure(explicit.iter().copied());
    let mut arguments = vec!["install"];
    arguments.extend(&explicit);
    arguments.push("--dry-run");
    let plan = root.json(&arguments);
    assert_eq!(
        names_of(&plan["add"]),
        expected_first,
        "dry-run plan: {plan}"
    );
    assert!(
        plan["remove"].as_array().unwrap().is_empty()
            && plan["change"].as_array().unwrap().is_empty()
    );
    assert!(root.states().is_empty(), "a dry run recorded a state");
    assert!(!root.path.join("usr/.stateID").exists());

    step("install three packages by name");
    let mut arguments = vec!["install"];
    arguments.extend(&explicit);
    arguments.push("-y");
    root.ok(&arguments);
    assert_eq!(root.active(), Some(1));
    let installed = root.installed();
    assert_eq!(
        installed.keys().cloned().collect::<BTreeSet<_>>(),
        expected_first
    );
    for (name, package) in &installed {
        assert_eq!(
            package.explicit,
            explicit.contains(&name.as_str()),
            "explicit flag of {name}"
        );
        assert_eq!(
            (&package.version, package.release),
            (&stones[name].version, stones[name].release)
        );
    }
    let explicit_only = root.json(&["list", "installed", "--explicit"]);
    assert_eq!(
        names_of(&explicit_only),
        choice.explicit.iter().cloned().collect()
    );
    root.check_installed_tree(&[&stones]);
    let again = root.run(&["install", explicit[0], "-y"]);
    assert!(
        again.status.success(),
        "installing an installed package should be a no-op"
    );
    assert_eq!(
        root.states(),
        vec![1],
        "installing an installed package recorded a state"
    );

    step(&format!(
        "remove {} (orphans {:?})",
        choice.removed, choice.orphans
    ));
    let removed_files: Vec<&String> = stones[&choice.removed].layout.keys().collect();
    root.ok(&["remove", &choice.removed, "-y"]);
    assert_eq!(root.active(), Some(2));
    let kept: Vec<&str> = explicit
        .iter()
        .copied()
        .filter(|name| *name != choice.removed)
        .collect();
    let expected_second = corpus.closure(kept.iter().copied());
    assert_eq!(root.installed_names(), expected_second);
    for orphan in &choice.orphans {
        assert!(!expected_second.contains(orphan));
    }
    let still_declared = expected_tree(expected_second.iter().map(|name| &stones[name]));
    for path in removed_files
        .iter()
        .filter(|path| !still_declared.contains_key(**path))
    {
        assert!(
            fs::symlink_metadata(root.path.join("usr").join(path)).is_err(),
            "/usr/{path} of the removed {} is still there",
            choice.removed
        );
    }
    root.check_installed_tree(&[&stones]);

    step("install a local .stone by path");
    let local = local_stone(work, &choice.extra);
    let local_stones = inspect_stones(local.parent().unwrap());
    root.ok(&["install", local.to_str().unwrap(), "-y"]);
    assert_eq!(root.active(), Some(3));
    let installed = root.installed();
    let mut expected_third = corpus.closure(kept.iter().copied().chain([choice.extra.as_str()]));
    expected_third.insert("scenario-local".to_owned());
    assert_eq!(
        installed.keys().cloned().collect::<BTreeSet<_>>(),
        expected_third
    );
    assert!(installed["scenario-local"].explicit);
    assert!(
        !installed[&choice.extra].explicit,
        "{} came in as a dependency",
        choice.extra
    );
    root.check_installed_tree(&[&stones, &local_stones]);
    let tool = fs::symlink_metadata(root.path.join("usr/bin/scenario-tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o555);
    let notes =
        fs::symlink_metadata(root.path.join("usr/share/scenario/private/notes.txt")).unwrap();
    assert_eq!(notes.permissions().mode() & 0o7777, 0o440);
    let info = root.json(&["info", "scenario-local", "--files"]);
    assert_eq!(info[0]["status"], "installed");
    let files: BTreeSet<&str> = info[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file.as_str().unwrap())
        .collect();
    assert!(
        files.contains("/usr/bin/scenario-tool"),
        "info --files: {info}"
    );
    let hits = root.json(&["search-file", "scenario-tool"]);
    assert_eq!(hits[0]["package"], "scenario-local", "{hits}");
    let search = root.json(&["search", &choice.extra]);
    assert!(names_of(&search).contains(&choice.extra));
    let state_three = root.installed();

    step("generate revision 1, re-index, repo update");
    generate(&revision, PACKAGES, SEED, FILES_PER_PACKAGE, 1);
    let new_stones = inspect_stones(&revision);
    let revision_zero = work.join("revision-0");
    copy_stones(&repo, &revision_zero);
    replace_stones(&repo, &revision);
    index(&repo);
    root.ok(&["repo", "update"]);
    let available = root.json(&["list", "available"]);
    for item in available.as_array().unwrap() {
        let name = item["name"].as_str().unwrap();
        assert_eq!(
            item["release"].as_u64().unwrap(),
            stones[name].release + 1,
            "{name} after repo update"
        );
    }

    step("list sync shows the upgrades");
    let plan = root.json(&["list", "sync"]);
    let changes = plan["change"].as_array().expect("change list");
    let upgraded: BTreeSet<String> = changes
        .iter()
        .map(|pair| pair[0]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut from_repository = expected_third.clone();
    from_repository.remove("scenario-local");
    assert_eq!(upgraded, from_repository, "list sync: {plan}");
    for pair in changes {
        let name = pair[0]["name"].as_str().unwrap();
        assert_eq!(pair[1]["name"], pair[0]["name"]);
        assert_eq!(
            pair[0]["version"],
            format!("{}-{}", stones[name].version, stones[name].release)
        );
        assert_eq!(
            pair[1]["version"],
            format!("{}-{}", new_stones[name].version, new_stones[name].release)
        );
    }
    assert!(
        plan["add"].as_array().unwrap().is_empty() && plan["remove"].as_array().unwrap().is_empty(),
        "{plan}"
    );
    let human = root.ok(&["list", "sync"]);
    for name in &upgraded {
        assert!(
            human.contains(name.as_str()),
            "list sync does not name {name}:\n{human}"
        );
    }
    assert_eq!(root.active(), Some(3), "list sync changed the state");

    step("sync -y");
    root.ok(&["sync", "-y"]);
    assert_eq!(root.active(), Some(4));
    let synced = root.installed();
    assert_eq!(
        synced.keys().cloned().collect::<BTreeSet<_>>(),
        expected_third
    );
    for (name, package) in &synced {
        if name == "scenario-local" {
            assert_eq!(
                package, &state_three[name],
                "the local package should stay as it was"
            );
            continue;
        }
        assert_eq!(
            package.release,
            state_three[name].release + 1,
            "{name} was not upgraded"
        );
        assert_ne!(package.id, state_three[name].id);
        assert_eq!(
            package.explicit, state_three[name].explicit,
            "explicit flag of {name} after sync"
        );
    }
    root.check_installed_tree(&[&new_stones, &local_stones]);
    let nothing = root.json(&["list", "sync"]);
    assert!(
        nothing["change"].as_array().unwrap().is_empty(),
        "still something to sync: {nothing}"
    );

    step("state activate 3 rolls back");
    let before_rollback = root.count_files("assets");
    root.ok(&["state", "activate", "3"]);
    assert_eq!(root.active(), Some(3));
    assert_eq!(
        root.installed(),
        state_three,
        "rollback did not restore the packages"
    );
    root.check_installed_tree(&[&stones, &local_stones]);
    assert_eq!(
        root.states(),
        vec![4, 3, 2, 1],
        "activate must not record a state"
    );

    step("state prune --keep 1");
    let store_before = root.count_files("assets") + root.count_files("cache");
    assert_eq!(before_rollback, root.count_files("assets"));
    root.ok(&["state", "prune", "--keep", "1", "-y"]);
    assert_eq!(
        root.states(),
        vec![4, 3, 2],
        "prune --keep 1 keeps the newest older state and newer ones"
    );
    assert!(
        !root.path.join(".moss/root/1").exists(),
        "the archive of state 1 is still there"
    );
    let store_after = root.count_files("assets") + root.count_files("cache");
    assert!(
        store_after < store_before,
        "pruning state 1 (the only one with {}) freed nothing: {store_before} -> {store_after} files",
        choice.removed
    );
    assert_eq!(root.active(), Some(3));

    step("cache prune, verify");
    root.ok(&["cache", "prune"]);
    root.ok(&["state", "verify"]);
    let issues = root.json(&["state", "verify"]);
    assert_eq!(issues, Value::Array(Vec::new()));
    root.check_installed_tree(&[&stones, &local_stones]);
    // The other kept states still work after garbage collection.
    root.ok(&["state", "activate", "4"]);
    root.check_installed_tree(&[&new_stones, &local_stones]);
    root.ok(&["state", "activate", "2"]);
    assert_eq!(root.installed_names(), expected_second);
    root.check_installed_tree(&[&stones]);
    root.ok(&["state", "activate", "3"]);
    root.check_installed_tree(&[&stones, &local_stones]);

    step("break the tree: delete a file");
    let victim = stones[&choice.extra]
        .layout
        .iter()
        .find(|(_, node)| matches!(node, support::Node::Regular { .. }))
        .map(|(path, _)| path.clone())
        .expect("a regular file");
    fs::remove_file(root.path.join("usr").join(&victim)).unwrap();
    let output = root.fails(&["state", "verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("/usr/{victim}")),
        "verify does not name /usr/{victim}:\n{stdout}"
    );
    let output = root.fails(&["state", "verify", "--format", "json"]);
    let issues: Value =
        serde_json::from_slice(&output.stdout).expect("verify --format json prints JSON");
    let issues = issues.as_array().unwrap();
    assert!(
        issues
            .iter()
            .any(|issue| issue["path"] == format!("/usr/{victim}") && issue["state"] == 3),
        "verify --format json: {issues:?}"
    );

    step("verify --fix repairs");
    root.ok(&["state", "verify", "--fix"]);
    root.ok(&["state", "verify"]);
    assert_eq!(root.active(), Some(3));
    root.check_installed_tree(&[&stones, &local_stones]);
    assert_eq!(root.states(), vec![4, 3, 2], "repairing recorded a state");

    // Installed files share their inode with the store: editing one in place damages the
    // store's copy too, which the repair must restore from the package (a repository package
    // whose repository has moved on to revision 1, and the local package).
    step("break the tree: change files in place");
    let mut victims = Vec::new();
    for stone in [&stones[&choice.extra], &local_stones["scenario-local"]] {
        let (path, _) = stone
            .layout
            .iter()
            .rev()
            .find(|(_, node)| matches!(node, support::Node::Regular { .. }))
            .expect("a regular file");
        let full = root.path.join("usr").join(path);
        let mut contents = fs::read(&full).unwrap();
        contents.extend_from_slice(b"tampered");
        fs::write(&full, contents).unwrap();
        victims.push(path.clone());
    }
    let output = root.fails(&["state", "verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for victim in &victims {
        assert!(
            stdout.contains(&format!("/usr/{victim}")),
            "verify does not name /usr/{victim}:\n{stdout}"
        );
    }
    root.ok(&["state", "verify", "--fix"]);
    root.ok(&["state", "verify"]);
    root.check_installed_tree(&[&stones, &local_stones]);
    root.ok(&["state", "activate", "4"]);
    root.check_installed_tree(&[&new_stones, &local_stones]);
    root.ok(&["state", "verify"]);

    step("state remove");
    root.fails(&["state", "remove", "4", "-y"]);
    root.fails(&["state", "remove", "99", "-y"]);
    root.ok(&["state", "remove", "2", "-y"]);
    assert_eq!(root.states(), vec![4, 3]);
    assert!(
        !root.path.join(".moss/root/2").exists(),
        "the archive of state 2 is still there"
    );
    assert_eq!(root.active(), Some(4));

    step("repo disable / enable");
    root.ok(&["repo", "disable", "test"]);
    assert_eq!(root.json(&["repo", "list"])[0]["active"], false);
    assert!(
        root.json(&["list", "available"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    root.ok(&["repo", "enable", "test"]);
    assert_eq!(names_of(&root.json(&["list", "available"])), corpus.names());

    step("the repository goes back to revision 0: sync -u --allow-downgrade");
    replace_stones(&repo, &revision_zero);
    index(&repo);
    let plan = root.json(&["sync", "-u", "--dry-run"]);
    assert!(
        plan["change"].as_array().unwrap().is_empty(),
        "sync without --allow-downgrade downgrades: {plan}"
    );
    let plan = root.json(&["sync", "--allow-downgrade", "--dry-run"]);
    let downgraded: BTreeSet<String> = plan["change"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        downgraded, from_repository,
        "sync --allow-downgrade plan: {plan}"
    );
    assert_eq!(root.active(), Some(4), "a dry run switched states");
    root.ok(&["sync", "--allow-downgrade", "-y"]);
    assert_eq!(root.active(), Some(5));
    let downgraded = root.installed();
    assert_eq!(
        downgraded.keys().cloned().collect::<BTreeSet<_>>(),
        expected_third
    );
    for (name, package) in &downgraded {
        assert_eq!(
            package.id, state_three[name].id,
            "{name} after the downgrade"
        );
        assert_eq!(
            package.explicit, state_three[name].explicit,
            "explicit flag of {name}"
        );
    }
    root.check_installed_tree(&[&stones, &local_stones]);
    root.ok(&["state", "verify"]);

    step("repo remove");
    root.ok(&["repo", "remove", "test"]);
    assert!(root.json(&["repo", "list"]).as_array().unwrap().is_empty());
    assert!(
        root.json(&["list", "available"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(root.installed_names(), expected_third);
    root.ok(&["remove", "scenario-local", "-y"]);
    assert!(!root.installed_names().contains("scenario-local"));
    assert!(fs::symlink_metadata(root.path.join("usr/bin/scenario-tool")).is_err());
    root.check_installed_tree(&[&stones]);
}

#[test]
fn crash_points() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let repo = work.join("repo");
    generate(&repo, PACKAGES, SEED, FILES_PER_PACKAGE, 0);
    index(&repo);
    let corpus = Corpus::load(&repo);
    let stones = inspect_stones(&repo);
    let choice = choose(&corpus);
    let base = choice.explicit[0].as_str();
    // A package that brings something new.
    let base_closure = corpus.closure([base]);
    let added = corpus
        .leaves()
        .into_iter()
        .find(|leaf| !base_closure.contains(leaf))
        .expect("a leaf outside the base");

    for point in [
        "unpacked",
        "blitted",
        "journaled",
        "swapped",
        "recorded",
        "archived",
    ] {
        step(&format!("crash at {point} while installing {added}"));
        let root = Root::new(work.join(format!("root-{point}")));
        root.ok(&[
            "repo",
            "add",
            "test",
            &file_uri(&repo.join("stone.index")),
            "--unsigned",
        ]);
        root.ok(&["install", base, "-y"]);
        assert_eq!(root.active(), Some(1));
        let before = root.installed();

        let output = root
            .command(&["install", &added, "-y"])
            .env("MOSS_CRASH_AT", point)
            .output()
            .unwrap();
        assert_eq!(
            output.status.signal(),
            Some(9),
            "at {point}: moss was not killed by SIGKILL: {:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );

        // Opening the installation recovers.
        let states = root.states();
        let active = root.active().expect("an active state after recovery");
        assert!(
            active == 1 || active == 2,
            "at {point}: active state {active}"
        );
        assert!(
            states.contains(&active),
            "at {point}: state {active} is not recorded: {states:?}"
        );
        root.ok(&["state", "verify"]);
        assert!(
            !root.path.join(".moss/journal.json").exists(),
            "at {point}: the journal is still there"
        );
        // Before the journal is written nothing records the staging tree, so a crash at
        // `blitted` leaves it until the next transaction replaces it; from the journal on,
        // recovery archives or drops it.
        if !matches!(point, "unpacked" | "blitted") {
            assert!(
                !root.path.join(".moss/root/staging/usr").exists(),
                "at {point}: a staging tree is left behind"
            );
        }
        match point {
            "unpacked" | "blitted" | "journaled" => assert_eq!(active, 1, "at {point}"),
            "recorded" | "archived" => assert_eq!(active, 2, "at {point}"),
            _ => {}
        }
        let installed = root.installed();
        if active == 2 {
            assert!(
                installed.contains_key(&added),
                "at {point}: state 2 lacks {added}"
            );
            assert_eq!(states, vec![2, 1], "at {point}");
            let archived = fs::read_to_string(root.path.join(".moss/root/1/usr/.stateID"));
            assert_eq!(
                archived.ok().as_deref().map(str::trim),
                Some("1"),
                "at {point}: state 1 was not archived"
            );
            assert_eq!(
                installed.keys().cloned().collect::<BTreeSet<_>>(),
                corpus.closure([base, added.as_str()])
            );
        } else {
            assert_eq!(installed, before, "at {point}: state 1 changed");
            assert_eq!(states, vec![1], "at {point}");
        }
        root.check_installed_tree(&[&stones]);

        step(&format!("install {added} again after the crash at {point}"));
        root.ok(&["install", &added, "-y"]);
        let active = root.active().expect("an active state");
        let installed = root.installed();
        assert!(
            installed.contains_key(&added),
            "at {point}: {added} is not installed after retrying"
        );
        assert_eq!(
            installed.keys().cloned().collect::<BTreeSet<_>>(),
            corpus.closure([base, added.as_str()])
        );
        assert!(root.states().contains(&active));
        root.ok(&["state", "verify"]);
        root.check_installed_tree(&[&stones]);
        assert!(
            !root.path.join(".moss/root/staging/usr").exists(),
            "after retrying at {point}: a staging tree is left behind"
        );
    }
}

/// `state activate` (a switch that records no state) killed at each point of the switch: the
/// root ends on the old or the target state, complete, and the rollback can be done again.
#[test]
fn crash_points_during_rollback() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let repo = work.join("repo");
    generate(&repo, PACKAGES, SEED, FILES_PER_PACKAGE, 0);
    index(&repo);
    let corpus = Corpus::load(&repo);
    let stones = inspect_stones(&repo);
    let choice = choose(&corpus);
    let base = choice.explicit[0].as_str();
    let extra = choice.extra.as_str();

    // `unpacked` is not on the way of an activation.
    for point in ["blitted", "journaled", "swapped", "recorded", "archived"] {
        step(&format!("crash at {point} while rolling back from 2 to 1"));
        let root = Root::new(work.join(format!("root-{point}")));
        root.ok(&[
            "repo",
            "add",
            "test",
            &file_uri(&repo.join("stone.index")),
            "--unsigned",
        ]);
        root.ok(&["install", base, "-y"]);
        let one = root.installed();
        root.ok(&["install", extra, "-y"]);
        let two = root.installed();
        assert_eq!(root.active(), Some(2));

        let output = root
            .command(&["state", "activate", "1"])
            .env("MOSS_CRASH_AT", point)
            .output()
            .unwrap();
        assert_eq!(
            output.status.signal(),
            Some(9),
            "at {point}: moss was not killed by SIGKILL: {:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );

        assert_eq!(root.states(), vec![2, 1], "at {point}");
        let active = root.active().expect("an active state after recovery");
        root.ok(&["state", "verify"]);
        assert!(
            !root.path.join(".moss/journal.json").exists(),
            "at {point}: the journal is still there"
        );
        match point {
            "blitted" | "journaled" => assert_eq!(active, 2, "at {point}"),
            "recorded" | "archived" => assert_eq!(active, 1, "at {point}"),
            _ => assert!(active == 1 || active == 2, "at {point}: state {active}"),
        }
        assert_eq!(
            root.installed(),
            if active == 1 { &one } else { &two }.clone(),
            "at {point}"
        );
        root.check_installed_tree(&[&stones]);

        if active == 2 {
            root.ok(&["state", "activate", "1"]);
        }
        assert_eq!(root.active(), Some(1));
        assert_eq!(root.installed(), one, "at {point}");
        root.check_installed_tree(&[&stones]);
        root.ok(&["state", "activate", "2"]);
        assert_eq!(root.installed(), two, "at {point}");
        root.check_installed_tree(&[&stones]);
        root.ok(&["state", "verify"]);
    }
}

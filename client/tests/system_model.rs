//! The declarative system model through the real CLI in direct mode: `sync --model` makes the
//! system exactly the model and adopts it, install and remove edit it (keeping its comments),
//! every state records its model, `state export` writes it, a rollback rolls it back, and bad
//! models are refused by line with nothing changed.

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

/// The example stones indexed in `directory`; returns the index URI.
fn examples(directory: &Path) -> String {
    let repository = directory.join("repo");
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
    let status = Command::new(env!("CARGO_BIN_EXE_moss"))
        .arg("index")
        .arg(&repository)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    format!("file://{}/stone.index", repository.display())
}

fn model(uri: &str, packages: &[&str]) -> String {
    format!(
        "// The machine's model\nrepositories {{\n    examples {{\n        description \"Example \
         stones\"\n        uri \"{uri}\"\n        priority 5\n    }}\n}}\npackages {{\n{}}}\n",
        packages
            .iter()
            .map(|package| format!("    {package}\n"))
            .collect::<String>()
    )
}

fn installed(root: &Path) -> Vec<(String, bool)> {
    let listing: serde_json::Value =
        serde_json::from_str(&ok(root, &["list", "installed", "--format", "json"])).unwrap();
    let mut names: Vec<(String, bool)> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            (
                package["name"].as_str().unwrap().to_owned(),
                package["explicit"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_model_is_synced_edited_recorded_exported_and_rolled_back() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let uri = examples(work.path());
    let file = work.path().join("model.kdl");
    // (italian-pizza conflicts with pineapple in the example stones.)
    fs::write(&file, model(&uri, &["pineapple // fruit"])).unwrap();

    // The dry run changes nothing; the sync installs exactly the model and adopts it.
    let plan = ok(
        &root,
        &["sync", "--model", file.to_str().unwrap(), "--dry-run"],
    );
    assert!(plan.contains("pineapple"), "{plan}");
    assert!(!root.join("usr").exists() && !root.join("etc/moss/system-model.kdl").exists());
    ok(&root, &["sync", "--model", file.to_str().unwrap(), "-y"]);
    assert_eq!(installed(&root), [("pineapple".to_owned(), true)]);
    let adopted = fs::read_to_string(root.join("etc/moss/system-model.kdl")).unwrap();
    assert_eq!(adopted, fs::read_to_string(&file).unwrap());
    let recorded = fs::read_to_string(root.join("usr/lib/system-model.kdl")).unwrap();
    assert!(recorded.contains("pineapple // fruit"), "{recorded}");
    // Repositories come from the model: no repo.d file was written.
    assert!(ok(&root, &["repo", "list"]).contains("examples"));
    assert!(!root.join("etc/moss/repo.d").exists());
    // A synced system has nothing to do.
    let again = moss(&root, &["sync", "-y"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Nothing to do"),
        "{again:?}"
    );

    // install and remove edit the model, keeping its comments, with the notice on stderr.
    let output = moss(&root, &["install", "-y", "bash-completion"]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("managed by the system model"),
        "{output:?}"
    );
    let added = fs::read_to_string(root.join("etc/moss/system-model.kdl")).unwrap();
    assert!(added.contains("pineapple // fruit"), "{added}");
    assert!(
        added.contains("// Added by moss\n    bash-completion"),
        "{added}"
    );
    ok(&root, &["remove", "-y", "pineapple"]);
    let edited = fs::read_to_string(root.join("etc/moss/system-model.kdl")).unwrap();
    assert!(edited.contains("// The machine's model"), "{edited}");
    assert!(!edited.contains("pineapple"), "{edited}");
    assert!(edited.contains("bash-completion"), "{edited}");
    assert_eq!(ok(&root, &["state", "export"]), edited);

    // Each state's model: state 1 still has what it was built from.
    let exported = work.path().join("state-1.kdl");
    ok(
        &root,
        &["state", "export", "1", "-o", exported.to_str().unwrap()],
    );
    let first = fs::read_to_string(&exported).unwrap();
    assert!(
        first.contains("pineapple") && !first.contains("bash-completion"),
        "{first}"
    );

    // Rolling back rolls the model back: the next sync keeps state 1's packages.
    ok(&root, &["state", "activate", "1"]);
    let rolled = fs::read_to_string(root.join("etc/moss/system-model.kdl")).unwrap();
    assert_eq!(rolled, first);
    ok(&root, &["sync", "-y"]);
    assert_eq!(installed(&root), [("pineapple".to_owned(), true)]);

    // A model without a package removes it.
    fs::write(&file, model(&uri, &["bash-completion"])).unwrap();
    ok(&root, &["sync", "--model", file.to_str().unwrap(), "-y"]);
    assert_eq!(installed(&root), [("bash-completion".to_owned(), true)]);
}

#[test]
fn bad_models_are_refused_by_line_and_change_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let uri = examples(work.path());
    let file = work.path().join("model.kdl");
    for (text, code, needles) in [
        (
            model(&uri, &["pineapple", "no-such-thing"]),
            66,
            vec![
                "line 11",
                "no-such-thing",
                "no repository of the model offers",
            ],
        ),
        (
            format!("{}colour \"red\"\n", model(&uri, &["pineapple"])),
            64,
            vec!["line 12", "unknown key `colour`"],
        ),
        (
            model(&uri, &["pineapple"]).replace("priority 5", "priority 5\n        active #true"),
            64,
            vec!["line 7", "unknown field `active`", "enabled"],
        ),
    ] {
        fs::write(&file, &text).unwrap();
        let output = moss(&root, &["sync", "--model", file.to_str().unwrap(), "-y"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{needle}: {stderr}");
        }
        assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
        assert!(!root.join("usr").exists());
        assert!(!root.join("etc/moss/system-model.kdl").exists());
    }
}

#[test]
fn a_system_without_a_model_records_and_exports_a_generated_one() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let uri = examples(work.path());
    ok(
        &root,
        &["repo", "add", "examples", &uri, "--unsigned", "-p", "3"],
    );
    ok(&root, &["install", "-y", "pineapple"]);
    let exported = ok(&root, &["state", "export"]);
    assert!(exported.contains(&format!("uri \"{uri}\"")), "{exported}");
    assert!(exported.contains("priority 3"), "{exported}");
    assert!(
        exported.contains("packages {\n    pineapple\n}"),
        "{exported}"
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/lib/system-model.kdl")).unwrap(),
        exported
    );
    // It is a model upstream's format reads back: syncing to it changes nothing.
    let file = work.path().join("exported.kdl");
    fs::write(&file, &exported).unwrap();
    let output = moss(&root, &["sync", "--model", file.to_str().unwrap(), "-y"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("already matches"),
        "{output:?}"
    );
    // Unknown state ids are refused by name.
    let missing = moss(&root, &["state", "export", "42"]);
    assert_eq!(missing.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("state 42 does not exist"));
}

//! Shared by the tests of upstream parity: the CLI in direct mode, the example repository and
//! stones written with our own writer.

// Each test binary uses a part of this module.
#![allow(dead_code, unused_imports)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

#[path = "../../../crates/moss/tests/common/stones.rs"]
mod stones;

pub use stones::{File, file, program, stone};

/// `moss -D ROOT ARGS`.
pub fn moss(root: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moss"))
        .arg("-D")
        .arg(root)
        .args(arguments)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("moss runs")
}

/// Both streams, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `moss -D ROOT ARGS`, which must succeed; its stdout.
pub fn ok(root: &Path, arguments: &[&str]) -> String {
    let output = moss(root, arguments);
    assert!(
        output.status.success(),
        "moss {arguments:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `moss -D ROOT ARGS --format json` parsed.
pub fn json(root: &Path, arguments: &[&str]) -> serde_json::Value {
    let mut arguments = arguments.to_vec();
    arguments.extend(["--format", "json"]);
    serde_json::from_str(&ok(root, &arguments)).expect("JSON output")
}

/// The example stones indexed in `directory/repo`; returns the directory.
pub fn example_repository(directory: &Path) -> PathBuf {
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
    repository
}

/// A root (`directory/root`) with the example repository added.
pub fn root_with_examples(directory: &Path) -> PathBuf {
    let repository = example_repository(directory);
    let root = directory.join("root");
    fs::create_dir_all(&root).unwrap();
    let uri = format!("file://{}/stone.index", repository.display());
    ok(&root, &["repo", "add", "examples", &uri, "--unsigned"]);
    root
}

//! Shared by the tests of upstream parity: the CLI in direct mode, the example repository and
//! stones written with our own writer.

#![allow(dead_code)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use stone::{ContentSource, Entry, FileType, Layout, Package, Writer};

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

/// One file of a test package: path below `/usr`, mode, contents.
pub type File = (String, u32, Vec<u8>);

/// A regular file.
pub fn file(target: &str, text: &str) -> File {
    (target.to_owned(), 0o100644, text.as_bytes().to_vec())
}

/// An executable.
pub fn program(target: &str, bytes: Vec<u8>) -> File {
    (target.to_owned(), 0o100755, bytes)
}

/// Write `NAME-VERSION.stone` in `directory` holding `files` and symlinks (path, link text).
pub fn stone(
    directory: &Path,
    name: &str,
    version: &str,
    files: &[File],
    links: &[(&str, &str)],
) -> PathBuf {
    let package = Package {
        name: name.to_owned(),
        version: version.to_owned(),
        release: 1,
        build_release: 1,
        architecture: "x86_64".to_owned(),
        summary: format!("{name} summary"),
        description: format!("{name} description"),
        homepage: "https://example.org".to_owned(),
        licenses: vec!["MPL-2.0".to_owned()],
        source_id: name.to_owned(),
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
    for (target, mode, bytes) in files {
        writer
            .add_file(target.clone(), *mode, ContentSource::Bytes(bytes.clone()))
            .unwrap();
    }
    for (target, text) in links {
        writer.add_layout(Layout {
            uid: 0,
            gid: 0,
            mode: 0o120777,
            tag: 0,
            entry: Entry::Symlink {
                source: (*text).to_owned(),
                target: (*target).to_owned(),
            },
        });
    }
    fs::create_dir_all(directory).unwrap();
    let path = directory.join(format!("{name}-{version}.stone"));
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    fs::write(&path, out).unwrap();
    path
}

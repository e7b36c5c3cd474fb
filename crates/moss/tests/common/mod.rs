//! Test packages for triggers and boot management: a static stub program standing in for the
//! commands triggers run (compiled at test time: the trigger container holds nothing of the
//! host), the example trigger definitions, and stones written with our writer.

// Each test binary uses a part of this module.
#![allow(dead_code, unused_imports)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

mod stones;

pub use stones::{File, file, program, stone};

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("examples/triggers").is_dir())
        .expect("an ancestor holds examples/triggers")
        .to_path_buf()
}

/// The stub program, built static once per test process.
pub fn stub() -> Vec<u8> {
    static STUB: OnceLock<Vec<u8>> = OnceLock::new();
    STUB.get_or_init(|| {
        let directory = tempfile::tempdir().unwrap();
        let source = repository().join("crates/moss/tests/common/stub.c");
        let binary = directory.path().join("stub");
        let output = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&binary)
            .arg(&source)
            .output()
            .expect("gcc runs (the trigger tests need gcc and libc6-dev for static binaries)");
        assert!(
            output.status.success(),
            "compiling the stub failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        fs::read(&binary).unwrap()
    })
    .clone()
}

/// Every program the example triggers run, plus `probe`.
pub const PROGRAMS: [&str; 10] = [
    "sbin/depmod",
    "bin/glib-compile-schemas",
    "bin/gio-querymodules",
    "bin/gtk-update-icon-cache",
    "bin/update-mime-database",
    "bin/fc-cache",
    "bin/systemd-sysusers",
    "bin/systemd-tmpfiles",
    "sbin/ldconfig",
    "bin/probe",
];

/// A package shipping the stub under every program name.
pub fn tools(directory: &Path) -> PathBuf {
    let bytes = stub();
    let files: Vec<File> = PROGRAMS
        .iter()
        .map(|target| program(target, bytes.clone()))
        .collect();
    stone(directory, "tools", "1", &files, &[])
}

/// A package shipping the example trigger definitions of the repository.
pub fn example_triggers(directory: &Path) -> PathBuf {
    let mut files = Vec::new();
    for scope in ["tx.d", "sys.d"] {
        let source = repository().join("examples/triggers").join(scope);
        let mut names: Vec<_> = fs::read_dir(&source).unwrap().flatten().collect();
        names.sort_by_key(|entry| entry.file_name());
        for entry in names {
            let text = fs::read_to_string(entry.path()).unwrap();
            files.push(file(
                &format!(
                    "share/moss/triggers/{scope}/{}",
                    entry.file_name().to_string_lossy()
                ),
                &text,
            ));
        }
    }
    stone(directory, "triggers", "1", &files, &[])
}

/// A package with one trigger definition.
pub fn trigger_package(directory: &Path, name: &str, scope: &str, yaml: &str) -> PathBuf {
    stone(
        directory,
        name,
        "1",
        &[file(
            &format!("share/moss/triggers/{scope}.d/{name}.yaml"),
            yaml,
        )],
        &[],
    )
}

/// The calls the stub recorded in a tree, one command line per call.
pub fn calls(usr: &Path) -> Vec<String> {
    fs::read_to_string(usr.join("share/moss-test/calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

//! Self-contained recovery through the real CLI: a change whose new state lacks `/usr/bin/moss`,
//! the C library or the booted kernel is refused unless forced; forced, a system without its C
//! library still lists its states and rolls back with the static `moss` it ships, in a chroot
//! where nothing dynamic runs, and afterwards dynamic programs run again.

#![expect(clippy::print_stderr, reason = "a skipped test says so loudly")]

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use support::{file, json, moss, ok, program, stone, text};

/// The exit code of a refusal by the recovery guard.
const UNRECOVERABLE: i32 = 3;

#[test]
fn changes_that_lose_what_recovery_needs_are_refused_unless_forced() {
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local");
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let tool = stone(
        &local,
        "moss-tool",
        "1",
        &[program("bin/moss", b"#!/bin/false\n".to_vec())],
        &[],
    );
    let libc = stone(
        &local,
        "libc",
        "1",
        &[
            file("lib/libc.so.6", "not a libc\n"),
            file("lib/ld-linux-x86-64.so.2", "no loader\n"),
        ],
        &[],
    );
    let kernel = stone(
        &local,
        "kernel",
        "6.1.0",
        &[file("lib/kernel/6.1.0/vmlinuz", "no kernel\n")],
        &[],
    );
    let newer_kernel = stone(
        &local,
        "kernel-next",
        "6.2.0",
        &[file("lib/kernel/6.2.0/vmlinuz", "none\n")],
        &[],
    );
    let paths = [&tool, &libc, &kernel];
    let mut arguments = vec!["install", "-y"];
    arguments.extend(paths.iter().map(|path| path.to_str().unwrap()));
    ok(&root, &arguments);

    for (package, named) in [
        ("moss-tool", "/usr/bin/moss"),
        ("libc", "the C library (/usr/lib/libc.so.6)"),
        ("kernel", "the kernel the active state boots (6.1.0)"),
    ] {
        let refused = moss(&root, &["remove", "-y", package]);
        assert_eq!(
            refused.status.code(),
            Some(UNRECOVERABLE),
            "{}",
            text(&refused)
        );
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(named), "{named} named in {stderr}");
        assert!(stderr.contains("--force"), "{stderr}");
    }
    assert_eq!(json(&root, &["state", "list"]).as_array().unwrap().len(), 1);

    // A second kernel makes the first one removable (an upgrade, not a loss).
    ok(&root, &["install", "-y", newer_kernel.to_str().unwrap()]);
    ok(&root, &["remove", "-y", "kernel"]);

    // Forced: done, with a warning naming what goes.
    let forced = moss(&root, &["remove", "-y", "--force", "moss-tool", "libc"]);
    assert!(forced.status.success(), "{}", text(&forced));
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(
        stderr.contains("/usr/bin/moss") && stderr.contains("the C library"),
        "{stderr}"
    );
    assert!(!root.join("usr/bin/moss").exists());
}

/// The static moss `./test` builds (`MOSS_STATIC_BINARY`), checked to be static.
fn static_moss() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("MOSS_STATIC_BINARY").map(PathBuf::from) else {
        eprintln!(
            "\n*** SKIPPED: MOSS_STATIC_BINARY is not set; ./test builds a static moss \
             (RUSTFLAGS='-C target-feature=+crt-static' cargo build -p moss-client --target \
             x86_64-unknown-linux-gnu) and sets it ***\n"
        );
        return None;
    };
    let version = Command::new(&path)
        .args(["version", "--full"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("static linking"),
        "{} is not a static moss: {}",
        path.display(),
        text(&version)
    );
    Some(path)
}

/// The host's file behind a path, links resolved.
fn host_bytes(path: &str) -> Vec<u8> {
    fs::read(fs::canonicalize(path).unwrap()).unwrap()
}

fn chroot(root: &Path, arguments: &[&str]) -> std::process::Output {
    Command::new("/usr/sbin/chroot")
        .arg(root)
        .args(arguments)
        .env_clear()
        .env("PATH", "/usr/bin")
        .env("NO_COLOR", "1")
        .output()
        .expect("chroot runs")
}

#[test]
fn a_system_without_its_c_library_rolls_back_with_its_static_moss() {
    let Some(static_moss) = static_moss() else {
        return;
    };
    // /proc/self belongs to this process's effective user.
    let root_user = std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self").unwrap()) == 0;
    if !root_user {
        eprintln!("\n*** SKIPPED: chroot needs root ***\n");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local");
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    // Without its debug information (a sixth of the size): packing and unpacking it is what
    // this test spends its time on.
    let stripped = work.path().join("moss");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&static_moss)
        .status()
        .expect("strip runs (binutils)");
    assert!(status.success());
    let moss_package = stone(
        &local,
        "moss",
        "1",
        &[program("bin/moss", fs::read(&stripped).unwrap())],
        &[],
    );
    let glibc = stone(
        &local,
        "glibc",
        "1",
        &[
            program(
                "lib/libc.so.6",
                host_bytes("/lib/x86_64-linux-gnu/libc.so.6"),
            ),
            program(
                "lib/ld-linux-x86-64.so.2",
                host_bytes("/lib64/ld-linux-x86-64.so.2"),
            ),
        ],
        &[],
    );
    // `true` needs only libc: a dynamic program to show the C library is gone and back.
    let coreutils = stone(
        &local,
        "true",
        "1",
        &[program("bin/true", host_bytes("/usr/bin/true"))],
        &[],
    );
    ok(
        &root,
        &[
            "install",
            "-y",
            moss_package.to_str().unwrap(),
            glibc.to_str().unwrap(),
            coreutils.to_str().unwrap(),
        ],
    );
    let runs = chroot(&root, &["/usr/bin/true"]);
    assert!(runs.status.success(), "with its C library: {}", text(&runs));

    let refused = moss(&root, &["remove", "-y", "glibc"]);
    assert_eq!(
        refused.status.code(),
        Some(UNRECOVERABLE),
        "{}",
        text(&refused)
    );
    ok(&root, &["remove", "-y", "--force", "glibc"]);
    assert!(!root.join("usr/lib/libc.so.6").exists());
    let broken = chroot(&root, &["/usr/bin/true"]);
    assert!(
        !broken.status.success(),
        "no C library, yet: {}",
        text(&broken)
    );

    // The tree's own static moss, with nothing of the host: lists the states, rolls back.
    let listed = chroot(
        &root,
        &[
            "/usr/bin/moss",
            "-D",
            "/",
            "state",
            "list",
            "--format",
            "json",
        ],
    );
    assert!(listed.status.success(), "{}", text(&listed));
    let states: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(states.as_array().unwrap().len(), 2, "{states}");
    let rolled = chroot(
        &root,
        &["/usr/bin/moss", "-D", "/", "-y", "state", "activate", "1"],
    );
    assert!(rolled.status.success(), "{}", text(&rolled));

    let runs = chroot(&root, &["/usr/bin/true"]);
    assert!(runs.status.success(), "after the rollback: {}", text(&runs));
    assert!(root.join("usr/lib/libc.so.6").is_file());
    let active = json(&root, &["state", "active"]);
    assert_eq!(active["id"], 1, "{active}");
}

//! Upstream boulder's remaining commands through the real binary: `version`, `recipe bump`,
//! `recipe update` (a local `file://` upstream: its SHA-256 lands in the recipe), `cache size`
//! and `cache clean` (symlinks are not followed out of the cache) and the build priority
//! (nice 19 unless `--normal-priority`).

use std::{
    fs,
    io::Write,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    process::{Command, Output, Stdio},
};

use boulder::upstream::sha256_file;

const BOULDER: &str = env!("CARGO_BIN_EXE_boulder");

fn boulder(args: &[&str]) -> Output {
    Command::new(BOULDER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = boulder(args);
    assert!(
        output.status.success(),
        "boulder {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const RECIPE: &str = "# SPDX comment kept\nname        : demo\nversion     : 1.0\nrelease     : 4   # bumped by hand until now\nhomepage    : https://example.invalid/demo\nupstreams   :\n    - file:demo-1.0.tar.gz : 0000000000000000000000000000000000000000000000000000000000000000\nsummary     : A demo\ndescription : |\n    Demo.\nlicense     : MIT\n";

#[test]
fn version_prints_the_version() {
    assert_eq!(
        ok(&["version"]),
        format!("boulder {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn recipe_bump_edits_only_the_release() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("stone.yaml");
    fs::write(&recipe, RECIPE).unwrap();
    let directory = dir.path().to_str().unwrap();
    ok(&["recipe", "bump", "-r", directory]);
    assert_eq!(
        fs::read_to_string(&recipe).unwrap(),
        RECIPE.replace("release     : 4 ", "release     : 5 ")
    );
    ok(&["recipe", "bump", "-r", recipe.to_str().unwrap(), "-n", "12"]);
    assert_eq!(
        fs::read_to_string(&recipe).unwrap(),
        RECIPE.replace("release     : 4", "release     : 12")
    );
    // A release that is not a number is named, and the file stays as it was.
    fs::write(&recipe, RECIPE.replace(": 4 ", ": four")).unwrap();
    let refused = boulder(&["recipe", "bump", "-r", directory]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("release `four`"));
    assert_eq!(
        fs::read_to_string(&recipe).unwrap(),
        RECIPE.replace(": 4 ", ": four")
    );
}

#[test]
fn recipe_update_sets_version_upstream_and_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("stone.yaml");
    fs::write(&recipe, RECIPE).unwrap();
    let archive = dir.path().join("demo-2.0.tar.gz");
    fs::write(&archive, b"not really an archive, but bytes to hash").unwrap();
    let hash = sha256_file(&archive).unwrap();
    let url = format!("file://{}", archive.display());
    let cache = dir.path().join("cache");
    let args = [
        "recipe",
        "update",
        dir.path().to_str().unwrap(),
        "--ver",
        "2.0",
        "-u",
        &url,
        "--cache-dir",
        cache.to_str().unwrap(),
    ];

    // Without -y it asks; no answer (stdin closed) writes nothing.
    let declined = boulder(&args);
    assert!(!declined.status.success());
    let stderr = String::from_utf8_lossy(&declined.stderr);
    assert!(stderr.contains("+version     : 2.0"), "{stderr}");
    assert_eq!(fs::read_to_string(&recipe).unwrap(), RECIPE);

    // An answer of `y` on stdin writes it.
    let mut child = Command::new(BOULDER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let expected = RECIPE
        .replace("version     : 1.0", "version     : 2.0")
        .replace("release     : 4 ", "release     : 5 ")
        .replace(
            "file:demo-1.0.tar.gz : 0000000000000000000000000000000000000000000000000000000000000000",
            &format!("{url} : {hash}"),
        );
    assert_eq!(fs::read_to_string(&recipe).unwrap(), expected);
    // The download is in the upstream cache, for the build that follows.
    let cached: serde_json::Value = serde_json::from_str(&ok(&[
        "cache",
        "size",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert!(cached["dirs"][0]["bytes"].as_u64().unwrap() > 0, "{cached}");

    // -y with -o: the recipe stays, the output gets the update (no bump with --no-bump).
    let out = dir.path().join("new.yaml");
    ok(&[
        "-y",
        "recipe",
        "update",
        recipe.to_str().unwrap(),
        "--ver",
        "2.1",
        "--no-bump",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(fs::read_to_string(&recipe).unwrap(), expected);
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        expected.replace("version     : 2.0", "version     : 2.1")
    );
    // Nothing to change is refused with the fix.
    let nothing = boulder(&["-y", "recipe", "update", recipe.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("--ver VERSION"));
}

fn write(path: &Path, bytes: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, vec![b'x'; bytes]).unwrap();
}

#[test]
fn cache_size_and_clean_stay_inside_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let outside = dir.path().join("outside");
    write(&outside.join("precious"), 1000);
    write(&cache.join("upstreams/fetched/ab/cd/abcd"), 300);
    write(&cache.join("work/demo/root/usr/bin/tool"), 200);
    // A kept build root has read-only directories and links out of it.
    symlink(&outside, cache.join("work/demo/root/link-out")).unwrap();
    let readonly = cache.join("work/demo/root/usr");
    fs::set_permissions(&readonly, fs::Permissions::from_mode(0o555)).unwrap();
    let cache_dir = cache.to_str().unwrap();

    let sizes: serde_json::Value = serde_json::from_str(&ok(&[
        "cache",
        "size",
        "--cache-dir",
        cache_dir,
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(sizes["total_bytes"], 500, "{sizes}");
    let dirs = sizes["dirs"].as_array().unwrap();
    assert_eq!(dirs[0]["name"], "upstreams");
    assert_eq!(dirs[0]["bytes"], 300);
    assert_eq!(dirs[1]["bytes"], 200);
    assert_eq!(dirs[2]["exists"], false);
    let human = ok(&["cache", "size", "--cache-dir", cache_dir]);
    assert!(
        human.contains("total") && human.contains("500 B"),
        "{human}"
    );

    ok(&["cache", "clean", "work", "--cache-dir", cache_dir]);
    assert!(!cache.join("work").exists());
    assert!(cache.join("upstreams/fetched/ab/cd/abcd").is_file());
    assert_eq!(fs::read(outside.join("precious")).unwrap().len(), 1000);

    ok(&["cache", "clean", "--cache-dir", cache_dir]);
    assert!(!cache.join("upstreams").exists());
    assert!(outside.join("precious").is_file());
    assert!(ok(&["cache", "clean", "--cache-dir", cache_dir]).contains("Nothing to clean"));

    // A cache directory that is a link is refused, and what it points to stays.
    symlink(&outside, cache.join("work")).unwrap();
    let refused = boulder(&["cache", "clean", "--cache-dir", cache_dir]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("symbolic link"));
    assert!(outside.join("precious").is_file());
}

/// The niceness a build's phase sees, from its verbose output.
fn build_niceness(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("stone.yaml");
    fs::write(
        &recipe,
        "name: niceness\nversion: 1\nrelease: 1\nhomepage: https://example.invalid\nlicense: MIT\n\
         summary: s\ndescription: d\ntoolchain: gnu\n\
         build: |\n    echo \"niceness=$(nice)\"\ninstall: |\n    install -Dm644 /dev/null %(installroot)/usr/share/niceness/empty\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let mut args = vec![
        "build",
        recipe.to_str().unwrap(),
        "--host-root",
        "--verbose",
        "--cache-dir",
        cache.to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = boulder(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("niceness="))
        .unwrap_or_else(|| panic!("no niceness line:\n{stderr}"))
        .to_owned()
}

#[test]
fn builds_run_at_the_lowest_priority_unless_normal_priority() {
    let caller = Command::new("nice").output().unwrap();
    let caller = String::from_utf8_lossy(&caller.stdout).trim().to_owned();
    assert_eq!(build_niceness(&[]), "19");
    assert_eq!(build_niceness(&["--normal-priority"]), caller);
}

//! `boulder profile list|add|update`, `boulder build --profile NAME` and `boulder chroot RECIPE`
//! through the real binary.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

const BOULDER: &str = env!("CARGO_BIN_EXE_boulder");

fn boulder(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BOULDER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The example stones indexed in `directory/repo`; returns the index URI.
fn example_repository(directory: &Path) -> String {
    let repository = directory.join("repo");
    std::fs::create_dir_all(&repository).unwrap();
    let stones = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/stones");
    for entry in std::fs::read_dir(stones).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|extension| extension == "stone")
        {
            std::fs::copy(&path, repository.join(path.file_name().unwrap())).unwrap();
        }
    }
    let (ok, _, stderr) = boulder(&["index", repository.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    format!("file://{}/stone.index", repository.display())
}

#[test]
fn profiles_are_added_listed_updated_and_used_by_builds() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    let cache = work.path().join("cache");
    let [config, cache] = [&config, &cache].map(|path| path.to_str().unwrap().to_owned());
    let uri = example_repository(work.path());

    let (ok, stdout, stderr) = boulder(&["profile", "list", "--config-dir", &config]);
    assert!(ok && stdout.is_empty(), "{stderr}");
    assert!(stderr.contains("No build profiles yet"), "{stderr}");

    let examples = format!("name=examples,uri={uri},priority=10");
    let (ok, _, stderr) = boulder(&[
        "profile",
        "add",
        "local-x86_64",
        "--repo",
        &examples,
        "--repo",
        &format!("mirror={uri}"),
        "--config-dir",
        &config,
        "--cache-dir",
        &cache,
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("offer 6 packages"), "{stderr}");
    let file = PathBuf::from(&config).join("profile.d/local-x86_64.kdl");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("priority 10"), "{text}");

    let (ok, stdout, _) = boulder(&["profile", "list", "--config-dir", &config]);
    assert!(ok);
    assert_eq!(
        stdout,
        format!("local-x86_64:\n - examples = {uri} [10]\n - mirror = {uri} [0]\n")
    );
    let (ok, stdout, _) = boulder(&[
        "profile",
        "list",
        "--format",
        "json",
        "--config-dir",
        &config,
    ]);
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed[0]["name"], "local-x86_64");
    assert_eq!(listed[0]["repositories"][0]["id"], "examples");

    let (ok, _, stderr) = boulder(&[
        "profile",
        "update",
        "-p",
        "local-x86_64",
        "--config-dir",
        &config,
        "--cache-dir",
        &cache,
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("Profile local-x86_64 updated"), "{stderr}");

    let (ok, _, stderr) = boulder(&["profile", "update", "-p", "nope", "--config-dir", &config]);
    assert!(!ok);
    assert!(
        stderr.contains("there is no build profile `nope`"),
        "{stderr}"
    );
    let (ok, _, stderr) = boulder(&[
        "profile",
        "add",
        "bad",
        "--repo",
        "name=x",
        "--config-dir",
        &config,
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("both name= and uri= are needed"),
        "{stderr}"
    );

    // A build with the profile composes its root from the profile's repositories (the
    // example stones lack the build tools, so composing the root fails, naming one).
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes/motd");
    let output_dir = work.path().join("out");
    std::fs::create_dir_all(&output_dir).unwrap();
    let (ok, _, stderr) = boulder(&[
        "build",
        recipe.to_str().unwrap(),
        "--profile",
        "local-x86_64",
        "--config-dir",
        &config,
        "--cache-dir",
        &cache,
        "-o",
        output_dir.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("build root: moss engine from examples, mirror"),
        "{stderr}"
    );
    let (ok, _, stderr) = boulder(&[
        "build",
        recipe.to_str().unwrap(),
        "--profile",
        "nope",
        "--config-dir",
        &config,
    ]);
    assert!(
        !ok && stderr.contains("there is no build profile `nope`"),
        "{stderr}"
    );
}

#[test]
fn chroot_opens_a_shell_in_the_kept_build_root() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let output_dir = work.path().join("out");
    std::fs::create_dir_all(&output_dir).unwrap();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes/motd");
    let [recipe, cache, output_dir] =
        [&recipe, &cache, &output_dir].map(|path| path.to_str().unwrap().to_owned());

    let (ok, _, stderr) = boulder(&["chroot", &recipe, "--cache-dir", &cache]);
    assert!(!ok);
    assert!(
        stderr.contains("there is no build root for motd"),
        "{stderr}"
    );
    assert!(stderr.contains("--keep-work"), "{stderr}");

    let (ok, _, stderr) = boulder(&[
        "build",
        &recipe,
        "--host-root",
        "--keep-work",
        "--cache-dir",
        &cache,
        "-o",
        &output_dir,
    ]);
    assert!(ok, "{stderr}");
    // The shell has the recipe's definitions and actions, the build's mounts, and its home.
    let (ok, stdout, stderr) = boulder(&[
        "chroot",
        &recipe,
        "--cache-dir",
        &cache,
        "--",
        "echo libdir=$d_libdir; type -t a_make; test -f /mason/recipe/stone.yaml && echo recipe; pwd",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("libdir=/usr/lib"), "{stdout}");
    assert!(stdout.contains("function\n"), "{stdout}");
    assert!(stdout.contains("recipe\n"), "{stdout}");
    assert!(stdout.contains("/mason/build/x86_64"), "{stdout}");
    let (ok, _, _) = boulder(&["chroot", &recipe, "--cache-dir", &cache, "--", "exit 3"]);
    assert!(!ok);
}

//! `boulder build` run inside the recipe directory, as a packager does: the default recipe
//! (`stone.yaml`, a bare file name whose parent is "") and a relative one resolve to the
//! current directory, its `file:` upstreams included.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

const BOULDER: &str = env!("CARGO_BIN_EXE_boulder");

/// A copy of the example recipe directory `name` under `into`.
fn copy_example(name: &str, into: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/recipes")
        .join(name);
    let output = Command::new("cp")
        .arg("-a")
        .arg(&source)
        .arg(into)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    into.join(name)
}

/// `boulder build ARGUMENTS --host-root` in `dir`; panics with the output when it fails.
fn build_in(dir: &Path, arguments: &[&str], cache: &Path) {
    let output = Command::new(BOULDER)
        .current_dir(dir)
        .arg("build")
        .args(arguments)
        .arg("--host-root")
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "boulder build {arguments:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn building_in_the_recipe_directory_without_a_recipe_argument() {
    let work = tempfile::tempdir().unwrap();
    // greet fetches its tarball from beside the recipe (`file:` upstream) and compiles with gcc.
    let recipe = copy_example("greet", work.path());
    build_in(&recipe, &[], &work.path().join("cache"));
    for stone in [
        "greet-1.0-1-1-x86_64.stone",
        "greet-libs-1.0-1-1-x86_64.stone",
        "manifest.x86_64.bin",
    ] {
        assert!(recipe.join(stone).is_file(), "{stone} was not written");
    }
}

#[test]
fn building_with_a_relative_recipe_path() {
    let work = tempfile::tempdir().unwrap();
    let recipe = copy_example("motd", work.path());
    build_in(
        &recipe,
        &["stone.yaml", "-o", "out"],
        &work.path().join("cache"),
    );
    assert!(recipe.join("out/motd-2026.11-1-1-x86_64.stone").is_file());
}

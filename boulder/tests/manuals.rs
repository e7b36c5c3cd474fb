//! `boulder generate man DIR` writes a page per command that `man -l` renders, and
//! `boulder generate completions SHELL` prints a script that bash loads.

use moss_manuals::checks::{completions_load, rendered_pages};

#[test]
fn man_pages_render_and_bash_completions_load() {
    let boulder = std::path::Path::new(env!("CARGO_BIN_EXE_boulder"));
    let pages = rendered_pages(boulder, &["generate", "man"]);
    let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["boulder.1", "boulder-build.1", "boulder-recipe.1"] {
        assert!(names.contains(&expected), "{expected}: {names:?}");
    }
    let build = &pages
        .iter()
        .find(|(name, _)| name == "boulder-build.1")
        .unwrap()
        .1;
    assert!(build.contains("--output"), "{build}");
    completions_load(boulder, &["generate", "completions"], "boulder");
}

//! `moss generate man DIR` writes a page per command that `man -l` renders, and
//! `moss generate completions SHELL` prints a script that bash loads.

use moss_manuals::checks::{completions_load, rendered_pages};

#[test]
fn man_pages_render_and_bash_completions_load() {
    let moss = std::path::Path::new(env!("CARGO_BIN_EXE_moss"));
    let pages = rendered_pages(moss, &["generate", "man"]);
    let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "moss.1",
        "moss-install.1",
        "moss-state-list.1",
        "moss-repo-add.1",
    ] {
        assert!(names.contains(&expected), "{expected}: {names:?}");
    }
    assert!(
        !names.iter().any(|name| name.contains("generate")),
        "{names:?}"
    );
    let install = &pages
        .iter()
        .find(|(name, _)| name == "moss-install.1")
        .unwrap()
        .1;
    assert!(install.contains("--dry-run"), "{install}");
    completions_load(moss, &["generate", "completions"], "moss");
}

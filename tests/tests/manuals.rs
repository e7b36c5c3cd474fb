//! `mossd --generate-man DIR` writes a page that `man -l` renders, without the internal
//! options, and `mossd --generate-completions bash` a script that bash loads.

use moss_manuals::checks::{completions_load, rendered_pages};
use moss_tests::bus::binaries;

#[test]
fn the_daemon_man_page_renders_and_its_completions_load() {
    let mossd = &binaries().0;
    let pages = rendered_pages(mossd, &["--generate-man"]);
    assert_eq!(pages.len(), 1);
    let (name, text) = &pages[0];
    assert_eq!(name, "mossd.1");
    assert!(text.contains("--idle-exit"), "{text}");
    assert!(
        !text.contains("read-as") && !text.contains("generate"),
        "{text}"
    );
    completions_load(mossd, &["--generate-completions"], "mossd");
}

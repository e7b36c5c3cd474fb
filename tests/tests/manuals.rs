//! `mossd --generate-man DIR` writes a page that `man -l` renders, and
//! `mossd --generate-completions bash` a script that bash loads.

use std::process::Command;

use moss_tests::bus::binaries;

#[test]
fn the_daemon_man_page_renders_and_its_completions_load() {
    let mossd = &binaries().0;
    let directory = tempfile::tempdir().unwrap();
    let status = Command::new(mossd)
        .arg("--generate-man")
        .arg(directory.path())
        .status()
        .unwrap();
    assert!(status.success());
    let output = Command::new("man")
        .arg("-l")
        .arg(directory.path().join("mossd.1"))
        .env("MANWIDTH", "80")
        .output()
        .expect("man (apt-get install man-db)");
    assert!(
        output.status.success() && !output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Internal and packaging options stay out of the page.
    let page = std::fs::read_to_string(directory.path().join("mossd.1")).unwrap();
    assert!(page.contains("idle"), "{page}");
    assert!(
        !page.contains("read\\-as") && !page.contains("generate"),
        "{page}"
    );
    let script = Command::new(mossd)
        .args(["--generate-completions", "bash"])
        .output()
        .unwrap();
    let path = directory.path().join("mossd.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p mossd", path.display()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("-F _mossd mossd"));
}

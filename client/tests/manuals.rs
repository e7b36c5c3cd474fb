//! `moss generate man DIR` writes a page per command that `man -l` renders, and
//! `moss generate completions SHELL` prints a script that bash loads.

use std::process::Command;

#[test]
fn man_pages_render_and_bash_completions_load() {
    let moss = env!("CARGO_BIN_EXE_moss");
    let directory = tempfile::tempdir().unwrap();
    let status = Command::new(moss)
        .args(["generate", "man"])
        .arg(directory.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut pages: Vec<String> = std::fs::read_dir(directory.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "moss.1",
        "moss-install.1",
        "moss-state-list.1",
        "moss-repo-add.1",
    ] {
        assert!(
            pages.iter().any(|page| page == expected),
            "{expected}: {pages:?}"
        );
    }
    assert!(
        !pages.iter().any(|page| page.contains("generate")),
        "{pages:?}"
    );
    for page in &pages {
        let output = Command::new("man")
            .arg("-l")
            .arg(directory.path().join(page))
            .env("MANWIDTH", "80")
            .output()
            .expect("man (apt-get install man-db)");
        let text = plain(&output.stdout);
        assert!(
            output.status.success() && text.contains("NAME"),
            "{page}: {text}"
        );
    }
    let install = Command::new("man")
        .arg("-l")
        .arg(directory.path().join("moss-install.1"))
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    assert!(plain(&install.stdout).contains("--dry-run"));

    let script = directory.path().join("moss.bash");
    let output = Command::new(moss)
        .args(["generate", "completions", "bash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    std::fs::write(&script, &output.stdout).unwrap();
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p moss", script.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("-F _moss moss"),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    for shell in ["zsh", "fish"] {
        let output = Command::new(moss)
            .args(["generate", "completions", shell])
            .output()
            .unwrap();
        assert!(
            output.status.success() && output.stdout.len() > 1000,
            "{shell}"
        );
    }
}

/// man's output without overstrike (bold and underline as `c\bc`).
fn plain(bytes: &[u8]) -> String {
    let mut text: Vec<char> = Vec::new();
    for character in String::from_utf8_lossy(bytes).chars() {
        if character == '\u{8}' {
            text.pop();
            continue;
        }
        text.push(character);
    }
    // An overstruck character stands twice around the backspace: keep the second.
    text.into_iter().collect()
}

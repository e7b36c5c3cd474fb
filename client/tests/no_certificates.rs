//! A system without CA certificates (the VM test's freshly booted image, an initrd) still uses
//! `file://` repositories: the HTTP client's failure is reported only when an HTTP URL is
//! fetched. Found by the VM test, where every transaction failed with "No CA certificates were
//! loaded from the system".

use std::{
    fs,
    process::{Command, Output},
};

fn moss(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moss"))
        .args(arguments)
        .env("NO_COLOR", "1")
        // rustls-native-certs reads only these when they are set: no certificates at all.
        .env("SSL_CERT_FILE", "/nonexistent/moss-test-certificates.pem")
        .env("SSL_CERT_DIR", "/nonexistent/moss-test-certificates")
        .output()
        .expect("the moss binary runs")
}

#[test]
fn file_repositories_work_without_certificates_and_https_says_why_not() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let root = work.path().join("root");
    fs::create_dir_all(&repo).unwrap();
    fs::create_dir_all(&root).unwrap();
    let (repo_text, root_text) = (repo.to_str().unwrap(), root.to_str().unwrap());
    let indexed = moss(&["index", repo_text]);
    assert!(indexed.status.success(), "{indexed:?}");

    let uri = format!("file://{repo_text}/stone.index");
    let added = moss(&[
        "-D",
        root_text,
        "repo",
        "add",
        "on-disk",
        &uri,
        "--unsigned",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let remote = moss(&[
        "-D",
        root_text,
        "repo",
        "add",
        "remote",
        "https://127.0.0.1:9/stone.index",
        "--unsigned",
    ]);
    assert!(!remote.status.success());
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(stderr.contains("HTTP client"), "{stderr}");
}

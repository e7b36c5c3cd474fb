//! Signed repositories through the `moss` binary: `index --sign`, `repo add --key/--unsigned`,
//! `repo list` and a refused refresh.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

use moss::repository::signing::{generate_key_pair, parse_claims, parse_public_key, unix_now};
use serde_json::Value;

fn moss(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moss"))
        .args(arguments)
        .env("NO_COLOR", "1")
        .output()
        .expect("the moss binary runs")
}

fn ok(arguments: &[&str]) -> String {
    let output = moss(arguments);
    assert!(
        output.status.success(),
        "moss {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn signed_repository_end_to_end() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let root = work.path().join("root");
    fs::create_dir_all(&repo).unwrap();
    fs::create_dir_all(&root).unwrap();
    let stones = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/stones");
    let pizza = "italian-pizza-1-1-1-x86_64.stone";
    fs::copy(stones.join(pizza), repo.join(pizza)).unwrap();
    let (public, secret) = generate_key_pair().unwrap();
    let (public_path, secret_path) = (work.path().join("key.pub"), work.path().join("key.sec"));
    fs::write(&public_path, &public).unwrap();
    fs::write(&secret_path, &secret).unwrap();

    ok(&[
        "index",
        text(&repo),
        "--sign",
        text(&secret_path),
        "--expires-in",
        "2",
    ]);
    let signature = fs::read_to_string(repo.join("stone.index.minisig")).unwrap();
    let comment = signature
        .lines()
        .find_map(|line| line.strip_prefix("trusted comment: "))
        .unwrap();
    let claims = parse_claims(comment).unwrap();
    assert_eq!(claims.expires - claims.timestamp, 2 * 86_400);
    assert!(claims.timestamp.abs_diff(unix_now()) < 600);

    let uri = format!("file://{}", text(&repo.join("stone.index")));
    let root = text(&root);
    let refused = moss(&["-D", root, "repo", "add", "main", &uri]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--key") && stderr.contains("--unsigned"),
        "{stderr}"
    );

    ok(&[
        "-D",
        root,
        "repo",
        "add",
        "main",
        &uri,
        "--key",
        text(&public_path),
    ]);
    let list: Value =
        serde_json::from_str(&ok(&["-D", root, "repo", "list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["signed"], true);
    assert_eq!(
        list[0]["keys"][0],
        parse_public_key(&public).unwrap().as_str()
    );
    assert!(ok(&["-D", root, "repo", "list"]).contains("(signed)"));
    let config = fs::read_to_string(work.path().join("root/etc/moss/repo.d/main.kdl")).unwrap();
    assert!(config.contains("keys"), "{config}");

    // A tampered signature is refused with the repository named; the index stays available.
    fs::write(
        repo.join("stone.index.minisig"),
        signature.replace("expires:", "expires:9"),
    )
    .unwrap();
    fs::copy(
        stones.join("pineapple-1-1-1-x86_64.stone"),
        repo.join("p.stone"),
    )
    .unwrap();
    ok(&["index", text(&repo)]);
    let failed = moss(&["-D", root, "repo", "update"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("`main`") && stderr.contains("previous index is kept"),
        "{stderr}"
    );
    let available = ok(&["-D", root, "list", "available"]);
    assert!(available.contains("italian-pizza"), "{available}");
    assert!(
        !available
            .lines()
            .any(|line| line.trim_start().starts_with("pineapple")),
        "{available}"
    );
}

//! The `moss` binary: `inspect` output (JSON contract and human text, snapshotted), exit codes
//! and error messages for corrupt input, and `extract`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;
use stone::{FileType, Writer};

/// The `shared/` directory beside the repository: the nearest ancestor holding `shared/fixtures`.
fn shared() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|shared| shared.join("fixtures").is_dir())
        .expect("shared/fixtures beside the repository")
}

fn stone_fixture(name: &str) -> PathBuf {
    shared().join("fixtures/stones").join(name)
}

fn pizza() -> PathBuf {
    stone_fixture("italian-pizza-1-1-1-x86_64.stone")
}

fn moss(arguments: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moss"))
        .args(arguments)
        .env("NO_COLOR", "1")
        .output()
        .expect("the moss binary runs")
}

fn inspect_json(files: &[&Path]) -> Value {
    let mut arguments: Vec<&std::ffi::OsStr> =
        vec!["inspect".as_ref(), "--format".as_ref(), "json".as_ref()];
    arguments.extend(files.iter().map(|path| path.as_os_str()));
    let output = moss(&arguments);
    assert!(
        output.status.success(),
        "moss inspect failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("inspect prints JSON")
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

const PACKAGE_KEYS: [&str; 14] = [
    "architecture",
    "build_depends",
    "build_release",
    "conflicts",
    "depends",
    "description",
    "homepage",
    "licenses",
    "name",
    "provides",
    "release",
    "source_id",
    "summary",
    "version",
];

#[test]
fn inspect_json_of_pizza_matches_the_contract() {
    let mut report = inspect_json(&[&pizza()]);
    assert_eq!(report["path"], pizza().display().to_string());
    assert_eq!(
        keys(&report),
        ["file_type", "layout", "packages", "path", "payloads"]
    );
    assert_eq!(report["file_type"], "binary");
    let package = &report["packages"][0];
    assert_eq!(keys(package), PACKAGE_KEYS);
    assert_eq!(package["name"], "italian-pizza");
    assert_eq!(package["conflicts"], serde_json::json!(["name(pineapple)"]));
    assert_eq!(package["release"], 1);
    let layout = report["layout"].as_array().unwrap();
    assert_eq!(layout.len(), 1);
    assert_eq!(
        keys(&layout[0]),
        ["digest", "gid", "mode", "path", "type", "uid"]
    );
    assert_eq!(layout[0]["path"], "/usr/share/defaults/italian-pizza");
    assert_eq!(layout[0]["digest"], "99aa06d3014798d86001c324468d497f");
    let payloads = report["payloads"].as_array().unwrap();
    let kinds: Vec<&str> = payloads
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["meta", "layout", "index", "content"]);

    report["path"] = Value::from("[pizza]");
    insta::assert_json_snapshot!("inspect_pizza_json", report);
}

#[test]
fn inspect_json_layout_of_bash_completion() {
    let report = inspect_json(&[&stone_fixture("bash-completion-2.11-1-1-x86_64.stone")]);
    let layout = report["layout"].as_array().unwrap();
    assert_eq!(layout.len(), 745);
    let mut counts = (0, 0);
    for entry in layout {
        let path = entry["path"].as_str().unwrap();
        assert!(path.starts_with("/usr/share/"), "{path}");
        assert!(!path.contains('\0'), "{path:?}");
        assert_eq!(
            (entry["uid"].as_u64(), entry["gid"].as_u64()),
            (Some(0), Some(0))
        );
        match entry["type"].as_str().unwrap() {
            "regular" => {
                counts.0 += 1;
                assert_eq!(
                    keys(entry),
                    ["digest", "gid", "mode", "path", "type", "uid"]
                );
                let digest = entry["digest"].as_str().unwrap();
                assert_eq!(digest.len(), 32, "digests are zero-padded: {digest}");
                assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
                assert_eq!(entry["mode"], 0o100644);
            }
            "symlink" => {
                counts.1 += 1;
                assert_eq!(
                    keys(entry),
                    ["gid", "mode", "path", "target", "type", "uid"]
                );
                let target = entry["target"].as_str().unwrap();
                assert!(!target.is_empty() && !target.contains('\0'), "{target:?}");
                assert_eq!(entry["mode"], 0o120777);
            }
            other => panic!("unexpected type {other}"),
        }
    }
    assert_eq!(counts, (474, 271));
    assert_eq!(
        layout[3]["path"],
        "/usr/share/bash-completion/completions/7za"
    );
    assert_eq!(layout[3]["target"], "7z");
    // A digest with a leading zero byte keeps it in the JSON (unlike the asset key).
    assert!(
        layout
            .iter()
            .any(|e| e["digest"] == "009e284063682c78bdef54eba751f7a8")
    );
    let payloads = report["payloads"].as_array().unwrap();
    assert_eq!(
        keys(&payloads[0]),
        [
            "checksum",
            "compression",
            "kind",
            "plain_size",
            "records",
            "stored_size"
        ]
    );
    assert_eq!(payloads[3]["checksum"], "f99daf817c7da14c");
    assert_eq!(payloads[3]["plain_size"], 872_279);
    assert_eq!(payloads[1]["records"], 745);
}

#[test]
fn inspect_json_of_a_build_manifest() {
    let manifest = shared().join("fixtures/recipes/a/accountsservice/manifest.x86_64.bin");
    let report = inspect_json(&[&manifest]);
    assert_eq!(report["file_type"], "buildmanifest");
    assert_eq!(keys(&report), ["file_type", "packages", "path"]);
    let package = &report["packages"][0];
    assert_eq!(keys(package), PACKAGE_KEYS);
    assert_eq!(package["name"], "accountsservice");
    let texts = |key: &str| -> Vec<&str> {
        package[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect()
    };
    assert!(texts("depends").contains(&"soname(libc.so.6(x86_64))"));
    assert!(texts("depends").contains(&"interpreter(/usr/lib/ld-linux-x86-64.so.2(x86_64))"));
    assert!(texts("build_depends").contains(&"pkgconfig(glib-2.0)"));
    assert!(texts("build_depends").contains(&"binary(msgfmt)"));
    assert!(
        texts("build_depends")
            .iter()
            .all(|text| text.contains('(') && text.ends_with(')'))
    );
}

#[test]
fn inspect_json_of_a_repository_index() {
    let work = tempfile::tempdir().unwrap();
    let archive = stone::Archive::open(pizza()).unwrap();
    let mut package = archive.packages().unwrap().remove(0);
    let bytes = std::fs::read(pizza()).unwrap();
    let hash = "8c3c3d0b1f4fa3d1f4b2e1aa2f0c1b9e0b9d8f6a5e4d3c2b1a09f8e7d6c5b4a3";
    package.uri = Some("i/italian-pizza-1-1-1-x86_64.stone".into());
    package.hash = Some(hash.into());
    package.size = Some(bytes.len() as u64);
    let mut writer = Writer::new(FileType::Repository);
    writer.add_meta(package.to_records());
    let index = work.path().join("stone.index");
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    std::fs::write(&index, out).unwrap();

    let report = inspect_json(&[&index]);
    assert_eq!(report["file_type"], "repository");
    assert_eq!(keys(&report), ["file_type", "packages", "path"]);
    let entry = &report["packages"][0];
    assert_eq!(entry["uri"], "i/italian-pizza-1-1-1-x86_64.stone");
    assert_eq!(entry["hash"], hash);
    assert_eq!(entry["size"], 443);
    assert_eq!(entry["name"], "italian-pizza");

    // Several files give an array, in argument order.
    let both = inspect_json(&[&index, &pizza()]);
    let both = both.as_array().expect("an array for several files");
    assert_eq!(both.len(), 2);
    assert_eq!(both[0]["file_type"], "repository");
    assert_eq!(both[1]["file_type"], "binary");
}

#[test]
fn inspect_human_output_of_pizza() {
    let output = moss(&["inspect".as_ref(), pizza().as_os_str()]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let pizza_path = pizza().display().to_string();
    assert!(
        text.starts_with(&format!("{pizza_path} (binary)")),
        "{text}"
    );
    insta::assert_snapshot!("inspect_pizza_human", text.replace(&pizza_path, "[pizza]"));
}

#[test]
fn corrupt_input_exits_65_naming_the_file() {
    let work = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(pizza()).unwrap();
    bytes[40] ^= 0xff; // inside the meta payload's header: its plain size
    let corrupt = work.path().join("corrupt.stone");
    std::fs::write(&corrupt, &bytes).unwrap();
    for format in ["human", "json"] {
        let output = moss(&[
            "inspect".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            corrupt.as_os_str(),
        ]);
        assert_eq!(output.status.code(), Some(65), "{format}");
        assert!(output.stdout.is_empty(), "no partial report on stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error:"), "{stderr}");
        assert!(stderr.contains(&corrupt.display().to_string()), "{stderr}");
        assert!(stderr.contains("payload #0 (meta)"), "{stderr}");
    }

    // Truncated, not a stone at all, missing.
    let truncated = work.path().join("truncated.stone");
    std::fs::write(&truncated, &bytes[..100]).unwrap();
    let output = moss(&["inspect".as_ref(), truncated.as_os_str()]);
    assert_eq!(output.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("truncated.stone") && stderr.contains("truncated"),
        "{stderr}"
    );

    let text = work.path().join("README");
    std::fs::write(&text, "This is not a package at all, just a text file.\n").unwrap();
    let output = moss(&["inspect".as_ref(), text.as_os_str()]);
    assert_eq!(output.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a stone archive"));

    let missing = work.path().join("missing.stone");
    let output = moss(&["inspect".as_ref(), missing.as_os_str()]);
    assert_eq!(output.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.stone"));

    // One bad file among good ones fails the whole command.
    let output = moss(&["inspect".as_ref(), pizza().as_os_str(), corrupt.as_os_str()]);
    assert_eq!(output.status.code(), Some(65));
}

#[test]
fn extract_command_unpacks_and_refuses_to_overwrite() {
    let work = tempfile::tempdir().unwrap();
    let destination = work.path().join("out");
    let pizza = pizza();
    let arguments: [&std::ffi::OsStr; 4] = [
        "extract".as_ref(),
        pizza.as_os_str(),
        "--to".as_ref(),
        destination.as_os_str(),
    ];
    let output = moss(&arguments);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = destination.join("usr/share/defaults/italian-pizza");
    assert_eq!(std::fs::read(&file).unwrap(), b"");

    let output = moss(&arguments);
    assert_eq!(output.status.code(), Some(73));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert!(file.exists());
}

//! Hostile and broken packages are refused before anything is written; the error names the
//! package, the entry and the rule. Setuid files install, but their bits never reach the store.

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use moss::{Moss, db::Selection, events::Silent};
use stone::{
    ArchiveHeader, Compression, ContentSource, Entry, FileType, IndexEntry, Layout, Package,
    PayloadHeader, PayloadKind, Writer,
};

fn package(name: &str) -> Package {
    Package {
        name: name.into(),
        version: "1".into(),
        release: 1,
        build_release: 1,
        architecture: "x86_64".into(),
        summary: "test".into(),
        description: "test".into(),
        homepage: "https://example.invalid".into(),
        licenses: vec!["MPL-2.0".into()],
        source_id: name.into(),
        ..Package::default()
    }
}

fn regular(target: &str, digest: u128, mode: u32) -> Layout {
    Layout {
        uid: 0,
        gid: 0,
        mode,
        tag: 0,
        entry: Entry::Regular {
            digest,
            target: target.into(),
        },
    }
}

fn symlink(target: &str, source: &str) -> Layout {
    Layout {
        uid: 0,
        gid: 0,
        mode: 0o120777,
        tag: 0,
        entry: Entry::Symlink {
            source: source.into(),
            target: target.into(),
        },
    }
}

/// A well-formed stone from files `(target, mode, body)` and extra layout records.
fn stone(path: &Path, name: &str, files: &[(&str, u32, &[u8])], extra: &[Layout]) {
    let mut writer = Writer::new(FileType::Binary);
    writer.add_meta(package(name).to_records());
    for (target, mode, body) in files {
        writer
            .add_file(*target, *mode, ContentSource::Bytes(body.to_vec()))
            .unwrap();
    }
    for layout in extra {
        writer.add_layout(layout.clone());
    }
    writer.write(fs::File::create(path).unwrap()).unwrap();
}

/// A stone assembled by hand (uncompressed payloads), so that it can lie.
fn raw_stone(path: &Path, name: &str, layouts: &[Layout], index: &[IndexEntry], content: &[u8]) {
    let mut payloads: Vec<(PayloadKind, u32, Vec<u8>)> = Vec::new();
    let mut meta = Vec::new();
    let records = package(name).to_records();
    for record in &records {
        record.encode(&mut meta);
    }
    payloads.push((PayloadKind::Meta, records.len() as u32, meta));
    let mut layout_bytes = Vec::new();
    for layout in layouts {
        layout.encode(&mut layout_bytes).unwrap();
    }
    payloads.push((PayloadKind::Layout, layouts.len() as u32, layout_bytes));
    let mut index_bytes = Vec::new();
    for entry in index {
        entry.encode(&mut index_bytes);
    }
    payloads.push((PayloadKind::Index, index.len() as u32, index_bytes));
    payloads.push((PayloadKind::Content, 0, content.to_vec()));
    let mut out = ArchiveHeader {
        num_payloads: payloads.len() as u16,
        file_type: FileType::Binary,
    }
    .encode()
    .to_vec();
    for (kind, num_records, body) in payloads {
        let header = PayloadHeader {
            stored_size: body.len() as u64,
            plain_size: body.len() as u64,
            checksum: xxhash_rust::xxh3::xxh3_64(&body),
            num_records,
            version: 1,
            kind,
            compression: Compression::None,
        };
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&body);
    }
    fs::write(path, out).unwrap();
}

struct Fixture {
    _work: tempfile::TempDir,
    directory: PathBuf,
    root: PathBuf,
    moss: Moss,
}

async fn fixture() -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let moss = Moss::open(&root, Arc::new(Silent)).await.unwrap();
    Fixture {
        directory: work.path().to_owned(),
        _work: work,
        root,
        moss,
    }
}

fn store_files(root: &Path) -> usize {
    fn count(path: &Path) -> usize {
        fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| {
                        if entry.path().is_dir() {
                            count(&entry.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&root.join(".moss/assets"))
}

async fn refused(fixture: &Fixture, stone_path: &Path, expected: &[&str]) {
    let error = fixture
        .moss
        .add_stones(vec![(stone_path.to_owned(), None, "local".into())])
        .await
        .unwrap_err()
        .to_string();
    for fragment in expected {
        assert!(
            error.contains(fragment),
            "`{fragment}` missing from: {error}"
        );
    }
    assert_eq!(
        store_files(&fixture.root),
        0,
        "nothing may enter the store: {error}"
    );
    assert!(fixture.moss.database().packages().await.unwrap().is_empty());
}

#[tokio::test]
async fn path_escapes_and_duplicates_are_refused_naming_package_entry_and_rule() {
    let fixture = fixture().await;
    let cases: Vec<(&str, Vec<Layout>, Vec<&str>)> = vec![
        (
            "dotdot",
            vec![regular("../etc/passwd", stone::EMPTY_DIGEST, 0o100644)],
            vec!["dotdot", "../etc/passwd", "`..`"],
        ),
        (
            "absolute",
            vec![regular("/etc/shadow", stone::EMPTY_DIGEST, 0o100644)],
            vec!["absolute", "/etc/shadow", "absolute path"],
        ),
        (
            "twice",
            vec![
                regular("bin/tool", stone::EMPTY_DIGEST, 0o100644),
                regular("bin/tool", stone::EMPTY_DIGEST, 0o100755),
            ],
            vec!["twice", "bin/tool", "twice in the layout"],
        ),
    ];
    for (name, layouts, expected) in cases {
        let path = fixture.directory.join(format!("{name}.stone"));
        let index = [IndexEntry {
            start: 0,
            end: 0,
            digest: stone::EMPTY_DIGEST,
        }];
        raw_stone(&path, name, &layouts, &index, &[]);
        refused(&fixture, &path, &expected).await;
    }
}

#[tokio::test]
async fn missing_digests_bad_content_truncation_and_absurd_counts_are_refused() {
    let fixture = fixture().await;
    let body = b"hello world, this is a file body";
    let digest = stone::digest(body);
    // A layout entry whose content the index does not carry.
    let path = fixture.directory.join("missing.stone");
    raw_stone(
        &path,
        "missing",
        &[regular("bin/a", digest, 0o100755)],
        &[],
        &[],
    );
    refused(
        &fixture,
        &path,
        &["missing", "bin/a", "index does not carry"],
    )
    .await;
    // Content that does not hash to its digest.
    let path = fixture.directory.join("liar.stone");
    let index = [IndexEntry {
        start: 0,
        end: body.len() as u64,
        digest,
    }];
    let mut tampered = body.to_vec();
    tampered[0] ^= 1;
    raw_stone(
        &path,
        "liar",
        &[regular("bin/a", digest, 0o100755)],
        &index,
        &tampered,
    );
    refused(&fixture, &path, &["liar.stone", "content", "hashes to"]).await;
    // A truncated package.
    let good = fixture.directory.join("good.stone");
    stone(&good, "good", &[("bin/a", 0o100755, body)], &[]);
    let bytes = fs::read(&good).unwrap();
    let truncated = fixture.directory.join("truncated.stone");
    fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    refused(&fixture, &truncated, &["truncated.stone", "truncated"]).await;
    // An absurd record count in the layout payload header.
    let mut absurd = bytes.clone();
    let meta_stored = u64::from_be_bytes(absurd[32..40].try_into().unwrap()) as usize;
    let layout_header = 32 + 32 + meta_stored;
    absurd[layout_header + 24..layout_header + 28].copy_from_slice(&u32::MAX.to_be_bytes());
    let path = fixture.directory.join("absurd.stone");
    fs::write(&path, absurd).unwrap();
    refused(
        &fixture,
        &path,
        &["absurd.stone", "record count", "exceeds"],
    )
    .await;
}

#[tokio::test]
async fn entries_through_a_symlink_out_of_usr_are_refused_before_writing() {
    let fixture = fixture().await;
    let path = fixture.directory.join("escape.stone");
    stone(
        &path,
        "escape",
        &[("share/evil/passwd", 0o100644, b"root::0:0")],
        &[symlink("share/evil", "../../etc")],
    );
    let unpacked = fixture
        .moss
        .add_stones(vec![(path, None, "local".into())])
        .await
        .unwrap();
    let selections = vec![Selection {
        package: unpacked[0].id.clone(),
        explicit: true,
        reason: None,
    }];
    let error = fixture
        .moss
        .apply(selections, "Install")
        .await
        .unwrap_err()
        .to_string();
    for fragment in ["escape", "share/evil/passwd", "leads out of /usr"] {
        assert!(
            error.contains(fragment),
            "`{fragment}` missing from: {error}"
        );
    }
    assert!(!fixture.root.join("usr").exists(), "nothing may be written");
    assert!(fixture.moss.states().await.unwrap().is_empty());
}

#[tokio::test]
async fn setuid_files_install_but_never_reach_the_store() {
    let fixture = fixture().await;
    let path = fixture.directory.join("su.stone");
    let body = b"#!/bin/sh\necho privileged\n";
    stone(
        &path,
        "su",
        &[("bin/su", 0o104755, body), ("bin/plain", 0o100755, body)],
        &[],
    );
    let unpacked = fixture
        .moss
        .add_stones(vec![(path, None, "local".into())])
        .await
        .unwrap();
    let selections = vec![Selection {
        package: unpacked[0].id.clone(),
        explicit: true,
        reason: None,
    }];
    fixture.moss.apply(selections, "Install").await.unwrap();
    let setuid = fs::metadata(fixture.root.join("usr/bin/su")).unwrap();
    assert_eq!(setuid.permissions().mode() & 0o7777, 0o4555);
    let asset = fixture.moss.store().asset_path(stone::digest(body));
    let stored = fs::metadata(&asset).unwrap();
    assert_eq!(
        stored.permissions().mode() & 0o7777,
        0o444,
        "the store keeps plain modes"
    );
    assert_ne!(
        setuid.ino(),
        stored.ino(),
        "a setuid file is a copy, not a link into the store"
    );
    for entry in walkdir(&fixture.root.join(".moss/assets")) {
        let mode = fs::metadata(&entry).unwrap().permissions().mode();
        assert_eq!(mode & 0o7000, 0, "{} carries special bits", entry.display());
    }
}

fn walkdir(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(path).unwrap().flatten() {
        if entry.path().is_dir() {
            files.extend(walkdir(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

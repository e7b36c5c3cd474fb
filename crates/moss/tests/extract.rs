//! `moss::extract`: a real package lands byte for byte; an existing tree is never overwritten
//! and never damaged; hostile layouts are refused before anything is created.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
};

use moss::{
    extract::{ExtractError, extract},
    stone::{self, Archive, ContentSource, Dependency, Entry, FileType, Layout, Package, Writer},
};

/// The `shared/` directory beside the repository: the nearest ancestor holding `shared/fixtures`.
fn shared() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|shared| shared.join("fixtures").is_dir())
        .expect("shared/fixtures beside the repository")
}

fn bash_completion() -> PathBuf {
    shared().join("fixtures/stones/bash-completion-2.11-1-1-x86_64.stone")
}

/// What is on disk under `root`: path → description (type, mode, content digest or link).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().to_owned();
            let mode = metadata.permissions().mode();
            let description = if metadata.file_type().is_symlink() {
                format!("symlink -> {}", fs::read_link(&path).unwrap().display())
            } else if metadata.is_dir() {
                stack.push(path);
                format!("dir {mode:o}")
            } else {
                format!(
                    "file {mode:o} {:032x}",
                    stone::digest(&fs::read(&path).unwrap())
                )
            };
            found.insert(relative, description);
        }
    }
    found
}

#[test]
fn bash_completion_extracts_byte_for_byte() {
    let destination = tempfile::tempdir().unwrap();
    let summary = extract(&bash_completion(), Some(destination.path())).unwrap();
    assert_eq!(summary.package.name, "bash-completion");
    assert_eq!(summary.destination, destination.path());
    assert_eq!((summary.files, summary.symlinks), (474, 271));
    assert_eq!(summary.bytes, 872_279);

    let usr = destination.path().join("usr");
    let archive = Archive::open(bash_completion()).unwrap();
    let mut expected_paths = 0;
    for layout in archive.layouts() {
        match &layout.entry {
            Entry::Regular { digest, target } => {
                let path = usr.join(target);
                let metadata = fs::symlink_metadata(&path).unwrap();
                assert!(metadata.is_file(), "{target} is not a regular file");
                assert_eq!(
                    stone::digest(&fs::read(&path).unwrap()),
                    *digest,
                    "{target}: content"
                );
                assert_eq!(
                    metadata.permissions().mode() & 0o7777,
                    layout.mode & 0o777,
                    "{target}: mode"
                );
            }
            Entry::Symlink { source, target } => {
                let path = usr.join(target);
                assert!(
                    fs::symlink_metadata(&path)
                        .unwrap()
                        .file_type()
                        .is_symlink(),
                    "{target} is not a symlink"
                );
                assert_eq!(fs::read_link(&path).unwrap(), Path::new(source), "{target}");
            }
            other => panic!("unexpected entry {other:?}"),
        }
        expected_paths += 1;
    }
    // Nothing but the package's entries (and their parent directories) was created.
    let on_disk = snapshot(destination.path());
    let leaves = on_disk
        .values()
        .filter(|description| !description.starts_with("dir "))
        .count();
    assert_eq!(leaves, expected_paths);
    assert_eq!(
        on_disk.values().filter(|d| d.starts_with("dir ")).count(),
        summary.directories
    );
}

#[test]
fn extracting_again_fails_and_deletes_nothing() {
    let destination = tempfile::tempdir().unwrap();
    extract(&bash_completion(), Some(destination.path())).unwrap();
    let before = snapshot(destination.path());

    let error = extract(&bash_completion(), Some(destination.path())).unwrap_err();
    assert!(matches!(error, ExtractError::Exists { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("already exists"), "{message}");
    assert!(
        message.contains(&destination.path().display().to_string()),
        "{message}"
    );
    assert_eq!(
        snapshot(destination.path()),
        before,
        "the second run changed the tree"
    );
}

#[test]
fn a_failure_midway_removes_only_what_this_run_created() {
    let destination = tempfile::tempdir().unwrap();
    let archive = Archive::open(bash_completion()).unwrap();
    // The body streamed last (the smallest): every other file is written before the clash.
    let last = archive
        .index()
        .max_by_key(|entry| entry.start)
        .unwrap()
        .digest;
    let target = archive
        .layouts()
        .find_map(|layout| match &layout.entry {
            Entry::Regular { digest, target } if *digest == last => Some(target.clone()),
            _ => None,
        })
        .unwrap();
    let mine = destination.path().join("usr").join(&target);
    fs::create_dir_all(mine.parent().unwrap()).unwrap();
    fs::write(&mine, b"mine, not the package's").unwrap();
    fs::write(destination.path().join("unrelated"), b"keep me").unwrap();
    let before = snapshot(destination.path());

    let error = extract(&bash_completion(), Some(destination.path())).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains(&target), "{message}");
    assert_eq!(snapshot(destination.path()), before);
    assert_eq!(fs::read(&mine).unwrap(), b"mine, not the package's");
}

fn hostile_package() -> Package {
    Package {
        name: "hostile".into(),
        version: "1".into(),
        release: 1,
        build_release: 1,
        architecture: "x86_64".into(),
        summary: "A package that wants out".into(),
        description: "Tries to escape /usr.".into(),
        homepage: "https://example.invalid".into(),
        licenses: vec!["MPL-2.0".into()],
        source_id: "hostile".into(),
        depends: vec![Dependency::name("victim")],
        ..Package::default()
    }
}

fn layout(mode: u32, entry: Entry) -> Layout {
    Layout {
        uid: 0,
        gid: 0,
        mode,
        tag: 0,
        entry,
    }
}

/// Write a package with a harmless file plus whatever `build` adds.
fn hostile_stone(dir: &Path, build: impl FnOnce(&mut Writer)) -> PathBuf {
    let mut writer = Writer::new(FileType::Binary);
    writer.add_meta(hostile_package().to_records());
    writer
        .add_file(
            "share/hostile/readme",
            0o100644,
            ContentSource::Bytes(b"innocent\n".to_vec()),
        )
        .unwrap();
    build(&mut writer);
    let path = dir.join("hostile-1-1-1-x86_64.stone");
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    fs::write(&path, out).unwrap();
    path
}

/// Extraction must fail with a layout error naming the package, the entry and the rule, and
/// leave `destination` (and `outside`) empty.
#[track_caller]
fn assert_refused(case: &str, stone_path: &Path, entry: &str, rule: &str) {
    let destination = tempfile::tempdir().unwrap();
    let error = extract(stone_path, Some(destination.path())).unwrap_err();
    assert!(
        matches!(error, ExtractError::Layout { .. }),
        "{case}: {error:?}"
    );
    let message = error.to_string();
    for needle in [
        "package hostile",
        &format!("`{entry}`"),
        rule,
        "nothing was extracted",
    ] {
        assert!(
            message.contains(needle),
            "{case}: `{message}` lacks `{needle}`"
        );
    }
    assert!(
        snapshot(destination.path()).is_empty(),
        "{case}: something was created"
    );
}

#[test]
fn hostile_layouts_are_refused_before_anything_is_created() {
    let work = tempfile::tempdir().unwrap();
    let stones = work.path();
    let body = |writer: &mut Writer, target: &str| {
        writer
            .add_file(target, 0o100644, ContentSource::Bytes(b"owned\n".to_vec()))
            .unwrap();
    };

    for target in ["../etc/passwd", "share/../../etc/passwd", "share/.."] {
        let path = hostile_stone(stones, |w| body(w, target));
        assert_refused(target, &path, target, "`..`");
    }
    let path = hostile_stone(stones, |w| body(w, "/etc/x"));
    assert_refused("absolute", &path, "/etc/x", "absolute path");
    let path = hostile_stone(stones, |w| body(w, "share//x"));
    assert_refused(
        "empty component",
        &path,
        "share//x",
        "empty or `.` component",
    );

    // A symlink placed outside /usr.
    let path = hostile_stone(stones, |w| {
        w.add_layout(layout(
            0o120777,
            Entry::Symlink {
                source: "/usr/bin/sh".into(),
                target: "../bin/sh".into(),
            },
        ));
    });
    assert_refused("symlink outside", &path, "../bin/sh", "`..`");

    // A directory outside /usr.
    let path = hostile_stone(stones, |w| {
        w.add_layout(layout(0o40755, Entry::Directory("/etc/cron.d".into())));
    });
    assert_refused("directory outside", &path, "/etc/cron.d", "absolute path");

    // One path, two different contents.
    let path = hostile_stone(stones, |w| {
        w.add_file(
            "share/hostile/readme",
            0o100644,
            ContentSource::Bytes(b"evil twin\n".to_vec()),
        )
        .unwrap();
    });
    assert_refused(
        "duplicate path",
        &path,
        "share/hostile/readme",
        "appears twice in the layout with different contents",
    );
    // One path, a file and a symlink.
    let path = hostile_stone(stones, |w| {
        w.add_layout(layout(
            0o120777,
            Entry::Symlink {
                source: "/etc/shadow".into(),
                target: "share/hostile/readme".into(),
            },
        ));
    });
    assert_refused(
        "file and symlink",
        &path,
        "share/hostile/readme",
        "appears twice",
    );

    // A regular entry whose digest the index does not carry. The writer refuses to write one
    // (it checks that every regular digest has content), so encode it as an opaque entry of
    // file type 1, which reads back as a regular file.
    let missing: u128 = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef;
    let path = hostile_stone(stones, |w| {
        w.add_layout(layout(
            0o100644,
            Entry::Unknown {
                file_type: 1,
                source: missing.to_be_bytes().to_vec(),
                target: b"share/hostile/ghost".to_vec(),
            },
        ));
    });
    let archive = Archive::open(&path).unwrap();
    assert!(archive.layouts().any(|l| l.entry
        == Entry::Regular {
            digest: missing,
            target: "share/hostile/ghost".into()
        }));
    assert_refused(
        "digest not in index",
        &path,
        "share/hostile/ghost",
        &format!("names content {missing:032x} that the package's index does not carry"),
    );
}

#[test]
fn identical_duplicate_records_are_harmless() {
    let work = tempfile::tempdir().unwrap();
    let path = hostile_stone(work.path(), |w| {
        // The same record twice: the rules accept it, so extraction must too.
        w.add_file(
            "share/hostile/readme",
            0o100644,
            ContentSource::Bytes(b"innocent\n".to_vec()),
        )
        .unwrap();
        let link = layout(
            0o120777,
            Entry::Symlink {
                source: "readme".into(),
                target: "share/hostile/link".into(),
            },
        );
        w.add_layout(link.clone());
        w.add_layout(link);
    });
    let destination = tempfile::tempdir().unwrap();
    let summary = extract(&path, Some(destination.path())).unwrap();
    assert_eq!((summary.files, summary.symlinks), (1, 1));
    let usr = destination.path().join("usr/share/hostile");
    assert_eq!(fs::read(usr.join("readme")).unwrap(), b"innocent\n");
    assert_eq!(
        fs::read_link(usr.join("link")).unwrap(),
        Path::new("readme")
    );
}

#[test]
fn nothing_is_written_through_symlinks() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();

    // The package links a directory elsewhere and then places a file "inside" it.
    let escape = outside.path().display().to_string();
    let path = hostile_stone(work.path(), |w| {
        w.add_layout(layout(
            0o120777,
            Entry::Symlink {
                source: escape.clone(),
                target: "share/escape".into(),
            },
        ));
        w.add_file(
            "share/escape/payload",
            0o100644,
            ContentSource::Bytes(b"planted\n".to_vec()),
        )
        .unwrap();
    });
    let destination = tempfile::tempdir().unwrap();
    if extract(&path, Some(destination.path())).is_ok() {
        // Allowed only if the file landed in a real directory, not through the link.
        let escape = destination.path().join("usr/share/escape");
        assert!(
            !fs::symlink_metadata(&escape)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    assert!(
        snapshot(outside.path()).is_empty(),
        "wrote through the package's symlink"
    );

    // A symlink already in the destination is not followed either.
    let path = hostile_stone(work.path(), |_| {});
    let destination = tempfile::tempdir().unwrap();
    fs::create_dir(destination.path().join("usr")).unwrap();
    symlink(outside.path(), destination.path().join("usr/share")).unwrap();
    let error = extract(&path, Some(destination.path())).unwrap_err();
    assert!(matches!(error, ExtractError::Exists { .. }), "{error:?}");
    assert!(
        snapshot(outside.path()).is_empty(),
        "wrote through an existing symlink"
    );
    assert!(
        fs::symlink_metadata(destination.path().join("usr/share"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn only_binary_packages_are_extracted() {
    let manifest = shared().join("fixtures/recipes/a/argon2/manifest.x86_64.bin");
    let destination = tempfile::tempdir().unwrap();
    let error = extract(&manifest, Some(destination.path())).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("is a buildmanifest stone, not a binary package"),
        "{message}"
    );
    assert!(message.contains("manifest.x86_64.bin"), "{message}");
    assert!(snapshot(destination.path()).is_empty());

    // A corrupt package: the stone error names the file, nothing is created.
    let work = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(bash_completion()).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    let corrupt = work.path().join("corrupt.stone");
    fs::write(&corrupt, bytes).unwrap();
    let error = extract(&corrupt, Some(destination.path())).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("corrupt.stone"), "{message}");
    assert!(message.contains("payload #3 (content)"), "{message}");
    assert!(
        snapshot(destination.path()).is_empty(),
        "a failed extraction left files"
    );
}

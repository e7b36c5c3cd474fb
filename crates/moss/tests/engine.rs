//! The engine core on a temporary root: unpack into the store, switch states, reuse archived
//! trees, roll back, prune, collect garbage and verify.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use moss::{
    Moss,
    blit::Blitter,
    db::Selection,
    events::Silent,
    vfs::{Kind, Vfs},
};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// Generate a small corpus of stones with the shared generator.
fn corpus(directory: &Path, packages: usize, seed: u64) -> Vec<PathBuf> {
    let status = Command::new("python3")
        .arg(shared().join("bench/stonegen.py"))
        .args(["--out"])
        .arg(directory)
        .args([
            "--packages",
            &packages.to_string(),
            "--seed",
            &seed.to_string(),
            "--files-per-package",
            "30",
            "--no-index",
        ])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "stonegen failed");
    let mut stones: Vec<PathBuf> = fs::read_dir(directory)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "stone")
        })
        .collect();
    stones.sort();
    stones
}

/// Every entry of a tree: type, mode, owner, link target or content hash.
fn snapshot(tree: &Path) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    walk(tree, tree, &mut entries);
    entries
}

fn walk(base: &Path, directory: &Path, entries: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(directory).unwrap().flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(base).unwrap().display().to_string();
        // Both are records of the state (its id and the system model it was built from), not
        // package content, so a full blit of the packages does not have them.
        if relative == ".stateID" || relative == "lib/system-model.kdl" {
            continue;
        }
        let metadata = fs::symlink_metadata(&path).unwrap();
        let description = if metadata.is_symlink() {
            format!("link {}", fs::read_link(&path).unwrap().display())
        } else if metadata.is_dir() {
            walk(base, &path, entries);
            format!(
                "dir {:o} {}:{}",
                metadata.mode(),
                metadata.uid(),
                metadata.gid()
            )
        } else {
            let content = fs::read(&path).unwrap();
            format!(
                "file {:o} {}:{} {:032x}",
                metadata.mode(),
                metadata.uid(),
                metadata.gid(),
                xxhash_rust::xxh3::xxh3_128(&content)
            )
        };
        entries.insert(relative, description);
    }
}

/// Two trees hold the same entries; a mismatch names only the entries that differ.
fn assert_same_tree(left: &Path, right: &Path) {
    let (left_entries, right_entries) = (snapshot(left), snapshot(right));
    let differences: Vec<String> = left_entries
        .keys()
        .chain(right_entries.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|key| left_entries.get(*key) != right_entries.get(*key))
        .map(|key| {
            format!(
                "{key}: {:?} != {:?}",
                left_entries.get(key),
                right_entries.get(key)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{} and {} differ:\n{}",
        left.display(),
        right.display(),
        differences.join("\n")
    );
}

fn selections(ids: &[String]) -> Vec<Selection> {
    ids.iter()
        .map(|id| Selection {
            package: id.clone(),
            explicit: true,
            reason: None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_switch_reuse_roll_back_prune_and_verify() {
    let work = tempfile::tempdir().unwrap();
    let stones = corpus(&work.path().join("corpus"), 12, 7);
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let moss = Moss::open(&root, Arc::new(Silent)).await.unwrap();
    let unpacked = moss
        .add_stones(
            stones
                .iter()
                .map(|path| (path.clone(), None, "local".to_owned()))
                .collect(),
        )
        .await
        .unwrap();
    let ids: Vec<String> = unpacked.iter().map(|package| package.id.clone()).collect();

    // State 1: everything but the last two packages, blitted in full.
    let first = moss.apply(selections(&ids[..10]), "Install").await.unwrap();
    assert_eq!(first.state, 1);
    assert_eq!(first.reused, None);
    assert_eq!(fs::read_to_string(root.join("usr/.stateID")).unwrap(), "1");
    // Every file has its content and mode (write bits stripped) in ROOT/usr.
    let vfs = moss.compose(&selections(&ids[..10])).await.unwrap();
    for (path, node) in vfs.iter() {
        let full = root.join("usr").join(path);
        let metadata = fs::symlink_metadata(&full).unwrap();
        match &node.kind {
            Kind::Regular(digest) => {
                assert_eq!(
                    xxhash_rust::xxh3::xxh3_128(&fs::read(&full).unwrap()),
                    *digest,
                    "{path}"
                );
                assert_eq!(
                    metadata.permissions().mode() & 0o7777,
                    node.mode & 0o7555,
                    "{path}"
                );
            }
            Kind::Symlink(target) => assert_eq!(fs::read_link(&full).unwrap(), Path::new(target)),
            Kind::Directory => assert!(metadata.is_dir()),
        }
    }
    assert_eq!(
        fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );

    // State 2: one more package. State 1's tree is archived.
    let second = moss.apply(selections(&ids[..11]), "Install").await.unwrap();
    assert_eq!(second.previous, Some(1));
    assert!(root.join(".moss/root/1/usr/.stateID").exists());

    // State 3: built from the archive of state 1 (the nearest tree), touching only differences.
    let third = moss.apply(selections(&ids), "Install").await.unwrap();
    assert_eq!(third.reused, Some(1));
    // The reused tree equals a full blit of the same state.
    let full = work.path().join("full-usr");
    let vfs3: Vfs = moss.compose(&selections(&ids)).await.unwrap();
    assert!(
        third.blit.removed == 0 && (third.blit.created as usize) < vfs3.len() / 2,
        "only the added packages' entries are created: {:?}",
        third.blit
    );
    Blitter::new(moss.store()).full(&vfs3, &full).unwrap();
    assert_same_tree(&root.join("usr"), &full);

    // Roll back to state 2, then forward again to 3 (rebuilt from the store or an archive).
    moss.activate(2).await.unwrap();
    assert_eq!(moss.active_state(), Some(2));
    assert!(
        !root
            .join("usr")
            .join(vfs3.iter().last().unwrap().0)
            .exists()
            || !vfs.is_empty()
    );
    moss.activate(3).await.unwrap();
    assert_same_tree(&root.join("usr"), &full);

    // Verify is clean; a damaged file is found and repaired.
    assert!(moss.verify().await.unwrap().is_empty());
    let victim = vfs3
        .iter()
        .find(
            |(_, node)| matches!(node.kind, Kind::Regular(digest) if digest != stone::EMPTY_DIGEST),
        )
        .map(|(path, _)| root.join("usr").join(path))
        .unwrap();
    fs::remove_file(&victim).unwrap();
    let issues = moss.verify().await.unwrap();
    assert!(
        issues.iter().any(|issue| issue.problem == "missing"),
        "{issues:?}"
    );
    moss.repair(&issues).await.unwrap();
    assert!(moss.verify().await.unwrap().is_empty());
    assert_same_tree(&root.join("usr"), &full);

    // A damaged store file is found, deleted and unpacked again from the cached package; the
    // trees that linked it are rebuilt.
    let (path, digest) = vfs3
        .iter()
        .find_map(|(path, node)| match node.kind {
            Kind::Regular(digest) if digest != stone::EMPTY_DIGEST => Some((path.clone(), digest)),
            _ => None,
        })
        .unwrap();
    let asset = moss.store().asset_path(digest);
    let mut damaged = fs::read(&asset).unwrap();
    damaged[0] ^= 0xff;
    fs::write(&asset, damaged).unwrap();
    let issues = moss.verify().await.unwrap();
    assert!(
        issues.iter().any(|issue| issue.state.is_none()
            && issue.problem.starts_with("corrupt: BLAKE3")
            && issue.problem.contains("used by")
            && issue.problem.contains("in states")),
        "{issues:?}"
    );
    let _ = path;
    moss.repair(&issues).await.unwrap();
    assert!(moss.verify().await.unwrap().is_empty());
    assert_same_tree(&root.join("usr"), &full);

    // Prune everything older than the active state; unused packages and files go away.
    let pruned = moss.prune(0).await.unwrap();
    assert_eq!(pruned.states, vec![1, 2]);
    assert_eq!(moss.states().await.unwrap().len(), 1);
    assert!(moss.verify().await.unwrap().is_empty());
    moss.database().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_switch_is_finished_or_undone_at_open() {
    let work = tempfile::tempdir().unwrap();
    let stones = corpus(&work.path().join("corpus"), 4, 3);
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let ids: Vec<String> = {
        let moss = Moss::open(&root, Arc::new(Silent)).await.unwrap();
        let unpacked = moss
            .add_stones(
                stones
                    .iter()
                    .map(|path| (path.clone(), None, "local".to_owned()))
                    .collect(),
            )
            .await
            .unwrap();
        let ids: Vec<String> = unpacked.iter().map(|package| package.id.clone()).collect();
        moss.apply(selections(&ids[..2]), "Install").await.unwrap();
        moss.database().close().await;
        ids
    };
    // A journal for a switch to state 2 whose staging tree never got swapped in.
    let staging = root.join(".moss/root/staging/usr");
    fs::create_dir_all(&staging).unwrap();
    fs::write(staging.join("half-written"), "x").unwrap();
    let journal = moss::journal::Journal::new(Some(1), 2, None);
    journal.write(&root.join(".moss/journal.json")).unwrap();
    let moss = Moss::open(&root, Arc::new(Silent)).await.unwrap();
    let recovery = moss.recovery().cloned().unwrap();
    assert!(!recovery.completed);
    assert_eq!(moss.active_state(), Some(1));
    assert!(!staging.exists());
    assert!(!root.join(".moss/journal.json").exists());
    assert!(moss.verify().await.unwrap().is_empty());
    let _ = ids;
    moss.database().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_the_installation_and_keep_writers_out() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    // The first open creates the database (as a writer).
    Moss::open(&root, Arc::new(Silent))
        .await
        .unwrap()
        .database()
        .close()
        .await;
    let first = Moss::open_for_reading(&root, Arc::new(Silent))
        .await
        .unwrap();
    let second = Moss::open_for_reading(&root, Arc::new(Silent))
        .await
        .unwrap();
    assert!(first.installed().await.unwrap().is_empty());
    assert!(second.installed().await.unwrap().is_empty());
    let writer = moss::installation::Installation::open(&root).unwrap_err();
    assert!(
        writer.to_string().contains("another moss process"),
        "{writer}"
    );
    first.database().close().await;
    second.database().close().await;
    drop((first, second));
    assert!(moss::installation::Installation::open(&root).is_ok());
}

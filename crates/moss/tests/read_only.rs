//! Opening for reading: an installation is queried without a byte written, including its
//! database (opened read-only, immutable when fully checkpointed); a change on a root whose
//! `/usr` moss did not make is refused before anything is written.

#[path = "common/mod.rs"]
mod common;

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use moss::{EngineError, Moss, db::Selection, events::Silent, installation::InstallationError};

/// Every entry under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    fn walk(dir: &Path, base: &Path, found: &mut BTreeMap<PathBuf, (u64, i64, i64)>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            found.insert(
                path.strip_prefix(base).unwrap().to_owned(),
                (metadata.len(), metadata.mtime(), metadata.mtime_nsec()),
            );
            if metadata.is_dir() {
                walk(&path, base, found);
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(dir, dir, &mut found);
    found
}

async fn installed_root(root: &Path, stones: &Path) {
    let stone = common::stone(
        stones,
        "reader-test",
        "1",
        &[common::file("share/r/a", "a\n")],
        &[],
    );
    let moss = Moss::open(root, Arc::new(Silent)).await.unwrap();
    let unpacked = moss
        .add_stones(vec![(stone, None, "local".to_owned())])
        .await
        .unwrap();
    let selections = vec![Selection {
        package: unpacked[0].id.clone(),
        explicit: true,
        reason: None,
    }];
    moss.apply(selections, "Install").await.unwrap();
    moss.database().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_write_nothing_into_an_installation() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    installed_root(&root, &work.path().join("stones")).await;
    let database = root.join(".moss/db/moss.sqlite");
    // A clean close checkpoints the WAL away: readers then open the database immutable.
    for suffix in ["-wal", "-shm"] {
        let mut side = database.clone().into_os_string();
        side.push(suffix);
        assert!(!Path::new(&side).exists(), "{side:?} survived the close");
    }
    let before = snapshot(&root);
    let reader = Moss::open_for_reading(&root, Arc::new(Silent))
        .await
        .unwrap();
    let installed = reader.installed().await.unwrap();
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].package.meta.name, "reader-test");
    assert_eq!(reader.states().await.unwrap().len(), 1);
    reader.database().close().await;
    drop(reader);
    assert_eq!(snapshot(&root), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_reads_what_a_crashed_writer_left_in_the_wal() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    installed_root(&root, &work.path().join("stones")).await;
    let database = root.join(".moss/db/moss.sqlite");
    // A writer that never closes (as if killed): its last commit lives only in the WAL.
    let writer = moss::db::Database::open(&database).await.unwrap();
    let mut state = writer.states().await.unwrap().remove(0);
    state.id = 2;
    state.summary = "Only in the WAL".to_owned();
    writer.add_state(&state).await.unwrap();
    let reader = Moss::open_for_reading(&root, Arc::new(Silent))
        .await
        .unwrap();
    let summaries: Vec<String> = reader
        .states()
        .await
        .unwrap()
        .into_iter()
        .map(|state| state.summary)
        .collect();
    assert_eq!(summaries, ["Install", "Only in the WAL"]);
    reader.database().close().await;
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_changes_refuse_directories_that_are_not_moss_roots() {
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("etc");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("hostname"), "box\n").unwrap();
    let error = Moss::open_for_reading(&plain, Arc::new(Silent))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::Installation(InstallationError::NotAnInstallation { .. })
        ),
        "{error}"
    );
    assert_eq!(snapshot(&plain).len(), 1);

    let foreign = work.path().join("foreign");
    fs::create_dir_all(foreign.join("usr/lib")).unwrap();
    fs::write(foreign.join("usr/lib/libc.so.6"), "not moss's\n").unwrap();
    let before = snapshot(&foreign);
    let error = Moss::open(&foreign, Arc::new(Silent)).await.unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::Installation(InstallationError::UnmanagedUsr { .. })
        ),
        "{error}"
    );
    // A build root composed into it is refused the same way, before the store is linked in.
    let host = work.path().join("host");
    fs::create_dir(&host).unwrap();
    let moss = Moss::open(&host, Arc::new(Silent)).await.unwrap();
    let error = moss
        .compose_build_root(&foreign, &["anything".to_owned()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::Installation(InstallationError::UnmanagedUsr { .. })
        ),
        "{error}"
    );
    moss.database().close().await;
    assert_eq!(snapshot(&foreign), before);
}

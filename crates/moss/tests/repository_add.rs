//! `Moss::add_repository` is all or nothing: an index that cannot be fetched or is refused
//! leaves the configuration and the cached indexes exactly as they were. Reserved and unsafe
//! ids are refused before anything is fetched.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use moss::{
    EngineError, Moss,
    events::Silent,
    repository::{self, AddMode, ConfigError, FetchError, Repository, write_index},
};
use url::Url;

/// An installation root and a directory of served indexes.
struct Setup {
    _temp: tempfile::TempDir,
    root: PathBuf,
    served: PathBuf,
    moss: Moss,
}

impl Setup {
    async fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("root");
        let served = temp.path().join("served");
        fs::create_dir_all(&root).unwrap();
        let moss = Moss::open(&root, Arc::new(Silent)).await.unwrap();
        Self {
            _temp: temp,
            root,
            served,
            moss,
        }
    }

    /// Publish an index of the first `count` example packages as `<name>/stone.index`; returns
    /// its URL.
    fn publish(&self, name: &str, count: usize) -> String {
        let dir = self.served.join(name);
        fs::create_dir_all(&dir).unwrap();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stones");
        let mut stones: Vec<PathBuf> = fs::read_dir(examples)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "stone"))
            .collect();
        stones.sort();
        for stone in stones.iter().take(count) {
            fs::copy(stone, dir.join(stone.file_name().unwrap())).unwrap();
        }
        write_index(&dir, &dir).unwrap();
        Url::from_file_path(dir.join("stone.index"))
            .unwrap()
            .to_string()
    }

    /// A URL whose file is not there.
    fn missing(&self) -> String {
        Url::from_file_path(self.served.join("nowhere/stone.index"))
            .unwrap()
            .to_string()
    }

    /// Every file of the configuration and of the repository caches, with its bytes.
    fn state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        for dir in ["etc/moss", "usr/share/moss", ".moss/repo"] {
            collect(&self.root, &self.root.join(dir), &mut files);
        }
        files
    }

    async fn add(&self, id: &str, uri: &str) -> Result<(), EngineError> {
        self.moss.add_repository(id, uri, 0, "", &[]).await
    }

    async fn replace(&self, id: &str, uri: &str) -> Result<(), EngineError> {
        self.moss.replace_repository(id, uri, 5, "", &[]).await
    }
}

fn collect(base: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Empty directories count too: a leftover staging directory is a change.
            files.insert(path.strip_prefix(base).unwrap().to_owned(), Vec::new());
            collect(base, &path, files);
        } else {
            let bytes = fs::read(&path).unwrap();
            files.insert(path.strip_prefix(base).unwrap().to_owned(), bytes);
        }
    }
}

/// The error is a refused add of `id` that says nothing was changed; returns the fetch error.
fn not_added(error: EngineError, id: &str, replacing: bool) -> FetchError {
    let message = error.to_string();
    assert!(message.contains(&format!("`{id}`")), "{message}");
    assert!(message.contains("unchanged"), "{message}");
    let verb = if replacing {
        "not replaced"
    } else {
        "not added"
    };
    assert!(message.contains(verb), "{message}");
    match error {
        EngineError::Config(ConfigError::NotAdded {
            source,
            replacing: flag,
            ..
        }) => {
            assert_eq!(flag, replacing);
            *source
        }
        other => panic!("not a refused add: {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_add_leaves_nothing_configured() {
    let setup = Setup::new().await;
    let before = setup.state();

    // Unreachable.
    let error = setup.add("new", &setup.missing()).await.unwrap_err();
    let source = not_added(error, "new", false);
    assert!(matches!(source, FetchError::Unreachable { .. }), "{source}");
    assert!(source.to_string().contains("check"), "the fix: {source}");
    assert!(setup.moss.repositories().unwrap().is_empty());
    assert!(!setup.root.join("etc/moss/repo.d/new.kdl").exists());
    assert_eq!(setup.state(), before);

    // Not an index.
    fs::create_dir_all(setup.served.join("junk")).unwrap();
    fs::write(setup.served.join("junk/stone.index"), b"not an index").unwrap();
    let junk = Url::from_file_path(setup.served.join("junk/stone.index")).unwrap();
    let error = setup.add("new", junk.as_str()).await.unwrap_err();
    let source = not_added(error, "new", false);
    assert!(
        matches!(source, FetchError::InvalidIndex { .. }),
        "{source}"
    );
    assert_eq!(setup.state(), before);

    // Signed by nobody although a key is pinned.
    let good = setup.publish("good", 1);
    let (public, _) = repository::signing::generate_key_pair().unwrap();
    let error = setup
        .moss
        .add_repository("new", &good, 0, "", &[public])
        .await
        .unwrap_err();
    let source = not_added(error, "new", false);
    assert!(matches!(source, FetchError::Signature { .. }), "{source}");
    assert_eq!(setup.state(), before);
    assert!(setup.moss.repositories().unwrap().is_empty());

    // The same id then works once the URI is right.
    setup.add("new", &good).await.unwrap();
    assert_eq!(setup.moss.repositories().unwrap().len(), 1);
    assert_eq!(setup.moss.available().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_replacement_keeps_the_old_repository() {
    let setup = Setup::new().await;
    let first = setup.publish("first", 1);
    setup.add("main", &first).await.unwrap();
    let configured = setup.moss.repositories().unwrap();
    let before = setup.state();
    assert!(before.contains_key(Path::new(".moss/repo/main/stone.index")));

    // Adding the id again is refused outright.
    let error = setup.add("main", &setup.missing()).await.unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::Config(ConfigError::AlreadyExists { .. })
        ),
        "{error}"
    );
    assert_eq!(setup.state(), before);

    // Replacing it with a broken URI keeps the old definition and its cached index.
    let error = setup.replace("main", &setup.missing()).await.unwrap_err();
    not_added(error, "main", true);
    assert_eq!(setup.moss.repositories().unwrap(), configured);
    assert_eq!(setup.state(), before);
    assert_eq!(setup.moss.available().await.unwrap().len(), 1);

    // A working replacement takes over, cache included, with nothing left beside it.
    let second = setup.publish("second", 2);
    setup.replace("main", &second).await.unwrap();
    let replaced = setup.moss.repositories().unwrap();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].uri.as_str(), second);
    assert_eq!(replaced[0].priority, 5);
    assert_eq!(setup.moss.available().await.unwrap().len(), 2);
    let caches: Vec<String> = fs::read_dir(setup.root.join(".moss/repo"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(caches, vec!["main".to_owned()]);
}

#[tokio::test]
async fn reserved_and_unsafe_ids_are_refused_before_fetching() {
    let setup = Setup::new().await;
    let good = setup.publish("good", 1);
    let before = setup.state();
    for id in ["local", "Local"] {
        let error = setup.add(id, &good).await.unwrap_err();
        assert!(
            matches!(error, EngineError::Config(ConfigError::ReservedId { .. })),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("reserved") && message.contains("choose another id"),
            "{message}"
        );
    }
    for id in ["", ".", "..", "a/b", "../etc", "a\nb", "a\u{7}", "-x"] {
        let error = setup.add(id, &good).await.unwrap_err();
        assert!(
            matches!(error, EngineError::Config(ConfigError::InvalidId { .. })),
            "{id:?}: {error}"
        );
    }
    assert_eq!(setup.state(), before);
    assert!(setup.moss.repositories().unwrap().is_empty());
}

#[test]
fn a_local_repository_from_before_the_reservation_still_works() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    let uri = Url::parse("file:///srv/local/stone.index").unwrap();
    let local = Repository::new("local", uri, 0, "").unwrap();
    // A new definition cannot take the id.
    let error = repository::add(root, &local, AddMode::New).unwrap_err();
    assert!(matches!(error, ConfigError::ReservedId { .. }), "{error}");
    let error = repository::add(root, &local, AddMode::Replace).unwrap_err();
    assert!(matches!(error, ConfigError::ReservedId { .. }), "{error}");
    assert!(repository::load(root).unwrap().is_empty());

    // One written before keeps loading and can still be rewritten, disabled and removed.
    let file = root.join("etc/moss/repo.d/local.kdl");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(
        &file,
        "local {\n  uri \"file:///srv/local/stone.index\"\n}\n",
    )
    .unwrap();
    assert_eq!(repository::load(root).unwrap(), vec![local.clone()]);
    repository::add(root, &local, AddMode::Replace).unwrap();
    repository::disable(root, "local").unwrap();
    assert!(!repository::load(root).unwrap()[0].active);
    repository::remove(root, "local").unwrap();
    assert!(repository::load(root).unwrap().is_empty());
}

//! Root-index repositories (engine spec §11.2) and the migration of old official URIs (§11.3),
//! against a channel tree on disk and over HTTP.

#[path = "repository/server.rs"]
#[allow(dead_code)]
mod server;

mod common;

use std::{
    fs,
    path::Path,
    sync::{Arc, Mutex},
};

use moss::{
    Moss,
    events::{Event, Reporter},
    repository::{self, FetchError, FetchOptions, write_index},
};
use server::Server;
use url::Url;

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn report(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn warnings(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Warning { message } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

/// `tree/main/history/<id>/x86_64/` with a `hello` package of `version` and its index.
fn snapshot(tree: &Path, history: &str, version: &str) {
    let directory = tree.join(format!("main/history/{history}/x86_64"));
    common::stone(
        &directory,
        "hello",
        version,
        &[common::file("share/hello/version", version)],
        &[],
    );
    write_index(&directory, &directory).unwrap();
}

fn root_index(stream_history: &str) -> String {
    format!(
        r#"{{
  "formats": {{ "v0": {{ "upgrade_via": "v0-final" }}, "v1": {{}} }},
  "streams": {{ "volatile": {{ "format": "v0", "history": "{stream_history}" }},
               "future": {{ "format": "v1", "history": "9" }} }},
  "tags": {{ "first": {{ "format": "v0", "history": "1" }} }},
  "history": {{ "1": {{ "format": "v0" }}, "2": {{ "format": "v0" }}, "9": {{ "format": "v1" }} }}
}}"#
    )
}

async fn versions(moss: &Moss) -> Vec<String> {
    moss.available()
        .await
        .unwrap()
        .into_iter()
        .map(|available| available.meta.version)
        .collect()
}

#[tokio::test]
async fn a_stream_is_followed_through_its_root_index() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    snapshot(&tree, "1", "1.0");
    snapshot(&tree, "2", "2.0");
    fs::write(tree.join("main/moss-root-index.json"), root_index("1")).unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let moss = Moss::open(&root, Arc::new(Recorder::default()))
        .await
        .unwrap();
    let base = Url::from_directory_path(&tree).unwrap();
    moss.add_root_index_repository(
        "volatile",
        base.as_str(),
        "version=stream/volatile",
        5,
        "",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(versions(&moss).await, ["1.0"]);
    let cache = root.join(".moss/repo/volatile");
    assert!(
        fs::read_to_string(cache.join("index-uri"))
            .unwrap()
            .trim()
            .ends_with("/main/history/1/x86_64/stone.index")
    );
    // The definition is written as upstream writes it: base-uri and version, defaults omitted.
    let saved = fs::read_to_string(root.join("etc/moss/repo.d/volatile.kdl")).unwrap();
    assert!(
        saved.contains("base-uri") && saved.contains("stream/volatile"),
        "{saved}"
    );
    assert!(
        !saved.contains("channel") && !saved.contains(" uri "),
        "{saved}"
    );

    // The stream moves on: a refresh follows it, and package URIs resolve in the new snapshot.
    fs::write(tree.join("main/moss-root-index.json"), root_index("2")).unwrap();
    moss.refresh(None).await.unwrap();
    assert_eq!(versions(&moss).await, ["2.0"]);
    let available = moss.available().await.unwrap();
    assert!(
        available[0].url.path().contains("/main/history/2/x86_64/"),
        "{}",
        available[0].url
    );

    // A tag and a history id resolve too; unknown ids and newer formats are refused by name.
    for (id, spec, expected) in [
        ("tagged", "version=tag/first", Ok("1.0")),
        (
            "pinned",
            "version=history/2,channel=main,arch=x86_64",
            Ok("2.0"),
        ),
        (
            "unknown",
            "version=stream/nightly",
            Err("no stream `nightly`"),
        ),
        ("future", "version=stream/future", Err("format `v1`")),
    ] {
        let result = moss
            .add_root_index_repository(id, base.as_str(), spec, 1, "", &[])
            .await;
        match expected {
            Ok(_) => result.unwrap(),
            Err(needle) => {
                let message = result.unwrap_err().to_string();
                assert!(message.contains(needle), "{message}");
                assert!(message.contains(&format!("`{id}`")), "{message}");
                assert!(!root.join(format!("etc/moss/repo.d/{id}.kdl")).exists());
            }
        }
    }
    let error = moss
        .add_root_index_repository("bad", base.as_str(), "channel=main", 1, "", &[])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("needs version"), "{error}");
}

#[tokio::test]
async fn an_upstream_definition_file_is_read() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    snapshot(&tree, "1", "1.0");
    fs::write(tree.join("main/moss-root-index.json"), root_index("1")).unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(root.join("etc/moss/repo.d")).unwrap();
    fs::write(
        root.join("etc/moss/repo.d/volatile.kdl"),
        format!(
            "volatile {{\n    description \"AerynOS volatile stream\"\n    base-uri \"{}\"\n    \
             channel \"main\"\n    version \"stream/volatile\"\n    arch \"x86_64\"\n    \
             priority 0\n}}\n",
            Url::from_directory_path(&tree).unwrap()
        ),
    )
    .unwrap();
    let moss = Moss::open(&root, Arc::new(Recorder::default()))
        .await
        .unwrap();
    // Before the first refresh nothing is offered (there is no resolved index yet).
    assert!(versions(&moss).await.is_empty());
    moss.refresh(Some("volatile")).await.unwrap();
    assert_eq!(versions(&moss).await, ["1.0"]);
    assert_eq!(
        moss.repositories().unwrap()[0].to_string(),
        format!(
            "volatile = (base-uri={}, channel=main, version=stream/volatile, arch=x86_64) [0] \
             (unsigned)",
            Url::from_directory_path(&tree).unwrap()
        )
    );
}

/// An HTTP "official host" (127.0.0.1 here) serving the old volatile layout and a root index.
fn official(server: &Server, stream_format: Option<&str>) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let old = work.path().join("old");
    common::stone(&old, "hello", "1.0", &[common::file("share/h", "old")], &[]);
    write_index(&old, &old).unwrap();
    for name in ["stone.index", "hello-1.0.stone"] {
        server.put(
            &format!("volatile/x86_64/{name}"),
            fs::read(old.join(name)).unwrap(),
        );
    }
    let tree = work.path().join("tree");
    snapshot(&tree, "7", "7.0");
    for name in ["stone.index", "hello-7.0.stone"] {
        server.put(
            &format!("main/history/7/x86_64/{name}"),
            fs::read(tree.join(format!("main/history/7/x86_64/{name}"))).unwrap(),
        );
    }
    if let Some(format) = stream_format {
        server.put(
            "main/moss-root-index.json",
            format!(
                r#"{{"streams": {{"volatile": {{"history": "7"}}}},
                    "history": {{"7": {{"format": "{format}"}}}}}}"#
            )
            .into_bytes(),
        );
    }
    work
}

async fn open_with_legacy_host(root: &Path, recorder: Arc<Recorder>) -> Moss {
    let mut moss = Moss::open(root, recorder).await.unwrap();
    moss.set_fetch_options(FetchOptions {
        attempts: 1,
        legacy_hosts: vec!["127.0.0.1".to_owned()],
        ..FetchOptions::default()
    });
    moss
}

#[tokio::test]
async fn an_outdated_official_uri_is_migrated_to_its_root_index() {
    let server = Server::start();
    let _work = official(&server, Some("v0"));
    let root = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let moss = open_with_legacy_host(root.path(), recorder.clone()).await;
    let old_uri = server.url("volatile/x86_64/stone.index");
    moss.add_repository("volatile", old_uri.as_str(), 0, "volatile", &[])
        .await
        .unwrap();
    assert_eq!(versions(&moss).await, ["1.0"]);

    moss.refresh(None).await.unwrap();
    assert_eq!(versions(&moss).await, ["7.0"]);
    let configured = &moss.repositories().unwrap()[0];
    let source = configured.root_index.as_ref().expect("migrated");
    assert_eq!(source.base_uri, server.url("/"));
    assert_eq!(source.version.to_string(), "stream/volatile");
    let warnings = recorder.warnings();
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("outdated URI") && warning.contains(old_uri.as_str())),
        "{warnings:?}"
    );
    let saved = fs::read_to_string(root.path().join("etc/moss/repo.d/volatile.kdl")).unwrap();
    assert!(saved.contains("base-uri"), "{saved}");
}

#[tokio::test]
async fn a_legacy_stream_or_a_missing_root_index_keeps_the_direct_uri() {
    for format in [Some("legacy"), None] {
        let server = Server::start();
        let _work = official(&server, format);
        let root = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let moss = open_with_legacy_host(root.path(), recorder.clone()).await;
        let old_uri = server.url("volatile/x86_64/stone.index");
        moss.add_repository("volatile", old_uri.as_str(), 0, "", &[])
            .await
            .unwrap();
        moss.refresh(None).await.unwrap();
        assert_eq!(versions(&moss).await, ["1.0"], "{format:?}");
        assert!(moss.repositories().unwrap()[0].root_index.is_none());
        assert!(recorder.warnings().is_empty(), "{:?}", recorder.warnings());
        assert!(
            !root
                .path()
                .join(".moss/repo/volatile/.legacy-probe.json")
                .exists()
        );
    }
}

#[tokio::test]
async fn a_broken_root_index_names_the_repository_and_keeps_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    snapshot(&tree, "1", "1.0");
    fs::write(tree.join("main/moss-root-index.json"), root_index("1")).unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let moss = Moss::open(&root, Arc::new(Recorder::default()))
        .await
        .unwrap();
    let base = Url::from_directory_path(&tree).unwrap();
    moss.add_root_index_repository("v", base.as_str(), "version=stream/volatile", 0, "", &[])
        .await
        .unwrap();
    fs::write(tree.join("main/moss-root-index.json"), "not json").unwrap();
    let error = moss.refresh(None).await.unwrap_err();
    assert!(
        matches!(
            &error,
            moss::EngineError::Fetch(FetchError::RootIndex { repository, .. }) if repository == "v"
        ),
        "{error}"
    );
    assert!(error.to_string().contains("not a root index"), "{error}");
    assert_eq!(versions(&moss).await, ["1.0"]);
    let _ = repository::load(&root).unwrap();
}

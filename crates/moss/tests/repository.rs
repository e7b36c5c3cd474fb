//! Repositories: configuration files, index writing and reading, fetching over file:// and HTTP.

#[path = "repository/server.rs"]
mod server;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use moss::{
    events::{Event, Reporter},
    repository::{
        self, AddMode, ConfigError, FetchError, FetchOptions, Fetcher, IndexError, PackageRequest,
        RefreshOutcome, Repository, cached_package_path, read_index, resolve_package_uri,
        write_index,
    },
    stone::{self, ContentSource, FileType, Package, Writer},
};
use server::{Fault, Server, etag_of};
use sha2::{Digest, Sha256};
use url::Url;

// ---------------------------------------------------------------------------------------------
// Helpers

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn report(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn retries(&self) -> Vec<(String, u32, String)> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Retry {
                    item,
                    attempt,
                    reason,
                } => Some((item, attempt, reason)),
                _ => None,
            })
            .collect()
    }
}

fn fast_options() -> FetchOptions {
    FetchOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..FetchOptions::default()
    }
}

fn fetcher() -> (Fetcher, Arc<Recorder>) {
    fetcher_with(fast_options())
}

fn fetcher_with(options: FetchOptions) -> (Fetcher, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let fetcher = Fetcher::with_client_builder(
        reqwest::Client::builder().no_proxy(),
        options,
        recorder.clone(),
    );
    (fetcher, recorder)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A synthetic corpus from the shared generator.
fn stonegen(out: &Path, packages: u32, seed: u32) {
    let script = shared_dir().join("bench/stonegen.py");
    let status = Command::new("python3")
        .arg(&script)
        .args(["--out"])
        .arg(out)
        .args(["--packages", &packages.to_string()])
        .args(["--seed", &seed.to_string(), "--no-index", "--quiet"])
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "{} failed (it needs `pip install xxhash zstandard`)",
        script.display()
    );
}

fn stones_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "stone")
        })
        .collect();
    files.sort();
    files
}

/// A small binary package made with the stone writer.
fn make_stone(name: &str, release: u64, build_release: u64, body: &[u8]) -> Vec<u8> {
    let package = Package {
        name: name.to_owned(),
        version: "1.0".to_owned(),
        release,
        build_release,
        architecture: "x86_64".to_owned(),
        summary: format!("{name} summary"),
        description: format!("{name} description"),
        homepage: "https://example.org".to_owned(),
        licenses: vec!["MPL-2.0".to_owned()],
        source_id: name.to_owned(),
        ..Package::default()
    };
    let mut writer = Writer::new(FileType::Binary);
    writer.add_meta(package.to_records());
    writer
        .add_file(
            format!("share/{name}/data"),
            0o100644,
            ContentSource::Bytes(body.to_vec()),
        )
        .unwrap();
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    out
}

/// Incompressible bytes (xorshift), so that packages are as large as their content.
fn noise(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn repo(id: &str, uri: &str, priority: u64) -> Repository {
    Repository::new(
        id,
        Url::parse(uri).unwrap(),
        priority,
        format!("{id} repository"),
    )
    .unwrap()
}

fn request_for(package: &Package, index_url: &Url, cache: &Path) -> PackageRequest {
    let hash = package.hash.clone().unwrap();
    PackageRequest {
        name: package.name.clone(),
        url: resolve_package_uri(index_url, package.uri.as_deref().unwrap()).unwrap(),
        destination: cached_package_path(cache, &hash),
        sha256: hash,
        size: package.size,
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn config_round_trip_add_enable_disable_remove() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    assert!(repository::load(root).unwrap().is_empty());

    let mut core = repo(
        "core",
        "https://cdn.example.org/core/x86_64/stone.index",
        10,
    );
    core.description = "Core packages \"quoted\"".to_owned();
    let written = repository::add(root, &core, AddMode::New).unwrap();
    assert_eq!(written, root.join("etc/moss/repo.d/core.kdl"));
    let text = fs::read_to_string(&written).unwrap();
    assert!(text.contains("core {"), "{text}");
    assert!(text.contains("priority 10"), "{text}");
    assert_eq!(repository::load(root).unwrap(), vec![core.clone()]);

    let local = repo("local_1", "file:///srv/local/stone.index", 100);
    repository::add(root, &local, AddMode::New).unwrap();
    // Highest priority first.
    let loaded = repository::load(root).unwrap();
    assert_eq!(loaded, vec![local.clone(), core.clone()]);

    // Adding an existing id is refused unless replacing explicitly.
    let error = repository::add(
        root,
        &repo("core", "https://other/stone.index", 1),
        AddMode::New,
    )
    .unwrap_err();
    assert!(
        matches!(error, ConfigError::AlreadyExists { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("core.kdl"), "{error}");
    let replaced = repo("core", "https://mirror.example.org/core/stone.index", 1);
    repository::add(root, &replaced, AddMode::Replace).unwrap();
    assert_eq!(repository::load(root).unwrap()[1], replaced);

    repository::disable(root, "core").unwrap();
    let text = fs::read_to_string(&written).unwrap();
    assert!(text.contains("active #false"), "{text}");
    assert!(!repository::load(root).unwrap()[1].active);
    repository::enable(root, "core").unwrap();
    assert!(repository::load(root).unwrap()[1].active);

    assert_eq!(repository::remove(root, "core").unwrap(), written);
    assert!(!written.exists());
    assert_eq!(repository::load(root).unwrap(), vec![local]);
    let error = repository::remove(root, "core").unwrap_err();
    assert!(matches!(error, ConfigError::NotFound { .. }), "{error}");

    // Invalid ids never reach the disk.
    let error = Repository::new("../etc", Url::parse("file:///x").unwrap(), 0, "").unwrap_err();
    assert!(matches!(error, ConfigError::InvalidId { .. }), "{error}");
    let error =
        Repository::new("ok", Url::parse("ftp://x/stone.index").unwrap(), 0, "").unwrap_err();
    assert!(
        matches!(error, ConfigError::UnsupportedUri { .. }),
        "{error}"
    );
}

#[test]
fn config_precedence_is_deterministic() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    write(
        &root.join("usr/share/moss/repo.d/10-vendor.kdl"),
        r#"
// Vendor defaults
alpha {
    description "Alpha from the vendor"
    uri "https://vendor.example.org/alpha/stone.index"
    priority 5
}
beta {
    description "Beta"
    uri "https://vendor.example.org/beta/stone.index"
    priority 5
}
"#,
    );
    // Same stem in YAML: ignored because the .kdl exists.
    write(
        &root.join("usr/share/moss/repo.d/10-vendor.yaml"),
        "ghost:\n  description: never read\n  uri: https://ghost/stone.index\n  priority: 99\n",
    );
    // Legacy YAML vendor file with another repository.
    write(
        &root.join("usr/share/moss/repo.yaml"),
        "gamma:\n  description: \"Gamma\"\n  uri: \"https://vendor.example.org/gamma/stone.index\"\n  priority: 1\n",
    );
    // The admin overrides alpha.
    write(
        &root.join("etc/moss/repo.d/alpha.kdl"),
        "alpha {\n    description \"Alpha, admin mirror\"\n    uri \"https://mirror.example.org/alpha/stone.index\"\n    priority 50\n}\n",
    );
    let configured = repository::config::load_configured(root).unwrap();
    let ids: Vec<&str> = configured
        .iter()
        .map(|c| c.repository.id.as_str())
        .collect();
    assert_eq!(ids, ["alpha", "beta", "gamma"]);
    let alpha = &configured[0];
    assert_eq!(alpha.repository.priority, 50);
    assert_eq!(alpha.repository.uri.host_str(), Some("mirror.example.org"));
    assert_eq!(alpha.source.layer, repository::Layer::Admin);
    assert_eq!(
        alpha.vendor.as_ref().unwrap().path,
        root.join("usr/share/moss/repo.d/10-vendor.kdl")
    );
    assert_eq!(alpha.vendor.as_ref().unwrap().line, 3);
    assert_eq!(configured[1].source.layer, repository::Layer::Vendor);
    assert_eq!(
        configured[2].source.path,
        root.join("usr/share/moss/repo.yaml")
    );

    // Equal priorities sort by id, whatever the file order.
    write(
        &root.join("etc/moss/repo.d/00-first.kdl"),
        "zeta { uri \"https://z/stone.index\"; priority 5; }\n",
    );
    let ids: Vec<String> = repository::load(root)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["alpha", "beta", "zeta", "gamma"]);

    // One id in two admin files is an error naming both files.
    write(
        &root.join("etc/moss/repo.d/50-again.kdl"),
        "\nzeta { uri \"https://z2/stone.index\"; }\n",
    );
    let error = repository::load(root).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ConfigError::Duplicate { .. }), "{text}");
    assert!(
        text.contains("00-first.kdl") && text.contains("50-again.kdl"),
        "{text}"
    );
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn config_parse_errors_name_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let path = root.join("etc/moss/repo.d/broken.kdl");
    write(
        &path,
        "good {\n    uri \"https://x/stone.index\"\n    priority \"high\"\n}\n",
    );
    let error = repository::load(root).unwrap_err();
    match &error {
        ConfigError::Parse {
            path: got, line, ..
        } => {
            assert_eq!(got, &path);
            assert_eq!(*line, 3);
        }
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.starts_with("Invalid repository configuration"),
        "{text}"
    );
    assert!(
        text.contains("broken.kdl, line 3") && text.contains("priority"),
        "{text}"
    );

    // A syntax error.
    write(
        &path,
        "good {\n    uri \"https://x/stone.index\"\n    priority 1\n    active #maybe\n}\n",
    );
    match repository::load(root).unwrap_err() {
        ConfigError::Parse { line, .. } => assert_eq!(line, 4),
        other => panic!("{other:?}"),
    }
    // An unterminated string.
    write(&path, "good {\n    uri \"https://x/stone.index\n}\n");
    assert!(matches!(
        repository::load(root).unwrap_err(),
        ConfigError::Parse { .. }
    ));

    // YAML errors carry lines too.
    fs::remove_file(&path).unwrap();
    write(
        &root.join("usr/share/moss/repo.d/legacy.yaml"),
        "one:\n  uri: \"https://x/stone.index\"\n  priority: 1\ntwo:\n  uri: \"https://y/stone.index\"\n  priority: -4\n",
    );
    match repository::load(root).unwrap_err() {
        ConfigError::Parse { line, path, .. } => {
            assert_eq!(line, 6);
            assert!(path.ends_with("legacy.yaml"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vendor_repository_cannot_be_removed_but_can_be_disabled() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let vendor = root.join("usr/share/moss/repo.d/os.kdl");
    let vendor_text = "volatile {\n    description \"OS volatile\"\n    uri \"https://cdn.example.org/volatile/x86_64/stone.index\"\n    priority 0\n}\n";
    write(&vendor, vendor_text);

    let error = repository::remove(root, "volatile").unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, ConfigError::VendorRepository { .. }),
        "{text}"
    );
    assert!(text.contains("os.kdl"), "{text}");
    assert!(text.contains("moss repo disable volatile"), "{text}");

    let override_file = repository::disable(root, "volatile").unwrap();
    assert_eq!(override_file, root.join("etc/moss/repo.d/volatile.kdl"));
    assert_eq!(fs::read_to_string(&vendor).unwrap(), vendor_text);
    let loaded = repository::load(root).unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(!loaded[0].active);
    assert_eq!(loaded[0].description, "OS volatile");

    // Still a vendor repository: removing stays refused.
    assert!(matches!(
        repository::remove(root, "volatile").unwrap_err(),
        ConfigError::VendorRepository { .. }
    ));
    repository::enable(root, "volatile").unwrap();
    assert!(repository::load(root).unwrap()[0].active);
}

#[test]
fn editing_a_shared_admin_file_keeps_the_other_definitions() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let path = root.join("etc/moss/repo.d/mine.kdl");
    write(
        &path,
        "// my repositories\none {\n    uri \"file:///srv/one/stone.index\" // local\n    priority 1\n}\ntwo {\n    uri \"file:///srv/two/stone.index\"\n    priority 2\n}\n",
    );
    repository::disable(root, "one").unwrap();
    // No second file for `one`: the definition was edited where it is.
    assert!(!root.join("etc/moss/repo.d/one.kdl").exists());
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("// my repositories\n"), "{text}");
    assert!(
        text.contains("two {\n    uri \"file:///srv/two/stone.index\"\n"),
        "{text}"
    );
    let loaded = repository::load(root).unwrap();
    assert_eq!(loaded.len(), 2);
    assert!(!loaded.iter().find(|r| r.id == "one").unwrap().active);

    repository::remove(root, "two").unwrap();
    assert!(path.exists());
    assert_eq!(repository::load(root).unwrap().len(), 1);
    repository::remove(root, "one").unwrap();
    assert!(!path.exists());
}

// ---------------------------------------------------------------------------------------------
// Index writing and reading

#[test]
fn index_of_a_generated_corpus() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    stonegen(&packages, 20, 1);
    let files = stones_in(&packages);
    assert_eq!(files.len(), 20);

    let summary = write_index(&packages, &packages).unwrap();
    assert_eq!(
        summary.path,
        packages.canonicalize().unwrap().join("stone.index")
    );
    assert_eq!(summary.packages.len(), 20);
    assert!(summary.superseded.is_empty());

    let archive = stone::Archive::open(&summary.path).unwrap();
    assert_eq!(archive.file_type(), FileType::Repository);
    assert_eq!(archive.meta().count(), 20);

    let listed = read_index(&summary.path).unwrap();
    assert_eq!(listed.len(), 20);
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted by name");
    for package in &listed {
        let uri = package.uri.as_deref().unwrap();
        assert!(
            !uri.contains('/'),
            "flat directory: plain file name, got {uri}"
        );
        let bytes = fs::read(packages.join(uri)).unwrap();
        assert_eq!(
            package.hash.as_deref(),
            Some(sha256(&bytes).as_str()),
            "{uri}"
        );
        assert_eq!(package.size, Some(bytes.len() as u64));
        // The metadata is the package's own.
        let own = stone::Archive::open(packages.join(uri))
            .unwrap()
            .packages()
            .unwrap();
        assert_eq!(own[0].name, package.name);
        assert_eq!(own[0].depends, package.depends);
        assert_eq!(own[0].provides, package.provides);
    }

    // Written elsewhere, URIs climb out with `../`, and the same bytes come out every time.
    let elsewhere = work.path().join("publish/x86_64");
    let second = write_index(&packages, &elsewhere).unwrap();
    assert!(
        second
            .packages
            .iter()
            .all(|p| p.uri.starts_with("../../packages/"))
    );
    let again = write_index(&packages, &elsewhere).unwrap();
    assert_eq!(
        fs::read(&second.path).unwrap(),
        fs::read(&again.path).unwrap()
    );
    let index_url = Url::from_file_path(&second.path).unwrap();
    for package in read_index(&second.path).unwrap() {
        let url = resolve_package_uri(&index_url, package.uri.as_deref().unwrap()).unwrap();
        let bytes = fs::read(url.to_file_path().unwrap()).unwrap();
        assert_eq!(package.hash, Some(sha256(&bytes)));
    }
}

#[test]
fn index_keeps_the_newest_release_and_refuses_ambiguity() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    write_bytes(&dir.join("foo-1.stone"), &make_stone("foo", 1, 1, b"old"));
    write_bytes(
        &dir.join("nested/deeper/foo-2.stone"),
        &make_stone("foo", 2, 1, b"new"),
    );
    write_bytes(
        &dir.join("nested/foo-2b.stone"),
        &make_stone("foo", 2, 0, b"older build"),
    );
    write_bytes(&dir.join("bar.stone"), &make_stone("bar", 7, 1, b"bar"));
    write_bytes(
        &dir.join(".hidden/baz.stone"),
        &make_stone("baz", 1, 1, b"hidden"),
    );
    fs::write(dir.join("notes.txt"), "not a package").unwrap();

    let summary = write_index(dir, dir).unwrap();
    let entries: Vec<(&str, u64, &str)> = summary
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.release, p.uri.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            ("bar", 7, "bar.stone"),
            ("foo", 2, "nested/deeper/foo-2.stone")
        ]
    );
    assert_eq!(summary.superseded.len(), 2);

    // Same name, release and build in two files: an error naming both.
    write_bytes(
        &dir.join("zz/foo-2-copy.stone"),
        &make_stone("foo", 2, 1, b"other"),
    );
    let error = write_index(dir, dir).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, IndexError::Duplicate { .. }), "{text}");
    assert!(
        text.contains("foo-2.stone") && text.contains("foo-2-copy.stone"),
        "{text}"
    );
    // The previous index is untouched.
    assert_eq!(read_index(&summary.path).unwrap().len(), 2);
    fs::remove_dir_all(dir.join("zz")).unwrap();

    // A repository index among the packages is not a binary package.
    fs::copy(&summary.path, dir.join("index-copy.stone")).unwrap();
    let error = write_index(dir, dir).unwrap_err();
    assert!(matches!(error, IndexError::NotBinary { .. }), "{error}");
    fs::remove_file(dir.join("index-copy.stone")).unwrap();

    // A binary package is not an index.
    let error = read_index(&dir.join("bar.stone")).unwrap_err();
    assert!(matches!(error, IndexError::NotAnIndex { .. }), "{error}");
}

fn write_bytes(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Fetching from file://

#[tokio::test]
async fn fetch_from_file_urls() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    stonegen(&packages, 20, 1);
    let summary = write_index(&packages, &packages).unwrap();
    let index_url = Url::from_file_path(&summary.path).unwrap();
    let repository = Repository::new("local", index_url.clone(), 0, "").unwrap();
    let cache = work.path().join("cache");
    let repo_dir = cache.join("repo").join(repository.cache_dir_name());
    let (fetcher, recorder) = fetcher();

    let listed = match fetcher.refresh_index(&repository, &repo_dir).await.unwrap() {
        RefreshOutcome::Updated { path, packages } => {
            assert_eq!(path, repo_dir.join("stone.index"));
            packages
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(listed.len(), 20);
    assert!(matches!(
        fetcher.refresh_index(&repository, &repo_dir).await.unwrap(),
        RefreshOutcome::NotModified { .. }
    ));

    let requests: Vec<PackageRequest> = listed
        .iter()
        .map(|p| request_for(p, &index_url, &cache))
        .collect();
    let fetched = fetcher.fetch_packages(&requests).await.unwrap();
    assert_eq!(fetched.len(), 20);
    for (request, fetched) in requests.iter().zip(&fetched) {
        assert_eq!(fetched.name, request.name);
        assert!(!fetched.cached);
        assert_eq!(sha256(&fs::read(&fetched.path).unwrap()), request.sha256);
        assert!(!repository_part(&fetched.path).exists());
    }
    let again = fetcher.fetch_packages(&requests).await.unwrap();
    assert!(again.iter().all(|fetched| fetched.cached));
    let finished_cached = recorder
        .events()
        .iter()
        .filter(|event| matches!(event, Event::DownloadFinished { cached: true, .. }))
        .count();
    assert_eq!(
        finished_cached, 21,
        "20 cached packages and one unchanged index"
    );

    // A missing file is an error naming the repository and the URL.
    let missing = Repository::new(
        "gone",
        Url::from_file_path(work.path().join("nowhere/stone.index")).unwrap(),
        0,
        "",
    )
    .unwrap();
    let error = fetcher
        .refresh_index(&missing, &repo_dir)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("repository `gone`") && text.contains("nowhere/stone.index"),
        "{text}"
    );
}

fn repository_part(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

// ---------------------------------------------------------------------------------------------
// Fetching over HTTP

/// A server with an index of three small packages under `/repo/`.
fn serve_repository() -> (Server, Vec<(String, Vec<u8>)>, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("repo");
    let mut packages = Vec::new();
    for (index, name) in ["apple", "banana", "cherry"].into_iter().enumerate() {
        let body = noise(200_000, index as u64 + 1);
        let bytes = make_stone(name, 1, 1, &body);
        write_bytes(&dir.join(format!("pool/{name}.stone")), &bytes);
        packages.push((name.to_owned(), bytes));
    }
    let summary = write_index(&dir, &dir).unwrap();
    let server = Server::start();
    server.put("repo/stone.index", fs::read(&summary.path).unwrap());
    for (name, bytes) in &packages {
        server.put(&format!("repo/pool/{name}.stone"), bytes.clone());
    }
    (server, packages, work)
}

#[tokio::test]
async fn http_refresh_is_conditional_and_keeps_a_good_index() {
    let (server, _, work) = serve_repository();
    let repository = Repository::new("remote", server.url("repo/stone.index"), 0, "").unwrap();
    let repo_dir = work.path().join("cache/remote");
    let (fetcher, _) = fetcher();

    let RefreshOutcome::Updated { packages, .. } =
        fetcher.refresh_index(&repository, &repo_dir).await.unwrap()
    else {
        panic!("first refresh downloads");
    };
    assert_eq!(packages.len(), 3);
    let first = &server.requests_for("repo/stone.index")[0];
    assert_eq!(first.if_none_match, None);
    assert_eq!(
        first.user_agent.as_deref(),
        Some(concat!("moss/", env!("CARGO_PKG_VERSION")))
    );
    let stored = fs::read_to_string(repo_dir.join("stone.index.json")).unwrap();
    assert!(
        stored.contains("Last-Modified") || stored.contains("last_modified"),
        "{stored}"
    );

    // Unchanged: 304.
    let outcome = fetcher.refresh_index(&repository, &repo_dir).await.unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::NotModified { .. }),
        "{outcome:?}"
    );
    let index_bytes = fs::read(repo_dir.join("stone.index")).unwrap();
    let second = server.requests_for("repo/stone.index").pop().unwrap();
    assert_eq!(second.if_none_match, Some(etag_of(&index_bytes)));

    // A truncated index is refused and the previous one kept.
    server.put(
        "repo/stone.index",
        index_bytes[..index_bytes.len() - 40].to_vec(),
    );
    let error = fetcher
        .refresh_index(&repository, &repo_dir)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::InvalidIndex { .. }), "{error}");
    assert!(
        error.to_string().contains("previous index is kept"),
        "{error}"
    );
    assert_eq!(fs::read(repo_dir.join("stone.index")).unwrap(), index_bytes);
    assert!(!repo_dir.join("stone.index.part").exists());

    // Not a stone at all: same.
    server.put("repo/stone.index", b"<html>captive portal</html>".to_vec());
    assert!(matches!(
        fetcher
            .refresh_index(&repository, &repo_dir)
            .await
            .unwrap_err(),
        FetchError::InvalidIndex { .. }
    ));
    assert_eq!(fs::read(repo_dir.join("stone.index")).unwrap(), index_bytes);

    // An index entry without a hash is refused.
    let mut writer = Writer::new(FileType::Repository);
    writer.add_meta(
        stone::Archive::from_reader(std::io::Cursor::new(make_stone("nohash", 1, 1, b"x")))
            .unwrap()
            .meta()
            .next()
            .unwrap()
            .1
            .to_vec(),
    );
    let mut no_hash = Vec::new();
    writer.write(&mut no_hash).unwrap();
    server.put("repo/stone.index", no_hash);
    let error = fetcher
        .refresh_index(&repository, &repo_dir)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("PackageHash"), "{error}");
    assert_eq!(fs::read(repo_dir.join("stone.index")).unwrap(), index_bytes);

    // 404 is not retried.
    let missing = Repository::new("missing", server.url("nothing/stone.index"), 0, "").unwrap();
    let error = fetcher
        .refresh_index(&missing, &repo_dir)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::Status { status: 404, .. }),
        "{error}"
    );
    assert_eq!(server.requests_for("nothing/stone.index").len(), 1);
}

#[tokio::test]
async fn http_retries_transient_failures() {
    let (server, packages, work) = serve_repository();
    let (name, bytes) = &packages[0];
    let path = format!("repo/pool/{name}.stone");
    server.fault(&path, Fault::Status(503));
    server.fault(&path, Fault::Status(429));
    let (fetcher, recorder) = fetcher();
    let request = PackageRequest {
        name: name.clone(),
        url: server.url(&path),
        sha256: sha256(bytes),
        size: Some(bytes.len() as u64),
        destination: work.path().join("cache").join(name),
    };
    let fetched = fetcher.fetch_package(&request).await.unwrap();
    assert!(!fetched.cached);
    assert_eq!(fs::read(&fetched.path).unwrap(), *bytes);
    let retries = recorder.retries();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert_eq!(retries[0].0, *name);
    assert_eq!(retries[0].1, 2);
    assert!(retries[0].2.contains("503"), "{retries:?}");
    assert_eq!(retries[1].1, 3);
    assert!(retries[1].2.contains("429"), "{retries:?}");
    let events = recorder.events();
    assert!(matches!(
        events.first(),
        Some(Event::DownloadStarted { bytes: Some(_), .. })
    ));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::DownloadProgress { .. }))
    );
    assert!(matches!(
        events.last(),
        Some(Event::DownloadFinished { cached: false, .. })
    ));

    // Persistent failure: an error after the configured attempts, naming the package and URL.
    for _ in 0..4 {
        server.fault("repo/stone.index", Fault::Status(500));
    }
    let repository = Repository::new("flaky", server.url("repo/stone.index"), 0, "").unwrap();
    let error = fetcher
        .refresh_index(&repository, &work.path().join("cache/flaky"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, FetchError::Unreachable { attempts: 4, .. }),
        "{text}"
    );
    assert!(
        text.contains("repository `flaky`") && text.contains("500"),
        "{text}"
    );
}

#[tokio::test]
async fn http_resumes_cut_downloads_with_range() {
    let (server, packages, work) = serve_repository();
    let (fetcher, recorder) = fetcher();

    // Cut mid-body: the retry asks for the rest.
    let (name, bytes) = &packages[1];
    let path = format!("repo/pool/{name}.stone");
    server.fault(&path, Fault::Cut(bytes.len() / 3));
    let request = PackageRequest {
        name: name.clone(),
        url: server.url(&path),
        sha256: sha256(bytes),
        size: Some(bytes.len() as u64),
        destination: work.path().join("cache").join(name),
    };
    let fetched = fetcher.fetch_package(&request).await.unwrap();
    assert_eq!(fs::read(&fetched.path).unwrap(), *bytes);
    let log = server.requests_for(&path);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].range, None);
    assert_eq!(log[1].range, Some(format!("bytes={}-", bytes.len() / 3)));
    assert_eq!(recorder.retries().len(), 1);

    // A `.part` left by an earlier run is resumed.
    let (name, bytes) = &packages[2];
    let path = format!("repo/pool/{name}.stone");
    let destination = work.path().join("cache").join(name);
    write_bytes(&repository_part(&destination), &bytes[..1000]);
    let request = PackageRequest {
        name: name.clone(),
        url: server.url(&path),
        sha256: sha256(bytes),
        size: None,
        destination: destination.clone(),
    };
    fetcher.fetch_package(&request).await.unwrap();
    assert_eq!(fs::read(&destination).unwrap(), *bytes);
    assert_eq!(
        server.requests_for(&path)[0].range.as_deref(),
        Some("bytes=1000-")
    );

    // A server that ignores Range answers 200: the download restarts from zero.
    fs::remove_file(&destination).unwrap();
    write_bytes(&repository_part(&destination), &bytes[..5000]);
    server.ignore_range(true);
    fetcher.fetch_package(&request).await.unwrap();
    assert_eq!(fs::read(&destination).unwrap(), *bytes);
    server.ignore_range(false);

    // A stale `.part` from another file: the hash fails after resuming, then one fresh start.
    fs::remove_file(&destination).unwrap();
    write_bytes(&repository_part(&destination), &[0xAA; 1000]);
    fetcher.fetch_package(&request).await.unwrap();
    assert_eq!(fs::read(&destination).unwrap(), *bytes);
    assert!(!repository_part(&destination).exists());
}

#[tokio::test]
async fn http_wrong_hash_leaves_nothing() {
    let (server, packages, work) = serve_repository();
    let (fetcher, _) = fetcher();
    let (name, bytes) = &packages[0];
    let url = server.url(&format!("repo/pool/{name}.stone"));
    let wrong = sha256(b"something else");
    let destination = work.path().join("cache").join(name);
    let request = PackageRequest {
        name: name.clone(),
        url: url.clone(),
        sha256: wrong.clone(),
        size: Some(bytes.len() as u64),
        destination: destination.clone(),
    };
    let error = fetcher.fetch_package(&request).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, FetchError::HashMismatch { .. }), "{text}");
    for needle in [
        name.as_str(),
        url.as_str(),
        wrong.as_str(),
        sha256(bytes).as_str(),
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    assert!(!destination.exists());
    assert!(!repository_part(&destination).exists());

    // Wrong size: same.
    let request = PackageRequest {
        sha256: sha256(bytes),
        size: Some(bytes.len() as u64 + 1),
        ..request
    };
    let error = fetcher.fetch_package(&request).await.unwrap_err();
    assert!(matches!(error, FetchError::SizeMismatch { .. }), "{error}");
    assert!(!destination.exists());
    assert!(!repository_part(&destination).exists());

    // A corrupted cached copy is replaced.
    write_bytes(&destination, b"corrupt");
    let request = PackageRequest {
        size: Some(bytes.len() as u64),
        ..request
    };
    let fetched = fetcher.fetch_package(&request).await.unwrap();
    assert!(!fetched.cached);
    assert_eq!(fs::read(&destination).unwrap(), *bytes);
}

#[tokio::test]
async fn unreachable_repository_names_id_and_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = Url::parse(&format!("http://127.0.0.1:{port}/repo/stone.index")).unwrap();
    let repository = Repository::new("offline", url.clone(), 0, "").unwrap();
    let work = tempfile::tempdir().unwrap();
    let (fetcher, recorder) = fetcher_with(FetchOptions {
        attempts: 2,
        ..fast_options()
    });
    let error = fetcher
        .refresh_index(&repository, work.path())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, FetchError::Unreachable { attempts: 2, .. }),
        "{text}"
    );
    assert!(text.contains("repository `offline`"), "{text}");
    assert!(text.contains(url.as_str()), "{text}");
    assert_eq!(recorder.retries().len(), 1);
    assert!(!work.path().join("stone.index").exists());

    // Refreshing several repositories: the unreachable one does not stop the others.
    let (server, _, _served) = serve_repository();
    let good = Repository::new("good", server.url("repo/stone.index"), 0, "").unwrap();
    let results = fetcher
        .refresh_indexes(&[
            (repository, work.path().join("offline")),
            (good, work.path().join("good")),
        ])
        .await;
    assert!(matches!(results[0], Err(FetchError::Unreachable { .. })));
    assert!(matches!(results[1], Ok(RefreshOutcome::Updated { .. })));
}

#[tokio::test]
async fn http_parallel_fetch_is_bounded_and_ordered() {
    let (server, _, work) = serve_repository();
    let repository = Repository::new("remote", server.url("repo/stone.index"), 0, "").unwrap();
    let (fetcher, _) = fetcher_with(FetchOptions {
        concurrency: 2,
        ..fast_options()
    });
    let RefreshOutcome::Updated { packages, .. } = fetcher
        .refresh_index(&repository, &work.path().join("cache/repo"))
        .await
        .unwrap()
    else {
        panic!("downloads");
    };
    // More packages than the bound: serve 7 extra copies under other names.
    let mut requests: Vec<PackageRequest> = packages
        .iter()
        .map(|p| request_for(p, &repository.uri, &work.path().join("cache")))
        .collect();
    for extra in 0..7 {
        let body = make_stone(&format!("extra{extra}"), 1, 1, &[extra as u8; 5000]);
        server.put(&format!("extra/{extra}.stone"), body.clone());
        requests.push(PackageRequest {
            name: format!("extra{extra}"),
            url: server.url(&format!("extra/{extra}.stone")),
            sha256: sha256(&body),
            size: Some(body.len() as u64),
            destination: work.path().join(format!("cache/extra{extra}")),
        });
    }
    // The same package twice is fetched once.
    requests.push(requests[0].clone());
    server.delay(Duration::from_millis(60));
    let fetched = fetcher.fetch_packages(&requests).await.unwrap();
    let names: Vec<&str> = fetched.iter().map(|f| f.name.as_str()).collect();
    let expected: Vec<&str> = requests.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, expected);
    assert!(
        server.max_active() <= 2,
        "at most 2 at once, saw {}",
        server.max_active()
    );
    assert!(server.max_active() >= 2, "downloads overlap");
    assert_eq!(server.requests_for("repo/pool/apple.stone").len(), 1);

    // The first error is returned.
    server.fault("extra/3.stone", Fault::Status(404));
    let fresh: Vec<PackageRequest> = requests
        .iter()
        .map(|request| PackageRequest {
            destination: work.path().join("again").join(&request.name),
            ..request.clone()
        })
        .collect();
    let error = fetcher.fetch_packages(&fresh).await.unwrap_err();
    assert!(error.to_string().contains("package `extra3`"), "{error}");
}

//! Freeze protection: a signed index that the server keeps reporting unchanged (HTTP 304, an
//! unchanged `file://` index, or identical bytes) is re-checked on every refresh, so an expired
//! signature is noticed even when nothing is downloaded. The cached index stays on disk but is
//! neither refreshed nor offered; a re-signed, unchanged index is accepted again.

#[allow(dead_code)]
#[path = "repository/server.rs"]
mod server;

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use moss::{
    Moss,
    events::{Event, Reporter, Silent},
    repository::{
        FetchError, FetchOptions, Fetcher, RefreshOutcome, Repository, SignatureProblem,
        SignedClaims,
        signing::{format_utc, generate_key_pair, parse_public_key, sign_bytes, unix_now},
        verify_cached_index, write_index,
    },
};
use server::Server;
use url::Url;

const HOUR: u64 = 3600;
/// Long enough for the first refreshes of a test to run before the signature expires.
const SHORT: u64 = 3;

/// A published index (two example packages) and a signing key.
struct Published {
    _temp: tempfile::TempDir,
    dir: PathBuf,
    secret: String,
    public: String,
}

impl Published {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("served");
        fs::create_dir_all(&dir).unwrap();
        let stones = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stones");
        let mut names: Vec<PathBuf> = fs::read_dir(&stones)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "stone"))
            .collect();
        names.sort();
        for stone in names.iter().take(2) {
            fs::copy(stone, dir.join(stone.file_name().unwrap())).unwrap();
        }
        write_index(&dir, &dir).unwrap();
        let (public_file, secret) = generate_key_pair().unwrap();
        Self {
            _temp: temp,
            dir,
            secret,
            public: parse_public_key(&public_file).unwrap(),
        }
    }

    fn index(&self) -> Vec<u8> {
        fs::read(self.dir.join("stone.index")).unwrap()
    }

    /// Sign the (unchanged) index again, valid until `expires`; returns the signature text,
    /// also written to `stone.index.minisig`.
    fn sign(&self, timestamp: u64, expires: u64) -> String {
        let claims = SignedClaims { timestamp, expires };
        let text = sign_bytes(&self.index(), &self.secret, claims, "stone.index").unwrap();
        fs::write(self.dir.join("stone.index.minisig"), &text).unwrap();
        text
    }

    fn file_url(&self) -> Url {
        Url::from_file_path(self.dir.join("stone.index")).unwrap()
    }
}

fn fetcher() -> Fetcher {
    let options = FetchOptions {
        attempts: 1,
        ..FetchOptions::default()
    };
    Fetcher::with_client_builder(
        reqwest::Client::builder().no_proxy(),
        options,
        Arc::new(Silent),
    )
}

fn signed(uri: Url, key: &str) -> Repository {
    Repository::new("frozen", uri, 0, "")
        .unwrap()
        .with_keys(&[key])
        .unwrap()
}

/// Sleep until the clock is past `expires` (the signature check uses whole seconds).
async fn wait_past(expires: u64) {
    while unix_now() <= expires {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everything in the cache directory, by name.
fn snapshot(cache: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(cache)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The refresh failed because the cached index is no longer trusted: its signature expired at
/// `expires`; the message says so, names the repository and the fix.
fn assert_expired(error: &FetchError, expires: u64) {
    let message = error.to_string();
    for wanted in [
        "`frozen`",
        "expired",
        &format_utc(expires),
        "freshly signed index",
        "stale copy",
        "cached index is kept",
    ] {
        assert!(
            message.contains(wanted),
            "{wanted:?} missing from: {message}"
        );
    }
    match error {
        FetchError::Untrusted {
            problem: SignatureProblem::Expired { expires: at, .. },
            ..
        } => assert_eq!(*at, expires),
        other => panic!("not an expired cached index: {other:?}"),
    }
}

#[tokio::test]
async fn http_not_modified_does_not_hide_an_expired_signature() {
    let published = Published::new();
    let server = Server::start();
    let serve = |signature: &str| {
        server.put("repo/stone.index", published.index());
        server.put("repo/stone.index.minisig", signature.as_bytes().to_vec());
    };
    let now = unix_now();
    let expires = now + SHORT;
    serve(&published.sign(now, expires));
    let repository = signed(server.url("repo/stone.index"), &published.public);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let fetcher = fetcher();

    let outcome = fetcher.refresh_index(&repository, &cache).await.unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::Updated { .. }),
        "{outcome:?}"
    );
    // While the kept signature is valid, "not modified" costs no signature request.
    let outcome = fetcher.refresh_index(&repository, &cache).await.unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::NotModified { .. }),
        "{outcome:?}"
    );
    assert_eq!(server.requests_for("repo/stone.index.minisig").len(), 1);
    let before = snapshot(&cache);

    wait_past(expires).await;
    let error = fetcher
        .refresh_index(&repository, &cache)
        .await
        .unwrap_err();
    assert_expired(&error, expires);
    let last = server.requests_for("repo/stone.index").pop().unwrap();
    assert!(last.if_none_match.is_some(), "the server answered 304");
    assert_eq!(
        snapshot(&cache),
        before,
        "the cached index and its signature stay"
    );
    // Plan time refuses it as well.
    let error = verify_cached_index(&repository, &cache).unwrap_err();
    assert_expired(&error, expires);

    // Identical bytes without validators (a server without ETag): refused on download.
    fs::remove_file(cache.join("stone.index.json")).unwrap();
    let error = fetcher
        .refresh_index(&repository, &cache)
        .await
        .unwrap_err();
    let FetchError::Signature { problem, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(
        matches!(problem, SignatureProblem::Expired { .. }),
        "{error}"
    );
    assert_eq!(
        fs::read(cache.join("stone.index")).unwrap(),
        published.index()
    );

    // The repository re-signs the unchanged index: accepted on 304, the new signature kept.
    let now = unix_now();
    let fresh = published.sign(now, now + HOUR);
    serve(&fresh);
    fetcher.refresh_index(&repository, &cache).await.unwrap();
    let outcome = fetcher.refresh_index(&repository, &cache).await.unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::NotModified { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        fs::read_to_string(cache.join("stone.index.minisig")).unwrap(),
        fresh
    );
    let claims = verify_cached_index(&repository, &cache).unwrap();
    assert_eq!(claims.expires, now + HOUR);
}

#[tokio::test]
async fn http_not_modified_accepts_a_re_signed_index() {
    let published = Published::new();
    let server = Server::start();
    server.put("repo/stone.index", published.index());
    let now = unix_now();
    let expires = now + SHORT;
    let first = published.sign(now, expires);
    server.put("repo/stone.index.minisig", first.into_bytes());
    let repository = signed(server.url("repo/stone.index"), &published.public);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let fetcher = fetcher();
    fetcher.refresh_index(&repository, &cache).await.unwrap();

    wait_past(expires).await;
    let now = unix_now();
    let fresh = published.sign(now, now + HOUR);
    server.put("repo/stone.index.minisig", fresh.clone().into_bytes());
    let outcome = fetcher.refresh_index(&repository, &cache).await.unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::NotModified { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        fs::read_to_string(cache.join("stone.index.minisig")).unwrap(),
        fresh
    );
    let stored = fs::read_to_string(cache.join("stone.index.json")).unwrap();
    assert!(
        stored.contains(&format!("\"signed_timestamp\": {now}")),
        "{stored}"
    );
    assert!(stored.contains("etag"), "the validators are kept: {stored}");
}

#[derive(Debug, Default)]
struct Warnings(Mutex<Vec<String>>);

impl Reporter for Warnings {
    fn report(&self, event: Event) {
        if let Event::Warning { message } = event {
            self.0.lock().unwrap().push(message);
        }
    }
}

#[tokio::test]
async fn file_repository_unchanged_index_expires_too() {
    let published = Published::new();
    let now = unix_now();
    let expires = now + SHORT;
    published.sign(now, expires);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let warnings = Arc::new(Warnings::default());
    let moss = Moss::open(&root, warnings.clone()).await.unwrap();
    moss.add_repository(
        "frozen",
        published.file_url().as_str(),
        0,
        "",
        std::slice::from_ref(&published.public),
    )
    .await
    .unwrap();
    assert_eq!(moss.available().await.unwrap().len(), 2);
    let cache = root.join(".moss/repo/frozen");
    let before = snapshot(&cache);

    wait_past(expires).await;
    // The file is unchanged (same size and mtime): the file:// "not modified" path.
    let error = moss.refresh(Some("frozen")).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("`frozen`"), "{message}");
    assert!(message.contains(&format_utc(expires)), "{message}");
    assert!(message.contains("freshly signed index"), "{message}");
    assert_eq!(
        snapshot(&cache),
        before,
        "the cached index and its signature stay"
    );

    // The expired index is not offered to plans, with a warning saying why.
    assert!(moss.available().await.unwrap().is_empty());
    let warned = warnings.0.lock().unwrap().clone();
    assert!(
        warned
            .iter()
            .any(|warning| warning.contains("`frozen`") && warning.contains("expired")),
        "{warned:?}"
    );
    assert_eq!(snapshot(&cache), before);

    // Re-signed in place (the index file itself untouched): usable again.
    let now = unix_now();
    published.sign(now, now + HOUR);
    moss.refresh(Some("frozen")).await.unwrap();
    assert_eq!(moss.available().await.unwrap().len(), 2);
}

#[tokio::test]
async fn file_repository_unchanged_index_with_an_unpinned_key_is_refused() {
    let published = Published::new();
    let now = unix_now();
    published.sign(now, now + HOUR);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let fetcher = fetcher();
    let repository = signed(published.file_url(), &published.public);
    fetcher.refresh_index(&repository, &cache).await.unwrap();
    let before = snapshot(&cache);

    // The only pinned key is retired; the index is unchanged, so the server says "not modified".
    let (other, _) = generate_key_pair().unwrap();
    let rotated = signed(published.file_url(), &other);
    let error = fetcher.refresh_index(&rotated, &cache).await.unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::Untrusted {
                problem: SignatureProblem::UnpinnedKey { .. },
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(snapshot(&cache), before);
    assert!(verify_cached_index(&rotated, &cache).is_err());
    assert!(verify_cached_index(&repository, &cache).is_ok());
}

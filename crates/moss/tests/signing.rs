//! Signed repository indexes: signing, verification on refresh, and the refusals that keep the
//! previous index (tampering, replay, expiry, unpinned keys, missing signatures, key rotation),
//! plus interoperability with the `minisign` tool.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use moss::{
    events::Silent,
    repository::{
        self, AddMode, FetchError, FetchOptions, Fetcher, RefreshOutcome, Repository,
        SignatureProblem, SignedClaims,
        signing::{self, generate_key_pair, parse_public_key, sign_bytes, unix_now},
        write_index,
    },
};
use url::Url;

const HOUR: u64 = 3600;

fn example_stones() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stones");
    let mut stones: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "stone")
        })
        .collect();
    stones.sort();
    stones
}

/// A key pair: (base64 public key, public key file text, secret key file text).
struct Keys {
    public: String,
    public_file: String,
    secret: String,
}

fn keys() -> Keys {
    let (public_file, secret) = generate_key_pair().unwrap();
    Keys {
        public: parse_public_key(&public_file).unwrap(),
        public_file,
        secret,
    }
}

/// A served repository directory and a client cache directory.
struct Setup {
    _temp: tempfile::TempDir,
    served: PathBuf,
    cache: PathBuf,
    fetcher: Fetcher,
}

impl Setup {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let served = temp.path().join("served");
        let cache = temp.path().join("cache");
        fs::create_dir_all(&served).unwrap();
        let options = FetchOptions {
            attempts: 1,
            ..FetchOptions::default()
        };
        let fetcher = Fetcher::with_options(options, Arc::new(Silent));
        Self {
            _temp: temp,
            served,
            cache,
            fetcher,
        }
    }

    fn index(&self) -> PathBuf {
        self.served.join("stone.index")
    }

    fn url(&self) -> Url {
        Url::from_file_path(self.index()).unwrap()
    }

    fn repository(&self, keys: &[&str]) -> Repository {
        Repository::new("signed", self.url(), 0, "")
            .unwrap()
            .with_keys(keys)
            .unwrap()
    }

    /// Publish an index of the first `count` example packages (other counts give other bytes).
    fn publish(&self, count: usize) -> Vec<u8> {
        for entry in fs::read_dir(&self.served).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for stone in example_stones().iter().take(count) {
            fs::copy(stone, self.served.join(stone.file_name().unwrap())).unwrap();
        }
        write_index(&self.served, &self.served).unwrap();
        fs::read(self.index()).unwrap()
    }

    /// Sign the published index with `secret`, claiming `timestamp` and `expires`.
    fn sign(&self, secret: &str, timestamp: u64, expires: u64) {
        let data = fs::read(self.index()).unwrap();
        let claims = SignedClaims { timestamp, expires };
        let text = sign_bytes(&data, secret, claims, "stone.index").unwrap();
        fs::write(signing::signature_path(&self.index()), text).unwrap();
    }

    async fn refresh(&self, repository: &Repository) -> Result<RefreshOutcome, FetchError> {
        self.fetcher.refresh_index(repository, &self.cache).await
    }

    fn cached(&self) -> Vec<u8> {
        fs::read(self.cache.join("stone.index")).unwrap()
    }

    /// Refresh, expect a refusal, check the previous index is still cached; returns the problem.
    async fn refused(&self, repository: &Repository, previous: &[u8]) -> SignatureProblem {
        let error = self.refresh(repository).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`signed`"), "{message}");
        assert!(message.contains("previous index is kept"), "{message}");
        assert_eq!(self.cached(), previous, "the previous index must stay");
        let leftovers: Vec<_> = fs::read_dir(&self.cache)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        match error {
            FetchError::Signature { problem, .. } => problem,
            other => panic!("not a signature refusal: {other}"),
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn sign_and_verify_round_trip() {
    let setup = Setup::new();
    let key = keys();
    let data = setup.publish(2);
    let signature = repository::sign_index(
        &setup.index(),
        &write_temp_key(&setup, &key),
        Duration::from_secs(HOUR),
    )
    .unwrap();
    assert_eq!(signature, setup.served.join("stone.index.minisig"));
    assert_eq!(
        fs::read(setup.index()).unwrap(),
        data,
        "the index bytes are unchanged"
    );
    let text = fs::read_to_string(&signature).unwrap();
    let claims = signing::verify_bytes(
        &data,
        &text,
        std::slice::from_ref(&key.public),
        unix_now(),
        None,
    )
    .unwrap();
    assert!(claims.expires >= claims.timestamp + HOUR);

    let repository = setup.repository(&[&key.public_file]);
    assert_eq!(repository.keys, vec![key.public.clone()]);
    match setup.refresh(&repository).await.unwrap() {
        RefreshOutcome::Updated { packages, .. } => assert_eq!(packages.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(setup.cached(), data);
    assert!(setup.cache.join("stone.index.minisig").is_file());
    let stored = fs::read_to_string(setup.cache.join("stone.index.json")).unwrap();
    assert!(
        stored.contains(&format!("\"signed_timestamp\": {}", claims.timestamp)),
        "{stored}"
    );
    // Conditional refresh still works for a signed repository.
    assert!(matches!(
        setup.refresh(&repository).await.unwrap(),
        RefreshOutcome::NotModified { .. }
    ));
}

fn write_temp_key(setup: &Setup, key: &Keys) -> PathBuf {
    let path = setup.cache.with_file_name("key.sec");
    fs::write(&path, &key.secret).unwrap();
    path
}

/// Accept a first signed index (one package); returns its bytes.
async fn accepted_first(setup: &Setup, key: &Keys, repository: &Repository) -> Vec<u8> {
    let data = setup.publish(1);
    let now = unix_now();
    setup.sign(&key.secret, now - 2 * HOUR, now + HOUR);
    setup.refresh(repository).await.unwrap();
    assert_eq!(setup.cached(), data);
    data
}

#[tokio::test]
async fn tampering_is_detected_and_the_previous_index_kept() {
    let setup = Setup::new();
    let key = keys();
    let repository = setup.repository(&[&key.public]);
    let previous = accepted_first(&setup, &key, &repository).await;
    let now = unix_now();

    // A flipped byte in the index after signing.
    let data = setup.publish(2);
    setup.sign(&key.secret, now, now + HOUR);
    flip_byte(&setup.index(), data.len() / 2);
    let problem = setup.refused(&repository, &previous).await;
    assert!(
        matches!(problem, SignatureProblem::Invalid { .. }),
        "{problem}"
    );

    // A flipped byte in the signature itself (the second line holds the signature).
    setup.publish(2);
    setup.sign(&key.secret, now, now + HOUR);
    let signature = signing::signature_path(&setup.index());
    let text = fs::read_to_string(&signature).unwrap();
    let line2 = text.find('\n').unwrap() + 1;
    let end = line2 + text[line2..].find('\n').unwrap();
    // A character near the end: inside the Ed25519 signature, not the key id.
    let at = end - 5;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    fs::write(&signature, bytes).unwrap();
    let problem = setup.refused(&repository, &previous).await;
    assert!(
        matches!(problem, SignatureProblem::Invalid { .. }),
        "{problem}"
    );

    // A changed trusted comment (a later expiry).
    setup.sign(&key.secret, now, now + HOUR);
    let text = fs::read_to_string(&signature).unwrap();
    let forged = text.replace(
        &format!("expires:{}", now + HOUR),
        &format!("expires:{}", now + 100 * HOUR),
    );
    assert_ne!(forged, text);
    fs::write(&signature, forged).unwrap();
    let problem = setup.refused(&repository, &previous).await;
    assert!(
        matches!(problem, SignatureProblem::Invalid { .. }),
        "{problem}"
    );

    // Once the untouched signature is back, the index is accepted.
    setup.sign(&key.secret, now, now + HOUR);
    setup.refresh(&repository).await.unwrap();
    assert_eq!(setup.cached(), fs::read(setup.index()).unwrap());
}

#[tokio::test]
async fn an_older_index_replayed_is_refused() {
    let setup = Setup::new();
    let key = keys();
    let repository = setup.repository(&[&key.public]);
    let now = unix_now();
    // The old index and its genuine signature, kept by an attacker.
    setup.publish(1);
    setup.sign(&key.secret, now - 2 * HOUR, now + HOUR);
    let old_index = fs::read(setup.index()).unwrap();
    let old_signature = fs::read(signing::signature_path(&setup.index())).unwrap();
    // The newer index is accepted.
    let newer = setup.publish(2);
    setup.sign(&key.secret, now - HOUR, now + HOUR);
    setup.refresh(&repository).await.unwrap();
    assert_eq!(setup.cached(), newer);
    // Replay the old one.
    fs::write(setup.index(), &old_index).unwrap();
    fs::write(signing::signature_path(&setup.index()), &old_signature).unwrap();
    let problem = setup.refused(&repository, &newer).await;
    assert_eq!(
        problem,
        SignatureProblem::Replayed {
            timestamp: now - 2 * HOUR,
            accepted: now - HOUR
        }
    );
}

#[tokio::test]
async fn an_expired_index_is_refused() {
    let setup = Setup::new();
    let key = keys();
    let repository = setup.repository(&[&key.public]);
    let previous = accepted_first(&setup, &key, &repository).await;
    let now = unix_now();
    setup.publish(2);
    setup.sign(&key.secret, now - HOUR, now - 60);
    let problem = setup.refused(&repository, &previous).await;
    assert!(
        matches!(problem, SignatureProblem::Expired { .. }),
        "{problem}"
    );
}

#[tokio::test]
async fn an_unpinned_key_and_a_missing_signature_are_refused() {
    let setup = Setup::new();
    let key = keys();
    let stranger = keys();
    let repository = setup.repository(&[&key.public]);
    let previous = accepted_first(&setup, &key, &repository).await;
    let now = unix_now();
    setup.publish(2);
    setup.sign(&stranger.secret, now, now + HOUR);
    let problem = setup.refused(&repository, &previous).await;
    let SignatureProblem::UnpinnedKey { key_id } = &problem else {
        panic!("{problem}");
    };
    assert!(stranger.public_file.contains(key_id.as_str()), "{key_id}");

    fs::remove_file(signing::signature_path(&setup.index())).unwrap();
    let problem = setup.refused(&repository, &previous).await;
    assert!(
        matches!(problem, SignatureProblem::Missing { .. }),
        "{problem}"
    );
    assert!(
        problem.to_string().contains("stone.index.minisig"),
        "{problem}"
    );

    // Signed by nothing at all: a first refresh leaves no index behind.
    let fresh = Setup::new();
    fresh.publish(1);
    let error = fresh
        .refresh(&fresh.repository(&[&key.public]))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Signature { .. }), "{error}");
    assert!(!fresh.cache.join("stone.index").exists());
}

#[tokio::test]
async fn key_rotation_with_two_pinned_keys() {
    let setup = Setup::new();
    let root = setup.served.with_file_name("root");
    let (old, new) = (keys(), keys());
    let both = setup.repository(&[&old.public, &new.public_file]);
    repository::add(&root, &both, AddMode::New).unwrap();
    let loaded = || repository::load(&root).unwrap().remove(0);
    assert_eq!(loaded().keys, vec![old.public.clone(), new.public.clone()]);
    let now = unix_now();

    let first = setup.publish(1);
    setup.sign(&old.secret, now - 3 * HOUR, now + HOUR);
    setup.refresh(&loaded()).await.unwrap();
    assert_eq!(setup.cached(), first);
    let second = setup.publish(2);
    setup.sign(&new.secret, now - 2 * HOUR, now + HOUR);
    setup.refresh(&loaded()).await.unwrap();
    assert_eq!(setup.cached(), second);

    // Retire the old key: the new one still works, the old one no longer does.
    let mut rotated = loaded();
    rotated.keys.retain(|key| *key != old.public);
    repository::save(&root, &rotated).unwrap();
    assert_eq!(loaded().keys, vec![new.public.clone()]);
    let third = setup.publish(3);
    setup.sign(&new.secret, now - HOUR, now + HOUR);
    setup.refresh(&loaded()).await.unwrap();
    assert_eq!(setup.cached(), third);
    setup.publish(1);
    setup.sign(&old.secret, now, now + HOUR);
    let problem = setup.refused(&loaded(), &third).await;
    assert!(
        matches!(problem, SignatureProblem::UnpinnedKey { .. }),
        "{problem}"
    );
}

#[test]
fn configuration_keeps_keys_and_reads_old_files() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    let file = root.join("etc/moss/repo.d/old.kdl");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, "old {\n  uri \"file:///srv/stone.index\"\n}\n").unwrap();
    let old = repository::load(root).unwrap().remove(0);
    assert!(!old.is_signed());
    assert!(old.to_string().contains("(unsigned)"));

    let key = keys();
    fs::write(
        &file,
        format!(
            "old {{\n  uri \"file:///srv/stone.index\"\n  keys \"{}\"\n}}\n",
            key.public
        ),
    )
    .unwrap();
    let signed = repository::load(root).unwrap().remove(0);
    assert_eq!(signed.keys, vec![key.public.clone()]);
    assert!(signed.to_string().contains("(signed)"));

    fs::write(
        &file,
        "old {\n  uri \"file:///srv/stone.index\"\n  keys \"nope\"\n}\n",
    )
    .unwrap();
    let error = repository::load(root).unwrap_err().to_string();
    assert!(
        error.contains("line 1") && error.contains("public key"),
        "{error}"
    );
}

/// Interoperability with the reference `minisign` tool (Debian package `minisign`).
#[tokio::test]
async fn interoperates_with_the_minisign_tool() {
    if Command::new("minisign").arg("-v").output().is_err() {
        let note = "note: the `minisign` binary is missing; skipping the interop test";
        let _ = writeln!(std::io::stderr(), "{note}");
        return;
    }
    let setup = Setup::new();
    let dir = setup.served.with_file_name("keys");
    fs::create_dir_all(&dir).unwrap();
    let (public, secret) = (dir.join("tool.pub"), dir.join("tool.sec"));
    let status = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .status()
        .unwrap();
    assert!(status.success());
    let public_text = fs::read_to_string(&public).unwrap();
    let repository = setup.repository(&[&public_text]);

    // Signed by the tool, verified by moss.
    let data = setup.publish(1);
    let now = unix_now();
    let status = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(&secret)
        .arg("-m")
        .arg(setup.index())
        .arg("-t")
        .arg(format!("timestamp:{now}\texpires:{}", now + HOUR))
        .status()
        .unwrap();
    assert!(status.success());
    setup.refresh(&repository).await.unwrap();
    assert_eq!(setup.cached(), data);

    // Signed by moss, verified by the tool.
    setup.publish(2);
    let signature =
        repository::sign_index(&setup.index(), &secret, Duration::from_secs(HOUR)).unwrap();
    let output = Command::new("minisign")
        .arg("-Vm")
        .arg(setup.index())
        .arg("-p")
        .arg(&public)
        .arg("-x")
        .arg(&signature)
        .output()
        .unwrap();
    let stdout = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("timestamp:") && stdout.contains("expires:"),
        "{stdout}"
    );
    setup.refresh(&repository).await.unwrap();
    assert_eq!(setup.cached(), fs::read(setup.index()).unwrap());

    // The tool sees tampering too.
    flip_byte(&setup.index(), 100);
    let status = Command::new("minisign")
        .arg("-Vm")
        .arg(setup.index())
        .arg("-p")
        .arg(&public)
        .output()
        .unwrap()
        .status;
    assert!(!status.success());
}

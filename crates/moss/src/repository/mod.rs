//! Repositories: configuration files, fetching indexes and packages, writing indexes.
//!
//! * [`config`] reads the vendor and admin `repo.d` files (KDL, legacy YAML), merges them
//!   deterministically and writes admin definitions atomically.
//! * [`fetch`] downloads indexes and packages over `file://`, `http://` and `https://` with
//!   timeouts, retries, resumable transfers, SHA-256 verification and conditional index refresh.
//! * [`index`] writes and checks `stone.index` repository indexes.
//! * [`signing`] signs indexes with minisign and verifies them against pinned keys.
//!
//! Nothing here prints: progress goes through [`crate::events::Reporter`].

pub mod config;
pub mod fetch;
pub mod index;
mod refresh;
pub mod root_index;
pub mod signing;
mod sources;
mod transfer;

use std::{
    fmt,
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use url::Url;

pub use config::{
    AddMode, ConfigError, ConfiguredRepository, Layer, Source, add, check_add, disable, enable,
    load, load_configured, remove, save,
};
pub use fetch::{
    DEFAULT_CONCURRENCY, FetchError, FetchOptions, Fetched, Fetcher, PackageRequest,
    RefreshOutcome, cached_package_path, sha256_file,
};
pub use index::{IndexError, IndexSummary, IndexedPackage, read_index, write_index};
pub use refresh::verify_cached_index;
pub use root_index::{RootIndex, RootIndexProblem, RootIndexSource, Version};
pub use signing::{KeyError, SignError, SignatureProblem, SignedClaims, sign_index};
pub use sources::record_resolved_index;

/// One configured repository: a direct `stone.index` source, or a root-index source whose index
/// URL is resolved at refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Identifier, `[A-Za-z0-9][A-Za-z0-9-_]*`; also the name of its admin file `<id>.kdl`.
    pub id: String,
    /// Free text shown by `repo list`.
    pub description: String,
    /// URL of the repository's `stone.index` (`file`, `http` or `https`); for a root-index
    /// source, the URL of its `moss-root-index.json` until the index URL is resolved.
    pub uri: Url,
    /// Larger is preferred.
    pub priority: u64,
    /// Inactive repositories are neither refreshed nor queried.
    pub active: bool,
    /// Pinned minisign public keys (base64); an index must be signed by one of them. Empty for
    /// an unsigned repository.
    pub keys: Vec<String>,
    /// A root-index source (engine spec §11.2) instead of a direct index URL.
    pub root_index: Option<RootIndexSource>,
}

impl Repository {
    /// A new active repository, after checking its id and URI scheme.
    pub fn new(
        id: impl Into<String>,
        uri: Url,
        priority: u64,
        description: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let id = id.into();
        validate_id(&id)?;
        check_scheme(&id, &uri)?;
        Ok(Self {
            id,
            description: description.into(),
            uri,
            priority,
            active: true,
            keys: Vec::new(),
            root_index: None,
        })
    }

    /// A new active repository following a channel tree's root index.
    pub fn from_root_index(
        id: impl Into<String>,
        source: RootIndexSource,
        priority: u64,
        description: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let mut repository = Self::new(id, source.root_index_url(), priority, description)?;
        repository.root_index = Some(source);
        Ok(repository)
    }

    /// The same repository reading its index from `index_url` (a resolved root-index source).
    pub fn resolved_to(&self, index_url: Url) -> Self {
        Self {
            uri: index_url,
            ..self.clone()
        }
    }

    /// The URL of the index cached in `cache_dir`: the direct URI, or for a root-index source
    /// the URL the last refresh resolved (none before the first refresh).
    pub fn cached_index_url(&self, cache_dir: &Path) -> Option<Url> {
        if self.root_index.is_none() {
            return Some(self.uri.clone());
        }
        let text = fs::read_to_string(cache_dir.join(root_index::RESOLVED_INDEX_FILE)).ok()?;
        Url::parse(text.trim()).ok()
    }

    /// The same repository with these pinned public keys (base64 or `.pub` file text), each
    /// checked and normalised; duplicates are dropped.
    pub fn with_keys<S: AsRef<str>>(mut self, keys: &[S]) -> Result<Self, ConfigError> {
        let mut pinned: Vec<String> = Vec::new();
        for key in keys {
            let key = signing::parse_public_key(key.as_ref()).map_err(|problem| {
                ConfigError::InvalidKey {
                    id: self.id.clone(),
                    problem,
                }
            })?;
            if !pinned.contains(&key) {
                pinned.push(key);
            }
        }
        self.keys = pinned;
        Ok(self)
    }

    /// Whether indexes of this repository must be signed.
    pub fn is_signed(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Upstream's cache directory name for this repository under `/.moss/repo/`: XXH3-64 of
    /// `moss-<uri>`, lowercase hex without zero padding (engine spec §2).
    pub fn cache_dir_name(&self) -> String {
        format!(
            "{:02x}",
            xxhash_rust::xxh3::xxh3_64(format!("moss-{}", self.uri).as_bytes())
        )
    }

    /// Resolve an index entry's `PackageURI` against this repository's index URL.
    pub fn package_url(&self, uri: &str) -> Result<Url, FetchError> {
        resolve_package_uri(&self.uri, uri)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root_index {
            Some(source) => write!(formatter, "{} = {source} [{}]", self.id, self.priority)?,
            None => write!(formatter, "{} = {} [{}]", self.id, self.uri, self.priority)?,
        }
        formatter.write_str(if self.is_signed() {
            " (signed)"
        } else {
            " (unsigned)"
        })?;
        if !self.active {
            formatter.write_str(" (disabled)")?;
        }
        Ok(())
    }
}

/// Check a repository id: an ASCII letter or digit, then letters, digits, `-` or `_`.
pub fn validate_id(id: &str) -> Result<(), ConfigError> {
    let mut chars = id.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::InvalidId { id: id.to_owned() })
    }
}

/// Ids a new repository cannot take: `local` is the origin recorded for packages installed from
/// local `.stone` files, so a repository of that name would have its packages mistaken for them.
pub const RESERVED_IDS: &[&str] = &["local"];

/// Refuse a reserved id (compared without case, so that `Local` is not a near-duplicate).
pub fn check_reserved_id(id: &str) -> Result<(), ConfigError> {
    if RESERVED_IDS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(id))
    {
        return Err(ConfigError::ReservedId { id: id.to_owned() });
    }
    Ok(())
}

/// Only `file`, `http` and `https` repositories can be fetched.
pub(crate) fn check_scheme(id: &str, uri: &Url) -> Result<(), ConfigError> {
    match uri.scheme() {
        "file" | "http" | "https" => Ok(()),
        _ => Err(ConfigError::UnsupportedUri {
            id: id.to_owned(),
            uri: uri.to_string(),
        }),
    }
}

/// Resolve a `PackageURI` from an index against the index URL (RFC 3986 reference resolution:
/// relative to the directory holding `stone.index`, `../` allowed, absolute URLs kept as they are).
pub fn resolve_package_uri(index_url: &Url, uri: &str) -> Result<Url, FetchError> {
    index_url
        .join(uri)
        .map_err(|error| FetchError::InvalidPackageUri {
            index: index_url.to_string(),
            uri: uri.to_owned(),
            reason: error.to_string(),
        })
}

/// Write a file atomically: a temporary file in the same directory, flushed to disk, then renamed
/// over `path`. The directory is created when missing. On error nothing is left behind.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let (temp, mut file) = create_temp_beside(path)?;
    let result = (|| {
        write(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        // Make the rename itself durable; failure to sync a directory is not fatal.
        if let Ok(directory) = File::open(parent) {
            let _ = directory.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Create a new, uniquely named temporary file beside `path` (`.<name>.<pid>.<n>.tmp`).
pub(crate) fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let temp = path.with_file_name(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match File::options().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
}

/// Whether a string is a lowercase or uppercase 64-digit hex SHA-256.
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "A1", "1st", "core-x86_64", "my_repo"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "", ".", "..", "-a", "_a", "a b", "a/b", "é", "a.b", "../x", "a\n", "\t", "a\0",
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_ids() {
        for reserved in ["local", "Local", "LOCAL"] {
            assert!(matches!(
                check_reserved_id(reserved),
                Err(ConfigError::ReservedId { .. })
            ));
        }
        assert!(check_reserved_id("local2").is_ok());
        assert!(check_reserved_id("core").is_ok());
    }

    #[test]
    fn package_uris_resolve_like_rfc3986() {
        let index = Url::parse("https://example.org/repo/x86_64/stone.index").unwrap();
        let cases = [
            ("a.stone", "https://example.org/repo/x86_64/a.stone"),
            ("sub/b.stone", "https://example.org/repo/x86_64/sub/b.stone"),
            ("../pool/c.stone", "https://example.org/repo/pool/c.stone"),
            ("/abs/d.stone", "https://example.org/abs/d.stone"),
            (
                "https://cdn.example.net/e.stone",
                "https://cdn.example.net/e.stone",
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(resolve_package_uri(&index, uri).unwrap().as_str(), expected);
        }
        let file = Url::parse("file:///srv/repo/stone.index").unwrap();
        assert_eq!(
            resolve_package_uri(&file, "../x.stone").unwrap().as_str(),
            "file:///srv/x.stone"
        );
    }

    #[test]
    fn upstream_cache_dir_name() {
        let repository = Repository::new(
            "volatile",
            Url::parse("https://cdn.aerynos.dev/unstable/x86_64/stone.index").unwrap(),
            0,
            "",
        )
        .unwrap();
        assert_eq!(repository.cache_dir_name(), "921406fc79b8b8d4");
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file");
        write_atomically(&path, |file| file.write_all(b"one")).unwrap();
        write_atomically(&path, |file| file.write_all(b"two")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let failed = write_atomically(&path, |_| Err(io::Error::other("boom")));
        assert!(failed.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }
}

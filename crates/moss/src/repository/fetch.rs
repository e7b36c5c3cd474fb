//! Fetching repository indexes and packages.
//!
//! Compared to upstream (engine spec §7.4, §11.4, §18.9) downloads have connect and read
//! timeouts, retry transient failures with exponential backoff (reported as
//! [`Event::Retry`]), resume interrupted transfers from `<destination>.part` with `Range`, check
//! sizes and SHA-256 before anything is put in place, and refresh indexes conditionally
//! (`If-None-Match` / `If-Modified-Since`), replacing the cached index only with one that
//! decodes completely.

use std::{
    collections::HashMap,
    fmt, io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use url::Url;

use super::{
    index::IndexError,
    is_sha256_hex,
    signing::SignatureProblem,
    transfer::{Request, Subject, Transfer, io_error, remove_part},
};
use crate::events::{Event, SharedReporter, Silent};

/// Packages downloaded at the same time by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Name of the cached index inside a repository's cache directory.
pub const INDEX_FILE: &str = "stone.index";
/// Name of the file beside the cached index that keeps its URL, `ETag` and `Last-Modified`.
pub const INDEX_VALIDATORS_FILE: &str = "stone.index.json";
/// Name of the verified signature kept beside the cached index of a signed repository.
pub const INDEX_SIGNATURE_FILE: &str = "stone.index.minisig";

/// Network settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed between two reads of a response.
    pub read_timeout: Duration,
    /// Attempts per download, the first one included (at least 1).
    pub attempts: u32,
    /// Delay before the second attempt; doubled for every further one.
    pub initial_backoff: Duration,
    /// Longest delay between attempts.
    pub max_backoff: Duration,
    /// Packages downloaded at the same time by [`Fetcher::fetch_packages`].
    pub concurrency: usize,
    /// Hosts whose old direct index URIs are migrated to their root index
    /// ([`super::root_index::OFFICIAL_HOSTS`]).
    pub legacy_hosts: Vec<String>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            concurrency: DEFAULT_CONCURRENCY,
            legacy_hosts: super::root_index::OFFICIAL_HOSTS
                .iter()
                .map(|host| (*host).to_owned())
                .collect(),
        }
    }
}

/// One package to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRequest {
    /// Package name, for events and errors.
    pub name: String,
    /// Absolute URL of the `.stone` (see [`super::resolve_package_uri`]).
    pub url: Url,
    /// Expected SHA-256, 64 hex digits (the package id).
    pub sha256: String,
    /// Expected size in bytes, when the index gives it.
    pub size: Option<u64>,
    /// Where the verified file goes; the download runs in `<destination>.part`.
    pub destination: PathBuf,
}

/// A package that is in place and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Package name.
    pub name: String,
    /// The verified file.
    pub path: PathBuf,
    /// A valid copy was already there: nothing was transferred.
    pub cached: bool,
    /// Size of the file.
    pub bytes: u64,
}

/// How an index refresh ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new index was downloaded, checked and put in place.
    Updated {
        /// The cached index.
        path: PathBuf,
        /// Its packages.
        packages: Vec<stone::Package>,
    },
    /// The server says the cached index is current.
    NotModified {
        /// The cached index.
        path: PathBuf,
    },
}

/// A download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client cannot be built.
    #[error("Cannot set up the HTTP client: {0}")]
    Client(#[source] Arc<reqwest::Error>),
    /// The URL's scheme is not `file`, `http` or `https`.
    #[error(
        "Cannot download {subject} from {url}: only file://, http:// and https:// URLs are \
         supported; fix the URL"
    )]
    UnsupportedUrl {
        /// What was downloaded.
        subject: String,
        /// The URL.
        url: String,
    },
    /// The source cannot be reached or keeps failing.
    #[error(
        "Cannot download {subject} from {url} ({attempts} attempt(s)): {reason}; check the \
         network connection and the URL, then retry"
    )]
    Unreachable {
        /// What was downloaded, e.g. "the index of repository `core`".
        subject: String,
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The server refused the request with a status that retrying does not fix.
    #[error(
        "Cannot download {subject} from {url}: the server answered HTTP {status}; check the URL"
    )]
    Status {
        /// What was downloaded.
        subject: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// A package's SHA-256 differs from the index; the file was removed.
    #[error(
        "Package `{package}` downloaded from {url} has SHA-256 {actual}, but its index entry \
         says {expected}; the download was removed: refresh the repository index and retry"
    )]
    HashMismatch {
        /// Package name.
        package: String,
        /// Where it came from.
        url: String,
        /// The hash from the index.
        expected: String,
        /// The hash of the downloaded bytes.
        actual: String,
    },
    /// A package's size differs from the index; the file was removed.
    #[error(
        "Package `{package}` downloaded from {url} is {actual} bytes, but its index entry says \
         {expected}; the download was removed: refresh the repository index and retry"
    )]
    SizeMismatch {
        /// Package name.
        package: String,
        /// Where it came from.
        url: String,
        /// The size from the index.
        expected: u64,
        /// The downloaded size.
        actual: u64,
    },
    /// A request carries something that is not a SHA-256.
    #[error(
        "Package `{package}` has the invalid SHA-256 {hash:?} (64 hex digits expected); refresh \
         the repository index"
    )]
    InvalidHash {
        /// Package name.
        package: String,
        /// The value given.
        hash: String,
    },
    /// A downloaded index does not decode or lacks required fields; the previous one is kept.
    #[error(
        "The index of repository `{repository}` downloaded from {url} is unusable, so the \
         previous index is kept: {source}"
    )]
    InvalidIndex {
        /// Repository id.
        repository: String,
        /// Where it came from.
        url: String,
        /// What is wrong.
        source: Box<IndexError>,
    },
    /// A signed repository's index fails signature checks; the previous one is kept.
    #[error(
        "The index of repository `{repository}` downloaded from {url} is refused, so the previous \
         index is kept: {problem}"
    )]
    Signature {
        /// Repository id.
        repository: String,
        /// Where the index came from.
        url: String,
        /// Why it is refused.
        problem: SignatureProblem,
    },
    /// The cached index of a signed repository is no longer vouched for by a valid signature
    /// (typically an expired one: a frozen mirror keeps serving an old index, answering "not
    /// modified"). The cached index stays on disk but its packages are not offered.
    #[error(
        "The cached index of repository `{repository}` ({url}) is no longer trusted, so its \
         packages are not offered: {problem}. The cached index is kept until a refresh gets a \
         valid signature"
    )]
    Untrusted {
        /// Repository id.
        repository: String,
        /// The index URL.
        url: String,
        /// Why the cached index is not trusted.
        problem: SignatureProblem,
    },
    /// A repository's root index cannot be fetched into a usable index URL.
    #[error(
        "The root index of repository `{repository}` ({url}) cannot be used: {problem}; check the \
         repository's base-uri, channel and version"
    )]
    RootIndex {
        /// Repository id.
        repository: String,
        /// The root index URL.
        url: String,
        /// What is wrong.
        problem: super::root_index::RootIndexProblem,
    },
    /// A `PackageURI` cannot be resolved against the index URL.
    #[error("Cannot resolve the package URI {uri:?} against the index URL {index}: {reason}")]
    InvalidPackageUri {
        /// The index URL.
        index: String,
        /// The URI from the index.
        uri: String,
        /// Why.
        reason: String,
    },
    /// A local file cannot be read or written.
    #[error("Cannot write or read {}: {source}; check free space and permissions", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Downloads indexes and packages; cheap to share between tasks.
#[derive(Clone)]
pub struct Fetcher {
    /// The HTTP client, or why it could not be built. A system without CA certificates (a
    /// minimal image, an initrd) cannot build one, yet must still use `file://` repositories:
    /// the error is reported only when an HTTP URL is fetched.
    pub(crate) client: Result<reqwest::Client, Arc<reqwest::Error>>,
    pub(crate) options: FetchOptions,
    pub(crate) reporter: SharedReporter,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Fetcher")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for Fetcher {
    /// A fetcher with default options and no progress reporting.
    fn default() -> Self {
        Self::with_options(FetchOptions::default(), Arc::new(Silent))
    }
}

impl Fetcher {
    /// A fetcher with these options, reporting to `reporter`.
    pub fn with_options(options: FetchOptions, reporter: SharedReporter) -> Self {
        Self::with_client_builder(reqwest::Client::builder(), options, reporter)
    }

    /// Like [`Fetcher::with_options`], starting from a client builder (e.g. with extra root
    /// certificates). The user agent and timeouts are set here. A client that cannot be built
    /// (no TLS roots on the system) is an error of each fetch, not of the fetcher: `file://`
    /// repositories work without one.
    pub fn with_client_builder(
        builder: reqwest::ClientBuilder,
        options: FetchOptions,
        reporter: SharedReporter,
    ) -> Self {
        let client = builder
            .user_agent(concat!("moss/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .build()
            .map_err(Arc::new);
        Self {
            client,
            options,
            reporter,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// Download one package to its destination, verified; a valid file already there is kept.
    ///
    /// An interrupted download leaves `<destination>.part`, which the next call resumes. A
    /// package whose size or SHA-256 is wrong is removed and reported as an error.
    pub async fn fetch_package(&self, request: &PackageRequest) -> Result<Fetched, FetchError> {
        if !is_sha256_hex(&request.sha256) {
            return Err(FetchError::InvalidHash {
                package: request.name.clone(),
                hash: request.sha256.clone(),
            });
        }
        let expected = request.sha256.to_ascii_lowercase();
        let destination = &request.destination;
        let item = request.name.as_str();
        self.reporter.report(Event::DownloadStarted {
            item: item.to_owned(),
            bytes: request.size,
        });
        if let Ok(metadata) = tokio::fs::metadata(destination).await
            && metadata.is_file()
        {
            let size_ok = request.size.is_none_or(|size| size == metadata.len());
            if size_ok && sha256_file(destination).await? == expected {
                self.reporter.report(Event::DownloadFinished {
                    item: item.to_owned(),
                    cached: true,
                });
                return Ok(Fetched {
                    name: request.name.clone(),
                    path: destination.clone(),
                    cached: true,
                    bytes: metadata.len(),
                });
            }
            remove_part(destination).await?;
        }
        let part = part_path(destination);
        let label = format!("package `{}`", request.name);
        let subject = Subject {
            item,
            label: &label,
        };
        let mut restarted = false;
        loop {
            let transfer = self
                .transfer(Request {
                    subject,
                    url: &request.url,
                    part: &part,
                    resume: true,
                    size: request.size,
                    conditional: None,
                })
                .await?;
            let Transfer::Complete { bytes, resumed, .. } = transfer else {
                unreachable!("no conditional request was made");
            };
            let problem = match request.size {
                Some(size) if size != bytes => Some(FetchError::SizeMismatch {
                    package: request.name.clone(),
                    url: request.url.to_string(),
                    expected: size,
                    actual: bytes,
                }),
                _ => {
                    let actual = sha256_file(&part).await?;
                    (actual != expected).then(|| FetchError::HashMismatch {
                        package: request.name.clone(),
                        url: request.url.to_string(),
                        expected: expected.clone(),
                        actual,
                    })
                }
            };
            match problem {
                None => {
                    tokio::fs::rename(&part, destination)
                        .await
                        .map_err(|source| io_error(destination, source))?;
                    self.reporter.report(Event::DownloadFinished {
                        item: item.to_owned(),
                        cached: false,
                    });
                    return Ok(Fetched {
                        name: request.name.clone(),
                        path: destination.clone(),
                        cached: false,
                        bytes,
                    });
                }
                Some(error) => {
                    remove_part(&part).await?;
                    if !resumed || restarted {
                        return Err(error);
                    }
                    // The kept prefix may belong to another file: start over once.
                    restarted = true;
                    self.reporter.report(Event::Retry {
                        item: item.to_owned(),
                        attempt: 2,
                        reason: format!("{error}; downloading again from the start"),
                    });
                }
            }
        }
    }

    /// Download packages, at most [`FetchOptions::concurrency`] at a time. Returns one result per
    /// request, in request order, or the first error (downloads still running are stopped;
    /// their `.part` files are resumed next time). Requests sharing a destination are fetched
    /// once.
    pub async fn fetch_packages(
        &self,
        requests: &[PackageRequest],
    ) -> Result<Vec<Fetched>, FetchError> {
        let mut unique: Vec<&PackageRequest> = Vec::new();
        let mut slot_of: HashMap<&Path, usize> = HashMap::new();
        let slots: Vec<usize> = requests
            .iter()
            .map(|request| {
                *slot_of
                    .entry(request.destination.as_path())
                    .or_insert_with(|| {
                        unique.push(request);
                        unique.len() - 1
                    })
            })
            .collect();
        let mut done: Vec<(usize, Fetched)> = stream::iter(unique.iter().copied().enumerate())
            .map(|(slot, request)| async move {
                self.fetch_package(request)
                    .await
                    .map(|fetched| (slot, fetched))
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .try_collect()
            .await?;
        done.sort_by_key(|(slot, _)| *slot);
        Ok(requests
            .iter()
            .zip(slots)
            .map(|(request, slot)| Fetched {
                name: request.name.clone(),
                ..done[slot].1.clone()
            })
            .collect())
    }
}

/// Where upstream keeps a downloaded package in the cache:
/// `<cache>/downloads/v1/<h[0..5]>/<h[-5..]>/<h>` (engine spec §2).
pub fn cached_package_path(cache_dir: &Path, sha256: &str) -> PathBuf {
    let hash = sha256.to_ascii_lowercase();
    let (head, tail) = if hash.len() >= 10 && hash.is_ascii() {
        (&hash[..5], &hash[hash.len() - 5..])
    } else {
        ("", "")
    };
    cache_dir
        .join("downloads/v1")
        .join(head)
        .join(tail)
        .join(&hash)
}

/// SHA-256 of a file, lowercase hex.
pub async fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || crate::store::sha256_file(&owned))
        .await
        .map_err(io::Error::other)
        .and_then(|result| result)
        .map_err(|source| io_error(path, source))
}

pub(crate) fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_paths_follow_upstream() {
        let hash = "13e2bce256b183ee0c721bd6cc438be8dcebf95850c8d851801e4ce000195d94";
        assert_eq!(
            cached_package_path(Path::new("/.moss/cache"), hash),
            Path::new("/.moss/cache/downloads/v1/13e2b/95d94").join(hash)
        );
        assert_eq!(part_path(Path::new("/a/b")), PathBuf::from("/a/b.part"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let fetcher = Fetcher::default();
        assert_eq!(fetcher.backoff(2, None), Duration::from_millis(500));
        assert_eq!(fetcher.backoff(3, None), Duration::from_secs(1));
        assert_eq!(
            fetcher.backoff(4, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(fetcher.backoff(30, None), Duration::from_secs(30));
    }
}

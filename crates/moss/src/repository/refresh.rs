//! Conditional index refresh: the index is downloaded beside the cached one, checked, then
//! put in place with its validators (`ETag`, `Last-Modified`) for the next request. For a
//! repository with pinned keys the signature `<index URL>.minisig` is fetched too and must verify
//! (see [`super::signing`]) before the index replaces the cached one; the accepted signing time is
//! kept with the validators so that an older index is never accepted again.
//!
//! Freeze protection: "not modified" (HTTP 304, or an unchanged `file://` index) proves nothing
//! about freshness, since a frozen mirror answers exactly that forever. So every refresh of a
//! signed repository checks that a signature valid *now* vouches for the cached index: the kept
//! one, or else a freshly fetched one (the repository may re-sign an unchanged index with a new
//! expiry). An expired index fails the refresh and is kept on disk, but
//! [`verify_cached_index`] also refuses it at plan time, so its packages are not offered.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use futures_util::{StreamExt as _, stream};

use super::{
    Repository,
    fetch::{
        FetchError, Fetcher, INDEX_FILE, INDEX_SIGNATURE_FILE, INDEX_VALIDATORS_FILE,
        RefreshOutcome, part_path,
    },
    index::read_index,
    signing::{self, SIGNATURE_SUFFIX, SignatureProblem, SignedClaims},
    transfer::{Request, Subject, Transfer, Validators, io_error, remove_part},
    write_atomically,
};
use crate::events::Event;

impl Fetcher {
    /// Refresh a repository's index into `cache_dir` (`stone.index` plus `stone.index.json` with
    /// the validators for the next conditional request).
    ///
    /// The new index is downloaded beside the old one and must decode completely as a repository
    /// index whose entries all carry a SHA-256 and a URI; otherwise the previous index stays.
    pub async fn refresh_index(
        &self,
        repository: &Repository,
        cache_dir: &Path,
    ) -> Result<RefreshOutcome, FetchError> {
        let index = cache_dir.join(INDEX_FILE);
        let validators_path = cache_dir.join(INDEX_VALIDATORS_FILE);
        let part = part_path(&index);
        let url = &repository.uri;
        let previous = read_validators(&validators_path)
            .filter(|stored| stored.url == url.as_str())
            .filter(|_| index.is_file());
        let signed = repository.is_signed();
        // When keys were pinned after an unsigned index was cached, fetch and verify it again.
        let stored = previous.as_ref().filter(|stored| {
            !stored.validators.is_empty() && (!signed || stored.signed_timestamp.is_some())
        });
        let accepted = previous.as_ref().and_then(|stored| stored.signed_timestamp);
        let label = format!("the index of repository `{}`", repository.id);
        let item = repository.id.as_str();
        self.reporter.report(Event::DownloadStarted {
            item: item.to_owned(),
            bytes: None,
        });
        let transfer = self
            .transfer(Request {
                subject: Subject {
                    item,
                    label: &label,
                },
                url,
                part: &part,
                resume: false,
                size: None,
                conditional: stored.map(|stored| &stored.validators),
            })
            .await?;
        let validators = match transfer {
            Transfer::NotModified => {
                if signed {
                    self.recheck_unchanged(repository, cache_dir, previous.as_ref())
                        .await?;
                }
                self.reporter.report(Event::DownloadFinished {
                    item: item.to_owned(),
                    cached: true,
                });
                return Ok(RefreshOutcome::NotModified { path: index });
            }
            Transfer::Complete { validators, .. } => validators,
        };
        // The signature first: nothing unverified is decoded.
        let signed_timestamp = if signed {
            match self
                .verify_signature(repository, cache_dir, &part, accepted)
                .await
            {
                Ok(timestamp) => Some(timestamp),
                Err(error) => {
                    remove_part(&part).await?;
                    return Err(error);
                }
            }
        } else {
            None
        };
        let checked = {
            let part = part.clone();
            tokio::task::spawn_blocking(move || read_index(&part))
        }
        .await
        .map_err(|error| io_error(&part, io::Error::other(error)))?;
        let packages = match checked {
            Ok(packages) => packages,
            Err(source) => {
                remove_part(&part).await?;
                remove_part(&part_path(&cache_dir.join(INDEX_SIGNATURE_FILE))).await?;
                return Err(FetchError::InvalidIndex {
                    repository: repository.id.clone(),
                    url: url.to_string(),
                    source: Box::new(source),
                });
            }
        };
        // Drop the old validators first: they must never describe a different index.
        remove_part(&validators_path).await?;
        tokio::fs::rename(&part, &index)
            .await
            .map_err(|source| io_error(&index, source))?;
        if signed {
            let signature = cache_dir.join(INDEX_SIGNATURE_FILE);
            tokio::fs::rename(part_path(&signature), &signature)
                .await
                .map_err(|source| io_error(&signature, source))?;
        }
        if !validators.is_empty() || signed_timestamp.is_some() {
            write_validators(
                &validators_path,
                &StoredValidators {
                    url: url.to_string(),
                    validators,
                    signed_timestamp,
                },
            )?;
        }
        self.reporter.report(Event::DownloadFinished {
            item: item.to_owned(),
            cached: false,
        });
        Ok(RefreshOutcome::Updated {
            path: index,
            packages,
        })
    }

    /// The server says the cached index of a signed repository is unchanged: check that a
    /// signature valid now still vouches for it. The kept signature is tried first (no request);
    /// when it no longer verifies (expired, or its key is no longer pinned) the signature is
    /// fetched again, since the repository may have re-signed the same index, and kept when it
    /// verifies. Otherwise the refresh fails with [`FetchError::Untrusted`]; the cached index and
    /// its kept signature stay as they are.
    async fn recheck_unchanged(
        &self,
        repository: &Repository,
        cache_dir: &Path,
        stored: Option<&StoredValidators>,
    ) -> Result<(), FetchError> {
        let kept = {
            let (repository, cache_dir) = (repository.clone(), cache_dir.to_owned());
            tokio::task::spawn_blocking(move || verify_cached_index(&repository, &cache_dir))
        }
        .await
        .map_err(|error| io_error(cache_dir, io::Error::other(error)))?;
        match kept {
            Ok(_) => return Ok(()),
            Err(FetchError::Untrusted { .. }) => {}
            Err(error) => return Err(error),
        }
        let index = cache_dir.join(INDEX_FILE);
        let accepted = stored.and_then(|stored| stored.signed_timestamp);
        let timestamp = match self
            .verify_signature(repository, cache_dir, &index, accepted)
            .await
        {
            Ok(timestamp) => timestamp,
            Err(FetchError::Signature {
                repository,
                url,
                problem,
            }) => {
                return Err(FetchError::Untrusted {
                    repository,
                    url,
                    problem,
                });
            }
            Err(error) => return Err(error),
        };
        let signature = cache_dir.join(INDEX_SIGNATURE_FILE);
        tokio::fs::rename(part_path(&signature), &signature)
            .await
            .map_err(|source| io_error(&signature, source))?;
        if let Some(stored) = stored {
            write_validators(
                &cache_dir.join(INDEX_VALIDATORS_FILE),
                &StoredValidators {
                    url: stored.url.clone(),
                    validators: stored.validators.clone(),
                    signed_timestamp: Some(timestamp),
                },
            )?;
        }
        Ok(())
    }

    /// Fetch `<index URL>.minisig` into `<cache>/stone.index.minisig.part` and verify the
    /// downloaded index `part` with the repository's pinned keys; returns the signing time.
    /// On failure the signature download is removed.
    async fn verify_signature(
        &self,
        repository: &Repository,
        cache_dir: &Path,
        part: &Path,
        accepted: Option<u64>,
    ) -> Result<u64, FetchError> {
        let url = &repository.uri;
        let refuse = |problem| FetchError::Signature {
            repository: repository.id.clone(),
            url: url.to_string(),
            problem,
        };
        let mut signature_url = url.clone();
        signature_url.set_path(&format!("{}{SIGNATURE_SUFFIX}", url.path()));
        let signature_part = part_path(&cache_dir.join(INDEX_SIGNATURE_FILE));
        let label = format!("the index signature of repository `{}`", repository.id);
        let transfer = self
            .transfer(Request {
                subject: Subject {
                    item: repository.id.as_str(),
                    label: &label,
                },
                url: &signature_url,
                part: &signature_part,
                resume: false,
                size: None,
                conditional: None,
            })
            .await;
        if let Err(error) = transfer {
            remove_part(&signature_part).await?;
            return Err(refuse(SignatureProblem::Missing {
                url: signature_url.to_string(),
                reason: error.to_string(),
            }));
        }
        let checked = {
            let (part, signature_part) = (part.to_owned(), signature_part.clone());
            let keys = repository.keys.clone();
            tokio::task::spawn_blocking(move || -> io::Result<_> {
                let data = std::fs::read(&part)?;
                let signature = std::fs::read(&signature_part)?;
                let Ok(signature) = String::from_utf8(signature) else {
                    return Ok(Err(SignatureProblem::Malformed {
                        reason: "it is not text".to_owned(),
                    }));
                };
                Ok(signing::verify_bytes(
                    &data,
                    &signature,
                    &keys,
                    signing::unix_now(),
                    accepted,
                ))
            })
        }
        .await
        .map_err(io::Error::other)
        .and_then(|result| result)
        .map_err(|source| io_error(part, source));
        match checked {
            Ok(Ok(claims)) => Ok(claims.timestamp),
            Ok(Err(problem)) => {
                remove_part(&signature_part).await?;
                Err(refuse(problem))
            }
            Err(error) => {
                remove_part(&signature_part).await?;
                Err(error)
            }
        }
    }

    /// Refresh several repositories, [`FetchOptions::concurrency`] at a time, each into its own
    /// cache directory. One result per repository, in the order given: a failing repository does
    /// not stop the others.
    ///
    /// [`FetchOptions::concurrency`]: super::FetchOptions::concurrency
    pub async fn refresh_indexes(
        &self,
        repositories: &[(Repository, PathBuf)],
    ) -> Vec<Result<RefreshOutcome, FetchError>> {
        // Owned futures, made up front: a closure over borrowed tuples inside the stream trips
        // rustc's higher-ranked Send check (rust-lang/rust#102211) where mossd spawns this.
        let jobs: Vec<_> = repositories
            .iter()
            .map(|(repository, cache_dir)| {
                let (fetcher, repository, cache_dir) =
                    (self.clone(), repository.clone(), cache_dir.clone());
                async move { fetcher.refresh_index(&repository, &cache_dir).await }
            })
            .collect();
        stream::iter(jobs)
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await
    }
}

/// The JSON kept beside a cached index.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredValidators {
    url: String,
    #[serde(flatten)]
    validators: Validators,
    /// Signing time of the accepted index of a signed repository (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signed_timestamp: Option<u64>,
}

fn read_validators(path: &Path) -> Option<StoredValidators> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_validators(path: &Path, stored: &StoredValidators) -> Result<(), FetchError> {
    let json = serde_json::to_vec_pretty(stored).map_err(io::Error::other);
    json.and_then(|json| write_atomically(path, |file| file.write_all(&json)))
        .map_err(|source| io_error(path, source))
}

/// Check the cached index of a signed repository in `cache_dir` against the signature kept
/// beside it, with the repository's pinned keys and the current time; returns what the
/// signature claims.
///
/// Refresh checks downloaded indexes, but a cached index is read again later (to plan, list and
/// search) possibly long after: by then its signature may have expired (the repository stopped
/// getting fresh signatures, e.g. a frozen mirror) or its key may have been unpinned. Such an
/// index is refused with [`FetchError::Untrusted`], naming the problem and the fix; it stays on
/// disk. An unreadable index is [`FetchError::Io`].
pub fn verify_cached_index(
    repository: &Repository,
    cache_dir: &Path,
) -> Result<SignedClaims, FetchError> {
    let index = cache_dir.join(INDEX_FILE);
    let data = std::fs::read(&index).map_err(|source| io_error(&index, source))?;
    let untrusted = |problem| FetchError::Untrusted {
        repository: repository.id.clone(),
        url: repository.uri.to_string(),
        problem,
    };
    let kept = cache_dir.join(INDEX_SIGNATURE_FILE);
    let signature = std::fs::read_to_string(&kept).map_err(|error| {
        untrusted(SignatureProblem::NotKept {
            reason: format!("{}: {error}", kept.display()),
        })
    })?;
    signing::verify_bytes(
        &data,
        &signature,
        &repository.keys,
        signing::unix_now(),
        None,
    )
    .map_err(untrusted)
}

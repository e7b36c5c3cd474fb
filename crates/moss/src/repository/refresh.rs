//! Conditional index refresh: the index is downloaded beside the cached one, checked, then
//! put in place with its validators (`ETag`, `Last-Modified`) for the next request.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use futures_util::{StreamExt as _, stream};

use super::{
    Repository,
    fetch::{FetchError, Fetcher, INDEX_FILE, INDEX_VALIDATORS_FILE, RefreshOutcome, part_path},
    index::read_index,
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
        let stored = read_validators(&validators_path)
            .filter(|stored| stored.url == url.as_str() && !stored.validators.is_empty())
            .filter(|_| index.is_file());
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
                conditional: stored.as_ref().map(|stored| &stored.validators),
            })
            .await?;
        let validators = match transfer {
            Transfer::NotModified => {
                self.reporter.report(Event::DownloadFinished {
                    item: item.to_owned(),
                    cached: true,
                });
                return Ok(RefreshOutcome::NotModified { path: index });
            }
            Transfer::Complete { validators, .. } => validators,
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
        if !validators.is_empty() {
            let stored = StoredValidators {
                url: url.to_string(),
                validators,
            };
            let json = serde_json::to_vec_pretty(&stored).map_err(io::Error::other);
            json.and_then(|json| write_atomically(&validators_path, |file| file.write_all(&json)))
                .map_err(|source| io_error(&validators_path, source))?;
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

    /// Refresh several repositories, [`FetchOptions::concurrency`] at a time, each into its own
    /// cache directory. One result per repository, in the order given: a failing repository does
    /// not stop the others.
    ///
    /// [`FetchOptions::concurrency`]: super::FetchOptions::concurrency
    pub async fn refresh_indexes(
        &self,
        repositories: &[(Repository, PathBuf)],
    ) -> Vec<Result<RefreshOutcome, FetchError>> {
        stream::iter(repositories)
            .map(|(repository, cache_dir)| self.refresh_index(repository, cache_dir))
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
}

fn read_validators(path: &Path) -> Option<StoredValidators> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

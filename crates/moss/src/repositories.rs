//! The installation's repositories: configuration, refresh, what they offer, and downloads.
//!
//! Each repository's index is cached under `ROOT/.moss/repo/<id>/stone.index`; what a repository
//! offers is read from that cache, so queries never touch the network.

use std::path::PathBuf;

use url::Url;

use crate::{
    engine::{EngineError, Moss},
    events::Event,
    operations::{Available, Fetch},
    repository::{self, AddMode, FetchError, FetchOptions, Fetcher, PackageRequest, Repository},
};

impl Moss {
    /// The configured repositories, highest priority first.
    pub fn repositories(&self) -> Result<Vec<Repository>, EngineError> {
        Ok(repository::load(&self.installation.paths().root)?)
    }

    /// Add a repository (`file://`, `https://` URL or a local path to a `stone.index`) and
    /// fetch its index. `keys` are the pinned minisign public keys (base64 or `.pub` file text)
    /// its index must be signed with; none for an unsigned repository.
    pub async fn add_repository(
        &self,
        id: &str,
        uri: &str,
        priority: u64,
        description: &str,
        keys: &[String],
    ) -> Result<(), EngineError> {
        let url = parse_location(uri)?;
        let repository = Repository::new(id, url, priority, description)?.with_keys(keys)?;
        repository::add(&self.installation.paths().root, &repository, AddMode::New)?;
        self.refresh(Some(id)).await
    }

    /// Remove a repository's admin definition and its cached index.
    pub fn remove_repository(&self, id: &str) -> Result<(), EngineError> {
        repository::remove(&self.installation.paths().root, id)?;
        let cache = self.repository_cache(id);
        if cache.exists() {
            std::fs::remove_dir_all(&cache).map_err(crate::engine::io_error(
                "removing the repository cache",
                &cache,
            ))?;
        }
        Ok(())
    }

    /// Enable or disable a repository.
    pub fn set_repository_active(&self, id: &str, active: bool) -> Result<(), EngineError> {
        let root = &self.installation.paths().root;
        if active {
            repository::enable(root, id)?;
        } else {
            repository::disable(root, id)?;
        }
        Ok(())
    }

    /// Refresh the indexes of every active repository, or of one.
    pub async fn refresh(&self, only: Option<&str>) -> Result<(), EngineError> {
        let repositories: Vec<Repository> = self
            .repositories()?
            .into_iter()
            .filter(|repository| repository.active && only.is_none_or(|id| id == repository.id))
            .collect();
        if let Some(id) = only
            && repositories.is_empty()
        {
            return Err(EngineError::Other(format!(
                "repository {id} is not configured or is disabled; `moss repo list` shows the repositories"
            )));
        }
        let fetcher = self.fetcher()?;
        let jobs: Vec<(Repository, PathBuf)> = repositories
            .into_iter()
            .map(|repository| {
                let cache = self.repository_cache(&repository.id);
                (repository, cache)
            })
            .collect();
        for result in fetcher.refresh_indexes(&jobs).await {
            result?;
        }
        Ok(())
    }

    /// Everything the active repositories offer, from their cached indexes.
    ///
    /// The cached index of a signed repository is checked against its kept signature first. One
    /// that is no longer vouched for (its signature expired, or its key was unpinned) is
    /// skipped with a warning: offering it would let a frozen mirror keep this system on old
    /// packages unnoticed. Skipping rather than failing keeps removals, the other repositories
    /// and offline use working; the refresh itself fails with the same error.
    pub async fn available(&self) -> Result<Vec<Available>, EngineError> {
        let mut available = Vec::new();
        for repository in self
            .repositories()?
            .into_iter()
            .filter(|repository| repository.active)
        {
            let cache = self.repository_cache(&repository.id);
            let index = cache.join(repository::fetch::INDEX_FILE);
            if !index.exists() {
                continue;
            }
            if repository.is_signed() {
                match repository::verify_cached_index(&repository, &cache) {
                    Ok(_) => {}
                    Err(error @ FetchError::Untrusted { .. }) => {
                        self.reporter.report(Event::Warning {
                            message: error.to_string(),
                        });
                        continue;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            for meta in repository::read_index(&index)? {
                let Some(uri) = meta.uri.as_deref() else {
                    continue;
                };
                let url = repository.package_url(uri)?;
                available.push(Available {
                    repository: repository.id.clone(),
                    priority: repository.priority,
                    url,
                    meta,
                });
            }
        }
        Ok(available)
    }

    /// Download packages into the cache (verified against their SHA-256); returns
    /// `(path, id, repository)` for [`Moss::add_stones`].
    pub async fn download(
        &self,
        fetch: &[Fetch],
    ) -> Result<Vec<(PathBuf, Option<String>, String)>, EngineError> {
        let requests: Vec<PackageRequest> = fetch
            .iter()
            .map(|item| PackageRequest {
                name: item.name.clone(),
                url: item.url.clone(),
                sha256: item.id.clone(),
                size: item.size,
                destination: self.installation.paths().download(&item.id),
            })
            .collect();
        let fetched = self.fetcher()?.fetch_packages(&requests).await?;
        Ok(fetched
            .into_iter()
            .zip(fetch)
            .map(|(fetched, item)| (fetched.path, Some(item.id.clone()), item.repository.clone()))
            .collect())
    }

    fn fetcher(&self) -> Result<Fetcher, EngineError> {
        Ok(Fetcher::with_options(
            FetchOptions::default(),
            self.reporter.clone(),
        )?)
    }

    fn repository_cache(&self, id: &str) -> PathBuf {
        self.installation.paths().repositories().join(id)
    }
}

/// A URL, or a local path turned into a `file://` URL.
fn parse_location(text: &str) -> Result<Url, EngineError> {
    if let Ok(url) = Url::parse(text) {
        return Ok(url);
    }
    let path = std::path::absolute(text).map_err(crate::engine::io_error(
        "resolving the repository path",
        std::path::Path::new(text),
    ))?;
    Url::from_file_path(&path)
        .map_err(|()| EngineError::Other(format!("{text} is neither a URL nor a usable path; give file:///path/stone.index or https://...")))
}

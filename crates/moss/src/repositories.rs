//! The installation's repositories: configuration, refresh, what they offer, and downloads.
//!
//! Each repository's index is cached under `ROOT/.moss/repo/<id>/stone.index`; what a repository
//! offers is read from that cache, so queries never touch the network.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use url::Url;

use crate::{
    engine::{EngineError, Moss},
    events::Event,
    operations::{Available, Fetch},
    repository::{self, AddMode, ConfigError, FetchError, Fetcher, PackageRequest, Repository},
};

impl Moss {
    /// The configured repositories, highest priority first.
    /// On a system managed by a model they are the model's; the configuration files are then
    /// not read.
    pub fn repositories(&self) -> Result<Vec<Repository>, EngineError> {
        if let Some(model) = self.system_model()? {
            return Ok(model.repositories);
        }
        Ok(repository::load(&self.installation.paths().root)?)
    }

    /// Add a repository (`file://`, `https://` URL or a local path to a `stone.index`) and
    /// fetch its index. `keys` are the pinned minisign public keys (base64 or `.pub` file text)
    /// its index must be signed with; none for an unsigned repository.
    ///
    /// All or nothing: when the index cannot be fetched or is refused, the configuration and the
    /// cached indexes are exactly as before and the error is [`ConfigError::NotAdded`].
    pub async fn add_repository(
        &self,
        id: &str,
        uri: &str,
        priority: u64,
        description: &str,
        keys: &[String],
    ) -> Result<(), EngineError> {
        let repository = definition(id, uri, priority, description, keys)?;
        self.put_repository(&repository, AddMode::New).await
    }

    /// Like [`Moss::add_repository`] for a root-index source: `base_uri` is the base of the
    /// channel tree and `spec` is `version=V[,channel=C][,arch=A]` (engine spec §11.2). The root
    /// index is fetched and resolved, then the snapshot's index, before anything is written.
    pub async fn add_root_index_repository(
        &self,
        id: &str,
        base_uri: &str,
        spec: &str,
        priority: u64,
        description: &str,
        keys: &[String],
    ) -> Result<(), EngineError> {
        let base = parse_location(base_uri)?;
        let source = repository::root_index::parse_spec(base, spec).map_err(|problem| {
            EngineError::InvalidRequest(format!("Repository `{id}`: {problem}"))
        })?;
        let repository =
            Repository::from_root_index(id, source, priority, description)?.with_keys(keys)?;
        self.put_repository(&repository, AddMode::New).await
    }

    /// Like [`Moss::add_repository`], replacing the definition of an id that is already
    /// configured (an admin override for a vendor repository). When the new index cannot be
    /// fetched, the previous definition and its cached index are kept.
    pub async fn replace_repository(
        &self,
        id: &str,
        uri: &str,
        priority: u64,
        description: &str,
        keys: &[String],
    ) -> Result<(), EngineError> {
        let repository = definition(id, uri, priority, description, keys)?;
        self.put_repository(&repository, AddMode::Replace).await
    }

    /// Fetch the index into a staging directory first, then swap it in and write the
    /// definition; any failure puts the old cache back, so that a repository is only ever
    /// configured together with an index that was fetched and verified.
    async fn put_repository(
        &self,
        repository: &Repository,
        mode: AddMode,
    ) -> Result<(), EngineError> {
        let root = &self.installation.paths().root;
        // Even replacing a `local` defined before the id was reserved is refused here: the user
        // is choosing the id now, and can choose one that does not collide.
        repository::check_reserved_id(&repository.id)?;
        let model = self.system_model()?;
        let replacing = match &model {
            // A modelled system's repositories are the model's; the files are not consulted.
            Some(model) => {
                let exists = model
                    .repositories
                    .iter()
                    .any(|known| known.id == repository.id);
                if exists && mode == AddMode::New {
                    return Err(ConfigError::AlreadyExists {
                        id: repository.id.clone(),
                        defined: repository::Source {
                            layer: repository::Layer::Admin,
                            path: model.path.clone(),
                            line: 1,
                        },
                    }
                    .into());
                }
                exists
            }
            None => {
                repository::check_add(root, repository, mode)?;
                repository::load(root)?
                    .iter()
                    .any(|existing| existing.id == repository.id)
            }
        };
        let cache = self.repository_cache(&repository.id);
        let staging = beside(&cache, "adding");
        let aside = beside(&cache, "replaced");
        recover_leftovers(&cache, &staging, &aside).map_err(cache_error(&cache))?;

        let fetcher = self.fetcher();
        let fetched = async {
            let resolved = match &repository.root_index {
                Some(source) => repository.resolved_to(
                    fetcher
                        .resolve_root_index(repository, source, &staging)
                        .await?,
                ),
                None => repository.clone(),
            };
            fetcher.refresh_index(&resolved, &staging).await?;
            if resolved.root_index.is_some() {
                repository::record_resolved_index(&staging, &resolved.uri)?;
            }
            Ok::<_, FetchError>(())
        };
        if let Err(source) = fetched.await {
            let _ = remove_dir_if_exists(&staging);
            return Err(ConfigError::NotAdded {
                id: repository.id.clone(),
                replacing,
                source: Box::new(source),
            }
            .into());
        }
        // Swap the caches by renames, which the undo below reverses.
        let had_cache = cache.exists();
        let swapped = (|| {
            if had_cache {
                fs::rename(&cache, &aside)?;
            }
            fs::rename(&staging, &cache).inspect_err(|_| {
                if had_cache {
                    let _ = fs::rename(&aside, &cache);
                }
            })
        })();
        if let Err(error) = swapped {
            let _ = remove_dir_if_exists(&staging);
            return Err(cache_error(&cache)(error));
        }
        let written = match model {
            Some(mut model) => {
                model.set_repository(repository);
                model.save(&self.model_path()).map_err(EngineError::from)
            }
            None => repository::add(root, repository, mode)
                .map(|_| ())
                .map_err(EngineError::from),
        };
        if let Err(error) = written {
            let _ = remove_dir_if_exists(&cache);
            if had_cache {
                let _ = fs::rename(&aside, &cache);
            }
            return Err(error);
        }
        // The old cache is garbage now; a leftover is removed by the next add of this id.
        let _ = remove_dir_if_exists(&aside);
        Ok(())
    }

    /// Remove a repository's admin definition and its cached index.
    pub fn remove_repository(&self, id: &str) -> Result<(), EngineError> {
        match self.system_model()? {
            Some(mut model) => {
                if !model.remove_repository(id) {
                    return Err(ConfigError::NotFound { id: id.to_owned() }.into());
                }
                model.save(&self.model_path())?;
            }
            None => {
                repository::remove(&self.installation.paths().root, id)?;
            }
        }
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
        if let Some(mut model) = self.system_model()? {
            let mut repository = model
                .repositories
                .iter()
                .find(|known| known.id == id)
                .cloned()
                .ok_or_else(|| ConfigError::NotFound { id: id.to_owned() })?;
            repository.active = active;
            model.set_repository(&repository);
            model.save(&self.model_path())?;
            return Ok(());
        }
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
            return Err(EngineError::UnknownRepository(id.to_owned()));
        }
        let fetcher = self.fetcher();
        // A repository whose source cannot be resolved is reported after the others refreshed.
        let mut first_error = None;
        let mut jobs: Vec<(Repository, PathBuf)> = Vec::new();
        for repository in repositories {
            let cache = self.repository_cache(&repository.id);
            match self.refresh_source(fetcher, repository, &cache).await {
                Ok(repository) => jobs.push((repository, cache)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let results = fetcher.refresh_indexes(&jobs).await;
        for ((repository, cache), result) in jobs.iter().zip(results) {
            let recorded = result.and_then(|_| match repository.root_index {
                Some(_) => repository::record_resolved_index(cache, &repository.uri),
                None => Ok(()),
            });
            if let Err(error) = recorded {
                first_error.get_or_insert(error.into());
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The definition to refresh `repository` with: an old official URI is first migrated to
    /// its root index (the admin definition is rewritten, with a warning naming both), and a
    /// root-index source is resolved to the index URL it follows now.
    async fn refresh_source(
        &self,
        fetcher: &Fetcher,
        mut repository: Repository,
        cache: &Path,
    ) -> Result<Repository, EngineError> {
        if let Some(source) = fetcher.probe_legacy(&repository, cache).await {
            let before = repository.to_string();
            repository.uri = source.root_index_url();
            repository.root_index = Some(source);
            let file = repository::save(&self.installation.paths().root, &repository)?;
            self.reporter.report(Event::Warning {
                message: format!(
                    "repository `{}` used an outdated URI: {} now reads \"{repository}\" instead \
                     of \"{before}\"",
                    repository.id,
                    file.display()
                ),
            });
        }
        if let Some(source) = &repository.root_index {
            let index_url = fetcher
                .resolve_root_index(&repository, source, cache)
                .await?;
            return Ok(repository.resolved_to(index_url));
        }
        Ok(repository)
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
            // A root-index source is read from the snapshot it was last refreshed from.
            let Some(index_url) = repository.cached_index_url(&cache) else {
                continue;
            };
            let repository = repository.resolved_to(index_url);
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
        let fetched = self.fetcher().fetch_packages(&requests).await?;
        Ok(fetched
            .into_iter()
            .zip(fetch)
            .map(|(fetched, item)| (fetched.path, Some(item.id.clone()), item.repository.clone()))
            .collect())
    }

    pub(crate) fn fetcher(&self) -> &Fetcher {
        self.fetcher.get_or_init(|| {
            Fetcher::with_options(self.fetch_options.clone(), self.reporter.clone())
        })
    }

    fn repository_cache(&self, id: &str) -> PathBuf {
        self.installation.paths().repositories().join(id)
    }
}

/// `<repo>/.<id>.<what>`: hidden, beside the cache of the same id, on the same file system.
fn beside(cache: &Path, what: &str) -> PathBuf {
    let name = cache
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    cache.with_file_name(format!(".{name}.{what}"))
}

/// Clean up after an add that was interrupted: a staged index is dropped; a cache moved aside
/// is put back when nothing replaced it, dropped otherwise.
fn recover_leftovers(cache: &Path, staging: &Path, aside: &Path) -> io::Result<()> {
    remove_dir_if_exists(staging)?;
    if aside.exists() {
        if cache.exists() {
            remove_dir_if_exists(aside)?;
        } else {
            fs::rename(aside, cache)?;
        }
    }
    if let Some(parent) = cache.parent() {
        fs::create_dir_all(parent)?;
    }
    Ok(())
}

fn remove_dir_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

fn cache_error(cache: &Path) -> impl FnOnce(io::Error) -> EngineError {
    crate::engine::io_error("replacing the repository cache", cache)
}

/// A URL, or a local path turned into a `file://` URL.
/// The definition `repo add` writes.
fn definition(
    id: &str,
    uri: &str,
    priority: u64,
    description: &str,
    keys: &[String],
) -> Result<Repository, EngineError> {
    let url = parse_location(uri)?;
    Ok(Repository::new(id, url, priority, description)?.with_keys(keys)?)
}

fn parse_location(text: &str) -> Result<Url, EngineError> {
    if let Ok(url) = Url::parse(text) {
        return Ok(url);
    }
    let path = std::path::absolute(text).map_err(crate::engine::io_error(
        "resolving the repository path",
        std::path::Path::new(text),
    ))?;
    Url::from_file_path(&path)
        .map_err(|()| {
            EngineError::InvalidRequest(format!(
                "{text} is neither a URL nor a usable path; give file:///path/stone.index or https://..."
            ))
        })
}

//! Fetching root indexes: turning a root-index source into the URL of the index to refresh, and
//! probing whether an old direct URI of an official host has moved to a root index.

use std::{io::Write as _, path::Path};

use url::Url;

use super::{
    Repository, RootIndex, RootIndexSource,
    fetch::{FetchError, Fetcher, part_path},
    root_index::{self, RESOLVED_INDEX_FILE, ROOT_INDEX_FILE, legacy_source},
    transfer::{Request, Subject, io_error, remove_part},
    write_atomically,
};

impl Fetcher {
    /// Download the root index of `source` into `cache_dir/moss-root-index.json` and resolve
    /// the URL of the index the repository follows now.
    pub async fn resolve_root_index(
        &self,
        repository: &Repository,
        source: &RootIndexSource,
        cache_dir: &Path,
    ) -> Result<Url, FetchError> {
        let url = source.root_index_url();
        let index = self
            .download_root_index(repository, &url, cache_dir, ROOT_INDEX_FILE)
            .await?;
        source
            .resolve(&index)
            .map_err(|problem| FetchError::RootIndex {
                repository: repository.id.clone(),
                url: url.to_string(),
                problem,
            })
    }

    /// Whether a direct repository uses an old URI of an official host whose stream has moved
    /// to a root index (engine spec §11.3): the source to use instead. An unreachable host, a
    /// missing or unreadable root index, or a stream still in the `legacy` format keep the
    /// direct URI (`None`), so that a probe never breaks a refresh that would work.
    pub async fn probe_legacy(
        &self,
        repository: &Repository,
        cache_dir: &Path,
    ) -> Option<RootIndexSource> {
        if repository.root_index.is_some() {
            return None;
        }
        let hosts: Vec<&str> = self
            .options
            .legacy_hosts
            .iter()
            .map(String::as_str)
            .collect();
        let source = legacy_source(&repository.uri, &hosts)?;
        // One quick attempt: an unreachable official host must not slow every refresh down.
        let mut probe = self.clone();
        probe.options.attempts = 1;
        let url = source.root_index_url();
        let name = ".legacy-probe.json";
        let index = probe
            .download_root_index(repository, &url, cache_dir, name)
            .await
            .ok();
        let _ = std::fs::remove_file(cache_dir.join(name));
        let index = index?;
        let root_index::Version::Stream(stream) = &source.version else {
            return None;
        };
        let history = &index.streams.get(stream)?.history;
        let format = &index.history.get(history)?.format;
        (format != "legacy").then_some(source)
    }

    async fn download_root_index(
        &self,
        repository: &Repository,
        url: &Url,
        cache_dir: &Path,
        file_name: &str,
    ) -> Result<RootIndex, FetchError> {
        tokio::fs::create_dir_all(cache_dir)
            .await
            .map_err(|source| io_error(cache_dir, source))?;
        let target = cache_dir.join(file_name);
        let part = part_path(&target);
        let label = format!("the root index of repository `{}`", repository.id);
        self.transfer(Request {
            subject: Subject {
                item: repository.id.as_str(),
                label: &label,
            },
            url,
            part: &part,
            resume: false,
            size: None,
            conditional: None,
        })
        .await?;
        let bytes = tokio::fs::read(&part)
            .await
            .map_err(|source| io_error(&part, source))?;
        let parsed = RootIndex::parse(&bytes).map_err(|problem| FetchError::RootIndex {
            repository: repository.id.clone(),
            url: url.to_string(),
            problem,
        });
        if parsed.is_err() {
            remove_part(&part).await?;
        } else {
            tokio::fs::rename(&part, &target)
                .await
                .map_err(|source| io_error(&target, source))?;
        }
        parsed
    }
}

/// Record the index URL a root-index repository was refreshed from, in its cache.
pub fn record_resolved_index(cache_dir: &Path, index_url: &Url) -> Result<(), FetchError> {
    let path = cache_dir.join(RESOLVED_INDEX_FILE);
    write_atomically(&path, |file| writeln!(file, "{index_url}"))
        .map_err(|source| io_error(&path, source))
}

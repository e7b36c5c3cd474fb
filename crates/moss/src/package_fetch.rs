//! `moss fetch NAME... -o DIR`: download packages the enabled repositories offer into a
//! directory, under their real file names, checked against the index's SHA-256. Nothing of the
//! installation changes (the database, store and cache are only read), so it needs no lock
//! beyond a reader's and no privilege beyond writing to `DIR`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stone::{Dependency, DependencyKind};

use crate::{
    engine::{EngineError, Moss, io_error},
    operations::Available,
    repository::PackageRequest,
};

/// One package written by [`Moss::fetch_to`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedPackage {
    /// Package name.
    pub name: String,
    /// `version-release-build`.
    pub version: String,
    /// The repository it came from.
    pub repository: String,
    /// Package id (SHA-256 of the file, checked).
    pub id: String,
    /// Where it was written.
    pub path: PathBuf,
    /// A verified copy was already there.
    pub cached: bool,
}

impl Moss {
    /// Download the best offer for each request (a name or `kind(target)`: the highest
    /// priority repository, then the newest release) into `directory`, named as the index names
    /// the file (`name-version-release-build-arch.stone` when it does not). Only the packages
    /// named are fetched, not their dependencies (as upstream's `moss fetch`).
    pub async fn fetch_to(
        &self,
        requests: &[String],
        directory: &Path,
    ) -> Result<Vec<FetchedPackage>, EngineError> {
        let available = self.available().await?;
        let mut chosen: Vec<&Available> = Vec::new();
        for request in requests {
            let dependency: Dependency = request.parse().map_err(|error| {
                EngineError::InvalidRequest(format!("`{request}` is not a package name: {error}"))
            })?;
            let best = available
                .iter()
                .filter(|offer| offers(offer, &dependency))
                .max_by_key(|offer| (offer.priority, offer.meta.release, offer.meta.build_release))
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "no enabled repository offers {request}; {} lists what they offer",
                        crate::hint::moss("list available")
                    ))
                })?;
            if !chosen.iter().any(|offer| offer.meta.hash == best.meta.hash) {
                chosen.push(best);
            }
        }
        std::fs::create_dir_all(directory)
            .map_err(io_error("creating the download directory", directory))?;
        let requests: Vec<PackageRequest> = chosen
            .iter()
            .map(|offer| PackageRequest {
                name: offer.meta.name.clone(),
                url: offer.url.clone(),
                sha256: offer.meta.hash.clone().unwrap_or_default(),
                size: offer.meta.size,
                destination: directory.join(file_name(offer)),
            })
            .collect();
        let fetched = self.fetcher().fetch_packages(&requests).await?;
        Ok(fetched
            .into_iter()
            .zip(chosen)
            .map(|(fetched, offer)| FetchedPackage {
                name: offer.meta.name.clone(),
                version: format!(
                    "{}-{}-{}",
                    offer.meta.version, offer.meta.release, offer.meta.build_release
                ),
                repository: offer.repository.clone(),
                id: offer.meta.hash.clone().unwrap_or_default(),
                path: fetched.path,
                cached: fetched.cached,
            })
            .collect())
    }
}

fn offers(offer: &Available, dependency: &Dependency) -> bool {
    (dependency.kind == DependencyKind::Name && dependency.target == offer.meta.name)
        || offer.meta.provides.contains(dependency)
}

/// The last segment of the index's URI when it is a plain `.stone` file name, else the
/// canonical name. Never a path: a hostile index cannot make us write outside the directory.
fn file_name(offer: &Available) -> String {
    let from_url = offer
        .url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .map(str::to_owned)
        // Escaped names (`%2F`...) are not taken as they are: the canonical name is used.
        .filter(|name| name.ends_with(".stone") && !name.starts_with('.') && !name.contains('%'));
    from_url.unwrap_or_else(|| {
        let meta = &offer.meta;
        format!(
            "{}-{}-{}-{}-{}.stone",
            meta.name, meta.version, meta.release, meta.build_release, meta.architecture
        )
    })
}

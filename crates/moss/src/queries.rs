//! Read-only questions about an installation: listings, package details, searches, state diffs.
//!
//! Direct mode and `mossd` answer them with the same code, so both give the same answers.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use stone::{Dependency, DependencyKind, Package};

use crate::{
    db::State,
    engine::{EngineError, Installed, Moss},
    operations::Available,
};

/// One package in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageSummary {
    /// Package id (SHA-256 of its stone).
    pub id: String,
    /// Name.
    pub name: String,
    /// Upstream version.
    pub version: String,
    /// Recipe release.
    pub release: u64,
    /// Build release.
    pub build_release: u64,
    /// One-line summary.
    pub summary: String,
    /// For installed packages: whether the user asked for it.
    pub explicit: Option<bool>,
    /// For available packages: the repository offering it.
    pub repository: Option<String>,
}

impl From<Installed> for PackageSummary {
    fn from(installed: Installed) -> Self {
        let meta = installed.package.meta;
        Self {
            id: installed.package.id,
            name: meta.name,
            version: meta.version,
            release: meta.release,
            build_release: meta.build_release,
            summary: meta.summary,
            explicit: Some(installed.explicit),
            repository: None,
        }
    }
}

impl From<Available> for PackageSummary {
    fn from(available: Available) -> Self {
        let meta = available.meta;
        Self {
            id: meta.hash.clone().unwrap_or_default(),
            name: meta.name,
            version: meta.version,
            release: meta.release,
            build_release: meta.build_release,
            summary: meta.summary,
            explicit: None,
            repository: Some(available.repository),
        }
    }
}

/// Everything known about one installed or available package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDetails {
    /// `installed` or `available`.
    pub status: String,
    /// Package id.
    pub id: String,
    /// For installed packages: whether the user asked for it.
    pub explicit: Option<bool>,
    /// For available packages: the repository.
    pub repository: Option<String>,
    /// Its metadata.
    pub package: Package,
    /// Absolute paths of its files (installed packages, when asked for).
    pub files: Vec<String>,
}

/// A file of an installed package matching a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHit {
    /// Absolute path.
    pub path: String,
    /// Name of the package owning it.
    pub package: String,
}

/// One state in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSummary {
    /// State id.
    pub id: u64,
    /// Creation time, UTC seconds.
    pub created: i64,
    /// What made it.
    pub summary: String,
    /// Free text.
    pub description: Option<String>,
    /// Number of packages.
    pub packages: usize,
    /// Whether it is the active state.
    pub active: bool,
}

impl StateSummary {
    /// Summarise `state`, marking it active when it is.
    pub fn new(state: &State, active: Option<u64>) -> Self {
        Self {
            id: state.id,
            created: state.created,
            summary: state.summary.clone(),
            description: state.description.clone(),
            packages: state.selections.len(),
            active: Some(state.id) == active,
        }
    }
}

/// What differs between two states, by package name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDiff {
    /// `name version-release` of packages only in the newer state.
    pub added: Vec<String>,
    /// `name version-release` of packages only in the older state.
    pub removed: Vec<String>,
    /// `(name, old version-release, new version-release)`.
    pub changed: Vec<(String, String, String)>,
}

fn matches(dependency: &Dependency, meta: &Package) -> bool {
    (dependency.kind == DependencyKind::Name && dependency.target == meta.name)
        || meta.provides.contains(dependency)
}

fn full_version(meta: &Package) -> String {
    format!("{}-{}", meta.version, meta.release)
}

impl Moss {
    /// Installed packages by name, optionally only those the user asked for.
    pub async fn list_installed(
        &self,
        explicit_only: bool,
    ) -> Result<Vec<PackageSummary>, EngineError> {
        Ok(self
            .installed()
            .await?
            .into_iter()
            .filter(|installed| !explicit_only || installed.explicit)
            .map(PackageSummary::from)
            .collect())
    }

    /// Packages the enabled repositories offer, by name.
    pub async fn list_available(&self) -> Result<Vec<PackageSummary>, EngineError> {
        let mut listing: Vec<PackageSummary> = self
            .available()
            .await?
            .into_iter()
            .map(PackageSummary::from)
            .collect();
        listing.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }

    /// Details of the installed and available packages that provide each request.
    pub async fn package_details(
        &self,
        requests: &[String],
        with_files: bool,
    ) -> Result<Vec<PackageDetails>, EngineError> {
        let installed = self.installed().await?;
        let available = self.available().await?;
        let mut reports = Vec::new();
        for request in requests {
            let dependency: Dependency = request.parse().map_err(|error| {
                EngineError::InvalidRequest(format!("`{request}` is not a package name: {error}"))
            })?;
            let before = reports.len();
            for package in installed
                .iter()
                .filter(|installed| matches(&dependency, &installed.package.meta))
            {
                let files = if with_files {
                    self.files_of(&package.package.id).await?
                } else {
                    Vec::new()
                };
                reports.push(PackageDetails {
                    status: "installed".into(),
                    id: package.package.id.clone(),
                    explicit: Some(package.explicit),
                    repository: None,
                    package: package.package.meta.clone(),
                    files,
                });
            }
            for package in available
                .iter()
                .filter(|available| matches(&dependency, &available.meta))
            {
                reports.push(PackageDetails {
                    status: "available".into(),
                    id: package.meta.hash.clone().unwrap_or_default(),
                    explicit: None,
                    repository: Some(package.repository.clone()),
                    package: package.meta.clone(),
                    files: Vec::new(),
                });
            }
            if reports.len() == before {
                return Err(EngineError::NotFound(format!(
                    "no installed or available package provides {request}; try {}",
                    crate::hint::moss("search")
                )));
            }
        }
        Ok(reports)
    }

    /// Absolute paths of the files of a stored package.
    pub async fn files_of(&self, id: &str) -> Result<Vec<String>, EngineError> {
        let layouts = self.db.layouts(&[id.to_owned()]).await?;
        Ok(layouts
            .into_iter()
            .flat_map(|(_, layouts)| layouts)
            .filter_map(|layout| layout.entry.target().map(|target| format!("/usr/{target}")))
            .collect())
    }

    /// Packages whose name or summary contains `keyword` (case-insensitive), name matches first.
    pub async fn search(
        &self,
        keyword: &str,
        installed_only: bool,
    ) -> Result<Vec<PackageSummary>, EngineError> {
        let keyword = keyword.to_lowercase();
        let hit = |meta: &Package| {
            meta.name.to_lowercase().contains(&keyword)
                || meta.summary.to_lowercase().contains(&keyword)
        };
        let mut listing: Vec<PackageSummary> = self
            .installed()
            .await?
            .into_iter()
            .filter(|installed| hit(&installed.package.meta))
            .map(PackageSummary::from)
            .collect();
        if !installed_only {
            listing.extend(
                self.available()
                    .await?
                    .into_iter()
                    .filter(|available| hit(&available.meta))
                    .map(PackageSummary::from),
            );
        }
        listing.sort_by_key(|item| {
            (
                !item.name.to_lowercase().contains(&keyword),
                item.name.clone(),
            )
        });
        Ok(listing)
    }

    /// Files of installed packages whose path contains `needle`.
    pub async fn search_file(&self, needle: &str) -> Result<Vec<FileHit>, EngineError> {
        let needle = needle.trim_start_matches("/usr/").trim_start_matches('/');
        let installed = self.installed().await?;
        let ids: Vec<String> = installed
            .iter()
            .map(|installed| installed.package.id.clone())
            .collect();
        let names: HashMap<&str, &str> = installed
            .iter()
            .map(|installed| {
                (
                    installed.package.id.as_str(),
                    installed.package.meta.name.as_str(),
                )
            })
            .collect();
        let mut hits = Vec::new();
        for (id, layouts) in self.db.layouts(&ids).await? {
            let package = names.get(id.as_str()).copied().unwrap_or_default();
            for layout in layouts {
                if let Some(target) = layout
                    .entry
                    .target()
                    .filter(|target| target.contains(needle))
                {
                    hits.push(FileHit {
                        path: format!("/usr/{target}"),
                        package: package.to_owned(),
                    });
                }
            }
        }
        Ok(hits)
    }

    /// Every state, newest first.
    pub async fn list_states(&self) -> Result<Vec<StateSummary>, EngineError> {
        let active = self.active_state();
        Ok(self
            .states()
            .await?
            .iter()
            .rev()
            .map(|state| StateSummary::new(state, active))
            .collect())
    }

    /// What changed from state `from` to state `to`.
    pub async fn state_diff(&self, from: u64, to: u64) -> Result<StateDiff, EngineError> {
        let packages_of = |state: &State| -> Vec<String> {
            state
                .selections
                .iter()
                .map(|selection| selection.package.clone())
                .collect()
        };
        let load = async |id: u64| -> Result<BTreeMap<String, String>, EngineError> {
            let state = self
                .db
                .state(id)
                .await?
                .ok_or(EngineError::UnknownState(id))?;
            Ok(self
                .db
                .packages_by_id(&packages_of(&state))
                .await?
                .into_iter()
                .map(|package| (package.meta.name.clone(), full_version(&package.meta)))
                .collect())
        };
        let old = load(from).await?;
        let new = load(to).await?;
        let mut diff = StateDiff::default();
        for (name, version) in &new {
            match old.get(name) {
                None => diff.added.push(format!("{name} {version}")),
                Some(previous) if previous != version => {
                    diff.changed
                        .push((name.clone(), previous.clone(), version.clone()));
                }
                Some(_) => {}
            }
        }
        for (name, version) in &old {
            if !new.contains_key(name) {
                diff.removed.push(format!("{name} {version}"));
            }
        }
        Ok(diff)
    }
}

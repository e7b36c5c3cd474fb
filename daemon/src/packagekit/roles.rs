//! The query roles, answered from the engine: what to emit for each, or a PackageKit error.

use std::collections::{BTreeMap, HashMap, HashSet};

use moss::{Moss, stone::Dependency};

use super::enums::{error, filter, info};

/// A package as PackageKit sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `name;version-release;arch;data`.
    pub id: String,
    /// `installed` or `available`.
    pub info: u32,
    /// The engine's id (SHA-256 of the stone).
    pub moss_id: String,
    /// Metadata.
    pub meta: moss::stone::Package,
}

/// One thing to tell the client.
#[derive(Debug, Clone)]
pub enum Emit {
    /// `Package(u info, s id, s summary)`.
    Package(u32, String, String),
    /// `Details(a{sv})`, as string and integer fields.
    Details {
        /// The package id.
        id: String,
        /// Summary.
        summary: String,
        /// Description.
        description: String,
        /// Homepage.
        url: String,
        /// Licences, ` AND `-joined.
        license: String,
        /// Download size, when known.
        download_size: u64,
    },
    /// `Files(s id, as files)`.
    Files(String, Vec<String>),
    /// `RepoDetail(s id, s description, b enabled)`.
    RepoDetail(String, String, bool),
    /// `UpdateDetail(...)` for one package: (new id, old id, homepage, text).
    UpdateDetail(String, String, String, String),
}

/// A role failure: PackageKit error code and message.
pub type Failure = (u32, String);

/// `name;version-release;arch;data`.
pub fn package_id(meta: &moss::stone::Package, data: &str) -> String {
    format!(
        "{};{}-{};{};{data}",
        meta.name, meta.version, meta.release, meta.architecture
    )
}

/// The name of a package id, checked the way PackageKit checks ids (four fields, a name).
pub fn id_name(id: &str) -> Result<&str, Failure> {
    let fields: Vec<&str> = id.split(';').collect();
    if fields.len() != 4 || fields[0].is_empty() {
        return Err((
            error::PACKAGE_ID_INVALID,
            format!("`{id}` is not a package id (name;version;arch;data)"),
        ));
    }
    Ok(fields[0])
}

fn failed(failure: moss::EngineError) -> Failure {
    super::runner::engine_failure(&failure)
}

/// Installed packages, then what the repositories offer that is not installed.
pub async fn catalogue(moss: &Moss) -> Result<Vec<Candidate>, Failure> {
    let installed = moss.installed().await.map_err(failed)?;
    let installed_ids: HashSet<String> = installed
        .iter()
        .map(|package| package.package.id.clone())
        .collect();
    let mut list: Vec<Candidate> = installed
        .into_iter()
        .map(|package| Candidate {
            id: package_id(&package.package.meta, "installed"),
            info: info::INSTALLED,
            moss_id: package.package.id,
            meta: package.package.meta,
        })
        .collect();
    for available in moss.available().await.map_err(failed)? {
        let moss_id = available.meta.hash.clone().unwrap_or_default();
        // The same stone installed and offered is one package, shown as installed.
        if installed_ids.contains(&moss_id) {
            continue;
        }
        list.push(Candidate {
            id: package_id(&available.meta, &available.repository),
            info: info::AVAILABLE,
            moss_id,
            meta: available.meta,
        });
    }
    Ok(list)
}

/// Keep what the filter bits allow (0 and `none` allow everything).
pub fn apply_filter(list: Vec<Candidate>, bits: u64) -> Vec<Candidate> {
    let native = std::env::consts::ARCH;
    let mut kept: Vec<Candidate> = list
        .into_iter()
        .filter(|candidate| {
            let installed = candidate.info == info::INSTALLED;
            let devel = candidate.meta.name.ends_with("-devel");
            let arch_matches =
                candidate.meta.architecture == native || candidate.meta.architecture == "noarch";
            !(bits & filter::INSTALLED != 0 && !installed
                || bits & filter::NOT_INSTALLED != 0 && installed
                || bits & filter::DEVEL != 0 && !devel
                || bits & filter::NOT_DEVEL != 0 && devel
                || bits & filter::ARCH != 0 && !arch_matches
                || bits & filter::NOT_ARCH != 0 && arch_matches
                || bits & filter::SOURCE != 0)
        })
        .collect();
    if bits & filter::NEWEST != 0 {
        // One per name and installed state: the highest release, then build.
        let mut newest: BTreeMap<(String, u32), Candidate> = BTreeMap::new();
        for candidate in kept {
            let key = (candidate.meta.name.clone(), candidate.info);
            let better = newest.get(&key).is_none_or(|current| {
                (candidate.meta.release, candidate.meta.build_release)
                    > (current.meta.release, current.meta.build_release)
            });
            if better {
                newest.insert(key, candidate);
            }
        }
        kept = newest.into_values().collect();
    }
    kept
}

fn packages(list: &[Candidate]) -> Vec<Emit> {
    list.iter()
        .map(|candidate| {
            Emit::Package(
                candidate.info,
                candidate.id.clone(),
                candidate.meta.summary.clone(),
            )
        })
        .collect()
}

/// Packages matching ids or names exactly.
pub fn resolve(list: &[Candidate], requests: &[String]) -> Vec<Candidate> {
    list.iter()
        .filter(|candidate| {
            requests
                .iter()
                .any(|request| request == &candidate.meta.name || request == &candidate.id)
        })
        .cloned()
        .collect()
}

/// Run a query role; `Ok` is what to emit.
pub async fn query(
    moss: &Moss,
    role: u32,
    bits: u64,
    values: &[String],
) -> Result<Vec<Emit>, Failure> {
    use super::enums::role as r;
    // One read of the installed and available packages serves the whole role.
    let everything = catalogue(moss).await?;
    let all = apply_filter(everything.clone(), bits);
    let lower: Vec<String> = values.iter().map(|value| value.to_lowercase()).collect();
    Ok(match role {
        r::RESOLVE => packages(&resolve(&all, values)),
        r::GET_PACKAGES => packages(&all),
        r::SEARCH_NAME => packages(
            &all.into_iter()
                .filter(|candidate| {
                    let name = candidate.meta.name.to_lowercase();
                    lower.iter().all(|term| name.contains(term))
                })
                .collect::<Vec<_>>(),
        ),
        r::SEARCH_DETAILS => packages(
            &all.into_iter()
                .filter(|candidate| {
                    let text = format!(
                        "{} {} {}",
                        candidate.meta.name, candidate.meta.summary, candidate.meta.description
                    )
                    .to_lowercase();
                    lower.iter().all(|term| text.contains(term))
                })
                .collect::<Vec<_>>(),
        ),
        r::SEARCH_FILE => {
            // File lists exist for installed packages (repository indexes carry none).
            let mut hits = Vec::new();
            for candidate in all
                .iter()
                .filter(|candidate| candidate.info == info::INSTALLED)
            {
                let files = moss.files_of(&candidate.moss_id).await.map_err(failed)?;
                let matches = values.iter().any(|value| {
                    files.iter().any(|file| {
                        if value.starts_with('/') {
                            file == value
                        } else {
                            file.rsplit('/').next() == Some(value.as_str())
                        }
                    })
                });
                if matches {
                    hits.push(candidate.clone());
                }
            }
            packages(&hits)
        }
        r::WHAT_PROVIDES => {
            let wanted: Vec<Dependency> = values
                .iter()
                .filter_map(|value| value.parse().ok())
                .collect();
            packages(
                &all.into_iter()
                    .filter(|candidate| {
                        wanted.iter().any(|dependency| {
                            candidate.meta.provides.contains(dependency)
                                || candidate.meta.name == dependency.target
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        }
        r::GET_DETAILS => by_ids(&all, values)?
            .into_iter()
            .map(|candidate| Emit::Details {
                id: candidate.id.clone(),
                summary: candidate.meta.summary.clone(),
                description: candidate.meta.description.clone(),
                url: candidate.meta.homepage.clone(),
                license: candidate.meta.licenses.join(" AND "),
                download_size: candidate.meta.size.unwrap_or(0),
            })
            .collect(),
        r::GET_FILES => {
            let mut emits = Vec::new();
            for candidate in by_ids(&all, values)? {
                if candidate.info != info::INSTALLED {
                    return Err((
                        error::PACKAGE_NOT_INSTALLED,
                        format!(
                            "{} is not installed; moss lists files of installed packages",
                            candidate.id
                        ),
                    ));
                }
                let files = moss.files_of(&candidate.moss_id).await.map_err(failed)?;
                emits.push(Emit::Files(candidate.id.clone(), files));
            }
            emits
        }
        r::DEPENDS_ON => {
            let mut found = Vec::new();
            for candidate in by_ids(&all, values)? {
                for dependency in &candidate.meta.depends {
                    found.extend(providers(&everything, dependency, bits));
                }
            }
            packages(&unique(found))
        }
        r::REQUIRED_BY => {
            let targets = by_ids(&all, values)?;
            let found: Vec<Candidate> = all
                .iter()
                .filter(|candidate| {
                    candidate.meta.depends.iter().any(|dependency| {
                        targets.iter().any(|target| {
                            target.meta.name == dependency.target
                                || target.meta.provides.contains(dependency)
                        })
                    })
                })
                .cloned()
                .collect();
            packages(&found)
        }
        r::GET_REPO_LIST => moss
            .repositories()
            .map_err(failed)?
            .into_iter()
            .map(|repository| {
                let description = if repository.description.is_empty() {
                    repository.uri.to_string()
                } else {
                    repository.description.clone()
                };
                Emit::RepoDetail(repository.id, description, repository.active)
            })
            .collect(),
        r::GET_UPDATES => {
            let plan = moss.plan_sync(false).await.map_err(failed)?;
            let available = &everything;
            plan.change
                .iter()
                .filter_map(|(_, new)| {
                    available
                        .iter()
                        .find(|candidate| candidate.moss_id == new.id)
                })
                .map(|candidate| {
                    Emit::Package(
                        info::NORMAL,
                        candidate.id.clone(),
                        candidate.meta.summary.clone(),
                    )
                })
                .collect()
        }
        r::GET_UPDATE_DETAIL => {
            let plan = moss.plan_sync(false).await.map_err(failed)?;
            let mut emits = Vec::new();
            for id in values {
                let Some(candidate) = everything.iter().find(|candidate| &candidate.id == id)
                else {
                    return Err((error::PACKAGE_NOT_FOUND, format!("no package {id}")));
                };
                let old = plan
                    .change
                    .iter()
                    .find(|(_, new)| new.id == candidate.moss_id)
                    .and_then(|(old, _)| everything.iter().find(|item| item.moss_id == old.id))
                    .map(|old| old.id.clone())
                    .unwrap_or_default();
                emits.push(Emit::UpdateDetail(
                    candidate.id.clone(),
                    old,
                    candidate.meta.homepage.clone(),
                    candidate.meta.summary.clone(),
                ));
            }
            emits
        }
        _ => {
            return Err((error::INTERNAL_ERROR, format!("role {role} is not a query")));
        }
    })
}

/// The candidates with these package ids (or names), each required to exist.
pub fn by_ids(list: &[Candidate], ids: &[String]) -> Result<Vec<Candidate>, Failure> {
    let mut found = Vec::new();
    for id in ids {
        let name = id_name(id).unwrap_or(id.as_str());
        let candidate = list
            .iter()
            .find(|candidate| &candidate.id == id)
            .or_else(|| {
                list.iter()
                    .find(|candidate| candidate.meta.name == name && !id.contains(';'))
            })
            .ok_or_else(|| (error::PACKAGE_NOT_FOUND, format!("no package {id}")))?;
        found.push(candidate.clone());
    }
    Ok(found)
}

fn providers(list: &[Candidate], dependency: &Dependency, bits: u64) -> Vec<Candidate> {
    apply_filter(
        list.iter()
            .filter(|candidate| {
                candidate.meta.name == dependency.target
                    || candidate.meta.provides.contains(dependency)
            })
            .cloned()
            .collect(),
        bits,
    )
}

fn unique(list: Vec<Candidate>) -> Vec<Candidate> {
    let mut seen = HashSet::new();
    list.into_iter()
        .filter(|candidate| seen.insert(candidate.id.clone()))
        .collect()
}

/// `Details` as the real daemon sends it.
pub fn details_map(emit: &Emit) -> HashMap<&'static str, zbus::wire::Variant<'static>> {
    let mut map = HashMap::new();
    if let Emit::Details {
        id,
        summary,
        description,
        url,
        license,
        download_size,
    } = emit
    {
        map.insert("package-id", zbus::wire::Variant::from(id.clone()));
        map.insert("summary", zbus::wire::Variant::from(summary.clone()));
        map.insert(
            "description",
            zbus::wire::Variant::from(description.clone()),
        );
        map.insert("url", zbus::wire::Variant::from(url.clone()));
        map.insert("license", zbus::wire::Variant::from(license.clone()));
        map.insert("group", zbus::wire::Variant::from(0u32));
        map.insert("size", zbus::wire::Variant::from(0u64));
        map.insert("download-size", zbus::wire::Variant::from(*download_size));
    }
    map
}

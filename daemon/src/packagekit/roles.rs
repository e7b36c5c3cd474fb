//! The query roles, answered from the engine: what to emit for each, or a PackageKit error.

use std::collections::{BTreeMap, HashMap};

use moss::{
    Moss,
    catalogue::{self, SearchField},
};

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

/// The engine's catalogue with PackageKit ids: `installed` as data for installed packages, the
/// repository id for the others.
pub async fn catalogue(moss: &Moss) -> Result<Vec<Candidate>, Failure> {
    Ok(moss
        .catalogue()
        .await
        .map_err(failed)?
        .into_iter()
        .map(|entry| Candidate {
            id: package_id(
                &entry.meta,
                entry.repository.as_deref().unwrap_or("installed"),
            ),
            info: if entry.installed {
                info::INSTALLED
            } else {
                info::AVAILABLE
            },
            moss_id: entry.id,
            meta: entry.meta,
        })
        .collect())
}

/// A PackageKit candidate as the engine's catalogue entry it stands for.
fn entry(candidate: &Candidate) -> catalogue::Entry {
    catalogue::Entry {
        id: candidate.moss_id.clone(),
        meta: candidate.meta.clone(),
        installed: candidate.info == info::INSTALLED,
        repository: None,
    }
}

/// Translate engine answers (by engine id) back to the candidates they came from.
fn translate(list: &[Candidate], answer: Vec<&catalogue::Entry>) -> Vec<Candidate> {
    answer
        .into_iter()
        .filter_map(|found| list.iter().find(|candidate| candidate.moss_id == found.id))
        .cloned()
        .collect()
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
    let entries: Vec<catalogue::Entry> = all.iter().map(entry).collect();
    Ok(match role {
        r::RESOLVE => packages(&resolve(&all, values)),
        r::GET_PACKAGES => packages(&all),
        r::SEARCH_NAME => packages(&translate(
            &all,
            catalogue::search(&entries, SearchField::Name, values),
        )),
        r::SEARCH_DETAILS => packages(&translate(
            &all,
            catalogue::search(&entries, SearchField::Details, values),
        )),
        r::SEARCH_FILE => {
            let owners = moss.file_owners(values).await.map_err(failed)?;
            let hits: Vec<Candidate> = all
                .iter()
                .filter(|candidate| owners.contains(&candidate.moss_id))
                .cloned()
                .collect();
            packages(&hits)
        }
        r::WHAT_PROVIDES => packages(&translate(&all, catalogue::providers(&entries, values))),
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
            let targets: Vec<catalogue::Entry> = by_ids(&all, values)?.iter().map(entry).collect();
            let targets: Vec<&catalogue::Entry> = targets.iter().collect();
            // Providers come from the whole catalogue, then the filter applies to them.
            let every: Vec<catalogue::Entry> = everything.iter().map(entry).collect();
            let found = translate(&everything, catalogue::dependencies(&every, &targets));
            packages(&apply_filter(found, bits))
        }
        r::REQUIRED_BY => {
            let targets: Vec<catalogue::Entry> = by_ids(&all, values)?.iter().map(entry).collect();
            let targets: Vec<&catalogue::Entry> = targets.iter().collect();
            packages(&translate(&all, catalogue::required_by(&entries, &targets)))
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
            let updates = moss.updates().await.map_err(failed)?;
            updates
                .iter()
                .filter_map(|(_, new)| {
                    everything
                        .iter()
                        .find(|candidate| &candidate.moss_id == new)
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
            let updates = moss.updates().await.map_err(failed)?;
            let mut emits = Vec::new();
            for id in values {
                let Some(candidate) = everything.iter().find(|candidate| &candidate.id == id)
                else {
                    return Err((error::PACKAGE_NOT_FOUND, format!("no package {id}")));
                };
                let old = updates
                    .iter()
                    .find(|(_, new)| new == &candidate.moss_id)
                    .and_then(|(old, _)| everything.iter().find(|item| &item.moss_id == old))
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

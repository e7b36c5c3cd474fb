//! The catalogue: every package a front-end can show (installed, then what the repositories
//! offer that is not installed), and the questions software centres ask of it — which packages
//! match search terms, own a file, provide a capability, need or are needed by others, and which
//! updates are pending. The PackageKit facade only translates these answers into its ids and
//! signals; the logic lives here, once.

use std::collections::{HashMap, HashSet};

use stone::{Dependency, DependencyKind, Package};

use crate::engine::{EngineError, Moss};

/// One package of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The package id (SHA-256 of the stone).
    pub id: String,
    /// Metadata.
    pub meta: Package,
    /// Installed in the active state (otherwise offered by `repository`).
    pub installed: bool,
    /// The repository offering it, for packages that are not installed.
    pub repository: Option<String>,
}

/// What search terms are matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchField {
    /// The name only.
    Name,
    /// Name, summary and description.
    Details,
}

/// Whether `entry` satisfies `dependency` (its own name is implied).
pub fn provides(entry: &Entry, dependency: &Dependency) -> bool {
    (dependency.kind == DependencyKind::Name && dependency.target == entry.meta.name)
        || entry.meta.provides.contains(dependency)
}

/// Entries that contain every term (case-insensitive) in `field`.
pub fn search<'a>(entries: &'a [Entry], field: SearchField, terms: &[String]) -> Vec<&'a Entry> {
    let terms: Vec<String> = terms.iter().map(|term| term.to_lowercase()).collect();
    entries
        .iter()
        .filter(|entry| {
            let text = match field {
                SearchField::Name => entry.meta.name.to_lowercase(),
                SearchField::Details => format!(
                    "{} {} {}",
                    entry.meta.name, entry.meta.summary, entry.meta.description
                )
                .to_lowercase(),
            };
            terms.iter().all(|term| text.contains(term))
        })
        .collect()
}

/// Entries providing any of `dependencies` (written as names or `kind(target)`; unparsable ones
/// match nothing).
pub fn providers<'a>(entries: &'a [Entry], dependencies: &[String]) -> Vec<&'a Entry> {
    let wanted: Vec<Dependency> = dependencies
        .iter()
        .filter_map(|text| text.parse().ok())
        .collect();
    entries
        .iter()
        .filter(|entry| wanted.iter().any(|dependency| provides(entry, dependency)))
        .collect()
}

/// What `of` depends on: every entry that provides one of its dependencies, once each.
pub fn dependencies<'a>(entries: &'a [Entry], of: &[&Entry]) -> Vec<&'a Entry> {
    let mut seen = HashSet::new();
    of.iter()
        .flat_map(|package| package.meta.depends.iter())
        .flat_map(|dependency| {
            entries
                .iter()
                .filter(move |entry| provides(entry, dependency))
        })
        .filter(|entry| seen.insert(entry.id.clone()))
        .collect()
}

/// What needs one of `targets`: entries with a dependency that a target provides.
pub fn required_by<'a>(entries: &'a [Entry], targets: &[&Entry]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|entry| {
            entry
                .meta
                .depends
                .iter()
                .any(|dependency| targets.iter().any(|target| provides(target, dependency)))
        })
        .collect()
}

impl Moss {
    /// Installed packages (by name), then the packages the active repositories offer that are
    /// not installed.
    pub async fn catalogue(&self) -> Result<Vec<Entry>, EngineError> {
        let installed = self.installed().await?;
        let installed_ids: HashSet<String> = installed
            .iter()
            .map(|package| package.package.id.clone())
            .collect();
        let mut entries: Vec<Entry> = installed
            .into_iter()
            .map(|package| Entry {
                id: package.package.id,
                meta: package.package.meta,
                installed: true,
                repository: None,
            })
            .collect();
        for available in self.available().await? {
            let id = available.meta.hash.clone().unwrap_or_default();
            // The same stone installed and offered is one package, shown as installed.
            if installed_ids.contains(&id) {
                continue;
            }
            entries.push(Entry {
                id,
                meta: available.meta,
                installed: false,
                repository: Some(available.repository),
            });
        }
        Ok(entries)
    }

    /// Ids of installed packages owning one of `files`: a full path (`/usr/bin/nano`) matches
    /// exactly, a bare name (`nano`) matches the last component. Repository indexes carry no
    /// file lists, so only installed packages are searched.
    pub async fn file_owners(&self, files: &[String]) -> Result<Vec<String>, EngineError> {
        let ids: Vec<String> = self
            .active_selections()
            .await?
            .into_iter()
            .map(|selection| selection.package)
            .collect();
        let mut owners = Vec::new();
        for (id, layouts) in self.db.layouts(&ids).await? {
            let owns = layouts.iter().any(|layout| {
                layout.entry.target().is_some_and(|target| {
                    let full = format!("/usr/{target}");
                    files.iter().any(|file| {
                        if file.starts_with('/') {
                            &full == file
                        } else {
                            full.rsplit('/').next() == Some(file.as_str())
                        }
                    })
                })
            });
            if owns {
                owners.push(id);
            }
        }
        Ok(owners)
    }

    /// Pending updates as `(installed id, new id)`: what a sync would change.
    pub async fn updates(&self) -> Result<Vec<(String, String)>, EngineError> {
        let plan = self.plan_sync(false).await?;
        Ok(plan
            .change
            .into_iter()
            .map(|(old, new)| (old.id, new.id))
            .collect())
    }
}

/// The entries with these ids, in the order asked.
pub fn by_id<'a>(entries: &'a [Entry], ids: &[String]) -> Vec<&'a Entry> {
    let index: HashMap<&str, &Entry> = entries
        .iter()
        .map(|entry| (entry.id.as_str(), entry))
        .collect();
    ids.iter()
        .filter_map(|id| index.get(id.as_str()).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, depends: &[&str], provides: &[&str]) -> Entry {
        let mut meta = Package {
            name: name.to_owned(),
            summary: format!("{name} summary"),
            ..Package::default()
        };
        meta.depends = depends.iter().map(|text| text.parse().unwrap()).collect();
        meta.provides = provides.iter().map(|text| text.parse().unwrap()).collect();
        Entry {
            id: format!("id-{name}"),
            meta,
            installed: false,
            repository: Some("main".into()),
        }
    }

    #[test]
    fn relations_are_answered_from_dependencies_and_provides() {
        let entries = vec![
            entry("app", &["libfoo", "binary(sh)"], &[]),
            entry("libfoo", &[], &["soname(libfoo.so.1)"]),
            entry("dash", &[], &["binary(sh)"]),
            entry("other", &[], &[]),
        ];
        let names = |list: Vec<&Entry>| -> Vec<String> {
            list.into_iter()
                .map(|entry| entry.meta.name.clone())
                .collect()
        };
        let app = by_id(&entries, &["id-app".to_owned()]);
        assert_eq!(names(dependencies(&entries, &app)), ["libfoo", "dash"]);
        let dash = by_id(&entries, &["id-dash".to_owned()]);
        assert_eq!(names(required_by(&entries, &dash)), ["app"]);
        assert_eq!(
            names(providers(&entries, &["binary(sh)".to_owned()])),
            ["dash"]
        );
        assert_eq!(
            names(search(&entries, SearchField::Name, &["LIB".to_owned()])),
            ["libfoo"]
        );
        assert_eq!(
            names(search(
                &entries,
                SearchField::Details,
                &["other".to_owned(), "summary".to_owned()]
            )),
            ["other"]
        );
    }
}

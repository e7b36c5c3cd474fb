//! Install, remove and sync: turn a request into a plan (resolved, nothing written), then execute
//! the plan (fetch, unpack, switch). A plan can be shown for `--dry-run` or confirmation first.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use stone::{Dependency, Package};

use crate::{
    db::Selection,
    engine::{EngineError, Moss},
    events::{Event, Phase},
    resolve::{self, Candidate, Origin, Policy, Request},
    store::Store,
    transaction::Switch,
};

/// A package in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Planned {
    /// Package id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `version-release`.
    pub version: String,
    /// Where it comes from (`installed`, a repository id, or `local`).
    pub origin: String,
    /// The recipe's release (the number after the version's last `-`).
    #[serde(default)]
    pub release: u64,
    /// The build of that release: a rebuild raises it alone.
    #[serde(default)]
    pub build_release: u64,
}

impl Planned {
    /// Whether `self` is a newer build than `old`, as the resolver ranks them.
    pub fn is_newer_than(&self, old: &Planned) -> bool {
        resolve::compare_builds(self.build(), old.build()).is_gt()
    }

    /// `(version, release, build_release)`; `version` holds `version-release` for display.
    fn build(&self) -> (&str, u64, u64) {
        let version = self
            .version
            .rsplit_once('-')
            .map_or(self.version.as_str(), |(version, _)| version);
        (version, self.release, self.build_release)
    }
}

/// What a change will do.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// New packages.
    pub add: Vec<Planned>,
    /// Packages that go away.
    pub remove: Vec<Planned>,
    /// Packages replaced by another version: (old, new).
    pub change: Vec<(Planned, Planned)>,
    /// The selections of the state to create.
    #[serde(skip)]
    pub selections: Vec<Selection>,
    /// Packages to fetch: (id, URL, size).
    #[serde(skip)]
    pub fetch: Vec<Fetch>,
    /// Local stones to put in the store: (file, package id as planned).
    #[serde(skip)]
    pub local: Vec<(PathBuf, String)>,
}

/// What an install asks for: a package by name, or a local stone. Typed, so that a name that
/// looks like a path is never opened as one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A package name or provider (`name`, `kind(target)`).
    Package(String),
    /// A `.stone` file: in direct mode a path the user gave, in mossd the daemon's own copy of
    /// a descriptor the caller passed.
    LocalStone(PathBuf),
}

impl Target {
    /// The targets of command-line words: an existing file ending in `.stone` is a local stone,
    /// anything else a package name.
    pub fn from_words(words: &[String]) -> Vec<Self> {
        words
            .iter()
            .map(|word| {
                let path = Path::new(word);
                if word.ends_with(".stone") && path.is_file() {
                    Self::LocalStone(path.to_owned())
                } else {
                    Self::Package(word.clone())
                }
            })
            .collect()
    }
}

impl Plan {
    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.change.is_empty()
    }
}

/// One package to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Package id (SHA-256).
    pub id: String,
    /// Package name.
    pub name: String,
    /// Absolute URL.
    pub url: url::Url,
    /// Size in bytes, when the index says.
    pub size: Option<u64>,
    /// Repository id.
    pub repository: String,
}

/// A package some repository offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    /// Repository id.
    pub repository: String,
    /// Repository priority.
    pub priority: u64,
    /// Absolute URL of the stone.
    pub url: url::Url,
    /// Metadata (with `hash` = package id).
    pub meta: Package,
}

impl Moss {
    /// Plan installing packages named by name or provider, and local stones. Local stones are
    /// only read (their id, metadata and layout checked): nothing enters the store, the cache or
    /// the database until the plan is executed.
    pub async fn plan_install(&self, targets: &[Target]) -> Result<Plan, EngineError> {
        let mut wanted = Vec::new();
        let mut local_paths = Vec::new();
        for target in targets {
            match target {
                Target::Package(text) => wanted.push(parse_request(text)?),
                Target::LocalStone(path) => local_paths.push(path.clone()),
            }
        }
        let inspected = if local_paths.is_empty() {
            Vec::new()
        } else {
            tokio::task::spawn_blocking(move || {
                local_paths
                    .into_iter()
                    .map(|path| Store::inspect(&path).map(|inspected| (path, inspected)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|error| {
                EngineError::Other(format!("reading local stones was interrupted: {error}"))
            })??
        };
        let mut local_ids = HashSet::new();
        for (_, stone) in &inspected {
            wanted.push(Dependency::name(stone.meta.name.clone()));
            local_ids.insert(stone.id.clone());
        }
        let installed = self.active_selections().await?;
        let mut candidates = self.candidates(&installed).await?;
        for (path, stone) in inspected {
            if !candidates.list.iter().any(|known| known.id == stone.id) {
                candidates
                    .list
                    .push(candidate(stone.id.clone(), &stone.meta, Origin::Local));
            }
            candidates.local.insert(stone.id, path);
        }
        // A local stone given by path beats any repository version of the same name.
        let local_names: HashSet<String> = candidates
            .list
            .iter()
            .filter(|candidate| local_ids.contains(&candidate.id))
            .map(|candidate| candidate.name.clone())
            .collect();
        candidates.list.retain(|candidate| {
            local_ids.contains(&candidate.id)
                || !local_names.contains(&candidate.name)
                || matches!(candidate.origin, Origin::Installed)
        });
        let mut requirements: Vec<Dependency> = wanted.clone();
        requirements.extend(self.explicit_requirements(&installed, &candidates.list));
        let request = Request {
            install: requirements,
            keep: installed
                .iter()
                .map(|selection| selection.package.clone())
                .collect(),
            lock: Vec::new(),
            policy: Policy::Install,
        };
        let selected = self.solve(&candidates.list, &request).await?;
        let explicit_new: HashSet<String> = selected
            .iter()
            .filter(|id| {
                let candidate = candidates
                    .list
                    .iter()
                    .find(|candidate| &candidate.id == *id);
                candidate.is_some_and(|candidate| {
                    wanted
                        .iter()
                        .any(|dependency| provides(candidate, dependency))
                })
            })
            .cloned()
            .collect();
        self.plan_from(&installed, &candidates, selected, |id, previous| {
            previous.unwrap_or(false) || explicit_new.contains(id)
        })
    }

    /// Plan removing installed packages (by name or provider), with everything that needs them
    /// and the dependencies nothing else needs any more.
    pub async fn plan_remove(&self, requests: &[String]) -> Result<Plan, EngineError> {
        let installed = self.active_selections().await?;
        let candidates: Vec<Candidate> = self
            .candidates(&installed)
            .await?
            .list
            .into_iter()
            .filter(|candidate| matches!(candidate.origin, Origin::Installed))
            .collect();
        let mut removal: HashSet<String> = HashSet::new();
        for request in requests {
            let dependency = parse_request(request)?;
            let matching: Vec<&Candidate> = candidates
                .iter()
                .filter(|candidate| provides(candidate, &dependency))
                .collect();
            if matching.is_empty() {
                return Err(EngineError::NotInstalled(request.clone()));
            }
            removal.extend(matching.into_iter().map(|candidate| candidate.id.clone()));
        }
        // Everything whose dependency is only provided by removed packages goes too. Providers
        // are indexed once, so this stays linear in the number of dependencies per round.
        let mut providers: HashMap<&Dependency, Vec<&str>> = HashMap::new();
        let names: Vec<Dependency> = candidates
            .iter()
            .map(|candidate| Dependency::name(candidate.name.clone()))
            .collect();
        for (candidate, name) in candidates.iter().zip(&names) {
            for provided in std::iter::once(name).chain(&candidate.provides) {
                providers
                    .entry(provided)
                    .or_default()
                    .push(candidate.id.as_str());
            }
        }
        loop {
            let before = removal.len();
            for candidate in &candidates {
                if removal.contains(&candidate.id) {
                    continue;
                }
                let broken = candidate.depends.iter().any(|dependency| {
                    providers
                        .get(dependency)
                        .is_some_and(|ids| ids.iter().all(|id| removal.contains(*id)))
                });
                if broken {
                    removal.insert(candidate.id.clone());
                }
            }
            if removal.len() == before {
                break;
            }
        }
        let remaining: Vec<Candidate> = candidates
            .iter()
            .filter(|candidate| !removal.contains(&candidate.id))
            .cloned()
            .collect();
        let kept_selections: Vec<Selection> = installed
            .iter()
            .filter(|selection| !removal.contains(&selection.package))
            .cloned()
            .collect();
        let request = Request {
            install: self.explicit_requirements(&kept_selections, &remaining),
            keep: remaining
                .iter()
                .map(|candidate| candidate.id.clone())
                .collect(),
            lock: Vec::new(),
            policy: Policy::Install,
        };
        let selected = if request.install.is_empty() {
            Vec::new()
        } else {
            self.solve(&remaining, &request).await?
        };
        // Every installed package stays known to the plan, so removed ones can be listed.
        let all = Candidates {
            list: candidates,
            sources: HashMap::new(),
            local: HashMap::new(),
        };
        self.plan_from(&installed, &all, selected, |_, previous| {
            previous.unwrap_or(false)
        })
    }

    /// Plan moving every installed package to the best version the repositories offer.
    /// On a system managed by a model, the model is followed instead.
    pub async fn plan_sync(&self, allow_downgrade: bool) -> Result<Plan, EngineError> {
        if let Some(model) = self.system_model()? {
            return self.plan_model_sync(&model).await;
        }
        let installed = self.active_selections().await?;
        let candidates = self.candidates(&installed).await?;
        let request = Request {
            install: self.explicit_requirements(&installed, &candidates.list),
            // Not `keep`: the resolver favors kept ids under every policy, which would pin every
            // installed package; the upgrade policy itself keeps what is already newest.
            keep: Vec::new(),
            lock: Vec::new(),
            policy: if allow_downgrade {
                Policy::AllowDowngrade
            } else {
                Policy::Upgrade
            },
        };
        let selected = if request.install.is_empty() {
            Vec::new()
        } else {
            self.solve(&candidates.list, &request).await?
        };
        let explicit_names: HashSet<String> = installed
            .iter()
            .filter(|selection| selection.explicit)
            .filter_map(|selection| {
                candidates
                    .list
                    .iter()
                    .find(|candidate| candidate.id == selection.package)
            })
            .map(|candidate| candidate.name.clone())
            .collect();
        let names: HashMap<String, String> = candidates
            .list
            .iter()
            .map(|candidate| (candidate.id.clone(), candidate.name.clone()))
            .collect();
        self.plan_from(&installed, &candidates, selected, |id, previous| {
            previous.unwrap_or(false)
                || names
                    .get(id)
                    .is_some_and(|name| explicit_names.contains(name))
        })
    }

    /// Fetch what the plan needs, unpack it, and switch to the new state.
    pub async fn execute(&self, plan: &Plan, summary: &str) -> Result<Switch, EngineError> {
        self.bring_into_store(plan).await?;
        self.apply(plan.selections.clone(), summary).await
    }

    /// Fetch what the plan needs and unpack it into the store (local stones too).
    pub(crate) async fn bring_into_store(&self, plan: &Plan) -> Result<(), EngineError> {
        self.cancellation.check()?;
        if !plan.local.is_empty() {
            self.add_local_stones(&plan.local).await?;
            self.cancellation.check()?;
        }
        if !plan.fetch.is_empty() {
            self.reporter.report(Event::PhaseStarted {
                phase: Phase::Fetch,
                total: plan.fetch.len() as u64,
            });
            let downloaded = self.download(&plan.fetch).await?;
            self.reporter.report(Event::PhaseFinished {
                phase: Phase::Fetch,
            });
            self.cancellation.check()?;
            self.reporter.report(Event::PhaseStarted {
                phase: Phase::Unpack,
                total: downloaded.len() as u64,
            });
            self.add_stones(downloaded).await?;
            self.reporter.report(Event::PhaseFinished {
                phase: Phase::Unpack,
            });
            self.cancellation.check()?;
        }
        Ok(())
    }

    /// Put the planned local stones in the store, checking each is still the stone planned.
    async fn add_local_stones(&self, local: &[(PathBuf, String)]) -> Result<(), EngineError> {
        let stones = local
            .iter()
            .map(|(path, _)| (path.clone(), None, "local".to_owned()))
            .collect();
        let unpacked = self.add_stones(stones).await?;
        for (path, id) in local {
            if !unpacked.iter().any(|stone| &stone.id == id) {
                return Err(EngineError::InvalidRequest(format!(
                    "{} changed after the install was planned; run the install again",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    pub(crate) async fn solve(
        &self,
        candidates: &[Candidate],
        request: &Request,
    ) -> Result<Vec<String>, EngineError> {
        self.reporter.report(Event::PhaseStarted {
            phase: Phase::Resolve,
            total: 0,
        });
        let candidates = candidates.to_vec();
        let request = request.clone();
        let result = tokio::task::spawn_blocking(move || resolve::resolve(&candidates, &request))
            .await
            .map_err(|error| EngineError::Other(format!("resolution was interrupted: {error}")))?;
        self.reporter.report(Event::PhaseFinished {
            phase: Phase::Resolve,
        });
        Ok(result?.selected)
    }

    /// Requirements that keep every explicit package of `selections`.
    fn explicit_requirements(
        &self,
        selections: &[Selection],
        candidates: &[Candidate],
    ) -> Vec<Dependency> {
        selections
            .iter()
            .filter(|selection| selection.explicit)
            .filter_map(|selection| {
                candidates
                    .iter()
                    .find(|candidate| candidate.id == selection.package)
            })
            .map(|candidate| Dependency::name(candidate.name.clone()))
            .collect()
    }

    /// Installed, stored-local and available candidates, with where to fetch the available ones.
    pub(crate) async fn candidates(
        &self,
        installed: &[Selection],
    ) -> Result<Candidates, EngineError> {
        let installed_ids: HashSet<&str> = installed
            .iter()
            .map(|selection| selection.package.as_str())
            .collect();
        let mut candidates = Vec::new();
        let mut sources = HashMap::new();
        let mut seen = HashSet::new();
        for stored in self.db.packages().await? {
            // Stored packages that only older states use (local stones, cached repository
            // packages) are no candidates: offered again, the resolver would move installed
            // packages to them. Repositories and the local stones of this request are.
            if !installed_ids.contains(stored.id.as_str()) {
                continue;
            }
            seen.insert(stored.id.clone());
            candidates.push(candidate(stored.id, &stored.meta, Origin::Installed));
        }
        for available in self.available().await? {
            let Some(id) = available.meta.hash.clone() else {
                continue;
            };
            if seen.insert(id.clone()) {
                sources.insert(
                    id.clone(),
                    Fetch {
                        id: id.clone(),
                        name: available.meta.name.clone(),
                        url: available.url.clone(),
                        size: available.meta.size,
                        repository: available.repository.clone(),
                    },
                );
                candidates.push(candidate(
                    id,
                    &available.meta,
                    Origin::Repository {
                        id: available.repository.clone(),
                        priority: available.priority,
                    },
                ));
            }
        }
        Ok(Candidates {
            list: candidates,
            sources,
            local: HashMap::new(),
        })
    }

    pub(crate) fn plan_from(
        &self,
        installed: &[Selection],
        candidates: &Candidates,
        selected: Vec<String>,
        explicit: impl Fn(&str, Option<bool>) -> bool,
    ) -> Result<Plan, EngineError> {
        let sources = &candidates.sources;
        let by_id: HashMap<&str, &Candidate> = candidates
            .list
            .iter()
            .map(|candidate| (candidate.id.as_str(), candidate))
            .collect();
        let previous: HashMap<&str, bool> = installed
            .iter()
            .map(|selection| (selection.package.as_str(), selection.explicit))
            .collect();
        let installed_by_name: HashMap<String, &str> = installed
            .iter()
            .filter_map(|selection| {
                by_id
                    .get(selection.package.as_str())
                    .map(|candidate| (candidate.name.clone(), selection.package.as_str()))
            })
            .collect();
        let selected_set: HashSet<&str> = selected.iter().map(String::as_str).collect();
        let mut plan = Plan::default();
        let mut changed_old = HashSet::new();
        for id in &selected {
            let candidate = by_id
                .get(id.as_str())
                .ok_or_else(|| EngineError::MissingPackage(id.clone()))?;
            let was_explicit = previous.get(id.as_str()).copied().or_else(|| {
                installed_by_name
                    .get(&candidate.name)
                    .and_then(|old| previous.get(old).copied())
            });
            plan.selections.push(Selection {
                package: id.clone(),
                explicit: explicit(id, was_explicit),
                reason: None,
            });
            if previous.contains_key(id.as_str()) {
                continue;
            }
            if matches!(candidate.origin, Origin::Repository { .. })
                && let Some(source) = sources.get(id)
            {
                plan.fetch.push(source.clone());
            }
            if let Some(path) = candidates.local.get(id) {
                plan.local.push((path.clone(), id.clone()));
            }
            match installed_by_name.get(&candidate.name) {
                Some(old) => {
                    changed_old.insert(*old);
                    plan.change.push((planned(by_id[old]), planned(candidate)));
                }
                None => plan.add.push(planned(candidate)),
            }
        }
        for selection in installed {
            if !selected_set.contains(selection.package.as_str())
                && !changed_old.contains(selection.package.as_str())
                && let Some(candidate) = by_id.get(selection.package.as_str())
            {
                plan.remove.push(planned(candidate));
            }
        }
        plan.add.sort_by(|a, b| a.name.cmp(&b.name));
        plan.remove.sort_by(|a, b| a.name.cmp(&b.name));
        plan.change.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(plan)
    }
}

fn planned(candidate: &Candidate) -> Planned {
    Planned {
        id: candidate.id.clone(),
        name: candidate.name.clone(),
        version: format!("{}-{}", candidate.version, candidate.release),
        origin: match &candidate.origin {
            Origin::Installed => "installed".to_owned(),
            Origin::Local => "local".to_owned(),
            Origin::Repository { id, .. } => id.clone(),
        },
        release: candidate.release,
        build_release: candidate.build_release,
    }
}

/// Candidates, where to fetch those that come from repositories, and the files of the local
/// stones of the request.
pub(crate) struct Candidates {
    pub(crate) list: Vec<Candidate>,
    sources: HashMap<String, Fetch>,
    local: HashMap<String, PathBuf>,
}

fn candidate(id: String, meta: &Package, origin: Origin) -> Candidate {
    Candidate {
        id,
        name: meta.name.clone(),
        version: meta.version.clone(),
        release: meta.release,
        build_release: meta.build_release,
        origin,
        provides: meta.provides.clone(),
        depends: meta.depends.clone(),
        conflicts: meta.conflicts.clone(),
    }
}

/// Whether a candidate satisfies a dependency (its own name is implied).
pub(crate) fn provides(candidate: &Candidate, dependency: &Dependency) -> bool {
    (dependency.kind == stone::DependencyKind::Name && dependency.target == candidate.name)
        || candidate.provides.contains(dependency)
}

fn parse_request(text: &str) -> Result<Dependency, EngineError> {
    text.parse().map_err(|error: stone::ParseDependencyError| {
        EngineError::InvalidRequest(format!("{error}; write a package name or kind(target)"))
    })
}

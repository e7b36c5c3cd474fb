//! The resolvo [`DependencyProvider`] over a slice of [`Candidate`]s.
//!
//! Everything resolvo asks about is indexed once in [`Provider::new`]: candidates by id, by
//! name and by every provider text they offer. Requirements, version sets and unions are
//! interned lazily (only for what the solver actually explores) behind `RefCell`s, because
//! resolvo queries the provider through `&self`.

use std::{
    cell::RefCell,
    cmp::Ordering,
    collections::{HashMap, HashSet},
    fmt::Display,
};

use resolvo::{
    Candidates, Condition, ConditionId, Dependencies, DependencyProvider, Interner,
    KnownDependencies, NameId, Requirement, SolvableId, SolverCache, StringId, VersionSetId,
    VersionSetUnionId,
    conflict::{ConflictCause, ConflictEdge, ConflictGraph, ConflictNode},
};
use stone::{Dependency, DependencyKind};

use super::{
    Candidate, DeclaredConflict, MissingProvider, Origin, Policy, Request, Resolution,
    ResolveError, order,
};

/// A provider text, borrowed from the candidates or the request.
type Key<'a> = (DependencyKind, &'a str);

/// Index of a distinct provider text.
type ProviderIndex = u32;

/// One distinct candidate (duplicates by id merged).
struct Package<'a> {
    candidate: &'a Candidate,
    name: NameId,
    installed: bool,
    local: bool,
    /// Highest priority of the repositories offering it, if any.
    priority: Option<u64>,
    /// Sorted, deduplicated provider indices, including the implied `name(<name>)`.
    provides: Vec<ProviderIndex>,
    locked: bool,
    favored: bool,
    /// Position in its name's preference order (0 = tried first).
    rank: u32,
}

impl Package<'_> {
    /// Locked, local or favored: something the caller or policy wants.
    fn preferred(&self) -> bool {
        self.locked || self.local || self.favored
    }

    fn provides(&self, provider: ProviderIndex) -> bool {
        self.provides.binary_search(&provider).is_ok()
    }

    fn label(&self) -> String {
        let candidate = self.candidate;
        let mut label = format!("{}-{}", candidate.version, candidate.release);
        if self.local {
            label.push_str(" (local)");
        } else if self.installed {
            label.push_str(" (installed)");
        }
        label
    }
}

/// Candidates of one package name.
struct NameEntry<'a> {
    name: &'a str,
    solvables: Vec<SolvableId>,
    favored: Option<SolvableId>,
    locked: Option<SolvableId>,
    excluded: Vec<(SolvableId, StringId)>,
}

/// What a version set matches: candidates of `name` that provide `provider` (or, when
/// `negate`, that do not). `provider: None` is the version set of a synthetic name standing
/// for a dependency nothing provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct VersionSet {
    name: NameId,
    provider: Option<ProviderIndex>,
    negate: bool,
}

/// Lazily interned solver objects.
#[derive(Default)]
struct Interned<'a> {
    /// Synthetic names (ids after the real ones) for dependencies nothing provides.
    missing: Vec<Key<'a>>,
    missing_ids: HashMap<Key<'a>, NameId>,
    version_sets: Vec<VersionSet>,
    version_set_ids: HashMap<VersionSet, VersionSetId>,
    unions: Vec<Vec<VersionSetId>>,
    requirements: HashMap<Key<'a>, Requirement>,
}

pub(super) struct Provider<'a> {
    packages: Vec<Package<'a>>,
    names: Vec<NameEntry<'a>>,
    provider_ids: HashMap<Key<'a>, ProviderIndex>,
    /// Provider text of each provider index.
    provider_keys: Vec<Key<'a>>,
    /// Packages (solvable indices) offering each provider index.
    providers: Vec<Vec<u32>>,
    strings: Vec<String>,
    interned: RefCell<Interned<'a>>,
}

fn solvable(index: usize) -> SolvableId {
    SolvableId::from_raw(u32::try_from(index).expect("fewer than 2^32 candidates"))
}

fn solvable_index(id: SolvableId) -> usize {
    id.into_raw() as usize
}

fn name_id(index: usize) -> NameId {
    NameId::from_raw(u32::try_from(index).expect("fewer than 2^32 names"))
}

fn key(dependency: &Dependency) -> Key<'_> {
    (dependency.kind, dependency.target.as_str())
}

fn key_text((kind, target): Key<'_>) -> String {
    format!("{}({target})", kind.as_str())
}

fn key_dependency((kind, target): Key<'_>) -> Dependency {
    Dependency {
        kind,
        target: target.to_owned(),
    }
}

/// Newer first is `compare_newness(b, a)`: release, build release, then version text.
fn compare_newness(a: &Candidate, b: &Candidate) -> Ordering {
    order::compare_builds(
        (&a.version, a.release, a.build_release),
        (&b.version, b.release, b.build_release),
    )
}

impl<'a> Provider<'a> {
    pub(super) fn new(
        candidates: &'a [Candidate],
        request: &'a Request,
    ) -> Result<Self, ResolveError> {
        let mut packages: Vec<Package<'a>> = Vec::with_capacity(candidates.len());
        let mut by_id: HashMap<&'a str, usize> = HashMap::with_capacity(candidates.len());
        let mut names: Vec<NameEntry<'a>> = Vec::new();
        let mut name_ids: HashMap<&'a str, NameId> = HashMap::new();
        let mut provider_ids: HashMap<Key<'a>, ProviderIndex> = HashMap::new();
        let mut provider_keys: Vec<Key<'a>> = Vec::new();
        let mut providers: Vec<Vec<u32>> = Vec::new();

        for candidate in candidates {
            let (installed, local, priority) = match &candidate.origin {
                Origin::Installed => (true, false, None),
                Origin::Local => (false, true, None),
                Origin::Repository { priority, .. } => (false, false, Some(*priority)),
            };
            if let Some(&index) = by_id.get(candidate.id.as_str()) {
                let package: &mut Package<'a> = &mut packages[index];
                package.installed |= installed;
                package.local |= local;
                package.priority = package.priority.max(priority);
                continue;
            }
            let index = packages.len();
            by_id.insert(&candidate.id, index);

            let name = *name_ids.entry(&candidate.name).or_insert_with(|| {
                names.push(NameEntry {
                    name: &candidate.name,
                    solvables: Vec::new(),
                    favored: None,
                    locked: None,
                    excluded: Vec::new(),
                });
                name_id(names.len() - 1)
            });
            names[name.into_raw() as usize]
                .solvables
                .push(solvable(index));

            let implied = (DependencyKind::Name, candidate.name.as_str());
            let mut provides: Vec<ProviderIndex> = std::iter::once(implied)
                .chain(candidate.provides.iter().map(key))
                .map(|provided| {
                    *provider_ids.entry(provided).or_insert_with(|| {
                        provider_keys.push(provided);
                        providers.push(Vec::new());
                        ProviderIndex::try_from(provider_keys.len() - 1)
                            .expect("fewer than 2^32 providers")
                    })
                })
                .collect();
            provides.sort_unstable();
            provides.dedup();
            for &provided in &provides {
                providers[provided as usize].push(index as u32);
            }

            packages.push(Package {
                candidate,
                name,
                installed,
                local,
                priority,
                provides,
                locked: false,
                favored: false,
                rank: 0,
            });
        }

        for id in &request.lock {
            let &index = by_id
                .get(id.as_str())
                .ok_or_else(|| ResolveError::UnknownLock(id.clone()))?;
            let package = &mut packages[index];
            let entry = &mut names[package.name.into_raw() as usize];
            match entry.locked {
                Some(other) if other != solvable(index) => {
                    return Err(ResolveError::ConflictingLocks {
                        name: entry.name.to_owned(),
                        first: packages[solvable_index(other)].candidate.id.clone(),
                        second: id.clone(),
                    });
                }
                _ => {
                    entry.locked = Some(solvable(index));
                    package.locked = true;
                }
            }
        }
        for id in &request.keep {
            if let Some(&index) = by_id.get(id.as_str()) {
                packages[index].favored = true;
            }
        }

        let mut strings = Vec::new();
        for entry in &mut names {
            rank_name(entry, &mut packages, request.policy, &mut strings);
        }

        Ok(Self {
            packages,
            names,
            provider_ids,
            provider_keys,
            providers,
            strings,
            interned: RefCell::new(Interned::default()),
        })
    }

    /// Whether any candidate provides `dependency`.
    pub(super) fn is_provided(&self, dependency: &Dependency) -> bool {
        self.provider_ids.contains_key(&key(dependency))
    }

    /// The resolvo requirement for a dependency (interned once per distinct text).
    pub(super) fn requirement(&self, dependency: &'a Dependency) -> Requirement {
        let key = key(dependency);
        if let Some(&requirement) = self.interned.borrow().requirements.get(&key) {
            return requirement;
        }
        let requirement = match self.provider_ids.get(&key) {
            Some(&provider) => {
                let mut names = self.names_providing(provider);
                names.sort_by_cached_key(|&name| self.union_preference(name, provider, key));
                let version_sets: Vec<VersionSetId> = names
                    .into_iter()
                    .map(|name| {
                        self.version_set(VersionSet {
                            name,
                            provider: Some(provider),
                            negate: false,
                        })
                    })
                    .collect();
                if let [single] = version_sets[..] {
                    Requirement::Single(single)
                } else {
                    let mut interned = self.interned.borrow_mut();
                    interned.unions.push(version_sets);
                    Requirement::Union(VersionSetUnionId((interned.unions.len() - 1) as u32))
                }
            }
            None => {
                let name = self.missing_name(key);
                Requirement::Single(self.version_set(VersionSet {
                    name,
                    provider: None,
                    negate: false,
                }))
            }
        };
        self.interned
            .borrow_mut()
            .requirements
            .insert(key, requirement);
        requirement
    }

    /// Sort key among the names offering `provider`: the package actually named by a
    /// `name(...)` dependency, then names with a locked/local/favored provider, then the
    /// highest repository priority, then the name.
    fn union_preference(
        &self,
        name: NameId,
        provider: ProviderIndex,
        (kind, target): Key<'_>,
    ) -> (bool, bool, std::cmp::Reverse<Option<u64>>, &'a str) {
        let entry = &self.names[name.into_raw() as usize];
        let offering = entry
            .solvables
            .iter()
            .map(|&id| &self.packages[solvable_index(id)])
            .filter(|package| package.provides(provider));
        let (mut preferred, mut priority) = (false, None);
        for package in offering {
            preferred |= package.preferred();
            priority = priority.max(package.priority);
        }
        let exact = kind == DependencyKind::Name && entry.name == target;
        (!exact, !preferred, std::cmp::Reverse(priority), entry.name)
    }

    /// Distinct names with a candidate offering `provider`, in first-seen order.
    fn names_providing(&self, provider: ProviderIndex) -> Vec<NameId> {
        let mut names: Vec<NameId> = Vec::new();
        let mut seen: HashSet<NameId> = HashSet::new();
        for &index in &self.providers[provider as usize] {
            let name = self.packages[index as usize].name;
            if seen.insert(name) {
                names.push(name);
            }
        }
        names
    }

    fn missing_name(&self, key: Key<'a>) -> NameId {
        let mut interned = self.interned.borrow_mut();
        if let Some(&name) = interned.missing_ids.get(&key) {
            return name;
        }
        let name = name_id(self.names.len() + interned.missing.len());
        interned.missing.push(key);
        interned.missing_ids.insert(key, name);
        name
    }

    fn version_set(&self, version_set: VersionSet) -> VersionSetId {
        let mut interned = self.interned.borrow_mut();
        if let Some(&id) = interned.version_set_ids.get(&version_set) {
            return id;
        }
        let id = VersionSetId(interned.version_sets.len() as u32);
        interned.version_sets.push(version_set);
        interned.version_set_ids.insert(version_set, id);
        id
    }

    fn version_set_data(&self, id: VersionSetId) -> VersionSet {
        self.interned.borrow().version_sets[id.0 as usize]
    }

    fn package(&self, id: SolvableId) -> &Package<'a> {
        &self.packages[solvable_index(id)]
    }

    fn display(&self, id: SolvableId) -> String {
        let package = self.package(id);
        format!("{} {}", package.candidate.name, package.label())
    }

    /// The resolution for a solver solution.
    pub(super) fn resolution(&self, solution: &[SolvableId], install: &[Dependency]) -> Resolution {
        let mut selected = vec![false; self.packages.len()];
        for &id in solution {
            selected[solvable_index(id)] = true;
        }
        let selected_providers = |dependency: &Dependency| -> Vec<usize> {
            self.provider_ids
                .get(&key(dependency))
                .map(|&provider| {
                    self.providers[provider as usize]
                        .iter()
                        .map(|&index| index as usize)
                        .filter(|&index| selected[index])
                        .collect()
                })
                .unwrap_or_default()
        };

        let mut roots: Vec<usize> = solution.iter().map(|&id| solvable_index(id)).collect();
        roots.sort_by(|&a, &b| {
            let (a, b) = (self.packages[a].candidate, self.packages[b].candidate);
            a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id))
        });
        let ordered = order::install_order(&roots, self.packages.len(), |index| {
            self.packages[index]
                .candidate
                .depends
                .iter()
                .flat_map(&selected_providers)
                .collect()
        });
        let id_of = |index: usize| self.packages[index].candidate.id.clone();
        Resolution {
            selected: ordered.into_iter().map(id_of).collect(),
            requested: install
                .iter()
                .map(|dependency| {
                    selected_providers(dependency)
                        .into_iter()
                        .map(id_of)
                        .collect()
                })
                .collect(),
        }
    }

    /// Missing providers and declared conflicts named in a conflict graph.
    pub(super) fn causes(
        &self,
        graph: &ConflictGraph<SolvableId>,
    ) -> (Vec<MissingProvider>, Vec<DeclaredConflict>) {
        let mut missing = Vec::new();
        let mut conflicts = Vec::new();
        for edge in graph.graph.raw_edges() {
            let source = graph.graph.node_weight(edge.source());
            let target = graph.graph.node_weight(edge.target());
            let (Some(&ConflictNode::Solvable(source)), Some(target)) = (source, target) else {
                continue;
            };
            match (edge.weight, target) {
                (ConflictEdge::Requires(requirement), ConflictNode::UnresolvedDependency) => {
                    let Requirement::Single(version_set) = requirement else {
                        continue;
                    };
                    let data = self.version_set_data(version_set);
                    if data.provider.is_some() {
                        continue;
                    }
                    let missing_key = self.interned.borrow().missing
                        [data.name.into_raw() as usize - self.names.len()];
                    missing.push(MissingProvider {
                        dependency: key_dependency(missing_key),
                        required_by: self.display(source),
                        required_by_id: self.package(source).candidate.id.clone(),
                    });
                }
                (
                    ConflictEdge::Conflict(ConflictCause::Constrains(version_set)),
                    &ConflictNode::Solvable(target),
                ) => {
                    let data = self.version_set_data(version_set);
                    let Some(provider) = data.provider else {
                        continue;
                    };
                    conflicts.push(DeclaredConflict {
                        package: self.display(source),
                        package_id: self.package(source).candidate.id.clone(),
                        conflict: key_dependency(self.provider_keys[provider as usize]),
                        provider: self.display(target),
                        provider_id: self.package(target).candidate.id.clone(),
                    });
                }
                _ => {}
            }
        }
        missing.sort();
        missing.dedup();
        conflicts.sort();
        conflicts.dedup();
        (missing, conflicts)
    }
}

/// Compute favoring, exclusions and the preference order of one name's candidates.
fn rank_name(
    entry: &mut NameEntry<'_>,
    packages: &mut [Package<'_>],
    policy: Policy,
    strings: &mut Vec<String>,
) {
    let newest_installed = entry
        .solvables
        .iter()
        .map(|&id| solvable_index(id))
        .filter(|&index| packages[index].installed)
        .max_by(|&a, &b| compare_newness(packages[a].candidate, packages[b].candidate));
    let best_offered = entry
        .solvables
        .iter()
        .map(|&id| solvable_index(id))
        .filter(|&index| packages[index].priority.is_some())
        .max_by(|&a, &b| {
            packages[a]
                .priority
                .cmp(&packages[b].priority)
                .then_with(|| compare_newness(packages[a].candidate, packages[b].candidate))
        });

    if let Some(installed) = newest_installed {
        let keep_installed = match policy {
            Policy::Install => true,
            Policy::Upgrade => best_offered.is_none_or(|offered| {
                compare_newness(packages[installed].candidate, packages[offered].candidate)
                    != Ordering::Less
            }),
            Policy::AllowDowngrade => false,
        };
        packages[installed].favored |= keep_installed;

        if policy != Policy::AllowDowngrade {
            let current = packages[installed].candidate;
            let reason = format!(
                "it is older than the installed {}-{}; downgrades need the allow-downgrade policy",
                current.version, current.release
            );
            let mut reason_id = None;
            for &id in &entry.solvables {
                let package = &packages[solvable_index(id)];
                let older = compare_newness(package.candidate, packages[installed].candidate)
                    == Ordering::Less;
                if older && !package.installed && !package.local && !package.locked {
                    let reason_id = *reason_id.get_or_insert_with(|| {
                        strings.push(reason.clone());
                        StringId((strings.len() - 1) as u32)
                    });
                    entry.excluded.push((id, reason_id));
                }
            }
        }
    }

    entry.solvables.sort_by(|&a, &b| {
        let (a, b) = (&packages[solvable_index(a)], &packages[solvable_index(b)]);
        b.locked
            .cmp(&a.locked)
            .then(b.local.cmp(&a.local))
            .then(b.favored.cmp(&a.favored))
            .then(b.priority.is_some().cmp(&a.priority.is_some()))
            .then(b.priority.cmp(&a.priority))
            .then_with(|| compare_newness(b.candidate, a.candidate))
            .then_with(|| a.candidate.id.cmp(&b.candidate.id))
    });
    for (rank, &id) in entry.solvables.iter().enumerate() {
        packages[solvable_index(id)].rank = rank as u32;
    }
    let first = entry.solvables[0];
    let top = &packages[solvable_index(first)];
    if !top.locked && (top.local || top.favored) {
        entry.favored = Some(first);
    }
}

impl<'a> Interner for Provider<'a> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl Display + '_ {
        self.display(solvable)
    }

    fn display_merged_solvables(&self, solvables: &[SolvableId]) -> impl Display + '_ {
        let Some(&first) = solvables.first() else {
            return String::new();
        };
        let mut labels: Vec<String> = solvables
            .iter()
            .map(|&id| self.package(id).label())
            .collect();
        labels.sort();
        labels.dedup();
        format!(
            "{} {}",
            self.package(first).candidate.name,
            labels.join(" | ")
        )
    }

    fn display_name(&self, name: NameId) -> impl Display + '_ {
        let index = name.into_raw() as usize;
        match self.names.get(index) {
            Some(entry) => entry.name.to_owned(),
            None => key_text(self.interned.borrow().missing[index - self.names.len()]),
        }
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl Display + '_ {
        let data = self.version_set_data(version_set);
        let Some(provider) = data.provider else {
            return String::new();
        };
        let key = self.provider_keys[provider as usize];
        if data.negate {
            format!("(excluding providers of {})", key_text(key))
        } else if key.0 == DependencyKind::Name
            && self
                .names
                .get(data.name.into_raw() as usize)
                .map(|n| n.name)
                == Some(key.1)
        {
            String::new()
        } else {
            format!("(providing {})", key_text(key))
        }
    }

    fn display_string(&self, string_id: StringId) -> impl Display + '_ {
        self.strings[string_id.0 as usize].clone()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.version_set_data(version_set).name
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.package(solvable).name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.interned.borrow().unions[version_set_union.0 as usize]
            .clone()
            .into_iter()
    }

    fn resolve_condition(&self, _condition: ConditionId) -> Condition {
        unreachable!("the moss resolver never creates conditional requirements")
    }
}

impl<'a> DependencyProvider for Provider<'a> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let data = self.version_set_data(version_set);
        candidates
            .iter()
            .copied()
            .filter(|&id| {
                let matches = data
                    .provider
                    .is_some_and(|provider| self.package(id).provides(provider))
                    != data.negate;
                matches != inverse
            })
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let Some(entry) = self.names.get(name.into_raw() as usize) else {
            // A synthetic name for a dependency nothing provides.
            return Some(Candidates::default());
        };
        Some(Candidates {
            candidates: entry.solvables.clone(),
            favored: entry.favored,
            locked: entry.locked,
            excluded: entry.excluded.clone(),
            ..Candidates::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by_key(|&id| self.package(id).rank);
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let package = self.package(solvable);
        let candidate: &'a Candidate = package.candidate;

        let mut requirements = Vec::with_capacity(candidate.depends.len());
        let mut seen = HashSet::with_capacity(candidate.depends.len());
        for dependency in &candidate.depends {
            let requirement = self.requirement(dependency);
            if seen.insert(requirement) {
                requirements.push(requirement.into());
            }
        }

        let mut constrains = Vec::new();
        for conflict in &candidate.conflicts {
            let Some(&provider) = self.provider_ids.get(&key(conflict)) else {
                continue;
            };
            for name in self.names_providing(provider) {
                if name == package.name {
                    continue;
                }
                let version_set = self.version_set(VersionSet {
                    name,
                    provider: Some(provider),
                    negate: true,
                });
                if !constrains.contains(&version_set) {
                    constrains.push(version_set);
                }
            }
        }

        Dependencies::Known(KnownDependencies {
            requirements,
            constrains,
        })
    }
}

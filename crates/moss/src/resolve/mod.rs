//! Dependency resolution on [resolvo], a CDCL SAT solver.
//!
//! [`resolve`] is pure and synchronous: the caller gathers every package that could be
//! selected ([`Candidate`]s from the installed database, the active repositories and local
//! `.stone` files) and states what it wants ([`Request`]); the resolver answers with the
//! package ids to have in the new state, dependencies first ([`Resolution`]), or with an
//! explanation of why nothing fits ([`ResolveError`]).
//!
//! # Model
//!
//! * A resolvo *package name* is a moss package name: at most one candidate per name is
//!   selected.
//! * Every candidate provides `name(<its name>)` plus its `provides` list. A dependency
//!   `kind(target)` is satisfied by any candidate providing exactly that text (stone §5.3:
//!   exact match, no version constraints). It becomes a resolvo requirement on the union of
//!   "candidates of name N providing `kind(target)`" over every name N with such a
//!   candidate.
//! * A `conflicts` entry `kind(target)` of a selected package forbids selecting any package
//!   of *another* name that provides `kind(target)` (resolvo constraints).
//! * A dependency nothing provides makes the depending candidate unselectable; if that
//!   leaves a request unsatisfiable the error names the dependency and who needs it.
//!
//! # Preference among candidates of one name
//!
//! 1. a locked candidate ([`Request::lock`]; the others of that name are forbidden);
//! 2. a [`Origin::Local`] candidate (the user handed us that file);
//! 3. a *favored* candidate: an id in [`Request::keep`], or an installed candidate the
//!    [`Policy`] wants to keep;
//! 4. repository candidates by repository priority (higher first, strictly — a newer
//!    release in a lower-priority repository loses, as upstream);
//! 5. then newer first: `release`, then `build_release`, then a natural-order comparison of
//!    the version text;
//! 6. installed candidates that are in no repository and not favored;
//! 7. finally the id, for determinism.
//!
//! Under [`Policy::Install`] and [`Policy::Upgrade`] repository candidates older than the
//! installed package of the same name are *excluded* (no downgrades); under
//! [`Policy::AllowDowngrade`] they are not, and installed packages are not favored.
//!
//! Among the names providing one dependency, the solver first tries a name equal to the
//! target of a `name(...)` dependency, then names with a locked/local/favored provider,
//! then the name whose provider has the highest repository priority, then by name.
//!
//! # Performance
//!
//! Candidates are indexed by id, name and provider once (linear); the solver only explores
//! what the request reaches. A layered graph of 50,000 packages resolves in about a second
//! in a release build. Note that resolvo checks expensive (quadratic) invariants when built
//! with `debug-assertions`, so debug builds are far slower unless the workspace builds
//! resolvo optimised (`[profile.dev.package.resolvo] opt-level = 3,
//! debug-assertions = false`).

mod order;
mod provider;

pub use order::{compare_builds, compare_versions};

use std::fmt;

use resolvo::{ConditionalRequirement, Problem, Solver, UnsolvableOrCancelled};
use stone::Dependency;

use provider::Provider;

/// Where a candidate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Already installed (a selection of the active state).
    Installed,
    /// Offered by an active repository.
    Repository {
        /// The repository's id.
        id: String,
        /// The repository's priority; larger is preferred.
        priority: u64,
    },
    /// A `.stone` file the user gave by path.
    Local,
}

/// One package that could be selected.
///
/// Ids are meant to be unique. If the same id is given more than once (typically a package
/// that is both installed and still offered by a repository) the entries are merged: the
/// first entry's metadata is used and the origins are combined (installed *and* in that
/// repository, with the highest priority of the repositories offering it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Package id (the SHA-256 of the `.stone`, hex).
    pub id: String,
    /// Package name.
    pub name: String,
    /// Upstream version text.
    pub version: String,
    /// Recipe release number.
    pub release: u64,
    /// Build counter.
    pub build_release: u64,
    /// Where it comes from.
    pub origin: Origin,
    /// What it provides; `name(<name>)` is implied and need not be listed.
    pub provides: Vec<Dependency>,
    /// What it needs.
    pub depends: Vec<Dependency>,
    /// What must not be selected alongside it.
    pub conflicts: Vec<Dependency>,
}

/// How to weigh installed packages against what repositories offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Keep the installed version of every installed package; new packages get the best
    /// repository candidate. Never downgrades.
    #[default]
    Install,
    /// Best repository candidate everywhere, except that an installed package at least as
    /// new as the best repository candidate is kept. Never downgrades.
    Upgrade,
    /// Best repository candidate everywhere, even if older than the installed package
    /// (sync to exactly what the repositories offer).
    AllowDowngrade,
}

/// What the caller wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Must all be satisfied (the user's explicit packages; `foo` means `name(foo)`).
    pub install: Vec<Dependency>,
    /// Ids that should stay as they are if possible: favored for their name under every
    /// policy. Unknown ids are ignored. This is a preference, not a requirement: a kept
    /// package that nothing requires is not part of the resolution.
    pub keep: Vec<String>,
    /// Ids that must stay exactly: if their name is selected at all, it is this id.
    /// Locking does not by itself put the package into the resolution (add it to
    /// [`Request::install`] for that).
    pub lock: Vec<String>,
    /// How installed packages are weighed.
    pub policy: Policy,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Selected ids in install order: every package after the packages it depends on,
    /// except inside dependency cycles. Deterministic for a given input.
    pub selected: Vec<String>,
    /// For each entry of [`Request::install`], in order, the selected ids providing it
    /// (usually one). These are the explicitly requested packages.
    pub requested: Vec<Vec<String>>,
}

/// A dependency of a candidate that no candidate provides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MissingProvider {
    /// The dependency nothing provides.
    pub dependency: Dependency,
    /// `name version-release` of the package needing it.
    pub required_by: String,
    /// Id of the package needing it.
    pub required_by_id: String,
}

/// A declared conflict involved in a failure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeclaredConflict {
    /// `name version-release` of the package declaring the conflict.
    pub package: String,
    /// Id of the package declaring the conflict.
    pub package_id: String,
    /// The conflicting provider, as declared.
    pub conflict: Dependency,
    /// `name version-release` of the package providing it.
    pub provider: String,
    /// Id of the package providing it.
    pub provider_id: String,
}

/// Why a request cannot be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsatisfiable {
    /// Dependencies without any provider that took part in the failure.
    pub missing: Vec<MissingProvider>,
    /// Declared conflicts that took part in the failure.
    pub conflicts: Vec<DeclaredConflict>,
    /// The solver's full explanation (a tree, several lines).
    pub explanation: String,
}

impl fmt::Display for Unsatisfiable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cannot satisfy the request:")?;
        for missing in &self.missing {
            writeln!(
                f,
                "  no package provides {}; required by {}",
                missing.dependency, missing.required_by
            )?;
        }
        for conflict in &self.conflicts {
            writeln!(
                f,
                "  {} conflicts with {}, which {} provides",
                conflict.package, conflict.conflict, conflict.provider
            )?;
        }
        if !self.missing.is_empty() || !self.conflicts.is_empty() {
            writeln!(f)?;
        }
        write!(f, "{}", self.explanation.trim_end())
    }
}

/// Resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Requested items that no candidate provides at all.
    #[error("{}", no_provider_message(.dependencies))]
    NoProvider {
        /// The requested dependencies without provider, in request order.
        dependencies: Vec<Dependency>,
    },
    /// A [`Request::lock`] id is not among the candidates.
    #[error("locked package {0} is not among the candidates")]
    UnknownLock(String),
    /// Two [`Request::lock`] ids share a package name.
    #[error("cannot lock both {first} and {second}: both are named {name}")]
    ConflictingLocks {
        /// The shared package name.
        name: String,
        /// One locked id.
        first: String,
        /// The other locked id.
        second: String,
    },
    /// No selection satisfies the request.
    #[error("{0}")]
    Unsatisfiable(Box<Unsatisfiable>),
}

fn no_provider_message(dependencies: &[Dependency]) -> String {
    let list = dependencies
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!("no package provides {list}; requested")
}

/// Resolve `request` against `candidates`. See the [module documentation](self) for the
/// model and the preference order.
pub fn resolve(candidates: &[Candidate], request: &Request) -> Result<Resolution, ResolveError> {
    let provider = Provider::new(candidates, request)?;

    let unprovided: Vec<Dependency> = request
        .install
        .iter()
        .filter(|dependency| !provider.is_provided(dependency))
        .cloned()
        .collect();
    if !unprovided.is_empty() {
        return Err(ResolveError::NoProvider {
            dependencies: unprovided,
        });
    }

    let requirements: Vec<ConditionalRequirement> = request
        .install
        .iter()
        .map(|dependency| provider.requirement(dependency).into())
        .collect();

    let mut solver = Solver::new(provider);
    match solver.solve(Problem::new().requirements(requirements)) {
        Ok(solution) => Ok(solver.provider().resolution(&solution, &request.install)),
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            let graph = conflict.graph(&solver);
            let explanation = conflict.display_user_friendly(&solver).to_string();
            let (missing, conflicts) = solver.provider().causes(&graph);
            Err(ResolveError::Unsatisfiable(Box::new(Unsatisfiable {
                missing,
                conflicts,
                explanation,
            })))
        }
        // The provider never asks to cancel.
        Err(UnsolvableOrCancelled::Cancelled(_)) => unreachable!("resolution is never cancelled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, release: u64, origin: Origin) -> Candidate {
        Candidate {
            id: format!("{name}-{release}-{origin:?}"),
            name: name.to_owned(),
            version: format!("1.{release}"),
            release,
            build_release: 1,
            origin,
            provides: Vec::new(),
            depends: Vec::new(),
            conflicts: Vec::new(),
        }
    }

    fn repo(priority: u64) -> Origin {
        Origin::Repository {
            id: format!("r{priority}"),
            priority,
        }
    }

    fn request(names: &[&str], policy: Policy) -> Request {
        Request {
            install: names.iter().map(|name| Dependency::name(*name)).collect(),
            policy,
            ..Request::default()
        }
    }

    #[test]
    fn empty_request_selects_nothing() {
        let candidates = vec![candidate("a", 1, repo(0))];
        let resolution = resolve(&candidates, &Request::default()).unwrap();
        assert!(resolution.selected.is_empty());
        assert!(resolution.requested.is_empty());
    }

    #[test]
    fn duplicate_ids_merge_installed_and_repository() {
        let mut installed = candidate("a", 1, Origin::Installed);
        installed.id = "same".into();
        let mut offered = candidate("a", 1, repo(5));
        offered.id = "same".into();
        let newer_low = candidate("a", 2, repo(1));
        let candidates = vec![installed, offered, newer_low];
        // The merged candidate carries priority 5 and beats the newer release at priority 1.
        let resolution = resolve(&candidates, &request(&["a"], Policy::AllowDowngrade)).unwrap();
        assert_eq!(resolution.selected, ["same"]);
    }

    #[test]
    fn unknown_lock_is_an_error() {
        let candidates = vec![candidate("a", 1, repo(0))];
        let mut req = request(&["a"], Policy::Install);
        req.lock.push("nope".into());
        assert_eq!(
            resolve(&candidates, &req),
            Err(ResolveError::UnknownLock("nope".into()))
        );
    }

    #[test]
    fn two_locks_on_one_name_are_an_error() {
        let first = candidate("a", 1, repo(0));
        let second = candidate("a", 2, repo(0));
        let mut req = request(&["a"], Policy::Install);
        req.lock = vec![first.id.clone(), second.id.clone()];
        let error = resolve(&[first, second], &req).unwrap_err();
        assert!(
            matches!(error, ResolveError::ConflictingLocks { .. }),
            "{error}"
        );
    }

    #[test]
    fn lock_pins_an_older_candidate() {
        let old = candidate("a", 1, repo(0));
        let new = candidate("a", 2, repo(0));
        let mut req = request(&["a"], Policy::Upgrade);
        req.lock = vec![old.id.clone()];
        let resolution = resolve(&[old.clone(), new], &req).unwrap();
        assert_eq!(resolution.selected, [old.id]);
    }

    #[test]
    fn keep_favors_under_every_policy() {
        let installed = candidate("a", 1, Origin::Installed);
        let new = candidate("a", 2, repo(0));
        let mut req = request(&["a"], Policy::AllowDowngrade);
        req.keep = vec![installed.id.clone()];
        let resolution = resolve(&[installed.clone(), new], &req).unwrap();
        assert_eq!(resolution.selected, [installed.id]);
    }

    #[test]
    fn local_beats_installed_and_repositories() {
        let installed = candidate("a", 3, Origin::Installed);
        let local = candidate("a", 1, Origin::Local);
        let offered = candidate("a", 4, repo(9));
        let resolution = resolve(
            &[installed, local.clone(), offered],
            &request(&["a"], Policy::Install),
        )
        .unwrap();
        assert_eq!(resolution.selected, [local.id]);
    }

    #[test]
    fn no_provider_message_names_every_missing_item() {
        let candidates = vec![candidate("a", 1, repo(0))];
        let error = resolve(&candidates, &request(&["x", "a", "y"], Policy::Install)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no package provides name(x), name(y); requested"
        );
    }
}

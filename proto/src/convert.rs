//! Conversions between the wire types and the engine's, for the daemon and the CLI (feature
//! `engine`). A client that only talks to mossd, such as moss-gui, builds without them and so
//! without the engine.

use moss::{
    operations::{Plan, Planned},
    queries::{FileHit, PackageDetails, PackageSummary, StateDiff, StateSummary},
};

use crate::wire::{
    BootEntry, Details, Diff, File, Package, PlanWire, PlannedPackage, Problem, Repository, State,
};

impl From<PackageSummary> for Package {
    fn from(package: PackageSummary) -> Self {
        Self {
            id: package.id,
            name: package.name,
            version: package.version,
            release: package.release,
            build_release: package.build_release,
            summary: package.summary,
            explicit: package.explicit.unwrap_or(false),
            repository: package.repository.unwrap_or_default(),
        }
    }
}

impl From<Package> for PackageSummary {
    fn from(package: Package) -> Self {
        let installed = package.repository.is_empty();
        Self {
            id: package.id,
            name: package.name,
            version: package.version,
            release: package.release,
            build_release: package.build_release,
            summary: package.summary,
            explicit: installed.then_some(package.explicit),
            repository: (!installed).then_some(package.repository),
        }
    }
}

impl From<PackageDetails> for Details {
    fn from(details: PackageDetails) -> Self {
        Self {
            status: details.status,
            id: details.id,
            explicit: details.explicit.unwrap_or(false),
            repository: details.repository.unwrap_or_default(),
            package_json: serde_json::to_string(&details.package).unwrap_or_default(),
            files: details.files,
        }
    }
}

impl TryFrom<Details> for PackageDetails {
    type Error = serde_json::Error;

    fn try_from(details: Details) -> Result<Self, Self::Error> {
        let installed = details.status == "installed";
        Ok(Self {
            package: serde_json::from_str(&details.package_json)?,
            status: details.status,
            id: details.id,
            explicit: installed.then_some(details.explicit),
            repository: (!installed).then_some(details.repository),
            files: details.files,
        })
    }
}

impl From<FileHit> for File {
    fn from(hit: FileHit) -> Self {
        Self {
            path: hit.path,
            package: hit.package,
        }
    }
}

impl From<File> for FileHit {
    fn from(file: File) -> Self {
        Self {
            path: file.path,
            package: file.package,
        }
    }
}

impl From<StateSummary> for State {
    fn from(state: StateSummary) -> Self {
        Self {
            id: state.id,
            created: state.created,
            summary: state.summary,
            description: state.description.unwrap_or_default(),
            packages: state.packages as u64,
            active: state.active,
        }
    }
}

impl From<State> for StateSummary {
    fn from(state: State) -> Self {
        Self {
            id: state.id,
            created: state.created,
            summary: state.summary,
            description: (!state.description.is_empty()).then_some(state.description),
            packages: usize::try_from(state.packages).unwrap_or(usize::MAX),
            active: state.active,
        }
    }
}

impl From<StateDiff> for Diff {
    fn from(diff: StateDiff) -> Self {
        Self {
            added: diff.added,
            removed: diff.removed,
            changed: diff.changed,
        }
    }
}

impl From<&moss::repository::Repository> for Repository {
    fn from(repository: &moss::repository::Repository) -> Self {
        Self {
            id: repository.id.clone(),
            uri: repository.uri.to_string(),
            priority: repository.priority,
            active: repository.active,
            description: repository.description.clone(),
            signed: repository.is_signed(),
            keys: repository.keys.clone(),
            root_index: repository
                .root_index
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

impl From<Planned> for PlannedPackage {
    fn from(planned: Planned) -> Self {
        Self {
            id: planned.id,
            name: planned.name,
            version: planned.version,
            origin: planned.origin,
            release: planned.release,
            build_release: planned.build_release,
        }
    }
}

impl From<PlannedPackage> for Planned {
    fn from(planned: PlannedPackage) -> Self {
        Self {
            id: planned.id,
            name: planned.name,
            version: planned.version,
            origin: planned.origin,
            release: planned.release,
            build_release: planned.build_release,
        }
    }
}

impl From<Plan> for PlanWire {
    fn from(plan: Plan) -> Self {
        Self {
            add: plan.add.into_iter().map(Into::into).collect(),
            remove: plan.remove.into_iter().map(Into::into).collect(),
            change: plan
                .change
                .into_iter()
                .map(|(old, new)| (old.into(), new.into()))
                .collect(),
        }
    }
}

impl From<PlanWire> for Plan {
    fn from(plan: PlanWire) -> Self {
        Self {
            add: plan.add.into_iter().map(Into::into).collect(),
            remove: plan.remove.into_iter().map(Into::into).collect(),
            change: plan
                .change
                .into_iter()
                .map(|(old, new)| (old.into(), new.into()))
                .collect(),
            ..Plan::default()
        }
    }
}

impl From<moss::boot::EntryStatus> for BootEntry {
    fn from(entry: moss::boot::EntryStatus) -> Self {
        Self {
            file: entry.file,
            state: entry.state,
            kernel: entry.kernel,
            default: entry.default,
            installed: entry.installed,
        }
    }
}

impl From<moss::state::Issue> for Problem {
    fn from(issue: moss::state::Issue) -> Self {
        Self {
            state: issue.state.unwrap_or(0),
            path: issue.path,
            problem: issue.problem,
        }
    }
}

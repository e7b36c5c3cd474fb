//! Wire types: what the daemon's methods return, as D-Bus structs that `busctl` and `gdbus` show
//! field by field. Conversions to and from the engine's types are in `convert` (feature
//! `engine`), so that a client may use these types without linking the engine.
//!
//! D-Bus has no optional values, so absent fields travel as empty strings or `false`.

use moss_types::events::Event;
use serde::{Deserialize, Serialize};
use zbus::wire::Type;

/// A package in a listing: `(id, name, version, release, build_release, summary, explicit,
/// repository)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Package {
    /// Package id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Upstream version.
    pub version: String,
    /// Recipe release.
    pub release: u64,
    /// Build release.
    pub build_release: u64,
    /// Summary.
    pub summary: String,
    /// Installed and asked for by the user.
    pub explicit: bool,
    /// Repository for available packages, empty for installed ones.
    pub repository: String,
}

/// Details of one package. The metadata travels as the JSON of the engine's package record so
/// that fields added to the format reach clients without a new interface version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Details {
    /// `installed` or `available`.
    pub status: String,
    /// Package id.
    pub id: String,
    /// Installed and asked for by the user.
    pub explicit: bool,
    /// Repository of an available package.
    pub repository: String,
    /// The package record as JSON.
    pub package_json: String,
    /// Absolute paths of its files, when asked for.
    pub files: Vec<String>,
}

/// A file of an installed package: `(path, package)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct File {
    /// Absolute path.
    pub path: String,
    /// Owning package name.
    pub package: String,
}

/// A state: `(id, created, summary, description, packages, active)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct State {
    /// State id.
    pub id: u64,
    /// Creation time, UTC seconds.
    pub created: i64,
    /// What made it.
    pub summary: String,
    /// Free text.
    pub description: String,
    /// Number of packages.
    pub packages: u64,
    /// Whether it is active.
    pub active: bool,
}

/// What differs between two states: `(added, removed, changed (name, old, new))`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Diff {
    /// `name version-release` only in the newer state.
    pub added: Vec<String>,
    /// `name version-release` only in the older state.
    pub removed: Vec<String>,
    /// `(name, old, new)`.
    pub changed: Vec<(String, String, String)>,
}

/// A repository: `(id, uri, priority, active, description, signed, keys, root_index)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Repository {
    /// Repository id.
    pub id: String,
    /// Index location.
    pub uri: String,
    /// Priority, higher wins.
    pub priority: u64,
    /// Enabled.
    pub active: bool,
    /// Free text.
    pub description: String,
    /// Whether its index must carry a valid signature.
    pub signed: bool,
    /// Its pinned minisign public keys.
    pub keys: Vec<String>,
    /// For a root-index source, `(base-uri=..., channel=..., version=..., arch=...)`; `uri`
    /// is then its moss-root-index.json. Empty for a direct index.
    pub root_index: String,
}

/// A package of a plan: `(id, name, version, origin, release, build_release)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PlannedPackage {
    /// Package id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `version-release`.
    pub version: String,
    /// `installed`, a repository id, or `local`.
    pub origin: String,
    /// The recipe's release.
    pub release: u64,
    /// The build of that release.
    pub build_release: u64,
}

/// What an install, remove or sync will do: `(add, remove, change (old, new))`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PlanWire {
    /// New packages.
    pub add: Vec<PlannedPackage>,
    /// Packages that go away.
    pub remove: Vec<PlannedPackage>,
    /// Packages replaced by another version.
    pub change: Vec<(PlannedPackage, PlannedPackage)>,
}

/// One entry of the daemon's history: `(transaction, title, uid, started, finished, status,
/// message, state)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct HistoryEntry {
    /// Transaction number: unique in the installation's history (daemon runs number on from
    /// the highest recorded).
    pub transaction: u64,
    /// What it did.
    pub title: String,
    /// Who asked.
    pub uid: u32,
    /// When it started, UTC seconds.
    pub started: u64,
    /// When it ended, UTC seconds.
    pub finished: u64,
    /// Final status.
    pub status: String,
    /// Its outcome or error message.
    pub message: String,
    /// The state active afterwards (0 for none).
    pub state: u64,
}

/// A boot entry: `(file, state, kernel, default, installed)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct BootEntry {
    /// File name in `loader/entries`.
    pub file: String,
    /// The state it boots.
    pub state: u64,
    /// The kernel version.
    pub kernel: String,
    /// Whether it is the default entry.
    pub default: bool,
    /// Whether the boot partition holds it as planned (false: a boot sync would write it).
    pub installed: bool,
}

/// A problem `Verify` found: `(state, path, problem)`; state 0 means the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Problem {
    /// The state whose tree has it, 0 for the store.
    pub state: u64,
    /// The path.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Version of [`Progress`]; a client refuses events of a version it does not know.
pub const PROGRESS_VERSION: u32 = 1;

/// A progress event of a transaction, numbered. Travels as JSON in the `Event` signal and in
/// `Events` replies, so the engine's event kinds reach clients without a new interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// [`PROGRESS_VERSION`].
    pub version: u32,
    /// 1, 2, 3 ... within the transaction; a client that missed some asks `Events(since)`.
    pub sequence: u64,
    /// Whole-transaction percentage, weighted by phase; never goes down.
    pub percentage: u32,
    /// Seconds left, when it can be estimated.
    pub eta_seconds: Option<u64>,
    /// Bytes downloaded so far in this transaction.
    pub bytes_done: u64,
    /// Bytes to download in this transaction, when known.
    pub bytes_total: u64,
    /// What happened.
    pub event: Event,
}

impl Progress {
    /// Encode for the wire.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decode from the wire, refusing unknown versions.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let progress: Self = serde_json::from_str(text)
            .map_err(|error| format!("cannot read a progress event: {error}"))?;
        if progress.version != PROGRESS_VERSION {
            return Err(format!(
                "progress event version {} is not {PROGRESS_VERSION}; update moss",
                progress.version
            ));
        }
        Ok(progress)
    }
}

/// The outcome of a failed transaction (the `outcome` argument of `Finished` when its status
/// is `failed`): the kind of the failure, so clients need not read the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The class of the failure.
    pub kind: moss_types::ErrorKind,
}

impl Failure {
    /// Encode for the wire.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The kind in a failed transaction's outcome (`Failed` when it has none, as from an older
    /// daemon).
    pub fn kind_of(outcome: &str) -> moss_types::ErrorKind {
        serde_json::from_str::<Self>(outcome)
            .map_or(moss_types::ErrorKind::Failed, |failure| failure.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moss_types::events::Phase;

    #[test]
    fn progress_round_trips_and_refuses_other_versions() {
        let progress = Progress {
            version: PROGRESS_VERSION,
            sequence: 3,
            percentage: 40,
            eta_seconds: Some(2),
            bytes_done: 10,
            bytes_total: 20,
            event: Event::PhaseStarted {
                phase: Phase::Blit,
                total: 5,
            },
        };
        let text = progress.to_json();
        assert_eq!(Progress::from_json(&text).unwrap(), progress);
        let future = text.replace("\"version\":1", "\"version\":2");
        assert!(
            Progress::from_json(&future)
                .unwrap_err()
                .contains("version 2")
        );
    }

    #[test]
    fn signatures_are_stable() {
        assert_eq!(Package::SIGNATURE.to_string(), "(sssttsbs)");
        assert_eq!(State::SIGNATURE.to_string(), "(txsstb)");
        assert_eq!(
            PlanWire::SIGNATURE.to_string(),
            "(a(sssstt)a(sssstt)a((sssstt)(sssstt)))"
        );
    }
}

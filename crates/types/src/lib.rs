//! The types the moss engine shares with its clients: the progress events it reports and the
//! kinds of its failures. They travel over D-Bus as JSON, so they live apart from the engine and
//! a client (the CLI, moss-gui) reads them without linking it.

pub mod events;
pub mod time;

use serde::{Deserialize, Serialize};

/// What kind of failure an engine error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Nothing provides or matches what was named (a package, a state).
    NotFound,
    /// A package named for removal is not installed.
    NotInstalled,
    /// The request itself is malformed (a bad package name or argument).
    InvalidRequest,
    /// A package file is corrupt, hostile or not a binary package.
    InvalidPackage,
    /// The packages' files or declared conflicts clash.
    Conflict,
    /// No set of packages satisfies the request.
    Unsatisfiable,
    /// A named repository is not configured.
    UnknownRepository,
    /// A repository could not be reached or served something unusable (bad signature, stale or
    /// malformed index).
    Repository,
    /// The directory is not a moss installation, or holds a `/usr` moss does not manage.
    Unmanaged,
    /// Another process holds the installation.
    Busy,
    /// Cancelled before the point of no return; nothing was changed.
    Cancelled,
    /// The new state would lose what recovery needs (moss, the C library, the kernel);
    /// `--force` overrides.
    Unrecoverable,
    /// Any other failure.
    Failed,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [Self; 13] = [
        Self::NotFound,
        Self::NotInstalled,
        Self::InvalidRequest,
        Self::InvalidPackage,
        Self::Conflict,
        Self::Unsatisfiable,
        Self::UnknownRepository,
        Self::Repository,
        Self::Unmanaged,
        Self::Busy,
        Self::Cancelled,
        Self::Unrecoverable,
        Self::Failed,
    ];
}

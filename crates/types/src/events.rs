//! Progress events: the engine reports what it does through a [`Reporter`] instead of printing.
//!
//! The `moss` CLI renders them as progress bars; `mossd` turns them into D-Bus signals.

use std::sync::Arc;

/// A phase of a transaction, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Choosing packages.
    Resolve,
    /// Downloading packages and indexes.
    Fetch,
    /// Unpacking package content into the store.
    Unpack,
    /// Building the new `/usr` tree.
    Blit,
    /// Running triggers.
    Triggers,
    /// Swapping the new tree in.
    Swap,
    /// Updating boot entries.
    Boot,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A phase started; `total` items are expected (0 when unknown).
    PhaseStarted {
        /// The phase.
        phase: Phase,
        /// Items expected.
        total: u64,
    },
    /// Progress inside a phase.
    Progress {
        /// The phase.
        phase: Phase,
        /// Items done so far.
        done: u64,
        /// Items expected.
        total: u64,
    },
    /// A phase ended.
    PhaseFinished {
        /// The phase.
        phase: Phase,
    },
    /// A download started.
    DownloadStarted {
        /// What is downloaded (package name or repository id).
        item: String,
        /// Expected size in bytes, when known.
        bytes: Option<u64>,
    },
    /// Bytes of a download arrived.
    DownloadProgress {
        /// What is downloaded.
        item: String,
        /// Bytes received so far.
        bytes: u64,
    },
    /// A download ended; `cached` when no transfer was needed.
    DownloadFinished {
        /// What was downloaded.
        item: String,
        /// Whether a valid copy was already present.
        cached: bool,
    },
    /// A retry after a transient failure.
    Retry {
        /// What is retried.
        item: String,
        /// Attempt number, from 2.
        attempt: u32,
        /// Why the previous attempt failed.
        reason: String,
    },
    /// A package's content is in the store.
    Unpacked {
        /// Package name.
        package: String,
    },
    /// A warning worth showing to the user.
    Warning {
        /// The text.
        message: String,
    },
}

/// Receives events. Implementations must be cheap: they run on the engine's threads.
pub trait Reporter: Send + Sync + std::fmt::Debug {
    /// One event happened.
    fn report(&self, event: Event);
}

/// A reporter that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event) {}
}

/// Shared handle to a reporter.
pub type SharedReporter = Arc<dyn Reporter>;

//! The D-Bus contract between `mossd` and its clients: names, object paths, polkit action ids,
//! named errors, wire types, the versioned progress event, and the client proxies.
//!
//! Interface names carry their version (`com.serpentos.Moss1`): an incompatible change makes a
//! `Moss2` beside it instead of changing what existing clients call. Methods that may grow take an
//! `a{sv}` of options whose unknown keys are ignored.

pub mod wire;

mod proxies;

pub use proxies::{ManagerProxy, TransactionProxy};

/// Well-known bus name of the daemon.
pub const BUS_NAME: &str = "com.serpentos.Moss1";
/// Object path of the daemon's manager object.
pub const OBJECT_PATH: &str = "/com/serpentos/Moss1";
/// Interface of the manager object: queries and the methods that create transactions.
pub const MANAGER_INTERFACE: &str = "com.serpentos.Moss1";
/// Interface of transaction objects.
pub const TRANSACTION_INTERFACE: &str = "com.serpentos.Moss1.Transaction";
/// Transaction objects live under this path, numbered from 1 for each daemon run.
pub const TRANSACTION_PATH_PREFIX: &str = "/com/serpentos/Moss1/Transaction/";

/// The object path of transaction `number`.
pub fn transaction_path(number: u64) -> String {
    format!("{TRANSACTION_PATH_PREFIX}{number}")
}

/// polkit action ids: one per kind of change. Queries need none.
pub mod actions {
    /// Install packages from configured repositories or local files.
    pub const INSTALL: &str = "com.serpentos.moss.install";
    /// Remove packages.
    pub const REMOVE: &str = "com.serpentos.moss.remove";
    /// Update installed packages.
    pub const SYNC: &str = "com.serpentos.moss.sync";
    /// Refresh repository indexes.
    pub const REFRESH: &str = "com.serpentos.moss.refresh";
    /// Add, remove, enable or disable repositories.
    pub const REPO_CONFIGURE: &str = "com.serpentos.moss.repo-configure";
    /// Activate another state (rollback or roll forward).
    pub const STATE_ACTIVATE: &str = "com.serpentos.moss.state-activate";
    /// Remove states, prune them, repair the store or collect garbage.
    pub const STATE_PRUNE: &str = "com.serpentos.moss.state-prune";
    /// Write boot entries.
    pub const BOOT_CONFIGURE: &str = "com.serpentos.moss.boot-configure";
    /// Compose a build root for boulder.
    pub const BUILD_ROOT: &str = "com.serpentos.moss.build-root";
    /// Cancel a transaction another user started.
    pub const CANCEL_FOREIGN: &str = "com.serpentos.moss.cancel-foreign";

    /// Every action, for the policy file's tests.
    pub const ALL: [&str; 10] = [
        INSTALL,
        REMOVE,
        SYNC,
        REFRESH,
        REPO_CONFIGURE,
        STATE_ACTIVATE,
        STATE_PRUNE,
        BOOT_CONFIGURE,
        BUILD_ROOT,
        CANCEL_FOREIGN,
    ];
}

/// Named D-Bus errors the daemon replies with (`com.serpentos.Moss1.Error.*`).
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "com.serpentos.Moss1.Error")]
pub enum Error {
    /// A transport error.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller may not do this (polkit said no, or could not be asked).
    NotAuthorized(String),
    /// The request names something that does not exist.
    NotFound(String),
    /// The request is malformed.
    InvalidArgument(String),
    /// The transaction already started, finished, or is past its point of no return.
    InvalidState(String),
    /// The change failed; the message names the object and the fix.
    Failed(String),
}

/// The class of a daemon error, for exit codes and messages.
impl Error {
    /// The message without the D-Bus error name.
    pub fn message(&self) -> String {
        match self {
            Self::ZBus(error) => error.to_string(),
            Self::NotAuthorized(message)
            | Self::NotFound(message)
            | Self::InvalidArgument(message)
            | Self::InvalidState(message)
            | Self::Failed(message) => message.clone(),
        }
    }
}

/// Status of a transaction, as its `Status` property spells it.
pub mod status {
    /// Created; waiting for its client to call `Start`.
    pub const WAITING: &str = "waiting";
    /// Started, waiting behind other transactions.
    pub const QUEUED: &str = "queued";
    /// Being carried out.
    pub const RUNNING: &str = "running";
    /// Done.
    pub const SUCCEEDED: &str = "succeeded";
    /// Failed; the system is as it was before it.
    pub const FAILED: &str = "failed";
    /// Cancelled before its point of no return; nothing was changed.
    pub const CANCELLED: &str = "cancelled";

    /// Whether a status is final.
    pub fn is_final(status: &str) -> bool {
        matches!(status, SUCCEEDED | FAILED | CANCELLED)
    }
}

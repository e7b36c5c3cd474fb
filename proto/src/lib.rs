//! The D-Bus contract between `mossd` and its clients: names, object paths, polkit action ids,
//! named errors, wire types, the versioned progress event, and the client proxies.
//!
//! Interface names carry their version (`com.serpentos.Moss1`): an incompatible change makes a
//! `Moss2` beside it instead of changing what existing clients call. Methods that may grow take an
//! `a{sv}` of options whose unknown keys are ignored.

pub mod wire;

#[cfg(feature = "engine")]
mod convert;

mod proxies;

pub use moss_types::ErrorKind;
pub use proxies::{ManagerProxy, TransactionProxy};

/// Well-known bus name of the daemon.
pub const BUS_NAME: &str = "com.serpentos.Moss1";
/// Object path of the daemon's manager object.
pub const OBJECT_PATH: &str = "/com/serpentos/Moss1";
/// Interface of the manager object: queries and the methods that create transactions.
pub const MANAGER_INTERFACE: &str = "com.serpentos.Moss1";
/// Interface of transaction objects.
pub const TRANSACTION_INTERFACE: &str = "com.serpentos.Moss1.Transaction";
/// Transaction objects live under this path, numbered on from the highest number in the
/// installation's history, so that mossd exiting and starting again does not hand out the paths
/// of the transactions it ran or cancelled.
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
    /// Change the daemon's settings (the background update policy, how many states to keep).
    pub const CONFIGURE: &str = "com.serpentos.moss.configure";

    /// Every action, for the policy file's tests.
    pub const ALL: [&str; 11] = [
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
        CONFIGURE,
    ];
}

/// Named D-Bus errors the daemon replies with (`com.serpentos.Moss1.Error.*`). Engine failures
/// get the name of their [`ErrorKind`] ([`Error::engine`]), so clients tell them apart by name,
/// never by message.
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
    /// A package named for removal is not installed.
    NotInstalled(String),
    /// The request is malformed.
    InvalidArgument(String),
    /// A package file is corrupt, hostile or not a package.
    InvalidPackage(String),
    /// Packages clash (files or declared conflicts).
    Conflict(String),
    /// No set of packages satisfies the request.
    Unsatisfiable(String),
    /// A named repository is not configured.
    UnknownRepository(String),
    /// A repository could not be reached or served something unusable.
    Repository(String),
    /// The root is not a moss installation, or holds a `/usr` moss does not manage.
    Unmanaged(String),
    /// Another process holds the installation.
    Busy(String),
    /// The transaction already started, finished, or is past its point of no return.
    InvalidState(String),
    /// The request is larger than the daemon accepts, or the caller holds too many objects.
    LimitExceeded(String),
    /// Cancelled before the point of no return; nothing was changed.
    Cancelled(String),
    /// The new state would lose what recovery needs (moss, the C library, the kernel); the
    /// `force` option overrides.
    Unrecoverable(String),
    /// The change failed; the message names the object and the fix.
    Failed(String),
}

impl Error {
    /// The D-Bus error of an engine failure of `kind`: the one place kinds become names.
    pub fn engine(kind: ErrorKind, message: String) -> Self {
        match kind {
            ErrorKind::NotFound => Self::NotFound(message),
            ErrorKind::NotInstalled => Self::NotInstalled(message),
            ErrorKind::InvalidRequest => Self::InvalidArgument(message),
            ErrorKind::InvalidPackage => Self::InvalidPackage(message),
            ErrorKind::Conflict => Self::Conflict(message),
            ErrorKind::Unsatisfiable => Self::Unsatisfiable(message),
            ErrorKind::UnknownRepository => Self::UnknownRepository(message),
            ErrorKind::Repository => Self::Repository(message),
            ErrorKind::Unmanaged => Self::Unmanaged(message),
            ErrorKind::Busy => Self::Busy(message),
            ErrorKind::Cancelled => Self::Cancelled(message),
            ErrorKind::Unrecoverable => Self::Unrecoverable(message),
            ErrorKind::Failed => Self::Failed(message),
        }
    }

    /// The engine kind behind a D-Bus error name (the last component of
    /// `com.serpentos.Moss1.Error.*`), for clients; `None` for names that are not engine
    /// failures (authorisation, state, limits, transport).
    pub fn kind_of_name(short_name: &str) -> Option<ErrorKind> {
        Some(match short_name {
            "NotFound" => ErrorKind::NotFound,
            "NotInstalled" => ErrorKind::NotInstalled,
            "InvalidArgument" => ErrorKind::InvalidRequest,
            "InvalidPackage" => ErrorKind::InvalidPackage,
            "Conflict" => ErrorKind::Conflict,
            "Unsatisfiable" => ErrorKind::Unsatisfiable,
            "UnknownRepository" => ErrorKind::UnknownRepository,
            "Repository" => ErrorKind::Repository,
            "Unmanaged" => ErrorKind::Unmanaged,
            "Busy" => ErrorKind::Busy,
            "Cancelled" => ErrorKind::Cancelled,
            "Unrecoverable" => ErrorKind::Unrecoverable,
            "Failed" => ErrorKind::Failed,
            _ => return None,
        })
    }

    /// The engine kind of this error; `None` for refusals, limits, state and transport errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        Some(match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::NotInstalled(_) => ErrorKind::NotInstalled,
            Self::InvalidArgument(_) => ErrorKind::InvalidRequest,
            Self::InvalidPackage(_) => ErrorKind::InvalidPackage,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Unsatisfiable(_) => ErrorKind::Unsatisfiable,
            Self::UnknownRepository(_) => ErrorKind::UnknownRepository,
            Self::Repository(_) => ErrorKind::Repository,
            Self::Unmanaged(_) => ErrorKind::Unmanaged,
            Self::Busy(_) => ErrorKind::Busy,
            Self::Cancelled(_) => ErrorKind::Cancelled,
            Self::Unrecoverable(_) => ErrorKind::Unrecoverable,
            Self::Failed(_) => ErrorKind::Failed,
            Self::ZBus(_)
            | Self::NotAuthorized(_)
            | Self::InvalidState(_)
            | Self::LimitExceeded(_) => return None,
        })
    }

    /// The message without the D-Bus error name.
    pub fn message(&self) -> String {
        match self {
            Self::ZBus(error) => error.to_string(),
            Self::NotAuthorized(message)
            | Self::NotFound(message)
            | Self::NotInstalled(message)
            | Self::InvalidArgument(message)
            | Self::InvalidPackage(message)
            | Self::Conflict(message)
            | Self::Unsatisfiable(message)
            | Self::UnknownRepository(message)
            | Self::Repository(message)
            | Self::Unmanaged(message)
            | Self::Busy(message)
            | Self::InvalidState(message)
            | Self::LimitExceeded(message)
            | Self::Cancelled(message)
            | Self::Unrecoverable(message)
            | Self::Failed(message) => message.clone(),
        }
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn every_engine_kind_has_a_name_that_maps_back() {
        for kind in ErrorKind::ALL {
            let error = Error::engine(kind, "m".into());
            let name = zbus::DBusError::name(&error).to_string();
            let short = name.rsplit('.').next().unwrap();
            assert_eq!(Error::kind_of_name(short), Some(kind), "{name}");
            assert_eq!(error.kind(), Some(kind));
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

//! PackageKit 1.2.6's numbers: roles, filters, info, status, exit and error codes.

use moss_proto::actions;

/// Roles (enum values; bitfields set bit n for value n).
pub mod role {
    pub const DEPENDS_ON: u32 = 2;
    pub const GET_DETAILS: u32 = 3;
    pub const GET_FILES: u32 = 4;
    pub const GET_PACKAGES: u32 = 5;
    pub const GET_REPO_LIST: u32 = 6;
    pub const REQUIRED_BY: u32 = 7;
    pub const GET_UPDATE_DETAIL: u32 = 8;
    pub const GET_UPDATES: u32 = 9;
    pub const INSTALL_FILES: u32 = 10;
    pub const INSTALL_PACKAGES: u32 = 11;
    pub const REFRESH_CACHE: u32 = 13;
    pub const REMOVE_PACKAGES: u32 = 14;
    pub const REPO_ENABLE: u32 = 15;
    pub const RESOLVE: u32 = 17;
    pub const SEARCH_DETAILS: u32 = 18;
    pub const SEARCH_FILE: u32 = 19;
    pub const SEARCH_NAME: u32 = 21;
    pub const UPDATE_PACKAGES: u32 = 22;
    pub const WHAT_PROVIDES: u32 = 23;
    pub const DOWNLOAD_PACKAGES: u32 = 25;
    pub const REPO_REMOVE: u32 = 32;
}

/// Only the roles that work are advertised.
pub const ROLES: u64 = {
    let roles = [
        role::DEPENDS_ON,
        role::GET_DETAILS,
        role::GET_FILES,
        role::GET_PACKAGES,
        role::GET_REPO_LIST,
        role::REQUIRED_BY,
        role::GET_UPDATE_DETAIL,
        role::GET_UPDATES,
        role::INSTALL_FILES,
        role::INSTALL_PACKAGES,
        role::REFRESH_CACHE,
        role::REMOVE_PACKAGES,
        role::REPO_ENABLE,
        role::RESOLVE,
        role::SEARCH_DETAILS,
        role::SEARCH_FILE,
        role::SEARCH_NAME,
        role::UPDATE_PACKAGES,
        role::WHAT_PROVIDES,
        role::DOWNLOAD_PACKAGES,
        role::REPO_REMOVE,
    ];
    let mut bits = 0u64;
    let mut index = 0;
    while index < roles.len() {
        bits |= 1 << roles[index];
        index += 1;
    }
    bits
};

/// Filter bits.
pub mod filter {
    pub const INSTALLED: u64 = 1 << 2;
    pub const NOT_INSTALLED: u64 = 1 << 3;
    pub const DEVEL: u64 = 1 << 4;
    pub const NOT_DEVEL: u64 = 1 << 5;
    pub const NEWEST: u64 = 1 << 16;
    pub const ARCH: u64 = 1 << 18;
    pub const NOT_ARCH: u64 = 1 << 19;
    pub const SOURCE: u64 = 1 << 20;
}

/// The filters honoured.
pub const FILTERS: u64 = filter::INSTALLED | filter::DEVEL | filter::NEWEST | filter::ARCH;

/// Transaction flag bits.
pub mod flag {
    pub const SIMULATE: u64 = 1 << 2;
    pub const ONLY_DOWNLOAD: u64 = 1 << 3;
}

/// Info values of `Package` signals.
pub mod info {
    pub const INSTALLED: u32 = 1;
    pub const AVAILABLE: u32 = 2;
    pub const NORMAL: u32 = 5;
    pub const UPDATING: u32 = 11;
    pub const INSTALLING: u32 = 12;
    pub const REMOVING: u32 = 13;
}

/// Status values.
pub mod status {
    pub const WAIT: u32 = 1;
    pub const RUNNING: u32 = 3;
    pub const QUERY: u32 = 4;
    pub const DOWNLOAD: u32 = 8;
    pub const INSTALL: u32 = 9;
    pub const DEP_RESOLVE: u32 = 13;
    pub const COMMIT: u32 = 16;
    pub const FINISHED: u32 = 18;
    pub const RUN_HOOK: u32 = 36;
}

/// Exit values of `Finished`.
pub mod exit {
    pub const SUCCESS: u32 = 1;
    pub const FAILED: u32 = 2;
    pub const CANCELLED: u32 = 3;
}

/// Error codes of `ErrorCode`.
pub mod error {
    use moss::ErrorKind;

    pub const INTERNAL_ERROR: u32 = 4;
    pub const PACKAGE_ID_INVALID: u32 = 6;
    pub const PACKAGE_NOT_INSTALLED: u32 = 7;
    pub const PACKAGE_NOT_FOUND: u32 = 8;
    pub const DEP_RESOLUTION_FAILED: u32 = 13;
    pub const TRANSACTION_ERROR: u32 = 16;
    pub const TRANSACTION_CANCELLED: u32 = 17;
    pub const REPO_NOT_FOUND: u32 = 19;
    pub const CANNOT_REMOVE_SYSTEM_PACKAGE: u32 = 20;
    pub const FAILED_INITIALIZATION: u32 = 22;
    pub const CANNOT_GET_LOCK: u32 = 26;
    pub const PACKAGE_CONFLICTS: u32 = 36;
    pub const REPO_NOT_AVAILABLE: u32 = 37;
    pub const INVALID_PACKAGE_FILE: u32 = 38;
    pub const FILE_NOT_FOUND: u32 = 42;
    pub const NOT_AUTHORIZED: u32 = 48;

    /// The PackageKit error code of an engine failure: the one place kinds become codes.
    pub fn for_kind(kind: ErrorKind) -> u32 {
        match kind {
            ErrorKind::NotFound => PACKAGE_NOT_FOUND,
            ErrorKind::NotInstalled => PACKAGE_NOT_INSTALLED,
            ErrorKind::InvalidRequest => PACKAGE_ID_INVALID,
            ErrorKind::InvalidPackage => INVALID_PACKAGE_FILE,
            ErrorKind::Conflict => PACKAGE_CONFLICTS,
            ErrorKind::Unsatisfiable => DEP_RESOLUTION_FAILED,
            ErrorKind::UnknownRepository => REPO_NOT_FOUND,
            ErrorKind::Repository => REPO_NOT_AVAILABLE,
            ErrorKind::Unmanaged => FAILED_INITIALIZATION,
            ErrorKind::Busy => CANNOT_GET_LOCK,
            ErrorKind::Cancelled => TRANSACTION_CANCELLED,
            ErrorKind::Unrecoverable => CANNOT_REMOVE_SYSTEM_PACKAGE,
            ErrorKind::Failed => TRANSACTION_ERROR,
        }
    }

    /// The PackageKit error code of a daemon error (refusals, limits, engine failures).
    pub fn for_daemon_error(error: &moss_proto::Error) -> u32 {
        match error {
            moss_proto::Error::NotAuthorized(_) => NOT_AUTHORIZED,
            other => other.kind().map_or(TRANSACTION_ERROR, for_kind),
        }
    }
}

/// Network states.
pub mod network {
    pub const ONLINE: u32 = 2;
}

/// The moss polkit action that stands for a PackageKit one: the caller's authority is the same
/// through either interface.
pub fn moss_action(packagekit_action: &str) -> Option<&'static str> {
    let action = packagekit_action.strip_prefix("org.freedesktop.packagekit.")?;
    Some(match action {
        "package-install" | "package-install-untrusted" | "package-reinstall" => actions::INSTALL,
        "package-remove" => actions::REMOVE,
        "system-update" | "package-downgrade" | "trigger-offline-update" => actions::SYNC,
        "system-sources-refresh" => actions::REFRESH,
        "system-sources-configure" => actions::REPO_CONFIGURE,
        "cancel-foreign" => actions::CANCEL_FOREIGN,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_roles_include_what_pkcon_needs() {
        for role in [
            role::RESOLVE,
            role::SEARCH_NAME,
            role::GET_DETAILS,
            role::INSTALL_PACKAGES,
        ] {
            assert_ne!(ROLES & (1 << role), 0);
        }
        // Roles that are not implemented are not advertised.
        assert_eq!(ROLES & (1 << 33), 0, "upgrade-system");
        assert_eq!(
            moss_action("org.freedesktop.packagekit.package-install"),
            Some(actions::INSTALL)
        );
        assert_eq!(moss_action("org.example.other"), None);
    }
}

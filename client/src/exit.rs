//! Exit codes by class of failure (BSD sysexits, as package managers and scripts expect).

use moss::{ErrorKind, extract::ExtractError};

use crate::remote::RemoteError;

/// The command was used wrongly (a malformed package name or argument).
pub const USAGE: u8 = 64;
/// Input data was malformed (a corrupt or hostile stone).
pub const DATA_ERROR: u8 = 65;
/// An input file does not exist or cannot be read.
pub const NO_INPUT: u8 = 66;
/// An output file cannot be created.
pub const CANNOT_CREATE: u8 = 73;
/// Any other failure.
pub const FAILURE: u8 = 1;
/// The daemon is not running or not reachable.
pub const UNAVAILABLE: u8 = 69;
/// Try again later (the installation is busy; a repository is unreachable or stale).
pub const TEMPORARY: u8 = 75;
/// Not permitted (polkit or the bus policy said no).
pub const NO_PERMISSION: u8 = 77;
/// Refused: the new state would lose what recovery needs (moss, the C library, the kernel);
/// `--force` overrides.
pub const UNRECOVERABLE: u8 = 3;
/// The user cancelled; nothing was changed (as a shell reports Ctrl-C).
pub const CANCELLED: u8 = 130;

/// The exit code for an error chain.
pub fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(remote) = cause.downcast_ref::<RemoteError>() {
            return match remote {
                RemoteError::Unavailable(_) => UNAVAILABLE,
                RemoteError::NotAuthorized(_) => NO_PERMISSION,
                RemoteError::Engine(kind, _) => for_kind(*kind),
                RemoteError::Cancelled(_) => CANCELLED,
                RemoteError::Failed(_) => FAILURE,
            };
        }
        if let Some(engine) = cause.downcast_ref::<moss::EngineError>() {
            return for_kind(engine.kind());
        }
        if let Some(extract) = cause.downcast_ref::<ExtractError>() {
            return match extract {
                ExtractError::Stone(stone) => stone_code(stone),
                ExtractError::NotAPackage { .. } | ExtractError::Layout { .. } => DATA_ERROR,
                ExtractError::Exists { .. } | ExtractError::Create { .. } => CANNOT_CREATE,
            };
        }
        if let Some(stone) = cause.downcast_ref::<stone::Error>() {
            return stone_code(stone);
        }
    }
    FAILURE
}

/// The exit code of an engine failure: the one place kinds become exit codes, the same in
/// direct mode and through mossd.
pub fn for_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound | ErrorKind::NotInstalled | ErrorKind::UnknownRepository => NO_INPUT,
        ErrorKind::InvalidRequest => USAGE,
        ErrorKind::InvalidPackage => DATA_ERROR,
        ErrorKind::Unmanaged => CANNOT_CREATE,
        ErrorKind::Repository | ErrorKind::Busy => TEMPORARY,
        ErrorKind::Cancelled => CANCELLED,
        ErrorKind::Unrecoverable => UNRECOVERABLE,
        ErrorKind::Conflict | ErrorKind::Unsatisfiable | ErrorKind::Failed => FAILURE,
    }
}

fn stone_code(error: &stone::Error) -> u8 {
    match error.root() {
        stone::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => NO_INPUT,
        stone::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => NO_INPUT,
        stone::Error::Io(_) => FAILURE,
        _ => DATA_ERROR,
    }
}

/// Whether the error is stdout being closed by the reader.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|json| json.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

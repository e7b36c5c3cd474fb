//! The class of an engine failure, decided once here from the error's type: the daemon turns
//! it into a D-Bus error name, the PackageKit facade into a PackageKit error code and the CLI
//! into an exit code, and none of them reads the message text.

pub use moss_types::ErrorKind;

use crate::{
    engine::EngineError, installation::InstallationError, repository::ConfigError,
    resolve::ResolveError, store::StoreError,
};

impl EngineError {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Installation(error) => installation_kind(error),
            Self::Store(error) => store_kind(error),
            Self::Vfs(_) => ErrorKind::Conflict,
            Self::UnknownState(_) | Self::NotFound(_) => ErrorKind::NotFound,
            Self::NotInstalled(_) => ErrorKind::NotInstalled,
            Self::UnknownRepository(_) => ErrorKind::UnknownRepository,
            Self::ActiveState(_) | Self::InvalidRequest(_) => ErrorKind::InvalidRequest,
            Self::Resolve(ResolveError::NoProvider { .. }) => ErrorKind::NotFound,
            Self::Resolve(_) => ErrorKind::Unsatisfiable,
            Self::Config(error) => config_kind(error),
            Self::Model(error) => match error {
                crate::model::ModelError::Parse { .. } => ErrorKind::InvalidRequest,
                crate::model::ModelError::UnknownPackage { .. } => ErrorKind::NotFound,
                crate::model::ModelError::Read { .. } | crate::model::ModelError::Write { .. } => {
                    ErrorKind::Failed
                }
            },
            Self::Fetch(_) | Self::Index(_) => ErrorKind::Repository,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::Unrecoverable(_) => ErrorKind::Unrecoverable,
            Self::Database(_)
            | Self::Blit(_)
            | Self::MissingPackage(_)
            | Self::Io { .. }
            | Self::Boot(_)
            | Self::Trigger(_)
            | Self::Other(_) => ErrorKind::Failed,
        }
    }
}

fn installation_kind(error: &InstallationError) -> ErrorKind {
    match error {
        InstallationError::Locked(_) => ErrorKind::Busy,
        InstallationError::NotADirectory(_) => ErrorKind::InvalidRequest,
        InstallationError::UnmanagedUsr { .. } | InstallationError::NotAnInstallation { .. } => {
            ErrorKind::Unmanaged
        }
        _ => ErrorKind::Failed,
    }
}

fn store_kind(error: &StoreError) -> ErrorKind {
    match error {
        StoreError::Io { .. } => ErrorKind::Failed,
        _ => ErrorKind::InvalidPackage,
    }
}

fn config_kind(error: &ConfigError) -> ErrorKind {
    match error {
        ConfigError::NotFound { .. } => ErrorKind::UnknownRepository,
        // The repository could not be fetched or verified; nothing was configured.
        ConfigError::NotAdded { .. } => ErrorKind::Repository,
        ConfigError::Read { .. } | ConfigError::Write { .. } => ErrorKind::Failed,
        _ => ErrorKind::InvalidRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_error_type_not_its_text() {
        // A message that reads like another kind does not change the kind.
        let other = EngineError::Other("no package provides vim; conflicts".into());
        assert_eq!(other.kind(), ErrorKind::Failed);
        assert_eq!(
            EngineError::NotFound("x".into()).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(EngineError::UnknownState(3).kind(), ErrorKind::NotFound);
        assert_eq!(EngineError::Cancelled.kind(), ErrorKind::Cancelled);
        let no_provider = EngineError::Resolve(ResolveError::NoProvider {
            dependencies: vec![stone::Dependency::name("vim".to_owned())],
        });
        assert_eq!(no_provider.kind(), ErrorKind::NotFound);
        assert_eq!(
            serde_json::to_string(&ErrorKind::UnknownRepository).unwrap(),
            "\"unknown-repository\""
        );
    }
}

//! Errors as the window shows them. D-Bus errors arrive as names (`com.serpentos.Moss1.Error.*`)
//! and are told apart by name, never by their text; a refusal by polkit is its own case so that
//! the window can say plainly that nothing was changed.

use gettextrs::gettext;
use moss_proto::ErrorKind;

use crate::view::fill;

/// A failure the window reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// polkit said no (or could not be asked): nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// mossd could not be reached on the system bus.
    #[error("{0}")]
    Unreachable(String),
    /// The engine failed in a way it classified.
    #[error("{message}")]
    Engine {
        /// Its class.
        kind: ErrorKind,
        /// The daemon's message.
        message: String,
    },
    /// Anything else (the request was refused by the daemon's limits or state, or transport).
    #[error("{0}")]
    Other(String),
}

impl UserError {
    /// The error of a D-Bus error name and message.
    pub fn from_name(name: &str, message: &str) -> Self {
        let short = name.rsplit('.').next().unwrap_or(name);
        if name.starts_with("com.serpentos.Moss1.Error.") {
            if short == "NotAuthorized" {
                return Self::Refused(message.to_owned());
            }
            if let Some(kind) = moss_proto::Error::kind_of_name(short) {
                return Self::Engine {
                    kind,
                    message: message.to_owned(),
                };
            }
            return Self::Other(message.to_owned());
        }
        match name {
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner"
            | "org.freedesktop.DBus.Error.NoReply"
            | "org.freedesktop.DBus.Error.Spawn.ChildExited"
            | "org.freedesktop.DBus.Error.Spawn.ExecFailed" => {
                Self::Unreachable(message.to_owned())
            }
            "org.freedesktop.DBus.Error.AccessDenied" => Self::Refused(message.to_owned()),
            _ => Self::Other(message.to_owned()),
        }
    }

    /// The error of a failed transaction (`Finished` with status `failed`).
    pub fn from_outcome(message: &str, outcome: &str) -> Self {
        Self::Engine {
            kind: moss_proto::wire::Failure::kind_of(outcome),
            message: message.to_owned(),
        }
    }

    /// The headline the window shows.
    pub fn title(&self) -> String {
        match self {
            Self::Refused(_) => gettext("Not allowed — nothing was changed"),
            Self::Unreachable(_) => gettext("The moss daemon is not reachable"),
            Self::Engine { kind, .. } => match kind {
                ErrorKind::Cancelled => gettext("Cancelled — nothing was changed"),
                ErrorKind::Repository => gettext("A repository could not be used"),
                ErrorKind::Busy => gettext("The system is busy with another change"),
                ErrorKind::Unsatisfiable | ErrorKind::Conflict => {
                    gettext("The packages cannot be installed together")
                }
                ErrorKind::NotFound | ErrorKind::NotInstalled | ErrorKind::UnknownRepository => {
                    gettext("Not found")
                }
                _ => gettext("The change failed"),
            },
            Self::Other(_) => gettext("The request failed"),
        }
    }

    /// The explanation under the headline.
    pub fn detail(&self) -> String {
        match self {
            Self::Refused(message) if message.is_empty() => {
                gettext("You are not allowed to make this change.")
            }
            Self::Refused(message) => fill(
                "You are not allowed to make this change: {}",
                &[message.as_str()],
            ),
            Self::Unreachable(message) => fill(
                "Is mossd installed and the system bus running? ({})",
                &[message.as_str()],
            ),
            Self::Engine { message, .. } | Self::Other(message) => message.clone(),
        }
    }

    /// Whether this is a polkit refusal.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

impl From<zbus::Error> for UserError {
    fn from(error: zbus::Error) -> Self {
        match &error {
            zbus::Error::MethodError(name, message, _) => {
                Self::from_name(name.as_str(), message.as_deref().unwrap_or_default())
            }
            zbus::Error::FDO(fdo) => {
                let name = zbus::DBusError::name(fdo.as_ref()).to_string();
                Self::from_name(
                    &name,
                    zbus::DBusError::description(fdo.as_ref()).unwrap_or_default(),
                )
            }
            zbus::Error::InputOutput(_) | zbus::Error::Address(_) | zbus::Error::Handshake(_) => {
                Self::Unreachable(error.to_string())
            }
            _ => Self::Other(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polkit_refusal_says_nothing_changed() {
        let error = UserError::from_name(
            "com.serpentos.Moss1.Error.NotAuthorized",
            "polkit refused com.serpentos.moss.sync",
        );
        assert!(error.is_refusal());
        assert_eq!(error.title(), "Not allowed — nothing was changed");
        assert!(error.detail().contains("polkit refused"));
    }

    #[test]
    fn engine_errors_are_classified_by_name() {
        let error = UserError::from_name("com.serpentos.Moss1.Error.Repository", "offline");
        assert_eq!(
            error,
            UserError::Engine {
                kind: ErrorKind::Repository,
                message: "offline".into()
            }
        );
        assert_eq!(error.title(), "A repository could not be used");
        assert_eq!(error.detail(), "offline");
    }

    #[test]
    fn a_missing_daemon_is_unreachable() {
        let error = UserError::from_name("org.freedesktop.DBus.Error.ServiceUnknown", "no mossd");
        assert_eq!(error.title(), "The moss daemon is not reachable");
    }

    #[test]
    fn failed_transactions_carry_their_kind() {
        let error = UserError::from_outcome("no network", r#"{"kind":"repository"}"#);
        assert_eq!(error.title(), "A repository could not be used");
        let old_daemon = UserError::from_outcome("boom", "");
        assert_eq!(old_daemon.title(), "The change failed");
    }
}

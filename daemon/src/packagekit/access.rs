//! Who may use a PackageKit transaction and how its change roles start: the creator's
//! connection only, polkit before anything is read or written, and the method errors that
//! PackageKit clients understand.

use moss::requests::Change;
use zbus::{Connection, message::Header};

use super::{
    enums::{error, flag},
    roles::{self, Failure},
    runner::ChangeRequest,
    transaction::PkTransaction,
};
use crate::{
    authority::{self, Caller},
    incoming::Received,
};

/// Errors PackageKit clients understand as method errors.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.PackageKit.Transaction")]
pub enum PkError {
    /// Transport error.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// A role method was already called on this transaction.
    TransactionExistsWithRole(String),
    /// Not supported.
    NotSupported(String),
    /// `Cancel` came too late or on a finished transaction.
    CannotCancel(String),
    /// The caller is not the one that created the transaction, or may not cancel it.
    RefusedByPolicy(String),
    /// The request is larger than the daemon accepts.
    InputInvalid(String),
}

impl From<moss_proto::Error> for PkError {
    fn from(error: moss_proto::Error) -> Self {
        match error {
            moss_proto::Error::NotAuthorized(message) => Self::RefusedByPolicy(message),
            other => Self::InputInvalid(other.message()),
        }
    }
}

pub(super) fn names(ids: &[String]) -> Result<Vec<String>, Failure> {
    ids.iter()
        .map(|id| roles::id_name(id).map(str::to_owned))
        .collect()
}

impl PkTransaction {
    /// Only the connection that created a transaction may use it (PackageKit refuses other
    /// senders the same way); `Cancel` is checked on its own.
    pub(super) fn owner(&self, header: &Header<'_>) -> Result<(), PkError> {
        let sender = header
            .sender()
            .map(|name| name.as_str())
            .unwrap_or_default();
        if sender != self.caller.name {
            return Err(PkError::RefusedByPolicy(format!(
                "sender does not match: transaction {} belongs to {} (uid {}), not {sender}; \
                 create a transaction of your own",
                self.path, self.caller.name, self.caller.uid
            )));
        }
        Ok(())
    }

    pub(super) async fn authorise(
        &self,
        connection: &Connection,
        header: &Header<'_>,
        action: &'static str,
    ) -> Result<Caller, Failure> {
        authority::authorize(connection, header, action)
            .await
            .map_err(|error| (error::for_daemon_error(&error), error.message()))
    }

    /// Start a change role after checking ids and permission. Simulations of package changes
    /// read nothing a caller names and write nothing, so they need no permission, as in
    /// PackageKit; reading local files always does.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start_change(
        &self,
        connection: &Connection,
        header: &Header<'_>,
        new_role: u32,
        flags: u64,
        change: Result<Change, Failure>,
        action: &'static str,
        files: Vec<String>,
        prepared: Option<Vec<String>>,
    ) -> Result<(), PkError> {
        self.owner(header)?;
        let runner = self.begin(new_role, flags)?;
        let change = match change {
            Ok(change) => change,
            Err(failure) => {
                tokio::spawn(async move { runner.finish(Err(failure)).await });
                return Ok(());
            }
        };
        let simulate = flags & flag::SIMULATE != 0;
        let authorised = if simulate && files.is_empty() {
            Ok(self.caller.clone())
        } else {
            self.authorise(connection, header, action).await
        };
        runner.change(
            authorised,
            ChangeRequest {
                change,
                action,
                simulate,
                files,
                local: Received::default(),
                prepared,
            },
        );
        Ok(())
    }

    pub(super) async fn catalogue_ids(&self, ids: &[String]) -> Result<Vec<String>, Failure> {
        let catalogue = roles::catalogue(&self.shared.daemon.moss).await?;
        Ok(roles::by_ids(&catalogue, ids)?
            .into_iter()
            .map(|candidate| candidate.moss_id)
            .collect())
    }
}

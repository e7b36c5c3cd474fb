//! `org.freedesktop.PackageKit.Offline`, GNOME Software's flow for system updates: download
//! them (`UpdatePackages` with only-download, which stores them and records the prepared ids),
//! `Trigger` the update, and read the results after it ran.
//!
//! moss needs no reboot to update, so the prepared update is applied either at the next boot
//! (`mossd --offline-update`, run by `moss-offline-update.service` when `/system-update` exists)
//! or at once (`Trigger("apply")`, moss's own action). The files are the ones libpackagekit-glib2
//! reads directly: `/var/lib/PackageKit/prepared-update`, `offline-update-action`,
//! `offline-update-competed` (sic) and the `/system-update` link.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use moss::requests::Change;
use zbus::{Connection, interface, message::Header};

use super::Shared;
use crate::{
    authority,
    daemon::{Daemon, Work},
};

fn state_dir(root: &Path) -> PathBuf {
    root.join("var/lib/PackageKit")
}

fn prepared_file(root: &Path) -> PathBuf {
    state_dir(root).join("prepared-update")
}

fn action_file(root: &Path) -> PathBuf {
    state_dir(root).join("offline-update-action")
}

fn results_file(root: &Path) -> PathBuf {
    state_dir(root).join("offline-update-competed")
}

fn trigger_link(root: &Path) -> PathBuf {
    root.join("system-update")
}

/// Record the package ids of a prepared update (a GLib key file; `;` inside ids is escaped).
pub fn prepare(root: &Path, ids: &[String]) -> std::io::Result<()> {
    fs::create_dir_all(state_dir(root))?;
    let escaped: Vec<String> = ids.iter().map(|id| id.replace(';', "\\;")).collect();
    fs::write(
        prepared_file(root),
        format!("[update]\nprepared_ids={};\n", escaped.join(";")),
    )
}

/// The prepared package ids.
pub fn prepared(root: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(prepared_file(root)) else {
        return Vec::new();
    };
    let Some(line) = text
        .lines()
        .find_map(|line| line.strip_prefix("prepared_ids="))
    else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    let mut current = String::new();
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        match character {
            '\\' => current.extend(characters.next()),
            ';' => {
                if !current.is_empty() {
                    ids.push(std::mem::take(&mut current));
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        ids.push(current);
    }
    ids
}

/// Write the results file after an offline update ran.
fn write_results(
    root: &Path,
    success: bool,
    packages: &[String],
    message: &str,
) -> std::io::Result<()> {
    fs::create_dir_all(state_dir(root))?;
    let mut text = format!("[PackageKit Offline Update Results]\nSuccess={success}\n");
    if success {
        let escaped: Vec<String> = packages.iter().map(|id| id.replace(';', "\\;")).collect();
        text.push_str(&format!("Packages={}\n", escaped.join(",")));
    } else {
        text.push_str(&format!(
            "ErrorCode=transaction-error\nErrorDetails={message}\n"
        ));
    }
    fs::write(results_file(root), text)
}

fn clear_trigger(root: &Path) {
    let _ = fs::remove_file(trigger_link(root));
    let _ = fs::remove_file(action_file(root));
}

/// Record how an applied offline update went, and disarm it (a prepared update that failed
/// stays prepared).
fn record(root: &Path, ids: &[String], success: bool, message: &str) -> Result<(), String> {
    write_results(root, success, ids, message).map_err(|error| error.to_string())?;
    clear_trigger(root);
    if success {
        let _ = fs::remove_file(prepared_file(root));
    }
    Ok(())
}

/// Apply the prepared update now (the boot-time step, or `Trigger("apply")`): a sync to the
/// newest packages, as one new state; results recorded for GNOME Software.
pub async fn apply(moss: &moss::Moss, root: &Path) -> Result<String, String> {
    let ids = prepared(root);
    let result = moss
        .perform(&Change::Sync {
            update: false,
            allow_downgrade: false,
        })
        .await
        .map_err(|error| crate::worker::describe(&error));
    let (success, message) = match &result {
        Ok(outcome) => (true, outcome.message.as_str()),
        Err(message) => (false, message.as_str()),
    };
    record(root, &ids, success, message)?;
    result.map(|outcome| outcome.message)
}

/// The offline-update interface.
#[derive(Debug)]
pub struct Offline {
    shared: Arc<Shared>,
}

impl Offline {
    /// The interface over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn root(&self) -> &Path {
        &self.shared.daemon.root
    }
}

async fn apply_through_worker(
    daemon: &Arc<Daemon>,
    caller: authority::Caller,
) -> Result<(), String> {
    let entry = daemon
        .create(
            Work::Change(Change::Sync {
                update: false,
                allow_downgrade: false,
            }),
            caller,
            moss_proto::actions::SYNC,
            false,
            Vec::new(),
        )
        .map_err(|error| error.message())?;
    daemon.start(&entry);
    let (status, message, _) = entry.wait_finished().await;
    let success = status == moss_proto::status::SUCCEEDED;
    record(&daemon.root, &prepared(&daemon.root), success, &message)?;
    if success { Ok(()) } else { Err(message) }
}

#[interface(name = "org.freedesktop.PackageKit.Offline")]
impl Offline {
    /// Arrange for the prepared update: `reboot` or `power-off` apply it at the next boot (as
    /// PackageKit does); `apply` applies it at once (moss swaps `/usr` without a reboot).
    async fn trigger(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        action: String,
    ) -> zbus::fdo::Result<()> {
        let caller = authority::authorize(connection, &header, moss_proto::actions::SYNC)
            .await
            .map_err(|error| zbus::fdo::Error::AccessDenied(error.message()))?;
        if prepared(self.root()).is_empty() {
            return Err(zbus::fdo::Error::Failed(
                "no update is prepared; download one first (UpdatePackages with only-download)"
                    .into(),
            ));
        }
        match action.as_str() {
            "reboot" | "power-off" => {
                fs::create_dir_all(state_dir(self.root())).map_err(io)?;
                fs::write(action_file(self.root()), &action).map_err(io)?;
                let link = trigger_link(self.root());
                let _ = fs::remove_file(&link);
                std::os::unix::fs::symlink("var/lib/PackageKit/prepared-update", &link)
                    .map_err(io)?;
                Ok(())
            }
            "apply" => apply_through_worker(&self.shared.daemon, caller)
                .await
                .map_err(zbus::fdo::Error::Failed),
            other => Err(zbus::fdo::Error::InvalidArgs(format!(
                "`{other}` is not reboot, power-off or apply"
            ))),
        }
    }

    async fn trigger_upgrade(&self, _action: String) -> zbus::fdo::Result<()> {
        Err(zbus::fdo::Error::NotSupported(
            "moss has no distribution upgrades: updates are rolling".into(),
        ))
    }

    /// Undo `Trigger` (the prepared packages stay in the store).
    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        authority::authorize(connection, &header, moss_proto::actions::SYNC)
            .await
            .map_err(|error| zbus::fdo::Error::AccessDenied(error.message()))?;
        clear_trigger(self.root());
        Ok(())
    }

    async fn clear_results(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        authority::authorize(connection, &header, moss_proto::actions::SYNC)
            .await
            .map_err(|error| zbus::fdo::Error::AccessDenied(error.message()))?;
        let _ = fs::remove_file(results_file(self.root()));
        Ok(())
    }

    fn get_prepared(&self) -> Vec<String> {
        prepared(self.root())
    }

    /// `(success, package ids, role, time, error code, error details)` of the last offline update.
    fn get_results(&self) -> (bool, Vec<String>, u32, u64, u32, String) {
        let text = fs::read_to_string(results_file(self.root())).unwrap_or_default();
        let success = text.contains("Success=true");
        let packages = text
            .lines()
            .find_map(|line| line.strip_prefix("Packages="))
            .map(|list| list.split(',').map(|id| id.replace("\\;", ";")).collect())
            .unwrap_or_default();
        let details = text
            .lines()
            .find_map(|line| line.strip_prefix("ErrorDetails="))
            .unwrap_or_default()
            .to_owned();
        let modified = fs::metadata(results_file(self.root()))
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |duration| duration.as_secs());
        let code = if success || text.is_empty() { 0 } else { 16 };
        (
            success,
            packages,
            super::enums::role::UPDATE_PACKAGES,
            modified,
            code,
            details,
        )
    }

    #[zbus(property)]
    fn update_prepared(&self) -> bool {
        !prepared(self.root()).is_empty()
    }

    #[zbus(property)]
    fn update_triggered(&self) -> bool {
        fs::symlink_metadata(trigger_link(self.root())).is_ok()
    }

    #[zbus(property)]
    fn upgrade_prepared(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn upgrade_triggered(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn prepared_upgrade(&self) -> std::collections::HashMap<String, zbus::wire::OwnedVariant> {
        std::collections::HashMap::new()
    }

    #[zbus(property)]
    fn trigger_action(&self) -> String {
        fs::read_to_string(action_file(self.root()))
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|_| "unset".into())
    }
}

fn io(error: std::io::Error) -> zbus::fdo::Error {
    zbus::fdo::Error::Failed(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_ids_round_trip_through_the_key_file() {
        let directory = tempfile::tempdir().unwrap();
        let ids = vec![
            "nano;8.0-1;x86_64;main".to_owned(),
            "vim;9.1-2;x86_64;main".to_owned(),
        ];
        prepare(directory.path(), &ids).unwrap();
        assert_eq!(prepared(directory.path()), ids);
        let text = fs::read_to_string(prepared_file(directory.path())).unwrap();
        assert!(text.contains("prepared_ids=nano\\;8.0-1\\;x86_64\\;main;vim"));
    }
}

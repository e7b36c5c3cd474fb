//! How the manager makes transactions: authorise, create (or join an identical unfinished
//! one), export, and start at once when asked; with the small conversions its methods share.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use moss::{EngineError, operations::Target, requests::Change};
use moss_proto::Error;
use zbus::{
    Connection,
    message::Header,
    wire::{OwnedFd, OwnedObjectPath, OwnedVariant},
};

use super::Manager;
use crate::{
    authority::{self, Caller},
    config::Setting,
    daemon::{Daemon, Work},
    transaction::TransactionObject,
    worker::describe,
};

/// Options of a change; unknown keys are ignored.
pub(super) type Options = HashMap<String, OwnedVariant>;

impl Manager {
    /// The manager of `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        Self { daemon }
    }

    /// Change a setting and its configuration file, off the bus's runtime (the write is
    /// synced to disk).
    pub(super) async fn change_setting(&self, setting: Setting) -> Result<(), Error> {
        let daemon = self.daemon.clone();
        tokio::task::spawn_blocking(move || daemon.change_setting(setting))
            .await
            .map_err(|error| Error::Failed(error.to_string()))?
            .map_err(|error| Error::Failed(error.to_string()))
    }

    /// Authorise, create and export a transaction, or join an identical unfinished one.
    pub(super) async fn create(
        &self,
        header: &Header<'_>,
        connection: &Connection,
        action: &'static str,
        work: Work,
        options: &Options,
    ) -> Result<OwnedObjectPath, Error> {
        let _call = self.daemon.call();
        let caller = authority::authorize(connection, header, action).await?;
        self.create_for(caller, action, work, Vec::new(), options)
            .await
    }

    /// Create and export a transaction for a caller already authorised for `action`.
    pub(super) async fn create_for(
        &self,
        caller: Caller,
        action: &'static str,
        work: Work,
        local_files: Vec<PathBuf>,
        options: &Options,
    ) -> Result<OwnedObjectPath, Error> {
        if local_files.is_empty()
            && let Some(existing) = self.daemon.joinable(&work.key())
        {
            tracing::info!(transaction = existing.number, uid = caller.uid, "joined");
            return path(&existing.path);
        }
        let background = matches!(work, Work::AutomaticUpdate);
        let copies = local_files.clone();
        let entry = self
            .daemon
            .create(work, caller, action, background, local_files)
            .inspect_err(|_| {
                // Refused (a bound, shutdown): the copies of the caller's stones go too.
                for copy in &copies {
                    let _ = std::fs::remove_file(copy);
                }
            })?;
        tracing::info!(
            transaction = entry.number,
            uid = entry.caller.uid,
            role = entry.work.title(),
            "created"
        );
        if let Err(error) = TransactionObject::export(self.daemon.clone(), entry.clone()).await {
            self.daemon.forget(entry.number);
            crate::transaction::remove_files(&entry);
            return Err(error.into());
        }
        // `start: true` queues it at once, for callers that do not follow its signals (busctl,
        // gdbus, scripts); its events stay available through `Events`.
        if start_now(options) {
            self.daemon.start(&entry);
        }
        path(&entry.path)
    }

    pub(super) async fn change(
        &self,
        header: &Header<'_>,
        connection: &Connection,
        action: &'static str,
        change: Change,
        options: &Options,
    ) -> Result<OwnedObjectPath, Error> {
        self.create(header, connection, action, work(change, options), options)
            .await
    }
}

/// Install targets: package names, and the daemon's copies of the caller's local stones.
pub(super) fn install_targets(packages: Vec<String>, local: &[PathBuf]) -> Vec<Target> {
    packages
        .into_iter()
        .map(Target::Package)
        .chain(local.iter().cloned().map(Target::LocalStone))
        .collect()
}

pub(super) fn into_fds(files: Vec<OwnedFd>) -> Vec<std::os::fd::OwnedFd> {
    files.into_iter().map(Into::into).collect()
}

pub(super) fn path(text: &str) -> Result<OwnedObjectPath, Error> {
    OwnedObjectPath::try_from(text.to_owned())
        .map_err(|error| Error::Failed(format!("bad object path {text}: {error}")))
}

/// The named D-Bus error of an engine error, by its kind.
pub fn query_error(error: EngineError) -> Error {
    Error::engine(error.kind(), describe(&error))
}

/// The work of a change: `force` lets it lose /usr/bin/moss, the C library or the kernel
/// (refused otherwise); the change's own polkit action authorises it.
pub(super) fn work(change: Change, options: &Options) -> Work {
    let forced = options
        .get("force")
        .and_then(|value| bool::try_from(value).ok())
        .unwrap_or(false);
    if forced {
        Work::Forced(change)
    } else {
        Work::Change(change)
    }
}

/// Whether the options ask to start the transaction at once.
fn start_now(options: &Options) -> bool {
    options
        .get("start")
        .and_then(|value| bool::try_from(value).ok())
        .unwrap_or(false)
}

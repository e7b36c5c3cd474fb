//! The client side of mossd: connect, ask, and follow transactions.
//!
//! A change becomes a transaction object: the client subscribes to its signals, then calls
//! `Start`, renders the numbered events with the same progress bars as direct mode, and cancels
//! it on Ctrl-C (the daemon refuses once the new tree is being swapped in).

use std::{collections::HashMap, os::fd::AsFd, path::Path, sync::Arc};

use futures_util::StreamExt;
use moss::{
    events::Reporter,
    operations::{Plan, Target},
    requests::{Change, Outcome},
};
use moss_proto::{
    ErrorKind, ManagerProxy, TransactionProxy, status,
    wire::{Failure, Progress},
};
use zbus::{Connection, wire::Fd};

use crate::progress;

/// Failures that come from talking to the daemon, by class (for exit codes).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No daemon to talk to.
    #[error("{0}")]
    Unavailable(String),
    /// polkit or the bus policy said no.
    #[error("{0}")]
    NotAuthorized(String),
    /// An engine failure of a known kind (from the D-Bus error name, or the outcome of a
    /// failed transaction).
    #[error("{1}")]
    Engine(ErrorKind, String),
    /// The transaction was cancelled; nothing changed.
    #[error("{0}")]
    Cancelled(String),
    /// The daemon reported a failure of no engine kind (limits, state, transport).
    #[error("{0}")]
    Failed(String),
}

/// Turn a D-Bus error into a classed error with the daemon's message.
pub fn error(error: zbus::Error) -> anyhow::Error {
    let (name, message) = match &error {
        zbus::Error::MethodError(name, message, _) => {
            (name.to_string(), message.clone().unwrap_or_default())
        }
        // The bus's own errors carry their name too (`ServiceUnknown` when mossd cannot be
        // activated).
        zbus::Error::FDO(fdo) => (
            zbus::DBusError::name(fdo.as_ref()).to_string(),
            zbus::DBusError::description(fdo.as_ref())
                .unwrap_or_default()
                .to_owned(),
        ),
        other => (String::new(), other.to_string()),
    };
    let short = name.rsplit('.').next().unwrap_or_default();
    let classed = match short {
        "ServiceUnknown" | "NameHasNoOwner" | "NoServer" | "Disconnected" => {
            RemoteError::Unavailable(unavailable_hint(&message))
        }
        "NotAuthorized" | "AccessDenied" => RemoteError::NotAuthorized(message),
        _ if name.starts_with("com.serpentos.Moss1.Error.") => {
            match moss_proto::Error::kind_of_name(short) {
                Some(kind) => RemoteError::Engine(kind, message),
                None => RemoteError::Failed(message),
            }
        }
        _ => RemoteError::Failed(message),
    };
    classed.into()
}

fn unavailable_hint(detail: &str) -> String {
    format!(
        "mossd is not running on the system bus ({detail}); start it (systemctl start mossd), \
         or work on a root directly with `moss -D /`"
    )
}

/// A connection to mossd.
#[derive(Debug)]
pub struct Daemon {
    connection: Connection,
    /// The manager object.
    pub manager: ManagerProxy<'static>,
    reporter: Arc<progress::Progress>,
}

impl Daemon {
    /// Connect to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` when set) and tell the user about an
    /// interrupted transaction the daemon recovered from.
    pub async fn connect(reporter: Arc<progress::Progress>) -> anyhow::Result<Self> {
        let connection = Connection::system().await.map_err(|error| {
            RemoteError::Unavailable(unavailable_hint(&format!("no system bus: {error}")))
        })?;
        let manager = ManagerProxy::new(&connection).await.map_err(error)?;
        let (interrupted, message) = manager.recovery().await.map_err(error)?;
        if interrupted {
            reporter.report(moss::events::Event::Warning { message });
        }
        Ok(Self {
            connection,
            manager,
            reporter,
        })
    }

    /// The plan of an install, remove or sync.
    pub async fn plan(&self, change: &Change) -> anyhow::Result<Plan> {
        let plan = match change {
            Change::Install { targets } => {
                let (names, files) = split_local(targets)?;
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let descriptors: Vec<Fd<'_>> =
                    files.iter().map(|file| file.as_fd().into()).collect();
                self.manager.plan_install(&names, descriptors).await
            }
            Change::Remove { packages } => {
                let names: Vec<&str> = packages.iter().map(String::as_str).collect();
                self.manager.plan_remove(&names).await
            }
            Change::Sync {
                allow_downgrade, ..
            } => self.manager.plan_sync(*allow_downgrade).await,
            Change::SyncModel { .. } => anyhow::bail!(
                "mossd does not plan a system model without applying it (planning fetches the \
                 model's repositories); try it on a copy with `moss -D ROOT sync --model FILE \
                 --dry-run`, or run it without --dry-run and answer no"
            ),
            _ => return Ok(Plan::default()),
        };
        Ok(plan.map_err(error)?.into())
    }

    /// Create the transaction for `change`, follow it to its end, and return its outcome.
    pub async fn perform(&self, change: Change) -> anyhow::Result<Outcome> {
        self.perform_with(change, false).await
    }

    /// [`Daemon::perform`]; `force` lets the change lose what recovery needs (the `force`
    /// option: moss, the C library, the kernel).
    pub async fn perform_with(&self, change: Change, force: bool) -> anyhow::Result<Outcome> {
        let mut options = HashMap::new();
        if force {
            options.insert("force", true.into());
        }
        let created = match &change {
            Change::Install { targets } => {
                let (names, files) = split_local(targets)?;
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let descriptors: Vec<Fd<'_>> =
                    files.iter().map(|file| file.as_fd().into()).collect();
                self.manager.install(&names, descriptors, options).await
            }
            Change::Remove { packages } => {
                let names: Vec<&str> = packages.iter().map(String::as_str).collect();
                self.manager.remove(&names, options).await
            }
            Change::Sync {
                update,
                allow_downgrade,
            } => self.manager.sync(*update, *allow_downgrade, options).await,
            Change::Refresh { repository } => {
                self.manager
                    .refresh(repository.as_deref().unwrap_or(""), options)
                    .await
            }
            Change::SyncModel { model, origin } => {
                self.manager.sync_model(model, origin, options).await
            }
            Change::RepoAdd {
                name,
                uri,
                priority,
                comment,
                keys,
                root_index,
            } => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let mut options = options;
                if let Some(spec) = root_index {
                    options.insert("root-index", spec.as_str().into());
                }
                self.manager
                    .repo_add(name, uri, *priority, comment, &keys, options)
                    .await
            }
            Change::RepoRemove { name } => self.manager.repo_remove(name, options).await,
            Change::RepoEnable { name, enable } => {
                self.manager.repo_enable(name, *enable, options).await
            }
            Change::StateActivate {
                id,
                skip_triggers,
                skip_boot,
            } => {
                let mut options = options;
                options.insert("skip-triggers", (*skip_triggers).into());
                options.insert("skip-boot", (*skip_boot).into());
                self.manager.state_activate(*id, options).await
            }
            Change::StatePrune {
                keep,
                include_newer,
            } => {
                let mut options = options;
                options.insert("include-newer", (*include_newer).into());
                self.manager.state_prune(*keep, options).await
            }
            Change::StateRemove { ids } => self.manager.state_remove(ids, options).await,
            Change::Repair => self.manager.repair(options).await,
            Change::CachePrune => self.manager.cache_prune(options).await,
            Change::BootSync { esp, xbootldr } => {
                let text = |path: &Option<std::path::PathBuf>| {
                    path.as_ref()
                        .map(|path| path.display().to_string())
                        .unwrap_or_default()
                };
                self.manager
                    .boot_sync(&text(esp), &text(xbootldr), options)
                    .await
            }
            Change::Download { .. } => {
                return Err(RemoteError::Failed(
                    "downloads go through the PackageKit interface or the update policy".into(),
                )
                .into());
            }
            Change::BuildRoot {
                directory,
                packages,
            } => {
                let names: Vec<&str> = packages.iter().map(String::as_str).collect();
                self.manager
                    .compose_build_root(&directory.display().to_string(), &names, options)
                    .await
            }
        };
        let path = created.map_err(error)?;
        self.follow(path.as_str()).await
    }

    /// Run the background update policy now (what the update timer does).
    pub async fn automatic_update(&self) -> anyhow::Result<Outcome> {
        let path = self
            .manager
            .automatic_update(HashMap::new())
            .await
            .map_err(error)?;
        self.follow(path.as_str()).await
    }

    /// Subscribe, start, render events, cancel on Ctrl-C, and return the outcome.
    async fn follow(&self, path: &str) -> anyhow::Result<Outcome> {
        let transaction = TransactionProxy::builder(&self.connection)
            .path(path.to_owned())
            .build()
            .await
            .map_err(error)?;
        let mut events = transaction.receive_event().await.map_err(error)?;
        let mut finished = transaction.receive_finished().await.map_err(error)?;
        // A daemon killed mid-transaction sends nothing more, and the signal streams stay open
        // (the bus is still there): its name losing its owner is the only sign.
        let mut owner_changes = transaction
            .inner()
            .receive_owner_changed()
            .await
            .map_err(error)?;
        transaction.start().await.map_err(error)?;
        let mut last = 0;
        // A joined transaction may have ended before this client subscribed.
        let (status_now, message_now, outcome_now) = transaction.result().await.map_err(error)?;
        let already =
            status::is_final(&status_now).then_some((status_now, message_now, outcome_now));
        let interrupt = tokio::signal::ctrl_c();
        tokio::pin!(interrupt);
        let mut interrupted = false;
        let (final_status, message, outcome) = if let Some(done) = already {
            done
        } else {
            loop {
                tokio::select! {
                    Some(signal) = events.next() => {
                        if let Ok(arguments) = signal.args() {
                            last = self.render(last, *arguments.sequence(), arguments.progress());
                        }
                    }
                    Some(signal) = finished.next() => {
                        let arguments = signal.args().map_err(error)?;
                        break (
                            arguments.status().to_string(),
                            arguments.message().to_string(),
                            arguments.outcome().to_string(),
                        );
                    }
                    Some(owner) = owner_changes.next() => {
                        if owner.is_none() {
                            return Err(RemoteError::Failed(
                                "mossd stopped while the transaction ran; `moss state list` shows where the system is"
                                    .into(),
                            )
                            .into());
                        }
                    }
                    result = &mut interrupt, if !interrupted => {
                        interrupted = true;
                        if result.is_ok() {
                            self.reporter.report(moss::events::Event::Warning {
                                message: "cancelling…".into(),
                            });
                            if let Err(refused) = transaction.cancel().await {
                                self.reporter.report(moss::events::Event::Warning {
                                    message: format!("{}", error(refused)),
                                });
                            }
                        }
                    }
                    else => {
                        // The signal streams ended: the daemon went away. Ask for what is known.
                        let (status, message, outcome) = transaction.result().await.map_err(error)?;
                        if !status::is_final(&status) {
                            return Err(RemoteError::Failed(
                                "mossd stopped while the transaction ran; `moss state list` shows where the system is"
                                    .into(),
                            )
                            .into());
                        }
                        break (status, message, outcome);
                    }
                }
            }
        };
        // Replay what the signals may have missed before the end.
        if let Ok(missed) = transaction.events(last).await {
            for (sequence, text) in missed {
                last = self.render(last, sequence, &text);
            }
        }
        match final_status.as_str() {
            status::SUCCEEDED => Ok(serde_json::from_str(&outcome).unwrap_or(Outcome {
                message,
                ..Outcome::default()
            })),
            status::CANCELLED => Err(RemoteError::Cancelled(message).into()),
            _ => Err(RemoteError::Engine(Failure::kind_of(&outcome), message).into()),
        }
    }

    /// Render one event unless it was seen; returns the last sequence seen.
    fn render(&self, last: u64, sequence: u64, text: &str) -> u64 {
        if sequence <= last {
            return last;
        }
        match Progress::from_json(text) {
            Ok(progress) => self.reporter.report(progress.event),
            Err(message) => self
                .reporter
                .report(moss::events::Event::Warning { message }),
        }
        sequence
    }
}

/// Local stones are opened here, with the user's own permissions, and passed as file
/// descriptors: the daemon never opens a path a caller names.
fn split_local(targets: &[Target]) -> anyhow::Result<(Vec<String>, Vec<std::fs::File>)> {
    let mut names = Vec::new();
    let mut files = Vec::new();
    for target in targets {
        match target {
            Target::Package(name) => names.push(name.clone()),
            Target::LocalStone(path) => files.push(open_local(path)?),
        }
    }
    Ok((names, files))
}

fn open_local(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).map_err(|source| {
        RemoteError::Engine(
            ErrorKind::NotFound,
            format!("cannot open {}: {source}", path.display()),
        )
        .into()
    })
}

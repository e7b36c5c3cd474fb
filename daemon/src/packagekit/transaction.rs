//! PackageKit transaction objects: one role per object; the method replies at once and the
//! results follow as signals, always ending with `Finished` (and `Destroy` shortly after).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moss::requests::Change;
use zbus::{Connection, interface, message::Header, object_server::SignalEmitter};

use super::{
    Shared,
    enums::{error, flag, role, status},
    roles::{self, Failure},
    runner::Runner,
};
use crate::{
    authority::{self, Caller},
    daemon::Entry,
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
}

#[derive(Debug)]
pub(super) struct PkState {
    pub(super) role: u32,
    pub(super) status: u32,
    pub(super) percentage: u32,
    pub(super) allow_cancel: bool,
    pub(super) last_package: String,
    pub(super) flags: u64,
    pub(super) created: Instant,
    pub(super) entry: Option<Arc<Entry>>,
    pub(super) finished: bool,
}

/// One PackageKit transaction.
#[derive(Debug)]
pub struct PkTransaction {
    shared: Arc<Shared>,
    path: String,
    caller: Caller,
    state: Arc<Mutex<PkState>>,
}

impl PkTransaction {
    /// A new transaction at `path` for `caller`.
    pub fn new(shared: Arc<Shared>, path: String, caller: Caller) -> Self {
        Self {
            shared,
            path,
            caller,
            state: Arc::new(Mutex::new(PkState {
                role: 0,
                status: status::WAIT,
                percentage: 101,
                allow_cancel: true,
                last_package: String::new(),
                flags: 0,
                created: Instant::now(),
                entry: None,
                finished: false,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PkState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Claim the transaction for `role`; a second role is refused, as PackageKit does.
    fn begin(&self, new_role: u32, flags: u64) -> Result<Runner, PkError> {
        let mut state = self.lock();
        if state.role != 0 {
            return Err(PkError::TransactionExistsWithRole(format!(
                "this transaction already has role {}; create a new transaction",
                state.role
            )));
        }
        state.role = new_role;
        state.flags = flags;
        drop(state);
        self.shared
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(self.path.clone());
        Ok(Runner {
            shared: self.shared.clone(),
            path: self.path.clone(),
            state: self.state.clone(),
            role: new_role,
        })
    }
}

/// Drop a transaction nobody used within 300 s, as packagekitd does.
pub fn reap_if_unused(shared: Arc<Shared>, connection: Connection, path: String) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(300)).await;
        let unused = match connection
            .object_server()
            .interface::<_, PkTransaction>(path.as_str())
            .await
        {
            Ok(reference) => reference.get().await.lock().role == 0,
            Err(_) => false,
        };
        if unused {
            let _ = connection
                .object_server()
                .remove::<PkTransaction, _>(path.as_str())
                .await;
        }
        drop(shared);
    });
}

fn names(ids: &[String]) -> Result<Vec<String>, Failure> {
    ids.iter()
        .map(|id| roles::id_name(id).map(str::to_owned))
        .collect()
}

impl PkTransaction {
    async fn authorise(
        &self,
        connection: &Connection,
        header: &Header<'_>,
        action: &'static str,
    ) -> Result<Caller, String> {
        authority::authorize(connection, header, action)
            .await
            .map_err(|error| error.message())
    }

    /// Start a change role after checking ids and permission.
    async fn start_change(
        &self,
        connection: &Connection,
        header: &Header<'_>,
        new_role: u32,
        flags: u64,
        change: Result<Change, Failure>,
        action: &'static str,
    ) -> Result<(), PkError> {
        let runner = self.begin(new_role, flags)?;
        let change = match change {
            Ok(change) => change,
            Err(failure) => {
                tokio::spawn(async move { runner.finish(Err(failure)).await });
                return Ok(());
            }
        };
        let simulate = flags & flag::SIMULATE != 0;
        // Simulations change nothing and need no permission, as in PackageKit.
        let authorised = if simulate {
            Ok(self.caller.clone())
        } else {
            self.authorise(connection, header, action).await
        };
        runner.change(authorised, change, action, simulate);
        Ok(())
    }

    async fn catalogue_ids(&self, ids: &[String]) -> Result<Vec<String>, Failure> {
        let catalogue = roles::catalogue(&self.shared.daemon.moss).await?;
        Ok(roles::by_ids(&catalogue, ids)?
            .into_iter()
            .map(|candidate| candidate.moss_id)
            .collect())
    }
}

#[interface(name = "org.freedesktop.PackageKit.Transaction")]
impl PkTransaction {
    /// Hints (`key=value`); all accepted, unknown ones ignored.
    fn set_hints(&self, _hints: Vec<String>) {}

    fn cancel(&self) -> Result<(), PkError> {
        let state = self.lock();
        if state.finished {
            return Err(PkError::CannotCancel("the transaction has finished".into()));
        }
        let Some(entry) = state.entry.clone() else {
            return Err(PkError::CannotCancel("a query cannot be cancelled".into()));
        };
        drop(state);
        let mut progress = entry.lock();
        match progress.status {
            moss_proto::status::QUEUED | moss_proto::status::WAITING => {
                progress.status = moss_proto::status::CANCELLED;
                progress.result = Some((
                    moss_proto::status::CANCELLED.into(),
                    "cancelled; nothing was changed".into(),
                    String::new(),
                ));
                drop(progress);
                self.shared.daemon.dequeue(entry.number);
                Ok(())
            }
            moss_proto::status::RUNNING => {
                drop(progress);
                self.shared
                    .daemon
                    .moss
                    .cancellation()
                    .cancel()
                    .map_err(|too_late| PkError::CannotCancel(too_late.to_string()))
            }
            _ => Err(PkError::CannotCancel("the transaction has finished".into())),
        }
    }

    fn resolve(&self, filter: u64, packages: Vec<String>) -> Result<(), PkError> {
        self.begin(role::RESOLVE, 0)?.query(filter, packages);
        Ok(())
    }

    fn search_names(&self, filter: u64, values: Vec<String>) -> Result<(), PkError> {
        self.begin(role::SEARCH_NAME, 0)?.query(filter, values);
        Ok(())
    }

    fn search_details(&self, filter: u64, values: Vec<String>) -> Result<(), PkError> {
        self.begin(role::SEARCH_DETAILS, 0)?.query(filter, values);
        Ok(())
    }

    fn search_files(&self, filter: u64, values: Vec<String>) -> Result<(), PkError> {
        self.begin(role::SEARCH_FILE, 0)?.query(filter, values);
        Ok(())
    }

    fn what_provides(&self, filter: u64, values: Vec<String>) -> Result<(), PkError> {
        self.begin(role::WHAT_PROVIDES, 0)?.query(filter, values);
        Ok(())
    }

    fn get_packages(&self, filter: u64) -> Result<(), PkError> {
        self.begin(role::GET_PACKAGES, 0)?.query(filter, Vec::new());
        Ok(())
    }

    fn get_details(&self, package_ids: Vec<String>) -> Result<(), PkError> {
        self.begin(role::GET_DETAILS, 0)?.query(0, package_ids);
        Ok(())
    }

    fn get_files(&self, package_ids: Vec<String>) -> Result<(), PkError> {
        self.begin(role::GET_FILES, 0)?.query(0, package_ids);
        Ok(())
    }

    fn get_updates(&self, filter: u64) -> Result<(), PkError> {
        self.begin(role::GET_UPDATES, 0)?.query(filter, Vec::new());
        Ok(())
    }

    fn get_update_detail(&self, package_ids: Vec<String>) -> Result<(), PkError> {
        self.begin(role::GET_UPDATE_DETAIL, 0)?
            .query(0, package_ids);
        Ok(())
    }

    fn get_repo_list(&self, filter: u64) -> Result<(), PkError> {
        self.begin(role::GET_REPO_LIST, 0)?
            .query(filter, Vec::new());
        Ok(())
    }

    fn depends_on(
        &self,
        filter: u64,
        package_ids: Vec<String>,
        _recursive: bool,
    ) -> Result<(), PkError> {
        self.begin(role::DEPENDS_ON, 0)?.query(filter, package_ids);
        Ok(())
    }

    fn required_by(
        &self,
        filter: u64,
        package_ids: Vec<String>,
        _recursive: bool,
    ) -> Result<(), PkError> {
        self.begin(role::REQUIRED_BY, 0)?.query(filter, package_ids);
        Ok(())
    }

    async fn refresh_cache(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        _force: bool,
    ) -> Result<(), PkError> {
        let change = Ok(Change::Refresh { repository: None });
        self.start_change(
            connection,
            &header,
            role::REFRESH_CACHE,
            0,
            change,
            moss_proto::actions::REFRESH,
        )
        .await
    }

    async fn install_packages(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        transaction_flags: u64,
        package_ids: Vec<String>,
    ) -> Result<(), PkError> {
        let change = if transaction_flags & flag::ONLY_DOWNLOAD != 0 {
            match self.catalogue_ids(&package_ids).await {
                Ok(ids) => Ok(Change::Download { ids }),
                Err(failure) => Err(failure),
            }
        } else {
            names(&package_ids).map(|packages| Change::Install { packages })
        };
        self.start_change(
            connection,
            &header,
            role::INSTALL_PACKAGES,
            transaction_flags,
            change,
            moss_proto::actions::INSTALL,
        )
        .await
    }

    async fn install_files(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        transaction_flags: u64,
        full_paths: Vec<String>,
    ) -> Result<(), PkError> {
        let change = match full_paths
            .iter()
            .find(|path| !std::path::Path::new(path).is_file())
        {
            Some(missing) => Err((error::FILE_NOT_FOUND, format!("{missing} does not exist"))),
            None => Ok(Change::Install {
                packages: full_paths,
            }),
        };
        self.start_change(
            connection,
            &header,
            role::INSTALL_FILES,
            transaction_flags,
            change,
            moss_proto::actions::INSTALL,
        )
        .await
    }

    async fn remove_packages(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        transaction_flags: u64,
        package_ids: Vec<String>,
        _allow_deps: bool,
        _autoremove: bool,
    ) -> Result<(), PkError> {
        let change = names(&package_ids).map(|packages| Change::Remove { packages });
        self.start_change(
            connection,
            &header,
            role::REMOVE_PACKAGES,
            transaction_flags,
            change,
            moss_proto::actions::REMOVE,
        )
        .await
    }

    async fn update_packages(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        transaction_flags: u64,
        package_ids: Vec<String>,
    ) -> Result<(), PkError> {
        // Downloading only prepares an offline update (GNOME Software's flow); otherwise moss
        // updates the system as one atomic state, so every update is applied together.
        let change = if transaction_flags & flag::ONLY_DOWNLOAD != 0 {
            match self.catalogue_ids(&package_ids).await {
                Ok(ids) => {
                    if let Err(error) =
                        super::offline::prepare(&self.shared.daemon.root, &package_ids)
                    {
                        Err((
                            error::TRANSACTION_ERROR,
                            format!("cannot record the prepared update: {error}"),
                        ))
                    } else {
                        Ok(Change::Download { ids })
                    }
                }
                Err(failure) => Err(failure),
            }
        } else {
            Ok(Change::Sync {
                update: false,
                allow_downgrade: false,
            })
        };
        self.start_change(
            connection,
            &header,
            role::UPDATE_PACKAGES,
            transaction_flags,
            change,
            moss_proto::actions::SYNC,
        )
        .await
    }

    async fn download_packages(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        _store_in_cache: bool,
        package_ids: Vec<String>,
    ) -> Result<(), PkError> {
        let change = self
            .catalogue_ids(&package_ids)
            .await
            .map(|ids| Change::Download { ids });
        self.start_change(
            connection,
            &header,
            role::DOWNLOAD_PACKAGES,
            0,
            change,
            moss_proto::actions::INSTALL,
        )
        .await
    }

    async fn repo_enable(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        repo_id: String,
        enabled: bool,
    ) -> Result<(), PkError> {
        let change = Ok(Change::RepoEnable {
            name: repo_id,
            enable: enabled,
        });
        self.start_change(
            connection,
            &header,
            role::REPO_ENABLE,
            0,
            change,
            moss_proto::actions::REPO_CONFIGURE,
        )
        .await
    }

    async fn repo_remove(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        transaction_flags: u64,
        repo_id: String,
        _autoremove: bool,
    ) -> Result<(), PkError> {
        let change = Ok(Change::RepoRemove { name: repo_id });
        self.start_change(
            connection,
            &header,
            role::REPO_REMOVE,
            transaction_flags,
            change,
            moss_proto::actions::REPO_CONFIGURE,
        )
        .await
    }

    #[zbus(property)]
    fn role(&self) -> u32 {
        self.lock().role
    }

    #[zbus(property)]
    fn status(&self) -> u32 {
        self.lock().status
    }

    #[zbus(property)]
    fn last_package(&self) -> String {
        self.lock().last_package.clone()
    }

    #[zbus(property)]
    fn uid(&self) -> u32 {
        self.caller.uid
    }

    #[zbus(property)]
    fn sender(&self) -> String {
        self.caller.name.clone()
    }

    #[zbus(property)]
    fn percentage(&self) -> u32 {
        self.lock().percentage
    }

    #[zbus(property)]
    fn allow_cancel(&self) -> bool {
        self.lock().allow_cancel
    }

    #[zbus(property)]
    fn caller_active(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn elapsed_time(&self) -> u32 {
        u32::try_from(self.lock().created.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    #[zbus(property)]
    fn remaining_time(&self) -> u32 {
        0
    }

    #[zbus(property)]
    fn speed(&self) -> u32 {
        0
    }

    #[zbus(property)]
    fn download_size_remaining(&self) -> u64 {
        0
    }

    #[zbus(property)]
    fn transaction_flags(&self) -> u64 {
        self.lock().flags
    }

    #[zbus(signal)]
    async fn package(
        emitter: &SignalEmitter<'_>,
        info: u32,
        package_id: &str,
        summary: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn finished(emitter: &SignalEmitter<'_>, exit: u32, runtime: u32) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn error_code(emitter: &SignalEmitter<'_>, code: u32, details: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn destroy(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn details(
        emitter: &SignalEmitter<'_>,
        data: std::collections::HashMap<&str, zbus::wire::Variant<'_>>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn files(
        emitter: &SignalEmitter<'_>,
        package_id: &str,
        file_list: Vec<&str>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn repo_detail(
        emitter: &SignalEmitter<'_>,
        repo_id: &str,
        description: &str,
        enabled: bool,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn item_progress(
        emitter: &SignalEmitter<'_>,
        id: &str,
        status: u32,
        percentage: u32,
    ) -> zbus::Result<()>;
}

//! PackageKit transaction objects: one role per object; the method replies at once and the
//! results follow as signals, always ending with `Finished` (and `Destroy` shortly after).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moss::{operations::Target, requests::Change};
use zbus::{Connection, interface, message::Header, object_server::SignalEmitter};

use super::{
    Shared,
    access::{PkError, names},
    enums::{flag, role, status},
    runner::Runner,
};
use crate::{
    authority::{self, Caller},
    daemon::Entry,
    limits,
};

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
    pub(super) shared: Arc<Shared>,
    pub(super) path: String,
    pub(super) caller: Caller,
    pub(super) state: Arc<Mutex<PkState>>,
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

    /// A query role: the creator only, bounded values, answered after the reply.
    fn query_role(
        &self,
        header: &Header<'_>,
        new_role: u32,
        filter: u64,
        values: Vec<String>,
    ) -> Result<(), PkError> {
        self.owner(header)?;
        limits::names(&values, "package")?;
        self.begin(new_role, 0)?.query(filter, values);
        Ok(())
    }

    /// Claim the transaction for `role`; a second role is refused, as PackageKit does.
    pub(super) fn begin(&self, new_role: u32, flags: u64) -> Result<Runner, PkError> {
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
            shared.release(&path);
        }
    });
}

#[interface(name = "org.freedesktop.PackageKit.Transaction")]
impl PkTransaction {
    /// Hints (`key=value`); all accepted, unknown ones ignored.
    fn set_hints(
        &self,
        #[zbus(header)] header: Header<'_>,
        hints: Vec<String>,
    ) -> Result<(), PkError> {
        self.owner(&header)?;
        limits::names(&hints, "hint")?;
        Ok(())
    }

    /// Cancel: the creator may; another user needs `cancel-foreign`, as in PackageKit.
    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), PkError> {
        let caller = authority::caller(connection, &header).await?;
        if caller.uid != self.caller.uid {
            authority::authorize(connection, &header, moss_proto::actions::CANCEL_FOREIGN).await?;
        }
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

    fn resolve(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
        packages: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::RESOLVE, filter, packages)
    }

    fn search_names(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
        values: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::SEARCH_NAME, filter, values)
    }

    fn search_details(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
        values: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::SEARCH_DETAILS, filter, values)
    }

    fn search_files(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
        values: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::SEARCH_FILE, filter, values)
    }

    fn what_provides(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
        values: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::WHAT_PROVIDES, filter, values)
    }

    fn get_packages(&self, #[zbus(header)] header: Header<'_>, filter: u64) -> Result<(), PkError> {
        self.query_role(&header, role::GET_PACKAGES, filter, Vec::new())
    }

    fn get_details(
        &self,
        #[zbus(header)] header: Header<'_>,
        package_ids: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::GET_DETAILS, 0, package_ids)
    }

    fn get_files(
        &self,
        #[zbus(header)] header: Header<'_>,
        package_ids: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::GET_FILES, 0, package_ids)
    }

    fn get_updates(&self, #[zbus(header)] header: Header<'_>, filter: u64) -> Result<(), PkError> {
        self.query_role(&header, role::GET_UPDATES, filter, Vec::new())
    }

    fn get_update_detail(
        &self,
        #[zbus(header)] header: Header<'_>,
        package_ids: Vec<String>,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::GET_UPDATE_DETAIL, 0, package_ids)
    }

    fn get_repo_list(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::GET_REPO_LIST, filter, Vec::new())
    }

    fn depends_on(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
        package_ids: Vec<String>,
        _recursive: bool,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::DEPENDS_ON, filter, package_ids)
    }

    fn required_by(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: u64,
        package_ids: Vec<String>,
        _recursive: bool,
    ) -> Result<(), PkError> {
        self.query_role(&header, role::REQUIRED_BY, filter, package_ids)
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
            Vec::new(),
            None,
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
        limits::names(&package_ids, "package")?;
        let change = if transaction_flags & flag::ONLY_DOWNLOAD != 0 {
            match self.catalogue_ids(&package_ids).await {
                Ok(ids) => Ok(Change::Download { ids }),
                Err(failure) => Err(failure),
            }
        } else {
            names(&package_ids).map(|packages| Change::Install {
                targets: packages.into_iter().map(Target::Package).collect(),
            })
        };
        self.start_change(
            connection,
            &header,
            role::INSTALL_PACKAGES,
            transaction_flags,
            change,
            moss_proto::actions::INSTALL,
            Vec::new(),
            None,
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
        // The daemon never looks at these paths itself: once the caller is authorised, a child
        // running as the caller reads them (`incoming::Incoming::read_as`).
        self.shared.daemon.incoming.check_count(full_paths.len())?;
        limits::names(&full_paths, "file")?;
        self.start_change(
            connection,
            &header,
            role::INSTALL_FILES,
            transaction_flags,
            Ok(Change::Install {
                targets: Vec::new(),
            }),
            moss_proto::actions::INSTALL,
            full_paths,
            None,
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
        limits::names(&package_ids, "package")?;
        let change = names(&package_ids).map(|packages| Change::Remove { packages });
        self.start_change(
            connection,
            &header,
            role::REMOVE_PACKAGES,
            transaction_flags,
            change,
            moss_proto::actions::REMOVE,
            Vec::new(),
            None,
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
        // Downloading only prepares an offline update (GNOME Software's flow), recorded once the
        // download succeeded; otherwise moss updates the system as one atomic state, so every
        // update is applied together.
        limits::names(&package_ids, "package")?;
        let only_download = transaction_flags & flag::ONLY_DOWNLOAD != 0;
        let change = if only_download {
            self.catalogue_ids(&package_ids)
                .await
                .map(|ids| Change::Download { ids })
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
            Vec::new(),
            only_download.then_some(package_ids),
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
        limits::names(&package_ids, "package")?;
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
            Vec::new(),
            None,
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
            Vec::new(),
            None,
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
            Vec::new(),
            None,
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

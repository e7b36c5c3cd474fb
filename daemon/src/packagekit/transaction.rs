//! PackageKit transaction objects: one role per object; the method replies at once and the
//! results follow as signals, always ending with `Finished` (and `Destroy` shortly after).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moss::requests::{Change, Outcome};
use zbus::{Connection, interface, message::Header, object_server::SignalEmitter};

use super::{
    Shared, TRANSACTION_INTERFACE,
    enums::{error, exit, flag, info, role, status},
    roles::{self, Emit, Failure},
};
use crate::{
    authority::{self, Caller},
    daemon::{Entry, Work},
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
struct PkState {
    role: u32,
    status: u32,
    percentage: u32,
    allow_cancel: bool,
    last_package: String,
    flags: u64,
    created: Instant,
    entry: Option<Arc<Entry>>,
    finished: bool,
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

/// Carries a role out after the method replied.
#[derive(Debug, Clone)]
struct Runner {
    shared: Arc<Shared>,
    path: String,
    state: Arc<Mutex<PkState>>,
    role: u32,
}

impl Runner {
    fn connection(&self) -> Connection {
        self.shared.daemon.connection().clone()
    }

    async fn emit<B>(&self, signal: &str, body: &B)
    where
        B: serde::Serialize + zbus::wire::DynamicType,
    {
        if let Ok(emitter) = SignalEmitter::new(&self.connection(), self.path.as_str()) {
            let _ = emitter.emit(TRANSACTION_INTERFACE, signal, body).await;
        }
    }

    async fn set(&self, change: impl FnOnce(&mut PkState)) {
        change(
            &mut self
                .state
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
        let connection = self.connection();
        if let Ok(reference) = connection
            .object_server()
            .interface::<_, PkTransaction>(self.path.as_str())
            .await
        {
            let object = reference.get().await;
            let emitter = reference.signal_emitter();
            let _ = object.role_changed(emitter).await;
            let _ = object.status_changed(emitter).await;
            let _ = object.percentage_changed(emitter).await;
            let _ = object.allow_cancel_changed(emitter).await;
            let _ = object.last_package_changed(emitter).await;
        }
    }

    async fn send(&self, emits: &[Emit]) {
        for item in emits {
            match item {
                Emit::Package(kind, id, summary) => {
                    self.state
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .last_package = id.clone();
                    self.emit("Package", &(*kind, id.as_str(), summary.as_str()))
                        .await;
                }
                Emit::Details { .. } => {
                    self.emit("Details", &(roles::details_map(item),)).await;
                }
                Emit::Files(id, files) => self.emit("Files", &(id.as_str(), files)).await,
                Emit::RepoDetail(id, description, enabled) => {
                    self.emit("RepoDetail", &(id.as_str(), description.as_str(), *enabled))
                        .await;
                }
                Emit::UpdateDetail(id, old, url, text) => {
                    let updates: Vec<&str> = if old.is_empty() { vec![] } else { vec![old] };
                    let urls: Vec<&str> = if url.is_empty() { vec![] } else { vec![url] };
                    let none: Vec<&str> = Vec::new();
                    self.emit(
                        "UpdateDetail",
                        &(
                            id.as_str(),
                            updates,
                            none.clone(),
                            urls,
                            none.clone(),
                            none,
                            1u32,
                            text.as_str(),
                            "",
                            1u32,
                            "",
                            "",
                        ),
                    )
                    .await;
                }
            }
        }
    }

    /// End the transaction: an error (if any), `Finished`, then `Destroy` and removal.
    async fn finish(&self, result: Result<(), Failure>) {
        let (exit_code, runtime) = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            state.finished = true;
            let runtime = u32::try_from(state.created.elapsed().as_millis()).unwrap_or(u32::MAX);
            let code = match &result {
                Ok(()) => exit::SUCCESS,
                Err((error::TRANSACTION_CANCELLED, _)) => exit::CANCELLED,
                Err(_) => exit::FAILED,
            };
            (code, runtime)
        };
        if let Err((code, message)) = &result {
            self.emit("ErrorCode", &(*code, message.as_str())).await;
        } else {
            self.shared
                .last_action
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .insert(self.role, Instant::now());
        }
        self.set(|state| {
            state.status = status::FINISHED;
            state.percentage = 100;
            state.allow_cancel = false;
        })
        .await;
        self.emit("Finished", &(exit_code, runtime)).await;
        self.shared
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .retain(|path| path != &self.path);
        let connection = self.connection();
        self.shared.list_changed(&connection).await;
        let runner = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            runner.emit("Destroy", &()).await;
            let _ = runner
                .connection()
                .object_server()
                .remove::<PkTransaction, _>(runner.path.as_str())
                .await;
        });
    }

    /// A query role.
    fn query(self, bits: u64, values: Vec<String>) {
        tokio::spawn(async move {
            let connection = self.connection();
            self.shared.list_changed(&connection).await;
            self.set(|state| state.status = status::QUERY).await;
            let result = roles::query(&self.shared.daemon.moss, self.role, bits, &values).await;
            match result {
                Ok(emits) => {
                    self.send(&emits).await;
                    self.finish(Ok(())).await;
                }
                Err(failure) => self.finish(Err(failure)).await,
            }
        });
    }

    /// A change: refused (reported as PackageKit does, after the reply), simulated, or run by
    /// the mossd worker.
    fn change(
        self,
        authorised: Result<Caller, String>,
        change: Change,
        action: &'static str,
        simulate: bool,
    ) {
        tokio::spawn(async move {
            let connection = self.connection();
            self.shared.list_changed(&connection).await;
            if simulate {
                self.set(|state| state.status = status::DEP_RESOLVE).await;
                let result = self.simulate(&change).await;
                self.finish(result).await;
                return;
            }
            let caller = match authorised {
                Ok(caller) => caller,
                Err(message) => {
                    self.finish(Err((error::NOT_AUTHORIZED, message))).await;
                    return;
                }
            };
            let result = self.run(change, caller, action).await;
            self.finish(result).await;
        });
    }

    async fn simulate(&self, change: &Change) -> Result<(), Failure> {
        let moss = &self.shared.daemon.moss;
        let plan = moss
            .plan_change(change)
            .await
            .map_err(|error| classify(&crate::worker::describe(&error)))?
            .unwrap_or_default();
        self.send(&plan_emits(moss, &plan).await).await;
        Ok(())
    }

    async fn run(
        &self,
        change: Change,
        caller: Caller,
        action: &'static str,
    ) -> Result<(), Failure> {
        let daemon = &self.shared.daemon;
        let entry = daemon
            .create(
                Work::Change(change.clone()),
                caller,
                action,
                false,
                Vec::new(),
            )
            .map_err(|error| (error::TRANSACTION_ERROR, error.message()))?;
        entry.lock().status = moss_proto::status::QUEUED;
        daemon.enqueue(entry.clone());
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry = Some(entry.clone());
        let mut seen = 0;
        loop {
            let (moss_status, percentage, events) = {
                let progress = entry.lock();
                let events: Vec<String> = progress
                    .events
                    .iter()
                    .skip(seen)
                    .map(|(_, text)| text.clone())
                    .collect();
                (progress.status, progress.meter.percentage(), events)
            };
            seen += events.len();
            let phase_status = events
                .iter()
                .rev()
                .filter_map(|text| moss_proto::wire::Progress::from_json(text).ok())
                .find_map(|progress| match progress.event {
                    moss::events::Event::PhaseStarted { phase, .. } => Some(phase_status(phase)),
                    _ => None,
                });
            let cancellable = daemon.moss.cancellation().is_cancellable();
            self.set(|state| {
                if let Some(value) = phase_status {
                    state.status = value;
                } else if moss_status == moss_proto::status::QUEUED {
                    state.status = status::WAIT;
                }
                state.percentage = percentage;
                state.allow_cancel = cancellable || moss_status == moss_proto::status::QUEUED;
            })
            .await;
            if moss_proto::status::is_final(moss_status) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (final_status, message, outcome) = entry.lock().result.clone().unwrap_or_default();
        match final_status.as_str() {
            moss_proto::status::SUCCEEDED => {
                let outcome: Outcome = serde_json::from_str(&outcome).unwrap_or_default();
                self.report_outcome(&change, &outcome).await;
                Ok(())
            }
            moss_proto::status::CANCELLED => Err((error::TRANSACTION_CANCELLED, message)),
            _ => Err(classify(&message)),
        }
    }

    async fn report_outcome(&self, change: &Change, outcome: &Outcome) {
        let moss = &self.shared.daemon.moss;
        let connection = self.connection();
        if let Some(plan) = &outcome.plan {
            self.send(&plan_emits(moss, plan).await).await;
        }
        match change {
            Change::Download { ids } => {
                let catalogue = roles::catalogue(moss).await.unwrap_or_default();
                for (id, file) in ids.iter().zip(&outcome.files) {
                    let package_id = catalogue
                        .iter()
                        .find(|candidate| &candidate.moss_id == id)
                        .map_or_else(|| id.clone(), |candidate| candidate.id.clone());
                    self.send(&[Emit::Files(package_id, vec![file.clone()])])
                        .await;
                }
            }
            Change::RepoEnable { .. } | Change::RepoRemove { .. } => {
                self.shared.announce(&connection, "RepoListChanged").await;
            }
            _ => self.shared.announce(&connection, "UpdatesChanged").await,
        }
    }
}

fn phase_status(phase: moss::events::Phase) -> u32 {
    use moss::events::Phase;
    match phase {
        Phase::Resolve => status::DEP_RESOLVE,
        Phase::Fetch => status::DOWNLOAD,
        Phase::Unpack => status::INSTALL,
        Phase::Blit => status::RUNNING,
        Phase::Triggers => status::RUN_HOOK,
        Phase::Swap | Phase::Boot => status::COMMIT,
    }
}

/// `Package` signals for a plan: installing, removing, updating.
async fn plan_emits(moss: &moss::Moss, plan: &moss::operations::Plan) -> Vec<Emit> {
    let catalogue = roles::catalogue(moss).await.unwrap_or_default();
    let id_of = |planned: &moss::operations::Planned| {
        catalogue
            .iter()
            .find(|candidate| candidate.moss_id == planned.id)
            .map_or_else(
                || {
                    format!(
                        "{};{};{};{}",
                        planned.name,
                        planned.version,
                        std::env::consts::ARCH,
                        planned.origin
                    )
                },
                |candidate| candidate.id.clone(),
            )
    };
    let summary = |planned: &moss::operations::Planned| {
        catalogue
            .iter()
            .find(|candidate| candidate.moss_id == planned.id)
            .map(|candidate| candidate.meta.summary.clone())
            .unwrap_or_default()
    };
    let mut emits = Vec::new();
    for planned in &plan.add {
        emits.push(Emit::Package(
            info::INSTALLING,
            id_of(planned),
            summary(planned),
        ));
    }
    for planned in &plan.remove {
        emits.push(Emit::Package(
            info::REMOVING,
            id_of(planned),
            summary(planned),
        ));
    }
    for (_, new) in &plan.change {
        emits.push(Emit::Package(info::UPDATING, id_of(new), summary(new)));
    }
    emits
}

/// The PackageKit error code for a moss failure message.
fn classify(message: &str) -> Failure {
    let code = if message.contains("conflicts") {
        error::PACKAGE_CONFLICTS
    } else if message.contains("no package provides") || message.contains("no repository offers") {
        error::PACKAGE_NOT_FOUND
    } else if message.contains("is not installed") {
        error::PACKAGE_NOT_INSTALLED
    } else if message.contains("cannot satisfy") {
        error::DEP_RESOLUTION_FAILED
    } else if message.contains("not configured") {
        error::REPO_NOT_FOUND
    } else if message.contains("not a stone") || message.contains("malformed") {
        error::INVALID_PACKAGE_FILE
    } else {
        error::TRANSACTION_ERROR
    };
    (code, message.to_owned())
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
}

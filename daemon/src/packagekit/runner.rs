//! Carrying out a PackageKit role after its method replied: queries from the engine, changes
//! through the mossd worker, and the signals that report them.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moss::requests::{Change, Outcome};
use zbus::{Connection, object_server::SignalEmitter};

use super::{
    Shared, TRANSACTION_INTERFACE,
    enums::{error, exit, info, status},
    roles::{self, Emit, Failure},
    transaction::{PkState, PkTransaction},
};
use crate::{authority::Caller, daemon::Work, incoming::Received};

/// Carries a role out after the method replied.
#[derive(Debug, Clone)]
pub(super) struct Runner {
    pub(super) shared: Arc<Shared>,
    pub(super) path: String,
    pub(super) state: Arc<Mutex<PkState>>,
    pub(super) role: u32,
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
    pub(super) async fn finish(&self, result: Result<(), Failure>) {
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
            runner.shared.release(&runner.path);
        });
    }

    /// A query role.
    pub(super) fn query(self, bits: u64, values: Vec<String>) {
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
    pub(super) fn change(self, authorised: Result<Caller, Failure>, request: ChangeRequest) {
        tokio::spawn(async move {
            let connection = self.connection();
            self.shared.list_changed(&connection).await;
            let caller = match authorised {
                Ok(caller) => caller,
                Err(failure) => {
                    self.finish(Err(failure)).await;
                    return;
                }
            };
            let mut request = request;
            if !request.files.is_empty() {
                match self.receive(&caller, &mut request).await {
                    Ok(()) => {}
                    Err(failure) => {
                        self.finish(Err(failure)).await;
                        return;
                    }
                }
            }
            if request.simulate {
                self.set(|state| state.status = status::DEP_RESOLVE).await;
                let result = self.simulate(&request.change).await;
                // A simulation's copies of local stones go here: nothing is kept.
                drop(request.local);
                self.finish(result).await;
                return;
            }
            let result = self.run(request, caller).await;
            self.finish(result).await;
        });
    }

    /// Read the files of `InstallFiles` as the caller, and install the copies.
    async fn receive(&self, caller: &Caller, request: &mut ChangeRequest) -> Result<(), Failure> {
        let files = std::mem::take(&mut request.files);
        let received = self
            .shared
            .daemon
            .incoming
            .read_as(caller.uid, &files)
            .await
            .map_err(|failure| {
                let code = match failure {
                    moss_proto::Error::NotFound(_) => error::FILE_NOT_FOUND,
                    moss_proto::Error::Busy(_) => error::CANNOT_GET_LOCK,
                    _ => error::INVALID_PACKAGE_FILE,
                };
                (code, failure.message())
            })?;
        if let Change::Install { targets } = &mut request.change {
            targets.extend(
                received
                    .paths()
                    .iter()
                    .cloned()
                    .map(moss::operations::Target::LocalStone),
            );
        }
        request.local = received;
        Ok(())
    }

    async fn simulate(&self, change: &Change) -> Result<(), Failure> {
        let moss = &self.shared.daemon.moss;
        let plan = moss
            .plan_change(change)
            .await
            .map_err(|failure| engine_failure(&failure))?
            .unwrap_or_default();
        self.send(&plan_emits(moss, &plan).await).await;
        Ok(())
    }

    async fn run(&self, request: ChangeRequest, caller: Caller) -> Result<(), Failure> {
        let ChangeRequest {
            change,
            action,
            local,
            prepared,
            ..
        } = request;
        let daemon = &self.shared.daemon;
        let copies = local.paths().to_vec();
        let entry = daemon
            .create(Work::Change(change.clone()), caller, action, false, copies)
            .map_err(|error| (error::for_daemon_error(&error), error.message()))?;
        // The transaction removes the copies when it ends; refused above, `local` did.
        let _ = local.keep();
        daemon.start(&entry);
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry = Some(entry.clone());
        let mut last_sequence = 0;
        let mut sizes: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        // Downloads are reported by package name; PackageKit clients expect package ids.
        let package_ids: std::collections::HashMap<String, String> = roles::catalogue(&daemon.moss)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|candidate| candidate.info == info::AVAILABLE)
            .map(|candidate| (candidate.meta.name.clone(), candidate.id))
            .collect();
        loop {
            let (moss_status, percentage, events) = {
                let progress = entry.lock();
                let events: Vec<String> = progress
                    .events
                    .iter()
                    .filter(|(sequence, _)| *sequence > last_sequence)
                    .map(|(_, text)| text.clone())
                    .collect();
                if let Some((sequence, _)) = progress.events.back() {
                    last_sequence = last_sequence.max(*sequence);
                }
                (progress.status, progress.meter.percentage(), events)
            };
            let phase_status = events
                .iter()
                .rev()
                .filter_map(|text| moss_proto::wire::Progress::from_json(text).ok())
                .find_map(|progress| match progress.event {
                    moss::events::Event::PhaseStarted { phase, .. } => Some(phase_status(phase)),
                    _ => None,
                });
            // Per-package download progress, as GNOME Software and Discover show it:
            // `ItemProgress(id, status download, percentage)`.
            for progress in events
                .iter()
                .filter_map(|text| moss_proto::wire::Progress::from_json(text).ok())
            {
                if let moss::events::Event::DownloadProgress { item, bytes } = &progress.event {
                    let total = sizes.get(item).copied().unwrap_or(0);
                    // 101 is PackageKit's "unknown".
                    let percentage = ((*bytes).min(total) * 100)
                        .checked_div(total)
                        .map_or(101, |value| u32::try_from(value).unwrap_or(100));
                    let id = package_ids.get(item).unwrap_or(item);
                    self.emit("ItemProgress", &(id.as_str(), status::DOWNLOAD, percentage))
                        .await;
                } else if let moss::events::Event::DownloadStarted { item, bytes } = &progress.event
                {
                    sizes.insert(item.clone(), bytes.unwrap_or(0));
                }
            }
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
                // An offline update is prepared once its packages are downloaded, never before
                // the caller was authorised and the download succeeded.
                if let Some(ids) = prepared
                    && let Err(failure) = super::offline::prepare(&daemon.root, &ids)
                {
                    return Err((
                        error::TRANSACTION_ERROR,
                        format!("cannot record the prepared update: {failure}"),
                    ));
                }
                self.report_outcome(&change, &outcome).await;
                Ok(())
            }
            moss_proto::status::CANCELLED => Err((error::TRANSACTION_CANCELLED, message)),
            _ => Err((
                error::for_kind(moss_proto::wire::Failure::kind_of(&outcome)),
                message,
            )),
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
                let named =
                    super::downloads::publish(moss, &self.shared.daemon.root, ids, &outcome.files)
                        .await;
                for (id, file) in ids.iter().zip(named) {
                    let package_id = catalogue
                        .iter()
                        .find(|candidate| &candidate.moss_id == id)
                        .map_or_else(|| id.clone(), |candidate| candidate.id.clone());
                    self.send(&[Emit::Files(package_id, vec![file])]).await;
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

/// The PackageKit failure of an engine error, by its kind.
pub(super) fn engine_failure(failure: &moss::EngineError) -> Failure {
    (
        error::for_kind(failure.kind()),
        crate::worker::describe(failure),
    )
}

/// A change role's request, once its ids were checked.
#[derive(Debug)]
pub(super) struct ChangeRequest {
    /// What to do.
    pub(super) change: Change,
    /// The polkit action it needs.
    pub(super) action: &'static str,
    /// Plan only.
    pub(super) simulate: bool,
    /// Paths the caller named (`InstallFiles`), read as the caller once authorised.
    pub(super) files: Vec<String>,
    /// The daemon's copies of the caller's local stones.
    pub(super) local: Received,
    /// Package ids to record as a prepared offline update once the download succeeded.
    pub(super) prepared: Option<Vec<String>>,
}

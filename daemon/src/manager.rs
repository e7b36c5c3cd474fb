//! The manager object (`com.serpentos.Moss1` at `/com/serpentos/Moss1`): queries, answered at
//! once and concurrently with the worker, and the methods that create transactions.

use std::{path::PathBuf, sync::Arc};

use moss::{
    queries::{PackageDetails, PackageSummary},
    requests::Change,
};
use moss_proto::{
    Error, actions,
    wire::{
        BootEntry, Details, Diff, File, HistoryEntry, Package, PlanWire, Problem, Repository, State,
    },
};
use zbus::{
    Connection, interface,
    message::Header,
    object_server::SignalEmitter,
    wire::{OwnedFd, OwnedObjectPath},
};

use crate::{
    authority,
    config::Setting,
    daemon::{Daemon, Work},
    limits,
};

mod creation;

pub use creation::query_error;
use creation::{Options, install_targets, into_fds, path, work};

/// The D-Bus face of the daemon.
#[derive(Debug)]
pub struct Manager {
    daemon: Arc<Daemon>,
}

#[interface(name = "com.serpentos.Moss1")]
impl Manager {
    async fn list_installed(&self, explicit_only: bool) -> Result<Vec<Package>, Error> {
        let _call = self.daemon.call();
        let listing = self.daemon.moss.list_installed(explicit_only).await;
        Ok(listing
            .map_err(query_error)?
            .into_iter()
            .map(Package::from)
            .collect())
    }

    async fn list_available(&self) -> Result<Vec<Package>, Error> {
        let _call = self.daemon.call();
        let listing = self.daemon.moss.list_available().await;
        Ok(listing
            .map_err(query_error)?
            .into_iter()
            .map(Package::from)
            .collect())
    }

    async fn info(&self, requests: Vec<String>, files: bool) -> Result<Vec<Details>, Error> {
        let _call = self.daemon.call();
        limits::names(&requests, "package")?;
        let requests = limits::unique(requests);
        let details: Vec<PackageDetails> = self
            .daemon
            .moss
            .package_details(&requests, files)
            .await
            .map_err(query_error)?;
        Ok(details.into_iter().map(Details::from).collect())
    }

    async fn search(&self, keyword: String, installed_only: bool) -> Result<Vec<Package>, Error> {
        let _call = self.daemon.call();
        limits::text(&keyword, "search keyword")?;
        let hits: Vec<PackageSummary> = self
            .daemon
            .moss
            .search(&keyword, installed_only)
            .await
            .map_err(query_error)?;
        Ok(hits.into_iter().map(Package::from).collect())
    }

    async fn search_file(&self, needle: String) -> Result<Vec<File>, Error> {
        let _call = self.daemon.call();
        limits::text(&needle, "file name")?;
        let hits = self.daemon.moss.search_file(&needle).await;
        Ok(hits
            .map_err(query_error)?
            .into_iter()
            .map(File::from)
            .collect())
    }

    async fn list_states(&self) -> Result<Vec<State>, Error> {
        let _call = self.daemon.call();
        let states = self.daemon.moss.list_states().await;
        Ok(states
            .map_err(query_error)?
            .into_iter()
            .map(State::from)
            .collect())
    }

    async fn state_diff(&self, from: u64, to: u64) -> Result<Diff, Error> {
        let _call = self.daemon.call();
        let diff = self.daemon.moss.state_diff(from, to).await;
        Ok(diff.map_err(query_error)?.into())
    }

    async fn list_repositories(&self) -> Result<Vec<Repository>, Error> {
        let _call = self.daemon.call();
        let repositories = self.daemon.moss.repositories().map_err(query_error)?;
        Ok(repositories.iter().map(Repository::from).collect())
    }

    async fn history(&self) -> Vec<HistoryEntry> {
        let _call = self.daemon.call();
        self.daemon.history.entries()
    }

    async fn plan_install(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        packages: Vec<String>,
        local_files: Vec<OwnedFd>,
    ) -> Result<PlanWire, Error> {
        let _call = self.daemon.call();
        limits::names(&packages, "package")?;
        self.daemon.incoming.check_count(local_files.len())?;
        // Reading a caller's stone takes the install permission, asked before any byte is
        // read; the plan itself writes nothing (the copies go when `received` is dropped).
        if !local_files.is_empty() {
            authority::authorize(connection, &header, actions::INSTALL).await?;
        }
        let received = self.daemon.incoming.receive(into_fds(local_files)).await?;
        let targets = install_targets(packages, received.paths());
        let plan = self.daemon.moss.plan_install(&targets).await;
        Ok(plan.map_err(query_error)?.into())
    }

    async fn plan_remove(&self, packages: Vec<String>) -> Result<PlanWire, Error> {
        let _call = self.daemon.call();
        limits::names(&packages, "package")?;
        let plan = self.daemon.moss.plan_remove(&packages).await;
        Ok(plan.map_err(query_error)?.into())
    }

    async fn plan_sync(&self, allow_downgrade: bool) -> Result<PlanWire, Error> {
        let _call = self.daemon.call();
        let plan = self.daemon.moss.plan_sync(allow_downgrade).await;
        Ok(plan.map_err(query_error)?.into())
    }

    /// The system model a state recorded (0: the active state).
    async fn state_export(&self, id: u64) -> Result<String, Error> {
        let _call = self.daemon.call();
        let id = (id != 0).then_some(id);
        self.daemon.moss.state_model(id).await.map_err(query_error)
    }

    /// One state in full (packages, date, kind, boot entries; 0: the active state), as the JSON
    /// object that `moss state query` prints in JSON (`moss::state_query::StateDetails`).
    async fn state_query(&self, id: u64) -> Result<String, Error> {
        let _call = self.daemon.call();
        let id = match id {
            0 => self.daemon.moss.active_state().unwrap_or(0),
            id => id,
        };
        let details = self
            .daemon
            .moss
            .state_details(id)
            .await
            .map_err(query_error)?;
        serde_json::to_string(&details).map_err(|error| Error::Failed(error.to_string()))
    }

    /// Check the store and trees (read-only; `Repair` fixes what it finds).
    async fn verify(&self) -> Result<Vec<Problem>, Error> {
        let _call = self.daemon.call();
        let issues = self.daemon.moss.verify().await.map_err(query_error)?;
        Ok(issues.into_iter().map(Problem::from).collect())
    }

    /// What start-up recovery found; reported once, to the first client that asks.
    fn recovery(&self) -> (bool, String) {
        let _call = self.daemon.call();
        match self
            .daemon
            .recovery
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
        {
            Some(message) => (true, message),
            None => (false, String::new()),
        }
    }

    /// The boot entries a boot sync manages, and why there are none when boot entries cannot
    /// be managed on this system (read-only).
    async fn boot_entries(&self) -> Result<(Vec<BootEntry>, String), Error> {
        let _call = self.daemon.call();
        let config = moss::boot::BootConfig::load(&self.daemon.root)
            .map_err(|error| Error::Failed(error.to_string()))?;
        let status = self
            .daemon
            .moss
            .boot_status(&config)
            .await
            .map_err(query_error)?;
        let entries = status.entries.into_iter().map(BootEntry::from).collect();
        Ok((entries, status.error.unwrap_or_default()))
    }

    /// Set the background update policy; mossd writes it to its configuration file.
    async fn set_update_policy(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        policy: String,
    ) -> Result<(), Error> {
        let _call = self.daemon.call();
        limits::text(&policy, "update policy")?;
        let policy: crate::config::UpdatePolicy = policy.parse().map_err(Error::InvalidArgument)?;
        authority::authorize(connection, &header, actions::CONFIGURE).await?;
        self.change_setting(Setting::UpdatePolicy(policy)).await?;
        tracing::info!(policy = policy.as_str(), "update policy set");
        let _ = self.update_policy_changed(&emitter).await;
        Ok(())
    }

    /// Set how many states older than the active one to keep after each transaction that
    /// makes a state (0: keep all); mossd writes it to its configuration file.
    async fn set_keep_states(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        count: u32,
    ) -> Result<(), Error> {
        let _call = self.daemon.call();
        authority::authorize(connection, &header, actions::CONFIGURE).await?;
        self.change_setting(Setting::KeepStates(count)).await?;
        tracing::info!(count, "keep-states set");
        let _ = self.keep_states_changed(&emitter).await;
        Ok(())
    }

    fn transactions(&self) -> Vec<OwnedObjectPath> {
        let _call = self.daemon.call();
        self.daemon
            .unfinished()
            .iter()
            .filter_map(|text| path(text).ok())
            .collect()
    }

    async fn install(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        packages: Vec<String>,
        local_files: Vec<OwnedFd>,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let _call = self.daemon.call();
        limits::names(&packages, "package")?;
        self.daemon.incoming.check_count(local_files.len())?;
        // Authorised first: nothing of a refused caller is read or written.
        let caller = authority::authorize(connection, &header, actions::INSTALL).await?;
        let received = self.daemon.incoming.receive(into_fds(local_files)).await?;
        let targets = install_targets(packages, received.paths());
        let work = work(Change::Install { targets }, &options);
        self.create_for(caller, actions::INSTALL, work, received.keep(), &options)
            .await
    }

    async fn remove(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        packages: Vec<String>,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        limits::names(&packages, "package")?;
        let change = Change::Remove { packages };
        self.change(&header, connection, actions::REMOVE, change, &options)
            .await
    }

    async fn sync(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        update: bool,
        allow_downgrade: bool,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let change = Change::Sync {
            update,
            allow_downgrade,
        };
        self.change(&header, connection, actions::SYNC, change, &options)
            .await
    }

    async fn refresh(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        repository: String,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let change = Change::Refresh {
            repository: (!repository.is_empty()).then_some(repository),
        };
        self.change(&header, connection, actions::REFRESH, change, &options)
            .await
    }

    /// Make the system exactly a system model, given as text (never a path), with the sync
    /// permission.
    async fn sync_model(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        model: String,
        origin: String,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        limits::model(&model)?;
        limits::text(&origin, "model origin")?;
        let change = Change::SyncModel { model, origin };
        self.change(&header, connection, actions::SYNC, change, &options)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn repo_add(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        name: String,
        uri: String,
        priority: u64,
        comment: String,
        keys: Vec<String>,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        for (value, what) in [
            (&name, "repository name"),
            (&uri, "URI"),
            (&comment, "comment"),
        ] {
            limits::text(value, what)?;
        }
        limits::names(&keys, "key")?;
        let root_index = options
            .get("root-index")
            .and_then(|value| <&str>::try_from(value).ok())
            .map(str::to_owned);
        if let Some(spec) = &root_index {
            limits::text(spec, "root-index")?;
        }
        let change = Change::RepoAdd {
            name,
            uri,
            priority,
            comment,
            keys,
            root_index,
        };
        self.change(
            &header,
            connection,
            actions::REPO_CONFIGURE,
            change,
            &options,
        )
        .await
    }

    async fn repo_remove(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        name: String,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let change = Change::RepoRemove { name };
        self.change(
            &header,
            connection,
            actions::REPO_CONFIGURE,
            change,
            &options,
        )
        .await
    }

    async fn repo_enable(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        name: String,
        enable: bool,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let change = Change::RepoEnable { name, enable };
        self.change(
            &header,
            connection,
            actions::REPO_CONFIGURE,
            change,
            &options,
        )
        .await
    }

    async fn state_activate(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        id: u64,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let flag = |name: &str| {
            options
                .get(name)
                .and_then(|value| bool::try_from(value).ok())
                .unwrap_or(false)
        };
        let change = Change::StateActivate {
            id,
            skip_triggers: flag("skip-triggers"),
            skip_boot: flag("skip-boot"),
        };
        self.change(
            &header,
            connection,
            actions::STATE_ACTIVATE,
            change,
            &options,
        )
        .await
    }

    async fn state_prune(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        keep: u64,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let include_newer = options
            .get("include-newer")
            .and_then(|value| bool::try_from(value).ok())
            .unwrap_or(false);
        let change = Change::StatePrune {
            keep,
            include_newer,
        };
        self.change(&header, connection, actions::STATE_PRUNE, change, &options)
            .await
    }

    async fn state_remove(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        ids: Vec<u64>,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        limits::count(ids.len(), "states")?;
        let change = Change::StateRemove { ids };
        self.change(&header, connection, actions::STATE_PRUNE, change, &options)
            .await
    }

    async fn repair(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        self.change(
            &header,
            connection,
            actions::STATE_PRUNE,
            Change::Repair,
            &options,
        )
        .await
    }

    async fn cache_prune(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        self.change(
            &header,
            connection,
            actions::STATE_PRUNE,
            Change::CachePrune,
            &options,
        )
        .await
    }

    async fn boot_sync(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        esp: String,
        xbootldr: String,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        let directory = |text: String| (!text.is_empty()).then(|| PathBuf::from(text));
        let change = Change::BootSync {
            esp: directory(esp),
            xbootldr: directory(xbootldr),
        };
        self.change(
            &header,
            connection,
            actions::BOOT_CONFIGURE,
            change,
            &options,
        )
        .await
    }

    async fn compose_build_root(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        directory: String,
        packages: Vec<String>,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        limits::names(&packages, "package")?;
        limits::text(&directory, "build root")?;
        let change = Change::BuildRoot {
            directory: PathBuf::from(directory),
            packages,
        };
        self.change(&header, connection, actions::BUILD_ROOT, change, &options)
            .await
    }

    async fn automatic_update(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        options: Options,
    ) -> Result<OwnedObjectPath, Error> {
        self.create(
            &header,
            connection,
            actions::SYNC,
            Work::AutomaticUpdate,
            &options,
        )
        .await
    }

    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    #[zbus(property)]
    fn root(&self) -> String {
        self.daemon.root.display().to_string()
    }

    #[zbus(property)]
    fn active_state(&self) -> u64 {
        self.daemon.moss.active_state().unwrap_or(0)
    }

    #[zbus(property)]
    fn update_policy(&self) -> String {
        self.daemon.update_policy().as_str().to_owned()
    }

    /// States older than the active one kept after each transaction (0: all).
    #[zbus(property)]
    fn keep_states(&self) -> u32 {
        self.daemon.keep_states()
    }

    #[zbus(property)]
    fn pending_updates(&self) -> u32 {
        self.daemon
            .pending_updates
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

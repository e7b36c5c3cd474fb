//! Client proxies for the manager and transaction interfaces.

use std::collections::HashMap;

use zbus::{
    proxy,
    wire::{Fd, OwnedObjectPath, Variant},
};

use crate::wire::{
    BootEntry, Details, Diff, File, HistoryEntry, Package, PlanWire, Problem, Repository, State,
};

/// Options of a change (`a{sv}`); unknown keys are ignored by the daemon.
pub type Options<'a> = HashMap<&'a str, Variant<'a>>;

/// The daemon's manager object.
#[proxy(
    interface = "com.serpentos.Moss1",
    default_service = "com.serpentos.Moss1",
    default_path = "/com/serpentos/Moss1"
)]
pub trait Manager {
    /// Installed packages, optionally only the explicitly installed ones.
    fn list_installed(&self, explicit_only: bool) -> zbus::Result<Vec<Package>>;
    /// Packages the enabled repositories offer.
    fn list_available(&self) -> zbus::Result<Vec<Package>>;
    /// Details of the packages providing each request.
    fn info(&self, requests: &[&str], files: bool) -> zbus::Result<Vec<Details>>;
    /// Packages whose name or summary contains `keyword`.
    fn search(&self, keyword: &str, installed_only: bool) -> zbus::Result<Vec<Package>>;
    /// Files of installed packages whose path contains `needle`.
    fn search_file(&self, needle: &str) -> zbus::Result<Vec<File>>;
    /// States, newest first.
    fn list_states(&self) -> zbus::Result<Vec<State>>;
    /// What changed from one state to another.
    fn state_diff(&self, from: u64, to: u64) -> zbus::Result<Diff>;
    /// Configured repositories.
    fn list_repositories(&self) -> zbus::Result<Vec<Repository>>;
    /// Transactions of this daemon run and of earlier ones, oldest first.
    fn history(&self) -> zbus::Result<Vec<HistoryEntry>>;
    /// The plan of an install (nothing changes).
    fn plan_install(&self, packages: &[&str], local_files: Vec<Fd<'_>>) -> zbus::Result<PlanWire>;
    /// The plan of a remove.
    fn plan_remove(&self, packages: &[&str]) -> zbus::Result<PlanWire>;
    /// The plan of a sync.
    fn plan_sync(&self, allow_downgrade: bool) -> zbus::Result<PlanWire>;
    /// Check the store and every tree against the recorded hashes (nothing is changed).
    fn verify(&self) -> zbus::Result<Vec<Problem>>;
    /// What start-up recovery found: `(interrupted, message)`.
    fn recovery(&self) -> zbus::Result<(bool, String)>;
    /// Transactions waiting, queued or running.
    fn transactions(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// The boot entries a boot sync manages (one per kept state with a kernel), and why there
    /// are none when boot entries cannot be managed here (empty otherwise).
    fn boot_entries(&self) -> zbus::Result<(Vec<BootEntry>, String)>;
    /// Set the background update policy (`none`, `check`, `download`, `apply`); mossd writes
    /// it to its configuration file. Needs `com.serpentos.moss.configure`.
    #[zbus(allow_interactive_auth)]
    fn set_update_policy(&self, policy: &str) -> zbus::Result<()>;
    /// Set how many states older than the active one mossd keeps after each transaction that
    /// makes a state (0: all); written to its configuration file. Needs
    /// `com.serpentos.moss.configure`.
    #[zbus(allow_interactive_auth)]
    fn set_keep_states(&self, count: u32) -> zbus::Result<()>;

    /// Install packages (names, providers) and local stones passed as file descriptors.
    fn install(
        &self,
        packages: &[&str],
        local_files: Vec<Fd<'_>>,
        options: Options<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// Remove packages.
    fn remove(&self, packages: &[&str], options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Update installed packages, refreshing first when `update`.
    fn sync(
        &self,
        update: bool,
        allow_downgrade: bool,
        options: Options<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// Make the system exactly this system model (its KDL text; `origin` names it in errors).
    fn sync_model(
        &self,
        model: &str,
        origin: &str,
        options: Options<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// The system model a state recorded (0: the active state).
    fn state_export(&self, id: u64) -> zbus::Result<String>;
    /// One state in full as a JSON object (0: the active state).
    fn state_query(&self, id: u64) -> zbus::Result<String>;
    /// Refresh one repository, or all when `repository` is empty.
    fn refresh(&self, repository: &str, options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Add a repository; `keys` are its minisign public keys (none: unsigned).
    #[allow(clippy::too_many_arguments)]
    fn repo_add(
        &self,
        name: &str,
        uri: &str,
        priority: u64,
        comment: &str,
        keys: &[&str],
        options: Options<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// Remove a repository.
    fn repo_remove(&self, name: &str, options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Enable or disable a repository.
    fn repo_enable(
        &self,
        name: &str,
        enable: bool,
        options: Options<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// Activate a state.
    fn state_activate(&self, id: u64, options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Remove older states, keeping the newest `keep`.
    fn state_prune(&self, keep: u64, options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Remove states.
    fn state_remove(&self, ids: &[u64], options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Verify and repair the store and trees.
    fn repair(&self, options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Remove unused packages and files.
    fn cache_prune(&self, options: Options<'_>) -> zbus::Result<OwnedObjectPath>;
    /// Write the boot entries; empty strings let discovery find the ESP and XBOOTLDR.
    fn boot_sync(
        &self,
        esp: &str,
        xbootldr: &str,
        options: Options<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// Install packages into a build root at `directory`, sharing the store.
    fn compose_build_root(
        &self,
        directory: &str,
        packages: &[&str],
        options: Options<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    /// Run the background update policy now (what the update timer calls).
    fn automatic_update(&self, options: Options<'_>) -> zbus::Result<OwnedObjectPath>;

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// The installation root it serves.
    #[zbus(property)]
    fn root(&self) -> zbus::Result<String>;
    /// The active state (0 for none).
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<u64>;
    /// The background update policy.
    #[zbus(property)]
    fn update_policy(&self) -> zbus::Result<String>;
    /// States older than the active one kept after each transaction (0: all).
    #[zbus(property)]
    fn keep_states(&self) -> zbus::Result<u32>;
    /// Updates found by the last background check.
    #[zbus(property)]
    fn pending_updates(&self) -> zbus::Result<u32>;
}

/// A transaction object.
#[proxy(
    interface = "com.serpentos.Moss1.Transaction",
    default_service = "com.serpentos.Moss1"
)]
pub trait Transaction {
    /// Queue the transaction; call after subscribing to its signals.
    fn start(&self) -> zbus::Result<()>;
    /// Cancel it, until its point of no return.
    fn cancel(&self) -> zbus::Result<()>;
    /// Events numbered above `since` (replay for late or reconnecting clients).
    fn events(&self, since: u64) -> zbus::Result<Vec<(u64, String)>>;
    /// `(status, message, outcome JSON)`; the outcome is empty until it finished.
    fn result(&self) -> zbus::Result<(String, String, String)>;

    /// A numbered progress event ([`crate::wire::Progress`] as JSON).
    #[zbus(signal)]
    fn event(&self, sequence: u64, progress: &str) -> zbus::Result<()>;
    /// The transaction ended: status, message, outcome JSON.
    #[zbus(signal)]
    fn finished(&self, status: &str, message: &str, outcome: &str) -> zbus::Result<()>;

    /// What it does.
    #[zbus(property)]
    fn role(&self) -> zbus::Result<String>;
    /// `waiting`, `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[zbus(property)]
    fn status(&self) -> zbus::Result<String>;
    /// Percentage done; never goes down.
    #[zbus(property)]
    fn percentage(&self) -> zbus::Result<u32>;
    /// Whether `Cancel` can still stop it.
    #[zbus(property)]
    fn cancellable(&self) -> zbus::Result<bool>;
    /// The uid of the caller who created it.
    #[zbus(property)]
    fn initiator(&self) -> zbus::Result<u32>;
    /// The number of the last event.
    #[zbus(property)]
    fn sequence(&self) -> zbus::Result<u64>;
}

//! [`Moss`]: one opened installation with its database and store. The single owner of the
//! installation: every change goes through it, under the installation lock.

use std::{
    collections::{HashMap, HashSet},
    io,
    path::{Path, PathBuf},
};

use crate::{
    blit::BlitError,
    db::{Database, DatabaseError, Selection, State, StoredPackage},
    events::{Event, SharedReporter},
    installation::{Installation, InstallationError},
    journal::Journal,
    store::{Store, StoreError, Unpacked},
    vfs::{Vfs, VfsError},
};

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Opening the installation failed.
    #[error(transparent)]
    Installation(#[from] InstallationError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A package could not enter the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The new tree has conflicts.
    #[error(transparent)]
    Vfs(#[from] VfsError),
    /// Writing a tree failed.
    #[error(transparent)]
    Blit(#[from] BlitError),
    /// A request names a state that does not exist.
    #[error("state {id} does not exist; {hint} shows the states", id = .0, hint = crate::hint::moss("state list"))]
    UnknownState(u64),
    /// A request names the active state where another is needed.
    #[error("state {0} is the active state")]
    ActiveState(u64),
    /// Nothing installed or available provides what a request names.
    #[error("{0}")]
    NotFound(String),
    /// A package named for removal is not installed.
    #[error("{name} is not installed; {hint} shows what is", name = .0, hint = crate::hint::moss("list installed"))]
    NotInstalled(String),
    /// A request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// A request names a repository that is not configured (or not enabled).
    #[error("repository {id} is not configured or is disabled; {hint} shows the repositories", id = .0, hint = crate::hint::moss("repo list"))]
    UnknownRepository(String),
    /// The resolver found no set of packages for the request.
    #[error(transparent)]
    Resolve(#[from] crate::resolve::ResolveError),
    /// A package id is selected but not in the store.
    #[error("package {0} is not in the store; refresh the repositories and retry")]
    MissingPackage(String),
    /// A filesystem step failed.
    #[error("{action} failed for {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A repository definition is wrong.
    #[error(transparent)]
    Config(#[from] crate::repository::ConfigError),
    /// A system model is wrong, names what no repository has, or cannot be written.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] crate::repository::FetchError),
    /// A repository index is unusable.
    #[error(transparent)]
    Index(#[from] crate::repository::IndexError),
    /// The change was cancelled before its point of no return.
    #[error("the change was cancelled; nothing was changed")]
    Cancelled,
    /// Boot entries could not be managed.
    #[error(transparent)]
    Boot(#[from] crate::boot::BootError),
    /// A trigger could not be loaded or a transaction trigger failed.
    #[error(transparent)]
    Trigger(#[from] crate::triggers::TriggerError),
    /// The new state would lose what recovery needs (`--force` overrides).
    #[error(transparent)]
    Unrecoverable(#[from] crate::recovery_guard::UnrecoverableError),
    /// Any other failure with a message naming the object and the fix.
    #[error("{0}")]
    Other(String),
}

/// Build an I/O error mapper naming the action and the path.
pub(crate) fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EngineError {
    let path = path.to_owned();
    move |source| EngineError::Io {
        action,
        path,
        source,
    }
}

/// What start-up recovery found and did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    /// The state the interrupted transaction was switching to.
    pub to: u64,
    /// The state the root was on before it.
    pub from: Option<u64>,
    /// Whether the switch had happened (and was completed) or not (and was undone).
    pub completed: bool,
}

/// An installed package with its selection flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The package.
    pub package: StoredPackage,
    /// Whether the user asked for it.
    pub explicit: bool,
}

/// One opened installation.
#[derive(Debug)]
pub struct Moss {
    pub(crate) installation: Installation,
    pub(crate) db: Database,
    pub(crate) store: Store,
    pub(crate) reporter: SharedReporter,
    pub(crate) cancellation: crate::cancel::Cancellation,
    pub(crate) fetch_options: crate::repository::FetchOptions,
    /// Made at the first fetch, then kept: building an HTTP client loads the TLS roots (a cost
    /// commands that fetch nothing should not pay), and one client keeps its connections for
    /// the next refresh or download.
    pub(crate) fetcher: std::sync::OnceLock<crate::repository::Fetcher>,
    /// The model a `sync --model` is applying, in place of `/etc/moss/system-model.kdl`.
    pub(crate) model_override: std::sync::Mutex<Option<crate::model::SystemModel>>,
    /// Whether changes may lose what recovery needs (`--force`).
    pub(crate) force: crate::recovery_guard::Force,
    recovery: Option<Recovery>,
}

impl Moss {
    /// Open the installation at `root` (waiting for the lock), migrate its database and recover
    /// an interrupted transaction.
    pub async fn open(
        root: impl Into<PathBuf>,
        reporter: SharedReporter,
    ) -> Result<Self, EngineError> {
        let installation = Installation::open_waiting(root)?;
        let db = Database::open(&installation.paths().database()).await?;
        Self::open_with(installation, db, reporter, true).await
    }

    /// Open an existing installation for queries only, under a shared lock: readers run side by
    /// side and writers wait for them. Nothing is created or written, so any user who can read
    /// the installation may query it.
    ///
    /// An installation left needing recovery or a migration is reopened for writing when this
    /// process may write it (root querying after a crash or an upgrade finishes that work);
    /// anyone else reads it as it is, with a warning, or is told to have it upgraded.
    pub async fn open_for_reading(
        root: impl Into<PathBuf>,
        reporter: SharedReporter,
    ) -> Result<Self, EngineError> {
        let installation = Installation::open_shared(root)?;
        let paths = installation.paths().clone();
        let db = Database::open_read_only(&paths.database()).await?;
        let (found, wanted) = db.schema_version().await?;
        let interrupted = paths.journal().exists();
        if (interrupted || found < wanted) && installation.writable() {
            db.close().await;
            drop(installation);
            return Self::open(paths.root, reporter).await;
        }
        if found < wanted {
            db.close().await;
            return Err(InstallationError::OutdatedDatabase {
                root: paths.root,
                found,
                wanted,
            }
            .into());
        }
        if interrupted {
            reporter.report(Event::Warning {
                message: format!(
                    "a transaction on {} was interrupted and awaits recovery by a user who may write it (or mossd); this answer may miss its last change",
                    paths.root.display()
                ),
            });
        }
        Self::open_with(installation, db, reporter, false).await
    }

    async fn open_with(
        installation: Installation,
        db: Database,
        reporter: SharedReporter,
        writer: bool,
    ) -> Result<Self, EngineError> {
        let store = Store::new(installation.paths().assets());
        // Only writers fill the store; readers must not create its directories.
        if writer {
            let assets = installation.paths().assets();
            store
                .prepare()
                .map_err(io_error("preparing the store", &assets))?;
        }
        let mut moss = Self {
            installation,
            db,
            store,
            reporter,
            cancellation: crate::cancel::Cancellation::default(),
            fetch_options: crate::repository::FetchOptions::default(),
            fetcher: std::sync::OnceLock::new(),
            model_override: std::sync::Mutex::new(None),
            force: crate::recovery_guard::Force::default(),
            recovery: None,
        };
        // Recovery changes the installation: only a writer does it (a reader found no journal).
        if writer {
            moss.recovery = moss.recover().await?;
        }
        if let Some(recovery) = &moss.recovery {
            moss.reporter.report(Event::Warning {
                message: if recovery.completed {
                    format!("an interrupted transaction to state {} was completed", recovery.to)
                } else {
                    format!(
                        "an interrupted transaction to state {} was rolled back; the system is on state {}",
                        recovery.to,
                        recovery.from.map_or_else(|| "none".to_owned(), |id| id.to_string())
                    )
                },
            });
        }
        Ok(moss)
    }

    /// Download with these options from now on (timeouts, retries, the hosts whose old URIs
    /// are migrated).
    pub fn set_fetch_options(&mut self, options: crate::repository::FetchOptions) {
        self.fetch_options = options;
        self.fetcher = std::sync::OnceLock::new();
    }

    /// The installation.
    pub fn installation(&self) -> &Installation {
        &self.installation
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cancellation flag of the change in progress: a daemon cancels through it from another
    /// task, and resets it between changes.
    pub fn cancellation(&self) -> &crate::cancel::Cancellation {
        &self.cancellation
    }

    /// What start-up recovery did, if a transaction had been interrupted.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The active state id.
    pub fn active_state(&self) -> Option<u64> {
        self.installation.active_state()
    }

    /// The selections of the active state.
    pub async fn active_selections(&self) -> Result<Vec<Selection>, EngineError> {
        let Some(active) = self.active_state() else {
            return Ok(Vec::new());
        };
        Ok(self
            .db
            .state(active)
            .await?
            .map(|state| state.selections)
            .unwrap_or_default())
    }

    /// Installed packages of the active state, sorted by name.
    pub async fn installed(&self) -> Result<Vec<Installed>, EngineError> {
        let selections = self.active_selections().await?;
        let explicit: HashMap<&str, bool> = selections
            .iter()
            .map(|selection| (selection.package.as_str(), selection.explicit))
            .collect();
        let ids: Vec<String> = selections
            .iter()
            .map(|selection| selection.package.clone())
            .collect();
        let mut installed: Vec<Installed> = self
            .db
            .packages_by_id(&ids)
            .await?
            .into_iter()
            .map(|package| Installed {
                explicit: explicit.get(package.id.as_str()).copied().unwrap_or(false),
                package,
            })
            .collect();
        installed.sort_by(|a, b| a.package.meta.name.cmp(&b.package.meta.name));
        Ok(installed)
    }

    /// Put local stone files into the store and record them; returns what was read.
    ///
    /// Packages are unpacked on blocking threads, a few at a time; everything is checked (layout
    /// rules, digests) before the database learns about any of them.
    pub async fn add_stones(
        &self,
        stones: Vec<(PathBuf, Option<String>, String)>,
    ) -> Result<Vec<Unpacked>, EngineError> {
        let started = std::time::Instant::now();
        let store = self.store.clone();
        let reporter = self.reporter.clone();
        let unpacked = tokio::task::spawn_blocking(move || unpack_all(&store, &reporter, stones))
            .await
            .map_err(|error| EngineError::Other(format!("unpacking was interrupted: {error}")))??;
        tracing::debug!(elapsed = ?started.elapsed(), "unpacked into the store");
        // Everything unpacked must be durable before the database points at it.
        sync_filesystem(self.store.root())?;
        tracing::debug!(elapsed = ?started.elapsed(), "store synced");
        // Keep a copy of local stones in the download cache: a damaged store can then always be
        // repaired from it (a hard link when possible, so it costs no space).
        for (unpacked, origin) in &unpacked {
            if origin == "local" {
                keep_local_stone(self.installation.paths(), &unpacked.id, &unpacked.source)?;
            }
        }
        let records: Vec<(StoredPackage, Vec<stone::Layout>)> = unpacked
            .iter()
            .map(|(unpacked, origin)| {
                (
                    StoredPackage {
                        id: unpacked.id.clone(),
                        meta: unpacked.meta.clone(),
                        origin: origin.clone(),
                        uri: None,
                    },
                    unpacked.layouts.clone(),
                )
            })
            .collect();
        self.db.add_packages(&records).await?;
        let hashes: Vec<(u128, [u8; 32])> = unpacked
            .iter()
            .flat_map(|(unpacked, _)| unpacked.blake3.iter().copied())
            .collect();
        self.db.add_asset_hashes(&hashes).await?;
        tracing::debug!(elapsed = ?started.elapsed(), "packages recorded");
        crate::failpoint::point("unpacked");
        Ok(unpacked.into_iter().map(|(unpacked, _)| unpacked).collect())
    }

    /// Compose the tree of a set of selections (checking conflicts), without writing anything.
    pub async fn compose(&self, selections: &[Selection]) -> Result<Vfs, EngineError> {
        let ids: Vec<String> = selections
            .iter()
            .map(|selection| selection.package.clone())
            .collect();
        let started = std::time::Instant::now();
        let packages = self.db.packages_by_id(&ids).await?;
        tracing::debug!(elapsed = ?started.elapsed(), "compose: packages read");
        let known: HashSet<&str> = packages.iter().map(|package| package.id.as_str()).collect();
        if let Some(missing) = ids.iter().find(|id| !known.contains(id.as_str())) {
            return Err(EngineError::MissingPackage(missing.clone()));
        }
        let names: HashMap<String, String> = packages
            .into_iter()
            .map(|package| (package.id, package.meta.name))
            .collect();
        let layouts = self.db.layouts(&ids).await?;
        tracing::debug!(elapsed = ?started.elapsed(), "compose: layouts read");
        tokio::task::spawn_blocking(move || {
            let vfs = Vfs::build(
                layouts
                    .iter()
                    .map(|(id, layouts)| (names[id].as_str(), layouts.as_slice())),
            );
            tracing::debug!(elapsed = ?started.elapsed(), "compose: tree built");
            vfs
        })
        .await
        .map_err(|error| {
            EngineError::Other(format!("composing the tree was interrupted: {error}"))
        })?
        .map_err(EngineError::from)
    }

    async fn recover(&self) -> Result<Option<Recovery>, EngineError> {
        let paths = self.installation.paths();
        let journal_path = paths.journal();
        let Some(journal) =
            Journal::read(&journal_path).map_err(io_error("reading the journal", &journal_path))?
        else {
            // A tree left in staging without a journal never reached the swap: drop it.
            let staging = paths.staging().join("usr");
            if staging.exists() {
                remove_tree(&staging)?;
            }
            return Ok(None);
        };
        let completed = self.active_state() == Some(journal.to);
        let staging = paths.staging().join("usr");
        if completed {
            if let Some(state) = &journal.record
                && self.db.state(state.id).await?.is_none()
            {
                self.db.add_state(state).await?;
            }
            if staging.exists() {
                self.archive_staging(journal.from)?;
            }
        } else if staging.exists() {
            remove_tree(&staging)?;
        }
        Journal::remove(&journal_path).map_err(io_error("removing the journal", &journal_path))?;
        Ok(Some(Recovery {
            to: journal.to,
            from: journal.from,
            completed,
        }))
    }

    /// Move the tree in staging (the previous `/usr`) to the archive of `from`, or drop it.
    pub(crate) fn archive_staging(&self, from: Option<u64>) -> Result<(), EngineError> {
        let paths = self.installation.paths();
        let staging = paths.staging().join("usr");
        let keep = from.filter(|id| crate::installation::read_state_id(&staging) == Some(*id));
        match keep {
            Some(id) => {
                let archive = paths.archive(id);
                if archive.join("usr").exists() {
                    remove_tree(&archive.join("usr"))?;
                }
                std::fs::create_dir_all(&archive)
                    .map_err(io_error("creating the archive", &archive))?;
                std::fs::rename(&staging, archive.join("usr"))
                    .map_err(io_error("archiving the previous tree", &staging))?;
            }
            None => remove_tree(&staging)?,
        }
        Ok(())
    }

    /// States recorded, oldest first.
    pub async fn states(&self) -> Result<Vec<State>, EngineError> {
        Ok(self.db.states().await?)
    }
}

fn unpack_all(
    store: &Store,
    reporter: &SharedReporter,
    stones: Vec<(PathBuf, Option<String>, String)>,
) -> Result<Vec<(Unpacked, String)>, EngineError> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |count| count.get())
        .min(8);
    let queue = std::sync::Mutex::new(stones.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let Some((position, (path, id, origin))) = queue.lock().expect("queue").pop()
                    else {
                        return;
                    };
                    let result = match id {
                        Some(id) => store.unpack_with_id(&path, id),
                        None => store.unpack(&path),
                    };
                    if let Ok(unpacked) = &result {
                        reporter.report(Event::Unpacked {
                            package: unpacked.meta.name.clone(),
                        });
                    }
                    results
                        .lock()
                        .expect("results")
                        .push((position, result.map(|unpacked| (unpacked, origin))));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(position, _)| *position);
    results
        .into_iter()
        .map(|(_, result)| result.map_err(EngineError::from))
        .collect()
}

fn keep_local_stone(
    paths: &crate::installation::Paths,
    id: &str,
    source: &Path,
) -> Result<(), EngineError> {
    let cached = paths.download(id);
    if cached.exists() || source == cached {
        return Ok(());
    }
    if let Some(parent) = cached.parent() {
        std::fs::create_dir_all(parent).map_err(io_error("caching a local package", parent))?;
    }
    let part = cached.with_extension("part");
    if std::fs::hard_link(source, &part).is_err() {
        std::fs::copy(source, &part).map_err(io_error("caching a local package", &part))?;
    }
    std::fs::rename(&part, &cached).map_err(io_error("caching a local package", &cached))
}

/// Flush the filesystem holding `path` (one `syncfs`, instead of an fsync per file).
pub(crate) fn sync_filesystem(path: &Path) -> Result<(), EngineError> {
    let file = std::fs::File::open(path).map_err(io_error("opening for sync", path))?;
    nix::unistd::syncfs(&file)
        .map_err(|errno| io_error("syncing the filesystem", path)(errno.into()))
}

/// Remove a tree that moss itself created (staging or an archive). Refuses anything else.
pub(crate) fn remove_tree(path: &Path) -> Result<(), EngineError> {
    let inside_moss = path
        .components()
        .any(|component| component.as_os_str() == ".moss");
    if !inside_moss {
        return Err(EngineError::Other(format!(
            "refusing to remove {}: only moss's own staging and archive trees are ever removed",
            path.display()
        )));
    }
    // Directories may lack write bits; root ignores them, anyone else must restore them first.
    if !nix::unistd::geteuid().is_root() {
        make_directories_writable(path);
    }
    std::fs::remove_dir_all(path).map_err(io_error("removing the tree", path))
}

fn make_directories_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let mode = metadata.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                make_directories_writable(&entry.path());
            }
        }
    }
}

//! Switching the installation to a state: compose, build the tree, swap `/usr`, archive.
//!
//! The new tree is built in staging from the nearest tree that can be reused (an archived state
//! whose packages differ least), touching only the differences; with none, it is blitted in full.
//! Archived trees are only a cache: any state can always be rebuilt from the store.

use std::{
    collections::HashSet,
    fs,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    blit::{BlitStats, Blitter},
    db::{Selection, State},
    engine::{EngineError, Moss, io_error, remove_tree, sync_filesystem},
    events::{Event, Phase},
    failpoint,
    installation::read_state_id,
    journal::{Journal, sync_parent},
    vfs::Vfs,
};

/// Links at the root that point into `/usr`, re-created after each switch.
const ROOT_LINKS: [(&str, &str); 5] = [
    ("bin", "usr/bin"),
    ("sbin", "usr/sbin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib"),
    ("lib32", "usr/lib32"),
];

/// What an activation runs besides the swap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivateOptions {
    /// Run no system triggers (the offline rollback at boot: `/etc` is the booted system's and
    /// may not be writable yet). Transaction triggers still make their part of a tree that is
    /// not this state's own archived one.
    pub skip_triggers: bool,
    /// Leave the boot entries alone.
    pub skip_boot: bool,
}

/// What a switch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The state now active.
    pub state: u64,
    /// The state that was active before.
    pub previous: Option<u64>,
    /// The archived state whose tree was reused, if any.
    pub reused: Option<u64>,
    /// What the blit did.
    pub blit: BlitStats,
}

impl Moss {
    /// Record a new state with these selections and make it active.
    pub async fn apply(
        &self,
        selections: Vec<Selection>,
        summary: &str,
    ) -> Result<Switch, EngineError> {
        self.check_recoverable(&selections).await?;
        let states = self.db.states().await?;
        let next = next_state_id(
            &states,
            self.installation.paths().trees().as_path(),
            self.active_state(),
        );
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |duration| duration.as_secs() as i64);
        let state = State {
            id: next,
            created,
            summary: summary.to_owned(),
            description: None,
            selections,
        };
        self.switch_with_base(state, true, true, ActivateOptions::default())
            .await
    }

    /// Make an existing state active again (rollback or roll forward). No new state is recorded.
    pub async fn activate(&self, id: u64) -> Result<Switch, EngineError> {
        self.activate_with(id, ActivateOptions::default()).await
    }

    /// [`Moss::activate`], optionally without triggers or boot entry updates.
    pub async fn activate_with(
        &self,
        id: u64,
        options: ActivateOptions,
    ) -> Result<Switch, EngineError> {
        if self.active_state() == Some(id) {
            return Err(EngineError::ActiveState(id));
        }
        let state = self
            .db
            .state(id)
            .await?
            .ok_or(EngineError::UnknownState(id))?;
        self.switch_with_base(state, false, true, options).await
    }

    /// Rebuild the active state's tree from the store and swap it in (repairs a damaged `/usr`).
    pub async fn reblit_active(&self) -> Result<Switch, EngineError> {
        let id = self
            .active_state()
            .ok_or_else(|| EngineError::Other("there is no active state to repair".into()))?;
        let state = self
            .db
            .state(id)
            .await?
            .ok_or(EngineError::UnknownState(id))?;
        self.switch_with_base(state, false, false, ActivateOptions::default())
            .await
    }

    async fn switch_with_base(
        &self,
        state: State,
        record: bool,
        reuse: bool,
        options: ActivateOptions,
    ) -> Result<Switch, EngineError> {
        let started = std::time::Instant::now();
        let paths = self.installation.paths().clone();
        let previous = self.active_state();
        // Pick the archived tree closest to the target, and load its cached description while
        // the target tree is composed (two cores, two jobs).
        let base = if reuse {
            self.nearest_archive(&state, previous).await?
        } else {
            None
        };
        // A target that only adds packages to the base is built from the base tree on disk,
        // touching and reading only what the added packages bring.
        if record
            && let Some(base_state) = &base
            && let Some(blit) = self.try_add_only(&state, base_state).await?
        {
            return self
                .promote(
                    state,
                    record,
                    previous,
                    Some(base_state.id),
                    blit,
                    started,
                    options,
                )
                .await;
        }
        let cached_base = base.as_ref().map(|base_state| {
            let cache = tree_cache(&paths.trees(), base_state.id);
            tokio::task::spawn_blocking(move || {
                fs::read(cache).ok().and_then(|bytes| Vfs::decode(&bytes))
            })
        });
        // Conflicts are found here, before anything is written.
        let vfs = self.compose(&state.selections).await?;
        tracing::debug!(elapsed = ?started.elapsed(), base = ?base.as_ref().map(|state| state.id), "composed");
        let base_vfs = match (&base, cached_base) {
            (Some(base_state), Some(handle)) => match handle.await.ok().flatten() {
                Some(cached) => Some(cached),
                None => Some(self.compose(&base_state.selections).await?),
            },
            _ => None,
        };
        let staging = paths.staging();
        let staging_usr = staging.join("usr");
        fs::create_dir_all(&staging).map_err(io_error("creating staging", &staging))?;
        if staging_usr.exists() {
            remove_tree(&staging_usr)?;
        }
        self.reporter.report(Event::PhaseStarted {
            phase: Phase::Blit,
            total: vfs.len() as u64,
        });
        let store = self.store.clone();
        let archive_usr = base
            .as_ref()
            .map(|base_state| paths.archive(base_state.id).join("usr"));
        let target_id = state.id;
        let trees = paths.trees();
        let blit = {
            let staging_usr = staging_usr.clone();
            tokio::task::spawn_blocking(move || -> Result<(BlitStats, Vfs), EngineError> {
                let mut blitter = Blitter::new(&store);
                let stats = match (archive_usr, base_vfs) {
                    (Some(archive_usr), Some(base_vfs)) => {
                        fs::rename(&archive_usr, &staging_usr)
                            .map_err(io_error("reusing an archived tree", &archive_usr))?;
                        if let Some(parent) = archive_usr.parent() {
                            let _ = fs::remove_dir(parent);
                        }
                        blitter.update(&base_vfs, &vfs, &staging_usr)?
                    }
                    _ => blitter.full(&vfs, &staging_usr)?,
                };
                write_state_id(&staging_usr, target_id)?;
                // Cache the tree's description for when this tree is reused as a base.
                let cache = tree_cache(&trees, target_id);
                if let Some(parent) = cache.parent() {
                    fs::create_dir_all(parent).map_err(io_error("caching the tree", parent))?;
                }
                fs::write(&cache, vfs.encode()).map_err(io_error("caching the tree", &cache))?;
                Ok((stats, vfs))
            })
            .await
            .map_err(|error| {
                EngineError::Other(format!("building the tree was interrupted: {error}"))
            })??
            .0
        };
        self.promote(
            state,
            record,
            previous,
            base.map(|base_state| base_state.id),
            blit,
            started,
            options,
        )
        .await
    }

    /// Swap the tree in staging in: transaction triggers, flush, journal, exchange, record,
    /// archive, then system triggers and boot entries.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn promote(
        &self,
        state: State,
        record: bool,
        previous: Option<u64>,
        reused: Option<u64>,
        blit: BlitStats,
        started: std::time::Instant,
        options: ActivateOptions,
    ) -> Result<Switch, EngineError> {
        let paths = self.installation.paths().clone();
        let staging_usr = paths.staging().join("usr");
        self.reporter
            .report(Event::PhaseFinished { phase: Phase::Blit });
        tracing::debug!(elapsed = ?started.elapsed(), ?blit, "blitted");
        failpoint::point("blitted");
        // Transaction triggers, before anything live changes: a failure drops the staged tree.
        // Their output is part of the tree (depmod's module index, caches), so they run for every
        // tree but the untouched archived tree of this very state, which already holds it, even
        // when triggers are skipped: skipping leaves out the system triggers, which write `/etc`
        // and `/var`. (The VM test found a state rolled back at boot from another state's tree
        // without a module index: its kernel could load no module.)
        let run_transaction = reused != Some(state.id);
        let run_system = !options.skip_triggers;
        let pending = match self
            .run_transaction_triggers(&state, previous, run_transaction, run_system)
            .await
        {
            Ok(pending) => run_system.then_some(pending),
            Err(error) => {
                remove_tree(&staging_usr)?;
                if record {
                    let _ = fs::remove_file(tree_cache(&paths.trees(), state.id));
                }
                return Err(error);
            }
        };

        // A new state records the model it is built from; an activated or repaired tree gets
        // the model its state recorded (a tree built from another state's must not keep that
        // one's).
        let recorded_model = if record {
            Some(self.model_for(&state.selections).await?)
        } else {
            fs::read_to_string(model_cache(&paths.trees(), state.id)).ok()
        };
        if let Some(text) = &recorded_model {
            self.record_model(&staging_usr, text)?;
            if record {
                let cache = model_cache(&paths.trees(), state.id);
                crate::repository::write_atomically(&cache, |file| {
                    std::io::Write::write_all(file, text.as_bytes())
                })
                .map_err(io_error("keeping the state's system model", &cache))?;
            }
        }
        // Everything in staging must be on disk before `/usr` points at it.
        sync_filesystem(&staging_usr)?;
        tracing::debug!(elapsed = ?started.elapsed(), "staging synced");
        // The point of no return: a cancel that came first abandons the staged tree (the next
        // change replaces staging), one that comes later is refused.
        self.cancellation.commit()?;
        let journal = Journal::new(previous, state.id, record.then(|| state.clone()));
        let journal_path = paths.journal();
        journal
            .write(&journal_path)
            .map_err(io_error("writing the journal", &journal_path))?;
        failpoint::point("journaled");

        self.reporter.report(Event::PhaseStarted {
            phase: Phase::Swap,
            total: 1,
        });
        let usr = paths.usr();
        if !usr.exists() {
            fs::create_dir(&usr).map_err(io_error("creating /usr", &usr))?;
        }
        exchange(&staging_usr, &usr)?;
        sync_parent(&usr).map_err(io_error("syncing the root", &usr))?;
        failpoint::point("swapped");
        if record {
            self.db.add_state(&state).await?;
        }
        failpoint::point("recorded");
        self.archive_staging(previous)?;
        failpoint::point("archived");
        tracing::debug!(elapsed = ?started.elapsed(), "switched");
        Journal::remove(&journal_path).map_err(io_error("removing the journal", &journal_path))?;
        update_root_links(&paths.root)?;
        self.adopt_state_model(recorded_model.as_deref())?;
        self.reporter
            .report(Event::PhaseFinished { phase: Phase::Swap });
        if let Some(pending) = pending {
            self.run_system_triggers(state.id, pending).await?;
        }
        if !options.skip_boot {
            self.sync_boot_after_change().await;
        }
        Ok(Switch {
            state: state.id,
            previous,
            reused,
            blit,
        })
    }

    /// The archived state whose packages differ least from `target`'s, when reusing it is
    /// cheaper than a full blit.
    async fn nearest_archive(
        &self,
        target: &State,
        active: Option<u64>,
    ) -> Result<Option<State>, EngineError> {
        let paths = self.installation.paths();
        let wanted: HashSet<&str> = target
            .selections
            .iter()
            .map(|selection| selection.package.as_str())
            .collect();
        let mut best: Option<(usize, State)> = None;
        for state in self.db.states().await? {
            if Some(state.id) == active {
                continue;
            }
            let usr = paths.archive(state.id).join("usr");
            if read_state_id(&usr) != Some(state.id) {
                continue;
            }
            let have: HashSet<&str> = state
                .selections
                .iter()
                .map(|selection| selection.package.as_str())
                .collect();
            let difference = wanted.symmetric_difference(&have).count();
            if difference < wanted.len().max(1)
                && best.as_ref().is_none_or(|(cost, _)| difference < *cost)
            {
                best = Some((difference, state));
            }
        }
        Ok(best.map(|(_, state)| state))
    }
}

/// Where the system model a state recorded is kept beside its trees.
pub(crate) fn model_cache(trees: &Path, state: u64) -> std::path::PathBuf {
    trees.join("models").join(format!("{state}.kdl"))
}

/// Where the description of a state's tree is cached.
pub(crate) fn tree_cache(trees: &Path, state: u64) -> std::path::PathBuf {
    trees.join("vfs").join(state.to_string())
}

/// The next unused state id: above every recorded state, archived tree and the active one.
fn next_state_id(states: &[State], trees: &Path, active: Option<u64>) -> u64 {
    let recorded = states.iter().map(|state| state.id).max().unwrap_or(0);
    let archived = fs::read_dir(trees)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0);
    recorded.max(archived).max(active.unwrap_or(0)) + 1
}

pub(crate) fn write_state_id(usr: &Path, id: u64) -> Result<(), EngineError> {
    let path = usr.join(".stateID");
    let temporary = usr.join(".stateID.part");
    fs::write(&temporary, id.to_string()).map_err(io_error("writing the state id", &temporary))?;
    fs::rename(&temporary, &path).map_err(io_error("writing the state id", &path))
}

/// Atomically exchange two directories (`renameat2(RENAME_EXCHANGE)`).
fn exchange(first: &Path, second: &Path) -> Result<(), EngineError> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(
        AT_FDCWD,
        first,
        AT_FDCWD,
        second,
        RenameFlags::RENAME_EXCHANGE,
    )
    .map_err(|errno| io_error("swapping /usr", second)(errno.into()))
}

/// Make `ROOT/bin` and friends point into `/usr` (atomically, only when wrong).
pub(crate) fn update_root_links(root: &Path) -> Result<(), EngineError> {
    for (name, target) in ROOT_LINKS {
        let link = root.join(name);
        if fs::read_link(&link).is_ok_and(|current| current == Path::new(target)) {
            continue;
        }
        if fs::symlink_metadata(&link).is_ok_and(|metadata| !metadata.file_type().is_symlink()) {
            // A real directory or file is the administrator's; never replace it.
            continue;
        }
        let next = root.join(format!("{name}.next"));
        let _ = fs::remove_file(&next);
        std::os::unix::fs::symlink(target, &next)
            .map_err(io_error("creating a root link", &next))?;
        fs::rename(&next, &link).map_err(io_error("creating a root link", &link))?;
    }
    Ok(())
}

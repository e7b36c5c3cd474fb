//! Triggers in a transaction: which run, where, and what is recorded.
//!
//! Transaction triggers match every path of the new state: the tree they write into is new (or
//! rebuilt) each time, so its caches must be made again. System triggers match what changed
//! between the previous state and the new one (added, changed and removed paths): their work
//! lives in `/etc` and `/var`, which persist, so re-running them for an unrelated package is
//! waste (upstream runs them all on every transaction). That holds only while `/etc` and `/var`
//! are known to match the previous state (the stamp names it): after a failed or interrupted
//! run, the next transaction runs every system trigger the new state matches. So does the first
//! transaction, and `regenerate_system` (`moss state verify --fix` after `/etc` or `/var` was
//! lost).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use super::{Environment, Planned, Sandbox, Scope, TriggerError, load, plan, run_action};
use crate::{
    engine::{EngineError, Moss, io_error},
    events::{Event, Phase},
    transaction::tree_cache,
    vfs::Vfs,
};

/// What one trigger action did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TriggerRun {
    /// Its scope.
    pub scope: Scope,
    /// The trigger.
    pub trigger: String,
    /// The command line (or `delete PATHS`).
    pub command: String,
    /// Whether it succeeded.
    pub success: bool,
    /// How it ended.
    pub status: String,
    /// What it printed.
    pub output: String,
}

/// System triggers planned before the swap (their definitions come from the new tree).
#[derive(Debug, Default)]
pub(crate) struct PendingSystem {
    pub(crate) plan: Vec<Planned>,
    pub(crate) transaction_runs: Vec<TriggerRun>,
}

/// Where `moss state verify` finds which state's system triggers last completed.
pub(crate) fn system_stamp(root: &Path) -> PathBuf {
    root.join("var/lib/moss/system-triggers")
}

impl Moss {
    /// Before the swap: load the scopes that run from the staged tree (a bad file fails here,
    /// with the live system untouched), run the transaction triggers in a container over the
    /// staged `/usr` when `run_transaction`, and plan the system triggers for what changed since
    /// `previous` when `run_system`.
    pub(crate) async fn run_transaction_triggers(
        &self,
        target: &crate::db::State,
        previous: Option<u64>,
        run_transaction: bool,
        run_system: bool,
    ) -> Result<PendingSystem, EngineError> {
        let paths = self.installation.paths().clone();
        let staging_usr = paths.staging().join("usr");
        let environment = self.environment();
        let scope = |run: bool, scope: Scope| -> Result<Vec<_>, EngineError> {
            Ok(if run {
                load(&staging_usr, scope)?
            } else {
                Vec::new()
            })
        };
        let transaction = scope(run_transaction, Scope::Transaction)?;
        let system = scope(run_system, Scope::System)?;
        if transaction.is_empty() && system.is_empty() {
            return Ok(PendingSystem::default());
        }
        let new = self.tree_of(target).await?;
        let system_plan = if system.is_empty() {
            Vec::new()
        } else {
            // Only what changed, when `/etc` and `/var` are known to match the previous state;
            // otherwise (a failed or interrupted run, a first install) everything the state
            // matches.
            let stamped = fs::read_to_string(system_stamp(&paths.root))
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok());
            let old = match previous {
                Some(previous) if stamped == Some(previous) => self.state_tree(previous).await.ok(),
                _ => None,
            };
            let changed = changed_paths(old.as_ref(), &new);
            plan(
                Scope::System,
                &system,
                changed.iter().map(String::as_str),
                &paths.root,
                environment,
            )?
        };
        let mut transaction_runs = Vec::new();
        if run_transaction {
            let all: Vec<String> = absolute_paths(&new);
            // Inhibitor paths of transaction triggers are looked up in the staged tree.
            let transaction_plan = plan(
                Scope::Transaction,
                &transaction,
                all.iter().map(String::as_str),
                &paths.staging(),
                environment,
            )?;
            let isolation = paths.trees().join("isolation");
            if !transaction_plan.is_empty() {
                fs::create_dir_all(&isolation)
                    .map_err(io_error("preparing the container", &isolation))?;
            }
            let sandbox = Sandbox {
                root: isolation,
                binds: vec![(staging_usr, "usr")],
                scratch: vec!["etc", "var", "run"],
            };
            transaction_runs = self
                .run_triggers(Scope::Transaction, transaction_plan, Some(sandbox))
                .await?;
        }
        Ok(PendingSystem {
            plan: system_plan,
            transaction_runs,
        })
    }

    /// After the swap: run the planned system triggers against the live root, in order, each
    /// failure reported and recorded on the state with the transaction triggers' runs.
    pub(crate) async fn run_system_triggers(
        &self,
        state: u64,
        pending: PendingSystem,
    ) -> Result<Vec<TriggerRun>, EngineError> {
        let system = if pending.plan.is_empty() {
            Vec::new()
        } else {
            let sandbox = self.system_sandbox()?;
            self.run_triggers(Scope::System, pending.plan, sandbox)
                .await?
        };
        let mut runs = pending.transaction_runs;
        runs.extend(system.iter().cloned());
        if !runs.is_empty() {
            self.db.record_trigger_runs(state, &runs).await?;
        }
        // The stamp says which state `/etc` and `/var` match; a state that changes nothing for
        // system triggers moves it on, a root that never had them does not get one.
        let stamp = system_stamp(&self.installation.paths().root);
        if system.iter().all(|run| run.success) && (!system.is_empty() || stamp.exists()) {
            self.stamp_system(state)?;
        }
        Ok(system)
    }

    /// Installer mode: the transaction triggers over the tree in `directory/usr`, then the
    /// system triggers over `directory` (its `usr`, `etc` and `var`), each matching every path
    /// of `tree`, in the same containers a transaction uses. A failing transaction trigger
    /// fails the composition; a failing system trigger is a warning, as after a switch.
    pub(crate) async fn run_triggers_in(
        &self,
        directory: &Path,
        tree: &Vfs,
    ) -> Result<Vec<TriggerRun>, EngineError> {
        let usr = directory.join("usr");
        let transaction = load(&usr, Scope::Transaction)?;
        let system = load(&usr, Scope::System)?;
        if transaction.is_empty() && system.is_empty() {
            return Ok(Vec::new());
        }
        let all = absolute_paths(tree);
        let isolation = self.installation.paths().trees().join("isolation");
        fs::create_dir_all(&isolation).map_err(io_error("preparing the container", &isolation))?;
        let transaction_plan = plan(
            Scope::Transaction,
            &transaction,
            all.iter().map(String::as_str),
            directory,
            Environment::Chroot,
        )?;
        let mut runs = self
            .run_triggers(
                Scope::Transaction,
                transaction_plan,
                Some(Sandbox {
                    root: isolation.clone(),
                    binds: vec![(usr.clone(), "usr")],
                    scratch: vec!["etc", "var", "run"],
                }),
            )
            .await?;
        let system_plan = plan(
            Scope::System,
            &system,
            all.iter().map(String::as_str),
            directory,
            Environment::Chroot,
        )?;
        let mut binds = vec![(usr, "usr")];
        for top in ["etc", "var"] {
            let host = directory.join(top);
            fs::create_dir_all(&host).map_err(io_error("preparing the target", &host))?;
            binds.push((host, top));
        }
        runs.extend(
            self.run_triggers(
                Scope::System,
                system_plan,
                Some(Sandbox {
                    root: isolation,
                    binds,
                    scratch: vec!["run"],
                }),
            )
            .await?,
        );
        Ok(runs)
    }

    /// Run every system trigger of the active state over all of its paths: remakes what
    /// `/etc` and `/var` need (users, groups, directories, defaults) without reinstalling.
    pub async fn regenerate_system(&self) -> Result<Vec<TriggerRun>, EngineError> {
        let Some(active) = self.active_state() else {
            return Ok(Vec::new());
        };
        let paths = self.installation.paths();
        let tree = self.state_tree(active).await?;
        let triggers = load(&paths.usr(), Scope::System)?;
        let all = absolute_paths(&tree);
        let planned = plan(
            Scope::System,
            &triggers,
            all.iter().map(String::as_str),
            &paths.root,
            self.environment(),
        )?;
        let runs = self
            .run_triggers(Scope::System, planned, self.system_sandbox()?)
            .await?;
        let mut recorded: Vec<TriggerRun> = self
            .db
            .trigger_runs(active)
            .await?
            .into_iter()
            .filter(|run| run.scope == Scope::Transaction)
            .collect();
        recorded.extend(runs.iter().cloned());
        self.db.record_trigger_runs(active, &recorded).await?;
        if runs.iter().all(|run| run.success) {
            self.stamp_system(active)?;
        }
        Ok(runs)
    }

    /// The trigger runs recorded on a state, in the order they ran.
    pub async fn trigger_runs(&self, state: u64) -> Result<Vec<TriggerRun>, EngineError> {
        Ok(self.db.trigger_runs(state).await?)
    }

    /// Whether `/etc` and `/var` hold what the active state's system triggers make: the stamp
    /// names the active state and `/etc` is not empty. `None` when they do, else why not.
    pub(crate) async fn system_problem(&self) -> Result<Option<String>, EngineError> {
        let Some(active) = self.active_state() else {
            return Ok(None);
        };
        let paths = self.installation.paths();
        let triggers = load(&paths.usr(), Scope::System)?;
        if triggers.is_empty() {
            return Ok(None);
        }
        let tree = self.state_tree(active).await?;
        let all = absolute_paths(&tree);
        let planned = plan(
            Scope::System,
            &triggers,
            all.iter().map(String::as_str),
            &paths.root,
            self.environment(),
        )?;
        if planned.is_empty() {
            return Ok(None);
        }
        let root = &paths.root;
        let etc_empty = fs::read_dir(root.join("etc"))
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(true);
        if etc_empty {
            return Ok(Some(
                "missing or empty: the system triggers remake them".to_owned(),
            ));
        }
        let stamp = fs::read_to_string(system_stamp(root)).ok();
        Ok(
            match stamp.and_then(|text| text.trim().parse::<u64>().ok()) {
                Some(id) if id == active => None,
                Some(id) => Some(format!(
                    "system triggers last completed for state {id}, not the active state {active}"
                )),
                None => Some("system triggers have not completed for the active state".to_owned()),
            },
        )
    }

    fn stamp_system(&self, state: u64) -> Result<(), EngineError> {
        let stamp = system_stamp(&self.installation.paths().root);
        if let Some(parent) = stamp.parent() {
            fs::create_dir_all(parent).map_err(io_error("recording system triggers", parent))?;
        }
        fs::write(&stamp, state.to_string()).map_err(io_error("recording system triggers", &stamp))
    }

    fn environment(&self) -> Environment {
        if self.installation.paths().root == Path::new("/") {
            Environment::Live
        } else {
            Environment::Chroot
        }
    }

    /// System triggers run directly on the live root `/`; for any other root, in a container
    /// holding that root's `/usr`, `/etc` and `/var` (read-write).
    fn system_sandbox(&self) -> Result<Option<Sandbox>, EngineError> {
        let paths = self.installation.paths();
        if paths.root == Path::new("/") {
            return Ok(None);
        }
        let mut binds = vec![(paths.usr(), "usr")];
        for top in ["etc", "var"] {
            let directory = paths.root.join(top);
            fs::create_dir_all(&directory).map_err(io_error("preparing the root", &directory))?;
            binds.push((directory, top));
        }
        let isolation = paths.trees().join("isolation");
        fs::create_dir_all(&isolation).map_err(io_error("preparing the container", &isolation))?;
        Ok(Some(Sandbox {
            root: isolation,
            binds,
            scratch: vec!["run"],
        }))
    }

    /// Run planned triggers in order. A transaction trigger that fails ends the run with its
    /// output; a failing system trigger is reported and the next one runs.
    async fn run_triggers(
        &self,
        scope: Scope,
        planned: Vec<Planned>,
        sandbox: Option<Sandbox>,
    ) -> Result<Vec<TriggerRun>, EngineError> {
        let total: u64 = planned
            .iter()
            .map(|trigger| trigger.actions.len() as u64)
            .sum();
        if total == 0 {
            return Ok(Vec::new());
        }
        self.reporter.report(Event::PhaseStarted {
            phase: Phase::Triggers,
            total,
        });
        let mut runs = Vec::new();
        let mut done = 0;
        for trigger in planned {
            for action in trigger.actions {
                let command = action.command_line();
                let sandbox = sandbox.clone();
                let outcome =
                    tokio::task::spawn_blocking(move || run_action(&action, sandbox.as_ref()))
                        .await
                        .map_err(|error| {
                            EngineError::Other(format!("running triggers was interrupted: {error}"))
                        })?;
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(source) if scope == Scope::Transaction => {
                        return Err(TriggerError::Spawn {
                            trigger: trigger.name,
                            command,
                            source,
                        }
                        .into());
                    }
                    Err(source) => super::container::Outcome {
                        success: false,
                        status: format!("could not start ({source})"),
                        output: String::new(),
                    },
                };
                done += 1;
                self.reporter.report(Event::Progress {
                    phase: Phase::Triggers,
                    done,
                    total,
                });
                if !outcome.success {
                    if scope == Scope::Transaction {
                        return Err(TriggerError::Failed {
                            trigger: trigger.name,
                            command,
                            status: outcome.status,
                            output: outcome.output,
                        }
                        .into());
                    }
                    self.reporter.report(Event::Warning {
                        message: format!(
                            "system trigger {} failed: `{command}` {}; {} runs it again{}",
                            trigger.name,
                            outcome.status,
                            crate::hint::moss("state verify --fix"),
                            if outcome.output.is_empty() {
                                String::new()
                            } else {
                                format!("\n{}", outcome.output)
                            }
                        ),
                    });
                }
                runs.push(TriggerRun {
                    scope,
                    trigger: trigger.name.clone(),
                    command,
                    success: outcome.success,
                    status: outcome.status,
                    output: outcome.output,
                });
            }
        }
        self.reporter.report(Event::PhaseFinished {
            phase: Phase::Triggers,
        });
        Ok(runs)
    }

    /// The tree of a recorded state: its cached description, else composed from the database.
    pub(crate) async fn state_tree(&self, id: u64) -> Result<Vfs, EngineError> {
        let state = self
            .db
            .state(id)
            .await?
            .ok_or(EngineError::UnknownState(id))?;
        self.tree_of(&state).await
    }

    /// The tree of a state, recorded or not: its cached description, else composed.
    pub(crate) async fn tree_of(&self, state: &crate::db::State) -> Result<Vfs, EngineError> {
        let cache = tree_cache(&self.installation.paths().trees(), state.id);
        if let Some(vfs) = fs::read(&cache).ok().and_then(|bytes| Vfs::decode(&bytes)) {
            return Ok(vfs);
        }
        self.compose(&state.selections).await
    }
}

/// Every path of a tree as `/usr/...`, with `/usr` itself.
fn absolute_paths(tree: &Vfs) -> Vec<String> {
    std::iter::once("/usr".to_owned())
        .chain(tree.iter().map(|(path, _)| format!("/usr/{path}")))
        .collect()
}

/// Paths added, changed or removed between two trees (all of `new` when there is no old one).
fn changed_paths(old: Option<&Vfs>, new: &Vfs) -> BTreeSet<String> {
    let Some(old) = old else {
        return absolute_paths(new).into_iter().collect();
    };
    let mut changed: BTreeSet<String> = new
        .iter()
        .filter(|(path, node)| !old.get(path).is_some_and(|before| before.same_file(node)))
        .map(|(path, _)| format!("/usr/{path}"))
        .collect();
    changed.extend(
        old.iter()
            .filter(|(path, _)| new.get(path).is_none())
            .map(|(path, _)| format!("/usr/{path}")),
    );
    changed
}

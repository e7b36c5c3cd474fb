//! The engine's side of the system model ([`crate::model`]): when `ROOT/etc/moss/system-model.kdl`
//! exists it names the repositories and the explicit packages, `sync` makes the system exactly
//! that, and install, remove and the repository commands edit it. Every new state records its
//! model in its own `/usr/lib/system-model.kdl`, so activating a state brings its model back.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use stone::Dependency;

use crate::{
    db::Selection,
    engine::{EngineError, Moss, io_error},
    events::Event,
    model::{ADMIN_MODEL, ModelError, STATE_MODEL, SystemModel},
    operations::Plan,
    resolve::{Policy, Request},
};

impl Moss {
    /// Where the administrator's model lives.
    pub fn model_path(&self) -> PathBuf {
        self.installation.paths().root.join(ADMIN_MODEL)
    }

    /// The model that manages this system: the one a `sync --model` is applying, else
    /// `/etc/moss/system-model.kdl` when it exists.
    pub fn system_model(&self) -> Result<Option<SystemModel>, EngineError> {
        if let Some(model) = self.model_override.lock().expect("not poisoned").clone() {
            return Ok(Some(model));
        }
        Ok(SystemModel::load(&self.model_path())?)
    }

    /// Tell that a model manages the system (unless it says `disable_warning #true`).
    pub(crate) fn warn_if_modelled(&self) -> Result<(), EngineError> {
        if let Some(model) = self.system_model()?
            && !model.disable_warning
        {
            self.reporter.report(Event::Warning {
                message: format!(
                    "this system is managed by the system model {}: its repositories and \
                     packages are edited to match this change (`disable_warning #true` in it \
                     silences this notice)",
                    model.path.display()
                ),
            });
        }
        Ok(())
    }

    /// The model of a state: what its tree recorded in `/usr/lib/system-model.kdl`, or for a
    /// state that recorded none, one made of the configured repositories and its explicit
    /// packages. `None` means the active state.
    pub async fn state_model(&self, id: Option<u64>) -> Result<String, EngineError> {
        let id = match id.or(self.active_state()) {
            Some(id) => id,
            None => return Err(EngineError::NotFound("there is no state yet".to_owned())),
        };
        let state = self
            .db
            .state(id)
            .await?
            .ok_or(EngineError::UnknownState(id))?;
        let paths = self.installation.paths();
        let usr = if self.active_state() == Some(id) {
            paths.usr()
        } else {
            paths.archive(id).join("usr")
        };
        let recorded = usr.join(STATE_MODEL.trim_start_matches("usr/"));
        for path in [
            crate::transaction::model_cache(&paths.trees(), id),
            recorded.clone(),
        ] {
            match std::fs::read_to_string(&path) {
                Ok(text) => return Ok(text),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ModelError::Read { path, source }.into()),
            }
        }
        let names = self.explicit_names(&state.selections).await?;
        let repositories = crate::repository::load(&paths.root)?;
        Ok(SystemModel::generate(&recorded, &repositories, &names).to_text())
    }

    /// Plan making the installed packages exactly what `model` lists (with their
    /// dependencies), from the model's repositories; everything else is removed.
    pub async fn plan_model_sync(&self, model: &SystemModel) -> Result<Plan, EngineError> {
        let installed = self.active_selections().await?;
        let candidates = self.candidates(&installed).await?;
        let available = self.available().await?;
        for entry in &model.packages {
            let dependency = &entry.dependency;
            let offered = available.iter().any(|offer| {
                (dependency.kind == stone::DependencyKind::Name
                    && dependency.target == offer.meta.name)
                    || offer.meta.provides.contains(dependency)
            });
            if !offered {
                return Err(ModelError::UnknownPackage {
                    path: model.path.clone(),
                    line: entry.line,
                    package: entry.text.clone(),
                }
                .into());
            }
        }
        let wanted: Vec<Dependency> = model
            .packages
            .iter()
            .map(|entry| entry.dependency.clone())
            .collect();
        let request = Request {
            install: wanted.clone(),
            keep: Vec::new(),
            lock: Vec::new(),
            policy: Policy::Upgrade,
        };
        let selected = if wanted.is_empty() {
            Vec::new()
        } else {
            self.solve(&candidates.list, &request).await?
        };
        let explicit: HashSet<String> = candidates
            .list
            .iter()
            .filter(|candidate| {
                wanted
                    .iter()
                    .any(|dependency| crate::operations::provides(candidate, dependency))
            })
            .map(|candidate| candidate.id.clone())
            .collect();
        self.plan_from(&installed, &candidates, selected, |id, _| {
            explicit.contains(id)
        })
    }

    /// The model text a new state with `selections` records: the managing model with its
    /// packages set to the explicit ones (entries that still name an explicit package stay as
    /// written), or without a model, one made of the configured repositories.
    pub(crate) async fn model_for(&self, selections: &[Selection]) -> Result<String, EngineError> {
        let names = self.explicit_names(selections).await?;
        let Some(mut model) = self.system_model()? else {
            let repositories = crate::repository::load(&self.installation.paths().root)?;
            let path = self.installation.paths().root.join(STATE_MODEL);
            return Ok(SystemModel::generate(&path, &repositories, &names).to_text());
        };
        let explicit = self.explicit_packages(selections).await?;
        model.set_packages(&names, |entry| {
            explicit.iter().any(|(name, provides)| {
                (entry.dependency.kind == stone::DependencyKind::Name
                    && entry.dependency.target == *name)
                    || provides.contains(&entry.dependency)
            })
        });
        Ok(model.to_text())
    }

    /// Write the recorded model into a staged tree's `/usr`.
    pub(crate) fn record_model(&self, staging_usr: &Path, text: &str) -> Result<(), EngineError> {
        let path = staging_usr.join(STATE_MODEL.trim_start_matches("usr/"));
        crate::repository::write_atomically(&path, |file| {
            std::io::Write::write_all(file, text.as_bytes())
        })
        .map_err(io_error("recording the system model", &path))
    }

    /// After a switch: a system managed by a model gets the new state's model as its own (a
    /// recorded state's edited model, or the model an activated state recorded: a rollback
    /// rolls the model back too).
    pub(crate) fn adopt_state_model(&self, recorded: Option<&str>) -> Result<(), EngineError> {
        let managed = self.model_override.lock().expect("not poisoned").is_some()
            || self.model_path().exists();
        if !managed {
            return Ok(());
        }
        let text = match recorded {
            Some(text) => text.to_owned(),
            None => {
                let path = self.installation.paths().root.join(STATE_MODEL);
                match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    // A state from before models were recorded: keep the current model.
                    Err(_) => return Ok(()),
                }
            }
        };
        let path = self.model_path();
        crate::repository::write_atomically(&path, |file| {
            std::io::Write::write_all(file, text.as_bytes())
        })
        .map_err(|source| ModelError::Write { path, source })?;
        Ok(())
    }

    /// Use `model` (its repositories) until the scope is dropped;
    /// [`Moss::adopt_state_model`] writes it to `/etc` when a switch succeeds meanwhile.
    pub(crate) fn model_scope(&self, model: SystemModel) -> ModelScope<'_> {
        *self.model_override.lock().expect("not poisoned") = Some(model);
        ModelScope(self)
    }

    async fn explicit_names(&self, selections: &[Selection]) -> Result<Vec<String>, EngineError> {
        let mut names: Vec<String> = self
            .explicit_packages(selections)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn explicit_packages(
        &self,
        selections: &[Selection],
    ) -> Result<Vec<(String, Vec<Dependency>)>, EngineError> {
        // Owned ids: a set of borrows held across the await trips rustc's Send check
        // (rust-lang/rust#102211) in the daemon's spawned futures.
        let mut explicit: HashSet<String> = HashSet::new();
        for selection in selections {
            if selection.explicit {
                explicit.insert(selection.package.clone());
            }
        }
        let stored = self.db.packages().await?;
        let mut packages = Vec::new();
        for package in stored {
            if explicit.contains(&package.id) {
                packages.push((package.meta.name, package.meta.provides));
            }
        }
        Ok(packages)
    }
}

/// While alive, a `sync --model`'s model stands in for `/etc/moss/system-model.kdl`.
pub(crate) struct ModelScope<'a>(&'a Moss);

impl Drop for ModelScope<'_> {
    fn drop(&mut self) {
        *self.0.model_override.lock().expect("not poisoned") = None;
    }
}

//! Build roots for boulder: a separate installation in a caller-given directory that shares this
//! installation's store, download cache and repositories, so composing one costs no downloads
//! and no copies of contents already stored.

use std::{fs, path::Path};

use crate::{
    engine::{EngineError, Moss, io_error},
    operations::Target,
    repository::{self, AddMode},
    requests::Outcome,
};

impl Moss {
    /// Install `packages` into the installation at `directory` (created when missing), with this
    /// installation's active repositories and its store.
    ///
    /// The store and download cache are shared through symlinks under `DIRECTORY/.moss`: trees
    /// hard-link store files, so the directory must be on the same filesystem as this root.
    pub async fn compose_build_root(
        &self,
        directory: &Path,
        packages: &[String],
    ) -> Result<Outcome, EngineError> {
        let host = self.installation.paths().clone();
        if !directory.is_absolute() {
            return Err(EngineError::Other(format!(
                "the build root {} must be an absolute path",
                directory.display()
            )));
        }
        let canonical_root = fs::canonicalize(&host.root)
            .map_err(io_error("resolving the installation root", &host.root))?;
        fs::create_dir_all(directory).map_err(io_error("creating the build root", directory))?;
        let canonical =
            fs::canonicalize(directory).map_err(io_error("resolving the build root", directory))?;
        if canonical == canonical_root || canonical_root.starts_with(&canonical) {
            return Err(EngineError::Other(format!(
                "the build root {} would contain the installation {}; choose an empty directory",
                directory.display(),
                host.root.display()
            )));
        }
        let build = crate::installation::Paths::new(&canonical);
        // Checked before the shared store is linked in: a refused root is left as it was.
        crate::installation::check_usr(&build)?;
        fs::create_dir_all(build.moss.join("assets"))
            .map_err(io_error("creating the build root's store", &build.moss))?;
        for (shared, link) in [
            (host.assets(), build.assets()),
            (host.moss.join("cache"), build.moss.join("cache")),
        ] {
            fs::create_dir_all(&shared).map_err(io_error("creating the shared store", &shared))?;
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(&shared, &link)
                    .map_err(io_error("linking the shared store", &link))?;
            }
        }
        for repository in self.repositories()?.into_iter().filter(|repo| repo.active) {
            repository::add(&canonical, &repository, AddMode::Replace)?;
            let source = host.repositories().join(&repository.id);
            let target = build.repositories().join(&repository.id);
            copy_files(&source, &target)?;
        }
        let moss = Moss::open(&canonical, self.reporter.clone()).await?;
        let targets: Vec<Target> = packages.iter().cloned().map(Target::Package).collect();
        let plan = moss.plan_install(&targets).await;
        let result = match plan {
            Ok(plan) if plan.is_empty() => Ok(Outcome {
                message: format!("The build root {} has everything", canonical.display()),
                plan: Some(plan),
                ..Outcome::default()
            }),
            Ok(plan) => moss
                .execute(&plan, "Build root")
                .await
                .map(|switch| Outcome {
                    message: format!(
                        "Build root {} is on state {} ({} packages added)",
                        canonical.display(),
                        switch.state,
                        plan.add.len()
                    ),
                    state: Some(switch.state),
                    previous: switch.previous,
                    plan: Some(plan),
                    ..Outcome::default()
                }),
            Err(error) => Err(error),
        };
        moss.database().close().await;
        result
    }
}

/// Copy the regular files of `source` (one level) into `target`.
fn copy_files(source: &Path, target: &Path) -> Result<(), EngineError> {
    fs::create_dir_all(target).map_err(io_error("creating the repository cache", target))?;
    let Ok(entries) = fs::read_dir(source) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            let destination = target.join(entry.file_name());
            fs::copy(&path, &destination)
                .map_err(io_error("copying the repository cache", &destination))?;
        }
    }
    Ok(())
}

//! `boulder chroot RECIPE`: a shell in the build root of a recipe, as upstream offers. A build
//! records how its container is made (`WORK/chroot.json`: the binds, networking, the job's
//! directories and a `.profile` exporting the recipe environment, every action as a function
//! `a_NAME` and every definition as `d_NAME`); the root stays after a failed build or one run
//! with `--keep-work`, and `boulder chroot` enters it the same way a build step does.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    container::{self, Bind, ContainerSpec},
    recipe::Recipe,
};

/// File name of the record beside the build root.
const RECORD: &str = "chroot.json";

/// How to enter a build root again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChrootRecord {
    /// The root's directory on the host.
    pub rootfs: PathBuf,
    /// Every bind of the build's steps.
    pub binds: Vec<Bind>,
    /// Whether the recipe asked for the network.
    pub networking: bool,
    /// The job's build directory in the container (the shell's `HOME`).
    pub home: String,
    /// Where the host keeps that directory (the `.profile` goes there).
    pub host_home: PathBuf,
    /// The shell's working directory.
    pub workdir: String,
    /// The `.profile` of the shell.
    pub profile: String,
}

/// Why the build root could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum ChrootError {
    /// The recipe did not load.
    #[error(transparent)]
    Recipe(#[from] crate::recipe::RecipeError),
    /// No kept build root.
    #[error(
        "there is no build root for {id} in {}: run `boulder build {recipe} --keep-work` first (a failed build keeps its root too)",
        .work.display()
    )]
    NoRoot {
        /// `name-version-release`.
        id: String,
        /// The recipe as given.
        recipe: String,
        /// Where the root would be.
        work: PathBuf,
    },
    /// The record is unreadable.
    #[error("cannot read {}: {message}", .path.display())]
    Record {
        /// The record.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The container failed.
    #[error(transparent)]
    Container(#[from] container::ContainerError),
}

/// The work directory of a recipe's builds (`CACHE/work/NAME-VERSION-RELEASE`).
pub fn work_directory(cache_dir: &Path, recipe: &Recipe) -> PathBuf {
    cache_dir.join("work").join(format!(
        "{}-{}-{}",
        recipe.source.name, recipe.source.version, recipe.source.release
    ))
}

/// Keep how the container of a build is made, for `boulder chroot`.
pub fn record(work: &Path, record: &ChrootRecord) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    std::fs::write(work.join(RECORD), text)
}

/// Open a login shell (or run `command` with `bash -c`) in the kept build root of `recipe`,
/// on this terminal; returns its exit status.
pub fn enter(
    recipe: &Path,
    cache_dir: &Path,
    helper: &Path,
    command: &[String],
) -> Result<i32, ChrootError> {
    let loaded = Recipe::load(recipe)?;
    let work = work_directory(cache_dir, &loaded.recipe);
    let path = work.join(RECORD);
    let text = std::fs::read(&path).map_err(|_| ChrootError::NoRoot {
        id: format!(
            "{}-{}-{}",
            loaded.recipe.source.name, loaded.recipe.source.version, loaded.recipe.source.release
        ),
        recipe: recipe.display().to_string(),
        work: work.clone(),
    })?;
    let record: ChrootRecord =
        serde_json::from_slice(&text).map_err(|error| ChrootError::Record {
            path: path.clone(),
            message: error.to_string(),
        })?;
    let profile_path = record.host_home.join(".profile");
    std::fs::create_dir_all(&record.host_home)
        .and_then(|()| std::fs::write(&profile_path, &record.profile))
        .map_err(|error| ChrootError::Record {
            path: profile_path.clone(),
            message: error.to_string(),
        })?;
    let mut program = vec!["/usr/bin/bash".to_owned(), "--login".to_owned()];
    if !command.is_empty() {
        program.push("-c".to_owned());
        program.push(command.join(" "));
    }
    let spec = ContainerSpec {
        rootfs: record.rootfs,
        binds: record.binds,
        networking: record.networking,
        workdir: PathBuf::from(record.workdir),
        command: program,
        env: vec![
            ("HOME".to_owned(), record.home),
            ("PATH".to_owned(), "/usr/bin:/usr/sbin".to_owned()),
            (
                "TERM".to_owned(),
                std::env::var("TERM").unwrap_or_else(|_| "dumb".to_owned()),
            ),
        ],
    };
    Ok(container::run_interactive(helper, &spec)?)
}

//! Composing the build root: the `/usr` the phases run against.
//!
//! [`BuildRoot`] is the seam: [`HostRoot`] binds the host's `/usr` read-only (machines without a
//! Serpent repository), [`EngineRoot`] installs the build dependencies with the moss engine into
//! a fresh root, and [`crate::root_daemon::DaemonRoot`] asks `mossd` to do that over D-Bus
//! (`ComposeBuildRoot`, polkit action `com.serpentos.moss.build-root`). `boulder`'s `main`
//! picks one: `--host-root`, else `--repo` (engine), else mossd when it answers.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::container::{Bind, prepare_host_style_root};

/// Composing failed.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// Local I/O.
    #[error("preparing the build root {}: {source}", path.display())]
    Io {
        /// The root.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The moss engine failed.
    #[error("installing the build dependencies with moss: {0}")]
    Engine(String),
    /// mossd failed or could not be reached.
    #[error("composing the build root through mossd: {0}")]
    Daemon(String),
}

/// A composed root: what the container must bind on top of it.
#[derive(Debug, Clone, Default)]
pub struct Composed {
    /// Extra binds (e.g. the host's `/usr`).
    pub binds: Vec<Bind>,
    /// A shell script that fails when a build dependency is missing, for roots that cannot
    /// install packages themselves; run inside the container before the build.
    pub check_script: Option<String>,
}

/// How a build root comes to be.
pub trait BuildRoot: std::fmt::Debug {
    /// A short description for progress output.
    fn describe(&self) -> String;

    /// Make `rootfs` a root whose `/usr` provides `packages` (names or provider strings such as
    /// `binary(gcc)`, `pkgconfig(zlib)`).
    fn compose(
        &self,
        rootfs: &Path,
        packages: &[String],
        networking: bool,
    ) -> Result<Composed, RootError>;
}

/// The host's `/usr`, read-only. Packages cannot be installed; the recipe's build dependencies
/// are checked instead (`binary(x)` with `command -v`, `pkgconfig(x)` with `pkg-config`).
#[derive(Debug, Clone, Default)]
pub struct HostRoot {
    /// Build dependencies of the recipe to check in the container.
    pub check: Vec<String>,
}

impl BuildRoot for HostRoot {
    fn describe(&self) -> String {
        "host /usr (read-only)".to_owned()
    }

    fn compose(
        &self,
        rootfs: &Path,
        _packages: &[String],
        networking: bool,
    ) -> Result<Composed, RootError> {
        prepare_host_style_root(rootfs, networking).map_err(|source| RootError::Io {
            path: rootfs.to_path_buf(),
            source,
        })?;
        Ok(Composed {
            binds: vec![Bind {
                source: PathBuf::from("/usr"),
                target: PathBuf::from("/usr"),
                read_only: true,
            }],
            check_script: Some(check_script(&self.check)),
        })
    }
}

/// A script that checks the host for build dependencies it can test.
pub fn check_script(dependencies: &[String]) -> String {
    let mut script = String::from("missing=0\n");
    for dependency in dependencies {
        let quoted = dependency.replace('\'', "");
        let test = if let Some(name) =
            inner(dependency, "binary").or_else(|| inner(dependency, "sysbinary"))
        {
            format!("command -v '{name}' >/dev/null")
        } else if let Some(name) = inner(dependency, "pkgconfig") {
            format!("pkg-config --exists '{name}'")
        } else {
            // soname(), cmake(), python() and plain names cannot be checked on a foreign host.
            continue;
        };
        script.push_str(&format!(
            "if ! {test}; then echo \"the host lacks build dependency {quoted}\"; missing=1; fi\n"
        ));
    }
    script.push_str("exit $missing\n");
    script
}

fn inner<'a>(dependency: &'a str, kind: &str) -> Option<&'a str> {
    dependency
        .strip_prefix(kind)?
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(|name| name.trim_matches('\''))
}

/// A root populated by the moss engine from repositories.
#[derive(Debug, Clone)]
pub struct EngineRoot {
    /// (id, URI of a `stone.index`) pairs, highest priority first.
    pub repositories: Vec<(String, String)>,
    /// Pinned minisign keys per repository id (none: unsigned).
    pub keys: Vec<(String, Vec<String>)>,
}

impl EngineRoot {
    /// Repositories given on the command line, unsigned.
    pub fn unsigned(repositories: Vec<(String, String)>) -> Self {
        Self {
            repositories,
            keys: Vec::new(),
        }
    }

    /// The active repositories (with their pinned keys) of the moss installation at `root`,
    /// for building "directly" on a system whose mossd is not running.
    pub fn from_installation(root: &Path) -> Result<Self, RootError> {
        let configured =
            moss::repository::load(root).map_err(|error| RootError::Engine(error.to_string()))?;
        let active: Vec<_> = configured
            .into_iter()
            .filter(|repository| repository.active)
            .collect();
        if active.is_empty() {
            return Err(RootError::Engine(format!(
                "the installation at {} has no active repository",
                root.display()
            )));
        }
        Ok(Self {
            repositories: active
                .iter()
                .map(|repository| (repository.id.clone(), repository.uri.to_string()))
                .collect(),
            keys: active
                .into_iter()
                .map(|repository| (repository.id, repository.keys))
                .collect(),
        })
    }
}

impl BuildRoot for EngineRoot {
    fn describe(&self) -> String {
        let ids: Vec<&str> = self
            .repositories
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        format!("moss engine from {}", ids.join(", "))
    }

    fn compose(
        &self,
        rootfs: &Path,
        packages: &[String],
        networking: bool,
    ) -> Result<Composed, RootError> {
        let io = |source| RootError::Io {
            path: rootfs.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(rootfs).map_err(io)?;
        let engine = |error: moss::EngineError| RootError::Engine(error.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io)?;
        runtime.block_on(async {
            let moss = moss::Moss::open(rootfs, Arc::new(moss::events::Silent))
                .await
                .map_err(engine)?;
            let known: Vec<String> = moss
                .repositories()
                .map_err(engine)?
                .into_iter()
                .map(|repository| repository.id.to_string())
                .collect();
            let count = self.repositories.len() as u64;
            for (index, (id, uri)) in self.repositories.iter().enumerate() {
                if known.contains(id) {
                    moss.refresh(Some(id)).await.map_err(engine)?;
                } else {
                    let keys = self
                        .keys
                        .iter()
                        .find(|(key_id, _)| key_id == id)
                        .map(|(_, keys)| keys.as_slice())
                        .unwrap_or_default();
                    moss.add_repository(id, uri, count - index as u64, "boulder build root", keys)
                        .await
                        .map_err(engine)?;
                }
            }
            let targets: Vec<moss::operations::Target> = packages
                .iter()
                .cloned()
                .map(moss::operations::Target::Package)
                .collect();
            let plan = moss.plan_install(&targets).await.map_err(engine)?;
            moss.execute(&plan, "boulder build root")
                .await
                .map_err(engine)?;
            Ok::<(), RootError>(())
        })?;
        // The engine lays out /usr; the rest of a usable root is the same as for the host.
        prepare_host_style_root(rootfs, networking).map_err(io)?;
        Ok(Composed::default())
    }
}

//! An installation: a root directory and its `/.moss` tree, held under an exclusive lock.
//!
//! On-disk layout (version 1 of our own layout; upstream's asset paths are kept so that stores can
//! be shared, the databases are ours):
//!
//! ```text
//! ROOT/usr/.stateID                  id of the state this tree belongs to
//! ROOT/.moss/layout-version          "1"
//! ROOT/.moss/lock                    flock target for every writer
//! ROOT/.moss/db/moss.sqlite          packages, layouts, states (one file: one transaction covers all)
//!                                    upstream's v2 store layout is not used
//! ROOT/.moss/journal.json            present only while a transaction swaps trees
//! ROOT/.moss/cache/downloads/v1/...  downloaded stones, named by SHA-256
//! ROOT/.moss/assets/v3/ab/KEY        content-addressed files (KEY = 32-digit XXH3-128 hex)
//! ROOT/.moss/repo/<id>/              cached repository index
//! ROOT/.moss/root/staging/usr        the tree being composed
//! ROOT/.moss/root/<id>/usr           archived trees of inactive states
//! ```

use std::{
    fs::{self, File, OpenOptions},
    io,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

/// The version of the on-disk layout under `/.moss`.
pub const LAYOUT_VERSION: u32 = 1;

/// Why an installation could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    /// The root does not exist or is not a directory.
    #[error("installation root {} is not a directory; create it first", .0.display())]
    NotADirectory(PathBuf),
    /// Another process holds the lock.
    #[error("another moss process is using the installation at {}; wait for it to finish", .0.display())]
    Locked(PathBuf),
    /// The layout on disk is newer than this moss understands.
    #[error("the installation at {} uses on-disk layout version {found}, newer than this moss ({LAYOUT_VERSION}); upgrade moss", .root.display())]
    NewerLayout {
        /// The root.
        root: PathBuf,
        /// The version found.
        found: u32,
    },
    /// A filesystem operation failed.
    #[error("cannot prepare {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Paths of one installation.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The installation root.
    pub root: PathBuf,
    /// `ROOT/.moss`.
    pub moss: PathBuf,
}

impl Paths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let moss = root.join(".moss");
        Self { root, moss }
    }

    /// `ROOT/usr`.
    pub fn usr(&self) -> PathBuf {
        self.root.join("usr")
    }
    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.moss.join("db/moss.sqlite")
    }
    /// The transaction journal.
    pub fn journal(&self) -> PathBuf {
        self.moss.join("journal.json")
    }
    /// Downloaded stones.
    pub fn downloads(&self) -> PathBuf {
        self.moss.join("cache/downloads/v1")
    }
    /// The content-addressed store.
    pub fn assets(&self) -> PathBuf {
        self.moss.join("assets/v3")
    }
    /// Cached repository data.
    pub fn repositories(&self) -> PathBuf {
        self.moss.join("repo")
    }
    /// `ROOT/.moss/root`: staging and archived trees.
    pub fn trees(&self) -> PathBuf {
        self.moss.join("root")
    }
    /// The staging directory; its `usr` is the tree being composed.
    pub fn staging(&self) -> PathBuf {
        self.trees().join("staging")
    }
    /// The archived tree of a state.
    pub fn archive(&self, state: u64) -> PathBuf {
        self.trees().join(state.to_string())
    }

    /// Where a downloaded stone with this SHA-256 lives (upstream's layout, one rule for all).
    pub fn download(&self, sha256: &str) -> PathBuf {
        crate::repository::cached_package_path(&self.moss.join("cache"), sha256)
    }
}

/// An opened installation, locked for writing for as long as it lives.
#[derive(Debug)]
pub struct Installation {
    paths: Paths,
    _lock: Flock<File>,
}

impl Installation {
    /// Open (and create, for an empty directory) the installation at `root`, taking the lock.
    /// Fails at once with [`InstallationError::Locked`] when another process holds it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, InstallationError> {
        Self::open_with(root, FlockArg::LockExclusiveNonblock)
    }

    /// Like [`Installation::open`] but waits for the lock.
    pub fn open_waiting(root: impl Into<PathBuf>) -> Result<Self, InstallationError> {
        Self::open_with(root, FlockArg::LockExclusive)
    }

    /// Open for reading only: a shared lock, held by any number of readers at once, that keeps
    /// writers out (so a reader never sees a switch half done) without serialising readers.
    pub fn open_shared(root: impl Into<PathBuf>) -> Result<Self, InstallationError> {
        Self::open_with(root, FlockArg::LockShared)
    }

    fn open_with(root: impl Into<PathBuf>, argument: FlockArg) -> Result<Self, InstallationError> {
        let root: PathBuf = root.into();
        if !root.is_dir() {
            return Err(InstallationError::NotADirectory(root));
        }
        let root = root
            .canonicalize()
            .map_err(|source| InstallationError::Io {
                path: root.clone(),
                source,
            })?;
        let paths = Paths::new(root);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| InstallationError::Io { path, source }
        };
        for directory in [
            paths.moss.join("db"),
            paths.downloads(),
            paths.assets(),
            paths.repositories(),
            paths.trees(),
        ] {
            fs::create_dir_all(&directory).map_err(io(&directory))?;
        }
        let lock_path = paths.moss.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let lock = Flock::lock(file, argument).map_err(|(_, errno)| match errno {
            nix::errno::Errno::EWOULDBLOCK => InstallationError::Locked(paths.root.clone()),
            other => InstallationError::Io {
                path: lock_path.clone(),
                source: other.into(),
            },
        })?;
        let version_path = paths.moss.join("layout-version");
        match fs::read_to_string(&version_path) {
            Ok(text) => {
                let found = text.trim().parse().unwrap_or(u32::MAX);
                if found > LAYOUT_VERSION {
                    return Err(InstallationError::NewerLayout {
                        root: paths.root.clone(),
                        found,
                    });
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs::write(&version_path, LAYOUT_VERSION.to_string()).map_err(io(&version_path))?;
            }
            Err(source) => return Err(io(&version_path)(source)),
        }
        Ok(Self { paths, _lock: lock })
    }

    /// The installation's paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The state whose tree is `/usr`, read from `/usr/.stateID`.
    pub fn active_state(&self) -> Option<u64> {
        read_state_id(&self.paths.usr())
    }
}

/// The state id recorded in a `usr` tree.
pub fn read_state_id(usr: &Path) -> Option<u64> {
    fs::read_to_string(usr.join(".stateID"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

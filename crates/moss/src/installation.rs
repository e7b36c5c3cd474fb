//! An installation: a root directory and its `/.moss` tree, held under its lock (exclusive for a
//! writer, shared by readers).
//!
//! On-disk layout (version 1 of our own layout; upstream's asset paths are kept so that stores can
//! be shared, the databases are ours):
//!
//! ```text
//! ROOT/usr/.stateID                  id of the state this tree belongs to
//! ROOT/.moss/layout-version          "1"
//! ROOT/.moss/lock                    flock target: exclusive for writers, shared for readers
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
    /// A query found no installation; queries create nothing, so they cannot make one.
    #[error("{} is not a moss installation (no {}); check the path, or install a package into it to create one", root.display(), missing.display())]
    NotAnInstallation {
        /// The root.
        root: PathBuf,
        /// The first part of an installation that is missing.
        missing: PathBuf,
    },
    /// `ROOT/usr` is a tree moss did not make: a change would swap it out and then delete it.
    #[error("{} exists and is not managed by moss (no {}); move it away, or use an empty directory as the installation root", usr.display(), usr.join(".stateID").display())]
    UnmanagedUsr {
        /// `ROOT/usr`.
        usr: PathBuf,
    },
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
    /// A reader found a database that needs migrating, which only a writer may do.
    #[error("the database of the installation at {} has schema version {found}, older than this moss ({wanted}); run a change on it as a user who may write it (or start mossd) to upgrade it", root.display())]
    OutdatedDatabase {
        /// The root.
        root: PathBuf,
        /// The schema version found.
        found: u32,
        /// The schema version this moss uses.
        wanted: u32,
    },
    /// A filesystem operation failed.
    #[error("cannot access {}: {source}", path.display())]
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

/// An opened installation, locked for as long as it lives: exclusively by a writer, shared by
/// readers.
#[derive(Debug)]
pub struct Installation {
    paths: Paths,
    _lock: Flock<File>,
}

impl Installation {
    /// Open (and create, for an empty directory) the installation at `root`, taking the lock.
    /// Fails at once with [`InstallationError::Locked`] when another process holds it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, InstallationError> {
        Self::open_for_writing(root, FlockArg::LockExclusiveNonblock)
    }

    /// Like [`Installation::open`] but waits for the lock.
    pub fn open_waiting(root: impl Into<PathBuf>) -> Result<Self, InstallationError> {
        Self::open_for_writing(root, FlockArg::LockExclusive)
    }

    /// Open an existing installation for reading only: a shared lock, held by any number of
    /// readers at once, that keeps writers out (so a reader never sees a switch half done)
    /// without serialising readers.
    ///
    /// Creates and writes nothing, so it works for any user who can read the installation; a
    /// directory without one is [`InstallationError::NotAnInstallation`].
    pub fn open_shared(root: impl Into<PathBuf>) -> Result<Self, InstallationError> {
        let paths = resolve(root.into())?;
        let missing = |missing: PathBuf| InstallationError::NotAnInstallation {
            root: paths.root.clone(),
            missing,
        };
        if !paths.moss.is_dir() {
            return Err(missing(paths.moss.clone()));
        }
        let lock_path = paths.moss.join("lock");
        // Read-only is enough for flock, and is all a user without write access can open.
        let file = match File::open(&lock_path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(missing(lock_path));
            }
            Err(source) => return Err(io_error(&lock_path)(source)),
        };
        let lock = lock(file, FlockArg::LockShared, &paths, &lock_path)?;
        check_layout_version(&paths, false)?;
        if !paths.database().is_file() {
            return Err(missing(paths.database()));
        }
        Ok(Self { paths, _lock: lock })
    }

    fn open_for_writing(
        root: impl Into<PathBuf>,
        argument: FlockArg,
    ) -> Result<Self, InstallationError> {
        let paths = resolve(root.into())?;
        // Before anything is written: a refused change leaves the directory as it was.
        check_usr(&paths)?;
        for directory in [
            paths.moss.join("db"),
            paths.downloads(),
            paths.assets(),
            paths.repositories(),
            paths.trees(),
        ] {
            fs::create_dir_all(&directory).map_err(io_error(&directory))?;
        }
        let lock_path = paths.moss.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        let lock = lock(file, argument, &paths, &lock_path)?;
        check_layout_version(&paths, true)?;
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

    /// Whether this process may write the installation (so a reader that finds work only a
    /// writer may do can reopen it for writing instead of failing).
    pub fn writable(&self) -> bool {
        nix::unistd::access(&self.paths.moss, nix::unistd::AccessFlags::W_OK).is_ok()
    }
}

/// Refuse a root whose `usr` moss does not manage.
///
/// The swap exchanges `ROOT/usr` with the new tree and keeps the old one only when it carries a
/// `.stateID` naming its state; anything else is dropped. Every tree moss builds carries one, so
/// its absence is the mark of a tree that is not moss's, whatever `ROOT/.moss` holds. A missing
/// or empty `usr` holds nothing to lose (a fresh root, `mkdir ROOT/usr`, a host-style build
/// root) and is accepted.
pub fn check_usr(paths: &Paths) -> Result<(), InstallationError> {
    let usr = paths.usr();
    let metadata = match fs::symlink_metadata(&usr) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(io_error(&usr)(source)),
    };
    if metadata.is_dir() {
        if read_state_id(&usr).is_some() {
            return Ok(());
        }
        let mut entries = fs::read_dir(&usr).map_err(io_error(&usr))?;
        if entries.next().is_none() {
            return Ok(());
        }
    }
    Err(InstallationError::UnmanagedUsr { usr })
}

/// The state id recorded in a `usr` tree.
pub fn read_state_id(usr: &Path) -> Option<u64> {
    fs::read_to_string(usr.join(".stateID"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> InstallationError {
    let path = path.to_owned();
    move |source| InstallationError::Io { path, source }
}

/// The paths of the installation at `root`, which must be a directory.
fn resolve(root: PathBuf) -> Result<Paths, InstallationError> {
    if !root.is_dir() {
        return Err(InstallationError::NotADirectory(root));
    }
    let root = root.canonicalize().map_err(io_error(&root))?;
    Ok(Paths::new(root))
}

fn lock(
    file: File,
    argument: FlockArg,
    paths: &Paths,
    lock_path: &Path,
) -> Result<Flock<File>, InstallationError> {
    Flock::lock(file, argument).map_err(|(_, errno)| match errno {
        nix::errno::Errno::EWOULDBLOCK => InstallationError::Locked(paths.root.clone()),
        other => io_error(lock_path)(other.into()),
    })
}

/// Refuse a layout newer than ours; a writer records ours where none is recorded yet.
fn check_layout_version(paths: &Paths, writer: bool) -> Result<(), InstallationError> {
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
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound && !writer => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::write(&version_path, LAYOUT_VERSION.to_string()).map_err(io_error(&version_path))
        }
        Err(source) => Err(io_error(&version_path)(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path under `dir`, relative, sorted.
    fn contents(dir: &Path) -> Vec<PathBuf> {
        fn walk(dir: &Path, base: &Path, found: &mut Vec<PathBuf>) {
            for entry in fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                found.push(path.strip_prefix(base).unwrap().to_owned());
                if entry.file_type().unwrap().is_dir() {
                    walk(&path, base, found);
                }
            }
        }
        let mut found = Vec::new();
        walk(dir, dir, &mut found);
        found.sort();
        found
    }

    #[test]
    fn a_reader_of_a_plain_directory_creates_nothing() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let error = Installation::open_shared(root.path()).unwrap_err();
        let canonical = root.path().canonicalize().unwrap();
        assert!(
            matches!(&error, InstallationError::NotAnInstallation { missing, .. } if *missing == canonical.join(".moss")),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not a moss installation (no {}/.moss); check the path, or install a package into it to create one",
                canonical.display(),
                canonical.display()
            )
        );
        assert_eq!(contents(root.path()), [PathBuf::from("passwd")]);
    }

    #[test]
    fn a_reader_needs_the_database_and_writes_nothing() {
        let root = tempfile::tempdir().unwrap();
        drop(Installation::open(root.path()).unwrap());
        let before = contents(root.path());
        let error = Installation::open_shared(root.path()).unwrap_err();
        assert!(
            matches!(&error, InstallationError::NotAnInstallation { missing, .. } if missing.ends_with(".moss/db/moss.sqlite")),
            "{error:?}"
        );
        fs::write(root.path().join(".moss/db/moss.sqlite"), "").unwrap();
        fs::remove_file(root.path().join(".moss/layout-version")).unwrap();
        let reader = Installation::open_shared(root.path()).unwrap();
        assert!(reader.writable(), "the tests run as root");
        drop(reader);
        let mut expected = before;
        expected.retain(|path| !path.ends_with("layout-version"));
        expected.push(PathBuf::from(".moss/db/moss.sqlite"));
        expected.sort();
        assert_eq!(contents(root.path()), expected);
    }

    #[test]
    fn a_writer_refuses_a_usr_moss_did_not_make_before_writing() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        fs::write(root.path().join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
        let error = Installation::open(root.path()).unwrap_err();
        let usr = root.path().canonicalize().unwrap().join("usr");
        assert!(
            matches!(&error, InstallationError::UnmanagedUsr { usr: found } if *found == usr),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "{} exists and is not managed by moss (no {}/.stateID); move it away, or use an empty directory as the installation root",
                usr.display(),
                usr.display()
            )
        );
        assert_eq!(
            contents(root.path()),
            [
                PathBuf::from("usr"),
                PathBuf::from("usr/bin"),
                PathBuf::from("usr/bin/tool")
            ]
        );
        // A symlinked usr is not moss's either, whatever it points at.
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root.path().join("usr"), other.path().join("usr")).unwrap();
        assert!(matches!(
            Installation::open(other.path()),
            Err(InstallationError::UnmanagedUsr { .. })
        ));
    }

    #[test]
    fn a_writer_accepts_an_empty_usr_and_a_moss_tree() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("usr")).unwrap();
        drop(Installation::open(root.path()).unwrap());
        fs::write(root.path().join("usr/file"), "").unwrap();
        fs::write(root.path().join("usr/.stateID"), "3").unwrap();
        let installation = Installation::open(root.path()).unwrap();
        assert_eq!(installation.active_state(), Some(3));
    }
}

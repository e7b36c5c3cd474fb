//! Unpack one stone into a plain directory tree (`moss extract`).
//!
//! The layout is checked before anything is written. Files are created with `create_new`, so
//! nothing that already exists is overwritten; on failure, exactly what this run created is
//! removed again, in reverse order, and nothing else. Symlinks are created last, so no file is
//! ever written through a link that the package itself placed.

use std::{
    collections::{HashMap, HashSet},
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink},
    path::{Path, PathBuf},
};

use stone::{Archive, ContentSink, Entry, IndexEntry, Package};

use crate::layout_rules::{LayoutViolation, PERMISSION_BITS, check_layout};

/// Why an extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The stone could not be read.
    #[error(transparent)]
    Stone(#[from] stone::Error),
    /// The stone is not a binary package.
    #[error("{path}: is a {file_type} stone, not a binary package; only packages can be extracted")]
    NotAPackage {
        /// The file.
        path: PathBuf,
        /// What it is.
        file_type: stone::FileType,
    },
    /// The layout breaks a rule.
    #[error("{}: {source}; nothing was extracted", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// The violation.
        #[source]
        source: LayoutViolation,
    },
    /// Something is already where a package entry would go.
    #[error("{} already exists; extract into an empty directory or remove it first", path.display())]
    Exists {
        /// The path in the way.
        path: PathBuf,
    },
    /// The filesystem refused an operation.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The path being created.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// What an extraction produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractSummary {
    /// The package's metadata.
    pub package: Package,
    /// The directory that received the tree (it contains `usr/`).
    pub destination: PathBuf,
    /// Regular files written.
    pub files: usize,
    /// Symlinks created.
    pub symlinks: usize,
    /// Directories created.
    pub directories: usize,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Extract `stone_path` under `destination/usr`. `destination` defaults to the package's meta id
/// in the current directory when `None`.
pub fn extract(
    stone_path: &Path,
    destination: Option<&Path>,
) -> Result<ExtractSummary, ExtractError> {
    let mut archive = Archive::open(stone_path)?;
    if archive.file_type() != stone::FileType::Binary {
        return Err(ExtractError::NotAPackage {
            path: stone_path.to_owned(),
            file_type: archive.file_type(),
        });
    }
    let package = archive
        .packages()
        .map_err(|error| error.in_file(stone_path))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            stone::Error::Truncated {
                what: "the package has no meta payload".to_owned(),
            }
            .in_file(stone_path)
        })?;
    let index: Vec<IndexEntry> = archive.index().copied().collect();
    check_layout(&package.name, archive.layouts(), &index).map_err(|source| {
        ExtractError::Layout {
            path: stone_path.to_owned(),
            source,
        }
    })?;
    let destination = destination
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from(package.meta_id()));
    let mut created = Created::default();
    match populate(&mut archive, stone_path, &destination, &mut created) {
        Ok(counts) => Ok(ExtractSummary {
            package,
            destination,
            files: counts.files,
            symlinks: counts.symlinks,
            directories: created.directories,
            bytes: counts.bytes,
        }),
        Err(error) => {
            created.undo();
            Err(error)
        }
    }
}

/// Everything this run created, so a failure removes exactly that.
#[derive(Default)]
struct Created {
    paths: Vec<(PathBuf, bool)>,
    directories: usize,
    /// Directories already found or made: one `lstat` per directory, not one per file in it.
    known: std::collections::HashSet<PathBuf>,
}

impl Created {
    fn directory(&mut self, path: &Path) -> Result<(), ExtractError> {
        if self.known.contains(path) {
            return Ok(());
        }
        match fs::symlink_metadata(path) {
            Ok(metadata) if metadata.is_dir() => {
                self.known.insert(path.to_owned());
                Ok(())
            }
            Ok(_) => Err(ExtractError::Exists {
                path: path.to_owned(),
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                {
                    self.directory(parent)?;
                }
                fs::create_dir(path).map_err(|source| ExtractError::Create {
                    path: path.to_owned(),
                    source,
                })?;
                self.paths.push((path.to_owned(), true));
                self.known.insert(path.to_owned());
                self.directories += 1;
                Ok(())
            }
            Err(source) => Err(ExtractError::Create {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn file(&mut self, path: &Path) {
        self.paths.push((path.to_owned(), false));
    }

    fn undo(self) {
        for (path, is_directory) in self.paths.into_iter().rev() {
            // Best effort: a directory that gained foreign files stays.
            let _ = if is_directory {
                fs::remove_dir(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

fn populate(
    archive: &mut Archive<io::BufReader<File>>,
    stone_path: &Path,
    destination: &Path,
    created: &mut Created,
) -> Result<Counts, ExtractError> {
    let usr = destination.join("usr");
    created.directory(&usr)?;
    let mut targets: HashMap<u128, Vec<(PathBuf, u32)>> = HashMap::new();
    let mut symlinks = Vec::new();
    // `check_layout` lets a path repeat only as an identical record: create it once.
    let mut seen = HashSet::new();
    for layout in archive.layouts() {
        if !seen.insert(layout.entry.target()) {
            continue;
        }
        match &layout.entry {
            Entry::Directory(target) => {
                let path = usr.join(target);
                created.directory(&path)?;
                set_mode(&path, layout.mode)?;
            }
            Entry::Regular { digest, target } => {
                let path = usr.join(target);
                if let Some(parent) = path.parent() {
                    created.directory(parent)?;
                }
                targets
                    .entry(*digest)
                    .or_default()
                    .push((path, layout.mode));
            }
            Entry::Symlink { source, target } => {
                symlinks.push((source.clone(), usr.join(target)));
            }
            // Devices, fifos and sockets are recorded by packages but never materialised.
            _ => {}
        }
    }
    let mut sink = ExtractSink {
        targets: &targets,
        created,
        current: None,
        files: 0,
        bytes: 0,
        failure: None,
    };
    let result = archive.unpack(&mut sink);
    if let Some(failure) = sink.failure.take() {
        return Err(failure);
    }
    result.map_err(|error| error.in_file(stone_path))?;
    let (files, bytes) = (sink.files, sink.bytes);
    for (source, path) in &symlinks {
        if let Some(parent) = path.parent() {
            created.directory(parent)?;
        }
        symlink(source, path).map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => ExtractError::Exists { path: path.clone() },
            _ => ExtractError::Create {
                path: path.clone(),
                source,
            },
        })?;
        created.file(path);
    }
    Ok(Counts {
        files,
        symlinks: symlinks.len(),
        bytes,
    })
}

/// What `populate` wrote.
struct Counts {
    files: usize,
    symlinks: usize,
    bytes: u64,
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ExtractError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & PERMISSION_BITS)).map_err(
        |source| ExtractError::Create {
            path: path.to_owned(),
            source,
        },
    )
}

struct ExtractSink<'a> {
    targets: &'a HashMap<u128, Vec<(PathBuf, u32)>>,
    created: &'a mut Created,
    current: Option<File>,
    files: usize,
    bytes: u64,
    failure: Option<ExtractError>,
}

impl ExtractSink<'_> {
    fn first_target(&self, entry: &IndexEntry) -> Option<&(PathBuf, u32)> {
        self.targets
            .get(&entry.digest)
            .and_then(|list| list.first())
    }

    fn fail(&mut self, error: ExtractError) -> io::Error {
        let message = error.to_string();
        self.failure = Some(error);
        io::Error::other(message)
    }
}

impl ContentSink for ExtractSink<'_> {
    fn begin(&mut self, entry: &IndexEntry) -> io::Result<()> {
        let Some((path, _)) = self.first_target(entry).cloned() else {
            // Content that no layout entry uses is verified and dropped.
            self.current = None;
            return Ok(());
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match file {
            Ok(file) => {
                self.created.file(&path);
                self.current = Some(file);
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                Err(self.fail(ExtractError::Exists { path }))
            }
            Err(source) => Err(self.fail(ExtractError::Create { path, source })),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(file) = &mut self.current {
            file.write_all(bytes)?;
        }
        Ok(())
    }

    fn finish(&mut self, entry: &IndexEntry) -> io::Result<()> {
        if self.current.take().is_none() {
            return Ok(());
        }
        let targets = self
            .targets
            .get(&entry.digest)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (first, _) = &targets[0];
        for (index, (path, mode)) in targets.iter().enumerate() {
            if index > 0 {
                if path.exists() {
                    return Err(self.fail(ExtractError::Exists { path: path.clone() }));
                }
                fs::copy(first, path).map_err(|source| {
                    self.fail(ExtractError::Create {
                        path: path.clone(),
                        source,
                    })
                })?;
                self.created.file(path);
            }
            fs::set_permissions(path, fs::Permissions::from_mode(mode & PERMISSION_BITS))?;
            self.files += 1;
            self.bytes += entry.len();
        }
        Ok(())
    }

    fn abort(&mut self, _: &IndexEntry) {
        // The half-written file is already recorded in `created` and removed by the undo.
        self.current = None;
    }
}

//! Repository indexes (`stone.index`, stone format spec §9): writing one from a directory of
//! packages, and reading one back with every entry checked.

use std::{
    collections::{BTreeMap, btree_map::Entry},
    fs,
    io::{self, BufWriter},
    path::{Component, Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
};

use stone::{Archive, FileType, Package, Writer};

use super::{is_sha256_hex, write_atomically};
use crate::store::sha256_file;

/// File name of a repository index.
pub const INDEX_FILE_NAME: &str = "stone.index";

/// One package listed in a written index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPackage {
    /// Package name.
    pub name: String,
    /// Upstream version.
    pub version: String,
    /// Recipe release.
    pub release: u64,
    /// Build release.
    pub build_release: u64,
    /// `PackageURI`: the path relative to the index's directory, `/`-separated.
    pub uri: String,
    /// `PackageHash`: lowercase hex SHA-256 of the file (the package id).
    pub hash: String,
    /// `PackageSize`: file size in bytes.
    pub size: u64,
    /// The `.stone` file.
    pub path: PathBuf,
}

/// What [`write_index`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSummary {
    /// The index written.
    pub path: PathBuf,
    /// The packages it lists, sorted by name.
    pub packages: Vec<IndexedPackage>,
    /// Files left out because a newer release of the same package is present.
    pub superseded: Vec<PathBuf>,
}

/// Writing or reading an index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A file or directory cannot be read.
    #[error("Cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file does not decode as a stone.
    #[error("Cannot decode {}: {}; replace or remove the file", path.display(), source.root())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        source: stone::Error,
    },
    /// A `.stone` in the package directory is not a binary package.
    #[error(
        "{} is a {found} stone, not a binary package; move it out of the package directory",
        path.display()
    )]
    NotBinary {
        /// The file.
        path: PathBuf,
        /// Its file type.
        found: FileType,
    },
    /// A binary package without a Meta payload.
    #[error("{} has no package metadata; rebuild the package", path.display())]
    NoMetadata {
        /// The file.
        path: PathBuf,
    },
    /// Two files hold the same package name, release and build release.
    #[error(
        "{} and {} are both `{name}` release {release} build {build_release}; remove one of \
         them or bump its release",
        first.display(),
        second.display()
    )]
    Duplicate {
        /// Package name.
        name: String,
        /// Their release.
        release: u64,
        /// Their build release.
        build_release: u64,
        /// One file.
        first: PathBuf,
        /// The other file.
        second: PathBuf,
    },
    /// The index cannot be written.
    #[error("Cannot write the index {}: {source}; check free space and permissions", path.display())]
    Write {
        /// The index file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is a stone, but not a repository index.
    #[error("{} is a {found} stone, not a repository index", path.display())]
    NotAnIndex {
        /// The file.
        path: PathBuf,
        /// Its file type.
        found: FileType,
    },
    /// An index entry lacks a valid `PackageHash`.
    #[error(
        "Index {} lists `{package}` without a valid PackageHash (64 hex digits)",
        path.display()
    )]
    MissingHash {
        /// The index.
        path: PathBuf,
        /// Package name.
        package: String,
    },
    /// An index entry lacks a `PackageURI`.
    #[error("Index {} lists `{package}` without a PackageURI", path.display())]
    MissingUri {
        /// The index.
        path: PathBuf,
        /// Package name.
        package: String,
    },
}

/// Read an index and check it: a repository stone whose every entry has a `PackageHash` of 64
/// hex digits (returned lowercase) and a non-empty `PackageURI`.
pub fn read_index(path: &Path) -> Result<Vec<Package>, IndexError> {
    let decode = |source| IndexError::Decode {
        path: path.to_owned(),
        source,
    };
    let archive = Archive::open(path).map_err(decode)?;
    if archive.file_type() != FileType::Repository {
        return Err(IndexError::NotAnIndex {
            path: path.to_owned(),
            found: archive.file_type(),
        });
    }
    let mut packages = archive.packages().map_err(decode)?;
    for package in &mut packages {
        match &package.hash {
            Some(hash) if is_sha256_hex(hash) => package.hash = Some(hash.to_ascii_lowercase()),
            _ => {
                return Err(IndexError::MissingHash {
                    path: path.to_owned(),
                    package: package.name.clone(),
                });
            }
        }
        if package.uri.as_deref().is_none_or(str::is_empty) {
            return Err(IndexError::MissingUri {
                path: path.to_owned(),
                package: package.name.clone(),
            });
        }
    }
    Ok(packages)
}

/// Index every `*.stone` below `dir` (recursively, hidden entries skipped) into
/// `output_dir/stone.index`, written atomically.
///
/// One entry per package name: the highest release, then build release, wins; two files with
/// the same name, release and build release are an error. Entries are sorted by name and carry
/// the package's metadata plus `PackageURI` (the path relative to `output_dir`, `/`-separated,
/// with `../` when needed), `PackageHash` and `PackageSize`.
pub fn write_index(dir: &Path, output_dir: &Path) -> Result<IndexSummary, IndexError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| IndexError::Read { path, source }
    };
    let dir = fs::canonicalize(dir).map_err(read_error(dir))?;
    let index_path = output_dir.join(INDEX_FILE_NAME);
    let write_error = |source| IndexError::Write {
        path: index_path.clone(),
        source,
    };
    fs::create_dir_all(output_dir).map_err(write_error)?;
    let output_dir = fs::canonicalize(output_dir).map_err(write_error)?;

    let mut files = Vec::new();
    collect_stones(&dir, &mut files)?;
    let scanned = scan_all(&files)?;

    let mut chosen: BTreeMap<String, Scanned> = BTreeMap::new();
    let mut superseded = Vec::new();
    for candidate in scanned {
        match chosen.entry(candidate.package.name.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(candidate);
            }
            Entry::Occupied(mut slot) => {
                let current = slot.get();
                let key =
                    |scanned: &Scanned| (scanned.package.release, scanned.package.build_release);
                match key(&candidate).cmp(&key(current)) {
                    std::cmp::Ordering::Greater => {
                        superseded.push(slot.insert(candidate).path);
                    }
                    std::cmp::Ordering::Less => superseded.push(candidate.path),
                    std::cmp::Ordering::Equal => {
                        return Err(IndexError::Duplicate {
                            name: candidate.package.name.clone(),
                            release: candidate.package.release,
                            build_release: candidate.package.build_release,
                            first: current.path.clone(),
                            second: candidate.path,
                        });
                    }
                }
            }
        }
    }
    superseded.sort();

    let mut writer = Writer::new(FileType::Repository);
    let mut packages = Vec::with_capacity(chosen.len());
    for (name, scanned) in chosen {
        let uri = relative_uri(&output_dir, &scanned.path);
        let mut package = scanned.package;
        package.uri = Some(uri.clone());
        package.hash = Some(scanned.hash.clone());
        package.size = Some(scanned.size);
        writer.add_meta(package.to_records());
        packages.push(IndexedPackage {
            name,
            version: package.version,
            release: package.release,
            build_release: package.build_release,
            uri,
            hash: scanned.hash,
            size: scanned.size,
            path: scanned.path,
        });
    }
    let index_path = output_dir.join(INDEX_FILE_NAME);
    write_atomically(&index_path, |file| {
        writer.write(BufWriter::new(file)).map_err(io::Error::other)
    })
    .map_err(|source| IndexError::Write {
        path: index_path.clone(),
        source,
    })?;
    Ok(IndexSummary {
        path: index_path,
        packages,
        superseded,
    })
}

/// A package file with its metadata, hash and size.
#[derive(Debug)]
struct Scanned {
    path: PathBuf,
    package: Package,
    hash: String,
    size: u64,
}

/// Every `*.stone` file below `dir`, sorted; symlinked directories are not followed.
fn collect_stones(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), IndexError> {
    let read_error = |source| IndexError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(read_error)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let kind = fs::symlink_metadata(&path).map_err(|source| IndexError::Read {
            path: path.clone(),
            source,
        })?;
        if kind.is_dir() {
            collect_stones(&path, files)?;
        } else if name.ends_with(".stone") && path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// Scan files on all cores; results in input order.
fn scan_all(files: &[PathBuf]) -> Result<Vec<Scanned>, IndexError> {
    let workers = thread::available_parallelism()
        .map_or(1, |count| count.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Scanned, IndexError>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let position = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(position) else {
                        break;
                    };
                    let result = scan(path);
                    let failed = result.is_err();
                    *results[position]
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(result);
                    if failed {
                        // Stop handing out work; the first error in file order is returned.
                        next.store(files.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut scanned = Vec::with_capacity(files.len());
    for slot in results {
        match slot
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            Some(result) => scanned.push(result?),
            None => break,
        }
    }
    Ok(scanned)
}

fn scan(path: &Path) -> Result<Scanned, IndexError> {
    let archive = Archive::open(path).map_err(|source| IndexError::Decode {
        path: path.to_owned(),
        source,
    })?;
    if archive.file_type() != FileType::Binary {
        return Err(IndexError::NotBinary {
            path: path.to_owned(),
            found: archive.file_type(),
        });
    }
    let package = archive
        .packages()
        .map_err(|source| IndexError::Decode {
            path: path.to_owned(),
            source,
        })?
        .into_iter()
        .next()
        .ok_or_else(|| IndexError::NoMetadata {
            path: path.to_owned(),
        })?;
    drop(archive);
    let read_error = |source| IndexError::Read {
        path: path.to_owned(),
        source,
    };
    let size = fs::metadata(path).map_err(read_error)?.len();
    let hash = sha256_file(path).map_err(read_error)?;
    Ok(Scanned {
        path: path.to_owned(),
        package,
        hash,
        size,
    })
}

/// `target` relative to the directory `base` (both absolute), as a `/`-separated URI path with
/// `..` segments when `target` is outside `base`. Characters with a meaning in URIs are
/// percent-encoded.
fn relative_uri(base: &Path, target: &Path) -> String {
    let base: Vec<Component> = base.components().collect();
    let target: Vec<Component> = target.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut segments: Vec<String> = base[common..].iter().map(|_| "..".to_owned()).collect();
    segments.extend(
        target[common..]
            .iter()
            .map(|part| encode_segment(&part.as_os_str().to_string_lossy())),
    );
    segments.join("/")
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for character in segment.chars() {
        match character {
            '%' | '#' | '?' | ' ' | '\\' | '"' | '<' | '>' | '`' | '^' | '{' | '}' | '|' => {
                out.push_str(&format!("%{:02X}", character as u32));
            }
            control if control.is_control() => {
                let mut buffer = [0u8; 4];
                for byte in control.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uris() {
        let cases = [
            ("/srv/repo", "/srv/repo/a.stone", "a.stone"),
            ("/srv/repo", "/srv/repo/x/y/b.stone", "x/y/b.stone"),
            ("/srv/repo/out", "/srv/repo/pkgs/c.stone", "../pkgs/c.stone"),
            (
                "/srv/index",
                "/data/pkgs/d.stone",
                "../../data/pkgs/d.stone",
            ),
            ("/srv", "/srv/a b#1?.stone", "a%20b%231%3F.stone"),
        ];
        for (base, target, expected) in cases {
            assert_eq!(relative_uri(Path::new(base), Path::new(target)), expected);
        }
        let index = url::Url::parse("https://example.org/srv/repo/out/stone.index").unwrap();
        assert_eq!(
            index.join("../pkgs/c.stone").unwrap().as_str(),
            "https://example.org/srv/repo/pkgs/c.stone"
        );
    }
}

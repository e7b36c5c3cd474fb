//! The build cache (`boulder cache size`, `boulder cache clean`): plain directories under the
//! cache root, so sizing and cleaning are walks that never leave them.
//!
//! * `upstreams`: fetched archives and git mirrors (refetched on demand);
//! * `work`: build work directories (roots, build and install trees) kept by failed or
//!   `--keep-work` builds, which `boulder chroot` enters;
//! * `profiles`: the fetched indexes and package cache of build profiles.

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// The cache directories, in the order they are listed.
pub const KINDS: [&str; 3] = ["upstreams", "work", "profiles"];

/// One cache directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheDir {
    /// `upstreams`, `work` or `profiles`.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Bytes of the regular files below it (symlinks are not followed).
    pub bytes: u64,
    /// Whether it exists.
    pub exists: bool,
}

/// Why the cache cannot be read or cleaned.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file system error on a named path.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A cache directory is a symlink: cleaning it would reach outside the cache.
    #[error(
        "{0} is a symbolic link; boulder does not clean through links (remove the link yourself if the cache should go)"
    )]
    Symlink(PathBuf),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CacheError {
    let path = path.to_owned();
    move |source| CacheError::Io {
        action,
        path,
        source,
    }
}

/// Bytes of regular files under `path`, never following symlinks (a symlink counts as itself:
/// what it points to is not the cache's).
fn tree_bytes(path: &Path) -> Result<u64, CacheError> {
    let metadata = fs::symlink_metadata(path).map_err(io("reading", path))?;
    if !metadata.is_dir() {
        return Ok(if metadata.is_file() {
            metadata.len()
        } else {
            0
        });
    }
    let mut total = 0;
    for entry in fs::read_dir(path).map_err(io("listing", path))? {
        let entry = entry.map_err(io("listing", path))?;
        total += tree_bytes(&entry.path())?;
    }
    Ok(total)
}

/// The size of each cache directory under `root`.
pub fn sizes(root: &Path) -> Result<Vec<CacheDir>, CacheError> {
    KINDS
        .iter()
        .map(|name| {
            let path = root.join(name);
            let exists = fs::symlink_metadata(&path).is_ok();
            let bytes = if exists { tree_bytes(&path)? } else { 0 };
            Ok(CacheDir {
                name: (*name).to_owned(),
                path,
                bytes,
                exists,
            })
        })
        .collect()
}

/// Build roots keep read-only directories (`usr` of a package is 0555): make every directory
/// below `path` writable by its owner so that its entries can go. Symlinks are left alone
/// (chmod would follow them).
fn make_writable(path: &Path) -> Result<(), CacheError> {
    let metadata = fs::symlink_metadata(path).map_err(io("reading", path))?;
    if !metadata.is_dir() {
        return Ok(());
    }
    if metadata.mode() & 0o200 == 0 {
        let mut permissions = metadata.permissions();
        permissions.set_mode(metadata.mode() | 0o700);
        fs::set_permissions(path, permissions).map_err(io("making writable", path))?;
    }
    for entry in fs::read_dir(path).map_err(io("listing", path))? {
        let entry = entry.map_err(io("listing", path))?;
        make_writable(&entry.path())?;
    }
    Ok(())
}

/// Remove the named cache directories under `root` (all when `names` is empty); returns
/// them with the bytes they held. `remove_dir_all` removes symlinks themselves, never what
/// they point to; a cache directory that is itself a symlink is refused.
pub fn clean(root: &Path, names: &[&str]) -> Result<Vec<CacheDir>, CacheError> {
    let mut removed = Vec::new();
    for dir in sizes(root)? {
        if !(names.is_empty() || names.contains(&dir.name.as_str())) || !dir.exists {
            continue;
        }
        let metadata = fs::symlink_metadata(&dir.path).map_err(io("reading", &dir.path))?;
        if metadata.file_type().is_symlink() {
            return Err(CacheError::Symlink(dir.path));
        }
        if fs::remove_dir_all(&dir.path).is_err() {
            make_writable(&dir.path)?;
            fs::remove_dir_all(&dir.path).map_err(io("removing", &dir.path))?;
        }
        removed.push(dir);
    }
    Ok(removed)
}

//! Materialise a [`Vfs`] as a directory tree, in full or as the difference from another tree.
//!
//! Every entry is created with `*at` calls relative to the tree's directory descriptor. Regular
//! files are hard links to store files whose permissions match (write bits are always stripped,
//! as upstream does, so editing a file in `/usr` can never corrupt the store); files with
//! setuid/setgid/sticky bits or a non-root owner are copies with owner and mode applied, so those
//! never reach the store. When the store is on another filesystem, files are copied.

use std::{
    collections::HashSet,
    fs::{self, File},
    io,
    os::{
        fd::{AsFd, OwnedFd},
        unix::fs::PermissionsExt,
    },
    path::{Path, PathBuf},
};

use nix::{
    fcntl::{AtFlags, OFlag, open, openat},
    sys::stat::{FchmodatFlags, Mode, fchmodat, mkdirat},
    unistd::{Gid, Uid, UnlinkatFlags, fchownat, linkat, symlinkat, unlinkat},
};

use crate::{
    store::Store,
    vfs::{Kind, Node, Vfs},
};

/// Permission bits that may appear in a blitted tree.
const TREE_BITS: u32 = 0o7555;

/// Why a tree could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot create /usr/{path} in {}: {source}", tree.display())]
pub struct BlitError {
    /// The tree being written.
    pub tree: PathBuf,
    /// The entry, relative to `usr`.
    pub path: String,
    /// The error.
    #[source]
    pub source: io::Error,
}

/// What a blit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlitStats {
    /// Entries created.
    pub created: u64,
    /// Entries removed.
    pub removed: u64,
    /// Entries whose mode or owner was changed in place.
    pub adjusted: u64,
    /// Entries left as they were.
    pub kept: u64,
}

/// Writes trees from one store.
#[derive(Debug)]
pub struct Blitter<'a> {
    store: &'a Store,
    store_directory: Option<OwnedFd>,
    variants: HashSet<(u128, u32)>,
    apply_owners: bool,
    link_failed: bool,
    umask: u32,
}

impl<'a> Blitter<'a> {
    /// A blitter over `store`.
    pub fn new(store: &'a Store) -> Self {
        // Read the umask (setting it back at once) so that directories whose mode the umask does
        // not touch need no extra chmod.
        let umask = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(umask);
        Self {
            store,
            store_directory: open(
                store.root(),
                OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok(),
            variants: HashSet::new(),
            apply_owners: nix::unistd::geteuid().is_root(),
            link_failed: false,
            umask: umask.bits(),
        }
    }

    /// Create `usr` (which must not exist) holding exactly `vfs`.
    pub fn full(&mut self, vfs: &Vfs, usr: &Path) -> Result<BlitStats, BlitError> {
        fs::create_dir(usr).map_err(|source| error(usr, "", source))?;
        fs::set_permissions(usr, fs::Permissions::from_mode(0o755))
            .map_err(|source| error(usr, "", source))?;
        let tree = open_tree(usr)?;
        let mut stats = BlitStats::default();
        for (path, node) in vfs.iter() {
            self.create(&tree, usr, path, node)?;
            stats.created += 1;
        }
        Ok(stats)
    }

    /// Create these entries (parents first) in the existing tree `usr`; returns how many.
    pub fn create_all(
        &mut self,
        usr: &Path,
        entries: &[(&String, &Node)],
    ) -> Result<u64, BlitError> {
        let tree = open_tree(usr)?;
        for (path, node) in entries {
            self.create(&tree, usr, path, node)?;
        }
        Ok(entries.len() as u64)
    }

    /// Turn `usr`, which holds `old`, into a tree holding exactly `new`, touching only differences.
    pub fn update(&mut self, old: &Vfs, new: &Vfs, usr: &Path) -> Result<BlitStats, BlitError> {
        let tree = open_tree(usr)?;
        let mut stats = BlitStats::default();
        // One merge pass over both sorted trees finds the differences.
        let mut removals: Vec<(&String, &Node)> = Vec::new();
        let mut creations: Vec<(&String, &Node)> = Vec::new();
        let mut adjustments: Vec<(&String, &Node)> = Vec::new();
        let mut old_entries = old.iter().peekable();
        let mut new_entries = new.iter().peekable();
        loop {
            match (old_entries.peek(), new_entries.peek()) {
                (None, None) => break,
                (Some(_), None) => removals.push(old_entries.next().expect("peeked")),
                (None, Some(_)) => creations.push(new_entries.next().expect("peeked")),
                (Some((old_path, _)), Some((new_path, _))) => match old_path.cmp(new_path) {
                    std::cmp::Ordering::Less => removals.push(old_entries.next().expect("peeked")),
                    std::cmp::Ordering::Greater => {
                        creations.push(new_entries.next().expect("peeked"))
                    }
                    std::cmp::Ordering::Equal => {
                        let (path, previous) = old_entries.next().expect("peeked");
                        let wanted = new_entries.next().expect("peeked").1;
                        if wanted.same_file(previous) {
                            stats.kept += 1;
                        } else if wanted.kind == Kind::Directory && previous.kind == Kind::Directory
                        {
                            adjustments.push((path, wanted));
                        } else {
                            removals.push((path, previous));
                            creations.push((path, wanted));
                        }
                    }
                },
            }
        }
        // Children before parents.
        removals.sort_unstable_by(|a, b| b.0.cmp(a.0));
        for (path, node) in removals {
            let flag = if node.kind == Kind::Directory {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            match unlinkat(&tree, path.as_str(), flag) {
                Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
                Err(errno) => return Err(error(usr, path, errno.into())),
            }
            stats.removed += 1;
        }
        for (path, node) in adjustments {
            self.adjust_directory(&tree, usr, path, node)?;
            stats.adjusted += 1;
        }
        // Parents before children.
        creations.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (path, node) in creations {
            self.create(&tree, usr, path, node)?;
            stats.created += 1;
        }
        Ok(stats)
    }

    fn adjust_directory(
        &self,
        tree: &OwnedFd,
        usr: &Path,
        path: &str,
        node: &Node,
    ) -> Result<(), BlitError> {
        fchmodat(
            tree,
            path,
            Mode::from_bits_truncate(node.mode & 0o7777),
            FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|errno| {
            // Linux has no lchmod; directories are never symlinks here, so follow.
            if errno == nix::errno::Errno::EOPNOTSUPP {
                fchmodat(
                    tree,
                    path,
                    Mode::from_bits_truncate(node.mode & 0o7777),
                    FchmodatFlags::FollowSymlink,
                )
            } else {
                Err(errno)
            }
        })
        .map_err(|errno| error(usr, path, errno.into()))?;
        self.chown(tree, usr, path, node)
    }

    fn create(
        &mut self,
        tree: &OwnedFd,
        usr: &Path,
        path: &str,
        node: &Node,
    ) -> Result<(), BlitError> {
        let io_error = |errno: nix::errno::Errno| error(usr, path, errno.into());
        match &node.kind {
            Kind::Directory => {
                let mode = Mode::from_bits_truncate(node.mode & 0o7777);
                mkdirat(tree, path, mode).map_err(io_error)?;
                // mkdir honours the umask and ignores special bits; fix the mode only then.
                if mode.bits() & self.umask != 0 || mode.bits() & 0o7000 != 0 {
                    fchmodat(tree, path, mode, FchmodatFlags::FollowSymlink).map_err(io_error)?;
                }
                self.chown(tree, usr, path, node)?;
            }
            Kind::Symlink(target) => {
                symlinkat(target.as_str(), tree, path).map_err(io_error)?;
                if node.uid != 0 || node.gid != 0 {
                    self.chown(tree, usr, path, node)?;
                }
            }
            Kind::Regular(digest) => {
                let bits = node.mode & TREE_BITS;
                let needs_copy = bits & 0o7000 != 0 || node.uid != 0 || node.gid != 0;
                if *digest == stone::EMPTY_DIGEST || needs_copy || self.link_failed {
                    self.copy(tree, usr, path, node, *digest, bits)?;
                } else {
                    let permissions = bits & 0o555;
                    let source = self
                        .variant(*digest, permissions)
                        .map_err(|source| error(usr, path, source))?;
                    // Relative to the store's descriptor: no long path walk per file.
                    let linked = match &self.store_directory {
                        Some(store) => linkat(
                            store,
                            Store::relative_variant_path(*digest, permissions).as_str(),
                            tree,
                            path,
                            AtFlags::empty(),
                        ),
                        None => linkat(
                            nix::fcntl::AT_FDCWD,
                            source.as_path(),
                            tree,
                            path,
                            AtFlags::empty(),
                        ),
                    };
                    match linked {
                        Ok(()) => {}
                        // Another filesystem, or too many links to one inode: copy instead.
                        Err(nix::errno::Errno::EXDEV) => {
                            self.link_failed = true;
                            self.copy(tree, usr, path, node, *digest, bits)?;
                        }
                        Err(nix::errno::Errno::EMLINK) => {
                            self.copy(tree, usr, path, node, *digest, bits)?
                        }
                        Err(errno) => return Err(io_error(errno)),
                    }
                }
            }
        }
        Ok(())
    }

    fn variant(&mut self, digest: u128, permissions: u32) -> io::Result<PathBuf> {
        if self.variants.contains(&(digest, permissions)) {
            return Ok(self.store.variant_path(digest, permissions));
        }
        let path = self.store.ensure_variant(digest, permissions)?;
        self.variants.insert((digest, permissions));
        Ok(path)
    }

    fn copy(
        &self,
        tree: &OwnedFd,
        usr: &Path,
        path: &str,
        node: &Node,
        digest: u128,
        bits: u32,
    ) -> Result<(), BlitError> {
        let io_error = |source: io::Error| error(usr, path, source);
        let descriptor = openat(
            tree,
            path,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| io_error(errno.into()))?;
        let mut file = File::from(descriptor);
        if digest != stone::EMPTY_DIGEST {
            let mut source = File::open(self.store.asset_path(digest)).map_err(io_error)?;
            io::copy(&mut source, &mut file).map_err(io_error)?;
        }
        if self.apply_owners && (node.uid != 0 || node.gid != 0) {
            nix::unistd::fchown(
                file.as_fd(),
                Some(Uid::from_raw(node.uid)),
                Some(Gid::from_raw(node.gid)),
            )
            .map_err(|errno| io_error(errno.into()))?;
        }
        // chmod after chown: chown clears setuid bits.
        file.set_permissions(fs::Permissions::from_mode(bits))
            .map_err(io_error)?;
        Ok(())
    }

    fn chown(&self, tree: &OwnedFd, usr: &Path, path: &str, node: &Node) -> Result<(), BlitError> {
        if !self.apply_owners || (node.uid == 0 && node.gid == 0) {
            return Ok(());
        }
        fchownat(
            tree,
            path,
            Some(Uid::from_raw(node.uid)),
            Some(Gid::from_raw(node.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| error(usr, path, errno.into()))
    }
}

fn open_tree(usr: &Path) -> Result<OwnedFd, BlitError> {
    open(
        usr,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|errno| error(usr, "", errno.into()))
}

fn error(usr: &Path, path: &str, source: io::Error) -> BlitError {
    BlitError {
        tree: usr.to_owned(),
        path: path.to_owned(),
        source,
    }
}

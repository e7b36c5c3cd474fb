//! The content-addressed store: every unique file body once, under its XXH3-128 digest.
//!
//! Assets live at `assets/v3/ab/<key>` (key = 32 lowercase hex digits of the XXH3-128; our own
//! layout, see [`Store::asset_path`]). Store files are never writable and never carry setuid, setgid or sticky
//! bits: the canonical asset has mode 0444; a tree that needs the same body with other
//! permissions (0555 for programs) links to a *variant*, a copy beside the asset named
//! `<key>.<mode>`. Files owned by someone other than root, and files with special bits, are copied
//! into the tree instead of linked, so ownership and special bits never reach the store.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use sha2::{Digest, Sha256};
use stone::{Archive, ContentSink, FileType, IndexEntry, Layout, Package};

use crate::layout_rules::{LayoutViolation, check_layout};

/// Permission bits of a canonical asset.
pub const ASSET_MODE: u32 = 0o444;

/// Why a package could not enter the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stone is malformed.
    #[error(transparent)]
    Stone(#[from] stone::Error),
    /// The stone is not a binary package.
    #[error("{}: is a {file_type} stone, not a package", path.display())]
    NotAPackage {
        /// The file.
        path: PathBuf,
        /// What it is.
        file_type: FileType,
    },
    /// The stone has no metadata.
    #[error("{}: the package carries no metadata payload", .0.display())]
    NoMetadata(PathBuf),
    /// The layout breaks a safety rule.
    #[error("{}: {source}; nothing was installed", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// The rule broken.
        #[source]
        source: LayoutViolation,
    },
    /// Writing into the store failed.
    #[error("cannot write {} into the store: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// A package read into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// SHA-256 of the stone: the package id.
    pub id: String,
    /// Metadata.
    pub meta: Package,
    /// Layout records.
    pub layouts: Vec<Layout>,
    /// The stone it was read from.
    pub source: PathBuf,
    /// BLAKE3 of every file body, by XXH3-128 digest: recorded so that verification can use a
    /// cryptographic hash, not only the format's XXH3.
    pub blake3: Vec<(u128, [u8; 32])>,
}

/// A local stone as a plan sees it: its id and metadata, nothing unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// SHA-256 of the stone: the package id.
    pub id: String,
    /// Metadata.
    pub meta: Package,
}

/// The content-addressed store of one installation.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

static PART_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// The store rooted at `assets` (`ROOT/.moss/assets/v2`).
    pub fn new(assets: impl Into<PathBuf>) -> Self {
        Self {
            root: assets.into(),
        }
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key of a digest: 32 lowercase hex digits (fixed width, unlike upstream's v2 store).
    pub fn key(digest: u128) -> String {
        format!("{digest:032x}")
    }

    /// Where the canonical asset of `digest` lives: `assets/v3/<first two hex digits>/<key>`.
    ///
    /// One level of 256 fan-out directories, created once with the installation: upstream's
    /// three levels of six hex digits give nearly every asset its own directory chain, which
    /// costs three `mkdir`s per file on install for no lookup benefit on modern filesystems.
    pub fn asset_path(&self, digest: u128) -> PathBuf {
        let key = Self::key(digest);
        self.root.join(&key[0..2]).join(key)
    }

    /// The path of a variant relative to the store root (for `*at` calls on the root's descriptor).
    pub fn relative_variant_path(digest: u128, permissions: u32) -> String {
        let key = Self::key(digest);
        if permissions == ASSET_MODE {
            format!("{}/{key}", &key[0..2])
        } else {
            format!("{}/{key}.{permissions:04o}", &key[0..2])
        }
    }

    /// Create the 256 fan-out directories (idempotent).
    pub fn prepare(&self) -> io::Result<()> {
        if self.root.join("ff").is_dir() {
            return Ok(());
        }
        for prefix in 0..=255u8 {
            fs::create_dir_all(self.root.join(format!("{prefix:02x}")))?;
        }
        Ok(())
    }

    /// Where the variant of `digest` with these permission bits lives.
    pub fn variant_path(&self, digest: u128, permissions: u32) -> PathBuf {
        if permissions == ASSET_MODE {
            return self.asset_path(digest);
        }
        let mut path = self.asset_path(digest).into_os_string();
        path.push(format!(".{permissions:04o}"));
        path.into()
    }

    /// Make sure the variant with `permissions` exists (a copy of the asset) and return its path.
    pub fn ensure_variant(&self, digest: u128, permissions: u32) -> io::Result<PathBuf> {
        let variant = self.variant_path(digest, permissions);
        if permissions == ASSET_MODE || variant.exists() {
            return Ok(variant);
        }
        let part = part_path(&variant);
        fs::copy(self.asset_path(digest), &part)?;
        fs::set_permissions(&part, fs::Permissions::from_mode(permissions))?;
        fs::rename(&part, &variant)?;
        Ok(variant)
    }

    /// Whether the canonical asset exists.
    pub fn has(&self, digest: u128) -> bool {
        self.asset_path(digest).exists()
    }

    /// Read a stone's id and metadata and check its layout, writing nothing: what a plan needs
    /// of a local stone before anyone has agreed to install it.
    pub fn inspect(stone_path: &Path) -> Result<Inspected, StoreError> {
        let id = sha256_file(stone_path).map_err(|source| StoreError::Io {
            path: stone_path.to_owned(),
            source,
        })?;
        let (_, meta) = open_checked(stone_path)?;
        Ok(Inspected { id, meta })
    }

    /// Read a stone, check its layout, and put every file body the store lacks into it.
    ///
    /// Bodies are written to a temporary name, checked against their digest, then renamed, so
    /// an asset path only ever holds complete, verified content.
    pub fn unpack(&self, stone_path: &Path) -> Result<Unpacked, StoreError> {
        let id = sha256_file(stone_path).map_err(|source| StoreError::Io {
            path: stone_path.to_owned(),
            source,
        })?;
        self.unpack_with_id(stone_path, id)
    }

    /// Like [`Store::unpack`] for a stone whose SHA-256 is already known (checked on download).
    pub fn unpack_with_id(&self, stone_path: &Path, id: String) -> Result<Unpacked, StoreError> {
        let (mut archive, meta) = open_checked(stone_path)?;
        let layouts: Vec<Layout> = archive.layouts().cloned().collect();
        let mut sink = StoreSink {
            store: self,
            current: None,
            failure: None,
            anonymous: true,
            hasher: blake3::Hasher::new(),
            blake3: Vec::new(),
        };
        let result = archive.unpack(&mut sink);
        if let Some(failure) = sink.failure.take() {
            return Err(failure);
        }
        result.map_err(|error| error.in_file(stone_path))?;
        Ok(Unpacked {
            id,
            meta,
            layouts,
            source: stone_path.to_owned(),
            blake3: sink.blake3,
        })
    }
}

/// Open a binary stone and check its metadata and layout against the safety rules; nothing is
/// written.
fn open_checked(
    stone_path: &Path,
) -> Result<(Archive<std::io::BufReader<File>>, Package), StoreError> {
    let archive = Archive::open(stone_path)?;
    if archive.file_type() != FileType::Binary {
        return Err(StoreError::NotAPackage {
            path: stone_path.to_owned(),
            file_type: archive.file_type(),
        });
    }
    let meta = archive
        .packages()
        .map_err(|error| error.in_file(stone_path))?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NoMetadata(stone_path.to_owned()))?;
    let index: Vec<IndexEntry> = archive.index().copied().collect();
    check_layout(&meta.name, archive.layouts(), &index).map_err(|source| StoreError::Layout {
        path: stone_path.to_owned(),
        source,
    })?;
    Ok((archive, meta))
}

/// A unique temporary name beside `path`.
fn part_path(path: &Path) -> PathBuf {
    let count = PART_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut part = path.as_os_str().to_owned();
    part.push(format!(".{}-{count}.part", std::process::id()));
    part.into()
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    use std::io::Read as _;
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    // Large reads: package files are tens of MiB and this runs on every download and index.
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let count = file.read(&mut buffer)?;
        if count == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..count]);
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

struct StoreSink<'a> {
    store: &'a Store,
    current: Option<Pending>,
    failure: Option<StoreError>,
    hasher: blake3::Hasher,
    blake3: Vec<(u128, [u8; 32])>,
    /// Whether the filesystem takes `O_TMPFILE` (cleared on the first refusal).
    anonymous: bool,
}

/// A body being written.
enum Pending {
    /// An unnamed file (`O_TMPFILE`), given its name by `linkat` once verified: no temporary
    /// name, no rename, no existence check (a name that exists already holds the same content).
    Anonymous { file: File, asset: PathBuf },
    /// A temporary name, renamed once verified (filesystems without `O_TMPFILE`).
    Named {
        file: File,
        part: PathBuf,
        asset: PathBuf,
    },
}

impl StoreSink<'_> {
    fn fail(&mut self, path: PathBuf, source: io::Error) -> io::Error {
        let message = source.to_string();
        self.failure = Some(StoreError::Io { path, source });
        io::Error::other(message)
    }

    fn open_anonymous(&mut self, asset: &Path) -> Option<File> {
        use nix::{fcntl::OFlag, sys::stat::Mode};
        if !self.anonymous {
            return None;
        }
        let parent = asset.parent()?;
        let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        match nix::fcntl::open(parent, flags, Mode::from_bits_truncate(ASSET_MODE)) {
            Ok(descriptor) => Some(File::from(descriptor)),
            Err(nix::errno::Errno::ENOENT) => None,
            Err(_) => {
                self.anonymous = false;
                None
            }
        }
    }

    fn open_named(&mut self, asset: PathBuf) -> io::Result<()> {
        if asset.exists() {
            // Already stored (assets only appear complete and verified): verify and drop.
            self.current = None;
            return Ok(());
        }
        let part = part_path(&asset);
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&part)
        };
        let opened = match open() {
            // The fan-out directory went away (garbage collection removes empty ones).
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let parent = asset.parent().expect("assets have a parent");
                fs::create_dir_all(parent).and_then(|()| open())
            }
            other => other,
        };
        match opened {
            Ok(file) => {
                self.current = Some(Pending::Named { file, part, asset });
                Ok(())
            }
            Err(error) => Err(self.fail(part, error)),
        }
    }
}

/// Give an unnamed file its name; an existing name already holds the same content.
fn link_anonymous(file: &File, asset: &Path) -> io::Result<()> {
    use nix::{
        fcntl::{AT_FDCWD, AtFlags},
        unistd::linkat,
    };
    match linkat(file, "", AT_FDCWD, asset, AtFlags::AT_EMPTY_PATH) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        // Without CAP_DAC_READ_SEARCH, link through /proc instead.
        Err(nix::errno::Errno::EPERM) | Err(nix::errno::Errno::ENOENT) => {
            use std::os::fd::AsRawFd;
            let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
            match linkat(
                AT_FDCWD,
                proc_path.as_str(),
                AT_FDCWD,
                asset,
                AtFlags::AT_SYMLINK_FOLLOW,
            ) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
                Err(errno) => Err(errno.into()),
            }
        }
        Err(errno) => Err(errno.into()),
    }
}

impl ContentSink for StoreSink<'_> {
    fn begin(&mut self, entry: &IndexEntry) -> io::Result<()> {
        self.hasher.reset();
        let asset = self.store.asset_path(entry.digest);
        match self.open_anonymous(&asset) {
            Some(file) => {
                self.current = Some(Pending::Anonymous { file, asset });
                Ok(())
            }
            None => self.open_named(asset),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        match &mut self.current {
            Some(Pending::Anonymous { file, .. } | Pending::Named { file, .. }) => {
                file.write_all(bytes)
            }
            None => Ok(()),
        }
    }

    fn finish(&mut self, entry: &IndexEntry) -> io::Result<()> {
        self.blake3
            .push((entry.digest, *self.hasher.finalize().as_bytes()));
        match self.current.take() {
            None => Ok(()),
            Some(Pending::Anonymous { file, asset }) => {
                link_anonymous(&file, &asset).map_err(|error| self.fail(asset, error))
            }
            Some(Pending::Named { file, part, asset }) => {
                let result = file
                    .set_permissions(fs::Permissions::from_mode(ASSET_MODE))
                    .and_then(|()| fs::rename(&part, &asset));
                drop(file);
                if let Err(error) = result {
                    let _ = fs::remove_file(&part);
                    return Err(self.fail(asset, error));
                }
                Ok(())
            }
        }
    }

    fn abort(&mut self, _: &IndexEntry) {
        // An unnamed file vanishes when closed; a named one is removed.
        if let Some(Pending::Named { file, part, .. }) = self.current.take() {
            drop(file);
            let _ = fs::remove_file(part);
        }
    }
}

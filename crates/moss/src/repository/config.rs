//! Repository configuration files.
//!
//! Vendor definitions live in `ROOT/usr/share/moss/repo.{kdl,yaml}` and
//! `ROOT/usr/share/moss/repo.d/*.{kdl,yaml}`, admin definitions in `ROOT/etc/moss/repo.{kdl,yaml}`
//! and `ROOT/etc/moss/repo.d/*.{kdl,yaml}`. When a `.kdl` and a `.yaml` file share a stem only the
//! `.kdl` one is read. Files are read in file-name order; an admin definition replaces the vendor
//! definition of the same id; one id defined twice in the same layer is an error naming both
//! places. Unlike upstream, a file that does not parse is an error (with its line), never
//! silently skipped.
//!
//! Writes always go to admin files, atomically: `ROOT/etc/moss/repo.d/<id>.kdl` for new
//! definitions, or the admin KDL file that already defines the id (other nodes in it keep their
//! formatting and comments).

use std::{
    collections::{BTreeMap, btree_map::Entry},
    fmt, fs, io,
    io::Write as _,
    path::{Path, PathBuf},
};

use kdl::{KdlDocument, KdlNode};

use super::{
    FetchError, Repository, check_reserved_id, check_scheme, validate_id, write_atomically,
};

pub(crate) mod parse;

use parse::{parse_file, parse_kdl_document, render_node, yaml_ids};

/// Vendor configuration directory, relative to the root.
const VENDOR_DIR: &str = "usr/share/moss";
/// Admin configuration directory, relative to the root.
const ADMIN_DIR: &str = "etc/moss";

/// Who owns a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Shipped by the OS under `/usr/share/moss`; never edited by moss.
    Vendor,
    /// Owned by the administrator under `/etc/moss`; moss writes here.
    Admin,
}

/// Where a repository is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Vendor or admin.
    pub layer: Layer,
    /// The configuration file.
    pub path: PathBuf,
    /// Line of the definition, from 1.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} (line {})", self.path.display(), self.line)
    }
}

/// A repository with the place that defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredRepository {
    /// The effective definition.
    pub repository: Repository,
    /// Where the effective definition comes from.
    pub source: Source,
    /// The vendor definition, when there is one (an admin definition may override it).
    pub vendor: Option<Source>,
}

/// What [`add`] does when the id is already configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddMode {
    /// Refuse: the id must be new.
    #[default]
    New,
    /// Replace the existing definition (an admin override for a vendor repository).
    Replace,
}

/// Reading or changing the repository configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file or directory cannot be read.
    #[error("Cannot read repository configuration {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A configuration file is malformed.
    #[error(
        "Invalid repository configuration {}, line {line}: {message}; fix or remove the file",
        path.display()
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line of the problem, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// One id is defined twice in the same layer.
    #[error(
        "Repository `{id}` is defined twice, in {first} and in {second}; keep only one definition"
    )]
    Duplicate {
        /// The repository id.
        id: String,
        /// The first definition, in file-name order.
        first: Source,
        /// The second definition.
        second: Source,
    },
    /// An id does not match `[A-Za-z0-9][A-Za-z0-9-_]*`.
    #[error(
        "Invalid repository id `{id}`: an id starts with a letter or digit and contains only \
         letters, digits, `-` and `_`"
    )]
    InvalidId {
        /// The rejected id.
        id: String,
    },
    /// A new repository cannot take an id moss uses for something else.
    #[error(
        "Repository id `{id}` is reserved: `local` is the origin of packages installed from \
         local .stone files; choose another id"
    )]
    ReservedId {
        /// The rejected id.
        id: String,
    },
    /// Adding a repository failed after its definition was checked (its index cannot be
    /// fetched, is not an index, or is not signed as required); nothing was changed.
    #[error(
        "Repository `{id}` was not {}, and the configuration and cached indexes are unchanged: \
         {source}",
        if *replacing { "replaced" } else { "added" }
    )]
    NotAdded {
        /// The repository id.
        id: String,
        /// An existing definition was being replaced (and is kept).
        replacing: bool,
        /// Why the index was not accepted.
        source: Box<FetchError>,
    },
    /// A URI has a scheme moss cannot fetch.
    #[error(
        "Repository `{id}` has the URI {uri}, whose scheme is not supported; use a file://, \
         http:// or https:// URL of a stone.index"
    )]
    UnsupportedUri {
        /// The repository id.
        id: String,
        /// The URI.
        uri: String,
    },
    /// A pinned public key is not a minisign public key.
    #[error("Repository `{id}` has an invalid signing key: {problem}")]
    InvalidKey {
        /// The repository id.
        id: String,
        /// What is wrong with the key.
        problem: super::signing::KeyError,
    },
    /// [`add`] with [`AddMode::New`] for an id that exists.
    #[error(
        "Repository `{id}` already exists (defined in {defined}); remove it first or replace it \
         explicitly"
    )]
    AlreadyExists {
        /// The repository id.
        id: String,
        /// Its current definition.
        defined: Source,
    },
    /// No repository has this id.
    #[error(
        "Repository `{id}` is not configured; list the configured repositories with {hint}",
        hint = crate::hint::moss("repo list")
    )]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// A vendor repository cannot be removed, only disabled.
    #[error(
        "Repository `{id}` comes from the vendor file {} and cannot be removed; disable it \
         instead with {hint}",
        path.display(),
        hint = crate::hint::moss(&format!("repo disable {id}"))
    )]
    VendorRepository {
        /// The repository id.
        id: String,
        /// The vendor file.
        path: PathBuf,
    },
    /// The definition sits in a legacy YAML file with other repositories.
    #[error(
        "Repository `{id}` is defined in the legacy YAML file {} together with other \
         repositories; edit that file by hand or move the definition to {id}.kdl",
        path.display()
    )]
    ManualEdit {
        /// The repository id.
        id: String,
        /// The YAML file.
        path: PathBuf,
    },
    /// A configuration file cannot be written or removed.
    #[error(
        "Cannot write repository configuration {}: {source}; check that the directory is writable",
        path.display()
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Every configured repository, sorted by priority (highest first), then id.
pub fn load(root: &Path) -> Result<Vec<Repository>, ConfigError> {
    Ok(load_configured(root)?
        .into_iter()
        .map(|configured| configured.repository)
        .collect())
}

/// Like [`load`], with the place each definition comes from.
pub fn load_configured(root: &Path) -> Result<Vec<ConfiguredRepository>, ConfigError> {
    let vendor = load_layer(root, Layer::Vendor)?;
    let admin = load_layer(root, Layer::Admin)?;
    let mut merged: BTreeMap<String, ConfiguredRepository> = vendor
        .into_iter()
        .map(|(id, (repository, source))| {
            let configured = ConfiguredRepository {
                repository,
                vendor: Some(source.clone()),
                source,
            };
            (id, configured)
        })
        .collect();
    for (id, (repository, source)) in admin {
        let vendor = merged.remove(&id).and_then(|previous| previous.vendor);
        merged.insert(
            id,
            ConfiguredRepository {
                repository,
                source,
                vendor,
            },
        );
    }
    let mut list: Vec<ConfiguredRepository> = merged.into_values().collect();
    list.sort_by(|a, b| {
        b.repository
            .priority
            .cmp(&a.repository.priority)
            .then_with(|| a.repository.id.cmp(&b.repository.id))
    });
    Ok(list)
}

/// Add a repository as an admin definition; returns the file written.
///
/// With [`AddMode::New`] an id that is already configured (vendor or admin) is refused. A
/// reserved id (`local`) is refused for a repository that is not configured yet; an existing
/// definition with such an id (from before it was reserved) can still be replaced, so that it can
/// be copied, enabled or disabled.
pub fn add(root: &Path, repository: &Repository, mode: AddMode) -> Result<PathBuf, ConfigError> {
    check_add(root, repository, mode)?;
    save(root, repository)
}

/// Check everything [`add`] checks, without writing anything.
pub fn check_add(root: &Path, repository: &Repository, mode: AddMode) -> Result<(), ConfigError> {
    validate_id(&repository.id)?;
    check_scheme(&repository.id, &repository.uri)?;
    match (find(root, &repository.id)?, mode) {
        (Some(existing), AddMode::New) => Err(ConfigError::AlreadyExists {
            id: repository.id.clone(),
            defined: existing.source,
        }),
        (Some(_), AddMode::Replace) => Ok(()),
        (None, _) => check_reserved_id(&repository.id),
    }
}

/// Write `repository` as the admin definition of its id (creating or replacing it); returns the
/// file written. A vendor definition of the same id stays in place and is overridden.
pub fn save(root: &Path, repository: &Repository) -> Result<PathBuf, ConfigError> {
    validate_id(&repository.id)?;
    check_scheme(&repository.id, &repository.uri)?;
    let id = &repository.id;
    let admin = load_layer(root, Layer::Admin)?;
    let target = match admin.get(id) {
        Some((_, source)) if is_kdl(&source.path) => source.path.clone(),
        Some((_, source)) => {
            // Legacy YAML: move the definition to <id>.kdl when the file holds nothing else.
            if yaml_ids(&source.path)?.len() != 1 {
                return Err(ConfigError::ManualEdit {
                    id: id.clone(),
                    path: source.path.clone(),
                });
            }
            let target = admin_file(root, id);
            edit_kdl(&target, id, Some(render_node(repository)))?;
            if let Err(source_error) = fs::remove_file(&source.path) {
                // Both files would define the id: take the new definition back out.
                let _ = edit_kdl(&target, id, None);
                return Err(ConfigError::Write {
                    path: source.path.clone(),
                    source: source_error,
                });
            }
            return Ok(target);
        }
        None => {
            let target = admin_file(root, id);
            // A new <id>.kdl would hide a same-stem <id>.yaml that defines other repositories.
            let shadowed = target.with_extension("yaml");
            if shadowed.is_file() && !yaml_ids(&shadowed)?.is_empty() {
                return Err(ConfigError::ManualEdit {
                    id: id.clone(),
                    path: shadowed,
                });
            }
            target
        }
    };
    edit_kdl(&target, id, Some(render_node(repository)))?;
    Ok(target)
}

/// Remove an admin-defined repository; returns the file changed or deleted.
///
/// A repository defined by a vendor file cannot be removed (it would come back): the error says
/// so and suggests [`disable`]. The caller removes the repository's cache directory.
pub fn remove(root: &Path, id: &str) -> Result<PathBuf, ConfigError> {
    validate_id(id)?;
    let configured = find(root, id)?.ok_or_else(|| ConfigError::NotFound { id: id.to_owned() })?;
    if let Some(vendor) = configured.vendor {
        return Err(ConfigError::VendorRepository {
            id: id.to_owned(),
            path: vendor.path,
        });
    }
    let path = configured.source.path;
    if is_kdl(&path) {
        edit_kdl(&path, id, None)?;
    } else if yaml_ids(&path)?.len() == 1 {
        fs::remove_file(&path).map_err(|source| ConfigError::Write {
            path: path.clone(),
            source,
        })?;
    } else {
        return Err(ConfigError::ManualEdit {
            id: id.to_owned(),
            path,
        });
    }
    Ok(path)
}

/// Mark a repository active; returns the admin file written.
pub fn enable(root: &Path, id: &str) -> Result<PathBuf, ConfigError> {
    set_active(root, id, true)
}

/// Mark a repository inactive (an admin override for a vendor repository); returns the admin
/// file written.
pub fn disable(root: &Path, id: &str) -> Result<PathBuf, ConfigError> {
    set_active(root, id, false)
}

fn set_active(root: &Path, id: &str, active: bool) -> Result<PathBuf, ConfigError> {
    validate_id(id)?;
    let configured = find(root, id)?.ok_or_else(|| ConfigError::NotFound { id: id.to_owned() })?;
    let mut repository = configured.repository;
    repository.active = active;
    save(root, &repository)
}

fn find(root: &Path, id: &str) -> Result<Option<ConfiguredRepository>, ConfigError> {
    Ok(load_configured(root)?
        .into_iter()
        .find(|configured| configured.repository.id == id))
}

fn admin_file(root: &Path, id: &str) -> PathBuf {
    root.join(ADMIN_DIR)
        .join("repo.d")
        .join(format!("{id}.kdl"))
}

fn is_kdl(path: &Path) -> bool {
    path.extension().is_some_and(|extension| extension == "kdl")
}

/// Replace (`Some`) or delete (`None`) the node `id` of a KDL file, keeping the rest of the file.
/// A missing file starts empty; a file left without nodes is deleted.
fn edit_kdl(path: &Path, id: &str, node: Option<KdlNode>) -> Result<(), ConfigError> {
    let mut document = match fs::read_to_string(path) {
        Ok(text) => parse_kdl_document(path, &text)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => KdlDocument::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let nodes = document.nodes_mut();
    let position = nodes
        .iter()
        .position(|existing| existing.name().value() == id);
    match (position, node) {
        (Some(position), Some(mut node)) => {
            // Keep the comments and blank lines around the definition.
            if let Some(old) = nodes[position].format() {
                let mut format = node.format().cloned().unwrap_or_default();
                format.leading = old.leading.clone();
                format.trailing = old.trailing.clone();
                node.set_format(format);
            }
            nodes[position] = node;
        }
        (None, Some(node)) => nodes.push(node),
        (Some(position), None) => {
            nodes.remove(position);
        }
        (None, None) => {}
    }
    let write_error = |source| ConfigError::Write {
        path: path.to_owned(),
        source,
    };
    if document.nodes().is_empty() {
        return match fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(write_error(error)),
            _ => Ok(()),
        };
    }
    let mut text = document.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    write_atomically(path, |file| file.write_all(text.as_bytes())).map_err(write_error)
}

type Layered = BTreeMap<String, (Repository, Source)>;

/// Every definition of one layer, keyed by id; one id twice is an error.
fn load_layer(root: &Path, layer: Layer) -> Result<Layered, ConfigError> {
    let base = root.join(match layer {
        Layer::Vendor => VENDOR_DIR,
        Layer::Admin => ADMIN_DIR,
    });
    let mut files = config_files(&base, Some("repo"))?;
    files.extend(config_files(&base.join("repo.d"), None)?);
    let mut found = Layered::new();
    for path in files {
        for (repository, line) in parse_file(&path)? {
            let source = Source {
                layer,
                path: path.clone(),
                line,
            };
            match found.entry(repository.id.clone()) {
                Entry::Vacant(slot) => {
                    slot.insert((repository, source));
                }
                Entry::Occupied(slot) => {
                    return Err(ConfigError::Duplicate {
                        id: repository.id,
                        first: slot.get().1.clone(),
                        second: source,
                    });
                }
            }
        }
    }
    Ok(found)
}

/// The `.kdl` and `.yaml` files of a directory, sorted by file name; a `.kdl` hides the `.yaml`
/// with the same stem. With `stem`, only files with that stem. Hidden files are ignored.
fn config_files(dir: &Path, stem: Option<&str>) -> Result<Vec<PathBuf>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(read_error(error)),
    };
    // stem -> (kdl, yaml)
    let mut by_stem: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(read_error)?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let Some((file_stem, extension)) = name.rsplit_once('.') else {
            continue;
        };
        if name.starts_with('.')
            || stem.is_some_and(|wanted| wanted != file_stem)
            || !matches!(extension, "kdl" | "yaml")
            || !path.is_file()
        {
            continue;
        }
        let slot = by_stem.entry(file_stem.to_owned()).or_default();
        if extension == "kdl" {
            slot.0 = Some(path);
        } else {
            slot.1 = Some(path);
        }
    }
    Ok(by_stem
        .into_values()
        .filter_map(|(kdl, yaml)| kdl.or(yaml))
        .collect())
}

//! State maintenance: prune, garbage collection and verification.

use std::{
    collections::{HashMap, HashSet},
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
};

use crate::{
    engine::{EngineError, Moss, io_error, remove_tree},
    store::Store,
    vfs::{Kind, Vfs},
};

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// States removed.
    pub states: Vec<u64>,
    /// Packages no state uses any more.
    pub packages: usize,
    /// Store and cache files deleted.
    pub files: usize,
}

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// The state whose tree has the problem (`None` for store problems).
    pub state: Option<u64>,
    /// The path (in the tree, or in the store).
    pub path: String,
    /// What is wrong.
    pub problem: String,
    /// For damaged contents (a store file, or a tree file, which links a store file or a
    /// variant of it): the content digest, so that a repair unpacks the contents again.
    #[serde(skip)]
    pub digest: Option<u128>,
    /// `/etc` or `/var` lack what the system triggers make: a repair runs them again.
    #[serde(skip)]
    pub system: bool,
}

impl Moss {
    /// Remove states older than the active one, keeping the newest `keep` of them, then collect
    /// garbage. The active state is never removed.
    pub async fn prune(&self, keep: usize) -> Result<Pruned, EngineError> {
        self.prune_with(keep, false).await
    }

    /// [`Moss::prune`]; with `include_newer` the states newer than the active one (what a
    /// rollback leaves behind) are removed too, whatever `keep` says.
    pub async fn prune_with(
        &self,
        keep: usize,
        include_newer: bool,
    ) -> Result<Pruned, EngineError> {
        let active = self.active_state();
        let newer: Vec<u64> = match (include_newer, active) {
            (true, Some(active)) => self
                .db
                .states()
                .await?
                .into_iter()
                .map(|state| state.id)
                .filter(|id| *id > active)
                .collect(),
            _ => Vec::new(),
        };
        let mut candidates: Vec<u64> = self
            .db
            .states()
            .await?
            .into_iter()
            .map(|state| state.id)
            .filter(|id| Some(*id) != active && active.is_none_or(|active| *id < active))
            .collect();
        candidates.sort_unstable();
        let excess = candidates.len().saturating_sub(keep);
        let mut remove: Vec<u64> = candidates.into_iter().take(excess).collect();
        remove.extend(newer);
        self.remove_states(&remove).await
    }

    /// Remove the given states (never the active one), then collect garbage.
    pub async fn remove_states(&self, ids: &[u64]) -> Result<Pruned, EngineError> {
        if let Some(active) = self.active_state()
            && ids.contains(&active)
        {
            return Err(EngineError::ActiveState(active));
        }
        for id in ids {
            if self.db.state(*id).await?.is_none() {
                return Err(EngineError::UnknownState(*id));
            }
        }
        self.db.remove_states(ids).await?;
        for id in ids {
            let archive = self.installation.paths().archive(*id);
            if archive.exists() {
                remove_tree(&archive)?;
            }
            let trees = self.installation.paths().trees();
            let _ = fs::remove_file(crate::transaction::tree_cache(&trees, *id));
            let _ = fs::remove_file(crate::transaction::model_cache(&trees, *id));
        }
        let mut pruned = self.collect_garbage().await?;
        pruned.states = ids.to_vec();
        // Removed states lose their boot entries and kernels.
        self.sync_boot_after_change().await;
        Ok(pruned)
    }

    /// Drop packages no state uses, and the store and download files nothing references.
    pub async fn collect_garbage(&self) -> Result<Pruned, EngineError> {
        let removed = self.db.remove_unused_packages().await?;
        let layouts = self.db.all_layouts().await?;
        let referenced: HashSet<String> = layouts
            .iter()
            .flat_map(|(_, layouts)| layouts.iter())
            .filter_map(|layout| match &layout.entry {
                stone::Entry::Regular { digest, .. } => Some(crate::store::Store::key(*digest)),
                _ => None,
            })
            .collect();
        let referenced_digests: HashSet<u128> = layouts
            .iter()
            .flat_map(|(_, layouts)| layouts.iter())
            .filter_map(|layout| match &layout.entry {
                stone::Entry::Regular { digest, .. } => Some(*digest),
                _ => None,
            })
            .collect();
        self.db.retain_asset_hashes(&referenced_digests).await?;
        let packages: HashSet<String> = self
            .db
            .packages()
            .await?
            .into_iter()
            .map(|package| package.id)
            .collect();
        let paths = self.installation.paths().clone();
        let files = tokio::task::spawn_blocking(move || {
            let mut files = 0;
            sweep(
                &paths.assets(),
                &mut |name| {
                    let key = name.split('.').next().unwrap_or(name);
                    !name.ends_with(".part") && referenced.contains(key)
                },
                &mut files,
            )?;
            sweep(
                &paths.downloads(),
                &mut |name| packages.contains(name),
                &mut files,
            )?;
            Ok::<_, EngineError>(files)
        })
        .await
        .map_err(|error| {
            EngineError::Other(format!("garbage collection was interrupted: {error}"))
        })??;
        Ok(Pruned {
            states: Vec::new(),
            packages: removed.len(),
            files,
        })
    }

    /// Check every kept state's tree and every store file they use. Returns the problems found.
    pub async fn verify(&self) -> Result<Vec<Issue>, EngineError> {
        let active = self.active_state();
        let mut issues = Vec::new();
        // Which states and packages use each store file, for the report.
        let mut users: HashMap<u128, (HashSet<u64>, HashSet<String>)> = HashMap::new();
        let mut trees = Vec::new();
        for state in self.db.states().await? {
            let vfs = self.compose(&state.selections).await?;
            for (_, node) in vfs.iter() {
                if let Kind::Regular(digest) = node.kind {
                    let entry = users.entry(digest).or_default();
                    entry.0.insert(state.id);
                    if let Some(package) = &node.package {
                        entry.1.insert(package.to_string());
                    }
                }
            }
            let tree = if Some(state.id) == active {
                Some(self.installation.paths().usr())
            } else {
                let archived = self.installation.paths().archive(state.id).join("usr");
                archived.exists().then_some(archived)
            };
            if let Some(tree) = tree {
                trees.push((state.id, tree, vfs));
            }
        }
        let recorded = self.db.asset_hashes().await?;
        let store = self.store.clone();
        let digests: Vec<u128> = users.keys().copied().collect();
        let (store_issues, inodes) =
            tokio::task::spawn_blocking(move || check_store(&store, &digests, &recorded))
                .await
                .map_err(|error| {
                    EngineError::Other(format!("verification was interrupted: {error}"))
                })?;
        for mut issue in store_issues {
            if let Some((states, packages)) = issue.digest.and_then(|digest| users.get(&digest)) {
                let mut states: Vec<u64> = states.iter().copied().collect();
                states.sort_unstable();
                let mut packages: Vec<String> = packages.iter().cloned().collect();
                packages.sort();
                issue.problem = format!(
                    "{} (used by {} in states {})",
                    issue.problem,
                    packages.join(", "),
                    states
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            issues.push(issue);
        }
        let damaged: std::sync::Arc<HashSet<u128>> =
            std::sync::Arc::new(issues.iter().filter_map(|issue| issue.digest).collect());
        let inodes = std::sync::Arc::new(inodes);
        for (id, tree, vfs) in trees {
            let inodes = inodes.clone();
            let damaged = damaged.clone();
            let found =
                tokio::task::spawn_blocking(move || check_tree(&inodes, &damaged, id, &tree, &vfs))
                    .await
                    .map_err(|error| {
                        EngineError::Other(format!("verification was interrupted: {error}"))
                    })?;
            issues.extend(found);
        }
        if let Some(problem) = self.system_problem().await? {
            issues.push(Issue {
                state: active,
                path: "/etc, /var".to_owned(),
                problem,
                digest: None,
                system: true,
            });
        }
        Ok(issues)
    }

    /// Repair what `verify` found: damaged archived trees are dropped (they are rebuilt from the
    /// store when activated) and a damaged active tree is rebuilt and swapped in.
    pub async fn repair(&self, issues: &[Issue]) -> Result<(), EngineError> {
        let damaged: HashSet<u128> = issues.iter().filter_map(|issue| issue.digest).collect();
        if !damaged.is_empty() {
            self.repair_store(&damaged).await?;
        }
        let active = self.active_state();
        let mut states: HashSet<u64> = issues
            .iter()
            .filter(|issue| !issue.system)
            .filter_map(|issue| issue.state)
            .collect();
        if !damaged.is_empty() {
            // Trees link store files: a damaged asset damaged every tree that uses it.
            states.extend(active);
        }
        for id in states {
            if Some(id) == active {
                self.reblit_active().await?;
            } else {
                let archive = self.installation.paths().archive(id);
                if archive.exists() {
                    remove_tree(&archive)?;
                }
            }
        }
        // `/etc` and `/var` are made by the system triggers from what `/usr` holds: run them
        // all again (users, groups, directories, defaults), nothing is reinstalled.
        if issues.iter().any(|issue| issue.system) {
            let runs = self.regenerate_system().await?;
            if let Some(failed) = runs.iter().find(|run| !run.success) {
                return Err(EngineError::Other(format!(
                    "system trigger {} failed again: `{}` {}\n{}",
                    failed.trigger, failed.command, failed.status, failed.output
                )));
            }
        }
        Ok(())
    }

    /// Delete damaged assets and unpack them again from the packages that carry them: the cached
    /// download when it is intact, otherwise a fresh download from the package's repository.
    async fn repair_store(&self, damaged: &HashSet<u128>) -> Result<(), EngineError> {
        for digest in damaged {
            let asset = self.store.asset_path(*digest);
            let _ = fs::remove_file(&asset);
            // Variants are copies of the asset; they may carry the same damage.
            if let (Some(parent), Some(name)) = (asset.parent(), asset.file_name()) {
                let prefix = format!("{}.", name.to_string_lossy());
                for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
                    if entry.file_name().to_string_lossy().starts_with(&prefix) {
                        let _ = fs::remove_file(entry.path());
                    }
                }
            }
        }
        let owners: Vec<String> = self
            .db
            .all_layouts()
            .await?
            .into_iter()
            .filter(|(_, layouts)| {
                layouts.iter().any(|layout| {
                    matches!(&layout.entry, stone::Entry::Regular { digest, .. } if damaged.contains(digest))
                })
            })
            .map(|(id, _)| id)
            .collect();
        let packages = self.db.packages_by_id(&owners).await?;
        let available = self.available().await.unwrap_or_default();
        let mut stones = Vec::new();
        let mut fetch = Vec::new();
        for package in packages {
            let cached = self.installation.paths().download(&package.id);
            let intact = crate::store::sha256_file(&cached).is_ok_and(|sha| sha == package.id);
            if intact {
                stones.push((cached, Some(package.id.clone()), package.origin.clone()));
                continue;
            }
            match available
                .iter()
                .find(|offer| offer.meta.hash.as_deref() == Some(package.id.as_str()))
            {
                Some(offer) => fetch.push(crate::operations::Fetch {
                    id: package.id.clone(),
                    name: package.meta.name.clone(),
                    url: offer.url.clone(),
                    size: offer.meta.size,
                    repository: offer.repository.clone(),
                }),
                None => {
                    return Err(EngineError::Other(format!(
                        "cannot repair the store: package {} is neither cached intact nor offered by a repository; install it again from its .stone file",
                        package.meta.name
                    )));
                }
            }
        }
        if !fetch.is_empty() {
            stones.extend(self.download(&fetch).await?);
        }
        self.add_stones(stones).await?;
        Ok(())
    }
}

fn sweep(
    directory: &Path,
    keep: &mut dyn FnMut(&str) -> bool,
    removed: &mut usize,
) -> Result<(), EngineError> {
    let Ok(entries) = fs::read_dir(directory) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_directory = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if is_directory {
            sweep(&path, keep, removed)?;
            // Empty fan-out directories go too; a non-empty one stays.
            let _ = fs::remove_dir(&path);
        } else if !keep(&entry.file_name().to_string_lossy()) {
            fs::remove_file(&path).map_err(io_error("removing an unused file", &path))?;
            *removed += 1;
        }
    }
    Ok(())
}

/// Store files by inode: which digest each hard-linkable store file holds.
type StoreInodes = HashMap<(u64, u64), u128>;

/// Check every store file the states use (canonical files and permission variants) on all cores:
/// against its recorded BLAKE3 when there is one, else against its XXH3-128 key. The store is
/// listed once (256 directories), not searched per file.
fn check_store(
    store: &Store,
    digests: &[u128],
    recorded: &HashMap<u128, String>,
) -> (Vec<Issue>, StoreInodes) {
    let needed: HashSet<u128> = digests.iter().copied().collect();
    let mut files: Vec<(u128, std::path::PathBuf)> = Vec::with_capacity(digests.len());
    let mut present: HashSet<u128> = HashSet::with_capacity(digests.len());
    for directory in fs::read_dir(store.root()).into_iter().flatten().flatten() {
        for entry in fs::read_dir(directory.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(digest) = name
                .get(..32)
                .and_then(|key| u128::from_str_radix(key, 16).ok())
            else {
                continue;
            };
            if needed.contains(&digest) && !name.ends_with(".part") {
                if name.len() == 32 {
                    present.insert(digest);
                }
                files.push((digest, entry.path()));
            }
        }
    }
    let mut issues: Vec<Issue> = digests
        .iter()
        .filter(|digest| !present.contains(digest))
        .map(|digest| Issue {
            state: None,
            path: store.asset_path(*digest).display().to_string(),
            problem: "missing".to_owned(),
            digest: Some(*digest),
            system: false,
        })
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |count| count.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let found = std::sync::Mutex::new((Vec::new(), StoreInodes::with_capacity(files.len())));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local_issues = Vec::new();
                let mut local_inodes = Vec::new();
                loop {
                    let position = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((digest, path)) = files.get(position) else {
                        break;
                    };
                    let (problem, inode) = match recorded.get(digest) {
                        Some(blake3) => check_blake3(path, blake3),
                        None => (check_file(path, *digest), None),
                    };
                    match problem {
                        Some(problem) => local_issues.push(Issue {
                            state: None,
                            path: path.display().to_string(),
                            problem,
                            digest: Some(*digest),
                            system: false,
                        }),
                        None => local_inodes.extend(inode.map(|inode| (inode, *digest))),
                    }
                }
                let mut shared = found.lock().expect("results");
                shared.0.extend(local_issues);
                shared.1.extend(local_inodes);
            });
        }
    });
    let (found_issues, inodes) = found.into_inner().expect("results");
    issues.extend(found_issues);
    issues.sort_by(|a, b| a.path.cmp(&b.path));
    (issues, inodes)
}

fn check_blake3(path: &Path, expected: &str) -> (Option<String>, Option<(u64, u64)>) {
    use std::os::unix::fs::MetadataExt;
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(_) => return (Some("missing".to_owned()), None),
    };
    let inode = file
        .metadata()
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()));
    let mut hasher = blake3::Hasher::new();
    if let Err(error) = io::copy(&mut file, &mut hasher) {
        return (Some(format!("unreadable ({error})")), inode);
    }
    let actual = hasher.finalize().to_hex();
    let problem = (actual.as_str() != expected)
        .then(|| format!("corrupt: BLAKE3 is {actual}, recorded {expected}"));
    (problem, inode)
}

fn check_file(path: &Path, digest: u128) -> Option<String> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(_) => return Some("missing".to_owned()),
    };
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => hasher.update(&buffer[..count]),
            Err(error) => return Some(format!("unreadable ({error})")),
        }
    }
    let actual = hasher.digest128();
    (actual != digest)
        .then(|| format!("corrupt: content hashes to {actual:032x}, expected {digest:032x}"))
}

fn check_tree(
    inodes: &StoreInodes,
    damaged: &HashSet<u128>,
    state: u64,
    tree: &Path,
    vfs: &Vfs,
) -> Vec<Issue> {
    use std::os::unix::fs::MetadataExt;
    let mut issues = Vec::new();
    let mut issue = |path: &str, problem: String, digest: Option<u128>| {
        issues.push(Issue {
            state: Some(state),
            path: format!("/usr/{path}"),
            problem,
            digest,
            system: false,
        })
    };
    for (path, node) in vfs.iter() {
        let full: PathBuf = tree.join(path);
        let metadata = match fs::symlink_metadata(&full) {
            Ok(metadata) => metadata,
            Err(_) => {
                issue(path, "missing".to_owned(), None);
                continue;
            }
        };
        match &node.kind {
            Kind::Directory if !metadata.is_dir() => {
                issue(path, "should be a directory".to_owned(), None)
            }
            Kind::Symlink(target) => match fs::read_link(&full) {
                Ok(actual) if actual == Path::new(target) => {}
                Ok(actual) => issue(
                    path,
                    format!("links to {} instead of {target}", actual.display()),
                    None,
                ),
                Err(_) => issue(path, "should be a symlink".to_owned(), None),
            },
            Kind::Regular(digest) => {
                if !metadata.is_file() {
                    issue(path, "should be a regular file".to_owned(), None);
                } else if inodes.get(&(metadata.dev(), metadata.ino())) == Some(digest) {
                    // The same inode as a store file, whose content the store check read.
                    if damaged.contains(digest) {
                        issue(
                            path,
                            "corrupt: it is a link to a damaged store file".to_owned(),
                            Some(*digest),
                        );
                    }
                } else if let Some(problem) = check_file(&full, *digest) {
                    // Tree files are hard links into the store (a variant for modes other
                    // than 0444, which the store check does not read): the damage is the
                    // store's too, and rebuilding the tree alone would link it again.
                    issue(path, problem, Some(*digest));
                }
            }
            Kind::Directory => {}
        }
    }
    issues
}

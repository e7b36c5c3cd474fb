//! Adding packages to an archived tree at the cost of what is added, not of the whole tree.
//!
//! When the target state is the base state plus some packages, the new tree is the base tree
//! plus the entries those packages bring. Only the added packages are composed; each of their
//! paths is checked against the base tree on disk (which holds exactly the base state). Anything
//! that is not a plain addition (a path already there with other contents, a differing directory
//! mode, a path under a symlink) falls back to the full path, which composes the whole state,
//! reports conflicts precisely and diffs the trees: the result is always what a full blit gives.

use std::{collections::HashSet, fs, io};

use crate::{
    blit::{BlitStats, Blitter},
    db::{Selection, State},
    engine::{EngineError, Moss, io_error, remove_tree},
    events::{Event, Phase},
    transaction::{tree_cache, write_state_id},
    vfs::{Kind, Node, Vfs},
};

impl Moss {
    /// Build `target`'s tree in staging from `base`'s archived tree when `target` only adds
    /// packages to it. `None` means "not a plain addition": nothing was touched.
    pub(crate) async fn try_add_only(
        &self,
        target: &State,
        base: &State,
    ) -> Result<Option<BlitStats>, EngineError> {
        let base_ids: HashSet<&str> = base
            .selections
            .iter()
            .map(|selection| selection.package.as_str())
            .collect();
        let target_ids: HashSet<&str> = target
            .selections
            .iter()
            .map(|selection| selection.package.as_str())
            .collect();
        if !base_ids.is_subset(&target_ids) {
            return Ok(None);
        }
        let added: Vec<Selection> = target
            .selections
            .iter()
            .filter(|selection| !base_ids.contains(selection.package.as_str()))
            .cloned()
            .collect();
        let paths = self.installation.paths().clone();
        let base_cache = tree_cache(&paths.trees(), base.id);
        if added.is_empty() || !base_cache.exists() {
            return Ok(None);
        }
        // Entries placed under a symlink are moved by the full composition; leave those to it.
        let added_ids: Vec<String> = added
            .iter()
            .map(|selection| selection.package.clone())
            .collect();
        let layouts = self.db.layouts(&added_ids).await?;
        let links: HashSet<&str> = layouts
            .iter()
            .flat_map(|(_, layouts)| layouts)
            .filter_map(|layout| match &layout.entry {
                stone::Entry::Symlink { target, .. } => Some(target.as_str()),
                _ => None,
            })
            .collect();
        let under_link = layouts
            .iter()
            .flat_map(|(_, layouts)| layouts)
            .any(|layout| {
                layout.entry.target().is_some_and(|path| {
                    path.match_indices('/')
                        .any(|(at, _)| links.contains(&path[..at]))
                })
            });
        if under_link {
            return Ok(None);
        }
        // The added packages' own tree: their conflicts among themselves fail here (the full path
        // then reports them with every package in view).
        let Ok(added_tree) = self.compose(&added).await else {
            return Ok(None);
        };
        let archive_usr = paths.archive(base.id).join("usr");
        let staging = paths.staging();
        let staging_usr = staging.join("usr");
        let store = self.store.clone();
        let target_id = target.id;
        let target_cache = tree_cache(&paths.trees(), target.id);
        let reporter = self.reporter.clone();
        tokio::task::spawn_blocking(move || -> Result<Option<BlitStats>, EngineError> {
            // Plan against the base tree, writing nothing yet.
            let mut creations: Vec<(&String, &Node)> = Vec::new();
            for (path, node) in added_tree.iter() {
                match fs::symlink_metadata(archive_usr.join(path)) {
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        creations.push((path, node))
                    }
                    Err(_) => return Ok(None),
                    Ok(metadata) => {
                        use std::os::unix::fs::MetadataExt;
                        let same_directory = node.kind == Kind::Directory
                            && metadata.is_dir()
                            && (node.package.is_none()
                                || (metadata.mode() & 0o7777 == node.mode & 0o7777
                                    && metadata.uid() == node.uid
                                    && metadata.gid() == node.gid));
                        if !same_directory {
                            return Ok(None);
                        }
                    }
                }
            }
            reporter.report(Event::PhaseStarted {
                phase: Phase::Blit,
                total: creations.len() as u64,
            });
            fs::create_dir_all(&staging).map_err(io_error("creating staging", &staging))?;
            if staging_usr.exists() {
                remove_tree(&staging_usr)?;
            }
            fs::rename(&archive_usr, &staging_usr)
                .map_err(io_error("reusing an archived tree", &archive_usr))?;
            if let Some(parent) = archive_usr.parent() {
                let _ = fs::remove_dir(parent);
            }
            let mut blitter = Blitter::new(&store);
            let created = blitter.create_all(&staging_usr, &creations)?;
            write_state_id(&staging_usr, target_id)?;
            // The new tree's description: the base's plus what was created (decoding sorts).
            let mut description =
                fs::read(&base_cache).map_err(io_error("reading the tree cache", &base_cache))?;
            let nodes = creations
                .iter()
                .map(|(path, node)| ((*path).clone(), (*node).clone()));
            description.extend(Vfs::from_nodes(nodes).encode());
            fs::write(&target_cache, description)
                .map_err(io_error("caching the tree", &target_cache))?;
            Ok(Some(BlitStats {
                created,
                ..BlitStats::default()
            }))
        })
        .await
        .map_err(|error| {
            EngineError::Other(format!("building the tree was interrupted: {error}"))
        })?
    }
}

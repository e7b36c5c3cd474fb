//! The virtual tree of a state: every path under `/usr`, computed from package layouts before
//! anything is written, with conflicts detected.
//!
//! Rules: two packages may declare the same directory; any other path claimed twice must be
//! identical (same type, content, mode and owner), otherwise it is an error naming both packages.
//! Parent directories are implied (0755, root). Entries placed under an in-tree symlink to a
//! directory are moved under the link's target, as upstream does, but a link that leads out of
//! `/usr` (absolute outside it, or `..` past it) can never be used to place an entry.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use stone::{Entry, Layout};

/// Mode of an implied directory.
pub const IMPLIED_DIRECTORY_MODE: u32 = 0o40755;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A directory.
    Directory,
    /// A regular file with this content.
    Regular(u128),
    /// A symlink with this link text.
    Symlink(String),
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Full `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The package that declared it (`None` for implied directories).
    pub package: Option<Arc<str>>,
}

impl Node {
    /// Whether two nodes produce the same file on disk (the declaring package does not matter).
    pub fn same_file(&self, other: &Node) -> bool {
        self.kind == other.kind
            && self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
    }
}

/// Why a tree cannot be composed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VfsError {
    /// Two packages claim one path differently.
    #[error(
        "/usr/{path} is installed by both {first} and {second} with different contents; remove one of them"
    )]
    Conflict {
        /// The path, relative to `/usr`.
        path: String,
        /// One package.
        first: String,
        /// The other.
        second: String,
    },
    /// A path is both a directory and something else.
    #[error("{package} needs /usr/{path} to be a directory, but {owner} installs a {what} there")]
    NotADirectory {
        /// The path.
        path: String,
        /// Who needs the directory.
        package: String,
        /// Who installs the non-directory.
        owner: String,
        /// What it is.
        what: &'static str,
    },
    /// An entry would be placed through a symlink leading out of `/usr`.
    #[error(
        "package {package}: layout entry `{entry}` is placed through the symlink /usr/{link}, which leads out of /usr (rule: entries must stay under /usr)"
    )]
    Escape {
        /// The package.
        package: String,
        /// The entry.
        entry: String,
        /// The symlink.
        link: String,
    },
}

/// The tree of one state, sorted so that parents come before their children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vfs {
    nodes: BTreeMap<String, Node>,
}

impl Vfs {
    /// Compose the tree of packages given as `(package name, layouts)`.
    pub fn build<'a>(
        packages: impl IntoIterator<Item = (&'a str, &'a [Layout])>,
    ) -> Result<Self, VfsError> {
        let mut explicit: BTreeMap<String, Node> = BTreeMap::new();
        let mut symlinks: HashSet<String> = HashSet::new();
        for (package, layouts) in packages {
            let package: Arc<str> = Arc::from(package);
            for layout in layouts {
                let (kind, target) = match &layout.entry {
                    Entry::Directory(target) => (Kind::Directory, target),
                    Entry::Regular { digest, target } => (Kind::Regular(*digest), target),
                    Entry::Symlink { source, target } => (Kind::Symlink(source.clone()), target),
                    // Devices, fifos, sockets and unknown types are recorded, never materialised.
                    _ => continue,
                };
                if matches!(kind, Kind::Symlink(_)) {
                    symlinks.insert(target.clone());
                }
                let node = Node {
                    kind,
                    mode: layout.mode,
                    uid: layout.uid,
                    gid: layout.gid,
                    package: Some(package.clone()),
                };
                insert(&mut explicit, target.clone(), node)?;
            }
        }
        // Only links that something is placed under need the (costly) redirect pass.
        let used_links: HashSet<String> = symlinks
            .into_iter()
            .filter(|link| {
                let prefix = format!("{link}/");
                explicit
                    .range::<str, _>((
                        std::ops::Bound::Included(prefix.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .next()
                    .is_some_and(|(path, _)| path.starts_with(&prefix))
            })
            .collect();
        let explicit = if used_links.is_empty() {
            explicit
        } else {
            redirect(explicit, &used_links)?
        };
        let mut nodes = explicit;
        // Collect the implied parents first (borrowing), then insert them.
        let mut implied: Vec<String> = Vec::new();
        {
            let mut seen: HashSet<&str> = HashSet::new();
            for (path, node) in &nodes {
                let mut ancestor = path.as_str();
                while let Some((parent, _)) = ancestor.rsplit_once('/') {
                    ancestor = parent;
                    match nodes.get(parent) {
                        Some(existing) if existing.kind == Kind::Directory => break,
                        Some(existing) => {
                            return Err(VfsError::NotADirectory {
                                path: parent.to_owned(),
                                package: label(node),
                                owner: label(existing),
                                what: what(&existing.kind),
                            });
                        }
                        None => {
                            if !seen.insert(parent) {
                                break;
                            }
                            implied.push(parent.to_owned());
                        }
                    }
                }
            }
        }
        for parent in implied {
            nodes.insert(
                parent,
                Node {
                    kind: Kind::Directory,
                    mode: IMPLIED_DIRECTORY_MODE,
                    uid: 0,
                    gid: 0,
                    package: None,
                },
            );
        }
        Ok(Self { nodes })
    }

    /// Every path (relative to `/usr`) and its node, parents first.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// The node at a path.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Build from nodes already sorted and complete (a tree saved earlier by [`Vfs::encode`]).
    pub fn from_nodes(nodes: impl IntoIterator<Item = (String, Node)>) -> Self {
        Self {
            nodes: nodes.into_iter().collect(),
        }
    }

    /// Encode the tree compactly (stone layout records, back to back) to cache it beside an
    /// archived tree: reloading it is much cheaper than composing it from package layouts.
    pub fn encode(&self) -> Vec<u8> {
        let layouts: Vec<Layout> = self
            .nodes
            .iter()
            .map(|(path, node)| Layout {
                uid: node.uid,
                gid: node.gid,
                mode: node.mode,
                tag: 0,
                entry: match &node.kind {
                    Kind::Directory => Entry::Directory(path.clone()),
                    Kind::Regular(digest) => Entry::Regular {
                        digest: *digest,
                        target: path.clone(),
                    },
                    Kind::Symlink(target) => Entry::Symlink {
                        source: target.clone(),
                        target: path.clone(),
                    },
                },
            })
            .collect();
        stone::payload::layout::encode_all(&layouts).unwrap_or_default()
    }

    /// Decode a tree written by [`Vfs::encode`]; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let layouts = stone::payload::layout::decode_all(bytes).ok()?;
        let mut nodes = BTreeMap::new();
        for layout in layouts {
            let (kind, path) = match layout.entry {
                Entry::Directory(path) => (Kind::Directory, path),
                Entry::Regular { digest, target } => (Kind::Regular(digest), target),
                Entry::Symlink { source, target } => (Kind::Symlink(source), target),
                _ => return None,
            };
            nodes.insert(
                path,
                Node {
                    kind,
                    mode: layout.mode,
                    uid: layout.uid,
                    gid: layout.gid,
                    package: None,
                },
            );
        }
        Some(Self { nodes })
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

fn label(node: &Node) -> String {
    node.package
        .as_deref()
        .unwrap_or("an implied directory")
        .to_owned()
}

fn what(kind: &Kind) -> &'static str {
    match kind {
        Kind::Directory => "directory",
        Kind::Regular(_) => "file",
        Kind::Symlink(_) => "symlink",
    }
}

fn insert(nodes: &mut BTreeMap<String, Node>, path: String, node: Node) -> Result<(), VfsError> {
    match nodes.get_mut(&path) {
        None => {
            nodes.insert(path, node);
            Ok(())
        }
        // Directories shared by packages merge; the first declaration keeps its mode.
        Some(existing) if existing.kind == Kind::Directory && node.kind == Kind::Directory => {
            Ok(())
        }
        Some(existing) if existing.same_file(&node) => Ok(()),
        Some(existing) => Err(VfsError::Conflict {
            path,
            first: label(existing),
            second: label(&node),
        }),
    }
}

/// Move entries placed under in-tree directory symlinks to the link's target.
fn redirect(
    explicit: BTreeMap<String, Node>,
    symlinks: &HashSet<String>,
) -> Result<BTreeMap<String, Node>, VfsError> {
    let links: BTreeMap<String, String> = explicit
        .iter()
        .filter_map(|(path, node)| match &node.kind {
            Kind::Symlink(target) if symlinks.contains(path) => {
                Some((path.clone(), target.clone()))
            }
            _ => None,
        })
        .collect();
    let mut result = BTreeMap::new();
    for (path, node) in explicit {
        let resolved = resolve_through_links(&path, &links, &node)?;
        insert(&mut result, resolved, node)?;
    }
    Ok(result)
}

/// Resolve every ancestor of `path` that is an in-tree symlink, up to a bounded depth.
fn resolve_through_links(
    path: &str,
    links: &BTreeMap<String, String>,
    node: &Node,
) -> Result<String, VfsError> {
    let mut current = path.to_owned();
    for _ in 0..16 {
        let mut changed = false;
        let mut prefix_end = 0;
        while let Some(offset) = current[prefix_end..].find('/') {
            let ancestor = &current[..prefix_end + offset];
            if let Some(target) = links.get(ancestor) {
                let escape = || VfsError::Escape {
                    package: label(node),
                    entry: path.to_owned(),
                    link: ancestor.to_owned(),
                };
                let base = ancestor.rsplit_once('/').map_or("", |(parent, _)| parent);
                let resolved = normalise(base, target).ok_or_else(escape)?;
                current = format!("{resolved}{}", &current[prefix_end + offset..]);
                changed = true;
                break;
            }
            prefix_end += offset + 1;
        }
        if !changed {
            return Ok(current);
        }
    }
    Err(VfsError::Escape {
        package: label(node),
        entry: path.to_owned(),
        link: "(a chain of more than 16 links)".to_owned(),
    })
}

/// Join a link text to the link's directory (both relative to `/usr`), refusing to leave `/usr`.
fn normalise(base: &str, target: &str) -> Option<String> {
    let (start, rest) = match target.strip_prefix('/') {
        Some(absolute) => (
            Vec::new(),
            absolute
                .strip_prefix("usr/")
                .or((absolute == "usr").then_some(""))?,
        ),
        None => (
            base.split('/').filter(|part| !part.is_empty()).collect(),
            target,
        ),
    };
    let mut parts: Vec<&str> = start;
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(target: &str, digest: u128) -> Layout {
        Layout {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            tag: 0,
            entry: Entry::Regular {
                digest,
                target: target.into(),
            },
        }
    }

    fn link(target: &str, source: &str) -> Layout {
        Layout {
            uid: 0,
            gid: 0,
            mode: 0o120777,
            tag: 0,
            entry: Entry::Symlink {
                source: source.into(),
                target: target.into(),
            },
        }
    }

    #[test]
    fn parents_are_implied_and_sorted_first() {
        let layouts = [file("share/a/b/c", 1)];
        let vfs = Vfs::build([("p", &layouts[..])]).unwrap();
        let paths: Vec<_> = vfs.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(paths, ["share", "share/a", "share/a/b", "share/a/b/c"]);
    }

    #[test]
    fn conflicting_files_name_both_packages() {
        let a = [file("bin/x", 1)];
        let b = [file("bin/x", 2)];
        let error = Vfs::build([("alpha", &a[..]), ("beta", &b[..])]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("alpha") && text.contains("beta") && text.contains("/usr/bin/x"),
            "{text}"
        );
        let same = [file("bin/x", 1)];
        assert!(Vfs::build([("alpha", &a[..]), ("gamma", &same[..])]).is_ok());
    }

    #[test]
    fn symlinked_directories_are_followed_inside_usr_only() {
        let layouts = [
            file("lib/real", 1),
            link("lib64", "lib"),
            file("lib64/x", 2),
        ];
        let vfs = Vfs::build([("p", &layouts[..])]).unwrap();
        assert!(vfs.get("lib/x").is_some());
        assert!(vfs.get("lib64/x").is_none());
        let hostile = [
            link("share/evil", "../../etc"),
            file("share/evil/passwd", 3),
        ];
        let error = Vfs::build([("evil", &hostile[..])]).unwrap_err();
        assert!(matches!(error, VfsError::Escape { .. }), "{error}");
        let absolute = [link("share/evil", "/etc"), file("share/evil/passwd", 3)];
        assert!(matches!(
            Vfs::build([("evil", &absolute[..])]).unwrap_err(),
            VfsError::Escape { .. }
        ));
    }
}

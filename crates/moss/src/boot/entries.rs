//! Planning and writing boot entries, kernels and `loader.conf`.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use super::{BootError, io};
use crate::{
    store::Store,
    vfs::{Kind, Vfs},
};

/// The operating system's identity, from the active tree's `os-release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// `ID`: names entries and the kernel directory.
    pub id: String,
    /// `PRETTY_NAME` (or `NAME`): titles entries.
    pub name: String,
}

impl Identity {
    pub(crate) fn of(tree: &Vfs, store: &Store) -> Self {
        let text = match tree.get("lib/os-release").map(|node| &node.kind) {
            Some(Kind::Regular(digest)) => fs::read_to_string(store.asset_path(*digest)).ok(),
            _ => None,
        }
        .unwrap_or_default();
        let field = |key: &str| {
            text.lines().find_map(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|value| value.trim().trim_matches('"').to_owned())
                    .filter(|value| !value.is_empty())
            })
        };
        // Entry and directory names must stay plain on FAT.
        let id = field("ID")
            .filter(|id| {
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            })
            .unwrap_or_else(|| "serpentos".to_owned());
        let name = field("PRETTY_NAME")
            .or_else(|| field("NAME"))
            .unwrap_or_else(|| "Serpent OS".to_owned());
        Self { id, name }
    }
}

/// One kernel of a state, with the store files that make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kernel {
    pub version: String,
    pub vmlinuz: PathBuf,
    /// Initrds by file name, sorted.
    pub initrds: Vec<(String, PathBuf)>,
    /// Kernel-specific command line snippets by file name, sorted.
    pub cmdline: Vec<(String, String)>,
    /// Directory name on the boot partition: version and content, so that equal versions with
    /// different contents never share a directory.
    pub directory: String,
}

/// The kernels of a tree (`usr/lib/kernel/<version>/vmlinuz`) and its version-independent
/// command line snippets (`usr/lib/kernel/cmdline.d/*.cmdline`), all sorted by name.
pub(crate) fn kernels(tree: &Vfs, store: &Store) -> (Vec<Kernel>, Vec<(String, String)>) {
    let regular = |path: &str| match tree.get(path).map(|node| &node.kind) {
        Some(Kind::Regular(digest)) => Some(*digest),
        _ => None,
    };
    let mut kernels = Vec::new();
    let mut snippets = Vec::new();
    for (path, node) in tree.iter() {
        let Some(rest) = path.strip_prefix("lib/kernel/") else {
            continue;
        };
        if let Some(name) = rest.strip_prefix("cmdline.d/")
            && name.ends_with(".cmdline")
            && let Kind::Regular(digest) = node.kind
        {
            snippets.push((name.to_owned(), snippet(&store.asset_path(digest))));
            continue;
        }
        let Some(version) = rest.strip_suffix("/vmlinuz") else {
            continue;
        };
        if version.contains('/') || version == "cmdline.d" {
            continue;
        }
        let Some(vmlinuz) = regular(path) else {
            continue;
        };
        let prefix = format!("lib/kernel/{version}/");
        let mut initrds = Vec::new();
        let mut cmdline = Vec::new();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&vmlinuz.to_le_bytes());
        for (other, node) in tree.iter() {
            let Some(name) = other.strip_prefix(&prefix) else {
                continue;
            };
            let Kind::Regular(digest) = node.kind else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            if name.ends_with(".initrd") {
                hasher.update(name.as_bytes());
                hasher.update(&digest.to_le_bytes());
                initrds.push((name.to_owned(), store.asset_path(digest)));
            } else if name.ends_with(".cmdline") {
                cmdline.push((name.to_owned(), snippet(&store.asset_path(digest))));
            }
        }
        kernels.push(Kernel {
            version: version.to_owned(),
            vmlinuz: store.asset_path(vmlinuz),
            initrds,
            cmdline,
            directory: format!("{version}-{:016x}", hasher.digest()),
        });
    }
    kernels.sort_by(|a, b| compare_versions(&b.version, &a.version));
    (kernels, snippets)
}

/// A snippet file as one line: lines trimmed, comments dropped, joined by spaces.
pub(crate) fn snippet(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The administrator's snippets (`/etc/kernel/cmdline.d/*.cmdline`, sorted) and the names they
/// mask (a snippet that is a link to `/dev/null` removes the vendor snippet of that name).
pub(crate) fn admin_snippets(root: &Path) -> (Vec<String>, BTreeSet<String>) {
    let directory = root.join("etc/kernel/cmdline.d");
    let mut names: Vec<PathBuf> = fs::read_dir(&directory)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "cmdline")
        })
        .collect();
    names.sort();
    let mut snippets = Vec::new();
    let mut masks = BTreeSet::new();
    for path in names {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        if fs::read_link(&path).is_ok_and(|target| target == Path::new("/dev/null")) {
            masks.extend(name);
        } else {
            snippets.push(snippet(&path));
        }
    }
    (snippets, masks)
}

/// Compare versions piece by piece, numbers as numbers (`6.10` after `6.9`).
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let pieces = |text: &str| -> Vec<(bool, String)> {
        let mut pieces: Vec<(bool, String)> = Vec::new();
        for character in text.chars() {
            let digit = character.is_ascii_digit();
            match pieces.last_mut() {
                Some((kind, piece)) if *kind == digit => piece.push(character),
                _ => pieces.push((digit, character.to_string())),
            }
        }
        pieces
    };
    for (left, right) in pieces(a).iter().zip(pieces(b).iter()) {
        let order = match (left, right) {
            ((true, l), (true, r)) => {
                let (l, r) = (l.trim_start_matches('0'), r.trim_start_matches('0'));
                l.len().cmp(&r.len()).then_with(|| l.cmp(r))
            }
            ((_, l), (_, r)) => l.cmp(r),
        };
        if order.is_ne() {
            return order;
        }
    }
    pieces(a).len().cmp(&pieces(b).len())
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub state: u64,
    pub kernel: Kernel,
    /// `loader/entries/<file>`.
    pub file: String,
    pub text: String,
}

/// The entry of one kernel of one state.
pub(crate) fn entry(identity: &Identity, state: u64, kernel: &Kernel, options: &str) -> Entry {
    let directory = format!("/EFI/{}/{}", identity.id, kernel.directory);
    let mut text = format!(
        "title {} {} (state {state})\nsort-key {}\nversion {state}-{}\nlinux {directory}/vmlinuz\n",
        identity.name, kernel.version, identity.id, kernel.version
    );
    for (name, _) in &kernel.initrds {
        text.push_str(&format!("initrd {directory}/{name}\n"));
    }
    text.push_str(&format!("options {options}\n"));
    Entry {
        state,
        kernel: kernel.clone(),
        file: format!("{}-{state}-{}.conf", identity.id, kernel.version),
        text,
    }
}

/// Whether a file name in `loader/entries` is one moss writes for this OS.
pub(crate) fn is_ours(identity: &Identity, file: &str) -> bool {
    file.strip_prefix(&format!("{}-", identity.id))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(state, rest)| {
            !state.is_empty()
                && state.bytes().all(|b| b.is_ascii_digit())
                && rest.ends_with(".conf")
        })
}

/// `base/relative`, reusing existing components whose names differ only in case (FAT
/// partitions are case-insensitive; `EFI` and `efi` are one directory there, two here).
pub(crate) fn resolve(base: &Path, relative: &str) -> PathBuf {
    let mut path = base.to_path_buf();
    for component in relative.split('/').filter(|part| !part.is_empty()) {
        let existing = fs::read_dir(&path).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .find(|name| name.eq_ignore_ascii_case(component))
        });
        path.push(existing.as_deref().unwrap_or(component));
    }
    path
}

/// Write `bytes` to `path` unless it already holds them: a new file renamed over the old one.
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, BootError> {
    if fs::read(path).is_ok_and(|current| current == bytes) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io("creating", parent))?;
    }
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{}.moss-new", name.unwrap_or_default()));
    fs::write(&temporary, bytes).map_err(io("writing", &temporary))?;
    fs::File::open(&temporary)
        .and_then(|file| file.sync_all())
        .map_err(io("syncing", &temporary))?;
    fs::rename(&temporary, path).map_err(io("replacing", path))?;
    Ok(true)
}

/// Copy a store file unless the destination holds the same bytes.
pub(crate) fn copy_if_changed(source: &Path, destination: &Path) -> Result<bool, BootError> {
    let same_size = match (fs::metadata(source), fs::metadata(destination)) {
        (Ok(a), Ok(b)) => a.len() == b.len(),
        _ => false,
    };
    if same_size && fs::read(source).ok() == fs::read(destination).ok() {
        return Ok(false);
    }
    let bytes = fs::read(source).map_err(io("reading", source))?;
    write_if_changed(destination, &bytes)
}

/// Set the `default` line of `loader.conf`, keeping every other line the administrator wrote.
pub(crate) fn loader_conf(current: &str, default: &str) -> String {
    let mut lines: Vec<String> = current
        .lines()
        .filter(|line| line.split_whitespace().next() != Some("default"))
        .map(str::to_owned)
        .collect();
    lines.push(format!("default {default}"));
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("6.10.1", "6.9.3"), Greater);
        assert_eq!(compare_versions("6.9", "6.9"), Equal);
        assert_eq!(compare_versions("6.9", "6.9.1"), Less);
    }

    #[test]
    fn loader_conf_keeps_other_settings() {
        assert_eq!(
            loader_conf("timeout 3\ndefault old.conf\neditor no\n", "new.conf"),
            "timeout 3\neditor no\ndefault new.conf\n"
        );
        assert_eq!(loader_conf("", "a.conf"), "default a.conf\n");
    }

    #[test]
    fn only_our_names_are_collected() {
        let identity = Identity {
            id: "serpentos".into(),
            name: "Serpent OS".into(),
        };
        assert!(is_ours(&identity, "serpentos-12-6.1.0.conf"));
        assert!(!is_ours(&identity, "serpentos-custom.conf"));
        assert!(!is_ours(&identity, "other-12-6.1.0.conf"));
    }
}

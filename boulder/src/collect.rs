//! Splitting: which package each installed path belongs to, and the walk over the install tree.
//!
//! The package set is built from the macro templates, then the root package, then the recipe's
//! `packages` entries; each adds its paths as rules. The last rule that matches a path wins, so a
//! recipe rule always beats a template.

use std::{
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use crate::{
    macros::Macros,
    recipe::{PackageDefinition, PathKind, Recipe},
};

/// A package the build may emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    /// Expanded name.
    pub name: String,
    /// Summary (the root's if the entry has none).
    pub summary: String,
    /// Description (the root's if the entry has none).
    pub description: String,
    /// Extra runtime dependencies (expanded, sorted).
    pub rundeps: Vec<String>,
    /// Regexes dropping dependencies.
    pub rundeps_exclude: Vec<String>,
    /// Regexes dropping providers.
    pub provides_exclude: Vec<String>,
    /// Providers it conflicts with.
    pub conflicts: Vec<String>,
}

/// The packages and the rules that route paths to them.
#[derive(Debug, Clone)]
pub struct PackageSet {
    /// Packages in the order they were first defined.
    pub packages: Vec<PackageSpec>,
    /// (pattern, kind, package index), lowest priority first.
    rules: Vec<(String, PathKind, usize)>,
}

/// Expand the only macros allowed in package sections: `%(name)`, `%(version)`, `%(release)`.
pub fn expand_package_text(recipe: &Recipe, text: &str) -> String {
    text.replace("%%", "\u{0}")
        .replace("%(name)", &recipe.source.name)
        .replace("%(version)", &recipe.source.version)
        .replace("%(release)", &recipe.source.release.to_string())
        .replace('\u{0}', "%")
}

impl PackageSet {
    /// Build the set for a recipe: templates of `arch/base` and of each target's arch file,
    /// then the root package, then the recipe's entries.
    pub fn new(recipe: &Recipe, macros: &Macros, targets: &[String]) -> Self {
        let mut set = PackageSet {
            packages: Vec::new(),
            rules: Vec::new(),
        };
        let root_summary = recipe.package.summary.clone().unwrap_or_default();
        let root_description = recipe.package.description.clone().unwrap_or_default();
        let mut sources = vec!["arch/base".to_owned()];
        sources.extend(targets.iter().map(|target| format!("arch/{target}")));
        for key in sources {
            if let Some(file) = macros.file(&key) {
                for (name, definition) in file.packages() {
                    set.add(recipe, &name, &definition, &root_summary, &root_description);
                }
            }
        }
        set.add(
            recipe,
            "%(name)",
            &recipe.package,
            &root_summary,
            &root_description,
        );
        for (name, definition) in &recipe.packages {
            set.add(recipe, name, definition, &root_summary, &root_description);
        }
        set
    }

    fn add(
        &mut self,
        recipe: &Recipe,
        name: &str,
        definition: &PackageDefinition,
        root_summary: &str,
        root_description: &str,
    ) {
        let expand = |text: &str| expand_package_text(recipe, text);
        let name = expand(name);
        let summary = definition
            .summary
            .as_deref()
            .map_or_else(|| root_summary.to_owned(), expand);
        let description = definition
            .description
            .as_deref()
            .map_or_else(|| root_description.to_owned(), expand);
        let rundeps: Vec<String> = definition.rundeps.iter().map(|dep| expand(dep)).collect();
        let index = match self
            .packages
            .iter()
            .position(|package| package.name == name)
        {
            Some(index) => {
                // Merging: lists grow and the newer entry's texts win. Unlike upstream, an entry
                // without its own summary or description keeps the template's instead of
                // falling back to the root package's (spec §7.7).
                let package = &mut self.packages[index];
                let summary = definition
                    .summary
                    .as_deref()
                    .map_or_else(|| package.summary.clone(), expand);
                let description = definition
                    .description
                    .as_deref()
                    .map_or_else(|| package.description.clone(), expand);
                package.rundeps.extend(rundeps);
                package.rundeps.sort();
                package.rundeps.dedup();
                package
                    .rundeps_exclude
                    .extend(definition.rundeps_exclude.iter().cloned());
                package.rundeps_exclude.sort();
                package.summary = summary;
                package.description = description;
                package.provides_exclude = definition.provides_exclude.clone();
                package.conflicts = definition.conflicts.iter().map(|c| expand(c)).collect();
                index
            }
            None => {
                let mut rundeps = rundeps;
                rundeps.sort();
                rundeps.dedup();
                self.packages.push(PackageSpec {
                    name,
                    summary,
                    description,
                    rundeps,
                    rundeps_exclude: definition.rundeps_exclude.clone(),
                    provides_exclude: definition.provides_exclude.clone(),
                    conflicts: definition.conflicts.iter().map(|c| expand(c)).collect(),
                });
                self.packages.len() - 1
            }
        };
        for rule in &definition.paths {
            self.rules.push((expand(&rule.pattern), rule.kind, index));
        }
    }

    /// The package a path (`/usr/...`) goes to: the last matching rule, whatever its kind.
    pub fn package_for(&self, path: &str) -> Option<&PackageSpec> {
        self.rules
            .iter()
            .rev()
            .find(|(pattern, _, _)| rule_matches(pattern, path))
            .map(|(_, _, index)| &self.packages[*index])
    }

    /// The package an installed entry goes to: the last matching rule whose kind fits the entry
    /// (`exe`: an executable regular file, `symlink`, `special`: device, fifo or socket). Upstream
    /// parses these kinds but ignores them (spec §7.8).
    pub fn package_for_entry(&self, entry: &InstalledEntry) -> Option<&PackageSpec> {
        let fits = |kind: PathKind| match kind {
            PathKind::Any => true,
            PathKind::Exe => matches!(entry.kind, EntryKind::Regular(_)) && entry.mode & 0o111 != 0,
            PathKind::Symlink => matches!(entry.kind, EntryKind::Symlink(_)),
            PathKind::Special => matches!(
                entry.kind,
                EntryKind::CharDevice
                    | EntryKind::BlockDevice
                    | EntryKind::Fifo
                    | EntryKind::Socket
            ),
        };
        self.rules
            .iter()
            .rev()
            .find(|(pattern, kind, _)| fits(*kind) && rule_matches(pattern, &entry.path))
            .map(|(_, _, index)| &self.packages[*index])
    }

    /// Look a package up by name.
    pub fn get(&self, name: &str) -> Option<&PackageSpec> {
        self.packages.iter().find(|package| package.name == name)
    }
}

/// Whether a rule matches a path: equal, a glob match (`*` spans `/`), or a directory prefix.
pub fn rule_matches(pattern: &str, path: &str) -> bool {
    if pattern == path {
        return true;
    }
    let path_chars: Vec<char> = path.chars().collect();
    let pattern_chars: Vec<char> = pattern.chars().collect();
    // `<dir>/**` is the same as `<dir>/*` because `*` spans `/`.
    let below: Vec<char> = format!("{}/*", pattern.trim_end_matches('/'))
        .chars()
        .collect();
    glob(&pattern_chars, &path_chars) || glob(&below, &path_chars)
}

/// Glob with `*` matching any run (including `/`), `?` one character, `[...]` a class.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    while p < pattern.len() && pattern[p] == '*' {
                        p += 1;
                    }
                    backtrack = Some((p, t));
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(&pattern[p..], text[t])
                        && matched
                    {
                        p += next;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match backtrack {
            Some((bp, bt)) => {
                p = bp;
                t = bt + 1;
                backtrack = Some((bp, bt + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Match one character against a `[...]` class; returns (matched, class length).
fn class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let end = pattern.iter().skip(2).position(|x| *x == ']')? + 2;
    let body = &pattern[1..end];
    let (negate, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut matched = false;
    let mut index = 0;
    while index < body.len() {
        if index + 2 < body.len() && body[index + 1] == '-' {
            matched |= body[index] <= c && c <= body[index + 2];
            index += 3;
        } else {
            matched |= body[index] == c;
            index += 1;
        }
    }
    Some((matched != negate, end + 1))
}

/// What an installed entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of this size.
    Regular(u64),
    /// A symlink with this link text.
    Symlink(String),
    /// A directory (recorded only when empty or not 0755).
    Directory,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A fifo.
    Fifo,
    /// A socket.
    Socket,
}

/// One installed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledEntry {
    /// Absolute path as installed (`/usr/bin/foo`).
    pub path: String,
    /// Where it is on the host.
    pub host_path: PathBuf,
    /// Full `st_mode`.
    pub mode: u32,
    /// Its kind.
    pub kind: EntryKind,
}

/// Walk the install root depth first, entries sorted by name, without following symlinks.
/// Directories are recorded after their children, and only when empty or not `drwxr-xr-x`.
pub fn walk(install_root: &Path) -> std::io::Result<Vec<InstalledEntry>> {
    let mut out = Vec::new();
    walk_dir(install_root, "", &mut out)?;
    Ok(out)
}

fn walk_dir(dir: &Path, prefix: &str, out: &mut Vec<InstalledEntry>) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let host_path = dir.join(&name);
        let path = format!("{prefix}/{}", name.to_string_lossy());
        let metadata = std::fs::symlink_metadata(&host_path)?;
        let file_type = metadata.file_type();
        let kind = if file_type.is_dir() {
            let before = out.len();
            walk_dir(&host_path, &path, out)?;
            let empty = out.len() == before && std::fs::read_dir(&host_path)?.next().is_none();
            if !(empty || metadata.mode() != 0o40755) {
                continue;
            }
            EntryKind::Directory
        } else if file_type.is_symlink() {
            EntryKind::Symlink(
                std::fs::read_link(&host_path)?
                    .to_string_lossy()
                    .into_owned(),
            )
        } else if file_type.is_file() {
            EntryKind::Regular(metadata.len())
        } else if file_type.is_char_device() {
            EntryKind::CharDevice
        } else if file_type.is_block_device() {
            EntryKind::BlockDevice
        } else if file_type.is_fifo() {
            EntryKind::Fifo
        } else {
            EntryKind::Socket
        };
        out.push(InstalledEntry {
            path,
            host_path,
            mode: metadata.mode(),
            kind,
        });
    }
    Ok(())
}

//! From analysed install entries to packages: one `.stone` per package, `manifest.ARCH.bin`
//! and `manifest.ARCH.jsonc`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::BufWriter,
    path::{Path, PathBuf},
    str::FromStr,
};

use regex::Regex;
use stone::{
    ContentSource, Dependency, DependencyKind, Entry, FileType, Layout, Package, WriteOptions,
    Writer,
};

use crate::{
    analysis::Findings,
    collect::{EntryKind, InstalledEntry, PackageSet, PackageSpec},
    recipe::Recipe,
};

/// Packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// A path outside `/usr` was installed (packages are stateless: everything lives in /usr).
    #[error("files outside /usr cannot be packaged (install them below /usr): {0}")]
    OutsideUsr(String),
    /// No rule matched (cannot happen while the `*` template exists).
    #[error("no package collects {0}")]
    Unrouted(String),
    /// Writing a stone failed.
    #[error("writing {}: {source}", path.display())]
    Stone {
        /// The file.
        path: PathBuf,
        /// Why.
        source: stone::Error,
    },
    /// Plain I/O.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One package with its files and metadata, ready to write.
#[derive(Debug, Clone)]
pub struct BuiltPackage {
    /// Name, summary, rundeps ...
    pub spec: PackageSpec,
    /// Its entries, in walk order.
    pub entries: Vec<InstalledEntry>,
    /// Providers (own name excluded).
    pub provides: BTreeSet<Dependency>,
    /// Dependencies (analysis ∪ rundeps, minus excludes and own providers).
    pub depends: BTreeSet<Dependency>,
}

fn regexes(patterns: &[String]) -> Vec<Regex> {
    // Invalid expressions are skipped, as upstream does; the recipe check reports them.
    patterns
        .iter()
        .filter_map(|pattern| Regex::new(pattern).ok())
        .collect()
}

/// Route every entry to its package and merge the findings.
pub fn assemble(
    set: &PackageSet,
    entries: &[InstalledEntry],
    findings: &[Findings],
) -> Result<Vec<BuiltPackage>, EmitError> {
    let outside: Vec<&str> = entries
        .iter()
        .map(|entry| entry.path.as_str())
        .filter(|path| !path.starts_with("/usr/") && *path != "/usr")
        .collect();
    if !outside.is_empty() {
        return Err(EmitError::OutsideUsr(outside.join(", ")));
    }
    let mut buckets: BTreeMap<String, BuiltPackage> = BTreeMap::new();
    for (entry, found) in entries.iter().zip(findings) {
        if found.drop || entry.path == "/usr" {
            continue;
        }
        let spec = set
            .package_for_entry(entry)
            .ok_or_else(|| EmitError::Unrouted(entry.path.clone()))?;
        let bucket = buckets
            .entry(spec.name.clone())
            .or_insert_with(|| BuiltPackage {
                spec: spec.clone(),
                entries: Vec::new(),
                provides: BTreeSet::new(),
                depends: BTreeSet::new(),
            });
        bucket.entries.push(entry.clone());
        bucket.provides.extend(found.provides.iter().cloned());
        bucket.depends.extend(found.depends.iter().cloned());
    }
    let mut out = Vec::new();
    for mut package in buckets.into_values() {
        for rundep in &package.spec.rundeps {
            if let Ok(dependency) = Dependency::from_str(rundep) {
                package.depends.insert(dependency);
            }
        }
        let excluded = regexes(&package.spec.rundeps_exclude);
        let provides_excluded = regexes(&package.spec.provides_exclude);
        let provides = package.provides.clone();
        package.depends.retain(|dependency| {
            let text = dependency.to_string();
            let own_name =
                dependency.kind == DependencyKind::Name && dependency.target == package.spec.name;
            let excluded = excluded.iter().any(|regex| regex.is_match(&text));
            !(excluded || own_name || provides.contains(dependency))
        });
        package.provides.retain(|provider| {
            let text = provider.to_string();
            !provides_excluded.iter().any(|regex| regex.is_match(&text))
        });
        out.push(package);
    }
    Ok(out)
}

/// Metadata shared by a package's stone and its manifest entry.
fn meta(recipe: &Recipe, package: &BuiltPackage, arch: &str, build_release: u64) -> Package {
    let mut licenses = recipe.source.license.clone();
    licenses.sort();
    Package {
        name: package.spec.name.clone(),
        version: recipe.source.version.clone(),
        release: recipe.source.release,
        build_release,
        architecture: arch.to_owned(),
        summary: package.spec.summary.clone(),
        description: package.spec.description.clone(),
        homepage: recipe.source.homepage.clone(),
        licenses,
        source_id: recipe.source.name.clone(),
        depends: package.depends.iter().cloned().collect(),
        provides: package.provides.iter().cloned().collect(),
        conflicts: package
            .spec
            .conflicts
            .iter()
            .filter_map(|text| Dependency::from_str(text).ok())
            .collect(),
        build_depends: Vec::new(),
        uri: None,
        hash: None,
        size: None,
        source_uri: None,
        source_path: None,
        source_ref: None,
        unknown: Vec::new(),
    }
}

fn layout_target(path: &str) -> String {
    path.strip_prefix("/usr/").unwrap_or(path).to_owned()
}

/// Write one binary stone at `path`: `meta` and the layout of `entries` (paths below `/usr`),
/// the contents of regular files read from their host paths. Also used by `import-deb`.
pub(crate) fn write_stone<'a>(
    meta: &Package,
    entries: impl IntoIterator<Item = &'a InstalledEntry>,
    path: &Path,
    options: WriteOptions,
) -> Result<(), EmitError> {
    let stone_error = |source| EmitError::Stone {
        path: path.to_owned(),
        source,
    };
    let mut writer = Writer::new(FileType::Binary).with_options(options);
    writer.add_meta(meta.to_records());
    for entry in entries {
        let target = layout_target(&entry.path);
        let layout_entry = match &entry.kind {
            EntryKind::Regular(_) => {
                let digest = writer
                    .add_content(ContentSource::Path(entry.host_path.clone()))
                    .map_err(stone_error)?;
                Entry::Regular { digest, target }
            }
            EntryKind::Symlink(source) => Entry::Symlink {
                source: source.clone(),
                target,
            },
            EntryKind::Directory => Entry::Directory(target),
            EntryKind::CharDevice => Entry::CharacterDevice(target),
            EntryKind::BlockDevice => Entry::BlockDevice(target),
            EntryKind::Fifo => Entry::Fifo(target),
            EntryKind::Socket => Entry::Socket(target),
        };
        writer.add_layout(Layout {
            uid: 0,
            gid: 0,
            mode: entry.mode,
            tag: 0,
            entry: layout_entry,
        });
    }
    let file = File::create(path).map_err(|source| EmitError::Io {
        path: path.to_owned(),
        source,
    })?;
    writer.write(BufWriter::new(file)).map_err(stone_error)
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Emitted {
    /// The `.stone` files, by package name order.
    pub stones: Vec<PathBuf>,
    /// `manifest.ARCH.bin`.
    pub manifest_bin: PathBuf,
    /// `manifest.ARCH.jsonc`.
    pub manifest_jsonc: PathBuf,
}

/// Write the stones and manifests into `out`.
pub fn write(
    recipe: &Recipe,
    packages: &[BuiltPackage],
    arch: &str,
    build_release: u64,
    out: &Path,
) -> Result<Emitted, EmitError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EmitError::Io { path, source }
    };
    let mut stones = Vec::new();
    let options = WriteOptions {
        level: 18,
        workers: 0,
    };
    for package in packages {
        let meta = meta(recipe, package, arch, build_release);
        let path = out.join(meta.file_name());
        write_stone(&meta, &package.entries, &path, options)?;
        stones.push(path);
    }

    let mut build_depends: Vec<String> = recipe
        .build
        .builddeps
        .iter()
        .chain(&recipe.build.checkdeps)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    build_depends.sort();
    let mut listed: Vec<&BuiltPackage> = packages
        .iter()
        .filter(|package| !package.spec.name.ends_with("-dbginfo"))
        .collect();
    listed.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));

    let manifest_bin = out.join(format!("manifest.{arch}.bin"));
    let mut writer = Writer::new(FileType::BuildManifest).with_options(options);
    for package in &listed {
        let mut meta = meta(recipe, package, arch, 0);
        meta.build_depends = build_depends
            .iter()
            .filter_map(|text| Dependency::from_str(text).ok())
            .collect();
        writer.add_meta(meta.to_records());
    }
    let file = File::create(&manifest_bin).map_err(io(&manifest_bin))?;
    writer
        .write(BufWriter::new(file))
        .map_err(|source| EmitError::Stone {
            path: manifest_bin.clone(),
            source,
        })?;

    let manifest_jsonc = out.join(format!("manifest.{arch}.jsonc"));
    std::fs::write(&manifest_jsonc, jsonc(recipe, &listed, &build_depends))
        .map_err(io(&manifest_jsonc))?;
    Ok(Emitted {
        stones,
        manifest_bin,
        manifest_jsonc,
    })
}

/// The report form of a dependency: a plain name bare, anything else `kind(target)`.
fn report_text(dependency: &Dependency) -> String {
    match dependency.kind {
        DependencyKind::Name => dependency.target.clone(),
        _ => dependency.to_string(),
    }
}

/// The human-readable manifest: a comment line, then tab-indented JSON with sorted keys.
pub fn jsonc(recipe: &Recipe, packages: &[&BuiltPackage], build_depends: &[String]) -> String {
    use serde_json::{Map, Value};
    let mut all = Map::new();
    for package in packages {
        let mut entry = Map::new();
        let list =
            |items: BTreeSet<String>| Value::Array(items.into_iter().map(Value::String).collect());
        if !build_depends.is_empty() {
            entry.insert(
                "build-depends".into(),
                list(build_depends.iter().cloned().collect()),
            );
        }
        // Raw rundeps appear as written, next to the analysis results.
        let mut depends: BTreeSet<String> = package.depends.iter().map(report_text).collect();
        let excluded = regexes(&package.spec.rundeps_exclude);
        depends.extend(
            package
                .spec
                .rundeps
                .iter()
                .filter(|raw| !excluded.iter().any(|regex| regex.is_match(raw)))
                .filter(|raw| **raw != package.spec.name)
                .cloned(),
        );
        if !depends.is_empty() {
            entry.insert("depends".into(), list(depends));
        }
        let files: BTreeSet<String> = package
            .entries
            .iter()
            .map(|entry| entry.path.clone())
            .collect();
        if !files.is_empty() {
            entry.insert("files".into(), list(files));
        }
        entry.insert("name".into(), Value::String(package.spec.name.clone()));
        let provides: BTreeSet<String> = package.provides.iter().map(report_text).collect();
        if !provides.is_empty() {
            entry.insert("provides".into(), list(provides));
        }
        all.insert(package.spec.name.clone(), Value::Object(entry));
    }
    let mut root = Map::new();
    root.insert("manifest-version".into(), Value::String("0.2".into()));
    root.insert("packages".into(), Value::Object(all));
    root.insert(
        "source-name".into(),
        Value::String(recipe.source.name.clone()),
    );
    root.insert(
        "source-release".into(),
        Value::String(recipe.source.release.to_string()),
    );
    root.insert(
        "source-version".into(),
        Value::String(recipe.source.version.clone()),
    );
    let mut buffer = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, formatter);
    serde::Serialize::serialize(&Value::Object(root), &mut serializer)
        .expect("a JSON value always serialises");
    let body = String::from_utf8(buffer).expect("serde_json writes UTF-8");
    format!("/** Human readable report. This is not consumed by boulder */\n{body}\n")
}

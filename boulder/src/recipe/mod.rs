//! The `stone.yaml` recipe model.
//!
//! [`Recipe::load`] reads a file; [`Recipe::parse`] reads text. Both return the recipe together
//! with its [`Warning`]s (unknown keys, legacy `yes`/`no` booleans, ...). Errors carry the file,
//! line and column.

mod control;
mod parse;

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::yaml::Mark;

// The keys each section knows; anything else is a warning.
const BUILD_KEYS: [&str; 8] = [
    "setup",
    "build",
    "install",
    "check",
    "workload",
    "environment",
    "builddeps",
    "checkdeps",
];
const PACKAGE_KEYS: [&str; 7] = [
    "summary",
    "description",
    "rundeps",
    "rundeps-exclude",
    "provides-exclude",
    "conflicts",
    "paths",
];
const OTHER_ROOT_KEYS: [&str; 20] = [
    "name",
    "version",
    "release",
    "homepage",
    "license",
    "toolchain",
    "cspgo",
    "samplepgo",
    "debug",
    "strip",
    "networking",
    "compressman",
    "lastrip",
    "upstreams",
    "architectures",
    "emul32",
    "mold",
    "tuning",
    "profiles",
    "packages",
];

/// A parsed recipe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    /// Name, version, release, homepage, licences.
    pub source: Source,
    /// The root build section.
    pub build: Build,
    /// The root package section (the package named like the recipe).
    pub package: PackageDefinition,
    /// Build options.
    pub options: Options,
    /// Sources to fetch, in order.
    pub upstreams: Vec<Upstream>,
    /// Explicit target list (`native`, `emul32`, `x86_64`, `emul32/x86_64`).
    pub architectures: Vec<String>,
    /// Also build a 32-bit target.
    pub emul32: bool,
    /// Link with mold.
    pub mold: bool,
    /// Tuning group toggles, in order.
    pub tuning: Vec<Tuning>,
    /// Per-target overrides of the build section, keyed by target or `emul32`.
    pub profiles: Vec<(String, Build)>,
    /// Sub-packages and overrides of template packages, keyed by (unexpanded) name.
    pub packages: Vec<(String, PackageDefinition)>,
}

/// The source section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Source and main package name.
    pub name: String,
    /// Version text, exactly as written.
    pub version: String,
    /// Recipe release (> 0).
    pub release: u64,
    /// Project home page.
    pub homepage: String,
    /// SPDX licence ids.
    pub license: Vec<String>,
}

/// A build section (root level or one profile).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Build {
    /// Phase script.
    pub setup: Option<String>,
    /// Phase script.
    pub build: Option<String>,
    /// Phase script.
    pub install: Option<String>,
    /// Phase script.
    pub check: Option<String>,
    /// PGO training script.
    pub workload: Option<String>,
    /// Shell text prepended to every phase but prepare.
    pub environment: Option<String>,
    /// Packages installed into the build root.
    pub builddeps: Vec<String>,
    /// Packages installed into the build root for the check phase.
    pub checkdeps: Vec<String>,
    /// The file line where each phase script's first line is (`setup`, `build`, ...), so that
    /// script errors can name a line of the recipe.
    #[serde(skip)]
    pub lines: std::collections::BTreeMap<String, u64>,
}

/// A package section (root package or one `packages` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDefinition {
    /// One-line summary.
    pub summary: Option<String>,
    /// Long description.
    pub description: Option<String>,
    /// Extra runtime dependencies.
    pub rundeps: Vec<String>,
    /// Regexes dropping dependencies.
    #[serde(rename = "rundeps-exclude")]
    pub rundeps_exclude: Vec<String>,
    /// Regexes dropping providers.
    #[serde(rename = "provides-exclude")]
    pub provides_exclude: Vec<String>,
    /// Providers this package conflicts with.
    pub conflicts: Vec<String>,
    /// Collection rules.
    pub paths: Vec<PathRule>,
}

/// A collection rule: a path or glob, with an optional kind annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathRule {
    /// Absolute path or glob.
    pub pattern: String,
    /// `any` (default), `exe`, `symlink` or `special`.
    pub kind: PathKind,
}

/// What sort of file a path rule is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    /// Anything.
    Any,
    /// An executable.
    Exe,
    /// A symlink.
    Symlink,
    /// A device, fifo or socket.
    Special,
}

/// Options at the root of the recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Options {
    /// Compiler family.
    pub toolchain: Toolchain,
    /// Context-sensitive PGO stage (llvm only).
    pub cspgo: bool,
    /// Sample PGO.
    pub samplepgo: bool,
    /// Split debug info into `-dbginfo` packages.
    pub debug: bool,
    /// Strip ELF files.
    pub strip: bool,
    /// Keep networking in the build container.
    pub networking: bool,
    /// Compress man and info pages.
    pub compressman: bool,
    /// Drop libtool archives.
    pub lastrip: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            toolchain: Toolchain::Llvm,
            cspgo: false,
            samplepgo: false,
            debug: true,
            strip: true,
            networking: false,
            compressman: false,
            lastrip: true,
        }
    }
}

/// Compiler family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Toolchain {
    /// clang, lld, llvm binutils.
    Llvm,
    /// gcc, ld.bfd, GNU binutils.
    Gnu,
}

/// One source to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Upstream {
    /// A plain file, usually an archive, checked by SHA-256.
    Plain {
        /// Where to download it.
        url: String,
        /// Expected lowercase hex SHA-256.
        hash: String,
        /// File name in the source dir (default: last URL segment).
        rename: Option<String>,
        /// Leading path components dropped when unpacking.
        stripdirs: u8,
        /// Whether to unpack it at all.
        unpack: bool,
        /// Extraction dir relative to the build dir (default: the file name).
        unpackdir: Option<String>,
    },
    /// A git repository at a ref.
    Git {
        /// Repository URL (without the `git|` prefix).
        url: String,
        /// Commit id, tag or branch.
        git_ref: String,
        /// Checkout dir (default: last URL segment).
        clonedir: Option<String>,
    },
}

impl Upstream {
    /// The file or directory name the upstream has in the source dir.
    pub fn file_name(&self) -> String {
        match self {
            Upstream::Plain { url, rename, .. } => {
                rename.clone().unwrap_or_else(|| last_segment(url))
            }
            Upstream::Git { url, .. } => last_segment(url),
        }
    }

    /// The directory it is unpacked or cloned into, relative to the build dir; `None` when it is
    /// not unpacked.
    pub fn unpack_dir(&self) -> Option<String> {
        match self {
            Upstream::Plain { unpack: false, .. } => None,
            Upstream::Plain { unpackdir, .. } => {
                Some(unpackdir.clone().unwrap_or_else(|| self.file_name()))
            }
            Upstream::Git { clonedir, .. } => {
                Some(clonedir.clone().unwrap_or_else(|| self.file_name()))
            }
        }
    }
}

/// Last non-empty path segment of a URL, without query or fragment.
pub fn last_segment(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    // `file:name.tar.gz` (relative to the recipe) has no slash before the name.
    let path = path.strip_prefix("file:").unwrap_or(path);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .to_owned()
}

/// One tuning item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tuning {
    /// Group name.
    pub group: String,
    /// What to do with it.
    pub setting: TuningSetting,
}

/// What a tuning item does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TuningSetting {
    /// Enable with the group's default option.
    Enable,
    /// Disable.
    Disable,
    /// Enable with a named option.
    Option(String),
}

/// Something worth telling the author that does not stop the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Where.
    pub mark: Mark,
    /// What.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.mark, self.message)
    }
}

/// A recipe that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML itself is malformed.
    #[error("{}: invalid YAML: {message}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names line and column.
        message: String,
    },
    /// The YAML is fine but the recipe is not.
    #[error("{}:{mark}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where.
        mark: Mark,
        /// What is wrong.
        message: String,
    },
}

/// A recipe with what the parser had to say about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The recipe.
    pub recipe: Recipe,
    /// Warnings, in document order.
    pub warnings: Vec<Warning>,
    /// The file it came from (`stone.yaml`).
    pub path: PathBuf,
}

impl Recipe {
    /// Read a recipe file; a directory means its `stone.yaml`. A `control.kdl` beside it is
    /// applied.
    pub fn load(path: impl AsRef<Path>) -> Result<Loaded, RecipeError> {
        let mut path = path.as_ref().to_path_buf();
        if path.is_dir() {
            path.push("stone.yaml");
        }
        let text = std::fs::read_to_string(&path).map_err(|source| RecipeError::Read {
            path: path.clone(),
            source,
        })?;
        let (mut recipe, warnings) = Self::parse(&text, &path)?;
        let control = path.with_file_name("control.kdl");
        if control.exists() {
            let text = std::fs::read_to_string(&control).map_err(|source| RecipeError::Read {
                path: control.clone(),
                source,
            })?;
            control::apply(&mut recipe, &text, &control)?;
        }
        Ok(Loaded {
            recipe,
            warnings,
            path,
        })
    }

    /// Parse recipe text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<(Recipe, Vec<Warning>), RecipeError> {
        parse::parse(text, path)
    }

    /// The build section for a target (`x86_64` or `emul32/x86_64`): the profile keyed by the
    /// target, else `emul32` for 32-bit targets, else the root; each field falls back to the root.
    pub fn build_for(&self, target: &str) -> Build {
        let profile = self
            .profiles
            .iter()
            .find(|(key, _)| key == target)
            .or_else(|| {
                target
                    .starts_with("emul32/")
                    .then(|| self.profiles.iter().find(|(key, _)| key == "emul32"))
                    .flatten()
            })
            .map(|(_, build)| build);
        let Some(profile) = profile else {
            return self.build.clone();
        };
        let pick =
            |ours: &Option<String>, root: &Option<String>| ours.clone().or_else(|| root.clone());
        Build {
            setup: pick(&profile.setup, &self.build.setup),
            build: pick(&profile.build, &self.build.build),
            install: pick(&profile.install, &self.build.install),
            check: pick(&profile.check, &self.build.check),
            workload: pick(&profile.workload, &self.build.workload),
            environment: pick(&profile.environment, &self.build.environment),
            builddeps: profile.builddeps.clone(),
            checkdeps: profile.checkdeps.clone(),
            lines: self
                .build
                .lines
                .iter()
                .filter(|(phase, _)| !profile.lines.contains_key(*phase))
                .chain(&profile.lines)
                .map(|(phase, line)| (phase.clone(), *line))
                .collect(),
        }
    }

    /// The targets to build for a host architecture, emul32 first.
    pub fn targets(&self, host: &str) -> Vec<String> {
        let emul32 = format!("emul32/{host}");
        if self.architectures.is_empty() {
            let mut targets = Vec::new();
            if self.emul32 {
                targets.push(emul32);
            }
            targets.push(host.to_owned());
            return targets;
        }
        let has = |name: &str| self.architectures.iter().any(|arch| arch == name);
        let mut targets = Vec::new();
        if has(&emul32) || has("emul32") {
            targets.push(emul32);
        }
        if has(host) || has("native") {
            targets.push(host.to_owned());
        }
        targets
    }
}

//! Macro data: actions, definitions, compiler flags, tuning groups and package templates, read
//! from YAML files (`arch/**/*.yaml`, `actions/*.yaml`).
//!
//! The files under `boulder/data/macros` are compiled in, so a build never depends on an
//! installation path; `--data-dir` replaces them with a directory of the same layout.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::recipe::{PackageDefinition, PathKind, PathRule};

/// Files compiled into the binary: (key, text). The key is the path below `macros/` without
/// `.yaml`.
const BUILTIN: &[(&str, &str)] = &[
    ("arch/base", include_str!("../data/macros/arch/base.yaml")),
    (
        "arch/x86_64",
        include_str!("../data/macros/arch/x86_64.yaml"),
    ),
    (
        "arch/emul32/x86_64",
        include_str!("../data/macros/arch/emul32/x86_64.yaml"),
    ),
    (
        "actions/autotools",
        include_str!("../data/macros/actions/autotools.yaml"),
    ),
    (
        "actions/bazel",
        include_str!("../data/macros/actions/bazel.yaml"),
    ),
    (
        "actions/cargo",
        include_str!("../data/macros/actions/cargo.yaml"),
    ),
    (
        "actions/ccache",
        include_str!("../data/macros/actions/ccache.yaml"),
    ),
    (
        "actions/cmake",
        include_str!("../data/macros/actions/cmake.yaml"),
    ),
    (
        "actions/golang",
        include_str!("../data/macros/actions/golang.yaml"),
    ),
    (
        "actions/meson",
        include_str!("../data/macros/actions/meson.yaml"),
    ),
    (
        "actions/misc",
        include_str!("../data/macros/actions/misc.yaml"),
    ),
    (
        "actions/ninja",
        include_str!("../data/macros/actions/ninja.yaml"),
    ),
    (
        "actions/perl",
        include_str!("../data/macros/actions/perl.yaml"),
    ),
    (
        "actions/pgo",
        include_str!("../data/macros/actions/pgo.yaml"),
    ),
    (
        "actions/python",
        include_str!("../data/macros/actions/python.yaml"),
    ),
    (
        "actions/qt-kde",
        include_str!("../data/macros/actions/qt-kde.yaml"),
    ),
    (
        "actions/ruby",
        include_str!("../data/macros/actions/ruby.yaml"),
    ),
];

/// An action: a script fragment called as `%name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Action {
    /// What it does.
    pub description: String,
    /// How to call it.
    #[serde(default)]
    pub example: Option<String>,
    /// The script body.
    pub command: String,
    /// Packages the build root needs when the action is used.
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// Flag strings per compiler family, with per-toolchain overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CompilerFlags {
    #[serde(flatten)]
    common: FlagSet,
    #[serde(default)]
    gnu: FlagSet,
    #[serde(default)]
    llvm: FlagSet,
}

/// One set of flag strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FlagSet {
    c: Option<String>,
    cxx: Option<String>,
    f: Option<String>,
    d: Option<String>,
    rust: Option<String>,
    vala: Option<String>,
    go: Option<String>,
    ld: Option<String>,
}

/// A compiler family whose flags are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// CFLAGS.
    C,
    /// CXXFLAGS.
    Cxx,
    /// FFLAGS.
    F,
    /// DFLAGS.
    D,
    /// RUSTFLAGS.
    Rust,
    /// VALAFLAGS.
    Vala,
    /// GOFLAGS.
    Go,
    /// LDFLAGS.
    Ld,
}

impl Family {
    /// Every family, in the order of the builtins.
    pub const ALL: [Family; 8] = [
        Family::C,
        Family::Cxx,
        Family::F,
        Family::D,
        Family::Rust,
        Family::Vala,
        Family::Go,
        Family::Ld,
    ];

    /// Name of the builtin that carries the flags.
    pub fn builtin(self) -> &'static str {
        match self {
            Family::C => "cflags",
            Family::Cxx => "cxxflags",
            Family::F => "fflags",
            Family::D => "dflags",
            Family::Rust => "rustflags",
            Family::Vala => "valaflags",
            Family::Go => "goflags",
            Family::Ld => "ldflags",
        }
    }
}

impl FlagSet {
    fn get(&self, family: Family) -> Option<&String> {
        match family {
            Family::C => self.c.as_ref(),
            Family::Cxx => self.cxx.as_ref(),
            Family::F => self.f.as_ref(),
            Family::D => self.d.as_ref(),
            Family::Rust => self.rust.as_ref(),
            Family::Vala => self.vala.as_ref(),
            Family::Go => self.go.as_ref(),
            Family::Ld => self.ld.as_ref(),
        }
    }
}

impl CompilerFlags {
    /// The flag text for a family and toolchain: the toolchain's value, else the common one.
    pub fn get(&self, family: Family, gnu: bool) -> Option<&str> {
        let specific = if gnu { &self.gnu } else { &self.llvm };
        specific
            .get(family)
            .or_else(|| self.common.get(family))
            .map(String::as_str)
    }
}

/// One name or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single name.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names.
    pub fn names(&self) -> Vec<String> {
        match self {
            OneOrMany::One(name) => vec![name.clone()],
            OneOrMany::Many(names) => names.clone(),
        }
    }
}

/// A tuning option: flags when enabled or disabled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TuningOption {
    /// Flags used when enabled.
    #[serde(default)]
    pub enabled: Option<OneOrMany>,
    /// Flags used when disabled.
    #[serde(default)]
    pub disabled: Option<OneOrMany>,
}

/// A tuning group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TuningGroup {
    /// The group's own enabled/disabled flags.
    #[serde(flatten)]
    pub root: TuningOption,
    /// Named options.
    #[serde(default)]
    pub options: Vec<HashMap<String, TuningOption>>,
    /// Option used when enabled without one.
    #[serde(default)]
    pub default: Option<String>,
}

impl TuningGroup {
    /// Look up an option.
    pub fn option(&self, name: &str) -> Option<&TuningOption> {
        self.options.iter().find_map(|map| map.get(name))
    }
}

/// A template package as written in a macro file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
struct TemplatePackage {
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    rundeps: Vec<String>,
}

/// One macro file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MacroFile {
    /// Actions, in file order.
    #[serde(default)]
    pub actions: Vec<HashMap<String, Action>>,
    /// Definitions, in file order.
    #[serde(default)]
    pub definitions: Vec<HashMap<String, String>>,
    /// Compiler flags by name.
    #[serde(default)]
    pub flags: Vec<HashMap<String, CompilerFlags>>,
    /// Tuning groups by name.
    #[serde(default)]
    pub tuning: Vec<HashMap<String, TuningGroup>>,
    #[serde(default)]
    packages: Vec<HashMap<String, TemplatePackage>>,
    /// Groups enabled unless the recipe mentions them.
    #[serde(default)]
    pub default_tuning_groups: Vec<String>,
}

impl MacroFile {
    /// Package templates, in file order (lowest priority first).
    pub fn packages(&self) -> Vec<(String, PackageDefinition)> {
        self.packages
            .iter()
            .flat_map(|map| map.iter())
            .map(|(name, template)| {
                (
                    name.clone(),
                    PackageDefinition {
                        summary: template.summary.clone(),
                        description: template.description.clone(),
                        rundeps: template.rundeps.clone(),
                        paths: template
                            .paths
                            .iter()
                            .map(|pattern| PathRule {
                                pattern: pattern.clone(),
                                kind: PathKind::Any,
                            })
                            .collect(),
                        ..PackageDefinition::default()
                    },
                )
            })
            .collect()
    }
}

/// Macro data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MacroError {
    /// A file could not be read.
    #[error("cannot read macro file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid.
    #[error("invalid macro file {key}: {message}")]
    Invalid {
        /// The file key (`arch/base`, `actions/cmake`).
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A needed file is missing.
    #[error("there is no macro file `{0}` (for the target architecture)")]
    Missing(String),
}

/// All macro files, by key.
#[derive(Debug, Clone)]
pub struct Macros {
    files: BTreeMap<String, MacroFile>,
}

impl Macros {
    /// The macro data compiled into boulder.
    pub fn builtin() -> Result<Self, MacroError> {
        let mut files = BTreeMap::new();
        for (key, text) in BUILTIN {
            files.insert((*key).to_owned(), parse_file(key, text)?);
        }
        Ok(Self { files })
    }

    /// Read `<dir>/arch/**/*.yaml` and `<dir>/actions/*.yaml`.
    pub fn from_dir(dir: &Path) -> Result<Self, MacroError> {
        let mut files = BTreeMap::new();
        let mut pending = vec![dir.join("arch"), dir.join("actions")];
        while let Some(current) = pending.pop() {
            let read_error = |source| MacroError::Read {
                path: current.clone(),
                source,
            };
            for entry in std::fs::read_dir(&current).map_err(read_error)? {
                let path = entry.map_err(read_error)?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|ext| ext == "yaml") {
                    let key = path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .with_extension("")
                        .to_string_lossy()
                        .into_owned();
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| MacroError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    files.insert(key.clone(), parse_file(&key, &text)?);
                }
            }
        }
        Ok(Self { files })
    }

    /// One file.
    pub fn file(&self, key: &str) -> Option<&MacroFile> {
        self.files.get(key)
    }

    /// The files that make up a target's environment, in load order: `arch/base`,
    /// `arch/<target>`, then every `actions/*` file. Later files win.
    pub fn layers(&self, target: &str) -> Result<Vec<&MacroFile>, MacroError> {
        let arch_key = format!("arch/{target}");
        let base = self
            .files
            .get("arch/base")
            .ok_or_else(|| MacroError::Missing("arch/base".to_owned()))?;
        let arch = self
            .files
            .get(&arch_key)
            .ok_or(MacroError::Missing(arch_key))?;
        let mut layers = vec![base, arch];
        layers.extend(
            self.files
                .iter()
                .filter(|(key, _)| key.starts_with("actions/"))
                .map(|(_, file)| file),
        );
        Ok(layers)
    }
}

fn parse_file(key: &str, text: &str) -> Result<MacroFile, MacroError> {
    serde_saphyr::from_str(text).map_err(|error| MacroError::Invalid {
        key: key.to_owned(),
        message: error.to_string(),
    })
}

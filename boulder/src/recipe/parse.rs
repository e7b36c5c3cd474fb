//! Walk a [`Node`] tree into a [`Recipe`], collecting warnings.

use std::path::Path;

use super::{
    BUILD_KEYS, Build, OTHER_ROOT_KEYS, Options, PACKAGE_KEYS, PackageDefinition, PathKind,
    PathRule, Recipe, RecipeError, Source, Toolchain, Tuning, TuningSetting, Upstream, Warning,
};
use crate::yaml::{self, Mark, Node, Value};

struct Parser<'a> {
    path: &'a Path,
    warnings: Vec<Warning>,
}

type Entries<'n> = &'n [(Node, Node)];

pub(super) fn parse(text: &str, path: &Path) -> Result<(Recipe, Vec<Warning>), RecipeError> {
    let root = yaml::parse(text).map_err(|error| RecipeError::Yaml {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    let mut parser = Parser {
        path,
        warnings: Vec::new(),
    };
    let recipe = parser.recipe(&root)?;
    let mut warnings = parser.warnings;
    warnings.sort_by_key(|warning| (warning.mark.line, warning.mark.column));
    Ok((recipe, warnings))
}

impl Parser<'_> {
    fn error(&self, mark: Mark, message: impl Into<String>) -> RecipeError {
        RecipeError::Invalid {
            path: self.path.to_path_buf(),
            mark,
            message: message.into(),
        }
    }

    fn warn(&mut self, mark: Mark, message: impl Into<String>) {
        self.warnings.push(Warning {
            mark,
            message: message.into(),
        });
    }

    fn map<'n>(&self, node: &'n Node, what: &str) -> Result<Entries<'n>, RecipeError> {
        match &node.value {
            Value::Map(entries) => Ok(entries),
            _ => Err(self.error(
                node.mark,
                format!("{what} must be a mapping, found {}", node.type_name()),
            )),
        }
    }

    fn key(&self, key: &Node) -> Result<String, RecipeError> {
        key.scalar_text()
            .ok_or_else(|| self.error(key.mark, "a key must be a plain string"))
    }

    /// Warn about keys of a mapping that are not in `known`.
    fn check_keys(&mut self, entries: Entries<'_>, known: &[&[&str]], context: &str) {
        for (key, _) in entries {
            let name = key.scalar_text().unwrap_or_default();
            if !known.iter().any(|list| list.contains(&name.as_str())) {
                let hint = if name == "tune" {
                    " (did you mean `tuning`?)"
                } else {
                    ""
                };
                self.warn(
                    key.mark,
                    format!("unknown key `{name}` in {context} is ignored{hint}"),
                );
            }
        }
    }

    fn get<'n>(entries: Entries<'n>, name: &str) -> Option<&'n Node> {
        entries
            .iter()
            .find(|(key, _)| key.scalar_text().as_deref() == Some(name))
            .map(|(_, value)| value)
    }

    fn string(&self, node: &Node, what: &str) -> Result<String, RecipeError> {
        node.scalar_text().ok_or_else(|| {
            self.error(
                node.mark,
                format!("`{what}` must be a string, found {}", node.type_name()),
            )
        })
    }

    fn optional_string(
        &self,
        entries: Entries<'_>,
        name: &str,
    ) -> Result<Option<String>, RecipeError> {
        match Self::get(entries, name) {
            None => Ok(None),
            Some(Node {
                value: Value::Null, ..
            }) => Ok(None),
            Some(node) => self.string(node, name).map(Some),
        }
    }

    fn required_string(
        &self,
        entries: Entries<'_>,
        name: &str,
        at: Mark,
    ) -> Result<String, RecipeError> {
        self.optional_string(entries, name)?
            .ok_or_else(|| self.error(at, format!("the recipe has no `{name}`")))
    }

    /// A list of strings; a single scalar counts as a one-element list.
    fn strings(&self, entries: Entries<'_>, name: &str) -> Result<Vec<String>, RecipeError> {
        match Self::get(entries, name) {
            None => Ok(Vec::new()),
            Some(node) => self.string_list(node, name),
        }
    }

    fn string_list(&self, node: &Node, name: &str) -> Result<Vec<String>, RecipeError> {
        match &node.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => items.iter().map(|item| self.string(item, name)).collect(),
            _ => Ok(vec![self.string(node, name)?]),
        }
    }

    /// A "stringy bool": YAML booleans and `"true"`/`"false"`; the YAML 1.1 spellings `yes`,
    /// `no`, `on`, `off` ... are accepted with a warning because the corpus still uses them.
    fn boolean(&mut self, node: &Node, name: &str) -> Result<bool, RecipeError> {
        // serde-saphyr already reads `yes`/`no` as booleans; the raw text tells them apart.
        let text = match (&node.value, node.raw.as_deref()) {
            (Value::Bool(flag), Some(raw)) => match raw.trim() {
                "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => flag.to_string(),
                other => other.to_owned(),
            },
            (Value::Bool(flag), None) => flag.to_string(),
            _ => node.scalar_text().unwrap_or_default(),
        };
        match text.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
                self.warn(
                    node.mark,
                    format!("`{name}: {text}` is a legacy boolean; write `true`"),
                );
                Ok(true)
            }
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                self.warn(
                    node.mark,
                    format!("`{name}: {text}` is a legacy boolean; write `false`"),
                );
                Ok(false)
            }
            _ => Err(self.error(
                node.mark,
                format!("`{name}` must be true or false, found `{text}`"),
            )),
        }
    }

    fn flag(
        &mut self,
        entries: Entries<'_>,
        name: &str,
        default: bool,
    ) -> Result<bool, RecipeError> {
        match Self::get(entries, name) {
            None => Ok(default),
            Some(node) => self.boolean(node, name),
        }
    }

    fn recipe(&mut self, root: &Node) -> Result<Recipe, RecipeError> {
        let entries = self.map(root, "a recipe")?;
        self.check_keys(
            entries,
            &[&OTHER_ROOT_KEYS, &BUILD_KEYS, &PACKAGE_KEYS],
            "the recipe",
        );
        let at = root.mark;
        let version_node = Self::get(entries, "version")
            .ok_or_else(|| self.error(at, "the recipe has no `version`"))?;
        let version = self.string(version_node, "version")?;
        // Upstream HEAD rejects these, but older recipes (e.g. `r310.533e51f`) use them and
        // version comparison copes, so the corpus keeps building.
        if !version.starts_with(|c: char| c.is_ascii_digit()) {
            self.warn(
                version_node.mark,
                format!("version `{version}` does not start with a digit"),
            );
        }
        if version.is_empty() {
            return Err(self.error(version_node.mark, "version is empty"));
        }
        let release_node = Self::get(entries, "release")
            .ok_or_else(|| self.error(at, "the recipe has no `release`"))?;
        let release = match release_node.value {
            Value::Int(number) if number > 0 => u64::try_from(number).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            self.error(
                release_node.mark,
                format!(
                    "release must be a whole number above 0, found `{}`",
                    release_node.scalar_text().unwrap_or_default()
                ),
            )
        })?;
        let source = Source {
            name: self.required_string(entries, "name", at)?,
            version,
            release,
            homepage: self.required_string(entries, "homepage", at)?,
            license: self.strings(entries, "license")?,
        };
        let toolchain = match Self::get(entries, "toolchain") {
            None => Toolchain::Llvm,
            Some(node) => match self.string(node, "toolchain")?.as_str() {
                "llvm" => Toolchain::Llvm,
                "gnu" => Toolchain::Gnu,
                other => {
                    return Err(self.error(
                        node.mark,
                        format!("toolchain must be `llvm` or `gnu`, found `{other}`"),
                    ));
                }
            },
        };
        let defaults = Options::default();
        let options = Options {
            toolchain,
            cspgo: self.flag(entries, "cspgo", defaults.cspgo)?,
            samplepgo: self.flag(entries, "samplepgo", defaults.samplepgo)?,
            debug: self.flag(entries, "debug", defaults.debug)?,
            strip: self.flag(entries, "strip", defaults.strip)?,
            networking: self.flag(entries, "networking", defaults.networking)?,
            compressman: self.flag(entries, "compressman", defaults.compressman)?,
            lastrip: self.flag(entries, "lastrip", defaults.lastrip)?,
        };
        let upstreams = match Self::get(entries, "upstreams") {
            None => Vec::new(),
            Some(node) => self.upstreams(node)?,
        };
        let tuning = match Self::get(entries, "tuning") {
            None => Vec::new(),
            Some(node) => self.tuning(node)?,
        };
        let mut profiles = Vec::new();
        if let Some(node) = Self::get(entries, "profiles") {
            for (name, body) in self.seqmap(node, "profiles")? {
                let body_entries = self.map(body, "a profile")?;
                self.check_keys(body_entries, &[&BUILD_KEYS], &format!("profile `{name}`"));
                profiles.push((name, self.build(body_entries)?));
            }
        }
        let mut packages = Vec::new();
        if let Some(node) = Self::get(entries, "packages") {
            for (name, body) in self.seqmap(node, "packages")? {
                let package = if matches!(body.value, Value::Null) {
                    PackageDefinition::default()
                } else {
                    let body_entries = self.map(body, "a package")?;
                    self.check_keys(body_entries, &[&PACKAGE_KEYS], &format!("package `{name}`"));
                    self.package(body_entries)?
                };
                packages.push((name, package));
            }
        }
        Ok(Recipe {
            source,
            build: self.build(entries)?,
            package: self.package(entries)?,
            options,
            upstreams,
            architectures: self.strings(entries, "architectures")?,
            emul32: self.flag(entries, "emul32", false)?,
            mold: self.flag(entries, "mold", false)?,
            tuning,
            profiles,
            packages,
        })
    }

    /// A sequence of one-key maps, order kept. Extra keys in an item are dropped with a warning.
    fn seqmap<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
    ) -> Result<Vec<(String, &'n Node)>, RecipeError> {
        if matches!(node.value, Value::Null) {
            return Ok(Vec::new());
        }
        let Value::Seq(items) = &node.value else {
            return Err(self.error(
                node.mark,
                format!(
                    "`{what}` must be a list of single-key mappings, found {}",
                    node.type_name()
                ),
            ));
        };
        let mut out = Vec::new();
        for item in items {
            let entries = self.map(item, &format!("an item of `{what}`"))?;
            let Some((key, value)) = entries.first() else {
                return Err(self.error(item.mark, format!("an item of `{what}` is empty")));
            };
            for (extra, _) in &entries[1..] {
                let name = extra.scalar_text().unwrap_or_default();
                self.warn(
                    extra.mark,
                    format!("`{name}` is ignored: an item of `{what}` has a single key (is the indentation right?)"),
                );
            }
            out.push((self.key(key)?, value));
        }
        Ok(out)
    }

    fn build(&mut self, entries: Entries<'_>) -> Result<Build, RecipeError> {
        let environment = self
            .optional_string(entries, "environment")?
            .filter(|text| !text.trim().is_empty() && text.trim() != "(null)");
        Ok(Build {
            setup: self.optional_string(entries, "setup")?,
            build: self.optional_string(entries, "build")?,
            install: self.optional_string(entries, "install")?,
            check: self.optional_string(entries, "check")?,
            workload: self.optional_string(entries, "workload")?,
            environment,
            builddeps: self.strings(entries, "builddeps")?,
            checkdeps: self.strings(entries, "checkdeps")?,
            lines: ["setup", "build", "install", "check", "workload", "environment"]
                .into_iter()
                .filter_map(|phase| {
                    let node = Self::get(entries, phase)?;
                    // A block scalar (`|`, `>`) starts on the line after its indicator.
                    let block = node.raw.as_deref().is_some_and(|raw| raw.trim_start().starts_with(['|', '>']))
                        || matches!(&node.value, Value::Str(text) if text.ends_with('\n') && node.raw.is_none());
                    Some((phase.to_owned(), node.mark.line + u64::from(block)))
                })
                .collect(),
        })
    }

    fn package(&mut self, entries: Entries<'_>) -> Result<PackageDefinition, RecipeError> {
        let mut paths = Vec::new();
        if let Some(node) = Self::get(entries, "paths") {
            let items = match &node.value {
                Value::Seq(items) => items.as_slice(),
                Value::Null => &[],
                _ => std::slice::from_ref(node),
            };
            for item in items {
                paths.push(self.path_rule(item)?);
            }
        }
        Ok(PackageDefinition {
            summary: self.optional_string(entries, "summary")?,
            description: self
                .optional_string(entries, "description")?
                .map(|text| text.trim().to_owned()),
            rundeps: self.strings(entries, "rundeps")?,
            rundeps_exclude: self.strings(entries, "rundeps-exclude")?,
            provides_exclude: self.strings(entries, "provides-exclude")?,
            conflicts: self.strings(entries, "conflicts")?,
            paths,
        })
    }

    fn path_rule(&mut self, node: &Node) -> Result<PathRule, RecipeError> {
        if let Value::Map(entries) = &node.value {
            let Some((key, kind)) = entries.first() else {
                return Err(self.error(node.mark, "an empty path entry"));
            };
            let kind_text = self.string(kind, "path kind")?;
            let kind = match kind_text.as_str() {
                "any" => PathKind::Any,
                "exe" => PathKind::Exe,
                "symlink" => PathKind::Symlink,
                "special" => PathKind::Special,
                other => {
                    return Err(self.error(
                        kind.mark,
                        format!("path kind must be any, exe, symlink or special, found `{other}`"),
                    ));
                }
            };
            return Ok(PathRule {
                pattern: self.key(key)?,
                kind,
            });
        }
        Ok(PathRule {
            pattern: self.string(node, "paths")?,
            kind: PathKind::Any,
        })
    }

    fn upstreams(&mut self, node: &Node) -> Result<Vec<Upstream>, RecipeError> {
        let mut out = Vec::new();
        for (uri, props) in self.seqmap(node, "upstreams")? {
            let (is_git, url) = match uri.strip_prefix("git|") {
                Some(url) => (true, url.to_owned()),
                None => (false, uri.clone()),
            };
            if url::Url::parse(&url).is_err() {
                return Err(self.error(props.mark, format!("upstream `{url}` is not a valid URL")));
            }
            let upstream = match (&props.value, is_git) {
                (Value::Map(entries), false) => {
                    self.check_keys(
                        entries,
                        &[&["hash", "rename", "stripdirs", "unpack", "unpackdir"]],
                        "a plain upstream",
                    );
                    let hash = Self::get(entries, "hash").ok_or_else(|| {
                        self.error(props.mark, format!("upstream `{url}` has no `hash`"))
                    })?;
                    let hash_text = self.string(hash, "hash")?;
                    self.check_hash(&hash_text, hash.mark)?;
                    let stripdirs = match Self::get(entries, "stripdirs") {
                        None => 1,
                        Some(node) => match node.value {
                            Value::Int(number) => u8::try_from(number).ok(),
                            _ => None,
                        }
                        .ok_or_else(|| {
                            self.error(node.mark, "`stripdirs` must be a number from 0 to 255")
                        })?,
                    };
                    Upstream::Plain {
                        url,
                        hash: hash_text,
                        rename: self.optional_string(entries, "rename")?,
                        stripdirs,
                        unpack: self.flag(entries, "unpack", true)?,
                        unpackdir: self.optional_string(entries, "unpackdir")?,
                    }
                }
                (Value::Map(entries), true) => {
                    self.check_keys(entries, &[&["ref", "clonedir"]], "a git upstream");
                    let git_ref = Self::get(entries, "ref").ok_or_else(|| {
                        self.error(props.mark, format!("git upstream `{url}` has no `ref`"))
                    })?;
                    Upstream::Git {
                        url,
                        git_ref: self.string(git_ref, "ref")?,
                        clonedir: self.optional_string(entries, "clonedir")?,
                    }
                }
                (_, false) => {
                    let hash = self.string(props, "hash")?;
                    self.check_hash(&hash, props.mark)?;
                    Upstream::Plain {
                        url,
                        hash,
                        rename: None,
                        stripdirs: 1,
                        unpack: true,
                        unpackdir: None,
                    }
                }
                (_, true) => Upstream::Git {
                    url,
                    git_ref: self.string(props, "ref")?,
                    clonedir: None,
                },
            };
            out.push(upstream);
        }
        Ok(out)
    }

    fn check_hash(&mut self, hash: &str, mark: Mark) -> Result<(), RecipeError> {
        if hash.len() < 5 {
            return Err(self.error(mark, format!("hash `{hash}` is too short")));
        }
        if hash.len() != 64
            || !hash
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        {
            self.warn(
                mark,
                format!("hash `{hash}` is not a lowercase hex SHA-256; it can never match"),
            );
        }
        Ok(())
    }

    fn tuning(&mut self, node: &Node) -> Result<Vec<Tuning>, RecipeError> {
        let Value::Seq(items) = &node.value else {
            return Err(self.error(node.mark, "`tuning` must be a list"));
        };
        let mut out = Vec::new();
        for item in items {
            let tuning = match &item.value {
                Value::Map(entries) => {
                    let Some((key, value)) = entries.first() else {
                        return Err(self.error(item.mark, "an empty tuning item"));
                    };
                    let group = self.key(key)?;
                    let raw = value.raw.as_deref().unwrap_or_default().trim();
                    let setting = match &value.value {
                        Value::Bool(true) | Value::Null => TuningSetting::Enable,
                        Value::Bool(false) => {
                            // Upstream reads `icf: no` as an option named "no" and then fails;
                            // the author meant "off".
                            if !matches!(raw, "false" | "False" | "FALSE" | "") {
                                self.warn(
                                    value.mark,
                                    format!("`{group}: {raw}` is read as `{group}: false`"),
                                );
                            }
                            TuningSetting::Disable
                        }
                        _ => {
                            let text = self.string(value, "tuning")?;
                            if matches!(
                                text.as_str(),
                                "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N"
                            ) {
                                self.warn(
                                    value.mark,
                                    format!("`{group}: {text}` is read as `{group}: false`"),
                                );
                                TuningSetting::Disable
                            } else {
                                TuningSetting::Option(text)
                            }
                        }
                    };
                    Tuning { group, setting }
                }
                _ => Tuning {
                    group: self.string(item, "tuning")?,
                    setting: TuningSetting::Enable,
                },
            };
            out.push(tuning);
        }
        Ok(out)
    }
}

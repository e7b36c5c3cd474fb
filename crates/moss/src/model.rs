//! The declarative system model (engine spec §12): a KDL file naming the repositories and the
//! packages a system is made of, in upstream's format so that a model upstream moss wrote is
//! read as it is.
//!
//! ```kdl
//! disable_warning #true
//! repositories {
//!     volatile {
//!         description "..."
//!         uri "https://.../stone.index"     // or base-uri, channel, version, arch
//!         priority 10
//!         enabled #false                     // optional
//!         keys "RW..."                       // ours: pinned signing keys
//!     }
//! }
//! packages {
//!     nano
//!     "binary(cc)"
//!     "pkgconfig(zlib)" { why "bar" }      // children are ignored
//! }
//! ```
//!
//! Edits keep the document's formatting and comments: packages the user adds are appended under
//! a `// Added by moss` comment, as upstream does.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use stone::Dependency;

use crate::repository::{
    ConfigError, Repository,
    config::parse::{line_of, parse_kdl_document, repository_from_node},
    root_index::{DEFAULT_ARCH, DEFAULT_CHANNEL},
};

/// Where the administrator's model lives, relative to the root; when it exists it is the
/// source of truth for repositories and the explicit packages.
pub const ADMIN_MODEL: &str = "etc/moss/system-model.kdl";
/// Where every state records the model it was built from, relative to the root (inside `/usr`,
/// so a rollback brings its model back).
pub const STATE_MODEL: &str = "usr/lib/system-model.kdl";

/// A system model failed to read, parse or write.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file cannot be read.
    #[error("Cannot read the system model {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is malformed.
    #[error("Invalid system model {}, line {line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line of the problem, from 1.
        line: usize,
        /// What is wrong, and the fix.
        message: String,
    },
    /// A listed package is offered by no repository of the model.
    #[error(
        "System model {}, line {line}: no repository of the model offers `{package}`; fix the \
         name, or add a repository that has it",
        path.display()
    )]
    UnknownPackage {
        /// The file.
        path: PathBuf,
        /// Line of the entry.
        line: usize,
        /// The entry.
        package: String,
    },
    /// The file cannot be written.
    #[error("Cannot write the system model {}: {source}; check that the directory is writable", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// One `packages` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPackage {
    /// What the entry asks for: `name(foo)` for a bare `foo`, or any provider.
    pub dependency: Dependency,
    /// The entry as written.
    pub text: String,
    /// Its line, from 1 (0 for an entry added in memory).
    pub line: usize,
}

/// A parsed system model.
#[derive(Debug, Clone)]
pub struct SystemModel {
    /// Where it was read from (for error messages).
    pub path: PathBuf,
    /// `disable_warning #true`: no notice that the model manages the system.
    pub disable_warning: bool,
    /// Its repositories, highest priority first.
    pub repositories: Vec<Repository>,
    /// Its packages, in file order.
    pub packages: Vec<ModelPackage>,
    document: KdlDocument,
}

impl SystemModel {
    /// Read the model at `path`; `None` when there is no such file.
    pub fn load(path: &Path) -> Result<Option<Self>, ModelError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text).map(Some),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ModelError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parse a model's text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ModelError> {
        let document = parse_kdl_document(path, text).map_err(parse_error)?;
        let error = |line, message: String| ModelError::Parse {
            path: path.to_owned(),
            line,
            message,
        };
        let mut model = Self {
            path: path.to_owned(),
            disable_warning: false,
            repositories: Vec::new(),
            packages: Vec::new(),
            document: document.clone(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for node in document.nodes() {
            let name = node.name().value();
            let line = line_of(text, node.span().offset());
            if seen.contains(&name) {
                return Err(error(line, format!("`{name}` is given twice")));
            }
            seen.push(name);
            match name {
                "disable_warning" => {
                    model.disable_warning = match node.entries() {
                        [entry] if entry.name().is_none() => entry.value().as_bool(),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        error(line, "`disable_warning` takes #true or #false".to_owned())
                    })?;
                }
                "repositories" => {
                    for child in node.iter_children() {
                        let id = child.name().value();
                        if model.repositories.iter().any(|known| known.id == id) {
                            let line = line_of(text, child.span().offset());
                            return Err(error(line, format!("repository `{id}` is given twice")));
                        }
                        let repository = repository_from_node(path, text, child, "enabled")
                            .map_err(parse_error)?;
                        model.repositories.push(repository);
                    }
                }
                "packages" => {
                    for child in node.iter_children() {
                        let line = line_of(text, child.span().offset());
                        let written = child.name().value();
                        let dependency = written.parse::<Dependency>().map_err(|problem| {
                            error(
                                line,
                                format!("`{written}` is not a package name or provider: {problem}"),
                            )
                        })?;
                        if !child.entries().is_empty() {
                            return Err(error(
                                line,
                                format!(
                                    "package `{written}` takes no values (only `{{ why \"...\" }}`)"
                                ),
                            ));
                        }
                        model.packages.push(ModelPackage {
                            dependency,
                            text: written.to_owned(),
                            line,
                        });
                    }
                }
                other => {
                    return Err(error(
                        line,
                        format!(
                            "unknown key `{other}`; a system model has disable_warning, \
                             repositories and packages"
                        ),
                    ));
                }
            }
        }
        model.sort_repositories();
        Ok(model)
    }

    /// A model of these repositories and explicit packages (what `state export` writes for a
    /// state that recorded none, and what a state records on a system without a model).
    pub fn generate(path: &Path, repositories: &[Repository], packages: &[String]) -> Self {
        let mut document = KdlDocument::new();
        let mut section = KdlNode::new("repositories");
        let children = section.ensure_children();
        for repository in repositories {
            children.nodes_mut().push(render_repository(repository));
        }
        document.nodes_mut().push(section);
        let mut section = KdlNode::new("packages");
        section.ensure_children();
        document.nodes_mut().push(section);
        document.autoformat();
        let mut model = Self {
            path: path.to_owned(),
            disable_warning: false,
            repositories: repositories.to_vec(),
            packages: Vec::new(),
            document,
        };
        model.add_packages(packages, false);
        model.sort_repositories();
        model
    }

    /// The model as KDL text (formatting and comments of the parsed file kept).
    pub fn to_text(&self) -> String {
        let mut text = self.document.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// Make the packages section exactly `wanted`: entries `keep` accepts stay as written (with
    /// their comments), the others go, and wanted names no entry covers are appended under
    /// `// Added by moss`.
    pub fn set_packages(&mut self, wanted: &[String], keep: impl Fn(&ModelPackage) -> bool) {
        let kept: Vec<bool> = self.packages.iter().map(&keep).collect();
        let section = self.section("packages");
        let mut index = 0;
        section.nodes_mut().retain(|_| {
            let stay = kept[index];
            index += 1;
            stay
        });
        let mut position = 0;
        self.packages.retain(|_| {
            let stay = kept[position];
            position += 1;
            stay
        });
        let missing: Vec<String> = wanted
            .iter()
            .filter(|name| {
                !self
                    .packages
                    .iter()
                    .any(|entry| entry.text == **name || entry.dependency.target == **name)
            })
            .cloned()
            .collect();
        self.add_packages(&missing, true);
    }

    /// Set (add or replace) a repository definition.
    pub fn set_repository(&mut self, repository: &Repository) {
        let node = render_repository(repository);
        let section = self.section("repositories");
        match section
            .nodes_mut()
            .iter_mut()
            .find(|existing| existing.name().value() == repository.id)
        {
            Some(existing) => {
                let mut node = node;
                if let Some(format) = existing.format() {
                    let mut new_format = node.format().cloned().unwrap_or_default();
                    new_format.leading = format.leading.clone();
                    node.set_format(new_format);
                }
                *existing = node;
            }
            None => section.nodes_mut().push(node),
        }
        self.repositories.retain(|known| known.id != repository.id);
        self.repositories.push(repository.clone());
        self.sort_repositories();
    }

    /// Remove a repository definition; whether there was one.
    pub fn remove_repository(&mut self, id: &str) -> bool {
        let section = self.section("repositories");
        let before = section.nodes().len();
        section.nodes_mut().retain(|node| node.name().value() != id);
        let removed = section.nodes().len() != before;
        self.repositories.retain(|known| known.id != id);
        removed
    }

    /// Write the model to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let text = self.to_text();
        crate::repository::write_atomically(path, |file| {
            io::Write::write_all(file, text.as_bytes())
        })
        .map_err(|source| ModelError::Write {
            path: path.to_owned(),
            source,
        })
    }

    fn add_packages(&mut self, names: &[String], comment: bool) {
        let section = self.section("packages");
        for (position, name) in names.iter().enumerate() {
            let mut node = KdlNode::new(package_node_name(name));
            // Only the new node is formatted: the rest of the document stays as written.
            node.autoformat();
            let mut format = node.format().cloned().unwrap_or_default();
            format.leading = if comment && position == 0 {
                "\n    // Added by moss\n    ".to_owned()
            } else {
                "    ".to_owned()
            };
            format.terminator = "\n".to_owned();
            node.set_format(format);
            section.nodes_mut().push(node);
        }
        for name in names {
            if let Ok(dependency) = name.parse::<Dependency>() {
                self.packages.push(ModelPackage {
                    dependency,
                    text: name.clone(),
                    line: 0,
                });
            }
        }
    }

    /// The children of a top-level section, created when missing.
    fn section(&mut self, name: &str) -> &mut KdlDocument {
        let nodes = self.document.nodes_mut();
        let position = match nodes.iter().position(|node| node.name().value() == name) {
            Some(position) => position,
            None => {
                nodes.push(KdlNode::new(name));
                nodes.len() - 1
            }
        };
        nodes[position].ensure_children()
    }

    fn sort_repositories(&mut self) {
        self.repositories
            .sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
    }
}

/// `name(foo)` is written bare, as upstream writes it.
fn package_node_name(text: &str) -> String {
    text.strip_prefix("name(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(text)
        .to_owned()
}

/// A repository in upstream's model encoding: `enabled` only when off, defaults left out.
fn render_repository(repository: &Repository) -> KdlNode {
    let mut node = KdlNode::new(repository.id.as_str());
    let mut fields = vec![(
        "description",
        KdlValue::String(repository.description.clone()),
    )];
    match &repository.root_index {
        None => fields.push(("uri", KdlValue::String(repository.uri.to_string()))),
        Some(source) => {
            fields.push(("base-uri", KdlValue::String(source.base_uri.to_string())));
            if source.channel != DEFAULT_CHANNEL {
                fields.push(("channel", KdlValue::String(source.channel.clone())));
            }
            fields.push(("version", KdlValue::String(source.version.to_string())));
            if source.arch != DEFAULT_ARCH {
                fields.push(("arch", KdlValue::String(source.arch.clone())));
            }
        }
    }
    fields.push((
        "priority",
        KdlValue::Integer(i128::from(repository.priority)),
    ));
    if !repository.active {
        fields.push(("enabled", KdlValue::Bool(false)));
    }
    let children = node.ensure_children();
    for (name, value) in fields {
        let mut child = KdlNode::new(name);
        child.push(KdlEntry::new(value));
        children.nodes_mut().push(child);
    }
    if !repository.keys.is_empty() {
        let mut child = KdlNode::new("keys");
        for key in &repository.keys {
            child.push(KdlEntry::new(KdlValue::String(key.clone())));
        }
        children.nodes_mut().push(child);
    }
    node.autoformat();
    node
}

fn parse_error(error: ConfigError) -> ModelError {
    match error {
        ConfigError::Parse {
            path,
            line,
            message,
        } => ModelError::Parse {
            path,
            line,
            message,
        },
        other => ModelError::Parse {
            path: PathBuf::new(),
            line: 1,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;

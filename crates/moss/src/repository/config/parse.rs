//! Parsing and rendering repository definitions: KDL (current) and YAML (legacy).

use std::{collections::BTreeMap, fs, path::Path};

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use url::Url;

use super::{ConfigError, is_kdl};
use crate::repository::{
    Repository, RootIndexSource, check_scheme,
    root_index::{DEFAULT_ARCH, DEFAULT_CHANNEL},
    validate_id,
};

/// A fresh, formatted node for one repository.
pub(super) fn render_node(repository: &Repository) -> KdlNode {
    let mut node = KdlNode::new(repository.id.as_str());
    let mut fields = vec![(
        "description",
        KdlValue::String(repository.description.clone()),
    )];
    match &repository.root_index {
        None => fields.push(("uri", KdlValue::String(repository.uri.to_string()))),
        Some(source) => {
            fields.push(("base-uri", KdlValue::String(source.base_uri.to_string())));
            // Upstream writes the defaults out only when they differ.
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
    fields.push(("active", KdlValue::Bool(repository.active)));
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

/// The repositories of one file, with the line of each definition.
pub(super) fn parse_file(path: &Path) -> Result<Vec<(Repository, usize)>, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    if is_kdl(path) {
        parse_kdl(path, &text)
    } else {
        parse_yaml(path, &text)
    }
}

/// The fields of one definition, before checking.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Fields {
    description: Option<String>,
    uri: Option<String>,
    priority: Option<u64>,
    active: Option<bool>,
    keys: Option<Vec<String>>,
    base_uri: Option<String>,
    channel: Option<String>,
    version: Option<String>,
    arch: Option<String>,
}

impl Fields {
    fn into_repository(self, id: &str) -> Result<Repository, String> {
        validate_id(id).map_err(|error| error.to_string())?;
        let root_index = self.root_index_source(id)?;
        let uri = match (&root_index, self.uri) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "repository `{id}` has both `uri` and `base-uri`; give `uri` for a direct \
                     stone.index or `base-uri` with `version` for a root index"
                ));
            }
            (Some(source), None) => source.root_index_url(),
            (None, Some(uri)) => Url::parse(&uri).map_err(|error| {
                format!("repository `{id}` has an invalid uri {uri:?}: {error}")
            })?,
            (None, None) => {
                return Err(format!(
                    "repository `{id}` has no `uri` (or `base-uri` with `version`)"
                ));
            }
        };
        check_scheme(id, &uri).map_err(|error| error.to_string())?;
        Repository {
            id: id.to_owned(),
            description: self.description.unwrap_or_default(),
            uri,
            priority: self.priority.unwrap_or(0),
            active: self.active.unwrap_or(true),
            keys: Vec::new(),
            root_index,
        }
        .with_keys(&self.keys.unwrap_or_default())
        .map_err(|error| error.to_string())
    }

    /// The root-index source of `base-uri`, `channel`, `version` and `arch`, when given.
    fn root_index_source(&self, id: &str) -> Result<Option<RootIndexSource>, String> {
        let Some(base) = &self.base_uri else {
            if self.channel.is_some() || self.version.is_some() || self.arch.is_some() {
                return Err(format!(
                    "repository `{id}` has `channel`, `version` or `arch` without `base-uri`"
                ));
            }
            return Ok(None);
        };
        let base = Url::parse(base).map_err(|error| {
            format!("repository `{id}` has an invalid base-uri {base:?}: {error}")
        })?;
        let version = self
            .version
            .as_deref()
            .ok_or_else(|| {
                format!(
                    "repository `{id}` has a `base-uri` but no `version` (e.g. stream/volatile)"
                )
            })?
            .parse()
            .map_err(|error| format!("repository `{id}`: {error}"))?;
        RootIndexSource::new(base, self.channel.as_deref(), version, self.arch.as_deref())
            .map(Some)
            .map_err(|error| format!("repository `{id}`: {error}"))
    }
}

pub(crate) fn parse_kdl_document(path: &Path, text: &str) -> Result<KdlDocument, ConfigError> {
    // KDL v2 (`#true`/`#false`), the syntax upstream writes.
    KdlDocument::parse_v2(text).map_err(|error| {
        let (offset, mut message) = error
            .diagnostics
            .first()
            .map(|diagnostic| {
                let mut message = diagnostic
                    .message
                    .clone()
                    .or_else(|| diagnostic.label.clone())
                    .unwrap_or_else(|| "invalid KDL".to_owned());
                if let Some(help) = &diagnostic.help {
                    message = format!("{message} ({help})");
                }
                (diagnostic.span.offset(), message)
            })
            .unwrap_or((0, "invalid KDL".to_owned()));
        let line = line_of(text, offset);
        let v1_keyword = text.lines().nth(line - 1).is_some_and(|source| {
            source
                .split_whitespace()
                .any(|word| matches!(word, "true" | "false" | "null"))
        });
        if v1_keyword {
            message.push_str("; KDL v2 spells booleans #true and #false");
        }
        ConfigError::Parse {
            path: path.to_owned(),
            line,
            message,
        }
    })
}

fn parse_kdl(path: &Path, text: &str) -> Result<Vec<(Repository, usize)>, ConfigError> {
    let document = parse_kdl_document(path, text)?;
    let mut repositories = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for node in document.nodes() {
        let id = node.name().value();
        let line = line_of(text, node.span().offset());
        if let Some(first) = seen.insert(id.to_owned(), line) {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                line,
                message: format!(
                    "repository `{id}` is defined twice in this file (first at line {first})"
                ),
            });
        }
        repositories.push((repository_from_node(path, text, node, "active")?, line));
    }
    Ok(repositories)
}

/// One repository definition node (`id { uri ...; priority ...; }`) of the KDL file at `path`
/// whose text is `text`. `active_field` names the on/off field: `active` in repository files,
/// `enabled` in system models (as upstream spells them).
pub(crate) fn repository_from_node(
    path: &Path,
    text: &str,
    node: &KdlNode,
    active_field: &str,
) -> Result<Repository, ConfigError> {
    let id = node.name().value();
    let line = line_of(text, node.span().offset());
    let error = |line, message: String| ConfigError::Parse {
        path: path.to_owned(),
        line,
        message,
    };
    if !node.entries().is_empty() {
        return Err(error(
            line,
            format!("repository `{id}` takes no arguments, only fields in braces"),
        ));
    }
    let mut fields = Fields::default();
    let mut given: Vec<&str> = Vec::new();
    for child in node.iter_children() {
        let name = child.name().value();
        let line = line_of(text, child.span().offset());
        if given.contains(&name) {
            return Err(error(line, format!("field `{name}` is given twice")));
        }
        given.push(name);
        if name == "keys" {
            let keys = child
                .entries()
                .iter()
                .map(|entry| {
                    entry
                        .value()
                        .as_string()
                        .filter(|_| entry.name().is_none())
                        .map(str::to_owned)
                })
                .collect::<Option<Vec<_>>>()
                .filter(|_| child.children().is_none())
                .ok_or_else(|| {
                    error(line, "field `keys` takes public keys as strings".to_owned())
                })?;
            fields.keys = Some(keys);
            continue;
        }
        let value = match child.entries() {
            [entry] if entry.name().is_none() && child.children().is_none() => entry.value(),
            _ => {
                return Err(error(
                    line,
                    format!("field `{name}` takes exactly one value"),
                ));
            }
        };
        let string = || {
            value
                .as_string()
                .map(str::to_owned)
                .ok_or_else(|| error(line, format!("field `{name}` must be a string")))
        };
        match name {
            "description" => fields.description = Some(string()?),
            "uri" => fields.uri = Some(string()?),
            "base-uri" => fields.base_uri = Some(string()?),
            "channel" => fields.channel = Some(string()?),
            "version" => fields.version = Some(string()?),
            "arch" => fields.arch = Some(string()?),
            "priority" => {
                let priority = value
                    .as_integer()
                    .and_then(|number| u64::try_from(number).ok())
                    .ok_or_else(|| {
                        error(
                            line,
                            "field `priority` must be a whole number from 0".to_owned(),
                        )
                    })?;
                fields.priority = Some(priority);
            }
            active if active == active_field => {
                let active = value.as_bool().ok_or_else(|| {
                    error(
                        line,
                        format!("field `{active_field}` must be #true or #false"),
                    )
                })?;
                fields.active = Some(active);
            }
            other => {
                return Err(error(
                    line,
                    format!(
                        "unknown field `{other}`; the fields are description, uri (or base-uri, \
                         channel, version and arch), priority, {active_field} and keys"
                    ),
                ));
            }
        }
    }
    fields
        .into_repository(id)
        .map_err(|message| error(line, message))
}

fn parse_yaml(path: &Path, text: &str) -> Result<Vec<(Repository, usize)>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let parsed: BTreeMap<String, serde_saphyr::Spanned<Fields>> = serde_saphyr::from_str(text)
        .map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            line: error
                .location()
                .map_or(1, |location| location.line() as usize),
            message: error.without_snippet().to_string(),
        })?;
    let mut repositories: Vec<(Repository, usize)> = parsed
        .into_iter()
        .map(|(id, spanned)| {
            let line = spanned.referenced.line() as usize;
            spanned
                .value
                .into_repository(&id)
                .map(|repository| (repository, line))
                .map_err(|message| ConfigError::Parse {
                    path: path.to_owned(),
                    line,
                    message,
                })
        })
        .collect::<Result<_, _>>()?;
    repositories.sort_by_key(|(_, line)| *line);
    Ok(repositories)
}

/// The ids a YAML file defines (it parsed when the configuration was loaded).
pub(super) fn yaml_ids(path: &Path) -> Result<Vec<String>, ConfigError> {
    Ok(parse_file(path)?
        .into_iter()
        .map(|(repository, _)| repository.id)
        .collect())
}

/// Line (from 1) of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kdl(text: &str) -> Result<Vec<(Repository, usize)>, ConfigError> {
        parse_kdl(Path::new("/etc/moss/repo.d/test.kdl"), text)
    }

    #[test]
    fn kdl_fields() {
        let v2 = "core {\n  description \"Core\"\n  uri \"https://x.org/stone.index\"\n  priority 10\n  active #false\n}\n";
        let (repository, line) = kdl(v2).unwrap().remove(0);
        assert_eq!(line, 1);
        assert_eq!(repository.id, "core");
        assert_eq!(repository.priority, 10);
        assert!(!repository.active);
        let minimal = "core { uri \"file:///srv/stone.index\"; }";
        let (repository, _) = kdl(minimal).unwrap().remove(0);
        assert!(repository.active);
        assert_eq!(repository.priority, 0);
        assert_eq!(repository.uri.scheme(), "file");
    }

    #[test]
    fn kdl_errors_carry_lines() {
        let cases = [
            (
                "a {\n  uri \"https://x/stone.index\"\n  prioirty 1\n}\n",
                3,
                "unknown field",
            ),
            (
                "a {\n  uri \"https://x/stone.index\"\n  priority -1\n}\n",
                3,
                "priority",
            ),
            ("a {\n  description \"x\"\n}\n", 1, "no `uri`"),
            (
                "\n\na {\n  uri \"ftp://x/stone.index\"\n}\n",
                3,
                "not supported",
            ),
            (
                "\nb.c {\n  uri \"https://x/stone.index\"\n}\n",
                2,
                "Invalid repository id",
            ),
            (
                "a {\n  uri \"https://x/stone.index\"\n  uri \"https://y\"\n}\n",
                3,
                "twice",
            ),
            ("a {\n  base-uri \"https://x/\"\n}\n", 1, "no `version`"),
            (
                "a {\n  base-uri \"https://x/\"\n  version \"branch/x\"\n}\n",
                1,
                "stream/",
            ),
            ("a {\n  channel \"main\"\n}\n", 1, "without `base-uri`"),
        ];
        for (text, line, needle) in cases {
            match kdl(text) {
                Err(ConfigError::Parse {
                    line: got, message, ..
                }) => {
                    assert_eq!(got, line, "{text}: {message}");
                    assert!(message.contains(needle), "{message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn yaml_legacy() {
        let text = "volatile:\n  description: \"AerynOS volatile\"\n  uri: \"https://cdn.example/volatile/x86_64/stone.index\"\n  priority: 0\nlocal:\n  uri: \"file:///srv/stone.index\"\n  priority: 5\n  active: false\n";
        let repositories = parse_yaml(Path::new("x.yaml"), text).unwrap();
        assert_eq!(repositories.len(), 2);
        assert_eq!(repositories[0].0.id, "volatile");
        assert!(!repositories[1].0.active);
        let error = parse_yaml(
            Path::new("x.yaml"),
            "a:\n  uri: \"https://x\"\n  bogus: 1\n",
        )
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::Parse { line: 3, .. }),
            "{error}"
        );
    }

    #[test]
    fn rendered_nodes_round_trip() {
        let repository = Repository {
            id: "1st_repo".to_owned(),
            description: "quote \" and backslash \\".to_owned(),
            uri: Url::parse("https://example.org/a b/stone.index").unwrap(),
            priority: u64::MAX,
            active: false,
            root_index: None,
            keys: vec![
                crate::repository::signing::parse_public_key(
                    &crate::repository::signing::generate_key_pair().unwrap().0,
                )
                .unwrap(),
            ],
        };
        let mut document = KdlDocument::new();
        document.nodes_mut().push(render_node(&repository));
        let text = document.to_string();
        let (parsed, _) = kdl(&text).unwrap().remove(0);
        assert_eq!(parsed, repository, "{text}");
    }

    #[test]
    fn root_index_sources() {
        // Upstream's own file (os-tools' default repo.d entry).
        let upstream = "volatile {\n    description \"AerynOS volatile stream\"\n    base-uri \"https://cdn.aerynos.dev/\"\n    channel \"main\"\n    version \"stream/volatile\"\n    arch \"x86_64\"\n    priority 0\n}\n";
        let (repository, _) = kdl(upstream).unwrap().remove(0);
        let source = repository.root_index.clone().unwrap();
        assert_eq!(source.base_uri.as_str(), "https://cdn.aerynos.dev/");
        assert_eq!(source.version.to_string(), "stream/volatile");
        assert_eq!(
            repository.uri.as_str(),
            "https://cdn.aerynos.dev/main/moss-root-index.json"
        );
        let mut document = KdlDocument::new();
        let mut other = repository.clone();
        other.root_index.as_mut().unwrap().channel = "beta".to_owned();
        other.uri = other.root_index.as_ref().unwrap().root_index_url();
        for repository in [&repository, &other] {
            document.nodes_mut().clear();
            document.nodes_mut().push(render_node(repository));
            let text = document.to_string();
            assert_eq!(&kdl(&text).unwrap().remove(0).0, repository, "{text}");
        }
        assert!(!document.to_string().contains("arch"), "{document}");
        let both = "a {\n  uri \"https://x/stone.index\"\n  base-uri \"https://x/\"\n  version \"stream/v\"\n}\n";
        assert!(kdl(both).unwrap_err().to_string().contains("both"));
    }
}

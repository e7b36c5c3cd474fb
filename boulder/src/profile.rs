//! Build profiles: named sets of moss repositories that build roots are composed from
//! (`boulder build --profile NAME`), managed with `boulder profile list|add|update` as upstream
//! does. One file per profile, `CONFIG/profile.d/NAME.kdl`, in upstream's shape:
//!
//! ```kdl
//! local-x86_64 {
//!     repositories {
//!         volatile {
//!             uri "https://example.invalid/volatile/x86_64/stone.index"
//!             priority 100
//!         }
//!     }
//! }
//! ```

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use kdl::{KdlDocument, KdlNode};
use serde::Serialize;

/// One repository of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileRepository {
    /// Repository id.
    pub id: String,
    /// URI of its `stone.index`.
    pub uri: String,
    /// Larger is preferred.
    pub priority: u64,
}

/// A named set of repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// Its repositories, highest priority first.
    pub repositories: Vec<ProfileRepository>,
}

/// Why a profile could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile of that name.
    #[error(
        "there is no build profile `{name}` in {}; `boulder profile list` shows them, `boulder profile add {name} --repo name=ID,uri=URI` adds it",
        .directory.display()
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// Where profiles are kept.
        directory: PathBuf,
    },
    /// A profile file is malformed.
    #[error("build profile {} is malformed: {message}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `--repo` argument is malformed.
    #[error("--repo {text}: {message}; write name=ID,uri=URI[,priority=N] (or ID=URI)")]
    BadRepository {
        /// The argument.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// A name that cannot be a file name.
    #[error("`{0}` is not a usable profile name: use letters, digits, `-`, `_` and `.`")]
    BadName(String),
    /// Reading or writing failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Refreshing the repositories failed.
    #[error("refreshing the repositories of build profile `{name}` failed: {source}")]
    Refresh {
        /// The profile.
        name: String,
        /// The engine's error (boxed: it is large).
        #[source]
        source: Box<moss::EngineError>,
    },
}

/// The profiles kept in one configuration directory.
#[derive(Debug, Clone)]
pub struct Profiles {
    directory: PathBuf,
}

impl Profiles {
    /// The profiles of the configuration directory `config` (`config/profile.d`).
    pub fn new(config: &Path) -> Self {
        Self {
            directory: config.join("profile.d"),
        }
    }

    /// Every profile, by name.
    pub fn list(&self) -> Result<Vec<Profile>, ProfileError> {
        let entries = match fs::read_dir(&self.directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ProfileError::Io {
                    action: "read",
                    path: self.directory.clone(),
                    source,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "kdl"))
            .collect();
        paths.sort();
        let mut profiles = Vec::new();
        for path in paths {
            profiles.extend(read_file(&path)?);
        }
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(profiles)
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Result<Profile, ProfileError> {
        self.list()?
            .into_iter()
            .find(|profile| profile.name == name)
            .ok_or_else(|| ProfileError::NotFound {
                name: name.to_owned(),
                directory: self.directory.clone(),
            })
    }

    /// Write (or replace) a profile; returns its file.
    pub fn save(&self, profile: &Profile) -> Result<PathBuf, ProfileError> {
        check_name(&profile.name)?;
        fs::create_dir_all(&self.directory).map_err(|source| ProfileError::Io {
            action: "create",
            path: self.directory.clone(),
            source,
        })?;
        let path = self.directory.join(format!("{}.kdl", profile.name));
        let temporary = self.directory.join(format!(".{}.kdl.part", profile.name));
        let write = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ProfileError::Io {
                action: "write",
                path,
                source,
            }
        };
        fs::write(&temporary, render(profile)).map_err(write(&temporary))?;
        fs::rename(&temporary, &path).map_err(write(&path))?;
        Ok(path)
    }
}

/// Parse `--repo name=ID,uri=URI[,priority=N]` (upstream's form) or `ID=URI`.
pub fn parse_repository(text: &str) -> Result<ProfileRepository, ProfileError> {
    let bad = |message: &str| ProfileError::BadRepository {
        text: text.to_owned(),
        message: message.to_owned(),
    };
    let pairs: Vec<(&str, &str)> = text
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| *value)
    };
    let (id, uri, priority) = match (value("name"), value("uri")) {
        (Some(id), Some(uri)) => (id, uri, value("priority")),
        (None, None) => {
            let (id, uri) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
            (id, uri, None)
        }
        _ => return Err(bad("both name= and uri= are needed")),
    };
    if id.is_empty() || uri.is_empty() {
        return Err(bad("the name and the URI must not be empty"));
    }
    let priority = match priority {
        Some(text) => text
            .parse()
            .map_err(|_| bad("the priority must be a whole number"))?,
        None => 0,
    };
    Ok(ProfileRepository {
        id: id.to_owned(),
        uri: uri.to_owned(),
        priority,
    })
}

/// Fetch the indexes of a profile's repositories into a moss installation at `state`
/// (created when missing) to check they are reachable and current; returns how many
/// packages they offer.
pub fn refresh(profile: &Profile, state: &Path) -> Result<usize, ProfileError> {
    let refresh_error = |source| ProfileError::Refresh {
        name: profile.name.clone(),
        source: Box::new(source),
    };
    let io = |source| ProfileError::Io {
        action: "create",
        path: state.to_path_buf(),
        source,
    };
    fs::create_dir_all(state).map_err(io)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    runtime.block_on(async {
        let moss = moss::Moss::open(state, Arc::new(moss::events::Silent))
            .await
            .map_err(refresh_error)?;
        let result = async {
            let known: Vec<String> = moss
                .repositories()?
                .into_iter()
                .map(|repository| repository.id.to_string())
                .collect();
            // Repositories the profile no longer names go: they would mix into its packages.
            for id in &known {
                if !profile
                    .repositories
                    .iter()
                    .any(|repository| &repository.id == id)
                {
                    moss.remove_repository(id)?;
                }
            }
            for repository in &profile.repositories {
                if known.contains(&repository.id) {
                    moss.remove_repository(&repository.id)?;
                }
                moss.add_repository(
                    &repository.id,
                    &repository.uri,
                    repository.priority,
                    &format!("boulder profile {}", profile.name),
                    &[],
                )
                .await?;
            }
            Ok::<usize, moss::EngineError>(moss.available().await?.len())
        }
        .await;
        moss.database().close().await;
        result.map_err(refresh_error)
    })
}

fn check_name(name: &str) -> Result<(), ProfileError> {
    let usable = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character));
    if usable {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.to_owned()))
    }
}

fn read_file(path: &Path) -> Result<Vec<Profile>, ProfileError> {
    let text = fs::read_to_string(path).map_err(|source| ProfileError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |message: String| ProfileError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let document: KdlDocument = text
        .parse()
        .map_err(|error: kdl::KdlError| malformed(error.to_string()))?;
    let mut profiles = Vec::new();
    for node in document.nodes() {
        let name = node.name().value().to_owned();
        let mut repositories = Vec::new();
        let section = node
            .iter_children()
            .find(|child| child.name().value() == "repositories")
            .ok_or_else(|| malformed(format!("profile `{name}` has no `repositories` section")))?;
        for repository in section.iter_children() {
            let id = repository.name().value().to_owned();
            let uri = child_value(repository, "uri")
                .and_then(|value| value.as_string().map(str::to_owned))
                .ok_or_else(|| malformed(format!("repository `{id}` has no `uri \"...\"`")))?;
            let priority = match child_value(repository, "priority") {
                None => 0,
                Some(value) => value
                    .as_integer()
                    .and_then(|number| u64::try_from(number).ok())
                    .ok_or_else(|| {
                        malformed(format!(
                            "the priority of repository `{id}` is not a whole number"
                        ))
                    })?,
            };
            repositories.push(ProfileRepository { id, uri, priority });
        }
        repositories.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        profiles.push(Profile { name, repositories });
    }
    Ok(profiles)
}

fn child_value<'a>(node: &'a KdlNode, key: &str) -> Option<&'a kdl::KdlValue> {
    node.iter_children()
        .find(|child| child.name().value() == key)
        .and_then(|child| child.entries().first())
        .map(|entry| entry.value())
}

fn render(profile: &Profile) -> String {
    let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    let mut text = format!("\"{}\" {{\n    repositories {{\n", quote(&profile.name));
    for repository in &profile.repositories {
        text.push_str(&format!(
            "        \"{}\" {{\n            uri \"{}\"\n            priority {}\n        }}\n",
            quote(&repository.id),
            quote(&repository.uri),
            repository.priority
        ));
    }
    text.push_str("    }\n}\n");
    text
}

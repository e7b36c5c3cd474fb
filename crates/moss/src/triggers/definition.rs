//! Trigger definition files: parsing and validation.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::{Action, Environment, Scope, TriggerError, pattern::Pattern};

/// A loaded trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Triggers this one runs before.
    pub before: Vec<String>,
    /// Triggers this one runs after.
    pub after: Vec<String>,
    /// When not to run.
    pub inhibitors: Inhibitors,
    /// Handlers by name.
    pub handlers: BTreeMap<String, Handler>,
    /// Patterns and the handlers each one fires.
    pub paths: Vec<(Pattern, Vec<String>)>,
    /// The file it came from.
    pub file: PathBuf,
}

/// A handler before variables are substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// Run a program.
    Run {
        /// Absolute program path.
        run: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// Delete paths.
    Delete(Vec<String>),
}

impl Handler {
    /// Substitute `$(name)` by the captured values.
    pub fn compile(&self, captures: &BTreeMap<String, String>) -> Action {
        let substitute = |text: &str| {
            captures
                .iter()
                .fold(text.to_owned(), |text, (name, value)| {
                    text.replace(&format!("$({name})"), value)
                })
        };
        match self {
            Self::Run { run, args } => Action::Run {
                program: substitute(run),
                args: args.iter().map(|arg| substitute(arg)).collect(),
            },
            Self::Delete(paths) => Action::Delete {
                paths: paths.iter().map(|path| substitute(path)).collect(),
            },
        }
    }
}

/// Conditions under which a trigger does not run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inhibitors {
    /// Absolute paths: when one exists under the root, the trigger is skipped.
    pub paths: Vec<String>,
    /// Environments (`live`, `chroot`) in which the trigger is skipped.
    pub environment: Vec<String>,
}

impl Inhibitors {
    /// Whether the trigger must be skipped.
    pub fn inhibits(&self, root: &Path, environment: Environment) -> bool {
        self.environment
            .iter()
            .any(|name| name == environment.name())
            || self
                .paths
                .iter()
                .any(|path| fs::symlink_metadata(root.join(path.trim_start_matches('/'))).is_ok())
    }
}

#[derive(Deserialize)]
struct RawTrigger {
    name: String,
    description: String,
    #[serde(default)]
    before: OneOrMany,
    #[serde(default)]
    after: OneOrMany,
    #[serde(default)]
    inhibitors: RawInhibitors,
    handlers: BTreeMap<String, RawHandler>,
    paths: BTreeMap<String, RawPath>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::One(name) => vec![name],
            Self::Many(names) => names,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawInhibitors {
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    environment: Vec<String>,
}

#[derive(Deserialize)]
struct RawHandler {
    run: Option<String>,
    // Upstream requires `args` and silently drops a file without it (which killed the
    // fontconfig trigger); no arguments is a perfectly good default.
    #[serde(default)]
    args: Vec<String>,
    delete: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawPath {
    handlers: Vec<String>,
    // Parsed for compatibility; the path list carries no types to filter on.
    #[serde(default, rename = "type")]
    _kind: Option<String>,
}

/// Load every trigger of `scope` under `usr` (the `/usr` of a tree): `share/moss/triggers/
/// <tx|sys>.yaml` and `<tx|sys>.d/*.yaml`, in file name order. Any file that is not a valid
/// definition is an error naming it.
pub fn load(usr: &Path, scope: Scope) -> Result<Vec<Trigger>, TriggerError> {
    let base = usr.join("share/moss/triggers");
    let mut files = Vec::new();
    let single = base.join(format!("{}.yaml", scope.directory()));
    if single.is_file() {
        files.push(single);
    }
    let directory = base.join(format!("{}.d", scope.directory()));
    if let Ok(entries) = fs::read_dir(&directory) {
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml" || extension == "yml")
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut triggers: Vec<Trigger> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let trigger = parse_file(&file)?;
        if let Some(first) = seen.get(&trigger.name) {
            return Err(TriggerError::Duplicate {
                name: trigger.name,
                first: first.clone(),
                second: file,
            });
        }
        seen.insert(trigger.name.clone(), file);
        triggers.push(trigger);
    }
    Ok(triggers)
}

/// Parse one definition file.
pub fn parse_file(file: &Path) -> Result<Trigger, TriggerError> {
    let text = fs::read_to_string(file).map_err(|error| TriggerError::Parse {
        file: file.to_owned(),
        line: 0,
        message: format!("cannot be read ({error})"),
    })?;
    parse(&text, file)
}

/// Parse definition text; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Trigger, TriggerError> {
    let error = |line: u64, message: String| TriggerError::Parse {
        file: file.to_owned(),
        line,
        message,
    };
    let raw: RawTrigger = serde_saphyr::from_str(text).map_err(|parse_error| {
        let line = parse_error.location().map_or(0, |location| location.line());
        let message = parse_error.to_string();
        // The first line of the report is the message; the rest is a source snippet.
        let message = message.lines().next().unwrap_or("invalid YAML").to_owned();
        error(line, message)
    })?;
    let line_of = |needle: &str| line_of(text, needle);
    if raw.name.trim().is_empty() {
        return Err(error(line_of("name:"), "`name` is empty".to_owned()));
    }
    let mut handlers = BTreeMap::new();
    for (name, handler) in raw.handlers {
        let at = line_of(&format!("{name}:"));
        let handler = match (handler.run, handler.delete) {
            (Some(run), None) => {
                if !run.starts_with('/') {
                    return Err(error(
                        at,
                        format!("handler {name:?} runs {run:?}; give the program's absolute path"),
                    ));
                }
                Handler::Run {
                    run,
                    args: handler.args,
                }
            }
            (None, Some(paths)) => {
                if let Some(path) = paths
                    .iter()
                    .find(|path| !path.starts_with('/') || path.split('/').any(|part| part == ".."))
                {
                    return Err(error(
                        at,
                        format!(
                            "handler {name:?} deletes {path:?}; give absolute paths without `..`"
                        ),
                    ));
                }
                Handler::Delete(paths)
            }
            _ => {
                return Err(error(
                    at,
                    format!("handler {name:?} needs exactly one of `run` and `delete`"),
                ));
            }
        };
        handlers.insert(name, handler);
    }
    let mut paths = Vec::new();
    for (text_pattern, definition) in raw.paths {
        let at = line_of(&text_pattern);
        let pattern = Pattern::new(&text_pattern).map_err(|e| error(at, e.to_string()))?;
        if definition.handlers.is_empty() {
            return Err(error(
                at,
                format!("path {text_pattern:?} names no handlers"),
            ));
        }
        if let Some(unknown) = definition
            .handlers
            .iter()
            .find(|name| !handlers.contains_key(*name))
        {
            return Err(error(
                at,
                format!("path {text_pattern:?} names handler {unknown:?}, which is not defined"),
            ));
        }
        paths.push((pattern, definition.handlers));
    }
    if paths.is_empty() {
        return Err(error(line_of("paths:"), "`paths` is empty".to_owned()));
    }
    Ok(Trigger {
        name: raw.name,
        description: raw.description.trim().to_owned(),
        before: raw.before.into_vec(),
        after: raw.after.into_vec(),
        inhibitors: Inhibitors {
            paths: raw.inhibitors.paths,
            environment: raw.inhibitors.environment,
        },
        handlers,
        paths,
        file: file.to_owned(),
    })
}

/// The 1-based line where `needle` first appears (0 when it does not).
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|line| line.contains(needle))
        .map_or(0, |index| index as u64 + 1)
}

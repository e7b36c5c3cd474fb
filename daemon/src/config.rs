//! The daemon's configuration file (KDL), e.g. `/etc/moss/mossd.kdl`:
//!
//! ```kdl
//! // Exit after this many seconds with no transaction and no call (0: never).
//! idle-exit-seconds 60
//! // What the update timer does: none, check, download or apply.
//! update-policy "check"
//! // After each transaction that makes a state, prune older states beyond this many (0: keep all).
//! keep-states 5
//! ```

use std::{path::Path, str::FromStr, time::Duration};

use kdl::{KdlDocument, KdlValue};

/// Where the daemon looks when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/moss/mossd.kdl";

/// What background updates do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdatePolicy {
    /// Nothing.
    #[default]
    None,
    /// Refresh the repositories and count the updates.
    Check,
    /// Also download and unpack them into the store, ready to apply.
    Download,
    /// Also apply them (a new state; the running system switches at once, as `moss sync` does).
    Apply,
}

impl UpdatePolicy {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Check => "check",
            Self::Download => "download",
            Self::Apply => "apply",
        }
    }
}

impl FromStr for UpdatePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(Self::None),
            "check" => Ok(Self::Check),
            "download" => Ok(Self::Download),
            "apply" => Ok(Self::Apply),
            other => Err(format!(
                "update-policy `{other}` is not one of none, check, download, apply"
            )),
        }
    }
}

/// The daemon's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Exit when idle this long; `None` never.
    pub idle_exit: Option<Duration>,
    /// Background update policy.
    pub update_policy: UpdatePolicy,
    /// States older than the active one to keep after a transaction; `0` keeps them all.
    pub keep_states: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            idle_exit: Some(Duration::from_secs(60)),
            update_policy: UpdatePolicy::None,
            keep_states: 0,
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("Configuration {path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

impl Config {
    /// Read `path`; a missing default file gives the defaults, a missing explicit one is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(source) if source.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Self::default());
            }
            Err(source) => return Err(error(format!("cannot be read: {source}"))),
        };
        Self::parse(&text).map_err(error)
    }

    /// Parse the text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let document = KdlDocument::parse_v2(text).map_err(|parse| {
            let detail = parse
                .diagnostics
                .first()
                .map(|diagnostic| {
                    let line = text[..diagnostic.span.offset().min(text.len())]
                        .matches('\n')
                        .count()
                        + 1;
                    format!(
                        "line {line}: {}",
                        diagnostic.message.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            format!("is not valid KDL ({detail})")
        })?;
        let mut config = Self::default();
        for node in document.nodes() {
            let name = node.name().value();
            let value = node.entries().first().map(|entry| entry.value());
            match (name, value) {
                ("idle-exit-seconds", Some(KdlValue::Integer(seconds))) if *seconds >= 0 => {
                    config.idle_exit = (*seconds > 0)
                        .then(|| Duration::from_secs(u64::try_from(*seconds).unwrap_or(u64::MAX)));
                }
                ("update-policy", Some(KdlValue::String(policy))) => {
                    config.update_policy = policy.parse()?;
                }
                ("keep-states", Some(KdlValue::Integer(count))) if *count >= 0 => {
                    config.keep_states = u32::try_from(*count)
                        .map_err(|_| format!("keep-states {count} is more than {}", u32::MAX))?;
                }
                ("idle-exit-seconds" | "update-policy" | "keep-states", _) => {
                    return Err(format!(
                        "`{name}` needs a value: idle-exit-seconds 60, update-policy \"check\", \
                         keep-states 5"
                    ));
                }
                (other, _) => {
                    return Err(format!(
                        "unknown setting `{other}`; known: idle-exit-seconds, update-policy, \
                         keep-states"
                    ));
                }
            }
        }
        Ok(config)
    }
}

/// One setting the daemon writes back to its configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `update-policy "…"`.
    UpdatePolicy(UpdatePolicy),
    /// `keep-states N`.
    KeepStates(u32),
}

impl Setting {
    /// The setting's node name.
    fn name(self) -> &'static str {
        match self {
            Self::UpdatePolicy(_) => "update-policy",
            Self::KeepStates(_) => "keep-states",
        }
    }

    /// The setting's line.
    fn line(self) -> String {
        match self {
            Self::UpdatePolicy(policy) => format!("update-policy \"{}\"", policy.as_str()),
            Self::KeepStates(count) => format!("keep-states {count}"),
        }
    }
}

/// The text of a configuration file with `setting` set: the setting's line is replaced (or one
/// is appended); other settings and comments stay as they were.
pub fn with_setting(text: &str, setting: Setting) -> String {
    let name = setting.name();
    let mut replaced = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let is_setting = line
                .trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(char::is_whitespace));
            if is_setting && !replaced {
                replaced = true;
                setting.line()
            } else {
                line.to_owned()
            }
        })
        .collect();
    if !replaced {
        lines.push(setting.line());
    }
    lines.join("\n") + "\n"
}

/// Set one setting in the configuration file at `path` (created when missing), replacing it
/// atomically, and only with text that parses.
pub fn write_setting(path: &Path, setting: Setting) -> Result<(), ConfigError> {
    let error = |message: String| ConfigError {
        path: path.display().to_string(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(error(format!("cannot be read: {source}"))),
    };
    let updated = with_setting(&text, setting);
    Config::parse(&updated).map_err(error)?;
    // Written beside, synced, renamed over, and the directory synced (created when missing):
    // after a power loss the file holds the old settings or the new ones, never a torn file.
    moss::repository::write_atomically(path, |file| {
        std::io::Write::write_all(file, updated.as_bytes())
    })
    .map_err(|source| error(format!("cannot be written: {source}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_the_policy_keeps_the_rest_of_the_file() {
        let text = "// mossd\nidle-exit-seconds 30\nupdate-policy \"none\" // was off\n";
        let updated = with_setting(text, Setting::UpdatePolicy(UpdatePolicy::Download));
        assert_eq!(
            updated,
            "// mossd\nidle-exit-seconds 30\nupdate-policy \"download\"\n"
        );
        assert_eq!(
            Config::parse(&updated).unwrap().update_policy,
            UpdatePolicy::Download
        );
        assert_eq!(
            with_setting("", Setting::UpdatePolicy(UpdatePolicy::Check)),
            "update-policy \"check\"\n"
        );
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("etc/moss/mossd.kdl");
        write_setting(&path, Setting::UpdatePolicy(UpdatePolicy::Apply)).unwrap();
        write_setting(&path, Setting::KeepStates(3)).unwrap();
        let written = Config::load(&path, true).unwrap();
        assert_eq!(written.update_policy, UpdatePolicy::Apply);
        assert_eq!(written.keep_states, 3);
    }

    #[test]
    fn keep_states_replaces_only_its_own_line() {
        let text = "update-policy \"check\"\nkeep-states 2\n// keep-states-ish comment\n";
        let updated = with_setting(text, Setting::KeepStates(7));
        assert_eq!(
            updated,
            "update-policy \"check\"\nkeep-states 7\n// keep-states-ish comment\n"
        );
        assert_eq!(Config::parse(&updated).unwrap().keep_states, 7);
        assert_eq!(Config::parse("").unwrap().keep_states, 0);
        assert!(
            Config::parse("keep-states -1")
                .unwrap_err()
                .contains("keep-states")
        );
        assert!(
            Config::parse("keep-states \"two\"")
                .unwrap_err()
                .contains("keep-states")
        );
    }

    #[test]
    fn parses_settings_and_names_mistakes() {
        let config = Config::parse("idle-exit-seconds 5\nupdate-policy \"download\"\n").unwrap();
        assert_eq!(config.idle_exit, Some(Duration::from_secs(5)));
        assert_eq!(config.update_policy, UpdatePolicy::Download);
        assert_eq!(
            Config::parse("idle-exit-seconds 0").unwrap().idle_exit,
            None
        );
        assert!(
            Config::parse("update-policy \"sometimes\"")
                .unwrap_err()
                .contains("sometimes")
        );
        assert!(Config::parse("colour blue").unwrap_err().contains("colour"));
        assert!(
            Config::parse("idle-exit-seconds {")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn a_written_setting_replaces_the_file_whole() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("moss/mossd.kdl");
        write_setting(&path, Setting::KeepStates(3)).unwrap();
        write_setting(&path, Setting::UpdatePolicy(UpdatePolicy::Apply)).unwrap();
        let config = Config::load(&path, true).unwrap();
        assert_eq!(
            (config.keep_states, config.update_policy),
            (3, UpdatePolicy::Apply)
        );
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["mossd.kdl"], "no temporary file is left");
    }
}

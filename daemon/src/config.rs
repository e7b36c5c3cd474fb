//! The daemon's configuration file (KDL), e.g. `/etc/moss/mossd.kdl`:
//!
//! ```kdl
//! // Exit after this many seconds with no transaction and no call (0: never).
//! idle-exit-seconds 60
//! // What the update timer does: none, check, download or apply.
//! update-policy "check"
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            idle_exit: Some(Duration::from_secs(60)),
            update_policy: UpdatePolicy::None,
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
                ("idle-exit-seconds" | "update-policy", _) => {
                    return Err(format!(
                        "`{name}` needs a value: idle-exit-seconds 60, update-policy \"check\""
                    ));
                }
                (other, _) => {
                    return Err(format!(
                        "unknown setting `{other}`; known: idle-exit-seconds, update-policy"
                    ));
                }
            }
        }
        Ok(config)
    }
}

/// The text of a configuration file with `update-policy` set to `policy`: the setting's line is
/// replaced (or one is appended); other settings and comments stay as they were.
pub fn with_update_policy(text: &str, policy: UpdatePolicy) -> String {
    let setting = format!("update-policy \"{}\"", policy.as_str());
    let mut replaced = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let is_setting = line
                .trim_start()
                .strip_prefix("update-policy")
                .is_some_and(|rest| rest.starts_with(char::is_whitespace));
            if is_setting && !replaced {
                replaced = true;
                setting.clone()
            } else {
                line.to_owned()
            }
        })
        .collect();
    if !replaced {
        lines.push(setting);
    }
    lines.join("\n") + "\n"
}

/// Set `update-policy` in the configuration file at `path` (created when missing), replacing
/// it atomically, and only with text that parses.
pub fn write_update_policy(path: &Path, policy: UpdatePolicy) -> Result<(), ConfigError> {
    let error = |message: String| ConfigError {
        path: path.display().to_string(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(error(format!("cannot be read: {source}"))),
    };
    let updated = with_update_policy(&text, policy);
    Config::parse(&updated).map_err(error)?;
    if let Some(directory) = path.parent() {
        std::fs::create_dir_all(directory)
            .map_err(|source| error(format!("cannot create its directory: {source}")))?;
    }
    let temporary = path.with_extension("kdl.new");
    std::fs::write(&temporary, updated)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|source| error(format!("cannot be written: {source}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_the_policy_keeps_the_rest_of_the_file() {
        let text = "// mossd\nidle-exit-seconds 30\nupdate-policy \"none\" // was off\n";
        let updated = with_update_policy(text, UpdatePolicy::Download);
        assert_eq!(
            updated,
            "// mossd\nidle-exit-seconds 30\nupdate-policy \"download\"\n"
        );
        assert_eq!(
            Config::parse(&updated).unwrap().update_policy,
            UpdatePolicy::Download
        );
        assert_eq!(
            with_update_policy("", UpdatePolicy::Check),
            "update-policy \"check\"\n"
        );
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("etc/moss/mossd.kdl");
        write_update_policy(&path, UpdatePolicy::Apply).unwrap();
        assert_eq!(
            Config::load(&path, true).unwrap().update_policy,
            UpdatePolicy::Apply
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
}

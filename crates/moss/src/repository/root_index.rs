//! Root indexes (engine spec §11.2) and the migration of legacy repository URIs (§11.3).
//!
//! A root-index repository names a channel tree instead of one `stone.index`:
//! `<base-uri>/<channel>/moss-root-index.json` maps streams and tags to history snapshots, and
//! the snapshot's index lives at `<base-uri>/<channel>/history/<id>/<arch>/stone.index`. The
//! resolved index URL is kept in the repository's cache (`index-uri`), so that what a repository
//! offers is read without the network and package URIs resolve against the snapshot they came
//! from.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::Deserialize as _;
use url::Url;

/// The root index file under `<base-uri>/<channel>/`.
pub const ROOT_INDEX_FILE: &str = "moss-root-index.json";
/// The file in a repository's cache holding its resolved index URL.
pub const RESOLVED_INDEX_FILE: &str = "index-uri";
/// The channel when none is given.
pub const DEFAULT_CHANNEL: &str = "main";
/// The architecture when none is given.
pub const DEFAULT_ARCH: &str = "x86_64";

/// Hosts whose old direct index URIs are migrated to their root index (as upstream does).
pub const OFFICIAL_HOSTS: &[&str] = &[
    "dev.serpentos.com",
    "packages.aerynos.com",
    "cdn.aerynos.dev",
    "packages.aerynos.dev",
    "build.aerynos.dev",
    "infratest.aerynos.dev",
];

/// Which snapshot of a channel a repository follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// `stream/<id>`: moves as the stream is updated.
    Stream(String),
    /// `tag/<id>`: a named snapshot.
    Tag(String),
    /// `history/<id>`: one snapshot.
    History(String),
}

impl fmt::Display for Version {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream(id) => write!(formatter, "stream/{id}"),
            Self::Tag(id) => write!(formatter, "tag/{id}"),
            Self::History(id) => write!(formatter, "history/{id}"),
        }
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, id) = text
            .split_once('/')
            .ok_or_else(|| format!("version {text:?} must be stream/ID, tag/ID or history/ID"))?;
        if !is_identifier(id) {
            return Err(format!(
                "version {text:?} has an invalid id: use letters, digits, `-`, `_` and `.`"
            ));
        }
        match kind {
            "stream" => Ok(Self::Stream(id.to_owned())),
            "tag" => Ok(Self::Tag(id.to_owned())),
            "history" => Ok(Self::History(id.to_owned())),
            _ => Err(format!(
                "version {text:?} must start with stream/, tag/ or history/"
            )),
        }
    }
}

/// A root-index source: where the channel tree is and which snapshot to follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RootIndexSource {
    /// Base of the channel tree (ends with `/`).
    pub base_uri: Url,
    /// The channel, `main` by default.
    pub channel: String,
    /// The stream, tag or history snapshot.
    pub version: Version,
    /// The architecture, `x86_64` by default.
    pub arch: String,
}

impl RootIndexSource {
    /// A source with the given fields; a `/` is added to the base URI's path when missing.
    pub fn new(
        mut base_uri: Url,
        channel: Option<&str>,
        version: Version,
        arch: Option<&str>,
    ) -> Result<Self, String> {
        if !base_uri.path().ends_with('/') {
            base_uri.set_path(&format!("{}/", base_uri.path()));
        }
        let channel = channel.unwrap_or(DEFAULT_CHANNEL).to_owned();
        let arch = arch.unwrap_or(DEFAULT_ARCH).to_owned();
        for (value, what) in [(&channel, "channel"), (&arch, "arch")] {
            if !is_identifier(value) {
                return Err(format!(
                    "{what} {value:?} is not an identifier: use letters, digits, `-`, `_` and `.`"
                ));
            }
        }
        Ok(Self {
            base_uri,
            channel,
            version,
            arch,
        })
    }

    /// `<base-uri>/<channel>/moss-root-index.json`.
    pub fn root_index_url(&self) -> Url {
        self.channel_url()
            .join(ROOT_INDEX_FILE)
            .expect("a file name joins onto a directory URL")
    }

    /// The index URL of a history snapshot.
    pub fn history_index_url(&self, history: &str) -> Url {
        self.channel_url()
            .join(&format!("history/{history}/{}/stone.index", self.arch))
            .expect("identifiers join onto a directory URL")
    }

    fn channel_url(&self) -> Url {
        self.base_uri
            .join(&format!("{}/", self.channel))
            .expect("an identifier joins onto a directory URL")
    }

    /// Resolve the source against a downloaded root index: the URL of the snapshot's index.
    pub fn resolve(&self, index: &RootIndex) -> Result<Url, RootIndexProblem> {
        let history = match &self.version {
            Version::Stream(id) => index
                .streams
                .get(id)
                .map(|stream| stream.history.clone())
                .ok_or_else(|| RootIndexProblem::Unknown {
                    what: "stream",
                    id: id.clone(),
                    known: index.streams.keys().cloned().collect(),
                })?,
            Version::Tag(id) => index
                .tags
                .get(id)
                .map(|tag| tag.history.clone())
                .ok_or_else(|| RootIndexProblem::Unknown {
                    what: "tag",
                    id: id.clone(),
                    known: index.tags.keys().cloned().collect(),
                })?,
            Version::History(id) => id.clone(),
        };
        let entry = index
            .history
            .get(&history)
            .ok_or_else(|| RootIndexProblem::Unknown {
                what: "history snapshot",
                id: history.clone(),
                known: index.history.keys().cloned().collect(),
            })?;
        if !is_identifier(&history) {
            return Err(RootIndexProblem::Unknown {
                what: "history snapshot",
                id: history,
                known: Vec::new(),
            });
        }
        match entry.format.as_str() {
            "legacy" | "v0" => Ok(self.history_index_url(&history)),
            other => Err(RootIndexProblem::UnsupportedFormat {
                format: other.to_owned(),
                upgrade_via: index
                    .formats
                    .get("v0")
                    .and_then(|format| format.upgrade_via.clone()),
            }),
        }
    }
}

impl fmt::Display for RootIndexSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "(base-uri={}, channel={}, version={}, arch={})",
            self.base_uri, self.channel, self.version, self.arch
        )
    }
}

/// Why a root index does not give an index URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootIndexProblem {
    /// The stream, tag or history id is not in the root index.
    #[error("it has no {what} `{id}` (it has: {})", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    Unknown {
        /// `stream`, `tag` or `history snapshot`.
        what: &'static str,
        /// The id looked for.
        id: String,
        /// The ids it has.
        known: Vec<String>,
    },
    /// The snapshot is in a repository format this moss cannot read.
    #[error(
        "its snapshot has the repository format `{format}`, which this moss cannot read; {}",
        upgrade_via.as_ref().map_or_else(
            || "upgrade moss".to_owned(),
            |tag| format!("upgrade moss from the snapshot `tag/{tag}` first")
        )
    )]
    UnsupportedFormat {
        /// The format named.
        format: String,
        /// The tag that carries a moss able to read it (`formats.v0.upgrade_via`).
        upgrade_via: Option<String>,
    },
    /// The file is not a root index.
    #[error("it is not a root index: {reason}")]
    Malformed {
        /// The JSON error.
        reason: String,
    },
}

/// `moss-root-index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct RootIndex {
    /// Repository formats, with how to upgrade moss for each.
    #[serde(default)]
    pub formats: BTreeMap<String, Format>,
    /// Streams: moving pointers to history snapshots.
    #[serde(default)]
    pub streams: BTreeMap<String, Pointer>,
    /// Tags: named pointers to history snapshots.
    #[serde(default)]
    pub tags: BTreeMap<String, Pointer>,
    /// The history snapshots.
    #[serde(default)]
    pub history: BTreeMap<String, Snapshot>,
}

impl RootIndex {
    /// Parse a downloaded root index.
    pub fn parse(bytes: &[u8]) -> Result<Self, RootIndexProblem> {
        serde_json::from_slice(bytes).map_err(|error| RootIndexProblem::Malformed {
            reason: error.to_string(),
        })
    }
}

/// One repository format.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Format {
    /// A tag whose snapshot has a moss that reads the next format.
    #[serde(default)]
    pub upgrade_via: Option<String>,
}

/// A stream or tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Pointer {
    /// The history snapshot it points at.
    #[serde(deserialize_with = "string_or_number")]
    pub history: String,
    /// Its format.
    #[serde(default)]
    pub format: Option<String>,
}

/// A history snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Snapshot {
    /// Its repository format (`legacy`, `v0`, ...).
    pub format: String,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a history id, found {other}"
        ))),
    }
}

/// A root-index source from a base URI and `version=V[,channel=C][,arch=A]` (the form of
/// `moss repo add --root-index`).
pub fn parse_spec(base_uri: Url, spec: &str) -> Result<RootIndexSource, String> {
    let (mut channel, mut version, mut arch) = (None, None, None);
    for pair in spec
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not KEY=VALUE (keys: version, channel, arch)"))?;
        let slot = match key.trim() {
            "channel" => &mut channel,
            "version" => &mut version,
            "arch" => &mut arch,
            other => {
                return Err(format!(
                    "unknown root-index key `{other}`; the keys are version, channel and arch"
                ));
            }
        };
        if slot.replace(value.trim()).is_some() {
            return Err(format!("root-index key `{}` is given twice", key.trim()));
        }
    }
    let version = version
        .ok_or_else(|| "the root index needs version=stream/ID, tag/ID or history/ID".to_owned())?
        .parse()?;
    RootIndexSource::new(base_uri, channel, version, arch)
}

/// The root-index source an old direct URI of an official host moved to: the volatile and
/// unstable stream layouts, on channel `main` and arch `x86_64` (engine spec §11.3). `hosts` is
/// the list of hosts to recognise ([`OFFICIAL_HOSTS`] in production).
pub fn legacy_source(uri: &Url, hosts: &[&str]) -> Option<RootIndexSource> {
    let host = uri.host_str()?;
    if !hosts.contains(&host) || !matches!(uri.scheme(), "http" | "https") {
        return None;
    }
    let stream = match uri.path() {
        "/volatile/x86_64/stone.index" | "/stream/volatile/x86_64/stone.index" => "volatile",
        "/unstable/x86_64/stone.index" | "/stream/unstable/x86_64/stone.index" => "unstable",
        _ => return None,
    };
    let mut base = uri.clone();
    base.set_path("/");
    base.set_query(None);
    base.set_fragment(None);
    RootIndexSource::new(base, None, Version::Stream(stream.to_owned()), None).ok()
}

/// Channel, arch and ids: letters, digits, `-`, `_` and `.` (not `.` or `..` alone), so that
/// they are single URL path segments.
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "formats": { "v0": { "upgrade_via": "v0-final" }, "v1": {} },
        "streams": { "unstable": { "format": "v0", "history": "2", "tag": "v0-final" },
                     "next": { "history": 3 } },
        "tags": { "v0-final": { "format": "v0", "history": "2" } },
        "history": { "1": { "format": "legacy" }, "2": { "format": "v0" }, "3": { "format": "v1" } }
    }"#;

    fn source(version: &str) -> RootIndexSource {
        RootIndexSource::new(
            Url::parse("https://cdn.example/repo").unwrap(),
            None,
            version.parse().unwrap(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn urls() {
        let source = source("stream/unstable");
        assert_eq!(
            source.root_index_url().as_str(),
            "https://cdn.example/repo/main/moss-root-index.json"
        );
        assert_eq!(
            source.history_index_url("2").as_str(),
            "https://cdn.example/repo/main/history/2/x86_64/stone.index"
        );
    }

    #[test]
    fn resolution() {
        let index = RootIndex::parse(SAMPLE.as_bytes()).unwrap();
        for version in ["stream/unstable", "tag/v0-final", "history/2"] {
            assert!(
                source(version)
                    .resolve(&index)
                    .unwrap()
                    .as_str()
                    .ends_with("/main/history/2/x86_64/stone.index"),
                "{version}"
            );
        }
        assert!(source("history/1").resolve(&index).is_ok());
        let unknown = source("stream/volatile").resolve(&index).unwrap_err();
        assert!(
            unknown.to_string().contains("no stream `volatile`"),
            "{unknown}"
        );
        assert!(unknown.to_string().contains("next, unstable"), "{unknown}");
        let newer = source("stream/next").resolve(&index).unwrap_err();
        assert_eq!(
            newer,
            RootIndexProblem::UnsupportedFormat {
                format: "v1".to_owned(),
                upgrade_via: Some("v0-final".to_owned())
            }
        );
        assert!(RootIndex::parse(b"[1]").is_err());
    }

    #[test]
    fn specs() {
        let base = Url::parse("file:///srv/tree").unwrap();
        let source = parse_spec(base.clone(), "version=tag/v1, arch=aarch64").unwrap();
        assert_eq!(source.base_uri.as_str(), "file:///srv/tree/");
        assert_eq!(
            (source.channel.as_str(), source.arch.as_str()),
            ("main", "aarch64")
        );
        assert_eq!(source.version, Version::Tag("v1".to_owned()));
        for (bad, needle) in [
            ("channel=main", "needs version"),
            ("version=stream/a,version=stream/b", "twice"),
            ("colour=red,version=stream/a", "unknown root-index key"),
            ("version", "KEY=VALUE"),
        ] {
            let error = parse_spec(base.clone(), bad).unwrap_err();
            assert!(error.contains(needle), "{bad}: {error}");
        }
    }

    #[test]
    fn versions() {
        for good in ["stream/volatile", "tag/v0-final", "history/42"] {
            assert_eq!(good.parse::<Version>().unwrap().to_string(), good);
        }
        for bad in ["volatile", "branch/x", "stream/", "stream/../x", "tag/a/b"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn legacy_uris() {
        let migrated = legacy_source(
            &Url::parse("https://cdn.aerynos.dev/volatile/x86_64/stone.index").unwrap(),
            OFFICIAL_HOSTS,
        )
        .unwrap();
        assert_eq!(migrated.base_uri.as_str(), "https://cdn.aerynos.dev/");
        assert_eq!(migrated.version, Version::Stream("volatile".to_owned()));
        assert_eq!(migrated.channel, "main");
        let unstable = legacy_source(
            &Url::parse("https://dev.serpentos.com/stream/unstable/x86_64/stone.index").unwrap(),
            OFFICIAL_HOSTS,
        )
        .unwrap();
        assert_eq!(unstable.version, Version::Stream("unstable".to_owned()));
        for other in [
            "https://mirror.example/volatile/x86_64/stone.index",
            "https://cdn.aerynos.dev/other/stone.index",
            "file:///volatile/x86_64/stone.index",
        ] {
            assert!(
                legacy_source(&Url::parse(other).unwrap(), OFFICIAL_HOSTS).is_none(),
                "{other}"
            );
        }
    }
}

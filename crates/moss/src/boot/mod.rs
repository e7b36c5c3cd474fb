//! Boot management: Boot Loader Specification Type #1 entries for systemd-boot, one per kernel
//! of the active state and of a configurable number of other states, on the XBOOTLDR partition
//! when there is one and on the ESP otherwise, each booting its state through `moss.fstx=ID`.
//!
//! Where upstream (blsforme) does worse, we differ: kernels are stored by version *and* content,
//! so two states with the same kernel version never overwrite each other; titles name the state;
//! `loader.conf` goes to the ESP (where systemd-boot reads it) and only its `default` line is
//! ours; the default is the active state's entry by name, not a glob; garbage collection only
//! touches names moss writes; discovery failures are errors, not silence; every host path
//! (sysfs, devfs, mountinfo) is configurable, so all of this is testable without firmware.

mod discover;
mod engine;
mod entries;

use std::{
    fs,
    path::{Path, PathBuf},
};

pub use discover::{
    Discovered, GptPartition, Location, Source, discover, loader_variable, read_gpt, root_tokens,
};
pub use engine::{BootStatus, EntryStatus, SyncReport};

/// The EFI System Partition type GUID.
pub const ESP_TYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
/// The Extended Boot Loader partition type GUID.
pub const XBOOTLDR_TYPE: &str = "bc13c2ff-59e6-4262-a352-b275fd6f7172";
/// The EFI variable systemd-boot sets to the ESP it was started from.
pub const LOADER_DEVICE_PART_UUID: &str =
    "LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
/// Where an installation's boot configuration lives, relative to its root.
pub const CONFIG_PATH: &str = "etc/moss/boot.yaml";

/// Why boot entries could not be managed.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// No ESP was found.
    #[error(
        "no EFI System Partition found ({reason}); mount it, or name its directory with `--esp DIR` or `esp:` in /etc/moss/boot.yaml"
    )]
    NoEsp {
        /// What was tried.
        reason: String,
    },
    /// A boot partition exists but is not mounted (moss never mounts it itself here).
    #[error(
        "the {what} partition {device} is not mounted; mount it or name its directory with `--{flag} DIR`"
    )]
    NotMounted {
        /// `EFI System` or `XBOOTLDR`.
        what: &'static str,
        /// Its device.
        device: String,
        /// The option naming it.
        flag: &'static str,
    },
    /// The root device could not be told for `root=`.
    #[error(
        "cannot tell which partition holds the root ({reason}); set `root: \"root=...\"` in /etc/moss/boot.yaml"
    )]
    RootDevice {
        /// Why.
        reason: String,
    },
    /// The configuration file is wrong.
    #[error("boot configuration {}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BootError {
    let path = path.to_owned();
    move |source| BootError::Io {
        action,
        path,
        source,
    }
}

/// Boot configuration: `/etc/moss/boot.yaml` of the installation, overridden by the command
/// line. Every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootConfig {
    /// The ESP's directory (skips discovery).
    pub esp: Option<PathBuf>,
    /// The XBOOTLDR partition's directory.
    pub xbootldr: Option<PathBuf>,
    /// How many states besides the active one get entries.
    pub keep: usize,
    /// The root tokens of the kernel command line (`root=PARTUUID=...`), instead of discovery.
    pub root: Option<String>,
    /// Where sysfs is (`/sys`).
    pub sysfs: PathBuf,
    /// Where devfs is (`/dev`).
    pub devfs: PathBuf,
    /// The mount table (`/proc/self/mountinfo`).
    pub mountinfo: PathBuf,
}

impl Default for BootConfig {
    fn default() -> Self {
        Self {
            esp: None,
            xbootldr: None,
            keep: 4,
            root: None,
            sysfs: PathBuf::from("/sys"),
            devfs: PathBuf::from("/dev"),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
        }
    }
}

impl BootConfig {
    /// The configuration of the installation at `root` (defaults when it has none).
    pub fn load(root: &Path) -> Result<Self, BootError> {
        let path = root.join(CONFIG_PATH);
        match fs::read_to_string(&path) {
            Ok(text) => serde_saphyr::from_str(&text).map_err(|error| BootError::Config {
                path,
                message: error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or("invalid")
                    .to_owned(),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(io("reading", &path)(error)),
        }
    }
}

/// The state `moss.fstx=ID` on a kernel command line asks for (the last one wins, as the
/// kernel's own parameters do).
pub fn requested_state(cmdline: &str) -> Option<u64> {
    cmdline
        .split_whitespace()
        .filter_map(|token| token.strip_prefix("moss.fstx="))
        .filter_map(|value| value.parse().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    #[test]
    fn requested_state_reads_the_parameter() {
        assert_eq!(
            super::requested_state("root=x rw moss.fstx=12 quiet\n"),
            Some(12)
        );
        assert_eq!(super::requested_state("root=x rw quiet"), None);
        assert_eq!(super::requested_state("moss.fstx=1 moss.fstx=3"), Some(3));
        assert_eq!(super::requested_state("moss.fstx=abc"), None);
    }
}

//! The transaction journal: written before `/usr` is swapped, removed once the switch is complete.
//!
//! If the process dies in between, the next open reads `/usr/.stateID` to learn whether the swap
//! happened, then finishes (records the state, archives the old tree) or undoes (drops the
//! half-built staging tree). Either way the root is on one complete state and the database agrees.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::db::State;

/// Version of the journal format.
const JOURNAL_VERSION: u32 = 1;

/// What is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Format version.
    pub version: u32,
    /// The state `/usr` held before the switch.
    pub from: Option<u64>,
    /// The state being switched to.
    pub to: u64,
    /// The state to record once the swap happened (`None` when activating an existing state).
    pub record: Option<State>,
}

impl Journal {
    /// A journal for a switch from `from` to `to`.
    pub fn new(from: Option<u64>, to: u64, record: Option<State>) -> Self {
        Self {
            version: JOURNAL_VERSION,
            from,
            to,
            record,
        }
    }

    /// Write durably: temporary file, fsync, rename, fsync the directory.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let temporary = path.with_extension("json.part");
        let mut file = File::create(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        sync_parent(path)
    }

    /// Read the journal, if one exists.
    pub fn read(path: &Path) -> io::Result<Option<Self>> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {error}", path.display()),
                )
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Remove the journal durably.
    pub fn remove(path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Ok(()) => sync_parent(path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// fsync the directory holding `path`, so a rename or unlink in it is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

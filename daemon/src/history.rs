//! What the daemon did, kept across runs: an append-only JSON-lines log of finished
//! transactions, and a marker of the transaction running now, so that a daemon killed mid-way
//! can tell the next client what was interrupted.
//!
//! Layout (versioned by directory): `ROOT/.moss/daemon/v1/{history.jsonl, running.json}`.

use std::{
    fs,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use moss_proto::wire::HistoryEntry;
use serde::{Deserialize, Serialize};

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_secs())
}

/// The transaction being carried out, as written before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// Its transaction number.
    pub transaction: u64,
    /// What it does.
    pub title: String,
    /// Who asked.
    pub uid: u32,
    /// When it started.
    pub started: u64,
    /// The state active when it started.
    pub from_state: Option<u64>,
}

/// How much of the log start-up reads for the highest number. Numbers are handed out in order
/// and recorded when transactions end, so only transactions alive at the same time are recorded
/// out of order, and they are among the last lines: 64 KiB holds some 250 entries.
const TAIL_BYTES: u64 = 64 * 1024;

/// The entries of log text; unreadable lines (a torn last write) are skipped.
fn parse_lines(text: &str) -> impl Iterator<Item = HistoryEntry> + '_ {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
}

/// The history files of one installation.
#[derive(Debug, Clone)]
pub struct History {
    directory: PathBuf,
}

impl History {
    /// The history of the installation at `root`.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        let directory = root.join(".moss/daemon/v1");
        fs::create_dir_all(&directory)?;
        Ok(Self { directory })
    }

    fn log(&self) -> PathBuf {
        self.directory.join("history.jsonl")
    }

    fn marker(&self) -> PathBuf {
        self.directory.join("running.json")
    }

    /// Append a finished transaction.
    pub fn append(&self, entry: &HistoryEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())?;
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Every recorded transaction, oldest first; unreadable lines (a torn last write) are skipped.
    pub fn entries(&self) -> Vec<HistoryEntry> {
        parse_lines(&fs::read_to_string(self.log()).unwrap_or_default()).collect()
    }

    /// Note the transaction that starts now.
    pub fn mark_running(&self, running: &Running) -> std::io::Result<()> {
        let path = self.marker();
        let temporary = path.with_extension("json.tmp");
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&serde_json::to_vec(running).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&temporary, &path)
    }

    /// The transaction finished (whatever its result).
    pub fn clear_running(&self) -> std::io::Result<()> {
        match fs::remove_file(self.marker()) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// The highest transaction number on record: those that ran or were cancelled, and the one
    /// a previous daemon was running when it died. The daemon numbers on from it, so that the
    /// history's numbers stay unique and a client that followed `Transaction/3` before an idle
    /// exit does not take the next run's first one for it. (Only a transaction discarded
    /// because its client never started it leaves no record: its number can come again.)
    pub fn highest_number(&self) -> u64 {
        let interrupted = fs::read(self.marker())
            .ok()
            .and_then(|text| serde_json::from_slice::<Running>(&text).ok())
            .map_or(0, |running| running.transaction);
        parse_lines(&self.tail(TAIL_BYTES))
            .map(|entry| entry.transaction)
            .fold(interrupted, u64::max)
    }

    /// The last `bytes` of the log, from its first whole line: start-up reads this much, not a
    /// history that grows with every transaction.
    fn tail(&self, bytes: u64) -> String {
        let read = || -> std::io::Result<String> {
            let mut file = fs::File::open(self.log())?;
            let start = file.metadata()?.len().saturating_sub(bytes);
            file.seek(SeekFrom::Start(start))?;
            let mut text = Vec::new();
            file.read_to_end(&mut text)?;
            let text = String::from_utf8_lossy(&text).into_owned();
            Ok(match (start, text.split_once('\n')) {
                (0, _) | (_, None) => text,
                (_, Some((_partial, whole))) => whole.to_owned(),
            })
        };
        read().unwrap_or_default()
    }

    /// The transaction a previous daemon was running when it died, removing the marker.
    pub fn take_interrupted(&self) -> Option<Running> {
        let text = fs::read(self.marker()).ok()?;
        let _ = fs::remove_file(self.marker());
        serde_json::from_slice(&text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_and_a_marker_is_taken_once() {
        let directory = tempfile::tempdir().unwrap();
        let history = History::new(directory.path()).unwrap();
        let entry = HistoryEntry {
            transaction: 1,
            title: "Install".into(),
            uid: 0,
            started: 1,
            finished: 2,
            status: "succeeded".into(),
            message: "State 1 is active".into(),
            state: 1,
        };
        history.append(&entry).unwrap();
        assert_eq!(history.entries(), vec![entry]);
        let running = Running {
            transaction: 2,
            title: "Remove".into(),
            uid: 0,
            started: 3,
            from_state: Some(1),
        };
        history.mark_running(&running).unwrap();
        assert_eq!(history.highest_number(), 2, "the interrupted one counts");
        assert_eq!(
            History::new(directory.path()).unwrap().take_interrupted(),
            Some(running)
        );
        assert_eq!(history.take_interrupted(), None);
        assert_eq!(history.highest_number(), 1);
    }

    #[test]
    fn the_highest_number_is_read_from_the_end_of_a_long_history() {
        let directory = tempfile::tempdir().unwrap();
        let history = History::new(directory.path()).unwrap();
        // Two transactions alive at once end out of order: 1002 before 1001.
        for number in (1..=1000).chain([1002, 1001]) {
            let entry = HistoryEntry {
                transaction: number,
                title: "Refresh".into(),
                uid: 0,
                started: number,
                finished: number,
                status: "succeeded".into(),
                message: "Repositories refreshed".into(),
                state: 1,
            };
            history.append(&entry).unwrap();
        }
        assert!(fs::metadata(history.log()).unwrap().len() > TAIL_BYTES);
        assert_eq!(history.highest_number(), 1002);
        assert_eq!(history.entries().len(), 1002);
    }

    #[test]
    fn an_empty_history_numbers_from_one() {
        let directory = tempfile::tempdir().unwrap();
        assert_eq!(History::new(directory.path()).unwrap().highest_number(), 0);
    }
}

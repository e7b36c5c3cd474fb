//! The daemon's shared state: the opened installation, the transactions of this run and the
//! queue in front of the single worker.
//!
//! Only the worker changes the installation; method handlers read it (queries) or put
//! transactions in the queue. Interactive transactions always go before background ones.

use std::{
    collections::{BTreeMap, VecDeque},
    path::PathBuf,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};

use moss::{Moss, requests::Change};
use moss_proto::{Error, status};
use serde::Serialize;
use tokio::sync::Notify;
use zbus::Connection;

use crate::{
    authority::Caller,
    config::{self, Config, UpdatePolicy},
    history::History,
    incoming::{Incoming, Limits},
    progress::{ForwardingReporter, Meter},
};

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Work {
    /// A change to the installation.
    Change(Change),
    /// A change allowed to lose what recovery needs (the `force` option).
    Forced(Change),
    /// The background update policy.
    AutomaticUpdate,
}

impl Work {
    /// What identical requests share, so a second one joins the first.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Its title (the transaction's `Role`).
    pub fn title(&self) -> &'static str {
        match self {
            Self::Change(change) | Self::Forced(change) => change.title(),
            Self::AutomaticUpdate => "Automatic update",
        }
    }
}

/// The mutable part of a transaction.
#[derive(Debug)]
pub struct Progressing {
    /// One of [`moss_proto::status`].
    pub status: &'static str,
    /// Percentage and event numbering.
    pub meter: Meter,
    /// The latest events, for replay: (sequence, progress JSON), at most
    /// [`crate::limits::MAX_EVENTS`].
    pub events: VecDeque<(u64, String)>,
    /// `(status, message, outcome JSON)` once finished.
    pub result: Option<(String, String, String)>,
    /// When it started running.
    pub started: u64,
}

/// One transaction of this daemon run.
#[derive(Debug)]
pub struct Entry {
    /// Its number.
    pub number: u64,
    /// Its object path.
    pub path: String,
    /// What it does.
    pub work: Work,
    /// Identical requests join it while it is not finished (`None`: never, e.g. local files).
    pub key: Option<String>,
    /// Who created it.
    pub caller: Caller,
    /// The polkit action it needed (a joining caller of another uid is checked against it).
    pub action: &'static str,
    /// Queued behind interactive work.
    pub background: bool,
    /// Local stones received from the caller, removed when it ends.
    pub local_files: Vec<PathBuf>,
    /// The mutable part.
    pub progress: Mutex<Progressing>,
    /// Woken when it finishes.
    pub finished: Notify,
}

impl Progressing {
    /// Keep an event for replay, dropping the oldest beyond the bound.
    pub fn keep_event(&mut self, sequence: u64, json: String) {
        if self.events.len() >= crate::limits::MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back((sequence, json));
    }
}

impl Entry {
    /// Lock the mutable part.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Progressing> {
        self.progress
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Its status.
    pub fn status(&self) -> &'static str {
        self.lock().status
    }

    /// Wait until it has a final status; returns `(status, message, outcome JSON)`.
    pub async fn wait_finished(&self) -> (String, String, String) {
        loop {
            // Registered before the check, so a `notify_waiters` between the two is not lost.
            let notified = self.finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if status::is_final(self.status()) {
                return self.lock().result.clone().unwrap_or_default();
            }
            notified.await;
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    interactive: VecDeque<Arc<Entry>>,
    background: VecDeque<Arc<Entry>>,
}

/// The settings a client can change while mossd runs.
#[derive(Debug, Clone, Copy)]
struct Settings {
    update_policy: UpdatePolicy,
    keep_states: u32,
}

/// Everything the handlers and the worker share.
#[derive(Debug)]
pub struct Daemon {
    /// The installation (the worker changes it; queries read it concurrently).
    pub moss: Arc<Moss>,
    /// Where engine events go.
    pub reporter: Arc<ForwardingReporter>,
    /// The installation root.
    pub root: PathBuf,
    /// Exit after this long without calls or transactions; `None`: never. (The other settings
    /// of the configuration live in `settings`, where the setters change them.)
    pub idle_exit: Option<std::time::Duration>,
    /// History across runs.
    pub history: History,
    /// What start-up recovery found, until a client asked.
    pub recovery: Mutex<Option<String>>,
    /// Updates found by the last background check.
    pub pending_updates: AtomicU32,
    /// The settings in force: the configuration's until `SetUpdatePolicy` or `SetKeepStates`.
    settings: Mutex<Settings>,
    /// Held while a setting is written to the configuration file.
    setting_writes: Mutex<()>,
    /// The configuration file `SetUpdatePolicy` and `SetKeepStates` write.
    config_path: OnceLock<PathBuf>,
    /// Local stones callers hand in.
    pub incoming: Incoming,
    connection: OnceLock<Connection>,
    transactions: Mutex<BTreeMap<u64, Arc<Entry>>>,
    next: AtomicU64,
    queue: Mutex<Queue>,
    wake: Notify,
    last_activity: Mutex<Instant>,
    calls: AtomicUsize,
    shutting_down: AtomicBool,
}

/// A call being served: while one is, the daemon does not idle out under it (a `Verify` of a
/// large store takes longer than `idle-exit-seconds`, and the caller would see the daemon leave
/// the bus without replying, as the VM test did). Its end counts as activity.
#[derive(Debug)]
pub struct Call {
    daemon: Arc<Daemon>,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.daemon.calls.fetch_sub(1, Ordering::SeqCst);
        self.daemon.touch();
    }
}

impl Daemon {
    /// Shared state for the installation `moss` at `root`.
    pub fn new(
        moss: Arc<Moss>,
        reporter: Arc<ForwardingReporter>,
        root: PathBuf,
        config: Config,
        history: History,
    ) -> Self {
        let next = history.highest_number() + 1;
        Self {
            incoming: Incoming::new(&root, Limits::default()),
            moss,
            reporter,
            root,
            settings: Mutex::new(Settings {
                update_policy: config.update_policy,
                keep_states: config.keep_states,
            }),
            setting_writes: Mutex::new(()),
            idle_exit: config.idle_exit,
            history,
            recovery: Mutex::new(None),
            pending_updates: AtomicU32::new(0),
            config_path: OnceLock::new(),
            connection: OnceLock::new(),
            transactions: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(next),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            last_activity: Mutex::new(Instant::now()),
            calls: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The background update policy in force.
    pub fn update_policy(&self) -> UpdatePolicy {
        self.settings().update_policy
    }

    /// How many states older than the active one a transaction leaves (0: all).
    pub fn keep_states(&self) -> u32 {
        self.settings().keep_states
    }

    /// Remember the configuration file (once, at start-up), for the settings' setters.
    pub fn set_config_path(&self, path: PathBuf) {
        let _ = self.config_path.set(path);
    }

    /// Change a setting: written to the configuration file first, so that the daemon never
    /// runs a setting its file does not say.
    pub fn change_setting(&self, setting: config::Setting) -> Result<(), config::ConfigError> {
        // One change at a time, so that two made at once do not each write the file without
        // the other's; readers of the settings are not held up by the synced write.
        let _writing = self
            .setting_writes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(path) = self.config_path.get() {
            config::write_setting(path, setting)?;
        }
        let mut settings = self.settings();
        match setting {
            config::Setting::UpdatePolicy(policy) => settings.update_policy = policy,
            config::Setting::KeepStates(count) => settings.keep_states = count,
        }
        Ok(())
    }

    /// Remember the bus connection (once, after it is built).
    pub fn set_connection(&self, connection: Connection) {
        let _ = self.connection.set(connection);
    }

    /// The bus connection.
    pub fn connection(&self) -> &Connection {
        self.connection
            .get()
            .expect("the connection is set before any call is served")
    }

    /// Note activity (for idle exit). Handlers hold a [`Daemon::call`] guard instead, so that
    /// no call in flight is cut off by an idle exit.
    fn touch(&self) {
        *self
            .last_activity
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Instant::now();
    }

    /// Note a call that lasts until the returned guard is dropped.
    pub fn call(self: &Arc<Self>) -> Call {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Call {
            daemon: Arc::clone(self),
        }
    }

    /// How long since the last call.
    pub fn idle_for(&self) -> std::time::Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .elapsed()
    }

    /// Whether any transaction is waiting, queued or running.
    pub fn busy(&self) -> bool {
        self.transactions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .values()
            .any(|entry| !status::is_final(entry.status()))
    }

    /// Whether a call is being served (see [`Call`]).
    pub fn serving(&self) -> bool {
        self.calls.load(Ordering::SeqCst) > 0
    }

    /// Stop taking transactions.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Whether the daemon is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The unfinished transaction that an identical request joins.
    pub fn joinable(&self, key: &str) -> Option<Arc<Entry>> {
        self.transactions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .values()
            .find(|entry| entry.key.as_deref() == Some(key) && !status::is_final(entry.status()))
            .cloned()
    }

    /// Create a transaction (not yet started).
    pub fn create(
        &self,
        work: Work,
        caller: Caller,
        action: &'static str,
        background: bool,
        local_files: Vec<PathBuf>,
    ) -> Result<Arc<Entry>, Error> {
        if self.is_shutting_down() {
            return Err(Error::InvalidState(
                "mossd is shutting down; retry in a moment".into(),
            ));
        }
        if caller.uid != 0 {
            let held = self
                .transactions
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .values()
                .filter(|entry| entry.caller.uid == caller.uid && !status::is_final(entry.status()))
                .count();
            if held >= crate::limits::MAX_TRANSACTIONS_PER_CALLER {
                return Err(Error::LimitExceeded(format!(
                    "uid {} already has {held} unfinished transactions; wait for them to finish",
                    caller.uid
                )));
            }
        }
        let number = self.next.fetch_add(1, Ordering::SeqCst);
        let key = local_files.is_empty().then(|| work.key());
        let entry = Arc::new(Entry {
            number,
            path: moss_proto::transaction_path(number),
            work,
            key,
            caller,
            action,
            background,
            local_files,
            progress: Mutex::new(Progressing {
                status: status::WAITING,
                meter: Meter::default(),
                events: VecDeque::new(),
                result: None,
                started: 0,
            }),
            finished: Notify::new(),
        });
        self.transactions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(number, entry.clone());
        Ok(entry)
    }

    /// Forget a transaction.
    pub fn forget(&self, number: u64) -> Option<Arc<Entry>> {
        self.transactions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(&number)
    }

    /// Object paths of unfinished transactions.
    pub fn unfinished(&self) -> Vec<String> {
        self.transactions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .values()
            .filter(|entry| !status::is_final(entry.status()))
            .map(|entry| entry.path.clone())
            .collect()
    }

    /// Start a transaction that nobody will call `Start` on: queue it now.
    pub fn start(&self, entry: &Arc<Entry>) {
        entry.lock().status = status::QUEUED;
        self.enqueue(entry.clone());
    }

    /// Put a started transaction in the queue.
    pub fn enqueue(&self, entry: Arc<Entry>) {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if entry.background {
            queue.background.push_back(entry);
        } else {
            queue.interactive.push_back(entry);
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// Take a queued transaction out of the queue (it was cancelled).
    pub fn dequeue(&self, number: u64) -> bool {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let before = queue.interactive.len() + queue.background.len();
        queue.interactive.retain(|entry| entry.number != number);
        queue.background.retain(|entry| entry.number != number);
        before != queue.interactive.len() + queue.background.len()
    }

    /// Drain the queue (shutdown): what was queued and never ran.
    pub fn drain(&self) -> Vec<Arc<Entry>> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut drained: Vec<_> = queue.interactive.drain(..).collect();
        drained.extend(queue.background.drain(..));
        drained
    }

    /// The next transaction to run, interactive first; `None` when shutting down.
    pub async fn next_job(&self) -> Option<Arc<Entry>> {
        loop {
            let notified = self.wake.notified();
            if self.is_shutting_down() {
                return None;
            }
            {
                let mut queue = self
                    .queue
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                if let Some(entry) = queue
                    .interactive
                    .pop_front()
                    .or_else(|| queue.background.pop_front())
                {
                    return Some(entry);
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn daemon() -> (tempfile::TempDir, Daemon) {
        let root = tempfile::tempdir().unwrap();
        let reporter = Arc::new(ForwardingReporter::default());
        let moss = Moss::open(root.path(), reporter.clone()).await.unwrap();
        let history = History::new(root.path()).unwrap();
        let daemon = Daemon::new(
            Arc::new(moss),
            reporter,
            root.path().to_owned(),
            Config::default(),
            history,
        );
        (root, daemon)
    }

    fn caller() -> Caller {
        Caller {
            name: ":1.1".into(),
            uid: 0,
        }
    }

    #[tokio::test]
    async fn interactive_work_goes_before_background_work() {
        let (_root, daemon) = daemon().await;
        let background = daemon
            .create(Work::AutomaticUpdate, caller(), "a", true, Vec::new())
            .unwrap();
        let interactive = daemon
            .create(
                Work::Change(Change::CachePrune),
                caller(),
                "a",
                false,
                Vec::new(),
            )
            .unwrap();
        daemon.enqueue(background.clone());
        daemon.enqueue(interactive.clone());
        assert_eq!(daemon.next_job().await.unwrap().number, interactive.number);
        assert_eq!(daemon.next_job().await.unwrap().number, background.number);
        // Identical unfinished requests are found for joining; shutdown stops the queue.
        let key = serde_json::to_string(&Work::AutomaticUpdate).unwrap();
        assert_eq!(daemon.joinable(&key).unwrap().number, background.number);
        daemon.begin_shutdown();
        assert!(daemon.next_job().await.is_none());
        assert!(
            daemon
                .create(Work::AutomaticUpdate, caller(), "a", true, Vec::new())
                .is_err()
        );
    }
}

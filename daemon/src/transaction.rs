//! Transaction objects (`com.serpentos.Moss1.Transaction`): a client subscribes to a new
//! transaction's signals, then calls `Start`. Events are numbered and kept, so a client that
//! attaches late or reconnects replays them with `Events(since)`.

use std::{sync::Arc, time::Duration};

use moss_proto::{Error, actions, status};
use zbus::{Connection, interface, message::Header, object_server::SignalEmitter};

use crate::{
    authority,
    daemon::{Daemon, Entry},
};

/// How long a finished transaction stays on the bus for late clients.
const RETAIN_FINISHED: Duration = Duration::from_secs(120);
/// How long a created transaction waits for `Start` before it is dropped.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// The D-Bus face of one transaction.
#[derive(Debug)]
pub struct TransactionObject {
    daemon: Arc<Daemon>,
    entry: Arc<Entry>,
}

impl TransactionObject {
    /// Export `entry` on the bus, and drop it if its creator leaves before starting it.
    pub async fn export(daemon: Arc<Daemon>, entry: Arc<Entry>) -> zbus::Result<()> {
        let connection = daemon.connection().clone();
        connection
            .object_server()
            .at(
                entry.path.as_str(),
                Self {
                    daemon: daemon.clone(),
                    entry: entry.clone(),
                },
            )
            .await?;
        tokio::spawn(discard_if_abandoned(daemon, entry, connection));
        Ok(())
    }
}

/// A creator that disconnects (or never calls `Start`) leaves nothing behind.
async fn discard_if_abandoned(daemon: Arc<Daemon>, entry: Arc<Entry>, connection: Connection) {
    use futures_util::StreamExt;
    let Ok(bus) = zbus::fdo::DBusProxy::new(&connection).await else {
        return;
    };
    let Ok(mut owner_changes) = bus
        .receive_name_owner_changed_with_args(&[(0, entry.caller.name.as_str())])
        .await
    else {
        return;
    };
    let gone = async {
        // The name may have left before the subscription: ask once, then watch.
        let name = zbus::names::BusName::try_from(entry.caller.name.as_str()).ok();
        if let Some(name) = name
            && !bus.name_has_owner(name).await.unwrap_or(true)
        {
            return;
        }
        while let Some(signal) = owner_changes.next().await {
            if signal.args().is_ok_and(|args| args.new_owner().is_none()) {
                return;
            }
        }
    };
    tokio::select! {
        () = gone => {}
        () = tokio::time::sleep(START_TIMEOUT) => {}
        () = wait_started(&entry) => return,
    }
    if entry.status() == status::WAITING {
        tracing::info!(
            transaction = entry.number,
            "its creator left before Start; discarded"
        );
        daemon.forget(entry.number);
        remove_files(&entry);
        let _ = connection
            .object_server()
            .remove::<TransactionObject, _>(entry.path.as_str())
            .await;
    }
}

async fn wait_started(entry: &Entry) {
    while entry.status() == status::WAITING {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Delete the local stones a transaction received.
pub fn remove_files(entry: &Entry) {
    for file in &entry.local_files {
        let _ = std::fs::remove_file(file);
    }
}

/// Record the end of a transaction, tell its clients, and take it off the bus later.
pub async fn finish(
    daemon: &Arc<Daemon>,
    entry: &Arc<Entry>,
    final_status: &'static str,
    message: String,
    outcome: String,
) {
    let started = {
        let mut progress = entry.lock();
        progress.status = final_status;
        progress.meter.complete();
        progress.result = Some((final_status.to_owned(), message.clone(), outcome.clone()));
        progress.started
    };
    // Every end is recorded here, also of a transaction cancelled while waiting or queued or
    // dropped at shutdown (it never ran: started 0), so that the history tells and the next
    // daemon run numbers past it.
    let ran = started != 0;
    let finished = crate::history::now();
    let record = moss_proto::wire::HistoryEntry {
        transaction: entry.number,
        title: entry.work.title().to_owned(),
        uid: entry.caller.uid,
        started: if ran { started } else { finished },
        finished,
        status: final_status.to_owned(),
        message: message.clone(),
        state: daemon.moss.active_state().unwrap_or(0),
    };
    if let Err(error) = daemon.history.append(&record) {
        tracing::warn!(%error, "cannot record the transaction in the history");
    }
    // Only the worker's own transaction has a running marker; another's end leaves it.
    if ran && let Err(error) = daemon.history.clear_running() {
        tracing::warn!(%error, "cannot clear the running-transaction marker");
    }
    remove_files(entry);
    let connection = daemon.connection().clone();
    if let Ok(emitter) = SignalEmitter::new(&connection, entry.path.as_str()) {
        let _ = emitter
            .emit(
                moss_proto::TRANSACTION_INTERFACE,
                "Finished",
                &(final_status, message.as_str(), outcome.as_str()),
            )
            .await;
    }
    notify_properties(&connection, &entry.path).await;
    entry.finished.notify_waiters();
    let daemon = daemon.clone();
    let entry = entry.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETAIN_FINISHED).await;
        daemon.forget(entry.number);
        let _ = connection
            .object_server()
            .remove::<TransactionObject, _>(entry.path.as_str())
            .await;
    });
}

/// Emit `PropertiesChanged` for a transaction's status, percentage and cancellability.
pub async fn notify_properties(connection: &Connection, path: &str) {
    let Ok(reference) = connection
        .object_server()
        .interface::<_, TransactionObject>(path)
        .await
    else {
        return;
    };
    let object = reference.get().await;
    let emitter = reference.signal_emitter();
    let _ = object.status_changed(emitter).await;
    let _ = object.percentage_changed(emitter).await;
    let _ = object.cancellable_changed(emitter).await;
    let _ = object.sequence_changed(emitter).await;
}

#[interface(name = "com.serpentos.Moss1.Transaction")]
impl TransactionObject {
    /// Queue the transaction. Its creator (or root) starts it; starting a joined or finished
    /// one again is harmless.
    async fn start(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let _call = self.daemon.call();
        if self.entry.status() != status::WAITING {
            // Joined or already running: the caller follows it; nothing to start.
            return Ok(());
        }
        let caller = authority::caller(connection, &header).await?;
        if caller.uid != self.entry.caller.uid {
            // Someone who joined it (or root) may start it, with the permission it needs.
            authority::authorize(connection, &header, self.entry.action).await?;
        }
        {
            let mut progress = self.entry.lock();
            if progress.status != status::WAITING {
                return Ok(());
            }
            progress.status = status::QUEUED;
        }
        self.daemon.enqueue(self.entry.clone());
        notify_properties(connection, &self.entry.path).await;
        Ok(())
    }

    /// Cancel until the point of no return. A cancelled transaction reports `cancelled`, not
    /// an error; a cancel that comes too late is refused with `InvalidState`.
    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let _call = self.daemon.call();
        let caller = authority::caller(connection, &header).await?;
        if caller.uid != self.entry.caller.uid {
            authority::authorize(connection, &header, actions::CANCEL_FOREIGN).await?;
        }
        // Claim a transaction that has not run under the lock, so the worker cannot take it
        // at the same moment.
        let current = {
            let mut progress = self.entry.lock();
            let current = progress.status;
            if matches!(current, status::WAITING | status::QUEUED) {
                progress.status = status::CANCELLED;
            }
            current
        };
        match current {
            status::WAITING | status::QUEUED => {
                self.daemon.dequeue(self.entry.number);
                finish(
                    &self.daemon,
                    &self.entry,
                    status::CANCELLED,
                    "cancelled; nothing was changed".into(),
                    String::new(),
                )
                .await;
                Ok(())
            }
            status::RUNNING => self
                .daemon
                .moss
                .cancellation()
                .cancel()
                .map_err(|too_late| Error::InvalidState(too_late.to_string())),
            _ => Err(Error::InvalidState(format!(
                "transaction {} already {current}",
                self.entry.number
            ))),
        }
    }

    /// Events numbered above `since`: `(sequence, progress JSON)`.
    fn events(&self, since: u64) -> Vec<(u64, String)> {
        let _call = self.daemon.call();
        self.entry
            .lock()
            .events
            .iter()
            .filter(|(sequence, _)| *sequence > since)
            .cloned()
            .collect()
    }

    /// `(status, message, outcome JSON)`.
    fn result(&self) -> (String, String, String) {
        let _call = self.daemon.call();
        let progress = self.entry.lock();
        progress
            .result
            .clone()
            .unwrap_or_else(|| (progress.status.to_owned(), String::new(), String::new()))
    }

    /// A numbered progress event.
    #[zbus(signal)]
    async fn event(emitter: &SignalEmitter<'_>, sequence: u64, progress: &str) -> zbus::Result<()>;

    /// The transaction ended.
    #[zbus(signal)]
    async fn finished(
        emitter: &SignalEmitter<'_>,
        status: &str,
        message: &str,
        outcome: &str,
    ) -> zbus::Result<()>;

    /// What it does.
    #[zbus(property)]
    fn role(&self) -> String {
        self.entry.work.title().to_owned()
    }

    /// Its status.
    #[zbus(property)]
    fn status(&self) -> String {
        self.entry.status().to_owned()
    }

    /// Percentage done.
    #[zbus(property)]
    fn percentage(&self) -> u32 {
        self.entry.lock().meter.percentage()
    }

    /// Whether `Cancel` can still stop it.
    #[zbus(property)]
    fn cancellable(&self) -> bool {
        match self.entry.status() {
            status::WAITING | status::QUEUED => true,
            status::RUNNING => self.daemon.moss.cancellation().is_cancellable(),
            _ => false,
        }
    }

    /// The uid of its creator.
    #[zbus(property)]
    fn initiator(&self) -> u32 {
        self.entry.caller.uid
    }

    /// The number of its last event.
    #[zbus(property)]
    fn sequence(&self) -> u64 {
        self.entry.lock().meter.sequence()
    }
}

//! The transaction worker: the one task that changes the installation, one transaction at a
//! time, in queue order.

use std::{error::Error as _, sync::Arc};

use moss::{EngineError, events::Event, requests::Outcome};
use moss_proto::status;
use zbus::object_server::SignalEmitter;

use crate::{
    config::UpdatePolicy,
    daemon::{Daemon, Entry, Work},
    history::{Running, now},
    inhibit,
    transaction::{finish, notify_properties},
};

/// Run transactions until the daemon shuts down.
pub async fn run(daemon: Arc<Daemon>) {
    while let Some(entry) = daemon.next_job().await {
        {
            let mut progress = entry.lock();
            if progress.status != status::QUEUED {
                // Cancelled while queued.
                continue;
            }
            progress.status = status::RUNNING;
            progress.started = now();
        }
        carry_out(&daemon, &entry).await;
    }
    // Shutting down: what was queued never ran, and says so.
    for entry in daemon.drain() {
        let claimed = {
            let mut progress = entry.lock();
            let queued = progress.status == status::QUEUED;
            if queued {
                progress.status = status::CANCELLED;
            }
            queued
        };
        if claimed {
            finish(
                &daemon,
                &entry,
                status::CANCELLED,
                "mossd stopped before this transaction ran; nothing was changed".into(),
                String::new(),
            )
            .await;
        }
    }
}

async fn carry_out(daemon: &Arc<Daemon>, entry: &Arc<Entry>) {
    let connection = daemon.connection().clone();
    tracing::info!(
        transaction = entry.number,
        role = entry.work.title(),
        "running"
    );
    notify_properties(&connection, &entry.path).await;
    let running = Running {
        transaction: entry.number,
        title: entry.work.title().to_owned(),
        uid: entry.caller.uid,
        started: entry.lock().started,
        from_state: daemon.moss.active_state(),
    };
    if let Err(error) = daemon.history.mark_running(&running) {
        tracing::warn!(%error, "cannot note the running transaction");
    }
    // Sleep and shutdown wait while the system changes (a no-op where logind is absent).
    let inhibitor = inhibit::take(&connection, entry.work.title()).await;
    daemon.moss.cancellation().reset();

    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Event>();
    daemon.reporter.attach(Some(sender));
    let forwarder = {
        let entry = entry.clone();
        let connection = connection.clone();
        tokio::spawn(async move {
            let emitter = SignalEmitter::new(&connection, entry.path.as_str()).ok();
            while let Some(event) = receiver.recv().await {
                let (progress, moved) = {
                    let mut state = entry.lock();
                    let before = state.meter.percentage();
                    let progress = state.meter.record(event);
                    let json = progress.to_json();
                    state.keep_event(progress.sequence, json.clone());
                    ((progress.sequence, json), before != progress.percentage)
                };
                if let Some(emitter) = &emitter {
                    let _ = emitter
                        .emit(
                            moss_proto::TRANSACTION_INTERFACE,
                            "Event",
                            &(progress.0, progress.1.as_str()),
                        )
                        .await;
                }
                if moved {
                    notify_properties(&connection, &entry.path).await;
                }
            }
        })
    };

    let result = match &entry.work {
        Work::Change(change) => daemon.moss.perform(change).await,
        Work::Forced(change) => {
            // One transaction runs at a time: the flag covers exactly this one.
            daemon.moss.set_force(true);
            let result = daemon.moss.perform(change).await;
            daemon.moss.set_force(false);
            result
        }
        Work::AutomaticUpdate => automatic_update(daemon).await,
    };
    let result = match result {
        Ok(outcome) => Ok(keep_states(daemon, outcome).await),
        failed => failed,
    };
    daemon.reporter.attach(None);
    let _ = forwarder.await;
    drop(inhibitor);

    let (final_status, message, outcome) = match result {
        Ok(outcome) => (
            status::SUCCEEDED,
            outcome.message.clone(),
            serde_json::to_string(&outcome).unwrap_or_default(),
        ),
        Err(EngineError::Cancelled) => (
            status::CANCELLED,
            "cancelled; nothing was changed".to_owned(),
            String::new(),
        ),
        Err(error) => (
            status::FAILED,
            describe(&error),
            moss_proto::wire::Failure { kind: error.kind() }.to_json(),
        ),
    };
    daemon.moss.cancellation().reset();
    tracing::info!(
        transaction = entry.number,
        status = final_status,
        %message,
        "finished"
    );
    finish(daemon, entry, final_status, message, outcome).await;
}

/// After a transaction that made a state active, prune the states older than it beyond the
/// configured `keep-states` (0 keeps all), as `moss state prune --keep N` does. The transaction
/// has succeeded whatever the prune does: a failed prune is noted in its message, not turned
/// into a failure.
async fn keep_states(daemon: &Daemon, mut outcome: Outcome) -> Outcome {
    let keep = daemon.keep_states();
    if keep == 0 || outcome.state.is_none() {
        return outcome;
    }
    match daemon.moss.prune(keep as usize).await {
        Ok(pruned) if pruned.states.is_empty() => {}
        Ok(pruned) => {
            let removed: Vec<String> = pruned.states.iter().map(u64::to_string).collect();
            tracing::info!(keep, states = %removed.join(", "), "older states pruned");
            outcome.message = format!(
                "{}; keeping {keep} older states, removed state {}",
                outcome.message,
                removed.join(", ")
            );
            outcome.removed_states.extend(pruned.states);
        }
        Err(error) => {
            tracing::warn!(%error, "cannot prune older states");
            outcome.message = format!(
                "{}; older states were not pruned: {}",
                outcome.message,
                describe(&error)
            );
        }
    }
    outcome
}

/// An error with its causes, as one message.
pub fn describe(error: &EngineError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The background update policy: check counts updates, download also stores them, apply also
/// switches to them.
async fn automatic_update(daemon: &Daemon) -> Result<Outcome, EngineError> {
    let policy = daemon.update_policy();
    if policy == UpdatePolicy::None {
        return Ok(Outcome {
            message: "The update policy is `none`: nothing to do".into(),
            ..Outcome::default()
        });
    }
    let moss = &daemon.moss;
    moss.refresh(None).await?;
    let plan = moss.plan_sync(false).await?;
    let count = (plan.add.len() + plan.change.len()) as u32;
    daemon
        .pending_updates
        .store(count, std::sync::atomic::Ordering::SeqCst);
    let mut outcome = Outcome {
        message: format!("{count} updates available"),
        ..Outcome::default()
    };
    match policy {
        UpdatePolicy::None | UpdatePolicy::Check => {}
        UpdatePolicy::Download => {
            moss.cancellation().check()?;
            let downloaded = moss.download(&plan.fetch).await?;
            moss.add_stones(downloaded).await?;
            outcome.message = format!("{count} updates downloaded and ready to apply");
        }
        UpdatePolicy::Apply if count > 0 => {
            let switch = moss.execute(&plan, "Automatic update").await?;
            daemon
                .pending_updates
                .store(0, std::sync::atomic::Ordering::SeqCst);
            outcome.message = format!("{count} updates applied; state {} is active", switch.state);
            outcome.state = Some(switch.state);
            outcome.previous = switch.previous;
        }
        UpdatePolicy::Apply => {}
    }
    outcome.plan = Some(plan);
    Ok(outcome)
}

//! `mossd`: the privileged daemon. It owns `com.serpentos.Moss1` on the system bus (or the bus
//! `DBUS_SYSTEM_BUS_ADDRESS` names) and serialises every change to one installation.

mod authority;
mod config;
mod daemon;
mod history;
mod incoming;
mod inhibit;
mod limits;
mod manager;
mod packagekit;
mod progress;
mod transaction;
mod worker;

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use moss::Moss;

use crate::{
    config::Config, daemon::Daemon, history::History, manager::Manager,
    progress::ForwardingReporter,
};

/// mossd: serves one installation over D-Bus.
#[derive(Debug, Parser)]
#[command(name = "mossd", version, about)]
struct Arguments {
    /// The installation to serve.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// The configuration file (KDL).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Exit after this many idle seconds (overrides the configuration; 0: never).
    #[arg(long, value_name = "SECONDS")]
    idle_exit: Option<u64>,
    /// Do not serve `org.freedesktop.PackageKit` (leave it to a real packagekitd).
    #[arg(long)]
    no_packagekit: bool,
    /// Apply a prepared offline update (`/system-update`) and exit: the boot-time step of
    /// PackageKit's offline updates.
    #[arg(long)]
    offline_update: bool,
    /// Write mossd.1 into DIR and exit (for packaging).
    #[arg(long, hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
    /// Print the completion script for a shell and exit (for packaging).
    #[arg(long, hide = true, value_name = "SHELL")]
    generate_completions: Option<moss_manuals::Shell>,
    /// Internal: copy one file to stdout as this uid (PackageKit's `InstallFiles`).
    #[arg(long, hide = true, value_name = "UID", requires = "read_path")]
    read_as: Option<u32>,
    /// Internal: the size limit of `--read-as`.
    #[arg(long, hide = true, value_name = "BYTES", default_value_t = 2 << 30)]
    read_limit: u64,
    /// Internal: the file of `--read-as`.
    #[arg(hide = true, last = true, value_name = "PATH")]
    read_path: Option<PathBuf>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    if let Some(directory) = &arguments.generate_man {
        use clap::CommandFactory;
        return match moss_manuals::write_man_pages(Arguments::command(), directory) {
            Ok(_) => ExitCode::SUCCESS,
            Err(error) => {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!(
                        "mossd: cannot write the man page into {}: {error}\n",
                        directory.display()
                    ),
                );
                ExitCode::FAILURE
            }
        };
    }
    if let Some(shell) = arguments.generate_completions {
        use clap::CommandFactory;
        moss_manuals::write_completions(Arguments::command(), shell, &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    // The file reader child: nothing else of the daemon runs in it.
    if let (Some(uid), Some(path)) = (arguments.read_as, &arguments.read_path) {
        return incoming::read_as_main(uid, arguments.read_limit, path);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOSSD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(arguments, termination())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            // EX_UNAVAILABLE: the service cannot be provided.
            ExitCode::from(69)
        }
    }
}

/// Resolves at SIGTERM or SIGINT.
async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("asked to stop");
}

/// Serve until `shutdown` resolves or the daemon has been idle long enough.
async fn run(
    arguments: Arguments,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config_path = arguments
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let mut config = Config::load(&config_path, arguments.config.is_some())?;
    if let Some(seconds) = arguments.idle_exit {
        config.idle_exit = (seconds > 0).then(|| Duration::from_secs(seconds));
    }
    std::fs::create_dir_all(&arguments.root)
        .with_context(|| format!("cannot create the root {}", arguments.root.display()))?;
    let root = std::fs::canonicalize(&arguments.root)
        .with_context(|| format!("cannot resolve the root {}", arguments.root.display()))?;
    let reporter = Arc::new(ForwardingReporter::default());
    let moss = Moss::open(&root, reporter.clone())
        .await
        .with_context(|| format!("cannot open the installation at {}", root.display()))?;
    if arguments.offline_update {
        return offline_update(&moss, &root).await;
    }
    let history = History::new(&root).with_context(|| {
        format!(
            "cannot create the daemon's history under {}",
            root.display()
        )
    })?;
    // Before the interrupted marker is taken: the daemon numbers on from it.
    let daemon = Arc::new(Daemon::new(
        Arc::new(moss),
        reporter,
        root.clone(),
        config,
        history,
    ));
    let recovery_report = recovery_report(&daemon.moss, &daemon.history);
    daemon.set_config_path(config_path);
    if let Some(report) = recovery_report {
        tracing::warn!("{report}");
        *daemon
            .recovery
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(report);
    }

    let connection = zbus::connection::Builder::system()
        .serve_at(moss_proto::OBJECT_PATH, Manager::new(daemon.clone()))
        .build()
        .await
        .context("cannot connect to the system bus (DBUS_SYSTEM_BUS_ADDRESS)")?;
    daemon.set_connection(connection.clone());
    connection
        .request_name(moss_proto::BUS_NAME)
        .await
        .with_context(|| {
            format!(
                "cannot own {} (is another mossd running, and is the bus policy installed?)",
                moss_proto::BUS_NAME
            )
        })?;
    tracing::info!(root = %root.display(), "serving {}", moss_proto::BUS_NAME);
    if !arguments.no_packagekit {
        packagekit::serve(daemon.clone(), &connection).await;
    }

    // The worker runs on this task, not a spawned one: some engine futures (downloads) are not
    // provably `Send`, and nothing else needs to run it.
    let stop = async {
        tokio::select! {
            () = shutdown => {}
            () = idle(&daemon) => tracing::info!("idle; exiting"),
        }
        // Stop taking work; a running transaction is cancelled if it has not reached its point
        // of no return (a clean discard), and otherwise finishes.
        let _ = connection.release_name(moss_proto::BUS_NAME).await;
        daemon.begin_shutdown();
        if daemon.moss.cancellation().cancel().is_err() {
            tracing::info!("finishing the transaction that is committing");
        }
    };
    tokio::join!(worker::run(daemon.clone()), stop);
    daemon.moss.database().close().await;
    Ok(())
}

/// The boot-time step of an offline update: apply the prepared update when `/system-update`
/// asks for it, record the results, and exit.
async fn offline_update(moss: &Moss, root: &std::path::Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(root.join("system-update")).is_err() {
        tracing::info!("no offline update was triggered");
        moss.database().close().await;
        return Ok(());
    }
    let result = packagekit::offline::apply(moss, root).await;
    moss.database().close().await;
    match result {
        Ok(message) => {
            tracing::info!("offline update applied: {message}");
            Ok(())
        }
        Err(message) => {
            anyhow::bail!("the offline update failed (the system is unchanged): {message}")
        }
    }
}

/// Resolves when no transaction is pending, no call is being served and none came for the
/// configured time.
async fn idle(daemon: &Daemon) {
    let Some(limit) = daemon.idle_exit else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(Duration::from_secs(1).min(limit)).await;
        if !daemon.busy() && !daemon.serving() && daemon.idle_for() >= limit {
            return;
        }
    }
}

/// What to tell the first client about a transaction a previous daemon did not finish.
fn recovery_report(moss: &Moss, history: &History) -> Option<String> {
    let interrupted = history.take_interrupted();
    let recovery = moss.recovery().cloned();
    if interrupted.is_none() && recovery.is_none() {
        return None;
    }
    let active = moss
        .active_state()
        .map_or_else(|| "no state".to_owned(), |id| format!("state {id}"));
    let what = interrupted.as_ref().map_or_else(
        || "A transaction".to_owned(),
        |running| {
            format!(
                "Transaction {} ({}, uid {})",
                running.transaction, running.title, running.uid
            )
        },
    );
    let how = match &recovery {
        Some(recovery) if recovery.completed => {
            format!("its switch to state {} was completed", recovery.to)
        }
        Some(recovery) => format!("its switch to state {} was undone", recovery.to),
        None => "it had not switched the system yet, so nothing changed".to_owned(),
    };
    let report = format!("{what} was interrupted; {how}; the system is on {active}");
    if let Some(running) = interrupted {
        let _ = history.append(&moss_proto::wire::HistoryEntry {
            transaction: running.transaction,
            title: running.title,
            uid: running.uid,
            started: running.started,
            finished: history::now(),
            status: "interrupted".into(),
            message: report.clone(),
            state: moss.active_state().unwrap_or(0),
        });
    }
    Some(report)
}

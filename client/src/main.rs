//! `moss`: the command-line client. Argument parsing, dispatch and error rendering only; the work
//! happens in `mossd` (the default) or, with `-D ROOT`, in the `moss` engine library linked here.

mod aliases;
mod backend;
mod boot;
mod cli;
mod confirm;
mod exit;
mod extract;
mod fetch;
mod inspect;
mod installer;
mod packages;
mod progress;
mod remote;
mod state;

use std::{io::Write, path::PathBuf, process::ExitCode, sync::Arc};

use clap::Parser;
use moss::Moss;

use crate::{
    backend::Backend,
    cli::{CacheCommand, Cli, Command, RepoCommand, StateCommand},
};

fn main() -> ExitCode {
    let cli = Cli::parse_from(aliases::expand(std::env::args_os().collect()));
    init_logging(cli.verbose);
    let result = match &cli.command {
        Command::Inspect(arguments) => inspect::run(arguments),
        Command::Extract(arguments) => extract::run(arguments),
        Command::Index(arguments) => packages::index(arguments),
        Command::Fetch(arguments) => fetch::run(&cli, arguments),
        Command::Boot(command) => boot::run(&cli, command),
        Command::Fstx(arguments) => boot::fstx(&cli, arguments),
        Command::Generate(command) => generate(command),
        Command::Version { full } => version(*full),
        _ if cli.directory.is_none() && installer_mode(&cli.command) => {
            Err(moss::EngineError::InvalidRequest(
                "installer mode (--to DIR) works on an installation directly, never through mossd: add -D ROOT (the installation whose repositories and store are used, such as -D /)"
                    .to_owned(),
            )
            .into())
        }
        _ if cli.directory.is_some() => run_engine(&cli),
        _ => run_daemon(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`moss inspect ... | head`) is the reader's choice, not a failure.
        Err(error) if exit::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                let _ = writeln!(stderr, "  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(exit::code_for(&error))
        }
    }
}

/// `-v`: without it no subscriber is installed, so the engine's events cost nothing and the
/// output stays the progress bars and results. `-vv` opens debug only for our crates: the
/// dependencies' debug events (each SQL statement, each D-Bus message) would drown them.
fn init_logging(verbose: u8) {
    let directives = match verbose {
        0 => return,
        1 => "info",
        2 => "info,moss=debug,moss_client=debug,stone=debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
}

/// `moss version [--full]`.
fn version(full: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "moss {}", env!("CARGO_PKG_VERSION"))?;
    if full {
        let linkage = if cfg!(target_feature = "crt-static") {
            "static"
        } else {
            "dynamic"
        };
        writeln!(
            stdout,
            "target {} {}, {linkage} linking; engine schema {}",
            std::env::consts::ARCH,
            std::env::consts::OS,
            moss::db::schema_version_wanted()
        )?;
    }
    Ok(())
}

/// Man pages and completions from this very command line.
fn generate(command: &cli::GenerateCommand) -> anyhow::Result<()> {
    use clap::CommandFactory;
    match command {
        cli::GenerateCommand::Man { directory } => {
            moss_manuals::write_man_pages(Cli::command(), directory)?;
        }
        cli::GenerateCommand::Completions { shell } => {
            moss_manuals::write_completions(Cli::command(), *shell, &mut std::io::stdout());
        }
    }
    Ok(())
}

/// Direct mode: open the installation here, under its lock.
fn run_engine(cli: &Cli) -> anyhow::Result<()> {
    let root = cli.directory.clone().unwrap_or_else(|| PathBuf::from("/"));
    // Hints in messages then name this root (`moss -D ROOT ...`).
    moss::hint::set_direct_root(&root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let reporter = Arc::new(progress::Progress::new());
        let moss = if reads_only(&cli.command) {
            Moss::open_for_reading(root, reporter).await?
        } else {
            Moss::open(root, reporter).await?
        };
        let result = dispatch(&Backend::Direct(&moss), cli).await;
        moss.database().close().await;
        result
    })
}

/// The default: ask mossd on the system bus.
fn run_daemon(cli: &Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let reporter = Arc::new(progress::Progress::new());
        let daemon = remote::Daemon::connect(reporter).await?;
        dispatch(&Backend::Daemon(daemon), cli).await
    })
}

/// `install --to` and `sync --to`.
fn installer_mode(command: &Command) -> bool {
    match command {
        Command::Install(arguments) => arguments.to.is_some(),
        Command::Sync(arguments) => arguments.to.is_some(),
        _ => false,
    }
}

/// Queries share the installation with each other; changes take it for themselves.
fn reads_only(command: &Command) -> bool {
    match command {
        Command::List(_) | Command::Info(_) | Command::Search(_) | Command::SearchFile(_) => true,
        Command::State(
            StateCommand::List(_)
            | StateCommand::Active(_)
            | StateCommand::Export { .. }
            | StateCommand::Query { .. },
        ) => true,
        Command::State(StateCommand::Verify { fix, .. }) => !fix,
        Command::Repo(RepoCommand::List(_)) => true,
        _ => false,
    }
}

async fn dispatch(backend: &Backend<'_>, cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::State(command) => state::run(backend, command, cli.yes).await,
        Command::Cache(CacheCommand::Prune) => state::cache_prune(backend).await,
        Command::List(command) => packages::list(backend, command).await,
        Command::Install(arguments) => packages::install(backend, arguments, cli.yes).await,
        Command::Remove(arguments) => packages::remove(backend, arguments, cli.yes).await,
        Command::Sync(arguments) => packages::sync(backend, arguments, cli.yes).await,
        Command::Info(arguments) => packages::info(backend, arguments).await,
        Command::Search(arguments) => packages::search(backend, arguments).await,
        Command::SearchFile(arguments) => packages::search_file(backend, arguments).await,
        Command::Repo(command) => packages::repo(backend, command).await,
        Command::Inspect(_)
        | Command::Extract(_)
        | Command::Index(_)
        | Command::Fetch(_)
        | Command::Boot(_)
        | Command::Fstx(_)
        | Command::Generate(_)
        | Command::Version { .. } => {
            unreachable!("handled before choosing a backend")
        }
    }
}

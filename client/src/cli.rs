//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// moss: the Serpent OS package manager.
#[derive(Debug, Parser)]
#[command(name = "moss", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a .stone package, repository index or build manifest contains.
    Inspect(InspectArguments),
    /// Unpack a .stone package into a directory.
    Extract(ExtractArguments),
}

/// How listings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// JSON for programs.
    Json,
}

/// `moss inspect`.
#[derive(Debug, Args)]
pub struct InspectArguments {
    /// Output format; with several files JSON output is an array of objects.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The stone files to inspect.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `moss extract`.
#[derive(Debug, Args)]
pub struct ExtractArguments {
    /// The .stone package to unpack.
    pub file: PathBuf,
    /// Directory to unpack into (it receives `usr/`); defaults to `NAME-VERSION-RELEASE.ARCH`.
    #[arg(long)]
    pub to: Option<PathBuf>,
}

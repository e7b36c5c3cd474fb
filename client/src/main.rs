//! `moss`: the command-line client. Argument parsing, dispatch and error rendering only; the work
//! happens in the `moss` engine library.

mod cli;
mod exit;
mod extract;
mod inspect;

use std::{io::Write, process::ExitCode};

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(arguments) => inspect::run(&arguments),
        Command::Extract(arguments) => extract::run(&arguments),
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

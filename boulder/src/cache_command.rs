//! `boulder cache size` and `boulder cache clean`.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Subcommand, ValueEnum};

use crate::Format;

/// `boulder cache ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Show the size of each cache directory (upstreams, work, profiles) and the total.
    Size {
        /// The cache (default: /var/cache/boulder for root, $XDG_CACHE_HOME/boulder otherwise).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Remove cache directories (all of them unless named); symlinks are removed, never
    /// followed. Fetched upstreams are downloaded again when a build needs them.
    Clean {
        /// Only these directories.
        #[arg(value_enum)]
        dirs: Vec<CacheKind>,
        /// The cache (default: /var/cache/boulder for root, $XDG_CACHE_HOME/boulder otherwise).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
}

/// A cache directory.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CacheKind {
    /// Fetched archives and git mirrors.
    Upstreams,
    /// Work directories kept by failed or --keep-work builds.
    Work,
    /// Build profiles' indexes and packages.
    Profiles,
}

impl CacheKind {
    fn name(self) -> &'static str {
        match self {
            Self::Upstreams => "upstreams",
            Self::Work => "work",
            Self::Profiles => "profiles",
        }
    }
}

/// Bytes for people: binary units, one decimal.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub(crate) fn cache_command(command: &CacheCommand) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match command {
        CacheCommand::Size { cache_dir, format } => {
            let root = cache_dir.clone().unwrap_or_else(crate::default_cache_dir);
            let dirs = boulder::cache::sizes(&root)?;
            let total: u64 = dirs.iter().map(|dir| dir.bytes).sum();
            match format {
                Some(Format::Json) => {
                    let value = serde_json::json!({
                        "root": root,
                        "dirs": dirs,
                        "total_bytes": total,
                    });
                    serde_json::to_writer_pretty(&mut stdout, &value)?;
                    writeln!(stdout)?;
                }
                None => {
                    for dir in &dirs {
                        writeln!(
                            stdout,
                            "{:<10} {:>10}  {}",
                            dir.name,
                            human(dir.bytes),
                            dir.path.display()
                        )?;
                    }
                    writeln!(stdout, "{:<10} {:>10}", "total", human(total))?;
                }
            }
        }
        CacheCommand::Clean { dirs, cache_dir } => {
            let root = cache_dir.clone().unwrap_or_else(crate::default_cache_dir);
            let names: Vec<&str> = dirs.iter().map(|kind| kind.name()).collect();
            let removed = boulder::cache::clean(&root, &names)?;
            if removed.is_empty() {
                writeln!(stdout, "Nothing to clean in {}", root.display())?;
            }
            for dir in &removed {
                writeln!(
                    stdout,
                    "removed {} ({})",
                    dir.path.display(),
                    human(dir.bytes)
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

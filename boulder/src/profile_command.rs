//! `boulder profile list|add|update`: the command line over [`boulder::profile`].

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Subcommand;

use crate::Format;

/// `boulder profile ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// List the profiles and their repositories.
    List {
        /// Output format.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Add (or replace) a profile, then fetch its repositories' indexes.
    Add {
        /// The profile's name.
        name: String,
        /// A repository: `name=ID,uri=URI[,priority=N]` (or `ID=URI`); repeat for several.
        #[arg(short, long = "repo", required = true, value_name = "REPOSITORY")]
        repositories: Vec<String>,
        /// Cache where the indexes are kept.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Fetch a profile's repository indexes again.
    Update {
        /// The profile.
        #[arg(short, long, default_value = "default-x86_64")]
        profile: String,
        /// Cache where the indexes are kept.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

pub(crate) fn profile_command(
    command: &ProfileCommand,
    config_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let profiles = boulder::profile::Profiles::new(config_dir);
    let mut stdout = std::io::stdout();
    match command {
        ProfileCommand::List { format } => {
            let listed = profiles.list()?;
            if format.is_some() {
                serde_json::to_writer_pretty(&mut stdout, &listed)?;
                writeln!(stdout)?;
            } else if listed.is_empty() {
                let _ = writeln!(
                    std::io::stderr(),
                    "No build profiles yet; `boulder profile add NAME --repo name=ID,uri=URI` adds one"
                );
            } else {
                for profile in &listed {
                    writeln!(stdout, "{}:", profile.name)?;
                    for repository in &profile.repositories {
                        writeln!(
                            stdout,
                            " - {} = {} [{}]",
                            repository.id, repository.uri, repository.priority
                        )?;
                    }
                }
            }
        }
        ProfileCommand::Add {
            name,
            repositories,
            cache_dir,
        } => {
            let repositories = repositories
                .iter()
                .map(|text| boulder::profile::parse_repository(text))
                .collect::<Result<Vec<_>, _>>()?;
            let mut profile = boulder::profile::Profile {
                name: name.clone(),
                repositories,
            };
            profile
                .repositories
                .sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
            let path = profiles.save(&profile)?;
            let state = cache_dir
                .clone()
                .unwrap_or_else(crate::default_cache_dir)
                .join("profiles")
                .join(name);
            let packages = boulder::profile::refresh(&profile, &state)?;
            let _ = writeln!(
                std::io::stderr(),
                "Profile \"{name}\" has been added ({}; its repositories offer {packages} packages)",
                path.display()
            );
        }
        ProfileCommand::Update { profile, cache_dir } => {
            let found = profiles.get(profile)?;
            let state = cache_dir
                .clone()
                .unwrap_or_else(crate::default_cache_dir)
                .join("profiles")
                .join(profile);
            let packages = boulder::profile::refresh(&found, &state)?;
            let _ = writeln!(
                std::io::stderr(),
                "Profile {profile} updated: its repositories offer {packages} packages"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

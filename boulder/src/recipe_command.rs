//! `boulder recipe ...`: check, parse, new, macros, bump and update.

use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::bail;
use boulder::{
    build,
    macros::Macros,
    recipe::{Recipe, Warning},
    recipe_edit::{NewUpstream, RecipeText},
    upstream::UpstreamCache,
};
use clap::Subcommand;

use crate::{Format, default_cache_dir};

#[derive(Debug, Subcommand)]
pub(crate) enum RecipeCommand {
    /// Parse recipes and report warnings and errors.
    Check {
        /// Recipe files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the parsed recipe.
    Parse {
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// The recipe.
        file: PathBuf,
    },
    /// Draft a recipe from a source archive (URL or local file).
    New {
        /// URL or path of the archive.
        source: String,
        /// Directory for the new `stone.yaml` (default: print it).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List the actions and definitions, or show one.
    Macros {
        /// An action or definition name.
        name: Option<String>,
    },
    /// Increment the recipe's release in place (or set it with -n), keeping the file's
    /// formatting and comments.
    Bump {
        /// The recipe (`stone.yaml` or its directory).
        #[arg(short, long, default_value = "stone.yaml")]
        recipe: PathBuf,
        /// The new release instead of release + 1.
        #[arg(short = 'n', long = "release", value_name = "N")]
        release: Option<u64>,
    },
    /// Set a new version and upstreams: each plain upstream given with -u replaces the
    /// recipe's upstream in the same position, with the SHA-256 of the downloaded file; the
    /// release goes up by one. Shows the change and asks first (unless -y).
    Update {
        /// The recipe (`stone.yaml` or its directory).
        #[arg(default_value = "stone.yaml")]
        recipe: PathBuf,
        /// The new version.
        #[arg(long = "ver", visible_alias = "version", value_name = "VERSION")]
        version: Option<String>,
        /// A new plain upstream URL (https://, or file: for a local archive); repeat in the
        /// recipe's order.
        #[arg(short = 'u', long = "upstream", value_name = "URL")]
        upstreams: Vec<String>,
        /// Write the updated recipe here instead of over the recipe.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Keep the release as it is.
        #[arg(long)]
        no_bump: bool,
        /// Cache the downloads go to (default: /var/cache/boulder for root,
        /// $XDG_CACHE_HOME/boulder otherwise), where the next build finds them.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
}

fn print_warnings(path: &Path, warnings: &[Warning]) {
    let mut stderr = std::io::stderr();
    for warning in warnings {
        let _ = writeln!(stderr, "{}:{warning}: warning", path.display());
    }
}

pub(crate) fn recipe_command(
    command: RecipeCommand,
    macros: &Macros,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    match command {
        RecipeCommand::Check { files } => {
            let mut failed = 0;
            for file in &files {
                match Recipe::load(file) {
                    Ok(loaded) => {
                        print_warnings(&loaded.path, &loaded.warnings);
                        if let Err(error) = boulder::recipe_check::check(&loaded.recipe, macros) {
                            failed += 1;
                            let _ =
                                writeln!(std::io::stderr(), "{}: {error}", loaded.path.display());
                        }
                    }
                    Err(error) => {
                        failed += 1;
                        let _ = writeln!(std::io::stderr(), "{error}");
                    }
                }
            }
            writeln!(
                stdout,
                "{} recipes checked, {failed} with errors",
                files.len()
            )?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RecipeCommand::Parse {
            format: Format::Json,
            file,
        } => {
            let loaded = Recipe::load(&file)?;
            print_warnings(&loaded.path, &loaded.warnings);
            serde_json::to_writer_pretty(&mut stdout, &loaded.recipe)?;
            writeln!(stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        RecipeCommand::New { source, output } => {
            let cache = default_cache_dir().join("upstreams");
            let draft = boulder::draft::draft(&source, &cache)?;
            match output {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    let path = dir.join("stone.yaml");
                    if path.exists() {
                        bail!("{} exists; not overwriting it", path.display());
                    }
                    std::fs::write(&path, &draft.text)?;
                    let _ = writeln!(
                        std::io::stderr(),
                        "wrote {} ({} build system)",
                        path.display(),
                        draft.system
                    );
                }
                None => write!(stdout, "{}", draft.text)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        RecipeCommand::Bump { recipe, release } => {
            let path = recipe_file(&recipe);
            let original = read(&path)?;
            let mut text = RecipeText::new(&original, &path);
            let old = text.release()?;
            let new = text.bump(release)?;
            text.validate()?;
            std::fs::write(&path, text.text())
                .map_err(|error| anyhow::anyhow!("writing {}: {error}", path.display()))?;
            let _ = writeln!(
                std::io::stderr(),
                "{}: release {old} -> {new}",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        RecipeCommand::Update {
            recipe,
            version,
            upstreams,
            output,
            no_bump,
            cache_dir,
        } => {
            let cache = cache_dir.unwrap_or_else(default_cache_dir);
            let edit = Edit {
                version,
                upstreams,
                output,
                bump: !no_bump,
            };
            update(&recipe, &edit, &cache, yes)
        }
        RecipeCommand::Macros { name } => {
            let env = boulder::script::ScriptEnv::new(macros, build::HOST_ARCH)?;
            match name {
                None => {
                    let mut actions: Vec<_> = env.actions().iter().collect();
                    actions.sort_by_key(|(name, _)| name.as_str());
                    for (name, action) in actions {
                        writeln!(stdout, "%{name:<28} {}", action.description)?;
                    }
                    let mut definitions: Vec<_> = env.definitions().keys().collect();
                    definitions.sort();
                    for name in definitions {
                        writeln!(stdout, "%({name})")?;
                    }
                }
                Some(name) => {
                    let name = name.trim_start_matches('%').trim_matches(['(', ')']);
                    if let Some(action) = env.actions().get(name) {
                        writeln!(stdout, "%{name}: {}\n", action.description)?;
                        if let Some(example) = &action.example {
                            writeln!(stdout, "example: {example}\n")?;
                        }
                        writeln!(stdout, "{}", action.command.trim())?;
                    } else if let Some(value) = env.definitions().get(name) {
                        writeln!(stdout, "%({name}) = {value}")?;
                    } else {
                        bail!("no action or definition named `{name}`");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A recipe argument may name the file or its directory.
fn recipe_file(recipe: &Path) -> PathBuf {
    if recipe.is_dir() {
        recipe.join("stone.yaml")
    } else {
        recipe.to_owned()
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|error| {
        anyhow::anyhow!(
            "reading {}: {error} (name the recipe: `stone.yaml` or its directory)",
            path.display()
        )
    })
}

/// What `recipe update` changes.
#[derive(Debug)]
struct Edit {
    version: Option<String>,
    upstreams: Vec<String>,
    output: Option<PathBuf>,
    bump: bool,
}

/// `boulder recipe update`.
fn update(recipe: &Path, edit: &Edit, cache: &Path, yes: bool) -> anyhow::Result<ExitCode> {
    let Edit {
        version,
        upstreams,
        output,
        bump,
    } = edit;
    if version.is_none() && upstreams.is_empty() {
        // Upstream asks release-monitoring.org for the newest version; that lookup is not
        // offered here, so the caller names what changes.
        bail!("name the new version (--ver VERSION) and/or the new upstreams (-u URL)");
    }
    let path = recipe_file(recipe);
    let original = read(&path)?;
    let mut text = RecipeText::new(&original, &path);
    if let Some(version) = &version {
        text.set_version(version)?;
    }
    if !upstreams.is_empty() {
        // Downloaded into the upstream cache under their hash, so the build that follows
        // finds them without fetching again.
        let cache = UpstreamCache::new(cache.join("upstreams"));
        let recipe_dir = path.parent().unwrap_or(Path::new("."));
        let mut fetched = Vec::new();
        for url in upstreams {
            let _ = writeln!(std::io::stderr(), "==> fetching {url}");
            let (_, hash) = cache.fetch_new(url, recipe_dir)?;
            fetched.push(NewUpstream {
                url: url.clone(),
                hash,
            });
        }
        text.replace_upstreams(&fetched)?;
    }
    if *bump {
        text.bump(None)?;
    }
    text.validate()?;
    let diff = text.diff(&original);
    let target = output.clone().unwrap_or_else(|| path.clone());
    let mut stderr = std::io::stderr();
    writeln!(
        stderr,
        "--- {}\n+++ {}\n{diff}",
        path.display(),
        target.display()
    )?;
    if !yes && !confirm(&format!("Write {}?", target.display()))? {
        writeln!(stderr, "Nothing written")?;
        return Ok(ExitCode::FAILURE);
    }
    std::fs::write(&target, text.text())
        .map_err(|error| anyhow::anyhow!("writing {}: {error}", target.display()))?;
    writeln!(stderr, "wrote {}", target.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Ask on stderr, read the answer from stdin; anything but y/yes is no (and so is a closed
/// stdin: a script that did not pass -y did not agree).
fn confirm(question: &str) -> anyhow::Result<bool> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{question} [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

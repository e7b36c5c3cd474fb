//! The `boulder` command line: argument parsing, output, errors. The work happens in the
//! library.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use boulder::{
    build::{self, BuildOptions, Progress},
    macros::Macros,
    recipe::{Recipe, Warning},
    root::{BuildRoot, EngineRoot, HostRoot},
    root_daemon::DaemonRoot,
};
use clap::{Parser, Subcommand, ValueEnum};

mod cache_command;
mod profile_command;
mod recipe_command;

use cache_command::{CacheCommand, cache_command};
use profile_command::{ProfileCommand, profile_command};
use recipe_command::{RecipeCommand, recipe_command};

#[derive(Debug, Parser)]
#[command(
    name = "boulder",
    version,
    about = "Build stone packages from stone.yaml recipes"
)]
struct Cli {
    /// Use macro files from this directory (layout `arch/*.yaml`, `actions/*.yaml`) instead of
    /// the built-in ones.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Configuration directory holding `profile.d/` (default: /etc/boulder for root,
    /// $XDG_CONFIG_HOME/boulder otherwise).
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Answer yes to every question (`recipe update` asks before writing).
    #[arg(short = 'y', long = "yes-all", global = true)]
    yes: bool,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Build a recipe into .stone packages and manifests.
    Build(BuildArgs),
    /// Check, parse, draft and inspect recipes.
    #[command(subcommand)]
    Recipe(RecipeCommand),
    /// Open a shell in a recipe's build root (kept by a failed build or --keep-work), with
    /// its environment, actions (`a_NAME`) and definitions (`d_NAME`) exported.
    Chroot {
        /// The recipe (`stone.yaml` or its directory).
        #[arg(default_value = "stone.yaml")]
        recipe: PathBuf,
        /// Cache holding the build's work directory.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Run this command (with `bash -c`) instead of an interactive shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Manage build profiles: named sets of repositories for build roots (`build --profile`).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Show the size of the build cache or clean it.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Print the version.
    Version,
    /// Write a `stone.index` for the `.stone` files in a directory.
    Index {
        /// Directory with `.stone` files.
        dir: PathBuf,
    },
    /// Convert Debian packages (.deb) into stones: files placed below /usr (/etc and /var
    /// content as /usr/share/factory plus tmpfiles lines), dependencies from analysis.
    ImportDeb {
        /// The .deb files.
        #[arg(required = true)]
        debs: Vec<PathBuf>,
        /// Where the stones go.
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Where the packages are unpacked (default: a directory beside OUTPUT).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// The stones' release number.
        #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        release: u64,
        /// zstd level of the stones.
        #[arg(long, default_value_t = 3)]
        level: i32,
    },
    /// Write man pages or print shell completions (for packaging).
    #[command(hide = true, subcommand)]
    Generate(Generate),
}

/// `boulder generate ...`.
#[derive(Debug, Subcommand)]
enum Generate {
    /// Write boulder.1 and a page per subcommand into DIR.
    Man {
        /// Where the pages go.
        directory: PathBuf,
    },
    /// Print the completion script for a shell.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: moss_manuals::Shell,
    },
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The recipe (`stone.yaml` or its directory).
    #[arg(default_value = "stone.yaml")]
    recipe: PathBuf,
    /// Where to put the packages and manifests.
    #[arg(short, long, default_value = ".")]
    output: PathBuf,
    /// Bind the host's /usr read-only as the build root instead of installing packages.
    #[arg(long)]
    host_root: bool,
    /// A repository for the build root, `ID=URI` of a stone.index; repeat, highest priority first.
    /// Without it (and without --host-root) mossd composes the root from its repositories.
    #[arg(long = "repo", value_name = "ID=URI", conflicts_with = "profile")]
    repositories: Vec<String>,
    /// Compose the build root from this build profile's repositories (`boulder profile`).
    #[arg(short, long, value_name = "NAME", conflicts_with = "host_root")]
    profile: Option<String>,
    /// Build release number written into the packages.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    build_release: u64,
    /// Cache for sources and work directories.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Parallel jobs (default: number of CPUs).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Keep the work directory (root, build and install trees) after the build.
    #[arg(long)]
    keep_work: bool,
    /// Compare the new manifest.ARCH.bin with this one; fail when the packages differ.
    #[arg(long, value_name = "MANIFEST")]
    verify: Option<PathBuf>,
    /// Print every line the phases write (otherwise only the last lines of a failing step).
    #[arg(short, long)]
    verbose: bool,
    /// Build at the caller's priority. By default, as upstream, the build runs at the lowest
    /// priority (nice 19, inherited by every phase) so the machine stays usable.
    #[arg(long)]
    normal_priority: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Json,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The container helper stages must run before anything else starts a thread.
    match boulder::container::dispatch(&args) {
        Some(Ok(code)) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Some(Err(message)) => {
            let _ = writeln!(std::io::stderr(), "boulder container: {message}");
            return ExitCode::from(125);
        }
        None => {}
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "boulder: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn macros(cli_dir: Option<&Path>) -> anyhow::Result<Macros> {
    Ok(match cli_dir {
        Some(dir) => Macros::from_dir(dir)?,
        None => Macros::builtin()?,
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Commands::Generate(generate) = &cli.command {
        use clap::CommandFactory;
        match generate {
            Generate::Man { directory } => {
                moss_manuals::write_man_pages(Cli::command(), directory)?;
            }
            Generate::Completions { shell } => {
                moss_manuals::write_completions(Cli::command(), *shell, &mut std::io::stdout());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config_dir = cli.config_dir.clone().unwrap_or_else(default_config_dir);
    match &cli.command {
        Commands::Profile(command) => return profile_command(command, &config_dir),
        Commands::Cache(command) => return cache_command(command),
        Commands::Version => {
            writeln!(std::io::stdout(), "boulder {}", env!("CARGO_PKG_VERSION"))?;
            return Ok(ExitCode::SUCCESS);
        }
        Commands::Chroot {
            recipe,
            cache_dir,
            command,
        } => {
            let cache = cache_dir.clone().unwrap_or_else(default_cache_dir);
            let helper = std::env::current_exe().context("locating the boulder binary")?;
            let code = boulder::chroot::enter(recipe, &cache, &helper, command)?;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        _ => {}
    }
    let macros = macros(cli.data_dir.as_deref())?;
    match cli.command {
        Commands::Build(args) => build_command(args, macros, &config_dir),
        Commands::Profile(_) | Commands::Chroot { .. } | Commands::Cache(_) | Commands::Version => {
            Ok(ExitCode::SUCCESS)
        }
        Commands::Recipe(command) => recipe_command(command, &macros, cli.yes),
        Commands::Generate(_) => Ok(ExitCode::SUCCESS),
        Commands::ImportDeb {
            debs,
            output,
            work_dir,
            release,
            level,
        } => import_deb(&debs, &output, work_dir, release, level),
        Commands::Index { dir } => {
            let summary = moss::repository::index::write_index(&dir, &dir)
                .with_context(|| format!("indexing {}", dir.display()))?;
            let _ = writeln!(
                std::io::stderr(),
                "indexed {} packages into {}",
                summary.packages.len(),
                summary.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import_deb(
    debs: &[PathBuf],
    output: &Path,
    work_dir: Option<PathBuf>,
    release: u64,
    level: i32,
) -> anyhow::Result<ExitCode> {
    let work = work_dir.unwrap_or_else(|| output.with_extension("work"));
    let options = stone::WriteOptions { level, workers: 0 };
    let report = boulder::deb::convert(debs, &work, output, release, options)?;
    let mut stderr = std::io::stderr().lock();
    for (package, dependencies) in &report.unsatisfied {
        let list: Vec<&str> = dependencies.iter().map(String::as_str).collect();
        let _ = writeln!(
            stderr,
            "{package}: dropped dependencies nothing in the set provides: {}",
            list.join(", ")
        );
    }
    let dropped: usize = report.dropped.values().map(Vec::len).sum();
    let _ = writeln!(
        stderr,
        "wrote {} stones into {} ({dropped} paths left out: documentation and places outside /usr, /etc, /var, /boot)",
        report.stones.len(),
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn default_config_dir() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/etc/boulder");
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(std::env::temp_dir)
        .join("boulder")
}

pub(crate) fn default_cache_dir() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/var/cache/boulder");
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("boulder")
}

/// Progress on stderr: one line per step, phase output indented.
#[derive(Debug)]
struct Terminal {
    verbose: bool,
    recent: std::sync::Mutex<Vec<String>>,
}

impl Progress for Terminal {
    fn warning(&self, warning: &Warning) {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }

    fn step_started(&self, step: &str) {
        let _ = writeln!(std::io::stderr(), "==> {step}");
        if let Ok(mut recent) = self.recent.lock() {
            recent.clear();
        }
    }

    fn line(&self, _step: &str, line: &str) {
        if self.verbose {
            let _ = writeln!(std::io::stderr(), "    {line}");
        } else if let Ok(mut recent) = self.recent.lock() {
            recent.push(line.to_owned());
            if recent.len() > 40 {
                recent.remove(0);
            }
        }
    }

    fn note(&self, step: &str, message: &str) {
        let _ = writeln!(std::io::stderr(), "    [{step}] {message}");
    }

    fn step_finished(&self, step: &str, elapsed: Duration) {
        let _ = writeln!(
            std::io::stderr(),
            "    {step} done in {:.2}s",
            elapsed.as_secs_f64()
        );
    }
}

/// Nice 19, the lowest priority. (Upstream also switches to SCHED_BATCH; that needs
/// `sched_setscheduler`, which no safe wrapper offers and this workspace denies `unsafe`.)
fn lower_priority() -> anyhow::Result<()> {
    rustix::process::setpriority_process(None, 19).map_err(|error| {
        anyhow::anyhow!("lowering the build's priority to nice 19: {error} (--normal-priority keeps the caller's)")
    })
}

fn build_command(args: BuildArgs, macros: Macros, config_dir: &Path) -> anyhow::Result<ExitCode> {
    if let Some(manifest) = &args.verify
        && manifest
            .extension()
            .is_some_and(|ext| ext.to_string_lossy().starts_with("json"))
    {
        bail!(
            "--verify takes the binary manifest (manifest.ARCH.bin), not {}",
            manifest.display()
        );
    }
    if !args.normal_priority {
        // Before any thread starts: Linux keeps the nice value per thread, and threads and
        // child processes inherit it from their creator.
        lower_priority()?;
    }
    let root: Box<dyn BuildRoot> = if args.host_root {
        let loaded = Recipe::load(&args.recipe)?;
        // The compiler too: an llvm recipe on a host without clang fails here, clearly.
        let compiler = match loaded.recipe.options.toolchain {
            boulder::recipe::Toolchain::Llvm => "binary(clang)",
            boulder::recipe::Toolchain::Gnu => "binary(gcc)",
        };
        let mut check: Vec<String> = boulder::phases::recipe_dependencies(&loaded.recipe)
            .into_iter()
            .collect();
        check.push(compiler.to_owned());
        Box::new(HostRoot { check })
    } else if let Some(name) = &args.profile {
        let profile = boulder::profile::Profiles::new(config_dir).get(name)?;
        // Highest priority first, as with --repo.
        Box::new(EngineRoot::unsigned(
            profile
                .repositories
                .into_iter()
                .map(|repository| (repository.id, repository.uri))
                .collect(),
        ))
    } else if !args.repositories.is_empty() {
        let repositories = args
            .repositories
            .iter()
            .map(|text| {
                text.split_once('=')
                    .map(|(id, uri)| (id.to_owned(), uri.to_owned()))
                    .with_context(|| format!("--repo {text}: expected ID=URI"))
            })
            .collect::<anyhow::Result<_>>()?;
        Box::new(EngineRoot::unsigned(repositories))
    } else {
        let daemon = DaemonRoot::default();
        if daemon.is_available() {
            Box::new(daemon)
        } else {
            // No daemon: the engine composes the root directly, with this system's repositories.
            Box::new(EngineRoot::from_installation(Path::new("/")).map_err(|error| {
                anyhow::anyhow!(
                    "{error}; mossd is not running either. Give --repo ID=URI (a moss repository \
                     with the build dependencies) or --host-root to build against the host's /usr"
                )
            })?)
        }
    };
    let options = BuildOptions {
        recipe: args.recipe,
        output: args.output,
        cache_dir: args.cache_dir.unwrap_or_else(default_cache_dir),
        build_release: args.build_release,
        helper: std::env::current_exe().context("locating the boulder binary")?,
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        macros,
        keep_work: args.keep_work,
        verify: args.verify,
    };
    let progress = Terminal {
        verbose: args.verbose,
        recent: std::sync::Mutex::new(Vec::new()),
    };
    let _ = writeln!(std::io::stderr(), "==> build root: {}", root.describe());
    let report = match build::build(&options, root.as_ref(), &progress) {
        Ok(report) => report,
        Err(error) => {
            if let Ok(recent) = progress.recent.lock() {
                for line in recent.iter() {
                    let _ = writeln!(std::io::stderr(), "    {line}");
                }
            }
            return Err(error.into());
        }
    };
    let mut stderr = std::io::stderr();
    writeln!(stderr, "\nTiming summary:")?;
    let total: Duration = report.timings.iter().map(|(_, elapsed)| *elapsed).sum();
    for (step, elapsed) in &report.timings {
        writeln!(stderr, "  {step:<32} {:>8.2}s", elapsed.as_secs_f64())?;
    }
    writeln!(stderr, "  {:<32} {:>8.2}s", "total", total.as_secs_f64())?;
    let mut stdout = std::io::stdout();
    for stone in &report.emitted.stones {
        writeln!(stdout, "{}", stone.display())?;
    }
    writeln!(stdout, "{}", report.emitted.manifest_bin.display())?;
    writeln!(stdout, "{}", report.emitted.manifest_jsonc.display())?;
    Ok(ExitCode::SUCCESS)
}

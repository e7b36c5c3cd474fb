//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// moss: the Serpent OS package manager.
#[derive(Debug, Parser)]
#[command(name = "moss", version, about)]
pub struct Cli {
    /// Work directly on the installation at ROOT (as root, under its lock) instead of asking mossd.
    #[arg(short = 'D', long = "directory", global = true, value_name = "ROOT")]
    pub directory: Option<PathBuf>,
    /// Answer yes to every question.
    #[arg(short = 'y', long = "yes-all", global = true)]
    pub yes: bool,
    /// More log output on stderr (repeatable): -v info, -vv debug (the engine's timings of
    /// each step), -vvv trace. In daemon mode the engine logs in mossd (the journal).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    /// Install packages by name, provider or .stone file path.
    #[command(alias = "it")]
    Install(InstallArguments),
    /// Remove packages and what only they needed.
    #[command(alias = "rm")]
    Remove(ChangeArguments),
    /// Upgrade installed packages to what the repositories offer.
    #[command(alias = "up")]
    Sync(SyncArguments),
    /// Download packages from the enabled repositories into a directory, under their
    /// repository file names (checked against the index's SHA-256; dependencies are not
    /// fetched). Runs in this process with the caller's rights, never through mossd.
    #[command(alias = "fe")]
    Fetch(FetchArguments),
    /// List packages.
    #[command(subcommand)]
    List(ListCommand),
    /// Show details of packages.
    Info(InfoArguments),
    /// Search packages by name or summary.
    #[command(alias = "sr")]
    Search(SearchArguments),
    /// Find which installed package owns a path.
    #[command(name = "search-file", alias = "sf")]
    SearchFile(SearchArguments),
    /// Manage states (every transaction makes one).
    #[command(subcommand)]
    State(StateCommand),
    /// Manage repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Write a repository index (stone.index) for a directory of stones.
    #[command(alias = "ix")]
    Index(IndexArguments),
    /// Manage the download cache and the store.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Show or update the boot entries (ESP/XBOOTLDR, systemd-boot).
    #[command(subcommand)]
    Boot(BootCommand),
    /// Early boot: activate the state the kernel command line names with `moss.fstx=ID`
    /// (no-op when it is already active). Run by moss-fstx.service in the initrd.
    Fstx(FstxArguments),
    /// Print the version.
    Version {
        /// Also the target, linkage and database schema.
        #[arg(short, long)]
        full: bool,
    },
    /// Write man pages or print shell completions (for packaging).
    #[command(hide = true, subcommand)]
    Generate(GenerateCommand),
}

/// `moss generate ...` (and the same in boulder).
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write moss.1 and a page per subcommand into DIR.
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

/// `moss boot ...`.
#[derive(Debug, Subcommand)]
pub enum BootCommand {
    /// Where boot files go and which entries a sync writes.
    Status {
        /// Partition options.
        #[command(flatten)]
        partitions: BootPartitions,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Write the entries, kernels and loader.conf; remove stale ones.
    Sync {
        /// Partition options.
        #[command(flatten)]
        partitions: BootPartitions,
    },
}

/// Where the boot partitions are, instead of discovering them.
#[derive(Debug, Args)]
pub struct BootPartitions {
    /// The EFI System Partition's directory.
    #[arg(long, value_name = "DIR")]
    pub esp: Option<PathBuf>,
    /// The XBOOTLDR partition's directory.
    #[arg(long, value_name = "DIR")]
    pub xbootldr: Option<PathBuf>,
}

/// `moss fstx`.
#[derive(Debug, Args)]
pub struct FstxArguments {
    /// The kernel command line to read.
    #[arg(long, value_name = "FILE", default_value = "/proc/cmdline")]
    pub cmdline: PathBuf,
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

/// `moss install` and `moss remove`.
#[derive(Debug, Args)]
pub struct ChangeArguments {
    /// Package names, providers (`soname(libz.so.1(x86_64))`) or, for install, .stone paths.
    #[arg(required = true)]
    pub packages: Vec<String>,
    /// Show what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead even when the new state lacks /usr/bin/moss, the C library or the kernel
    /// the active state boots (refused otherwise: such a system cannot recover itself).
    #[arg(long)]
    pub force: bool,
    /// Output format of the plan and result.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `moss install`.
#[derive(Debug, Args)]
pub struct InstallArguments {
    /// What to install and how.
    #[command(flatten)]
    pub change: ChangeArguments,
    /// Installer mode (direct mode only): compose the complete tree of the installed packages
    /// plus these into DIR (usr and the root links, triggers run there) without recording a
    /// state; ROOT lends its repositories and store.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
}

/// `moss fetch`.
#[derive(Debug, Args)]
pub struct FetchArguments {
    /// Package names or providers.
    #[arg(required = true)]
    pub packages: Vec<String>,
    /// Where the files go.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `moss sync`.
#[derive(Debug, Args)]
pub struct SyncArguments {
    /// Refresh the repositories first.
    #[arg(short = 'u', long)]
    pub update: bool,
    /// Allow moving packages to older versions the repositories offer.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Ask mossd to apply its background update policy (what moss-update.timer runs).
    #[arg(long, conflicts_with_all = ["update", "allow_downgrade", "dry_run"])]
    pub automatic: bool,
    /// Make the system exactly this system model (KDL: repositories and packages), which then
    /// becomes /etc/moss/system-model.kdl.
    #[arg(
        long,
        visible_alias = "import",
        value_name = "FILE",
        conflicts_with_all = ["automatic", "allow_downgrade"]
    )]
    pub model: Option<PathBuf>,
    /// Installer mode (direct mode only): compose the complete synced tree into DIR (usr and
    /// the root links, triggers run there) without recording a state.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["automatic", "model"])]
    pub to: Option<PathBuf>,
    /// Go ahead even when the new state lacks /usr/bin/moss, the C library or the kernel
    /// the active state boots.
    #[arg(long, conflicts_with = "automatic")]
    pub force: bool,
    /// Show what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of the plan and result.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `moss list ...`.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Installed packages.
    Installed(ListArguments),
    /// Packages the repositories offer.
    Available(ListArguments),
    /// Installed packages that sync would change.
    Sync(ListSyncArguments),
}

/// `moss list sync`.
#[derive(Debug, Args)]
pub struct ListSyncArguments {
    /// Plan as `sync --allow-downgrade` would (packages may move to older versions).
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Only the packages that move to a newer release or version (no downgrades, additions
    /// or removals).
    #[arg(long)]
    pub upgrade_only: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Options of every listing.
#[derive(Debug, Args)]
pub struct ListArguments {
    /// Only packages the user asked for.
    #[arg(short, long)]
    pub explicit: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `moss info`.
#[derive(Debug, Args)]
pub struct InfoArguments {
    /// Package names or providers.
    #[arg(required = true)]
    pub packages: Vec<String>,
    /// Also list the files of installed candidates.
    #[arg(short, long)]
    pub files: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `moss search` and `moss search-file`.
#[derive(Debug, Args)]
pub struct SearchArguments {
    /// What to look for.
    pub keyword: String,
    /// Only installed packages (search).
    #[arg(short, long)]
    pub installed: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `moss state ...`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Every state, newest first.
    List(FormatArguments),
    /// The active state.
    Active(FormatArguments),
    /// One state in full: its packages, date, kind and boot entries.
    Query {
        /// The state id.
        id: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Make a state active again (rollback or roll forward).
    Activate {
        /// The state id.
        id: u64,
        /// Run no system triggers (those that write /etc and /var); transaction triggers still
        /// run when the state's tree is rebuilt rather than its own archived tree reused.
        #[arg(long)]
        skip_triggers: bool,
        /// Leave the boot entries as they are.
        #[arg(long)]
        skip_boot: bool,
    },
    /// Remove old states, keeping the newest ones.
    Prune {
        /// How many states older than the active one to keep.
        #[arg(short, long, default_value_t = 10)]
        keep: usize,
        /// Also remove the states newer than the active one (left by a rollback).
        #[arg(long)]
        include_newer: bool,
    },
    /// Remove states by id or range (`3`, `5-8`).
    Remove {
        /// State ids or ranges.
        #[arg(required = true, value_parser = parse_state_ids)]
        ids: Vec<StateIds>,
    },
    /// Write the system model a state was built from (default: the active state).
    Export {
        /// The state id.
        id: Option<u64>,
        /// Write it to this file instead of standard output; `-o` alone writes
        /// `system-model-HOST-fstxn-ID.kdl` in the current directory (as upstream).
        #[arg(short, long, value_name = "PATH", num_args = 0..=1)]
        output: Option<Option<PathBuf>>,
    },
    /// Check every state's tree and the store; `--fix` repairs what it can.
    Verify {
        /// Repair what is found.
        #[arg(long)]
        fix: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// The ids of one `state remove` argument: `N` or `A-B` (inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateIds(pub Vec<u64>);

fn parse_state_ids(text: &str) -> Result<StateIds, String> {
    let number = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a state id or a range A-B of them"))
    };
    match text.split_once('-') {
        None => Ok(StateIds(vec![number(text)?])),
        Some((first, last)) => {
            let (first, last) = (number(first)?, number(last)?);
            if first > last || last - first > 100_000 {
                return Err(format!(
                    "the range {text:?} must go from a smaller id to a larger one"
                ));
            }
            Ok(StateIds((first..=last).collect()))
        }
    }
}

/// Just a format.
#[derive(Debug, Args)]
pub struct FormatArguments {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `moss repo ...`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Add a repository and fetch its index.
    Add {
        /// Repository id.
        name: String,
        /// URI of its stone.index (file:// or https://), or with --root-index the base URI of
        /// its channel tree.
        uri: String,
        /// Follow a channel tree's moss-root-index.json at URI instead of one stone.index:
        /// `version=stream/ID|tag/ID|history/ID[,channel=main][,arch=x86_64]`.
        #[arg(long, value_name = "SPEC")]
        root_index: Option<String>,
        /// Larger is preferred.
        #[arg(short, long, default_value_t = 0)]
        priority: u64,
        /// A description.
        #[arg(short, long)]
        comment: Option<String>,
        /// Pin a minisign public key the index must be signed with: the base64 key or the path
        /// of a .pub file. Repeat for several keys (key rotation).
        #[arg(long = "key", value_name = "PUBKEY", conflicts_with = "unsigned")]
        keys: Vec<String>,
        /// Add the repository without signature checks.
        #[arg(long)]
        unsigned: bool,
    },
    /// Remove a repository.
    Remove {
        /// Repository id.
        name: String,
    },
    /// Enable a repository.
    Enable {
        /// Repository id.
        name: String,
    },
    /// Disable a repository.
    Disable {
        /// Repository id.
        name: String,
    },
    /// List repositories.
    List(FormatArguments),
    /// Refresh repository indexes.
    Update {
        /// Only this repository.
        name: Option<String>,
    },
}

/// `moss index`.
#[derive(Debug, Args)]
pub struct IndexArguments {
    /// Directory holding .stone files (searched recursively).
    pub directory: PathBuf,
    /// Where to write stone.index (default: the same directory).
    #[arg(short, long)]
    pub output_dir: Option<PathBuf>,
    /// Sign the index with this minisign secret key (unencrypted, `minisign -G -W`), writing
    /// stone.index.minisig beside it.
    #[arg(long, value_name = "KEYFILE")]
    pub sign: Option<PathBuf>,
    /// Days the signature stays valid.
    #[arg(long, value_name = "DAYS", default_value_t = 30, requires = "sign")]
    pub expires_in: u64,
}

/// `moss cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove downloads and store files no state uses.
    Prune,
}

//! Package commands: install, remove, sync, list, info, search, search-file, repo, index.

use std::io::Write;

use moss::{
    operations::{Plan, Planned, Target},
    queries::PackageSummary,
    requests::Change,
};
use serde::Serialize;

use crate::{
    backend::Backend,
    cli::{
        ChangeArguments, Format, IndexArguments, InfoArguments, InstallArguments, ListCommand,
        RepoCommand, SearchArguments, SyncArguments,
    },
    confirm::confirm,
    state::eprintln_text,
};

/// One package in a listing.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    version: String,
    release: u64,
    build_release: u64,
    summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    explicit: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository: Option<String>,
    id: String,
}

impl From<PackageSummary> for Listed {
    fn from(package: PackageSummary) -> Self {
        Self {
            name: package.name,
            version: package.version,
            release: package.release,
            build_release: package.build_release,
            summary: package.summary,
            explicit: package.explicit,
            repository: package.repository,
            id: package.id,
        }
    }
}

fn listing(packages: Vec<PackageSummary>) -> Vec<Listed> {
    packages.into_iter().map(Listed::from).collect()
}

fn print_listing(listing: &[Listed], format: Format) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, listing)?;
            writeln!(stdout)?;
        }
        Format::Human => {
            let width = listing
                .iter()
                .map(|item| item.name.len())
                .max()
                .unwrap_or(0);
            for item in listing {
                let marker = match item.explicit {
                    Some(false) => " (dependency)",
                    _ => "",
                };
                writeln!(
                    stdout,
                    "{:<width$}  {}-{}  {}{marker}",
                    item.name, item.version, item.release, item.summary
                )?;
            }
        }
    }
    Ok(())
}

pub async fn list(backend: &Backend<'_>, command: &ListCommand) -> anyhow::Result<()> {
    match command {
        ListCommand::Installed(arguments) => print_listing(
            &listing(backend.installed(arguments.explicit).await?),
            arguments.format,
        ),
        ListCommand::Available(arguments) => {
            print_listing(&listing(backend.available().await?), arguments.format)
        }
        ListCommand::Sync(arguments) => {
            let mut plan = backend
                .plan(&Change::Sync {
                    update: false,
                    allow_downgrade: arguments.allow_downgrade,
                })
                .await?;
            if arguments.upgrade_only {
                plan.add.clear();
                plan.remove.clear();
                plan.change.retain(|(old, new)| new.is_newer_than(old));
            }
            print_plan(&plan, arguments.format)
        }
    }
}

pub(crate) fn print_plan(plan: &Plan, format: Format) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut stdout, plan)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let line = |item: &Planned| format!("{}  {}  ({})", item.name, item.version, item.origin);
    if !plan.add.is_empty() {
        writeln!(stdout, "The following packages will be installed:")?;
        for item in &plan.add {
            writeln!(stdout, "    {}", line(item))?;
        }
    }
    if !plan.change.is_empty() {
        writeln!(stdout, "The following packages will be changed:")?;
        for (old, new) in &plan.change {
            writeln!(
                stdout,
                "    {}  {} -> {}  ({})",
                old.name, old.version, new.version, new.origin
            )?;
        }
    }
    if !plan.remove.is_empty() {
        writeln!(stdout, "The following packages will be removed:")?;
        for item in &plan.remove {
            writeln!(stdout, "    {}", line(item))?;
        }
    }
    if plan.is_empty() {
        writeln!(stdout, "Nothing to do")?;
    }
    Ok(())
}

async fn carry_out(
    backend: &Backend<'_>,
    change: Change,
    nothing: Option<&str>,
    dry_run: bool,
    yes: bool,
    format: Format,
    force: bool,
) -> anyhow::Result<()> {
    let plan = backend.plan(&change).await?;
    if plan.is_empty()
        && let Some(nothing) = nothing
    {
        return eprintln_text(nothing);
    }
    print_plan(&plan, format)?;
    if plan.is_empty() {
        return Ok(());
    }
    if dry_run {
        return Ok(());
    }
    if !confirm("Proceed?", yes)? {
        eprintln_text("Cancelled; nothing was changed")?;
        return Ok(());
    }
    let outcome = backend.perform_with(change, force).await?;
    eprintln_text(&outcome.message)
}

pub async fn install(
    backend: &Backend<'_>,
    arguments: &InstallArguments,
    yes: bool,
) -> anyhow::Result<()> {
    let change_arguments = &arguments.change;
    let change = Change::Install {
        targets: Target::from_words(&change_arguments.packages),
    };
    if let Some(directory) = &arguments.to {
        return crate::installer::compose(backend, change, directory, change_arguments, yes).await;
    }
    let nothing = Some("Everything requested is already installed");
    carry_out(
        backend,
        change,
        nothing,
        change_arguments.dry_run,
        yes,
        change_arguments.format,
        change_arguments.force,
    )
    .await
}

pub async fn remove(
    backend: &Backend<'_>,
    arguments: &ChangeArguments,
    yes: bool,
) -> anyhow::Result<()> {
    let change = Change::Remove {
        packages: arguments.packages.clone(),
    };
    carry_out(
        backend,
        change,
        None,
        arguments.dry_run,
        yes,
        arguments.format,
        arguments.force,
    )
    .await
}

pub async fn sync(
    backend: &Backend<'_>,
    arguments: &SyncArguments,
    yes: bool,
) -> anyhow::Result<()> {
    if arguments.automatic {
        let Backend::Daemon(daemon) = backend else {
            anyhow::bail!(
                "`moss sync --automatic` asks mossd to apply its update policy; it has no direct mode"
            );
        };
        let outcome = daemon.automatic_update().await?;
        return eprintln_text(&outcome.message);
    }
    if let Some(path) = &arguments.model {
        // Read as the caller: mossd gets the text, never the path.
        let model = std::fs::read_to_string(path).map_err(|error| {
            anyhow::anyhow!("Cannot read the system model {}: {error}", path.display())
        })?;
        let change = Change::SyncModel {
            model,
            origin: path.display().to_string(),
        };
        return sync_model(backend, change, arguments, yes).await;
    }
    if arguments.update {
        backend
            .perform(Change::Refresh { repository: None })
            .await?;
    }
    let change = Change::Sync {
        update: false,
        allow_downgrade: arguments.allow_downgrade,
    };
    if let Some(directory) = &arguments.to {
        let options = ChangeArguments {
            packages: Vec::new(),
            dry_run: arguments.dry_run,
            force: arguments.force,
            format: arguments.format,
        };
        return crate::installer::compose(backend, change, directory, &options, yes).await;
    }
    carry_out(
        backend,
        change,
        None,
        arguments.dry_run,
        yes,
        arguments.format,
        arguments.force,
    )
    .await
}

/// `sync --model`: even with nothing to install or remove the model is applied (adopted as
/// `/etc/moss/system-model.kdl`). mossd plans it only by applying it, so through mossd the plan
/// is shown after the confirmation.
async fn sync_model(
    backend: &Backend<'_>,
    change: Change,
    arguments: &SyncArguments,
    yes: bool,
) -> anyhow::Result<()> {
    let planned = matches!(backend, Backend::Direct(_));
    if planned {
        let plan = backend.plan(&change).await?;
        print_plan(&plan, arguments.format)?;
        if arguments.dry_run {
            return Ok(());
        }
        if !plan.is_empty() && !confirm("Proceed?", yes)? {
            eprintln_text("Cancelled; nothing was changed")?;
            return Ok(());
        }
    } else {
        if arguments.dry_run {
            backend.plan(&change).await?;
        }
        if !confirm("Make the system match the model?", yes)? {
            eprintln_text("Cancelled; nothing was changed")?;
            return Ok(());
        }
    }
    let outcome = backend.perform_with(change, arguments.force).await?;
    if !planned && let Some(plan) = &outcome.plan {
        print_plan(plan, arguments.format)?;
    }
    eprintln_text(&outcome.message)
}

pub async fn info(backend: &Backend<'_>, arguments: &InfoArguments) -> anyhow::Result<()> {
    let reports = backend
        .details(&arguments.packages, arguments.files)
        .await?;
    let mut stdout = std::io::stdout().lock();
    match arguments.format {
        Format::Json => {
            let reports: Vec<serde_json::Value> = reports
                .iter()
                .map(|report| match report.status.as_str() {
                    "installed" => serde_json::json!({
                        "status": "installed", "explicit": report.explicit.unwrap_or(false),
                        "id": report.id, "package": report.package, "files": report.files,
                    }),
                    _ => serde_json::json!({
                        "status": report.status, "repository": report.repository,
                        "id": report.id, "package": report.package,
                    }),
                })
                .collect();
            serde_json::to_writer_pretty(&mut stdout, &reports)?;
            writeln!(stdout)?;
        }
        Format::Human => {
            for report in &reports {
                let package = &report.package;
                writeln!(stdout, "Name         : {}", package.name)?;
                writeln!(stdout, "Status       : {}", report.status)?;
                writeln!(
                    stdout,
                    "Version      : {}-{}",
                    package.version, package.release
                )?;
                writeln!(stdout, "Summary      : {}", package.summary)?;
                writeln!(stdout, "Homepage     : {}", package.homepage)?;
                for (label, list) in [
                    ("Depends", &package.depends),
                    ("Provides", &package.provides),
                    ("Conflicts", &package.conflicts),
                ] {
                    if !list.is_empty() {
                        writeln!(stdout, "{label:<13}:")?;
                        for item in list {
                            writeln!(stdout, "    {item}")?;
                        }
                    }
                }
                if !report.files.is_empty() {
                    writeln!(stdout, "Files        :")?;
                    for file in &report.files {
                        writeln!(stdout, "    {file}")?;
                    }
                }
                writeln!(stdout)?;
            }
        }
    }
    Ok(())
}

pub async fn search(backend: &Backend<'_>, arguments: &SearchArguments) -> anyhow::Result<()> {
    let hits = backend
        .search(&arguments.keyword, arguments.installed)
        .await?;
    print_listing(&listing(hits), arguments.format)
}

pub async fn search_file(backend: &Backend<'_>, arguments: &SearchArguments) -> anyhow::Result<()> {
    let hits = backend.search_file(&arguments.keyword).await?;
    let mut stdout = std::io::stdout().lock();
    match arguments.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &hits)?;
            writeln!(stdout)?;
        }
        Format::Human => {
            for hit in &hits {
                writeln!(stdout, "{} from {}", hit.path, hit.package)?;
            }
        }
    }
    Ok(())
}

pub async fn repo(backend: &Backend<'_>, command: &RepoCommand) -> anyhow::Result<()> {
    let change = match command {
        RepoCommand::List(arguments) => {
            let repositories = backend.repositories().await?;
            let mut stdout = std::io::stdout().lock();
            match arguments.format {
                Format::Json => {
                    let list: Vec<_> = repositories
                        .iter()
                        .map(|repository| {
                            serde_json::json!({"id": repository.id, "uri": repository.uri,
                                "priority": repository.priority, "active": repository.active,
                                "description": repository.description,
                                "signed": repository.signed, "keys": repository.keys,
                                "root_index": (!repository.root_index.is_empty())
                                    .then_some(&repository.root_index)})
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut stdout, &list)?;
                    writeln!(stdout)?;
                }
                Format::Human => {
                    for repository in &repositories {
                        writeln!(
                            stdout,
                            " - {} = {} [{}] ({}){}",
                            repository.id,
                            if repository.root_index.is_empty() {
                                repository.uri.as_str()
                            } else {
                                repository.root_index.as_str()
                            },
                            repository.priority,
                            if repository.signed {
                                "signed"
                            } else {
                                "unsigned"
                            },
                            if repository.active { "" } else { " (disabled)" }
                        )?;
                    }
                }
            }
            return Ok(());
        }
        RepoCommand::Add {
            name,
            uri,
            priority,
            comment,
            keys,
            unsigned,
            root_index,
        } => {
            if keys.is_empty() && !unsigned {
                anyhow::bail!(
                    "Repository `{name}` needs a signing key: pass --key PUBKEY (the minisign \
                     public key or its .pub file) to check its signed index, or --unsigned to add \
                     it without signature checks"
                );
            }
            let keys = keys
                .iter()
                .map(|key| read_key(key))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Change::RepoAdd {
                name: name.clone(),
                uri: uri.clone(),
                priority: *priority,
                comment: comment.clone().unwrap_or_default(),
                keys,
                root_index: root_index.clone(),
            }
        }
        RepoCommand::Remove { name } => Change::RepoRemove { name: name.clone() },
        RepoCommand::Enable { name } => Change::RepoEnable {
            name: name.clone(),
            enable: true,
        },
        RepoCommand::Disable { name } => Change::RepoEnable {
            name: name.clone(),
            enable: false,
        },
        RepoCommand::Update { name } => Change::Refresh {
            repository: name.clone(),
        },
    };
    let outcome = backend.perform(change).await?;
    if !matches!(command, RepoCommand::Update { .. }) {
        eprintln_text(&outcome.message)?;
    }
    Ok(())
}

pub fn index(arguments: &IndexArguments) -> anyhow::Result<()> {
    let output = arguments
        .output_dir
        .clone()
        .unwrap_or_else(|| arguments.directory.clone());
    let summary = moss::repository::write_index(&arguments.directory, &output)?;
    eprintln_text(&format!(
        "Indexed {} packages into {}",
        summary.packages.len(),
        summary.path.display()
    ))?;
    if let Some(key) = &arguments.sign {
        let validity = std::time::Duration::from_secs(arguments.expires_in.saturating_mul(86_400));
        let signature = moss::repository::sign_index(&summary.path, key, validity)?;
        eprintln_text(&format!(
            "Signed it into {} (valid for {} days)",
            signature.display(),
            arguments.expires_in
        ))?;
    } else {
        // A signature left from an earlier signed index no longer matches: clients would refuse
        // the new index with a confusing error. It is moss's own file beside the index.
        let stale = summary.path.with_file_name("stone.index.minisig");
        if stale.exists() {
            std::fs::remove_file(&stale)?;
            eprintln_text(&format!(
                "Removed {}, which signed the previous index; pass --sign KEYFILE to sign this one",
                stale.display()
            ))?;
        }
    }
    Ok(())
}

/// A `--key` argument: the path of a `.pub` file when one exists there, else the key itself.
fn read_key(key: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(key);
    if path.is_file() {
        std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("Cannot read the public key {key}: {error}"))
    } else {
        Ok(key.to_owned())
    }
}

//! Package commands: install, remove, sync, list, info, search, search-file, repo, index.

use std::io::Write;

use moss::{
    Moss,
    operations::{Plan, Planned},
};
use serde::Serialize;

use crate::{
    cli::{
        ChangeArguments, Format, IndexArguments, InfoArguments, ListCommand, RepoCommand,
        SearchArguments, SyncArguments,
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

impl From<moss::engine::Installed> for Listed {
    fn from(installed: moss::engine::Installed) -> Self {
        let meta = installed.package.meta;
        Self {
            name: meta.name,
            version: meta.version,
            release: meta.release,
            build_release: meta.build_release,
            summary: meta.summary,
            explicit: Some(installed.explicit),
            repository: None,
            id: installed.package.id,
        }
    }
}

impl From<moss::operations::Available> for Listed {
    fn from(available: moss::operations::Available) -> Self {
        let meta = available.meta;
        Self {
            id: meta.hash.clone().unwrap_or_default(),
            name: meta.name,
            version: meta.version,
            release: meta.release,
            build_release: meta.build_release,
            summary: meta.summary,
            explicit: None,
            repository: Some(available.repository),
        }
    }
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

pub async fn list(moss: &Moss, command: &ListCommand) -> anyhow::Result<()> {
    match command {
        ListCommand::Installed(arguments) => {
            let listing: Vec<Listed> = moss
                .installed()
                .await?
                .into_iter()
                .filter(|installed| !arguments.explicit || installed.explicit)
                .map(Listed::from)
                .collect();
            print_listing(&listing, arguments.format)
        }
        ListCommand::Available(arguments) => {
            let mut listing: Vec<Listed> = moss
                .available()
                .await?
                .into_iter()
                .map(Listed::from)
                .collect();
            listing.sort_by(|a, b| a.name.cmp(&b.name));
            print_listing(&listing, arguments.format)
        }
        ListCommand::Sync(arguments) => {
            let plan = moss.plan_sync(false).await?;
            print_plan(&plan, arguments.format)
        }
    }
}

fn print_plan(plan: &Plan, format: Format) -> anyhow::Result<()> {
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
    moss: &Moss,
    plan: Plan,
    summary: &str,
    dry_run: bool,
    yes: bool,
    format: Format,
) -> anyhow::Result<()> {
    print_plan(&plan, format)?;
    if plan.is_empty() || dry_run {
        return Ok(());
    }
    if !confirm("Proceed?", yes)? {
        eprintln_text("Cancelled; nothing was changed")?;
        return Ok(());
    }
    let switch = moss.execute(&plan, summary).await?;
    eprintln_text(&format!(
        "State {} is active ({} entries created, {} removed{})",
        switch.state,
        switch.blit.created,
        switch.blit.removed,
        switch
            .reused
            .map(|id| format!(", built from state {id}"))
            .unwrap_or_default()
    ))
}

pub async fn install(moss: &Moss, arguments: &ChangeArguments, yes: bool) -> anyhow::Result<()> {
    let plan = moss.plan_install(&arguments.packages).await?;
    if plan.is_empty() {
        eprintln_text("Everything requested is already installed")?;
        return Ok(());
    }
    carry_out(
        moss,
        plan,
        "Install",
        arguments.dry_run,
        yes,
        arguments.format,
    )
    .await
}

pub async fn remove(moss: &Moss, arguments: &ChangeArguments, yes: bool) -> anyhow::Result<()> {
    let plan = moss.plan_remove(&arguments.packages).await?;
    carry_out(
        moss,
        plan,
        "Remove",
        arguments.dry_run,
        yes,
        arguments.format,
    )
    .await
}

pub async fn sync(moss: &Moss, arguments: &SyncArguments, yes: bool) -> anyhow::Result<()> {
    if arguments.update {
        moss.refresh(None).await?;
    }
    let plan = moss.plan_sync(arguments.allow_downgrade).await?;
    carry_out(moss, plan, "Sync", arguments.dry_run, yes, arguments.format).await
}

pub async fn info(moss: &Moss, arguments: &InfoArguments) -> anyhow::Result<()> {
    let installed = moss.installed().await?;
    let available = moss.available().await?;
    let mut reports = Vec::new();
    for request in &arguments.packages {
        let dependency: stone::Dependency = request.parse()?;
        let matches = |meta: &stone::Package| {
            (dependency.kind == stone::DependencyKind::Name && dependency.target == meta.name)
                || meta.provides.contains(&dependency)
        };
        let mut found = false;
        for package in installed
            .iter()
            .filter(|installed| matches(&installed.package.meta))
        {
            found = true;
            let files = if arguments.files {
                let layouts = moss
                    .database()
                    .layouts(std::slice::from_ref(&package.package.id))
                    .await?;
                layouts
                    .into_iter()
                    .flat_map(|(_, layouts)| layouts)
                    .filter_map(|layout| {
                        layout.entry.target().map(|target| format!("/usr/{target}"))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            reports.push(serde_json::json!({
                "status": "installed", "explicit": package.explicit, "id": package.package.id,
                "package": package.package.meta, "files": files,
            }));
        }
        for package in available
            .iter()
            .filter(|available| matches(&available.meta))
        {
            found = true;
            reports.push(serde_json::json!({
                "status": "available", "repository": package.repository, "id": package.meta.hash,
                "package": package.meta,
            }));
        }
        if !found {
            anyhow::bail!(
                "no installed or available package provides {request}; try `moss search`"
            );
        }
    }
    let mut stdout = std::io::stdout().lock();
    match arguments.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &reports)?;
            writeln!(stdout)?;
        }
        Format::Human => {
            for report in &reports {
                let package = &report["package"];
                writeln!(
                    stdout,
                    "Name         : {}",
                    package["name"].as_str().unwrap_or_default()
                )?;
                writeln!(
                    stdout,
                    "Status       : {}",
                    report["status"].as_str().unwrap_or_default()
                )?;
                writeln!(
                    stdout,
                    "Version      : {}-{}",
                    package["version"].as_str().unwrap_or_default(),
                    package["release"]
                )?;
                writeln!(
                    stdout,
                    "Summary      : {}",
                    package["summary"].as_str().unwrap_or_default()
                )?;
                writeln!(
                    stdout,
                    "Homepage     : {}",
                    package["homepage"].as_str().unwrap_or_default()
                )?;
                for (label, key) in [
                    ("Depends", "depends"),
                    ("Provides", "provides"),
                    ("Conflicts", "conflicts"),
                ] {
                    if let Some(list) = package[key].as_array().filter(|list| !list.is_empty()) {
                        writeln!(stdout, "{label:<13}:")?;
                        for item in list {
                            writeln!(stdout, "    {}", item.as_str().unwrap_or_default())?;
                        }
                    }
                }
                if let Some(files) = report["files"].as_array().filter(|files| !files.is_empty()) {
                    writeln!(stdout, "Files        :")?;
                    for file in files {
                        writeln!(stdout, "    {}", file.as_str().unwrap_or_default())?;
                    }
                }
                writeln!(stdout)?;
            }
        }
    }
    Ok(())
}

pub async fn search(moss: &Moss, arguments: &SearchArguments) -> anyhow::Result<()> {
    let keyword = arguments.keyword.to_lowercase();
    let hit = |meta: &stone::Package| {
        meta.name.to_lowercase().contains(&keyword)
            || meta.summary.to_lowercase().contains(&keyword)
    };
    let mut listing: Vec<Listed> = moss
        .installed()
        .await?
        .into_iter()
        .filter(|installed| hit(&installed.package.meta))
        .map(Listed::from)
        .collect();
    if !arguments.installed {
        listing.extend(
            moss.available()
                .await?
                .into_iter()
                .filter(|available| hit(&available.meta))
                .map(Listed::from),
        );
    }
    // Name matches first, then summary matches.
    listing.sort_by_key(|item| {
        (
            !item.name.to_lowercase().contains(&keyword),
            item.name.clone(),
        )
    });
    print_listing(&listing, arguments.format)
}

pub async fn search_file(moss: &Moss, arguments: &SearchArguments) -> anyhow::Result<()> {
    let needle = arguments
        .keyword
        .trim_start_matches("/usr/")
        .trim_start_matches('/');
    let installed = moss.installed().await?;
    let ids: Vec<String> = installed
        .iter()
        .map(|installed| installed.package.id.clone())
        .collect();
    let layouts = moss.database().layouts(&ids).await?;
    #[derive(Serialize)]
    struct Hit<'a> {
        path: String,
        package: &'a str,
    }
    let mut hits = Vec::new();
    for ((_, layouts), installed) in layouts.iter().zip(&installed) {
        for layout in layouts {
            if let Some(target) = layout
                .entry
                .target()
                .filter(|target| target.contains(needle))
            {
                hits.push(Hit {
                    path: format!("/usr/{target}"),
                    package: &installed.package.meta.name,
                });
            }
        }
    }
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

pub async fn repo(moss: &Moss, command: &RepoCommand) -> anyhow::Result<()> {
    match command {
        RepoCommand::List(arguments) => {
            let repositories = moss.repositories()?;
            let mut stdout = std::io::stdout().lock();
            match arguments.format {
                Format::Json => {
                    let list: Vec<_> = repositories
                        .iter()
                        .map(|repository| {
                            serde_json::json!({"id": repository.id, "uri": repository.uri.as_str(),
                                "priority": repository.priority, "active": repository.active,
                                "description": repository.description,
                                "signed": repository.is_signed(), "keys": repository.keys})
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut stdout, &list)?;
                    writeln!(stdout)?;
                }
                Format::Human => {
                    for repository in &repositories {
                        writeln!(stdout, " - {repository}")?;
                    }
                }
            }
        }
        RepoCommand::Add {
            name,
            uri,
            priority,
            comment,
            keys,
            unsigned,
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
            moss.add_repository(
                name,
                uri,
                *priority,
                comment.as_deref().unwrap_or(""),
                &keys,
            )
            .await?;
            eprintln_text(&format!("{name} added"))?;
        }
        RepoCommand::Remove { name } => {
            moss.remove_repository(name)?;
            eprintln_text(&format!("{name} removed"))?;
        }
        RepoCommand::Enable { name } => {
            moss.set_repository_active(name, true)?;
            eprintln_text(&format!("{name} enabled"))?;
        }
        RepoCommand::Disable { name } => {
            moss.set_repository_active(name, false)?;
            eprintln_text(&format!("{name} disabled"))?;
        }
        RepoCommand::Update { name } => {
            moss.refresh(name.as_deref()).await?;
        }
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

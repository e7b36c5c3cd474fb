//! `moss boot status|sync` and `moss fstx`.
//!
//! `boot sync` without `-D` asks mossd (the owner of the installation writes the entries, under
//! polkit's `boot-configure`); with `-D ROOT` it works in-process. `boot status` reads in-process,
//! and `fstx` always works in-process: in the initrd there is no daemon to ask.

use std::{io::Write, path::PathBuf, sync::Arc};

use moss::{
    Moss,
    boot::{BootConfig, BootStatus, Location, requested_state},
    installation::read_state_id,
    transaction::ActivateOptions,
};

use crate::{
    cli::{BootCommand, BootPartitions, Cli, Format, FstxArguments},
    progress::Progress,
};

fn root(cli: &Cli) -> PathBuf {
    cli.directory.clone().unwrap_or_else(|| PathBuf::from("/"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn config(root: &std::path::Path, partitions: &BootPartitions) -> anyhow::Result<BootConfig> {
    let mut config = BootConfig::load(root)?;
    if let Some(esp) = &partitions.esp {
        config.esp = Some(esp.clone());
    }
    if let Some(xbootldr) = &partitions.xbootldr {
        config.xbootldr = Some(xbootldr.clone());
    }
    Ok(config)
}

/// `moss boot ...`.
pub fn run(cli: &Cli, command: &BootCommand) -> anyhow::Result<()> {
    let root = root(cli);
    runtime()?.block_on(async {
        let reporter = Arc::new(Progress::new());
        match command {
            BootCommand::Status { partitions, format } => {
                let config = config(&root, partitions)?;
                let moss = Moss::open_for_reading(&root, reporter).await?;
                let status = moss.boot_status(&config).await;
                moss.database().close().await;
                print_status(&status?, *format)
            }
            BootCommand::Sync { partitions } if cli.directory.is_none() => {
                let daemon = crate::remote::Daemon::connect(reporter).await?;
                let outcome = daemon
                    .perform(moss::requests::Change::BootSync {
                        esp: partitions.esp.clone(),
                        xbootldr: partitions.xbootldr.clone(),
                    })
                    .await?;
                writeln!(std::io::stderr(), "{}", outcome.message)?;
                Ok(())
            }
            BootCommand::Sync { partitions } => {
                let config = config(&root, partitions)?;
                let moss = Moss::open(&root, reporter).await?;
                let report = moss.sync_boot(&config).await;
                moss.database().close().await;
                let report = report?;
                let mut stdout = std::io::stdout().lock();
                for entry in &report.entries {
                    let marker = if Some(entry) == report.default.as_ref() {
                        " (default)"
                    } else {
                        ""
                    };
                    writeln!(stdout, "{entry}{marker}")?;
                }
                writeln!(
                    std::io::stderr(),
                    "Boot entries synced: {} entries, {} files written, {} stale removed",
                    report.entries.len(),
                    report.written,
                    report.removed.len()
                )?;
                Ok(())
            }
        }
    })
}

fn describe(location: &Location) -> String {
    let mut text = location.mountpoint.display().to_string();
    let mut details = Vec::new();
    details.extend(location.device.clone());
    details.extend(
        location
            .partuuid
            .as_ref()
            .map(|uuid| format!("PARTUUID {uuid}")),
    );
    details.push(
        match location.source {
            moss::boot::Source::Configuration => "configured",
            moss::boot::Source::EfiVariable => "from LoaderDevicePartUUID",
            moss::boot::Source::Gpt => "from the GPT",
        }
        .to_owned(),
    );
    text.push_str(&format!(" ({})", details.join(", ")));
    text
}

fn print_status(status: &BootStatus, format: Format) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut stdout, status)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let none = || "none".to_owned();
    writeln!(
        stdout,
        "Firmware: {}{}",
        status.firmware,
        status
            .bootloader
            .as_ref()
            .map(|loader| format!(", booted by {loader}"))
            .unwrap_or_default()
    )?;
    writeln!(
        stdout,
        "ESP: {}",
        status.esp.as_ref().map_or_else(none, describe)
    )?;
    writeln!(
        stdout,
        "XBOOTLDR: {}",
        status.xbootldr.as_ref().map_or_else(none, describe)
    )?;
    writeln!(
        stdout,
        "Root: {}",
        status.root.clone().unwrap_or_else(|| "unknown".to_owned())
    )?;
    for entry in &status.entries {
        writeln!(
            stdout,
            "{} state {} kernel {}{}{}",
            entry.file,
            entry.state,
            entry.kernel,
            if entry.default { " (default)" } else { "" },
            if entry.installed {
                ""
            } else {
                " (not written yet)"
            }
        )?;
    }
    if let Some(error) = &status.error {
        writeln!(std::io::stderr(), "warning: {error}")?;
    }
    Ok(())
}

/// `moss fstx`: activate the state `moss.fstx=ID` names, before the root is used.
pub fn fstx(cli: &Cli, arguments: &FstxArguments) -> anyhow::Result<()> {
    let root = root(cli);
    let cmdline = std::fs::read_to_string(&arguments.cmdline).map_err(|error| {
        anyhow::anyhow!(
            "cannot read the kernel command line {}: {error}",
            arguments.cmdline.display()
        )
    })?;
    let mut stderr = std::io::stderr().lock();
    let Some(wanted) = requested_state(&cmdline) else {
        writeln!(
            stderr,
            "moss-fstx: no moss.fstx= on the kernel command line; nothing to do"
        )?;
        return Ok(());
    };
    // Checked without opening the installation: a normal boot writes nothing.
    if read_state_id(&root.join("usr")) == Some(wanted) {
        writeln!(stderr, "moss-fstx: state {wanted} is already active")?;
        return Ok(());
    }
    runtime()?.block_on(async {
        let moss = Moss::open(&root, Arc::new(Progress::new())).await?;
        // No system triggers (/etc is the booted system's; systemd runs sysusers and tmpfiles
        // as it boots) and no boot sync (the ESP is not mounted in the initrd; the booted system
        // syncs it). Transaction triggers run when the tree is not the state's own archive.
        let result = moss
            .activate_with(
                wanted,
                ActivateOptions {
                    skip_triggers: true,
                    skip_boot: true,
                },
            )
            .await;
        moss.database().close().await;
        let switch = result?;
        writeln!(
            std::io::stderr(),
            "moss-fstx: state {} activated{}",
            switch.state,
            switch
                .previous
                .map(|previous| format!(" (state {previous} archived)"))
                .unwrap_or_default()
        )?;
        Ok(())
    })
}

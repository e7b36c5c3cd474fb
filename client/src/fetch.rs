//! `moss fetch NAME... [-o DIR]`: download packages into a directory under their real names.
//!
//! Always in this process, never through mossd: a privileged daemon must not write to a path
//! a caller names, and fetching changes nothing of the installation. The repositories are
//! those of `-D ROOT` (default `/`), read with a reader's lock; the files are written with the
//! caller's own rights.

use std::{io::Write, path::PathBuf, sync::Arc};

use moss::Moss;

use crate::{
    cli::{Cli, FetchArguments, Format},
    progress,
};

pub fn run(cli: &Cli, arguments: &FetchArguments) -> anyhow::Result<()> {
    let root = cli.directory.clone().unwrap_or_else(|| PathBuf::from("/"));
    moss::hint::set_direct_root(&root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let moss = Moss::open_for_reading(root, Arc::new(progress::Progress::new())).await?;
        let result = moss
            .fetch_to(&arguments.packages, &arguments.output_dir)
            .await;
        moss.database().close().await;
        let fetched = result?;
        let mut stdout = std::io::stdout().lock();
        match arguments.format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut stdout, &fetched)?;
                writeln!(stdout)?;
            }
            Format::Human => {
                for package in &fetched {
                    writeln!(stdout, "{}", package.path.display())?;
                }
                writeln!(
                    std::io::stderr(),
                    "Fetched {} packages into {}",
                    fetched.len(),
                    arguments.output_dir.display()
                )?;
            }
        }
        Ok(())
    })
}

//! `moss inspect [--format json] FILE...`: what a stone, an index or a manifest contains.
//!
//! The JSON shape is a contract that later tools and tests rely on: an object with `file_type`
//! and `packages`; binary packages add `layout` and `payloads`.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::Serialize;
use stone::{Archive, Body, Entry, FileType, Package};

use crate::cli::{Format, InspectArguments};

/// One inspected file.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The file.
    pub path: PathBuf,
    /// `binary`, `delta`, `repository` or `buildmanifest`.
    pub file_type: FileType,
    /// One per Meta payload.
    pub packages: Vec<Package>,
    /// Binary packages: every layout record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Vec<LayoutReport>>,
    /// Binary packages: every payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<Vec<PayloadReport>>,
}

/// One layout record.
#[derive(Debug, Serialize)]
pub struct LayoutReport {
    /// Absolute install path under `/usr`.
    pub path: String,
    /// `regular`, `symlink`, `directory`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Full `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// XXH3-128 of a regular file, 32 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Link text of a symlink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One payload.
#[derive(Debug, Serialize)]
pub struct PayloadReport {
    /// meta, layout, index, content, attributes.
    pub kind: String,
    /// none or zstd.
    pub compression: String,
    /// Bytes stored in the file.
    pub stored_size: u64,
    /// Bytes after decompression.
    pub plain_size: u64,
    /// Declared record count.
    pub records: u32,
    /// XXH3-64 of the stored bytes.
    pub checksum: String,
}

pub fn run(arguments: &InspectArguments) -> anyhow::Result<()> {
    let reports = arguments
        .files
        .iter()
        .map(|path| report(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut stdout = io::stdout().lock();
    match arguments.format {
        Format::Json if reports.len() == 1 => {
            serde_json::to_writer_pretty(&mut stdout, &reports[0])?
        }
        Format::Json => serde_json::to_writer_pretty(&mut stdout, &reports)?,
        Format::Human => {
            for (position, report) in reports.iter().enumerate() {
                if position > 0 {
                    writeln!(stdout)?;
                }
                render(&mut stdout, report)?;
            }
            return Ok(());
        }
    }
    writeln!(stdout)?;
    Ok(())
}

/// Read a file into a report.
pub fn report(path: &Path) -> anyhow::Result<Report> {
    let archive = Archive::open(path)?;
    let packages = archive
        .packages()
        .map_err(|error| error.in_file(path))
        .with_context(|| "its metadata is incomplete")?;
    let is_binary = archive.file_type() == FileType::Binary;
    let layout = is_binary.then(|| archive.layouts().map(layout_report).collect());
    let payloads = is_binary.then(|| {
        archive
            .payloads()
            .iter()
            .map(|payload| PayloadReport {
                kind: match payload.body {
                    Body::Skipped => format!("skipped ({})", payload.header.kind),
                    _ => payload.header.kind.to_string(),
                },
                compression: payload.header.compression.to_string(),
                stored_size: payload.header.stored_size,
                plain_size: payload.header.plain_size,
                records: payload.header.num_records,
                checksum: format!("{:016x}", payload.header.checksum),
            })
            .collect()
    });
    Ok(Report {
        path: path.to_owned(),
        file_type: archive.file_type(),
        packages,
        layout,
        payloads,
    })
}

fn layout_report(layout: &stone::Layout) -> LayoutReport {
    // Targets are relative to /usr; an absolute one (hostile or legacy) is shown as it is.
    let path = |target: &str| {
        if target.starts_with('/') {
            target.to_owned()
        } else {
            format!("/usr/{target}")
        }
    };
    let (path, digest, target) = match &layout.entry {
        Entry::Regular { digest, target } => (path(target), Some(format!("{digest:032x}")), None),
        Entry::Symlink { source, target } => (path(target), None, Some(source.clone())),
        Entry::Unknown { target, .. } => (String::from_utf8_lossy(target).into_owned(), None, None),
        other => (path(other.target().unwrap_or_default()), None, None),
    };
    LayoutReport {
        path,
        kind: layout.entry.type_name(),
        mode: layout.mode,
        uid: layout.uid,
        gid: layout.gid,
        digest,
        target,
    }
}

fn render(out: &mut impl Write, report: &Report) -> io::Result<()> {
    writeln!(out, "{} ({})", report.path.display(), report.file_type)?;
    for package in &report.packages {
        writeln!(out)?;
        let field =
            |out: &mut dyn Write, label: &str, value: &str| writeln!(out, "{label:<14}: {value}");
        field(out, "Name", &package.name)?;
        field(out, "Version", &package.version)?;
        field(out, "Release", &package.release.to_string())?;
        field(out, "Build release", &package.build_release.to_string())?;
        field(out, "Architecture", &package.architecture)?;
        field(out, "Summary", &package.summary)?;
        field(out, "Homepage", &package.homepage)?;
        field(out, "Source ID", &package.source_id)?;
        field(out, "Licenses", &package.licenses.join(", "))?;
        if let Some(uri) = &package.uri {
            field(out, "URI", uri)?;
        }
        if let Some(hash) = &package.hash {
            field(out, "Hash", hash)?;
        }
        if let Some(size) = package.size {
            field(out, "Size", &size.to_string())?;
        }
        for (label, list) in [
            ("Depends", &package.depends),
            ("Provides", &package.provides),
            ("Conflicts", &package.conflicts),
            ("Build depends", &package.build_depends),
        ] {
            if !list.is_empty() {
                writeln!(out, "{label:<14}:")?;
                for dependency in list {
                    writeln!(out, "    {dependency}")?;
                }
            }
        }
        let description = package.description.trim_end();
        if !description.is_empty() {
            writeln!(out, "Description   :")?;
            for line in description.lines() {
                writeln!(out, "    {line}")?;
            }
        }
    }
    if let Some(payloads) = &report.payloads {
        writeln!(out, "\nPayloads:")?;
        for payload in payloads {
            writeln!(
                out,
                "    {:<10} {:<5} {:>10} stored {:>10} plain {:>7} records  {}",
                payload.kind,
                payload.compression,
                payload.stored_size,
                payload.plain_size,
                payload.records,
                payload.checksum
            )?;
        }
    }
    if let Some(layout) = &report.layout {
        writeln!(out, "\nLayout ({} entries):", layout.len())?;
        for entry in layout {
            match (&entry.digest, &entry.target) {
                (Some(digest), _) => {
                    writeln!(out, "    {:o} {} [{}]", entry.mode, entry.path, digest)?
                }
                (_, Some(target)) => {
                    writeln!(out, "    {:o} {} -> {}", entry.mode, entry.path, target)?
                }
                _ => writeln!(out, "    {:o} {} ({})", entry.mode, entry.path, entry.kind)?,
            }
        }
    }
    Ok(())
}

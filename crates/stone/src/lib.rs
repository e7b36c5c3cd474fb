//! The `.stone` V1 package format of Serpent OS / AerynOS: binary packages, repository indexes
//! and build manifests.
//!
//! * [`Archive`] opens a stone, walks and checks its payloads, and streams its content into a
//!   [`ContentSink`] without holding it in memory.
//! * [`Writer`] produces archives that upstream moss reads, byte-for-byte deterministic.
//! * [`Package`] is the typed view of a Meta payload.
//!
//! No I/O happens beyond the file given; no printing, no async.

pub mod error;
pub mod header;
pub mod package;
pub mod payload;
pub mod read;
pub mod write;

use std::{
    fs::File,
    io::{BufReader, Read, Seek},
    path::Path,
};

pub use error::{Error, PayloadError, Result};
pub use header::{ArchiveHeader, FileType};
pub use package::{MetadataError, Package};
pub use payload::{
    Compression, Limits, PayloadHeader, PayloadKind,
    attribute::Attribute,
    index::IndexEntry,
    layout::{Entry, Layout},
    meta::{Dependency, DependencyKind, ParseDependencyError, Record, Tag, Value},
};
pub use read::{Body, ContentPayload, ContentSink, DiscardSink, Payload, Reader};
pub use write::{ContentSource, WriteOptions, Writer};

/// XXH3-128 of zero bytes: the digest of every empty file.
pub const EMPTY_DIGEST: u128 = 0x99aa06d3014798d86001c324468d497f;

/// Render a digest as upstream's asset key: lowercase hex without zero padding (minimum width 2).
///
/// This is a quirk of upstream's store paths (`{:02x}` of a u128) that must be reproduced to
/// share a store with it.
pub fn asset_key(digest: u128) -> String {
    format!("{digest:02x}")
}

/// Digest of a byte slice, as used for layout and index entries.
pub fn digest(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

/// An opened stone: header and decoded payloads, with the content left in the file.
#[derive(Debug)]
pub struct Archive<R> {
    reader: Reader<R>,
    payloads: Vec<Payload>,
}

impl Archive<BufReader<File>> {
    /// Open and check a stone file. Errors name the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|error| Error::from(error).in_file(path))?;
        Self::from_reader(BufReader::new(file)).map_err(|error| error.in_file(path))
    }
}

impl<R: Read + Seek> Archive<R> {
    /// Read the header and every payload header from a reader.
    pub fn from_reader(inner: R) -> Result<Self> {
        Self::with_limits(inner, Limits::default())
    }

    /// Like [`Archive::from_reader`], with explicit caps.
    pub fn with_limits(inner: R, limits: Limits) -> Result<Self> {
        let mut reader = Reader::with_limits(inner, limits)?;
        let payloads = reader.payloads()?;
        Ok(Self { reader, payloads })
    }

    /// What the archive contains.
    pub fn file_type(&self) -> FileType {
        self.reader.header().file_type
    }

    /// Every payload, in file order.
    pub fn payloads(&self) -> &[Payload] {
        &self.payloads
    }

    /// The records of each Meta payload, in file order.
    pub fn meta(&self) -> impl Iterator<Item = (usize, &[Record])> {
        self.payloads
            .iter()
            .enumerate()
            .filter_map(|(index, payload)| match &payload.body {
                Body::Meta(records) => Some((index, records.as_slice())),
                _ => None,
            })
    }

    /// The typed metadata of every Meta payload.
    pub fn packages(&self) -> Result<Vec<Package>> {
        self.meta()
            .map(|(index, records)| {
                Package::from_records(records).map_err(|error| Error::Payload {
                    index,
                    kind: PayloadKind::Meta,
                    source: PayloadError::Metadata(error),
                })
            })
            .collect()
    }

    /// All layout records, across layout payloads.
    pub fn layouts(&self) -> impl Iterator<Item = &Layout> {
        self.payloads
            .iter()
            .flat_map(|payload| match &payload.body {
                Body::Layout(layouts) => layouts.as_slice(),
                _ => &[],
            })
    }

    /// All index records, across index payloads.
    pub fn index(&self) -> impl Iterator<Item = &IndexEntry> {
        self.payloads
            .iter()
            .flat_map(|payload| match &payload.body {
                Body::Index(entries) => entries.as_slice(),
                _ => &[],
            })
    }

    /// All attributes.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.payloads
            .iter()
            .flat_map(|payload| match &payload.body {
                Body::Attributes(attributes) => attributes.as_slice(),
                _ => &[],
            })
    }

    /// The content payload, if the archive has one.
    pub fn content(&self) -> Option<ContentPayload> {
        self.payloads.iter().find_map(|payload| match payload.body {
            Body::Content(content) => Some(content),
            _ => None,
        })
    }

    /// Strict mode: everything in the archive must be something upstream's V1 reader knows
    /// (file type, payload kinds and compressions, meta tags, primitive and dependency kinds,
    /// layout entry types). Upstream skips unknown parts silently; this names them, so a writer
    /// can prove that what it adds stays where upstream looks past it.
    pub fn check_strict(&self) -> std::result::Result<(), Vec<String>> {
        let mut unknown = Vec::new();
        if let FileType::Unknown(byte) = self.file_type() {
            unknown.push(format!("file type {byte}"));
        }
        for (index, payload) in self.payloads.iter().enumerate() {
            if let Body::Skipped = payload.body {
                unknown.push(format!(
                    "payload #{index}: {} with {} compression",
                    payload.header.kind, payload.header.compression
                ));
            }
        }
        for (index, records) in self.meta() {
            for record in records {
                if let Tag::Unknown(tag) = record.tag {
                    unknown.push(format!("payload #{index}: meta tag {tag}"));
                }
                match &record.value {
                    Value::Unknown { kind, .. } => {
                        unknown.push(format!("payload #{index}: primitive kind {kind}"));
                    }
                    Value::Dependency(dependency) | Value::Provider(dependency) => {
                        if let DependencyKind::Unknown(kind) = dependency.kind {
                            unknown.push(format!("payload #{index}: dependency kind {kind}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        for layout in self.layouts() {
            if let Entry::Unknown { file_type, .. } = layout.entry {
                unknown.push(format!("layout entry of file type {file_type}"));
            }
        }
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(unknown)
        }
    }

    /// Stream the content into `sink`, cut by the index and verified entry by entry.
    /// An archive without content delivers nothing.
    pub fn unpack<S: ContentSink>(&mut self, sink: &mut S) -> Result<()> {
        let Some(content) = self.content() else {
            return Ok(());
        };
        let index: Vec<IndexEntry> = self.index().copied().collect();
        self.reader.unpack_content(&content, &index, sink)
    }
}

//! The writer: conservative output that upstream moss reads.
//!
//! Rules (from the format spec's writer requirements): every payload is one zstd frame, the
//! checksum is XXH3-64 of the stored bytes, meta strings carry one NUL, layout strings none,
//! Index comes before Content and Content is last with `num_records = 0`. Unique file bodies are
//! stored once, largest first (ties broken by digest), so the same input gives the same bytes.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufReader, Read, Seek, SeekFrom, Write},
    path::PathBuf,
};

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::{
    error::{Error, Result},
    header::{ArchiveHeader, FileType},
    payload::{
        Compression, PayloadHeader, PayloadKind,
        attribute::Attribute,
        index::IndexEntry,
        layout::{Entry, Layout},
        meta::Record,
    },
};

/// Where a file body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentSource {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A file on disk, read when the archive is written.
    Path(PathBuf),
}

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// zstd level for every payload (upstream uses 18).
    pub level: i32,
    /// zstd worker threads for the content (0 = in the calling thread).
    pub workers: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            level: 18,
            workers: 0,
        }
    }
}

/// The index of a content payload, its header and the file holding its stored bytes.
type EncodedContent = (Vec<IndexEntry>, (PayloadHeader, File));

/// Collects payloads, then writes one archive.
#[derive(Debug)]
pub struct Writer {
    file_type: FileType,
    options: WriteOptions,
    metas: Vec<Vec<Record>>,
    layouts: Vec<Layout>,
    attributes: Vec<Attribute>,
    contents: HashMap<u128, (u64, ContentSource)>,
}

impl Writer {
    /// A writer for an archive of this type.
    pub fn new(file_type: FileType) -> Self {
        Self {
            file_type,
            options: WriteOptions::default(),
            metas: Vec::new(),
            layouts: Vec::new(),
            attributes: Vec::new(),
            contents: HashMap::new(),
        }
    }

    /// Use these settings.
    pub fn with_options(mut self, options: WriteOptions) -> Self {
        self.options = options;
        self
    }

    /// Add one Meta payload (a binary package has one; an index or manifest one per package).
    pub fn add_meta(&mut self, records: Vec<Record>) {
        self.metas.push(records);
    }

    /// Add a layout record. A regular file's digest must be added with [`Writer::add_content`].
    pub fn add_layout(&mut self, layout: Layout) {
        self.layouts.push(layout);
    }

    /// Add an attribute.
    pub fn add_attribute(&mut self, attribute: Attribute) {
        self.attributes.push(attribute);
    }

    /// Add a file body; returns its XXH3-128 digest. A body seen before is stored once.
    pub fn add_content(&mut self, source: ContentSource) -> Result<u128> {
        let (digest, length) = digest_of(&source)?;
        self.contents.entry(digest).or_insert((length, source));
        Ok(digest)
    }

    /// Add a regular file: its body and its layout record.
    pub fn add_file(
        &mut self,
        target: impl Into<String>,
        mode: u32,
        source: ContentSource,
    ) -> Result<u128> {
        let digest = self.add_content(source)?;
        self.add_layout(Layout {
            uid: 0,
            gid: 0,
            mode,
            tag: 0,
            entry: Entry::Regular {
                digest,
                target: target.into(),
            },
        });
        Ok(digest)
    }

    /// Encode everything and write the archive to `out`.
    pub fn write<W: Write>(self, mut out: W) -> Result<()> {
        let level = self.options.level;
        let mut payloads = Vec::new();
        for records in &self.metas {
            let mut plain = Vec::new();
            for record in records {
                record.encode(&mut plain);
            }
            payloads.push(metadata_payload(
                PayloadKind::Meta,
                count(records.len())?,
                &plain,
                level,
            )?);
        }
        if !self.layouts.is_empty() {
            let mut plain = Vec::new();
            for layout in &self.layouts {
                layout.encode(&mut plain).map_err(Error::Write)?;
            }
            payloads.push(metadata_payload(
                PayloadKind::Layout,
                count(self.layouts.len())?,
                &plain,
                level,
            )?);
        }
        if !self.attributes.is_empty() {
            let mut plain = Vec::new();
            for attribute in &self.attributes {
                attribute.encode(&mut plain);
            }
            payloads.push(metadata_payload(
                PayloadKind::Attributes,
                count(self.attributes.len())?,
                &plain,
                level,
            )?);
        }
        let content = self.encode_content()?;
        if let Some((index, _)) = &content {
            let mut plain = Vec::new();
            for entry in index {
                entry.encode(&mut plain);
            }
            payloads.push(metadata_payload(
                PayloadKind::Index,
                count(index.len())?,
                &plain,
                level,
            )?);
        }
        let num_payloads = payloads.len() + usize::from(content.is_some());
        let num_payloads = u16::try_from(num_payloads).map_err(|_| {
            Error::Write(format!("{num_payloads} payloads exceed the format's 65535"))
        })?;
        out.write_all(
            &ArchiveHeader {
                num_payloads,
                file_type: self.file_type,
            }
            .encode(),
        )?;
        for (header, body) in &payloads {
            out.write_all(&header.encode())?;
            out.write_all(body)?;
        }
        if let Some((_, (header, mut body))) = content {
            out.write_all(&header.encode())?;
            body.seek(SeekFrom::Start(0))?;
            io::copy(&mut body, &mut out)?;
        }
        out.flush()?;
        Ok(())
    }

    /// Stream every unique body through one compressor into a temporary file.
    fn encode_content(&self) -> Result<Option<EncodedContent>> {
        let has_regular = self
            .layouts
            .iter()
            .any(|layout| matches!(layout.entry, Entry::Regular { .. }));
        if self.contents.is_empty() && !has_regular {
            return Ok(None);
        }
        for layout in &self.layouts {
            if let Entry::Regular { digest, target } = &layout.entry
                && !self.contents.contains_key(digest)
            {
                return Err(Error::Write(format!(
                    "layout entry `{target}` names digest {digest:032x} but no content was added for it"
                )));
            }
        }
        let mut order: Vec<(&u128, &(u64, ContentSource))> = self.contents.iter().collect();
        order.sort_by(|(digest_a, (length_a, _)), (digest_b, (length_b, _))| {
            length_b.cmp(length_a).then(digest_a.cmp(digest_b))
        });
        let mut hashed = HashingWriter {
            inner: tempfile::tempfile()?,
            hasher: Xxh3::new(),
            written: 0,
        };
        let mut encoder = zstd::stream::write::Encoder::new(&mut hashed, self.options.level)?;
        if self.options.workers > 0 {
            encoder.multithread(self.options.workers)?;
        }
        encoder.include_checksum(false)?;
        let mut index = Vec::with_capacity(order.len());
        let mut position = 0u64;
        let mut buffer = vec![0u8; 256 * 1024];
        for (digest, (length, source)) in order {
            let mut hasher = Xxh3::new();
            let mut copied = 0u64;
            let mut reader = open_source(source)?;
            loop {
                let got = reader.read(&mut buffer)?;
                if got == 0 {
                    break;
                }
                hasher.update(&buffer[..got]);
                encoder.write_all(&buffer[..got])?;
                copied += got as u64;
            }
            if copied != *length || hasher.digest128() != *digest {
                return Err(Error::Write(format!(
                    "{} changed while the package was being written",
                    describe(source)
                )));
            }
            index.push(IndexEntry {
                start: position,
                end: position + copied,
                digest: *digest,
            });
            position += copied;
        }
        encoder.finish()?;
        let header = PayloadHeader {
            stored_size: hashed.written,
            plain_size: position,
            checksum: hashed.hasher.digest(),
            num_records: 0,
            version: 1,
            kind: PayloadKind::Content,
            compression: Compression::Zstd,
        };
        Ok(Some((index, (header, hashed.inner))))
    }
}

fn count(length: usize) -> Result<u32> {
    u32::try_from(length)
        .map_err(|_| Error::Write(format!("{length} records exceed the format's limit")))
}

fn metadata_payload(
    kind: PayloadKind,
    num_records: u32,
    plain: &[u8],
    level: i32,
) -> Result<(PayloadHeader, Vec<u8>)> {
    let stored = zstd::bulk::compress(plain, level)?;
    let header = PayloadHeader {
        stored_size: stored.len() as u64,
        plain_size: plain.len() as u64,
        checksum: xxh3_64(&stored),
        num_records,
        version: 1,
        kind,
        compression: Compression::Zstd,
    };
    Ok((header, stored))
}

fn open_source(source: &ContentSource) -> Result<Box<dyn Read + '_>> {
    Ok(match source {
        ContentSource::Bytes(bytes) => Box::new(bytes.as_slice()),
        ContentSource::Path(path) => Box::new(BufReader::new(
            File::open(path).map_err(|error| Error::from(error).in_file(path))?,
        )),
    })
}

fn describe(source: &ContentSource) -> String {
    match source {
        ContentSource::Bytes(_) => "an in-memory body".to_owned(),
        ContentSource::Path(path) => path.display().to_string(),
    }
}

/// XXH3-128 and length of a body.
fn digest_of(source: &ContentSource) -> Result<(u128, u64)> {
    match source {
        ContentSource::Bytes(bytes) => Ok((xxhash_rust::xxh3::xxh3_128(bytes), bytes.len() as u64)),
        ContentSource::Path(_) => {
            let mut reader = open_source(source)?;
            let mut hasher = Xxh3::new();
            let mut buffer = vec![0u8; 64 * 1024];
            let mut length = 0u64;
            loop {
                let got = reader.read(&mut buffer)?;
                if got == 0 {
                    return Ok((hasher.digest128(), length));
                }
                hasher.update(&buffer[..got]);
                length += got as u64;
            }
        }
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Xxh3,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let count = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..count]);
        self.written += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

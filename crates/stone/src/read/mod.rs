//! The streaming reader.
//!
//! Metadata payloads (meta, layout, index, attributes) are small and decoded into memory after
//! their sizes and checksums are checked. The content payload is never held in memory: its
//! position is recorded during the walk and [`Reader::unpack_content`] streams it from the zstd
//! decoder straight into a [`ContentSink`], verifying every file's XXH3-128 on the way.
//!
//! Content of 2 MiB or more is decompressed on a second (scoped) thread, which also computes the
//! payload checksum and the file digests, while the calling thread reads the file and runs the
//! sink: extraction then costs about as much as the slower of decompression and writing, not
//! their sum. Only byte blocks and digests cross threads, so neither the reader nor the sink has
//! to be `Send`, and the sink is still called in content order from the calling thread.

use std::{
    collections::VecDeque,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom},
    mem, panic,
    sync::mpsc::{self, Receiver, Sender},
    thread,
};

use xxhash_rust::xxh3::{Xxh3, xxh3_64, xxh3_128};

use crate::{
    error::{Error, PayloadError, Result},
    header::{ArchiveHeader, HEADER_SIZE},
    payload::{
        Compression, Limits, PAYLOAD_HEADER_SIZE, PayloadHeader, PayloadKind, RecordCursor,
        attribute::Attribute, index::IndexEntry, layout::Layout, meta::Record,
    },
};

/// Largest window a zstd frame may ask for: upstream writes with `windowLog = 31`.
const ZSTD_WINDOW_LOG_MAX: u32 = 31;

/// Where the content payload sits, recorded during the walk so it can be streamed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentPayload {
    /// Position of the payload in the archive.
    pub index: usize,
    /// File offset of the first stored byte.
    pub offset: u64,
    /// The payload header.
    pub header: PayloadHeader,
}

/// A decoded payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Meta records.
    Meta(Vec<Record>),
    /// Layout records.
    Layout(Vec<Layout>),
    /// Index records.
    Index(Vec<IndexEntry>),
    /// Attributes.
    Attributes(Vec<Attribute>),
    /// The content, not read yet.
    Content(ContentPayload),
    /// A payload of unknown kind or compression, skipped as upstream does.
    Skipped,
}

/// One payload: its header and decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The payload header.
    pub header: PayloadHeader,
    /// The decoded body.
    pub body: Body,
}

/// Receives the file bodies of a content payload, in content order.
///
/// `begin` is called once per index entry, `write` with its bytes, then `finish` once its digest
/// has been checked, or `abort` when the body turned out wrong (the sink must then drop what it
/// wrote for that entry).
pub trait ContentSink {
    /// A new file body of `entry.len()` bytes starts.
    fn begin(&mut self, entry: &IndexEntry) -> io::Result<()>;
    /// The next bytes of the current body.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The body is complete and hashes to its digest.
    fn finish(&mut self, entry: &IndexEntry) -> io::Result<()>;
    /// The body is wrong or incomplete; discard it.
    fn abort(&mut self, entry: &IndexEntry);
}

/// A sink that drops everything: verifies a package's content without writing it.
#[derive(Debug, Default)]
pub struct DiscardSink;

impl ContentSink for DiscardSink {
    fn begin(&mut self, _: &IndexEntry) -> io::Result<()> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _: &IndexEntry) -> io::Result<()> {
        Ok(())
    }
    fn abort(&mut self, _: &IndexEntry) {}
}

/// A streaming reader over one stone archive.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    header: ArchiveHeader,
    length: u64,
    limits: Limits,
}

impl<R: Read + Seek> Reader<R> {
    /// Read and validate the archive header.
    pub fn new(inner: R) -> Result<Self> {
        Self::with_limits(inner, Limits::default())
    }

    /// Like [`Reader::new`], with explicit caps.
    pub fn with_limits(mut inner: R, limits: Limits) -> Result<Self> {
        let length = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        let mut bytes = [0u8; HEADER_SIZE];
        read_exact_or_truncated(&mut inner, &mut bytes, || {
            format!("the file is {length} bytes, shorter than the 32-byte archive header")
        })?;
        let header = ArchiveHeader::decode(&bytes)?;
        Ok(Self {
            inner,
            header,
            length,
            limits,
        })
    }

    /// The archive header.
    pub fn header(&self) -> ArchiveHeader {
        self.header
    }

    /// Walk every payload: decode metadata payloads, record where the content is.
    pub fn payloads(&mut self) -> Result<Vec<Payload>> {
        let count = usize::from(self.header.num_payloads);
        let mut payloads = Vec::with_capacity(count);
        let mut offset = HEADER_SIZE as u64;
        self.inner.seek(SeekFrom::Start(offset))?;
        for index in 0..count {
            let mut bytes = [0u8; PAYLOAD_HEADER_SIZE];
            read_exact_or_truncated(&mut self.inner, &mut bytes, || {
                format!(
                    "payload #{index} header is missing ({count} payloads declared, file ends at byte {offset})"
                )
            })?;
            offset += PAYLOAD_HEADER_SIZE as u64;
            let header = PayloadHeader::decode(&bytes);
            let remaining = self.length - offset;
            if header.stored_size > remaining {
                return Err(Error::Truncated {
                    what: format!(
                        "payload #{index} ({}) declares {} stored bytes but only {remaining} remain",
                        header.kind, header.stored_size
                    ),
                });
            }
            let body = self
                .read_body(&header, offset)
                .map_err(|source| Error::Payload {
                    index,
                    kind: header.kind,
                    source,
                })?;
            let body = match body {
                Some(body) => body,
                None => Body::Content(ContentPayload {
                    index,
                    offset,
                    header,
                }),
            };
            offset += header.stored_size;
            self.inner.seek(SeekFrom::Start(offset))?;
            payloads.push(Payload { header, body });
        }
        if offset != self.length {
            return Err(Error::TrailingData(self.length - offset));
        }
        Ok(payloads)
    }

    /// Read one body at `offset`; `None` means content, left in place.
    fn read_body(
        &mut self,
        header: &PayloadHeader,
        offset: u64,
    ) -> Result<Option<Body>, PayloadError> {
        match (header.kind, header.compression) {
            (PayloadKind::Content, _) => return Ok(None),
            (PayloadKind::Unknown(_), _) | (_, Compression::Unknown(_)) => {
                return Ok(Some(Body::Skipped));
            }
            _ => {}
        }
        let limit = self.limits.max_metadata_size;
        for (what, value) in [
            ("stored size", header.stored_size),
            ("plain size", header.plain_size),
        ] {
            if value > limit {
                return Err(PayloadError::Limit { what, value, limit });
            }
        }
        let max_records = u64::from(self.limits.max_records)
            .min(header.plain_size / header.kind.min_record_size());
        if u64::from(header.num_records) > max_records {
            return Err(PayloadError::Limit {
                what: "record count",
                value: header.num_records.into(),
                limit: max_records,
            });
        }
        self.inner.seek(SeekFrom::Start(offset))?;
        let mut stored = vec![0u8; header.stored_size as usize];
        self.inner.read_exact(&mut stored)?;
        let actual = xxh3_64(&stored);
        if actual != header.checksum {
            return Err(PayloadError::Checksum {
                expected: header.checksum,
                actual,
            });
        }
        let plain = match header.compression {
            Compression::Zstd => decompress_exact(&stored, header.plain_size)?,
            _ => stored,
        };
        if plain.len() as u64 != header.plain_size {
            return Err(PayloadError::PlainSize {
                expected: header.plain_size,
                actual: plain.len() as u64,
            });
        }
        decode_records(header, &plain, &self.limits).map(Some)
    }

    /// Stream a content payload into `sink`, cut by `index` and checked entry by entry.
    ///
    /// Entries are delivered in content order. Gaps between entries are skipped; overlapping
    /// entries and entries past the end are errors. The payload checksum and plain size are
    /// checked once the stream is consumed. Large zstd content is decompressed on a second
    /// thread (see the module documentation); the sink is always called from this one.
    pub fn unpack_content<S: ContentSink>(
        &mut self,
        content: &ContentPayload,
        index: &[IndexEntry],
        sink: &mut S,
    ) -> Result<()> {
        let wrap = |source| Error::Payload {
            index: content.index,
            kind: PayloadKind::Content,
            source,
        };
        self.stream_content(content, index, sink).map_err(wrap)
    }

    fn stream_content<S: ContentSink>(
        &mut self,
        content: &ContentPayload,
        index: &[IndexEntry],
        sink: &mut S,
    ) -> Result<(), PayloadError> {
        let header = content.header;
        let mut entries: Vec<(usize, IndexEntry)> = index.iter().copied().enumerate().collect();
        entries.sort_by_key(|(_, entry)| (entry.start, entry.end));
        self.inner.seek(SeekFrom::Start(content.offset))?;
        let mut stored = ChecksumReader {
            inner: (&mut self.inner).take(header.stored_size),
            hasher: Xxh3::new(),
        };
        let total = match header.compression {
            Compression::None => deliver(
                &mut BufReader::with_capacity(PLAIN_CHUNK, &mut stored),
                &entries,
                sink,
                header.plain_size,
            )?,
            Compression::Zstd if header.plain_size < PIPELINE_MIN_PLAIN => deliver(
                &mut inline_decoder(&mut stored)?,
                &entries,
                sink,
                header.plain_size,
            )?,
            Compression::Zstd => pipelined(&mut stored, &entries, sink, header.plain_size)?,
            Compression::Unknown(byte) => return Err(PayloadError::UnknownCompression(byte)),
        };
        if total != header.plain_size {
            return Err(PayloadError::PlainSize {
                expected: header.plain_size,
                actual: total,
            });
        }
        // Hash any stored bytes the decoder did not need, so the checksum covers the whole body.
        io::copy(&mut stored, &mut io::sink())?;
        let actual = stored.hasher.digest();
        if actual != header.checksum {
            return Err(PayloadError::Checksum {
                expected: header.checksum,
                actual,
            });
        }
        Ok(())
    }
}

/// Reads the stored bytes of the content payload and hashes them (XXH3-64) as they pass.
struct ChecksumReader<R> {
    inner: R,
    hasher: Xxh3,
}

impl<R: Read> Read for ChecksumReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..count]);
        Ok(count)
    }
}

fn read_exact_or_truncated(
    reader: &mut impl Read,
    bytes: &mut [u8],
    what: impl FnOnce() -> String,
) -> Result<()> {
    reader
        .read_exact(bytes)
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => Error::Truncated { what: what() },
            _ => Error::Io(error),
        })
}

/// Decompress one metadata payload, refusing more than `plain_size` bytes.
fn decompress_exact(stored: &[u8], plain_size: u64) -> Result<Vec<u8>, PayloadError> {
    let mut decoder = zstd::stream::read::Decoder::new(stored).map_err(PayloadError::Decompress)?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(PayloadError::Decompress)?;
    // The header is untrusted: reserve at most 16 MiB up front and let real data grow the buffer.
    let mut plain = Vec::with_capacity(plain_size.min(16 << 20) as usize);
    decoder
        .take(plain_size + 1)
        .read_to_end(&mut plain)
        .map_err(PayloadError::Decompress)?;
    Ok(plain)
}

fn decode_records(
    header: &PayloadHeader,
    plain: &[u8],
    limits: &Limits,
) -> Result<Body, PayloadError> {
    let mut cursor = RecordCursor::new(plain);
    let count = header.num_records as usize;
    let body = match header.kind {
        PayloadKind::Meta => Body::Meta(
            (0..count)
                .map(|index| Record::decode(&mut cursor, index, limits.max_meta_value))
                .collect::<Result<_, _>>()?,
        ),
        PayloadKind::Layout => Body::Layout(
            (0..count)
                .map(|index| Layout::decode(&mut cursor, index))
                .collect::<Result<_, _>>()?,
        ),
        PayloadKind::Index => Body::Index(
            (0..count)
                .map(|index| IndexEntry::decode(&mut cursor, index))
                .collect::<Result<_, _>>()?,
        ),
        PayloadKind::Attributes => Body::Attributes(
            (0..count)
                .map(|index| Attribute::decode(&mut cursor, index, limits.max_attribute_value))
                .collect::<Result<_, _>>()?,
        ),
        PayloadKind::Content | PayloadKind::Unknown(_) => unreachable!("handled by the caller"),
    };
    if cursor.position() != plain.len() {
        return Err(PayloadError::RecordBytes {
            records: header.num_records,
            used: cursor.position() as u64,
            plain: plain.len() as u64,
        });
    }
    Ok(body)
}

/// Plain content being cut into entries.
trait Plain: BufRead {
    /// Whether the stream digests the entries itself (on the decompression thread).
    fn digests_entries(&self) -> bool {
        false
    }

    /// With [`Plain::digests_entries`]: the XXH3-128 of the next non-empty entry, available
    /// once its last byte has been consumed.
    fn next_digest(&mut self) -> io::Result<u128> {
        Err(io::Error::other("this stream does not digest entries"))
    }
}

impl<R: Read> Plain for BufReader<R> {}

/// Plain content from a stream; read errors are decompression errors (as the zstd decoder
/// reports them, whether the stream or the file below it failed).
fn fill<P: BufRead>(plain: &mut P) -> Result<&[u8], PayloadError> {
    loop {
        match plain.fill_buf() {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(PayloadError::Decompress(error)),
            // Asked again (already filled, so cheap) to return the borrow from the loop.
            Ok(_) => return plain.fill_buf().map_err(PayloadError::Decompress),
        }
    }
}

/// Cut the plain content into `entries` (sorted by range) and hand them to `sink`; returns the
/// number of plain bytes the stream held.
fn deliver<P: Plain, S: ContentSink>(
    plain: &mut P,
    entries: &[(usize, IndexEntry)],
    sink: &mut S,
    plain_size: u64,
) -> Result<u64, PayloadError> {
    let mut position = 0u64;
    for &(entry_index, entry) in entries {
        let range_error = |reason| PayloadError::IndexRange {
            index: entry_index,
            start: entry.start,
            end: entry.end,
            reason,
        };
        if entry.start < position {
            return Err(range_error("overlaps the previous entry"));
        }
        if entry.end > plain_size {
            return Err(range_error("reaches past the end of the content"));
        }
        skip(plain, position, entry.start, plain_size)?;
        sink.begin(&entry).map_err(|source| PayloadError::Sink {
            digest: entry.digest,
            source,
        })?;
        if let Err(error) = copy_entry(plain, &entry, sink, plain_size) {
            sink.abort(&entry);
            return Err(error);
        }
        position = entry.end;
        sink.finish(&entry).map_err(|source| PayloadError::Sink {
            digest: entry.digest,
            source,
        })?;
    }
    // Drain whatever follows the last entry so that size and checksum cover the whole body.
    Ok(position + drain(plain)?)
}

/// The entries the decompression thread digests: the non-empty ones [`deliver`] accepts
/// before its first range error, in order.
fn digested_ranges(entries: &[(usize, IndexEntry)], plain_size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::with_capacity(entries.len());
    let mut position = 0;
    for (_, entry) in entries {
        if entry.start < position || entry.end > plain_size {
            break;
        }
        if !entry.is_empty() {
            ranges.push((entry.start, entry.end));
        }
        position = entry.end;
    }
    ranges
}

/// Discard the plain bytes from `position` up to `target`.
fn skip<P: BufRead>(
    plain: &mut P,
    mut position: u64,
    target: u64,
    plain_size: u64,
) -> Result<(), PayloadError> {
    while position < target {
        let available = fill(plain)?.len();
        if available == 0 {
            return Err(PayloadError::PlainSize {
                expected: plain_size,
                actual: position,
            });
        }
        let count = available.min(usize::try_from(target - position).unwrap_or(usize::MAX));
        plain.consume(count);
        position += count as u64;
    }
    Ok(())
}

/// Hand one entry's bytes to the sink and check their XXH3-128 (computed here, or by the
/// decompression thread when the stream does that).
fn copy_entry<P: Plain, S: ContentSink>(
    plain: &mut P,
    entry: &IndexEntry,
    sink: &mut S,
    plain_size: u64,
) -> Result<(), PayloadError> {
    let streamed = plain.digests_entries();
    let mut hasher: Option<Xxh3> = None;
    let mut one_shot = None;
    let mut remaining = entry.len();
    while remaining > 0 {
        let available = fill(plain)?;
        if available.is_empty() {
            return Err(PayloadError::PlainSize {
                expected: plain_size,
                actual: entry.end - remaining,
            });
        }
        let count = available
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let bytes = &available[..count];
        if !streamed {
            if count as u64 == entry.len() {
                // The whole body is in the buffer: hash it in one go.
                one_shot = Some(xxh3_128(bytes));
            } else {
                hasher.get_or_insert_with(Xxh3::new).update(bytes);
            }
        }
        sink.write(bytes).map_err(|source| PayloadError::Sink {
            digest: entry.digest,
            source,
        })?;
        plain.consume(count);
        remaining -= count as u64;
    }
    let actual = if streamed && !entry.is_empty() {
        plain.next_digest().map_err(PayloadError::Decompress)?
    } else {
        one_shot
            .or_else(|| hasher.map(|hasher| hasher.digest128()))
            .unwrap_or_else(|| xxh3_128(&[]))
    };
    if actual != entry.digest {
        return Err(PayloadError::Digest {
            expected: entry.digest,
            actual,
        });
    }
    Ok(())
}

/// Read to the end of the plain stream; returns how many bytes that was.
fn drain<P: BufRead>(plain: &mut P) -> Result<u64, PayloadError> {
    let mut total = 0u64;
    loop {
        let count = fill(plain)?.len();
        if count == 0 {
            return Ok(total);
        }
        plain.consume(count);
        total += count as u64;
    }
}

mod pipeline;
#[cfg(test)]
mod tests;

use pipeline::*;

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

/// Plain bytes delivered to the sink per step when nothing is decompressed.
const PLAIN_CHUNK: usize = 256 * 1024;

/// Stored bytes handed to the zstd decoder per read.
const INPUT_CHUNK: usize = 256 * 1024;

/// Stored chunks queued ahead of the decompression thread, so that it does not wait while the
/// consuming thread is busy in the sink.
const INPUT_BUFFERS: usize = 4;

/// Decompressed bytes per block passed from the decompression thread.
const OUTPUT_CHUNK: usize = 1024 * 1024;

/// Output blocks in flight between the decompression thread and the sink.
const OUTPUT_BUFFERS: usize = 4;

/// Content at least this large is decompressed on a second thread, overlapped with the sink's
/// writes; smaller content is not worth a thread.
const PIPELINE_MIN_PLAIN: u64 = 2 * 1024 * 1024;

/// A zstd decoder over the stored bytes, in the calling thread.
fn inline_decoder<R: Read>(
    stored: R,
) -> Result<BufReader<zstd::stream::read::Decoder<'static, BufReader<R>>>, PayloadError> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(INPUT_CHUNK, stored))
            .map_err(PayloadError::Decompress)?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(PayloadError::Decompress)?;
    Ok(BufReader::with_capacity(PLAIN_CHUNK, decoder))
}

/// Decompress on a scoped second thread while this thread feeds it the stored bytes and hands
/// the plain blocks to the sink. The second thread also computes the payload checksum and every
/// entry's digest, so this thread only reads the file and calls the sink. Only byte blocks,
/// digests and hash states cross threads, so neither the reader nor the sink needs to be
/// `Send`. Falls back to [`inline_decoder`] when no thread can be started.
fn pipelined<R: Read, S: ContentSink>(
    stored: &mut ChecksumReader<R>,
    entries: &[(usize, IndexEntry)],
    sink: &mut S,
    plain_size: u64,
) -> Result<u64, PayloadError> {
    thread::scope(|scope| {
        let (to_main, from_worker) = mpsc::channel();
        let (input, input_queue) = mpsc::channel();
        let (free, free_queue) = mpsc::channel();
        let worker = Worker {
            input: input_queue,
            free: free_queue,
            to_main,
            ranges: digested_ranges(entries, plain_size),
        };
        let spawned = thread::Builder::new()
            .name("stone-unpack".to_owned())
            .spawn_scoped(scope, move || worker.run());
        let Ok(handle) = spawned else {
            return deliver(&mut inline_decoder(stored)?, entries, sink, plain_size);
        };
        for _ in 0..OUTPUT_BUFFERS {
            // Cannot fail: the worker holds the receiver until this function returns.
            let _ = free.send(Vec::new());
        }
        let mut plain = Pipeline {
            stored,
            from_worker,
            input,
            free,
            current: Vec::new(),
            filled: 0,
            position: 0,
            digests: VecDeque::new(),
            ended: false,
        };
        // Chunks queued ahead, so that the decoder does not wait while this thread is in the
        // sink; every chunk it uses up is replaced when this thread next reads its messages.
        let mut result = Ok(0);
        for _ in 0..INPUT_BUFFERS {
            if let Err(error) = plain.feed(Vec::new()) {
                result = Err(PayloadError::Decompress(error));
                break;
            }
        }
        if result.is_ok() {
            result = deliver(&mut plain, entries, sink, plain_size);
        }
        // Closing the channels stops the worker if it is still running (after an error). Join
        // it explicitly rather than through the scope: that waits for the thread to exit
        // completely, thread-local destructors included.
        drop(plain);
        if let Err(panic) = handle.join() {
            panic::resume_unwind(panic);
        }
        result
    })
}

/// What the decompression thread tells the consuming thread.
enum Message {
    /// A block of plain bytes (the buffer and how much of it is filled), and the digests of
    /// the entries that end in it.
    Output(Vec<u8>, usize, Vec<u128>),
    /// The decoder needs more stored bytes; the buffer is handed back for reuse.
    NeedInput(Vec<u8>),
    /// The stream ended cleanly; the XXH3-64 state over every stored byte received.
    End(Box<Xxh3>),
    /// Decompression failed (after every block before the failure was sent).
    Failed(io::Error),
}

/// The decompression thread.
struct Worker {
    input: Receiver<Vec<u8>>,
    free: Receiver<Vec<u8>>,
    to_main: Sender<Message>,
    /// Non-overlapping, sorted ranges of the entries to digest.
    ranges: Vec<(u64, u64)>,
}

impl Worker {
    /// Stored chunks in, plain blocks out, until the stream ends, it fails, or the consumer
    /// goes away.
    fn run(self) {
        let Worker {
            input,
            free,
            to_main,
            ranges,
        } = self;
        let inbox = Inbox {
            input,
            to_main: to_main.clone(),
            buffer: Vec::new(),
            position: 0,
            ended: false,
            checksum: Box::new(Xxh3::new()),
        };
        let digester = Digester {
            ranges,
            next: 0,
            position: 0,
            partial: None,
        };
        if let Err(error) = decompress_blocks(inbox, digester, &free, &to_main) {
            let _ = to_main.send(Message::Failed(error));
        }
    }
}

fn decompress_blocks(
    inbox: Inbox,
    mut digester: Digester,
    free: &Receiver<Vec<u8>>,
    to_main: &Sender<Message>,
) -> io::Result<()> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(inbox)?;
    decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    loop {
        let Ok(mut buffer) = free.recv() else {
            return Ok(()); // the consumer stopped
        };
        buffer.resize(OUTPUT_CHUNK, 0);
        let mut filled = 0;
        let mut result = Ok(false);
        while filled < buffer.len() {
            match decoder.read(&mut buffer[filled..]) {
                Ok(0) => {
                    result = Ok(true);
                    break;
                }
                Ok(count) => filled += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        if filled > 0 {
            let digests = digester.block(&buffer[..filled]);
            if to_main
                .send(Message::Output(buffer, filled, digests))
                .is_err()
            {
                return Ok(());
            }
        }
        if result? {
            let checksum = mem::take(&mut decoder.get_mut().checksum);
            let _ = to_main.send(Message::End(checksum));
            return Ok(());
        }
    }
}

/// Digests entries as their bytes pass through the decompression thread.
struct Digester {
    ranges: Vec<(u64, u64)>,
    /// The next range to finish.
    next: usize,
    /// Plain offset of the next block.
    position: u64,
    /// State of a range that started in an earlier block.
    partial: Option<Xxh3>,
}

impl Digester {
    /// Digest the parts of the ranges in this block; returns the digests of the ranges that
    /// end in it, in order.
    fn block(&mut self, block: &[u8]) -> Vec<u128> {
        let start = self.position;
        let end = start + block.len() as u64;
        self.position = end;
        let mut digests = Vec::new();
        while let Some(&(range_start, range_end)) = self.ranges.get(self.next) {
            if range_start >= end {
                break;
            }
            let from = range_start.max(start);
            let to = range_end.min(end);
            let bytes = &block[(from - start) as usize..(to - start) as usize];
            if from == range_start && to == range_end {
                digests.push(xxh3_128(bytes));
            } else {
                self.partial.get_or_insert_with(Xxh3::new).update(bytes);
                if to < range_end {
                    break; // continues in the next block
                }
                digests.push(self.partial.take().map_or(0, |hasher| hasher.digest128()));
            }
            self.next += 1;
        }
        digests
    }
}

/// The decompression thread's view of the stored bytes: chunks sent by the consuming thread,
/// hashed (XXH3-64) as they arrive.
struct Inbox {
    input: Receiver<Vec<u8>>,
    to_main: Sender<Message>,
    buffer: Vec<u8>,
    position: usize,
    ended: bool,
    checksum: Box<Xxh3>,
}

impl Read for Inbox {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl BufRead for Inbox {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position == self.buffer.len() && !self.ended {
            let spent = mem::take(&mut self.buffer);
            self.position = 0;
            if self.to_main.send(Message::NeedInput(spent)).is_err() {
                return Err(io::Error::other("the content consumer stopped"));
            }
            match self.input.recv() {
                // An empty chunk marks the end of the stored bytes.
                Ok(chunk) if !chunk.is_empty() => {
                    self.checksum.update(&chunk);
                    self.buffer = chunk;
                }
                _ => self.ended = true,
            }
        }
        Ok(&self.buffer[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.buffer.len());
    }
}

/// The consuming thread's view of the plain bytes: blocks from the decompression thread. It
/// also answers the decoder's requests for stored bytes.
struct Pipeline<'a, R> {
    stored: &'a mut ChecksumReader<R>,
    from_worker: Receiver<Message>,
    input: Sender<Vec<u8>>,
    free: Sender<Vec<u8>>,
    current: Vec<u8>,
    filled: usize,
    position: usize,
    digests: VecDeque<u128>,
    ended: bool,
}

impl<R: Read> Pipeline<'_, R> {
    /// Send the next stored chunk (empty at the end of the payload). The worker hashes it.
    fn feed(&mut self, mut buffer: Vec<u8>) -> io::Result<()> {
        buffer.clear();
        buffer.reserve_exact(INPUT_CHUNK);
        (&mut self.stored.inner)
            .take(INPUT_CHUNK as u64)
            .read_to_end(&mut buffer)?;
        // A worker that is gone has sent its reason, which `fill_buf` reports.
        let _ = self.input.send(buffer);
        Ok(())
    }
}

impl<R: Read> Read for Pipeline<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: Read> BufRead for Pipeline<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.position == self.filled && !self.ended {
            if self.current.capacity() > 0 {
                // Hand the spent block back; a worker that is gone does not need it.
                let _ = self.free.send(mem::take(&mut self.current));
            }
            self.filled = 0;
            self.position = 0;
            match self.from_worker.recv() {
                Ok(Message::Output(buffer, filled, digests)) => {
                    self.current = buffer;
                    self.filled = filled;
                    self.digests.extend(digests);
                }
                Ok(Message::NeedInput(buffer)) => self.feed(buffer)?,
                Ok(Message::End(checksum)) => {
                    // Every stored byte read so far went to the worker, which hashed it; the
                    // caller hashes whatever is left.
                    self.stored.hasher = *checksum;
                    self.ended = true;
                }
                Ok(Message::Failed(error)) => {
                    self.ended = true;
                    return Err(error);
                }
                Err(_) => {
                    self.ended = true;
                    return Err(io::Error::other("the decompression thread stopped"));
                }
            }
        }
        Ok(&self.current[self.position..self.filled])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.filled);
    }
}

impl<R: Read> Plain for Pipeline<'_, R> {
    fn digests_entries(&self) -> bool {
        true
    }

    fn next_digest(&mut self) -> io::Result<u128> {
        self.digests
            .pop_front()
            .ok_or_else(|| io::Error::other("the decompression thread sent no digest"))
    }
}

#[cfg(test)]
mod tests {
    //! The content paths: in-thread (small or uncompressed content) and the two-thread pipeline
    //! (zstd content of at least [`PIPELINE_MIN_PLAIN`] bytes) must behave the same.

    use std::io::Cursor;

    use super::*;
    use crate::header::FileType;

    /// Pseudo-random, partly compressible bytes.
    fn body(seed: u64, length: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..length)
            .map(|position| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if position % 97 < 40 { 0 } else { state as u8 }
            })
            .collect()
    }

    /// Contiguous entries over `bodies`, and the concatenated content.
    fn content(bodies: &[Vec<u8>]) -> (Vec<u8>, Vec<IndexEntry>) {
        let mut plain = Vec::new();
        let mut index = Vec::new();
        for bytes in bodies {
            let start = plain.len() as u64;
            plain.extend_from_slice(bytes);
            index.push(IndexEntry {
                start,
                end: plain.len() as u64,
                digest: xxh3_128(bytes),
            });
        }
        (plain, index)
    }

    /// One archive with an index and a content payload whose stored bytes are `stored`.
    fn archive(
        stored: &[u8],
        plain_size: u64,
        compression: Compression,
        index: &[IndexEntry],
    ) -> Vec<u8> {
        let mut index_plain = Vec::new();
        for entry in index {
            entry.encode(&mut index_plain);
        }
        let mut out = ArchiveHeader {
            num_payloads: 2,
            file_type: FileType::Binary,
        }
        .encode()
        .to_vec();
        for (kind, compression, records, plain_size, body) in [
            (
                PayloadKind::Index,
                Compression::None,
                index.len() as u32,
                index_plain.len() as u64,
                index_plain.as_slice(),
            ),
            (PayloadKind::Content, compression, 0, plain_size, stored),
        ] {
            let header = PayloadHeader {
                stored_size: body.len() as u64,
                plain_size,
                checksum: xxh3_64(body),
                num_records: records,
                version: 1,
                kind,
                compression,
            };
            out.extend_from_slice(&header.encode());
            out.extend_from_slice(body);
        }
        out
    }

    fn zstd_archive(plain: &[u8], index: &[IndexEntry]) -> Vec<u8> {
        let stored = zstd::bulk::compress(plain, 3).unwrap();
        archive(&stored, plain.len() as u64, Compression::Zstd, index)
    }

    /// Records every call; optionally fails on the nth write.
    #[derive(Debug, Default)]
    struct Recorder {
        files: Vec<(u128, Vec<u8>)>,
        current: Vec<u8>,
        aborted: Vec<u128>,
        fail_on_write: Option<usize>,
        writes: usize,
    }

    impl ContentSink for Recorder {
        fn begin(&mut self, _: &IndexEntry) -> io::Result<()> {
            self.current.clear();
            Ok(())
        }
        fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.writes += 1;
            if self.fail_on_write == Some(self.writes) {
                return Err(io::Error::other("disk full"));
            }
            self.current.extend_from_slice(bytes);
            Ok(())
        }
        fn finish(&mut self, entry: &IndexEntry) -> io::Result<()> {
            self.files
                .push((entry.digest, mem::take(&mut self.current)));
            Ok(())
        }
        fn abort(&mut self, entry: &IndexEntry) {
            self.aborted.push(entry.digest);
        }
    }

    fn unpack(bytes: Vec<u8>, sink: &mut Recorder) -> Result<()> {
        let mut archive = crate::Archive::from_reader(Cursor::new(bytes))?;
        archive.unpack(sink)
    }

    fn unpack_with(bytes: Vec<u8>, index: &[IndexEntry], sink: &mut Recorder) -> Result<()> {
        let mut archive = crate::Archive::from_reader(Cursor::new(bytes))?;
        let content = archive.content().unwrap();
        archive.reader.unpack_content(&content, index, sink)
    }

    /// Bodies that cross block boundaries, empty ones, tiny ones and one larger than a block.
    fn bodies(total_blocks: usize) -> Vec<Vec<u8>> {
        let mut bodies = vec![body(1, 3 * OUTPUT_CHUNK / 2), Vec::new(), body(2, 1)];
        let mut size = bodies.iter().map(Vec::len).sum::<usize>();
        let mut seed = 3;
        while size < total_blocks * OUTPUT_CHUNK {
            let length = (seed as usize * 7919) % (OUTPUT_CHUNK / 3) + 1;
            bodies.push(body(seed, length));
            size += length;
            seed += 1;
        }
        bodies.push(Vec::new());
        bodies
    }

    fn payload_error(error: Error) -> PayloadError {
        match error {
            Error::Payload { source, .. } => source,
            other => panic!("expected a payload error, got {other}"),
        }
    }

    #[test]
    fn every_path_delivers_every_entry() {
        for (blocks, compression) in [
            (1, Compression::Zstd),
            (5, Compression::Zstd),
            (5, Compression::None),
        ] {
            let bodies = bodies(blocks);
            let (plain, index) = content(&bodies);
            let bytes = match compression {
                Compression::Zstd => zstd_archive(&plain, &index),
                _ => archive(&plain, plain.len() as u64, compression, &index),
            };
            let mut sink = Recorder::default();
            unpack(bytes, &mut sink).unwrap();
            assert_eq!(sink.files.len(), bodies.len());
            for ((digest, written), expected) in sink.files.iter().zip(&bodies) {
                assert_eq!(written, expected);
                assert_eq!(*digest, xxh3_128(expected));
            }
        }
    }

    #[test]
    fn gaps_unordered_entries_and_concatenated_frames_are_handled() {
        let bodies = bodies(4);
        let (plain, index) = content(&bodies);
        // Two frames back to back, as a multi-frame writer would produce.
        let middle = plain.len() / 2;
        let mut stored = zstd::bulk::compress(&plain[..middle], 3).unwrap();
        stored.extend(zstd::bulk::compress(&plain[middle..], 1).unwrap());
        // Every third entry left out (gaps), the rest reversed.
        let kept: Vec<IndexEntry> = index
            .iter()
            .enumerate()
            .filter(|(position, _)| position % 3 != 1)
            .map(|(_, entry)| *entry)
            .rev()
            .collect();
        let bytes = archive(&stored, plain.len() as u64, Compression::Zstd, &kept);
        let mut sink = Recorder::default();
        unpack(bytes, &mut sink).unwrap();
        let expected: Vec<&Vec<u8>> = bodies
            .iter()
            .enumerate()
            .filter(|(position, _)| position % 3 != 1)
            .map(|(_, bytes)| bytes)
            .collect();
        assert_eq!(sink.files.len(), expected.len());
        for ((_, written), expected) in sink.files.iter().zip(expected) {
            assert_eq!(written, expected);
        }
    }

    #[test]
    fn a_wrong_digest_is_reported_and_the_entry_aborted() {
        for blocks in [1, 4] {
            let (plain, mut index) = content(&bodies(blocks));
            let victim = index.len() - 3;
            index[victim].digest ^= 1;
            let mut sink = Recorder::default();
            let error = payload_error(unpack(zstd_archive(&plain, &index), &mut sink).unwrap_err());
            assert!(
                matches!(error, PayloadError::Digest { expected, .. } if expected == index[victim].digest),
                "{error}"
            );
            assert_eq!(sink.files.len(), victim);
            assert_eq!(sink.aborted, [index[victim].digest]);
        }
    }

    #[test]
    fn a_large_first_entry_with_a_wrong_digest_is_caught() {
        let (plain, mut index) = content(&bodies(4));
        index[0].digest ^= 1 << 100;
        let mut sink = Recorder::default();
        let error = payload_error(unpack(zstd_archive(&plain, &index), &mut sink).unwrap_err());
        assert!(matches!(error, PayloadError::Digest { .. }), "{error}");
        assert!(sink.files.is_empty());
    }

    #[test]
    fn a_wrong_payload_checksum_is_reported_after_every_file() {
        for blocks in [1, 4] {
            let (plain, index) = content(&bodies(blocks));
            let mut bytes = zstd_archive(&plain, &index);
            let content_header =
                bytes.len() - zstd::bulk::compress(&plain, 3).unwrap().len() - PAYLOAD_HEADER_SIZE;
            bytes[content_header + 23] ^= 0xff;
            let mut sink = Recorder::default();
            let error = payload_error(unpack(bytes, &mut sink).unwrap_err());
            assert!(matches!(error, PayloadError::Checksum { .. }), "{error}");
            assert_eq!(sink.files.len(), index.len());
        }
    }

    #[test]
    fn plain_size_mismatches_are_reported() {
        for blocks in [1, 4] {
            let (plain, index) = content(&bodies(blocks));
            let stored = zstd::bulk::compress(&plain, 3).unwrap();
            // Header claims more than the stream holds.
            let bytes = archive(&stored, plain.len() as u64 + 5, Compression::Zstd, &index);
            let error = payload_error(unpack(bytes, &mut Recorder::default()).unwrap_err());
            assert!(
                matches!(error, PayloadError::PlainSize { expected, actual }
                    if expected == plain.len() as u64 + 5 && actual == plain.len() as u64),
                "{error}"
            );
            // Header claims less: the stream's surplus is counted, the last entry is past the end.
            let short = plain.len() as u64 - 1;
            let mut trimmed = index.clone();
            trimmed.pop();
            let last = trimmed.pop().unwrap();
            let bytes = archive(&stored, short, Compression::Zstd, &trimmed);
            let error = payload_error(unpack(bytes, &mut Recorder::default()).unwrap_err());
            assert!(
                matches!(error, PayloadError::PlainSize { expected, actual }
                    if expected == short && actual == plain.len() as u64),
                "{error} (last entry ends at {})",
                last.end
            );
        }
    }

    #[test]
    fn overlapping_and_out_of_range_entries_are_errors() {
        for blocks in [1, 4] {
            let (plain, index) = content(&bodies(blocks));
            let bytes = zstd_archive(&plain, &index);
            let mut overlapping = index.clone();
            overlapping[3].start -= 1;
            let mut sink = Recorder::default();
            let error =
                payload_error(unpack_with(bytes.clone(), &overlapping, &mut sink).unwrap_err());
            assert!(
                matches!(error, PayloadError::IndexRange { index: 3, reason, .. } if reason.contains("overlaps")),
                "{error}"
            );
            assert_eq!(sink.files.len(), 3);

            let mut beyond = index.clone();
            let last = beyond.len() - 1;
            beyond[last].start = plain.len() as u64;
            beyond[last].end = plain.len() as u64 + 1;
            let error =
                payload_error(unpack_with(bytes, &beyond, &mut Recorder::default()).unwrap_err());
            assert!(
                matches!(error, PayloadError::IndexRange { reason, .. } if reason.contains("past the end")),
                "{error}"
            );
        }
    }

    #[test]
    fn corrupt_and_truncated_streams_are_errors() {
        for blocks in [1, 4] {
            let (plain, index) = content(&bodies(blocks));
            let stored = zstd::bulk::compress(&plain, 3).unwrap();
            let cut = &stored[..stored.len() * 2 / 3];
            let bytes = archive(cut, plain.len() as u64, Compression::Zstd, &index);
            let error = payload_error(unpack(bytes, &mut Recorder::default()).unwrap_err());
            assert!(matches!(error, PayloadError::Decompress(_)), "{error}");

            let mut garbage = stored.clone();
            garbage.extend_from_slice(b"not a zstd frame");
            let bytes = archive(&garbage, plain.len() as u64, Compression::Zstd, &index);
            let error = payload_error(unpack(bytes, &mut Recorder::default()).unwrap_err());
            assert!(matches!(error, PayloadError::Decompress(_)), "{error}");
        }
    }

    #[test]
    fn a_sink_error_stops_the_stream() {
        for blocks in [1, 4] {
            let (plain, index) = content(&bodies(blocks));
            let mut sink = Recorder {
                fail_on_write: Some(4),
                ..Recorder::default()
            };
            let error = payload_error(unpack(zstd_archive(&plain, &index), &mut sink).unwrap_err());
            assert!(matches!(error, PayloadError::Sink { .. }), "{error}");
            assert_eq!(sink.aborted.len(), 1);
        }
    }

    #[test]
    fn digester_cuts_ranges_across_blocks() {
        let data = body(9, 1000);
        let ranges = vec![(0, 10), (10, 500), (600, 601), (601, 1000)];
        let mut digester = Digester {
            ranges: ranges.clone(),
            next: 0,
            position: 0,
            partial: None,
        };
        let mut digests = Vec::new();
        for block in data.chunks(97) {
            digests.extend(digester.block(block));
        }
        let expected: Vec<u128> = ranges
            .iter()
            .map(|&(start, end)| xxh3_128(&data[start as usize..end as usize]))
            .collect();
        assert_eq!(digests, expected);
    }
}

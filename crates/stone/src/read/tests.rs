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
        let error = payload_error(unpack_with(bytes.clone(), &overlapping, &mut sink).unwrap_err());
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

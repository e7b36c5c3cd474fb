//! Payload headers and the record types of each payload kind.

pub mod attribute;
pub mod index;
pub mod layout;
pub mod meta;

use std::fmt;

use serde::Serialize;

use crate::error::PayloadError;

/// Size of an encoded payload header.
pub const PAYLOAD_HEADER_SIZE: usize = 32;

/// What a payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// Package metadata records.
    Meta,
    /// The concatenated, deduplicated file bodies.
    Content,
    /// Paths, modes and link targets.
    Layout,
    /// Offsets of each file body inside the content.
    Index,
    /// Key/value attributes.
    Attributes,
    /// A kind this reader does not know; skipped.
    Unknown(u8),
}

impl PayloadKind {
    /// Decode the header byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            1 => PayloadKind::Meta,
            2 => PayloadKind::Content,
            3 => PayloadKind::Layout,
            4 => PayloadKind::Index,
            5 => PayloadKind::Attributes,
            other => PayloadKind::Unknown(other),
        }
    }

    /// Encode the header byte.
    pub fn to_byte(self) -> u8 {
        match self {
            PayloadKind::Meta => 1,
            PayloadKind::Content => 2,
            PayloadKind::Layout => 3,
            PayloadKind::Index => 4,
            PayloadKind::Attributes => 5,
            PayloadKind::Unknown(other) => other,
        }
    }

    /// Smallest encoded size of one record, used to bound allocations from a hostile count.
    pub(crate) fn min_record_size(self) -> u64 {
        match self {
            PayloadKind::Meta => meta::RECORD_HEADER_SIZE as u64,
            PayloadKind::Layout => layout::RECORD_FIXED_SIZE as u64,
            PayloadKind::Index => index::RECORD_SIZE as u64,
            PayloadKind::Attributes => attribute::RECORD_FIXED_SIZE as u64,
            PayloadKind::Content | PayloadKind::Unknown(_) => 1,
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadKind::Meta => formatter.write_str("meta"),
            PayloadKind::Content => formatter.write_str("content"),
            PayloadKind::Layout => formatter.write_str("layout"),
            PayloadKind::Index => formatter.write_str("index"),
            PayloadKind::Attributes => formatter.write_str("attributes"),
            PayloadKind::Unknown(byte) => write!(formatter, "unknown kind {byte}"),
        }
    }
}

/// How a payload body is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Stored as is.
    None,
    /// One zstd frame.
    Zstd,
    /// Anything else; the payload is skipped.
    Unknown(u8),
}

impl Compression {
    /// Decode the header byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            1 => Compression::None,
            2 => Compression::Zstd,
            other => Compression::Unknown(other),
        }
    }

    /// Encode the header byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Compression::None => 1,
            Compression::Zstd => 2,
            Compression::Unknown(other) => other,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => formatter.write_str("none"),
            Compression::Zstd => formatter.write_str("zstd"),
            Compression::Unknown(byte) => write!(formatter, "unknown {byte}"),
        }
    }
}

/// The 32-byte header in front of every payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    /// Length of the body as stored (compressed).
    pub stored_size: u64,
    /// Length of the body after decompression.
    pub plain_size: u64,
    /// XXH3-64 of the stored body.
    pub checksum: u64,
    /// Number of records (meaningless for content).
    pub num_records: u32,
    /// Always 1 when written; ignored when read.
    pub version: u16,
    /// What the body holds.
    pub kind: PayloadKind,
    /// How the body is stored.
    pub compression: Compression,
}

impl PayloadHeader {
    /// Decode the 32 header bytes. Every bit pattern is a header; sizes are checked by the reader.
    pub fn decode(bytes: &[u8; PAYLOAD_HEADER_SIZE]) -> Self {
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("eight"));
        Self {
            stored_size: u64_at(0),
            plain_size: u64_at(8),
            checksum: u64_at(16),
            num_records: u32::from_be_bytes(bytes[24..28].try_into().expect("four")),
            version: u16::from_be_bytes([bytes[28], bytes[29]]),
            kind: PayloadKind::from_byte(bytes[30]),
            compression: Compression::from_byte(bytes[31]),
        }
    }

    /// Encode the header.
    pub fn encode(&self) -> [u8; PAYLOAD_HEADER_SIZE] {
        let mut bytes = [0u8; PAYLOAD_HEADER_SIZE];
        bytes[0..8].copy_from_slice(&self.stored_size.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.plain_size.to_be_bytes());
        bytes[16..24].copy_from_slice(&self.checksum.to_be_bytes());
        bytes[24..28].copy_from_slice(&self.num_records.to_be_bytes());
        bytes[28..30].copy_from_slice(&self.version.to_be_bytes());
        bytes[30] = self.kind.to_byte();
        bytes[31] = self.compression.to_byte();
        bytes
    }
}

/// Caps that keep a hostile header from driving huge allocations.
///
/// The defaults are far above anything a real package carries (the largest real layout payloads
/// are a few MiB) while keeping a malicious file's cost bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest plain size of a meta, layout, index or attributes payload.
    pub max_metadata_size: u64,
    /// Largest number of records in one payload.
    pub max_records: u32,
    /// Largest single meta value.
    pub max_meta_value: u32,
    /// Largest attribute key or value.
    pub max_attribute_value: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_metadata_size: 512 * 1024 * 1024,
            max_records: 16 * 1024 * 1024,
            max_meta_value: 16 * 1024 * 1024,
            max_attribute_value: 64 * 1024 * 1024,
        }
    }
}

/// A cursor over a payload's plain bytes that turns running out of data into a record error.
pub(crate) struct RecordCursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> RecordCursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn take(&mut self, length: usize, index: usize) -> Result<&'a [u8], PayloadError> {
        let end = self
            .position
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| PayloadError::Record {
                index,
                reason: format!(
                    "needs {length} bytes at offset {} but the payload ends at {}",
                    self.position,
                    self.bytes.len()
                ),
            })?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self, index: usize) -> Result<[u8; N], PayloadError> {
        Ok(self.take(N, index)?.try_into().expect("exact length"))
    }
}

/// Strip every trailing NUL, as older writers count one in string lengths.
pub(crate) fn trim_nuls(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |at| at + 1);
    &bytes[..end]
}

/// Decode a UTF-8 string field, naming the record on failure.
pub(crate) fn decode_text(bytes: &[u8], index: usize, field: &str) -> Result<String, PayloadError> {
    std::str::from_utf8(trim_nuls(bytes))
        .map(str::to_owned)
        .map_err(|error| PayloadError::Record {
            index,
            reason: format!("{field} is not valid UTF-8 ({error})"),
        })
}

//! Typed errors of the stone reader and writer.
//!
//! Every message names the object that is wrong (the archive, the payload by position and kind,
//! the record by number) so that a user can tell a truncated download from a hostile file.

use std::{io, path::PathBuf};

use crate::payload::PayloadKind;

/// Everything that can go wrong while reading or writing a stone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the underlying file failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// The first four bytes are not `\0mos`.
    #[error("not a stone archive: the magic number is {found:#010x}, expected 0x006d6f73")]
    BadMagic {
        /// The big-endian value found at offset 0.
        found: u32,
    },

    /// The fixed integrity bytes of the archive header differ.
    #[error(
        "corrupt archive header: the integrity bytes at offset 6 do not match the stone format"
    )]
    CorruptHeader,

    /// The archive header names a format version this reader does not know.
    #[error("unsupported stone format version {0}; only version 1 is known")]
    UnsupportedVersion(u32),

    /// The file ends before the header or a payload was complete.
    #[error("the archive is truncated: {what}")]
    Truncated {
        /// What was being read when the data ran out.
        what: String,
    },

    /// The file carries data after the last payload.
    #[error("the archive has {0} unexpected trailing bytes after its last payload")]
    TrailingData(u64),

    /// Something is wrong inside one payload.
    #[error("payload #{index} ({kind}): {source}")]
    Payload {
        /// Position of the payload in the archive, from 0.
        index: usize,
        /// Kind of the payload as declared in its header.
        kind: PayloadKind,
        /// What is wrong.
        #[source]
        source: PayloadError,
    },

    /// The writer was given something it cannot encode.
    #[error("cannot write stone: {0}")]
    Write(String),

    /// An error while reading or writing a named file.
    #[error("{}: {source}", path.display())]
    File {
        /// The stone file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Attach the path of the file being read or written.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            already @ Error::File { .. } => already,
            other => Error::File {
                path: path.into(),
                source: Box::new(other),
            },
        }
    }

    /// The innermost error, without the file wrapper.
    pub fn root(&self) -> &Error {
        match self {
            Error::File { source, .. } => source.root(),
            other => other,
        }
    }
}

/// What is wrong with one payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Reading the payload body failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// The XXH3-64 checksum of the stored bytes differs from the header.
    #[error("checksum mismatch: header says {expected:016x}, stored bytes hash to {actual:016x}")]
    Checksum {
        /// Checksum from the payload header.
        expected: u64,
        /// Checksum of the bytes actually stored.
        actual: u64,
    },

    /// The zstd stream could not be decoded.
    #[error("invalid zstd data: {0}")]
    Decompress(io::Error),

    /// The plain size after decompression differs from the header.
    #[error("size mismatch: header says {expected} plain bytes, the body holds {actual}")]
    PlainSize {
        /// Plain size from the header.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },

    /// A declared size or count is beyond what this reader accepts.
    #[error("{what} of {value} exceeds the limit of {limit}")]
    Limit {
        /// The field.
        what: &'static str,
        /// The declared value.
        value: u64,
        /// The limit in force.
        limit: u64,
    },

    /// One record inside the payload is malformed.
    #[error("record #{index}: {reason}")]
    Record {
        /// Position of the record, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// The records did not use exactly the payload's plain bytes.
    #[error("{records} records used {used} of {plain} plain bytes")]
    RecordBytes {
        /// Number of records decoded.
        records: u32,
        /// Bytes they used.
        used: u64,
        /// Plain size of the payload.
        plain: u64,
    },

    /// The records decode but do not describe a package.
    #[error("incomplete package metadata: {0}")]
    Metadata(#[from] crate::package::MetadataError),

    /// The payload's compression is not one this reader decodes.
    #[error("unknown compression {0}")]
    UnknownCompression(u8),

    /// A file's content does not hash to the digest the index records.
    #[error("content for digest {expected:032x} hashes to {actual:032x}")]
    Digest {
        /// Digest from the index.
        expected: u128,
        /// Digest of the bytes found.
        actual: u128,
    },

    /// An index entry points outside the content or overlaps another entry.
    #[error("index entry #{index} ({start}..{end}) {reason}")]
    IndexRange {
        /// Position of the index entry.
        index: usize,
        /// Its start offset.
        start: u64,
        /// Its end offset.
        end: u64,
        /// What is wrong with the range.
        reason: &'static str,
    },

    /// Writing an extracted file failed.
    #[error("writing the file for digest {digest:032x} failed: {source}")]
    Sink {
        /// Digest of the file being written.
        digest: u128,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

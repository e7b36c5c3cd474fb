//! Index payload records: where each unique file body sits in the content.

use super::RecordCursor;
use crate::error::PayloadError;

/// Size of one index record.
pub const RECORD_SIZE: usize = 32;

/// One file body's range in the decompressed content, and its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// Offset of the first byte in the decompressed content.
    pub start: u64,
    /// Exclusive end offset.
    pub end: u64,
    /// XXH3-128 of `content[start..end]`.
    pub digest: u128,
}

impl IndexEntry {
    /// Length of the file body.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.start.to_be_bytes());
        out.extend_from_slice(&self.end.to_be_bytes());
        out.extend_from_slice(&self.digest.to_be_bytes());
    }

    pub(crate) fn decode(
        cursor: &mut RecordCursor<'_>,
        index: usize,
    ) -> Result<Self, PayloadError> {
        let bytes: [u8; RECORD_SIZE] = cursor.array(index)?;
        let entry = IndexEntry {
            start: u64::from_be_bytes(bytes[0..8].try_into().expect("eight")),
            end: u64::from_be_bytes(bytes[8..16].try_into().expect("eight")),
            digest: u128::from_be_bytes(bytes[16..32].try_into().expect("sixteen")),
        };
        if entry.end < entry.start {
            return Err(PayloadError::IndexRange {
                index,
                start: entry.start,
                end: entry.end,
                reason: "ends before it starts",
            });
        }
        Ok(entry)
    }
}

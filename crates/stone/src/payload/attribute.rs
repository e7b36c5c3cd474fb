//! Attributes payload records: opaque key/value pairs (defined by the format, unused in the wild).

use super::RecordCursor;
use crate::error::PayloadError;

/// Size of the fixed part of an attribute record.
pub const RECORD_FIXED_SIZE: usize = 16;

/// One attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// Raw key bytes.
    pub key: Vec<u8>,
    /// Raw value bytes.
    pub value: Vec<u8>,
}

impl Attribute {
    /// Append the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.key.len() as u64).to_be_bytes());
        out.extend_from_slice(&(self.value.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.value);
    }

    pub(crate) fn decode(
        cursor: &mut RecordCursor<'_>,
        index: usize,
        max_length: u64,
    ) -> Result<Self, PayloadError> {
        let fixed: [u8; RECORD_FIXED_SIZE] = cursor.array(index)?;
        let key_length = u64::from_be_bytes(fixed[0..8].try_into().expect("eight"));
        let value_length = u64::from_be_bytes(fixed[8..16].try_into().expect("eight"));
        for (what, length) in [
            ("attribute key length", key_length),
            ("attribute value length", value_length),
        ] {
            if length > max_length {
                return Err(PayloadError::Limit {
                    what,
                    value: length,
                    limit: max_length,
                });
            }
        }
        let key = cursor.take(key_length as usize, index)?.to_vec();
        let value = cursor.take(value_length as usize, index)?.to_vec();
        Ok(Attribute { key, value })
    }
}

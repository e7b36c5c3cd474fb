//! The 32-byte archive header at the start of every stone.

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};

/// `"\0mos"` as a big-endian u32.
pub const MAGIC: u32 = 0x006D_6F73;

/// Fixed bytes at offset 6..27 that every V1 header carries.
pub const INTEGRITY: [u8; 21] = [
    0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 0, 0, 6, 0, 0, 7,
];

/// The only format version defined.
pub const VERSION_1: u32 = 1;

/// Size of the encoded archive header.
pub const HEADER_SIZE: usize = 32;

/// What a stone file contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// An installable package.
    Binary,
    /// Reserved by the format; nothing produces it.
    Delta,
    /// A repository index (`stone.index`).
    Repository,
    /// A build manifest (`manifest.<arch>.bin`).
    #[serde(rename = "buildmanifest")]
    BuildManifest,
    /// Any other value; kept so that callers can decide.
    Unknown(u8),
}

impl FileType {
    /// Decode the header byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            1 => FileType::Binary,
            2 => FileType::Delta,
            3 => FileType::Repository,
            4 => FileType::BuildManifest,
            other => FileType::Unknown(other),
        }
    }

    /// Encode the header byte.
    pub fn to_byte(self) -> u8 {
        match self {
            FileType::Binary => 1,
            FileType::Delta => 2,
            FileType::Repository => 3,
            FileType::BuildManifest => 4,
            FileType::Unknown(other) => other,
        }
    }

    /// The name used in JSON output (`binary`, `delta`, `repository`, `buildmanifest`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Binary => "binary",
            FileType::Delta => "delta",
            FileType::Repository => "repository",
            FileType::BuildManifest => "buildmanifest",
            FileType::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The decoded archive header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveHeader {
    /// Number of payloads that follow the header.
    pub num_payloads: u16,
    /// What the archive contains.
    pub file_type: FileType,
}

impl ArchiveHeader {
    /// Decode and validate the 32 header bytes.
    pub fn decode(bytes: &[u8; HEADER_SIZE]) -> Result<Self> {
        let magic = u32::from_be_bytes(bytes[0..4].try_into().expect("four bytes"));
        if magic != MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        if bytes[6..27] != INTEGRITY {
            return Err(Error::CorruptHeader);
        }
        let version = u32::from_be_bytes(bytes[28..32].try_into().expect("four bytes"));
        if version != VERSION_1 {
            return Err(Error::UnsupportedVersion(version));
        }
        Ok(Self {
            num_payloads: u16::from_be_bytes([bytes[4], bytes[5]]),
            file_type: FileType::from_byte(bytes[27]),
        })
    }

    /// Encode the header.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut bytes = [0u8; HEADER_SIZE];
        bytes[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        bytes[4..6].copy_from_slice(&self.num_payloads.to_be_bytes());
        bytes[6..27].copy_from_slice(&INTEGRITY);
        bytes[27] = self.file_type.to_byte();
        bytes[28..32].copy_from_slice(&VERSION_1.to_be_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = ArchiveHeader {
            num_payloads: 4,
            file_type: FileType::Binary,
        };
        let bytes = header.encode();
        assert_eq!(&bytes[0..4], b"\0mos");
        assert_eq!(ArchiveHeader::decode(&bytes).unwrap(), header);
    }

    #[test]
    fn bad_magic_and_version_are_named() {
        let mut bytes = ArchiveHeader {
            num_payloads: 1,
            file_type: FileType::Repository,
        }
        .encode();
        bytes[31] = 2;
        assert!(matches!(
            ArchiveHeader::decode(&bytes),
            Err(Error::UnsupportedVersion(2))
        ));
        bytes[0] = b'P';
        assert!(matches!(
            ArchiveHeader::decode(&bytes),
            Err(Error::BadMagic { .. })
        ));
    }
}

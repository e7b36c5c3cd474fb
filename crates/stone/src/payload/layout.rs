//! Layout payload records: what goes where on disk.

use super::{RecordCursor, decode_text, trim_nuls};
use crate::error::PayloadError;

/// Size of the fixed part of a layout record.
pub const RECORD_FIXED_SIZE: usize = 32;

/// What sort of file a layout entry creates, with its type-specific data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entry {
    /// A regular file whose body is the content with this XXH3-128 digest.
    Regular {
        /// XXH3-128 of the file body.
        digest: u128,
        /// Install path, relative to `/usr`.
        target: String,
    },
    /// A symbolic link.
    Symlink {
        /// The link text (what `readlink` returns).
        source: String,
        /// Install path of the link, relative to `/usr`.
        target: String,
    },
    /// A directory.
    Directory(String),
    /// A character device (recorded, never materialised).
    CharacterDevice(String),
    /// A block device (recorded, never materialised).
    BlockDevice(String),
    /// A named pipe (recorded, never materialised).
    Fifo(String),
    /// A socket (recorded, never materialised).
    Socket(String),
    /// An unknown file type, kept opaque.
    Unknown {
        /// The file type byte.
        file_type: u8,
        /// Source bytes.
        source: Vec<u8>,
        /// Target bytes.
        target: Vec<u8>,
    },
}

impl Entry {
    /// The install path relative to `/usr`, when the type is known.
    pub fn target(&self) -> Option<&str> {
        match self {
            Entry::Regular { target, .. } | Entry::Symlink { target, .. } => Some(target),
            Entry::Directory(target)
            | Entry::CharacterDevice(target)
            | Entry::BlockDevice(target)
            | Entry::Fifo(target)
            | Entry::Socket(target) => Some(target),
            Entry::Unknown { .. } => None,
        }
    }

    /// The name of the file type as shown to users and in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Entry::Regular { .. } => "regular",
            Entry::Symlink { .. } => "symlink",
            Entry::Directory(_) => "directory",
            Entry::CharacterDevice(_) => "character-device",
            Entry::BlockDevice(_) => "block-device",
            Entry::Fifo(_) => "fifo",
            Entry::Socket(_) => "socket",
            Entry::Unknown { .. } => "unknown",
        }
    }

    fn file_type(&self) -> u8 {
        match self {
            Entry::Regular { .. } => 1,
            Entry::Symlink { .. } => 2,
            Entry::Directory(_) => 3,
            Entry::CharacterDevice(_) => 4,
            Entry::BlockDevice(_) => 5,
            Entry::Fifo(_) => 6,
            Entry::Socket(_) => 7,
            Entry::Unknown { file_type, .. } => *file_type,
        }
    }
}

/// One layout record: ownership, mode and the entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Full `st_mode`, including the file-type bits.
    pub mode: u32,
    /// Reserved; always 0 in the wild, kept for round trips.
    pub tag: u32,
    /// What is created.
    pub entry: Entry,
}

impl Layout {
    /// Append the encoded record to `out`. Strings are written without a NUL (current writer).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let (source, target): (&[u8], &[u8]) = match &self.entry {
            Entry::Regular { digest, target } => {
                out.reserve(RECORD_FIXED_SIZE + 16 + target.len());
                return self.encode_parts(out, &digest.to_be_bytes(), target.as_bytes());
            }
            Entry::Symlink { source, target } => (source.as_bytes(), target.as_bytes()),
            Entry::Directory(target)
            | Entry::CharacterDevice(target)
            | Entry::BlockDevice(target)
            | Entry::Fifo(target)
            | Entry::Socket(target) => (&[], target.as_bytes()),
            Entry::Unknown { source, target, .. } => (source, target),
        };
        self.encode_parts(out, source, target)
    }

    fn encode_parts(&self, out: &mut Vec<u8>, source: &[u8], target: &[u8]) -> Result<(), String> {
        let length = |bytes: &[u8], what: &str| {
            u16::try_from(bytes.len()).map_err(|_| {
                format!(
                    "layout {what} of `{}` is {} bytes, more than the format's 65535",
                    String::from_utf8_lossy(target),
                    bytes.len()
                )
            })
        };
        let source_length = length(source, "source")?;
        let target_length = length(target, "target")?;
        out.extend_from_slice(&self.uid.to_be_bytes());
        out.extend_from_slice(&self.gid.to_be_bytes());
        out.extend_from_slice(&self.mode.to_be_bytes());
        out.extend_from_slice(&self.tag.to_be_bytes());
        out.extend_from_slice(&source_length.to_be_bytes());
        out.extend_from_slice(&target_length.to_be_bytes());
        out.push(self.entry.file_type());
        out.extend_from_slice(&[0u8; 11]);
        out.extend_from_slice(source);
        out.extend_from_slice(target);
        Ok(())
    }

    /// Decode one record at the cursor.
    pub(crate) fn decode(
        cursor: &mut RecordCursor<'_>,
        index: usize,
    ) -> Result<Self, PayloadError> {
        let fixed: [u8; RECORD_FIXED_SIZE] = cursor.array(index)?;
        let u32_at = |at: usize| u32::from_be_bytes(fixed[at..at + 4].try_into().expect("four"));
        let source_length = u16::from_be_bytes([fixed[16], fixed[17]]) as usize;
        let target_length = u16::from_be_bytes([fixed[18], fixed[19]]) as usize;
        let file_type = fixed[20];
        let source = cursor.take(source_length, index)?;
        let target = cursor.take(target_length, index)?;
        let text = |bytes: &[u8], field: &str| decode_text(bytes, index, field);
        let target_text = || -> Result<String, PayloadError> {
            let path = text(target, "target path")?;
            if path.is_empty() {
                return Err(PayloadError::Record {
                    index,
                    reason: "target path is empty".to_owned(),
                });
            }
            Ok(path)
        };
        let entry = match file_type {
            1 => {
                let digest: [u8; 16] = source.try_into().map_err(|_| PayloadError::Record {
                    index,
                    reason: format!(
                        "regular file source must be a 16-byte digest, found {} bytes",
                        source.len()
                    ),
                })?;
                Entry::Regular {
                    digest: u128::from_be_bytes(digest),
                    target: target_text()?,
                }
            }
            2 => Entry::Symlink {
                source: text(source, "symlink source")?,
                target: target_text()?,
            },
            3 => Entry::Directory(target_text()?),
            4 => Entry::CharacterDevice(target_text()?),
            5 => Entry::BlockDevice(target_text()?),
            6 => Entry::Fifo(target_text()?),
            7 => Entry::Socket(target_text()?),
            other => Entry::Unknown {
                file_type: other,
                source: trim_nuls(source).to_vec(),
                target: trim_nuls(target).to_vec(),
            },
        };
        Ok(Layout {
            uid: u32_at(0),
            gid: u32_at(4),
            mode: u32_at(8),
            tag: u32_at(12),
            entry,
        })
    }
}

/// Encode many records back to back (the body of a layout payload).
pub fn encode_all<'a>(layouts: impl IntoIterator<Item = &'a Layout>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for layout in layouts {
        layout.encode(&mut out)?;
    }
    Ok(out)
}

/// Decode records back to back until `bytes` is used up.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Layout>, PayloadError> {
    let mut cursor = RecordCursor::new(bytes);
    let mut layouts = Vec::with_capacity(bytes.len() / 64);
    while cursor.position() < bytes.len() {
        let index = layouts.len();
        layouts.push(Layout::decode(&mut cursor, index)?);
    }
    Ok(layouts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_terminated_strings_of_the_old_writer_are_accepted() {
        let layout = Layout {
            uid: 0,
            gid: 0,
            mode: 0o120777,
            tag: 0,
            entry: Entry::Symlink {
                source: "7z\0".into(),
                target: "share/x/7za\0".into(),
            },
        };
        let mut out = Vec::new();
        layout.encode(&mut out).unwrap();
        let decoded = Layout::decode(&mut RecordCursor::new(&out), 0).unwrap();
        assert_eq!(
            decoded.entry,
            Entry::Symlink {
                source: "7z".into(),
                target: "share/x/7za".into()
            }
        );
    }

    #[test]
    fn regular_source_of_wrong_length_is_an_error() {
        let mut out = Vec::new();
        Layout {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            tag: 0,
            entry: Entry::Unknown {
                file_type: 1,
                source: vec![1, 2, 3],
                target: b"bin/x".to_vec(),
            },
        }
        .encode(&mut out)
        .unwrap();
        let error = Layout::decode(&mut RecordCursor::new(&out), 7).unwrap_err();
        assert!(error.to_string().contains("record #7"), "{error}");
        assert!(error.to_string().contains("16-byte digest"), "{error}");
    }
}

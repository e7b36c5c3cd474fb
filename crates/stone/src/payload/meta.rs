//! Meta payload records: tags, primitive values, dependencies and providers.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{RecordCursor, decode_text};
use crate::error::PayloadError;

/// Size of the fixed part of a meta record.
pub const RECORD_HEADER_SIZE: usize = 8;

/// What a meta record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// Package name.
    Name,
    /// Architecture, e.g. `x86_64`.
    Architecture,
    /// Upstream version text.
    Version,
    /// One-line summary.
    Summary,
    /// Longer description.
    Description,
    /// Project home page.
    Homepage,
    /// Source package grouping id.
    SourceId,
    /// A dependency (repeatable).
    Depends,
    /// A provider (repeatable).
    Provides,
    /// A conflict (repeatable).
    Conflicts,
    /// Recipe release number.
    Release,
    /// SPDX licence id (repeatable).
    License,
    /// Build counter.
    BuildRelease,
    /// Repository index only: location of the `.stone` relative to the index.
    PackageUri,
    /// Repository index only: SHA-256 of the `.stone`.
    PackageHash,
    /// Repository index only: size of the `.stone`.
    PackageSize,
    /// Build manifests: a build dependency (repeatable).
    BuildDepends,
    /// Upstream source URL.
    SourceUri,
    /// Path inside the upstream source.
    SourcePath,
    /// Git ref or commit of the source.
    SourceRef,
    /// A tag this reader does not know; kept and skipped.
    Unknown(u16),
}

impl Tag {
    /// Decode the wire value.
    pub fn from_u16(value: u16) -> Self {
        match value {
            1 => Tag::Name,
            2 => Tag::Architecture,
            3 => Tag::Version,
            4 => Tag::Summary,
            5 => Tag::Description,
            6 => Tag::Homepage,
            7 => Tag::SourceId,
            8 => Tag::Depends,
            9 => Tag::Provides,
            10 => Tag::Conflicts,
            11 => Tag::Release,
            12 => Tag::License,
            13 => Tag::BuildRelease,
            14 => Tag::PackageUri,
            15 => Tag::PackageHash,
            16 => Tag::PackageSize,
            17 => Tag::BuildDepends,
            18 => Tag::SourceUri,
            19 => Tag::SourcePath,
            20 => Tag::SourceRef,
            other => Tag::Unknown(other),
        }
    }

    /// Encode the wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            Tag::Name => 1,
            Tag::Architecture => 2,
            Tag::Version => 3,
            Tag::Summary => 4,
            Tag::Description => 5,
            Tag::Homepage => 6,
            Tag::SourceId => 7,
            Tag::Depends => 8,
            Tag::Provides => 9,
            Tag::Conflicts => 10,
            Tag::Release => 11,
            Tag::License => 12,
            Tag::BuildRelease => 13,
            Tag::PackageUri => 14,
            Tag::PackageHash => 15,
            Tag::PackageSize => 16,
            Tag::BuildDepends => 17,
            Tag::SourceUri => 18,
            Tag::SourcePath => 19,
            Tag::SourceRef => 20,
            Tag::Unknown(other) => other,
        }
    }
}

/// The kind of a dependency or provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DependencyKind {
    /// A plain package name.
    Name,
    /// An ELF soname with its ABI tag, e.g. `libc.so.6(x86_64)`.
    Soname,
    /// A pkg-config module.
    PkgConfig,
    /// An ELF interpreter.
    Interpreter,
    /// A CMake package.
    CMake,
    /// A Python module or distribution.
    Python,
    /// An executable in `/usr/bin`.
    Binary,
    /// An executable in `/usr/sbin`.
    SystemBinary,
    /// A 32-bit (emul32) pkg-config module.
    PkgConfig32,
    /// A kind this reader does not know.
    Unknown(u8),
}

impl DependencyKind {
    /// Every known kind, in wire order.
    pub const KNOWN: [DependencyKind; 9] = [
        DependencyKind::Name,
        DependencyKind::Soname,
        DependencyKind::PkgConfig,
        DependencyKind::Interpreter,
        DependencyKind::CMake,
        DependencyKind::Python,
        DependencyKind::Binary,
        DependencyKind::SystemBinary,
        DependencyKind::PkgConfig32,
    ];

    /// Decode the wire byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            0 => DependencyKind::Name,
            1 => DependencyKind::Soname,
            2 => DependencyKind::PkgConfig,
            3 => DependencyKind::Interpreter,
            4 => DependencyKind::CMake,
            5 => DependencyKind::Python,
            6 => DependencyKind::Binary,
            7 => DependencyKind::SystemBinary,
            8 => DependencyKind::PkgConfig32,
            other => DependencyKind::Unknown(other),
        }
    }

    /// Encode the wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            DependencyKind::Name => 0,
            DependencyKind::Soname => 1,
            DependencyKind::PkgConfig => 2,
            DependencyKind::Interpreter => 3,
            DependencyKind::CMake => 4,
            DependencyKind::Python => 5,
            DependencyKind::Binary => 6,
            DependencyKind::SystemBinary => 7,
            DependencyKind::PkgConfig32 => 8,
            DependencyKind::Unknown(other) => other,
        }
    }

    /// The name used in the text form `kind(target)`.
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyKind::Name => "name",
            DependencyKind::Soname => "soname",
            DependencyKind::PkgConfig => "pkgconfig",
            DependencyKind::Interpreter => "interpreter",
            DependencyKind::CMake => "cmake",
            DependencyKind::Python => "python",
            DependencyKind::Binary => "binary",
            DependencyKind::SystemBinary => "sysbinary",
            DependencyKind::PkgConfig32 => "pkgconfig32",
            DependencyKind::Unknown(_) => "unknown",
        }
    }
}

/// A dependency or provider: a kind and an opaque target, matched by exact equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// What sort of thing is named.
    pub kind: DependencyKind,
    /// The name, e.g. `libc.so.6(x86_64)`.
    pub target: String,
}

impl Dependency {
    /// A dependency on a plain package name.
    pub fn name(target: impl Into<String>) -> Self {
        Self {
            kind: DependencyKind::Name,
            target: target.into(),
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}({})", self.kind.as_str(), self.target)
    }
}

impl Ord for Dependency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Canonical order is by text form, as upstream sorts them.
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for Dependency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Dependency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The text form could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dependency `{text}`: {reason}")]
pub struct ParseDependencyError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Dependency {
    type Err = ParseDependencyError;

    /// Parse `kind(target)`; a string without `(` is shorthand for `name(string)`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| ParseDependencyError {
            text: text.to_owned(),
            reason,
        };
        let Some((kind, rest)) = text.split_once('(') else {
            if text.is_empty() {
                return Err(error("it is empty"));
            }
            return Ok(Dependency::name(text));
        };
        let target = rest
            .strip_suffix(')')
            .ok_or_else(|| error("it must end with `)`"))?;
        if target.is_empty() {
            return Err(error("the target between the parentheses is empty"));
        }
        let kind = DependencyKind::KNOWN
            .into_iter()
            .find(|known| known.as_str() == kind)
            .ok_or_else(|| error("unknown kind; expected one of name, soname, pkgconfig, interpreter, cmake, python, binary, sysbinary, pkgconfig32"))?;
        Ok(Dependency {
            kind,
            target: target.to_owned(),
        })
    }
}

/// The value of a meta record, with its primitive kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Kind 1.
    Int8(i8),
    /// Kind 2.
    Uint8(u8),
    /// Kind 3.
    Int16(i16),
    /// Kind 4.
    Uint16(u16),
    /// Kind 5.
    Int32(i32),
    /// Kind 6.
    Uint32(u32),
    /// Kind 7.
    Int64(i64),
    /// Kind 8.
    Uint64(u64),
    /// Kind 9: UTF-8, NUL-terminated on the wire.
    String(String),
    /// Kind 10.
    Dependency(Dependency),
    /// Kind 11.
    Provider(Dependency),
    /// Any other kind: raw bytes, kept opaque.
    Unknown {
        /// The primitive kind byte.
        kind: u8,
        /// The value bytes.
        bytes: Vec<u8>,
    },
}

impl Value {
    /// The value as an unsigned integer, from any integer kind (as upstream moss reads numbers).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int8(value) => u64::try_from(value).ok(),
            Value::Uint8(value) => Some(value.into()),
            Value::Int16(value) => u64::try_from(value).ok(),
            Value::Uint16(value) => Some(value.into()),
            Value::Int32(value) => u64::try_from(value).ok(),
            Value::Uint32(value) => Some(value.into()),
            Value::Int64(value) => u64::try_from(value).ok(),
            Value::Uint64(value) => Some(value),
            _ => None,
        }
    }

    /// The value as text, for string kinds.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    fn kind_byte(&self) -> u8 {
        match self {
            Value::Int8(_) => 1,
            Value::Uint8(_) => 2,
            Value::Int16(_) => 3,
            Value::Uint16(_) => 4,
            Value::Int32(_) => 5,
            Value::Uint32(_) => 6,
            Value::Int64(_) => 7,
            Value::Uint64(_) => 8,
            Value::String(_) => 9,
            Value::Dependency(_) => 10,
            Value::Provider(_) => 11,
            Value::Unknown { kind, .. } => *kind,
        }
    }
}

/// One meta record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What the record describes.
    pub tag: Tag,
    /// Its value.
    pub value: Value,
}

impl Record {
    /// Build a record.
    pub fn new(tag: Tag, value: Value) -> Self {
        Self { tag, value }
    }

    /// Append the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut value = Vec::new();
        match &self.value {
            Value::Int8(number) => value.extend_from_slice(&number.to_be_bytes()),
            Value::Uint8(number) => value.push(*number),
            Value::Int16(number) => value.extend_from_slice(&number.to_be_bytes()),
            Value::Uint16(number) => value.extend_from_slice(&number.to_be_bytes()),
            Value::Int32(number) => value.extend_from_slice(&number.to_be_bytes()),
            Value::Uint32(number) => value.extend_from_slice(&number.to_be_bytes()),
            Value::Int64(number) => value.extend_from_slice(&number.to_be_bytes()),
            Value::Uint64(number) => value.extend_from_slice(&number.to_be_bytes()),
            Value::String(text) => {
                value.extend_from_slice(text.as_bytes());
                value.push(0);
            }
            Value::Dependency(dependency) | Value::Provider(dependency) => {
                value.push(dependency.kind.to_byte());
                value.extend_from_slice(dependency.target.as_bytes());
                value.push(0);
            }
            Value::Unknown { bytes, .. } => value.extend_from_slice(bytes),
        }
        let length = u32::try_from(value.len()).expect("meta values are far below 4 GiB");
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.tag.to_u16().to_be_bytes());
        out.push(self.value.kind_byte());
        out.push(0);
        out.extend_from_slice(&value);
    }

    /// Decode one record at the cursor.
    pub(crate) fn decode(
        cursor: &mut RecordCursor<'_>,
        index: usize,
        max_value: u32,
    ) -> Result<Self, PayloadError> {
        let header: [u8; RECORD_HEADER_SIZE] = cursor.array(index)?;
        let length = u32::from_be_bytes(header[0..4].try_into().expect("four"));
        if length > max_value {
            return Err(PayloadError::Limit {
                what: "meta value length",
                value: length.into(),
                limit: max_value.into(),
            });
        }
        let tag = Tag::from_u16(u16::from_be_bytes([header[4], header[5]]));
        let kind = header[6];
        let bytes = cursor.take(length as usize, index)?;
        let fixed = |width: usize| -> Result<&[u8], PayloadError> {
            // Upstream ignores the length for integers; a mismatch would desync it, so reject it.
            if bytes.len() == width {
                Ok(bytes)
            } else {
                Err(PayloadError::Record {
                    index,
                    reason: format!(
                        "integer kind {kind} needs {width} bytes but the record holds {}",
                        bytes.len()
                    ),
                })
            }
        };
        let dependency = |bytes: &[u8]| -> Result<Dependency, PayloadError> {
            let (&kind_byte, target) = bytes.split_first().ok_or_else(|| PayloadError::Record {
                index,
                reason: "dependency record is empty".to_owned(),
            })?;
            Ok(Dependency {
                kind: DependencyKind::from_byte(kind_byte),
                target: decode_text(target, index, "dependency target")?,
            })
        };
        let value = match kind {
            1 => Value::Int8(i8::from_be_bytes(fixed(1)?.try_into().expect("1"))),
            2 => Value::Uint8(fixed(1)?[0]),
            3 => Value::Int16(i16::from_be_bytes(fixed(2)?.try_into().expect("2"))),
            4 => Value::Uint16(u16::from_be_bytes(fixed(2)?.try_into().expect("2"))),
            5 => Value::Int32(i32::from_be_bytes(fixed(4)?.try_into().expect("4"))),
            6 => Value::Uint32(u32::from_be_bytes(fixed(4)?.try_into().expect("4"))),
            7 => Value::Int64(i64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
            8 => Value::Uint64(u64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
            9 => Value::String(decode_text(bytes, index, "string value")?),
            10 => Value::Dependency(dependency(bytes)?),
            11 => Value::Provider(dependency(bytes)?),
            other => Value::Unknown {
                kind: other,
                bytes: bytes.to_vec(),
            },
        };
        Ok(Record { tag, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_text_form_round_trips() {
        for text in [
            "soname(libc.so.6(x86_64))",
            "interpreter(/usr/lib/ld-linux-x86-64.so.2(x86_64))",
            "pkgconfig32(libattr)",
            "sysbinary(fdisk)",
            "name(acl)",
        ] {
            let dependency: Dependency = text.parse().unwrap();
            assert_eq!(dependency.to_string(), text);
        }
        assert_eq!(
            "acl".parse::<Dependency>().unwrap(),
            Dependency::name("acl")
        );
        assert!("weird(x)".parse::<Dependency>().is_err());
        assert!("soname(x".parse::<Dependency>().is_err());
    }

    #[test]
    fn integer_length_mismatch_is_rejected() {
        // value_length 4 for a Uint64 record.
        let bytes = [0, 0, 0, 4, 0, 11, 8, 0, 0, 0, 0, 1];
        let mut cursor = RecordCursor::new(&bytes);
        let error = Record::decode(&mut cursor, 0, 1024).unwrap_err();
        assert!(error.to_string().contains("needs 8 bytes"), "{error}");
    }

    #[test]
    fn string_record_strips_nul() {
        let mut out = Vec::new();
        Record::new(Tag::Name, Value::String("acl".into())).encode(&mut out);
        assert_eq!(out, [0, 0, 0, 4, 0, 1, 9, 0, b'a', b'c', b'l', 0]);
        let mut cursor = RecordCursor::new(&out);
        let record = Record::decode(&mut cursor, 0, 1024).unwrap();
        assert_eq!(record.value.as_str(), Some("acl"));
    }
}

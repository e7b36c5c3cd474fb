//! Helpers shared by the stone integration tests: fixture paths, an in-memory content sink, a
//! rewrite through [`stone::Writer`] and a tiny payload-level editor for building broken files.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    io::{self, Cursor},
    path::{Path, PathBuf},
};

use stone::{
    Archive, ContentSink, ContentSource, FileType, IndexEntry, PayloadHeader, PayloadKind, Writer,
};

/// The `shared/` directory that sits beside the repository (`<x>/main` and `<x>/shared`):
/// the nearest ancestor of this crate that holds `shared/fixtures`.
pub fn shared() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|shared| shared.join("fixtures").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/fixtures beside the repository above {}",
                manifest_dir.display()
            )
        })
}

/// A fixture stone by file name.
pub fn stone(name: &str) -> PathBuf {
    shared().join("fixtures/stones").join(name)
}

pub const BASH_COMPLETION: &str = "bash-completion-2.11-1-1-x86_64.stone";
pub const PIZZA: &str = "italian-pizza-1-1-1-x86_64.stone";
pub const PINEAPPLE: &str = "pineapple-1-1-1-x86_64.stone";

/// Every `.stone` in `fixtures/stones`, sorted.
pub fn fixture_stones() -> Vec<PathBuf> {
    let mut stones: Vec<PathBuf> = std::fs::read_dir(shared().join("fixtures/stones"))
        .expect("fixtures/stones is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "stone")
        })
        .collect();
    stones.sort();
    assert!(
        stones.len() >= 3,
        "expected the three fixture stones, found {stones:?}"
    );
    stones
}

/// Every `recipes/*/*/manifest.x86_64.bin`, sorted.
pub fn fixture_manifests() -> Vec<PathBuf> {
    let mut manifests = Vec::new();
    let recipes = shared().join("fixtures/recipes");
    for letter in std::fs::read_dir(&recipes).expect("fixtures/recipes is readable") {
        let letter = letter.expect("directory entry").path();
        if !letter.is_dir() {
            continue;
        }
        for recipe in std::fs::read_dir(&letter).expect("recipe letter dir is readable") {
            let manifest = recipe
                .expect("directory entry")
                .path()
                .join("manifest.x86_64.bin");
            if manifest.is_file() {
                manifests.push(manifest);
            }
        }
    }
    manifests.sort();
    assert!(
        manifests.len() >= 200,
        "expected the ~203 fixture manifests, found {}",
        manifests.len()
    );
    manifests
}

/// A sink that keeps every verified body in memory, keyed by digest.
#[derive(Debug, Default)]
pub struct CollectSink {
    pub bodies: BTreeMap<u128, Vec<u8>>,
    pub order: Vec<IndexEntry>,
    current: Vec<u8>,
    pub aborted: usize,
}

impl ContentSink for CollectSink {
    fn begin(&mut self, _: &IndexEntry) -> io::Result<()> {
        self.current.clear();
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.current.extend_from_slice(bytes);
        Ok(())
    }
    fn finish(&mut self, entry: &IndexEntry) -> io::Result<()> {
        assert_eq!(
            self.current.len() as u64,
            entry.len(),
            "finish after a short body"
        );
        self.order.push(*entry);
        self.bodies
            .insert(entry.digest, std::mem::take(&mut self.current));
        Ok(())
    }
    fn abort(&mut self, _: &IndexEntry) {
        self.current.clear();
        self.aborted += 1;
    }
}

/// Open a stone from bytes.
pub fn open_bytes(bytes: &[u8]) -> stone::Result<Archive<Cursor<Vec<u8>>>> {
    Archive::from_reader(Cursor::new(bytes.to_vec()))
}

/// Unpack everything into memory.
pub fn collect<R: io::Read + io::Seek>(archive: &mut Archive<R>) -> stone::Result<CollectSink> {
    let mut sink = CollectSink::default();
    archive.unpack(&mut sink)?;
    Ok(sink)
}

/// How the meta payloads are fed to the writer on a rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSource {
    /// `Package::to_records` of the typed view.
    Typed,
    /// The raw records as decoded.
    Raw,
}

/// Read an archive fully and write it again with [`Writer`].
pub fn rewrite<R: io::Read + io::Seek>(archive: &mut Archive<R>, meta: MetaSource) -> Vec<u8> {
    let file_type: FileType = archive.file_type();
    let mut writer = Writer::new(file_type);
    match meta {
        MetaSource::Typed => {
            for package in archive.packages().expect("typed packages") {
                writer.add_meta(package.to_records());
            }
        }
        MetaSource::Raw => {
            for (_, records) in archive.meta() {
                writer.add_meta(records.to_vec());
            }
        }
    }
    for layout in archive.layouts() {
        writer.add_layout(layout.clone());
    }
    for attribute in archive.attributes() {
        writer.add_attribute(attribute.clone());
    }
    let contents = collect(archive).expect("content unpacks");
    for (digest, body) in contents.bodies {
        let added = writer
            .add_content(ContentSource::Bytes(body))
            .expect("in-memory content");
        assert_eq!(added, digest, "the writer digests bodies like the reader");
    }
    let mut out = Vec::new();
    writer
        .write(&mut out)
        .expect("the writer accepts what the reader produced");
    out
}

/// One payload as stored: header and stored body, for building broken files.
#[derive(Debug, Clone)]
pub struct RawPayload {
    /// Offset of the payload header in the file.
    pub offset: usize,
    pub header: PayloadHeader,
    pub stored: Vec<u8>,
}

impl RawPayload {
    /// Offset of the first body byte.
    pub fn body_offset(&self) -> usize {
        self.offset + 32
    }

    /// Offset just past the body.
    pub fn end(&self) -> usize {
        self.body_offset() + self.stored.len()
    }

    /// The plain bytes (zstd-decoded if needed).
    pub fn plain(&self) -> Vec<u8> {
        match self.header.compression {
            stone::Compression::Zstd => zstd::stream::decode_all(self.stored.as_slice())
                .expect("fixture payload decompresses"),
            _ => self.stored.clone(),
        }
    }

    /// Replace the plain bytes: recompress, fix stored/plain size and checksum.
    pub fn set_plain(&mut self, plain: &[u8]) {
        self.set_stored(zstd::bulk::compress(plain, 3).expect("compress"));
        self.header.plain_size = plain.len() as u64;
    }

    /// Replace the stored bytes and give them a valid checksum.
    pub fn set_stored(&mut self, stored: Vec<u8>) {
        self.header.stored_size = stored.len() as u64;
        self.header.checksum = xxhash_rust::xxh3::xxh3_64(&stored);
        self.stored = stored;
    }
}

/// A stone split into its archive header and payloads, without any checking beyond framing.
#[derive(Debug, Clone)]
pub struct RawStone {
    pub header: [u8; 32],
    pub payloads: Vec<RawPayload>,
}

impl RawStone {
    /// Split well-formed bytes.
    pub fn parse(bytes: &[u8]) -> Self {
        let header: [u8; 32] = bytes[..32].try_into().expect("archive header");
        let count = u16::from_be_bytes([bytes[4], bytes[5]]);
        let mut offset = 32;
        let mut payloads = Vec::new();
        for _ in 0..count {
            let header =
                PayloadHeader::decode(bytes[offset..offset + 32].try_into().expect("32 bytes"));
            let body = offset + 32;
            let end = body + header.stored_size as usize;
            payloads.push(RawPayload {
                offset,
                header,
                stored: bytes[body..end].to_vec(),
            });
            offset = end;
        }
        assert_eq!(offset, bytes.len(), "fixture has no trailing bytes");
        Self { header, payloads }
    }

    /// Encode again (offsets in `payloads` are not updated).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header.to_vec();
        out[4..6].copy_from_slice(&(self.payloads.len() as u16).to_be_bytes());
        for payload in &self.payloads {
            out.extend_from_slice(&payload.header.encode());
            out.extend_from_slice(&payload.stored);
        }
        out
    }

    /// Position of the first payload of this kind.
    pub fn position(&self, kind: PayloadKind) -> usize {
        self.payloads
            .iter()
            .position(|payload| payload.header.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} payload"))
    }

    pub fn payload_mut(&mut self, kind: PayloadKind) -> &mut RawPayload {
        let position = self.position(kind);
        &mut self.payloads[position]
    }
}

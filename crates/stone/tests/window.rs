//! Upstream writes with `windowLog = 31`: frames that declare windows far above zstd's default
//! decoder limit (2^27) must still decode.

use std::io::{Cursor, Write};

use stone::{
    Archive, ArchiveHeader, Compression, ContentSink, Entry, FileType, IndexEntry, Layout, Package,
    PayloadHeader, PayloadKind,
};

struct Collect(Vec<u8>);

impl ContentSink for Collect {
    fn begin(&mut self, _: &IndexEntry) -> std::io::Result<()> {
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    fn finish(&mut self, _: &IndexEntry) -> std::io::Result<()> {
        Ok(())
    }
    fn abort(&mut self, _: &IndexEntry) {}
}

fn payload(out: &mut Vec<u8>, kind: PayloadKind, records: u32, plain: &[u8], stored: &[u8]) {
    let header = PayloadHeader {
        stored_size: stored.len() as u64,
        plain_size: plain.len() as u64,
        checksum: xxhash_rust::xxh3::xxh3_64(stored),
        num_records: records,
        version: 1,
        kind,
        compression: Compression::Zstd,
    };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(stored);
}

fn compress(plain: &[u8], window_log: u32) -> Vec<u8> {
    // A streaming encoder with no pledged size declares the full window in the frame header.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.window_log(window_log).unwrap();
    encoder.write_all(plain).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn frames_declaring_windows_up_to_two_gib_decode() {
    for window_log in [28, 30, 31] {
        let body: Vec<u8> = (0..700_000u32)
            .flat_map(|value| value.to_le_bytes())
            .collect();
        let digest = stone::digest(&body);
        let package = Package::from_records(&[
            stone::Record::new(stone::Tag::Name, stone::Value::String("big-window".into())),
            stone::Record::new(stone::Tag::Version, stone::Value::String("1".into())),
            stone::Record::new(stone::Tag::Release, stone::Value::Uint64(1)),
            stone::Record::new(stone::Tag::BuildRelease, stone::Value::Uint64(1)),
            stone::Record::new(
                stone::Tag::Architecture,
                stone::Value::String("x86_64".into()),
            ),
            stone::Record::new(stone::Tag::Summary, stone::Value::String("s".into())),
            stone::Record::new(stone::Tag::Description, stone::Value::String("d".into())),
            stone::Record::new(
                stone::Tag::SourceId,
                stone::Value::String("big-window".into()),
            ),
            stone::Record::new(stone::Tag::Homepage, stone::Value::String("h".into())),
        ])
        .unwrap();
        let mut meta = Vec::new();
        let records = package.to_records();
        for record in &records {
            record.encode(&mut meta);
        }
        let mut layout = Vec::new();
        Layout {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            tag: 0,
            entry: Entry::Regular {
                digest,
                target: "share/big".into(),
            },
        }
        .encode(&mut layout)
        .unwrap();
        let mut index = Vec::new();
        IndexEntry {
            start: 0,
            end: body.len() as u64,
            digest,
        }
        .encode(&mut index);
        let mut out = ArchiveHeader {
            num_payloads: 4,
            file_type: FileType::Binary,
        }
        .encode()
        .to_vec();
        payload(
            &mut out,
            PayloadKind::Meta,
            records.len() as u32,
            &meta,
            &compress(&meta, window_log),
        );
        payload(
            &mut out,
            PayloadKind::Layout,
            1,
            &layout,
            &compress(&layout, window_log),
        );
        payload(
            &mut out,
            PayloadKind::Index,
            1,
            &index,
            &compress(&index, window_log),
        );
        payload(
            &mut out,
            PayloadKind::Content,
            0,
            &body,
            &compress(&body, window_log),
        );
        let mut archive = Archive::from_reader(Cursor::new(out)).unwrap();
        assert_eq!(archive.packages().unwrap()[0].name, "big-window");
        let mut sink = Collect(Vec::new());
        archive.unpack(&mut sink).unwrap();
        assert_eq!(sink.0, body, "window log {window_log}");
    }
}

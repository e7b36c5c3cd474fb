//! A malformed corpus, generated in-test from valid stones (bash-completion, pizza and one made
//! with `stone::Writer`): every corruption yields an `Err` whose message names the payload and
//! what is wrong, and nothing panics. A single-byte-flip sweep over the pizza stone checks that
//! every flip of a checked byte is caught.

mod common;

use std::{
    io::Write,
    panic::{AssertUnwindSafe, catch_unwind},
};

use common::{BASH_COMPLETION, CollectSink, PIZZA, RawStone, open_bytes};
use stone::{
    Attribute, Body, Compression, ContentSource, DiscardSink, Entry, FileType, Layout, PayloadKind,
    Record, Tag, Value, Writer,
};

/// Open, read the packages and unpack everything; the first error's full message.
fn outcome(bytes: &[u8]) -> Result<(), String> {
    let mut archive = open_bytes(bytes).map_err(|error| error.to_string())?;
    archive.packages().map_err(|error| error.to_string())?;
    archive
        .unpack(&mut DiscardSink)
        .map_err(|error| error.to_string())
}

/// Like [`outcome`], but a panic becomes a test failure naming the case.
fn checked(case: &str, bytes: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| outcome(bytes)))
        .unwrap_or_else(|_| panic!("{case}: the reader panicked"))
}

/// The case must fail with a message containing every `needle`.
#[track_caller]
fn assert_fails(case: &str, bytes: &[u8], needles: &[&str]) -> String {
    match checked(case, bytes) {
        Ok(()) => panic!("{case}: accepted, expected an error containing {needles:?}"),
        Err(message) => {
            for needle in needles {
                assert!(
                    message.contains(needle),
                    "{case}: error `{message}` does not mention `{needle}`"
                );
            }
            message
        }
    }
}

/// The case must fail when opened (not only later, when unpacking).
#[track_caller]
fn assert_open_fails(case: &str, bytes: &[u8], needles: &[&str]) {
    let opened = catch_unwind(AssertUnwindSafe(|| open_bytes(bytes).map(drop)))
        .unwrap_or_else(|_| panic!("{case}: the reader panicked"));
    let message = match opened {
        Ok(()) => panic!("{case}: opened, expected an error containing {needles:?}"),
        Err(error) => error.to_string(),
    };
    for needle in needles {
        assert!(
            message.contains(needle),
            "{case}: error `{message}` does not mention `{needle}`"
        );
    }
}

fn bash_completion() -> Vec<u8> {
    std::fs::read(common::stone(BASH_COMPLETION)).unwrap()
}

fn pizza() -> Vec<u8> {
    std::fs::read(common::stone(PIZZA)).unwrap()
}

/// A package with every payload kind: meta, layout, attributes, index, content.
fn writer_made() -> Vec<u8> {
    let mut writer = Writer::new(FileType::Binary);
    let text = |tag, value: &str| Record::new(tag, Value::String(value.into()));
    writer.add_meta(vec![
        text(Tag::Name, "corpus"),
        text(Tag::Version, "1.0"),
        Record::new(Tag::Release, Value::Uint64(3)),
        Record::new(Tag::BuildRelease, Value::Uint64(1)),
        text(Tag::Architecture, "x86_64"),
        text(Tag::Summary, "malformed corpus base"),
        text(Tag::Description, "A package to break."),
        text(Tag::SourceId, "corpus"),
        text(Tag::Homepage, "https://example.invalid"),
        text(Tag::License, "MPL-2.0"),
        Record::new(
            Tag::Depends,
            Value::Dependency("soname(libc.so.6(x86_64))".parse().unwrap()),
        ),
    ]);
    let tool: Vec<u8> = (0..20_000u32)
        .flat_map(|i| (i * 7919).to_le_bytes())
        .collect();
    writer
        .add_file("bin/tool", 0o100755, ContentSource::Bytes(tool))
        .unwrap();
    writer
        .add_file(
            "lib/libx.so.1",
            0o100644,
            ContentSource::Bytes(b"ELF-ish".repeat(300)),
        )
        .unwrap();
    for doc in ["share/doc/a", "share/doc/b"] {
        writer
            .add_file(doc, 0o100644, ContentSource::Bytes(b"same text\n".to_vec()))
            .unwrap();
    }
    writer
        .add_file("share/empty", 0o100644, ContentSource::Bytes(Vec::new()))
        .unwrap();
    writer.add_layout(Layout {
        uid: 0,
        gid: 0,
        mode: 0o120777,
        tag: 0,
        entry: Entry::Symlink {
            source: "libx.so.1".into(),
            target: "lib/libx.so".into(),
        },
    });
    writer.add_layout(Layout {
        uid: 0,
        gid: 0,
        mode: 0o40755,
        tag: 0,
        entry: Entry::Directory("share/empty-dir".into()),
    });
    writer.add_attribute(Attribute {
        key: b"key".to_vec(),
        value: b"value".to_vec(),
    });
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    out
}

/// Every base stone with a name, checked to be valid first.
fn bases() -> Vec<(&'static str, Vec<u8>)> {
    let bases = vec![
        ("bash-completion", bash_completion()),
        ("pizza", pizza()),
        ("writer-made", writer_made()),
    ];
    for (name, bytes) in &bases {
        checked(name, bytes).unwrap_or_else(|error| panic!("{name} base is invalid: {error}"));
    }
    let kinds: Vec<PayloadKind> = RawStone::parse(&bases[2].1)
        .payloads
        .iter()
        .map(|p| p.header.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            PayloadKind::Meta,
            PayloadKind::Layout,
            PayloadKind::Attributes,
            PayloadKind::Index,
            PayloadKind::Content
        ]
    );
    bases
}

#[test]
fn truncation_is_named_at_every_boundary() {
    for (name, bytes) in bases() {
        let raw = RawStone::parse(&bytes);
        for cut in [0, 1, 4, 16, 31] {
            assert_fails(
                &format!("{name} cut at {cut}"),
                &bytes[..cut],
                &["truncated", "shorter than the 32-byte archive header"],
            );
        }
        for (index, payload) in raw.payloads.iter().enumerate() {
            let kind = payload.header.kind.to_string();
            // At the payload header (= between payloads) and inside it.
            for cut in [payload.offset, payload.offset + 1, payload.offset + 31] {
                assert_open_fails(
                    &format!("{name} cut at {cut}, payload #{index} header"),
                    &bytes[..cut],
                    &["truncated", &format!("payload #{index} header is missing")],
                );
            }
            // Inside the body.
            let body = payload.body_offset();
            let length = payload.stored.len();
            for cut in [body, body + 1, body + length / 2, body + length - 1] {
                if cut >= payload.end() {
                    continue;
                }
                let declared = format!(
                    "payload #{index} ({kind}) declares {length} stored bytes but only {} remain",
                    cut - body
                );
                assert_open_fails(
                    &format!("{name} cut at {cut}, payload #{index} body"),
                    &bytes[..cut],
                    &["truncated", &declared],
                );
            }
        }
        // Many more offsets, each must fail somehow (and never panic).
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            assert_fails(
                &format!("{name} cut at {cut}"),
                &bytes[..cut],
                &["truncated"],
            );
        }
    }
}

#[test]
fn a_truncated_file_is_named() {
    let bytes = pizza();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes[..200]).unwrap();
    let error = stone::Archive::open(file.path()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&file.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("truncated"), "{message}");
    assert!(matches!(error.root(), stone::Error::Truncated { .. }));
}

#[test]
fn archive_header_corruption() {
    for (name, bytes) in bases() {
        let mut bad = bytes.clone();
        bad[..4].copy_from_slice(b"PK\x03\x04");
        assert_fails(
            &format!("{name} magic"),
            &bad,
            &["not a stone archive", "0x504b0304"],
        );

        for at in 6..27 {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert_fails(
                &format!("{name} integrity byte {at}"),
                &bad,
                &["corrupt archive header", "integrity bytes"],
            );
        }

        for version in [0u32, 2, u32::MAX] {
            let mut bad = bytes.clone();
            bad[28..32].copy_from_slice(&version.to_be_bytes());
            assert_fails(
                &format!("{name} version {version}"),
                &bad,
                &["unsupported stone format version", &version.to_string()],
            );
        }

        // An unknown file type is accepted by the decoder; callers decide.
        let mut odd = bytes.clone();
        odd[27] = 9;
        assert_eq!(open_bytes(&odd).unwrap().file_type(), FileType::Unknown(9));

        // Payload count off by one either way.
        let count = u16::from_be_bytes([bytes[4], bytes[5]]);
        let mut more = bytes.clone();
        more[4..6].copy_from_slice(&(count + 1).to_be_bytes());
        assert_fails(
            &format!("{name} one payload too many"),
            &more,
            &["truncated", &format!("payload #{count} header is missing")],
        );
        let mut fewer = bytes.clone();
        fewer[4..6].copy_from_slice(&(count - 1).to_be_bytes());
        assert_fails(
            &format!("{name} one payload too few"),
            &fewer,
            &["trailing bytes"],
        );
        let mut huge = bytes.clone();
        huge[4..6].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_fails(&format!("{name} 65535 payloads"), &huge, &["truncated"]);
    }
}

#[test]
fn trailing_garbage_is_refused() {
    for (name, bytes) in bases() {
        for garbage in [&b"\0"[..], b"garbage", &[0u8; 32], &bytes[..64]] {
            let mut bad = bytes.clone();
            bad.extend_from_slice(garbage);
            assert_fails(
                &format!("{name} + {} trailing bytes", garbage.len()),
                &bad,
                &[&format!("{} unexpected trailing bytes", garbage.len())],
            );
        }
    }
}

/// Apply `edit` to payload `index` of `bytes` and re-encode.
fn edit(bytes: &[u8], index: usize, edit: impl FnOnce(&mut common::RawPayload)) -> Vec<u8> {
    let mut raw = RawStone::parse(bytes);
    edit(&mut raw.payloads[index]);
    raw.encode()
}

#[test]
fn payload_header_corruption_names_the_payload() {
    for (name, bytes) in bases() {
        let raw = RawStone::parse(&bytes);
        let last = raw.payloads.len() - 1;
        for (index, payload) in raw.payloads.iter().enumerate() {
            let kind = payload.header.kind;
            let label = format!("payload #{index} ({kind})");
            let case = |what: &str| format!("{name} {label} {what}");
            let is_content = kind == PayloadKind::Content;

            // Checksum: metadata payloads fail on open, content when unpacked.
            let bad = edit(&bytes, index, |p| p.header.checksum ^= 1);
            let expected = format!("{:016x}", payload.header.checksum ^ 1);
            assert_fails(
                &case("checksum"),
                &bad,
                &[&label, "checksum mismatch", &expected],
            );
            if is_content {
                open_bytes(&bad).expect("content checksums are checked on unpack");
            }

            // Record counts.
            let bad = edit(&bytes, index, |p| p.header.num_records = u32::MAX);
            if is_content {
                // Meaningless for content (the D writer put the index count there): ignored.
                checked(&case("num_records"), &bad).unwrap();
            } else {
                assert_open_fails(
                    &case("num_records = u32::MAX"),
                    &bad,
                    &[&label, "record count of 4294967295 exceeds the limit"],
                );
                let records = payload.header.num_records;
                let bad = edit(&bytes, index, |p| p.header.num_records = records + 1);
                // Either the count is refused up front (it cannot fit the plain size at the
                // smallest record size) or the extra record runs off the end.
                let message = assert_fails(&case("one record too many"), &bad, &[&label]);
                assert!(
                    message.contains(&format!("record count of {} exceeds", records + 1))
                        || message.contains(&format!("record #{records}: needs")),
                    "{}: {message}",
                    case("one record too many")
                );
                if records > 0 {
                    let bad = edit(&bytes, index, |p| p.header.num_records = records - 1);
                    assert_open_fails(
                        &case("one record too few"),
                        &bad,
                        &[&label, &format!("{} records used", records - 1)],
                    );
                }
            }

            // Stored size: the largest value, one more and one less.
            let bad = edit(&bytes, index, |p| p.header.stored_size = u64::MAX);
            assert_open_fails(
                &case("stored_size = u64::MAX"),
                &bad,
                &[&format!(
                    "{label} declares 18446744073709551615 stored bytes but only"
                )],
            );
            let stored = payload.header.stored_size;
            let bad = edit(&bytes, index, |p| p.header.stored_size = stored + 1);
            if index == last {
                assert_open_fails(&case("stored_size + 1"), &bad, &["truncated", &label]);
            } else {
                assert_open_fails(&case("stored_size + 1"), &bad, &[&label]);
            }
            if stored > 0 {
                let bad = edit(&bytes, index, |p| p.header.stored_size = stored - 1);
                assert_fails(&case("stored_size - 1"), &bad, &[]);
            }

            // Plain size.
            let bad = edit(&bytes, index, |p| p.header.plain_size = u64::MAX);
            if is_content {
                assert_fails(
                    &case("plain_size = u64::MAX"),
                    &bad,
                    &[&label, "size mismatch", "18446744073709551615"],
                );
            } else {
                assert_open_fails(
                    &case("plain_size = u64::MAX"),
                    &bad,
                    &[
                        &label,
                        "plain size of 18446744073709551615 exceeds the limit",
                    ],
                );
            }
            let plain = payload.header.plain_size;
            let bad = edit(&bytes, index, |p| p.header.plain_size = plain + 1);
            assert_fails(&case("plain_size + 1"), &bad, &[&label, "size mismatch"]);
            if plain > 0 {
                let bad = edit(&bytes, index, |p| p.header.plain_size = plain - 1);
                let reason = match kind {
                    PayloadKind::Content => "reaches past the end",
                    // 32-byte records: a short plain size cannot hold the declared count.
                    PayloadKind::Index => "record count of",
                    _ => "size mismatch",
                };
                assert_fails(&case("plain_size - 1"), &bad, &[&label, reason]);
            }

            // Garbage that is not zstd, with a valid checksum.
            let bad = edit(&bytes, index, |p| {
                p.set_stored(b"this is not a zstd frame".to_vec())
            });
            assert_fails(&case("garbage zstd"), &bad, &[&label, "invalid zstd data"]);

            // Unknown compression: metadata payloads are skipped as upstream does, content
            // cannot be unpacked.
            let bad = edit(&bytes, index, |p| {
                p.header.compression = Compression::Unknown(7)
            });
            if is_content {
                assert_fails(
                    &case("compression 7"),
                    &bad,
                    &[&label, "unknown compression 7"],
                );
            } else {
                let archive = open_bytes(&bad).unwrap();
                assert_eq!(
                    archive.payloads()[index].body,
                    Body::Skipped,
                    "{}",
                    case("skip")
                );
            }

            // Stored without compression is legal and reads the same.
            if !is_content {
                let plain_bytes = payload.plain();
                let same = edit(&bytes, index, |p| {
                    p.set_stored(plain_bytes);
                    p.header.compression = Compression::None;
                });
                let before = open_bytes(&bytes).unwrap();
                let after = open_bytes(&same).unwrap();
                assert_eq!(before.payloads()[index].body, after.payloads()[index].body);
            }
        }
    }
}

/// Replace the plain bytes of the first payload of `kind` (valid sizes and checksum).
fn with_plain(bytes: &[u8], kind: PayloadKind, change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut raw = RawStone::parse(bytes);
    let payload = raw.payload_mut(kind);
    let mut plain = payload.plain();
    change(&mut plain);
    payload.set_plain(&plain);
    raw.encode()
}

#[test]
fn tampered_content_fails_its_digest() {
    for (name, bytes) in bases() {
        let raw = RawStone::parse(&bytes);
        let content_index = raw.position(PayloadKind::Content);
        let label = format!("payload #{content_index} (content)");
        let archive = open_bytes(&bytes).unwrap();
        let index: Vec<_> = archive.index().copied().collect();
        let Some(victim) = index.iter().find(|entry| !entry.is_empty()).copied() else {
            continue; // pizza: only an empty file
        };
        // One flipped byte in the plain content, recompressed with a valid checksum.
        let bad = with_plain(&bytes, PayloadKind::Content, |plain| {
            plain[(victim.start + victim.len() / 2) as usize] ^= 0x20;
        });
        let message = assert_fails(
            &format!("{name} flipped content byte"),
            &bad,
            &[
                &label,
                &format!("content for digest {:032x} hashes to", victim.digest),
            ],
        );
        assert!(!message.contains("checksum"), "{message}");
        // The sink was told to drop the broken body.
        let mut sink = CollectSink::default();
        open_bytes(&bad).unwrap().unpack(&mut sink).unwrap_err();
        assert_eq!(sink.aborted, 1, "{name}");
        assert!(!sink.bodies.contains_key(&victim.digest), "{name}");

        // A flipped stored byte without fixing the checksum: zstd, digest or checksum error.
        let content = &raw.payloads[content_index];
        for at in [
            0,
            content.stored.len() / 3,
            content.stored.len() / 2,
            content.stored.len() - 1,
        ] {
            let mut bad = bytes.clone();
            bad[content.body_offset() + at] ^= 0x55;
            let message =
                assert_fails(&format!("{name} stored content byte {at}"), &bad, &[&label]);
            assert!(
                [
                    "checksum mismatch",
                    "invalid zstd",
                    "hashes to",
                    "size mismatch"
                ]
                .iter()
                .any(|reason| message.contains(reason)),
                "{name} stored content byte {at}: {message}"
            );
        }
    }
}

/// Rewrite one 32-byte index record.
fn with_index_entry(bytes: &[u8], entry: usize, change: impl FnOnce(&mut [u8])) -> Vec<u8> {
    with_plain(bytes, PayloadKind::Index, |plain| {
        change(&mut plain[entry * 32..entry * 32 + 32]);
    })
}

#[test]
fn bad_index_entries_are_named() {
    for (name, bytes) in bases() {
        let raw = RawStone::parse(&bytes);
        let content_label = format!("payload #{} (content)", raw.position(PayloadKind::Content));
        let index_label = format!("payload #{} (index)", raw.position(PayloadKind::Index));
        let archive = open_bytes(&bytes).unwrap();
        let entries: Vec<_> = archive.index().copied().collect();
        let plain_size = archive.content().unwrap().header.plain_size;
        let last = entries.len() - 1;

        // A wrong digest.
        let wrong = entries[0].digest ^ 0xdead_beef;
        let bad = with_index_entry(&bytes, 0, |record| {
            record[16..32].copy_from_slice(&wrong.to_be_bytes());
        });
        assert_fails(
            &format!("{name} wrong index digest"),
            &bad,
            &[
                &content_label,
                &format!(
                    "content for digest {wrong:032x} hashes to {:032x}",
                    entries[0].digest
                ),
            ],
        );

        // Past the end of the content.
        let bad = with_index_entry(&bytes, last, |record| {
            record[8..16].copy_from_slice(&(plain_size + 1).to_be_bytes());
        });
        assert_fails(
            &format!("{name} index past the end"),
            &bad,
            &[
                &content_label,
                &format!("index entry #{last}"),
                "reaches past the end",
            ],
        );

        // Ends before it starts: refused when the index is decoded.
        let bad = with_index_entry(&bytes, 0, |record| {
            record[0..8].copy_from_slice(&10u64.to_be_bytes());
            record[8..16].copy_from_slice(&9u64.to_be_bytes());
        });
        assert_open_fails(
            &format!("{name} index end before start"),
            &bad,
            &[&index_label, "index entry #0 (10..9) ends before it starts"],
        );

        // Overlapping entries.
        if entries.len() > 1 && !entries[0].is_empty() {
            let bad = with_index_entry(&bytes, 1, |record| {
                record[0..8].copy_from_slice(&(entries[0].end - 1).to_be_bytes());
            });
            assert_fails(
                &format!("{name} overlapping index"),
                &bad,
                &[
                    &content_label,
                    "index entry #1",
                    "overlaps the previous entry",
                ],
            );
        }

        // An index payload whose plain size is not a multiple of 32.
        let bad = with_plain(&bytes, PayloadKind::Index, |plain| plain.push(0));
        assert_open_fails(
            &format!("{name} index + 1 byte"),
            &bad,
            &[&index_label, "records used"],
        );
    }
}

/// Encode records as a meta payload's plain bytes.
fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut plain = Vec::new();
    for record in records {
        record.encode(&mut plain);
    }
    plain
}

#[test]
fn bad_meta_and_layout_records_are_named() {
    let bytes = writer_made();
    let archive = open_bytes(&bytes).unwrap();
    let records: Vec<Record> = archive.meta().next().unwrap().1.to_vec();

    // A value length beyond the payload.
    let bad = with_plain(&bytes, PayloadKind::Meta, |plain| {
        plain[0..4].copy_from_slice(&1_000u32.to_be_bytes());
    });
    assert_open_fails(
        "meta value too long",
        &bad,
        &["payload #0 (meta)", "record #0", "needs 1000 bytes"],
    );
    let bad = with_plain(&bytes, PayloadKind::Meta, |plain| {
        plain[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
    });
    assert_open_fails(
        "meta value u32::MAX",
        &bad,
        &[
            "payload #0 (meta)",
            "meta value length of 4294967295 exceeds the limit",
        ],
    );

    // An integer with the wrong width (upstream would desync): Release as 4 bytes.
    let mut short = encode_records(&records[..2]);
    short.extend_from_slice(&[0, 0, 0, 4, 0, 11, 8, 0, 0, 0, 0, 3]);
    short.extend_from_slice(&encode_records(&records[3..]));
    let bad = with_plain(&bytes, PayloadKind::Meta, |plain| *plain = short);
    assert_open_fails(
        "short integer",
        &bad,
        &["payload #0 (meta)", "record #2", "needs 8 bytes"],
    );

    // Invalid UTF-8 in the name.
    let bad = with_plain(&bytes, PayloadKind::Meta, |plain| {
        plain[8] = 0xff;
    });
    assert_open_fails(
        "bad utf-8",
        &bad,
        &["payload #0 (meta)", "record #0", "not valid UTF-8"],
    );

    // A missing required field is reported when the package is built.
    let without_name: Vec<Record> = records
        .iter()
        .filter(|r| r.tag != Tag::Name)
        .cloned()
        .collect();
    let mut raw = RawStone::parse(&bytes);
    raw.payloads[0].set_plain(&encode_records(&without_name));
    raw.payloads[0].header.num_records = without_name.len() as u32;
    let bad = raw.encode();
    let archive = open_bytes(&bad).unwrap();
    let message = archive.packages().unwrap_err().to_string();
    assert!(message.contains("payload #0 (meta)"), "{message}");
    assert!(message.contains("missing metadata field Name"), "{message}");
    // A required field with the wrong kind.
    let mut wrong_kind = records.clone();
    wrong_kind[2] = Record::new(Tag::Release, Value::String("three".into()));
    let bad = with_plain(&bytes, PayloadKind::Meta, |plain| {
        *plain = encode_records(&wrong_kind)
    });
    let message = open_bytes(&bad)
        .unwrap()
        .packages()
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("Release has the wrong primitive kind"),
        "{message}"
    );

    // Layout: a regular file whose source is not a 16-byte digest.
    let bad = with_plain(&bytes, PayloadKind::Layout, |plain| {
        // Record 0 is `bin/tool`, a regular file: claim a 15-byte source.
        plain[16..18].copy_from_slice(&15u16.to_be_bytes());
    });
    assert_open_fails(
        "regular source 15 bytes",
        &bad,
        &["payload #1 (layout)", "record #0", "16-byte digest"],
    );
    // Layout: an empty target.
    let bad = with_plain(&bytes, PayloadKind::Layout, |plain| {
        let target_length = u16::from_be_bytes([plain[18], plain[19]]) as usize;
        plain[18..20].copy_from_slice(&0u16.to_be_bytes());
        plain.drain(32 + 16..32 + 16 + target_length);
    });
    assert_open_fails(
        "empty target",
        &bad,
        &["payload #1 (layout)", "record #0", "target path is empty"],
    );
    // Layout: a target length beyond the payload.
    let bad = with_plain(&bytes, PayloadKind::Layout, |plain| {
        plain[18..20].copy_from_slice(&u16::MAX.to_be_bytes());
    });
    assert_open_fails(
        "target too long",
        &bad,
        &["payload #1 (layout)", "record #"],
    );

    // Attributes: a key length of u64::MAX.
    let bad = with_plain(&bytes, PayloadKind::Attributes, |plain| {
        plain[0..8].copy_from_slice(&u64::MAX.to_be_bytes());
    });
    assert_open_fails(
        "attribute key u64::MAX",
        &bad,
        &[
            "payload #2 (attributes)",
            "attribute key length of 18446744073709551615 exceeds",
        ],
    );
}

#[test]
fn unknown_payload_kinds_are_skipped() {
    let bytes = writer_made();
    let bad = edit(&bytes, 2, |p| p.header.kind = PayloadKind::Unknown(99));
    let mut archive = open_bytes(&bad).unwrap();
    assert_eq!(archive.payloads()[2].body, Body::Skipped);
    assert_eq!(archive.attributes().count(), 0);
    archive.unpack(&mut DiscardSink).unwrap();
}

/// Byte ranges where a flip may legitimately go unnoticed: the file type, each payload's
/// version (ignored), kind and compression (an unknown value means "skip"), and the record
/// count of the content payload (meaningless).
fn tolerated_flips(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    ranges.push(27..28);
    for payload in RawStone::parse(bytes).payloads {
        ranges.push(payload.offset + 28..payload.offset + 32);
        if payload.header.kind == PayloadKind::Content {
            ranges.push(payload.offset + 24..payload.offset + 28);
        }
    }
    ranges
}

#[test]
fn every_single_byte_flip_of_pizza_is_caught_or_harmless() {
    let bytes = pizza();
    let tolerated = tolerated_flips(&bytes);
    let mut caught = 0;
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[at] ^= mask;
            let case = format!("pizza byte {at} ^ {mask:#04x}");
            match checked(&case, &bad) {
                Err(_) => caught += 1,
                Ok(()) => assert!(
                    tolerated.iter().any(|range| range.contains(&at)),
                    "{case}: accepted a corrupt file"
                ),
            }
        }
    }
    assert!(caught > bytes.len() * 4 * 9 / 10, "{caught} caught");
}

#[test]
fn sampled_byte_flips_of_larger_stones_are_caught_or_harmless() {
    for (name, bytes) in [
        ("bash-completion", bash_completion()),
        ("writer-made", writer_made()),
    ] {
        let tolerated = tolerated_flips(&bytes);
        // Every header byte, and a spread of body bytes.
        let raw = RawStone::parse(&bytes);
        let mut positions: Vec<usize> = (0..32).collect();
        for payload in &raw.payloads {
            positions.extend(payload.offset..payload.body_offset());
        }
        positions.extend((0..bytes.len()).step_by(bytes.len() / 60));
        for at in positions {
            let mut bad = bytes.clone();
            bad[at] ^= 0xa5;
            let case = format!("{name} byte {at}");
            if checked(&case, &bad).is_ok() {
                assert!(
                    tolerated.iter().any(|range| range.contains(&at)),
                    "{case}: accepted a corrupt file"
                );
            }
        }
    }
}

//! Random archives survive Writer → Archive unchanged: packages (every field, every dependency
//! kind, unknown records), layouts of every entry type, attributes and file contents (empty and
//! duplicate bodies included). Writing the same input twice gives the same bytes.

mod common;

use std::collections::BTreeMap;

use common::{collect, open_bytes};
use proptest::{collection::vec, prelude::*};
use stone::{
    Attribute, ContentSource, Dependency, DependencyKind, Entry, FileType, Layout, Package, Record,
    Tag, Value, WriteOptions, Writer,
};

/// Text without NUL (a trailing NUL is stripped by design, so it cannot round-trip).
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[^\\x00]{{0,{max}}}")).unwrap()
}

fn non_empty_text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[^\\x00]{{1,{max}}}")).unwrap()
}

fn package_name() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-z][a-z0-9+._-]{0,16}").unwrap()
}

fn dependency() -> impl Strategy<Value = Dependency> {
    (
        prop::sample::select(DependencyKind::KNOWN.to_vec()),
        prop_oneof![
            package_name(),
            text(24),
            // Nested parentheses, as in `soname(libc.so.6(x86_64))`.
            (package_name(), package_name()).prop_map(|(a, b)| format!("{a}.so.1({b})")),
        ],
    )
        .prop_map(|(kind, target)| Dependency { kind, target })
}

fn unknown_record() -> impl Strategy<Value = Record> {
    (
        21u16..=u16::MAX,
        prop_oneof![
            text(16).prop_map(Value::String),
            any::<u64>().prop_map(Value::Uint64),
            (12u8..=255, vec(any::<u8>(), 0..16))
                .prop_map(|(kind, bytes)| Value::Unknown { kind, bytes }),
            vec(any::<u8>(), 0..16).prop_map(|bytes| Value::Unknown { kind: 0, bytes }),
        ],
    )
        .prop_map(|(tag, value)| Record::new(Tag::Unknown(tag), value))
}

prop_compose! {
    fn package()(
        name in package_name(),
        version in non_empty_text(12),
        release in any::<u64>(),
        build_release in any::<u64>(),
        architecture in prop::sample::select(vec!["x86_64", "aarch64", "emul32/x86_64", ""]),
        summary in text(40),
        description in prop::string::string_regex("[^\\x00]{0,80}(\n[^\\x00]{0,40}){0,3}").unwrap(),
        homepage in text(30),
        licenses in vec(text(20), 0..3),
        source_id in package_name(),
        depends in vec(dependency(), 0..6),
        provides in vec(dependency(), 0..6),
        provides_own_name in any::<bool>(),
        conflicts in vec(dependency(), 0..3),
        build_depends in vec(dependency(), 0..6),
        repository in proptest::option::of((text(30), "[0-9a-f]{64}", any::<u64>())),
        source in proptest::option::of((text(30), text(10), text(40))),
        unknown in vec(unknown_record(), 0..3),
    ) -> (Package, bool) {
        let (uri, hash, size) = match repository {
            Some((uri, hash, size)) => (Some(uri), Some(hash), Some(size)),
            None => (None, None, None),
        };
        let (source_uri, source_path, source_ref) = match source {
            Some((uri, path, reference)) => (Some(uri), Some(path), Some(reference)),
            None => (None, None, None),
        };
        (Package {
            name, version, release, build_release,
            architecture: architecture.to_owned(),
            summary, description, homepage, licenses, source_id,
            depends, provides, conflicts, build_depends,
            uri, hash, size, source_uri, source_path, source_ref, unknown,
        }, provides_own_name)
    }
}

/// A layout entry; `Regular` holds an index into the body pool instead of a digest.
#[derive(Debug, Clone)]
enum Planned {
    Regular(usize, String),
    Other(Entry),
}

fn planned_entry() -> impl Strategy<Value = Planned> {
    let target = || non_empty_text(40);
    prop_oneof![
        4 => (any::<prop::sample::Index>(), target())
            .prop_map(|(index, target)| Planned::Regular(index.index(usize::MAX), target)),
        2 => (text(30), target())
            .prop_map(|(source, target)| Planned::Other(Entry::Symlink { source, target })),
        1 => target().prop_map(|target| Planned::Other(Entry::Directory(target))),
        1 => (0u8..4, target()).prop_map(|(kind, target)| Planned::Other(match kind {
            0 => Entry::CharacterDevice(target),
            1 => Entry::BlockDevice(target),
            2 => Entry::Fifo(target),
            _ => Entry::Socket(target),
        })),
        1 => (8u8..=255, vec(any::<u8>(), 0..20), vec(any::<u8>(), 0..20)).prop_map(
            |(file_type, mut source, mut target)| {
                // Trailing NULs are stripped on read (the old writer's terminators).
                while source.last() == Some(&0) { source.pop(); }
                while target.last() == Some(&0) { target.pop(); }
                Planned::Other(Entry::Unknown { file_type, source, target })
            }
        ),
    ]
}

#[derive(Debug, Clone)]
struct Input {
    file_type: FileType,
    options: WriteOptions,
    packages: Vec<(Package, bool)>,
    bodies: Vec<Vec<u8>>,
    orphans: Vec<Vec<u8>>,
    layout: Vec<(u32, u32, u32, u32, Planned)>,
    attributes: Vec<Attribute>,
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        3 => vec(any::<u8>(), 0..512),
        // Compressible bodies, larger than one zstd block now and then.
        1 => (any::<u8>(), 0usize..200_000).prop_map(|(byte, length)| vec![byte; length]),
    ]
}

prop_compose! {
    fn input()(
        file_type in prop::sample::select(vec![
            FileType::Binary, FileType::Repository, FileType::BuildManifest, FileType::Delta,
        ]),
        level in prop::sample::select(vec![1, 3, 19]),
        workers in prop::sample::select(vec![0u32, 2]),
        packages in vec(package(), 0..3),
        bodies in vec(body(), 1..6),
        orphans in vec(body(), 0..2),
        layout in vec((any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), planned_entry()), 0..12),
        attributes in vec(
            (vec(any::<u8>(), 0..16), vec(any::<u8>(), 0..32))
                .prop_map(|(key, value)| Attribute { key, value }),
            0..3,
        ),
    ) -> Input {
        Input {
            file_type,
            options: WriteOptions { level, workers },
            packages, bodies, orphans, layout, attributes,
        }
    }
}

/// The layout records as written, with regular entries resolved to digests.
fn layouts(input: &Input) -> Vec<Layout> {
    input
        .layout
        .iter()
        .map(|(uid, gid, mode, tag, planned)| Layout {
            uid: *uid,
            gid: *gid,
            mode: *mode,
            tag: *tag,
            entry: match planned {
                Planned::Regular(index, target) => Entry::Regular {
                    digest: stone::digest(&input.bodies[index % input.bodies.len()]),
                    target: target.clone(),
                },
                Planned::Other(entry) => entry.clone(),
            },
        })
        .collect()
}

fn write(input: &Input) -> Vec<u8> {
    let mut writer = Writer::new(input.file_type).with_options(input.options);
    for (package, own_name) in &input.packages {
        let mut records = package.to_records();
        if *own_name {
            // An explicit `name(<Name>)` provider is implied and must vanish on read.
            records.push(Record::new(
                Tag::Provides,
                Value::Provider(Dependency::name(package.name.clone())),
            ));
        }
        writer.add_meta(records);
    }
    let used: Vec<&Vec<u8>> = input
        .layout
        .iter()
        .filter_map(|(.., planned)| match planned {
            Planned::Regular(index, _) => Some(&input.bodies[index % input.bodies.len()]),
            Planned::Other(_) => None,
        })
        .collect();
    for body in used.iter().copied().chain(&input.orphans) {
        writer
            .add_content(ContentSource::Bytes(body.clone()))
            .unwrap();
    }
    for layout in layouts(input) {
        writer.add_layout(layout);
    }
    for attribute in &input.attributes {
        writer.add_attribute(attribute.clone());
    }
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    out
}

fn expected_package(package: &Package) -> Package {
    let mut expected = package.clone();
    expected
        .provides
        .retain(|p| !(p.kind == DependencyKind::Name && p.target == package.name));
    expected
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_archives_round_trip(input in input()) {
        let bytes = write(&input);
        prop_assert_eq!(&bytes, &write(&input), "the writer is not deterministic");

        let mut archive = open_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(archive.file_type(), input.file_type);
        let packages = archive.packages().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<Package> =
            input.packages.iter().map(|(package, _)| expected_package(package)).collect();
        prop_assert_eq!(packages, expected);
        let read_layouts: Vec<Layout> = archive.layouts().cloned().collect();
        prop_assert_eq!(read_layouts, layouts(&input));
        let attributes: Vec<Attribute> = archive.attributes().cloned().collect();
        prop_assert_eq!(&attributes, &input.attributes);

        let mut expected_contents: BTreeMap<u128, Vec<u8>> = BTreeMap::new();
        for (.., planned) in &input.layout {
            if let Planned::Regular(index, _) = planned {
                let body = &input.bodies[index % input.bodies.len()];
                expected_contents.insert(stone::digest(body), body.clone());
            }
        }
        for body in &input.orphans {
            expected_contents.insert(stone::digest(body), body.clone());
        }
        let index: Vec<_> = archive.index().copied().collect();
        prop_assert_eq!(index.len(), expected_contents.len(), "one index entry per unique body");
        prop_assert_eq!(archive.content().is_some(), !expected_contents.is_empty());
        // Largest first, contiguous from 0.
        let mut position = 0;
        for pair in index.windows(2) {
            prop_assert!(pair[0].len() >= pair[1].len());
        }
        for entry in &index {
            prop_assert_eq!(entry.start, position);
            position = entry.end;
        }
        let sink = collect(&mut archive).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(sink.aborted, 0);
        prop_assert_eq!(sink.bodies, expected_contents);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The canonical text form `kind(target)` parses back to the same dependency, whatever
    /// parentheses the target holds (split at the first `(`, strip the final `)`).
    #[test]
    fn dependency_text_form_round_trips(dependency in dependency()) {
        prop_assume!(!dependency.target.is_empty());
        let text = dependency.to_string();
        let parsed: Dependency = text.parse().map_err(|e: stone::ParseDependencyError| {
            TestCaseError::fail(e.to_string())
        })?;
        prop_assert_eq!(parsed, dependency);
    }
}

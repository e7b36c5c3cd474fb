//! Every fixture decodes, and the facts the format spec states about them hold.
//!
//! * every `.stone` in `fixtures/stones` opens, yields typed packages and unpacks with every
//!   digest and the content checksum verified;
//! * bash-completion matches the worked decode of spec §10 byte for byte;
//! * every `manifest.x86_64.bin` is a build manifest whose packages, depends, provides and
//!   build-depends equal the `manifest.x86_64.jsonc` report beside it — except that the report
//!   may omit plain-name (`name(x)`) depends the binary carries (the binary is the truth).

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    str::FromStr,
};

use common::{BASH_COMPLETION, PINEAPPLE, PIZZA, collect, fixture_manifests, fixture_stones};
use sha2::{Digest, Sha256};
use stone::{
    Archive, Body, Compression, Dependency, DependencyKind, DiscardSink, EMPTY_DIGEST, Entry,
    FileType, PayloadKind,
};

#[test]
fn every_fixture_stone_decodes_and_unpacks() {
    for path in fixture_stones() {
        let mut archive =
            Archive::open(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(archive.file_type(), FileType::Binary, "{}", path.display());
        let packages = archive
            .packages()
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(packages.len(), 1, "{}", path.display());
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            packages[0].file_name(),
            name,
            "boulder names the file after the package"
        );
        archive
            .unpack(&mut DiscardSink)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));

        // Every regular layout entry has its body in the index, and nothing else is indexed.
        let indexed: BTreeSet<u128> = archive.index().map(|entry| entry.digest).collect();
        let used: BTreeSet<u128> = archive
            .layouts()
            .filter_map(|layout| match &layout.entry {
                Entry::Regular { digest, .. } => Some(*digest),
                _ => None,
            })
            .collect();
        assert_eq!(indexed, used, "{}", path.display());

        // The index is contiguous from 0 and covers the whole content.
        let content = archive.content().expect("every fixture has content");
        let mut position = 0;
        for entry in archive.index() {
            assert_eq!(entry.start, position, "{}", path.display());
            position = entry.end;
        }
        assert_eq!(position, content.header.plain_size, "{}", path.display());

        // Bodies really hash to their digests (independently of the reader's own check).
        let sink = collect(&mut archive).unwrap();
        assert_eq!(sink.bodies.len(), indexed.len());
        assert_eq!(sink.aborted, 0);
        for (digest, body) in &sink.bodies {
            assert_eq!(stone::digest(body), *digest, "{}", path.display());
        }
    }
}

fn payload_table(archive: &Archive<impl std::io::Read + std::io::Seek>) -> Vec<String> {
    archive
        .payloads()
        .iter()
        .map(|payload| {
            let header = payload.header;
            format!(
                "{} {} {}/{}/{} {:016x}",
                header.kind,
                header.compression,
                header.stored_size,
                header.plain_size,
                header.num_records,
                header.checksum
            )
        })
        .collect()
}

#[test]
fn bash_completion_matches_the_worked_decode() {
    let path = common::stone(BASH_COMPLETION);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 168_864);
    assert_eq!(
        format!("{:x}", Sha256::digest(&bytes)),
        "13e2bce256b183ee0c721bd6cc438be8dcebf95850c8d851801e4ce000195d94"
    );

    let mut archive = Archive::open(&path).unwrap();
    assert_eq!(
        payload_table(&archive),
        [
            "meta zstd 307/522/11 f747b76066220445",
            "layout zstd 13792/64731/745 00080612c2aed8f1",
            "index zstd 9070/15168/474 aef2da49e8b09548",
            "content zstd 145535/872279/474 f99daf817c7da14c",
        ]
    );
    let content = archive.content().unwrap();
    assert_eq!(content.index, 3);
    assert_eq!(content.offset, 23_297 + 32);

    // Meta: the raw record order of the D writer, and the typed view.
    let (_, records) = archive.meta().next().unwrap();
    let tags: Vec<String> = records
        .iter()
        .map(|record| format!("{:?}", record.tag))
        .collect();
    assert_eq!(
        tags,
        [
            "Name",
            "Version",
            "Release",
            "BuildRelease",
            "Summary",
            "Description",
            "Homepage",
            "SourceId",
            "Architecture",
            "License",
            "Provides"
        ]
    );
    let package = archive.packages().unwrap().remove(0);
    assert_eq!(package.name, "bash-completion");
    assert_eq!(package.version, "2.11");
    assert_eq!((package.release, package.build_release), (1, 1));
    assert_eq!(package.architecture, "x86_64");
    assert_eq!(
        package.summary,
        "Programmable completion functions for bash"
    );
    assert!(
        package
            .description
            .starts_with("bash-completion is a collection of")
    );
    assert_eq!(package.description.len(), 256, "257 bytes minus the NUL");
    assert_eq!(package.homepage, "https://github.com/scop/bash-completion");
    assert_eq!(package.source_id, "bash-completion");
    assert_eq!(package.licenses, ["GPL-2.0-or-later"]);
    assert_eq!(
        package.provides,
        [Dependency {
            kind: DependencyKind::CMake,
            target: "bash-completion".into()
        }]
    );
    assert!(package.depends.is_empty() && package.conflicts.is_empty());
    assert_eq!(package.meta_id(), "bash-completion-2.11-1.x86_64");

    // Layout: 745 records = 474 regular + 271 symlinks, NULs of the old writer stripped.
    let layouts: Vec<_> = archive.layouts().cloned().collect();
    assert_eq!(layouts.len(), 745);
    let count = |kind: &str| {
        layouts
            .iter()
            .filter(|layout| layout.entry.type_name() == kind)
            .count()
    };
    assert_eq!(
        (count("regular"), count("symlink"), count("directory")),
        (474, 271, 0)
    );
    assert!(
        layouts
            .iter()
            .all(|l| l.uid == 0 && l.gid == 0 && l.tag == 0)
    );
    for layout in &layouts {
        let target = layout.entry.target().unwrap();
        assert!(
            !target.contains('\0') && !target.starts_with('/'),
            "{target:?}"
        );
        match &layout.entry {
            Entry::Regular { .. } => assert_eq!(layout.mode, 0o100644, "{target}"),
            Entry::Symlink { source, .. } => {
                assert_eq!(layout.mode, 0o120777, "{target}");
                assert!(!source.is_empty() && !source.contains('\0'), "{source:?}");
            }
            other => panic!("unexpected entry {other:?}"),
        }
    }
    let regular = |digest: u128, target: &str| Entry::Regular {
        digest,
        target: target.into(),
    };
    assert_eq!(
        layouts[..5]
            .iter()
            .map(|l| l.entry.clone())
            .collect::<Vec<_>>(),
        [
            regular(
                0x3c005061e2d565b469e9abdfe6478cfe,
                "share/bash-completion/bash_completion"
            ),
            regular(
                0x97151f442b0606dbab0f46f961b489a2,
                "share/bash-completion/completions/2to3"
            ),
            regular(
                0x9aa8368c9ccb6e7799b62cf1faa036e3,
                "share/bash-completion/completions/7z"
            ),
            Entry::Symlink {
                source: "7z".into(),
                target: "share/bash-completion/completions/7za".into()
            },
            regular(
                0x9a9a6c3bb8fd1ab6bbc42aad0fb658bb,
                "share/bash-completion/completions/_adb"
            ),
        ]
    );

    // Index: 474 contiguous entries, largest first, ending at the content's plain size.
    let index: Vec<_> = archive.index().copied().collect();
    assert_eq!(index.len(), 474);
    let first: Vec<_> = index[..3]
        .iter()
        .map(|e| (e.start, e.end, e.digest))
        .collect();
    assert_eq!(
        first,
        [
            (0, 76_332, 0x3c005061e2d565b469e9abdfe6478cfe),
            (76_332, 77_255, 0x97151f442b0606dbab0f46f961b489a2),
            (77_255, 81_553, 0x9aa8368c9ccb6e7799b62cf1faa036e3),
        ]
    );
    assert_eq!(index.last().unwrap().end, 872_279);

    // The asset-key quirk: no zero padding.
    let padded = 0x009e284063682c78bdef54eba751f7a8u128;
    assert!(index.iter().any(|entry| entry.digest == padded));
    assert_eq!(stone::asset_key(padded), "9e284063682c78bdef54eba751f7a8");
    assert_eq!(
        stone::asset_key(0x3c005061e2d565b469e9abdfe6478cfe),
        "3c005061e2d565b469e9abdfe6478cfe"
    );
    // Record 0's digest as the decimal string of the layout DB.
    assert_eq!(
        0x3c005061e2d565b469e9abdfe6478cfeu128.to_string(),
        "79755310095196602097765510640271068414"
    );

    let sink = collect(&mut archive).unwrap();
    assert_eq!(sink.bodies.len(), 474);
    assert_eq!(sink.bodies.values().map(Vec::len).sum::<usize>(), 872_279);
    assert_eq!(
        sink.bodies[&0x3c005061e2d565b469e9abdfe6478cfe].len(),
        76_332
    );
}

#[test]
fn pizza_and_pineapple_match_the_spec() {
    for (name, size, table, empty_file) in [
        (
            PIZZA,
            443,
            [
                "meta zstd 171/256/11",
                "layout zstd 71/76/1",
                "index zstd 32/32/1",
            ],
            "share/defaults/italian-pizza",
        ),
        (
            PINEAPPLE,
            426,
            [
                "meta zstd 158/215/10",
                "layout zstd 67/72/1",
                "index zstd 32/32/1",
            ],
            "share/defaults/pienapple",
        ),
    ] {
        let path = common::stone(name);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), size, "{name}");
        let mut archive = Archive::open(&path).unwrap();
        let payloads = payload_table(&archive);
        for (row, expected) in payloads.iter().zip(table) {
            assert!(row.starts_with(expected), "{name}: {row} vs {expected}");
        }
        assert_eq!(payloads[3], "content zstd 9/0/0 e6fb29dda2e7a873", "{name}");
        // The empty content is the 9-byte empty zstd frame, last in the file.
        assert_eq!(
            &bytes[size - 9..],
            [0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(stone::digest(&[]), EMPTY_DIGEST);
        let layouts: Vec<_> = archive.layouts().cloned().collect();
        assert_eq!(layouts.len(), 1);
        assert_eq!(
            layouts[0].entry,
            Entry::Regular {
                digest: EMPTY_DIGEST,
                target: empty_file.into()
            }
        );
        let index: Vec<_> = archive.index().copied().collect();
        assert_eq!(index.len(), 1);
        assert_eq!((index[0].start, index[0].end), (0, 0));
        let sink = collect(&mut archive).unwrap();
        assert_eq!(sink.bodies[&EMPTY_DIGEST], Vec::<u8>::new());
    }

    let pizza = Archive::open(common::stone(PIZZA))
        .unwrap()
        .packages()
        .unwrap()
        .remove(0);
    assert_eq!(pizza.name, "italian-pizza");
    assert_eq!(pizza.licenses, ["Zlib"]);
    assert_eq!(
        pizza.summary,
        "A certain Italian pizza that hates pineapples"
    );
    assert_eq!(pizza.conflicts, [Dependency::name("pineapple")]);
    // Conflicts use primitive kind 11 (Provider).
    let archive = Archive::open(common::stone(PIZZA)).unwrap();
    let (_, records) = archive.meta().next().unwrap();
    let conflict = records
        .iter()
        .find(|record| record.tag == stone::Tag::Conflicts)
        .unwrap();
    assert!(matches!(conflict.value, stone::Value::Provider(_)));
}

/// One package of a jsonc report, each list in the report's own text form (plain names bare).
#[derive(Debug, Default, PartialEq, Eq)]
struct Reported {
    depends: BTreeSet<String>,
    provides: BTreeSet<String>,
    build_depends: Option<BTreeSet<String>>,
}

/// Parse a jsonc report: strip the leading `/** ... */` and read the per-package lists. Every
/// entry must parse as a dependency (`Dependency::from_str`; a bare string is a plain name).
fn read_report(path: &Path) -> (serde_json::Value, BTreeMap<String, Reported>) {
    let text = std::fs::read_to_string(path).unwrap();
    let body = text.trim_start();
    let body = match body.strip_prefix("/*") {
        Some(rest) => &rest[rest.find("*/").expect("comment is closed") + 2..],
        None => body,
    };
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut packages = BTreeMap::new();
    for (name, package) in json["packages"].as_object().expect("packages object") {
        assert_eq!(package["name"], name.as_str(), "{}", path.display());
        let list = |key: &str| -> Option<BTreeSet<String>> {
            let list = package.get(key)?.as_array().unwrap_or_else(|| {
                panic!("{}: {key} is a list", path.display());
            });
            Some(
                list.iter()
                    .map(|item| {
                        let text = item.as_str().expect("string entries");
                        Dependency::from_str(text)
                            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                        text.to_owned()
                    })
                    .collect(),
            )
        };
        packages.insert(
            name.clone(),
            Reported {
                depends: list("depends").unwrap_or_default(),
                provides: list("provides").unwrap_or_default(),
                build_depends: list("build-depends"),
            },
        );
    }
    (json, packages)
}

/// Render as the jsonc report does: a plain name bare, everything else as `kind(target)`.
fn report_text(dependency: &Dependency) -> String {
    match dependency.kind {
        DependencyKind::Name => dependency.target.clone(),
        _ => dependency.to_string(),
    }
}

fn report_texts(list: &[Dependency]) -> BTreeSet<String> {
    list.iter().map(report_text).collect()
}

/// The top-level `rundeps:` list of a recipe's `stone.yaml` (a tiny line parser: the recipes
/// write it as a block list of plain scalars).
fn recipe_rundeps(recipe_dir: &Path) -> BTreeSet<String> {
    let yaml = std::fs::read_to_string(recipe_dir.join("stone.yaml")).unwrap_or_default();
    let mut rundeps = BTreeSet::new();
    let mut inside = false;
    for line in yaml.lines() {
        if !line.starts_with([' ', '\t', '-']) && !line.trim().is_empty() {
            inside = line
                .split(':')
                .next()
                .is_some_and(|key| key.trim() == "rundeps");
            continue;
        }
        if inside && let Some(item) = line.trim().strip_prefix('-') {
            rundeps.insert(item.trim().to_owned());
        }
    }
    rundeps
}

#[test]
fn every_manifest_matches_its_report() {
    // Differences the binary may have over its report (the binary is the truth):
    // * a `name(x)` depend on a sibling sub-package (`foo-devel` on `foo`), omitted by some reports;
    // * a depend the recipe declares under `rundeps:`, omitted by some stale reports;
    // * manifest-version 0.1 reports carry no build-depends at all.
    let mut tolerated_names: Vec<String> = Vec::new();
    let mut tolerated_rundeps: Vec<String> = Vec::new();
    let mut ambiguous: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut packages_seen = 0;
    let mut build_depends_seen = 0;
    let mut old_reports = 0;
    let manifests = fixture_manifests();
    for bin in &manifests {
        let recipe_dir = bin.parent().unwrap();
        let recipe = recipe_dir.file_name().unwrap().to_str().unwrap();
        let mut archive =
            Archive::open(bin).unwrap_or_else(|error| panic!("{}: {error}", bin.display()));
        assert_eq!(archive.file_type(), FileType::BuildManifest, "{recipe}");
        assert!(
            archive
                .payloads()
                .iter()
                .all(|payload| payload.header.kind == PayloadKind::Meta
                    && payload.header.compression == Compression::Zstd
                    && matches!(payload.body, Body::Meta(_))),
            "{recipe}: a manifest holds only zstd Meta payloads"
        );
        assert!(archive.content().is_none() && archive.layouts().next().is_none());
        archive.unpack(&mut DiscardSink).unwrap();
        let packages = archive
            .packages()
            .unwrap_or_else(|error| panic!("{}: {error}", bin.display()));

        let (json, reported) = read_report(&bin.with_extension("jsonc"));
        let has_build_depends = match json["manifest-version"].as_str() {
            Some("0.2") => true,
            Some("0.1") => false,
            other => panic!("{recipe}: unknown manifest-version {other:?}"),
        };
        if !has_build_depends {
            old_reports += 1;
            assert!(
                reported.values().all(|p| p.build_depends.is_none()),
                "{recipe}: a 0.1 report with build-depends"
            );
        }
        // Source-level facts are shared by every sub-package.
        for package in &packages {
            assert_eq!(json["source-name"], package.source_id.as_str(), "{recipe}");
            assert_eq!(json["source-version"], package.version.as_str(), "{recipe}");
            let release = match &json["source-release"] {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            assert_eq!(release, package.release.to_string(), "{recipe}");
        }

        let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        let reported_names: BTreeSet<&str> = reported.keys().map(String::as_str).collect();
        if names != reported_names {
            failures.push(format!(
                "{recipe}: packages {names:?} vs report {reported_names:?}"
            ));
            continue;
        }
        assert_eq!(
            names.len(),
            packages.len(),
            "{recipe}: duplicate package names"
        );
        let rundeps = recipe_rundeps(recipe_dir);
        for package in &packages {
            packages_seen += 1;
            build_depends_seen += package.build_depends.len();
            let report = &reported[&package.name];
            let what = format!("{recipe}/{}", package.name);
            // The report's text form cannot tell `name(pkgconfig(x))` from `pkgconfig(x)`.
            for dependency in package
                .depends
                .iter()
                .chain(&package.provides)
                .chain(&package.build_depends)
            {
                let reparsed = Dependency::from_str(&report_text(dependency)).unwrap();
                if reparsed != *dependency {
                    ambiguous.push(format!("{what}: {dependency} reads back as {reparsed}"));
                }
            }

            let depends = report_texts(&package.depends);
            if depends != report.depends {
                let missing: BTreeSet<&String> = report.depends.difference(&depends).collect();
                let extra: Vec<&Dependency> = package
                    .depends
                    .iter()
                    .filter(|d| !report.depends.contains(&report_text(d)))
                    .collect();
                let sibling = |d: &&Dependency| {
                    d.kind == DependencyKind::Name
                        && d.target != package.name
                        && names.contains(d.target.as_str())
                };
                let declared = |d: &&Dependency| rundeps.contains(&report_text(d));
                let texts =
                    |list: &[&Dependency]| list.iter().map(|d| d.to_string()).collect::<Vec<_>>();
                if !missing.is_empty() || !extra.iter().all(|d| sibling(d) || declared(d)) {
                    failures.push(format!(
                        "{what}: depends binary-only {:?}, report-only {missing:?}",
                        texts(&extra)
                    ));
                } else if extra.iter().all(sibling) {
                    tolerated_names.push(format!("{what}: report omits {:?}", texts(&extra)));
                } else {
                    tolerated_rundeps.push(format!(
                        "{what}: report omits {:?}, declared in stone.yaml rundeps",
                        texts(&extra)
                    ));
                }
            }
            let provides = report_texts(&package.provides);
            if provides != report.provides {
                failures.push(format!(
                    "{what}: provides {provides:?} vs report {:?}",
                    report.provides
                ));
            }
            let build_depends = report_texts(&package.build_depends);
            match &report.build_depends {
                Some(reported) if *reported != build_depends => failures.push(format!(
                    "{what}: build-depends {build_depends:?} vs report {reported:?}"
                )),
                None if has_build_depends && !build_depends.is_empty() => failures.push(format!(
                    "{what}: build-depends {build_depends:?}, the report has none"
                )),
                _ => {}
            }
        }
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{} manifests ({old_reports} with 0.1 reports), {packages_seen} packages, \
             {build_depends_seen} build-depends",
            manifests.len(),
        );
        for line in &tolerated_names {
            eprintln!("  tolerated (sibling name) {line}");
        }
        for line in &tolerated_rundeps {
            eprintln!("  tolerated (recipe rundep) {line}");
        }
        for line in &ambiguous {
            eprintln!("  ambiguous report text {line}");
        }
    }
    assert!(
        failures.is_empty(),
        "manifest/report differences:\n{}",
        failures.join("\n")
    );
    assert!(packages_seen >= 370, "{packages_seen} packages");
    assert!(
        build_depends_seen > 1000,
        "{build_depends_seen} build-depends"
    );
    // The README says about one in ten reports is affected; not more than that.
    let tolerated = tolerated_names.len() + tolerated_rundeps.len();
    assert!(
        tolerated_names.len() >= 10,
        "the known report omissions were not seen"
    );
    assert!(tolerated * 5 < manifests.len(), "{tolerated} tolerated");
    // ibus's recipe writes `pkgconfig(gtk+-3.0)`, which boulder stored as a plain name.
    assert!(
        ambiguous.iter().any(
            |line| line.contains("name(pkgconfig(gtk+-3.0)) reads back as pkgconfig(gtk+-3.0)")
        ),
        "{ambiguous:?}"
    );
}

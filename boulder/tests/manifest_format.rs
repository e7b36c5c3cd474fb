//! Boulder's manifest writers against the corpus: fed the packages a real manifest describes,
//! they reproduce its `manifest.x86_64.jsonc` byte for byte and its `manifest.x86_64.bin`
//! payload for payload.
#![expect(clippy::print_stderr, reason = "the tests report their figures")]

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    str::FromStr,
};

use boulder::{
    collect::{EntryKind, InstalledEntry, PackageSpec},
    emit::{self, BuiltPackage},
    recipe::Recipe,
};
use stone::{Archive, Dependency};

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/recipes");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|letter| {
            std::fs::read_dir(letter.unwrap().path())
                .into_iter()
                .flatten()
        })
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("manifest.x86_64.jsonc").exists())
        .collect();
    dirs.sort();
    dirs
}

fn spec(name: &str, summary: &str, description: &str) -> PackageSpec {
    PackageSpec {
        name: name.to_owned(),
        summary: summary.to_owned(),
        description: description.to_owned(),
        rundeps: Vec::new(),
        rundeps_exclude: Vec::new(),
        provides_exclude: Vec::new(),
        conflicts: Vec::new(),
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|list| {
            list.iter()
                .map(|item| item.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn jsonc_reports_are_reproduced_byte_for_byte() {
    let mut compared = 0;
    let mut old_format = 0;
    let mut unsorted_upstream = BTreeSet::new();
    for dir in corpus() {
        let text = std::fs::read_to_string(dir.join("manifest.x86_64.jsonc")).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&text[text.find('\n').unwrap()..]).unwrap();
        if json["manifest-version"] != "0.2" {
            old_format += 1;
            continue;
        }
        let mut recipe = Recipe::load(&dir).unwrap().recipe;
        recipe.source.name = json["source-name"].as_str().unwrap().to_owned();
        recipe.source.version = json["source-version"].as_str().unwrap().to_owned();
        recipe.source.release = json["source-release"].as_str().unwrap().parse().unwrap();
        let mut build_depends = BTreeSet::new();
        let mut packages = Vec::new();
        for (name, reported) in json["packages"].as_object().unwrap() {
            build_depends.extend(strings(&reported["build-depends"]));
            let parse = |key: &str| -> BTreeSet<Dependency> {
                strings(&reported[key])
                    .iter()
                    .map(|text| Dependency::from_str(text).unwrap())
                    .collect()
            };
            packages.push(BuiltPackage {
                spec: spec(name, "", ""),
                entries: strings(&reported["files"])
                    .into_iter()
                    .map(|path| InstalledEntry {
                        path,
                        host_path: PathBuf::new(),
                        mode: 0o100644,
                        kind: EntryKind::Regular(0),
                    })
                    .collect(),
                provides: parse("provides"),
                depends: parse("depends"),
            });
        }
        let build_depends: Vec<String> = build_depends.into_iter().collect();
        let listed: Vec<&BuiltPackage> = packages.iter().collect();
        let ours = emit::jsonc(&recipe, &listed, &build_depends);
        compared += 1;
        if ours != text {
            // Upstream leaves a handful of lists unsorted (and font-noto's report carries empty
            // lists); sorted and without empty lists, they must be ours exactly.
            let mut theirs = json.clone();
            for package in theirs["packages"].as_object_mut().unwrap().values_mut() {
                package
                    .as_object_mut()
                    .unwrap()
                    .retain(|_, value| value.as_array().is_none_or(|list| !list.is_empty()));
                for key in ["depends", "provides"] {
                    if let Some(list) = package.get_mut(key).and_then(|list| list.as_array_mut()) {
                        list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                    }
                }
            }
            let ours_json: serde_json::Value =
                serde_json::from_str(&ours[ours.find('\n').unwrap()..]).unwrap();
            assert_eq!(ours_json, theirs, "{}", dir.display());
            unsorted_upstream.insert(recipe.source.name.clone());
        }
    }
    assert!(
        compared > 150,
        "{compared} compared, {old_format} in the 0.1 format"
    );
    assert_eq!(
        unsorted_upstream,
        BTreeSet::from(
            [
                "cmocka",
                "font-noto",
                "libsndfile",
                "libssh",
                "unixodbc",
                "xfsprogs"
            ]
            .map(str::to_owned)
        ),
        "only these upstream reports have unsorted or empty lists"
    );
}

#[test]
fn binary_manifests_are_reproduced() {
    let mut identical_bytes = 0;
    let mut compared = 0;
    for dir in corpus() {
        let original = dir.join("manifest.x86_64.bin");
        let archive = Archive::open(&original).unwrap();
        let decoded = archive.packages().unwrap();
        let mut recipe = Recipe::load(&dir).unwrap().recipe;
        let first = &decoded[0];
        recipe.source.name = first.source_id.clone();
        recipe.source.version = first.version.clone();
        recipe.source.release = first.release;
        recipe.source.homepage = first.homepage.clone();
        recipe.source.license = first.licenses.clone();
        recipe.build.builddeps = first
            .build_depends
            .iter()
            .map(ToString::to_string)
            .collect();
        recipe.build.checkdeps = Vec::new();
        let packages: Vec<BuiltPackage> = decoded
            .iter()
            .map(|package| BuiltPackage {
                spec: spec(&package.name, &package.summary, &package.description),
                entries: Vec::new(),
                provides: package.provides.iter().cloned().collect(),
                depends: package.depends.iter().cloned().collect(),
            })
            .collect();
        let out = tempfile::tempdir().unwrap();
        let emitted = emit::write(&recipe, &packages, "x86_64", 1, out.path()).unwrap();
        // Packages without files produce empty stones here; only the manifest matters.
        let ours = Archive::open(&emitted.manifest_bin).unwrap();
        assert_eq!(ours.file_type(), stone::FileType::BuildManifest);
        let ours_packages = ours.packages().unwrap();
        // The corpus manifests were written by an older boulder that kept the build release and
        // did not always sort the packages by name; the spec (and we) write 0, sorted.
        let strip_order = |list: &[stone::Package]| -> Vec<stone::Package> {
            let mut list = list.to_vec();
            list.sort_by(|a, b| a.name.cmp(&b.name));
            list.iter()
                .map(|package| {
                    let mut package = package.clone();
                    package.build_release = 0;
                    package.depends.sort();
                    package.provides.sort();
                    package.build_depends.sort();
                    package
                })
                .collect()
        };
        assert_eq!(
            strip_order(&ours_packages),
            strip_order(&decoded),
            "{}",
            dir.display()
        );
        if std::fs::read(&emitted.manifest_bin).unwrap() == std::fs::read(&original).unwrap() {
            identical_bytes += 1;
        }
        compared += 1;
    }
    eprintln!("{compared} manifests reproduced, {identical_bytes} byte-identical");
    assert_eq!(compared, 203);
}

//! The repository's example recipes, built for real: `boulder build --host-root` with the host's
//! gcc in the namespace container, then the stones are inspected, indexed, installed into a
//! fresh root with the `moss` binary and run.
//!
//! The `moss` binary is looked up next to `boulder` in the target directory (`cargo test
//! --workspace` builds it); when it is missing this test builds it with the same cargo.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use stone::{Archive, DependencyKind, Entry, FileType, Package};

const BOULDER: &str = env!("CARGO_BIN_EXE_boulder");

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes")
}

/// Everything the tests look at, built once: OUTDIR as build-examples.sh leaves it.
struct Built {
    _dir: tempfile::TempDir,
    out: PathBuf,
    log: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("repo");
        let output = Command::new(examples_dir().join("build-examples.sh"))
            .arg(&out)
            .env("BOULDER", BOULDER)
            .env("BOULDER_CACHE", dir.path().join("cache"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "build-examples.sh failed:\n{log}");
        Built {
            _dir: dir,
            out,
            log,
        }
    })
}

fn packages_in(
    dir: &Path,
) -> BTreeMap<String, (Package, Archive<std::io::BufReader<std::fs::File>>)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "stone") {
            let archive = Archive::open(&path).unwrap();
            assert_eq!(archive.file_type(), FileType::Binary);
            archive.check_strict().unwrap();
            let mut packages = archive.packages().unwrap();
            assert_eq!(packages.len(), 1);
            let package = packages.remove(0);
            assert_eq!(
                path.file_name().unwrap().to_str().unwrap(),
                package.file_name()
            );
            out.insert(package.name.clone(), (package, archive));
        }
    }
    out
}

fn texts(list: &[stone::Dependency]) -> BTreeSet<String> {
    list.iter().map(ToString::to_string).collect()
}

fn layout_targets(archive: &Archive<std::io::BufReader<std::fs::File>>) -> BTreeMap<String, Entry> {
    archive
        .layouts()
        .map(|layout| {
            (
                layout.entry.target().unwrap().to_owned(),
                layout.entry.clone(),
            )
        })
        .collect()
}

#[test]
fn greet_splits_into_libs_devel_dbginfo_with_derived_dependencies() {
    let built = built();
    assert!(built.log.contains("Timing summary:"), "{}", built.log);
    assert!(built.log.contains("x86_64 build"), "{}", built.log);
    let packages = packages_in(&built.out.join("greet"));
    assert_eq!(
        packages.keys().map(String::as_str).collect::<Vec<_>>(),
        ["greet", "greet-dbginfo", "greet-devel", "greet-libs"]
    );
    let (greet, archive) = &packages["greet"];
    assert_eq!(
        (greet.version.as_str(), greet.release, greet.build_release),
        ("1.0", 1, 1)
    );
    assert_eq!(greet.source_id, "greet");
    assert_eq!(greet.licenses, ["MPL-2.0"]);
    assert_eq!(
        texts(&greet.provides),
        BTreeSet::from(["binary(greet)".to_owned()])
    );
    let depends = texts(&greet.depends);
    // The program's DT_NEEDED on the library becomes a soname dependency that greet-libs
    // provides: derived by analysis, not listed in the recipe.
    assert!(
        depends.contains("soname(libgreet.so.1(x86_64))"),
        "{depends:?}"
    );
    assert!(depends.contains("soname(libc.so.6(x86_64))"), "{depends:?}");
    assert!(
        depends
            .iter()
            .any(|dep| dep.starts_with("interpreter(") && dep.contains("ld-linux-x86-64.so.2"))
    );
    let layout = layout_targets(archive);
    assert_eq!(
        layout.keys().collect::<Vec<_>>(),
        ["bin/greet", "share/man/man1/greet.1"]
    );
    let modes: BTreeMap<String, u32> = archive
        .layouts()
        .map(|l| (l.entry.target().unwrap().to_owned(), l.mode))
        .collect();
    assert_eq!(modes["bin/greet"], 0o100755);
    assert_eq!(modes["share/man/man1/greet.1"], 0o100644);

    let (libs, archive) = &packages["greet-libs"];
    assert_eq!(
        texts(&libs.provides),
        BTreeSet::from(["soname(libgreet.so.1(x86_64))".to_owned()])
    );
    assert!(
        !texts(&libs.depends)
            .iter()
            .any(|dep| dep.contains("libgreet"))
    );
    let layout = layout_targets(archive);
    assert!(
        matches!(&layout["lib/libgreet.so.1"], Entry::Symlink { source, .. } if source == "libgreet.so.1.0.0")
    );
    assert!(matches!(
        &layout["lib/libgreet.so.1.0.0"],
        Entry::Regular { .. }
    ));

    let (devel, archive) = &packages["greet-devel"];
    assert_eq!(
        texts(&devel.provides),
        BTreeSet::from(["pkgconfig(greet)".to_owned()])
    );
    assert_eq!(
        texts(&devel.depends),
        BTreeSet::from(["name(greet)".to_owned()])
    );
    assert_eq!(devel.summary, "Development files for greet");
    let layout = layout_targets(archive);
    assert_eq!(
        layout.keys().collect::<Vec<_>>(),
        [
            "include/greet.h",
            "lib/libgreet.so",
            "lib/pkgconfig/greet.pc",
            "share/man/man3/greet_format.3"
        ]
    );

    // Debug info was split by build-id and the binaries stripped.
    let (_, archive) = &packages["greet-dbginfo"];
    let debug_files: Vec<String> = layout_targets(archive).into_keys().collect();
    assert_eq!(debug_files.len(), 2, "{debug_files:?}");
    assert!(
        debug_files
            .iter()
            .all(|path| path.starts_with("lib/debug/.build-id/") && path.ends_with(".debug"))
    );
}

#[test]
fn fortune_lite_ships_its_trigger_and_a_static_indexer() {
    let packages = packages_in(&built().out.join("fortune-lite"));
    assert_eq!(
        packages.keys().collect::<Vec<_>>(),
        ["fortune-lite", "fortune-lite-dbginfo"]
    );
    let (package, archive) = &packages["fortune-lite"];
    assert_eq!(package.release, 3);
    assert_eq!(
        texts(&package.provides),
        BTreeSet::from([
            "binary(fortune-lite)".to_owned(),
            "binary(fortune-lite-index)".to_owned()
        ])
    );
    let layout = layout_targets(archive);
    assert!(
        layout.contains_key("share/moss/triggers/tx.d/fortune-lite.yaml"),
        "{layout:?}"
    );
    assert!(layout.contains_key("share/fortune-lite/cookies/serpent.txt"));
    // An empty directory is recorded as such.
    assert!(matches!(
        layout["share/fortune-lite/extra"],
        Entry::Directory(_)
    ));
}

#[test]
fn motd_has_a_sysbinary_a_recipe_docs_package_and_no_emul32() {
    let packages = packages_in(&built().out.join("motd"));
    assert_eq!(packages.keys().collect::<Vec<_>>(), ["motd", "motd-docs"]);
    let (motd, archive) = &packages["motd"];
    assert_eq!(
        texts(&motd.provides),
        BTreeSet::from(["sysbinary(motd-update)".to_owned()])
    );
    assert!(motd.depends.is_empty());
    let layout = layout_targets(archive);
    assert_eq!(
        layout.keys().collect::<Vec<_>>(),
        [
            "lib/tmpfiles.d/motd.conf",
            "sbin/motd-update",
            "share/motd.d/10-welcome.motd"
        ]
    );
    let (docs, _) = &packages["motd-docs"];
    // The recipe entry has no summary of its own, so the template's stays.
    assert_eq!(docs.summary, "Documentation for motd");
    assert!(!packages.keys().any(|name| name.contains("32bit")));
}

#[test]
fn manifests_list_every_package_but_dbginfo_in_both_forms() {
    let out = &built().out.join("greet");
    let archive = Archive::open(out.join("manifest.x86_64.bin")).unwrap();
    assert_eq!(archive.file_type(), FileType::BuildManifest);
    assert!(archive.layouts().next().is_none() && archive.content().is_none());
    let packages = archive.packages().unwrap();
    let names: Vec<&str> = packages
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    assert_eq!(names, ["greet", "greet-devel", "greet-libs"]);
    for package in &packages {
        assert_eq!(package.build_release, 0);
        assert_eq!(
            texts(&package.build_depends),
            BTreeSet::from(["binary(make)".to_owned(), "binary(pkg-config)".to_owned()])
        );
    }
    let jsonc = std::fs::read_to_string(out.join("manifest.x86_64.jsonc")).unwrap();
    assert!(jsonc.starts_with("/** Human readable report. This is not consumed by boulder */\n{\n\t\"manifest-version\": \"0.2\",\n"));
    assert!(jsonc.ends_with("}\n"));
    let json: serde_json::Value =
        serde_json::from_str(&jsonc[jsonc.find('\n').unwrap()..]).unwrap();
    assert_eq!(json["source-name"], "greet");
    assert_eq!(json["source-version"], "1.0");
    assert_eq!(json["source-release"], "1");
    assert_eq!(
        json["packages"]["greet-devel"]["depends"],
        serde_json::json!(["greet"])
    );
    assert_eq!(
        json["packages"]["greet-libs"]["files"],
        serde_json::json!(["/usr/lib/libgreet.so.1", "/usr/lib/libgreet.so.1.0.0"])
    );
    for package in &packages {
        let reported = &json["packages"][&package.name];
        let provides: BTreeSet<String> = reported["provides"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(provides, texts(&package.provides));
    }
}

fn moss_binary() -> PathBuf {
    let dir = Path::new(BOULDER).parent().unwrap();
    let moss = dir.join("moss");
    if !moss.exists() {
        let target_dir = dir.parent().unwrap();
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "moss-client", "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building moss failed");
    }
    moss
}

fn moss(root: &Path, args: &[&str]) -> String {
    let output = Command::new(moss_binary())
        .arg("-D")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "moss {args:?} failed:\n{text}");
    text
}

#[test]
fn the_index_installs_with_moss_and_the_programs_run() {
    let built = built();
    let index = built.out.join("stone.index");
    let archive = Archive::open(&index).unwrap();
    let indexed: BTreeSet<String> = archive
        .packages()
        .unwrap()
        .into_iter()
        .map(|package| package.name)
        .collect();
    assert_eq!(indexed.len(), 9, "{indexed:?}");
    let root = tempfile::tempdir().unwrap();
    let uri = format!("file://{}", index.display());
    moss(
        root.path(),
        &["repo", "add", "examples", &uri, "--unsigned"],
    );
    let log = moss(
        root.path(),
        &["install", "-y", "greet", "fortune-lite", "motd"],
    );
    // greet-libs and host-runtime come in through the derived soname/interpreter dependencies.
    for pulled in ["greet-libs", "host-runtime"] {
        assert!(log.contains(pulled), "{log}");
    }
    let usr = root.path().join("usr");
    for path in [
        "bin/greet",
        "lib/libgreet.so.1.0.0",
        "sbin/motd-update",
        "lib/libc.so.6",
    ] {
        assert!(
            usr.join(path).exists(),
            "{path} missing after install:\n{log}"
        );
    }
    assert!(
        !usr.join("include/greet.h").exists(),
        "greet-devel was not asked for"
    );
    // The transaction trigger shipped by fortune-lite ran its static indexer in the new /usr.
    let index = std::fs::read_to_string(usr.join("share/fortune-lite/index")).unwrap();
    assert_eq!(index.lines().count(), 3, "{index}");
    // The packaged, stripped program runs with the packaged loader and libraries.
    let output = Command::new(usr.join("lib/ld-linux-x86-64.so.2"))
        .arg("--library-path")
        .arg(usr.join("lib"))
        .arg(usr.join("bin/greet"))
        .arg("serpent")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Hello, serpent, from libgreet!\n"
    );
}

#[test]
fn dependency_kinds_are_known_to_upstream() {
    for dir in ["greet", "fortune-lite", "motd", "host-runtime"] {
        for (name, (package, _)) in packages_in(&built().out.join(dir)) {
            for dependency in package.depends.iter().chain(&package.provides) {
                assert!(
                    !matches!(dependency.kind, DependencyKind::Unknown(_)),
                    "{name}: {dependency}"
                );
            }
        }
    }
}

#[test]
fn the_engine_build_root_installs_build_dependencies_from_a_repository() {
    use boulder::root::{BuildRoot, EngineRoot};
    let built = built();
    let index = built.out.join("stone.index");
    let uri = format!("file://{}", index.display());
    let engine = EngineRoot::unsigned(vec![("examples".to_owned(), uri.clone())]);
    assert_eq!(engine.describe(), "moss engine from examples");
    let root = tempfile::tempdir().unwrap();
    // Provider strings, as recipes write build dependencies.
    let wanted = [
        "pkgconfig(greet)".to_owned(),
        "binary(fortune-lite)".to_owned(),
    ];
    let composed = engine.compose(root.path(), &wanted, false).unwrap();
    assert!(composed.binds.is_empty() && composed.check_script.is_none());
    let usr = root.path().join("usr");
    for path in [
        "lib/pkgconfig/greet.pc",
        "include/greet.h",
        "bin/greet",
        "lib/libgreet.so.1",
        "bin/fortune-lite",
        "lib/libc.so.6",
    ] {
        assert!(
            usr.join(path).exists(),
            "{path} missing from the composed root"
        );
    }
    assert!(root.path().join("etc/passwd").exists());
    // Composing again reuses the installation and its repository.
    engine.compose(root.path(), &wanted, false).unwrap();

    // Without --repo and without mossd, the repositories come from the system's installation.
    let system = tempfile::tempdir().unwrap();
    assert!(
        EngineRoot::from_installation(system.path()).is_err(),
        "no repositories yet"
    );
    moss(
        system.path(),
        &["repo", "add", "examples", &uri, "--unsigned"],
    );
    let from_system = EngineRoot::from_installation(system.path()).unwrap();
    assert_eq!(from_system.repositories, [("examples".to_owned(), uri)]);
    let other = tempfile::tempdir().unwrap();
    from_system
        .compose(other.path(), &["greet".to_owned()], false)
        .unwrap();
    assert!(other.path().join("usr/bin/greet").exists());
}

#[test]
fn mossd_composes_the_build_root_over_dbus() {
    use boulder::{root::BuildRoot, root_daemon::DaemonRoot};
    use moss_tests::bus::{Mossd, TestBus};
    let built = built();
    let index = format!("file://{}", built.out.join("stone.index").display());
    let bus = TestBus::start_with(false);
    let installation = tempfile::tempdir().unwrap();
    // The daemon's installation has the examples repository; boulder names no repository.
    moss(
        installation.path(),
        &["repo", "add", "examples", &index, "--unsigned"],
    );
    let _mossd = Mossd::start(&bus, installation.path(), &[]);
    let daemon = DaemonRoot {
        address: Some(bus.address.clone()),
    };
    assert!(daemon.is_available());
    assert!(
        !DaemonRoot {
            address: Some("unix:path=/nonexistent/bus".to_owned())
        }
        .is_available()
    );
    let build_root = tempfile::tempdir().unwrap();
    let target = build_root.path().join("root");
    daemon
        .compose(
            &target,
            &["pkgconfig(greet)".to_owned(), "binary(greet)".to_owned()],
            false,
        )
        .unwrap();
    let usr = target.join("usr");
    for path in [
        "lib/pkgconfig/greet.pc",
        "include/greet.h",
        "bin/greet",
        "lib/libgreet.so.1",
        "lib/libc.so.6",
    ] {
        assert!(
            usr.join(path).exists(),
            "{path} missing from the root mossd composed"
        );
    }
    assert!(target.join("etc/passwd").exists());
    let error = daemon
        .compose(
            &build_root.path().join("other"),
            &["no-such-package".to_owned()],
            false,
        )
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("mossd could not compose the build root"),
        "{error}"
    );
}

//! Analysis on fake install trees: ELF objects compiled by the host's gcc (64- and 32-bit, with
//! and without RUNPATH), pkg-config, cmake and python metadata, libtool archives.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use boulder::{
    analysis::{self, Findings},
    collect::{self, InstalledEntry},
};

fn gcc(args: &[&str], dir: &Path) {
    let output = Command::new("gcc")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write(root: &Path, path: &str, text: &str) -> PathBuf {
    let full = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(&full, text).unwrap();
    full
}

fn analyse_all(root: &Path) -> Vec<(InstalledEntry, Findings)> {
    collect::walk(root)
        .unwrap()
        .into_iter()
        .map(|entry| {
            let findings = analysis::analyse(&entry, root, true);
            (entry, findings)
        })
        .collect()
}

fn texts(findings: &Findings) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        findings.provides.iter().map(ToString::to_string).collect(),
        findings.depends.iter().map(ToString::to_string).collect(),
    )
}

fn find<'a>(all: &'a [(InstalledEntry, Findings)], path: &str) -> &'a Findings {
    &all.iter()
        .find(|(entry, _)| entry.path == path)
        .unwrap_or_else(|| panic!("{path} not walked"))
        .1
}

#[test]
fn elf_objects_give_sonames_interpreters_and_private_library_paths() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("install");
    let src = work.path();
    std::fs::write(src.join("foo.c"), "int foo(void) { return 42; }\n").unwrap();
    std::fs::write(
        src.join("main.c"),
        "int foo(void);\nint main(void) { return foo() == 42 ? 0 : 1; }\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("usr/lib/foo")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("usr/lib32")).unwrap();
    // A private library under /usr/lib/foo, found through RUNPATH=$ORIGIN/../lib/foo.
    gcc(
        &[
            "-shared",
            "-fPIC",
            "-Wl,--build-id",
            "-Wl,-soname,libfoo.so.2",
            "-o",
            root.join("usr/lib/foo/libfoo.so.2").to_str().unwrap(),
            "foo.c",
        ],
        src,
    );
    gcc(
        &[
            "-Wl,--build-id",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib/foo",
            "-o",
            root.join("usr/bin/app").to_str().unwrap(),
            "main.c",
            root.join("usr/lib/foo/libfoo.so.2").to_str().unwrap(),
        ],
        src,
    );
    // A 32-bit library without a C library: enough for the analysis.
    gcc(
        &[
            "-m32",
            "-nostdlib",
            "-shared",
            "-fPIC",
            "-Wl,--build-id",
            "-Wl,-soname,libx.so.1",
            "-o",
            root.join("usr/lib32/libx.so.1").to_str().unwrap(),
            "foo.c",
        ],
        src,
    );
    write(&root, "/usr/lib/libfoo.la", "# libtool\n");

    let all = analyse_all(&root);
    let (provides, depends) = texts(find(&all, "/usr/bin/app"));
    assert_eq!(provides, BTreeSet::from(["binary(app)".to_owned()]));
    assert!(
        depends.contains("soname(foo/libfoo.so.2(x86_64))"),
        "{depends:?}"
    );
    assert!(depends.contains("soname(libc.so.6(x86_64))"), "{depends:?}");
    assert!(
        depends
            .iter()
            .any(|d| d.starts_with("interpreter(") && d.ends_with("(x86_64))")),
        "{depends:?}"
    );
    let (provides, _) = texts(find(&all, "/usr/lib/foo/libfoo.so.2"));
    assert_eq!(
        provides,
        BTreeSet::from(["soname(foo/libfoo.so.2(x86_64))".to_owned()])
    );
    let (provides, depends) = texts(find(&all, "/usr/lib32/libx.so.1"));
    assert_eq!(
        provides,
        BTreeSet::from(["soname(libx.so.1(386))".to_owned()])
    );
    assert!(depends.is_empty(), "{depends:?}");
    assert!(
        find(&all, "/usr/lib/libfoo.la").drop,
        "libtool archives are dropped"
    );

    // Split and strip plans: 32-bit debug info goes below lib32, programs are fully stripped.
    let entries: Vec<InstalledEntry> = all.iter().map(|(entry, _)| entry.clone()).collect();
    let jobs = analysis::strip_jobs(&entries, true, true);
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let job = |path: &str| jobs.iter().find(|job| job.path == path).unwrap();
    assert!(job("/usr/bin/app").full_strip);
    assert!(!job("/usr/lib/foo/libfoo.so.2").full_strip);
    assert!(
        job("/usr/lib32/libx.so.1")
            .debug_path
            .as_deref()
            .unwrap()
            .starts_with("/usr/lib32/debug/.build-id/")
    );
    assert!(
        job("/usr/bin/app")
            .debug_path
            .as_deref()
            .unwrap()
            .starts_with("/usr/lib/debug/.build-id/")
    );
    assert!(analysis::strip_jobs(&entries, false, false).is_empty());
    let script = analysis::strip_script(&jobs, "/mason/install", false, true);
    assert!(
        script.contains("--only-keep-debug '/mason/install/usr/bin/app'"),
        "{script}"
    );
    assert!(
        script.contains("\"$STRIP\" -g --strip-unneeded '/mason/install/usr/lib/foo/libfoo.so.2'"),
        "{script}"
    );
}

#[test]
fn pkgconfig_cmake_python_and_binaries() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    write(
        root,
        "/usr/lib/pkgconfig/foo.pc",
        "Name: foo\nRequires: glib-2.0 >= 2.80, zlib\nRequires.private: libzstd\n",
    );
    write(
        root,
        "/usr/lib32/pkgconfig/foo.pc",
        "Name: foo\nRequires: zlib, bar\n",
    );
    write(root, "/usr/lib32/pkgconfig/zlib.pc", "Name: zlib\n");
    write(root, "/usr/lib/cmake/Foo/FooConfig.cmake", "");
    write(root, "/usr/lib/cmake/bar/bar-config.cmake", "");
    write(root, "/usr/lib/cmake/baz/Baz-Config.cmake", "");
    write(
        root,
        "/usr/lib/python3.12/site-packages/My_Pkg-1.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: My_Pkg\nRequires-Dist: requests>=2\nRequires-Dist: pytest; extra == 'test'\n\nBody\n",
    );
    write(root, "/usr/sbin/food", "#!/bin/sh\n");
    let all = analyse_all(root);
    let (provides, depends) = texts(find(&all, "/usr/lib/pkgconfig/foo.pc"));
    assert_eq!(provides, BTreeSet::from(["pkgconfig(foo)".to_owned()]));
    assert_eq!(
        depends,
        [
            "pkgconfig(glib-2.0)",
            "pkgconfig(libzstd)",
            "pkgconfig(zlib)"
        ]
        .map(str::to_owned)
        .into()
    );
    let (provides, depends) = texts(find(&all, "/usr/lib32/pkgconfig/foo.pc"));
    assert_eq!(provides, BTreeSet::from(["pkgconfig32(foo)".to_owned()]));
    // zlib.pc exists for 32-bit, bar.pc does not.
    assert_eq!(
        depends,
        ["pkgconfig(bar)", "pkgconfig32(zlib)"]
            .map(str::to_owned)
            .into()
    );
    assert_eq!(
        texts(find(&all, "/usr/lib/cmake/Foo/FooConfig.cmake")).0,
        BTreeSet::from(["cmake(Foo)".to_owned()])
    );
    assert_eq!(
        texts(find(&all, "/usr/lib/cmake/bar/bar-config.cmake")).0,
        BTreeSet::from(["cmake(bar)".to_owned()])
    );
    assert!(
        texts(find(&all, "/usr/lib/cmake/baz/Baz-Config.cmake"))
            .0
            .is_empty()
    );
    let (provides, depends) = texts(find(
        &all,
        "/usr/lib/python3.12/site-packages/My_Pkg-1.0.dist-info/METADATA",
    ));
    assert_eq!(provides, BTreeSet::from(["python(my-pkg)".to_owned()]));
    assert_eq!(depends, BTreeSet::from(["python(requests)".to_owned()]));
    assert_eq!(
        texts(find(&all, "/usr/sbin/food")).0,
        BTreeSet::from(["sysbinary(food)".to_owned()])
    );
    assert_eq!(analysis::pep503("Foo__bar.Baz"), "foo-bar-baz");
}

#[test]
fn compressman_compresses_man_and_info_pages_and_repoints_links() {
    use std::os::unix::fs::MetadataExt;
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let page = write(
        root,
        "/usr/share/man/man1/foo.1",
        ".TH FOO 1\nfoo does things\n",
    );
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&page)
        .unwrap()
        .set_modified(old)
        .unwrap();
    write(root, "/usr/share/man/man9/k.9", "kernel\n");
    write(root, "/usr/share/info/foo.info", "info\n");
    write(root, "/usr/share/doc/foo/README.1", "not a man page\n");
    std::os::unix::fs::symlink("foo.1", root.join("usr/share/man/man1/bar.1")).unwrap();
    assert_eq!(boulder::compress::compress_pages(root).unwrap(), 4);
    let compressed = root.join("usr/share/man/man1/foo.1.zst");
    assert_eq!(
        zstd::decode_all(std::fs::File::open(&compressed).unwrap()).unwrap(),
        b".TH FOO 1\nfoo does things\n"
    );
    assert_eq!(
        std::fs::metadata(&compressed).unwrap().mtime(),
        1_700_000_000
    );
    assert!(!page.exists());
    assert!(
        root.join("usr/share/man/man9/k.9.zst").exists(),
        "section 9 too"
    );
    assert!(root.join("usr/share/info/foo.info.zst").exists());
    assert!(root.join("usr/share/doc/foo/README.1").exists());
    assert_eq!(
        std::fs::read_link(root.join("usr/share/man/man1/bar.1.zst")).unwrap(),
        Path::new("foo.1.zst")
    );
}

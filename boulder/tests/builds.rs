//! Whole builds with `boulder build --host-root` beyond the examples: failures, `--verify`,
//! git upstreams with ref pinning, reproducibility, emul32 and breakpoints.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use boulder::upstream::sha256_file;

const BOULDER: &str = env!("CARGO_BIN_EXE_boulder");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn boulder(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BOULDER).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_failing_phase_fails_the_build_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("stone.yaml");
    std::fs::write(
        &recipe,
        "name: broken\nversion: 1\nrelease: 1\nhomepage: https://example.invalid\nlicense: MIT\ntoolchain: gnu\n\
         build: |\n    echo about to fail\n    false\ninstall: |\n    true\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let (ok, _, stderr) = boulder(&[
        "build",
        recipe.to_str().unwrap(),
        "--host-root",
        "--cache-dir",
        cache.to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("about to fail"), "{stderr}");
    assert!(
        stderr.contains("the x86_64 build step failed with exit code 1"),
        "{stderr}"
    );

    std::fs::write(
        &recipe,
        "name: nofile\nversion: 1\nrelease: 1\nhomepage: https://example.invalid\nlicense: MIT\ntoolchain: gnu\n\
         install: |\n    install -Dm644 /dev/null %(installroot)/etc/nofile.conf\n",
    )
    .unwrap();
    let (ok, _, stderr) = boulder(&[
        "build",
        recipe.to_str().unwrap(),
        "--host-root",
        "--cache-dir",
        cache.to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("files outside /usr cannot be packaged")
            && stderr.contains("/etc/nofile.conf"),
        "{stderr}"
    );
}

#[test]
fn verify_compares_with_a_previous_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("motd");
    std::fs::create_dir_all(recipe.join("pkg")).unwrap();
    for file in ["stone.yaml", "pkg/motd-update", "pkg/10-welcome.motd"] {
        std::fs::copy(examples().join("motd").join(file), recipe.join(file)).unwrap();
    }
    let cache = dir.path().join("cache");
    let build = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "build",
            recipe.to_str().unwrap(),
            "--host-root",
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        args.extend(extra);
        args.extend(["-o", out.to_str().unwrap()]);
        let (ok, _, stderr) = boulder(&args.iter().map(|s| &**s).collect::<Vec<_>>());
        (ok, stderr, out)
    };
    let (ok, stderr, first) = build("first", &[]);
    assert!(ok, "{stderr}");
    let manifest = first.join("manifest.x86_64.bin");
    let (ok, stderr, second) = build("second", &["--verify", manifest.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(second.join("motd-2026.11-1-1-x86_64.stone").exists());
    assert!(
        !second.join("manifest.x86_64.bin").exists(),
        "a verified build leaves manifests alone"
    );
    let text = std::fs::read_to_string(recipe.join("stone.yaml")).unwrap();
    std::fs::write(
        recipe.join("stone.yaml"),
        text.replace("%tmpfiles f /run/motd", "%tmpfiles f /run/motd2"),
    )
    .unwrap();
    std::fs::write(
        recipe.join("stone.yaml"),
        std::fs::read_to_string(recipe.join("stone.yaml"))
            .unwrap()
            .replace(
                "    - \"%(name)-docs\":\n        paths:\n            - /usr/share/doc\n",
                "",
            ),
    )
    .unwrap();
    let (ok, stderr, _) = build("third", &["--verify", manifest.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("the build does not match") && stderr.contains("motd"),
        "{stderr}"
    );
    let jsonc = first.join("manifest.x86_64.jsonc");
    let (ok, stderr, _) = build("fourth", &["--verify", jsonc.to_str().unwrap()]);
    assert!(
        !ok && stderr.contains("takes the binary manifest"),
        "{stderr}"
    );
}

#[test]
fn a_recipe_with_a_git_upstream_builds_and_gets_its_tag_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("hello.git");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("hello.sh"), "#!/bin/sh\necho hello from git\n").unwrap();
    git(&repo, &["add", "hello.sh"]);
    git(&repo, &["commit", "-q", "-m", "hello"]);
    git(&repo, &["tag", "v2"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]);
    let recipe_dir = dir.path().join("recipe");
    std::fs::create_dir(&recipe_dir).unwrap();
    std::fs::write(
        recipe_dir.join("stone.yaml"),
        format!(
            "name: hello-git\nversion: 2\nrelease: 1\nhomepage: https://example.invalid\nlicense: MIT\ntoolchain: gnu\n\
             upstreams:\n    - git|file://{} : v2\ninstall: |\n    %install_bin hello.sh\n",
            repo.display()
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let (ok, _, stderr) = boulder(&[
        "build",
        recipe_dir.to_str().unwrap(),
        "--host-root",
        "--cache-dir",
        cache.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(recipe_dir.join("stone.yaml")).unwrap();
    assert!(text.contains(&format!(" : {commit} # v2\n")), "{text}");
    assert!(
        stderr.contains(&format!("pinned file://{} v2 to {commit}", repo.display())),
        "{stderr}"
    );
    let archive = stone::Archive::open(out.join("hello-git-2-1-1-x86_64.stone")).unwrap();
    let targets: Vec<String> = archive
        .layouts()
        .map(|l| l.entry.target().unwrap().to_owned())
        .collect();
    assert_eq!(targets, ["bin/hello.sh"]);
    assert_eq!(
        archive.packages().unwrap()[0].provides[0].to_string(),
        "binary(hello.sh)"
    );
}

#[test]
fn builds_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut outputs = Vec::new();
    for round in ["one", "two"] {
        let out = dir.path().join(round);
        let output = Command::new(BOULDER)
            .args([
                "build",
                examples().join("greet").to_str().unwrap(),
                "--host-root",
                "--cache-dir",
            ])
            .arg(&cache)
            .arg("-o")
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut files: Vec<(String, String)> = std::fs::read_dir(&out)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    sha256_file(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        outputs.push(files);
    }
    assert_eq!(outputs[0].len(), 6);
    assert_eq!(
        outputs[0], outputs[1],
        "the same recipe and sources give the same bytes"
    );
}

/// Built for both ABIs with the host's gcc (`-m32 -nostdlib`: no 32-bit C library needed).
const EMUL32_RECIPE: &str = r#"name        : tiny
version     : 0.3
release     : 1
homepage    : https://example.invalid/tiny
summary     : A libc-free library built for both ABIs
description : |
    Exercises the emul32 pipeline.
license     : MPL-2.0
toolchain   : gnu
emul32      : true
build       : |
    printf 'int tiny(void) { return %%d; }\n' %(libsuffix)0 > tiny.c
    %(cc) $CFLAGS -fPIC -nostdlib -shared -Wl,--build-id -Wl,-soname,libtiny.so.1 -o libtiny.so.1 tiny.c
    printf 'prefix=/usr\nlibdir=%(libdir)\nName: tiny\nDescription: t\nVersion: 0.3\nLibs: -ltiny\n' > tiny.pc
install     : |
    install -Dm00755 libtiny.so.1 %(installroot)%(libdir)/libtiny.so.1
    ln -s libtiny.so.1 %(installroot)%(libdir)/libtiny.so
    install -Dm00644 tiny.pc %(installroot)%(libdir)/pkgconfig/tiny.pc
profiles    :
    - emul32:
        environment: |
            export TINY_PROFILE=emul32
        install: |
            install -Dm00755 libtiny.so.1 %(installroot)%(libdir)/libtiny.so.1
            ln -s libtiny.so.1 %(installroot)%(libdir)/libtiny.so
            install -Dm00644 tiny.pc %(installroot)%(libdir)/pkgconfig/tiny.pc
            install -Dm00644 /dev/null %(installroot)%(datadir)/tiny/built-by-$TINY_PROFILE
"#;

#[test]
fn emul32_builds_both_targets_into_32bit_packages() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("tiny");
    std::fs::create_dir(&recipe).unwrap();
    std::fs::write(recipe.join("stone.yaml"), EMUL32_RECIPE).unwrap();
    let out = dir.path().join("out");
    let (ok, _, stderr) = boulder(&[
        "build",
        recipe.to_str().unwrap(),
        "--host-root",
        "--cache-dir",
        dir.path().join("cache").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    // emul32 runs first, then native.
    let emul32 = stderr.find("==> emul32/x86_64 build").unwrap();
    let native = stderr.find("==> x86_64 build").unwrap();
    assert!(emul32 < native, "{stderr}");
    let package = |name: &str| {
        let archive =
            stone::Archive::open(out.join(format!("{name}-0.3-1-1-x86_64.stone"))).unwrap();
        let meta = archive.packages().unwrap().remove(0);
        let files: Vec<String> = archive
            .layouts()
            .map(|l| l.entry.target().unwrap().to_owned())
            .collect();
        let provides: Vec<String> = meta.provides.iter().map(ToString::to_string).collect();
        let depends: Vec<String> = meta.depends.iter().map(ToString::to_string).collect();
        (files, provides, depends)
    };
    let (files, provides, _) = package("tiny");
    assert_eq!(files, ["lib/libtiny.so.1", "share/tiny/built-by-emul32"]);
    assert_eq!(provides, ["soname(libtiny.so.1(x86_64))"]);
    let (files, provides, depends) = package("tiny-32bit");
    assert_eq!(files, ["lib32/libtiny.so.1"]);
    assert_eq!(provides, ["soname(libtiny.so.1(386))"]);
    assert_eq!(depends, ["name(tiny)"]);
    let (files, provides, depends) = package("tiny-32bit-devel");
    assert_eq!(files, ["lib32/libtiny.so", "lib32/pkgconfig/tiny.pc"]);
    assert_eq!(provides, ["pkgconfig32(tiny)"]);
    assert_eq!(depends, ["name(tiny-32bit)", "name(tiny-devel)"]);
    let (files, _, _) = package("tiny-32bit-dbginfo");
    assert!(
        files.len() == 1 && files[0].starts_with("lib32/debug/.build-id/"),
        "{files:?}"
    );
    let (files, _, _) = package("tiny-dbginfo");
    assert!(
        files.len() == 1 && files[0].starts_with("lib/debug/.build-id/"),
        "{files:?}"
    );
    // The manifest lists everything but the two dbginfo packages.
    let manifest = stone::Archive::open(out.join("manifest.x86_64.bin")).unwrap();
    let names: Vec<String> = manifest
        .packages()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        ["tiny", "tiny-32bit", "tiny-32bit-devel", "tiny-devel"]
    );
}

#[test]
fn breakpoints_open_a_shell_on_a_terminal_and_are_logged_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("bp");
    std::fs::create_dir(&recipe).unwrap();
    let write = |breakpoint: &str| {
        std::fs::write(
            recipe.join("stone.yaml"),
            format!(
                "name: bp\nversion: 1\nrelease: 1\nhomepage: https://example.invalid\nlicense: MIT\ntoolchain: gnu\n\
                 install: |\n    mkdir -p %(installroot)/usr/share/bp\n    {breakpoint}\n    test -f %(installroot)/usr/share/bp/from-shell\n"
            ),
        )
        .unwrap();
    };
    let cache = dir.path().join("cache");
    let args = |out: &str| {
        format!(
            "{BOULDER} build {} --host-root --cache-dir {} -o {}",
            recipe.display(),
            cache.display(),
            dir.path().join(out).display()
        )
    };
    // On a terminal (a pty from `script`) the shell reads our commands: it sees the exported
    // definitions and actions, and what it creates is there when the phase goes on.
    write("%break_continue");
    let mut child = Command::new("script")
        .args(["-qec", &args("tty"), "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the build on a pty");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    use std::io::Write;
    stdin
        .write_all(b"echo \"$d_libdir\" > /mason/install/usr/share/bp/from-shell; type a_make_install | head -2; exit\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("a_make_install is a function"), "{text}");
    let archive = stone::Archive::open(dir.path().join("tty/bp-1-1-1-x86_64.stone")).unwrap();
    let files: Vec<String> = archive
        .layouts()
        .map(|l| l.entry.target().unwrap().to_owned())
        .collect();
    assert_eq!(files, ["share/bp/from-shell"]);

    // Without a terminal the breakpoint is logged; the phase goes on (and fails here, since no
    // shell made the file).
    let (ok, _, stderr) = boulder(&args("plain").split(' ').skip(1).collect::<Vec<_>>());
    assert!(!ok);
    assert!(
        stderr.contains("breakpoint at line 2: no terminal"),
        "{stderr}"
    );
    write("%break_exit");
    let (ok, _, stderr) = boulder(&args("exit").split(' ').skip(1).collect::<Vec<_>>());
    assert!(!ok);
    assert!(
        stderr.contains("stopped at the breakpoint in the x86_64 install step, line 2"),
        "{stderr}"
    );
}

#[test]
fn the_host_root_checks_build_dependencies_and_the_compiler() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("needs");
    std::fs::create_dir(&recipe).unwrap();
    std::fs::write(
        recipe.join("stone.yaml"),
        "name: needs\nversion: 1\nrelease: 1\nhomepage: https://example.invalid\nlicense: MIT\n\
         builddeps:\n  - binary(no-such-tool-here)\n  - pkgconfig(no-such-module-here)\n  - binary(make)\nbuild: make\n",
    )
    .unwrap();
    let (ok, _, stderr) = boulder(&[
        "build",
        recipe.to_str().unwrap(),
        "--host-root",
        "--cache-dir",
        dir.path().join("cache").to_str().unwrap(),
        "-o",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("the host lacks build dependency binary(no-such-tool-here)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the host lacks build dependency pkgconfig(no-such-module-here)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("lacks build dependency binary(make)"),
        "{stderr}"
    );
    let clang = std::process::Command::new("sh")
        .args(["-c", "command -v clang"])
        .output()
        .unwrap();
    if !clang.status.success() {
        // The default toolchain is llvm: without clang on the host that is reported too.
        assert!(
            stderr.contains("the host lacks build dependency binary(clang)"),
            "{stderr}"
        );
    }
    assert!(stderr.contains("the root check step failed"), "{stderr}");
}

//! The parts of the pipeline around the examples: the container's namespaces, the upstream
//! cache, git upstreams, drafts and the recipe subcommands.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use boulder::{
    container::{self, Bind, ContainerSpec},
    draft::{self, System},
    recipe::Upstream,
    upstream::{UpstreamCache, UpstreamError, sha256_file},
};

const BOULDER: &str = env!("CARGO_BIN_EXE_boulder");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes")
}

fn in_container(script: &str, networking: bool) -> (i32, Vec<String>) {
    let root = tempfile::tempdir().unwrap();
    container::prepare_host_style_root(root.path(), networking).unwrap();
    let spec = ContainerSpec {
        rootfs: root.path().to_path_buf(),
        binds: vec![Bind {
            source: "/usr".into(),
            target: "/usr".into(),
            read_only: true,
        }],
        networking,
        workdir: "/".into(),
        command: vec!["/usr/bin/bash".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/usr/sbin".into())],
    };
    let mut lines = Vec::new();
    let code = container::run(Path::new(BOULDER), &spec, |line| {
        lines.push(line.to_owned())
    })
    .unwrap();
    (code, lines)
}

#[test]
fn the_container_has_its_own_user_pid_mount_and_network_namespaces() {
    let script = "echo uid=$(id -u); cat /proc/self/uid_map | tr -s ' '; echo pid1=$(cat /proc/1/comm); \
                  echo host=$(hostname); ls /sys/class/net | tr '\\n' ' '; echo; \
                  touch /usr/boulder-test 2>/dev/null && echo usr-writable || echo usr-readonly; \
                  ls /proc | grep -c '^[0-9]'";
    let (code, lines) = in_container(script, false);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines[0], "uid=0");
    let caller = nix::unistd::Uid::current();
    assert_eq!(lines[1].trim(), format!("0 {caller} 1"));
    assert_eq!(lines[2], "pid1=boulder", "PID 1 is our init stage");
    assert_eq!(lines[3], "host=boulder");
    let mut host_net: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host_net.sort();
    // /sys is the host's, but the network namespace only shows its own loopback.
    assert_eq!(lines[4].trim(), "lo", "host has {host_net:?}");
    assert_eq!(lines[5], "usr-readonly");
    let processes: usize = lines[6].parse().unwrap();
    assert!(
        processes <= 5,
        "only the container's processes are visible: {processes}"
    );

    let (code, lines) = in_container("ls /sys/class/net | wc -l; exit 7", true);
    assert_eq!(code, 7, "the command's exit code comes back");
    let interfaces: usize = lines[0].trim().parse().unwrap();
    assert_eq!(
        interfaces,
        host_net.len(),
        "networking: true keeps the host's network"
    );
}

fn plain(url: &str, hash: &str) -> Upstream {
    Upstream::Plain {
        url: url.to_owned(),
        hash: hash.to_owned(),
        rename: None,
        stripdirs: 1,
        unpack: true,
        unpackdir: None,
    }
}

#[test]
fn plain_upstreams_are_verified_and_cached_by_url_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let archive = examples().join("greet/greet-1.0.tar.gz");
    let hash = sha256_file(&archive).unwrap();
    let cache = UpstreamCache::new(dir.path().join("cache"));
    let url = format!("file://{}", archive.display());
    let sources = dir.path().join("sources");
    cache
        .fetch(&plain(&url, &hash), dir.path(), &sources)
        .unwrap();
    let placed = sources.join("greet-1.0.tar.gz");
    assert_eq!(sha256_file(&placed).unwrap(), hash);
    let stored = cache.plain_path(&url, &hash);
    assert!(stored.exists());
    assert_ne!(
        stored,
        cache.plain_path(&url, &"0".repeat(64)),
        "the hash is part of the key"
    );
    // A cached file is used without touching the URL again.
    let moved = dir.path().join("moved.tar.gz");
    std::fs::copy(&archive, &moved).unwrap();
    let moved_url = format!("file://{}", moved.display());
    cache
        .fetch(&plain(&moved_url, &hash), dir.path(), &sources)
        .unwrap();
    std::fs::remove_file(&moved).unwrap();
    cache
        .fetch(&plain(&moved_url, &hash), dir.path(), &sources)
        .unwrap();
    // A corrupted cache entry is fetched again (and then fails, the source being gone).
    std::fs::write(cache.plain_path(&moved_url, &hash), b"corrupt").unwrap();
    assert!(
        cache
            .fetch(&plain(&moved_url, &hash), dir.path(), &sources)
            .is_err()
    );
    // A wrong hash is an error and leaves nothing in the cache.
    let wrong = "1".repeat(64);
    let error = cache
        .fetch(&plain(&url, &wrong), dir.path(), &sources)
        .unwrap_err();
    assert!(
        matches!(&error, UpstreamError::HashMismatch { actual, .. } if *actual == hash),
        "{error}"
    );
    assert!(!cache.plain_path(&url, &wrong).exists());
    // A file whose hash is not known yet lands under the key of the hash it has.
    let fresh = UpstreamCache::new(dir.path().join("fresh"));
    let (stored, found) = fresh.fetch_new(&url, dir.path()).unwrap();
    assert_eq!(found, hash);
    assert_eq!(stored, fresh.plain_path(&url, &hash));
    // `file:name` is relative to the recipe directory.
    cache
        .fetch(
            &plain("file:greet-1.0.tar.gz", &hash),
            &examples().join("greet"),
            &sources,
        )
        .unwrap();
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

#[test]
fn git_upstreams_resolve_tags_and_fetch_new_refs_into_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("tools.git");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "one\n").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "v1"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", repo.display());
    let cache = UpstreamCache::new(dir.path().join("cache"));
    let sources = dir.path().join("sources");
    let upstream = |git_ref: &str| Upstream::Git {
        url: url.clone(),
        git_ref: git_ref.to_owned(),
        clonedir: None,
    };
    assert_eq!(
        cache.fetch(&upstream("v1"), dir.path(), &sources).unwrap(),
        first
    );
    assert_eq!(
        std::fs::read_to_string(sources.join("tools.git/README")).unwrap(),
        "one\n"
    );
    // A ref the mirror does not have yet is fetched.
    std::fs::write(repo.join("README"), "two\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "two"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(
        cache
            .fetch(&upstream(&second), dir.path(), &sources)
            .unwrap(),
        second
    );
    assert_eq!(
        std::fs::read_to_string(sources.join("tools.git/README")).unwrap(),
        "two\n"
    );
    let error = cache
        .fetch(&upstream("no-such-tag"), dir.path(), &sources)
        .unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[test]
fn recipe_new_drafts_from_an_archive() {
    let archive = examples().join("fortune-lite/fortune-lite-1.2.tar.xz");
    let cache = tempfile::tempdir().unwrap();
    let draft = draft::draft(archive.to_str().unwrap(), cache.path()).unwrap();
    assert_eq!(
        (draft.name.as_str(), draft.version.as_str()),
        ("fortune-lite", "1.2")
    );
    assert_eq!(draft.hash, sha256_file(&archive).unwrap());
    assert_eq!(draft.system, System::Make);
    // The draft is itself a valid recipe.
    let (recipe, warnings) =
        boulder::recipe::Recipe::parse(&draft.text, Path::new("draft")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(recipe.source.version, "1.2");
    assert!(matches!(&recipe.upstreams[0], Upstream::Plain { hash, .. } if *hash == draft.hash));
    assert_eq!(recipe.build.build.as_deref(), Some("%make\n"));

    let tree = tempfile::tempdir().unwrap();
    let top = tree.path().join("proj-2.0");
    std::fs::create_dir_all(top.join("src")).unwrap();
    std::fs::write(
        top.join("meson.build"),
        "project('p')\ndep = dependency('glib-2.0')\n",
    )
    .unwrap();
    std::fs::write(top.join("CMakeLists.txt"), "find_package(ZLIB)\n").unwrap();
    let (system, deps) = draft::detect(tree.path());
    assert_eq!(system, System::Meson);
    assert!(
        deps.contains("pkgconfig(glib-2.0)") && deps.contains("cmake(ZLIB)"),
        "{deps:?}"
    );
    assert_eq!(
        draft::name_and_version(
            "https://github.com/P-H-C/phc-winner-argon2/archive/refs/tags/20190702.tar.gz"
        ),
        ("phc-winner-argon2".to_owned(), "20190702".to_owned())
    );
    assert_eq!(
        draft::name_and_version(
            "https://gitlab.freedesktop.org/xorg/lib/libxcvt/-/archive/v0.1.3/libxcvt-v0.1.3.tar.bz2"
        ),
        ("libxcvt".to_owned(), "0.1.3".to_owned())
    );
    assert_eq!(
        draft::name_and_version(
            "https://files.pythonhosted.org/packages/ab/cd/0123/Flit_Core-3.10.1.tar.gz"
        ),
        ("python-flit-core".to_owned(), "3.10.1".to_owned())
    );
    assert_eq!(
        draft::name_and_version("https://download.gnome.org/sources/glib/2.82/glib-2.82.4.tar.xz"),
        ("glib".to_owned(), "2.82.4".to_owned())
    );
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
fn recipe_check_and_parse_on_the_command_line() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/recipes");
    let argon2 = corpus.join("a/argon2/stone.yaml");
    let alacritty = corpus.join("a/alacritty");
    let (ok, stdout, stderr) = boulder(&[
        "recipe",
        "check",
        argon2.to_str().unwrap(),
        alacritty.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "2 recipes checked, 0 with errors\n");
    assert!(
        stderr.contains("alacritty/stone.yaml:15:15: `networking: yes` is a legacy boolean"),
        "{stderr}"
    );

    let qt = corpus.join("q/qt6-quick3d");
    let (ok, _, stderr) = boulder(&["recipe", "check", qt.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("unknown action `%qml_cache_qt6`"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = boulder(&[
        "recipe",
        "parse",
        "--format",
        "json",
        argon2.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["source"]["name"], "argon2");
    assert_eq!(json["source"]["version"], "20190702");
    assert_eq!(
        json["source"]["license"],
        serde_json::json!(["Apache-2.0", "CC0-1.0"])
    );
    assert_eq!(
        json["upstreams"][0]["hash"],
        "daf972a89577f8772602bf2eb38b6a3dd3d922bf5724d45e7f9589b5e830442c"
    );

    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("stone.yaml"),
        "name: x\nversion: 1\nrelease: 1\nhomepage: h\nemul32: perhaps\n",
    )
    .unwrap();
    let (ok, _, stderr) = boulder(&["recipe", "check", broken.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("stone.yaml:5:9: `emul32` must be true or false, found `perhaps`"),
        "{stderr}"
    );

    let (ok, stdout, _) = boulder(&["recipe", "macros", "make_install"]);
    assert!(ok);
    assert!(
        stdout.contains("%make install DESTDIR=\"%(installroot)\""),
        "{stdout}"
    );
}

#[test]
fn git_refs_are_pinned_in_place() {
    let commit = "0123456789abcdef0123456789abcdef01234567".to_owned();
    let text = "name: x # keep me\nupstreams:\n    - git|https://g.invalid/a.git : v1.0\n    - git|https://g.invalid/b.git :\n        ref: main\n        clonedir: b\nbuild: |\n    make\n";
    let pinned = boulder::upstream::pin_git_refs(
        text,
        &[
            (
                "https://g.invalid/a.git".into(),
                "v1.0".into(),
                commit.clone(),
            ),
            (
                "https://g.invalid/b.git".into(),
                "main".into(),
                commit.clone(),
            ),
        ],
    );
    assert_eq!(
        pinned,
        format!(
            "name: x # keep me\nupstreams:\n    - git|https://g.invalid/a.git : {commit} # v1.0\n    - git|https://g.invalid/b.git :\n        ref: {commit} # main\n        clonedir: b\nbuild: |\n    make\n"
        )
    );
    // The pinned recipe still parses to the commit.
    let recipe = format!("version: 1\nrelease: 1\nhomepage: h\n{pinned}");
    let (recipe, _) = boulder::recipe::Recipe::parse(&recipe, Path::new("x")).unwrap();
    assert!(matches!(&recipe.upstreams[0], Upstream::Git { git_ref, .. } if *git_ref == commit));
    assert!(matches!(&recipe.upstreams[1], Upstream::Git { git_ref, .. } if *git_ref == commit));
}

//! `boulder import-deb` on `.deb` files built here with `dpkg-deb --build`: Debian's directory
//! modes (private 0700, setgid, sticky) reach the stone's layout below `/usr` and the tmpfiles
//! lines that recreate `/etc` and `/var`, whether or not the directory holds files.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use boulder::deb;
use stone::{Archive, WriteOptions};

/// Write `files` (path, mode; a trailing `/` makes a directory) into a tree and pack it as a `.deb`.
fn build_deb(dir: &Path, name: &str, files: &[(&str, u32)]) -> PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: moss tests <tests@example.org>\nDescription: {name} for the import test\n directory modes\n"
        ),
    )
    .unwrap();
    for (path, _) in files {
        let on_disk = tree.join(path.trim_end_matches('/'));
        if path.ends_with('/') {
            fs::create_dir_all(&on_disk).unwrap();
        } else {
            fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
            fs::write(&on_disk, format!("{path}\n")).unwrap();
        }
    }
    // Modes last, deepest first, so that a private directory still takes its files.
    for (path, mode) in files.iter().rev() {
        let on_disk = tree.join(path.trim_end_matches('/'));
        fs::set_permissions(&on_disk, fs::Permissions::from_mode(*mode)).unwrap();
    }
    let deb = dir.join(format!("{name}_1.0-1_amd64.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&deb)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("dpkg-deb runs");
    assert!(status.success(), "dpkg-deb --build {name}");
    deb
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

const FILES: &[(&str, u32)] = &[
    ("usr/share/secret/", 0o700),
    ("usr/share/secret/key", 0o600),
    ("usr/lib/games/", 0o2775),
    ("usr/lib/games/score", 0o664),
    ("lib/x86_64-linux-gnu/plugins/", 0o750),
    ("lib/x86_64-linux-gnu/plugins/one.conf", 0o644),
    ("usr/share/empty-private/", 0o700),
    ("etc/private/", 0o700),
    ("etc/private/settings.conf", 0o600),
    ("var/spool/drop/", 0o1777),
];

#[test]
fn directory_modes_survive_placement_and_reach_the_stone() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path(), "modes", FILES);

    let placed = deb::unpack_and_place(&deb, &dir.path().join("work")).unwrap();
    let usr = placed.root.join("usr");
    assert_eq!(mode_of(&usr.join("share/secret")), 0o700);
    assert_eq!(mode_of(&usr.join("share/secret/key")), 0o600);
    assert_eq!(mode_of(&usr.join("lib/games")), 0o2775);
    // `/lib` moved below `/usr` keeps its mode too.
    assert_eq!(mode_of(&usr.join("lib/x86_64-linux-gnu/plugins")), 0o750);
    assert_eq!(mode_of(&usr.join("share/empty-private")), 0o700);
    assert!(
        !placed.dropped.iter().any(|path| path.starts_with("/usr")
            || path.starts_with("/lib")
            || path.starts_with("/etc")
            || path.starts_with("/var")),
        "nothing of the package is left out: {:?}",
        placed.dropped
    );

    let tmpfiles = fs::read_to_string(usr.join("lib/tmpfiles.d/zz-deb-modes.conf")).unwrap();
    let lines: Vec<&str> = tmpfiles.lines().skip(1).collect();
    assert!(
        lines.contains(&"d /etc/private 0700 - - -"),
        "a non-empty private /etc directory is recreated with its mode:\n{tmpfiles}"
    );
    assert!(
        lines.contains(&"d /var/spool/drop 1777 - - -"),
        "{tmpfiles}"
    );
    assert!(
        lines.contains(
            &"C /etc/private/settings.conf - - - - /usr/share/factory/etc/private/settings.conf"
        ),
        "{tmpfiles}"
    );

    let out = dir.path().join("stones");
    let report = deb::convert(
        &[deb],
        &dir.path().join("work"),
        &out,
        1,
        WriteOptions::default(),
    )
    .unwrap();
    assert_eq!(report.stones.len(), 1);
    let archive = Archive::open(&report.stones[0]).unwrap();
    let modes: BTreeMap<String, u32> = archive
        .layouts()
        .map(|layout| (layout.entry.target().unwrap().to_owned(), layout.mode))
        .collect();
    assert_eq!(modes["share/secret"], 0o40700, "{modes:?}");
    assert_eq!(modes["share/secret/key"], 0o100600);
    assert_eq!(modes["lib/games"], 0o42775);
    assert_eq!(modes["lib/x86_64-linux-gnu/plugins"], 0o40750);
    assert_eq!(modes["share/empty-private"], 0o40700);
    assert_eq!(
        modes["share/factory/etc/private/settings.conf"], 0o100600,
        "the factory copy keeps the file's mode"
    );
}

//! Boot entries: the exact entries, kernels and loader.conf written after install, upgrade,
//! rollback and prune, on XBOOTLDR and ESP directories, with fake kernels and initrds.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::Arc,
};

use common::{file, stone};
use moss::{Moss, boot::BootConfig, db::Selection, events::Silent};

const ROOT_GUID: &str = "0a1b2c3d-0000-4000-8000-000000000003";

/// Every file under a directory with its contents.
fn tree(directory: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(directory).unwrap().display().to_string(),
                    String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned(),
                );
            }
        }
    }
    files
}

struct Installation {
    _work: tempfile::TempDir,
    root: PathBuf,
    esp: PathBuf,
    xbootldr: PathBuf,
    stones: PathBuf,
    moss: Moss,
    ids: BTreeMap<String, String>,
}

impl Installation {
    async fn new(xbootldr: bool) -> Self {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("root");
        let esp = work.path().join("esp");
        let xbootldr_dir = work.path().join("xbootldr");
        for directory in [&root, &esp, &xbootldr_dir] {
            fs::create_dir_all(directory).unwrap();
        }
        let mut config = format!(
            "esp: {}\nroot: \"root=PARTUUID={ROOT_GUID}\"\nkeep: 2\n",
            esp.display()
        );
        if xbootldr {
            config.push_str(&format!("xbootldr: {}\n", xbootldr_dir.display()));
        }
        fs::create_dir_all(root.join("etc/moss")).unwrap();
        fs::write(root.join("etc/moss/boot.yaml"), config).unwrap();
        fs::create_dir_all(root.join("etc/kernel/cmdline.d")).unwrap();
        fs::write(
            root.join("etc/kernel/cmdline.d/50-admin.cmdline"),
            "# mine\nloglevel=3\n",
        )
        .unwrap();
        symlink(
            "/dev/null",
            root.join("etc/kernel/cmdline.d/10-splash.cmdline"),
        )
        .unwrap();
        let moss = Moss::open(&root, Arc::new(Silent)).await.unwrap();
        Self {
            stones: work.path().join("stones"),
            _work: work,
            root,
            esp,
            xbootldr: xbootldr_dir,
            moss,
            ids: BTreeMap::new(),
        }
    }

    async fn add(&mut self, key: &str, stone: PathBuf) {
        let unpacked = self
            .moss
            .add_stones(vec![(stone, None, "local".to_owned())])
            .await
            .unwrap();
        self.ids.insert(key.to_owned(), unpacked[0].id.clone());
    }

    async fn apply(&self, keys: &[&str]) -> u64 {
        let selections = keys
            .iter()
            .map(|key| Selection {
                package: self.ids[*key].clone(),
                explicit: true,
                reason: None,
            })
            .collect();
        self.moss.apply(selections, "Install").await.unwrap().state
    }
}

/// A kernel package: `linux-<key>` with version `version` and contents marked by `key`.
fn kernel(stones: &Path, key: &str, version: &str) -> PathBuf {
    stone(
        stones,
        &format!("linux-{key}"),
        "1",
        &[
            file(
                &format!("lib/kernel/{version}/vmlinuz"),
                &format!("kernel {key}"),
            ),
            file(
                &format!("lib/kernel/{version}/50-default.initrd"),
                &format!("initrd {key}"),
            ),
            file(&format!("lib/kernel/{version}/boot.json"), "{}"),
            file(
                &format!("lib/kernel/{version}/60-quirk.cmdline"),
                "quirk=1\n",
            ),
        ],
        &[],
    )
}

fn base(stones: &Path) -> PathBuf {
    stone(
        stones,
        "base",
        "1",
        &[
            file(
                "lib/os-release",
                "NAME=\"Serpent OS\"\nID=serpentos\nPRETTY_NAME=\"Serpent OS\"\n",
            ),
            file("lib/kernel/cmdline.d/00-quiet.cmdline", "quiet\n"),
            file("lib/kernel/cmdline.d/10-splash.cmdline", "splash\n"),
            file("lib/systemd/boot/efi/systemd-bootx64.efi", "systemd-boot"),
        ],
        &[],
    )
}

fn entry(state: u64, version: &str, directory: &str) -> String {
    format!(
        "title Serpent OS {version} (state {state})\nsort-key serpentos\nversion {state}-{version}\nlinux /EFI/serpentos/{directory}/vmlinuz\ninitrd /EFI/serpentos/{directory}/50-default.initrd\noptions root=PARTUUID={ROOT_GUID} rw loglevel=3 moss.fstx={state} quirk=1 quiet\n"
    )
}

/// The kernel directory names on a partition.
fn kernel_directories(boot: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(boot.join("EFI/serpentos"))
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_follow_install_upgrade_rollback_and_prune() {
    let mut installation = Installation::new(true).await;
    let stones = installation.stones.clone();
    installation.add("base", base(&stones)).await;
    installation.add("a", kernel(&stones, "a", "6.1.0")).await;
    installation.add("b", kernel(&stones, "b", "6.1.0")).await;
    installation.add("c", kernel(&stones, "c", "6.2.0")).await;
    installation.add("d", kernel(&stones, "d", "6.10.1")).await;
    // The administrator's loader settings and own entry survive every sync.
    fs::create_dir_all(installation.esp.join("loader")).unwrap();
    fs::write(
        installation.esp.join("loader/loader.conf"),
        "timeout 5\ndefault old.conf\n",
    )
    .unwrap();
    fs::create_dir_all(installation.xbootldr.join("loader/entries")).unwrap();
    fs::write(
        installation
            .xbootldr
            .join("loader/entries/serpentos-custom.conf"),
        "title mine\n",
    )
    .unwrap();

    // Install: state 1, kernel a.
    assert_eq!(installation.apply(&["base", "a"]).await, 1);
    let directories = kernel_directories(&installation.xbootldr);
    assert_eq!(directories.len(), 1);
    let dir_a = directories[0].clone();
    assert!(dir_a.starts_with("6.1.0-"), "{dir_a}");
    let xbootldr = tree(&installation.xbootldr);
    assert_eq!(
        xbootldr,
        BTreeMap::from([
            (
                format!("EFI/serpentos/{dir_a}/vmlinuz"),
                "kernel a".to_owned()
            ),
            (
                format!("EFI/serpentos/{dir_a}/50-default.initrd"),
                "initrd a".to_owned()
            ),
            (
                "loader/entries/serpentos-1-6.1.0.conf".to_owned(),
                entry(1, "6.1.0", &dir_a)
            ),
            (
                "loader/entries/serpentos-custom.conf".to_owned(),
                "title mine\n".to_owned()
            ),
        ])
    );
    assert_eq!(
        tree(&installation.esp),
        BTreeMap::from([
            ("EFI/BOOT/BOOTX64.EFI".to_owned(), "systemd-boot".to_owned()),
            (
                "EFI/systemd/systemd-bootx64.efi".to_owned(),
                "systemd-boot".to_owned()
            ),
            (
                "loader/loader.conf".to_owned(),
                "timeout 5\ndefault serpentos-1-6.1.0.conf\n".to_owned()
            ),
        ])
    );

    // Upgrade to a different build of the same version: both kept side by side.
    assert_eq!(installation.apply(&["base", "b"]).await, 2);
    let directories = kernel_directories(&installation.xbootldr);
    assert_eq!(directories.len(), 2, "{directories:?}");
    let dir_b = directories
        .iter()
        .find(|name| **name != dir_a)
        .unwrap()
        .clone();
    let xbootldr = tree(&installation.xbootldr);
    assert_eq!(
        xbootldr[&format!("EFI/serpentos/{dir_a}/vmlinuz")],
        "kernel a"
    );
    assert_eq!(
        xbootldr[&format!("EFI/serpentos/{dir_b}/vmlinuz")],
        "kernel b"
    );
    assert_eq!(
        xbootldr["loader/entries/serpentos-2-6.1.0.conf"],
        entry(2, "6.1.0", &dir_b)
    );
    assert_eq!(
        xbootldr["loader/entries/serpentos-1-6.1.0.conf"],
        entry(1, "6.1.0", &dir_a)
    );
    assert_eq!(
        fs::read_to_string(installation.esp.join("loader/loader.conf")).unwrap(),
        "timeout 5\ndefault serpentos-2-6.1.0.conf\n"
    );

    // Two more upgrades with keep = 2: state 1's entry and kernel go.
    assert_eq!(installation.apply(&["base", "c"]).await, 3);
    assert_eq!(installation.apply(&["base", "d"]).await, 4);
    let entries = |installation: &Installation| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(installation.xbootldr.join("loader/entries"))
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        entries(&installation),
        [
            "serpentos-2-6.1.0.conf",
            "serpentos-3-6.2.0.conf",
            "serpentos-4-6.10.1.conf",
            "serpentos-custom.conf"
        ]
    );
    let directories = kernel_directories(&installation.xbootldr);
    assert_eq!(directories.len(), 3);
    assert!(
        !directories.contains(&dir_a),
        "state 1's kernel was collected"
    );
    assert!(
        fs::read_to_string(installation.esp.join("loader/loader.conf"))
            .unwrap()
            .ends_with("default serpentos-4-6.10.1.conf\n")
    );

    // Rollback to 2: its entry becomes the default; the newer states keep theirs (roll forward).
    installation.moss.activate(2).await.unwrap();
    assert_eq!(
        entries(&installation),
        [
            "serpentos-2-6.1.0.conf",
            "serpentos-3-6.2.0.conf",
            "serpentos-4-6.10.1.conf",
            "serpentos-custom.conf"
        ]
    );
    assert_eq!(
        fs::read_to_string(installation.esp.join("loader/loader.conf")).unwrap(),
        "timeout 5\ndefault serpentos-2-6.1.0.conf\n"
    );

    // Prune: the removed states lose their entries and kernels; 1 has none left, then 4 goes.
    installation.moss.prune(0).await.unwrap();
    installation.moss.remove_states(&[4]).await.unwrap();
    assert_eq!(
        entries(&installation),
        [
            "serpentos-2-6.1.0.conf",
            "serpentos-3-6.2.0.conf",
            "serpentos-custom.conf"
        ]
    );
    let directories = kernel_directories(&installation.xbootldr);
    assert_eq!(directories.len(), 2);
    assert!(directories.contains(&dir_b));
    assert!(directories.iter().any(|name| name.starts_with("6.2.0-")));
    // Nothing of ours ever landed on the ESP but the loader.
    assert!(!installation.esp.join("EFI/serpentos").exists());
    assert!(!installation.esp.join("loader/entries").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_xbootldr_entries_and_kernels_go_to_the_esp_and_status_tells() {
    let mut installation = Installation::new(false).await;
    let stones = installation.stones.clone();
    installation.add("base", base(&stones)).await;
    installation.add("a", kernel(&stones, "a", "6.1.0")).await;
    installation.add("b", kernel(&stones, "b", "6.2.0")).await;
    // FAT is case-insensitive: directories that exist in another case are used, not doubled.
    fs::create_dir_all(installation.esp.join("efi/boot")).unwrap();
    fs::create_dir_all(installation.esp.join("Loader")).unwrap();
    installation.apply(&["base", "a"]).await;
    installation.apply(&["base", "a", "b"]).await;
    let files = tree(&installation.esp);
    // Two kernels in one state: two entries, the newer version first and default.
    let mut names: Vec<&String> = files
        .keys()
        .filter(|name| name.starts_with("Loader/entries/"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Loader/entries/serpentos-1-6.1.0.conf",
            "Loader/entries/serpentos-2-6.1.0.conf",
            "Loader/entries/serpentos-2-6.2.0.conf"
        ]
    );
    assert_eq!(
        files["Loader/loader.conf"],
        "default serpentos-2-6.2.0.conf\n"
    );
    assert_eq!(files["efi/boot/BOOTX64.EFI"], "systemd-boot");
    assert_eq!(files["efi/systemd/systemd-bootx64.efi"], "systemd-boot");
    assert!(
        files
            .keys()
            .all(|name| !name.starts_with("EFI/") && !name.starts_with("loader/"))
    );
    // The same kernel in two states is stored once.
    let mut kernels: Vec<String> = fs::read_dir(installation.esp.join("efi/serpentos"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    kernels.sort();
    assert_eq!(kernels.len(), 2, "{kernels:?}");
    assert!(kernels[0].starts_with("6.1.0-") && kernels[1].starts_with("6.2.0-"));
    assert!(!installation.xbootldr.join("loader").exists());
    let config = BootConfig::load(&installation.root).unwrap();
    let status = installation.moss.boot_status(&config).await.unwrap();
    assert_eq!(status.boot.as_deref(), Some(installation.esp.as_path()));
    assert_eq!(status.error, None);
    let listed: Vec<(String, u64, bool, bool)> = status
        .entries
        .iter()
        .map(|entry| {
            (
                entry.file.clone(),
                entry.state,
                entry.default,
                entry.installed,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("serpentos-2-6.2.0.conf".to_owned(), 2, true, true),
            ("serpentos-2-6.1.0.conf".to_owned(), 2, false, true),
            ("serpentos-1-6.1.0.conf".to_owned(), 1, false, true),
        ]
    );
    // A sync with nothing changed writes nothing.
    let report = installation.moss.sync_boot(&config).await.unwrap();
    assert_eq!(report.written, 0);
    assert!(report.removed.is_empty());
}

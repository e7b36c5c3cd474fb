//! The `moss` binary in direct mode: `boot status` / `boot sync` with `--esp` and `--xbootldr`,
//! `fstx` as moss-fstx.service runs it (offline rollback), and a stateless root whose `/etc` and
//! `/var` come back with `state verify --fix`.

#[path = "../../crates/moss/tests/common/mod.rs"]
mod common;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use common::{example_triggers, file, stone, tools};

fn moss(root: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moss"))
        .arg("-D")
        .arg(root)
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .expect("moss runs")
}

fn ok(root: &Path, arguments: &[&str]) -> (String, String) {
    let output = moss(root, arguments);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "moss {arguments:?} failed:\n{stdout}{stderr}"
    );
    (stdout, stderr)
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

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
        ],
        &[],
    )
}

fn base(stones: &Path) -> PathBuf {
    stone(
        stones,
        "base",
        "1",
        &[file(
            "lib/os-release",
            "ID=serpentos\nPRETTY_NAME=\"Serpent OS\"\n",
        )],
        &[],
    )
}

struct Setup {
    _work: tempfile::TempDir,
    work: PathBuf,
    root: PathBuf,
    esp: PathBuf,
    xbootldr: PathBuf,
    stones: PathBuf,
}

/// A root whose boot configuration only says what `root=` is and points discovery at an empty
/// fake machine (so nothing depends on this host's disks).
fn setup() -> Setup {
    let directory = tempfile::tempdir().unwrap();
    let work = directory.path().to_path_buf();
    let root = work.join("root");
    let esp = work.join("esp");
    let xbootldr = work.join("xbootldr");
    for path in [&root, &esp, &xbootldr, &work.join("sys"), &work.join("dev")] {
        fs::create_dir_all(path).unwrap();
    }
    fs::write(work.join("mountinfo"), "").unwrap();
    fs::create_dir_all(root.join("etc/moss")).unwrap();
    fs::write(
        root.join("etc/moss/boot.yaml"),
        format!(
            "root: \"root=UUID=1234\"\nsysfs: {0}/sys\ndevfs: {0}/dev\nmountinfo: {0}/mountinfo\n",
            work.display()
        ),
    )
    .unwrap();
    Setup {
        stones: work.join("stones"),
        _work: directory,
        work,
        root,
        esp,
        xbootldr,
    }
}

#[test]
fn boot_status_and_sync_take_the_partitions_on_the_command_line() {
    let setup = setup();
    let root = &setup.root;
    let base = base(&setup.stones);
    let linux = kernel(&setup.stones, "a", "6.1.0");
    // The install works; the boot entries could not be written (no ESP): said so, not hidden.
    let (_, stderr) = ok(root, &["-y", "install", text(&base), text(&linux)]);
    assert!(
        stderr.contains("boot entries were not updated")
            && stderr.contains("no EFI System Partition"),
        "{stderr}"
    );
    let (stdout, _) = ok(root, &["boot", "status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(status["esp"].is_null());
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("no EFI System Partition")
    );

    let partitions = [
        "--esp",
        text(&setup.esp),
        "--xbootldr",
        text(&setup.xbootldr),
    ];
    let mut arguments = vec!["boot", "status", "--format", "json"];
    arguments.extend(partitions);
    let (stdout, _) = ok(root, &arguments);
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["esp"]["mountpoint"], text(&setup.esp));
    assert_eq!(status["esp"]["source"], "configuration");
    assert_eq!(status["xbootldr"]["mountpoint"], text(&setup.xbootldr));
    assert_eq!(status["boot"], text(&setup.xbootldr));
    assert_eq!(status["root"], "root=UUID=1234");
    assert_eq!(
        status["entries"],
        serde_json::json!([{
            "file": "serpentos-1-6.1.0.conf",
            "state": 1,
            "kernel": "6.1.0",
            "default": true,
            "installed": false
        }])
    );

    let mut arguments = vec!["boot", "sync"];
    arguments.extend(partitions);
    let (stdout, stderr) = ok(root, &arguments);
    assert_eq!(stdout, "serpentos-1-6.1.0.conf (default)\n");
    assert!(stderr.contains("1 entries"), "{stderr}");
    let entry =
        fs::read_to_string(setup.xbootldr.join("loader/entries/serpentos-1-6.1.0.conf")).unwrap();
    assert!(
        entry.starts_with("title Serpent OS 6.1.0 (state 1)\n"),
        "{entry}"
    );
    assert!(
        entry.ends_with("options root=UUID=1234 rw moss.fstx=1\n"),
        "{entry}"
    );
    assert_eq!(
        fs::read_to_string(setup.esp.join("loader/loader.conf")).unwrap(),
        "default serpentos-1-6.1.0.conf\n"
    );

    let mut arguments = vec!["boot", "status"];
    arguments.extend(partitions);
    let (stdout, _) = ok(root, &arguments);
    assert!(stdout.starts_with("Firmware: bios\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("ESP: {} (configured)", setup.esp.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("serpentos-1-6.1.0.conf state 1 kernel 6.1.0 (default)\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("not written"), "{stdout}");
}

#[test]
fn fstx_activates_the_state_the_boot_entry_names_as_the_unit_runs_it() {
    let setup = setup();
    let root = &setup.root;
    // Partitions from the configuration file this time.
    let config = root.join("etc/moss/boot.yaml");
    let mut text_config = fs::read_to_string(&config).unwrap();
    text_config.push_str(&format!(
        "esp: {}\nxbootldr: {}\n",
        setup.esp.display(),
        setup.xbootldr.display()
    ));
    fs::write(&config, text_config).unwrap();
    let base = base(&setup.stones);
    let first = kernel(&setup.stones, "a", "6.1.0");
    let second = kernel(&setup.stones, "b", "6.2.0");
    ok(root, &["-y", "install", text(&base), text(&first)]);
    ok(root, &["-y", "install", text(&second)]);
    assert_eq!(fs::read_to_string(root.join("usr/.stateID")).unwrap(), "2");
    let entries = setup.xbootldr.join("loader/entries");
    let boot_files = || -> BTreeMap<String, String> {
        fs::read_dir(&entries)
            .unwrap()
            .flatten()
            .map(|entry| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    fs::read_to_string(entry.path()).unwrap(),
                )
            })
            .chain([(
                "loader.conf".to_owned(),
                fs::read_to_string(setup.esp.join("loader/loader.conf")).unwrap(),
            )])
            .collect()
    };
    let before = boot_files();
    // State 1: kernel a; state 2: kernels a and b.
    assert_eq!(before.len(), 4, "{before:?}");

    // The command line of the older entry, as the kernel would see it.
    let options = before["serpentos-1-6.1.0.conf"]
        .lines()
        .find_map(|line| line.strip_prefix("options "))
        .unwrap()
        .to_owned();
    assert!(options.contains("moss.fstx=1"), "{options}");
    let cmdline = setup.work.join("cmdline");
    fs::write(
        &cmdline,
        format!("BOOT_IMAGE=/EFI/serpentos/vmlinuz {options}\n"),
    )
    .unwrap();

    // The unit's command, with /sysroot and /proc/cmdline pointing at the test's.
    let unit = fs::read_to_string(common::repository().join("systemd/moss-fstx.service")).unwrap();
    assert!(unit.contains("ConditionKernelCommandLine=moss.fstx"));
    assert!(unit.contains("Before=initrd-root-fs.target") && unit.contains("After=sysroot.mount"));
    let exec: Vec<String> = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .unwrap()
        .split_whitespace()
        .map(|word| match word {
            "/sysroot" => text(root).to_owned(),
            "/proc/cmdline" => text(&cmdline).to_owned(),
            other => other.to_owned(),
        })
        .collect();
    assert_eq!(exec[0], "/usr/bin/moss");
    let run_unit = || {
        let output = Command::new(env!("CARGO_BIN_EXE_moss"))
            .args(&exec[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run_unit();
    assert!(
        stderr.contains("moss-fstx: state 1 activated (state 2 archived)"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(root.join("usr/.stateID")).unwrap(), "1");
    assert!(root.join("usr/lib/kernel/6.1.0/vmlinuz").exists());
    assert!(!root.join("usr/lib/kernel/6.2.0").exists());
    // No boot sync in the initrd: the entries are as they were.
    assert_eq!(boot_files(), before);

    // Booting the same entry again: a no-op.
    let stderr = run_unit();
    assert!(stderr.contains("state 1 is already active"), "{stderr}");
    assert_eq!(fs::read_to_string(root.join("usr/.stateID")).unwrap(), "1");

    // No moss.fstx on the command line: nothing to do.
    fs::write(&cmdline, "root=UUID=1234 rw quiet\n").unwrap();
    let stderr = run_unit();
    assert!(stderr.contains("nothing to do"), "{stderr}");

    // The booted system syncs: state 1 is the default now, 2 still has its entry.
    ok(root, &["boot", "sync"]);
    let after = boot_files();
    assert_eq!(after["loader.conf"], "default serpentos-1-6.1.0.conf\n");
    assert!(after.contains_key("serpentos-2-6.2.0.conf"));
}

/// Every file, directory and link under a directory.
fn snapshot(directory: &Path) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            let name = path.strip_prefix(directory).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            let value = if kind.is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else if kind.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                fs::read_to_string(&path).unwrap()
            };
            entries.insert(name, value);
        }
    }
    entries
}

#[test]
fn a_wiped_etc_and_var_come_back_with_state_verify_fix() {
    let setup = setup();
    let root = &setup.root;
    // Nothing here boots: no boot configuration, so `/etc` holds only what triggers make.
    fs::remove_dir_all(root.join("etc")).unwrap();
    let stones = &setup.stones;
    let content = stone(
        stones,
        "content",
        "1",
        &[
            file(
                "lib/sysusers.d/web.conf",
                "g web 950\nu web 950 Web /var/lib/web\n",
            ),
            file(
                "lib/tmpfiles.d/web.conf",
                "d /var/lib/web 0750 web web -\nd /var/cache/web 0755 - - -\nC /etc/web.conf - - - - /usr/share/defaults/etc/web.conf\nL /etc/web.link - - - - /usr/share/defaults/etc/web.conf\n",
            ),
            file("share/defaults/etc/web.conf", "port = 8080\n"),
            file("lib/libweb.so.1", "elf"),
        ],
        &[],
    );
    ok(
        root,
        &[
            "-y",
            "install",
            text(&tools(stones)),
            text(&example_triggers(stones)),
            text(&content),
        ],
    );
    let etc = snapshot(&root.join("etc"));
    let var = snapshot(&root.join("var"));
    assert_eq!(
        etc["passwd"],
        "web:x:950:950:Web:/var/lib/web:/usr/bin/nologin\n"
    );
    assert_eq!(etc["group"], "web:x:950:\n");
    assert_eq!(etc["web.conf"], "port = 8080\n");
    assert_eq!(etc["web.link"], "link /usr/share/defaults/etc/web.conf");
    assert_eq!(var["lib/web"], "dir");
    assert_eq!(var["cache/web"], "dir");
    ok(root, &["state", "verify"]);

    fs::remove_dir_all(root.join("etc")).unwrap();
    fs::remove_dir_all(root.join("var")).unwrap();
    let output = moss(root, &["state", "verify"]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("state 1: /etc, /var missing or empty"),
        "{stdout}"
    );

    ok(root, &["state", "verify", "--fix"]);
    assert_eq!(snapshot(&root.join("etc")), etc);
    assert_eq!(snapshot(&root.join("var")), var);
    ok(root, &["state", "verify"]);
    // Nothing was reinstalled: still the one state.
    let (stdout, _) = ok(root, &["state", "list", "--format", "json"]);
    let states: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(states.as_array().unwrap().len(), 1);
}

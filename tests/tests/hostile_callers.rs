//! Hostile callers against mossd on a private bus with the real polkitd: an unprivileged user
//! (uid 65534, `nobody`) names root-only files, symlinks to `/etc/shadow`, FIFOs, pipes and
//! devices, floods the daemon with objects and names, and uses other users' PackageKit
//! transactions. Each case asserts the refusal, that nothing was read or written, and that the
//! daemon still answers root within a second afterwards.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use moss_tests::{
    bus::{TestBus, Who},
    daemon_support::*,
};

/// A stone of a package no repository offers: what an attacker would try to plant.
fn foreign_stone(directory: &Path) -> PathBuf {
    let tree = directory.join("planted-tree");
    fs::create_dir_all(tree.join("usr/bin")).unwrap();
    fs::write(tree.join("usr/bin/planted"), "#!/bin/sh\necho planted\n").unwrap();
    let stone = directory.join("planted-1-1-1-x86_64.stone");
    let status = Command::new("python3")
        .arg(moss_tests::shared_dir().join("bench/stonepack.py"))
        .arg("--tree")
        .arg(&tree)
        .arg("--out")
        .arg(&stone)
        .args(["--name", "planted", "--version", "1"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "stonepack.py failed");
    stone
}

/// Files under `ROOT/.moss` (but the database) with their sizes, and the stored package ids: what
/// a read or write of a caller's stone would change.
fn store_fingerprint(root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut stack = vec![root.join(".moss")];
    while let Some(directory) = stack.pop() {
        let Ok(entries) = fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            // The daemon's own directory for incoming copies is checked on its own (empty).
            if relative.starts_with(".moss/db")
                || relative.starts_with(".moss/daemon/v1/history")
                || relative == ".moss/daemon/v1/incoming"
            {
                continue;
            }
            let metadata = fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                stack.push(path);
            }
            lines.push(format!("{relative} {}", metadata.len()));
        }
    }
    lines.sort();
    let database = root.join(".moss/db/moss.sqlite");
    let output = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); \
             print([r[0] for r in c.execute('SELECT id FROM package ORDER BY id')])",
        ])
        .arg(&database)
        .output()
        .unwrap();
    lines.push(String::from_utf8_lossy(&output.stdout).into_owned());
    lines
}

/// Fail with the entries that differ (the full listings are thousands of lines).
fn assert_unchanged(before: &[String], after: &[String]) {
    let gone: Vec<&String> = before.iter().filter(|line| !after.contains(line)).collect();
    let new: Vec<&String> = after.iter().filter(|line| !before.contains(line)).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "the store changed: gone {gone:?}, new {new:?}"
    );
}

/// Root's query is answered within a second: the daemon is not wedged.
fn answers_root_quickly(bus: &TestBus) {
    let mut command = bus.busctl(Who::Root);
    command
        .arg("--timeout=1")
        .arg("call")
        .args(MANAGER)
        .args(["ListInstalled", "b", "false"]);
    let output = run(command);
    assert!(
        output.status.success(),
        "mossd did not answer root within 1 s: {}",
        text(&output)
    );
}

/// Run a python3 script (with `dbus` and the private bus) as `who`.
fn python(bus: &TestBus, who: Who, script: &str, arguments: &[&str]) -> Output {
    let mut command = bus.command(who, "/usr/bin/python3");
    command.arg("-c").arg(script).args(arguments);
    run(command)
}

/// A directory only root can enter, holding a real stone.
fn root_only_stone(bus: &TestBus) -> PathBuf {
    let secret = bus.directory().join("root-only");
    fs::create_dir_all(&secret).unwrap();
    let stone = foreign_stone(&secret);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    stone
}

#[test]
fn a_named_path_is_never_opened_and_nothing_is_planted() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    let secret = root_only_stone(bus);
    let shadow = bus.directory().join("shadow.stone");
    std::os::unix::fs::symlink("/etc/shadow", &shadow).unwrap();
    let missing = bus.directory().join("missing.stone");
    let before = store_fingerprint(setup.root.path());

    let mut messages = Vec::new();
    for path in [&secret, &shadow, &missing] {
        let path_text = path.display().to_string();
        let output = call(
            bus,
            Who::Nobody,
            "PlanInstall",
            "asah",
            &["1", &path_text, "0"],
        );
        assert!(!output.status.success(), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr).replace(&path_text, "PATH");
        // The answer is the same whether the file exists, is root-only or is a symlink to a
        // secret: a name is resolved as a package name, never opened.
        assert!(!stderr.contains("root:"), "{stderr}");
        assert!(!stderr.to_lowercase().contains("permission"), "{stderr}");
        messages.push(stderr);
    }
    assert_eq!(messages[0], messages[2], "existence leaks");
    assert_eq!(messages[1], messages[2], "existence leaks");
    // The same through PackageKit with the simulate flag: InstallPackages takes ids, and
    // InstallFiles needs the install permission before any file is read.
    let pk_script = r#"
import dbus, sys
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib
DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()
pk = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', '/org/freedesktop/PackageKit'), 'org.freedesktop.PackageKit')
results = []
loop = GLib.MainLoop()
def run(method, *arguments):
    path = pk.CreateTransaction()
    tx = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', path), 'org.freedesktop.PackageKit.Transaction')
    errors = []
    tx.connect_to_signal('ErrorCode', lambda code, details: errors.append((int(code), str(details))))
    tx.connect_to_signal('Finished', lambda exit, runtime: loop.quit())
    getattr(tx, method)(*arguments)
    loop.run()
    results.append((method, errors))
run('InstallFiles', dbus.UInt64(1 << 2), [sys.argv[1]])
run('InstallFiles', dbus.UInt64(0), [sys.argv[1]])
run('InstallPackages', dbus.UInt64(1 << 2), ['planted;1-1;x86_64;' + sys.argv[1]])
for method, errors in results:
    print(method, errors)
"#;
    let output = python(
        bus,
        Who::Nobody,
        pk_script,
        &[&secret.display().to_string()],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text(&output));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    // InstallFiles, simulated or not: refused by polkit (48) before the file is looked at.
    assert!(lines[0].contains("(48,"), "{stdout}");
    assert!(lines[1].contains("(48,"), "{stdout}");
    // InstallPackages names a package: not found, never a file.
    assert!(lines[2].contains("(8,"), "{stdout}");
    assert_unchanged(&before, &store_fingerprint(setup.root.path()));
    answers_root_quickly(bus);

    // An authorised user's InstallFiles is read with that user's rights: a root-only stone is
    // not found for them, one they can read installs (simulated here).
    let readable = bus.directory().join("readable");
    fs::create_dir_all(&readable).unwrap();
    let readable_stone = foreign_stone(&readable);
    fs::set_permissions(&readable, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&readable_stone, fs::Permissions::from_mode(0o644)).unwrap();
    let tester_script = r#"
import dbus, sys
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib
DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()
pk = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', '/org/freedesktop/PackageKit'), 'org.freedesktop.PackageKit')
loop = GLib.MainLoop()
for name in sys.argv[1:]:
    path = pk.CreateTransaction()
    tx = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', path), 'org.freedesktop.PackageKit.Transaction')
    errors, packages = [], []
    tx.connect_to_signal('ErrorCode', lambda code, details: errors.append((int(code), str(details))))
    tx.connect_to_signal('Package', lambda info, id, summary: packages.append(str(id)))
    tx.connect_to_signal('Finished', lambda exit, runtime: loop.quit())
    tx.InstallFiles(dbus.UInt64(1 << 2), [name])
    loop.run()
    print(errors, packages)
"#;
    let output = python(
        bus,
        Who::Tester,
        tester_script,
        &[
            &secret.display().to_string(),
            &readable_stone.display().to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text(&output));
    assert!(
        lines[0].contains("(42,") && lines[0].contains("Permission denied"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("[] ") && lines[1].contains("planted;1-1"),
        "{stdout}"
    );
    assert_unchanged(&before, &store_fingerprint(setup.root.path()));

    // The id `local` belongs to local stones: no repository may take it.
    let index = format!("file://{}", setup.repository.display());
    let mut command = bus.moss(Who::Root);
    command.args(["repo", "add", "local", &index, "--unsigned"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(64), "{}", text(&output));
    assert!(text(&output).contains("reserved"), "{}", text(&output));

    // Root's next sync has nothing to do, and the planted package is nowhere.
    let output = moss_ok(bus, Who::Root, &["sync", "-y"]);
    let installed = moss_ok(bus, Who::Root, &["list", "installed"]);
    assert!(!installed.contains("planted"), "{installed}");
    assert!(!output.contains("planted"), "{output}");
}

#[test]
fn fifos_pipes_and_devices_never_wedge_the_daemon() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    let before = store_fingerprint(setup.root.path());
    // A FIFO named like a stone, in 600 plan calls.
    let fifo = bus.directory().join("x.stone");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let fifo_text = fifo.display().to_string();
    let mut script = String::new();
    for _ in 0..600 {
        script.push_str(&format!(
            "busctl --system call com.serpentos.Moss1 /com/serpentos/Moss1 com.serpentos.Moss1 \
             PlanInstall asah 1 {fifo_text} 0 >/dev/null 2>&1\n"
        ));
    }
    let mut command = bus.command(Who::Nobody, "sh");
    command.arg("-c").arg(&script);
    let status = command.status().unwrap();
    assert!(status.success() || status.code().is_some());
    answers_root_quickly(bus);

    // Descriptors: nobody's are refused before a byte is read (the pipe keeps its bytes), and
    // an authorised caller's pipe, FIFO, /dev/zero or oversized file is refused at once.
    let fd_script = r#"
import dbus, os, sys
bus = dbus.SystemBus()
manager = dbus.Interface(bus.get_object('com.serpentos.Moss1', '/com/serpentos/Moss1'), 'com.serpentos.Moss1')
def attempt(name, descriptor, method='Install'):
    try:
        if method == 'Install':
            manager.Install([], [dbus.types.UnixFd(descriptor)], {})
        else:
            manager.PlanInstall([], [dbus.types.UnixFd(descriptor)])
        print(name, 'accepted')
    except dbus.exceptions.DBusException as error:
        print(name, error.get_dbus_name(), error.get_dbus_message().replace('\n', ' '))
read_end, write_end = os.pipe()
os.write(write_end, b'hello')
attempt('pipe', read_end)
os.set_blocking(read_end, False)
print('left', os.read(read_end, 5))
attempt('plan-pipe', read_end, 'PlanInstall')
zero = os.open('/dev/zero', os.O_RDONLY)
attempt('zero', zero)
fifo = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
attempt('fifo', fifo)
big = open(sys.argv[2], 'rb')
attempt('big', big.fileno())
"#;
    let big = bus.directory().join("big.stone");
    let file = fs::File::create(&big).unwrap();
    file.set_len(3 << 30).unwrap();
    fs::set_permissions(&big, fs::Permissions::from_mode(0o644)).unwrap();
    let arguments = [fifo_text.as_str(), &big.display().to_string()];
    let output = python(bus, Who::Nobody, fd_script, &arguments);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", text(&output));
    for name in ["pipe", "plan-pipe", "zero", "fifo", "big"] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        assert!(line.contains("Error.NotAuthorized"), "{line}");
    }
    assert!(
        stdout.contains("left b'hello'"),
        "the pipe was read: {stdout}"
    );
    answers_root_quickly(bus);

    let output = python(bus, Who::Root, fd_script, &arguments);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", text(&output));
    for (name, reason) in [
        ("pipe", "pipe"),
        ("plan-pipe", "pipe"),
        ("zero", "device"),
        ("fifo", "pipe or FIFO"),
        ("big", "larger than"),
    ] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        assert!(
            line.contains("Error.InvalidArgument") && line.contains(reason),
            "{line}"
        );
    }
    answers_root_quickly(bus);
    assert_unchanged(&before, &store_fingerprint(setup.root.path()));
    let incoming = setup.root.path().join(".moss/daemon/v1/incoming");
    let left: Vec<_> = fs::read_dir(&incoming)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "copies left behind: {left:?}");
}

#[test]
fn requests_and_objects_are_bounded_per_caller() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    let script = r#"
import dbus, sys
bus = dbus.SystemBus()
manager = dbus.Interface(bus.get_object('com.serpentos.Moss1', '/com/serpentos/Moss1'), 'com.serpentos.Moss1')
try:
    manager.Info(['bash-completion'] * 1025, True)
    print('info-many accepted')
except dbus.exceptions.DBusException as error:
    print('info-many', error.get_dbus_name())
print('info-repeated', len(manager.Info(['bash-completion'] * 1024, True)))
try:
    manager.Search('x' * 5000, False)
    print('search-long accepted')
except dbus.exceptions.DBusException as error:
    print('search-long', error.get_dbus_name())
pk = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', '/org/freedesktop/PackageKit'), 'org.freedesktop.PackageKit')
created = 0
refusal = ''
for _ in range(40):
    try:
        pk.CreateTransaction()
        created += 1
    except dbus.exceptions.DBusException as error:
        refusal = error.get_dbus_name()
        break
print('created', created, refusal)
"#;
    let output = python(bus, Who::Nobody, script, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        stdout.contains("info-many com.serpentos.Moss1.Error.LimitExceeded"),
        "{stdout}"
    );
    // A thousand copies of one name are answered once (installed and available: at most 2).
    let repeated: usize = stdout
        .lines()
        .find_map(|line| line.strip_prefix("info-repeated "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&repeated), "{stdout}");
    assert!(
        stdout.contains("search-long com.serpentos.Moss1.Error.LimitExceeded"),
        "{stdout}"
    );
    assert!(
        stdout.contains("created 32 org.freedesktop.DBus.Error.LimitsExceeded"),
        "{stdout}"
    );
    answers_root_quickly(bus);
    // Root is not held to the per-user bound.
    let root_script = r#"
import dbus
bus = dbus.SystemBus()
pk = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', '/org/freedesktop/PackageKit'), 'org.freedesktop.PackageKit')
for _ in range(40):
    pk.CreateTransaction()
print('ok')
"#;
    let output = python(bus, Who::Root, root_script, &[]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("ok"),
        "{}",
        text(&output)
    );
}

#[test]
fn packagekit_transactions_belong_to_their_creator() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    // Root creates a transaction and keeps its connection open until told to use it.
    let owner_script = r#"
import dbus, sys
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib
DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()
pk = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', '/org/freedesktop/PackageKit'), 'org.freedesktop.PackageKit')
path = pk.CreateTransaction()
print(path, flush=True)
sys.stdin.readline()
tx = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', path), 'org.freedesktop.PackageKit.Transaction')
loop = GLib.MainLoop()
packages = []
tx.connect_to_signal('Package', lambda info, id, summary: packages.append(str(id)))
tx.connect_to_signal('Finished', lambda exit, runtime: (print('finished', int(exit), len(packages), flush=True), loop.quit()))
tx.GetPackages(dbus.UInt64(0))
loop.run()
"#;
    let mut owner = bus.command(Who::Root, "/usr/bin/python3");
    owner
        .arg("-c")
        .arg(owner_script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut owner = owner.spawn().unwrap();
    let mut stdout = std::io::BufReader::new(owner.stdout.take().unwrap());
    let mut path = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut path).unwrap();
    let path = path.trim().to_owned();
    assert!(path.starts_with('/'), "no transaction path: {path:?}");

    let intrude = |method: &str, signature: &str, arguments: &[&str]| {
        let mut command = bus.busctl(Who::Nobody);
        command
            .args(["call", "org.freedesktop.PackageKit", &path])
            .args(["org.freedesktop.PackageKit.Transaction", method, signature])
            .args(arguments);
        run(command)
    };
    for (method, signature, arguments) in [
        ("Resolve", "tas", vec!["0", "1", "bash-completion"]),
        ("GetPackages", "t", vec!["0"]),
        ("SetHints", "as", vec!["1", "locale=C"]),
        (
            "RemovePackages",
            "tasbb",
            vec![
                "0",
                "1",
                "bash-completion;2.11-1;x86_64;installed",
                "false",
                "false",
            ],
        ),
        ("Cancel", "", vec![]),
    ] {
        let output = intrude(method, signature, &arguments);
        assert!(!output.status.success(), "{method}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("sender does not match") || stderr.contains("not authorised"),
            "{method}: {stderr}"
        );
    }
    answers_root_quickly(bus);
    // The owner's transaction is untouched: it still has no role and runs its query.
    std::io::Write::write_all(owner.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let mut finished = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut finished).unwrap();
    let _ = owner.wait();
    assert!(finished.starts_with("finished 1 "), "{finished:?}");
    assert!(setup.moss_installed().contains("bash-completion"));
}

#[test]
fn a_refused_offline_download_prepares_nothing() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    let script = r#"
import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib
DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()
pk = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', '/org/freedesktop/PackageKit'), 'org.freedesktop.PackageKit')
path = pk.CreateTransaction()
tx = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', path), 'org.freedesktop.PackageKit.Transaction')
loop = GLib.MainLoop()
errors = []
tx.connect_to_signal('ErrorCode', lambda code, details: errors.append(int(code)))
tx.connect_to_signal('Finished', lambda exit, runtime: loop.quit())
tx.UpdatePackages(dbus.UInt64(1 << 3), ['pineapple;1-1;x86_64;examples'])
loop.run()
print('errors', errors)
"#;
    let output = python(bus, Who::Nobody, script, &[]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("errors [48]"),
        "{}",
        text(&output)
    );
    let prepared = setup.root.path().join("var/lib/PackageKit/prepared-update");
    assert!(!prepared.exists(), "prepared before authorisation");
    answers_root_quickly(bus);
}

/// Helpers on [`Setup`] used here.
trait Installed {
    fn moss_installed(&self) -> String;
}

impl Installed for Setup {
    fn moss_installed(&self) -> String {
        moss_ok(&self.bus, Who::Root, &["list", "installed"])
    }
}

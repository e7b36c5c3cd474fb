//! The PackageKit interface of mossd, driven by the real `pkcon` 1.2.6 and by PackageKit's GObject
//! library (as GNOME Software uses it) on a private bus with the real polkitd. pkcon exits 0 even
//! on failure, so every test reads its output.

use std::process::{Command, Output};

use moss_tests::{
    bus::{Mossd, TestBus, Who, example_repository, wait_for},
    daemon_support::publish_tool,
};

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

struct Setup {
    bus: TestBus,
    root: tempfile::TempDir,
    _mossd: Mossd,
}

impl Setup {
    /// mossd with the example repository and bash-completion installed.
    fn new() -> Self {
        let bus = TestBus::start();
        let root = tempfile::Builder::new()
            .prefix("moss-pk-root.")
            .tempdir()
            .unwrap();
        let repository = example_repository(bus.directory());
        let mossd = Mossd::start(&bus, root.path(), &[]);
        bus.wait_for_name("org.freedesktop.PackageKit");
        let index = format!("file://{}", repository.display());
        let setup = Self {
            bus,
            root,
            _mossd: mossd,
        };
        setup.moss(&["repo", "add", "examples", &index, "--unsigned"]);
        setup.moss(&["install", "-y", "bash-completion"]);
        setup
    }

    fn moss(&self, arguments: &[&str]) -> String {
        let mut command = self.bus.moss(Who::Root);
        command.args(arguments);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "moss {arguments:?}: {}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `pkcon ARGS` as `who`: its whole output.
    fn pkcon(&self, who: Who, arguments: &[&str]) -> String {
        let mut command = self.bus.command(who, "pkcon");
        command.args(arguments).env("LANG", "C.UTF-8");
        let output = command
            .output()
            .expect("pkcon (apt-get install packagekit-tools)");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    fn installed(&self) -> String {
        self.moss(&["list", "installed"])
    }
}

#[test]
fn pkcon_queries_list_the_right_packages() {
    let setup = Setup::new();
    let details = setup.pkcon(Who::Nobody, &["backend-details"]);
    assert!(details.contains("Name:\t\tmoss"), "{details}");

    let search = setup.pkcon(Who::Nobody, &["search", "name", "pizza"]);
    assert!(
        search.contains("Available    italian-pizza-1-1.x86_64 (examples)"),
        "{search}"
    );
    assert!(!search.contains("bash-completion"), "{search}");

    let search = setup.pkcon(Who::Nobody, &["search", "details", "pineapples"]);
    // Both mention pineapples: pizza's summary ("hates pineapples") and pineapple's own.
    assert!(
        search.contains("pineapple-1-1.x86_64") && search.contains("italian-pizza"),
        "{search}"
    );

    let resolve = setup.pkcon(Who::Nobody, &["resolve", "bash-completion"]);
    assert!(
        resolve.contains("Installed    bash-completion-2.11-1.x86_64 (installed)"),
        "{resolve}"
    );

    let packages = setup.pkcon(Who::Nobody, &["get-packages"]);
    for line in [
        "Installed    bash-completion-2.11-1.x86_64 (installed)",
        "Available    italian-pizza-1-1.x86_64 (examples)",
        "Available    pineapple-1-1.x86_64 (examples)",
    ] {
        assert!(packages.contains(line), "{line}: {packages}");
    }
    let installed_only = setup.pkcon(Who::Nobody, &["get-packages", "--filter", "installed"]);
    assert!(!installed_only.contains("pineapple"), "{installed_only}");

    let details = setup.pkcon(Who::Nobody, &["get-details", "pineapple"]);
    assert!(
        details.contains("summary:     Delicious slices of pineapples"),
        "{details}"
    );
    assert!(details.contains("license:     Zlib"), "{details}");

    let files = setup.pkcon(Who::Nobody, &["get-files", "bash-completion"]);
    assert!(
        files.contains("/usr/share/bash-completion/bash_completion"),
        "{files}"
    );

    let search = setup.pkcon(Who::Nobody, &["search", "file", "bash_completion"]);
    assert!(search.contains("bash-completion-2.11-1.x86_64"), "{search}");

    let provides = setup.pkcon(Who::Nobody, &["what-provides", "cmake(bash-completion)"]);
    assert!(
        provides.contains("bash-completion-2.11-1.x86_64"),
        "{provides}"
    );

    let repositories = setup.pkcon(Who::Nobody, &["repo-list"]);
    assert!(
        repositories.contains("Enabled    examples"),
        "{repositories}"
    );

    setup.pkcon(Who::Root, &["refresh"]);
    let updates = setup.pkcon(Who::Nobody, &["get-updates"]);
    assert!(updates.contains("There are no updates"), "{updates}");
}

#[test]
fn pkcon_installs_removes_and_configures_for_real() {
    let setup = Setup::new();
    let install = setup.pkcon(Who::Tester, &["-y", "install", "italian-pizza"]);
    assert!(
        install.contains("Installed    italian-pizza-1-1.x86_64"),
        "{install}"
    );
    assert!(setup.installed().contains("italian-pizza"));
    assert!(
        setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );

    // The conflict is reported as PackageKit reports a failed transaction; nothing changes.
    let conflict = setup.pkcon(Who::Root, &["-y", "install", "pineapple"]);
    assert!(conflict.contains("conflicts"), "{conflict}");
    assert!(!setup.installed().contains("pineapple  "));

    let remove = setup.pkcon(Who::Root, &["-y", "remove", "italian-pizza"]);
    assert!(remove.contains("italian-pizza-1-1.x86_64"), "{remove}");
    assert!(!setup.installed().contains("italian-pizza"));
    assert!(
        !setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );

    let stone = std::fs::read_dir(setup.bus.directory().join("repo"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.display().to_string().contains("pineapple"))
        .unwrap();
    let local = setup.pkcon(
        Who::Root,
        &["-y", "install-local", &stone.display().to_string()],
    );
    assert!(local.contains("pineapple"), "{local}");
    assert!(setup.installed().contains("pineapple"));

    let update = setup.pkcon(Who::Root, &["-y", "update"]);
    assert!(update.contains("No packages require updating"), "{update}");

    setup.pkcon(Who::Root, &["repo-disable", "examples"]);
    let repositories = setup.moss(&["repo", "list"]);
    assert!(repositories.contains("(disabled)"), "{repositories}");
    setup.pkcon(Who::Root, &["repo-enable", "examples"]);
    assert!(!setup.moss(&["repo", "list"]).contains("(disabled)"));

    // Dependencies through the moss resolver's data.
    let depends = setup.pkcon(Who::Nobody, &["depends-on", "italian-pizza"]);
    assert!(depends.contains("Results:"), "{depends}");
    let required = setup.pkcon(Who::Nobody, &["required-by", "bash-completion"]);
    assert!(required.contains("Results:"), "{required}");
}

#[test]
fn nobody_is_refused_changes_through_packagekit_and_nothing_changes() {
    let setup = Setup::new();
    let before = setup.installed();
    let states = setup.moss(&["state", "list"]);
    for arguments in [
        vec!["-y", "install", "italian-pizza"],
        vec!["-y", "remove", "bash-completion"],
        vec!["refresh"],
        vec!["repo-disable", "examples"],
    ] {
        let output = setup.pkcon(Who::Nobody, &arguments);
        assert!(
            output.contains("not authorised") || output.contains("Not authorized"),
            "{arguments:?}: {output}"
        );
    }
    assert_eq!(setup.installed(), before);
    assert_eq!(setup.moss(&["state", "list"]), states);
    assert!(!setup.moss(&["repo", "list"]).contains("(disabled)"));
}

#[test]
fn a_second_role_on_one_transaction_is_refused() {
    let setup = Setup::new();
    // One connection, as PackageKit clients use: a transaction answers only its creator.
    let script = r#"
import dbus
bus = dbus.SystemBus()
pk = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', '/org/freedesktop/PackageKit'), 'org.freedesktop.PackageKit')
path = pk.CreateTransaction()
tx = dbus.Interface(bus.get_object('org.freedesktop.PackageKit', path), 'org.freedesktop.PackageKit.Transaction')
tx.GetPackages(dbus.UInt64(0))
print('first accepted')
try:
    tx.Resolve(dbus.UInt64(0), ['nano'])
    print('second accepted')
except dbus.exceptions.DBusException as error:
    print('second', error.get_dbus_name(), error.get_dbus_message())
"#;
    let mut command = setup.bus.command(Who::Nobody, "/usr/bin/python3");
    command.arg("-c").arg(script);
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("first accepted"), "{}", text(&output));
    assert!(
        stdout.contains("TransactionExistsWithRole") && stdout.contains("create a new transaction"),
        "{}",
        text(&output)
    );
}

#[test]
fn pkcon_download_names_files_as_the_repository_does() {
    let setup = Setup::new();
    let directory = tempfile::Builder::new()
        .prefix("moss-pk-download.")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        directory.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let target = directory.path().display().to_string();
    let output = setup.pkcon(Who::Tester, &["-y", "download", &target, "pineapple"]);
    let file = directory.path().join("pineapple-1-1-1-x86_64.stone");
    assert!(
        file.is_file(),
        "{output}: {:?}",
        std::fs::read_dir(directory.path())
            .unwrap()
            .collect::<Vec<_>>()
    );
    let original =
        moss_tests::bus::project_dir().join("examples/stones/pineapple-1-1-1-x86_64.stone");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(original).unwrap()
    );
    // Downloading installs nothing.
    assert!(!setup.installed().contains("pineapple"));
}

#[test]
fn the_gobject_library_lists_and_installs_as_gnome_software_would() {
    let setup = Setup::new();
    let script = r#"
import gi, sys
gi.require_version('PackageKitGlib', '1.0')
from gi.repository import PackageKitGlib as Pk
client = Pk.Client()
items = []
def progress(progress, kind, *rest):
    if kind == Pk.ProgressType.ITEM_PROGRESS and progress.get_item_progress() is not None:
        items.append(progress.get_item_progress().get_package_id())
result = client.get_packages(Pk.filter_bitfield_from_string('installed'), None, progress, None)
for package in result.get_package_array():
    print('INSTALLED', package.get_id())
result = client.resolve(Pk.filter_bitfield_from_string('~installed'), ['italian-pizza'], None, progress, None)
ids = [package.get_id() for package in result.get_package_array()]
print('RESOLVED', ids)
result = client.install_packages(Pk.TransactionFlagEnum.ONLY_TRUSTED, ids, None, progress, None)
print('EXIT', Pk.ExitEnum.to_string(result.get_exit_code()))
print('ITEMS', sorted(set(items)))
"#;
    let mut command = setup.bus.command(Who::Tester, "/usr/bin/python3");
    command.args(["-c", script]);
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        stdout.contains("INSTALLED bash-completion;2.11-1;x86_64;installed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("RESOLVED ['italian-pizza;1-1;x86_64;examples']"),
        "{stdout}"
    );
    assert!(stdout.contains("EXIT success"), "{stdout}");
    // Download progress arrives per package, by package id.
    assert!(
        stdout.contains("ITEMS ['italian-pizza;1-1;x86_64;examples']"),
        "{stdout}"
    );
    wait_for(
        || setup.installed().contains("italian-pizza"),
        "pizza installed",
    );
}

#[test]
fn offline_update_prepare_trigger_and_results() {
    let setup = Setup::new();
    // Nothing prepared: Trigger is refused with a clear message.
    let mut command = setup.bus.command(Who::Root, "gdbus");
    command.args([
        "call",
        "--system",
        "--dest",
        "org.freedesktop.PackageKit",
        "--object-path",
        "/org/freedesktop/PackageKit",
        "--method",
        "org.freedesktop.PackageKit.Offline.Trigger",
        "reboot",
    ]);
    let output = command.output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no update is prepared"),
        "{}",
        text(&output)
    );
    // Prepare (download only) the installed package's id, trigger for the next boot, then run
    // the boot-time step; the results file says it succeeded and the trigger is gone.
    let mut command = setup.bus.command(Who::Root, "/usr/bin/python3");
    command.args(["-c", r#"
import gi
gi.require_version('PackageKitGlib', '1.0')
from gi.repository import PackageKitGlib as Pk
client = Pk.Client()
ids = [p.get_id() for p in client.resolve(0, ['pineapple'], None, lambda *a: None, None).get_package_array()]
result = client.update_packages(1 << int(Pk.TransactionFlagEnum.ONLY_TRUSTED) | 1 << int(Pk.TransactionFlagEnum.ONLY_DOWNLOAD), ids, None, lambda *a: None, None)
print('EXIT', Pk.ExitEnum.to_string(result.get_exit_code()))
"#]);
    let output = command.output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("EXIT success"),
        "{}",
        text(&output)
    );
    let prepared =
        std::fs::read_to_string(setup.root.path().join("var/lib/PackageKit/prepared-update"))
            .unwrap();
    assert!(prepared.contains("pineapple"), "{prepared}");
    let mut command = setup.bus.command(Who::Root, "gdbus");
    command.args([
        "call",
        "--system",
        "--dest",
        "org.freedesktop.PackageKit",
        "--object-path",
        "/org/freedesktop/PackageKit",
        "--method",
        "org.freedesktop.PackageKit.Offline.Trigger",
        "reboot",
    ]);
    assert!(command.output().unwrap().status.success());
    assert!(
        setup
            .root
            .path()
            .join("system-update")
            .symlink_metadata()
            .is_ok()
    );
    // Cancel disarms it (the prepared update stays); trigger again for the boot-time step.
    let offline = |method: &str, arguments: &[&str]| {
        let mut command = setup.bus.command(Who::Root, "gdbus");
        command.args(["call", "--system", "--dest", "org.freedesktop.PackageKit"]);
        command.args(["--object-path", "/org/freedesktop/PackageKit", "--method"]);
        command.arg(format!("org.freedesktop.PackageKit.Offline.{method}"));
        command.args(arguments);
        let output = command.output().unwrap();
        assert!(output.status.success(), "{method}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    offline("Cancel", &[]);
    assert!(
        setup
            .root
            .path()
            .join("system-update")
            .symlink_metadata()
            .is_err()
    );
    assert!(offline("GetPrepared", &[]).contains("pineapple"));
    offline("Trigger", &["reboot"]);
    // The boot-time step needs the installation for itself: stop the daemon first.
    drop(setup._mossd);
    let status = Command::new(&moss_tests::bus::binaries().0)
        .args(["--offline-update", "--root"])
        .arg(setup.root.path())
        .status()
        .unwrap();
    assert!(status.success());
    let results = std::fs::read_to_string(
        setup
            .root
            .path()
            .join("var/lib/PackageKit/offline-update-competed"),
    )
    .unwrap();
    assert!(results.contains("Success=true"), "{results}");
    assert!(
        setup
            .root
            .path()
            .join("system-update")
            .symlink_metadata()
            .is_err()
    );
}

#[test]
fn pkcon_refresh_get_updates_and_update_move_to_the_new_release() {
    let setup = Setup::new();
    let repository = setup.bus.directory().join("repo");
    publish_tool(&repository, 1);
    setup.pkcon(Who::Root, &["refresh"]);
    let install = setup.pkcon(Who::Root, &["-y", "install", "tool"]);
    assert!(install.contains("tool-1-1.x86_64"), "{install}");
    let file = setup.root.path().join("usr/share/tool/release");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");

    publish_tool(&repository, 2);
    let none = setup.pkcon(Who::Nobody, &["get-updates"]);
    assert!(
        none.contains("There are no updates"),
        "before refresh: {none}"
    );
    setup.pkcon(Who::Tester, &["refresh"]);
    let updates = setup.pkcon(Who::Nobody, &["get-updates"]);
    assert!(updates.contains("tool-1-2.x86_64 (examples)"), "{updates}");
    assert!(!updates.contains("bash-completion"), "{updates}");

    let refused = setup.pkcon(Who::Nobody, &["-y", "update"]);
    assert!(refused.contains("not authorised"), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");

    let update = setup.pkcon(Who::Tester, &["-y", "update"]);
    assert!(update.contains("tool-1-2.x86_64"), "{update}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "2\n");
    assert!(
        setup.installed().contains("tool             1-2"),
        "{}",
        setup.installed()
    );
    let after = setup.pkcon(Who::Nobody, &["get-updates"]);
    assert!(after.contains("There are no updates"), "{after}");
}

//! mossd on a private system bus with the real polkitd: authorisation of every change for root,
//! a member of the allowed group and nobody; busctl, gdbus and the CLI as clients; concurrency.
//! Life-cycle tests (cancel, disconnects, kills, idle exit, updates) are in `daemon_lifecycle.rs`.

use moss_tests::{
    bus::{Mossd, TestBus, Who},
    daemon_support::*,
};

/// Every method that changes the system, with busctl arguments that make sense on [`Setup`].
fn changes(build_root: &str) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let start = ["1", "start", "b", "true"].map(String::from).to_vec();
    let with = |mut arguments: Vec<String>| {
        arguments.extend(start.clone());
        arguments
    };
    let strings = |values: &[&str]| values.iter().map(|value| value.to_string()).collect();
    vec![
        (
            "Install",
            "asaha{sv}",
            with(strings(&["1", "italian-pizza", "0"])),
        ),
        ("Remove", "asa{sv}", with(strings(&["1", "italian-pizza"]))),
        ("Sync", "bba{sv}", with(strings(&["false", "false"]))),
        ("Refresh", "sa{sv}", with(strings(&[""]))),
        (
            "RepoAdd",
            "sstsasa{sv}",
            with(strings(&[
                "second",
                "file:///nonexistent/stone.index",
                "0",
                "",
                "0",
            ])),
        ),
        (
            "RepoEnable",
            "sba{sv}",
            with(strings(&["examples", "true"])),
        ),
        ("RepoRemove", "sa{sv}", with(strings(&["second"]))),
        ("StateActivate", "ta{sv}", with(strings(&["1"]))),
        ("StatePrune", "ta{sv}", with(strings(&["10"]))),
        ("StateRemove", "ata{sv}", with(strings(&["1", "999"]))),
        ("Repair", "a{sv}", with(Vec::new())),
        ("CachePrune", "a{sv}", with(Vec::new())),
        (
            "ComposeBuildRoot",
            "sasa{sv}",
            with(vec![build_root.to_owned(), "1".into(), "pineapple".into()]),
        ),
        ("AutomaticUpdate", "a{sv}", with(Vec::new())),
        (
            "BootSync",
            "ssa{sv}",
            with(vec![format!("{build_root}-esp"), String::new()]),
        ),
    ]
}

#[test]
fn nobody_is_refused_every_change_and_nothing_changes() {
    let setup = Setup::new(&[]);
    let before = snapshot(&setup.bus, setup.root.path());
    let build_root = setup.bus.directory().join("build-root-nobody");
    for (method, signature, arguments) in changes(&build_root.display().to_string()) {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        let output = call(&setup.bus, Who::Nobody, method, signature, &arguments);
        assert!(
            !output.status.success(),
            "{method} as nobody: {}",
            text(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not authorised") && stderr.contains("polkit denied"),
            "{method} as nobody: {}",
            text(&output)
        );
    }
    // The CLI maps the named error to exit code 77 with the daemon's message.
    let mut command = setup.bus.moss(Who::Nobody);
    command.args(["remove", "-y", "bash-completion"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("com.serpentos.moss.remove"));
    // gdbus reports the error by name.
    let mut command = setup.bus.command(Who::Nobody, "gdbus");
    command.args([
        "call",
        "--system",
        "--dest",
        "com.serpentos.Moss1",
        "--object-path",
        "/com/serpentos/Moss1",
        "--method",
        "com.serpentos.Moss1.Refresh",
        "",
        "{}",
    ]);
    let output = run(command);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("com.serpentos.Moss1.Error.NotAuthorized"),
        "{}",
        text(&output)
    );
    assert_eq!(snapshot(&setup.bus, setup.root.path()), before);
    assert!(!build_root.join("usr").exists());
    // Queries need no authorisation.
    let listing = moss_ok(&setup.bus, Who::Nobody, &["list", "installed"]);
    assert!(listing.contains("bash-completion"));
}

#[test]
fn root_and_the_allowed_group_may_make_every_change() {
    for who in [Who::Root, Who::Tester] {
        let setup = Setup::new(&[]);
        let build_root = setup.bus.directory().join(format!("build-root-{who:?}"));
        for (method, signature, arguments) in changes(&build_root.display().to_string()) {
            let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
            let output = call(&setup.bus, who, method, signature, &arguments);
            assert!(
                output.status.success(),
                "{method} as {who:?}: {}",
                text(&output)
            );
            let path = object_path(&output);
            let status = wait_final(&setup.bus, &path);
            let result = transaction_result(&setup.bus, &path);
            // A change may fail on its merits (the second repository does not exist), never
            // for want of permission.
            assert!(!result.contains("not authorised"), "{method}: {result}");
            // BootSync needs a kernel and a root partition this VM does not have.
            if !["RepoAdd", "RepoRemove", "StateRemove", "BootSync"].contains(&method) {
                assert!(
                    status.contains("succeeded"),
                    "{method} as {who:?}: {result}"
                );
            }
        }
        // The changes really happened: pizza was installed then removed, the build root has
        // pineapple, state 1 was activated.
        let listing = moss_ok(&setup.bus, Who::Root, &["list", "installed"]);
        assert!(listing.contains("bash-completion"), "{listing}");
        assert!(build_root.join("usr/share/defaults").exists() || build_root.join("usr").exists());
        let build_listing = moss_ok(
            &setup.bus,
            Who::Root,
            &["-D", &build_root.display().to_string(), "list", "installed"],
        );
        assert!(build_listing.contains("pineapple"), "{build_listing}");
    }
}

#[test]
fn polkit_unreachable_means_deny() {
    let bus = TestBus::start_with(false);
    let root = tempfile::tempdir().unwrap();
    let _mossd = Mossd::start(&bus, root.path(), &[]);
    let output = call(&bus, Who::Nobody, "Refresh", "sa{sv}", &["", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("polkit is unreachable"),
        "{}",
        text(&output)
    );
    // Root needs no polkit.
    let output = call(&bus, Who::Root, "Refresh", "sa{sv}", &["", "0"]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn the_cli_installs_lists_removes_and_rolls_back_through_the_daemon() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    moss_ok(bus, Who::Tester, &["install", "-y", "italian-pizza"]);
    let listing = moss_ok(bus, Who::Root, &["list", "installed", "--format", "json"]);
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bash-completion", "italian-pizza"]);
    assert!(
        setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );
    // A conflict is refused with the resolver's explanation and exit 1; nothing changes.
    let mut command = bus.moss(Who::Root);
    command.args(["install", "-y", "pineapple"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("conflicts"));
    moss_ok(bus, Who::Root, &["remove", "-y", "italian-pizza"]);
    assert!(
        !setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );
    moss_ok(bus, Who::Root, &["state", "activate", "2"]);
    assert!(
        setup
            .root
            .path()
            .join("usr/share/defaults/italian-pizza")
            .exists()
    );
    let states = moss_ok(bus, Who::Root, &["state", "list"]);
    assert!(states.contains("State #2 - Install (active)"), "{states}");
    // Queries of the daemon: info, search, search-file, history, state diff.
    assert!(moss_ok(bus, Who::Nobody, &["info", "pineapple"]).contains("Status       : available"));
    assert!(moss_ok(bus, Who::Nobody, &["search-file", "italian"]).contains("from italian-pizza"));
    let output = call(bus, Who::Nobody, "StateDiff", "tt", &["1", "2"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("italian-pizza"),
        "{}",
        text(&output)
    );
    let output = call(bus, Who::Nobody, "History", "", &[]);
    let history = String::from_utf8_lossy(&output.stdout);
    assert!(
        history.contains("Activate state") && history.contains("succeeded"),
        "{history}"
    );
    // A local stone goes to the daemon as a file descriptor.
    let pineapple = std::fs::read_dir(setup.repository.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.display().to_string().contains("pineapple"))
        .unwrap();
    moss_ok(bus, Who::Root, &["remove", "-y", "italian-pizza"]);
    moss_ok(
        bus,
        Who::Tester,
        &["install", "-y", &pineapple.display().to_string()],
    );
    assert!(moss_ok(bus, Who::Root, &["list", "installed"]).contains("pineapple"));
}

#[test]
fn twenty_clients_at_once_are_serialised_and_the_state_is_consistent() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    let children: Vec<_> = (0..20)
        .map(|index| {
            let mut command = bus.moss(if index % 2 == 0 {
                Who::Root
            } else {
                Who::Tester
            });
            // Alternate two different changes so that some join and some queue.
            if index % 4 < 2 {
                command.args(["install", "-y", "italian-pizza"]);
            } else {
                command.args(["repo", "update"]);
            }
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }
    let installed = moss_ok(bus, Who::Root, &["list", "installed"]);
    assert!(installed.contains("italian-pizza") && installed.contains("bash-completion"));
    moss_ok(bus, Who::Root, &["state", "verify"]);
    let log = setup.mossd.log_text();
    // One worker: a transaction runs only after the previous one finished.
    let mut running = None;
    let mut finished = 0;
    for line in log.lines() {
        if line.contains(" running ") || line.ends_with(" running") {
            assert_eq!(running, None, "two transactions ran at once:\n{log}");
            running = Some(line.to_owned());
        } else if line.contains("finished transaction=") {
            running = None;
            finished += 1;
        }
    }
    assert!(finished >= 3, "{log}");
    let states: serde_json::Value = serde_json::from_str(&moss_ok(
        bus,
        Who::Root,
        &["state", "list", "--format", "json"],
    ))
    .unwrap();
    // State 1 (setup) and exactly one install of pizza: the rest joined or found it installed.
    assert_eq!(states.as_array().unwrap().len(), 2, "{states}");
}

#[test]
fn the_cli_without_a_daemon_says_how_to_go_on() {
    let bus = TestBus::start();
    let mut command = bus.moss(Who::Root);
    command.args(["list", "installed"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(69), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("moss -D /"),
        "{}",
        text(&output)
    );
}

#[test]
fn boot_sync_goes_through_the_daemon_with_its_permission() {
    let setup = Setup::new(&[]);
    let bus = &setup.bus;
    // This VM's root is not on a GPT partition: name the root for the kernel command line.
    let config = setup.root.path().join("etc/moss");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("boot.yaml"),
        "root: \"root=PARTUUID=00000000-test\"\n",
    )
    .unwrap();
    let esp = bus.directory().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let esp = esp.display().to_string();
    let mut command = bus.moss(Who::Nobody);
    command.args(["boot", "sync", "--esp", &esp]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("boot-configure"));
    let mut command = bus.moss(Who::Tester);
    command.args(["boot", "sync", "--esp", &esp]);
    let output = run(command);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("boot entries"),
        "{}",
        text(&output)
    );
    let output = call(bus, Who::Root, "History", "", &[]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("Boot sync"));
}

/// Every object mossd serves introspects as well-formed XML: zbus writes doc comments into it as
/// XML comments, where `--` is not allowed, and clients such as python-dbus introspect before
/// each call.
#[test]
fn introspection_is_well_formed_xml() {
    let setup = Setup::new(&[]);
    for (service, path) in [
        ("com.serpentos.Moss1", "/com/serpentos/Moss1"),
        ("org.freedesktop.PackageKit", "/org/freedesktop/PackageKit"),
    ] {
        let mut command = setup.bus.command(Who::Nobody, "gdbus");
        command.args([
            "introspect",
            "--system",
            "--dest",
            service,
            "--object-path",
            path,
            "--xml",
        ]);
        let output = run(command);
        assert!(output.status.success(), "{}", text(&output));
        let mut parse = std::process::Command::new("python3");
        parse
            .args([
                "-c",
                "import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.buffer.read())",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = parse.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &output.stdout).unwrap();
        let parsed = child.wait_with_output().unwrap();
        assert!(
            parsed.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
}

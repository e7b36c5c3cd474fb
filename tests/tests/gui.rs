//! The desktop front-end end to end: `moss-gui` on a headless X display, driven through AT-SPI
//! (`tests/gui/drive.py`, python3-pyatspi) against the real mossd and the real polkitd on a
//! private system bus, with its own session bus and accessibility bus.
//!
//! Screenshots go to `$MOSS_GUI_SCREENSHOTS` (the README's come from
//! `MOSS_GUI_SCREENSHOTS=docs/screenshots`), or to `target/gui-screenshots`.

use std::path::{Path, PathBuf};

use moss_tests::{
    bus::{Mossd, TestBus, Who, project_dir},
    daemon_support::{
        Setup, add_examples, call, manager_property, moss_ok, property, publish_tool, snapshot,
        start_running_install, text,
    },
    display::{Display, values},
};

fn screenshots(scenario: &str) -> PathBuf {
    match std::env::var_os("MOSS_GUI_SCREENSHOTS") {
        Some(directory) => project_dir().join(directory),
        None => project_dir().join("target/gui-screenshots").join(scenario),
    }
}

/// Run the driver's `scenario` as `who` on a new headless display; its standard output.
fn drive(bus: &TestBus, who: Who, scenario: &str) -> String {
    let display = Display::start();
    let output = display.drive(bus, who, scenario, &screenshots(scenario));
    assert!(output.status.success(), "driver failed: {}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// States 1 (bash-completion) and 2 (tool release 1), and release 2 published but not yet
/// seen: an update waits for "Check for Updates".
fn setup_with_an_update() -> Setup {
    let setup = Setup::new(&[]);
    let repository = setup.bus.directory().join("repo");
    publish_tool(&repository, 1);
    moss_ok(&setup.bus, Who::Root, &["repo", "update"]);
    moss_ok(&setup.bus, Who::Root, &["install", "-y", "tool"]);
    publish_tool(&repository, 2);
    setup
}

fn state_id(root: &Path) -> String {
    std::fs::read_to_string(root.join("usr/.stateID"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn the_window_checks_for_updates_updates_compares_states_and_rolls_back() {
    let setup = setup_with_an_update();
    assert_eq!(state_id(setup.root.path()), "2");
    let stdout = drive(&setup.bus, Who::Root, "admin");
    // The update made state 3 with release 2 ...
    assert!(values(&stdout, "update")[0].starts_with("Done"), "{stdout}");
    let states = moss_ok(&setup.bus, Who::Root, &["state", "list"]);
    assert!(states.contains('3'), "{states}");
    // ... the window showed state 2's diff against it ...
    assert!(
        values(&stdout, "diff")[0].contains("tool 1-2 → 1-1"),
        "{stdout}"
    );
    // ... and the rollback switched the root back to state 2 and release 1.
    assert_eq!(values(&stdout, "rollback"), ["done"], "{stdout}");
    assert_eq!(state_id(setup.root.path()), "2");
    let release = std::fs::read_to_string(setup.root.path().join("usr/share/tool/release"));
    assert_eq!(release.unwrap().trim(), "1");
    assert!(
        values(&stdout, "verify")[0].starts_with("No problems found"),
        "{stdout}"
    );
    let startup = values(&stdout, "gui-stderr")
        .into_iter()
        .find(|line| line.contains("first frame after"))
        .map(str::to_owned);
    assert!(startup.is_some(), "no start-up report: {stdout}");
    #[expect(
        clippy::print_stdout,
        reason = "the start-up time goes to the test log"
    )]
    {
        println!("{}", startup.unwrap_or_default());
    }
    for view in [
        "overview",
        "overview-updated",
        "states",
        "packages",
        "repositories",
        "health",
        "settings",
    ] {
        let file = screenshots("admin").join(format!("{view}.png"));
        assert!(
            std::fs::metadata(&file).is_ok_and(|meta| meta.len() > 10_000),
            "{} missing or empty",
            file.display()
        );
    }
}

#[test]
fn a_refused_update_changes_nothing_and_says_so() {
    let setup = setup_with_an_update();
    let before = snapshot(&setup.bus, setup.root.path());
    let stdout = drive(&setup.bus, Who::Nobody, "refused");
    assert_eq!(
        values(&stdout, "refusal"),
        ["Not allowed — nothing was changed"],
        "{stdout}"
    );
    assert!(values(&stdout, "refusal-detail")[0].starts_with("You are not allowed"));
    assert_eq!(snapshot(&setup.bus, setup.root.path()), before);
    assert_eq!(state_id(setup.root.path()), "2");
}

#[test]
fn a_window_opened_mid_transaction_replays_and_follows_it() {
    // Every transaction pauses 3 s after building its tree, before the swap.
    let setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:3000")]);
    let bus = &setup.bus;
    // Someone else (busctl here; the CLI or the timer alike) starts an install.
    start_running_install(bus);
    let stdout = drive(bus, Who::Root, "follow");
    assert_eq!(values(&stdout, "followed"), ["Installing"], "{stdout}");
    assert!(
        values(&stdout, "followed-outcome")[0].starts_with("Done"),
        "{stdout}"
    );
    let installed = moss_ok(bus, Who::Root, &["list", "installed"]);
    assert!(installed.contains("italian-pizza"), "{installed}");
}

#[test]
fn the_window_outlives_an_idle_exit_of_mossd_and_the_bus_activates_it_again() {
    let root = tempfile::tempdir().unwrap();
    // mossd is started by the bus from the shipped service file and exits after 2 idle seconds.
    let bus = TestBus::start_activating(root.path(), 2);
    add_examples(&bus);
    moss_ok(&bus, Who::Root, &["install", "-y", "bash-completion"]);
    // Two checks, each after an idle exit and each in a new daemon run: the window starts and
    // follows both.
    let stdout = drive(&bus, Who::Root, "idle");
    assert_eq!(values(&stdout, "idle-exit"), ["yes", "yes"], "{stdout}");
    for run in ["before-idle-exit", "after-activation"] {
        assert!(
            values(&stdout, run)[0].starts_with("Done"),
            "{run}: {stdout}"
        );
    }
    // The history outlives the daemon runs: both checks ran to the end.
    let history = call(&bus, Who::Root, "History", "", &[]);
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    let asked = history.matches("\"Refresh\" 0 ").count();
    let refreshed = history
        .matches("\"succeeded\" \"Repositories refreshed\"")
        .count();
    assert_eq!(
        (asked, refreshed),
        (2, 2),
        "two refreshes by uid 0, both succeeded, in mossd's history: {history}\n{stdout}"
    );
    // Each run numbered on from the history (repository 1, install 2): no path came twice,
    // and the window started and followed both to their end (its log, in the driver's output).
    for number in [3, 4] {
        assert!(
            history.contains(&format!(" {number} \"Refresh\" 0 ")),
            "refresh {number}: {history}"
        );
        let path = format!("/com/serpentos/Moss1/Transaction/{number}");
        for line in [
            format!("following {path} (start: true)"),
            format!("{path} finished: succeeded"),
        ] {
            assert!(stdout.contains(&line), "{line}: {stdout}");
        }
    }
}

#[test]
fn cancel_in_the_window_stops_a_transaction_before_the_swap_and_changes_nothing() {
    // Long enough a pause for the window to open and press Cancel before the swap.
    let setup = Setup::new(&[("MOSS_PAUSE_AT", "blitted:15000")]);
    let bus = &setup.bus;
    let before = snapshot(bus, setup.root.path());
    let path = start_running_install(bus);
    let stdout = drive(bus, Who::Root, "cancel");
    assert_eq!(
        values(&stdout, "cancelled"),
        ["Cancelled — nothing was changed"],
        "{stdout}"
    );
    assert!(property(bus, &path, "Status").contains("cancelled"));
    assert_eq!(snapshot(bus, setup.root.path()), before);
}

/// A bus, polkitd and mossd reading its own configuration file (not the machine's
/// /etc/moss/mossd.kdl), with the example repository and `bash-completion` installed (state 1).
struct ConfiguredSetup {
    bus: TestBus,
    root: tempfile::TempDir,
    config: PathBuf,
    _mossd: Mossd,
}

impl ConfiguredSetup {
    fn new() -> Self {
        let bus = TestBus::start();
        let root = tempfile::tempdir().unwrap();
        let config = bus.directory().join("mossd.kdl");
        std::fs::write(&config, "// the test's settings\nupdate-policy \"check\"\n").unwrap();
        let arguments = ["--config", config.to_str().unwrap(), "--idle-exit", "0"];
        let mossd = Mossd::start_with(&bus, root.path(), &[], &arguments);
        add_examples(&bus);
        moss_ok(&bus, Who::Root, &["install", "-y", "bash-completion"]);
        Self {
            bus,
            root,
            config,
            _mossd: mossd,
        }
    }

    fn manager_property(&self, name: &str) -> String {
        manager_property(&self.bus, name)
    }
}

#[test]
fn settings_change_the_update_policy_and_the_states_to_keep_in_mossd() {
    let setup = ConfiguredSetup::new();
    let stdout = drive(&setup.bus, Who::Root, "settings");
    assert_eq!(
        values(&stdout, "keep-states"),
        ["After each change, older states beyond the newest 2 are removed"],
        "{stdout}"
    );
    // The daemon has both, and wrote both to its file beside the line it had.
    assert_eq!(setup.manager_property("KeepStates"), "u 2");
    assert_eq!(setup.manager_property("UpdatePolicy"), "s \"download\"");
    let written = std::fs::read_to_string(&setup.config).unwrap();
    assert!(written.contains("keep-states 2"), "{written}");
    assert!(written.contains("update-policy \"download\""), "{written}");
    assert!(written.starts_with("// the test's settings\n"), "{written}");
    let file = screenshots("settings").join("settings-keep-states.png");
    assert!(std::fs::metadata(&file).is_ok_and(|meta| meta.len() > 10_000));
}

#[test]
fn settings_refused_for_nobody_change_nothing_and_show_the_daemon_values_again() {
    let setup = ConfiguredSetup::new();
    let before = std::fs::read_to_string(&setup.config).unwrap();
    let stdout = drive(&setup.bus, Who::Nobody, "settings-refused");
    assert_eq!(
        values(&stdout, "keep-states-refusal"),
        ["Not allowed — nothing was changed"],
        "{stdout}"
    );
    assert_eq!(
        values(&stdout, "keep-states"),
        ["Every state is kept"],
        "{stdout}"
    );
    assert_eq!(
        values(&stdout, "policy-refusal"),
        ["Not allowed — nothing was changed"],
        "{stdout}"
    );
    assert_eq!(setup.manager_property("KeepStates"), "u 0");
    assert_eq!(setup.manager_property("UpdatePolicy"), "s \"check\"");
    assert_eq!(std::fs::read_to_string(&setup.config).unwrap(), before);
    assert_eq!(state_id(setup.root.path()), "1");
}

fn installed(setup: &ConfiguredSetup) -> String {
    moss_ok(&setup.bus, Who::Root, &["list", "installed"])
}

#[test]
fn the_packages_page_removes_and_installs_packages_in_the_root() {
    let setup = ConfiguredSetup::new();
    let completion = setup.root.path().join("usr/share/bash-completion");
    assert!(completion.exists());
    let stdout = drive(&setup.bus, Who::Root, "packages");
    assert_eq!(values(&stdout, "removed"), ["bash-completion"], "{stdout}");
    assert_eq!(values(&stdout, "installed"), ["pineapple"], "{stdout}");
    // Remove made state 2 without bash-completion, install state 3 with pineapple.
    assert_eq!(state_id(setup.root.path()), "3");
    let now = installed(&setup);
    assert!(!now.contains("bash-completion"), "{now}");
    assert!(now.contains("pineapple"), "{now}");
    assert!(
        !completion.exists(),
        "bash-completion's files are still in the root"
    );
}

/// The first regular file below `directory`.
fn first_file(directory: &Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    entries
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .or_else(|| {
            entries
                .iter()
                .filter(|path| path.is_dir())
                .map(|path| first_file(path))
                .next()
        })
        .unwrap_or_else(|| panic!("no file below {}", directory.display()))
}

#[test]
fn health_names_a_file_broken_in_the_root_and_repair_puts_it_back() {
    let setup = ConfiguredSetup::new();
    let broken = first_file(&setup.root.path().join("usr/share/bash-completion"));
    let contents = std::fs::read(&broken).unwrap();
    std::fs::remove_file(&broken).unwrap();
    let stdout = drive(&setup.bus, Who::Root, "health");
    let relative = broken.strip_prefix(setup.root.path().join("usr")).unwrap();
    let problem = values(&stdout, "problem").join(" ");
    assert!(
        problem.contains(&relative.display().to_string()),
        "{relative:?} not named: {stdout}"
    );
    assert!(
        values(&stdout, "outcome")[0].starts_with("Done: Repaired"),
        "{stdout}"
    );
    assert!(
        values(&stdout, "after-repair")[0].starts_with("No problems found"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&broken).unwrap(), contents);
}

#[test]
fn a_repository_is_disabled_and_enabled_again_from_its_switch() {
    let setup = ConfiguredSetup::new();
    let stdout = drive(&setup.bus, Who::Root, "repositories");
    let outcomes = values(&stdout, "outcome");
    assert_eq!(
        outcomes,
        ["Done: examples disabled", "Done: examples enabled"],
        "{stdout}"
    );
    // While disabled mossd listed it as inactive: the repository's `active` flag is false.
    let while_disabled = values(&stdout, "while-disabled").join(" ");
    assert!(while_disabled.contains("\"examples\""), "{stdout}");
    assert!(while_disabled.contains("false"), "{stdout}");
    let listed = moss_ok(&setup.bus, Who::Root, &["repo", "list", "--format", "json"]);
    let repositories: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(repositories[0]["active"], true, "{listed}");
}

#[test]
fn the_states_page_prunes_old_states_and_removes_one() {
    let setup = ConfiguredSetup::new();
    // States 1 to 4: bash-completion, + pineapple, - pineapple, + italian-pizza.
    moss_ok(&setup.bus, Who::Root, &["install", "-y", "pineapple"]);
    moss_ok(&setup.bus, Who::Root, &["remove", "-y", "pineapple"]);
    moss_ok(&setup.bus, Who::Root, &["install", "-y", "italian-pizza"]);
    let stdout = drive(&setup.bus, Who::Root, "prune");
    assert_eq!(values(&stdout, "pruned"), ["yes"], "{stdout}");
    assert_eq!(values(&stdout, "removed-state"), ["3"], "{stdout}");
    // Pruning to one older state removed 1 and 2; removing state 3 leaves the active one.
    let listed = moss_ok(
        &setup.bus,
        Who::Root,
        &["state", "list", "--format", "json"],
    );
    let states: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let ids: Vec<u64> = states
        .as_array()
        .unwrap()
        .iter()
        .map(|state| state["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [4], "{listed}");
    assert_eq!(state_id(setup.root.path()), "4");
}

#[test]
fn a_repository_is_added_from_the_form_with_its_address() {
    let setup = ConfiguredSetup::new();
    let stdout = drive(&setup.bus, Who::Root, "repository-add");
    assert_eq!(
        values(&stdout, "outcome"),
        ["Done: extra added"],
        "{stdout}"
    );
    // mossd has it, at the address typed into the form, next to `examples`.
    let listed = moss_ok(&setup.bus, Who::Root, &["repo", "list", "--format", "json"]);
    let repositories: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let extra = repositories
        .as_array()
        .unwrap()
        .iter()
        .find(|repository| repository["name"] == "extra" || repository["id"] == "extra")
        .unwrap_or_else(|| panic!("no repository extra: {listed}"));
    assert!(extra.to_string().contains("repo/stone.index"), "{listed}");
}

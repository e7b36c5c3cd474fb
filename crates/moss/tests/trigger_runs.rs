//! Triggers in a transaction: transaction triggers in an isolated container before the swap (a
//! failure abandons the transaction, the live system untouched), system triggers after it
//! against the live root for what changed (a failure reported and recorded on the state), and
//! `/etc` and `/var` made again by them.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use common::{calls, example_triggers, file, stone, tools, trigger_package};
use moss::{
    EngineError, Moss,
    db::Selection,
    events::{Event, Reporter},
    triggers::{Scope, TriggerError},
};

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn report(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn warnings(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Warning { message } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

struct Root {
    _work: tempfile::TempDir,
    root: PathBuf,
    stones: PathBuf,
    moss: Moss,
    recorder: Arc<Recorder>,
    ids: BTreeMap<String, String>,
}

impl Root {
    async fn new() -> Self {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("root");
        fs::create_dir(&root).unwrap();
        let recorder = Arc::new(Recorder::default());
        let moss = Moss::open(&root, recorder.clone()).await.unwrap();
        Self {
            stones: work.path().join("stones"),
            _work: work,
            root,
            moss,
            recorder,
            ids: BTreeMap::new(),
        }
    }

    async fn add(&mut self, name: &str, stone: PathBuf) {
        let unpacked = self
            .moss
            .add_stones(vec![(stone, None, "local".to_owned())])
            .await
            .unwrap();
        self.ids.insert(name.to_owned(), unpacked[0].id.clone());
    }

    async fn apply(&self, names: &[&str]) -> Result<moss::transaction::Switch, EngineError> {
        let selections = names
            .iter()
            .map(|name| Selection {
                package: self.ids[*name].clone(),
                explicit: true,
                reason: None,
            })
            .collect();
        self.moss.apply(selections, "Install").await
    }

    fn usr(&self) -> PathBuf {
        self.root.join("usr")
    }
}

fn content(stones: &Path) -> PathBuf {
    stone(
        stones,
        "content",
        "1",
        &[
            file("lib/modules/6.6.7/modules.order", ""),
            file(
                "share/glib-2.0/schemas/org.example.gschema.xml",
                "<schemalist/>",
            ),
            file("share/icons/hicolor/48x48/apps/example.png", "png"),
            file("share/mime/packages/example.xml", "<mime-info/>"),
            file("share/fonts/truetype/example.ttf", "font"),
            file("lib/libexample.so.1", "elf"),
            file(
                "lib/sysusers.d/example.conf",
                "g example 901\nu example 901 Example /var/lib/example\n",
            ),
            file(
                "lib/tmpfiles.d/example.conf",
                "d /var/lib/example 0750 example example -\nC /etc/example.conf - - - - /usr/share/defaults/etc/example.conf\nL /etc/example.link - - - - /usr/share/defaults/etc/example.conf\n",
            ),
            file("share/defaults/etc/example.conf", "answer = 42\n"),
        ],
        &[],
    )
}

/// What the example transaction triggers run for [`content`], in their order.
const TRANSACTION_CALLS: [&str; 5] = [
    "/usr/sbin/depmod -a 6.6.7",
    "/usr/bin/fc-cache",
    "/usr/bin/glib-compile-schemas /usr/share/glib-2.0/schemas",
    "/usr/bin/gtk-update-icon-cache -ftq /usr/share/icons/hicolor",
    "/usr/bin/update-mime-database -n /usr/share/mime",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_trigger_fires_with_its_arguments_in_order() {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add("triggers", example_triggers(&stones)).await;
    root.add("content", content(&stones)).await;
    let switch = root.apply(&["tools", "triggers", "content"]).await.unwrap();
    assert_eq!(switch.state, 1);
    // Transaction triggers (before the swap, into the new /usr), by name, then system triggers
    // (after the swap), in their before/after order.
    let expected: Vec<&str> = TRANSACTION_CALLS
        .iter()
        .chain(&[
            "/usr/bin/systemd-sysusers",
            "/usr/bin/systemd-tmpfiles --create -E",
            "/usr/sbin/ldconfig -X",
        ])
        .copied()
        .collect();
    assert_eq!(calls(&root.usr()), expected);
    // gio-querymodules matched nothing: it did not run.
    let runs = root.moss.trigger_runs(1).await.unwrap();
    assert_eq!(runs.len(), 8);
    assert!(runs.iter().all(|run| run.success));
    assert!(
        !runs
            .iter()
            .any(|run| run.command.contains("gio-querymodules"))
    );
    // What the system triggers made in /etc and /var.
    let passwd = fs::read_to_string(root.root.join("etc/passwd")).unwrap();
    assert_eq!(
        passwd,
        "example:x:901:901:Example:/var/lib/example:/usr/bin/nologin\n"
    );
    assert_eq!(
        fs::read_to_string(root.root.join("etc/group")).unwrap(),
        "example:x:901:\n"
    );
    assert!(root.root.join("var/lib/example").is_dir());
    assert_eq!(
        fs::read_to_string(root.root.join("etc/example.conf")).unwrap(),
        "answer = 42\n"
    );
    assert!(
        root.recorder.warnings().is_empty(),
        "{:?}",
        root.recorder.warnings()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_triggers_run_in_an_isolated_container() {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add(
        "probe",
        trigger_package(
            &stones,
            "probe",
            "tx",
            "name: probe\ndescription: d\nhandlers:\n  p:\n    run: /usr/bin/probe\npaths:\n  \"/usr/bin/probe\":\n    handlers: [p]\n",
        ),
    )
    .await;
    // Something in the host's /etc the container must not see.
    fs::create_dir_all(root.root.join("etc")).unwrap();
    fs::write(root.root.join("etc/host-secret"), "x").unwrap();
    root.apply(&["tools", "probe"]).await.unwrap();
    let probe = fs::read_to_string(root.usr().join("share/moss-test/probe")).unwrap();
    let line = |key: &str| -> Vec<String> {
        probe
            .lines()
            .filter_map(|line| {
                if line == key {
                    Some("")
                } else {
                    line.strip_prefix(&format!("{key} "))
                }
            })
            .map(str::to_owned)
            .collect()
    };
    // PID 1 of its own PID namespace, its own hostname (UTS namespace).
    assert_eq!(line("pid"), ["1"]);
    assert_eq!(line("hostname"), ["moss-triggers"]);
    // Every namespace differs from ours.
    let namespaces = line("ns");
    assert_eq!(namespaces.len(), 5, "{probe}");
    for (inside, kind) in namespaces.iter().zip(["mnt", "pid", "ipc", "uts", "net"]) {
        let outside = fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert!(inside.starts_with(&format!("{kind}:[")), "{probe}");
        assert_ne!(Path::new(inside), outside, "{kind} namespace is shared");
    }
    // Nothing of the host: the staged /usr, scratch /etc and /var, its own /proc, /dev, /tmp.
    assert_eq!(
        line("root"),
        ["bin dev etc lib lib32 lib64 proc run sbin tmp usr var"]
    );
    assert_eq!(line("etc"), [""]);
    // A network namespace with only the loopback device.
    assert_eq!(line("net"), ["lo"]);
    // A fixed environment, not ours.
    let mut environment: Vec<String> = line("env")[0].split(' ').map(str::to_owned).collect();
    environment.sort();
    assert_eq!(
        environment,
        ["HOME=/root", "LANG=C.UTF-8", "PATH=/usr/bin:/usr/sbin"]
    );
    assert!(!root.root.join(".moss/root/staging/usr").exists());
}

fn snapshot(tree: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in fs::read_dir(&directory).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let value = if kind.is_dir() {
                stack.push(path.clone());
                b"dir".to_vec()
            } else if kind.is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                fs::read(&path).unwrap()
            };
            entries.insert(path.strip_prefix(tree).unwrap().to_path_buf(), value);
        }
    }
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_transaction_trigger_aborts_with_its_output_and_leaves_the_system_untouched() {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add("content", content(&stones)).await;
    root.add("triggers", example_triggers(&stones)).await;
    root.add(
        "broken",
        trigger_package(
            &stones,
            "broken",
            "tx",
            "name: broken\ndescription: d\nhandlers:\n  b:\n    run: /usr/bin/fc-cache\n    args: [--fail]\npaths:\n  \"/usr/share/fonts/**/*\":\n    handlers: [b]\n",
        ),
    )
    .await;
    root.apply(&["tools", "content", "triggers"]).await.unwrap();
    let usr_before = snapshot(&root.usr());
    let etc_before = snapshot(&root.root.join("etc"));
    let error = root
        .apply(&["tools", "content", "triggers", "broken"])
        .await
        .unwrap_err();
    let EngineError::Trigger(TriggerError::Failed {
        trigger,
        command,
        status,
        output,
    }) = &error
    else {
        panic!("expected a trigger failure, got {error}");
    };
    assert_eq!(trigger, "broken");
    assert_eq!(command, "/usr/bin/fc-cache --fail");
    assert_eq!(status, "exited with status 3");
    assert_eq!(output, "fc-cache: failing on purpose\nboom from fc-cache");
    assert!(error.to_string().contains("boom from fc-cache"), "{error}");
    // Still state 1, byte for byte; no state 2 recorded; nothing left in staging.
    assert_eq!(root.moss.active_state(), Some(1));
    assert_eq!(snapshot(&root.usr()), usr_before);
    assert_eq!(snapshot(&root.root.join("etc")), etc_before);
    let states: Vec<u64> = root
        .moss
        .states()
        .await
        .unwrap()
        .iter()
        .map(|state| state.id)
        .collect();
    assert_eq!(states, [1]);
    assert!(!root.root.join(".moss/root/staging/usr").exists());
    assert!(!root.root.join(".moss/journal.json").exists());
    // The next transaction gets the next id and works.
    let switch = root.apply(&["tools", "content"]).await.unwrap();
    assert_eq!(switch.state, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_system_trigger_is_reported_and_recorded_on_the_state() {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add("content", content(&stones)).await;
    root.add("triggers", example_triggers(&stones)).await;
    root.add(
        "failing",
        trigger_package(
            &stones,
            "failing",
            "sys",
            "name: failing\ndescription: d\nbefore: systemd_tmpfiles\nhandlers:\n  f:\n    run: /usr/bin/systemd-sysusers\n    args: [--fail]\npaths:\n  \"/usr/lib/sysusers.d/*.conf\":\n    handlers: [f]\n",
        ),
    )
    .await;
    let switch = root
        .apply(&["tools", "content", "triggers", "failing"])
        .await
        .unwrap();
    assert_eq!(switch.state, 1);
    assert_eq!(root.moss.active_state(), Some(1));
    let warnings = root.recorder.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "system trigger failing failed: `/usr/bin/systemd-sysusers --fail` exited with status 3"
        ) && warnings[0].contains("boom from systemd-sysusers"),
        "{warnings:?}"
    );
    let runs = root.moss.trigger_runs(1).await.unwrap();
    let system: Vec<(&str, bool)> = runs
        .iter()
        .filter(|run| run.scope == Scope::System)
        .map(|run| (run.trigger.as_str(), run.success))
        .collect();
    // The others still ran, in order.
    assert_eq!(
        system,
        [
            ("failing", false),
            ("systemd_sysusers", true),
            ("systemd_tmpfiles", true),
            ("glibc_ldconfig", true)
        ]
    );
    let failed = runs.iter().find(|run| !run.success).unwrap();
    assert_eq!(failed.status, "exited with status 3");
    assert!(failed.output.contains("boom from systemd-sysusers"));
    // verify names it, as something `--fix` runs again.
    let issues = root.moss.verify().await.unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        issues[0].system && issues[0].problem.contains("have not completed"),
        "{issues:?}"
    );
    // The next transaction changes nothing they watch, yet runs every matching system trigger:
    // `/etc` and `/var` were not known to match the previous state.
    root.apply(&["tools", "content", "triggers"]).await.unwrap();
    let system: Vec<(String, bool)> = root
        .moss
        .trigger_runs(2)
        .await
        .unwrap()
        .into_iter()
        .filter(|run| run.scope == Scope::System)
        .map(|run| (run.trigger, run.success))
        .collect();
    assert_eq!(
        system,
        [
            ("systemd_sysusers".to_owned(), true),
            ("systemd_tmpfiles".to_owned(), true),
            ("glibc_ldconfig".to_owned(), true)
        ]
    );
    assert!(root.moss.verify().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_triggers_fire_for_what_changed_transaction_triggers_for_the_whole_state() {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add("content", content(&stones)).await;
    root.add("triggers", example_triggers(&stones)).await;
    root.add(
        "unrelated",
        stone(
            &stones,
            "unrelated",
            "1",
            &[file("share/doc/unrelated", "x")],
            &[],
        ),
    )
    .await;
    root.add(
        "users",
        stone(
            &stones,
            "users",
            "1",
            &[file("lib/sysusers.d/more.conf", "u more 902 More /\n")],
            &[],
        ),
    )
    .await;
    let ran = |runs: Vec<moss::triggers::TriggerRun>, scope| -> Vec<String> {
        runs.into_iter()
            .filter(|run| run.scope == scope)
            .map(|run| run.trigger)
            .collect()
    };
    root.apply(&["tools", "content", "triggers"]).await.unwrap();
    // An unrelated package: every matching transaction trigger again (the tree is new), no
    // system trigger (nothing they watch changed).
    root.apply(&["tools", "content", "triggers", "unrelated"])
        .await
        .unwrap();
    let runs = root.moss.trigger_runs(2).await.unwrap();
    assert_eq!(
        ran(runs.clone(), Scope::Transaction),
        [
            "depmod",
            "fonts-cache",
            "glib2",
            "gtk3_update_icon_cache",
            "mimedb"
        ]
    );
    assert!(ran(runs, Scope::System).is_empty());
    // A new sysusers file: sysusers again, and nothing else of the system triggers.
    root.apply(&["tools", "content", "triggers", "unrelated", "users"])
        .await
        .unwrap();
    assert_eq!(
        ran(root.moss.trigger_runs(3).await.unwrap(), Scope::System),
        ["systemd_sysusers"]
    );
    assert!(
        fs::read_to_string(root.root.join("etc/passwd"))
            .unwrap()
            .contains("more:x:902")
    );
    // Removing it is a change too.
    root.apply(&["tools", "content", "triggers", "unrelated"])
        .await
        .unwrap();
    assert_eq!(
        ran(root.moss.trigger_runs(4).await.unwrap(), Scope::System),
        ["systemd_sysusers"]
    );
    // A state without any matching path runs nothing at all.
    root.apply(&["tools", "unrelated"]).await.unwrap();
    assert!(root.moss.trigger_runs(5).await.unwrap().is_empty());
    // Rolling back to state 1: the system triggers of what differs between 5 and 1; the
    // transaction triggers again only if its tree had to be rebuilt (an archived tree that was
    // reused for a later state is gone), since an archived tree already holds their output.
    let archived = root.root.join(".moss/root/1/usr").exists();
    root.moss.activate(1).await.unwrap();
    let runs = root.moss.trigger_runs(1).await.unwrap();
    assert_eq!(
        ran(runs.clone(), Scope::System),
        ["systemd_sysusers", "systemd_tmpfiles", "glibc_ldconfig"]
    );
    assert_eq!(ran(runs, Scope::Transaction).is_empty(), archived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etc_and_var_are_regenerated_without_reinstalling() {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add("content", content(&stones)).await;
    root.add("triggers", example_triggers(&stones)).await;
    root.apply(&["tools", "content", "triggers"]).await.unwrap();
    assert!(root.moss.verify().await.unwrap().is_empty());
    let etc = snapshot(&root.root.join("etc"));
    let var = snapshot(&root.root.join("var"));
    assert!(etc.contains_key(Path::new("passwd")) && var.contains_key(Path::new("lib/example")));
    let usr = snapshot(&root.usr());
    fs::remove_dir_all(root.root.join("etc")).unwrap();
    fs::remove_dir_all(root.root.join("var")).unwrap();
    let issues = root.moss.verify().await.unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].system);
    root.moss.repair(&issues).await.unwrap();
    assert_eq!(snapshot(&root.root.join("etc")), etc);
    assert_eq!(snapshot(&root.root.join("var")), var);
    assert!(root.moss.verify().await.unwrap().is_empty());
    // Same state, nothing reinstalled: /usr only gained the stub's call log lines.
    assert_eq!(root.moss.active_state(), Some(1));
    let mut after = snapshot(&root.usr());
    let mut before = usr;
    after.remove(Path::new("share/moss-test/calls"));
    before.remove(Path::new("share/moss-test/calls"));
    assert_eq!(after, before);
}

/// State 1: the example triggers and content for each (8 trigger runs); state 2: the same and an
/// unrelated package, so that state 1's tree is archived.
async fn two_states() -> Root {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add("content", content(&stones)).await;
    root.add("triggers", example_triggers(&stones)).await;
    root.add(
        "unrelated",
        stone(
            &stones,
            "unrelated",
            "1",
            &[file("share/doc/unrelated", "x")],
            &[],
        ),
    )
    .await;
    root.apply(&["tools", "content", "triggers"]).await.unwrap();
    assert_eq!(calls(&root.usr()).len(), 8);
    root.apply(&["tools", "content", "triggers", "unrelated"])
        .await
        .unwrap();
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activating_an_untouched_archived_tree_runs_no_transaction_trigger() {
    let root = two_states().await;
    assert!(root.root.join(".moss/root/1/usr").exists());
    let switch = root.moss.activate(1).await.unwrap();
    assert_eq!(switch.reused, Some(1));
    // The tree is state 1's own, caches and call log included; nothing ran again.
    assert_eq!(calls(&root.usr()).len(), 8);
    assert_eq!(root.moss.trigger_runs(1).await.unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_rebuilt_without_its_archive_gets_its_transaction_triggers_even_when_skipping() {
    let root = two_states().await;
    // State 1's archived tree is gone (another transaction reused it), so activating state 1
    // rebuilds its tree from the store, as the offline rollback at boot does (`moss fstx`).
    fs::remove_dir_all(root.root.join(".moss/root/1")).unwrap();
    let switch = root
        .moss
        .activate_with(
            1,
            moss::transaction::ActivateOptions {
                skip_triggers: true,
                skip_boot: true,
            },
        )
        .await
        .unwrap();
    assert_ne!(switch.reused, Some(1));
    // The transaction triggers made their part of the new tree; no system trigger ran.
    assert_eq!(calls(&root.usr()), TRANSACTION_CALLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_handlers_remove_paths_and_a_missing_program_aborts() {
    let mut root = Root::new().await;
    let stones = root.stones.clone();
    root.add("tools", tools(&stones)).await;
    root.add("content", content(&stones)).await;
    root.add("triggers", example_triggers(&stones)).await;
    // Runs after glib2 and deletes the schema source it compiled, named by a capture.
    root.add(
        "cleanup",
        trigger_package(
            &stones,
            "cleanup",
            "tx",
            "name: cleanup\ndescription: d\nafter: glib2\nhandlers:\n  d:\n    delete: [\"/usr/share/glib-2.0/schemas/$(file).xml\"]\npaths:\n  \"/usr/share/glib-2.0/schemas/(file:*).xml\":\n    handlers: [d]\n",
        ),
    )
    .await;
    root.apply(&["tools", "content", "triggers", "cleanup"])
        .await
        .unwrap();
    let runs = root.moss.trigger_runs(1).await.unwrap();
    let cleanup = runs.iter().find(|run| run.trigger == "cleanup").unwrap();
    assert_eq!(
        cleanup.command,
        "delete /usr/share/glib-2.0/schemas/org.example.gschema.xml"
    );
    assert!(cleanup.success);
    assert!(
        !root
            .usr()
            .join("share/glib-2.0/schemas/org.example.gschema.xml")
            .exists()
    );
    assert!(root.usr().join("share/glib-2.0/schemas").is_dir());
    // It ran after the trigger it names.
    let order: Vec<&str> = runs.iter().map(|run| run.trigger.as_str()).collect();
    let position = |name| order.iter().position(|trigger| *trigger == name).unwrap();
    assert!(position("glib2") < position("cleanup"), "{order:?}");
    root.add(
        "missing",
        trigger_package(
            &stones,
            "missing",
            "tx",
            "name: missing\ndescription: d\nhandlers:\n  m:\n    run: /usr/bin/not-there\npaths:\n  \"/usr/bin/probe\":\n    handlers: [m]\n",
        ),
    )
    .await;
    let error = root
        .apply(&["tools", "content", "triggers", "missing"])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::Trigger(TriggerError::Spawn { trigger, .. }) if trigger == "missing"),
        "{error}"
    );
    assert!(error.to_string().contains("/usr/bin/not-there"), "{error}");
    assert_eq!(root.moss.active_state(), Some(1));
}

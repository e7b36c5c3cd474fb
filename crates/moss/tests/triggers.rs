//! Trigger definitions: parsing (errors with file and line), ordering and cycles, inhibitors,
//! and what the example triggers plan for a list of paths. Running them is `trigger_runs.rs`.

mod common;

use std::{fs, path::Path};

use moss::triggers::{self, Action, Environment, Scope, TriggerError};

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn usr_with(definitions: &[(&str, &str)]) -> tempfile::TempDir {
    let usr = tempfile::tempdir().unwrap();
    for (name, text) in definitions {
        write(&usr.path().join("share/moss/triggers").join(name), text);
    }
    usr
}

const SIMPLE: &str = "name: a\ndescription: d\nhandlers:\n  h:\n    run: /usr/bin/a\npaths:\n  \"/usr/lib/*\":\n    handlers: [h]\n";

#[test]
fn a_file_that_does_not_parse_is_an_error_naming_file_and_line() {
    let usr = usr_with(&[
        ("tx.d/good.yaml", SIMPLE),
        (
            "tx.d/zbad.yaml",
            "name: b\ndescription: d\nhandlers:\n  h:\n    run: /usr/bin/b\n    args: [unclosed\npaths: {}\n",
        ),
    ]);
    let error = triggers::load(usr.path(), Scope::Transaction).unwrap_err();
    let TriggerError::Parse { file, line, .. } = &error else {
        panic!("expected a parse error, got {error}");
    };
    assert!(file.ends_with("tx.d/zbad.yaml"), "{error}");
    assert!(*line >= 6, "line {line}: {error}");
    assert!(error.to_string().contains("zbad.yaml, line"), "{error}");

    // A handler a path names but nobody defines: the line of the path.
    let usr = usr_with(&[(
        "sys.d/x.yaml",
        "name: x\ndescription: d\nhandlers:\n  h:\n    run: /usr/bin/x\npaths:\n  \"/usr/lib/*\":\n    handlers: [nope]\n",
    )]);
    let error = triggers::load(usr.path(), Scope::System).unwrap_err();
    assert!(
        matches!(&error, TriggerError::Parse { line: 7, message, .. } if message.contains("\"nope\"")),
        "{error}"
    );

    // A relative program, and a handler with neither run nor delete.
    for (handler, expected) in [
        ("    run: ldconfig\n", "absolute path"),
        ("    args: [x]\n", "exactly one of `run` and `delete`"),
    ] {
        let text = format!(
            "name: x\ndescription: d\nhandlers:\n  h:\n{handler}paths:\n  \"/usr/lib/*\":\n    handlers: [h]\n"
        );
        let usr = usr_with(&[("tx.d/x.yaml", &text)]);
        let error = triggers::load(usr.path(), Scope::Transaction).unwrap_err();
        assert!(
            matches!(&error, TriggerError::Parse { line: 4, .. })
                && error.to_string().contains(expected),
            "{error}"
        );
    }

    // Two files with one name.
    let usr = usr_with(&[("tx.d/one.yaml", SIMPLE), ("tx.d/two.yaml", SIMPLE)]);
    let error = triggers::load(usr.path(), Scope::Transaction).unwrap_err();
    assert!(
        matches!(error, TriggerError::Duplicate { ref name, .. } if name == "a"),
        "{error}"
    );
}

#[test]
fn ordering_follows_before_and_after_and_a_cycle_names_its_triggers() {
    let definition = |name: &str, extra: &str| {
        format!(
            "name: {name}\ndescription: d\n{extra}handlers:\n  h:\n    run: /usr/bin/{name}\npaths:\n  \"/usr/lib/*\":\n    handlers: [h]\n"
        )
    };
    let usr = usr_with(&[
        ("sys.d/a.yaml", &definition("a", "after: c\n")),
        ("sys.d/b.yaml", &definition("b", "before: [a, c]\n")),
        ("sys.d/c.yaml", &definition("c", "")),
        ("sys.d/d.yaml", &definition("d", "after: missing\n")),
    ]);
    let loaded = triggers::load(usr.path(), Scope::System).unwrap();
    let planned = triggers::plan(
        Scope::System,
        &loaded,
        ["/usr/lib/x"],
        usr.path(),
        Environment::Chroot,
    )
    .unwrap();
    let names: Vec<&str> = planned
        .iter()
        .map(|trigger| trigger.name.as_str())
        .collect();
    assert_eq!(names, ["b", "c", "a", "d"]);

    let usr = usr_with(&[
        ("sys.d/a.yaml", &definition("a", "after: c\n")),
        ("sys.d/b.yaml", &definition("b", "after: a\n")),
        ("sys.d/c.yaml", &definition("c", "after: b\n")),
        ("sys.d/d.yaml", &definition("d", "after: a\n")),
    ]);
    let loaded = triggers::load(usr.path(), Scope::System).unwrap();
    // The cycle is an error even when no path fires its triggers.
    let error =
        triggers::plan(Scope::System, &loaded, [], usr.path(), Environment::Chroot).unwrap_err();
    let TriggerError::Cycle { names, .. } = &error else {
        panic!("expected a cycle, got {error}");
    };
    assert_eq!(names.first(), names.last());
    let mut members: Vec<&str> = names[1..].iter().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["a", "b", "c"], "{error}");
    assert!(error.to_string().contains(" -> "), "{error}");
}

#[test]
fn example_triggers_plan_their_commands_with_captures() {
    let usr = tempfile::tempdir().unwrap();
    let examples = common::repository().join("examples/triggers");
    for scope in ["tx.d", "sys.d"] {
        for entry in fs::read_dir(examples.join(scope)).unwrap().flatten() {
            let target = usr
                .path()
                .join("share/moss/triggers")
                .join(scope)
                .join(entry.file_name());
            write(&target, &fs::read_to_string(entry.path()).unwrap());
        }
    }
    let paths = [
        "/usr/lib/modules/6.6.7/modules.dep",
        "/usr/lib/modules/6.6.7/kernel",
        "/usr/lib/modules/6.9.1/modules.dep",
        "/usr/lib/modules/6.9.1/a/deep.ko",
        "/usr/share/glib-2.0/schemas/org.example.gschema.xml",
        "/usr/share/icons/hicolor/48x48/apps",
        "/usr/share/mime/packages/freedesktop.org.xml",
        "/usr/share/fonts/truetype/a.ttf",
        "/usr/share/fonts/b.ttf",
        "/usr/lib/libz.so.1",
        "/usr/lib/sysusers.d/a.conf",
        "/usr/lib/tmpfiles.d/a.conf",
    ];
    let run = |program: &str, args: &[&str]| Action::Run {
        program: program.to_owned(),
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
    };
    let plan = |scope| {
        let loaded = triggers::load(usr.path(), scope).unwrap();
        triggers::plan(scope, &loaded, paths, usr.path(), Environment::Chroot)
            .unwrap()
            .into_iter()
            .map(|trigger| (trigger.name, trigger.actions))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        plan(Scope::Transaction),
        vec![
            (
                "depmod".to_owned(),
                vec![
                    run("/usr/sbin/depmod", &["-a", "6.6.7"]),
                    run("/usr/sbin/depmod", &["-a", "6.9.1"])
                ]
            ),
            // No `args`: accepted (upstream silently drops this file).
            (
                "fonts-cache".to_owned(),
                vec![run("/usr/bin/fc-cache", &[])]
            ),
            (
                "glib2".to_owned(),
                vec![run(
                    "/usr/bin/glib-compile-schemas",
                    &["/usr/share/glib-2.0/schemas"]
                )]
            ),
            (
                "gtk3_update_icon_cache".to_owned(),
                vec![run(
                    "/usr/bin/gtk-update-icon-cache",
                    &["-ftq", "/usr/share/icons/hicolor"]
                )]
            ),
            (
                "mimedb".to_owned(),
                vec![run(
                    "/usr/bin/update-mime-database",
                    &["-n", "/usr/share/mime"]
                )]
            ),
        ]
    );
    assert_eq!(
        plan(Scope::System),
        vec![
            (
                "systemd_sysusers".to_owned(),
                vec![run("/usr/bin/systemd-sysusers", &[])]
            ),
            (
                "systemd_tmpfiles".to_owned(),
                vec![run("/usr/bin/systemd-tmpfiles", &["--create", "-E"])]
            ),
            (
                "glibc_ldconfig".to_owned(),
                vec![run("/usr/sbin/ldconfig", &["-X"])]
            ),
        ]
    );
}

#[test]
fn inhibitors_skip_a_trigger() {
    let text = "name: a\ndescription: d\ninhibitors:\n  paths: [/usr/share/skip-me]\n  environment: [live]\nhandlers:\n  h:\n    run: /usr/bin/a\npaths:\n  \"/usr/lib/*\":\n    handlers: [h]\n";
    let usr = usr_with(&[("tx.d/a.yaml", text)]);
    let root = tempfile::tempdir().unwrap();
    let loaded = triggers::load(usr.path(), Scope::Transaction).unwrap();
    let plan = |environment| {
        triggers::plan(
            Scope::Transaction,
            &loaded,
            ["/usr/lib/x"],
            root.path(),
            environment,
        )
        .unwrap()
        .len()
    };
    assert_eq!(plan(Environment::Chroot), 1);
    assert_eq!(plan(Environment::Live), 0);
    write(&root.path().join("usr/share/skip-me"), "");
    assert_eq!(plan(Environment::Chroot), 0);
}

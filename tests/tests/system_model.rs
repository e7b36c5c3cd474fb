//! The system model through mossd on a private bus with the real polkitd: `moss sync --model`
//! sends the model's text (SyncModel), `moss state export` reads it back (StateExport), and an
//! unprivileged caller is refused with nothing changed.

use std::fs;

use moss_tests::{
    bus::{Mossd, TestBus, Who, example_repository},
    daemon_support::*,
};

#[test]
fn a_model_is_applied_and_exported_through_mossd() {
    let bus = TestBus::start();
    let root = tempfile::tempdir().unwrap();
    let _mossd = Mossd::start(&bus, root.path(), &[]);
    let index = example_repository(bus.directory());
    let model = bus.directory().join("model.kdl");
    fs::write(
        &model,
        format!(
            "disable_warning #true\nrepositories {{\n    examples {{\n        uri \
             \"file://{}\"\n        priority 1\n    }}\n}}\npackages {{\n    pineapple\n}}\n",
            index.display()
        ),
    )
    .unwrap();
    // Refused for nobody: nothing installed, no model adopted.
    let mut command = bus.moss(Who::Nobody);
    command.args(["sync", "--model", model.to_str().unwrap(), "-y"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(77), "{}", text(&output));
    assert!(!root.path().join("etc/moss/system-model.kdl").exists());
    assert!(!root.path().join("usr").exists());

    let mut command = bus.moss(Who::Root);
    command.args(["sync", "--model", model.to_str().unwrap(), "-y"]);
    let output = run(command);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("pineapple"),
        "{}",
        text(&output)
    );
    assert_eq!(
        fs::read_to_string(root.path().join("etc/moss/system-model.kdl")).unwrap(),
        fs::read_to_string(&model).unwrap()
    );
    let exported = moss_ok(&bus, Who::Nobody, &["state", "export"]);
    assert_eq!(exported, fs::read_to_string(&model).unwrap());
    let installed = moss_ok(&bus, Who::Nobody, &["list", "installed"]);
    assert!(installed.contains("pineapple"), "{installed}");
    // A dry run through mossd says how to plan a model instead of applying it.
    let mut command = bus.moss(Who::Root);
    command.args(["sync", "--model", model.to_str().unwrap(), "--dry-run"]);
    let output = run(command);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("moss -D ROOT sync --model FILE --dry-run"),
        "{}",
        text(&output)
    );
}

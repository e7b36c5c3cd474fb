//! Triggers through the `moss` binary: a failing transaction trigger fails the install with its
//! output and changes nothing; without privileges the container also gets a user
//! namespace mapping the caller to root inside, and works the same.

#[path = "../../crates/moss/tests/common/mod.rs"]
mod common;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
};

use common::{example_triggers, file, stone, tools, trigger_package};

const NOBODY: &str = "65534";

fn as_nobody(root: &Path, arguments: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_moss"))
        .arg("-D")
        .arg(root)
        .args(arguments)
        .env("HOME", root)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv runs (util-linux)")
}

#[test]
fn triggers_run_in_a_user_namespace_without_privileges() {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata("/proc/self").unwrap().uid(),
        0,
        "this test runs as root: it switches to nobody to run moss"
    );
    let work = tempfile::tempdir().unwrap();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
    let stones = work.path().join("stones");
    let probe = trigger_package(
        &stones,
        "probe",
        "tx",
        "name: probe\ndescription: d\nhandlers:\n  p:\n    run: /usr/bin/probe\npaths:\n  \"/usr/bin/probe\":\n    handlers: [p]\n",
    );
    let content = stone(
        &stones,
        "content",
        "1",
        &[
            file("lib/sysusers.d/u.conf", "u svc 990 Service /var/lib/svc\n"),
            file("lib/tmpfiles.d/u.conf", "d /var/lib/svc 0750 - - -\n"),
        ],
        &[],
    );
    let paths = [tools(&stones), example_triggers(&stones), probe, content];
    let mut arguments = vec!["-y", "install"];
    arguments.extend(paths.iter().map(|path| path.to_str().unwrap()));
    let output = as_nobody(&root, &arguments);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let probe = fs::read_to_string(root.join("usr/share/moss-test/probe")).unwrap();
    assert!(
        probe.contains("pid 1\n") && probe.contains("hostname moss-triggers\n"),
        "{probe}"
    );
    assert!(probe.contains("\nnet lo\n"), "{probe}");
    let calls = common::calls(&root.join("usr"));
    assert!(
        calls.contains(&"/usr/bin/systemd-sysusers".to_owned()),
        "{calls:?}"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/passwd")).unwrap(),
        "svc:x:990:990:Service:/var/lib/svc:/usr/bin/nologin\n"
    );
    // Made by root inside the container: owned by the caller outside.
    let metadata = fs::metadata(root.join("var/lib/svc")).unwrap();
    assert_eq!((metadata.uid(), metadata.mode() & 0o7777), (65534, 0o750));
}

#[test]
fn a_failing_transaction_trigger_fails_the_install_with_its_output() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let stones = work.path().join("stones");
    let broken = trigger_package(
        &stones,
        "broken",
        "tx",
        "name: broken\ndescription: d\nhandlers:\n  b:\n    run: /usr/bin/fc-cache\n    args: [--fail]\npaths:\n  \"/usr/bin/fc-cache\":\n    handlers: [b]\n",
    );
    let moss = |arguments: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_moss"))
            .arg("-D")
            .arg(&root)
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let tools = tools(&stones);
    let output = moss(&["-y", "install", tools.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let output = moss(&["-y", "install", broken.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("transaction trigger broken failed: `/usr/bin/fc-cache --fail` exited with status 3; the system was not changed")
            && stderr.contains("fc-cache: failing on purpose\nboom from fc-cache"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(root.join("usr/.stateID")).unwrap(), "1");
    let output = moss(&["state", "list", "--format", "json"]);
    let states: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(states.as_array().unwrap().len(), 1);
}

//! The VM test (`tests/vm/`, README "The VM test"): a bootable system built from Debian 12
//! binaries converted by `boulder import-deb`, installed by `moss -D`, booted in QEMU with OVMF
//! through systemd-boot entries moss wrote, and driven through the scenario by a unit inside the
//! guest. The host checks each step on the serial console.
//!
//! It needs root, apt and several minutes, so it runs only when `MOSS_VM_TEST=1` (`./test`
//! sets it when asked with `./test --vm`); otherwise it reports that it was skipped. The serial
//! log of a run stays in `target/vm/run-scenario/serial.log`, and a failure prints the step and
//! the guest's log lines around it.

use std::{io::Write, path::Path, process::Command};

fn run(script: &Path, arguments: &[&str]) -> bool {
    let status = Command::new(script)
        .args(arguments)
        .status()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    status.success()
}

#[test]
fn a_moss_managed_system_boots_updates_and_rolls_back_in_a_virtual_machine() {
    if std::env::var("MOSS_VM_TEST").as_deref() != Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set MOSS_VM_TEST=1 (or run ./test --vm) to build the image and boot it"
        );
        return;
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("vm");
    assert!(
        run(&scripts.join("build-image.sh"), &[]),
        "building the VM image failed (output above)"
    );
    assert!(
        run(&scripts.join("run-vm.sh"), &["scenario"]),
        "the VM scenario failed (the failing step and the guest's log are above)"
    );
}

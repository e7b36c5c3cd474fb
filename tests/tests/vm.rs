//! The VM test (`tests/vm/`, README "The VM test"): a bootable system built from Debian 12
//! binaries converted by `boulder import-deb`, installed by `moss -D`, booted in QEMU with OVMF
//! through systemd-boot entries moss wrote, and driven through the scenario by a unit inside the
//! guest. The host checks each step on the serial console; then the README's interactive command
//! is checked the way a person uses it (log in as root on the serial console, run moss).
//!
//! It needs root, apt and about ten minutes, so it runs when `MOSS_VM_TEST=1`, which `./test`
//! sets where it runs as root with apt (`MOSS_VM_TEST=0 ./test` leaves it out); otherwise it
//! reports that it was skipped. The serial log of a run stays in
//! `target/vm/run-scenario/serial.log`, and a failure prints the step and the guest's log lines
//! around it.

use std::{io::Write, path::Path, process::Command, time::Instant};

fn run(program: &Path, arguments: &[&str]) -> bool {
    let status = Command::new(program)
        .args(arguments)
        .status()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    status.success()
}

#[test]
fn a_moss_managed_system_boots_updates_and_rolls_back_in_a_virtual_machine() {
    if std::env::var("MOSS_VM_TEST").as_deref() != Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set MOSS_VM_TEST=1 (./test does as root with apt) to build the image and boot it"
        );
        return;
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("vm");
    let started = Instant::now();
    assert!(
        run(&scripts.join("build-image.sh"), &[]),
        "building the VM image failed (output above)"
    );
    let built = started.elapsed();
    assert!(
        run(&scripts.join("run-vm.sh"), &["scenario"]),
        "the VM scenario failed (the failing step and the guest's log are above)"
    );
    let scenario = started.elapsed() - built;
    assert!(
        run(&scripts.join("login-check.py"), &[]),
        "logging in on the serial console of `run-vm.sh interactive` failed (the session is above)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "VM test: image {} s, scenario {} s, interactive login {} s",
        built.as_secs(),
        scenario.as_secs(),
        (started.elapsed() - built - scenario).as_secs()
    );
}

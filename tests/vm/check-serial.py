#!/usr/bin/env python3
"""Checks the serial log of a VM scenario run (tests/vm/run-vm.sh): every step the guest driver
must report (MOSS-VM-STEP NAME PASS|FAIL DETAIL), in its phase. Prints a table; on a failure or a
missing step names it and shows the guest's log lines around it. Exit 0 only when all passed."""
import re
import sys

# The scenario's steps, in the order the driver runs them (tests/vm/guest/driver.sh).
STEPS = [
    "first-boot", "sysusers", "tmpfiles", "presets", "units-verify",
    "dbus-activation", "packagekit", "idle-exit", "rebootless-update", "boot-entries",
    "crash-recovery", "polkit-refusal", "rollback-arm",
    "rollback", "rollforward-arm",
    "rollforward",
    "factory-reset", "update-timer", "update-download", "update-apply",
]


def main():
    log_path, qemu_status, elapsed = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(log_path, "rb") as handle:
        lines = handle.read().decode("utf-8", "replace").replace("\r", "").split("\n")
    results = {}
    for number, line in enumerate(lines):
        match = re.search(r"MOSS-VM-STEP (\S+) (PASS|FAIL) (\d+s) ?(.*)", line)
        if match and "MOSS-VM-LOG" not in line:
            results.setdefault(match.group(1), (match.group(2), match.group(3), match.group(4), number))
    boots = sum(1 for line in lines if "moss-initrd: running moss" in line)
    for line in lines:
        if "MOSS-VM-NOTE" in line and "MOSS-VM-LOG" not in line:
            print(line[line.index("MOSS-VM-NOTE"):])
    done = any("MOSS-VM-DONE" in line for line in lines)
    print(f"VM scenario: qemu exit {qemu_status}, {elapsed} s, {boots} boots")
    failed = []
    for step in STEPS:
        status, took, detail, _ = results.get(step, ("MISSING", "", "", None))
        print(f"  {status:7} {step:18} {took:>5} {detail}")
        if status != "PASS":
            failed.append(step)
    if not failed and done:
        return 0
    first = failed[0] if failed else "end"
    print(f"\nFAILED at step {first!r} (log: {log_path})")
    if first in results:
        around = results[first][3]
        context = lines[max(0, around - 40):around + 1]
    else:
        context = lines[-80:]
    for line in context:
        print(f"  | {line}")
    guest_log = [line for line in lines if "MOSS-VM-LOG" in line]
    if guest_log:
        print("guest journal at the failure:")
        for line in guest_log[-60:]:
            print(f"  | {line}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

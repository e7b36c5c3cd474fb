#!/usr/bin/env python3
"""Checks the README's interactive command (tests/vm/run-vm.sh interactive) as a person would use
it: waits for the login prompt on the serial console, logs in as root without a password, runs
`moss state list` and `moss list installed`, and powers the guest off. Prints the session; exit 0
only when the login worked and moss answered.

Usage: tests/vm/login-check.py [OUT] (the image in OUT, default target/vm)."""
import os
import sys
import time

import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
# The prompt is set after the login (the image has no bashrc: bash's own is `-bash-5.2# `).
PROMPT = "moss-vm# "
BOOT_TIMEOUT = int(os.environ.get("MOSS_VM_LOGIN_TIMEOUT", "600"))


def main():
    arguments = ["interactive"] + sys.argv[1:2]
    started = time.monotonic()
    session = pexpect.spawn(
        os.path.join(HERE, "run-vm.sh"), arguments, encoding="utf-8", codec_errors="replace",
        timeout=BOOT_TIMEOUT, dimensions=(50, 200),
    )
    session.logfile_read = sys.stdout
    try:
        # The guest driver says when the password is gone; the getty may ask before that.
        session.expect("MOSS-VM-NOTE interactive")
        session.sendline("")
        session.expect("login: ")
        session.sendline("root")
        session.expect("# ", timeout=120)
        session.sendline("PS1='moss-vm''# '")
        session.expect(PROMPT)
        print(f"\n[login-check] logged in after {time.monotonic() - started:.0f} s", flush=True)
        session.sendline("moss state list; echo moss-exit=$?")
        session.expect(r"moss-exit=(\d+)", timeout=300)
        states = session.match.group(1)
        session.expect(PROMPT)
        session.sendline("moss list installed | wc -l; echo moss-exit=$?")
        session.expect(r"(\d+)\s+moss-exit=(\d+)", timeout=300)
        packages, listed = session.match.group(1), session.match.group(2)
        session.expect(PROMPT)
        session.sendline("systemctl poweroff")
        session.expect(pexpect.EOF, timeout=300)
    except (pexpect.TIMEOUT, pexpect.EOF) as error:
        print(f"\n[login-check] FAILED: {type(error).__name__} waiting on the serial console")
        session.terminate(force=True)
        return 1
    session.close()
    ok = states == "0" and listed == "0" and int(packages) > 100
    print(f"\n[login-check] moss state list exit {states}; moss list installed: {packages} lines"
          f" (exit {listed}); {time.monotonic() - started:.0f} s in all;"
          f" {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

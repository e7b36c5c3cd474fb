#!/usr/bin/env bash
# Boots the VM test's image (tests/vm/build-image.sh) in QEMU with OVMF.
#
#   tests/vm/run-vm.sh scenario [OUT]     the whole scenario on a copy of the image, headless:
#                                         the guest driver reboots through its phases and powers
#                                         off; the host checks every step (exit 1 on a failure,
#                                         naming the step with the guest's log lines around it)
#   tests/vm/run-vm.sh interactive [OUT]  a copy of the image on this terminal's serial console
#                                         (log in as root, no password; Ctrl-a x quits)
#
# KVM when /dev/kvm works, TCG otherwise. The firmware's variables are a writable copy of
# OVMF_VARS, kept for the whole run, so that systemd-boot's one-shot entry survives a reboot.
# MOSS_VM_TIMEOUT (seconds, default 1500) bounds the scenario, MOSS_VM_BOOT_TIMEOUT (default 600)
# each of its boots.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repository="$(cd "$here/../.." && pwd)"
mode="${1:-scenario}"
out="$(cd "${2:-$repository/target/vm}" && pwd)"
timeout_seconds="${MOSS_VM_TIMEOUT:-1500}"
boot_timeout_seconds="${MOSS_VM_BOOT_TIMEOUT:-600}"
firmware=/usr/share/OVMF/OVMF_CODE_4M.fd
run="$out/run-$mode"
# One run at a time per output directory: a second one would delete the first one's disk.
exec 9> "$out/run.lock"
flock -n 9 || { echo "another run-vm.sh is using $out" >&2; exit 1; }
rm -rf "$run" && mkdir -p "$run"
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$run/vars.fd"
cp --sparse=always "$out/disk.img" "$run/disk.img"

# KVM when it works: /dev/kvm can exist and still fail (nested virtualisation without the MSRs
# QEMU sets, as on this project's build machine), so a firmware-less QEMU must survive 3 s on it.
accelerator=tcg
cpu=max
if [ -w /dev/kvm ]; then
    # (In a subshell with stderr closed: bash reports a QEMU that aborts.)
    probe="$( (timeout 3 qemu-system-x86_64 -accel kvm -cpu host -machine q35 -nodefaults \
        -display none -monitor none -serial none > /dev/null 2>&1; echo $?) 2> /dev/null)"
    if [ "$probe" = 124 ]; then
        accelerator=kvm
        cpu=host
    fi
fi
qemu=(qemu-system-x86_64 -machine q35 -accel "$accelerator" -cpu "$cpu" -smp 2 -m 1536
    -nic none -no-user-config -nodefaults
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$firmware"
    -drive "if=pflash,format=raw,unit=1,file=$run/vars.fd"
    -drive "if=none,id=disk,format=raw,file=$run/disk.img" -device nvme,drive=disk,serial=moss)

if [ "$mode" = interactive ]; then
    # An SMBIOS OEM string tells the guest driver to run no step and to let root log in without
    # a password.
    echo "booting with $accelerator; log in as root (no password) on this console; Ctrl-a x quits" >&2
    exec "${qemu[@]}" -nographic -serial mon:stdio -smbios type=11,value=moss-vm:interactive
fi

log="$run/serial.log"
: > "$log"
echo "booting with $accelerator (timeout ${timeout_seconds} s, ${boot_timeout_seconds} s a boot); serial console in $log" >&2
started=$SECONDS
deadline=$((SECONDS + timeout_seconds))
status=0
boots=0
again=0
# One QEMU process a boot (-no-reboot: the guest's reboot ends it; the disk and the firmware's
# variables carry over in their files). Under TCG, OVMF once hung on a reset with no output at
# all, stalling the whole run; a fresh process per boot has no reset, and each boot gets its own
# time limit. A boot that never reached the kernel is started again, at most twice.
while :; do
    boots=$((boots + 1))
    boot_log="$run/serial-$boots.log"
    limit=$((deadline - SECONDS))
    [ "$limit" -gt "$boot_timeout_seconds" ] && limit=$boot_timeout_seconds
    if [ "$limit" -le 0 ]; then
        status=124
        break
    fi
    boot_status=0
    timeout "$limit" "${qemu[@]}" -no-reboot -display none -serial "file:$boot_log" || boot_status=$?
    cat "$boot_log" >> "$log"
    grep -aq "MOSS-VM-DONE" "$boot_log" && break
    if [ "$boot_status" != 0 ]; then
        if ! grep -aq "Linux version" "$boot_log" && [ "$again" -lt 2 ]; then
            again=$((again + 1))
            echo "boot $boots hung before the kernel started (qemu $boot_status); booting again" >&2
            continue
        fi
        status=$boot_status
        break
    fi
    if [ "$boots" -ge 8 ]; then
        echo "the guest rebooted $boots times without finishing" >&2
        status=1
        break
    fi
done
elapsed=$((SECONDS - started))
echo "qemu exited with $status after $elapsed s ($accelerator, $boots boots, $again started again)" >&2
checked=0
python3 "$here/check-serial.py" "$log" "$status" "$elapsed" || checked=$?
# The disk copy is kept only for looking into a failure; the serial log always stays.
[ "$checked" = 0 ] && rm -f "$run/disk.img"
exit "$checked"

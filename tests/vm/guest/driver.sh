#!/bin/bash
# The VM test's driver inside the guest (moss-vm-driver.service, enabled by a preset). Each boot
# runs the steps of the current phase (/srv/moss-vm/phase, outside /etc and /var so that it
# survives a factory reset), prints one machine-readable line per step on the serial console:
#
#   MOSS-VM-STEP <name> PASS|FAIL <detail>
#
# and then reboots into the next phase or powers off. On a failure it prints the journal's last
# lines as `MOSS-VM-LOG ...` and goes on (later phases still tell something); the host names the
# first failed step and shows them.
set -u
export PATH=/usr/bin:/usr/sbin
state=/srv/moss-vm
console=/dev/console
phase="$(cat "$state/phase" 2>/dev/null || echo 1)"
failed=0

emit() { echo "$*" > "$console"; echo "$*"; }
# Each step line carries the seconds it took (since the previous step ended).
step_started=$SECONDS
took=0
stop_clock() { took=$((SECONDS - step_started)); step_started=$SECONDS; }
pass() { stop_clock; emit "MOSS-VM-STEP $1 PASS ${took}s ${*:2}"; }
fail() {
    stop_clock
    emit "MOSS-VM-STEP $1 FAIL ${took}s ${*:2}"
    failed=1
    journalctl -b --no-pager -n 80 -o short-monotonic 2>&1 | sed 's/^/MOSS-VM-LOG /' > "$console"
}
# check NAME DETAIL COMMAND...: PASS when the command succeeds.
check() {
    local name="$1" detail="$2"
    shift 2
    local output
    if output="$("$@" 2>&1)"; then
        pass "$name" "$detail"
    else
        fail "$name" "$detail: $(echo "$output" | tail -n 5 | tr '\n' '|')"
    fi
}
# No step may hang the run: every moss call is bounded.
moss() { timeout 300 /usr/bin/moss "$@"; }
as_user() { setpriv --reuid=tester --regid=tester --init-groups -- "$@"; }
state_id() { cat /usr/.stateID; }
# The state mossd calls active (`moss state active --format json`). Asked up to three times: the
# first call after a boot activates mossd, which can take longer than dbus-daemon's 25 s
# activation timeout on a loaded host under TCG (seen once after the offline rollback).
active_state() {
    local id
    for _ in 1 2 3; do
        id="$(moss state active --format json 2>/dev/null | sed -n 's/^ *"id": *\([0-9]*\),*$/\1/p')"
        [ -n "$id" ] && break
        sleep 5
    done
    echo "$id"
}
hello() { moss-vm-hello 2>&1; }
finish() {
    emit "MOSS-VM-PHASE $phase END failed=$failed"
    [ "$failed" = 1 ] && touch "$state/failed"
    if [ "$1" = poweroff ]; then
        emit "MOSS-VM-DONE failed=$([ -e "$state/failed" ] && echo 1 || echo 0)"
        systemctl poweroff
    else
        echo $((phase + 1)) > "$state/phase"
        sync
        systemctl reboot
    fi
    exit 0
}
# The entry systemd-boot booted (its LoaderEntrySelected variable: 4 attribute bytes, UTF-16).
# (Read with cat: efivarfs files do not seek.)
loader_entry() { cat /sys/firmware/efi/efivars/LoaderEntrySelected-* 2>/dev/null | tail -c +5 | tr -d '\0'; }
# The entry id of a state (moss names them ID-STATE-KERNEL.conf), from bootctl's view of the ESP.
entry_of() { bootctl list --no-pager 2>/dev/null | sed -n "s/^ *id: \([a-z]*-$1-.*\.conf\)$/\1/p" | head -n 1; }
wait_inactive() {
    for _ in $(seq 1 "$2"); do
        [ "$(systemctl show -P ActiveState "$1")" = inactive ] && return 0
        sleep 1
    done
    return 1
}

if grep -aqs moss-vm:interactive /sys/firmware/dmi/entries/11-*/raw; then
    # tests/vm/run-vm.sh interactive: no steps; root may log in on the serial console.
    sed -i 's/^root:[^:]*:/root::/' /etc/shadow
    emit "MOSS-VM-NOTE interactive: log in as root without a password; try moss state list"
    exit 0
fi
emit "MOSS-VM-PHASE $phase BEGIN state=$(state_id) boot=$(cat /proc/sys/kernel/random/boot_id)"
running="$(timeout 180 systemctl is-system-running --wait 2>&1)"
case "$running" in
    running) ;;
    *) emit "MOSS-VM-NOTE system is $running; failed units: $(systemctl --failed --plain --no-legend | tr '\n' '|')" ;;
esac
ls /efi > /dev/null 2>&1 # the ESP is an automount (systemd-gpt-auto-generator): mount it now
# What the firmware and the boot loader told this boot (bootctl needs LoaderInfo for set-oneshot).
emit "MOSS-VM-NOTE phase $phase: efivars $(findmnt -n -o FSTYPE /sys/firmware/efi/efivars || echo unmounted), $(ls /sys/firmware/efi/efivars 2>/dev/null | grep -c '^Loader') Loader variables, entry $(loader_entry), cmdline $(cat /proc/cmdline)"
step_started=$SECONDS

case "$phase" in
1)
    # 1. First boot from an empty /etc and /var: everything came from /usr.
    check first-boot "system $running, machine-id $(cat /etc/machine-id 2>/dev/null)" \
        test "$running" = running -a -s /etc/machine-id
    check sysusers "tester, messagebus and polkitd from /usr/lib/sysusers.d" \
        getent passwd tester messagebus polkitd
    check tmpfiles "/etc/pam.d/login from /usr/share/factory" test -s /etc/pam.d/login
    check presets "moss-vm-driver enabled by /usr/lib/systemd/system-preset" \
        test "$(systemctl is-enabled moss-vm-driver.service)" = enabled
    check units-verify "systemd-analyze verify of the shipped units" \
        systemd-analyze verify --man=no mossd.service moss-update.service moss-update.timer
    # 2. Bus activation through systemd, as an unprivileged user; idle exit.
    mkdir -p /etc/moss
    echo 'idle-exit-seconds 5' > /etc/moss/mossd.kdl
    listing="$(as_user moss list installed 2>&1)"
    if echo "$listing" | grep -q 'moss-vm-hello' && [ "$(systemctl show -P ActiveState mossd.service)" = active ]; then
        pass dbus-activation "$(echo "$listing" | wc -l) packages listed by uid $(id -u tester); mossd.service active (Type=$(systemctl show -P Type mossd.service))"
    else
        fail dbus-activation "$(echo "$listing" | tail -n 3 | tr '\n' '|') mossd $(systemctl show -P ActiveState mossd.service)"
    fi
    # The PackageKit facade on the same bus (software centres talk to it; pkcon is not in the
    # image, busctl reads its properties).
    backend="$(busctl get-property org.freedesktop.PackageKit /org/freedesktop/PackageKit org.freedesktop.PackageKit BackendName 2>&1)"
    check packagekit "org.freedesktop.PackageKit served by mossd: BackendName $backend" \
        test "$backend" = 's "moss"'
    check idle-exit "mossd.service inactive again after idle-exit-seconds 5" wait_inactive mossd.service 30
    # 3. Rebootless update: an old process keeps running, new binaries run at once.
    sleep 3600 &
    old_process=$!
    first="$(state_id)"
    # The image's database knows the repository from the host's path: read it where it is now.
    moss repo update
    moss install -y moss-vm-extra
    installed="$(state_id)"
    ln -sfn repo-2 "$state/repo"
    moss repo update && moss sync -y
    synced="$(state_id)"
    if [ "$first" != "$installed" ] && [ "$installed" != "$synced" ] && [ "$(hello)" = "hello 2" ] \
        && kill -0 "$old_process" && command -v moss-vm-extra > /dev/null; then
        pass rebootless-update "states $first -> $installed (install) -> $synced (sync to repo-2); $(hello); pid $old_process alive ($(readlink /proc/$old_process/exe))"
    else
        fail rebootless-update "states $first -> $installed -> $synced; $(hello); pid $old_process $(kill -0 "$old_process" 2>&1 && echo alive)"
    fi
    kill "$old_process"
    echo "$installed" > "$state/previous"
    echo "$synced" > "$state/newest"
    # 4. Boot entries on the real vfat ESP systemd mounted.
    esp="$(bootctl --print-esp-path 2>/dev/null)"
    entries="$(bootctl list --no-pager 2>&1)"
    default="$(sed -n 's/^default *//p' "$esp/loader/loader.conf" 2>/dev/null)"
    count="$(ls "$esp/loader/entries" 2>/dev/null | wc -l)"
    if [ -n "$esp" ] && findmnt -n -o FSTYPE "$esp" | grep -qx vfat && [ "$count" -ge 3 ] \
        && echo "$entries" | grep -q "moss.fstx=$synced" && [ "$default" = "$(entry_of "$synced")" ]; then
        pass boot-entries "$count entries on $esp (vfat); loader.conf default $default; bootctl lists moss.fstx=$first,$installed,$synced"
    else
        fail boot-entries "esp=$esp ($(bootctl --print-esp-path 2>&1 | tail -n 1); $(findmnt -n /efi | tr '\n' ' ')) count=$count default=$default $(echo "$entries" | grep -E 'id:|options:' | tr '\n' '|')"
    fi
    # 8. A crash: mossd killed with SIGKILL while its transaction is held after the blit.
    systemctl set-environment MOSS_PAUSE_AT=blitted:30000
    systemctl stop mossd.service
    before="$(state_id)"
    timeout 300 moss install -y moss-vm-crash > "$state/crash-client.log" 2>&1 &
    client=$!
    # The new tree appears in the staging directory during the blit; the transaction then waits
    # 30 s at the `blitted` point, where mossd is killed.
    for _ in $(seq 1 120); do
        [ -e /.moss/root/staging/usr/.stateID ] && break
        sleep 0.5
    done
    sleep 3
    killed="$(systemctl show -P MainPID mossd.service)"
    kill -9 "$killed"
    wait "$client"
    client_status=$?
    systemctl unset-environment MOSS_PAUSE_AT
    report="$(moss state list 2>&1)"
    if echo "$report" | grep -qi interrupt && moss state verify > /dev/null 2>&1 && [ "$(state_id)" = "$before" ]; then
        pass crash-recovery "mossd pid $killed SIGKILLed mid-transaction; the client exited $client_status: $(tail -n 1 "$state/crash-client.log"); next call: $(echo "$report" | grep -i interrupt | head -n 1); state verify clean; state $(state_id)"
    else
        fail crash-recovery "killed $killed; client exit $client_status: $(tail -n 1 "$state/crash-client.log"); $(echo "$report" | head -n 3 | tr '\n' '|') verify: $(moss state verify 2>&1 | tail -n 2 | tr '\n' '|')"
    fi
    # 9. polkit: an unprivileged user's install is refused and nothing changes.
    before="$(state_id)"
    refusal="$(as_user moss install -y moss-vm-crash 2>&1)"
    code=$?
    if [ "$code" = 77 ] && [ "$(state_id)" = "$before" ]; then
        pass polkit-refusal "exit $code: $(echo "$refusal" | tail -n 1)"
    else
        fail polkit-refusal "exit $code: $(echo "$refusal" | tail -n 2 | tr '\n' '|')"
    fi
    # 5. Offline rollback, armed: the next boot takes the previous state's entry once.
    target="$(entry_of "$installed")"
    check rollback-arm "bootctl set-oneshot $target" bootctl set-oneshot "$target"
    finish reboot
    ;;
2)
    previous="$(cat "$state/previous")"
    # The rolled-back tree is whole: its kernel loads modules (efivarfs, vfat for the ESP).
    modules="/usr/lib/modules/$(uname -r)/modules.dep.bin"
    active="$(active_state)"
    if [ "$active" = "$previous" ] \
        && [ "$(state_id)" = "$previous" ] && [ "$running" = running ] && [ "$(hello)" = "hello 1" ] \
        && [ -s "$modules" ] && findmnt -n /sys/firmware/efi/efivars > /dev/null; then
        pass rollback "booted the entry of state $previous ($(loader_entry)): initrd activated it; moss state active: $active; $(hello); system $running; module index and efivarfs present"
    else
        fail rollback "wanted $previous, /usr/.stateID $(state_id), moss state active: $active ($(moss state active 2>&1 | head -n 1)); $(hello); system $running; $(ls -d "$modules" 2>&1); efivarfs $(findmnt -n -o FSTYPE /sys/firmware/efi/efivars || echo unmounted)"
    fi
    newest="$(cat "$state/newest")"
    check rollforward-arm "bootctl set-oneshot to state $newest" bootctl set-oneshot "$(entry_of "$newest")"
    finish reboot
    ;;
3)
    newest="$(cat "$state/newest")"
    check rollforward "booted $(loader_entry): state $(state_id) active again, $(hello)" \
        test "$(state_id)" = "$newest" -a "$(hello)" = "hello 2" -a "$(loader_entry)" = "$(entry_of "$newest")"
    # 6. Factory reset: the initrd empties /etc and /var on the next boot.
    cat /etc/machine-id > "$state/machine-id"
    touch /.moss-factory-reset
    finish reboot
    ;;
4)
    states="$(moss state list 2>&1)"
    known="$(echo "$states" | grep -c '^State #')"
    if [ "$running" = running ] && [ "$(cat /etc/machine-id)" != "$(cat "$state/machine-id")" ] \
        && [ "$known" -ge 3 ] && [ "$(state_id)" = "$(cat "$state/newest")" ]; then
        pass factory-reset "new machine-id $(cat /etc/machine-id); system running; moss still knows $known states, active $(state_id)"
    else
        fail factory-reset "system $running; $(echo "$states" | head -n 3 | tr '\n' '|')"
    fi
    # 7. Background updates by moss-update.service, policy download then apply. The timer that
    # starts it was enabled by moss's preset on the first boot and again after the reset.
    timer="$(systemctl is-enabled moss-update.timer 2>&1) $(systemctl is-active moss-update.timer 2>&1)"
    if [ "$timer" = "enabled active" ]; then
        pass update-timer "moss-update.timer $timer by 90-moss.preset, next $(systemctl show -P NextElapseUSecMonotonic moss-update.timer) after boot"
    else
        fail update-timer "moss-update.timer: $timer"
    fi
    ln -sfn repo-3 "$state/repo"
    mkdir -p /etc/moss
    before="$(state_id)"
    echo 'update-policy "download"' > /etc/moss/mossd.kdl
    systemctl stop mossd.service
    systemctl start moss-update.service
    pending="$(busctl get-property com.serpentos.Moss1 /com/serpentos/Moss1 com.serpentos.Moss1 PendingUpdates 2>&1)"
    if [ "$(state_id)" = "$before" ] && [ "${pending##* }" -ge 1 ] 2>/dev/null; then
        pass update-download "PendingUpdates: $pending; state $(state_id) unchanged"
    else
        fail update-download "PendingUpdates: $pending; state $before -> $(state_id); $(systemctl status moss-update.service --no-pager 2>&1 | tail -n 3 | tr '\n' '|')"
    fi
    echo 'update-policy "apply"' > /etc/moss/mossd.kdl
    systemctl stop mossd.service
    systemctl start moss-update.service
    if [ "$(state_id)" != "$before" ] && [ "$(hello)" = "hello 3" ]; then
        pass update-apply "state $before -> $(state_id); $(hello)"
    else
        fail update-apply "state $before -> $(state_id); $(hello); $(systemctl status moss-update.service --no-pager 2>&1 | tail -n 3 | tr '\n' '|')"
    fi
    finish poweroff
    ;;
*)
    emit "MOSS-VM-NOTE no phase $phase: interactive use"
    ;;
esac

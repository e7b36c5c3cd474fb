#!/usr/bin/env bash
# Figures for the daemon's trust boundary, measured in one run on a private bus (as root):
# how long 600 PlanInstall calls naming a FIFO take, how long mossd then takes to answer a query,
# and how fast pipes, /dev/zero and an oversized sparse file passed as descriptors are refused.
#   scripts/hostile-timings.sh [target/debug|target/release]
set -euo pipefail
project=$(cd "$(dirname "$0")/.." && pwd)
binaries=${1:-$project/target/debug}
eval "$("$project/scripts/private-bus.sh" start)"
work=$(mktemp -d /tmp/moss-hostile.XXXXXX)
trap '[ -n "${mossd:-}" ] && kill "$mossd" 2>/dev/null; "$project/scripts/private-bus.sh" stop "$MOSS_BUS_DIR"; rm -rf "$work"' EXIT
mkdir "$work/root"
"$binaries/mossd" --root "$work/root" --idle-exit 0 --no-packagekit 2>"$work/mossd.log" &
mossd=$!
for _ in $(seq 200); do busctl --system status com.serpentos.Moss1 >/dev/null 2>&1 && break; sleep 0.05; done
call() { busctl --system call com.serpentos.Moss1 /com/serpentos/Moss1 com.serpentos.Moss1 "$@"; }
now() { date +%s.%N; }
mkfifo "$work/x.stone"
start=$(now)
for _ in $(seq 600); do call PlanInstall asah 1 "$work/x.stone" 0 >/dev/null 2>&1 || true; done
end=$(now)
awk -v start="$start" -v end="$end" 'BEGIN { printf "600 PlanInstall calls naming a FIFO: %.1f s (%.1f ms each)\n", end - start, (end - start) * 1000 / 600 }'
start=$(now); call ListInstalled b false >/dev/null; end=$(now)
awk -v start="$start" -v end="$end" 'BEGIN { printf "ListInstalled right after: %.1f ms\n", (end - start) * 1000 }'
truncate -s 3G "$work/big.stone"
/usr/bin/python3 - "$work/big.stone" <<'EOF'
import dbus, os, sys, time
manager = dbus.Interface(dbus.SystemBus().get_object('com.serpentos.Moss1', '/com/serpentos/Moss1'), 'com.serpentos.Moss1')
def timed(name, descriptor):
    start = time.monotonic()
    try:
        manager.Install([], [dbus.types.UnixFd(descriptor)], {})
        answer = 'accepted'
    except dbus.exceptions.DBusException as error:
        answer = error.get_dbus_name().rsplit('.', 1)[-1]
    print(f"Install with {name}: {answer} in {(time.monotonic() - start) * 1000:.1f} ms")
read_end, _ = os.pipe()
timed('a pipe that never ends', read_end)
timed('/dev/zero', os.open('/dev/zero', os.O_RDONLY))
timed('a 3 GiB sparse file', os.open(sys.argv[1], os.O_RDONLY))
EOF

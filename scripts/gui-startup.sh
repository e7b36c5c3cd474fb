#!/usr/bin/env bash
# Start-up benchmark of moss-gui: wall time from exec to the first frame drawn (and the window's
# own figure, from main() on), over RUNS runs, on a headless Xvfb display, against mossd on a
# throwaway root (the example packages installed) on a private system bus. Needs root, Xvfb.
#   scripts/gui-startup.sh [RUNS]            # debug build
#   PROFILE=release scripts/gui-startup.sh   # release build
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
profile=${PROFILE:-debug}
flag=()
[ "$profile" = release ] && flag=(--release)
cargo build --quiet "${flag[@]}" -p moss-gui -p mossd -p moss-client
bin=$PWD/target/$profile
work=$(mktemp -d)
eval "$(scripts/private-bus.sh start)"
exec 3< <(Xvfb -displayfd 1 -screen 0 1280x800x24 -nolisten tcp -noreset 2>/dev/null & echo "pid $!")
read -r _ xvfb_pid <&3
read -r display <&3
cleanup() {
    kill "$mossd_pid" "$xvfb_pid" 2>/dev/null || true
    scripts/private-bus.sh stop "$MOSS_BUS_DIR"
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/repo" "$work/root"
cp examples/stones/*.stone "$work/repo/"
"$bin/moss" index "$work/repo" >/dev/null 2>&1
"$bin/mossd" --root "$work/root" --idle-exit 0 2>"$work/mossd.log" &
mossd_pid=$!
for _ in $(seq 100); do busctl --system status com.serpentos.Moss1 >/dev/null 2>&1 && break; sleep 0.1; done
"$bin/moss" repo add examples "file://$work/repo/stone.index" --unsigned >/dev/null 2>&1
"$bin/moss" install -y bash-completion italian-pizza >/dev/null 2>&1
DISPLAY=":$display" GDK_BACKEND=x11 GSK_RENDERER=cairo /usr/bin/python3 - "$bin/moss-gui" "$runs" <<'PY'
import os, statistics, subprocess, sys, time
gui, runs = sys.argv[1], int(sys.argv[2])
walls, inside = [], []
for _ in range(runs):
    started = time.monotonic()
    process = subprocess.Popen([gui], env=dict(os.environ, MOSS_GUI_REPORT_STARTUP="1", GTK_A11Y="none"),
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "first frame after" in line:
            walls.append((time.monotonic() - started) * 1000)
            inside.append(float(line.split("after")[1].split("ms")[0]))
            break
    process.terminate()
    process.wait()
for name, values in (("exec to first frame", walls), ("main() to first frame", inside)):
    values.sort()
    print(f"{name}: n={len(values)} median={statistics.median(values):.0f} ms "
          f"min={values[0]:.0f} ms max={values[-1]:.0f} ms")
PY

#!/usr/bin/env bash
# Start or stop a private D-Bus that behaves like the system bus (the system bus's default
# policy plus the project's dbus/system.d policy), for the demo and for trying mossd by hand.
#   eval "$(scripts/private-bus.sh start)"     # exports DBUS_SYSTEM_BUS_ADDRESS and MOSS_BUS_DIR
#   scripts/private-bus.sh stop "$MOSS_BUS_DIR"
set -euo pipefail
project=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-start}" in
stop)
    directory=${2:?usage: private-bus.sh stop DIR}
    [ -f "$directory/dbus.pid" ] && kill "$(cat "$directory/dbus.pid")" 2>/dev/null || true
    rm -rf "$directory"
    ;;
start)
    command -v dbus-daemon >/dev/null || { echo "private-bus: dbus-daemon is missing (apt-get install dbus-daemon)" >&2; exit 1; }
    directory=$(mktemp -d /tmp/moss-bus.XXXXXX)
    chmod 755 "$directory"
    mkdir "$directory/system.d"
    cp "$project"/dbus/system.d/*.conf "$directory/system.d/"
    sed -e "s|@SOCKET@|$directory/system_bus_socket|" -e "s|@POLICY@|$directory/system.d|" \
        "$project/dbus/private-bus.conf.in" > "$directory/bus.conf"
    dbus-daemon --config-file="$directory/bus.conf" --nofork --nosyslog >"$directory/dbus.log" 2>&1 &
    echo $! > "$directory/dbus.pid"
    for _ in $(seq 100); do [ -S "$directory/system_bus_socket" ] && break; sleep 0.05; done
    [ -S "$directory/system_bus_socket" ] || { echo "private-bus: dbus-daemon did not start" >&2; cat "$directory/dbus.log" >&2; exit 1; }
    echo "export DBUS_SYSTEM_BUS_ADDRESS='unix:path=$directory/system_bus_socket' MOSS_BUS_DIR='$directory'"
    ;;
*)
    echo "usage: private-bus.sh start | stop DIR" >&2
    exit 2
    ;;
esac

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
    cat > "$directory/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$directory/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include ignore_missing="yes">/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>
  <includedir>$directory/system.d</includedir>
</busconfig>
XML
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

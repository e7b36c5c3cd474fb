#!/bin/busybox sh
# /init of the VM test's initrd (built by tests/vm/build-image.sh): busybox, moss and blkid with
# their libraries. It does what moss-fstx.service does in a systemd initrd: mount the root named
# by root=PARTUUID=..., run `moss -D /sysroot fstx` so that the boot entry's moss.fstx=ID state
# is the one that boots, then hand over to the root's systemd.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "moss-initrd: $*" > /dev/console; }
fail() {
    say "FAILED: $*"
    say "dropping to a shell (the VM test fails on this line)"
    exec sh < /dev/console > /dev/console 2>&1
}

root=""
for argument in $(cat /proc/cmdline); do
    case "$argument" in
        root=PARTUUID=*) root="${argument#root=PARTUUID=}" ;;
    esac
done
[ -n "$root" ] || fail "no root=PARTUUID= on the kernel command line"

# The disk (NVMe, built into the kernel) appears asynchronously.
device=""
for attempt in $(seq 1 100); do
    device="$(blkid -t PARTUUID="$root" -o device 2>/dev/null | head -n 1)"
    [ -n "$device" ] && break
    sleep 0.1
done
[ -n "$device" ] || fail "no partition with PARTUUID $root"
say "root is $device"

mkdir -p /sysroot
mount -t ext4 -o rw "$device" /sysroot || fail "cannot mount $device"

# Factory reset: the booted system asks for it with /.moss-factory-reset; /etc and /var start
# empty and systemd rebuilds them from /usr (tmpfiles, sysusers, presets, machine-id).
if [ -e /sysroot/.moss-factory-reset ]; then
    say "factory reset: emptying /etc and /var"
    rm -rf /sysroot/etc /sysroot/var
    mkdir -p /sysroot/etc /sysroot/var
    rm -f /sysroot/.moss-factory-reset
fi

say "running moss -D /sysroot fstx"
moss -D /sysroot fstx --cmdline /proc/cmdline > /dev/console 2>&1 || fail "moss fstx"
say "active state $(cat /sysroot/usr/.stateID)"

umount /proc /sys
mount --move /dev /sysroot/dev
exec switch_root /sysroot /usr/lib/systemd/systemd

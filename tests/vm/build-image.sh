#!/usr/bin/env bash
# Builds the VM test's bootable disk image from real binaries with the project's own tools:
#
#   1. host tools (apt), the moss, mossd and boulder binaries (cargo)
#   2. Debian 12 packages (tests/vm/packages.txt and their closure) with `apt-get download`
#   3. the project's files (moss, mossd, units, D-Bus and polkit files) and the test's own
#      packages as .deb files, then every .deb into a stone by `boulder import-deb`
#   4. three signed repository revisions (`moss index --sign`): repo-2 and repo-3 carry newer
#      versions of moss-vm-hello, for the rebootless and the background update
#   5. `moss -D ROOT repo add` + `moss -D ROOT install` of the whole set, then /etc and /var
#      emptied: the first boot builds them from /usr
#   6. an initrd (busybox, moss, blkid) packaged as a stone beside the kernel, installed as well
#   7. `moss -D ROOT boot sync --esp DIR`, a vfat ESP filled with mtools, an ext4 root by
#      `mkfs.ext4 -d ROOT`, both joined into a GPT image
#
# Usage: tests/vm/build-image.sh [OUT]   (default OUT: target/vm; kept between runs as a cache)
# Run as root on Debian 12. Prints the time of each phase and the sizes (also in OUT/figures.txt).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repository="$(cd "$here/../.." && pwd)"
out="$(mkdir -p "${1:-$repository/target/vm}" && cd "${1:-$repository/target/vm}" && pwd)"
figures="$out/figures.txt"
: > "$figures"
phase_start=$SECONDS
phase() {
    local now=$SECONDS
    if [ -n "${current_phase:-}" ]; then
        echo "phase $current_phase: $((now - phase_start)) s" | tee -a "$figures"
    fi
    current_phase="$1"
    phase_start=$now
    echo "== $1" >&2
}

# Fixed identities, so that boot entries (root=PARTUUID=...) are known before the disk exists.
disk_guid=6d6f7373-0000-4000-8000-000000000001
esp_guid=6d6f7373-0000-4000-8000-0000000000e5
root_guid=6d6f7373-0000-4000-8000-0000000000f0
esp_mib=256

phase host-tools
"$here/install-host-tools.sh"

phase cargo
(cd "$repository" && cargo build --quiet -p moss-client -p mossd -p boulder --bins)
bin="$repository/target/debug"
moss="$bin/moss"
boulder="$bin/boulder"

phase download
mkdir -p "$out/debs"
grep -v '^#' "$here/exclude.txt" > "$out/exclude.list"
# shellcheck disable=SC2046
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $(grep -v '^#' "$here/packages.txt") \
    | grep -v '^ ' | grep -v '^<' | sort -u | grep -vxF -f "$out/exclude.list" > "$out/closure.list"
(cd "$out/debs" && apt-get download -q $(cat "$out/closure.list") 2>&1 | grep -v '^W: Download is performed unsandboxed' | tail -n 1) || true
# Keep one file per package (the newest), in case an older run left another version.
debs=()
while read -r name; do
    file="$(ls -t "$out/debs/${name}"_*.deb | head -n 1)"
    debs+=("$file")
done < "$out/closure.list"
kernel_version="$(dpkg-deb -c "$out"/debs/linux-image-[0-9]*.deb | sed -n 's|.*/boot/vmlinuz-||p' | head -n 1)"
echo "$(wc -l < "$out/closure.list") Debian packages, kernel $kernel_version" | tee -a "$figures"

phase project-packages
# The project's files and the test's own, packed as .deb files (dpkg-deb -b) so that they become
# stones the same way as Debian's.
own="$out/own"
rm -rf "$own" && mkdir -p "$own/debs"
make_deb() { # NAME VERSION DIR
    mkdir -p "$3/DEBIAN"
    printf 'Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: moss VM test\nDescription: %s\n' \
        "$1" "$2" "$1 (built by tests/vm/build-image.sh)" > "$3/DEBIAN/control"
    dpkg-deb --root-owner-group -Zgzip -b "$3" "$own/debs/$1_$2.deb" > /dev/null
}
# put FILE [MODE]: standard input into FILE, its directories made (mode 0644 unless named).
put() { install -D -m "${2:-0644}" /dev/stdin "$1"; }
tree="$own/moss"
install -D -m 0755 "$moss" "$tree/usr/bin/moss"
install -D -m 0755 "$bin/mossd" "$tree/usr/libexec/mossd"
strip --strip-debug "$tree/usr/bin/moss" "$tree/usr/libexec/mossd"
# Man pages and shell completions, generated from the same clap definitions as --help.
"$moss" generate man "$tree/usr/share/man/man1"
"$bin/mossd" --generate-man "$tree/usr/share/man/man1"
"$moss" generate completions bash | put "$tree/usr/share/bash-completion/completions/moss"
"$moss" generate completions zsh | put "$tree/usr/share/zsh/site-functions/_moss"
"$moss" generate completions fish | put "$tree/usr/share/fish/vendor_completions.d/moss.fish"
for unit in mossd.service moss-update.service moss-update.timer moss-fstx.service \
    moss-offline-update.service; do
    install -D -m 0644 "$repository/systemd/$unit" "$tree/usr/lib/systemd/system/$unit"
done
install -D -m 0644 "$repository/systemd/90-moss.preset" \
    "$tree/usr/lib/systemd/system-preset/90-moss.preset"
for policy in com.serpentos.Moss1.conf org.freedesktop.PackageKit.moss.conf; do
    install -D -m 0644 "$repository/dbus/system.d/$policy" "$tree/usr/share/dbus-1/system.d/$policy"
done
install -D -m 0644 "$repository/dbus/system-services/com.serpentos.Moss1.service" \
    "$tree/usr/share/dbus-1/system-services/com.serpentos.Moss1.service"
install -D -m 0644 "$repository/dbus/polkit/com.serpentos.moss.policy" \
    "$tree/usr/share/polkit-1/actions/com.serpentos.moss.policy"
make_deb moss 0.1.0 "$tree"

# The signing key of the test's repositories; its public half goes into the vendor repo file.
if [ ! -s "$out/key.sec" ]; then
    rm -f "$out/key.pub"
    minisign -G -W -p "$out/key.pub" -s "$out/key.sec" > /dev/null
fi
public_key="$(tail -n 1 "$out/key.pub")"

tree="$own/moss-vm-system"
put "$tree/usr/share/moss/repo.d/vm.kdl" <<EOF
// The VM test's signed repository; /srv/moss-vm/repo links to the current revision.
vm {
    description "the VM test's repository"
    uri "file:///srv/moss-vm/repo/stone.index"
    priority 0
    keys "$public_key"
}
EOF
install -D -m 0644 "$repository/examples/triggers/tx.d/kmod.yaml" "$tree/usr/share/moss/triggers/tx.d/kmod.yaml"
for trigger in "$repository"/examples/triggers/sys.d/*.yaml; do
    install -D -m 0644 "$trigger" "$tree/usr/share/moss/triggers/sys.d/$(basename "$trigger")"
done
echo "console=ttyS0,115200 systemd.show_status=false systemd.firstboot=off" \
    | put "$tree/usr/lib/kernel/cmdline.d/10-console.cmdline"
# The guest has no network: nothing should wait for it (moss-update.service wants
# network-online.target, and systemd-networkd-wait-online waits 2 minutes for a link that never
# comes). networkd enables wait-online with it (Also=), so networkd stays off too.
printf '%s\n' 'enable moss-vm-driver.service' 'disable systemd-networkd.service' \
    'disable systemd-networkd.socket' 'disable systemd-networkd-wait-online.service' \
    | put "$tree/usr/lib/systemd/system-preset/10-moss-vm.preset"
# Bus activation waits up to 2 minutes (dbus-daemon's default is 25 s): under TCG the debug
# build of mossd has been seen taking 23 s to start on a loaded host.
put "$tree/usr/share/dbus-1/system.d/moss-vm-timeouts.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <limit name="service_start_timeout">120000</limit>
</busconfig>
EOF
echo 'u tester 1000 "moss VM test user" /home/tester /bin/bash' | put "$tree/usr/lib/sysusers.d/moss-vm.conf"
install -D -m 0644 "$here/guest/moss-vm-driver.service" "$tree/usr/lib/systemd/system/moss-vm-driver.service"
install -D -m 0755 "$here/guest/driver.sh" "$tree/usr/lib/moss-vm/driver.sh"
# Debian generates /etc/pam.d/common-* in libpam-runtime's maintainer script (pam-auth-update),
# which moss does not run: the system package ships them (as /etc content, so they become
# /usr/share/factory files with tmpfiles lines like any other).
mkdir -p "$tree/etc/pam.d"
echo "auth required pam_unix.so nullok" > "$tree/etc/pam.d/common-auth"
echo "account required pam_unix.so" > "$tree/etc/pam.d/common-account"
echo "password required pam_unix.so obscure yescrypt" > "$tree/etc/pam.d/common-password"
printf 'session required pam_unix.so\nsession optional pam_systemd.so\n' > "$tree/etc/pam.d/common-session"
echo "session required pam_unix.so" > "$tree/etc/pam.d/common-session-noninteractive"
make_deb moss-vm-system 1 "$tree"

for revision in 1 2 3; do
    tree="$own/hello-$revision"
    printf '#!/bin/sh\necho "hello %s"\n' "$revision" | put "$tree/usr/bin/moss-vm-hello" 0755
    make_deb moss-vm-hello "$revision" "$tree"
done
for name in moss-vm-extra moss-vm-crash; do
    tree="$own/$name"
    printf '#!/bin/sh\necho "%s"\n' "$name" | put "$tree/usr/bin/$name" 0755
    make_deb "$name" 1 "$tree"
done

phase initrd
# busybox, moss and blkid with their libraries (the guest's glibc is the host's: both Debian 12).
initrd="$out/initrd"
rm -rf "$initrd" && mkdir -p "$initrd"/{bin,usr/bin,lib64,proc,sys,dev,sysroot,tmp,run}
cp /bin/busybox "$initrd/bin/busybox"
install -m 0755 "$here/initrd-init.sh" "$initrd/init"
for program in "$own/moss/usr/bin/moss" /sbin/blkid; do
    cp "$program" "$initrd/usr/bin/"
    for library in $(ldd "$program" | grep -o '/[^ ]*'); do
        mkdir -p "$initrd$(dirname "$library")"
        cp -L "$library" "$initrd$library"
    done
done
tree="$own/moss-vm-initrd"
mkdir -p "$tree/usr/lib/kernel/$kernel_version"
(cd "$initrd" && find . | sort | cpio --quiet -o -H newc --reproducible) \
    | zstd -q -10 > "$tree/usr/lib/kernel/$kernel_version/50-moss-vm.initrd"
echo "initrd: $(du -h "$tree/usr/lib/kernel/$kernel_version/50-moss-vm.initrd" | cut -f1)" | tee -a "$figures"
make_deb moss-vm-initrd 1 "$tree"

phase convert
stones="$out/stones"
rm -rf "$stones" && mkdir -p "$stones"
"$boulder" import-deb --output "$stones" --work-dir "$out/work" "${debs[@]}" "$own"/debs/*.deb \
    2> "$out/import.log" || { cat "$out/import.log" >&2; exit 1; }
tail -n 1 "$out/import.log"
rm -rf "$out/work" # the unpacked packages: the stones hold their files now
grep -c 'dropped dependencies' "$out/import.log" | sed 's/^/packages with dropped dependencies: /' || true
echo "stones: $(ls "$stones"/*.stone | wc -l), $(du -sh "$stones" | cut -f1)" | tee -a "$figures"

phase repositories
# repo-1: everything but the newer hello; repo-2 and repo-3: the same with hello 2 and hello 3.
for revision in 1 2 3; do
    repo="$out/repo-$revision"
    rm -rf "$repo" && mkdir -p "$repo"
    for stone in "$stones"/*.stone; do
        case "$(basename "$stone")" in
            moss-vm-hello-*) ;;
            *) ln "$stone" "$repo/" ;;
        esac
    done
    ln "$stones"/moss-vm-hello-"$revision"-*.stone "$repo/"
    "$moss" index "$repo" --sign "$out/key.sec" > /dev/null
done
echo "repository: $(ls "$out/repo-1"/*.stone | wc -l) stones, $(du -sh "$out/repo-1" | cut -f1)" | tee -a "$figures"

phase install
root="$out/root"
rm -rf "$root" && mkdir -p "$root"
"$moss" -D "$root" repo add vm "file://$out/repo-1/stone.index" --key "$public_key" > /dev/null
names="$("$moss" -D "$root" list available --format json | python3 -c '
import json, sys
print(" ".join(sorted(p["name"] for p in json.load(sys.stdin) if p["name"] not in ("moss-vm-extra", "moss-vm-crash"))))')"
"$moss" -D "$root" install -y $names > "$out/install.log" 2>&1 || { tail -n 30 "$out/install.log" >&2; exit 1; }
# The repository moves to its place inside the image, where the vendor file (vm.kdl) finds it.
# (The admin definition the host used goes with /etc below.)
mkdir -p "$root/srv/moss-vm"
for revision in 1 2 3; do cp -al "$out/repo-$revision" "$root/srv/moss-vm/"; done
ln -sfn repo-1 "$root/srv/moss-vm/repo"
echo 1 > "$root/srv/moss-vm/phase"
echo "installed state $(cat "$root/usr/.stateID"); /usr: $(du -sh "$root/usr" | cut -f1)" | tee -a "$figures"

phase boot-sync
esp="$out/esp"
rm -rf "$esp" && mkdir -p "$esp"
mkdir -p "$root/etc/moss"
echo "root: \"root=PARTUUID=$root_guid\"" > "$root/etc/moss/boot.yaml"
"$moss" -D "$root" boot sync --esp "$esp" | tee -a "$figures"
# The first boot starts from an empty /etc and /var: systemd and tmpfiles build them from /usr.
rm -rf "$root/etc" "$root/var"
mkdir -p "$root"/{etc,var,efi,dev,proc,sys,run,tmp,home,root}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

phase image
image="$out/disk.img"
root_mib=$(( $(du -sm "$root" | cut -f1) * 13 / 10 + 256 ))
rm -f "$out/esp.img" "$out/root.img" "$image"
truncate -s "${esp_mib}M" "$out/esp.img"
mkfs.vfat -F 32 -n ESP "$out/esp.img" > /dev/null
(cd "$esp" && mcopy -s -i "$out/esp.img" ./* ::/)
truncate -s "${root_mib}M" "$out/root.img"
mkfs.ext4 -q -F -L moss-root -d "$root" "$out/root.img"
total_mib=$((1 + esp_mib + root_mib + 1))
truncate -s "${total_mib}M" "$image"
sgdisk --disk-guid="$disk_guid" \
    -n "1:2048:+${esp_mib}M" -t 1:ef00 -u "1:$esp_guid" -c 1:ESP \
    -n "2:0:+${root_mib}M" -t 2:8304 -u "2:$root_guid" -c 2:root "$image" > /dev/null
dd if="$out/esp.img" of="$image" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$out/root.img" of="$image" bs=1M seek=$((1 + esp_mib)) conv=notrunc,sparse status=none
rm -f "$out/esp.img" "$out/root.img"
echo "image: $(du -h --apparent-size "$image" | cut -f1) ($(du -h "$image" | cut -f1) allocated)" | tee -a "$figures"
phase done

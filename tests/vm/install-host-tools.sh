#!/usr/bin/env bash
# What the VM test needs on the host (Debian 12, as root): QEMU with OVMF, the file system and
# partitioning tools the image is built with, busybox for the initrd, minisign for the keys,
# pexpect for logging in on the serial console (login-check.py).
set -euo pipefail
packages=(qemu-system-x86 ovmf e2fsprogs dosfstools mtools gdisk busybox-static cpio zstd
    minisign binutils util-linux python3 python3-pexpect)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" > /dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi

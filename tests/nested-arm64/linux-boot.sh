#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The linux-boot suite: examples/minivmm, cross-built for aarch64, boots
# Debian's 6.12 arm64 kernel with a busybox initramfs (2 vCPUs, 512 MiB) on
# the real KVM/arm64 driver, inside qemu-system-aarch64 with EL2 (the
# nested-arm64 setup, lib.sh).  It passes only if the guest's /init reports
# userspace with both CPUs online and minivmm then exits 0.
#
# usage: linux-boot.sh SRCDIR BUILDDIR
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
. "$src/tests/nested-arm64/lib.sh"
cpus=2
mem=512

fail() {
	echo "linux-boot: FAIL: $*"
	echo "linux-boot: console log: $log"
	exit 1
}
bail() { # lib.sh's bail, in plain words for an exitcode test
	echo "linux-boot: cannot run: $*"
	exit 1
}

prepare examples/minivmm
[ -x "$cross/examples/minivmm" ] || bail "minivmm was not built for aarch64 (libfdt missing?)"

# The guest: busybox and its /init.
groot=$work/guest-root
new_root "$groot"
cp "$src/tests/nested-arm64/guest-init" "$groot/init"
pack "$groot" "$work/guest.cpio" gzip

# The host: the kernel Image (reused as the guest kernel), minivmm, the guest initramfs.
root=$work/boot-root
new_root "$root"
cp "$src/tests/nested-arm64/boot-init" "$root/init"
cp "$image" "$root/Image"
cp "$work/guest.cpio" "$root/guest.cpio"
add_program "$root" "$cross/examples/minivmm"
pack "$root" "$work/boot-initrd.cpio"
prepared

log=$work/linux-boot.log
boot "$work/boot-initrd.cpio" "$log" 2G "mv_cpus=$cpus mv_mem=$mem"
echo "linux-boot: qemu-system-aarch64 ran $boot_ms ms (rc $boot_rc); minivmm's output:"
sed -n 's/^@MV //p' "$log"

marker=$(grep '^@MV .*libvcpu-linux-boot: userspace reached' "$log" | head -1) ||
	fail "the guest never reported userspace"
grep -q '^@KVM .*kvm \[[0-9]*\]: .*mode initialized' "$log" || fail "KVM did not initialise"
[[ $marker == *"cpus online 0-1 ($cpus)"* ]] || fail "not both CPUs online: $marker"
rc=$(sed -n 's/^@MVRC //p' "$log")
[ "$rc" = 0 ] || fail "minivmm exited ${rc:-(no status)}, not 0"
# minivmm --timestamps: "[+   6.123] libvcpu-linux-boot: ..." since minivmm started.
t=$(sed -n 's/^@MV \[+ *\([0-9.]*\)\] libvcpu-linux-boot: userspace.*/\1/p' "$log" | head -1)
echo "time-to-userspace: ${t:-?} s"
echo "linux-boot: PASS"

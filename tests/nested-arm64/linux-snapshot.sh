#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The linux-snapshot suite: examples/minivmm, cross-built for aarch64, boots
# Debian's 6.12 arm64 kernel with a busybox initramfs (2 vCPUs, 512 MiB) on
# the real KVM/arm64 driver inside qemu-system-aarch64 with EL2 (the
# nested-arm64 setup, lib.sh), saves the guest mid-boot (--save-at, before
# the kernel reaches userspace) and exits; a second minivmm process restores
# the file (--restore) and the guest carries on to userspace with both CPUs
# online, then powers off, and minivmm exits 0.  Prints the snapshot's size
# and the save and restore times.
#
# usage: linux-snapshot.sh SRCDIR BUILDDIR
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
. "$src/tests/nested-arm64/lib.sh"
# Linux reaches userspace ~6 s after minivmm starts there (linux-boot): at
# 3.5 s the kernel is booting, and has begun to print.
save_at=3.5

fail() {
	echo "linux-snapshot: FAIL: $*"
	echo "linux-snapshot: console log: $log"
	exit 1
}
bail() { # lib.sh's bail, in plain words for an exitcode test
	echo "linux-snapshot: cannot run: $*"
	exit 1
}

prepare examples/minivmm
[ -x "$cross/examples/minivmm" ] || bail "minivmm was not built for aarch64 (libfdt missing?)"

groot=$work/guest-root
new_root "$groot"
cp "$src/tests/nested-arm64/guest-init" "$groot/init"
pack "$groot" "$work/guest.cpio" gzip

root=$work/snapshot-root
new_root "$root"
cp "$src/tests/nested-arm64/snapshot-init" "$root/init"
cp "$image" "$root/Image"
cp "$work/guest.cpio" "$root/"
add_program "$root" "$cross/examples/minivmm"
pack "$root" "$work/snapshot-initrd.cpio"
prepared

log=$work/linux-snapshot.log
boot "$work/snapshot-initrd.cpio" "$log" 2G "mv_timeout=240 mv_save_at=$save_at"
if [ "$boot_lockup" = 1 ]; then
	echo "linux-snapshot: the emulated machine's own kernel locked up (TCG): booting it again"
	cp "$log" "$log.lockup"
	boot "$work/snapshot-initrd.cpio" "$log" 2G "mv_timeout=240 mv_save_at=$save_at"
fi
echo "linux-snapshot: qemu-system-aarch64 ran $boot_ms ms (rc $boot_rc); minivmm's output:"
grep -q '^@KVM .*kvm \[[0-9]*\]: .*mode initialized' "$log" || fail "KVM did not initialise"
snapshot_check linux-snapshot "$log" "$save_at"

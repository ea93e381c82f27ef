#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The linux-snapshot suite's x86_64 half: examples/minivmm boots Debian 12's
# x86_64 cloud kernel with a busybox initramfs (2 vCPUs, 512 MiB) on the
# real KVM driver for AMD SVM (kvm_amd) inside qemu-system-x86_64 (the
# nested-x86 setup, lib.sh), saves the guest mid-boot (--save-at, before
# userspace) and exits; a second minivmm process restores the file
# (--restore) and the guest carries on to userspace with both CPUs online,
# then powers off, and minivmm exits 0.  Prints the snapshot's size and the
# save and restore times.
#
# usage: linux-snapshot.sh SRCDIR BUILDDIR
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
. "$src/tests/nested-x86/lib.sh"
boot_limit=120
# Linux reaches userspace ~3.3 s after minivmm starts there (linux-boot-x86).
save_at=1.5

log=$work/linux-snapshot.log
fail() {
	echo "linux-snapshot-x86: FAIL: $*"
	echo "linux-snapshot-x86: console log: $log"
	exit 1
}
bail() {
	echo "linux-snapshot-x86: cannot run: $*"
	exit 1
}

prepare
[ -x "$build/examples/minivmm" ] || bail "minivmm was not built (libfdt missing? -Dexamples=false?)"

groot=$work/guest-root
new_root "$groot"
rm -rf "${groot:?}/mods" "${groot:?}/lib64" "${groot:?}/lib"
cp "$src/tests/nested-x86/guest-init" "$groot/init"
pack "$groot" "$work/guest.cpio" gzip

root=$work/snapshot-root
new_root "$root"
cp "$src/tests/nested-x86/snapshot-init" "$root/init"
cp "$bzimage" "$root/bzImage"
cp "$work/guest.cpio" "$root/"
add_program "$root" "$build/examples/minivmm"
pack "$root" "$work/snapshot-initrd.cpio"
prepared

boot "$work/snapshot-initrd.cpio" "$log" 2G "mv_timeout=$boot_limit mv_save_at=$save_at" 900 \
	$((boot_limit + 60))
echo "linux-snapshot-x86: qemu-system-x86_64 ran $boot_ms ms (rc $boot_rc); console log: $log"
fatal=$(sed -n 's/^@FATAL //p' "$log")
[ -z "$fatal" ] || bail "$fatal"
snapshot_check linux-snapshot-x86 "$log" "$save_at"

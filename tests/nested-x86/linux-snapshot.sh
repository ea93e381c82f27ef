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
out() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MV //p" "$log"; }
rc() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MVRC //p" "$log"; }
echo "--- save"
out save
echo "--- restore"
out restore

out save | grep -q 'libvcpu-linux-boot: userspace reached' &&
	fail "the guest reached userspace before the save at $save_at s: save earlier"
saved=$(out save | grep '^minivmm: saved ' | head -1) || fail "minivmm did not save the guest"
[ "$(rc save)" = 0 ] || fail "the saving minivmm exited $(rc save), not 0"
restored=$(out restore | grep '^minivmm: restored ' | head -1) ||
	fail "the new minivmm did not restore the snapshot"
marker=$(out restore | grep 'libvcpu-linux-boot: userspace reached' | head -1) ||
	fail "the restored guest never reported userspace"
[[ $marker == *"cpus online 0-1 (2)"* ]] || fail "not both CPUs online after the restore: $marker"
[ "$(rc restore)" = 0 ] || fail "the restoring minivmm exited $(rc restore), not 0"

last=$(out save | grep -v '^minivmm:' | tail -1 || true)
echo "saved during the boot, after the console line: ${last:-(none yet)}"
snap=$(sed -n 's/^@SNAP //p' "$log")
t=$(out restore | sed -n 's/^\[+ *\([0-9.]*\)\] libvcpu-linux-boot: userspace.*/\1/p' | head -1)
echo "snapshot: ${snap%% *} KiB on disk, ${snap##* } bytes long; $saved"
echo "restore: $restored; userspace ${t:-?} s after the restoring minivmm started"
echo "linux-snapshot-x86: PASS"

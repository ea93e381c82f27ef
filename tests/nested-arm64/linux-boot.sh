#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The linux-boot suite: examples/minivmm, cross-built for aarch64, boots
# Debian's 6.12 arm64 kernel with a busybox initramfs (2 vCPUs, 512 MiB) on
# the real KVM/arm64 driver, inside qemu-system-aarch64 with EL2 (the
# nested-arm64 setup, lib.sh).  It passes only if the guest's /init reports
# userspace with both CPUs online and minivmm then exits 0, and if a second
# boot, with an initramfs of junk, makes the kernel panic ("VFS: Unable to
# mount root fs") and minivmm exit 4 saying that the guest panicked.
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
printf 'libvcpu: this is not a cpio archive\n%.0s' $(seq 2000) >"$work/junk.cpio"

# The host: the kernel Image (reused as the guest kernel), minivmm, the guest initramfs.
root=$work/boot-root
new_root "$root"
cp "$src/tests/nested-arm64/boot-init" "$root/init"
cp "$image" "$root/Image"
cp "$work/guest.cpio" "$work/junk.cpio" "$root/"
add_program "$root" "$cross/examples/minivmm"
# The boots (boot-init): NAME CPUS MEM INITRD GUEST-COMMAND-LINE.
cmdline="console=ttyAMA0 quiet"
cat >"$root/boots" <<EOB
poweroff $cpus $mem guest.cpio $cmdline
panic 1 $mem junk.cpio $cmdline
EOB
pack "$root" "$work/boot-initrd.cpio"
prepared

log=$work/linux-boot.log
boot "$work/boot-initrd.cpio" "$log" 2G "mv_timeout=240"
if [ "$boot_lockup" = 1 ]; then
	# The outer machine's kernel locked up under TCG (see lib.sh): once more.
	echo "linux-boot: the emulated machine's own kernel locked up (TCG): booting it again"
	cp "$log" "$log.lockup"
	boot "$work/boot-initrd.cpio" "$log" 2G "mv_timeout=240"
fi
echo "linux-boot: qemu-system-aarch64 ran $boot_ms ms (rc $boot_rc); minivmm's output:"
# out NAME: minivmm's output in boot NAME; rc NAME: its exit status.
out() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MV //p" "$log"; }
rc() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MVRC //p" "$log"; }
out poweroff
echo "linux-boot: the panic boot:"
out panic

grep -q '^@KVM .*kvm \[[0-9]*\]: .*mode initialized' "$log" || fail "KVM did not initialise"
marker=$(out poweroff | grep 'libvcpu-linux-boot: userspace reached' | head -1) ||
	fail "the guest never reported userspace"
[[ $marker == *"cpus online 0-1 ($cpus)"* ]] || fail "not both CPUs online: $marker"
rc=$(rc poweroff)
[ "$rc" = 0 ] || fail "minivmm exited ${rc:-(no status)}, not 0"
# minivmm --timestamps: "[+   6.123] libvcpu-linux-boot: ..." since minivmm started.
t=$(out poweroff | sed -n 's/^\[+ *\([0-9.]*\)\] libvcpu-linux-boot: userspace.*/\1/p' | head -1)
echo "time-to-userspace: ${t:-?} s"

out panic | grep -q 'Kernel panic.*VFS: Unable to mount root fs' ||
	fail "panic boot: the guest kernel did not panic on the junk initramfs"
rc=$(rc panic)
[ "$rc" = 4 ] || fail "panic boot: minivmm exited ${rc:-(no status)}, not 4 (crash)"
out panic | grep -qi '^minivmm:.*panic' || fail "panic boot: minivmm did not say that the guest panicked"
echo "linux-boot: PASS"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The nested-arm64 suite: libvcpu's real-kvm cases against the real Linux
# KVM/arm64 driver, on a machine without arm64 virtualization hardware.
#
# qemu-system-aarch64 emulates an arm64 machine with EL2 (virtualization=on),
# Debian's 6.12 arm64 kernel boots in it with KVM built in, and the cross-built
# test_real_kvm runs against that kernel's /dev/kvm from an initramfs.  The
# suite's TAP output comes back over the serial console and is printed here,
# so `meson test` (protocol tap) lists every case.
#
# usage: run.sh SRCDIR BUILDDIR vhe|nvhe
#        (environment: RK_ONLY=<glob> runs only the matching cases)
#
# Downloads and the aarch64 build are cached in BUILDDIR/nested-arm64 (see
# lib.sh).  Anything that cannot be obtained is a "Bail out!" naming what is
# missing: never a pass.
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
mode=$3
. "$src/tests/nested-arm64/lib.sh"

case $mode in
vhe) kvm_mode= ;;
nvhe) kvm_mode=kvm-arm.mode=nvhe ;;
*) bail "unknown mode '$mode' (vhe or nvhe)" ;;
esac

prepare tests/test_real_kvm
root=$work/rootfs-$mode
new_root "$root"
cp "$src/tests/nested-arm64/init" "$root/init"
chmod +x "$root/init"
add_program "$root" "$cross/tests/test_real_kvm"
pack "$root" "$work/initrd-$mode.gz" gzip
prepared

log=$work/boot-$mode.log
boot "$work/initrd-$mode.gz" "$log" 1G "$kvm_mode ${RK_ONLY:+rk_only=$RK_ONLY}"

echo "# $mode: $kpkg under qemu-system-aarch64, $boot_ms ms wall (qemu rc $boot_rc)"
sed -n 's/^@KVM /# /p' "$log"
# "kvm [1]: VHE mode initialized successfully" / "kvm [1]: Hyp nVHE mode ...".
if [ "$mode" = nvhe ]; then want='Hyp nVHE mode initialized'; else want='VHE mode initialized'; fi
grep -q "^@KVM .*kvm \[[0-9]*\]: $want" "$log" ||
	bail "KVM did not report '$want' (see $log)"
grep -q '^@TAP ' "$log" || bail "the guest printed no test output (qemu rc $boot_rc; see $log)"
# cmocka's own diagnostics are not TAP: pass them on as comments.  cmocka
# writes a skip as "not ok N # SKIP"; TAP's form is "ok N # SKIP".
sed -n 's/^@TAP //p' "$log" |
	sed -E -e '/^(ok|not ok|1\.\.|#|Bail out!)/!s/^/# /' -e 's/^not ok ([0-9]+ # SKIP)/ok \1/'
grep -q '^@RC 0$' "$log" || echo "# test_real_kvm failed inside the guest ($(sed -n 's/^@RC //p' "$log"))"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The linux-boot-x86 suite: examples/minivmm, built natively, boots Debian
# 12's x86_64 cloud kernel with a busybox initramfs on the real KVM driver
# for AMD SVM (kvm_amd), inside qemu-system-x86_64 with software emulation
# (the nested-x86 setup, lib.sh).  Three boots in one emulated machine:
#   poweroff  2 vCPUs: the guest's /init must report userspace with both
#             CPUs online, then `poweroff -f` must end minivmm with status
#             0 ("powered off") within 5 s
#   reboot    the guest's `reboot -f` must end minivmm with status 3
#   panic     an initramfs of junk: the kernel panics ("VFS: Unable to
#             mount root fs") and minivmm must exit 4 saying so
# It passes only if all three do.
#
# usage: linux-boot.sh SRCDIR BUILDDIR
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
. "$src/tests/nested-x86/lib.sh"
cpus=2
mem=512
boot_limit=120 # seconds per minivmm run inside the machine (they take 10-30 s)
# The guest's command line (minivmm puts the panic and reboot options that
# tell a panic from a reboot before it).
cmdline="console=ttyS0 quiet"

log=$work/linux-boot.log
failed=0
fail() {
	echo "linux-boot-x86: FAIL: $*"
	failed=1
}
bail() { # lib.sh's bail, in plain words for an exitcode test
	echo "linux-boot-x86: cannot run: $*"
	exit 1
}

prepare
[ -x "$build/examples/minivmm" ] || bail "minivmm was not built (libfdt missing? -Dexamples=false?)"

# The guest: busybox and its /init; and an "initramfs" that is no archive.
groot=$work/guest-root
new_root "$groot"
# The guest needs no modules and no libraries.
rm -rf "${groot:?}/mods" "${groot:?}/lib64" "${groot:?}/lib"
cp "$src/tests/nested-x86/guest-init" "$groot/init"
pack "$groot" "$work/guest.cpio" gzip
printf 'libvcpu: this is not a cpio archive\n%.0s' $(seq 2000) >"$work/junk.cpio"

# The host: the bzImage (also the guest's kernel), minivmm, the guest initramfs.
root=$work/boot-root
new_root "$root"
cp "$src/tests/nested-x86/boot-init" "$root/init"
cp "$bzimage" "$root/bzImage"
cp "$work/guest.cpio" "$work/junk.cpio" "$root/"
add_program "$root" "$build/examples/minivmm"
cat >"$root/boots" <<EOB
poweroff $cpus $mem guest.cpio $cmdline
reboot $cpus $mem guest.cpio $cmdline lvb_action=reboot
panic 1 $mem junk.cpio $cmdline
EOB
pack "$root" "$work/boot-initrd.cpio"
prepared

boot "$work/boot-initrd.cpio" "$log" 2G "mv_timeout=$boot_limit" 900 $((boot_limit + 60))
echo "linux-boot-x86: qemu-system-x86_64 ran $boot_ms ms (rc $boot_rc); console log: $log"
fatal=$(sed -n 's/^@FATAL //p' "$log")
[ -z "$fatal" ] || bail "$fatal"
grep -q '^@KVM .*SVM: kvm: Nested Paging enabled' "$log" ||
	bail "kvm_amd did not report 'Nested Paging enabled'"

# out NAME: minivmm's output in boot NAME; rc NAME: its exit status.
out() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MV //p" "$log"; }
rc() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MVRC //p" "$log"; }
# stamp TEXT: minivmm's --timestamps time of the guest's line with TEXT.
stamp() { sed -n "s/^\[+ *\([0-9.]*\)\] .*$1.*/\1/p" | head -1; }

for b in poweroff reboot panic; do
	echo "---- boot '$b': minivmm's output"
	out "$b"
	if ! grep -qx "@BOOT $b" "$log"; then
		fail "$b: never started (the machine stopped${boot_stalled:+: no output for $boot_stalled s})"
		continue
	fi
	[ -n "$(rc "$b")" ] || fail "$b: minivmm did not finish (the machine stopped${boot_stalled:+: no output for $boot_stalled s})"
done
echo "----"

# poweroff: both CPUs online, status 0, "powered off" soon after the guest's poweroff.
o=$(out poweroff)
marker=$(grep 'libvcpu-linux-boot: userspace reached' <<<"$o" | head -1) ||
	fail "poweroff: the guest never reported userspace"
online=0
[ "$cpus" = 1 ] || online=0-$((cpus - 1))
[[ ${marker:-} == *"cpus online $online ($cpus)"* ]] ||
	fail "poweroff: not $cpus CPUs online: ${marker:-(no marker)}"
r=$(rc poweroff)
[ "$r" = 0 ] || fail "poweroff: minivmm exited ${r:-(no status)}, not 0"
t=$(stamp 'libvcpu-linux-boot: userspace reached' <<<"$o")
echo "time-to-userspace: ${t:-?} s ($cpus vCPUs, $mem MiB)"
t_off=$(stamp 'libvcpu-linux-boot: poweroff' <<<"$o")
t_end=$(sed -n 's/^minivmm: .*powered off after \([0-9.]*\) s.*/\1/p' <<<"$o")
if [ -z "$t_end" ]; then
	fail "poweroff: minivmm did not say 'powered off after N s'"
elif [ -z "$t_off" ]; then
	fail "poweroff: the guest never announced its poweroff"
else
	d=$(awk -v a="$t_off" -v b="$t_end" 'BEGIN { printf "%.3f", b - a }')
	echo "poweroff-to-exit: $d s"
	awk -v d="$d" 'BEGIN { exit !(d <= 5) }' || fail "poweroff: minivmm ended $d s after the guest's poweroff (> 5 s)"
fi

# reboot: userspace reached, then status 3.
o=$(out reboot)
grep -q 'libvcpu-linux-boot: reboot' <<<"$o" || fail "reboot: the guest never reached its reboot"
r=$(rc reboot)
[ "$r" = 3 ] || fail "reboot: minivmm exited ${r:-(no status)}, not 3 (reset)"

# panic: the kernel's panic, then status 4 and minivmm's word for it.
o=$(out panic)
grep -q 'Kernel panic.*VFS: Unable to mount root fs' <<<"$o" ||
	fail "panic: the guest kernel did not panic on the junk initramfs"
r=$(rc panic)
[ "$r" = 4 ] || fail "panic: minivmm exited ${r:-(no status)}, not 4 (crash)"
grep -qi '^minivmm:.*panic' <<<"$o" || fail "panic: minivmm did not say that the guest panicked"

[ "$failed" = 0 ] || exit 1
echo "linux-boot-x86: PASS"

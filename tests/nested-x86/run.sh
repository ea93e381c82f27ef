#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The nested-x86 suite: libvcpu's real-kvm cases against the real Linux KVM
# driver for AMD SVM (kvm_amd, nested paging), on a machine without usable
# x86 virtualization hardware.
#
# qemu-system-x86_64 with software emulation (TCG) emulates an x86_64
# machine with SVM and NPT, Debian 12's cloud kernel boots in it and loads
# kvm.ko and kvm-amd.ko, and the native test_real_kvm runs against that
# kernel's /dev/kvm from an initramfs, one case per process (init).  The
# cases are those of main() in tests/test_real_kvm.c; each is reported to
# meson as a TAP line.  A case that overruns its timeout inside the machine
# fails ("not ok"); one that stops the whole machine (no progress for
# `stall` seconds) ends the run with "Bail out! case NAME hung".
#
# usage: run.sh SRCDIR BUILDDIR
#        (environment: RK_ONLY=<glob> runs only the matching cases;
#        NESTED_X86_CASE_TIMEOUT, NESTED_X86_STALL: the limits below)
#
# Downloads are cached in BUILDDIR/nested-x86 (see lib.sh).  Anything that
# cannot be obtained is a "Bail out!" naming what is missing: never a pass.
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
. "$src/tests/nested-x86/lib.sh"

# Seconds per case inside the machine (they take well under one), seconds
# without progress before the watchdog stops QEMU, and the whole boot's.
case_limit=${NESTED_X86_CASE_TIMEOUT:-60}
stall=${NESTED_X86_STALL:-120}
limit=600

# The cases, in the order main() lists them.
cases=()
for c in $(sed -n 's/^[[:space:]]*RK_TEST(\([A-Za-z0-9_]*\)),.*/\1/p' "$src/tests/test_real_kvm.c"); do
	# shellcheck disable=SC2053 # RK_ONLY is a glob
	[[ -z ${RK_ONLY:-} || $c == ${RK_ONLY} ]] && cases+=("$c")
done
[ ${#cases[@]} -gt 0 ] || bail "no RK_TEST cases found in tests/test_real_kvm.c${RK_ONLY:+ matching $RK_ONLY}"

prepare
root=$work/rootfs
new_root "$root"
cp "$src/tests/nested-x86/init" "$root/init"
chmod +x "$root/init"
printf '%s\n' "${cases[@]}" >"$root/cases"
add_program "$root" "$build/tests/test_real_kvm"
pack "$root" "$work/initrd.gz" gzip
prepared

log=$work/boot.log
boot "$work/initrd.gz" "$log" 1G "rk_timeout=$case_limit" "$limit" "$stall"

echo "# $kpkg under qemu-system-x86_64 -accel tcg, $boot_ms ms wall (qemu rc $boot_rc)"
sed -n 's/^@KVM /# /p' "$log"
fatal=$(sed -n 's/^@FATAL //p' "$log")
[ -z "$fatal" ] || bail "$fatal (see $log)"
grep -q '^@KVM .*SVM: kvm: Nested Paging enabled' "$log" ||
	bail "kvm_amd did not report 'Nested Paging enabled' (qemu rc $boot_rc; see $log)"

echo "1..${#cases[@]}"
i=0
for c in "${cases[@]}"; do
	i=$((i + 1))
	crc=$(sed -n "s/^@CRC $c //p" "$log")
	if [ -z "$crc" ]; then
		if grep -qx "@CASE $c" "$log"; then
			echo "not ok $i - $c # hung: no result, the machine stopped making progress"
			why="no output for ${boot_stalled:-?} s"
			[ -z "$boot_timed_out" ] || why="the run's $limit s ran out"
			bail "case $c hung ($why; watchdog stopped QEMU; see $log)"
		fi
		bail "case $c never started (qemu rc $boot_rc${boot_stalled:+, stalled ${boot_stalled} s}; see $log)"
	fi
	# The case's own output: between its @CASE and @CRC lines.
	out=$(sed -n "/^@CASE $c\$/,/^@CRC $c /s/^@TAP //p" "$log")
	# cmocka's lines other than results are passed on as comments.
	grep -Ev '^(ok|not ok|1\.\.|# ok - real-kvm$)' <<<"$out" | sed 's/^/# /' || true
	if [ "$crc" = 124 ] || [ "$crc" = 143 ]; then
		echo "not ok $i - $c # timed out after $case_limit s (exit $crc)"
	elif [ "$crc" = 0 ] && grep -Eq "^(not )?ok 1 # SKIP" <<<"$out"; then
		# cmocka writes a skip as "not ok N # SKIP"; TAP's form is "ok N # SKIP".
		echo "ok $i - $c # SKIP"
	elif [ "$crc" = 0 ] && grep -qx "ok 1 - $c" <<<"$out"; then
		echo "ok $i - $c"
	elif ! grep -q '^1\.\.1$' <<<"$out"; then
		echo "not ok $i - $c # not in the test program (exit $crc)"
	else
		echo "not ok $i - $c # exit $crc"
	fi
done
grep -q '^@DONE' "$log" || echo "# the machine did not finish the list (qemu rc $boot_rc)"
sed -n 's/^@DONE /# done: /p' "$log"

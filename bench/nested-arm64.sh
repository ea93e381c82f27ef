#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The exit-latency and setup benchmarks on the real KVM/arm64 driver, on a
# machine without arm64 virtualization: Debian's arm64 kernel with KVM runs
# in qemu-system-aarch64 (EL2, TCG), the cross-built bench_vcpu runs in its
# initramfs, the figures come back over the serial console (@BENCH lines).
# The harness is tests/nested-arm64's (lib.sh: downloads, aarch64 build,
# boot).  Emulated hardware: absolute times are QEMU's, and a shared host
# makes them noisy; lib/raw is what to read (same guest, same process,
# interleaved rounds).
#
# usage: nested-arm64.sh SRCDIR BUILDDIR [vhe|nvhe]
#   environment: BENCH_ROUNDS (default 9), BENCH_EXITS (default 5000),
#                BENCH_ITERS (setup iterations, default 50)
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
mode=${3:-vhe}
. "$src/tests/nested-arm64/lib.sh"

case $mode in
vhe) kvm_mode= ;;
nvhe) kvm_mode=kvm-arm.mode=nvhe ;;
*) bail "unknown mode '$mode' (vhe or nvhe)" ;;
esac
rounds=${BENCH_ROUNDS:-9}
exits=${BENCH_EXITS:-5000}
iters=${BENCH_ITERS:-50}

prepare bench/bench_vcpu
root=$work/bench-rootfs-$mode
new_root "$root"
cp "$src/bench/nested-init" "$root/init"
chmod +x "$root/init"
add_program "$root" "$cross/bench/bench_vcpu"
pack "$root" "$work/bench-initrd-$mode.gz" gzip
prepared

log=$work/bench-boot-$mode.log
boot "$work/bench-initrd-$mode.gz" "$log" 1G \
	"$kvm_mode bench_rounds=$rounds bench_exits=$exits bench_iters=$iters"

echo "# $mode: $kpkg under qemu-system-aarch64 -cpu max -smp 2 (TCG), $boot_ms ms wall (qemu rc $boot_rc)"
echo "# host: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
sed -n 's/^@KVM /# /p' "$log"
grep -q '^@BENCH ' "$log" || bail "the guest printed no benchmark output (see $log)"
sed -n 's/^@BENCH //p' "$log"
grep -q '^@RC 0$' "$log" || bail "bench_vcpu failed inside the guest ($(sed -n 's/^@RC //p' "$log"); see $log)"

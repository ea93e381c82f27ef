#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Every check libvcpu has, in one command (the README's test command, and
# what .ci/run runs):
#   1. install missing Debian packages (tests/install-deps.sh)
#   2. gcc build (build-ci): all suites: mock, real-kvm (SKIP without
#      /dev/kvm), nested-arm64 (the real KVM/arm64 driver under QEMU, VHE
#      and nVHE), linux-boot (minivmm boots Linux there), nested-x86 and
#      linux-boot-x86 (the same on x86_64 KVM's kvm_amd under QEMU), demo, install (exported symbols and their versions, the ABI
#      against abi/, pkg-config for both libraries, headers, install layout,
#      man pages),
#      faults, the backends' suites; then the bench suite's benchmarks
#      (BENCHMARKS.md): the bench-seam parts everywhere, the /dev/kvm parts
#      where there is one (else SKIP)
#   3. clang + ASan/UBSan build (build-asan): mock, faults, gunyah,
#      geniezone, acrn, real-kvm, demo
#   4. valgrind memcheck on the gcc build: mock, faults, the backends, state
#   5. clang + TSan build (build-tsan): mock and the backends (kicks,
#      parallel vCPUs, ACRN's serving thread)
#   6. clang + libFuzzer build (build-fuzz): each fuzz target for
#      FUZZ_SECONDS (default 20) from its seed corpus
#   7. arm64 cross build (build-arm64) under qemu-aarch64: mock, demo, exports
#
# Environment: SKIP_DEPS=1 skips step 1; SKIP_ASAN, SKIP_VALGRIND, SKIP_TSAN,
# SKIP_FUZZ, SKIP_ARM64 (=1) skip the others.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s\n' "$*"; }
start=$SECONDS

# (Re)configure a build directory; extra arguments are meson options.
setup() {
	local dir=$1
	shift
	# Warnings are errors here, in CI, never in a user's default build.
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" -Dwerror=true "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" -Dwerror=true "$@"
	fi
}

# meson test, verbose so cmocka's "[  PASSED  ] N test(s)." lines show.
run_tests() {
	local dir=$1
	shift
	meson test -C "$dir" -v --print-errorlogs "$@"
}

if [ "${SKIP_DEPS:-0}" != 1 ]; then
	step "dependencies"
	tests/install-deps.sh all
fi

step "gcc: build-ci (all suites)"
setup build-ci -Dtests=enabled
ninja -C build-ci
# The ABI check must not skip here: this is the build abi/ was made from.
ABI_CHECK_REQUIRED=1 run_tests build-ci
# Benchmarks report figures, never fail on speed; they fail on wrong work.
run_tests build-ci --benchmark --suite bench

if [ "${SKIP_ASAN:-0}" != 1 ]; then
	step "clang + ASan/UBSan: build-asan (mock, faults, backends, real-kvm, demo, state)"
	CC=clang setup build-asan -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all
	ninja -C build-asan
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run_tests build-asan --suite mock --suite faults --suite gunyah --suite geniezone \
			--suite acrn --suite real-kvm --suite demo --suite state
fi

if [ "${SKIP_VALGRIND:-0}" != 1 ]; then
	step "valgrind memcheck: build-ci (mock, faults, backends, state)"
	run_tests build-ci --suite mock --suite faults --suite gunyah --suite geniezone \
		--suite acrn --suite state --timeout-multiplier 4 \
		--wrap='valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite'
fi

if [ "${SKIP_TSAN:-0}" != 1 ]; then
	step "clang + TSan: build-tsan (mock, backends: kicks, parallel vCPUs)"
	CC=clang setup build-tsan -Dtests=enabled -Dexamples=false -Db_sanitize=thread -Db_lundef=false
	ninja -C build-tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_tests build-tsan --suite mock \
		--suite gunyah --suite geniezone --suite acrn
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
	step "clang + libFuzzer: build-fuzz (each target ${FUZZ_SECONDS:-20} s)"
	CC=clang setup build-fuzz -Dtests=disabled -Dexamples=false -Dfuzz=true \
		-Dfuzz_seconds="${FUZZ_SECONDS:-20}" -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=all'
	ninja -C build-fuzz
	run_tests build-fuzz --suite fuzz
fi

if [ "${SKIP_ARM64:-0}" != 1 ]; then
	step "arm64 cross: build-arm64 under qemu-aarch64 (mock, demo, exports, state)"
	setup build-arm64 --cross-file cross/aarch64-linux-gnu.ini -Dtests=enabled
	ninja -C build-arm64
	run_tests build-arm64 --suite mock --suite demo --suite install --suite state
fi

step "all checks passed in $((SECONDS - start)) s"

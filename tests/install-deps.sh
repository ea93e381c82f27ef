#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Install the Debian packages libvcpu's build and tests need, only those
# missing (no apt call at all when everything is there).  Uses sudo when not
# root.  Debian 12 (bookworm) package names.
#
# usage: tests/install-deps.sh [demo|nested|nested-x86|rust|all]     (default: all)
#   demo  compiler, meson, ninja: enough to build and run examples/demo
#   nested  + the arm64 cross toolchain, libcmocka-dev:arm64, qemu-system-arm,
#         qemu-user (the cross file's exe_wrapper) and cpio
#         (tests/nested-arm64/run.sh)
#   nested-x86  + cmocka, libfdt, qemu-system-x86 and cpio
#         (tests/nested-x86/run.sh)
#   all   + cmocka, libfdt, clang with sanitizers and libFuzzer, g++ (header
#         check), groff (man page lint), qemu-user, valgrind (memcheck, the
#         dispatch-cost benchmark), abigail-tools (the ABI check), and
#         everything of nested and nested-x86
set -euo pipefail
what=${1:-all}

pkgs=(gcc libc6-dev meson ninja-build pkg-config)
# nested: what tests/nested-arm64/run.sh needs besides its downloads.
# libfdt1:arm64, not libfdt-dev:arm64: that one conflicts with the native
# libfdt-dev, whose header serves both builds.
nested=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu
	libcmocka-dev:arm64 libfdt-dev libfdt1:arm64 qemu-system-arm qemu-user cpio)
# nested-x86: what tests/nested-x86/run.sh and linux-boot.sh need besides
# their downloads (the native test programs and minivmm, QEMU).
nested_x86=(libcmocka-dev libfdt-dev qemu-system-x86 cpio)
# rust: the Rust VMM of examples/rust (suite rust).
rust=(rustc bindgen)
if [ "$what" = all ]; then
	pkgs+=(g++ binutils libcmocka-dev libfdt-dev clang libclang-rt-dev groff-base qemu-user
		valgrind abigail-tools "${nested[@]}" "${nested_x86[@]}" "${rust[@]}")
elif [ "$what" = rust ]; then
	pkgs+=("${rust[@]}")
elif [ "$what" = nested ]; then
	pkgs+=("${nested[@]}")
elif [ "$what" = nested-x86 ]; then
	pkgs+=("${nested_x86[@]}")
elif [ "$what" != demo ]; then
	echo "usage: $0 [demo|nested|nested-x86|rust|all]" >&2
	exit 2
fi

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

native=$(dpkg --print-architecture)
# "pkg" means the native (or an arch: all) package, "pkg:arm64" the foreign one.
installed() {
	local have
	have=$(dpkg-query -W -f='${Package}:${Architecture} ${db:Status-Status}\n' "${1%%:*}" 2>/dev/null) || return 1
	case $1 in
	*:*) grep -Fxq "$1 installed" <<<"$have" ;;
	*) grep -Fxq "$1:$native installed" <<<"$have" || grep -Fxq "$1:all installed" <<<"$have" ;;
	esac
}

need_arm64=0
if [ "$what" != demo ] && [ "$what" != nested-x86 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
	need_arm64=1
fi

missing=()
for p in "${pkgs[@]}"; do
	installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ "$need_arm64" -eq 0 ]; then
	echo "install-deps: all ${#pkgs[@]} packages present"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$need_arm64" -eq 1 ]; then
	as_root dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

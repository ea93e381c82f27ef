#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Suite rust: the Rust VMM of examples/rust (bindgen bindings of the public
# headers, a safe wrapper, rustc) builds against this build's libraries and
# runs the tour's guest on the mock and as is (on a usable x86_64
# /dev/kvm, else the mock again); each run must print the guest's "Hi".
# SKIP (77) without rustc or bindgen.
#
# usage: rust.sh SOURCE_ROOT BUILDDIR [SANITIZE]
set -euo pipefail
root=$1 builddir=$2 san=${3:-none}
status=0
exe=$("$root/examples/rust/build.sh" "$root/include" "$builddir/lib" "$builddir/rust") ||
	status=$?
[ "$status" -eq 0 ] || exit "$status"
export LD_LIBRARY_PATH=$builddir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# A library built with AddressSanitizer (b_sanitize) wants its runtime
# loaded first; a program not built with it gets it the way such programs
# do, preloaded: the libasan the library itself depends on.
case $san in
*address*)
	asan=$(ldd "$builddir/lib/libvcpu.so.1" | awk '/libasan/ { print $3; exit }')
	[ -z "$asan" ] || export LD_PRELOAD=$asan
	;;
esac
. "$root/tests/expect-hi.sh"
expect_hi rustvmm "$exe" "$builddir/rust/stderr"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Install the build into a staging tree (meson install --destdir) and build an
# out-of-tree program against it the way a user would, with nothing but
# `pkg-config --cflags --libs libvcpu`:
#  - the program includes every installed header and must compile with
#    -std=c11 -Wall -Wextra -Wpedantic -Werror (and as C++11 and C++17 with
#    -Wpedantic when c++ exists);
#  - it links the shared library (NEEDED libvcpu.so.0) and, with
#    `pkg-config --static`, libvcpu.a, and both binaries run: they open and
#    close the mock KVM driver.
#
# usage: pkgconfig-check.sh BUILDDIR MESON CC...
set -euo pipefail
builddir=$(cd "$1" && pwd)
meson=$2
shift 2
cc=("$@")
[ ${#cc[@]} -gt 0 ] || cc=(cc)

work=$builddir/pkgconfig-check
staging=$work/staging
rm -rf "$work"
mkdir -p "$work"

"$meson" install -C "$builddir" --destdir "$staging" --no-rebuild --quiet

pc=$(find "$staging" -name libvcpu.pc -print -quit)
[ -n "$pc" ] || { echo "FAIL: no libvcpu.pc installed"; exit 1; }
echo "installed: ${pc#"$staging"}"
hdrdir=$(find "$staging" -type d -path '*/include/vcpu' -print -quit)
[ -n "$hdrdir" ] || { echo "FAIL: no include/vcpu installed"; exit 1; }

PKG_CONFIG_SYSROOT_DIR=$staging
PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
pkg-config --validate libvcpu
cflags=$(pkg-config --cflags libvcpu)
libs=$(pkg-config --libs libvcpu)
static_libs=$(pkg-config --static --libs libvcpu)
libdir=$(pkg-config --variable=libdir libvcpu)
libdir=$staging${libdir#"$staging"}
echo "pkg-config --cflags --libs libvcpu: $cflags $libs"
echo "pkg-config --static --libs libvcpu: $static_libs"
pkg-config --print-variables libvcpu >/dev/null

# Every installed header, included as a user would.
{
	echo '// SPDX-License-Identifier: MIT'
	for h in "$hdrdir"/*.h; do echo "#include <vcpu/$(basename "$h")>"; done
	cat <<'PROG'
#include <stdio.h>
#include <string.h>

int main(void)
{
	struct vcpu_mock *mock = NULL;
	struct vcpu_hv *hv = NULL;
	int rc;

	if (strcmp(vcpu_backend_name(VCPU_BACKEND_KVM), "kvm") != 0) {
		fprintf(stderr, "vcpu_backend_name(KVM) is wrong\n");
		return 1;
	}
	rc = vcpu_mock_open(VCPU_BACKEND_KVM, NULL, &mock, &hv);
	if (rc != 0) {
		fprintf(stderr, "vcpu_mock_open: %d\n", rc);
		return 1;
	}
	if (vcpu_hv_close(hv) != 0 || vcpu_mock_destroy(&mock) != 0) {
		fprintf(stderr, "close/destroy failed\n");
		return 1;
	}
	printf("out-of-tree program OK (backend %s)\n", vcpu_backend_name(VCPU_BACKEND_KVM));
	return 0;
}
PROG
} > "$work/user.c"
echo "headers: $(cd "$hdrdir" && echo ./*.h)"

strict=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
# shellcheck disable=SC2086  # pkg-config output is a list of words
"${cc[@]}" "${strict[@]}" $cflags -o "$work/user-shared" "$work/user.c" $libs
if ! readelf -d "$work/user-shared" | grep -q 'NEEDED.*\[libvcpu\.so\.0\]'; then
	echo "FAIL: user-shared does not need libvcpu.so.0"
	exit 1
fi
LD_LIBRARY_PATH=$libdir "$work/user-shared"

# Static: `pkg-config --static` flags, with libvcpu.a chosen by -Bstatic.
static_libs=$(echo " $static_libs " | sed 's/ -lvcpu / -Wl,-Bstatic -lvcpu -Wl,-Bdynamic /')
# shellcheck disable=SC2086
"${cc[@]}" "${strict[@]}" $cflags -o "$work/user-static" "$work/user.c" $static_libs
if readelf -d "$work/user-static" | grep -q 'libvcpu'; then
	echo "FAIL: user-static still needs libvcpu.so"
	exit 1
fi
"$work/user-static"

# The headers are C++-clean (extern "C", no C-only constructs).
if command -v c++ >/dev/null 2>&1; then
	for h in "$hdrdir"/*.h; do echo "#include <vcpu/$(basename "$h")>"; done > "$work/user.cc"
	echo 'int main() { return vcpu_backend_name(VCPU_BACKEND_KVM)[0] == 0; }' >> "$work/user.cc"
	# shellcheck disable=SC2086
	for std in c++11 c++17; do
		c++ -std=$std -Wall -Wextra -Wpedantic -Werror $cflags -o "$work/user-cxx" \
			"$work/user.cc" $libs
		LD_LIBRARY_PATH=$libdir "$work/user-cxx"
	done
	echo "C++11 and C++17 (-Wpedantic) compiles of the headers OK"
fi
echo "pkg-config check OK"

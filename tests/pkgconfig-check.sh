#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Install the build into a staging tree (meson install --destdir) and build an
# out-of-tree program against it the way a user would, with nothing but
# `pkg-config --cflags --libs libvcpu`:
#  - the program includes every installed header and must compile with
#    -std=c11 -Wall -Wextra -Wpedantic -Werror (and as C++11 and C++17 with
#    -Wpedantic when c++ exists);
#  - public structs use fixed-width types only, and no bitfields (bindgen);
#  - it links the shared library (NEEDED libvcpu.so.MAJOR, not the mock) and,
#    with `pkg-config --static`, libvcpu.a, and both binaries run;
#  - examples/devmodel's unit test, built with nothing but
#    `pkg-config --cflags --libs libvcpu-mock` (shared, then static), runs
#    its scripted guest on the installed mock.
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

major=$("$meson" introspect "$builddir" --projectinfo |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["version"].split(".")[0])')
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

pkg-config --validate libvcpu-mock
mock_cflags=$(pkg-config --cflags libvcpu-mock)
mock_libs=$(pkg-config --libs libvcpu-mock)
mock_static_libs=$(pkg-config --static --libs libvcpu-mock)
echo "pkg-config --cflags --libs libvcpu-mock: $mock_cflags $mock_libs"

# Public structs are bindgen-friendly: every member line of a struct or union
# in the installed headers is a fixed-width integer, char, a nested struct or
# union, or a function pointer, and none is a bitfield.
loose=$(awk '
	/^(struct|union) [a-z_0-9]+ \{/ { depth = 1; name = $2; next }
	depth > 0 {
		line = $0
		sub(/\/\*.*$/, "", line); sub(/\/\/.*$/, "", line)
		if (line ~ /\{/) depth++
		if (line ~ /\}/) { depth--; next }
		if (line ~ /^[ \t]*(\*.*)?$/ || line ~ /\(\*/) next
		if (line ~ /:[ \t]*[0-9]+[ \t]*;/ ||
		    line !~ /^[ \t]*(const )?(u?int(8|16|32|64)_t|char|struct|union)[ \t*{]/)
			print FILENAME ": " name ": " line
	}' "$hdrdir"/*.h)
if [ -n "$loose" ]; then
	echo "FAIL: public struct members that are not fixed-width, or are bitfields:"
	echo "$loose"
	exit 1
fi
echo "public structs: fixed-width members, no bitfields"

needs() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(libvcpu[^]]*\)\].*/\1/p' | sort | tr '\n' ' '; }

# A VMM: every installed header but the mock's, included as a user would.
{
	echo '// SPDX-License-Identifier: MIT'
	for h in "$hdrdir"/*.h; do
		[ "$(basename "$h")" = mock.h ] || echo "#include <vcpu/$(basename "$h")>"
	done
	cat <<'PROG'
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	struct vcpu_hv *hv = NULL;
	int rc;

	if (strcmp(vcpu_backend_name(VCPU_BACKEND_GUNYAH), "gunyah") != 0) {
		fprintf(stderr, "vcpu_backend_name(GUNYAH) is wrong\n");
		return 1;
	}
	/* No such node: the library must say so, not crash. */
	rc = vcpu_hv_open_path(VCPU_BACKEND_KVM, "/nonexistent/kvm", &hv);
	if (rc != -ENOENT || hv) {
		fprintf(stderr, "vcpu_hv_open_path(nonexistent): %d\n", rc);
		return 1;
	}
	printf("out-of-tree VMM OK\n");
	return 0;
}
PROG
} > "$work/user.c"
echo "headers: $(cd "$hdrdir" && echo ./*.h)"

strict=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
# shellcheck disable=SC2086  # pkg-config output is a list of words
"${cc[@]}" "${strict[@]}" $cflags -o "$work/user-shared" "$work/user.c" $libs
got=$(needs "$work/user-shared")
if [ "$got" != "libvcpu.so.$major " ]; then
	echo "FAIL: user-shared needs '$got', expected libvcpu.so.$major only"
	exit 1
fi
LD_LIBRARY_PATH=$libdir "$work/user-shared"

# Static: `pkg-config --static` flags, with the archives chosen by -Bstatic.
to_static() { echo " $1 " | sed -E 's/ (-lvcpu(-mock)?) / -Wl,-Bstatic \1 -Wl,-Bdynamic /g'; }
# shellcheck disable=SC2086
"${cc[@]}" "${strict[@]}" $cflags -o "$work/user-static" "$work/user.c" $(to_static "$static_libs")
if [ -n "$(needs "$work/user-static")" ]; then
	echo "FAIL: user-static still needs $(needs "$work/user-static")"
	exit 1
fi
"$work/user-static"

# A VMM's device-model test on the installed mock (examples/devmodel).
src=$(cd "$(dirname "$0")/../examples/devmodel" && pwd)
# shellcheck disable=SC2086
"${cc[@]}" "${strict[@]}" $mock_cflags -o "$work/devmodel-shared" "$src/test_pl031.c" \
	"$src/pl031.c" $mock_libs
got=$(needs "$work/devmodel-shared")
if [ "$got" != "libvcpu-mock.so.$major libvcpu.so.$major " ]; then
	echo "FAIL: devmodel-shared needs '$got', expected libvcpu-mock.so.$major and libvcpu.so.$major"
	exit 1
fi
LD_LIBRARY_PATH=$libdir "$work/devmodel-shared"
# shellcheck disable=SC2086
"${cc[@]}" "${strict[@]}" $mock_cflags -o "$work/devmodel-static" "$src/test_pl031.c" \
	"$src/pl031.c" $(to_static "$mock_static_libs")
[ -z "$(needs "$work/devmodel-static")" ] || { echo "FAIL: devmodel-static needs a .so"; exit 1; }
"$work/devmodel-static"

# The headers are C++-clean (extern "C", no C-only constructs).
if command -v c++ >/dev/null 2>&1; then
	for h in "$hdrdir"/*.h; do echo "#include <vcpu/$(basename "$h")>"; done > "$work/user.cc"
	cat >> "$work/user.cc" <<'PROG'
int main()
{
	vcpu_mock_config cfg = {};
	return vcpu_backend_name(VCPU_BACKEND_KVM)[0] == 0 || cfg.arch != 0;
}
PROG
	# A sanitized library needs its runtime in the program: the C compiler's -fsanitize.
	san=()
	for a in "${cc[@]}"; do
		case $a in -fsanitize=*) san+=("$a") ;; esac
	done
	for std in c++11 c++17; do
		# shellcheck disable=SC2086
		c++ -std=$std -Wall -Wextra -Wpedantic -Werror "${san[@]}" $mock_cflags \
			-o "$work/user-cxx" "$work/user.cc" $mock_libs
		LD_LIBRARY_PATH=$libdir "$work/user-cxx"
	done
	echo "C++11 and C++17 (-Wpedantic) compiles of the headers OK"
fi
echo "pkg-config check OK"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The complete VMM in the EXAMPLES section of man/libvcpu.7 is a real program:
#  - the first .EX/.EE block of that section is extracted and the roff
#    escapes a code block may use are undone (\e, \-, \(aq, \(dq, \(ti, \(ha,
#    \(rs, \&); any other escape, or a roff request inside the block, fails;
#  - it is compiled and linked with -std=c11 -Wall -Wextra -Wpedantic -Werror
#    against SOURCE_ROOT/include and the built BUILDDIR/lib/libvcpu.so;
#  - where /dev/kvm is readable and writable (and host and compiler target are
#    x86_64, the guest being 16-bit x86 code) it is run, and must exit 0 and
#    print exactly the lines the page shows; otherwise the run is skipped
#    ("SKIP run: no /dev/kvm") and the check passes on the build alone.
# The program is left in BUILDDIR/man-example/ for inspection.
#
# usage: check-man-example.sh SOURCE_ROOT BUILDDIR CC...
set -euo pipefail
root=${1:?usage: check-man-example.sh SOURCE_ROOT BUILDDIR CC...}
builddir=${2:?usage: check-man-example.sh SOURCE_ROOT BUILDDIR CC...}
shift 2
cc=("$@")
[ ${#cc[@]} -gt 0 ] || cc=(cc)

page=$root/man/libvcpu.7
lib=$builddir/lib/libvcpu.so
# What the program prints on a real x86_64 KVM (the output shown in the page).
expected=$'Hello from the guest\nguest halted'

[ -f "$page" ] || { echo "FAIL: $page does not exist"; exit 1; }
[ -e "$lib" ] || { echo "FAIL: $lib is not built"; exit 1; }

work=$builddir/man-example
rm -rf "$work"
mkdir -p "$work"
src=$work/tinyvmm.c
exe=$work/tinyvmm

# --- Extract ----------------------------------------------------------------
# The first .EX/.EE block after ".SH EXAMPLES" (or EXAMPLE), before the next .SH.
awk '
	/^\.SH[ \t]/ { in_sec = ($0 ~ /^\.SH[ \t]+"?EXAMPLES?"?[ \t]*$/); next }
	in_sec && !done && !in_ex && /^\.EX([ \t]|$)/ { in_ex = 1; next }
	in_ex && /^\.EE([ \t]|$)/ { in_ex = 0; done = 1; next }
	in_ex { print }
	END { if (in_ex) exit 2 }
' "$page" >"$work/example.roff" || {
	echo "FAIL: man/libvcpu.7: the EXAMPLES block has no .EE"
	exit 1
}
if [ ! -s "$work/example.roff" ]; then
	echo "FAIL: man/libvcpu.7 has no .EX/.EE block in its EXAMPLES section"
	exit 1
fi
if grep -n "^[.']" "$work/example.roff" >"$work/requests"; then
	echo "FAIL: man/libvcpu.7: roff requests inside the example (line: text):"
	sed 's/^/  /' "$work/requests"
	exit 1
fi

# Undo the escapes; \e and \(rs go through \001 so that a backslash they make
# is not taken for the start of another escape.  A backslash left over is an
# escape this script does not know.
sed -e 's/\\e/\x01/g' -e 's/\\(rs/\x01/g' \
	-e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\(ti/~/g' \
	-e 's/\\(ha/^/g' -e 's/\\&//g' \
	"$work/example.roff" >"$work/example.unescaped"
if grep -n '\\' "$work/example.unescaped" >"$work/escapes"; then
	echo "FAIL: man/libvcpu.7: unknown roff escapes in the example (line: text):"
	sed 's/^/  /' "$work/escapes"
	exit 1
fi
sed -e 's/\x01/\\/g' "$work/example.unescaped" >"$src"
if ! grep -q '^int main(' "$src"; then
	echo "FAIL: man/libvcpu.7: the example has no main(): not a complete program"
	exit 1
fi
echo "extracted $(wc -l <"$src") lines from man/libvcpu.7 to $src"

# --- Build --------------------------------------------------------------------
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
if ! "${cc[@]}" "${flags[@]}" -I"$root/include" -o "$exe" "$src" \
	"$lib" -Wl,-rpath,"$(dirname "$lib")" -lpthread; then
	echo "FAIL: the example of man/libvcpu.7 does not build with ${cc[*]} ${flags[*]}"
	exit 1
fi
echo "built with ${cc[*]} ${flags[*]}"

# --- Run ----------------------------------------------------------------------
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "SKIP run: no /dev/kvm"
	echo "man example OK (built)"
	exit 0
fi
target=$("${cc[@]}" -dumpmachine 2>/dev/null || echo unknown)
if [ "$(uname -m)" != x86_64 ] || [[ $target != x86_64* ]]; then
	echo "SKIP run: the example runs an x86_64 guest (host $(uname -m), compiler target $target)"
	echo "man example OK (built)"
	exit 0
fi
rc=0
timeout 60 "$exe" >"$work/stdout" 2>"$work/stderr" || rc=$?
out=$(cat "$work/stdout")
if [ "$rc" -ne 0 ] || [ "$out" != "$expected" ]; then
	echo "FAIL: the example exited with $rc; it printed:"
	sed 's/^/  /' "$work/stdout"
	echo "on stderr:"
	sed 's/^/  /' "$work/stderr"
	echo "expected exit 0 and:"
	sed 's/^/  /' <<<"$expected"
	exit 1
fi
echo "ran on /dev/kvm: exit 0, output as expected"
echo "man example OK (built and run)"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run a cmocka test program and turn "everything skipped" into meson's SKIP.
# cmocka exits 0 when its tests call skip(); meson's exitcode protocol only
# knows exit code 77 as SKIP.  The program's own output (cmocka's
# "[  PASSED  ] N test(s)." / "[  SKIPPED ] N test(s)" lines) is passed
# through unchanged, so `meson test -v` and the test log show it.
#
# usage: cmocka-run.sh PROGRAM [ARGS...]
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || exit "$rc"

sum() { awk -v re="$1" '$0 ~ re { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) { n += $i; break } } END { print n + 0 }' "$out"; }
passed=$(sum '^\\[  PASSED  \\] [0-9]+ test')
skipped=$(sum '^\\[  SKIPPED \\] [0-9]+ test')
if [ "$passed" -eq 0 ] && [ "$skipped" -gt 0 ]; then
	echo "cmocka-run: all $skipped test(s) skipped: reporting SKIP (exit 77)"
	exit 77
fi
exit 0

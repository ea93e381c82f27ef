#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The README's API tour is a complete program: extract it (between its
# markers), build it against this build's libraries as a user would
# (-std=c11 -Wpedantic -Werror), and run it on the mock (--mock) and as is
# (the real guest on a usable x86_64 /dev/kvm, else the mock again).  Each
# run must print the guest's "Hi" and exit 0.
#
# usage: check-readme-tour.sh SOURCE_ROOT BUILDDIR CC...
set -euo pipefail
root=${1:?usage: check-readme-tour.sh SOURCE_ROOT BUILDDIR CC...}
builddir=${2:?usage: check-readme-tour.sh SOURCE_ROOT BUILDDIR CC...}
shift 2
cc=("$@")
[ ${#cc[@]} -gt 0 ] || cc=(cc)

work=$builddir/readme-tour
mkdir -p "$work"
awk '/^<!-- The program between these markers/ { on = 1; next }
     on && /^```c$/ { code = 1; next }
     code && /^```$/ { exit }
     code { print }' "$root/README.md" >"$work/tour.c"
[ -s "$work/tour.c" ] || { echo "FAIL: no tour program found in README.md"; exit 1; }
echo "tour: $(wc -l <"$work/tour.c") lines from README.md"

"${cc[@]}" -std=c11 -Wall -Wextra -Wpedantic -Werror -I"$root/include" -o "$work/tour" \
	"$work/tour.c" -L"$builddir/lib" -lvcpu-mock -lvcpu
export LD_LIBRARY_PATH=$builddir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
. "$root/tests/expect-hi.sh"
expect_hi tour "$work/tour" "$work/stderr"

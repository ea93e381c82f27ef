# SPDX-License-Identifier: MIT
#
# Sourced by check-readme-tour.sh and rust.sh: run the tour's guest through
# a VMM twice, on the mock (--mock) and as is (a usable x86_64 /dev/kvm, else
# the mock again); each run must exit 0 and print the guest's "Hi".
#
# expect_hi NAME PROGRAM STDERR_FILE: exits the script with 1 on a failure.
expect_hi() {
	local name=$1 exe=$2 err=$3 args rc out
	for args in --mock ""; do
		rc=0
		# shellcheck disable=SC2086
		out=$("$exe" $args 2>"$err") || rc=$?
		if [ "$rc" -ne 0 ]; then
			cat "$err"
			echo "FAIL: $name ${args:-as is} exited with status $rc"
			exit 1
		fi
		if [ "$out" != "Hi" ]; then
			cat "$err"
			echo "FAIL: $name ${args:-as is} printed \"$out\", not \"Hi\""
			exit 1
		fi
		echo "$name ${args:-as is}: $out ($(cat "$err"))"
	done
}

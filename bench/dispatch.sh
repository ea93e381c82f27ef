#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Dispatch cost: the instructions libvcpu executes per exit, under callgrind
# (an instruction count, so the figure repeats on a noisy machine).
#
# `bench_vcpu dispatch` runs vcpu_run() over the bench seam, per kind of
# exit a warm-up, then N and 2N exits.  callgrind collects only inside
# vcpu_run() (--toggle-collect) and writes one profile per call
# (--dump-after).  Per call:
#   library = inclusive(vcpu_run)
#             - inclusive(bseam_ioctl)   the seam's "kernel": every KVM_RUN
#                                        and ONE_REG it answers
#             - inclusive(on_*)          the VMM's trivial handlers
# and per exit = (library(2N) - library(N)) / N.  What stays is the run
# loop, the decode, the dispatch, the write-back and the calls into the
# seam themselves (argument set-up, the indirect call).
#
# usage: dispatch.sh BENCH_VCPU [N]       (exit 77 without valgrind)
set -euo pipefail
bench=$1
n=${2:-10000}

for t in valgrind callgrind_annotate; do
	if ! command -v "$t" >/dev/null; then
		echo "dispatch: $t is not installed (Debian: valgrind): skipped"
		exit 77
	fi
done

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

valgrind --tool=callgrind --toggle-collect=vcpu_run --dump-after=vcpu_run \
	--callgrind-out-file="$dir/cg.out" -q \
	"$bench" dispatch --exits "$n" >"$dir/runs" 2>"$dir/valgrind.log" || {
	cat "$dir/runs" "$dir/valgrind.log"
	echo "dispatch: bench_vcpu failed under callgrind"
	exit 1
}

# library instructions in one profile (see above).
lib_ir() {
	# A function can be listed twice (relative and absolute source path): take
	# each one's largest inclusive count once.
	callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null | awk '
		function num(s) { gsub(/,/, "", s); return s + 0 }
		/PROGRAM TOTALS/ { total = num($1) }
		match($0, /:(bseam_ioctl|on_mmio|on_pio|on_hypercall|on_system_event)( |$)/) {
			f = substr($0, RSTART + 1, RLENGTH - 1); sub(/ $/, "", f)
			if (num($1) > c[f]) c[f] = num($1)
		}
		END {
			if (total == 0) { print "ERR"; exit }
			h = c["on_mmio"] + c["on_pio"] + c["on_hypercall"] + c["on_system_event"]
			printf "%d %d %d\n", total - c["bseam_ioctl"] - h, c["bseam_ioctl"], h
		}'
}

status=0
declare -A first
echo "dispatch cost: instructions libvcpu executes per exit (callgrind; $n and $((2 * n)) exits, difference / $n)"
echo "  the seam's KVM_RUN/ONE_REG (bseam_ioctl) and the handlers are excluded"
while read -r tag idx arch kind exits; do
	[ "$tag" = dispatch-dump ] || continue
	f=$(ls "$dir"/cg.out.*"$idx" 2>/dev/null | grep -E "\.0*$idx\$" | head -1 || true)
	if [ -z "$f" ]; then
		echo "dispatch: no callgrind profile $idx ($arch $kind)"
		status=1
		continue
	fi
	read -r lib seam handler <<<"$(lib_ir "$f")"
	if [ "$lib" = ERR ]; then
		echo "dispatch: cannot read profile $f"
		status=1
		continue
	fi
	key="$arch $kind"
	if [ "$exits" = "$n" ]; then
		first[$key]="$lib $seam $handler"
	elif [ "$exits" = "$((2 * n))" ] && [ -n "${first[$key]:-}" ]; then
		read -r lib1 seam1 handler1 <<<"${first[$key]}"
		per=$(awk -v a="$lib1" -v b="$lib" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
		sper=$(awk -v a="$seam1" -v b="$seam" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
		hper=$(awk -v a="$handler1" -v b="$handler" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
		printf '%-7s %-13s dispatch instructions/exit: %s   (excluded per exit: seam %s, handler %s)\n' \
			"$arch" "$kind" "$per" "$sper" "$hper"
	fi
done <"$dir/runs"
[ "$status" -eq 0 ] || ls -l "$dir"
exit "$status"

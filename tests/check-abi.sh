#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Compare the built libvcpu.so and libvcpu-mock.so with the released ABI in
# abi/ (abidw XML, from abigail-tools), looking only at what the public
# headers (include/vcpu/) define: internal structs may change freely.
#  - a removed or changed function, variable or public type fails, unless
#    the baseline is deliberately regenerated in the same change
#    (`tests/check-abi.sh --update BUILDDIR`, which needs a reason in the
#    commit message and, for an incompatible change, a new major version);
#  - an added function passes only under a version node the baseline does
#    not have (a released node never grows: lib/libvcpu.map);
#  - LIBVCPU_PRIVATE symbols are not ABI and are left out.
# The baseline is produced by gcc with debug info (buildtype debugoptimized,
# the CI build); another compiler or no -g gives a SKIP (exit 77), or a
# failure when ABI_CHECK_REQUIRED=1.
#
# usage: check-abi.sh [--update] BUILDDIR [SOURCE_ROOT]
set -euo pipefail
update=0
if [ "${1:-}" = --update ]; then
	update=1
	shift
fi
builddir=$(cd "${1:?usage: check-abi.sh [--update] BUILDDIR [SOURCE_ROOT]}" && pwd)
root=$(cd "${2:-$(dirname "$0")/..}" && pwd)
hdrs=$root/include/vcpu
supp=$root/abi/suppressions.txt

skip() {
	if [ "${ABI_CHECK_REQUIRED:-0}" = 1 ]; then
		echo "FAIL: ABI check required but skipped: $*"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}
command -v abidiff >/dev/null 2>&1 && command -v abidw >/dev/null 2>&1 ||
	skip "abidiff/abidw not installed (Debian package abigail-tools)"

fail=0
for name in libvcpu libvcpu-mock; do
	lib=$(find "$builddir/lib" -maxdepth 1 -name "$name.so.*.*.*" -type f -print -quit)
	[ -n "$lib" ] || { echo "FAIL: no $name.so.X.Y.Z in $builddir/lib"; exit 1; }
	comment=$(readelf -p .comment "$lib" 2>/dev/null || true)
	[[ $comment == *GCC* && $comment != *clang* ]] || skip "$lib was not built by gcc"
	[[ $(readelf -S "$lib") == *.debug_info* ]] || skip "$lib has no debug info (-g)"
	base=$root/abi/$name.abi

	if [ "$update" = 1 ]; then
		abidw --headers-dir "$hdrs" --no-corpus-path --suppressions "$supp" \
			--out-file "$base" "$lib"
		echo "updated ${base#"$root/"} from ${lib#"$builddir/"}"
		continue
	fi
	[ -f "$base" ] || { echo "FAIL: no baseline ${base#"$root/"} (tests/check-abi.sh --update)"; exit 1; }

	rc=0
	report=$(abidiff --headers-dir1 "$hdrs" --headers-dir2 "$hdrs" --suppressions "$supp" \
		--no-added-syms "$base" "$lib") || rc=$?
	# Bits of abidiff's status: 1 error, 2 usage, 4 ABI change, 8 incompatible.
	if [ $((rc & 3)) -ne 0 ]; then
		echo "FAIL: abidiff could not compare ${base#"$root/"} with $lib (status $rc):"
		echo "$report"
		exit 1
	fi
	if [ $((rc & 12)) -ne 0 ]; then
		echo "FAIL: $name's ABI differs from the release in ${base#"$root/"}:"
		echo "$report" | sed 's/^/  /'
		echo "  A deliberate change regenerates the baseline in the same commit:" \
			"tests/check-abi.sh --update <builddir>"
		fail=1
		continue
	fi

	# Added symbols: each under a node the release did not have.
	old_nodes=$(sed -n "s/.*<elf-symbol .* version='\([^']*\)'.*/\1/p" "$base" | sort -u)
	old_syms=$(sed -n "s/.*<elf-symbol name='\([^']*\)'.*/\1/p" "$base" | sort -u)
	added=0
	while read -r sym node; do
		[[ $node == *_PRIVATE ]] && continue
		grep -qx -- "$sym" <<<"$old_syms" && continue
		added=$((added + 1))
		if grep -qx -- "$node" <<<"$old_nodes"; then
			echo "FAIL: $name: new symbol $sym is in the released node $node (add a node)"
			fail=1
		fi
	done < <(nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sed -n 's/@@\?/ /p')
	echo "$name: ABI compatible with ${base#"$root/"}" \
		"($(grep '<elf-symbol ' "$base" | grep -vc "version='[A-Z_]*_PRIVATE'") symbols; $added added)"
done
exit "$fail"

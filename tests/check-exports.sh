#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Check the dynamic symbol table of libvcpu.so:
#  - the soname is libvcpu.so.0;
#  - every defined dynamic symbol starts with vcpu_ and carries the
#    LIBVCPU_* version of lib/libvcpu.map;
#  - the exported set is exactly the functions the public headers declare
#    with VCPU_API (nothing internal leaks, nothing public is missing).
#
# usage: check-exports.sh NM READELF LIBVCPU_SO PUBLIC_HEADER_DIR
set -euo pipefail
nm=$1 readelf=$2 lib=$3 hdrdir=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

soname=$("$readelf" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != "libvcpu.so.0" ]; then
	echo "FAIL: soname is '$soname', expected libvcpu.so.0"
	fail=1
fi

# "ADDR TYPE NAME[@@VERSION]"; the version node itself is an absolute (A) symbol.
"$nm" -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sort > "$tmp/raw"
sed 's/@.*//' "$tmp/raw" | sort -u > "$tmp/exported"
echo "libvcpu.so exports $(wc -l < "$tmp/exported") symbols"

if grep -v '^vcpu_' "$tmp/exported" > "$tmp/bad"; then
	echo "FAIL: exported symbols without the vcpu_ prefix:"
	sed 's/^/  /' "$tmp/bad"
	fail=1
fi
if grep -v '@@\?LIBVCPU_' "$tmp/raw" > "$tmp/unversioned"; then
	echo "FAIL: exported symbols without a LIBVCPU_* version:"
	sed 's/^/  /' "$tmp/unversioned"
	fail=1
fi

# Public API: "VCPU_API <type> name(" in the installed headers.
cat "$hdrdir"/*.h | tr '\n' ' ' | sed 's/VCPU_API/\n&/g' |
	sed -n 's/^VCPU_API[^(;]*[^A-Za-z0-9_]\(vcpu_[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' |
	sort -u > "$tmp/declared"
echo "public headers declare $(wc -l < "$tmp/declared") VCPU_API functions"

if comm -13 "$tmp/exported" "$tmp/declared" | grep . > "$tmp/missing"; then
	echo "FAIL: declared VCPU_API but not exported (not defined, or hidden):"
	sed 's/^/  /' "$tmp/missing"
	fail=1
fi
if comm -23 "$tmp/exported" "$tmp/declared" | grep . > "$tmp/extra"; then
	echo "FAIL: exported but not declared VCPU_API in include/vcpu/*.h:"
	sed 's/^/  /' "$tmp/extra"
	fail=1
fi

[ "$fail" -eq 0 ] && echo "exports OK"
exit "$fail"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Check one shared library's dynamic symbol table against its version script
# and its public headers:
#  - the script names every exported symbol explicitly (no wildcard in a
#    global: list) under a version node; nodes are NAME_MAJOR.MINOR, or
#    NAME_PRIVATE for entries between this project's own libraries;
#  - the soname is lib<name>.so.MAJOR, MAJOR being the public nodes' major;
#  - every defined dynamic symbol carries the node the script gives it
#    (nothing reaches the table unversioned or by accident);
#  - the public nodes' symbols are exactly the functions the given headers
#    declare with VCPU_API (nothing internal leaks, nothing public is missing).
#
# usage: check-exports.sh NM READELF LIBRARY.so VERSION_SCRIPT HEADER...
set -euo pipefail
nm=$1 readelf=$2 lib=$3 map=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
base=$(basename "$lib")
base=${base%%.so*}

problem() {
	echo "FAIL: $*"
	fail=1
}

# --- The version script: "SYMBOL NODE" per exported name ---------------------
# Comments go first; then each "NODE {" opens a node, "global:"/"local:"
# switch lists, and "}" closes it.
sed -e ':a' -e 's#/\*[^*]*\*\+\([^/*][^*]*\*\+\)*/##g' -e '/\/\*/{N; ba}' "$map" |
	awk -v tmp="$tmp" '
	/^[[:space:]]*$/ { next }
	match($0, /^[[:space:]]*[A-Za-z0-9_.]+[[:space:]]*\{/) {
		node = $1; sub(/\{.*/, "", node); list = ""; next
	}
	/^[[:space:]]*\}/ { node = ""; next }
	/global:/ { list = "global"; sub(/.*global:/, "") }
	/local:/ { list = "local"; sub(/.*local:/, "") }
	{
		n = split($0, w, /[;[:space:]]+/)
		for (i = 1; i <= n; i++) {
			if (w[i] == "") continue
			if (node == "") { print "outside a node: " w[i] > (tmp "/maperr"); continue }
			if (list == "global") print w[i], node
			else if (list == "local" && w[i] != "*") print "local entry other than *: " w[i] > (tmp "/maperr")
		}
	}' | sort > "$tmp/map"
if [ -s "$tmp/maperr" ]; then
	problem "$map: cannot read:"
	sed 's/^/  /' "$tmp/maperr"
fi
if grep '[*?[]' "$tmp/map" > "$tmp/wild"; then
	problem "$map: wildcards in a global: list (name every symbol):"
	sed 's/^/  /' "$tmp/wild"
fi
if [ ! -s "$tmp/map" ]; then
	problem "$map: no exported symbols"
fi
awk '$2 !~ /^[A-Z][A-Z0-9_]*_([0-9]+\.[0-9]+|PRIVATE)$/ { print }' "$tmp/map" > "$tmp/badnode"
if [ -s "$tmp/badnode" ]; then
	problem "$map: node names must be NAME_MAJOR.MINOR or NAME_PRIVATE:"
	sed 's/^/  /' "$tmp/badnode"
fi
majors=$(awk '$2 ~ /_[0-9]+\.[0-9]+$/ { v = $2; sub(/.*_/, "", v); sub(/\..*/, "", v); print v }' \
	"$tmp/map" | sort -u)
if [ "$(wc -w <<<"$majors")" -ne 1 ]; then
	problem "$map: the public nodes must share one major version (found: ${majors:-none})"
fi
echo "$map: $(wc -l < "$tmp/map") symbols in nodes $(awk '{ print $2 }' "$tmp/map" | sort -u | tr '\n' ' ')"

# --- The soname follows the major ------------------------------------------
soname=$("$readelf" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != "$base.so.$majors" ]; then
	problem "soname is '$soname', expected $base.so.$majors (the version nodes' major)"
fi

# --- The dynamic symbol table ------------------------------------------------
# "ADDR TYPE NAME@@NODE"; the node itself is an absolute (A) symbol.
"$nm" -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sort > "$tmp/raw"
echo "$(basename "$lib") exports $(wc -l < "$tmp/raw") symbols"
if grep -v '@' "$tmp/raw" > "$tmp/unversioned"; then
	problem "exported symbols without a version node:"
	sed 's/^/  /' "$tmp/unversioned"
fi
sed -n 's/@@\?/ /p' "$tmp/raw" | sort > "$tmp/have"
if ! diff -u "$tmp/map" "$tmp/have" > "$tmp/diff"; then
	problem "the dynamic table differs from $map (- script only, + library only):"
	sed -n 's/^\([-+][^-+]\)/  \1/p' "$tmp/diff"
fi

# --- The public API: "VCPU_API <type> name(" in the given headers ----------
cat "$@" | tr '\n' ' ' | sed 's/VCPU_API/\n&/g' |
	sed -n 's/^VCPU_API[^(;]*[^A-Za-z0-9_]\(vcpu_[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' |
	sort -u > "$tmp/declared"
echo "$# headers declare $(wc -l < "$tmp/declared") VCPU_API functions"
awk '$2 !~ /_PRIVATE$/ { print $1 }' "$tmp/map" | sort -u > "$tmp/public"
if comm -13 "$tmp/public" "$tmp/declared" | grep . > "$tmp/missing"; then
	problem "declared VCPU_API but not in a public node of $map:"
	sed 's/^/  /' "$tmp/missing"
fi
if comm -23 "$tmp/public" "$tmp/declared" | grep . > "$tmp/extra"; then
	problem "in a public node of $map but not declared VCPU_API in the headers:"
	sed 's/^/  /' "$tmp/extra"
fi

[ "$fail" -eq 0 ] && echo "exports OK"
exit "$fail"

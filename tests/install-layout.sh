#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Check what `meson install` puts where, in a staging tree (--destdir):
#  - <includedir>/vcpu/: exactly the headers of include/vcpu/;
#  - <libdir>: for libvcpu and libvcpu-mock, lib<name>.so -> lib<name>.so.MAJOR
#    -> lib<name>.so.X.Y.Z (symlinks, then one ELF file whose soname is the
#    middle name) and lib<name>.a (an archive holding the API);
#  - <libdir>/pkgconfig/: libvcpu.pc and libvcpu-mock.pc, at the project's
#    version;
#  - <mandir>/man3/: a page for every function either library exports, each
#    a full page or a ".so" alias to an installed one; <mandir>/man7/: the
#    section 7 pages of man/;
#  - nothing else.
#
# usage: install-layout.sh BUILDDIR MESON SOURCE_ROOT
set -euo pipefail
builddir=$(cd "$1" && pwd)
meson=$2
root=$(cd "$3" && pwd)
work=$builddir/install-layout
staging=$work/staging
rm -rf "$work"
mkdir -p "$work"
fail=0
problem() {
	echo "FAIL: $*"
	fail=1
}

"$meson" install -C "$builddir" --destdir "$staging" --no-rebuild --quiet

opt() {
	"$meson" introspect "$builddir" --buildoptions |
		python3 -c 'import json, sys
for o in json.load(sys.stdin):
    if o["name"] == sys.argv[1]:
        print(o["value"])' "$1"
}
prefix=$(opt prefix)
version=$("$meson" introspect "$builddir" --projectinfo |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
major=${version%%.*}
abs() { case $1 in /*) echo "$staging$1" ;; *) echo "$staging$prefix/$1" ;; esac; }
incdir=$(abs "$(opt includedir)")
libdir=$(abs "$(opt libdir)")
mandir=$(abs "$(opt mandir)")
echo "version $version: headers ${incdir#"$staging"}, libraries ${libdir#"$staging"}," \
	"man pages ${mandir#"$staging"}"

expected=$work/expected
: > "$expected"
expect() { printf '%s\n' "${1#"$staging"}" >> "$expected"; }

# --- Headers -----------------------------------------------------------------
for h in "$root"/include/vcpu/*.h; do
	f=$incdir/vcpu/$(basename "$h")
	expect "$f"
	if [ ! -f "$f" ]; then
		problem "header ${f#"$staging"} not installed"
	elif ! cmp -s "$h" "$f"; then
		problem "header ${f#"$staging"} differs from include/vcpu/$(basename "$h")"
	fi
done

# --- Libraries ------------------------------------------------------------------
exported=$work/exported
: > "$exported"
for name in libvcpu libvcpu-mock; do
	link=$libdir/$name.so soname=$name.so.$major real=$name.so.$version
	expect "$link"
	expect "$libdir/$soname"
	expect "$libdir/$real"
	expect "$libdir/$name.a"
	if [ "$(readlink "$link" 2>/dev/null)" != "$soname" ]; then
		problem "${link#"$staging"} is not a symlink to $soname"
	fi
	if [ "$(readlink "$libdir/$soname" 2>/dev/null)" != "$real" ]; then
		problem "$soname is not a symlink to $real"
	fi
	if [ -L "$libdir/$real" ] || [ ! -f "$libdir/$real" ]; then
		problem "$real is not a regular file"
		continue
	fi
	got=$(readelf -d "$libdir/$real" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
	[ "$got" = "$soname" ] || problem "$real has soname '$got', expected $soname"
	nm -D --defined-only "$libdir/$real" | awk '$2 == "T" && $3 !~ /_PRIVATE$/ { sub(/@.*/, "", $3); print $3 }' \
		>> "$exported"
	if [ ! -f "$libdir/$name.a" ]; then
		problem "$name.a not installed"
	elif [ "$(nm "$libdir/$name.a" 2>/dev/null | grep -c ' T vcpu_')" -eq 0 ]; then
		problem "$name.a defines no vcpu_ function"
	fi
	pc=$libdir/pkgconfig/$name.pc
	expect "$pc"
	if [ ! -f "$pc" ]; then
		problem "${pc#"$staging"} not installed"
	elif ! grep -qx "Version: $version" "$pc"; then
		problem "${pc#"$staging"} does not say Version: $version"
	fi
done
if [ -f "$libdir/pkgconfig/libvcpu-mock.pc" ] &&
	! grep -Eq "^Requires:.*libvcpu *= *$version" "$libdir/pkgconfig/libvcpu-mock.pc"; then
	problem "libvcpu-mock.pc does not require libvcpu = $version (the private seam entry)"
fi
sort -u -o "$exported" "$exported"
grep -q . "$exported" || problem "the libraries export no functions"

# --- Man pages ------------------------------------------------------------------
while read -r fn; do
	page=$mandir/man3/$fn.3
	expect "$page"
	if [ ! -f "$page" ]; then
		problem "no man page ${page#"$staging"} for the exported $fn"
		continue
	fi
	target=$(sed -n 's/^\.so[[:space:]]\+man3\/\([^[:space:]]*\).*/\1/p' "$page")
	if [ -n "$target" ] && [ ! -f "$mandir/man3/$target" ]; then
		problem "${page#"$staging"} is an alias of man3/$target, which is not installed"
	elif [ -z "$target" ] && ! grep -q '^\.TH' "$page"; then
		problem "${page#"$staging"} is neither a page nor an alias"
	fi
done < "$exported"
for src in "$root"/man/*.[37]; do
	sec=${src##*.}
	expect "$mandir/man$sec/$(basename "$src")"
	[ -f "$mandir/man$sec/$(basename "$src")" ] ||
		problem "man/$(basename "$src") not installed in man$sec"
done

# --- Nothing else -----------------------------------------------------------------
(cd "$staging" && find . \( -type f -o -type l \) | sed 's/^\.//') | sort > "$work/installed"
sort -u -o "$expected" "$expected"
if comm -23 "$work/installed" "$expected" | grep . > "$work/extra"; then
	problem "installed but not part of the layout:"
	sed 's/^/  /' "$work/extra"
fi
if [ "$fail" -eq 0 ]; then
	echo "install layout OK: $(wc -l < "$work/installed") files; $(wc -l < "$exported")" \
		"exported symbols, each with a man page"
fi
exit "$fail"

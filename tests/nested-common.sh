# SPDX-License-Identifier: MIT
#
# What the nested harnesses share (tests/nested-arm64/lib.sh and
# tests/nested-x86/lib.sh source it): failing with a reason, finding the
# tools, fetching Debian packages into the cache, the lock around the
# preparation, and packing an initramfs.  The sourcing lib.sh sets:
#   cache         where downloads are kept
#   nested_tools  the commands the harness needs (array)
#   nested_files  files it needs besides (array; may be empty)
#   fetch_arch    the Debian architecture suffix of downloads (":arm64"), or ""

# A TAP "Bail out!" fails the meson test with the reason.
bail() {
	echo "Bail out! $*"
	exit 1
}

missing_tools() {
	local t
	for t in "${nested_tools[@]}"; do
		command -v "$t" >/dev/null || echo "$t"
	done
	for t in "${nested_files[@]}"; do
		[ -e "$t" ] || echo "$t"
	done
}

# fetch PKG: the package's .deb in the cache (apt-get download, once).
fetch() {
	local pkg=$1
	ls "$cache/${pkg}"_*.deb >/dev/null 2>&1 && return 0
	echo "# downloading $pkg$fetch_arch"
	(cd "$cache" && apt-get download -q "$pkg$fetch_arch" >/dev/null 2>&1) ||
		bail "apt-get download $pkg$fetch_arch failed"
}

# Everything before a boot happens under this lock (the meson tests may
# overlap); prepare() in lib.sh takes it, prepared() lets it go.
take_lock() {
	exec 9>"$work/lock"
	flock 9
}

prepared() {
	flock -u 9
}

# pack ROOT OUT [gzip]: a newc cpio of ROOT.  Big payloads stay uncompressed:
# gunzip in the emulated kernel costs more than reading the bytes.
pack() {
	if [ "${3:-}" = gzip ]; then
		(cd "$1" && find . | cpio -o -H newc --quiet | gzip -1 >"$2")
	else
		(cd "$1" && find . | cpio -o -H newc --quiet >"$2")
	fi
}

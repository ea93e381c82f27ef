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

# --- the linux-snapshot suites (nested-arm64/ and nested-x86/linux-snapshot.sh) ---

# snapshot_check NAME LOG SAVE_AT: the checks and figures of a linux-snapshot
# run whose console is LOG (the snapshot-init lines); NAME prefixes what it
# says; the caller's fail() ends the test.
snapshot_check() {
	local name=$1 log=$2 save_at=$3 saved restored marker last snap t
	out() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MV //p" "$log"; }
	rc() { sed -n "/^@BOOT $1\$/,/^@MVRC /s/^@MVRC //p" "$log"; }
	echo "--- save"
	out save
	echo "--- restore"
	out restore
	# The save: mid-boot, before userspace, and minivmm exited 0 saying so.
	out save | grep -q 'libvcpu-linux-boot: userspace reached' &&
		fail "the guest reached userspace before the save at $save_at s: save earlier"
	saved=$(out save | grep '^minivmm: saved ' | head -1) || fail "minivmm did not save the guest"
	[ "$(rc save)" = 0 ] || fail "the saving minivmm exited $(rc save), not 0"
	# The restore: the guest goes on to userspace, both CPUs online, and powers off.
	restored=$(out restore | grep '^minivmm: restored ' | head -1) ||
		fail "the new minivmm did not restore the snapshot"
	marker=$(out restore | grep 'libvcpu-linux-boot: userspace reached' | head -1) ||
		fail "the restored guest never reported userspace"
	[[ $marker == *"cpus online 0-1 (2)"* ]] || fail "not both CPUs online after the restore: $marker"
	[ "$(rc restore)" = 0 ] || fail "the restoring minivmm exited $(rc restore), not 0"
	out restore | grep -q 'powered off' || fail "the restored guest did not power off"
	# Where the kernel was when saved: its last console line before the save.
	last=$(out save | grep -v '^minivmm:' | tail -1 || true)
	echo "saved during the boot, after the console line: ${last:-(none yet)}"
	snap=$(sed -n 's/^@SNAP //p' "$log")
	t=$(out restore | sed -n 's/^\[+ *\([0-9.]*\)\] libvcpu-linux-boot: userspace.*/\1/p' | head -1)
	echo "snapshot: ${snap%% *} KiB on disk, ${snap##* } bytes long; $saved"
	echo "restore: $restored; userspace ${t:-?} s after the restoring minivmm started"
	echo "$name: PASS"
}

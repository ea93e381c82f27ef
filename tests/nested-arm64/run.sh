#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The nested-arm64 suite: libvcpu's real-kvm cases against the real Linux
# KVM/arm64 driver, on a machine without arm64 virtualization hardware.
#
# qemu-system-aarch64 emulates an arm64 machine with EL2 (virtualization=on),
# Debian's 6.12 arm64 kernel boots in it with KVM built in, and the cross-built
# test_real_kvm runs against that kernel's /dev/kvm from an initramfs.  The
# suite's TAP output comes back over the serial console and is printed here,
# so `meson test` (protocol tap) lists every case.
#
# usage: run.sh SRCDIR BUILDDIR vhe|nvhe
#        (environment: RK_ONLY=<glob> runs only the matching cases)
#
# Downloads (Debian packages, via apt-get download) and the aarch64 build are
# cached in BUILDDIR/nested-arm64 and reused by later runs.  Anything that
# cannot be obtained is a "Bail out!" naming what is missing: never a pass.
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
mode=$3
work=$build/nested-arm64
cache=$work/cache
log=$work/boot-$mode.log

bail() {
	echo "Bail out! $*"
	exit 1
}

case $mode in
vhe) kvm_mode= ;;
nvhe) kvm_mode=kvm-arm.mode=nvhe ;;
*) bail "unknown mode '$mode' (vhe or nvhe)" ;;
esac

mkdir -p "$cache"
# The two modes may be started together: one preparation at a time.
exec 9>"$work/lock"
flock 9

# --- tools -------------------------------------------------------------------

tools=(qemu-system-aarch64 aarch64-linux-gnu-gcc aarch64-linux-gnu-readelf cpio gzip dpkg-deb
       apt-get apt-cache meson ninja flock)
missing_tools() {
	local t
	for t in "${tools[@]}"; do
		command -v "$t" >/dev/null || echo "$t"
	done
}
if [ -n "$(missing_tools)" ] || [ ! -e /usr/lib/aarch64-linux-gnu/libcmocka.so.0 ]; then
	echo "# installing the nested-arm64 packages"
	"$src/tests/install-deps.sh" nested >&2 || true
fi
m=$(missing_tools | tr '\n' ' ')
[ -z "$m" ] || bail "missing tools: $m(Debian: qemu-system-arm gcc-aarch64-linux-gnu cpio; tests/install-deps.sh nested)"
[ -e /usr/lib/aarch64-linux-gnu/libcmocka.so.0 ] ||
	bail "missing libcmocka-dev:arm64 (dpkg --add-architecture arm64; tests/install-deps.sh nested)"

# --- the guest kernel and busybox, from Debian's archive --------------------

# linux-image-6.12-arm64 is a meta package: it names the versioned image,
# whose -unsigned variant carries the uncompressed arm64 Image.
kpkg=$(apt-cache depends linux-image-6.12-arm64:arm64 2>/dev/null |
	awk '/Depends: linux-image-6\.12\./ { sub(":arm64", "", $2); print $2 "-unsigned"; exit }')
[ -n "$kpkg" ] || bail "apt knows no linux-image-6.12-arm64:arm64 (needs bookworm-security and dpkg --add-architecture arm64; apt-get update)"
fetch() {
	local pkg=$1
	ls "$cache/${pkg}"_*.deb >/dev/null 2>&1 && return 0
	echo "# downloading $pkg:arm64"
	(cd "$cache" && apt-get download -q "$pkg:arm64" >/dev/null 2>&1) ||
		bail "apt-get download $pkg:arm64 failed"
}
fetch "$kpkg"
fetch busybox-static
image=$cache/Image-$kpkg
if [ ! -s "$image" ]; then
	rm -rf "$cache/kpkg"
	dpkg-deb -x "$(ls "$cache/${kpkg}"_*.deb | head -1)" "$cache/kpkg"
	k=$(ls "$cache"/kpkg/boot/vmlinuz-* | head -1)
	# Debian ships arm64 kernels as a plain Image; older ones were gzipped.
	if [ "$(head -c2 "$k" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
		zcat "$k" >"$image.tmp"
	else
		cp "$k" "$image.tmp"
	fi
	mv "$image.tmp" "$image"
	rm -rf "$cache/kpkg"
fi
if [ ! -x "$cache/busybox" ]; then
	rm -rf "$cache/bb"
	dpkg-deb -x "$(ls "$cache"/busybox-static_*.deb | head -1)" "$cache/bb"
	cp "$cache/bb/bin/busybox" "$cache/busybox"
	rm -rf "$cache/bb"
fi

# --- libvcpu and test_real_kvm for aarch64 -------------------------------------

cross=$work/build
if [ ! -f "$cross/build.ninja" ]; then
	meson setup "$cross" "$src" --cross-file "$src/cross/aarch64-linux-gnu.ini" \
		-Dtests=enabled -Dexamples=false >"$work/setup.log" 2>&1 ||
		bail "meson setup of the aarch64 build failed: see $work/setup.log"
fi
ninja -C "$cross" tests/test_real_kvm >"$work/ninja.log" 2>&1 ||
	bail "building test_real_kvm for aarch64 failed: see $work/ninja.log"

# --- the initramfs -----------------------------------------------------------

root=$work/rootfs-$mode
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib}
cp "$cache/busybox" "$root/bin/busybox"
cp "$src/tests/nested-arm64/init" "$root/init"
cp "$cross/tests/test_real_kvm" "$root/test_real_kvm"
chmod +x "$root/init"

# The program's shared libraries (and theirs), from the cross toolchain
# first: it was linked against that libc.
libdirs=(/usr/aarch64-linux-gnu/lib /usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu)
copy_needed() {
	local lib dir
	for lib in $(aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		[ -e "$root/lib/$lib" ] && continue
		for dir in "${libdirs[@]}"; do
			if [ -e "$dir/$lib" ]; then
				cp -L "$dir/$lib" "$root/lib/$lib"
				copy_needed "$root/lib/$lib"
				continue 2
			fi
		done
		bail "no aarch64 $lib for the initramfs"
	done
}
copy_needed "$root/test_real_kvm"
cp -L /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 "$root/lib/" ||
	bail "no aarch64 dynamic loader (libc6-dev-arm64-cross)"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initrd-$mode.gz")
flock -u 9

# --- boot ----------------------------------------------------------------------

# -nic none: without it QEMU wants an option ROM Debian does not install.
# pauth-impdef=on: a cheaper pointer-authentication algorithm, ~2.5x faster TCG.
start=$(date +%s%N)
rc=0
timeout 600 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
	-cpu max,pauth-impdef=on -smp 2 -m 1G -nographic -no-reboot -nic none \
	-kernel "$image" -initrd "$work/initrd-$mode.gz" \
	-append "console=ttyAMA0 panic=-1 quiet $kvm_mode ${RK_ONLY:+rk_only=$RK_ONLY}" </dev/null >"$log" 2>&1 || rc=$?
end=$(date +%s%N)
tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"

echo "# $mode: $kpkg under qemu-system-aarch64, $(((end - start) / 1000000)) ms wall (qemu rc $rc)"
sed -n 's/^@KVM /# /p' "$log"
# "kvm [1]: VHE mode initialized successfully" / "kvm [1]: Hyp nVHE mode ...".
if [ "$mode" = nvhe ]; then want='Hyp nVHE mode initialized'; else want='VHE mode initialized'; fi
grep -q "^@KVM .*kvm \[[0-9]*\]: $want" "$log" ||
	bail "KVM did not report '$want' (see $log)"
grep -q '^@TAP ' "$log" || bail "the guest printed no test output (qemu rc $rc; see $log)"
# cmocka's own diagnostics are not TAP: pass them on as comments.  cmocka
# writes a skip as "not ok N # SKIP"; TAP's form is "ok N # SKIP".
sed -n 's/^@TAP //p' "$log" |
	sed -E -e '/^(ok|not ok|1\.\.|#|Bail out!)/!s/^/# /' -e 's/^not ok ([0-9]+ # SKIP)/ok \1/'
grep -q '^@RC 0$' "$log" || echo "# test_real_kvm failed inside the guest ($(sed -n 's/^@RC //p' "$log"))"

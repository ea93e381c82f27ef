# SPDX-License-Identifier: MIT
#
# Shared by the nested-arm64 harnesses (run.sh: the real-kvm cases;
# linux-boot.sh: minivmm booting Linux): the tools, Debian's arm64 kernel
# and busybox (apt-get download, cached), the aarch64 build of libvcpu, the
# initramfs and the QEMU boot.  Source it after setting:
#   src    the source tree          build  the (native) build directory
# It sets work (BUILDDIR/nested-arm64), cache, cross (the aarch64 build),
# image (the kernel Image), kpkg (its Debian package).

work=$build/nested-arm64
cache=$work/cache
cross=$work/build

. "$src/tests/nested-common.sh"

# --- tools -------------------------------------------------------------------

nested_tools=(qemu-system-aarch64 aarch64-linux-gnu-gcc aarch64-linux-gnu-readelf cpio gzip
	dpkg-deb apt-get apt-cache meson ninja flock)
nested_files=(/usr/lib/aarch64-linux-gnu/libcmocka.so.0 /usr/lib/aarch64-linux-gnu/libfdt.so.1
	/usr/include/libfdt.h)

fetch_arch=:arm64

need_tools() {
	local m
	if [ -n "$(missing_tools)" ]; then
		echo "# installing the nested-arm64 packages"
		"$src/tests/install-deps.sh" nested >&2 || true
	fi
	m=$(missing_tools | tr '\n' ' ')
	[ -z "$m" ] || bail "missing: $m(Debian: qemu-system-arm gcc-aarch64-linux-gnu cpio" \
		"libcmocka-dev:arm64 libfdt1:arm64 libfdt-dev; tests/install-deps.sh nested)"
}

# --- Debian's arm64 kernel and busybox ---------------------------------------

need_kernel() {
	local k
	# linux-image-6.12-arm64 is a meta package: it names the versioned image,
	# whose -unsigned variant carries the uncompressed arm64 Image.
	kpkg=$(apt-cache depends linux-image-6.12-arm64:arm64 2>/dev/null |
		awk '/Depends: linux-image-6\.12\./ { sub(":arm64", "", $2); print $2 "-unsigned"; exit }')
	[ -n "$kpkg" ] || bail "apt knows no linux-image-6.12-arm64:arm64" \
		"(needs bookworm-security, dpkg --add-architecture arm64 and apt-get update)"
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
}

# --- the aarch64 build ---------------------------------------------------------

# need_build TARGET...: ninja targets of the aarch64 build.
need_build() {
	# libfdt-dev:arm64 cannot be installed beside the native libfdt-dev (they
	# conflict), so the aarch64 build links the runtime libfdt1:arm64 through
	# a libfdt.so link of its own; the header is the native package's.
	mkdir -p "$work/arm64-lib"
	ln -sf /usr/lib/aarch64-linux-gnu/libfdt.so.1 "$work/arm64-lib/libfdt.so"
	if [ ! -f "$cross/build.ninja" ]; then
		meson setup "$cross" "$src" --cross-file "$src/cross/aarch64-linux-gnu.ini" \
			-Dtests=enabled -Dexamples=true -Dc_link_args="-L$work/arm64-lib" \
			>"$work/setup.log" 2>&1 ||
			bail "meson setup of the aarch64 build failed: see $work/setup.log"
	fi
	ninja -C "$cross" "$@" >"$work/ninja.log" 2>&1 ||
		bail "building $* for aarch64 failed: see $work/ninja.log"
}

# Everything before the boot, once at a time (the meson tests may overlap).
prepare() {
	mkdir -p "$cache"
	take_lock
	need_tools
	need_kernel
	need_build "$@"
}

# --- initramfs ------------------------------------------------------------------

# new_root DIR: an empty root with busybox.
new_root() {
	rm -rf "$1"
	mkdir -p "$1"/{bin,dev,proc,sys,tmp,lib}
	cp "$cache/busybox" "$1/bin/busybox"
}

# add_program ROOT FILE: FILE in ROOT/, with its shared libraries and loader,
# from the cross toolchain first (it was linked against that libc).
add_program() {
	local root=$1 prog=$2
	cp "$prog" "$root/"
	copy_needed "$root" "$prog"
	cp -L /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 "$root/lib/" ||
		bail "no aarch64 dynamic loader (libc6-dev-arm64-cross)"
}

copy_needed() {
	local root=$1 lib dir
	local dirs=("$cross/lib" /usr/aarch64-linux-gnu/lib /usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu)
	for lib in $(aarch64-linux-gnu-readelf -d "$2" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		[ -e "$root/lib/$lib" ] && continue
		for dir in "${dirs[@]}"; do
			if [ -e "$dir/$lib" ]; then
				cp -L "$dir/$lib" "$root/lib/$lib"
				copy_needed "$root" "$root/lib/$lib"
				continue 2
			fi
		done
		bail "no aarch64 $lib for the initramfs"
	done
}

# --- boot ------------------------------------------------------------------------

# boot INITRD LOG MEM "KERNEL ARGS": qemu-system-aarch64 with EL2, console to LOG.
# -nic none: without it QEMU wants an option ROM Debian does not install.
# pauth-impdef=on: a cheaper pointer-authentication algorithm, ~2.5x faster TCG.
boot() {
	local start end rc=0 pid
	boot_lockup=0
	start=$(date +%s%N)
	timeout 600 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
		-cpu max,pauth-impdef=on -smp 2 -m "$3" -nographic -no-reboot -nic none \
		-kernel "$image" -initrd "$1" -append "console=ttyAMA0 panic=-1 quiet $4" \
		</dev/null >"$2" 2>&1 &
	pid=$!
	# The emulated machine's own kernel can lock up under TCG (its watchdog
	# says so; nothing of libvcpu runs there): stop it at once instead of
	# at the timeout, and say so (boot_lockup) so a caller may boot again.
	while kill -0 "$pid" 2>/dev/null; do
		if grep -q 'Watchdog detected hard LOCKUP\|soft lockup - CPU#' "$2" 2>/dev/null; then
			boot_lockup=1
			kill "$pid" 2>/dev/null || true
			break
		fi
		sleep 1
	done
	wait "$pid" || rc=$?
	end=$(date +%s%N)
	tr -d '\r' <"$2" >"$2.tmp" && mv "$2.tmp" "$2"
	boot_ms=$(((end - start) / 1000000))
	boot_rc=$rc
}

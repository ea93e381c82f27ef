# SPDX-License-Identifier: MIT
#
# Shared by the nested-x86 harnesses (run.sh: the real-kvm cases;
# linux-boot.sh: minivmm booting Linux): the tools, Debian 12's x86_64 cloud
# kernel with its KVM modules and busybox (apt-get download, cached), the
# initramfs and the QEMU boot.  Source it after setting:
#   src    the source tree          build  the (native) build directory
# It sets work (BUILDDIR/nested-x86), cache, kpkg (the kernel's Debian
# package), bzimage, kmods (the directory of irqbypass.ko, kvm.ko,
# kvm-amd.ko).
#
# The first-level machine (L1) is qemu-system-x86_64 with software emulation
# (TCG), which emulates AMD SVM with nested paging: Linux's real kvm_amd
# driver loads in it, whatever the host has.  -accel tcg is explicit because
# a host may have a /dev/kvm of its own that cannot run SVM guests.

work=$build/nested-x86
cache=$work/cache

. "$src/tests/nested-common.sh"

# --- tools -------------------------------------------------------------------

nested_tools=(qemu-system-x86_64 cpio gzip dpkg-deb apt-get apt-cache flock timeout ldd)

nested_files=(/lib64/ld-linux-x86-64.so.2)
fetch_arch=

need_tools() {
	local m
	if [ -n "$(missing_tools)" ]; then
		echo "# installing the nested-x86 packages"
		"$src/tests/install-deps.sh" nested-x86 >&2 || true
	fi
	m=$(missing_tools | tr '\n' ' ')
	[ -z "$m" ] || bail "missing: $m(Debian: qemu-system-x86 cpio;" \
		"tests/install-deps.sh nested-x86)"
}

# --- Debian's x86_64 cloud kernel and busybox ------------------------------------

need_kernel() {
	local x m
	# linux-image-cloud-amd64 is a meta package naming the versioned image
	# (linux-image-6.1.0-N-cloud-amd64).  Its KVM is modular: kvm.ko and
	# kvm-amd.ko, which needs irqbypass.ko.  The -unsigned variant has the
	# same files without the signing shim's dependencies.
	kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$kpkg" ] || bail "apt knows no linux-image-cloud-amd64 (apt-get update?)"
	if apt-cache show "$kpkg-unsigned" >/dev/null 2>&1; then
		kpkg=$kpkg-unsigned
	fi
	bzimage=$cache/$kpkg/bzImage
	kmods=$cache/$kpkg
	if [ ! -s "$bzimage" ] || [ ! -s "$kmods/kvm-amd.ko" ]; then
		fetch "$kpkg"
		x=$cache/kpkg
		rm -rf "$x" "$cache/${kpkg:?}"
		mkdir -p "$cache/$kpkg"
		dpkg-deb -x "$(ls "$cache/${kpkg}"_*.deb | head -1)" "$x"
		for m in virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd; do
			cp "$x"/lib/modules/*/kernel/$m.ko "$kmods/" ||
				bail "$kpkg has no $m.ko"
		done
		# Last: its presence says the cache entry is complete.
		cp "$(ls "$x"/boot/vmlinuz-* | head -1)" "$bzimage.tmp"
		mv "$bzimage.tmp" "$bzimage"
		rm -rf "$x" "$cache/${kpkg}"_*.deb
	fi
	if [ ! -x "$cache/busybox" ]; then
		fetch busybox-static
		rm -rf "$cache/bb"
		dpkg-deb -x "$(ls "$cache"/busybox-static_*.deb | head -1)" "$cache/bb"
		cp "$cache/bb/bin/busybox" "$cache/busybox"
		rm -rf "$cache/bb" "$cache"/busybox-static_*.deb
	fi
}

# Everything before the boot, once at a time (the meson tests may overlap).
prepare() {
	mkdir -p "$cache"
	take_lock
	need_tools
	need_kernel
}

# --- initramfs ------------------------------------------------------------------

# new_root DIR: an empty root with busybox and the KVM modules in /mods.
new_root() {
	rm -rf "$1"
	mkdir -p "$1"/{bin,dev,proc,sys,tmp,mods,lib64,lib/x86_64-linux-gnu}
	cp "$cache/busybox" "$1/bin/busybox"
	cp "$kmods"/*.ko "$1/mods/"
}

# add_program ROOT FILE: FILE in ROOT/, with the shared libraries ldd finds
# for it (libvcpu.so.1 from the build's lib/ through its RUNPATH, the rest
# from the host) in the loader's default directory, and the loader.
add_program() {
	local root=$1 prog=$2 libs lib
	[ -x "$prog" ] || bail "$prog was not built"
	cp "$prog" "$root/"
	libs=$(ldd "$prog") || bail "ldd $prog failed"
	grep -q 'not found' <<<"$libs" && bail "$prog: a library is missing: $libs"
	for lib in $(awk '/=> \// { print $3 }' <<<"$libs"); do
		cp -L "$lib" "$root/lib/x86_64-linux-gnu/"
	done
	cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
}

# --- boot ------------------------------------------------------------------------

# boot INITRD LOG MEM "KERNEL ARGS" LIMIT STALL: the first-level machine,
# its serial console to LOG.  The inits mark every line meant for the
# harness with a leading '@'; a watchdog stops QEMU when no such line came
# for STALL seconds (a hung case or boot) or after LIMIT seconds in all, and
# sets boot_stalled (the seconds it waited) or boot_timed_out.
#
# -smp 1: with two emulated CPUs the first-level kernel sometimes locked up
# (soft lockup inside KVM_RUN) under TCG; one CPU has not.
# -nic none: without it QEMU wants a network option ROM.
# The guest clock of TCG follows the host's, so the inits' timeouts are
# about wall-clock seconds.
boot() {
	local initrd=$1 log=$2 mem=$3 args=$4 limit=$5 stall=$6
	local start end rc=0 pid seen=0 n last=$SECONDS
	boot_stalled=
	boot_timed_out=
	start=$(date +%s%N)
	timeout -k 10 "$limit" qemu-system-x86_64 -accel tcg -M q35 -cpu max -smp 1 -m "$mem" \
		-nographic -no-reboot -nic none -kernel "$bzimage" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet $args" </dev/null >"$log" 2>&1 &
	pid=$!
	# Whatever stops this script also stops QEMU.
	trap 'kill $pid 2>/dev/null || true' EXIT
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		n=$(grep -c '^@' "$log" || true)
		if [ "$n" != "$seen" ]; then
			seen=$n
			last=$SECONDS
		elif [ $((SECONDS - last)) -ge "$stall" ]; then
			boot_stalled=$((SECONDS - last))
			kill "$pid" 2>/dev/null || true
		fi
	done
	wait "$pid" || rc=$?
	trap - EXIT
	end=$(date +%s%N)
	[ "$rc" != 124 ] || boot_timed_out=1
	tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
	boot_ms=$(((end - start) / 1000000))
	boot_rc=$rc
}

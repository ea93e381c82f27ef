#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Build rustvmm: bindgen makes the bindings from the public headers, rustc
# (Debian's, 1.63) builds main.rs + vcpu.rs against libvcpu and libvcpu-mock.
# No cargo, no crate from outside Debian.  Exit 77 when rustc or bindgen is
# missing (Debian: rustc, bindgen; tests/install-deps.sh rust).
#
# usage: build.sh INCLUDE_DIR LIB_DIR OUT_DIR      (prints the program's path)
set -euo pipefail
inc=$1 libdir=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
# Debian's own tools first: a rustup toolchain earlier in PATH is not the target.
rustc=$(command -v /usr/bin/rustc || command -v rustc || true)
bindgen=$(command -v /usr/bin/bindgen || command -v bindgen || true)
if [ -z "$rustc" ] || [ -z "$bindgen" ]; then
	echo "rust: rustc or bindgen is not installed (Debian: rustc bindgen): skipped" >&2
	exit 77
fi
mkdir -p "$out"
printf '#include <vcpu/vcpu.h>\n#include <vcpu/mock.h>\n' >"$out/wrapper.h"
"$bindgen" "$out/wrapper.h" -o "$out/bindings.rs" --no-layout-tests \
	--allowlist-function 'vcpu_.*' --allowlist-type 'vcpu_.*' --allowlist-var 'VCPU_.*' \
	-- -I"$inc" >&2
VCPU_BINDINGS=$out/bindings.rs "$rustc" --edition 2021 -O -D warnings \
	-o "$out/rustvmm" "$here/main.rs" -L "native=$libdir" -l dylib=vcpu-mock -l dylib=vcpu >&2
echo "$out/rustvmm"

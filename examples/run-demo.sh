#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Build and run examples/demo: a real x86_64 guest with /dev/kvm, else the
# mock KVM driver's scripted guest.  Installs missing Debian packages first
# (compiler, meson, ninja).  Extra arguments go to the demo (e.g. --mock).
set -euo pipefail
cd "$(dirname "$0")/.."
tests/install-deps.sh demo
if [ ! -f build-demo/build.ninja ]; then
	meson setup build-demo -Dtests=disabled >/dev/null
fi
ninja -C build-demo examples/demo >/dev/null
exec ./build-demo/examples/demo "$@"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run one libFuzzer target for a bounded time: new inputs go to a corpus in
# the build directory, the seeds in fuzz/corpus/<name> are only read, and a
# crash leaves its reproducer in the build directory.
#
# usage: run.sh TARGET SEED_DIR OUT_DIR SECONDS
set -euo pipefail
target=$1 seeds=$2 out=$3 secs=$4
mkdir -p "$out/corpus" "$out/artifacts"
exec "$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
	-artifact_prefix="$out/artifacts/" "$out/corpus" "$seeds"

#!/usr/bin/env bash
# Runs the storage engine benchmark (bench/engine_bench.c) with the
# figures of issue 2: 1M keys (16-byte keys, 100-byte values), sync=always
# with 1/4/16 writers for 3 s each, reopen of 1M and 10M keys; every row
# is the best of REPS (default 2) runs, the machine being shared.
#
#   bench/engine_bench.sh [build-dir] [extra engine_bench args...]
#
# BENCH_DIR (default /tmp/rk-engine-bench) must have room for ~3 GB.
# QUICK=1 runs 100k keys and a 1M reopen only.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
shift || true
BIN="$BUILD/engine_bench"
if [ ! -x "$BIN" ]; then
  cmake -S . -B "$BUILD" -DRK_BENCH=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" --target engine_bench
fi
DIR="${BENCH_DIR:-/tmp/rk-engine-bench}"
echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
if [ "${QUICK:-0}" = 1 ]; then
  exec "$BIN" -n 100000 -s 1 -r 1000000 -d "$DIR" "$@"
fi
exec "$BIN" -n 1000000 -s 3 -r 1000000,10000000 -R "${REPS:-2}" -d "$DIR" "$@"

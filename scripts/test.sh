#!/usr/bin/env bash
# Runs every test CI runs, against the ASan+UBSan build in build-san/:
# unit tests (ctest/cmocka), integration tests (pytest + real ringkvd), the
# Jepsen-style cluster test, the deterministic cluster simulator, a short
# run of every fuzz target on its
# corpus, and the threaded storage tests under ThreadSanitizer.  Prints a summary line
# "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
SAN_BUILD="${SAN_BUILD:-build-san}"
PYTHON="${PYTHON:-/usr/bin/python3}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
passed=0

step() {
  local name="$1"; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

step lint-sans-io bash scripts/lint-sans-io.sh
step unit bash -c "cd '$SAN_BUILD' && ctest --output-on-failure -j 2"
# Two pytest workers (pytest-xdist; RK_TEST_JOBS): most integration tests
# wait on real processes (failure detection, restarts), so two at a time
# took 320 s where one at a time took 599 s, on 2 cores.
step integration env RINGKV_BUILD="$PWD/$SAN_BUILD" "$PYTHON" -m pytest -q \
  -p no:cacheprovider -n "${RK_TEST_JOBS:-2}" tests/integration
# Jepsen-style randomized cluster test (tests/cluster/test_jepsen.py):
# 5 nodes under a nemesis for RINGKV_JEPSEN_SECONDS (60), 0 lost writes.
step cluster env RINGKV_BUILD="$PWD/$SAN_BUILD" "$PYTHON" -m pytest -q -s \
  -p no:cacheprovider tests/cluster
# The deterministic cluster simulator (tests/sim): 200 seeds x 20k steps
# and the lww negative control (scripts/sim.sh).
step sim bash scripts/sim.sh "$SAN_BUILD"
step fuzz-smoke make --no-print-directory fuzz-smoke
step tsan make --no-print-directory tsan

echo "stages: ${passed} passed, ${#failed[@]} failed"
if [ ${#failed[@]} -ne 0 ]; then
  echo "failed stages: ${failed[*]}"
  exit 1
fi

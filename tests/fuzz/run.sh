#!/usr/bin/env bash
# run.sh - run every libFuzzer target of a build for a fixed time
# (TESTING.md B5).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS
#
# For each executable BUILD_DIR/fuzz_<name>, two targets at a time:
#   - corpus: a temporary work directory (new inputs go there, so the repo
#     is not touched) plus tests/fuzz/corpus/<name>/ read-only (created
#     empty if missing);
#   - dictionary tests/fuzz/<name>.dict when it exists;
#   - -max_total_time=SECONDS -print_final_stats=1, artifacts in the
#     temporary directory.
# Prints one line per target:
#   fuzz <name>: execs=N exec_per_s=N corpus=N crashes=N
# A crash, leak, timeout or OOM input is copied to
# tests/fuzz/crashes/<name>-<sha1>.bin and the script exits 1 at the end;
# so does a target that exits non-zero without leaving an input.  Inputs
# already in tests/fuzz/crashes/<name>-*.bin (regressions, kept once the
# bug is fixed) are replayed after fuzzing and must pass.  Exit 0
# when every target ran clean.  FUZZ_JOBS (default 2) sets the parallelism,
# FUZZ_ARGS adds libFuzzer flags.
set -u

usage() {
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
}

[ $# -eq 2 ] || usage
build_dir=$1
seconds=$2
case $seconds in
'' | *[!0-9]*) usage ;;
esac
[ -d "$build_dir" ] || {
    echo "run.sh: no build directory $build_dir" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
jobs=${FUZZ_JOBS:-2}
extra_args=${FUZZ_ARGS:-}

targets=()
while IFS= read -r f; do
    targets+=("$f")
done < <(find "$build_dir" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
if [ ${#targets[@]} -eq 0 ]; then
    echo "run.sh: no fuzz_* executables in $build_dir (configure with" \
        "CC=clang -DRK_FUZZ=ON)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rk-fuzz.XXXXXX")
# shellcheck disable=SC2317 # called through trap
cleanup() {
    local pid
    for pid in $(jobs -rp); do # our own run_one subshells, by PID
        kill -TERM "$pid" 2>/dev/null
    done
    wait
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_one NAME BINARY: runs the target, writes $tmp/NAME.result
run_one() {
    local name=$1 bin=$2
    local work=$tmp/$name/work art=$tmp/$name/art/ log=$tmp/$name/log
    local corpus=$here/corpus/$name
    mkdir -p "$work" "$art" "$corpus"
    local args=(-max_total_time="$seconds" -print_final_stats=1
        -timeout=30 -artifact_prefix="$art")
    if [ -f "$here/$name.dict" ]; then
        args+=(-dict="$here/$name.dict")
    fi
    # shellcheck disable=SC2206 # word splitting of FUZZ_ARGS is wanted
    args+=($extra_args)
    # The outer timeout only guards against a wedged process.
    timeout -k 10 $((seconds + 120)) "$bin" "${args[@]}" "$work" "$corpus" \
        >"$log" 2>&1 &
    local tpid=$!
    # Stopped by run.sh: stop the fuzzer too (timeout forwards TERM).
    trap 'kill -TERM $tpid 2>/dev/null; wait $tpid; exit 143' TERM
    wait $tpid
    local rc=$?

    # Replay the crash regressions kept in the repo for this target.
    local regressions=()
    for f in "$here/crashes/$name"-*.bin; do
        [ -f "$f" ] && regressions+=("$f")
    done
    if [ ${#regressions[@]} -gt 0 ] && [ $rc -eq 0 ]; then
        if ! timeout -k 10 300 "$bin" -timeout=30 "${regressions[@]}" \
            >"$log.replay" 2>&1; then
            rc=1
            {
                echo "fuzz $name: a saved crash input still fails:"
                tail -n 20 "$log.replay" | sed 's/^/    /'
            } >>"$tmp/$name.notes"
        fi
    fi

    local execs rate corp crashes=0
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' "$log" | tail -1)
    [ -n "$corp" ] || corp=$(find "$work" "$corpus" -type f | wc -l)
    for f in "$art"*; do
        [ -f "$f" ] || continue
        mkdir -p "$here/crashes"
        local sum
        sum=$(sha1sum "$f" | cut -c1-16)
        cp "$f" "$here/crashes/$name-$sum.bin"
        echo "fuzz $name: $(basename "$f") saved as" \
            "tests/fuzz/crashes/$name-$sum.bin" >>"$tmp/$name.notes"
        crashes=$((crashes + 1))
    done
    if [ "$crashes" -gt 0 ] || [ $rc -ne 0 ]; then
        {
            echo "fuzz $name: exit status $rc; log tail:"
            tail -n 40 "$log" | sed 's/^/    /'
        } >>"$tmp/$name.notes"
    fi
    echo "fuzz $name: execs=${execs:-0} exec_per_s=${rate:-0}" \
        "corpus=${corp:-0} crashes=$crashes" >"$tmp/$name.result"
    if [ "$crashes" -gt 0 ] || [ $rc -ne 0 ]; then
        echo fail >"$tmp/$name.failed"
    fi
}

for bin in "${targets[@]}"; do
    name=$(basename "$bin")
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n
    done
    echo "fuzz $name: running for ${seconds}s" >&2
    run_one "$name" "$bin" &
done
wait

status=0
for bin in "${targets[@]}"; do
    name=$(basename "$bin")
    if [ -f "$tmp/$name.result" ]; then
        cat "$tmp/$name.result"
    else
        echo "fuzz $name: execs=0 exec_per_s=0 corpus=0 crashes=0 (no result)"
        status=1
    fi
    [ -f "$tmp/$name.notes" ] && cat "$tmp/$name.notes" >&2
    [ -f "$tmp/$name.failed" ] && status=1
done
exit $status

#!/usr/bin/env bash
# make cluster / make cluster-stop: a local 3-node ringkv cluster.
#
#   scripts/cluster.sh start [BUILD_DIR]   start 3 nodes, join them, wait for
#                                          ring agreement, print the status
#   scripts/cluster.sh stop                stop the nodes by PID (SIGTERM,
#                                          SIGKILL after 10 s)
#
# Node i (1..3) listens for RESP on 127.0.0.1:(7369 + 10*i), i.e. 7379,
# 7389, 7399, and for peers on RESP port + 2; its data dir, log and PID file
# are under ./data/node$i. A restart reuses the data dirs, so the nodes come
# back with their saved cluster state and no second join is needed.
# Environment: CLUSTER_DIR (./data), CLUSTER_ARGS (extra ringkvd flags),
# CLUSTER_NODES (3), CLUSTER_BASE_PORT (7379).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-start}"
BUILD="${2:-build}"
DIR="${CLUSTER_DIR:-data}"
NODES="${CLUSTER_NODES:-3}"
BASE="${CLUSTER_BASE_PORT:-7379}"
CLI="$BUILD/ringkv"

port_of() { echo $((BASE + 10 * ($1 - 1))); }

info_field() { # port field -> value or empty
    "$CLI" -p "$1" info cluster 2>/dev/null | tr -d '\r' |
        sed -n "s/^$2://p"
}

stop_nodes() {
    local i pidf pid waited
    for i in $(seq 1 "$NODES"); do
        pidf="$DIR/node$i/ringkvd.pid"
        [ -f "$pidf" ] || continue
        pid=$(cat "$pidf")
        if kill -0 "$pid" 2>/dev/null &&
            grep -q ringkvd "/proc/$pid/cmdline" 2>/dev/null; then
            kill -TERM "$pid"
            waited=0
            while kill -0 "$pid" 2>/dev/null && [ $waited -lt 100 ]; do
                sleep 0.1; waited=$((waited + 1))
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "node$i (pid $pid) did not stop in 10 s: SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
            echo "stopped node$i (pid $pid)"
        fi
        rm -f "$pidf"
    done
}

start_nodes() {
    local i port pidf waited
    for i in $(seq 1 "$NODES"); do
        port=$(port_of "$i")
        pidf="$DIR/node$i/ringkvd.pid"
        mkdir -p "$DIR/node$i"
        if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
            echo "node$i already running (pid $(cat "$pidf"))"
            continue
        fi
        # shellcheck disable=SC2086
        nohup "$BUILD/ringkvd" --port "$port" --data-dir "$DIR/node$i" \
            ${CLUSTER_ARGS:-} >"$DIR/node$i/ringkvd.log" 2>&1 </dev/null &
        echo $! >"$pidf"
        waited=0
        until "$CLI" -p "$port" ping >/dev/null 2>&1; do
            if ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
                echo "node$i failed to start; last log lines:" >&2
                tail -5 "$DIR/node$i/ringkvd.log" >&2
                exit 1
            fi
            [ $waited -lt 300 ] || { echo "node$i: no answer on $port" >&2; exit 1; }
            sleep 0.1; waited=$((waited + 1))
        done
        echo "started node$i: RESP 127.0.0.1:$port, peer $((port + 2)), pid $(cat "$pidf")"
    done
}

join_nodes() {
    local seed_peer i port members
    seed_peer="127.0.0.1:$(($(port_of 1) + 2))"
    for i in $(seq 2 "$NODES"); do
        port=$(port_of "$i")
        members=$(info_field "$port" cluster_members)
        if [ "${members:-1}" -gt 1 ]; then
            continue # saved cluster state from an earlier run
        fi
        # the cluster's secret: node 1's (made at its first start), as a
        # user adds a node (docs/security.md); none to pass when
        # CLUSTER_ARGS gives every node --cluster-secret-file
        if [ -f "$DIR/node1/cluster.secret" ]; then
            "$CLI" -p "$port" cluster join "$seed_peer" \
                --secret-file "$DIR/node1/cluster.secret" >/dev/null
        else
            "$CLI" -p "$port" cluster join "$seed_peer" >/dev/null
        fi
    done
}

wait_agreement() {
    local t0=$SECONDS i port ok
    while :; do
        ok=1
        for i in $(seq 1 "$NODES"); do
            port=$(port_of "$i")
            [ "$(info_field "$port" cluster_members)" = "$NODES" ] || ok=0
            [ "$(info_field "$port" cluster_members_up)" = "$NODES" ] || ok=0
            [ "$(info_field "$port" cluster_agreement)" = "1" ] || ok=0
        done
        [ $ok = 1 ] && return 0
        if [ $((SECONDS - t0)) -ge 30 ]; then
            echo "the nodes did not agree on the ring within 30 s" >&2
            return 1
        fi
        sleep 0.2
    done
}

case "$cmd" in
start)
    [ -x "$BUILD/ringkvd" ] || { echo "no $BUILD/ringkvd: run make first" >&2; exit 1; }
    start_nodes
    join_nodes
    wait_agreement
    "$CLI" -p "$(port_of 1)" cluster status
    echo
    echo "Any node coordinates any key, e.g.:"
    echo "  redis-cli -p $(port_of 2) set k v; redis-cli -p $(port_of "$NODES") get k"
    echo "  $CLI -p $(port_of 1) cluster status"
    if [ -n "${CLUSTER_DIR:-}" ]; then
        echo "Logs: $DIR/node*/ringkvd.log. Stop with: CLUSTER_DIR=$CLUSTER_DIR make cluster-stop"
    else
        echo "Logs: $DIR/node*/ringkvd.log. Stop with: make cluster-stop"
    fi
    ;;
stop)
    stop_nodes
    ;;
*)
    echo "usage: scripts/cluster.sh start|stop [BUILD_DIR]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# make bench: every side-by-side benchmark, printing tables.
#   bench/run.sh BUILD_DIR
# Set BENCH_QUICK=1 for a short run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
quick=()
[ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
status=0
if [ -x bench/engine_bench.sh ] || [ -f bench/engine_bench.sh ]; then
  echo "## Storage engine (bench/engine_bench.sh)"
  bash bench/engine_bench.sh "$BUILD" || status=1
fi
echo
echo "## ringkvd vs redis-server (bench/redis_bench.py)"
/usr/bin/python3 bench/redis_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## Hashes, sets and counters: ringkvd vs redis-server (bench/collections_bench.py)"
/usr/bin/python3 bench/collections_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## 3-node cluster vs single node (bench/cluster_bench.py)"
/usr/bin/python3 bench/cluster_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## 3-node cluster, peers over mutual TLS vs plain (bench/peer_tls_bench.py)"
/usr/bin/python3 bench/peer_tls_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## Large values: 3-node cluster vs single node, MB/s (bench/largevalue_bench.py)"
/usr/bin/python3 bench/largevalue_bench.py "$BUILD" --extra "--cluster-max-value-bytes 128mb" --sizes 1,16,64,100 ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## ringkv 3-node clusters vs Redis Cluster 3+3 (bench/rediscluster_bench.py)"
/usr/bin/python3 bench/rediscluster_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## Partition handoff: join of a 4th node into a loaded cluster (bench/handoff_bench.py)"
/usr/bin/python3 bench/handoff_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## Anti-entropy: idle cost and divergence repair, 3 nodes (bench/aae_scale_bench.py)"
# 1M keys, about 5 minutes (289 s on the 2-core VM);
# --quick: 50,000 keys, one 20 s idle sample, no paused or aae-off sample
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  /usr/bin/python3 bench/aae_scale_bench.py "$BUILD" --quick || status=1
else
  /usr/bin/python3 bench/aae_scale_bench.py "$BUILD" --keys 1000000 || status=1
fi
echo
echo "## TLS for RESP clients: ringkvd vs redis-server, TLS and plain (bench/tls_bench.py)"
/usr/bin/python3 bench/tls_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## Allocations per request on the cluster path (bench/alloc_bench.py)"
/usr/bin/python3 bench/alloc_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## libringkv vs hiredis, one node, SET+GET loop (bench/libringkv_bench.py)"
/usr/bin/python3 bench/libringkv_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## HTTP /kv vs RESP on one node (bench/http_bench.py)"
/usr/bin/python3 bench/http_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
echo
echo "## GET /metrics latency, live and with 10,000 series (bench/metrics_bench.py)"
/usr/bin/python3 bench/metrics_bench.py "$BUILD" ${quick[@]+"${quick[@]}"} || status=1
exit $status

#!/usr/bin/env python3
"""Allocations per request on the cluster path (issue 11).

Starts a 3-node ringkv cluster (N3 R2 W2, --sync none) with
RINGKV_COUNT_ALLOCS=1, which makes every ringkvd count its own
allocations (rk_malloc/rk_calloc/rk_realloc; libevent's and jansson's are
not counted) and report them as INFO memory's allocations_counted.  Runs
redis-benchmark SET and GET (-c 50 -d 100 -r 1000000) against one node at
-P 1 and -P 16 and prints, per workload, the allocations all three nodes
made divided by the requests served: what one coordinated request costs
the whole cluster (the coordinator, its replicas, and their replies).

Usage: bench/alloc_bench.py BUILD_DIR [--requests N] [--quick]
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rediscluster_bench import (info_fields, redis_cli,  # noqa: E402
                                start_ringkv_cluster)
from redis_bench import benchmark, machine  # noqa: E402


def allocs(port):
    kv = info_fields(redis_cli(port, "info", "memory"))
    if "allocations_counted" not in kv:
        raise RuntimeError("no allocations_counted in INFO (old binary?)")
    return int(kv["allocations_counted"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n = 20000 if a.quick else a.requests
    tmp = tempfile.mkdtemp(prefix="rk-alloc-")
    procs = []
    try:
        os.environ["RINGKV_COUNT_ALLOCS"] = "1"  # inherited by the nodes
        try:
            ports = start_ringkv_cluster(a.build, tmp, "alloc", 2, 2, procs)
        finally:
            del os.environ["RINGKV_COUNT_ALLOCS"]
        print("machine: %s" % machine())
        print("3-node cluster N3 R2 W2, --sync none, redis-benchmark -c 50 "
              "-d 100 -r 1000000 -n %d against one node" % n)
        print()
        print("| workload | ops/s | allocations / request (3 nodes) |")
        print("|---|---:|---:|")
        for test in ("set", "get"):
            for pipe in (1, 16):
                before = sum(allocs(p) for p in ports)
                rps, _, _ = benchmark(ports[0], test, pipe, n)
                after = sum(allocs(p) for p in ports)
                print("| %s -P %d | %.0f | %.1f |" % (
                    test.upper(), pipe, rps, (after - before) / n))
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

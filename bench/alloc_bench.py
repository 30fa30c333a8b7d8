#!/usr/bin/env python3
"""Allocations per request on the cluster path (issue 11).

Starts a 3-node ringkv cluster (N3 R2 W2, --sync none) with
RINGKV_COUNT_ALLOCS=1, which makes every ringkvd count its own
allocations (rk_malloc/rk_calloc/rk_realloc; libevent's and jansson's are
not counted) and report them as INFO memory's allocations_counted.  Runs
redis-benchmark SET and GET (-c 50 -d 100 -r 100000) against one node at
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
from cluster_bench import form_cluster  # noqa: E402
from redis_bench import Proc, benchmark, free_port, machine  # noqa: E402


def start(build, tmp, name):
    port, peer = free_port(), free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    argv = [os.path.join(build, "ringkvd"), "--port", str(port),
            "--peer-port", str(peer), "--http-port", str(free_port()),
            "--data-dir", os.path.join(d, "data"), "--sync", "none",
            "--n", "3", "--r", "2", "--w", "2", "--loglevel", "warn"]
    os.environ["RINGKV_COUNT_ALLOCS"] = "1"
    try:
        p = Proc(argv, port, os.path.join(d, "log"))
    finally:
        del os.environ["RINGKV_COUNT_ALLOCS"]
    p.peer = peer
    return p


def allocs(build, port):
    import subprocess
    out = subprocess.run([os.path.join(build, "ringkv"), "-p", str(port),
                          "info", "memory"], capture_output=True, text=True,
                         timeout=10).stdout
    for line in out.splitlines():
        if line.startswith("allocations_counted:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError("no allocations_counted in INFO (old binary?)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n = 20000 if a.quick else a.requests
    tmp = tempfile.mkdtemp(prefix="rk-alloc-")
    nodes = []
    try:
        for i in range(3):
            nodes.append(start(a.build, tmp, "n%d" % i))
        form_cluster(a.build, nodes)
        print("machine: %s" % machine())
        print("3-node cluster N3 R2 W2, --sync none, redis-benchmark -c 50 "
              "-d 100 -r 100000 -n %d against one node" % n)
        print()
        print("| workload | ops/s | allocations / request (3 nodes) |")
        print("|---|---:|---:|")
        for test in ("set", "get"):
            for pipe in (1, 16):
                before = sum(allocs(a.build, p.port) for p in nodes)
                rps, _, _ = benchmark(nodes[0].port, test, pipe, n)
                after = sum(allocs(a.build, p.port) for p in nodes)
                print("| %s -P %d | %.0f | %.1f |" % (
                    test.upper(), pipe, rps, (after - before) / n))
    finally:
        for p in nodes:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A 3-node ringkv cluster (N=3, R=2, W=2) against a single node, side by
side in one run, with the same redis-benchmark invocations.

Starts one single-node ringkvd and a 3-node cluster (joined with the real
CLI, waits for ring agreement) on free loopback ports, all with
--sync every:1000, then runs SET, GET and INCR (-c 50 -d 100 -r 1000000;
INCR counter:__rand_int__, a counter of issue 16 in the cluster) at -P 1
and -P 16, alternating single and cluster run by run:
  - "one node": one redis-benchmark against one cluster node;
  - "spread": three redis-benchmark processes at once, one per node, with
    the 50 clients split 17/17/16; ops/s is their sum, p50 the median of the
    three p50s, p99 the largest p99.
Prints a Markdown table with ops/s, p50/p99 and the ratio cluster/single.
All three nodes share this machine's cores and every write is applied three
times, so the ratio measures the cost of replication on one box, not the
scaling of a real cluster.  Servers are stopped by PID.

Usage: bench/cluster_bench.py BUILD_DIR [--requests N] [--quick]
       [--tests set,get,incr]
"""
import argparse
import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import (Proc, benchmark, cluster_secret_args,  # noqa: E402
                         free_port, machine)

CLIENTS = 50


def start_node(build, tmp, name, extra=()):
    port = free_port()
    peer = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    argv = [os.path.join(build, "ringkvd"), "--port", str(port),
            "--peer-port", str(peer), "--http-port", str(free_port()),
            "--data-dir", os.path.join(d, "data"),
            "--sync", "every:1000", "--loglevel", os.environ.get("RK_BENCH_LOGLEVEL", "warn")] + \
        cluster_secret_args() + list(extra)
    p = Proc(argv, port, os.path.join(d, "log"))
    p.peer = peer
    return p


def info_cluster(build, port):
    out = subprocess.run([os.path.join(build, "ringkv"), "-p", str(port),
                          "info", "cluster"], capture_output=True, text=True,
                         timeout=10).stdout
    kv = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.strip().split(":", 1)
            kv[k] = v
    return kv


def form_cluster(build, nodes):
    cli = os.path.join(build, "ringkv")
    seed = "127.0.0.1:%d" % nodes[0].peer
    for n in nodes[1:]:
        subprocess.run([cli, "-p", str(n.port), "cluster", "join", seed],
                       check=True, capture_output=True, timeout=30)
    end = time.time() + 30
    while time.time() < end:
        infos = [info_cluster(build, n.port) for n in nodes]
        if all(i.get("cluster_members") == str(len(nodes)) and
               i.get("cluster_members_up") == str(len(nodes)) and
               i.get("cluster_agreement") == "1" for i in infos):
            return
        time.sleep(0.2)
    raise RuntimeError("cluster did not agree within 30 s")


def spread(ports, test, pipeline, requests):
    """Three concurrent redis-benchmark runs, one per port."""
    split = [CLIENTS // len(ports) + (1 if i < CLIENTS % len(ports) else 0)
             for i in range(len(ports))]
    procs = []
    for port, c in zip(ports, split):
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
                "-t", test, "-c", str(c), "-d", "100", "-r", "1000000",
                "-n", str(requests * c // CLIENTS), "-P", str(pipeline),
                "--csv"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    rows = []
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise RuntimeError("redis-benchmark failed: %s" % err)
        head, data = list(csv.reader(io.StringIO(out)))[:2]
        rec = dict(zip(head, data))
        rows.append((float(rec["rps"]), float(rec["p50_latency_ms"]),
                     float(rec["p99_latency_ms"])))
    return (sum(r[0] for r in rows), statistics.median(r[1] for r in rows),
            max(r[2] for r in rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=300000)
    ap.add_argument("--quick", action="store_true", help="50k requests")
    ap.add_argument("--tests", default="set,get,incr",
                    help="redis-benchmark -t tests, comma-separated")
    a = ap.parse_args()
    if a.quick:
        a.requests = 50000
    tmp = tempfile.mkdtemp(prefix="ringkv-cbench-")
    nodes = []
    ok = True
    print("machine: %s" % machine())
    print("redis-benchmark -c %d -d 100 -r 1000000 -n %d; --sync every:1000; "
          "cluster N=3 R=2 W=2 on this one machine\n" % (CLIENTS, a.requests))
    print("| test | -P | driven | single ops/s | cluster ops/s | ratio | "
          "single p50/p99 ms | cluster p50/p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    try:
        single = start_node(a.build, tmp, "single")
        nodes.append(single)
        cl = [start_node(a.build, tmp, "node%d" % i,
                         ["--n", "3", "--r", "2", "--w", "2"])
              for i in (1, 2, 3)]
        nodes.extend(cl)
        form_cluster(a.build, cl)
        for test in a.tests.split(","):
            for pipe in (1, 16):
                s = benchmark(single.port, test, pipe, a.requests)
                c1 = benchmark(cl[0].port, test, pipe, a.requests)
                c3 = spread([n.port for n in cl], test, pipe, a.requests)
                for label, c in (("one node", c1), ("spread over 3", c3)):
                    print("| %s | %d | %s | %.0f | %.0f | %.2f | %.3f/%.3f | "
                          "%.3f/%.3f |" % (test.upper(), pipe, label, s[0],
                                           c[0], c[0] / s[0], s[1], s[2],
                                           c[1], c[2]))
                sys.stdout.flush()
    except Exception as e:  # print what failed, keep the exit code honest
        print("bench failed: %s" % e, file=sys.stderr)
        ok = False
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ringkv 3-node clusters against a Redis Cluster, side by side in one run,
with the same redis-benchmark load.

Starts, on free loopback ports with their own temp dirs:
  - a Redis Cluster of 3 masters + 3 replicas: six redis-server processes
    (--cluster-enabled yes --appendonly no --save ''), each with its own dir
    and nodes.conf, created with `redis-cli --cluster create ...
    --cluster-replicas 1 --cluster-yes`; it waits until every node reports
    cluster_state:ok and every replica's link to its master is up;
  - two 3-node ringkv clusters, --sync none, one with N3 R2 W2 (the default)
    and one with N3 R1 W1 (Redis Cluster's acknowledgement level: the master
    answers before its replica has the write), each joined with the ringkv
    CLI and waited on until all three nodes agree on the ring.
Then for SET and GET at -P 1 and -P 16 it runs three redis-benchmark
processes at once (-d 100 -r 1000000, 17/17/16 clients):
  - Redis Cluster: each with --cluster against a different master;
  - ringkv: one per node (any node coordinates any key);
  - ringkv N3R2W2 again with --cluster (issue 13: the ring answers CLUSTER
    SLOTS, so redis-benchmark routes each key to its slot's primary
    replica, one benchmark started against each node).
ops/s is the sum of the three, p50 the median of their p50s, p99 the
largest p99.  The three systems take turns workload by workload (the order
rotates), so background noise on this shared machine hits all of them.
Prints a Markdown table with the ringkv/Redis-Cluster ratios and whether
issue 11's targets are met; a missed target does not fail the benchmark.
Every server is stopped by PID, also on failure.

Usage: bench/rediscluster_bench.py BUILD_DIR [--requests N] [--quick]
"""
import argparse
import csv
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import (Proc, cluster_secret_args, free_port,  # noqa: E402
                         machine)
from cluster_bench import form_cluster, info_cluster  # noqa: E402

SPLIT = (17, 17, 16)  # clients of the three redis-benchmark processes
CLIENTS = sum(SPLIT)
WORKLOADS = [("set", 1), ("set", 16), ("get", 1), ("get", 16)]
SYSTEMS = ["redis", "r2w2", "r1w1", "r2w2c"]
# issue 11: minimum ringkv/Redis-Cluster ops/s ratio per (config, test, -P)
TARGETS = {
    ("r1w1", "set", 1): 1.0, ("r1w1", "set", 16): 1.0,
    ("r1w1", "get", 1): 1.0, ("r1w1", "get", 16): 1.0,
    ("r2w2", "set", 16): 1.0, ("r2w2", "get", 16): 0.5,
}
LABEL = {"redis": "Redis Cluster", "r2w2": "ringkv N3R2W2",
         "r1w1": "ringkv N3R1W1",
         "r2w2c": "ringkv N3R2W2 --cluster"}
# the N3R2W2 cluster again, driven as a Redis Cluster (issue 13): each
# redis-benchmark --cluster reads CLUSTER SLOTS and sends every key to the
# primary replica of its slot, which coordinates it itself (no extra hop)
CLUSTER_MODE = {"redis": True, "r2w2": False, "r1w1": False, "r2w2c": True}


def redis_cli(port, *args, timeout=10):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] +
                         list(args), capture_output=True, text=True,
                         timeout=timeout)
    return out.stdout


def info_fields(text):
    kv = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.strip().split(":", 1)
            kv[k] = v
    return kv


def start_redis_node(tmp, name, procs):
    port, bus = free_port(), free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--cluster-enabled", "yes", "--cluster-port", str(bus),
            "--cluster-config-file", "nodes.conf", "--dir", d,
            "--appendonly", "no", "--save", "", "--protected-mode", "no",
            "--loglevel", "warning"]
    p = Proc(argv, port, os.path.join(d, "log"))
    procs.append(p)
    return p


def start_redis_cluster(tmp, procs):
    """Six nodes, 3 masters + 3 replicas; returns the masters' ports."""
    nodes = [start_redis_node(tmp, "redis%d" % i, procs) for i in range(6)]
    out = subprocess.run(["redis-cli", "--cluster", "create"] +
                         ["127.0.0.1:%d" % n.port for n in nodes] +
                         ["--cluster-replicas", "1", "--cluster-yes"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("redis-cli --cluster create failed: %s%s" %
                           (out.stdout[-2000:], out.stderr[-2000:]))
    end = time.time() + 60
    while time.time() < end:
        infos = [info_fields(redis_cli(n.port, "cluster", "info"))
                 for n in nodes]
        repl = [info_fields(redis_cli(n.port, "info", "replication"))
                for n in nodes]
        masters = [n.port for n, r in zip(nodes, repl)
                   if r.get("role") == "master"]
        if (all(i.get("cluster_state") == "ok" and
                i.get("cluster_known_nodes") == "6" and
                i.get("cluster_slots_ok") == "16384" for i in infos) and
                len(masters) == 3 and
                all(r.get("master_link_status") == "up" for r in repl
                    if r.get("role") == "slave") and
                all(r.get("connected_slaves") == "1" for r in repl
                    if r.get("role") == "master")):
            return masters
        time.sleep(0.2)
    raise RuntimeError("redis cluster not ok within 60 s")


def start_ringkv_node(build, tmp, name, r, w, procs):
    port, peer = free_port(), free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    argv = [os.path.join(build, "ringkvd"), "--port", str(port),
            "--peer-port", str(peer), "--http-port", str(free_port()),
            "--data-dir", os.path.join(d, "data"), "--sync", "none",
            "--n", "3", "--r", str(r), "--w", str(w), "--loglevel", "warn"] + \
        cluster_secret_args()
    p = Proc(argv, port, os.path.join(d, "log"))
    p.peer = peer
    procs.append(p)
    return p


def start_ringkv_cluster(build, tmp, tag, r, w, procs, size=3):
    nodes = [start_ringkv_node(build, tmp, "%s-node%d" % (tag, i), r, w,
                               procs) for i in range(1, size + 1)]
    form_cluster(build, nodes)
    for n in nodes:
        i = info_cluster(build, n.port)
        for k, want in (("n", 3), ("r", r), ("w", w)):
            got = i.get("cluster_" + k)
            if got is not None and got != str(want):
                raise RuntimeError("ringkv node %d: cluster_%s is %s, not %d"
                                   % (n.port, k, got, want))
    return [n.port for n in nodes]


def keyspace(ports):
    """(hits, misses) summed over the nodes clients talk to."""
    hits = misses = 0
    for port in ports:
        st = info_fields(redis_cli(port, "info", "stats"))
        hits += int(st.get("keyspace_hits", 0))
        misses += int(st.get("keyspace_misses", 0))
    return hits, misses


def parse_csv(out):
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('"test"'):
            head, data = list(csv.reader(lines[i:i + 2]))[:2]
            rec = dict(zip(head, data))
            return (float(rec["rps"]), float(rec["p50_latency_ms"]),
                    float(rec["p99_latency_ms"]))
    raise RuntimeError("no CSV in redis-benchmark output: %r" % out[-500:])


def drive(ports, test, pipeline, requests, cluster):
    """Three concurrent redis-benchmark runs, one per port, 17/17/16
    clients.  Returns (ops/s summed, median p50, largest p99)."""
    timeout = 120 + requests // 5000
    procs = []
    try:
        for port, c in zip(ports, SPLIT):
            argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
                    "-t", test, "-c", str(c), "-d", "100", "-r", "1000000",
                    "-n", str(requests * c // CLIENTS), "-P", str(pipeline),
                    "--csv"] + (["--cluster"] if cluster else [])
            procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        rows = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError("redis-benchmark failed (%d): %s%s" %
                                   (p.returncode, out[-500:], err[-500:]))
            rows.append(parse_csv(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return (sum(r[0] for r in rows), statistics.median(r[1] for r in rows),
            max(r[2] for r in rows))


def verdict(system, test, pipe, ratio):
    t = TARGETS.get((system, test, pipe))
    if t is None:
        return "-"
    return ">= %.1fx %s" % (t, "met" if ratio >= t else "**not met**")


def on_sigterm(signum, frame):
    sys.exit(128 + signum)  # unwinds through the finally that stops servers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=1000000,
                    help="requests per run, split over the three "
                         "redis-benchmark processes (1000000)")
    ap.add_argument("--quick", action="store_true", help="100k requests")
    a = ap.parse_args()
    if a.quick:
        a.requests = 100000
    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = tempfile.mkdtemp(prefix="ringkv-rcbench-")
    procs = []
    ok = True
    print("machine: %s" % machine())
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    print("3 x redis-benchmark at once, -c %s -d 100 -r 1000000, -n %d "
          "in all; Redis Cluster 3 masters + 3 replicas (--cluster, one "
          "benchmark per master), no AOF/RDB; ringkv 3 nodes --sync none "
          "(one benchmark per node); systems take turns run by run\n"
          % ("/".join(map(str, SPLIT)), a.requests))
    sys.stdout.flush()
    results = {}
    hit_rate = {}  # (system, -P) -> share of GETs that found their key
    try:
        ports = {
            "redis": start_redis_cluster(tmp, procs),
            "r2w2": start_ringkv_cluster(a.build, tmp, "r2w2", 2, 2, procs),
            "r1w1": start_ringkv_cluster(a.build, tmp, "r1w1", 1, 1, procs),
        }
        ports["r2w2c"] = ports["r2w2"]
        print("| test | -P | Redis Cluster ops/s | ringkv N3R2W2 ops/s | "
              "ratio | target | ringkv N3R1W1 ops/s | ratio | target | "
              "Redis Cluster p50/p99 ms | N3R2W2 p50/p99 ms | "
              "N3R1W1 p50/p99 ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        sys.stdout.flush()
        for i, (test, pipe) in enumerate(WORKLOADS):
            k = i % len(SYSTEMS)
            order = SYSTEMS[k:] + SYSTEMS[:k]
            res = {}
            for s in order:
                before = keyspace(ports[s])
                res[s] = drive(ports[s], test, pipe, a.requests,
                               cluster=CLUSTER_MODE[s])
                after = keyspace(ports[s])
                if test == "get":
                    h, m = after[0] - before[0], after[1] - before[1]
                    hit_rate[(s, pipe)] = h / max(h + m, 1)
            results[(test, pipe)] = res
            rd = res["redis"][0]
            cells = [test.upper(), str(pipe), "%.0f" % rd]
            for s in ("r2w2", "r1w1"):
                ratio = res[s][0] / rd
                cells += ["%.0f" % res[s][0], "%.2f" % ratio,
                          verdict(s, test, pipe, ratio)]
            cells += ["%.3f/%.3f" % res[s][1:] for s in SYSTEMS[:3]]
            print("| " + " | ".join(cells) + " |")
            sys.stdout.flush()
        print("\nringkv N3R2W2 driven by cluster clients (redis-benchmark "
              "--cluster: each key to its slot's primary replica) vs plain "
              "clients (one redis-benchmark per node), same cluster:\n")
        print("| test | -P | --cluster ops/s | plain ops/s | --cluster / "
              "plain | --cluster / Redis Cluster | --cluster p50/p99 ms | "
              "plain p50/p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for test, pipe in WORKLOADS:
            res = results[(test, pipe)]
            c, p, rd = res["r2w2c"], res["r2w2"], res["redis"]
            print("| %s | %d | %.0f | %.0f | %.2f | %.2f | %.3f/%.3f | "
                  "%.3f/%.3f |" % (test.upper(), pipe, c[0], p[0],
                                   c[0] / p[0], c[0] / rd[0], c[1], c[2],
                                   p[1], p[2]))
        sys.stdout.flush()
        # 5 nodes, N=3: a plain client's node holds only 3/5 of the keys,
        # so cluster clients (routed to the slot's primary) save a hop
        x5 = start_ringkv_cluster(a.build, tmp, "x5", 2, 2, procs, size=5)
        print("\nringkv 5 nodes N3R2W2: cluster clients (redis-benchmark "
              "--cluster) vs plain clients (one redis-benchmark on each of "
              "3 nodes), same cluster, taking turns:\n")
        print("| test | -P | --cluster ops/s | plain ops/s | --cluster / "
              "plain | --cluster p50/p99 ms | plain p50/p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for i, (test, pipe) in enumerate(WORKLOADS):
            r5 = {}
            for cl in ((True, False) if i % 2 == 0 else (False, True)):
                r5[cl] = drive(x5, test, pipe, a.requests, cluster=cl)
            c, p = r5[True], r5[False]
            print("| %s | %d | %.0f | %.0f | %.2f | %.3f/%.3f | %.3f/%.3f |"
                  % (test.upper(), pipe, c[0], p[0], c[0] / p[0], c[1], c[2],
                     p[1], p[2]))
            sys.stdout.flush()
        print("\nGETs that found their key (keyspace_hits / GETs): %s" %
              "; ".join("-P %d: %s" % (pipe, ", ".join(
                  "%s %.0f%%" % (LABEL[s], 100 * hit_rate[(s, pipe)])
                  for s in SYSTEMS[:3])) for pipe in (1, 16)))
        print("\nload average at end: %.2f %.2f %.2f" % os.getloadavg())
        print("\nTargets (issue 11; reported, never fatal):")
        for (s, test, pipe), t in TARGETS.items():
            res = results[(test, pipe)]
            ratio = res[s][0] / res["redis"][0]
            print("- %s %s -P %d >= %.1fx Redis Cluster: %.3fx, %s" %
                  (LABEL[s], test.upper(), pipe, t, ratio,
                   "met" if ratio >= t else "not met"))
    except Exception as e:  # print what failed, keep the exit code honest
        print("bench failed: %s" % e, file=sys.stderr)
        ok = False
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let cleanup finish
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

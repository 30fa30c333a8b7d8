#!/usr/bin/env python3
"""Large values: throughput (MB/s) of SET and GET of big values through a
3-node cluster (N=3, R=2, W=2) against a single node, and the latency of a
concurrent stream of small GETs on the node that coordinates the big ones
(issue 12 item 4).

Starts one single-node ringkvd and a 3-node cluster (joined with the real
CLI, waits for ring agreement) on free loopback ports, all with
--sync every:1000.  For each size it SETs then GETs `--reps` distinct keys
of that size through one node with redis-py, checks the bytes, and prints
MB/s (MiB of value per second of wall time, one request at a time), while a
second thread sends GET of a 100-byte key to the same node one at a time
and records each latency.  It also reads `INFO cluster` of every cluster
node afterwards: `down` counts nodes that some node saw as not up.
All nodes share this machine's cores and every cluster write is stored
three times, so the ratio measures the cost of replication on one box.
Servers are stopped by PID.

A second process sends the small GETs (the bench's own big copies would
hold a thread's GIL), and every node's largest event-loop lag over the run
is read from INFO (event_loop_lag_max_us, --hz 100).  With --old BUILD the
cluster rows are measured for an older binary first, in the same run.

Usage: bench/largevalue_bench.py BUILD_DIR [--sizes 1,16,100] [--reps N]
       [--quick] [--cluster-only] [--old OLD_BUILD_DIR]
"""
import argparse
import os
import shutil
import sys
import multiprocessing
import tempfile
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_bench import form_cluster, info_cluster, start_node  # noqa: E402
from redis_bench import machine  # noqa: E402

MiB = 1024 * 1024


def _reader(port, conn, stop_ev):
    """The small-GET loop, in a process of its own: the bench's own 100 MiB
    copies and comparisons hold the GIL and would delay a thread."""
    r = redis.Redis(port=port, socket_timeout=30)
    lat, errors = [], 0
    while not stop_ev.is_set():
        t0 = time.perf_counter()
        try:
            r.get("small")
        except redis.RedisError:
            errors += 1
        lat.append(time.perf_counter() - t0)
        time.sleep(0.002)
    conn.send((lat, errors))
    conn.close()


class SmallReader:
    """GETs one small key in a loop from a separate process and keeps every
    latency (s)."""

    def __init__(self, port):
        redis.Redis(port=port, socket_timeout=30).set("small", b"s" * 100)
        ctx = multiprocessing.get_context("fork")
        self.stop_ev = ctx.Event()
        self.rx, tx = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_reader, args=(port, tx, self.stop_ev),
                                daemon=True)
        self.lat, self.errors = [], 0

    def start(self):
        self.proc.start()

    def stop(self):
        self.stop_ev.set()
        if self.rx.poll(60):
            self.lat, self.errors = self.rx.recv()
        self.proc.join(10)


def reset_lag(ports):
    for p in ports:
        try:
            redis.Redis(port=p, socket_timeout=10).config_resetstat()
        except redis.RedisError:
            pass


def max_lag_ms(ports):
    """The largest event-loop lag of these nodes since reset_lag (INFO
    event_loop_lag_max_us; None for a binary that lacks it)."""
    lags = []
    for p in ports:
        v = redis.Redis(port=p, socket_timeout=10).info("stats").get(
            "event_loop_lag_max_us")
        if v is None:
            return None
        lags.append(int(v) / 1000)
    return max(lags)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def run_sizes(port, sizes, reps, label, all_ports):
    r = redis.Redis(port=port, socket_timeout=120)
    rows = []
    for mib in sizes:
        val = os.urandom(1024) * (mib * 1024)
        reset_lag(all_ports)
        reader = SmallReader(port)
        reader.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        set_err = None
        for i in range(reps):
            try:
                r.set("big:%d:%d" % (mib, i), val)
            except redis.RedisError as e:
                set_err = str(e)
                break
        t_set = time.perf_counter() - t0
        t0 = time.perf_counter()
        get_err = None
        for i in range(reps if set_err is None else 0):
            try:
                got = r.get("big:%d:%d" % (mib, i))
                if got != val:
                    get_err = "wrong bytes (%s)" % (
                        None if got is None else len(got))
                    break
            except redis.RedisError as e:
                get_err = str(e)
                break
        t_get = time.perf_counter() - t0
        reader.stop()
        lag = max_lag_ms(all_ports)
        rows.append({
            "label": label, "mib": mib, "reps": reps,
            "set": mib * reps / t_set if set_err is None else None,
            "get": mib * reps / t_get if get_err is None and set_err is None
            else None,
            "err": set_err or get_err,
            "p50": pct(reader.lat, 0.5) * 1000,
            "p99": pct(reader.lat, 0.99) * 1000,
            "max": max(reader.lat) * 1000 if reader.lat else float("nan"),
            "small_errors": reader.errors,
            "lag": lag,
        })
        for i in range(reps):
            try:
                r.delete("big:%d:%d" % (mib, i))
            except redis.RedisError:
                pass
    return rows


def fmt(x):
    return "fail" if x is None else "%.0f" % x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--sizes", default="1,16,64")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cluster-only", action="store_true")
    ap.add_argument("--extra", default="", help="extra ringkvd flags")
    ap.add_argument("--old", default="",
                    help="an older build dir: its cluster runs first, side "
                         "by side")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    reps = args.reps
    if args.quick:
        sizes, reps = [1, 16], 2
    # --hz 100: the event-loop lag probe (INFO event_loop_lag_max_us)
    # ticks every 10 ms
    extra = ["--hz", "100"] + args.extra.split()
    tmp = tempfile.mkdtemp(prefix="rk-largebench-")
    procs = []
    rows = []
    down = []
    try:
        if not args.cluster_only:
            single = start_node(args.build, tmp, "single", extra)
            procs.append(single)
            rows += run_sizes(single.port, sizes, reps, "single node",
                              [single.port])
        builds = [("3-node cluster", args.build)]
        if args.old:
            builds.insert(0, ("3-node cluster, old binary", args.old))
        for label, build in builds:
            nodes = [start_node(build, tmp, "%s-n%d" % (len(procs), i),
                                ["--node-id", "n%d" % i] + extra)
                     for i in range(3)]
            procs += nodes
            form_cluster(build, nodes)
            rows += run_sizes(nodes[0].port, sizes, reps, label,
                              [n.port for n in nodes])
            for n in nodes:
                i = info_cluster(build, n.port)
                up, members = i.get("cluster_members_up"), i.get(
                    "cluster_members")
                if up != members:
                    down.append("%s: %s sees %s/%s up" % (label, n.port, up,
                                                          members))
            for n in nodes:
                n.stop()
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("Machine: %s" % machine())
    print("Values: random bytes, %d keys per size, SET then GET one at a "
          "time through one node with redis-py; small GETs (100 B) on the "
          "same node meanwhile; --sync every:1000.\n" % reps)
    print("| setup | value MiB | SET MB/s | GET MB/s | small GET p50 ms | "
          "p99 ms | max ms | max loop lag ms | small errors | error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for x in rows:
        print("| %s | %d | %s | %s | %.1f | %.1f | %.1f | %s | %d | %s |" % (
            x["label"], x["mib"], fmt(x["set"]), fmt(x["get"]), x["p50"],
            x["p99"], x["max"],
            "-" if x["lag"] is None else "%.1f" % x["lag"],
            x["small_errors"], x["err"] or ""))
    by = {(x["label"], x["mib"]): x for x in rows}
    if not args.cluster_only:
        print("\n| value MiB | SET cluster/single | GET cluster/single |")
        print("|---:|---:|---:|")
        for mib in sizes:
            s, c = by[("single node", mib)], by[("3-node cluster", mib)]
            ratio = [("%.2f" % (c[k] / s[k])) if c[k] and s[k] else "-"
                     for k in ("set", "get")]
            print("| %d | %s | %s |" % (mib, ratio[0], ratio[1]))
    if args.old:
        print("\n| value MiB | SET new/old | GET new/old | small GET p99 "
              "old -> new ms |")
        print("|---:|---:|---:|---|")
        for mib in sizes:
            o = by[("3-node cluster, old binary", mib)]
            n = by[("3-node cluster", mib)]
            ratio = [("%.2f" % (n[k] / o[k])) if n[k] and o[k] else "-"
                     for k in ("set", "get")]
            print("| %d | %s | %s | %.1f -> %.1f |" % (
                mib, ratio[0], ratio[1], o["p99"], n["p99"]))
    print("\nNodes seen down after the run: %s" % (", ".join(down) or "none"))
    return 1 if any(x["err"] for x in rows) or down else 0


if __name__ == "__main__":
    sys.exit(main())

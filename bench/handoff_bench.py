#!/usr/bin/env python3
"""Partition handoff (issue 14): how fast a joining node receives its
partitions, against the raw copy rate of the same bytes on this machine,
and what a transfer does to the latency of foreground GET/SET.

Starts a 3-node cluster (N=3 R=2 W=2, --sync every:1000) on free loopback
ports, loads `--mb` MiB of values (`--value` bytes each) through
redis-benchmark-style pipelines, then:

1. measures the p50/p99 of single GET+SET pairs through node 1 for a few
   seconds (no transfer);
2. joins a 4th node and measures until the transition finished (INFO
   cluster_transition:0 on every node, polled every 0.1 s over kept
   connections): the seconds, the bytes and keys the
   new node merged (cluster_handoff_bytes_in / _keys_in), MB/s and keys/s,
   when the INFO polls first and last saw keys_in move (the bulk of the
   transfer, apart from the join and the state's convergence),
   with the same GET+SET loop running meanwhile (its p50/p99);
3. stops the nodes and copies the new node's data dir (what the join
   moved, once: the partitions it now replicates) with copytree, then
   `sync` (after an untimed `sync`, so that it writes back the copy only,
   not what the nodes left dirty), and prints the time and MB/s of that:
   the raw copy of the same bytes, durably, the physical limit the ratio
   is against; and a second copytree without the sync (page cache to page
   cache: what `--sync every:1000` waits for before a partition counts as
   received).

Ratios: handoff MB/s (the new node's data dir over the transition time) /
raw copy MB/s (both copies), and p99 during / p99 before.  A partition is
folded from one current replica and the others are verified by hash tree
(node_handoff_verify.c), so what it receives is about what it keeps; the
received bytes (items of FOLD and FETCH replies) and the verify counters
are printed too.  The CPU seconds each node spent during the transition
(utime + stime from /proc) are printed too: on a machine shared with other
work they vary less than the wall time.  Servers are stopped by PID.

Usage: bench/handoff_bench.py BUILD_DIR [--mb 256] [--value 1024] [--quick]
       [--set handoff-max-mbps=0 --set handoff-concurrency=4 ...]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_bench import form_cluster, info_cluster, start_node  # noqa: E402
from redis_bench import machine  # noqa: E402

MiB = 1024 * 1024


def load(port, n, size):
    r = redis.Redis(port=port, socket_timeout=60)
    val = b"x" * size
    for i in range(0, n, 1000):
        p = r.pipeline(transaction=False)
        for k in range(i, min(n, i + 1000)):
            p.set("h:%d" % k, val)
        p.execute()


class Probe(threading.Thread):
    """GET+SET pairs through one node, one at a time; latencies in s."""

    def __init__(self, port, n_keys):
        super().__init__(daemon=True)
        self.r = redis.Redis(port=port, socket_timeout=30)
        self.n = n_keys
        self.lat = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            k = "h:%d" % ((i * 7919) % self.n)
            t0 = time.perf_counter()
            try:
                self.r.get(k)
                self.r.set("probe:%d" % (i % 1000), b"p" * 100)
            except redis.RedisError:
                self.errors += 1
            self.lat.append(time.perf_counter() - t0)
            i += 1
            time.sleep(0.001)


def cpu_s(proc):
    """CPU seconds (user + system) the process has used so far."""
    with open("/proc/%d/stat" % proc.p.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--value", type=int, default=1024)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=V",
                    help="a ringkvd flag for every node, e.g. "
                    "handoff-max-mbps=0 (repeatable)")
    a = ap.parse_args()
    if a.quick:
        a.mb = min(a.mb, 32)
    n = a.mb * MiB // a.value
    print(machine())
    tmp = tempfile.mkdtemp(prefix="rk-handoff-bench-")
    nodes = []
    try:
        extra = []
        for s in a.set:
            k, v = s.split("=", 1)
            extra += ["--" + k, v]
        print("node flags: %s" % (" ".join(extra) or "(defaults)"))
        nodes = [start_node(a.build, tmp, "n%d" % i, extra)
                 for i in range(4)]
        form_cluster(a.build, nodes[:3])
        t0 = time.time()
        load(nodes[0].port, n, a.value)
        print("loaded %d keys of %d bytes (%d MiB) in %.1f s" % (
            n, a.value, a.mb, time.time() - t0))
        time.sleep(2)
        before = Probe(nodes[0].port, n)
        before.start()
        time.sleep(3 if a.quick else 5)
        before.stop.set()
        before.join()
        during = Probe(nodes[0].port, n)
        during.start()
        cpu0 = [cpu_s(x) for x in nodes]
        t0 = time.time()
        subprocess.run([os.path.join(a.build, "ringkv"), "-p",
                        str(nodes[3].port), "cluster", "join",
                        "127.0.0.1:%d" % nodes[0].peer], check=True,
                       capture_output=True, timeout=60)
        first_in = last_in = None  # polls that saw keys_in move
        seen_in = 0
        # INFO through kept connections: a CLI process per poll and node
        # took a fifth of a core from the nodes being measured
        pollers = [redis.Redis(port=x.port, socket_timeout=30)
                   for x in nodes]

        def info_of(r):
            return {k: str(v) for k, v in r.info("cluster").items()}

        while True:
            infos = [info_of(r) for r in pollers]
            k_now = int(infos[3].get("cluster_handoff_keys_in", "0"))
            if k_now != seen_in:
                seen_in = k_now
                last_in = time.time() - t0
                first_in = last_in if first_in is None else first_in
            if all(i.get("cluster_transition") == "0" and
                   i.get("cluster_members") == "4" for i in infos):
                break
            if time.time() - t0 > 1800:
                raise RuntimeError("transition did not finish in 30 min")
            time.sleep(0.1)
        took = time.time() - t0
        cpu = [cpu_s(x) - c for x, c in zip(nodes, cpu0)]
        during.stop.set()
        during.join()
        new = info_cluster(a.build, nodes[3].port)
        b_in = int(new["cluster_handoff_bytes_in"])
        k_in = int(new["cluster_handoff_keys_in"])
        kept = int(new.get("cluster_partitions_owned", "0"))
        verified = int(new.get("cluster_handoff_verified", "0"))
        vkeys = int(new.get("cluster_handoff_verify_keys", "0"))
        vfolds = int(new.get("cluster_handoff_verify_folds", "0"))
        for x in nodes:
            x.stop()

        def du(d):
            return sum(os.path.getsize(os.path.join(dp, f))
                       for dp, _, fs in os.walk(d) for f in fs)

        src = os.path.join(tmp, "n3", "data")
        kept_b = du(src)
        # flush what the nodes (and anything else) left dirty first, so
        # that the timed sync below writes back the copy only
        subprocess.run(["sync"], check=False)
        t1 = time.time()
        shutil.copytree(src, os.path.join(tmp, "copy"))
        subprocess.run(["sync"], check=False)
        cp_s = time.time() - t1
        t1 = time.time()
        shutil.copytree(src, os.path.join(tmp, "copy-nosync"))
        nosync_s = time.time() - t1
        ho_mbs = kept_b / MiB / took
        cp_mbs = kept_b / MiB / cp_s
        nosync_mbs = kept_b / MiB / nosync_s
        print("| what | value |")
        print("|---|---|")
        print("| join of a 4th node: transition finished in | %.2f s |" % took)
        if first_in is not None:
            print("| keys_in first / last seen moving (polls about 0.1-0.2 s "
                  "apart) | %.2f / %.2f s after the join |" % (first_in,
                                                             last_in))
        print("| the new node's data dir after the join (what it keeps) | "
              "%.1f MiB (owns %d partitions) |" % (kept_b / MiB, kept))
        print("| received (folded and fetched items, duplicates included) "
              "| %d keys, %.1f MiB |" % (k_in, b_in / MiB))
        print("| sources verified by tree / keys they fetched / verifies "
              "folded instead | %d / %d / %d |" % (verified, vkeys, vfolds))
        print("| handoff rate (kept bytes / transition) | %.1f MiB/s, "
              "%.0f keys received/s |" % (ho_mbs, k_in / took))
        print("| raw copy of the new node's data dir (copytree + sync) | "
              "%.2f s, %.1f MiB/s |" % (cp_s, cp_mbs))
        print("| handoff / raw copy | %.2fx |" % (ho_mbs / cp_mbs))
        print("| raw copy without the sync (page cache) | %.2f s, "
              "%.1f MiB/s |" % (nosync_s, nosync_mbs))
        print("| handoff / raw copy without the sync | %.2fx |" % (
            ho_mbs / nosync_mbs))
        print("| CPU s during the transition: new node / 3 senders | "
              "%.2f / %.2f (%.2f + %.2f + %.2f) |" % (
                  cpu[3], sum(cpu[:3]), cpu[0], cpu[1], cpu[2]))
        print("| MiB kept per CPU second (all 4 nodes) | %.1f |" % (
            kept_b / MiB / sum(cpu)))
        print("| GET+SET p50 / p99 before (ms) | %.2f / %.2f (%d pairs, %d "
              "errors) |" % (pct(before.lat, .5) * 1e3,
                             pct(before.lat, .99) * 1e3, len(before.lat),
                             before.errors))
        print("| GET+SET p50 / p99 during (ms) | %.2f / %.2f (%d pairs, %d "
              "errors) |" % (pct(during.lat, .5) * 1e3,
                             pct(during.lat, .99) * 1e3, len(during.lat),
                             during.errors))
        print("| p99 during / before | %.2fx |" % (
            pct(during.lat, .99) / pct(before.lat, .99)))
    finally:
        for x in nodes:
            x.stop()
        if not os.environ.get("RK_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

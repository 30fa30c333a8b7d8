#!/usr/bin/env python3
"""Two ringkv builds (an old and a new binary) side by side in one run,
with the same cluster load, and the new/old ratios (issue 11).

For each configuration, N3 R2 W2 and then N3 R1 W1 (both --sync none), it
starts one 3-node cluster from each build (rediscluster_bench's
start_ringkv_cluster: free loopback ports, own temp dirs, joined with that
build's own ringkv CLI, waited on until the ring agrees), then for SET and
GET at -P 1 and -P 16 drives each cluster with three concurrent
redis-benchmark processes, one per node, 17/17/16 clients, -d 100
-r 1000000 (rediscluster_bench's drive(): ops/s summed, p50 the median of
the three p50s, p99 the largest).  Old and new take turns workload by
workload, and which goes first alternates; --rounds K repeats each
workload's pair K times (the first still alternating) and reports the
medians, and new/old as the median of the K paired ratios.  The two
clusters of a configuration are stopped before the next configuration
starts.

Prints the machine, the load average at start and end, and a Markdown table
with old and new ops/s, new/old (and each round's), p50/p99 of each, the CPU
time the driven cluster's three ringkvd spent per request (less sensitive to
the machine's other load than ops/s), which build ran first, and the CPU
that processes outside this benchmark used while each run lasted ("other
load", in cores: /proc/stat busy time minus this script, its redis-benchmark
children and every ringkvd it started), so a noisy cell can be told from a
real change.  Every server is stopped by PID, also on failure and on SIGTERM.

Usage: bench/compare_builds.py OLD_BUILD NEW_BUILD [--requests N] [--rounds K]
       [--quick]
"""
import argparse
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import machine  # noqa: E402
from rediscluster_bench import (SPLIT, drive, info_fields,  # noqa: E402
                                on_sigterm, redis_cli, start_ringkv_cluster)

WORKLOADS = [("set", 1), ("set", 16), ("get", 1), ("get", 16)]
CONFIGS = [("N3R2W2", 2, 2), ("N3R1W1", 1, 1)]
BUILDS = ["old", "new"]
TICK = os.sysconf("SC_CLK_TCK")


def describe(build):
    """The build's ringkvd and the last commit that changed its sources, if
    the build dir sits in a git checkout (here: <worktree>/build).  The
    binary does not record its commit, so a source change committed or left
    uncommitted after the build is flagged."""
    src = os.path.dirname(os.path.abspath(build))
    built = os.path.getmtime(os.path.join(build, "ringkvd"))
    paths = ["--", "src", "CMakeLists.txt", "cmake"]
    out = subprocess.run(["git", "-C", src, "log", "-1", "--format=%h %ct"] +
                         paths, capture_output=True, text=True).stdout.split()
    dirty = subprocess.run(["git", "-C", src, "status", "--porcelain",
                            "--untracked-files=no"] + paths,
                           capture_output=True, text=True).stdout.strip()
    note = "ringkvd built %s UTC" % time.strftime("%Y-%m-%d %H:%M",
                                                   time.gmtime(built))
    if out:
        note = "sources at %s, %s" % (out[0], note)
        if int(out[1]) > built:
            note += ", SOURCES COMMITTED AFTER THE BUILD"
    if dirty:
        note += ", UNCOMMITTED SOURCE CHANGES"
    return "%s (%s)" % (os.path.abspath(build), note)


def busy_seconds():
    """CPU seconds all CPUs spent in user, nice and system time."""
    with open("/proc/stat") as f:
        v = f.readline().split()
    return (int(v[1]) + int(v[2]) + int(v[3])) / TICK


def proc_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / TICK  # utime + stime


def own_seconds(procs):
    """CPU of this script, its waited-for children (redis-benchmark, the
    CLI) and the servers it runs."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime +
            sum(proc_seconds(p.p.pid) for p in procs))


def stats(ports):
    """[keyspace hits, misses, error replies] of each node."""
    out = []
    for port in ports:
        st = info_fields(redis_cli(port, "info", "stats"))
        out.append([int(st.get(k, 0)) for k in (
            "keyspace_hits", "keyspace_misses", "total_error_replies")])
    return out


def cpu_of(procs):
    return sum(proc_seconds(p.p.pid) for p in procs)


def settle(procs, window=0.5, quiet=0.15, timeout=60):
    """Waits until the three ringkvd together use less than `quiet` cores
    over `window` seconds: after redis-benchmark ends, a cluster may still
    be applying the replica writes that were queued behind its quorum
    (all of them at W=1), and that work must neither run into the other
    build's turn nor go uncounted.  Returns the seconds it took."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        c0 = cpu_of(procs)
        time.sleep(window)
        if cpu_of(procs) - c0 < quiet * window:
            break
    return time.time() - t0


def timed_drive(ports, test, pipe, requests, procs):
    """drive(), then settle(); returns drive()'s figures and: the cores
    other processes used during drive(), the CPU the driven cluster's
    three ringkvd used per request (microseconds, settling included), the
    seconds settling took, the cores the idle cluster (the other build's)
    used during drive() and settle(), and the share of GETs that found
    their key (None for SET), and the error replies the nodes sent."""
    mine = [p for p in procs if p.port in ports]
    idle = [p for p in procs if p.port not in ports]
    before = stats(ports)
    b0, o0, t0 = busy_seconds(), own_seconds(procs), time.time()
    m0, i0 = cpu_of(mine), cpu_of(idle)
    res = drive(ports, test, pipe, requests, cluster=False)
    b1, o1, t1 = busy_seconds(), own_seconds(procs), time.time()
    tail = settle(mine)
    m1, i1 = cpu_of(mine), cpu_of(idle)
    after = stats(ports)
    other = max(0.0, (b1 - b0) - (o1 - o0)) / max(t1 - t0, 1e-9)
    d = [[x - y for x, y in zip(a, b)] for a, b in zip(after, before)]
    hits = None
    if test == "get":  # overall, and per node (= per redis-benchmark)
        hits = [sum(x[0] for x in d) / max(sum(x[0] + x[1] for x in d), 1)]
        hits += [x[0] / max(x[0] + x[1], 1) for x in d]
    # drive() gives each process requests * c // CLIENTS
    served = sum(requests * c // sum(SPLIT) for c in SPLIT)
    return (res, other, 1e6 * (m1 - m0) / served, tail,
            (i1 - i0) / max(time.time() - t0, 1e-9), hits,
            sum(x[2] for x in d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old_build")
    ap.add_argument("new_build")
    ap.add_argument("--requests", type=int, default=1000000,
                    help="requests per run, split over the three "
                         "redis-benchmark processes (1000000)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="old/new pairs per workload (1); with more, each "
                         "cell is the median over the rounds and new/old "
                         "the median of the rounds' ratios")
    ap.add_argument("--quick", action="store_true", help="100k requests")
    a = ap.parse_args()
    if a.quick:
        a.requests = 100000
    build = {"old": a.old_build, "new": a.new_build}
    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = tempfile.mkdtemp(prefix="ringkv-cmpbench-")
    procs = []
    ok = True
    started = time.time()
    print("machine: %s" % machine())
    print("old: %s" % describe(a.old_build))
    print("new: %s" % describe(a.new_build))
    print("date: %s" % time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                     time.gmtime()))
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    print("3 x redis-benchmark at once, one per node, -c %s -d 100 "
          "-r 1000000, -n %d in all; 3-node clusters --sync none; old and "
          "new take turns workload by workload, the first alternating; "
          "%d round(s) per workload\n"
          % ("/".join(map(str, SPLIT)), a.requests, a.rounds))
    print("| config | test | -P | old ops/s | new ops/s | new/old | "
          "new/old each round | old p50/p99 ms | new p50/p99 ms | "
          "ringkvd CPU us/request old/new | settle s old/new | first | "
          "other load old/new (cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    ratios = []
    hit_rate = {}
    turn = 0
    idle_max = 0.0  # cores the idle build's cluster used, at most
    errors = {b: 0 for b in BUILDS}  # error replies (a run with any is
    # not comparable: an error is cheaper than a write)
    try:
        for cfg, r, w in CONFIGS:
            ports = {b: start_ringkv_cluster(build[b], tmp,
                                             "%s-%s" % (b, cfg), r, w, procs)
                     for b in BUILDS}
            for test, pipe in WORKLOADS:
                runs = {b: [] for b in BUILDS}  # (ops/s, p50, p99, other)
                firsts, each = [], []
                for _ in range(a.rounds):
                    order = BUILDS if turn % 2 == 0 else BUILDS[::-1]
                    turn += 1
                    firsts.append(order[0])
                    for b in order:
                        res, other, cpu, tail, idle, hits, err = \
                            timed_drive(ports[b], test, pipe, a.requests,
                                        procs)
                        errors[b] += err
                        runs[b].append(res + (other, cpu, tail))
                        idle_max = max(idle_max, idle)
                        if hits is not None:
                            hit_rate[(cfg, pipe, b)] = hits
                    each.append(runs["new"][-1][0] / runs["old"][-1][0])
                ratio = statistics.median(each)
                ratios.append(ratio)
                med = {b: [statistics.median(x[i] for x in runs[b])
                            for i in range(6)] for b in BUILDS}
                print("| %s | %s | %d | %.0f | %.0f | %.2f | %s | %.3f/%.3f "
                      "| %.3f/%.3f | %.1f/%.1f | %.1f/%.1f | %s | %.2f/%.2f "
                      "|" % (
                          cfg, test.upper(), pipe, med["old"][0],
                          med["new"][0], ratio,
                          ", ".join("%.2f" % x for x in each),
                          med["old"][1], med["old"][2], med["new"][1],
                          med["new"][2], med["old"][4], med["new"][4],
                          med["old"][5], med["new"][5],
                          ",".join(firsts),
                          med["old"][3], med["new"][3]))
                sys.stdout.flush()
            for p in procs:  # this configuration's six nodes
                p.stop()
            del procs[:]
        print("\ngeometric mean of new/old over the %d workloads: %.3f" %
              (len(ratios), math.exp(sum(map(math.log, ratios)) /
                                     len(ratios))))
        print("GETs that found their key, all (per node; a node near 100% "
              "means its redis-benchmark drew the keys an earlier SET "
              "process wrote: it seeds with time(NULL) ^ getpid()):")
        for cfg, _, _ in CONFIGS:
            for pipe in (1, 16):
                print("- %s -P %d: %s" % (cfg, pipe, ", ".join(
                    "%s %.0f%% (%s)" % (b, 100 * hit_rate[(cfg, pipe, b)][0],
                                        "/".join("%.0f" % (100 * x) for x in
                                                 hit_rate[(cfg, pipe, b)][1:]))
                    for b in BUILDS if (cfg, pipe, b) in hit_rate)))
        print("the idle build's cluster used at most %.2f cores during "
              "the other's runs and their settling" % idle_max)
        print("error replies (total_error_replies): old %d, new %d%s" % (
            errors["old"], errors["new"],
            "" if errors["old"] + errors["new"] == 0
            else " -- SOME REQUESTS FAILED, ops/s not comparable"))
        print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
        print("took %.0f s" % (time.time() - started))
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

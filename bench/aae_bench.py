#!/usr/bin/env python3
"""What active anti-entropy (issue 14 item 4) costs client traffic: two
3-node clusters (N=3 R=2 W=2, --sync every:1000) on this one machine, one
with --aae off and one with the defaults (on: trees kept on every write,
one exchange a second per node), driven alternately with the same
redis-benchmark runs (SET and GET, -c 50 -d 100 -r 1000000, -P 1 and 16,
spread over the three nodes as in cluster_bench.py).  Each cell is the
best of --reps runs.  Prints a Markdown table with ops/s and p50/p99 and
the ratio on/off.  Servers are stopped by PID.

Usage: bench/aae_bench.py BUILD_DIR [--requests N] [--reps R]
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_bench import form_cluster, info_cluster, spread, start_node  # noqa: E402,E501
from redis_bench import machine  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ringkv-aaebench-")
    nodes = []
    ok = True
    print("machine: %s" % machine())
    print("redis-benchmark -c 50 -d 100 -r 1000000 -n %d, spread over 3 "
          "nodes; --sync every:1000; N=3 R=2 W=2; best of %d\n"
          % (a.requests, a.reps))
    print("| test | -P | aae off ops/s | aae on ops/s | on/off | "
          "off p50/p99 ms | on p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    try:
        clusters = {}
        for mode in ("off", "on"):
            cl = [start_node(a.build, tmp, "%s%d" % (mode, i),
                             ["--n", "3", "--r", "2", "--w", "2",
                              "--aae", mode]) for i in (1, 2, 3)]
            nodes.extend(cl)
            form_cluster(a.build, cl)
            clusters[mode] = [n.port for n in cl]
        for test in ("set", "get"):
            for pipe in (1, 16):
                best = {}
                for _ in range(a.reps):
                    for mode in ("off", "on"):
                        try:
                            r = spread(clusters[mode], test, pipe, a.requests)
                        except RuntimeError as e:
                            print("aae %s, %s -P %d: %s" % (
                                mode, test, pipe, str(e).strip()))
                            continue
                        if mode not in best or r[0] > best[mode][0]:
                            best[mode] = r
                if "off" not in best or "on" not in best:
                    ok = False
                    continue
                off, on = best["off"], best["on"]
                print("| %s | %d | %.0f | %.0f | %.2f | %.3f/%.3f | "
                      "%.3f/%.3f |" % (test.upper(), pipe, off[0], on[0],
                                       on[0] / off[0], off[1], off[2], on[1],
                                       on[2]))
                sys.stdout.flush()
        inf = info_cluster(a.build, clusters["on"][0])
        print("\naae on, first node at the end: %s" % ", ".join(
            "%s=%s" % (k, v) for k, v in sorted(inf.items())
            if k.startswith("aae_")))
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

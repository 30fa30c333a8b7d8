#!/usr/bin/env python3
"""What mutual TLS between peers costs (issue 15, "Benchmarks": cluster
SET/GET with mutual TLS vs without, target >= 0.8x): two 3-node clusters
(N=3, R=2, W=2, --sync every:1000), one with --tls-cluster yes (node
certificates from scripts/gen-test-certs.sh --node), one without, both
up for the whole run, measured in one run with the same redis-benchmark
invocations (SET and GET, -c 50 -d 100 -r 1000000, -P 1 and -P 16),
alternating plain and TLS run by run, each pair --rounds times (default
3; the table gives the medians: a shared machine's other load moves
single runs a lot).  Clients speak plain RESP to both:
only the node-to-node traffic differs.  Two ways to drive each cluster
(as bench/cluster_bench.py): "one node" (one redis-benchmark against
node 1, which coordinates every command) and "spread over 3" (three
redis-benchmark processes at once, one per node, ops/s summed).
Prints a Markdown table with ops/s, p50/p99, the ratio TLS/plain, and
the CPU time the three nodes used per request (user + system, from
/proc/PID/stat), which other load on the machine disturbs less than
throughput does.  Every node shares this machine's cores, so the ratio
includes the CPU the TLS records take from the nodes themselves.
Servers are stopped by PID.

Usage: bench/peer_tls_bench.py BUILD_DIR [--requests N] [--rounds R]
       [--quick]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_bench import form_cluster, info_cluster, spread  # noqa: E402
from cluster_bench import start_node  # noqa: E402
from redis_bench import benchmark, machine  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(nodes):
    """User + system CPU seconds the nodes' processes used so far."""
    total = 0
    for n in nodes:
        with open("/proc/%d/stat" % n.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def start_cluster(build, tmp, label, certs):
    nodes = []
    for i in (1, 2, 3):
        node_id = "node%d" % i
        extra = ["--node-id", node_id, "--n", "3", "--r", "2", "--w", "2"]
        if certs:
            extra += ["--tls-cluster", "yes",
                      "--tls-cert-file",
                      os.path.join(certs, "node-%s.crt" % node_id),
                      "--tls-key-file",
                      os.path.join(certs, "node-%s.key" % node_id),
                      "--tls-ca-cert-file", os.path.join(certs, "ca.crt")]
        nodes.append(start_node(build, tmp, "%s-%s" % (label, node_id),
                                extra))
    return nodes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=300000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="50k requests, one round")
    a = ap.parse_args()
    if a.quick:
        a.requests = 50000
        a.rounds = 1
    tmp = tempfile.mkdtemp(prefix="ringkv-ptls-bench-")
    certs = os.path.join(tmp, "certs")
    subprocess.run(["bash", os.path.join(REPO, "scripts", "gen-test-certs.sh"),
                    certs, "--node", "node1", "--node", "node2", "--node",
                    "node3"], check=True, capture_output=True)
    procs = []
    ok = True
    print("machine: %s" % machine())
    print("redis-benchmark -c 50 -d 100 -r 1000000 -n %d; --sync every:1000; "
          "two 3-node clusters N=3 R=2 W=2 on this one machine, peers plain "
          "vs --tls-cluster yes (RSA 2048 node certificates); medians of %d "
          "alternating rounds\n" % (a.requests, a.rounds))
    try:
        plain = start_cluster(a.build, tmp, "plain", None)
        procs += plain
        tls = start_cluster(a.build, tmp, "tls", certs)
        procs += tls
        form_cluster(a.build, plain)
        form_cluster(a.build, tls)
        i = info_cluster(a.build, tls[0].port)
        if i.get("cluster_peer_tls") != "yes":
            raise RuntimeError("the TLS cluster's peers do not use TLS")
        print("| test | -P | driven | plain ops/s | TLS ops/s | TLS/plain | "
              "plain p50/p99 ms | TLS p50/p99 ms | node CPU us/op plain "
              "| TLS |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        sys.stdout.flush()
        ratios = []
        for test in ("set", "get"):
            for pipe in (1, 16):
                for label in ("one node", "spread over 3"):
                    runs = {"plain": [], "tls": []}
                    cpus = {"plain": [], "tls": []}
                    for rnd in range(a.rounds):
                        order = [("plain", plain), ("tls", tls)]
                        if (len(ratios) + rnd) % 2:
                            order.reverse()  # neither always runs first
                        for name, nodes in order:
                            c0 = cpu_s(nodes)
                            if label == "one node":
                                r = benchmark(nodes[0].port, test, pipe,
                                              a.requests)
                            else:
                                r = spread([n.port for n in nodes], test,
                                           pipe, a.requests)
                            runs[name].append(r)
                            cpus[name].append((cpu_s(nodes) - c0) * 1e6 /
                                              a.requests)
                    res = {k: tuple(statistics.median(x[i] for x in v)
                                    for i in range(3))
                           for k, v in runs.items()}
                    cpu = {k: statistics.median(v) for k, v in cpus.items()}
                    p, t = res["plain"], res["tls"]
                    ratios.append(t[0] / p[0])
                    print("| %s | %d | %s | %.0f | %.0f | %.2fx | %.3f/%.3f "
                          "| %.3f/%.3f | %.1f | %.1f |" % (
                              test.upper(), pipe, label, p[0], t[0],
                              t[0] / p[0], p[1], p[2], t[1], t[2],
                              cpu["plain"], cpu["tls"]))
                    sys.stdout.flush()
        fails = [int(info_cluster(a.build, n.port).get(
            "cluster_peer_tls_failures", "-1")) for n in tls]
        print("\nTLS/plain: min %.2fx, max %.2fx (target >= 0.8x); "
              "cluster_peer_tls_failures after the run: %s" % (
                  min(ratios), max(ratios), fails))
    except Exception as e:  # print what failed, keep the exit code honest
        print("bench failed: %s" % e, file=sys.stderr)
        ok = False
    finally:
        for n in procs:
            n.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

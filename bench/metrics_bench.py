#!/usr/bin/env python3
"""GET /metrics latency (issue 6 target: under 10 ms with 10,000 series).

(a) Live: starts a 3-node cluster of release ringkvd (N=3, R=2, W=2, joined
    with the real CLI, free loopback ports, temp data dirs), drives mixed
    traffic through every node (redis-benchmark SET/GET/INCR/MSET, redis-cli
    with ~40 other commands, some of them failing, and HTTP /kv), then
    times GET /metrics on node 1: REQUESTS sequential GETs over one
    keep-alive connection (as Prometheus scrapes) and REQUESTS on a new
    connection each (as curl does): series (non-comment lines), bytes,
    median/p99/max ms.  GET /health on the keep-alive connection gives the
    fixed cost of an evhttp round trip, so (metrics - health) / series is
    the live cost per series.
(b) 10,000 series: no label dimension of a live node reaches 10,000 (two
    series per command used, ~60 commands; one per peer), so
    metrics_render_bench (bench/metrics_render_bench.c) times the real
    metrics.c writers rendering >= 10,000 series into an rk_buf plus the
    evbuffer copy of on_metrics (median of REQUESTS renders) in three
    shapes.  The bytes of each shape are then served by a real ringkvd over
    evhttp (GET /kv of a value of that size on a standalone node, timed the
    same way), and PROJECTED /metrics = render + that GET.  The GET also
    runs a read and a RESP reply parse, so the projection errs high.  A
    transfer check times GET /kv of 16,000 and 16,500 bytes and of the live
    exposition's size, to tell rendering from sending.
Labels each figure LIVE, OFFLINE or PROJECTED and prints a verdict line
against 10 ms (on the projected median and p99 and the live keep-alive
median and p99).  Servers are stopped by PID, also on failure.

Usage: bench/metrics_bench.py BUILD_DIR [--requests N] [--quick]
"""
import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_bench import form_cluster  # noqa: E402
from redis_bench import Proc, free_port, machine, wait_port  # noqa: E402

TARGET_MS = 10.0
SERIES = 10000

# Commands driven through redis-cli on every node (arguments as a list);
# the wrong-arity and wrong-type ones make result="error" series too.
CLI_COMMANDS = [
    ["set", "mb:s", "v"], ["get", "mb:s"], ["append", "mb:s", "x"],
    ["strlen", "mb:s"], ["getrange", "mb:s", "0", "1"], ["exists", "mb:s"],
    ["type", "mb:s"], ["expire", "mb:s", "100"], ["ttl", "mb:s"],
    ["pttl", "mb:s"], ["persist", "mb:s"], ["pexpire", "mb:s", "100000"],
    ["expiretime", "mb:s"], ["getex", "mb:s"], ["setnx", "mb:n", "1"],
    ["setex", "mb:e", "100", "v"], ["psetex", "mb:p", "100000", "v"],
    ["incrby", "mb:c", "5"], ["decr", "mb:c"], ["decrby", "mb:c", "2"],
    ["incrbyfloat", "mb:f", "1.5"], ["mget", "mb:s", "mb:c"],
    ["msetnx", "mb:m1", "1", "mb:m2", "2"], ["getdel", "mb:n"],
    ["del", "mb:p"], ["unlink", "mb:e"], ["dbsize"], ["ping"],
    ["echo", "hi"], ["time"], ["info", "server"], ["randomkey"],
    ["scan", "0"], ["command", "count"], ["client", "id"],
    ["ringkv.getall", "mb:s"], ["incr", "mb:s"], ["get"], ["set", "x"],
]


def start_node(build, tmp, name, extra=()):
    port, peer, hport = free_port(), free_port(), free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    argv = [os.path.join(build, "ringkvd"), "--port", str(port),
            "--peer-port", str(peer), "--http-port", str(hport),
            "--data-dir", os.path.join(d, "data"),
            "--sync", "every:1000", "--loglevel", "warn"] + list(extra)
    p = Proc(argv, port, os.path.join(d, "log"))
    p.peer, p.http = peer, hport
    wait_port(hport, p.p)
    return p


def ensure_built(build):
    if not os.path.exists(os.path.join(build, "metrics_render_bench")):
        subprocess.run(["cmake", "-S", ".", "-B", build, "-DRK_BENCH=ON",
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count()),
                        "--target", "metrics_render_bench", "ringkvd",
                        "ringkv"], check=True, stdout=subprocess.DEVNULL)


def render_bench(build, renders):
    out = subprocess.run([os.path.join(build, "metrics_render_bench"), "-n",
                          str(SERIES), "-r", str(renders)],
                         capture_output=True, text=True, timeout=600,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        kv = dict(f.split("=", 1) for f in line.split())
        rows.append({k: (v if k == "shape" else float(v))
                     for k, v in kv.items()})
    return rows


def traffic(nodes, requests):
    for n in nodes:
        r = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p",
                            str(n.port), "-t", "set,get,incr,mset", "-c", "20",
                            "-d", "100", "-r", "100000", "-n", str(requests),
                            "-q"], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("redis-benchmark failed: %s" % r.stderr)
        for cmd in CLI_COMMANDS:
            subprocess.run(["redis-cli", "-p", str(n.port)] + cmd,
                           capture_output=True, timeout=30)
        c = http.client.HTTPConnection("127.0.0.1", n.http, timeout=10)
        for i in range(50):
            c.request("PUT", "/kv/mb:h%d" % i, body=b"x" * 100)
            c.getresponse().read()
            c.request("GET", "/kv/mb:h%d" % i)
            c.getresponse().read()
        c.close()


def time_get(port, path, n, warmup=10):
    """n sequential GETs over one keep-alive connection: (ms list, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = b""
    ms = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        t1 = time.perf_counter()
        if r.status != 200:
            raise RuntimeError("GET %s: HTTP %d" % (path, r.status))
        if i >= warmup:
            ms.append((t1 - t0) * 1e3)
    c.close()
    return ms, body


def time_fresh(port, path, n, warmup=3):
    """n GETs, each on a new connection (as curl does): ms list."""
    ms = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        t1 = time.perf_counter()
        if r.status != 200:
            raise RuntimeError("GET %s: HTTP %d" % (path, r.status))
        if i >= warmup:
            ms.append((t1 - t0) * 1e3)
    return ms


def time_kv(node, size, n):
    """Stores a size-byte value on node, times GET /kv of it: ms list."""
    key = "mb:body:%d" % size
    resp_set(node.port, key.encode(), b"x" * size)
    ms, body = time_get(node.http, "/kv/" + key, n)
    if len(body) != size:
        raise RuntimeError("GET /kv/%s returned %d bytes" % (key, len(body)))
    return ms


def stats(ms):
    s = sorted(ms)
    p99 = min(len(s) - 1, int(round(0.99 * (len(s) - 1))))
    return s[len(s) // 2], s[p99], s[-1]


def resp_set(port, key, value):
    cmd = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key,
                                                      len(value))
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(cmd + value + b"\r\n")
        reply = s.recv(64)
    if not reply.startswith(b"+OK"):
        raise RuntimeError("SET %s: %r" % (key, reply))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=200,
                    help="timed HTTP GETs and offline renders (default 200)")
    ap.add_argument("--quick", action="store_true", help="50 of each")
    a = ap.parse_args()
    if a.quick:
        a.requests = 50
    ensure_built(a.build)
    tmp = tempfile.mkdtemp(prefix="ringkv-mbench-")
    nodes = []
    ok = True
    print("machine: %s" % machine())
    print("GET /metrics: %d sequential requests over one keep-alive "
          "connection (Python http.client, same machine), after 10 untimed\n"
          % a.requests)
    sys.stdout.flush()
    try:
        for i in (1, 2, 3):  # one by one, so a failed start stops the rest
            nodes.append(start_node(a.build, tmp, "node%d" % i,
                                    ["--n", "3", "--r", "2", "--w", "2"]))
        cl = list(nodes)
        form_cluster(a.build, cl)
        traffic(cl, 20000 if a.quick else 100000)

        # (a) live
        hms, _ = time_get(cl[0].http, "/health", a.requests)
        mms, body = time_get(cl[0].http, "/metrics", a.requests)
        fms = time_fresh(cl[0].http, "/metrics", a.requests)
        lines = [ln for ln in body.decode().splitlines() if ln]
        n_live = sum(1 for ln in lines if not ln.startswith("#"))
        n_cmd = sum(1 for ln in lines
                    if ln.startswith("ringkv_commands_total{"))
        n_peer = sum(1 for ln in lines if ln.startswith("ringkv_peer_up{"))
        hm, mm, fm = stats(hms), stats(mms), stats(fms)
        per_series_us = max(0.0, mm[0] - hm[0]) * 1e3 / n_live
        print("### (a) LIVE: 3-node cluster, node 1, after mixed traffic")
        print("| GET | series | bytes | median ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|")
        print("| /metrics, keep-alive | %d | %d | %.3f | %.3f | %.3f |"
              % ((n_live, len(body)) + mm))
        print("| /metrics, new connection each | %d | %d | %.3f | %.3f | "
              "%.3f |" % ((n_live, len(body)) + fm))
        print("| /health, keep-alive (fixed cost) | - | - | %.3f | %.3f | "
              "%.3f |" % hm)
        print("live series: %d commands_total (%d commands), %d peer_up, "
              "%d other; live cost per series, keep-alive (metrics - health "
              "median) / series = %.2f us\n"
              % (n_cmd, n_cmd // 2, n_peer, n_live - n_cmd - n_peer,
                 per_series_us))
        sys.stdout.flush()

        # (b) 10,000 series
        rows = render_bench(a.build, a.requests)
        single = start_node(a.build, tmp, "single")
        nodes.append(single)
        print("### (b) 10,000 SERIES: rendered OFFLINE by "
              "metrics_render_bench (real metrics.c writers, median of %d "
              "renders); their bytes served LIVE by a standalone ringkvd "
              "(GET /kv of a value that size, keep-alive); PROJECTED = "
              "render+evbuffer + GET /kv"
              % a.requests)
        print("| shape | series | bytes | render ms (med/p99) | ns/series | "
              "render+evbuffer ms | GET /kv same bytes ms (med/p99) | "
              "PROJECTED /metrics ms (med/p99) |")
        print("|---|---|---|---|---|---|---|---|")
        worst = None
        for r in rows:
            km = stats(time_kv(single, int(r["bytes"]), a.requests))
            proj = (r["handler_median_ms"] + km[0],
                    r["handler_p99_ms"] + km[1])
            print("| %s | %d | %d | %.3f/%.3f | %.0f | %.3f | %.3f/%.3f | "
                  "%.3f/%.3f |" % (r["shape"], r["series"], r["bytes"],
                                   r["render_median_ms"], r["render_p99_ms"],
                                   r["ns_per_series"], r["handler_median_ms"],
                                   km[0], km[1], proj[0], proj[1]))
            if worst is None or proj[1] > worst[1][1]:
                worst = (r, proj)
        print("\ntransfer check (LIVE, standalone ringkvd, GET /kv, "
              "keep-alive): body bytes -> median/p99 ms")
        tc = {}
        for size in (16000, 16500, len(body)):
            tc[size] = stats(time_kv(single, size, a.requests))
            print("  %7d B: %.3f/%.3f" % ((size,) + tc[size][:2]))
        if tc[16500][0] > 10 * tc[16000][0] and tc[16500][0] > 20:
            print("  note: bodies just over 16 KiB take ~40 ms on a "
                  "keep-alive connection and just under do not: consistent "
                  "with evhttp writing at most 16 KiB per write on a socket "
                  "without TCP_NODELAY (Nagle holds the tail until the "
                  "client's delayed ACK); rendering is not the cost")
        r, proj = worst
        met = max(proj[0], proj[1], mm[0], mm[1]) < TARGET_MS
        print("\nverdict: /metrics under %.0f ms with 10,000 series: %s "
              "(PROJECTED, worst shape %s: %.2f ms median, %.2f ms p99; "
              "rendering alone %.2f ms median; measured LIVE with %d series, "
              "keep-alive: %.2f ms median, %.2f ms p99)\n"
              % (TARGET_MS, "MET" if met else "NOT MET", r["shape"], proj[0],
                 proj[1], r["handler_median_ms"], n_live, mm[0], mm[1]))
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

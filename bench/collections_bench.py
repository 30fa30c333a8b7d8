#!/usr/bin/env python3
"""Hashes, sets and counters (issue 16): ringkvd vs redis-server, side by
side, on one node.

1. redis-benchmark -c 50 -r 1000000 of HSET, HGET, SADD, SISMEMBER and
   INCR at -P 1 and -P 16 (HGET and SISMEMBER as arbitrary commands over
   what HSET and SADD filled), ringkv (default --sync every:1000) against
   redis-server (appendonly yes, appendfsync everysec), alternating run by
   run; ops/s, p50/p99 and the ratio.
2. A set and a hash of `--members` (1,000,000) members each, loaded with
   redis-cli --pipe: load time, memory (what stays in RAM: ringkv's keydir
   growth, INFO keydir_bytes, against redis's used_memory growth; and the
   RSS growth of both processes, which for ringkv also counts pages of
   its data files it mapped and buffers its allocator keeps), and
   SISMEMBER / HGET rates at -P 16 on the loaded collections.
Prints Markdown tables; servers stopped by PID.

Usage: bench/collections_bench.py BUILD_DIR [--requests N] [--members N]
       [--quick]
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import (benchmark, machine, rss_kib, start_redis,  # noqa
                         start_ringkv)


def bench_cmd(port, args, pipeline, requests, rand=1000000):
    """(ops/s, p50, p99) of redis-benchmark running one arbitrary command
    (__rand_int__: 12 digits, 0..rand-1)."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "50",
            "-r", str(rand), "-n", str(requests), "-P", str(pipeline),
            "--csv"] + list(args)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError("redis-benchmark failed: %s" % out.stderr)
    rows = list(csv.reader(io.StringIO(out.stdout)))
    rec = dict(zip(rows[0], rows[1]))
    return (float(rec["rps"]), float(rec["p50_latency_ms"]),
            float(rec["p99_latency_ms"]))


def run_test(port, test, pipeline, requests):
    if test in ("hset", "sadd", "incr"):
        return benchmark(port, test, pipeline, requests)
    if test == "hget":
        return bench_cmd(port, ["HGET", "myhash", "element:__rand_int__"],
                         pipeline, requests)
    if test == "sismember":
        return bench_cmd(port, ["SISMEMBER", "myset", "element:__rand_int__"],
                         pipeline, requests)
    raise ValueError(test)


def info_field(port, section, field):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", section],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    return 0


def load(port, kind, n):
    """Loads `n` members into one set ("bigset") or hash ("bighash")."""
    def gen():
        for i in range(n):
            m = "member:%012d" % i
            if kind == "set":
                yield "*3\r\n$4\r\nSADD\r\n$6\r\nbigset\r\n$%d\r\n%s\r\n" % (
                    len(m), m)
            else:
                v = "v%d" % i
                yield ("*4\r\n$4\r\nHSET\r\n$7\r\nbighash\r\n$%d\r\n%s\r\n"
                       "$%d\r\n%s\r\n" % (len(m), m, len(v), v))
    p = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    chunk = []
    for s in gen():
        chunk.append(s)
        if len(chunk) >= 10000:
            p.stdin.write("".join(chunk).encode())
            chunk = []
    p.stdin.write("".join(chunk).encode())
    p.stdin.close()
    out = p.stdout.read().decode()
    p.wait()
    if "errors: 0" not in out:
        raise RuntimeError("load failed: %s" % out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--members", type=int, default=1000000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.requests, a.members = 100000, 100000
    tmp = tempfile.mkdtemp(prefix="ringkv-coll-bench-")
    print("machine: %s" % machine())
    print("redis-benchmark -c 50 -r 1000000 -n %d; ringkv --sync every:1000 "
          "vs redis appendonly everysec; servers alternate run by run\n"
          % a.requests)
    print("| test | -P | ringkv ops/s | redis ops/s | ratio | ringkv p50/p99 "
          "ms | redis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    rk = start_ringkv(a.build, tmp, "every:1000")
    rd = start_redis(tmp, "yes", "everysec")
    try:
        for pipeline in (1, 16):
            for test in ("hset", "hget", "sadd", "sismember", "incr"):
                r = run_test(rk.port, test, pipeline, a.requests)
                d = run_test(rd.port, test, pipeline, a.requests)
                print("| %s | %d | %.0f | %.0f | %.2fx | %.3f / %.3f | "
                      "%.3f / %.3f |" % (test.upper(), pipeline, r[0], d[0],
                                         r[0] / d[0], r[1], r[2], d[1], d[2]))
                sys.stdout.flush()
    finally:
        rk.stop()
        rd.stop()
    print("\n%d-member set and hash, members \"member:%%012d\", hash values "
          "\"v%%d\" (redis-cli --pipe):\n" % a.members)
    print("| what | ringkv | redis | ratio |")
    print("|---|---|---|---|")
    rk = start_ringkv(a.build, tmp, "every:1000")
    rd = start_redis(tmp, "yes", "everysec")
    try:
        for kind in ("set", "hash"):
            res = {}
            kd0 = info_field(rk.port, "memory", "keydir_bytes")
            for name, srv in (("ringkv", rk), ("redis", rd)):
                rss0 = rss_kib(srv.p.pid)
                used0 = info_field(srv.port, "memory", "used_memory")
                t0 = time.time()
                load(srv.port, kind, a.members)
                took = time.time() - t0
                time.sleep(1)
                res[name] = (took, rss_kib(srv.p.pid) - rss0,
                             info_field(srv.port, "memory", "used_memory") -
                             used0)
            (tk, rk_rss, _), (td, rd_rss, rd_used) = res["ringkv"], \
                res["redis"]
            kd = info_field(rk.port, "memory", "keydir_bytes") - kd0
            print("| %s: load time | %.2f s | %.2f s | %.2fx |" % (
                kind, tk, td, tk / td))
            print("| %s: bytes per member kept in RAM (ringkv keydir_bytes "
                  "growth; redis used_memory growth) | %.1f | %.1f | %.2fx |"
                  % (kind, kd * 1.0 / a.members, rd_used * 1.0 / a.members,
                     kd * 1.0 / max(rd_used, 1)))
            print("| %s: RSS growth, MiB | %.1f | %.1f | %.2fx |" % (
                kind, rk_rss / 1024.0, rd_rss / 1024.0,
                rk_rss / max(rd_rss, 1)))
            q = (["SISMEMBER", "bigset", "member:__rand_int__"]
                 if kind == "set" else
                 ["HGET", "bighash", "member:__rand_int__"])
            r = bench_cmd(rk.port, q, 16, a.requests, a.members)
            d = bench_cmd(rd.port, q, 16, a.requests, a.members)
            print("| %s: %s at -P 16, ops/s | %.0f | %.0f | %.2fx |" % (
                kind, q[0], r[0], d[0], r[0] / d[0]))
            sys.stdout.flush()
    finally:
        rk.stop()
        rd.stop()


if __name__ == "__main__":
    main()

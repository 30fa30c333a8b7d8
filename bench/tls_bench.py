#!/usr/bin/env python3
"""TLS for RESP clients (issue 15): ringkvd vs redis-server, both over TLS
with the same test certificates (scripts/gen-test-certs.sh) and client
certificates required, and each over plain TCP, with the same
redis-benchmark runs (SET and GET, -c 50 -d 100 -r 1000000, -P 1 and
-P 16; --sync none and appendonly no, so the network path is what is
measured), alternating servers run by run.  Prints one Markdown table:
ops/s, p50/p99, ringkv/redis ratio over TLS, and each server's TLS/plain
ratio.  Servers are stopped by PID.

Usage: bench/tls_bench.py BUILD_DIR [--requests N] [--quick]
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import Proc, benchmark, free_port, machine  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def bench(port, tls, certs, test, pipeline, n):
    extra = []
    if tls:
        extra = ["--tls", "--cacert", os.path.join(certs, "ca.crt"),
                 "--cert", os.path.join(certs, "client.crt"),
                 "--key", os.path.join(certs, "client.key")]
    return benchmark(port, test, pipeline, n, extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=300000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n = 50000 if a.quick else a.requests
    tmp = tempfile.mkdtemp(prefix="rk-tls-bench-")
    certs = os.path.join(tmp, "certs")
    subprocess.run(["bash", os.path.join(REPO, "scripts", "gen-test-certs.sh"),
                    certs], check=True, capture_output=True)
    print(machine())
    tls_args = ["--tls-cert-file", os.path.join(certs, "server.crt"),
                "--tls-key-file", os.path.join(certs, "server.key"),
                "--tls-ca-cert-file", os.path.join(certs, "ca.crt"),
                "--tls-auth-clients", "yes"]
    procs = []
    try:
        rk_port, rk_tls = free_port(), free_port()
        d = os.path.join(tmp, "rk")
        os.makedirs(d)
        procs.append(Proc([os.path.join(a.build, "ringkvd"), "--port",
                           str(rk_port), "--http-port", str(free_port()),
                           "--peer-port", str(free_port()), "--data-dir",
                           os.path.join(d, "data"), "--sync", "none",
                           "--loglevel", "warn", "--tls-port", str(rk_tls)] +
                          tls_args, rk_port, os.path.join(d, "log")))
        rd_port, rd_tls = free_port(), free_port()
        d = os.path.join(tmp, "redis")
        os.makedirs(d)
        procs.append(Proc(["redis-server", "--port", str(rd_port), "--bind",
                           "127.0.0.1", "--dir", d, "--save", "",
                           "--appendonly", "no", "--protected-mode", "no",
                           "--loglevel", "warning", "--tls-port",
                           str(rd_tls)] + tls_args, rd_port,
                          os.path.join(d, "log")))
        print("\n%d requests per run, -c 50 -d 100; client certificates "
              "required; TLS 1.3 (both servers' default)\n" % n)
        print("| test | -P | transport | ringkv ops/s | redis ops/s | "
              "ringkv/redis | ringkv p50/p99 ms | redis p50/p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        res = {}
        for test in ("set", "get"):
            for p in (1, 16):
                for tls in (False, True):
                    rk = bench(rk_tls if tls else rk_port, tls, certs, test,
                               p, n)
                    rd = bench(rd_tls if tls else rd_port, tls, certs, test,
                               p, n)
                    res[(test, p, tls)] = (rk, rd)
                    print("| %s | %d | %s | %.0f | %.0f | %.2fx | "
                          "%.3f/%.3f | %.3f/%.3f |" % (
                              test.upper(), p, "TLS" if tls else "plain",
                              rk[0], rd[0], rk[0] / rd[0], rk[1], rk[2],
                              rd[1], rd[2]))
                    sys.stdout.flush()
        print("\n| test | -P | ringkv TLS/plain | redis TLS/plain |")
        print("|---|---|---|---|")
        for test in ("set", "get"):
            for p in (1, 16):
                (rkp, rdp), (rkt, rdt) = res[(test, p, False)], \
                    res[(test, p, True)]
                print("| %s | %d | %.2fx | %.2fx |" % (
                    test.upper(), p, rkt[0] / rkp[0], rdt[0] / rdp[0]))
    finally:
        for pr in procs:
            pr.stop()


if __name__ == "__main__":
    main()

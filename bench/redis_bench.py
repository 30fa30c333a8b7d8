#!/usr/bin/env python3
"""ringkvd vs redis-server, side by side, with the same redis-benchmark runs.

Starts both servers on free loopback ports with temporary data dirs, runs
SET and GET (-c 50 -d 100 -r 1000000) at -P 1 and -P 16 for three durability
pairs, alternating ringkv and redis run by run, then loads 1,000,000 keys
into each and reports RSS.  Prints one Markdown table with ops/s, p50 and
p99 latency, and the ringkv/redis ratio.  Servers are stopped by PID.

Usage: bench/redis_bench.py BUILD_DIR [--requests N] [--always-requests N]
       [--keys N] [--quick]
"""
import argparse
import csv
import io
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

_SECRET = None


def cluster_secret_args():
    """--cluster-secret-file FILE for every ringkvd node a benchmark joins
    into one cluster (a secret file made once per run, mode 0600)."""
    global _SECRET
    if _SECRET is None:
        import tempfile
        d = tempfile.mkdtemp(prefix="ringkv-bench-secret-")
        _SECRET = os.path.join(d, "cluster.secret")
        fd = os.open(_SECRET, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, os.urandom(32).hex().encode() + b"\n")
        os.close(fd)
    return ["--cluster-secret-file", _SECRET]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited: %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Proc:
    def __init__(self, argv, port, log):
        self.port = port
        self.log = open(log, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_port(port, self.p)
        except BaseException:
            self.stop()  # the caller never gets this object to stop it
            raise

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


DURABILITY = [
    # label, ringkv --sync, redis appendonly, redis appendfsync
    ("none", "none", "no", "everysec"),
    ("every 1s", "every:1000", "yes", "everysec"),
    ("always", "always", "yes", "always"),
]


def start_ringkv(build, tmp, sync):
    port = free_port()
    d = tempfile.mkdtemp(dir=tmp, prefix="ringkv-")
    argv = [os.path.join(build, "ringkvd"), "--port", str(port),
            "--http-port", str(free_port()), "--peer-port", str(free_port()),
            "--data-dir",
            os.path.join(d, "data"), "--sync", sync, "--enable-flushall", "yes",
            "--loglevel", "warn"]
    return Proc(argv, port, os.path.join(d, "log"))


def start_redis(tmp, appendonly, appendfsync):
    port = free_port()
    d = tempfile.mkdtemp(dir=tmp, prefix="redis-")
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--dir", d, "--save", "", "--appendonly", appendonly,
            "--appendfsync", appendfsync, "--protected-mode", "no",
            "--loglevel", "warning"]
    return Proc(argv, port, os.path.join(d, "log"))


def benchmark(port, test, pipeline, requests, extra=()):
    """(ops/s, p50 ms, p99 ms) of one redis-benchmark run; extra: more
    redis-benchmark flags (TLS options, say)."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test,
            "-c", "50", "-d", "100", "-r", "1000000", "-n", str(requests),
            "-P", str(pipeline), "--csv"] + list(extra)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError("redis-benchmark failed: %s" % out.stderr)
    rows = list(csv.reader(io.StringIO(out.stdout)))
    head, data = rows[0], rows[1]
    rec = dict(zip(head, data))
    return (float(rec["rps"]), float(rec["p50_latency_ms"]),
            float(rec["p99_latency_ms"]))


def load_keys(port, n, value_size=100):
    """Loads n keys key:%012d with value_size-byte values via redis-cli --pipe."""
    val = "x" * value_size
    def gen():
        for i in range(n):
            k = "key:%012d" % i
            yield ("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" %
                   (len(k), k, len(val), val)).encode()
    p = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    chunk = []
    for b in gen():
        chunk.append(b)
        if len(chunk) >= 10000:
            p.stdin.write(b"".join(chunk))
            chunk = []
    p.stdin.write(b"".join(chunk))
    p.stdin.close()
    out = p.stdout.read().decode()
    p.wait()
    if "errors: 0" not in out:
        raise RuntimeError("load failed: %s" % out)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ver = subprocess.run(["redis-server", "--version"], capture_output=True,
                         text=True).stdout.strip()
    return "%s, %d cores, %s; %s" % (cpu, os.cpu_count(), platform.platform(),
                                   ver)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--always-requests", type=int, default=100000)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--quick", action="store_true",
                    help="100k requests, 10k for sync always, 100k keys")
    a = ap.parse_args()
    if a.quick:
        a.requests, a.always_requests, a.keys = 100000, 10000, 100000
    tmp = tempfile.mkdtemp(prefix="ringkv-bench-")
    print("machine: %s" % machine())
    print("redis-benchmark -c 50 -d 100 -r 1000000; -n %d (-n %d for sync "
          "always); servers alternate run by run\n" % (a.requests,
                                                        a.always_requests))
    print("| durability | test | -P | ringkv ops/s | redis ops/s | ratio | "
          "ringkv p50/p99 ms | redis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    ok = True
    try:
        for label, sync, aof, fsync in DURABILITY:
            rk = start_ringkv(a.build, tmp, sync)
            rd = start_redis(tmp, aof, fsync)
            try:
                n = a.always_requests if sync == "always" else a.requests
                for test in ("set", "get"):
                    for pipe in (1, 16):
                        r1 = benchmark(rk.port, test, pipe, n)
                        r2 = benchmark(rd.port, test, pipe, n)
                        print("| %s | %s | %d | %.0f | %.0f | %.2f | %.3f/%.3f "
                              "| %.3f/%.3f |" % (label, test.upper(), pipe,
                                                 r1[0], r2[0], r1[0] / r2[0],
                                                 r1[1], r1[2], r2[1], r2[2]))
                        sys.stdout.flush()
            finally:
                rk.stop()
                rd.stop()
        rk = start_ringkv(a.build, tmp, "every:1000")
        rd = start_redis(tmp, "yes", "everysec")
        try:
            base_rk, base_rd = rss_kib(rk.p.pid), rss_kib(rd.p.pid)
            load_keys(rk.port, a.keys)
            load_keys(rd.port, a.keys)
            time.sleep(1)
            m_rk, m_rd = rss_kib(rk.p.pid), rss_kib(rd.p.pid)
            print("\n| RSS after loading %d keys (16 B keys, 100 B values) | "
                  "ringkv | redis | ratio |" % a.keys)
            print("|---|---|---|---|")
            print("| MiB (empty -> loaded) | %.1f -> %.1f | %.1f -> %.1f | "
                  "%.2f |" % (base_rk / 1024, m_rk / 1024, base_rd / 1024,
                              m_rd / 1024, m_rk / m_rd))
        finally:
            rk.stop()
            rd.stop()
    except Exception as e:  # print what failed, keep the exit code honest
        print("bench failed: %s" % e, file=sys.stderr)
        ok = False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""libringkv vs hiredis on one ringkvd (issue 13 item 4; target >= 0.9x).

Starts a release ringkvd (--sync every:1000, memory-light defaults) on free
loopback ports with a temporary data dir, runs BUILD/libringkv_bench
against it (alternating the two clients round by round), prints its table,
and stops the server by PID.

Usage: bench/libringkv_bench.py BUILD_DIR [--ops N] [--rounds N] [--quick]
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import free_port, wait_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--ops", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.ops, a.rounds = 10000, 3
    bench = os.path.join(a.build, "libringkv_bench")
    if not os.path.exists(bench):
        sys.exit("no %s (configure with -DRK_BENCH=ON: make bench)" % bench)
    tmp = tempfile.mkdtemp(prefix="rk-libbench-")
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(a.build, "ringkvd"), "--port", str(port),
         "--http-port", str(free_port()), "--peer-port", str(free_port()),
         "--bind", "127.0.0.1", "--data-dir", os.path.join(tmp, "d"),
         "--sync", "every:1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        r = subprocess.run([bench, "127.0.0.1:%d" % port, str(a.ops),
                            str(a.rounds)], timeout=600)
        return r.returncode
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

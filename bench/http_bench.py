#!/usr/bin/env python3
"""HTTP (evhttp, /kv/{key}) against RESP on one ringkvd, in one run.

Starts a release ringkvd (--sync every:1000) on free loopback ports and
runs, alternating: redis-benchmark -t set|get -c 50 -d 100 -r 100000 -P 1
against the RESP port, and wrk -t 2 -c 50 -d SECONDS with a Lua script
doing PUT /kv/key:<random> (100-byte body) or GET of the same key space
against the HTTP port (keys loaded first).  Prints ops/s, latency
(p50/p99 ms) and the ratio HTTP/RESP (issue 6 target: >= 0.5 at -P 1).

Usage: bench/http_bench.py BUILD_DIR [--seconds S] [--quick]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import Proc, benchmark, free_port, machine  # noqa: E402

LUA = r"""
local method = os.getenv("RK_METHOD")
local body = string.rep("x", 100)
math.randomseed(42)
request = function()
  local path = "/kv/key:" .. math.random(0, 99999)
  if method == "PUT" then
    return wrk.format("PUT", path, {["Content-Length"] = #body}, body)
  end
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  io.write(string.format("RK %d %f %f %f %d\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
"""


def wrk(port, method, seconds, lua):
    env = dict(os.environ, RK_METHOD=method)
    out = subprocess.run(["wrk", "-t", "2", "-c", "50", "-d", "%ds" % seconds,
                          "-s", lua, "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, env=env,
                         timeout=seconds + 60)
    m = re.search(r"^RK (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", out.stdout,
                  re.M)
    if out.returncode != 0 or m is None:
        raise RuntimeError("wrk failed: %s %s" % (out.stdout, out.stderr))
    n, dur, p50, p99, errs = m.groups()
    return int(n) / float(dur), float(p50), float(p99), int(errs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 s runs")
    a = ap.parse_args()
    if a.quick:
        a.seconds = 3
    tmp = tempfile.mkdtemp(prefix="ringkv-hbench-")
    lua = os.path.join(tmp, "kv.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    port, hport = free_port(), free_port()
    argv = [os.path.join(a.build, "ringkvd"), "--port", str(port),
            "--http-port", str(hport), "--peer-port", str(free_port()),
            "--data-dir", os.path.join(tmp, "data"), "--sync", "every:1000",
            "--loglevel", "warn"]
    ok = True
    node = None
    print("machine: %s" % machine())
    print("RESP: redis-benchmark -c 50 -d 100 -r 100000 -P 1; HTTP: wrk -t 2 "
          "-c 50 -d %ds, PUT/GET /kv/key:<0..99999> (100 B)\n" % a.seconds)
    print("| op | RESP ops/s | HTTP ops/s | ratio | RESP p50/p99 ms | "
          "HTTP p50/p99 ms |")
    print("|---|---|---|---|---|---|")
    sys.stdout.flush()
    try:
        node = Proc(argv, port, os.path.join(tmp, "log"))
        for test, method in (("set", "PUT"), ("get", "GET")):
            h = wrk(hport, method, a.seconds, lua)
            r = benchmark(port, test, 1, max(50000, int(h[0] * a.seconds)))
            if h[3]:
                raise RuntimeError("%d HTTP errors during %s" % (h[3], method))
            print("| %s | %.0f | %.0f | %.2f | %.3f/%.3f | %.3f/%.3f |" % (
                method, r[0], h[0], h[0] / r[0], r[1], r[2], h[1], h[2]))
            sys.stdout.flush()
    except Exception as e:  # print what failed, keep the exit code honest
        print("bench failed: %s" % e, file=sys.stderr)
        ok = False
    finally:
        if node:
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

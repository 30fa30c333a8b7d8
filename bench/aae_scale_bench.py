#!/usr/bin/env python3
"""Active anti-entropy at scale (issue 14): "CPU and I/O cost at idle with
1M keys (target < 2% of one core), time to detect and repair 1,000
divergent keys among 1M (target < 60 s), memory per partition tree."

A 3-node cluster on 127.0.0.1 (N=3 R=2 W=2, --sync every:1000, the
default AAE settings unless --extra gives others) is loaded with K keys
of 100-byte values (three `redis-cli --pipe` streams, one per node), and
once every node reports its trees built (INFO cluster aae_trees_built ==
aae_trees):

1. Idle cost: with no client traffic, each ringkvd's CPU time
   (/proc/PID/stat utime+stime), I/O (/proc/PID/io: read_bytes and
   write_bytes, what reached the block layer; rchar and wchar, every
   read/write syscall, sockets included) and the aae_exchanges it
   completed, over --idle-seconds; RSS per node; tree memory computed from
   the tree layout of src/cluster/aae.h and node_internal.h.
   Then (unless --no-paused) the same sample on the same processes with
   the exchanges paused (CONFIG SET aae-exchange-interval-ms 86400000,
   trees kept): at idle the exchanges are all AAE does.
2. Divergence repair: node C is stopped (SIGTERM), D existing keys get new
   values written through A and B (W=2: acknowledged by A and B; the
   coordinator keeps a hint for C), A and B are stopped and their hint
   stores (DATA_DIR/hints) deleted, as tests/integration/test_aae.py does,
   and all three are started again.  Then, with no client read through
   the cluster, RINGKV.LOCALGET on C is polled for those D keys until C
   holds every new value.  Times are given from the restart and from the
   moment every node's trees were built again (trees are not persisted:
   every start rebuilds them at up to 50,000 keys/s).  --stagger S
   starts C S seconds after A and B instead, so the three nodes' round
   robins over the partitions (all start at partition 0) are out of step.
3. Baseline (unless --no-baseline): CONFIG SET aae off on every node and
   the same idle sample (on the processes restarted in 2, so not the same
   state as in 1: the paused sample is the fair comparison).

Servers are stopped by PID at the end, also on failure.

Usage: bench/aae_scale_bench.py BUILD_DIR [--keys 1000000] [--diverge 1000]
       [--idle-seconds 60] [--repair-timeout 600] [--extra "ARGS"]
       [--no-baseline] [--no-paused] [--no-idle] [--stagger S] [--quick]
       [--hold S] [--no-diverge]

--hold S keeps the loaded cluster idle for S seconds once the trees are
built (before step 1), printing each node's PID, so that perf, strace or
pidstat can be attached to an idle node; --no-diverge skips step 2 (and
with it the baseline of step 3).
"""
import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_bench import (cluster_secret_args, free_port, machine,  # noqa: E402
                         rss_kib, wait_port)

VALUE = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Node:
    """One ringkvd that can be stopped and started again on the same ports
    and data dir."""

    def __init__(self, build, tmp, name, extra):
        self.name = name
        self.port, self.peer, self.http = free_port(), free_port(), free_port()
        self.dir = os.path.join(tmp, name)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.dir)
        self.argv = [os.path.join(build, "ringkvd"), "--bind", "127.0.0.1",
                     "--port", str(self.port), "--peer-port", str(self.peer),
                     "--http-port", str(self.http), "--data-dir", self.data,
                     "--node-id", name, "--sync", "every:1000",
                     "--loglevel", "warn",
                     "--n", "3", "--r", "2", "--w", "2"] + \
            cluster_secret_args() + list(extra)
        self.p = None
        self.log = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log = open(os.path.join(self.dir, "log.%d" % self.starts), "wb")
        self.p = subprocess.Popen(self.argv, stdout=self.log,
                                  stderr=subprocess.STDOUT)

    def wait(self):
        wait_port(self.port, self.p, timeout=120)

    @property
    def pid(self):
        return self.p.pid

    def stop(self, sig=signal.SIGTERM):
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.log:
            self.log.close()
            self.log = None


class Resp:
    """A minimal pipelined RESP2 client (no third-party module needed)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), 10)
        self.s.settimeout(60)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    @staticmethod
    def enc(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def read(self):
        line = self.f.readline()
        if not line:
            raise RuntimeError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def pipeline(self, cmds, chunk=1000):
        out = []
        for i in range(0, len(cmds), chunk):
            part = cmds[i:i + chunk]
            self.s.sendall(b"".join(self.enc(c) for c in part))
            out.extend(self.read() for _ in part)
        return out

    def call(self, *args):
        return self.pipeline([args])[0]


def info(port):
    c = Resp(port)
    try:
        body = c.call("INFO", "cluster")
    finally:
        c.close()
    if isinstance(body, Exception):
        raise body
    kv = {}
    for line in body.decode().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            kv[k] = v
    return kv


def key(i):
    return "aae:%09d" % i


def old_value(i):
    return ("v0-%d-" % i).ljust(VALUE, "x")


def new_value(i):
    return ("v1-%d-" % i).ljust(VALUE, "y")


def load(nodes, k):
    """Keys 0..k-1 in three contiguous ranges, one redis-cli --pipe each."""
    t0 = time.monotonic()
    procs = []
    for j, n in enumerate(nodes):
        lo, hi = k * j // len(nodes), k * (j + 1) // len(nodes)
        p = subprocess.Popen(["redis-cli", "-p", str(n.port), "--pipe"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        procs.append((p, lo, hi))
    # feed the three in turns, 5,000 commands at a time
    pos = [lo for _, lo, _ in procs]
    live = True
    while live:
        live = False
        for j, (p, lo, hi) in enumerate(procs):
            if pos[j] >= hi:
                continue
            live = True
            end = min(hi, pos[j] + 5000)
            p.stdin.write(b"".join(Resp.enc(("SET", key(i), old_value(i)))
                                   for i in range(pos[j], end)))
            pos[j] = end
            if end >= hi:
                p.stdin.close()
    for p, lo, hi in procs:
        out = p.stdout.read().decode()
        p.wait()
        if "errors: 0" not in out or p.returncode != 0:
            raise RuntimeError("load failed: %s" % out.strip())
    return time.monotonic() - t0


def wait_trees(nodes, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        infos = [info(n.port) for n in nodes]
        if all(int(i.get("aae_trees", "0")) > 0 and
               i.get("aae_trees_built") == i.get("aae_trees") for i in infos):
            return time.monotonic() - t0
        time.sleep(0.25)
    raise RuntimeError("trees not built within %d s: %s" % (
        timeout, [(i.get("aae_trees_built"), i.get("aae_trees"))
                  for i in infos]))


def wait_agreement(nodes, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        infos = [info(n.port) for n in nodes]
        if all(i.get("cluster_members") == str(len(nodes)) and
               i.get("cluster_members_up") == str(len(nodes)) and
               i.get("cluster_agreement") == "1" for i in infos):
            return
        time.sleep(0.2)
    raise RuntimeError("cluster did not agree within %d s" % timeout)


def form(build, nodes):
    cli = os.path.join(build, "ringkv")
    seed = "127.0.0.1:%d" % nodes[0].peer
    for n in nodes[1:]:
        subprocess.run([cli, "-p", str(n.port), "cluster", "join", seed],
                       check=True, capture_output=True, timeout=60)
    wait_agreement(nodes)


def proc_sample(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    io = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, v = line.split(":")
            io[k] = int(v)
    return cpu, io


def idle_sample(nodes, seconds, label):
    """Per node: % of one core, I/O bytes/s, exchanges, over `seconds`."""
    ex0 = [int(info(n.port)["aae_exchanges"]) for n in nodes]
    s0 = [proc_sample(n.pid) for n in nodes]
    w0 = time.monotonic()
    load0 = os.getloadavg()[0]
    time.sleep(seconds)
    s1 = [proc_sample(n.pid) for n in nodes]
    w1 = time.monotonic()
    infos = [info(n.port) for n in nodes]
    ex1 = [int(i["aae_exchanges"]) for i in infos]
    wall = w1 - w0
    rows = []
    for j, n in enumerate(nodes):
        (c0, io0), (c1, io1) = s0[j], s1[j]
        rate = {k: (io1[k] - io0[k]) / wall
                for k in ("read_bytes", "write_bytes", "rchar", "wchar")}
        rows.append({
            "node": n.name, "cpu": 100.0 * (c1 - c0) / wall, "io": rate,
            "exchanges": ex1[j] - ex0[j], "rss": rss_kib(n.pid),
            "failures": int(infos[j]["aae_exchange_failures"]),
            "differing": int(infos[j]["aae_keys_differing"]),
        })
    print("\n%s: %.1f s, load average %.2f -> %.2f" % (
        label, wall, load0, os.getloadavg()[0]))
    print("| node | CPU % of one core | vs target 2% | disk read B/s | "
          "disk write B/s | rchar B/s | wchar B/s | exchanges | RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %.2f | %.2fx | %.0f | %.0f | %.0f | %.0f | %d | %.1f |"
              % (r["node"], r["cpu"], r["cpu"] / 2.0, r["io"]["read_bytes"],
                 r["io"]["write_bytes"], r["io"]["rchar"], r["io"]["wchar"],
                 r["exchanges"], r["rss"] / 1024.0))
    sys.stdout.flush()
    return rows


def tree_memory(q):
    """Bytes per partition tree and per node, from the layout in
    src/cluster/aae.h / node_internal.h: 65536/Q leaves (64..1024) of 8
    bytes, leaves/64 branches of 8 bytes, a 56-byte struct node__aae_part,
    and glibc's 16-byte chunk header on each of the two arrays.  A node
    also has one struct node__aae (17,248 bytes on x86-64: the exchange
    slots) and the buffers of its exchanges (a KEYS reply up to 1 MiB)."""
    leaves = max(64, min(1024, 65536 // q))
    per = leaves * 8 + (leaves // 64) * 8 + 56 + 2 * 16
    return leaves, per, per * q


def localget_new(c, idx):
    """How many of the keys idx hold their new value in C's own store."""
    got = c.pipeline([("RINGKV.LOCALGET", key(i)) for i in idx])
    return [i for i, g in zip(idx, got)
            if g != new_value(i).encode()]


def diverge_and_repair(build, nodes, d, k, timeout, stagger=0.0):
    """stagger > 0: A and B restart first and C `stagger` seconds later,
    so the three exchange schedules do not start together; times are then
    from C's start."""
    a, b, c = nodes
    idx = [i * k // d for i in range(d)]
    c.stop()
    # writes through A and B only, acknowledged by both (W=2)
    for j, n in enumerate((a, b)):
        cl = Resp(n.port)
        part = idx[j::2]
        got = cl.pipeline([("SET", key(i), new_value(i)) for i in part])
        cl.close()
        bad = [g for g in got if g != "OK"]
        if bad:
            raise RuntimeError("%d writes failed through %s: %r" % (
                len(bad), n.name, bad[:3]))
    hints = [int(info(n.port).get("hints_pending", "0")) for n in (a, b)]
    for n in (a, b):
        n.stop()
        for f in os.listdir(n.data):
            if f.startswith("hints"):
                p = os.path.join(n.data, f)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
    if stagger > 0:
        for n in (a, b):
            n.start()
        for n in (a, b):
            n.wait()
        time.sleep(stagger)
    t0 = time.monotonic()
    for n in nodes:
        if n.p.poll() is not None:  # not running: start it
            n.start()
    for n in nodes:
        n.wait()
    t_listen = time.monotonic() - t0
    cc = Resp(c.port)
    left = localget_new(cc, idx)
    diverged = len(left)
    t_built = None
    t_first = None
    last = 0
    trace = []
    while left and time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        now = time.monotonic() - t0
        if t_built is None:
            infos = [info(n.port) for n in nodes]
            if all(int(i.get("aae_trees", "0")) > 0 and
                   i.get("aae_trees_built") == i.get("aae_trees")
                   for i in infos):
                t_built = now
        left = localget_new(cc, left)
        if t_first is None and len(left) < diverged:
            t_first = now
        if now - last >= 5:
            last = now
            trace.append("%.0f s: %d left" % (now, len(left)))
    t_done = time.monotonic() - t0
    cc.close()
    if t_built is None:
        t_built = wait_trees(nodes, 600) + (time.monotonic() - t0)
    infos = [info(n.port) for n in nodes]
    return {
        "hints_deleted": hints, "diverged": diverged, "left": len(left),
        "t_listen": t_listen, "t_built": t_built, "t_done": t_done,
        "t_first": t_first,
        "trace": trace, "infos": infos,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--diverge", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--repair-timeout", type=float, default=600)
    ap.add_argument("--extra", default="",
                    help="more ringkvd flags for every node, e.g. "
                    "\"--aae-exchange-interval-ms 100\"")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the idle sample with aae off")
    ap.add_argument("--stagger", type=float, default=0.0,
                    help="restart C this many seconds after A and B "
                    "(default 0: all three at once)")
    ap.add_argument("--no-paused", action="store_true",
                    help="skip the idle sample with exchanges paused")
    ap.add_argument("--no-idle", action="store_true",
                    help="only the divergence repair (no idle samples)")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="keep the loaded cluster idle this many seconds "
                    "before the idle samples (PIDs printed, for profiling)")
    ap.add_argument("--no-diverge", action="store_true",
                    help="skip the divergence repair (and the baseline)")
    ap.add_argument("--quick", action="store_true",
                    help="50,000 keys, 20 s idle samples, no baseline")
    a = ap.parse_args()
    if a.quick:
        a.keys, a.idle_seconds, a.no_baseline = 50000, 20, True
        a.no_paused = True
    extra = shlex.split(a.extra)
    tmp = tempfile.mkdtemp(prefix="ringkv-aaescale-")
    nodes = []
    ok = True
    t_start = time.monotonic()
    print("machine: %s" % machine())
    print("uptime: %s" % subprocess.run(["uptime"], capture_output=True,
                                        text=True).stdout.strip())
    print("3 nodes on 127.0.0.1, N=3 R=2 W=2, --sync every:1000, "
          "AAE flags: %s; %d keys of %d bytes, %d divergent\n" % (
              a.extra or "defaults", a.keys, VALUE, a.diverge))
    sys.stdout.flush()
    try:
        for name in ("A", "B", "C"):
            n = Node(a.build, tmp, name, extra)
            nodes.append(n)
            n.start()
            n.wait()
        form(a.build, nodes)
        took = load(nodes, a.keys)
        print("loaded %d keys in %.1f s (%.0f keys/s)" % (
            a.keys, took, a.keys / took))
        built = wait_trees(nodes, 600)
        print("trees built %.1f s after the load ended" % built)
        i0 = info(nodes[0].port)
        q = int(i0["aae_trees"])
        leaves, per, pernode = tree_memory(q)
        print("tree memory: Q=%d, %d leaves a tree: %d bytes a tree, "
              "%.0f KiB a node (%d trees; independent of the key count)" % (
                  q, leaves, per, pernode / 1024.0, q))
        if a.hold > 0:
            print("holding %.0f s for profiling: %s" % (a.hold, ", ".join(
                "%s pid %d" % (n.name, n.pid) for n in nodes)))
            sys.stdout.flush()
            time.sleep(a.hold)
        if not a.no_idle:
            time.sleep(5)  # let the load's tail (sync, buffers) settle
            on = idle_sample(nodes, a.idle_seconds,
                             "idle with %d keys, AAE %s" % (
                                 a.keys, a.extra or "defaults"))
            if not a.no_paused:
                # the same processes, trees kept, exchanges paused: at idle
                # (no writes, no tree toggles) the exchanges are all AAE
                # does.  (The divergence part below restarts the nodes,
                # which brings the flags' interval back.)
                for n in nodes:
                    c = Resp(n.port)
                    rep = c.call("CONFIG", "SET", "aae-exchange-interval-ms",
                                 "86400000")
                    c.close()
                    if rep != "OK":
                        raise RuntimeError("CONFIG SET: %r" % rep)
                time.sleep(2)
                paused = idle_sample(
                    nodes, a.idle_seconds, "same processes, exchanges "
                    "paused (aae-exchange-interval-ms 86400000, trees kept)")
                print("\nexchanges' share at idle (on - paused, same "
                      "processes), %% of one core: %s" % (", ".join(
                          "%s %+.2f" % (x["node"], x["cpu"] - y["cpu"])
                          for x, y in zip(on, paused))))

        if a.no_diverge:
            return 0
        r = diverge_and_repair(a.build, nodes, a.diverge, a.keys,
                               a.repair_timeout, a.stagger)
        if a.stagger > 0:
            print("\n(--stagger %g: A and B restarted %g s before C; "
                  "times below are from C's start)" % (a.stagger, a.stagger))
        print("\ndivergence: %d keys rewritten through A and B while C was "
              "down; hints pending on A/B before deletion: %s" % (
                  a.diverge, "/".join(str(h) for h in r["hints_deleted"])))
        print("after the restart C lacked the new value of %d of %d keys"
              % (r["diverged"], a.diverge))
        print("restart: all three listening after %.1f s; every tree built "
              "%.1f s after the restart" % (r["t_listen"], r["t_built"]))
        if r["left"]:
            ok = False
            print("NOT REPAIRED: %d keys still old on C after %.0f s" % (
                r["left"], r["t_done"]))
        else:
            print("C held every new value %.1f s after the restart, "
                  "%.1f s after every tree was built (target < 60 s: "
                  "%.2fx / %.2fx)" % (
                      r["t_done"], max(0.0, r["t_done"] - r["t_built"]),
                      r["t_done"] / 60.0,
                      max(0.0, r["t_done"] - r["t_built"]) / 60.0))
        if r["t_first"] is not None:
            print("first key repaired on C %.1f s after the restart"
                  % r["t_first"])
        print("progress: %s" % "; ".join(r["trace"]))
        print("| node | aae_exchanges | aae_keys_differing | "
              "aae_keys_repaired | aae_exchange_failures |")
        print("|---|---:|---:|---:|---:|")
        for n, i in zip(nodes, r["infos"]):
            print("| %s | %s | %s | %s | %s |" % (
                n.name, i["aae_exchanges"], i["aae_keys_differing"],
                i["aae_keys_repaired"], i["aae_exchange_failures"]))
        sys.stdout.flush()

        if not a.no_baseline and not a.no_idle:
            for n in nodes:
                c = Resp(n.port)
                rep = c.call("CONFIG", "SET", "aae", "off")
                c.close()
                if rep != "OK":
                    raise RuntimeError("CONFIG SET aae off: %r" % rep)
            time.sleep(5)
            off = idle_sample(nodes, a.idle_seconds,
                              "baseline: idle with %d keys, aae off" % a.keys)
            print("\nwhat AAE adds at idle (on - off), %% of one core: %s" % (
                ", ".join("%s %+.2f" % (x["node"], x["cpu"] - y["cpu"])
                          for x, y in zip(on, off))))
    except Exception as e:  # print what failed, keep the exit code honest
        print("bench failed: %s" % e, file=sys.stderr)
        ok = False
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\ntotal run time %.0f s" % (time.monotonic() - t_start))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

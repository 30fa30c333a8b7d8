"""A multi-node ringkv cluster of real ringkvd processes, for the black-box
cluster tests (tests/integration/test_cluster.py).

Every node is a conftest.Server on 127.0.0.1 with its own free RESP and peer
ports, node id and data directory. Nodes are started through conftest's
`server_factory`, so they are stopped by PID at the end of the test (also on
failure) and their logs are checked for sanitizer reports there; the
`cluster_factory` fixture (cluster_factory_gen) additionally resumes SIGSTOPped nodes first
so that the SIGTERM of that teardown is not stuck behind a stopped process.

Clusters are formed with the real CLI (`ringkv -p PORT cluster join
HOST:PEERPORT`), and convergence is judged from INFO cluster
(cluster_members, cluster_members_up, cluster_agreement); a timeout fails
with every node's INFO cluster in the message.
"""
import os
import re
import signal
import subprocess
import time

import pytest
import redis

from conftest import BUILD, free_port, wait_port, wait_ready

CLI = os.path.join(BUILD, "ringkv")


def parse_info(raw):
    """INFO text -> {key: value} with string values (no number guessing:
    redis-py's parser would turn a hex digest like "12e4" into a float)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    out = {}
    for line in raw.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        out[k] = v
    return out


STATUS_LINE1 = re.compile(
    r"^cluster\s+(?P<name>\S*)\s+version\s+(?P<version>\d+)\s+"
    r"ring\s+(?P<ring>\d+)\s+partitions\s+n=(?P<n>\d+)\s+r=(?P<r>\d+)\s+"
    r"w=(?P<w>\d+)\s+agreement\s+(?P<agreement>yes|no)"
    r"(?:\s+hints\s+(?P<hints>\d+))?\s*$")


def parse_status(text):
    """The RINGKV.CLUSTER STATUS table -> (header dict, [row dict]).

    Raises AssertionError with the text when it does not have the shape
    the interface specifies."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) >= 3, "status too short:\n%s" % text
    m = STATUS_LINE1.match(lines[0].strip())
    assert m, "status line 1 does not match the spec:\n%s" % text
    head = m.groupdict()
    for k in ("version", "ring", "n", "r", "w"):
        head[k] = int(head[k])
    # line 2: "transition none" or "transition epoch E  partitions done
    # D/Q  receiving here X/Y ..." (issue 14)
    assert lines[1].startswith("transition "), \
        "status line 2 is not the transition line:\n%s" % text
    head["transition"] = lines[1][len("transition "):].strip()
    # then one indented line per partition this node receives
    k = 2
    head["transfers"] = []
    while k < len(lines) and lines[k].startswith("  receiving "):
        head["transfers"].append(lines[k].strip())
        k += 1
    lines = lines[:1] + lines[k:]
    cols = lines[1].split()
    assert cols == ["NODE_ID", "ADDRESS", "RESP", "STATUS", "PARTITIONS",
                    "SEEN", "VERSION"], "status header line:\n%s" % text
    rows = []
    for ln in lines[2:]:
        f = ln.split()
        assert len(f) == 7, "status row with %d columns: %r\n%s" % (
            len(f), ln, text)
        rows.append({"node_id": f[0], "address": f[1], "resp": int(f[2]),
                     "status": f[3], "partitions": int(f[4]), "seen": f[5],
                     "version": f[6]})
    return head, rows


class Node:
    """One cluster member: a conftest.Server plus its node id and peer
    port."""

    def __init__(self, server, node_id, peer_port):
        self.server = server
        self.node_id = node_id
        self.peer_port = peer_port
        self.paused = False

    @property
    def port(self):
        return self.server.port

    @property
    def peer_addr(self):
        return "127.0.0.1:%d" % self.peer_port

    @property
    def alive(self):
        return self.server.proc is not None and self.server.proc.poll() is None

    def client(self, **kw):
        kw.setdefault("socket_timeout", 15)
        return self.server.client(**kw)

    def __repr__(self):
        return "<%s :%d peer %d>" % (self.node_id, self.port, self.peer_port)


class Cluster:
    """M ringkvd nodes. `start()` starts them as M one-node clusters,
    `form()` joins nodes 2..M to node 1 with the CLI and waits for
    convergence."""

    def __init__(self, server_factory, m, args=(), id_prefix="node"):
        self.nodes = []
        used = set()

        def port():
            # free_port() releases the port at once: never hand out one
            # twice within this cluster
            while True:
                p = free_port()
                if p not in used:
                    used.add(p)
                    return p

        for i in range(1, m + 1):
            resp, peer = port(), port()
            node_id = "%s%d" % (id_prefix, i)
            s = server_factory(args=["--peer-port", str(peer), "--node-id",
                                     node_id] + list(args), start=False,
                               port=resp)
            # its HTTP port too must not be another node's port (port()
            # marks what it returns as used: a loop on `in used` after it
            # never ended, the flake of test_redis_benchmark_cluster_smoke)
            if s.http_port in used:
                s.http_port = port()
            else:
                used.add(s.http_port)
            self.nodes.append(Node(s, node_id, peer))
        self._clients = {}

    def __getitem__(self, i):
        return self.nodes[i]

    def __len__(self):
        return len(self.nodes)

    # --- processes -------------------------------------------------------

    def start(self):
        """Starts every node (in parallel) and waits until each answers
        PING."""
        for n in self.nodes:
            n.server.start(wait=False)
        for n in self.nodes:
            wait_port(n.port, proc=n.server.proc)
            wait_ready(n.port, proc=n.server.proc)
        return self

    def kill(self, node):
        """SIGKILL; the data dir stays for restart()."""
        self.drop_client(node)
        if node.paused:
            node.paused = False
        return node.server.kill()

    def restart(self, node):
        """Starts a killed/stopped node again: same flags, same data dir."""
        self.drop_client(node)
        if node.server.proc is not None:
            node.server.stop()
        node.server.start()
        return node

    def pause(self, node):
        os.kill(node.server.pid, signal.SIGSTOP)
        node.paused = True

    def resume(self, node):
        os.kill(node.server.pid, signal.SIGCONT)
        node.paused = False

    def resume_all(self):
        for n in self.nodes:
            if n.paused and n.alive:
                try:
                    os.kill(n.server.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                n.paused = False

    def close_clients(self):
        for c in self._clients.values():
            try:
                c.close()
            except Exception:
                pass
        self._clients.clear()

    # --- clients and the CLI ---------------------------------------------

    def c(self, node):
        """A cached redis-py client (bytes replies) for `node`."""
        if isinstance(node, int):
            node = self.nodes[node]
        if node.node_id not in self._clients:
            self._clients[node.node_id] = node.client()
        return self._clients[node.node_id]

    def drop_client(self, node):
        for key in (node.node_id, ("info", node.node_id)):
            c = self._clients.pop(key, None)
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass

    def cli(self, node, *args, check=True, timeout=60):
        """Runs `ringkv -p PORT ARGS...`; returns the CompletedProcess
        (text). check=True fails the test on a non-zero exit."""
        cmd = [CLI, "-p", str(node.port)] + [str(a) for a in args]
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           universal_newlines=True)
        if check and p.returncode != 0:
            pytest.fail("%s -> exit %d\nstdout: %s\nstderr: %s" % (
                " ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def join(self, node, seed):
        """`ringkv -p NODE cluster join SEED_PEER_ADDR` via the CLI."""
        p = self.cli(node, "cluster", "join", seed.peer_addr)
        assert p.stdout.strip() == "OK", (node, p.stdout, p.stderr)
        return p

    # --- cluster state ----------------------------------------------------

    def info(self, node):
        """INFO cluster of `node` as {str: str}."""
        key = ("info", node.node_id)
        c = self._clients.get(key)
        if c is None:
            c = node.client()
            # the raw text: redis-py's INFO parser guesses number types
            c.set_response_callback("INFO", lambda r, **kw: r)
            self._clients[key] = c
        return parse_info(c.execute_command("INFO", "cluster"))

    def status_text(self, node):
        raw = self.c(node).execute_command("RINGKV.CLUSTER", "STATUS")
        return raw.decode() if isinstance(raw, bytes) else raw

    def status(self, node):
        return parse_status(self.status_text(node))

    def describe(self, nodes=None):
        """Every node's INFO cluster (for failure messages)."""
        out = []
        for n in nodes or self.nodes:
            if not n.alive:
                out.append("%r: not running" % (n,))
                continue
            if n.paused:
                out.append("%r: SIGSTOPped" % (n,))
                continue
            try:
                info = self.info(n)
                out.append("%r: %s" % (n, " ".join(
                    "%s=%s" % kv for kv in sorted(info.items()))))
            except Exception as e:  # noqa: BLE001 - diagnostics only
                out.append("%r: INFO failed: %r" % (n, e))
        return "\n".join(out)

    def wait_until(self, pred, what, timeout=20.0, nodes=None, interval=0.05):
        """Polls pred() until true; returns the seconds it took. On timeout
        fails with `what` and every node's INFO cluster."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last_exc = None
        while True:
            try:
                if pred():
                    return time.monotonic() - t0
            except (redis.exceptions.RedisError, OSError, KeyError,
                    ValueError) as e:
                last_exc = e
            if time.monotonic() >= deadline:
                pytest.fail("timed out after %.1fs waiting for %s (last "
                            "error: %r)\n%s" % (timeout, what, last_exc,
                                                self.describe(nodes)))
            time.sleep(interval)

    def converged(self, nodes, members, require_up=True):
        """True when every node in `nodes` reports cluster_members ==
        members, cluster_agreement 1 (and cluster_members_up == members
        when require_up) and all report the same state version."""
        versions = set()
        for n in nodes:
            info = self.info(n)
            if int(info["cluster_members"]) != members:
                return False
            if info.get("cluster_agreement") != "1":
                return False
            if require_up and int(info["cluster_members_up"]) != members:
                return False
            versions.add(info["cluster_state_version"])
        return len(versions) == 1

    def wait_converged(self, members=None, nodes=None, timeout=20.0,
                       require_up=True):
        nodes = nodes or [n for n in self.nodes if n.alive]
        members = len(self.nodes) if members is None else members
        return self.wait_until(
            lambda: self.converged(nodes, members, require_up),
            "%d nodes to agree on %d members" % (len(nodes), members),
            timeout=timeout, nodes=nodes)

    def form(self, count=None, timeout=30.0):
        """Joins nodes 2..count (default: all) to node 1 with the CLI, one
        after the other, and waits until those agree. Returns the seconds
        from the last join command to convergence."""
        members = self.nodes[:count or len(self.nodes)]
        seed = members[0]
        t_last = None
        for n in members[1:]:
            t_last = time.monotonic()
            self.join(n, seed)
        if t_last is None:
            return 0.0
        self.wait_converged(len(members), nodes=members, timeout=timeout)
        return time.monotonic() - t_last

    # --- fault injection (RINGKV.CLUSTER FAULT, test builds) --------------

    def fault(self, node, peer, mode):
        """Drop peer traffic on `node` from/to `peer`: in|out|both|none."""
        peer_id = peer.node_id if isinstance(peer, Node) else peer
        r = self.c(node).execute_command("RINGKV.CLUSTER", "FAULT", peer_id,
                                         mode)
        assert r in (b"OK", "OK", True), r
        return r

    def fault_clear(self, node):
        r = self.c(node).execute_command("RINGKV.CLUSTER", "FAULT", "CLEAR")
        assert r in (b"OK", "OK", True), r

    def partition(self, side_a, side_b, mode="both"):
        """Every node of side_a drops `mode` for every node of side_b and
        vice versa."""
        for a in side_a:
            for b in side_b:
                self.fault(a, b, mode)
        for b in side_b:
            for a in side_a:
                self.fault(b, a, mode)

    def heal(self):
        for n in self.nodes:
            if n.alive and not n.paused:
                self.fault_clear(n)


def cluster_factory_gen(server_factory):
    """The body of the `cluster_factory` fixture (test modules define it
    as `yield from cluster_factory_gen(server_factory)`):
    cluster_factory(m, args=[...], form=True) -> a started (and, by
    default, formed) Cluster. Paused nodes are resumed and clients closed
    at the end; conftest's server_factory then stops every process by PID
    and checks for sanitizer reports."""
    made = []

    def make(m, args=(), form=True, timeout=30.0):
        """form: True (all m nodes), False, or how many to join."""
        cl = Cluster(server_factory, m, args=args)
        made.append(cl)
        cl.start()
        if form:
            cl.form(count=None if form is True else form, timeout=timeout)
        return cl

    try:
        yield make
    finally:
        for cl in made:
            cl.resume_all()
            cl.close_clients()

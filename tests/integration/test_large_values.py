"""Large values in a 3-node cluster (issue 12 item 4): values cross the
peer links in CHUNK frames (peer protocol version 2), writes over
cluster-max-value-bytes get a clear error up front on RESP and HTTP, and a
big transfer neither fails on a full peer queue nor gets a node marked
down.

Measured before the change: NOQUORUM from about 60 MiB up (a 64 MiB
per-peer send queue refused the frame, and every probe and reply queued
behind it), every GET of a stored 100 MiB value failing, and peers marked
down during the transfer.

Every node is a real ringkvd started through conftest's server_factory and
stopped by PID at the end of the test, also on failure.
"""
import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest
import redis

from cluster_util import cluster_factory_gen

MiB = 1024 * 1024


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


class SmallGets(threading.Thread):
    """GETs a 100-byte key on one node in a loop, one at a time, keeping
    every latency; every ~0.2 s it also reads every node's INFO cluster and
    remembers any node that saw fewer than all members up."""

    def __init__(self, cl, node):
        super().__init__(daemon=True)
        self.r = cl[node].client(socket_timeout=30)
        self.infos = [n.client(socket_timeout=30) for n in cl.nodes]
        self.r.set("small", b"s" * 100)
        self.lat = []
        self.errors = []
        self.down = []
        self.stop_ev = threading.Event()

    def run(self):
        last_info = 0.0
        while not self.stop_ev.is_set():
            t0 = time.perf_counter()
            try:
                assert self.r.get("small") == b"s" * 100
            except (redis.RedisError, AssertionError) as e:
                self.errors.append(repr(e))
            self.lat.append(time.perf_counter() - t0)
            if time.perf_counter() - last_info > 0.2:
                last_info = time.perf_counter()
                for i, c in enumerate(self.infos):
                    try:
                        info = c.info("cluster")
                    except redis.RedisError as e:
                        self.errors.append(repr(e))
                        continue
                    if int(info.get("cluster_members_up", 0)) != 3:
                        self.down.append((i, info.get("cluster_members_up")))
            time.sleep(0.005)

    def stop(self):
        self.stop_ev.set()
        self.join(30)
        for c in [self.r] + self.infos:
            c.close()

    def p99_ms(self):
        xs = sorted(self.lat)
        return xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000


def check_all_up(cl):
    for n in cl.nodes:
        info = n.client().info("cluster")
        assert int(info["cluster_members_up"]) == 3, info


@pytest.mark.slow
def test_large_values_set_and_get_through_every_node(cluster_factory):
    """100 MiB values SET and GET through every node of a 3-node cluster
    (and one of 120 MiB under a raised limit), while small GETs run on the
    first node: every operation succeeds, the small GETs never fail, and
    every node is up again at the end.  Prints the small GETs' p99 and any
    moment a node was seen down: while the loop is held for a 100 MiB copy
    (the stall the xfail test below documents), a failure detector may
    suspect it under a sanitizer build; that is asserted there, not
    here."""
    cl = cluster_factory(3, args=["--cluster-max-value-bytes", "128mb",
                                  "--sync", "none"])
    reader = SmallGets(cl, 0)
    reader.start()
    t_start = time.time()
    try:
        val = os.urandom(MiB) * 100
        for i in range(3):
            c = cl[i].client(socket_timeout=60)
            assert c.set("big%d" % i, val) is True
            got = c.get("big%d" % i)
            assert got is not None and len(got) == len(val)
            assert got == val
            c.close()
        c = cl[1].client(socket_timeout=60)
        bigger = val + os.urandom(MiB) * 20
        assert c.set("bigger", bigger) is True
        assert c.get("bigger") == bigger
        c.close()
    finally:
        reader.stop()
    print("\nlarge values: %.1f s, %d small GETs on node 1, p99 %.1f ms, "
          "max %.1f ms" % (time.time() - t_start, len(reader.lat),
                           reader.p99_ms(), max(reader.lat) * 1000))
    if reader.down:
        print("seen down meanwhile (node, members up): %r" % reader.down[:5])
    assert reader.errors == []
    deadline = time.time() + 15
    while True:
        try:
            check_all_up(cl)
            break
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason=(
    "the loop still holds a 100 MiB value for hundreds of ms (copies "
    "between the RESP buffer, the op, the dvv object and the peer frames, "
    "and the engine read on GET all run on the loop thread): small GETs "
    "wait behind it, and a failure detector may suspect the node"))
def test_large_values_small_gets_keep_p99_under_50ms(cluster_factory):
    cl = cluster_factory(3, args=["--cluster-max-value-bytes", "128mb",
                                  "--sync", "none"])
    reader = SmallGets(cl, 0)
    reader.start()
    try:
        val = os.urandom(MiB) * 100
        c = cl[0].client(socket_timeout=60)
        for i in range(2):
            assert c.set("big%d" % i, val) is True
            assert c.get("big%d" % i) == val
        c.close()
    finally:
        reader.stop()
    print("\nsmall GETs during 100 MiB SET/GET: %d, p99 %.1f ms, max %.1f ms"
          % (len(reader.lat), reader.p99_ms(), max(reader.lat) * 1000))
    assert reader.p99_ms() < 50
    assert reader.down == []  # no node seen down meanwhile


def http_put(port, key, body):
    req = urllib.request.Request("http://127.0.0.1:%d/kv/%s" % (port, key),
                                 data=body, method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_large_values_over_the_limit_get_a_clear_error(cluster_factory):
    """A write whose value would exceed cluster-max-value-bytes is refused
    before anything is sent: -ERR naming the sizes and the setting on RESP
    (SET, APPEND, RINGKV.PUT), 413 with a JSON error on HTTP; a value at
    the limit is stored."""
    limit = 256 * 1024
    cl = cluster_factory(3, args=["--cluster-max-value-bytes", str(limit)])
    c = cl[1].client()
    assert c.config_get("cluster-max-value-bytes") == {
        "cluster-max-value-bytes": str(limit)}
    want = ("value of %d bytes exceeds cluster-max-value-bytes (%d); store "
            "large objects elsewhere and keep a reference here, or raise the "
            "limit")
    with pytest.raises(redis.ResponseError) as e:
        c.set("k", b"x" * (limit + 1))
    assert str(e.value) == want % (limit + 1, limit)
    assert c.get("k") is None
    assert c.set("k", b"x" * limit) is True
    assert c.strlen("k") == limit
    with pytest.raises(redis.ResponseError) as e:
        c.append("k", b"y")
    assert str(e.value) == want % (limit + 1, limit)
    assert c.strlen("k") == limit
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command("RINGKV.PUT", "k2", "", b"z" * (limit + 10))
    assert str(e.value) == want % (limit + 10, limit)

    status, body = http_put(cl[2].server.http_port, "h", b"x" * (limit + 5))
    assert status == 413, body
    j = json.loads(body)
    assert j["code"] == "value_too_large"
    assert j["value_bytes"] == limit + 5 and j["limit_bytes"] == limit
    assert j["error"] == "ERR " + want % (limit + 5, limit)
    status, _ = http_put(cl[2].server.http_port, "h", b"x" * 1000)
    assert status in (200, 204)

    # the setting can be changed at run time
    assert c.config_set("cluster-max-value-bytes", str(2 * limit)) is True
    assert c.set("k3", b"x" * (limit + 1)) is True


def test_large_values_default_limit_is_64mib(cluster_factory):
    cl = cluster_factory(2)
    c = cl[0].client()
    assert c.config_get("cluster-max-value-bytes") == {
        "cluster-max-value-bytes": str(64 * MiB)}

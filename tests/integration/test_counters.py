"""Counters that converge (issue 16 item 2) through real ringkvd processes:
INCR/DECR/INCRBY/DECRBY in a cluster are PN-counter increments applied
at a coordinating replica (src/cluster/types/counter.c), so increments
through different nodes, and on both sides of a partition, add up
instead of overwriting each other; a DEL removes only the increments it
saw, and a SET concurrent with increments keeps them.

Partitions use the peer-traffic fault hook (RINGKV.CLUSTER FAULT, test
builds). Nodes are stopped by PID at the end (conftest).
"""
import random
import threading
import time

import pytest
import redis

from cluster_util import cluster_factory_gen
from conftest import TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv cluster"),
]


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def set_quorum(cl, r, w):
    for n in cl.nodes:
        assert cl.c(n).config_set("r", str(r))
        assert cl.c(n).config_set("w", str(w))


def local_values(cl, key):
    return [cl.c(n).execute_command("RINGKV.LOCALGET", key)
            for n in cl.nodes]


def test_concurrent_increments_through_every_node_sum_exactly(
        cluster_factory):
    """3 nodes, 2 clients per node, each INCRBY/DECRBY the same key 150
    times with random deltas: the value read through every node, and
    every replica's own copy, is the sum of the acknowledged ones."""
    cl = cluster_factory(3)
    key = "hits"
    total = [0]
    errors = []
    lock = threading.Lock()

    def worker(node, seed):
        rnd = random.Random(seed)
        c = cl.nodes[node].client()
        mine = 0
        try:
            for _ in range(150):
                d = rnd.randint(-5, 20)
                if d < 0:
                    c.decrby(key, -d)
                else:
                    c.incrby(key, d)
                mine += d
        except redis.RedisError as e:  # pragma: no cover - reported below
            errors.append(repr(e))
        finally:
            c.close()
        with lock:
            total[0] += mine

    threads = [threading.Thread(target=worker, args=(i % 3, 1000 + i))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    want = total[0]
    for n in cl.nodes:
        assert int(cl.c(n).get(key)) == want, cl.describe()
    cl.wait_until(lambda: local_values(cl, key) == [str(want).encode()] * 3,
                  "every replica counts %d" % want)


def test_increments_on_both_sides_of_a_partition_add_up(cluster_factory):
    """{A} | {B, C} with W=1: 3 x INCRBY 5 on A, 2 x INCRBY 7 on B; after
    the heal every node reads 10 + 29 (a read-modify-write would keep one
    side's value only)."""
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    assert cl.c(a).incrby("k", 10) == 10
    set_quorum(cl, 1, 1)
    cl.partition([a], [b, c])
    for _ in range(3):
        cl.c(a).incrby("k", 5)
    for _ in range(2):
        cl.c(b).incrby("k", 7)
    assert int(cl.c(a).get("k")) == 25
    assert int(cl.c(b).get("k")) == 24
    cl.heal()
    set_quorum(cl, 3, 2)
    for n in cl.nodes:
        assert int(cl.c(n).get("k")) == 39
    # and it goes on counting from there, through any node
    assert cl.c(c).decr("k") == 38
    assert cl.c(a).incr("k") == 39


def test_delete_removes_only_the_increments_it_saw(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    assert cl.c(a).incrby("k", 10) == 10
    set_quorum(cl, 1, 1)
    cl.partition([a], [b, c])
    assert cl.c(a).delete("k") == 1
    assert cl.c(a).get("k") is None
    assert cl.c(b).incrby("k", 3) == 13
    cl.heal()
    set_quorum(cl, 3, 2)
    # the delete saw the 10; the 3 it did not see stays (add wins)
    for n in cl.nodes:
        assert cl.c(n).get("k") == b"3"
    assert cl.c(a).delete("k") == 1
    for n in cl.nodes:
        assert cl.c(n).get("k") is None
        assert cl.c(n).exists("k") == 0
    assert cl.c(b).incr("k") == 1


def test_set_concurrent_with_increments_keeps_them(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    assert cl.c(a).incrby("k", 10) == 10
    set_quorum(cl, 1, 1)
    cl.partition([a], [b, c])
    assert cl.c(a).set("k", 100)
    assert cl.c(b).incrby("k", 5) == 15
    cl.heal()
    set_quorum(cl, 3, 2)
    # the SET replaced the 10 it saw; the 5 it did not see is added
    for n in cl.nodes:
        assert cl.c(n).get("k") == b"105"
    # a SET that saw everything resets the counter
    assert cl.c(c).set("k", 7)
    for n in cl.nodes:
        assert cl.c(n).get("k") == b"7"
    assert cl.c(b).incrby("k", 3) == 10


def test_counter_errors_ttl_and_transactions(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    ca, cb = cl.c(a), cl.c(b)
    assert ca.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        cb.incr("s")
    assert ca.get("s") == b"abc"
    assert ca.set("big", str(2**63 - 2))
    assert cb.incr("big") == 2**63 - 1
    with pytest.raises(redis.ResponseError, match="overflow"):
        ca.incr("big")
    assert cb.get("big") == str(2**63 - 1).encode()
    # INCR keeps the TTL, as in Redis
    assert ca.set("t", 5, ex=100)
    assert cb.incrby("t", 2) == 7
    assert 90 < ca.ttl("t") <= 100
    # a transaction's increments go as one
    p = cb.pipeline(transaction=True)
    p.incr("m").incrby("m", 4).get("m").decr("m")
    assert p.execute() == [1, 5, b"5", 4]
    assert int(ca.get("m")) == 4
    # the counter is a string to Redis clients
    assert ca.type("m") == b"string"
    assert ca.append("m", "0") == 2
    assert cb.get("m") == b"40"
    assert cb.incr("m") == 41


def test_getall_shows_counter_siblings_and_put_resolves(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    set_quorum(cl, 1, 1)
    cl.partition([a], [b, c])
    cl.c(a).incrby("k", 2)
    time.sleep(0.01)
    cl.c(b).incrby("k", 3)
    cl.heal()
    set_quorum(cl, 3, 2)
    ctx, sibs = cl.c(c).execute_command("RINGKV.GETALL", "k")
    # each sibling shows what it counts by itself; GET shows the sum
    assert sorted(s[0] for s in sibs) == [b"2", b"3"]
    assert cl.c(c).get("k") == b"5"
    assert cl.c(c).execute_command("RINGKV.PUT", "k", ctx, "50") == b"OK"
    for n in cl.nodes:
        assert cl.c(n).get("k") == b"50"

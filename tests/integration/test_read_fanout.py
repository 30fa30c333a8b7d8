"""Reads ask R replicas, not all N (issue 11, the read-path lever), through
real ringkvd processes: a quorum read asks the local replica and R-1
others; --read-repair-chance of the reads ask all N; a replica that does
not answer costs one speculative retry (--speculative-retry-ms), not a
failed read; a stale replica among the ones asked is repaired.

Peer faults use the fault hook (RINGKV.CLUSTER FAULT, test builds).  Nodes
are stopped by PID at the end (conftest).
"""
import time

import pytest

from cluster_util import cluster_factory_gen
from conftest import TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv cluster"),
]


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def info_int(cl, node, field):
    return int(cl.info(node)[field])


def replica_gets(cl):
    return sum(info_int(cl, n, "replica_gets") for n in cl.nodes)


def test_quorum_reads_ask_r_replicas_and_the_chance_asks_all(cluster_factory):
    cl = cluster_factory(3, args=["--r", "2", "--w", "3",
                                  "--read-repair-chance", "0"])
    a = cl.nodes[0]
    assert cl.c(a).config_get("read-repair-chance") == {
        "read-repair-chance": "0"}
    for i in range(20):
        assert cl.c(a).set("k%d" % i, "v%d" % i)
    partial = info_int(cl, a, "reads_partial")
    gets = replica_gets(cl)
    for i in range(20):
        assert cl.c(a).get("k%d" % i) == b"v%d" % i
    # every read asked the local replica and one remote one
    assert info_int(cl, a, "reads_partial") == partial + 20
    assert replica_gets(cl) - gets == 20
    # read-repair-chance 1: every read asks all three
    assert cl.c(a).config_set("read-repair-chance", "1")
    gets = replica_gets(cl)
    for i in range(20):
        assert cl.c(a).get("k%d" % i) == b"v%d" % i
    assert info_int(cl, a, "reads_partial") == partial + 20
    deadline = time.time() + 5
    while replica_gets(cl) - gets < 40 and time.time() < deadline:
        time.sleep(0.02)  # the third answers arrive after the replies
    assert replica_gets(cl) - gets == 40
    # out-of-range values are refused with the reason
    with pytest.raises(Exception, match="must be a number in"):
        cl.c(a).config_set("read-repair-chance", "1.5")


def test_a_silent_replica_costs_a_speculative_retry(cluster_factory):
    cl = cluster_factory(3, args=["--r", "2", "--w", "2",
                                  "--read-repair-chance", "0",
                                  "--speculative-retry-ms", "30"])
    a, b, c = cl.nodes
    for i in range(30):
        assert cl.c(a).set("s%d" % i, "v%d" % i)
    # b's peer traffic with a is dropped: reads whose first remote replica
    # is b hear nothing from it and must ask c
    cl.partition([a], [b])
    spec = info_int(cl, a, "speculative_retries")
    t0 = time.time()
    for i in range(30):
        assert cl.c(a).get("s%d" % i) == b"v%d" % i
    elapsed = time.time() - t0
    assert info_int(cl, a, "speculative_retries") > spec
    # 30 reads, each at most one 30 ms retry: far below one 2 s timeout
    assert elapsed < 1.9
    cl.heal()


def test_a_stale_replica_among_the_asked_is_repaired(cluster_factory):
    cl = cluster_factory(3, args=["--r", "3", "--w", "2",
                                  "--read-repair-chance", "0"])
    a, b, c = cl.nodes
    cl.partition([c], [a, b])
    assert cl.c(a).set("rr", "new")
    assert cl.c(c).execute_command("RINGKV.LOCALGET", "rr") is None
    cl.heal()
    # R = N = 3: a read asks every replica whatever the chance
    assert cl.c(a).get("rr") == b"new"
    deadline = time.time() + 5
    while time.time() < deadline:
        if cl.c(c).execute_command("RINGKV.LOCALGET", "rr") == b"new":
            break
        time.sleep(0.02)
    assert cl.c(c).execute_command("RINGKV.LOCALGET", "rr") == b"new"

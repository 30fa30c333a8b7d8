"""Versioned objects through real ringkvd processes (issue 5): concurrent
writes on two sides of a partition become siblings, RINGKV.GETALL shows
them with their causal context, RINGKV.PUT with that context resolves
them; under --conflict-policy lww the newer wins and the discard is
counted; sequential writes never make siblings; read repair makes a stale
replica current; the standalone forms of RINGKV.GETALL / RINGKV.PUT; bad
contexts are refused.

Partitions use the peer-traffic fault hook (RINGKV.CLUSTER FAULT, test
builds). Nodes are stopped by PID at the end (conftest).
"""
import os
import time

import pytest
import redis

from cluster_util import cluster_factory_gen, parse_info
from conftest import TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv versions"),
]


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def getall(c, key):
    ctx, sibs = c.execute_command("RINGKV.GETALL", key)
    return ctx, [s[0] for s in sibs], sibs


def set_r(cl, node, r):
    assert cl.c(node).config_set("r", str(r))


def info_int(cl, node, field):
    return int(cl.info(node)[field])


def split_write_heal(cl, key, left=b"from-A", right=b"from-B"):
    """{A} | {B, C}: write `key` on both sides with W=1, then heal."""
    a, b, c = cl.nodes
    cl.partition([a], [b, c])
    assert cl.c(a).set(key, left)
    time.sleep(0.01)  # the B side's write gets the later HLC
    assert cl.c(b).set(key, right)
    cl.heal()
    for n in cl.nodes:
        set_r(cl, n, 3)


def test_concurrent_writes_become_siblings_and_put_resolves(cluster_factory):
    cl = cluster_factory(3, args=["--w", "1", "--r", "1"])
    a, b, c = cl.nodes
    split_write_heal(cl, "k")
    ctx, vals, sibs = getall(cl.c(c), "k")
    assert sorted(vals) == [b"from-A", b"from-B"], sibs
    assert ctx and all(ch in b"0123456789abcdef" for ch in ctx)
    # a plain GET picks the newest by HLC, the same on every node
    for n in cl.nodes:
        assert cl.c(n).get("k") == b"from-B"
    # newest sibling first, with HLC and wall-clock ms
    assert sibs[0][0] == b"from-B" and sibs[0][1] >= sibs[1][1]
    assert abs(sibs[0][2] - time.time() * 1000) < 60000
    # resolve with the context: exactly one value remains everywhere
    assert cl.c(a).execute_command("RINGKV.PUT", "k", ctx, b"merged") in (
        b"OK", True)
    for n in cl.nodes:
        _, vals, _ = getall(cl.c(n), "k")
        assert vals == [b"merged"]


def test_sequential_writes_through_any_node_never_make_siblings(
        cluster_factory):
    cl = cluster_factory(3)
    for i in range(30):
        assert cl.c(cl.nodes[i % 3]).set("seq", "v%d" % i)
    for n in cl.nodes:
        set_r(cl, n, 3)
        _, vals, _ = getall(cl.c(n), "seq")
        assert vals == [b"v29"]
        assert cl.c(n).incr("ctr") >= 1
    for n in cl.nodes:
        _, vals, _ = getall(cl.c(n), "ctr")
        assert vals == [b"3"]
    # a delete leaves one tombstone sibling: nil in GETALL, absent in GET
    assert cl.c(cl.nodes[0]).delete("seq") == 1
    _, vals, _ = getall(cl.c(cl.nodes[1]), "seq")
    assert vals == [None]
    assert cl.c(cl.nodes[2]).get("seq") is None
    assert cl.c(cl.nodes[2]).exists("seq") == 0


def test_lww_policy_keeps_the_newer_and_counts_the_discard(cluster_factory):
    cl = cluster_factory(3, args=["--w", "1", "--r", "1",
                                  "--conflict-policy", "lww"])
    before = [info_int(cl, n, "lww_discards") for n in cl.nodes]
    split_write_heal(cl, "k")
    _, vals, _ = getall(cl.c(cl.nodes[2]), "k")
    assert vals == [b"from-B"]
    # the R=3 read repaired every replica; each merged both sides once
    deadline = time.time() + 5
    while time.time() < deadline:
        after = [info_int(cl, n, "lww_discards") for n in cl.nodes]
        if all(x - y == 1 for x, y in zip(after, before)):
            break
        time.sleep(0.05)
    assert [x - y for x, y in zip(after, before)] == [1, 1, 1]
    for n in cl.nodes:
        assert cl.c(n).execute_command("RINGKV.LOCALGET", "k") == b"from-B"
        assert cl.c(n).config_get("conflict-policy") == {
            "conflict-policy": "lww"}


def test_read_repair_makes_a_stale_replica_current(cluster_factory):
    cl = cluster_factory(3, args=["--w", "2", "--r", "2"])
    a, b, c = cl.nodes
    # C misses the write (its peer traffic is dropped both ways)
    cl.partition([c], [a, b])
    assert cl.c(a).set("rr", "new")
    assert cl.c(c).execute_command("RINGKV.LOCALGET", "rr") is None
    cl.heal()
    repairs = info_int(cl, a, "read_repairs")
    set_r(cl, a, 3)
    assert cl.c(a).get("rr") == b"new"
    deadline = time.time() + 5
    while time.time() < deadline:
        if cl.c(c).execute_command("RINGKV.LOCALGET", "rr") == b"new":
            break
        time.sleep(0.02)
    assert cl.c(c).execute_command("RINGKV.LOCALGET", "rr") == b"new"
    assert info_int(cl, a, "read_repairs") == repairs + 1
    # nothing stale left: another read repairs nothing
    assert cl.c(a).get("rr") == b"new"
    time.sleep(0.3)
    assert info_int(cl, a, "read_repairs") == repairs + 1


def test_bad_context_is_refused_and_nothing_written(cluster_factory):
    cl = cluster_factory(3)
    c = cl.c(cl.nodes[0])
    for bad in ["zz", "01", "0101", "01020076c1"]:
        with pytest.raises(redis.ResponseError, match="invalid causal context"):
            c.execute_command("RINGKV.PUT", "bk", bad, "v")
    assert c.get("bk") is None
    assert c.execute_command("RINGKV.PUT", "bk", "", "v") in (b"OK", True)
    assert c.get("bk") == b"v"
    with pytest.raises(redis.ResponseError, match="wrong number"):
        c.execute_command("RINGKV.PUT", "bk", "")


def test_standalone_getall_and_put(server):
    c = server.client()
    assert c.execute_command("RINGKV.GETALL", "nope") == [b"", []]
    assert c.execute_command("RINGKV.PUT", "s", "", "v1") in (b"OK", True)
    ctx, sibs = c.execute_command("RINGKV.GETALL", "s")
    assert ctx == b"" and [x[0] for x in sibs] == [b"v1"]
    with pytest.raises(redis.ResponseError, match="invalid causal context"):
        c.execute_command("RINGKV.PUT", "s", "xyz", "v2")
    assert c.get("s") == b"v1"


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout,
                                                                 what))


@pytest.mark.timeout(180)
def test_hinted_handoff_delivers_1000_writes_to_a_restarted_node(
        cluster_factory):
    """Issue 5 test (b): C is SIGKILLed, 1,000 keys are written with N=3
    W=2, C restarts: within 10 s it holds all of them and no hint is left."""
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    cl.kill(c)
    pipe = cl.c(a).pipeline(transaction=False)
    for i in range(1000):
        pipe.set("hh:%04d" % i, "v%d" % i)
    assert all(pipe.execute())
    pending = sum(int(cl.info(n)["hints_pending"]) for n in (a, b))
    assert pending >= 1000, pending
    t0 = time.time()
    cl.restart(c)

    def drained():
        return all(int(cl.info(n)["hints_pending"]) == 0 for n in cl.nodes)

    wait_for(drained, 10, "hints to drain")
    drain_s = time.time() - t0
    local = cl.c(c)
    missing = [i for i in range(1000)
               if local.execute_command("RINGKV.LOCALGET", "hh:%04d" % i)
               != b"v%d" % i]
    assert not missing, "C lacks %d keys, e.g. %s" % (len(missing),
                                                      missing[:5])
    print("hinted handoff: 1000 hints drained %.2fs after the restart "
          "(target < 10 s)" % drain_s)
    assert drain_s < 10


@pytest.mark.timeout(180)
def test_delete_while_a_replica_is_down_stays_deleted_after_gc(
        cluster_factory):
    """Issue 5 test (d): a key deleted while one replica is down does not
    come back after that replica returns and the tombstone grace passes;
    the tombstone is then reaped on every replica."""
    cl = cluster_factory(3, args=["--tombstone-gc-grace", "2"])
    a, b, c = cl.nodes
    for n in cl.nodes:
        set_r(cl, n, 3)
    assert cl.c(a).set("gone", "old")
    for n in cl.nodes:
        set_r(cl, n, 2)
    cl.kill(c)
    assert cl.c(b).delete("gone") == 1
    # while C is down nothing is reaped: one of the key's primaries is down
    time.sleep(3)
    assert all(int(cl.info(n)["tombstones_reaped"]) == 0 for n in (a, b))
    cl.restart(c)
    cl.wait_converged(timeout=30)
    wait_for(lambda: all(int(cl.info(n)["hints_pending"]) == 0
                         for n in cl.nodes), 10, "hints to drain")
    for n in cl.nodes:
        set_r(cl, n, 3)
        assert cl.c(n).get("gone") is None
    wait_for(lambda: all(int(cl.info(n)["tombstones_reaped"]) >= 1
                         for n in cl.nodes), 20, "every replica to reap")
    # Replicas reap one by one; a quorum read between two reaps (the GETs
    # above may run while reaping starts) read-repairs the tombstone back
    # onto a replica that already reaped it, which reaps it again on a later
    # round.  So wait until no replica holds a record, then check that the
    # key stays gone.
    wait_for(lambda: all(cl.c(n).execute_command("RINGKV.LOCALOBJ", "gone")
                         is None for n in cl.nodes), 20,
             "no replica to hold the tombstone")
    for n in cl.nodes:
        assert cl.c(n).get("gone") is None
        assert cl.c(n).execute_command("RINGKV.GETALL", "gone")[1] == []
        assert cl.c(n).dbsize() == 0


def test_sloppy_quorum_off_keeps_strict_quorum(cluster_factory):
    cl = cluster_factory(4, args=["--sloppy-quorum", "off"])
    cl.kill(cl.nodes[3])
    ok = fails = 0
    for i in range(40):
        try:
            cl.c(cl.nodes[0]).set("sq:%d" % i, "v")
            ok += 1
        except redis.ResponseError as e:
            assert "NOQUORUM" in str(e)
            fails += 1
    # W=2 of 3 primaries: one down still leaves 2, so every write succeeds
    assert ok == 40 and fails == 0
    assert cl.info(cl.nodes[0])["sloppy_quorum"] == "off"


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@pytest.mark.skipif(not os.path.exists(FAKETIME_LIB),
                    reason="libfaketime (Debian faketime) not installed")
def test_clock_ahead_is_reported_and_does_not_decide_versions(
        server_factory):
    """Issue 5 item 6: node C's wall clock runs 300 s ahead (libfaketime,
    monotonic clock untouched): the other nodes log and expose it, and a
    later write through A still supersedes C's write although C's
    timestamp is larger (dots decide, not clocks)."""
    from cluster_util import Cluster
    cl = Cluster(server_factory, 3)
    cl.nodes[2].server.extra_env = {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": "+300s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:"
                        "verify_asan_link_order=0",
    }
    try:
        cl.start()
        cl.form()
        a, b, c = cl.nodes
        for n in cl.nodes:
            set_r(cl, n, 3)
        assert cl.c(c).set("skew", "from-C-ahead")
        assert cl.c(a).get("skew") == b"from-C-ahead"
        ahead = [int(cl.info(n)["clock_ahead_max_ms"]) for n in (a, b)]
        assert all(290000 <= x <= 310000 for x in ahead), ahead
        assert all(int(cl.info(n)["clock_ahead_events"]) >= 1 for n in (a, b))
        assert int(cl.info(c)["clock_ahead_events"]) == 0
        assert cl.c(a).set("skew", "from-A-later")
        for n in cl.nodes:
            _, vals, _ = getall(cl.c(n), "skew")
            assert vals == [b"from-A-later"]
        logs = "".join(n.server.logs() for n in (a, b))
        assert "event=clock_skew" in logs
    finally:
        cl.resume_all()
        cl.close_clients()


def test_sibling_bound_drops_the_oldest_and_says_so(cluster_factory):
    """--max-siblings 2: three writes on three sides of a 3-way split
    become three siblings; every replica keeps the newest two, counts the
    drop and logs it."""
    cl = cluster_factory(3, args=["--w", "1", "--r", "1",
                                  "--max-siblings", "2"])
    a, b, c = cl.nodes
    cl.partition([a], [b, c])
    cl.partition([b], [c])
    for n, v in ((a, b"first"), (b, b"second"), (c, b"third")):
        assert cl.c(n).set("bk", v)
        time.sleep(0.01)
    cl.heal()
    for n in cl.nodes:
        set_r(cl, n, 3)
    _, vals, _ = getall(cl.c(a), "bk")
    assert vals == [b"third", b"second"]
    wait_for(lambda: all(int(cl.info(n)["siblings_dropped_by_bound"]) >= 1
                         for n in cl.nodes), 5, "every replica to bound")
    for n in cl.nodes:
        _, vals, _ = getall(cl.c(n), "bk")
        assert vals == [b"third", b"second"]
    wait_for(lambda: any("event=sibling_bound" in n.server.logs()
                         for n in cl.nodes), 15, "the sibling_bound log")


def ctx_hex(entries):
    """A causal context text: [(actor, counter), ...] sorted by actor."""
    import struct
    b = struct.pack("<BH", 1, len(entries))
    for a, n in sorted(entries):
        b += struct.pack("<QQ", a, n)
    return b.hex()


def test_forged_context_cannot_disable_or_hide_writes(cluster_factory):
    """Regression (issue 5 review): a RINGKV.PUT context claiming huge
    counters for a node's own actor used to exhaust it (every later write
    it coordinated failed) and could cover future writes of other actors.
    Contexts are now capped at what the replicas have seen."""
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    actor = int(cl.info(a)["dvv_actor"], 16)
    other = int(cl.info(b)["dvv_actor"], 16)
    forged = ctx_hex([(actor, 2 ** 64 - 2), (other, 2 ** 40)])
    assert cl.c(a).execute_command("RINGKV.PUT", "victim", forged, "x") in (
        b"OK", True)
    for i in range(5):
        assert cl.c(a).set("after%d" % i, "v")
        assert cl.c(b).set("after%d" % i, "w%d" % i)
    assert cl.c(a).set("victim", "y")
    for n in cl.nodes:
        assert cl.c(n).get("victim") == b"y"
        for i in range(5):
            assert cl.c(n).get("after%d" % i) == b"w%d" % i


def test_expired_cluster_keys_are_not_listed(cluster_factory):
    """Regression (issue 5 review): an expired key stayed in DBSIZE, KEYS
    and SCAN for the whole tombstone grace."""
    cl = cluster_factory(3)
    a = cl.nodes[0]
    assert cl.c(a).set("ek", "v", px=300)
    assert cl.c(a).set("keep", "v")
    time.sleep(0.5)
    for n in cl.nodes:
        c = cl.c(n)
        assert c.get("ek") is None
        assert c.dbsize() == 1
        assert c.keys("*") == [b"keep"]
        assert c.scan(0)[1] == [b"keep"]


def test_wiped_data_dir_does_not_reuse_dots(cluster_factory):
    """Regression (issue 5 review): a node restarted on an empty data dir
    (same node id) reissued its old dots; its next write was acknowledged
    and then dropped as already seen."""
    import shutil
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    for n in cl.nodes:
        set_r(cl, n, 3)
    assert cl.c(a).set("wk", "a")
    assert cl.c(a).set("wk", "b")
    old_actor = cl.info(a)["dvv_actor"]
    cl.kill(a)
    shutil.rmtree(a.server.data_dir)
    cl.restart(a)
    wait_for(lambda: cl.info(a)["cluster_members"] == "3" and
             cl.info(a)["cluster_agreement"] == "1", 30,
             "the wiped node to get the cluster state back")
    assert cl.info(a)["dvv_actor"] != old_actor
    set_r(cl, a, 3)
    assert cl.c(a).set("wk", "c")
    for n in cl.nodes:
        assert cl.c(n).get("wk") == b"c"

"""Multi-node black-box cluster tests (issue 4): real ringkvd processes on
127.0.0.1 joined with the real CLI, redis-py clients, SIGKILL / SIGSTOP /
restart, and peer-traffic faults through RINGKV.CLUSTER FAULT (test builds
only: the ASan build build-san has RK_TEST_BUILD).

The interface under test: ringkvd --peer-port/--node-id/--n/--r/--w,
RINGKV.CLUSTER JOIN|LEAVE|REMOVE|STATUS|FAULT, RINGKV.LOCALGET, INFO cluster,
-NOQUORUM replies, and `ringkv cluster join|leave|remove|status`.

Tests: 1. 3 nodes, 10,000 keys written through one node and read through
the others; 2. 5 nodes, `ringkv cluster status` agrees everywhere, time of
the 5th join; 3. N=3 R=2 W=2: one node killed (all serve), two killed
(NOQUORUM), both restarted (rejoin, serve); 4. SIGSTOP detected and SIGCONT
recovered within 5 s; 4b. one cut link does not mark a node down; 5. 3/2
partition with RINGKV.CLUSTER FAULT, then heal; 6. TTLs replicate as
absolute expiry; 7. multi-key commands and INCR through a non-replica
node, RINGKV.LOCALGET on the replicas; 8. join of a non-empty node
refused, join and leave of a node with handoff of its partitions (issue
14), remove of a killed node, a data dir keeps its node id.

Measured figures (join-to-convergence, failure-detection times,
availability during a partition) are printed; run with -s to see them.
Randomness uses fixed seeds (SEED below).

    RINGKV_BUILD=$PWD/build-san /usr/bin/python3 -m pytest -s -q \\
        tests/integration/test_cluster.py
"""
import random
import time

import pytest
import redis

from cluster_util import cluster_factory_gen, parse_status
from conftest import TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv",
                       reason="ringkv cluster (no redis-server equivalent)"),
]

SEED = 20260425
RING_SIZE = 64  # the default --ring-size
# Sloppy quorum (issue 5: fallbacks standing in for down replicas, on by
# default): the majority side of a partition serves every key.  False
# would expect the strict-quorum behaviour (--sloppy-quorum off).
SLOPPY_QUORUM = True


@pytest.fixture
def cluster_factory(server_factory):
    """cluster_factory(m, args=[...], form=True|False|count) -> Cluster;
    every node is stopped by PID at the end (cluster_util.py)."""
    yield from cluster_factory_gen(server_factory)


# --- helpers ---------------------------------------------------------------

def values_for(keys, seed, tag):
    rnd = random.Random(seed)
    return {k: ("%s:%s:%08x" % (tag, k, rnd.getrandbits(32))).encode()
            for k in keys}


def pipelined_set(client, kv, batch=500):
    """SETs every pair through one pipeline per batch; returns the list of
    (key, reply) whose reply is not True (errors are returned, not
    raised)."""
    bad = []
    items = list(kv.items())
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        p = client.pipeline(transaction=False)
        for k, v in chunk:
            p.set(k, v)
        replies = p.execute(raise_on_error=False)
        bad += [(k, r) for (k, _), r in zip(chunk, replies) if r is not True]
    return bad


def pipelined_get(client, keys, batch=500):
    """GETs through pipelines; returns {key: reply} (errors as values)."""
    out = {}
    keys = list(keys)
    for i in range(0, len(keys), batch):
        chunk = keys[i:i + batch]
        p = client.pipeline(transaction=False)
        for k in chunk:
            p.get(k)
        for k, r in zip(chunk, p.execute(raise_on_error=False)):
            out[k] = r
    return out


def check_values(client, expected, where):
    got = pipelined_get(client, expected.keys())
    wrong = [(k, expected[k], got[k]) for k in expected if got[k] !=
             expected[k]]
    assert not wrong, "%s: %d of %d keys wrong, first: %r" % (
        where, len(wrong), len(expected), wrong[:5])


def is_noquorum(e):
    return isinstance(e, redis.exceptions.ResponseError) and \
        str(e).startswith("NOQUORUM")


def local_holders(cl, key, nodes=None):
    """The nodes whose RINGKV.LOCALGET of key is not nil."""
    return [n for n in (nodes or cl.nodes)
            if cl.c(n).execute_command("RINGKV.LOCALGET", key) is not None]


# --- 1. 3 nodes, 10,000 keys through A, read back through B and C ----------

@pytest.mark.slow
@pytest.mark.timeout(150)
def test_three_nodes_write_10k_read_everywhere(cluster_factory):
    t0 = time.monotonic()
    cl = cluster_factory(3)
    print("3-node cluster formed with the CLI in %.2fs" %
          (time.monotonic() - t0))
    for n in cl.nodes:
        info = cl.info(n)
        assert (info["cluster_n"], info["cluster_r"], info["cluster_w"]) == \
            ("3", "2", "2"), info
        assert info["cluster_phase"] == "member", info
        assert info["node_id"] == n.node_id, info
        assert info["peer_port"] == str(n.peer_port), info
    a, b, c = cl.nodes
    keys = ["k1:%05d" % i for i in range(10000)]
    kv = values_for(keys, SEED, "t1")
    t = time.monotonic()
    bad = pipelined_set(cl.c(a), kv)
    dt = time.monotonic() - t
    assert not bad, "%d SETs through A failed, first: %r" % (len(bad),
                                                             bad[:5])
    print("10,000 pipelined SETs through A: %.2fs (%.0f/s)" % (dt,
                                                             10000 / dt))
    for n, name in ((b, "B"), (c, "C")):
        t = time.monotonic()
        check_values(cl.c(n), kv, "GET through %s" % name)
        dt = time.monotonic() - t
        print("10,000 pipelined GETs through %s: %.2fs (%.0f/s)" % (
            name, dt, 10000 / dt))
    # MGET too, and the coordinator actually ran (not a local shortcut)
    sample = keys[::97]
    assert cl.c(b).mget(sample) == [kv[k] for k in sample]
    assert int(cl.info(b)["coord_requests"]) >= 10000, cl.info(b)
    # N=3 on 3 nodes: every node stores every key; DBSIZE is node-local
    for k in keys[:20]:
        assert len(local_holders(cl, k)) == 3, k
    cl.wait_until(lambda: all(cl.c(n).dbsize() == 10000 for n in cl.nodes),
                  "DBSIZE 10000 on every node", timeout=10)


# --- 2. 5 nodes: status agrees everywhere, join-to-convergence time --------

@pytest.mark.timeout(120)
def test_five_nodes_status_agrees(cluster_factory):
    cl = cluster_factory(5, form=4)
    fifth = cl.nodes[4]
    t0 = time.monotonic()
    cl.join(fifth, cl.nodes[0])
    t_join = time.monotonic() - t0
    # two figures: when every node holds the 5-member state (same version),
    # and when every node also reports cluster_agreement:1 with all 5 up
    marks = {}

    def progress():
        infos = [cl.info(n) for n in cl.nodes]
        now = time.monotonic() - t0
        if "state" not in marks and all(
                i["cluster_members"] == "5" for i in infos) and len(
                {i["cluster_state_version"] for i in infos}) == 1:
            marks["state"] = now
        if all(i["cluster_members"] == "5" and i["cluster_members_up"] ==
               "5" and i["cluster_agreement"] == "1" for i in infos) and \
                len({i["cluster_state_version"] for i in infos}) == 1:
            marks.setdefault("state", now)
            marks["agreement"] = now
            return True
        return False

    cl.wait_until(progress, "5 nodes to converge", timeout=20, interval=0.01)
    print("5th join: CLI returned after %.3fs; 5-member state on all 5 "
          "nodes after %.3fs; cluster_agreement:1 on all 5 after %.3fs "
          "(target < 3 s)" % (t_join, marks["state"], marks["agreement"]))
    assert marks["agreement"] < 10.0, marks

    tables = {}
    for n in cl.nodes:
        p = cl.cli(n, "cluster", "status")
        tables[n.node_id] = parse_status(p.stdout)
    ref_id = cl.nodes[0].node_id
    ref_head, ref_rows = tables[ref_id]
    assert [r["node_id"] for r in ref_rows] == sorted(
        n.node_id for n in cl.nodes), ref_rows
    by_id = {n.node_id: n for n in cl.nodes}
    for r in ref_rows:
        n = by_id[r["node_id"]]
        assert r["address"] == n.peer_addr, r
        assert r["resp"] == n.port, r
        assert r["status"] == "valid", r
        # balance: each member owns floor(Q/M) or ceil(Q/M) partitions
        assert r["partitions"] in (RING_SIZE // 5, -(-RING_SIZE // 5)), r
    assert sum(r["partitions"] for r in ref_rows) == RING_SIZE
    assert ref_head["ring"] == RING_SIZE
    assert (ref_head["n"], ref_head["r"], ref_head["w"]) == (3, 2, 2)

    def core(rows):
        return [(r["node_id"], r["address"], r["resp"], r["status"],
                 r["partitions"]) for r in rows]

    for nid, (head, rows) in tables.items():
        assert core(rows) == core(ref_rows), (nid, rows, ref_rows)
        assert head["version"] == ref_head["version"], (nid, head, ref_head)
        assert head["name"] == ref_head["name"], (nid, head)
        assert head["agreement"] == "yes", (nid, head)
        for r in rows:
            if r["node_id"] == nid:
                assert r["seen"] == "self", (nid, r)
                assert r["version"] == str(head["version"]), (nid, r)
            else:
                assert r["seen"] == "up", (nid, r)
        info = cl.info(by_id[nid])
        assert int(info["cluster_state_version"]) == head["version"], info
        mine = [r for r in rows if r["node_id"] == nid][0]
        assert int(info["cluster_partitions_owned"]) == \
            mine["partitions"], (info, mine)
    print("state version %d on all 5 nodes, partitions %s" % (
        ref_head["version"], [r["partitions"] for r in ref_rows]))


# --- 3. N=3 R=2 W=2: kill one, kill two, restart both -----------------------

@pytest.mark.slow
@pytest.mark.timeout(150)
def test_kill_one_then_two_then_restart(cluster_factory):
    cl = cluster_factory(3, args=["--n", "3", "--r", "2", "--w", "2",
                                  "--sync", "always"])
    a, b, c = cl.nodes
    base = values_for(["k3:base:%d" % i for i in range(300)], SEED, "base")
    assert not pipelined_set(cl.c(a), base)

    # one node down: every read and write through the survivors succeeds
    cl.kill(c)
    t = time.monotonic()
    down1 = values_for(["k3:down1:%d" % i for i in range(300)], SEED + 1,
                       "down1")
    items = sorted(down1.items())
    errors = []
    for i, (k, v) in enumerate(items):
        node = (a, b)[i % 2]
        try:
            assert cl.c(node).set(k, v) is True
        except redis.exceptions.ResponseError as e:
            errors.append((node.node_id, "SET", k, str(e)))
    for i, (k, v) in enumerate(items):
        node = (b, a)[i % 2]
        try:
            got = cl.c(node).get(k)
            if got != v:
                errors.append((node.node_id, "GET", k, got))
        except redis.exceptions.ResponseError as e:
            errors.append((node.node_id, "GET", k, str(e)))
    assert not errors, "with one node down: %d failures, first %r" % (
        len(errors), errors[:5])
    check_values(cl.c(a), base, "base keys through A (C down)")
    check_values(cl.c(b), base, "base keys through B (C down)")
    print("C down: 300 SETs + 300 GETs + 600 base GETs through A/B in "
          "%.2fs, 0 failures" % (time.monotonic() - t))

    # two nodes down: writes (and reads) fail with NOQUORUM reached 1 of 2
    # (A applied its own copy). The exact count is checked at the end, so
    # that a wrong count does not hide the restart checks below.
    noq_before = int(cl.info(a)["coord_noquorum"])
    cl.kill(b)
    msgs = []
    for i in range(5):
        t = time.monotonic()
        with pytest.raises(redis.exceptions.ResponseError) as ei:
            cl.c(a).set("k3:down2:%d" % i, "x")
        msgs.append(("SET", str(ei.value), round(time.monotonic() - t, 3)))
        assert str(ei.value).startswith("NOQUORUM"), str(ei.value)
    for i in range(2):
        t = time.monotonic()
        with pytest.raises(redis.exceptions.ResponseError) as ei:
            cl.c(a).get("k3:base:%d" % i)
        msgs.append(("GET", str(ei.value), round(time.monotonic() - t, 3)))
        assert str(ei.value).startswith("NOQUORUM"), str(ei.value)
    print("two down, through A (command, error, seconds): %r" % msgs)
    assert int(cl.info(a)["coord_noquorum"]) >= noq_before + 7, cl.info(a)
    # once A's detector has B and C down, NOQUORUM comes at once (no wait
    # for the 2 s request timeout)
    cl.wait_until(lambda: cl.info(a)["cluster_members_up"] == "1",
                  "A to see B and C down", timeout=10, nodes=[a])
    for i in range(3):
        t = time.monotonic()
        with pytest.raises(redis.exceptions.ResponseError) as ei:
            cl.c(a).set("k3:down2:late%d" % i, "x")
        dt = time.monotonic() - t
        assert str(ei.value).startswith("NOQUORUM"), str(ei.value)
        assert dt < 1.0, (dt, str(ei.value))
        msgs.append(("SET", str(ei.value), round(dt, 3)))

    # restart both (same data dir and flags): they rejoin and serve
    t = time.monotonic()
    cl.restart(b)
    cl.restart(c)
    dt = cl.wait_converged(3, timeout=30)
    print("B and C restarted; cluster converged %.2fs after the restarts "
          "(%.2fs waiting)" % (time.monotonic() - t, dt))
    for n in cl.nodes:
        info = cl.info(n)
        assert info["cluster_phase"] == "member", info
        assert info["node_id"] == n.node_id, info  # kept in the data dir
        check_values(cl.c(n), down1, "keys written while C was down, "
                     "through %s" % n.node_id)
        check_values(cl.c(n), base, "base keys through %s" % n.node_id)
    after = values_for(["k3:after:%d" % i for i in range(100)], SEED + 2,
                       "after")
    assert not pipelined_set(cl.c(c), after)
    check_values(cl.c(b), after, "keys written through C, read through B")

    # the NOQUORUM text with one of three replicas up: "reached 1 of 2"
    wrong = [m for m in msgs if "reached 1 of 2" not in m[1]]
    assert not wrong, "with 2 of 3 nodes down, expected NOQUORUM ... " \
        "reached 1 of 2 (the coordinator's own replica), got: %r" % wrong


# --- 4. SIGSTOP detection and SIGCONT recovery ------------------------------

@pytest.mark.timeout(120)
def test_sigstop_detected_and_sigcont_recovers(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    others = [a, b]

    def up(n):
        return int(cl.info(n)["cluster_members_up"])

    cl.pause(c)
    t0 = time.monotonic()
    seen_down = {}
    while len(seen_down) < 2 and time.monotonic() - t0 < 15:
        for n in others:
            if n.node_id not in seen_down and up(n) == 2:
                seen_down[n.node_id] = time.monotonic() - t0
        time.sleep(0.02)
    print("SIGSTOP of %s: members_up dropped after %s (target <= 5 s)" % (
        c.node_id, {k: round(v, 3) for k, v in seen_down.items()}))
    assert len(seen_down) == 2, "not detected within 15 s:\n%s" % \
        cl.describe(others)
    assert max(seen_down.values()) <= 6.0, seen_down
    for n in others:
        _, rows = cl.status(n)
        row = [r for r in rows if r["node_id"] == c.node_id][0]
        assert row["seen"] in ("suspect", "down"), (n.node_id, row)
        assert row["status"] == "valid", row  # detection never changes
    # the survivors still form a write and read quorum
    kv = values_for(["k4:%d" % i for i in range(100)], SEED, "t4")
    assert not pipelined_set(cl.c(a), kv, batch=50)
    check_values(cl.c(b), kv, "GET through B while C is stopped")

    cl.resume(c)
    t1 = time.monotonic()
    seen_up = {}
    while len(seen_up) < 3 and time.monotonic() - t1 < 15:
        for n in cl.nodes:
            if n.node_id not in seen_up and up(n) == 3:
                seen_up[n.node_id] = time.monotonic() - t1
        time.sleep(0.02)
    print("SIGCONT of %s: members_up back to 3 after %s (target <= 5 s)" %
          (c.node_id, {k: round(v, 3) for k, v in seen_up.items()}))
    assert len(seen_up) == 3, "not up within 15 s:\n%s" % cl.describe()
    assert max(seen_up.values()) <= 6.0, seen_up
    cl.wait_converged(3, timeout=10)
    check_values(cl.c(c), kv, "GET through C after SIGCONT")


# --- 4b. one cut link: SWIM's indirect probes keep the peer up -------------

@pytest.mark.timeout(120)
def test_one_cut_link_does_not_mark_down(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    cl.fault(a, c, "both")
    cl.fault(c, a, "both")
    t0 = time.monotonic()
    low = {n.node_id: 3 for n in cl.nodes}
    kv = values_for(["k4b:%d" % i for i in range(60)], SEED, "t4b")
    items = sorted(kv.items())
    i = 0
    # 6 s: longer than suspect-to-down (M x 500 + 1500 ms = 3 s here)
    while time.monotonic() - t0 < 6.0:
        for n in cl.nodes:
            low[n.node_id] = min(low[n.node_id],
                                 int(cl.info(n)["cluster_members_up"]))
        if i < len(items):
            # A cannot reach C directly, but A and B make W=2
            assert cl.c(a).set(*items[i]) is True, items[i]
            i += 1
        time.sleep(0.05)
    print("A<->C link cut for 6 s: lowest cluster_members_up seen: %s" %
          low)
    assert all(v == 3 for v in low.values()), (
        "a peer reachable through another node was marked down: %r\n%s" %
        (low, cl.describe()))
    check_values(cl.c(c), dict(items[:i]), "GET through C with A<->C cut")
    # control: cutting B<->C too isolates C, so A must now see C down
    # (proves the A<->C rules really dropped the direct traffic)
    cl.fault(b, c, "both")
    cl.fault(c, b, "both")
    dt = cl.wait_until(lambda: cl.info(a)["cluster_members_up"] == "2",
                       "A to see the isolated C down", timeout=8)
    print("C isolated: A sees it down after %.2fs" % dt)
    assert dt <= 6.0, dt
    cl.fault(a, c, "none")
    cl.fault(c, a, "none")
    cl.fault_clear(b)
    cl.fault_clear(c)
    cl.wait_converged(3, timeout=10)
    check_values(cl.c(a), dict(items[:i]), "GET through A after the repair")


# --- 5. 5 nodes split 2/3 with RINGKV.CLUSTER FAULT --------------------------

def local_holders_many(cl, keys):
    """{key: [nodes whose RINGKV.LOCALGET is not nil]} (pipelined)."""
    out = {k: [] for k in keys}
    for n in cl.nodes:
        p = cl.c(n).pipeline(transaction=False)
        for k in keys:
            p.execute_command("RINGKV.LOCALGET", k)
        for k, v in zip(keys, p.execute()):
            if v is not None:
                out[k].append(n)
    return out


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_partition_majority_serves_then_heals(cluster_factory):
    cl = cluster_factory(5)
    major, minor = cl.nodes[:3], cl.nodes[3:]
    keys = ["k5:major:%d" % i for i in range(300)]
    # learn each key's replicas (N=3 of 5) before the partition
    assert not pipelined_set(cl.c(major[0]), {k: b"pre" for k in keys})
    holders = {}

    def replicated():
        holders.update(local_holders_many(cl, keys))
        return all(len(h) == 3 for h in holders.values())

    cl.wait_until(replicated, "every key on exactly 3 replicas", timeout=10)
    # strict: >= 2 replicas on the majority side, so W=2/R=2 holds there
    # without fallbacks; the others have 2 replicas on the minority side
    strict = [k for k in keys if sum(n in major for n in holders[k]) >= 2]
    sloppy = [k for k in keys if k not in strict]
    print("keys with >= 2 replicas on the majority side: %d, with 1: %d" % (
        len(strict), len(sloppy)))
    assert strict and sloppy  # 300 keys cover both cases

    t0 = time.monotonic()
    cl.partition(major, minor, "both")

    def sees(nodes, count):
        return all(int(cl.info(n)["cluster_members_up"]) == count
                   for n in nodes)

    dt = cl.wait_until(lambda: sees(major, 3),
                       "the majority to see the minority down",
                       timeout=15, nodes=cl.nodes)
    cl.wait_until(lambda: sees(minor, 2),
                  "the minority to see the majority down", timeout=15,
                  nodes=cl.nodes)
    print("partition 3/2: majority sees the minority down after %.2fs, "
          "minority sees the majority down after %.2fs" % (
              dt, time.monotonic() - t0))

    kv = values_for(keys, SEED, "major")
    failed = {}
    t = time.monotonic()
    for i, k in enumerate(keys):
        node = major[i % 3]
        try:
            cl.c(node).set(k, kv[k])
        except redis.exceptions.RedisError as e:
            failed[k] = (node.node_id, repr(e))
    print("majority side: %d SETs in %.2fs: %d/%d keys with 2 majority "
          "replicas failed, %d/%d keys with 1 majority replica failed" % (
              len(keys), time.monotonic() - t,
              len([k for k in strict if k in failed]), len(strict),
              len([k for k in sloppy if k in failed]), len(sloppy)))
    bad = [(k, failed[k]) for k in strict if k in failed]
    assert not bad, "majority writes with a strict quorum on the majority " \
        "side failed: %d, first %r" % (len(bad), bad[:5])
    bad = [(k, e) for k, e in failed.items() if "NOQUORUM" not in e[1]]
    assert not bad, "failures other than NOQUORUM: %r" % bad[:5]
    for n in major:
        check_values(cl.c(n), {k: kv[k] for k in strict},
                     "majority keys read through %s during the partition" %
                     n.node_id)

    # minority side: may fail, but only with NOQUORUM
    ok = 0
    other = []
    t = time.monotonic()
    for i in range(40):
        try:
            cl.c(minor[i % 2]).set("k5:minor:%d" % i, "m")
            ok += 1
        except redis.exceptions.RedisError as e:
            if not is_noquorum(e):
                other.append(repr(e))
    print("minority side: 40 SETs, %d ok, %d NOQUORUM, %.2fs" % (
        ok, 40 - ok - len(other), time.monotonic() - t))
    assert not other, other[:5]

    # heal: all 5 up and agreeing again, and everything serves
    cl.heal()
    dt = cl.wait_converged(5, timeout=20)
    print("healed: all 5 nodes up and agreeing after %.2fs" % dt)
    after = values_for(["k5:after:%d" % i for i in range(250)], SEED + 1,
                       "after")
    items = sorted(after.items())
    errors = []
    for i, (k, v) in enumerate(items):
        node = cl.nodes[i % 5]
        try:
            cl.c(node).set(k, v)
        except redis.exceptions.RedisError as e:
            errors.append((node.node_id, "SET", k, str(e)))
    for i, (k, v) in enumerate(items):
        node = cl.nodes[(i + 2) % 5]
        try:
            got = cl.c(node).get(k)
            if got != v:
                errors.append((node.node_id, "GET", k, got))
        except redis.exceptions.RedisError as e:
            errors.append((node.node_id, "GET", k, str(e)))
    assert not errors, "after heal: %d failures, first %r" % (
        len(errors), errors[:5])
    # any 2 of a strict key's 3 replicas include one with the partition-time
    # write, and the newer timestamp wins
    for n in cl.nodes:
        check_values(cl.c(n), {k: kv[k] for k in strict},
                     "partition-time writes read through %s after the heal" %
                     n.node_id)

    # Keys with only one replica on the majority side: without sloppy
    # quorum (docs/cluster.md "N, R, W and failures": the side holding W
    # replicas of a key keeps writing it, the other side answers
    # -NOQUORUM) every such write fails; with it (issue 5: fallbacks stand
    # in for down owners), the majority serves them all.
    sl = [k for k in sloppy if k in failed]
    if SLOPPY_QUORUM:
        assert not sl, "majority-side writes with 2 replicas on the " \
            "minority side failed despite sloppy quorum: %d of %d, e.g. " \
            "%s: %s" % (len(sl), len(sloppy), sl[0], failed[sl[0]][1])
    else:
        assert len(sl) == len(sloppy), "without sloppy quorum a W=2 write " \
            "cannot succeed with 1 reachable replica, yet %d of %d did" % (
                len(sloppy) - len(sl), len(sloppy))


# --- 6. TTL replicates as an absolute expiry ---------------------------------

@pytest.mark.timeout(120)
def test_ttl_replicates_as_absolute_expiry(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    assert cl.c(a).set("k6:ttl", "v", px=1500) is True
    # the expiry is absolute from the SET at A: at most 1500 ms after now
    expires_by = time.monotonic() + 1.5
    pttl = cl.c(b).pttl("k6:ttl")
    assert 0 < pttl <= 1500, pttl
    assert cl.c(c).get("k6:ttl") == b"v"
    # a long TTL set through B reads back through C
    assert cl.c(b).set("k6:long", "L", ex=100) is True
    assert 95 <= cl.c(c).ttl("k6:long") <= 100
    # PEXPIRE through C on a key written through A
    assert cl.c(a).set("k6:later", "x") is True
    assert cl.c(c).pexpire("k6:later", 1500)
    later_by = time.monotonic() + 1.5
    assert 0 < cl.c(a).pttl("k6:later") <= 1500
    print("PTTL through B right after SET PX 1500 through A: %d" % pttl)
    time.sleep(max(0.0, expires_by + 0.05 - time.monotonic()))
    assert cl.c(c).get("k6:ttl") is None
    assert cl.c(b).pttl("k6:ttl") == -2
    assert cl.c(a).exists("k6:ttl") == 0
    time.sleep(max(0.0, later_by + 0.05 - time.monotonic()))
    assert cl.c(b).get("k6:later") is None
    assert cl.c(a).get("k6:long") == b"L"


# --- 7. multi-key commands through a non-owner node --------------------------

@pytest.mark.timeout(120)
def test_multikey_through_non_owner(cluster_factory):
    cl = cluster_factory(4)  # N=3 of 4: each key has one non-replica
    a = cl.nodes[0]
    cands = ["k7:%d" % i for i in range(40)]
    assert not pipelined_set(cl.c(a), {k: b"probe" for k in cands})

    holders = {}

    def all_replicated():
        for k in cands:
            holders[k] = local_holders(cl, k)
        return all(len(h) == 3 for h in holders.values())

    cl.wait_until(all_replicated, "every probe key on exactly 3 replicas",
                  timeout=10)
    # x: the node that holds neither k1 nor k2
    k1 = cands[0]
    x = [n for n in cl.nodes if n not in holders[k1]][0]
    k2 = [k for k in cands[1:] if x not in holders[k]][0]
    replicas = {k1: holders[k1], k2: holders[k2]}
    print("non-owner %s for %s (replicas %s) and %s (replicas %s)" % (
        x.node_id, k1, [n.node_id for n in replicas[k1]], k2,
        [n.node_id for n in replicas[k2]]))
    cx = cl.c(x)
    assert cx.mset({k1: "one", k2: "two"}) is True
    assert cx.mget([k1, k2, "k7:nosuch"]) == [b"one", b"two", None]
    for n in cl.nodes:
        assert cl.c(n).mget([k1, k2]) == [b"one", b"two"], n
    # the value is stored on the replicas, not on the non-owner

    def on_replicas():
        return all(cl.c(n).execute_command("RINGKV.LOCALGET", k) == v
                   for k, v in ((k1, b"one"), (k2, b"two"))
                   for n in replicas[k])

    cl.wait_until(on_replicas, "MSET values on every replica", timeout=5)
    assert cx.execute_command("RINGKV.LOCALGET", k1) is None
    assert cx.execute_command("RINGKV.LOCALGET", k2) is None
    assert cx.exists(k1, k2) == 2
    assert cx.exists(k1, k2, "k7:nosuch", k1) == 3
    assert cx.delete(k1, k2) == 2
    assert cx.exists(k1, k2) == 0
    assert cx.mget([k1, k2]) == [None, None]
    for n in cl.nodes:
        assert cl.c(n).exists(k1, k2) == 0, n
    assert cx.delete(k1, k2) == 0

    def gone_on_replicas():
        return all(cl.c(n).execute_command("RINGKV.LOCALGET", k) is None
                   for k in (k1, k2) for n in replicas[k])

    cl.wait_until(gone_on_replicas, "DEL reaching every replica", timeout=5)

    # INCR through different nodes, one after the other
    for i in range(20):
        n = cl.nodes[i % 4]
        assert cl.c(n).incr("k7:counter") == i + 1, (i, n)
    assert cl.c(x).incrby("k7:counter", 10) == 30
    for n in cl.nodes:
        assert cl.c(n).get("k7:counter") == b"30", n
    cl.wait_until(
        lambda: len([n for n in cl.nodes if cl.c(n).execute_command(
            "RINGKV.LOCALGET", "k7:counter") == b"30"]) == 3,
        "the counter on 3 replicas", timeout=5)


# --- 8. leave refused while holding data; join of a non-empty node refused;
#        remove of a killed node -----------------------------------------------

@pytest.mark.timeout(150)
def test_join_leave_with_handoff_remove_dead_node(cluster_factory):
    cl = cluster_factory(5, form=3)
    a, b, c, d, e = cl.nodes
    kv = values_for(["k8:%d" % i for i in range(50)], SEED, "t8")
    assert not pipelined_set(cl.c(a), kv)
    v0 = int(cl.info(a)["cluster_state_version"])

    # a node that holds keys cannot join
    assert cl.c(e).set("k8:local", "x") is True
    p = cl.cli(e, "cluster", "join", a.peer_addr, check=False)
    out = (p.stdout + p.stderr).strip()
    print("join of a non-empty node: exit %d: %s" % (p.returncode, out))
    assert p.returncode == 1, out
    assert "join needs an empty node" in out, out

    # an empty node joins: it becomes a pending owner, receives its
    # partitions from their current replicas (handoff), and only then
    # counts as a member (issue 14)
    t0 = time.monotonic()
    cl.join(d, a)
    cl.wait_converged(4, nodes=[a, b, c, d], timeout=30)
    print("join of D with %d keys in the cluster: %.2f s to converge" % (
        len(kv), time.monotonic() - t0))
    assert cl.c(d).dbsize() > 0
    print("D holds %d keys after its join" % cl.c(d).dbsize())
    check_values(cl.c(d), kv, "GET through D after it joined")
    for n in (a, b, c, d):
        assert "transition none" in cl.status_text(n), cl.status_text(n)

    # a node that holds keys leaves: it hands its partitions off, then
    # leaves (it was refused before issue 14)
    assert cl.c(d).dbsize() > 0
    t0 = time.monotonic()
    p = cl.cli(d, "cluster", "leave", check=False)
    print("leave of a node holding data: exit %d: %s" % (
        p.returncode, (p.stdout + p.stderr).strip()))
    assert p.returncode == 0 and p.stdout.strip() == "OK", p
    cl.wait_converged(3, nodes=[a, b, c], timeout=30)
    cl.wait_until(lambda: cl.info(d)["cluster_phase"] == "removed",
                  "the leaver to see itself removed", timeout=20,
                  nodes=[a, b, c, d])
    print("leave of D: %.2f s until removed" % (time.monotonic() - t0))
    for n in (a, b, c):
        _, rows = cl.status(n)
        assert [(r["node_id"], r["status"]) for r in rows
                if r["node_id"] != e.node_id] == [
            (x.node_id, "valid" if x is not d else "removed")
            for x in (a, b, c, d)], rows
    check_values(cl.c(b), kv, "GET through B after D left")
    # a departed node refuses key commands until it joins again
    with pytest.raises(redis.exceptions.ResponseError) as ei:
        cl.c(d).get("k8:0")
    assert str(ei.value).startswith("CLUSTERDOWN"), str(ei.value)

    # remove of a killed node
    cl.kill(c)
    p = cl.cli(a, "cluster", "remove", "no-such-node", check=False)
    out = (p.stdout + p.stderr).strip()
    print("remove of an unknown node: exit %d: %s" % (p.returncode, out))
    # the interface says "-ERR no such member"; today's text is
    # "ERR no valid member 'no-such-node'": accept both wordings
    assert p.returncode == 1 and out.startswith("ERR") and \
        ("no such member" in out or "no valid member" in out), p
    # 3 -> 2 members is below N=3: refused without --force (issue 14
    # item 6), done with it
    p = cl.cli(a, "cluster", "remove", c.node_id, check=False)
    out = (p.stdout + p.stderr).strip()
    print("remove below N without --force: exit %d: %s" % (p.returncode, out))
    assert p.returncode == 1 and "fewer than N=3" in out, p
    p = cl.cli(a, "cluster", "remove", c.node_id, "--force")
    assert p.stdout.strip() == "OK", p
    cl.wait_converged(2, nodes=[a, b], timeout=20)
    tables = {n.node_id: cl.status(n) for n in (a, b)}
    (ha, ra), (hb, rb) = tables[a.node_id], tables[b.node_id]
    assert ha["version"] == hb["version"], (ha, hb)
    assert ha["version"] > v0
    for rows in (ra, rb):
        st = {r["node_id"]: (r["status"], r["partitions"]) for r in rows}
        assert st[c.node_id] == ("removed", 0), rows
        assert st[a.node_id][0] == "valid" and st[b.node_id][0] == "valid"
        assert st[a.node_id][1] + st[b.node_id][1] == RING_SIZE, rows
    assert [(r["node_id"], r["status"], r["partitions"]) for r in ra] == \
        [(r["node_id"], r["status"], r["partitions"]) for r in rb]
    for n in (a, b):
        info = cl.info(n)
        assert info["cluster_members"] == "2", info
        # N, R, W are clamped to the 2 valid members
        assert info["cluster_n"] == "2", info
    print("after remove: status on A:\n%s" % cl.status_text(a))
    # the two survivors still serve reads and writes
    check_values(cl.c(a), kv, "GET through A after removing C")
    more = values_for(["k8:more:%d" % i for i in range(50)], SEED + 1, "m")
    assert not pipelined_set(cl.c(b), more)
    check_values(cl.c(a), more, "GET through A of keys written through B")

    # C's data dir belongs to node3: another --node-id on it is refused
    srv = c.server
    good_args = list(srv.args)
    i = srv.args.index("--node-id")
    srv.args[i + 1] = "impostor"
    try:
        srv.start(wait=False)
        rc = srv.wait_exit(timeout=30)
    finally:
        srv.args[:] = good_args
    print("restart of C's data dir as 'impostor': exit %s" % rc)
    assert rc not in (0, None), rc
    assert "impostor" in srv.logs(), srv.logs()[-2000:]
    # the removed node comes back with its own id and learns it was removed
    cl.restart(c)
    cl.wait_until(lambda: cl.info(c)["cluster_phase"] == "removed",
                  "the removed node to see itself removed", timeout=15,
                  nodes=[a, b, c])
    cl.wait_converged(2, nodes=[a, b], timeout=10)
    check_values(cl.c(b), kv, "GET through B after C came back removed")
    with pytest.raises(redis.exceptions.ResponseError) as ei:
        cl.c(c).set("k8:0", "nope")
    assert str(ei.value).startswith("CLUSTERDOWN"), str(ei.value)
    assert cl.c(a).get("k8:0") == kv["k8:0"]


@pytest.mark.timeout(60)
def test_join_over_resp_fails_fast_on_a_refused_seed(cluster_factory):
    """Issue 13 item 5 (server side): RINGKV.CLUSTER JOIN sent over RESP to
    a seed address that refuses the connection answers at once with the
    reason, as `ringkv cluster join` does, instead of waiting for the join
    timeout (30 s).  A seed that accepts still joins."""
    from conftest import free_port
    cl = cluster_factory(2, form=False)
    a, b = cl.nodes
    dead = free_port()
    c = b.client()
    for seed in ("127.0.0.1:%d" % dead, "no-such-host.invalid:%d" % dead):
        t0 = time.monotonic()
        with pytest.raises(redis.ResponseError) as e:
            c.execute_command("RINGKV.CLUSTER", "JOIN", seed)
        took = time.monotonic() - t0
        assert took < 5, took
        msg = str(e.value)
        assert msg.startswith("cannot join: seed %s" % seed.rsplit(":", 1)[0]), \
            msg
        if seed.startswith("127."):
            assert "Connection refused" in msg, msg
    # no join is left in progress: the node takes a good seed at once
    assert c.execute_command("RINGKV.CLUSTER", "JOIN", a.peer_addr) in \
        (b"OK", "OK", True)
    cl.wait_converged(2)

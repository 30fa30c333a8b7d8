"""Hashes and sets on one node (issue 16), beyond what the differential
test against redis-server compares (test_collections_diff.py): they are
kept through a restart and a kill -9, a collection's members go with it
(DEL, SET over it, expiry, RENAME), a large one stays O(1) per member,
keys with ringkv's reserved prefix are refused, and a cluster refuses
them with an error that says why (and a node holding them refuses joins:
a cluster would hide them).  Nodes are stopped by PID (conftest).
"""
import time

import pytest
import redis

from cluster_util import cluster_factory_gen
from conftest import TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv storage"),
]


def records(c):
    return int(c.info("persistence").get("engine_live_records",
                                         c.info()["engine_live_records"]))


def snapshot(c):
    return ({k: c.hgetall(k) for k in ("h1", "h2")},
            {k: c.smembers(k) for k in ("s1", "s2")})


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_collections_survive_restart_and_kill(server_factory, how):
    srv = server_factory()
    c = srv.client()
    for i in range(300):
        c.hset("h1", "f%d" % i, "v%d" % i)
        c.sadd("s1", "m%d" % i)
    c.hset("h2", mapping={"a": "1", "b": "2"})
    c.hdel("h1", "f7")
    c.srem("s1", "m9")
    c.sadd("s2", "x")
    c.hincrby("h2", "a", 41)
    want = snapshot(c)
    c.close()
    if how == "kill":
        srv.kill()
        srv.start()
    else:
        srv.restart()
    c = srv.client()
    assert snapshot(c) == want
    assert c.hlen("h1") == 299 and c.scard("s1") == 299
    assert c.hget("h2", "a") == b"42"
    assert c.type("h1") == b"hash" and c.type("s2") == b"set"
    assert c.dbsize() == 4
    c.close()


def test_members_go_with_their_key(server_factory):
    srv = server_factory()
    c = srv.client()
    base = records(c)
    c.sadd("s", *["m%d" % i for i in range(100)])
    assert records(c) == base + 101  # a header and 100 members
    assert c.dbsize() == 1
    c.delete("s")
    assert records(c) == base
    c.hset("h", mapping={"f%d" % i: "v" for i in range(50)})
    c.set("h", "now a string")  # SET replaces any type, members too
    assert c.get("h") == b"now a string"
    assert records(c) == base + 1
    c.sadd("e", "a", "b", "c")
    assert c.pexpire("e", 200)
    time.sleep(0.4)
    assert c.exists("e") == 0
    assert records(c) == base + 1
    # RENAME moves the members; the old ones go
    c.hset("r", mapping={"a": "1", "b": "2"})
    assert c.rename("r", "r2")
    assert c.hgetall("r2") == {b"a": b"1", b"b": b"2"}
    assert c.exists("r") == 0
    assert records(c) == base + 1 + 3
    # the last member removed deletes the key
    c.srem("t", "x")
    c.sadd("t", "x")
    assert c.srem("t", "x") == 1
    assert c.exists("t") == 0
    assert records(c) == base + 1 + 3
    c.close()


def test_a_large_set_and_hash(server_factory):
    """50,000 members: SISMEMBER/HGET answer from one record each; SCARD
    and HLEN from the header; SSCAN walks them all."""
    srv = server_factory()
    c = srv.client()
    n = 50000
    p = c.pipeline(transaction=False)
    for i in range(n):
        p.sadd("big", "member-%d" % i)
        p.hset("bigh", "f%d" % i, i)
        if i % 1000 == 999:
            p.execute()
    p.execute()
    assert c.scard("big") == n and c.hlen("bigh") == n
    t0 = time.time()
    for i in range(0, n, 97):
        assert c.sismember("big", "member-%d" % i)
        assert c.hget("bigh", "f%d" % i) == str(i).encode()
    dt = time.time() - t0
    assert not c.sismember("big", "member-%d" % n)
    seen, cur = set(), 0
    while True:
        cur, items = c.sscan("big", cur, count=1000)
        seen.update(items)
        if cur == 0:
            break
    assert len(seen) == n
    assert len(c.hgetall("bigh")) == n
    print("50,000 members: %d SISMEMBER+HGET pairs in %.3f s" % (
        len(range(0, n, 97)), dt))
    c.close()


def test_reserved_keys_are_refused(server_factory):
    srv = server_factory()
    c = srv.client()
    for cmd in (("SET", b"\xffrkv\xffmx", "v"), ("GET", b"\xffrkv\xffm"),
                ("HSET", b"\xffrkv\xff", "f", "v"), ("DEL", "a",
                                                      b"\xffrkv\xffb")):
        with pytest.raises(redis.ResponseError, match="reserved"):
            c.execute_command(*cmd)
    c.close()


def test_huge_random_counts_are_refused_not_crashed(server_factory):
    srv = server_factory()
    c = srv.client()
    c.sadd("s", "a")
    c.hset("h", "f", "v")
    for cmd in (("SRANDMEMBER", "s", "-2305843009213693953"),
                ("HRANDFIELD", "h", "-2305843009213693953"),
                ("SRANDMEMBER", "s", str(-(16 * 1024 * 1024 + 1)))):
        with pytest.raises(redis.ResponseError, match="out of range"):
            c.execute_command(*cmd)
    assert c.execute_command("SRANDMEMBER", "s", "-3") == [b"a"] * 3
    assert c.ping()
    c.close()


def test_member_too_long_is_refused(server_factory):
    srv = server_factory()
    c = srv.client()
    with pytest.raises(redis.ResponseError, match="too long"):
        c.sadd("s", "x" * 70000)
    assert c.exists("s") == 0
    c.close()


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def test_a_cluster_refuses_them_clearly(cluster_factory):
    cl = cluster_factory(3)
    c = cl.c(cl.nodes[0])
    for cmd in (("HSET", "h", "f", "v"), ("SADD", "s", "m"),
                ("HGET", "h", "f"), ("SMEMBERS", "s")):
        with pytest.raises(redis.ResponseError, match="not replicated in a "
                           "cluster yet"):
            c.execute_command(*cmd)
    # inside MULTI too
    p = c.pipeline(transaction=True)
    p.set("k", "v").sadd("s", "m")
    with pytest.raises(redis.ResponseError, match="not replicated"):
        p.execute()
    assert c.type("s") == b"none"


def test_a_node_holding_them_refuses_joins(cluster_factory):
    """Its hashes and sets would be hidden behind the coordinator."""
    cl = cluster_factory(2, form=False)
    a, b = cl.nodes
    cl.c(a).sadd("tags", "x")
    out = cl.cli(b, "cluster", "join", a.peer_addr, check=False)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "holds hashes or sets" in text, text
    assert cl.c(a).smembers("tags") == {b"x"}
    # nor may it join another node: it is not empty
    out = cl.cli(a, "cluster", "join", b.peer_addr, check=False)
    assert out.returncode != 0
    assert "empty node" in out.stdout + out.stderr, out.stdout + out.stderr
    assert cl.c(a).smembers("tags") == {b"x"}
    # once they are gone and the node restarted, it takes joins again
    cl.c(a).delete("tags")
    cl.restart(a)
    cl.join(b, a)
    cl.wait_converged(2)

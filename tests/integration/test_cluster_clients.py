"""Redis Cluster clients against ringkv (issue 13 items 2 and 3;
docs/clients.md): the CLUSTER commands answered from the ring, redis-py's
RedisCluster and `redis-cli -c` unmodified, against real ringkvd processes
(conftest/cluster_util: every server is stopped by PID, also on failure).

What is checked:
  1. a single node is a cluster of one: INFO cluster_enabled:1, every slot
     on itself, KEYSLOT as Redis computes it, COUNT/GETKEYSINSLOT, the
     Redis error texts, READONLY/READWRITE/ASKING answer OK, and both a
     plain client and RedisCluster work;
  2. 3 nodes: every node answers the same SLOTS/NODES/SHARDS, the ranges
     cover 0..16383 with 3 distinct nodes each and their RESP ports;
  3. 4 nodes, N=3: a key lives exactly on the nodes CLUSTER SLOTS lists
     for its slot (the partitioner is the slot function), and keys with
     one hash tag share those nodes;
  4. RedisCluster routes 1000 keys over every primary, multi-key commands
     with hash tags, and never sees MOVED/ASK (3 and 5 nodes, N=3);
  5. RedisCluster survives a SIGKILLed node of 3 and of 5 (N=3): reads
     and writes go on with 0 errors, the
     down node is flagged fail and its ranges have another primary;
  6. RedisCluster sees a node join after a topology refresh;
  7. redis-cli -c sets and gets through any node (no redirects);
  8. redis-benchmark --cluster runs against it (smoke);
  9. a cluster.state of format 1 (keys placed by XXH3) is upgraded on a
     single node and refused with a reason on a node of 4 with N=3.

    RINGKV_BUILD=$PWD/build-san /usr/bin/python3 -m pytest -s -q \\
        tests/integration/test_cluster_clients.py
"""
import os
import shutil
import subprocess
import time

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from cluster_util import cluster_factory_gen
from conftest import TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv",
                       reason="ringkv cluster (redis-server runs these "
                              "with --cluster-enabled yes, not here)"),
]

SLOTS = 16384
# CLUSTER KEYSLOT of a redis-server 7.0.15 with --cluster-enabled yes
KNOWN_SLOTS = {
    b"foo": 12182,
    b"bar": 5061,
    b"{user1000}.following": 3443,
    b"{user1000}.followers": 3443,
    b"foo{}{bar}": 8363,
    b"foo{{bar}}zap": 4015,
    b"hello world": 15332,
}


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def rc_for(node, **kw):
    """A RedisCluster whose only startup node is `node`."""
    kw.setdefault("socket_timeout", 15)
    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.port)],
                        **kw)


def slot_table(client):
    """CLUSTER SLOTS -> [(first, last, [port, ...])] sorted by first."""
    out = []
    for r in client.execute_command("CLUSTER", "SLOTS"):
        out.append((int(r[0]), int(r[1]), [int(n[1]) for n in r[2:]]))
    return sorted(out)


def ports_of_slot(table, slot):
    for first, last, ports in table:
        if first <= slot <= last:
            return ports
    raise AssertionError("slot %d not covered: %r" % (slot, table))


def check_covers_all(table):
    nxt = 0
    for first, last, _ in table:
        assert first == nxt, table
        nxt = last + 1
    assert nxt == SLOTS, table


# --- 1. a single node ------------------------------------------------------

def test_single_node_is_a_cluster_of_one(server):
    r = server.client()
    info = r.info("cluster")
    assert info["cluster_enabled"] == 1 and info["ringkv_cluster"] == 1
    slots = r.execute_command("CLUSTER", "SLOTS")
    myid = r.execute_command("CLUSTER", "MYID")
    assert len(myid) == 40 and int(myid, 16) >= 0
    assert slots == [[0, SLOTS - 1, [b"127.0.0.1", server.port, myid, []]]]
    nodes = r.execute_command("CLUSTER", "NODES").decode()
    f = nodes.split()
    assert f[0] == myid.decode() and f[1].startswith(
        "127.0.0.1:%d@" % server.port) and f[2] == "myself,master", nodes
    assert f[-1] == "0-16383", nodes
    ci = r.execute_command("CLUSTER", "INFO").decode()
    assert "cluster_state:ok\r\n" in ci and \
        "cluster_slots_assigned:16384\r\n" in ci and \
        "cluster_known_nodes:1\r\n" in ci, ci
    shards = r.execute_command("CLUSTER", "SHARDS")
    assert len(shards) == 1 and shards[0][1] == [0, SLOTS - 1], shards
    for key, slot in KNOWN_SLOTS.items():
        assert r.execute_command("CLUSTER", "KEYSLOT", key) == slot, key
    for k in (b"{t}a", b"{t}b", b"{t}c", b"other"):
        r.set(k, b"v")
    r.set(b"{t}gone", b"v", px=1)
    time.sleep(0.01)  # expired keys are neither counted nor listed
    st = r.execute_command("CLUSTER", "KEYSLOT", "t")
    assert r.execute_command("CLUSTER", "COUNTKEYSINSLOT", st) == 3
    got = r.execute_command("CLUSTER", "GETKEYSINSLOT", st, 10)
    assert sorted(got) == [b"{t}a", b"{t}b", b"{t}c"]
    assert len(r.execute_command("CLUSTER", "GETKEYSINSLOT", st, 2)) == 2
    # the error texts of redis-server 7.0.15
    for bad in (-1, SLOTS):
        with pytest.raises(redis.ResponseError, match="^Invalid slot$"):
            r.execute_command("CLUSTER", "COUNTKEYSINSLOT", bad)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("CLUSTER", "COUNTKEYSINSLOT", "x")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("CLUSTER", "GETKEYSINSLOT", 1, "x")
    with pytest.raises(redis.ResponseError,
                       match="wrong number of arguments for 'cluster.keyslot'"):
        r.execute_command("CLUSTER", "KEYSLOT")

    with pytest.raises(redis.ResponseError,
                       match="^Invalid slot or number of keys$"):
        r.execute_command("CLUSTER", "GETKEYSINSLOT", 1, -1)
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        r.execute_command("CLUSTER", "FOO")
    helptext = r.execute_command("CLUSTER", "HELP")
    assert any(b"GETKEYSINSLOT" in ln for ln in helptext), helptext
    for cmd in ("READONLY", "READWRITE", "ASKING"):
        assert r.execute_command(cmd) in (b"OK", True), cmd
    # plain clients keep working, and so does RedisCluster
    assert r.get(b"other") == b"v"
    rc = RedisCluster(host="127.0.0.1", port=server.port)
    try:
        rc.set("x", "1")
        assert rc.get("x") == b"1"
        assert [n.port for n in rc.get_nodes()] == [server.port]
    finally:
        rc.close()


# --- 2. 3 nodes: the same topology everywhere ------------------------------

@pytest.mark.timeout(120)
def test_three_nodes_answer_one_topology(cluster_factory):
    cl = cluster_factory(3)
    ports = sorted(n.port for n in cl.nodes)
    tables = [slot_table(cl.c(n)) for n in cl.nodes]
    assert tables[0] == tables[1] == tables[2]
    check_covers_all(tables[0])
    for _, _, p in tables[0]:
        assert sorted(p) == ports, tables[0]  # N=3 distinct nodes
    primaries = {p[0] for _, _, p in tables[0]}
    assert primaries == set(ports), tables[0]
    myids = {n.port: cl.c(n).execute_command("CLUSTER", "MYID").decode()
             for n in cl.nodes}
    for n in cl.nodes:
        assert cl.info(n)["cluster_enabled"] == "1"
        lines = cl.c(n).execute_command(
            "CLUSTER", "NODES").decode().splitlines()
        assert len(lines) == 3, lines
        seen = {}
        for ln in lines:
            f = ln.split()
            port = int(f[1].split("@")[0].split(":")[1])
            seen[port] = f[0]
            assert ("myself" in f[2]) == (port == n.port), ln
            assert f[7] == "connected", ln
            assert len(f) > 8, "a primary without slots: %s" % ln
        assert seen == myids
        ci = cl.c(n).execute_command("CLUSTER", "INFO").decode()
        assert "cluster_known_nodes:3\r\n" in ci and \
            "cluster_size:3\r\n" in ci and "cluster_state:ok\r\n" in ci, ci
        shards = cl.c(n).execute_command("CLUSTER", "SHARDS")
        covered = 0
        for sh in shards:
            d = dict(zip(sh[::2], sh[1::2]))
            sl = d[b"slots"]
            covered += sum(sl[i + 1] - sl[i] + 1 for i in range(0, len(sl),
                                                                   2))
            assert len(d[b"nodes"]) == 3
        assert covered == SLOTS


# --- 3. the partitioner is the slot function -------------------------------

@pytest.mark.timeout(120)
def test_keys_live_on_the_nodes_cluster_slots_lists(cluster_factory):
    cl = cluster_factory(4)
    by_port = {n.port: n for n in cl.nodes}
    table = slot_table(cl.c(0))
    check_covers_all(table)
    keys = ["key:%d" % i for i in range(40)] + \
        ["{tag}:%d" % i for i in range(10)]
    for k in keys:
        cl.c(1).set(k, "v")
    tag_slot = cl.c(0).execute_command("CLUSTER", "KEYSLOT", "{tag}:0")

    def placed():
        for k in keys:
            slot = cl.c(0).execute_command("CLUSTER", "KEYSLOT", k)
            want = sorted(ports_of_slot(table, slot))
            have = sorted(p for p, n in by_port.items() if cl.c(n).
                          execute_command("RINGKV.LOCALGET", k) is not None)
            if have != want:
                return False
        return True
    # W=2 of N=3: the third replica may still be writing
    cl.wait_until(placed, "every key on exactly its slot's 3 nodes")
    assert len(ports_of_slot(table, tag_slot)) == 3
    # and a node stores exactly the keys of the slots it replicates
    for n in cl.nodes:
        for k in keys:
            slot = cl.c(0).execute_command("CLUSTER", "KEYSLOT", k)
            if n.port in ports_of_slot(table, slot):
                assert k.encode() in cl.c(n).execute_command(
                    "CLUSTER", "GETKEYSINSLOT", slot, 100)


# --- 4. redis-py RedisCluster ----------------------------------------------

@pytest.mark.timeout(180)
@pytest.mark.parametrize("m", [3, 5])
def test_redis_py_cluster_routes_1000_keys(cluster_factory, m):
    cl = cluster_factory(m)
    rc = rc_for(cl.nodes[0])
    try:
        assert sorted(n.port for n in rc.get_nodes()) == sorted(
            n.port for n in cl.nodes)
        used = {}
        for i in range(1000):
            k = "k:%d" % i
            assert rc.set(k, "v%d" % i)
            node = rc.get_node_from_key(k)
            used[node.port] = used.get(node.port, 0) + 1
        for i in range(1000):
            assert rc.get("k:%d" % i) == b"v%d" % i
        print("keys per primary: %s" % sorted(used.values()))
        assert len(used) == m and min(used.values()) > 100, used
        # multi-key commands on one hash tag (one slot, one node)
        assert rc.mset({"{u1}.a": "1", "{u1}.b": "2", "{u1}.c": "3"})
        assert rc.mget("{u1}.a", "{u1}.b", "{u1}.c") == [b"1", b"2", b"3"]
        assert rc.delete("{u1}.a", "{u1}.b") == 2
        assert rc.exists("{u1}.a", "{u1}.c") == 1
        assert rc.incr("{u1}.n") == 1
        # across slots: redis-py splits by slot itself
        vals = rc.mget_nonatomic(["k:%d" % i for i in range(50)])
        assert vals == [b"v%d" % i for i in range(50)]
        # any node answers any key: a plain client at a node that is not
        # the key's primary gets the value, not MOVED
        for n in cl.nodes:
            assert cl.c(n).get("k:7") == b"v7"
    finally:
        rc.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("m", [3, 5])
def test_redis_py_cluster_survives_a_sigkilled_node(cluster_factory, m):
    cl = cluster_factory(m)  # N=3 (the default) of 3 or of 5 nodes
    rc = rc_for(cl.nodes[0])
    victim = cl.nodes[2]
    errors, ok = [], 0
    t_kill = None
    try:
        for i in range(300):
            rc.set("pre:%d" % i, str(i))
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 12 or i < 600:
            if t_kill is None and i == 200:
                cl.kill(victim)
                t_kill = time.monotonic()
            k = "s:%d" % (i % 400)
            try:
                rc.set(k, str(i))
                assert rc.get(k) == str(i).encode()
                assert rc.get("pre:%d" % (i % 300)) == str(i % 300).encode()
                ok += 1
            except (redis.exceptions.RedisError, OSError) as e:
                errors.append((time.monotonic() - t_kill
                               if t_kill else None, repr(e)))
            i += 1
        print("after SIGKILL of %r: %d ok, %d errors surfaced: %r" % (
            victim, ok, len(errors), errors[:5]))
        assert t_kill is not None
        # redis-py 4.3.4 retries a refused connection 5 times, then
        # re-reads CLUSTER SLOTS (where the down node no longer is a
        # primary) and retries cluster_error_retry_attempts (3) times more
        assert not errors, errors[:5]
        # the survivors flag it and moved its ranges to other primaries
        a = cl.nodes[0]

        def flagged():
            for ln in cl.c(a).execute_command("CLUSTER", "NODES") \
                    .decode().splitlines():
                f = ln.split()
                if f[1].startswith("127.0.0.1:%d@" % victim.port):
                    return "fail" in f[2].split(",") and len(f) == 8
            return False
        cl.wait_until(flagged, "the killed node to be flagged fail")
        table = slot_table(cl.c(a))
        check_covers_all(table)
        assert all(p[0] != victim.port and victim.port not in p
                   for _, _, p in table), table
        shards = cl.c(a).execute_command("CLUSTER", "SHARDS")
        health = {}
        for sh in shards:
            d = dict(zip(sh[::2], sh[1::2]))
            for nd in d[b"nodes"]:
                nd = dict(zip(nd[::2], nd[1::2]))
                health[nd[b"port"]] = nd[b"health"]
        assert health[victim.port] == b"failed", health
        ci = cl.c(a).execute_command("CLUSTER", "INFO").decode()
        assert "cluster_state:ok" in ci, ci
    finally:
        rc.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_redis_py_cluster_sees_a_join_after_refresh(cluster_factory):
    cl = cluster_factory(4, form=3)
    rc = rc_for(cl.nodes[0])
    try:
        assert len(rc.get_nodes()) == 3
        for i in range(200):
            rc.set("j:%d" % i, str(i))
        new = cl.nodes[3]
        cl.join(new, cl.nodes[0])
        cl.wait_converged(4)
        # old topology: still works (any node coordinates any key)
        for i in range(200):
            assert rc.get("j:%d" % i) == str(i).encode()
        # refresh: what a client does periodically or after errors
        rc.nodes_manager.initialize()
        ports = sorted(n.port for n in rc.get_nodes())
        assert ports == sorted(n.port for n in cl.nodes), ports
        to_new = [i for i in range(400)
                  if rc.get_node_from_key("j:%d" % i).port == new.port]
        assert to_new, "no key routed to the new node"
        for i in range(400):
            rc.set("j:%d" % i, "n%d" % i)
        for i in range(400):
            assert rc.get("j:%d" % i) == b"n%d" % i
        print("after the join %d of 400 keys route to the new node" %
              len(to_new))
    finally:
        rc.close()


# --- 7. redis-cli -c --------------------------------------------------------

@pytest.mark.timeout(120)
def test_redis_cli_c_sets_and_gets_without_redirects(cluster_factory):
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli not installed")
    cl = cluster_factory(3)

    def run(node, *args):
        p = subprocess.run([cli, "-c", "-p", str(node.port)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, universal_newlines=True)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        assert "Redirected" not in p.stdout + p.stderr, p.stdout
        return p.stdout.strip()
    for i in range(30):
        node = cl.nodes[i % 3]
        assert run(node, "set", "cli:%d" % i, "v%d" % i) == "OK"
    for i in range(30):
        node = cl.nodes[(i + 1) % 3]
        assert run(node, "get", "cli:%d" % i) == "v%d" % i
    assert run(cl.nodes[0], "cluster", "keyslot", "foo") == "12182"


# --- 8. redis-benchmark --cluster (smoke) ----------------------------------

@pytest.mark.timeout(180)
def test_redis_benchmark_cluster_smoke(cluster_factory):
    bench = shutil.which("redis-benchmark")
    if bench is None:
        pytest.skip("redis-benchmark not installed")
    cl = cluster_factory(3)
    p = subprocess.run([bench, "--cluster", "-h", "127.0.0.1", "-p",
                        str(cl.nodes[0].port), "-t", "set,get", "-n", "3000",
                        "-c", "6", "-q"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=150, universal_newlines=True)
    print(p.stdout)
    assert p.returncode == 0, p.stdout
    assert "Cluster has 3 master nodes" in p.stdout, p.stdout
    assert "SET:" in p.stdout and "GET:" in p.stdout, p.stdout


# --- 9. cluster.state format 1 ----------------------------------------------

def state_members(b):
    """The member count M of cluster state bytes (docs/cluster.md)."""
    off = 13
    off += 1 + b[off]  # changer
    off += 1 + b[off]  # cluster name
    return int.from_bytes(b[off + 8:off + 12], "little")


def set_state_format(node_server, fmt):
    """Rewrites the saved state (format 4, no transition: it ends with the
    0 of "no transition" and 2 bytes of TLS port per member) as format
    `fmt` (1, 2 or 3: the same bytes without the TLS ports, and for 1 and
    2 without the transition byte)."""
    path = os.path.join(node_server.data_dir, "cluster.state")
    with open(path, "rb") as f:
        b = f.read()
    assert b[:4] == b"RKCS" and b[4] == 4, b[:5]
    b = b[:-2 * state_members(b)]
    assert b[-1] == 0, b[-5:]
    if fmt < 3:
        b = b[:-1]
    with open(path, "wb") as f:
        f.write(b[:4] + bytes([fmt]) + b[5:])


@pytest.mark.timeout(120)
def test_format_1_state_upgraded_alone_refused_when_spread(server_factory,
                                                          cluster_factory):
    s = server_factory()
    s.client().set("old", "1")
    assert s.stop() == 0
    set_state_format(s, 1)
    s.start()
    assert s.client().get("old") == b"1"
    assert s.client().info("cluster")["cluster_enabled"] == 1

    cl = cluster_factory(4)
    n = cl.nodes[3]
    cl.drop_client(n)
    assert n.server.stop() == 0
    set_state_format(n.server, 1)
    n.server.start(wait=False)
    rc = n.server.wait_exit(timeout=60)
    assert rc not in (0, None), rc
    log = n.server.logs()
    assert "format 1" in log and "hash slot" in log and \
        "empty --data-dir" in log, log[-2000:]


@pytest.mark.timeout(120)
def test_format_3_state_is_read_and_the_cluster_keeps_working(
        cluster_factory):
    """A node restarted on a cluster.state of format 3 (before TLS ports,
    issue 15) reads it and serves its keys (the state is written as
    format 4 at its next change)."""
    cl = cluster_factory(3)
    c = cl.nodes[0].client()
    for i in range(50):
        c.set("f3:%d" % i, i)
    n = cl.nodes[1]
    cl.drop_client(n)
    assert n.server.stop() == 0
    set_state_format(n.server, 3)
    n.server.start()
    for i in range(50):
        assert n.client().get("f3:%d" % i) == b"%d" % i
    assert n.client().info("cluster")["cluster_enabled"] == 1
    assert n.client().execute_command("CLUSTER", "INFO").find(
        b"cluster_known_nodes:3") >= 0

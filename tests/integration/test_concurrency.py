"""Many clients at once: INCR is atomic, MULTI/EXEC is atomic and isolated
on one node (a reader never sees half a transaction), and MSET is atomic
with respect to MGET.
"""
import threading

import pytest

from rawresp import RawClient, encode


def run_threads(n, fn):
    errors = []

    def wrap(i):
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not errors, errors[:5]


def test_concurrent_incr_is_atomic(server):
    per = 500

    def work(i):
        with RawClient(server.port) as c:
            # pipelined in batches of 50 to keep it quick
            for _ in range(per // 50):
                c.send(encode("INCR", "ctr") * 50)
                for _ in range(50):
                    assert isinstance(c.read_reply(), int)

    run_threads(16, work)
    with RawClient(server.port) as c:
        assert c.call("GET", "ctr") == str(16 * per).encode()


def test_multi_exec_transfers_keep_the_sum(server):
    """Writers move amounts between accounts inside MULTI/EXEC; readers
    read all accounts with one MGET and must always see the same total."""
    accounts = ["acct:%d" % i for i in range(5)]
    total = 1000 * len(accounts)
    with RawClient(server.port) as c:
        assert c.call("MSET", *[x for a in accounts for x in (a, "1000")]) \
            == "OK"
    stop = threading.Event()
    seen = []

    def writer(i):
        import random
        rnd = random.Random(i)
        with RawClient(server.port) as c:
            for _ in range(300):
                a, b = rnd.sample(accounts, 2)
                amt = rnd.randint(1, 50)
                c.send(encode("MULTI") + encode("DECRBY", a, amt) +
                       encode("INCRBY", b, amt) + encode("EXEC"))
                assert c.read_reply() == "OK"
                assert c.read_reply() == "QUEUED"
                assert c.read_reply() == "QUEUED"
                res = c.read_reply()
                assert isinstance(res, list) and len(res) == 2, res

    def reader(i):
        with RawClient(server.port) as c:
            while not stop.is_set():
                vals = c.call("MGET", *accounts)
                seen.append(sum(int(v) for v in vals))

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in readers:
        t.start()
    try:
        run_threads(6, writer)
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=60)
    bad = [x for x in seen if x != total]
    assert seen and not bad, "readers saw totals %r, not %d" % (
        sorted(set(bad))[:5], total)
    with RawClient(server.port) as c:
        assert sum(int(v) for v in c.call("MGET", *accounts)) == total


def test_mset_is_atomic_for_mget(server):
    keys = ["m:%d" % i for i in range(20)]
    stop = threading.Event()

    def writer(i):
        with RawClient(server.port) as c:
            for n in range(400):
                v = "%d-%d" % (i, n)
                assert c.call("MSET", *[x for k in keys for x in (k, v)]) \
                    == "OK"

    errors = []
    reads = []

    def reader(i):
        with RawClient(server.port) as c:
            while not stop.is_set():
                vals = c.call("MGET", *keys)
                reads.append(1)
                if vals[0] is not None and len(set(vals)) != 1:
                    errors.append(vals)
                    return

    r_threads = [threading.Thread(target=reader, args=(i,))
                 for i in range(2)]
    for t in r_threads:
        t.start()
    try:
        run_threads(4, writer)
    finally:
        stop.set()
        for t in r_threads:
            t.join(timeout=60)
    assert not errors, "MGET saw a half-applied MSET: %r" % errors[:1]
    assert reads


@pytest.mark.parametrize("transaction", [True, False])
def test_redis_py_pipelines_from_threads(server, transaction):
    def work(i):
        c = server.client()
        try:
            for n in range(50):
                p = c.pipeline(transaction=transaction)
                p.set("t%d:%d" % (i, n), n).incr("t%d:count" % i)
                p.get("t%d:%d" % (i, n))
                res = p.execute()
                assert res == [True, n + 1, str(n).encode()]
        finally:
            c.close()

    run_threads(8, work)
    c = server.client()
    try:
        assert c.dbsize() == 8 * 51
    finally:
        c.close()

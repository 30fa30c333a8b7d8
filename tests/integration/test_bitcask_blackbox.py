"""Black-box checks of the bitcask engine through ringkvd (ringkv only):
file rollover and merge under overwrites, deletes and expiry keep the data
across SIGTERM and SIGKILL restarts; a torn tail is repaired at open; a
corrupted value is never served.
"""
import glob
import os
import random
import signal
import time

import pytest

from rawresp import RawClient

pytestmark = pytest.mark.ringkv_only


def data_files(d):
    return sorted(glob.glob(os.path.join(d, "*.data")))


def write_workload(c, rnd, model, n):
    volatile = set()  # keys with a 50 ms TTL: may or may not exist yet
    for i in range(n):
        k = "key%d" % rnd.randrange(300)
        r = rnd.random()
        if r < 0.6:
            v = ("%s-%d-" % (k, i)).encode() + bytes(rnd.randrange(256)
                                                      for _ in range(60))
            assert c.call("SET", k, v) == "OK"
            model[k] = v
            volatile.discard(k)
        elif r < 0.75:
            n_del = c.call("DEL", k)
            if k in volatile:
                assert n_del in (0, 1)
            else:
                assert n_del == (1 if k in model else 0)
            model.pop(k, None)
            volatile.discard(k)
        elif r < 0.85:
            v = ("short-%d" % i).encode()
            assert c.call("SET", k, v, "PX", "50") == "OK"
            model.pop(k, None)  # expires long before it is checked
            volatile.add(k)
        else:
            v = ("ttl-%d" % i).encode()
            assert c.call("SET", k, v, "EX", "10000") == "OK"
            model[k] = v
            volatile.discard(k)


def check(c, model):
    keys = ["key%d" % i for i in range(300)]
    got = c.call("MGET", *keys)
    want = [model.get(k) for k in keys]
    bad = [(k, g, w) for k, g, w in zip(keys, got, want) if g != w]
    assert not bad, "%d keys differ, e.g. %r" % (len(bad), bad[:3])
    assert c.call("DBSIZE") == len(model)


@pytest.mark.slow
def test_rollover_and_merge_survive_restarts(server_factory, seed):
    rnd = random.Random(seed)
    model = {}
    s = server_factory(args=["--sync", "always", "--max-file-size", "8kb",
                             "--merge-dead-ratio", "0.3", "--hz", "50"])
    max_files = 0
    for how in (signal.SIGTERM, signal.SIGKILL, signal.SIGTERM):
        with RawClient(s.port) as c:
            write_workload(c, rnd, model, 3000)
            max_files = max(max_files, len(data_files(s.data_dir)))
            time.sleep(0.5)  # let short TTLs lapse and merges run
            check(c, model)
        rc = s.stop(how)
        assert rc == (0 if how == signal.SIGTERM else -signal.SIGKILL), rc
        s.start()
        with RawClient(s.port) as c:
            check(c, model)
    assert max_files > 1, "no rollover with --max-file-size 8kb"
    # merge reclaims space: far less on disk than was ever written
    on_disk = sum(os.path.getsize(f) for f in data_files(s.data_dir))
    assert on_disk < 9000 * 100, on_disk


def test_torn_tail_is_repaired(server_factory):
    s = server_factory(args=["--sync", "always"])
    with RawClient(s.port) as c:
        for i in range(100):
            assert c.call("SET", "k%d" % i, "v%d" % i) == "OK"
    s.kill()
    newest = max(data_files(s.data_dir), key=os.path.getmtime)
    with open(newest, "ab") as f:
        f.write(b"\x13\x37garbage-that-is-not-a-record" * 3)
    s.start()
    with RawClient(s.port) as c:
        assert c.call("MGET", *["k%d" % i for i in range(100)]) == \
            [b"v%d" % i for i in range(100)]
        assert c.call("SET", "after", "repair") == "OK"
    s.kill()
    s.start()
    with RawClient(s.port) as c:
        assert c.call("GET", "after") == b"repair"
        assert c.call("DBSIZE") == 101


def test_corrupted_value_is_never_served(server_factory):
    s = server_factory(args=["--sync", "always"])
    marker = b"UNIQUE-VALUE-" + b"x" * 40
    with RawClient(s.port) as c:
        assert c.call("SET", "victim", marker) == "OK"
        for i in range(50):
            assert c.call("SET", "other%d" % i, "o%d" % i) == "OK"
    assert s.stop() == 0
    hits = 0
    for f in data_files(s.data_dir):
        with open(f, "r+b") as fh:
            data = fh.read()
            at = data.find(marker)
            if at >= 0:
                fh.seek(at + 20)
                fh.write(b"y")  # flip one byte inside the value
                hits += 1
    assert hits >= 1, "value not found in any data file"
    s.proc = None
    try:
        s.start()
    except RuntimeError:
        # refusing to open a corrupted data dir is acceptable; say why
        assert s.proc.returncode not in (0, None)
        log = s.logs().strip().splitlines()
        assert log and ("corrupt" in log[-1].lower() or "crc" in
                        log[-1].lower() or "checksum" in log[-1].lower()), log
        s.proc = None
        s.log.close()
        s.args = s.args + ["--repair", "yes"]
        s.start()
    with RawClient(s.port) as c:
        got = c.call("GET", "victim")
        assert got != marker[:20] + b"y" + marker[21:], \
            "corrupted value was served"
        assert got is None or c.last_type == b"-", got
        assert c.call("MGET", *["other%d" % i for i in range(50)]) == \
            [b"o%d" % i for i in range(50)]

"""Durability and lifecycle: restart keeps data and TTLs, SIGKILL keeps
acknowledged writes under --sync always, SIGTERM under load loses no
acknowledged write, exit codes, and the single-instance guards (a second
ringkvd on the same data dir or port fails at once).

Against redis-server (RINGKV_TEST_TARGET=redis) the conftest maps
--sync always/every/none to appendfsync always/everysec/no with AOF on.
"""
import os
import random
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest
import redis

from conftest import BUILD, Server, TARGET, free_port, is_ringkv


def test_sigterm_exit_code_zero(server_factory):
    s = server_factory()
    c = s.client()
    c.set("k", "v")
    c.close()
    assert s.stop(signal.SIGTERM) == 0


def test_sigint_exit_code_zero(server_factory):
    s = server_factory()
    assert s.client().ping()
    assert s.stop(signal.SIGINT) == 0


def test_restart_keeps_data_and_ttls(server_factory):
    s = server_factory(args=["--sync", "every:1000"])
    c = s.client()
    c.mset({"plain:%d" % i: "v%d" % i for i in range(200)})
    c.set(b"bin\x00key", bytes(range(256)))
    c.set("long", "L", ex=1000)
    c.set("pxlong", "P", px=600000)
    c.set("short", "S", px=1500)
    c.set("gone", "G")
    c.delete("gone")
    c.incrby("counter", 41)
    c.incr("counter")
    c.set("persisted", "x", ex=1000)
    c.persist("persisted")
    c.append("appended", "ab")
    c.append("appended", "cd")
    c.set("overwritten", "old")
    c.set("overwritten", "new")
    ttl_before = c.ttl("long")
    c.close()
    assert s.stop(signal.SIGTERM) == 0
    time.sleep(2.0)  # "short" expires while the server is down
    s.start()
    c = s.client()
    try:
        assert c.mget(["plain:%d" % i for i in range(200)]) == \
            [("v%d" % i).encode() for i in range(200)]
        assert c.get(b"bin\x00key") == bytes(range(256))
        assert c.get("long") == b"L"
        ttl = c.ttl("long")
        # close to the original: the downtime counts, nothing else moves it
        assert ttl_before - 15 <= ttl <= ttl_before, (ttl_before, ttl)
        assert 580000 <= c.pttl("pxlong") <= 600000
        assert c.get("short") is None
        assert c.ttl("short") == -2
        assert c.exists("gone") == 0
        assert c.get("counter") == b"42"
        assert c.ttl("persisted") == -1
        assert c.get("appended") == b"abcd"
        assert c.get("overwritten") == b"new"
        assert c.dbsize() == 200 + 7
        keys = set(c.scan_iter(count=100))
        assert b"short" not in keys and len(keys) == 207
    finally:
        c.close()


def test_restart_twice_and_keep_writing(server_factory):
    s = server_factory(args=["--sync", "every:1000"])
    for round_ in range(3):
        c = s.client()
        for i in range(round_ + 1):
            assert c.get("r%d" % i) == (b"x" if i < round_ else None)
        c.set("r%d" % round_, "x")
        c.close()
        assert s.stop() == 0
        s.start()
    c = s.client()
    assert c.dbsize() == 3
    c.close()


def test_expired_key_not_resurrected_after_restart(server_factory):
    s = server_factory(args=["--sync", "always"])
    c = s.client()
    c.set("k", "v", px=300)
    c.set("k2", "v2", ex=1000)
    c.expire("k2", 0)  # deleted by expiry
    time.sleep(0.5)
    assert c.get("k") is None
    c.close()
    s.restart()
    c = s.client()
    assert c.get("k") is None and c.get("k2") is None
    assert c.dbsize() == 0
    c.close()


def test_sigkill_keeps_acknowledged_writes_sync_always(server_factory):
    s = server_factory(args=["--sync", "always"])
    c = s.client()
    pipe = c.pipeline(transaction=False)
    for i in range(500):
        pipe.set("k%d" % i, "v%d" % i)
    assert all(pipe.execute())
    c.set("ttl", "t", ex=1000)
    c.delete("k0")
    c.incr("n")
    c.close()
    s.kill()
    s.start()
    c = s.client()
    try:
        assert c.get("k0") is None
        assert c.mget(["k%d" % i for i in range(1, 500)]) == \
            [("v%d" % i).encode() for i in range(1, 500)]
        assert 900 <= c.ttl("ttl") <= 1000
        assert c.get("n") == b"1"
    finally:
        c.close()


class Writers:
    """Writer threads that record every acknowledged SET."""

    def __init__(self, port, threads=4, value_size=64, pipeline=1):
        self.port = port
        self.acked = {}
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(t,))
                        for t in range(threads)]
        self.value_size = value_size
        self.pipeline = pipeline

    def run(self, t):
        try:
            c = redis.Redis(host="127.0.0.1", port=self.port,
                            socket_timeout=30)
            i = 0
            rnd = random.Random(t)
            while not self.stop_ev.is_set():
                batch = []
                for _ in range(self.pipeline):
                    key = "w%d:%d" % (t, i)
                    val = ("%s:" % key).encode() + rnd.randbytes(
                        self.value_size)
                    batch.append((key, val))
                    i += 1
                if self.pipeline == 1:
                    c.set(batch[0][0], batch[0][1])
                else:
                    p = c.pipeline(transaction=False)
                    for k, v in batch:
                        p.set(k, v)
                    p.execute()
                with self.lock:
                    for k, v in batch:
                        self.acked[k] = v
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass  # the server went away: the in-flight batch is unacked
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=60)


def verify_acked(s, acked):
    c = s.client()
    try:
        keys = sorted(acked)
        lost = []
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            for k, v in zip(chunk, c.mget(chunk)):
                if v != acked[k]:
                    lost.append(k)
        return lost
    finally:
        c.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("pipeline", [1, 16])
def test_sigterm_under_load_loses_no_acknowledged_write(server_factory,
                                                        pipeline):
    s = server_factory(args=["--sync", "always"])
    w = Writers(s.port, threads=4, pipeline=pipeline)
    w.start()
    time.sleep(2.0)
    pid = s.pid
    os.kill(pid, signal.SIGTERM)
    rc = s.wait_exit(timeout=60)
    w.join()
    assert not w.errors, w.errors
    assert rc == 0, "exit code %r on SIGTERM under load" % rc
    n = len(w.acked)
    print("acknowledged writes before SIGTERM: %d" % n)
    assert n > 50, "too few acknowledged writes (%d) to mean anything" % n
    s.start()
    lost = verify_acked(s, w.acked)
    assert not lost, "%d of %d acknowledged writes lost, e.g. %r" % (
        len(lost), n, lost[:5])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkill_under_load_loses_no_acknowledged_write(server_factory):
    s = server_factory(args=["--sync", "always"])
    w = Writers(s.port, threads=4, pipeline=8)
    w.start()
    time.sleep(2.0)
    s.kill()
    w.join()
    assert not w.errors, w.errors
    n = len(w.acked)
    assert n > 50, n
    s.start()
    lost = verify_acked(s, w.acked)
    assert not lost, "%d of %d acknowledged writes lost, e.g. %r" % (
        len(lost), n, lost[:5])


def test_sigterm_finishes_inflight_pipeline(server_factory):
    """A client that already sent a pipeline gets all its replies (or the
    writes it got OK for are durable) when SIGTERM arrives."""
    s = server_factory(args=["--sync", "always"])
    sock = socket.create_connection(("127.0.0.1", s.port))
    n = 2000
    payload = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\np%d\r\n$1\r\nv\r\n" % (
        len(str(i)) + 1, i) for i in range(n))
    sock.sendall(payload)
    os.kill(s.pid, signal.SIGTERM)
    data = b""
    sock.settimeout(30)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert s.wait_exit(timeout=60) == 0
    acked = data.count(b"+OK\r\n")
    s.start()
    c = s.client()
    try:
        got = c.mget(["p%d" % i for i in range(acked)])
        assert all(v == b"v" for v in got), "acknowledged writes lost"
    finally:
        c.close()


# --- single-instance guards (ringkv only) --------------------------------------

def run_second(args, timeout=15):
    t0 = time.time()
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    try:
        p = subprocess.run([os.path.join(BUILD, "ringkvd")] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("second ringkvd did not exit within %ds" % timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace"), time.time() - t0


def error_lines(text):
    return [l for l in text.splitlines()
            if l.strip() and ("err" in l.lower() or "fatal" in l.lower()
                              or "fail" in l.lower())]


@pytest.mark.ringkv_only
def test_second_instance_same_data_dir_fails(server_factory):
    s = server_factory()
    c = s.client()
    c.set("k", "v")
    rc, out, err, took = run_second(
        ["--port", str(free_port()), "--bind", "127.0.0.1", "--data-dir",
         s.data_dir])
    assert rc != 0
    assert took < 5, "took %.1fs to fail" % took
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert s.data_dir in lines[0] or "lock" in lines[0].lower(), lines
    assert c.get("k") == b"v"  # the first one is unharmed
    c.close()


@pytest.mark.ringkv_only
def test_second_instance_same_port_fails(server_factory, tmp_path):
    s = server_factory()
    rc, out, err, took = run_second(
        ["--port", str(s.port), "--bind", "127.0.0.1", "--data-dir",
         str(tmp_path / "other-data")])
    assert rc != 0
    assert took < 5, "took %.1fs to fail" % took
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert str(s.port) in lines[0] or "in use" in lines[0].lower(), lines
    assert s.client().ping()


@pytest.mark.ringkv_only
def test_data_files_are_private(server_factory):
    s = server_factory(args=["--sync", "always"])
    c = s.client()
    c.set("k", "v")
    c.close()
    s.stop()
    found = 0
    for root, dirs, files in os.walk(s.data_dir):
        for f in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode)
            assert mode & 0o077 == 0, "%s has mode %o" % (f, mode)
            found += 1
    assert found > 0, "no data files in %s" % s.data_dir


@pytest.mark.ringkv_only
def test_memory_engine_forgets_on_restart(server_factory):
    s = server_factory(args=["--engine", "memory"])
    c = s.client()
    c.set("k", "v", ex=100)
    assert c.get("k") == b"v" and c.ttl("k") > 90
    c.close()
    assert s.stop() == 0
    s.start()
    c = s.client()
    assert c.dbsize() == 0
    c.close()


@pytest.mark.ringkv_only
@pytest.mark.parametrize("sync", ["none", "every:100"])
def test_sync_modes_keep_data_on_graceful_restart(server_factory, sync):
    s = server_factory(args=["--sync", sync])
    c = s.client()
    c.mset({"a%d" % i: i for i in range(100)})
    c.close()
    assert s.stop() == 0
    s.start()
    c = s.client()
    assert c.dbsize() == 100
    c.close()


def test_sigterm_with_idle_and_stalled_clients_exits_promptly(server_factory):
    """Idle clients, a client inside MULTI and a client stalled halfway
    through a frame must not keep a SIGTERMed server alive."""
    from rawresp import RawClient
    s = server_factory(args=["--sync", "always"])
    conns = [RawClient(s.port) for _ in range(50)]
    try:
        conns[0].call("SET", "k", "v")
        conns[1].call("MULTI")
        conns[1].call("SET", "in-multi", "x")
        conns[2].send(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$100\r\nabc")
        conns[3].send(b"*2\r\n$4\r\nECHO\r\n$536870912\r\n")
        t0 = time.time()
        os.kill(s.pid, signal.SIGTERM)
        rc = s.wait_exit(timeout=20)
        took = time.time() - t0
        assert rc == 0
        assert took < 10, "SIGTERM took %.1fs with idle clients" % took
    finally:
        for c in conns:
            c.close()
    s.start()
    c = s.client()
    try:
        assert c.get("k") == b"v"
        assert c.exists("in-multi", "x") == 0  # never committed
    finally:
        c.close()


def test_shutdown_command(server_factory):
    s = server_factory(args=["--sync", "every:1000"])
    from rawresp import RawClient
    with RawClient(s.port) as c:
        c.call("SET", "k", "v")
        c.send(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        assert c.expect_closed(timeout=10)  # no reply on success
    assert s.wait_exit(timeout=20) == 0
    s.start()
    c = s.client()
    try:
        assert c.get("k") == b"v"
    finally:
        c.close()

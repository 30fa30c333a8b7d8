"""Regression tests for defects found by the server review of 2026-11-25
(each test names the defect it guards)."""
import os
import resource
import socket
import subprocess
import time

import pytest

from conftest import TARGET, free_port
from rawresp import RawClient

pytestmark = pytest.mark.ringkv_only


def is_ringkv():
    return TARGET == "ringkv"


@pytest.fixture(autouse=True)
def _only_ringkv():
    if not is_ringkv():
        pytest.skip("ringkvd-specific regression")


def test_incrbyfloat_huge_result_does_not_overflow(server, raw):
    """Review #1: INCRBYFLOAT f 1e50 overflowed a 64-byte stack buffer."""
    v = raw.call("INCRBYFLOAT", "f", "1e50")
    assert isinstance(v, bytes) and float(v) == pytest.approx(1e50)
    assert raw.call("INCRBYFLOAT", "f", "1") is not None
    long_value = "1" + "0" * 100
    assert raw.call("SET", "g", long_value) == "OK"
    assert float(raw.call("INCRBYFLOAT", "g", "1")) == pytest.approx(1e100)
    assert raw.call("PING") == "PONG"


def test_shutdown_after_held_write_exits_cleanly(server_factory):
    """Review #2: SHUTDOWN while the caller's own write waited for its
    fsync freed the client inside the handler (use-after-free)."""
    s = server_factory(args=["--sync", "always"])
    for _ in range(3):
        c = RawClient(s.port)
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
               b"*1\r\n$8\r\nSHUTDOWN\r\n")
        # reset the connection at once, as the review's reproduction did
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.sock.close()
        assert s.wait_exit(15) == 0
        assert "AddressSanitizer" not in s.logs()
        s.start()
    assert s.client().get("k") == b"v"


def test_config_equals_form_is_loaded(server_factory, tmp_path):
    """Review #3: --config=FILE was silently ignored."""
    port = free_port()
    cfg = tmp_path / "ringkvd.ini"
    cfg.write_text("port = %d\nrequirepass = secret\n" % port)
    s = server_factory(args=["--config=%s" % cfg], start=False)
    # flags given by the fixture (--port) win; check requirepass applied
    s.start()
    c = RawClient(s.port)
    assert c.call("GET", "x").startswith("NOAUTH")
    assert c.call("AUTH", "secret") == "OK"


def test_config_set_hz_rearms_the_tick(server, raw):
    """Review #4: CONFIG SET hz changed nothing."""
    assert raw.call("CONFIG", "SET", "hz", "100") == "OK"
    assert raw.call("SET", "t", "v", "PX", "30") == "OK"
    time.sleep(0.3)
    # the active cycle (not a lazy read) removed it
    info = raw.call("INFO", "stats")
    text = info.decode() if isinstance(info, bytes) else str(info)
    assert "expired_keys:1" in text, text


def test_accept_emfile_does_not_spin(server_factory):
    """Review #6: with fewer fds than clients, accept errors spun the loop
    and flooded the log."""
    s = server_factory(args=["--maxclients", "10000"], start=False)
    old = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    s.preexec = lower
    s.start()
    conns = []
    try:
        for _ in range(80):
            try:
                conns.append(socket.create_connection(("127.0.0.1", s.port),
                                                      timeout=2))
            except OSError:
                break
        time.sleep(1.5)
    finally:
        for c in conns:
            c.close()
    time.sleep(0.5)
    assert s.client().ping()
    n = s.logs().count("event=accept_error")
    assert n < 20, "%d accept_error lines" % n
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == old


def test_streaming_writer_gets_replies_before_it_stops(server_factory):
    """Review #7: under sync=always a client streaming writes got no reply
    until it stopped (all replies held behind the newest write)."""
    s = server_factory(args=["--sync", "always"])
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.setblocking(False)
    frame = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$1\r\nv\r\n" * 200
    first_reply = None
    t0 = time.time()
    got = 0
    while time.time() - t0 < 3.0:
        try:
            sock.send(frame)
        except BlockingIOError:
            pass
        try:
            data = sock.recv(1 << 20)
            if data and first_reply is None:
                first_reply = time.time() - t0
            got += data.count(b"+OK")
        except BlockingIOError:
            pass
        time.sleep(0.002)
    sock.close()
    assert first_reply is not None and first_reply < 1.5, first_reply
    assert got > 0


def test_save_and_shutdown_refused_inside_multi(raw):
    """Review: SAVE/SHUTDOWN ran immediately inside MULTI."""
    assert raw.call("MULTI") == "OK"
    assert raw.call("SAVE") == \
        "ERR Command not allowed inside a transaction"
    assert raw.call("SHUTDOWN") == \
        "ERR Command not allowed inside a transaction"
    assert raw.call("EXEC").startswith("EXECABORT")
    assert raw.call("PING") == "PONG"


def test_expiretime_rounds_like_redis(raw):
    """Review: EXPIRETIME truncated instead of rounding."""
    assert raw.call("SET", "e", "v") == "OK"
    assert raw.call("PEXPIREAT", "e", "1999999999999") == 1
    assert raw.call("EXPIRETIME", "e") == 2000000000


def test_oversized_key_refused_before_any_write(raw):
    """Review: MSET with a key over 64 KiB wrote the pairs before it."""
    big = "k" * 70000
    r = raw.call("MSET", "m1", "1", big, "2")
    assert isinstance(r, str) and r.startswith("ERR invalid key")
    assert raw.call("EXISTS", "m1") == 0

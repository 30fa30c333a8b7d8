"""Protocol-level tests on raw sockets: inline commands, pipelining,
partial frames, malformed frames, memory bombs, and the pre-auth limits and
AUTH behaviour of TESTING.md B6.
"""
import socket
import threading
import time

import pytest

import rawresp
from conftest import AUTH_PASSWORD, is_ringkv, rss_kb
from rawresp import RawClient, encode

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


def read_all(c, timeout=2.0, total=30.0):
    """Reads until EOF, `timeout` of silence or `total` seconds; returns
    (bytes, closed)."""
    c.sock.settimeout(timeout)
    out = bytearray(c.pending())
    c.buf, c.pos = bytearray(), 0
    deadline = time.time() + total
    try:
        while time.time() < deadline:
            chunk = c.sock.recv(1 << 16)
            if not chunk:
                return bytes(out), True
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        return bytes(out), True
    except socket.timeout:
        return bytes(out), False
    return bytes(out), False


# --- inline commands -----------------------------------------------------------

def test_inline_commands(raw):
    raw.send(b"PING\r\n")
    assert raw.read_reply() == "PONG"
    raw.send(b"SET k v\r\nGET k\r\n")
    assert raw.read_reply() == "OK"
    assert raw.read_reply() == b"v"
    raw.send(b"PING\n")  # a bare LF ends an inline command too
    assert raw.read_reply() == "PONG"
    raw.send(b"\r\n\r\nECHO hello\r\n")  # empty lines are skipped
    assert raw.read_reply() == b"hello"
    raw.send(b"  SET   spaced    value  \r\n")
    assert raw.read_reply() == "OK"
    assert raw.call("GET", "spaced") == b"value"


def test_inline_quoting(raw):
    raw.send(b'SET "a b" "c d"\r\n')
    assert raw.read_reply() == "OK"
    assert raw.call("GET", "a b") == b"c d"
    raw.send(b"ECHO 'x\\'y'\r\n")
    assert raw.read_reply() == b"x'y"
    raw.send(b'ECHO "\\x41\\n\\t\\\\"\r\n')
    assert raw.read_reply() == b"A\n\t\\"
    raw.send(b'ECHO ""\r\n')
    assert raw.read_reply() == b""


def test_inline_unbalanced_quotes(server, raw, raw_factory):
    other = raw_factory()
    raw.send(b'SET "a\r\n')
    data, closed = read_all(raw)
    assert data == b"-ERR Protocol error: unbalanced quotes in request\r\n"
    assert closed
    assert other.call("PING") == "PONG"


def test_inline_mixed_with_multibulk(raw):
    raw.send(b"PING\r\n" + encode("ECHO", "x") + b"ECHO y\r\n")
    assert [raw.read_reply() for _ in range(3)] == ["PONG", b"x", b"y"]


# --- pipelining ------------------------------------------------------------------

def test_pipeline_10000_commands_one_write(raw):
    n = 10000
    parts = []
    for i in range(n):
        if i % 3 == 0:
            parts.append(encode("SET", "k%d" % i, "v%d" % i))
        elif i % 3 == 1:
            parts.append(encode("GET", "k%d" % (i - 1)))
        else:
            parts.append(encode("INCR", "counter"))
    payload = b"".join(parts)
    sender = threading.Thread(target=raw.send, args=(payload,))
    sender.start()
    raw.settimeout(60)
    incr = 0
    for i in range(n):
        reply = raw.read_reply()
        if i % 3 == 0:
            assert reply == "OK", (i, reply)
        elif i % 3 == 1:
            assert reply == ("v%d" % (i - 1)).encode(), (i, reply)
        else:
            incr += 1
            assert reply == incr, (i, reply)
    sender.join()
    assert raw.call("DBSIZE") == (n + 2) // 3 + 1
    assert raw.pending() == b""


def test_pipeline_inline_10000(raw):
    payload = b"PING\r\n" * 10000
    sender = threading.Thread(target=raw.send, args=(payload,))
    sender.start()
    raw.settimeout(60)
    for _ in range(10000):
        assert raw.read_reply() == "PONG"
    sender.join()


# --- partial frames ------------------------------------------------------------------

def test_partial_frame_byte_by_byte(raw):
    value = bytes(range(256))
    frame = encode("SET", b"bin\r\nkey", value) + encode("GET", b"bin\r\nkey")
    raw.send_slowly(frame, delay=0.001)
    assert raw.read_reply() == "OK"
    assert raw.read_reply() == value


def test_partial_frame_every_split(raw):
    frame = encode("SET", "k", "hello\r\nworld") + b"PING\r\n" + \
        encode("ECHO", "")
    for i in range(1, len(frame)):
        raw.send(frame[:i])
        time.sleep(0.004)
        raw.send(frame[i:])
        assert raw.read_reply() == "OK", i
        assert raw.read_reply() == "PONG", i
        assert raw.read_reply() == b"", i


def test_partial_large_bulk_slow(raw):
    value = b"x" * 300000
    frame = encode("SET", "big", value)
    raw.send_slowly(frame, chunk=7919, delay=0.001)
    assert raw.read_reply() == "OK"
    assert raw.call("STRLEN", "big") == 300000


# --- malformed frames ---------------------------------------------------------------

MALFORMED = [
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*\r\n", "invalid multibulk length"),
    (b"*2147483648\r\n", "invalid multibulk length"),
    (b"*1\r\nfoo\r\n", "expected '$', got 'f'"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n$abc\r\n", "invalid bulk length"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$-5\r\n", "invalid bulk length"),
    (b"*1\r\n$\r\n", "invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "invalid bulk length"),
    (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
    (b'ECHO "abc\r\n', "unbalanced quotes in request"),
    (b"ECHO 'abc\r\n", "unbalanced quotes in request"),
    (b'ECHO "a"b\r\n', "unbalanced quotes in request"),
]


@pytest.mark.parametrize("frame,detail", MALFORMED,
                         ids=[repr(f)[2:30] for f, _ in MALFORMED])
def test_malformed_frame_closes_only_that_connection(raw_factory, frame,
                                                     detail):
    other = raw_factory()
    other.call("SET", "k", "v")
    bad = raw_factory()
    bad.send(encode("PING") + frame)
    data, closed = read_all(bad, timeout=5)
    assert data.startswith(b"+PONG\r\n-ERR Protocol error: "), data
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 2, data
    assert closed, "connection left open after a protocol error"
    assert other.call("GET", "k") == b"v"
    assert raw_factory().call("PING") == "PONG"


@pytest.mark.parametrize("frame,detail", MALFORMED,
                         ids=[repr(f)[2:30] for f, _ in MALFORMED])
def test_protocol_error_texts_match_redis(raw_factory, frame, detail):
    bad = raw_factory()
    bad.send(frame)
    data, closed = read_all(bad, timeout=5)
    assert data == b"-ERR Protocol error: " + detail.encode() + b"\r\n"


def test_too_big_inline_request(raw_factory):
    """An inline request with no newline in 64 KiB is refused (Redis's
    PROTO_INLINE_MAX_SIZE); the query buffer does not grow without bound."""
    other = raw_factory()
    bad = raw_factory()
    try:
        bad.send(b"x" * (256 * 1024))
    except (ConnectionResetError, BrokenPipeError):
        pass
    data, closed = read_all(bad, timeout=5)
    assert data.startswith(b"-ERR Protocol error: "), data[:100]
    assert closed
    assert other.call("PING") == "PONG"


@pytest.mark.ringkv_only
def test_multibulk_argument_limit(raw_factory):
    """ringkv caps a command at 1,048,576 arguments (Redis 7.0 allows up to
    INT_MAX); one more is a protocol error."""
    bad = raw_factory()
    bad.send(b"*1048577\r\n")
    data, closed = read_all(bad, timeout=5)
    assert data == b"-ERR Protocol error: invalid multibulk length\r\n"
    assert closed
    ok = raw_factory()
    ok.send(b"*1048576\r\n")
    data, closed = read_all(ok, timeout=1)
    assert data == b"" and not closed  # waits for the arguments


def test_non_array_resp_types_are_inline(raw):
    """Like Redis, a frame not starting with '*' is an inline command."""
    raw.send(b"+PING\r\n")
    assert raw.read_reply() == \
        "ERR unknown command '+PING', with args beginning with: "
    assert raw.call("PING") == "PONG"


def test_empty_and_negative_multibulk_are_ignored(raw):
    raw.send(b"*0\r\n*-1\r\nPING\r\n")
    assert raw.read_reply() == "PONG"
    assert raw.pending() == b""


def test_large_multibulk_many_args(raw):
    n = 100000
    args = ["MSET"]
    for i in range(n // 2):
        args += ["k%d" % i, "v"]
    payload = encode(*args)
    sender = threading.Thread(target=raw.send, args=(payload,))
    sender.start()
    raw.settimeout(60)
    assert raw.read_reply() == "OK"
    sender.join()
    assert raw.call("DBSIZE") == n // 2


# --- memory bombs -------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(180)
def test_declared_huge_frames_do_not_allocate(server, raw_factory):
    """`*2147483647` / `$536870912` followed by a stall must not allocate
    up front (TESTING.md B6: < 1 MiB RSS per connection)."""
    import resource
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * n), hard))
    warm = raw_factory()
    warm.call("SET", "warm", "x")
    time.sleep(0.2)
    base = rss_kb(server.pid)
    bombs = [b"*2147483647\r\n$536870912\r\n",
             b"*1\r\n$536870912\r\n",
             b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabcdef",
             b"*1048576\r\n"]
    conns = []
    for i in range(n):
        c = RawClient(server.port)
        c.send(bombs[i % len(bombs)])
        conns.append(c)
    try:
        time.sleep(1.0)
        assert warm.call("GET", "warm") == b"x"
        grown = rss_kb(server.pid) - base
        assert grown < n * 1024, "RSS grew by %d KiB for %d stalled " \
            "connections" % (grown, n)
        # and in absolute terms, far below what the declared sizes imply
        assert grown < 512 * 1024, grown
    finally:
        for c in conns:
            c.close()
    time.sleep(0.3)
    assert warm.call("PING") == "PONG"


# --- AUTH and pre-auth limits (TESTING.md B6) ------------------------------------

ALL_COMMANDS = [
    ("PING",), ("ECHO", "x"), ("SELECT", "0"), ("CLIENT", "ID"),
    ("CLIENT", "SETNAME", "x"), ("CLIENT", "GETNAME"), ("COMMAND", "COUNT"),
    ("COMMAND", "DOCS", "get"), ("COMMAND", "INFO", "get"), ("INFO",),
    ("DBSIZE",), ("CONFIG", "GET", "maxclients"), ("GET", "k"),
    ("SET", "k", "v"), ("SETNX", "k", "v"), ("GETDEL", "k"),
    ("GETEX", "k"), ("DEL", "k"), ("UNLINK", "k"), ("EXISTS", "k"),
    ("MGET", "k"), ("MSET", "k", "v"), ("MSETNX", "k", "v"),
    ("STRLEN", "k"), ("APPEND", "k", "v"), ("INCR", "k"), ("DECR", "k"),
    ("INCRBY", "k", "1"), ("DECRBY", "k", "1"), ("EXPIRE", "k", "1"),
    ("PEXPIRE", "k", "1"), ("EXPIREAT", "k", "1"), ("TTL", "k"),
    ("PTTL", "k"), ("PERSIST", "k"), ("TYPE", "k"), ("SCAN", "0"),
    ("FLUSHALL",), ("MULTI",), ("EXEC",), ("DISCARD",),
]
if is_ringkv():  # CLIENT SETINFO is Redis 7.2; 7.0 says unknown subcommand
    ALL_COMMANDS.append(("CLIENT", "SETINFO", "lib-name", "x"))


def test_noauth_for_every_command(auth_server):
    with RawClient(auth_server.port) as c:
        for cmd in ALL_COMMANDS:
            reply = c.call(*cmd)
            if cmd == ("EXEC",):
                # Redis 7.0 wraps it: "EXECABORT Transaction discarded
                # because of: NOAUTH Authentication required."
                assert c.last_type == b"-" and reply.endswith(NOAUTH), reply
                continue
            assert c.last_type == b"-" and reply == NOAUTH, (cmd, reply)
        reply = c.call("HELLO", "3")
        assert c.last_type == b"-" and reply.startswith("NOAUTH "), reply
        reply = c.call("HELLO")
        assert c.last_type == b"-" and reply.startswith("NOAUTH "), reply
        # inline too
        c.send(b"GET k\r\n")
        assert c.read_reply() == NOAUTH
        assert c.call("AUTH", AUTH_PASSWORD) == "OK"
        assert c.call("GET", "k") is None
        assert c.call("QUIT") == "OK"
        assert c.expect_closed()


def test_unknown_or_bad_arity_before_auth(auth_server):
    """Redis 7.0 checks the command name and arity before AUTH; answering
    NOAUTH instead is accepted too (it reveals less)."""
    with RawClient(auth_server.port) as c:
        reply = c.call("NOSUCHCOMMAND", "a")
        assert c.last_type == b"-"
        assert reply in (NOAUTH, "ERR unknown command 'NOSUCHCOMMAND', with "
                         "args beginning with: 'a' ")
        reply = c.call("GET")
        assert reply in (NOAUTH, "ERR wrong number of arguments for 'get' "
                         "command")
        assert c.call("GET", "k") == NOAUTH


def test_quit_before_auth(auth_server):
    with RawClient(auth_server.port) as c:
        assert c.call("QUIT") == "OK"
        assert c.expect_closed()


def test_auth_wrong_and_right(auth_server):
    with RawClient(auth_server.port) as c:
        assert c.call("AUTH", "wrong") == WRONGPASS and c.last_type == b"-"
        assert c.call("AUTH", "default", "wrong") == WRONGPASS
        assert c.call("AUTH", "nobody", AUTH_PASSWORD) == WRONGPASS
        assert c.call("AUTH", AUTH_PASSWORD + "x") == WRONGPASS
        assert c.call("AUTH", AUTH_PASSWORD[:-1]) == WRONGPASS
        assert c.call("AUTH", "") == WRONGPASS
        assert c.call("GET", "k") == NOAUTH
        assert c.call("AUTH", "a", "b", "c") == "ERR syntax error"
        assert c.call("AUTH") == \
            "ERR wrong number of arguments for 'auth' command"
        assert c.call("AUTH", AUTH_PASSWORD) == "OK"
        assert c.call("SET", "k", "v") == "OK"
        assert c.call("AUTH", "default", AUTH_PASSWORD) == "OK"
        # a later wrong AUTH does not log the connection out (Redis 7)
        assert c.call("AUTH", "wrong") == WRONGPASS
        assert c.call("GET", "k") == b"v"


def test_auth_redis_py(auth_server):
    import redis
    c = auth_server.client()
    with pytest.raises(redis.AuthenticationError):
        c.get("k")
    c.close()
    c = auth_server.client(password="bad")
    with pytest.raises((redis.AuthenticationError, redis.ResponseError),
                       match="WRONGPASS|invalid username-password"):
        c.ping()
    c.close()
    c = auth_server.client(password=AUTH_PASSWORD)
    assert c.set("k", "v") and c.get("k") == b"v"
    c.close()


def test_pre_auth_multibulk_limit(auth_server):
    ok = RawClient(auth_server.port)
    try:
        with RawClient(auth_server.port) as c:
            c.send(b"*11\r\n")
            data, closed = read_all(c, timeout=5)
            assert closed and data.startswith(b"-ERR Protocol error: "), data
            assert data == \
                b"-ERR Protocol error: unauthenticated multibulk length\r\n"
        with RawClient(auth_server.port) as c:
            c.send(b"*10\r\n")
            data, closed = read_all(c, timeout=0.5)
            assert data == b"" and not closed
        assert ok.call("AUTH", AUTH_PASSWORD) == "OK"
        # after AUTH the limits are lifted
        args = ["MSET"] + ["k%d" % (i // 2) for i in range(40)]
        assert ok.call(*args) == "OK"
    finally:
        ok.close()


def test_pre_auth_bulk_limit(auth_server):
    texts = []
    for frame in (b"*1\r\n$16385\r\n",
                  # the password argument of AUTH is limited too
                  b"*2\r\n$4\r\nAUTH\r\n$20000\r\n"):
        with RawClient(auth_server.port) as c:
            c.send(frame)
            data, closed = read_all(c, timeout=5)
            assert closed and data.startswith(b"-ERR Protocol error: "), data
            texts.append(data)
    with RawClient(auth_server.port) as c:
        c.send(encode("ECHO", "x" * 16384))
        assert c.read_reply() == NOAUTH
        assert c.call("AUTH", AUTH_PASSWORD) == "OK"
        big = b"y" * 100000
        assert c.call("SET", "big", big) == "OK"
        assert c.call("GET", "big") == big
    assert texts == [b"-ERR Protocol error: unauthenticated bulk length\r\n"
                     ] * 2


def test_pre_auth_output_buffer_limited(auth_server):
    """An unauthenticated client that never reads is disconnected instead
    of buffering its replies (CVE-2025-21605; ours: <= 64 KiB)."""
    c = RawClient(auth_server.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    n = 200000
    try:
        try:
            c.sock.settimeout(10)
            c.send(b"PING\r\n" * n)
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
        time.sleep(0.5)
        data, closed = read_all(c, timeout=5, total=10)
        assert closed, "unauthenticated client with a full output buffer " \
            "was not disconnected"
        assert len(data) < n * len(NOAUTH)
    finally:
        c.close()
    with RawClient(auth_server.port) as ok:
        assert ok.call("AUTH", AUTH_PASSWORD) == "OK"


FLOOD_SCRIPT = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
bad = 0
end = time.monotonic() + 3.0
i = 0
while time.monotonic() < end:
    s.sendall(b"*2\r\n$4\r\nAUTH\r\n$9\r\nwrong%04d\r\n" % (i % 10000))
    i += 1
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        got = s.recv(65536)
    except socket.timeout:
        break
    bad += got.count(b"-WRONGPASS")
print("wrongpass", bad, flush=True)
"""


@pytest.mark.slow
def test_bad_auth_flood_does_not_hurt_others(auth_server):
    """3 s of bad AUTHs on one connection, as fast as the server answers,
    must not more than double other clients' p99 (TESTING.md B6; with a
    2 ms floor against timer noise), and since issue 15 the flood itself
    is slowed down (auth_guard.h: a handful of answers in 3 s instead of
    thousands).  The flood runs in its own process so the GIL does not
    skew timings."""
    import subprocess
    import sys
    good = RawClient(auth_server.port)
    good.call("AUTH", AUTH_PASSWORD)

    def p99(samples):
        samples = sorted(samples)
        return samples[max(0, int(len(samples) * 0.99) - 1)]

    def ping():
        t0 = time.perf_counter()
        assert good.call("PING") == "PONG"
        return time.perf_counter() - t0

    for _ in range(50):
        ping()
    results = []
    for attempt in range(3):  # scheduler noise on shared cores: retry
        base = p99([ping() for _ in range(300)])
        flood = subprocess.Popen([sys.executable, "-c", FLOOD_SCRIPT,
                                  str(auth_server.port)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert flood.stdout.readline().strip() == "ready"
            during = []
            while flood.poll() is None or len(during) < 300:
                during.append(ping())
            out = flood.stdout.read()
        finally:
            if flood.poll() is None:
                flood.kill()
            flood.wait()
        n_bad = int(out.split()[1])
        # 3 free, then 100 ms doubling (a later attempt starts where the
        # IP's streak stands)
        assert n_bad <= 12 and (attempt > 0 or n_bad >= 3), out
        results.append((base, p99(during)))
        if p99(during) <= 2 * max(base, 0.002):
            break
    else:
        pytest.fail("PING p99 more than doubled during a bad AUTH flood in "
                    "3 attempts: (base, during) = %r" % results)
    good.close()


# --- QUIT, idle timeout, slowloris ----------------------------------------------

def test_quit_in_pipeline_stops_processing(raw, raw_factory):
    raw.send(b"PING\r\n" + encode("SET", "a", "1") + b"QUIT\r\n" +
             encode("SET", "b", "2") + b"PING\r\n")
    data, closed = read_all(raw, timeout=5)
    assert data == b"+PONG\r\n+OK\r\n+OK\r\n"
    assert closed
    other = raw_factory()
    assert other.call("EXISTS", "a") == 1
    assert other.call("EXISTS", "b") == 0  # nothing after QUIT ran


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_slowloris_closed_by_idle_timeout(server_factory):
    """2,000 connections that each sent one byte are closed by the idle
    timeout (--timeout 1), while PING p99 of an active client stays low
    (TESTING.md B6: < 10 ms; 50 ms here for ASan on 2 shared cores)."""
    import resource
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * n), hard))
    s = server_factory(args=["--timeout", "1"])
    slow = []
    active = None
    open_ = set()

    def count_open():
        for i in list(open_):
            sock = slow[i].sock
            try:
                if sock.recv(1024) == b"":
                    open_.discard(i)
            except ConnectionResetError:
                open_.discard(i)
            except BlockingIOError:
                pass
        return len(open_)

    try:
        for i in range(n):
            c = RawClient(s.port)
            c.send(b"*" if i % 2 else b"P")
            c.sock.setblocking(False)
            slow.append(c)
            open_.add(i)
        # the active client connects last and never idles for 1 s
        active = RawClient(s.port)
        lat = []
        deadline = time.time() + 15.0
        next_check = 0
        remaining = n
        while time.time() < deadline:
            t0 = time.perf_counter()
            assert active.call("PING") == "PONG"
            lat.append(time.perf_counter() - t0)
            time.sleep(0.005)
            if time.time() >= next_check:
                remaining = count_open()
                if remaining == 0 and len(lat) >= 200:
                    break
                next_check = time.time() + 0.5
        assert remaining == 0, "%d of %d idle connections still open " \
            "after 15 s with --timeout 1" % (remaining, n)
        lat.sort()
        p99 = lat[int(len(lat) * 0.99) - 1]
        # B6 wants < 10 ms; 50 ms leaves room for ASan on 2 shared cores
        # while still catching a loop blocked by slow clients
        assert p99 < 0.050, "PING p99 %.1f ms under slowloris" % (p99 * 1e3)
        assert active.call("PING") == "PONG"  # the busy client survived
    finally:
        if active is not None:
            active.close()
        for c in slow:
            c.close()


def test_idle_timeout_zero_keeps_connections(server):
    with RawClient(server.port) as c:
        time.sleep(2.5)
        assert c.call("PING") == "PONG"


# --- configurable limits ----------------------------------------------------------

def test_proto_max_bulk_len(server_factory):
    s = server_factory(args=["--proto-max-bulk-len", "2mb"])
    with RawClient(s.port) as ok:
        v = b"v" * (2 << 20)
        assert ok.call("SET", "k", v) == "OK"  # exactly the limit
        assert ok.call("STRLEN", "k") == 2 << 20
    with RawClient(s.port) as c:
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % ((2 << 20) + 1))
        data, closed = read_all(c, timeout=5)
        assert data == b"-ERR Protocol error: invalid bulk length\r\n"
        assert closed


def test_client_query_buffer_limit(server_factory):
    """A single argument bigger than the query buffer limit closes the
    connection (Redis sends no reply; an -ERR first is accepted)."""
    s = server_factory(args=["--client-query-buffer-limit", "1mb"])
    with RawClient(s.port) as c:
        try:
            c.send(encode("SET", "k", b"x" * (3 << 20)))
        except (ConnectionResetError, BrokenPipeError):
            pass
        data, closed = read_all(c, timeout=5)
        assert closed
        assert data == b"" or data.startswith(b"-ERR "), data[:200]
    # many small pipelined commands are consumed as they go: no limit hit
    with RawClient(s.port) as c:
        payload = b"".join(encode("SET", "k%d" % i, b"x" * 1000)
                           for i in range(3000))
        sender = threading.Thread(target=c.send, args=(payload,))
        sender.start()
        for i in range(3000):
            assert c.read_reply() == "OK"
        sender.join()
        assert c.call("DBSIZE") == 3000


# Multibulk counts at the edges, answered byte for byte as redis-server 7
# answers them (issue 17 item 4; recorded against redis-server 7.0.15).
# The error cases close the connection after the error, as Redis does.
MULTIBULK_EDGES = [
    (b"*-10\r\nPING\r\n", b"+PONG\r\n"),
    (b"*-1\r\nPING\r\n", b"+PONG\r\n"),
    (b"*0\r\nPING\r\n", b"+PONG\r\n"),
    (b"*1\r\n$4\r\nPING\r\n*-99999999999\r\nPING\r\n", b"+PONG\r\n+PONG\r\n"),
    (b"*-0\r\nPING\r\n",
     b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$-1\r\nPING\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*-99999999999999999999\r\nPING\r\n",
     b"-ERR Protocol error: invalid multibulk length\r\n"),
]


@pytest.mark.parametrize("sent,want", MULTIBULK_EDGES)
def test_multibulk_count_edges_match_redis(server, sent, want):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.settimeout(2.0)
    try:
        s.sendall(sent)
        got = b""
        while len(got) < len(want):
            d = s.recv(4096)
            if not d:
                break
            got += d
        assert got == want
    finally:
        s.close()

"""Load and real-client tests: 1,000 concurrent connections, values of
0 B / 1 B / 1 MB / 64 MB with every byte value, redis-benchmark, and
redis-cli in command mode and interactive mode (pty and tmux).
"""
import os
import pty
import re
import resource
import select
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import is_ringkv, rss_kb
from rawresp import RawClient, encode


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- 1,000 concurrent connections ------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(180)
def test_1000_concurrent_connections(server, r):
    n = 1000
    if raise_nofile(n + 256) < n + 64:
        pytest.skip("cannot raise RLIMIT_NOFILE to %d" % (n + 256))
    conns = []
    try:
        for i in range(n):
            conns.append(RawClient(server.port, timeout=60))
        # all connections are open at once; each does a SET then a GET
        for i, c in enumerate(conns):
            c.send(encode("SET", "conn:%d" % i, "value-%d" % i))
        for i, c in enumerate(conns):
            assert c.read_reply() == "OK", i
        assert r.info("clients")["connected_clients"] >= n
        for i, c in enumerate(conns):
            c.send(encode("GET", "conn:%d" % i))
        for i, c in enumerate(conns):
            assert c.read_reply() == ("value-%d" % i).encode(), i
        # interleaved: everyone INCRs a shared counter
        for c in conns:
            c.send(encode("INCR", "shared"))
        got = sorted(c.read_reply() for c in conns)
        assert got == list(range(1, n + 1))
    finally:
        for c in conns:
            c.close()
    assert r.dbsize() == n + 1
    deadline = time.time() + 10
    while time.time() < deadline and \
            r.info("clients")["connected_clients"] > 5:
        time.sleep(0.1)
    assert r.info("clients")["connected_clients"] <= 5


# --- values with every byte value ---------------------------------------------

def pattern(size):
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


@pytest.mark.parametrize("size", [0, 1, 1 << 20],
                         ids=["0B", "1B", "1MB"])
def test_value_sizes(r, size):
    val = pattern(size) if size != 1 else b"\x00"
    key = b"val\x00\xff%d" % size
    assert r.set(key, val)
    assert r.get(key) == val
    assert r.strlen(key) == size
    assert r.getdel(key) == val
    # every single byte value as a 1-byte value
    if size == 1:
        pipe = r.pipeline(transaction=False)
        for b in range(256):
            pipe.set(b"one:%d" % b, bytes([b]))
        pipe.execute()
        pipe = r.pipeline(transaction=False)
        for b in range(256):
            pipe.get(b"one:%d" % b)
        assert pipe.execute() == [bytes([b]) for b in range(256)]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_value_64mb(server, r):
    size = 64 << 20
    val = pattern(size)
    assert r.set("big", val)
    assert r.strlen("big") == size
    got = r.get("big")
    assert len(got) == size and got == val
    del got
    # through the raw client too, and appended to
    with RawClient(server.port, timeout=120) as c:
        assert c.call("APPEND", "big", b"\xff\x00") == size + 2
        got = c.call("GET", "big")
        assert got[:size] == val and got[size:] == b"\xff\x00"
    assert r.delete("big") == 1


def test_value_sizes_survive_restart(server, r):
    vals = {b"v0": b"", b"v1": b"\xff", b"v1m": pattern(1 << 20)}
    for k, v in vals.items():
        r.set(k, v)
    r.close()
    server.restart()
    c = server.client()
    try:
        for k, v in vals.items():
            assert c.get(k) == v, k
    finally:
        c.close()


# --- redis-benchmark ------------------------------------------------------------

RESULT = re.compile(
    r"^(SET|GET|INCR|MSET \(10 keys\)): ([0-9.]+) requests per second")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("pipeline", [1, 16])
def test_redis_benchmark(server, pipeline):
    if shutil.which("redis-benchmark") is None:
        pytest.skip("redis-benchmark not installed (redis-tools)")
    p = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
         "-t", "set,get,incr,mset", "-n", "20000", "-q", "-P",
         str(pipeline)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=280)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, (p.returncode, out[-2000:], err[-2000:])
    # -q prints progress with \r and one result line per test
    lines = [l.strip() for l in re.split(r"[\r\n]+", out) if l.strip()]
    results = {}
    for l in lines:
        m = RESULT.match(l)
        if m:
            results[m.group(1)] = float(m.group(2))
    assert set(results) == {"SET", "GET", "INCR", "MSET (10 keys)"}, lines
    assert all(v > 0 for v in results.values()), results
    bad = [l for l in (lines + err.splitlines())
           if re.search(r"error|ERR |WRONGTYPE|NOAUTH|Could not|"
                        r"unexpected|reset", l, re.I)]
    assert not bad, bad
    c = server.client()
    try:
        assert c.get("key:__rand_int__") is not None
        assert int(c.get("counter:__rand_int__")) == 20000
    finally:
        c.close()


# --- redis-cli, command mode ------------------------------------------------------

def cli(server, *args, stdin=None):
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p",
                        str(server.port)] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_redis_cli_command_mode(server):
    assert cli(server, "ping") == (0, b"PONG\n", b"")
    assert cli(server, "set", "a b", "hello world") == (0, b"OK\n", b"")
    assert cli(server, "get", "a b") == (0, b"hello world\n", b"")
    assert cli(server, "--raw", "get", "a b") == (0, b"hello world\n", b"")
    assert cli(server, "--no-raw", "get", "a b") == \
        (0, b'"hello world"\n', b"")
    assert cli(server, "get", "nope") == (0, b"\n", b"")
    assert cli(server, "--no-raw", "get", "nope") == (0, b"(nil)\n", b"")
    assert cli(server, "incr", "n") == (0, b"1\n", b"")
    assert cli(server, "--no-raw", "incrby", "n", "41") == \
        (0, b"(integer) 42\n", b"")
    assert cli(server, "--no-raw", "mget", "a b", "nope") == \
        (0, b'1) "hello world"\n2) (nil)\n', b"")
    assert cli(server, "mget", "a b", "nope") == \
        (0, b"hello world\n\n", b"")
    # (redis-cli prints an extra blank line after an error reply)
    rc, out, _ = cli(server, "nosuch", "x")
    assert out.rstrip(b"\n") == b"ERR unknown command 'nosuch', with args " \
                                b"beginning with: 'x' "
    rc, out, _ = cli(server, "--no-raw", "get")
    assert out.rstrip(b"\n") == b"(error) ERR wrong number of arguments " \
                                b"for 'get' command"
    # binary value through stdin (-x), read back escaped
    assert cli(server, "-x", "set", "bin", stdin=b"a\x00\xff\r\nb") == \
        (0, b"OK\n", b"")
    assert cli(server, "--no-raw", "get", "bin") == \
        (0, b'"a\\x00\\xff\\r\\nb"\n', b"")
    assert cli(server, "--raw", "get", "bin") == (0, b"a\x00\xff\r\nb\n",
                                                  b"")
    rc, out, _ = cli(server, "--no-raw", "ttl", "bin")
    assert out == b"(integer) -1\n"
    rc, out, _ = cli(server, "dbsize")
    assert out == b"3\n"  # "a b", n, bin


def test_redis_cli_auth(server_factory):
    from conftest import AUTH_PASSWORD
    s = server_factory(args=["--requirepass", AUTH_PASSWORD])
    rc, out, err = cli(s, "get", "k")
    assert out.rstrip(b"\n") == b"NOAUTH Authentication required."
    rc, out, err = cli(s, "--no-auth-warning", "-a", AUTH_PASSWORD, "set",
                       "k", "v")
    assert (rc, out) == (0, b"OK\n")
    rc, out, err = cli(s, "--no-auth-warning", "-a", "wrong", "get", "k")
    assert b"WRONGPASS" in out + err


def test_redis_cli_pipe_mode(server):
    """redis-cli --pipe (mass insertion) sends raw RESP and checks the
    replies it gets back."""
    payload = b"".join(encode("SET", "p%d" % i, "v%d" % i)
                       for i in range(5000))
    rc, out, err = cli(server, "--pipe", stdin=payload)
    assert rc == 0, (out, err)
    assert b"errors: 0, replies: 5000" in out, out
    rc, out, _ = cli(server, "dbsize")
    assert out == b"5000\n"


# --- redis-cli, interactive mode --------------------------------------------------

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class PtyCli:
    """redis-cli on a pseudo-terminal with TERM=dumb (linenoise falls back
    to plain line input, output is redis-cli's tty format)."""

    def __init__(self, port, home):
        self.master, slave = pty.openpty()
        env = dict(os.environ, TERM="dumb", HOME=home)
        self.prompt = b"127.0.0.1:%d> " % port
        self.proc = subprocess.Popen(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port)], stdin=slave,
            stdout=slave, stderr=slave, env=env, close_fds=True,
            start_new_session=True)
        os.close(slave)

    def read_until(self, pattern, timeout=10):
        buf = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    break
                if not data:
                    break
                buf += data
                if re.search(pattern, ANSI.sub(b"", buf)):
                    return ANSI.sub(b"", buf)
        raise AssertionError("no %r in %r" % (pattern, buf))

    def command(self, line):
        os.write(self.master, line + b"\r")
        # the prompt reads "127.0.0.1:PORT(TX)> " inside MULTI
        out = self.read_until(re.escape(self.prompt[:-2]) + rb"(\(TX\))?> $")
        # strip the echoed command and the trailing prompt
        assert out.startswith(line + b"\r\n"), out
        out = out[len(line) + 2:]
        out = out[:out.rindex(self.prompt[:-2])]
        return out.replace(b"\r\n", b"\n")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_redis_cli_interactive_pty(server, tmp_path):
    c = PtyCli(server.port, str(tmp_path))
    try:
        c.read_until(re.escape(c.prompt))
        assert c.command(b"set k 1") == b"OK\n"
        assert c.command(b"get k") == b'"1"\n'
        assert c.command(b"incr k") == b"(integer) 2\n"
        assert c.command(b"get nope") == b"(nil)\n"
        assert c.command(b'set "a b" "x\\ty"') == b"OK\n"
        assert c.command(b'get "a b"') == b'"x\\ty"\n'
        assert c.command(b"mget k nope") == b'1) "2"\n2) (nil)\n'
        assert c.command(b"nosuch x") == \
            b"(error) ERR unknown command 'nosuch', with args beginning " \
            b"with: 'x' \n"
        assert c.command(b"ttl k") == b"(integer) -1\n"
        assert c.command(b"multi") == b"OK\n"
        assert c.command(b"set m 1") == b"QUEUED\n"
        assert c.command(b"exec") == b"1) OK\n"
        assert c.command(b"dbsize") == b"(integer) 3\n"
        os.write(c.master, b"quit\r")
        assert c.proc.wait(timeout=10) == 0
    finally:
        c.close()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not found")
def test_redis_cli_interactive_tmux(server, tmp_path):
    """redis-cli in a real terminal emulator (tmux, TERM=screen): line
    editing, hints and cursor queries all on."""
    sock = "ringkv-test-%s" % uuid.uuid4().hex[:8]
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("TMUX", None)
    subprocess.run(tmux + ["new-session", "-d", "-s", "t", "-x", "200",
                           "-y", "50", "redis-cli -h 127.0.0.1 -p %d" %
                           server.port], check=True, env=env, timeout=10)
    prompt = "127.0.0.1:%d>" % server.port  # capture-pane drops the space

    def screen():
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", "t"],
                              stdout=subprocess.PIPE, env=env,
                              timeout=10).stdout.decode("utf-8", "replace")

    def wait_for(text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = screen()
            if text in s:
                return s
            time.sleep(0.1)
        raise AssertionError("no %r on screen:\n%s" % (text, screen()))

    def run(line, expect):
        subprocess.run(tmux + ["send-keys", "-t", "t", "-l", line],
                       check=True, env=env, timeout=10)
        subprocess.run(tmux + ["send-keys", "-t", "t", "Enter"],
                       check=True, env=env, timeout=10)
        return wait_for(prompt + " " + line + "\n" + expect + "\n" + prompt)

    try:
        wait_for(prompt)
        run("set greeting hello", "OK")
        run("get greeting", '"hello"')
        run("append greeting !", "(integer) 6")
        run("get nope", "(nil)")
        run("mget greeting nope", '1) "hello!"\n2) (nil)')
        run("lpush-nosuch x",
            "(error) ERR unknown command 'lpush-nosuch', with args "
            "beginning with: 'x'")
        subprocess.run(tmux + ["send-keys", "-t", "t", "quit", "Enter"],
                       env=env, timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(tmux + ["has-session", "-t", "t"], env=env,
                              stderr=subprocess.DEVNULL,
                              timeout=10).returncode != 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("redis-cli did not exit on quit")
    finally:
        subprocess.run(tmux + ["kill-server"], env=env,
                       stderr=subprocess.DEVNULL, timeout=10)


# --- an idle server stays idle --------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of all threads of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("sync", ["every:1000", "always", "none"])
def test_idle_server_does_not_spin(server_factory, sync):
    s = server_factory(args=["--sync", sync])
    c = s.client()
    c.set("k", "v")
    c.close()
    time.sleep(1.0)
    before = cpu_seconds(s.pid)
    time.sleep(3.0)
    used = cpu_seconds(s.pid) - before
    assert used < 0.3, "idle server used %.2f s of CPU in 3 s (--sync %s)" \
        % (used, sync)


# --- 10k idle connections: memory bound (TESTING.md B7/B8) -------------------

@pytest.mark.slow
@pytest.mark.timeout(300)
def test_10k_idle_connections_memory_bound(server_factory):
    """RSS at 10,000 idle connections <= RSS(0) + 10k x 16 KiB."""
    n = 10000
    if raise_nofile(n + 500) < n + 100:
        pytest.skip("cannot raise RLIMIT_NOFILE to %d" % (n + 500))
    s = server_factory(args=["--maxclients", str(n + 200)])
    probe = RawClient(s.port)
    probe.call("SET", "k", "v")
    time.sleep(0.5)
    rss0 = rss_kb(s.pid)
    conns = []
    try:
        for i in range(n):
            c = RawClient(s.port, timeout=60)
            conns.append(c)
            if i % 500 == 499:  # keep the accept queue short
                for c2 in conns[-500:]:
                    c2.send(b"PING\r\n")
                for c2 in conns[-500:]:
                    assert c2.read_reply() == "PONG"
        assert probe.call("INFO", "clients").count(b"connected_clients:%d"
                                                   % (n + 1)) == 1
        time.sleep(0.5)
        grown = rss_kb(s.pid) - rss0
        print("RSS0 %d KiB, +%d KiB at %d idle connections (%.1f KiB each)"
              % (rss0, grown, n, grown / n))
        assert grown <= n * 16, "RSS grew by %d KiB (%.1f KiB/conn)" % (
            grown, grown / n)
        t0 = time.perf_counter()
        assert probe.call("GET", "k") == b"v"
        assert time.perf_counter() - t0 < 1.0
    finally:
        for c in conns:
            c.close()
        probe.close()


def test_redis_cli_scan_and_bigkeys(server):
    payload = b"".join(encode("SET", "user:%d" % i, "x" * i)
                       for i in range(1, 301))
    payload += encode("SET", "other", "y")
    rc, out, err = cli(server, "--pipe", stdin=payload)
    assert rc == 0, err
    rc, out, err = cli(server, "--scan", "--pattern", "user:*")
    assert rc == 0, err
    assert sorted(out.split()) == sorted(b"user:%d" % i
                                         for i in range(1, 301))
    rc, out, err = cli(server, "--bigkeys")
    assert rc == 0, (out, err)
    assert b"Biggest string found so far '\"user:300\"' with 300 bytes" \
        in out or b"Biggest string found 'user:300' has 300 bytes" in out \
        or b"'user:300'" in out, out[-2000:]
    assert b"301 keys" in out or b"Sampled 301 keys" in out, out[-2000:]

"""Shared fixtures for integration tests: real ringkvd processes.

Every server runs on 127.0.0.1 on a free port with its own temporary data
directory and is stopped by PID at the end of the test, also on failure.

Environment:
  RINGKV_BUILD        build directory holding ringkvd and ringkv
                      (default: build-san next to this repo)
  RINGKV_TEST_TARGET  "ringkv" (default) or "redis": run the same tests
                      against redis-server, to check that the tests
                      themselves encode Redis's behaviour.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RINGKV_BUILD", os.path.join(REPO, "build-san"))
TARGET = os.environ.get("RINGKV_TEST_TARGET", "ringkv")

sys.path.insert(0, os.path.dirname(__file__))


# Test ports come from a range of their own below the kernel's ephemeral
# ports (32768-60999 on Linux), one range per pytest-xdist worker: a port
# picked by bind(0) could be handed again by the kernel to another
# worker's bind(0) or to an outgoing connection before the server that was
# given it listened (CI: "cannot listen on 127.0.0.1:39749 (HTTP): Address
# already in use" with two workers).  Within a range ports are handed out
# in turn, so one is reused only after the rest of the range was.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_WID = int(_WORKER[2:]) if _WORKER[2:].isdigit() else 0
_WORKERS = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_LOW = 12000
_PORT_SPAN = (min(_ephemeral_low(), 32768) - _PORT_LOW) // _WORKERS
assert _PORT_SPAN >= 500, "too many pytest workers for the test port range"
_PORT_BASE = _PORT_LOW + (_WID % _WORKERS) * _PORT_SPAN
_port_next = [random.randrange(_PORT_SPAN)]


def _take_port(avoid):
    """The next port of this worker's range that binds now, bound (the
    caller closes the socket), or an AssertionError."""
    for _ in range(_PORT_SPAN):
        p = _PORT_BASE + _port_next[0] % _PORT_SPAN
        _port_next[0] += 1
        if p in avoid:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p))
            return p, s
        except OSError:
            s.close()
    raise AssertionError("no free port in %d..%d" %
                         (_PORT_BASE, _PORT_BASE + _PORT_SPAN - 1))


def free_ports(n, avoid=()):
    """n distinct TCP ports free on 127.0.0.1 a moment ago, none in avoid:
    all n are held open together while they are picked, so one server's
    RESP, peer and HTTP ports never coincide."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            p, s = _take_port(set(avoid) | set(ports))
            socks.append(s)
            ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago (this worker's
    range, above)."""
    p, s = _take_port(())
    s.close()
    return p


def wait_port(port, timeout=20.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening after %.0fs" % (port, timeout))


def wait_ready(port, timeout=60.0, proc=None):
    """Waits until PING answers PONG (not -LOADING while a data set is
    being loaded)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=5) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                last = s.recv(256)
                # +PONG, or -NOAUTH when a password is set: both ready
                if last.startswith(b"+PONG") or last.startswith(b"-NOAUTH"):
                    return
        except OSError as e:
            last = repr(e)
        time.sleep(0.05)
    raise RuntimeError("port %d not ready after %.0fs: %r" % (
        port, timeout, last))


# Every ringkvd a test starts shares this cluster secret
# (--cluster-secret-file), so that nodes the tests join authenticate each
# other as one cluster's nodes do; a test of the default flow (a secret
# made in the data dir at first start, `cluster join --secret-file`) sets
# Server.own_secret or passes its own --cluster-secret-file.
_SECRET_DIR = tempfile.mkdtemp(prefix="ringkv-secret-")
SECRET_FILE = os.path.join(_SECRET_DIR, "cluster.secret")
with open(os.open(SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
          "w") as _f:
    _f.write("5e" * 32 + "\n")


class Server:
    """One ringkvd (or redis-server) process.

    args: extra command-line flags; data_dir is kept across restart().
    """

    def __init__(self, tmpdir, args=(), port=None, target=TARGET):
        self.target = target
        self.args = list(args)
        if port:
            self.port = port
            self.peer_port, self.http_port = free_ports(2, avoid=(port,))
        else:
            self.port, self.peer_port, self.http_port = free_ports(3)
        self.data_dir = os.path.join(tmpdir, "data-%d" % self.port)
        self.log_path = os.path.join(tmpdir, "server-%d.log" % self.port)
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def command(self):
        if self.target == "redis":
            os.makedirs(self.data_dir, exist_ok=True)
            cmd = ["redis-server", "--port", str(self.port), "--bind",
                   "127.0.0.1", "--dir", self.data_dir, "--save", "",
                   "--appendonly", "yes", "--protected-mode", "no"]
            # translate the few ringkvd flags tests use
            it = iter(self.args)
            for a in it:
                if a == "--requirepass":
                    cmd += ["--requirepass", next(it)]
                elif a == "--maxclients":
                    cmd += ["--maxclients", next(it)]
                elif a in ("--timeout", "--proto-max-bulk-len",
                           "--client-query-buffer-limit"):
                    cmd += [a, next(it)]
                elif a == "--sync":
                    # ringkv durability -> the matching appendfsync policy
                    v = next(it)
                    cmd += ["--appendfsync", {"always": "always",
                                              "none": "no"}.get(
                                                  v, "everysec")]
                elif a.startswith("--") and a not in ("--flushall",):
                    try:
                        next(it)
                    except StopIteration:
                        pass
            return cmd
        extra = []
        if "--peer-port" not in self.args:
            # The default (port + 2) may belong to another test's server:
            # every server gets its own free peer port, kept across
            # restarts.
            if self.peer_port is None:
                self.peer_port = free_port()
            extra = ["--peer-port", str(self.peer_port)]
        if "--http-port" not in self.args:
            # likewise for HTTP (default port + 1)
            if self.http_port is None:
                self.http_port = free_port()
            extra += ["--http-port", str(self.http_port)]
        if "--cluster-secret-file" not in self.args and \
                not getattr(self, "own_secret", False):
            extra += ["--cluster-secret-file", SECRET_FILE]
        return [os.path.join(BUILD, "ringkvd"), "--port", str(self.port),
                "--bind", "127.0.0.1", "--data-dir", self.data_dir] + \
            extra + self.args

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.update(getattr(self, "extra_env", {}))  # e.g. faketime
        self.proc = subprocess.Popen(self.command(), stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=getattr(self, "preexec",
                                                        None))
        if wait:
            wait_port(self.port, proc=self.proc)
            wait_ready(self.port, proc=self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the process by PID; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def wait_exit(self, timeout=60):
        """Waits for the process to exit on its own (e.g. after a signal
        the test sent); returns its exit code."""
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = self.proc.returncode
            self.proc = None
            self.log.close()
            raise RuntimeError("server did not exit within %ss" % timeout)
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def client(self, **kw):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)


@pytest.fixture
def server_factory(tmp_path):
    """Call with (args=[...]) to start a server; all are stopped at the end."""
    started = []

    def make(args=(), start=True, **kw):
        s = Server(str(tmp_path), args=args, **kw)
        started.append(s)
        if start:
            s.start()
        return s

    yield make
    bad = []
    for s in started:
        rc = s.stop()
        # A sanitizer report makes ringkvd exit non-zero on SIGTERM.
        if s.target == "ringkv" and rc not in (None, 0, -signal.SIGKILL):
            bad.append((s.port, rc, s.logs()[-4000:]))
        elif s.target == "ringkv" and os.path.exists(s.log_path):
            # the log spans every start of this server: a sanitizer report
            # from an earlier incarnation (restart tests) counts too
            text = s.logs()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                           "runtime error:", "WARNING: ThreadSanitizer"):
                at = text.find(marker)
                if at >= 0:
                    bad.append((s.port, "sanitizer", text[max(0, at - 200):
                                                         at + 3800]))
                    break
    if bad:
        pytest.fail("server exited badly: %r" % (bad,))


@pytest.fixture
def server(server_factory):
    """A default server: bitcask engine, sync every:1000, FLUSHALL allowed."""
    args = ["--enable-flushall", "yes"] if TARGET == "ringkv" else []
    return server_factory(args=args)


@pytest.fixture
def r(server):
    c = server.client()
    yield c
    c.close()


@pytest.fixture
def r3(server):
    c = server.client(protocol=3) if _supports_resp3() else None
    if c is None:
        pytest.skip("redis-py without RESP3 support")
    yield c
    c.close()


def _supports_resp3():
    import inspect
    import redis
    return "protocol" in inspect.signature(redis.Redis.__init__).parameters


def ringkv_cli():
    return os.path.join(BUILD, "ringkv")


# --- additions for the black-box suite (tests/integration/test_*.py) -------

DEFAULT_TIMEOUT = int(os.environ.get("RINGKV_TEST_TIMEOUT", "120"))


def pytest_addoption(parser):
    try:
        parser.addoption("--seed", type=int, default=None,
                         help="seed for randomized integration tests "
                         "(default: random, printed first)")
    except ValueError:  # another conftest already defines --seed
        pass


@pytest.fixture
def seed(request):
    """The seed of a randomized test: --seed=S or RINGKV_SEED replays."""
    import random
    s = None
    try:
        s = request.config.getoption("--seed")
    except ValueError:
        pass
    if s is None and os.environ.get("RINGKV_SEED"):
        s = int(os.environ["RINGKV_SEED"])
    if s is None:
        s = random.SystemRandom().randrange(1 << 31)
    print("seed=%d (replay with --seed=%d)" % (s, s))
    sys.stdout.flush()
    return s


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes more than ~10 s (still run by default)")
    config.addinivalue_line(
        "markers", "ringkv_only: ringkv-specific behaviour, skipped "
        "when RINGKV_TEST_TARGET=redis")
    config.addinivalue_line(
        "markers", "timeout(seconds): per-test timeout (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        # every test gets a timeout, even when pytest.ini is not picked up
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))
        if TARGET == "redis" and item.get_closest_marker("ringkv_only"):
            item.add_marker(pytest.mark.skip(
                reason="ringkv-only behaviour (target is redis-server)"))


def is_ringkv():
    return TARGET == "ringkv"


def rss_kb(pid):
    """VmRSS of a process in KiB, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


@pytest.fixture
def raw(server):
    """A raw RESP socket (tests/integration/rawresp.py) to `server`."""
    import rawresp
    c = rawresp.RawClient(server.port)
    yield c
    c.close()


@pytest.fixture
def raw_factory(server):
    """Opens more raw sockets to `server`; all closed at the end."""
    import rawresp
    opened = []

    def make(port=None, **kw):
        c = rawresp.RawClient(port or server.port, **kw)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


AUTH_PASSWORD = "s3cret-pass"


@pytest.fixture
def auth_server(server_factory):
    """A server started with --requirepass AUTH_PASSWORD."""
    args = ["--requirepass", AUTH_PASSWORD]
    if is_ringkv():
        args += ["--enable-flushall", "yes"]
    return server_factory(args=args)

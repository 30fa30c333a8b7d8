"""`make cluster` / `make cluster-stop` (issue 4 item 6) through the script
they run, scripts/cluster.sh, with the build under test: three nodes
started, joined with the CLI and agreeing on the ring; a key written
through one node is read through another; a second start reuses the saved
cluster state; stop leaves no process behind.

The script's defaults are RESP ports 7379/7389/7399 and ./data; here
CLUSTER_BASE_PORT points at a free range and CLUSTER_DIR at the test's
temp dir so the test never touches a user's cluster.
"""
import os
import random
import signal
import socket
import subprocess
import time

import pytest
import redis

from conftest import BUILD, REPO, TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv cluster script"),
]

SCRIPT = os.path.join(REPO, "scripts", "cluster.sh")


def port_free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
            return True
        except OSError:
            return False


def free_base():
    """A base port B with RESP, HTTP and peer ports of 3 nodes free."""
    rng = random.Random(os.getpid())
    for _ in range(200):
        b = rng.randrange(20000, 40000)
        if all(port_free(b + d) for d in (0, 1, 2, 10, 11, 12, 20, 21, 22)):
            return b
    pytest.skip("no free port range")


def pids(d):
    out = []
    for i in (1, 2, 3):
        f = os.path.join(d, "node%d" % i, "ringkvd.pid")
        if os.path.exists(f):
            out.append(int(open(f).read()))
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of a reaped script child counts as gone
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_make_cluster_start_join_stop(tmp_path):
    base = free_base()
    d = str(tmp_path / "data")
    env = dict(os.environ, CLUSTER_DIR=d, CLUSTER_BASE_PORT=str(base))
    started = []
    try:
        out = subprocess.run(["bash", SCRIPT, "start", BUILD], env=env,
                             capture_output=True, text=True, timeout=120)
        started = pids(d)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "agreement yes" in out.stdout, out.stdout
        # the stop hint names the CLUSTER_DIR it was started with
        assert "Stop with: CLUSTER_DIR=%s make cluster-stop" % d in out.stdout
        assert len(started) == 3
        rows = [ln for ln in out.stdout.splitlines()
                if ln.startswith("127.0.0.1:")]
        assert len(rows) == 3 and all(" valid " in r for r in rows), out.stdout
        a = redis.Redis(port=base + 10, socket_timeout=10)
        b = redis.Redis(port=base + 20, socket_timeout=10)
        assert a.set("mk", "v1")
        assert b.get("mk") == b"v1"
        # a second start finds the nodes running and the state agreed
        again = subprocess.run(["bash", SCRIPT, "start", BUILD], env=env,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("already running") == 3, again.stdout
        stop = subprocess.run(["bash", SCRIPT, "stop", BUILD], env=env,
                              capture_output=True, text=True, timeout=60)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert stop.stdout.count("stopped node") == 3, stop.stdout
        deadline = time.time() + 10
        while time.time() < deadline and any(alive(p) for p in started):
            time.sleep(0.1)
        assert not any(alive(p) for p in started)
        # restart from the saved state: no join needed, data still there
        out = subprocess.run(["bash", SCRIPT, "start", BUILD], env=env,
                             capture_output=True, text=True, timeout=120)
        started = pids(d)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "agreement yes" in out.stdout
        c = redis.Redis(port=base, socket_timeout=10)
        assert c.get("mk") == b"v1"
        subprocess.run(["bash", SCRIPT, "stop", BUILD], env=env,
                       capture_output=True, timeout=60)
        for i in (1, 2, 3):
            log = open(os.path.join(d, "node%d" % i, "ringkvd.log"),
                       errors="replace").read()
            assert "Sanitizer" not in log and "runtime error" not in log, log
    finally:
        subprocess.run(["bash", SCRIPT, "stop", BUILD], env=env,
                       capture_output=True, timeout=60)
        for p in started:
            if alive(p):
                os.kill(p, signal.SIGKILL)

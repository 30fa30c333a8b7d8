"""libringkv (include/ringkv.h, issue 13 item 4) against real ringkvd
processes, through the C driver tests/lib/libringkv_itest.c (linked with
the shared library; under ASan in the build-san build).

What is checked:
  1. one node: every API call (get/set with PX/del/expire/incr/mset/mget,
     getall/put with the causal context, error codes and messages);
  2. AUTH: the password option works, a wrong one is RINGKV_EAUTH, and a
     missing one fails with NOAUTH as RINGKV_EAUTH;
  3. no seed reachable: RINGKV_EIO with the address in the message;
  4. 3 nodes: the topology has 3 nodes and every call works from any seed;
  5. 3 nodes, a node SIGKILLed during a loop of idempotent operations
     (SET, GET, MSET, MGET, DEL): 0 errors reach the application at the
     default retry policy, and the library did retry.

    RINGKV_BUILD=$PWD/build-san /usr/bin/python3 -m pytest -s -q \\
        tests/integration/test_libringkv.py
"""
import os
import re
import subprocess
import time

import pytest

from cluster_util import cluster_factory_gen
from conftest import BUILD, TARGET, free_port

ITEST = os.path.join(BUILD, "libringkv_itest")

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv topology"),
]


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def env_for(password=None):
    """The drivers' environment: leak checks on, the AUTH password."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    if password is not None:
        env["RINGKV_PASSWORD"] = password
    return env


def run(*args, password=None, timeout=120, exe=ITEST):
    """Runs a driver (this file's, or `exe`) to completion."""
    return subprocess.run([exe] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=env_for(password))


def addr(port):
    return "127.0.0.1:%d" % port


def test_single_node_every_call(server):
    p = run("basic", addr(server.port))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok" in p.stdout.split()
    assert "nodes=1" in p.stdout


def test_auth(server_factory):
    s = server_factory(args=["--requirepass", "s3cret"])
    p = run("basic", addr(s.port), password="s3cret")
    assert p.returncode == 0, p.stdout + p.stderr
    p = run("connect", addr(s.port), password="wrong")
    assert p.returncode == 1 and p.stdout.startswith("RINGKV_EAUTH"), \
        p.stdout + p.stderr
    p = run("connect", addr(s.port))
    assert p.returncode == 1 and p.stdout.startswith("RINGKV_EAUTH"), \
        p.stdout + p.stderr


def test_no_seed_reachable():
    port = free_port()
    p = run("connect", addr(port))
    assert p.returncode == 1
    assert p.stdout.startswith("RINGKV_EIO"), p.stdout + p.stderr
    assert addr(port) in p.stdout


def test_three_nodes_every_call_from_any_seed(cluster_factory):
    cl = cluster_factory(3)
    for n in cl.nodes:
        p = run("basic", addr(n.port))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "nodes=3" in p.stdout, p.stdout


def kill_during_loop(cl, argv, victim):
    """Runs the driver `argv` (a "loop" mode that prints "started" once
    warm), SIGKILLs `victim` 1.5 s later; returns (ops, errors, retries)
    of its last line, after checking it exited 0."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_for())
    try:
        line = proc.stdout.readline()
        assert line.strip() == "started", line + proc.stderr.read()
        time.sleep(1.5)
        cl.kill(victim)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()  # by PID
            proc.wait()
    print(out, err[-2000:])
    assert proc.returncode == 0, out + err
    m = re.search(r"ops=(\d+) errors=(\d+) retries=(\d+)", out)
    assert m, out + err
    ops, errors, retries = (int(x) for x in m.groups())
    assert errors == 0, err[-2000:]
    return ops, errors, retries


def test_sigkilled_node_during_idempotent_loop(cluster_factory):
    cl = cluster_factory(3)
    seeds = [addr(n.port) for n in cl.nodes]
    ops, errors, retries = kill_during_loop(cl, [ITEST, "loop", "8"] + seeds,
                                            cl.nodes[2])
    assert ops > 100
    assert retries >= 1  # the kill was seen and retried past

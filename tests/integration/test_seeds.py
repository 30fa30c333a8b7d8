"""Nodes that join their cluster from their configuration (issue 17 item
1): `--seeds host:peer-port,...` (or `seeds = ...` in the config file).
A node with an empty state joins the first seed that admits it, retrying
with backoff and logging each try; a node that is one of the seeds joins
nobody; a node that already belongs to a cluster ignores the list.  Real
ringkvd processes, stopped by PID at the end (conftest).
"""
import os
import subprocess
import time

import pytest

from cluster_util import parse_info
from conftest import BUILD, TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv cluster"),
]


def members(server):
    c = server.client()
    try:
        c.set_response_callback("INFO", lambda r, **kw: r)
        return int(parse_info(c.execute_command("INFO", "cluster"))
                   ["cluster_members"])
    finally:
        c.close()


def wait_members(servers, n, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(members(s) == n for s in servers):
            return time.time()
        time.sleep(0.1)
    pytest.fail("nodes did not reach %d members: %r" % (
        n, [members(s) for s in servers]))


def test_nodes_join_their_seed_from_the_config(server_factory, tmp_path):
    seed = server_factory(start=False)
    seeds = "127.0.0.1:%d" % seed.peer_port
    seed.args += ["--seeds", seeds]  # a seed itself: joins nobody
    seed.start()
    # the second node reads the list from its config file
    ini = tmp_path / "node2.ini"
    ini.write_text("seeds = %s\n" % seeds)
    b = server_factory(args=["--config", str(ini)])
    c = server_factory(args=["--seeds", seeds])
    wait_members([seed, b, c], 3)
    assert "cluster_seed_self" in seed.logs()
    assert "cluster_seed_join " in b.logs() or \
        "event=cluster_seed_join " in b.logs()
    assert "cluster_seed_joined" in c.logs()
    # a restart of a member ignores the list: still three members
    c.restart()
    time.sleep(1.0)
    wait_members([seed, b, c], 3)
    assert "cluster_seeds_ignored" in c.logs()


def test_a_node_retries_until_its_seed_is_up(server_factory):
    seed = server_factory(start=False)
    seeds = "127.0.0.1:%d" % seed.peer_port
    b = server_factory(args=["--seeds", seeds])  # the seed is not up yet
    time.sleep(2.5)
    assert members(b) == 1
    assert "event=cluster_seed_join seed=127.0.0.1:%d attempt=1" % \
        seed.peer_port in b.logs()
    # the join keeps asking the seed (up to the 30 s join timeout, then the
    # next try after a backoff): it is admitted once the seed is up
    seed.start()
    wait_members([seed, b], 2, timeout=45.0)


def test_bad_seeds_are_refused_at_start(tmp_path):
    p = subprocess.run([os.path.join(BUILD, "ringkvd"), "--port", "1",
                        "--data-dir", str(tmp_path / "d"), "--seeds",
                        "127.0.0.1"], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"seed '127.0.0.1' is not host:peer-port" in p.stderr, p.stderr


def test_a_node_with_data_does_not_join_and_says_why(server_factory):
    seed = server_factory()
    b = server_factory()
    assert b.client().set("k", "v")
    b.args += ["--seeds", "127.0.0.1:%d" % seed.peer_port]
    b.restart()
    time.sleep(1.0)
    assert members(b) == 1
    assert "cluster_seeds_refused" in b.logs()
    assert "join needs an empty node" in b.logs()

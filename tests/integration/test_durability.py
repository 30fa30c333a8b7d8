"""What each sync policy promises, through real ringkvd processes (issue
12): under the default --sync every:1000, and under none, a write is
acknowledged only once it is in the OS, so kill -9 of the process loses
no acknowledged write (only an OS crash or power loss may lose the last
interval); a coordinator killed right after W=2 acknowledgements, with a
replica down, keeps every acknowledged key readable at R=2 after restart
(its own copy and its hints were handed to the OS before they counted).

RK_KILLS=<n> in the environment sets the kill -9 rounds per policy
(default 4).  Nodes are stopped by PID at the end (conftest).
"""
import os
import time

import pytest
import redis

from cluster_util import cluster_factory_gen
from conftest import TARGET
from test_persistence import Writers, verify_acked

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv durability"),
]

KILLS = int(os.environ.get("RK_KILLS", "4"))


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("sync", ["every:1000", "none"])
@pytest.mark.parametrize("pipeline", [1, 16])
def test_kill9_under_load_loses_no_acknowledged_write(server_factory, sync,
                                                      pipeline):
    s = server_factory(args=["--sync", sync])
    total = 0
    for round_ in range(KILLS):
        w = Writers(s.port, threads=4, pipeline=pipeline)
        w.start()
        time.sleep(0.3 + 0.2 * (round_ % 3))
        s.kill()
        w.join()
        assert not w.errors, w.errors
        assert len(w.acked) > 50, len(w.acked)
        total += len(w.acked)
        s.start()
        lost = verify_acked(s, w.acked)
        assert not lost, "round %d: %d of %d acknowledged writes lost, " \
            "e.g. %r" % (round_, len(lost), len(w.acked), lost[:5])
        # the next round writes the same keys and values (Writers numbers
        # and seeds alike): clear them so a loss there cannot hide
        c = s.client()
        for i in range(0, len(w.acked), 500):
            c.delete(*list(w.acked)[i:i + 500])
        c.close()
    print("sync=%s pipeline=%d: %d kills, %d acknowledged writes, 0 lost"
          % (sync, pipeline, KILLS, total))
    info = s.client().info("persistence")
    assert info["engine_acked_seq"] >= 1


def test_info_shows_the_acknowledged_sequence(server_factory):
    s = server_factory(args=["--sync", "every:1000"])
    c = s.client()
    for i in range(10):
        assert c.set("k%d" % i, "v")
    info = c.info("persistence")
    # acknowledged = in the OS; durable (fdatasync) follows within 1 s
    assert info["engine_acked_seq"] >= 10
    deadline = time.time() + 5
    while time.time() < deadline and \
            c.info("persistence")["engine_durable_seq"] < 10:
        time.sleep(0.05)
    assert c.info("persistence")["engine_durable_seq"] >= 10


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_coordinator_kill9_after_w2_acks_with_a_replica_down(cluster_factory):
    cl = cluster_factory(3, args=["--r", "2", "--w", "2"])
    a, b, c = cl.nodes
    cl.kill(c)
    # a knows c is down: it keeps hints for c
    cl.wait_until(lambda: int(cl.info(a)["cluster_members_up"]) == 2,
                  "a to see c down", timeout=30)
    ca = cl.c(a)
    acked = []
    pipe = ca.pipeline(transaction=False)
    for i in range(2000):
        pipe.set("ck%d" % i, "v%d" % i)
    for i, ok in enumerate(pipe.execute(raise_on_error=False)):
        if ok is True:
            acked.append(i)
    assert len(acked) > 1500, len(acked)
    assert int(cl.info(a)["hints_pending"]) > 0
    cl.kill(a)  # at once: its copies and hints must already be in the OS
    cl.restart(a)
    cl.restart(c)
    cl.wait_converged(timeout=30)
    for node in cl.nodes:
        cl.c(node).config_set("r", "2")
    missing = []
    for node in cl.nodes:
        cn = cl.c(node)
        for i in acked:
            try:
                v = cn.get("ck%d" % i)
            except redis.ResponseError as e:
                v = e
            if v != ("v%d" % i).encode():
                missing.append((node, i, v))
    assert not missing, "%d reads of acknowledged keys failed, e.g. %r" % (
        len(missing), missing[:5])

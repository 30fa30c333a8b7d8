"""Active anti-entropy (issue 14 item 4) through real ringkvd processes.

1. A 3-node cluster (N=3 R=2 W=2) with 20,000 keys; one node is stopped,
   its data engine's files are deleted (the cluster state file stays: the
   node is still a member), and it is started again.  With no client
   read at all, anti-entropy alone brings every key back onto it
   (RINGKV.LOCALGET on that node), within a stated time.
2. A node that missed writes while it was down, whose hints were deleted
   on the other nodes: anti-entropy alone brings the missed writes.

    RINGKV_BUILD=$PWD/build-san /usr/bin/python3 -m pytest -s -q \\
        tests/integration/test_aae.py

RINGKV_AAE_KEYS overrides the key count of test 1 and
RINGKV_AAE_DEFAULTS=1 runs it with the default AAE settings instead of
the test's fast ones (the 100k figures in docs/benchmarks.md were measured
with RINGKV_AAE_KEYS=100000 on the release build, both ways).
"""
import glob
import os
import shutil
import time

import pytest

from cluster_util import cluster_factory_gen
from conftest import TARGET
from test_handoff import load

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv",
                       reason="ringkv cluster (no redis-server equivalent)"),
]

SEED = 20261208
AAE_ARGS = ["--aae-exchange-interval-ms", "20", "--aae-concurrency", "4",
            "--aae-repair-rate", "50000"]


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def missing_on(cl, node, keys):
    """Keys RINGKV.LOCALGET on `node` does not have (a node-local read:
    no coordination, no read repair)."""
    miss = []
    for i in range(0, len(keys), 1000):
        p = cl.c(node).pipeline(transaction=False)
        chunk = keys[i:i + 1000]
        for k in chunk:
            p.execute_command("RINGKV.LOCALGET", k)
        for k, g in zip(chunk, p.execute(raise_on_error=False)):
            if g is None or isinstance(g, Exception):
                miss.append(k)
    return miss


def wipe_data(node):
    """Deletes the node's data engine files (bitcask data and hint files),
    keeping its identity and cluster state files."""
    d = node.server.data_dir
    gone = []
    for f in os.listdir(d):
        if f.endswith(".data") or f.endswith(".hint"):
            gone.append(f)
            os.unlink(os.path.join(d, f))
    assert gone, os.listdir(d)
    return gone


def wait_restored(cl, node, keys, timeout):
    t0 = time.monotonic()
    left = list(keys)
    last = 0
    while left and time.monotonic() - t0 < timeout:
        left = missing_on(cl, node, left)
        if left:
            time.sleep(0.2)
        if time.monotonic() - last > 5:
            last = time.monotonic()
            info = cl.info(node)
            print("%.1f s: %d missing; %s" % (
                last - t0, len(left),
                {k: v for k, v in info.items() if k.startswith("aae_")}))
    return time.monotonic() - t0, left


@pytest.mark.timeout(600)
def test_aae_restores_a_wiped_replica(cluster_factory):
    n_keys = int(os.environ.get("RINGKV_AAE_KEYS", "20000"))
    # RINGKV_AAE_DEFAULTS=1: the default settings (an exchange a second,
    # one at a time, 5,000 keys repaired a second per node)
    defaults = os.environ.get("RINGKV_AAE_DEFAULTS") == "1"
    cl = cluster_factory(3, args=[] if defaults else AAE_ARGS)
    kv = load(cl, cl.nodes, n_keys, "aae", SEED)
    keys = sorted(kv)
    victim = cl[2]
    cl.kill(victim)
    print("wiped:", wipe_data(victim))
    cl.restart(victim)
    took, left = wait_restored(cl, victim, keys, timeout=240)
    info = cl.info(victim)
    print("AAE restored %d keys on a wiped replica in %.1f s; %s" % (
        len(keys) - len(left), took,
        {k: v for k, v in info.items() if k.startswith("aae_")}))
    assert not left, "%d keys not restored, e.g. %r" % (len(left), left[:5])
    # the others repaired nothing of their own: every key was already there
    for n in cl.nodes:
        assert not missing_on(cl, n, keys[:2000])


@pytest.mark.timeout(300)
def test_aae_restores_a_wiped_replica_with_few_partitions(cluster_factory):
    """Q=8: 2,048 slots a partition, more than the 1,024 leaves of a tree,
    so a leaf spans two slots (the other leaf layout)."""
    cl = cluster_factory(3, args=AAE_ARGS + ["--ring-size", "8"])
    kv = load(cl, cl.nodes, 5000, "q8", SEED + 2)
    keys = sorted(kv)
    victim = cl[1]
    cl.kill(victim)
    wipe_data(victim)
    cl.restart(victim)
    took, left = wait_restored(cl, victim, keys, timeout=120)
    print("Q=8: AAE restored %d keys in %.1f s" % (len(keys), took))
    assert not left, "%d keys not restored, e.g. %r" % (len(left), left[:5])
    assert cl.info(victim)["aae_trees"] == "8"


@pytest.mark.timeout(600)
def test_aae_repairs_writes_missed_while_hints_were_lost(cluster_factory):
    cl = cluster_factory(3, args=AAE_ARGS)
    base = load(cl, cl.nodes, 2000, "base", SEED)
    victim = cl[2]
    cl.kill(victim)
    missed = load(cl, cl.nodes[:2], 3000, "missed", SEED + 1)
    # the hints for the victim are deleted: stop the other two, remove
    # their hint stores, start them again
    for n in cl.nodes[:2]:
        cl.kill(n)
        hs = glob.glob(os.path.join(n.server.data_dir, "hints*"))
        assert hs, os.listdir(n.server.data_dir)
        for h in hs:
            shutil.rmtree(h) if os.path.isdir(h) else os.unlink(h)
    for n in cl.nodes:
        cl.restart(n)
    keys = sorted(list(base) + list(missed))
    took, left = wait_restored(cl, victim, keys, timeout=240)
    print("AAE brought %d missed writes in %.1f s" % (len(missed), took))
    assert not left, "%d keys missing, e.g. %r" % (len(left), left[:5])
    # and the values are the acknowledged ones (through a quorum read)
    c = cl.c(victim)
    for k in sorted(missed)[:500]:
        assert c.get(k) == missed[k]


@pytest.mark.timeout(300)
def test_aae_settings_and_info(cluster_factory):
    """The settings are flags and CONFIG SET/GET; INFO shows the state;
    aae off frees the trees, on builds them again."""
    cl = cluster_factory(3, args=["--aae-exchange-interval-ms", "50"])
    c = cl.c(cl[0])
    assert c.config_get("aae")["aae"] == "on"
    assert c.config_get("aae-exchange-interval-ms")[
        "aae-exchange-interval-ms"] == "50"
    assert c.config_get("aae-concurrency")["aae-concurrency"] == "1"
    assert c.config_get("aae-repair-rate")["aae-repair-rate"] == "5000"
    cl.wait_until(lambda: all(cl.info(n)["aae_trees_built"] == "64"
                              for n in cl.nodes), "trees built")
    cl.wait_until(lambda: int(cl.info(cl[0])["aae_exchanges"]) > 0,
                  "an exchange")
    info = cl.info(cl[0])
    assert info["aae_exchange_failures"] == "0"
    assert info["aae_refused"] == "0"
    # a long interval pauses the exchanges; shortening it again takes
    # effect at once, not after the long interval's deadline
    c.config_set("aae-exchange-interval-ms", "86400000")
    time.sleep(0.5)
    paused = int(cl.info(cl[0])["aae_exchanges"])
    time.sleep(1.0)
    assert int(cl.info(cl[0])["aae_exchanges"]) == paused
    c.config_set("aae-exchange-interval-ms", "50")
    cl.wait_until(lambda: int(cl.info(cl[0])["aae_exchanges"]) >=
                  paused + 3, "exchanges again right after the interval "
                  "was shortened", timeout=5)
    c.config_set("aae-concurrency", "4")
    c.config_set("aae-repair-rate", "100")
    with pytest.raises(Exception):
        c.config_set("aae-concurrency", "5")
    with pytest.raises(Exception):
        c.config_set("aae", "maybe")
    c.config_set("aae", "off")
    cl.wait_until(lambda: cl.info(cl[0])["aae_trees"] == "0", "trees freed")
    c.config_set("aae", "on")
    cl.wait_until(lambda: cl.info(cl[0])["aae_trees_built"] == "64",
                  "trees built again")
    # the same settings in /metrics
    import urllib.request
    body = urllib.request.urlopen(
        "http://127.0.0.1:%d/metrics" % cl[0].server.http_port,
        timeout=10).read().decode()
    assert "ringkv_aae_exchanges_total" in body
    assert "ringkv_aae_keys_repaired_total" in body

"""Membership commands of issue 14 items 3 and 6 through real ringkvd
processes and the real `ringkv` CLI:

1. `ringkv -p NEW cluster replace OLD SEED`: an empty node takes a
   member's place in one transition.  3 nodes + 2 spares, N=3 R=2 W=2,
   keys written; a live member is replaced (it hands off), then a killed
   one (the new node pulls from the survivors).  Afterwards every key has
   N=3 copies on the members (RINGKV.LOCALGET on each), none is lost, and
   each replace took exactly one state change for the swap.
2. A leave or remove that would leave fewer than N members is refused
   with a message naming N and the count, unless `--force` is given.

    RINGKV_BUILD=$PWD/build-san /usr/bin/python3 -m pytest -s -q \\
        tests/integration/test_replace.py
"""
import time

import pytest

from cluster_util import cluster_factory_gen
from conftest import TARGET
from test_handoff import check_all, copies, load

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv",
                       reason="ringkv cluster (no redis-server equivalent)"),
]

SEED = 20261207


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def statuses(cl, node):
    _, rows = cl.status(node)
    return {r["node_id"]: r["status"] for r in rows}


def wait_n_copies(cl, members, keys, n, timeout=30.0):
    """Polls RINGKV.LOCALGET on `members` until every key has n copies;
    returns {key: copies} of the last poll."""
    deadline = time.monotonic() + timeout
    while True:
        n_of = copies(cl, members, keys)
        if min(n_of.values()) >= n or time.monotonic() > deadline:
            return n_of
        time.sleep(0.5)


def replace(cl, old, new, seed, members):
    """`ringkv -p NEW cluster replace OLD SEED` and waits until `members`
    agree and the transition finished; returns the seconds it took."""
    v0 = int(cl.info(seed)["cluster_state_version"])
    t0 = time.monotonic()
    p = cl.cli(new, "cluster", "replace", old.node_id, seed.peer_addr)
    assert p.stdout.strip() == "OK", p
    # the admitting state: NEW joining and OLD leaving in one version
    st = statuses(cl, new)
    assert st[new.node_id] in ("joining", "valid"), st
    assert st[old.node_id] in ("leaving", "removed"), st
    cl.wait_converged(len(members), nodes=members, timeout=120)
    cl.wait_until(lambda: all("transition none" in cl.status_text(n)
                              for n in members),
                  "the transition to finish", timeout=60, nodes=members)
    took = time.monotonic() - t0
    for n in members:
        st = statuses(cl, n)
        assert st[old.node_id] == "removed", st
        assert st[new.node_id] == "valid", st
    v1 = int(cl.info(seed)["cluster_state_version"])
    print("replace of %s by %s: %.2f s, state versions %d -> %d" % (
        old.node_id, new.node_id, took, v0, v1))
    return took


@pytest.mark.timeout(300)
def test_replace_live_then_dead_node_keeps_n_copies(cluster_factory):
    cl = cluster_factory(5, form=3)
    a, b, c, s1, s2 = cl.nodes
    members = [a, b, c]
    kv = load(cl, members, 3000, "rp", SEED)
    keys = list(kv)
    # a replace names a valid member and goes to an empty node
    p = cl.cli(s1, "cluster", "replace", "no-such-node", a.peer_addr,
               check=False)
    out = (p.stdout + p.stderr).strip()
    print("replace of an unknown member: exit %d: %s" % (p.returncode, out))
    assert p.returncode == 1 and "no such member" in out, p

    # 1. a live member: c hands its partitions to s1 and is removed
    replace(cl, c, s1, a, [a, b, s1])
    members = [a, b, s1]
    cl.wait_until(lambda: cl.info(c)["cluster_phase"] == "removed",
                  "the replaced node to see itself removed", timeout=30,
                  nodes=members + [c])
    n_of = wait_n_copies(cl, members, keys, 3)
    short = [k for k, n in n_of.items() if n < 3]
    print("after replacing live %s: %d of %d keys with fewer than 3 copies" %
          (c.node_id, len(short), len(keys)))
    assert not short, [(k, n_of[k]) for k in short[:10]]
    check_all(cl, members, kv, "after replacing a live node")

    # 2. a killed member: s2 pulls b's partitions from the survivors
    cl.kill(b)
    cl.wait_until(lambda: cl.info(a)["cluster_members_up"] == "2",
                  "a to see b down", timeout=20, nodes=[a, s1])
    replace(cl, b, s2, a, [a, s1, s2])
    members = [a, s1, s2]
    n_of = wait_n_copies(cl, members, keys, 3)
    short = [k for k, n in n_of.items() if n < 3]
    print("after replacing dead %s: %d of %d keys with fewer than 3 copies "
          "(no client read happened)" % (b.node_id, len(short), len(keys)))
    assert not short, [(k, n_of[k]) for k in short[:10]]
    check_all(cl, members, kv, "after replacing a dead node")


@pytest.mark.timeout(120)
def test_leave_and_remove_below_n_ask_for_force(cluster_factory):
    cl = cluster_factory(3)
    a, b, c = cl.nodes
    v0 = cl.info(a)["cluster_state_version"]
    for node, args in ((c, ("leave",)), (a, ("remove", c.node_id))):
        p = cl.cli(node, "cluster", *args, check=False)
        out = (p.stdout + p.stderr).strip()
        print("cluster %s: exit %d: %s" % (" ".join(args), p.returncode, out))
        assert p.returncode == 1, p
        assert "would leave 2 members, fewer than N=3" in out, out
        assert "--force" in out, out
    # nothing changed
    assert cl.info(a)["cluster_state_version"] == v0
    assert set(statuses(cl, a).values()) == {"valid"}
    # RESP: FORCE is the last word
    p = cl.cli(a, "cluster", "remove", c.node_id, "--force")
    assert p.stdout.strip() == "OK", p
    cl.wait_converged(2, nodes=[a, b], timeout=30)
    assert statuses(cl, a)[c.node_id] == "removed"


@pytest.mark.timeout(300)
def test_plan_and_commit_apply_staged_changes_as_one(cluster_factory):
    cl = cluster_factory(5, form=3)
    a, b, c, d, e = cl.nodes
    kv = load(cl, [a, b, c], 2000, "pl", SEED + 1)
    keys = list(kv)
    p = cl.cli(a, "cluster", "commit", check=False)
    assert p.returncode == 1 and "the plan is empty" in p.stdout + p.stderr, p
    for args in (("join", "127.0.0.1:%d" % d.port),
                 ("join", "127.0.0.1:%d" % e.port),
                 ("leave", c.node_id)):
        p = cl.cli(a, "cluster", "plan", *args)
        assert p.stdout.strip() == "OK", p
    # a change naming the same node again, a non-empty new node
    p = cl.cli(a, "cluster", "plan", "remove", c.node_id, check=False)
    assert p.returncode == 1 and "already names" in p.stdout + p.stderr, p
    p = cl.cli(a, "cluster", "plan", "join", "127.0.0.1:%d" % b.port,
               check=False)
    assert p.returncode == 1 and "member of a cluster already" in \
        p.stdout + p.stderr, p
    show = cl.cli(a, "cluster", "plan").stdout
    print(show)
    assert "3 changes" in show, show
    assert "join %s" % d.node_id in show and "leave %s" % c.node_id in show
    assert "would give: 4 members" in show, show
    rows = {ln.split()[0]: ln.split()[1:] for ln in show.splitlines()
            if ln.startswith("node")}
    assert rows[c.node_id][1] == "0", rows      # c replicates nothing after
    assert int(rows[d.node_id][2]) > 0, rows    # d receives partitions
    # the plan lives on a only
    assert "0 changes" in cl.cli(b, "cluster", "plan", "show").stdout
    v0 = int(cl.info(a)["cluster_state_version"])
    p = cl.cli(a, "cluster", "commit")
    assert p.stdout.strip() == "OK", p
    st = statuses(cl, a)
    assert st[d.node_id] in ("joining", "valid"), st
    assert st[e.node_id] in ("joining", "valid"), st
    assert st[c.node_id] in ("leaving", "removed"), st
    members = [a, b, d, e]
    cl.wait_converged(4, nodes=members, timeout=120)
    cl.wait_until(lambda: all("transition none" in cl.status_text(n)
                              for n in members),
                  "the transition to finish", timeout=60, nodes=members)
    v1 = int(cl.info(a)["cluster_state_version"])
    print("commit: state versions %d -> %d" % (v0, v1))
    for n in members:
        st = statuses(cl, n)
        assert st[c.node_id] == "removed" and st[d.node_id] == "valid", st
    assert "0 changes" in cl.cli(a, "cluster", "plan").stdout
    n_of = wait_n_copies(cl, members, keys, 3)
    short = [k for k, n in n_of.items() if n < 3]
    assert not short, [(k, n_of[k]) for k in short[:10]]
    check_all(cl, members, kv, "after the committed plan")
    # a plan that leaves fewer than N asks for --force; clear drops it
    for n in (d, e):
        cl.cli(a, "cluster", "plan", "remove", n.node_id)
    p = cl.cli(a, "cluster", "commit", check=False)
    out = p.stdout + p.stderr
    assert p.returncode == 1 and "fewer than N=3" in out, p
    assert cl.cli(a, "cluster", "plan", "clear").stdout.strip() == "OK"
    assert "0 changes" in cl.cli(a, "cluster", "plan").stdout

"""Degraded storage is a node state (issue 12 item 3, with item 4's
low-water warning): real ringkvd processes, a 3-node cluster (N=3, R=2,
W=2) whose third node keeps its data dir on a small tmpfs.

The tmpfs is filled: the node warns (disk_low), then its engine goes
read-only.  Every write through every node must keep succeeding at W=2,
the full node must show as degraded on every node (RINGKV.CLUSTER STATUS,
INFO, /cluster, /health, /metrics), and after space returns it is
healthy again without a restart (engine_recover, tried every 5 s once
free space is above --disk-low-water) and the writes it missed arrive
through the hints its peers kept.  At the end every
acknowledged key is read at R=2 through every node: lost = 0.

Needs root to mount a tmpfs (skipped otherwise).  Each test stops its
processes by PID (conftest's server_factory, and explicitly before the
unmount) and unmounts in a finally block.
"""
import json
import os
import subprocess
import time
import urllib.request

import pytest
import redis

from cluster_util import Cluster, parse_info, parse_status

pytestmark = pytest.mark.timeout(300)

TMPFS_BYTES = 8 * 1024 * 1024
VALUE = b"v" * 2048


def http_json(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def http_text(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=10) as r:
        return r.read().decode()


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o",
                         "size=%d,mode=0700" % size, "tmpfs", path],
                        capture_output=True, text=True)
    return rc.returncode == 0, rc.stderr.strip()


def umount(path):
    if subprocess.run(["umount", path], capture_output=True).returncode:
        subprocess.run(["umount", "-l", path], capture_output=True)


def seen_of(cl, node, target_id):
    for row in parse_status(cl.status_text(node))[1]:
        if row["node_id"] == target_id:
            return row["seen"]
    return None


def write_ok(c, key):
    """One write at W=2; returns True when acknowledged (OK)."""
    try:
        return c.set(key, VALUE + key.encode()) is True
    except redis.exceptions.RedisError:
        return False


def info(node, section):
    """INFO `section` of `node` as {str: str} (the raw text, parsed)."""
    c = node.client()
    c.set_response_callback("INFO", lambda r, **kw: r)
    try:
        return parse_info(c.execute_command("INFO", section))
    finally:
        c.close()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_full_disk_node_degrades_writes_stay_available_and_heal(
        server_factory):
    cl = Cluster(server_factory, 3, args=["--max-file-size", "262144"])
    full = cl[2]
    # the low-water mark warns when less than 40% of the tmpfs is free
    full.server.args += ["--disk-low-water", "40%"]
    ok, err = mount_tmpfs(full.server.data_dir, TMPFS_BYTES)
    if not ok:
        pytest.skip("cannot mount a tmpfs here (%s)" % err)
    filler = os.path.join(full.server.data_dir, "filler")
    acked = []      # keys acknowledged (OK at W=2)
    failed = []     # writes that got an error
    try:
        cl.start()
        cl.form()
        clients = [n.client() for n in cl.nodes]
        # phase 0: a healthy cluster takes writes through every node
        for i in range(60):
            k = "pre:%d" % i
            (acked if write_ok(clients[i % 3], k) else failed).append(k)
        assert failed == []

        # item 4: fill the tmpfs to ~75% with a file: below 40% free
        with open(filler, "wb") as f:
            f.write(b"\0" * (TMPFS_BYTES * 3 // 4))
        cl.wait_until(lambda: info(full, "persistence")
                      .get("disk_low") == "1", "disk_low on the full node",
                      timeout=10, nodes=[full])
        pinfo = info(full, "persistence")
        assert int(pinfo["disk_free_bytes"]) < int(
            pinfo["disk_low_water_bytes"])
        assert "event=disk_low" in full.server.logs()
        assert metric(http_text(full.server.http_port, "/metrics"),
                      "ringkv_disk_low") == 1

        # phase 1: fill the rest by writing through every node until the
        # full node's engine goes read-only; every write must succeed
        t_full = None
        i = 0
        while t_full is None and i < 20000:
            k = "fill:%d" % i
            (acked if write_ok(clients[i % 3], k) else failed).append(k)
            i += 1
            if i % 50 == 0 and info(full, "persistence")[
                    "engine_read_only"] == "1":
                t_full = time.monotonic()
        assert t_full is not None, "the tmpfs never filled up"
        print("# writes until the tmpfs was full: %d (failed %d)" %
              (i, len(failed)))

        # the full node is degraded on every node
        def degraded_everywhere():
            return all(seen_of(cl, n, full.node_id) == "degraded"
                       for n in cl.nodes)
        cl.wait_until(degraded_everywhere, "node3 degraded on every node",
                      timeout=10)
        t_degraded = time.monotonic() - t_full
        for n in cl.nodes:
            ci = info(n, "cluster")
            assert ci["cluster_members_degraded"] == "1", ci
            assert ci["cluster_members_up"] == "3", ci
        assert info(full, "cluster")[
            "cluster_storage"] == "degraded"
        cl.wait_until(lambda: "full" in http_json(
            full.server.http_port, "/health")[1].get("reason", ""),
            "/health names the full disk", timeout=5, nodes=[full])
        status, h = http_json(full.server.http_port, "/health")
        assert status == 200 and h["status"] == "degraded", h
        assert "full" in h["reason"] and "by itself" in h["reason"], h
        _, cj = http_json(cl[0].server.http_port, "/cluster")
        st = {m["node_id"]: m["storage"] for m in cj["members"]}
        assert st == {cl[0].node_id: "ok", cl[1].node_id: "ok",
                      full.node_id: "degraded"}, cj["members"]
        assert metric(http_text(full.server.http_port, "/metrics"),
                      "ringkv_storage_degraded") == 1

        # phase 2: degraded; writes through every node (the full one too)
        # keep succeeding at W=2
        during = []
        for j in range(600):
            k = "deg:%d" % j
            if write_ok(clients[j % 3], k):
                acked.append(k)
                during.append((j % 3, k))
            else:
                failed.append(k)
        assert failed == [], "writes failed: %d, e.g. %s" % (
            len(failed), failed[:5])
        print("# acknowledged while degraded: %d of 600" % len(during))
        # reads through the degraded node still work
        assert clients[2].get(during[0][1]) == VALUE + during[0][1].encode()
        hints_held = sum(int(info(n, "cluster")["hints_pending"])
                         for n in cl.nodes[:2])
        assert hints_held >= 400, hints_held  # the peers' 400 writes

        # recovery: space returns; the node recovers in place (no restart)
        pid = full.server.pid
        os.unlink(filler)
        t_free = time.monotonic()

        def healthy_everywhere():
            return all(seen_of(cl, n, full.node_id) in ("up", "self")
                       for n in cl.nodes)
        cl.wait_until(healthy_everywhere, "node3 healthy again", timeout=30)
        t_healthy = time.monotonic() - t_free
        assert full.server.pid == pid and full.alive
        assert "event=storage_recovered" in full.server.logs()
        assert info(full, "persistence")["engine_read_only"] == "0"
        status, h = http_json(full.server.http_port, "/health")
        assert status == 200 and h["status"] == "ok", h

        def hints_drained():
            return all(info(n, "cluster")["hints_pending"] == "0"
                       for n in cl.nodes)
        cl.wait_until(hints_drained, "hints delivered", timeout=60)
        t_drained = time.monotonic() - t_free
        # the writes the peers coordinated while it was degraded reached it
        # through hints
        missing = [k for who, k in during if who != 2 and
                   full.client().execute_command("RINGKV.LOCALGET", k)
                   is None]
        assert missing == [], "%d hinted writes missing on node3, e.g. %s" % (
            len(missing), missing[:5])
        # it takes writes again: through itself, as a replica of them all
        assert write_ok(clients[2], "after:0")
        acked.append("after:0")
        assert full.client().execute_command("RINGKV.LOCALGET",
                                             "after:0") is not None
        print("# time to degraded on every node: %.2f s; healthy after "
              "space returned: %.2f s; hints drained: %.2f s" %
              (t_degraded, t_healthy, t_drained))

        # lost = 0: every acknowledged key at R=2 through every node
        lost = 0
        for n in cl.nodes:
            c = n.client()
            for k in acked:
                if c.get(k) != VALUE + k.encode():
                    lost += 1
        print("# acknowledged %d, lost %d (read through 3 nodes at R=2)" %
              (len(acked), lost))
        assert lost == 0
    finally:
        cl.close_clients()
        for n in cl.nodes:
            n.server.stop()
        umount(full.server.data_dir)


def test_single_node_full_disk_recovers_without_restart(server_factory):
    """Item 3 on a one-node cluster: writes fail while the disk is full
    (an error, never a false OK), /health says unavailable and what to do,
    and once space returns the node takes writes again by itself; every
    acknowledged write is still there."""
    s = server_factory(args=["--max-file-size", "262144",
                             "--disk-low-water", "40%"], start=False)
    ok, err = mount_tmpfs(s.data_dir, 4 * 1024 * 1024)
    if not ok:
        pytest.skip("cannot mount a tmpfs here (%s)" % err)
    filler = os.path.join(s.data_dir, "filler")
    try:
        s.start()
        c = s.client()
        with open(filler, "wb") as f:
            f.write(b"\0" * (3 * 1024 * 1024))
        acked, refused = [], 0
        for i in range(4000):
            k = "k:%d" % i
            if write_ok(c, k):
                acked.append(k)
            else:
                refused += 1
                if refused >= 20:
                    break
        assert refused >= 20, "the tmpfs never filled up"
        assert info(s, "persistence")["engine_read_only"] == "1"
        status, h = http_json(s.http_port, "/health")
        assert status == 503 and "full" in h["reason"], h
        os.unlink(filler)
        t0 = time.monotonic()
        deadline = t0 + 20
        while info(s, "persistence")["engine_read_only"] != "0":
            assert time.monotonic() < deadline, "no recovery in place"
            time.sleep(0.1)
        print("# single node: writable again %.2f s after space returned; "
              "%d acknowledged before the disk filled" %
              (time.monotonic() - t0, len(acked)))
        c = s.client()
        assert write_ok(c, "after")
        acked.append("after")
        assert http_json(s.http_port, "/health")[0] == 200
        assert "event=storage_recovered" in s.logs()
        missing = [k for k in acked if c.get(k) != VALUE + k.encode()]
        assert missing == []
        # and a restart reads the same back
        s.restart()
        c = s.client()
        missing = [k for k in acked if c.get(k) != VALUE + k.encode()]
        assert missing == []
    finally:
        s.stop()
        umount(s.data_dir)

"""The HTTP interface (issue 6) with Python's standard library against real
ringkvd processes: GET /health, /stats and /cluster, errors as JSON (404,
405 with Allow), hostile requests (a 100 KB request line, headers over the
limit, a slow-loris partial request) that must not block other clients.
"""
import base64
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.parse

import pytest
import redis

from cluster_util import cluster_factory_gen
from conftest import REPO, TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv HTTP API"),
]


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def request(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, dict(r.getheaders()), data
    finally:
        c.close()


def get_json(port, path):
    status, headers, data = request(port, "GET", path)
    assert headers.get("Content-Type") == "application/json", headers
    return status, json.loads(data)


def test_health_ok_and_node_id(server):
    status, j = get_json(server.http_port, "/health")
    assert status == 200
    assert j["status"] == "ok"
    assert j["node_id"]


def test_stats_has_the_info_figures_as_json(server):
    c = server.client()
    for i in range(10):
        c.set("k%d" % i, "v")
    status, j = get_json(server.http_port, "/stats")
    assert status == 200
    for section in ("server", "clients", "stats", "keyspace", "cluster"):
        assert section in j, sorted(j)
    assert isinstance(j["stats"]["total_commands_processed"], int)
    assert j["stats"]["total_commands_processed"] >= 10
    assert j["server"]["tcp_port"] == server.port
    # cluster_enabled is Redis Cluster's flag: 1 when CLUSTER SLOTS & co.
    # work, which they do on a member, a single node included (issue 13);
    # ringkv_cluster says the node runs the ringkv cluster code
    assert j["cluster"]["cluster_enabled"] == 1
    assert j["cluster"]["ringkv_cluster"] == 1


def test_cluster_lists_members_ring_and_agreement(cluster_factory):
    cl = cluster_factory(3)
    for n in cl.nodes:
        status, j = get_json(n.server.http_port, "/cluster")
        assert status == 200
        assert j["phase"] == "member" and j["agreement"] is True
        assert j["ring"]["size"] == 64 and len(j["ring"]["digest"]) == 16
        assert (j["n"], j["r"], j["w"]) == (3, 2, 2)
        assert j["hints_pending"] == 0 and j["members_up"] == 3
        assert sorted(m["node_id"] for m in j["members"]) == sorted(
            x.node_id for x in cl.nodes)
        assert sum(m["partitions"] for m in j["members"]) == 64
        me = [m for m in j["members"] if m["self"]]
        assert len(me) == 1 and me[0]["node_id"] == n.node_id
        assert all(m["up"] for m in j["members"])
    # a killed node is shown down
    cl.kill(cl.nodes[2])
    deadline = time.time() + 10
    while time.time() < deadline:
        _, j = get_json(cl.nodes[0].server.http_port, "/cluster")
        down = [m for m in j["members"] if not m["up"]]
        if down:
            break
        time.sleep(0.1)
    assert [m["node_id"] for m in down] == [cl.nodes[2].node_id]
    assert j["members_up"] == 2


def test_health_unavailable_while_removed(cluster_factory):
    cl = cluster_factory(3)
    victim = cl.nodes[2]
    assert cl.c(victim).set("x", "1")  # an empty node may leave: not this
    cl.kill(victim)
    cl.cli(cl.nodes[0], "cluster", "remove", victim.node_id, "--force")
    cl.restart(victim)
    deadline = time.time() + 15
    status, j = None, None
    while time.time() < deadline:
        status, j = get_json(victim.server.http_port, "/health")
        if status == 503:
            break
        time.sleep(0.1)
    assert status == 503, j
    assert j["status"] == "unavailable" and "not a member" in j["reason"]
    status, j = get_json(cl.nodes[0].server.http_port, "/health")
    assert status == 200


def test_errors_are_json_with_the_right_status(server):
    port = server.http_port
    status, headers, data = request(port, "GET", "/no/such/thing")
    assert status == 404
    j = json.loads(data)
    assert j["code"] == "not_found" and j["error"]
    status, headers, data = request(port, "DELETE", "/health")
    assert status == 405
    assert headers.get("Allow") == "GET, HEAD"
    assert json.loads(data)["code"] == "method_not_allowed"
    status, _, data = request(port, "HEAD", "/health")
    assert status == 200 and data == b""


def test_hostile_requests_do_not_block_others(server):
    port = server.http_port
    # a request line of 100 KB: refused, the server keeps serving
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        got = s.recv(4096)
        assert got == b"" or got.startswith(b"HTTP/1.1 4"), got[:80]
    # headers over the limit
    big = {"X-Big": "b" * 20000}
    try:
        status, _, _ = request(port, "GET", "/health", headers=big)
        assert status in (400, 413, 431)
    except (ConnectionError, http.client.HTTPException):
        pass
    # slow-loris: many partial requests held open
    lorises = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finished
        lorises.append(s)
    t0 = time.time()
    for _ in range(20):
        status, _, _ = request(port, "GET", "/health", timeout=5)
        assert status == 200
    elapsed = time.time() - t0
    assert elapsed < 5, "20 GETs took %.2fs with 50 partial requests open" % (
        elapsed)
    for s in lorises:
        s.close()
    # the RESP port is unaffected
    assert server.client().ping()


def test_http_port_off_and_in_config_get(server_factory):
    s = server_factory(args=["--http-port", "off"])
    assert s.client().config_get("http-port") == {"http-port": "off"}
    s2 = server_factory()
    assert s2.client().config_get("http-port") == {
        "http-port": str(s2.http_port)}


PROMTOOL = os.path.join(REPO, "build-tools", "promtool")


def metrics(port):
    status, headers, data = request(port, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return data.decode()


def sample(text, name, labels=""):
    """The value of one sample line `name{labels} v` (labels exact)."""
    want = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    raise AssertionError("no sample %s in /metrics" % want)


def test_metrics_pass_promtool_and_move_with_traffic(cluster_factory):
    assert os.access(PROMTOOL, os.X_OK), (
        "promtool missing: scripts/deps.sh test extracts it into build-tools/")
    cl = cluster_factory(3)
    a = cl.nodes[0]
    port = a.server.http_port
    before = metrics(port)
    c = cl.c(a)
    for i in range(50):
        c.set("m%d" % i, "v")
    for i in range(30):
        c.get("m%d" % i)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        c.execute_command("INCR", "m0")  # not an integer: an error reply
    time.sleep(0.5)  # at least two gossip rounds (200 ms)
    after = metrics(port)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=after.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()
    ok = 'command="set",result="ok"'
    assert sample(after, "ringkv_commands_total", ok) - \
        (sample(before, "ringkv_commands_total", ok)
         if 'command="set"' in before else 0) == 50
    assert sample(after, "ringkv_commands_total",
                  'command="get",result="ok"') == 30
    assert sample(after, "ringkv_commands_total",
                  'command="incr",result="error"') == 1
    w = sample(after, "ringkv_coordinator_request_duration_seconds_count",
               'class="write"')
    r = sample(after, "ringkv_coordinator_request_duration_seconds_count",
               'class="read"')
    assert w >= 50 and r >= 30
    assert sample(after, "ringkv_cluster_members_up") == 3
    assert sample(after, "ringkv_cluster_ring_agreement") == 1
    for n in cl.nodes[1:]:
        assert sample(after, "ringkv_peer_up", 'peer="%s"' % n.node_id) == 1
    assert sample(after, "ringkv_engine_keys") >= 50
    assert sample(after, "ringkv_resident_memory_bytes") > 1e6
    # gossip rounds run every 200 ms; fdatasync time adds up with syncs
    assert sample(after, "ringkv_gossip_messages_sent_total") > \
        sample(before, "ringkv_gossip_messages_sent_total")
    if sample(after, "ringkv_engine_syncs_total") > 0:
        assert sample(after, "ringkv_engine_sync_seconds_total") > 0
    # the replicas did replica work for those commands
    other = metrics(cl.nodes[1].server.http_port)
    assert sample(other, "ringkv_replica_request_duration_seconds_count",
                  'class="write"') >= 50


def test_metrics_answer_fast(server):
    port = server.http_port
    c = server.client()
    for i in range(200):
        c.set("f%d" % i, "v")
    t0 = time.time()
    for _ in range(20):
        metrics(port)
    per = (time.time() - t0) / 20
    print("GET /metrics: %.2f ms per request (ASan build)" % (per * 1000))


# --- the data API: /kv/{key} ----------------------------------------------

def test_kv_put_get_delete_binary_and_percent_encoded(server):
    port = server.http_port
    value = bytes(range(256)) * 4
    key = "a b/c%\u00e9\x00z"
    path = "/kv/" + urllib.parse.quote(key, safe="")
    status, _, _ = request(port, "PUT", path, body=value)
    assert status == 204
    status, headers, body = request(port, "GET", path)
    assert status == 200 and body == value
    assert headers["Content-Type"] == "application/octet-stream"
    # the same key through RESP
    assert server.client().get(key.encode()) == value
    server.client().set("from-resp", "r")
    assert request(port, "GET", "/kv/from-resp")[2] == b"r"
    assert request(port, "DELETE", path)[0] == 204
    assert request(port, "GET", path)[0] == 404
    assert request(port, "DELETE", path)[0] == 404


def test_kv_errors(server_factory):
    s = server_factory(args=["--requirepass", "pw"])
    port = s.http_port
    st, h, body = request(port, "GET", "/kv/k")
    assert st == 401 and "WWW-Authenticate" in h
    assert json.loads(body)["code"] == "unauthorized"
    auth = {"Authorization": "Bearer pw"}
    assert request(port, "PUT", "/kv/k", body=b"v", headers=auth)[0] == 204
    assert request(port, "GET", "/kv/k", headers=auth)[2] == b"v"
    assert request(port, "GET", "/kv/k",
                   headers={"Authorization": "Bearer no"})[0] == 401
    st, h, _ = request(port, "POST", "/kv/k", body=b"v", headers=auth)
    assert st == 405 and "PUT" in h["Allow"]
    assert request(port, "GET", "/kv/%zz", headers=auth)[0] == 400
    assert request(port, "GET", "/kv/", headers=auth)[0] == 400
    # a body over the 1 MiB limit: refused from its Content-Length (raw
    # socket: the server answers and closes before the body is sent)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sk:
        sk.sendall(b"PUT /kv/big HTTP/1.1\r\nHost: x\r\nAuthorization: "
                   b"Bearer pw\r\nContent-Length: %d\r\n\r\n" % (2 << 20))
        got = sk.recv(4096)
    assert got.startswith(b"HTTP/1.1 413"), got[:100]
    assert request(port, "GET", "/kv/big", headers=auth)[0] == 404


def test_kv_siblings_300_and_resolution_with_the_context(cluster_factory):
    cl = cluster_factory(3, args=["--w", "1", "--r", "1"])
    a, b, c = cl.nodes
    cl.partition([a], [b, c])
    assert request(a.server.http_port, "PUT", "/kv/s", body=b"left")[0] == 204
    time.sleep(0.01)
    assert request(b.server.http_port, "PUT", "/kv/s", body=b"right")[0] == 204
    cl.heal()
    for n in cl.nodes:
        assert cl.c(n).config_set("r", "3")
    st, h, body = request(c.server.http_port, "GET", "/kv/s")
    assert st == 300, body
    j = json.loads(body)
    vals = sorted(base64.b64decode(x["value"]) for x in j["siblings"])
    assert vals == [b"left", b"right"]
    assert j["context"] and h["X-Ringkv-Context"] == j["context"]
    st, _, _ = request(c.server.http_port, "PUT", "/kv/s", body=b"merged",
                       headers={"X-Ringkv-Context": j["context"]})
    assert st == 204
    for n in cl.nodes:
        st, h, body = request(n.server.http_port, "GET", "/kv/s")
        assert st == 200 and body == b"merged"
        assert h["X-Ringkv-Context"]
    st, _, body = request(a.server.http_port, "PUT", "/kv/s", body=b"x",
                          headers={"X-Ringkv-Context": "zz"})
    assert st == 400 and b"context" in body


def test_kv_no_quorum_is_503(cluster_factory):
    cl = cluster_factory(3)
    cl.kill(cl.nodes[1])
    cl.kill(cl.nodes[2])
    st, _, body = request(cl.nodes[0].server.http_port, "PUT", "/kv/q",
                          body=b"v", timeout=15)
    assert st == 503
    j = json.loads(body)
    assert j["code"] == "no_quorum" and "NOQUORUM" in j["error"]


def test_kv_client_gone_before_the_answer(cluster_factory):
    """The HTTP client closes its connection while the coordinator still
    waits for replicas (both peers SIGSTOPped): the late answer goes
    nowhere, nothing leaks or crashes (sanitizer logs are checked at
    teardown), and the node keeps serving."""
    cl = cluster_factory(3)
    a = cl.nodes[0]
    cl.pause(cl.nodes[1])
    cl.pause(cl.nodes[2])
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", a.server.http_port))
        s.sendall(b"PUT /kv/gone HTTP/1.1\r\nHost: x\r\nContent-Length: 1"
                  b"\r\n\r\nv")
        s.close()
    time.sleep(2.5)  # past the request timeout
    cl.resume_all()
    cl.wait_converged(timeout=30)
    assert request(a.server.http_port, "GET", "/health")[0] == 200
    assert request(a.server.http_port, "PUT", "/kv/after", body=b"ok",
                   timeout=15)[0] == 204


def test_slow_request_log(cluster_factory):
    """Issue 6 item 5: a coordinated command slower than --slow-log-ms is
    logged with its command, key count, duration and result."""
    cl = cluster_factory(3, args=["--slow-log-ms", "300",
                                  "--request-timeout-ms", "1000"])
    a = cl.nodes[0]
    assert cl.c(a).set("fast", "v")
    cl.pause(cl.nodes[1])
    cl.pause(cl.nodes[2])
    with pytest.raises(redis.ResponseError, match="NOQUORUM"):
        cl.c(a).set("slow", "v")
    cl.resume_all()
    deadline = time.time() + 5
    while time.time() < deadline and "event=slow_request" not in \
            a.server.logs():
        time.sleep(0.05)
    logs = a.server.logs()
    line = [ln for ln in logs.splitlines() if "event=slow_request" in ln
            and "result=error" in ln]
    assert len(line) == 1, "slow_request lines: %r" % line
    assert "command=set" in line[0] and "keys=1" in line[0]
    assert cl.c(a).config_get("slow-log-ms") == {"slow-log-ms": "300"}


def request_all_headers(port, method, path, headers=None):
    """Like request(), but the headers as (name, value) pairs (repeated
    headers kept)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, r.getheaders()
    finally:
        c.close()


def test_kv_basic_auth(server_factory):
    """Authorization: Basic (RFC 7617) with an ACL user and its password
    ("default" and requirepass here; tests/integration/test_acl.py has
    other users).  Both schemes are offered on 401."""
    s = server_factory(args=["--requirepass", "s3cret:x"])
    port = s.http_port

    def basic(cred):
        return {"Authorization": "Basic " +
                base64.b64encode(cred).decode()}

    st, hs = request_all_headers(port, "GET", "/kv/k")
    assert st == 401
    offered = sorted(v.split()[0] for k, v in hs if k == "WWW-Authenticate")
    assert offered == ["Basic", "Bearer"], hs
    assert request(port, "PUT", "/kv/k", body=b"v",
                   headers=basic(b"default:s3cret:x"))[0] == 204
    assert request(port, "GET", "/kv/k",
                   headers=basic(b"default:s3cret:x"))[2] == b"v"
    for bad in (basic(b"default:s3cret"), basic(b"s3cret:x"),
                basic(b"alice:s3cret:x"), basic(b":s3cret:x"),
                basic(b"default:s3cret:xy"),
                {"Authorization": "Basic !!!!"},
                {"Authorization": "Basic " + "QUFB" * 400},
                {"Authorization": "Basic"}):
        # 401; from the fourth failure on the IP waits (issue 15,
        # auth_guard.h) and credentials are answered 429 unchecked
        assert request(port, "GET", "/kv/k", headers=bad)[0] in (401, 429), \
            bad
    deadline = time.monotonic() + 8
    while True:
        st = request(port, "GET", "/kv/k",
                     headers={"Authorization": "bearer s3cret:x"})[0]
        if st != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert st == 200


def test_kv_content_type_standalone(server):
    """Content-Type given on PUT is stored and returned on GET; RESP sees
    only the value, and a RESP write drops the type."""
    port = server.http_port
    c = server.client()
    ct = "application/json; charset=utf-8"
    st, _, _ = request(port, "PUT", "/kv/doc", body=b'{"a":1}',
                       headers={"Content-Type": ct})
    assert st == 204
    st, h, body = request(port, "GET", "/kv/doc")
    assert st == 200 and body == b'{"a":1}' and h["Content-Type"] == ct
    assert c.get("doc") == b'{"a":1}'
    assert c.strlen("doc") == 7
    assert c.execute_command("RINGKV.LOCALGET", "doc") == b'{"a":1}'
    ctx, sibs = c.execute_command("RINGKV.GETALL", "doc")
    assert len(sibs) == 1 and sibs[0][0] == b'{"a":1}' and len(sibs[0]) == 3
    # a TTL change keeps the type; a RESP write drops it
    assert c.expire("doc", 1000)
    assert request(port, "GET", "/kv/doc")[1]["Content-Type"] == ct
    assert c.persist("doc")
    assert request(port, "GET", "/kv/doc")[1]["Content-Type"] == ct
    assert c.getex("doc", px=500000) == b'{"a":1}'
    assert request(port, "GET", "/kv/doc")[1]["Content-Type"] == ct
    assert c.ttl("doc") > 400
    assert c.append("doc", "!") == 8
    st, h, body = request(port, "GET", "/kv/doc")
    assert body == b'{"a":1}!'
    assert h["Content-Type"] == "application/octet-stream"
    # survives a restart (stored with the record)
    request(port, "PUT", "/kv/img", body=bytes(range(256)),
            headers={"Content-Type": "image/png"})
    server.restart()
    st, h, body = request(server.http_port, "GET", "/kv/img")
    assert st == 200 and body == bytes(range(256))
    assert h["Content-Type"] == "image/png"
    # bad types are refused
    for bad in ("x" * 128, "text/\x7fplain"):
        st, _, body = request(server.http_port, "PUT", "/kv/bad", body=b"v",
                              headers={"Content-Type": bad})
        assert st == 400 and b"Content-Type" in body, bad
    st, _, _ = request(server.http_port, "PUT", "/kv/ok", body=b"v",
                       headers={"Content-Type": "x" * 127})
    assert st == 204


def test_kv_content_type_in_a_cluster(cluster_factory):
    """The type is a field of the sibling: every replica stores it, every
    node returns it, and siblings list their own types."""
    cl = cluster_factory(3, args=["--w", "1", "--r", "1"])
    a, b, c = cl.nodes
    st, _, _ = request(a.server.http_port, "PUT", "/kv/t", body=b"<p>hi</p>",
                       headers={"Content-Type": "text/html"})
    assert st == 204
    cl.wait_until(lambda: all(
        cl.c(n).execute_command("RINGKV.LOCALGET", "t") == b"<p>hi</p>"
        for n in cl.nodes), "the typed value on every replica", timeout=10)
    for n in cl.nodes:
        st, h, body = request(n.server.http_port, "GET", "/kv/t")
        assert (st, body, h["Content-Type"]) == (200, b"<p>hi</p>",
                                                  "text/html")
        assert cl.c(n).get("t") == b"<p>hi</p>"
    # read-modify-writes in the cluster: TTL changes keep the type, writes
    # drop it, reads never see it
    assert cl.c(b).expire("t", 1000)
    assert request(c.server.http_port, "GET", "/kv/t")[1][
        "Content-Type"] == "text/html"
    assert cl.c(b).getrange("t", 0, 2) == b"<p>"
    assert cl.c(b).strlen("t") == 9
    assert cl.c(b).set("t", "x", get=True) == b"<p>hi</p>"
    # W=1 and R=1 here: the other replicas see it a moment later
    def untyped_everywhere():
        for n in cl.nodes:
            _, h, body = request(n.server.http_port, "GET", "/kv/t")
            if (body, h["Content-Type"]) != (b"x",
                                             "application/octet-stream"):
                return False
        return True

    cl.wait_until(untyped_everywhere, "the untyped value on every node",
                  timeout=10)
    # two concurrent writes with different types
    cl.partition([a], [b, c])
    request(a.server.http_port, "PUT", "/kv/two", body=b"1",
            headers={"Content-Type": "text/plain"})
    time.sleep(0.01)
    request(b.server.http_port, "PUT", "/kv/two", body=b"{}",
            headers={"Content-Type": "application/json"})
    cl.heal()
    for n in cl.nodes:
        assert cl.c(n).config_set("r", "3")
    st, _, body = request(c.server.http_port, "GET", "/kv/two")
    assert st == 300, body
    got = sorted((base64.b64decode(x["value"]), x["content_type"])
                 for x in json.loads(body)["siblings"])
    assert got == [(b"1", "text/plain"), (b"{}", "application/json")]


def test_kv_quorum_overrides(cluster_factory):
    """Query parameters r, w, n and timeout_ms override the configured
    quorum per request (N only downwards), with 400 for bad values and 503
    saying how many replicas answered."""
    cl = cluster_factory(3, args=["--request-timeout-ms", "5000"])
    a, b, c = cl.nodes
    port = a.server.http_port
    assert request(port, "PUT", "/kv/q", body=b"v0")[0] == 204
    # bad values
    for qs in ("n=4", "n=0", "r=4", "w=5", "r=x", "n=2&r=3", "w=-1",
               "timeout_ms=0", "timeout_ms=600001", "timeout_ms=1e3",
               "rr=1", "r=1&bogus=2"):
        st, _, body = request(port, "GET", "/kv/q?" + qs)
        assert st == 400, (qs, body)
        assert json.loads(body)["code"] == "bad_request"
    for qs in ("r=1", "r=one", "r=quorum", "r=all", "r=default", "n=3&r=3",
               "n=1&r=1", "timeout_ms=100000"):
        st, _, body = request(port, "GET", "/kv/q?" + qs)
        assert (st, body) == (200, b"v0"), qs
    # n=1: only the first replica of the preference list stores the write
    assert request(port, "PUT", "/kv/only1?n=1&w=1", body=b"x")[0] == 204
    time.sleep(0.3)
    held = [n for n in cl.nodes
            if cl.c(n).execute_command("RINGKV.LOCALGET", "only1") == b"x"]
    assert len(held) == 1, held
    # one replica paused: r=all waits for it, timeout_ms cuts the wait
    cl.pause(c)
    t0 = time.monotonic()
    st, _, body = request(port, "GET", "/kv/q?r=all&timeout_ms=300")
    elapsed = time.monotonic() - t0
    j = json.loads(body)
    assert st == 503 and j["code"] == "no_quorum", body
    assert (j["replicas_answered"], j["replicas_needed"]) == (2, 3)
    assert elapsed < 4.0, elapsed  # not the configured 5 s
    assert request(port, "GET", "/kv/q?r=2")[2] == b"v0"
    cl.resume(c)
    # two replicas down: W=2 fails and says so, w=1 is accepted
    cl.kill(b)
    cl.kill(c)
    st, _, body = request(port, "PUT", "/kv/w", body=b"v", timeout=15)
    j = json.loads(body)
    assert st == 503 and j["replicas_needed"] == 2, body
    assert j["replicas_answered"] == 1
    assert request(port, "PUT", "/kv/w?w=1", body=b"v1",
                   timeout=15)[0] == 204
    assert request(port, "GET", "/kv/w?r=1")[2] == b"v1"
    st, _, body = request(port, "GET", "/kv/w")
    assert st == 503 and json.loads(body)["replicas_needed"] == 2


def test_kv_delete_with_the_context(cluster_factory):
    """DELETE with X-Ringkv-Context removes exactly the siblings the
    context covers (RINGKV.DEL); a concurrent value survives it."""
    cl = cluster_factory(3)
    a, b, _ = cl.nodes
    port = a.server.http_port
    assert request(port, "PUT", "/kv/d", body=b"v1")[0] == 204
    st, h, _ = request(port, "GET", "/kv/d")
    ctx1 = h["X-Ringkv-Context"]
    # a write concurrent with v1 (empty context: it has seen nothing)
    assert cl.c(b).execute_command("RINGKV.PUT", "d", "", "v2") == b"OK"
    st, _, body = request(port, "GET", "/kv/d")
    assert st == 300
    st, _, _ = request(port, "DELETE", "/kv/d",
                       headers={"X-Ringkv-Context": ctx1})
    assert st == 204
    # v1 is gone; the delete had not seen v2, so it stands beside v2 as a
    # deleted sibling (as in Riak) until a context covering both resolves
    for n in cl.nodes:
        st, h, body = request(n.server.http_port, "GET", "/kv/d")
        assert st == 300, body
        sibs = json.loads(body)["siblings"]
        assert sorted((x["deleted"], x["value"]) for x in sibs) == [
            (False, base64.b64encode(b"v2").decode()), (True, None)]
    ctx2 = h["X-Ringkv-Context"]
    st, _, _ = request(port, "DELETE", "/kv/d",
                       headers={"X-Ringkv-Context": ctx2})
    assert st == 204
    for n in cl.nodes:
        assert request(n.server.http_port, "GET", "/kv/d")[0] == 404
    st, _, body = request(port, "DELETE", "/kv/nothing",
                          headers={"X-Ringkv-Context": ctx2})
    assert st == 404, body
    st, _, body = request(port, "DELETE", "/kv/d",
                          headers={"X-Ringkv-Context": "nothex"})
    assert st == 400 and b"context" in body
    # the RESP command behind it
    cl.c(a).set("r", "x")
    ctx, _ = cl.c(a).execute_command("RINGKV.GETALL", "r")
    assert cl.c(a).execute_command("RINGKV.DEL", "r", ctx) == 1
    assert cl.c(b).get("r") is None
    _, sibs = cl.c(a).execute_command("RINGKV.GETALL", "r")
    # a retried (or stale) delete covers no live value: it answers 0 and
    # writes nothing, so retries cannot pile up tombstones
    for _ in range(5):
        assert cl.c(a).execute_command("RINGKV.DEL", "r", ctx) == 0
    assert cl.c(a).execute_command("RINGKV.GETALL", "r")[1] == sibs
    cl.c(a).set("live", "v1")
    for _ in range(5):
        assert cl.c(a).execute_command("RINGKV.DEL", "live", "") == 0
    _, sibs = cl.c(b).execute_command("RINGKV.GETALL", "live")
    assert [x[0] for x in sibs] == [b"v1"]
    assert cl.c(a).get("live") == b"v1"
    # not inside a transaction (queued copies would not see the siblings)
    for args in (("RINGKV.DEL", "live", ""), ("RINGKV.PUT", "live", "", "x"),
                 ("RINGKV.GETALL", "live")):
        p = cl.c(a).pipeline(transaction=True)
        p.execute_command(*args)
        with pytest.raises(redis.ResponseError):
            p.execute()
    assert cl.c(a).get("live") == b"v1"


def test_kv_delete_with_context_standalone(server):
    port = server.http_port
    request(port, "PUT", "/kv/s", body=b"v")
    _, h, _ = request(port, "GET", "/kv/s")
    ctx = h.get("X-Ringkv-Context", "")
    c = server.client()
    assert c.execute_command("RINGKV.DEL", "s", ctx) == 1
    assert c.execute_command("RINGKV.DEL", "s", ctx) == 0
    with pytest.raises(redis.ResponseError, match="context"):
        c.execute_command("RINGKV.DEL", "s", "zz")


def test_request_log_switch_and_node_id_on_every_line(server_factory,
                                                      cluster_factory):
    """Issue 6 item 5: every log line carries the node id (from the first
    one); request logging is off by default, on with --log-requests (also
    CONFIG SET), for RESP and HTTP, in logfmt and JSON."""
    s = server_factory(args=["--node-id", "alpha"])
    c = s.client()
    c.set("a", "1")
    request(s.http_port, "PUT", "/kv/b", body=b"2")
    c.incr("a")
    time.sleep(0.2)
    lines = [ln for ln in s.logs().splitlines() if ln.strip()]
    assert lines and all(" node=alpha " in ln for ln in lines), lines[:3]
    assert "event=starting" in lines[0]
    assert not any("event=request " in ln for ln in lines)
    assert c.config_set("log-requests", "on")
    c.set("a", "x")
    with pytest.raises(redis.ResponseError):
        c.incr("a")
    with pytest.raises(redis.ResponseError):
        c.execute_command("NOSUCHCMD", "x")
    assert request(s.http_port, "GET", "/kv/%zz")[0] == 400
    request(s.http_port, "PUT", "/kv/b", body=b"3")
    deadline = time.time() + 5
    while time.time() < deadline and s.logs().count("event=request ") < 6:
        time.sleep(0.05)
    req = [ln for ln in s.logs().splitlines() if "event=request " in ln]
    assert any("command=set" in ln and "result=ok" in ln and
               "client=127.0.0.1:" in ln for ln in req), req
    assert any("command=incr" in ln and "result=error" in ln
               for ln in req), req
    assert any("command=unknown" in ln and "result=error" in ln
               for ln in req), req
    assert any("command=http status=400" in ln and "client=http:" in ln
               for ln in req), req
    assert any("command=set" in ln and "client=http:127.0.0.1:" in ln
               for ln in req), req
    assert c.config_get("log-requests") == {"log-requests": "on"}
    # JSON lines in a cluster node: the coordinated path logs too
    cl = cluster_factory(2, args=["--log-format", "json", "--log-requests",
                                  "on"])
    n = cl.nodes[0]
    cl.c(n).set("k", "v")
    cl.c(n).get("k")
    deadline = time.time() + 5
    objs = []
    while time.time() < deadline:
        objs = [json.loads(ln) for ln in n.server.logs().splitlines()
                if ln.startswith("{")]
        if sum(o.get("event") == "request" for o in objs) >= 2:
            break
        time.sleep(0.05)
    assert objs and all(o.get("node") == n.node_id for o in objs), objs[:3]
    cmds = [o["command"] for o in objs if o.get("event") == "request"]
    assert "set" in cmds and "get" in cmds, cmds


def status_line(port, method, path, body=None, headers=None):
    """The raw status line of one answer (reason phrase included)."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        hdr = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        body = body or b""
        s.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                   "%d\r\nConnection: close\r\n%s\r\n" %
                   (method, path, len(body), hdr)).encode() + body)
        data = b""
        while b"\r\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
        return data.split(b"\r\n", 1)[0].decode()
    finally:
        s.close()


def test_standard_reason_phrases(server):
    """Issue 17 item 3: every status carries its standard reason."""
    p = server.http_port
    assert status_line(p, "GET", "/health") == "HTTP/1.1 200 OK"
    assert status_line(p, "GET", "/kv/nope") == "HTTP/1.1 404 Not Found"
    assert status_line(p, "POST", "/kv/x") == \
        "HTTP/1.1 405 Method Not Allowed"
    assert status_line(p, "GET", "/kv/%zz") == "HTTP/1.1 400 Bad Request"


def test_conditional_writes_are_refused_not_ignored(server):
    """Issue 17 item 3: If-None-Match: * on PUT was silently ignored (the
    write happened); conditional writes are refused with 501 until they
    exist, and nothing is written."""
    p = server.http_port
    st, h, body = request(p, "PUT", "/kv/cond", body=b"v",
                          headers={"If-None-Match": "*"})
    assert st == 501, body
    assert b"conditional writes are not implemented" in body
    assert status_line(p, "PUT", "/kv/cond", body=b"v",
                       headers={"If-Match": "*"}) == \
        "HTTP/1.1 501 Not Implemented"
    assert request(p, "GET", "/kv/cond")[0] == 404
    assert request(p, "PUT", "/kv/cond", body=b"v")[0] == 204

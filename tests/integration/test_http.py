"""The HTTP interface (issue 6) with Python's standard library against real
ringkvd processes: GET /health, /stats and /cluster, errors as JSON (404,
405 with Allow), hostile requests (a 100 KB request line, headers over the
limit, a slow-loris partial request) that must not block other clients.
"""
import http.client
import json
import socket
import time

import pytest

from cluster_util import cluster_factory_gen
from conftest import TARGET

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
    assert j["cluster"]["cluster_enabled"] == 1


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
    cl.cli(cl.nodes[0], "cluster", "remove", victim.node_id)
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

"""The status page (GET /, issue 6 item 4) in headless Chromium: Debian's
chromium driven by playwright-core (from npm, installed once per session
into a temporary directory) against a live 3-node cluster.  The nodes and
the ring appear; a node stopped with SIGKILL is shown down, with a banner,
within 10 s; the page fits a phone-sized viewport; screenshots are saved
as artifacts (RINGKV_ARTIFACTS, default a temp dir, printed).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from cluster_util import cluster_factory_gen
from conftest import TARGET
from test_http import request
from test_node_clients import NODE_DIR
from test_node_cluster_clients import node_bin as _node

NETWORK_ERRORS = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|"
    r"EHOSTUNREACH|network|getaddrinfo|socket hang up|request to .* failed",
    re.I)

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv status page"),
]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


@pytest.fixture(scope="session")
def playwright_modules(tmp_path_factory):
    node, npm = _node(), shutil.which("npm")
    if node is None or npm is None or not os.path.exists(CHROMIUM):
        pytest.fail("node, npm or chromium missing (scripts/deps.sh test "
                    "installs them)")
    prefix = str(tmp_path_factory.mktemp("npm-pw"))
    p = subprocess.run([npm, "install", "--prefix", prefix, "--no-audit",
                        "--no-fund", "--no-save", "--loglevel", "error",
                        "playwright-core@1"], capture_output=True,
                       timeout=300)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    if p.returncode != 0:
        if NETWORK_ERRORS.search(out):
            pytest.skip("npm cannot reach its registry: %s" % out[-300:])
        pytest.fail("npm install playwright-core failed:\n%s" % out[-3000:])
    return os.path.join(prefix, "node_modules")


class Page:
    def __init__(self, modules, url, shots):
        env = dict(os.environ, NODE_PATH=modules)
        self.p = subprocess.Popen(
            [_node(), os.path.join(NODE_DIR, "status_page.js"), url, shots],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            cwd=NODE_DIR)

    def ask(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        got = json.loads(self.p.stdout.readline() or b'{"fatal": "eof"}')
        assert "error" not in got and "fatal" not in got, got
        return got

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(20)
        except Exception:
            self.p.kill()


def test_status_page_shows_nodes_ring_and_a_node_down(cluster_factory,
                                                     playwright_modules):
    cl = cluster_factory(3)
    a = cl.nodes[0]
    status, headers, body = request(a.server.http_port, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    # one self-contained file: no external scripts, styles or fonts
    assert b"<script>" in body
    assert b"src=" not in body and b"<link" not in body and b"@import" \
        not in body
    for i in range(100):
        cl.c(a).set("page%d" % i, "v")
    shots = os.environ.get("RINGKV_ARTIFACTS") or tempfile.mkdtemp(
        prefix="ringkv-status-page-")
    os.makedirs(shots, exist_ok=True)
    page = Page(playwright_modules, "http://127.0.0.1:%d/" %
                a.server.http_port, shots)
    try:
        r = page.ask("wait_nodes 3")
        assert sorted(r["nodes"]) == sorted(n.node_id for n in cl.nodes)
        assert r["parts"] == 64
        assert sorted(r["owners"]) == sorted(n.node_id for n in cl.nodes)
        assert set(r["states"].values()) == {"up"}
        assert r["filled"] == 3  # every node's /stats was read (CORS)
        assert r["errors"] == []
        page.ask("shot status-3-up")
        victim = cl.nodes[2]
        cl.kill(victim)
        r = page.ask("wait_down %s 10000" % victim.node_id)
        print("status page: %s shown down %.1f s after SIGKILL (target "
              "10 s)" % (victim.node_id, r["down_after_ms"] / 1000))
        assert victim.node_id in r["banner"]
        got = page.ask("shot status-node-down")
        assert os.path.getsize(got["file"]) > 10000
        m = page.ask("mobile")
        assert m["scroll_width"] <= 400, m  # no sideways scrolling
        page.ask("shot status-phone")
        print("status page screenshots in %s" % shots)
    finally:
        page.close()


def test_status_page_shows_a_transition_and_its_transfers(
        cluster_factory, playwright_modules):
    """A join throttled to 1 MiB/s: the page shows the transition (epoch,
    partitions pending) and the partitions the joining node receives,
    with their sources, read from that node's /cluster; the joining node
    is listed as "joining"."""
    cl = cluster_factory(4, form=3, args=["--handoff-max-mbps", "1"])
    a, d = cl.nodes[0], cl.nodes[3]
    for i in range(0, 6000, 500):
        p = cl.c(a).pipeline(transaction=False)
        for k in range(i, i + 500):
            p.set("tp:%d" % k, "v" * 1000)
        p.execute()
    shots = os.environ.get("RINGKV_ARTIFACTS") or tempfile.mkdtemp(
        prefix="ringkv-status-page-")
    os.makedirs(shots, exist_ok=True)
    page = Page(playwright_modules, "http://127.0.0.1:%d/" %
                a.server.http_port, shots)
    try:
        page.ask("wait_nodes 3")
        cl.join(d, a)
        r = page.ask("wait_transition 15000")
        print("status page during a join: %s; transfers %r" % (
            r["summary"], r["rows"][:4]))
        assert "partitions pending" in r["summary"]
        assert {x["node"] for x in r["rows"]} == {d.node_id}
        assert r["errors"] == []
        page.ask("shot status-transition")
    finally:
        page.close()

"""ioredis and node-redis ("redis" on npm), the versions pinned in
tests/clients/package.json and package-lock.json (installed by `npm ci`:
scripts/deps.sh test, or the node_modules fixture of
test_node_cluster_clients.py when tests/clients/node_modules is
missing), each running a small script from tests/integration/node/ that
connects (HELLO 3, CLIENT SETINFO, ioredis's INFO ready check), does
set/get/mget, pipelines and MULTI/EXEC, and prints JSON that is checked
here; both again over TLS with a client certificate and an ACL user
(issue 15).  Bump the pins in tests/clients to test newer releases.
"""
import json
import os
import subprocess

import pytest

from conftest import AUTH_PASSWORD
from test_node_cluster_clients import node_bin, node_modules  # noqa: F401

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


def run_script(node_modules, script, *args, timeout=60,  # noqa: F811
               extra_env=None):
    env = dict(os.environ, NODE_PATH=node_modules)
    env.update(extra_env or {})
    p = subprocess.run([node_bin(), os.path.join(NODE_DIR, script)] +
                       [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=timeout)
    stdout = p.stdout.decode("utf-8", "replace")
    stderr = p.stderr.decode("utf-8", "replace")
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    assert lines, "no JSON from %s (rc %d)\nstdout: %s\nstderr: %s" % (
        script, p.returncode, stdout[-2000:], stderr[-2000:])
    out = json.loads(lines[-1])
    assert "fatal" not in out, "%s failed: %s\nstderr: %s" % (
        script, out["fatal"], stderr[-2000:])
    assert p.returncode == 0, (p.returncode, stderr[-2000:])
    return out


def check_common(out, prefix):
    assert out["set"] == "OK"
    assert out["get"] == "1"
    assert out["get_missing"] is None
    assert out["mget"] == ["1", "2", None, "three"]
    assert out["bin_ok"] is True
    assert 98 <= out["ttl"] <= 100
    assert out["setnx"] is None
    assert out["scan"] == sorted(prefix + k for k in
                                 ("a", "b", "bin\x00", "c", "n", "p", "t"))
    assert out["info_has_version"] is True
    assert out["incr_error"] == "ERR value is not an integer or out of range"
    assert out["errors"] == []


@pytest.mark.parametrize("protocol", [3, 2])
def test_ioredis(server, node_modules, protocol):
    out = run_script(node_modules, "ioredis_smoke.js", server.port, protocol)
    assert int(out["version"].split(".")[0]) >= 5
    assert out["status"] == "ready"
    check_common(out, "io:")
    assert out["pipeline"] == [[None, "OK"], [None, "v"], [None, 1],
                               [None, 42], [None, 1]]
    assert out["multi"] == [[None, "OK"], [None, 2], [None, "xy"],
                            [None, 1]]
    assert out["dbsize"] == 7
    assert out["quit"] == "OK"


@pytest.mark.parametrize("resp", [3, 2])
def test_node_redis(server, node_modules, resp):
    out = run_script(node_modules, "node_redis_smoke.js", server.port, resp)
    assert int(out["version"].split(".")[0]) >= 4
    check_common(out, "nr:")
    assert out["autopipeline"] == ["OK", "v", 1, 42, 1]
    assert out["pipeline"] == ["OK", "w", 1]
    assert out["multi"] == ["OK", 2, "xy", 1]
    assert out["dbsize"] == 7


def test_ioredis_with_password(auth_server, node_modules):
    out = run_script(node_modules, "ioredis_smoke.js", auth_server.port, 3,
                     AUTH_PASSWORD)
    check_common(out, "io:")


def test_node_redis_with_password(auth_server, node_modules):
    out = run_script(node_modules, "node_redis_smoke.js", auth_server.port,
                     3, AUTH_PASSWORD)
    check_common(out, "nr:")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from conftest import REPO
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", os.path.join(REPO, "scripts",
                                         "gen-test-certs.sh"), str(d)],
                   check=True, capture_output=True)
    return d


@pytest.mark.parametrize("script,prefix", [("ioredis_smoke.js", "io:"),
                                           ("node_redis_smoke.js", "nr:")])
def test_node_clients_over_tls_as_an_acl_user(server_factory, node_modules,
                                              certs, script, prefix):
    """Issue 15: ioredis and node-redis with `tls` (a client certificate,
    tls-auth-clients yes) and an ACL user name (AUTH user pass / HELLO 3
    AUTH user pass) work as they do in the clear."""
    from conftest import free_port
    port = free_port()
    srv = server_factory(args=[
        "--tls-port", str(port), "--tls-cert-file", str(certs / "server.crt"),
        "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"),
        "--tls-auth-clients", "yes", "--requirepass", "adminpw"])
    admin = srv.client(password="adminpw")
    admin.execute_command("ACL", "SETUSER", "app", "on", ">apppw",
                          "~" + prefix + "*", "+@all", "-@dangerous",
                          "+info")
    env = {"RINGKV_USER": "app", "RINGKV_TLS_CA": str(certs / "ca.crt"),
           "RINGKV_TLS_CERT": str(certs / "client.crt"),
           "RINGKV_TLS_KEY": str(certs / "client.key")}
    out = run_script(node_modules, script, port, 3, "apppw", extra_env=env)
    check_common(out, prefix)
    # (the default user's password is adminpw: "apppw" worked only as app's)
    assert admin.get(prefix + "n") == b"42"
    # without the client certificate the TLS port refuses the client
    env2 = dict(env)
    del env2["RINGKV_TLS_CERT"], env2["RINGKV_TLS_KEY"]
    with pytest.raises(AssertionError):
        run_script(node_modules, script, port, 3, "apppw", extra_env=env2,
                   timeout=30)
    # the wrong password for the user
    with pytest.raises(AssertionError):
        run_script(node_modules, script, port, 3, "wrong", extra_env=env,
                   timeout=30)
    admin.close()


def test_both_clients_share_one_server(server, node_modules):
    run_script(node_modules, "ioredis_smoke.js", server.port, 3)
    run_script(node_modules, "node_redis_smoke.js", server.port, 3)
    c = server.client()
    try:
        assert c.dbsize() == 14
        assert c.get("io:n") == b"42" and c.get("nr:n") == b"42"
    finally:
        c.close()

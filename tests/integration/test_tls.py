"""TLS for RESP clients (issue 15 item 2), through a real ringkvd and real
clients: redis-cli --tls, redis-benchmark --tls and redis-py ssl=True work
with a test CA (scripts/gen-test-certs.sh); a client without a
certificate is refused when tls-auth-clients is yes and let in when it is
no; TLS 1.1 and plain RESP on the TLS port are refused; CONFIG SET of the
certificate files reloads them for new connections without a restart,
and a bad file is refused with the old certificates kept."""
import os
import socket
import ssl
import subprocess
import time

import pytest
import redis

from conftest import REPO, free_port  # noqa: F401


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", os.path.join(REPO, "scripts", "gen-test-certs.sh"),
                    str(d / "a")], check=True, capture_output=True)
    subprocess.run(["bash", os.path.join(REPO, "scripts", "gen-test-certs.sh"),
                    str(d / "b")], check=True, capture_output=True)
    return d


def tls_args(certs, which="a", auth="yes"):
    d = certs / which
    return ["--tls-port", str(free_port()),
            "--tls-cert-file", str(d / "server.crt"),
            "--tls-key-file", str(d / "server.key"),
            "--tls-ca-cert-file", str(d / "ca.crt"),
            "--tls-auth-clients", auth]


def tls_port(srv):
    return int(srv.args[srv.args.index("--tls-port") + 1])


def cli(certs, port, *args, cert=True, which="a"):
    d = certs / which
    argv = ["redis-cli", "-p", str(port), "--tls", "--cacert",
            str(d / "ca.crt")]
    if cert:
        argv += ["--cert", str(d / "client.crt"), "--key",
                 str(d / "client.key")]
    return subprocess.run(argv + list(args), capture_output=True, text=True,
                          timeout=30)


def client(certs, port, cert=True, which="a"):
    d = certs / which
    kw = dict(port=port, ssl=True, ssl_ca_certs=str(d / "ca.crt"),
              socket_timeout=10)
    if cert:
        kw.update(ssl_certfile=str(d / "client.crt"),
                  ssl_keyfile=str(d / "client.key"))
    return redis.Redis(**kw)


def peer_cert(certs, port, which="a"):
    ctx = ssl.create_default_context(cafile=str(certs / which / "ca.crt"))
    ctx.load_cert_chain(str(certs / which / "client.crt"),
                        str(certs / which / "client.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True)


def test_tls_clients_work_and_unauthenticated_ones_are_refused(
        server_factory, certs):
    srv = server_factory(args=tls_args(certs))
    port = tls_port(srv)
    r = cli(certs, port, "set", "k", "over-tls")
    assert r.stdout.strip() == "OK", r.stdout + r.stderr
    assert cli(certs, port, "get", "k").stdout.strip() == "over-tls"
    c = client(certs, port)
    assert c.ping() is True
    p = c.pipeline(transaction=False)
    for i in range(1000):
        p.set("t:%d" % i, "v%d" % i)
    assert all(x is True for x in p.execute())
    assert c.get("t:999") == b"v999"
    assert srv.client().get("t:999") == b"v999"  # the same data, plain port
    c.close()
    # no client certificate: refused during the handshake
    r = cli(certs, port, "ping", cert=False)
    assert "PONG" not in r.stdout
    with pytest.raises(redis.ConnectionError):
        client(certs, port, cert=False).ping()
    # a certificate from another CA: refused
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, ssl=True, socket_timeout=10,
                    ssl_ca_certs=str(certs / "a" / "ca.crt"),
                    ssl_certfile=str(certs / "b" / "client.crt"),
                    ssl_keyfile=str(certs / "b" / "client.key")).ping()
    # TLS 1.1 is not offered
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(certs / "a" / "ca.crt"))
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(s, server_hostname="localhost")
    # plain RESP on the TLS port gets nothing back
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except (socket.timeout, ConnectionResetError):
            data = b""
        assert b"PONG" not in data
    # redis-benchmark --tls
    d = certs / "a"
    b = subprocess.run(["redis-benchmark", "-p", str(port), "--tls",
                        "--cacert", str(d / "ca.crt"), "--cert",
                        str(d / "client.crt"), "--key",
                        str(d / "client.key"), "-t", "set,get", "-n", "2000",
                        "-q"], capture_output=True, text=True, timeout=120)
    assert b.returncode == 0 and "GET:" in b.stdout, b.stdout + b.stderr
    assert srv.client().info("stats")["total_connections_received"] > 0


def test_tls_auth_clients_no_and_password(server_factory, certs):
    srv = server_factory(args=tls_args(certs, auth="no") +
                         ["--requirepass", "pw"])
    port = tls_port(srv)
    c = redis.Redis(port=port, ssl=True, password="pw", socket_timeout=10,
                    ssl_ca_certs=str(certs / "a" / "ca.crt"))
    assert c.set("x", "1") is True
    with pytest.raises(redis.ResponseError, match="WRONGPASS"):
        redis.Redis(port=port, ssl=True, password="nope", socket_timeout=10,
                    ssl_ca_certs=str(certs / "a" / "ca.crt")).ping()


def test_certificates_reload_without_restart(server_factory, certs):
    srv = server_factory(args=tls_args(certs, which="a", auth="no"))
    port = tls_port(srv)
    before = peer_cert(certs, port, "a")
    old = redis.Redis(port=port, ssl=True, socket_timeout=10,
                      ssl_ca_certs=str(certs / "a" / "ca.crt"))
    assert old.ping() is True
    r = srv.client()
    # a missing file is refused; the old certificates stay
    with pytest.raises(redis.ResponseError, match="tls-cert-file"):
        r.config_set("tls-cert-file", str(certs / "nope.crt"))
    assert peer_cert(certs, port, "a") == before
    # a matching pair from the other CA: new connections get it
    assert r.execute_command(
        "CONFIG", "SET", "tls-cert-file", str(certs / "b" / "server.crt"),
        "tls-key-file", str(certs / "b" / "server.key"),
        "tls-ca-cert-file", str(certs / "b" / "ca.crt")) in (True, b"OK")
    after = peer_cert(certs, port, "b")
    assert after != before
    assert old.ping() is True  # an established connection goes on
    assert r.config_get("tls-cert-file")["tls-cert-file"] == str(
        certs / "b" / "server.crt")


def test_https_port_serves_the_http_api_over_tls(server_factory, certs):
    import http.client
    hp = free_port()
    srv = server_factory(args=tls_args(certs) + ["--https-port", str(hp)])
    d = certs / "a"
    ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
    ctx.load_cert_chain(str(d / "client.crt"), str(d / "client.key"))
    c = http.client.HTTPSConnection("127.0.0.1", hp, context=ctx, timeout=10)
    c.request("PUT", "/kv/hk", body=b"over-https",
              headers={"Content-Type": "text/plain"})
    r = c.getresponse()
    r.read()
    assert r.status in (200, 204), r.status
    c.request("GET", "/kv/hk")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"over-https"
    c.request("GET", "/health")
    r = c.getresponse()
    assert r.status == 200 and b'"ok"' in r.read()
    c.close()
    assert srv.client().get("hk") == b"over-https"
    # no client certificate: the handshake fails
    bare = ssl.create_default_context(cafile=str(d / "ca.crt"))
    c = http.client.HTTPSConnection("127.0.0.1", hp, context=bare, timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        c.request("GET", "/health")
        c.getresponse().read()
    c.close()


def test_tls12_session_resumption_with_client_certificates(server_factory,
                                                           certs):
    """With tls-auth-clients yes, a TLS 1.2 client that resumes its session
    reconnects (OpenSSL refuses resumption on a verifying context without
    a session id context)."""
    srv = server_factory(args=tls_args(certs))
    d = certs / "a"
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_port(srv),
         "-tls1_2", "-reconnect", "-CAfile", str(d / "ca.crt"), "-cert",
         str(d / "client.crt"), "-key", str(d / "client.key")],
        input="", capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert "Reused, TLSv1.2" in out, out[-3000:]
    assert "alert" not in out.lower(), out[-3000:]


def slot_ports(c):
    """Every port CLUSTER SLOTS names through connection c."""
    return {int(m[1]) for row in c.execute_command("CLUSTER", "SLOTS")
            for m in row[2:]}


def tls_cluster(server_factory, certs, m=3):
    """m formed nodes, each with its own --tls-port, once every node names
    every TLS port to TLS clients (a joined node publishes its own as an
    address change): (the Cluster, {RESP port: TLS port})."""
    from cluster_util import Cluster
    cl = Cluster(server_factory, m)
    for n in cl.nodes:
        n.server.args += tls_args(certs)
    cl.start()
    cl.form()
    tls = {n.port: tls_port(n.server) for n in cl.nodes}
    for n in cl.nodes:
        c = client(certs, tls[n.port])
        deadline = time.time() + 20
        while slot_ports(c) != set(tls.values()):
            assert time.time() < deadline, (slot_ports(c), tls)
            time.sleep(0.1)
        c.close()
    return cl, tls


def test_cluster_clients_over_tls_are_told_tls_ports(server_factory, certs):
    """Issue 15: in a 3-node cluster where each node has its own
    --tls-port, CLUSTER SLOTS and NODES name every member's TLS port to a
    client on a TLS connection and the plain ports to a plain one; SHARDS
    has both ("port", "tls-port"), as Redis 7 does.  redis-py's
    RedisCluster with ssl=True, which reconnects to what CLUSTER SLOTS
    names, then writes and reads keys of every slot range over TLS."""
    from redis.cluster import RedisCluster

    cl, tls = tls_cluster(server_factory, certs)
    for n in cl.nodes:
        assert slot_ports(n.client()) == set(tls)  # plain: plain ports
    c = client(certs, tls[cl.nodes[0].port])
    nodes = c.execute_command("CLUSTER", "NODES")
    if isinstance(nodes, bytes):
        nodes = nodes.decode()
    for line in nodes.strip().splitlines():
        port = int(line.split()[1].split("@")[0].rsplit(":", 1)[1])
        assert port in tls.values(), line
    plain_nodes = cl.nodes[0].client().execute_command("CLUSTER", "NODES")
    if isinstance(plain_nodes, bytes):
        plain_nodes = plain_nodes.decode()
    assert all(int(ln.split()[1].split("@")[0].rsplit(":", 1)[1]) in tls
               for ln in plain_nodes.strip().splitlines())
    shards = c.execute_command("CLUSTER", "SHARDS")
    seen = set()
    for sh in shards:
        sh = dict(zip(sh[::2], sh[1::2])) if isinstance(sh, list) else sh
        for nd in sh[b"nodes"]:
            nd = dict(zip(nd[::2], nd[1::2])) if isinstance(nd, list) else nd
            assert tls[int(nd[b"port"])] == int(nd[b"tls-port"]), nd
            seen.add(int(nd[b"port"]))
    assert seen == set(tls)
    # the GET /cluster JSON lists them too
    import json
    import urllib.request
    body = urllib.request.urlopen(
        "http://127.0.0.1:%d/cluster" % cl.nodes[0].server.http_port,
        timeout=10).read()
    members = json.loads(body)["members"]
    assert {m["resp_port"]: m["tls_port"] for m in members} == tls

    d = certs / "a"
    rc = RedisCluster(host="127.0.0.1", port=tls[cl.nodes[1].port],
                      ssl=True, ssl_ca_certs=str(d / "ca.crt"),
                      ssl_certfile=str(d / "client.crt"),
                      ssl_keyfile=str(d / "client.key"),
                      socket_timeout=15)
    try:
        for i in range(300):
            assert rc.set("tlsk:%d" % i, "v%d" % i) is True
        for i in range(300):
            assert rc.get("tlsk:%d" % i) == b"v%d" % i
        used = {n.port for n in rc.get_nodes()}
        assert used == set(tls.values()), used
    finally:
        rc.close()

"""The HTTP port and protected mode under hostile conditions (issue 15 item
4), through real ringkvd processes: with a password the ops endpoints
need it too (/health may be made public); a Host that is not an IP
literal, localhost or a configured name is refused (DNS rebinding); CORS
answers only the members' own status pages and configured origins; and
protected mode refuses remote clients on RESP and HTTP while no password
is set (tested from a network namespace, the only way to be a
non-loopback client on this machine)."""
import base64
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, SECRET_FILE, free_port


def get(port, path, headers=None, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=10)
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(headers or {})
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body


def test_ops_endpoints_need_the_password_when_one_is_set(server_factory):
    srv = server_factory(args=["--requirepass", "pw1"])
    port = srv.http_port
    bearer = {"Authorization": "Bearer pw1"}
    basic = {"Authorization": "Basic " +
             base64.b64encode(b"default:pw1").decode()}
    for k, path in enumerate(("/", "/stats", "/cluster", "/metrics",
                              "/health", "/nothing-here")):
        st, _, body = get(port, path)
        assert st == 401, (path, st, body[:200])
        if k < 3:
            # 3 failures are free; a 4th would make this IP wait, the
            # right password too (a success does not clear the count)
            st, _, _ = get(port, path, {"Authorization": "Bearer wrong"})
            assert st == 401, path
        st, _, _ = get(port, path, bearer)
        assert st in (200, 404), (path, st)
        st, _, _ = get(port, path, basic)
        assert st in (200, 404), (path, st)
    # /health alone may be public (load balancers)
    pub = server_factory(args=["--requirepass", "pw1",
                               "--http-health-public", "yes"])
    assert get(pub.http_port, "/health")[0] == 200
    assert get(pub.http_port, "/stats")[0] == 401
    # without a password everything answers (loopback)
    open_srv = server_factory()
    assert get(open_srv.http_port, "/stats")[0] == 200


def test_wrong_http_passwords_are_slowed_per_ip(server_factory):
    srv = server_factory(args=["--requirepass", "pw1"])
    port = srv.http_port
    codes = [get(port, "/stats", {"Authorization": "Bearer guess%d" % i})[0]
             for i in range(10)]
    print("10 wrong passwords over HTTP:", codes)
    assert codes[:3] == [401, 401, 401]
    assert 429 in codes  # after 3 failures the IP waits (auth_guard.h)
    st, h, _ = get(port, "/stats", {"Authorization": "Bearer guess"})
    assert st == 429 and int(h["retry-after"]) >= 1
    # the right password, once the wait is over (at most 5 s)
    deadline = time.monotonic() + 8
    while True:
        st, _, _ = get(port, "/stats", {"Authorization": "Bearer pw1"})
        if st == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert st == 200


def test_host_header_guards_against_dns_rebinding(server_factory):
    srv = server_factory(args=["--http-allowed-hosts", "ringkv.internal"])
    port = srv.http_port
    for host, want in (("127.0.0.1:%d" % port, 200),
                       ("localhost:%d" % port, 200),
                       ("LOCALHOST", 200),
                       ("10.1.2.3:%d" % port, 200),
                       ("[::1]:%d" % port, 200),
                       ("ringkv.internal:%d" % port, 200),
                       ("evil.example:%d" % port, 403),
                       ("127.0.0.1.evil.example", 403),
                       ("", 403)):
        st, _, body = get(port, "/stats", {"Host": host})
        assert st == want, (host, st, body[:200])
    st, _, body = get(port, "/kv/k", {"Host": "evil.example"})
    assert st == 403 and b"rebinding" in body


def test_cors_only_for_member_pages_and_configured_origins(server_factory):
    srv = server_factory(args=["--http-cors-origin", "https://dash.example"])
    port = srv.http_port
    own = "http://127.0.0.1:%d" % port
    for origin, allowed in ((own, True),
                            ("http://localhost:%d" % port, True),
                            ("https://dash.example", True),
                            ("http://evil.example", False),
                            ("null", False),
                            ("http://127.0.0.1:1", False)):
        st, h, _ = get(port, "/stats", {"Origin": origin})
        assert st == 200
        if allowed:
            assert h.get("access-control-allow-origin") == origin, origin
        else:
            assert "access-control-allow-origin" not in h, (origin, h)


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True,
                          text=True, check=check)


@pytest.fixture
def netns():
    """A network namespace joined to this one by a veth pair: the host side
    is 10.233.X.1, the namespace side 10.233.X.2.  Deleted at the end."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    n = os.getpid() % 200 + 20
    name = "rkvpm%d" % os.getpid()
    host_if, ns_if = "rkh%d" % os.getpid(), "rkn%d" % os.getpid()
    host_ip, ns_ip = "10.233.%d.1" % n, "10.233.%d.2" % n
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", host_ip + "/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", ns_ip + "/24", "dev",
            ns_if)
        _ip("netns", "exec", name, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as e:
        _ip("netns", "del", name, check=False)
        _ip("link", "del", host_if, check=False)
        pytest.skip("cannot make a network namespace: %s" % e.stderr)
    yield name, host_ip, ns_ip
    _ip("netns", "del", name, check=False)
    _ip("link", "del", host_if, check=False)


def _start_in_ns(name, ns_ip, extra, tmp):
    port, http_port, peer = free_port(), free_port(), free_port()
    # every address of the namespace (its veth and its own loopback): the
    # namespace is private to this test
    argv = ["ip", "netns", "exec", name, os.path.join(BUILD, "ringkvd"),
            "--bind", "0.0.0.0", "--port", str(port), "--http-port",
            str(http_port), "--peer-port", str(peer), "--data-dir",
            os.path.join(tmp, "d%d" % port), "--cluster-secret-file",
            SECRET_FILE] + extra
    log = open(os.path.join(tmp, "log%d" % port), "wb")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection((ns_ip, port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, port, http_port


def _resp(ip, port, data):
    s = socket.create_connection((ip, port), timeout=5)
    s.sendall(data)
    out = b""
    s.settimeout(3)
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            out += got
            if out.endswith(b"\r\n"):
                break
    except socket.timeout:
        pass
    s.close()
    return out


def test_protected_mode_refuses_remote_clients_without_a_password(netns):
    name, host_ip, ns_ip = netns
    tmp = tempfile.mkdtemp(prefix="rkv-pm-")
    procs = []
    try:
        # no password, protected mode on (the default)
        p, port, http_port = _start_in_ns(name, ns_ip, [], tmp)
        procs.append(p)
        out = _resp(ns_ip, port, b"PING\r\n")
        assert out.startswith(b"-DENIED"), out
        assert b"protected mode" in out
        st, _, body = get(http_port, "/stats", host=ns_ip,
                          headers={"Host": ns_ip})
        assert st == 403 and b"protected mode" in body, (st, body[:200])
        # a loopback client in the same namespace is served
        r = subprocess.run(["ip", "netns", "exec", name, "redis-cli", "-h",
                            "127.0.0.1", "-p", str(port), "ping"],
                           capture_output=True, text=True, timeout=10)
        assert "PONG" in r.stdout, r.stdout + r.stderr
        # with a password, the remote client is let in (and must AUTH)
        p2, port2, _ = _start_in_ns(name, ns_ip,
                                    ["--requirepass", "pw"], tmp)
        procs.append(p2)
        out = _resp(ns_ip, port2, b"AUTH pw\r\nPING\r\n")
        assert out.startswith(b"+OK"), out
        # protected mode off: served without a password
        p3, port3, _ = _start_in_ns(name, ns_ip,
                                    ["--protected-mode", "no"], tmp)
        procs.append(p3)
        assert _resp(ns_ip, port3, b"PING\r\n") == b"+PONG\r\n"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

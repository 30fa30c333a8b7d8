"""Mutual TLS between peers (issue 15 item 1, `--tls-cluster yes`) through
real ringkvd processes, the real CLI and hand-made peers (peerwire.py over
Python's ssl module), with certificates from scripts/gen-test-certs.sh
(`--node ID`: CN and SAN name the node id) and `openssl ca` (an expired
one):

- a 3-node tls-cluster cluster forms with `ringkv cluster join`, every peer
  connection is TLS 1.3, writes replicate (read back with R=3), it
  survives a kill -9 and restart of a node (hints delivered over TLS), and
  a node with --seeds joins it;
- Jepsen-style: concurrent set-adds and register writes through every
  node while nodes are killed -9 and restarted; afterwards every
  acknowledged write is readable (tests/cluster/test_jepsen.py's clients
  and set checker);
- refused, with the cluster state unchanged, a log line saying why and
  INFO cluster_peer_tls_failures (and cluster_peer_auth_failures)
  moving: a certificate from another CA, an expired one, none, a valid
  one naming another node id, a client-only one, a plain-TCP peer against
  a TLS node and a TLS node against a plain one (hand-made peers and real
  nodes trying `cluster join`, which fails at once with the reason);
- the hostile-peer attacks of test_peer_auth.py in TLS mode: unauthenticated
  KV_GET, JOIN and GOSSIP, a wrong secret, impersonation of a member
  (which the cluster secret alone cannot stop: here the certificate
  does), an oversized pre-auth header, log injection, a forged state
  version gossiped by a holder of the secret; the same hand-made peer
  with a certificate naming its id and the secret is answered;
- CONFIG SET of tls-cert-file/tls-key-file makes new peer connections
  present the new certificate; one that does not name the node's id is
  refused and the old one kept;
- ringkvd refuses to start with tls-cluster yes and a certificate that
  does not name its node id, a client-only one, or no CA file.
"""
import importlib.util
import os
import random
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import redis
from cryptography import x509

import peerwire as pw
from cluster_util import Cluster, parse_info
from conftest import BUILD, REPO, SECRET_FILE, TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv peers"),
]

GEN = os.path.join(REPO, "scripts", "gen-test-certs.sh")
CLI = os.path.join(BUILD, "ringkv")
IDS = ["node%d" % i for i in range(1, 6)] + ["tool"]


# --- certificates -----------------------------------------------------------

def issue(ca_dir, node_id, out, start="-1d", end="+3650d",
          eku="serverAuth,clientAuth"):
    """A certificate for node_id (CN and SAN DNS) signed by the CA in
    ca_dir with `openssl ca` (which, unlike `openssl x509` of OpenSSL 3.0,
    takes any validity window: start/end as YYYYMMDDHHMMSSZ, or +-days
    from now).  Returns (crt, key) paths out.crt, out.key."""
    def when(v):
        if v[0] in "+-":
            t = time.time() + int(v[:-1]) * 86400
            return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))
        return v
    db = tempfile.mkdtemp(prefix="rk-ca-")
    try:
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as f:
            f.write("%016x\n" % random.getrandbits(63))
        cnf = os.path.join(db, "ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca = c\n[c]\ndatabase = %s/index.txt\n"
                    "new_certs_dir = %s\nserial = %s/serial\n"
                    "default_md = sha256\npolicy = p\nunique_subject = no\n"
                    "[p]\ncommonName = supplied\n[ext]\n"
                    "subjectAltName = DNS:%s\nextendedKeyUsage = %s\n" % (
                        db, db, db, node_id, eku))
        key, crt = str(out) + ".key", str(out) + ".crt"
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes",
                        "-subj", "/O=ringkv test/CN=%s" % node_id, "-keyout",
                        key, "-out", os.path.join(db, "req.csr")],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-cert",
                        os.path.join(ca_dir, "ca.crt"), "-keyfile",
                        os.path.join(ca_dir, "ca.key"), "-in",
                        os.path.join(db, "req.csr"), "-out", crt,
                        "-startdate", when(start), "-enddate", when(end),
                        "-extensions", "ext", "-notext"],
                       check=True, capture_output=True)
        os.chmod(key, 0o600)
        return crt, key
    finally:
        shutil.rmtree(db, ignore_errors=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """a/: the cluster's CA with node-ID.{crt,key} for IDS; b/: another CA
    with the same ids; a/expired-ID: expired certificates of CA a."""
    d = tmp_path_factory.mktemp("peer-tls")
    for ca in ("a", "b"):
        args = ["bash", GEN, str(d / ca)]
        for i in IDS:
            args += ["--node", i]
        subprocess.run(args, check=True, capture_output=True)
    for i in ("node4", "tool"):
        issue(d / "a", i, d / "a" / ("expired-" + i), start="20200101000000Z",
              end="20200102000000Z")
    return d


def cert_of(certs, node_id, ca="a", kind="node"):
    d = certs / ca
    return d / ("%s-%s.crt" % (kind, node_id)), d / ("%s-%s.key" % (kind,
                                                                    node_id))


def tls_args(certs, node_id, ca="a", cert=None):
    crt, key = cert or cert_of(certs, node_id, ca)
    return ["--tls-cluster", "yes", "--tls-cert-file", str(crt),
            "--tls-key-file", str(key), "--tls-ca-cert-file",
            str(certs / ca / "ca.crt")]


def ctx(certs, node_id=None, ca="a", trust="a", cert=None):
    """A hand-made peer's SSLContext: trusts CA `trust`, presents the
    certificate of node_id from CA `ca` (or `cert`, or none)."""
    if cert is None and node_id is not None:
        cert = cert_of(certs, node_id, ca)
    return pw.tls_context(certs / trust / "ca.crt", *(cert or (None, None)))


# --- cluster and node helpers --------------------------------------------------

@pytest.fixture
def tls_cluster(server_factory, certs):
    """tls_cluster(m, args=[...], form=True, tls=True) -> Cluster of nodes
    node1..nodeM, each with its own certificate of CA a; stopped by PID at
    the end (conftest)."""
    made = []

    def make(m, args=(), form=True, tls=True, timeout=30.0):
        cl = Cluster(server_factory, m, args=args)
        if tls:
            for n in cl.nodes:
                n.server.args += tls_args(certs, n.node_id)
        made.append(cl)
        cl.start()
        if form:
            cl.form(timeout=timeout)
        return cl

    try:
        yield make
    finally:
        for cl in made:
            cl.resume_all()
            cl.close_clients()


def info(server):
    c = server.client(socket_timeout=10)
    try:
        c.set_response_callback("INFO", lambda r, **kw: r)
        return parse_info(c.execute_command("INFO", "cluster"))
    finally:
        c.close()


def counters(server):
    i = info(server)
    return int(i["cluster_peer_tls_failures"]), \
        int(i["cluster_peer_auth_failures"])


def states(cl):
    return {n.node_id: (cl.info(n)["cluster_members"],
                        cl.info(n)["cluster_state_version"])
            for n in cl.nodes}


def wait_log(server, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.logs():
            return
        time.sleep(0.05)
    pytest.fail("%r not logged within %.0f s; log tail:\n%s" % (
        text, timeout, server.logs()[-3000:]))


def wait_counter(server, before, timeout=10.0):
    """Waits until cluster_peer_tls_failures passed `before`; returns the
    new (tls, auth) counters."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = counters(server)
        if c[0] > before:
            return c
        time.sleep(0.05)
    pytest.fail("cluster_peer_tls_failures stayed at %d" % before)


def join(node_port, seed_peer_port, timeout=60):
    """`ringkv -p NODE cluster join 127.0.0.1:SEED`: (exit code, output,
    seconds)."""
    t0 = time.monotonic()
    r = subprocess.run([CLI, "-p", str(node_port), "cluster", "join",
                        "127.0.0.1:%d" % seed_peer_port], capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).strip(), \
        time.monotonic() - t0


def peer_serial(certs, port):
    """The serial number of the certificate a node's peer port presents
    now (a new connection, as the hand-made peer `tool`)."""
    p = pw.Peer(port, tls=ctx(certs, "tool"))
    try:
        der = p.s.getpeercert(binary_form=True)
    finally:
        p.close()
    return x509.load_der_x509_certificate(der).serial_number


def cert_serial(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).serial_number


def pipelined_set(client, kv):
    p = client.pipeline(transaction=False)
    for k, v in kv.items():
        p.set(k, v)
    return [k for (k, _), r in zip(kv.items(), p.execute(
        raise_on_error=False)) if r is not True]


def pipelined_check(client, kv):
    p = client.pipeline(transaction=False)
    for k in kv:
        p.get(k)
    got = p.execute(raise_on_error=False)
    return [(k, v, g) for (k, v), g in zip(kv.items(), got) if g != v]


# --- 1. a 3-node tls-cluster cluster ------------------------------------------

@pytest.mark.timeout(240)
def test_tls_cluster_forms_replicates_and_survives_kill9(tls_cluster):
    cl = tls_cluster(3)
    a, b, c = cl.nodes
    for n in cl.nodes:
        i = cl.info(n)
        assert i["cluster_peer_tls"] == "yes", i
        assert i["cluster_members"] == "3", i
        assert cl.c(n).config_get("tls-cluster") == {"tls-cluster": "yes"}
    assert "tls=TLSv1.3" in a.server.logs()  # every peer connection
    kv = {"tls:%04d" % i: ("v%d" % i).encode() for i in range(1000)}
    assert not pipelined_set(cl.c(a), kv)
    for n in cl.nodes:
        assert cl.c(n).config_set("r", "3")
    assert not pipelined_check(cl.c(c), kv)  # all three replicas answered
    for k in list(kv)[:20]:  # N=3 on 3 nodes: every node stores every key
        assert all(cl.c(n).execute_command("RINGKV.LOCALGET", k) == kv[k]
                   for n in cl.nodes), k
    # kill -9 one node; writes go on (W=2), then it comes back over TLS
    cl.kill(b)
    for n in (a, c):
        assert cl.c(n).config_set("r", "2")
    kv2 = {"tls2:%04d" % i: ("w%d" % i).encode() for i in range(300)}
    assert not pipelined_set(cl.c(c), kv2)
    cl.restart(b)
    cl.wait_converged(3, timeout=30)
    # hints delivered to b over TLS: it stores the writes it missed
    cl.wait_until(lambda: all(
        cl.c(b).execute_command("RINGKV.LOCALGET", k) == v
        for k, v in list(kv2.items())[:50]), "hints delivered to %r" % b,
        timeout=30)
    for n in cl.nodes:
        assert cl.c(n).config_set("r", "3")
    assert not pipelined_check(cl.c(b), kv)
    assert not pipelined_check(cl.c(b), kv2)
    for n in cl.nodes:  # nothing was refused in a healthy cluster
        assert counters(n.server) == (0, 0), (n, cl.info(n))


def test_seeds_join_a_tls_cluster(tls_cluster, server_factory, certs):
    cl = tls_cluster(2)
    a = cl.nodes[0]
    d = server_factory(args=["--node-id", "node4", "--seeds", a.peer_addr] +
                       tls_args(certs, "node4"))
    cl.wait_until(lambda: info(d)["cluster_members"] == "3" and
                  cl.info(a)["cluster_members"] == "3",
                  "node4 to join from --seeds over TLS", timeout=30)
    assert "event=cluster_seed_joined" in d.logs()
    d.client().set("from-seed", "x")
    assert cl.c(a).get("from-seed") == b"x"


# --- 2. Jepsen-style, with kill -9 and restarts ---------------------------------

def _jepsen():
    """tests/cluster/test_jepsen.py (its Client, History, check_sets)."""
    path = os.path.join(REPO, "tests", "cluster", "test_jepsen.py")
    spec = importlib.util.spec_from_file_location("rk_jepsen_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_no_acknowledged_write_is_lost_with_kills(tls_cluster, tmp_path,
                                                  seed):
    jp = _jepsen()
    seconds = float(os.environ.get("RINGKV_TLS_JEPSEN_SECONDS", "20"))
    cl = tls_cluster(3, args=["--sync", "always", "--request-timeout-ms",
                              "1000"])
    hist = jp.History(str(tmp_path / "history.jsonl"))
    results = jp.new_results()
    stop = threading.Event()
    clients = [jp.Client(i, cl, seed * 1000 + i, hist, stop, results)
               for i in range(6)]
    rng = random.Random(seed ^ 0x71)
    kills = []
    errors = []

    def nemesis():
        try:
            while not stop.wait(rng.uniform(0.5, 1.5)):
                n = rng.choice(cl.nodes)
                hist.log(type="nemesis", f="kill", node=n.node_id)
                cl.kill(n)
                kills.append(n.node_id)
                stop.wait(rng.uniform(1, 3))
                cl.restart(n)
                hist.log(type="nemesis", f="restart", node=n.node_id)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    nem = threading.Thread(target=nemesis, daemon=True)
    for t in clients:
        t.start()
    nem.start()
    time.sleep(seconds)
    stop.set()
    nem.join(60)
    for t in clients:
        t.join(30)
    assert not errors, errors
    for n in cl.nodes:
        if not n.alive:
            cl.restart(n)
    cl.wait_converged(3, timeout=60)
    for n in cl.nodes:
        assert cl.c(n).config_set("r", "3")
    keys = list(results["attempted"]) + list(results["reg_attempts"])
    t0 = time.monotonic()
    converged = None
    while time.monotonic() - t0 < 30 and converged is None:
        for k in keys:
            cl.c(cl.nodes[0]).execute_command("RINGKV.GETALL", k)
        time.sleep(0.2)
        if all(len(set(jp.final_objects(cl, k))) <= 1 for k in keys):
            converged = time.monotonic() - t0
    hist.close()
    acked, lost, unexpected, recovered, siblings = jp.check_sets(
        cl, results, cl.nodes[1])
    reg_lost = []
    for k, attempts in results["reg_attempts"].items():
        _, sibs = cl.c(cl.nodes[2]).execute_command("RINGKV.GETALL", k)
        final = [s[0].decode() for s in sibs if s[0] is not None]
        unexpected += [v for v in final if v not in attempts]
        for v, (t_inv, _) in results["reg_acked"][k].items():
            acked += 1
            if v not in final and not any(
                    attempts[w][1] is not None and attempts[w][1] > t_inv
                    for w in final if w != v and w in attempts):
                reg_lost.append("%s=%s" % (k, v))
    print("tls jepsen: %.0f s, %d kills; acknowledged writes: %d, lost: %d, "
          "unexpected: %d, recovered: %d, siblings: %d, convergence: %s s" % (
              seconds, len(kills), acked, len(lost) + len(reg_lost),
              len(unexpected), recovered, siblings,
              "%.1f" % converged if converged is not None else "> 30"))
    assert kills, "the nemesis killed nobody"
    assert acked > 100, "too few acknowledged writes: %d" % acked
    assert not lost, "LOST acknowledged elements: %s" % lost[:20]
    assert not reg_lost, "LOST acknowledged writes: %s" % reg_lost[:20]
    assert not unexpected, unexpected[:20]
    assert converged is not None, "replicas did not converge within 30 s"


# --- 3. refused peers -------------------------------------------------------------

def refused_by_tls(port, context, my_id=b"tool"):
    """A hand-made TLS peer sends HELLO + CHALLENGE: true when the node
    closes the connection having sent at most its own HELLO and
    CHALLENGE (a certificate checked after TLS is up) or nothing."""
    try:
        p = pw.Peer(port, tls=context)
    except (ssl.SSLError, OSError):
        return True  # refused inside the handshake (TLS 1.2)
    try:
        p.send(pw.hello(my_id) + pw.challenge(os.urandom(32)))
    except OSError:
        p.close()
        return True
    seen = []
    while True:
        f = p.read_frame(timeout=5)
        if f is None:
            break
        seen.append(f[0])
    closed = p.closed(timeout=1)
    p.close()
    return closed and set(seen) <= {pw.HELLO, pw.AUTH_CHALLENGE}


@pytest.mark.timeout(240)
def test_bad_certificates_and_plain_peers_are_refused(tls_cluster,
                                                      server_factory, certs):
    cl = tls_cluster(3)
    a = cl.nodes[0]
    cl.c(a).set("kept", "yes")
    before = states(cl)
    cases = [
        ("another CA", ctx(certs, "tool", ca="b"), b"tool",
         "event=peer_tls_failed",
         "certificate verify failed: unable to get local issuer certificate"),
        ("expired", ctx(certs, cert=cert_of(certs, "tool", kind="expired")),
         b"tool", "event=peer_tls_failed",
         "certificate verify failed: certificate has expired"),
        ("no certificate", ctx(certs), b"tool", "event=peer_tls_failed",
         "peer did not return a certificate"),
        ("a certificate naming another node id", ctx(certs, "tool"),
         b"node2", "event=peer_tls_id_mismatch",
         "its certificate names CN=tool,DNS=tool, not the node id node2 of "
         "its HELLO"),
        ("a client-only certificate",
         ctx(certs, cert=(certs / "a" / "client.crt",
                          certs / "a" / "client.key")),
         b"client", "event=peer_tls_id_mismatch",
         "is not valid for both TLS server and client use"),
    ]
    for what, context, my_id, event, reason in cases:
        tls0, auth0 = counters(a.server)
        assert refused_by_tls(a.peer_port, context, my_id), what
        tls1, auth1 = wait_counter(a.server, tls0)
        assert tls1 == tls0 + 1 and auth1 >= auth0 + 1, (what, tls1, auth1)
        wait_log(a.server, reason)
        assert event in a.server.logs(), what
        time.sleep(1.1)  # the next case gets a fresh log budget
    # a plain-TCP peer against a TLS node: the node answers a TLS alert
    tls0, _ = counters(a.server)
    p = pw.Peer(a.peer_port)
    p.send(pw.hello(b"node9") + pw.challenge(os.urandom(32)))
    got = b""
    p.s.settimeout(5)
    try:
        while True:
            chunk = p.s.recv(64)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    p.close()
    assert got == b"\x15\x03\x03\x00\x02\x02\x46", got  # no HELLO in clear
    wait_counter(a.server, tls0)
    wait_log(a.server, "the peer speaks the plain peer protocol")
    # real nodes trying to join: another CA, an expired certificate, and a
    # plain node; each join fails at once and says why
    rogues = [
        ("another CA", tls_args(certs, "node4", ca="b"),
         "TLS with seed", "tlsv1 alert unknown ca"),
        ("expired", tls_args(certs, "node4", cert=cert_of(
            certs, "node4", kind="expired")), "TLS with seed",
         "certificate has expired"),
        ("plain node", [], "disagree on tls-cluster",
         "the peer speaks the plain peer protocol"),
    ]
    for what, args, said, logged in rogues:
        tls0, _ = counters(a.server)
        r = server_factory(args=["--node-id", "node4"] + args)
        rc, out, took = join(r.port, a.peer_port)
        print("%s: join refused in %.2f s: %s" % (what, took, out[:300]))
        assert rc != 0 and said in out, (what, out)
        assert took < 10, (what, took)
        wait_counter(a.server, tls0)
        wait_log(a.server, logged)
        assert info(r)["cluster_members"] == "1", what
        r.stop()  # no more retries of its join
        time.sleep(1.1)
    # the cluster did not change, and serves
    assert states(cl) == before
    for n in cl.nodes:
        assert cl.c(n).get("kept") == b"yes"


def test_a_tls_node_cannot_join_a_plain_cluster(server_factory, certs):
    plain = server_factory(args=["--node-id", "node1"])
    t = server_factory(args=["--node-id", "node4"] + tls_args(certs, "node4"))
    rc, out, took = join(t.port, plain.peer_port)
    print("join refused in %.2f s: %s" % (took, out))
    assert rc != 0 and "disagree on tls-cluster" in out, out
    assert "the peer speaks the plain peer protocol" in out, out
    assert took < 10
    wait_log(plain, "event=peer_tls_mismatch")
    wait_log(plain, "the peer speaks TLS: it runs with tls-cluster yes")
    assert int(info(plain)["cluster_peer_tls_failures"]) >= 1
    assert info(plain)["cluster_peer_tls"] == "no"
    assert info(plain)["cluster_members"] == "1"
    assert "event=peer_tls_mismatch" in t.logs()


# --- 4. the hostile-peer attacks of test_peer_auth.py, in TLS mode -------------

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.timeout(180)
def test_hostile_tls_peers_are_refused(tls_cluster, certs):
    cl = tls_cluster(3)
    a, b, c = cl.nodes
    cl.c(a).set("secret-key", "secret-value")
    before = states(cl)
    secret = pw.read_secret(SECRET_FILE)
    tool = ctx(certs, "tool")
    for n in cl.nodes:
        # 1. a valid certificate, HELLO as itself, then KV_GET at once:
        # no reply before the secret's handshake
        p = pw.Peer(n.peer_port, tls=tool)
        p.send(pw.hello(b"tool") + pw.kv_get(b"secret-key"))
        seen = []
        while True:
            f = p.read_frame(timeout=3)
            if f is None:
                break
            seen.append(f[0])
        assert pw.KV_GET_REPLY not in seen, seen
        p.close()
        # 2. the secret's handshake with a wrong secret
        p = pw.Peer(n.peer_port, tls=tool)
        ok, _ = p.handshake(b"tool", bytes(32))
        assert not ok
        p.send(pw.kv_get(b"secret-key"))
        assert p.closed(), "a peer with a wrong proof stayed connected"
        p.close()
        # 3. an unauthenticated JOIN and a forged GOSSIP
        p = pw.Peer(n.peer_port, tls=tool)
        p.send(pw.hello(b"tool") + pw.join(b"tool"))
        assert p.closed()
        p.close()
        p = pw.Peer(n.peer_port, tls=tool)
        p.send(pw.hello(b"tool") + pw.gossip(b"x" * 64, 1 << 40,
                                             a.node_id.encode()))
        assert p.closed()
        p.close()
        # 4. impersonation: a valid certificate and the cluster's secret,
        # HELLO as a member: the secret alone would admit it, the
        # certificate does not
        other = cl.nodes[(cl.nodes.index(n) + 1) % 3].node_id.encode()
        tls0, _ = counters(n.server)
        p = pw.Peer(n.peer_port, tls=tool)
        ok, _ = p.handshake(other, secret)
        assert not ok, "impersonation of %r admitted" % other
        p.close()
        wait_counter(n.server, tls0)
    # 5. log injection through the HELLO's id (as the certificate's check
    # logs it): no forged line
    p = pw.Peer(a.peer_port, tls=tool)
    p.send(pw.hello(b'x"\nlevel=error event=forged') +
           pw.challenge(os.urandom(32)))
    assert p.closed()
    p.close()
    time.sleep(1.0)
    log = a.server.logs()
    assert "\nlevel=error event=forged" not in log
    assert "event=forged" not in [ln.split(" ")[2] if ln.count(" ") > 2
                                  else "" for ln in log.splitlines()]
    for n in cl.nodes:
        i = cl.info(n)
        assert int(i["cluster_peer_auth_failures"]) >= 4, i
    assert "event=peer_auth_failed" in a.server.logs()
    assert "event=peer_tls_id_mismatch" in a.server.logs()
    assert states(cl) == before
    assert cl.c(b).get("secret-key") == b"secret-value"
    # control: the same peer, HELLO as the id its certificate names, with
    # the secret: admitted, its KV_GET answered
    p = pw.Peer(a.peer_port, tls=tool)
    ok, their = p.handshake(b"tool", secret)
    assert ok and their == a.node_id.encode()
    p.send(pw.kv_get(b"secret-key"))
    f = p.read_frame(timeout=5)
    assert f is not None and f[0] == pw.KV_GET_REPLY, f
    p.close()


def test_a_tls_peer_with_the_secret_cannot_push_a_forged_state_version(
        tls_cluster, certs):
    """test_peer_auth.py's forged state version (2^40 ahead) over TLS: a
    peer with a certificate naming its own id and the cluster secret is
    admitted, and its forged GOSSIP refused and counted by every member;
    one version ahead is adopted (the refusal is the version rule's)."""
    cl = tls_cluster(3)
    a = cl.nodes[0]
    path = None
    for root, _, files in os.walk(a.server.data_dir):
        if "cluster.state" in files:
            path = os.path.join(root, "cluster.state")
    assert path, "no cluster.state under %s" % a.server.data_dir
    with open(path, "rb") as f:
        state = f.read()
    version = int.from_bytes(state[5:13], "little")
    secret = pw.read_secret(SECRET_FILE)

    def forged(v):
        return state[:5] + v.to_bytes(8, "little") + state[13:]

    for n in cl.nodes:
        before = cl.info(n)
        p = pw.Peer(n.peer_port, tls=ctx(certs, "tool"))
        ok, _ = p.handshake(b"tool", secret)
        assert ok
        p.send(pw.gossip(forged(version + (1 << 40)), version + (1 << 40),
                         b"tool"))
        cl.wait_until(lambda: cl.info(n)["cluster_gossip_refused"] == "1",
                      "the forged gossip refused by %r" % n, timeout=5)
        p.close()
        i = cl.info(n)
        assert i["cluster_state_version"] == before["cluster_state_version"]
        assert "gossip from tool refused" in n.server.logs()
    p = pw.Peer(a.peer_port, tls=ctx(certs, "tool"))
    ok, _ = p.handshake(b"tool", secret)
    assert ok
    p.send(pw.gossip(forged(version + 1), version + 1, b"tool"))
    cl.wait_until(lambda: all(cl.info(n)["cluster_state_version"] ==
                              str(version + 1) for n in cl.nodes),
                  "every node at the version one ahead", timeout=10)
    p.close()


def test_pre_auth_bytes_are_bounded_over_tls(tls_cluster, certs):
    """Headers declaring 512 MiB, over TLS with a valid certificate and as
    plain bytes to the TLS port, cost no memory."""
    cl = tls_cluster(1, form=False)
    n = cl.nodes[0]
    rss0 = rss_kib(n.server.pid)
    peers = []
    for k in range(6):
        p = pw.Peer(n.peer_port, tls=ctx(certs, "tool") if k % 2 else None)
        try:
            p.send(pw.frame(pw.HELLO, b"", body_len=512 << 20))
            p.send(b"\0" * (4 << 20))
        except OSError:
            pass  # closed already
        peers.append(p)
    for p in peers:
        assert p.closed()
        p.close()
    grew = rss_kib(n.server.pid) - rss0
    print("RSS %d KiB -> +%d KiB after six 512 MiB headers" % (rss0, grew))
    assert grew < 32 * 1024


def test_a_tls_node_with_another_secret_cannot_join(server_factory, certs,
                                                    tmp_path):
    """TLS does not replace the cluster secret: a node with a valid
    certificate but another secret is refused, and told it is the
    secret."""
    other = tmp_path / "other.secret"
    fd = os.open(str(other), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"ab" * 32 + b"\n")
    os.close(fd)
    seed = server_factory(args=["--node-id", "node1"] +
                          tls_args(certs, "node1"))
    j = server_factory(args=["--node-id", "node2", "--cluster-secret-file",
                             str(other)] + tls_args(certs, "node2"))
    rc, out, took = join(j.port, seed.peer_port)
    assert rc != 0 and "cluster secret" in out, out
    assert took < 10
    wait_log(seed, "event=peer_auth_failed")
    assert info(seed)["cluster_peer_tls_failures"] == "0"


# --- 5. reloading the certificates ---------------------------------------------------

@pytest.mark.timeout(180)
def test_config_set_reloads_the_peer_certificate(tls_cluster, certs,
                                                 tmp_path):
    cl = tls_cluster(2)
    a, b = cl.nodes
    crt0, _ = cert_of(certs, "node1")
    assert peer_serial(certs, a.peer_port) == cert_serial(crt0)
    crt, key = issue(certs / "a", "node1", tmp_path / "node1-new")
    r = cl.c(a).execute_command("CONFIG", "SET", "tls-cert-file", str(crt),
                                "tls-key-file", str(key))
    assert r in (b"OK", "OK", True), r
    wait_log(a.server, "event=peer_tls_reloaded")
    assert peer_serial(certs, a.peer_port) == cert_serial(crt)
    # b reconnects (kill -9, restart) and accepts a's new certificate
    cl.kill(b)
    cl.restart(b)
    cl.wait_converged(2, timeout=30)
    cl.c(b).set("after-reload", "1")
    assert cl.c(a).get("after-reload") == b"1"
    # a certificate that names another node id is refused: nothing changes
    crt2, key2 = cert_of(certs, "node2")
    with pytest.raises(redis.ResponseError) as e:
        cl.c(a).execute_command("CONFIG", "SET", "tls-cert-file", str(crt2),
                                "tls-key-file", str(key2))
    assert "not this node's id node1" in str(e.value), e.value
    with pytest.raises(redis.ResponseError):
        cl.c(a).execute_command("CONFIG", "SET", "tls-ca-cert-file",
                                str(tmp_path / "missing.crt"))
    assert peer_serial(certs, a.peer_port) == cert_serial(crt)
    assert cl.c(a).config_get("tls-cert-file")["tls-cert-file"] == str(crt)


# --- 6. start-up checks ------------------------------------------------------------

def test_bad_tls_cluster_settings_are_refused_at_start(server_factory,
                                                       certs):
    crt, key = cert_of(certs, "node1")
    cases = [
        (["--node-id", "node2", "--tls-cluster", "yes", "--tls-cert-file",
          str(crt), "--tls-key-file", str(key), "--tls-ca-cert-file",
          str(certs / "a" / "ca.crt")],
         "names CN=node1,DNS=node1, not this node's id node2"),
        (["--node-id", "client", "--tls-cluster", "yes", "--tls-cert-file",
          str(certs / "a" / "client.crt"), "--tls-key-file",
          str(certs / "a" / "client.key"), "--tls-ca-cert-file",
          str(certs / "a" / "ca.crt")],
         "not valid for both TLS server and client use"),
        (["--node-id", "node1", "--tls-cluster", "yes", "--tls-cert-file",
          str(crt), "--tls-key-file", str(key)],
         "tls-cluster yes needs"),
    ]
    for args, want in cases:
        s = server_factory(args=args, start=False)
        r = subprocess.run(s.command(), capture_output=True, text=True,
                           timeout=60)
        assert r.returncode != 0, args
        assert want in r.stdout + r.stderr, (want, r.stdout + r.stderr)

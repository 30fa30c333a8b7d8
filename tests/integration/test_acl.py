"""ACL users (issue 15 item 3) through real ringkvd processes and redis-py:
Redis 7's rules (passwords, command categories, single commands and
subcommands, %R~/%W~ key patterns), the ACL subcommands, AUTH and HELLO
with a user name, requirepass as the default user's password, the ACL
file (--aclfile, ACL SAVE/LOAD), and the same users on the HTTP API.

Where Redis defines the behaviour, the test runs the same commands
against a real redis-server and compares: which commands each user may
run and the exact NOPERM texts, and every command's ACL categories."""
import base64
import http.client
import os
import random
import socket
import stat
import subprocess
import time

import pytest
import redis

from conftest import BUILD, SECRET_FILE, Server, free_port

PW = "pw-1"

# users with a rule set each, applied to ringkv and redis alike
USERS = {
    "all": "on >pw-1 ~* &* +@all",
    "patterns": "on >pw-1 ~foo* %R~ro* %W~wo* +@read +@write",
    "nodanger": "on >pw-1 allkeys +@all -@dangerous",
    "strings": "on >pw-1 ~* +@string -set",
    "single": "on >pw-1 ~* -@all +get +config|get",
    "subcmd": "on >pw-1 ~* +@all -config +config|get",
    "keyspace": "on >pw-1 ~* +@keyspace",
    "prefix": "on >pw-1 resetkeys ~a* +@all",
    "conn": "on >pw-1 ~* +@connection",
    "fast": "on >pw-1 ~* +@fast",
    "slow": "on >pw-1 ~* +@slow",
    "admin": "on >pw-1 ~* +@admin",
    "tx": "on >pw-1 ~* +@transaction +get",
    "readkeys": "on >pw-1 %R~* +@all",
    "writekeys": "on >pw-1 %W~* +@all",
    "nocmds": "on >pw-1 ~* nocommands",
}

KEYS = ["foo1", "ro1", "wo1", "zzz", "a1"]

# commands both servers know, with {k} for a key
COMMANDS = [
    "GET {k}", "SET {k} v", "SET {k} v GET", "SETNX {k} v", "DEL {k}",
    "INCR {k}", "EXISTS {k}", "TTL {k}", "TYPE {k}", "STRLEN {k}",
    "APPEND {k} x", "GETDEL {k}", "EXPIRE {k} 100", "PERSIST {k}",
    "MGET {k} foo2", "MSET {k} 1 wo2 2", "GETRANGE {k} 0 1",
    "KEYS nomatch*", "DBSIZE", "SCAN 0 MATCH nomatch*", "RANDOMKEY",
    "CONFIG GET maxclients", "INFO server", "CLIENT ID", "CLIENT GETNAME",
    "COMMAND COUNT", "PING", "ECHO x", "TIME", "ACL WHOAMI", "ACL CAT",
    "ACL USERS", "DISCARD", "UNWATCH", "GETSET {k} v", "SETRANGE {k} 2 xy",
    "TOUCH {k} foo2",
]


def as_dict(reply):
    """A RESP2 map reply (flat list) as a dict."""
    return reply if isinstance(reply, dict) else dict(zip(reply[::2],
                                                          reply[1::2]))


def start_pair(server_factory):
    """A ringkvd and a redis-server, both with the USERS set up."""
    rk = server_factory()
    rd = server_factory(target="redis")
    for srv in (rk, rd):
        c = srv.client()
        for name, rules in USERS.items():
            assert c.execute_command("ACL", "SETUSER", name,
                                     *rules.split()) in (b"OK", "OK", True)
        c.close()
    return rk, rd


def outcome(client, cmd):
    """('denied', NOPERM text) or ('allowed', None) for one command
    (sent on a pooled connection directly: redis-py's reply parsers of
    some commands do not take every reply)."""
    conn = client.connection_pool.get_connection("_")
    try:
        conn.send_command(*cmd.split())
        r = conn.read_response()
        if isinstance(r, redis.exceptions.ResponseError):
            raise r
    except redis.exceptions.ResponseError as e:
        # redis-py drops the "NOPERM " code of NoPermissionError
        if "no permissions" in str(e):
            return ("denied", str(e))
        return ("allowed", None)  # failed for another reason: it ran
    finally:
        client.connection_pool.release(conn)
    return ("allowed", None)


def test_user_permissions_match_redis(server_factory, seed):
    """Every user x command x key: allowed or refused as redis-server
    decides, with the same NOPERM text; then a random sample again
    through ACL DRYRUN."""
    rk, rd = start_pair(server_factory)
    diffs = []
    checked = 0
    for name in USERS:
        a = rk.client(username=name, password=PW)
        b = rd.client(username=name, password=PW)
        for cmd in COMMANDS:
            for k in (KEYS if "{k}" in cmd else [None]):
                line = cmd.format(k=k) if k else cmd
                got, want = outcome(a, line), outcome(b, line)
                checked += 1
                if got != want:
                    diffs.append((name, line, got, want))
        a.close()
        b.close()
    assert not diffs, "%d of %d differ: %r" % (len(diffs), checked,
                                               diffs[:20])
    assert checked > 1000
    rng = random.Random(seed)
    ca, cb = rk.client(), rd.client()
    for _ in range(300):
        name = rng.choice(list(USERS))
        line = rng.choice(COMMANDS).format(k=rng.choice(KEYS))
        got = ca.execute_command("ACL", "DRYRUN", name, *line.split())
        want = cb.execute_command("ACL", "DRYRUN", name, *line.split())
        assert got == want, (seed, name, line, got, want)


def raw_command_info(port, name):
    """COMMAND INFO name's reply, parsed by hand (redis-py turns it into
    a dict that drops the ACL categories of subcommands)."""
    return raw_command("COMMAND", "INFO", name, port=port)[0]


def raw_command(*args, port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")

    def rd():
        line = f.readline()
        t, b = line[:1], line[1:-2]
        if t == b"*":
            n = int(b)
            return None if n < 0 else [rd() for _ in range(n)]
        if t == b"$":
            n = int(b)
            if n < 0:
                return None
            return f.read(n + 2)[:-2].decode()
        if t == b":":
            return int(b)
        return b.decode()

    s.sendall(b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
    out = rd()
    s.close()
    return out


def test_command_categories_match_redis(server_factory):
    rk = server_factory()
    rd = server_factory(target="redis")
    names = sorted(set(x[0] for x in raw_command("COMMAND", port=rk.port)))
    compared = 0
    diffs = []
    for n in names:
        ours = raw_command_info(rk.port, n)
        theirs = raw_command_info(rd.port, n)
        if theirs is None:
            continue  # ringkv's own commands
        for sub_ours in [ours] + (ours[9] or []):
            sname = sub_ours[0]
            sub_theirs = theirs if sname == n else next(
                (x for x in theirs[9] if x[0] == sname), None)
            if sub_theirs is None:
                continue  # a subcommand Redis 7.0 lacks (CLIENT SETINFO)
            compared += 1
            if sorted(sub_ours[6]) != sorted(sub_theirs[6]):
                diffs.append((sname, sub_ours[6], sub_theirs[6]))
    assert not diffs, diffs
    assert compared > 80
    # ACL CAT <category> lists the same commands Redis lists, among the
    # ones ringkv has
    ca, cb = rk.client(), rd.client()
    ours_all = set(x[0] for n in names
                   for x in [raw_command_info(rk.port, n)] +
                   (raw_command_info(rk.port, n)[9] or []))
    for cat in ca.execute_command("ACL", "CAT"):
        cat = cat.decode()
        mine = set(x.decode() for x in ca.execute_command("ACL", "CAT", cat))
        theirs = set(x.decode() for x in cb.execute_command("ACL", "CAT",
                                                            cat))
        missing = (theirs & ours_all) - mine
        assert not missing, (cat, missing)


def test_auth_hello_and_the_default_user(server_factory):
    srv = server_factory(args=["--requirepass", "dpw"])
    c = srv.client(password="dpw")
    c.execute_command("ACL", "SETUSER", "alice", "on", ">apw", "~*", "+@all")
    c.execute_command("ACL", "SETUSER", "bob", "off", ">bpw", "~*", "+@all")
    # AUTH user pass, and the one-argument form for default
    x = srv.client()
    with pytest.raises(redis.exceptions.AuthenticationError):
        x.get("k")
    assert x.execute_command("AUTH", "alice", "apw")
    assert x.execute_command("ACL", "WHOAMI") == b"alice"
    assert x.execute_command("AUTH", "dpw")
    assert x.execute_command("ACL", "WHOAMI") == b"default"
    # a wrong password, a disabled user (whatever the password), no such
    # user: WRONGPASS
    for user, pw in (("alice", "wrong"), ("bob", "bpw"), ("nosuchuser",
                                                         "x")):
        with pytest.raises(redis.exceptions.ResponseError) as e:
            x.execute_command("AUTH", user, pw)
        assert str(e.value).startswith("WRONGPASS"), (user, str(e.value))
    # the connection stays authenticated as before
    assert x.execute_command("ACL", "WHOAMI") == b"default"
    # HELLO 2 AUTH user pass
    h = srv.client()
    hello = h.execute_command("HELLO", "2", "AUTH", "alice", "apw")
    assert hello
    assert h.execute_command("ACL", "WHOAMI") == b"alice"
    # failed AUTHs are in ACL LOG with reason auth and the user tried
    entries = [as_dict(e) for e in c.execute_command("ACL", "LOG")]
    users = set(e[b"username"] for e in entries if e[b"reason"] == b"auth")
    assert {b"alice", b"bob", b"nosuchuser"} <= users, entries
    assert int(c.info("stats")["acl_access_denied_auth"]) >= 3
    # CONFIG SET requirepass changes the default user's password
    c.config_set("requirepass", "newpw")
    y = srv.client()
    with pytest.raises(redis.exceptions.ResponseError):
        y.execute_command("AUTH", "dpw")
    assert y.execute_command("AUTH", "newpw")
    g = as_dict(c.execute_command("ACL", "GETUSER", "default"))
    assert len(g[b"passwords"]) == 1 and b"nopass" not in g[b"flags"]
    # requirepass "" makes default nopass again: new clients need no AUTH
    c.config_set("requirepass", "")
    assert srv.client().ping()
    # default off: new clients must AUTH as someone else
    c.execute_command("ACL", "SETUSER", "default", "off")
    z = srv.client()
    with pytest.raises(redis.exceptions.AuthenticationError):
        z.get("k")
    assert z.execute_command("AUTH", "alice", "apw")
    assert z.get("k") is None
    # CLIENT LIST names each connection's user
    lst = c.execute_command("CLIENT", "LIST").decode()
    assert "user=alice" in lst and "user=default" in lst


def test_setuser_errors_and_getuser(server_factory):
    srv = server_factory()
    c = srv.client()
    bad = [
        (["bogus"], "Syntax error"),
        (["+nosuch"], "Unknown command or category name in ACL"),
        (["+@nosuch"], "Unknown command or category name in ACL"),
        (["#ABCD"], "The password hash must be exactly 64 characters"),
        (["<nope"], "The password you are trying to remove from the user "
                    "does not exist"),
        (["~*", "~foo"], "Adding a pattern after the * pattern"),
        (["%X~a"], "Syntax error"),
        (["(~x +get)"], "selectors"),
    ]
    for rules, msg in bad:
        with pytest.raises(redis.exceptions.ResponseError) as e:
            c.execute_command("ACL", "SETUSER", "u1", *rules)
        assert msg in str(e.value), (rules, str(e.value))
        assert "Error in ACL SETUSER modifier" in str(e.value)
    # nothing was created by the failed calls
    assert c.execute_command("ACL", "GETUSER", "u1") is None
    # all or nothing for an existing user
    c.execute_command("ACL", "SETUSER", "u2", "on", ">p", "~k*", "+get")
    before = c.execute_command("ACL", "LIST")
    with pytest.raises(redis.exceptions.ResponseError):
        c.execute_command("ACL", "SETUSER", "u2", "off", "+set", "bogus")
    assert c.execute_command("ACL", "LIST") == before
    g = as_dict(c.execute_command("ACL", "GETUSER", "u2"))
    assert g[b"flags"] == [b"on"]
    assert g[b"keys"] == b"~k*"
    assert g[b"commands"] == b"-@all +get"
    assert len(g[b"passwords"]) == 1 and len(g[b"passwords"][0]) == 64
    with pytest.raises(redis.exceptions.ResponseError) as e:
        c.execute_command("ACL", "DELUSER", "default")
    assert "cannot be removed" in str(e.value)
    assert c.execute_command("ACL", "DELUSER", "u2", "nobody") == 1
    assert c.execute_command("ACL", "USERS") == [b"default"]
    # GENPASS
    p = c.execute_command("ACL", "GENPASS")
    assert len(p) == 64 and int(p, 16) >= 0
    assert len(c.execute_command("ACL", "GENPASS", "5")) == 2
    with pytest.raises(redis.exceptions.ResponseError):
        c.execute_command("ACL", "GENPASS", "0")
    # user names Redis refuses
    with pytest.raises(redis.exceptions.ResponseError):
        c.execute_command("ACL", "SETUSER", "bad name")


def test_rule_changes_apply_to_live_connections(server_factory):
    srv = server_factory()
    admin = srv.client()
    admin.execute_command("ACL", "SETUSER", "carol", "on", ">p", "~*",
                          "+@all")
    carol = srv.client(username="carol", password="p")
    carol.set("k", "v")
    admin.execute_command("ACL", "SETUSER", "carol", "-set")
    with pytest.raises(redis.exceptions.NoPermissionError):
        carol.set("k", "v2")
    assert carol.get("k") == b"v"
    # a permission taken away between MULTI and EXEC: that command fails
    # inside EXEC's reply, the others run
    pipe = carol.pipeline(transaction=True)
    pipe.get("k")
    pipe.incr("n")
    carol_raw = srv.client(username="carol", password="p")
    carol_raw.execute_command("MULTI")
    carol_raw.execute_command("GET", "k")
    carol_raw.execute_command("INCR", "n")
    admin.execute_command("ACL", "SETUSER", "carol", "-incr")
    res = carol_raw.execute_command("EXEC")
    assert res[0] == b"v"
    assert isinstance(res[1], redis.exceptions.NoPermissionError), res
    last = as_dict(admin.execute_command("ACL", "LOG", "1")[0])
    assert last[b"object"] == b"incr" and last[b"context"] == b"multi"
    # a command refused while queued aborts the transaction
    carol_raw.execute_command("MULTI")
    with pytest.raises(redis.exceptions.NoPermissionError):
        carol_raw.execute_command("INCR", "n")
    with pytest.raises(redis.exceptions.ExecAbortError):
        carol_raw.execute_command("EXEC")
    # ACL DELUSER closes the user's connections
    admin.execute_command("ACL", "DELUSER", "carol")
    deadline = time.time() + 5
    closed = False
    while time.time() < deadline and not closed:
        try:
            carol.ping()
            time.sleep(0.1)
        except (redis.exceptions.ConnectionError,
                redis.exceptions.AuthenticationError):
            closed = True
    assert closed
    deadline = time.time() + 5
    while "client_closed_acl" not in srv.logs() and time.time() < deadline:
        time.sleep(0.1)
    assert "client_closed_acl" in srv.logs()


def test_acl_log(server_factory):
    srv = server_factory()
    admin = srv.client()
    admin.execute_command("ACL", "SETUSER", "dave", "on", ">p", "~a*",
                          "+get")
    d = srv.client(username="dave", password="p")
    for _ in range(3):
        with pytest.raises(redis.exceptions.NoPermissionError):
            d.set("a1", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        d.get("b1")
    entries = [as_dict(e) for e in admin.execute_command("ACL", "LOG")]
    assert entries[0][b"reason"] == b"key" and \
        entries[0][b"object"] == b"b1"
    cmd = [e for e in entries if e[b"reason"] == b"command"]
    assert len(cmd) == 1 and cmd[0][b"count"] == 3 and \
        cmd[0][b"object"] == b"set" and cmd[0][b"username"] == b"dave"
    assert b"user=dave" in cmd[0][b"client-info"]
    assert cmd[0][b"context"] == b"toplevel"
    assert len(admin.execute_command("ACL", "LOG", "1")) == 1
    # a client named with a megabyte leaves at most 1 KiB of it in the log
    d.execute_command("HELLO", "2", "SETNAME", "n" * (1 << 20))
    with pytest.raises(redis.exceptions.NoPermissionError):
        d.get("b2")
    e0 = as_dict(admin.execute_command("ACL", "LOG", "1")[0])
    assert e0[b"object"] == b"b2" and len(e0[b"client-info"]) <= 1024
    assert admin.execute_command("ACL", "LOG", "RESET")
    assert admin.execute_command("ACL", "LOG") == []
    info = admin.info("stats")
    assert int(info["acl_access_denied_cmd"]) == 3
    assert int(info["acl_access_denied_key"]) == 2


def write_acl_file(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def test_acl_file_save_load_and_restart(server_factory, tmp_path):
    path = str(tmp_path / "users.acl")
    write_acl_file(path, "# users\n\nuser erin on >epw ~e* +@read +set\n")
    srv = server_factory(args=["--aclfile", path])
    admin = srv.client()
    assert sorted(admin.execute_command("ACL", "USERS")) == [b"default",
                                                             b"erin"]
    e = srv.client(username="erin", password="epw")
    e.set("e1", "v")
    with pytest.raises(redis.exceptions.NoPermissionError):
        e.set("x1", "v")
    # SAVE writes every user; a restart reads them back
    admin.execute_command("ACL", "SETUSER", "frank", "on", ">fpw", "~*",
                          "+@all")
    assert admin.execute_command("ACL", "SAVE")
    text = open(path).read()
    assert "user frank on #" in text and "fpw" not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    srv.restart()
    f = srv.client(username="frank", password="fpw")
    assert f.ping()
    # LOAD replaces the users; a bad file changes nothing
    write_acl_file(path, "user erin on >epw ~* +@all\nuser bogus on wat\n")
    admin = srv.client()
    with pytest.raises(redis.exceptions.ResponseError) as ex:
        admin.execute_command("ACL", "LOAD")
    assert "line 2" in str(ex.value) and "Syntax error" in str(ex.value)
    assert b"frank" in admin.execute_command("ACL", "USERS")
    e = srv.client(username="erin", password="epw")
    assert e.get("e1") == b"v"
    write_acl_file(path, "user erin on >epw2 ~* +@all\n")
    assert admin.execute_command("ACL", "LOAD")
    # erin's password changed in the file: her open session ends too
    # (rotating a leaked password must end the sessions opened with it)
    deadline = time.time() + 5
    ended = False
    while time.time() < deadline and not ended:
        try:
            e.get("e1")
            time.sleep(0.1)
        except (redis.exceptions.ConnectionError,
                redis.exceptions.AuthenticationError):
            ended = True
    assert ended
    assert sorted(admin.execute_command("ACL", "USERS")) == [b"default",
                                                             b"erin"]
    # frank's connection was closed: his user is gone
    deadline = time.time() + 5
    gone = False
    while time.time() < deadline and not gone:
        try:
            f.ping()
            time.sleep(0.1)
        except (redis.exceptions.ConnectionError,
                redis.exceptions.AuthenticationError):
            gone = True
    assert gone
    assert srv.client(username="erin", password="epw2").ping()


def test_acl_file_refused_at_start(server_factory, tmp_path):
    cases = []
    p1 = str(tmp_path / "bad.acl")
    write_acl_file(p1, "user x on bogusrule\n")
    cases.append((p1, "line 1"))
    p2 = str(tmp_path / "open.acl")
    write_acl_file(p2, "user x on >p\n", mode=0o666)
    cases.append((p2, "chmod 600"))
    cases.append((str(tmp_path / "missing.acl"), "no such file"))
    p4 = str(tmp_path / "link.acl")
    os.symlink(p1, p4)
    cases.append((p4, "symbolic link"))
    p5 = str(tmp_path / "fifo.acl")
    os.mkfifo(p5, 0o600)
    cases.append((p5, "not a regular file"))  # refused without blocking
    for path, msg in cases:
        srv = server_factory(args=["--aclfile", path], start=False)
        srv.start(wait=False)
        rc = srv.wait_exit(timeout=30)
        assert rc not in (0, None), path
        assert msg in srv.logs(), (path, srv.logs()[-500:])


def test_acl_save_without_a_file_says_how(server_factory):
    c = server_factory().client()
    for sub in ("SAVE", "LOAD"):
        with pytest.raises(redis.exceptions.ResponseError) as e:
            c.execute_command("ACL", sub)
        assert "--aclfile" in str(e.value)


def http_req(port, method, path, user=None, pw=None, body=None, bearer=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Host": "127.0.0.1:%d" % port}
    if user is not None:
        h["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (user, pw)).encode()).decode()
    if bearer is not None:
        h["Authorization"] = "Bearer " + bearer
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def test_http_maps_basic_auth_to_acl_users(server_factory):
    srv = server_factory(args=["--requirepass", "dpw"])
    admin = srv.client(password="dpw")
    admin.execute_command("ACL", "SETUSER", "gina", "on", ">gpw", "~g*",
                          "%R~pub*", "+@read", "+set")
    admin.set("pub1", "hello")
    port = srv.http_port
    assert http_req(port, "GET", "/kv/pub1")[0] == 401
    assert http_req(port, "GET", "/kv/pub1", "gina", "bad")[0] == 401
    st, body = http_req(port, "GET", "/kv/pub1", "gina", "gpw")
    assert (st, body) == (200, b"hello")
    # a key outside the patterns, a write to a read-only pattern, and a
    # command the user lacks: 403 with the NOPERM text
    st, body = http_req(port, "GET", "/kv/secret", "gina", "gpw")
    assert st == 403 and b"NOPERM" in body
    st, body = http_req(port, "PUT", "/kv/pub1", "gina", "gpw", body=b"x")
    assert st == 403 and b"NOPERM" in body
    st, _ = http_req(port, "PUT", "/kv/g1", "gina", "gpw", body=b"mine")
    assert st == 204
    assert admin.get("g1") == b"mine"
    st, body = http_req(port, "DELETE", "/kv/g1", "gina", "gpw")
    assert st == 403 and b"'del'" in body
    # the ops endpoints need INFO
    assert http_req(port, "GET", "/stats", "gina", "gpw")[0] == 403
    admin.execute_command("ACL", "SETUSER", "gina", "+info")
    assert http_req(port, "GET", "/stats", "gina", "gpw")[0] == 200
    # Bearer is the default user's password; Basic with default works too
    assert http_req(port, "GET", "/kv/pub1", bearer="dpw")[0] == 200
    assert http_req(port, "GET", "/kv/pub1", "default", "dpw")[0] == 200
    assert http_req(port, "DELETE", "/kv/pub1", bearer="dpw")[0] == 204
    # failed HTTP logins are in ACL LOG like failed AUTHs
    entries = [as_dict(e) for e in admin.execute_command("ACL", "LOG")]
    assert any(e[b"reason"] == b"auth" and e[b"username"] == b"gina" and
               b"http" in e[b"client-info"] for e in entries), entries
    # HTTP denials are counted like RESP's
    info = admin.info("stats")
    assert int(info["acl_access_denied_key"]) >= 2
    assert int(info["acl_access_denied_cmd"]) >= 2


@pytest.fixture
def cluster_factory(server_factory):
    from cluster_util import cluster_factory_gen
    yield from cluster_factory_gen(server_factory)


def test_restricted_user_in_a_cluster(cluster_factory):
    """The check runs on the node the client talks to, before the
    command is routed: a restricted user cannot write through a
    coordinator to keys outside its patterns, and can inside them (ACL
    users are per node, as in Redis Cluster)."""
    cl = cluster_factory(3)
    assert all(cl.info(n)["cluster_members"] == "3" for n in cl.nodes)
    for n in cl.nodes:
        n.client().execute_command("ACL", "SETUSER", "hank", "on", ">h",
                                   "~h:*", "+@read", "+@write")
    clients = [n.client(username="hank", password="h") for n in cl.nodes]
    for i in range(30):
        clients[i % 3].set("h:%d" % i, str(i))
        with pytest.raises(redis.exceptions.NoPermissionError):
            clients[i % 3].set("other:%d" % i, str(i))
    for i in range(30):
        assert clients[(i + 1) % 3].get("h:%d" % i) == str(i).encode()
    admin = cl.nodes[0].client()
    for i in range(30):
        assert admin.get("other:%d" % i) is None
    # A refused command in a pipeline answers in its place: coordinated
    # commands before it are still in flight when it is read, and its
    # NOPERM must not overtake their replies (review of issue 15).
    for n, c in zip(cl.nodes, clients):
        p = c.pipeline(transaction=False)
        for i in range(20):
            p.get("h:%d" % i)
            if i % 5 == 4:
                p.get("other:%d" % i)
        out = p.execute(raise_on_error=False)
        want = []
        for i in range(20):
            want.append(str(i).encode())
            if i % 5 == 4:
                want.append("NOPERM")
        assert len(out) == len(want)
        for got, w in zip(out, want):
            if w == "NOPERM":
                assert isinstance(got, redis.exceptions.NoPermissionError), \
                    (n.node_id, out)
            else:
                assert got == w, (n.node_id, out)
    for c in clients:
        c.close()


def count_answers(sock, seconds):
    """WRONGPASS and OK replies read from sock within `seconds`."""
    buf = b""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        if not d:
            break
        buf += d
    return buf.count(b"WRONGPASS"), buf.count(b"+OK")


def test_guessing_another_users_password_is_slowed(server_factory):
    """Review of issue 15: the per-IP AUTH delay also holds a client that
    is authenticated (as a low-privileged user, or as a default user that
    needs no password) once its AUTH fails, and a known password does not
    reset the IP's count between guesses."""
    srv = server_factory()  # default: on, nopass
    admin = srv.client()
    admin.execute_command("ACL", "SETUSER", "boss", "on", ">boss-secret",
                          "~*", "+@all")
    admin.execute_command("ACL", "SETUSER", "low", "on", ">lowpw", "~low:*",
                          "+get")
    # 1. an authenticated client guessing: 2,000 pipelined guesses
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"AUTH low lowpw\r\n" +
              b"".join(b"AUTH boss guess%d\r\n" % i for i in range(2000)))
    wrong, ok = count_answers(s, 4.0)
    s.close()
    print("guesses answered in 4 s while authenticated: %d" % wrong)
    assert ok == 1 and 3 <= wrong <= 12, (ok, wrong)
    # 2. a known password between guesses does not reset the count (a
    # fresh server: no failures from part 1)
    srv = server_factory()
    admin.close()
    admin = srv.client()
    admin.execute_command("ACL", "SETUSER", "boss", "on", ">boss-secret",
                          "~*", "+@all")
    admin.execute_command("ACL", "SETUSER", "low", "on", ">lowpw", "~low:*",
                          "+get")
    t0 = time.monotonic()
    for k in range(4):
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        c.sendall(b"AUTH boss g%da\r\nAUTH boss g%db\r\nAUTH low lowpw\r\n"
                  % (k, k))
        buf = b""
        while buf.count(b"\r\n") < 3:
            d = c.recv(4096)
            assert d, "closed"
            buf += d
        assert buf.count(b"WRONGPASS") == 2 and b"+OK" in buf
        c.close()
    took = time.monotonic() - t0
    print("8 guesses with a valid login after every 2 took %.1f s" % took)
    # 3 free, then 100, 200, 400, ... ms: seconds (before, each login
    # cleared the count and all 8 took a few ms)
    assert took >= 2.0
    admin.close()


def test_requirepass_and_an_acl_file_that_declares_default(server_factory,
                                                          tmp_path):
    """Once ACL SAVE wrote the default user, the file keeps its password
    and a changed --requirepass is not applied at the next start: that is
    logged, not silent (review of issue 15)."""
    path = str(tmp_path / "users.acl")
    write_acl_file(path, "")
    srv = server_factory(args=["--aclfile", path, "--requirepass", "old"])
    c = srv.client(password="old")
    assert c.execute_command("ACL", "SAVE")
    c.close()
    srv.stop()
    srv.args = ["--aclfile", path, "--requirepass", "new"]
    srv.start()
    assert "event=acl_requirepass_ignored" in srv.logs()
    assert srv.client(password="old").ping()
    with pytest.raises(redis.exceptions.ResponseError):
        srv.client(password="new").ping()

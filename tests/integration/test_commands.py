"""Every single-node command through redis-py (RESP2), with Redis 7's
semantics, reply types and exact error texts.

Each test runs against a fresh server (fixtures `server`, `r`, `raw`), so
there is no cross-test state.  Error texts are checked in full, "ERR"
prefix included, through the raw socket client (redis-py strips it).
"""
import time

import pytest
import redis

import conftest
from conftest import TARGET, is_ringkv


def err(raw, *args):
    """Sends one command on the raw socket and returns the error text."""
    reply = raw.call(*args)
    assert raw.last_type == b"-", "expected an error for %r, got %r" % (
        args, reply)
    return str(reply)


def py_err(fn, *args, **kw):
    with pytest.raises(redis.ResponseError) as ei:
        fn(*args, **kw)
    return str(ei.value)


# --- connection and server commands -----------------------------------------

def test_ping_echo(r, raw):
    assert r.ping() is True
    assert r.echo("x y") == b"x y"
    assert r.echo(b"\x00\xff") == b"\x00\xff"
    assert raw.call("PING") == "PONG" and raw.last_type == b"+"
    assert raw.call("PING", "hi") == b"hi" and raw.last_type == b"$"
    assert err(raw, "PING", "a", "b") == \
        "ERR wrong number of arguments for 'ping' command"
    assert err(raw, "ECHO") == \
        "ERR wrong number of arguments for 'echo' command"
    assert err(raw, "ECHO", "a", "b") == \
        "ERR wrong number of arguments for 'echo' command"


def test_commands_are_case_insensitive(r, raw):
    assert raw.call("set", "k", "v") == "OK"
    assert raw.call("GeT", "k") == b"v"
    assert raw.call("sEt", "K", "w") == "OK"
    assert raw.call("get", "K") == b"w"  # keys stay case-sensitive
    assert raw.call("get", "k") == b"v"


def test_select(r, raw):
    assert raw.call("SELECT", "0") == "OK"
    assert err(raw, "SELECT", "16") == "ERR DB index is out of range"
    assert err(raw, "SELECT", "-1") == "ERR DB index is out of range"
    assert err(raw, "SELECT", "x") == \
        "ERR value is not an integer or out of range"
    assert err(raw, "SELECT") == \
        "ERR wrong number of arguments for 'select' command"
    reply = raw.call("SELECT", "1")
    if is_ringkv():
        assert reply == "ERR DB index is out of range" and \
            raw.last_type == b"-"
    else:
        assert reply == "OK"


def test_client_name_id(r, raw):
    cid = raw.call("CLIENT", "ID")
    assert isinstance(cid, int) and cid > 0
    other = r.client_id()
    assert isinstance(other, int) and other != cid
    assert raw.call("CLIENT", "GETNAME") is None
    assert raw.call("CLIENT", "SETNAME", "worker-1") == "OK"
    assert raw.call("CLIENT", "GETNAME") == b"worker-1"
    assert err(raw, "CLIENT", "SETNAME", "a b") == \
        "ERR Client names cannot contain spaces, newlines or special " \
        "characters."
    assert raw.call("CLIENT", "GETNAME") == b"worker-1"
    assert raw.call("CLIENT", "SETNAME", "") == "OK"  # clears the name
    assert raw.call("CLIENT", "GETNAME") is None
    assert err(raw, "CLIENT", "NOSUCHSUB") == \
        "ERR unknown subcommand 'NOSUCHSUB'. Try CLIENT HELP."
    assert r.client_setname("py") is True
    assert r.client_getname() in (b"py", "py")  # redis-py decodes it
    assert raw.call("CLIENT", "ID") == cid  # stable per connection


def test_client_setinfo(raw):
    """CLIENT SETINFO appeared in Redis 7.2 (clients send it on connect);
    Redis 7.0 answers "unknown subcommand", ringkv implements 7.2's."""
    reply = raw.call("CLIENT", "SETINFO", "lib-name", "redis-py")
    if not is_ringkv():
        assert reply == "ERR unknown subcommand 'SETINFO'. Try CLIENT HELP."
        return
    assert reply == "OK"
    assert raw.call("CLIENT", "SETINFO", "LIB-VER", "4.3.4") == "OK"
    assert err(raw, "CLIENT", "SETINFO", "lib-name", "a b") == \
        "ERR lib-name cannot contain spaces, newlines or special " \
        "characters."
    assert err(raw, "CLIENT", "SETINFO", "nosuchattr", "x") == \
        "ERR Unrecognized option 'nosuchattr'"
    assert err(raw, "CLIENT", "SETINFO", "lib-name") == \
        "ERR wrong number of arguments for 'client|setinfo' command"


def test_command_count_info_docs(r, raw):
    n = raw.call("COMMAND", "COUNT")
    assert isinstance(n, int) and n >= 40
    info = raw.call("COMMAND", "INFO", "get", "set", "nosuchcommand")
    assert len(info) == 3
    get, set_, missing = info
    assert missing is None
    assert get[0] == b"get" and get[1] == 2        # name, arity
    assert b"readonly" in [bytes(f, "ascii") if isinstance(f, str) else f
                           for f in get[2]]
    assert (get[3], get[4], get[5]) == (1, 1, 1)   # first, last, step key
    assert set_[0] == b"set" and set_[1] == -3
    assert b"write" in [bytes(f, "ascii") if isinstance(f, str) else f
                        for f in set_[2]]
    mset = raw.call("COMMAND", "INFO", "mset")[0]
    assert mset[1] == -3 and (mset[3], mset[4], mset[5]) == (1, -1, 2)
    docs = raw.call("COMMAND", "DOCS", "get")
    assert isinstance(docs, list) and docs[0] == b"get"
    fields = dict(zip(docs[1][0::2], docs[1][1::2]))
    assert b"summary" in fields and b"group" in fields
    assert raw.call("COMMAND", "DOCS", "nosuchcommand") == []
    # redis-py helpers
    assert r.command_count() == n


def test_command_lists_every_command(raw):
    """COMMAND, COMMAND INFO and COMMAND DOCS without arguments describe
    every command, and agree with COMMAND COUNT."""
    n = raw.call("COMMAND", "COUNT")
    table = raw.call("COMMAND")
    assert len(table) == n
    names = set()
    for entry in table:
        name, arity, flags, first, last, step = entry[:6]
        assert isinstance(name, bytes) and name == name.lower()
        assert isinstance(arity, int) and arity != 0
        assert isinstance(flags, list)
        assert all(isinstance(x, int) for x in (first, last, step))
        names.add(name)
    assert len(names) == n
    for cmd in ("ping", "echo", "hello", "auth", "quit", "select", "client",
                "command", "info", "dbsize", "config", "get", "set", "setnx",
                "getdel", "getex", "del", "unlink", "exists", "mget", "mset",
                "msetnx", "strlen", "append", "incr", "decr", "incrby",
                "decrby", "expire", "pexpire", "expireat", "ttl", "pttl",
                "persist", "type", "scan", "flushall", "multi", "exec",
                "discard"):
        assert cmd.encode() in names, cmd
    assert len(raw.call("COMMAND", "INFO")) == n
    docs = raw.call("COMMAND", "DOCS")
    assert len(docs) == 2 * n
    assert set(docs[0::2]) == names


def test_client_ids_increase(server, raw):
    first = raw.call("CLIENT", "ID")
    import rawresp
    with rawresp.RawClient(server.port) as c2:
        second = c2.call("CLIENT", "ID")
    with rawresp.RawClient(server.port) as c3:
        third = c3.call("CLIENT", "ID")
    assert first < second < third


def test_mget_mset_many_keys(r):
    n = 10000
    r.mset({"m%d" % i: i for i in range(n)})
    got = r.mget(["m%d" % i for i in range(n)] + ["missing"])
    assert got[:-1] == [str(i).encode() for i in range(n)]
    assert got[-1] is None
    assert r.delete(*["m%d" % i for i in range(n)]) == n


def test_info_sections(r):
    r.set("a", "1")
    r.set("b", "2", ex=100)
    info = r.info()
    for field in ("redis_version", "tcp_port", "uptime_in_seconds",
                  "process_id", "connected_clients", "used_memory",
                  "total_commands_processed", "total_connections_received",
                  "keyspace_hits", "keyspace_misses"):
        assert field in info, field
    assert info["db0"]["keys"] == 2 and info["db0"]["expires"] == 1
    server = r.info("server")
    assert server["tcp_port"] == int(r.connection_pool.connection_kwargs[
        "port"])
    assert "redis_version" in server and "connected_clients" not in server
    clients = r.info("clients")
    assert clients["connected_clients"] >= 1
    assert "maxclients" in clients
    mem = r.info("memory")
    assert mem["used_memory"] > 0 and "used_memory_rss" in mem
    assert "loading" in r.info("persistence")
    stats = r.info("stats")
    assert stats["total_commands_processed"] > 0
    assert r.info("keyspace")["db0"]["keys"] == 2
    # raw text: CRLF-separated, "# Section" headers
    raw_text = r.execute_command("INFO", "server")
    if isinstance(raw_text, dict):  # redis-py parses INFO into a dict
        return
    assert raw_text.startswith(b"# Server\r\n")


def test_info_raw_format(raw):
    text = raw.call("INFO")
    assert raw.last_type == b"$"
    sections = [l for l in text.split(b"\r\n") if l.startswith(b"# ")]
    for s in (b"# Server", b"# Clients", b"# Memory", b"# Persistence",
              b"# Stats", b"# Keyspace"):
        assert s in sections, s
    ks = raw.call("INFO", "keyspace")
    assert ks == b"# Keyspace\r\n"  # empty db: no db0 line
    raw.call("SET", "x", "1")
    assert raw.call("INFO", "keyspace").startswith(
        b"# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0")


def test_dbsize(r):
    assert r.dbsize() == 0
    r.mset({"a": 1, "b": 2, "c": 3})
    assert r.dbsize() == 3
    r.delete("a")
    assert r.dbsize() == 2


def test_config_get(server, raw):
    assert raw.call("CONFIG", "GET", "maxclients") == [b"maxclients",
                                                       b"10000"]
    assert raw.call("CONFIG", "GET", "port") == [
        b"port", str(server.port).encode()]
    assert raw.call("CONFIG", "GET", "nosuchsetting") == []
    pair = raw.call("CONFIG", "GET", "maxclients", "port")
    assert dict(zip(pair[0::2], pair[1::2])) == {
        b"maxclients": b"10000", b"port": str(server.port).encode()}
    assert err(raw, "CONFIG", "GET") == \
        "ERR wrong number of arguments for 'config|get' command"


def test_config_get_redis_py(server, r):
    cfg = r.config_get("maxclients")
    assert cfg == {"maxclients": "10000"}


def test_unknown_command(raw):
    assert err(raw, "nosuchcmd", "a", "b") == \
        "ERR unknown command 'nosuchcmd', with args beginning with: 'a' 'b' "
    assert err(raw, "NOSUCHCMD") == \
        "ERR unknown command 'NOSUCHCMD', with args beginning with: "
    # argument text is capped at 128 characters, CR/LF become spaces
    assert err(raw, "nosuch", "a" * 200) == \
        "ERR unknown command 'nosuch', with args beginning with: '%s' " % (
            "a" * 128)
    assert err(raw, "nosuch", "a" * 100, "b" * 100, "c") == \
        "ERR unknown command 'nosuch', with args beginning with: " \
        "'%s' '%s' " % ("a" * 100, "b" * 25)
    assert err(raw, "nosuch", "x\r\ny") == \
        "ERR unknown command 'nosuch', with args beginning with: 'x  y' "
    assert raw.call("PING") == "PONG"  # connection still usable


@pytest.mark.ringkv_only
@pytest.mark.parametrize("cmd", [("lpush", "x", "1"), ("LPUSH", "x"),
                                 ("zadd",), ("xadd", "s", "*", "a", "b")])
def test_other_data_types_are_unknown(raw, cmd):
    args = "".join("'%s' " % a for a in cmd[1:])
    assert err(raw, *cmd) == \
        "ERR unknown command '%s', with args beginning with: %s" % (
            cmd[0], args)


@pytest.mark.parametrize("cmd,name", [
    (("GET",), "get"), (("GET", "a", "b"), "get"), (("SET", "k"), "set"),
    (("DEL",), "del"), (("UNLINK",), "unlink"), (("EXISTS",), "exists"),
    (("MGET",), "mget"), (("MSET", "a"), "mset"),
    (("MSET", "a", "1", "b"), "mset"), (("MSETNX", "a", "1", "b"), "msetnx"),
    (("SETNX", "a"), "setnx"), (("GETDEL",), "getdel"), (("GETEX",), "getex"),
    (("STRLEN",), "strlen"), (("APPEND", "a"), "append"), (("INCR",), "incr"),
    (("DECR", "a", "b"), "decr"), (("INCRBY", "a"), "incrby"),
    (("DECRBY", "a"), "decrby"), (("EXPIRE", "a"), "expire"),
    (("PEXPIRE", "a"), "pexpire"), (("EXPIREAT", "a"), "expireat"),
    (("TTL",), "ttl"), (("PTTL", "a", "b"), "pttl"), (("PERSIST",), "persist"),
    (("TYPE",), "type"), (("SCAN",), "scan"), (("DBSIZE", "x"), "dbsize"),
    (("MULTI", "x"), "multi"),
    (("DISCARD", "x"), "discard"), (("AUTH",), "auth"),
    (("SELECT",), "select"), (("ECHO",), "echo"),
])
def test_wrong_arity(raw, cmd, name):
    assert err(raw, *cmd) == \
        "ERR wrong number of arguments for '%s' command" % name


def test_wrong_arity_redis_py(r):
    assert py_err(r.execute_command, "GET") == \
        "wrong number of arguments for 'get' command"


# --- strings ----------------------------------------------------------------

def test_get_set_basic(r):
    assert r.get("missing") is None
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", "w") is True  # overwrite
    assert r.get("k") == b"w"
    assert r.set("empty", "") is True
    assert r.get("empty") == b""
    assert r.type("k") == b"string"
    assert r.type("missing") == b"none"


def test_set_nx_xx(r, raw):
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.get("k") == b"1"
    assert r.set("k", "3", xx=True) is True
    assert r.get("k") == b"3"
    assert r.set("other", "x", xx=True) is None
    assert r.exists("other") == 0
    assert raw.call("SET", "k", "4", "NX") is None and raw.last_type == b"$"


def test_set_ex_px_exat_pxat(r):
    assert r.set("ex", "v", ex=100)
    assert 98 <= r.ttl("ex") <= 100
    assert r.set("px", "v", px=100000)
    assert 98000 <= r.pttl("px") <= 100000
    now = int(time.time())
    assert r.set("exat", "v", exat=now + 100)
    assert 97 <= r.ttl("exat") <= 100
    nowms = int(time.time() * 1000)
    assert r.set("pxat", "v", pxat=nowms + 100000)
    assert 97000 <= r.pttl("pxat") <= 100000
    # SET without options clears the TTL
    assert r.set("ex", "w")
    assert r.ttl("ex") == -1


def test_set_keepttl(r):
    r.set("k", "v", ex=100)
    assert r.set("k", "w", keepttl=True)
    assert r.get("k") == b"w"
    assert 98 <= r.ttl("k") <= 100
    assert r.set("k", "x")
    assert r.ttl("k") == -1


def test_set_get_option(r, raw):
    assert r.set("k", "v1", get=True) is None
    assert r.set("k", "v2", get=True) == b"v1"
    assert r.get("k") == b"v2"
    # NX + GET is allowed since Redis 7.0: returns the old value, no write
    assert raw.call("SET", "k", "v3", "NX", "GET") == b"v2"
    assert r.get("k") == b"v2"
    assert raw.call("SET", "nokey", "v", "XX", "GET") is None
    assert r.exists("nokey") == 0
    assert raw.call("SET", "k", "v4", "GET", "EX", "100") == b"v2"
    assert 98 <= r.ttl("k") <= 100


@pytest.mark.parametrize("opts", [
    ("NX", "XX"), ("XX", "NX"), ("EX", "10", "PX", "100"),
    ("PX", "100", "EX", "10"), ("EX", "10", "EXAT", "99999999999"),
    ("PXAT", "99999999999999", "PX", "100"), ("KEEPTTL", "EX", "10"),
    ("PX", "10", "KEEPTTL"), ("FOO",), ("EX",), ("PX",), ("NX", "FOO"),
    ("EX", "10", "FOO"),
])
def test_set_syntax_errors(raw, opts):
    assert err(raw, "SET", "k", "v", *opts) == "ERR syntax error"
    assert raw.call("EXISTS", "k") == 0


@pytest.mark.parametrize("opts", [
    ("EX", "0"), ("EX", "-1"), ("PX", "0"), ("PX", "-5"), ("EXAT", "0"),
    ("PXAT", "-1"), ("PX", "9223372036854775807"),
    ("EX", "9223372036854775"),
])
def test_set_invalid_expire(raw, opts):
    assert err(raw, "SET", "k", "v", *opts) == \
        "ERR invalid expire time in 'set' command"
    assert raw.call("EXISTS", "k") == 0


@pytest.mark.parametrize("opts", [("EX", "abc"), ("PX", "1.5"),
                                  ("EXAT", "x"), ("PXAT", "")])
def test_set_expire_not_integer(raw, opts):
    assert err(raw, "SET", "k", "v", *opts) == \
        "ERR value is not an integer or out of range"


def test_set_expire_in_the_past_exat(r):
    # EXAT/PXAT in the past (but > 0) is accepted and the key is gone
    r.set("k", "v")
    assert r.set("k", "v2", exat=1)
    assert r.get("k") is None
    assert r.exists("k") == 0


def test_setnx(r):
    assert r.setnx("k", "1") is True
    assert r.setnx("k", "2") is False
    assert r.get("k") == b"1"


def test_getdel(r):
    r.set("k", "v")
    assert r.getdel("k") == b"v"
    assert r.getdel("k") is None
    assert r.exists("k") == 0


def test_getex(r, raw):
    r.set("k", "v")
    assert r.getex("k") == b"v"
    assert r.ttl("k") == -1
    assert r.getex("k", ex=100) == b"v"
    assert 98 <= r.ttl("k") <= 100
    assert r.getex("k", px=200000) == b"v"
    assert 198000 <= r.pttl("k") <= 200000
    assert r.getex("k", exat=int(time.time()) + 300) == b"v"
    assert 297 <= r.ttl("k") <= 300
    assert r.getex("k", pxat=int(time.time() * 1000) + 400000) == b"v"
    assert 397 <= r.ttl("k") <= 400
    assert r.getex("k", persist=True) == b"v"
    assert r.ttl("k") == -1
    assert r.getex("missing", ex=10) is None
    assert r.exists("missing") == 0
    assert err(raw, "GETEX", "k", "PERSIST", "EX", "10") == \
        "ERR syntax error"
    assert err(raw, "GETEX", "k", "EX", "10", "PX", "100") == \
        "ERR syntax error"
    assert err(raw, "GETEX", "k", "FOO") == "ERR syntax error"
    assert err(raw, "GETEX", "k", "EX") == "ERR syntax error"
    assert err(raw, "GETEX", "k", "EX", "-1") == \
        "ERR invalid expire time in 'getex' command"
    assert err(raw, "GETEX", "k", "EX", "0") == \
        "ERR invalid expire time in 'getex' command"
    assert err(raw, "GETEX", "k", "EXAT", "0") == \
        "ERR invalid expire time in 'getex' command"
    assert err(raw, "GETEX", "k", "PX", "abc") == \
        "ERR value is not an integer or out of range"
    assert r.ttl("k") == -1  # failed GETEX left the key alone


def test_del_unlink_exists(r):
    r.mset({"a": 1, "b": 2, "c": 3})
    assert r.exists("a", "b", "zz") == 2
    assert r.exists("a", "a", "a") == 3  # counted per argument
    assert r.delete("a", "zz") == 1
    assert r.delete("a") == 0
    assert r.unlink("b", "c", "zz") == 2
    assert r.exists("a", "b", "c") == 0
    assert r.dbsize() == 0


def test_mget_mset_msetnx(r):
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "missing", "b") == [b"1", None, b"2"]
    assert r.msetnx({"c": "3", "a": "9"}) is False  # a exists: nothing set
    assert r.exists("c") == 0
    assert r.get("a") == b"1"
    assert r.msetnx({"c": "3", "d": "4"}) is True
    assert r.mget("c", "d") == [b"3", b"4"]
    # repeated keys in MSET: last one wins
    r.execute_command("MSET", "x", "1", "x", "2")
    assert r.get("x") == b"2"
    r.set("t", "v", ex=100)
    r.mset({"t": "w"})
    assert r.ttl("t") == -1  # MSET clears TTLs like SET


def test_strlen_append(r):
    assert r.strlen("nope") == 0
    assert r.append("k", "abc") == 3
    assert r.append("k", "") == 3
    assert r.append("k", b"\x00\xff") == 5
    assert r.get("k") == b"abc\x00\xff"
    assert r.strlen("k") == 5
    r.set("t", "v", ex=100)
    assert r.append("t", "w") == 2
    assert 98 <= r.ttl("t") <= 100  # APPEND keeps the TTL


def test_incr_decr(r, raw):
    assert r.incr("n") == 1
    assert r.incr("n") == 2
    assert r.decr("n") == 1
    assert r.incrby("n", 10) == 11
    assert r.decrby("n", 20) == -9
    assert r.incrby("n", -1) == -10
    assert r.get("n") == b"-10"
    assert r.decr("fresh") == -1
    assert raw.call("INCR", "n") == -9 and raw.last_type == b":"
    r.set("t", "5", ex=100)
    assert r.incr("t") == 6
    assert 98 <= r.ttl("t") <= 100  # INCR keeps the TTL


@pytest.mark.parametrize("value", ["abc", "1.5", " 1", "1 ", "", "+1",
                                   "0x10", "9223372036854775808",
                                   "-9223372036854775809", "1e3"])
def test_incr_not_integer(raw, value):
    raw.call("SET", "k", value)
    assert err(raw, "INCR", "k") == \
        "ERR value is not an integer or out of range"
    assert err(raw, "DECRBY", "k", "1") == \
        "ERR value is not an integer or out of range"
    assert raw.call("GET", "k") == value.encode()


def test_incr_leading_zero_rejected(raw):
    raw.call("SET", "k", "007")
    assert err(raw, "INCR", "k") == \
        "ERR value is not an integer or out of range"
    raw.call("SET", "k", "-0")
    assert err(raw, "INCR", "k") == \
        "ERR value is not an integer or out of range"


@pytest.mark.parametrize("incr", ["x", "1.5", "9223372036854775808", ""])
def test_incrby_bad_increment(raw, incr):
    assert err(raw, "INCRBY", "k", incr) == \
        "ERR value is not an integer or out of range"
    assert err(raw, "DECRBY", "k", incr) == \
        "ERR value is not an integer or out of range"
    assert raw.call("EXISTS", "k") == 0


def test_incr_overflow(raw):
    raw.call("SET", "n", "9223372036854775807")
    assert err(raw, "INCR", "n") == \
        "ERR increment or decrement would overflow"
    assert err(raw, "INCRBY", "n", "1") == \
        "ERR increment or decrement would overflow"
    assert raw.call("GET", "n") == b"9223372036854775807"
    raw.call("SET", "n", "-9223372036854775808")
    assert err(raw, "DECR", "n") == \
        "ERR increment or decrement would overflow"
    assert err(raw, "INCRBY", "n", "-1") == \
        "ERR increment or decrement would overflow"
    assert raw.call("DECRBY", "n", "-1") == -9223372036854775807
    raw.call("SET", "n", "0")
    assert raw.call("INCRBY", "n", "-9223372036854775808") == \
        -9223372036854775808
    # DECRBY of LLONG_MIN cannot be negated
    raw.call("SET", "m", "0")
    reply = raw.call("DECRBY", "m", "-9223372036854775808")
    assert raw.last_type == b"-"
    assert reply in ("ERR decrement would overflow",
                     "ERR increment or decrement would overflow")


# --- expiry ------------------------------------------------------------------

def test_ttl_pttl_minus_one_minus_two(r):
    assert r.ttl("missing") == -2
    assert r.pttl("missing") == -2
    r.set("k", "v")
    assert r.ttl("k") == -1
    assert r.pttl("k") == -1


def test_expire_pexpire_expireat_persist(r, raw):
    r.set("k", "v")
    assert r.expire("k", 100) is True
    assert 98 <= r.ttl("k") <= 100
    assert r.pexpire("k", 50000) is True
    assert 48000 <= r.pttl("k") <= 50000
    assert r.expireat("k", int(time.time()) + 200) is True
    assert 197 <= r.ttl("k") <= 200
    assert r.persist("k") is True
    assert r.persist("k") is False  # no TTL anymore
    assert r.ttl("k") == -1
    assert r.expire("missing", 10) is False
    assert r.persist("missing") is False
    assert raw.call("EXPIRE", "k", "100") == 1 and raw.last_type == b":"
    assert err(raw, "EXPIRE", "k", "abc") == \
        "ERR value is not an integer or out of range"
    assert err(raw, "EXPIRE", "k", "9223372036854775807") == \
        "ERR invalid expire time in 'expire' command"
    assert err(raw, "PEXPIRE", "k", "9223372036854775807") == \
        "ERR invalid expire time in 'pexpire' command"


def test_expire_non_positive_deletes(r):
    r.set("a", "v")
    assert r.expire("a", 0) is True
    assert r.exists("a") == 0
    r.set("b", "v")
    assert r.pexpire("b", -1) is True
    assert r.get("b") is None
    r.set("c", "v")
    assert r.expireat("c", 1) is True
    assert r.exists("c") == 0
    assert r.dbsize() == 0


def test_keys_vanish_after_px(r):
    r.set("short", "v", px=100)
    r.set("long", "v", px=100000)
    r.set("plain", "v")
    assert r.get("short") == b"v"
    time.sleep(0.3)
    assert r.get("short") is None
    assert r.exists("short") == 0
    assert r.ttl("short") == -2
    assert r.get("long") == b"v"
    assert r.type("short") == b"none"


def test_expired_keys_invisible_everywhere(r):
    r.set("e1", "v", px=100)
    r.set("e2", "v", px=100)
    r.set("keep", "v")
    time.sleep(0.3)
    assert r.mget("e1", "e2", "keep") == [None, None, b"v"]
    assert r.strlen("e1") == 0
    assert r.exists("e1", "e2", "keep") == 1
    assert r.incr("e2") == 1  # starts from scratch, no TTL
    assert r.ttl("e2") == -1
    assert r.setnx("e1", "new") is True
    keys = set()
    cursor = 0
    while True:
        cursor, batch = r.scan(cursor)
        keys.update(batch)
        if cursor == 0:
            break
    assert keys == {b"e1", b"e2", b"keep"}


def test_active_expiry_shrinks_dbsize(r):
    r.mset({"k%d" % i: "v" for i in range(50)})
    for i in range(50):
        r.pexpire("k%d" % i, 100)
    r.set("stay", "v")
    deadline = time.time() + 5
    while time.time() < deadline and r.dbsize() > 1:
        time.sleep(0.1)
    assert r.dbsize() == 1  # expired without being accessed


def test_active_expiry_after_a_keyspace_without_ttls(r):
    # The cycle skips its walk while no key has a TTL (engine_expiring_keys,
    # docs/operations.md "Expiry"): a TTL set later, or set again after
    # PERSIST took every TTL away, must still expire untouched.
    r.mset({"p%d" % i: "v" for i in range(3000)})
    time.sleep(0.3)  # a few ticks with nothing to expire
    r.pexpire("p1", 60000)
    assert r.persist("p1") is True  # back to no TTL anywhere
    time.sleep(0.3)
    r.pexpire("p7", 100)
    r.set("q", "v", px=100)
    deadline = time.time() + 5
    while time.time() < deadline and r.dbsize() > 2999:
        time.sleep(0.1)
    assert r.dbsize() == 2999  # p7 and q expired without being accessed
    assert r.ttl("p1") == -1


def test_getex_px_vanishes(r):
    r.set("k", "v")
    assert r.getex("k", px=100) == b"v"
    time.sleep(0.3)
    assert r.get("k") is None


# --- SCAN ---------------------------------------------------------------------

def _scan_all(r, **kw):
    seen = []
    cursor = 0
    rounds = 0
    while True:
        cursor, batch = r.scan(cursor, **kw)
        assert isinstance(cursor, int)
        seen.extend(batch)
        rounds += 1
        assert rounds < 100000
        if cursor == 0:
            return seen, rounds


def test_scan_full_iteration(r):
    keys = {("key:%04d" % i).encode() for i in range(1000)}
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, b"v")
    pipe.execute()
    seen, rounds = _scan_all(r)
    assert set(seen) == keys
    assert len(seen) >= 1000
    seen, rounds = _scan_all(r, count=100)
    assert set(seen) == keys
    seen, rounds = _scan_all(r, count=1)
    assert set(seen) == keys
    assert rounds > 10  # COUNT 1 really pages


def test_scan_match(r):
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set("user:%d" % i, "v")
        if i < 100:
            pipe.set("other:%d" % i, "v")
    pipe.execute()
    seen, _ = _scan_all(r, match="user:1*", count=50)
    expect = {("user:%d" % i).encode() for i in range(1000)
              if str(i).startswith("1")}
    assert set(seen) == expect
    seen, _ = _scan_all(r, match="other:?", count=1000)
    assert set(seen) == {("other:%d" % i).encode() for i in range(10)}
    seen, _ = _scan_all(r, match="user:[12]0")
    assert set(seen) == {b"user:10", b"user:20"}
    seen, _ = _scan_all(r, match="nothing*")
    assert seen == []
    seen, _ = _scan_all(r, match="*")
    assert len(set(seen)) == 1100


def test_scan_while_modified(r):
    """Keys present for the whole iteration are returned at least once."""
    stable = {("s%d" % i).encode() for i in range(500)}
    r.mset({k: b"v" for k in stable})
    seen = set()
    cursor, n = 0, 0
    while True:
        cursor, batch = r.scan(cursor, count=20)
        seen.update(batch)
        r.set("added%d" % n, "v")
        r.delete("added%d" % (n - 1))
        n += 1
        if cursor == 0:
            break
    assert stable <= seen


def test_scan_errors(raw):
    raw.call("SET", "a", "1")
    assert raw.call("SCAN", "0") == [b"0", [b"a"]]
    assert err(raw, "SCAN", "abc") == "ERR invalid cursor"
    assert err(raw, "SCAN", "18446744073709551616") == "ERR invalid cursor"
    assert err(raw, "SCAN", "0", "COUNT", "0") == "ERR syntax error"
    assert err(raw, "SCAN", "0", "COUNT", "-1") == "ERR syntax error"
    assert err(raw, "SCAN", "0", "COUNT", "x") == \
        "ERR value is not an integer or out of range"
    assert err(raw, "SCAN", "0", "MATCH") == "ERR syntax error"
    assert err(raw, "SCAN", "0", "FOO", "x") == "ERR syntax error"


# --- MULTI / EXEC / DISCARD ----------------------------------------------------

def test_multi_exec_redis_py(r):
    pipe = r.pipeline(transaction=True)
    pipe.set("a", "1").incr("a").get("a").mget("a", "b").delete("a")
    assert pipe.execute() == [True, 2, b"2", [b"2", None], 1]
    assert r.exists("a") == 0


def test_multi_exec_raw(raw):
    assert raw.call("MULTI") == "OK"
    assert raw.call("SET", "k", "v") == "QUEUED"
    assert raw.call("INCR", "n") == "QUEUED"
    assert raw.call("GET", "k") == "QUEUED"
    assert raw.call("EXEC") == ["OK", 1, b"v"]
    assert raw.call("MULTI") == "OK"
    assert raw.call("EXEC") == []


def test_exec_runtime_error_does_not_abort(raw):
    raw.call("SET", "s", "abc")
    raw.call("MULTI")
    assert raw.call("INCR", "s") == "QUEUED"  # fails only when run
    assert raw.call("SET", "x", "1") == "QUEUED"
    out = raw.call("EXEC")
    assert out[0] == "ERR value is not an integer or out of range"
    assert out[1] == "OK"
    assert raw.call("GET", "x") == b"1"


def test_exec_without_multi(raw, r):
    assert err(raw, "EXEC") == "ERR EXEC without MULTI"
    assert err(raw, "DISCARD") == "ERR DISCARD without MULTI"
    assert py_err(r.execute_command, "EXEC") == "EXEC without MULTI"


def test_nested_multi(raw):
    assert raw.call("MULTI") == "OK"
    assert err(raw, "MULTI") == "ERR MULTI calls can not be nested"
    assert raw.call("SET", "k", "v") == "QUEUED"
    # the nested MULTI did not abort the transaction
    assert raw.call("EXEC") == ["OK"]
    assert raw.call("GET", "k") == b"v"


def test_exec_wrong_arity_inside_multi(raw):
    raw.call("MULTI")
    raw.call("SET", "k", "v")
    assert err(raw, "EXEC", "x") == (
        "EXECABORT Transaction discarded because of: wrong number of "
        "arguments for 'exec' command")
    assert raw.call("EXISTS", "k") == 0
    assert err(raw, "EXEC") == "ERR EXEC without MULTI"


def test_discard(raw, r):
    raw.call("SET", "k", "old")
    assert raw.call("MULTI") == "OK"
    assert raw.call("SET", "k", "new") == "QUEUED"
    assert raw.call("DISCARD") == "OK"
    assert raw.call("GET", "k") == b"old"
    assert err(raw, "EXEC") == "ERR EXEC without MULTI"
    pipe = r.pipeline(transaction=True)
    pipe.set("k", "py")
    pipe.reset()  # redis-py: discard without sending
    assert r.get("k") == b"old"


def test_queued_errors_execabort(raw, r):
    raw.call("SET", "k", "before")
    assert raw.call("MULTI") == "OK"
    assert raw.call("SET", "k", "v") == "QUEUED"
    assert err(raw, "GET") == \
        "ERR wrong number of arguments for 'get' command"
    assert err(raw, "NOSUCHCMD", "x") == \
        "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' "
    assert err(raw, "EXEC") == \
        "EXECABORT Transaction discarded because of previous errors."
    assert raw.call("GET", "k") == b"before"
    # the connection is out of MULTI afterwards
    assert err(raw, "EXEC") == "ERR EXEC without MULTI"
    # the same through redis-py
    pipe = r.pipeline(transaction=True)
    pipe.set("k", "py")
    pipe.execute_command("GET")
    with pytest.raises(redis.ResponseError) as ei:
        pipe.execute()
    assert "Transaction discarded because of previous errors" in str(
        ei.value) or "wrong number of arguments" in str(ei.value)
    assert r.get("k") == b"before"


def test_multi_is_isolated(server, r):
    """Commands of other clients do not interleave inside EXEC."""
    other = server.client()
    try:
        pipe = r.pipeline(transaction=True)
        pipe.set("k", "1")
        for _ in range(100):
            pipe.incr("k")
        pipe.get("k")
        res = pipe.execute()
        assert res[-1] == b"101"
        other.set("k", "x")
        assert r.get("k") == b"x"
    finally:
        other.close()


def test_commands_inside_multi_not_run_before_exec(server, raw):
    other = server.client()
    try:
        raw.call("MULTI")
        raw.call("SET", "k", "v")
        assert other.get("k") is None
        raw.call("EXEC")
        assert other.get("k") == b"v"
    finally:
        other.close()


# --- binary safety -------------------------------------------------------------

def test_binary_keys_and_values(r):
    key = bytes(range(256))
    val = bytes(range(255, -1, -1)) * 4
    assert r.set(key, val)
    assert r.get(key) == val
    assert r.strlen(key) == 1024
    k2 = b"\r\n\x00*3\r\n$3\r\nSET"
    r.set(k2, b"\x00")
    assert r.get(k2) == b"\x00"
    assert r.mget(key, k2) == [val, b"\x00"]
    assert r.exists(key, k2) == 2
    seen, _ = _scan_all(r)
    assert set(seen) == {key, k2}
    assert r.append(k2, b"\r\n") == 3
    assert r.delete(key, k2) == 2


def test_empty_key(r, raw):
    """Redis accepts the empty string as a key; ringkv refuses it on every
    write (docs/protocol.md, "Differences from Redis") and reads see no
    such key."""
    if not is_ringkv():
        assert r.set(b"", b"empty-key")
        assert r.get(b"") == b"empty-key"
        assert r.exists(b"") == 1
        assert r.delete(b"") == 1
        return
    text = "ERR invalid key: ringkv does not support empty keys"
    for cmd in (("SET", "", "v"), ("SETNX", "", "v"), ("APPEND", "", "x"),
                ("INCR", ""), ("MSET", "", "v", "a", "b"),
                ("MSET", "a", "b", "", "v"), ("MSETNX", "", "v", "a", "b"),
                ("MSETNX", "a", "b", "", "v")):
        assert err(raw, *cmd) == text, cmd
        # a refused MSET/MSETNX writes nothing, whatever the key's position
        assert raw.call("DBSIZE") == 0, "%r wrote some keys" % (cmd,)
    assert raw.call("GET", "") is None
    assert raw.call("EXISTS", "") == 0
    assert raw.call("DEL", "") == 0
    assert raw.call("TTL", "") == -2
    assert raw.call("TYPE", "") == "none"
    assert raw.call("DBSIZE") == 0


def test_utf8_keys(r):
    r.set("ключ", "значение")
    r.set("鍵", "値")
    assert r.get("ключ") == "значение".encode()
    assert r.get("鍵") == "値".encode()


# --- FLUSHALL and QUIT ------------------------------------------------------------

def test_flushall(r, raw):
    r.mset({"a": 1, "b": 2})
    r.set("c", "3", ex=100)
    assert r.flushall() is True
    assert r.dbsize() == 0
    assert r.get("a") is None
    assert raw.call("FLUSHALL") == "OK"


@pytest.mark.ringkv_only
def test_flushall_refused_by_default(server_factory):
    import rawresp
    s = server_factory(args=[])
    with rawresp.RawClient(s.port) as c:
        c.call("SET", "a", "1")
        reply = c.call("FLUSHALL")
        assert c.last_type == b"-", reply
        assert reply.startswith("ERR ")
        assert c.call("GET", "a") == b"1"


def test_quit(raw, r):
    assert raw.call("QUIT") == "OK"
    assert raw.expect_closed()
    assert r.ping()  # others unaffected


def test_auth_without_password(raw):
    assert err(raw, "AUTH", "x") == (
        "ERR AUTH <password> called without any password configured for "
        "the default user. Are you sure your configuration is correct?")


# --- Redis 7 EXPIRE options, TTL rounding, duplicates ----------------------------

def test_expire_options_nx_xx_gt_lt(raw):
    raw.call("SET", "k", "v")
    assert raw.call("EXPIRE", "k", "100", "XX") == 0  # no TTL yet
    assert raw.call("EXPIRE", "k", "100", "NX") == 1
    assert raw.call("EXPIRE", "k", "200", "NX") == 0
    assert raw.call("EXPIRE", "k", "50", "GT") == 0
    assert raw.call("EXPIRE", "k", "200", "GT") == 1
    assert raw.call("TTL", "k") in (199, 200)
    assert raw.call("EXPIRE", "k", "300", "LT") == 0
    assert raw.call("EXPIRE", "k", "10", "LT") == 1
    assert raw.call("PEXPIRE", "k", "50000", "XX") == 1
    assert raw.call("PERSIST", "k") == 1
    # no TTL counts as an infinite one for GT and LT
    assert raw.call("EXPIRE", "k", "10", "GT") == 0
    assert raw.call("EXPIRE", "k", "10", "LT") == 1
    assert err(raw, "EXPIRE", "k", "10", "GT", "LT") == \
        "ERR GT and LT options at the same time are not compatible"
    assert err(raw, "EXPIRE", "k", "10", "NX", "XX") == \
        "ERR NX and XX, GT or LT options at the same time are not " \
        "compatible"
    assert err(raw, "EXPIRE", "k", "10", "NX", "GT") == \
        "ERR NX and XX, GT or LT options at the same time are not " \
        "compatible"
    assert err(raw, "EXPIRE", "k", "10", "FOO") == \
        "ERR Unsupported option FOO"


def test_ttl_rounds_to_nearest_second(raw):
    raw.call("SET", "a", "v", "PX", "1800")
    assert raw.call("TTL", "a") == 2  # (ms + 500) / 1000, like Redis
    raw.call("SET", "b", "v", "PX", "1200")
    assert raw.call("TTL", "b") == 1
    assert 1000 < raw.call("PTTL", "b") <= 1200


def test_duplicate_keys_in_arguments(raw):
    raw.call("SET", "p", "v")
    assert raw.call("DEL", "p", "p") == 1
    assert raw.call("MSETNX", "a", "1", "a", "2") == 1
    assert raw.call("GET", "a") == b"2"
    assert raw.call("UNLINK", "a", "a", "a") == 1


def test_inline_tabs_and_spaces(raw):
    raw.send(b"ECHO\thello\r\n")
    assert raw.read_reply() == b"hello"
    raw.send(b'SET  x\t"a b"  \r\n')
    assert raw.read_reply() == "OK"
    assert raw.call("GET", "x") == b"a b"

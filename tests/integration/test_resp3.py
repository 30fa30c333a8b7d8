"""RESP3 (HELLO 3) through the raw client in rawresp.py: reply shapes and
exact bytes of every in-scope command, HELLO with AUTH and SETNAME, and
protocol switching.  redis-py 4.3 has no RESP3, hence the raw client.
"""
import socket
import threading

import pytest

import rawresp
from conftest import AUTH_PASSWORD, is_ringkv
from rawresp import RawClient


def hello3(c, *extra):
    reply = c.call("HELLO", "3", *extra)
    assert c.last_type == b"%", reply
    return reply


def check_hello_map(reply, proto, cid=None):
    if isinstance(reply, rawresp.Map):
        d = reply.to_dict()
        keys = [k.decode() for k in reply.keys()]
    else:  # RESP2: flat array
        d = {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}
        keys = [reply[i].decode() for i in range(0, len(reply), 2)]
    assert keys == ["server", "version", "proto", "id", "mode", "role",
                    "modules"]
    assert isinstance(d["server"], bytes) and d["server"]
    assert isinstance(d["version"], bytes)
    assert all(p.isdigit() for p in d["version"].split(b".")), d["version"]
    assert d["proto"] == proto
    assert isinstance(d["id"], int) and d["id"] > 0
    if cid is not None:
        assert d["id"] == cid
    assert d["mode"] == b"standalone"
    assert d["role"] == b"master"
    assert d["modules"] == []
    return d


def test_hello3_reply_shape(raw):
    cid = raw.call("CLIENT", "ID")
    reply = hello3(raw)
    d = check_hello_map(reply, 3, cid)
    assert raw.last_raw.startswith(
        b"%7\r\n$6\r\nserver\r\n$" + str(len(d["server"])).encode())
    assert raw.last_raw.endswith(b"$7\r\nmodules\r\n*0\r\n")
    # HELLO without a version keeps the current protocol
    reply = raw.call("HELLO")
    assert raw.last_type == b"%"
    check_hello_map(reply, 3, cid)


def test_hello2_reply_shape(raw):
    reply = raw.call("HELLO", "2")
    assert raw.last_type == b"*" and len(reply) == 14
    check_hello_map(reply, 2)


def test_hello_switches_back_to_resp2(raw):
    hello3(raw)
    assert raw.call("GET", "missing") is None and raw.last_raw == b"_\r\n"
    raw.call("HELLO", "2")
    assert raw.call("GET", "missing") is None and raw.last_raw == b"$-1\r\n"
    assert raw.call("CONFIG", "GET", "maxclients") == [b"maxclients",
                                                       b"10000"]
    assert raw.last_type == b"*"


@pytest.mark.parametrize("version,text", [
    ("4", "NOPROTO unsupported protocol version"),
    ("1", "NOPROTO unsupported protocol version"),
    ("0", "NOPROTO unsupported protocol version"),
    ("abc", "ERR Protocol version is not an integer or out of range"),
])
def test_hello_bad_version(raw, version, text):
    assert raw.call("HELLO", version) == text
    assert raw.last_type == b"-"
    # still RESP2
    assert raw.call("GET", "missing") is None and raw.last_raw == b"$-1\r\n"


@pytest.mark.parametrize("args,text", [
    (("SETNAME",), "ERR Syntax error in HELLO option 'SETNAME'"),
    (("AUTH", "default"), "ERR Syntax error in HELLO option 'AUTH'"),
    (("FOO",), "ERR Syntax error in HELLO option 'FOO'"),
    (("SETNAME", "a b"), "ERR Client names cannot contain spaces, "
     "newlines or special characters."),
])
def test_hello_option_errors(raw, args, text):
    assert raw.call("HELLO", "3", *args) == text
    assert raw.last_type == b"-"
    assert raw.call("GET", "missing") is None and raw.last_raw == b"$-1\r\n"


def test_hello_setname(raw):
    hello3(raw, "SETNAME", "conn-a")
    assert raw.call("CLIENT", "GETNAME") == b"conn-a"


def test_client_getname_null_resp3(raw):
    hello3(raw)
    assert raw.call("CLIENT", "GETNAME") is None
    assert raw.last_raw == b"_\r\n"


def test_hello_auth_without_password_configured(raw):
    # the default user has no password: any password is accepted by HELLO
    hello3(raw, "AUTH", "default", "whatever")
    assert raw.call("PING") == "PONG"


def test_hello_auth_and_setname(auth_server):
    with RawClient(auth_server.port) as c:
        assert c.call("GET", "a") == "NOAUTH Authentication required."
        reply = c.call("HELLO", "3", "AUTH", "default", AUTH_PASSWORD,
                       "SETNAME", "me")
        assert c.last_type == b"%"
        check_hello_map(reply, 3)
        assert c.call("CLIENT", "GETNAME") == b"me"
        assert c.call("GET", "a") is None and c.last_raw == b"_\r\n"
        assert c.call("SET", "a", "1") == "OK"


def test_hello_auth_wrong_password(auth_server):
    with RawClient(auth_server.port) as c:
        for user, pw in (("default", "bad"), ("bob", AUTH_PASSWORD)):
            assert c.call("HELLO", "3", "AUTH", user, pw) == \
                "WRONGPASS invalid username-password pair or user is " \
                "disabled."
            assert c.last_type == b"-"
        assert c.call("GET", "a") == "NOAUTH Authentication required."
        reply = c.call("HELLO", "3")
        assert c.last_type == b"-" and reply.startswith("NOAUTH ")
        # still RESP2 and still unauthenticated
        reply = c.call("HELLO", "2", "AUTH", "default", AUTH_PASSWORD)
        assert c.last_type == b"*"
        assert c.call("GET", "a") is None and c.last_raw == b"$-1\r\n"


# --- exact RESP3 bytes of every in-scope command ---------------------------

# (setup commands, command, expected exact reply bytes under RESP3)
CASES = [
    ([], ("PING",), b"+PONG\r\n"),
    ([], ("PING", "x"), b"$1\r\nx\r\n"),
    ([], ("ECHO", "hi"), b"$2\r\nhi\r\n"),
    ([], ("GET", "nokey"), b"_\r\n"),
    ([("SET", "k", "v")], ("GET", "k"), b"$1\r\nv\r\n"),
    ([], ("SET", "k", "v"), b"+OK\r\n"),
    ([("SET", "k", "v")], ("SET", "k", "w", "NX"), b"_\r\n"),
    ([], ("SET", "k", "w", "XX"), b"_\r\n"),
    ([], ("SET", "k", "w", "GET"), b"_\r\n"),
    ([("SET", "k", "v")], ("SET", "k", "w", "GET"), b"$1\r\nv\r\n"),
    ([], ("SETNX", "k", "v"), b":1\r\n"),
    ([("SET", "k", "v")], ("SETNX", "k", "v"), b":0\r\n"),
    ([], ("GETDEL", "k"), b"_\r\n"),
    ([("SET", "k", "v")], ("GETDEL", "k"), b"$1\r\nv\r\n"),
    ([], ("GETEX", "k", "EX", "10"), b"_\r\n"),
    ([("SET", "k", "v")], ("GETEX", "k", "PERSIST"), b"$1\r\nv\r\n"),
    ([("SET", "a", "1")], ("DEL", "a", "b"), b":1\r\n"),
    ([("SET", "a", "1")], ("UNLINK", "a", "b"), b":1\r\n"),
    ([("SET", "a", "1")], ("EXISTS", "a", "b", "a"), b":2\r\n"),
    ([("SET", "a", "1")], ("MGET", "a", "b"), b"*2\r\n$1\r\n1\r\n_\r\n"),
    ([], ("MSET", "a", "1", "b", "2"), b"+OK\r\n"),
    ([], ("MSETNX", "a", "1", "b", "2"), b":1\r\n"),
    ([("SET", "a", "1")], ("MSETNX", "a", "1", "b", "2"), b":0\r\n"),
    ([("SET", "a", "abc")], ("STRLEN", "a"), b":3\r\n"),
    ([], ("APPEND", "a", "xy"), b":2\r\n"),
    ([], ("INCR", "n"), b":1\r\n"),
    ([], ("DECR", "n"), b":-1\r\n"),
    ([], ("INCRBY", "n", "5"), b":5\r\n"),
    ([], ("DECRBY", "n", "5"), b":-5\r\n"),
    ([("SET", "a", "1")], ("EXPIRE", "a", "100"), b":1\r\n"),
    ([], ("EXPIRE", "a", "100"), b":0\r\n"),
    ([("SET", "a", "1")], ("PEXPIRE", "a", "100000"), b":1\r\n"),
    ([("SET", "a", "1")], ("EXPIREAT", "a", "99999999999"), b":1\r\n"),
    ([("SET", "a", "1")], ("TTL", "a"), b":-1\r\n"),
    ([], ("TTL", "a"), b":-2\r\n"),
    ([], ("PTTL", "a"), b":-2\r\n"),
    ([("SET", "a", "1", "EX", "100")], ("PERSIST", "a"), b":1\r\n"),
    ([("SET", "a", "1")], ("PERSIST", "a"), b":0\r\n"),
    ([("SET", "a", "1")], ("TYPE", "a"), b"+string\r\n"),
    ([], ("TYPE", "a"), b"+none\r\n"),
    ([("SET", "a", "1")], ("SCAN", "0"), b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n"),
    ([], ("SCAN", "0"), b"*2\r\n$1\r\n0\r\n*0\r\n"),
    ([("SET", "a", "1")], ("DBSIZE",), b":1\r\n"),
    ([], ("SELECT", "0"), b"+OK\r\n"),
    ([], ("CONFIG", "GET", "maxclients"),
     b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"),
    ([], ("CONFIG", "GET", "nosuchsetting"), b"%0\r\n"),
    ([], ("CLIENT", "GETNAME"), b"_\r\n"),
    ([], ("CLIENT", "SETNAME", "x"), b"+OK\r\n"),
    ([], ("COMMAND", "INFO", "nosuchcommand"), b"*1\r\n_\r\n"),
    ([], ("COMMAND", "DOCS", "nosuchcommand"), b"%0\r\n"),
    ([], ("GET",), b"-ERR wrong number of arguments for 'get' command\r\n"),
    ([("SET", "s", "x")], ("INCR", "s"),
     b"-ERR value is not an integer or out of range\r\n"),
    ([], ("MULTI",), b"+OK\r\n"),
    ([], ("EXEC",), b"-ERR EXEC without MULTI\r\n"),
]


@pytest.mark.parametrize("setup,cmd,expected", CASES,
                         ids=[" ".join(c[1])[:40] for c in CASES])
def test_resp3_exact_reply(raw, setup, cmd, expected):
    hello3(raw)
    for s in setup:
        raw.call(*s)
        assert raw.last_type != b"-", (s, raw.last_raw)
    raw.call(*cmd)
    assert raw.last_raw == expected


def test_resp3_exec_reply(raw):
    hello3(raw)
    raw.call("MULTI")
    assert raw.call("GET", "nokey") == "QUEUED"
    assert raw.call("SET", "k", "v") == "QUEUED"
    assert raw.call("INCR", "n") == "QUEUED"
    raw.call("EXEC")
    assert raw.last_raw == b"*3\r\n_\r\n+OK\r\n:1\r\n"


def test_resp3_config_get_map(server, raw):
    hello3(raw)
    reply = raw.call("CONFIG", "GET", "maxclients", "port")
    assert raw.last_type == b"%"
    assert reply.to_dict() == {"maxclients": b"10000",
                               "port": str(server.port).encode()}


def test_resp3_info_verbatim(raw):
    hello3(raw)
    text = raw.call("INFO", "server")
    assert raw.last_type == b"="
    assert text.fmt == "txt"
    assert text.startswith("# Server\r\n")
    assert "redis_version:" in text


def test_resp3_command_info_sets_and_docs_map(raw):
    hello3(raw)
    info = raw.call("COMMAND", "INFO", "get")
    assert raw.last_raw.startswith(b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n~")
    get = info[0]
    assert isinstance(get[2], rawresp.Set)  # flags
    assert "readonly" in get[2]
    docs = raw.call("COMMAND", "DOCS", "get")
    assert raw.last_type == b"%"
    fields = docs[b"get"]
    assert isinstance(fields, rawresp.Map)
    assert b"summary" in fields.keys() and b"group" in fields.keys()


def test_resp3_integer_replies_stay_integers(raw):
    """Redis 7 keeps integer replies (not booleans) for EXISTS, SETNX,
    EXPIRE, PERSIST and MSETNX under RESP3; none of the in-scope commands
    answers a double or a boolean."""
    hello3(raw)
    for cmd in (("SETNX", "a", "1"), ("EXISTS", "a"), ("EXPIRE", "a", "9"),
                ("PERSIST", "a"), ("MSETNX", "b", "1"), ("DEL", "a")):
        reply = raw.call(*cmd)
        assert raw.last_type == b":", (cmd, raw.last_raw)
        assert reply == 1


def test_resp3_binary_and_large_values(raw):
    hello3(raw)
    val = bytes(range(256)) * 4096  # 1 MiB
    assert raw.call("SET", b"bin\x00key", val) == "OK"
    assert raw.call("GET", b"bin\x00key") == val
    assert raw.last_type == b"$"


# --- the raw client's own RESP3 parser, on canned bytes ---------------------

def _parse_canned(data):
    a, b = socket.socketpair()
    try:
        t = threading.Thread(target=a.sendall, args=(data,))
        t.start()
        c = RawClient.__new__(RawClient)
        c.sock, c.buf, c.pos, c.last_type, c.last_raw = b, bytearray(), 0, \
            None, None
        b.settimeout(5)
        out = c.read_reply()
        t.join()
        return out, c
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("data,expect", [
    (b"#t\r\n", True), (b"#f\r\n", False), (b",3.5\r\n", 3.5),
    (b",inf\r\n", float("inf")), (b",-inf\r\n", float("-inf")),
    (b"(12345678901234567890\r\n", 12345678901234567890),
    (b"_\r\n", None), (b"~2\r\n:1\r\n:2\r\n", [1, 2]),
    (b">2\r\n+a\r\n:1\r\n", ["a", 1]),
    (b"!5\r\nERR x\r\n", "ERR x"),
    (b"=7\r\ntxt:abc\r\n", "abc"),
    (b"|1\r\n+k\r\n+v\r\n:7\r\n", 7),
])
def test_rawresp_parser(data, expect):
    out, c = _parse_canned(data)
    assert out == expect
    assert c.last_raw == data


def test_protocol_switch_mid_pipeline(raw):
    """Replies after HELLO in the same write use the new protocol."""
    raw.send(rawresp.encode("GET", "missing") + rawresp.encode("HELLO", "3")
             + rawresp.encode("GET", "missing") + rawresp.encode("HELLO", "2")
             + rawresp.encode("GET", "missing"))
    assert raw.read_reply() is None and raw.last_raw == b"$-1\r\n"
    assert raw.read_reply() is not None and raw.last_type == b"%"
    assert raw.read_reply() is None and raw.last_raw == b"_\r\n"
    assert raw.read_reply() is not None and raw.last_type == b"*"
    assert raw.read_reply() is None and raw.last_raw == b"$-1\r\n"


def test_resp3_pipeline_10000(raw):
    hello3(raw)
    payload = b"".join(rawresp.encode("GET", "nokey%d" % (i % 7))
                       if i % 2 else rawresp.encode("INCR", "n")
                       for i in range(10000))
    t = threading.Thread(target=raw.send, args=(payload,))
    t.start()
    raw.settimeout(60)
    for i in range(10000):
        reply = raw.read_reply()
        if i % 2:
            assert reply is None and raw.last_raw == b"_\r\n"
        else:
            assert reply == i // 2 + 1
    t.join()

"""Randomized model check: a random mix of string/key commands runs against
the server and against a small Python model of Redis's semantics; every
reply must match, and the whole keyspace must match after restarts
(SIGTERM, and SIGKILL under --sync always).

Prints its seed first; replay with --seed=S (or RINGKV_SEED=S).
"""
import random
import signal

import pytest

from rawresp import RawClient

KEYS = ["k%d" % i for i in range(40)] + ["bin\x00\xff", "sp ace"]
INT_MAX = (1 << 63) - 1
INT_MIN = -(1 << 63)


class Model:
    """Strings with optional TTLs far in the future (no timing flakiness)."""

    def __init__(self):
        self.data = {}
        self.ttl = set()  # keys that carry a TTL

    def apply(self, cmd):  # returns the expected reply
        op, args = cmd[0], cmd[1:]
        d = self.data
        if op == "SET":
            k, v = args[0], args[1]
            opts = args[2:]
            nx, xx, get, ex, keep = ("NX" in opts, "XX" in opts,
                                     "GET" in opts, "EX" in opts,
                                     "KEEPTTL" in opts)
            old = d.get(k)
            ok = not ((nx and k in d) or (xx and k not in d))
            if ok:
                d[k] = v
                if ex:
                    self.ttl.add(k)
                elif not keep:
                    self.ttl.discard(k)
            if get:
                return old
            return "OK" if ok else None
        if op == "GET":
            return d.get(args[0])
        if op == "SETNX":
            if args[0] in d:
                return 0
            d[args[0]] = args[1]
            return 1
        if op == "GETDEL":
            self.ttl.discard(args[0])
            return d.pop(args[0], None)
        if op in ("DEL", "UNLINK"):
            n = 0
            for k in args:
                if k in d:
                    del d[k]
                    self.ttl.discard(k)
                    n += 1
            return n
        if op == "EXISTS":
            return sum(1 for k in args if k in d)
        if op == "MGET":
            return [d.get(k) for k in args]
        if op == "MSET":
            for i in range(0, len(args), 2):
                d[args[i]] = args[i + 1]
                self.ttl.discard(args[i])
            return "OK"
        if op == "MSETNX":
            if any(args[i] in d for i in range(0, len(args), 2)):
                return 0
            for i in range(0, len(args), 2):
                d[args[i]] = args[i + 1]
            return 1
        if op == "STRLEN":
            return len(d.get(args[0], b""))
        if op == "APPEND":
            d[args[0]] = d.get(args[0], b"") + args[1]
            return len(d[args[0]])
        if op in ("INCR", "DECR", "INCRBY", "DECRBY"):
            k = args[0]
            delta = {"INCR": 1, "DECR": -1}.get(op)
            if delta is None:
                delta = int(args[1]) * (1 if op == "INCRBY" else -1)
            cur = d.get(k, b"0")
            try:
                s = cur.decode("ascii")
                n = int(s)
                if str(n) != s or not INT_MIN <= n <= INT_MAX:
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                return "ERR value is not an integer or out of range"
            if not INT_MIN <= n + delta <= INT_MAX:
                return "ERR increment or decrement would overflow"
            d[k] = str(n + delta).encode()
            return n + delta
        if op == "EXPIRE":
            if args[0] not in d:
                return 0
            self.ttl.add(args[0])
            return 1
        if op == "PERSIST":
            if args[0] in d and args[0] in self.ttl:
                self.ttl.discard(args[0])
                return 1
            return 0
        if op == "TTL":
            if args[0] not in d:
                return -2
            return "ttl>0" if args[0] in self.ttl else -1
        if op == "TYPE":
            return "string" if args[0] in d else "none"
        if op == "DBSIZE":
            return len(d)
        raise AssertionError(op)


def random_value(rnd):
    c = rnd.random()
    if c < 0.3:
        return str(rnd.randint(-1000, 1000)).encode()
    if c < 0.35:
        return str(rnd.choice([INT_MAX, INT_MIN, INT_MAX - 1])).encode()
    if c < 0.45:
        return b""
    return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 40)))


def random_command(rnd):
    k = rnd.choice(KEYS)
    op = rnd.choice(["SET", "SET", "SET", "GET", "GET", "SETNX", "GETDEL",
                     "DEL", "UNLINK", "EXISTS", "MGET", "MSET", "MSETNX",
                     "STRLEN", "APPEND", "INCR", "DECR", "INCRBY", "DECRBY",
                     "EXPIRE", "PERSIST", "TTL", "TYPE", "DBSIZE"])
    if op == "SET":
        opts = []
        r = rnd.random()
        if r < 0.15:
            opts.append("NX")
        elif r < 0.3:
            opts.append("XX")
        r = rnd.random()
        if r < 0.15:
            opts += ["EX", str(rnd.randint(10000, 20000))]
        elif r < 0.25:
            opts.append("KEEPTTL")
        if rnd.random() < 0.2:
            opts.append("GET")
        rnd.shuffle(opts)
        # keep EX and its argument together after the shuffle
        if "EX" in opts:
            opts.remove("EX")
            n = [o for o in opts if o.isdigit()][0]
            opts.remove(n)
            opts += ["EX", n]
        return ("SET", k, random_value(rnd), *opts)
    if op in ("GET", "GETDEL", "STRLEN", "INCR", "DECR", "PERSIST", "TTL",
              "TYPE"):
        return (op, k)
    if op in ("SETNX", "APPEND"):
        return (op, k, random_value(rnd))
    if op in ("DEL", "UNLINK", "EXISTS", "MGET"):
        return (op, *rnd.sample(KEYS, rnd.randint(1, 4)))
    if op in ("MSET", "MSETNX"):
        args = []
        for kk in rnd.sample(KEYS, rnd.randint(1, 3)):
            args += [kk, random_value(rnd)]
        return (op, *args)
    if op in ("INCRBY", "DECRBY"):
        return (op, k, str(rnd.choice([1, -1, 7, 1 << 62, -(1 << 62)])))
    if op == "EXPIRE":
        return (op, k, str(rnd.randint(10000, 20000)))
    return (op,)


def normalize(reply):
    if isinstance(reply, list):
        return [normalize(x) for x in reply]
    if isinstance(reply, str):  # Simple / Error
        return str(reply)
    return reply


def check_state(c, model):
    assert c.call("DBSIZE") == len(model.data)
    keys = sorted(model.data)
    got = c.call("MGET", *KEYS)
    assert got == [model.data.get(k) for k in KEYS]
    for k in KEYS:
        ttl = c.call("TTL", k)
        exp = model.apply(("TTL", k))
        if exp == "ttl>0":
            assert ttl > 9000, (k, ttl)
        else:
            assert ttl == exp, (k, ttl, exp)
    return keys


def run_ops(c, model, rnd, n, history):
    for _ in range(n):
        cmd = random_command(rnd)
        history.append(cmd)
        reply = normalize(c.call(*cmd))
        exp = model.apply(cmd)
        if exp == "ttl>0":
            assert isinstance(reply, int) and reply > 9000, (cmd, reply)
            continue
        assert reply == exp, "op #%d %r: server %r, model %r\nlast: %r" % (
            len(history), cmd, reply, exp, history[-10:])


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_ops_match_model(server, seed, protocol):
    rnd = random.Random(seed)
    model = Model()
    history = []
    with RawClient(server.port) as c:
        if protocol == 3:
            c.call("HELLO", "3")
        run_ops(c, model, rnd, 3000, history)
        check_state(c, model)


def test_random_ops_survive_restarts(server_factory, seed):
    rnd = random.Random(seed)
    model = Model()
    history = []
    s = server_factory(args=["--sync", "always"])
    for how in (signal.SIGTERM, signal.SIGKILL, signal.SIGTERM):
        with RawClient(s.port) as c:
            run_ops(c, model, rnd, 1500, history)
            check_state(c, model)
        rc = s.stop(how)
        assert rc == (0 if how == signal.SIGTERM else -signal.SIGKILL), rc
        s.start()
        with RawClient(s.port) as c:
            check_state(c, model)

"""A small raw-socket RESP2/RESP3 client for protocol-level tests.

redis-py 4.3 speaks RESP2 only, so RESP3 replies (after HELLO 3) and
malformed or partial frames go through this module instead.

    c = RawClient(port)
    c.send(b"PING\r\n")            # any bytes, inline or multibulk
    c.read_reply()                  # one parsed reply of any RESP2/RESP3 type
    c.call("SET", "k", b"v")       # encode as a multibulk, send, read one reply

Parsed types:
  +simple         -> Simple(str)            (a str subclass)
  -error          -> Error(str)             (returned, not raised)
  :int            -> int
  $bulk / $-1     -> bytes / None
  *array / *-1    -> list / None
  _               -> None (RESP3 null; see Null for is_null checks)
  #t / #f         -> bool
  ,double         -> Double(float) (inf / -inf / nan handled)
  (big number     -> BigNumber(int)
  !blob error     -> Error(str)
  =verbatim       -> Verbatim(str) with .fmt ("txt", "mkd")
  %map            -> Map (a list of (key, value) pairs, with dict-like access)
  ~set            -> Set (a list subclass)
  |attribute      -> read and attached: the next reply gets .attributes
  >push           -> Push (a list subclass)

The last reply's type byte is kept in RawClient.last_type and its exact
bytes in RawClient.last_raw, so tests can assert e.g. that GET of a missing
key answered b"_\r\n" under RESP3.
"""
import socket
import time


class Simple(str):
    pass


class Error(str):
    @property
    def prefix(self):
        return self.split(" ", 1)[0]


class Double(float):
    pass


class BigNumber(int):
    pass


class Verbatim(str):
    fmt = "txt"


class Set(list):
    pass


class Push(list):
    pass


class Map(list):
    """RESP3 map: ordered (key, value) pairs; keys may be unhashable."""

    def to_dict(self):
        out = {}
        for k, v in self:
            if isinstance(k, bytes):
                k = k.decode("utf-8", "replace")
            out[k] = v
        return out

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return list.__getitem__(self, key)
        for k, v in self:
            if k == key or (isinstance(k, bytes) and isinstance(key, str)
                            and k == key.encode()):
                return v
        raise KeyError(key)

    def keys(self):
        return [k for k, _ in self]


class ConnectionClosed(Exception):
    pass


def encode(*args):
    """Encodes a command as a RESP multibulk of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RawClient:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.last_type = None
        self.last_raw = None

    # -- I/O -------------------------------------------------------------
    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def send_slowly(self, data, delay=0.0, chunk=1):
        """Sends data a few bytes at a time (partial frames)."""
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])
            if delay:
                time.sleep(delay)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionClosed("server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
            raise ValueError("bulk not terminated by CRLF")
        self.pos += n + 2
        return data

    def pending(self):
        """Bytes received but not parsed yet."""
        return bytes(self.buf[self.pos:])

    # -- parsing ---------------------------------------------------------
    def read_reply(self):
        """Parses one reply; its type byte goes to last_type and its exact
        bytes to last_raw (None for replies over 1 MiB)."""
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        reply, t = self._read()
        self.last_type = t
        self.last_raw = bytes(self.buf[:self.pos]) if self.pos <= 1 << 20 \
            else None
        return reply

    def read_raw(self):
        """Reads one reply and returns its exact bytes."""
        self.read_reply()
        return self.last_raw

    def _read(self):
        line = self._line()
        if not line:
            raise ValueError("empty reply line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Simple(rest.decode("utf-8", "replace")), t
        if t == b"-":
            return Error(rest.decode("utf-8", "replace")), t
        if t == b":":
            return int(rest), t
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None, t
            return self._exact(n), t
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None, t
            items = [self._read()[0] for _ in range(n)]
            if t == b"~":
                return Set(items), t
            if t == b">":
                return Push(items), t
            return items, t
        if t == b"%":
            n = int(rest)
            m = Map()
            for _ in range(n):
                k = self._read()[0]
                v = self._read()[0]
                m.append((k, v))
            return m, t
        if t == b"|":
            n = int(rest)
            attrs = Map()
            for _ in range(n):
                k = self._read()[0]
                v = self._read()[0]
                attrs.append((k, v))
            reply, t2 = self._read()
            try:
                reply.attributes = attrs
            except AttributeError:
                pass
            return reply, t2
        if t == b"_":
            return None, t
        if t == b"#":
            if rest not in (b"t", b"f"):
                raise ValueError("bad boolean %r" % rest)
            return rest == b"t", t
        if t == b",":
            s = rest.decode().lower()
            if s in ("inf", "+inf"):
                return Double(float("inf")), t
            if s == "-inf":
                return Double(float("-inf")), t
            return Double(float(s)), t
        if t == b"(":
            return BigNumber(int(rest)), t
        if t == b"!":
            n = int(rest)
            return Error(self._exact(n).decode("utf-8", "replace")), t
        if t == b"=":
            n = int(rest)
            data = self._exact(n)
            v = Verbatim(data[4:].decode("utf-8", "replace"))
            v.fmt = data[:3].decode()
            return v, t
        raise ValueError("unknown RESP type byte %r in %r" % (t, line[:80]))

    def call(self, *args):
        self.send(encode(*args))
        return self.read_reply()

    def expect_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (any
        remaining buffered bytes are discarded)."""
        self.sock.settimeout(timeout)
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return False

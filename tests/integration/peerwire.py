"""A hand-made ringkv peer for hostile-peer tests: frames of
docs/peer-protocol.md (header, XXH3 checksum through ctypes and the
system's libxxhash, the field encodings), the messages the tests send, and
the authentication handshake (section 5.22-5.23, HMAC-SHA-256 from
Python's hmac module) done right or wrong on purpose; over TLS too
(tls-cluster yes: Peer(..., tls=ssl_context), see tls_context)."""
import ctypes
import hashlib
import hmac
import os
import socket
import ssl
import struct
import time

_XXH = ctypes.CDLL("libxxhash.so.0")
_XXH.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_XXH.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                      ctypes.c_uint64]

HELLO, PING, GOSSIP, JOIN, JOIN_REPLY = 1, 2, 5, 6, 7
KV_PUT, KV_PUT_REPLY, KV_GET, KV_GET_REPLY = 8, 9, 10, 11
AUTH_CHALLENGE, AUTH_PROOF = 23, 24
FOLD, FOLD_REPLY, FETCH = 16, 17, 25
DIALER, ACCEPTOR = 1, 2


def frame(mtype, body, version=None, body_len=None):
    """One frame: header (checksum over body) + body.  body_len overrides
    the declared length (for oversized-header attacks)."""
    if version is None:
        version = 1 if mtype == HELLO else 2
    blen = len(body) if body_len is None else body_len
    head8 = struct.pack("<BBHI", version, mtype, 0, blen)
    seed = struct.unpack("<Q", head8)[0]
    ck = _XXH.XXH3_64bits_withSeed(body, len(body), seed) & 0xffffffff
    return b"RKVP" + head8 + struct.pack("<I", ck) + body


def name(b):
    return struct.pack("<H", len(b)) + b


def blob(b):
    return struct.pack("<I", len(b)) + b


def hello(node_id, cluster=b"ringkv", host=b"127.0.0.1", ports=(1, 2, 3)):
    return frame(HELLO, name(node_id) + name(cluster) + name(host) +
                 struct.pack("<HHHB", ports[0], ports[1], ports[2], 2))


def challenge(nonce):
    return frame(AUTH_CHALLENGE, blob(nonce))


def proof(mac):
    return frame(AUTH_PROOF, blob(mac))


def kv_get(key, req_id=1):
    return frame(KV_GET, struct.pack("<Q", req_id) + blob(key) +
                 struct.pack("<I", 1000))


def fold(partition, req_id=1, epoch=0, cursor=b"", max_bytes=65536):
    return frame(FOLD, struct.pack("<QII", req_id, partition, epoch) +
                 blob(cursor) + struct.pack("<I", max_bytes))


def fetch(partition, keys, req_id=1, epoch=0, max_bytes=65536):
    body = b"".join(struct.pack("<I", len(k)) + k for k in keys)
    return frame(FETCH, struct.pack("<QII", req_id, partition, epoch) +
                 blob(body) + struct.pack("<I", max_bytes))


def fold_reply_status(body):
    """(req_id, status) of a FOLD_REPLY body."""
    return struct.unpack("<Qi", body[:12])


def join(node_id, host=b"127.0.0.1", ports=(1, 2, 3), req_id=1):
    return frame(JOIN, struct.pack("<Q", req_id) + name(node_id) +
                 name(host) + struct.pack("<HHH", *ports))


def gossip(state, version, from_id):
    return frame(GOSSIP, blob(state) + struct.pack("<Q", version) +
                 name(from_id))


def mac(secret, role, id_a, id_b, nonce_a, nonce_b):
    m = (b"ringkv-peer-auth-1" + bytes([role]) + name(id_a) + name(id_b) +
         nonce_a + nonce_b)
    return hmac.new(secret, m, hashlib.sha256).digest()


def read_secret(path):
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def tls_context(ca, cert=None, key=None):
    """A client SSLContext for a tls-cluster peer port: trusts `ca`,
    presents cert/key when given (no hostname check: nodes are named by
    node id, not host)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(str(ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class Peer:
    """A raw connection to a node's peer port; over TLS when `tls` is an
    SSLContext (the TLS handshake runs at once: ssl.SSLError if this side
    refuses the node's certificate)."""

    def __init__(self, port, timeout=5.0, tls=None):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=timeout)
        if tls is not None:
            try:
                self.s = tls.wrap_socket(self.s)
            except BaseException:
                self.s.close()
                raise
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def read_frame(self, timeout=5.0):
        """(type, body) of the next frame, or None when the node closed
        the connection (or nothing came in time)."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 16:
                blen = struct.unpack("<I", self.buf[8:12])[0]
                if len(self.buf) >= 16 + blen:
                    t = self.buf[5]
                    body = self.buf[16:16 + blen]
                    self.buf = self.buf[16 + blen:]
                    return t, body
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                got = self.s.recv(65536)
            except (socket.timeout, ConnectionResetError, ssl.SSLError):
                return None  # an SSLError: the node's alert (refused)
            if not got:
                return None
            self.buf += got

    def closed(self, timeout=5.0):
        """True once the node closed the connection (frames skipped)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.s.settimeout(max(0.01, end - time.monotonic()))
            try:
                got = self.s.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                return True
            if not got:
                return True
        return False

    def handshake(self, my_id, secret, node_id=None):
        """HELLO + CHALLENGE, then the proof (a wrong one if secret is
        wrong).  Returns (authenticated by the node?, the node's id)."""
        nonce = os.urandom(32)
        self.send(hello(my_id) + challenge(nonce))
        f1 = self.read_frame()
        f2 = self.read_frame()
        if f1 is None or f2 is None or f1[0] != HELLO or \
                f2[0] != AUTH_CHALLENGE:
            return False, None
        nid_len = struct.unpack("<H", f1[1][:2])[0]
        their_id = f1[1][2:2 + nid_len]
        their_nonce = f2[1][4:36]
        self.send(proof(mac(secret, DIALER, my_id, their_id, nonce,
                            their_nonce)))
        f3 = self.read_frame()
        if f3 is None or f3[0] != AUTH_PROOF:
            return False, their_id
        want = mac(secret, ACCEPTOR, their_id, my_id, their_nonce, nonce)
        return hmac.compare_digest(f3[1][4:36], want), their_id

    def close(self):
        self.s.close()

/*
 * peer.h - sans-IO codec of the node-to-node (peer) protocol (DESIGN.md
 * sections 1 and 4; issue 4 item 1).  docs/peer-protocol.md describes the
 * bytes; this header is the C contract.
 *
 * Every message travels in one frame: a fixed 16-byte header, then a body
 * of `body_len` bytes.
 *
 *   offset size field       meaning
 *   0      4    magic       "RKVP" (0x52 0x4b 0x56 0x50)
 *   4      1    version     protocol version of this frame, 1..255
 *   5      1    type        enum peer_type
 *   6      2    flags       u16 LE, reserved: 0 in version 1
 *   8      4    body_len    u32 LE, bytes after the header
 *   12     4    checksum    u32 LE, low 32 bits of
 *                           XXH3_64bits_withSeed(body, body_len, seed) with
 *                           seed = u64 LE of header bytes 4..11 (so the
 *                           checksum also covers version, type, flags and
 *                           body_len)
 *
 * Bodies are the fields of each message in the order of the structs below:
 * integers fixed-width little-endian; names (node ids, cluster name, host)
 * a u16 LE length then the bytes; every other byte string a u32 LE length
 * then the bytes.  No padding, no trailing bytes: a message has exactly
 * one encoding, so decode(encode(m)) == m and encode(decode(f)) == f.
 *
 * Only this file and peer.c touch the bytes.  No sockets, clocks or
 * threads (STYLE.md 1.6).
 */
#ifndef RINGKV_PROTO_PEER_H
#define RINGKV_PROTO_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PEER_MAGIC "RKVP" /* 4 bytes, no NUL on the wire */
#define PEER_PROTO_VERSION                                            \
    2                         /* the newest version this node speaks; \
                                 it reads 1 to it */
#define PEER_BASE_VERSION 1   /* the oldest version */
#define PEER_HEADER_SIZE  16  /* bytes */
#define PEER_MAX_NODE_ID  64  /* bytes */
#define PEER_MAX_CLUSTER  64  /* bytes of cluster_name */
#define PEER_MAX_HOST     255 /* bytes */
#define PEER_MAX_KEY      (64u * 1024u) /* bytes, as ENGINE_DEFAULT_MAX_KEY */
#define PEER_MAX_MESSAGE  1024          /* bytes of an error message */
#define PEER_MAX_VALUE    (512u * 1024u * 1024u) /* bytes, as the engine */
/*
 * Default (and encoder) limit on body_len: a maximal value plus a maximal
 * key plus 4 KiB for the fixed fields (86 bytes of KV_PUT, 110 of
 * KV_UPDATE) and an object's own overhead (dvv.h: 6 bytes, 24 per clock
 * entry, 37 per sibling), so a write of one maximal value always fits:
 * 512 MiB + 68 KiB = 536,940,544 bytes.  An object whose siblings
 * together exceed it cannot be sent (RK_ETOOBIG; docs/consistency.md).
 * Version 1 is not frozen yet: issue 5 changed KV_PUT and KV_GET_REPLY
 * and added KV_UPDATE(_REPLY) before any release.  Version 2 (issue 12
 * item 3) adds PING.storage and ACK.storage; a version-1 PING or ACK is
 * still read (storage = PEER_STORAGE_OK).
 */
#define PEER_DEFAULT_MAX_BODY (PEER_MAX_VALUE + PEER_MAX_KEY + 4096u)
/*
 * Chunking (version 2, docs/peer-protocol.md section 5.14): a frame of
 * more than PEER_CHUNK_THRESHOLD bytes (header included) travels to a
 * version-2 peer as CHUNK frames of at most PEER_CHUNK_MAX bytes of it
 * each, so that small frames can go between them.
 */
#define PEER_CHUNK_MAX       (1024u * 1024u) /* bytes of data per CHUNK */
#define PEER_CHUNK_THRESHOLD PEER_CHUNK_MAX  /* frame bytes */

/* KV_UPDATE.flags; the other bits must be 0. */
#define PEER_KV_TOMBSTONE                              \
    0x1u /* the write is a delete: no value, no expiry \
          */
#define PEER_KV_OWN_CONTEXT                            \
    0x2u /* supersede everything the receiving replica \
            has seen of the key (a write without a     \
            client context); `context` must be empty */
#define PEER_KV_FALLBACK                             \
    0x4u /* the receiver stands in for a down owner: \
            it issues the dot from a one-shot actor */
#define PEER_KV_CTYPE                            \
    0x8u /* the value starts with a content type \
            (dvv.h: u8 n, n bytes); not with a   \
            tombstone */
#define PEER_KV_CHUNKED                                       \
    0x10u /* the value is a chunk manifest (cluster/chunk.h); \
             not with a tombstone or a content type */
#define PEER_KV_COUNTER                                               \
    0x20u /* an increment (issue 16): the value is i64 delta (LE) and \
             a 16-byte id, applied by the receiver to its own counter \
             state (cluster/types/counter.h); with OWN_CONTEXT only,  \
             not with the other flags but FALLBACK */
#define PEER_KV_COUNTER_LEN 24 /* bytes of an increment's value */
#define PEER_KV_COUNTER_STATE                                          \
    0x40u /* a value or delete (TOMBSTONE) written with a context over \
             counter siblings: the value is a counter state whose base \
             is the user's value (absent for a delete) and whose       \
             entries are the covered siblings' counts, which the       \
             receiver carries on (types/counter.h); not with CTYPE,    \
             CHUNKED or COUNTER */
#define PEER_KV_UPDATE_FLAGS                                      \
    (PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT | PEER_KV_FALLBACK | \
     PEER_KV_CTYPE | PEER_KV_CHUNKED | PEER_KV_COUNTER |          \
     PEER_KV_COUNTER_STATE)

/* Message types (header byte 5).  Numbers are wire values: never reuse. */
enum peer_type
{
    PEER_HELLO = 1,
    PEER_PING = 2,
    PEER_ACK = 3,
    PEER_PING_REQ = 4,
    PEER_GOSSIP = 5,
    PEER_JOIN = 6,
    PEER_JOIN_REPLY = 7,
    PEER_KV_PUT = 8,
    PEER_KV_PUT_REPLY = 9,
    PEER_KV_GET = 10,
    PEER_KV_GET_REPLY = 11,
    PEER_ERROR = 12,
    PEER_KV_UPDATE = 13,
    PEER_KV_UPDATE_REPLY = 14,
    PEER_CHUNK = 15,      /* version 2 */
    PEER_FOLD = 16,       /* version 2, issue 14: partition handoff */
    PEER_FOLD_REPLY = 17, /* version 2, issue 14 */
    PEER_AAE_TREE = 18,   /* version 2, issue 14 item 4: anti-entropy */
    PEER_AAE_TREE_REPLY = 19,
    PEER_AAE_KEYS = 20,
    PEER_AAE_KEYS_REPLY = 21,
    PEER_REPLACE = 22,        /* version 2, issue 14: a JOIN that replaces */
    PEER_AUTH_CHALLENGE = 23, /* version 2, issue 15: peer authentication */
    PEER_AUTH_PROOF = 24,
    PEER_FETCH = 25, /* version 2, issue 14: handoff's verify pulls */
};
#define PEER_TYPE_MIN PEER_HELLO
#define PEER_TYPE_MAX PEER_FETCH

/* Peer authentication (docs/peer-protocol.md, "Authentication"). */
#define PEER_AUTH_NONCE_LEN 32 /* bytes of a challenge's nonce */
#define PEER_AUTH_MAC_LEN   32 /* bytes of a proof (HMAC-SHA-256) */

/* Anti-entropy (docs/peer-protocol.md, "Anti-entropy"). */
#define PEER_AAE_MAX_IDS      4096 /* branch or leaf indexes per request */
#define PEER_AAE_LEVEL_BRANCH 0u   /* AAE_TREE.level: every branch */
#define PEER_AAE_LEVEL_LEAF   1u   /* the leaves of the listed branches */
#define PEER_AAE_KEYS_TRUNCATED               \
    0x1u /* AAE_KEYS_REPLY.flags: keys of the \
            leaves asked were left out */

#define PEER_FOLD_CURSOR_MAX 64 /* bytes of a fold cursor */
#define PEER_FOLD_MAX_BYTES                             \
    (4u * 1024u * 1024u)    /* items per reply, at most \
                             */
#define PEER_FOLD_DONE 0x1u /* FOLD_REPLY.flags: the partition is done */

/*
 * A byte string: binary-safe, not NUL-terminated.  In a decoded message a
 * view into the decoder's input buffer; in a message to encode, borrowed
 * for the call (ptr may be NULL when len is 0).
 */
struct peer_bytes
{
    const char *ptr;
    size_t len; /* bytes */
};

/* First message on every connection, in both directions, always sent in a
 * version-1 frame; afterwards both sides use min(max_version) (docs). */
struct peer_hello
{
    struct peer_bytes node_id;      /* 1..PEER_MAX_NODE_ID bytes */
    struct peer_bytes cluster_name; /* 0..PEER_MAX_CLUSTER bytes */
    struct peer_bytes host;         /* 1..PEER_MAX_HOST bytes */
    uint16_t resp_port;             /* TCP ports of the sender */
    uint16_t http_port;
    uint16_t peer_port;
    uint8_t max_version; /* newest protocol version the sender speaks, >= 1 */
};

/* The storage state a PING or ACK reports of its sender (version 2; wire
 * values, never reuse; others are invalid). */
enum peer_storage
{
    PEER_STORAGE_OK = 0,       /* takes writes */
    PEER_STORAGE_DEGRADED = 1, /* its engine is read-only (an I/O error, a
                                  full disk): route writes around it */
};

/* SWIM probe.  Direct: target empty.  On behalf of a PING_REQ: target is
 * the node being probed for someone else. */
struct peer_ping
{
    uint64_t seq;             /* probe sequence number of `from` */
    struct peer_bytes from;   /* sender node id, 1..PEER_MAX_NODE_ID */
    struct peer_bytes target; /* 0..PEER_MAX_NODE_ID */
    uint64_t incarnation;     /* sender's SWIM incarnation */
    uint8_t storage;          /* since version 2: enum peer_storage of the
                                 sender (0 in a version-1 frame) */
};

/* Answer to a PING (seq and target echoed; incarnation and storage state
 * of the responder). */
struct peer_ack
{
    uint64_t seq;
    struct peer_bytes from;   /* responder node id, 1..PEER_MAX_NODE_ID */
    struct peer_bytes target; /* 0..PEER_MAX_NODE_ID */
    uint64_t incarnation;
    uint8_t storage; /* since version 2: enum peer_storage of `from` */
};

/* Asks the receiver to PING `target` and forward the ACK to `from`. */
struct peer_ping_req
{
    uint64_t seq;
    struct peer_bytes from;   /* 1..PEER_MAX_NODE_ID */
    struct peer_bytes target; /* 1..PEER_MAX_NODE_ID */
};

/* Cluster state, opaque here (the membership module encodes it). */
struct peer_gossip
{
    struct peer_bytes state; /* 0..(body limit) bytes */
    uint64_t state_version;
    struct peer_bytes from; /* 1..PEER_MAX_NODE_ID */
};

/*
 * A node asks a seed to admit it (JOIN), or to admit it in the place of
 * the member `replaces` (REPLACE, which carries the same fields and
 * `replaces`; a JOIN leaves it empty).  Both are answered by JOIN_REPLY.
 */
struct peer_join
{
    uint64_t req_id;
    struct peer_bytes node_id; /* 1..PEER_MAX_NODE_ID */
    struct peer_bytes host;    /* 1..PEER_MAX_HOST */
    uint16_t resp_port;
    uint16_t http_port;
    uint16_t peer_port;
    struct peer_bytes replaces; /* REPLACE: 1..PEER_MAX_NODE_ID; JOIN: 0 */
};

struct peer_join_reply
{
    uint64_t req_id;
    int32_t status;            /* an RK_* code, <= 0 */
    struct peer_bytes message; /* 0..PEER_MAX_MESSAGE bytes */
    struct peer_bytes state;   /* opaque cluster state, 0..(body limit) */
};

/*
 * Versioned objects (issue 5).  `object` fields carry one object in the
 * canonical encoding of cluster/dvv.h (docs/consistency.md); the codec
 * treats them as opaque bytes and the receiver decodes and checks them.
 * `context` carries a causal context as a dvv object with no siblings (its
 * clock), in the same encoding, or nothing (the empty context).
 */

/* Merge `object` into the receiver's copy of `key` (replication, read
 * repair, hint delivery).  With hint_for set the receiver is a fallback:
 * it keeps the object in its hint store for that owner. */
struct peer_kv_put
{
    uint64_t req_id;            /* 0: no reply wanted (read repair) */
    struct peer_bytes key;      /* 0..PEER_MAX_KEY bytes */
    struct peer_bytes object;   /* 0..(body limit) */
    struct peer_bytes hint_for; /* 0..PEER_MAX_NODE_ID: the intended owner
                                   of a hinted write, else empty */
    uint32_t deadline_ms;       /* time budget relative to receipt, ms */
};

struct peer_kv_put_reply
{
    uint64_t req_id;
    int32_t status; /* an RK_* code, <= 0 */
};

struct peer_kv_get
{
    uint64_t req_id;
    struct peer_bytes key; /* 0..PEER_MAX_KEY bytes */
    uint32_t deadline_ms;  /* time budget relative to receipt, ms */
};

struct peer_kv_get_reply
{
    uint64_t req_id;
    int32_t status;           /* RK_OK, RK_ENOTFOUND or another RK_*, <= 0 */
    struct peer_bytes object; /* RK_OK: the stored object; else empty */
};

/* A client write, sent to the one replica that issues its dot (the
 * coordinating replica): it applies dvv_update to its copy of the key and
 * answers with the resulting object, which the coordinator then sends to
 * the other replicas as KV_PUT. */
struct peer_kv_update
{
    uint64_t req_id;
    struct peer_bytes key;      /* 0..PEER_MAX_KEY bytes */
    struct peer_bytes context;  /* 0..(body limit): see above */
    struct peer_bytes value;    /* 0..(body limit); empty for a tombstone */
    uint64_t timestamp;         /* HLC of the write */
    uint64_t expire_at_ms;      /* absolute Unix ms, 0 = none */
    uint32_t flags;             /* PEER_KV_UPDATE_FLAGS */
    struct peer_bytes hint_for; /* with PEER_KV_FALLBACK: the owner the
                                   receiver stands in for, else empty */
    uint32_t deadline_ms;       /* time budget relative to receipt, ms */
};

struct peer_kv_update_reply
{
    uint64_t req_id;
    int32_t status;           /* an RK_* code, <= 0 */
    struct peer_bytes object; /* RK_OK: the object after the write */
};

/* A request failed as a whole (or a message could not be handled). */
struct peer_error
{
    uint64_t req_id;           /* 0 when not about a request */
    int32_t status;            /* an RK_* code, < 0 */
    struct peer_bytes message; /* 0..PEER_MAX_MESSAGE bytes */
};

/*
 * One piece of a larger frame (version 2 only).  A connection carries at
 * most one chunked frame at a time in each direction: its pieces come in
 * order, offset 0 first, each starting where the last ended, with other
 * (whole) frames allowed in between.  The piece with offset + data.len ==
 * total completes it; the receiver then decodes those `total` bytes as
 * one frame (which must not itself be a CHUNK or a HELLO).
 */
struct peer_chunk
{
    uint32_t total;         /* bytes of the whole inner frame, header
                               included; > PEER_HEADER_SIZE */
    uint32_t offset;        /* bytes of it sent before this piece */
    struct peer_bytes data; /* 1..PEER_CHUNK_MAX bytes; offset + len <=
                               total */
};

/*
 * Partition handoff (issue 14 item 2; docs/peer-protocol.md): a pending
 * owner asks a current replica for the objects of one partition, one
 * batch at a time.  The cursor is opaque to the asker (the sender's fold
 * position); an empty cursor starts at the beginning.
 */
struct peer_fold
{
    uint64_t req_id;          /* != 0 */
    uint32_t partition;       /* < the ring's size */
    uint32_t epoch;           /* the asker's transition epoch */
    struct peer_bytes cursor; /* 0..PEER_FOLD_CURSOR_MAX bytes */
    uint32_t max_bytes;       /* 1..PEER_FOLD_MAX_BYTES of items wanted */
};

/*
 * The answer: status RK_OK with the next cursor, flags (PEER_FOLD_DONE
 * when nothing follows) and the batch's objects, or an error status with
 * no items.  items is a sequence of (u32 key length, key, u32 object
 * length, object: the stored dvv encoding), little-endian.  One item may
 * exceed max_bytes (a large object goes alone).
 */
struct peer_fold_reply
{
    uint64_t req_id;
    int32_t status;           /* an RK_* code, <= 0 */
    struct peer_bytes cursor; /* 0..PEER_FOLD_CURSOR_MAX bytes */
    uint32_t flags;           /* PEER_FOLD_DONE */
    uint32_t count;           /* items in `items` */
    struct peer_bytes items;
};

/*
 * Handoff's verify step (issue 14 item 2, cluster/node_handoff_verify.c):
 * a pending owner that compared its hash tree of a partition with a
 * current replica's asks that replica for the objects of the keys that
 * differ.  keys is a sequence of (u32 key length, key), little-endian,
 * 1..PEER_FOLD_MAX_BYTES bytes, every key of `partition`.  The answer is
 * a FOLD_REPLY with the same req_id: the objects of the keys it holds
 * (missing ones are left out), cursor = u32 LE of how many of the listed
 * keys it went through (it stops after max_bytes of items; the asker
 * asks again for the rest), flags PEER_FOLD_DONE when it went through
 * all of them.
 */
struct peer_fetch
{
    uint64_t req_id;    /* != 0 */
    uint32_t partition; /* < the ring's size */
    uint32_t epoch;     /* the asker's transition epoch */
    struct peer_bytes keys;
    uint32_t max_bytes; /* 1..PEER_FOLD_MAX_BYTES of items wanted */
};

/*
 * Anti-entropy (issue 14 item 4, cluster/node_aae.c): a replica of a
 * partition asks another for its hash tree (cluster/aae.h) of that
 * partition, level by level.  level PEER_AAE_LEVEL_BRANCH with no ids:
 * every branch; PEER_AAE_LEVEL_LEAF: the AAE_FANOUT leaves of each branch
 * listed in ids.  ids: u32 LE indexes, 0..PEER_AAE_MAX_IDS of them.
 * n_leaves: the asker's leaves per tree (both sides must agree).
 */
struct peer_aae_tree
{
    uint64_t req_id;       /* != 0 */
    uint32_t partition;    /* < the ring's size */
    uint32_t n_leaves;     /* the asker's tree size */
    uint32_t level;        /* PEER_AAE_LEVEL_* */
    struct peer_bytes ids; /* u32 LE each: len a multiple of 4 */
};

/* The answer: status RK_OK with the root and the hashes asked for (u64 LE
 * each, in the order asked), or an error with none (RK_EAGAIN: the tree
 * is not built yet or the ring is changing; RK_EINVAL: refused). */
struct peer_aae_tree_reply
{
    uint64_t req_id;
    int32_t status;           /* an RK_* code, <= 0 */
    uint64_t root;            /* of the answering tree */
    struct peer_bytes hashes; /* u64 LE each: len a multiple of 8 */
};

/* The keys of some leaves of a partition: leaves as AAE_TREE.ids. */
struct peer_aae_keys
{
    uint64_t req_id; /* != 0 */
    uint32_t partition;
    uint32_t n_leaves;
    struct peer_bytes leaves; /* u32 LE each, 1..PEER_AAE_MAX_IDS */
};

/* The answer: items (u32 LE key length, key, u64 LE object hash: XXH3 of
 * the stored record), count of them, flags PEER_AAE_KEYS_TRUNCATED when
 * the reply's size bound left keys out; an error carries no items. */
struct peer_aae_keys_reply
{
    uint64_t req_id;
    int32_t status;
    uint32_t flags;
    uint32_t count;
    struct peer_bytes items;
};

/* AUTH_CHALLENGE: sent right after HELLO by both ends; a fresh random
 * nonce the other end's proof must cover. */
struct peer_auth_challenge
{
    struct peer_bytes nonce; /* PEER_AUTH_NONCE_LEN bytes */
};

/* AUTH_PROOF: sent once the other end's HELLO and AUTH_CHALLENGE arrived;
 * peer_auth.h says what the MAC covers. */
struct peer_auth_proof
{
    struct peer_bytes mac; /* PEER_AUTH_MAC_LEN bytes */
};

/* One message: `type` says which union member is valid. */
struct peer_msg
{
    enum peer_type type;
    union {
        struct peer_hello hello;
        struct peer_ping ping;
        struct peer_ack ack;
        struct peer_ping_req ping_req;
        struct peer_gossip gossip;
        struct peer_join join;
        struct peer_join_reply join_reply;
        struct peer_kv_put kv_put;
        struct peer_kv_put_reply kv_put_reply;
        struct peer_kv_get kv_get;
        struct peer_kv_get_reply kv_get_reply;
        struct peer_error error;
        struct peer_kv_update kv_update;
        struct peer_kv_update_reply kv_update_reply;
        struct peer_chunk chunk;
        struct peer_fold fold;
        struct peer_fold_reply fold_reply;
        struct peer_fetch fetch;
        struct peer_aae_tree aae_tree;
        struct peer_aae_tree_reply aae_tree_reply;
        struct peer_aae_keys aae_keys;
        struct peer_aae_keys_reply aae_keys_reply;
        struct peer_auth_challenge auth_challenge;
        struct peer_auth_proof auth_proof;
    };
};

/* ---- encoder ------------------------------------------------------------ */

/*
 * Appends one whole frame (header and body) holding `m` to `out`, in
 * the version peer_frame_version(m->type) gives (1 for HELLO, which every
 * version reads; PEER_PROTO_VERSION for the others).  CHUNK (version 2,
 * issue 12 item 4) is sent only to a peer whose HELLO announced
 * max_version >= 2.
 * Errors: RK_EINVAL when `m` breaks a limit or rule above (unknown type,
 * a byte string too long or a required one empty, len > 0 with a NULL
 * ptr, reserved flag bits, a positive status, a tombstone with a value,
 * max_version 0); RK_ETOOBIG when the body would exceed
 * PEER_DEFAULT_MAX_BODY; RK_ENOMEM.  On error `out` is unchanged.
 * Ownership: `m` and its byte strings are borrowed for the call.
 * Thread: any (touches only `out`).  Complexity: O(body); `out` grows at
 * most once.
 */
int peer_encode(const struct peer_msg *m, struct rk_buf *out);

/*
 * As peer_encode, in a frame of protocol `version` (1..PEER_PROTO_VERSION):
 * fields newer than `version` are left out (a peer that speaks only that
 * version reads the frame; what they said is lost).  Errors: as
 * peer_encode, and RK_EINVAL for a version outside 1..PEER_PROTO_VERSION.
 * Thread: any.
 */
int peer_encode_version(const struct peer_msg *m,
                        uint8_t version,
                        struct rk_buf *out);

/* The version of the frames peer_encode writes for message `type`: 1 for
 * HELLO (every version reads it), PEER_PROTO_VERSION for the others. */
uint8_t peer_frame_version(int type);

/*
 * Writes the 16-byte header of a frame whose body (`body_len` bytes at
 * `body`, produced by other code in the layout of docs/peer-protocol.md)
 * is sent separately, computing the checksum.  `type` is written as given
 * (the receiver validates it).  No errors.  Thread: any.
 * Complexity: O(body_len).
 */
void peer_header_encode(unsigned char hdr[PEER_HEADER_SIZE],
                        uint8_t type,
                        const void *body,
                        uint32_t body_len);

/* The version of the frames that carry `type`: 2 for PEER_CHUNK, else 1
 * (PEER_BASE_VERSION).  Thread: any. */
uint8_t peer_type_version(int type);

/* ---- decoder ------------------------------------------------------------ */

struct peer_decoder; /* opaque */

/*
 * Creates a decoder accepting bodies of at most `max_body` bytes (0 =
 * PEER_DEFAULT_MAX_BODY).  Returns RK_OK and *out (free with
 * peer_decoder_destroy) or RK_ENOMEM.  This is the decoder's only
 * allocation: feed never allocates.  Thread: one connection, one thread.
 */
int peer_decoder_create(uint32_t max_body, struct peer_decoder **out);

/* Frees the decoder; NULL is a no-op. */
void peer_decoder_destroy(struct peer_decoder *d);

/* Replaces the body limit (0 = default); applies from the next header. */
void peer_decoder_set_max_body(struct peer_decoder *d, uint32_t max_body);

/*
 * Decodes one frame from buf[0..len), which must start at the first
 * unconsumed byte of the stream (the same byte on every call until a
 * frame is consumed; the caller may move or grow the buffer in between).
 *  - RK_OK: *msg holds the message and *consumed its frame's bytes; byte
 *    strings in *msg are views into buf, valid until buf changes.  More
 *    frames may follow in buf: call again with buf + *consumed.
 *  - RK_EAGAIN: the frame is incomplete, *consumed = 0;
 *    peer_decoder_need() says how many bytes it needs in total.  The
 *    header is checked as soon as each of its fields has arrived, so bad
 *    magic, version, type, flags or length fail before the body comes.
 *  - RK_EVERSION: the frame's version is newer than PEER_PROTO_VERSION;
 *    peer_decoder_errmsg() reads "peer speaks protocol version V, this
 *    node speaks 2".  Frames of every version 1..PEER_PROTO_VERSION are
 *    read; fields a frame's version lacks are 0.  A type newer than the
 *    frame's version (CHUNK in a version-1 frame) is RK_EPROTO, as an
 *    unknown type.
 *  - RK_EPROTO: bad magic, version 0, unknown type, reserved header flags,
 *    body over the limit, checksum mismatch, a field running past the
 *    body, trailing bytes in the body, or a field breaking its rule (see
 *    the structs); peer_decoder_errmsg() says which.
 * After RK_EVERSION or RK_EPROTO the stream cannot be trusted: the error
 * is sticky (every later call returns it) and the connection should be
 * closed.  *consumed and *msg are untouched on errors, *msg also on
 * RK_EAGAIN.
 * Thread: the decoder's thread.  Complexity: O(16) per call while the body
 * is incomplete, O(body) once when it is complete.  Nothing is allocated,
 * whatever the declared length.
 */
int peer_decoder_feed(struct peer_decoder *d,
                      const char *buf,
                      size_t len,
                      size_t *consumed,
                      struct peer_msg *msg);

/*
 * Total bytes (header + body) the current frame needs: PEER_HEADER_SIZE
 * until the whole header has arrived, then PEER_HEADER_SIZE + body_len.  Lets
 * the caller grow its buffer once for a large frame (after the header was
 * checked against the limit).
 */
size_t peer_decoder_need(const struct peer_decoder *d);

/* One-line message for the last RK_EPROTO/RK_EVERSION (no CR/LF); owned
 * by the decoder, valid until it is destroyed; "" when there was none. */
const char *peer_decoder_errmsg(const struct peer_decoder *d);

/* ---- helpers ------------------------------------------------------------ */

/* "HELLO", "KV_PUT", ... for logs; "UNKNOWN" for other values.  Static. */
const char *peer_type_name(int type);

/*
 * True when a and b have the same type and equal fields (byte strings
 * compared by content).  Both must be valid messages of a known type.
 * Thread: any.
 */
bool peer_msg_equal(const struct peer_msg *a, const struct peer_msg *b);

#endif /* RINGKV_PROTO_PEER_H */

/*
 * peer.c - the peer message codec of peer.h (DESIGN.md sections 1 and 4;
 * byte layouts in docs/peer-protocol.md).
 *
 * Each message type is described once, as a table of fields (kind, limits,
 * offset into struct peer_msg).  The encoder, the decoder, the size
 * computation and peer_msg_equal all walk the same table, so the four can
 * never disagree on the order or width of a field.  Rules that a table
 * cannot express (reserved flag bits, status signs, tombstones without
 * values) live in check_rules(), shared by encoder and decoder.
 *
 * Checksum: the issue asks for CRC32C, but Debian 12 ships no C library
 * for it and the house does not write its own checksum functions, so a
 * frame carries the low 32 bits of XXH3-64 (libxxhash) of its body, seeded
 * with header bytes 4..11 so that a flipped version, type, flag or length
 * bit breaks the checksum too (PING and ACK have the same layout: a type
 * bit flip must not turn one into the other).
 *
 * Decoder states (d->state), with the function that moves between them:
 *
 *              check_header: all 16 bytes valid
 *   HEADER ------------------------------------------> BODY
 *     ^  \                                              |
 *     |   `-- check_header: a bad field --> ERROR       | feed: body complete,
 *     |                                       ^         | checksum and fields
 *     `----------- RK_OK (frame consumed) ----+---------'  valid
 *                                             |
 *                    decode_body: bad checksum or field
 *
 * Invariants:
 *  1. buf[0] is the first byte of the current frame on every feed, so the
 *     decoder keeps no pointer into the caller's buffer between calls.
 *  2. In BODY, d->body_len <= d->max_body (checked before waiting for the
 *     body); nothing is allocated from it (the caller's buffer grows as
 *     bytes arrive; CVE-2021-32675 class).
 *  3. ERROR is sticky: d->err and d->errmsg stay as set.
 */
#include "proto/peer.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"

_Static_assert(SIZE_MAX > (uint64_t)UINT32_MAX + PEER_HEADER_SIZE,
               "frame sizes must fit size_t");
_Static_assert(PEER_DEFAULT_MAX_BODY <= UINT32_MAX, "body_len is a u32");

/* ---- message descriptions ----------------------------------------------- */

enum field_kind
{
    F_U8,
    F_U16,
    F_U32,
    F_U64,
    F_I32,
    F_NAME, /* u16 LE length, then bytes */
    F_BLOB, /* u32 LE length, then bytes */
};

struct field
{
    enum field_kind kind;
    uint32_t min_len; /* F_NAME/F_BLOB: bytes */
    uint32_t max_len; /* F_NAME/F_BLOB: bytes; UINT32_MAX = body bound */
    size_t off;       /* offsetof(struct peer_msg, <member>.<field>) */
    const char *name; /* for error messages */
    uint8_t since;    /* first protocol version with the field.  Frames
                         of an older version lack it (decoded as 0) */
};

/* Whether frames of protocol `version` carry field f. */
static bool field_in(const struct field *f, uint8_t version)
{
    return f->since <= version;
}

#define OFF(m, f) offsetof(struct peer_msg, m.f)
#define FU8(m, f)                    \
    {                                \
        F_U8, 0, 0, OFF(m, f), #f, 1 \
    }
#define FU8_SINCE(m, f, v)             \
    {                                  \
        F_U8, 0, 0, OFF(m, f), #f, (v) \
    }
#define FU16(m, f)                    \
    {                                 \
        F_U16, 0, 0, OFF(m, f), #f, 1 \
    }
#define FU32(m, f)                    \
    {                                 \
        F_U32, 0, 0, OFF(m, f), #f, 1 \
    }
#define FU64(m, f)                    \
    {                                 \
        F_U64, 0, 0, OFF(m, f), #f, 1 \
    }
#define FI32(m, f)                    \
    {                                 \
        F_I32, 0, 0, OFF(m, f), #f, 1 \
    }
#define FNAME(m, f, lo, hi)                  \
    {                                        \
        F_NAME, (lo), (hi), OFF(m, f), #f, 1 \
    }
#define FBLOB(m, f, lo, hi)                  \
    {                                        \
        F_BLOB, (lo), (hi), OFF(m, f), #f, 1 \
    }
#define UNBOUNDED UINT32_MAX

static const struct field hello_fields[] = {
    FNAME(hello, node_id, 1, PEER_MAX_NODE_ID),
    FNAME(hello, cluster_name, 0, PEER_MAX_CLUSTER),
    FNAME(hello, host, 1, PEER_MAX_HOST),
    FU16(hello, resp_port),
    FU16(hello, http_port),
    FU16(hello, peer_port),
    FU8(hello, max_version),
};

static const struct field ping_fields[] = {
    FU64(ping, seq),
    FNAME(ping, from, 1, PEER_MAX_NODE_ID),
    FNAME(ping, target, 0, PEER_MAX_NODE_ID),
    FU64(ping, incarnation),
    FU8_SINCE(ping, storage, 2),
};

static const struct field ack_fields[] = {
    FU64(ack, seq),
    FNAME(ack, from, 1, PEER_MAX_NODE_ID),
    FNAME(ack, target, 0, PEER_MAX_NODE_ID),
    FU64(ack, incarnation),
    FU8_SINCE(ack, storage, 2),
};

static const struct field ping_req_fields[] = {
    FU64(ping_req, seq),
    FNAME(ping_req, from, 1, PEER_MAX_NODE_ID),
    FNAME(ping_req, target, 1, PEER_MAX_NODE_ID),
};

static const struct field gossip_fields[] = {
    FBLOB(gossip, state, 0, UNBOUNDED),
    FU64(gossip, state_version),
    FNAME(gossip, from, 1, PEER_MAX_NODE_ID),
};

static const struct field join_fields[] = {
    FU64(join, req_id),
    FNAME(join, node_id, 1, PEER_MAX_NODE_ID),
    FNAME(join, host, 1, PEER_MAX_HOST),
    FU16(join, resp_port),
    FU16(join, http_port),
    FU16(join, peer_port),
};

static const struct field replace_fields[] = {
    FU64(join, req_id),
    FNAME(join, node_id, 1, PEER_MAX_NODE_ID),
    FNAME(join, host, 1, PEER_MAX_HOST),
    FU16(join, resp_port),
    FU16(join, http_port),
    FU16(join, peer_port),
    FNAME(join, replaces, 1, PEER_MAX_NODE_ID),
};

static const struct field join_reply_fields[] = {
    FU64(join_reply, req_id),
    FI32(join_reply, status),
    FBLOB(join_reply, message, 0, PEER_MAX_MESSAGE),
    FBLOB(join_reply, state, 0, UNBOUNDED),
};

static const struct field kv_put_fields[] = {
    FU64(kv_put, req_id),
    FBLOB(kv_put, key, 0, PEER_MAX_KEY),
    FBLOB(kv_put, object, 0, UNBOUNDED),
    FNAME(kv_put, hint_for, 0, PEER_MAX_NODE_ID),
    FU32(kv_put, deadline_ms),
};

static const struct field kv_put_reply_fields[] = {
    FU64(kv_put_reply, req_id),
    FI32(kv_put_reply, status),
};

static const struct field kv_get_fields[] = {
    FU64(kv_get, req_id),
    FBLOB(kv_get, key, 0, PEER_MAX_KEY),
    FU32(kv_get, deadline_ms),
};

static const struct field kv_get_reply_fields[] = {
    FU64(kv_get_reply, req_id),
    FI32(kv_get_reply, status),
    FBLOB(kv_get_reply, object, 0, UNBOUNDED),
};

static const struct field kv_update_fields[] = {
    FU64(kv_update, req_id),
    FBLOB(kv_update, key, 0, PEER_MAX_KEY),
    FBLOB(kv_update, context, 0, UNBOUNDED),
    FBLOB(kv_update, value, 0, UNBOUNDED),
    FU64(kv_update, timestamp),
    FU64(kv_update, expire_at_ms),
    FU32(kv_update, flags),
    FNAME(kv_update, hint_for, 0, PEER_MAX_NODE_ID),
    FU32(kv_update, deadline_ms),
};

static const struct field kv_update_reply_fields[] = {
    FU64(kv_update_reply, req_id),
    FI32(kv_update_reply, status),
    FBLOB(kv_update_reply, object, 0, UNBOUNDED),
};

static const struct field error_fields[] = {
    FU64(error, req_id),
    FI32(error, status),
    FBLOB(error, message, 0, PEER_MAX_MESSAGE),
};

static const struct field chunk_fields[] = {
    FU32(chunk, total),
    FU32(chunk, offset),
    FBLOB(chunk, data, 1, PEER_CHUNK_MAX),
};

static const struct field fold_fields[] = {
    FU64(fold, req_id),    FU32(fold, partition),
    FU32(fold, epoch),     FBLOB(fold, cursor, 0, PEER_FOLD_CURSOR_MAX),
    FU32(fold, max_bytes),
};

static const struct field fetch_fields[] = {
    FU64(fetch, req_id),    FU32(fetch, partition),
    FU32(fetch, epoch),     FBLOB(fetch, keys, 5, PEER_FOLD_MAX_BYTES),
    FU32(fetch, max_bytes),
};

static const struct field aae_tree_fields[] = {
    FU64(aae_tree, req_id),
    FU32(aae_tree, partition),
    FU32(aae_tree, n_leaves),
    FU32(aae_tree, level),
    FBLOB(aae_tree, ids, 0, PEER_AAE_MAX_IDS * 4),
};

static const struct field aae_tree_reply_fields[] = {
    FU64(aae_tree_reply, req_id),
    FI32(aae_tree_reply, status),
    FU64(aae_tree_reply, root),
    FBLOB(aae_tree_reply, hashes, 0, PEER_AAE_MAX_IDS * 8 * 64),
};

static const struct field aae_keys_fields[] = {
    FU64(aae_keys, req_id),
    FU32(aae_keys, partition),
    FU32(aae_keys, n_leaves),
    FBLOB(aae_keys, leaves, 4, PEER_AAE_MAX_IDS * 4),
};

static const struct field aae_keys_reply_fields[] = {
    FU64(aae_keys_reply, req_id),
    FI32(aae_keys_reply, status),
    FU32(aae_keys_reply, flags),
    FU32(aae_keys_reply, count),
    FBLOB(aae_keys_reply, items, 0, UNBOUNDED),
};

static const struct field fold_reply_fields[] = {
    FU64(fold_reply, req_id),
    FI32(fold_reply, status),
    FBLOB(fold_reply, cursor, 0, PEER_FOLD_CURSOR_MAX),
    FU32(fold_reply, flags),
    FU32(fold_reply, count),
    FBLOB(fold_reply, items, 0, UNBOUNDED),
};

static const struct field auth_challenge_fields[] = {
    FBLOB(auth_challenge, nonce, PEER_AUTH_NONCE_LEN, PEER_AUTH_NONCE_LEN),
};

static const struct field auth_proof_fields[] = {
    FBLOB(auth_proof, mac, PEER_AUTH_MAC_LEN, PEER_AUTH_MAC_LEN),
};

struct type_desc
{
    const char *name;
    const struct field *fields;
    size_t n_fields;
};

#define DESC(name, f)                           \
    {                                           \
        (name), (f), sizeof(f) / sizeof((f)[0]) \
    }

static const struct type_desc g_types[PEER_TYPE_MAX + 1] = {
    [PEER_HELLO] = DESC("HELLO", hello_fields),
    [PEER_PING] = DESC("PING", ping_fields),
    [PEER_ACK] = DESC("ACK", ack_fields),
    [PEER_PING_REQ] = DESC("PING_REQ", ping_req_fields),
    [PEER_GOSSIP] = DESC("GOSSIP", gossip_fields),
    [PEER_JOIN] = DESC("JOIN", join_fields),
    [PEER_JOIN_REPLY] = DESC("JOIN_REPLY", join_reply_fields),
    [PEER_KV_PUT] = DESC("KV_PUT", kv_put_fields),
    [PEER_KV_PUT_REPLY] = DESC("KV_PUT_REPLY", kv_put_reply_fields),
    [PEER_KV_GET] = DESC("KV_GET", kv_get_fields),
    [PEER_KV_GET_REPLY] = DESC("KV_GET_REPLY", kv_get_reply_fields),
    [PEER_ERROR] = DESC("ERROR", error_fields),
    [PEER_KV_UPDATE] = DESC("KV_UPDATE", kv_update_fields),
    [PEER_KV_UPDATE_REPLY] = DESC("KV_UPDATE_REPLY", kv_update_reply_fields),
    [PEER_CHUNK] = DESC("CHUNK", chunk_fields),
    [PEER_FOLD] = DESC("FOLD", fold_fields),
    [PEER_FOLD_REPLY] = DESC("FOLD_REPLY", fold_reply_fields),
    [PEER_AAE_TREE] = DESC("AAE_TREE", aae_tree_fields),
    [PEER_AAE_TREE_REPLY] = DESC("AAE_TREE_REPLY", aae_tree_reply_fields),
    [PEER_AAE_KEYS] = DESC("AAE_KEYS", aae_keys_fields),
    [PEER_AAE_KEYS_REPLY] = DESC("AAE_KEYS_REPLY", aae_keys_reply_fields),
    [PEER_REPLACE] = DESC("REPLACE", replace_fields),
    [PEER_AUTH_CHALLENGE] = DESC("AUTH_CHALLENGE", auth_challenge_fields),
    [PEER_AUTH_PROOF] = DESC("AUTH_PROOF", auth_proof_fields),
    [PEER_FETCH] = DESC("FETCH", fetch_fields),
};

uint8_t peer_type_version(int type)
{
    return type == PEER_CHUNK || type >= PEER_FOLD ? 2 : PEER_BASE_VERSION;
}

static const struct type_desc *type_desc(int type)
{
    if (type < PEER_TYPE_MIN || type > PEER_TYPE_MAX) {
        return NULL;
    }
    return &g_types[type];
}

const char *peer_type_name(int type)
{
    const struct type_desc *t = type_desc(type);
    return t != NULL ? t->name : "UNKNOWN";
}

/* Bytes of the fixed-width part of a field (the length prefix for
 * strings). */
static size_t fixed_size(enum field_kind k)
{
    switch (k) {
        case F_U8:
            return 1;
        case F_U16:
        case F_NAME:
            return 2;
        case F_U32:
        case F_I32:
        case F_BLOB:
            return 4;
        case F_U64:
            return 8;
    }
    return 0;
}

/* Field accessors: memcpy at the member's offset (no type punning). */
static uint64_t get_uint(const struct peer_msg *m, const struct field *f)
{
    const char *p = (const char *)m + f->off;
    switch (f->kind) {
        case F_U8: {
            uint8_t v;
            memcpy(&v, p, sizeof(v));
            return v;
        }
        case F_U16: {
            uint16_t v;
            memcpy(&v, p, sizeof(v));
            return v;
        }
        case F_U32: {
            uint32_t v;
            memcpy(&v, p, sizeof(v));
            return v;
        }
        case F_I32: {
            int32_t v;
            memcpy(&v, p, sizeof(v));
            return (uint32_t)v;
        }
        case F_U64: {
            uint64_t v;
            memcpy(&v, p, sizeof(v));
            return v;
        }
        case F_NAME:
        case F_BLOB:
            break;
    }
    return 0;
}

static void set_uint(struct peer_msg *m, const struct field *f, uint64_t v)
{
    char *p = (char *)m + f->off;
    switch (f->kind) {
        case F_U8: {
            uint8_t x = (uint8_t)v;
            memcpy(p, &x, sizeof(x));
            break;
        }
        case F_U16: {
            uint16_t x = (uint16_t)v;
            memcpy(p, &x, sizeof(x));
            break;
        }
        case F_U32: {
            uint32_t x = (uint32_t)v;
            memcpy(p, &x, sizeof(x));
            break;
        }
        case F_I32: {
            /* int32_t is two's complement: the u32 on the wire maps
             * bit for bit */
            uint32_t u = (uint32_t)v;
            int32_t x;
            memcpy(&x, &u, sizeof(x));
            memcpy(p, &x, sizeof(x));
            break;
        }
        case F_U64:
            memcpy(p, &v, sizeof(v));
            break;
        case F_NAME:
        case F_BLOB:
            break;
    }
}

static struct peer_bytes get_bytes(const struct peer_msg *m,
                                   const struct field *f)
{
    struct peer_bytes b;
    memcpy(&b, (const char *)m + f->off, sizeof(b));
    return b;
}

static void set_bytes(struct peer_msg *m,
                      const struct field *f,
                      struct peer_bytes b)
{
    memcpy((char *)m + f->off, &b, sizeof(b));
}

static bool is_string(enum field_kind k)
{
    return k == F_NAME || k == F_BLOB;
}

/* ---- rules beyond the tables -------------------------------------------- */

/*
 * Checks the rules of a message that the field tables do not express.
 * Returns NULL when they hold, else a static description.
 */
static const char *check_rules(const struct peer_msg *m)
{
    switch (m->type) {
        case PEER_HELLO:
            if (m->hello.max_version < 1) {
                return "HELLO max_version is 0";
            }
            break;
        case PEER_PING:
            if (m->ping.storage > PEER_STORAGE_DEGRADED) {
                return "PING has an unknown storage state";
            }
            break;
        case PEER_ACK:
            if (m->ack.storage > PEER_STORAGE_DEGRADED) {
                return "ACK has an unknown storage state";
            }
            break;
        case PEER_JOIN_REPLY:
            if (m->join_reply.status > 0) {
                return "JOIN_REPLY status is positive";
            }
            break;
        case PEER_KV_UPDATE: {
            uint32_t f = m->kv_update.flags;
            if ((f & ~PEER_KV_UPDATE_FLAGS) != 0) {
                return "KV_UPDATE has reserved flag bits set";
            }
            if ((f & PEER_KV_TOMBSTONE) && ((m->kv_update.value.len != 0 &&
                                             !(f & PEER_KV_COUNTER_STATE)) ||
                                            m->kv_update.expire_at_ms != 0)) {
                return "KV_UPDATE tombstone carries a value or an expiry";
            }
            if ((f & PEER_KV_COUNTER_STATE) &&
                ((f & (PEER_KV_CTYPE | PEER_KV_CHUNKED | PEER_KV_COUNTER)) ||
                 m->kv_update.value.len == 0)) {
                return "KV_UPDATE counter state is empty or has a content "
                       "type, a manifest or an increment";
            }
            if ((f & PEER_KV_TOMBSTONE) && (f & PEER_KV_CTYPE)) {
                return "KV_UPDATE tombstone carries a content type";
            }
            if ((f & PEER_KV_CHUNKED) &&
                (f & (PEER_KV_TOMBSTONE | PEER_KV_CTYPE))) {
                return "KV_UPDATE chunk manifest is a tombstone or has a "
                       "content type";
            }
            if ((f & PEER_KV_OWN_CONTEXT) && m->kv_update.context.len != 0) {
                return "KV_UPDATE with OWN_CONTEXT carries a context";
            }
            if ((f & PEER_KV_COUNTER) &&
                (!(f & PEER_KV_OWN_CONTEXT) ||
                 (f & (PEER_KV_TOMBSTONE | PEER_KV_CTYPE | PEER_KV_CHUNKED)) ||
                 m->kv_update.value.len != PEER_KV_COUNTER_LEN ||
                 m->kv_update.expire_at_ms != 0)) {
                return "KV_UPDATE increment is not OWN_CONTEXT with a "
                       "24-byte value and no other flag or expiry";
            }
            break;
        }
        case PEER_KV_UPDATE_REPLY:
            if (m->kv_update_reply.status > 0) {
                return "KV_UPDATE_REPLY status is positive";
            }
            if (m->kv_update_reply.status != 0 &&
                m->kv_update_reply.object.len != 0) {
                return "KV_UPDATE_REPLY error carries an object";
            }
            break;
        case PEER_KV_PUT_REPLY:
            if (m->kv_put_reply.status > 0) {
                return "KV_PUT_REPLY status is positive";
            }
            break;
        case PEER_KV_GET_REPLY:
            if (m->kv_get_reply.status > 0) {
                return "KV_GET_REPLY status is positive";
            }
            if (m->kv_get_reply.status != 0 &&
                m->kv_get_reply.object.len != 0) {
                return "KV_GET_REPLY error carries an object";
            }
            break;
        case PEER_ERROR:
            if (m->error.status >= 0) {
                return "ERROR status is not an error code";
            }
            break;
        case PEER_FOLD:
            if (m->fold.req_id == 0) {
                return "FOLD req_id is 0";
            }
            if (m->fold.max_bytes == 0 ||
                m->fold.max_bytes > PEER_FOLD_MAX_BYTES) {
                return "FOLD max_bytes out of range";
            }
            break;
        case PEER_FETCH:
            if (m->fetch.req_id == 0) {
                return "FETCH req_id is 0";
            }
            if (m->fetch.max_bytes == 0 ||
                m->fetch.max_bytes > PEER_FOLD_MAX_BYTES) {
                return "FETCH max_bytes out of range";
            }
            break;
        case PEER_FOLD_REPLY:
            if (m->fold_reply.status > 0) {
                return "FOLD_REPLY status is positive";
            }
            if (m->fold_reply.status != 0 &&
                (m->fold_reply.items.len != 0 || m->fold_reply.count != 0)) {
                return "FOLD_REPLY error carries items";
            }
            if (m->fold_reply.flags & ~PEER_FOLD_DONE) {
                return "FOLD_REPLY has unknown flags";
            }
            break;
        case PEER_AAE_TREE:
            if (m->aae_tree.req_id == 0) {
                return "AAE_TREE req_id is 0";
            }
            if (m->aae_tree.ids.len % 4 != 0) {
                return "AAE_TREE ids is not a list of u32";
            }
            if (m->aae_tree.level > PEER_AAE_LEVEL_LEAF ||
                (m->aae_tree.level == PEER_AAE_LEVEL_BRANCH &&
                 m->aae_tree.ids.len != 0)) {
                return "AAE_TREE level is unknown or lists ids";
            }
            break;
        case PEER_AAE_TREE_REPLY:
            if (m->aae_tree_reply.status > 0) {
                return "AAE_TREE_REPLY status is positive";
            }
            if (m->aae_tree_reply.hashes.len % 8 != 0 ||
                (m->aae_tree_reply.status != 0 &&
                 m->aae_tree_reply.hashes.len != 0)) {
                return "AAE_TREE_REPLY hashes malformed";
            }
            break;
        case PEER_AAE_KEYS:
            if (m->aae_keys.req_id == 0) {
                return "AAE_KEYS req_id is 0";
            }
            if (m->aae_keys.leaves.len % 4 != 0) {
                return "AAE_KEYS leaves is not a list of u32";
            }
            break;
        case PEER_AAE_KEYS_REPLY:
            if (m->aae_keys_reply.status > 0) {
                return "AAE_KEYS_REPLY status is positive";
            }
            if (m->aae_keys_reply.status != 0 &&
                (m->aae_keys_reply.items.len != 0 ||
                 m->aae_keys_reply.count != 0)) {
                return "AAE_KEYS_REPLY error carries items";
            }
            if (m->aae_keys_reply.flags & ~PEER_AAE_KEYS_TRUNCATED) {
                return "AAE_KEYS_REPLY has unknown flags";
            }
            break;
        case PEER_CHUNK:
            if (m->chunk.total <= PEER_HEADER_SIZE) {
                return "CHUNK total is not larger than a frame header";
            }
            if (m->chunk.offset > m->chunk.total ||
                m->chunk.data.len > m->chunk.total - m->chunk.offset) {
                return "CHUNK runs past its frame's total";
            }
            break;
        default:
            break;
    }
    return NULL;
}

/* ---- encoder ------------------------------------------------------------ */

static uint32_t frame_checksum(const unsigned char hdr[PEER_HEADER_SIZE],
                               const void *body,
                               size_t body_len)
{
    XXH64_hash_t seed = rk_get_le64(hdr + 4);
    return (uint32_t)XXH3_64bits_withSeed(body, body_len, seed);
}

/* Fills bytes 0..11 of a header. */
static void header_prefix(unsigned char hdr[PEER_HEADER_SIZE],
                          uint8_t version,
                          uint8_t type,
                          uint32_t body_len)
{
    memcpy(hdr, PEER_MAGIC, 4);
    hdr[4] = version;
    hdr[5] = type;
    rk_put_le16(hdr + 6, 0);
    rk_put_le32(hdr + 8, body_len);
}

void peer_header_encode(unsigned char hdr[PEER_HEADER_SIZE],
                        uint8_t type,
                        const void *body,
                        uint32_t body_len)
{
    header_prefix(hdr, peer_frame_version(type), type, body_len);
    rk_put_le32(hdr + 12, frame_checksum(hdr, body, body_len));
}

/* Validates m for encoding in a frame of `version` and computes its body
 * size. */
static int body_size(const struct peer_msg *m, uint8_t version, size_t *out)
{
    const struct type_desc *t = type_desc((int)m->type);
    if (t == NULL) {
        return RK_EINVAL;
    }
    size_t size = 0;
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct field *f = &t->fields[i];
        if (!field_in(f, version)) {
            continue;
        }
        size += fixed_size(f->kind);
        if (!is_string(f->kind)) {
            continue;
        }
        struct peer_bytes b = get_bytes(m, f);
        if (b.len < f->min_len || (b.len > 0 && b.ptr == NULL)) {
            return RK_EINVAL;
        }
        if (f->max_len != UNBOUNDED && b.len > f->max_len) {
            return RK_EINVAL;
        }
        if (b.len > PEER_DEFAULT_MAX_BODY) {
            return RK_ETOOBIG;
        }
        size += b.len; /* <= 12 fields of <= 2^30 bytes: no overflow */
    }
    if (check_rules(m) != NULL) {
        return RK_EINVAL;
    }
    if (size > PEER_DEFAULT_MAX_BODY) {
        return RK_ETOOBIG;
    }
    *out = size;
    return RK_OK;
}

uint8_t peer_frame_version(int type)
{
    return type == PEER_HELLO ? 1 : PEER_PROTO_VERSION;
}

int peer_encode(const struct peer_msg *m, struct rk_buf *out)
{
    return peer_encode_version(m, peer_frame_version((int)m->type), out);
}

int peer_encode_version(const struct peer_msg *m,
                        uint8_t version,
                        struct rk_buf *out)
{
    if (version < 1 || version > PEER_PROTO_VERSION ||
        version < peer_type_version((int)m->type)) {
        return RK_EINVAL; /* e.g. CHUNK in a version-1 frame */
    }
    size_t size;
    int rc = body_size(m, version, &size);
    if (rc != RK_OK) {
        return rc;
    }
    rc = rk_buf_reserve(out, PEER_HEADER_SIZE + size);
    if (rc != RK_OK) {
        return rc;
    }
    unsigned char *hdr = (unsigned char *)out->base + out->len;
    unsigned char *body = hdr + PEER_HEADER_SIZE;
    unsigned char *p = body;
    const struct type_desc *t = type_desc((int)m->type);
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct field *f = &t->fields[i];
        if (!field_in(f, version)) {
            continue;
        }
        struct peer_bytes b = {NULL, 0};
        switch (f->kind) {
            case F_U8:
                *p = (unsigned char)get_uint(m, f);
                break;
            case F_U16:
                rk_put_le16(p, (uint16_t)get_uint(m, f));
                break;
            case F_U32:
            case F_I32:
                rk_put_le32(p, (uint32_t)get_uint(m, f));
                break;
            case F_U64:
                rk_put_le64(p, get_uint(m, f));
                break;
            case F_NAME:
                b = get_bytes(m, f);
                rk_put_le16(p, (uint16_t)b.len);
                break;
            case F_BLOB:
                b = get_bytes(m, f);
                rk_put_le32(p, (uint32_t)b.len);
                break;
        }
        p += fixed_size(f->kind);
        if (is_string(f->kind) && b.len > 0) {
            memcpy(p, b.ptr, b.len);
            p += b.len;
        }
    }
    header_prefix(hdr, version, (uint8_t)m->type, (uint32_t)size);
    rk_put_le32(hdr + 12, frame_checksum(hdr, body, size));
    out->len += PEER_HEADER_SIZE + size;
    return RK_OK;
}

/* ---- decoder ------------------------------------------------------------ */

enum
{
    ST_HEADER, /* waiting for / checking the 16 header bytes */
    ST_BODY,   /* header valid; waiting for body_len bytes */
    ST_ERROR,  /* sticky */
};

struct peer_decoder
{
    uint32_t max_body; /* bytes, applied when a header's length arrives */
    int state;         /* ST_* */
    uint8_t type;      /* ST_BODY: the frame's type */
    uint8_t version;   /* ST_BODY: the frame's protocol version */
    uint32_t body_len; /* ST_BODY: bytes, <= max_body (invariant 2) */
    uint32_t checksum; /* ST_BODY: from the header */
    int err;           /* ST_ERROR: RK_EPROTO or RK_EVERSION */
    char errmsg[192];  /* "" unless ST_ERROR */
};

int peer_decoder_create(uint32_t max_body, struct peer_decoder **out)
{
    struct peer_decoder *d = rk_calloc(1, sizeof(*d));
    if (d == NULL) {
        return RK_ENOMEM;
    }
    peer_decoder_set_max_body(d, max_body);
    d->state = ST_HEADER;
    *out = d;
    return RK_OK;
}

void peer_decoder_destroy(struct peer_decoder *d)
{
    rk_free(d);
}

void peer_decoder_set_max_body(struct peer_decoder *d, uint32_t max_body)
{
    d->max_body = max_body == 0 ? PEER_DEFAULT_MAX_BODY : max_body;
}

size_t peer_decoder_need(const struct peer_decoder *d)
{
    if (d->state == ST_BODY) {
        return PEER_HEADER_SIZE + (size_t)d->body_len;
    }
    return PEER_HEADER_SIZE;
}

const char *peer_decoder_errmsg(const struct peer_decoder *d)
{
    return d->errmsg;
}

static int fail(struct peer_decoder *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct peer_decoder *d, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->errmsg, sizeof(d->errmsg), fmt, ap);
    va_end(ap);
    d->state = ST_ERROR;
    d->err = err;
    return err;
}

/*
 * Checks the header fields present in hdr[0..n), n <= 16, in wire order:
 * a field is judged as soon as its last byte is there.  Returns RK_OK,
 * or the error (decoder moved to ST_ERROR).
 */
static int check_header(struct peer_decoder *d,
                        const unsigned char *hdr,
                        size_t n)
{
    if (n == 0) {
        return RK_OK; /* hdr may be NULL */
    }
    size_t m = n < 4 ? n : 4;
    if (memcmp(hdr, PEER_MAGIC, m) != 0) {
        return fail(d, RK_EPROTO,
                    "peer protocol error: bad magic (not a ringkv peer "
                    "connection)");
    }
    if (n > 4) {
        if (hdr[4] == 0) {
            return fail(d, RK_EPROTO,
                        "peer protocol error: protocol version 0 is invalid");
        }
        if (hdr[4] > PEER_PROTO_VERSION) {
            return fail(d, RK_EVERSION,
                        "peer speaks protocol version %u, this node speaks %u",
                        (unsigned)hdr[4], (unsigned)PEER_PROTO_VERSION);
        }
    }
    if (n > 5 &&
        (type_desc(hdr[5]) == NULL || peer_type_version(hdr[5]) > hdr[4])) {
        return fail(d, RK_EPROTO,
                    "peer protocol error: unknown message type %u in a "
                    "version %u frame",
                    (unsigned)hdr[5], (unsigned)hdr[4]);
    }
    if (n >= 8 && rk_get_le16(hdr + 6) != 0) {
        return fail(d, RK_EPROTO,
                    "peer protocol error: reserved header flags 0x%04x set",
                    (unsigned)rk_get_le16(hdr + 6));
    }
    if (n >= 12 && rk_get_le32(hdr + 8) > d->max_body) {
        return fail(d, RK_EPROTO,
                    "peer protocol error: %s body of %" PRIu32
                    " bytes is over the limit of %" PRIu32,
                    peer_type_name(hdr[5]), rk_get_le32(hdr + 8), d->max_body);
    }
    return RK_OK;
}

/* A cursor over a body. */
struct reader
{
    const unsigned char *p;
    size_t left; /* bytes */
};

/*
 * Decodes the body of type t into *m.  Returns RK_OK or RK_EPROTO (decoder
 * moved to ST_ERROR).
 */
static int decode_body(struct peer_decoder *d,
                       const struct type_desc *t,
                       struct reader *r,
                       struct peer_msg *m)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct field *f = &t->fields[i];
        if (!field_in(f, d->version)) {
            continue; /* an older frame: the field stays 0 */
        }
        size_t w = fixed_size(f->kind);
        if (r->left < w) {
            return fail(d, RK_EPROTO,
                        "peer protocol error: %s body ends inside field %s",
                        t->name, f->name);
        }
        uint64_t v = 0;
        switch (f->kind) {
            case F_U8:
                v = r->p[0];
                break;
            case F_U16:
            case F_NAME:
                v = rk_get_le16(r->p);
                break;
            case F_U32:
            case F_I32:
            case F_BLOB:
                v = rk_get_le32(r->p);
                break;
            case F_U64:
                v = rk_get_le64(r->p);
                break;
        }
        r->p += w;
        r->left -= w;
        if (!is_string(f->kind)) {
            set_uint(m, f, v);
            continue;
        }
        if (v > r->left) {
            return fail(d, RK_EPROTO,
                        "peer protocol error: %s field %s of %" PRIu64
                        " bytes runs past the body (%zu left)",
                        t->name, f->name, v, r->left);
        }
        if (v < f->min_len) {
            return fail(d, RK_EPROTO,
                        "peer protocol error: %s field %s is empty", t->name,
                        f->name);
        }
        if (f->max_len != UNBOUNDED && v > f->max_len) {
            return fail(d, RK_EPROTO,
                        "peer protocol error: %s field %s of %" PRIu64
                        " bytes is over its limit of %" PRIu32,
                        t->name, f->name, v, f->max_len);
        }
        struct peer_bytes b = {(const char *)r->p, (size_t)v};
        set_bytes(m, f, b);
        r->p += v;
        r->left -= v;
    }
    if (r->left != 0) {
        return fail(d, RK_EPROTO,
                    "peer protocol error: %zu trailing bytes after the %s "
                    "body",
                    r->left, t->name);
    }
    const char *why = check_rules(m);
    if (why != NULL) {
        return fail(d, RK_EPROTO, "peer protocol error: %s", why);
    }
    return RK_OK;
}

int peer_decoder_feed(struct peer_decoder *d,
                      const char *buf,
                      size_t len,
                      size_t *consumed,
                      struct peer_msg *msg)
{
    const unsigned char *hdr = (const unsigned char *)buf;
    if (d->state == ST_ERROR) {
        return d->err;
    }
    if (d->state == ST_HEADER) {
        int rc = check_header(d, hdr,
                              len < PEER_HEADER_SIZE ? len : PEER_HEADER_SIZE);
        if (rc != RK_OK) {
            return rc;
        }
        if (len < PEER_HEADER_SIZE) {
            *consumed = 0;
            return RK_EAGAIN;
        }
        d->type = hdr[5];
        d->version = hdr[4];
        d->body_len = rk_get_le32(hdr + 8);
        d->checksum = rk_get_le32(hdr + 12);
        d->state = ST_BODY;
    }
    if (len < PEER_HEADER_SIZE || len - PEER_HEADER_SIZE < d->body_len) {
        *consumed = 0;
        return RK_EAGAIN;
    }
    const unsigned char *body = hdr + PEER_HEADER_SIZE;
    const struct type_desc *t = type_desc(d->type);
    if (frame_checksum(hdr, body, d->body_len) != d->checksum) {
        return fail(d, RK_EPROTO,
                    "peer protocol error: checksum mismatch in a %s frame of "
                    "%" PRIu32 " body bytes",
                    t->name, d->body_len);
    }
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = (enum peer_type)d->type;
    struct reader r = {body, d->body_len};
    int rc = decode_body(d, t, &r, &m);
    if (rc != RK_OK) {
        return rc;
    }
    d->state = ST_HEADER;
    *consumed = PEER_HEADER_SIZE + (size_t)d->body_len;
    *msg = m;
    return RK_OK;
}

/* ---- helpers ------------------------------------------------------------ */

bool peer_msg_equal(const struct peer_msg *a, const struct peer_msg *b)
{
    if (a->type != b->type) {
        return false;
    }
    const struct type_desc *t = type_desc((int)a->type);
    if (t == NULL) {
        return false;
    }
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct field *f = &t->fields[i];
        if (!is_string(f->kind)) {
            if (get_uint(a, f) != get_uint(b, f)) {
                return false;
            }
            continue;
        }
        struct peer_bytes x = get_bytes(a, f);
        struct peer_bytes y = get_bytes(b, f);
        if (x.len != y.len || (x.len > 0 && memcmp(x.ptr, y.ptr, x.len) != 0)) {
            return false;
        }
    }
    return true;
}

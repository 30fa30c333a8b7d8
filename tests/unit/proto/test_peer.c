/*
 * test_peer.c - proto/peer: the peer message codec (docs/peer-protocol.md).
 * Round trips of every message type at its edge values, every split point
 * with the buffer moving between feeds, pipelining, every single-bit flip
 * of encoded frames, truncation, limits (declared 4 GiB bodies allocate
 * nothing), versions, unknown types, malformed bodies, the encoder's own
 * checks, the documented bytes, and an allocation-failure loop
 * (STYLE.md 1.7).
 *
 * With RK_PEER_SEED_DIR=DIR in the environment,
 * test_peer_fuzz_seeds_decode_cleanly writes the libFuzzer seeds of
 * tests/fuzz/corpus/fuzz_peer/ into DIR:
 *   RK_PEER_SEED_DIR=tests/fuzz/corpus/fuzz_peer build/test_peer
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/dvv.h" /* sizes of the object encoding: macros only */
#include "common/alloc.h"
#include "common/buf.h"
#include "common/endian.h"
#include "common/error.h"
#include "proto/peer.h"

/* ---- a counting, failing allocator ------------------------------------- */

struct test_heap
{
    long calls;   /* allocation calls (malloc, calloc, realloc) */
    long fail_at; /* fail the Nth call, 1-based; 0 = never */
    long live;    /* blocks not yet freed */
};

#define HEAP_HDR        16          /* keeps max_align_t alignment */
#define DOC_PING_V2_SUM 0x12551bbeu /* docs/peer-protocol.md "Example" */

static struct test_heap g_heap;

static bool heap_should_fail(struct test_heap *h)
{
    h->calls++;
    return h->fail_at != 0 && h->calls == h->fail_at;
}

static void *heap_malloc(void *data, size_t size)
{
    struct test_heap *h = data;
    if (heap_should_fail(h)) {
        return NULL;
    }
    char *p = malloc(size + HEAP_HDR);
    if (p == NULL) {
        return NULL;
    }
    h->live++;
    return p + HEAP_HDR;
}

static void *heap_calloc(void *data, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = heap_malloc(data, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

static void heap_free(void *data, void *ptr)
{
    struct test_heap *h = data;
    if (ptr == NULL) {
        return;
    }
    h->live--;
    free((char *)ptr - HEAP_HDR);
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
    struct test_heap *h = data;
    if (ptr == NULL) {
        return heap_malloc(data, size);
    }
    if (heap_should_fail(h)) {
        return NULL;
    }
    char *p = realloc((char *)ptr - HEAP_HDR, size + HEAP_HDR);
    return p == NULL ? NULL : p + HEAP_HDR;
}

static const struct rk_allocator g_heap_alloc = {
    .data = &g_heap,
    .malloc_fn = heap_malloc,
    .calloc_fn = heap_calloc,
    .realloc_fn = heap_realloc,
    .free_fn = heap_free,
};

static void heap_install(long fail_at)
{
    memset(&g_heap, 0, sizeof(g_heap));
    g_heap.fail_at = fail_at;
    rk_set_allocator(&g_heap_alloc);
}

static void heap_uninstall(void)
{
    rk_set_allocator(NULL);
}

/* ---- sample messages at their edge values ------------------------------ */

static char g_id_max[PEER_MAX_NODE_ID]; /* binary, with NULs */
static char g_name_max[PEER_MAX_CLUSTER];
static char g_host_max[PEER_MAX_HOST];
static char g_msg_max[PEER_MAX_MESSAGE];
static char g_bin[300];               /* binary bytes with NULs */
static char g_key_max[PEER_MAX_KEY];  /* a maximal key */
static char g_big[200 * 1024];        /* a value of 200 KiB */
static char g_long[PEER_MAX_KEY + 1]; /* backs strings one over a limit */

/*
 * An object and a context shaped like the encoding of cluster/dvv.h (one
 * clock entry; the object also one sibling with the value "v1").  The
 * codec treats both as opaque bytes: the shape only makes the fuzz seeds
 * realistic.
 */
static unsigned char g_obj[DVV_HDR + DVV_CLOCK_ENTRY + DVV_SIB_HDR + 2];
static unsigned char g_ctx[DVV_HDR + DVV_CLOCK_ENTRY];
#define OBJ B((const char *)g_obj, sizeof(g_obj))
#define CTX B((const char *)g_ctx, sizeof(g_ctx))

/* Writes a dvv-style header and one clock entry {actor 7, counter 3, ts}. */
static void dvv_like_clock(unsigned char *p, uint16_t n_siblings)
{
    p[0] = 1; /* format version */
    p[1] = 0; /* flags */
    rk_put_le16(p + 2, 1);
    rk_put_le16(p + 4, n_siblings);
    rk_put_le64(p + 6, 7);
    rk_put_le64(p + 14, 3);
    rk_put_le64(p + 22, 0x0001020304050607u);
}

static void dvv_like_init(void)
{
    dvv_like_clock(g_ctx, 0);
    dvv_like_clock(g_obj, 1);
    unsigned char *sib = g_obj + DVV_HDR + DVV_CLOCK_ENTRY;
    rk_put_le64(sib, 7);                        /* dot actor */
    rk_put_le64(sib + 8, 3);                    /* dot counter */
    rk_put_le64(sib + 16, 0x0001020304050607u); /* HLC ts */
    rk_put_le64(sib + 24, 0);                   /* expire_at_ms */
    sib[32] = 0;                                /* flags */
    rk_put_le32(sib + 33, 2);                   /* value_len */
    memcpy(sib + DVV_SIB_HDR, "v1", 2);
}

static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (char)((i * 131u + seed) & 0xff); /* 0x00 every 256 */
    }
}

static void samples_init(void)
{
    static bool done;
    if (done) {
        return;
    }
    fill(g_id_max, sizeof(g_id_max), 0);
    fill(g_name_max, sizeof(g_name_max), 7);
    fill(g_host_max, sizeof(g_host_max), 13);
    fill(g_msg_max, sizeof(g_msg_max), 21);
    fill(g_bin, sizeof(g_bin), 0);
    fill(g_key_max, sizeof(g_key_max), 33);
    fill(g_big, sizeof(g_big), 45);
    dvv_like_init();
    done = true;
}

#define B(p, n) ((struct peer_bytes){(p), (n)})
#define S(s)    B((s), sizeof(s) - 1)
#define EMPTY   B(NULL, 0)
#define ID_MAX  B(g_id_max, sizeof(g_id_max))
#define BIN     B(g_bin, sizeof(g_bin))
#define MSG_MAX B(g_msg_max, sizeof(g_msg_max))

struct sample
{
    const char *name; /* file name of its fuzz seed */
    struct peer_msg msg;
    bool big; /* frame over 4 KiB: skipped by the quadratic tests */
};

/* Fills out[] and returns the count (<= 64). */
static size_t make_samples(struct sample *out)
{
    samples_init();
    size_t n = 0;
#define ADD(nm, big_, ...)                         \
    do {                                           \
        out[n].name = (nm);                        \
        out[n].big = (big_);                       \
        out[n].msg = (struct peer_msg)__VA_ARGS__; \
        n++;                                       \
    } while (0)
    ADD("hello_min", false,
        {.type = PEER_HELLO,
         .hello = {.node_id = S("n"), .host = S("h"), .max_version = 1}});
    ADD("hello_max", false,
        {.type = PEER_HELLO,
         .hello = {.node_id = ID_MAX,
                   .cluster_name = B(g_name_max, sizeof(g_name_max)),
                   .host = B(g_host_max, sizeof(g_host_max)),
                   .resp_port = UINT16_MAX,
                   .http_port = UINT16_MAX,
                   .peer_port = UINT16_MAX,
                   .max_version = UINT8_MAX}});
    ADD("hello_typical", false,
        {.type = PEER_HELLO,
         .hello = {.node_id = S("node1"),
                   .cluster_name = S("default"),
                   .host = S("127.0.0.1"),
                   .resp_port = 7379,
                   .http_port = 7380,
                   .peer_port = 7381,
                   .max_version = 1}});
    ADD("ping_min", false, {.type = PEER_PING, .ping = {.from = S("a")}});
    ADD("ping_max", false,
        {.type = PEER_PING, .ping = {UINT64_MAX, ID_MAX, ID_MAX, UINT64_MAX}});
    ADD("ack_min", false, {.type = PEER_ACK, .ack = {.from = S("\0")}});
    ADD("ack_max", false,
        {.type = PEER_ACK, .ack = {UINT64_MAX, ID_MAX, ID_MAX, UINT64_MAX}});
    ADD("ping_req_min", false,
        {.type = PEER_PING_REQ,
         .ping_req = {.from = S("a"), .target = S("b")}});
    ADD("ping_req_max", false,
        {.type = PEER_PING_REQ, .ping_req = {UINT64_MAX, ID_MAX, ID_MAX}});
    ADD("gossip_min", false, {.type = PEER_GOSSIP, .gossip = {.from = S("a")}});
    ADD("gossip_max", false,
        {.type = PEER_GOSSIP, .gossip = {BIN, UINT64_MAX, ID_MAX}});
    ADD("join_min", false,
        {.type = PEER_JOIN, .join = {.node_id = S("x"), .host = S("y")}});
    ADD("join_max", false,
        {.type = PEER_JOIN,
         .join = {UINT64_MAX, ID_MAX, B(g_host_max, sizeof(g_host_max)),
                  UINT16_MAX, UINT16_MAX, UINT16_MAX}});
    ADD("replace_min", false,
        {.type = PEER_REPLACE,
         .join = {.node_id = S("x"), .host = S("y"), .replaces = S("o")}});
    ADD("replace_max", false,
        {.type = PEER_REPLACE,
         .join = {UINT64_MAX, ID_MAX, B(g_host_max, sizeof(g_host_max)),
                  UINT16_MAX, UINT16_MAX, UINT16_MAX, ID_MAX}});
    ADD("join_reply_min", false, {.type = PEER_JOIN_REPLY});
    ADD("join_reply_max", false,
        {.type = PEER_JOIN_REPLY,
         .join_reply = {UINT64_MAX, INT32_MIN, MSG_MAX, BIN}});
    ADD("kv_put_min", false, {.type = PEER_KV_PUT});
    ADD("kv_put_max", false,
        {.type = PEER_KV_PUT,
         .kv_put = {UINT64_MAX, BIN, BIN, ID_MAX, UINT32_MAX}});
    ADD("kv_put_object", false,
        {.type = PEER_KV_PUT,
         .kv_put = {.req_id = 7,
                    .key = S("k\0ey"),
                    .object = OBJ,
                    .deadline_ms = 2000}});
    ADD("kv_put_hinted", false,
        {.type = PEER_KV_PUT,
         .kv_put = {.req_id = 8,
                    .key = S("key"),
                    .object = OBJ,
                    .hint_for = S("node3"),
                    .deadline_ms = 2000}});
    ADD("kv_put_reply_min", false, {.type = PEER_KV_PUT_REPLY});
    ADD("kv_put_reply_max", false,
        {.type = PEER_KV_PUT_REPLY, .kv_put_reply = {UINT64_MAX, INT32_MIN}});
    ADD("kv_get_min", false, {.type = PEER_KV_GET});
    ADD("kv_get_max", false,
        {.type = PEER_KV_GET, .kv_get = {UINT64_MAX, BIN, UINT32_MAX}});
    ADD("kv_get_reply_min", false, {.type = PEER_KV_GET_REPLY});
    ADD("kv_get_reply_max", false,
        {.type = PEER_KV_GET_REPLY, .kv_get_reply = {UINT64_MAX, RK_OK, BIN}});
    ADD("kv_get_reply_found", false,
        {.type = PEER_KV_GET_REPLY, .kv_get_reply = {9, RK_OK, OBJ}});
    ADD("kv_get_reply_notfound", false,
        {.type = PEER_KV_GET_REPLY,
         .kv_get_reply = {.req_id = 1, .status = RK_ENOTFOUND}});
    ADD("kv_get_reply_error_max", false,
        {.type = PEER_KV_GET_REPLY,
         .kv_get_reply = {UINT64_MAX, INT32_MIN, EMPTY}});
    ADD("error_min", false, {.type = PEER_ERROR, .error = {.status = -1}});
    ADD("error_max", false,
        {.type = PEER_ERROR, .error = {UINT64_MAX, INT32_MIN, MSG_MAX}});
    ADD("kv_update_min", false, {.type = PEER_KV_UPDATE});
    ADD("kv_update_max", false,
        {.type = PEER_KV_UPDATE,
         .kv_update = {UINT64_MAX, BIN, BIN, BIN, UINT64_MAX, UINT64_MAX,
                       PEER_KV_FALLBACK, ID_MAX, UINT32_MAX}});
    ADD("kv_update_typical", false,
        {.type = PEER_KV_UPDATE,
         .kv_update = {.req_id = 10,
                       .key = S("user:1"),
                       .context = CTX,
                       .value = S("v2"),
                       .timestamp = 0x0001020304050608u,
                       .expire_at_ms = 1700000000000u,
                       .deadline_ms = 1000}});
    ADD("kv_update_own_context", false,
        {.type = PEER_KV_UPDATE,
         .kv_update = {.req_id = 11,
                       .key = S("user:1"),
                       .value = S("v3"),
                       .timestamp = 5,
                       .flags = PEER_KV_OWN_CONTEXT,
                       .deadline_ms = 1000}});
    ADD("kv_update_tombstone", false,
        {.type = PEER_KV_UPDATE,
         .kv_update = {
             .req_id = 12,
             .key = S("k\0ey"),
             .timestamp = UINT64_MAX,
             .flags = PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT |
                      PEER_KV_FALLBACK, /* every bit a tombstone takes */
             .hint_for = S("node3"),
             .deadline_ms = 2000}});
    ADD("kv_update_reply_min", false, {.type = PEER_KV_UPDATE_REPLY});
    ADD("kv_update_reply_max", false,
        {.type = PEER_KV_UPDATE_REPLY,
         .kv_update_reply = {UINT64_MAX, RK_OK, BIN}});
    ADD("kv_update_reply_object", false,
        {.type = PEER_KV_UPDATE_REPLY, .kv_update_reply = {10, RK_OK, OBJ}});
    ADD("kv_update_reply_error_max", false,
        {.type = PEER_KV_UPDATE_REPLY,
         .kv_update_reply = {UINT64_MAX, INT32_MIN, EMPTY}});
    ADD("chunk_min", false,
        {.type = PEER_CHUNK, .chunk = {PEER_HEADER_SIZE + 1, 0, S("x")}});
    ADD("chunk_last", false,
        {.type = PEER_CHUNK,
         .chunk = {UINT32_MAX, (uint32_t)(UINT32_MAX - sizeof(g_bin)), BIN}});
    ADD("fold_min", false, {.type = PEER_FOLD, .fold = {1, 0, 0, EMPTY, 1}});
    ADD("fold_max", false,
        {.type = PEER_FOLD,
         .fold = {UINT64_MAX, UINT32_MAX, UINT32_MAX,
                  B(g_bin, PEER_FOLD_CURSOR_MAX), PEER_FOLD_MAX_BYTES}});
    ADD("fold_reply_min", false, {.type = PEER_FOLD_REPLY});
    ADD("fold_reply_items", false,
        {.type = PEER_FOLD_REPLY,
         .fold_reply = {UINT64_MAX, RK_OK, B(g_bin, PEER_FOLD_CURSOR_MAX),
                        PEER_FOLD_DONE, UINT32_MAX, BIN}});
    ADD("fold_reply_error", false,
        {.type = PEER_FOLD_REPLY,
         .fold_reply = {7, INT32_MIN, EMPTY, 0, 0, EMPTY}});
    ADD("aae_tree_branches", false,
        {.type = PEER_AAE_TREE,
         .aae_tree = {1, 0, 64, PEER_AAE_LEVEL_BRANCH, EMPTY}});
    ADD("aae_tree_leaves", false,
        {.type = PEER_AAE_TREE,
         .aae_tree = {UINT64_MAX, UINT32_MAX, UINT32_MAX, PEER_AAE_LEVEL_LEAF,
                      B(g_bin, 256)}});
    ADD("aae_tree_reply", false,
        {.type = PEER_AAE_TREE_REPLY,
         .aae_tree_reply = {UINT64_MAX, RK_OK, UINT64_MAX, B(g_bin, 256)}});
    ADD("aae_tree_reply_error", false,
        {.type = PEER_AAE_TREE_REPLY,
         .aae_tree_reply = {7, RK_EAGAIN, 0, EMPTY}});
    ADD("aae_keys", false,
        {.type = PEER_AAE_KEYS, .aae_keys = {1, 3, 1024, B(g_bin, 4)}});
    ADD("aae_keys_reply", false,
        {.type = PEER_AAE_KEYS_REPLY,
         .aae_keys_reply = {UINT64_MAX, RK_OK, PEER_AAE_KEYS_TRUNCATED,
                            UINT32_MAX, BIN}});
    ADD("aae_keys_reply_error", false,
        {.type = PEER_AAE_KEYS_REPLY,
         .aae_keys_reply = {7, RK_EINVAL, 0, 0, EMPTY}});
    ADD("fetch_min", false,
        {.type = PEER_FETCH, .fetch = {1, 0, 0, B(g_bin, 5), 1}});
    ADD("fetch_max", false,
        {.type = PEER_FETCH,
         .fetch = {UINT64_MAX, UINT32_MAX, UINT32_MAX, BIN,
                   PEER_FOLD_MAX_BYTES}});
    ADD("auth_challenge", false,
        {.type = PEER_AUTH_CHALLENGE,
         .auth_challenge = {B(g_bin, PEER_AUTH_NONCE_LEN)}});
    ADD("auth_proof", false,
        {.type = PEER_AUTH_PROOF,
         .auth_proof = {B(g_bin + 7, PEER_AUTH_MAC_LEN)}});
    ADD("kv_put_big", true,
        {.type = PEER_KV_PUT,
         .kv_put = {42, B(g_key_max, sizeof(g_key_max)),
                    B(g_big, sizeof(g_big)), ID_MAX, 100}});
    ADD("kv_get_big", true,
        {.type = PEER_KV_GET,
         .kv_get = {43, B(g_key_max, sizeof(g_key_max)), 1}});
    ADD("kv_get_reply_big", true,
        {.type = PEER_KV_GET_REPLY,
         .kv_get_reply = {44, RK_OK, B(g_big, sizeof(g_big))}});
    ADD("kv_update_big", true,
        {.type = PEER_KV_UPDATE,
         .kv_update = {45, B(g_key_max, sizeof(g_key_max)), B(g_big, 4096),
                       B(g_big, sizeof(g_big)), 1, 2, PEER_KV_FALLBACK, ID_MAX,
                       100}});
    ADD("kv_update_reply_big", true,
        {.type = PEER_KV_UPDATE_REPLY,
         .kv_update_reply = {46, RK_OK, B(g_big, sizeof(g_big))}});
#undef ADD
    return n;
}

#define MAX_SAMPLES 64

/* Encodes m into a fresh buffer (asserting success). */
static void encode_ok(const struct peer_msg *m, struct rk_buf *out)
{
    rk_buf_init(out);
    assert_int_equal(peer_encode(m, out), RK_OK);
}

static struct peer_decoder *decoder_new(uint32_t max_body)
{
    struct peer_decoder *d = NULL;
    assert_int_equal(peer_decoder_create(max_body, &d), RK_OK);
    return d;
}

/* Feeds one whole frame at a fresh allocation; returns the result. */
static int decode_copy(struct peer_decoder *d,
                       const char *frame,
                       size_t len,
                       size_t *consumed,
                       struct peer_msg *m)
{
    char *copy = malloc(len + 1);
    memcpy(copy, frame, len);
    int rc = peer_decoder_feed(d, copy, len, consumed, m);
    free(copy);
    return rc;
}

/* Decodes one frame with a new decoder (max_body 0 = default). */
static int decode_once(const char *frame,
                       size_t len,
                       uint32_t max_body,
                       char *err,
                       size_t err_size)
{
    struct peer_decoder *d = decoder_new(max_body);
    size_t consumed = 0;
    struct peer_msg m;
    int rc = decode_copy(d, frame, len, &consumed, &m);
    if (err != NULL) {
        snprintf(err, err_size, "%s", peer_decoder_errmsg(d));
    }
    peer_decoder_destroy(d);
    return rc;
}

/* ---- a body builder for hand-made frames -------------------------------- */

struct body
{
    unsigned char b[8192];
    size_t len;
};

static void put8(struct body *b, uint8_t v)
{
    b->b[b->len++] = v;
}

static void put16(struct body *b, uint16_t v)
{
    rk_put_le16(b->b + b->len, v);
    b->len += 2;
}

static void put32(struct body *b, uint32_t v)
{
    rk_put_le32(b->b + b->len, v);
    b->len += 4;
}

static void put64(struct body *b, uint64_t v)
{
    rk_put_le64(b->b + b->len, v);
    b->len += 8;
}

static void put_raw(struct body *b, const void *p, size_t n)
{
    memset(b->b + b->len, 0, n);
    if (p != NULL) {
        memcpy(b->b + b->len, p, n);
    }
    b->len += n;
}

/* A name: u16 length then n bytes ('x'). */
static void put_name(struct body *b, size_t n)
{
    put16(b, (uint16_t)n);
    memset(b->b + b->len, 'x', n);
    b->len += n;
}

static void put_blob(struct body *b, size_t n)
{
    put32(b, (uint32_t)n);
    memset(b->b + b->len, 'v', n);
    b->len += n;
}

static void put_bytes32(struct body *b, struct peer_bytes v)
{
    put32(b, (uint32_t)v.len);
    put_raw(b, v.ptr, v.len);
}

static void put_bytes16(struct body *b, struct peer_bytes v)
{
    put16(b, (uint16_t)v.len);
    put_raw(b, v.ptr, v.len);
}

/*
 * Lays out the body of a KV_PUT, KV_GET_REPLY, KV_UPDATE or
 * KV_UPDATE_REPLY as the tables of docs/peer-protocol.md section 5 say,
 * without the codec and without checking any rule.
 */
static void raw_kv_body(const struct peer_msg *m, struct body *b)
{
    b->len = 0;
    switch (m->type) {
        case PEER_KV_PUT:
            put64(b, m->kv_put.req_id);
            put_bytes32(b, m->kv_put.key);
            put_bytes32(b, m->kv_put.object);
            put_bytes16(b, m->kv_put.hint_for);
            put32(b, m->kv_put.deadline_ms);
            break;
        case PEER_KV_GET_REPLY:
            put64(b, m->kv_get_reply.req_id);
            put32(b, (uint32_t)m->kv_get_reply.status);
            put_bytes32(b, m->kv_get_reply.object);
            break;
        case PEER_KV_UPDATE:
            put64(b, m->kv_update.req_id);
            put_bytes32(b, m->kv_update.key);
            put_bytes32(b, m->kv_update.context);
            put_bytes32(b, m->kv_update.value);
            put64(b, m->kv_update.timestamp);
            put64(b, m->kv_update.expire_at_ms);
            put32(b, m->kv_update.flags);
            put_bytes16(b, m->kv_update.hint_for);
            put32(b, m->kv_update.deadline_ms);
            break;
        case PEER_KV_UPDATE_REPLY:
            put64(b, m->kv_update_reply.req_id);
            put32(b, (uint32_t)m->kv_update_reply.status);
            put_bytes32(b, m->kv_update_reply.object);
            break;
        default:
            fail_msg("raw_kv_body: type %d", (int)m->type);
    }
}

/* Frames body as `type` (with a valid checksum) and decodes it. */
static int decode_body(uint8_t type,
                       const struct body *b,
                       char *err,
                       size_t err_size)
{
    unsigned char *frame = malloc(PEER_HEADER_SIZE + b->len);
    peer_header_encode(frame, type, b->b, (uint32_t)b->len);
    memcpy(frame + PEER_HEADER_SIZE, b->b, b->len);
    int rc = decode_once((const char *)frame, PEER_HEADER_SIZE + b->len, 0, err,
                         err_size);
    free(frame);
    return rc;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
    }
}

/* ---- round trips -------------------------------------------------------- */

static void test_peer_round_trips_every_type_with_edge_values(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    bool seen[PEER_TYPE_MAX + 1] = {false};
    for (size_t i = 0; i < n; i++) {
        struct rk_buf f;
        encode_ok(&s[i].msg, &f);
        assert_true(f.len >= PEER_HEADER_SIZE);
        assert_memory_equal(f.base, PEER_MAGIC, 4);
        assert_int_equal((unsigned char)f.base[4],
                         peer_frame_version(s[i].msg.type));
        assert_int_equal((unsigned char)f.base[5], s[i].msg.type);
        assert_int_equal(
            rk_get_le32((const unsigned char *)f.base + 8) + PEER_HEADER_SIZE,
            f.len);

        char *copy = malloc(f.len);
        memcpy(copy, f.base, f.len);
        struct peer_decoder *d = decoder_new(0);
        size_t consumed = 0;
        struct peer_msg m;
        assert_int_equal(peer_decoder_feed(d, copy, f.len, &consumed, &m),
                         RK_OK);
        assert_int_equal(consumed, f.len);
        if (!peer_msg_equal(&m, &s[i].msg)) {
            fail_msg("sample %s decodes to a different message", s[i].name);
        }
        /* Byte strings are views into the buffer, and re-encoding gives
         * the same bytes (one encoding per message). */
        if (m.type == PEER_KV_PUT && m.kv_put.key.len > 0) {
            assert_true(m.kv_put.key.ptr > copy &&
                        m.kv_put.key.ptr < copy + f.len);
        }
        if (m.type == PEER_KV_UPDATE && m.kv_update.context.len > 0) {
            assert_true(m.kv_update.context.ptr > copy &&
                        m.kv_update.context.ptr + m.kv_update.context.len <=
                            copy + f.len);
        }
        struct rk_buf f2;
        encode_ok(&m, &f2);
        assert_int_equal(f2.len, f.len);
        assert_memory_equal(f2.base, f.base, f.len);
        assert_string_equal(peer_decoder_errmsg(d), "");
        seen[s[i].msg.type] = true;
        peer_decoder_destroy(d);
        free(copy);
        rk_buf_fini(&f);
        rk_buf_fini(&f2);
    }
    for (int t = PEER_TYPE_MIN; t <= PEER_TYPE_MAX; t++) {
        assert_true(seen[t]);
    }
}

static void test_peer_msg_equal_compares_contents(void **state)
{
    (void)state;
    char a[] = "abc";
    char b[] = "abc";
    struct peer_msg x = {.type = PEER_PING, .ping = {1, B(a, 3), EMPTY, 2}};
    struct peer_msg y = {.type = PEER_PING, .ping = {1, B(b, 3), EMPTY, 2}};
    assert_true(peer_msg_equal(&x, &y));
    b[2] = 'd';
    assert_false(peer_msg_equal(&x, &y));
    b[2] = 'c';
    y.ping.incarnation = 3;
    assert_false(peer_msg_equal(&x, &y));
    y.ping.incarnation = 2;
    y.type = PEER_ACK; /* same layout, other type */
    assert_false(peer_msg_equal(&x, &y));
}

/* ---- splits and pipelining ---------------------------------------------- */

/*
 * Feeds every prefix frame[0..k) in a fresh allocation (the buffer moves
 * between feeds, as when a transport grows it) with `step` between
 * prefixes: RK_EAGAIN with the right need until the whole frame is there.
 */
static void feed_prefixes(const struct sample *s, size_t step)
{
    struct rk_buf f;
    encode_ok(&s->msg, &f);
    struct peer_decoder *d = decoder_new(0);
    for (size_t k = 0; k < f.len; k += step) {
        char *copy = malloc(k + 1);
        memcpy(copy, f.base, k);
        size_t consumed = 99;
        struct peer_msg m;
        m.type = 0;
        int rc = peer_decoder_feed(d, copy, k, &consumed, &m);
        free(copy);
        if (rc != RK_EAGAIN) {
            fail_msg("%s: prefix of %zu of %zu bytes gave %s (%s)", s->name, k,
                     f.len, rk_errname(rc), peer_decoder_errmsg(d));
        }
        assert_int_equal(consumed, 0);
        assert_int_equal(m.type, 0); /* untouched */
        size_t need = peer_decoder_need(d);
        assert_int_equal(need, k < PEER_HEADER_SIZE ? PEER_HEADER_SIZE : f.len);
    }
    size_t consumed = 0;
    struct peer_msg m;
    assert_int_equal(decode_copy(d, f.base, f.len, &consumed, &m), RK_OK);
    assert_int_equal(consumed, f.len);
    /* The views point into a freed copy: compare by re-encoding from the
     * original instead of reading them. */
    assert_int_equal(m.type, s->msg.type);
    peer_decoder_destroy(d);
    rk_buf_fini(&f);
}

static void test_peer_decoder_needs_more_at_every_split_point(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    for (size_t i = 0; i < n; i++) {
        feed_prefixes(&s[i], s[i].big ? 4093 : 1);
    }
}

/* Message equality of a decode of the frame at every split: the decoder
 * keeps no pointer into an earlier buffer (ASan would catch it). */
static void test_peer_decoder_keeps_no_pointer_into_old_buffers(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i].big) {
            continue;
        }
        struct rk_buf f;
        encode_ok(&s[i].msg, &f);
        for (size_t k = 0; k <= f.len; k++) {
            struct peer_decoder *d = decoder_new(0);
            size_t consumed = 0;
            struct peer_msg m;
            char *a = malloc(k + 1);
            memcpy(a, f.base, k);
            int rc = peer_decoder_feed(d, a, k, &consumed, &m);
            free(a);
            if (k < f.len) {
                assert_int_equal(rc, RK_EAGAIN);
                char *b = malloc(f.len);
                memcpy(b, f.base, f.len);
                rc = peer_decoder_feed(d, b, f.len, &consumed, &m);
                assert_int_equal(rc, RK_OK);
                assert_true(peer_msg_equal(&m, &s[i].msg));
                free(b);
            } else {
                assert_int_equal(rc, RK_OK);
            }
            peer_decoder_destroy(d);
        }
        rk_buf_fini(&f);
    }
}

static void test_peer_decoder_decodes_pipelined_frames(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    unsigned seed = (unsigned)time(NULL);
    printf("# pipelining seed %u\n", seed);
    srand(seed);
    enum
    {
        N_FRAMES = 600
    };
    size_t order[N_FRAMES];
    struct rk_buf stream;
    rk_buf_init(&stream);
    for (size_t i = 0; i < N_FRAMES; i++) {
        order[i] = (size_t)rand() % n;
        assert_int_equal(peer_encode(&s[order[i]].msg, &stream), RK_OK);
    }

    /* All at once. */
    struct peer_decoder *d = decoder_new(0);
    size_t pos = 0;
    for (size_t i = 0; i < N_FRAMES; i++) {
        size_t consumed = 0;
        struct peer_msg m;
        assert_int_equal(peer_decoder_feed(d, stream.base + pos,
                                           stream.len - pos, &consumed, &m),
                         RK_OK);
        assert_true(peer_msg_equal(&m, &s[order[i]].msg));
        pos += consumed;
    }
    assert_int_equal(pos, stream.len);
    size_t consumed = 0;
    struct peer_msg m;
    assert_int_equal(peer_decoder_feed(d, stream.base + pos, 0, &consumed, &m),
                     RK_EAGAIN);
    peer_decoder_destroy(d);

    /* As a transport would see it: random reads appended to an rk_buf,
     * decoded frames consumed from its front. */
    d = decoder_new(0);
    struct rk_buf in;
    rk_buf_init(&in);
    size_t sent = 0;
    size_t next = 0;
    while (sent < stream.len) {
        size_t chunk = 1 + (size_t)rand() % 9000;
        if (chunk > stream.len - sent) {
            chunk = stream.len - sent;
        }
        assert_int_equal(rk_buf_append(&in, stream.base + sent, chunk), RK_OK);
        sent += chunk;
        for (;;) {
            int rc = peer_decoder_feed(d, in.base, in.len, &consumed, &m);
            if (rc == RK_EAGAIN) {
                break;
            }
            assert_int_equal(rc, RK_OK);
            assert_true(next < N_FRAMES);
            assert_true(peer_msg_equal(&m, &s[order[next]].msg));
            next++;
            rk_buf_consume(&in, consumed);
        }
    }
    assert_int_equal(next, N_FRAMES);
    assert_int_equal(in.len, 0);
    rk_buf_fini(&in);
    peer_decoder_destroy(d);
    rk_buf_fini(&stream);
}

/* ---- corruption --------------------------------------------------------- */

/*
 * Every single-bit flip of every small sample frame fails with RK_EPROTO
 * or RK_EVERSION, never RK_OK.  Bytes after the frame (zeros, as many as
 * the decoder's limit) stand for the rest of the stream, so a flip that
 * grows body_len is judged too.  A flip in the body or the checksum field
 * is caught by the checksum.
 */
static void test_peer_decoder_detects_every_single_bit_flip(void **state)
{
    (void)state;
    enum
    {
        LIMIT = 4096
    };
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    size_t flips = 0;
    struct peer_decoder *d = decoder_new(LIMIT);
    for (size_t i = 0; i < n; i++) {
        if (s[i].big) {
            continue;
        }
        struct rk_buf f;
        encode_ok(&s[i].msg, &f);
        assert_true(f.len <= PEER_HEADER_SIZE + LIMIT);
        size_t total = f.len + LIMIT;
        char *buf = calloc(1, total);
        memcpy(buf, f.base, f.len);
        for (size_t bit = 0; bit < f.len * 8; bit++) {
            buf[bit / 8] ^= (char)(1u << (bit % 8));
            peer_decoder_destroy(d);
            d = decoder_new(LIMIT);
            size_t consumed = 0;
            struct peer_msg m;
            int rc = peer_decoder_feed(d, buf, total, &consumed, &m);
            if (rc != RK_EPROTO && rc != RK_EVERSION) {
                fail_msg("%s: flip of bit %zu gave %s", s[i].name, bit,
                         rk_errname(rc));
            }
            size_t byte = bit / 8;
            const char *e = peer_decoder_errmsg(d);
            if (byte >= 12) {
                assert_contains(e, "checksum mismatch");
            } else if (byte == 4) {
                assert_true(rc == RK_EVERSION ||
                            strstr(e, "version 0") != NULL);
            } else if (byte < 4) {
                assert_contains(e, "bad magic");
            } else if (byte == 5) {
                assert_true(strstr(e, "unknown message type") != NULL ||
                            strstr(e, "checksum mismatch") != NULL);
            } else if (byte < 8) {
                assert_contains(e, "reserved header flags");
            } else {
                assert_true(strstr(e, "over the limit") != NULL ||
                            strstr(e, "checksum mismatch") != NULL);
            }
            buf[bit / 8] ^= (char)(1u << (bit % 8));
            flips++;
        }
        free(buf);
        rk_buf_fini(&f);
    }
    peer_decoder_destroy(d);
    printf("# %zu single-bit flips, all detected\n", flips);
}

static void test_peer_decoder_rejects_bad_checksum(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    make_samples(s);
    struct rk_buf f;
    encode_ok(&s[2].msg, &f);
    f.base[12] ^= 0x55;
    char err[256];
    assert_int_equal(decode_once(f.base, f.len, 0, err, sizeof(err)),
                     RK_EPROTO);
    assert_contains(err, "checksum mismatch in a HELLO frame");
    rk_buf_fini(&f);
}

static void test_peer_decoder_waits_for_truncated_body(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    for (size_t i = 0; i < n; i++) {
        struct rk_buf f;
        encode_ok(&s[i].msg, &f);
        struct peer_decoder *d = decoder_new(0);
        size_t consumed = 7;
        struct peer_msg m;
        heap_install(0);
        for (size_t cut = 1; cut <= 3 && cut <= f.len - PEER_HEADER_SIZE;
             cut++) {
            assert_int_equal(
                peer_decoder_feed(d, f.base, f.len - cut, &consumed, &m),
                RK_EAGAIN);
            assert_int_equal(consumed, 0);
            assert_int_equal(peer_decoder_need(d), f.len);
        }
        assert_int_equal(g_heap.calls, 0); /* feed never allocates */
        heap_uninstall();
        assert_int_equal(peer_decoder_feed(d, f.base, f.len, &consumed, &m),
                         RK_OK);
        peer_decoder_destroy(d);
        rk_buf_fini(&f);
    }
}

/* A header alone (checksum of an empty body) declaring body_len. */
static void header_only(unsigned char *hdr, uint8_t type, uint32_t body_len)
{
    peer_header_encode(hdr, type, NULL, 0);
    rk_put_le32(hdr + 8, body_len);
}

static void test_peer_decoder_rejects_declared_4gib_body_without_allocating(
    void **state)
{
    (void)state;
    struct peer_decoder *d = decoder_new(0);
    unsigned char hdr[PEER_HEADER_SIZE];
    header_only(hdr, PEER_KV_PUT, UINT32_MAX);
    heap_install(0);
    size_t consumed = 0;
    struct peer_msg m;
    /* Judged once the length field is there, before the checksum. */
    int rc = peer_decoder_feed(d, (const char *)hdr, 12, &consumed, &m);
    assert_int_equal(g_heap.calls, 0);
    heap_uninstall();
    assert_int_equal(rc, RK_EPROTO);
    assert_string_equal(peer_decoder_errmsg(d),
                        "peer protocol error: KV_PUT body of 4294967295 bytes "
                        "is over the limit of 536940544");
    peer_decoder_destroy(d);
}

/* The header of a body of `largest` bytes is accepted and need() asks for
 * the whole frame, with nothing allocated. */
static void assert_header_accepted(uint8_t type, uint32_t largest)
{
    assert_true(largest <= PEER_DEFAULT_MAX_BODY);
    struct peer_decoder *d = decoder_new(0);
    unsigned char hdr[PEER_HEADER_SIZE];
    header_only(hdr, type, largest);
    heap_install(0);
    size_t consumed = 0;
    struct peer_msg m;
    int rc =
        peer_decoder_feed(d, (const char *)hdr, sizeof(hdr), &consumed, &m);
    assert_int_equal(g_heap.calls, 0);
    heap_uninstall();
    assert_int_equal(rc, RK_EAGAIN);
    assert_int_equal(peer_decoder_need(d), PEER_HEADER_SIZE + (size_t)largest);
    peer_decoder_destroy(d);
}

/*
 * The largest legal writes fit the default limit: a KV_UPDATE with a
 * 512 MiB value, a 64 KiB key, a 64-byte hint_for and an empty context;
 * and a KV_PUT (or KV_GET_REPLY) of an object holding one 512 MiB value
 * under a clock of DVV_DEFAULT_CLOCK entries (cluster/dvv.h encoding).
 */
static void test_peer_decoder_accepts_the_largest_legal_write(void **state)
{
    (void)state;
    uint32_t update = 8 + 4 + PEER_MAX_KEY + 4 + 0 + 4 + PEER_MAX_VALUE + 8 +
                      8 + 4 + 2 + PEER_MAX_NODE_ID + 4;
    assert_header_accepted(PEER_KV_UPDATE, update);
    uint32_t object = DVV_HDR + DVV_DEFAULT_CLOCK * DVV_CLOCK_ENTRY +
                      DVV_SIB_HDR + PEER_MAX_VALUE;
    uint32_t put = 8 + 4 + PEER_MAX_KEY + 4 + object + 2 + PEER_MAX_NODE_ID + 4;
    assert_header_accepted(PEER_KV_PUT, put);
    assert_header_accepted(PEER_KV_GET_REPLY, 8 + 4 + 4 + object);
}

static void test_peer_decoder_applies_its_max_body(void **state)
{
    (void)state;
    unsigned char hdr[PEER_HEADER_SIZE];
    size_t consumed;
    struct peer_msg m;
    struct peer_decoder *d = decoder_new(100);
    header_only(hdr, PEER_GOSSIP, 100);
    assert_int_equal(
        peer_decoder_feed(d, (const char *)hdr, sizeof(hdr), &consumed, &m),
        RK_EAGAIN);
    peer_decoder_destroy(d);

    d = decoder_new(100);
    header_only(hdr, PEER_GOSSIP, 101);
    assert_int_equal(
        peer_decoder_feed(d, (const char *)hdr, sizeof(hdr), &consumed, &m),
        RK_EPROTO);
    assert_contains(peer_decoder_errmsg(d), "over the limit of 100");
    peer_decoder_destroy(d);

    /* set_max_body applies from the next header. */
    d = decoder_new(100);
    peer_decoder_set_max_body(d, 200);
    assert_int_equal(
        peer_decoder_feed(d, (const char *)hdr, sizeof(hdr), &consumed, &m),
        RK_EAGAIN);
    peer_decoder_set_max_body(d, 0); /* back to the default */
    header_only(hdr, PEER_GOSSIP, PEER_DEFAULT_MAX_BODY + 1);
    peer_decoder_destroy(d);
    d = decoder_new(0);
    assert_int_equal(
        peer_decoder_feed(d, (const char *)hdr, sizeof(hdr), &consumed, &m),
        RK_EPROTO);
    peer_decoder_destroy(d);
}

static void test_peer_decoder_rejects_newer_version_with_message(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    make_samples(s);
    struct rk_buf f;
    encode_ok(&s[0].msg, &f);
    unsigned versions[] = {3, 4, 255};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        f.base[4] = (char)versions[i];
        /* Judged from the first five bytes on. */
        for (size_t k = 5; k <= f.len; k += f.len - 5) {
            char err[256];
            assert_int_equal(decode_once(f.base, k, 0, err, sizeof(err)),
                             RK_EVERSION);
            char want[128];
            snprintf(want, sizeof(want),
                     "peer speaks protocol version %u, this node speaks 2",
                     versions[i]);
            assert_string_equal(err, want);
        }
    }
    /* A newer frame's other fields may mean anything: the version wins
     * over an unknown type or flags. */
    f.base[4] = 3;
    f.base[5] = (char)200;
    f.base[6] = 1;
    assert_int_equal(decode_once(f.base, f.len, 0, NULL, 0), RK_EVERSION);
    rk_buf_fini(&f);
}

static void test_peer_decoder_rejects_version_zero(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    make_samples(s);
    struct rk_buf f;
    encode_ok(&s[3].msg, &f);
    f.base[4] = 0;
    char err[256];
    assert_int_equal(decode_once(f.base, f.len, 0, err, sizeof(err)),
                     RK_EPROTO);
    assert_string_equal(err,
                        "peer protocol error: protocol version 0 is invalid");
    rk_buf_fini(&f);
}

static void test_peer_decoder_rejects_bad_magic(void **state)
{
    (void)state;
    char err[256];
    /* An HTTP client on the peer port fails at its first byte. */
    assert_int_equal(decode_once("G", 1, 0, err, sizeof(err)), RK_EPROTO);
    assert_contains(err, "bad magic");
    assert_int_equal(decode_once("GET / HTTP/1.1\r\n", 16, 0, NULL, 0),
                     RK_EPROTO);
    assert_int_equal(decode_once("RKV", 3, 0, NULL, 0), RK_EAGAIN);
    assert_int_equal(decode_once("RKVQ", 4, 0, NULL, 0), RK_EPROTO);
    assert_int_equal(decode_once("rkvp", 4, 0, NULL, 0), RK_EPROTO);
    assert_int_equal(decode_once("", 0, 0, NULL, 0), RK_EAGAIN);
}

static void test_peer_decoder_rejects_unknown_type(void **state)
{
    (void)state;
    /* Types 13 and 14 exist (KV_UPDATE, KV_UPDATE_REPLY); 15 (CHUNK), 16
     * and 17 (FOLD, FOLD_REPLY), 18-21 (the AAE messages) and 22
     * (REPLACE) only in version-2 frames; 23 is the first unknown one. */
    assert_int_equal(PEER_KV_UPDATE, 13);
    assert_int_equal(PEER_KV_UPDATE_REPLY, 14);
    assert_int_equal(PEER_CHUNK, 15);
    assert_int_equal(PEER_FOLD, 16);
    assert_int_equal(PEER_FOLD_REPLY, 17);
    assert_int_equal(PEER_AAE_TREE, 18);
    assert_int_equal(PEER_AAE_TREE_REPLY, 19);
    assert_int_equal(PEER_AAE_KEYS, 20);
    assert_int_equal(PEER_AAE_KEYS_REPLY, 21);
    assert_int_equal(PEER_REPLACE, 22);
    assert_int_equal(PEER_AUTH_CHALLENGE, 23);
    assert_int_equal(PEER_AUTH_PROOF, 24);
    assert_int_equal(PEER_FETCH, 25);
    assert_int_equal(PEER_TYPE_MAX, 25);
    {
        unsigned char hdr[PEER_HEADER_SIZE];
        peer_header_encode(hdr, PEER_CHUNK, NULL, 0);
        assert_int_equal(hdr[4], 2);
        assert_int_equal(decode_once((const char *)hdr, 6, 0, NULL, 0),
                         RK_EAGAIN);
        hdr[4] = 1; /* CHUNK in a version-1 frame */
        char err[256];
        assert_int_equal(decode_once((const char *)hdr, 6, 0, err, sizeof(err)),
                         RK_EPROTO);
        assert_string_equal(err,
                            "peer protocol error: unknown message type 15 in "
                            "a version 1 frame");
    }
    for (unsigned t = PEER_KV_UPDATE; t <= PEER_KV_UPDATE_REPLY; t++) {
        unsigned char hdr[PEER_HEADER_SIZE];
        peer_header_encode(hdr, (uint8_t)t, NULL, 0);
        assert_int_equal(decode_once((const char *)hdr, 6, 0, NULL, 0),
                         RK_EAGAIN);
    }
    unsigned types[] = {0, PEER_TYPE_MAX + 1, 26, 77, 255};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        unsigned char hdr[PEER_HEADER_SIZE];
        peer_header_encode(hdr, (uint8_t)types[i], NULL, 0);
        char err[256];
        /* Judged from the sixth byte on. */
        assert_int_equal(decode_once((const char *)hdr, 6, 0, err, sizeof(err)),
                         RK_EPROTO);
        char want[128];
        snprintf(want, sizeof(want),
                 "peer protocol error: unknown message type %u in a version "
                 "2 frame",
                 types[i]);
        assert_string_equal(err, want);
        assert_int_equal(
            decode_once((const char *)hdr, sizeof(hdr), 0, NULL, 0), RK_EPROTO);
    }
}

static void test_peer_decoder_rejects_reserved_header_flags(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    make_samples(s);
    struct rk_buf f;
    encode_ok(&s[3].msg, &f);
    uint16_t flags[] = {0x0001, 0x0100, 0x8000, 0xffff};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        unsigned char *h = (unsigned char *)f.base;
        rk_put_le16(h + 6, flags[i]);
        char err[256];
        /* Judged from the eighth byte on, before the checksum. */
        assert_int_equal(decode_once(f.base, 8, 0, err, sizeof(err)),
                         RK_EPROTO);
        assert_int_equal(decode_once(f.base, f.len, 0, NULL, 0), RK_EPROTO);
        char want[128];
        snprintf(want, sizeof(want),
                 "peer protocol error: reserved header flags 0x%04x set",
                 flags[i]);
        assert_string_equal(err, want);
    }
    rk_buf_fini(&f);
}

static void test_peer_decoder_rejects_field_length_overruns(void **state)
{
    (void)state;
    char err[256];
    struct body b;

    /* PING whose `from` claims 65535 bytes with 3 left. */
    b.len = 0;
    put64(&b, 1);
    put16(&b, UINT16_MAX);
    put_raw(&b, "abc", 3);
    assert_int_equal(decode_body(PEER_PING, &b, err, sizeof(err)), RK_EPROTO);
    assert_string_equal(err,
                        "peer protocol error: PING field from of 65535 bytes "
                        "runs past the body (3 left)");

    /* KV_PUT whose key claims 4 GiB. */
    b.len = 0;
    put64(&b, 1);
    put32(&b, UINT32_MAX);
    put_raw(&b, "k", 1);
    assert_int_equal(decode_body(PEER_KV_PUT, &b, err, sizeof(err)), RK_EPROTO);
    assert_contains(err, "field key of 4294967295 bytes runs past the body");

    /* An object one byte longer than what is left. */
    b.len = 0;
    put64(&b, 1);
    put_blob(&b, 1);
    put32(&b, 2 + 4 + 1);
    put_raw(&b, NULL, 2 + 4);
    assert_int_equal(decode_body(PEER_KV_PUT, &b, err, sizeof(err)), RK_EPROTO);
    assert_string_equal(err,
                        "peer protocol error: KV_PUT field object of 7 bytes "
                        "runs past the body (6 left)");

    /* KV_UPDATE: a context, then a value, running past the body. */
    b.len = 0;
    put64(&b, 1);
    put_blob(&b, 0);
    put32(&b, 1000);
    put_raw(&b, NULL, 40);
    assert_int_equal(decode_body(PEER_KV_UPDATE, &b, err, sizeof(err)),
                     RK_EPROTO);
    assert_string_equal(err,
                        "peer protocol error: KV_UPDATE field context of 1000 "
                        "bytes runs past the body (40 left)");
    b.len = 0;
    put64(&b, 1);
    put_blob(&b, 0);
    put_blob(&b, 3);
    put32(&b, 8 + 8 + 4 + 2 + 4 + 1);
    put_raw(&b, NULL, 8 + 8 + 4 + 2 + 4);
    assert_int_equal(decode_body(PEER_KV_UPDATE, &b, err, sizeof(err)),
                     RK_EPROTO);
    assert_contains(err, "KV_UPDATE field value of 27 bytes");

    /* KV_GET_REPLY and KV_UPDATE_REPLY objects past the body. */
    uint8_t replies[] = {PEER_KV_GET_REPLY, PEER_KV_UPDATE_REPLY};
    for (size_t i = 0; i < 2; i++) {
        b.len = 0;
        put64(&b, 1);
        put32(&b, 0);
        put32(&b, 5);
        put_raw(&b, "abcd", 4);
        assert_int_equal(decode_body(replies[i], &b, err, sizeof(err)),
                         RK_EPROTO);
        assert_contains(err, "field object of 5 bytes runs past the body");
    }

    /* Bodies ending inside a fixed-width field. */
    b.len = 0;
    put_raw(&b, NULL, 4);
    assert_int_equal(decode_body(PEER_PING, &b, err, sizeof(err)), RK_EPROTO);
    assert_string_equal(err,
                        "peer protocol error: PING body ends inside field "
                        "seq");
    b.len = 0;
    assert_int_equal(decode_body(PEER_KV_PUT_REPLY, &b, err, sizeof(err)),
                     RK_EPROTO);
    b.len = 0;
    put64(&b, 1);
    put16(&b, 0);
    assert_int_equal(decode_body(PEER_KV_PUT_REPLY, &b, err, sizeof(err)),
                     RK_EPROTO);
    assert_contains(err, "ends inside field status");
    b.len = 0;
    put_name(&b, 1);
    put_name(&b, 0);
    put_name(&b, 1);
    put16(&b, 1);
    put16(&b, 2);
    put16(&b, 3); /* max_version missing */
    assert_int_equal(decode_body(PEER_HELLO, &b, err, sizeof(err)), RK_EPROTO);
    assert_contains(err, "ends inside field max_version");

    /* A KV_UPDATE missing its last byte, and one ending inside flags. */
    samples_init();
    struct peer_msg m = {
        .type = PEER_KV_UPDATE,
        .kv_update = {
            .key = S("k"), .context = CTX, .value = S("v"), .deadline_ms = 1}};
    raw_kv_body(&m, &b);
    b.len--;
    assert_int_equal(decode_body(PEER_KV_UPDATE, &b, err, sizeof(err)),
                     RK_EPROTO);
    assert_string_equal(err,
                        "peer protocol error: KV_UPDATE body ends inside "
                        "field deadline_ms");
    b.len -= 3 + 2 + 1; /* deadline_ms, hint_for, a byte of flags */
    assert_int_equal(decode_body(PEER_KV_UPDATE, &b, err, sizeof(err)),
                     RK_EPROTO);
    assert_contains(err, "ends inside field flags");
}

static void test_peer_decoder_rejects_trailing_bytes(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i].big) {
            continue;
        }
        struct rk_buf f;
        encode_ok(&s[i].msg, &f);
        struct body b;
        b.len = 0;
        put_raw(&b, f.base + PEER_HEADER_SIZE, f.len - PEER_HEADER_SIZE);
        put8(&b, 0);
        char err[256];
        assert_int_equal(
            decode_body((uint8_t)s[i].msg.type, &b, err, sizeof(err)),
            RK_EPROTO);
        char want[128];
        snprintf(want, sizeof(want),
                 "peer protocol error: 1 trailing bytes after the %s body",
                 peer_type_name(s[i].msg.type));
        assert_string_equal(err, want);
        rk_buf_fini(&f);
    }
}

static void test_peer_decoder_rejects_fields_over_their_limits(void **state)
{
    (void)state;
    char err[256];
    struct body b;

    /* HELLO: node_id 65, then cluster_name 65, then host 256, then empty
     * node_id and empty host. */
    size_t cases[][3] = {
        {65, 0, 1}, {1, 65, 1}, {1, 0, 256}, {0, 0, 1}, {1, 0, 0}};
    const char *want[] = {
        "HELLO field node_id of 65 bytes is over its limit of 64",
        "HELLO field cluster_name of 65 bytes is over its limit of 64",
        "HELLO field host of 256 bytes is over its limit of 255",
        "HELLO field node_id is empty",
        "HELLO field host is empty",
    };
    for (size_t i = 0; i < 5; i++) {
        b.len = 0;
        put_name(&b, cases[i][0]);
        put_name(&b, cases[i][1]);
        put_name(&b, cases[i][2]);
        put16(&b, 1);
        put16(&b, 2);
        put16(&b, 3);
        put8(&b, 1);
        assert_int_equal(decode_body(PEER_HELLO, &b, err, sizeof(err)),
                         RK_EPROTO);
        assert_contains(err, want[i]);
    }

    /* The same sizes one byte smaller are fine. */
    b.len = 0;
    put_name(&b, 64);
    put_name(&b, 64);
    put_name(&b, 255);
    put16(&b, 1);
    put16(&b, 2);
    put16(&b, 3);
    put8(&b, 1);
    assert_int_equal(decode_body(PEER_HELLO, &b, err, sizeof(err)), RK_OK);

    /* PING_REQ needs a target. */
    b.len = 0;
    put64(&b, 1);
    put_name(&b, 1);
    put_name(&b, 0);
    assert_int_equal(decode_body(PEER_PING_REQ, &b, err, sizeof(err)),
                     RK_EPROTO);
    assert_contains(err, "PING_REQ field target is empty");

    /* ERROR message of 1025 bytes; 1024 is fine. */
    for (size_t len = 1024; len <= 1025; len++) {
        b.len = 0;
        put64(&b, 1);
        put32(&b, (uint32_t)RK_EIO);
        put_blob(&b, len);
        assert_int_equal(decode_body(PEER_ERROR, &b, err, sizeof(err)),
                         len == 1024 ? RK_OK : RK_EPROTO);
    }
    assert_contains(err, "ERROR field message of 1025 bytes");

    /* KV_GET, KV_PUT and KV_UPDATE keys of 64 KiB + 1 (hand-made, bigger
     * than struct body; judged before the fields after the key). */
    uint8_t keyed[] = {PEER_KV_GET, PEER_KV_PUT, PEER_KV_UPDATE};
    for (size_t i = 0; i < sizeof(keyed); i++) {
        size_t blen = 8 + 4 + PEER_MAX_KEY + 1 + 4;
        unsigned char *big = calloc(1, PEER_HEADER_SIZE + blen);
        unsigned char *p = big + PEER_HEADER_SIZE;
        rk_put_le32(p + 8, PEER_MAX_KEY + 1);
        peer_header_encode(big, keyed[i], p, (uint32_t)blen);
        assert_int_equal(decode_once((const char *)big, PEER_HEADER_SIZE + blen,
                                     0, err, sizeof(err)),
                         RK_EPROTO);
        char why[128];
        snprintf(why, sizeof(why),
                 "%s field key of 65537 bytes is over its limit of 65536",
                 peer_type_name(keyed[i]));
        assert_contains(err, why);
        free(big);
    }

    /* hint_for of 65 bytes in KV_PUT and KV_UPDATE; 64 is fine. */
    for (size_t len = 64; len <= 65; len++) {
        struct peer_msg m = {.type = PEER_KV_PUT,
                             .kv_put = {.hint_for = B(g_long, len)}};
        raw_kv_body(&m, &b);
        assert_int_equal(decode_body(PEER_KV_PUT, &b, err, sizeof(err)),
                         len == 64 ? RK_OK : RK_EPROTO);
        m = (struct peer_msg){.type = PEER_KV_UPDATE,
                              .kv_update = {.flags = PEER_KV_FALLBACK,
                                            .hint_for = B(g_long, len)}};
        raw_kv_body(&m, &b);
        assert_int_equal(decode_body(PEER_KV_UPDATE, &b, err, sizeof(err)),
                         len == 64 ? RK_OK : RK_EPROTO);
    }
    assert_contains(err,
                    "KV_UPDATE field hint_for of 65 bytes is over its limit "
                    "of 64");
}

static void test_peer_decoder_rejects_broken_rules(void **state)
{
    (void)state;
    char err[256];
    struct body b;

    /* Positive statuses; an ERROR that is not one (the rules of the KV
     * messages: test_peer_kv_rules_hold_in_encoder_and_decoder). */
    b.len = 0;
    put64(&b, 1);
    put32(&b, 1);
    assert_int_equal(decode_body(PEER_KV_PUT_REPLY, &b, err, sizeof(err)),
                     RK_EPROTO);
    assert_contains(err, "KV_PUT_REPLY status is positive");
    b.len = 0;
    put64(&b, 1);
    put32(&b, INT32_MAX);
    put_blob(&b, 0);
    put_blob(&b, 0);
    assert_int_equal(decode_body(PEER_JOIN_REPLY, &b, err, sizeof(err)),
                     RK_EPROTO);
    b.len = 0;
    put64(&b, 1);
    put32(&b, 0);
    put_blob(&b, 2);
    assert_int_equal(decode_body(PEER_ERROR, &b, err, sizeof(err)), RK_EPROTO);
    assert_contains(err, "ERROR status is not an error code");

    /* HELLO max_version 0. */
    b.len = 0;
    put_name(&b, 1);
    put_name(&b, 0);
    put_name(&b, 1);
    put16(&b, 1);
    put16(&b, 2);
    put16(&b, 3);
    put8(&b, 0);
    assert_int_equal(decode_body(PEER_HELLO, &b, err, sizeof(err)), RK_EPROTO);
    assert_contains(err, "HELLO max_version is 0");
}

/* Issue 14 item 4: each rule of the AAE messages the tables do not
 * express makes the encoder refuse the message (RK_EINVAL, output left
 * alone); its neighbour that keeps the rules encodes and round-trips. */
static void test_peer_aae_rules_refuse_malformed_messages(void **state)
{
    (void)state;
    samples_init();
    const struct peer_msg bad[] = {
        {.type = PEER_AAE_TREE, .aae_tree = {.req_id = 0}},
        {.type = PEER_AAE_TREE,
         .aae_tree = {.req_id = 1, .level = 1, .ids = S("abc")}},
        {.type = PEER_AAE_TREE, .aae_tree = {.req_id = 1, .level = 2}},
        {.type = PEER_AAE_TREE,
         .aae_tree = {.req_id = 1, .level = 0, .ids = S("abcd")}},
        {.type = PEER_AAE_TREE_REPLY, .aae_tree_reply = {.status = 1}},
        {.type = PEER_AAE_TREE_REPLY,
         .aae_tree_reply = {.status = 0, .hashes = S("1234567")}},
        {.type = PEER_AAE_TREE_REPLY,
         .aae_tree_reply = {.status = RK_EAGAIN, .hashes = S("12345678")}},
        {.type = PEER_AAE_KEYS, .aae_keys = {.req_id = 0, .leaves = S("abcd")}},
        {.type = PEER_AAE_KEYS,
         .aae_keys = {.req_id = 1, .leaves = S("abcde")}},
        {.type = PEER_AAE_KEYS, .aae_keys = {.req_id = 1}},
        {.type = PEER_AAE_KEYS_REPLY, .aae_keys_reply = {.status = 1}},
        {.type = PEER_AAE_KEYS_REPLY,
         .aae_keys_reply = {.status = RK_EINVAL, .count = 1}},
        {.type = PEER_AAE_KEYS_REPLY, .aae_keys_reply = {.flags = 2}},
        {.type = PEER_FETCH,
         .fetch = {.req_id = 0, .keys = S("\1\0\0\0k"), .max_bytes = 1}},
        {.type = PEER_FETCH, .fetch = {.req_id = 1, .keys = S("\1\0\0\0k")}},
        {.type = PEER_FETCH, .fetch = {.req_id = 1, .max_bytes = 1}},
    };
    struct rk_buf out;
    rk_buf_init(&out);
    rk_buf_append(&out, "abc", 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = peer_encode(&bad[i], &out);
        if (rc != RK_EINVAL) {
            fail_msg("case %zu: encode gave %s", i, rk_errname(rc));
        }
        assert_int_equal(out.len, 3);
    }
    const struct peer_msg good[] = {
        {.type = PEER_AAE_TREE,
         .aae_tree = {.req_id = 1, .level = 1, .ids = S("abcd")}},
        {.type = PEER_AAE_TREE_REPLY,
         .aae_tree_reply = {.status = 0, .hashes = S("12345678")}},
        {.type = PEER_AAE_KEYS, .aae_keys = {.req_id = 1, .leaves = S("abcd")}},
        {.type = PEER_AAE_KEYS_REPLY,
         .aae_keys_reply = {.flags = PEER_AAE_KEYS_TRUNCATED}},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rk_buf_clear(&out);
        assert_int_equal(peer_encode(&good[i], &out), RK_OK);
    }
    rk_buf_fini(&out);
}

/* A KV message breaking one rule of docs/peer-protocol.md section 5, and
 * the reason the decoder gives. */
struct rule_case
{
    struct peer_msg msg;
    const char *why;
};

/*
 * Each rule of KV_UPDATE, KV_UPDATE_REPLY and KV_GET_REPLY: the encoder
 * refuses the message with RK_EINVAL (leaving its output alone) and the
 * decoder refuses the same message laid out by hand with RK_EPROTO and
 * the rule's reason.  Neighbours that keep the rules pass both.
 */
static void test_peer_kv_rules_hold_in_encoder_and_decoder(void **state)
{
    (void)state;
    samples_init();
    const uint32_t all = PEER_KV_UPDATE_FLAGS;
    const struct rule_case bad[] = {
        {{.type = PEER_KV_UPDATE, .kv_update = {.flags = 0x80}},
         "KV_UPDATE has reserved flag bits set"},
        {{.type = PEER_KV_UPDATE, .kv_update = {.flags = 0x80000000u}},
         "KV_UPDATE has reserved flag bits set"},
        {{.type = PEER_KV_UPDATE, .kv_update = {.flags = all | 0x80}},
         "KV_UPDATE has reserved flag bits set"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_COUNTER_STATE}},
         "KV_UPDATE counter state is empty or has a content type, a "
         "manifest or an increment"},
        {{.type = PEER_KV_UPDATE, .kv_update = {.flags = PEER_KV_COUNTER}},
         "KV_UPDATE increment is not OWN_CONTEXT with a 24-byte value and "
         "no other flag or expiry"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_COUNTER | PEER_KV_OWN_CONTEXT,
                        .value = {"0123456789", 10}}},
         "KV_UPDATE increment is not OWN_CONTEXT with a 24-byte value and "
         "no other flag or expiry"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_TOMBSTONE, .value = S("v")}},
         "KV_UPDATE tombstone carries a value or an expiry"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_TOMBSTONE, .expire_at_ms = 1}},
         "KV_UPDATE tombstone carries a value or an expiry"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = all & ~PEER_KV_COUNTER_STATE,
                        .value = S("\0")}},
         "KV_UPDATE tombstone carries a value or an expiry"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_TOMBSTONE | PEER_KV_CTYPE}},
         "KV_UPDATE tombstone carries a content type"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_CHUNKED | PEER_KV_CTYPE,
                        .value = S("\1a")}},
         "KV_UPDATE chunk manifest is a tombstone or has a content type"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_OWN_CONTEXT, .context = CTX}},
         "KV_UPDATE with OWN_CONTEXT carries a context"},
        {{.type = PEER_KV_UPDATE,
          .kv_update = {.flags = PEER_KV_OWN_CONTEXT | PEER_KV_FALLBACK,
                        .context = S("c"),
                        .value = S("v"),
                        .hint_for = S("n1")}},
         "KV_UPDATE with OWN_CONTEXT carries a context"},
        {{.type = PEER_KV_UPDATE_REPLY, .kv_update_reply = {.status = 1}},
         "KV_UPDATE_REPLY status is positive"},
        {{.type = PEER_KV_UPDATE_REPLY,
          .kv_update_reply = {.status = INT32_MAX, .object = OBJ}},
         "KV_UPDATE_REPLY status is positive"},
        {{.type = PEER_KV_UPDATE_REPLY,
          .kv_update_reply = {.status = RK_EIO, .object = S("o")}},
         "KV_UPDATE_REPLY error carries an object"},
        {{.type = PEER_KV_UPDATE_REPLY,
          .kv_update_reply = {.status = INT32_MIN, .object = OBJ}},
         "KV_UPDATE_REPLY error carries an object"},
        {{.type = PEER_KV_GET_REPLY, .kv_get_reply = {.status = 1}},
         "KV_GET_REPLY status is positive"},
        {{.type = PEER_KV_GET_REPLY,
          .kv_get_reply = {.status = RK_ENOTFOUND, .object = S("o")}},
         "KV_GET_REPLY error carries an object"},
        {{.type = PEER_KV_GET_REPLY,
          .kv_get_reply = {.status = INT32_MIN, .object = OBJ}},
         "KV_GET_REPLY error carries an object"},
    };
    struct rk_buf out;
    rk_buf_init(&out);
    rk_buf_append(&out, "abc", 3);
    struct body b;
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = peer_encode(&bad[i].msg, &out);
        if (rc != RK_EINVAL) {
            fail_msg("case %zu (%s): encode gave %s", i, bad[i].why,
                     rk_errname(rc));
        }
        assert_int_equal(out.len, 3);
        raw_kv_body(&bad[i].msg, &b);
        rc = decode_body((uint8_t)bad[i].msg.type, &b, err, sizeof(err));
        if (rc != RK_EPROTO) {
            fail_msg("case %zu (%s): decode gave %s", i, bad[i].why,
                     rk_errname(rc));
        }
        char want[256];
        snprintf(want, sizeof(want), "peer protocol error: %s", bad[i].why);
        assert_string_equal(err, want);
    }
    rk_buf_fini(&out);

    const struct peer_msg good[] = {
        /* A tombstone may carry a context (a delete of what was read). */
        {.type = PEER_KV_UPDATE,
         .kv_update = {.flags = PEER_KV_TOMBSTONE, .context = CTX}},
        /* OWN_CONTEXT and FALLBACK writes carry values and expiries. */
        {.type = PEER_KV_UPDATE,
         .kv_update = {.value = S("v"),
                       .expire_at_ms = UINT64_MAX,
                       .flags = PEER_KV_OWN_CONTEXT | PEER_KV_FALLBACK,
                       .hint_for = ID_MAX}},
        /* Found with an empty object; every error with an empty one. */
        {.type = PEER_KV_GET_REPLY, .kv_get_reply = {.status = RK_OK}},
        {.type = PEER_KV_GET_REPLY, .kv_get_reply = {.status = INT32_MIN}},
        {.type = PEER_KV_UPDATE_REPLY, .kv_update_reply = {.status = -1}},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct rk_buf f;
        encode_ok(&good[i], &f);
        rk_buf_fini(&f);
        raw_kv_body(&good[i], &b);
        assert_int_equal(decode_body((uint8_t)good[i].type, &b, NULL, 0),
                         RK_OK);
    }
}

static void test_peer_decoder_errors_are_sticky(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    make_samples(s);
    struct rk_buf good;
    encode_ok(&s[3].msg, &good);
    struct peer_decoder *d = decoder_new(0);
    size_t consumed = 5;
    struct peer_msg m;
    assert_int_equal(peer_decoder_feed(d, "XXXX", 4, &consumed, &m), RK_EPROTO);
    char first[256];
    snprintf(first, sizeof(first), "%s", peer_decoder_errmsg(d));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            peer_decoder_feed(d, good.base, good.len, &consumed, &m),
            RK_EPROTO);
        assert_string_equal(peer_decoder_errmsg(d), first);
    }
    assert_int_equal(consumed, 5); /* untouched on errors */
    peer_decoder_destroy(d);

    d = decoder_new(0);
    good.base[4] = 9;
    assert_int_equal(peer_decoder_feed(d, good.base, good.len, &consumed, &m),
                     RK_EVERSION);
    good.base[4] = 1;
    assert_int_equal(peer_decoder_feed(d, good.base, good.len, &consumed, &m),
                     RK_EVERSION);
    peer_decoder_destroy(d);
    rk_buf_fini(&good);
}

/* ---- encoder ------------------------------------------------------------ */

static void test_peer_encode_rejects_invalid_messages(void **state)
{
    (void)state;
    samples_init();
    struct rk_buf out;
    rk_buf_init(&out);
    rk_buf_append(&out, "abc", 3);
    char host[PEER_MAX_HOST + 1];
    memset(host, 'h', sizeof(host));
    struct peer_msg bad[] = {
        {.type = 0},
        {.type = PEER_TYPE_MAX + 1},
        {.type = PEER_PING, .ping = {.from = EMPTY}},
        {.type = PEER_PING, .ping = {.from = B(g_long, 65)}},
        {.type = PEER_PING, .ping = {.from = S("a"), .target = B(NULL, 3)}},
        {.type = PEER_PING_REQ, .ping_req = {.from = S("a")}},
        {.type = PEER_HELLO,
         .hello = {.node_id = S("a"), .host = S("h"), .max_version = 0}},
        {.type = PEER_HELLO,
         .hello = {.node_id = S("a"),
                   .host = B(host, sizeof(host)),
                   .max_version = 1}},
        {.type = 15},
        {.type = PEER_KV_PUT, .kv_put = {.key = B(g_long, 65537)}},
        {.type = PEER_KV_PUT, .kv_put = {.hint_for = B(g_long, 65)}},
        {.type = PEER_KV_PUT, .kv_put = {.object = B(NULL, 1)}},
        {.type = PEER_KV_PUT_REPLY, .kv_put_reply = {.status = 1}},
        {.type = PEER_KV_GET_REPLY, .kv_get_reply = {.object = B(NULL, 2)}},
        {.type = PEER_KV_UPDATE, .kv_update = {.key = B(g_long, 65537)}},
        {.type = PEER_KV_UPDATE,
         .kv_update = {.flags = PEER_KV_FALLBACK, .hint_for = B(g_long, 65)}},
        {.type = PEER_KV_UPDATE, .kv_update = {.context = B(NULL, 4)}},
        {.type = PEER_KV_UPDATE, .kv_update = {.value = B(NULL, 3)}},
        {.type = PEER_KV_UPDATE_REPLY,
         .kv_update_reply = {.object = B(NULL, 1)}},
        {.type = PEER_ERROR, .error = {.status = 0}},
        {.type = PEER_ERROR,
         .error = {.status = -1, .message = B(g_long, 1025)}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = peer_encode(&bad[i], &out);
        if (rc != RK_EINVAL) {
            fail_msg("bad message %zu gave %s", i, rk_errname(rc));
        }
        assert_int_equal(out.len, 3);
        assert_memory_equal(out.base, "abc", 3);
    }
    /* Over the body limit (the bytes are never read): one byte over with
     * the 22 fixed bytes of a KV_PUT, a string over 4 GiB, and a KV_UPDATE
     * whose context and value only together exceed it. */
    struct peer_msg huge = {
        .type = PEER_KV_PUT,
        .kv_put = {.key = B(g_key_max, 10),
                   .object = B(g_big, PEER_DEFAULT_MAX_BODY - 22 - 10 + 1)}};
    assert_int_equal(peer_encode(&huge, &out), RK_ETOOBIG);
    huge.kv_put.object.len = (size_t)UINT32_MAX + 10;
    assert_int_equal(peer_encode(&huge, &out), RK_ETOOBIG);
    huge = (struct peer_msg){
        .type = PEER_KV_UPDATE,
        .kv_update = {.context = B(g_big, PEER_DEFAULT_MAX_BODY / 2),
                      .value = B(g_big, PEER_DEFAULT_MAX_BODY / 2)}};
    assert_int_equal(peer_encode(&huge, &out), RK_ETOOBIG);
    huge = (struct peer_msg){
        .type = PEER_KV_UPDATE_REPLY,
        .kv_update_reply = {.object = B(g_big, PEER_DEFAULT_MAX_BODY)}};
    assert_int_equal(peer_encode(&huge, &out), RK_ETOOBIG);
    huge = (struct peer_msg){
        .type = PEER_KV_GET_REPLY,
        .kv_get_reply = {.object = B(g_big, PEER_DEFAULT_MAX_BODY)}};
    assert_int_equal(peer_encode(&huge, &out), RK_ETOOBIG);
    assert_int_equal(out.len, 3);
    rk_buf_fini(&out);
}

static void test_peer_encode_appends_after_existing_content(void **state)
{
    (void)state;
    struct peer_msg m = {.type = PEER_KV_PUT_REPLY,
                         .kv_put_reply = {5, RK_ENOSPC}};
    struct rk_buf a, b;
    encode_ok(&m, &a);
    rk_buf_init(&b);
    rk_buf_append(&b, "xyz", 3);
    assert_int_equal(peer_encode(&m, &b), RK_OK);
    assert_int_equal(b.len, 3 + a.len);
    assert_memory_equal(b.base, "xyz", 3);
    assert_memory_equal(b.base + 3, a.base, a.len);
    rk_buf_fini(&a);
    rk_buf_fini(&b);
}

/*
 * EVIDENCE-OF docs/peer-protocol.md "Example": the frame of
 * PING{seq=1, from="n1", target="", incarnation=2, storage=1}, byte for
 * byte (version 2), and its version-1 form.
 */
static void test_peer_encode_writes_the_documented_bytes(void **state)
{
    (void)state;
    struct peer_msg m = {.type = PEER_PING,
                         .ping = {1, S("n1"), EMPTY, 2, PEER_STORAGE_DEGRADED}};
    struct rk_buf f;
    encode_ok(&m, &f);
    static const unsigned char want[] = {
        /* header */
        0x52, 0x4b, 0x56, 0x50, /* "RKVP" */
        0x02,                   /* version 2 */
        0x02,                   /* type PING */
        0x00, 0x00,             /* flags */
        0x17, 0x00, 0x00, 0x00, /* body_len 23 */
        0x00, 0x00, 0x00, 0x00, /* checksum (checked below) */
        /* body */
        0x01, 0, 0, 0, 0, 0, 0, 0, /* seq 1 */
        0x02, 0x00, 'n', '1',      /* from "n1" */
        0x00, 0x00,                /* target "" */
        0x02, 0, 0, 0, 0, 0, 0, 0, /* incarnation 2 */
        0x01,                      /* storage: degraded */
    };
    assert_int_equal(f.len, sizeof(want));
    assert_memory_equal(f.base, want, 12);
    assert_memory_equal(f.base + 16, want + 16, sizeof(want) - 16);
    /* low 32 bits of XXH3_64bits_withSeed(body, 23, 0x0000001700000202) */
    uint32_t sum = rk_get_le32((const unsigned char *)f.base + 12);
    printf("# documented PING checksum 0x%08" PRIx32 "\n", sum);
    assert_int_equal(sum, DOC_PING_V2_SUM);
    rk_buf_fini(&f);

    /* Version 1: no storage byte; 0x04fde1ca is the version-1 example. */
    rk_buf_init(&f);
    assert_int_equal(peer_encode_version(&m, 1, &f), RK_OK);
    assert_int_equal(f.len, sizeof(want) - 1);
    assert_int_equal((unsigned char)f.base[4], 1);
    assert_int_equal((unsigned char)f.base[8], 22);
    assert_memory_equal(f.base + 16, want + 16, sizeof(want) - 17);
    assert_int_equal(rk_get_le32((const unsigned char *)f.base + 12),
                     0x04fde1cau);
    rk_buf_fini(&f);
}

/*
 * Issue 12 item 3: a version-2 node still reads a version-1 PING and ACK
 * (no storage byte: storage OK), and refuses an unknown storage state.
 */
static void test_peer_decoder_reads_version_1_ping_and_ack(void **state)
{
    (void)state;
    enum peer_type types[] = {PEER_PING, PEER_ACK};
    for (size_t i = 0; i < 2; i++) {
        struct peer_msg m = {.type = types[i]};
        if (types[i] == PEER_PING) {
            m.ping = (struct peer_ping){7, S("n1"), S("n2"), 9,
                                        PEER_STORAGE_DEGRADED};
        } else {
            m.ack = (struct peer_ack){7, S("n1"), S("n2"), 9,
                                      PEER_STORAGE_DEGRADED};
        }
        struct rk_buf f;
        rk_buf_init(&f);
        assert_int_equal(peer_encode_version(&m, 1, &f), RK_OK);
        struct peer_decoder *d = decoder_new(0);
        struct peer_msg got;
        size_t consumed = 0;
        assert_int_equal(peer_decoder_feed(d, f.base, f.len, &consumed, &got),
                         RK_OK);
        assert_int_equal(consumed, f.len);
        assert_int_equal(got.type, types[i]);
        if (types[i] == PEER_PING) {
            assert_int_equal(got.ping.storage, PEER_STORAGE_OK);
            assert_int_equal(got.ping.incarnation, 9);
        } else {
            assert_int_equal(got.ack.storage, PEER_STORAGE_OK);
            assert_int_equal(got.ack.incarnation, 9);
        }
        peer_decoder_destroy(d);
        rk_buf_clear(&f);
        /* version 2 carries it */
        assert_int_equal(peer_encode(&m, &f), RK_OK);
        d = decoder_new(0);
        assert_int_equal(peer_decoder_feed(d, f.base, f.len, &consumed, &got),
                         RK_OK);
        assert_int_equal(
            types[i] == PEER_PING ? got.ping.storage : got.ack.storage,
            PEER_STORAGE_DEGRADED);
        peer_decoder_destroy(d);
        rk_buf_fini(&f);
        /* an unknown storage state is refused both ways */
        if (types[i] == PEER_PING) {
            m.ping.storage = 2;
        } else {
            m.ack.storage = 2;
        }
        rk_buf_init(&f);
        assert_int_equal(peer_encode(&m, &f), RK_EINVAL);
        assert_int_equal(peer_encode_version(&m, 3, &f), RK_EINVAL);
        rk_buf_fini(&f);
    }
}

/* Encodes m and checks header bytes 0..11 and the body against want. */
static void assert_frame_bytes(const struct peer_msg *m,
                               const unsigned char *want,
                               size_t want_len)
{
    struct rk_buf f;
    encode_ok(m, &f);
    unsigned char hdr[12] = {
        0x52, 0x4b, 0x56, 0x50, peer_frame_version(m->type), (uint8_t)m->type,
        0x00, 0x00};
    rk_put_le32(hdr + 8, (uint32_t)want_len);
    assert_int_equal(f.len, PEER_HEADER_SIZE + want_len);
    assert_memory_equal(f.base, hdr, sizeof(hdr));
    assert_memory_equal(f.base + PEER_HEADER_SIZE, want, want_len);
    rk_buf_fini(&f);
}

/*
 * EVIDENCE-OF docs/peer-protocol.md sections 5.7, 5.10, 5.12 and 5.13:
 * the bodies of KV_PUT, KV_GET_REPLY, KV_UPDATE and KV_UPDATE_REPLY, field
 * by field, written out here and for every sample by raw_kv_body().
 */
static void test_peer_encode_lays_out_kv_bodies_as_documented(void **state)
{
    (void)state;
    struct peer_msg m = {.type = PEER_KV_UPDATE,
                         .kv_update = {.req_id = 0x0102030405060708u,
                                       .key = S("k1"),
                                       .context = S("c"),
                                       .value = S("vv"),
                                       .timestamp = 0x1112131415161718u,
                                       .expire_at_ms = 0x2122232425262728u,
                                       .flags = PEER_KV_FALLBACK,
                                       .hint_for = S("n2"),
                                       .deadline_ms = 0x31323334u}};
    static const unsigned char update[] = {
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* req_id */
        0x02, 0x00, 0x00, 0x00, 'k',  '1',              /* key "k1" */
        0x01, 0x00, 0x00, 0x00, 'c',                    /* context "c" */
        0x02, 0x00, 0x00, 0x00, 'v',  'v',              /* value "vv" */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* timestamp */
        0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21, /* expire_at_ms */
        0x04, 0x00, 0x00, 0x00,                         /* flags FALLBACK */
        0x02, 0x00, 'n',  '2',                          /* hint_for "n2" */
        0x34, 0x33, 0x32, 0x31,                         /* deadline_ms */
    };
    assert_frame_bytes(&m, update, sizeof(update));

    m = (struct peer_msg){.type = PEER_KV_PUT,
                          .kv_put = {.req_id = 1,
                                     .key = S("k"),
                                     .object = S("ob"),
                                     .deadline_ms = 1000}};
    static const unsigned char put[] = {
        0x01, 0,    0,    0,    0,   0,   0, 0, /* req_id 1 */
        0x01, 0x00, 0x00, 0x00, 'k',            /* key "k" */
        0x02, 0x00, 0x00, 0x00, 'o', 'b',       /* object "ob" */
        0x00, 0x00,                             /* hint_for "" */
        0xe8, 0x03, 0x00, 0x00,                 /* deadline_ms 1000 */
    };
    assert_frame_bytes(&m, put, sizeof(put));

    m = (struct peer_msg){.type = PEER_KV_GET_REPLY,
                          .kv_get_reply = {2, RK_ENOTFOUND, EMPTY}};
    static const unsigned char get_reply[] = {
        0x02, 0,    0,    0,    0, 0, 0, 0, /* req_id 2 */
        0xf9, 0xff, 0xff, 0xff,             /* status -7 RK_ENOTFOUND */
        0x00, 0x00, 0x00, 0x00,             /* object "" */
    };
    assert_frame_bytes(&m, get_reply, sizeof(get_reply));

    m = (struct peer_msg){.type = PEER_KV_UPDATE_REPLY,
                          .kv_update_reply = {3, RK_OK, S("o")}};
    static const unsigned char update_reply[] = {
        0x03, 0,    0,    0,    0,   0, 0, 0, /* req_id 3 */
        0x00, 0x00, 0x00, 0x00,               /* status RK_OK */
        0x01, 0x00, 0x00, 0x00, 'o',          /* object "o" */
    };
    assert_frame_bytes(&m, update_reply, sizeof(update_reply));

    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        enum peer_type t = s[i].msg.type;
        if (s[i].big || (t != PEER_KV_PUT && t != PEER_KV_GET_REPLY &&
                         t != PEER_KV_UPDATE && t != PEER_KV_UPDATE_REPLY)) {
            continue;
        }
        struct body b;
        raw_kv_body(&s[i].msg, &b);
        assert_frame_bytes(&s[i].msg, b.b, b.len);
        checked++;
    }
    assert_true(checked >= 16);
}

/* Body sizes given in docs/peer-protocol.md section 5. */
static size_t body_len_of(const struct peer_msg *m)
{
    struct rk_buf f;
    encode_ok(m, &f);
    size_t len = f.len - PEER_HEADER_SIZE;
    rk_buf_fini(&f);
    return len;
}

static void test_peer_body_sizes_match_the_docs(void **state)
{
    (void)state;
    samples_init();
    struct peer_msg m = {.type = PEER_HELLO,
                         .hello = {.node_id = S("ab"),
                                   .cluster_name = S("c"),
                                   .host = S("h"),
                                   .max_version = 1}};
    assert_int_equal(body_len_of(&m), 13 + 2 + 1 + 1);
    m = (struct peer_msg){.type = PEER_PING, .ping = {.from = S("n1")}};
    assert_int_equal(body_len_of(&m), 21 + 2);
    m = (struct peer_msg){.type = PEER_ACK,
                          .ack = {.from = S("n1"), .target = S("n2")}};
    assert_int_equal(body_len_of(&m), 21 + 4);
    m = (struct peer_msg){.type = PEER_KV_PUT,
                          .kv_put = {.key = S("k"), .object = S("vv")}};
    assert_int_equal(body_len_of(&m), 22 + 3);
    m = (struct peer_msg){.type = PEER_KV_PUT, .kv_put = {.hint_for = ID_MAX}};
    assert_int_equal(body_len_of(&m), 86); /* overhead over key + object */
    m = (struct peer_msg){.type = PEER_KV_PUT_REPLY};
    assert_int_equal(body_len_of(&m), 12);
    m = (struct peer_msg){.type = PEER_KV_GET_REPLY,
                          .kv_get_reply = {.object = S("obj")}};
    assert_int_equal(body_len_of(&m), 16 + 3);
    m = (struct peer_msg){.type = PEER_KV_UPDATE,
                          .kv_update = {.key = S("k"),
                                        .context = S("cc"),
                                        .value = S("vvv"),
                                        .hint_for = S("n1")}};
    assert_int_equal(body_len_of(&m), 46 + 1 + 2 + 3 + 2);
    m = (struct peer_msg){
        .type = PEER_FETCH,
        .fetch = {.req_id = 1, .keys = S("\1\0\0\0k"), .max_bytes = 1}};
    assert_int_equal(body_len_of(&m), 24 + 5);
    m = (struct peer_msg){.type = PEER_KV_UPDATE,
                          .kv_update = {.hint_for = ID_MAX}};
    assert_int_equal(body_len_of(&m), 110); /* over key + context + value */
    m = (struct peer_msg){.type = PEER_KV_UPDATE_REPLY,
                          .kv_update_reply = {.object = S("obj")}};
    assert_int_equal(body_len_of(&m), 16 + 3);
}

static void test_peer_header_encode_frames_a_body_built_elsewhere(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    for (size_t i = 0; i < n; i++) {
        struct rk_buf f;
        encode_ok(&s[i].msg, &f);
        unsigned char hdr[PEER_HEADER_SIZE];
        peer_header_encode(hdr, (uint8_t)s[i].msg.type,
                           f.base + PEER_HEADER_SIZE,
                           (uint32_t)(f.len - PEER_HEADER_SIZE));
        assert_memory_equal(hdr, f.base, PEER_HEADER_SIZE);
        rk_buf_fini(&f);
    }
}

static void test_peer_type_name_names_every_type(void **state)
{
    (void)state;
    const char *names[] = {"HELLO",
                           "PING",
                           "ACK",
                           "PING_REQ",
                           "GOSSIP",
                           "JOIN",
                           "JOIN_REPLY",
                           "KV_PUT",
                           "KV_PUT_REPLY",
                           "KV_GET",
                           "KV_GET_REPLY",
                           "ERROR",
                           "KV_UPDATE",
                           "KV_UPDATE_REPLY",
                           "CHUNK",
                           "FOLD",
                           "FOLD_REPLY",
                           "AAE_TREE",
                           "AAE_TREE_REPLY",
                           "AAE_KEYS",
                           "AAE_KEYS_REPLY",
                           "REPLACE",
                           "AUTH_CHALLENGE",
                           "AUTH_PROOF",
                           "FETCH"};
    assert_int_equal(PEER_TYPE_MAX - PEER_TYPE_MIN + 1,
                     sizeof(names) / sizeof(names[0]));
    for (int t = PEER_TYPE_MIN; t <= PEER_TYPE_MAX; t++) {
        assert_string_equal(peer_type_name(t), names[t - PEER_TYPE_MIN]);
    }
    assert_string_equal(peer_type_name(0), "UNKNOWN");
    assert_string_equal(peer_type_name(26), "UNKNOWN");
    assert_string_equal(peer_type_name(PEER_TYPE_MAX + 1), "UNKNOWN");
    assert_string_equal(peer_type_name(-1), "UNKNOWN");
}

/* ---- allocation failures ------------------------------------------------ */

/* Failing the Nth allocation (N = 1, 2, ...) while creating a decoder and
 * encoding every sample: RK_ENOMEM leaves the output unchanged, nothing
 * leaks, and a retry gives the same bytes as an unhindered run. */
static void test_peer_codec_survives_allocation_failures(void **state)
{
    (void)state;
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    struct rk_buf want;
    rk_buf_init(&want);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(peer_encode(&s[i].msg, &want), RK_OK);
    }
    long fail_at;
    bool clean = false;
    for (fail_at = 1; !clean && fail_at < 1000; fail_at++) {
        heap_install(fail_at);
        clean = true;
        struct peer_decoder *d = NULL;
        int rc = peer_decoder_create(0, &d);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_ENOMEM);
            assert_null(d);
            assert_int_equal(g_heap.live, 0);
            heap_uninstall();
            clean = false;
            continue;
        }
        struct rk_buf out;
        rk_buf_init(&out);
        for (size_t i = 0; i < n; i++) {
            size_t before = out.len;
            rc = peer_encode(&s[i].msg, &out);
            if (rc == RK_ENOMEM) {
                clean = false;
                assert_int_equal(out.len, before);
                g_heap.fail_at = 0;
                rc = peer_encode(&s[i].msg, &out);
            }
            assert_int_equal(rc, RK_OK);
        }
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.base, want.base, want.len);
        size_t pos = 0;
        size_t count = 0;
        while (pos < out.len) {
            size_t consumed;
            struct peer_msg m;
            assert_int_equal(peer_decoder_feed(d, out.base + pos, out.len - pos,
                                               &consumed, &m),
                             RK_OK);
            assert_true(peer_msg_equal(&m, &s[count].msg));
            pos += consumed;
            count++;
        }
        assert_int_equal(count, n);
        rk_buf_fini(&out);
        peer_decoder_destroy(d);
        assert_int_equal(g_heap.live, 0);
        heap_uninstall();
    }
    assert_true(clean);
    assert_true(fail_at > 3);
    rk_buf_fini(&want);
}

/* ---- fuzz seeds ---------------------------------------------------------- */

static void write_seed(const char *dir,
                       const char *name,
                       unsigned char mode,
                       const char *bytes,
                       size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(&mode, 1, 1, fp), 1);
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Checks that a seed decodes to whole frames only (mode byte skipped). */
static void check_seed(const char *bytes, size_t len)
{
    struct peer_decoder *d = decoder_new(0);
    size_t pos = 0;
    while (pos < len) {
        size_t consumed;
        struct peer_msg m;
        assert_int_equal(
            peer_decoder_feed(d, bytes + pos, len - pos, &consumed, &m), RK_OK);
        pos += consumed;
    }
    peer_decoder_destroy(d);
}

/*
 * The fuzz_peer seeds: one frame of each small sample (first byte 0: fed
 * whole), a pipelined stream of all of them fed in 7-byte fragments, and
 * the same stream in checksum-repair mode (tests/fuzz/fuzz_peer.c).  Each
 * decodes cleanly; with RK_PEER_SEED_DIR=DIR they are also written to DIR
 * (how tests/fuzz/corpus/fuzz_peer/ was made).
 */
static void test_peer_fuzz_seeds_decode_cleanly(void **state)
{
    (void)state;
    const char *dir = getenv("RK_PEER_SEED_DIR");
    struct sample s[MAX_SAMPLES];
    size_t n = make_samples(s);
    struct rk_buf all;
    rk_buf_init(&all);
    for (size_t i = 0; i < n; i++) {
        if (s[i].big) {
            continue;
        }
        struct rk_buf f;
        encode_ok(&s[i].msg, &f);
        check_seed(f.base, f.len);
        if (dir != NULL) {
            write_seed(dir, s[i].name, 0, f.base, f.len);
        }
        rk_buf_append(&all, f.base, f.len);
        rk_buf_fini(&f);
    }
    check_seed(all.base, all.len);
    if (dir != NULL) {
        write_seed(dir, "pipelined_frag7", 7, all.base, all.len);
        write_seed(dir, "pipelined_repair", 0x80, all.base, all.len);
    }
    rk_buf_fini(&all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_round_trips_every_type_with_edge_values),
        cmocka_unit_test(test_peer_msg_equal_compares_contents),
        cmocka_unit_test(test_peer_decoder_needs_more_at_every_split_point),
        cmocka_unit_test(test_peer_decoder_keeps_no_pointer_into_old_buffers),
        cmocka_unit_test(test_peer_decoder_decodes_pipelined_frames),
        cmocka_unit_test(test_peer_decoder_detects_every_single_bit_flip),
        cmocka_unit_test(test_peer_decoder_rejects_bad_checksum),
        cmocka_unit_test(test_peer_decoder_waits_for_truncated_body),
        cmocka_unit_test(
            test_peer_decoder_rejects_declared_4gib_body_without_allocating),
        cmocka_unit_test(test_peer_decoder_accepts_the_largest_legal_write),
        cmocka_unit_test(test_peer_decoder_applies_its_max_body),
        cmocka_unit_test(test_peer_decoder_rejects_newer_version_with_message),
        cmocka_unit_test(test_peer_decoder_rejects_version_zero),
        cmocka_unit_test(test_peer_decoder_rejects_bad_magic),
        cmocka_unit_test(test_peer_decoder_rejects_unknown_type),
        cmocka_unit_test(test_peer_decoder_rejects_reserved_header_flags),
        cmocka_unit_test(test_peer_decoder_rejects_field_length_overruns),
        cmocka_unit_test(test_peer_decoder_rejects_trailing_bytes),
        cmocka_unit_test(test_peer_decoder_rejects_fields_over_their_limits),
        cmocka_unit_test(test_peer_decoder_rejects_broken_rules),
        cmocka_unit_test(test_peer_kv_rules_hold_in_encoder_and_decoder),
        cmocka_unit_test(test_peer_aae_rules_refuse_malformed_messages),
        cmocka_unit_test(test_peer_decoder_errors_are_sticky),
        cmocka_unit_test(test_peer_encode_rejects_invalid_messages),
        cmocka_unit_test(test_peer_encode_appends_after_existing_content),
        cmocka_unit_test(test_peer_encode_writes_the_documented_bytes),
        cmocka_unit_test(test_peer_decoder_reads_version_1_ping_and_ack),
        cmocka_unit_test(test_peer_encode_lays_out_kv_bodies_as_documented),
        cmocka_unit_test(test_peer_body_sizes_match_the_docs),
        cmocka_unit_test(test_peer_header_encode_frames_a_body_built_elsewhere),
        cmocka_unit_test(test_peer_type_name_names_every_type),
        cmocka_unit_test(test_peer_codec_survives_allocation_failures),
        cmocka_unit_test(test_peer_fuzz_seeds_decode_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

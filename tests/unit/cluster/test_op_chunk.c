/*
 * test_op_chunk.c - the op machine's chunk phases (op_chunk.c, chunk.h;
 * issue 12 item 4) over a fake node port that stores objects in memory:
 * a value over the threshold is written as blocks then a manifest, read
 * back whole, refused when a block is missing or damaged, and never
 * crosses the port as one piece; the manifest codec; reserved keys.
 *
 * The port answers every request on the next op_process, from an
 * in-memory key -> dvv object store, so a command runs end to end.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/chunk.h"
#include "cluster/dvv.h"
#include "cluster/op.h"
#include "common/error.h"

#define THRESHOLD 16
#define BLOCK     5
#define MAX_KEYS  65536
#define MAX_Q     256

/* ---- an in-memory store behind the port --------------------------------- */

struct entry
{
    unsigned char key[64];
    size_t klen;
    struct rk_buf obj; /* encoded dvv object */
    int next;          /* hash chain, -1 = end */
};

struct pending
{
    struct node_result r;
    struct rk_buf obj;
};

static struct entry g_store[MAX_KEYS];
static size_t g_n_store;
static int g_bucket[4096]; /* hash chains into g_store, -1 = empty */
static struct pending g_q[MAX_Q];
static size_t g_n_q;
static uint64_t g_next_id;
static size_t g_inflight, g_max_inflight;
static size_t g_writes, g_reads, g_chunked_writes;
static size_t g_max_vlen; /* largest value that crossed the port */
static uint64_t g_wall = 1700000000000ull, g_rand = 1;
static struct hlc g_clock;
static struct rk_env g_env;
static struct op_machine *g_m;
static struct op_client g_c;
static const struct node_settings g_set = {.max_siblings = 100};

static struct entry *lookup(const void *key, size_t klen, bool create)
{
    size_t b = XXH3_64bits(key, klen) % 4096;
    for (int i = g_bucket[b]; i >= 0; i = g_store[i].next) {
        if (g_store[i].klen == klen && memcmp(g_store[i].key, key, klen) == 0) {
            return &g_store[i];
        }
    }
    if (!create) {
        return NULL;
    }
    assert_true(g_n_store < MAX_KEYS && klen <= sizeof(g_store[0].key));
    struct entry *e = &g_store[g_n_store];
    memcpy(e->key, key, klen);
    e->klen = klen;
    rk_buf_init(&e->obj);
    e->next = g_bucket[b];
    g_bucket[b] = (int)g_n_store++;
    return e;
}

static struct pending *enqueue(uint64_t cookie, enum node_op_kind kind)
{
    assert_true(g_n_q < MAX_Q);
    struct pending *p = &g_q[g_n_q++];
    memset(&p->r, 0, sizeof(p->r));
    rk_buf_init(&p->obj);
    p->r.cookie = cookie;
    p->r.op_id = ++g_next_id;
    p->r.kind = kind;
    g_inflight++;
    g_max_inflight = g_inflight > g_max_inflight ? g_inflight : g_max_inflight;
    return p;
}

static int port_read(void *data,
                     const struct node_read_req *r,
                     uint64_t now,
                     uint64_t *op_id)
{
    (void)data;
    (void)now;
    g_reads++;
    struct pending *p = enqueue(r->cookie, NODE_OP_READ);
    struct entry *e = lookup(r->key, r->klen, false);
    if (e && e->obj.len) {
        p->r.status = RK_OK;
        p->r.found = true;
        rk_buf_append(&p->obj, e->obj.base, e->obj.len);
    } else {
        p->r.status = RK_ENOTFOUND;
    }
    *op_id = p->r.op_id;
    return RK_OK;
}

static int port_write(void *data,
                      const struct node_write_req *w,
                      uint64_t now,
                      uint64_t *op_id)
{
    (void)data;
    (void)now;
    g_writes++;
    g_chunked_writes += w->chunked;
    g_max_vlen = w->vlen > g_max_vlen ? w->vlen : g_max_vlen;
    struct entry *e = lookup(w->key, w->klen, true);
    struct dvv_obj o, ctx;
    dvv_init(&o);
    dvv_init(&ctx);
    if (e->obj.len) {
        assert_int_equal(dvv_decode(&o, e->obj.base, e->obj.len), RK_OK);
    }
    if (!w->own_context && w->clen) {
        assert_int_equal(dvv_decode(&ctx, w->context, w->clen), RK_OK);
    }
    struct dvv_write dw = {
        .value = w->value,
        .vlen = w->vlen,
        .ts = w->timestamp,
        .expire_at_ms = w->expire_at_ms,
        .tombstone = w->tombstone,
        .ctype = w->ctype,
        .chunked = w->chunked,
    };
    assert_int_equal(
        dvv_update(&o, w->own_context ? &o : &ctx, 9, 0, &dw, NULL), RK_OK);
    rk_buf_clear(&e->obj);
    assert_int_equal(dvv_encode(&o, &e->obj), RK_OK);
    struct pending *p = enqueue(w->cookie, NODE_OP_WRITE);
    p->r.status = RK_OK;
    p->r.found = true;
    rk_buf_append(&p->obj, e->obj.base, e->obj.len);
    dvv_fini(&o);
    dvv_fini(&ctx);
    *op_id = p->r.op_id;
    return RK_OK;
}

static void port_settle(void *data)
{
    (void)data;
}

static void port_cancel(void *data, uint64_t cookie)
{
    (void)data;
    (void)cookie;
}

static uint64_t env_wall(struct rk_env *env)
{
    (void)env;
    return g_wall;
}

static uint64_t env_mono(struct rk_env *env)
{
    (void)env;
    return 1000;
}

static uint64_t env_rand(struct rk_env *env)
{
    (void)env;
    return g_rand++ * 0x9e3779b97f4a7c15ull;
}

/* Answers every queued request (and those they cause) in order. */
static void run(void)
{
    while (g_n_q > 0) {
        struct pending p = g_q[0];
        memmove(g_q, g_q + 1, (g_n_q - 1) * sizeof(g_q[0]));
        g_n_q--;
        g_inflight--;
        p.r.object = (struct peer_bytes){p.obj.base, p.obj.len};
        op_on_node_result(g_m, &p.r, &g_set);
        rk_buf_fini(&p.obj);
        op_process(g_m);
    }
}

static uint32_t g_block = BLOCK;

static int setup(void **state)
{
    (void)state;
    g_n_store = g_n_q = 0;
    memset(g_bucket, 0xff, sizeof(g_bucket));
    g_next_id = 0;
    g_inflight = g_max_inflight = 0;
    g_writes = g_reads = g_chunked_writes = g_max_vlen = 0;
    hlc_init(&g_clock);
    g_env = (struct rk_env){
        .wall_ms = env_wall, .mono_ms = env_mono, .rand64 = env_rand};
    struct op_config cfg = {
        .port = {port_read, port_write, port_settle, port_cancel, NULL},
        .env = &g_env,
        .clock = &g_clock,
        .chunk_threshold = THRESHOLD,
        .chunk_size = g_block,
    };
    assert_int_equal(op_machine_create(&cfg, &g_m), RK_OK);
    op_client_init(&g_c, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    op_machine_destroy(g_m);
    for (size_t i = 0; i < g_n_store; i++) {
        rk_buf_fini(&g_store[i].obj);
    }
    return 0;
}

/* ---- commands ----------------------------------------------------------- */

static char g_reply[4096];
static bool g_replied;

static void handle(struct op *op)
{
    size_t argc;
    const struct resp_arg *a = op_args(op, &argc);
    struct rk_buf *out = op_reply(op);
    struct op_value v;
    if (strcmp(a[0].ptr, "get") == 0) {
        if (op_key_get(op, a[1].ptr, a[1].len, &v) == RK_OK) {
            rk_buf_append(out, v.val, v.vlen);
        } else {
            rk_buf_append_str(out, "(nil)");
        }
    } else if (strcmp(a[0].ptr, "frame") == 0) {
        /* GET's zero-copy path: the assembled frame moves into out */
        if (op_key_take_frame(op, a[1].ptr, a[1].len, out) != RK_OK) {
            rk_buf_append_str(out, "(copy)");
        }
    } else if (strcmp(a[0].ptr, "set") == 0) {
        assert_int_equal(op_key_put(op, a[1].ptr, a[1].len, a[2].ptr, a[2].len,
                                    0, NULL, 0, 1 << 20),
                         RK_OK);
        rk_buf_append_str(out, "OK");
    } else if (strcmp(a[0].ptr, "append") == 0) {
        char buf[1024] = "";
        size_t n = 0;
        if (op_key_get(op, a[1].ptr, a[1].len, &v) == RK_OK) {
            memcpy(buf, v.val, v.vlen);
            n = v.vlen;
        }
        memcpy(buf + n, a[2].ptr, a[2].len);
        n += a[2].len;
        assert_int_equal(
            op_key_put(op, a[1].ptr, a[1].len, buf, n, 0, NULL, 0, 1 << 20),
            RK_OK);
        rk_buf_appendf(out, "%zu", n);
    } else if (strcmp(a[0].ptr, "del") == 0) {
        rk_buf_appendf(out, "%d", op_key_del(op, a[1].ptr, a[1].len) == RK_OK);
    } else if (strcmp(a[0].ptr, "getall") == 0) {
        rk_buf_append_str(out, "rendered");
    } else if (strcmp(a[0].ptr, "put") == 0) {
        int removed = 0;
        assert_int_equal(op_versioned_put(op, "", 0, false, a[2].ptr, a[2].len,
                                          NULL, 0, &removed),
                         RK_OK);
        rk_buf_append_str(out, "OK");
    }
}

static void drain(void)
{
    struct op_action a;
    while (op_next_action(g_m, &a)) {
        if (a.type == OP_ACT_EXEC) {
            handle(a.op);
            op_exec_done(g_m, a.op);
        } else if (a.type == OP_ACT_REPLY) {
            const struct rk_buf *r = op_reply(a.op);
            if (op_error(a.op)) {
                snprintf(g_reply, sizeof(g_reply), "-%s", op_error(a.op));
            } else {
                snprintf(g_reply, sizeof(g_reply), "%.*s", (int)r->len,
                         r->base ? r->base : "");
            }
            g_replied = true;
        }
    }
}

/* Runs one command (args separated by spaces) to its reply. */
static const char *cmd(const char *text)
{
    char buf[1024];
    struct resp_arg argv[8];
    size_t argc = 0;
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *p = strtok(buf, " "); p; p = strtok(NULL, " ")) {
        argv[argc++] = (struct resp_arg){p, strlen(p)};
    }
    unsigned flags = 0;
    if (strcmp(argv[0].ptr, "set") == 0) {
        flags = OP_F_BLIND;
    } else if (strcmp(argv[0].ptr, "getall") == 0) {
        flags = OP_F_VERSIONED;
    } else if (strcmp(argv[0].ptr, "put") == 0) {
        flags = OP_F_VERSIONED | OP_F_WRITE;
    }
    struct op *op = NULL;
    assert_int_equal(op_create(g_m, &g_c, NULL, argc, argv, &op), RK_OK);
    assert_int_equal(
        op_add_key(op, op_args(op, &argc)[1].ptr, op_args(op, &argc)[1].len),
        RK_OK);
    g_replied = false;
    op_submit(g_m, op, flags, (struct route_quorum){0}, 0, 1);
    for (int i = 0; i < 10000 && !g_replied; i++) {
        drain();
        run();
        drain();
    }
    assert_true(g_replied);
    return g_reply;
}

/* The stored object of key k decoded into o (must exist). */
static void stored(const char *k, struct dvv_obj *o)
{
    struct entry *e = lookup(k, strlen(k), false);
    assert_non_null(e);
    assert_int_equal(dvv_decode(o, e->obj.base, e->obj.len), RK_OK);
}

/* Block i of the manifest stored under k: its store entry. */
static struct entry *block_of(const char *k, uint32_t i)
{
    struct dvv_obj o;
    dvv_init(&o);
    stored(k, &o);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].chunked);
    struct chunk_manifest m;
    assert_int_equal(
        chunk_manifest_decode(dvv_value(&o, 0), o.sibs[0].vlen, 1 << 20, &m),
        RK_OK);
    unsigned char key[CHUNK_KEY_LEN];
    chunk_block_key(&m, i, key);
    dvv_fini(&o);
    return lookup(key, sizeof(key), false);
}

static const char VAL[] = "0123456789abcdefghijklmnopqrstuvwxyzABCD"; /* 40 */

/* ---- tests -------------------------------------------------------------- */

static void test_chunk_manifest_round_trip_and_rejects(void **state)
{
    (void)state;
    unsigned char id[CHUNK_ID_LEN];
    for (int i = 0; i < CHUNK_ID_LEN; i++) {
        id[i] = (unsigned char)i;
    }
    uint64_t h[3] = {1, 2, 3};
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(chunk_manifest_encode(11, 5, id, h, &b), RK_OK);
    assert_int_equal(b.len, CHUNK_MANIFEST_HDR + 3 * 8);
    struct chunk_manifest m;
    assert_int_equal(chunk_manifest_decode(b.base, b.len, 100, &m), RK_OK);
    assert_int_equal(m.total, 11);
    assert_int_equal(m.n_blocks, 3);
    assert_int_equal(chunk_block_len(&m, 0), 5);
    assert_int_equal(chunk_block_len(&m, 2), 1);
    assert_int_equal(chunk_block_hash(&m, 1), 2);
    /* over the bound, truncated, a wrong count, a bad magic */
    assert_int_equal(chunk_manifest_decode(b.base, b.len, 10, &m), RK_ECORRUPT);
    assert_int_equal(chunk_manifest_decode(b.base, b.len - 1, 100, &m),
                     RK_ECORRUPT);
    b.base[20] = 4;
    assert_int_equal(chunk_manifest_decode(b.base, b.len, 100, &m),
                     RK_ECORRUPT);
    b.base[20] = 3;
    b.base[0] = 'X';
    assert_int_equal(chunk_manifest_decode(b.base, b.len, 100, &m),
                     RK_ECORRUPT);
    assert_int_equal(chunk_manifest_encode(0, 5, id, h, &b), RK_EINVAL);
    rk_buf_fini(&b);
    unsigned char key[CHUNK_KEY_LEN];
    m.id[0] = 0xab;
    chunk_block_key(&m, 0x01020304, key);
    assert_true(chunk_key_is_reserved(key, sizeof(key)));
    assert_memory_equal(key + CHUNK_KEY_LEN - 4, "\x01\x02\x03\x04", 4);
    assert_false(chunk_key_is_reserved("\xffrkv", 4));
    assert_false(chunk_key_is_reserved("user", 4));
}

static void test_chunk_large_value_goes_as_blocks_and_reads_back(void **state)
{
    (void)state;
    char line[128];
    snprintf(line, sizeof(line), "set k %s", VAL);
    assert_string_equal(cmd(line), "OK");
    /* 8 blocks of 5 bytes, then the manifest: nothing over a block and
     * the manifest crossed the port */
    assert_int_equal(g_writes, 9);
    assert_int_equal(g_chunked_writes, 1);
    assert_true(g_max_vlen <= CHUNK_MANIFEST_HDR + 8 * 8);
    assert_true(g_max_inflight <= 8);
    struct entry *b3 = block_of("k", 3);
    assert_non_null(b3);
    size_t w0 = g_writes;
    assert_string_equal(cmd("get k"), VAL);
    assert_int_equal(g_writes, w0); /* a read writes nothing */
    assert_int_equal(g_reads, 1 + 8);
    /* GET's frame: the bulk reply around the value, moved not copied */
    char want[128];
    snprintf(want, sizeof(want), "$40\r\n%s\r\n", VAL);
    assert_string_equal(cmd("frame k"), want);
    const struct op_chunk_stats *st = op_machine_chunk_stats(g_m);
    assert_int_equal(st->values_stored, 1);
    assert_int_equal(st->bytes_stored, 40);
    assert_int_equal(st->values_fetched, 2);
}

static void test_chunk_value_at_the_threshold_is_not_chunked(void **state)
{
    (void)state;
    assert_string_equal(cmd("set k 0123456789abcdef"), "OK"); /* 16 */
    assert_int_equal(g_writes, 1);
    assert_int_equal(g_chunked_writes, 0);
    assert_string_equal(cmd("get k"), "0123456789abcdef");
    assert_string_equal(cmd("frame k"), "(copy)");
}

static void test_chunk_missing_or_damaged_block_fails_the_read(void **state)
{
    (void)state;
    char line[128];
    snprintf(line, sizeof(line), "set k %s", VAL);
    assert_string_equal(cmd(line), "OK");
    struct entry *b2 = block_of("k", 2);
    struct rk_buf keep;
    rk_buf_init(&keep);
    rk_buf_append(&keep, b2->obj.base, b2->obj.len);
    rk_buf_clear(&b2->obj); /* gone from the replicas read */
    const char *r = cmd("get k");
    assert_non_null(strstr(r, "-ERR chunk 2 of 8"));
    assert_non_null(strstr(r, "missing"));
    /* the bytes of another block under block 2's key: hash mismatch */
    struct entry *b5 = block_of("k", 5);
    rk_buf_append(&b2->obj, b5->obj.base, b5->obj.len);
    r = cmd("get k");
    assert_non_null(strstr(r, "-ERR chunk 2 of 8"));
    assert_non_null(strstr(r, "does not match"));
    rk_buf_clear(&b2->obj);
    rk_buf_append(&b2->obj, keep.base, keep.len);
    assert_string_equal(cmd("get k"), VAL);
    rk_buf_fini(&keep);
}

static void test_chunk_read_modify_write_of_a_chunked_value(void **state)
{
    (void)state;
    char line[128];
    snprintf(line, sizeof(line), "set k %s", VAL);
    assert_string_equal(cmd(line), "OK");
    size_t w0 = g_writes;
    assert_string_equal(cmd("append k XYZ"), "43");
    /* read the manifest and its 8 blocks, wrote 9 new blocks + manifest */
    assert_int_equal(g_writes - w0, 10);
    char want[64];
    snprintf(want, sizeof(want), "%sXYZ", VAL);
    assert_string_equal(cmd("get k"), want);
    /* shrinking it under the threshold writes a plain value */
    assert_string_equal(cmd("set k small"), "OK");
    struct dvv_obj o;
    dvv_init(&o);
    stored("k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_false(o.sibs[0].chunked);
    dvv_fini(&o);
    assert_string_equal(cmd("get k"), "small");
}

static void test_chunk_delete_of_a_chunked_value(void **state)
{
    (void)state;
    char line[128];
    snprintf(line, sizeof(line), "set k %s", VAL);
    assert_string_equal(cmd(line), "OK");
    size_t w0 = g_writes;
    /* read (manifest, blocks), then one tombstone: no block phase after
     * (the blocks go by the node's garbage collector, node_chunkgc.c) */
    assert_string_equal(cmd("del k"), "1");
    assert_int_equal(g_writes - w0, 1);
    assert_string_equal(cmd("get k"), "(nil)");
    assert_string_equal(cmd("del k"), "0");
}

static void test_chunk_versioned_commands_refuse_chunked_values(void **state)
{
    (void)state;
    char line[128];
    snprintf(line, sizeof(line), "set k %s", VAL);
    assert_string_equal(cmd(line), "OK");
    const char *r = cmd("getall k");
    assert_non_null(strstr(r, "-ERR the key holds a value stored in chunks"));
    snprintf(line, sizeof(line), "put j %s", VAL);
    r = cmd(line);
    assert_non_null(strstr(r, "-ERR RINGKV.PUT takes values up to 16 bytes"));
}

static void test_chunk_reserved_keys_are_refused(void **state)
{
    (void)state;
    struct resp_arg argv[2] = {{"get", 3},
                               {"\xff"
                                "rkv"
                                "\xff"
                                "bxyz",
                                9}};
    struct op *op = NULL;
    assert_int_equal(op_create(g_m, &g_c, NULL, 2, argv, &op), RK_OK);
    assert_int_equal(op_add_key(op, argv[1].ptr, argv[1].len), RK_OK);
    g_replied = false;
    op_submit(g_m, op, 0, (struct route_quorum){0}, 0, 1);
    drain();
    assert_true(g_replied);
    assert_non_null(strstr(g_reply, "-ERR keys that start with the bytes"));
    assert_int_equal(g_reads, 0);
}

/* Random GET/SET/APPEND/DEL over three keys, values around the threshold
 * (plain or chunked, either way round), against a model of what each key
 * holds: every reply is checked. */
static void test_chunk_random_commands_match_a_model(void **state)
{
    (void)state;
    char model[3][256];
    bool live[3] = {false, false, false};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int step = 0; step < 3000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = (int)(x % 3);
        int what = (int)((x >> 8) % 4);
        char key[4] = {'k', (char)('0' + k), 0, 0};
        char arg[64];
        size_t alen = (size_t)((x >> 16) % 30) + 1; /* 1..30: 16 splits */
        for (size_t i = 0; i < alen; i++) {
            arg[i] = (char)('a' + (x >> (20 + i % 40)) % 26);
        }
        arg[alen] = '\0';
        char line[400];
        const char *r;
        if (what == 0) {
            snprintf(line, sizeof(line), "get %s", key);
            r = cmd(line);
            assert_string_equal(r, live[k] ? model[k] : "(nil)");
        } else if (what == 1) {
            snprintf(line, sizeof(line), "set %s %s", key, arg);
            assert_string_equal(cmd(line), "OK");
            snprintf(model[k], sizeof(model[k]), "%s", arg);
            live[k] = true;
        } else if (what == 2) {
            size_t have = live[k] ? strlen(model[k]) : 0;
            if (have + alen >= 200) {
                continue;
            }
            snprintf(line, sizeof(line), "append %s %s", key, arg);
            r = cmd(line);
            char want[16];
            snprintf(want, sizeof(want), "%zu", have + alen);
            assert_string_equal(r, want);
            if (!live[k]) {
                model[k][0] = '\0';
            }
            strcat(model[k], arg);
            live[k] = true;
        } else {
            snprintf(line, sizeof(line), "del %s", key);
            assert_string_equal(cmd(line), live[k] ? "1" : "0");
            live[k] = false;
        }
    }
    const struct op_chunk_stats *st = op_machine_chunk_stats(g_m);
    assert_true(st->values_stored > 100); /* chunking was exercised */
    assert_true(st->values_fetched > 100);
}

static int setup_big(void **state)
{
    g_block = 8192;
    int rc = setup(state);
    g_block = BLOCK;
    return rc;
}

static void test_chunk_owned_command_bytes_are_viewed(void **state)
{
    (void)state;
    /* the driver's donated input: "set" NUL "k" NUL value NUL */
    size_t vlen = 64 * 1024 + 3; /* over OP_KEEP_BYTES: viewed */
    char *owned = malloc(6 + vlen + 1);
    memcpy(owned, "set\0k\0", 6);
    for (size_t i = 0; i < vlen; i++) {
        owned[6 + i] = (char)('a' + i % 26);
    }
    owned[6 + vlen] = '\0';
    struct resp_arg argv[3] = {{owned, 3}, {owned + 4, 1}, {owned + 6, vlen}};
    struct op *op = NULL;
    assert_int_equal(
        op_create_owned(g_m, &g_c, NULL, 3, argv, owned, 6 + vlen + 1, &op),
        RK_OK);
    assert_int_equal(op_add_key(op, "k", 1), RK_OK);
    g_replied = false;
    op_submit(g_m, op, OP_F_BLIND, (struct route_quorum){0}, 0, 1);
    for (int i = 0; i < 100000 && !g_replied; i++) {
        drain();
        run();
        drain();
    }
    assert_string_equal(g_reply, "OK");
    /* 9 blocks of at most 8 KiB, then the manifest */
    assert_int_equal(g_writes, 9 + 1);
    assert_true(g_max_vlen <= 8192);
    assert_non_null(block_of("k", 8));
    /* read back equal */
    struct resp_arg gv[2] = {{"get", 3}, {"k", 1}};
    assert_int_equal(op_create(g_m, &g_c, NULL, 2, gv, &op), RK_OK);
    assert_int_equal(op_add_key(op, "k", 1), RK_OK);
    g_replied = false;
    op_submit(g_m, op, 0, (struct route_quorum){0}, 0, 1);
    for (int i = 0; i < 1000 && !g_replied; i++) {
        drain();
        run();
        drain();
    }
    assert_true(g_replied);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_manifest_round_trip_and_rejects),
        cmocka_unit_test_setup_teardown(
            test_chunk_large_value_goes_as_blocks_and_reads_back, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_chunk_value_at_the_threshold_is_not_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_chunk_missing_or_damaged_block_fails_the_read, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_chunk_read_modify_write_of_a_chunked_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_delete_of_a_chunked_value,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_chunk_random_commands_match_a_model, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_chunk_versioned_commands_refuse_chunked_values, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_chunk_reserved_keys_are_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_chunk_owned_command_bytes_are_viewed, setup_big, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

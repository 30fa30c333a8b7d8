/*
 * test_replica_counter.c - cluster/replica: counters at a replica (issue
 * 16): KV_UPDATE with PEER_KV_COUNTER adds to the replica's own counter
 * state (once per id, refused for a value that is not an integer or an
 * overflow, a one-shot actor at a fallback), a plain write over counter
 * siblings carries their counts on as a reset, and a write with
 * PEER_KV_COUNTER_STATE (a context write whose coordinator saw counter
 * siblings this replica may lack) carries the counts it brings on too.
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "cluster/types/counter.h"
#include "common/buf.h"
#include "common/endian.h"
#include "common/error.h"
#include "proto/peer.h"
#include "storage/engine.h"

#define ACTOR 7

struct fx
{
    struct engine *e;
    uint64_t floor, oneshot;
    struct replica_stats stats;
    struct replica_recent recent;
    struct replica_cfg cfg;
};

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = "unused";
    char err[128];
    assert_int_equal(engine_open("memory", &o, &f->e, err, sizeof(err)), RK_OK);
    f->cfg = (struct replica_cfg){
        .actor = ACTOR,
        .floor = &f->floor,
        .oneshot = &f->oneshot,
        .grace_ms = REPLICA_DEFAULT_GRACE_MS,
        .stats = &f->stats,
        .recent = &f->recent,
        .now_ms = 1000,
    };
    return f;
}

static void fx_free(struct fx *f)
{
    engine_close(f->e);
    free(f);
}

/* A KV_UPDATE: status, and the stored object into o (may be NULL). */
static int kv_update(struct fx *f,
                     const char *key,
                     const void *val,
                     size_t vlen,
                     const struct rk_buf *ctx,
                     uint64_t ts,
                     uint32_t flags,
                     struct dvv_obj *o)
{
    struct peer_kv_update u = {
        .req_id = 1,
        .key = {key, strlen(key)},
        .value = {val, vlen},
        .timestamp = ts,
        .flags = flags,
    };
    if (ctx) {
        u.context = (struct peer_bytes){ctx->base, ctx->len};
    }
    struct rk_buf out;
    rk_buf_init(&out);
    struct peer_msg reply;
    uint64_t seq = 0;
    replica_handle_update(f->e, &f->cfg, &u, &out, &reply, &seq);
    int rc = reply.kv_update_reply.status;
    if (rc == RK_OK && o) {
        assert_int_equal(dvv_decode(o, out.base, out.len), RK_OK);
    }
    rk_buf_fini(&out);
    return rc;
}

static int incr(struct fx *f,
                const char *key,
                int64_t d,
                uint64_t id,
                uint64_t ts,
                uint32_t more)
{
    unsigned char add[PEER_KV_COUNTER_LEN] = {0};
    rk_put_le64(add, (uint64_t)d);
    rk_put_le64(add + 8, id);
    return kv_update(f, key, add, sizeof(add), NULL, ts,
                     PEER_KV_COUNTER | PEER_KV_OWN_CONTEXT | more, NULL);
}

/* What a read of key at this replica returns ("" when nothing). */
static const char *value_of(struct fx *f, const char *key, char *buf)
{
    struct dvv_obj o;
    dvv_init(&o);
    buf[0] = '\0';
    int rc = replica_read(f->e, key, strlen(key), &o);
    if (rc == RK_OK) {
        struct counter st;
        counter_init(&st);
        struct counter_view v;
        assert_int_equal(counter_resolve(&o, 1000, &st, &v), RK_OK);
        if (v.kind == COUNTER_VIEW_VALUE) {
            memcpy(buf, v.val, v.vlen);
            buf[v.vlen] = '\0';
        } else if (v.kind == COUNTER_VIEW_PLAIN) {
            size_t len;
            const char *p = dvv_payload(&o, v.idx, &len);
            memcpy(buf, p, len);
            buf[len] = '\0';
        }
        counter_fini(&st);
    } else {
        assert_int_equal(rc, RK_ENOTFOUND);
    }
    dvv_fini(&o);
    return buf;
}

static void test_replica_counter_increments_once_per_id(void **st)
{
    (void)st;
    struct fx *f = fx_new();
    char buf[64];
    assert_int_equal(incr(f, "k", 5, 1, 10, 0), RK_OK);
    assert_int_equal(incr(f, "k", -2, 2, 11, 0), RK_OK);
    assert_string_equal(value_of(f, "k", buf), "3");
    /* a duplicated frame (same id) is applied once */
    assert_int_equal(incr(f, "k", -2, 2, 11, 0), RK_OK);
    assert_string_equal(value_of(f, "k", buf), "3");
    /* one sibling, under this replica's actor, counting p 5 n 2 */
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(replica_read(f->e, "k", 1, &o), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].counter);
    assert_int_equal(o.sibs[0].dot.actor, ACTOR);
    struct counter c;
    counter_init(&c);
    assert_int_equal(counter_decode(&c, dvv_value(&o, 0), o.sibs[0].vlen),
                     RK_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.e[0].actor, ACTOR);
    assert_int_equal(c.e[0].p, 5);
    assert_int_equal(c.e[0].n, 2);
    /* a fallback counts under a one-shot actor of its own */
    assert_int_equal(incr(f, "k", 4, 3, 12, PEER_KV_FALLBACK), RK_OK);
    assert_string_equal(value_of(f, "k", buf), "7");
    assert_int_equal(replica_read(f->e, "k", 1, &o), RK_OK);
    assert_int_equal(counter_decode(&c, dvv_value(&o, 0), o.sibs[0].vlen),
                     RK_OK);
    assert_int_equal(c.n, 2);
    assert_int_not_equal(o.sibs[0].dot.actor, ACTOR);
    /* more fallback increments while it holds the key: the same entry
     * (not one per increment), each write still a one-shot dot */
    uint64_t first_dot = o.sibs[0].dot.actor;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(incr(f, "k", 1, 100 + (uint64_t)i, 20 + (uint64_t)i,
                              PEER_KV_FALLBACK),
                         RK_OK);
    }
    assert_string_equal(value_of(f, "k", buf), "57");
    assert_int_equal(replica_read(f->e, "k", 1, &o), RK_OK);
    assert_int_equal(counter_decode(&c, dvv_value(&o, 0), o.sibs[0].vlen),
                     RK_OK);
    assert_int_equal(c.n, 2);
    assert_int_not_equal(o.sibs[0].dot.actor, first_dot);
    counter_fini(&c);
    dvv_fini(&o);
    fx_free(f);
}

static void test_replica_counter_refuses_what_is_not_an_integer(void **st)
{
    (void)st;
    struct fx *f = fx_new();
    char buf[64];
    assert_int_equal(
        kv_update(f, "s", "abc", 3, NULL, 10, PEER_KV_OWN_CONTEXT, NULL),
        RK_OK);
    uint64_t writes = f->stats.updates;
    assert_int_equal(incr(f, "s", 1, 1, 11, 0), RK_ERANGE);
    assert_string_equal(value_of(f, "s", buf), "abc");
    assert_int_equal(f->stats.updates, writes);
    assert_int_equal(kv_update(f, "m", "9223372036854775807", 19, NULL, 12,
                               PEER_KV_OWN_CONTEXT, NULL),
                     RK_OK);
    assert_int_equal(incr(f, "m", 1, 2, 13, 0), RK_ERANGE);
    assert_int_equal(incr(f, "m", -1, 3, 14, 0), RK_OK);
    assert_string_equal(value_of(f, "m", buf), "9223372036854775806");
    /* malformed increments: no own context, wrong length, with flags */
    unsigned char add[PEER_KV_COUNTER_LEN] = {1};
    assert_int_equal(
        kv_update(f, "m", add, sizeof(add), NULL, 15, PEER_KV_COUNTER, NULL),
        RK_EINVAL);
    assert_int_equal(kv_update(f, "m", add, 8, NULL, 15,
                               PEER_KV_COUNTER | PEER_KV_OWN_CONTEXT, NULL),
                     RK_EINVAL);
    assert_int_equal(
        kv_update(f, "m", add, sizeof(add), NULL, 15,
                  PEER_KV_COUNTER | PEER_KV_OWN_CONTEXT | PEER_KV_TOMBSTONE,
                  NULL),
        RK_EINVAL);
    assert_string_equal(value_of(f, "m", buf), "9223372036854775806");
    fx_free(f);
}

static void test_replica_plain_write_over_counter_carries_its_counts(void **st)
{
    (void)st;
    struct fx *f = fx_new();
    char buf[64];
    assert_int_equal(incr(f, "k", 10, 1, 10, 0), RK_OK);
    /* SET k 100 here: a counter sibling whose base is "100" and whose
     * floors saw the 10 */
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(
        kv_update(f, "k", "100", 3, NULL, 11, PEER_KV_OWN_CONTEXT, &o), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].counter);
    assert_string_equal(value_of(f, "k", buf), "100");
    assert_int_equal(incr(f, "k", 1, 2, 12, 0), RK_OK);
    assert_string_equal(value_of(f, "k", buf), "101");
    /* DEL: a tombstone that carries the counts */
    assert_int_equal(kv_update(f, "k", NULL, 0, NULL, 13,
                               PEER_KV_OWN_CONTEXT | PEER_KV_TOMBSTONE, &o),
                     RK_OK);
    assert_true(o.sibs[0].tombstone && o.sibs[0].counter);
    assert_true(o.sibs[0].vlen > 0);
    assert_string_equal(value_of(f, "k", buf), "");
    struct engine_meta m;
    assert_int_equal(engine_get(f->e, "k", 1, NULL, &m), RK_OK);
    assert_true(replica_meta_is_tombstone(&m)); /* reapable as before */
    assert_int_equal(incr(f, "k", 2, 3, 14, 0), RK_OK);
    assert_string_equal(value_of(f, "k", buf), "2");
    dvv_fini(&o);
    fx_free(f);
}

static void test_replica_counter_state_write_carries_counts_it_lacks(void **st)
{
    (void)st;
    struct fx *f = fx_new();
    char buf[64];
    /* elsewhere: actor 50 counted 30 on "k" (a sibling this replica never
     * received); a coordinator read it and writes "7" with its context */
    struct dvv_obj far;
    dvv_init(&far);
    struct counter c;
    counter_init(&c);
    assert_int_equal(counter_add(&c, 50, 1, 30), RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(counter_encode(&c, &b), RK_OK);
    struct dvv_write w = {
        .value = b.base, .vlen = b.len, .ts = 5, .counter = true};
    assert_int_equal(dvv_update(&far, NULL, 50, 0, &w, NULL), RK_OK);
    struct rk_buf ctx;
    rk_buf_init(&ctx);
    struct dvv_obj clk;
    dvv_init(&clk);
    dvv_copy(&clk, &far);
    clk.n_sibs = 0;
    assert_int_equal(dvv_encode(&clk, &ctx), RK_OK);
    /* the state the coordinator sends: the counts, reset to "7" */
    assert_int_equal(counter_reset(&c, 6, 0, true, "7", 1), RK_OK);
    rk_buf_clear(&b);
    assert_int_equal(counter_encode(&c, &b), RK_OK);
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(
        kv_update(f, "k", b.base, b.len, &ctx, 6, PEER_KV_COUNTER_STATE, &o),
        RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].counter);
    assert_string_equal(value_of(f, "k", buf), "7");
    /* actor 50's counts went on: a copy of it that was concurrent with
     * the write (30 + 4 more) adds only the 4 this write did not see */
    struct counter c2;
    counter_init(&c2);
    assert_int_equal(counter_add(&c2, 50, 1, 34), RK_OK);
    rk_buf_clear(&b);
    assert_int_equal(counter_encode(&c2, &b), RK_OK);
    struct dvv_obj conc;
    dvv_init(&conc);
    dvv_copy(&conc, &far);
    struct dvv_write w2 = {
        .value = b.base, .vlen = b.len, .ts = 7, .counter = true};
    assert_int_equal(dvv_update(&conc, &conc, 50, 0, &w2, NULL), RK_OK);
    struct dvv_obj stored;
    dvv_init(&stored);
    assert_int_equal(replica_read(f->e, "k", 1, &stored), RK_OK);
    assert_int_equal(dvv_merge_into(&stored, &conc), RK_OK);
    struct counter st2;
    counter_init(&st2);
    struct counter_view v;
    assert_int_equal(counter_resolve(&stored, 0, &st2, &v), RK_OK);
    assert_int_equal(v.kind, COUNTER_VIEW_VALUE);
    assert_string_equal(v.num, "11");
    /* a state whose base does not match the write is refused */
    assert_int_equal(
        kv_update(f, "k", b.base, b.len, &ctx, 8, PEER_KV_COUNTER_STATE, NULL),
        RK_EINVAL); /* c2 has no base */
    assert_int_equal(
        kv_update(f, "k", "junk", 4, &ctx, 8, PEER_KV_COUNTER_STATE, NULL),
        RK_EINVAL);
    counter_fini(&st2);
    counter_fini(&c2);
    counter_fini(&c);
    dvv_fini(&stored);
    dvv_fini(&conc);
    dvv_fini(&o);
    dvv_fini(&clk);
    dvv_fini(&far);
    rk_buf_fini(&b);
    rk_buf_fini(&ctx);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_counter_increments_once_per_id),
        cmocka_unit_test(test_replica_counter_refuses_what_is_not_an_integer),
        cmocka_unit_test(
            test_replica_plain_write_over_counter_carries_its_counts),
        cmocka_unit_test(
            test_replica_counter_state_write_carries_counts_it_lacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

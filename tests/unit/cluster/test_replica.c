/*
 * test_replica.c - cluster/replica: last-writer-wins application of
 * KV_PUT, tombstones stored as flagged records, and KV_GET answers, over
 * the memory engine (issue 4 item 5; R1-R3 of replica.h).
 *
 * The order-independence test applies the same set of writes in many
 * random orders (with repetitions) under fixed seeds and requires the same
 * final engine state every time, equal to the maximum by
 * replica_version_cmp.  RK_REPLICA_SEED=<n> replays one seed.
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

#include "cluster/replica.h"
#include "common/buf.h"
#include "common/error.h"
#include "storage/engine.h"

static struct engine *open_memory(void)
{
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = "unused";
    struct engine *e = NULL;
    char err[256];
    assert_int_equal(engine_open("memory", &o, &e, err, sizeof(err)), RK_OK);
    return e;
}

static struct peer_kv_put mk_put(const char *key,
                                 const char *val,
                                 uint64_t ts,
                                 uint64_t expire_at_ms,
                                 bool tomb)
{
    struct peer_kv_put p;
    memset(&p, 0, sizeof(p));
    p.req_id = 1;
    p.key.ptr = key;
    p.key.len = strlen(key);
    if (!tomb && val != NULL) {
        p.value.ptr = val;
        p.value.len = strlen(val);
    }
    p.timestamp = ts;
    p.expire_at_ms = tomb ? 0 : expire_at_ms;
    p.flags = tomb ? PEER_KV_TOMBSTONE : 0;
    return p;
}

static bool apply(struct engine *e, const struct peer_kv_put *p)
{
    bool applied = true;
    assert_int_equal(replica_apply_put(e, p, &applied, NULL), RK_OK);
    return applied;
}

/* Asserts the stored version of key: a value, or a tombstone (val NULL). */
static void expect(struct engine *e,
                   const char *key,
                   const char *val,
                   uint64_t ts)
{
    struct rk_buf b;
    rk_buf_init(&b);
    struct replica_version v;
    assert_int_equal(replica_get(e, key, strlen(key), &b, &v), RK_OK);
    assert_int_equal(v.timestamp, ts);
    if (val == NULL) {
        assert_true(v.tombstone);
        assert_int_equal(v.vlen, 0);
        assert_int_equal(v.expire_at_ms, 0);
    } else {
        assert_false(v.tombstone);
        assert_int_equal(v.vlen, strlen(val));
        assert_memory_equal(v.value, val, v.vlen);
    }
    rk_buf_fini(&b);
}

static void test_replica_get_after_put(void **st)
{
    (void)st;
    struct engine *e = open_memory();
    struct rk_buf b;
    rk_buf_init(&b);
    struct replica_version v;
    assert_int_equal(replica_get(e, "k", 1, &b, &v), RK_ENOTFOUND);
    struct peer_kv_put p = mk_put("k", "hello", 10, 123456, false);
    uint64_t seq = 0;
    bool applied = false;
    assert_int_equal(replica_apply_put(e, &p, &applied, &seq), RK_OK);
    assert_true(applied);
    assert_true(seq > 0);
    assert_int_equal(replica_get(e, "k", 1, &b, &v), RK_OK);
    assert_int_equal(v.vlen, 5);
    assert_memory_equal(v.value, "hello", 5);
    assert_int_equal(v.timestamp, 10);
    assert_int_equal(v.expire_at_ms, 123456);
    assert_false(v.tombstone);
    /* An empty value is a value, not a tombstone. */
    p = mk_put("e", "", 11, 0, false);
    assert_true(apply(e, &p));
    expect(e, "e", "", 11);
    rk_buf_fini(&b);
    engine_close(e);
}

static void test_replica_handles_messages(void **st)
{
    (void)st;
    struct engine *e = open_memory();
    struct peer_msg reply;
    struct peer_kv_put p = mk_put("k", "v1", 10, 0, false);
    p.req_id = 77;
    uint64_t seq = 0;
    replica_handle_put(e, &p, &reply, &seq);
    assert_int_equal(reply.type, PEER_KV_PUT_REPLY);
    assert_int_equal(reply.kv_put_reply.req_id, 77);
    assert_int_equal(reply.kv_put_reply.status, RK_OK);
    assert_true(seq > 0);
    /* A losing write is acknowledged (R2) but writes nothing. */
    struct peer_kv_put old = mk_put("k", "v0", 5, 0, false);
    replica_handle_put(e, &old, &reply, &seq);
    assert_int_equal(reply.kv_put_reply.status, RK_OK);
    assert_int_equal(seq, 0);
    struct peer_kv_get g;
    memset(&g, 0, sizeof(g));
    g.req_id = 78;
    g.key.ptr = "k";
    g.key.len = 1;
    struct rk_buf b;
    rk_buf_init(&b);
    replica_handle_get(e, &g, &b, &reply);
    assert_int_equal(reply.type, PEER_KV_GET_REPLY);
    const struct peer_kv_get_reply *r = &reply.kv_get_reply;
    assert_int_equal(r->req_id, 78);
    assert_int_equal(r->status, RK_OK);
    assert_int_equal(r->value.len, 2);
    assert_memory_equal(r->value.ptr, "v1", 2);
    assert_int_equal(r->timestamp, 10);
    assert_int_equal(r->flags, 0);
    /* Deleted: the reply is a tombstone with its timestamp. */
    struct peer_kv_put del = mk_put("k", NULL, 20, 0, true);
    replica_handle_put(e, &del, &reply, NULL);
    assert_int_equal(reply.kv_put_reply.status, RK_OK);
    replica_handle_get(e, &g, &b, &reply);
    assert_int_equal(r->status, RK_OK);
    assert_int_equal(r->flags, PEER_KV_TOMBSTONE);
    assert_int_equal(r->value.len, 0);
    assert_int_equal(r->expire_at_ms, 0);
    assert_int_equal(r->timestamp, 20);
    g.key.ptr = "nope";
    g.key.len = 4;
    replica_handle_get(e, &g, &b, &reply);
    assert_int_equal(r->status, RK_ENOTFOUND);
    /* Errors travel in the reply. */
    struct peer_kv_put bad = mk_put("k", "v", 30, 0, false);
    bad.flags = 0x2;
    replica_handle_put(e, &bad, &reply, NULL);
    assert_int_equal(reply.kv_put_reply.status, RK_EINVAL);
    g.key.len = 0;
    replica_handle_get(e, &g, &b, &reply);
    assert_int_equal(r->status, RK_EINVAL);
    rk_buf_fini(&b);
    engine_close(e);
}

static void test_replica_newer_wins_older_loses(void **st)
{
    (void)st;
    struct engine *e = open_memory();
    struct peer_kv_put a = mk_put("k", "a", 10, 0, false);
    struct peer_kv_put b = mk_put("k", "b", 20, 0, false);
    struct peer_kv_put c = mk_put("k", "c", 15, 0, false);
    assert_true(apply(e, &a));
    assert_true(apply(e, &b));
    assert_false(apply(e, &c)); /* older than b: lost, acknowledged */
    expect(e, "k", "b", 20);
    assert_false(apply(e, &b)); /* the same version again: idempotent */
    assert_false(apply(e, &a));
    expect(e, "k", "b", 20);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.writes, 2);
    engine_close(e);
}

static void test_replica_equal_timestamps_tie_break(void **st)
{
    (void)st;
    /* Either order leaves the larger value; a tombstone beats a value. */
    for (int order = 0; order < 2; order++) {
        struct engine *e = open_memory();
        struct peer_kv_put x = mk_put("k", "apple", 50, 0, false);
        struct peer_kv_put y = mk_put("k", "banana", 50, 0, false);
        apply(e, order ? &y : &x);
        apply(e, order ? &x : &y);
        expect(e, "k", "banana", 50);
        struct peer_kv_put t = mk_put("k", NULL, 50, 0, true);
        assert_true(apply(e, &t));
        assert_false(apply(e, &y));
        expect(e, "k", NULL, 50);
        engine_close(e);
    }
}

static void test_replica_tombstone_keeps_its_timestamp(void **st)
{
    (void)st;
    struct engine *e = open_memory();
    struct peer_kv_put put10 = mk_put("k", "v10", 10, 0, false);
    struct peer_kv_put del20 = mk_put("k", NULL, 20, 0, true);
    struct peer_kv_put put15 = mk_put("k", "v15", 15, 0, false);
    struct peer_kv_put put25 = mk_put("k", "v25", 25, 0, false);
    assert_true(apply(e, &put10));
    assert_true(apply(e, &del20));
    expect(e, "k", NULL, 20);
    /* A write older than the delete arrives late: the key stays deleted
       (with engine_delete the key would have come back). */
    assert_false(apply(e, &put15));
    expect(e, "k", NULL, 20);
    struct engine_meta m;
    assert_int_equal(engine_get(e, "k", 1, NULL, &m), RK_OK);
    assert_true(replica_meta_is_tombstone(&m));
    assert_true(m.expire_at_ms == REPLICA_TOMBSTONE_EXPIRE);
    assert_int_equal(m.value_len, 0);
    /* A newer write brings it back. */
    assert_true(apply(e, &put25));
    expect(e, "k", "v25", 25);
    assert_int_equal(engine_get(e, "k", 1, NULL, &m), RK_OK);
    assert_false(replica_meta_is_tombstone(&m));
    /* A delete of a key never seen is stored too, and orders later writes. */
    struct peer_kv_put d = mk_put("fresh", NULL, 40, 0, true);
    struct peer_kv_put p = mk_put("fresh", "late", 39, 0, false);
    assert_true(apply(e, &d));
    assert_false(apply(e, &p));
    expect(e, "fresh", NULL, 40);
    /* An older tombstone loses to a newer value. */
    struct peer_kv_put d2 = mk_put("k", NULL, 24, 0, true);
    assert_false(apply(e, &d2));
    expect(e, "k", "v25", 25);
    engine_close(e);
}

static void test_replica_rejects_malformed_writes(void **st)
{
    (void)st;
    struct engine *e = open_memory();
    struct peer_kv_put p = mk_put("k", "v", 1, 0, false);
    p.expire_at_ms = REPLICA_TOMBSTONE_EXPIRE; /* reserved */
    assert_int_equal(replica_apply_put(e, &p, NULL, NULL), RK_EINVAL);
    p = mk_put("k", NULL, 1, 0, true);
    p.value.ptr = "x";
    p.value.len = 1; /* a tombstone with a value */
    assert_int_equal(replica_apply_put(e, &p, NULL, NULL), RK_EINVAL);
    p = mk_put("k", NULL, 1, 0, true);
    p.expire_at_ms = 5; /* a tombstone with an expiry */
    assert_int_equal(replica_apply_put(e, &p, NULL, NULL), RK_EINVAL);
    p = mk_put("", "v", 1, 0, false);
    assert_int_equal(replica_apply_put(e, &p, NULL, NULL), RK_EINVAL);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.writes, 0);
    engine_close(e);
}

/* ---- order independence (R1) -------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

#define OI_KEYS   4
#define OI_WRITES 24
#define OI_ORDERS 40

static const char *const oi_keys[OI_KEYS] = {"a", "b", "c", "d"};
static const char *const oi_vals[] = {"", "x", "xy", "y", "yx"};

struct oi_write
{
    int key;
    struct peer_kv_put put;
};

/* Final state of every key, as one comparable string. */
static void oi_snapshot(struct engine *e, struct rk_buf *out)
{
    rk_buf_clear(out);
    struct rk_buf b;
    rk_buf_init(&b);
    for (int k = 0; k < OI_KEYS; k++) {
        struct replica_version v;
        int rc = replica_get(e, oi_keys[k], 1, &b, &v);
        if (rc == RK_ENOTFOUND) {
            assert_int_equal(rk_buf_appendf(out, "%s=none;", oi_keys[k]),
                             RK_OK);
            continue;
        }
        assert_int_equal(rc, RK_OK);
        assert_int_equal(
            rk_buf_appendf(out, "%s=%d:%" PRIu64 ":%" PRIu64 ":%.*s;",
                           oi_keys[k], (int)v.tombstone, v.timestamp,
                           v.expire_at_ms, (int)v.vlen, (const char *)v.value),
            RK_OK);
    }
    rk_buf_fini(&b);
}

static void oi_run(uint64_t seed)
{
    uint64_t rng = seed;
    struct oi_write w[OI_WRITES];
    for (int i = 0; i < OI_WRITES; i++) {
        int k = (int)(rng_next(&rng) % OI_KEYS);
        bool tomb = rng_next(&rng) % 4 == 0;
        const char *v = oi_vals[rng_next(&rng) % 5];
        uint64_t ts = 1 + rng_next(&rng) % 5; /* many ties */
        uint64_t exp = rng_next(&rng) % 3 == 0 ? 1000 + rng_next(&rng) % 2 : 0;
        w[i].key = k;
        w[i].put = mk_put(oi_keys[k], v, ts, exp, tomb);
    }
    /* The expected state: the maximum version of each key. */
    struct replica_version best[OI_KEYS];
    bool has[OI_KEYS] = {false};
    for (int i = 0; i < OI_WRITES; i++) {
        const struct peer_kv_put *p = &w[i].put;
        struct replica_version v = {
            .value = p->value.ptr,
            .vlen = p->value.len,
            .timestamp = p->timestamp,
            .expire_at_ms = p->expire_at_ms,
            .tombstone = (p->flags & PEER_KV_TOMBSTONE) != 0,
        };
        int k = w[i].key;
        if (!has[k] || replica_version_cmp(&v, &best[k]) > 0) {
            best[k] = v;
            has[k] = true;
        }
    }
    struct rk_buf first, snap;
    rk_buf_init(&first);
    rk_buf_init(&snap);
    int order[OI_WRITES * 2];
    for (int round = 0; round < OI_ORDERS; round++) {
        /* A random order of every write, some of them twice. */
        int n = 0;
        for (int i = 0; i < OI_WRITES; i++) {
            order[n++] = i;
            if (rng_next(&rng) % 4 == 0) {
                order[n++] = i;
            }
        }
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rng_next(&rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        struct engine *e = open_memory();
        for (int i = 0; i < n; i++) {
            struct peer_kv_put *p = &w[order[i]].put;
            assert_int_equal(replica_apply_put(e, p, NULL, NULL), RK_OK);
        }
        oi_snapshot(e, &snap);
        struct rk_buf b;
        rk_buf_init(&b);
        for (int k = 0; k < OI_KEYS; k++) {
            struct replica_version v;
            int rc = replica_get(e, oi_keys[k], 1, &b, &v);
            assert_int_equal(rc, has[k] ? RK_OK : RK_ENOTFOUND);
            if (has[k]) {
                assert_int_equal(replica_version_cmp(&v, &best[k]), 0);
            }
        }
        rk_buf_fini(&b);
        engine_close(e);
        if (round == 0) {
            assert_int_equal(rk_buf_append(&first, snap.base, snap.len), RK_OK);
        } else {
            assert_int_equal(snap.len, first.len);
            assert_memory_equal(snap.base, first.base, snap.len);
        }
    }
    printf("seed %" PRIu64 ": %d writes to %d keys in %d orders -> %.*s\n",
           seed, OI_WRITES, OI_KEYS, OI_ORDERS, (int)first.len, first.base);
    rk_buf_fini(&first);
    rk_buf_fini(&snap);
}

static void test_replica_lww_is_order_independent(void **st)
{
    (void)st;
    const char *env = getenv("RK_REPLICA_SEED");
    if (env != NULL) {
        oi_run(strtoull(env, NULL, 10));
        return;
    }
    for (uint64_t seed = 1; seed <= 25; seed++) {
        oi_run(seed);
    }
}

static void test_replica_version_cmp_is_a_total_order(void **st)
{
    (void)st;
    uint64_t rng = 12345;
    enum
    {
        NV = 40
    };
    struct replica_version v[NV];
    for (int i = 0; i < NV; i++) {
        bool tomb = rng_next(&rng) % 4 == 0;
        const char *s = tomb ? "" : oi_vals[rng_next(&rng) % 5];
        v[i] = (struct replica_version){
            .value = s,
            .vlen = strlen(s),
            .timestamp = rng_next(&rng) % 3,
            .expire_at_ms = tomb ? 0 : (rng_next(&rng) % 3) * 500,
            .tombstone = tomb,
        };
    }
    for (int a = 0; a < NV; a++) {
        assert_int_equal(replica_version_cmp(&v[a], &v[a]), 0);
        for (int b = 0; b < NV; b++) {
            int ab = replica_version_cmp(&v[a], &v[b]);
            int ba = replica_version_cmp(&v[b], &v[a]);
            assert_int_equal(ab, -ba); /* antisymmetric */
            for (int c = 0; c < NV; c++) {
                int bc = replica_version_cmp(&v[b], &v[c]);
                if (ab <= 0 && bc <= 0) { /* transitive */
                    assert_true(replica_version_cmp(&v[a], &v[c]) <= 0);
                }
            }
        }
    }
    /* No expiry outlives any expiry (rule 4). */
    struct replica_version x = {.value = "v", .vlen = 1, .timestamp = 1};
    struct replica_version y = x;
    y.expire_at_ms = 99;
    assert_true(replica_version_cmp(&x, &y) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_get_after_put),
        cmocka_unit_test(test_replica_handles_messages),
        cmocka_unit_test(test_replica_newer_wins_older_loses),
        cmocka_unit_test(test_replica_equal_timestamps_tie_break),
        cmocka_unit_test(test_replica_tombstone_keeps_its_timestamp),
        cmocka_unit_test(test_replica_rejects_malformed_writes),
        cmocka_unit_test(test_replica_lww_is_order_independent),
        cmocka_unit_test(test_replica_version_cmp_is_a_total_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

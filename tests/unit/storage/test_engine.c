/*
 * test_engine.c - engine.h semantics, run against every engine kind
 * ("bitcask" and "memory"): put/get/delete/overwrite, binary keys and
 * values, empty values, limits, SCAN's guarantee under growth, clear, and
 * the keydir's bytes per key (printed).
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "common/alloc.h"
#include "storage_test.h"

struct fx
{
    const char *kind;
    char dir[256];
    struct engine *e;
};

static struct fx fx_bitcask = {.kind = "bitcask"};
static struct fx fx_memory = {.kind = "memory"};

static int setup(void **state)
{
    struct fx *f = *state;
    st_tmpdir(f->dir, sizeof(f->dir), "eng");
    f->e = st_open(f->kind, f->dir, NULL);
    return f->e ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    assert_int_equal(engine_close(f->e), RK_OK);
    f->e = NULL;
    st_rmrf(f->dir);
    return 0;
}

static void test_engine_put_get_delete_overwrite(void **state)
{
    struct engine *e = ((struct fx *)*state)->e;
    uint64_t s1 = 0, s2 = 0, s3 = 0;
    struct engine_meta m = {.timestamp = 42, .expire_at_ms = 0};
    assert_int_equal(engine_put(e, "k", 1, "v1", 2, &m, &s1), RK_OK);
    char *v = st_get(e, "k");
    assert_string_equal(v, "v1");
    free(v);
    m.timestamp = 43;
    m.expire_at_ms = 123456;
    assert_int_equal(engine_put(e, "k", 1, "value2", 6, &m, &s2), RK_OK);
    assert_true(s2 > s1);
    struct engine_meta got;
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(engine_get(e, "k", 1, &b, &got), RK_OK);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.base, "value2", 6);
    assert_int_equal(got.timestamp, 43);
    assert_int_equal(got.expire_at_ms, 123456);
    assert_int_equal(got.value_len, 6);
    rk_buf_fini(&b);
    assert_int_equal(engine_get(e, "k", 1, NULL, &got), RK_OK);
    assert_int_equal(engine_delete(e, "k", 1, 44, &s3), RK_OK);
    assert_true(s3 > s2);
    assert_int_equal(engine_get(e, "k", 1, NULL, NULL), RK_ENOTFOUND);
    uint64_t s4 = 777;
    assert_int_equal(engine_delete(e, "k", 1, 45, &s4), RK_ENOTFOUND);
    assert_int_equal(s4, 777);
    assert_int_equal(engine_get(e, "nope", 4, NULL, NULL), RK_ENOTFOUND);
    struct engine_stats st;
    engine_stats(e, &st);
    assert_int_equal(st.live_keys, 0);
    assert_int_equal(st.writes, 3);
}

static void test_engine_binary_keys_and_values_with_nuls(void **state)
{
    struct engine *e = ((struct fx *)*state)->e;
    const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'}, k3[] = {0};
    const char v1[] = {0, 0, 1, 0, (char)0xff};
    struct engine_meta m = {0};
    assert_int_equal(engine_put(e, k1, 3, v1, 5, &m, NULL), RK_OK);
    assert_int_equal(engine_put(e, k2, 3, "x", 1, &m, NULL), RK_OK);
    assert_int_equal(engine_put(e, k3, 1, v1, 5, &m, NULL), RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(engine_get(e, k1, 3, &b, NULL), RK_OK);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.base, v1, 5);
    rk_buf_clear(&b);
    assert_int_equal(engine_get(e, k2, 3, &b, NULL), RK_OK);
    assert_memory_equal(b.base, "x", 1);
    rk_buf_clear(&b);
    assert_int_equal(engine_get(e, "a", 1, &b, NULL), RK_ENOTFOUND);
    assert_int_equal(engine_get(e, k3, 1, &b, NULL), RK_OK);
    assert_int_equal(b.len, 5);
    rk_buf_fini(&b);
}

static void test_engine_empty_value_is_stored(void **state)
{
    struct engine *e = ((struct fx *)*state)->e;
    struct engine_meta m = {.timestamp = 9};
    assert_int_equal(engine_put(e, "empty", 5, "", 0, &m, NULL), RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    struct engine_meta got;
    assert_int_equal(engine_get(e, "empty", 5, &b, &got), RK_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(got.value_len, 0);
    assert_int_equal(got.timestamp, 9);
    rk_buf_fini(&b);
}

static void tweak_small_limits(struct engine_opts *o)
{
    o->max_key_len = 8;
    o->max_value_len = 16;
}

static void test_engine_oversized_key_or_value_is_rejected_unwritten(
    void **state)
{
    struct fx *f = *state;
    assert_int_equal(engine_close(f->e), RK_OK);
    f->e = st_open(f->kind, f->dir, tweak_small_limits);
    assert_non_null(f->e);
    struct engine_meta m = {0};
    char big[64];
    memset(big, 'x', sizeof(big));
    struct engine_stats before, after;
    engine_stats(f->e, &before);
    uint64_t seq = 99;
    assert_int_equal(engine_put(f->e, big, 9, "v", 1, &m, &seq), RK_ETOOBIG);
    assert_int_equal(engine_put(f->e, "k", 1, big, 17, &m, &seq), RK_ETOOBIG);
    assert_int_equal(engine_put(f->e, "", 0, "v", 1, &m, &seq), RK_EINVAL);
    assert_int_equal(seq, 99);
    engine_stats(f->e, &after);
    assert_int_equal(after.writes, before.writes);
    assert_int_equal(after.live_bytes, before.live_bytes);
    assert_int_equal(after.live_keys, 0);
    /* Exactly at the limits is fine. */
    assert_int_equal(engine_put(f->e, big, 8, big, 16, &m, &seq), RK_OK);
}

struct seen
{
    unsigned char *hits; /* per key id */
    size_t n;
    size_t calls;
};

static bool seen_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *meta)
{
    (void)meta;
    struct seen *s = data;
    char buf[32];
    assert_true(klen < sizeof(buf));
    memcpy(buf, key, klen);
    buf[klen] = '\0';
    unsigned long id = strtoul(buf + 1, NULL, 10);
    assert_true(id < s->n);
    s->hits[id]++;
    s->calls++;
    return true;
}

static void put_id(struct engine *e, unsigned long id)
{
    char k[32];
    int n = snprintf(k, sizeof(k), "k%lu", id);
    struct engine_meta m = {.timestamp = id};
    assert_int_equal(engine_put(e, k, (size_t)n, "v", 1, &m, NULL), RK_OK);
}

/* Redis SCAN guarantee (engine.h): keys present for the whole walk are
 * returned at least once while the table grows between calls. */
static void test_engine_scan_returns_every_key_while_growing(void **state)
{
    struct engine *e = ((struct fx *)*state)->e;
    const unsigned long base = 1000, extra = 20000;
    for (unsigned long i = 0; i < base; i++) {
        put_id(e, i);
    }
    struct seen s = {calloc(base + extra, 1), base + extra, 0};
    uint64_t cur = 0, next = 0;
    unsigned long added = base;
    int rounds = 0;
    do {
        assert_int_equal(engine_scan(e, cur, 10, seen_cb, &s, &next), RK_OK);
        cur = next;
        /* Grow by ~200 keys per call: several resizes mid-walk. */
        for (int j = 0; j < 200 && added < base + extra; j++) {
            put_id(e, added++);
        }
        rounds++;
    } while (cur != 0);
    for (unsigned long i = 0; i < base; i++) {
        assert_true(s.hits[i] >= 1);
    }
    printf("scan: rounds=%d calls=%zu keys_at_start=%lu keys_at_end=%lu\n",
           rounds, s.calls, base, added);
    /* A full walk without growth returns each key exactly once. */
    memset(s.hits, 0, s.n);
    s.calls = 0;
    cur = 0;
    do {
        assert_int_equal(engine_scan(e, cur, 100, seen_cb, &s, &next), RK_OK);
        cur = next;
    } while (cur != 0);
    for (unsigned long i = 0; i < added; i++) {
        assert_int_equal(s.hits[i], 1);
    }
    memset(s.hits, 0, s.n);
    assert_int_equal(engine_foreach(e, seen_cb, &s), RK_OK);
    for (unsigned long i = 0; i < added; i++) {
        assert_int_equal(s.hits[i], 1);
    }
    free(s.hits);
}

static void test_engine_scan_survives_shrink(void **state)
{
    struct engine *e = ((struct fx *)*state)->e;
    const unsigned long n = 5000;
    for (unsigned long i = 0; i < n; i++) {
        put_id(e, i);
    }
    struct seen s = {calloc(n, 1), n, 0};
    uint64_t cur = 0, next = 0;
    unsigned long del = n - 1;
    do {
        assert_int_equal(engine_scan(e, cur, 10, seen_cb, &s, &next), RK_OK);
        cur = next;
        /* Delete keys from the top: ids below 1000 stay all the time. */
        for (int j = 0; j < 100 && del >= 1000; j++, del--) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "k%lu", del);
            assert_int_equal(engine_delete(e, k, (size_t)kl, 1, NULL), RK_OK);
        }
    } while (cur != 0);
    for (unsigned long i = 0; i < 1000; i++) {
        assert_true(s.hits[i] >= 1);
    }
    free(s.hits);
}

static void test_engine_clear_removes_everything(void **state)
{
    struct engine *e = ((struct fx *)*state)->e;
    for (unsigned long i = 0; i < 100; i++) {
        put_id(e, i);
    }
    uint64_t seq = 0;
    assert_int_equal(engine_clear(e, &seq), RK_OK);
    assert_true(seq > 100);
    struct engine_stats st;
    engine_stats(e, &st);
    assert_int_equal(st.live_keys, 0);
    assert_int_equal(engine_get(e, "k1", 2, NULL, NULL), RK_ENOTFOUND);
    put_id(e, 7);
    assert_int_equal(engine_get(e, "k7", 2, NULL, NULL), RK_OK);
}

/* engine_expiring_keys follows every put, overwrite, delete and clear,
 * and (bitcask) is rebuilt by recovery: the active expiry cycle skips its
 * walk while it is 0 (docs/benchmarks.md, "Idle cost at 1M keys"). */
static void test_engine_expiring_keys_counts_keys_with_an_expiry(void **state)
{
    struct fx *f = *state;
    struct engine *e = f->e;
    struct engine_meta plain = {.timestamp = 1};
    struct engine_meta ttl = {.timestamp = 1, .expire_at_ms = 5000};
    assert_int_equal(engine_expiring_keys(e), 0);
    assert_int_equal(engine_put(e, "a", 1, "v", 1, &plain, NULL), RK_OK);
    assert_int_equal(engine_expiring_keys(e), 0);
    assert_int_equal(engine_put(e, "b", 1, "v", 1, &ttl, NULL), RK_OK);
    assert_int_equal(engine_put(e, "c", 1, "v", 1, &ttl, NULL), RK_OK);
    assert_int_equal(engine_expiring_keys(e), 2);
    /* overwrites: same size with and without an expiry, and other sizes */
    assert_int_equal(engine_put(e, "b", 1, "v", 1, &ttl, NULL), RK_OK);
    assert_int_equal(engine_put(e, "c", 1, "longer", 6, &plain, NULL), RK_OK);
    assert_int_equal(engine_expiring_keys(e), 1);
    assert_int_equal(engine_put(e, "a", 1, "v", 1, &ttl, NULL), RK_OK);
    assert_int_equal(engine_expiring_keys(e), 2);
    assert_int_equal(engine_delete(e, "a", 1, 2, NULL), RK_OK);
    assert_int_equal(engine_delete(e, "c", 1, 2, NULL), RK_OK);
    assert_int_equal(engine_delete(e, "zz", 2, 2, NULL), RK_ENOTFOUND);
    assert_int_equal(engine_expiring_keys(e), 1);
    if (strcmp(f->kind, "bitcask") == 0) {
        assert_int_equal(engine_close(e), RK_OK);
        f->e = e = st_open(f->kind, f->dir, NULL);
        assert_non_null(e);
        assert_int_equal(engine_expiring_keys(e), 1);
    }
    uint64_t seq = 0;
    assert_int_equal(engine_clear(e, &seq), RK_OK);
    assert_int_equal(engine_expiring_keys(e), 0);
}

static void test_engine_keydir_overhead_is_at_most_40_bytes_per_key(
    void **state)
{
    struct engine *e = ((struct fx *)*state)->e;
    const unsigned long n = 1000000; /* as in bench/engine_bench */
    char k[17];
    struct engine_meta m = {.timestamp = 1};
    for (unsigned long i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "key%013lu", i); /* 16-byte keys */
        assert_int_equal(engine_put(e, k, 16, "", 0, &m, NULL), RK_OK);
    }
    struct engine_stats st;
    engine_stats(e, &st);
    double per_key = (double)st.keydir_bytes / (double)n;
    double overhead = per_key - 16.0;
    printf(
        "keydir: engine=%s keys=%lu bytes=%llu bytes_per_key=%.1f "
        "overhead_per_key=%.1f (16-byte keys)\n",
        engine_kind(e), n, (unsigned long long)st.keydir_bytes, per_key,
        overhead);
    assert_true(overhead <= 40.0);
}

static void test_engine_rejects_bad_options_and_kind(void **state)
{
    (void)state;
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = "/tmp/rk-never-created";
    struct engine *e = NULL;
    char err[256];
    assert_int_equal(engine_open("nosuch", &o, &e, err, sizeof(err)),
                     RK_EINVAL);
    assert_non_null(strstr(err, "nosuch"));
    o.max_key_len = 0;
    assert_int_equal(engine_open("memory", &o, &e, err, sizeof(err)),
                     RK_EINVAL);
    assert_null(e);
    enum engine_sync_mode mode;
    uint32_t ms = 0;
    assert_int_equal(engine_parse_sync("always", &mode, &ms), RK_OK);
    assert_int_equal(mode, ENGINE_SYNC_ALWAYS);
    assert_int_equal(engine_parse_sync("every:250", &mode, &ms), RK_OK);
    assert_int_equal(mode, ENGINE_SYNC_EVERY);
    assert_int_equal(ms, 250);
    assert_int_equal(engine_parse_sync("everysec", &mode, &ms), RK_OK);
    assert_int_equal(ms, 1000);
    assert_int_equal(engine_parse_sync("none", &mode, &ms), RK_OK);
    assert_int_equal(mode, ENGINE_SYNC_NONE);
    assert_int_equal(engine_parse_sync("every:0", &mode, &ms), RK_EINVAL);
    assert_int_equal(engine_parse_sync("every:", &mode, &ms), RK_EINVAL);
    assert_int_equal(engine_parse_sync("every:86400001", &mode, &ms),
                     RK_EINVAL);
    assert_int_equal(engine_parse_sync("sometimes", &mode, &ms), RK_EINVAL);
}

/* ---- allocation failures (STYLE.md 1.7: fail the Nth allocation) ---- */

static void test_engine_failed_allocation_leaves_a_consistent_store(
    void **state)
{
    struct fx *f = *state;
    long n;
    for (n = 1;; n++) {
        assert_int_equal(engine_close(f->e), RK_OK);
        st_rmrf(f->dir);
        f->e = st_open(f->kind, f->dir, NULL);
        assert_non_null(f->e);
        struct fail_alloc fa = {0, n, 0};
        struct rk_allocator a = {&fa, fa_malloc, fa_calloc, fa_realloc,
                                 fa_free};
        bool present[400] = {false};
        rk_set_allocator(&a);
        for (unsigned long i = 0; i < 400; i++) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "k%lu", i);
            struct engine_meta m = {.timestamp = i};
            int rc = engine_put(f->e, k, (size_t)kl, "value", 5, &m, NULL);
            assert_true(rc == RK_OK || rc == RK_ENOMEM);
            present[i] = rc == RK_OK;
            if (i % 3 == 0 && present[i / 2]) {
                kl = snprintf(k, sizeof(k), "k%lu", i / 2);
                rc = engine_delete(f->e, k, (size_t)kl, i, NULL);
                assert_true(rc == RK_OK || rc == RK_ENOMEM);
                present[i / 2] = rc != RK_OK;
            }
        }
        rk_set_allocator(NULL);
        uint64_t live = 0;
        for (unsigned long i = 0; i < 400; i++) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "k%lu", i);
            struct rk_buf b;
            rk_buf_init(&b);
            int rc = engine_get(f->e, k, (size_t)kl, &b, NULL);
            assert_int_equal(rc, present[i] ? RK_OK : RK_ENOTFOUND);
            if (rc == RK_OK) {
                assert_memory_equal(b.base, "value", 5);
            }
            rk_buf_fini(&b);
            live += present[i];
        }
        struct engine_stats st;
        engine_stats(f->e, &st);
        assert_int_equal(st.live_keys, live);
        if (fa.failed == 0) {
            break; /* the whole script ran without hitting allocation n */
        }
    }
    printf("alloc faults: engine=%s allocations_failed_one_by_one=%ld\n",
           f->kind, n - 1);
}

#define BOTH(t)                                                                \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &fx_bitcask), \
        cmocka_unit_test_prestate_setup_teardown(t, setup, teardown,           \
                                                 &fx_memory)

int main(void)
{
    rk_log_set_level(RK_LOG_WARN);
    const struct CMUnitTest tests[] = {
        BOTH(test_engine_put_get_delete_overwrite),
        BOTH(test_engine_binary_keys_and_values_with_nuls),
        BOTH(test_engine_empty_value_is_stored),
        BOTH(test_engine_oversized_key_or_value_is_rejected_unwritten),
        BOTH(test_engine_scan_returns_every_key_while_growing),
        BOTH(test_engine_scan_survives_shrink),
        BOTH(test_engine_clear_removes_everything),
        BOTH(test_engine_expiring_keys_counts_keys_with_an_expiry),
        BOTH(test_engine_keydir_overhead_is_at_most_40_bytes_per_key),
        BOTH(test_engine_failed_allocation_leaves_a_consistent_store),
        cmocka_unit_test(test_engine_rejects_bad_options_and_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

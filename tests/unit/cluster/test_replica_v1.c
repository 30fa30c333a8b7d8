/*
 * test_replica_v1.c - cluster keys in a data directory of bitcask format
 * 1 (issue 11 item 3): before records had explicit flags, the replica
 * kept them in timestamp bits 63 (object), 62 (deleted), 61 (expiring)
 * and 60 (content type of a plain record).  A directory written that way
 * (by hand, as an older binary did: ../storage/bc_v1.h) must read the
 * same through the replica's functions under this build, and a write
 * stores the explicit form.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "../storage/bc_v1.h"
#include "../storage/storage_test.h"
#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "common/hlc.h"

#define OBJ      (UINT64_C(1) << 63)
#define DELETED  (UINT64_C(1) << 62)
#define EXPIRING (UINT64_C(1) << 61)
#define CTYPE    (UINT64_C(1) << 60)
#define MS(x)    ((uint64_t)(x) << 16) /* an HLC timestamp at x ms */

static char g_dir[256];

/* An object of one write by `actor` (a tombstone when val is NULL),
 * encoded into f as a format-1 record of `key` with timestamp `ts`. */
static void v1_object(struct v1_file *f,
                      const char *key,
                      uint64_t actor,
                      const char *val,
                      uint64_t hlc,
                      uint64_t exp,
                      uint64_t ts)
{
    struct dvv_obj o;
    dvv_init(&o);
    struct dvv_write w = {
        val, val ? strlen(val) : 0, hlc, exp, val == NULL, false, false, false};
    assert_int_equal(dvv_update(&o, NULL, actor, 0, &w, NULL), RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(dvv_encode(&o, &b), RK_OK);
    v1_record_n(f, key, b.base, b.len, ts, 0, 0);
    rk_buf_fini(&b);
    dvv_fini(&o);
}

static struct engine_meta meta_of(struct engine *e, const char *key)
{
    struct engine_meta m;
    assert_int_equal(engine_get(e, key, strlen(key), NULL, &m), RK_OK);
    assert_true(m.flags & ENGINE_FLAG_V1);
    return m;
}

static void test_replica_reads_format_1_flags_and_stores_explicit(void **st)
{
    (void)st;
    st_tmpdir(g_dir, sizeof(g_dir), "replv1");
    struct v1_file f;
    v1_begin(&f, UINT64_C(1) << 20, 1, 1);
    v1_object(&f, "live", 3, "a", MS(10), 0, OBJ | MS(10));
    v1_object(&f, "del", 3, NULL, MS(20), 0, OBJ | DELETED | MS(20));
    v1_object(&f, "exp", 3, "x", MS(30), 5000, OBJ | EXPIRING | MS(5000));
    v1_record(&f, "plain", "\x04textabc", CTYPE | 42, 0, 0);
    v1_record(&f, "old", "o", 43, 0, 0);
    v1_write(&f, g_dir, "data");
    struct engine *e = st_open("bitcask", g_dir, NULL);
    assert_non_null(e);

    struct engine_meta m = meta_of(e, "live"), c;
    assert_true(replica_meta_is_object(&m));
    assert_false(replica_meta_is_tombstone(&m));
    assert_false(replica_meta_is_dead(&m, UINT64_MAX >> 17));
    replica_meta_current(&m, &c);
    assert_int_equal(c.flags, REPLICA_FLAG_OBJECT);
    assert_true(c.timestamp == MS(10));
    assert_int_equal(c.type, OBJTYPE_STRING);
    replica_meta_current(&c, &c); /* idempotent */
    assert_int_equal(c.flags, REPLICA_FLAG_OBJECT);
    assert_true(c.timestamp == MS(10));

    m = meta_of(e, "del");
    assert_true(replica_meta_is_tombstone(&m));
    assert_true(replica_meta_is_dead(&m, 0));
    assert_false(replica_meta_is_reapable(&m, 19));
    assert_true(replica_meta_is_reapable(&m, 20));
    replica_meta_current(&m, &c);
    assert_int_equal(c.flags, REPLICA_FLAG_OBJECT | REPLICA_FLAG_DELETED);

    m = meta_of(e, "exp");
    assert_false(replica_meta_is_tombstone(&m));
    assert_false(replica_meta_is_dead(&m, 4999));
    assert_true(replica_meta_is_dead(&m, 5000));
    assert_false(replica_meta_is_reapable(&m, 4999));
    assert_true(replica_meta_is_reapable(&m, 5000));
    replica_meta_current(&m, &c);
    assert_int_equal(c.flags, REPLICA_FLAG_OBJECT | REPLICA_FLAG_EXPIRING);
    assert_true(c.timestamp == MS(5000));

    /* A standalone record with a content type: one sibling, its plain
     * HLC, the type split off. */
    m = meta_of(e, "plain");
    assert_false(replica_meta_is_object(&m));
    replica_meta_current(&m, &c);
    assert_int_equal(c.flags, REPLICA_FLAG_CTYPE);
    assert_true(c.timestamp == 42);
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(replica_read(e, "plain", 5, &o), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].ctype);
    assert_true(o.sibs[0].ts == 42);
    size_t n = 0;
    assert_memory_equal(dvv_payload(&o, 0, &n), "abc", 3);
    assert_int_equal(replica_read(e, "old", 3, &o), RK_OK);
    assert_false(o.sibs[0].ctype);
    assert_true(o.sibs[0].ts == 43);
    assert_int_equal(replica_read(e, "exp", 3, &o), RK_OK);
    assert_int_equal(o.sibs[0].expire_at_ms, 5000);

    /* A write over a format-1 object stores the explicit form. */
    assert_int_equal(replica_read(e, "live", 4, &o), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    uint64_t floor = 0, oneshot = 0;
    struct replica_cfg cfg = {.actor = 9, .floor = &floor, .oneshot = &oneshot};
    struct dvv_write w = {"b", 1, MS(11), 0, false, false, false, false};
    assert_int_equal(dvv_update(&o, &o, cfg.actor, floor, &w, NULL), RK_OK);
    assert_int_equal(replica_store(e, &cfg, "live", 4, &o, NULL), RK_OK);
    assert_int_equal(engine_get(e, "live", 4, NULL, &m), RK_OK);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT);
    assert_true(m.timestamp == MS(11));
    assert_int_equal(engine_close(e), RK_OK);

    /* ... and it survives a reopen next to the format-1 file. */
    e = st_open("bitcask", g_dir, NULL);
    assert_int_equal(engine_get(e, "live", 4, NULL, &m), RK_OK);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT);
    assert_true(m.timestamp == MS(11));
    m = meta_of(e, "del");
    assert_true(replica_meta_is_tombstone(&m));
    assert_int_equal(engine_close(e), RK_OK);
    dvv_fini(&o);
    st_rmrf(g_dir);
}

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_reads_format_1_flags_and_stores_explicit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

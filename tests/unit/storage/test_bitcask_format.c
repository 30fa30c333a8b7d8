/*
 * test_bitcask_format.c - format versions of bitcask data directories
 * (issue 11 item 3; docs/storage-format.md "Format versions"): records
 * carry explicit meta flags and a type (format 2); a directory of format
 * 1, written here by hand as an older binary did (bc_v1.h), is read with
 * ENGINE_FLAG_V1 and type 0, its timestamps untouched, from its data files
 * and its hint files; new writes go to a format-2 file, merge rewrites the
 * old records as format 2 keeping the mark; a file of a newer format is
 * refused with RK_EVERSION and a message that says what to do.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "bc_v1.h"
#include "storage/internal.h"
#include "storage_test.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    st_tmpdir(g_dir, sizeof(g_dir), "bcfmt");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_rmrf(g_dir);
    return 0;
}

#define ORDER1 (UINT64_C(1) << 20)
#define ORDER2 (UINT64_C(2) << 20)
#define OBJ    (UINT64_C(1) << 63) /* format-1 callers' flag bits */
#define DEL    (UINT64_C(1) << 62)

static void expect(struct engine *e,
                   const char *key,
                   const char *val,
                   uint64_t ts,
                   uint8_t flags,
                   uint8_t type)
{
    struct rk_buf b;
    rk_buf_init(&b);
    struct engine_meta m;
    int rc = engine_get(e, key, strlen(key), &b, &m);
    if (val == NULL) {
        assert_int_equal(rc, RK_ENOTFOUND);
        rk_buf_fini(&b);
        return;
    }
    assert_int_equal(rc, RK_OK);
    assert_int_equal(b.len, strlen(val));
    assert_memory_equal(b.base, val, b.len);
    assert_true(m.timestamp == ts);
    assert_int_equal(m.flags, flags);
    assert_int_equal(m.type, type);
    assert_int_equal(m.value_len, strlen(val));
    rk_buf_fini(&b);
}

/* Two format-1 data files: the first with a format-1 hint (so both the
 * hint and the scan path read format 1), the last without. */
static void write_v1_dir(void)
{
    struct v1_file d, h;
    v1_begin(&d, ORDER1, 1, 1);
    v1_begin(&h, ORDER1, 1, 2);
    const struct
    {
        const char *k, *v;
        uint64_t ts;
        uint8_t fl;
    } recs[] = {
        {"plain", "p1", 5, 0},
        {"obj", "o1", OBJ | DEL | 40, 0},
        {"gone", "g", 7, 0},
        {"gone", NULL, 8, V1_TOMB},
    };
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        size_t off =
            v1_record(&d, recs[i].k, recs[i].v, recs[i].ts, 0, recs[i].fl);
        size_t kl = strlen(recs[i].k);
        size_t vl = recs[i].v ? strlen(recs[i].v) : 0;
        unsigned char *e = h.buf + h.len; /* a format-1 hint entry */
        rk_put_le32(e, (uint32_t)off);
        rk_put_le32(e + 4, (uint32_t)vl);
        rk_put_le64(e + 8, recs[i].ts);
        rk_put_le64(e + 16, 0);
        rk_put_le32(e + 24, (uint32_t)kl);
        e[28] = recs[i].fl;
        memcpy(e + 29, recs[i].k, kl);
        h.len += 29 + kl;
    }
    rk_put_le64(h.buf + h.len, sizeof(recs) / sizeof(recs[0]));
    rk_put_le64(h.buf + h.len + 8, d.len);
    h.len += 16;
    rk_put_le64(h.buf + h.len, XXH3_64bits(h.buf, h.len));
    h.len += 8;
    v1_write(&d, g_dir, "data");
    v1_write(&h, g_dir, "hint");
    struct v1_file d2;
    v1_begin(&d2, ORDER2, 1, 1);
    v1_record(&d2, "plain", "p2", 9, 0, 0);
    v1_record(&d2, "exp", "x", OBJ | (UINT64_C(1) << 61) | 50, 0, 0);
    v1_record(&d2, "tmp", "t", 10, 0, 0); /* dead bytes: merged too */
    v1_record(&d2, "tmp", NULL, 11, 0, V1_TOMB);
    v1_write(&d2, g_dir, "data");
}

static void expect_v1_contents(struct engine *e)
{
    expect(e, "plain", "p2", 9, ENGINE_FLAG_V1, 0);
    expect(e, "obj", "o1", OBJ | DEL | 40, ENGINE_FLAG_V1, 0);
    expect(e, "exp", "x", OBJ | (UINT64_C(1) << 61) | 50, ENGINE_FLAG_V1, 0);
    expect(e, "gone", NULL, 0, 0, 0);
    expect(e, "new", "n", UINT64_MAX, 0x41, 3);
}

static void test_bitcask_format_1_dir_is_read_and_upgraded_by_merge(void **st)
{
    (void)st;
    write_v1_dir();
    struct engine *e = st_open("bitcask", g_dir, NULL);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.hint_fallbacks, 0); /* the format-1 hint was used */
    /* Writes go to a new format-2 file, never to the format-1 last file;
     * all 64 timestamp bits, the flags and the type are the caller's. */
    struct engine_meta m = {.timestamp = UINT64_MAX, .flags = 0x41, .type = 3};
    assert_int_equal(engine_put(e, "new", 3, "n", 1, &m, NULL), RK_OK);
    expect_v1_contents(e);
    assert_int_equal(v1_file_version(g_dir, ORDER2, "data"), 1);
    assert_int_equal(v1_file_version(g_dir, UINT64_C(3) << 20, "data"), 2);
    assert_int_equal(engine_close(e), RK_OK);

    /* Reopen: format-1 files (the second now with a format-2 hint written
     * by the background worker, or scanned) and the format-2 file. */
    e = st_open("bitcask", g_dir, NULL);
    expect_v1_contents(e);
    /* Merge rewrites every format-1 record as format 2, keeping the
     * mark, so the meta reads the same after the old files are gone. */
    assert_int_equal(engine_merge(e, true), RK_OK);
    engine_stats(e, &s);
    assert_int_equal(s.merges_done, 1);
    expect_v1_contents(e);
    assert_int_equal(engine_close(e), RK_OK); /* inputs deleted by then */
    assert_int_equal(v1_file_version(g_dir, ORDER1, "data"), -1);
    assert_int_equal(v1_file_version(g_dir, ORDER2, "data"), -1);
    assert_int_equal(v1_file_version(g_dir, ORDER2 + 1, "data"), 2);
    e = st_open("bitcask", g_dir, NULL);
    expect_v1_contents(e);
    /* An overwrite is plain format 2: no mark. */
    m = (struct engine_meta){.timestamp = 11, .flags = 0x01};
    assert_int_equal(engine_put(e, "obj", 3, "o2", 2, &m, NULL), RK_OK);
    expect(e, "obj", "o2", 11, 0x01, 0);
    assert_int_equal(engine_close(e), RK_OK);
}

/* What an older binary does with a newer directory is the same check: a
 * file of an unknown version is refused (RK_EVERSION), named, with what to
 * do, and never set aside as corrupt, even under repair. */
static void test_bitcask_newer_format_is_refused_with_what_to_do(void **st)
{
    (void)st;
    struct v1_file d;
    v1_begin(&d, ORDER1, 3, 1);
    v1_write(&d, g_dir, "data");
    for (int repair = 0; repair < 2; repair++) {
        struct engine_opts o;
        engine_opts_init(&o);
        o.dir = g_dir;
        o.repair = repair;
        struct engine *e = NULL;
        char err[512] = "";
        assert_int_equal(engine_open("bitcask", &o, &e, err, sizeof(err)),
                         RK_EVERSION);
        assert_null(e);
        assert_non_null(strstr(err, "0000000000100000.data"));
        assert_non_null(strstr(err, "data format version 3"));
        assert_non_null(strstr(err, "reads versions 1..2"));
        assert_non_null(strstr(err, "newer one"));
        assert_int_equal(v1_file_version(g_dir, ORDER1, "data"), 3);
    }
}

/* A format-1 hint never describes a format-2 data file (its entries lack
 * the flags): it is ignored and the data file scanned. */
static void test_bitcask_format_1_hint_over_format_2_file_is_ignored(void **st)
{
    (void)st;
    struct engine *e = st_open("bitcask", g_dir, NULL);
    struct engine_meta m = {.timestamp = 1, .flags = 0x05, .type = 2};
    assert_int_equal(engine_put(e, "k", 1, "v", 1, &m, NULL), RK_OK);
    assert_int_equal(engine_close(e), RK_OK);
    struct v1_file h;
    v1_begin(&h, ORDER1, 1, 2);
    uint64_t dsize = BC_FILE_HDR + BC_REC_HDR + 2;
    unsigned char *p = h.buf + h.len;
    rk_put_le32(p, BC_FILE_HDR);
    rk_put_le32(p + 4, 1);
    rk_put_le64(p + 8, 1);
    rk_put_le64(p + 16, 0);
    rk_put_le32(p + 24, 1);
    p[28] = 0;
    p[29] = 'k';
    h.len += 30;
    rk_put_le64(h.buf + h.len, 1);
    rk_put_le64(h.buf + h.len + 8, dsize);
    h.len += 16;
    rk_put_le64(h.buf + h.len, XXH3_64bits(h.buf, h.len));
    h.len += 8;
    v1_write(&h, g_dir, "hint");
    /* a later file so the hinted one is not the last */
    struct v1_file d;
    v1_begin(&d, ORDER2, 2, 1);
    v1_write(&d, g_dir, "data");
    e = st_open("bitcask", g_dir, NULL);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.hint_fallbacks, 1);
    expect(e, "k", "v", 1, 0x05, 2);
    assert_int_equal(engine_close(e), RK_OK);
}

/* The memory engine keeps flags and type too. */
static void test_memory_engine_keeps_flags_and_type(void **st)
{
    (void)st;
    struct engine *e = st_open("memory", NULL, NULL);
    struct engine_meta m = {.timestamp = UINT64_MAX, .flags = 0xff, .type = 7};
    assert_int_equal(engine_put(e, "k", 1, "v", 1, &m, NULL), RK_OK);
    expect(e, "k", "v", UINT64_MAX, 0xff, 7);
    engine_close(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        T(test_bitcask_format_1_dir_is_read_and_upgraded_by_merge),
        T(test_bitcask_newer_format_is_refused_with_what_to_do),
        T(test_bitcask_format_1_hint_over_format_2_file_is_ignored),
        T(test_memory_engine_keeps_flags_and_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_bitcask.c - persistence of the bitcask engine (issue 2, TESTING.md
 * B2): reopen, rollover, hint files vs full scan, torn tails at every
 * byte, flipped bits (reported with file and offset; repair), checksum
 * re-verification on read, the directory lock and file modes, sync=always
 * completion callbacks, I/O faults through a per-engine vfs (a failed
 * fsync is never acknowledged; the engine turns read-only), durable clear,
 * merges, and the randomized model test against a plain map.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/internal.h"
#include "storage/vfs.h"
#include "storage_test.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    st_tmpdir(g_dir, sizeof(g_dir), "bc");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_rmrf(g_dir);
    return 0;
}

static void tweak_small_files(struct engine_opts *o)
{
    o->max_file_size = 4096;
}

static struct engine *open_small(void)
{
    return st_open("bitcask", g_dir, tweak_small_files);
}

static void put_kv(struct engine *e, unsigned i, unsigned ver)
{
    char k[32], v[64];
    int kl = snprintf(k, sizeof(k), "key%05u", i);
    int vl = snprintf(v, sizeof(v), "value-%u-%u-xxxxxxxxxxxx", i, ver);
    struct engine_meta m = {.timestamp = ver, .expire_at_ms = 0};
    assert_int_equal(engine_put(e, k, (size_t)kl, v, (size_t)vl, &m, NULL),
                     RK_OK);
}

static void check_kv(struct engine *e, unsigned i, unsigned ver)
{
    char k[32], v[64];
    snprintf(k, sizeof(k), "key%05u", i);
    snprintf(v, sizeof(v), "value-%u-%u-xxxxxxxxxxxx", i, ver);
    char *got = st_get(e, k);
    if (ver == 0) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, v);
    free(got);
}

static void test_bitcask_reopen_keeps_puts_deletes_and_overwrites(void **st)
{
    (void)st;
    struct engine *e = st_open("bitcask", g_dir, NULL);
    assert_non_null(e);
    for (unsigned i = 0; i < 100; i++) {
        put_kv(e, i, 1);
    }
    for (unsigned i = 0; i < 100; i += 3) {
        put_kv(e, i, 2);
    }
    for (unsigned i = 1; i < 100; i += 5) {
        char k[32];
        int kl = snprintf(k, sizeof(k), "key%05u", i);
        assert_int_equal(engine_delete(e, k, (size_t)kl, 3, NULL), RK_OK);
    }
    assert_int_equal(engine_put(e, "empty", 5, "", 0, NULL, NULL), RK_OK);
    assert_int_equal(engine_close(e), RK_OK);
    e = st_open("bitcask", g_dir, NULL);
    assert_non_null(e);
    for (unsigned i = 0; i < 100; i++) {
        unsigned ver = (i % 5 == 1) ? 0 : (i % 3 == 0) ? 2 : 1;
        check_kv(e, i, ver);
    }
    char *v = st_get(e, "empty");
    assert_non_null(v);
    assert_string_equal(v, "");
    free(v);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.live_keys, 100 - 20 + 1);
    assert_int_equal(engine_close(e), RK_OK);
}

static void test_bitcask_rollover_spreads_records_over_files(void **st)
{
    (void)st;
    struct engine *e = open_small();
    for (unsigned i = 0; i < 1000; i++) {
        put_kv(e, i, 1);
    }
    struct engine_stats s;
    engine_stats(e, &s);
    assert_true(s.files > 10);
    for (unsigned i = 0; i < 1000; i++) {
        check_kv(e, i, 1);
    }
    assert_int_equal(engine_close(e), RK_OK);
    e = open_small();
    for (unsigned i = 0; i < 1000; i++) {
        check_kv(e, i, 1);
    }
    assert_int_equal(engine_close(e), RK_OK);
}

/* A canonical dump of the keydir: "key ts exp vlen value\n" sorted. */
struct dump
{
    struct engine *e;
    char **lines;
    size_t n, cap;
};

static bool dump_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *m)
{
    struct dump *d = data;
    struct rk_buf v;
    rk_buf_init(&v);
    assert_int_equal(engine_get(d->e, key, klen, &v, NULL), RK_OK);
    char *line = malloc(klen + v.len + 80);
    int n = snprintf(line, 80, "%" PRIu64 " %" PRIu64 " %" PRIu64 " ",
                     m->timestamp, m->expire_at_ms, m->value_len);
    memcpy(line + n, key, klen);
    line[n + klen] = '=';
    memcpy(line + n + klen + 1, v.base ? v.base : "", v.len);
    line[n + klen + 1 + v.len] = '\0';
    rk_buf_fini(&v);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->lines = realloc(d->lines, d->cap * sizeof(char *));
    }
    d->lines[d->n++] = line;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_engine(struct engine *e, struct dump *d)
{
    memset(d, 0, sizeof(*d));
    d->e = e;
    engine_foreach(e, dump_cb, d);
    qsort(d->lines, d->n, sizeof(char *), cmp_str);
}

static void dump_free(struct dump *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->lines[i]);
    }
    free(d->lines);
}

static void assert_dump_equal(struct dump *a, struct dump *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->lines[i], b->lines[i]);
    }
}

static void fill_mixed(struct engine *e)
{
    for (unsigned i = 0; i < 600; i++) {
        put_kv(e, i, 1);
    }
    for (unsigned i = 0; i < 600; i += 4) {
        put_kv(e, i, 2);
    }
    for (unsigned i = 0; i < 600; i += 7) {
        char k[32];
        int kl = snprintf(k, sizeof(k), "key%05u", i);
        engine_delete(e, k, (size_t)kl, 9, NULL);
    }
    struct engine_meta m = {.timestamp = 5, .expire_at_ms = 1234567};
    assert_int_equal(engine_put(e, "ttl", 3, "t", 1, &m, NULL), RK_OK);
}

static int count_files(const char *ext)
{
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *de;
    size_t el = strlen(ext);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > el && strcmp(de->d_name + l - el, ext) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Calls fn(path) on every file ending in ext; returns how many. */
static int each_file(const char *ext, void (*fn)(const char *path))
{
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *de;
    size_t el = strlen(ext);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > el && strcmp(de->d_name + l - el, ext) == 0) {
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", g_dir, de->d_name);
            fn(p);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void unlink_path(const char *p)
{
    unlink(p);
}

static int g_damaged;
static void damage_first_hint(const char *p)
{
    if (g_damaged++ == 0) {
        int fd = open(p, O_RDWR);
        unsigned char c;
        assert_int_equal(pread(fd, &c, 1, 40), 1);
        c ^= 0x10;
        assert_int_equal(pwrite(fd, &c, 1, 40), 1);
        close(fd);
    }
}

static void truncate_hint(const char *p)
{
    assert_int_equal(truncate(p, 30), 0);
}

static void test_bitcask_hint_startup_equals_full_scan(void **st)
{
    (void)st;
    struct engine *e = open_small();
    fill_mixed(e);
    struct dump live;
    dump_engine(e, &live);
    assert_int_equal(engine_close(e), RK_OK);
    int n_data = count_files(".data");
    int n_hint = count_files(".hint");
    assert_true(n_data > 5);
    assert_int_equal(n_hint, n_data - 1); /* all but the active file */

    e = open_small();
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.hint_fallbacks, 0);
    struct dump from_hints;
    dump_engine(e, &from_hints);
    assert_int_equal(engine_close(e), RK_OK);
    assert_dump_equal(&live, &from_hints);

    /* Missing hints: every immutable file is scanned, same keydir. */
    int removed = each_file(".hint", unlink_path);
    e = open_small();
    engine_stats(e, &s);
    assert_int_equal(s.hint_fallbacks, (uint64_t)removed);
    struct dump from_scan;
    dump_engine(e, &from_scan);
    assert_int_equal(engine_close(e), RK_OK);
    assert_dump_equal(&live, &from_scan);
    printf("hints: data_files=%d hints=%d fallbacks_without_hints=%" PRIu64
           "\n",
           n_data, n_hint, s.hint_fallbacks);
    dump_free(&from_scan);

    /* Damaged hint (bit flip / truncation): fallback, logged, counted. */
    g_damaged = 0;
    each_file(".hint", damage_first_hint);
    e = open_small();
    engine_stats(e, &s);
    assert_int_equal(s.hint_fallbacks, 1);
    dump_engine(e, &from_scan);
    assert_int_equal(engine_close(e), RK_OK);
    assert_dump_equal(&live, &from_scan);
    dump_free(&from_scan);

    each_file(".hint", truncate_hint);
    e = open_small();
    engine_stats(e, &s);
    assert_true(s.hint_fallbacks >= 1);
    dump_engine(e, &from_scan);
    assert_int_equal(engine_close(e), RK_OK);
    assert_dump_equal(&live, &from_scan);
    dump_free(&from_scan);
    dump_free(&live);
    dump_free(&from_hints);
}

/* ---- torn tails and flipped bits ---- */

#define TT_N    20
#define TT_KLEN 5
#define TT_VLEN 10
#define TT_REC  (BC_REC_HDR + TT_KLEN + TT_VLEN)
#define TT_FILE "0000000000100000.data"

static unsigned char *g_orig;
static size_t g_orig_len;

static void tt_make_original(void)
{
    struct engine *e = st_open("bitcask", g_dir, NULL);
    for (int i = 0; i < TT_N; i++) {
        char k[8], v[16];
        snprintf(k, sizeof(k), "k%04d", i);
        snprintf(v, sizeof(v), "v%09d", i);
        assert_int_equal(engine_put(e, k, TT_KLEN, v, TT_VLEN, NULL, NULL),
                         RK_OK);
    }
    assert_int_equal(engine_close(e), RK_OK);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", g_dir, TT_FILE);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    g_orig = malloc(BC_FILE_HDR + TT_N * TT_REC + 1);
    g_orig_len = fread(g_orig, 1, BC_FILE_HDR + TT_N * TT_REC + 1, f);
    fclose(f);
    assert_int_equal(g_orig_len, BC_FILE_HDR + TT_N * TT_REC);
}

static void tt_write(const unsigned char *p, size_t len)
{
    st_rmrf(g_dir);
    assert_int_equal(mkdir(g_dir, 0700), 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", g_dir, TT_FILE);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    close(fd);
}

/* Returns how many wrong answers (a value that is not the one written). */
static int tt_check(struct engine *e, int *present)
{
    int wrong = 0;
    *present = 0;
    for (int i = 0; i < TT_N; i++) {
        char k[8], v[16];
        snprintf(k, sizeof(k), "k%04d", i);
        snprintf(v, sizeof(v), "v%09d", i);
        struct rk_buf b;
        rk_buf_init(&b);
        int rc = engine_get(e, k, TT_KLEN, &b, NULL);
        if (rc == RK_OK) {
            (*present)++;
            wrong += b.len != TT_VLEN || memcmp(b.base, v, TT_VLEN) != 0;
        } else if (rc != RK_ENOTFOUND) {
            wrong++;
        }
        rk_buf_fini(&b);
    }
    return wrong;
}

static void test_bitcask_torn_tail_is_truncated_at_every_byte_offset(void **st)
{
    (void)st;
    tt_make_original();
    size_t start = g_orig_len - 3 * TT_REC;
    for (size_t cut = start; cut < g_orig_len; cut++) {
        tt_write(g_orig, cut);
        struct engine *e = st_open("bitcask", g_dir, NULL);
        assert_non_null(e);
        size_t whole = (cut - BC_FILE_HDR) / TT_REC;
        int present;
        assert_int_equal(tt_check(e, &present), 0);
        assert_int_equal(present, (int)whole);
        struct engine_stats s;
        engine_stats(e, &s);
        assert_int_equal(s.recovered_truncated_bytes,
                         cut - BC_FILE_HDR - whole * TT_REC);
        /* The engine appends after the cut and reopens cleanly. */
        assert_int_equal(engine_put(e, "after", 5, "x", 1, NULL, NULL), RK_OK);
        assert_int_equal(engine_close(e), RK_OK);
        e = st_open("bitcask", g_dir, NULL);
        assert_non_null(e);
        assert_int_equal(tt_check(e, &present), 0);
        assert_int_equal(present, (int)whole);
        assert_int_equal(engine_get(e, "after", 5, NULL, NULL), RK_OK);
        assert_int_equal(engine_close(e), RK_OK);
    }
    printf("torn tail: offsets=%zu wrong_answers=0\n", g_orig_len - start);
    free(g_orig);
}

static void test_bitcask_flipped_bit_mid_file_is_reported_with_offset(void **st)
{
    (void)st;
    tt_make_original();
    unsigned char *buf = malloc(g_orig_len);
    int wrong_total = 0, opens_failed = 0, truncated = 0;
    size_t start = g_orig_len - 3 * TT_REC;
    for (size_t byte = start; byte < g_orig_len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, g_orig, g_orig_len);
            buf[byte] ^= (unsigned char)(1u << bit);
            tt_write(buf, g_orig_len);
            size_t rec = (byte - BC_FILE_HDR) / TT_REC;
            size_t rec_off = BC_FILE_HDR + rec * TT_REC;
            struct engine_opts o;
            engine_opts_init(&o);
            o.dir = g_dir;
            o.sync_mode = ENGINE_SYNC_NONE;
            struct engine *e = NULL;
            char err[512] = "";
            int rc = engine_open("bitcask", &o, &e, err, sizeof(err));
            int present = 0;
            if (rec == TT_N - 1) {
                /* The last record is a tail: cut, the rest intact. */
                assert_int_equal(rc, RK_OK);
                wrong_total += tt_check(e, &present);
                assert_int_equal(present, TT_N - 1);
                truncated++;
                engine_close(e);
                continue;
            }
            assert_int_equal(rc, RK_ECORRUPT);
            char want[64];
            snprintf(want, sizeof(want), "offset %zu", rec_off);
            assert_non_null(strstr(err, TT_FILE));
            assert_non_null(strstr(err, want));
            opens_failed++;
            /* Repair skips the bad record and keeps the others. */
            o.repair = true;
            assert_int_equal(engine_open("bitcask", &o, &e, err, sizeof(err)),
                             RK_OK);
            wrong_total += tt_check(e, &present);
            assert_int_equal(present, TT_N - 1);
            struct engine_stats s;
            engine_stats(e, &s);
            assert_int_equal(s.recovered_skipped_records, 1);
            engine_close(e);
        }
    }
    printf(
        "bit flips: flips=%zu open_failed_with_offset=%d tail_cut=%d "
        "wrong_answers=%d\n",
        (g_orig_len - start) * 8, opens_failed, truncated, wrong_total);
    assert_int_equal(wrong_total, 0);
    free(buf);
    free(g_orig);
}

static void test_bitcask_get_reverifies_checksum(void **st)
{
    (void)st;
    struct engine *e = st_open("bitcask", g_dir, NULL);
    assert_int_equal(engine_put(e, "k", 1, "hello", 5, NULL, NULL), RK_OK);
    assert_int_equal(engine_sync(e), RK_OK);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", g_dir, TT_FILE);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    /* Corrupt the value under the engine's feet (shared mapping). */
    assert_int_equal(pwrite(fd, "J", 1, BC_FILE_HDR + BC_REC_HDR + 1 + 1), 1);
    close(fd);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(engine_get(e, "k", 1, &b, NULL), RK_ECORRUPT);
    assert_int_equal(b.len, 0);
    rk_buf_fini(&b);
    engine_close(e);
}

static void test_bitcask_second_opener_gets_elocked(void **st)
{
    (void)st;
    struct engine *e = st_open("bitcask", g_dir, NULL);
    assert_non_null(e);
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = g_dir;
    struct engine *e2 = NULL;
    char err[512] = "";
    assert_int_equal(engine_open("bitcask", &o, &e2, err, sizeof(err)),
                     RK_ELOCKED);
    assert_null(e2);
    assert_non_null(strstr(err, "locked"));
    assert_non_null(strstr(err, g_dir));
    struct stat sb;
    assert_int_equal(stat(g_dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", g_dir, TT_FILE);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(engine_close(e), RK_OK);
    e = st_open("bitcask", g_dir, NULL);
    assert_non_null(e);
    engine_close(e);
}

/* ---- sync=always ---- */

struct cbcount
{
    pthread_mutex_t mu;
    uint64_t last;
    int calls;
};

static void durable_cb(void *data, uint64_t seq)
{
    struct cbcount *c = data;
    pthread_mutex_lock(&c->mu);
    assert_true(seq >= c->last);
    c->last = seq;
    c->calls++;
    pthread_mutex_unlock(&c->mu);
}

static struct cbcount g_cb = {PTHREAD_MUTEX_INITIALIZER, 0, 0};

static void tweak_always(struct engine_opts *o)
{
    o->sync_mode = ENGINE_SYNC_ALWAYS;
    o->durable_cb = durable_cb;
    o->durable_data = &g_cb;
}

static bool wait_durable(struct engine *e, uint64_t seq, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (engine_durable_seq(e) >= seq) {
            return true;
        }
        usleep(1000);
    }
    return engine_durable_seq(e) >= seq;
}

static void test_bitcask_sync_always_calls_durable_cb_in_batches(void **st)
{
    (void)st;
    g_cb.last = 0;
    g_cb.calls = 0;
    struct engine *e = st_open("bitcask", g_dir, tweak_always);
    uint64_t seq = 0;
    for (unsigned i = 0; i < 200; i++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "k%u", i);
        assert_int_equal(engine_put(e, k, (size_t)kl, "v", 1, NULL, &seq),
                         RK_OK);
        assert_int_equal(seq, i + 1);
    }
    assert_true(wait_durable(e, seq, 5000));
    for (int i = 0; i < 1000; i++) { /* the callback follows the publish */
        pthread_mutex_lock(&g_cb.mu);
        bool done = g_cb.last >= seq;
        pthread_mutex_unlock(&g_cb.mu);
        if (done) {
            break;
        }
        usleep(1000);
    }
    pthread_mutex_lock(&g_cb.mu);
    assert_int_equal(g_cb.last, seq);
    printf("group commit: writes=%" PRIu64 " callbacks=%d\n", seq, g_cb.calls);
    assert_true(g_cb.calls >= 1 && (uint64_t)g_cb.calls <= seq);
    pthread_mutex_unlock(&g_cb.mu);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_true(s.syncs >= 1);
    assert_int_equal(engine_close(e), RK_OK);
}

/* ---- fault injection through the engine's vfs ---- */

static int g_fail_fsync_at = -1, g_fail_pwrite_at = -1;
static int g_fsyncs, g_pwrites;

static int fault_fdatasync(struct rk_vfs *vfs, int fd)
{
    if (__atomic_add_fetch(&g_fsyncs, 1, __ATOMIC_SEQ_CST) == g_fail_fsync_at) {
        errno = EIO;
        return -1;
    }
    return rk_vfs_posix()->fdatasync(vfs, fd);
}

static ssize_t fault_pwrite(struct rk_vfs *vfs,
                            int fd,
                            const void *p,
                            size_t n,
                            uint64_t off)
{
    if (__atomic_add_fetch(&g_pwrites, 1, __ATOMIC_SEQ_CST) ==
        g_fail_pwrite_at) {
        errno = EIO;
        return -1;
    }
    return rk_vfs_posix()->pwrite(vfs, fd, p, n, off);
}

static struct rk_vfs g_fault_vfs;
static struct rk_vfs *g_vfs; /* the faulty vfs while a test uses it */

/* POSIX with failing Nth fdatasync / pwrite (-1: never), for engines
 * opened with tweak_fault*. */
static void install_faults(int fsync_at, int pwrite_at)
{
    g_fault_vfs = *rk_vfs_posix();
    g_fault_vfs.fdatasync = fault_fdatasync;
    g_fault_vfs.pwrite = fault_pwrite;
    g_fault_vfs.pwritev = NULL; /* big records through fault_pwrite too */
    g_fsyncs = 0;
    g_pwrites = 0;
    g_fail_fsync_at = fsync_at;
    g_fail_pwrite_at = pwrite_at;
    g_vfs = &g_fault_vfs;
}

static void tweak_fault(struct engine_opts *o)
{
    o->vfs = g_vfs;
}

static void tweak_fault_always(struct engine_opts *o)
{
    tweak_always(o);
    o->vfs = g_vfs;
}

static void tweak_fault_small(struct engine_opts *o)
{
    tweak_small_files(o);
    o->vfs = g_vfs;
}

static void test_bitcask_failed_fsync_is_never_acknowledged(void **st)
{
    (void)st;
    g_cb.last = 0;
    g_cb.calls = 0;
    install_faults(-1, -1);
    struct engine *e = st_open("bitcask", g_dir, tweak_fault_always);
    uint64_t s1 = 0, s2 = 0;
    assert_int_equal(engine_put(e, "a", 1, "1", 1, NULL, &s1), RK_OK);
    assert_true(wait_durable(e, s1, 5000));
    /* The very next fdatasync fails. */
    g_fail_fsync_at = __atomic_load_n(&g_fsyncs, __ATOMIC_SEQ_CST) + 1;
    assert_int_equal(engine_put(e, "b", 1, "2", 1, NULL, &s2), RK_OK);
    assert_false(wait_durable(e, s2, 300));
    struct engine_stats s;
    engine_stats(e, &s);
    assert_true(s.read_only);
    assert_true(s.sync_errors >= 1);
    assert_int_equal(engine_put(e, "c", 1, "3", 1, NULL, NULL), RK_EREADONLY);
    assert_int_equal(engine_delete(e, "a", 1, 0, NULL), RK_EREADONLY);
    assert_int_equal(engine_tick(e), RK_EREADONLY);
    assert_int_equal(engine_tick(e), RK_OK); /* reported once */
    char *v = st_get(e, "a");
    assert_string_equal(v, "1");
    free(v);
    assert_false(engine_durable_seq(e) >= s2);
    pthread_mutex_lock(&g_cb.mu);
    assert_true(g_cb.last < s2);
    pthread_mutex_unlock(&g_cb.mu);
    assert_int_not_equal(engine_close(e), RK_OK);
    e = st_open("bitcask", g_dir, NULL);
    v = st_get(e, "a");
    assert_string_equal(v, "1");
    free(v);
    engine_close(e);
}

static void test_bitcask_failed_write_turns_read_only(void **st)
{
    (void)st;
    install_faults(-1, -1);
    struct engine *e = st_open("bitcask", g_dir, tweak_fault);
    g_fail_pwrite_at = __atomic_load_n(&g_pwrites, __ATOMIC_SEQ_CST) + 1;
    /* Bigger than half the write buffer: written at once. */
    size_t big = BC_WBUF_CAP;
    char *v = calloc(1, big);
    assert_int_equal(engine_put(e, "big", 3, v, big, NULL, NULL), RK_EIO);
    assert_int_equal(engine_get(e, "big", 3, NULL, NULL), RK_ENOTFOUND);
    assert_int_equal(engine_put(e, "x", 1, "y", 1, NULL, NULL), RK_EREADONLY);
    assert_int_equal(engine_sync(e), RK_EREADONLY);
    free(v);
    engine_close(e);
}

/* Fail the Nth fdatasync for N = 1.. during a script with rollovers, a
 * merge and a sync: whatever was acknowledged durable survives a reopen. */
static void test_bitcask_fsync_fault_loop_keeps_durable_writes(void **st)
{
    (void)st;
    for (int n = 1; n <= 30; n++) {
        st_rmrf(g_dir);
        install_faults(n, -1);
        struct engine *e = st_open("bitcask", g_dir, tweak_fault_small);
        assert_non_null(e);
        unsigned acked = 0;
        for (unsigned i = 0; i < 200; i++) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "key%05u", i);
            struct engine_meta m = {.timestamp = 1};
            if (engine_put(e, k, (size_t)kl, "value-value-value", 17, &m,
                           NULL) != RK_OK) {
                break;
            }
            if (i % 50 == 49) {
                engine_merge(e, true);
                if (engine_sync(e) != RK_OK) {
                    break;
                }
                acked = i + 1;
            }
        }
        engine_close(e);
        e = open_small();
        assert_non_null(e);
        for (unsigned i = 0; i < acked; i++) {
            char k[32];
            snprintf(k, sizeof(k), "key%05u", i);
            char *v = st_get(e, k);
            assert_non_null(v);
            assert_string_equal(v, "value-value-value");
            free(v);
        }
        engine_close(e);
    }
}

static void test_bitcask_clear_is_durable_and_keys_stay_gone(void **st)
{
    (void)st;
    struct engine *e = open_small();
    for (unsigned i = 0; i < 300; i++) {
        put_kv(e, i, 1);
    }
    uint64_t seq;
    assert_int_equal(engine_clear(e, &seq), RK_OK);
    put_kv(e, 7, 2);
    assert_int_equal(engine_close(e), RK_OK);
    assert_int_equal(count_files(".data"), 1);
    e = open_small();
    for (unsigned i = 0; i < 300; i++) {
        check_kv(e, i, i == 7 ? 2 : 0);
    }
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.live_keys, 1);
    engine_close(e);
}

static void test_bitcask_merge_reclaims_space_and_keeps_values(void **st)
{
    (void)st;
    struct engine *e = open_small();
    for (unsigned ver = 1; ver <= 5; ver++) {
        for (unsigned i = 0; i < 200; i++) {
            put_kv(e, i, ver);
        }
    }
    struct engine_stats before, after;
    engine_stats(e, &before);
    assert_int_equal(engine_merge(e, true), RK_OK);
    engine_stats(e, &after);
    assert_int_equal(after.merges_done, 1);
    assert_true(after.files < before.files);
    assert_true(after.dead_bytes < before.dead_bytes);
    for (unsigned i = 0; i < 200; i++) {
        check_kv(e, i, 5);
    }
    printf("merge: files %" PRIu64 " -> %" PRIu64 ", dead bytes %" PRIu64
           " -> %" PRIu64 "\n",
           before.files, after.files, before.dead_bytes, after.dead_bytes);
    assert_int_equal(engine_close(e), RK_OK);
    e = open_small();
    for (unsigned i = 0; i < 200; i++) {
        check_kv(e, i, 5);
    }
    engine_close(e);
}

/* The Bitcask resurrection bug class: a tombstone must outlive every older
 * file that may hold its key. */
static void test_bitcask_deleted_key_stays_deleted_after_merge_and_restart(
    void **st)
{
    (void)st;
    struct engine *e = open_small();
    put_kv(e, 1, 1); /* oldest file holds key 1 */
    for (unsigned i = 100; i < 200; i++) {
        put_kv(e, i, 1); /* live filler: the oldest file has no dead bytes */
    }
    char k[32];
    int kl = snprintf(k, sizeof(k), "key%05u", 1);
    assert_int_equal(engine_delete(e, k, (size_t)kl, 2, NULL), RK_OK);
    for (unsigned i = 200; i < 400; i++) {
        put_kv(e, i, 1);
        put_kv(e, i, 2); /* later files are half dead */
    }
    /* Key 1's put file has dead bytes only from the delete; merge all. */
    assert_int_equal(engine_merge(e, true), RK_OK);
    check_kv(e, 1, 0);
    assert_int_equal(engine_close(e), RK_OK);
    e = open_small();
    check_kv(e, 1, 0);
    assert_int_equal(engine_merge(e, true), RK_OK);
    assert_int_equal(engine_close(e), RK_OK);
    e = open_small();
    check_kv(e, 1, 0);
    for (unsigned i = 200; i < 400; i++) {
        check_kv(e, i, 2);
    }
    engine_close(e);
}

static void put_exp(struct engine *e, const char *k, uint64_t exp)
{
    struct engine_meta m = {.timestamp = 1, .expire_at_ms = exp};
    assert_int_equal(engine_put(e, k, strlen(k), "v", 1, &m, NULL), RK_OK);
}

/* engine.h: merge may drop an expired record only under the tombstone
 * rule; an unexpired or far-future expiry is kept, and nothing older of
 * the key may resurface. */
static void test_bitcask_merge_drops_expired_only_when_safe(void **st)
{
    (void)st;
    struct engine *e = open_small();
    put_exp(e, "gone", 1);                /* expired in 1970 */
    put_exp(e, "future", UINT64_MAX / 2); /* far future */
    put_exp(e, "plain", 0);
    for (unsigned i = 0; i < 300; i++) {
        put_kv(e, i, 1);
        put_kv(e, i, 2); /* dead bytes everywhere */
    }
    assert_int_equal(engine_merge(e, true), RK_OK);
    /* Every older file was merged, so the expired record may go. */
    assert_int_equal(engine_get(e, "gone", 4, NULL, NULL), RK_ENOTFOUND);
    assert_int_equal(engine_get(e, "future", 6, NULL, NULL), RK_OK);
    assert_int_equal(engine_get(e, "plain", 5, NULL, NULL), RK_OK);
    assert_int_equal(engine_close(e), RK_OK);
    e = open_small();
    assert_int_equal(engine_get(e, "gone", 4, NULL, NULL), RK_ENOTFOUND);
    assert_int_equal(engine_get(e, "future", 6, NULL, NULL), RK_OK);
    for (unsigned i = 0; i < 300; i++) {
        check_kv(e, i, 2);
    }
    engine_close(e);
}

/* An expired record in a newer file is kept while an older, unmerged
 * file still holds the key: dropping it would resurrect the old value. */
static void tweak_auto_merge(struct engine_opts *o)
{
    o->max_file_size = 4096;
    o->merge_disabled = false;
    o->merge_dead_ratio = 0.3;
}

static void test_bitcask_merge_keeps_expired_over_older_unmerged_file(void **st)
{
    (void)st;
    struct engine *e = st_open("bitcask", g_dir, tweak_auto_merge);
    put_exp(e, "k", 0); /* oldest file: an old, unexpiring value */
    for (unsigned i = 0; i < 100; i++) {
        put_kv(e, i, 1); /* the oldest file stays mostly live */
    }
    put_exp(e, "k", 1); /* a newer file: the key, long expired */
    for (unsigned i = 100; i < 300; i++) {
        put_kv(e, i, 1);
        put_kv(e, i, 2); /* newer files are half dead: auto-merged */
    }
    struct engine_stats s;
    int ticks = 0;
    do {
        assert_int_equal(engine_tick(e), RK_OK);
        engine_stats(e, &s);
        usleep(1000);
    } while ((s.merge_running || s.merges_done == 0) && ++ticks < 5000);
    assert_true(s.merges_done >= 1);
    /* The expired record was kept: the old value must not come back. */
    struct engine_meta m;
    assert_int_equal(engine_get(e, "k", 1, NULL, &m), RK_OK);
    assert_int_equal(m.expire_at_ms, 1);
    engine_close(e);
    e = open_small();
    assert_int_equal(engine_get(e, "k", 1, NULL, &m), RK_OK);
    assert_int_equal(m.expire_at_ms, 1);
    for (unsigned i = 100; i < 300; i++) {
        check_kv(e, i, 2);
    }
    engine_close(e);
}

static void tweak_every(struct engine_opts *o)
{
    o->sync_mode = ENGINE_SYNC_EVERY;
    o->sync_interval_ms = 20;
}

static void test_bitcask_sync_every_makes_writes_durable_in_time(void **st)
{
    (void)st;
    struct engine *e = st_open("bitcask", g_dir, tweak_every);
    uint64_t seq = 0;
    assert_int_equal(engine_put(e, "a", 1, "b", 1, NULL, &seq), RK_OK);
    assert_true(wait_durable(e, seq, 2000));
    struct engine_stats s;
    engine_stats(e, &s);
    assert_true(s.syncs >= 1);
    engine_close(e);
}

/* ---- randomized model test ---- */

#define MODEL_KEYS 64

struct model
{
    bool present[MODEL_KEYS];
    char val[MODEL_KEYS][80];
    size_t vlen[MODEL_KEYS];
    uint64_t ts[MODEL_KEYS];
    uint64_t exp[MODEL_KEYS];
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void model_check_key(struct engine *e,
                            struct model *m,
                            int i,
                            uint64_t seed,
                            int step)
{
    char k[16];
    int kl = snprintf(k, sizeof(k), "m%d", i);
    struct rk_buf b;
    rk_buf_init(&b);
    struct engine_meta meta;
    int rc = engine_get(e, k, (size_t)kl, &b, &meta);
    if (m->present[i] != (rc == RK_OK) ||
        (rc == RK_OK &&
         (b.len != m->vlen[i] || memcmp(b.base, m->val[i], b.len) != 0 ||
          meta.timestamp != m->ts[i] || meta.expire_at_ms != m->exp[i]))) {
        fail_msg("model mismatch seed=%" PRIu64 " step=%d key=%s rc=%s", seed,
                 step, k, rk_errname(rc));
    }
    rk_buf_fini(&b);
}

static void model_check_all(struct engine *e,
                            struct model *m,
                            uint64_t seed,
                            int step)
{
    uint64_t n = 0;
    for (int i = 0; i < MODEL_KEYS; i++) {
        model_check_key(e, m, i, seed, step);
        n += m->present[i];
    }
    struct engine_stats s;
    engine_stats(e, &s);
    if (s.live_keys != n) {
        fail_msg("model count mismatch seed=%" PRIu64 " step=%d", seed, step);
    }
}

static void tweak_model(struct engine_opts *o)
{
    o->max_file_size = 4096;
    o->merge_disabled = false;
    o->merge_dead_ratio = 0.3;
}

static void run_model(const char *kind, uint64_t seed, int steps)
{
    struct model *m = calloc(1, sizeof(*m));
    uint64_t s = seed;
    struct engine *e = st_open(kind, g_dir, tweak_model);
    assert_non_null(e);
    bool persistent = strcmp(kind, "bitcask") == 0;
    int reopens = 0, merges = 0, ticks = 0;
    for (int step = 0; step < steps; step++) {
        int op = (int)(rng_next(&s) % 1000);
        int i = (int)(rng_next(&s) % MODEL_KEYS);
        char k[16];
        int kl = snprintf(k, sizeof(k), "m%d", i);
        if (op < 550) {
            size_t vl = rng_next(&s) % 80;
            for (size_t j = 0; j < vl; j++) {
                m->val[i][j] = (char)rng_next(&s);
            }
            struct engine_meta meta = {.timestamp = (uint64_t)step,
                                       .expire_at_ms = 0};
            /* Some records expired long ago: merge may drop them only
             * when nothing older can resurface; the model keeps them
             * unless dropped, so expired keys are written rarely and
             * only checked for "present or correctly absent". */
            assert_int_equal(
                engine_put(e, k, (size_t)kl, m->val[i], vl, &meta, NULL),
                RK_OK);
            m->present[i] = true;
            m->vlen[i] = vl;
            m->ts[i] = (uint64_t)step;
            m->exp[i] = 0;
        } else if (op < 900) {
            int rc = engine_delete(e, k, (size_t)kl, (uint64_t)step, NULL);
            assert_int_equal(rc, m->present[i] ? RK_OK : RK_ENOTFOUND);
            m->present[i] = false;
        } else if (op < 960) {
            engine_tick(e); /* may start/apply a background merge */
            ticks++;
        } else if (op < 980) {
            assert_int_equal(engine_merge(e, true), RK_OK);
            merges++;
        } else if (op < 999 && persistent) {
            assert_int_equal(engine_close(e), RK_OK);
            e = st_open(kind, g_dir, tweak_model);
            assert_non_null(e);
            reopens++;
            model_check_all(e, m, seed, step);
        } else if (op == 999) {
            assert_int_equal(engine_clear(e, NULL), RK_OK);
            memset(m->present, 0, sizeof(m->present));
        }
        model_check_key(e, m, i, seed, step);
        model_check_all(e, m, seed, step); /* the whole map, every step */
    }
    model_check_all(e, m, seed, steps);
    assert_int_equal(engine_close(e), RK_OK);
    if (strcmp(kind, "bitcask") == 0) {
        e = st_open(kind, g_dir, tweak_model);
        model_check_all(e, m, seed, steps + 1);
        engine_close(e);
    }
    printf("model: engine=%s seed=%" PRIu64
           " steps=%d reopens=%d merges=%d ticks=%d\n",
           kind, seed, steps, reopens, merges, ticks);
    st_rmrf(g_dir);
    free(m);
}

static void test_bitcask_random_ops_match_a_plain_map(void **st)
{
    (void)st;
    const uint64_t seeds[] = {1, 42, 20261125, 0x9e3779b97f4a7c15ull};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        run_model("bitcask", seeds[i], 3000);
    }
}

static void test_memory_random_ops_match_a_plain_map(void **st)
{
    (void)st;
    run_model("memory", 7, 5000);
}

/* ---- the writer's thread never fdatasyncs a finished file -------------- */

/* A VFS over the real one that notes every fdatasync made on the test's
 * (the owner's) thread with the size of the file it synced. */
static struct rk_vfs g_spy;
static pthread_t g_owner;
static int g_owner_syncs;
static uint64_t g_owner_sync_max_size;

static int spy_fdatasync(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    if (pthread_equal(pthread_self(), g_owner)) {
        struct stat sb;
        if (fstat(fd, &sb) == 0 &&
            (uint64_t)sb.st_size > g_owner_sync_max_size) {
            g_owner_sync_max_size = (uint64_t)sb.st_size;
        }
        g_owner_syncs++;
    }
    struct rk_vfs *real = rk_vfs_posix();
    return real->fdatasync(real, fd);
}

/*
 * Regression (issue 12 item 4: 150-300 ms event-loop stalls in fdatasync
 * from bc_put): a rollover does not fdatasync the finished file on the
 * writer's thread; the sync thread (or the hint job) does, so under
 * sync=every and none the only fdatasyncs the owner makes while writing are
 * of new, empty data files' headers.  The data stays durable: every key
 * reads back after a clean close and reopen.
 */
static void test_bitcask_rollover_never_fdatasyncs_on_the_writer(void **st)
{
    (void)st;
    for (int mode = 0; mode < 2; mode++) {
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/m%d", g_dir, mode);
        (void)mkdir(g_dir, 0700); /* the engine creates `dir` itself */
        g_spy = *rk_vfs_posix();
        g_spy.fdatasync = spy_fdatasync;
        g_owner = pthread_self();
        g_owner_syncs = 0;
        g_owner_sync_max_size = 0;
        struct engine_opts o;
        engine_opts_init(&o);
        o.dir = dir;
        o.vfs = &g_spy;
        o.max_file_size = 64 * 1024;
        o.sync_mode = mode == 0 ? ENGINE_SYNC_EVERY : ENGINE_SYNC_NONE;
        o.sync_interval_ms = 1000;
        struct engine *e = NULL;
        char err[512] = "";
        assert_int_equal(engine_open("bitcask", &o, &e, err, sizeof(err)),
                         RK_OK);
        int opened_syncs = g_owner_syncs;
        g_owner_syncs = 0;
        g_owner_sync_max_size = 0;
        char val[4000];
        memset(val, 'v', sizeof(val));
        for (int i = 0; i < 200; i++) { /* 800 KB: a dozen rollovers */
            char k[16];
            int kl = snprintf(k, sizeof(k), "k%d", i);
            uint64_t seq;
            assert_int_equal(
                engine_put(e, k, (size_t)kl, val, sizeof(val), NULL, &seq),
                RK_OK);
            /* let the background sync the file a rollover finished (the
             * sync thread under every, the hint job under none), so the
             * next rollover finds nothing pending: then the writer never
             * syncs a finished file itself */
            struct bitcask *b = (struct bitcask *)e;
            for (int w = 0; w < 2000; w++) {
                pthread_mutex_lock(&b->wb_mu);
                bool pending = b->old_fd >= 0;
                pthread_mutex_unlock(&b->wb_mu);
                if (!pending) {
                    break;
                }
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            }
        }
        struct engine_stats es;
        engine_stats(e, &es);
        assert_true(es.files >= 10);
        /* only headers of new files (mode every; none syncs nothing) */
        assert_true(g_owner_sync_max_size <= 4096);
        assert_true(mode == 0 ? g_owner_syncs <= (int)es.files
                              : g_owner_syncs == 0);
        (void)opened_syncs;
        assert_int_equal(engine_close(e), RK_OK);
        o.vfs = NULL;
        assert_int_equal(engine_open("bitcask", &o, &e, err, sizeof(err)),
                         RK_OK);
        for (int i = 0; i < 200; i++) {
            char k[16];
            int kl = snprintf(k, sizeof(k), "k%d", i);
            struct rk_buf v;
            rk_buf_init(&v);
            assert_int_equal(engine_get(e, k, (size_t)kl, &v, NULL), RK_OK);
            assert_int_equal(v.len, sizeof(val));
            rk_buf_fini(&v);
        }
        assert_int_equal(engine_close(e), RK_OK);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        T(test_bitcask_reopen_keeps_puts_deletes_and_overwrites),
        T(test_bitcask_rollover_spreads_records_over_files),
        T(test_bitcask_rollover_never_fdatasyncs_on_the_writer),
        T(test_bitcask_hint_startup_equals_full_scan),
        T(test_bitcask_torn_tail_is_truncated_at_every_byte_offset),
        T(test_bitcask_flipped_bit_mid_file_is_reported_with_offset),
        T(test_bitcask_get_reverifies_checksum),
        T(test_bitcask_second_opener_gets_elocked),
        T(test_bitcask_sync_always_calls_durable_cb_in_batches),
        T(test_bitcask_failed_fsync_is_never_acknowledged),
        T(test_bitcask_failed_write_turns_read_only),
        T(test_bitcask_fsync_fault_loop_keeps_durable_writes),
        T(test_bitcask_clear_is_durable_and_keys_stay_gone),
        T(test_bitcask_merge_reclaims_space_and_keeps_values),
        T(test_bitcask_deleted_key_stays_deleted_after_merge_and_restart),
        T(test_bitcask_merge_drops_expired_only_when_safe),
        T(test_bitcask_merge_keeps_expired_over_older_unmerged_file),
        T(test_bitcask_sync_every_makes_writes_durable_in_time),
        T(test_bitcask_random_ops_match_a_plain_map),
        T(test_memory_random_ops_match_a_plain_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * engine_bench.c - storage engine benchmark (issue 2, "Benchmark"):
 * bitcask and memory (engine.h) against RocksDB, LevelDB and LMDB through
 * their C APIs, plus a raw buffered append of the same records to one
 * file (the physical limit).
 *
 * Workloads, 16-byte keys and 100-byte values, fixed seed, sync=none:
 *   fillseq       N puts, keys in order, into an empty store
 *   fillrandom    N puts, keys in a random permutation, empty store
 *   overwrite     N puts of random existing keys
 *   readrandom    N gets of random existing keys
 *   readmissing   N gets of absent keys
 *   deleterandom  N deletes, random permutation of the keys
 * then sync=always with 1, 4 and 16 concurrent writers (bitcask: writers
 * are logical clients of the single owner thread, each waiting for its
 * last write's durable callback, as ringkvd's clients do; RocksDB,
 * LevelDB, LMDB: real threads with synchronous writes), reopen time with
 * and without hint files, keydir bytes per key and peak RSS.
 *
 * Each engine runs in its own forked child so peak RSS is per engine.
 * Output: one table, with ops/s, MB/s and the ratio bitcask/RocksDB for
 * each workload, measured in the same run.
 *
 * Usage: engine_bench [-n N] [-d dir] [-e engines] [-s sync_seconds]
 *                     [-r reopen_n,...]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <lmdb.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

#define KLEN 16
#define VLEN 100

static uint64_t g_n = 1000000;
static double g_sync_secs = 2.0;
static char g_base[512] = "/tmp/rk-engine-bench";
static char g_engines[256] =
    "bitcask,bitcask_reopen,memory,rocksdb,leveldb,lmdb,raw";
static int g_reps = 1;
static char g_reopen[128] = "1000000";

/* ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 16 decimal digits of i (mod 10^16), zero-padded, NUL-terminated. */
static void make_key(char *k, uint64_t i)
{
    for (int d = KLEN - 1; d >= 0; d--) {
        k[d] = (char)('0' + i % 10);
        i /= 10;
    }
    k[KLEN] = '\0';
}

static void make_missing_key(char *k, uint64_t i)
{
    make_key(k, i);
    k[0] = 'x';
}

static char g_values[4096 + VLEN];

static const char *value_for(uint64_t i)
{
    return g_values + (i * 7) % 4096;
}

static uint64_t *g_perm;  /* random permutation of [0, n) */
static uint64_t *g_perm2; /* another one */
static uint64_t *g_rand;  /* n random keys in [0, n) with repeats */

static void make_orders(uint64_t n)
{
    uint64_t s = 20261125;
    for (size_t i = 0; i < sizeof(g_values); i++) {
        g_values[i] = (char)('a' + rng_next(&s) % 26);
    }
    g_perm = malloc(n * sizeof(uint64_t));
    g_perm2 = malloc(n * sizeof(uint64_t));
    g_rand = malloc(n * sizeof(uint64_t));
    for (uint64_t i = 0; i < n; i++) {
        g_perm[i] = g_perm2[i] = i;
        g_rand[i] = rng_next(&s) % n;
    }
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = rng_next(&s) % (i + 1), t = g_perm[i];
        g_perm[i] = g_perm[j];
        g_perm[j] = t;
        j = rng_next(&s) % (i + 1);
        t = g_perm2[i];
        g_perm2[i] = g_perm2[j];
        g_perm2[j] = t;
    }
}

static void rm_rf(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "rm -rf %s failed\n", path);
    }
}

/* ------------------------------------------------------------------ */
/* A uniform driver over every store. */

struct store;
struct store_ops
{
    const char *name;
    struct store *(*open)(const char *dir, bool sync);
    void (*close)(struct store *s);
    int (*put)(struct store *s, const char *k, const char *v);
    int (*get)(struct store *s, const char *k, bool *found);
    int (*del)(struct store *s, const char *k);
};

/* ---- bitcask / memory through engine.h ---- */

struct rk_store
{
    struct engine *e;
    struct rk_buf buf;
};

static struct store *rk_open_kind(const char *kind,
                                  const char *dir,
                                  bool sync,
                                  uint64_t max_file)
{
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = dir;
    o.sync_mode = sync ? ENGINE_SYNC_ALWAYS : ENGINE_SYNC_NONE;
    o.merge_disabled = true;
    if (max_file) {
        o.max_file_size = max_file;
    }
    struct rk_store *s = calloc(1, sizeof(*s));
    char err[512];
    int rc = engine_open(kind, &o, &s->e, err, sizeof(err));
    if (rc != RK_OK) {
        fprintf(stderr, "engine_open %s: %s\n", kind, err);
        exit(1);
    }
    rk_buf_init(&s->buf);
    return (struct store *)s;
}

static struct store *bc_open(const char *dir, bool sync)
{
    return rk_open_kind("bitcask", dir, sync, 0);
}

static struct store *mem_open(const char *dir, bool sync)
{
    return rk_open_kind("memory", dir, sync, 0);
}

static void rk_close(struct store *st)
{
    struct rk_store *s = (struct rk_store *)st;
    engine_close(s->e);
    rk_buf_fini(&s->buf);
    free(s);
}

static int rk_put(struct store *st, const char *k, const char *v)
{
    struct rk_store *s = (struct rk_store *)st;
    struct engine_meta m = {.timestamp = 1};
    return engine_put(s->e, k, KLEN, v, VLEN, &m, NULL);
}

static int rk_get(struct store *st, const char *k, bool *found)
{
    struct rk_store *s = (struct rk_store *)st;
    rk_buf_clear(&s->buf);
    int rc = engine_get(s->e, k, KLEN, &s->buf, NULL);
    *found = rc == RK_OK;
    return rc == RK_OK || rc == RK_ENOTFOUND ? 0 : -1;
}

static int rk_del(struct store *st, const char *k)
{
    struct rk_store *s = (struct rk_store *)st;
    int rc = engine_delete(s->e, k, KLEN, 1, NULL);
    return rc == RK_OK || rc == RK_ENOTFOUND ? 0 : -1;
}

static const struct store_ops bitcask_ops = {"bitcask", bc_open, rk_close,
                                             rk_put,    rk_get,  rk_del};
static const struct store_ops memory_ops = {"memory", mem_open, rk_close,
                                            rk_put,   rk_get,   rk_del};

/* ---- RocksDB ---- */

struct rocks_store
{
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
};

static struct store *rocks_open(const char *dir, bool sync)
{
    struct rocks_store *s = calloc(1, sizeof(*s));
    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_increase_parallelism(s->opts, 2);
    char *err = NULL;
    s->db = rocksdb_open(s->opts, dir, &err);
    if (err) {
        fprintf(stderr, "rocksdb_open: %s\n", err);
        exit(1);
    }
    s->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo, sync);
    s->ro = rocksdb_readoptions_create();
    return (struct store *)s;
}

static void rocks_close(struct store *st)
{
    struct rocks_store *s = (struct rocks_store *)st;
    rocksdb_close(s->db);
    rocksdb_writeoptions_destroy(s->wo);
    rocksdb_readoptions_destroy(s->ro);
    rocksdb_options_destroy(s->opts);
    free(s);
}

static int rocks_put(struct store *st, const char *k, const char *v)
{
    struct rocks_store *s = (struct rocks_store *)st;
    char *err = NULL;
    rocksdb_put(s->db, s->wo, k, KLEN, v, VLEN, &err);
    if (err) {
        rocksdb_free(err);
        return -1;
    }
    return 0;
}

static int rocks_get(struct store *st, const char *k, bool *found)
{
    struct rocks_store *s = (struct rocks_store *)st;
    char *err = NULL;
    size_t vl = 0;
    char *v = rocksdb_get(s->db, s->ro, k, KLEN, &vl, &err);
    *found = v != NULL;
    rocksdb_free(v);
    if (err) {
        rocksdb_free(err);
        return -1;
    }
    return 0;
}

static int rocks_del(struct store *st, const char *k)
{
    struct rocks_store *s = (struct rocks_store *)st;
    char *err = NULL;
    rocksdb_delete(s->db, s->wo, k, KLEN, &err);
    if (err) {
        rocksdb_free(err);
        return -1;
    }
    return 0;
}

static const struct store_ops rocks_ops = {"rocksdb", rocks_open, rocks_close,
                                           rocks_put, rocks_get,  rocks_del};

/* ---- LevelDB ---- */

struct level_store
{
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_writeoptions_t *wo;
    leveldb_readoptions_t *ro;
};

static struct store *level_open(const char *dir, bool sync)
{
    struct level_store *s = calloc(1, sizeof(*s));
    s->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(s->opts, 1);
    char *err = NULL;
    s->db = leveldb_open(s->opts, dir, &err);
    if (err) {
        fprintf(stderr, "leveldb_open: %s\n", err);
        exit(1);
    }
    s->wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(s->wo, sync);
    s->ro = leveldb_readoptions_create();
    return (struct store *)s;
}

static void level_close(struct store *st)
{
    struct level_store *s = (struct level_store *)st;
    leveldb_close(s->db);
    leveldb_writeoptions_destroy(s->wo);
    leveldb_readoptions_destroy(s->ro);
    leveldb_options_destroy(s->opts);
    free(s);
}

static int level_put(struct store *st, const char *k, const char *v)
{
    struct level_store *s = (struct level_store *)st;
    char *err = NULL;
    leveldb_put(s->db, s->wo, k, KLEN, v, VLEN, &err);
    if (err) {
        leveldb_free(err);
        return -1;
    }
    return 0;
}

static int level_get(struct store *st, const char *k, bool *found)
{
    struct level_store *s = (struct level_store *)st;
    char *err = NULL;
    size_t vl = 0;
    char *v = leveldb_get(s->db, s->ro, k, KLEN, &vl, &err);
    *found = v != NULL;
    leveldb_free(v);
    if (err) {
        leveldb_free(err);
        return -1;
    }
    return 0;
}

static int level_del(struct store *st, const char *k)
{
    struct level_store *s = (struct level_store *)st;
    char *err = NULL;
    leveldb_delete(s->db, s->wo, k, KLEN, &err);
    if (err) {
        leveldb_free(err);
        return -1;
    }
    return 0;
}

static const struct store_ops level_ops = {"leveldb", level_open, level_close,
                                           level_put, level_get,  level_del};

/* ---- LMDB: one write transaction per put (like the others' puts). ---- */

struct lmdb_store
{
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *rtxn; /* reused read-only transaction */
};

static struct store *lmdb_open(const char *dir, bool sync)
{
    struct lmdb_store *s = calloc(1, sizeof(*s));
    mkdir(dir, 0700);
    if (mdb_env_create(&s->env) != 0 ||
        mdb_env_set_mapsize(s->env, (size_t)16 << 30) != 0 ||
        mdb_env_open(s->env, dir, sync ? 0 : MDB_NOSYNC, 0600) != 0) {
        fprintf(stderr, "lmdb open failed\n");
        exit(1);
    }
    MDB_txn *t;
    mdb_txn_begin(s->env, NULL, 0, &t);
    mdb_dbi_open(t, NULL, 0, &s->dbi);
    mdb_txn_commit(t);
    return (struct store *)s;
}

static void lmdb_close(struct store *st)
{
    struct lmdb_store *s = (struct lmdb_store *)st;
    if (s->rtxn) {
        mdb_txn_abort(s->rtxn);
    }
    mdb_env_close(s->env);
    free(s);
}

static int lmdb_put(struct store *st, const char *k, const char *v)
{
    struct lmdb_store *s = (struct lmdb_store *)st;
    if (s->rtxn) {
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
    MDB_txn *t;
    if (mdb_txn_begin(s->env, NULL, 0, &t) != 0) {
        return -1;
    }
    MDB_val key = {KLEN, (void *)k}, val = {VLEN, (void *)v};
    if (mdb_put(t, s->dbi, &key, &val, 0) != 0) {
        mdb_txn_abort(t);
        return -1;
    }
    return mdb_txn_commit(t) == 0 ? 0 : -1;
}

static int lmdb_get(struct store *st, const char *k, bool *found)
{
    struct lmdb_store *s = (struct lmdb_store *)st;
    if (s->rtxn == NULL &&
        mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn) != 0) {
        return -1;
    }
    MDB_val key = {KLEN, (void *)k}, val;
    int rc = mdb_get(s->rtxn, s->dbi, &key, &val);
    *found = rc == 0;
    if (rc == 0) {
        /* Touch the value as the others copy it. */
        volatile char c = ((const char *)val.mv_data)[val.mv_size - 1];
        (void)c;
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

static int lmdb_del(struct store *st, const char *k)
{
    struct lmdb_store *s = (struct lmdb_store *)st;
    if (s->rtxn) {
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
    MDB_txn *t;
    if (mdb_txn_begin(s->env, NULL, 0, &t) != 0) {
        return -1;
    }
    MDB_val key = {KLEN, (void *)k};
    int rc = mdb_del(t, s->dbi, &key, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(t);
        return -1;
    }
    return mdb_txn_commit(t) == 0 ? 0 : -1;
}

static const struct store_ops lmdb_ops = {"lmdb",   lmdb_open, lmdb_close,
                                          lmdb_put, lmdb_get,  lmdb_del};

/* ------------------------------------------------------------------ */
/* Results: children write "engine workload ops secs extra" lines. */

static FILE *g_out; /* result pipe of the current child */

static void result(const char *engine,
                   const char *workload,
                   uint64_t ops,
                   double secs,
                   const char *extra)
{
    fprintf(g_out, "%s %s %" PRIu64 " %.6f %s\n", engine, workload, ops, secs,
            extra ? extra : "-");
    fflush(g_out);
    fprintf(stderr, "  %-8s %-22s %10.0f ops/s\n", engine, workload,
            secs > 0 ? (double)ops / secs : 0.0);
}

/* Records current anonymous and file-backed (mapped page cache) RSS. */
static void report_rss(const char *engine, const char *tag)
{
    FILE *st = fopen("/proc/self/status", "r");
    char l[256], extra[96];
    unsigned long anon = 0, file = 0;
    while (st && fgets(l, sizeof(l), st)) {
        sscanf(l, "RssAnon: %lu", &anon);
        sscanf(l, "RssFile: %lu", &file);
    }
    if (st) {
        fclose(st);
    }
    snprintf(extra, sizeof(extra), "anon=%.0fMB,file=%.0fMB",
             (double)anon / 1024.0, (double)file / 1024.0);
    result(engine, tag, 0, 0, extra);
}

typedef void (*op_fn)(const struct store_ops *o, struct store *s, uint64_t i);

static void op_put_seq(const struct store_ops *o, struct store *s, uint64_t i)
{
    char k[KLEN + 1];
    make_key(k, i);
    if (o->put(s, k, value_for(i)) != 0) {
        fprintf(stderr, "%s: put failed\n", o->name);
        exit(1);
    }
}

static void op_put_perm(const struct store_ops *o, struct store *s, uint64_t i)
{
    op_put_seq(o, s, g_perm[i]);
}

static void op_put_rand(const struct store_ops *o, struct store *s, uint64_t i)
{
    char k[KLEN + 1];
    make_key(k, g_rand[i]);
    if (o->put(s, k, value_for(i + 1)) != 0) {
        exit(1);
    }
}

static uint64_t g_found;

static void op_get_rand(const struct store_ops *o, struct store *s, uint64_t i)
{
    char k[KLEN + 1];
    make_key(k, g_rand[(i * 31) % g_n]);
    bool found = false;
    if (o->get(s, k, &found) != 0) {
        fprintf(stderr, "%s: get failed\n", o->name);
        exit(1);
    }
    g_found += found;
}

static void op_get_missing(const struct store_ops *o,
                           struct store *s,
                           uint64_t i)
{
    char k[KLEN + 1];
    make_missing_key(k, g_perm2[i]);
    bool found = false;
    if (o->get(s, k, &found) != 0) {
        exit(1);
    }
    g_found += found;
}

static void op_del_perm(const struct store_ops *o, struct store *s, uint64_t i)
{
    char k[KLEN + 1];
    make_key(k, g_perm2[i]);
    if (o->del(s, k) != 0) {
        exit(1);
    }
}

static double run_ops(const struct store_ops *o,
                      struct store *s,
                      op_fn fn,
                      uint64_t n)
{
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        fn(o, s, i);
    }
    return now_s() - t0;
}

static void bench_basic(const struct store_ops *o)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/%s-seq", g_base, o->name);
    rm_rf(dir);
    struct store *s = o->open(dir, false);
    result(o->name, "fillseq", g_n, run_ops(o, s, op_put_seq, g_n), NULL);
    o->close(s);
    rm_rf(dir);

    snprintf(dir, sizeof(dir), "%s/%s-rand", g_base, o->name);
    rm_rf(dir);
    s = o->open(dir, false);
    result(o->name, "fillrandom", g_n, run_ops(o, s, op_put_perm, g_n), NULL);
    if (strcmp(o->name, "bitcask") == 0 || strcmp(o->name, "memory") == 0) {
        struct engine_stats st;
        engine_stats(((struct rk_store *)s)->e, &st);
        char extra[128];
        snprintf(extra, sizeof(extra), "%.1f",
                 (double)st.keydir_bytes / (double)st.live_keys - KLEN);
        result(o->name, "keydir_overhead_B/key", st.live_keys, 0, extra);
    }
    result(o->name, "overwrite", g_n, run_ops(o, s, op_put_rand, g_n), NULL);
    g_found = 0;
    double t = run_ops(o, s, op_get_rand, g_n);
    if (g_found != g_n) {
        fprintf(stderr, "%s: readrandom found %" PRIu64 " of %" PRIu64 "\n",
                o->name, g_found, g_n);
        exit(1);
    }
    result(o->name, "readrandom", g_n, t, NULL);
    report_rss(o->name, "rss_end");
    g_found = 0;
    t = run_ops(o, s, op_get_missing, g_n);
    if (g_found != 0) {
        exit(1);
    }
    result(o->name, "readmissing", g_n, t, NULL);
    result(o->name, "deleterandom", g_n, run_ops(o, s, op_del_perm, g_n), NULL);
    o->close(s);
    rm_rf(dir);
}

/* ---- sync=always, W writers ---- */

struct sync_state
{
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t durable;
};

static void bench_durable_cb(void *data, uint64_t seq)
{
    struct sync_state *ss = data;
    pthread_mutex_lock(&ss->mu);
    ss->durable = seq;
    pthread_cond_signal(&ss->cond);
    pthread_mutex_unlock(&ss->mu);
}

/* bitcask: one owner thread, W logical clients each with one write in
 * flight, acknowledged from the durable callback (ringkvd's model). */
static void bench_sync_bitcask(int writers)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/bitcask-sync", g_base);
    rm_rf(dir);
    struct sync_state ss = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                            0};
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = dir;
    o.sync_mode = ENGINE_SYNC_ALWAYS;
    o.merge_disabled = true;
    o.durable_cb = bench_durable_cb;
    o.durable_data = &ss;
    struct engine *e;
    char err[256];
    if (engine_open("bitcask", &o, &e, err, sizeof(err)) != RK_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    uint64_t waiting[64] = {0};
    uint64_t done = 0, issued = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < g_sync_secs) {
        pthread_mutex_lock(&ss.mu);
        uint64_t durable;
        for (;;) {
            durable = ss.durable;
            bool any_free = false;
            for (int w = 0; w < writers; w++) {
                any_free |= waiting[w] <= durable;
            }
            if (any_free) {
                break;
            }
            pthread_cond_wait(&ss.cond, &ss.mu);
        }
        pthread_mutex_unlock(&ss.mu);
        for (int w = 0; w < writers; w++) {
            if (waiting[w] <= durable) {
                if (waiting[w] != 0) {
                    done++;
                }
                char k[KLEN + 1];
                make_key(k, issued);
                struct engine_meta m = {.timestamp = 1};
                uint64_t seq;
                if (engine_put(e, k, KLEN, value_for(issued), VLEN, &m, &seq) !=
                    RK_OK) {
                    exit(1);
                }
                issued++;
                waiting[w] = seq;
            }
        }
        t = now_s();
    }
    char name[64];
    snprintf(name, sizeof(name), "sync_always_%dw", writers);
    result("bitcask", name, done, t - t0, NULL);
    engine_close(e);
    rm_rf(dir);
}

struct thr_arg
{
    const struct store_ops *o;
    struct store *s;
    int id;
    volatile bool *stop;
    uint64_t ops;
};

static void *sync_thread(void *p)
{
    struct thr_arg *a = p;
    uint64_t i = 0;
    while (!*a->stop) {
        char k[KLEN + 1];
        make_key(k, (uint64_t)a->id * 100000000u + i);
        if (a->o->put(a->s, k, value_for(i)) != 0) {
            exit(1);
        }
        i++;
    }
    a->ops = i;
    return NULL;
}

static void bench_sync_threads(const struct store_ops *o, int writers)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/%s-sync", g_base, o->name);
    rm_rf(dir);
    struct store *s = o->open(dir, true);
    volatile bool stop = false;
    pthread_t th[64];
    struct thr_arg args[64];
    double t0 = now_s();
    for (int w = 0; w < writers; w++) {
        args[w] = (struct thr_arg){o, s, w, &stop, 0};
        pthread_create(&th[w], NULL, sync_thread, &args[w]);
    }
    struct timespec ts = {
        (time_t)g_sync_secs,
        (long)((g_sync_secs - (double)(time_t)g_sync_secs) * 1e9)};
    nanosleep(&ts, NULL);
    stop = true;
    uint64_t total = 0;
    for (int w = 0; w < writers; w++) {
        pthread_join(th[w], NULL);
        total += args[w].ops;
    }
    double t = now_s() - t0;
    char name[64];
    snprintf(name, sizeof(name), "sync_always_%dw", writers);
    result(o->name, name, total, t, NULL);
    o->close(s);
    rm_rf(dir);
}

/* ---- reopen ---- */

static void remove_hints(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/*.hint", dir);
    if (system(cmd) != 0) {
        exit(1);
    }
}

static void bench_reopen(uint64_t n)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/bitcask-reopen", g_base);
    rm_rf(dir);
    /* 64 MiB files: all but the last have hint files. */
    struct store *s = rk_open_kind("bitcask", dir, false, 64ull << 20);
    uint64_t st = 12345;
    for (uint64_t i = 0; i < n; i++) {
        char k[KLEN + 1];
        make_key(k, rng_next(&st) % (n * 4));
        rk_put(s, k, value_for(i));
    }
    rk_close(s);
    char name[64], extra[64];
    double t0 = now_s();
    s = rk_open_kind("bitcask", dir, false, 64ull << 20);
    double t = now_s() - t0;
    struct engine_stats es;
    engine_stats(((struct rk_store *)s)->e, &es);
    report_rss("bitcask_reopen", "rss_end");
    snprintf(name, sizeof(name), "reopen_%" PRIu64 "_hints", n);
    snprintf(extra, sizeof(extra), "keys=%" PRIu64 ",fallbacks=%" PRIu64,
             es.live_keys, es.hint_fallbacks);
    result("bitcask", name, es.live_keys, t, extra);
    rk_close(s);
    remove_hints(dir);
    t0 = now_s();
    s = rk_open_kind("bitcask", dir, false, 64ull << 20);
    t = now_s() - t0;
    engine_stats(((struct rk_store *)s)->e, &es);
    snprintf(name, sizeof(name), "reopen_%" PRIu64 "_scan", n);
    snprintf(extra, sizeof(extra), "keys=%" PRIu64 ",fallbacks=%" PRIu64,
             es.live_keys, es.hint_fallbacks);
    result("bitcask", name, es.live_keys, t, extra);
    rk_close(s);
    rm_rf(dir);
}

/* ---- raw buffered append of the same records ---- */

static void bench_raw(void)
{
    char dir[600], path[700];
    snprintf(dir, sizeof(dir), "%s/raw", g_base);
    rm_rf(dir);
    mkdir(dir, 0700);
    for (int pass = 0; pass < 2; pass++) {
        snprintf(path, sizeof(path), "%s/append.log", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        size_t cap = 1 << 20, len = 0;
        unsigned char *buf = malloc(cap);
        double t0 = now_s();
        for (uint64_t i = 0; i < g_n; i++) {
            uint64_t id = pass == 0 ? i : g_perm[i];
            size_t rl = 29 + KLEN + VLEN;
            if (len + rl > cap) {
                if (write(fd, buf, len) != (ssize_t)len) {
                    exit(1);
                }
                len = 0;
            }
            unsigned char *r = buf + len;
            rk_put_le64(r + 4, 1);
            rk_put_le64(r + 12, 0);
            rk_put_le32(r + 20, KLEN);
            rk_put_le32(r + 24, VLEN);
            r[28] = 0;
            make_key((char *)r + 29, id); /* writes a NUL, overwritten */
            memcpy(r + 29 + KLEN, value_for(id), VLEN);
            rk_put_le32(r, (uint32_t)XXH3_64bits(r + 4, rl - 4));
            len += rl;
        }
        if (len && write(fd, buf, len) != (ssize_t)len) {
            exit(1);
        }
        double t = now_s() - t0;
        close(fd);
        free(buf);
        result("raw", pass == 0 ? "fillseq" : "fillrandom", g_n, t, NULL);
    }
    rm_rf(dir);
}

/* ------------------------------------------------------------------ */

static const struct store_ops *find_ops(const char *name)
{
    static const struct store_ops *const all[] = {
        &bitcask_ops, &memory_ops, &rocks_ops, &level_ops, &lmdb_ops};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(all[i]->name, name) == 0) {
            return all[i];
        }
    }
    return NULL;
}

static void run_reopen(void)
{
    char list[128];
    snprintf(list, sizeof(list), "%s", g_reopen);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        bench_reopen(strtoull(tok, NULL, 10));
    }
}

static void run_engine(const char *name)
{
    if (strcmp(name, "raw") == 0) {
        bench_raw();
        return;
    }
    if (strcmp(name, "bitcask_reopen") == 0) {
        run_reopen();
        return;
    }
    const struct store_ops *o = find_ops(name);
    if (o == NULL) {
        fprintf(stderr, "unknown engine %s\n", name);
        exit(2);
    }
    bench_basic(o);
    if (strcmp(name, "memory") == 0) {
        return;
    }
    static const int writers[] = {1, 4, 16};
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, "bitcask") == 0) {
            bench_sync_bitcask(writers[i]);
        } else {
            bench_sync_threads(o, writers[i]);
        }
    }
}

/* ---- table ---- */

struct row
{
    char engine[32], workload[48], extra[96];
    uint64_t ops;
    double secs;
    long rss_kb;
};

static struct row g_rows[512];
static int g_nrows;

static const struct row *find_row(const char *engine, const char *workload)
{
    for (int i = 0; i < g_nrows; i++) {
        if (strcmp(g_rows[i].engine, engine) == 0 &&
            strcmp(g_rows[i].workload, workload) == 0) {
            return &g_rows[i];
        }
    }
    return NULL;
}

static void print_table(void)
{
    printf("\n%-8s %-22s %12s %12s %9s %14s\n", "engine", "workload", "ops/s",
           "MB/s", "secs", "bitcask/rocks");
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        if (strcmp(r->workload, "peak_rss") == 0 ||
            strcmp(r->workload, "rss_end") == 0 ||
            strcmp(r->workload, "keydir_overhead_B/key") == 0) {
            continue;
        }
        double ops = r->secs > 0 ? (double)r->ops / r->secs : 0;
        double mbs = ops * (KLEN + VLEN) / 1e6;
        char ratio[32] = "";
        if (strcmp(r->engine, "bitcask") == 0) {
            const struct row *rr = find_row("rocksdb", r->workload);
            if (rr && rr->secs > 0 && r->secs > 0) {
                double rops = (double)rr->ops / rr->secs;
                snprintf(ratio, sizeof(ratio), "%.2fx", ops / rops);
            }
        }
        if (strncmp(r->workload, "reopen", 6) == 0) {
            printf("%-8s %-22s %12s %12s %9.3f %14s  %s\n", r->engine,
                   r->workload, "-", "-", r->secs, "", r->extra);
        } else {
            printf("%-8s %-22s %12.0f %12.1f %9.3f %14s\n", r->engine,
                   r->workload, ops, mbs, r->secs, ratio);
        }
    }
    printf("\n%-15s %14s %24s  %s\n", "engine", "peak_rss_MB",
           "keydir_overhead_B/key", "rss_after_reads_or_reopen");
    for (int i = 0; i < g_nrows; i++) {
        if (strcmp(g_rows[i].workload, "peak_rss") == 0) {
            const struct row *k =
                find_row(g_rows[i].engine, "keydir_overhead_B/key");
            const struct row *re = find_row(g_rows[i].engine, "rss_end");
            printf("%-15s %14.1f %24s  %s\n", g_rows[i].engine,
                   (double)g_rows[i].ops / 1024.0, k ? k->extra : "-",
                   re ? re->extra : "-");
        }
    }
    const struct row *bf = find_row("bitcask", "fillrandom");
    const struct row *raw = find_row("raw", "fillrandom");
    if (bf && raw) {
        printf("\nbitcask fillrandom / raw append fillrandom = %.0f%%\n",
               100.0 * ((double)bf->ops / bf->secs) /
                   ((double)raw->ops / raw->secs));
    }
    const struct row *s1 = find_row("bitcask", "sync_always_1w");
    const struct row *s16 = find_row("bitcask", "sync_always_16w");
    if (s1 && s16) {
        printf("bitcask sync_always 16 writers / 1 writer = %.1fx\n",
               ((double)s16->ops / s16->secs) / ((double)s1->ops / s1->secs));
    }
}

static void run_all_once(void);

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "n:d:e:s:r:R:")) != -1) {
        switch (c) {
            case 'n':
                g_n = strtoull(optarg, NULL, 10);
                break;
            case 'd':
                snprintf(g_base, sizeof(g_base), "%s", optarg);
                break;
            case 'e':
                snprintf(g_engines, sizeof(g_engines), "%s", optarg);
                break;
            case 's':
                g_sync_secs = atof(optarg);
                break;
            case 'r':
                snprintf(g_reopen, sizeof(g_reopen), "%s", optarg);
                break;
            case 'R':
                g_reps = atoi(optarg) > 0 ? atoi(optarg) : 1;
                break;
            default:
                fprintf(stderr,
                        "usage: engine_bench [-n N] [-d dir] [-e engines] "
                        "[-s sync_secs] [-r reopen_n,...] [-R reps]\n");
                return 2;
        }
    }
    rk_log_set_level(RK_LOG_ERROR);
    mkdir(g_base, 0700);
    make_orders(g_n);
    for (int rep = 0; rep < g_reps; rep++) {
        run_all_once();
    }
    printf("engine_bench: n=%" PRIu64
           " key=%dB value=%dB sync_secs=%.1f "
           "reps=%d (best of reps per row)\n",
           g_n, KLEN, VLEN, g_sync_secs, g_reps);
    print_table();
    rm_rf(g_base);
    return 0;
}

/* Keeps the best figure of each (engine, workload) over repetitions. */
static void add_row(const struct row *r)
{
    for (int i = 0; i < g_nrows; i++) {
        struct row *o = &g_rows[i];
        if (strcmp(o->engine, r->engine) != 0 ||
            strcmp(o->workload, r->workload) != 0) {
            continue;
        }
        bool better;
        if (strcmp(r->workload, "peak_rss") == 0) {
            better = r->ops > o->ops;
        } else if (strcmp(r->workload, "rss_end") == 0) {
            better = true; /* the last (largest) reopen */
        } else if (strncmp(r->workload, "reopen", 6) == 0) {
            better = r->secs < o->secs;
        } else {
            better = r->secs > 0 && o->secs > 0 &&
                     (double)r->ops / r->secs > (double)o->ops / o->secs;
        }
        if (better) {
            *o = *r;
        }
        return;
    }
    if (g_nrows < 512) {
        g_rows[g_nrows++] = *r;
    }
}

static void run_all_once(void)
{
    char list[256];
    snprintf(list, sizeof(list), "%s", g_engines);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int fds[2];
        if (pipe(fds) != 0) {
            exit(1);
        }
        fprintf(stderr, "== %s\n", tok);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            g_out = fdopen(fds[1], "w");
            run_engine(tok);
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            result(tok, "peak_rss", (uint64_t)ru.ru_maxrss, 0, NULL);
            fclose(g_out);
            _exit(0);
        }
        close(fds[1]);
        FILE *in = fdopen(fds[0], "r");
        char line[512];
        while (fgets(line, sizeof(line), in)) {
            struct row r;
            if (sscanf(line, "%31s %47s %" SCNu64 " %lf %95s", r.engine,
                       r.workload, &r.ops, &r.secs, r.extra) == 5) {
                add_row(&r);
            }
        }
        fclose(in);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s: benchmark child failed\n", tok);
        }
    }
}

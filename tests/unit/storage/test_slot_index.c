/*
 * test_slot_index.c - the slot index of the storage engines (engine.h,
 * "The slot index"; issue 14 item 2: "all objects of partition p" cheap):
 * engine_slot_count matches a model after random put, delete, expire,
 * clear, merge and reopen (bitcask and memory); engine_fold_slots visits
 * every key present for the whole fold at least once while keys are added,
 * deleted, resized and the engine merged, reopened, or killed with kill -9
 * between batches; a cursor at the end answers ENGINE_FOLD_DONE; allocation
 * failures leave the index consistent.  Random tests print their seed;
 * `--seed=S` replays one.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

#include "common/alloc.h"
#include "storage_test.h"

static uint64_t g_seed = 20261201;

/* ---- slot functions and options ---- */

#define FEW_SLOTS 16

/* FNV-1a of the key modulo FEW_SLOTS: keys spread over a few slots, so
 * slots hold hundreds of keys and their tables resize. */
static uint32_t few_slots(const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < klen; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h % FEW_SLOTS;
}

/* Every key in slot 3 (a hash tag shared by all keys): one big table. */
static uint32_t one_slot(const void *key, size_t klen)
{
    (void)key;
    (void)klen;
    return 3;
}

static engine_slot_fn g_fn = few_slots;

static void tweak_slots(struct engine_opts *o)
{
    o->slot_fn = g_fn;
    o->n_slots = FEW_SLOTS;
    o->max_file_size = 64 * 1024; /* several files: merges have work */
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- index checks ---- */

struct tally
{
    uint64_t per_slot[FEW_SLOTS];
    uint64_t total;
};

static bool tally_cb(void *data,
                     const void *key,
                     size_t klen,
                     const struct engine_meta *meta)
{
    (void)meta;
    struct tally *t = data;
    t->per_slot[g_fn(key, klen)]++;
    t->total++;
    return true;
}

/* The index agrees with the engine's keys: each slot's count is its number
 * of keys (by foreach), and a fold of all slots in small batches with no
 * change between them visits each key exactly once, in its slot. */
static void check_index(struct engine *e)
{
    struct tally all = {0};
    assert_int_equal(engine_foreach(e, tally_cb, &all), RK_OK);
    for (uint32_t s = 0; s < FEW_SLOTS; s++) {
        uint64_t n = ~0ull;
        assert_int_equal(engine_slot_count(e, s, &n), RK_OK);
        assert_int_equal(n, all.per_slot[s]);
    }
    struct tally folded = {0};
    uint64_t cur = ENGINE_FOLD_START;
    int calls = 0;
    do {
        assert_int_equal(engine_fold_slots(e, 0, FEW_SLOTS - 1, cur, 5,
                                           tally_cb, &folded, &cur),
                         RK_OK);
        assert_true(++calls < 1000000);
    } while (cur != ENGINE_FOLD_DONE);
    assert_memory_equal(&folded, &all, sizeof(all));
    struct engine_stats st;
    engine_stats(e, &st);
    assert_int_equal(st.live_keys, all.total);
}

/* ---- counts match a model ---- */

#define MODEL_KEYS 600

struct model
{
    bool present[MODEL_KEYS];
    bool expired[MODEL_KEYS]; /* written with an expiry long past */
};

static void model_check(struct engine *e, struct model *m)
{
    uint64_t want[FEW_SLOTS] = {0};
    for (int i = 0; i < MODEL_KEYS; i++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "m%d", i);
        int rc = engine_get(e, k, (size_t)kl, NULL, NULL);
        if (m->present[i] && m->expired[i] && rc == RK_ENOTFOUND) {
            m->present[i] = false; /* merge may drop an expired record */
        }
        assert_int_equal(rc, m->present[i] ? RK_OK : RK_ENOTFOUND);
        want[few_slots(k, (size_t)kl)] += m->present[i];
    }
    for (uint32_t s = 0; s < FEW_SLOTS; s++) {
        uint64_t n = 0;
        assert_int_equal(engine_slot_count(e, s, &n), RK_OK);
        assert_int_equal(n, want[s]);
    }
    check_index(e);
}

static void run_count_model(const char *kind, uint64_t seed, int steps)
{
    printf("slot counts: engine=%s seed=%" PRIu64 "\n", kind, seed);
    char dir[256];
    st_tmpdir(dir, sizeof(dir), "slot");
    g_fn = few_slots;
    struct engine *e = st_open(kind, dir, tweak_slots);
    assert_non_null(e);
    bool persistent = strcmp(kind, "bitcask") == 0;
    struct model m;
    memset(&m, 0, sizeof(m));
    uint64_t s = seed;
    int reopens = 0, merges = 0, clears = 0;
    for (int step = 0; step < steps; step++) {
        int op = (int)(rng_next(&s) % 1000);
        int i = (int)(rng_next(&s) % MODEL_KEYS);
        char k[16];
        int kl = snprintf(k, sizeof(k), "m%d", i);
        if (op < 600) {
            /* expiry on and off changes the entry's size: the slot
             * links move with it */
            bool exp = rng_next(&s) % 4 == 0;
            bool past = exp && rng_next(&s) % 2 == 0;
            struct engine_meta meta = {.timestamp = (uint64_t)step,
                                       .expire_at_ms = !exp   ? 0
                                                       : past ? 1
                                                              : UINT64_MAX / 2};
            char v[64];
            size_t vl = rng_next(&s) % sizeof(v);
            memset(v, 'a' + i % 26, vl);
            assert_int_equal(engine_put(e, k, (size_t)kl, v, vl, &meta, NULL),
                             RK_OK);
            m.present[i] = true;
            m.expired[i] = past;
        } else if (op < 950) {
            int rc = engine_delete(e, k, (size_t)kl, (uint64_t)step, NULL);
            assert_int_equal(rc, m.present[i] ? RK_OK : RK_ENOTFOUND);
            m.present[i] = false;
        } else if (op < 975) {
            assert_int_equal(engine_merge(e, true), RK_OK);
            merges++;
        } else if (op < 998) {
            if (persistent) {
                assert_int_equal(engine_close(e), RK_OK);
                e = st_open(kind, dir, tweak_slots);
                assert_non_null(e);
                reopens++;
            }
        } else {
            assert_int_equal(engine_clear(e, NULL), RK_OK);
            memset(&m, 0, sizeof(m));
            clears++;
        }
        if (step % 50 == 0 || op >= 950) {
            model_check(e, &m);
        }
    }
    model_check(e, &m);
    assert_int_equal(engine_close(e), RK_OK);
    if (persistent) {
        e = st_open(kind, dir, tweak_slots);
        model_check(e, &m);
        engine_close(e);
    }
    printf("slot counts: engine=%s seed=%" PRIu64
           " steps=%d reopens=%d merges=%d clears=%d\n",
           kind, seed, steps, reopens, merges, clears);
    st_rmrf(dir);
}

static void test_slot_index_counts_match_a_model_bitcask(void **st)
{
    (void)st;
    run_count_model("bitcask", g_seed, 6000);
}

static void test_slot_index_counts_match_a_model_memory(void **st)
{
    (void)st;
    run_count_model("memory", g_seed + 1, 6000);
}

/* ---- the fold's guarantee ---- */

#define STABLE 3000 /* keys present for the whole fold */

struct seen
{
    uint32_t first, last;    /* the fold's slot range */
    uint32_t stable[STABLE]; /* visits of each stable key */
    uint64_t visits;         /* every visit */
    uint64_t outside;        /* visits of keys outside the range */
};

static bool seen_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *meta)
{
    (void)meta;
    struct seen *sn = data;
    uint32_t slot = g_fn(key, klen);
    sn->visits++;
    sn->outside += slot < sn->first || slot > sn->last;
    char k[16];
    if (klen < sizeof(k) && ((const char *)key)[0] == 's') {
        memcpy(k, key, klen);
        k[klen] = '\0';
        int i = atoi(k + 1);
        if (i >= 0 && i < STABLE) {
            sn->stable[i]++;
        }
    }
    return true;
}

static void put_key(struct engine *e, const char *k, uint64_t exp)
{
    struct engine_meta m = {.timestamp = 1, .expire_at_ms = exp};
    assert_int_equal(engine_put(e, k, strlen(k), "value", 5, &m, NULL), RK_OK);
}

/* Adds or removes the volatile keys "v0".."v<n-1>" (the slot tables grow
 * about four times, then shrink as much: a resize between batches), and
 * re-puts some stable keys with another expiry (another entry size: the
 * slot links move with the entry). */
static void churn(struct engine *e, uint64_t *s, int n, bool add)
{
    for (int j = 0; j < n; j++) {
        char k[24];
        snprintf(k, sizeof(k), "v%d", j);
        if (add) {
            put_key(e, k, 0);
        } else {
            engine_delete(e, k, strlen(k), 2, NULL);
        }
    }
    for (int j = 0; j < 200; j++) {
        char k[24];
        snprintf(k, sizeof(k), "s%d", (int)(rng_next(s) % STABLE));
        put_key(e, k, rng_next(s) % 2 ? 0 : UINT64_MAX / 2);
    }
}

static void check_seen(const struct seen *sn)
{
    assert_int_equal(sn->outside, 0);
    for (int i = 0; i < STABLE; i++) {
        char k[16];
        snprintf(k, sizeof(k), "s%d", i);
        uint32_t slot = g_fn(k, strlen(k));
        bool in = slot >= sn->first && slot <= sn->last;
        if (in && sn->stable[i] == 0) {
            fail_msg("stable key %s (slot %u) never visited, seed=%" PRIu64, k,
                     slot, g_seed);
        }
        if (!in) {
            assert_int_equal(sn->stable[i], 0);
        }
    }
}

/*
 * Folds slots first..last of a fresh engine holding STABLE stable keys in
 * batches of `count`, and after every `every` batches, in turn: adds many
 * volatile keys (the slot tables grow), deletes them again (they shrink),
 * re-puts stable keys with another size, merges and, for bitcask, closes and
 * reopens (the index is rebuilt from hint and data files).
 */
static void run_fold(const char *kind,
                     engine_slot_fn fn,
                     uint32_t first,
                     uint32_t last,
                     size_t count,
                     int every)
{
    char dir[256];
    st_tmpdir(dir, sizeof(dir), "fold");
    g_fn = fn;
    struct engine *e = st_open(kind, dir, tweak_slots);
    assert_non_null(e);
    bool persistent = strcmp(kind, "bitcask") == 0;
    for (int i = 0; i < STABLE; i++) {
        char k[16];
        snprintf(k, sizeof(k), "s%d", i);
        put_key(e, k, 0);
    }
    struct seen *sn = calloc(1, sizeof(*sn));
    sn->first = first;
    sn->last = last;
    uint64_t s = g_seed ^ (uint64_t)count;
    uint64_t cur = ENGINE_FOLD_START;
    int batch = 0, reopens = 0;
    while (cur != ENGINE_FOLD_DONE) {
        assert_int_equal(
            engine_fold_slots(e, first, last, cur, count, seen_cb, sn, &cur),
            RK_OK);
        if (++batch % every != 0) {
            continue;
        }
        switch ((batch / every) % 6) {
            case 1:
                churn(e, &s, 2000, true); /* grow */
                break;
            case 2:
                churn(e, &s, 6000, false); /* shrink */
                break;
            case 3:
                assert_int_equal(engine_merge(e, true), RK_OK);
                break;
            case 4:
                if (persistent) {
                    assert_int_equal(engine_close(e), RK_OK);
                    e = st_open(kind, dir, tweak_slots);
                    assert_non_null(e);
                    reopens++;
                }
                break;
            default:
                churn(e, &s, 300, true);
                break;
        }
        assert_true(batch < 100000);
    }
    check_seen(sn);
    /* A finished cursor stays finished. */
    uint64_t again = 7;
    assert_int_equal(engine_fold_slots(e, first, last, ENGINE_FOLD_DONE, count,
                                       seen_cb, sn, &again),
                     RK_OK);
    assert_int_equal(again, ENGINE_FOLD_DONE);
    check_index(e);
    printf(
        "fold: engine=%s slots=%u..%u count=%zu batches=%d reopens=%d "
        "visits=%" PRIu64 " seed=%" PRIu64 "\n",
        kind, first, last, count, batch, reopens, sn->visits, g_seed);
    free(sn);
    assert_int_equal(engine_close(e), RK_OK);
    st_rmrf(dir);
}

static void test_slot_index_fold_visits_stable_keys_under_churn_bitcask(
    void **st)
{
    (void)st;
    run_fold("bitcask", few_slots, 3, 9, 20, 2);
    run_fold("bitcask", few_slots, 5, 5, 10, 1);
    run_fold("bitcask", one_slot, 3, 3, 40, 2); /* one slot of 3,000 keys */
    run_fold("bitcask", one_slot, 0, FEW_SLOTS - 1, 1, 100);
}

static void test_slot_index_fold_visits_stable_keys_under_churn_memory(
    void **st)
{
    (void)st;
    run_fold("memory", few_slots, 3, 9, 20, 2);
    run_fold("memory", few_slots, 0, FEW_SLOTS - 1, 100, 1);
    run_fold("memory", one_slot, 3, 3, 40, 2);
}

/*
 * kill -9 in the middle of a fold: a child folds two batches, sends its
 * cursor and what it visited up a pipe, makes changes durable
 * (engine_sync), and SIGKILLs itself without closing the engine.  The
 * parent reopens the directory (recovery, not a clean close; the slot
 * tables are rebuilt smaller than the child's were) and resumes from the
 * child's cursor: together they visit every stable key.
 */
static void test_slot_index_fold_resumes_after_kill_9(void **st)
{
    (void)st;
    char dir[256];
    st_tmpdir(dir, sizeof(dir), "kill");
    g_fn = few_slots;
    struct engine *e = st_open("bitcask", dir, tweak_slots);
    assert_non_null(e);
    for (int i = 0; i < STABLE; i++) {
        char k[16];
        snprintf(k, sizeof(k), "s%d", i);
        put_key(e, k, 0);
    }
    assert_int_equal(engine_close(e), RK_OK);
    struct seen *sn = calloc(1, sizeof(*sn));
    sn->first = 0;
    sn->last = FEW_SLOTS - 1;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        struct engine *ce = st_open("bitcask", dir, tweak_slots);
        if (ce == NULL) {
            _exit(2);
        }
        uint64_t s = g_seed;
        churn(ce, &s, 8000, true); /* big tables while folding */
        uint64_t cur = ENGINE_FOLD_START;
        for (int b = 0; b < 2; b++) {
            engine_fold_slots(ce, 0, FEW_SLOTS - 1, cur, 900, seen_cb, sn,
                              &cur);
        }
        churn(ce, &s, 8000, false); /* small ones after the restart */
        engine_sync(ce);
        if (write(pfd[1], &cur, sizeof(cur)) != (ssize_t)sizeof(cur) ||
            write(pfd[1], sn, sizeof(*sn)) != (ssize_t)sizeof(*sn)) {
            _exit(2);
        }
        raise(SIGKILL);
        _exit(3);
    }
    close(pfd[1]);
    uint64_t cur = 0;
    size_t got = 0;
    while (got < sizeof(cur) + sizeof(*sn)) {
        char *dst = got < sizeof(cur) ? (char *)&cur + got
                                      : (char *)sn + (got - sizeof(cur));
        size_t want = got < sizeof(cur) ? sizeof(cur) - got
                                        : sizeof(*sn) - (got - sizeof(cur));
        ssize_t r = read(pfd[0], dst, want);
        assert_true(r > 0);
        got += (size_t)r;
    }
    close(pfd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    uint64_t before = sn->visits;
    assert_true(before >= 1800 && cur != ENGINE_FOLD_DONE);
    e = st_open("bitcask", dir, tweak_slots);
    assert_non_null(e);
    while (cur != ENGINE_FOLD_DONE) {
        assert_int_equal(
            engine_fold_slots(e, 0, FEW_SLOTS - 1, cur, 97, seen_cb, sn, &cur),
            RK_OK);
    }
    check_seen(sn);
    check_index(e);
    printf("kill -9 fold: visits before=%" PRIu64 " after=%" PRIu64 "\n",
           before, sn->visits - before);
    free(sn);
    assert_int_equal(engine_close(e), RK_OK);
    st_rmrf(dir);
}

/* ---- edges and errors ---- */

static bool stop_after_3(void *data,
                         const void *key,
                         size_t klen,
                         const struct engine_meta *meta)
{
    (void)key;
    (void)klen;
    (void)meta;
    int *n = data;
    return ++*n < 3;
}

static bool value_cb(void *data,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen,
                     const struct engine_meta *meta)
{
    int *n = data;
    char want[32];
    int wl =
        snprintf(want, sizeof(want), "val-%.*s", (int)klen, (const char *)key);
    assert_int_equal(vlen, (size_t)wl);
    assert_int_equal(meta->value_len, vlen);
    assert_memory_equal(val, want, vlen);
    ++*n;
    return true;
}

static void run_edges(const char *kind)
{
    char dir[256];
    st_tmpdir(dir, sizeof(dir), "edge");
    g_fn = few_slots;
    struct engine *e = st_open(kind, dir, tweak_slots);
    assert_non_null(e);
    uint64_t next = 42, n = 42;
    /* an empty engine: done at once, every count 0 */
    assert_int_equal(engine_fold_slots(e, 0, FEW_SLOTS - 1, ENGINE_FOLD_START,
                                       10, seen_cb, NULL, &next),
                     RK_OK);
    assert_int_equal(next, ENGINE_FOLD_DONE);
    assert_int_equal(engine_slot_count(e, FEW_SLOTS - 1, &n), RK_OK);
    assert_int_equal(n, 0);
    /* bad arguments: nothing written */
    next = n = 42;
    assert_int_equal(engine_slot_count(e, FEW_SLOTS, &n), RK_EINVAL);
    assert_int_equal(
        engine_fold_slots(e, 0, FEW_SLOTS, 0, 10, seen_cb, NULL, &next),
        RK_EINVAL);
    assert_int_equal(engine_fold_slots(e, 5, 4, 0, 10, seen_cb, NULL, &next),
                     RK_EINVAL);
    assert_int_equal(engine_fold_slots(e, 0, 4, 0, 0, seen_cb, NULL, &next),
                     RK_EINVAL);
    assert_int_equal(
        engine_fold_slots(e, 0, 4, 1ull << 50, 10, seen_cb, NULL, &next),
        RK_EINVAL);
    assert_int_equal(next, 42);
    assert_int_equal(n, 42);
    for (int i = 0; i < 200; i++) {
        char k[16], v[32];
        snprintf(k, sizeof(k), "e%d", i);
        int vl = snprintf(v, sizeof(v), "val-%s", k);
        struct engine_meta m = {.timestamp = 1};
        assert_int_equal(engine_put(e, k, strlen(k), v, (size_t)vl, &m, NULL),
                         RK_OK);
    }
    /* a stop by the callback resumes at the bucket it stopped in */
    int calls = 0;
    assert_int_equal(engine_fold_slots(e, 0, FEW_SLOTS - 1, ENGINE_FOLD_START,
                                       100, stop_after_3, &calls, &next),
                     RK_OK);
    assert_int_equal(calls, 3);
    assert_true(next != ENGINE_FOLD_DONE);
    /* a cursor beyond the range is done; before it, starts the range */
    assert_int_equal(
        engine_fold_slots(e, 0, 2, (uint64_t)9 << 32, 10, seen_cb, NULL, &next),
        RK_OK);
    assert_int_equal(next, ENGINE_FOLD_DONE);
    /* values: every key of every slot once, with its value */
    int values = 0;
    uint64_t cur = ENGINE_FOLD_START;
    do {
        assert_int_equal(engine_fold_slots_values(e, 0, FEW_SLOTS - 1, cur, 9,
                                                  value_cb, &values, &cur),
                         RK_OK);
    } while (cur != ENGINE_FOLD_DONE);
    assert_int_equal(values, 200);
    assert_int_equal(engine_close(e), RK_OK);
    st_rmrf(dir);
    /* without slot_fn: no index, RK_EINVAL */
    e = st_open(kind, dir, NULL);
    assert_non_null(e);
    assert_int_equal(engine_slot_count(e, 0, &n), RK_EINVAL);
    assert_int_equal(engine_fold_slots(e, 0, 0, 0, 10, seen_cb, NULL, &next),
                     RK_EINVAL);
    assert_int_equal(engine_close(e), RK_OK);
    st_rmrf(dir);
}

static void test_slot_index_edges_and_errors(void **st)
{
    (void)st;
    run_edges("bitcask");
    run_edges("memory");
}

static void tweak_bad_slots(struct engine_opts *o)
{
    o->slot_fn = few_slots;
    o->n_slots = 0;
}

static void test_slot_index_rejects_zero_slots(void **st)
{
    (void)st;
    char dir[256];
    st_tmpdir(dir, sizeof(dir), "bad");
    assert_null(st_open("memory", dir, tweak_bad_slots));
    assert_null(st_open("bitcask", dir, tweak_bad_slots));
    st_rmrf(dir);
}

/* ---- allocation failures (STYLE.md 1.7) ---- */

/* Fails the Nth allocation, N = 1, 2, ..., of a script that grows and
 * shrinks slot tables (all keys in one slot): a failed table resize keeps
 * the old table, a failed put changes nothing; the index stays exact. */
static void test_slot_index_failed_allocation_keeps_the_index_exact(void **st)
{
    (void)st;
    g_fn = one_slot;
    long n;
    for (n = 1;; n++) {
        struct engine *e = st_open("memory", "unused", tweak_slots);
        assert_non_null(e);
        struct fail_alloc fa = {0, n, 0};
        struct rk_allocator a = {&fa, fa_malloc, fa_calloc, fa_realloc,
                                 fa_free};
        rk_set_allocator(&a);
        for (int i = 0; i < 300; i++) {
            char k[16];
            snprintf(k, sizeof(k), "k%d", i);
            struct engine_meta m = {.timestamp = 1,
                                    .expire_at_ms = i % 3 ? 0 : 99};
            int rc = engine_put(e, k, strlen(k), "v", 1, &m, NULL);
            assert_true(rc == RK_OK || rc == RK_ENOMEM);
        }
        for (int i = 0; i < 300; i += 2) {
            char k[16];
            snprintf(k, sizeof(k), "k%d", i);
            engine_delete(e, k, strlen(k), 2, NULL);
        }
        rk_set_allocator(NULL);
        check_index(e);
        engine_close(e);
        if (fa.failed == 0) {
            break;
        }
    }
    printf("slot index alloc faults: allocations_failed_one_by_one=%ld\n",
           n - 1);
    g_fn = few_slots;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--seed=", 7) == 0) {
            g_seed = strtoull(argv[i] + 7, NULL, 0);
        }
    }
    printf("seed=%" PRIu64 " (replay with --seed=%" PRIu64 ")\n", g_seed,
           g_seed);
    rk_log_set_level(RK_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_index_counts_match_a_model_bitcask),
        cmocka_unit_test(test_slot_index_counts_match_a_model_memory),
        cmocka_unit_test(
            test_slot_index_fold_visits_stable_keys_under_churn_bitcask),
        cmocka_unit_test(
            test_slot_index_fold_visits_stable_keys_under_churn_memory),
        cmocka_unit_test(test_slot_index_fold_resumes_after_kill_9),
        cmocka_unit_test(test_slot_index_edges_and_errors),
        cmocka_unit_test(test_slot_index_rejects_zero_slots),
        cmocka_unit_test(
            test_slot_index_failed_allocation_keeps_the_index_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

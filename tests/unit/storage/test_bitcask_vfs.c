/*
 * test_bitcask_vfs.c - bitcask over a per-engine vfs (storage/vfs.h;
 * issue 11 item 2; TESTING.md B2.3): every file operation reaches the
 * engine's own (in-memory) disk, a fault injected into one engine's disk
 * turns only that engine read-only, and simulated power losses
 * (sim_disk.h, after SQLite's test6.c) keep every acknowledged write and
 * cut torn tails.  The engines run with inline executors and a manual
 * clock (sim_env.h), as nodes of the cluster simulator will.
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
#include <time.h>
#include <unistd.h>

#include "sim_disk.h"
#include "sim_env.h"
#include "storage/internal.h"
#include "storage_test.h"

/* One simulated node's storage: disk, clock, executors, engine. */
struct node
{
    struct sim_disk *disk;
    struct sim_env env;
    struct sim_exec sync_ex, bg_ex;
    struct engine *e;
    uint64_t cb_seq; /* highest seq durable_cb reported */
    int cb_calls;
};

static void node_durable_cb(void *data, uint64_t seq)
{
    struct node *n = data;
    if (seq > n->cb_seq) {
        n->cb_seq = seq;
    }
    n->cb_calls++;
}

struct node_cfg
{
    enum engine_sync_mode sync;
    uint32_t interval_ms;
    bool threads; /* the engine's own threads instead of executors */
    bool auto_merge;
};

static int node_open(struct node *n, const struct node_cfg *cfg)
{
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = "/sim/node";
    o.sync_mode = cfg->sync;
    o.sync_interval_ms = cfg->interval_ms ? cfg->interval_ms : 100;
    o.max_file_size = 4096;
    o.merge_disabled = !cfg->auto_merge;
    o.merge_dead_ratio = 0.3;
    o.durable_cb = node_durable_cb;
    o.durable_data = n;
    o.vfs = &n->disk->vfs;
    if (!cfg->threads) { /* the manual env is single-threaded */
        o.env = &n->env.env;
        o.sync_executor = &n->sync_ex.ex;
        o.bg_executor = &n->bg_ex.ex;
    }
    n->cb_seq = 0;
    n->cb_calls = 0;
    char err[512] = "";
    int rc = engine_open("bitcask", &o, &n->e, err, sizeof(err));
    if (rc != RK_OK) {
        n->e = NULL;
        printf("node_open: %s: %s\n", rk_errname(rc), err);
    }
    return rc;
}

static void node_init(struct node *n, uint64_t seed)
{
    memset(n, 0, sizeof(*n));
    n->disk = sim_disk_create();
    sim_env_init(&n->env, seed);
    sim_exec_init(&n->sync_ex, true);
    sim_exec_init(&n->bg_ex, true);
}

static void node_run(struct node *n)
{
    while (sim_exec_run(&n->sync_ex) + sim_exec_run(&n->bg_ex) > 0) {
    }
}

static void node_fini(struct node *n)
{
    engine_close(n->e);
    n->e = NULL;
    sim_disk_destroy(n->disk);
    n->disk = NULL;
}

static int put_str(struct engine *e, const char *k, const char *v, uint64_t *s)
{
    return engine_put(e, k, strlen(k), v, strlen(v), NULL, s);
}

static bool has_value(struct engine *e, const char *k, const char *want)
{
    char *v = st_get(e, k);
    bool ok = v != NULL && strcmp(v, want) == 0;
    free(v);
    return ok;
}

static bool read_only(struct engine *e)
{
    struct engine_stats st;
    engine_stats(e, &st);
    return st.read_only;
}

/* ---- the vfs is the only way out ---- */

static void test_bitcask_vfs_every_file_call_goes_through_the_vfs(void **st)
{
    (void)st;
    /* "/sim" exists only on the simulated disk: a direct mkdir(2),
     * open(2), opendir(3) or mmap(2) of a file would fail or show up. */
    bool host_has_sim = access("/sim", F_OK) == 0;
    if (host_has_sim) {
        printf("note: this host has a /sim; not checking it stays absent\n");
    }
    struct node n;
    node_init(&n, 1);
    struct node_cfg cfg = {.sync = ENGINE_SYNC_ALWAYS};
    assert_int_equal(node_open(&n, &cfg), RK_OK);
    char k[32], v[64];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof(k), "key%03d", i % 60);
        snprintf(v, sizeof(v), "value-%d-xxxxxxxxxxxxxxxx", i);
        assert_int_equal(put_str(n.e, k, v, NULL), RK_OK);
    }
    node_run(&n);
    assert_int_equal(engine_merge(n.e, true), RK_OK); /* maps, renames */
    node_run(&n);
    struct engine_stats s;
    engine_stats(n.e, &s);
    assert_int_equal(s.merges_done, 1);
    assert_int_equal(engine_close(n.e), RK_OK);
    assert_true(host_has_sim || access("/sim", F_OK) != 0);
    assert_true(sim_disk_file_len(n.disk, "/sim/node/LOCK") == 0);
    assert_true(n.disk->syncs > 10);
    /* Reopen from hint files and data files on the simulated disk. */
    assert_int_equal(node_open(&n, &cfg), RK_OK);
    engine_stats(n.e, &s);
    assert_int_equal(s.live_keys, 60);
    assert_int_equal(s.hint_fallbacks, 0);
    for (int i = 240; i < 300; i++) {
        snprintf(k, sizeof(k), "key%03d", i % 60);
        snprintf(v, sizeof(v), "value-%d-xxxxxxxxxxxxxxxx", i);
        assert_true(has_value(n.e, k, v));
    }
    /* The lock is the disk's: a second opener of this disk is refused. */
    struct engine *second = NULL;
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = "/sim/node";
    o.vfs = &n.disk->vfs;
    char err[256] = "";
    assert_int_equal(engine_open("bitcask", &o, &second, err, sizeof(err)),
                     RK_ELOCKED);
    node_fini(&n);
}

/* ---- faults stay on their own engine ---- */

static void fault_on_one_of_two(bool threads)
{
    struct node a, b;
    node_init(&a, 11);
    node_init(&b, 12);
    struct node_cfg cfg = {.sync = ENGINE_SYNC_ALWAYS, .threads = threads};
    assert_int_equal(node_open(&a, &cfg), RK_OK);
    assert_int_equal(node_open(&b, &cfg), RK_OK);
    uint64_t sa = 0, sb = 0;
    assert_int_equal(put_str(a.e, "k", "1", &sa), RK_OK);
    assert_int_equal(put_str(b.e, "k", "1", &sb), RK_OK);
    if (!threads) {
        node_run(&a);
        node_run(&b);
    }
    for (int i = 0; i < 5000 && (engine_durable_seq(a.e) < sa ||
                                 engine_durable_seq(b.e) < sb);
         i++) {
        usleep(1000);
    }
    assert_true(engine_durable_seq(a.e) >= sa);
    assert_true(engine_durable_seq(b.e) >= sb);
    /* A's next fdatasync fails with EIO; B's disk is untouched. */
    pthread_mutex_lock(&a.disk->mu);
    a.disk->fail_at = a.disk->points + 1;
    pthread_mutex_unlock(&a.disk->mu);
    assert_int_equal(put_str(a.e, "k", "2", &sa), RK_OK);
    assert_int_equal(put_str(b.e, "k", "2", &sb), RK_OK);
    if (!threads) {
        node_run(&a);
        node_run(&b);
    }
    for (int i = 0;
         i < 5000 && (!read_only(a.e) || engine_durable_seq(b.e) < sb); i++) {
        usleep(1000);
    }
    assert_true(read_only(a.e));
    assert_false(read_only(b.e));
    assert_true(engine_durable_seq(a.e) < sa); /* never acknowledged */
    assert_true(engine_durable_seq(b.e) >= sb);
    assert_int_equal(put_str(a.e, "x", "y", NULL), RK_EREADONLY);
    assert_int_equal(engine_tick(a.e), RK_EREADONLY);
    assert_int_equal(put_str(b.e, "x", "y", &sb), RK_OK);
    assert_int_equal(engine_tick(b.e), RK_OK);
    assert_int_equal(engine_sync(b.e), RK_OK);
    assert_true(has_value(a.e, "k", "2")); /* reads go on */
    assert_true(has_value(b.e, "x", "y"));
    assert_int_equal(engine_close(a.e), RK_EREADONLY);
    a.e = NULL;
    /* Reopened, A recovers what its disk holds; B was never affected. */
    a.disk->fail_at = 0;
    assert_int_equal(node_open(&a, &cfg), RK_OK);
    assert_true(has_value(a.e, "k", "1") || has_value(a.e, "k", "2"));
    assert_int_equal(put_str(a.e, "z", "1", NULL), RK_OK);
    node_fini(&a);
    node_fini(&b);
}

static void test_bitcask_vfs_fsync_fault_turns_only_its_engine_read_only(
    void **st)
{
    (void)st;
    fault_on_one_of_two(false); /* inline executors */
    fault_on_one_of_two(true);  /* the engines' own threads */
}

/* ---- a full disk, recovered in place (issue 12 item 3) ---- */

static void full_disk_recovers(struct node_cfg cfg)
{
    struct node a;
    node_init(&a, 21);
    assert_int_equal(node_open(&a, &cfg), RK_OK);
    char k[16];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(put_str(a.e, k, "v1", NULL), RK_OK);
    }
    assert_int_equal(engine_sync(a.e), RK_OK);
    uint64_t acked = engine_acked_seq(a.e);
    /* The disk fills up: the next hand-off fails, short then ENOSPC. */
    pthread_mutex_lock(&a.disk->mu);
    a.disk->full = true;
    pthread_mutex_unlock(&a.disk->mu);
    uint64_t lost = 0;
    assert_int_equal(put_str(a.e, "k1", "v2", NULL), RK_OK);
    assert_int_equal(put_str(a.e, "new", "x", &lost), RK_OK);
    (void)engine_handoff(a.e);
    if (!cfg.threads) {
        node_run(&a);
    }
    for (int i = 0; i < 5000 && !read_only(a.e); i++) {
        usleep(1000);
    }
    assert_true(read_only(a.e));
    struct engine_stats st;
    engine_stats(a.e, &st);
    assert_int_equal(st.error, RK_ENOSPC);
    assert_true(engine_acked_seq(a.e) < lost); /* never acknowledged */
    assert_int_equal(put_str(a.e, "x", "y", NULL), RK_EREADONLY);
    /* Still full: recovery fails and changes nothing. */
    char err[256];
    assert_int_not_equal(engine_recover(a.e, err, sizeof(err)), RK_OK);
    assert_true(read_only(a.e));
    assert_true(has_value(a.e, "k2", "v1"));
    /* Space returns: back to writable without a reopen. */
    pthread_mutex_lock(&a.disk->mu);
    a.disk->full = false;
    pthread_mutex_unlock(&a.disk->mu);
    assert_int_equal(engine_recover(a.e, err, sizeof(err)), RK_OK);
    assert_false(read_only(a.e));
    engine_stats(a.e, &st);
    assert_int_equal(st.error, RK_OK);
    assert_true(st.recovered_truncated_bytes > 0); /* the torn tail */
    assert_true(engine_acked_seq(a.e) >= acked);
    /* The torn write is gone; one that reached the file whole may stay
     * (never acknowledged: like a crash, either outcome is allowed). */
    char *k1 = st_get(a.e, "k1");
    assert_non_null(k1);
    assert_true(strcmp(k1, "v1") == 0 || strcmp(k1, "v2") == 0);
    assert_null(st_get(a.e, "new"));
    for (int i = 2; i < 40; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        assert_true(has_value(a.e, k, "v1"));
    }
    uint64_t s2 = 0;
    assert_int_equal(put_str(a.e, "after", "1", &s2), RK_OK);
    assert_true(s2 > lost); /* sequence numbers go on */
    assert_int_equal(engine_sync(a.e), RK_OK);
    if (!cfg.threads) {
        node_run(&a);
    }
    assert_int_equal(engine_close(a.e), RK_OK);
    a.e = NULL;
    /* A reopen sees the same: every acknowledged write, nothing lost. */
    assert_int_equal(node_open(&a, &cfg), RK_OK);
    for (int i = 2; i < 40; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        assert_true(has_value(a.e, k, "v1"));
    }
    assert_true(has_value(a.e, "k1", k1));
    free(k1);
    assert_true(has_value(a.e, "after", "1"));
    assert_null(st_get(a.e, "new"));
    node_fini(&a);
}

static void test_bitcask_vfs_full_disk_recovers_in_place(void **st)
{
    (void)st;
    full_disk_recovers((struct node_cfg){.sync = ENGINE_SYNC_EVERY});
    full_disk_recovers((struct node_cfg){.sync = ENGINE_SYNC_NONE});
    full_disk_recovers((struct node_cfg){.sync = ENGINE_SYNC_ALWAYS});
    full_disk_recovers(
        (struct node_cfg){.sync = ENGINE_SYNC_EVERY, .threads = true});
}

/* An I/O error is not recovered in place: only a restart may trust the
 * disk again (STYLE.md 1.3). */
static void test_bitcask_vfs_io_error_is_not_recovered_in_place(void **st)
{
    (void)st;
    struct node a;
    node_init(&a, 22);
    struct node_cfg cfg = {.sync = ENGINE_SYNC_ALWAYS};
    assert_int_equal(node_open(&a, &cfg), RK_OK);
    a.disk->fail_at = a.disk->points + 1;
    assert_int_equal(put_str(a.e, "k", "1", NULL), RK_OK);
    node_run(&a);
    assert_true(read_only(a.e));
    a.disk->fail_at = 0;
    char err[256];
    assert_int_equal(engine_recover(a.e, err, sizeof(err)), RK_EREADONLY);
    assert_non_null(strstr(err, "restart the node"));
    assert_true(read_only(a.e));
    node_fini(&a);
}

/* ---- power loss ---- */

static void test_bitcask_vfs_power_loss_keeps_durable_writes_cuts_torn_tail(
    void **st)
{
    (void)st;
    int torn_runs = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        struct node n;
        node_init(&n, seed);
        struct node_cfg cfg = {.sync = ENGINE_SYNC_ALWAYS};
        assert_int_equal(node_open(&n, &cfg), RK_OK);
        char k[32], v[64];
        for (int i = 0; i < 20; i++) {
            snprintf(k, sizeof(k), "k%02d", i);
            snprintf(v, sizeof(v), "durable-%02d", i);
            assert_int_equal(put_str(n.e, k, v, NULL), RK_OK);
        }
        node_run(&n);
        uint64_t durable = engine_durable_seq(n.e);
        assert_int_equal(durable, 20);
        assert_int_equal(n.cb_seq, 20);
        for (int i = 20; i < 25; i++) {
            snprintf(k, sizeof(k), "k%02d", i);
            snprintf(v, sizeof(v), "unsynced-%02d", i);
            assert_int_equal(put_str(n.e, k, v, NULL), RK_OK);
        }
        /* Power fails at the sync job's fdatasync, after its pwrite. */
        n.disk->crash_at = n.disk->points + 1;
        node_run(&n);
        assert_true(n.disk->dead);
        assert_int_equal(engine_durable_seq(n.e), durable);
        assert_int_equal(n.cb_seq, durable); /* never acknowledged */
        enum sim_crash_model m = seed <= 2 ? SIM_CRASH_DROP : SIM_CRASH_PREFIX;
        struct sim_disk *after = sim_disk_after_crash(n.disk, m, seed);
        node_fini(&n); /* close on a dead disk: must not hang */
        n.disk = after;
        assert_int_equal(node_open(&n, &cfg), RK_OK);
        for (int i = 0; i < 20; i++) {
            snprintf(k, sizeof(k), "k%02d", i);
            snprintf(v, sizeof(v), "durable-%02d", i);
            assert_true(has_value(n.e, k, v));
        }
        /* Of the unsynced tail, a prefix of records survives whole. */
        bool gone = false;
        for (int i = 20; i < 25; i++) {
            snprintf(k, sizeof(k), "k%02d", i);
            snprintf(v, sizeof(v), "unsynced-%02d", i);
            bool here = has_value(n.e, k, v);
            assert_false(here && gone);
            assert_true(here ||
                        engine_get(n.e, k, 3, NULL, NULL) == RK_ENOTFOUND);
            gone = gone || !here;
        }
        struct engine_stats s;
        engine_stats(n.e, &s);
        if (m == SIM_CRASH_DROP) {
            assert_true(gone);
            assert_int_equal(s.recovered_truncated_bytes, 0);
        }
        torn_runs += s.recovered_truncated_bytes > 0;
        node_fini(&n);
    }
    printf("power loss: runs=12 torn_tails_cut=%d\n", torn_runs);
    assert_true(torn_runs > 0);
}

/*
 * The compact form of TESTING.md B2.3: a 200-step script (puts,
 * overwrites, deletes, syncs, rollovers, hint writes, merges with rename
 * and directory fsync, a clear) runs on one node, and the disk loses power
 * at its k-th persistence point (fdatasync, fsync, rename, unlink), for
 * every k until the script completes.  Each crash is recovered under the
 * DROP and PREFIX models (two seeds); every write durable before the crash
 * must be there, and every key must hold a value it had at or after its
 * last durable write (no resurrection).  Under sync=every:100 the writes
 * older than the last unsynced window must also be durable.
 */
#define SW_STEPS 200
#define SW_KEYS  24

enum sw_op
{
    SW_PUT,
    SW_DEL,
    SW_SYNC,
    SW_MERGE,
    SW_CLEAR,
};

static enum sw_op sw_step(int i, int *key)
{
    uint64_t x = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    *key = (int)(x % SW_KEYS);
    if (i % 29 == 28) {
        return SW_SYNC;
    }
    if (i == 70 || i == 150) {
        return SW_MERGE;
    }
    if (i == 110) {
        return SW_CLEAR;
    }
    return (x >> 8) % 5 == 0 ? SW_DEL : SW_PUT;
}

/* Value of key k after steps [0, upto] ("" = absent; upto -1: none). */
static void sw_value(int upto, int k, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i <= upto; i++) {
        int kk;
        enum sw_op op = sw_step(i, &kk);
        if (op == SW_CLEAR || (kk == k && op == SW_DEL)) {
            out[0] = '\0';
        } else if (kk == k && op == SW_PUT) {
            snprintf(out, len, "v%03d-%s", i,
                     "padding-padding-padding-padding-padding-padding-pad");
        }
    }
}

struct sw_run
{
    int crash_step;    /* the last step begun before the disk died */
    int acked_step;    /* every step <= it was durable */
    uint64_t crash_ms; /* clock at the crash */
    bool completed;    /* the script ended before point k */
};

/* Advances r->acked_step over the steps [.., upto] durable now: write
 * steps whose seq is covered, and the steps between them. */
static void sw_ack(struct node *n,
                   const uint64_t *seq_of,
                   int upto,
                   struct sw_run *r)
{
    uint64_t d = engine_durable_seq(n->e);
    assert_true(n->cb_seq <= d);
    for (int j = r->acked_step + 1; j <= upto; j++) {
        if (seq_of[j] != 0 && seq_of[j] > d) {
            break;
        }
        r->acked_step = j;
    }
}

/* Runs the script on n until the disk dies, running the executors' jobs
 * every `cadence` steps; fills *r. */
static void sw_script(struct node *n,
                      enum engine_sync_mode mode,
                      int cadence,
                      struct sw_run *r)
{
    uint64_t seq_of[SW_STEPS] = {0};
    uint64_t ms_of[SW_STEPS] = {0};
    r->acked_step = -1;
    r->crash_step = -1;
    for (int i = 0; i < SW_STEPS && !n->disk->dead; i++) {
        int k;
        enum sw_op op = sw_step(i, &k);
        char key[16], val[96];
        snprintf(key, sizeof(key), "key%02d", k);
        sw_value(i, k, val, sizeof(val));
        ms_of[i] = n->env.now_ms;
        r->crash_step = i;
        uint64_t seq = 0;
        int rc = RK_OK;
        switch (op) {
            case SW_PUT:
                rc = put_str(n->e, key, val, &seq);
                break;
            case SW_DEL:
                rc = engine_delete(n->e, key, strlen(key), 0, &seq);
                rc = rc == RK_ENOTFOUND ? RK_OK : rc;
                break;
            case SW_SYNC:
                rc = engine_sync(n->e);
                break;
            case SW_MERGE:
                rc = engine_merge(n->e, false);
                rc = rc == RK_EBUSY ? RK_OK : rc; /* an automatic one runs */
                break;
            case SW_CLEAR:
                rc = engine_clear(n->e, &seq);
                break;
        }
        if (rc != RK_OK) {
            if (!n->disk->dead) {
                fail_msg("step %d op %d: %s", i, (int)op, rk_errname(rc));
            }
            seq_of[i] = UINT64_MAX; /* cut short: never acknowledged */
            break;
        }
        seq_of[i] = seq;
        n->env.now_ms += 10;
        if (i % 10 == 9) {
            engine_tick(n->e);
        }
        if (i % cadence == cadence - 1) {
            node_run(n);
        }
        sw_ack(n, seq_of, i, r);
    }
    if (!n->disk->dead) {
        node_run(n);
        engine_tick(n->e);
        node_run(n);
    }
    r->completed = !n->disk->dead;
    r->crash_ms = n->env.now_ms;
    sw_ack(n, seq_of, r->crash_step, r);
    if (mode == ENGINE_SYNC_EVERY && !r->completed) {
        /* Loss only inside the last unsynced window: a tick every 100 ms
         * submits the job when the 100 ms interval is due, jobs run at
         * least every 30 ms, so a write older than 250 ms is durable. */
        for (int j = 0; j <= r->crash_step; j++) {
            if (ms_of[j] + 250 <= r->crash_ms && r->acked_step < j) {
                fail_msg("sync=every: step %d (t=%" PRIu64
                         ") not durable at crash t=%" PRIu64,
                         j, ms_of[j], r->crash_ms);
            }
        }
    }
}

/* Reopens the crashed disk's image under model m; returns wrong keys. */
static int sw_check(struct sim_disk *crashed,
                    enum sim_crash_model m,
                    uint64_t seed,
                    const struct sw_run *r,
                    int *open_failures)
{
    struct node n;
    node_init(&n, seed);
    sim_disk_destroy(n.disk);
    n.disk = sim_disk_after_crash(crashed, m, seed);
    struct node_cfg cfg = {.sync = ENGINE_SYNC_NONE};
    int rc = node_open(&n, &cfg);
    if (rc != RK_OK) {
        (*open_failures)++;
        node_fini(&n);
        return 0;
    }
    int wrong = 0;
    for (int k = 0; k < SW_KEYS; k++) {
        char key[16], got[96] = "", want[96];
        snprintf(key, sizeof(key), "key%02d", k);
        char *v = st_get(n.e, key);
        if (v) {
            snprintf(got, sizeof(got), "%s", v);
            free(v);
        }
        bool ok = false;
        for (int upto = r->acked_step; upto <= r->crash_step && !ok; upto++) {
            sw_value(upto, k, want, sizeof(want));
            ok = strcmp(want, got) == 0;
        }
        if (!ok) {
            printf(
                "power loss: model=%d key=%s got='%s' acked_step=%d "
                "crash_step=%d\n",
                (int)m, key, got, r->acked_step, r->crash_step);
            wrong++;
        }
    }
    node_fini(&n);
    return wrong;
}

struct sweep_total
{
    int points, reopens, wrong, open_failures;
    int random_reopens, random_open_failures, random_wrong;
};

static void sweep(enum engine_sync_mode mode,
                  int cadence,
                  bool auto_merge,
                  struct sweep_total *t)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int points = 0, wrong = 0;
    bool completed = false;
    for (long k = 1; !completed && k < 4000; k++) {
        struct node n;
        node_init(&n, (uint64_t)k);
        n.disk->crash_at = k;
        struct node_cfg cfg = {
            .sync = mode, .interval_ms = 100, .auto_merge = auto_merge};
        struct sw_run r = {.acked_step = -1, .crash_step = -1};
        if (node_open(&n, &cfg) == RK_OK) {
            sw_script(&n, mode, cadence, &r);
        } else {
            assert_true(n.disk->dead); /* power lost during the open */
        }
        completed = r.completed;
        if (!completed) {
            points++;
            static const struct
            {
                enum sim_crash_model m;
                uint64_t seed;
            } outcomes[] = {{SIM_CRASH_DROP, 1},
                            {SIM_CRASH_PREFIX, 2},
                            {SIM_CRASH_PREFIX, 3}};
            for (size_t o = 0; o < sizeof(outcomes) / sizeof(outcomes[0]);
                 o++) {
                wrong += sw_check(n.disk, outcomes[o].m,
                                  outcomes[o].seed * 1000003u + (uint64_t)k, &r,
                                  &t->open_failures);
                t->reopens++;
            }
            /* No guarantees (unsynced writes dropped or trashed out of
             * order): measured, not asserted (see the report below). */
            t->random_wrong +=
                sw_check(n.disk, SIM_CRASH_RANDOM, (uint64_t)k * 7919u, &r,
                         &t->random_open_failures);
            t->random_reopens++;
        }
        node_fini(&n); /* closes on the dead disk first */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf(
        "power loss sweep: sync=%s jobs_every=%d auto_merge=%d "
        "crash_points=%d wrong=%d seconds=%.2f\n",
        mode == ENGINE_SYNC_ALWAYS ? "always" : "every:100", cadence,
        auto_merge, points, wrong, s);
    assert_true(completed);
    t->points += points;
    t->wrong += wrong;
}

static void test_bitcask_vfs_power_loss_at_every_point_loses_no_durable_write(
    void **st)
{
    (void)st;
    struct sweep_total t = {0};
    for (int cadence = 1; cadence <= 3; cadence++) {
        sweep(ENGINE_SYNC_ALWAYS, cadence, cadence == 2, &t);
        sweep(ENGINE_SYNC_EVERY, cadence, cadence == 3, &t);
    }
    printf(
        "power loss sweep: crash_points=%d reopens=%d wrong=%d "
        "open_failures=%d; no-guarantees model: reopens=%d "
        "open_failures=%d wrong=%d\n",
        t.points, t.reopens, t.wrong, t.open_failures, t.random_reopens,
        t.random_open_failures, t.random_wrong);
    assert_true(t.points >= 500);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.open_failures, 0);
}

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitcask_vfs_every_file_call_goes_through_the_vfs),
        cmocka_unit_test(test_bitcask_vfs_full_disk_recovers_in_place),
        cmocka_unit_test(test_bitcask_vfs_io_error_is_not_recovered_in_place),
        cmocka_unit_test(
            test_bitcask_vfs_fsync_fault_turns_only_its_engine_read_only),
        cmocka_unit_test(
            test_bitcask_vfs_power_loss_keeps_durable_writes_cuts_torn_tail),
        cmocka_unit_test(
            test_bitcask_vfs_power_loss_at_every_point_loses_no_durable_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_bitcask_executor.c - bitcask's background work through executors
 * and its clocks through an env (engine.h, "Threads" and "Clocks"; issue
 * 11 item 2): no thread is started; durable_seq advances and durable_cb
 * runs only when the sync job runs; sync=every follows the env's clock; a
 * refused submit is retried by engine_tick; a merge run as a job gives the
 * same keydir and files as the threaded merge; merge(wait) and close
 * withdraw queued jobs and do the work themselves (never waiting for a job
 * that will not run, as after a simulated crash); a real threaded executor
 * with and without cancel (TSan); the keydir seed and merge's expiry
 * cut-off come from the env.
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
#include <pthread.h>
#include <stdlib.h>

#include "sim_disk.h"
#include "sim_env.h"
#include "storage/internal.h"
#include "storage_test.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    st_tmpdir(g_dir, sizeof(g_dir), "bcx");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_rmrf(g_dir);
    return 0;
}

/* Threads of this process (/proc/self/status). */
static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Threads: %d", &n) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return n;
}

struct cb_state
{
    uint64_t last; /* atomic: highest seq reported */
    int calls;     /* atomic */
};

static void count_cb(void *data, uint64_t seq)
{
    struct cb_state *c = data;
    __atomic_store_n(&c->last, seq, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
}

/* The test's environment: a clock, two inline executors, a callback. */
struct rig
{
    struct sim_env env;
    struct sim_exec sync_ex, bg_ex;
    struct cb_state cb;
};

static void rig_init(struct rig *r, uint64_t seed)
{
    memset(r, 0, sizeof(*r));
    sim_env_init(&r->env, seed);
    sim_exec_init(&r->sync_ex, true);
    sim_exec_init(&r->bg_ex, true);
}

static void rig_opts(struct rig *r,
                     struct engine_opts *o,
                     enum engine_sync_mode mode)
{
    engine_opts_init(o);
    o->dir = g_dir;
    o->sync_mode = mode;
    o->sync_interval_ms = 100;
    o->max_file_size = 4096;
    o->merge_disabled = true;
    o->durable_cb = count_cb;
    o->durable_data = &r->cb;
    o->env = &r->env.env;
    o->sync_executor = &r->sync_ex.ex;
    o->bg_executor = &r->bg_ex.ex;
}

static struct engine *open_opts(const struct engine_opts *o)
{
    struct engine *e = NULL;
    char err[512] = "";
    int rc = engine_open("bitcask", o, &e, err, sizeof(err));
    if (rc != RK_OK) {
        fail_msg("engine_open: %s: %s", rk_errname(rc), err);
    }
    return e;
}

static void run_all(struct rig *r)
{
    while (sim_exec_run(&r->sync_ex) + sim_exec_run(&r->bg_ex) > 0) {
    }
}

static void put_i(struct engine *e, int key, int ver, uint64_t *seq)
{
    char k[32], v[64];
    int kl = snprintf(k, sizeof(k), "key%03d", key);
    int vl = snprintf(v, sizeof(v), "value-%d-%d-xxxxxxxxxxxxxxxx", key, ver);
    struct engine_meta m = {.timestamp = (uint64_t)ver};
    assert_int_equal(engine_put(e, k, (size_t)kl, v, (size_t)vl, &m, seq),
                     RK_OK);
}

/* ---- sync jobs ---- */

static void test_bitcask_executor_durable_seq_advances_only_when_job_runs(
    void **st)
{
    (void)st;
    struct rig r;
    rig_init(&r, 1);
    struct engine_opts o;
    rig_opts(&r, &o, ENGINE_SYNC_ALWAYS);
    int threads = thread_count();
    struct engine *e = open_opts(&o);
    assert_int_equal(thread_count(), threads); /* no sync or bg thread */
    uint64_t s1 = 0, s2 = 0;
    put_i(e, 1, 1, &s1);
    put_i(e, 2, 1, &s2);
    assert_int_equal(s2, 2);
    assert_int_equal(r.sync_ex.n, 1); /* one job for both writes */
    assert_int_equal(engine_durable_seq(e), 0);
    assert_int_equal(engine_tick(e), RK_OK); /* one is queued already */
    assert_int_equal(r.sync_ex.n, 1);
    assert_int_equal(r.cb.calls, 0);
    assert_int_equal(sim_exec_run(&r.sync_ex), 1);
    assert_int_equal(engine_durable_seq(e), 2);
    assert_int_equal(r.cb.calls, 1);
    assert_int_equal(r.cb.last, 2);
    /* Idle again: the next write submits the next job. */
    uint64_t s3 = 0;
    put_i(e, 3, 1, &s3);
    assert_int_equal(r.sync_ex.n, 1);
    assert_int_equal(engine_durable_seq(e), 2);
    assert_int_equal(sim_exec_run(&r.sync_ex), 1);
    assert_int_equal(engine_durable_seq(e), s3);
    assert_int_equal(r.cb.last, s3);
    assert_int_equal(r.cb.calls, 2);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.syncs, 2);
    /* Timed on the env's clock, which did not move. */
    assert_int_equal(s.sync_us_total, 0);
    assert_int_equal(engine_close(e), RK_OK);
    assert_int_equal(r.sync_ex.runs, 2);
    assert_int_equal(thread_count(), threads);
}

static void test_bitcask_executor_sync_every_follows_the_env_clock(void **st)
{
    (void)st;
    struct rig r;
    rig_init(&r, 2);
    struct engine_opts o;
    rig_opts(&r, &o, ENGINE_SYNC_EVERY);
    struct engine *e = open_opts(&o);
    uint64_t seq = 0;
    put_i(e, 1, 1, &seq);
    assert_int_equal(r.sync_ex.n, 0); /* sync=every: writes never submit */
    r.env.now_ms += 99;
    assert_int_equal(engine_tick(e), RK_OK);
    assert_int_equal(r.sync_ex.n, 0); /* 99 ms < 100 ms */
    r.env.now_ms += 1;
    assert_int_equal(engine_tick(e), RK_OK);
    assert_int_equal(r.sync_ex.n, 1);
    assert_int_equal(engine_durable_seq(e), 0);
    run_all(&r);
    assert_int_equal(engine_durable_seq(e), seq);
    assert_int_equal(r.cb.last, seq);
    /* Nothing pending: the next interval submits nothing. */
    r.env.now_ms += 100;
    assert_int_equal(engine_tick(e), RK_OK);
    assert_int_equal(r.sync_ex.n, 0);
    put_i(e, 2, 1, &seq);
    r.env.now_ms += 50;
    assert_int_equal(engine_tick(e), RK_OK);
    assert_int_equal(r.sync_ex.n, 0);
    r.env.now_ms += 50;
    assert_int_equal(engine_tick(e), RK_OK);
    run_all(&r);
    assert_int_equal(engine_durable_seq(e), seq);
    assert_int_equal(engine_close(e), RK_OK);
}

static void test_bitcask_executor_refused_submit_is_retried_by_tick(void **st)
{
    (void)st;
    struct rig r;
    rig_init(&r, 3);
    struct engine_opts o;
    rig_opts(&r, &o, ENGINE_SYNC_ALWAYS);
    struct engine *e = open_opts(&o);
    r.sync_ex.refuse = 2;
    uint64_t seq = 0;
    put_i(e, 1, 1, &seq); /* the write stands; its job is refused */
    assert_int_equal(r.sync_ex.n, 0);
    assert_int_equal(engine_tick(e), RK_ENOMEM); /* refused again */
    assert_int_equal(engine_tick(e), RK_OK);
    assert_int_equal(r.sync_ex.n, 1);
    run_all(&r);
    assert_int_equal(engine_durable_seq(e), seq);
    /* The worker's job too: a rollover queues a hint file. */
    r.bg_ex.refuse = 1;
    for (int i = 0; i < 100; i++) {
        put_i(e, i, 2, NULL);
    }
    assert_int_equal(r.bg_ex.n, 0);
    engine_tick(e);
    assert_int_equal(r.bg_ex.n, 1);
    run_all(&r);
    assert_int_equal(engine_close(e), RK_OK);
}

/* ---- merges ---- */

/* One line per key: name, file order, offset, metadata and value. */
struct dump
{
    char **lines;
    size_t n, cap;
    struct engine *e;
};

static bool dump_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *meta)
{
    struct dump *d = data;
    struct bitcask *b = (struct bitcask *)d->e;
    uint32_t h = keydir_find(&b->kd, key, klen);
    uint64_t loc = keydir_loc(&b->kd, h);
    char *v = NULL;
    char k[64];
    snprintf(k, sizeof(k), "%.*s", (int)klen, (const char *)key);
    v = st_get(d->e, k);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->lines = realloc(d->lines, d->cap * sizeof(*d->lines));
    }
    char *line = malloc(256);
    snprintf(line, 256,
             "%s %016" PRIx64 ":%u ts=%" PRIu64 " exp=%" PRIu64 " len=%" PRIu64
             " %s",
             k, b->files[loc >> 32]->order, (uint32_t)loc, meta->timestamp,
             meta->expire_at_ms, meta->value_len, v ? v : "?");
    free(v);
    d->lines[d->n++] = line;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_take(struct engine *e, struct dump *d)
{
    memset(d, 0, sizeof(*d));
    d->e = e;
    engine_foreach(e, dump_cb, d);
    qsort(d->lines, d->n, sizeof(*d->lines), cmp_str);
}

static void dump_assert_equal(struct dump *a, struct dump *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->lines[i], b->lines[i]);
    }
    for (size_t i = 0; i < a->n; i++) {
        free(a->lines[i]);
        free(b->lines[i]);
    }
    free(a->lines);
    free(b->lines);
}

/* "name size" of every file of dir, sorted, into one string. */
static void list_files(const char *dir, char *out, size_t len)
{
    char *names[512];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && n < 512) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat sb;
        stat(p, &sb);
        names[n] = malloc(300);
        snprintf(names[n], 300, "%s:%lld", de->d_name, (long long)sb.st_size);
        n++;
    }
    if (d) {
        closedir(d);
    }
    qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], len - strlen(out) - 2);
        strncat(out, " ", len - strlen(out) - 1);
        free(names[i]);
    }
}

static void merge_script(struct engine *e)
{
    for (int i = 0; i < 600; i++) {
        put_i(e, i % 50, i, NULL);
        if (i % 7 == 6) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "key%03d", (i * 3) % 50);
            int rc = engine_delete(e, k, (size_t)kl, (uint64_t)i, NULL);
            assert_true(rc == RK_OK || rc == RK_ENOTFOUND);
        }
    }
}

static void test_bitcask_executor_merge_matches_the_threaded_merge(void **st)
{
    (void)st;
    char dir_t[300], dir_x[300];
    snprintf(dir_t, sizeof(dir_t), "%s-threads", g_dir);
    snprintf(dir_x, sizeof(dir_x), "%s-jobs", g_dir);
    struct rig r;
    rig_init(&r, 4);
    struct engine_opts ot, ox;
    rig_opts(&r, &ox, ENGINE_SYNC_NONE);
    ox.dir = dir_x;
    engine_opts_init(&ot);
    ot.dir = dir_t;
    ot.sync_mode = ENGINE_SYNC_NONE;
    ot.max_file_size = 4096;
    ot.merge_disabled = true;
    struct engine *et = open_opts(&ot);
    struct engine *ex = open_opts(&ox);
    merge_script(et);
    merge_script(ex);
    assert_int_equal(engine_merge(et, true), RK_OK);
    assert_int_equal(engine_merge(ex, false), RK_OK);
    struct engine_stats s;
    engine_stats(ex, &s);
    assert_int_equal(s.merge_running, 1);
    assert_int_equal(s.merges_done, 0);
    assert_int_equal(r.bg_ex.n, 1); /* hint files and the merge: one job */
    run_all(&r);
    engine_stats(ex, &s);
    assert_int_equal(s.merges_done, 0); /* applied by the owner's tick */
    assert_int_equal(engine_tick(ex), RK_OK);
    engine_stats(ex, &s);
    assert_int_equal(s.merges_done, 1);
    assert_int_equal(s.merge_running, 0);
    struct engine_stats stt;
    engine_stats(et, &stt);
    assert_int_equal(s.live_keys, stt.live_keys);
    assert_int_equal(s.live_bytes, stt.live_bytes);
    assert_int_equal(s.dead_bytes, stt.dead_bytes);
    assert_int_equal(s.files, stt.files);
    struct dump dt, dx;
    dump_take(et, &dt);
    dump_take(ex, &dx);
    assert_true(dt.n > 20);
    dump_assert_equal(&dt, &dx);
    run_all(&r); /* the merged inputs' deletion */
    assert_int_equal(engine_close(et), RK_OK);
    assert_int_equal(engine_close(ex), RK_OK);
    char lt[16384], lx[16384];
    list_files(dir_t, lt, sizeof(lt));
    list_files(dir_x, lx, sizeof(lx));
    assert_string_equal(lt, lx);
    /* Reopened (from the hint files), both give the same keydir again. */
    ot.merge_disabled = ox.merge_disabled = true;
    et = open_opts(&ot);
    ex = open_opts(&ox);
    dump_take(et, &dt);
    dump_take(ex, &dx);
    dump_assert_equal(&dt, &dx);
    engine_close(et);
    engine_close(ex);
    st_rmrf(dir_t);
    st_rmrf(dir_x);
}

static void test_bitcask_executor_merge_wait_runs_the_queued_job_itself(
    void **st)
{
    (void)st;
    struct rig r;
    rig_init(&r, 5);
    struct engine_opts o;
    rig_opts(&r, &o, ENGINE_SYNC_ALWAYS);
    struct engine *e = open_opts(&o);
    merge_script(e);
    /* An inline executor never runs the job while the owner waits: the
     * owner withdraws it and runs the queue itself. */
    assert_int_equal(engine_merge(e, true), RK_OK);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.merges_done, 1);
    assert_true(r.bg_ex.cancels >= 1);
    assert_int_equal(r.bg_ex.runs, 0);
    assert_int_equal(r.bg_ex.n, 1); /* deleting the inputs, queued */
    uint64_t seq = 0;
    put_i(e, 7, 1000, &seq);
    run_all(&r);
    assert_int_equal(engine_durable_seq(e), seq);
    /* Clear waits for the worker's queue the same way. */
    merge_script(e);
    assert_true(r.bg_ex.n == 1);
    assert_int_equal(engine_clear(e, &seq), RK_OK);
    assert_int_equal(r.bg_ex.n, 0);
    assert_int_equal(engine_durable_seq(e), seq);
    engine_stats(e, &s);
    assert_int_equal(s.live_keys, 0);
    assert_int_equal(s.files, 1);
    assert_int_equal(engine_close(e), RK_OK);
}

/* ---- close ---- */

static int count_suffix(const char *dir, const char *suffix)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t sl = strlen(suffix);
    while (d && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        n += l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void test_bitcask_executor_close_withdraws_queued_jobs(void **st)
{
    (void)st;
    struct rig r;
    rig_init(&r, 6);
    struct engine_opts o;
    rig_opts(&r, &o, ENGINE_SYNC_ALWAYS);
    struct engine *e = open_opts(&o);
    merge_script(e);
    assert_int_equal(engine_merge(e, false), RK_OK);
    assert_int_equal(r.sync_ex.n, 1); /* a sync job ... */
    assert_int_equal(r.bg_ex.n, 1);   /* ... and hint files + the merge */
    assert_int_equal(engine_durable_seq(e), 0);
    /* Close does the work itself: final sync, hint files; the merge is
     * abandoned.  No job runs, before or after. */
    assert_int_equal(engine_close(e), RK_OK);
    assert_int_equal(r.sync_ex.n, 0);
    assert_int_equal(r.bg_ex.n, 0);
    assert_int_equal(r.sync_ex.cancels, 1);
    assert_int_equal(r.bg_ex.cancels, 1);
    assert_int_equal(r.sync_ex.runs + r.bg_ex.runs, 0);
    assert_int_equal(count_suffix(g_dir, ".merging"), 0);
    /* Everything written is there, immutable files from their hints. */
    o.sync_executor = o.bg_executor = NULL;
    o.env = NULL;
    e = open_opts(&o);
    struct engine_stats s;
    engine_stats(e, &s);
    assert_int_equal(s.hint_fallbacks, 0);
    assert_true(s.files > 3);
    for (int i = 550; i < 600; i++) {
        char k[32], want[64];
        snprintf(k, sizeof(k), "key%03d", i % 50);
        snprintf(want, sizeof(want), "value-%d-%d-xxxxxxxxxxxxxxxx", i % 50, i);
        char *v = st_get(e, k);
        bool deleted = false;
        for (int j = i + 1; j < 600; j++) {
            deleted = deleted || (j % 7 == 6 && (j * 3) % 50 == i % 50);
        }
        if (!deleted && v) {
            assert_string_equal(v, want);
        }
        free(v);
    }
    assert_int_equal(engine_close(e), RK_OK);
}

static void test_bitcask_executor_close_after_crash_never_waits(void **st)
{
    (void)st;
    for (int dead_disk = 0; dead_disk <= 1; dead_disk++) {
        struct rig r;
        rig_init(&r, 7);
        struct sim_disk *disk = sim_disk_create();
        struct engine_opts o;
        rig_opts(&r, &o, ENGINE_SYNC_ALWAYS);
        o.dir = "/sim/n";
        o.vfs = &disk->vfs;
        struct engine *e = open_opts(&o);
        merge_script(e);
        uint64_t last = 0;
        put_i(e, 1, 9999, &last);
        assert_int_equal(r.sync_ex.n, 1);
        assert_int_equal(r.bg_ex.n, 1);
        /* The node crashes: its executors discard the queued jobs (they
         * never run); the disk may be gone too. */
        sim_exec_crash(&r.sync_ex);
        sim_exec_crash(&r.bg_ex);
        disk->dead = dead_disk != 0;
        int rc = engine_close(e); /* returns: withdraws, never waits */
        assert_int_equal(r.sync_ex.cancels + r.bg_ex.cancels, 2);
        assert_int_equal(r.sync_ex.n_dropped + r.bg_ex.n_dropped, 0);
        assert_int_equal(r.sync_ex.runs + r.bg_ex.runs, 0);
        if (!dead_disk) {
            assert_int_equal(rc, RK_OK); /* it synced itself */
            e = open_opts(&o);
            char *v = st_get(e, "key001");
            assert_string_equal(v, "value-1-9999-xxxxxxxxxxxxxxxx");
            free(v);
            engine_close(e);
            run_all(&r);
        } else {
            assert_int_not_equal(rc, RK_OK);
        }
        sim_disk_destroy(disk);
    }
}

/* ---- a real executor: one worker thread, cancel optional ---- */

struct thread_exec
{
    struct rk_executor ex; /* data = this */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct sim_job q[SIM_EXEC_CAP];
    size_t n;
    bool stop;
    pthread_t th;
    int runs, cancels;
};

static void *thread_exec_main(void *arg)
{
    struct thread_exec *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->stop && t->n == 0) {
            pthread_cond_wait(&t->cond, &t->mu);
        }
        if (t->n == 0) {
            break;
        }
        struct sim_job j = t->q[0];
        memmove(&t->q[0], &t->q[1], (t->n - 1) * sizeof(t->q[0]));
        t->n--;
        pthread_mutex_unlock(&t->mu);
        j.work(j.data);
        pthread_mutex_lock(&t->mu);
        t->runs++;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static int thread_exec_submit(struct rk_executor *ex,
                              rk_work_cb work,
                              void *data)
{
    struct thread_exec *t = ex->data;
    pthread_mutex_lock(&t->mu);
    int rc = t->stop || t->n == SIM_EXEC_CAP ? RK_ECLOSED : RK_OK;
    if (rc == RK_OK) {
        t->q[t->n++] = (struct sim_job){work, data};
        pthread_cond_signal(&t->cond);
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int thread_exec_cancel(struct rk_executor *ex,
                              rk_work_cb work,
                              void *data)
{
    struct thread_exec *t = ex->data;
    pthread_mutex_lock(&t->mu);
    bool taken = sim__job_take(t->q, &t->n, work, data);
    t->cancels += taken;
    pthread_mutex_unlock(&t->mu);
    return taken ? RK_OK : RK_EBUSY;
}

static void thread_exec_start(struct thread_exec *t, bool with_cancel)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->ex = (struct rk_executor){
        .submit = thread_exec_submit,
        .cancel = with_cancel ? thread_exec_cancel : NULL,
        .data = t,
    };
    assert_int_equal(pthread_create(&t->th, NULL, thread_exec_main, t), 0);
}

/* Runs what is queued, then ends the thread. */
static void thread_exec_stop(struct thread_exec *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
}

static void threaded_executors(bool with_cancel)
{
    struct thread_exec tsync, tbg;
    thread_exec_start(&tsync, with_cancel);
    thread_exec_start(&tbg, with_cancel);
    struct cb_state cb = {0};
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = g_dir;
    o.sync_mode = ENGINE_SYNC_ALWAYS;
    o.max_file_size = 4096;
    o.merge_dead_ratio = 0.3;
    o.durable_cb = count_cb;
    o.durable_data = &cb;
    o.sync_executor = &tsync.ex;
    o.bg_executor = &tbg.ex;
    struct engine *e = open_opts(&o);
    uint64_t seq = 0;
    for (int i = 0; i < 3000; i++) {
        put_i(e, i % 97, i, &seq);
        if (i % 50 == 49) {
            engine_tick(e); /* automatic merges while writes go on */
        }
        if (i == 1500) {
            assert_int_equal(engine_merge(e, true), RK_OK);
        }
    }
    for (int i = 0; i < 5000 && engine_durable_seq(e) < seq; i++) {
        usleep(1000);
        engine_tick(e); /* a write that found the job finishing */
    }
    assert_int_equal(engine_durable_seq(e), seq);
    for (int i = 0;
         i < 1000 && __atomic_load_n(&cb.last, __ATOMIC_SEQ_CST) < seq; i++) {
        usleep(1000);
    }
    assert_int_equal(__atomic_load_n(&cb.last, __ATOMIC_SEQ_CST), seq);
    struct engine_stats s;
    engine_stats(e, &s);
    printf("threaded executors (cancel=%d): writes=%" PRIu64 " syncs=%" PRIu64
           " merges=%" PRIu64 " callbacks=%d\n",
           with_cancel, s.writes, s.syncs, s.merges_done,
           __atomic_load_n(&cb.calls, __ATOMIC_SEQ_CST));
    assert_true(s.merges_done >= 1);
    assert_int_equal(engine_close(e), RK_OK);
    thread_exec_stop(&tsync);
    thread_exec_stop(&tbg);
    o.sync_executor = o.bg_executor = NULL;
    e = open_opts(&o);
    for (int k = 0; k < 97; k++) {
        int last = 2999 - ((2999 - k) % 97);
        char key[32], want[64];
        snprintf(key, sizeof(key), "key%03d", k);
        snprintf(want, sizeof(want), "value-%d-%d-xxxxxxxxxxxxxxxx", k, last);
        char *v = st_get(e, key);
        assert_non_null(v);
        assert_string_equal(v, want);
        free(v);
    }
    engine_close(e);
    st_rmrf(g_dir);
}

static void test_bitcask_executor_threaded_executor_with_and_without_cancel(
    void **st)
{
    (void)st;
    threaded_executors(true);
    threaded_executors(false);
}

/* ---- the env's seed and wall clock ---- */

static void test_bitcask_env_gives_the_keydir_seed_and_merge_clock(void **st)
{
    (void)st;
    struct rig r;
    rig_init(&r, 77);
    struct sim_env twin;
    sim_env_init(&twin, 77);
    uint64_t want_seed = twin.env.rand64(&twin.env);
    struct engine_opts o;
    rig_opts(&r, &o, ENGINE_SYNC_NONE);
    struct engine *e = open_opts(&o);
    assert_int_equal(((struct bitcask *)e)->kd.seed, want_seed);
    /* Wall clock of the env: 1970-01-01T00:00:10Z, long before the OS's. */
    r.env.wall_base_ms = 10000 - r.env.now_ms;
    struct engine_meta past = {.timestamp = 1, .expire_at_ms = 5000};
    struct engine_meta future = {.timestamp = 1, .expire_at_ms = 20000};
    assert_int_equal(engine_put(e, "past", 4, "p", 1, &past, NULL), RK_OK);
    assert_int_equal(engine_put(e, "future", 6, "f", 1, &future, NULL), RK_OK);
    put_i(e, 1, 1, NULL);
    put_i(e, 1, 2, NULL); /* dead bytes in the first file */
    for (int i = 0; i < 100; i++) {
        put_i(e, 100 + i, 1, NULL); /* roll the first file over */
    }
    assert_int_equal(engine_merge(e, true), RK_OK);
    /* Cut-off 10000 ms: "past" dropped, "future" kept (the OS clock would
     * have dropped both). */
    assert_int_equal(engine_get(e, "past", 4, NULL, NULL), RK_ENOTFOUND);
    assert_int_equal(engine_get(e, "future", 6, NULL, NULL), RK_OK);
    assert_int_equal(engine_close(e), RK_OK);
    /* The memory engine takes its seed from the env too. */
    sim_env_init(&twin, 78);
    want_seed = twin.env.rand64(&twin.env);
    sim_env_init(&r.env, 78);
    struct engine *m = NULL;
    char err[128];
    assert_int_equal(engine_open("memory", &o, &m, err, sizeof(err)), RK_OK);
    struct
    {
        struct engine base;
        struct keydir kd;
    } *mem = (void *)m;
    assert_int_equal(mem->kd.seed, want_seed);
    engine_close(m);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        T(test_bitcask_executor_durable_seq_advances_only_when_job_runs),
        T(test_bitcask_executor_sync_every_follows_the_env_clock),
        T(test_bitcask_executor_refused_submit_is_retried_by_tick),
        T(test_bitcask_executor_merge_matches_the_threaded_merge),
        T(test_bitcask_executor_merge_wait_runs_the_queued_job_itself),
        T(test_bitcask_executor_close_withdraws_queued_jobs),
        T(test_bitcask_executor_close_after_crash_never_waits),
        T(test_bitcask_executor_threaded_executor_with_and_without_cancel),
        T(test_bitcask_env_gives_the_keydir_seed_and_merge_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

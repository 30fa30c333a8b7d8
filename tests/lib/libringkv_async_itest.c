/*
 * libringkv_async_itest.c - drives the asynchronous API of libringkv
 * (include/ringkv_async.h) against real ringkvd processes for
 * tests/integration/test_libringkv_async.py.
 *
 *   libringkv_async_itest basic SEED...
 *       every call once (concurrently where independent), results checked
 *   libringkv_async_itest loop SECONDS CONCURRENCY SEED...
 *       CONCURRENCY workers, each a chain set -> get (value checked) ->
 *       every 10th round mset -> mget (checked) -> del, on keys of its
 *       own; prints "started" once warm, then "ops=N errors=E retries=R
 *       connects=C refreshes=F"
 *   libringkv_async_itest first SEED...
 *       one GET on a fresh handle; prints the result's error name and
 *       message (no seed reachable, AUTH)
 *   libringkv_async_itest cancel SEED...
 *       100 calls, then destroy at once: each callback runs once with
 *       RINGKV_ECANCELED; a destroy from inside a callback
 * RINGKV_PASSWORD (environment) sets the AUTH password.  Exit 0 when every
 * check passed (loop: always, the counts tell), 1 otherwise.
 */
#include <event2/event.h>
#include <ringkv_async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest.h"

static int g_fail;
static struct event_base *g_base;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            g_fail = 1;                                                      \
        }                                                                    \
    } while (0)

static int open_ra(int n, char **seeds, struct ringkv_async **out)
{
    struct ringkv_options o;
    itest_options(&o, n, seeds);
    char err[256];
    int rc = ringkv_async_create(g_base, &o, out, err);
    if (rc != RINGKV_OK) {
        printf("%s %s\n", ringkv_errname(rc), err);
    }
    return rc;
}

/* Runs the loop until every call of ra has completed. */
static void drain(struct ringkv_async *ra)
{
    while (ringkv_async_pending(ra) > 0) {
        event_base_loop(g_base, EVLOOP_ONCE);
    }
}

/* ---- basic ------------------------------------------------------------- */

/* What a callback expects: an error code and, for GET, a value. */
struct expect
{
    const char *what;
    int err;
    const char *val; /* GET / first MGET value; NULL: not checked */
    size_t vlen;
    int64_t integer;              /* DEL / INCR / EXPIRE; -999: not checked */
    struct ringkv_siblings *took; /* GETALL: the siblings, taken */
    int done;
};

static void expect_cb(struct ringkv_async *ra,
                      struct ringkv_result *res,
                      void *data)
{
    (void)ra;
    struct expect *e = data;
    e->done++;
    if (res->err != e->err) {
        fprintf(stderr, "%s: got %s (%s), want %s\n", e->what,
                ringkv_errname(res->err), res->errmsg, ringkv_errname(e->err));
        g_fail = 1;
        return;
    }
    if (e->val != NULL) {
        const struct ringkv_value *v =
            res->values != NULL ? &res->values[0] : &res->value;
        CHECK(v->len == e->vlen && v->data != NULL &&
              memcmp(v->data, e->val, e->vlen) == 0 &&
              v->data[e->vlen] == '\0');
    }
    if (e->integer != -999) {
        CHECK(res->integer == e->integer);
    }
    if (res->siblings != NULL) {
        e->took = res->siblings; /* taken: ours to free */
        res->siblings = NULL;
    }
    CHECK((res->err == RINGKV_OK || res->err == RINGKV_ENOTFOUND) ==
          (res->errmsg[0] == '\0'));
}

#define EXPECT(name, code)                 \
    {                                      \
        name, code, NULL, 0, -999, NULL, 0 \
    }

static void basic(struct ringkv_async *ra)
{
    struct expect set1 = EXPECT("set", RINGKV_OK);
    struct expect set2 = EXPECT("set ttl", RINGKV_OK);
    struct expect set3 = EXPECT("set str", RINGKV_OK);
    CHECK(ringkv_async_set(ra, "k1", 2, "v\0one", 5, 0, NULL, expect_cb,
                           &set1) == RINGKV_OK);
    CHECK(ringkv_async_set(ra, "ttl", 3, "x", 1, 150, NULL, expect_cb, &set2) ==
          RINGKV_OK);
    CHECK(ringkv_async_set(ra, "str", 3, "abc", 3, 0, NULL, expect_cb, &set3) ==
          RINGKV_OK);
    drain(ra);
    CHECK(set1.done == 1 && set2.done == 1 && set3.done == 1);

    struct expect get1 = {"get", RINGKV_OK, "v\0one", 5, -999, NULL, 0};
    struct expect get2 = EXPECT("get missing", RINGKV_ENOTFOUND);
    struct expect get3 = {"get ttl", RINGKV_OK, "x", 1, -999, NULL, 0};
    struct expect incr = EXPECT("incr str", RINGKV_ESERVER);
    struct expect exp1 = {"expire", RINGKV_OK, NULL, 0, 1, NULL, 0};
    struct expect exp2 = {"expire absent", RINGKV_OK, NULL, 0, 0, NULL, 0};
    ringkv_async_get(ra, "k1", 2, NULL, expect_cb, &get1);
    ringkv_async_get(ra, "nope", 4, NULL, expect_cb, &get2);
    ringkv_async_get(ra, "ttl", 3, NULL, expect_cb, &get3);
    ringkv_async_incr(ra, "str", 3, 1, NULL, expect_cb, &incr);
    ringkv_async_expire(ra, "k1", 2, 150, NULL, expect_cb, &exp1);
    ringkv_async_expire(ra, "absent", 6, 150, NULL, expect_cb, &exp2);
    drain(ra);
    CHECK(get1.done && get2.done && get3.done && incr.done && exp1.done &&
          exp2.done);

    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    struct expect gone1 = EXPECT("get expired", RINGKV_ENOTFOUND);
    struct expect gone2 = EXPECT("get expired 2", RINGKV_ENOTFOUND);
    struct expect del0 = {"del", RINGKV_OK, NULL, 0, -999, NULL, 0};
    ringkv_async_get(ra, "ttl", 3, NULL, expect_cb, &gone1);
    ringkv_async_get(ra, "k1", 2, NULL, expect_cb, &gone2);
    ringkv_async_del(ra, "ctr", 3, NULL, expect_cb, &del0);
    drain(ra);

    struct expect inc1 = {"incr", RINGKV_OK, NULL, 0, 5, NULL, 0};
    ringkv_async_incr(ra, "ctr", 3, 5, NULL, expect_cb, &inc1);
    drain(ra);
    struct ringkv_call idem = {.flags = RINGKV_CALL_IDEMPOTENT};
    struct expect inc2 = {"incr idem", RINGKV_OK, NULL, 0, 3, NULL, 0};
    ringkv_async_incr(ra, "ctr", 3, -2, &idem, expect_cb, &inc2);
    struct expect del1 = {"del b", RINGKV_OK, NULL, 0, -999, NULL, 0};
    const void *keys[3] = {"{a}1", "b", "c"};
    size_t klens[3] = {4, 1, 1};
    const void *vals[3] = {"1", "22", "333"};
    size_t vlens[3] = {1, 2, 3};
    struct expect mset = EXPECT("mset", RINGKV_OK);
    ringkv_async_mset(ra, 3, keys, klens, vals, vlens, NULL, expect_cb, &mset);
    drain(ra);
    ringkv_async_del(ra, "b", 1, NULL, expect_cb, &del1);
    drain(ra);
    struct expect mget = {"mget", RINGKV_OK, "1", 1, -999, NULL, 0};
    ringkv_async_mget(ra, 3, keys, klens, NULL, expect_cb, &mget);
    drain(ra);

    /* siblings: getall -> put with the context -> get */
    struct expect del2 = {"del sib", RINGKV_OK, NULL, 0, -999, NULL, 0};
    ringkv_async_del(ra, "sib", 3, NULL, expect_cb, &del2);
    drain(ra);
    struct expect ga = EXPECT("getall", RINGKV_OK);
    ringkv_async_getall(ra, "sib", 3, NULL, expect_cb, &ga);
    drain(ra);
    CHECK(ga.took != NULL);
    if (ga.took != NULL) {
        struct expect put = EXPECT("put", RINGKV_OK);
        ringkv_async_put(ra, "sib", 3, ga.took->context, ga.took->context_len,
                         "first", 5, NULL, expect_cb, &put);
        ringkv_siblings_free(ga.took);
        drain(ra);
        struct expect get = {"get sib", RINGKV_OK, "first", 5, -999, NULL, 0};
        ringkv_async_get(ra, "sib", 3, NULL, expect_cb, &get);
        drain(ra);
    }
    struct expect badput = EXPECT("put bad context", RINGKV_ESERVER);
    ringkv_async_put(ra, "sib", 3, "zz-not-a-context", 16, "x", 1, NULL,
                     expect_cb, &badput);
    drain(ra);

    /* bad arguments: an error return, no callback */
    struct expect never = EXPECT("never", RINGKV_OK);
    CHECK(ringkv_async_set(ra, "k", 1, "v", 1, -1, NULL, expect_cb, &never) ==
          RINGKV_EINVAL);
    CHECK(ringkv_async_mget(ra, 0, keys, klens, NULL, expect_cb, &never) ==
          RINGKV_EINVAL);
    CHECK(ringkv_async_get(ra, "k", 1, NULL, NULL, NULL) == RINGKV_EINVAL);
    CHECK(never.done == 0);

    /* many concurrent calls on the pipelined connections */
    enum
    {
        N = 500
    };
    static struct expect many[N];
    static char kb[N][16];
    for (int i = 0; i < N; i++) {
        int kl = snprintf(kb[i], sizeof(kb[i]), "many:%d", i);
        many[i] = (struct expect)EXPECT("many set", RINGKV_OK);
        CHECK(ringkv_async_set(ra, kb[i], (size_t)kl, kb[i], (size_t)kl, 0,
                               NULL, expect_cb, &many[i]) == RINGKV_OK);
    }
    drain(ra);
    for (int i = 0; i < N; i++) {
        CHECK(many[i].done == 1);
        many[i] = (struct expect){"many get", RINGKV_OK, kb[i], strlen(kb[i]),
                                  -999,       NULL,      0};
        ringkv_async_get(ra, kb[i], strlen(kb[i]), NULL, expect_cb, &many[i]);
    }
    drain(ra);
    for (int i = 0; i < N; i++) {
        CHECK(many[i].done == 1);
    }
    struct ringkv_stats st;
    ringkv_async_stats_get(ra, &st);
    printf("nodes=%zu calls=%llu errors=%llu\n", ringkv_async_node_count(ra),
           (unsigned long long)st.calls, (unsigned long long)st.errors);
}

/* ---- loop ------------------------------------------------------------- */

struct worker
{
    struct ringkv_async *ra;
    int id;
    unsigned round;
    int step; /* 0 set, 1 get, 2 mset, 3 mget, 4 del */
    char key[32], val[32], mkey[32];
    size_t kl, vl, mkl;
};

static double g_end;
static unsigned long long g_ops, g_errors;
static int g_running;

static void worker_next(struct worker *w);

static void worker_cb(struct ringkv_async *ra,
                      struct ringkv_result *res,
                      void *data)
{
    (void)ra;
    struct worker *w = data;
    if (res->err != RINGKV_OK) {
        g_errors++;
        fprintf(stderr, "worker %d step %d: %s: %s\n", w->id, w->step,
                ringkv_errname(res->err), res->errmsg);
    } else if (w->step == 1 && (res->value.len != w->vl ||
                                memcmp(res->value.data, w->val, w->vl) != 0)) {
        g_errors++;
        fprintf(stderr, "%s: read %.*s, wrote %s\n", w->key,
                (int)res->value.len, res->value.data, w->val);
    } else if (w->step == 3 &&
               (res->n_values != 2 || res->values[1].len != w->vl ||
                memcmp(res->values[1].data, w->val, w->vl) != 0)) {
        g_errors++;
        fprintf(stderr, "%s: mget mismatch\n", w->mkey);
    }
    g_ops++;
    w->step = w->step == 1 && w->round % 10 != 0 ? 0 : (w->step + 1) % 5;
    if (w->step == 0) {
        w->round++;
    }
    worker_next(w);
}

static void worker_next(struct worker *w)
{
    if (w->step == 0 && itest_now_s() >= g_end) {
        g_running--;
        return;
    }
    const void *ks[2] = {w->key, w->mkey};
    size_t kls[2] = {w->kl, w->mkl};
    const void *vs[2] = {w->val, w->val};
    size_t vls[2] = {w->vl, w->vl};
    int rc = RINGKV_OK;
    switch (w->step) {
        case 0:
            w->kl = (size_t)snprintf(w->key, sizeof(w->key), "aloop:%d:%u",
                                     w->id, w->round % 50);
            w->vl = (size_t)snprintf(w->val, sizeof(w->val), "%u", w->round);
            rc = ringkv_async_set(w->ra, w->key, w->kl, w->val, w->vl, 0, NULL,
                                  worker_cb, w);
            break;
        case 1:
            rc = ringkv_async_get(w->ra, w->key, w->kl, NULL, worker_cb, w);
            break;
        case 2:
            rc = ringkv_async_mset(w->ra, 2, ks, kls, vs, vls, NULL, worker_cb,
                                   w);
            break;
        case 3:
            rc = ringkv_async_mget(w->ra, 2, ks, kls, NULL, worker_cb, w);
            break;
        case 4:
            rc = ringkv_async_del(w->ra, w->mkey, w->mkl, NULL, worker_cb, w);
            break;
    }
    if (rc != RINGKV_OK) {
        fprintf(stderr, "submit: %s\n", ringkv_errname(rc));
        g_errors++;
        g_running--;
    }
}

static void loop(struct ringkv_async *ra, double seconds, int conc)
{
    struct worker *ws = calloc((size_t)conc, sizeof(*ws));
    /* warm up: a short run opens every node's connection */
    g_end = itest_now_s() + 0.5;
    for (int i = 0; i < conc; i++) {
        ws[i].ra = ra;
        ws[i].id = i;
        ws[i].mkl =
            (size_t)snprintf(ws[i].mkey, sizeof(ws[i].mkey), "aloop:m:%d", i);
        g_running++;
        worker_next(&ws[i]);
    }
    drain(ra);
    printf("started\n");
    fflush(stdout);
    g_end = itest_now_s() + seconds;
    g_ops = 0;
    for (int i = 0; i < conc; i++) {
        ws[i].step = 0;
        g_running++;
        worker_next(&ws[i]);
    }
    drain(ra);
    struct ringkv_stats st;
    ringkv_async_stats_get(ra, &st);
    printf("ops=%llu errors=%llu retries=%llu connects=%llu refreshes=%llu\n",
           g_ops, g_errors, (unsigned long long)st.retries,
           (unsigned long long)st.connects, (unsigned long long)st.refreshes);
    free(ws);
}

/* ---- first, cancel ----------------------------------------------------- */

static void print_cb(struct ringkv_async *ra,
                     struct ringkv_result *res,
                     void *data)
{
    (void)ra;
    (void)data;
    printf("%s %s\n", ringkv_errname(res->err), res->errmsg);
}

static int g_cancelled;

static void cancel_cb(struct ringkv_async *ra,
                      struct ringkv_result *res,
                      void *data)
{
    (void)data;
    if (res->err == RINGKV_ECANCELED) {
        g_cancelled++;
        /* no new calls while the handle is being destroyed */
        CHECK(ringkv_async_get(ra, "x", 1, NULL, cancel_cb, NULL) ==
              RINGKV_EINVAL);
    }
}

static void destroy_cb(struct ringkv_async *ra,
                       struct ringkv_result *res,
                       void *data)
{
    (void)res;
    *(int *)data += 1;
    ringkv_async_destroy(ra); /* from inside a callback */
}

static void cancel(int n, char **seeds)
{
    struct ringkv_async *ra = NULL;
    if (open_ra(n, seeds, &ra) != RINGKV_OK) {
        g_fail = 1;
        return;
    }
    for (int i = 0; i < 100; i++) {
        CHECK(ringkv_async_set(ra, "c", 1, "v", 1, 0, NULL, cancel_cb, NULL) ==
              RINGKV_OK);
    }
    ringkv_async_destroy(ra);
    CHECK(g_cancelled == 100);

    if (open_ra(n, seeds, &ra) != RINGKV_OK) {
        g_fail = 1;
        return;
    }
    int calls = 0;
    g_cancelled = 0;
    CHECK(ringkv_async_get(ra, "c", 1, NULL, destroy_cb, &calls) == RINGKV_OK);
    for (int i = 0; i < 20; i++) {
        CHECK(ringkv_async_set(ra, "c", 1, "v", 1, 0, NULL, cancel_cb, NULL) ==
              RINGKV_OK);
    }
    /* the GET completes first (pipelined in order), destroys, and the
     * SETs are cancelled, or done before it: every callback runs once */
    event_base_dispatch(g_base);
    CHECK(calls == 1);
    printf("cancelled=%d\n", g_cancelled);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s basic|loop S C|first|cancel SEED...\n",
                argv[0]);
        return 2;
    }
    g_base = event_base_new();
    struct ringkv_async *ra = NULL;
    if (strcmp(argv[1], "loop") == 0) {
        if (argc < 5 || open_ra(argc - 4, argv + 4, &ra) != RINGKV_OK) {
            return 1;
        }
        loop(ra, atof(argv[2]), atoi(argv[3]));
    } else if (strcmp(argv[1], "basic") == 0) {
        if (open_ra(argc - 2, argv + 2, &ra) != RINGKV_OK) {
            return 1;
        }
        basic(ra);
    } else if (strcmp(argv[1], "first") == 0) {
        if (open_ra(argc - 2, argv + 2, &ra) != RINGKV_OK) {
            return 1;
        }
        CHECK(ringkv_async_get(ra, "k", 1, NULL, print_cb, NULL) == RINGKV_OK);
        drain(ra);
    } else if (strcmp(argv[1], "cancel") == 0) {
        cancel(argc - 2, argv + 2);
    } else {
        return 2;
    }
    ringkv_async_destroy(ra);
    event_base_free(g_base);
    if (!g_fail && strcmp(argv[1], "basic") == 0) {
        printf("ok\n");
    }
    return g_fail;
}

/*
 * test_coord_fanout.c - cluster/coord: reads that ask R replicas instead
 * of all N (coord_get_req.fanout), widen on a failure, and widen after a
 * speculative-retry delay (Cassandra's read path: data from the
 * consistency level's replicas, speculative retry).  Scripted replies on a
 * virtual clock, like test_coord.c; the last test runs seeded random
 * interleavings and checks, at every event: no target is asked twice, a
 * read asks more only after a failure or at its speculative deadline,
 * exactly one REPLY per read, RK_OK only with R distinct successes among
 * the targets asked.  RK_FANOUT_SEED=<n> replays one seed.
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

#include "cluster/coord.h"
#include "cluster/dvv.h"
#include "common/buf.h"
#include "common/error.h"

static const char *const T3[] = {"n1", "n2", "n3"}; /* n1 is self */
static const char *const R3[] = {"n2", "n3", "n4"}; /* all remote */

#define T0      1000u
#define TIMEOUT 2000u
#define SPEC    50u

static struct rk_buf g_obj; /* one real object encoding */

static int setup(void **st)
{
    (void)st;
    struct dvv_obj o;
    dvv_init(&o);
    struct dvv_write w = {"v", 1, 10, 0, false, false, false, false};
    assert_int_equal(dvv_update(&o, NULL, 1, 0, &w, NULL), RK_OK);
    rk_buf_init(&g_obj);
    assert_int_equal(dvv_encode(&o, &g_obj), RK_OK);
    dvv_fini(&o);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    rk_buf_fini(&g_obj);
    return 0;
}

static struct coord *new_coord(void)
{
    struct coord *c = NULL;
    assert_int_equal(coord_create("n1", 64, &c), RK_OK);
    return c;
}

static uint64_t start(struct coord *c,
                      const char *const *targets,
                      uint32_t r,
                      uint32_t fanout,
                      uint32_t spec_ms,
                      uint32_t repair_wait_ms)
{
    struct coord_get_req g = {
        .key = "k",
        .klen = 1,
        .targets = targets,
        .n_targets = 3,
        .r = r,
        .timeout_ms = TIMEOUT,
        .repair_wait_ms = repair_wait_ms,
        .cookie = 7,
        .fanout = fanout,
        .speculative_ms = spec_ms,
    };
    uint64_t id = 0;
    assert_int_equal(coord_start_get(c, &g, T0, &id), RK_OK);
    return id;
}

/* The last event's requests as a string: "L" for LOCAL_GET, the node id
 * for a SEND, "R" for a REPLY, "P<node>" for a read repair. */
static void acts(struct coord *c, char *out, size_t cap)
{
    const struct coord_action *a;
    size_t n = coord_actions(c, &a), len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *what = "?";
        char buf[32];
        if (a[i].type == COORD_REPLY) {
            what = "R";
        } else if (a[i].type == COORD_LOCAL_GET) {
            what = "L";
        } else if (a[i].type == COORD_SEND && a[i].msg.type == PEER_KV_GET) {
            snprintf(buf, sizeof(buf), "%.*s", (int)a[i].node_len, a[i].node);
            what = buf;
        } else if (a[i].msg.type == PEER_KV_PUT) {
            snprintf(buf, sizeof(buf), "P%.*s", (int)a[i].node_len, a[i].node);
            what = buf;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "",
                                what);
    }
}

static const struct coord_reply *reply_of(struct coord *c)
{
    const struct coord_action *a;
    size_t n = coord_actions(c, &a);
    for (size_t i = 0; i < n; i++) {
        if (a[i].type == COORD_REPLY) {
            return &a[i].reply;
        }
    }
    return NULL;
}

static struct peer_msg answer_msg(uint64_t id, int status)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_KV_GET_REPLY;
    m.kv_get_reply.req_id = id;
    m.kv_get_reply.status = status;
    if (status == RK_OK) {
        m.kv_get_reply.object.ptr = g_obj.base;
        m.kv_get_reply.object.len = g_obj.len;
    }
    return m;
}

static void from(struct coord *c,
                 const char *node,
                 uint64_t id,
                 int status,
                 uint64_t now)
{
    struct peer_msg m = answer_msg(id, status);
    if (strcmp(node, "n1") == 0) {
        coord_on_local_result(c, &m, now);
    } else {
        coord_on_reply(c, node, strlen(node), &m, now);
    }
}

static struct coord_stats stats(struct coord *c)
{
    struct coord_stats s;
    coord_stats(c, &s);
    return s;
}

static void test_r1_asks_only_the_local_replica(void **st)
{
    (void)st;
    struct coord *c = new_coord();
    char a[128];
    uint64_t id = start(c, T3, 1, 1, SPEC, 100);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "L");
    from(c, "n1", id, RK_OK, T0);
    acts(c, a, sizeof(a));
    /* answered by everyone asked: replies, no lingering, no repairs */
    assert_string_equal(a, "R");
    assert_int_equal(reply_of(c)->status, RK_OK);
    assert_int_equal(coord_inflight(c), 0);
    assert_int_equal(stats(c).reads_partial, 1);
    coord_destroy(c);
}

static void test_r2_asks_local_and_first_remote(void **st)
{
    (void)st;
    struct coord *c = new_coord();
    char a[128];
    uint64_t id = start(c, T3, 2, 2, SPEC, 100);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n2 L");
    from(c, "n1", id, RK_OK, T0);
    from(c, "n2", id, RK_ENOTFOUND, T0 + 1);
    acts(c, a, sizeof(a));
    /* n2 had nothing: the reply, then the repair to n2 (both asked) */
    assert_string_equal(a, "R Pn2");
    /* n3 was never asked: its answer is a stranger's */
    uint64_t before = stats(c).ignored_stranger + stats(c).ignored_unknown;
    from(c, "n3", id, RK_OK, T0 + 2);
    assert_int_equal(stats(c).ignored_stranger + stats(c).ignored_unknown,
                     before + 1);
    coord_destroy(c);
}

static void test_a_failure_asks_the_next_replica(void **st)
{
    (void)st;
    struct coord *c = new_coord();
    char a[128];
    uint64_t id = start(c, R3, 2, 2, 0, 0);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n2 n3");
    coord_on_failure(c, id, "n3", 2, RK_ECLOSED, T0 + 1);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n4");
    from(c, "n2", id, RK_OK, T0 + 2);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "");
    from(c, "n4", id, RK_OK, T0 + 3);
    const struct coord_reply *r = reply_of(c);
    assert_non_null(r);
    assert_int_equal(r->status, RK_OK);
    assert_int_equal(r->successes, 2);
    assert_int_equal(stats(c).read_widened, 1);
    coord_destroy(c);
}

static void test_two_failures_make_noquorum_at_once(void **st)
{
    (void)st;
    struct coord *c = new_coord();
    char a[128];
    uint64_t id = start(c, R3, 2, 2, 0, 0);
    coord_on_failure(c, id, "n2", 2, RK_ECLOSED, T0 + 1);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n4");
    coord_on_failure(c, id, "n4", 2, RK_ECLOSED, T0 + 2);
    const struct coord_reply *r = reply_of(c);
    assert_non_null(r);
    assert_int_equal(r->status, RK_ENOQUORUM);
    assert_false(r->timed_out);
    coord_destroy(c);
}

static void test_speculative_retry_asks_the_rest(void **st)
{
    (void)st;
    struct coord *c = new_coord();
    char a[128];
    uint64_t id = start(c, T3, 2, 2, SPEC, 0);
    from(c, "n1", id, RK_OK, T0);
    assert_int_equal(coord_next_deadline_ms(c), T0 + SPEC);
    coord_tick(c, T0 + SPEC - 1);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "");
    assert_int_equal(coord_tick(c, T0 + SPEC), T0 + TIMEOUT);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n3");
    assert_int_equal(stats(c).speculative, 1);
    from(c, "n3", id, RK_OK, T0 + SPEC + 5);
    assert_int_equal(reply_of(c)->status, RK_OK);
    /* n2 answers late: the read is over */
    from(c, "n2", id, RK_OK, T0 + SPEC + 6);
    assert_null(reply_of(c));
    coord_destroy(c);
}

static void test_speculative_read_still_times_out_at_its_deadline(void **st)
{
    (void)st;
    struct coord *c = new_coord();
    char a[128];
    (void)start(c, R3, 2, 2, SPEC, 0);
    coord_tick(c, T0 + SPEC);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n4");
    coord_tick(c, T0 + TIMEOUT - 1);
    assert_null(reply_of(c));
    coord_tick(c, T0 + TIMEOUT);
    const struct coord_reply *r = reply_of(c);
    assert_non_null(r);
    assert_int_equal(r->status, RK_ENOQUORUM);
    assert_true(r->timed_out);
    coord_destroy(c);
}

static void test_fanout_zero_or_n_asks_everyone(void **st)
{
    (void)st;
    struct coord *c = new_coord();
    char a[128];
    (void)start(c, T3, 1, 0, SPEC, 0);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n2 n3 L");
    (void)start(c, T3, 1, 3, SPEC, 0);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n2 n3 L");
    /* a fanout below R is raised to R */
    (void)start(c, R3, 3, 1, SPEC, 0);
    acts(c, a, sizeof(a));
    assert_string_equal(a, "n2 n3 n4");
    assert_int_equal(stats(c).reads_partial, 0);
    coord_destroy(c);
}

/* ---- random interleavings ------------------------------------------------
 */

#define RQ 64

struct rreq
{
    uint64_t id;
    uint32_t r, first;
    uint64_t start, spec_at; /* spec_at 0: none */
    uint32_t asked;          /* node bits 0..3 (n1..n4) */
    uint32_t answered, ok;
    int replies;
    bool done;
};

static const char *const NODES[] = {"n1", "n2", "n3", "n4"};

static int node_ix(const char *p, size_t len)
{
    for (int i = 0; i < 4; i++) {
        if (len == 2 && memcmp(p, NODES[i], 2) == 0) {
            return i;
        }
    }
    fail();
    return -1;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Checks the last event's actions against the model: `why` is the request
 * whose failure may widen and `starting` the one just started (-1 none),
 * `now` the event time. */
static void check_actions(struct coord *c,
                          struct rreq *q,
                          int nq,
                          int why,
                          int starting,
                          uint64_t now)
{
    const struct coord_action *a;
    size_t n = coord_actions(c, &a);
    for (size_t i = 0; i < n; i++) {
        if (a[i].type == COORD_REPLY) {
            int k = (int)a[i].reply.cookie;
            assert_true(k >= 0 && k < nq);
            assert_int_equal(q[k].replies, 0);
            q[k].replies++;
            q[k].done = true;
            if (a[i].reply.status == RK_OK ||
                a[i].reply.status == RK_ENOTFOUND) {
                assert_true(__builtin_popcount(q[k].ok) >= (int)q[k].r);
            }
            continue;
        }
        if (a[i].msg.type != PEER_KV_GET) {
            continue; /* read repair */
        }
        int k = -1;
        for (int j = 0; j < nq; j++) {
            if (q[j].id == a[i].msg.kv_get.req_id) {
                k = j;
            }
        }
        assert_true(k >= 0);
        int t = node_ix(a[i].node, a[i].node_len);
        assert_false(q[k].asked & (1u << t)); /* never asked twice */
        bool spec = q[k].spec_at && now >= q[k].spec_at;
        /* asked at start, or widened by a failure or at spec time */
        assert_true(k == starting || k == why || spec);
        q[k].asked |= 1u << t;
    }
}

static void run_seed(uint64_t seed)
{
    struct coord *c = new_coord();
    struct rreq q[RQ];
    memset(q, 0, sizeof(q));
    uint64_t rs = seed * 2654435761u + 1, now = T0;
    int nq = 0;
    for (int step = 0; step < 2000; step++) {
        now += rnd(&rs) % 7;
        uint64_t dice = rnd(&rs) % 100;
        if (dice < 10 && nq < RQ) {
            struct rreq *x = &q[nq];
            x->r = 1 + (uint32_t)(rnd(&rs) % 3);
            x->first = (uint32_t)(rnd(&rs) % 4);
            uint32_t spec = rnd(&rs) % 2 ? 10 + (uint32_t)(rnd(&rs) % 50) : 0;
            const char *const *t = rnd(&rs) % 2 ? T3 : R3;
            struct coord_get_req g = {
                .key = "k",
                .klen = 1,
                .targets = t,
                .n_targets = 3,
                .r = x->r,
                .timeout_ms = 200,
                .repair_wait_ms = (uint32_t)(rnd(&rs) % 30),
                .cookie = (uint64_t)nq,
                .fanout = x->first,
                .speculative_ms = spec,
            };
            x->start = now;
            uint32_t first = x->first == 0 || x->first > 3 ? 3 : x->first;
            x->spec_at = spec && first < 3 ? now + spec : 0;
            assert_int_equal(coord_start_get(c, &g, now, &x->id), RK_OK);
            nq++;
            check_actions(c, q, nq, -1, nq - 1, now);
            uint32_t want = first < x->r ? x->r : first;
            assert_int_equal(__builtin_popcount(x->asked), (int)want);
        } else if (dice < 80 && nq > 0) {
            int k = (int)(rnd(&rs) % (uint64_t)nq);
            uint32_t open = q[k].asked & ~q[k].answered;
            if (open == 0 || q[k].done) {
                continue;
            }
            int t = __builtin_ctz(open);
            q[k].answered |= 1u << t;
            uint64_t f = rnd(&rs) % 100;
            int status = f < 30 ? RK_EIO : f < 50 ? RK_ENOTFOUND : RK_OK;
            if (status != RK_EIO) {
                q[k].ok |= 1u << t;
            }
            if (status == RK_EIO && f < 15) {
                coord_on_failure(c, q[k].id, NODES[t], 2, RK_ECLOSED, now);
            } else {
                struct peer_msg m = answer_msg(q[k].id, status);
                if (t == 0) {
                    coord_on_local_result(c, &m, now);
                } else {
                    coord_on_reply(c, NODES[t], 2, &m, now);
                }
            }
            check_actions(c, q, nq, status == RK_EIO ? k : -1, -1, now);
        } else {
            coord_tick(c, now);
            check_actions(c, q, nq, -1, -1, now);
        }
    }
    coord_tick(c, now + 10000);
    check_actions(c, q, nq, -1, -1, now + 10000);
    for (int k = 0; k < nq; k++) {
        assert_int_equal(q[k].replies, 1); /* C1 */
    }
    coord_destroy(c);
}

static void test_random_interleavings_keep_the_fanout_rules(void **st)
{
    (void)st;
    const char *env = getenv("RK_FANOUT_SEED");
    if (env != NULL) {
        run_seed(strtoull(env, NULL, 10));
        return;
    }
    for (uint64_t seed = 1; seed <= 300; seed++) {
        run_seed(seed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_r1_asks_only_the_local_replica),
        cmocka_unit_test(test_r2_asks_local_and_first_remote),
        cmocka_unit_test(test_a_failure_asks_the_next_replica),
        cmocka_unit_test(test_two_failures_make_noquorum_at_once),
        cmocka_unit_test(test_speculative_retry_asks_the_rest),
        cmocka_unit_test(test_speculative_read_still_times_out_at_its_deadline),
        cmocka_unit_test(test_fanout_zero_or_n_asks_everyone),
        cmocka_unit_test(test_random_interleavings_keep_the_fanout_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * test_coord.c - cluster/coord: the quorum coordinator state machine
 * driven with scripted replies on a virtual clock (issue 4 item 5; the
 * invariants C1-C7 of coord.h).  No sockets, no sleeps: every time below
 * is an exact virtual time (STYLE.md 1.7, raft ASSERT_TIME).
 *
 * The last test runs many interleaved requests under a seeded random
 * network (delay, reordering, loss, duplication, failures, cancellation)
 * and checks every invariant at each reply; it prints its seeds and
 * figures.  RK_COORD_SEED=<n> in the environment replays one seed.
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
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/error.h"

static const char *const T3[] = {"n1", "n2", "n3"}; /* n1 is self */
static const char *const R3[] = {"n2", "n3", "n4"}; /* all remote */

#define T0 1000u /* virtual start time, ms */

/* ---- helpers ------------------------------------------------------------ */

static struct coord *new_coord(size_t cap)
{
    struct coord *c = NULL;
    assert_int_equal(coord_create("n1", cap, &c), RK_OK);
    return c;
}

static size_t n_actions(struct coord *c)
{
    const struct coord_action *a;
    return coord_actions(c, &a);
}

/* Number of REPLY actions of the last event; the last one into *out. */
static size_t replies(struct coord *c, struct coord_reply *out)
{
    const struct coord_action *a;
    size_t n = coord_actions(c, &a), k = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i].type == COORD_REPLY) {
            if (out) {
                *out = a[i].reply;
            }
            k++;
        }
    }
    return k;
}

static uint64_t start_put(struct coord *c,
                          const char *const *targets,
                          size_t n,
                          uint32_t w,
                          uint64_t cookie,
                          uint64_t now_ms)
{
    struct coord_put_req req = {
        .key = "k",
        .klen = 1,
        .value = "val",
        .vlen = 3,
        .timestamp = 77,
        .targets = targets,
        .n_targets = n,
        .w = w,
        .timeout_ms = COORD_DEFAULT_TIMEOUT_MS,
        .cookie = cookie,
    };
    uint64_t id = 0;
    assert_int_equal(coord_start_put(c, &req, now_ms, &id), RK_OK);
    assert_int_not_equal(id, 0);
    return id;
}

static uint64_t start_get(struct coord *c,
                          const char *const *targets,
                          size_t n,
                          uint32_t r,
                          uint64_t cookie,
                          uint64_t now_ms)
{
    struct coord_get_req req = {
        .key = "k",
        .klen = 1,
        .targets = targets,
        .n_targets = n,
        .r = r,
        .timeout_ms = COORD_DEFAULT_TIMEOUT_MS,
        .cookie = cookie,
    };
    uint64_t id = 0;
    assert_int_equal(coord_start_get(c, &req, now_ms, &id), RK_OK);
    return id;
}

static struct peer_msg put_reply(uint64_t id, int status)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_KV_PUT_REPLY;
    m.kv_put_reply.req_id = id;
    m.kv_put_reply.status = status;
    return m;
}

static struct peer_msg get_reply(uint64_t id,
                                 int status,
                                 const char *val,
                                 uint64_t ts,
                                 bool tomb)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_KV_GET_REPLY;
    m.kv_get_reply.req_id = id;
    m.kv_get_reply.status = status;
    if (status == RK_OK) {
        m.kv_get_reply.value.ptr = val;
        m.kv_get_reply.value.len = val ? strlen(val) : 0;
        m.kv_get_reply.timestamp = ts;
        m.kv_get_reply.flags = tomb ? PEER_KV_TOMBSTONE : 0;
    }
    return m;
}

static void reply_from(struct coord *c,
                       const char *node,
                       const struct peer_msg *m,
                       uint64_t now_ms)
{
    coord_on_reply(c, node, strlen(node), m, now_ms);
}

/* ---- writes ------------------------------------------------------------- */

static void test_coord_put_sends_to_targets_and_applies_locally(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, T3, 3, 2, 42, T0);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 3);
    assert_int_equal(a[0].type, COORD_SEND);
    assert_memory_equal(a[0].node, "n2", 2);
    assert_int_equal(a[1].type, COORD_SEND);
    assert_memory_equal(a[1].node, "n3", 2);
    assert_int_equal(a[2].type, COORD_LOCAL_PUT);
    for (int i = 0; i < 3; i++) {
        const struct peer_kv_put *p = &a[i].msg.kv_put;
        assert_int_equal(a[i].msg.type, PEER_KV_PUT);
        assert_true(p->req_id == id);
        assert_int_equal(p->key.len, 1);
        assert_memory_equal(p->key.ptr, "k", 1);
        assert_int_equal(p->value.len, 3);
        assert_memory_equal(p->value.ptr, "val", 3);
        assert_int_equal(p->timestamp, 77);
        assert_int_equal(p->flags, 0);
        assert_int_equal(p->hint_for.len, 0);
        assert_int_equal(p->deadline_ms, COORD_DEFAULT_TIMEOUT_MS);
    }
    assert_int_equal(coord_inflight(c), 1);
    assert_true(coord_next_deadline_ms(c) == T0 + COORD_DEFAULT_TIMEOUT_MS);
    coord_destroy(c);
}

static void test_coord_put_replies_once_after_second_ack(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, T3, 3, 2, 42, T0);
    struct peer_msg ok = put_reply(id, RK_OK);
    coord_on_local_result(c, &ok, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    struct coord_reply r;
    reply_from(c, "n3", &ok, T0 + 7);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(n_actions(c), 1);
    assert_int_equal(r.status, RK_OK);
    assert_int_equal(r.cookie, 42);
    assert_true(r.req_id == id);
    assert_int_equal(r.op, COORD_OP_PUT);
    assert_int_equal(r.successes, 2);
    assert_int_equal(r.need, 2);
    assert_int_equal(r.n_targets, 3);
    assert_false(r.timed_out);
    assert_string_equal(r.message, "");
    assert_int_equal(coord_inflight(c), 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    /* The third ack is late: ignored, no second reply (C1, C5). */
    reply_from(c, "n2", &ok, T0 + 9);
    assert_int_equal(n_actions(c), 0);
    struct coord_stats s;
    coord_stats(c, &s);
    assert_int_equal(s.replied_ok, 1);
    assert_int_equal(s.ignored_unknown, 1);
    coord_destroy(c);
}

static void test_coord_put_noquorum_exactly_at_timeout(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, T3, 3, 2, 5, T0);
    struct peer_msg ok = put_reply(id, RK_OK);
    reply_from(c, "n2", &ok, T0 + 3);
    uint64_t deadline = coord_next_deadline_ms(c);
    assert_true(deadline == T0 + 2000);
    assert_true(coord_tick(c, deadline - 1) == deadline);
    assert_int_equal(n_actions(c), 0);
    struct coord_reply r;
    assert_true(coord_tick(c, deadline) == COORD_NO_DEADLINE);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_true(r.timed_out);
    assert_int_equal(r.successes, 1);
    assert_string_equal(r.message, "NOQUORUM reached 1 of 2");
    /* Stragglers after the timeout change nothing. */
    reply_from(c, "n3", &ok, deadline + 1);
    coord_on_local_result(c, &ok, deadline + 2);
    assert_int_equal(n_actions(c), 0);
    coord_tick(c, deadline + 5000);
    assert_int_equal(n_actions(c), 0);
    coord_destroy(c);
}

static void test_coord_success_at_the_deadline_is_too_late(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, R3, 3, 1, 5, T0);
    struct peer_msg ok = put_reply(id, RK_OK);
    struct coord_reply r;
    /* The timer has not fired yet, but the ack arrives at the deadline
       (C3): the answer is the timeout, not success. */
    reply_from(c, "n2", &ok, T0 + 2000);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_true(r.timed_out);
    assert_string_equal(r.message, "NOQUORUM reached 0 of 1");
    coord_destroy(c);
}

static void test_coord_put_fails_early_when_quorum_impossible(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, T3, 3, 2, 9, T0);
    struct peer_msg err = put_reply(id, RK_EIO);
    reply_from(c, "n2", &err, T0 + 4);
    assert_int_equal(n_actions(c), 0);
    /* The second failure leaves 1 possible ack < W=2: answer now, well
       before the deadline (C4). */
    struct peer_msg perr;
    memset(&perr, 0, sizeof(perr));
    perr.type = PEER_ERROR;
    perr.error.req_id = id;
    perr.error.status = RK_EREADONLY;
    struct coord_reply r;
    reply_from(c, "n3", &perr, T0 + 6);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_false(r.timed_out);
    assert_int_equal(r.successes, 0);
    assert_int_equal(r.failures, 2);
    assert_int_equal(r.first_error, RK_EIO);
    assert_string_equal(r.message,
                        "NOQUORUM reached 0 of 2 (2 of 3 replicas failed)");
    struct peer_msg ok = put_reply(id, RK_OK);
    coord_on_local_result(c, &ok, T0 + 8);
    assert_int_equal(n_actions(c), 0);
    coord_destroy(c);
}

static void test_coord_transport_failure_counts_against_quorum(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, R3, 3, 3, 9, T0);
    struct coord_reply r;
    coord_on_failure(c, id, "n4", 2, RK_ECLOSED, T0);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_int_equal(r.first_error, RK_ECLOSED);
    /* A failure after the answer is ignored. */
    coord_on_failure(c, id, "n3", 2, RK_ECLOSED, T0);
    assert_int_equal(n_actions(c), 0);
    coord_destroy(c);
}

static void test_coord_duplicate_replies_are_counted_once(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, T3, 3, 2, 1, T0);
    struct peer_msg ok = put_reply(id, RK_OK);
    reply_from(c, "n2", &ok, T0 + 1);
    reply_from(c, "n2", &ok, T0 + 2);
    assert_int_equal(n_actions(c), 0);
    /* A duplicate failure cannot undo a success either. */
    struct peer_msg err = put_reply(id, RK_EIO);
    reply_from(c, "n2", &err, T0 + 3);
    assert_int_equal(n_actions(c), 0);
    struct coord_stats s;
    coord_stats(c, &s);
    assert_int_equal(s.ignored_duplicate, 2);
    assert_int_equal(coord_inflight(c), 1);
    struct coord_reply r;
    coord_on_local_result(c, &ok, T0 + 4);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.successes, 2);
    coord_destroy(c);
}

static void test_coord_ignores_unknown_ids_strangers_and_wrong_types(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, T3, 3, 1, 1, T0);
    const uint64_t bogus[] = {0,
                              1,
                              id + 1,
                              id ^ (UINT64_C(1) << 40),
                              (id & ~UINT64_C(0xfffff)) | 0xfffff,
                              UINT64_MAX};
    for (size_t i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++) {
        struct peer_msg ok = put_reply(bogus[i], RK_OK);
        reply_from(c, "n2", &ok, T0 + 1);
        assert_int_equal(n_actions(c), 0);
        coord_on_failure(c, bogus[i], "n2", 2, RK_EIO, T0 + 1);
        assert_int_equal(n_actions(c), 0);
    }
    struct peer_msg ok = put_reply(id, RK_OK);
    reply_from(c, "n9", &ok, T0 + 1); /* not a target */
    reply_from(c, "n", &ok, T0 + 1);  /* a prefix of one */
    coord_on_reply(c, NULL, 0, &ok, T0 + 1);
    struct peer_msg wrong = get_reply(id, RK_OK, "x", 1, false);
    reply_from(c, "n2", &wrong, T0 + 1); /* a read answer to a write */
    struct peer_msg ping;
    memset(&ping, 0, sizeof(ping));
    ping.type = PEER_PING;
    reply_from(c, "n2", &ping, T0 + 1);
    struct peer_msg perr;
    memset(&perr, 0, sizeof(perr));
    perr.type = PEER_ERROR;
    perr.error.status = RK_EPROTO; /* req_id 0: not about a request */
    reply_from(c, "n2", &perr, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 1);
    struct coord_stats s;
    coord_stats(c, &s);
    assert_int_equal(s.ignored_unknown, 13);
    assert_int_equal(s.ignored_stranger, 5);
    /* The request still works afterwards. */
    reply_from(c, "n3", &ok, T0 + 2);
    assert_int_equal(replies(c, NULL), 1);
    coord_destroy(c);
}

static void test_coord_delete_sends_a_tombstone(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_put_req req = {
        .key = "gone",
        .klen = 4,
        .timestamp = 99,
        .tombstone = true,
        .targets = T3,
        .n_targets = 3,
        .w = 2,
        .timeout_ms = 100,
    };
    assert_int_equal(coord_start_put(c, &req, T0, NULL), RK_OK);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 3);
    assert_int_equal(a[2].type, COORD_LOCAL_PUT);
    assert_int_equal(a[2].msg.kv_put.flags, PEER_KV_TOMBSTONE);
    assert_int_equal(a[2].msg.kv_put.value.len, 0);
    assert_int_equal(a[2].msg.kv_put.timestamp, 99);
    coord_destroy(c);
}

static void test_coord_rejects_bad_requests(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    const char *const dup[] = {"n2", "n3", "n2"};
    const char *const empty[] = {"n2", ""};
    struct coord_put_req req = {
        .key = "k",
        .klen = 1,
        .value = "v",
        .vlen = 1,
        .targets = T3,
        .n_targets = 3,
        .w = 2,
        .timeout_ms = 10,
    };
    struct coord_put_req bad;
    bad = req;
    bad.w = 0;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.w = 4;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.targets = dup;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.targets = empty;
    bad.n_targets = 2;
    bad.w = 1;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.n_targets = 0;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.tombstone = true;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.expire_at_ms = REPLICA_TOMBSTONE_EXPIRE;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.klen = 0;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.timeout_ms = 0;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    struct coord_get_req g = {
        .key = "k",
        .klen = 1,
        .targets = T3,
        .n_targets = 3,
        .r = 4,
        .timeout_ms = 10,
    };
    assert_int_equal(coord_start_get(c, &g, T0, NULL), RK_EINVAL);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 0);
    struct coord *c2 = NULL;
    assert_int_equal(coord_create("", 8, &c2), RK_EINVAL);
    assert_int_equal(coord_create("n1", 0, &c2), RK_EINVAL);
    assert_null(c2);
    coord_destroy(NULL);
    coord_destroy(c);
}

static void test_coord_table_full_is_busy(void **st)
{
    (void)st;
    struct coord *c = new_coord(4);
    uint64_t ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = start_put(c, T3, 3, 1, (uint64_t)i, T0);
    }
    struct coord_put_req req = {
        .key = "k",
        .klen = 1,
        .targets = T3,
        .n_targets = 3,
        .w = 1,
        .timeout_ms = 10,
    };
    assert_int_equal(coord_start_put(c, &req, T0, NULL), RK_EBUSY);
    assert_int_equal(n_actions(c), 0);
    struct coord_get_req g = {
        .key = "k",
        .klen = 1,
        .targets = T3,
        .n_targets = 3,
        .r = 1,
        .timeout_ms = 10,
    };
    assert_int_equal(coord_start_get(c, &g, T0, NULL), RK_EBUSY);
    struct coord_stats s;
    coord_stats(c, &s);
    assert_int_equal(s.busy, 2);
    /* One finishes: its slot is free again, under a new id (C5). */
    struct peer_msg ok = put_reply(ids[2], RK_OK);
    reply_from(c, "n2", &ok, T0 + 1);
    assert_int_equal(replies(c, NULL), 1);
    uint64_t id = start_put(c, T3, 3, 1, 9, T0 + 2);
    assert_true(id != ids[2]);
    /* The old id's late replies do not touch the new request. */
    reply_from(c, "n3", &ok, T0 + 3);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 4);
    coord_destroy(c); /* frees requests still in flight */
}

static void test_coord_cancel_drops_requests_without_reply(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t a = start_put(c, T3, 3, 2, 7, T0);
    uint64_t b = start_get(c, T3, 3, 2, 7, T0 + 1);
    uint64_t k = start_put(c, T3, 3, 2, 8, T0 + 2);
    assert_int_equal(coord_cancel(c, 7), 2);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 1);
    assert_int_equal(coord_cancel(c, 7), 0);
    struct peer_msg ok = put_reply(a, RK_OK);
    reply_from(c, "n2", &ok, T0 + 3);
    reply_from(c, "n3", &ok, T0 + 3);
    struct peer_msg g = get_reply(b, RK_OK, "v", 1, false);
    reply_from(c, "n2", &g, T0 + 3);
    reply_from(c, "n3", &g, T0 + 3);
    assert_int_equal(n_actions(c), 0);
    /* Only cookie 8's request times out. */
    assert_true(coord_next_deadline_ms(c) == T0 + 2 + 2000);
    struct coord_reply r;
    coord_tick(c, T0 + 5000);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.cookie, 8);
    assert_true(r.req_id == k);
    struct coord_stats s;
    coord_stats(c, &s);
    assert_int_equal(s.cancelled, 2);
    coord_destroy(c);
}

static void test_coord_deadlines_fire_in_order(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    const uint32_t timeouts[] = {300, 100, 200, 100};
    for (int i = 0; i < 4; i++) {
        struct coord_put_req req = {
            .key = "k",
            .klen = 1,
            .targets = R3,
            .n_targets = 3,
            .w = 2,
            .timeout_ms = timeouts[i],
            .cookie = (uint64_t)i,
        };
        assert_int_equal(coord_start_put(c, &req, T0, NULL), RK_OK);
    }
    assert_true(coord_next_deadline_ms(c) == T0 + 100);
    struct coord_reply r;
    assert_true(coord_tick(c, T0 + 100) == T0 + 200);
    assert_int_equal(replies(c, &r), 2);
    assert_true(coord_tick(c, T0 + 250) == T0 + 300);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.cookie, 2);
    assert_true(coord_tick(c, T0 + 300) == COORD_NO_DEADLINE);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.cookie, 0);
    coord_destroy(c);
}

/* ---- reads -------------------------------------------------------------- */

static void test_coord_get_r2_returns_newest_timestamp(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_get(c, T3, 3, 2, 3, T0);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 3);
    assert_int_equal(a[0].type, COORD_SEND);
    assert_int_equal(a[0].msg.type, PEER_KV_GET);
    assert_true(a[0].msg.kv_get.req_id == id);
    assert_int_equal(a[2].type, COORD_LOCAL_GET);
    struct coord_reply r;
    /* The newer answer comes first, then an older one. */
    char newer[] = "new";
    struct peer_msg m = get_reply(id, RK_OK, newer, 200, false);
    m.kv_get_reply.expire_at_ms = 5555;
    reply_from(c, "n3", &m, T0 + 1);
    memset(newer, 'X', 3); /* the coordinator kept its own copy */
    assert_int_equal(n_actions(c), 0);
    struct peer_msg old = get_reply(id, RK_OK, "old", 100, false);
    coord_on_local_result(c, &old, T0 + 2);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_true(r.found);
    assert_false(r.tombstone);
    assert_int_equal(r.timestamp, 200);
    assert_int_equal(r.expire_at_ms, 5555);
    assert_int_equal(r.value.len, 3);
    assert_memory_equal(r.value.ptr, "new", 3);
    assert_int_equal(r.op, COORD_OP_GET);
    coord_destroy(c);
}

static void test_coord_get_equal_timestamps_break_ties_by_value(void **st)
{
    (void)st;
    /* Both delivery orders give the same winner (replica_version_cmp). */
    for (int order = 0; order < 2; order++) {
        struct coord *c = new_coord(8);
        uint64_t id = start_get(c, R3, 3, 2, 3, T0);
        struct peer_msg x = get_reply(id, RK_OK, "apple", 50, false);
        struct peer_msg y = get_reply(id, RK_OK, "banana", 50, false);
        reply_from(c, "n2", order ? &y : &x, T0 + 1);
        reply_from(c, "n3", order ? &x : &y, T0 + 1);
        struct coord_reply r;
        assert_int_equal(replies(c, &r), 1);
        assert_int_equal(r.value.len, 6);
        assert_memory_equal(r.value.ptr, "banana", 6);
        coord_destroy(c);
    }
}

static void test_coord_get_mixes_not_found_and_found(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    uint64_t id = start_get(c, R3, 3, 2, 3, T0);
    struct peer_msg nf = get_reply(id, RK_ENOTFOUND, NULL, 0, false);
    struct peer_msg f = get_reply(id, RK_OK, "v", 10, false);
    reply_from(c, "n2", &nf, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    reply_from(c, "n4", &f, T0 + 2);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_memory_equal(r.value.ptr, "v", 1);
    assert_int_equal(r.successes, 2);
    /* Two not-found answers are a quorum that says "not found". */
    id = start_get(c, R3, 3, 2, 4, T0 + 3);
    nf = get_reply(id, RK_ENOTFOUND, NULL, 0, false);
    reply_from(c, "n2", &nf, T0 + 4);
    reply_from(c, "n3", &nf, T0 + 4);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOTFOUND);
    assert_false(r.found);
    assert_string_equal(r.message, "");
    /* A replica error is not an answer: R=2 needs two of the others. */
    id = start_get(c, R3, 3, 2, 5, T0 + 5);
    struct peer_msg e = get_reply(id, RK_ECORRUPT, NULL, 0, false);
    nf = get_reply(id, RK_ENOTFOUND, NULL, 0, false);
    reply_from(c, "n2", &e, T0 + 6);
    reply_from(c, "n3", &nf, T0 + 6);
    assert_int_equal(n_actions(c), 0);
    e.kv_get_reply.status = RK_EIO;
    reply_from(c, "n4", &e, T0 + 7);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_string_equal(r.message,
                        "NOQUORUM reached 1 of 2 (2 of 3 replicas failed)");
    assert_false(r.found);
    coord_destroy(c);
}

static void test_coord_get_newest_tombstone_is_not_found(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    uint64_t id = start_get(c, R3, 3, 2, 3, T0);
    struct peer_msg v = get_reply(id, RK_OK, "v", 10, false);
    struct peer_msg t = get_reply(id, RK_OK, NULL, 20, true);
    reply_from(c, "n2", &v, T0 + 1);
    reply_from(c, "n3", &t, T0 + 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOTFOUND);
    assert_true(r.found);
    assert_true(r.tombstone);
    assert_int_equal(r.timestamp, 20);
    /* An older tombstone loses to a newer value. */
    id = start_get(c, R3, 3, 2, 4, T0 + 2);
    v = get_reply(id, RK_OK, "v", 30, false);
    t = get_reply(id, RK_OK, NULL, 20, true);
    reply_from(c, "n3", &t, T0 + 3);
    reply_from(c, "n2", &v, T0 + 3);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_int_equal(r.timestamp, 30);
    /* A tombstone carrying a value is malformed: counted as a failure. */
    id = start_get(c, R3, 3, 3, 5, T0 + 4);
    t = get_reply(id, RK_OK, "junk", 20, true);
    reply_from(c, "n3", &t, T0 + 5);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_int_equal(r.first_error, RK_EPROTO);
    coord_destroy(c);
}

static void test_coord_get_timeout_reports_r(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    uint64_t id = start_get(c, T3, 3, 3, 3, T0);
    struct peer_msg v = get_reply(id, RK_OK, "v", 10, false);
    coord_on_local_result(c, &v, T0 + 1);
    reply_from(c, "n2", &v, T0 + 1);
    coord_tick(c, T0 + 2000);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_false(r.found); /* no value on NOQUORUM */
    assert_string_equal(r.message, "NOQUORUM reached 2 of 3");
    coord_destroy(c);
}

/* ---- allocation failures ------------------------------------------------ */

struct fail_heap
{
    long calls;   /* allocation calls */
    long fail_at; /* fail the Nth call, 1-based; 0 = never */
};

static struct fail_heap heap;

static bool heap_fails(void)
{
    heap.calls++;
    return heap.fail_at != 0 && heap.calls == heap.fail_at;
}

static void *fh_malloc(void *data, size_t size)
{
    (void)data;
    return heap_fails() ? NULL : malloc(size);
}

static void *fh_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return heap_fails() ? NULL : calloc(n, size);
}

static void *fh_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return heap_fails() ? NULL : realloc(ptr, size);
}

static void fh_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static const struct rk_allocator fail_allocator = {
    NULL, fh_malloc, fh_calloc, fh_realloc, fh_free,
};

/*
 * Fails the Nth allocation for N = 1, 2, ... through create, a write and a
 * read with a value to keep, until all succeed (STYLE.md 1.7): each failure
 * is reported (RK_ENOMEM at create or start, a REPLY with RK_ENOMEM when
 * the read value cannot be kept), leaves no request behind, and leaks
 * nothing (ASan).
 */
static void test_coord_survives_allocation_failures(void **st)
{
    (void)st;
    bool done = false;
    for (long n = 1; !done && n < 100; n++) {
        heap = (struct fail_heap){0, n};
        rk_set_allocator(&fail_allocator);
        struct coord *c = NULL;
        int rc = coord_create("n1", 4, &c);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_ENOMEM);
            assert_null(c);
            rk_set_allocator(NULL);
            continue;
        }
        struct coord_put_req p = {
            .key = "k",
            .klen = 1,
            .value = "v",
            .vlen = 1,
            .targets = R3,
            .n_targets = 3,
            .w = 1,
            .timeout_ms = 10,
        };
        uint64_t id = 0;
        rc = coord_start_put(c, &p, T0, &id);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_ENOMEM);
            assert_int_equal(n_actions(c), 0);
            assert_int_equal(coord_inflight(c), 0);
            coord_destroy(c);
            rk_set_allocator(NULL);
            continue;
        }
        struct peer_msg ok = put_reply(id, RK_OK);
        reply_from(c, "n2", &ok, T0 + 1);
        assert_int_equal(replies(c, NULL), 1);
        struct coord_get_req g = {
            .key = "k",
            .klen = 1,
            .targets = R3,
            .n_targets = 3,
            .r = 1,
            .timeout_ms = 10,
        };
        rc = coord_start_get(c, &g, T0 + 2, &id);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_ENOMEM);
            assert_int_equal(coord_inflight(c), 0);
            coord_destroy(c);
            rk_set_allocator(NULL);
            continue;
        }
        struct coord_reply r;
        struct peer_msg v = get_reply(id, RK_OK, "value", 5, false);
        reply_from(c, "n3", &v, T0 + 3);
        assert_int_equal(replies(c, &r), 1);
        if (r.status == RK_ENOMEM) {
            assert_false(r.found);
        } else {
            assert_int_equal(r.status, RK_OK);
            assert_memory_equal(r.value.ptr, "value", 5);
            done = true;
        }
        assert_int_equal(coord_inflight(c), 0);
        coord_destroy(c);
        rk_set_allocator(NULL);
    }
    assert_true(done);
}

/* ---- randomized interleaving ------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rng_next(s) % n);
}

#define SIM_NODES  5
#define SIM_CAP    48
#define SIM_REQS   1500
#define SIM_EVENTS (SIM_REQS * 16)
#define SIM_VALUES 4

static const char *const sim_nodes[SIM_NODES] = {"n1", "n2", "n3", "n4", "n5"};
static const char *const sim_values[SIM_VALUES] = {"a", "bb", "ab", ""};

/* A message in flight to the coordinator. */
struct sim_ev
{
    uint64_t at_ms;
    uint64_t order; /* random tie-break among equal times */
    int req;        /* model index */
    int node;       /* sim_nodes index */
    int kind;       /* 0 put reply, 1 get reply, 2 transport failure */
    int status;
    int value; /* sim_values index, -1 = tombstone */
    uint64_t ts;
};

struct sim_req
{
    uint64_t id;
    uint64_t start_ms, deadline_ms;
    bool get;
    bool cancelled;
    uint32_t n, need;
    int targets[SIM_NODES];
    /* model of what the coordinator has counted */
    uint32_t answered_mask; /* by sim_nodes index */
    uint32_t successes, failures;
    bool has_best;
    struct replica_version best;
    /* what it answered */
    int n_replies;
    struct coord_reply reply;
    uint64_t reply_ms;
};

struct sim
{
    uint64_t rng;
    uint64_t now;
    struct coord *c;
    struct sim_req reqs[SIM_REQS];
    int n_reqs;
    struct sim_ev *evs;
    size_t n_evs;
    /* figures */
    unsigned busy, ok, notfound, nq_timeout, nq_early, cancelled;
    unsigned dups_sent, late;
};

static void sim_push(struct sim *s, struct sim_ev ev)
{
    assert_true(s->n_evs < SIM_EVENTS);
    ev.order = rng_next(&s->rng);
    s->evs[s->n_evs++] = ev;
}

/* Index of the earliest event (ties in random order), or -1. */
static int sim_earliest(const struct sim *s)
{
    int best = -1;
    for (size_t i = 0; i < s->n_evs; i++) {
        if (best < 0 || s->evs[i].at_ms < s->evs[best].at_ms ||
            (s->evs[i].at_ms == s->evs[best].at_ms &&
             s->evs[i].order < s->evs[best].order)) {
            best = (int)i;
        }
    }
    return best;
}

static int sim_find(const struct sim *s, uint64_t req_id)
{
    for (int i = 0; i < s->n_reqs; i++) {
        if (s->reqs[i].id == req_id) {
            return i;
        }
    }
    return -1;
}

/* Checks each REPLY of the last event against the model (C1-C4). */
static void sim_check_replies(struct sim *s)
{
    const struct coord_action *a;
    size_t n = coord_actions(s->c, &a);
    for (size_t i = 0; i < n; i++) {
        if (a[i].type != COORD_REPLY) {
            continue;
        }
        const struct coord_reply *r = &a[i].reply;
        int k = sim_find(s, r->req_id);
        assert_true(k >= 0);
        struct sim_req *q = &s->reqs[k];
        assert_false(q->cancelled);
        assert_int_equal(q->n_replies, 0); /* C1: exactly one */
        q->n_replies++;
        q->reply = *r;
        q->reply_ms = s->now;
        assert_true(r->cookie == (uint64_t)k);
        assert_int_equal(r->successes, q->successes);
        assert_int_equal(r->failures, q->failures);
        assert_true(s->now <= q->deadline_ms);
        if (r->status == RK_ENOQUORUM && r->timed_out) {
            /* C3: exactly at the deadline, never later. */
            assert_true(s->now == q->deadline_ms);
            assert_true(q->successes < q->need);
            s->nq_timeout++;
        } else if (r->status == RK_ENOQUORUM) {
            /* C4: as soon as success became impossible. */
            assert_true(q->failures > q->n - q->need);
            assert_true(s->now < q->deadline_ms);
            s->nq_early++;
        } else {
            /* C2: the need-th success, before the deadline. */
            assert_true(r->status == RK_OK || r->status == RK_ENOTFOUND);
            assert_int_equal(q->successes, q->need);
            assert_true(s->now < q->deadline_ms);
            if (q->get) {
                bool live = q->has_best && !q->best.tombstone;
                assert_int_equal(r->status, live ? RK_OK : RK_ENOTFOUND);
                assert_int_equal(r->found, q->has_best);
                if (q->has_best) {
                    struct replica_version got = {
                        .value = r->value.ptr,
                        .vlen = r->value.len,
                        .timestamp = r->timestamp,
                        .expire_at_ms = r->expire_at_ms,
                        .tombstone = r->tombstone,
                    };
                    assert_int_equal(replica_version_cmp(&got, &q->best), 0);
                }
            } else {
                assert_int_equal(r->status, RK_OK);
            }
            if (r->status == RK_OK) {
                s->ok++;
            } else {
                s->notfound++;
            }
        }
    }
}

/* What the coordinator should count for a delivered event (the model). */
static void sim_model_answer(struct sim *s, const struct sim_ev *ev)
{
    struct sim_req *q = &s->reqs[ev->req];
    if (q->cancelled || q->n_replies > 0 || s->now >= q->deadline_ms) {
        if (q->n_replies > 0) {
            s->late++;
        }
        return;
    }
    uint32_t bit = 1u << ev->node;
    if (q->answered_mask & bit) {
        return;
    }
    q->answered_mask |= bit;
    bool ok = ev->status == RK_OK ||
              (q->get && ev->kind == 1 && ev->status == RK_ENOTFOUND);
    if (!ok) {
        q->failures++;
        return;
    }
    q->successes++;
    if (q->get && ev->status == RK_OK) {
        struct replica_version v = {
            .value = ev->value >= 0 ? sim_values[ev->value] : NULL,
            .vlen = ev->value >= 0 ? strlen(sim_values[ev->value]) : 0,
            .timestamp = ev->ts,
            .tombstone = ev->value < 0,
        };
        if (!q->has_best || replica_version_cmp(&v, &q->best) > 0) {
            q->best = v;
            q->has_best = true;
        }
    }
}

static void sim_deliver(struct sim *s, const struct sim_ev *ev)
{
    const struct sim_req *q = &s->reqs[ev->req];
    const char *node = sim_nodes[ev->node];
    sim_model_answer(s, ev);
    if (ev->kind == 2) {
        coord_on_failure(s->c, q->id, node, strlen(node), ev->status, s->now);
        return;
    }
    struct peer_msg m;
    if (ev->kind == 0) {
        m = put_reply(q->id, ev->status);
    } else {
        const char *v = ev->value >= 0 ? sim_values[ev->value] : NULL;
        m = get_reply(q->id, ev->status, v, ev->ts, ev->value < 0);
    }
    if (ev->node == 0) {
        coord_on_local_result(s->c, &m, s->now);
    } else {
        coord_on_reply(s->c, node, strlen(node), &m, s->now);
    }
}

/* Schedules the network's fate of each SEND / LOCAL_* just emitted. */
static void sim_schedule(struct sim *s, int k)
{
    const struct coord_action *a;
    size_t n = coord_actions(s->c, &a);
    struct sim_req *q = &s->reqs[k];
    assert_int_equal(n, q->n);
    for (size_t i = 0; i < n; i++) {
        int node = -1;
        for (int j = 0; j < SIM_NODES; j++) {
            if (a[i].node_len == 2 && memcmp(a[i].node, sim_nodes[j], 2) == 0) {
                node = j;
            }
        }
        assert_true(node >= 0);
        bool local = node == 0;
        assert_int_equal(
            a[i].type,
            local ? (q->get ? COORD_LOCAL_GET : COORD_LOCAL_PUT) : COORD_SEND);
        uint32_t fate = rng_below(&s->rng, 100);
        if (!local && fate < 12) {
            continue; /* lost: only the deadline answers */
        }
        struct sim_ev ev = {
            .at_ms = s->now +
                     (local ? rng_below(&s->rng, 3) : rng_below(&s->rng, 400)),
            .req = k,
            .node = node,
            .kind = q->get ? 1 : 0,
            .status = RK_OK,
            .value = (int)rng_below(&s->rng, SIM_VALUES + 1) - 1,
            .ts = rng_below(&s->rng, 6),
        };
        uint32_t st = rng_below(&s->rng, 100);
        if (st < 12) {
            ev.status = RK_EIO;
        } else if (st < 16) {
            ev.kind = 2; /* the transport gave up on it */
            ev.status = RK_ECLOSED;
        } else if (q->get && st < 35) {
            ev.status = RK_ENOTFOUND;
        }
        sim_push(s, ev);
        if (fate >= 90) { /* duplicated by the network */
            ev.at_ms += rng_below(&s->rng, 500);
            sim_push(s, ev);
            s->dups_sent++;
        }
    }
}

static void sim_start(struct sim *s)
{
    int k = s->n_reqs;
    struct sim_req *q = &s->reqs[k];
    memset(q, 0, sizeof(*q));
    q->get = rng_below(&s->rng, 2) == 0;
    q->n = 1 + rng_below(&s->rng, 3);
    q->need = 1 + rng_below(&s->rng, q->n);
    /* n distinct nodes out of SIM_NODES (Fisher-Yates prefix) */
    int perm[SIM_NODES];
    for (int i = 0; i < SIM_NODES; i++) {
        perm[i] = i;
    }
    const char *ids[SIM_NODES];
    for (uint32_t i = 0; i < q->n; i++) {
        uint32_t j = i + rng_below(&s->rng, SIM_NODES - i);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        q->targets[i] = perm[i];
        ids[i] = sim_nodes[perm[i]];
    }
    uint32_t timeout = 50 + rng_below(&s->rng, 450);
    int rc;
    if (q->get) {
        struct coord_get_req g = {
            .key = "k",
            .klen = 1,
            .targets = ids,
            .n_targets = q->n,
            .r = q->need,
            .timeout_ms = timeout,
            .cookie = (uint64_t)k,
        };
        rc = coord_start_get(s->c, &g, s->now, &q->id);
    } else {
        struct coord_put_req p = {
            .key = "k",
            .klen = 1,
            .value = "v",
            .vlen = 1,
            .timestamp = 1,
            .targets = ids,
            .n_targets = q->n,
            .w = q->need,
            .timeout_ms = timeout,
            .cookie = (uint64_t)k,
        };
        rc = coord_start_put(s->c, &p, s->now, &q->id);
    }
    if (coord_inflight(s->c) == SIM_CAP && rc == RK_EBUSY) {
        s->busy++;
        assert_int_equal(n_actions(s->c), 0);
        return;
    }
    assert_int_equal(rc, RK_OK);
    q->start_ms = s->now;
    q->deadline_ms = s->now + timeout;
    s->n_reqs++;
    sim_schedule(s, k);
}

static void sim_cancel_one(struct sim *s)
{
    /* mostly recent requests, which are more likely still in flight */
    uint32_t span = s->n_reqs < 64 ? (uint32_t)s->n_reqs : 64;
    int k = s->n_reqs - 1 - (int)rng_below(&s->rng, span);
    struct sim_req *q = &s->reqs[k];
    size_t n = coord_cancel(s->c, (uint64_t)k);
    bool open = !q->cancelled && q->n_replies == 0;
    assert_int_equal(n, open ? 1 : 0);
    assert_int_equal(n_actions(s->c), 0);
    if (open) {
        q->cancelled = true;
        s->cancelled++;
    }
}

static void sim_run(uint64_t seed)
{
    struct sim *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->evs = calloc(SIM_EVENTS, sizeof(*s->evs));
    assert_non_null(s->evs);
    s->rng = seed;
    s->now = T0;
    s->c = new_coord(SIM_CAP);
    uint64_t next_start = s->now;
    unsigned attempts = 0;
    for (;;) {
        int e = sim_earliest(s);
        uint64_t deadline = coord_next_deadline_ms(s->c);
        uint64_t t = UINT64_MAX;
        bool more = attempts < SIM_REQS * 2 && s->n_reqs < SIM_REQS;
        if (more) {
            t = next_start;
        }
        if (e >= 0 && s->evs[e].at_ms < t) {
            t = s->evs[e].at_ms;
        }
        if (deadline < t) {
            t = deadline;
        }
        if (t == UINT64_MAX) {
            break;
        }
        assert_true(t >= s->now);
        s->now = t;
        if (deadline == t) {
            /* The caller's one timer fires exactly at the deadline. */
            coord_tick(s->c, t);
            sim_check_replies(s);
        } else if (e >= 0 && s->evs[e].at_ms == t) {
            struct sim_ev ev = s->evs[e];
            s->evs[e] = s->evs[--s->n_evs];
            sim_deliver(s, &ev);
            sim_check_replies(s);
        } else {
            attempts++;
            if (s->n_reqs > 0 && rng_below(&s->rng, 100) < 5) {
                sim_cancel_one(s);
            } else {
                sim_start(s);
            }
            sim_check_replies(s); /* a start never replies */
            next_start = s->now + rng_below(&s->rng, 7);
        }
    }
    /* C1 at the end: one reply for every request not cancelled. */
    for (int k = 0; k < s->n_reqs; k++) {
        assert_int_equal(s->reqs[k].n_replies, s->reqs[k].cancelled ? 0 : 1);
    }
    assert_int_equal(coord_inflight(s->c), 0);
    struct coord_stats st;
    coord_stats(s->c, &st);
    assert_int_equal(st.started, (uint64_t)s->n_reqs);
    assert_int_equal(st.replied_ok, s->ok + s->notfound);
    assert_int_equal(st.noquorum_timeout, s->nq_timeout);
    assert_int_equal(st.noquorum_early, s->nq_early);
    assert_int_equal(st.cancelled, s->cancelled);
    assert_int_equal(st.busy, s->busy);
    printf("seed %" PRIu64
           ": requests %d, ok %u, not found %u, "
           "noquorum timeout %u early %u, cancelled %u, busy %u, "
           "duplicates sent %u ignored %" PRIu64 ", late ignored %" PRIu64
           ", virtual time %" PRIu64 " ms\n",
           seed, s->n_reqs, s->ok, s->notfound, s->nq_timeout, s->nq_early,
           s->cancelled, s->busy, s->dups_sent, st.ignored_duplicate,
           st.ignored_unknown, s->now - T0);
    coord_destroy(s->c);
    free(s->evs);
    free(s);
}

static void test_coord_random_interleavings_keep_invariants(void **st)
{
    (void)st;
    const char *env = getenv("RK_COORD_SEED");
    if (env != NULL) {
        sim_run(strtoull(env, NULL, 10));
        return;
    }
    for (uint64_t seed = 1; seed <= 8; seed++) {
        sim_run(seed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coord_put_sends_to_targets_and_applies_locally),
        cmocka_unit_test(test_coord_put_replies_once_after_second_ack),
        cmocka_unit_test(test_coord_put_noquorum_exactly_at_timeout),
        cmocka_unit_test(test_coord_success_at_the_deadline_is_too_late),
        cmocka_unit_test(test_coord_put_fails_early_when_quorum_impossible),
        cmocka_unit_test(test_coord_transport_failure_counts_against_quorum),
        cmocka_unit_test(test_coord_duplicate_replies_are_counted_once),
        cmocka_unit_test(
            test_coord_ignores_unknown_ids_strangers_and_wrong_types),
        cmocka_unit_test(test_coord_delete_sends_a_tombstone),
        cmocka_unit_test(test_coord_rejects_bad_requests),
        cmocka_unit_test(test_coord_table_full_is_busy),
        cmocka_unit_test(test_coord_cancel_drops_requests_without_reply),
        cmocka_unit_test(test_coord_deadlines_fire_in_order),
        cmocka_unit_test(test_coord_get_r2_returns_newest_timestamp),
        cmocka_unit_test(test_coord_get_equal_timestamps_break_ties_by_value),
        cmocka_unit_test(test_coord_get_mixes_not_found_and_found),
        cmocka_unit_test(test_coord_get_newest_tombstone_is_not_found),
        cmocka_unit_test(test_coord_get_timeout_reports_r),
        cmocka_unit_test(test_coord_survives_allocation_failures),
        cmocka_unit_test(test_coord_random_interleavings_keep_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_coord.c - cluster/coord: the quorum coordinator state machine
 * driven with scripted replies on a virtual clock (issue 4 item 5, issue 5;
 * the invariants C1-C7 of coord.h).  No sockets, no sleeps: every time
 * below is an exact virtual time (STYLE.md 1.7, raft ASSERT_TIME).
 *
 * Objects are real dvv encodings (cluster/dvv.h) built once by the group
 * setup: `a` and `b` are concurrent writes, `ab` their merge (two
 * siblings), `a2` a later write over `a`, `tomb` a delete over `a2`.  A GET
 * REPLY must carry the canonical encoding of the merge of the answers, and
 * read repair must send that encoding to exactly the targets that answered
 * something else.
 *
 * The last test runs many interleaved requests (puts, some pre-acked;
 * reads, some with read repair; updates) under a seeded random network
 * (delay, reordering, loss, duplication with different objects, failures,
 * undecodable answers, cancellation) and checks every invariant at each
 * event; it prints its seeds and figures.  RK_COORD_SEED=<n> in the
 * environment replays one seed.
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
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"

static const char *const T3[] = {"n1", "n2", "n3"}; /* n1 is self */
static const char *const R3[] = {"n2", "n3", "n4"}; /* all remote */

#define T0      1000u /* virtual start time, ms */
#define TIMEOUT COORD_DEFAULT_TIMEOUT_MS
#define WAIT    100u /* read repair wait, ms */

/* ---- test objects (group fixture) -------------------------------------- */

struct objs
{
    struct dvv_obj a;    /* actor 1 wrote "left" at ts 10 */
    struct dvv_obj b;    /* actor 2 wrote "right" at ts 11: concurrent */
    struct dvv_obj ab;   /* merge(a, b): both siblings */
    struct dvv_obj a2;   /* a, then actor 1 wrote "newer" over it: a < a2 */
    struct dvv_obj tomb; /* a2, then actor 3 deleted it: a2 < tomb */
    struct rk_buf ea, eb, eab, ea2, etomb; /* canonical encodings */
    struct rk_buf bad; /* eab without its last byte: does not decode */
};

static struct objs O;

static void write_obj(struct dvv_obj *o,
                      const struct dvv_obj *ctx,
                      uint64_t actor,
                      const char *v,
                      uint64_t ts)
{
    struct dvv_write w = {
        v, v ? strlen(v) : 0, ts, 0, v == NULL, false, false, false};
    assert_int_equal(dvv_update(o, ctx, actor, 0, &w, NULL), RK_OK);
}

static void encode_obj(const struct dvv_obj *o, struct rk_buf *out)
{
    rk_buf_init(out);
    assert_int_equal(dvv_encode(o, out), RK_OK);
}

static int objs_setup(void **st)
{
    (void)st;
    dvv_init(&O.a);
    dvv_init(&O.b);
    dvv_init(&O.ab);
    dvv_init(&O.a2);
    dvv_init(&O.tomb);
    write_obj(&O.a, NULL, 1, "left", 10);
    write_obj(&O.b, NULL, 2, "right", 11);
    assert_int_equal(dvv_merge(&O.ab, &O.a, &O.b), RK_OK);
    assert_int_equal(O.ab.n_sibs, 2);
    assert_int_equal(dvv_copy(&O.a2, &O.a), RK_OK);
    write_obj(&O.a2, &O.a2, 1, "newer", 12);
    assert_int_equal(O.a2.n_sibs, 1);
    assert_int_equal(dvv_copy(&O.tomb, &O.a2), RK_OK);
    write_obj(&O.tomb, &O.tomb, 3, NULL, 13);
    assert_true(dvv_all_tombstones(&O.tomb));
    encode_obj(&O.a, &O.ea);
    encode_obj(&O.b, &O.eb);
    encode_obj(&O.ab, &O.eab);
    encode_obj(&O.a2, &O.ea2);
    encode_obj(&O.tomb, &O.etomb);
    rk_buf_init(&O.bad);
    assert_int_equal(rk_buf_append(&O.bad, O.eab.base, O.eab.len - 1), RK_OK);
    return 0;
}

static int objs_teardown(void **st)
{
    (void)st;
    dvv_fini(&O.a);
    dvv_fini(&O.b);
    dvv_fini(&O.ab);
    dvv_fini(&O.a2);
    dvv_fini(&O.tomb);
    rk_buf_fini(&O.ea);
    rk_buf_fini(&O.eb);
    rk_buf_fini(&O.eab);
    rk_buf_fini(&O.ea2);
    rk_buf_fini(&O.etomb);
    rk_buf_fini(&O.bad);
    return 0;
}

/* `got` is exactly the canonical encoding `want` (and decodes to it). */
static void assert_bytes(struct peer_bytes got, const struct rk_buf *want)
{
    assert_int_equal(got.len, want->len);
    assert_memory_equal(got.ptr, want->base, want->len);
}

static void assert_object(struct peer_bytes got, const struct dvv_obj *want)
{
    struct rk_buf enc;
    encode_obj(want, &enc);
    assert_bytes(got, &enc);
    struct dvv_obj d;
    dvv_init(&d);
    assert_int_equal(dvv_decode(&d, got.ptr, got.len), RK_OK);
    assert_true(dvv_equal(&d, want));
    dvv_fini(&d);
    rk_buf_fini(&enc);
}

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

static struct coord_stats stats(struct coord *c)
{
    struct coord_stats s;
    coord_stats(c, &s);
    return s;
}

/* A put of object `a` with no hints and no pre-acked target. */
static struct coord_put_req put_req(const char *const *targets,
                                    size_t n,
                                    uint32_t w,
                                    uint64_t cookie)
{
    struct coord_put_req req = {
        .key = "k",
        .klen = 1,
        .object = O.ea.base,
        .olen = O.ea.len,
        .targets = targets,
        .n_targets = n,
        .hint_for = NULL,
        .acked = -1,
        .w = w,
        .timeout_ms = TIMEOUT,
        .cookie = cookie,
    };
    return req;
}

static uint64_t start_put(struct coord *c,
                          const char *const *targets,
                          size_t n,
                          uint32_t w,
                          uint64_t cookie,
                          uint64_t now_ms)
{
    struct coord_put_req req = put_req(targets, n, w, cookie);
    uint64_t id = 0;
    assert_int_equal(coord_start_put(c, &req, now_ms, &id), RK_OK);
    assert_int_not_equal(id, 0);
    return id;
}

static uint64_t start_get_wait(struct coord *c,
                               const char *const *targets,
                               size_t n,
                               uint32_t r,
                               uint32_t repair_wait_ms,
                               uint64_t cookie,
                               uint64_t now_ms)
{
    struct coord_get_req req = {
        .key = "k",
        .klen = 1,
        .targets = targets,
        .n_targets = n,
        .r = r,
        .timeout_ms = TIMEOUT,
        .repair_wait_ms = repair_wait_ms,
        .cookie = cookie,
    };
    uint64_t id = 0;
    assert_int_equal(coord_start_get(c, &req, now_ms, &id), RK_OK);
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
    return start_get_wait(c, targets, n, r, 0, cookie, now_ms);
}

/* An update of "k" to "val" at `target` (no context). */
static struct coord_update_req update_req(const char *target, uint64_t cookie)
{
    struct coord_update_req req = {
        .key = "k",
        .klen = 1,
        .value = "val",
        .vlen = 3,
        .timestamp = 77,
        .flags = PEER_KV_OWN_CONTEXT,
        .target = target,
        .timeout_ms = TIMEOUT,
        .cookie = cookie,
    };
    return req;
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

/* A read answer; `obj` (an encoding, or NULL) only with RK_OK. */
static struct peer_msg get_reply(uint64_t id,
                                 int status,
                                 const struct rk_buf *obj)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_KV_GET_REPLY;
    m.kv_get_reply.req_id = id;
    m.kv_get_reply.status = status;
    if (obj != NULL) {
        m.kv_get_reply.object.ptr = obj->base;
        m.kv_get_reply.object.len = obj->len;
    }
    return m;
}

static struct peer_msg update_reply(uint64_t id,
                                    int status,
                                    const struct rk_buf *obj)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_KV_UPDATE_REPLY;
    m.kv_update_reply.req_id = id;
    m.kv_update_reply.status = status;
    if (obj != NULL) {
        m.kv_update_reply.object.ptr = obj->base;
        m.kv_update_reply.object.len = obj->len;
    }
    return m;
}

static struct peer_msg peer_error(uint64_t id, int status)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_ERROR;
    m.error.req_id = id;
    m.error.status = status;
    return m;
}

static void reply_from(struct coord *c,
                       const char *node,
                       const struct peer_msg *m,
                       uint64_t now_ms)
{
    coord_on_reply(c, node, strlen(node), m, now_ms);
}

static bool node_is(const struct coord_action *a, const char *id)
{
    return a->node_len == strlen(id) && memcmp(a->node, id, a->node_len) == 0;
}

/* Checks that `a` is a read repair of "k" to `node` carrying `want`. */
static void assert_repair(const struct coord_action *a,
                          const char *node,
                          const struct dvv_obj *want)
{
    assert_non_null(a);
    assert_int_equal(a->type,
                     strcmp(node, "n1") == 0 ? COORD_LOCAL_PUT : COORD_SEND);
    assert_true(node_is(a, node));
    assert_int_equal(a->msg.type, PEER_KV_PUT);
    assert_true(a->msg.kv_put.req_id == 0); /* apply, answer nothing */
    assert_int_equal(a->msg.kv_put.key.len, 1);
    assert_memory_equal(a->msg.kv_put.key.ptr, "k", 1);
    assert_int_equal(a->msg.kv_put.hint_for.len, 0);
    assert_object(a->msg.kv_put.object, want);
}

/* ---- writes: replication of an object ----------------------------------- */

static void test_coord_put_sends_object_to_targets_and_applies_locally(
    void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_put(c, T3, 3, 2, 42, T0);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 3);
    assert_int_equal(a[0].type, COORD_SEND);
    assert_true(node_is(&a[0], "n2"));
    assert_int_equal(a[1].type, COORD_SEND);
    assert_true(node_is(&a[1], "n3"));
    assert_int_equal(a[2].type, COORD_LOCAL_PUT);
    assert_true(node_is(&a[2], "n1"));
    for (int i = 0; i < 3; i++) {
        const struct peer_kv_put *p = &a[i].msg.kv_put;
        assert_int_equal(a[i].msg.type, PEER_KV_PUT);
        assert_true(p->req_id == id);
        assert_int_equal(p->key.len, 1);
        assert_memory_equal(p->key.ptr, "k", 1);
        assert_bytes(p->object, &O.ea);
        assert_int_equal(p->hint_for.len, 0);
        assert_int_equal(p->deadline_ms, TIMEOUT);
    }
    assert_int_equal(coord_inflight(c), 1);
    assert_true(coord_next_deadline_ms(c) == T0 + TIMEOUT);
    coord_destroy(c);
}

static void test_coord_put_copies_the_object(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    char key[] = "key";
    struct rk_buf obj;
    encode_obj(&O.ab, &obj);
    struct coord_put_req req = put_req(R3, 3, 1, 1);
    req.key = key;
    req.klen = 3;
    req.object = obj.base;
    req.olen = obj.len;
    assert_int_equal(coord_start_put(c, &req, T0, NULL), RK_OK);
    memset(obj.base, 0xee, obj.len); /* the caller's bytes are gone */
    memset(key, 'X', 3);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 3);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(a[i].msg.kv_put.key.ptr, "key", 3);
        assert_bytes(a[i].msg.kv_put.object, &O.eab);
    }
    rk_buf_fini(&obj);
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
    assert_false(r.found); /* a put carries no object back */
    assert_int_equal(r.object.len, 0);
    assert_string_equal(r.message, "");
    assert_int_equal(coord_inflight(c), 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    /* The third ack is late: ignored, no second reply (C1, C5). */
    reply_from(c, "n2", &ok, T0 + 9);
    assert_int_equal(n_actions(c), 0);
    struct coord_stats s = stats(c);
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
    assert_int_equal(stats(c).noquorum_timeout, 1);
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
    /* The same for a read answer carrying an object. */
    id = start_get(c, R3, 3, 1, 6, T0);
    struct peer_msg g = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n3", &g, T0 + 2000);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_true(r.timed_out);
    assert_false(r.found);
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
    struct peer_msg perr = peer_error(id, RK_EREADONLY);
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
    assert_int_equal(stats(c).noquorum_early, 1);
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
    coord_on_failure(c, id, "n2", 2, RK_ECLOSED, T0 + 3);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(stats(c).ignored_duplicate, 3);
    assert_int_equal(coord_inflight(c), 1);
    struct coord_reply r;
    coord_on_local_result(c, &ok, T0 + 4);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.successes, 2);
    assert_int_equal(r.failures, 0);
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
    struct peer_msg wrong = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &wrong, T0 + 1); /* a read answer to a write */
    wrong = update_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &wrong, T0 + 1); /* an update answer to a write */
    struct peer_msg ping;
    memset(&ping, 0, sizeof(ping));
    ping.type = PEER_PING;
    reply_from(c, "n2", &ping, T0 + 1);
    struct peer_msg perr = peer_error(0, RK_EPROTO); /* not about a request */
    reply_from(c, "n2", &perr, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 1);
    struct coord_stats s = stats(c);
    assert_int_equal(s.ignored_unknown, 13);
    assert_int_equal(s.ignored_stranger, 6);
    assert_int_equal(s.ignored_duplicate, 0);
    /* The request still works afterwards. */
    reply_from(c, "n3", &ok, T0 + 2);
    assert_int_equal(replies(c, NULL), 1);
    coord_destroy(c);
}

static void test_coord_acked_put_with_w1_replies_at_start(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    /* Self (n1, target 0) coordinated the update and holds the object:
       it is counted at once and gets no LOCAL_PUT. */
    struct coord_put_req req = put_req(T3, 3, 1, 42);
    req.acked = 0;
    uint64_t id = 0;
    assert_int_equal(coord_start_put(c, &req, T0, &id), RK_OK);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 3);
    assert_int_equal(a[0].type, COORD_SEND);
    assert_true(node_is(&a[0], "n2"));
    assert_true(a[0].msg.kv_put.req_id == id);
    assert_int_equal(a[1].type, COORD_SEND);
    assert_true(node_is(&a[1], "n3"));
    assert_int_equal(a[2].type, COORD_REPLY);
    struct coord_reply r = a[2].reply;
    assert_int_equal(r.status, RK_OK);
    assert_true(r.req_id == id);
    assert_int_equal(r.cookie, 42);
    assert_int_equal(r.successes, 1);
    assert_int_equal(r.need, 1);
    assert_int_equal(r.failures, 0);
    assert_int_equal(coord_inflight(c), 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    /* The replicas' acks arrive after the REPLY: ignored (C1, C5). */
    struct peer_msg ok = put_reply(id, RK_OK);
    reply_from(c, "n2", &ok, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    /* N = 1 with its only target acked: no message at all. */
    req = put_req(R3, 1, 1, 43);
    req.acked = 0;
    assert_int_equal(coord_start_put(c, &req, T0 + 2, NULL), RK_OK);
    assert_int_equal(coord_actions(c, &a), 1);
    assert_int_equal(a[0].type, COORD_REPLY);
    assert_int_equal(a[0].reply.status, RK_OK);
    struct coord_stats s = stats(c);
    assert_int_equal(s.started, 2);
    assert_int_equal(s.replied_ok, 2);
    coord_destroy(c);
}

static void test_coord_acked_put_counts_the_acked_target_once(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_put_req req = put_req(R3, 3, 2, 1);
    req.acked = 1; /* n3 */
    uint64_t id = 0;
    assert_int_equal(coord_start_put(c, &req, T0, &id), RK_OK);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 2);
    assert_true(node_is(&a[0], "n2"));
    assert_true(node_is(&a[1], "n4"));
    assert_int_equal(coord_inflight(c), 1);
    /* The acked target answering anyway is a duplicate, not a 2nd ack. */
    struct peer_msg ok = put_reply(id, RK_OK);
    reply_from(c, "n3", &ok, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(stats(c).ignored_duplicate, 1);
    struct coord_reply r;
    reply_from(c, "n4", &ok, T0 + 2);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_int_equal(r.successes, 2);
    /* With W = 3 the acked target still counts toward C4: two failures
       leave 1 + 0 < 3 at the first one. */
    req = put_req(R3, 3, 3, 2);
    req.acked = 2;
    assert_int_equal(coord_start_put(c, &req, T0 + 3, &id), RK_OK);
    coord_on_failure(c, id, "n2", 2, RK_ECLOSED, T0 + 4);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_int_equal(r.successes, 1);
    assert_int_equal(r.failures, 1);
    assert_string_equal(r.message,
                        "NOQUORUM reached 1 of 3 (1 of 3 replicas failed)");
    coord_destroy(c);
}

static void test_coord_put_hint_for_reaches_only_its_target(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    char owner[] = "n7";
    const char *hints[] = {NULL, owner, NULL};
    struct coord_put_req req = put_req(T3, 3, 2, 1);
    req.hint_for = hints;
    assert_int_equal(coord_start_put(c, &req, T0, NULL), RK_OK);
    memcpy(owner, "XX", 2); /* copied at start */
    hints[1] = NULL;
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 3);
    assert_true(node_is(&a[0], "n2")); /* target 1: the fallback for n7 */
    assert_int_equal(a[0].msg.kv_put.hint_for.len, 2);
    assert_memory_equal(a[0].msg.kv_put.hint_for.ptr, "n7", 2);
    assert_true(node_is(&a[1], "n3"));
    assert_int_equal(a[1].msg.kv_put.hint_for.len, 0);
    assert_int_equal(a[2].type, COORD_LOCAL_PUT);
    assert_int_equal(a[2].msg.kv_put.hint_for.len, 0);
    /* Self may be the fallback too: the hint rides on its LOCAL_PUT. */
    const char *const self_hint[] = {"n9", NULL, NULL};
    req.hint_for = self_hint;
    assert_int_equal(coord_start_put(c, &req, T0, NULL), RK_OK);
    assert_int_equal(coord_actions(c, &a), 3);
    assert_int_equal(a[0].msg.kv_put.hint_for.len, 0);
    assert_int_equal(a[1].msg.kv_put.hint_for.len, 0);
    assert_int_equal(a[2].type, COORD_LOCAL_PUT);
    assert_int_equal(a[2].msg.kv_put.hint_for.len, 2);
    assert_memory_equal(a[2].msg.kv_put.hint_for.ptr, "n9", 2);
    coord_destroy(c);
}

static void test_coord_rejects_bad_requests(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    const char *const dup[] = {"n2", "n3", "n2"};
    const char *const empty[] = {"n2", ""};
    char long_id[PEER_MAX_NODE_ID + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *const long_hint[] = {NULL, long_id, NULL};
    struct coord_put_req req = put_req(T3, 3, 2, 0);
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
    bad.olen = 0;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.object = NULL;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.acked = -2;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.acked = 3; /* == n_targets */
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.hint_for = long_hint;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.klen = 0;
    assert_int_equal(coord_start_put(c, &bad, T0, NULL), RK_EINVAL);
    bad = req;
    bad.klen = PEER_MAX_KEY + 1;
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
    g.r = 0;
    assert_int_equal(coord_start_get(c, &g, T0, NULL), RK_EINVAL);
    g.r = 1;
    g.klen = 0;
    assert_int_equal(coord_start_get(c, &g, T0, NULL), RK_EINVAL);
    struct coord_update_req u = update_req("n2", 0);
    struct coord_update_req ubad;
    ubad = u;
    ubad.target = NULL;
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.target = "";
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.target = long_id;
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.klen = 0;
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.timeout_ms = 0;
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.value = NULL; /* vlen 3 */
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.flags = 0x80; /* not a PEER_KV_UPDATE_FLAGS bit */
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.flags = PEER_KV_COUNTER; /* without OWN_CONTEXT, not 24 bytes */
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.flags = PEER_KV_TOMBSTONE; /* with a value */
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.flags = PEER_KV_TOMBSTONE;
    ubad.value = NULL;
    ubad.vlen = 0;
    ubad.expire_at_ms = 5; /* with an expiry */
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.context = O.ea.base; /* OWN_CONTEXT with a context */
    ubad.clen = O.ea.len;
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.clen = 4; /* context NULL */
    ubad.flags = 0;
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    ubad = u;
    ubad.flags = PEER_KV_FALLBACK;
    ubad.hint_for = long_id;
    assert_int_equal(coord_start_update(c, &ubad, T0, NULL), RK_EINVAL);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 0);
    assert_int_equal(stats(c).started, 0);
    struct coord *c2 = NULL;
    assert_int_equal(coord_create("", 8, &c2), RK_EINVAL);
    assert_int_equal(coord_create(NULL, 8, &c2), RK_EINVAL);
    assert_int_equal(coord_create(long_id, 8, &c2), RK_EINVAL);
    assert_int_equal(coord_create("n1", 0, &c2), RK_EINVAL);
    assert_int_equal(coord_create("n1", COORD_MAX_INFLIGHT + 1, &c2),
                     RK_EINVAL);
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
    struct coord_put_req req = put_req(T3, 3, 1, 9);
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
    struct coord_update_req u = update_req("n2", 9);
    assert_int_equal(coord_start_update(c, &u, T0, NULL), RK_EBUSY);
    assert_int_equal(n_actions(c), 0);
    struct coord_stats s = stats(c);
    assert_int_equal(s.busy, 3);
    assert_int_equal(s.started, 4);
    /* One finishes: its slot is free again, under a new id (C5). */
    struct peer_msg ok = put_reply(ids[2], RK_OK);
    reply_from(c, "n2", &ok, T0 + 1);
    assert_int_equal(replies(c, NULL), 1);
    uint64_t id = start_put(c, T3, 3, 1, 9, T0 + 2);
    for (int i = 0; i < 4; i++) {
        assert_true(id != ids[i]);
    }
    /* The old id's late replies do not touch the new request. */
    reply_from(c, "n3", &ok, T0 + 3);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 4);
    coord_destroy(c); /* frees requests still in flight */
}

static void test_coord_req_ids_are_never_reused(void **st)
{
    (void)st;
    /* One slot, reused 1000 times: every id differs (C5), and a reply for
       any earlier id is ignored. */
    enum
    {
        ROUNDS = 1000
    };
    static uint64_t ids[ROUNDS];
    struct coord *c = new_coord(1);
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t id = start_put(c, R3, 3, 1, 1, T0 + (uint64_t)i);
        for (int j = 0; j < i; j++) {
            assert_true(id != ids[j]);
        }
        ids[i] = id;
        if (i > 0) {
            /* a straggler for an earlier use of the same slot */
            struct peer_msg old = put_reply(ids[i / 2], RK_OK);
            reply_from(c, "n2", &old, T0 + (uint64_t)i);
            assert_int_equal(n_actions(c), 0);
            assert_int_equal(coord_inflight(c), 1);
        }
        struct peer_msg ok = put_reply(id, RK_OK);
        reply_from(c, "n2", &ok, T0 + (uint64_t)i);
        assert_int_equal(replies(c, NULL), 1);
    }
    assert_int_equal(stats(c).ignored_unknown, ROUNDS - 1);
    coord_destroy(c);
}

static void test_coord_cancel_drops_requests_without_reply(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t a = start_put(c, T3, 3, 2, 7, T0);
    uint64_t b = start_get(c, T3, 3, 2, 7, T0 + 1);
    struct coord_update_req u = update_req("n2", 7);
    uint64_t up = 0;
    assert_int_equal(coord_start_update(c, &u, T0 + 1, &up), RK_OK);
    uint64_t k = start_put(c, T3, 3, 2, 8, T0 + 2);
    assert_int_equal(coord_cancel(c, 7), 3);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(coord_inflight(c), 1);
    assert_int_equal(coord_cancel(c, 7), 0);
    struct peer_msg ok = put_reply(a, RK_OK);
    reply_from(c, "n2", &ok, T0 + 3);
    reply_from(c, "n3", &ok, T0 + 3);
    struct peer_msg g = get_reply(b, RK_OK, &O.ea);
    reply_from(c, "n2", &g, T0 + 3);
    reply_from(c, "n3", &g, T0 + 3);
    struct peer_msg ur = update_reply(up, RK_OK, &O.ea);
    reply_from(c, "n2", &ur, T0 + 3);
    assert_int_equal(n_actions(c), 0);
    /* Only cookie 8's request times out. */
    assert_true(coord_next_deadline_ms(c) == T0 + 2 + 2000);
    struct coord_reply r;
    coord_tick(c, T0 + 5000);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.cookie, 8);
    assert_true(r.req_id == k);
    struct coord_stats s = stats(c);
    assert_int_equal(s.cancelled, 3);
    assert_int_equal(s.ignored_unknown, 5);
    coord_destroy(c);
}

static void test_coord_deadlines_fire_in_order(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    const uint32_t timeouts[] = {300, 100, 200, 100};
    for (int i = 0; i < 4; i++) {
        struct coord_put_req req = put_req(R3, 3, 2, (uint64_t)i);
        req.timeout_ms = timeouts[i];
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

/* ---- reads: merging versioned answers ----------------------------------- */

static void test_coord_get_merges_concurrent_answers_into_siblings(void **st)
{
    (void)st;
    /* Both delivery orders give the same bytes: the merge, canonically
       encoded (dvv_merge is commutative). */
    for (int order = 0; order < 2; order++) {
        struct coord *c = new_coord(8);
        uint64_t id = start_get(c, T3, 3, 2, 3, T0);
        const struct coord_action *a;
        assert_int_equal(coord_actions(c, &a), 3);
        assert_int_equal(a[0].type, COORD_SEND);
        assert_true(node_is(&a[0], "n2"));
        assert_int_equal(a[0].msg.type, PEER_KV_GET);
        assert_true(a[0].msg.kv_get.req_id == id);
        assert_int_equal(a[0].msg.kv_get.key.len, 1);
        assert_memory_equal(a[0].msg.kv_get.key.ptr, "k", 1);
        assert_int_equal(a[0].msg.kv_get.deadline_ms, TIMEOUT);
        assert_int_equal(a[1].type, COORD_SEND);
        assert_true(node_is(&a[1], "n3"));
        assert_int_equal(a[2].type, COORD_LOCAL_GET);
        assert_true(node_is(&a[2], "n1"));
        assert_int_equal(a[2].msg.type, PEER_KV_GET);
        /* The first answer's bytes are the caller's, gone after the call:
           the coordinator keeps its own copy. */
        struct rk_buf first;
        encode_obj(order ? &O.b : &O.a, &first);
        struct peer_msg m = get_reply(id, RK_OK, &first);
        reply_from(c, "n3", &m, T0 + 1);
        memset(first.base, 0xee, first.len);
        assert_int_equal(n_actions(c), 0);
        struct peer_msg m2 = get_reply(id, RK_OK, order ? &O.ea : &O.eb);
        coord_on_local_result(c, &m2, T0 + 2);
        struct coord_reply r;
        assert_int_equal(replies(c, &r), 1);
        assert_int_equal(r.status, RK_OK);
        assert_int_equal(r.op, COORD_OP_GET);
        assert_int_equal(r.successes, 2);
        assert_true(r.found);
        assert_object(r.object, &O.ab);
        struct dvv_obj got;
        dvv_init(&got);
        assert_int_equal(dvv_decode(&got, r.object.ptr, r.object.len), RK_OK);
        assert_int_equal(got.n_sibs, 2); /* no concurrent sibling dropped */
        bool left = false, right = false;
        for (size_t i = 0; i < got.n_sibs; i++) {
            left |= got.sibs[i].vlen == 4 &&
                    memcmp(dvv_value(&got, i), "left", 4) == 0;
            right |= got.sibs[i].vlen == 5 &&
                     memcmp(dvv_value(&got, i), "right", 5) == 0;
        }
        assert_true(left && right);
        dvv_fini(&got);
        rk_buf_fini(&first);
        coord_destroy(c);
    }
}

static void test_coord_get_dominated_answer_adds_nothing(void **st)
{
    (void)st;
    /* (newer, older): the merge is the newer object, in either order. */
    const struct rk_buf *pairs[][2] = {
        {&O.ea2, &O.ea},    {&O.eab, &O.ea},   {&O.eab, &O.eb},
        {&O.etomb, &O.ea2}, {&O.etomb, &O.ea},
    };
    const struct dvv_obj *newer[] = {&O.a2, &O.ab, &O.ab, &O.tomb, &O.tomb};
    for (size_t p = 0; p < sizeof(newer) / sizeof(newer[0]); p++) {
        for (int order = 0; order < 2; order++) {
            struct coord *c = new_coord(8);
            uint64_t id = start_get(c, R3, 3, 2, 3, T0);
            struct peer_msg x = get_reply(id, RK_OK, pairs[p][order]);
            struct peer_msg y = get_reply(id, RK_OK, pairs[p][!order]);
            reply_from(c, "n2", &x, T0 + 1);
            reply_from(c, "n4", &y, T0 + 2);
            struct coord_reply r;
            assert_int_equal(replies(c, &r), 1);
            assert_int_equal(r.status, RK_OK);
            assert_true(r.found);
            assert_object(r.object, newer[p]);
            coord_destroy(c);
        }
    }
}

static void test_coord_get_duplicate_answer_is_not_merged(void **st)
{
    (void)st;
    /* C2: a target counts once, so its second answer (even with another
       object) neither counts nor adds a sibling. */
    struct coord *c = new_coord(8);
    uint64_t id = start_get(c, R3, 3, 2, 3, T0);
    struct peer_msg x = get_reply(id, RK_OK, &O.ea);
    struct peer_msg y = get_reply(id, RK_OK, &O.eb);
    reply_from(c, "n2", &x, T0 + 1);
    reply_from(c, "n2", &y, T0 + 2);
    assert_int_equal(n_actions(c), 0);
    reply_from(c, "n3", &x, T0 + 3);
    struct coord_reply r;
    assert_int_equal(replies(c, &r), 1);
    assert_object(r.object, &O.a);
    assert_int_equal(r.successes, 2);
    assert_int_equal(stats(c).ignored_duplicate, 1);
    coord_destroy(c);
}

static void test_coord_get_mixes_not_found_and_found(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    uint64_t id = start_get(c, R3, 3, 2, 3, T0);
    struct peer_msg nf = get_reply(id, RK_ENOTFOUND, NULL);
    struct peer_msg f = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &nf, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    reply_from(c, "n4", &f, T0 + 2);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_true(r.found);
    assert_object(r.object, &O.a);
    assert_int_equal(r.successes, 2);
    /* Two not-found answers are a quorum that says "not found". */
    id = start_get(c, R3, 3, 2, 4, T0 + 3);
    nf = get_reply(id, RK_ENOTFOUND, NULL);
    reply_from(c, "n2", &nf, T0 + 4);
    reply_from(c, "n3", &nf, T0 + 4);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOTFOUND);
    assert_false(r.found);
    assert_int_equal(r.object.len, 0);
    assert_string_equal(r.message, "");
    /* A replica error is not an answer: R=2 needs two of the others. */
    id = start_get(c, R3, 3, 2, 5, T0 + 5);
    struct peer_msg e = get_reply(id, RK_ECORRUPT, NULL);
    nf = get_reply(id, RK_ENOTFOUND, NULL);
    reply_from(c, "n2", &e, T0 + 6);
    reply_from(c, "n3", &nf, T0 + 6);
    assert_int_equal(n_actions(c), 0);
    e.kv_get_reply.status = RK_EIO;
    reply_from(c, "n4", &e, T0 + 7);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_string_equal(r.message,
                        "NOQUORUM reached 1 of 2 (2 of 3 replicas failed)");
    assert_int_equal(r.first_error, RK_ECORRUPT);
    assert_false(r.found);
    assert_int_equal(stats(c).bad_answers, 0); /* errors, not bad objects */
    coord_destroy(c);
}

static void test_coord_get_tombstone_answer_is_a_found_object(void **st)
{
    (void)st;
    /* coord_start_get: RK_ENOTFOUND only when no answer had an object.  A
       delete is an object (its siblings are tombstones); the caller
       decides what a client sees. */
    struct coord *c = new_coord(8);
    struct coord_reply r;
    uint64_t id = start_get(c, R3, 3, 2, 3, T0);
    struct peer_msg v = get_reply(id, RK_OK, &O.ea2);
    struct peer_msg t = get_reply(id, RK_OK, &O.etomb);
    reply_from(c, "n2", &v, T0 + 1);
    reply_from(c, "n3", &t, T0 + 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_true(r.found);
    assert_object(r.object, &O.tomb);
    coord_destroy(c);
}

static void test_coord_get_timeout_reports_r(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    uint64_t id = start_get(c, T3, 3, 3, 3, T0);
    struct peer_msg v = get_reply(id, RK_OK, &O.ea);
    coord_on_local_result(c, &v, T0 + 1);
    reply_from(c, "n2", &v, T0 + 1);
    coord_tick(c, T0 + 2000);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_true(r.timed_out);
    assert_false(r.found); /* no object on NOQUORUM */
    assert_int_equal(r.object.len, 0);
    assert_string_equal(r.message, "NOQUORUM reached 2 of 3");
    coord_destroy(c);
}

static void test_coord_get_bad_object_answer_counts_as_failure(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    /* R = N = 3: one undecodable answer makes the quorum impossible. */
    uint64_t id = start_get(c, R3, 3, 3, 3, T0);
    struct peer_msg bad = get_reply(id, RK_OK, &O.bad);
    reply_from(c, "n3", &bad, T0 + 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_false(r.timed_out);
    assert_int_equal(r.successes, 0);
    assert_int_equal(r.failures, 1);
    assert_int_equal(r.first_error, RK_EPROTO);
    assert_false(r.found);
    assert_int_equal(stats(c).bad_answers, 1);
    /* R = 2: the bad answer is not merged; the two good ones decide. An
       RK_OK answer without an object, and one in another format
       version, are bad too. */
    struct rk_buf v2;
    rk_buf_init(&v2);
    assert_int_equal(rk_buf_append(&v2, O.ea.base, O.ea.len), RK_OK);
    v2.base[0] = DVV_FORMAT_VERSION + 1;
    const struct rk_buf empty = {0};
    const struct rk_buf *bads[] = {&O.bad, &empty, &v2};
    for (size_t i = 0; i < 3; i++) {
        id = start_get(c, R3, 3, 2, 4, T0 + 2);
        bad = get_reply(id, RK_OK, bads[i]);
        reply_from(c, "n2", &bad, T0 + 3);
        assert_int_equal(n_actions(c), 0);
        struct peer_msg x = get_reply(id, RK_OK, &O.ea);
        struct peer_msg y = get_reply(id, RK_OK, &O.ea2);
        reply_from(c, "n3", &x, T0 + 4);
        reply_from(c, "n4", &y, T0 + 5);
        assert_int_equal(replies(c, &r), 1);
        assert_int_equal(r.status, RK_OK);
        assert_int_equal(r.successes, 2);
        assert_int_equal(r.failures, 1);
        assert_int_equal(r.first_error, RK_EPROTO);
        assert_object(r.object, &O.a2);
        assert_int_equal(stats(c).bad_answers, 2 + i);
    }
    rk_buf_fini(&v2);
    coord_destroy(c);
}

/* ---- reads: read repair ------------------------------------------------- */

/* The action of the last event addressed to `node`, or NULL. */
static const struct coord_action *action_to(struct coord *c, const char *node)
{
    const struct coord_action *a;
    size_t n = coord_actions(c, &a);
    const struct coord_action *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (a[i].type != COORD_REPLY && node_is(&a[i], node)) {
            assert_null(found); /* at most one per node */
            found = &a[i];
        }
    }
    return found;
}

static void test_coord_read_repair_sends_merged_object_to_stale_remote(
    void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_get_wait(c, R3, 3, 2, WAIT, 5, T0);
    struct peer_msg newer = get_reply(id, RK_OK, &O.ea2);
    struct peer_msg older = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &newer, T0 + 1);
    reply_from(c, "n3", &older, T0 + 2);
    struct coord_reply r;
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(n_actions(c), 1); /* n4 is still out: LINGER */
    assert_int_equal(r.status, RK_OK);
    assert_object(r.object, &O.a2);
    assert_int_equal(coord_inflight(c), 0);
    assert_true(coord_next_deadline_ms(c) == T0 + 2 + WAIT);
    assert_int_equal(stats(c).read_repairs, 0);
    /* The last answer ends the wait: n3 answered an older version. */
    reply_from(c, "n4", &newer, T0 + 3);
    assert_int_equal(replies(c, NULL), 0);
    assert_int_equal(n_actions(c), 1);
    assert_repair(action_to(c, "n3"), "n3", &O.a2);
    struct coord_stats s = stats(c);
    assert_int_equal(s.read_repairs, 1);
    assert_int_equal(s.replied_ok, 1);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    /* Finished: a duplicate now is for an unknown id. */
    reply_from(c, "n4", &newer, T0 + 4);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(stats(c).ignored_unknown, 1);
    coord_destroy(c);
}

static void test_coord_read_repair_of_self_is_a_local_put(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_get_wait(c, T3, 3, 2, WAIT, 5, T0);
    struct peer_msg nf = get_reply(id, RK_ENOTFOUND, NULL);
    struct peer_msg older = get_reply(id, RK_OK, &O.ea);
    struct peer_msg newest = get_reply(id, RK_OK, &O.eab);
    coord_on_local_result(c, &nf, T0 + 1);
    reply_from(c, "n2", &older, T0 + 1);
    struct coord_reply r;
    assert_int_equal(replies(c, &r), 1);
    assert_object(r.object, &O.a);
    reply_from(c, "n3", &newest, T0 + 2);
    assert_int_equal(n_actions(c), 2);
    /* self had nothing, n2 an older version; n3 holds the merge */
    assert_repair(action_to(c, "n1"), "n1", &O.ab);
    assert_repair(action_to(c, "n2"), "n2", &O.ab);
    assert_null(action_to(c, "n3"));
    assert_int_equal(stats(c).read_repairs, 2);
    coord_destroy(c);
}

static void test_coord_read_repair_skips_when_all_answers_equal(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    /* Lingering, then the last equal answer ends it with nothing to do. */
    uint64_t id = start_get_wait(c, R3, 3, 2, WAIT, 5, T0);
    struct peer_msg m = get_reply(id, RK_OK, &O.eab);
    reply_from(c, "n2", &m, T0 + 1);
    reply_from(c, "n3", &m, T0 + 1);
    assert_int_equal(replies(c, NULL), 1);
    assert_true(coord_next_deadline_ms(c) == T0 + 1 + WAIT);
    reply_from(c, "n4", &m, T0 + 2);
    assert_int_equal(n_actions(c), 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    /* R = N: the REPLY is the only action. */
    id = start_get_wait(c, R3, 3, 3, WAIT, 6, T0 + 3);
    m = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &m, T0 + 4);
    reply_from(c, "n3", &m, T0 + 4);
    reply_from(c, "n4", &m, T0 + 4);
    assert_int_equal(n_actions(c), 1);
    assert_int_equal(replies(c, NULL), 1);
    /* Nobody has the key: nothing to repair with. */
    id = start_get_wait(c, R3, 3, 3, WAIT, 7, T0 + 5);
    m = get_reply(id, RK_ENOTFOUND, NULL);
    reply_from(c, "n2", &m, T0 + 6);
    reply_from(c, "n3", &m, T0 + 6);
    reply_from(c, "n4", &m, T0 + 6);
    struct coord_reply r;
    assert_int_equal(n_actions(c), 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOTFOUND);
    assert_int_equal(stats(c).read_repairs, 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    coord_destroy(c);
}

static void test_coord_read_repair_after_straggler_includes_its_sibling(
    void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_get_wait(c, T3, 3, 2, WAIT, 5, T0);
    struct peer_msg left = get_reply(id, RK_OK, &O.ea);
    coord_on_local_result(c, &left, T0 + 1);
    reply_from(c, "n2", &left, T0 + 2);
    struct coord_reply r;
    assert_int_equal(replies(c, &r), 1);
    assert_object(r.object, &O.a); /* the REPLY had one sibling */
    /* The straggler holds a concurrent write: merged in during LINGER, so
       every target, the straggler too, gets both siblings. */
    struct peer_msg right = get_reply(id, RK_OK, &O.eb);
    reply_from(c, "n3", &right, T0 + 50);
    assert_int_equal(replies(c, NULL), 0);
    assert_int_equal(n_actions(c), 3);
    assert_repair(action_to(c, "n1"), "n1", &O.ab);
    assert_repair(action_to(c, "n2"), "n2", &O.ab);
    assert_repair(action_to(c, "n3"), "n3", &O.ab);
    const struct coord_action *a = action_to(c, "n2");
    struct dvv_obj got;
    dvv_init(&got);
    assert_int_equal(
        dvv_decode(&got, a->msg.kv_put.object.ptr, a->msg.kv_put.object.len),
        RK_OK);
    assert_int_equal(got.n_sibs, 2);
    long w = dvv_winner(&got);
    assert_true(w >= 0);
    assert_memory_equal(dvv_value(&got, (size_t)w), "right", 5);
    dvv_fini(&got);
    assert_int_equal(stats(c).read_repairs, 3);
    coord_destroy(c);
}

static void test_coord_read_repair_sends_a_straggler_newer_version(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_get_wait(c, R3, 3, 2, WAIT, 5, T0);
    struct peer_msg old = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &old, T0 + 1);
    reply_from(c, "n3", &old, T0 + 1);
    assert_int_equal(replies(c, NULL), 1);
    /* The straggler's version supersedes the answer already given. */
    struct peer_msg newer = get_reply(id, RK_OK, &O.ea2);
    reply_from(c, "n4", &newer, T0 + 60);
    assert_int_equal(n_actions(c), 2);
    assert_repair(action_to(c, "n2"), "n2", &O.a2);
    assert_repair(action_to(c, "n3"), "n3", &O.a2);
    assert_null(action_to(c, "n4"));
    coord_destroy(c);
}

static void test_coord_read_repair_linger_ends_by_tick_at_wait_deadline(
    void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_get_wait(c, R3, 3, 1, WAIT, 5, T0);
    struct peer_msg newer = get_reply(id, RK_OK, &O.ea2);
    struct peer_msg older = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &newer, T0 + 10);
    assert_int_equal(replies(c, NULL), 1);
    uint64_t until = T0 + 10 + WAIT; /* well before the request deadline */
    assert_true(coord_next_deadline_ms(c) == until);
    reply_from(c, "n3", &older, T0 + 20); /* merged, n4 still out */
    assert_int_equal(n_actions(c), 0);
    assert_true(coord_next_deadline_ms(c) == until);
    assert_true(coord_tick(c, until - 1) == until);
    assert_int_equal(n_actions(c), 0);
    /* The wait is over: repair n3; n4 never answered, so it gets none. */
    assert_true(coord_tick(c, until) == COORD_NO_DEADLINE);
    assert_int_equal(n_actions(c), 1);
    assert_int_equal(replies(c, NULL), 0);
    assert_repair(action_to(c, "n3"), "n3", &O.a2);
    assert_null(action_to(c, "n4"));
    /* n4's answer after the wait is for a finished request. */
    reply_from(c, "n4", &older, until + 1);
    assert_int_equal(n_actions(c), 0);
    struct coord_stats s = stats(c);
    assert_int_equal(s.ignored_unknown, 1);
    assert_int_equal(s.read_repairs, 1);
    assert_int_equal(s.noquorum_timeout, 0);
    coord_destroy(c);
}

static void test_coord_read_repair_skips_failed_targets(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    /* Failures during LINGER: a transport failure and an undecodable
       answer end it with nobody to repair. */
    uint64_t id = start_get_wait(c, R3, 3, 1, WAIT, 5, T0);
    struct peer_msg newer = get_reply(id, RK_OK, &O.ea2);
    reply_from(c, "n2", &newer, T0 + 1);
    assert_int_equal(replies(c, NULL), 1);
    coord_on_failure(c, id, "n3", 2, RK_ECLOSED, T0 + 2);
    assert_int_equal(n_actions(c), 0);
    struct peer_msg bad = get_reply(id, RK_OK, &O.bad);
    reply_from(c, "n4", &bad, T0 + 3);
    assert_int_equal(n_actions(c), 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    assert_int_equal(stats(c).bad_answers, 1);
    /* A failure before the REPLY, every target in at the REPLY: the
       repairs come in the same event, after the REPLY, only to the
       stale answer. */
    id = start_get_wait(c, R3, 3, 2, WAIT, 6, T0 + 4);
    struct peer_msg err = get_reply(id, RK_EIO, NULL);
    struct peer_msg older = get_reply(id, RK_OK, &O.ea);
    newer = get_reply(id, RK_OK, &O.ea2);
    reply_from(c, "n2", &err, T0 + 5);
    reply_from(c, "n3", &newer, T0 + 6);
    assert_int_equal(n_actions(c), 0);
    reply_from(c, "n4", &older, T0 + 7);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 2);
    assert_int_equal(a[0].type, COORD_REPLY);
    assert_int_equal(a[0].reply.status, RK_OK);
    assert_int_equal(a[0].reply.failures, 1);
    assert_object(a[0].reply.object, &O.a2); /* still valid (C6) */
    assert_repair(&a[1], "n4", &O.a2);
    assert_null(action_to(c, "n2"));
    assert_int_equal(stats(c).read_repairs, 1);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    coord_destroy(c);
}

static void test_coord_read_repair_after_not_found_reply(void **st)
{
    (void)st;
    /* R = 1 answered "not found" first; a straggler has the key: the
       targets that had nothing are repaired. */
    struct coord *c = new_coord(8);
    uint64_t id = start_get_wait(c, R3, 3, 1, WAIT, 5, T0);
    struct peer_msg nf = get_reply(id, RK_ENOTFOUND, NULL);
    reply_from(c, "n2", &nf, T0 + 1);
    struct coord_reply r;
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOTFOUND);
    assert_false(r.found);
    struct peer_msg has = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n3", &has, T0 + 2);
    assert_int_equal(n_actions(c), 0);
    reply_from(c, "n4", &nf, T0 + 3);
    assert_int_equal(n_actions(c), 2);
    assert_int_equal(replies(c, NULL), 0);
    assert_repair(action_to(c, "n2"), "n2", &O.a);
    assert_repair(action_to(c, "n4"), "n4", &O.a);
    coord_destroy(c);
}

static void test_coord_read_repair_none_after_noquorum(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    /* At the deadline: NOQUORUM, no LINGER, no repair. */
    uint64_t id = start_get_wait(c, R3, 3, 3, WAIT, 5, T0);
    struct peer_msg newer = get_reply(id, RK_OK, &O.ea2);
    struct peer_msg older = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &newer, T0 + 1);
    reply_from(c, "n3", &older, T0 + 1);
    assert_true(coord_tick(c, T0 + TIMEOUT) == COORD_NO_DEADLINE);
    struct coord_reply r;
    assert_int_equal(n_actions(c), 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    reply_from(c, "n4", &newer, T0 + TIMEOUT + 1);
    assert_int_equal(n_actions(c), 0);
    /* Early NOQUORUM: the same. */
    id = start_get_wait(c, R3, 3, 3, WAIT, 6, T0 + TIMEOUT + 2);
    newer = get_reply(id, RK_OK, &O.ea2);
    older = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &newer, T0 + TIMEOUT + 3);
    coord_on_failure(c, id, "n3", 2, RK_ECLOSED, T0 + TIMEOUT + 4);
    assert_int_equal(n_actions(c), 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_false(r.timed_out);
    reply_from(c, "n4", &older, T0 + TIMEOUT + 5);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(stats(c).read_repairs, 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    coord_destroy(c);
}

static void test_coord_lingering_read_ignores_cancel_and_replies_once(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    uint64_t id = start_get_wait(c, R3, 3, 1, WAIT, 7, T0);
    struct peer_msg newer = get_reply(id, RK_OK, &O.ea2);
    struct peer_msg older = get_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &newer, T0 + 1);
    assert_int_equal(replies(c, NULL), 1);
    /* The client has its answer; its going away cancels nothing (the
       request is no longer in flight) and the repairs still happen. */
    assert_int_equal(coord_cancel(c, 7), 0);
    assert_int_equal(n_actions(c), 0);
    reply_from(c, "n3", &older, T0 + 2);
    assert_int_equal(n_actions(c), 0);
    reply_from(c, "n4", &older, T0 + 3);
    assert_int_equal(replies(c, NULL), 0); /* C1: never a second REPLY */
    assert_int_equal(n_actions(c), 2);
    assert_repair(action_to(c, "n3"), "n3", &O.a2);
    assert_repair(action_to(c, "n4"), "n4", &O.a2);
    struct coord_stats s = stats(c);
    assert_int_equal(s.cancelled, 0);
    assert_int_equal(s.replied_ok, 1);
    assert_int_equal(s.started, 1);
    coord_destroy(c);
}

/* ---- updates: a client write at the coordinating replica --------------- */

static void test_coord_update_round_trip_remote(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    char val[] = "val";
    struct rk_buf ctx;
    encode_obj(&O.a, &ctx);
    struct coord_update_req req = update_req("n2", 11);
    req.value = val;
    req.context = ctx.base;
    req.clen = ctx.len;
    req.flags = 0;
    req.expire_at_ms = 5555;
    uint64_t id = 0;
    assert_int_equal(coord_start_update(c, &req, T0, &id), RK_OK);
    memset(val, 'X', 3); /* copied at start */
    memset(ctx.base, 0xee, ctx.len);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 1);
    assert_int_equal(a[0].type, COORD_SEND);
    assert_true(node_is(&a[0], "n2"));
    assert_int_equal(a[0].msg.type, PEER_KV_UPDATE);
    const struct peer_kv_update *u = &a[0].msg.kv_update;
    assert_true(u->req_id == id);
    assert_int_equal(u->key.len, 1);
    assert_memory_equal(u->key.ptr, "k", 1);
    assert_bytes(u->context, &O.ea);
    assert_int_equal(u->value.len, 3);
    assert_memory_equal(u->value.ptr, "val", 3);
    assert_int_equal(u->timestamp, 77);
    assert_int_equal(u->expire_at_ms, 5555);
    assert_int_equal(u->flags, 0);
    assert_int_equal(u->hint_for.len, 0);
    assert_int_equal(u->deadline_ms, TIMEOUT);
    assert_int_equal(coord_inflight(c), 1);
    assert_true(coord_next_deadline_ms(c) == T0 + TIMEOUT);
    /* The replica answers with the object after the write; the REPLY
       carries a copy of it. */
    struct rk_buf obj;
    encode_obj(&O.a2, &obj);
    struct peer_msg m = update_reply(id, RK_OK, &obj);
    reply_from(c, "n2", &m, T0 + 5);
    memset(obj.base, 0xee, obj.len);
    struct coord_reply r;
    assert_int_equal(n_actions(c), 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_int_equal(r.op, COORD_OP_UPDATE);
    assert_int_equal(r.cookie, 11);
    assert_true(r.req_id == id);
    assert_int_equal(r.successes, 1);
    assert_int_equal(r.need, 1);
    assert_int_equal(r.n_targets, 1);
    assert_false(r.timed_out);
    assert_string_equal(r.message, "");
    assert_true(r.found);
    assert_bytes(r.object, &O.ea2);
    assert_int_equal(coord_inflight(c), 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    m = update_reply(id, RK_OK, &O.ea2);
    reply_from(c, "n2", &m, T0 + 6);
    assert_int_equal(n_actions(c), 0);
    struct coord_stats s = stats(c);
    assert_int_equal(s.replied_ok, 1);
    assert_int_equal(s.ignored_unknown, 1);
    rk_buf_fini(&obj);
    rk_buf_fini(&ctx);
    coord_destroy(c);
}

static void test_coord_update_round_trip_local(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_update_req req = update_req("n1", 12);
    uint64_t id = 0;
    assert_int_equal(coord_start_update(c, &req, T0, &id), RK_OK);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 1);
    assert_int_equal(a[0].type, COORD_LOCAL_UPDATE);
    assert_true(node_is(&a[0], "n1"));
    assert_int_equal(a[0].msg.type, PEER_KV_UPDATE);
    assert_true(a[0].msg.kv_update.req_id == id);
    assert_int_equal(a[0].msg.kv_update.flags, PEER_KV_OWN_CONTEXT);
    assert_int_equal(a[0].msg.kv_update.context.len, 0);
    assert_memory_equal(a[0].msg.kv_update.value.ptr, "val", 3);
    struct peer_msg m = update_reply(id, RK_OK, &O.eab);
    coord_on_local_result(c, &m, T0 + 1);
    struct coord_reply r;
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_OK);
    assert_int_equal(r.op, COORD_OP_UPDATE);
    assert_true(r.found);
    assert_bytes(r.object, &O.eab);
    coord_destroy(c);
}

static void test_coord_update_sends_fallback_tombstone_with_hint(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    char owner[] = "n7";
    struct coord_update_req req = update_req("n2", 1);
    req.value = NULL;
    req.vlen = 0;
    req.flags = PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT | PEER_KV_FALLBACK;
    req.hint_for = owner;
    assert_int_equal(coord_start_update(c, &req, T0, NULL), RK_OK);
    memcpy(owner, "XX", 2);
    const struct coord_action *a;
    assert_int_equal(coord_actions(c, &a), 1);
    const struct peer_kv_update *u = &a[0].msg.kv_update;
    assert_int_equal(
        u->flags, PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT | PEER_KV_FALLBACK);
    assert_int_equal(u->value.len, 0);
    assert_int_equal(u->expire_at_ms, 0);
    assert_int_equal(u->hint_for.len, 2);
    assert_memory_equal(u->hint_for.ptr, "n7", 2);
    coord_destroy(c);
}

static void test_coord_update_passes_replica_error_through(void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    const int errs[] = {RK_EINVAL, RK_EREADONLY, RK_ENOSPC};
    for (size_t i = 0; i < 3; i++) {
        struct coord_update_req req = update_req("n2", i);
        uint64_t id = 0;
        assert_int_equal(coord_start_update(c, &req, T0, &id), RK_OK);
        struct peer_msg m = update_reply(id, errs[i], NULL);
        reply_from(c, "n2", &m, T0 + 1);
        assert_int_equal(replies(c, &r), 1);
        assert_int_equal(r.status, errs[i]); /* why, not NOQUORUM */
        assert_int_equal(r.op, COORD_OP_UPDATE);
        assert_false(r.found);
        assert_false(r.timed_out);
        assert_int_equal(r.successes, 0);
        assert_int_equal(r.failures, 1);
        assert_int_equal(r.first_error, errs[i]);
        assert_string_equal(r.message, "");
    }
    /* The replica refusing the message as a whole (PEER_ERROR), and the
       local replica refusing it: the same. */
    struct coord_update_req req = update_req("n2", 9);
    uint64_t id = 0;
    assert_int_equal(coord_start_update(c, &req, T0, &id), RK_OK);
    struct peer_msg e = peer_error(id, RK_EREADONLY);
    reply_from(c, "n2", &e, T0 + 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_EREADONLY);
    req = update_req("n1", 10);
    assert_int_equal(coord_start_update(c, &req, T0, &id), RK_OK);
    struct peer_msg m = update_reply(id, RK_EREADONLY, NULL);
    coord_on_local_result(c, &m, T0 + 1);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_EREADONLY);
    struct coord_stats s = stats(c);
    assert_int_equal(s.replied_error, 5);
    assert_int_equal(s.noquorum_early, 0);
    assert_int_equal(coord_inflight(c), 0);
    coord_destroy(c);
}

static void test_coord_update_transport_failure_or_timeout_is_noquorum(
    void **st)
{
    (void)st;
    struct coord *c = new_coord(8);
    struct coord_reply r;
    /* Connection down, send queue full: the write may not have happened,
       so the client hears NOQUORUM. */
    const int fails[] = {RK_ECLOSED, RK_EBUSY, RK_ETIMEDOUT};
    for (size_t i = 0; i < 3; i++) {
        struct coord_update_req req = update_req("n2", i);
        uint64_t id = 0;
        assert_int_equal(coord_start_update(c, &req, T0, &id), RK_OK);
        coord_on_failure(c, id, "n2", 2, fails[i], T0 + 1);
        assert_int_equal(replies(c, &r), 1);
        assert_int_equal(r.status, RK_ENOQUORUM);
        assert_false(r.timed_out);
        assert_false(r.found);
        assert_int_equal(r.first_error, fails[i]);
        assert_string_equal(r.message,
                            "NOQUORUM reached 0 of 1 (1 of 1 replicas failed)");
    }
    /* No answer: NOQUORUM exactly at the deadline.  Answers of the wrong
       kind, or from another node, do not count. */
    struct coord_update_req req = update_req("n2", 5);
    uint64_t id = 0;
    assert_int_equal(coord_start_update(c, &req, T0, &id), RK_OK);
    struct peer_msg pr = put_reply(id, RK_OK);
    struct peer_msg gr = get_reply(id, RK_OK, &O.ea);
    struct peer_msg ur = update_reply(id, RK_OK, &O.ea);
    reply_from(c, "n2", &pr, T0 + 1);
    reply_from(c, "n2", &gr, T0 + 1);
    reply_from(c, "n3", &ur, T0 + 1);
    coord_on_local_result(c, &ur, T0 + 1);
    assert_int_equal(n_actions(c), 0);
    assert_int_equal(stats(c).ignored_stranger, 4);
    assert_true(coord_tick(c, T0 + TIMEOUT - 1) == T0 + TIMEOUT);
    assert_int_equal(n_actions(c), 0);
    coord_tick(c, T0 + TIMEOUT);
    assert_int_equal(replies(c, &r), 1);
    assert_int_equal(r.status, RK_ENOQUORUM);
    assert_true(r.timed_out);
    assert_string_equal(r.message, "NOQUORUM reached 0 of 1");
    reply_from(c, "n2", &ur, T0 + TIMEOUT + 1);
    assert_int_equal(n_actions(c), 0);
    struct coord_stats s = stats(c);
    assert_int_equal(s.noquorum_early, 3);
    assert_int_equal(s.noquorum_timeout, 1);
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

/* One round of the allocation-failure loop; true when every step had the
 * memory it needed.  Compares bytes only (no allocation of its own). */
static bool alloc_round(struct coord *c)
{
    bool all = true;
    /* a write */
    struct coord_put_req p = put_req(R3, 3, 1, 1);
    p.timeout_ms = 10;
    uint64_t id = 0;
    int rc = coord_start_put(c, &p, T0, &id);
    if (rc != RK_OK) {
        assert_int_equal(rc, RK_ENOMEM);
        assert_int_equal(n_actions(c), 0);
        assert_int_equal(coord_inflight(c), 0);
        return false;
    }
    struct peer_msg ok = put_reply(id, RK_OK);
    reply_from(c, "n2", &ok, T0 + 1);
    assert_int_equal(replies(c, NULL), 1);
    /* a read whose object must be kept, merged and encoded */
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
        return false;
    }
    struct coord_reply r;
    struct peer_msg v = get_reply(id, RK_OK, &O.eab);
    reply_from(c, "n3", &v, T0 + 3);
    assert_int_equal(replies(c, &r), 1);
    if (r.status == RK_ENOMEM) {
        assert_false(r.found); /* C1 still holds */
        all = false;
    } else {
        assert_int_equal(r.status, RK_OK);
        assert_bytes(r.object, &O.eab);
    }
    assert_int_equal(coord_inflight(c), 0);
    /* a read with read repair: at most the one repair, with the merge */
    g.repair_wait_ms = 5;
    rc = coord_start_get(c, &g, T0 + 4, &id);
    if (rc != RK_OK) {
        assert_int_equal(rc, RK_ENOMEM);
        return false;
    }
    v = get_reply(id, RK_OK, &O.ea2);
    reply_from(c, "n2", &v, T0 + 5);
    assert_int_equal(replies(c, &r), 1);
    if (r.status == RK_OK) {
        assert_bytes(r.object, &O.ea2);
        v = get_reply(id, RK_OK, &O.ea);
        reply_from(c, "n3", &v, T0 + 6);
        coord_on_failure(c, id, "n4", 2, RK_ECLOSED, T0 + 6);
        const struct coord_action *a;
        size_t n = coord_actions(c, &a);
        assert_true(n <= 1);
        assert_int_equal(replies(c, NULL), 0);
        if (n == 1) {
            assert_true(node_is(&a[0], "n3"));
            assert_bytes(a[0].msg.kv_put.object, &O.ea2);
        } else {
            all = false;
        }
    } else {
        assert_int_equal(r.status, RK_ENOMEM);
        all = false;
    }
    coord_tick(c, T0 + 100);
    assert_int_equal(replies(c, NULL), 0);
    assert_true(coord_next_deadline_ms(c) == COORD_NO_DEADLINE);
    /* an update whose returned object must be copied */
    struct coord_update_req u = update_req("n2", 3);
    rc = coord_start_update(c, &u, T0 + 7, &id);
    if (rc != RK_OK) {
        assert_int_equal(rc, RK_ENOMEM);
        return false;
    }
    struct peer_msg m = update_reply(id, RK_OK, &O.eab);
    reply_from(c, "n2", &m, T0 + 8);
    assert_int_equal(replies(c, &r), 1);
    if (r.status == RK_ENOMEM) {
        assert_false(r.found);
        all = false;
    } else {
        assert_int_equal(r.status, RK_OK);
        assert_bytes(r.object, &O.eab);
    }
    assert_int_equal(coord_inflight(c), 0);
    return all;
}

/*
 * Fails the Nth allocation for N = 1, 2, ... through create, a write, a
 * read, a read with repair and an update, until all succeed (STYLE.md
 * 1.7): each failure is reported (RK_ENOMEM at create or start, a REPLY
 * with RK_ENOMEM when an object cannot be kept, or a repair not sent),
 * leaves no request behind, and leaks nothing (ASan).
 */
static void test_coord_survives_allocation_failures(void **st)
{
    (void)st;
    bool done = false;
    long n;
    for (n = 1; !done && n < 400; n++) {
        heap = (struct fail_heap){0, n};
        rk_set_allocator(&fail_allocator);
        struct coord *c = NULL;
        int rc = coord_create("n1", 4, &c);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_ENOMEM);
            assert_null(c);
        } else {
            bool all = alloc_round(c);
            if (heap.calls < n) { /* nothing was failed this time */
                assert_true(all);
                done = true;
            }
            coord_destroy(c);
        }
        rk_set_allocator(NULL);
    }
    assert_true(done);
    assert_true(n > 5); /* the loop did fail something */
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
#define SIM_OBJS   6              /* answer pool: five objects, then ... */
#define SIM_BAD    (SIM_OBJS - 1) /* ... one that does not decode */

static const char *const sim_nodes[SIM_NODES] = {"n1", "n2", "n3", "n4", "n5"};
static const struct dvv_obj *const sim_pool[SIM_OBJS - 1] = {
    &O.a, &O.b, &O.ab, &O.a2, &O.tomb,
};
static const struct rk_buf *const sim_enc[SIM_OBJS] = {
    &O.ea, &O.eb, &O.eab, &O.ea2, &O.etomb, &O.bad,
};

enum sim_kind
{
    EV_PUT_REPLY,
    EV_GET_REPLY,
    EV_FAILURE, /* the transport gave up */
    EV_UPDATE_REPLY,
};

/* A message in flight to the coordinator. */
struct sim_ev
{
    uint64_t at_ms;
    uint64_t order; /* random tie-break among equal times */
    int req;        /* model index */
    int node;       /* sim_nodes index */
    enum sim_kind kind;
    int status;
    int obj; /* sim_enc index with RK_OK reads and updates, else -1 */
};

struct sim_req
{
    uint64_t id;
    char key[16]; /* "k<index>": read repairs carry no req_id */
    size_t klen;
    uint64_t start_ms, deadline_ms;
    enum coord_op op;
    bool cancelled;
    uint32_t n, need;
    uint32_t repair_wait; /* reads: 0 = no read repair */
    int acked;            /* puts: sim_nodes index counted at start, or -1 */
    int targets[SIM_NODES];
    uint32_t target_mask; /* by sim_nodes index */
    /* model of what the coordinator has counted */
    uint32_t answered_mask, ok_mask;
    uint32_t successes, failures;
    int obj_of[SIM_NODES]; /* reads: pool index answered, -1 not found */
    bool has_merged;
    struct dvv_obj merged; /* reads: merge of the successful answers */
    int upd_obj;           /* updates: the object answered */
    int upd_err;           /* updates: the replica's error, 0 if none */
    /* what it did */
    int n_replies;
    uint64_t reply_ms;
    bool lingering;      /* answered, waiting to repair */
    bool linger_over;    /* repairs sent, or the wait seen to be over */
    uint32_t ev_repairs; /* repairs seen in this event, by node */
    bool touched;
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
    int touched[SIM_REQS];
    int n_touched;
    unsigned n_lingering; /* lingering && !linger_over: an upper bound */
    struct rk_buf scratch;
    /* figures */
    unsigned busy, ok, notfound, nq_timeout, nq_early, errors, cancelled;
    unsigned dups_sent, late, lingered, repairs, bad;
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

static int sim_node_of(const struct coord_action *a)
{
    for (int j = 0; j < SIM_NODES; j++) {
        if (node_is(a, sim_nodes[j])) {
            return j;
        }
    }
    fail_msg("action for an unknown node");
    return -1;
}

/* `got` is the canonical encoding of the model's merged object. */
static void sim_assert_merged(struct sim *s,
                              const struct sim_req *q,
                              struct peer_bytes got)
{
    rk_buf_clear(&s->scratch);
    assert_int_equal(dvv_encode(&q->merged, &s->scratch), RK_OK);
    assert_bytes(got, &s->scratch);
}

/* The targets read repair must reach: answered successfully with
 * something other than the final merge (C2 for repairs). */
static uint32_t sim_expected_repairs(const struct sim_req *q)
{
    uint32_t m = 0;
    for (uint32_t t = 0; q->has_merged && t < q->n; t++) {
        int node = q->targets[t];
        uint32_t bit = 1u << node;
        if (!(q->ok_mask & bit)) {
            continue;
        }
        int o = q->obj_of[node];
        if (o < 0 || !dvv_equal(sim_pool[o], &q->merged)) {
            m |= bit;
        }
    }
    return m;
}

static void sim_linger_over(struct sim *s, struct sim_req *q)
{
    assert_true(q->lingering && !q->linger_over);
    q->linger_over = true;
    s->n_lingering--;
}

/* A REPLY against the model (C1-C4). */
static void sim_check_reply(struct sim *s, const struct coord_reply *r)
{
    int k = sim_find(s, r->req_id);
    assert_true(k >= 0);
    struct sim_req *q = &s->reqs[k];
    assert_false(q->cancelled);
    assert_int_equal(q->n_replies, 0); /* C1: exactly one */
    q->n_replies++;
    q->reply_ms = s->now;
    assert_true(r->cookie == (uint64_t)k);
    assert_int_equal(r->op, q->op);
    assert_int_equal(r->successes, q->successes);
    assert_int_equal(r->failures, q->failures);
    assert_int_equal(r->need, q->need);
    assert_int_equal(r->n_targets, q->n);
    assert_true(s->now <= q->deadline_ms);
    if (r->status == RK_ENOQUORUM && r->timed_out) {
        /* C3: exactly at the deadline, never later. */
        assert_true(s->now == q->deadline_ms);
        assert_true(q->successes < q->need);
        assert_int_equal(q->upd_err, 0);
        s->nq_timeout++;
    } else if (r->status == RK_ENOQUORUM) {
        /* C4: as soon as success became impossible. */
        assert_true(q->failures > q->n - q->need);
        assert_true(s->now < q->deadline_ms);
        assert_int_equal(q->upd_err, 0);
        s->nq_early++;
    } else if (r->status == RK_OK || r->status == RK_ENOTFOUND) {
        /* C2: the need-th success, before the deadline. */
        assert_int_equal(q->successes, q->need);
        assert_true(s->now < q->deadline_ms);
        if (q->op == COORD_OP_GET) {
            assert_int_equal(r->status, q->has_merged ? RK_OK : RK_ENOTFOUND);
            assert_int_equal(r->found, q->has_merged);
            if (q->has_merged) {
                sim_assert_merged(s, q, r->object);
            }
            if (q->repair_wait > 0) {
                q->lingering = true;
                s->n_lingering++;
                s->lingered++;
            }
        } else if (q->op == COORD_OP_UPDATE) {
            assert_int_equal(r->status, RK_OK);
            assert_true(r->found);
            assert_bytes(r->object, sim_enc[q->upd_obj]);
        } else {
            assert_int_equal(r->status, RK_OK);
        }
        if (r->status == RK_OK) {
            s->ok++;
        } else {
            s->notfound++;
        }
    } else {
        /* The replica's own refusal of an update, passed through. */
        assert_int_equal(q->op, COORD_OP_UPDATE);
        assert_int_not_equal(q->upd_err, 0);
        assert_int_equal(r->status, q->upd_err);
        assert_int_equal(q->failures, 1);
        s->errors++;
    }
}

/* A read repair against the model: once, after the REPLY, the merge. */
static void sim_check_repair(struct sim *s, const struct coord_action *a)
{
    const struct peer_kv_put *p = &a->msg.kv_put;
    char key[16];
    assert_true(p->key.len >= 2 && p->key.len < sizeof(key));
    memcpy(key, p->key.ptr, p->key.len);
    key[p->key.len] = '\0';
    assert_true(key[0] == 'k');
    int k = atoi(key + 1);
    assert_true(k >= 0 && k < s->n_reqs);
    struct sim_req *q = &s->reqs[k];
    assert_string_equal(q->key, key);
    assert_int_equal(q->op, COORD_OP_GET);
    assert_true(q->lingering && !q->linger_over);
    int node = sim_node_of(a);
    assert_int_equal(a->type, node == 0 ? COORD_LOCAL_PUT : COORD_SEND);
    uint32_t bit = 1u << node;
    assert_false(q->ev_repairs & bit);
    q->ev_repairs |= bit;
    assert_int_equal(p->hint_for.len, 0);
    sim_assert_merged(s, q, p->object);
    if (!q->touched) {
        q->touched = true;
        s->touched[s->n_touched++] = k;
    }
    s->repairs++;
}

/* Checks every action of the last event.  Only a start sends requests. */
static void sim_check_actions(struct sim *s, bool start)
{
    const struct coord_action *a;
    size_t n = coord_actions(s->c, &a);
    for (size_t i = 0; i < n; i++) {
        if (a[i].type == COORD_REPLY) {
            sim_check_reply(s, &a[i].reply);
        } else if (a[i].msg.type == PEER_KV_PUT &&
                   a[i].msg.kv_put.req_id == 0) {
            assert_false(start);
            sim_check_repair(s, &a[i]);
        } else {
            assert_true(start);
        }
    }
}

/* After the actions were checked: repairs were exactly the stale targets,
 * and a read whose every target is in no longer lingers. */
static void sim_after_event(struct sim *s, int ev_req)
{
    for (int i = 0; i < s->n_touched; i++) {
        struct sim_req *q = &s->reqs[s->touched[i]];
        assert_int_equal(q->ev_repairs, sim_expected_repairs(q));
        sim_linger_over(s, q);
        q->ev_repairs = 0;
        q->touched = false;
    }
    s->n_touched = 0;
    if (ev_req >= 0) {
        struct sim_req *q = &s->reqs[ev_req];
        if (q->lingering && !q->linger_over &&
            (q->answered_mask & q->target_mask) == q->target_mask) {
            assert_int_equal(sim_expected_repairs(q), 0);
            sim_linger_over(s, q);
        }
    }
}

/*
 * What the coordinator should count for a delivered event (the model).
 * `taken`: the coordinator did not call it an unknown id.  A lingering
 * read may end silently (its wait passed with nothing to repair); then
 * the answer is not taken, which is only right once the wait is over.
 */
static void sim_model_answer(struct sim *s, const struct sim_ev *ev, bool taken)
{
    struct sim_req *q = &s->reqs[ev->req];
    bool linger = q->lingering && !q->linger_over;
    bool open = !q->cancelled && q->n_replies == 0;
    if (!open && !linger) {
        assert_false(taken); /* C5 */
        s->late++;
        return;
    }
    if (!taken) {
        assert_true(linger);
        assert_true(s->now >= q->reply_ms + q->repair_wait ||
                    s->now >= q->deadline_ms);
        sim_linger_over(s, q);
        s->late++;
        return;
    }
    if (open) {
        assert_true(s->now < q->deadline_ms); /* the timer fires first */
    }
    uint32_t bit = 1u << ev->node;
    if (q->answered_mask & bit) {
        return; /* a duplicate: neither counted nor merged */
    }
    q->answered_mask |= bit;
    bool ok = false;
    switch (ev->kind) {
        case EV_FAILURE:
            break;
        case EV_PUT_REPLY:
            ok = ev->status == RK_OK;
            break;
        case EV_GET_REPLY:
            if (ev->status == RK_ENOTFOUND) {
                ok = true;
                q->obj_of[ev->node] = -1;
            } else if (ev->status == RK_OK && ev->obj == SIM_BAD) {
                s->bad++;
            } else if (ev->status == RK_OK) {
                ok = true;
                q->obj_of[ev->node] = ev->obj;
                const struct dvv_obj *o = sim_pool[ev->obj];
                assert_int_equal(q->has_merged ? dvv_merge_into(&q->merged, o)
                                               : dvv_copy(&q->merged, o),
                                 RK_OK);
                q->has_merged = true;
            }
            break;
        case EV_UPDATE_REPLY:
            ok = ev->status == RK_OK;
            if (ok) {
                q->upd_obj = ev->obj;
            } else {
                q->upd_err = ev->status;
            }
            break;
    }
    if (ok) {
        q->successes++;
        q->ok_mask |= bit;
    } else {
        q->failures++;
    }
}

static void sim_deliver(struct sim *s, const struct sim_ev *ev)
{
    const struct sim_req *q = &s->reqs[ev->req];
    const char *node = sim_nodes[ev->node];
    struct coord_stats before = stats(s->c);
    if (ev->kind == EV_FAILURE) {
        coord_on_failure(s->c, q->id, node, strlen(node), ev->status, s->now);
    } else {
        const struct rk_buf *obj = ev->obj >= 0 ? sim_enc[ev->obj] : NULL;
        struct peer_msg m;
        if (ev->kind == EV_PUT_REPLY) {
            m = put_reply(q->id, ev->status);
        } else if (ev->kind == EV_GET_REPLY) {
            m = get_reply(q->id, ev->status, obj);
        } else {
            m = update_reply(q->id, ev->status, obj);
        }
        if (ev->node == 0) {
            coord_on_local_result(s->c, &m, s->now);
        } else {
            coord_on_reply(s->c, node, strlen(node), &m, s->now);
        }
    }
    struct coord_stats after = stats(s->c);
    sim_model_answer(s, ev, after.ignored_unknown == before.ignored_unknown);
}

/* Checks the requests a start just sent and schedules the network's fate
 * of each. */
static void sim_schedule(struct sim *s, int k)
{
    const struct coord_action *a;
    size_t n = coord_actions(s->c, &a);
    struct sim_req *q = &s->reqs[k];
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i].type == COORD_REPLY) {
            continue; /* a pre-acked put with W = 1 */
        }
        sent++;
        int node = sim_node_of(&a[i]);
        assert_true(q->target_mask & (1u << node));
        assert_int_not_equal(node, q->acked);
        bool local = node == 0;
        const enum coord_action_type lt[] = {
            [COORD_OP_PUT] = COORD_LOCAL_PUT,
            [COORD_OP_GET] = COORD_LOCAL_GET,
            [COORD_OP_UPDATE] = COORD_LOCAL_UPDATE,
        };
        const enum peer_type mt[] = {
            [COORD_OP_PUT] = PEER_KV_PUT,
            [COORD_OP_GET] = PEER_KV_GET,
            [COORD_OP_UPDATE] = PEER_KV_UPDATE,
        };
        const enum sim_kind kt[] = {
            [COORD_OP_PUT] = EV_PUT_REPLY,
            [COORD_OP_GET] = EV_GET_REPLY,
            [COORD_OP_UPDATE] = EV_UPDATE_REPLY,
        };
        assert_int_equal(a[i].type, local ? lt[q->op] : COORD_SEND);
        assert_int_equal(a[i].msg.type, mt[q->op]);
        uint32_t fate = rng_below(&s->rng, 100);
        if (!local && fate < 12) {
            continue; /* lost: only the deadline answers */
        }
        struct sim_ev ev = {
            .at_ms = s->now +
                     (local ? rng_below(&s->rng, 3) : rng_below(&s->rng, 400)),
            .req = k,
            .node = node,
            .kind = kt[q->op],
            .status = RK_OK,
            .obj = -1,
        };
        uint32_t st = rng_below(&s->rng, 100);
        if (st < 12) {
            ev.status = q->op == COORD_OP_UPDATE ? RK_EREADONLY : RK_EIO;
        } else if (st < 16) {
            ev.kind = EV_FAILURE;
            ev.status = RK_ECLOSED;
        } else if (q->op == COORD_OP_GET && st < 32) {
            ev.status = RK_ENOTFOUND;
        } else if (q->op == COORD_OP_GET && st < 36) {
            ev.obj = SIM_BAD;
        } else if (q->op != COORD_OP_PUT) {
            ev.obj = (int)rng_below(&s->rng, SIM_OBJS - 1);
        }
        sim_push(s, ev);
        if (fate >= 90) { /* duplicated by the network, maybe changed */
            ev.at_ms += rng_below(&s->rng, 500);
            if (ev.obj >= 0) {
                ev.obj = (int)rng_below(&s->rng, SIM_OBJS - 1);
            }
            sim_push(s, ev);
            s->dups_sent++;
        }
    }
    assert_int_equal(sent, q->n - (q->acked >= 0 ? 1 : 0));
}

static int sim_start(struct sim *s)
{
    int k = s->n_reqs;
    struct sim_req *q = &s->reqs[k];
    memset(q, 0, sizeof(*q));
    dvv_init(&q->merged);
    uint32_t kind = rng_below(&s->rng, 10);
    q->op = kind < 4 ? COORD_OP_GET : kind < 8 ? COORD_OP_PUT : COORD_OP_UPDATE;
    q->n = q->op == COORD_OP_UPDATE ? 1 : 1 + rng_below(&s->rng, 3);
    q->need = 1 + rng_below(&s->rng, q->n);
    q->acked = -1;
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
        q->target_mask |= 1u << perm[i];
        ids[i] = sim_nodes[perm[i]];
    }
    q->klen = (size_t)snprintf(q->key, sizeof(q->key), "k%d", k);
    uint32_t timeout = 50 + rng_below(&s->rng, 450);
    size_t before = coord_inflight(s->c);
    int rc;
    if (q->op == COORD_OP_GET) {
        if (rng_below(&s->rng, 2) == 0) {
            q->repair_wait = 1 + rng_below(&s->rng, 300);
        }
        struct coord_get_req g = {
            .key = q->key,
            .klen = q->klen,
            .targets = ids,
            .n_targets = q->n,
            .r = q->need,
            .timeout_ms = timeout,
            .repair_wait_ms = q->repair_wait,
            .cookie = (uint64_t)k,
        };
        rc = coord_start_get(s->c, &g, s->now, &q->id);
    } else if (q->op == COORD_OP_PUT) {
        int acked = -1;
        if (rng_below(&s->rng, 3) == 0) {
            acked = (int)rng_below(&s->rng, q->n);
        }
        struct coord_put_req p = {
            .key = q->key,
            .klen = q->klen,
            .object = O.ea.base,
            .olen = O.ea.len,
            .targets = ids,
            .n_targets = q->n,
            .acked = acked,
            .w = q->need,
            .timeout_ms = timeout,
            .cookie = (uint64_t)k,
        };
        rc = coord_start_put(s->c, &p, s->now, &q->id);
        if (acked >= 0) {
            q->acked = q->targets[acked];
        }
    } else {
        struct coord_update_req u = update_req(ids[0], (uint64_t)k);
        u.key = q->key;
        u.klen = q->klen;
        u.timeout_ms = timeout;
        rc = coord_start_update(s->c, &u, s->now, &q->id);
    }
    if (rc == RK_EBUSY) {
        /* every slot is in flight or lingering */
        assert_true(before + s->n_lingering >= SIM_CAP);
        assert_int_equal(n_actions(s->c), 0);
        s->busy++;
        dvv_fini(&q->merged);
        return -1;
    }
    assert_int_equal(rc, RK_OK);
    assert_true(before < SIM_CAP);
    q->start_ms = s->now;
    q->deadline_ms = s->now + timeout;
    if (q->acked >= 0) {
        q->answered_mask |= 1u << q->acked;
        q->ok_mask |= 1u << q->acked;
        q->successes = 1;
    }
    s->n_reqs++;
    sim_schedule(s, k);
    return k;
}

static void sim_cancel_one(struct sim *s)
{
    /* mostly recent requests, which are more likely still in flight */
    uint32_t span = s->n_reqs < 64 ? (uint32_t)s->n_reqs : 64;
    int k = s->n_reqs - 1 - (int)rng_below(&s->rng, span);
    struct sim_req *q = &s->reqs[k];
    size_t n = coord_cancel(s->c, (uint64_t)k);
    bool open = !q->cancelled && q->n_replies == 0; /* not lingering */
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
    rk_buf_init(&s->scratch);
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
            sim_check_actions(s, false);
            sim_after_event(s, -1);
        } else if (e >= 0 && s->evs[e].at_ms == t) {
            struct sim_ev ev = s->evs[e];
            s->evs[e] = s->evs[--s->n_evs];
            sim_deliver(s, &ev);
            sim_check_actions(s, false);
            sim_after_event(s, ev.req);
        } else {
            attempts++;
            if (s->n_reqs > 0 && rng_below(&s->rng, 100) < 5) {
                sim_cancel_one(s);
            } else if (sim_start(s) >= 0) {
                /* only a pre-acked put with W = 1 replies here */
                sim_check_actions(s, true);
                sim_after_event(s, -1);
            }
            next_start = s->now + rng_below(&s->rng, 7);
        }
    }
    /* C1 at the end: one reply for every request not cancelled. */
    for (int k = 0; k < s->n_reqs; k++) {
        assert_int_equal(s->reqs[k].n_replies, s->reqs[k].cancelled ? 0 : 1);
        dvv_fini(&s->reqs[k].merged);
    }
    assert_int_equal(coord_inflight(s->c), 0);
    assert_true(coord_next_deadline_ms(s->c) == COORD_NO_DEADLINE);
    struct coord_stats st = stats(s->c);
    assert_int_equal(st.started, (uint64_t)s->n_reqs);
    assert_int_equal(st.replied_ok, s->ok + s->notfound);
    assert_int_equal(st.noquorum_timeout, s->nq_timeout);
    assert_int_equal(st.noquorum_early, s->nq_early);
    assert_int_equal(st.replied_error, s->errors);
    assert_int_equal(st.cancelled, s->cancelled);
    assert_int_equal(st.busy, s->busy);
    assert_int_equal(st.read_repairs, s->repairs);
    assert_int_equal(st.bad_answers, s->bad);
    printf("seed %" PRIu64
           ": requests %d, ok %u, not found %u, "
           "noquorum timeout %u early %u, replica errors %u, cancelled %u, "
           "busy %u, lingered %u, repairs %u, bad answers %u, "
           "duplicates sent %u ignored %" PRIu64 ", late ignored %" PRIu64
           ", virtual time %" PRIu64 " ms\n",
           seed, s->n_reqs, s->ok, s->notfound, s->nq_timeout, s->nq_early,
           s->errors, s->cancelled, s->busy, s->lingered, s->repairs, s->bad,
           s->dups_sent, st.ignored_duplicate, st.ignored_unknown, s->now - T0);
    coord_destroy(s->c);
    rk_buf_fini(&s->scratch);
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
        /* writes */
        cmocka_unit_test(
            test_coord_put_sends_object_to_targets_and_applies_locally),
        cmocka_unit_test(test_coord_put_copies_the_object),
        cmocka_unit_test(test_coord_put_replies_once_after_second_ack),
        cmocka_unit_test(test_coord_put_noquorum_exactly_at_timeout),
        cmocka_unit_test(test_coord_success_at_the_deadline_is_too_late),
        cmocka_unit_test(test_coord_put_fails_early_when_quorum_impossible),
        cmocka_unit_test(test_coord_transport_failure_counts_against_quorum),
        cmocka_unit_test(test_coord_duplicate_replies_are_counted_once),
        cmocka_unit_test(
            test_coord_ignores_unknown_ids_strangers_and_wrong_types),
        cmocka_unit_test(test_coord_acked_put_with_w1_replies_at_start),
        cmocka_unit_test(test_coord_acked_put_counts_the_acked_target_once),
        cmocka_unit_test(test_coord_put_hint_for_reaches_only_its_target),
        cmocka_unit_test(test_coord_rejects_bad_requests),
        cmocka_unit_test(test_coord_table_full_is_busy),
        cmocka_unit_test(test_coord_req_ids_are_never_reused),
        cmocka_unit_test(test_coord_cancel_drops_requests_without_reply),
        cmocka_unit_test(test_coord_deadlines_fire_in_order),
        /* reads */
        cmocka_unit_test(
            test_coord_get_merges_concurrent_answers_into_siblings),
        cmocka_unit_test(test_coord_get_dominated_answer_adds_nothing),
        cmocka_unit_test(test_coord_get_duplicate_answer_is_not_merged),
        cmocka_unit_test(test_coord_get_mixes_not_found_and_found),
        cmocka_unit_test(test_coord_get_tombstone_answer_is_a_found_object),
        cmocka_unit_test(test_coord_get_timeout_reports_r),
        cmocka_unit_test(test_coord_get_bad_object_answer_counts_as_failure),
        /* read repair */
        cmocka_unit_test(
            test_coord_read_repair_sends_merged_object_to_stale_remote),
        cmocka_unit_test(test_coord_read_repair_of_self_is_a_local_put),
        cmocka_unit_test(test_coord_read_repair_skips_when_all_answers_equal),
        cmocka_unit_test(
            test_coord_read_repair_after_straggler_includes_its_sibling),
        cmocka_unit_test(
            test_coord_read_repair_sends_a_straggler_newer_version),
        cmocka_unit_test(
            test_coord_read_repair_linger_ends_by_tick_at_wait_deadline),
        cmocka_unit_test(test_coord_read_repair_skips_failed_targets),
        cmocka_unit_test(test_coord_read_repair_after_not_found_reply),
        cmocka_unit_test(test_coord_read_repair_none_after_noquorum),
        cmocka_unit_test(
            test_coord_lingering_read_ignores_cancel_and_replies_once),
        /* updates */
        cmocka_unit_test(test_coord_update_round_trip_remote),
        cmocka_unit_test(test_coord_update_round_trip_local),
        cmocka_unit_test(test_coord_update_sends_fallback_tombstone_with_hint),
        cmocka_unit_test(test_coord_update_passes_replica_error_through),
        cmocka_unit_test(
            test_coord_update_transport_failure_or_timeout_is_noquorum),
        /* faults */
        cmocka_unit_test(test_coord_survives_allocation_failures),
        cmocka_unit_test(test_coord_random_interleavings_keep_invariants),
    };
    return cmocka_run_group_tests(tests, objs_setup, objs_teardown);
}

/*
 * test_libringkv.c - libringkv's sans-IO parts (src/lib/internal.h):
 * replies parsed into the API's structures, the slot routing table from a
 * CLUSTER SLOTS reply, and the retry / backoff decisions.  Replies are
 * real RESP bytes run through proto/resp.h's reply parser.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

#include "cluster/slot.h"
#include "common/error.h"
#include "lib/internal.h"
#include "lib_test.h"

/* Redis 7's shape: [start, end, [host, port, id, []], replicas...] */
#define NODE(h, p, id) "*4\r\n$" h "\r\n:" p "\r\n$2\r\n" id "\r\n*0\r\n"

static void test_topo_three_ranges(void **state)
{
    (void)state;
    struct resp_value *v = lib_test_parse(
        "*3\r\n"
        "*4\r\n:0\r\n:5460\r\n" NODE("9\r\n127.0.0.1", "7001", "n1")
            NODE("9\r\n127.0.0.1", "7002",
                 "n2") "*4\r\n:5461\r\n:10922\r\n" NODE("9\r\n127.0.0.1",
                                                        "7002", "n2")
                NODE("9\r\n127.0.0.1", "7003",
                     "n3") "*3\r\n:10923\r\n:16383\r\n" NODE("0\r\n", "7003",
                                                             "n3"));
    struct rkl_topo t;
    char err[128] = "";
    assert_int_equal(rkl_topo_from_slots(&t, v, "10.0.0.9", err, sizeof(err)),
                     RINGKV_OK);
    assert_int_equal(t.n_ranges, 3);
    assert_int_equal(t.n_nodes, 4); /* 7003 under two names */
    const struct rkl_range *r = rkl_topo_route(&t, 0);
    assert_non_null(r);
    assert_int_equal(r->n, 2);
    assert_string_equal(t.nodes[r->nodes[0]].host, "127.0.0.1");
    assert_int_equal(t.nodes[r->nodes[0]].port, 7001);
    assert_int_equal(t.nodes[r->nodes[1]].port, 7002);
    r = rkl_topo_route(&t, slot_of_key("foo", 3)); /* 12182 */
    assert_int_equal(r->start, 10923);
    /* an empty host is the node asked */
    assert_string_equal(t.nodes[r->nodes[0]].host, "10.0.0.9");
    assert_int_equal(rkl_topo_route(&t, 5461)->start, 5461);
    assert_null(rkl_topo_route(&t, 16384));
    rkl_topo_fini(&t);
    resp_value_free(v);
}

static void test_topo_gaps_and_errors(void **state)
{
    (void)state;
    struct rkl_topo t;
    char err[128];
    /* a gap: unserved slots route nowhere */
    struct resp_value *v = lib_test_parse(
        "*1\r\n*3\r\n:100\r\n:200\r\n" NODE("1\r\nh", "1", "aa"));
    assert_int_equal(rkl_topo_from_slots(&t, v, NULL, err, sizeof(err)),
                     RINGKV_OK);
    assert_null(rkl_topo_route(&t, 99));
    assert_non_null(rkl_topo_route(&t, 200));
    assert_null(rkl_topo_route(&t, 201));
    rkl_topo_fini(&t);
    resp_value_free(v);

    static const char *const bad[] = {
        ":1\r\n",                                             /* not array */
        "*1\r\n*2\r\n:0\r\n:1\r\n",                           /* no node */
        "*1\r\n*3\r\n:5\r\n:4\r\n" NODE("1\r\nh", "1", "aa"), /* end<start */
        "*1\r\n*3\r\n:0\r\n:16384\r\n" NODE("1\r\nh", "1", "aa"),
        "*1\r\n*3\r\n:0\r\n:1\r\n" NODE("1\r\nh", "0", "aa"), /* port 0 */
        "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n",          /* no port */
        "*2\r\n*3\r\n:0\r\n:10\r\n" NODE(
            "1\r\nh", "1",
            "aa") "*3\r\n:10\r\n:20\r\n" NODE("1\r\nh", "2",
                                              "bb"), /* overlap */
        "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n" NODE("1\r\nh", "1", "aa"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = lib_test_parse(bad[i]);
        err[0] = '\0';
        assert_int_equal(rkl_topo_from_slots(&t, v, "x", err, sizeof(err)),
                         RINGKV_EPROTO);
        assert_non_null(strstr(err, "CLUSTER SLOTS"));
        assert_int_equal(t.n_nodes, 0);
        assert_null(t.nodes);
        resp_value_free(v);
    }
}

static void test_topo_single_and_addr(void **state)
{
    (void)state;
    struct rkl_topo t;
    assert_int_equal(rkl_topo_single(&t, "localhost", 7379), RINGKV_OK);
    assert_int_equal(rkl_topo_route(&t, 0)->nodes[0], 0);
    assert_int_equal(rkl_topo_route(&t, 16383)->nodes[0], 0);
    rkl_topo_fini(&t);

    struct rkl_addr a;
    assert_int_equal(rkl_addr_parse("127.0.0.1:7379", &a), RINGKV_OK);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 7379);
    assert_int_equal(rkl_addr_parse("[::1]:80", &a), RINGKV_OK);
    assert_string_equal(a.host, "::1");
    static const char *const bad[] = {"host",    "host:", ":1",      "h:0",
                                      "h:65536", "h:1x",  "[::1]80", "[]:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rkl_addr_parse(bad[i], &a), RINGKV_EINVAL);
    }
}

static void test_reply_values(void **state)
{
    (void)state;
    struct ringkv_value one;
    struct resp_value *v = lib_test_parse("$3\r\na b\r\n");
    assert_int_equal(rkl_value_from_reply(v, &one), RINGKV_OK);
    assert_int_equal(one.len, 3);
    assert_memory_equal(one.data, "a b", 4); /* NUL-terminated */
    ringkv_free(one.data);
    resp_value_free(v);

    struct ringkv_value *vals = NULL;
    v = lib_test_parse("*3\r\n$1\r\nx\r\n$-1\r\n$0\r\n\r\n");
    assert_int_equal(rkl_values_from_reply(v, 3, &vals), RINGKV_OK);
    assert_string_equal(vals[0].data, "x");
    assert_null(vals[1].data);
    assert_non_null(vals[2].data);
    assert_int_equal(vals[2].len, 0);
    ringkv_values_free(vals, 3);
    vals = NULL;
    assert_int_equal(rkl_values_from_reply(v, 2, &vals), RINGKV_EPROTO);
    assert_null(vals);
    resp_value_free(v);

    v = lib_test_parse(":1\r\n");
    assert_int_equal(rkl_value_from_reply(v, &one), RINGKV_EPROTO);
    resp_value_free(v);
}

static void test_reply_siblings(void **state)
{
    (void)state;
    struct ringkv_siblings *s = NULL;
    struct resp_value *v = lib_test_parse(
        "*2\r\n$6\r\nab01ff\r\n*2\r\n"
        "*3\r\n$3\r\nnew\r\n:7000\r\n:1700000000002\r\n"
        "*4\r\n_\r\n:6000\r\n:1700000000001\r\n$10\r\ntext/plain\r\n");
    assert_int_equal(rkl_siblings_from_reply(v, &s), RINGKV_OK);
    assert_string_equal(s->context, "ab01ff");
    assert_int_equal(s->context_len, 6);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->items[0].value.data, "new");
    assert_int_equal(s->items[0].hlc, 7000);
    assert_int_equal(s->items[0].unix_ms, 1700000000002LL);
    assert_null(s->items[1].value.data); /* a tombstone */
    ringkv_siblings_free(s);
    resp_value_free(v);

    v = lib_test_parse("*2\r\n$0\r\n\r\n*0\r\n"); /* a missing key */
    s = NULL;
    assert_int_equal(rkl_siblings_from_reply(v, &s), RINGKV_OK);
    assert_int_equal(s->n, 0);
    assert_string_equal(s->context, "");
    ringkv_siblings_free(s);
    resp_value_free(v);

    static const char *const bad[] = {
        "$-1\r\n",
        "*1\r\n$0\r\n\r\n",
        "*2\r\n:1\r\n*0\r\n",
        "*2\r\n$0\r\n\r\n*1\r\n*2\r\n$1\r\nx\r\n:1\r\n",
        "*2\r\n$0\r\n\r\n*1\r\n*3\r\n:1\r\n:1\r\n:1\r\n",
        "*2\r\n$0\r\n\r\n*1\r\n*3\r\n$1\r\nx\r\n$1\r\n1\r\n:1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = lib_test_parse(bad[i]);
        s = NULL;
        assert_int_equal(rkl_siblings_from_reply(v, &s), RINGKV_EPROTO);
        assert_null(s);
        resp_value_free(v);
    }
}

static void test_error_codes(void **state)
{
    (void)state;
    struct
    {
        const char *reply;
        int code;
    } cases[] = {
        {"-NOQUORUM reached 1/2 of 3\r\n", RINGKV_ENOQUORUM},
        {"-NOAUTH Authentication required.\r\n", RINGKV_EAUTH},
        {"-WRONGPASS invalid username-password pair\r\n", RINGKV_EAUTH},
        {"-ERR value is not an integer or out of range\r\n", RINGKV_ESERVER},
        {"-NOQUORUMX odd\r\n", RINGKV_ESERVER},
        {"-WRONGTYPE Operation\r\n", RINGKV_ESERVER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct resp_value *v = lib_test_parse(cases[i].reply);
        assert_int_equal(rkl_error_code(v), cases[i].code);
        resp_value_free(v);
    }
    assert_string_equal(ringkv_errname(RINGKV_ENOQUORUM), "RINGKV_ENOQUORUM");
    assert_string_equal(ringkv_strerror(RINGKV_ETIMEDOUT), "timed out");
    assert_string_equal(ringkv_strerror(-999), "unknown error");
    assert_string_equal(ringkv_errname(RINGKV_OK), "RINGKV_OK");
}

static const struct rkl_policy POLICY = {.max_attempts = 5,
                                         .backoff_base_ms = 10,
                                         .backoff_max_ms = 100};

static void test_retry_which_errors(void **state)
{
    (void)state;
    int ms;
    /* retryable errors on an idempotent call */
    assert_true(
        rkl_retry_decide(&POLICY, 1, RINGKV_EIO, true, true, 0, 5000, 0, &ms));
    assert_true(rkl_retry_decide(&POLICY, 1, RINGKV_ETIMEDOUT, true, true, 0,
                                 5000, 0, &ms));
    assert_true(rkl_retry_decide(&POLICY, 1, RINGKV_ENOQUORUM, true, true, 0,
                                 5000, 0, &ms));
    /* never: server errors, auth, protocol, bad input */
    int final[] = {RINGKV_ESERVER, RINGKV_EAUTH,  RINGKV_EPROTO,
                   RINGKV_EINVAL,  RINGKV_ENOMEM, RINGKV_ENOTFOUND};
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        assert_false(rkl_retry_decide(&POLICY, 1, final[i], false, true, 0,
                                      5000, 0, &ms));
    }
    /* INCR / PUT: a request that may have arrived is not repeated ... */
    assert_false(
        rkl_retry_decide(&POLICY, 1, RINGKV_EIO, true, false, 0, 5000, 0, &ms));
    assert_false(rkl_retry_decide(&POLICY, 1, RINGKV_ENOQUORUM, true, false, 0,
                                  5000, 0, &ms));
    /* ... unless the caller says so, or it never left */
    assert_true(rkl_retry_decide(&POLICY, 1, RINGKV_EIO, true, false,
                                 RINGKV_CALL_IDEMPOTENT, 5000, 0, &ms));
    assert_true(rkl_retry_decide(&POLICY, 1, RINGKV_EIO, false, false, 0, 5000,
                                 0, &ms));
    /* NO_RETRY, attempts and the deadline bound it */
    assert_false(rkl_retry_decide(&POLICY, 1, RINGKV_EIO, false, true,
                                  RINGKV_CALL_NO_RETRY, 5000, 0, &ms));
    assert_false(
        rkl_retry_decide(&POLICY, 5, RINGKV_EIO, true, true, 0, 5000, 0, &ms));
    assert_false(
        rkl_retry_decide(&POLICY, 1, RINGKV_EIO, true, true, 0, 0, 0, &ms));
    assert_false(rkl_retry_decide(&POLICY, 4, RINGKV_EIO, true, true, 0, 40,
                                  0xffffffffu, &ms)); /* sleep >= 40 */
}

static void test_retry_backoff(void **state)
{
    (void)state;
    int ms = -1;
    /* an unsent request is retried on another node at once */
    assert_true(rkl_retry_decide(&POLICY, 1, RINGKV_EIO, false, true, 0, 5000,
                                 12345, &ms));
    assert_int_equal(ms, 0);
    /* exponential steps 10, 20, 40, 80 (cap 100), equal jitter: half fixed */
    int step[] = {10, 20, 40, 80};
    for (int a = 1; a <= 4; a++) {
        int lo = 1 << 30, hi = -1;
        for (uint32_t r = 0; r < 1000; r++) {
            assert_true(rkl_retry_decide(&POLICY, a, RINGKV_ETIMEDOUT, true,
                                         true, 0, 5000, r * 2654435761u, &ms));
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        assert_int_equal(lo, step[a - 1] / 2);
        assert_int_equal(hi, step[a - 1]);
    }
    struct rkl_policy p = POLICY;
    p.max_attempts = 100;
    assert_true(rkl_retry_decide(&p, 30, RINGKV_EIO, true, true, 0, 5000,
                                 0xffffffffu, &ms));
    assert_true(ms <= 100 && ms >= 50); /* capped, no overflow */

    /* attempt budgets: half of what remains, at least 250 ms, all at the end */
    assert_int_equal(rkl_attempt_budget_ms(&POLICY, 1, 5000), 2500);
    assert_int_equal(rkl_attempt_budget_ms(&POLICY, 1, 300), 250);
    assert_int_equal(rkl_attempt_budget_ms(&POLICY, 2, 100), 100);
    assert_int_equal(rkl_attempt_budget_ms(&POLICY, 5, 5000), 5000);
    assert_int_equal(rkl_attempt_budget_ms(&POLICY, 1, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topo_three_ranges),
        cmocka_unit_test(test_topo_gaps_and_errors),
        cmocka_unit_test(test_topo_single_and_addr),
        cmocka_unit_test(test_reply_values),
        cmocka_unit_test(test_reply_siblings),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_retry_which_errors),
        cmocka_unit_test(test_retry_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

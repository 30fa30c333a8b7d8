/*
 * test_libringkv_route.c - libringkv's node choice (src/lib/route.c): seeds,
 * the topology installed from a CLUSTER SLOTS reply (or a server without
 * CLUSTER), which node each attempt goes to (down nodes last, rotating
 * with the attempt), the refresh order and when a refresh is due.
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

#define NODE(p) "*2\r\n$9\r\n127.0.0.1\r\n:" p "\r\n"

/* slots 0..8191 on 7001 then 7002; 8192..16383 on 7002 then 7003 */
static const char SLOTS[] = "*2\r\n*4\r\n:0\r\n:8191\r\n" NODE("7001")
    NODE("7002") "*4\r\n:8192\r\n:16383\r\n" NODE("7002") NODE("7003");

static void setup_route(struct rkl_route *r)
{
    const char *seeds[] = {"127.0.0.1:7002", "seed.example:9"};
    char err[128];
    assert_int_equal(
        rkl_route_init(r, seeds, 2, 10000, 1000, 42, err, sizeof(err)),
        RINGKV_OK);
    assert_int_equal(r->n_seeds, 2);
    assert_true(rkl_route_refresh_due(r, 0)); /* nothing read yet */
}

static void test_route_rejects_bad_seeds(void **state)
{
    (void)state;
    struct rkl_route r;
    const char *seeds[] = {"no-port"};
    char err[128] = "";
    assert_int_equal(rkl_route_init(&r, seeds, 1, 0, 0, 1, err, sizeof(err)),
                     RINGKV_EINVAL);
    assert_non_null(strstr(err, "no-port"));
    rkl_route_fini(&r);
    assert_int_equal(rkl_route_init(&r, seeds, 0, 0, 0, 1, err, sizeof(err)),
                     RINGKV_EINVAL);
    rkl_route_fini(&r);
}

static void test_route_before_topology_uses_seeds(void **state)
{
    (void)state;
    struct rkl_route r;
    setup_route(&r);
    assert_int_equal(rkl_route_pick(&r, 5, 1, 0), 0);
    assert_int_equal(rkl_route_pick(&r, 5, 2, 0), 1);
    assert_int_equal(rkl_route_pick(&r, 5, 3, 0), 0);
    rkl_route_fini(&r);
}

static void test_route_picks_slot_replicas_up_first(void **state)
{
    (void)state;
    struct rkl_route r;
    setup_route(&r);
    struct resp_value *v = lib_test_parse(SLOTS);
    char err[128];
    assert_int_equal(rkl_route_install(&r, 0, v, 1000, err, sizeof(err)),
                     RINGKV_OK);
    resp_value_free(v);
    assert_false(rkl_route_refresh_due(&r, 1000));
    assert_true(rkl_route_refresh_due(&r, 11000)); /* periodic */
    r.refresh_needed = false;
    /* 7002 is seed 0; 7001 and 7003 were appended */
    assert_int_equal(r.n_nodes, 4);
    assert_string_equal(r.nodes[2].name, "127.0.0.1:7001");
    assert_string_equal(r.nodes[3].name, "127.0.0.1:7003");
    /* slot 100: 7001, then 7002, rotating */
    assert_int_equal(rkl_route_pick(&r, 100, 1, 0), 2);
    assert_int_equal(rkl_route_pick(&r, 100, 2, 0), 0);
    assert_int_equal(rkl_route_pick(&r, 100, 3, 0), 2);
    /* 7001 refused a connection: 7002 only, until down_ms passed */
    rkl_route_node_down(&r, 2, 5000);
    assert_int_equal(rkl_route_pick(&r, 100, 1, 5500), 0);
    assert_int_equal(rkl_route_pick(&r, 100, 2, 5500), 0);
    assert_int_equal(rkl_route_pick(&r, 100, 1, 6000), 2);
    /* every replica down: tried anyway */
    rkl_route_node_down(&r, 0, 5000);
    assert_int_equal(rkl_route_pick(&r, 100, 1, 5500), 2);
    assert_int_equal(rkl_route_pick(&r, 100, 2, 5500), 0);

    /* refresh order: connected, then up, then down */
    size_t order[4];
    r.nodes[3].conn = &r; /* any non-NULL */
    assert_int_equal(rkl_route_refresh_order(&r, 5500, order), 4);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 1);
    assert_true((order[2] == 0 && order[3] == 2));
    r.nodes[3].conn = NULL;
    rkl_route_fini(&r);
}

static void test_route_install_errors_and_plain_servers(void **state)
{
    (void)state;
    struct rkl_route r;
    setup_route(&r);
    char err[128];
    struct resp_value *v =
        lib_test_parse("-NOAUTH Authentication required.\r\n");
    assert_int_equal(rkl_route_install(&r, 0, v, 0, err, sizeof(err)),
                     RINGKV_EAUTH);
    assert_non_null(strstr(err, "NOAUTH"));
    assert_true(r.refresh_needed);
    resp_value_free(v);
    v = lib_test_parse("*1\r\n:1\r\n");
    assert_int_equal(rkl_route_install(&r, 0, v, 0, err, sizeof(err)),
                     RINGKV_EPROTO);
    resp_value_free(v);
    /* a server without CLUSTER serves every slot itself */
    v = lib_test_parse("-ERR unknown command 'CLUSTER'\r\n");
    assert_int_equal(rkl_route_install(&r, 1, v, 0, err, sizeof(err)),
                     RINGKV_OK);
    resp_value_free(v);
    assert_int_equal(r.topo.n_nodes, 1);
    assert_int_equal(rkl_route_pick(&r, 16383, 1, 0), 1);
    rkl_route_fini(&r);
}

static void test_route_retry_asks_for_refresh(void **state)
{
    (void)state;
    struct rkl_route r;
    setup_route(&r);
    r.refresh_needed = false;
    struct rkl_policy p = {
        .max_attempts = 3, .backoff_base_ms = 10, .backoff_max_ms = 100};
    int ms = -1;
    assert_false(
        rkl_route_retry(&r, &p, 1, RINGKV_ESERVER, true, true, 0, 5000, &ms));
    assert_false(r.refresh_needed);
    assert_true(
        rkl_route_retry(&r, &p, 1, RINGKV_ENOQUORUM, true, true, 0, 5000, &ms));
    assert_false(r.refresh_needed); /* the node answered: topology fine */
    assert_true(
        rkl_route_retry(&r, &p, 1, RINGKV_EIO, true, true, 0, 5000, &ms));
    assert_true(r.refresh_needed);
    assert_true(ms >= 5 && ms <= 10);
    rkl_route_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_rejects_bad_seeds),
        cmocka_unit_test(test_route_before_topology_uses_seeds),
        cmocka_unit_test(test_route_picks_slot_replicas_up_first),
        cmocka_unit_test(test_route_install_errors_and_plain_servers),
        cmocka_unit_test(test_route_retry_asks_for_refresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_seeds.c - cluster/seeds: the seed list and its join schedule
 * (issue 17 item 1).
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

#include "cluster/seeds.h"
#include "common/error.h"

static void test_seeds_parse_lists_and_refuses_bad_items(void **state)
{
    (void)state;
    struct seeds sd;
    char err[200];
    assert_int_equal(seeds_parse(&sd, " a:1 , [::1]:7381,b.example:65535 ", err,
                                 sizeof(err)),
                     RK_OK);
    assert_int_equal(sd.n, 3);
    assert_string_equal(sd.s[0].host, "a");
    assert_int_equal(sd.s[0].port, 1);
    assert_string_equal(sd.s[1].host, "::1");
    assert_int_equal(sd.s[1].port, 7381);
    assert_string_equal(sd.s[2].host, "b.example");
    assert_false(sd.done);
    assert_int_equal(seeds_parse(&sd, "", err, sizeof(err)), RK_OK);
    assert_true(sd.done);
    const char *bad[] = {"a", "a:", ":1", "a:0", "a:65536", "a:1x", "a:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(seeds_parse(&sd, bad[i], err, sizeof(err)), RK_EINVAL);
        assert_true(strstr(err, "seed") != NULL);
    }
    char many[400] = "";
    for (int i = 0; i < SEEDS_MAX + 1; i++) {
        strcat(many, "h:1,");
    }
    assert_int_equal(seeds_parse(&sd, many, err, sizeof(err)), RK_EINVAL);
    assert_true(strstr(err, "more than") != NULL);
}

static void test_seeds_a_seed_joins_nobody(void **state)
{
    (void)state;
    struct seeds sd;
    char err[200];
    assert_int_equal(
        seeds_parse(&sd, "127.0.0.1:7381,127.0.0.1:7391", err, sizeof(err)),
        RK_OK);
    assert_true(seeds_drop_self(&sd, "localhost", 7381));
    assert_true(sd.done);
    assert_null(seeds_due(&sd, 0));
    /* another node of the same list joins the seeds */
    assert_int_equal(
        seeds_parse(&sd, "127.0.0.1:7381,127.0.0.1:7391", err, sizeof(err)),
        RK_OK);
    assert_false(seeds_drop_self(&sd, "127.0.0.1", 7401));
    assert_int_equal(sd.n, 2);
    assert_false(sd.done);
}

static void test_seeds_rounds_back_off_and_stop_when_joined(void **state)
{
    (void)state;
    struct seeds sd;
    char err[200];
    assert_int_equal(seeds_parse(&sd, "a:1,b:2", err, sizeof(err)), RK_OK);
    const struct seed *s = seeds_due(&sd, 100);
    assert_non_null(s);
    assert_string_equal(s->host, "a");
    assert_null(seeds_due(&sd, 100)); /* one join at a time */
    seeds_result(&sd, false, 200);
    s = seeds_due(&sd, 200); /* the next seed of the round at once */
    assert_non_null(s);
    assert_string_equal(s->host, "b");
    seeds_result(&sd, false, 300);
    /* the round is over: wait 1 s, then 2 s, 4 s ... up to 30 s */
    uint64_t now = 300;
    uint32_t want = SEEDS_BACKOFF_MIN_MS;
    for (int round = 0; round < 8; round++) {
        assert_null(seeds_due(&sd, now + want - 1));
        now += want;
        assert_non_null(seeds_due(&sd, now));
        seeds_result(&sd, false, now);
        assert_non_null(seeds_due(&sd, now));
        seeds_result(&sd, false, now);
        want =
            want * 2 > SEEDS_BACKOFF_MAX_MS ? SEEDS_BACKOFF_MAX_MS : want * 2;
    }
    now += want;
    assert_non_null(seeds_due(&sd, now));
    seeds_result(&sd, true, now);
    assert_true(sd.done);
    assert_null(seeds_due(&sd, now + 1000000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_parse_lists_and_refuses_bad_items),
        cmocka_unit_test(test_seeds_a_seed_joins_nobody),
        cmocka_unit_test(test_seeds_rounds_back_off_and_stop_when_joined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

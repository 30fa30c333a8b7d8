/*
 * test_slotmap.c - the ring as Redis Cluster clients see it
 * (src/cluster/slotmap.h, issue 13 item 2): each partition's nodes are
 * its preference list's first min(N, M), the primary the first healthy
 * one, and CLUSTER SLOTS ranges join adjacent partitions with equal lists.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cluster/ring.h"
#include "cluster/slotmap.h"
#include "common/error.h"

#define MAX_M 8

static const char *const g_ids[MAX_M] = {"n0", "n1", "n2", "n3",
                                         "n4", "n5", "n6", "n7"};

/* health by id: "nK" -> g_health[K] */
static enum slotmap_health g_health[MAX_M];

static enum slotmap_health health_cb(void *data, const char *id)
{
    (void)data;
    return g_health[id[1] - '0'];
}

static struct ring *make_ring(uint32_t q, uint32_t n, size_t m)
{
    struct ring *r = NULL;
    assert_int_equal(ring_create(q, n, g_ids, m, NULL, &r), RK_OK);
    return r;
}

static struct slotmap *make_map(const struct ring *r)
{
    struct slotmap *sm = NULL;
    assert_int_equal(slotmap_create(r, health_cb, NULL, &sm), RK_OK);
    return sm;
}

/* Every partition lists its preference list's first min(N, M) members,
 * reordered only by moving the primary to the front. */
static void check_lists(const struct ring *r, const struct slotmap *sm)
{
    size_t w = slotmap_width(sm);
    for (uint32_t p = 0; p < ring_size(r); p++) {
        size_t pl[MAX_M];
        assert_int_equal(ring_preflist(r, p, pl, w), w);
        const size_t *l = slotmap_nodes(sm, p);
        /* the primary: the first of the best health */
        size_t best = 0;
        for (size_t i = 1; i < w; i++) {
            if (g_health[pl[i]] < g_health[pl[best]]) {
                best = i;
            }
        }
        assert_int_equal(l[0], pl[best]);
        for (size_t i = 0, j = 1; i < w; i++) {
            if (i != best) {
                assert_int_equal(l[j++], pl[i]);
            }
        }
    }
}

static void test_slotmap_lists_preference_lists_when_all_up(void **state)
{
    (void)state;
    memset(g_health, 0, sizeof(g_health));
    struct ring *r = make_ring(16, 3, 5);
    struct slotmap *sm = make_map(r);
    assert_int_equal(slotmap_partitions(sm), 16);
    assert_int_equal(slotmap_width(sm), 3);
    check_lists(r, sm);
    for (uint32_t p = 0; p < 16; p++) {
        assert_int_equal(slotmap_nodes(sm, p)[0], ring_owner(r, p));
    }
    slotmap_destroy(sm);
    ring_destroy(r);
}

/* A down member is primary of nothing while another replica is not down,
 * and a suspected one only when no replica is up (Redis failover). */
static void test_slotmap_moves_primary_off_failed_nodes(void **state)
{
    (void)state;
    struct ring *r = make_ring(16, 3, 5);
    for (size_t down = 0; down < 5; down++) {
        memset(g_health, 0, sizeof(g_health));
        g_health[down] = SLOTMAP_FAIL;
        g_health[(down + 1) % 5] = SLOTMAP_PFAIL;
        struct slotmap *sm = make_map(r);
        check_lists(r, sm);
        assert_int_equal(slotmap_health(sm, down), SLOTMAP_FAIL);
        for (uint32_t p = 0; p < 16; p++) {
            assert_int_not_equal(slotmap_nodes(sm, p)[0], down);
            assert_int_not_equal(slotmap_nodes(sm, p)[0], (down + 1) % 5);
        }
        slotmap_destroy(sm);
    }
    /* every replica down: the preference list's order stays */
    for (size_t i = 0; i < MAX_M; i++) {
        g_health[i] = SLOTMAP_FAIL;
    }
    struct slotmap *sm = make_map(r);
    for (uint32_t p = 0; p < 16; p++) {
        assert_int_equal(slotmap_nodes(sm, p)[0], ring_owner(r, p));
    }
    slotmap_destroy(sm);
    ring_destroy(r);
}

/* Ranges: [p, range_end(p)) lists one set of nodes, the next range
 * another; they tile the partitions. */
static void test_slotmap_ranges_join_equal_neighbours(void **state)
{
    (void)state;
    memset(g_health, 0, sizeof(g_health));
    static const struct
    {
        uint32_t q, n;
        size_t m;
    } cases[] = {{1, 3, 1},  {64, 3, 1}, {64, 3, 2},
                 {64, 3, 3}, {64, 2, 5}, {1024, 3, 8}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct ring *r = make_ring(cases[c].q, cases[c].n, cases[c].m);
        struct slotmap *sm = make_map(r);
        size_t want_w = cases[c].n < cases[c].m ? cases[c].n : cases[c].m;
        assert_int_equal(slotmap_width(sm), want_w);
        size_t ranges = 0;
        for (uint32_t p = 0; p < cases[c].q;) {
            uint32_t e = slotmap_range_end(sm, p);
            assert_true(e > p && e <= cases[c].q);
            for (uint32_t i = p; i < e; i++) {
                assert_true(slotmap_same_nodes(sm, p, i));
            }
            if (e < cases[c].q) {
                assert_false(slotmap_same_nodes(sm, p, e));
            }
            ranges++;
            p = e;
        }
        if (cases[c].m == 1) {
            assert_int_equal(ranges, 1); /* all slots on one node */
        }
        printf("# Q=%u N=%u M=%zu: %zu CLUSTER SLOTS ranges\n", cases[c].q,
               cases[c].n, cases[c].m, ranges);
        slotmap_destroy(sm);
        ring_destroy(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slotmap_lists_preference_lists_when_all_up),
        cmocka_unit_test(test_slotmap_moves_primary_off_failed_nodes),
        cmocka_unit_test(test_slotmap_ranges_join_equal_neighbours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

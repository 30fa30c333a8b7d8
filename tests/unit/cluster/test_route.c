/*
 * test_route.c - cluster/route: targets with sloppy quorum and fallbacks,
 * the coordinating replica, and the N/R/W clamps (issue 11 item 1; these
 * decisions were untested inside src/server/cluster.c before).
 *
 * Random cases come from fixed seeds, printed on failure.
 */
/* cmocka.h needs these four first */
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
#include "cluster/rng.h"
#include "cluster/route.h"
#include "common/error.h"

#define MAX_IDS 16

static char g_store[MAX_IDS][16];
static const char *g_ids[MAX_IDS];
static bool g_down[MAX_IDS];
static bool g_degraded[MAX_IDS]; /* storage read-only (issue 12) */

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_IDS; i++) {
        snprintf(g_store[i], sizeof(g_store[i]), "node-%02d", i);
        g_ids[i] = g_store[i];
    }
    return 0;
}

static bool is_up(void *data, const char *id)
{
    (void)data;
    int i = 0;
    if (sscanf(id, "node-%d", &i) != 1 || i < 0 || i >= MAX_IDS) {
        return false;
    }
    return !g_down[i];
}

static bool is_degraded(void *data, const char *id)
{
    (void)data;
    int i = 0;
    if (sscanf(id, "node-%d", &i) != 1 || i < 0 || i >= MAX_IDS) {
        return false;
    }
    return g_degraded[i];
}

static struct ring *make_ring(uint32_t q, uint32_t n, size_t m)
{
    struct ring *r = NULL;
    assert_int_equal(ring_create(q, n, g_ids, m, NULL, &r), RK_OK);
    memset(g_down, 0, sizeof(g_down));
    memset(g_degraded, 0, sizeof(g_degraded));
    return r;
}

static int index_of(const char *id)
{
    int i = -1;
    assert_int_equal(sscanf(id, "node-%d", &i), 1);
    return i;
}

static struct route_view view(const struct ring *r, const char *self, bool s)
{
    return (struct route_view){.ring = r,
                               .self = self,
                               .sloppy = s,
                               .is_up = is_up,
                               .is_degraded = is_degraded,
                               .data = NULL};
}

/* The first n members of key's preference list (the primaries). */
static size_t primaries(const struct ring *r,
                        const char *key,
                        size_t n,
                        const char **out,
                        const char **all,
                        size_t *n_all)
{
    size_t idx[ROUTE_MAX_TARGETS];
    uint32_t p = ring_partition_of_key(r, key, strlen(key));
    size_t m = ring_preflist(r, p, idx, ROUTE_MAX_TARGETS);
    for (size_t i = 0; i < m; i++) {
        all[i] = ring_member_id(r, idx[i], NULL);
        if (i < n) {
            out[i] = all[i];
        }
    }
    *n_all = m;
    return n < m ? n : m;
}

static void test_route_all_up_targets_are_the_primaries(void **state)
{
    (void)state;
    struct ring *r = make_ring(64, 3, 5);
    struct route_view v = view(r, "node-00", true);
    for (int k = 0; k < 200; k++) {
        char key[32];
        snprintf(key, sizeof(key), "key-%d", k);
        const char *p[ROUTE_MAX_TARGETS], *all[ROUTE_MAX_TARGETS];
        size_t n_all;
        size_t np = primaries(r, key, 3, p, all, &n_all);
        struct route_targets t;
        route_targets(&v, key, strlen(key), 3, &t);
        assert_int_equal(t.n, np);
        assert_int_equal(t.n_down, 0);
        for (size_t i = 0; i < t.n; i++) {
            assert_string_equal(t.id[i], p[i]);
            assert_null(t.hint_for[i]);
        }
    }
    ring_destroy(r);
}

static void test_route_down_primary_replaced_by_next_fallback(void **state)
{
    (void)state;
    struct ring *r = make_ring(64, 3, 5);
    const char *key = "user:42";
    const char *p[ROUTE_MAX_TARGETS], *all[ROUTE_MAX_TARGETS];
    size_t n_all;
    primaries(r, key, 3, p, all, &n_all);
    assert_int_equal(n_all, 5);
    int down = 0;
    sscanf(p[1], "node-%d", &down);
    g_down[down] = true;
    const char *self = all[4]; /* a non-replica coordinator */
    struct route_view v = view(r, self, true);
    struct route_targets t;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.id[0], p[0]);
    assert_null(t.hint_for[0]);
    assert_string_equal(t.id[1], all[3]); /* first fallback */
    assert_string_equal(t.hint_for[1], p[1]);
    assert_string_equal(t.id[2], p[2]);
    assert_int_equal(t.n_down, 0);

    /* the first fallback down as well: the next one stands in */
    int fb = 0;
    sscanf(all[3], "node-%d", &fb);
    g_down[fb] = true;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_string_equal(t.id[1], all[4]);
    assert_string_equal(t.hint_for[1], p[1]);

    /* without sloppy quorum the down primary stays and is listed down */
    v.sloppy = false;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_string_equal(t.id[1], p[1]);
    assert_null(t.hint_for[1]);
    assert_int_equal(t.n_down, 1);
    assert_string_equal(t.down[0], p[1]);
    ring_destroy(r);
}

static void test_route_no_fallback_left_lists_the_primary_down(void **state)
{
    (void)state;
    struct ring *r = make_ring(64, 3, 3); /* M == N: no fallbacks */
    g_down[1] = true;
    struct route_view v = view(r, "node-00", true);
    struct route_targets t;
    route_targets(&v, "k", 1, 3, &t);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.n_down, 1);
    assert_string_equal(t.down[0], "node-01");
    bool found = false;
    for (size_t i = 0; i < t.n; i++) {
        assert_null(t.hint_for[i]);
        found = found || strcmp(t.id[i], "node-01") == 0;
    }
    assert_true(found);
    ring_destroy(r);
}

static void test_route_self_counts_up_whatever_liveness_says(void **state)
{
    (void)state;
    struct ring *r = make_ring(64, 3, 3);
    for (int i = 0; i < 3; i++) {
        g_down[i] = true;
    }
    struct route_view v = view(r, "node-02", true);
    struct route_targets t;
    route_targets(&v, "k", 1, 3, &t);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.n_down, 2);
    size_t self_at = t.n;
    for (size_t i = 0; i < t.n; i++) {
        if (strcmp(t.id[i], "node-02") == 0) {
            self_at = i;
        }
    }
    assert_true(self_at < t.n);
    assert_int_equal(route_pick_coordinator(&v, &t), self_at);
    ring_destroy(r);
}

static void test_route_no_ring_no_targets(void **state)
{
    (void)state;
    struct route_view v = view(NULL, "node-00", true);
    struct route_targets t;
    t.n = 7;
    route_targets(&v, "k", 1, 3, &t);
    assert_int_equal(t.n, 0);
    assert_int_equal(t.n_down, 0);
}

static void test_route_coordinator_choice(void **state)
{
    (void)state;
    struct ring *r = make_ring(64, 3, 5);
    const char *key = "order:7";
    const char *p[ROUTE_MAX_TARGETS], *all[ROUTE_MAX_TARGETS];
    size_t n_all;
    primaries(r, key, 3, p, all, &n_all);
    struct route_targets t;
    /* self a primary: self, wherever it is in the list */
    struct route_view v = view(r, p[2], true);
    route_targets(&v, key, strlen(key), 3, &t);
    assert_string_equal(t.id[route_pick_coordinator(&v, &t)], p[2]);
    /* self not a replica: the first primary that is up */
    v = view(r, all[4], true);
    int d0 = 0;
    sscanf(p[0], "node-%d", &d0);
    g_down[d0] = true;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_string_equal(t.id[route_pick_coordinator(&v, &t)], p[1]);
    /* every primary down: the first fallback */
    for (int i = 0; i < 3; i++) {
        int d = 0;
        sscanf(p[i], "node-%d", &d);
        g_down[d] = true;
    }
    route_targets(&v, key, strlen(key), 3, &t);
    size_t x = route_pick_coordinator(&v, &t);
    assert_non_null(t.hint_for[x]);
    assert_string_equal(t.hint_for[x], p[0]);
    ring_destroy(r);
}

/*
 * Issue 12 item 3: a degraded node (read-only storage) is down for writes
 * only: a fallback takes a hint for it, and reads still ask it.
 */
static void test_route_degraded_node_is_down_for_writes_only(void **state)
{
    (void)state;
    struct ring *r = make_ring(64, 3, 5);
    const char *key = "user:42";
    const char *p[ROUTE_MAX_TARGETS], *all[ROUTE_MAX_TARGETS];
    size_t n_all;
    primaries(r, key, 3, p, all, &n_all);
    g_degraded[index_of(p[1])] = true;
    struct route_view v = view(r, p[0], true);
    struct route_targets t;
    /* a read: the degraded primary is asked */
    route_targets(&v, key, strlen(key), 3, &t);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(t.id[i], p[i]);
        assert_null(t.hint_for[i]);
    }
    /* a write: the first fallback stands in for it, with a hint */
    v.write = true;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.id[0], p[0]);
    assert_string_equal(t.id[1], all[3]);
    assert_string_equal(t.hint_for[1], p[1]);
    assert_string_equal(t.id[2], p[2]);
    assert_int_equal(t.n_down, 0);
    /* a degraded fallback is skipped like a down one */
    g_degraded[index_of(all[3])] = true;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_string_equal(t.id[1], all[4]);
    assert_string_equal(t.hint_for[1], p[1]);
    /* no fallback left: listed down (the coordinator keeps the hint) */
    g_down[index_of(all[4])] = true;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_string_equal(t.id[1], p[1]);
    assert_null(t.hint_for[1]);
    assert_int_equal(t.n_down, 1);
    assert_string_equal(t.down[0], p[1]);
    /* the coordinating replica of that write is a healthy primary */
    size_t x = route_pick_coordinator(&v, &t);
    assert_string_not_equal(t.id[x], p[1]);
    assert_null(t.hint_for[x]);
    ring_destroy(r);
}

/*
 * Issue 12 item 3: a degraded coordinator still serves writes: its own
 * copy goes to a fallback (or is listed down), and the UPDATE goes to a
 * healthy primary; without storage trouble it keeps coordinating itself.
 */
static void test_route_degraded_self_hands_the_update_to_a_healthy_replica(
    void **state)
{
    (void)state;
    /* M == N: no fallback, self is listed down */
    struct ring *r = make_ring(64, 3, 3);
    struct route_view v = view(r, "node-00", true);
    v.write = true;
    struct route_targets t;
    route_targets(&v, "k", 1, 3, &t);
    assert_string_equal(t.id[route_pick_coordinator(&v, &t)], "node-00");
    g_degraded[0] = true;
    route_targets(&v, "k", 1, 3, &t);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.n_down, 1);
    assert_string_equal(t.down[0], "node-00");
    size_t x = route_pick_coordinator(&v, &t);
    assert_string_not_equal(t.id[x], "node-00");
    assert_null(t.hint_for[x]);
    /* a read still counts self */
    v.write = false;
    route_targets(&v, "k", 1, 3, &t);
    assert_int_equal(t.n_down, 0);
    ring_destroy(r);

    /* M > N and self a primary: a fallback takes self's hint */
    r = make_ring(64, 3, 5);
    const char *key = "order:7";
    const char *p[ROUTE_MAX_TARGETS], *all[ROUTE_MAX_TARGETS];
    size_t n_all;
    primaries(r, key, 3, p, all, &n_all);
    v = view(r, p[0], true);
    v.write = true;
    g_degraded[index_of(p[0])] = true;
    route_targets(&v, key, strlen(key), 3, &t);
    assert_string_equal(t.id[0], all[3]);
    assert_string_equal(t.hint_for[0], p[0]);
    assert_int_equal(t.n_down, 0);
    x = route_pick_coordinator(&v, &t);
    assert_string_equal(t.id[x], p[1]);
    ring_destroy(r);
}

/* Random liveness: every structural invariant of route_targets. */
static void test_route_random_liveness_invariants(void **state)
{
    (void)state;
    struct rk_rng rng;
    uint64_t seed = 20261206;
    rk_rng_seed(&rng, seed);
    for (int round = 0; round < 3000; round++) {
        size_t m = 1 + (size_t)rk_rng_below(&rng, MAX_IDS);
        uint32_t n = 1 + (uint32_t)rk_rng_below(&rng, 5);
        struct ring *r = make_ring(64, n, m);
        for (size_t i = 0; i < m; i++) {
            g_down[i] = rk_rng_below(&rng, 3) == 0;
        }
        bool sloppy = rk_rng_below(&rng, 2) == 0;
        const char *self = g_ids[rk_rng_below(&rng, m)];
        struct route_view v = view(r, self, sloppy);
        char key[32];
        snprintf(key, sizeof(key), "k%d", round);
        const char *p[ROUTE_MAX_TARGETS], *all[ROUTE_MAX_TARGETS];
        size_t n_all;
        size_t np = primaries(r, key, n, p, all, &n_all);
        struct route_targets t;
        route_targets(&v, key, strlen(key), n, &t);
        if (t.n != np) {
            fail_msg("seed %llu round %d: %zu targets, want %zu",
                     (unsigned long long)seed, round, t.n, np);
        }
        size_t hinted = 0;
        for (size_t i = 0; i < t.n; i++) {
            for (size_t j = 0; j < i; j++) {
                assert_true(strcmp(t.id[i], t.id[j]) != 0);
            }
            bool up = strcmp(t.id[i], self) == 0 || is_up(NULL, t.id[i]);
            if (t.hint_for[i]) {
                hinted++;
                assert_true(sloppy);
                assert_true(up);
                assert_string_equal(t.hint_for[i], p[i]);
                assert_false(is_up(NULL, p[i]) || strcmp(p[i], self) == 0);
            } else {
                assert_string_equal(t.id[i], p[i]);
            }
        }
        assert_true(hinted + t.n_down <= t.n);
        for (size_t d = 0; d < t.n_down; d++) {
            assert_false(is_up(NULL, t.down[d]));
        }
        if (t.n) {
            size_t x = route_pick_coordinator(&v, &t);
            assert_true(x < t.n);
        }
        ring_destroy(r);
    }
}

static void test_route_clamp_and_request_overrides(void **state)
{
    (void)state;
    struct route_quorum cfg = {3, 2, 2};
    struct route_quorum e = route_clamp(cfg, 1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.r, 1);
    assert_int_equal(e.w, 1);
    e = route_clamp(cfg, 2);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.r, 2);
    e = route_clamp(cfg, 5);
    assert_int_equal(e.n, 3);
    assert_int_equal(e.r, 2);
    assert_int_equal(e.w, 2);
    e = route_clamp((struct route_quorum){100, 100, 1}, 1000);
    assert_int_equal(e.n, ROUTE_MAX_TARGETS);
    assert_int_equal(e.r, ROUTE_MAX_TARGETS);
    assert_int_equal(e.w, 1);
    e = route_clamp(cfg, 0);
    assert_int_equal(e.n, 1);

    struct route_quorum eff = {3, 2, 2};
    struct route_quorum q = route_request(eff, (struct route_quorum){0, 0, 0});
    assert_int_equal(q.n, 3);
    assert_int_equal(q.r, 2);
    assert_int_equal(q.w, 2);
    q = route_request(eff, (struct route_quorum){1, 0, 0}); /* n lowers */
    assert_int_equal(q.n, 1);
    assert_int_equal(q.r, 1);
    assert_int_equal(q.w, 1);
    q = route_request(eff, (struct route_quorum){5, 3, 1}); /* n never grows */
    assert_int_equal(q.n, 3);
    assert_int_equal(q.r, 3);
    assert_int_equal(q.w, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_all_up_targets_are_the_primaries),
        cmocka_unit_test(test_route_down_primary_replaced_by_next_fallback),
        cmocka_unit_test(test_route_no_fallback_left_lists_the_primary_down),
        cmocka_unit_test(test_route_self_counts_up_whatever_liveness_says),
        cmocka_unit_test(test_route_no_ring_no_targets),
        cmocka_unit_test(test_route_coordinator_choice),
        cmocka_unit_test(test_route_degraded_node_is_down_for_writes_only),
        cmocka_unit_test(
            test_route_degraded_self_hands_the_update_to_a_healthy_replica),
        cmocka_unit_test(test_route_random_liveness_invariants),
        cmocka_unit_test(test_route_clamp_and_request_overrides),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}

/*
 * test_simnet.c - tests/sim/simnet: the one simulated network, clock and
 * event queue of the simulator and the cluster unit tests.  Events run
 * by time, then by insertion; delays stay in their range; loss and
 * duplication happen at about their configured rates; a blocked link
 * drops one direction only and not what is already in flight; a paused
 * endpoint's events wait and run in order when it resumes; a down
 * endpoint's old events never run; the same seed gives the same trace
 * (TESTING.md B3 I8).  Exact virtual times throughout (STYLE.md 1.7).
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
#include <string.h>

#include "../../sim/simnet.h"
#include "common/error.h"

/* What the callbacks saw, in order. */
struct seen
{
    struct simnet *net;
    struct
    {
        uint64_t at;
        char what; /* 'm' message, 't' tick, 'u' user event */
        int ep, from;
        uint64_t v; /* message: its first byte; user: a */
    } log[20000];
    size_t n;
    bool echo; /* recv answers each message (ping-pong) */
};

static void note(struct seen *s, char what, int ep, int from, uint64_t v)
{
    assert_true(s->n < sizeof(s->log) / sizeof(s->log[0]));
    s->log[s->n].at = simnet_now(s->net);
    s->log[s->n].what = what;
    s->log[s->n].ep = ep;
    s->log[s->n].from = from;
    s->log[s->n].v = v;
    s->n++;
}

static void on_recv(void *data, int to, int from, const void *f, size_t len)
{
    struct seen *s = data;
    assert_true(len >= 1);
    unsigned char b = ((const unsigned char *)f)[0];
    note(s, 'm', to, from, b);
    if (s->echo && b < 200) {
        unsigned char next = (unsigned char)(b + 1);
        assert_int_equal(simnet_send(s->net, to, from, &next, 1), RK_OK);
    }
}

static void on_tick(void *data, int ep)
{
    note(data, 't', ep, -1, 0);
}

static void on_user(void *data, int type, int ep, uint64_t a, uint64_t b)
{
    (void)b;
    assert_true(type >= SIMNET_EV_USER);
    note(data, 'u', ep, -1, a);
}

static struct seen *setup(uint64_t seed, size_t n)
{
    static struct seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(simnet_create(seed, n, &s.net), RK_OK);
    for (size_t i = 0; i < n; i++) {
        simnet_endpoint(s.net, (int)i, on_recv, on_tick, &s);
    }
    simnet_on_event(s.net, on_user, &s);
    return &s;
}

static void send_byte(struct simnet *net, int from, int to, unsigned char b)
{
    assert_int_equal(simnet_send(net, from, to, &b, 1), RK_OK);
}

static void test_simnet_runs_events_by_time_then_insertion(void **state)
{
    (void)state;
    struct seen *s = setup(1, 3);
    const uint64_t at[] = {5, 1, 5, 3, 1, 0};
    for (uint64_t k = 0; k < 6; k++) {
        assert_int_equal(
            simnet_schedule(s->net, at[k], SIMNET_EV_USER, -1, k, 0), RK_OK);
    }
    /* every link 1 ms: two messages sent at 0 arrive at 1, in send order,
     * after the user events queued at 1 before them */
    send_byte(s->net, 0, 1, 10);
    send_byte(s->net, 2, 1, 11);
    assert_int_equal(simnet_arm(s->net, 2, 3), RK_OK);
    assert_int_equal(simnet_arm(s->net, 2, 1), RK_OK); /* replaces 3 */
    assert_int_equal(simnet_timer(s->net, 2), 1);
    assert_int_equal(simnet_next_at(s->net), 0);
    assert_int_equal(simnet_run(s->net, 10, SIZE_MAX), 9);
    const struct
    {
        uint64_t at;
        char what;
        uint64_t v;
    } want[] = {{0, 'u', 5},  {1, 'u', 1},  {1, 'u', 4},
                {1, 'm', 10}, {1, 'm', 11}, {1, 't', 0},
                {3, 'u', 3},  {5, 'u', 0},  {5, 'u', 2}};
    assert_int_equal(s->n, 9);
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(s->log[i].at, want[i].at);
        assert_int_equal(s->log[i].what, want[i].what);
        assert_int_equal(s->log[i].v, want[i].v);
    }
    assert_int_equal(s->log[3].from, 0);
    assert_int_equal(s->log[4].from, 2);
    assert_int_equal(simnet_timer(s->net, 2), UINT64_MAX); /* fired */
    assert_int_equal(simnet_now(s->net), 10); /* nothing due: the clock */
    assert_false(simnet_step(s->net, 20));    /* moves to the bound */
    assert_int_equal(simnet_now(s->net), 20);
    /* a time in the past runs now; max_events bounds a run */
    assert_int_equal(simnet_schedule(s->net, 4, SIMNET_EV_USER, -1, 7, 0),
                     RK_OK);
    assert_int_equal(simnet_schedule(s->net, 4, SIMNET_EV_USER, -1, 8, 0),
                     RK_OK);
    assert_int_equal(simnet_run(s->net, 100, 1), 1);
    assert_int_equal(s->log[9].at, 20);
    assert_int_equal(s->log[9].v, 7);
    assert_int_equal(simnet_stats(s->net).events, 10);
    simnet_destroy(s->net);
}

static void test_simnet_delays_loss_and_duplication_follow_the_link(
    void **state)
{
    (void)state;
    struct seen *s = setup(42, 2);
    const struct simnet_link l = {
        .delay_min_ms = 10, .delay_max_ms = 50, .loss_pct = 20, .dup_pct = 10};
    simnet_set_link(s->net, SIMNET_ALL, SIMNET_ALL, &l);
    assert_int_equal(simnet_link(s->net, 1, 0)->loss_pct, 20);
    const int n = 10000;
    for (int i = 0; i < n; i++) {
        send_byte(s->net, 0, 1, 1);
    }
    (void)simnet_run(s->net, UINT64_MAX - 1, SIZE_MAX);
    struct simnet_stats st = simnet_stats(s->net);
    printf("# %d sent at 20%% loss, 10%% duplication: %" PRIu64
           " dropped, %" PRIu64 " duplicated, %" PRIu64 " delivered\n",
           n, st.dropped, st.duplicated, st.delivered);
    assert_int_equal(st.sent, (uint64_t)n);
    assert_true(st.dropped >= 1800 && st.dropped <= 2200);
    assert_true(st.duplicated >= 650 && st.duplicated <= 950);
    assert_int_equal(st.delivered, n - st.dropped + st.duplicated);
    assert_int_equal(s->n, st.delivered);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < s->n; i++) {
        lo = s->log[i].at < lo ? s->log[i].at : lo;
        hi = s->log[i].at > hi ? s->log[i].at : hi;
    }
    assert_int_equal(lo, 10); /* sent at 0: arrivals cover [10, 50] */
    assert_int_equal(hi, 50);
    simnet_destroy(s->net);
}

static void test_simnet_one_way_block_drops_one_direction(void **state)
{
    (void)state;
    struct seen *s = setup(3, 2);
    send_byte(s->net, 0, 1, 1); /* in flight before the cut */
    simnet_block(s->net, 0, 1, true);
    assert_true(simnet_is_blocked(s->net, 0, 1));
    assert_false(simnet_is_blocked(s->net, 1, 0));
    send_byte(s->net, 0, 1, 2); /* dropped */
    send_byte(s->net, 1, 0, 3); /* the other way still works */
    (void)simnet_run(s->net, 100, SIZE_MAX);
    assert_int_equal(s->n, 2);
    assert_int_equal(s->log[0].v, 1);
    assert_int_equal(s->log[0].ep, 1);
    assert_int_equal(s->log[1].v, 3);
    assert_int_equal(s->log[1].ep, 0);
    assert_int_equal(simnet_stats(s->net).dropped, 1);
    simnet_block(s->net, SIMNET_ALL, SIMNET_ALL, false); /* heal */
    send_byte(s->net, 0, 1, 4);
    (void)simnet_run(s->net, 200, SIZE_MAX);
    assert_int_equal(s->n, 3);
    assert_int_equal(s->log[2].v, 4);
    simnet_destroy(s->net);
}

static void test_simnet_paused_endpoint_waits_and_down_endpoint_forgets(
    void **state)
{
    (void)state;
    struct seen *s = setup(4, 2);
    simnet_pause(s->net, 1, true);
    send_byte(s->net, 0, 1, 1); /* due at 1 */
    assert_int_equal(simnet_arm(s->net, 1, 2), RK_OK);
    send_byte(s->net, 0, 1, 2); /* due at 1 */
    assert_int_equal(simnet_schedule(s->net, 3, SIMNET_EV_USER, 1, 9, 0),
                     RK_OK);
    (void)simnet_run(s->net, 50, SIZE_MAX);
    assert_int_equal(s->n, 0);
    simnet_pause(s->net, 1, false); /* at 50: everything, in its order */
    (void)simnet_run(s->net, 60, SIZE_MAX);
    assert_int_equal(s->n, 4);
    const char order[] = {'m', 'm', 't', 'u'};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s->log[i].at, 50);
        assert_int_equal(s->log[i].what, order[i]);
    }
    assert_int_equal(s->log[0].v, 1);
    assert_int_equal(s->log[1].v, 2);

    /* Down: what was queued for it (or from it) never runs. */
    send_byte(s->net, 0, 1, 5);
    send_byte(s->net, 1, 0, 6);
    assert_int_equal(simnet_arm(s->net, 1, 70), RK_OK);
    assert_int_equal(simnet_schedule(s->net, 65, SIMNET_EV_USER, 1, 9, 0),
                     RK_OK);
    assert_int_equal(simnet_incarnation(s->net, 1), 0);
    simnet_set_down(s->net, 1, true);
    assert_true(simnet_is_down(s->net, 1));
    assert_int_equal(simnet_timer(s->net, 1), UINT64_MAX);
    send_byte(s->net, 1, 0, 7); /* from a down endpoint: dropped */
    send_byte(s->net, 0, 1, 8); /* to it: for its next incarnation */
    simnet_set_down(s->net, 1, false);
    assert_int_equal(simnet_incarnation(s->net, 1), 1);
    (void)simnet_run(s->net, 100, SIZE_MAX);
    assert_int_equal(s->n, 5); /* only 8, at 61 */
    assert_int_equal(s->log[4].at, 61);
    assert_int_equal(s->log[4].v, 8);
    assert_int_equal(simnet_stats(s->net).dropped, 3);
    simnet_set_down(s->net, 1, true);
    send_byte(s->net, 0, 1, 9); /* still down when it arrives: dropped */
    (void)simnet_run(s->net, 200, SIZE_MAX);
    simnet_set_down(s->net, 1, false);
    assert_int_equal(s->n, 5);
    assert_int_equal(simnet_stats(s->net).dropped, 4);
    simnet_destroy(s->net);
}

/* Ping-pong between 4 endpoints on a lossy, duplicating, reordering net
 * with timers and a pause; returns the trace hash. */
static uint64_t trace_of(uint64_t seed)
{
    struct seen *s = setup(seed, 4);
    s->echo = true;
    const struct simnet_link l = {
        .delay_min_ms = 1, .delay_max_ms = 50, .loss_pct = 10, .dup_pct = 10};
    simnet_set_link(s->net, SIMNET_ALL, SIMNET_ALL, &l);
    for (int i = 0; i < 4; i++) {
        send_byte(s->net, i, (i + 1) % 4, 0);
        send_byte(s->net, i, (i + 2) % 4, 0);
        assert_int_equal(simnet_arm(s->net, i, 100 * (uint64_t)i), RK_OK);
    }
    (void)simnet_run(s->net, 500, SIZE_MAX);
    simnet_pause(s->net, 2, true);
    simnet_block(s->net, 0, 3, true);
    (void)simnet_run(s->net, 1500, SIZE_MAX);
    simnet_pause(s->net, 2, false);
    (void)simnet_run(s->net, UINT64_MAX - 1, SIZE_MAX);
    uint64_t t = simnet_trace(s->net);
    printf("# seed %" PRIu64 ": %zu events, trace %016" PRIx64 "\n", seed, s->n,
           t);
    assert_true(s->n > 100);
    simnet_destroy(s->net);
    return t;
}

static void test_simnet_same_seed_gives_the_same_trace(void **state)
{
    (void)state;
    uint64_t a = trace_of(7), b = trace_of(7), c = trace_of(8);
    assert_int_equal(a, b);
    assert_int_not_equal(a, c);
}

static void test_simnet_rejects_bad_sizes(void **state)
{
    (void)state;
    struct simnet *net = NULL;
    assert_int_equal(simnet_create(1, 0, &net), RK_EINVAL);
    assert_int_equal(simnet_create(1, SIMNET_MAX_ENDPOINTS + 1, &net),
                     RK_EINVAL);
    assert_null(net);
    simnet_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simnet_runs_events_by_time_then_insertion),
        cmocka_unit_test(
            test_simnet_delays_loss_and_duplication_follow_the_link),
        cmocka_unit_test(test_simnet_one_way_block_drops_one_direction),
        cmocka_unit_test(
            test_simnet_paused_endpoint_waits_and_down_endpoint_forgets),
        cmocka_unit_test(test_simnet_same_seed_gives_the_same_trace),
        cmocka_unit_test(test_simnet_rejects_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

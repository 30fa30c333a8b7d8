/*
 * test_swim.c - cluster/swim: the SWIM-style failure detector.  Direct
 * answers (PING -> ACK, PING_REQ -> relayed probe -> forwarded ACK), and
 * whole runs of detectors on the shared simulated network
 * (tests/sim/simnet.h: a virtual clock, a seeded RNG, messages through the
 * real peer codec; per-link cuts, random loss, and SIGSTOP-like stops
 * (simnet_pause) that freeze a node's timers and hold
 * its incoming messages until it resumes): a stopped node is down within
 * 5 s and up within 5 s of resuming (exact virtual times asserted), the
 * indirect probe keeps a node up over a dead direct path, no false downs
 * at 10% loss over 10 virtual minutes, a stalled detector makes no
 * verdicts, and the same seed gives the same trace (STYLE.md 1.7).
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

#include "../../sim/simnet.h"
#include "cluster/rng.h"
#include "cluster/swim.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "proto/peer.h"

/* ---- direct answers ----------------------------------------------------- */

static struct swim *make(const char *id, uint64_t seed)
{
    struct swim_config cfg = {.node_id = id, .incarnation = 5, .seed = seed};
    struct swim *s = NULL;
    assert_int_equal(swim_create(&cfg, &s), RK_OK);
    return s;
}

static bool bytes_is(struct peer_bytes b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

static void test_swim_answers_ping_and_relays_ping_req(void **state)
{
    (void)state;
    struct swim *s = make("a", 1);
    const char *ids[] = {"a", "b", "c", "b"};
    assert_int_equal(swim_set_members(s, ids, 4), RK_OK);
    assert_int_equal(swim_member_count(s), 2); /* self and duplicate skipped */
    struct cl_actions acts = {0};

    struct peer_msg ping = {.type = PEER_PING};
    ping.ping =
        (struct peer_ping){.seq = 7, .from = {"b", 1}, .incarnation = 3};
    assert_int_equal(swim_on_message(s, &ping, 0, &acts), RK_OK);
    assert_int_equal(acts.len, 1);
    const struct cl_action *a = &acts.items[0];
    assert_int_equal(a->type, CL_ACT_SEND);
    assert_string_equal(a->node, "b");
    assert_int_equal(a->msg.type, PEER_ACK);
    assert_int_equal(a->msg.ack.seq, 7);
    assert_true(bytes_is(a->msg.ack.from, "a"));
    assert_int_equal(a->msg.ack.incarnation, 5);
    uint64_t inc = 0;
    assert_true(swim_member_status(s, "b", NULL, &inc));
    assert_int_equal(inc, 3);
    cl_actions_clear(&acts);

    /* b asks a to probe c; a pings c and forwards c's ACK to b. */
    struct peer_msg req = {.type = PEER_PING_REQ};
    req.ping_req =
        (struct peer_ping_req){.seq = 9, .from = {"b", 1}, .target = {"c", 1}};
    assert_int_equal(swim_on_message(s, &req, 0, &acts), RK_OK);
    assert_int_equal(acts.len, 1);
    a = &acts.items[0];
    assert_string_equal(a->node, "c");
    assert_int_equal(a->msg.type, PEER_PING);
    assert_true(bytes_is(a->msg.ping.target, "c"));
    uint64_t relay_seq = a->msg.ping.seq;
    cl_actions_clear(&acts);
    struct peer_msg ack = {.type = PEER_ACK};
    ack.ack = (struct peer_ack){.seq = relay_seq,
                                .from = {"c", 1},
                                .target = {"c", 1},
                                .incarnation = 11};
    assert_int_equal(swim_on_message(s, &ack, 0, &acts), RK_OK);
    assert_int_equal(acts.len, 1);
    a = &acts.items[0];
    assert_string_equal(a->node, "b");
    assert_int_equal(a->msg.type, PEER_ACK);
    assert_int_equal(a->msg.ack.seq, 9);
    assert_true(bytes_is(a->msg.ack.from, "c"));
    assert_int_equal(a->msg.ack.incarnation, 11);
    cl_actions_clear(&acts);
    /* A duplicate ACK is not forwarded twice. */
    assert_int_equal(swim_on_message(s, &ack, 0, &acts), RK_OK);
    assert_int_equal(acts.len, 0);
    /* A PING_REQ naming us is answered directly. */
    req.ping_req.target = (struct peer_bytes){"a", 1};
    assert_int_equal(swim_on_message(s, &req, 0, &acts), RK_OK);
    assert_int_equal(acts.len, 1);
    assert_int_equal(acts.items[0].msg.type, PEER_ACK);
    assert_int_equal(acts.items[0].msg.ack.seq, 9);
    cl_actions_clear(&acts);
    /* Malformed ids are protocol errors. */
    ping.ping.from = (struct peer_bytes){"", 0};
    assert_int_equal(swim_on_message(s, &ping, 0, &acts), RK_EPROTO);
    assert_int_equal(acts.len, 0);
    swim_destroy(s);
}

/*
 * Issue 12 item 3: PING and ACK carry the sender's storage state (a
 * relayed ACK the target's); the last one heard wins; a reply that
 * refused a write marks the peer at once; a degraded peer stays UP.
 */
static void test_swim_pings_and_acks_carry_the_storage_state(void **state)
{
    (void)state;
    struct swim *s = make("a", 1);
    const char *ids[] = {"a", "b", "c"};
    assert_int_equal(swim_set_members(s, ids, 3), RK_OK);
    struct cl_actions acts = {0};
    /* our own state goes out in ACKs (and PINGs) */
    swim_set_storage(s, PEER_STORAGE_DEGRADED);
    struct peer_msg ping = {.type = PEER_PING};
    ping.ping = (struct peer_ping){.seq = 1, .from = {"b", 1}};
    assert_int_equal(swim_on_message(s, &ping, 0, &acts), RK_OK);
    assert_int_equal(acts.items[0].msg.ack.storage, PEER_STORAGE_DEGRADED);
    cl_actions_clear(&acts);
    swim_set_storage(s, PEER_STORAGE_OK);
    assert_int_equal(swim_tick(s, 0, &acts), RK_OK);
    for (size_t i = 0; i < acts.len; i++) {
        if (acts.items[i].type == CL_ACT_SEND) {
            assert_int_equal(acts.items[i].msg.ping.storage, PEER_STORAGE_OK);
        }
    }
    cl_actions_clear(&acts);
    /* a peer's PING says it is degraded: recorded (and logged), still UP */
    assert_int_equal(swim_member_storage(s, "b"), PEER_STORAGE_OK);
    ping.ping.storage = PEER_STORAGE_DEGRADED;
    assert_int_equal(swim_on_message(s, &ping, 10, &acts), RK_OK);
    assert_int_equal(swim_member_storage(s, "b"), PEER_STORAGE_DEGRADED);
    enum swim_status st;
    assert_true(swim_member_status(s, "b", &st, NULL));
    assert_int_equal(st, SWIM_UP);
    bool logged = false;
    for (size_t i = 0; i < acts.len; i++) {
        logged = logged || (acts.items[i].type == CL_ACT_LOG &&
                            strstr(acts.items[i].text, "degraded") != NULL);
    }
    assert_true(logged);
    cl_actions_clear(&acts);
    /* its ACK says ok again */
    struct peer_msg ack = {.type = PEER_ACK};
    ack.ack = (struct peer_ack){.seq = 99, .from = {"b", 1}};
    assert_int_equal(swim_on_message(s, &ack, 20, &acts), RK_OK);
    assert_int_equal(swim_member_storage(s, "b"), PEER_STORAGE_OK);
    cl_actions_clear(&acts);
    /* a refused write marks c before it says so; its next ACK overrides */
    swim_note_storage(s, "c", 1, PEER_STORAGE_DEGRADED, &acts);
    assert_int_equal(swim_member_storage(s, "c"), PEER_STORAGE_DEGRADED);
    ack.ack.from = (struct peer_bytes){"c", 1};
    assert_int_equal(swim_on_message(s, &ack, 30, &acts), RK_OK);
    assert_int_equal(swim_member_storage(s, "c"), PEER_STORAGE_OK);
    cl_actions_clear(&acts);
    /* a relayed ACK keeps the target's state */
    struct peer_msg req = {.type = PEER_PING_REQ};
    req.ping_req =
        (struct peer_ping_req){.seq = 4, .from = {"b", 1}, .target = {"c", 1}};
    assert_int_equal(swim_on_message(s, &req, 40, &acts), RK_OK);
    uint64_t relay_seq = acts.items[0].msg.ping.seq;
    cl_actions_clear(&acts);
    ack.ack = (struct peer_ack){.seq = relay_seq,
                                .from = {"c", 1},
                                .target = {"c", 1},
                                .storage = PEER_STORAGE_DEGRADED};
    assert_int_equal(swim_on_message(s, &ack, 41, &acts), RK_OK);
    bool relayed = false;
    for (size_t i = 0; i < acts.len; i++) {
        if (acts.items[i].type == CL_ACT_SEND) {
            assert_string_equal(acts.items[i].node, "b");
            assert_int_equal(acts.items[i].msg.ack.storage,
                             PEER_STORAGE_DEGRADED);
            relayed = true;
        }
    }
    assert_true(relayed);
    cl_actions_clear(&acts);
    swim_destroy(s);
}

/* ---- a tiny simulated network ------------------------------------------ */

/* ---- detectors on the shared simulated network (tests/sim/simnet.h) ---- */

#define SN_MAX  8
#define SN_EVTS 4096

struct sn_event
{
    uint64_t at_ms;
    int observer, target;
    enum cl_action_type type; /* NODE_UP or NODE_DOWN */
};

struct sn_node
{
    struct swim *s;
    char id[24];
    uint64_t start_ms; /* first tick: not in lock step */
};

struct snet
{
    struct simnet *net;   /* clock, queue, links, stops, trace */
    bool drop_to_stopped; /* lose (not hold) messages to stopped nodes */
    int n;
    struct sn_node nodes[SN_MAX];
    struct sn_event evts[SN_EVTS];
    size_t n_evts;
    uint64_t direct_pings[SN_MAX][64]; /* start times of probes 0 -> j */
    size_t n_direct[SN_MAX];
};

static void sn_recv(void *data, int to, int from, const void *f, size_t len);
static void sn_tick(void *data, int i);

/* Sets every link's delay to 1..lat_max ms and its loss to drop %. */
static void sn_links(struct snet *sn, uint32_t lat_max, unsigned drop)
{
    const struct simnet_link l = {
        .delay_min_ms = 1, .delay_max_ms = lat_max, .loss_pct = drop};
    simnet_set_link(sn->net, SIMNET_ALL, SIMNET_ALL, &l);
}

static void sn_latency(struct snet *sn, uint32_t lat_max)
{
    sn_links(sn, lat_max, simnet_link(sn->net, 0, 0)->loss_pct);
}

/* Arms node i's timer at its detector's next deadline. */
static void sn_arm(struct snet *sn, int i)
{
    uint64_t d = swim_next_deadline_ms(sn->nodes[i].s);
    if (d == 0) {
        d = sn->nodes[i].start_ms;
    }
    if (d != simnet_timer(sn->net, i)) {
        assert_int_equal(simnet_arm(sn->net, i, d), RK_OK);
    }
}

static void sn_init(struct snet *sn, int n, uint64_t seed, unsigned drop)
{
    memset(sn, 0, sizeof(*sn));
    assert_int_equal(simnet_create(seed, (size_t)n, &sn->net), RK_OK);
    sn_links(sn, 1, drop);
    sn->n = n;
    const char *ids[SN_MAX];
    for (int i = 0; i < n; i++) {
        snprintf(sn->nodes[i].id, sizeof(sn->nodes[i].id), "node-%d", i);
        ids[i] = sn->nodes[i].id;
    }
    for (int i = 0; i < n; i++) {
        struct swim_config cfg = {
            .node_id = sn->nodes[i].id,
            .incarnation = 1,
            .seed = seed * 1000 + (uint64_t)i,
        };
        assert_int_equal(swim_create(&cfg, &sn->nodes[i].s), RK_OK);
        assert_int_equal(swim_set_members(sn->nodes[i].s, ids, (size_t)n),
                         RK_OK);
        sn->nodes[i].start_ms = 37 * (uint64_t)i;
        simnet_endpoint(sn->net, i, sn_recv, sn_tick, sn);
        sn_arm(sn, i);
    }
}

static void sn_fini(struct snet *sn)
{
    for (int i = 0; i < sn->n; i++) {
        swim_destroy(sn->nodes[i].s);
    }
    simnet_destroy(sn->net);
}

/* SIGSTOP (true) / SIGCONT (false) node i: it neither ticks nor reads;
 * messages to it wait (as in its socket buffer) until it resumes, or are
 * lost with drop_to_stopped. */
static void sn_stop(struct snet *sn, int i, bool stopped)
{
    simnet_pause(sn->net, i, stopped);
    if (sn->drop_to_stopped) {
        simnet_block(sn->net, SIMNET_ALL, i, stopped);
    }
}

static int sn_index(const struct snet *sn, const char *id)
{
    for (int i = 0; i < sn->n; i++) {
        if (strcmp(sn->nodes[i].id, id) == 0) {
            return i;
        }
    }
    return -1;
}

static void sn_actions(struct snet *sn, int from, struct cl_actions *acts)
{
    assert_int_equal(acts->n_dropped, 0);
    uint64_t now = simnet_now(sn->net);
    for (size_t i = 0; i < acts->len; i++) {
        const struct cl_action *a = &acts->items[i];
        int to = sn_index(sn, a->node);
        simnet_trace_mix(sn->net, now);
        simnet_trace_mix(sn->net,
                         ((uint64_t)from << 40) | ((uint64_t)(to + 1) << 32) |
                             ((uint64_t)a->type << 8) |
                             (a->type == CL_ACT_SEND ? a->msg.type : 0));
        if (a->type == CL_ACT_NODE_UP || a->type == CL_ACT_NODE_DOWN) {
            assert_true(sn->n_evts < SN_EVTS);
            sn->evts[sn->n_evts++] = (struct sn_event){
                .at_ms = now, .observer = from, .target = to, .type = a->type};
            continue;
        }
        if (a->type != CL_ACT_SEND) {
            continue;
        }
        if (a->msg.type == PEER_PING && a->msg.ping.target.len == 0 &&
            sn->n_direct[to] < 64 && from == 0) {
            sn->direct_pings[to][sn->n_direct[to]++] = now;
        }
        assert_true(to >= 0);
        assert_int_equal(simnet_send_msg(sn->net, from, to, &a->msg), RK_OK);
    }
    cl_actions_clear(acts);
    sn_arm(sn, from);
}

static void sn_recv(void *data, int to, int from, const void *f, size_t len)
{
    (void)from;
    struct snet *sn = data;
    struct peer_msg pm;
    assert_int_equal(simnet_decode(sn->net, f, len, &pm), RK_OK);
    struct cl_actions acts = {0};
    assert_int_equal(
        swim_on_message(sn->nodes[to].s, &pm, simnet_now(sn->net), &acts),
        RK_OK);
    sn_actions(sn, to, &acts);
}

static void sn_tick(void *data, int i)
{
    struct snet *sn = data;
    struct cl_actions acts = {0};
    assert_int_equal(swim_tick(sn->nodes[i].s, simnet_now(sn->net), &acts),
                     RK_OK);
    sn_actions(sn, i, &acts);
}

/* Runs events up to `until_ms` (a stopped node's wait: simnet_pause). */
static void sn_run(struct snet *sn, uint64_t until_ms)
{
    (void)simnet_run(sn->net, until_ms, SIZE_MAX);
}

static long count_events(const struct snet *net, enum cl_action_type type)
{
    long n = 0;
    for (size_t i = 0; i < net->n_evts; i++) {
        n += net->evts[i].type == type;
    }
    return n;
}

/* First event of `type` about `target` seen by `observer` at or after t. */
static uint64_t first_event(const struct snet *net,
                            int observer,
                            int target,
                            enum cl_action_type type,
                            uint64_t t)
{
    for (size_t i = 0; i < net->n_evts; i++) {
        const struct sn_event *e = &net->evts[i];
        if (e->observer == observer && e->target == target && e->type == type &&
            e->at_ms >= t) {
            return e->at_ms;
        }
    }
    return UINT64_MAX;
}

/* ---- detection bounds --------------------------------------------------- */

static void stop_and_resume(bool drop_to_stopped,
                            uint64_t stop_ms,
                            uint64_t want_down0)
{
    struct snet net;
    sn_init(&net, 5, 1, 0);
    net.drop_to_stopped = drop_to_stopped;
    printf("# SIGSTOP at t=%" PRIu64
           " ms; messages to the stopped node are "
           "%s\n",
           stop_ms, drop_to_stopped ? "lost" : "held until it resumes (TCP)");
    sn_run(&net, stop_ms);
    assert_int_equal(net.n_evts, 0);
    /* SIGSTOP node-4 at stop_ms, SIGCONT at t=20000 ms. */
    sn_stop(&net, 4, true);
    sn_run(&net, 20000);
    uint64_t worst_down = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t d = first_event(&net, i, 4, CL_ACT_NODE_DOWN, stop_ms);
        printf("# node-%d marks node-4 down at t=%" PRIu64 " ms (%" PRIu64
               " ms after SIGSTOP)\n",
               i, d, d - stop_ms);
        assert_true(d <= stop_ms + 5000);
        worst_down = d > worst_down ? d : worst_down;
    }
    /*
     * Node 0's verdict comes exactly T + suspect_timeout after the start
     * of its first unanswered probe of node-4 (swim.c, steps 1-4).
     */
    uint64_t probe = 0;
    for (size_t i = 0; i < net.n_direct[4]; i++) {
        if (net.direct_pings[4][i] >= stop_ms) {
            probe = net.direct_pings[4][i];
            break;
        }
    }
    uint64_t d0 = first_event(&net, 0, 4, CL_ACT_NODE_DOWN, stop_ms);
    /* The probe that started at stop_ms itself went out unanswered. */
    printf("# node-0: first probe after SIGSTOP at t=%" PRIu64
           " ms, down at t=%" PRIu64 " ms\n",
           probe, d0);
    assert_int_equal(d0, probe + 500 + 1500);
    assert_int_equal(d0, want_down0);
    assert_true(worst_down - stop_ms <= 4000); /* M*T + 1500 for M = 5 */
    for (int i = 0; i < 4; i++) {
        enum swim_status st;
        assert_true(swim_member_status(net.nodes[i].s, "node-4", &st, NULL));
        assert_int_equal(st, SWIM_DOWN);
    }
    sn_stop(&net, 4, false);
    sn_run(&net, 30000);
    for (int i = 0; i < 4; i++) {
        uint64_t u = first_event(&net, i, 4, CL_ACT_NODE_UP, 20000);
        printf("# node-%d marks node-4 up at t=%" PRIu64 " ms (%" PRIu64
               " ms after SIGCONT)\n",
               i, u, u - 20000);
        assert_true(u <= 25000);
    }
    /* node-4 itself saw only a stall, never a dead peer. */
    for (int j = 0; j < 4; j++) {
        assert_int_equal(first_event(&net, 4, j, CL_ACT_NODE_DOWN, 0),
                         UINT64_MAX);
    }
    assert_int_equal(swim_stats(net.nodes[4].s).pauses, 1);
    assert_int_equal(count_events(&net, CL_ACT_NODE_DOWN), 4);
    assert_int_equal(count_events(&net, CL_ACT_NODE_UP), 4);
    sn_fini(&net);
}

static void test_swim_stopped_node_is_down_within_5s_and_up_within_5s(
    void **state)
{
    (void)state;
    /* node-0 probes node-4 at t=10000, 12000, ...: a stop at the probe is
     * seen at once, one just after its ACK (t=10002) waits a full round,
     * the worst case M*T + suspect_timeout = 4000 ms. */
    stop_and_resume(false, 10000, 12000);
    stop_and_resume(true, 10000, 12000);
    stop_and_resume(false, 10002, 14000);
}

static void test_swim_indirect_probe_keeps_node_up_over_dead_direct_path(
    void **state)
{
    (void)state;
    struct snet net;
    sn_init(&net, 5, 2, 0);
    sn_latency(&net, 10);
    simnet_block(net.net, 0, 4, true);
    simnet_block(net.net, 4, 0, true);
    sn_run(&net, 60000);
    struct swim_stats st0 = swim_stats(net.nodes[0].s);
    printf("# 60 s with the 0<->4 link cut: node-0 sent %" PRIu64
           " PINGs, %" PRIu64 " PING_REQs; suspects %" PRIu64 ", downs %ld\n",
           st0.pings_sent, st0.ping_reqs_sent, st0.suspects,
           count_events(&net, CL_ACT_NODE_DOWN));
    assert_true(st0.ping_reqs_sent >= 2 * 25);
    assert_int_equal(st0.suspects, 0);
    assert_int_equal(count_events(&net, CL_ACT_NODE_DOWN), 0);
    enum swim_status s;
    assert_true(swim_member_status(net.nodes[0].s, "node-4", &s, NULL));
    assert_int_equal(s, SWIM_UP);
    sn_fini(&net);

    /* Control: with k's helpers cut off too, node-4 does go down. */
    sn_init(&net, 5, 2, 0);
    for (int j = 1; j < 4; j++) {
        simnet_block(net.net, j, 4, true);
        simnet_block(net.net, 4, j, true);
    }
    simnet_block(net.net, 0, 4, true);
    simnet_block(net.net, 4, 0, true);
    sn_run(&net, 10000);
    assert_int_not_equal(first_event(&net, 0, 4, CL_ACT_NODE_DOWN, 0),
                         UINT64_MAX);
    sn_fini(&net);
}

static void test_swim_no_false_downs_at_10pct_loss_over_10_minutes(void **state)
{
    (void)state;
    const uint64_t seed = 77;
    printf("# seed %" PRIu64 "\n", seed);
    struct snet *net = rk_malloc(sizeof(*net));
    assert_non_null(net);
    sn_init(net, 5, seed, 10);
    sn_latency(net, 20);
    sn_run(net, 600000);
    uint64_t suspects = 0, pings = 0, reqs = 0;
    for (int i = 0; i < 5; i++) {
        struct swim_stats st = swim_stats(net->nodes[i].s);
        suspects += st.suspects;
        pings += st.pings_sent;
        reqs += st.ping_reqs_sent;
    }
    struct simnet_stats ns = simnet_stats(net->net);
    printf("# 600 s, 5 nodes, 10%% loss: %" PRIu64 " messages (%" PRIu64
           " lost), %" PRIu64 " probes, %" PRIu64 " PING_REQs, %" PRIu64
           " suspicions, %ld false downs\n",
           ns.sent, ns.dropped, pings, reqs, suspects,
           count_events(net, CL_ACT_NODE_DOWN));
    assert_int_equal(count_events(net, CL_ACT_NODE_DOWN), 0);
    assert_true(suspects > 0); /* loss did bite; the re-probes saved it */
    sn_fini(net);
    rk_free(net);
}

static uint64_t trace_of(uint64_t seed)
{
    struct snet *net = rk_malloc(sizeof(*net));
    assert_non_null(net);
    sn_init(net, 5, seed, 20);
    sn_latency(net, 30);
    sn_run(net, 30000);
    sn_stop(net, 2, true);
    sn_run(net, 40000);
    sn_stop(net, 2, false);
    sn_run(net, 60000);
    uint64_t t = simnet_trace(net->net);
    sn_fini(net);
    rk_free(net);
    return t;
}

static void test_swim_same_seed_gives_the_same_trace(void **state)
{
    (void)state;
    uint64_t a = trace_of(5), b = trace_of(5), c = trace_of(6);
    printf("# trace seed 5: %016" PRIx64 " twice; seed 6: %016" PRIx64 "\n", a,
           c);
    assert_int_equal(a, b);
    assert_int_not_equal(a, c);
}

static void test_swim_stalled_detector_makes_no_verdicts(void **state)
{
    (void)state;
    struct snet net;
    sn_init(&net, 4, 3, 0);
    sn_run(&net, 5000);
    sn_stop(&net, 0, true);
    sn_run(&net, 15000);
    sn_stop(&net, 0, false);
    sn_run(&net, 25000);
    for (int j = 1; j < 4; j++) {
        assert_int_equal(first_event(&net, 0, j, CL_ACT_NODE_DOWN, 0),
                         UINT64_MAX);
        assert_int_not_equal(first_event(&net, j, 0, CL_ACT_NODE_DOWN, 5000),
                             UINT64_MAX);
        assert_int_not_equal(first_event(&net, j, 0, CL_ACT_NODE_UP, 15000),
                             UINT64_MAX);
    }
    assert_int_equal(swim_stats(net.nodes[0].s).pauses, 1);
    sn_fini(&net);
}

static void test_swim_set_members_keeps_known_status(void **state)
{
    (void)state;
    struct snet net;
    sn_init(&net, 3, 4, 0);
    sn_stop(&net, 2, true);
    sn_run(&net, 10000);
    struct swim *s = net.nodes[0].s;
    enum swim_status st;
    assert_true(swim_member_status(s, "node-2", &st, NULL));
    assert_int_equal(st, SWIM_DOWN);
    const char *ids[] = {"node-2", "node-9", "node-0"};
    assert_int_equal(swim_set_members(s, ids, 3), RK_OK);
    assert_int_equal(swim_member_count(s), 2);
    assert_true(swim_member_status(s, "node-2", &st, NULL));
    assert_int_equal(st, SWIM_DOWN);
    assert_true(swim_member_status(s, "node-9", &st, NULL));
    assert_int_equal(st, SWIM_UP);
    assert_false(swim_member_status(s, "node-1", &st, NULL));
    const char *bad[] = {"has space"};
    assert_int_equal(swim_set_members(s, bad, 1), RK_EINVAL);
    assert_int_equal(swim_member_count(s), 2);
    struct swim_config cfg = {.node_id = "x", .ping_timeout_ms = 600};
    struct swim *t = NULL;
    assert_int_equal(swim_create(&cfg, &t), RK_EINVAL);
    assert_null(t);
    sn_fini(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swim_answers_ping_and_relays_ping_req),
        cmocka_unit_test(test_swim_pings_and_acks_carry_the_storage_state),
        cmocka_unit_test(
            test_swim_stopped_node_is_down_within_5s_and_up_within_5s),
        cmocka_unit_test(
            test_swim_indirect_probe_keeps_node_up_over_dead_direct_path),
        cmocka_unit_test(
            test_swim_no_false_downs_at_10pct_loss_over_10_minutes),
        cmocka_unit_test(test_swim_same_seed_gives_the_same_trace),
        cmocka_unit_test(test_swim_stalled_detector_makes_no_verdicts),
        cmocka_unit_test(test_swim_set_members_keeps_known_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

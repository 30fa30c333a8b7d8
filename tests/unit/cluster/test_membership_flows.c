/*
 * test_membership_flows.c - cluster/membership: whole flows of machines on
 * the shared simulated network (membership_net.h): a 5-node cluster
 * converges within 3 s of a join (also with 10% loss), join retry and
 * timeout, concurrent joins at two seeds, remove of a dead node, leave
 * and remove of a joining node, a version jump refused, restart from
 * persisted bytes, gossip of another cluster ignored.  Split from
 * test_membership.c (which keeps the state bytes, the merge order,
 * replace, plans and allocation failures).
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
#include "cluster/membership.h"
#include "cluster/ring.h"
#include "cluster/rng.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "membership_net.h"
#include "proto/peer.h"

/* ---- flows on the simulated network ------------------------------------- */

static void converge_after_join(unsigned drop, uint64_t seed)
{
    struct net net;
    net_init(&net, 5, seed, drop);
    printf("# seed %" PRIu64 ", %u%% message loss\n", seed, drop);
    do_create(&net, 0);
    for (int i = 1; i < 4; i++) {
        do_join(&net, i, 0);
    }
    uint64_t t4 = net_run_until_converged(&net, 0xf, 4, 20000);
    assert_int_not_equal(t4, UINT64_MAX);
    printf("# 4 nodes formed and converged at t=%" PRIu64 " ms\n", t4);
    net_run(&net, t4 + 1000);
    /* The fifth node joins through node 2 (any member admits). */
    uint64_t t0 = net_now(&net);
    do_join(&net, 4, 2);
    uint64_t t = net_run_until_converged(&net, 0x1f, 5, t0 + 10000);
    assert_int_not_equal(t, UINT64_MAX);
    printf("# node-4 joined at t=%" PRIu64
           " ms; all 5 nodes agree on "
           "version %" PRIu64 " and ring %016" PRIx64 " at t=%" PRIu64
           " ms: %" PRIu64 " ms after the join (bound 3000); %" PRIu64
           " messages, %" PRIu64 " lost\n",
           t0, membership_version(net.nodes[0].m),
           ring_digest(membership_ring(net.nodes[0].m)), t, t - t0,
           simnet_stats(net.sim).sent, simnet_stats(net.sim).dropped);
    assert_true(t - t0 <= 3000);
    net_fini(&net);
}

static void test_membership_five_nodes_converge_within_3s_of_a_join(
    void **state)
{
    (void)state;
    converge_after_join(0, 42);
}

static void test_membership_five_nodes_converge_with_10pct_loss(void **state)
{
    (void)state;
    for (uint64_t seed = 100; seed < 105; seed++) {
        converge_after_join(10, seed);
    }
}

static void test_membership_concurrent_joins_at_two_seeds_both_end_in_ring(
    void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 5, 7, 0);
    form(&net, 3);
    net_run(&net, net_now(&net) + 1000);
    uint64_t t0 = net_now(&net);
    uint64_t v0 = membership_version(net.nodes[0].m);
    do_join(&net, 3, 1); /* both seeds make version v0 + 1 */
    do_join(&net, 4, 2);
    uint64_t t = net_run_until_converged(&net, 0x1f, 5, t0 + 20000);
    assert_int_not_equal(t, UINT64_MAX);
    printf("# concurrent joins from version %" PRIu64
           ": converged on "
           "version %" PRIu64 " after %" PRIu64 " ms; JOINs sent %d + %d\n",
           v0, membership_version(net.nodes[0].m), t - t0,
           net.nodes[3].joins_sent, net.nodes[4].joins_sent);
    /* Both joins made it, whichever lost the tie at v0 + 1 (it is retried,
     * or carried by the loser's own marks of received partitions). */
    assert_true(membership_version(net.nodes[0].m) >= v0 + 2);
    assert_true(net.nodes[3].joins_sent + net.nodes[4].joins_sent >= 2);
    net_fini(&net);
}

static void test_membership_join_retries_until_the_seed_answers(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 2, 9, 0);
    do_create(&net, 0);
    net_set_alive(&net, 0, false); /* the seed is unreachable for a while */
    do_join(&net, 1, 0);
    net_run(&net, 2500);
    assert_int_equal(net.nodes[1].joins_sent, 3); /* t = 0, 1000, 2000 */
    assert_int_equal(membership_phase(net.nodes[1].m), MEMBERSHIP_JOINING);
    net_set_alive(&net, 0, true);
    uint64_t t = net_run_until_converged(&net, 0x3, 2, 10000);
    assert_int_not_equal(t, UINT64_MAX);
    printf("# joined at t=%" PRIu64 " ms after %d JOINs\n", t,
           net.nodes[1].joins_sent);
    assert_int_equal(net.nodes[1].joins_sent, 4); /* the one at t = 3000 */
    assert_int_equal(net.nodes[1].join_done, 1);
    net_fini(&net);
}

static void test_membership_join_fails_after_the_deadline(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 2, 10, 0);
    do_create(&net, 0);
    net_set_alive(&net, 0, false);
    do_join(&net, 1, 0);
    net_run(&net, 29999);
    assert_int_equal(net.nodes[1].join_failed, 0);
    net_run(&net, 30000);
    assert_int_equal(net.nodes[1].join_failed, 1);
    assert_int_equal(net.nodes[1].join_failed_status, RK_ETIMEDOUT);
    assert_int_equal(net.nodes[1].joins_sent, 30);
    assert_int_equal(membership_phase(net.nodes[1].m), MEMBERSHIP_NONE);
    printf("# JOIN_FAILED at t=30000 ms: %s\n", net.nodes[1].join_failed_text);
    /* Joining a node that has no cluster is refused at once. */
    struct net n2;
    net_init(&n2, 2, 11, 0);
    do_join(&n2, 1, 0);
    net_run(&n2, 100);
    assert_int_equal(n2.nodes[1].join_failed, 1);
    assert_int_equal(n2.nodes[1].join_failed_status, RK_EINVAL);
    assert_non_null(strstr(n2.nodes[1].join_failed_text,
                           "node-0 is not a member of a cluster"));
    net_fini(&n2);
    net_fini(&net);
}

static void test_membership_remove_takes_a_dead_node_out(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 3, 12, 0);
    form(&net, 3);
    net_set_alive(&net, 2, false);
    struct membership *m0 = net.nodes[0].m;
    struct cl_actions acts = {0};
    assert_int_equal(
        membership_remove(m0, "node-0", true, net_now(&net), &acts), RK_EINVAL);
    assert_non_null(strstr(membership_errmsg(m0), "use leave"));
    assert_int_equal(membership_remove(m0, "nope", true, net_now(&net), &acts),
                     RK_ENOTFOUND);
    assert_int_equal(acts.len, 0);
    uint64_t t0 = net_now(&net);
    assert_int_equal(
        membership_remove(m0, "node-2", true, net_now(&net), &acts), RK_OK);
    net_actions(&net, 0, &acts);
    uint64_t t = net_run_until_converged(&net, 0x3, 2, t0 + 5000);
    assert_int_not_equal(t, UINT64_MAX);
    printf("# node-2 removed; nodes 0 and 1 agree after %" PRIu64 " ms\n",
           t - t0);
    assert_int_equal(ring_find_member(membership_ring(m0), "node-2", 6), -1);
    struct membership_member mm;
    assert_true(membership_member_find(m0, "node-2", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_REMOVED);
    assert_int_equal(
        membership_remove(m0, "node-2", true, net_now(&net), &acts),
        RK_ENOTFOUND);
    /* When node-2 comes back it learns it was removed. */
    net_set_alive(&net, 2, true);
    net_run(&net, net_now(&net) + 3000);
    assert_int_equal(membership_phase(net.nodes[2].m), MEMBERSHIP_REMOVED_SELF);
    assert_true(net_converged(&net, 0x7));
    /* A removed node may join again, not found a cluster of the same
     * name from its old state. */
    assert_int_equal(
        membership_create_cluster(net.nodes[2].m, net_now(&net), &acts),
        RK_EBUSY);
    assert_non_null(strstr(membership_errmsg(net.nodes[2].m), "removed"));
    assert_int_equal(
        membership_create_cluster(net.nodes[0].m, net_now(&net), &acts),
        RK_EBUSY);
    assert_int_equal(acts.len, 0);
    do_join(&net, 2, 1);
    assert_int_not_equal(
        net_run_until_converged(&net, 0x7, 3, net_now(&net) + 5000),
        UINT64_MAX);
    assert_int_equal(net.nodes[2].join_done, 2);
    net_fini(&net);
}

static void test_membership_leave_hands_off_then_leaves(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 4, 13, 0);
    form(&net, 4);
    struct membership *m1 = net.nodes[1].m;
    struct cl_actions acts = {0};
    uint64_t v = membership_version(m1);
    /* A node holding data leaves through a transition: it stays a member
     * (leaving) until its partitions are with their new owners. */
    assert_int_equal(membership_leave(m1, true, true, net_now(&net), &acts),
                     RK_OK);
    assert_int_equal(membership_phase(m1), MEMBERSHIP_MEMBER);
    assert_non_null(membership_next_ring(m1));
    assert_true(membership_version(m1) > v);
    struct membership_member mm;
    assert_true(membership_member_find(m1, "node-1", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_STATUS_LEAVING);
    net_actions(&net, 1, &acts);
    /* A second leave while leaving is refused. */
    assert_int_equal(membership_leave(m1, true, true, net_now(&net), &acts),
                     RK_EBUSY);
    assert_int_equal(acts.len, 0);
    uint64_t t = net_run_until_converged(&net, 0xd, 3, net_now(&net) + 5000);
    assert_int_not_equal(t, UINT64_MAX);
    net_run(&net, net_now(&net) + 2000);
    assert_null(membership_next_ring(net.nodes[0].m));
    assert_int_equal(membership_phase(m1), MEMBERSHIP_REMOVED_SELF);
    assert_true(membership_member_find(net.nodes[0].m, "node-1", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_REMOVED);
    /* With M <= N every member holds every partition: nothing is pending,
     * so these leaves are done at once.  The last one may not leave. */
    for (int i = 2; i <= 3; i++) {
        assert_int_equal(
            membership_leave(net.nodes[i].m, false, true, net_now(&net), &acts),
            RK_OK);
        assert_int_equal(membership_phase(net.nodes[i].m),
                         MEMBERSHIP_REMOVED_SELF);
        net_actions(&net, i, &acts);
        net_run(&net, net_now(&net) + 2000);
    }
    assert_int_equal(
        membership_leave(net.nodes[0].m, false, true, net_now(&net), &acts),
        RK_EINVAL);
    assert_non_null(strstr(membership_errmsg(net.nodes[0].m), "last member"));
    net_fini(&net);
}

/* Regression (found by the simulator's membership nemeses, issue 14): a
 * node that left and then adopts a newer state listing it valid (its leave
 * lost to a concurrent change) leaves again within the same call; the
 * PERSIST of the adopted state viewed the encoding that the re-applied
 * leave freed (a heap use-after-free in the node's action loop).  Every
 * PERSIST the call appends must view the bytes the machine holds. */
static void test_membership_leave_reapplied_on_gossip_persists_live_bytes(
    void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 4, 17, 0);
    form(&net, 4);
    struct membership *m0 = net.nodes[0].m, *m1 = net.nodes[1].m;
    struct cl_actions acts = {0};
    /* node-1 leaves; node-0, not hearing it, makes two changes of its own:
     * its state is newer and still lists node-1 valid */
    assert_int_equal(membership_leave(m1, true, true, net_now(&net), &acts),
                     RK_OK);
    cl_actions_clear(&acts);
    assert_int_equal(
        membership_remove(m0, "node-3", true, net_now(&net), &acts), RK_OK);
    cl_actions_clear(&acts);
    assert_int_equal(
        membership_remove(m0, "node-2", true, net_now(&net), &acts), RK_OK);
    cl_actions_clear(&acts);
    assert_true(membership_version(m0) > membership_version(m1));
    struct peer_msg g = {.type = PEER_GOSSIP};
    g.gossip.state = membership_state_bytes(m0);
    g.gossip.state_version = membership_version(m0);
    g.gossip.from = (struct peer_bytes){"node-0", 6};
    assert_int_equal(membership_on_message(m1, &g, net_now(&net), &acts),
                     RK_OK);
    struct membership_member mm;
    assert_true(membership_member_find(m1, "node-1", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_STATUS_LEAVING);
    assert_true(membership_version(m1) > membership_version(m0));
    struct peer_bytes now_held = membership_state_bytes(m1);
    size_t persists = 0;
    for (size_t i = 0; i < acts.len; i++) {
        const struct cl_action *a = &acts.items[i];
        if (a->type == CL_ACT_PERSIST) {
            persists++;
            assert_ptr_equal(a->bytes.ptr, now_held.ptr);
            assert_int_equal(a->bytes.len, now_held.len);
        }
    }
    assert_int_equal(persists, 1);
    cl_actions_clear(&acts);
    net_fini(&net);
}

/* Regression (found by the simulator's membership nemeses, issue 14):
 * removing the only joining node of a transition in a cluster of M > N
 * planned a next ring from the previous next ring, which moved partitions
 * among the valid members: a transition with no joining or leaving member,
 * a state every other node's decoder rejected, so the remover stayed
 * alone at its version and the transition never ended.  The remove ends
 * the transition instead: the current ring stays. */
static void remove_joining(uint64_t seed)
{
    struct net net;
    net_init(&net, 6, seed, 0);
    form(&net, 5);
    struct membership *m0 = net.nodes[0].m, *m1 = net.nodes[1].m;
    uint64_t digest = ring_digest(membership_ring(m0));
    struct cl_actions acts = {0};
    struct peer_msg j = {.type = PEER_JOIN};
    j.join = (struct peer_join){
        .req_id = 1,
        .node_id = {"node-5", 6},
        .host = {"10.0.0.6", 8},
        .resp_port = 6379,
        .http_port = 8080,
        .peer_port = 7005,
    };
    assert_int_equal(membership_on_message(m0, &j, net_now(&net), &acts),
                     RK_OK);
    cl_actions_clear(&acts);
    assert_non_null(membership_next_ring(m0));
    assert_int_equal(
        membership_remove(m0, "node-5", true, net_now(&net), &acts), RK_OK);
    cl_actions_clear(&acts);
    struct membership_member mm;
    assert_true(membership_member_find(m0, "node-5", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_REMOVED);
    assert_null(membership_next_ring(m0));
    assert_int_equal(ring_digest(membership_ring(m0)), digest);
    struct peer_bytes b = membership_state_bytes(m0);
    char err[200] = "";
    assert_int_equal(
        membership_state_check(b.ptr, b.len, NULL, err, sizeof(err)), RK_OK);
    /* another member adopts it */
    struct peer_msg g = {.type = PEER_GOSSIP};
    g.gossip.state = b;
    g.gossip.state_version = membership_version(m0);
    g.gossip.from = (struct peer_bytes){"node-0", 6};
    assert_int_equal(membership_on_message(m1, &g, net_now(&net), &acts),
                     RK_OK);
    cl_actions_clear(&acts);
    assert_int_equal(membership_version(m1), membership_version(m0));
    assert_null(membership_next_ring(m1));
    net_fini(&net);
}

static void test_membership_remove_of_the_joining_node_ends_the_transition(
    void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        printf("# seed %" PRIu64 "\n", seed);
        remove_joining(seed);
    }
}

/* Issue 15 item 1: a member refuses a gossiped state that no membership
 * change could have made: one whose version is more than
 * MEMBERSHIP_MAX_VERSION_STEP ahead (a forged state at UINT64_MAX would
 * otherwise win every comparison forever); a state one version ahead is
 * adopted as before. */
static void test_membership_refuses_a_version_jump(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 3, 21, 0);
    form(&net, 3);
    net_run(&net, net_now(&net) + 1000);
    struct membership *m0 = net.nodes[0].m, *m1 = net.nodes[1].m;
    uint64_t v = membership_version(m1);
    assert_int_equal(membership_version(m0), v);
    struct peer_bytes b = membership_state_bytes(m0);
    unsigned char *forged = malloc(b.len);
    assert_non_null(forged);
    struct cl_actions acts = {0};
    const uint64_t jumps[] = {MEMBERSHIP_MAX_VERSION_STEP + 1, UINT64_MAX - v};
    for (size_t i = 0; i < 2; i++) {
        memcpy(forged, b.ptr, b.len);
        uint64_t fv = v + jumps[i];
        for (int k = 0; k < 8; k++) {
            forged[5 + k] = (unsigned char)(fv >> (8 * k));
        }
        struct peer_msg g = {.type = PEER_GOSSIP};
        g.gossip.state = (struct peer_bytes){(const char *)forged, b.len};
        g.gossip.state_version = fv;
        g.gossip.from = (struct peer_bytes){"node-0", 6};
        assert_int_equal(membership_on_message(m1, &g, net_now(&net), &acts),
                         RK_EINVAL);
        assert_int_equal(membership_version(m1), v);
        assert_int_equal(membership_gossip_refused(m1), i + 1);
        assert_non_null(strstr(membership_errmsg(m1), "wipe"));
        cl_actions_clear(&acts);
    }
    /* within the step: adopted (the changer and members are unchanged) */
    memcpy(forged, b.ptr, b.len);
    uint64_t fv = v + 1;
    for (int k = 0; k < 8; k++) {
        forged[5 + k] = (unsigned char)(fv >> (8 * k));
    }
    struct peer_msg g = {.type = PEER_GOSSIP};
    g.gossip.state = (struct peer_bytes){(const char *)forged, b.len};
    g.gossip.state_version = fv;
    g.gossip.from = (struct peer_bytes){"node-0", 6};
    assert_int_equal(membership_on_message(m1, &g, net_now(&net), &acts),
                     RK_OK);
    assert_int_equal(membership_version(m1), fv);
    assert_int_equal(membership_gossip_refused(m1), 2);
    cl_actions_clear(&acts);
    free(forged);
    net_fini(&net);
}

static void test_membership_restarts_from_persisted_bytes(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 4, 14, 0);
    form(&net, 3);
    net_run(&net, net_now(&net) + 1000);
    struct net_node *n1 = &net.nodes[1];
    uint64_t v = membership_version(n1->m);
    uint64_t dig = ring_digest(membership_ring(n1->m));
    /* Node 1 stops; the cluster changes meanwhile. */
    membership_destroy(n1->m);
    n1->m = NULL;
    net_set_alive(&net, 1, false);
    do_join(&net, 3, 0);
    net_run(&net, net_now(&net) + 2000);
    char err[256] = "";
    assert_int_equal(membership_create(&n1->cfg, n1->saved.base, n1->saved.len,
                                       &n1->m, err, sizeof(err)),
                     RK_OK);
    assert_int_equal(membership_phase(n1->m), MEMBERSHIP_MEMBER);
    assert_int_equal(membership_version(n1->m), v);
    assert_int_equal(ring_digest(membership_ring(n1->m)), dig);
    net_set_alive(&net, 1, true);
    uint64_t t0 = net_now(&net);
    uint64_t t = net_run_until_converged(&net, 0xf, 4, t0 + 5000);
    assert_int_not_equal(t, UINT64_MAX);
    printf("# restarted node caught up from version %" PRIu64 " to %" PRIu64
           " in %" PRIu64 " ms\n",
           v, membership_version(n1->m), t - t0);
    /* Restarted on another peer port: it publishes the new address. */
    membership_destroy(n1->m);
    n1->cfg.peer_port = 7101;
    assert_int_equal(membership_create(&n1->cfg, n1->saved.base, n1->saved.len,
                                       &n1->m, err, sizeof(err)),
                     RK_OK);
    net_arm(&net, 1);
    uint64_t v1 = membership_version(n1->m);
    t0 = net_now(&net);
    struct membership_member mm = {0};
    while (net_now(&net) < t0 + 5000 &&
           !(all_members(&net, 0xf) && net_converged(&net, 0xf) &&
             membership_member_find(net.nodes[3].m, "node-1", &mm) &&
             mm.peer_port == 7101)) {
        assert_true(net_step(&net, t0 + 5000));
    }
    assert_int_equal(mm.peer_port, 7101);
    assert_int_equal(membership_version(net.nodes[0].m), v1 + 1);
    printf("# new address of node-1 known everywhere after %" PRIu64 " ms\n",
           net_now(&net) - t0);
    /* Saved bytes of another cluster, of another node, or garbage. */
    struct membership *m = NULL;
    struct membership_config cfg = n1->cfg;
    cfg.cluster_name = "other";
    assert_int_equal(membership_create(&cfg, n1->saved.base, n1->saved.len, &m,
                                       err, sizeof(err)),
                     RK_EINVAL);
    assert_non_null(strstr(err, "cluster \"test\""));
    cfg = n1->cfg;
    cfg.node_id = "stranger";
    assert_int_equal(membership_create(&cfg, n1->saved.base, n1->saved.len, &m,
                                       err, sizeof(err)),
                     RK_EINVAL);
    assert_int_equal(
        membership_create(&n1->cfg, "RKCS\1junk", 9, &m, err, sizeof(err)),
        RK_EPROTO);
    assert_null(m);
    net_fini(&net);
}

static void test_membership_gossip_from_another_cluster_is_ignored(void **state)
{
    (void)state;
    struct net a;
    net_init(&a, 2, 15, 0);
    form(&a, 2);
    struct membership_config cfg = a.nodes[0].cfg;
    cfg.cluster_name = "other";
    struct membership *m = NULL;
    assert_int_equal(membership_create(&cfg, NULL, 0, &m, NULL, 0), RK_OK);
    struct cl_actions acts = {0};
    assert_int_equal(membership_create_cluster(m, 0, &acts), RK_OK);
    cl_actions_clear(&acts);
    struct peer_msg msg = {.type = PEER_GOSSIP};
    msg.gossip.state = membership_state_bytes(a.nodes[1].m);
    msg.gossip.from = (struct peer_bytes){"node-1", 6};
    uint64_t v = membership_version(m);
    assert_int_equal(membership_on_message(m, &msg, 0, &acts), RK_EINVAL);
    assert_int_equal(membership_version(m), v);
    assert_int_equal(acts.len, 1);
    assert_int_equal(acts.items[0].type, CL_ACT_LOG);
    membership_destroy(m);
    net_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_membership_five_nodes_converge_within_3s_of_a_join),
        cmocka_unit_test(test_membership_five_nodes_converge_with_10pct_loss),
        cmocka_unit_test(
            test_membership_concurrent_joins_at_two_seeds_both_end_in_ring),
        cmocka_unit_test(test_membership_join_retries_until_the_seed_answers),
        cmocka_unit_test(test_membership_join_fails_after_the_deadline),
        cmocka_unit_test(test_membership_remove_takes_a_dead_node_out),
        cmocka_unit_test(test_membership_leave_hands_off_then_leaves),
        cmocka_unit_test(
            test_membership_leave_reapplied_on_gossip_persists_live_bytes),
        cmocka_unit_test(
            test_membership_remove_of_the_joining_node_ends_the_transition),
        cmocka_unit_test(test_membership_refuses_a_version_jump),
        cmocka_unit_test(test_membership_restarts_from_persisted_bytes),
        cmocka_unit_test(
            test_membership_gossip_from_another_cluster_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * membership_net.h - the simulated network of the membership tests
 * (test_membership.c, test_membership_flows.c): machines of
 * cluster/membership on tests/sim/simnet.h (a virtual clock, a seeded
 * RNG, messages through the real peer codec, 1-10 ms delays, optional
 * loss, unreachable nodes).  Each test file includes it once, after
 * cmocka.h, simnet.h, cluster/membership.h and proto/peer.h; its
 * functions are static inline so that a file need not use them all.
 */
#ifndef RINGKV_TEST_MEMBERSHIP_NET_H
#define RINGKV_TEST_MEMBERSHIP_NET_H

/* ---- machines on the shared simulated network (tests/sim/simnet.h) ---- */

#define NET_MAX_NODES 8

struct net_node
{
    struct membership *m;
    struct membership_config cfg;
    char id[24];
    char host[24];
    struct rk_buf saved; /* last PERSIST bytes */
    int joins_sent;
    int join_done;
    int join_failed;
    int join_failed_status;
    char join_failed_text[CL_TEXT_MAX];
};

struct net
{
    struct simnet *sim; /* clock, queue, links (1..10 ms), loss, downs */
    int n;
    struct net_node nodes[NET_MAX_NODES];
};

static inline void net_recv(void *data,
                            int to,
                            int from,
                            const void *f,
                            size_t len);
static inline void net_tick(void *data, int i);

static inline uint64_t net_now(const struct net *net)
{
    return simnet_now(net->sim);
}

/* Arms node i's timer at its machine's next deadline. */
static inline void net_arm(struct net *net, int i)
{
    uint64_t d = membership_next_deadline_ms(net->nodes[i].m);
    if (d != simnet_timer(net->sim, i)) {
        assert_int_equal(simnet_arm(net->sim, i, d), RK_OK);
    }
}

/* Node i's --tls-port is net_tls_base + i when net_tls_base is not 0. */
static uint16_t net_tls_base;

static inline void net_init(struct net *net,
                            int n,
                            uint64_t seed,
                            unsigned drop)
{
    memset(net, 0, sizeof(*net));
    assert_int_equal(simnet_create(seed, (size_t)n, &net->sim), RK_OK);
    const struct simnet_link link = {
        .delay_min_ms = 1, .delay_max_ms = 10, .loss_pct = drop};
    simnet_set_link(net->sim, SIMNET_ALL, SIMNET_ALL, &link);
    net->n = n;
    for (int i = 0; i < n; i++) {
        struct net_node *nd = &net->nodes[i];
        snprintf(nd->id, sizeof(nd->id), "node-%d", i);
        snprintf(nd->host, sizeof(nd->host), "10.0.0.%d", i + 1);
        nd->cfg = (struct membership_config){
            .node_id = nd->id,
            .host = nd->host,
            .resp_port = 6379,
            .http_port = 8080,
            .peer_port = (uint16_t)(7000 + i),
            .tls_port = net_tls_base ? (uint16_t)(net_tls_base + i) : 0,
            .cluster_name = "test",
            .seed = seed * 31 + (uint64_t)i,
        };
        assert_int_equal(membership_create(&nd->cfg, NULL, 0, &nd->m, NULL, 0),
                         RK_OK);
        simnet_endpoint(net->sim, i, net_recv, net_tick, net);
        net_arm(net, i);
    }
}

static inline void net_fini(struct net *net)
{
    for (int i = 0; i < net->n; i++) {
        membership_destroy(net->nodes[i].m);
        rk_buf_fini(&net->nodes[i].saved);
    }
    simnet_destroy(net->sim);
}

/* alive = false: node i is unreachable and its timers stop; every message
 * to or from it, also one in flight, is lost.  Back up, its timer runs
 * from its machine's deadline again. */
static inline void net_set_alive(struct net *net, int i, bool alive)
{
    simnet_set_down(net->sim, i, !alive);
    if (alive && net->nodes[i].m != NULL) {
        net_arm(net, i);
    }
}

static inline int net_resolve(struct net *net, const struct cl_action *a)
{
    for (int i = 0; i < net->n; i++) {
        struct net_node *nd = &net->nodes[i];
        if (a->host[0] != '\0') {
            if (strcmp(nd->host, a->host) == 0 &&
                nd->cfg.peer_port == a->peer_port) {
                return i;
            }
        } else if (strcmp(nd->id, a->node) == 0) {
            return i;
        }
    }
    return -1;
}

static inline void net_actions(struct net *net,
                               int from,
                               struct cl_actions *acts)
{
    assert_int_equal(acts->n_dropped, 0);
    struct net_node *src = &net->nodes[from];
    for (size_t i = 0; i < acts->len; i++) {
        const struct cl_action *a = &acts->items[i];
        switch (a->type) {
            case CL_ACT_SEND: {
                if (a->msg.type == PEER_JOIN) {
                    src->joins_sent++;
                }
                int to = net_resolve(net, a);
                if (to >= 0) {
                    assert_int_equal(
                        simnet_send_msg(net->sim, from, to, &a->msg), RK_OK);
                }
                break;
            }
            case CL_ACT_PERSIST: {
                /* every saved state restarts its node (one that does not
                 * list the node would refuse to start: simulator seed
                 * 384 of --spares 2) */
                struct membership *back = NULL;
                char err[160] = "";
                int rc =
                    membership_create(&src->cfg, a->bytes.ptr, a->bytes.len,
                                      &back, err, sizeof(err));
                if (rc != RK_OK) {
                    fail_msg("%s persisted a state it cannot restart from: %s",
                             src->id, err);
                }
                membership_destroy(back);
                rk_buf_clear(&src->saved);
                assert_int_equal(
                    rk_buf_append(&src->saved, a->bytes.ptr, a->bytes.len),
                    RK_OK);
                break;
            }
            case CL_ACT_JOIN_DONE:
                src->join_done++;
                break;
            case CL_ACT_JOIN_FAILED:
                src->join_failed++;
                src->join_failed_status = a->status;
                snprintf(src->join_failed_text, sizeof(src->join_failed_text),
                         "%s", a->text);
                break;
            default:
                break;
        }
    }
    cl_actions_clear(acts);
    net_arm(net, from);
}

static inline void net_recv(void *data,
                            int to,
                            int from,
                            const void *f,
                            size_t len)
{
    (void)from;
    struct net *net = data;
    struct peer_msg pm;
    assert_int_equal(simnet_decode(net->sim, f, len, &pm), RK_OK);
    struct cl_actions acts = {0};
    int rc = membership_on_message(net->nodes[to].m, &pm, net_now(net), &acts);
    /* a refused JOIN or REPLACE returns why (and is answered) */
    assert_true(rc == RK_OK || rc == RK_EINVAL || rc == RK_ENOTFOUND ||
                rc == RK_EBUSY);
    net_actions(net, to, &acts);
}

/* These clusters hold no data, so a pending owner has received each of its
 * partitions as soon as it learns it is pending: mark them (the node's
 * handoff does this after pulling the data, cluster/handoff.h). */
static inline void net_mark_received(struct net *net,
                                     int i,
                                     struct cl_actions *acts)
{
    struct membership *m = net->nodes[i].m;
    const struct ring *nx = membership_next_ring(m);
    uint32_t parts[RING_MAX_SIZE];
    size_t n = 0;
    for (uint32_t p = 0; nx != NULL && p < ring_size(nx); p++) {
        bool got = false;
        if (membership_pending_for(m, p, membership_self_id(m), &got) && !got) {
            parts[n++] = p;
        }
    }
    if (n > 0) {
        assert_int_equal(
            membership_mark_received(m, parts, n, net_now(net), acts), RK_OK);
    }
}

static inline void net_tick(void *data, int i)
{
    struct net *net = data;
    struct cl_actions acts = {0};
    assert_int_equal(membership_tick(net->nodes[i].m, net_now(net), &acts),
                     RK_OK);
    net_actions(net, i, &acts);
    if (membership_phase(net->nodes[i].m) == MEMBERSHIP_MEMBER) {
        /* after the tick's actions: their views die with a new state */
        net_mark_received(net, i, &acts);
        net_actions(net, i, &acts);
    }
}

/* Runs one event (the earliest message or timer); false when idle. */
static inline bool net_step(struct net *net, uint64_t until_ms)
{
    return simnet_step(net->sim, until_ms);
}

/* Whether every alive node listed in `mask` holds the same state. */
static inline bool net_converged(struct net *net, unsigned mask)
{
    const struct membership *first = NULL;
    for (int i = 0; i < net->n; i++) {
        if (!(mask & (1u << i))) {
            continue;
        }
        const struct membership *m = net->nodes[i].m;
        if (membership_ring(m) == NULL) {
            return false;
        }
        if (first == NULL) {
            first = m;
            continue;
        }
        if (membership_version(m) != membership_version(first) ||
            ring_digest(membership_ring(m)) !=
                ring_digest(membership_ring(first)) ||
            strcmp(membership_changer(m), membership_changer(first)) != 0) {
            return false;
        }
    }
    return true;
}

static inline bool all_members(struct net *net, unsigned mask)
{
    for (int i = 0; i < net->n; i++) {
        if ((mask & (1u << i)) &&
            membership_phase(net->nodes[i].m) != MEMBERSHIP_MEMBER) {
            return false;
        }
    }
    return true;
}

/* Steps until `mask` nodes are converged members; returns the time. */
static inline uint64_t net_run_until_converged(struct net *net,
                                               unsigned mask,
                                               size_t want_valid,
                                               uint64_t max_ms)
{
    while (net_now(net) <= max_ms) {
        if (all_members(net, mask) && net_converged(net, mask)) {
            int first = __builtin_ctz(mask);
            const struct ring *r = membership_ring(net->nodes[first].m);
            if (ring_member_count(r) == want_valid) {
                return net_now(net);
            }
        }
        if (!net_step(net, max_ms + 1)) {
            break;
        }
    }
    return UINT64_MAX;
}

static inline void net_run(struct net *net, uint64_t until_ms)
{
    while (net_step(net, until_ms)) {
    }
}

static inline void do_create(struct net *net, int i)
{
    struct cl_actions acts = {0};
    assert_int_equal(
        membership_create_cluster(net->nodes[i].m, net_now(net), &acts), RK_OK);
    net_actions(net, i, &acts);
}

static inline void do_join(struct net *net, int i, int seed)
{
    struct cl_actions acts = {0};
    assert_int_equal(membership_join_start(
                         net->nodes[i].m, net->nodes[seed].host,
                         net->nodes[seed].cfg.peer_port, net_now(net), &acts),
                     RK_OK);
    net_actions(net, i, &acts);
}

/* Forms a cluster of nodes 0..n-1 (all joining node 0). */
static inline void form(struct net *net, int n)
{
    do_create(net, 0);
    for (int i = 1; i < n; i++) {
        do_join(net, i, 0);
    }
    unsigned mask = (1u << n) - 1;
    assert_int_not_equal(
        net_run_until_converged(net, mask, (size_t)n, net_now(net) + 20000),
        UINT64_MAX);
}

#endif /* RINGKV_TEST_MEMBERSHIP_NET_H */

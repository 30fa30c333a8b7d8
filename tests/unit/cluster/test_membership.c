/*
 * test_membership.c - cluster/membership: state bytes (round trip, every
 * truncation, random garbage and bit flips rejected or re-encoded
 * consistently), the gossip merge order (commutative, associative,
 * idempotent over random states), and whole flows of machines on the
 * shared simulated network (tests/sim/simnet.h: a virtual clock, a seeded
 * RNG, messages through the real peer codec, 1-10 ms delays, optional
 * loss, unreachable nodes): a 5-node cluster converges
 * within 3 s of a join, join retry and timeout, concurrent joins at two
 * seeds, remove of a dead node, leave refused while holding data, restart
 * from persisted bytes.  Random tests print their seed (STYLE.md 1.7).
 *
 * With RK_CLUSTER_SEED_DIR=DIR in the environment,
 * test_membership_fuzz_seeds_decode_cleanly writes the libFuzzer seeds of
 * tests/fuzz/corpus/fuzz_cluster_state/ into DIR:
 *   RK_CLUSTER_SEED_DIR=tests/fuzz/corpus/fuzz_cluster_state \
 *       build/test_membership
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
#include "proto/peer.h"

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

static void net_recv(void *data, int to, int from, const void *f, size_t len);
static void net_tick(void *data, int i);

static uint64_t net_now(const struct net *net)
{
    return simnet_now(net->sim);
}

/* Arms node i's timer at its machine's next deadline. */
static void net_arm(struct net *net, int i)
{
    uint64_t d = membership_next_deadline_ms(net->nodes[i].m);
    if (d != simnet_timer(net->sim, i)) {
        assert_int_equal(simnet_arm(net->sim, i, d), RK_OK);
    }
}

/* Node i's --tls-port is net_tls_base + i when net_tls_base is not 0. */
static uint16_t net_tls_base;

static void net_init(struct net *net, int n, uint64_t seed, unsigned drop)
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

static void net_fini(struct net *net)
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
static void net_set_alive(struct net *net, int i, bool alive)
{
    simnet_set_down(net->sim, i, !alive);
    if (alive && net->nodes[i].m != NULL) {
        net_arm(net, i);
    }
}

static int net_resolve(struct net *net, const struct cl_action *a)
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

static void net_actions(struct net *net, int from, struct cl_actions *acts)
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

static void net_recv(void *data, int to, int from, const void *f, size_t len)
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
static void net_mark_received(struct net *net, int i, struct cl_actions *acts)
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

static void net_tick(void *data, int i)
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
static bool net_step(struct net *net, uint64_t until_ms)
{
    return simnet_step(net->sim, until_ms);
}

/* Whether every alive node listed in `mask` holds the same state. */
static bool net_converged(struct net *net, unsigned mask)
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

static bool all_members(struct net *net, unsigned mask)
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
static uint64_t net_run_until_converged(struct net *net,
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

static void net_run(struct net *net, uint64_t until_ms)
{
    while (net_step(net, until_ms)) {
    }
}

static void do_create(struct net *net, int i)
{
    struct cl_actions acts = {0};
    assert_int_equal(
        membership_create_cluster(net->nodes[i].m, net_now(net), &acts), RK_OK);
    net_actions(net, i, &acts);
}

static void do_join(struct net *net, int i, int seed)
{
    struct cl_actions acts = {0};
    assert_int_equal(membership_join_start(
                         net->nodes[i].m, net->nodes[seed].host,
                         net->nodes[seed].cfg.peer_port, net_now(net), &acts),
                     RK_OK);
    net_actions(net, i, &acts);
}

/* Forms a cluster of nodes 0..n-1 (all joining node 0). */
static void form(struct net *net, int n)
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

/* ---- state bytes -------------------------------------------------------- */

/* Encoded state of a 4-node cluster (all joined at node 0). */
static void sample_state(struct rk_buf *out, uint64_t seed)
{
    struct net net;
    net_init(&net, 4, seed, 0);
    form(&net, 4);
    struct peer_bytes b = membership_state_bytes(net.nodes[0].m);
    assert_int_equal(rk_buf_append(out, b.ptr, b.len), RK_OK);
    net_fini(&net);
}

static void test_membership_state_round_trips(void **state)
{
    (void)state;
    struct rk_buf enc = {0}, again = {0};
    sample_state(&enc, 1);
    char err[256] = "";
    assert_int_equal(
        membership_state_check(enc.base, enc.len, &again, err, sizeof(err)),
        RK_OK);
    assert_int_equal(again.len, enc.len);
    assert_memory_equal(again.base, enc.base, enc.len);
    printf("# a 4-node state (Q=64) is %zu bytes\n", enc.len);
    rk_buf_fini(&enc);
    rk_buf_fini(&again);
}

static void test_membership_state_rejects_every_truncation(void **state)
{
    (void)state;
    struct rk_buf enc = {0};
    sample_state(&enc, 2);
    char err[256];
    for (size_t len = 0; len < enc.len; len++) {
        int rc = membership_state_check(enc.base, len, NULL, err, sizeof(err));
        assert_int_equal(rc, RK_EPROTO);
    }
    assert_int_equal(rk_buf_append(&enc, "", 1), RK_OK);
    assert_int_equal(
        membership_state_check(enc.base, enc.len, NULL, err, sizeof(err)),
        RK_EPROTO);
    assert_non_null(strstr(err, "trailing"));
    /* An unknown format version is RK_EVERSION with a clear message. */
    enc.base[4] = MEMBERSHIP_FORMAT_VERSION + 1;
    assert_int_equal(
        membership_state_check(enc.base, enc.len, NULL, err, sizeof(err)),
        RK_EVERSION);
    assert_non_null(strstr(err, "format 5"));
    /* Format 3 (no TLS ports) is read from a saved state only. */
    enc.base[4] = MEMBERSHIP_FORMAT_V3;
    assert_int_equal(
        membership_state_check(enc.base, enc.len, NULL, err, sizeof(err)),
        RK_EVERSION);
    /* Format 1 (keys placed by XXH3) is refused in gossip and checks. */
    enc.base[4] = 1;
    assert_int_equal(
        membership_state_check(enc.base, enc.len, NULL, err, sizeof(err)),
        RK_EVERSION);
    rk_buf_fini(&enc);
}

/* The saved state of `m` nodes (n_val 3) as format 1 bytes, and node 0's
 * config (valid until net_fini). */
static void v1_state(struct net *net, int m, struct rk_buf *out)
{
    net_init(net, m, 7, 0);
    form(net, m);
    struct peer_bytes b = membership_state_bytes(net->nodes[0].m);
    assert_int_equal(rk_buf_append(out, b.ptr, b.len), RK_OK);
    assert_int_equal((unsigned char)out->base[4], MEMBERSHIP_FORMAT_VERSION);
    out->base[4] = MEMBERSHIP_FORMAT_V1;
    /* formats 1 to 3 have no TLS ports (2 bytes per member, all 0 here) */
    for (int i = 0; i < 2 * m; i++) {
        assert_int_equal(out->base[out->len - 1 - (size_t)i], 0);
    }
    out->len -= 2 * (size_t)m;
    /* formats 1 and 2 end with the ring: no transition section */
    assert_int_equal(out->base[out->len - 1], 0);
    out->len--;
}

/* Issue 13 item 1: format 1 placed keys by XXH3.  A saved format 1 state
 * is upgraded when every member holds every key (M <= N: placement could
 * not differ), and refused with a reason and what to do otherwise. */
static void test_membership_upgrades_format_1_only_when_m_le_n(void **state)
{
    (void)state;
    for (int m = 1; m <= 4; m++) {
        struct net net;
        struct rk_buf enc = {0};
        v1_state(&net, m, &enc);
        struct membership *mb = NULL;
        char err[1024] = "";
        int rc = membership_create(&net.nodes[0].cfg, enc.base, enc.len, &mb,
                                   err, sizeof(err));
        if (m <= 3) {
            assert_int_equal(rc, RK_OK);
            assert_int_equal(membership_phase(mb), MEMBERSHIP_MEMBER);
            struct peer_bytes b = membership_state_bytes(mb);
            const unsigned char *p = (const unsigned char *)b.ptr;
            assert_int_equal(p[4], MEMBERSHIP_FORMAT_VERSION);
            /* + "no transition" + no TLS port per member */
            assert_int_equal(b.len, enc.len + 1 + 2 * (size_t)m);
            assert_memory_equal(p + 5, enc.base + 5, enc.len - 5);
            for (size_t k = enc.len; k < b.len; k++) {
                assert_int_equal(p[k], 0);
            }
        } else {
            assert_int_equal(rc, RK_EVERSION);
            assert_null(mb);
            printf("# %s\n", err);
            assert_non_null(strstr(err, "format 1"));
            assert_non_null(strstr(err, "hash slot"));
            assert_non_null(strstr(err, "empty --data-dir"));
        }
        membership_destroy(mb);
        rk_buf_fini(&enc);
        net_fini(&net);
    }
}

/* Issue 15: each member's --tls-port travels in the state (format 4), so
 * CLUSTER SLOTS can name it to TLS clients.  A JOIN does not carry it: a
 * node admitted without it publishes it as an address change; a saved
 * format 3 state (no TLS ports) is read, and each node publishes its own
 * port again the same way. */
static void test_membership_members_publish_their_tls_ports(void **state)
{
    (void)state;
    const int n = 3;
    net_tls_base = 6400;
    struct net net;
    net_init(&net, n, 11, 0);
    form(&net, n);
    net_run(&net, net_now(&net) + 5000);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            struct membership_member mm;
            assert_true(
                membership_member_find(net.nodes[i].m, net.nodes[j].id, &mm));
            assert_int_equal(mm.tls_port, 6400 + j);
            assert_int_equal(mm.resp_port, 6379);
        }
    }
    /* the state round-trips with its TLS ports */
    struct peer_bytes b = membership_state_bytes(net.nodes[0].m);
    char err[256] = "";
    assert_int_equal(
        membership_state_check(b.ptr, b.len, NULL, err, sizeof(err)), RK_OK);
    /* saved as format 3 (without the ports): read at start, with no TLS
     * ports, and node 0 publishes its own at its next tick */
    struct rk_buf v3 = {0};
    assert_int_equal(rk_buf_append(&v3, b.ptr, b.len - 2 * (size_t)n), RK_OK);
    v3.base[4] = MEMBERSHIP_FORMAT_V3;
    struct membership *mb = NULL;
    assert_int_equal(membership_create(&net.nodes[0].cfg, v3.base, v3.len, &mb,
                                       err, sizeof(err)),
                     RK_OK);
    struct membership_member mm;
    assert_true(membership_member_find(mb, net.nodes[1].id, &mm));
    assert_int_equal(mm.tls_port, 0);
    assert_int_equal(membership_next_deadline_ms(mb), 0); /* to publish */
    static struct cl_actions acts; /* large: not on the stack */
    cl_actions_clear(&acts);
    assert_int_equal(membership_tick(mb, net_now(&net), &acts), RK_OK);
    assert_true(membership_member_find(mb, net.nodes[0].id, &mm));
    assert_int_equal(mm.tls_port, 6400);
    membership_destroy(mb);
    rk_buf_fini(&v3);
    net_fini(&net);
}

static int reset_tls_base(void **state)
{
    (void)state;
    net_tls_base = 0; /* also when an assertion above failed */
    return 0;
}

static void test_membership_state_rejects_random_garbage(void **state)
{
    (void)state;
    const uint64_t seed = 20261125;
    printf("# seed %" PRIu64 "\n", seed);
    struct rk_rng rng;
    rk_rng_seed(&rng, seed);
    struct rk_buf enc = {0};
    sample_state(&enc, 3);
    char *buf = rk_malloc(enc.len + 64);
    assert_non_null(buf);
    long accepted = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len;
        if (iter % 4 == 0) {
            /* Pure garbage, sometimes with the right magic and version. */
            len = rk_rng_below(&rng, enc.len + 64);
            for (size_t i = 0; i < len; i++) {
                buf[i] = (char)rk_rng_next(&rng);
            }
            if (len >= 5 && iter % 8 == 0) {
                memcpy(buf, "RKCS\1", 5);
            }
        } else {
            /* The valid state with 1..4 random byte or bit changes. */
            len = enc.len;
            memcpy(buf, enc.base, len);
            int k = 1 + (int)rk_rng_below(&rng, 4);
            for (int j = 0; j < k; j++) {
                size_t at = rk_rng_below(&rng, len);
                if (rk_rng_below(&rng, 2)) {
                    buf[at] ^= (char)(1u << rk_rng_below(&rng, 8));
                } else {
                    buf[at] = (char)rk_rng_next(&rng);
                }
            }
        }
        struct rk_buf re = {0}, re2 = {0};
        int rc = membership_state_check(buf, len, &re, NULL, 0);
        if (rc == RK_OK) {
            /* A state has one encoding: whatever decodes re-encodes to
             * exactly its input. */
            accepted++;
            assert_int_equal(re.len, len);
            assert_memory_equal(re.base, buf, len);
            assert_int_equal(
                membership_state_check(re.base, re.len, &re2, NULL, 0), RK_OK);
            assert_int_equal(re.len, re2.len);
            assert_memory_equal(re.base, re2.base, re.len);
        } else {
            assert_true(rc == RK_EPROTO || rc == RK_EVERSION);
            rejected++;
        }
        rk_buf_fini(&re);
        rk_buf_fini(&re2);
    }
    printf(
        "# 20000 inputs: %ld rejected, %ld accepted (harmless changes "
        "such as a port or host byte)\n",
        rejected, accepted);
    assert_true(rejected > 15000);
    rk_free(buf);
    rk_buf_fini(&enc);
}

/* ---- merge order -------------------------------------------------------- */

#define POOL 24

struct pool
{
    struct rk_buf s[POOL];
    int n;
};

/*
 * Random states that share an ancestor: a 5-node cluster, then each of
 * several nodes (restarted from the common state) applies a random number
 * of random changes alone, so versions collide with different changers,
 * and a few nodes share one id (same version and changer, other bytes).
 */
static void make_pool(struct pool *p, uint64_t seed)
{
    struct rk_rng rng;
    rk_rng_seed(&rng, seed);
    struct net net;
    net_init(&net, 5, seed, 0);
    form(&net, 5);
    struct rk_buf base = {0};
    struct peer_bytes b = membership_state_bytes(net.nodes[0].m);
    assert_int_equal(rk_buf_append(&base, b.ptr, b.len), RK_OK);
    memset(p, 0, sizeof(*p));
    for (int k = 0; k < POOL; k++) {
        int who = (int)rk_rng_below(&rng, 5);
        struct membership *m = NULL;
        assert_int_equal(membership_create(&net.nodes[who].cfg, base.base,
                                           base.len, &m, NULL, 0),
                         RK_OK);
        int changes = (int)rk_rng_below(&rng, 4);
        for (int c = 0; c < changes; c++) {
            struct cl_actions acts = {0};
            if (rk_rng_below(&rng, 2)) {
                char id[32], host[32];
                snprintf(id, sizeof(id), "x-%d", (int)rk_rng_below(&rng, 6));
                snprintf(host, sizeof(host), "h%d", (int)rk_rng_below(&rng, 3));
                struct peer_msg msg = {.type = PEER_JOIN};
                msg.join = (struct peer_join){
                    .req_id = 1,
                    .node_id = {id, strlen(id)},
                    .host = {host, strlen(host)},
                    .peer_port = 1,
                };
                assert_int_equal(membership_on_message(m, &msg, 0, &acts),
                                 RK_OK);
            } else {
                char id[16];
                snprintf(id, sizeof(id), "node-%d", (int)rk_rng_below(&rng, 5));
                int rc = membership_remove(m, id, true, 0, &acts);
                assert_true(rc == RK_OK || rc == RK_EINVAL ||
                            rc == RK_ENOTFOUND);
            }
        }
        b = membership_state_bytes(m);
        assert_int_equal(rk_buf_append(&p->s[k], b.ptr, b.len), RK_OK);
        membership_destroy(m);
    }
    p->n = POOL;
    rk_buf_fini(&base);
    net_fini(&net);
}

static void pool_fini(struct pool *p)
{
    for (int i = 0; i < p->n; i++) {
        rk_buf_fini(&p->s[i]);
    }
}

static const struct rk_buf *merge(const struct rk_buf *a,
                                  const struct rk_buf *b)
{
    return membership_state_compare(a->base, a->len, b->base, b->len) >= 0 ? a
                                                                           : b;
}

static bool same(const struct rk_buf *a, const struct rk_buf *b)
{
    return a->len == b->len && memcmp(a->base, b->base, a->len) == 0;
}

static void test_membership_merge_is_commutative_associative_idempotent(
    void **state)
{
    (void)state;
    long cases = 0, distinct_same_version = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        printf("# seed %" PRIu64 "\n", seed);
        struct pool p;
        make_pool(&p, seed);
        for (int i = 0; i < p.n; i++) {
            assert_true(same(merge(&p.s[i], &p.s[i]), &p.s[i]));
            for (int j = 0; j < p.n; j++) {
                const struct rk_buf *ab = merge(&p.s[i], &p.s[j]);
                const struct rk_buf *ba = merge(&p.s[j], &p.s[i]);
                assert_true(same(ab, ba));
                int cij = membership_state_compare(p.s[i].base, p.s[i].len,
                                                   p.s[j].base, p.s[j].len);
                if (cij == 0) {
                    assert_true(same(&p.s[i], &p.s[j]));
                } else if (!same(&p.s[i], &p.s[j]) &&
                           memcmp(p.s[i].base + 5, p.s[j].base + 5, 8) == 0) {
                    distinct_same_version++;
                }
                for (int k = 0; k < p.n; k++) {
                    const struct rk_buf *l =
                        merge(merge(&p.s[i], &p.s[j]), &p.s[k]);
                    const struct rk_buf *r =
                        merge(&p.s[i], merge(&p.s[j], &p.s[k]));
                    assert_true(same(l, r));
                    cases++;
                }
            }
        }
        /* Machines fed the states in two random orders end equal. */
        struct rk_rng rng;
        rk_rng_seed(&rng, seed);
        struct rk_buf ends[2] = {{0}, {0}};
        for (int round = 0; round < 2; round++) {
            int order[POOL];
            for (int i = 0; i < POOL; i++) {
                order[i] = i;
            }
            for (int i = POOL - 1; i > 0; i--) {
                int j = (int)rk_rng_below(&rng, (uint64_t)i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            struct membership_config cfg = {
                .node_id = "node-0",
                .host = "10.0.0.1",
                .peer_port = 7000,
                .cluster_name = "test",
            };
            struct membership *m = NULL;
            assert_int_equal(membership_create(&cfg, p.s[order[0]].base,
                                               p.s[order[0]].len, &m, NULL, 0),
                             RK_OK);
            const struct rk_buf *want = &p.s[order[0]];
            for (int i = 0; i < POOL; i++) {
                const struct rk_buf *s = &p.s[order[i]];
                struct peer_msg msg = {.type = PEER_GOSSIP};
                msg.gossip.state = (struct peer_bytes){s->base, s->len};
                msg.gossip.from = (struct peer_bytes){"node-1", 6};
                struct cl_actions acts = {0};
                assert_int_equal(membership_on_message(m, &msg, 0, &acts),
                                 RK_OK);
                want = merge(want, s);
            }
            struct peer_bytes got = membership_state_bytes(m);
            assert_int_equal(got.len, want->len);
            assert_memory_equal(got.ptr, want->base, got.len);
            assert_int_equal(rk_buf_append(&ends[round], got.ptr, got.len),
                             RK_OK);
            membership_destroy(m);
        }
        assert_true(same(&ends[0], &ends[1]));
        rk_buf_fini(&ends[0]);
        rk_buf_fini(&ends[1]);
        pool_fini(&p);
    }
    printf(
        "# %ld associativity cases, %ld ordered pairs of distinct states "
        "with equal versions\n",
        cases, distinct_same_version);
    assert_true(distinct_same_version > 0);
}

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

/* ---- allocation failures (STYLE.md 1.7) ---------------------------------- */

static long g_alloc_calls, g_alloc_fail_at;

/* ---- replace and the N floor (issue 14 items 3 and 6) ------------------ */

static void do_replace(struct net *net, int i, int seed, const char *old_id)
{
    struct cl_actions acts = {0};
    assert_int_equal(
        membership_replace_start(net->nodes[i].m, net->nodes[seed].host,
                                 net->nodes[seed].cfg.peer_port, old_id,
                                 net_now(net), &acts),
        RK_OK);
    net_actions(net, i, &acts);
}

/* Whether ring b is ring a with member old_id called new_id: the same
 * owner for every partition, so the same preference lists but for it. */
static void assert_renamed(const struct ring *a,
                           const struct ring *b,
                           const char *old_id,
                           const char *new_id)
{
    assert_int_equal(ring_size(a), ring_size(b));
    assert_int_equal(ring_member_count(a), ring_member_count(b));
    for (uint32_t p = 0; p < ring_size(a); p++) {
        const char *ida = ring_member_id(a, ring_owner(a, p), NULL);
        const char *idb = ring_member_id(b, ring_owner(b, p), NULL);
        assert_string_equal(strcmp(ida, old_id) == 0 ? new_id : ida, idb);
        const char *la[RING_MAX_N], *lb[RING_MAX_N];
        size_t na = ring_preflist_ids(a, p, la),
               nb = ring_preflist_ids(b, p, lb);
        assert_int_equal(na, nb);
        for (size_t j = 0; j < na; j++) {
            assert_string_equal(strcmp(la[j], old_id) == 0 ? new_id : la[j],
                                lb[j]);
        }
    }
}

/* Steps until node `i` holds a transition (or the time runs out). */
static void run_until_transition(struct net *net, int i, uint64_t max_ms)
{
    while (membership_next_ring(net->nodes[i].m) == NULL &&
           net_step(net, max_ms)) {
    }
    assert_non_null(membership_next_ring(net->nodes[i].m));
}

static void test_membership_replace_moves_only_the_old_nodes_partitions(
    void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 6, 41, 0);
    form(&net, 5); /* node-5 stays out: the new node */
    struct membership *m0 = net.nodes[0].m;
    struct ring *before = NULL;
    assert_int_equal(ring_clone(membership_ring(m0), &before), RK_OK);
    uint64_t v = membership_version(m0);
    do_replace(&net, 5, 0, "node-2");
    run_until_transition(&net, 0, net_now(&net) + 1000);
    /* One change: node-5 joining and node-2 leaving in the same version,
     * and the next ring is the current one with node-2 renamed, so node-5
     * is a pending owner of exactly node-2's partitions. */
    assert_int_equal(membership_version(m0), v + 1);
    struct membership_member mm;
    assert_true(membership_member_find(m0, "node-2", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_STATUS_LEAVING);
    assert_true(membership_member_find(m0, "node-5", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_STATUS_JOINING);
    assert_renamed(membership_ring(m0), membership_next_ring(m0), "node-2",
                   "node-5");
    uint32_t pending = 0;
    for (uint32_t p = 0; p < ring_size(before); p++) {
        const char *ids[RING_MAX_N];
        size_t n = ring_preflist_ids(before, p, ids);
        bool had = false;
        for (size_t j = 0; j < n; j++) {
            had |= strcmp(ids[j], "node-2") == 0;
        }
        for (int k = 0; k < 5; k++) {
            bool pend = membership_pending_for(m0, p, net.nodes[k].id, NULL);
            assert_false(pend); /* no old member gains a partition */
        }
        assert_int_equal(membership_pending_for(m0, p, "node-5", NULL), had);
        pending += had;
    }
    printf(
        "# replace of node-2 by node-5: %u of %u partitions pending, "
        "all node-2's\n",
        pending, ring_size(before));
    assert_true(pending > 0);
    uint64_t t = net_run_until_converged(&net, 0x3b, 5, net_now(&net) + 5000);
    assert_int_not_equal(t, UINT64_MAX);
    net_run(&net, net_now(&net) + 2000);
    assert_null(membership_next_ring(m0));
    assert_renamed(before, membership_ring(m0), "node-2", "node-5");
    assert_true(membership_member_find(m0, "node-5", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_VALID);
    assert_true(membership_member_find(m0, "node-2", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_REMOVED);
    assert_int_equal(net.nodes[5].join_done, 1);
    assert_int_equal(membership_phase(net.nodes[5].m), MEMBERSHIP_MEMBER);
    assert_int_equal(membership_phase(net.nodes[2].m), MEMBERSHIP_REMOVED_SELF);
    ring_destroy(before);
    net_fini(&net);
}

static void test_membership_replace_of_a_dead_node(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 4, 42, 0);
    form(&net, 3); /* N = 3: every member holds every partition */
    net_set_alive(&net, 1, false);
    do_replace(&net, 3, 2, "node-1");
    /* The survivors and node-3 agree on 3 members, node-1 removed. */
    uint64_t t = net_run_until_converged(&net, 0xd, 3, net_now(&net) + 5000);
    assert_int_not_equal(t, UINT64_MAX);
    net_run(&net, net_now(&net) + 2000);
    struct membership *m0 = net.nodes[0].m;
    assert_null(membership_next_ring(m0));
    assert_int_equal(ring_find_member(membership_ring(m0), "node-1", 6), -1);
    assert_true(ring_find_member(membership_ring(m0), "node-3", 6) >= 0);
    struct membership_member mm;
    assert_true(membership_member_find(m0, "node-1", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_REMOVED);
    /* node-1 comes back and learns it was replaced. */
    net_set_alive(&net, 1, true);
    net_run(&net, net_now(&net) + 3000);
    assert_int_equal(membership_phase(net.nodes[1].m), MEMBERSHIP_REMOVED_SELF);
    net_fini(&net);
}

static void test_membership_replace_refusals_say_why(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 5, 43, 0);
    form(&net, 3);
    struct cl_actions acts = {0};
    /* Bad arguments fail at once. */
    assert_int_equal(membership_replace_start(net.nodes[3].m, "10.0.0.1", 7000,
                                              "node-3", net_now(&net), &acts),
                     RK_EINVAL);
    assert_non_null(strstr(membership_errmsg(net.nodes[3].m), "itself"));
    assert_int_equal(membership_replace_start(net.nodes[3].m, "10.0.0.1", 7000,
                                              "", net_now(&net), &acts),
                     RK_EINVAL);
    assert_int_equal(acts.len, 0);
    /* The seed refuses an unknown member, and a member as the new node. */
    do_replace(&net, 3, 0, "nope");
    net_run(&net, net_now(&net) + 500);
    assert_int_equal(net.nodes[3].join_failed, 1);
    assert_int_equal(net.nodes[3].join_failed_status, RK_ENOTFOUND);
    assert_non_null(strstr(net.nodes[3].join_failed_text, "no such member"));
    assert_int_equal(membership_phase(net.nodes[3].m), MEMBERSHIP_NONE);
    /* A transition in progress: node-3 is admitted, then dies before it
     * received anything, so the transition stays; node-4's replace is
     * refused meanwhile. */
    uint64_t v = membership_version(net.nodes[0].m);
    do_join(&net, 3, 0);
    run_until_transition(&net, 0, net_now(&net) + 1000);
    net_set_alive(&net, 3, false);
    do_replace(&net, 4, 0, "node-1");
    net_run(&net, net_now(&net) + 2000);
    assert_non_null(membership_next_ring(net.nodes[0].m));
    assert_int_equal(net.nodes[4].join_failed, 1);
    assert_int_equal(net.nodes[4].join_failed_status, RK_EBUSY);
    assert_non_null(
        strstr(net.nodes[4].join_failed_text, "transition is in progress"));
    printf("# replace during a transition: %s\n",
           net.nodes[4].join_failed_text);
    assert_true(membership_version(net.nodes[0].m) > v);
    net_fini(&net);
}

static void test_membership_leave_and_remove_below_n_need_force(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 4, 44, 0);
    form(&net, 4);
    struct membership *m0 = net.nodes[0].m;
    struct cl_actions acts = {0};
    /* 4 -> 3 = N: no force needed. */
    assert_int_equal(
        membership_remove(m0, "node-3", false, net_now(&net), &acts), RK_OK);
    net_actions(&net, 0, &acts);
    assert_int_not_equal(
        net_run_until_converged(&net, 0x7, 3, net_now(&net) + 5000),
        UINT64_MAX);
    net_run(&net, net_now(&net) + 1000);
    /* 3 -> 2 < N: refused without force, nothing changes. */
    uint64_t v = membership_version(m0);
    assert_int_equal(
        membership_remove(m0, "node-2", false, net_now(&net), &acts),
        RK_ERANGE);
    printf("# %s\n", membership_errmsg(m0));
    assert_non_null(strstr(membership_errmsg(m0), "2 members, fewer than N=3"));
    assert_non_null(strstr(membership_errmsg(m0), "FORCE"));
    struct membership *m1 = net.nodes[1].m;
    assert_int_equal(membership_leave(m1, true, false, net_now(&net), &acts),
                     RK_ERANGE);
    assert_non_null(strstr(membership_errmsg(m1), "this leave would leave 2"));
    assert_int_equal(acts.len, 0);
    assert_int_equal(membership_version(m0), v);
    /* With force it goes ahead. */
    assert_int_equal(membership_leave(m1, true, true, net_now(&net), &acts),
                     RK_OK);
    net_actions(&net, 1, &acts);
    assert_int_not_equal(
        net_run_until_converged(&net, 0x5, 2, net_now(&net) + 5000),
        UINT64_MAX);
    net_fini(&net);
}

static void plan_add_ok(struct membership *m,
                        enum membership_plan_op op,
                        const char *id,
                        const char *old,
                        const struct net_node *nd)
{
    struct membership_plan_item it = {.op = op, .node_id = id, .old_id = old};
    if (nd != NULL) {
        it.host = nd->host;
        it.peer_port = nd->cfg.peer_port;
        it.resp_port = nd->cfg.resp_port;
    }
    if (membership_plan_add(m, &it) != RK_OK) {
        fail_msg("plan %d %s: %s", (int)op, id, membership_errmsg(m));
    }
}

static void test_membership_commit_applies_the_plan_as_one_change(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 5, 45, 0);
    form(&net, 3);
    struct membership *m0 = net.nodes[0].m;
    struct cl_actions acts = {0};
    /* An empty plan does not commit. */
    assert_int_equal(membership_commit(m0, false, net_now(&net), &acts),
                     RK_EINVAL);
    assert_non_null(strstr(membership_errmsg(m0), "plan is empty"));
    /* node-3 and node-4 (in no cluster) join, node-2 leaves. */
    plan_add_ok(m0, MEMBERSHIP_PLAN_JOIN, "node-3", NULL, &net.nodes[3]);
    plan_add_ok(m0, MEMBERSHIP_PLAN_JOIN, "node-4", NULL, &net.nodes[4]);
    plan_add_ok(m0, MEMBERSHIP_PLAN_LEAVE, "node-2", NULL, NULL);
    /* a change naming a node again, and a member as a new node, are
     * refused */
    struct membership_plan_item dup = {.op = MEMBERSHIP_PLAN_REMOVE,
                                       .node_id = "node-2"};
    assert_int_equal(membership_plan_add(m0, &dup), RK_EEXIST);
    struct membership_plan_item mem = {.op = MEMBERSHIP_PLAN_JOIN,
                                       .node_id = "node-1",
                                       .host = "10.0.0.2",
                                       .peer_port = 7001};
    assert_int_equal(membership_plan_add(m0, &mem), RK_EBUSY);
    assert_int_equal(membership_plan_len(m0), 3);
    /* The preview changes nothing. */
    uint64_t v = membership_version(m0);
    struct ring *next = NULL;
    size_t staying = 0;
    assert_int_equal(membership_plan_preview(m0, &next, &staying), RK_OK);
    assert_int_equal(staying, 4);
    assert_int_equal(ring_member_count(next), 4);
    assert_int_equal(ring_find_member(next, "node-2", 6), -1);
    ring_destroy(next);
    assert_int_equal(membership_version(m0), v);
    assert_null(membership_next_ring(m0));
    /* One commit: one version with both joins and the leave. */
    assert_int_equal(membership_commit(m0, false, net_now(&net), &acts), RK_OK);
    assert_int_equal(membership_version(m0), v + 1);
    assert_int_equal(membership_plan_len(m0), 0);
    struct membership_member mm;
    assert_true(membership_member_find(m0, "node-3", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_STATUS_JOINING);
    assert_true(membership_member_find(m0, "node-4", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_STATUS_JOINING);
    assert_true(membership_member_find(m0, "node-2", &mm));
    assert_int_equal(mm.status, MEMBERSHIP_STATUS_LEAVING);
    net_actions(&net, 0, &acts);
    /* The new nodes adopt the state from the commit's gossip (no JOIN). */
    uint64_t t = net_run_until_converged(&net, 0x1b, 4, net_now(&net) + 5000);
    assert_int_not_equal(t, UINT64_MAX);
    net_run(&net, net_now(&net) + 2000);
    assert_null(membership_next_ring(m0));
    assert_int_equal(membership_phase(net.nodes[3].m), MEMBERSHIP_MEMBER);
    assert_int_equal(membership_phase(net.nodes[4].m), MEMBERSHIP_MEMBER);
    assert_int_equal(membership_phase(net.nodes[2].m), MEMBERSHIP_REMOVED_SELF);
    assert_int_equal(net.nodes[3].joins_sent, 0);
    /* Below N: a plan removing two of four needs force. */
    plan_add_ok(m0, MEMBERSHIP_PLAN_REMOVE, "node-3", NULL, NULL);
    plan_add_ok(m0, MEMBERSHIP_PLAN_REMOVE, "node-4", NULL, NULL);
    v = membership_version(m0);
    assert_int_equal(membership_commit(m0, false, net_now(&net), &acts),
                     RK_ERANGE);
    assert_non_null(strstr(membership_errmsg(m0), "this plan would leave 2"));
    assert_int_equal(membership_version(m0), v);
    assert_int_equal(membership_plan_len(m0), 2);
    membership_plan_clear(m0);
    assert_int_equal(membership_plan_len(m0), 0);
    net_fini(&net);
}

static void test_membership_plan_of_replaces_keeps_partitions_in_place(
    void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 7, 46, 0);
    form(&net, 5);
    struct membership *m0 = net.nodes[0].m;
    struct ring *before = NULL;
    assert_int_equal(ring_clone(membership_ring(m0), &before), RK_OK);
    plan_add_ok(m0, MEMBERSHIP_PLAN_REPLACE, "node-5", "node-1", &net.nodes[5]);
    plan_add_ok(m0, MEMBERSHIP_PLAN_REPLACE, "node-6", "node-3", &net.nodes[6]);
    struct cl_actions acts = {0};
    assert_int_equal(membership_commit(m0, false, net_now(&net), &acts), RK_OK);
    struct ring *step = NULL;
    assert_int_equal(ring_rename_member(before, "node-1", "node-5", &step),
                     RK_OK);
    assert_renamed(step, membership_next_ring(m0), "node-3", "node-6");
    net_actions(&net, 0, &acts);
    uint64_t t = net_run_until_converged(&net, 0x75, 5, net_now(&net) + 5000);
    assert_int_not_equal(t, UINT64_MAX);
    net_run(&net, net_now(&net) + 2000);
    assert_renamed(step, membership_ring(m0), "node-3", "node-6");
    ring_destroy(step);
    ring_destroy(before);
    net_fini(&net);
}

static bool alloc_fails(void)
{
    return ++g_alloc_calls == g_alloc_fail_at;
}

static void *t_malloc(void *data, size_t size)
{
    (void)data;
    return alloc_fails() ? NULL : malloc(size);
}

static void *t_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return alloc_fails() ? NULL : calloc(n, size);
}

static void *t_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return alloc_fails() ? NULL : realloc(ptr, size);
}

static void t_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static const struct rk_allocator g_failing = {
    .malloc_fn = t_malloc,
    .calloc_fn = t_calloc,
    .realloc_fn = t_realloc,
    .free_fn = t_free,
};

static void fail_nth(long n)
{
    g_alloc_calls = 0;
    g_alloc_fail_at = n;
    rk_set_allocator(&g_failing);
}

static void test_membership_survives_every_allocation_failure(void **state)
{
    (void)state;
    struct rk_buf saved = {0};
    sample_state(&saved, 17);
    struct membership_config cfg = {
        .node_id = "node-1",
        .host = "10.0.0.2",
        .peer_port = 7001,
        .cluster_name = "test",
    };
    struct peer_msg join = {.type = PEER_JOIN};
    join.join = (struct peer_join){
        .req_id = 3,
        .node_id = {"late", 4},
        .host = {"10.0.0.9", 8},
        .peer_port = 7009,
    };
    long n;
    int rc = RK_ENOMEM;
    for (n = 1; rc == RK_ENOMEM; n++) {
        /* Restart from saved bytes, then admit a JOIN. */
        struct membership *m = NULL;
        fail_nth(n);
        rc = membership_create(&cfg, saved.base, saved.len, &m, NULL, 0);
        if (rc == RK_OK) {
            uint64_t v = membership_version(m);
            struct cl_actions acts = {0};
            rc = membership_on_message(m, &join, 0, &acts);
            if (rc == RK_ENOMEM) {
                /* Nothing changed, and the joiner got an error reply. */
                assert_int_equal(membership_version(m), v);
                assert_int_equal(acts.len, 1);
                assert_int_equal(acts.items[0].msg.type, PEER_JOIN_REPLY);
                assert_int_equal(acts.items[0].msg.join_reply.status,
                                 RK_ENOMEM);
            } else {
                assert_int_equal(rc, RK_OK);
                assert_int_equal(membership_version(m), v + 1);
            }
        } else {
            assert_int_equal(rc, RK_ENOMEM);
            assert_null(m);
        }
        rk_set_allocator(NULL);
        membership_destroy(m);
    }
    printf(
        "# restart + JOIN succeeded once %ld allocations could "
        "succeed\n",
        n - 1);
    assert_true(n > 5);
    rk_buf_fini(&saved);
}

static void put_seed(const char *name, struct peer_bytes b)
{
    char err[256] = "";
    assert_int_equal(
        membership_state_check(b.ptr, b.len, NULL, err, sizeof(err)), RK_OK);
    const char *dir = getenv("RK_CLUSTER_SEED_DIR");
    if (dir == NULL) {
        return;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.ptr, 1, b.len, f), b.len);
    assert_int_equal(fclose(f), 0);
}

static void test_membership_fuzz_seeds_decode_cleanly(void **state)
{
    (void)state;
    struct net net;
    net_init(&net, 5, 16, 0);
    do_create(&net, 0);
    put_seed("one_node", membership_state_bytes(net.nodes[0].m));
    for (int i = 1; i < 3; i++) {
        do_join(&net, i, 0);
    }
    net_run(&net, 2000);
    put_seed("three_nodes", membership_state_bytes(net.nodes[1].m));
    for (int i = 3; i < 5; i++) {
        do_join(&net, i, 0);
    }
    net_run(&net, 4000);
    put_seed("five_nodes", membership_state_bytes(net.nodes[2].m));
    struct cl_actions acts = {0};
    assert_int_equal(
        membership_remove(net.nodes[0].m, "node-3", true, net_now(&net), &acts),
        RK_OK);
    net_actions(&net, 0, &acts);
    net_run(&net, 6000);
    put_seed("five_nodes_one_removed", membership_state_bytes(net.nodes[4].m));
    net_fini(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membership_state_round_trips),
        cmocka_unit_test(test_membership_state_rejects_every_truncation),
        cmocka_unit_test(test_membership_state_rejects_random_garbage),
        cmocka_unit_test(
            test_membership_merge_is_commutative_associative_idempotent),
        cmocka_unit_test(
            test_membership_five_nodes_converge_within_3s_of_a_join),
        cmocka_unit_test(test_membership_five_nodes_converge_with_10pct_loss),
        cmocka_unit_test(
            test_membership_concurrent_joins_at_two_seeds_both_end_in_ring),
        cmocka_unit_test(test_membership_join_retries_until_the_seed_answers),
        cmocka_unit_test(test_membership_join_fails_after_the_deadline),
        cmocka_unit_test(test_membership_remove_takes_a_dead_node_out),
        cmocka_unit_test(test_membership_leave_hands_off_then_leaves),
        cmocka_unit_test(test_membership_restarts_from_persisted_bytes),
        cmocka_unit_test(test_membership_refuses_a_version_jump),
        cmocka_unit_test(
            test_membership_remove_of_the_joining_node_ends_the_transition),
        cmocka_unit_test(
            test_membership_leave_reapplied_on_gossip_persists_live_bytes),
        cmocka_unit_test(test_membership_upgrades_format_1_only_when_m_le_n),
        cmocka_unit_test_teardown(
            test_membership_members_publish_their_tls_ports, reset_tls_base),
        cmocka_unit_test(
            test_membership_gossip_from_another_cluster_is_ignored),
        cmocka_unit_test(test_membership_fuzz_seeds_decode_cleanly),
        cmocka_unit_test(
            test_membership_replace_moves_only_the_old_nodes_partitions),
        cmocka_unit_test(test_membership_replace_of_a_dead_node),
        cmocka_unit_test(test_membership_replace_refusals_say_why),
        cmocka_unit_test(test_membership_leave_and_remove_below_n_need_force),
        cmocka_unit_test(test_membership_commit_applies_the_plan_as_one_change),
        cmocka_unit_test(
            test_membership_plan_of_replaces_keeps_partitions_in_place),
        cmocka_unit_test(test_membership_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

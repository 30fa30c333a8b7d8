/*
 * test_membership.c - cluster/membership: state bytes (round trip, every
 * truncation, random garbage and bit flips rejected or re-encoded
 * consistently, formats 1 and 3 read from a saved state, members' TLS
 * ports), the gossip merge order (commutative, associative, idempotent
 * over random states), replace and the N floor, staged plans, and every
 * allocation failure, with machines on the shared simulated network
 * (membership_net.h).  The whole flows (joins, leave, remove, restart)
 * are in test_membership_flows.c.  Random tests print their seed
 * (STYLE.md 1.7).
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
#include "membership_net.h"
#include "proto/peer.h"

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
        cmocka_unit_test(test_membership_upgrades_format_1_only_when_m_le_n),
        cmocka_unit_test_teardown(
            test_membership_members_publish_their_tls_ports, reset_tls_base),
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

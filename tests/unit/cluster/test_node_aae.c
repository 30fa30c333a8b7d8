/*
 * test_node_aae.c - cluster/node_aae.c: active anti-entropy (issue 14
 * item 4), one scenario each, on the deterministic simulator's fixture
 * (tests/sim/sim.h): real node code, a simulated network and clock.  The
 * settings are the simulator's: an exchange every 500 ms per node, 2 at
 * once, 1000 keys repaired per second.
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
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../../sim/sim.h"
#include "cluster/dvv.h"
#include "cluster/node.h"
#include "cluster/replica.h"
#include "common/buf.h"
#include "common/endian.h"
#include "common/error.h"
#include "storage/engine.h"

#define N_KEYS 200

static struct sim *g_s;
static struct sim_result g_res;

static void start(size_t m)
{
    struct sim_config cfg;
    sim_config_default(&cfg);
    cfg.seed = 11;
    cfg.n_nodes = m;
    cfg.nemesis = false;
    assert_true(cfg.aae); /* on by default */
    assert_int_equal(sim_create(&cfg, &g_res, &g_s), RK_OK);
    assert_int_equal(sim_form(g_s), RK_OK);
}

static int teardown(void **state)
{
    (void)state;
    sim_destroy(g_s);
    g_s = NULL;
    return 0;
}

static bool op_done(struct sim *s, void *arg)
{
    (void)s;
    return ((struct sim_op *)arg)->done;
}

static void put(int i, const char *key, const char *value)
{
    struct sim_op op;
    struct node_write_req w = {
        .key = key,
        .klen = strlen(key),
        .own_context = true,
        .value = value,
        .vlen = strlen(value),
        .timestamp = (sim_now(g_s) + 1) << 16,
    };
    assert_int_equal(sim_write(g_s, i, &w, &op), RK_OK);
    assert_true(sim_run_until(g_s, op_done, &op, 10000));
    assert_int_equal(op.status, RK_OK);
}

static void key_name(int k, char *out, size_t cap)
{
    snprintf(out, cap, "key:%d", k);
}

/* How many of the N_KEYS keys node i stores (a node-local read). */
static int held(int i)
{
    struct dvv_obj o;
    dvv_init(&o);
    int cnt = 0;
    for (int k = 0; k < N_KEYS; k++) {
        char key[32];
        key_name(k, key, sizeof(key));
        cnt += replica_read(sim_data(g_s, i), key, strlen(key), &o) == RK_OK;
    }
    dvv_fini(&o);
    return cnt;
}

static bool all_held_by_2(struct sim *s, void *arg)
{
    (void)s;
    (void)arg;
    return held(2) == N_KEYS;
}

/* Whether nodes a and b have equal built trees for every partition. */
static bool roots_equal(int a, int b)
{
    const struct ring *r = membership_ring(node_membership(sim_node(g_s, a)));
    for (uint32_t p = 0; p < ring_size(r); p++) {
        uint64_t ra = 0, rb = 0;
        if (!node_aae_root(sim_node(g_s, a), p, &ra) ||
            !node_aae_root(sim_node(g_s, b), p, &rb) || ra != rb) {
            return false;
        }
    }
    return true;
}

static bool all_roots_equal(struct sim *s, void *arg)
{
    (void)s;
    (void)arg;
    return roots_equal(0, 1) && roots_equal(0, 2);
}

/* The proof, in small: a replica whose data is wiped gets every
 * key back from anti-entropy alone (no client read), and the replicas'
 * trees end equal. */
static void test_node_aae_restores_a_wiped_replica(void **state)
{
    (void)state;
    start(3); /* N=3: every node replicates every partition */
    for (int k = 0; k < N_KEYS; k++) {
        char key[32];
        key_name(k, key, sizeof(key));
        put(k % 3, key, "v");
    }
    assert_true(sim_run_until(g_s, all_roots_equal, NULL, 10000));
    sim_crash(g_s, 2);
    uint64_t seq = 0;
    assert_int_equal(engine_clear(sim_data(g_s, 2), &seq), RK_OK);
    assert_int_equal(sim_restart(g_s, 2), RK_OK);
    assert_int_equal(held(2), 0);
    uint64_t t0 = sim_now(g_s);
    assert_true(sim_run_until(g_s, all_held_by_2, NULL, 60000));
    /* 64 partitions, 3 nodes starting 2 exchanges every 500 ms each, half
     * of those of nodes 0 and 1 with each other: a pass over every
     * partition takes about 64 / 8 s, after node 2 is seen up again
     * (measured: 15.5 s) */
    printf("# restored %d keys in %" PRIu64 " ms (simulated)\n", N_KEYS,
           sim_now(g_s) - t0);
    assert_true(sim_now(g_s) - t0 < 20000);
    assert_true(sim_run_until(g_s, all_roots_equal, NULL, 10000));
    assert_true(node_stats(sim_node(g_s, 2))->aae_trees_built == 64);
    uint64_t repaired = 0;
    for (int i = 0; i < 3; i++) {
        repaired += node_stats(sim_node(g_s, i))->aae_keys_repaired;
    }
    assert_true(repaired >= N_KEYS);
}

/* Replicas in sync exchange roots only: nothing is found differing. */
static void test_node_aae_in_sync_replicas_repair_nothing(void **state)
{
    (void)state;
    start(3);
    for (int k = 0; k < 20; k++) {
        char key[32];
        key_name(k, key, sizeof(key));
        put(0, key, "v");
    }
    sim_run_for(g_s, 2000); /* writes and their read of nothing settle */
    uint64_t before[3], ex[3];
    for (int i = 0; i < 3; i++) {
        before[i] = node_stats(sim_node(g_s, i))->aae_keys_differing;
        ex[i] = node_stats(sim_node(g_s, i))->aae_exchanges;
    }
    sim_run_for(g_s, 20000); /* 64 partitions: >= 16 s per node */
    for (int i = 0; i < 3; i++) {
        const struct node_stats *st = node_stats(sim_node(g_s, i));
        assert_int_equal(st->aae_keys_differing, before[i]);
        assert_true(st->aae_exchanges >= ex[i] + 10);
        assert_int_equal(st->aae_exchange_failures, 0);
    }
    assert_true(roots_equal(0, 1) && roots_equal(1, 2));
    struct node_aae_info ai;
    node_aae_info(sim_node(g_s, 0), sim_now(g_s), &ai);
    assert_int_equal(ai.partitions, 64);
    assert_int_equal(ai.built, 64);
    assert_true(ai.oldest_exchange_s >= 0 && ai.oldest_exchange_s <= 20);
}

/* Sends m to node i as if from `from`; returns node i's refusals since. */
static uint64_t deliver(int i, const char *from, const struct peer_msg *m)
{
    struct node *n = sim_node(g_s, i);
    uint64_t before = node_stats(n)->aae_refused;
    node_on_message(n, from, strlen(from), m, sim_now(g_s));
    sim_after(g_s, i);
    return node_stats(n)->aae_refused - before;
}

/* Bad input (issue 14 item 4): an AAE message from a non-member, for a
 * partition the sender does not replicate, or with indexes out of range,
 * is refused (counted, logged rate-limited) and changes nothing. */
static void test_node_aae_refuses_strangers_and_bad_indexes(void **state)
{
    (void)state;
    start(5); /* N=3 of 5: each partition has two non-replicas */
    sim_run_for(g_s, 3000);
    const struct ring *r = membership_ring(node_membership(sim_node(g_s, 0)));
    /* a partition node 0 replicates, and a member that does not */
    uint32_t p = 0;
    const char *outsider = NULL;
    for (; p < ring_size(r) && outsider == NULL; p++) {
        const char *ids[8];
        size_t cnt = ring_preflist_ids(r, p, ids);
        bool mine = false;
        for (size_t k = 0; k < cnt; k++) {
            mine = mine || strcmp(ids[k], sim_node_id(g_s, 0)) == 0;
        }
        for (int j = 1; mine && j < 5 && outsider == NULL; j++) {
            bool in = false;
            for (size_t k = 0; k < cnt; k++) {
                in = in || strcmp(ids[k], sim_node_id(g_s, j)) == 0;
            }
            outsider = in ? NULL : sim_node_id(g_s, j);
        }
    }
    p--;
    assert_non_null(outsider);
    uint64_t root = 0;
    assert_true(node_aae_root(sim_node(g_s, 0), p, &root));
    struct peer_msg m = {.type = PEER_AAE_TREE};
    m.aae_tree = (struct peer_aae_tree){
        .req_id = 1, .partition = p, .n_leaves = 1024, .level = 0};
    assert_int_equal(deliver(0, outsider, &m), 1);
    assert_int_equal(deliver(0, "stranger", &m), 1);
    m.aae_tree.partition = 100000;
    assert_int_equal(deliver(0, outsider, &m), 1);
    /* a replica asking with another tree size, or a branch out of range */
    const char *ids[8];
    size_t cnt = ring_preflist_ids(r, p, ids);
    const char *peer = strcmp(ids[0], sim_node_id(g_s, 0)) ? ids[0] : ids[1];
    assert_true(cnt >= 2);
    m.aae_tree.partition = p;
    m.aae_tree.n_leaves = 2048;
    assert_int_equal(deliver(0, peer, &m), 1);
    unsigned char bad[4];
    rk_put_le32(bad, 16); /* 1024 leaves: branches 0..15 */
    m.aae_tree.n_leaves = 1024;
    m.aae_tree.level = PEER_AAE_LEVEL_LEAF;
    m.aae_tree.ids = (struct peer_bytes){(const char *)bad, 4};
    assert_int_equal(deliver(0, peer, &m), 1);
    struct peer_msg k = {.type = PEER_AAE_KEYS};
    rk_put_le32(bad, 1024);
    k.aae_keys = (struct peer_aae_keys){.req_id = 2,
                                        .partition = p,
                                        .n_leaves = 1024,
                                        .leaves = {(const char *)bad, 4}};
    assert_int_equal(deliver(0, peer, &k), 1);
    /* the same requests, well formed, from the replica: answered */
    rk_put_le32(bad, 15);
    m.aae_tree.ids = (struct peer_bytes){(const char *)bad, 4};
    assert_int_equal(deliver(0, peer, &m), 0);
    rk_put_le32(bad, 1023);
    assert_int_equal(deliver(0, peer, &k), 0);
    /* nothing changed: same tree, and an unknown reply is ignored */
    struct peer_msg rep = {.type = PEER_AAE_TREE_REPLY};
    rep.aae_tree_reply.req_id = 999;
    assert_int_equal(deliver(0, outsider, &rep), 0);
    uint64_t after = 0;
    assert_true(node_aae_root(sim_node(g_s, 0), p, &after));
    assert_int_equal(after, root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_node_aae_restores_a_wiped_replica,
                                  teardown),
        cmocka_unit_test_teardown(test_node_aae_in_sync_replicas_repair_nothing,
                                  teardown),
        cmocka_unit_test_teardown(
            test_node_aae_refuses_strangers_and_bad_indexes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_aae.c - the anti-entropy hash tree (cluster/aae.h): two replicas'
 * trees agree exactly when they hold the same (key, object) pairs, updates
 * in any order give the same tree, and the level-by-level comparison finds
 * exactly the leaves that hold the differing keys.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/aae.h"
#include "common/error.h"

#define LEAVES 1024u
#define KEYS   5000

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void key_of(int i, char out[16])
{
    snprintf(out, 16, "k%d", i);
}

static uint32_t leaf_of(const char *k)
{
    return (uint32_t)(XXH3_64bits(k, strlen(k)) % LEAVES);
}

static void put(struct aae_tree *t, int i, uint64_t old_h, uint64_t new_h)
{
    char k[16];
    key_of(i, k);
    aae_tree_update(t, leaf_of(k), k, strlen(k), old_h, new_h);
}

static void test_aae_init_rejects_bad_sizes(void **state)
{
    (void)state;
    struct aae_tree t;
    assert_int_equal(aae_tree_init(&t, 0), RK_EINVAL);
    assert_int_equal(aae_tree_init(&t, 32), RK_EINVAL);
    assert_int_equal(aae_tree_init(&t, 100), RK_EINVAL);
    assert_int_equal(aae_tree_init(&t, AAE_MAX_LEAVES * 2), RK_EINVAL);
    assert_int_equal(aae_tree_init(&t, 64), RK_OK);
    assert_int_equal(t.n_branches, 1);
    aae_tree_fini(&t);
    aae_tree_fini(&t); /* twice: safe */
}

static void test_aae_order_does_not_matter_and_removal_cancels(void **state)
{
    (void)state;
    struct aae_tree a, b;
    assert_int_equal(aae_tree_init(&a, LEAVES), RK_OK);
    assert_int_equal(aae_tree_init(&b, LEAVES), RK_OK);
    uint64_t h[KEYS];
    for (int i = 0; i < KEYS; i++) {
        h[i] = rnd() | 1;
        put(&a, i, 0, h[i]);
    }
    for (int i = KEYS - 1; i >= 0; i--) {
        put(&b, i, 0, h[i]); /* reverse order */
    }
    assert_true(aae_tree_check(&a));
    assert_int_equal(a.root, b.root);
    assert_memory_equal(a.leaf, b.leaf, LEAVES * sizeof(uint64_t));
    assert_int_equal(a.entries, KEYS);
    /* an object changed and changed back: the same tree */
    uint64_t root = a.root;
    put(&a, 17, h[17], 42);
    assert_int_not_equal(a.root, root);
    put(&a, 17, 42, h[17]);
    assert_int_equal(a.root, root);
    /* removing everything gives the empty tree */
    for (int i = 0; i < KEYS; i++) {
        put(&a, i, h[i], 0);
    }
    assert_int_equal(a.root, 0);
    assert_int_equal(a.entries, 0);
    for (uint32_t i = 0; i < LEAVES; i++) {
        assert_int_equal(a.leaf[i], 0);
    }
    assert_true(aae_tree_check(&a));
    aae_tree_fini(&a);
    aae_tree_fini(&b);
}

static void test_aae_exchange_finds_exactly_the_differing_keys(void **state)
{
    (void)state;
    struct aae_tree a, b;
    assert_int_equal(aae_tree_init(&a, LEAVES), RK_OK);
    assert_int_equal(aae_tree_init(&b, LEAVES), RK_OK);
    uint64_t h[KEYS];
    for (int i = 0; i < KEYS; i++) {
        h[i] = rnd() | 1;
        put(&a, i, 0, h[i]);
        put(&b, i, 0, h[i]);
    }
    assert_int_equal(a.root, b.root);
    /* b misses 3 writes, has 1 key a lacks, and 1 older version */
    int diff_keys[] = {5, 900, 4321, 77, 2500};
    put(&b, 5, h[5], 0);
    put(&b, 900, h[900], 0);
    put(&b, 4321, h[4321], 0);
    put(&b, KEYS + 1, 0, 99);  /* only on b */
    put(&b, 2500, h[2500], 7); /* another version */
    diff_keys[3] = KEYS + 1;
    assert_int_not_equal(a.root, b.root);
    /* level 1: branches; level 2: leaves of the differing branches */
    uint32_t br[LEAVES / AAE_FANOUT];
    size_t nb = aae_diff(a.branch, b.branch, 0, a.n_branches, br);
    assert_true(nb >= 1 && nb <= 5);
    uint32_t leaves[LEAVES];
    size_t nl = 0;
    for (size_t i = 0; i < nb; i++) {
        uint32_t first = br[i] * AAE_FANOUT;
        nl += aae_diff(a.leaf + first, b.leaf + first, first, AAE_FANOUT,
                       leaves + nl);
    }
    assert_true(nl >= 1 && nl <= 5);
    /* every differing key is in a differing leaf, and every differing
     * leaf holds one of them */
    for (size_t d = 0; d < 5; d++) {
        char k[16];
        key_of(diff_keys[d], k);
        bool found = false;
        for (size_t i = 0; i < nl; i++) {
            found = found || leaves[i] == leaf_of(k);
        }
        assert_true(found);
    }
    for (size_t i = 0; i < nl; i++) {
        bool holds = false;
        for (size_t d = 0; d < 5; d++) {
            char k[16];
            key_of(diff_keys[d], k);
            holds = holds || leaf_of(k) == leaves[i];
        }
        assert_true(holds);
    }
    /* repaired (b takes a's versions): equal again */
    put(&b, 5, 0, h[5]);
    put(&b, 900, 0, h[900]);
    put(&b, 4321, 0, h[4321]);
    put(&a, KEYS + 1, 0, 99);
    put(&b, 2500, 7, h[2500]);
    assert_int_equal(a.root, b.root);
    assert_memory_equal(a.branch, b.branch, a.n_branches * sizeof(uint64_t));
    aae_tree_fini(&a);
    aae_tree_fini(&b);
}

static void test_aae_entry_hash_depends_on_key_and_object(void **state)
{
    (void)state;
    uint64_t e1 = aae_entry_hash("k", 1, 1), e2 = aae_entry_hash("k", 1, 2);
    uint64_t e3 = aae_entry_hash("j", 1, 1);
    assert_int_not_equal(e1, e2);
    assert_int_not_equal(e1, e3);
    assert_int_not_equal(aae_entry_hash("", 0, 0), 0);
    /* the same key with the same object in two leaves of two trees:
     * same entry, so same leaf value */
    assert_int_equal(aae_entry_hash("k", 1, 1), e1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aae_init_rejects_bad_sizes),
        cmocka_unit_test(test_aae_order_does_not_matter_and_removal_cancels),
        cmocka_unit_test(test_aae_exchange_finds_exactly_the_differing_keys),
        cmocka_unit_test(test_aae_entry_hash_depends_on_key_and_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

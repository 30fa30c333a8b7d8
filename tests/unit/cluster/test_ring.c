/*
 * test_ring.c - cluster/ring: key to partition mapping, the claim's
 * guarantees (balance, distinctness, determinism, movement on join and
 * leave), preference lists, the wire format and its decoder on hostile
 * input, and allocation failures (issue 4 item 2, TESTING.md B1).
 *
 * Every check of balance and distinctness here is computed independently
 * of ring_window() and ring_owned_count().  Random inputs come from fixed
 * seeds, printed on failure.
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
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/ring.h"
#include "cluster/slot.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/endian.h"
#include "common/error.h"

/* ---- helpers ------------------------------------------------------------ */

#define MAX_IDS 128

static char g_id_store[MAX_IDS][16];
static const char *g_ids[MAX_IDS];

/* Ids "node-00".."node-127", created once. */
static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_IDS; i++) {
        snprintf(g_id_store[i], sizeof(g_id_store[i]), "node-%02d", i);
        g_ids[i] = g_id_store[i];
    }
    return 0;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: a fixed, portable sequence for a given seed */
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static struct ring *make_ring(uint32_t q,
                              uint32_t n,
                              size_t m,
                              const struct ring *prev)
{
    struct ring *r = NULL;
    assert_int_equal(ring_create(q, n, g_ids, m, prev, &r), RK_OK);
    assert_non_null(r);
    return r;
}

/* The W ring.h promises: min(N, floor(Q / ceil(Q/M))). */
static uint32_t expected_window(uint32_t q, uint32_t n, size_t m)
{
    uint32_t hi = (uint32_t)((q + m - 1) / m);
    return q / hi < n ? q / hi : n;
}

/* Whether every w consecutive partitions (wrapping) have distinct owners. */
static bool windows_distinct(const struct ring *r, uint32_t w)
{
    uint32_t q = ring_size(r);
    for (uint32_t p = 0; p < q; p++) {
        for (uint32_t i = 1; i < w; i++) {
            for (uint32_t j = 0; j < i; j++) {
                if (ring_owner(r, (p + i) % q) == ring_owner(r, (p + j) % q)) {
                    return false;
                }
            }
        }
    }
    return true;
}

/* Whether each member owns floor(Q/M) or ceil(Q/M), counted by hand. */
static bool balanced(const struct ring *r)
{
    size_t m = ring_member_count(r);
    uint32_t q = ring_size(r);
    size_t count[RING_MAX_MEMBERS] = {0};
    for (uint32_t p = 0; p < q; p++) {
        count[ring_owner(r, p)]++;
    }
    for (size_t i = 0; i < m; i++) {
        if (count[i] < q / m || count[i] > (q + m - 1) / m ||
            count[i] != ring_owned_count(r, i)) {
            return false;
        }
    }
    return true;
}

/* Partitions whose owner (by id) differs between two rings of one size. */
static uint32_t moved(const struct ring *a, const struct ring *b)
{
    uint32_t k = 0;
    for (uint32_t p = 0; p < ring_size(a); p++) {
        size_t la, lb;
        const char *ia = ring_member_id(a, ring_owner(a, p), &la);
        const char *ib = ring_member_id(b, ring_owner(b, p), &lb);
        k += la != lb || memcmp(ia, ib, la) != 0;
    }
    return k;
}

static void encode(const struct ring *r, struct rk_buf *b)
{
    rk_buf_init(b);
    assert_int_equal(ring_encode(r, b), RK_OK);
}

/* ---- test allocator: counts live blocks, fails the Nth call ------------- */

struct test_heap
{
    long calls;   /* allocation calls so far */
    long fail_at; /* 1-based call to fail; 0 = never */
    long live;    /* blocks not yet freed */
};

static struct test_heap g_heap;

static void *heap_malloc(void *data, size_t size)
{
    struct test_heap *h = data;
    if (++h->calls == h->fail_at) {
        return NULL;
    }
    void *p = malloc(size == 0 ? 1 : size);
    h->live += p != NULL;
    return p;
}

static void *heap_calloc(void *data, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = heap_malloc(data, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
    struct test_heap *h = data;
    if (ptr == NULL) {
        return heap_malloc(data, size);
    }
    if (++h->calls == h->fail_at) {
        return NULL;
    }
    return realloc(ptr, size == 0 ? 1 : size);
}

static void heap_free(void *data, void *ptr)
{
    struct test_heap *h = data;
    h->live--;
    free(ptr);
}

static const struct rk_allocator g_heap_alloc = {
    .data = &g_heap,
    .malloc_fn = heap_malloc,
    .calloc_fn = heap_calloc,
    .realloc_fn = heap_realloc,
    .free_fn = heap_free,
};

static void heap_install(long fail_at)
{
    memset(&g_heap, 0, sizeof(g_heap));
    g_heap.fail_at = fail_at;
    rk_set_allocator(&g_heap_alloc);
}

static void heap_uninstall(void)
{
    rk_set_allocator(NULL);
}

/* ---- arguments and lookups ---------------------------------------------- */

static void test_ring_create_rejects_bad_arguments(void **state)
{
    (void)state;
    struct ring *r = NULL;
    assert_int_equal(ring_create(0, 3, g_ids, 3, NULL, &r), RK_EINVAL);
    assert_int_equal(ring_create(48, 3, g_ids, 3, NULL, &r), RK_EINVAL);
    assert_int_equal(ring_create(2048, 3, g_ids, 3, NULL, &r), RK_EINVAL);
    assert_int_equal(ring_create(64, 0, g_ids, 3, NULL, &r), RK_EINVAL);
    assert_int_equal(ring_create(64, RING_MAX_N + 1, g_ids, 3, NULL, &r),
                     RK_EINVAL);
    assert_int_equal(ring_create(64, 3, g_ids, 0, NULL, &r), RK_EINVAL);
    const char *dup[] = {"a", "b", "a"};
    assert_int_equal(ring_create(64, 3, dup, 3, NULL, &r), RK_EINVAL);
    const char *space[] = {"a", "b c"};
    assert_int_equal(ring_create(64, 3, space, 2, NULL, &r), RK_EINVAL);
    const char *empty[] = {"a", ""};
    assert_int_equal(ring_create(64, 3, empty, 2, NULL, &r), RK_EINVAL);
    const char *null_id[] = {"a", NULL};
    assert_int_equal(ring_create(64, 3, null_id, 2, NULL, &r), RK_EINVAL);
    char long_id[RING_MAX_ID_LEN + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *too_long[] = {long_id};
    assert_int_equal(ring_create(64, 3, too_long, 1, NULL, &r), RK_EINVAL);
    assert_null(r);
    long_id[RING_MAX_ID_LEN] = '\0'; /* exactly 64 bytes is fine */
    assert_int_equal(ring_create(64, 3, too_long, 1, NULL, &r), RK_OK);
    ring_destroy(r);
    ring_destroy(NULL);
    assert_true(ring_member_id_is_valid("127.0.0.1:7381", 14));
    assert_false(ring_member_id_is_valid("caf\xc3\xa9", 5));
}

static void test_ring_members_are_sorted_and_found_by_id(void **state)
{
    (void)state;
    const char *ids[] = {"zeta", "alpha", "alp", "mid", "alphabet"};
    struct ring *r = NULL;
    assert_int_equal(ring_create(64, 3, ids, 5, NULL, &r), RK_OK);
    assert_int_equal(ring_member_count(r), 5);
    const char *sorted[] = {"alp", "alpha", "alphabet", "mid", "zeta"};
    for (size_t i = 0; i < 5; i++) {
        size_t len;
        assert_string_equal(ring_member_id(r, i, &len), sorted[i]);
        assert_int_equal(len, strlen(sorted[i]));
        assert_int_equal(ring_find_member(r, sorted[i], len), (int)i);
    }
    assert_int_equal(ring_find_member(r, "alph", 4), -1);
    assert_int_equal(ring_find_member(r, "zz", 2), -1);
    assert_int_equal(ring_find_member(r, "", 0), -1);
    assert_int_equal(ring_size(r), 64);
    assert_int_equal(ring_target_n(r), 3);
    ring_destroy(r);
}

/* EVIDENCE-OF: partition = hash slot >> (14 - log2 Q), partition p
 * covering slots [p * 16384/Q, (p+1) * 16384/Q) (issue 13 item 1). */
static void test_ring_key_partition_is_slot_range(void **state)
{
    (void)state;
    for (uint32_t q = 1, bits = 0; q <= RING_MAX_SIZE; q *= 2, bits++) {
        struct ring *r = make_ring(q, 3, 3, NULL);
        char key[32];
        for (int i = 0; i < 1000; i++) {
            int len = snprintf(key, sizeof(key), "key:%d", i);
            uint32_t want = slot_of_key(key, (size_t)len) >> (14 - bits);
            assert_int_equal(ring_partition_of_key(r, key, (size_t)len), want);
        }
        assert_int_equal(ring_partition_of_key(r, "", 0), 0);
        uint32_t per = SLOT_COUNT / q, next = 0;
        for (uint32_t p = 0; p < q; p++) {
            uint32_t first, last;
            ring_slot_range(r, p, &first, &last);
            assert_int_equal(first, next);
            assert_int_equal(last, first + per - 1);
            assert_int_equal(ring_partition_of_slot(r, first), p);
            assert_int_equal(ring_partition_of_slot(r, last), p);
            next = last + 1;
        }
        assert_int_equal(next, SLOT_COUNT);
        /* keys sharing a hash tag share a partition */
        assert_int_equal(ring_partition_of_key(r, "{user1000}.following", 20),
                         ring_partition_of_key(r, "{user1000}.followers", 20));
        ring_destroy(r);
    }
}

/* ---- claim guarantees --------------------------------------------------- */

static void test_ring_balance_every_member_owns_floor_or_ceil(void **state)
{
    (void)state;
    static const uint32_t qs[] = {8, 16, 32, 64, 128, 256};
    for (size_t qi = 0; qi < sizeof(qs) / sizeof(qs[0]); qi++) {
        for (size_t m = 1; m <= 16; m++) {
            struct ring *r = make_ring(qs[qi], 3, m, NULL);
            if (!balanced(r)) {
                fail_msg("unbalanced: Q=%u M=%zu", qs[qi], m);
            }
            uint32_t list[256];
            for (size_t i = 0; i < m; i++) {
                size_t k = ring_owned_list(r, i, list, 256);
                assert_int_equal(k, ring_owned_count(r, i));
                for (size_t j = 0; j < k; j++) {
                    assert_int_equal(ring_owner(r, list[j]), i);
                    assert_true(j == 0 || list[j] > list[j - 1]);
                }
            }
            ring_destroy(r);
        }
    }
    /* More members than partitions: each owns 0 or 1. */
    struct ring *r = make_ring(8, 3, 12, NULL);
    assert_true(balanced(r));
    assert_true(windows_distinct(r, 3));
    ring_destroy(r);
}

/* TESTING.md B1: any N consecutive partitions have distinct owners, for
 * M = N..16, Q = 64 (where balance allows it; otherwise W < N). */
static void test_ring_every_n_consecutive_partitions_have_distinct_owners(
    void **state)
{
    (void)state;
    static const uint32_t ns[] = {1, 2, 3, 5};
    for (size_t ni = 0; ni < 4; ni++) {
        uint32_t n = ns[ni];
        for (size_t m = n; m <= 16; m++) {
            struct ring *r = make_ring(64, n, m, NULL);
            uint32_t w = expected_window(64, n, m);
            bool possible = ((64 + m - 1) / m) * n <= 64;
            assert_int_equal(w == n, possible);
            if (!possible) {
                /* M == N with N not dividing 64: a member owns ceil(64/M)
                 * partitions, which cannot all be N apart. */
                assert_int_equal(m, n);
                print_message(
                    "N=%u M=%zu Q=64: distinct windows of %u only "
                    "(ceil(Q/M)*N > Q)\n",
                    n, m, w);
                assert_false(windows_distinct(r, n));
            }
            if (!windows_distinct(r, w) || ring_window(r) != w ||
                !balanced(r)) {
                fail_msg("N=%u M=%zu: window %u, want %u", n, m, ring_window(r),
                         w);
            }
            ring_destroy(r);
        }
    }
}

/* A fresh claim reaches the largest window balance allows over a wider
 * grid than B1, including tight cases where the greedy claim gives up and
 * ring.c's closed-form layout (step 8) takes over. */
static void test_ring_fresh_claim_reaches_the_largest_window(void **state)
{
    (void)state;
    static const uint32_t tight[][3] = {
        {64, 10, 11},  {64, 12, 13},  {128, 9, 10},   {128, 18, 19},
        {128, 31, 33}, {256, 58, 65}, {1024, 51, 60}, {16, 4, 5},
    };
    for (size_t i = 0; i < sizeof(tight) / sizeof(tight[0]); i++) {
        uint32_t q = tight[i][0], n = tight[i][1], m = tight[i][2];
        struct ring *r = make_ring(q, n, m, NULL);
        uint32_t w = expected_window(q, n, m);
        if (ring_window(r) != w || !windows_distinct(r, w) || !balanced(r)) {
            fail_msg("Q=%u N=%u M=%u: window %u, want %u", q, n, m,
                     ring_window(r), w);
        }
        ring_destroy(r);
    }
    for (uint32_t q = 1; q <= RING_MAX_SIZE; q *= 4) {
        for (uint32_t n = 1; n <= 6; n++) {
            for (size_t m = 1; m <= 20; m++) {
                struct ring *r = make_ring(q, n, m, NULL);
                uint32_t w = expected_window(q, n, m);
                if (ring_window(r) != w || !windows_distinct(r, w) ||
                    !balanced(r)) {
                    fail_msg("Q=%u N=%u M=%zu: window %u, want %u", q, n, m,
                             ring_window(r), w);
                }
                ring_destroy(r);
            }
        }
    }
}

static void test_ring_is_the_same_for_permuted_member_orders(void **state)
{
    (void)state;
    uint64_t seed = 42;
    for (size_t m = 1; m <= 12; m++) {
        struct ring *base = make_ring(64, 3, m, NULL);
        struct ring *grown = make_ring(64, 3, m + 1, base);
        struct rk_buf want;
        encode(grown, &want);
        for (int t = 0; t < 5; t++) {
            const char *perm[MAX_IDS];
            memcpy(perm, g_ids, (m + 1) * sizeof(perm[0]));
            for (size_t i = m + 1; i > 1; i--) {
                size_t j = (size_t)(rng_next(&seed) % i);
                const char *tmp = perm[i - 1];
                perm[i - 1] = perm[j];
                perm[j] = tmp;
            }
            struct ring *b1 = NULL, *b2 = NULL;
            assert_int_equal(ring_create(64, 3, perm + 1, m, NULL, &b1), RK_OK);
            /* perm + 1 may miss a different id than g_ids + m does, so
             * compare the fresh ring built from the same set instead. */
            const char *set[MAX_IDS];
            size_t k = 0;
            for (size_t i = 0; i < m + 1; i++) {
                if (strcmp(perm[i], perm[0]) != 0) {
                    set[k++] = perm[i];
                }
            }
            struct ring *ref = NULL;
            assert_int_equal(ring_create(64, 3, set, k, NULL, &ref), RK_OK);
            assert_true(ring_equal(b1, ref));
            assert_int_equal(ring_digest(b1), ring_digest(ref));
            /* Same membership change from the same prev, other order. */
            assert_int_equal(ring_create(64, 3, perm, m + 1, base, &b2), RK_OK);
            struct rk_buf got;
            encode(b2, &got);
            assert_int_equal(got.len, want.len);
            assert_memory_equal(got.base, want.base, want.len);
            assert_true(ring_equal(b2, grown));
            rk_buf_fini(&got);
            ring_destroy(b1);
            ring_destroy(b2);
            ring_destroy(ref);
        }
        rk_buf_fini(&want);
        ring_destroy(base);
        ring_destroy(grown);
    }
}

static void test_ring_rebuild_with_the_same_members_changes_nothing(
    void **state)
{
    (void)state;
    for (size_t m = 1; m <= 16; m++) {
        struct ring *a = make_ring(64, 3, m, NULL);
        struct ring *b = make_ring(64, 3, m, a);
        assert_true(ring_equal(a, b));
        ring_destroy(a);
        ring_destroy(b);
    }
}

static void test_ring_encode_decode_round_trips(void **state)
{
    (void)state;
    static const uint32_t qs[] = {1, 8, 64, 1024};
    static const size_t ms[] = {1, 3, 7, 16};
    for (size_t qi = 0; qi < 4; qi++) {
        for (size_t mi = 0; mi < 4; mi++) {
            struct ring *r = make_ring(qs[qi], 3, ms[mi], NULL);
            struct rk_buf b;
            encode(r, &b);
            assert_int_equal((unsigned char)b.base[0], RING_FORMAT_VERSION);
            assert_int_equal(rk_get_le16((unsigned char *)b.base + 2), qs[qi]);
            assert_int_equal(ring_digest(r), XXH3_64bits(b.base, b.len));
            struct ring *d = NULL;
            assert_int_equal(ring_decode(b.base, b.len, &d), RK_OK);
            assert_true(ring_equal(r, d));
            assert_int_equal(ring_digest(r), ring_digest(d));
            assert_int_equal(ring_window(r), ring_window(d));
            for (size_t i = 0; i < ms[mi]; i++) {
                assert_int_equal(ring_owned_count(r, i),
                                 ring_owned_count(d, i));
            }
            struct rk_buf b2;
            encode(d, &b2);
            assert_int_equal(b2.len, b.len);
            assert_memory_equal(b2.base, b.base, b.len);
            /* A decoded ring is as good a prev as the original. */
            struct ring *g1 = make_ring(qs[qi], 3, ms[mi] + 1, r);
            struct ring *g2 = make_ring(qs[qi], 3, ms[mi] + 1, d);
            assert_true(ring_equal(g1, g2));
            ring_destroy(g1);
            ring_destroy(g2);
            rk_buf_fini(&b);
            rk_buf_fini(&b2);
            ring_destroy(r);
            ring_destroy(d);
        }
    }
    struct ring *a = make_ring(64, 3, 4, NULL), *b = make_ring(64, 3, 5, NULL);
    assert_false(ring_equal(a, b));
    assert_int_not_equal(ring_digest(a), ring_digest(b));
    ring_destroy(a);
    ring_destroy(b);
}

/* ---- preference lists --------------------------------------------------- */

static void check_preflists(const struct ring *r)
{
    size_t m = ring_member_count(r);
    uint32_t q = ring_size(r), w = ring_window(r);
    size_t list[RING_MAX_MEMBERS], want[RING_MAX_MEMBERS];
    for (uint32_t p = 0; p < q; p++) {
        assert_int_equal(ring_preflist(r, p, list, RING_MAX_MEMBERS), m);
        /* Reference: first appearance walking clockwise, then members
         * owning nothing, by index. */
        bool seen[RING_MAX_MEMBERS] = {false};
        size_t k = 0;
        for (uint32_t i = 0; i < q; i++) {
            size_t o = ring_owner(r, (p + i) % q);
            if (!seen[o]) {
                seen[o] = true;
                want[k++] = o;
            }
        }
        for (size_t i = 0; i < m; i++) {
            if (!seen[i]) {
                want[k++] = i;
            }
        }
        assert_int_equal(k, m);
        assert_memory_equal(list, want, m * sizeof(list[0]));
        /* Starts at the owner; the first W are the next W owners. */
        assert_int_equal(list[0], ring_owner(r, p));
        for (uint32_t i = 0; i < w && i < m; i++) {
            assert_int_equal(list[i], ring_owner(r, (p + i) % q));
        }
        /* A short cap gives a prefix. */
        size_t shortl[3];
        size_t n3 = ring_preflist(r, p, shortl, 3);
        assert_int_equal(n3, m < 3 ? m : 3);
        assert_memory_equal(shortl, list, n3 * sizeof(list[0]));
    }
}

static void test_ring_preflist_lists_n_distinct_owners_then_fallbacks(
    void **state)
{
    (void)state;
    for (size_t m = 1; m <= 16; m++) {
        struct ring *r = make_ring(64, 3, m, NULL);
        check_preflists(r);
        ring_destroy(r);
    }
    struct ring *r = make_ring(8, 3, 12, NULL); /* 4 members own nothing */
    check_preflists(r);
    size_t list[12];
    assert_int_equal(ring_preflist(r, 5, list, 12), 12);
    assert_int_equal(ring_preflist(r, 5, list, 0), 0);
    ring_destroy(r);
}

/* ---- movement ----------------------------------------------------------- */

static void join_series(uint32_t q, uint32_t n, bool print)
{
    struct ring *prev = make_ring(q, n, 1, NULL);
    for (size_t m = 1; m <= 15; m++) {
        struct ring *r = make_ring(q, n, m + 1, prev);
        uint32_t k = moved(prev, r);
        double f = (double)k / q, ideal = 1.0 / (double)(m + 1);
        bool w_grew = ring_window(r) > ring_window(prev);
        if (print) {
            print_message(
                "join Q=%u N=%u M=%zu->%zu moved=%u/%u (%.3f, "
                "ideal %.3f)%s\n",
                q, n, m, m + 1, k, q, f, ideal, w_grew ? " window grew" : "");
        }
        assert_true(balanced(r));
        assert_true(windows_distinct(r, expected_window(q, n, m + 1)));
        /* The new member takes its share, from everyone else. */
        assert_true(k >= q / (m + 1));
        if (n <= 3 || !w_grew) {
            if (f > 2.0 * ideal + 2.0 / q) {
                fail_msg("join Q=%u N=%u M=%zu moved %u", q, n, m, k);
            }
        } else {
            /* The ring becomes N-distinct for the first time (M passes
             * N = 5): a restructuring, still not a full reshuffle. */
            assert_true(k < q * 4 / 5);
        }
        ring_destroy(prev);
        prev = r;
    }
    ring_destroy(prev);
}

static void test_ring_join_moves_about_one_over_m_plus_one(void **state)
{
    (void)state;
    join_series(64, 3, true);
    join_series(64, 2, false);
    join_series(64, 5, true);
    join_series(256, 3, true);
}

static void test_ring_leave_moves_the_leavers_partitions_plus_repairs(
    void **state)
{
    (void)state;
    static const uint32_t ns[] = {2, 3};
    for (size_t ni = 0; ni < 2; ni++) {
        uint32_t n = ns[ni];
        struct ring *prev = make_ring(64, n, 16, NULL);
        for (size_t m = 16; m > 1; m--) {
            /* The member in the middle leaves. */
            size_t gone = m / 2;
            const char *ids[MAX_IDS];
            size_t k = 0;
            for (size_t i = 0; i < m; i++) {
                if (i != gone) {
                    ids[k++] = ring_member_id(prev, i, NULL);
                }
            }
            struct ring *r = NULL;
            assert_int_equal(ring_create(64, n, ids, k, prev, &r), RK_OK);
            uint32_t total = moved(prev, r);
            uint32_t share = (uint32_t)ring_owned_count(prev, gone);
            uint32_t extra = total - share;
            print_message(
                "leave Q=64 N=%u M=%zu->%zu moved=%u/64 "
                "(leaver's %u + %u repairs)\n",
                n, m, m - 1, total, share, extra);
            assert_true(balanced(r));
            assert_true(windows_distinct(r, expected_window(64, n, m - 1)));
            assert_true(total >= share);
            if (m - 1 >= 2 * n + 1) {
                assert_true(extra <= 2); /* room enough: (almost) none */
            } else if (m - 1 > n) {
                assert_true(extra <= share);
            }
            ring_destroy(prev);
            prev = r;
        }
        ring_destroy(prev);
    }
}

/* Arbitrary membership churn (several joins and leaves at once, ids in any
 * order) from the previous ring keeps G1 and G2 at every step. */
static void test_ring_random_membership_changes_keep_balance_and_window(
    void **state)
{
    (void)state;
    uint64_t seed = 7;
    for (int trial = 0; trial < 30; trial++) {
        uint32_t q = 1u << (rng_next(&seed) % 9);
        uint32_t n = 1 + (uint32_t)(rng_next(&seed) % 5);
        bool in[MAX_IDS] = {false};
        struct ring *prev = NULL;
        for (int step = 0; step < 12; step++) {
            int changes = 1 + (int)(rng_next(&seed) % 3);
            for (int c = 0; c < changes; c++) {
                size_t k = (size_t)(rng_next(&seed) % 24);
                in[k] = !in[k];
            }
            const char *ids[MAX_IDS];
            size_t m = 0;
            for (size_t i = MAX_IDS; i-- > 0;) {
                if (in[i]) {
                    ids[m++] = g_ids[i];
                }
            }
            if (m == 0) {
                in[0] = true;
                ids[m++] = g_ids[0];
            }
            struct ring *r = NULL;
            assert_int_equal(ring_create(q, n, ids, m, prev, &r), RK_OK);
            uint32_t w = expected_window(q, n, m);
            if (!balanced(r) || !windows_distinct(r, w) ||
                ring_window(r) != w) {
                fail_msg("trial %d step %d: Q=%u N=%u M=%zu", trial, step, q, n,
                         m);
            }
            ring_destroy(prev);
            prev = r;
        }
        ring_destroy(prev);
    }
}

static void test_ring_size_change_keeps_a_valid_ring(void **state)
{
    (void)state;
    struct ring *a = make_ring(64, 3, 5, NULL);
    struct ring *b = make_ring(128, 3, 5, a);
    struct ring *c = make_ring(32, 3, 6, b);
    assert_int_equal(ring_size(b), 128);
    assert_true(balanced(b) && balanced(c));
    assert_true(windows_distinct(b, 3) && windows_distinct(c, 3));
    ring_destroy(a);
    ring_destroy(b);
    ring_destroy(c);
}

/* ---- decoder on hostile input ------------------------------------------- */

static int decode_err(const void *p, size_t len)
{
    struct ring *r = NULL;
    int rc = ring_decode(p, len, &r);
    if (rc == RK_OK) {
        ring_destroy(r);
    } else {
        assert_null(r);
    }
    return rc;
}

static void test_ring_decode_rejects_every_truncation_and_corruption(
    void **state)
{
    (void)state;
    struct ring *r = make_ring(64, 3, 5, NULL);
    struct rk_buf b;
    encode(r, &b);
    unsigned char *p = (unsigned char *)b.base;
    for (size_t len = 0; len < b.len; len++) {
        /* a copy of exactly len bytes, so ASan sees any over-read */
        unsigned char *t = malloc(len + 1);
        memcpy(t, p, len);
        int rc = decode_err(t, len);
        assert_int_equal(rc, RK_EPROTO);
        free(t);
    }
    assert_int_equal(decode_err(NULL, 0), RK_EPROTO);
    unsigned char *big = malloc(b.len + 1);
    memcpy(big, p, b.len);
    big[b.len] = 0;
    assert_int_equal(decode_err(big, b.len + 1), RK_EPROTO);
    free(big);

    /* One field at a time: offset, new byte, expected error. */
    struct
    {
        size_t off;
        unsigned char v;
        int err;
    } bad[] = {
        {0, 0, RK_EVERSION},
        {0, 2, RK_EVERSION},
        {0, 0xff, RK_EVERSION},
        {1, 1, RK_EPROTO},
        {2, 63, RK_EPROTO},
        {2, 0, RK_EPROTO},
        {3, 0x08, RK_EPROTO},
        {4, 0, RK_EPROTO},
        {4, RING_MAX_N + 1, RK_EPROTO},
        {6, 0, RK_EPROTO},
        {6, 4, RK_EPROTO},
        {6, 6, RK_EPROTO},
        {8, 0, RK_EPROTO},
        {8, 65, RK_EPROTO},
        {9, ' ', RK_EPROTO},
        {9, 0x7f, RK_EPROTO},
        {9, 'z', RK_EPROTO},       /* unsorted */
        {b.len - 2, 5, RK_EPROTO}, /* owner == M */
        {b.len - 1, 1, RK_EPROTO}, /* owner >= 256 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char save = p[bad[i].off];
        p[bad[i].off] = bad[i].v;
        if (decode_err(p, b.len) != bad[i].err) {
            fail_msg("byte %zu = %u not rejected", bad[i].off, bad[i].v);
        }
        p[bad[i].off] = save;
    }
    /* Duplicate ids: make the second id equal the first ("node-00"). */
    size_t second = 8 + 1 + 7;
    memcpy(p + second + 1, "node-00", 7);
    assert_int_equal(decode_err(p, b.len), RK_EPROTO);
    rk_buf_fini(&b);
    ring_destroy(r);
}

static void test_ring_decode_survives_random_garbage_and_mutations(void **state)
{
    (void)state;
    uint64_t seed = 20261125;
    unsigned char buf[512];
    int decoded = 0;
    for (int t = 0; t < 20000; t++) {
        size_t len = (size_t)(rng_next(&seed) % sizeof(buf));
        for (size_t i = 0; i < len; i++) {
            buf[i] = (unsigned char)rng_next(&seed);
        }
        if (t % 2 == 0 && len >= 8) {
            buf[0] = RING_FORMAT_VERSION; /* get past the version check */
            buf[1] = 0;
        }
        struct ring *r = NULL;
        if (ring_decode(buf, len, &r) == RK_OK) {
            decoded++;
            ring_destroy(r);
        }
    }
    /* Mutations of a valid encoding: either rejected, or a ring whose own
     * encoding is exactly the mutated bytes. */
    struct ring *base = make_ring(16, 3, 4, NULL);
    struct rk_buf b;
    encode(base, &b);
    int accepted = 0;
    for (int t = 0; t < 20000; t++) {
        uint64_t s0 = seed;
        memcpy(buf, b.base, b.len);
        int flips = 1 + (int)(rng_next(&seed) % 3);
        for (int f = 0; f < flips; f++) {
            size_t off = (size_t)(rng_next(&seed) % b.len);
            buf[off] ^= (unsigned char)(1u << (rng_next(&seed) % 8));
        }
        struct ring *r = NULL;
        if (ring_decode(buf, b.len, &r) == RK_OK) {
            struct rk_buf again;
            encode(r, &again);
            if (again.len != b.len || memcmp(again.base, buf, b.len) != 0) {
                fail_msg("mutation (seed state %llu) re-encodes differently",
                         (unsigned long long)s0);
            }
            rk_buf_fini(&again);
            ring_destroy(r);
            accepted++;
        }
    }
    print_message(
        "garbage: %d of 20000 decoded; mutations: %d of 20000 "
        "decoded (re-encode identical)\n",
        decoded, accepted);
    rk_buf_fini(&b);
    ring_destroy(base);
}

/* ---- allocation failures ------------------------------------------------ */

static void test_ring_survives_allocation_failures(void **state)
{
    (void)state;
    struct ring *prev = make_ring(64, 3, 4, NULL);
    struct rk_buf enc;
    encode(prev, &enc);
    bool done = false;
    for (long n = 1; !done; n++) {
        struct ring *r = NULL;
        heap_install(n);
        int rc = ring_create(64, 3, g_ids, 5, prev, &r);
        if (rc == RK_OK) {
            done = true;
            ring_destroy(r);
        } else {
            assert_int_equal(rc, RK_ENOMEM);
            assert_null(r);
        }
        long live = g_heap.live;
        heap_uninstall();
        assert_int_equal(live, 0);
        assert_true(n < 1000);
    }
    done = false;
    for (long n = 1; !done; n++) {
        struct ring *r = NULL;
        heap_install(n);
        int rc = ring_decode(enc.base, enc.len, &r);
        struct rk_buf out;
        rk_buf_init(&out);
        if (rc == RK_OK) {
            int erc = ring_encode(r, &out);
            done = erc == RK_OK;
            if (!done) {
                assert_int_equal(erc, RK_ENOMEM);
                assert_int_equal(out.len, 0);
            }
            rk_buf_fini(&out);
            ring_destroy(r);
        } else {
            assert_int_equal(rc, RK_ENOMEM);
            assert_null(r);
        }
        long live = g_heap.live;
        heap_uninstall();
        assert_int_equal(live, 0);
        assert_true(n < 1000);
    }
    rk_buf_fini(&enc);
    ring_destroy(prev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_create_rejects_bad_arguments),
        cmocka_unit_test(test_ring_members_are_sorted_and_found_by_id),
        cmocka_unit_test(test_ring_key_partition_is_slot_range),
        cmocka_unit_test(test_ring_balance_every_member_owns_floor_or_ceil),
        cmocka_unit_test(
            test_ring_every_n_consecutive_partitions_have_distinct_owners),
        cmocka_unit_test(test_ring_fresh_claim_reaches_the_largest_window),
        cmocka_unit_test(test_ring_is_the_same_for_permuted_member_orders),
        cmocka_unit_test(
            test_ring_rebuild_with_the_same_members_changes_nothing),
        cmocka_unit_test(test_ring_encode_decode_round_trips),
        cmocka_unit_test(
            test_ring_preflist_lists_n_distinct_owners_then_fallbacks),
        cmocka_unit_test(test_ring_join_moves_about_one_over_m_plus_one),
        cmocka_unit_test(
            test_ring_leave_moves_the_leavers_partitions_plus_repairs),
        cmocka_unit_test(
            test_ring_random_membership_changes_keep_balance_and_window),
        cmocka_unit_test(test_ring_size_change_keeps_a_valid_ring),
        cmocka_unit_test(
            test_ring_decode_rejects_every_truncation_and_corruption),
        cmocka_unit_test(
            test_ring_decode_survives_random_garbage_and_mutations),
        cmocka_unit_test(test_ring_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}

/*
 * fuzz_ring_decode.c - libFuzzer target for ring_decode (TESTING.md B5):
 * rings arrive from peers, so the decoder sees arbitrary bytes.
 *
 * Checks: decoding never crashes or leaks; an accepted input is canonical
 * (re-encoding gives the same bytes) and decodes again to an equal ring
 * with the same digest; accessors agree with each other (owned counts sum
 * to Q, preference lists are permutations of the members starting at the
 * owner); and a claim that takes the decoded ring as `prev` (however
 * unbalanced) returns a ring that is balanced and reaches the window
 * ring.h promises.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ring.h"
#include "common/buf.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

static size_t g_list[RING_MAX_MEMBERS];

static void check_accessors(const struct ring *r)
{
    uint32_t q = ring_size(r);
    size_t m = ring_member_count(r), total = 0;
    for (size_t i = 0; i < m; i++) {
        size_t len;
        const char *id = ring_member_id(r, i, &len);
        CHECK(ring_find_member(r, id, len) == (int)i);
        total += ring_owned_count(r, i);
    }
    CHECK(total == q);
    for (uint32_t p = 0; p < q; p += 1 + q / 8) {
        CHECK(ring_preflist(r, p, g_list, RING_MAX_MEMBERS) == m);
        CHECK(g_list[0] == ring_owner(r, p));
        static unsigned char seen[RING_MAX_MEMBERS];
        memset(seen, 0, m);
        for (size_t i = 0; i < m; i++) {
            CHECK(g_list[i] < m && !seen[g_list[i]]);
            seen[g_list[i]] = 1;
        }
    }
    CHECK(ring_window(r) >= 1 && ring_window(r) <= ring_target_n(r));
}

/* A claim from the decoded ring, plus one member, must meet G1 and G2. */
static void check_claim_from(const struct ring *prev)
{
    size_t m = ring_member_count(prev);
    if (m >= 64) {
        return; /* keeps executions fast; the unit tests cover large M */
    }
    const char *ids[65];
    for (size_t i = 0; i < m; i++) {
        ids[i] = ring_member_id(prev, i, NULL);
    }
    ids[m] = "~fuzz-joiner"; /* '~' sorts after every other id byte */
    size_t n_ids =
        ring_find_member(prev, ids[m], strlen(ids[m])) < 0 ? m + 1 : m;
    uint32_t q = ring_size(prev), n = ring_target_n(prev);
    struct ring *r = NULL;
    int rc = ring_create(q, n, ids, n_ids, prev, &r);
    CHECK(rc == RK_OK);
    uint32_t hi = (uint32_t)((q + n_ids - 1) / n_ids), lo = q / n_ids;
    uint32_t w = q / hi < n ? q / hi : n;
    for (size_t i = 0; i < n_ids; i++) {
        CHECK(ring_owned_count(r, i) >= lo && ring_owned_count(r, i) <= hi);
    }
    CHECK(ring_window(r) == w);
    ring_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ring *r = NULL;
    int rc = ring_decode(data, size, &r);
    if (rc != RK_OK) {
        CHECK(rc == RK_EPROTO || rc == RK_EVERSION);
        CHECK(r == NULL);
        return 0;
    }
    struct rk_buf b;
    rk_buf_init(&b);
    CHECK(ring_encode(r, &b) == RK_OK);
    CHECK(b.len == size && memcmp(b.base, data, size) == 0);
    struct ring *again = NULL;
    CHECK(ring_decode(b.base, b.len, &again) == RK_OK);
    CHECK(ring_digest(again) == ring_digest(r));
    CHECK(ring_equal(again, r));
    check_accessors(r);
    check_claim_from(r);
    ring_destroy(again);
    ring_destroy(r);
    rk_buf_fini(&b);
    return 0;
}

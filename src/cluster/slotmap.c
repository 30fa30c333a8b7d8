/*
 * slotmap.c - the ring as Redis Cluster clients see it; see slotmap.h.
 *
 * Invariants of struct slotmap:
 *   (1) width = min(target_n, M) >= 1;
 *   (2) nodes[p * width .. (p+1) * width) are distinct member indexes of
 *       partition p's preference list, primary first (slotmap.h's rule).
 */
#include "cluster/slotmap.h"

#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

struct slotmap
{
    uint32_t q;                  /* partitions */
    size_t m;                    /* members */
    size_t width;                /* invariant 1 */
    enum slotmap_health *health; /* m */
    size_t *nodes;               /* q * width, invariant 2 */
};

int slotmap_create(const struct ring *r,
                   slotmap_health_cb health,
                   void *data,
                   struct slotmap **out)
{
    struct slotmap *sm = rk_calloc(1, sizeof(*sm));
    if (sm == NULL) {
        return RK_ENOMEM;
    }
    sm->q = ring_size(r);
    sm->m = ring_member_count(r);
    sm->width = ring_target_n(r) < sm->m ? ring_target_n(r) : sm->m;
    sm->health = rk_calloc(sm->m, sizeof(*sm->health));
    sm->nodes = rk_calloc((size_t)sm->q * sm->width, sizeof(*sm->nodes));
    if (sm->health == NULL || sm->nodes == NULL) {
        slotmap_destroy(sm);
        return RK_ENOMEM;
    }
    for (size_t i = 0; i < sm->m; i++) {
        sm->health[i] = health(data, ring_member_id(r, i, NULL));
    }
    for (uint32_t p = 0; p < sm->q; p++) {
        size_t *l = sm->nodes + (size_t)p * sm->width;
        size_t got = ring_preflist(r, p, l, sm->width);
        (void)RK_ALWAYS(got == sm->width);
        size_t best = 0;
        for (size_t i = 1; i < sm->width; i++) {
            if (sm->health[l[i]] < sm->health[l[best]]) {
                best = i;
            }
        }
        size_t primary = l[best];
        memmove(l + 1, l, best * sizeof(*l));
        l[0] = primary;
    }
    *out = sm;
    return RK_OK;
}

void slotmap_destroy(struct slotmap *m)
{
    if (m == NULL) {
        return;
    }
    rk_free(m->health);
    rk_free(m->nodes);
    rk_free(m);
}

uint32_t slotmap_partitions(const struct slotmap *m)
{
    return m->q;
}

size_t slotmap_width(const struct slotmap *m)
{
    return m->width;
}

enum slotmap_health slotmap_health(const struct slotmap *m, size_t member)
{
    return m->health[member];
}

const size_t *slotmap_nodes(const struct slotmap *m, uint32_t p)
{
    return m->nodes + (size_t)p * m->width;
}

bool slotmap_same_nodes(const struct slotmap *m, uint32_t a, uint32_t b)
{
    return memcmp(slotmap_nodes(m, a), slotmap_nodes(m, b),
                  m->width * sizeof(*m->nodes)) == 0;
}

uint32_t slotmap_range_end(const struct slotmap *m, uint32_t p)
{
    uint32_t e = p + 1;
    while (e < m->q && slotmap_same_nodes(m, p, e)) {
        e++;
    }
    return e;
}

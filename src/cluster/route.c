/*
 * route.c - see route.h.  Moved out of src/server/cluster.c
 * (build_targets_n, pick_coordinator, the N/R/W clamp of recompute and
 * op_n/op_r/op_w) so it has unit tests (tests/unit/cluster/test_route.c)
 * and the simulator runs the same code.
 */
#include "cluster/route.h"

#include <string.h>

/* Whether `id` can serve the request v routes: up (self always is), and
 * for a write also not degraded. */
static bool up_or_self(const struct route_view *v, const char *id)
{
    bool up =
        strcmp(id, v->self) == 0 || v->is_up == NULL || v->is_up(v->data, id);
    return up && !(v->write && v->is_degraded && v->is_degraded(v->data, id));
}

void route_targets(const struct route_view *v,
                   const void *key,
                   size_t klen,
                   uint32_t n,
                   struct route_targets *t)
{
    t->n = t->n_down = t->n_pending = 0;
    if (v->ring == NULL) {
        return;
    }
    const struct ring *r = v->ring;
    size_t idx[ROUTE_MAX_TARGETS];
    uint32_t part = ring_partition_of_key(r, key, klen);
    size_t all = ring_preflist(r, part, idx, ROUTE_MAX_TARGETS);
    size_t np = n < all ? n : all;
    size_t fb = np; /* next fallback to try */
    for (size_t i = 0; i < np; i++) {
        const char *p = ring_member_id(r, idx[i], NULL);
        if (up_or_self(v, p)) {
            t->id[t->n] = p;
            t->hint_for[t->n++] = NULL;
            continue;
        }
        const char *f = NULL;
        while (v->sloppy && f == NULL && fb < all) {
            const char *cand = ring_member_id(r, idx[fb++], NULL);
            if (up_or_self(v, cand)) {
                f = cand;
            }
        }
        if (f) {
            t->id[t->n] = f;
            t->hint_for[t->n++] = p;
        } else {
            t->id[t->n] = p;
            t->hint_for[t->n++] = NULL;
            t->down[t->n_down++] = p;
        }
    }
    if (v->next == NULL || ring_size(v->next) != ring_size(r)) {
        return;
    }
    size_t nidx[ROUTE_MAX_TARGETS];
    size_t nall = ring_preflist(v->next, part, nidx, ROUTE_MAX_TARGETS);
    size_t nn = n < nall ? n : nall;
    for (size_t j = 0; j < nn; j++) {
        const char *id = ring_member_id(v->next, nidx[j], NULL);
        bool cur = false;
        for (size_t i = 0; i < np && !cur; i++) {
            cur = strcmp(ring_member_id(r, idx[i], NULL), id) == 0;
        }
        if (!cur) {
            t->pending[t->n_pending++] = id;
        }
    }
}

size_t route_pick_coordinator(const struct route_view *v,
                              const struct route_targets *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (!t->hint_for[i] && strcmp(t->id[i], v->self) == 0 &&
            up_or_self(v, t->id[i])) {
            return i;
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        if (!t->hint_for[i] && up_or_self(v, t->id[i])) {
            return i;
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->hint_for[i]) {
            return i;
        }
    }
    return 0;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

struct route_quorum route_clamp(struct route_quorum c, size_t valid_members)
{
    uint32_t cap =
        (uint32_t)(valid_members < ROUTE_MAX_TARGETS ? valid_members
                                                     : ROUTE_MAX_TARGETS);
    if (cap == 0) {
        cap = 1;
    }
    struct route_quorum q;
    q.n = min_u32(c.n ? c.n : 1, cap);
    q.r = min_u32(c.r ? c.r : 1, q.n);
    q.w = min_u32(c.w ? c.w : 1, q.n);
    return q;
}

struct route_quorum route_request(struct route_quorum e, struct route_quorum o)
{
    struct route_quorum q;
    q.n = o.n && o.n < e.n ? o.n : e.n;
    q.r = min_u32(o.r ? o.r : e.r, q.n);
    q.w = min_u32(o.w ? o.w : e.w, q.n);
    return q;
}

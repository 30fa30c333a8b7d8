/*
 * route.c - the known nodes, the installed topology and the choice of a
 * node for each attempt (internal.h).  No I/O: the blocking (ringkv.c)
 * and the asynchronous (async.c) API read CLUSTER SLOTS their own way and
 * hand the reply to rkl_route_install().
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "lib/internal.h"

int rkl_route_node_index(struct rkl_route *r, const struct rkl_addr *a)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        if (r->nodes[i].addr.port == a->port &&
            strcmp(r->nodes[i].addr.host, a->host) == 0) {
            return (int)i;
        }
    }
    struct rkl_node *p =
        rk_realloc(r->nodes, (r->n_nodes + 1) * sizeof(*r->nodes));
    if (p == NULL) {
        return -1;
    }
    r->nodes = p;
    struct rkl_node *n = &p[r->n_nodes];
    memset(n, 0, sizeof(*n));
    n->addr = *a;
    snprintf(n->name, sizeof(n->name),
             strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
    return (int)r->n_nodes++;
}

int rkl_route_init(struct rkl_route *r,
                   const char *const *seeds,
                   size_t n_seeds,
                   int refresh_interval_ms,
                   int down_ms,
                   uint64_t rng_seed,
                   char *errbuf,
                   size_t errlen)
{
    memset(r, 0, sizeof(*r));
    rkl_topo_init(&r->topo);
    r->refresh_interval_ms = refresh_interval_ms;
    r->down_ms = down_ms;
    r->rng = rng_seed | 1;
    r->refresh_needed = true;
    if (seeds == NULL || n_seeds == 0) {
        snprintf(errbuf, errlen, "no seeds");
        return RINGKV_EINVAL;
    }
    for (size_t i = 0; i < n_seeds; i++) {
        struct rkl_addr a;
        if (rkl_addr_parse(seeds[i], &a) != RINGKV_OK) {
            snprintf(errbuf, errlen, "bad seed address '%s' (want host:port)",
                     seeds[i] ? seeds[i] : "(null)");
            return RINGKV_EINVAL;
        }
        if (rkl_route_node_index(r, &a) < 0) {
            return RINGKV_ENOMEM;
        }
    }
    r->n_seeds = r->n_nodes;
    return RINGKV_OK;
}

void rkl_route_fini(struct rkl_route *r)
{
    rk_free(r->nodes);
    rkl_topo_fini(&r->topo);
    rk_free(r->topo_node);
    memset(r, 0, sizeof(*r));
}

int rkl_route_install(struct rkl_route *r,
                      size_t from,
                      const struct resp_value *v,
                      int64_t now_ms,
                      char *errbuf,
                      size_t errlen)
{
    const struct rkl_node *n = &r->nodes[from];
    struct rkl_topo t;
    char err[256] = "";
    int rc;
    if (v->type == RESP_ERROR) {
        if (rkl_error_code(v) == RINGKV_EAUTH) {
            snprintf(errbuf, errlen, "%s: %s", n->name, v->str);
            return RINGKV_EAUTH;
        }
        /* no CLUSTER (a plain Redis server): it serves every slot */
        rc = rkl_topo_single(&t, n->addr.host, n->addr.port);
    } else {
        rc = rkl_topo_from_slots(&t, v, n->addr.host, err, sizeof(err));
        if (rc == RINGKV_OK && t.n_ranges == 0) {
            rkl_topo_fini(&t);
            rc = rkl_topo_single(&t, n->addr.host, n->addr.port);
        }
    }
    if (rc != RINGKV_OK) {
        snprintf(errbuf, errlen, "%s: %s", n->name,
                 err[0] ? err : ringkv_strerror(rc));
        return rc;
    }
    uint16_t *map = rk_calloc(t.n_nodes ? t.n_nodes : 1, sizeof(*map));
    if (map == NULL) {
        rkl_topo_fini(&t);
        return RINGKV_ENOMEM;
    }
    for (size_t i = 0; i < t.n_nodes; i++) {
        int idx = rkl_route_node_index(r, &t.nodes[i]);
        if (idx < 0) {
            rk_free(map);
            rkl_topo_fini(&t);
            return RINGKV_ENOMEM;
        }
        map[i] = (uint16_t)idx;
    }
    rkl_topo_fini(&r->topo);
    rk_free(r->topo_node);
    r->topo = t;
    r->topo_node = map;
    r->refreshes++;
    r->refresh_needed = false;
    r->next_refresh_ms = r->refresh_interval_ms < 0
                             ? INT64_MAX
                             : now_ms + r->refresh_interval_ms;
    return RINGKV_OK;
}

size_t rkl_route_refresh_order(const struct rkl_route *r,
                               int64_t now_ms,
                               size_t *order)
{
    size_t k = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < r->n_nodes; i++) {
            const struct rkl_node *n = &r->nodes[i];
            bool pick = pass == 0 ? n->conn != NULL
                        : pass == 1
                            ? n->conn == NULL && n->down_until_ms <= now_ms
                            : n->conn == NULL && n->down_until_ms > now_ms;
            if (pick) {
                order[k++] = i;
            }
        }
    }
    return k;
}

bool rkl_route_refresh_due(struct rkl_route *r, int64_t now_ms)
{
    if (now_ms >= r->next_refresh_ms) {
        r->refresh_needed = true;
    }
    return r->refresh_needed;
}

size_t rkl_route_pick(struct rkl_route *r,
                      uint32_t slot,
                      int attempt,
                      int64_t now_ms)
{
    uint16_t cand[RKL_MAX_REPLICAS];
    size_t n = 0;
    const struct rkl_range *rg = rkl_topo_route(&r->topo, slot);
    if (rg == NULL) {
        return (size_t)(attempt - 1) % r->n_nodes;
    }
    for (uint8_t i = 0; i < rg->n; i++) {
        uint16_t p = r->topo_node[rg->nodes[i]];
        if (r->nodes[p].down_until_ms <= now_ms) {
            cand[n++] = p;
        }
    }
    if (n == 0) { /* all down: try them anyway */
        for (uint8_t i = 0; i < rg->n; i++) {
            cand[n++] = r->topo_node[rg->nodes[i]];
        }
    }
    return cand[(size_t)(attempt - 1) % n];
}

const char *rkl_route_topo_addr(const struct rkl_route *r, size_t i)
{
    if (i >= r->topo.n_nodes) {
        return NULL;
    }
    return r->nodes[r->topo_node[i]].name;
}

void rkl_route_node_down(struct rkl_route *r, size_t i, int64_t now_ms)
{
    r->nodes[i].down_until_ms = now_ms + r->down_ms;
}

static uint32_t rnd32(struct rkl_route *r)
{
    /* xorshift64*: jitter only */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return (uint32_t)((r->rng * 2685821657736338717ull) >> 32);
}

bool rkl_route_retry(struct rkl_route *r,
                     const struct rkl_policy *p,
                     int attempt,
                     int err,
                     bool sent,
                     bool idempotent,
                     unsigned flags,
                     int64_t remaining_ms,
                     int *sleep_ms)
{
    if (err == RINGKV_EIO || err == RINGKV_ETIMEDOUT) {
        r->refresh_needed = true;
    }
    return rkl_retry_decide(p, attempt, err, sent, idempotent, flags,
                            remaining_ms, rnd32(r), sleep_ms);
}

/* topo.c - the slot routing table from CLUSTER SLOTS (internal.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lib/internal.h"

void rkl_topo_init(struct rkl_topo *t)
{
    memset(t, 0, sizeof(*t));
}

void rkl_topo_fini(struct rkl_topo *t)
{
    rk_free(t->nodes);
    rk_free(t->ranges);
    rkl_topo_init(t);
}

static int fail(struct rkl_topo *t,
                char *errbuf,
                size_t errlen,
                const char *what)
{
    rkl_topo_fini(t);
    if (errbuf != NULL && errlen > 0) {
        snprintf(errbuf, errlen, "bad CLUSTER SLOTS reply: %s", what);
    }
    return RINGKV_EPROTO;
}

/* Index of host:port in t->nodes, added when new; -1 = ENOMEM, -2 = too
 * many nodes. */
static int node_index(struct rkl_topo *t,
                      const char *host,
                      size_t hlen,
                      int port)
{
    for (size_t i = 0; i < t->n_nodes; i++) {
        if (t->nodes[i].port == port && strlen(t->nodes[i].host) == hlen &&
            memcmp(t->nodes[i].host, host, hlen) == 0) {
            return (int)i;
        }
    }
    if (t->n_nodes >= RKL_MAX_NODES) {
        return -2;
    }
    struct rkl_addr *n =
        rk_realloc(t->nodes, (t->n_nodes + 1) * sizeof(*t->nodes));
    if (n == NULL) {
        return -1;
    }
    t->nodes = n;
    memcpy(n[t->n_nodes].host, host, hlen);
    n[t->n_nodes].host[hlen] = '\0';
    n[t->n_nodes].port = port;
    return (int)t->n_nodes++;
}

static bool is_text(const struct resp_value *v)
{
    return v->type == RESP_BULK || v->type == RESP_SIMPLE;
}

int rkl_topo_from_slots(struct rkl_topo *t,
                        const struct resp_value *v,
                        const char *default_host,
                        char *errbuf,
                        size_t errlen)
{
    rkl_topo_init(t);
    if (v->type != RESP_ARRAY) {
        return fail(t, errbuf, errlen, "not an array");
    }
    if (v->n > RKL_SLOTS) {
        return fail(t, errbuf, errlen, "more ranges than slots");
    }
    if (v->n > 0) {
        t->ranges = rk_calloc(v->n, sizeof(*t->ranges));
        if (t->ranges == NULL) {
            rkl_topo_fini(t);
            return RINGKV_ENOMEM;
        }
    }
    size_t dlen = default_host ? strlen(default_host) : 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct resp_value *r = &v->elems[i];
        if (r->type != RESP_ARRAY || r->n < 3) {
            return fail(t, errbuf, errlen,
                        "a range is not [start, end, node...]");
        }
        if (r->elems[0].type != RESP_INT || r->elems[1].type != RESP_INT) {
            return fail(t, errbuf, errlen, "a slot is not an integer");
        }
        int64_t s = r->elems[0].integer, e = r->elems[1].integer;
        if (s < 0 || e >= RKL_SLOTS || s > e) {
            return fail(t, errbuf, errlen, "a slot range is out of 0..16383");
        }
        struct rkl_range *rg = &t->ranges[t->n_ranges];
        rg->start = (uint16_t)s;
        rg->end = (uint16_t)e;
        for (size_t j = 2; j < r->n; j++) {
            const struct resp_value *nd = &r->elems[j];
            if (nd->type != RESP_ARRAY || nd->n < 2 ||
                !is_text(&nd->elems[0]) || nd->elems[1].type != RESP_INT) {
                return fail(t, errbuf, errlen,
                            "a node is not [host, port, ...]");
            }
            const char *host = nd->elems[0].str;
            size_t hlen = nd->elems[0].len;
            if (hlen == 0 || (hlen == 1 && host[0] == '?')) {
                host = default_host ? default_host : "";
                hlen = dlen;
            }
            int64_t port = nd->elems[1].integer;
            if (hlen == 0 || hlen > RKL_MAX_HOST ||
                memchr(host, '\0', hlen) != NULL || port < 1 || port > 65535) {
                return fail(t, errbuf, errlen, "a node has a bad host or port");
            }
            if (rg->n >= RKL_MAX_REPLICAS) {
                continue;
            }
            int idx = node_index(t, host, hlen, (int)port);
            if (idx == -1) {
                rkl_topo_fini(t);
                return RINGKV_ENOMEM;
            }
            if (idx == -2) {
                return fail(t, errbuf, errlen, "too many nodes");
            }
            bool dup = false;
            for (uint8_t k = 0; k < rg->n; k++) {
                dup = dup || rg->nodes[k] == (uint16_t)idx;
            }
            if (!dup) {
                rg->nodes[rg->n++] = (uint16_t)idx;
            }
        }
        for (int64_t sl = s; sl <= e; sl++) {
            if (t->slot_range[sl] != 0) {
                return fail(t, errbuf, errlen, "slot ranges overlap");
            }
            t->slot_range[sl] = (uint16_t)(t->n_ranges + 1);
        }
        t->n_ranges++;
    }
    return RINGKV_OK;
}

int rkl_topo_single(struct rkl_topo *t, const char *host, int port)
{
    rkl_topo_init(t);
    size_t hlen = strlen(host);
    if (hlen == 0 || hlen > RKL_MAX_HOST || port < 1 || port > 65535) {
        return RINGKV_EINVAL;
    }
    t->ranges = rk_calloc(1, sizeof(*t->ranges));
    if (t->ranges == NULL || node_index(t, host, hlen, port) < 0) {
        rkl_topo_fini(t);
        return RINGKV_ENOMEM;
    }
    t->ranges[0].start = 0;
    t->ranges[0].end = RKL_SLOTS - 1;
    t->ranges[0].n = 1;
    t->ranges[0].nodes[0] = 0;
    t->n_ranges = 1;
    for (size_t s = 0; s < RKL_SLOTS; s++) {
        t->slot_range[s] = 1;
    }
    return RINGKV_OK;
}

const struct rkl_range *rkl_topo_route(const struct rkl_topo *t, uint32_t slot)
{
    if (slot >= RKL_SLOTS || t->slot_range[slot] == 0) {
        return NULL;
    }
    return &t->ranges[t->slot_range[slot] - 1];
}

int rkl_addr_parse(const char *s, struct rkl_addr *a)
{
    if (s == NULL) {
        return RINGKV_EINVAL;
    }
    const char *colon;
    const char *host = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return RINGKV_EINVAL;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return RINGKV_EINVAL;
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen > RKL_MAX_HOST) {
        return RINGKV_EINVAL;
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
        return RINGKV_EINVAL;
    }
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    a->port = (int)port;
    return RINGKV_OK;
}

/*
 * peer_transport_admin.c - the peer transport's fault injection, stats and
 * peer listing; see peer_transport.h.
 */
#include <event2/buffer.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "server/peer_transport_internal.h"

int peer_transport_set_fault(struct peer_transport *t,
                             const char *node_id,
                             bool drop_in,
                             bool drop_out)
{
    if (t == NULL || node_id == NULL || node_id[0] == '\0' ||
        strlen(node_id) > PEER_MAX_NODE_ID) {
        return RK_EINVAL;
    }
    for (size_t i = 0; i < t->n_faults; i++) {
        if (strcmp(t->faults[i].id, node_id) != 0) {
            continue;
        }
        if (!drop_in && !drop_out) {
            rk_free(t->faults[i].id);
            t->faults[i] = t->faults[--t->n_faults];
            return RK_OK;
        }
        t->faults[i].drop_in = drop_in;
        t->faults[i].drop_out = drop_out;
        return RK_OK;
    }
    if (!drop_in && !drop_out) {
        return RK_OK;
    }
    struct fault *nf =
        rk_realloc(t->faults, (t->n_faults + 1) * sizeof(*t->faults));
    if (nf == NULL) {
        return RK_ENOMEM;
    }
    t->faults = nf;
    char *id = rk_strdup(node_id);
    if (id == NULL) {
        return RK_ENOMEM;
    }
    nf[t->n_faults++] = (struct fault){id, drop_in, drop_out};
    rk_log(RK_LOG_INFO, "peer_fault_set", "peer=%s drop_in=%d drop_out=%d",
           node_id, (int)drop_in, (int)drop_out);
    return RK_OK;
}

void peer_transport_clear_faults(struct peer_transport *t)
{
    for (size_t i = 0; i < t->n_faults; i++) {
        rk_free(t->faults[i].id);
    }
    t->n_faults = 0;
}

static size_t conns_of(const struct peer_transport *t, const struct peer *p)
{
    size_t n = 0;
    for (const struct conn *c = t->conns; c; c = c->next) {
        n += p == NULL || c->peer == p;
    }
    return n;
}

int peer_transport_stats(const struct peer_transport *t,
                         const char *node_id,
                         struct peer_transport_stats *out)
{
    if (node_id) {
        const struct peer *p = pt__peer_by_id(t, node_id, strlen(node_id));
        if (p == NULL) {
            return RK_ENOTFOUND;
        }
        *out = p->st;
        out->queue_bytes = pt__queue_bytes(p);
        out->n_peers = 1;
        out->n_connected = p->active != NULL;
        out->n_conns = conns_of(t, p);
        return RK_OK;
    }
    *out = t->st;
    out->queue_bytes = 0;
    out->n_peers = 0;
    out->n_connected = 0;
    for (const struct peer *p = t->peers; p; p = p->next) {
        out->queue_bytes += pt__queue_bytes(p);
        out->n_peers++;
        out->n_connected += p->active != NULL;
    }
    out->n_conns = conns_of(t, NULL);
    return RK_OK;
}

size_t peer_transport_list(const struct peer_transport *t,
                           struct peer_transport_peer *out,
                           size_t cap)
{
    size_t n = 0;
    for (const struct peer *p = t->peers; p; p = p->next, n++) {
        if (n < cap) {
            out[n] = (struct peer_transport_peer){
                .node_id = p->id,
                .id_len = p->id_len,
                .host = p->host,
                .port = p->port,
                .connected = p->active != NULL,
                .queue_bytes = pt__queue_bytes(p),
            };
        }
    }
    return n;
}

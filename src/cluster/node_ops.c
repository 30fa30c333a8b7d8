/*
 * node_ops.c - the node's operations (node.h): the pooled operation table,
 * client reads and writes over the coordinator (a write is an UPDATE at
 * its coordinating replica, which issues the dot, then a PUT of the
 * resulting object to the key's replicas, answered after W), and the
 * routing of coordinator answers to the operation that owns them (the
 * coordinator cookie is the operation's slot; its kind says what it is
 * for: one meaning per field).  Moved from src/server/cluster.c
 * (start_key, on_coord_reply, the UPDATE/WRITE phases of a command).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/node_internal.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

/* ---- operations ---------------------------------------------------------- */

struct node__op *node__op_get(struct node *n, enum node__op_kind kind)
{
    struct node__op *op = n->free_ops;
    if (op) {
        n->free_ops = op->next;
    } else {
        if (n->n_ops >= n->max_ops) {
            return NULL;
        }
        op = rk_calloc(1, sizeof(*op));
        if (op == NULL) {
            return NULL;
        }
        rk_buf_init(&op->key);
        rk_buf_init(&op->ctx);
        rk_buf_init(&op->val);
        rk_buf_init(&op->obj);
        op->slot = (uint32_t)n->n_ops;
        n->ops[n->n_ops++] = op;
    }
    op->used = true;
    op->kind = kind;
    op->id = ++n->next_op_id;
    op->cookie = 0;
    op->coord_req = 0;
    op->phase = 0;
    op->hinted = false;
    op->rerouted = false;
    op->hint_seq = 0;
    op->queued = false;
    op->gc = false;
    op->gc_attempt = 0;
    op->counter = false;
    op->counter_state = false;
    op->next = NULL;
    rk_buf_clear(&op->key);
    rk_buf_clear(&op->ctx);
    rk_buf_clear(&op->val);
    rk_buf_clear(&op->obj);
    return op;
}

void node__op_put(struct node *n, struct node__op *op)
{
    op->used = false;
    op->coord_req = 0;
    rk_buf_shrink(&op->val, 4096);
    rk_buf_shrink(&op->obj, 4096);
    op->next = n->free_ops;
    n->free_ops = op;
}

static void ready_remove(struct node *n, struct node__op *op)
{
    for (struct node__op **pp = &n->ready; *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    }
    op->queued = false;
    op->next = NULL;
}

static void ready_push(struct node *n, struct node__op *op)
{
    if (!op->queued) {
        op->queued = true;
        op->next = n->ready;
        n->ready = op;
    }
}

/* The NODE_REPLY of a client operation, which ends it. */
static void reply_op(struct node *n,
                     struct node__op *op,
                     int status,
                     const struct coord_reply *r,
                     const struct rk_buf *obj,
                     const char *message)
{
    if (op->gc) {
        /* a block delete of the node's own: no client to answer */
        node__gc_done(n, op, status);
        node__op_put(n, op);
        return;
    }
    struct node__offs *o;
    struct node_action *a = node__push(n, NODE_REPLY, &o);
    if (a) {
        struct node_result *res = &a->result;
        res->cookie = op->cookie;
        res->op_id = op->id;
        res->kind = op->kind == NODE__OP_READ ? NODE_OP_READ : NODE_OP_WRITE;
        res->status = status;
        if (r) {
            res->successes = r->successes;
            res->n_targets = r->n_targets;
            res->need = r->need;
        }
        const void *p = obj ? obj->base : r && r->found ? r->object.ptr : NULL;
        size_t len = obj ? obj->len : r && r->found ? r->object.len : 0;
        if (status == RK_OK && p) {
            res->found = true;
            o->object = node__arena_put(n, p, len, false);
            o->object_len = len;
        }
        if (message && message[0]) {
            snprintf(res->message, sizeof(res->message), "%s", message);
        } else {
            res->message[0] = '\0'; /* the common case: no formatting */
        }
    }
    if (status == RK_ENOQUORUM) {
        n->st.noquorum++;
    }
    node__op_put(n, op);
}

/* Whether a refused UPDATE goes once more to another replica: its
 * coordinating replica's storage failed (it is degraded now, so routing
 * picks a healthy one); nothing was acknowledged. */
static bool storage_refused(const struct node__op *op, int status)
{
    return !op->rerouted &&
           (status == RK_EREADONLY || status == RK_EIO || status == RK_ENOSPC);
}

static struct node__op *op_of_reply(struct node *n, const struct coord_reply *r)
{
    if (r->cookie >= n->n_ops) {
        return NULL;
    }
    struct node__op *op = n->ops[r->cookie];
    return op->used && op->coord_req == r->req_id ? op : NULL;
}

void node__on_coord_reply(struct node *n, const struct coord_reply *r)
{
    struct node__op *op = op_of_reply(n, r);
    if (op == NULL) {
        return;
    }
    op->coord_req = 0;
    switch (op->kind) {
        case NODE__OP_HINT:
            node__hint_reply(n, op, r);
            return;
        case NODE__OP_REAP:
            node__reap_reply(n, op, r);
            return;
        case NODE__OP_GCCHECK:
            node__gc_check_reply(n, op, r);
            return;
        case NODE__OP_AAE:
            node__aae_repair_reply(n, op, r);
            return;
        case NODE__OP_READ:
            reply_op(n, op, r->status, r, NULL,
                     r->status == RK_ENOQUORUM ? r->message : NULL);
            return;
        case NODE__OP_WRITE:
            break;
    }
    if (op->phase == 1) {
        if (r->status == RK_OK && r->found) {
            rk_buf_clear(&op->obj);
            if (rk_buf_append(&op->obj, r->object.ptr, r->object.len) !=
                RK_OK) {
                reply_op(n, op, RK_ENOMEM, r, NULL, "ERR out of memory");
                return;
            }
            op->phase = 2;
            ready_push(n, op); /* the PUT starts after the drain */
            return;
        }
        if (storage_refused(op, r->status)) {
            op->rerouted = true; /* process_ready sends the UPDATE again */
            ready_push(n, op);
            return;
        }
        char msg[NODE_MESSAGE_MAX];
        int st = r->status == RK_OK ? RK_EPROTO : r->status;
        if (st == RK_ENOQUORUM) {
            /* the coordinating replica did not answer: no replica stored
             * the write, of the W it needs */
            snprintf(msg, sizeof(msg),
                     "NOQUORUM reached 0 of %" PRIu32
                     " (the coordinating replica did not answer)",
                     op->q.w);
        } else if (op->counter && st == RK_ERANGE) {
            /* the coordinating replica's counter is not an integer, or
             * the increment would take it out of range */
            snprintf(msg, sizeof(msg),
                     "ERR value is not an integer or out of range");
        } else {
            snprintf(msg, sizeof(msg), "ERR cluster request failed: %s",
                     rk_strerror(st));
        }
        reply_op(n, op, st, r, NULL, msg);
        return;
    }
    reply_op(n, op, r->status, r, r->status == RK_OK ? &op->obj : NULL,
             r->status == RK_ENOQUORUM ? r->message : NULL);
}

/* ---- client operations --------------------------------------------------- */

/* The targets of op's key for its N (a write's in the write view: not
 * on degraded nodes): RK_OK, or RK_ENOTFOUND (no ring). */
static int op_targets(const struct node *n,
                      const struct node__op *op,
                      struct route_targets *t)
{
    if (op->kind == NODE__OP_WRITE) {
        node__write_targets(n, op->key.base, op->key.len, op->q.n, t);
    } else {
        node__targets(n, op->key.base, op->key.len, op->q.n, t);
    }
    return t->n ? RK_OK : RK_ENOTFOUND;
}

static int start_read(struct node *n, struct node__op *op, uint64_t now)
{
    struct route_targets t;
    if (op_targets(n, op, &t) != RK_OK) {
        return RK_ENOTFOUND;
    }
    struct coord_get_req g = {
        .key = op->key.base,
        .klen = op->key.len,
        .targets = t.id,
        .n_targets = t.n,
        .r = op->q.r < t.n ? op->q.r : (uint32_t)t.n,
        .timeout_ms = op->timeout_ms,
        .repair_wait_ms = n->set.read_repair_wait_ms,
        .hint_for = t.hint_for,
        .cookie = op->slot,
        .speculative_ms = n->set.speculative_retry_ms,
    };
    if (g.r < t.n && n->set.read_repair_permille < 1000 &&
        rk_env_rand64(n->env) % 1000 >= n->set.read_repair_permille) {
        g.fanout = g.r;
    }
    return coord_start_get(n->coord, &g, now, &op->coord_req);
}

static int start_update(struct node *n, struct node__op *op, uint64_t now)
{
    struct route_targets t;
    if (op_targets(n, op, &t) != RK_OK) {
        return RK_ENOTFOUND;
    }
    size_t x = node__pick_coordinator(n, &t);
    snprintf(op->coord_id, sizeof(op->coord_id), "%s", t.id[x]);
    uint32_t flags = op->tomb ? PEER_KV_TOMBSTONE : 0;
    if (op->own_ctx) {
        flags |= PEER_KV_OWN_CONTEXT;
    }
    if (t.hint_for[x]) {
        flags |= PEER_KV_FALLBACK;
    }
    if (op->ctype && !op->tomb) {
        flags |= PEER_KV_CTYPE;
    }
    if (op->chunked && !op->tomb) {
        flags |= PEER_KV_CHUNKED;
    }
    if (op->counter) {
        flags |= PEER_KV_COUNTER;
    }
    if (op->counter_state) {
        flags |= PEER_KV_COUNTER_STATE;
    }
    struct coord_update_req u = {
        .key = op->key.base,
        .klen = op->key.len,
        .context = op->own_ctx ? NULL : op->ctx.base,
        .clen = op->own_ctx ? 0 : op->ctx.len,
        .value = op->tomb && !op->counter_state ? NULL : op->val.base,
        .vlen = op->tomb && !op->counter_state ? 0 : op->val.len,
        .timestamp = op->ts,
        .expire_at_ms = op->tomb ? 0 : op->exp,
        .flags = flags,
        .target = t.id[x],
        .hint_for = t.hint_for[x],
        .timeout_ms = op->timeout_ms,
        .cookie = op->slot,
    };
    return coord_start_update(n->coord, &u, now, &op->coord_req);
}

/*
 * During an ownership transition (membership.h) a write also goes to the
 * key's pending owners, without counting toward W (issue 14 item 1): a
 * KV_PUT that wants no answer to each one that is up (self: merged here),
 * a hint for each one that is down.  What a lost message misses, the
 * pending owner's transfer brings when its fold reaches the key after it
 * arrived at the sources; docs/cluster.md says what remains.
 */
void node__forward_pending(struct node *n,
                           const void *key,
                           size_t klen,
                           const struct rk_buf *obj,
                           uint32_t timeout_ms,
                           const struct route_targets *known)
{
    if (membership_next_ring(n->mem) == NULL) {
        return;
    }
    struct route_targets own;
    const struct route_targets *t = known;
    if (t == NULL) {
        node__write_targets(n, key, klen, n->eff.n, &own);
        t = &own;
    }
    for (size_t i = 0; i < t->n_pending; i++) {
        const char *id = t->pending[i];
        struct peer_msg m = {.type = PEER_KV_PUT};
        m.kv_put.key = (struct peer_bytes){key, klen};
        m.kv_put.object = (struct peer_bytes){obj->base, obj->len};
        m.kv_put.deadline_ms = timeout_ms;
        if (strcmp(id, n->id) == 0) {
            struct peer_msg rep;
            bool changed = false;
            uint64_t seq = 0;
            replica_handle_put(n->data, &n->rcfg, &m.kv_put, &rep, &changed,
                               &seq);
            node__note_write(n, seq);
        } else if (node_peer_is_up(n, id)) {
            node__send(n, id, NULL, 0, 0, &m);
        } else {
            node__hint_for_down(n, id, key, klen, obj);
        }
        n->st.handoff_forwards++;
    }
}

bool node__relay_if_leaving(struct node *n,
                            const void *key,
                            size_t klen,
                            const void *obj,
                            size_t olen)
{
    const struct ring *nx = membership_next_ring(n->mem);
    const struct ring *r = membership_ring(n->mem);
    if (nx == NULL || r == NULL || ring_size(nx) != ring_size(r) ||
        n->hints == NULL || klen == 0) {
        return false;
    }
    uint32_t part = ring_partition_of_key(r, key, klen);
    const char *cur[RING_MAX_N], *nxt[RING_MAX_N];
    size_t nc = ring_preflist_ids(r, part, cur);
    size_t nn = ring_preflist_ids(nx, part, nxt);
    bool in_cur = false;
    for (size_t i = 0; i < nc; i++) {
        in_cur = in_cur || strcmp(cur[i], n->id) == 0;
    }
    for (size_t j = 0; j < nn; j++) {
        if (strcmp(nxt[j], n->id) == 0) {
            return false; /* stays a replica: its copy is not dropped */
        }
    }
    if (!in_cur) {
        return false;
    }
    struct rk_buf view = {.base = (char *)obj, .len = olen, .cap = 0};
    bool relayed = false;
    for (size_t j = 0; j < nn; j++) {
        bool cur_too = false;
        for (size_t i = 0; i < nc && !cur_too; i++) {
            cur_too = strcmp(cur[i], nxt[j]) == 0;
        }
        if (!cur_too) {
            node__hint_for_down(n, nxt[j], key, klen, &view);
            n->st.handoff_relays++;
            relayed = true;
        }
    }
    return relayed;
}

static int start_put(struct node *n, struct node__op *op, uint64_t now)
{
    struct route_targets t;
    if (op_targets(n, op, &t) != RK_OK) {
        return RK_ENOTFOUND;
    }
    int acked = -1;
    if (!n->set.sync_always && engine_acked_seq(n->data) >= n->last_seq) {
        /* The coordinating replica stored the object, and it is in the
         * OS (process_ready waited for the hand-off); under sync=always
         * it counts only once its KV_PUT ack says fdatasync'd. */
        for (size_t i = 0; i < t.n; i++) {
            if (strcmp(t.id[i], op->coord_id) == 0) {
                acked = (int)i;
            }
        }
    }
    struct coord_put_req p = {
        .key = op->key.base,
        .klen = op->key.len,
        .object = op->obj.base,
        .olen = op->obj.len,
        .targets = t.id,
        .n_targets = t.n,
        .hint_for = t.hint_for,
        .acked = acked,
        .w = op->q.w < t.n ? op->q.w : (uint32_t)t.n,
        .timeout_ms = op->timeout_ms,
        .cookie = op->slot,
    };
    node__forward_pending(n, op->key.base, op->key.len, &op->obj,
                          op->timeout_ms, &t);
    return coord_start_put(n->coord, &p, now, &op->coord_req);
}

/* Writes the hints a write leaves for its down owners (once). */
static void write_hints(struct node *n, struct node__op *op)
{
    if (op->hinted) {
        return;
    }
    op->hinted = true;
    struct route_targets t;
    if (op_targets(n, op, &t) != RK_OK) {
        return;
    }
    for (size_t i = 0; i < t.n_down; i++) {
        node__hint_for_down(n, t.down[i], op->key.base, op->key.len, &op->obj);
    }
    if (t.n_down) {
        op->hint_seq = n->last_hint_seq;
    }
}

/*
 * Whether a write's PUT phase must wait (issue 12; after a failed write an
 * engine's acknowledged sequence never advances: nothing waits for it): its
 * hints count as the write they stand for, so they are durable under the sync
 * policy first; and under sync=every and none the coordinating replica's copy
 * counts at once (acked), so it is in the OS first.  The driver's
 * hand-off at the end of the event-loop pass and node_on_durable end the
 * wait (node_wants_handoff).
 */
static bool put_must_wait(const struct node *n, const struct node__op *op)
{
    if (op->hint_seq && engine_acked_seq(n->hints) < op->hint_seq &&
        !node__engine_failed(n->hints)) {
        return true;
    }
    /* During a transition the coordinating replica here may have relayed
     * the write (node__relay_if_leaving): those hints count with it. */
    if (n->hints && membership_next_ring(n->mem) != NULL &&
        engine_acked_seq(n->hints) < n->last_hint_seq &&
        !node__engine_failed(n->hints)) {
        return true;
    }
    return !n->set.sync_always && engine_acked_seq(n->data) < n->last_seq &&
           !node__engine_failed(n->data);
}

/* Starts the PUT phase of writes whose UPDATE answered.  A full
 * coordinator table leaves the write queued for the next tick. */
void node__process_ready(struct node *n, uint64_t now)
{
    if (n->draining || n->in_ready || n->ready == NULL) {
        return;
    }
    if (!n->set.sync_always && engine_acked_seq(n->data) < n->last_seq &&
        !node__engine_failed(n->data)) {
        /* every write waits for this pass's hand-off (put_must_wait):
         * leave the list alone rather than walk it on every event; the
         * hand-off's node_on_durable comes back here (hints are written
         * then, and wait for the next hand-off) */
        return;
    }
    n->in_ready = true;
    struct node__op *stalled = NULL;
    while (n->ready) {
        struct node__op *op = n->ready;
        n->ready = op->next;
        op->queued = false;
        op->next = NULL;
        int rc;
        if (op->phase == 1) {
            rc = start_update(n, op, now); /* rerouted (storage_refused) */
        } else {
            write_hints(n, op);
            rc = put_must_wait(n, op) ? RK_EAGAIN : start_put(n, op, now);
        }
        if (rc == RK_EAGAIN) {
            op->queued = true;
            op->next = stalled;
            stalled = op;
            continue;
        }
        if (rc == RK_EBUSY) {
            op->queued = true;
            op->next = stalled;
            stalled = op;
            continue;
        }
        if (rc != RK_OK) {
            char msg[NODE_MESSAGE_MAX];
            snprintf(msg, sizeof(msg), "ERR cluster request refused: %s",
                     rk_strerror(rc));
            reply_op(n, op, rc, NULL, NULL, msg);
            continue;
        }
        n->st.coordinated++;
        node__drain(n, now);
    }
    n->ready = stalled;
    n->in_ready = false;
}

/*
 * Extra time a request gets for moving `bytes` of value: 1 ms per
 * NODE_SIZE_ALLOWANCE_BYTES (32 KiB, i.e. it assumes at least 32 MB/s
 * per hop), so a 100 MiB value gets 3.2 s on top of the request timeout
 * and small requests are unchanged (issue 12 item 4: a 100 MiB write
 * took over 2 s on one box and failed at the default 2 s deadline).
 */
static uint32_t size_allowance_ms(uint64_t bytes)
{
    uint64_t ms = bytes / NODE_SIZE_ALLOWANCE_BYTES;
    return ms > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)ms;
}

static struct node__op *client_op(struct node *n,
                                  enum node__op_kind kind,
                                  const void *key,
                                  size_t klen,
                                  struct route_quorum overrides,
                                  uint32_t timeout_ms,
                                  uint64_t cookie,
                                  int *rc)
{
    if (key == NULL || klen == 0 || klen > PEER_MAX_KEY) {
        *rc = RK_EINVAL;
        return NULL;
    }
    struct node__op *op = node__op_get(n, kind);
    if (op == NULL) {
        *rc = n->n_ops >= n->max_ops ? RK_EBUSY : RK_ENOMEM;
        return NULL;
    }
    op->cookie = cookie;
    op->q = route_request(n->eff, overrides);
    op->timeout_ms = timeout_ms ? timeout_ms : n->set.request_timeout_ms;
    if (rk_buf_append(&op->key, key, klen) != RK_OK) {
        node__op_put(n, op);
        *rc = RK_ENOMEM;
        return NULL;
    }
    *rc = RK_OK;
    return op;
}

/* The end of node_read / node_write: the started operation's id, or the
 * operation back to the pool when it could not start. */
static int client_end(struct node *n,
                      struct node__op *op,
                      int rc,
                      uint64_t now,
                      uint64_t *op_id)
{
    if (op && rc == RK_OK) {
        n->st.coordinated++;
        *op_id = op->id;
        node__drain(n, now);
    } else if (op) {
        node__op_put(n, op);
    }
    node__process_ready(n, now);
    node__finish(n);
    return rc;
}

int node_read(struct node *n,
              const struct node_read_req *r,
              uint64_t now,
              uint64_t *op_id)
{
    node__begin(n);
    int rc;
    struct node__op *op =
        client_op(n, NODE__OP_READ, r->key, r->klen, r->overrides,
                  r->timeout_ms, r->cookie, &rc);
    if (op) {
        /* a large object takes longer to move: judge by this node's copy
         * (metadata only), none when it holds no replica of the key */
        struct engine_meta meta;
        if (engine_get(n->data, r->key, r->klen, NULL, &meta) == RK_OK) {
            op->timeout_ms += size_allowance_ms(meta.value_len);
        }
        rc = start_read(n, op, now);
    }
    return client_end(n, op, rc, now, op_id);
}

int node_write(struct node *n,
               const struct node_write_req *w,
               uint64_t now,
               uint64_t *op_id)
{
    node__begin(n);
    int rc;
    struct node__op *op =
        client_op(n, NODE__OP_WRITE, w->key, w->klen, w->overrides,
                  w->timeout_ms, w->cookie, &rc);
    if (op) {
        op->own_ctx = w->own_context;
        op->tomb = w->tombstone;
        op->ctype = w->ctype && !w->tombstone;
        op->chunked = w->chunked && !w->tombstone && !w->ctype;
        op->counter = w->counter && w->own_context && !w->tombstone &&
                      !w->ctype && !w->chunked;
        op->counter_state =
            w->counter_state && !w->counter && !w->ctype && !w->chunked;
        op->ts = w->timestamp;
        op->exp = w->tombstone ? 0 : w->expire_at_ms;
        op->phase = 1;
        if ((!w->own_context && w->clen &&
             rk_buf_append(&op->ctx, w->context, w->clen) != RK_OK) ||
            ((!w->tombstone || op->counter_state) && w->vlen &&
             rk_buf_append(&op->val, w->value, w->vlen) != RK_OK)) {
            rc = RK_ENOMEM;
        } else {
            op->timeout_ms += size_allowance_ms(op->val.len);
            rc = start_update(n, op, now);
        }
    }
    return client_end(n, op, rc, now, op_id);
}

int node__start_own_write(struct node *n,
                          const void *key,
                          size_t klen,
                          uint64_t ts,
                          uint8_t attempt,
                          uint64_t now)
{
    struct route_quorum q = {0, 0, 0};
    int rc;
    struct node__op *op = client_op(n, NODE__OP_WRITE, key, klen, q, 0, 0, &rc);
    if (op == NULL) {
        return rc;
    }
    op->gc = true;
    op->gc_attempt = attempt;
    op->own_ctx = true;
    op->tomb = true;
    op->ctype = false;
    op->chunked = false;
    op->counter = false;
    op->ts = ts;
    op->exp = 0;
    op->phase = 1;
    rc = start_update(n, op, now);
    if (rc != RK_OK) {
        node__op_put(n, op);
        return rc;
    }
    node__drain(n, now);
    return RK_OK;
}

size_t node_cancel(struct node *n, uint64_t cookie)
{
    node__begin(n);
    size_t k = 0;
    for (size_t i = 0; i < n->n_ops; i++) {
        struct node__op *op = n->ops[i];
        if (!op->used || op->cookie != cookie ||
            (op->kind != NODE__OP_READ && op->kind != NODE__OP_WRITE)) {
            continue;
        }
        (void)coord_cancel(n->coord, op->slot);
        if (op->queued) {
            ready_remove(n, op);
        }
        node__op_put(n, op);
        k++;
    }
    node__finish(n);
    return k;
}

bool node__speaks_for_itself(struct node *n,
                             const char *from,
                             size_t from_len,
                             const struct peer_msg *msg,
                             uint64_t now)
{
    struct peer_bytes claimed = {NULL, 0};
    if (msg->type == PEER_GOSSIP) {
        claimed = msg->gossip.from;
    } else if (msg->type == PEER_PING) {
        claimed = msg->ping.from; /* always its sender (swim.c) */
    } else if (msg->type == PEER_PING_REQ) {
        claimed = msg->ping_req.from;
    } else if (msg->type == PEER_JOIN || msg->type == PEER_REPLACE) {
        claimed = msg->join.node_id;
    }
    if (claimed.ptr == NULL ||
        (claimed.len == from_len && memcmp(claimed.ptr, from, from_len) == 0)) {
        return true;
    }
    n->st.peer_spoofed++;
    if (now >= n->spoof_logged_ms + 10000 || n->spoof_logged_ms == 0) {
        n->spoof_logged_ms = now; /* rate-limited */
        char id[CL_ID_MAX + 1];
        size_t l = from_len < CL_ID_MAX ? from_len : CL_ID_MAX;
        memcpy(id, from, l);
        id[l] = '\0';
        node__log(n, RK_LOG_WARN, "peer_spoofed_id",
                  "peer=%s type=%s dropped=%" PRIu64
                  " msg=\"a frame that speaks for another node was "
                  "dropped\"",
                  id, peer_type_name(msg->type), n->st.peer_spoofed);
    }
    return false;
}

void node__log_text(struct node *n, int level, const char *text)
{
    /* the text may hold a peer's strings: quoted and escaped, so that a
     * quote in them cannot add fields to the line (issue 15) */
    char q[CL_TEXT_MAX * 2 + 8];
    const char *t = rk_log_quote(text, q, sizeof(q));
    bool bare = t == text;
    node__log(n, level >= 0 && level <= RK_LOG_ERROR ? level : RK_LOG_INFO,
              "cluster", "msg=%s%s%s", bare ? "\"" : "", t, bare ? "\"" : "");
}

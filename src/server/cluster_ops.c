/*
 * cluster_ops.c - the coordinated commands of clients (see cluster.h and
 * cluster.c's header): a command's key list, its quorum reads through the
 * node (node_read), its handler over the command's coordinated keyspace
 * (keyspace.h), its writes (node_write), and the per-client order of
 * pipelined commands.  RINGKV.GETALL / PUT / DEL work on the versioned
 * object itself.
 */
#include "server/cluster_internal.h"

static void resume_forget(struct cnode *cn, struct client *c);
static void op_begin(struct cnode *cn, struct cop *op);

/* ---- client operations: replies ---------------------------------------- */

static struct cop_key *op_key_by_id(struct cop *op, uint64_t op_id)
{
    for (size_t i = 0; i < op->nkeys; i++) {
        if (op->keys[i].state == 1 && op->keys[i].op_id == op_id) {
            return &op->keys[i];
        }
    }
    return NULL;
}

void cluster__op_queue(struct cnode *cn, struct cop *op)
{
    if (!op->queued) {
        op->queued = true;
        op->rnext = cn->ready;
        cn->ready = op;
    }
}

/* Keeps a read answer: the merged object, its clock as the write
 * context, and its live winner for the handler. */
static int take_read(struct cop_key *k,
                     const struct node_result *r,
                     const struct node_settings *set)
{
    rk_buf_clear(&k->obj);
    rk_buf_clear(&k->ctx);
    k->read = true;
    k->live = false;
    if (!r->found) {
        return RK_OK;
    }
    if (rk_buf_append(&k->obj, r->object.ptr, r->object.len) != RK_OK) {
        return RK_ENOMEM;
    }
    struct dvv_obj o;
    dvv_init(&o);
    int rc = dvv_decode(&o, r->object.ptr, r->object.len);
    size_t dropped = 0;
    if (rc == RK_OK) {
        /* the client sees what the replicas will store: under lww the
         * newest sibling only, and at most max_siblings */
        dropped = set->lww ? dvv_lww(&o) : 0;
        size_t over = 0;
        dvv_bound(&o, set->max_siblings, 0, &over, NULL);
        dropped += over;
    }
    if (rc == RK_OK && dropped > 0) {
        rk_buf_clear(&k->obj);
        rc = dvv_encode(&o, &k->obj);
    }
    size_t w = 0;
    if (rc == RK_OK && replica_winner(&o, server_now_ms(), &w) == RK_OK) {
        k->live = true;
        k->ts = o.sibs[w].ts;
        k->exp = o.sibs[w].expire_at_ms;
        k->ctype = o.sibs[w].ctype;
        rk_buf_clear(&k->val);
        rc = rk_buf_append(&k->val, dvv_value(&o, w), o.sibs[w].vlen);
    } else if (rc == RK_OK) {
        k->ts = dvv_max_ts(&o); /* deleted or expired: remember its clock */
    }
    if (rc == RK_OK) {
        o.n_sibs = 0; /* the clock alone is the context */
        rc = dvv_encode(&o, &k->ctx);
    }
    dvv_fini(&o);
    return rc;
}

void cluster__on_node_reply(struct cnode *cn, const struct node_result *r)
{
    struct cop *op = (struct cop *)(uintptr_t)r->cookie;
    struct cop_key *k = op_key_by_id(op, r->op_id);
    if (k == NULL) {
        return;
    }
    k->state = 2;
    op->inflight--;
    op->done++;
    int rc = r->status;
    if (r->kind == NODE_OP_READ && (rc == RK_OK || rc == RK_ENOTFOUND)) {
        rc = take_read(k, r, node_settings(cn->node));
    }
    if (rc != RK_OK && rc != RK_ENOTFOUND && !op->failed) {
        op->failed = true;
        if (r->message[0]) {
            snprintf(op->err, sizeof(op->err), "%s", r->message);
        } else if (rc == RK_ENOMEM) {
            snprintf(op->err, sizeof(op->err), "ERR out of memory");
        } else {
            snprintf(op->err, sizeof(op->err), "ERR cluster request failed: %s",
                     rk_strerror(rc));
        }
    }
    cluster__op_queue(cn, op);
}

/* ---- operations ------------------------------------------------------------
 */

/* Frees an operation for good. */
static void op_destroy(struct cop *op)
{
    for (size_t i = 0; i < op->keys_init; i++) {
        rk_buf_fini(&op->keys[i].val);
        rk_buf_fini(&op->keys[i].obj);
        rk_buf_fini(&op->keys[i].ctx);
    }
    rk_free(op->keys);
    rk_buf_fini(&op->kbuf);
    rk_buf_fini(&op->reply);
    rk_free(op->argv);
    rk_free(op);
}

/* An operation is done: kept for the next command (its allocations
 * reused, big buffers given back), or freed when the pool is full. */
static void op_free(struct cop *op)
{
    struct cnode *cn = op->c ? op->c->srv->cluster : NULL;
    if (cn == NULL || cn->n_pool >= COP_POOL || op->keys_cap > 256 ||
        op->argv_cap > COP_KEEP_BYTES) {
        op_destroy(op);
        return;
    }
    for (size_t i = 0; i < op->keys_init; i++) {
        rk_buf_shrink(&op->keys[i].val, COP_KEEP_BYTES);
        rk_buf_shrink(&op->keys[i].obj, COP_KEEP_BYTES);
        rk_buf_shrink(&op->keys[i].ctx, COP_KEEP_BYTES);
    }
    rk_buf_shrink(&op->kbuf, COP_KEEP_BYTES);
    rk_buf_shrink(&op->reply, COP_KEEP_BYTES);
    op->pnext = cn->pool;
    cn->pool = op;
    cn->n_pool++;
}

void cluster__pool_free(struct cnode *cn)
{
    while (cn->pool) {
        struct cop *op = cn->pool;
        cn->pool = op->pnext;
        op_destroy(op);
    }
    cn->n_pool = 0;
}

static void unlink_op(struct cnode *cn, struct cop *op)
{
    for (struct cop **pp = &cn->ready; *pp; pp = &(*pp)->rnext) {
        if (*pp == op) {
            *pp = op->rnext;
            break;
        }
    }
    for (struct cop **pp = &cn->stalled; *pp; pp = &(*pp)->snext) {
        if (*pp == op) {
            *pp = op->snext;
            break;
        }
    }
    if (cn->join_op == op) {
        cn->join_op = NULL;
    }
}

void cluster_client_gone(struct client *c)
{
    struct cnode *cn = c->srv->cluster;
    if (cn == NULL) {
        return;
    }
    resume_forget(cn, c);
    struct cop *op = c->cop_head;
    c->cop_head = c->cop_tail = NULL;
    c->n_cops = 0;
    c->cop_block = false;
    while (op) {
        struct cop *next = op->cnext;
        node_cancel(cn->node, (uint64_t)(uintptr_t)op);
        unlink_op(cn, op);
        op_free(op);
        op = next;
    }
}

bool cluster_client_busy(const struct client *c)
{
    return c->n_cops > 0;
}

void cluster__fifo_push(struct client *c, struct cop *op)
{
    op->cnext = NULL;
    if (c->cop_tail) {
        c->cop_tail->cnext = op;
    } else {
        c->cop_head = op;
    }
    c->cop_tail = op;
    c->n_cops++;
}

void cluster__update_block(struct client *c)
{
    bool block = c->n_cops >= CLIENT_PIPELINE;
    for (struct cop *o = c->cop_head; o && !block; o = o->cnext) {
        block = o->barrier;
    }
    c->cop_block = block;
}

/* Whether two operations name a common key (conservative for big ones). */
static bool ops_conflict(const struct cop *a, const struct cop *b)
{
    if (a->nkeys > 16 || b->nkeys > 16) {
        return true;
    }
    for (size_t i = 0; i < a->nkeys; i++) {
        for (size_t j = 0; j < b->nkeys; j++) {
            if (a->keys[i].len == b->keys[j].len &&
                memcmp(a->kbuf.base + a->keys[i].off,
                       b->kbuf.base + b->keys[j].off, a->keys[i].len) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* Queues c to be resumed from cluster__resume_cb, after the callbacks already
 * active in this loop pass (every peer reply read so far) have run. */
static void schedule_resume(struct cnode *cn, struct client *c)
{
    if (c->resume_pending) {
        return;
    }
    c->resume_pending = true;
    c->resume_next = NULL;
    if (cn->resume_tail) {
        cn->resume_tail->resume_next = c;
    } else {
        cn->resume_head = c;
    }
    cn->resume_tail = c;
    event_active(cn->resume_ev, EV_TIMEOUT, 1);
}

void cluster__resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cnode *cn = arg;
    while (cn->resume_head) {
        struct client *c = cn->resume_head;
        cn->resume_head = c->resume_next;
        if (cn->resume_head == NULL) {
            cn->resume_tail = NULL;
        }
        c->resume_pending = false;
        c->resume_next = NULL;
        server_client_resume(c); /* may free c */
    }
}

static void resume_forget(struct cnode *cn, struct client *c)
{
    if (!c->resume_pending) {
        return;
    }
    struct client **pp = &cn->resume_head;
    struct client *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->resume_next;
    }
    if (*pp == c) {
        *pp = c->resume_next;
        if (cn->resume_tail == c) {
            cn->resume_tail = prev;
        }
    }
    c->resume_pending = false;
    c->resume_next = NULL;
}

/* Starts the waiting operations of c that no longer share a key with an
 * earlier unfinished one. */
static void start_waiting(struct cnode *cn, struct client *c)
{
    for (struct cop *o = c->cop_head; o; o = o->cnext) {
        if (!o->waiting) {
            continue;
        }
        bool clash = false;
        for (struct cop *e = c->cop_head; e != o && !clash; e = e->cnext) {
            clash = !e->finished && e->kind == COP_KEYS && ops_conflict(e, o);
        }
        if (!clash) {
            o->waiting = false;
            op_begin(cn, o);
        }
    }
}

/*
 * Appends the replies of finished operations at the head of c's FIFO to
 * its output, runs a deferred command that reached the head, and resumes
 * the client's input.  May free the client (last thing done).
 */
static void client_progress(struct cnode *cn, struct client *c)
{
    for (;;) {
        struct cop *op = c->cop_head;
        if (op == NULL || (!op->finished && op->kind != COP_DEFER)) {
            break;
        }
        c->cop_head = op->cnext;
        if (c->cop_head == NULL) {
            c->cop_tail = NULL;
        }
        c->n_cops--;
        unlink_op(cn, op);
        if (op->kind == COP_DEFER) {
            /* Everything before it is answered: run it as if it had just
             * arrived (it may start a coordinated command of its own). */
            cluster__update_block(c);
            command_dispatch(c, op->argc, op->argv);
            op_free(op);
            continue;
        }
        if (op->failed) {
            c->cur_cmd = op->cmd;
            reply_error(c, op->err);
            c->cur_cmd = NULL;
        } else if (op->reply.len) {
            rk_buf_append(&c->obuf, op->reply.base, op->reply.len);
        }
        op_free(op);
    }
    cluster__update_block(c);
    start_waiting(cn, c);
    schedule_resume(cn, c);
}

void cluster_defer(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct cnode *cn = c->srv->cluster;
    struct cop *op = cluster__op_new(c, NULL, argc, argv);
    if (op == NULL) {
        /* Cannot keep it: answer out of order rather than lose it. */
        reply_error(c, "ERR out of memory");
        return;
    }
    op->kind = COP_DEFER;
    op->barrier = true;
    cluster__fifo_push(c, op);
    cluster__update_block(c);
    (void)cn;
}

/* Starts the node operation of key k in op's current phase.  RK_OK,
 * RK_EBUSY (no free slot), RK_ENOTFOUND (no ring) or another error. */
static int start_key(struct cnode *cn,
                     struct cop *op,
                     struct cop_key *k,
                     uint64_t now,
                     uint64_t *op_id)
{
    const struct req_opts *ro = &op->c->ropts;
    struct route_quorum over = {ro->n, ro->r, ro->w};
    const char *key = op->kbuf.base + k->off;
    uint64_t cookie = (uint64_t)(uintptr_t)op;
    if (op->phase == PH_READ) {
        struct node_read_req r = {
            .key = key,
            .klen = k->len,
            .overrides = over,
            .timeout_ms = ro->timeout_ms,
            .cookie = cookie,
        };
        return node_read(cn->node, &r, now, op_id);
    }
    struct node_write_req w = {
        .key = key,
        .klen = k->len,
        .context = k->own_ctx ? NULL : k->ctx.base,
        .clen = k->own_ctx ? 0 : k->ctx.len,
        .own_context = k->own_ctx,
        .tombstone = k->tomb,
        .value = k->tomb ? NULL : k->val.base,
        .vlen = k->tomb ? 0 : k->val.len,
        .ctype = k->ctype,
        .timestamp = k->ts,
        .expire_at_ms = k->exp,
        .overrides = over,
        .timeout_ms = ro->timeout_ms,
        .cookie = cookie,
    };
    return node_write(cn->node, &w, now, op_id);
}

/* Starts requests for keys of the current phase, up to the window. */
static void op_start_more(struct cnode *cn, struct cop *op)
{
    uint64_t now = cluster__now_mono();
    while (op->next < op->nkeys && op->inflight < COP_WINDOW && !op->failed) {
        struct cop_key *k = &op->keys[op->next];
        if (op->phase != PH_READ && !k->write) {
            k->state = 2;
            op->done++;
            op->next++;
            continue;
        }
        uint64_t id = 0;
        int rc = start_key(cn, op, k, now, &id);
        if (rc == RK_EBUSY) {
            cluster__run_node_actions(cn);
            if (op->inflight == 0 && !op->stalled) {
                op->stalled = true;
                op->snext = cn->stalled;
                cn->stalled = op;
            }
            break;
        }
        if (rc != RK_OK) {
            cluster__run_node_actions(cn);
            op->failed = true;
            if (rc == RK_ENOTFOUND) {
                snprintf(op->err, sizeof(op->err),
                         "CLUSTERDOWN the ring has no members");
            } else {
                snprintf(op->err, sizeof(op->err),
                         "ERR cluster request refused: %s", rk_strerror(rc));
            }
            break;
        }
        k->op_id = id;
        k->state = 1;
        op->inflight++;
        op->next++;
        cluster__run_node_actions(cn); /* may answer at once (w=1) */
    }
}

/* ---- the coordinated keyspace (keyspace.h) --------------------------------
 *
 * A coordinated command's handler reads and writes only the keys it
 * declared (the command table's key positions, plus the keys of a MULTI's
 * queued commands and WATCHed keys for EXEC): reads answer from the
 * versions the quorum read returned (the live winner), writes are recorded
 * in the key and replicated by node_write once the handler returned.
 */

static int key_cmp(const struct cop *op,
                   const struct cop_key *k,
                   const void *key,
                   size_t klen)
{
    size_t n = k->len < klen ? k->len : klen;
    int c = memcmp(op->kbuf.base + k->off, key, n);
    if (c != 0) {
        return c;
    }
    return k->len < klen ? -1 : k->len > klen;
}

/* The declared key, or NULL.  Big key lists are sorted (dedupe_keys). */
static struct cop_key *cop_find(struct cop *op, const void *key, size_t klen)
{
    if (op->nkeys > 64) {
        size_t lo = 0, hi = op->nkeys;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = key_cmp(op, &op->keys[mid], key, klen);
            if (c == 0) {
                return &op->keys[mid];
            }
            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return NULL;
    }
    for (size_t i = 0; i < op->nkeys; i++) {
        if (key_cmp(op, &op->keys[i], key, klen) == 0) {
            return &op->keys[i];
        }
    }
    return NULL;
}

/* Whether k holds a value now (written or read, not deleted or expired). */
static bool cop_key_live(const struct cop_key *k)
{
    return k->live && !(k->exp && k->exp <= server_now_ms());
}

static int coord_ks_get(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        struct rk_buf *val,
                        struct ks_meta *m)
{
    struct cop_key *k = cop_find(ks->data, key, klen);
    if (val) {
        rk_buf_clear(val);
    }
    if (k == NULL || !cop_key_live(k)) {
        return RK_ENOTFOUND;
    }
    size_t skip = 0;
    uint8_t ctlen = 0;
    if (k->ctype && k->val.len > 0) {
        ctlen = (uint8_t)k->val.base[0];
        skip = 1 + (size_t)ctlen;
        skip = skip < k->val.len ? skip : k->val.len;
    }
    if (m) {
        *m = (struct ks_meta){
            .ts = k->ts,
            .expire_at_ms = k->exp,
            .value_len = k->val.len - skip,
            .ctlen = ctlen,
        };
        memcpy(m->ct, k->val.base + 1, ctlen);
    }
    if (val && rk_buf_append(val, k->val.base ? k->val.base + skip : "",
                             k->val.len - skip) != RK_OK) {
        return RK_ENOMEM;
    }
    return RK_OK;
}

static int coord_ks_put(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        const void *val,
                        size_t vlen,
                        uint64_t expire_at_ms,
                        const char *ct,
                        uint8_t ctlen,
                        uint64_t *seq)
{
    struct cop *op = ks->data;
    struct server *s = op->c->srv;
    *seq = 0; /* replicated (and made durable) by node_write */
    if (klen == 0) {
        return RK_EINVAL;
    }
    struct cop_key *k = cop_find(op, key, klen);
    if (k == NULL) {
        return klen > PEER_MAX_KEY ? RK_ETOOBIG : RK_EINVAL;
    }
    if (vlen > s->cfg->proto_max_bulk_len) {
        return RK_ETOOBIG;
    }
    rk_buf_clear(&k->val);
    int rc = RK_OK;
    if (ctlen) {
        rc = rk_buf_append(&k->val, &ctlen, 1);
        if (rc == RK_OK) {
            rc = rk_buf_append(&k->val, ct, ctlen);
        }
    }
    if (rc == RK_OK) {
        rc = rk_buf_append(&k->val, val ? val : "", vlen);
    }
    if (rc != RK_OK) {
        k->live = false; /* the value is gone from k: never write it */
        return rc;
    }
    k->live = true;
    k->write = true;
    k->ctype = ctlen > 0;
    k->exp = expire_at_ms;
    k->ts = hlc_now(&s->clock, server_now_ms());
    return RK_OK;
}

static int coord_ks_del(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        uint64_t *seq)
{
    struct cop *op = ks->data;
    *seq = 0;
    struct cop_key *k = cop_find(op, key, klen);
    if (k == NULL || !cop_key_live(k)) {
        return RK_ENOTFOUND;
    }
    k->live = false;
    k->write = true;
    k->ts = hlc_now(&op->c->srv->clock, server_now_ms());
    return RK_OK;
}

static const struct keyspace_ops coord_ks_ops = {
    .get = coord_ks_get,
    .put = coord_ks_put,
    .del = coord_ks_del,
};

/* Runs fn(cn, op) with the client's output redirected into op->reply. */
static void capture_reply(struct cop *op,
                          void (*fn)(struct cnode *, struct cop *),
                          struct cnode *cn)
{
    struct client *c = op->c;
    struct rk_buf saved = c->obuf;
    c->obuf = op->reply;
    c->last_cmd = op->cmd->name;
    c->cur_cmd = op->cmd;
    fn(cn, op);
    c->cur_cmd = NULL;
    op->reply = c->obuf;
    c->obuf = saved;
}

/* RINGKV.GETALL key: [context, [[value or nil, hlc, unix ms], ...]],
 * newest sibling first; nil for a deleted or expired sibling. */
static void getall_reply(struct cnode *cn, struct cop *op)
{
    (void)cn;
    struct client *c = op->c;
    struct cop_key *k = &op->keys[0];
    struct dvv_obj o;
    dvv_init(&o);
    if (k->obj.len && dvv_decode(&o, k->obj.base, k->obj.len) != RK_OK) {
        reply_error(c, "ERR stored object does not decode");
        dvv_fini(&o);
        return;
    }
    struct rk_buf ctx;
    rk_buf_init(&ctx);
    if (o.n_clock > 0 && dvv_context_encode(&o, &ctx) != RK_OK) {
        reply_error(c, "ERR out of memory");
        goto out;
    }
    reply_array(c, 2);
    reply_bulk(c, ctx.base ? ctx.base : "", ctx.len);
    reply_array(c, o.n_sibs);
    uint64_t now = server_now_ms();
    bool *done = rk_calloc(o.n_sibs ? o.n_sibs : 1, sizeof(bool));
    for (size_t n = 0; n < o.n_sibs; n++) {
        long best = -1;
        for (size_t i = 0; i < o.n_sibs; i++) {
            if (!(done && done[i]) &&
                (best < 0 ||
                 dvv_sibling_cmp(&o, &o.sibs[i], &o, &o.sibs[best]) > 0)) {
                best = (long)i;
            }
        }
        if (done) {
            done[best] = true;
        }
        const struct dvv_sibling *sb = &o.sibs[best];
        bool dead =
            sb->tombstone || (sb->expire_at_ms && sb->expire_at_ms <= now);
        reply_array(c, c->ropts.want_ctype ? 4 : 3);
        if (dead) {
            reply_null(c);
        } else {
            size_t pl = 0;
            const char *pv = dvv_payload(&o, (size_t)best, &pl);
            reply_bulk(c, pv, pl);
        }
        reply_int(c, (int64_t)sb->ts);
        reply_int(c, (int64_t)hlc_physical_ms(sb->ts));
        if (c->ropts.want_ctype) {
            size_t cl = 0;
            const char *cv = dvv_ctype(&o, (size_t)best, &cl);
            if (!dead && cl) {
                reply_bulk(c, cv, cl);
            } else {
                reply_null(c);
            }
        }
    }
    rk_free(done);
out:
    rk_buf_fini(&ctx);
    dvv_fini(&o);
}

/*
 * Limits a client's context to what the key's replicas have actually seen
 * (the clock read just before, in `read`, a clock-only encoding; empty
 * when the key was not found): a context may only forget versions, never
 * invent them, so a forged context cannot cover writes that do not exist
 * yet (they would be dropped as already seen when they come).  RK_OK,
 * RK_EINVAL (read does not decode), RK_ENOMEM.
 */
static int cap_context(struct dvv_obj *ctx, const struct rk_buf *read)
{
    struct dvv_obj seen;
    dvv_init(&seen);
    int rc = read->len ? dvv_decode(&seen, read->base, read->len) : RK_OK;
    if (rc != RK_OK) {
        dvv_fini(&seen);
        return RK_EINVAL;
    }
    size_t w = 0;
    for (size_t i = 0; i < ctx->n_clock; i++) {
        uint64_t have = dvv_counter(&seen, ctx->clock[i].actor);
        if (have == 0) {
            continue;
        }
        ctx->clock[w] = ctx->clock[i];
        if (ctx->clock[w].counter > have) {
            ctx->clock[w].counter = have;
        }
        w++;
    }
    ctx->n_clock = w;
    dvv_fini(&seen);
    return RK_OK;
}

/* RINGKV.PUT key context value (after a quorum read of the key): a write
 * superseding exactly the siblings the client's context covers, of what
 * the replicas hold.  RINGKV.DEL key context: the same with a tombstone
 * (replies 1 when the context covered a live value, else 0). */
static void put_exec(struct cnode *cn, struct cop *op)
{
    struct server *s = cn->srv;
    struct cop_key *k = &op->keys[0];
    bool del = op->argc == 3; /* RINGKV.DEL key context */
    k->write = false;
    struct dvv_obj ctx;
    dvv_init(&ctx);
    int rc = dvv_context_decode(&ctx, op->argv[2].ptr, op->argv[2].len);
    if (rc == RK_OK) {
        rc = cap_context(&ctx, &k->ctx);
    }
    if (rc == RK_EINVAL) {
        reply_error(op->c,
                    "ERR invalid causal context (pass the context "
                    "RINGKV.GETALL returned, or an empty string)");
    } else if (rc == RK_OK && del) {
        /* RINGKV.DEL key context: a tombstone superseding what the
         * context covers; nothing is written when it covers no live value
         * (a retried or stale delete must not pile up tombstones, which
         * would push values out under the sibling bound) */
        bool any = k->obj.len > 0;
        int removed = 0; /* live siblings the context covers */
        struct dvv_obj cur;
        dvv_init(&cur);
        if (any && dvv_decode(&cur, k->obj.base, k->obj.len) == RK_OK) {
            uint64_t now = server_now_ms();
            for (size_t i = 0; i < cur.n_sibs; i++) {
                const struct dvv_sibling *sb = &cur.sibs[i];
                if (!sb->tombstone &&
                    !(sb->expire_at_ms && sb->expire_at_ms <= now) &&
                    dvv_covers(&ctx, sb->dot)) {
                    removed = 1;
                }
            }
        }
        dvv_fini(&cur);
        rk_buf_clear(&k->ctx);
        rk_buf_clear(&k->val);
        rc = dvv_encode(&ctx, &k->ctx);
        if (rc == RK_OK) {
            k->write = removed == 1;
            k->tomb = true;
            k->ctype = false;
            k->own_ctx = false;
            k->ts = hlc_now(&s->clock, server_now_ms());
            k->exp = 0;
            reply_int(op->c, removed);
        }
    } else if (rc == RK_OK) {
        rk_buf_clear(&k->ctx);
        rk_buf_clear(&k->val);
        rc = dvv_encode(&ctx, &k->ctx);
        const struct req_opts *ro = &op->c->ropts;
        k->ctype = ro->ctlen > 0;
        if (rc == RK_OK && k->ctype) {
            uint8_t n = ro->ctlen;
            rc = rk_buf_append(&k->val, &n, 1);
            if (rc == RK_OK) {
                rc = rk_buf_append(&k->val, ro->ctype, n);
            }
        }
        if (rc == RK_OK) {
            rc = rk_buf_append(&k->val, op->argv[3].ptr, op->argv[3].len);
        }
        if (rc == RK_OK) {
            k->write = true;
            k->tomb = false;
            k->own_ctx = false;
            k->ts = hlc_now(&s->clock, server_now_ms());
            k->exp = 0;
            reply_ok(op->c);
        }
    }
    if (rc != RK_OK && rc != RK_EINVAL) {
        reply_error(op->c, "ERR out of memory");
    }
    dvv_fini(&ctx);
}

/* The command's own handler (over the coordinated keyspace). */
static void run_handler(struct cnode *cn, struct cop *op)
{
    (void)cn;
    op->cmd->proc(op->c, op->argc, op->argv);
}

static void op_exec(struct cnode *cn, struct cop *op)
{
    struct server *s = cn->srv;
    struct client *c = op->c;
    if (op->cmd->flags & CMD_VERSIONED) {
        bool put = (op->cmd->flags & CMD_WRITE) != 0;
        if (op->nkeys == 0) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err), "ERR invalid key length");
            op->phase = PH_DONE;
            return;
        }
        capture_reply(op, put ? put_exec : getall_reply, cn);
        op->next = 0;
        op->done = 0;
        op->keys[0].state = 0;
        op->phase = put && op->keys[0].write ? PH_WRITE : PH_DONE;
        return;
    }
    /* The HLC observes every version read, so a read-modify-write writes
     * a version newer than the one it read. */
    uint64_t maxts = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        struct cop_key *k = &op->keys[i];
        maxts = k->ts > maxts ? k->ts : maxts;
        k->live0 = k->live;
        k->write = false;
    }
    if (maxts) {
        hlc_update(&s->clock, server_now_ms(), maxts);
    }
    op->ks = (struct keyspace){.ops = &coord_ks_ops, .data = op};
    struct keyspace *saved = c->ks;
    c->ks = &op->ks;
    s->cluster_exec = true;
    capture_reply(op, run_handler, cn);
    s->cluster_exec = false;
    c->ks = saved;
    /* What to replicate: the last state of every key the handler wrote;
     * a key deleted (or created and deleted) that was live when read
     * becomes a tombstone, one that was not is left alone. */
    size_t writes = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        struct cop_key *k = &op->keys[i];
        k->own_ctx = !k->read;
        k->state = 0;
        if (k->write && !k->live) {
            k->write = k->live0;
            k->tomb = true;
            k->ctype = false;
            k->exp = 0;
            rk_buf_clear(&k->val);
        } else if (k->write) {
            k->tomb = false;
        }
        writes += k->write;
    }
    op->next = 0;
    op->done = 0;
    op->phase = writes ? PH_WRITE : PH_DONE;
}

static void op_finish(struct cnode *cn, struct cop *op)
{
    unlink_op(cn, op);
    op->finished = true;
    if (op->kind == COP_KEYS && op->cmd && op->start_us) {
        bool w = (op->cmd->flags & CMD_WRITE) != 0;
        uint64_t us = server_mono_us() - op->start_us;
        lat_observe(&cn->coord_lat[w], us);
        if (op->failed) {
            cn->coord_failed[w]++;
        }
        if (cn->srv->cfg->log_requests) {
            log_request(op->c, op->cmd->name, op->argc ? op->argc - 1 : 0, us,
                        op->failed);
        }
        uint32_t slow = cn->srv->cfg->slow_log_ms;
        if (slow && us >= (uint64_t)slow * 1000) {
            /* the slow-request log (on by default; --slow-log-ms) */
            rk_log(RK_LOG_WARN, "slow_request",
                   "command=%s keys=%zu ms=%.1f result=%s client=%s",
                   op->cmd->name, op->nkeys, (double)us / 1000.0,
                   op->failed ? "error" : "ok", op->c->addr);
        }
    }
    if (op->c->cop_head == op) {
        client_progress(cn, op->c);
    } else if (op->kind == COP_KEYS) {
        start_waiting(cn, op->c);
    }
}

static void op_advance(struct cnode *cn, struct cop *op)
{
    for (;;) {
        if (op->phase == PH_DONE || (op->failed && op->inflight == 0)) {
            op_finish(cn, op);
            return;
        }
        if (op->kind == COP_JOIN) {
            return; /* waits for JOIN_DONE / JOIN_FAILED */
        }
        op_start_more(cn, op);
        if (op->stalled || op->inflight > 0 ||
            (op->failed && op->inflight > 0)) {
            return;
        }
        if (op->failed) {
            continue;
        }
        if (op->next < op->nkeys) {
            continue;
        }
        /* every key of this phase is done */
        if (op->phase == PH_READ) {
            op_exec(cn, op);
        } else {
            op->phase = PH_DONE;
        }
    }
}

void cluster__process_ready(struct cnode *cn)
{
    if (cn->in_ready) {
        return;
    }
    cn->in_ready = true;
    while (cn->ready) {
        struct cop *op = cn->ready;
        cn->ready = op->rnext;
        op->queued = false;
        op->rnext = NULL;
        op_advance(cn, op);
    }
    cn->in_ready = false;
}

/* ---- routing ----------------------------------------------------------------
 */

bool cluster_routes(struct server *s,
                    struct client *c,
                    const struct command *cmd,
                    const char **why)
{
    struct cnode *cn = s->cluster;
    *why = NULL;
    if (cn == NULL || s->cluster_exec) {
        return false;
    }
    bool keyed = cmd->first_key > 0 || (cmd->flags & CMD_TXKEYS);
    if (!keyed || (cmd->flags & CMD_LOCAL)) {
        return false;
    }
    if ((cmd->flags & CMD_TXKEYS) && !c->in_multi) {
        return false;
    }
    enum membership_phase ph = membership_phase(node_membership(cn->node));
    if (ph != MEMBERSHIP_MEMBER) {
        *why = ph == MEMBERSHIP_JOINING
                   ? "TRYAGAIN this node is joining a cluster"
                   : "CLUSTERDOWN this node is not a member of a cluster (it "
                     "left or was removed); join one with RINGKV.CLUSTER JOIN";
        return true;
    }
    return node_is_multi(cn->node);
}

bool cluster__arg_eq(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
}

static int add_key(struct cop *op, const char *p, size_t len)
{
    for (size_t i = 0; op->nkeys <= 64 && i < op->nkeys; i++) {
        if (op->keys[i].len == len &&
            memcmp(op->kbuf.base + op->keys[i].off, p, len) == 0) {
            return RK_OK;
        }
    }
    if (op->nkeys == op->keys_cap) {
        size_t nc = op->keys_cap ? op->keys_cap * 2 : 4;
        struct cop_key *k = rk_realloc(op->keys, nc * sizeof(*k));
        if (k == NULL) {
            return RK_ENOMEM;
        }
        op->keys = k;
        op->keys_cap = nc;
    }
    struct cop_key *k = &op->keys[op->nkeys];
    struct rk_buf val, obj, ctx;
    if (op->nkeys < op->keys_init) {
        /* a pooled slot: its buffers are kept, emptied */
        val = k->val;
        obj = k->obj;
        ctx = k->ctx;
        rk_buf_clear(&val);
        rk_buf_clear(&obj);
        rk_buf_clear(&ctx);
    } else {
        rk_buf_init(&val);
        rk_buf_init(&obj);
        rk_buf_init(&ctx);
        op->keys_init++;
    }
    memset(k, 0, sizeof(*k));
    k->val = val;
    k->obj = obj;
    k->ctx = ctx;
    k->off = op->kbuf.len;
    k->len = len;
    if (rk_buf_append(&op->kbuf, p, len) != RK_OK) {
        return RK_ENOMEM;
    }
    op->nkeys++;
    return RK_OK;
}

static int add_cmd_keys(struct cop *op,
                        const struct command *cmd,
                        size_t argc,
                        const struct resp_arg *argv)
{
    if (cmd->first_key <= 0) {
        return RK_OK;
    }
    size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
    for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
         i += (size_t)cmd->key_step) {
        if (argv[i].len == 0 || argv[i].len > PEER_MAX_KEY) {
            continue; /* never stored: reads find nothing */
        }
        int rc = add_key(op, argv[i].ptr, argv[i].len);
        if (rc != RK_OK) {
            return rc;
        }
    }
    return RK_OK;
}

static int key_cmp_ctx_sort(const void *a, const void *b, void *ctx)
{
    const struct cop *op = ctx;
    const struct cop_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(op->kbuf.base + x->off, op->kbuf.base + y->off, n);
    if (c != 0) {
        return c;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Removes duplicate keys of big key lists (small ones are deduplicated
 * as they are added). */
static void dedupe_keys(struct cop *op)
{
    if (op->nkeys <= 64) {
        return;
    }
    qsort_r(op->keys, op->nkeys, sizeof(*op->keys), key_cmp_ctx_sort, op);
    /* duplicates are swapped behind the kept keys: every slot keeps its
     * own buffers (a pooled operation reuses them) */
    size_t w = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        if (w > 0 &&
            key_cmp_ctx_sort(&op->keys[w - 1], &op->keys[i], op) == 0) {
            continue;
        }
        if (w != i) {
            struct cop_key t = op->keys[w];
            op->keys[w] = op->keys[i];
            op->keys[i] = t;
        }
        w++;
    }
    op->nkeys = w;
}

struct cop *cluster__op_new(struct client *c,
                            const struct command *cmd,
                            size_t argc,
                            const struct resp_arg *argv)
{
    struct cnode *cn = c->srv->cluster;
    struct cop *op = cn ? cn->pool : NULL;
    if (op) {
        /* a pooled operation: keep its allocations, reset the rest */
        cn->pool = op->pnext;
        cn->n_pool--;
        struct cop keep = *op;
        memset(op, 0, sizeof(*op));
        op->keys = keep.keys;
        op->keys_cap = keep.keys_cap;
        op->keys_init = keep.keys_init;
        op->argv = keep.argv;
        op->argv_cap = keep.argv_cap;
        op->kbuf = keep.kbuf;
        op->reply = keep.reply;
        rk_buf_clear(&op->kbuf);
        rk_buf_clear(&op->reply);
    } else {
        op = rk_calloc(1, sizeof(*op));
        if (op == NULL) {
            return NULL;
        }
        rk_buf_init(&op->kbuf);
        rk_buf_init(&op->reply);
    }
    op->c = c;
    op->cmd = cmd;
    size_t bytes = argc * sizeof(struct resp_arg);
    for (size_t i = 0; i < argc; i++) {
        bytes += argv[i].len + 1;
    }
    bytes = bytes ? bytes : 1;
    if (bytes > op->argv_cap) {
        struct resp_arg *a = rk_realloc(op->argv, bytes);
        if (a == NULL) {
            op_destroy(op);
            return NULL;
        }
        op->argv = a;
        op->argv_cap = bytes;
    }
    char *p = (char *)(op->argv + argc);
    for (size_t i = 0; i < argc; i++) {
        memcpy(p, argv[i].ptr, argv[i].len);
        p[argv[i].len] = '\0';
        op->argv[i].ptr = p;
        op->argv[i].len = argv[i].len;
        p += argv[i].len + 1;
    }
    op->argc = argc;
    return op;
}

void cluster_run(struct client *c,
                 const struct command *cmd,
                 size_t argc,
                 const struct resp_arg *argv)
{
    struct server *s = c->srv;
    struct cnode *cn = s->cluster;
    const char *why;
    if (cluster_routes(s, c, cmd, &why) && why) {
        if (cmd->flags & CMD_TXKEYS) {
            multi_reset(c);
        }
        reply_error(c, why);
        return;
    }
    struct cop *op = cluster__op_new(c, cmd, argc, argv);
    if (op == NULL) {
        reply_error(c, "ERR out of memory");
        return;
    }
    op->kind = COP_KEYS;
    op->start_us = server_mono_us();
    int rc = add_cmd_keys(op, cmd, argc, op->argv);
    if (rc == RK_OK && (cmd->flags & CMD_TXKEYS)) {
        for (size_t i = 0; rc == RK_OK && i < c->mq_len; i++) {
            rc = add_cmd_keys(op, c->mq[i].cmd, c->mq[i].argc, c->mq[i].argv);
        }
        for (struct watched_key *w = c->watched; rc == RK_OK && w;
             w = w->next) {
            rc = add_key(op, w->key, w->klen);
        }
    }
    if (rc != RK_OK) {
        op_free(op);
        reply_error(c, "ERR out of memory");
        return;
    }
    dedupe_keys(op);
    op->barrier = (cmd->flags & CMD_NOMULTI) != 0;
    for (struct cop *e = c->cop_head; e && !op->waiting; e = e->cnext) {
        op->waiting =
            !e->finished && (e->kind != COP_KEYS || ops_conflict(e, op));
    }
    cluster__fifo_push(c, op);
    cluster__update_block(c);
    if (!op->waiting) {
        op_begin(cn, op);
    }
}

/* Starts a coordinated command: reads first, or straight to the handler
 * for a blind write. */
static void op_begin(struct cnode *cn, struct cop *op)
{
    if (command_is_blind(op->cmd, op->argc, op->argv)) {
        for (size_t i = 0; i < op->nkeys; i++) {
            op->keys[i].state = 2;
        }
        op_exec(cn, op);
    } else {
        op->phase = PH_READ;
    }
    cluster__op_queue(cn, op);
    cluster__process_ready(cn);
}

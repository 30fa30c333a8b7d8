/*
 * op.c - see op.h: a coordinated command's phases (READ, EXEC, WRITE,
 * DONE), its window of node requests, the per-client FIFO and the rules of
 * what may overlap.  Keys and the coordinated keyspace are op_keys.c's.
 * Moved here from src/server/cluster_ops.c (issue 11 item 1), decisions
 * unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "cluster/op_internal.h"
#include "cluster/types/counter.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"

static void op_begin(struct op_machine *m, struct op *op);
static void client_progress(struct op_machine *m, struct op_client *oc);

/* ---- the machine and its action ring ------------------------------------ */

int op_machine_create(const struct op_config *cfg, struct op_machine **out)
{
    const struct op_port *p = &cfg->port;
    if (p->read == NULL || p->write == NULL || p->settle == NULL ||
        p->cancel == NULL || cfg->env == NULL || cfg->clock == NULL) {
        return RK_EINVAL;
    }
    struct op_machine *m = rk_calloc(1, sizeof(*m));
    if (m == NULL) {
        return RK_ENOMEM;
    }
    m->cfg = *cfg;
    *out = m;
    return RK_OK;
}

/* Frees an operation for good. */
static void op_destroy(struct op *op)
{
    for (size_t i = 0; i < op->keys_init; i++) {
        rk_buf_fini(&op->keys[i].val);
        rk_buf_fini(&op->keys[i].obj);
        rk_buf_fini(&op->keys[i].ctx);
        rk_buf_fini(&op->keys[i].frame);
    }
    rk_free(op->keys);
    op__chunk_free(op);
    rk_free(op->owned);
    rk_buf_fini(&op->kbuf);
    rk_buf_fini(&op->reply);
    rk_free(op->argv);
    rk_free(op);
}

/* An operation is done: kept for the next command (its allocations
 * reused, big buffers given back), or freed when the pool is full. */
static void op_free(struct op_machine *m, struct op *op)
{
    m->n_live--;
    op__chunk_free(op);
    rk_free(op->owned);
    op->owned = NULL;
    if (m->n_pool >= OP_POOL || op->keys_cap > 256 ||
        op->argv_cap > OP_KEEP_BYTES) {
        op_destroy(op);
        return;
    }
    for (size_t i = 0; i < op->keys_init; i++) {
        rk_buf_shrink(&op->keys[i].val, OP_KEEP_BYTES);
        rk_buf_shrink(&op->keys[i].obj, OP_KEEP_BYTES);
        rk_buf_shrink(&op->keys[i].ctx, OP_KEEP_BYTES);
        rk_buf_clear(&op->keys[i].frame);
        rk_buf_shrink(&op->keys[i].frame, 0);
    }
    rk_buf_shrink(&op->kbuf, OP_KEEP_BYTES);
    rk_buf_shrink(&op->reply, OP_KEEP_BYTES);
    op->pnext = m->pool;
    m->pool = op;
    m->n_pool++;
}

void op_machine_destroy(struct op_machine *m)
{
    if (m == NULL) {
        return;
    }
    if (m->replied) {
        op_destroy(m->replied);
    }
    for (size_t i = 0; i < m->acts_len; i++) {
        struct op_action *a = &m->acts[(m->acts_head + i) & (m->acts_cap - 1)];
        if (a->type == OP_ACT_REPLY) {
            op_destroy(a->op);
        }
    }
    while (m->pool) {
        struct op *op = m->pool;
        m->pool = op->pnext;
        op_destroy(op);
    }
    rk_free(m->acts);
    rk_free(m);
}

/* Makes room for `cap` actions in the ring.  RK_OK, RK_ENOMEM. */
static int acts_reserve(struct op_machine *m, size_t cap)
{
    if (cap <= m->acts_cap) {
        return RK_OK;
    }
    size_t nc = m->acts_cap ? m->acts_cap : 64;
    while (nc < cap) {
        nc *= 2;
    }
    struct op_action *a = rk_malloc(nc * sizeof(*a));
    if (a == NULL) {
        return RK_ENOMEM;
    }
    for (size_t i = 0; i < m->acts_len; i++) {
        a[i] = m->acts[(m->acts_head + i) & (m->acts_cap - 1)];
    }
    rk_free(m->acts);
    m->acts = a;
    m->acts_cap = nc;
    m->acts_head = 0;
    return RK_OK;
}

/* Queues an action.  The ring has room: op_new reserved OP_ACTS_PER_OP
 * per live operation. */
static void emit(struct op_machine *m,
                 enum op_action_type type,
                 struct op *op,
                 struct op_client *oc)
{
    if (m->acts_len == m->acts_cap &&
        RK_NEVER(acts_reserve(m, m->acts_cap + 1) != RK_OK)) {
        return; /* cannot happen short of memory: op_new reserved room */
    }
    m->acts[(m->acts_head + m->acts_len) & (m->acts_cap - 1)] =
        (struct op_action){.type = type, .op = op, .client = oc};
    m->acts_len++;
}

bool op_next_action(struct op_machine *m, struct op_action *out)
{
    if (m->replied) {
        op_free(m, m->replied);
        m->replied = NULL;
    }
    if (m->acts_len == 0) {
        return false;
    }
    *out = m->acts[m->acts_head];
    m->acts_head = (m->acts_head + 1) & (m->acts_cap - 1);
    m->acts_len--;
    if (out->type == OP_ACT_REPLY) {
        m->replied = out->op;
    }
    return true;
}

/* ---- clients ------------------------------------------------------------ */

void op_client_init(struct op_client *oc, void *data)
{
    memset(oc, 0, sizeof(*oc));
    oc->data = data;
}

bool op_client_is_busy(const struct op_client *oc)
{
    return oc->n_ops > 0;
}

bool op_client_is_blocked(const struct op_client *oc)
{
    return oc->blocked;
}

static void fifo_push(struct op_client *oc, struct op *op)
{
    op->cnext = NULL;
    if (oc->tail) {
        oc->tail->cnext = op;
    } else {
        oc->head = op;
    }
    oc->tail = op;
    oc->n_ops++;
}

static void update_block(struct op_client *oc)
{
    bool block = oc->n_ops >= OP_CLIENT_PIPELINE;
    for (struct op *o = oc->head; o && !block; o = o->cnext) {
        block = o->barrier;
    }
    oc->blocked = block;
}

/* Whether two operations name a common key (conservative for big ones).
 * Each pair of keys compares hashes first: with a pipeline of one-key
 * commands this runs for every earlier unfinished command of the client. */
static bool ops_conflict(const struct op *a, const struct op *b)
{
    if (a->nkeys > 16 || b->nkeys > 16) {
        return true;
    }
    for (size_t i = 0; i < a->nkeys; i++) {
        for (size_t j = 0; j < b->nkeys; j++) {
            if (a->keys[i].hash == b->keys[j].hash &&
                a->keys[i].len == b->keys[j].len &&
                memcmp(a->kbuf.base + a->keys[i].off,
                       b->kbuf.base + b->keys[j].off, a->keys[i].len) == 0) {
                return true;
            }
        }
    }
    return false;
}

static void unlink_op(struct op_machine *m, struct op *op)
{
    for (struct op **pp = &m->ready; *pp; pp = &(*pp)->rnext) {
        if (*pp == op) {
            *pp = op->rnext;
            break;
        }
    }
    for (struct op **pp = &m->stalled; *pp; pp = &(*pp)->snext) {
        if (*pp == op) {
            *pp = op->snext;
            break;
        }
    }
}

/* Starts the waiting operations of oc that no longer share a key with an
 * earlier unfinished one (O2). */
static void start_waiting(struct op_machine *m, struct op_client *oc)
{
    for (struct op *o = oc->head; o; o = o->cnext) {
        if (!o->waiting) {
            continue;
        }
        bool clash = false;
        for (struct op *e = oc->head; e != o && !clash; e = e->cnext) {
            clash = !e->finished && e->kind == OP_KEYS && ops_conflict(e, o);
        }
        if (!clash) {
            o->waiting = false;
            op_begin(m, o);
        }
    }
}

/*
 * Answers the finished operations at the head of oc's FIFO (O1), hands a
 * deferred command that reached the head to the driver (and stops until
 * op_dispatch_done), starts what no longer waits, resumes the client.
 */
static void client_progress(struct op_machine *m, struct op_client *oc)
{
    if (oc->dispatching) {
        return; /* op_dispatch_done goes on */
    }
    for (;;) {
        struct op *op = oc->head;
        if (op == NULL || (!op->finished && op->kind != OP_DEFER)) {
            break;
        }
        oc->head = op->cnext;
        if (oc->head == NULL) {
            oc->tail = NULL;
        }
        oc->n_ops--;
        unlink_op(m, op);
        if (op->kind == OP_DEFER) {
            /* Everything before it is answered: the driver runs it as if
             * it had just arrived (it may submit an operation of its own). */
            update_block(oc);
            oc->dispatching = op;
            emit(m, OP_ACT_DISPATCH, op, oc);
            return;
        }
        emit(m, OP_ACT_REPLY, op, oc);
    }
    update_block(oc);
    start_waiting(m, oc);
    emit(m, OP_ACT_RESUME, NULL, oc);
}

void op_dispatch_done(struct op_machine *m, struct op *op)
{
    struct op_client *oc = op->client;
    if (oc->dispatching == op) {
        oc->dispatching = NULL;
    }
    op_free(m, op);
    client_progress(m, oc);
}

/* Drops the queued actions of oc; the ops of its REPLYs are freed. */
static void drop_actions(struct op_machine *m, struct op_client *oc)
{
    size_t w = 0;
    for (size_t i = 0; i < m->acts_len; i++) {
        struct op_action a = m->acts[(m->acts_head + i) & (m->acts_cap - 1)];
        if (a.client == oc) {
            if (a.type == OP_ACT_REPLY) {
                op_free(m, a.op);
            }
            continue;
        }
        m->acts[(m->acts_head + w) & (m->acts_cap - 1)] = a;
        w++;
    }
    m->acts_len = w;
}

void op_client_gone(struct op_machine *m, struct op_client *oc)
{
    drop_actions(m, oc);
    if (oc->dispatching) {
        op_free(m, oc->dispatching);
    }
    struct op *op = oc->head;
    oc->head = oc->tail = NULL;
    oc->n_ops = 0;
    oc->blocked = false;
    oc->dispatching = NULL;
    while (op) {
        struct op *next = op->cnext;
        m->cfg.port.cancel(m->cfg.port.data, (uint64_t)(uintptr_t)op);
        unlink_op(m, op);
        op_free(m, op);
        op = next;
    }
}

/* ---- operations: creation and keys -------------------------------------- */

/* A pooled or new operation, argv copied.  NULL on RK_ENOMEM. */
static struct op *op_new(struct op_machine *m,
                         struct op_client *oc,
                         enum op_kind kind,
                         size_t argc,
                         const struct resp_arg *argv)
{
    if (acts_reserve(m, (m->n_live + 1) * OP_ACTS_PER_OP) != RK_OK) {
        return NULL;
    }
    struct op *op = m->pool;
    if (op) {
        /* a pooled operation: keep its allocations, reset the rest */
        m->pool = op->pnext;
        m->n_pool--;
        struct op keep = *op;
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
    m->n_live++;
    op->m = m;
    op->kind = kind;
    op->client = oc;
    size_t bytes = argc * sizeof(struct resp_arg);
    for (size_t i = 0; i < argc; i++) {
        bytes += argv[i].len + 1;
    }
    bytes = bytes ? bytes : 1;
    if (bytes > op->argv_cap) {
        struct resp_arg *a = rk_realloc(op->argv, bytes);
        if (a == NULL) {
            m->n_live--;
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

int op_create(struct op_machine *m,
              struct op_client *oc,
              const void *cmd,
              size_t argc,
              const struct resp_arg *argv,
              struct op **out)
{
    struct op *op = op_new(m, oc, OP_KEYS, argc, argv);
    if (op == NULL) {
        return RK_ENOMEM;
    }
    op->cmd = cmd;
    *out = op;
    return RK_OK;
}

int op_create_owned(struct op_machine *m,
                    struct op_client *oc,
                    const void *cmd,
                    size_t argc,
                    const struct resp_arg *argv,
                    char *owned,
                    size_t owned_len,
                    struct op **out)
{
    struct op *op = op_new(m, oc, OP_KEYS, 0, NULL);
    if (op == NULL) {
        return RK_ENOMEM;
    }
    size_t bytes = argc ? argc * sizeof(struct resp_arg) : 1;
    if (bytes > op->argv_cap) {
        struct resp_arg *a = rk_realloc(op->argv, bytes);
        if (a == NULL) {
            op_free(m, op);
            return RK_ENOMEM;
        }
        op->argv = a;
        op->argv_cap = bytes;
    }
    for (size_t i = 0; i < argc; i++) {
        op->argv[i] = argv[i];
    }
    op->argc = argc;
    op->owned = owned;
    op->owned_len = owned_len;
    op->cmd = cmd;
    *out = op;
    return RK_OK;
}

void op_discard(struct op_machine *m, struct op *op)
{
    op_free(m, op);
}

/* ---- submit, defer, hold ------------------------------------------------ */

static void op_queue(struct op_machine *m, struct op *op)
{
    if (!op->queued) {
        op->queued = true;
        op->rnext = m->ready;
        m->ready = op;
    }
}

void op_submit(struct op_machine *m,
               struct op *op,
               unsigned flags,
               struct route_quorum over,
               uint32_t timeout_ms,
               uint64_t stamp)
{
    struct op_client *oc = op->client;
    op->flags = flags;
    op->over = over;
    op->timeout_ms = timeout_ms;
    op->stamp = stamp;
    op__dedupe_keys(op);
    op->barrier = (flags & OP_F_BARRIER) != 0;
    for (struct op *e = oc->head; e && !op->waiting; e = e->cnext) {
        op->waiting =
            !e->finished && (e->kind != OP_KEYS || ops_conflict(e, op));
    }
    fifo_push(oc, op);
    update_block(oc);
    if (!op->waiting) {
        op_begin(m, op);
    }
}

/* A deferred or held operation: a barrier in oc's FIFO.  NULL on
 * RK_ENOMEM. */
static struct op *barrier_new(struct op_machine *m,
                              struct op_client *oc,
                              enum op_kind kind,
                              size_t argc,
                              const struct resp_arg *argv)
{
    struct op *op = op_new(m, oc, kind, argc, argv);
    if (op) {
        op->barrier = true;
        fifo_push(oc, op);
        update_block(oc);
    }
    return op;
}

int op_defer(struct op_machine *m,
             struct op_client *oc,
             size_t argc,
             const struct resp_arg *argv)
{
    return barrier_new(m, oc, OP_DEFER, argc, argv) ? RK_OK : RK_ENOMEM;
}

int op_hold(struct op_machine *m, struct op_client *oc, struct op **out)
{
    struct op *op = barrier_new(m, oc, OP_HOLD, 0, NULL);
    if (op == NULL) {
        return RK_ENOMEM;
    }
    *out = op;
    return RK_OK;
}

void op_hold_done(struct op_machine *m,
                  struct op *op,
                  const void *reply,
                  size_t len)
{
    rk_buf_append(&op->reply, reply, len);
    op->phase = PH_DONE;
    op_queue(m, op);
}

/* ---- node requests ------------------------------------------------------ */

static void fail(struct op *op, const char *msg, int rc)
{
    if (op->failed) {
        return;
    }
    op->failed = true;
    if (msg && msg[0]) {
        snprintf(op->err, sizeof(op->err), "%s", msg);
    } else if (rc == RK_ENOMEM) {
        snprintf(op->err, sizeof(op->err), "ERR out of memory");
    } else {
        snprintf(op->err, sizeof(op->err), "ERR cluster request failed: %s",
                 rk_strerror(rc));
    }
}

void op__stall(struct op_machine *m, struct op *op)
{
    const struct op_port *p = &m->cfg.port;
    p->settle(p->data);
    if (op->inflight == 0 && !op->stalled) {
        op->stalled = true;
        op->snext = m->stalled;
        m->stalled = op;
    }
}

/* The counter state a write of k carries when the object it read holds
 * counter siblings: the join of those its context covers (all of them,
 * but for RINGKV.PUT/DEL with a client's context), reset to the write's
 * value (or a delete), into out (left empty when it covers none).  The
 * replica resets it again under its own actor with its own covered
 * counts joined in. */
static int counter_state_of(const struct op_key *k, struct rk_buf *out)
{
    struct dvv_obj o, ctx;
    struct counter st;
    dvv_init(&o);
    dvv_init(&ctx);
    counter_init(&st);
    bool convert = false;
    int rc = dvv_decode(&o, k->obj.base, k->obj.len);
    if (rc == RK_OK) {
        rc = dvv_decode(&ctx, k->ctx.base, k->ctx.len);
    }
    if (rc == RK_OK) {
        rc = counter_reset_over(&o, &ctx, k->ts, 0, !k->tomb,
                                k->tomb ? NULL : op__kval(k),
                                k->tomb ? 0 : op__kval_len(k), &st, &convert);
    }
    if (rc == RK_OK && convert) {
        rc = counter_encode(&st, out);
    }
    counter_fini(&st);
    dvv_fini(&ctx);
    dvv_fini(&o);
    /* undecodable (or an empty context): a plain write */
    return rc == RK_ECORRUPT || rc == RK_EVERSION ? RK_OK : rc;
}

/* Starts the node request of key k in op's current phase.  RK_OK,
 * RK_EBUSY (no free slot), RK_ENOTFOUND (no ring) or another error. */
static int start_key(struct op_machine *m,
                     struct op *op,
                     struct op_key *k,
                     uint64_t now_ms,
                     uint64_t *op_id)
{
    const struct op_port *p = &m->cfg.port;
    const char *key = op->kbuf.base + k->off;
    uint64_t cookie = (uint64_t)(uintptr_t)op;
    if (op->phase == PH_READ) {
        struct node_read_req r = {
            .key = key,
            .klen = k->len,
            .overrides = op->over,
            .timeout_ms = op->timeout_ms,
            .cookie = cookie,
        };
        return p->read(p->data, &r, now_ms, op_id);
    }
    if (k->counter && !k->tomb) {
        /* an increment: i64 delta and the id (PEER_KV_COUNTER) */
        unsigned char add[PEER_KV_COUNTER_LEN];
        rk_put_le64(add, (uint64_t)k->delta);
        memcpy(add + 8, k->cid, sizeof(k->cid));
        struct node_write_req w = {
            .key = key,
            .klen = k->len,
            .own_context = true,
            .counter = true,
            .value = add,
            .vlen = sizeof(add),
            .timestamp = k->ts,
            .overrides = op->over,
            .timeout_ms = op->timeout_ms,
            .cookie = cookie,
        };
        return p->write(p->data, &w, now_ms, op_id);
    }
    struct rk_buf state;
    rk_buf_init(&state);
    if (k->had_counter && !k->own_ctx && !k->ctype && !k->chunked) {
        /* the context covers counter siblings: their counts go on in a
         * counter state with the value as its base, so that no replica
         * drops them for a plain value (PEER_KV_COUNTER_STATE) */
        int rc = counter_state_of(k, &state);
        if (rc != RK_OK) {
            rk_buf_fini(&state);
            return rc;
        }
    }
    struct node_write_req w = {
        .key = key,
        .klen = k->len,
        .context = k->own_ctx ? NULL : k->ctx.base,
        .clen = k->own_ctx ? 0 : k->ctx.len,
        .own_context = k->own_ctx,
        .tombstone = k->tomb,
        .value = k->tomb ? NULL : op__kval(k),
        .vlen = k->tomb ? 0 : op__kval_len(k),
        .ctype = k->ctype,
        .chunked = k->chunked && !k->tomb,
        .timestamp = k->ts,
        .expire_at_ms = k->exp,
        .overrides = op->over,
        .timeout_ms = op->timeout_ms,
        .cookie = cookie,
    };
    if (state.len) {
        w.counter_state = true;
        w.value = state.base;
        w.vlen = state.len;
    }
    int rc = p->write(p->data, &w, now_ms, op_id);
    rk_buf_fini(&state);
    return rc;
}

/* Starts requests for keys of the current phase, up to the window (O4). */
static void op_start_more(struct op_machine *m, struct op *op)
{
    const struct op_port *p = &m->cfg.port;
    uint64_t now = rk_env_mono_ms(m->cfg.env);
    while (op->next < op->nkeys && op->inflight < OP_WINDOW && !op->failed) {
        struct op_key *k = &op->keys[op->next];
        if (op->phase != PH_READ && !k->write) {
            k->state = KEY_ANSWERED;
            op->next++;
            continue;
        }
        uint64_t id = 0;
        int rc = start_key(m, op, k, now, &id);
        if (rc == RK_EBUSY) {
            op__stall(m, op);
            break;
        }
        if (rc != RK_OK) {
            p->settle(p->data);
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
        k->state = KEY_INFLIGHT;
        op->inflight++;
        op->next++;
        p->settle(p->data); /* may answer at once (w=1) */
    }
}

void op_on_node_result(struct op_machine *m,
                       const struct node_result *r,
                       const struct node_settings *set)
{
    struct op *op = (struct op *)(uintptr_t)r->cookie;
    struct op_key *k = NULL;
    for (size_t i = 0; i < op->nkeys; i++) {
        if (op->keys[i].state == KEY_INFLIGHT &&
            op->keys[i].op_id == r->op_id) {
            k = &op->keys[i];
            break;
        }
    }
    if (k == NULL) {
        if (op__chunk_on_result(m, op, r)) {
            op_queue(m, op);
        }
        return;
    }
    k->state = KEY_ANSWERED;
    op->inflight--;
    int rc = r->status;
    if (r->kind == NODE_OP_READ && (rc == RK_OK || rc == RK_ENOTFOUND)) {
        rc = op__take_read(m, k, r, set);
    }
    if (rc != RK_OK && rc != RK_ENOTFOUND) {
        fail(op, r->message, rc);
    }
    op_queue(m, op);
}

/* ---- phases ------------------------------------------------------------- */

/* The read phase is over: prepares the keys for the handler and asks the
 * driver to run it (OP_ACT_EXEC). */
static void exec_begin(struct op_machine *m, struct op *op)
{
    if (op->flags & OP_F_VERSIONED) {
        if (op->nkeys == 0) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err), "ERR invalid key length");
            op->phase = PH_DONE;
            return;
        }
        if (op->keys[0].had_chunked) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err),
                     "ERR the key holds a value stored in chunks (over %llu "
                     "bytes): read and write it with GET and SET",
                     (unsigned long long)op__chunk_threshold(m));
            op->phase = PH_DONE;
            return;
        }
        op->phase = PH_EXEC;
        emit(m, OP_ACT_EXEC, op, op->client);
        return;
    }
    /* The HLC observes every version read, so a read-modify-write writes
     * a version newer than the one it read (O5). */
    uint64_t maxts = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        struct op_key *k = &op->keys[i];
        maxts = k->ts > maxts ? k->ts : maxts;
        k->live0 = k->live;
        k->write = false;
    }
    if (maxts) {
        hlc_update(m->cfg.clock, rk_env_wall_ms(m->cfg.env), maxts);
    }
    op->phase = PH_EXEC;
    emit(m, OP_ACT_EXEC, op, op->client);
}

void op_exec_done(struct op_machine *m, struct op *op)
{
    if (op->flags & OP_F_VERSIONED) {
        bool put = (op->flags & OP_F_WRITE) != 0;
        op->next = 0;
        op->keys[0].state = KEY_IDLE;
        op->phase = put && op->keys[0].write ? PH_WRITE : PH_DONE;
        if (op->phase == PH_WRITE && !op->keys[0].tomb &&
            op->keys[0].val.len > op__chunk_threshold(m)) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err),
                     "ERR RINGKV.PUT takes values up to %llu bytes in a "
                     "cluster; store larger ones with SET",
                     (unsigned long long)op__chunk_threshold(m));
            op->phase = PH_DONE;
        }
    } else {
        /* What to write: the last state of every key the handler wrote;
         * a key deleted (or created and deleted) that was live when read
         * becomes a tombstone, one that was not is left alone (O6). */
        size_t writes = 0;
        for (size_t i = 0; i < op->nkeys; i++) {
            struct op_key *k = &op->keys[i];
            /* an increment supersedes what its coordinating replica
             * has seen: that replica's counter state is what it adds to */
            k->own_ctx = !k->read || (k->write && k->live && k->counter);
            k->state = KEY_IDLE;
            if (k->write && !k->live) {
                k->write = k->live0;
                k->counter = false;
                k->tomb = true;
                k->ctype = false;
                k->chunked = false;
                k->exp = 0;
                rk_buf_clear(&k->val);
                k->vview = NULL;
            } else if (k->write) {
                k->tomb = false;
            }
            writes += k->write;
        }
        op->next = 0;
        op->phase = writes ? PH_WRITE : PH_DONE;
        if (writes) {
            /* PH_STORE first when a value is to go as blocks (op->failed
             * when that could not even start: the op ends) */
            (void)op__chunk_phase_begin(m, op, PH_STORE);
        }
    }
    op_queue(m, op);
    op_process(m);
}

static void op_finish(struct op_machine *m, struct op *op)
{
    unlink_op(m, op);
    op->finished = true;
    if (op->kind == OP_KEYS) {
        emit(m, OP_ACT_DONE, op, op->client);
    }
    if (op->client->head == op) {
        client_progress(m, op->client);
    } else if (op->kind == OP_KEYS) {
        start_waiting(m, op->client);
    }
}

static void op_advance(struct op_machine *m, struct op *op)
{
    for (;;) {
        if (op->phase == PH_DONE || (op->failed && op->inflight == 0)) {
            op_finish(m, op);
            return;
        }
        if (op->kind == OP_HOLD || op->phase == PH_EXEC) {
            return; /* waits for op_hold_done / op_exec_done */
        }
        if (op->phase == PH_FETCH || op->phase == PH_STORE) {
            op__chunk_start_more(m, op);
            if (op->stalled || op->inflight > 0) {
                return;
            }
            if (op->failed || op__chunk_step(m, op)) {
                continue;
            }
            if (op->phase == PH_FETCH) {
                exec_begin(m, op);
            } else {
                op->phase = PH_WRITE;
            }
            continue;
        }
        op_start_more(m, op);
        if (op->stalled || op->inflight > 0) {
            return;
        }
        if (op->failed || op->next < op->nkeys) {
            continue;
        }
        /* every key of this phase is done */
        if (op->phase == PH_READ) {
            if (!op__chunk_phase_begin(m, op, PH_FETCH)) {
                exec_begin(m, op);
            }
        } else {
            op->phase = PH_DONE;
        }
    }
}

void op_process(struct op_machine *m)
{
    if (m->in_process) {
        return;
    }
    m->in_process = true;
    while (m->ready) {
        struct op *op = m->ready;
        m->ready = op->rnext;
        op->queued = false;
        op->rnext = NULL;
        op_advance(m, op);
    }
    m->in_process = false;
}

void op_retry_stalled(struct op_machine *m)
{
    struct op *st = m->stalled;
    m->stalled = NULL;
    while (st) {
        struct op *next = st->snext;
        st->stalled = false;
        op_queue(m, st);
        st = next;
    }
    op_process(m);
}

/* Starts an operation: reads first, or straight to the handler for a
 * blind write. */
static void op_begin(struct op_machine *m, struct op *op)
{
    if (op->failed) {
        /* refused before it began (a reserved key): its error replies */
    } else if (op->flags & OP_F_BLIND) {
        for (size_t i = 0; i < op->nkeys; i++) {
            op->keys[i].state = KEY_ANSWERED;
        }
        exec_begin(m, op);
    } else {
        op->phase = PH_READ;
    }
    op_queue(m, op);
    op_process(m);
}

/* ---- accessors ---------------------------------------------------------- */

struct op_client *op_client_of(const struct op *op)
{
    return op->client;
}

const void *op_cmd(const struct op *op)
{
    return op->cmd;
}

uint64_t op_stamp(const struct op *op)
{
    return op->stamp;
}

const struct resp_arg *op_args(const struct op *op, size_t *argc)
{
    *argc = op->argc;
    return op->argv;
}

struct rk_buf *op_reply(struct op *op)
{
    return &op->reply;
}

const char *op_error(const struct op *op)
{
    return op->failed ? op->err : NULL;
}

size_t op_n_keys(const struct op *op)
{
    return op->nkeys;
}

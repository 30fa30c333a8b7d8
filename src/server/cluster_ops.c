/*
 * cluster_ops.c - the driver of the coordinated commands of clients
 * (cluster/op.h holds their decisions: phases, windows, per-client order,
 * the coordinated keyspace).  Here: the machine's node port (node_read /
 * node_write and their actions), its actions (running a command's handler
 * from the command table over the coordinated keyspace, rendering
 * RINGKV.GETALL / PUT / DEL, appending replies, resuming clients), the
 * routing decision and the keys a command names.
 */
#include "cluster/types/counter.h"
#include "server/cluster_internal.h"
#include "server/cmd/internal.h"

static void resume_forget(struct cnode *cn, struct client *c);

/* ---- the node port ------------------------------------------------------ */

static int port_read(void *data,
                     const struct node_read_req *r,
                     uint64_t now_ms,
                     uint64_t *op_id)
{
    struct cnode *cn = data;
    return node_read(cn->node, r, now_ms, op_id);
}

static int port_write(void *data,
                      const struct node_write_req *w,
                      uint64_t now_ms,
                      uint64_t *op_id)
{
    struct cnode *cn = data;
    return node_write(cn->node, w, now_ms, op_id);
}

static void port_settle(void *data)
{
    cluster__run_node_actions(data);
}

static void port_cancel(void *data, uint64_t cookie)
{
    struct cnode *cn = data;
    node_cancel(cn->node, cookie);
}

/* The machine's wall clock: the real time now (expiry, the HLC), as
 * server_now_ms, not the loop's cached time. */
static uint64_t op_wall_ms(struct rk_env *env)
{
    (void)env;
    return server_now_ms();
}

static uint64_t op_mono_ms(struct rk_env *env)
{
    (void)env;
    return cluster__now_mono();
}

int cluster__ops_create(struct cnode *cn)
{
    cn->op_env = (struct rk_env){
        .wall_ms = op_wall_ms,
        .mono_ms = op_mono_ms,
        .rand64 = cn->env.rand64,
        .data = cn->env.data,
    };
    struct op_config cfg = {
        .port =
            {
                .read = port_read,
                .write = port_write,
                .settle = port_settle,
                .cancel = port_cancel,
                .data = cn,
            },
        .env = &cn->op_env,
        .clock = &cn->srv->clock,
    };
    return op_machine_create(&cfg, &cn->ops);
}

void cluster__on_node_reply(struct cnode *cn, const struct node_result *r)
{
    op_on_node_result(cn->ops, r, node_settings(cn->node));
}

/* ---- the coordinated keyspace (keyspace.h over op.h) -------------------- */

static int coord_ks_view(struct keyspace *ks,
                         const void *key,
                         size_t klen,
                         const char **val,
                         size_t *vlen,
                         struct ks_meta *m)
{
    struct op_value v;
    if (op_key_get(ks->data, key, klen, &v) != RK_OK) {
        return RK_ENOTFOUND;
    }
    if (m) {
        *m = (struct ks_meta){
            .ts = v.ts,
            .expire_at_ms = v.expire_at_ms,
            .value_len = v.vlen,
            .ctlen = v.ctlen,
        };
        if (v.ctlen) {
            memcpy(m->ct, v.ct, v.ctlen);
        }
    }
    *val = v.val;
    *vlen = v.vlen;
    return RK_OK;
}

/* get is view plus a copy of the bytes. */
static int coord_ks_get(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        struct rk_buf *val,
                        struct ks_meta *m)
{
    const char *p;
    size_t len;
    if (val) {
        rk_buf_clear(val);
    }
    int rc = coord_ks_view(ks, key, klen, &p, &len, m);
    if (rc == RK_OK && val && rk_buf_append(val, p, len) != RK_OK) {
        return RK_ENOMEM;
    }
    return rc;
}

static int coord_ks_move_reply(struct keyspace *ks,
                               const void *key,
                               size_t klen,
                               struct rk_buf *out)
{
    if (!ks->reply_may_move) {
        return RK_ENOTFOUND;
    }
    return op_key_take_frame(ks->data, key, klen, out);
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
    struct op *op = ks->data;
    struct client *c = op_client_of(op)->data;
    *seq = 0; /* replicated (and made durable) by node_write */
    return op_key_put(op, key, klen, val, vlen, expire_at_ms, ct, ctlen,
                      c->srv->cfg->proto_max_bulk_len);
}

static int coord_ks_del(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        uint64_t *seq)
{
    *seq = 0;
    return op_key_del(ks->data, key, klen);
}

static int coord_ks_incr(struct keyspace *ks,
                         const void *key,
                         size_t klen,
                         int64_t delta,
                         int64_t *result)
{
    return op_key_incr(ks->data, key, klen, delta, result);
}

static const struct keyspace_ops coord_ks_ops = {
    .get = coord_ks_get,
    .put = coord_ks_put,
    .del = coord_ks_del,
    .view = coord_ks_view,
    .move_reply = coord_ks_move_reply,
    .incr = coord_ks_incr,
};

/* ---- running a command over its keys (OP_ACT_EXEC) ---------------------- */

/* The value sibling i of o, a counter sibling, counts by itself (nil
 * when dead or when its state counts nothing live). */
static void counter_sibling_reply(struct client *c,
                                  const struct dvv_obj *o,
                                  size_t i,
                                  bool dead)
{
    struct counter st;
    counter_init(&st);
    __int128 sum;
    char num[48];
    if (dead ||
        counter_decode(&st, dvv_value(o, i), o->sibs[i].vlen) != RK_OK ||
        !counter_is_live(&st)) {
        reply_null(c);
    } else if (counter_sum(&st, &sum) == RK_OK) {
        reply_bulk(c, num, counter_format(sum, num));
    } else {
        reply_bulk(c, st.base.len ? st.base.base : "", st.base.len);
    }
    counter_fini(&st);
}

/* RINGKV.GETALL key: [context, [[value or nil, hlc, unix ms], ...]],
 * newest sibling first; nil for a deleted or expired sibling. */
static void getall_reply(struct client *c, const struct op *op)
{
    const struct rk_buf *obj = op_key_object(op);
    struct dvv_obj o;
    dvv_init(&o);
    if (obj->len && dvv_decode(&o, obj->base, obj->len) != RK_OK) {
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
        if (sb->counter) {
            /* a counter sibling: the value its own state counts */
            counter_sibling_reply(c, &o, (size_t)best, dead);
        } else if (dead) {
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

/* RINGKV.PUT key context value / RINGKV.DEL key context (after a quorum
 * read of the key; op.h op_versioned_put): replies OK, or 1/0 for DEL. */
static void put_exec(struct client *c, struct op *op)
{
    size_t argc;
    const struct resp_arg *argv = op_args(op, &argc);
    bool del = argc == 3; /* RINGKV.DEL key context */
    const struct req_opts *ro = &c->ropts;
    int removed = 0;
    if (!del && !cmd__value_fits_or_reply(
                    c, argv[3].len, c->srv->cfg->cluster_max_value_bytes)) {
        return;
    }
    int rc = op_versioned_put(op, argv[2].ptr, argv[2].len, del,
                              del ? NULL : argv[3].ptr, del ? 0 : argv[3].len,
                              ro->ctype, ro->ctlen, &removed);
    if (rc == RK_EINVAL) {
        reply_error(c,
                    "ERR invalid causal context (pass the context "
                    "RINGKV.GETALL returned, or an empty string)");
    } else if (rc != RK_OK) {
        reply_error(c, "ERR out of memory");
    } else if (del) {
        reply_int(c, removed);
    } else {
        reply_ok(c);
    }
}

/* Runs op's handler with the client's output captured in op_reply(op):
 * the command's own handler over the coordinated keyspace, or
 * GETALL/PUT/DEL on the versioned object; then the machine goes on. */
static void run_exec(struct cnode *cn, struct op *op)
{
    struct server *s = cn->srv;
    struct client *c = op_client_of(op)->data;
    const struct command *cmd = op_cmd(op);
    size_t argc;
    const struct resp_arg *argv = op_args(op, &argc);
    struct rk_buf *reply = op_reply(op);
    struct rk_buf saved = c->obuf;
    c->obuf = *reply;
    c->last_cmd = cmd->name;
    c->cur_cmd = cmd;
    if (cmd->flags & CMD_VERSIONED) {
        if (cmd->flags & CMD_WRITE) {
            put_exec(c, op);
        } else {
            getall_reply(c, op);
        }
    } else {
        struct keyspace ks = {
            .ops = &coord_ks_ops,
            .data = op,
            .max_value_bytes = s->cfg->cluster_max_value_bytes,
            .reply_may_move = !(cmd->flags & CMD_TXKEYS),
        };
        struct keyspace *saved_ks = c->ks;
        c->ks = &ks;
        s->cluster_exec = true;
        cmd->proc(c, argc, argv);
        s->cluster_exec = false;
        c->ks = saved_ks;
    }
    c->cur_cmd = NULL;
    *reply = c->obuf;
    c->obuf = saved;
    op_exec_done(cn->ops, op);
}

/* Counts a finished command, logs it when asked or slow. */
static void op_done(struct cnode *cn, struct op *op)
{
    const struct command *cmd = op_cmd(op);
    uint64_t start_us = op_stamp(op);
    if (cmd == NULL || start_us == 0) {
        return;
    }
    struct client *c = op_client_of(op)->data;
    bool failed = op_error(op) != NULL;
    bool w = (cmd->flags & CMD_WRITE) != 0;
    uint64_t us = server_mono_us() - start_us;
    lat_observe(&cn->coord_lat[w], us);
    if (failed) {
        cn->coord_failed[w]++;
    }
    size_t argc;
    (void)op_args(op, &argc);
    if (cn->srv->cfg->log_requests) {
        log_request(c, cmd->name, argc ? argc - 1 : 0, us, failed);
    }
    uint32_t slow = cn->srv->cfg->slow_log_ms;
    if (slow && us >= (uint64_t)slow * 1000) {
        /* the slow-request log (on by default; --slow-log-ms) */
        rk_log(RK_LOG_WARN, "slow_request",
               "command=%s keys=%zu ms=%.1f result=%s client=%s", cmd->name,
               op_n_keys(op), (double)us / 1000.0, failed ? "error" : "ok",
               c->addr);
    }
}

/* ---- resuming clients --------------------------------------------------- */

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

/* ---- the machine's actions ---------------------------------------------- */

/* Performs the machine's actions until none is left. */
static void run_op_actions(struct cnode *cn)
{
    struct op_action a;
    while (op_next_action(cn->ops, &a)) {
        struct client *c = a.client->data;
        switch (a.type) {
            case OP_ACT_EXEC:
                run_exec(cn, a.op);
                break;
            case OP_ACT_DONE:
                op_done(cn, a.op);
                break;
            case OP_ACT_REPLY: {
                const char *err = op_error(a.op);
                struct rk_buf *r = op_reply(a.op);
                if (err) {
                    c->cur_cmd = op_cmd(a.op);
                    reply_error(c, err);
                    c->cur_cmd = NULL;
                } else if (r->len && c->obuf.len == 0 &&
                           r->len > OP_KEEP_BYTES) {
                    /* a large reply moves instead of being copied */
                    struct rk_buf t = c->obuf;
                    c->obuf = *r;
                    *r = t;
                } else if (r->len) {
                    rk_buf_append(&c->obuf, r->base, r->len);
                }
                break;
            }
            case OP_ACT_DISPATCH: {
                /* Everything before it is answered: run it as if it had
                 * just arrived (it may start a coordinated command). */
                size_t argc;
                const struct resp_arg *argv = op_args(a.op, &argc);
                command_dispatch(c, argc, argv);
                op_dispatch_done(cn->ops, a.op);
                break;
            }
            case OP_ACT_RESUME:
                schedule_resume(cn, c);
                break;
        }
    }
}

void cluster__process_ready(struct cnode *cn)
{
    op_process(cn->ops);
    run_op_actions(cn);
}

void cluster__retry_stalled(struct cnode *cn)
{
    op_retry_stalled(cn->ops);
    run_op_actions(cn);
}

/* ---- clients ------------------------------------------------------------ */

void cluster_client_gone(struct client *c)
{
    struct cnode *cn = c->srv->cluster;
    if (cn == NULL) {
        return;
    }
    resume_forget(cn, c);
    if (cn->join_op && op_client_of(cn->join_op) == &c->ops) {
        cn->join_op = NULL;
    }
    op_client_gone(cn->ops, &c->ops);
}

bool cluster_client_busy(const struct client *c)
{
    return op_client_is_busy(&c->ops);
}

bool cluster_client_blocked(const struct client *c)
{
    return op_client_is_blocked(&c->ops);
}

void cluster_defer(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct cnode *cn = c->srv->cluster;
    if (op_defer(cn->ops, &c->ops, argc, argv) != RK_OK) {
        /* Cannot keep it: answer out of order rather than lose it. */
        reply_error(c, "ERR out of memory");
    }
}

/* ---- routing ------------------------------------------------------------ */

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

/* The keys of cmd's arguments as the command table names them. */
static int add_cmd_keys(struct op *op,
                        const struct command *cmd,
                        size_t argc,
                        const struct resp_arg *argv)
{
    struct op_keyspec spec = {cmd->first_key, cmd->last_key, cmd->key_step};
    return op_add_keys(op, &spec, argc, argv);
}

/* What the machine needs to know of cmd (op.h OP_F_*). */
static unsigned op_flags_of(const struct command *cmd,
                            size_t argc,
                            const struct resp_arg *argv)
{
    unsigned f = 0;
    if (command_is_blind(cmd, argc, argv)) {
        f |= OP_F_BLIND;
    }
    if (cmd->flags & CMD_VERSIONED) {
        f |= OP_F_VERSIONED;
    }
    if (cmd->flags & CMD_WRITE) {
        f |= OP_F_WRITE;
    }
    if (cmd->flags & CMD_NOMULTI) {
        f |= OP_F_BARRIER;
    }
    return f;
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
    struct op *op = NULL;
    int crc;
    if (c->donated && argc > 0 && argv[0].ptr >= c->donated &&
        argv[0].ptr < c->donated + c->donated_len) {
        /* the large command's input buffer moves into the operation */
        crc = op_create_owned(cn->ops, &c->ops, cmd, argc, argv, c->donated,
                              c->donated_len, &op);
        if (crc == RK_OK) {
            c->donated = NULL;
        }
    } else {
        crc = op_create(cn->ops, &c->ops, cmd, argc, argv, &op);
    }
    if (crc != RK_OK) {
        reply_error(c, "ERR out of memory");
        return;
    }
    size_t n;
    const struct resp_arg *args = op_args(op, &n);
    int rc = add_cmd_keys(op, cmd, n, args);
    if (rc == RK_OK && (cmd->flags & CMD_TXKEYS)) {
        for (size_t i = 0; rc == RK_OK && i < c->mq_len; i++) {
            rc = add_cmd_keys(op, c->mq[i].cmd, c->mq[i].argc, c->mq[i].argv);
        }
        for (struct watched_key *w = c->watched; rc == RK_OK && w;
             w = w->next) {
            rc = op_add_key(op, w->key, w->klen);
        }
    }
    if (rc != RK_OK) {
        op_discard(cn->ops, op);
        reply_error(c, "ERR out of memory");
        return;
    }
    const struct req_opts *ro = &c->ropts;
    struct route_quorum over = {ro->n, ro->r, ro->w};
    op_submit(cn->ops, op, op_flags_of(cmd, n, args), over, ro->timeout_ms,
              server_mono_us());
    run_op_actions(cn);
}

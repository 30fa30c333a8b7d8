/*
 * node.c - see node.h.  The node facade: actions, membership and failure
 * detection glue, the replica side (one path for a local and a remote
 * replica), client operations over the coordinator, and durable acks.
 * Hinted handoff and tombstone reaping are in node_hints.c; src/server/
 * cluster.c (issue 11 item 1) drives this machine with sockets and files.
 *
 * Event flow inside one call:
 *
 *   node_on_message --KV_PUT/GET/UPDATE--> serve() --reply--> SEND
 *                                            |  (sync=always, not yet
 *                                            |   durable) queue_ack
 *                  --KV_*_REPLY, ERROR--> coord_on_reply --> drain()
 *                  --GOSSIP/JOIN*--> membership --> run_cl_actions()
 *                  --PING/ACK/PING_REQ--> swim --> run_cl_actions()
 *   node_on_durable --> acks whose seq is durable: SEND or
 *                       coord_on_local_result --> drain()
 *   node_on_tick --> membership, swim, coord deadlines; hint and reaping
 *                    rounds (node_hints.c)
 *
 * drain() consumes the coordinator's actions: SENDs become NODE_SEND
 * (encoded at once: the coordinator's views die with its next call),
 * LOCAL_* are served by serve() like a remote request and fed back with
 * coord_on_local_result after the rest of the list, REPLYs are routed to
 * the operation that owns the coordinator cookie (an index into the op
 * table; the op's kind says what it is for).  A write's second phase
 * (PUT after its UPDATE answered) is queued on `ready` and started after
 * the drain, never inside it.
 *
 * Actions are recorded with offsets into one arena and their views fixed
 * up when the call returns (finish()), so the arena may grow meanwhile.
 */
#include "cluster/node.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/dvv.h"
#include "cluster/node_internal.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

/* Makes room for one more element in *arr (len == *cap grows it: doubles,
 * or `first` elements).  RK_OK or RK_ENOMEM (*arr untouched). */
static int grow(void *arr, size_t *cap, size_t len, size_t elem, size_t first)
{
    if (len < *cap) {
        return RK_OK;
    }
    void **pp = arr;
    size_t nc = *cap ? *cap * 2 : first;
    void *p = rk_realloc(*pp, nc * elem);
    if (p == NULL) {
        return RK_ENOMEM;
    }
    *pp = p;
    *cap = nc;
    return RK_OK;
}

/* ---- actions ------------------------------------------------------------ */

void node__begin(struct node *n)
{
    n->n_out = 0;
    rk_buf_clear(&n->arena);
}

size_t node__arena_put(struct node *n, const void *p, size_t len, bool nul)
{
    size_t off = n->arena.len;
    if (rk_buf_append(&n->arena, p ? p : "", len) != RK_OK ||
        (nul && rk_buf_append(&n->arena, "", 1) != RK_OK)) {
        return NODE_NO_OFF;
    }
    return off;
}

struct node_action *node__push(struct node *n,
                               enum node_action_type type,
                               struct node__offs **offs)
{
    if (n->n_out == n->cap_out) {
        size_t cap = n->cap_out ? n->cap_out * 2 : 64;
        struct node_action *a = rk_realloc(n->out, cap * sizeof(*a));
        if (a == NULL) {
            return NULL;
        }
        n->out = a;
        struct node__offs *o = rk_realloc(n->offs, cap * sizeof(*o));
        if (o == NULL) {
            return NULL;
        }
        n->offs = o;
        n->cap_out = cap;
    }
    struct node_action *a = &n->out[n->n_out];
    *a = (struct node_action){.type = type};
    struct node__offs *o = &n->offs[n->n_out++];
    *o = (struct node__offs){NODE_NO_OFF, NODE_NO_OFF, NODE_NO_OFF,
                             NODE_NO_OFF, NODE_NO_OFF, NODE_NO_OFF,
                             0,           0,           0};
    *offs = o;
    return a;
}

/* Points every action's views into the arena (it no longer moves). */
void node__finish(struct node *n)
{
    const char *b = n->arena.base;
    for (size_t i = 0; i < n->n_out; i++) {
        struct node_action *a = &n->out[i];
        const struct node__offs *o = &n->offs[i];
        a->to = o->to != NODE_NO_OFF ? b + o->to : "";
        a->host = o->host != NODE_NO_OFF ? b + o->host : NULL;
        a->frame = o->frame != NODE_NO_OFF
                       ? (struct peer_bytes){b + o->frame, o->frame_len}
                       : (struct peer_bytes){NULL, 0};
        a->bytes = o->bytes != NODE_NO_OFF
                       ? (struct peer_bytes){b + o->bytes, o->bytes_len}
                       : (struct peer_bytes){NULL, 0};
        a->result.object =
            o->object != NODE_NO_OFF
                ? (struct peer_bytes){b + o->object, o->object_len}
                : (struct peer_bytes){NULL, 0};
        a->text = o->text != NODE_NO_OFF ? b + o->text : "";
    }
}

size_t node_actions(const struct node *n, const struct node_action **out)
{
    *out = n->out;
    return n->n_out;
}

void node__log(struct node *n,
               int level,
               const char *event,
               const char *fmt,
               ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (len < 0) {
        return;
    }
    size_t l = (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1;
    struct node__offs *o;
    struct node_action *a = node__push(n, NODE_LOG, &o);
    if (a) {
        a->level = level;
        a->event = event;
        o->text = node__arena_put(n, line, l, true);
    }
}

/* A NODE_SEND of msg to `to` (id, may be NULL/"" with host), at host:port
 * when given, else at the membership's address of `to`. */
void node__send(struct node *n,
                const char *to,
                const char *host,
                uint16_t port,
                uint64_t req_id,
                const struct peer_msg *msg)
{
    struct membership_member mm;
    if ((host == NULL || host[0] == '\0') && to && to[0] &&
        membership_member_find(n->mem, to, &mm)) {
        host = mm.host;
        port = mm.peer_port;
    }
    struct node__offs *o;
    struct node_action *a = node__push(n, NODE_SEND, &o);
    if (a == NULL) {
        return; /* lost like a dropped message: timeouts retry */
    }
    a->port = host && host[0] ? port : 0;
    a->req_id = req_id;
    o->to = node__arena_put(n, to, to ? strlen(to) : 0, true);
    if (host && host[0]) {
        o->host = node__arena_put(n, host, strlen(host), true);
    }
    size_t off = n->arena.len;
    if (peer_encode(msg, &n->arena) != RK_OK) {
        n->n_out--; /* the codec refused it: nothing to send */
        return;
    }
    o->frame = off;
    o->frame_len = n->arena.len - off;
    if (msg->type == PEER_GOSSIP) {
        n->st.gossip_out++;
    }
}

/* ---- liveness ------------------------------------------------------------ */

static long gone_find(const struct node *n, const char *id, size_t len)
{
    for (size_t i = 0; i < n->n_gone; i++) {
        if (strlen(n->gone[i]) == len && memcmp(n->gone[i], id, len) == 0) {
            return (long)i;
        }
    }
    return -1;
}

bool node_peer_is_up(const struct node *n, const char *id)
{
    if (gone_find(n, id, strlen(id)) >= 0) {
        return false;
    }
    enum swim_status st;
    if (!swim_member_status(n->swim, id, &st, NULL)) {
        return true;
    }
    return st != SWIM_DOWN;
}

bool node__is_up_or_self(const struct node *n, const char *id)
{
    return strcmp(id, n->id) == 0 || node_peer_is_up(n, id);
}

/* Valid members for which pred holds. */
static size_t count_members(const struct node *n,
                            bool (*pred)(const struct node *n, const char *id))
{
    size_t k = 0, m = membership_member_count(n->mem);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(n->mem, i, &mm);
        if (membership_status_active(mm.status) && pred(n, mm.node_id)) {
            k++;
        }
    }
    return k;
}

static bool route_is_up(void *data, const char *id)
{
    return node_peer_is_up(data, id);
}

static bool route_is_degraded(void *data, const char *id)
{
    return node_peer_is_degraded(data, id);
}

/* What routing sees of this node: its ring, itself, its liveness view,
 * and for a write the storage states. */
static struct route_view view_of(const struct node *n, bool write)
{
    return (struct route_view){
        .ring = membership_ring(n->mem),
        .next = membership_next_ring(n->mem),
        .self = n->id,
        .sloppy = n->set.sloppy_quorum,
        .is_up = route_is_up,
        .write = write,
        .is_degraded = route_is_degraded,
        .data = (void *)n,
    };
}

void node__targets(const struct node *n,
                   const void *key,
                   size_t klen,
                   uint32_t nval,
                   struct route_targets *t)
{
    struct route_view v = view_of(n, false);
    route_targets(&v, key, klen, nval, t);
}

void node__write_targets(const struct node *n,
                         const void *key,
                         size_t klen,
                         uint32_t nval,
                         struct route_targets *t)
{
    struct route_view v = view_of(n, true);
    route_targets(&v, key, klen, nval, t);
}

size_t node__pick_coordinator(const struct node *n,
                              const struct route_targets *t)
{
    struct route_view v = view_of(n, true);
    return route_pick_coordinator(&v, t);
}

/* ---- storage state (issue 12 item 3) -------------------------------------
 */

bool node__engine_failed(struct engine *e)
{
    return engine_read_only(e); /* one atomic load: asked per event */
}

bool node_is_degraded(const struct node *n)
{
    return n->degraded || node__engine_failed(n->data);
}

const char *node_storage_reason(const struct node *n)
{
    if (n->degraded) {
        return n->degraded_reason;
    }
    return node_is_degraded(n) ? NODE_STORAGE_READ_ONLY : "";
}

bool node_peer_is_degraded(const struct node *n, const char *id)
{
    if (strcmp(id, n->id) == 0) {
        return node_is_degraded(n);
    }
    return swim_member_storage(n->swim, id) == PEER_STORAGE_DEGRADED;
}

size_t node_members_degraded(const struct node *n)
{
    return count_members(n, node_peer_is_degraded);
}

void node_set_storage_state(struct node *n,
                            bool degraded,
                            const char *reason,
                            uint64_t now)
{
    (void)now;
    node__begin(n);
    char why[sizeof(n->degraded_reason)];
    snprintf(why, sizeof(why), "%s",
             degraded && reason && reason[0] ? reason
             : degraded                      ? "storage is read-only"
                                             : "");
    if (degraded != n->degraded) {
        if (degraded) {
            node__log(n, RK_LOG_WARN, "storage_degraded",
                      "reason=\"%s\" effect=\"writes go to the other "
                      "replicas; reads still served\"",
                      why);
        } else {
            node__log(n, RK_LOG_INFO, "storage_ok",
                      "msg=\"storage takes writes again\"");
        }
    }
    n->degraded = degraded;
    snprintf(n->degraded_reason, sizeof(n->degraded_reason), "%s", why);
    swim_set_storage(n->swim,
                     degraded ? PEER_STORAGE_DEGRADED : PEER_STORAGE_OK);
    node__finish(n);
}

void node_on_peer_up(struct node *n, const char *id, size_t len, uint64_t now)
{
    node__begin(n);
    long g = gone_find(n, id, len);
    if (g >= 0) {
        memcpy(n->gone[g], n->gone[n->n_gone - 1], sizeof(n->gone[g]));
        n->n_gone--;
    }
    swim_on_traffic(n->swim, id, len, now, &n->acts);
    node__run_cl_actions(n);
    node__finish(n);
}

void node_on_peer_down(struct node *n, const char *id, size_t len)
{
    node__begin(n);
    /* New requests for it fail at once until it reconnects (the transport
     * redials with backoff; SWIM marks it down soon after). */
    if (len > CL_ID_MAX || len == 0 || gone_find(n, id, len) >= 0) {
        node__finish(n);
        return;
    }
    if (grow(&n->gone, &n->cap_gone, n->n_gone, sizeof(*n->gone), 8) != RK_OK) {
        node__finish(n);
        return;
    }
    memcpy(n->gone[n->n_gone], id, len);
    n->gone[n->n_gone][len] = '\0';
    n->n_gone++;
    node__finish(n);
}

/* ---- membership-derived settings ----------------------------------------- */

static void recompute(struct node *n)
{
    /* valid: the members of the current ring (valid and leaving), which
     * N/R/W are clamped to; active: those and joining ones, probed */
    size_t valid = 0, active = 0;
    size_t m = membership_member_count(n->mem);
    const char **ids = rk_malloc((m ? m : 1) * sizeof(*ids));
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(n->mem, i, &mm);
        if (membership_status_active(mm.status)) {
            if (ids) {
                ids[active] = mm.node_id;
            }
            active++;
            valid += mm.status != MEMBERSHIP_STATUS_JOINING;
        }
    }
    if (ids) {
        if (swim_set_members(n->swim, ids, active) != RK_OK) {
            node__log(n, RK_LOG_WARN, "cluster_swim_members", "members=%zu",
                      active);
        }
        rk_free(ids);
    }
    bool member = membership_phase(n->mem) == MEMBERSHIP_MEMBER;
    struct route_quorum c = n->set.quorum;
    struct route_quorum q = route_clamp(c, valid);
    if ((q.n != n->eff.n || q.r != n->eff.r || q.w != n->eff.w ||
         valid != n->valid_members) &&
        (q.n != c.n || q.r != c.r || q.w != c.w)) {
        node__log(n, RK_LOG_INFO, "cluster_quorum_clamped",
                  "members=%zu n=%" PRIu32 " r=%" PRIu32 " w=%" PRIu32
                  " configured_n=%" PRIu32 " configured_r=%" PRIu32
                  " configured_w=%" PRIu32,
                  valid, q.n, q.r, q.w, c.n, c.r, c.w);
    }
    n->valid_members = valid;
    n->eff = q;
    if (member && valid >= 2 && !n->versioned) {
        /* From now on keys are versioned objects, also if the cluster
         * shrinks back to this node: remember it across restarts. */
        n->versioned = true;
        struct node__offs *o;
        struct node_action *a = node__push(n, NODE_PERSIST, &o);
        if (a) {
            a->file = NODE_FILE_VERSIONED;
            o->bytes = node__arena_put(n, "1\n", 2, false);
            o->bytes_len = 2;
        }
    }
    n->multi = member && (valid >= 2 || n->versioned);
    struct peer_bytes st = membership_state_bytes(n->mem);
    n->state_hash = st.len ? XXH3_64bits(st.ptr, st.len) : 0;
}

static struct node__seen *seen_find(struct node *n,
                                    const char *id,
                                    size_t len,
                                    bool create)
{
    for (size_t i = 0; i < n->n_seen; i++) {
        if (strlen(n->seen[i].id) == len &&
            memcmp(n->seen[i].id, id, len) == 0) {
            return &n->seen[i];
        }
    }
    if (!create || len > CL_ID_MAX) {
        return NULL;
    }
    if (grow(&n->seen, &n->cap_seen, n->n_seen, sizeof(*n->seen), 8) != RK_OK) {
        return NULL;
    }
    struct node__seen *ps = &n->seen[n->n_seen++];
    memset(ps, 0, sizeof(*ps));
    memcpy(ps->id, id, len);
    ps->id[len] = '\0';
    return ps;
}

bool node_peer_version(const struct node *n, const char *id, uint64_t *v)
{
    struct node__seen *ps = seen_find((struct node *)n, id, strlen(id), false);
    if (ps == NULL) {
        return false;
    }
    *v = ps->version;
    return true;
}

bool node_agrees(const struct node *n)
{
    size_t m = membership_member_count(n->mem);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(n->mem, i, &mm);
        if (!membership_status_active(mm.status) ||
            strcmp(mm.node_id, n->id) == 0 || !node_peer_is_up(n, mm.node_id)) {
            continue;
        }
        struct node__seen *ps =
            seen_find((struct node *)n, mm.node_id, strlen(mm.node_id), false);
        if (ps == NULL || ps->hash != n->state_hash) {
            return false;
        }
    }
    return true;
}

size_t node_members_up(const struct node *n)
{
    return count_members(n, node__is_up_or_self);
}

/*
 * Pushes this node's state to every valid member (at most 16, the rest
 * hear it from random gossip).  Each member that adopts it broadcasts in
 * turn, so after a change every node hears the new state from every other
 * within about one round trip, and agreement (which needs each peer's own
 * report) settles in well under a second.
 */
static void broadcast_state(struct node *n)
{
    struct peer_bytes st = membership_state_bytes(n->mem);
    if (st.len == 0 || membership_phase(n->mem) != MEMBERSHIP_MEMBER) {
        return;
    }
    struct peer_msg g = {.type = PEER_GOSSIP};
    g.gossip.state = st;
    g.gossip.state_version = membership_version(n->mem);
    g.gossip.from = (struct peer_bytes){n->id, strlen(n->id)};
    size_t m = membership_member_count(n->mem), sent = 0;
    for (size_t i = 0; i < m && sent < 16; i++) {
        struct membership_member mm;
        membership_member_get(n->mem, i, &mm);
        if (!membership_status_active(mm.status) ||
            strcmp(mm.node_id, n->id) == 0 || !node_peer_is_up(n, mm.node_id)) {
            continue;
        }
        node__send(n, mm.node_id, mm.host, mm.peer_port, 0, &g);
        sent++;
    }
}

/* Turns membership / swim actions into node actions. */
void node__run_cl_actions(struct node *n)
{
    for (size_t i = 0; i < n->acts.len; i++) {
        struct cl_action *a = &n->acts.items[i];
        struct node__offs *o;
        struct node_action *na;
        switch (a->type) {
            case CL_ACT_SEND:
                node__send(n, a->node, a->host, a->peer_port, 0, &a->msg);
                break;
            case CL_ACT_STATE_CHANGED:
                recompute(n);
                broadcast_state(n);
                node__log(n, RK_LOG_INFO, "cluster_state",
                          "version=%" PRIu64 " members=%zu n=%" PRIu32
                          " r=%" PRIu32 " w=%" PRIu32,
                          a->version, n->valid_members, n->eff.n, n->eff.r,
                          n->eff.w);
                break;
            case CL_ACT_PERSIST:
                na = node__push(n, NODE_PERSIST, &o);
                if (na) {
                    na->file = NODE_FILE_STATE;
                    o->bytes =
                        node__arena_put(n, a->bytes.ptr, a->bytes.len, false);
                    o->bytes_len = a->bytes.len;
                }
                break;
            case CL_ACT_NODE_UP:
                node__log(n, RK_LOG_INFO, "node_up", "peer=%s", a->node);
                break;
            case CL_ACT_NODE_DOWN:
                node__log(n, RK_LOG_WARN, "node_down", "peer=%s", a->node);
                break;
            case CL_ACT_JOIN_DONE:
                recompute(n);
                node__log(n, RK_LOG_INFO, "cluster_joined",
                          "members=%zu version=%" PRIu64, n->valid_members,
                          membership_version(n->mem));
                node__push(n, NODE_JOIN_DONE, &o);
                break;
            case CL_ACT_JOIN_FAILED:
                node__log(n, RK_LOG_WARN, "cluster_join_failed",
                          "reason=\"%s\"", a->text);
                na = node__push(n, NODE_JOIN_FAILED, &o);
                if (na) {
                    na->level = a->status;
                    o->text =
                        node__arena_put(n, a->text, strlen(a->text), true);
                }
                break;
            case CL_ACT_LOG:
                node__log_text(n, a->status, a->text);
                break;
        }
    }
    cl_actions_clear(&n->acts);
}

/* ---- durable acks ---------------------------------------------------------
 */

/* Holds an acknowledgement until `q`'s engine has `seq` durable (and,
 * with then_hint, the hint store then_hint: release_acks). */
static void queue_ack(struct node__ackq *q,
                      uint64_t seq,
                      uint64_t then_hint,
                      bool local,
                      uint64_t req_id,
                      int32_t status,
                      const char *peer,
                      size_t plen)
{
    if (q->len == q->cap) {
        if (q->head > 0) {
            memmove(q->items, q->items + q->head,
                    (q->len - q->head) * sizeof(*q->items));
            q->len -= q->head;
            q->head = 0;
        }
        if (grow(&q->items, &q->cap, q->len, sizeof(*q->items), 64) != RK_OK) {
            return; /* no ack: the coordinator times out */
        }
    }
    struct node__ack *a = &q->items[q->len++];
    a->seq = seq;
    a->then_hint = then_hint;
    a->local = local;
    a->req_id = req_id;
    a->status = status;
    size_t l = plen < CL_ID_MAX ? plen : CL_ID_MAX;
    memcpy(a->peer, peer ? peer : "", l);
    a->peer[l] = '\0';
}

static bool ackq_has_local(const struct node__ackq *q, uint64_t req_id)
{
    for (size_t i = q->head; i < q->len; i++) {
        if (q->items[i].local && q->items[i].req_id == req_id) {
            return true;
        }
    }
    return false;
}

static bool local_ack_pending(const struct node *n, uint64_t req_id)
{
    return ackq_has_local(&n->acks, req_id) ||
           ackq_has_local(&n->hint_acks, req_id);
}

static bool hold_fail(struct node *n, const struct node__fail *f)
{
    if (grow(&n->held, &n->cap_held, n->n_held, sizeof(*n->held), 16) !=
        RK_OK) {
        return false;
    }
    n->held[n->n_held++] = *f;
    return true;
}

/* Feeds the failures held for req_id (its local write is now durable). */
static void release_held(struct node *n, uint64_t req_id)
{
    size_t w = 0;
    for (size_t i = 0; i < n->n_held; i++) {
        if (n->held[i].req_id == req_id && n->n_fails < NODE_MAX_FAILS) {
            n->fails[n->n_fails++] = n->held[i];
        } else {
            n->held[w++] = n->held[i];
        }
    }
    n->n_held = w;
}

static void add_fail(struct node *n,
                     uint64_t req_id,
                     const char *node,
                     size_t len,
                     int status)
{
    if (n->n_fails >= NODE_MAX_FAILS || len > CL_ID_MAX) {
        return; /* the request's deadline answers it */
    }
    struct node__fail *f = &n->fails[n->n_fails++];
    f->req_id = req_id;
    f->status = status;
    memcpy(f->node, node, len);
    f->node[len] = '\0';
}

void node__note_write(struct node *n, uint64_t seq)
{
    if (seq > n->last_seq) {
        n->last_seq = seq;
    }
}

/* Whether a write of seq must wait before it is acknowledged: until it
 * is fdatasync'd (sync=always) or handed to the OS (every, none), as
 * engine_acked_seq says (issue 12). */
static bool must_wait_durable(const struct node *n, uint64_t seq)
{
    return seq != 0 && engine_acked_seq(n->data) < seq;
}

bool node_wants_handoff(const struct node *n)
{
    if (n->set.sync_always) {
        return false; /* the engines' sync threads write and sync */
    }
    /* A failed engine never hands off again: nothing to wait for (else
     * the driver's hand-off would spin). */
    return (engine_acked_seq(n->data) < n->last_seq &&
            !node__engine_failed(n->data)) ||
           (n->hints && engine_acked_seq(n->hints) < n->last_hint_seq &&
            !node__engine_failed(n->hints));
}

/* ---- the replica side -------------------------------------------------- */

/*
 * After the data engine recovered in place (engine_recover) it may have
 * lost writes whose dots this node issued and sent on: a later dot of the
 * same actor would make its clock cover the lost one, and merging it would
 * then drop that sibling where it survived (an acknowledged write lost).
 * So, as a restart does, the node continues under a new actor (issue 12).
 */
static void renew_actor_if_recovered(struct node *n)
{
    uint64_t rec = engine_recoveries(n->data); /* one atomic read */
    if (rec == n->actor_recoveries) {
        return;
    }
    uint64_t seed[3] = {n->actor, rec, rk_env_rand64(n->env)};
    uint64_t a = XXH3_64bits(seed, sizeof(seed)) & DVV_ACTOR_MASK;
    a = a == DVV_ACTOR_LEGACY ? 1 : a;
    node__log(n, RK_LOG_INFO, "dvv_actor_renewed",
              "old=%016" PRIx64 " new=%016" PRIx64
              " reason=\"the data engine recovered in place\"",
              n->actor, a);
    n->actor = a;
    n->rcfg.actor = a;
    n->floor = 0;
    n->actor_recoveries = rec;
}

enum serve_result
{
    SERVE_NONE,       /* nothing to answer (read repair) */
    SERVE_REPLY,      /* answer *rep now */
    SERVE_WAIT,       /* answer *rep once *wait is durable in the data */
    SERVE_WAIT_HINTS, /* ... in the hint store */
};

/*
 * Applies a KV_PUT / KV_GET / KV_UPDATE addressed to this node, coming
 * from a peer or from this node's own coordinator: the one replica path.
 * *rep views n->valbuf (GET, UPDATE) until the next serve.  SERVE_WAIT
 * with *then_hint set: once the data has *wait durable, the answer waits
 * for the hint store to have *then_hint (a leaving owner's relays).
 */
static enum serve_result serve(struct node *n,
                               const struct peer_msg *m,
                               struct peer_msg *rep,
                               uint64_t *wait,
                               uint64_t *then_hint)
{
    *then_hint = 0;
    uint64_t seq = 0;
    switch (m->type) {
        case PEER_KV_PUT: {
            const struct peer_kv_put *p = &m->kv_put;
            if (node__is_hinted(n, p->hint_for)) {
                node__hint_store(n, p, rep, wait);
                return p->req_id == 0 ? SERVE_NONE
                       : *wait        ? SERVE_WAIT_HINTS
                                      : SERVE_REPLY;
            }
            bool changed = false;
            replica_handle_put(n->data, &n->rcfg, p, rep, &changed, &seq);
            node__note_write(n, seq);
            bool relayed = rep->kv_put_reply.status == RK_OK && changed &&
                           node__relay_if_leaving(n, p->key.ptr, p->key.len,
                                                  p->object.ptr, p->object.len);
            if (p->req_id == 0) {
                return SERVE_NONE; /* read repair: no answer wanted */
            }
            /* Acknowledge once durable under the sync policy
             * (engine_acked_seq); a merge that changed nothing
             * acknowledges what this node already wrote.  During a
             * transition the hints a leaving owner relays (here or at
             * the UPDATE before) count too: the hint store first. */
            uint64_t w = changed ? seq : n->last_seq;
            if (rep->kv_put_reply.status != RK_OK) {
                return SERVE_REPLY;
            }
            uint64_t hw = relayed || membership_next_ring(n->mem) != NULL
                              ? n->last_hint_seq
                              : 0;
            if (hw && n->hints && !node__engine_failed(n->hints) &&
                engine_acked_seq(n->hints) < hw) {
                *then_hint = hw;
            }
            if (must_wait_durable(n, w)) {
                *wait = w;
                return SERVE_WAIT;
            }
            if (*then_hint) {
                *wait = *then_hint;
                *then_hint = 0;
                return SERVE_WAIT_HINTS;
            }
            return SERVE_REPLY;
        }
        case PEER_KV_GET:
            if (m->kv_get.key.len > NODE_HINT_VIEW_PREFIX_LEN &&
                memcmp(m->kv_get.key.ptr, NODE_HINT_VIEW_PREFIX,
                       NODE_HINT_VIEW_PREFIX_LEN) == 0) {
                node__hint_view(n, &m->kv_get, rep);
                return SERVE_REPLY;
            }
            replica_handle_get(n->data, &n->rcfg, &m->kv_get, &n->valbuf, rep);
            node__get_with_hints(n, &m->kv_get, rep);
            return SERVE_REPLY;
        case PEER_KV_UPDATE:
            /* Answered at once: under sync=always the coordinator counts
             * this replica only through the KV_PUT that follows, which
             * waits for durability. */
            if (node__is_hinted(n, m->kv_update.hint_for)) {
                node__hint_update(n, &m->kv_update, rep);
            } else {
                renew_actor_if_recovered(n);
                replica_handle_update(n->data, &n->rcfg, &m->kv_update,
                                      &n->valbuf, rep, &seq);
                node__note_write(n, seq);
                if (rep->kv_update_reply.status == RK_OK) {
                    (void)node__relay_if_leaving(
                        n, m->kv_update.key.ptr, m->kv_update.key.len,
                        rep->kv_update_reply.object.ptr,
                        rep->kv_update_reply.object.len);
                }
            }
            return SERVE_REPLY;
        default:
            return SERVE_NONE;
    }
}

/* ---- the coordinator's actions ----------------------------------------- */

static uint64_t msg_req_id(const struct peer_msg *m)
{
    switch (m->type) {
        case PEER_KV_PUT:
            return m->kv_put.req_id;
        case PEER_KV_UPDATE:
            return m->kv_update.req_id;
        case PEER_KV_GET:
            return m->kv_get.req_id;
        default:
            return 0;
    }
}

void node__drain(struct node *n, uint64_t now)
{
    if (n->draining) {
        return;
    }
    n->draining = true;
    n->rcfg.now_ms = rk_env_wall_ms(n->env); /* for the clock-skew check */
    for (;;) {
        const struct coord_action *acts;
        size_t cnt = coord_actions(n->coord, &acts);
        const struct coord_action *local = NULL;
        for (size_t i = 0; i < cnt; i++) {
            const struct coord_action *a = &acts[i];
            switch (a->type) {
                case COORD_SEND: {
                    char id[CL_ID_MAX + 1];
                    size_t l =
                        a->node_len < CL_ID_MAX ? a->node_len : CL_ID_MAX;
                    memcpy(id, a->node, l);
                    id[l] = '\0';
                    uint64_t req = msg_req_id(&a->msg);
                    if (!node_peer_is_up(n, id)) {
                        if (req != 0) { /* (a read repair is skipped) */
                            add_fail(n, req, a->node, l, RK_ECLOSED);
                        }
                        break;
                    }
                    node__send(n, id, NULL, 0, req, &a->msg);
                    break;
                }
                case COORD_LOCAL_PUT:
                    if (a->msg.kv_put.req_id == 0) {
                        struct peer_msg rep;
                        uint64_t w = 0, h = 0;
                        (void)serve(n, &a->msg, &rep, &w, &h); /* repair */
                        break;
                    }
                    local = a;
                    break;
                case COORD_LOCAL_GET:
                case COORD_LOCAL_UPDATE:
                    local = a;
                    break;
                case COORD_REPLY:
                    node__on_coord_reply(n, &a->reply);
                    break;
            }
        }
        if (local) {
            struct peer_msg rep;
            uint64_t wait = 0, then_hint = 0;
            enum serve_result sr =
                serve(n, &local->msg, &rep, &wait, &then_hint);
            if (sr == SERVE_REPLY) {
                coord_on_local_result(n->coord, &rep, now);
                continue;
            }
            if (sr == SERVE_WAIT || sr == SERVE_WAIT_HINTS) {
                queue_ack(sr == SERVE_WAIT ? &n->acks : &n->hint_acks, wait,
                          then_hint, true, rep.kv_put_reply.req_id,
                          rep.kv_put_reply.status, NULL, 0);
            }
        }
        /* Feed one failure (it replaces the list, which is then consumed
         * in the next turn); failures of a request whose local write
         * waits for its fsync are held instead, without going back to
         * the list already consumed (doing so re-sent its messages and,
         * with a target down, failed it again forever: found by the
         * simulator on bitcask with sync=always). */
        bool fed = false;
        while (n->n_fails > 0 && !fed) {
            struct node__fail f = n->fails[--n->n_fails];
            if (local_ack_pending(n, f.req_id) && hold_fail(n, &f)) {
                continue;
            }
            coord_on_failure(n->coord, f.req_id, f.node, strlen(f.node),
                             f.status, now);
            fed = true;
        }
        if (!fed) {
            break;
        }
    }
    n->draining = false;
}

/* ---- events -----------------------------------------------------------------
 */

void node_on_message(struct node *n,
                     const char *from,
                     size_t from_len,
                     const struct peer_msg *msg,
                     uint64_t now)
{
    node__begin(n);
    n->rcfg.now_ms = rk_env_wall_ms(n->env);
    uint64_t ahead_before = n->rstats.clock_ahead;
    char id[CL_ID_MAX + 1];
    size_t l = from_len < CL_ID_MAX ? from_len : CL_ID_MAX;
    memcpy(id, from, l);
    id[l] = '\0';
    if (!node__speaks_for_itself(n, from, from_len, msg, now)) {
        node__finish(n);
        return;
    }
    swim_on_traffic(n->swim, from, from_len, now, &n->acts);
    node__run_cl_actions(n);
    switch (msg->type) {
        case PEER_PING:
        case PEER_ACK:
        case PEER_PING_REQ:
            swim_on_message(n->swim, msg, now, &n->acts);
            node__run_cl_actions(n);
            break;
        case PEER_GOSSIP:
            n->st.gossip_in++;
            /* fall through */
        case PEER_JOIN:
        case PEER_REPLACE:
        case PEER_JOIN_REPLY: {
            int rc = membership_on_message(n->mem, msg, now, &n->acts);
            /* the sender's report of its state (node_agrees), if taken */
            struct node__seen *ps = msg->type == PEER_GOSSIP && rc == RK_OK
                                        ? seen_find(n, from, from_len, true)
                                        : NULL;
            if (ps) {
                ps->version = msg->gossip.state_version;
                ps->hash =
                    XXH3_64bits(msg->gossip.state.ptr, msg->gossip.state.len);
            }
            if (rc != RK_OK) {
                node__log(n, RK_LOG_DEBUG, "membership_message",
                          "peer=%s type=%d error=%s reason=\"%s\"", id,
                          (int)msg->type, rk_errname(rc),
                          membership_errmsg(n->mem));
            }
            node__run_cl_actions(n);
            break;
        }
        case PEER_KV_PUT:
        case PEER_KV_GET:
        case PEER_KV_UPDATE: {
            /* A node alone in its cluster serves no other node's keys: a
             * cluster whose committed plan lists it as joining forwards
             * writes to it before it adopted that state (membership_plan.c),
             * and it must stay empty until then; the pending-owner fold
             * brings it the data afterwards.  Dropped unanswered: the
             * sender's request fails for this target as for a down one. */
            if (!n->multi && !membership_member_find(
                                 n->mem, id, &(struct membership_member){0})) {
                n->st.replica_refused_nonmember++;
                break;
            }
            if (msg->type == PEER_KV_PUT) {
                n->st.replica_puts++;
            } else if (msg->type == PEER_KV_GET) {
                n->st.replica_gets++;
            } else {
                n->st.replica_updates++;
            }
            struct peer_msg rep;
            uint64_t wait = 0, then_hint = 0;
            enum serve_result sr = serve(n, msg, &rep, &wait, &then_hint);
            if (sr == SERVE_REPLY) {
                node__send(n, id, NULL, 0, 0, &rep);
            } else if (sr == SERVE_WAIT || sr == SERVE_WAIT_HINTS) {
                queue_ack(sr == SERVE_WAIT ? &n->acks : &n->hint_acks, wait,
                          then_hint, false, rep.kv_put_reply.req_id,
                          rep.kv_put_reply.status, from, from_len);
            }
            break;
        }
        case PEER_FOLD:
        case PEER_FETCH:
            node__handoff_on_request(n, id, msg);
            break;
        case PEER_FOLD_REPLY:
            node__handoff_on_reply(n, id, &msg->fold_reply, now);
            break;
        case PEER_AAE_TREE:
            node__aae_on_tree(n, id, &msg->aae_tree, now);
            break;
        case PEER_AAE_TREE_REPLY:
            node__aae_on_tree_reply(n, id, &msg->aae_tree_reply, now);
            break;
        case PEER_AAE_KEYS:
            node__aae_on_keys(n, id, &msg->aae_keys);
            break;
        case PEER_AAE_KEYS_REPLY:
            node__aae_on_keys_reply(n, id, &msg->aae_keys_reply, now);
            break;
        case PEER_KV_PUT_REPLY:
        case PEER_KV_GET_REPLY:
        case PEER_KV_UPDATE_REPLY:
        case PEER_ERROR:
            if ((msg->type == PEER_KV_PUT_REPLY &&
                 msg->kv_put_reply.status == RK_EREADONLY) ||
                (msg->type == PEER_KV_UPDATE_REPLY &&
                 msg->kv_update_reply.status == RK_EREADONLY)) {
                /* its storage refused a write: route writes around it
                 * now, before its next PING or ACK says so */
                swim_note_storage(n->swim, from, from_len,
                                  PEER_STORAGE_DEGRADED, &n->acts);
                node__run_cl_actions(n);
            }
            coord_on_reply(n->coord, from, from_len, msg, now);
            node__drain(n, now);
            break;
        default:
            break;
    }
    if (n->rstats.clock_ahead != ahead_before &&
        now >= n->skew_logged_at + 10000) {
        /* rate-limited: at most one line per 10 s */
        n->skew_logged_at = now;
        node__log(n, RK_LOG_WARN, "clock_skew",
                  "peer=%s ahead_max_ms=%" PRIu64 " bound_ms=%" PRIu64
                  " events=%" PRIu64,
                  id, n->rstats.clock_ahead_max_ms, n->rcfg.max_skew_ms,
                  n->rstats.clock_ahead);
    }
    node__process_ready(n, now);
    node__finish(n);
}

void node_on_send_failed(struct node *n,
                         const char *to,
                         uint64_t req_id,
                         int status,
                         uint64_t now)
{
    node__begin(n);
    if (req_id != 0) {
        add_fail(n, req_id, to, strlen(to), status);
        node__drain(n, now);
        node__process_ready(n, now);
    }
    node__finish(n);
}

/* Releases the acknowledgements of q that `durable` covers. */
static void release_acks(struct node *n,
                         struct node__ackq *q,
                         uint64_t durable,
                         uint64_t now)
{
    while (q->head < q->len && q->items[q->head].seq <= durable) {
        struct node__ack a = q->items[q->head++];
        if (a.then_hint && n->hints && q != &n->hint_acks &&
            !node__engine_failed(n->hints) &&
            engine_acked_seq(n->hints) < a.then_hint) {
            /* durable in the data; its relays are not yet: wait there
             * (appended out of order, it is released no earlier) */
            queue_ack(&n->hint_acks, a.then_hint, 0, a.local, a.req_id,
                      a.status, a.peer, strlen(a.peer));
            continue;
        }
        struct peer_msg rep = {.type = PEER_KV_PUT_REPLY};
        rep.kv_put_reply.req_id = a.req_id;
        rep.kv_put_reply.status = a.status;
        if (a.local) {
            coord_on_local_result(n->coord, &rep, now);
            release_held(n, a.req_id);
            node__drain(n, now);
        } else {
            node__send(n, a.peer, NULL, 0, 0, &rep);
        }
    }
    if (q->head == q->len) {
        q->head = q->len = 0;
    }
}

/* An engine that failed never acknowledges more: the writes still held
 * for it are refused (RK_EREADONLY), so their coordinators count them as
 * failures now and route around this node, instead of timing out. */
static void refuse_acks(struct node *n,
                        struct node__ackq *q,
                        struct engine *e,
                        uint64_t now)
{
    if (!node__engine_failed(e)) {
        return;
    }
    for (size_t i = q->head; i < q->len; i++) {
        q->items[i].status = RK_EREADONLY;
    }
    release_acks(n, q, UINT64_MAX, now);
}

void node_on_durable(struct node *n, uint64_t now)
{
    node__begin(n);
    release_acks(n, &n->acks, engine_acked_seq(n->data), now);
    refuse_acks(n, &n->acks, n->data, now);
    if (n->hints) {
        release_acks(n, &n->hint_acks, engine_acked_seq(n->hints), now);
        refuse_acks(n, &n->hint_acks, n->hints, now);
    }
    node__process_ready(n, now);
    node__finish(n);
}

void node_on_tick(struct node *n, uint64_t now)
{
    node__begin(n);
    if (now >= membership_next_deadline_ms(n->mem)) {
        membership_tick(n->mem, now, &n->acts);
        node__run_cl_actions(n);
    }
    if (now >= swim_next_deadline_ms(n->swim)) {
        /* the PINGs say what the engine says now, whatever the driver
         * reported last (it adds the reason) */
        swim_set_storage(n->swim, node_is_degraded(n) ? PEER_STORAGE_DEGRADED
                                                      : PEER_STORAGE_OK);
        swim_tick(n->swim, now, &n->acts);
        node__run_cl_actions(n);
    }
    if (now >= coord_next_deadline_ms(n->coord)) {
        coord_tick(n->coord, now);
        node__drain(n, now);
    }
    node__hints_round(n, now);
    node__handoff_round(n, now);
    node__reap_round(n, now);
    node__aae_round(n, now);
    node__gc_pump(n, now);
    if (n->rstats.bound_dropped != n->bound_logged &&
        now >= n->bound_logged_at + 10000) {
        /* the per-key sibling bound dropped data: say so (rate-limited) */
        node__log(n, RK_LOG_WARN, "sibling_bound",
                  "dropped=%" PRIu64 " total=%" PRIu64 " max_siblings=%zu",
                  n->rstats.bound_dropped - n->bound_logged,
                  n->rstats.bound_dropped, n->rcfg.max_sibs);
        n->bound_logged = n->rstats.bound_dropped;
        n->bound_logged_at = now;
    }
    node__process_ready(n, now);
    node__finish(n);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t node_next_deadline_ms(const struct node *n)
{
    uint64_t d = membership_next_deadline_ms(n->mem);
    d = min_u64(d, swim_next_deadline_ms(n->swim));
    d = min_u64(d, coord_next_deadline_ms(n->coord));
    if (n->hints) {
        d = min_u64(d, n->hint_scan_at);
    }
    if (n->multi) {
        d = min_u64(d, n->reap_scan_at);
    }
    return min_u64(d, node__aae_deadline(n));
}

/* ---- operator commands ----------------------------------------------------
 */

/* The end of an operator command: its membership actions, or none when
 * it was refused. */
static int admin_end(struct node *n, int rc, bool recompute_after)
{
    if (rc == RK_OK) {
        node__run_cl_actions(n);
        if (recompute_after) {
            recompute(n);
        }
    } else {
        cl_actions_clear(&n->acts);
    }
    node__finish(n);
    return rc;
}

int node_create_cluster(struct node *n, uint64_t now)
{
    node__begin(n);
    return admin_end(n, membership_create_cluster(n->mem, now, &n->acts), true);
}

int node_join(struct node *n, const char *host, uint16_t port, uint64_t now)
{
    node__begin(n);
    return admin_end(
        n, membership_join_start(n->mem, host, port, now, &n->acts), false);
}

int node_replace(struct node *n,
                 const char *host,
                 uint16_t port,
                 const char *old_id,
                 uint64_t now)
{
    node__begin(n);
    return admin_end(
        n, membership_replace_start(n->mem, host, port, old_id, now, &n->acts),
        false);
}

int node_leave(struct node *n, bool has_data, bool force, uint64_t now)
{
    node__begin(n);
    return admin_end(
        n, membership_leave(n->mem, has_data, force, now, &n->acts), true);
}

int node_commit(struct node *n, bool force, uint64_t now)
{
    node__begin(n);
    return admin_end(n, membership_commit(n->mem, force, now, &n->acts), true);
}

int node_remove(struct node *n, const char *id, bool force, uint64_t now)
{
    node__begin(n);
    return admin_end(n, membership_remove(n->mem, id, force, now, &n->acts),
                     true);
}

/* ---- create / destroy / settings --------------------------------------------
 */

static void apply_settings(struct node *n, const struct node_settings *s)
{
    n->set = *s;
    if (n->set.request_timeout_ms == 0) {
        n->set.request_timeout_ms = COORD_DEFAULT_TIMEOUT_MS;
    }
    n->rcfg.lww = s->lww;
    n->rcfg.max_sibs = s->max_siblings;
    n->rcfg.grace_ms = s->tombstone_grace_ms;
    n->rcfg.max_skew_ms = s->max_clock_skew_ms;
    if (n->set.aae_exchange_interval_ms == 0) {
        n->set.aae_exchange_interval_ms = NODE_AAE_DEFAULT_INTERVAL_MS;
    }
    if (n->set.aae_concurrency == 0) {
        n->set.aae_concurrency = NODE_AAE_DEFAULT_CONCURRENCY;
    }
    if (n->set.aae_concurrency > NODE_AAE_EXCHANGES) {
        n->set.aae_concurrency = NODE_AAE_EXCHANGES;
    }
    if (n->set.aae_repair_rate == 0) {
        n->set.aae_repair_rate = NODE_AAE_DEFAULT_REPAIR_RATE;
    }
}

int node_create(const struct node_config *cfg,
                struct node **out,
                char *errbuf,
                size_t errlen)
{
    if (cfg->node_id == NULL ||
        !ring_member_id_is_valid(cfg->node_id, strlen(cfg->node_id)) ||
        cfg->data == NULL || cfg->env == NULL) {
        snprintf(errbuf, errlen, "invalid node configuration");
        return RK_EINVAL;
    }
    struct node *n = rk_calloc(1, sizeof(*n));
    if (n == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return RK_ENOMEM;
    }
    snprintf(n->id, sizeof(n->id), "%s", cfg->node_id);
    n->env = cfg->env;
    n->data = cfg->data;
    n->hints = cfg->hints;
    n->actor = cfg->actor;
    n->actor_recoveries = engine_recoveries(cfg->data);
    n->versioned = cfg->versioned;
    n->max_ops = cfg->max_ops ? cfg->max_ops : NODE_DEFAULT_OPS;
    rk_buf_init(&n->arena);
    rk_buf_init(&n->valbuf);
    n->rcfg = (struct replica_cfg){
        .actor = cfg->actor,
        .floor = &n->floor,
        .oneshot = &n->oneshot,
        .max_clock = DVV_DEFAULT_CLOCK,
        .stats = &n->rstats,
        .scratch = &n->scratch,
        .recent = &n->recent,
        .superseded = node__gc_enqueue,
        .superseded_data = n,
        .stored = node__aae_stored,
        .stored_data = n,
    };
    for (size_t i = 0; i < NODE_CHUNK_GC_CHECKS; i++) {
        rk_buf_init(&n->gcq[i].b);
    }
    rk_buf_init(&n->gcd);
    rk_buf_init(&n->gc_cur);
    rk_buf_init(&n->gcr);
    replica_scratch_init(&n->scratch);
    apply_settings(n, &cfg->settings);
    n->ops = rk_calloc(n->max_ops, sizeof(*n->ops));
    int rc = n->ops ? RK_OK : RK_ENOMEM;
    struct membership_config mc = cfg->mem;
    mc.node_id = n->id;
    if (rc == RK_OK) {
        rc = membership_create(&mc, cfg->saved_state, cfg->saved_len, &n->mem,
                               errbuf, errlen);
    }
    struct swim_config sc = cfg->swim;
    sc.node_id = n->id;
    if (rc == RK_OK) {
        rc = swim_create(&sc, &n->swim);
    }
    if (rc == RK_OK) {
        rc = coord_create(n->id, n->max_ops, &n->coord);
    }
    if (rc == RK_OK) {
        rc = node__ckpt_load(n, cfg->saved_handoff, cfg->saved_handoff_len);
    }
    if (rc != RK_OK) {
        if (errbuf && errlen && errbuf[0] == '\0') {
            snprintf(errbuf, errlen, "node set-up failed: %s", rk_strerror(rc));
        }
        node_destroy(n);
        return rc;
    }
    node__begin(n);
    recompute(n);
    node__finish(n);
    *out = n;
    return RK_OK;
}

void node_destroy(struct node *n)
{
    if (n == NULL) {
        return;
    }
    coord_destroy(n->coord);
    swim_destroy(n->swim);
    membership_destroy(n->mem);
    for (size_t i = 0; i < n->n_ops; i++) {
        rk_buf_fini(&n->ops[i]->key);
        rk_buf_fini(&n->ops[i]->ctx);
        rk_buf_fini(&n->ops[i]->val);
        rk_buf_fini(&n->ops[i]->obj);
        rk_free(n->ops[i]);
    }
    rk_free(n->ops);
    rk_free(n->out);
    rk_free(n->offs);
    rk_buf_fini(&n->arena);
    rk_buf_fini(&n->valbuf);
    node__handoff_fini(n);
    for (size_t i = 0; i < NODE_CHUNK_GC_CHECKS; i++) {
        rk_buf_fini(&n->gcq[i].b);
    }
    rk_buf_fini(&n->gcd);
    node__aae_fini(n);
    rk_buf_fini(&n->gc_cur);
    rk_buf_fini(&n->gcr);
    replica_scratch_fini(&n->scratch);
    rk_free(n->seen);
    rk_free(n->gone);
    rk_free(n->acks.items);
    rk_free(n->hint_acks.items);
    rk_free(n->held);
    rk_free(n);
}

void node_set_settings(struct node *n, const struct node_settings *s)
{
    node__begin(n);
    apply_settings(n, s);
    recompute(n);
    node__finish(n);
}

/* ---- views ----------------------------------------------------------------
 */

const char *node_id(const struct node *n)
{
    return n->id;
}

struct membership *node_membership(const struct node *n)
{
    return n->mem;
}

struct swim *node_swim(const struct node *n)
{
    return n->swim;
}

struct coord *node_coord(const struct node *n)
{
    return n->coord;
}

struct route_quorum node_quorum(const struct node *n)
{
    return n->eff;
}

size_t node_valid_members(const struct node *n)
{
    return n->valid_members;
}

bool node_is_multi(const struct node *n)
{
    return n->multi;
}

const struct node_stats *node_stats(const struct node *n)
{
    return &n->st;
}

const struct replica_stats *node_replica_stats(const struct node *n)
{
    return &n->rstats;
}

uint64_t node_actor(const struct node *n)
{
    return n->actor;
}

const struct node_settings *node_settings(const struct node *n)
{
    return &n->set;
}

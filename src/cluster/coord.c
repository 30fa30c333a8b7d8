/*
 * coord.c - the quorum coordinator (contract, state diagram and
 * invariants C1-C7 in coord.h).
 *
 * Data structures:
 *   - slots[max_inflight]: the in-flight table.  A req_id is
 *     (sequence << COORD_SLOT_BITS) | slot index, with a sequence number
 *     that only grows, so lookup is O(1) and an id is never reused (C5).
 *   - a doubly linked list of WAITING slots ordered by deadline: inserts
 *     walk back from the tail (O(1) when every request has the same
 *     timeout), the head is the next deadline, a tick pops from the head.
 *   - a free list and a retired list (singly linked through `next`):
 *     finished slots wait on the retired list until the next event call so
 *     the views in the actions just returned stay valid (C6).
 *   - one action array sized at create for the largest event (a tick that
 *     expires every request, or a start with COORD_MAX_TARGETS sends), so
 *     events after start never allocate (C7), except for copying a winning
 *     read value.
 */
#include "cluster/coord.h"

#include <stdio.h>
#include <string.h>

#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"

#define COORD_SLOT_BITS 20 /* log2(COORD_MAX_INFLIGHT) */
#define NIL             UINT32_MAX

enum slot_state
{
    SLOT_FREE = 0,
    SLOT_WAITING = 1,
    SLOT_RETIRED = 2,
};

struct target
{
    const char *id; /* NUL-terminated, in slot->mem */
    size_t len;
};

struct slot
{
    enum slot_state state;
    enum coord_op op;
    uint64_t req_id;
    uint64_t cookie;
    uint64_t deadline_ms; /* start now_ms + timeout_ms */
    uint32_t n_targets;   /* N */
    uint32_t need;        /* W or R, 1..N */
    uint32_t successes;   /* distinct targets, <= N */
    uint32_t failures;    /* distinct targets, successes + failures <= N */
    uint64_t answered;    /* bit i: target i answered (C2) */
    int first_error;
    struct target *targets; /* n_targets, in mem */
    char *mem;              /* owned: targets, ids, key, value */
    /* the request (views into mem) */
    const char *key;
    size_t klen;
    const char *value;
    size_t vlen;
    uint64_t timestamp;
    uint64_t expire_at_ms;
    bool tombstone;
    uint32_t timeout_ms;
    /* reads: newest version so far */
    bool has_best;
    bool best_tombstone;
    uint64_t best_ts;
    uint64_t best_expire_at_ms;
    struct rk_buf best_val; /* owned */
    /* lists */
    uint32_t prev; /* deadline list (WAITING only) */
    uint32_t next; /* deadline, free or retired list */
};

struct coord
{
    char self_id[PEER_MAX_NODE_ID + 1];
    size_t self_len;
    struct slot *slots;
    uint32_t cap;          /* slots */
    uint32_t n_waiting;    /* slots in SLOT_WAITING */
    uint64_t seq;          /* last sequence number used in a req_id */
    uint32_t head, tail;   /* deadline list */
    uint32_t free_head;    /* free list */
    uint32_t retired_head; /* retired list */
    struct coord_action *acts;
    size_t n_acts, cap_acts;
    struct coord_stats stats;
};

/* ---- lists ---------------------------------------------------------------
 */

static void dl_insert(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    uint32_t after = c->tail;
    while (after != NIL && c->slots[after].deadline_ms > s->deadline_ms) {
        after = c->slots[after].prev;
    }
    s->prev = after;
    s->next = after == NIL ? c->head : c->slots[after].next;
    if (s->next != NIL) {
        c->slots[s->next].prev = i;
    } else {
        c->tail = i;
    }
    if (after != NIL) {
        c->slots[after].next = i;
    } else {
        c->head = i;
    }
}

static void dl_remove(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    if (s->prev != NIL) {
        c->slots[s->prev].next = s->next;
    } else {
        c->head = s->next;
    }
    if (s->next != NIL) {
        c->slots[s->next].prev = s->prev;
    } else {
        c->tail = s->prev;
    }
    s->prev = s->next = NIL;
}

static void slot_release(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    rk_free(s->mem);
    rk_buf_fini(&s->best_val);
    memset(s, 0, sizeof(*s));
    s->state = SLOT_FREE;
    s->prev = NIL;
    s->next = c->free_head;
    c->free_head = i;
}

/* Every event call starts here: frees the slots finished by the previous
 * call (C6) and empties the action list. */
static void begin_event(struct coord *c)
{
    while (c->retired_head != NIL) {
        uint32_t i = c->retired_head;
        c->retired_head = c->slots[i].next;
        slot_release(c, i);
    }
    c->n_acts = 0;
}

/* Takes `i` out of WAITING into RETIRED (it is freed by the next event). */
static void slot_retire(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    dl_remove(c, i);
    s->state = SLOT_RETIRED;
    s->next = c->retired_head;
    c->retired_head = i;
    c->n_waiting--;
}

static struct coord_action *push_action(struct coord *c)
{
    /* cap_acts covers the largest event (C7); this cannot fail. */
    if (RK_NEVER(c->n_acts >= c->cap_acts)) {
        return NULL;
    }
    struct coord_action *a = &c->acts[c->n_acts++];
    memset(a, 0, sizeof(*a));
    return a;
}

/* ---- create / destroy ----------------------------------------------------
 */

int coord_create(const char *self_id, size_t max_inflight, struct coord **out)
{
    size_t self_len = self_id ? strlen(self_id) : 0;
    if (self_len == 0 || self_len > PEER_MAX_NODE_ID || max_inflight == 0 ||
        max_inflight > COORD_MAX_INFLIGHT) {
        return RK_EINVAL;
    }
    struct coord *c = rk_calloc(1, sizeof(*c));
    if (c == NULL) {
        return RK_ENOMEM;
    }
    memcpy(c->self_id, self_id, self_len);
    c->self_len = self_len;
    c->cap = (uint32_t)max_inflight;
    c->cap_acts =
        (max_inflight > COORD_MAX_TARGETS ? max_inflight : COORD_MAX_TARGETS) +
        1;
    c->slots = rk_calloc(max_inflight, sizeof(*c->slots));
    c->acts = rk_calloc(c->cap_acts, sizeof(*c->acts));
    if (c->slots == NULL || c->acts == NULL) {
        rk_free(c->slots);
        rk_free(c->acts);
        rk_free(c);
        return RK_ENOMEM;
    }
    c->head = c->tail = c->retired_head = NIL;
    c->free_head = NIL;
    for (uint32_t i = c->cap; i-- > 0;) {
        c->slots[i].prev = NIL;
        c->slots[i].next = c->free_head;
        c->free_head = i;
    }
    *out = c;
    return RK_OK;
}

void coord_destroy(struct coord *c)
{
    if (c == NULL) {
        return;
    }
    for (uint32_t i = 0; i < c->cap; i++) {
        rk_free(c->slots[i].mem);
        rk_buf_fini(&c->slots[i].best_val);
    }
    rk_free(c->slots);
    rk_free(c->acts);
    rk_free(c);
}

/* ---- replies to the client -----------------------------------------------
 */

static void emit_reply(struct coord *c, uint32_t i, int status, bool timed_out)
{
    struct slot *s = &c->slots[i];
    struct coord_action *a = push_action(c);
    if (a != NULL) {
        struct coord_reply *r = &a->reply;
        a->type = COORD_REPLY;
        r->cookie = s->cookie;
        r->req_id = s->req_id;
        r->op = s->op;
        r->status = status;
        r->successes = s->successes;
        r->failures = s->failures;
        r->need = s->need;
        r->n_targets = s->n_targets;
        r->timed_out = timed_out;
        r->first_error = s->first_error;
        if (s->op == COORD_OP_GET && s->has_best && status != RK_ENOQUORUM &&
            status != RK_ENOMEM) {
            r->found = true;
            r->tombstone = s->best_tombstone;
            r->value.ptr = s->best_val.len ? s->best_val.base : NULL;
            r->value.len = s->best_val.len;
            r->timestamp = s->best_ts;
            r->expire_at_ms = s->best_expire_at_ms;
        }
        if (status == RK_ENOQUORUM && timed_out) {
            snprintf(r->message, sizeof(r->message),
                     "NOQUORUM reached %u of %u", (unsigned)s->successes,
                     (unsigned)s->need);
        } else if (status == RK_ENOQUORUM) {
            snprintf(r->message, sizeof(r->message),
                     "NOQUORUM reached %u of %u (%u of %u replicas failed)",
                     (unsigned)s->successes, (unsigned)s->need,
                     (unsigned)s->failures, (unsigned)s->n_targets);
        }
    }
    if (status == RK_OK || status == RK_ENOTFOUND) {
        c->stats.replied_ok++;
    } else if (status == RK_ENOQUORUM && timed_out) {
        c->stats.noquorum_timeout++;
    } else if (status == RK_ENOQUORUM) {
        c->stats.noquorum_early++;
    } else {
        c->stats.replied_error++;
    }
    slot_retire(c, i);
}

/* After an answer was counted: reply if the request is decided (C2, C4). */
static void check_done(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    if (s->successes >= s->need) {
        int status = RK_OK;
        if (s->op == COORD_OP_GET && (!s->has_best || s->best_tombstone)) {
            status = RK_ENOTFOUND;
        }
        emit_reply(c, i, status, false);
        return;
    }
    uint32_t pending = s->n_targets - s->successes - s->failures;
    if (s->successes + pending < s->need) {
        emit_reply(c, i, RK_ENOQUORUM, false);
    }
}

/* ---- starting requests ---------------------------------------------------
 */

static int check_targets(const char *const *targets,
                         size_t n,
                         uint32_t need,
                         size_t *ids_bytes)
{
    if (targets == NULL || n == 0 || n > COORD_MAX_TARGETS || need == 0 ||
        need > n) {
        return RK_EINVAL;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (targets[i] == NULL) {
            return RK_EINVAL;
        }
        size_t len = strlen(targets[i]);
        if (len == 0 || len > PEER_MAX_NODE_ID) {
            return RK_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(targets[i], targets[j]) == 0) {
                return RK_EINVAL;
            }
        }
        total += len + 1;
    }
    *ids_bytes = total;
    return RK_OK;
}

/*
 * Takes a free slot and copies targets, key and value into one allocation.
 * Returns the slot index through *idx.  RK_EBUSY or RK_ENOMEM.
 */
static int slot_open(struct coord *c,
                     enum coord_op op,
                     const char *const *targets,
                     size_t n,
                     size_t ids_bytes,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen,
                     uint32_t *idx)
{
    if (c->free_head == NIL) {
        c->stats.busy++;
        return RK_EBUSY;
    }
    size_t size = n * sizeof(struct target) + ids_bytes + klen + vlen;
    char *mem = rk_malloc(size ? size : 1);
    if (mem == NULL) {
        return RK_ENOMEM;
    }
    uint32_t i = c->free_head;
    struct slot *s = &c->slots[i];
    c->free_head = s->next;
    memset(s, 0, sizeof(*s));
    s->mem = mem;
    s->op = op;
    s->targets = (struct target *)(void *)mem;
    char *p = mem + n * sizeof(struct target);
    for (size_t t = 0; t < n; t++) {
        size_t len = strlen(targets[t]);
        memcpy(p, targets[t], len + 1);
        s->targets[t].id = p;
        s->targets[t].len = len;
        p += len + 1;
    }
    s->key = p;
    s->klen = klen;
    if (klen) {
        memcpy(p, key, klen);
    }
    p += klen;
    s->value = vlen ? p : NULL;
    s->vlen = vlen;
    if (vlen) {
        memcpy(p, val, vlen);
    }
    s->n_targets = (uint32_t)n;
    s->req_id = (++c->seq << COORD_SLOT_BITS) | i;
    s->state = SLOT_WAITING;
    s->prev = s->next = NIL;
    rk_buf_init(&s->best_val);
    *idx = i;
    return RK_OK;
}

static bool is_self(const struct coord *c, const struct target *t)
{
    return t->len == c->self_len && memcmp(t->id, c->self_id, t->len) == 0;
}

/* Emits SEND to every remote target, then LOCAL_* for self. */
static void emit_requests(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    if (s->op == COORD_OP_PUT) {
        m.type = PEER_KV_PUT;
        m.kv_put.req_id = s->req_id;
        m.kv_put.key.ptr = s->klen ? s->key : NULL;
        m.kv_put.key.len = s->klen;
        m.kv_put.value.ptr = s->value;
        m.kv_put.value.len = s->vlen;
        m.kv_put.timestamp = s->timestamp;
        m.kv_put.expire_at_ms = s->expire_at_ms;
        m.kv_put.flags = s->tombstone ? PEER_KV_TOMBSTONE : 0;
        m.kv_put.deadline_ms = s->timeout_ms;
    } else {
        m.type = PEER_KV_GET;
        m.kv_get.req_id = s->req_id;
        m.kv_get.key.ptr = s->klen ? s->key : NULL;
        m.kv_get.key.len = s->klen;
        m.kv_get.deadline_ms = s->timeout_ms;
    }
    int self = -1;
    for (uint32_t t = 0; t < s->n_targets; t++) {
        if (is_self(c, &s->targets[t])) {
            self = (int)t;
            continue;
        }
        struct coord_action *a = push_action(c);
        if (a != NULL) {
            a->type = COORD_SEND;
            a->node = s->targets[t].id;
            a->node_len = s->targets[t].len;
            a->msg = m;
        }
    }
    if (self >= 0) {
        struct coord_action *a = push_action(c);
        if (a != NULL) {
            a->type = s->op == COORD_OP_PUT ? COORD_LOCAL_PUT : COORD_LOCAL_GET;
            a->node = s->targets[self].id;
            a->node_len = s->targets[self].len;
            a->msg = m;
        }
    }
}

static void start_common(struct coord *c,
                         uint32_t i,
                         uint32_t need,
                         uint32_t timeout_ms,
                         uint64_t cookie,
                         uint64_t now_ms,
                         uint64_t *req_id)
{
    struct slot *s = &c->slots[i];
    s->need = need;
    s->timeout_ms = timeout_ms;
    s->cookie = cookie;
    s->deadline_ms =
        now_ms > UINT64_MAX - timeout_ms ? UINT64_MAX - 1 : now_ms + timeout_ms;
    dl_insert(c, i);
    c->n_waiting++;
    c->stats.started++;
    emit_requests(c, i);
    if (req_id) {
        *req_id = s->req_id;
    }
}

int coord_start_put(struct coord *c,
                    const struct coord_put_req *req,
                    uint64_t now_ms,
                    uint64_t *req_id)
{
    begin_event(c);
    size_t ids_bytes = 0;
    int rc = check_targets(req->targets, req->n_targets, req->w, &ids_bytes);
    if (rc != RK_OK) {
        return rc;
    }
    if (req->klen == 0 || req->klen > PEER_MAX_KEY || req->key == NULL ||
        req->vlen > PEER_MAX_VALUE || (req->vlen && req->value == NULL) ||
        req->timeout_ms == 0 || req->expire_at_ms == REPLICA_TOMBSTONE_EXPIRE ||
        (req->tombstone && (req->vlen != 0 || req->expire_at_ms != 0))) {
        return RK_EINVAL;
    }
    uint32_t i;
    rc = slot_open(c, COORD_OP_PUT, req->targets, req->n_targets, ids_bytes,
                   req->key, req->klen, req->value, req->vlen, &i);
    if (rc != RK_OK) {
        return rc;
    }
    struct slot *s = &c->slots[i];
    s->timestamp = req->timestamp;
    s->expire_at_ms = req->expire_at_ms;
    s->tombstone = req->tombstone;
    start_common(c, i, req->w, req->timeout_ms, req->cookie, now_ms, req_id);
    return RK_OK;
}

int coord_start_get(struct coord *c,
                    const struct coord_get_req *req,
                    uint64_t now_ms,
                    uint64_t *req_id)
{
    begin_event(c);
    size_t ids_bytes = 0;
    int rc = check_targets(req->targets, req->n_targets, req->r, &ids_bytes);
    if (rc != RK_OK) {
        return rc;
    }
    if (req->klen == 0 || req->klen > PEER_MAX_KEY || req->key == NULL ||
        req->timeout_ms == 0) {
        return RK_EINVAL;
    }
    uint32_t i;
    rc = slot_open(c, COORD_OP_GET, req->targets, req->n_targets, ids_bytes,
                   req->key, req->klen, NULL, 0, &i);
    if (rc != RK_OK) {
        return rc;
    }
    start_common(c, i, req->r, req->timeout_ms, req->cookie, now_ms, req_id);
    return RK_OK;
}

/* ---- answers -------------------------------------------------------------
 */

/* The WAITING slot of req_id, or NIL (C5). */
static uint32_t lookup(const struct coord *c, uint64_t req_id)
{
    uint64_t i = req_id & ((UINT64_C(1) << COORD_SLOT_BITS) - 1);
    if (i >= c->cap) {
        return NIL;
    }
    const struct slot *s = &c->slots[i];
    if (s->state != SLOT_WAITING || s->req_id != req_id) {
        return NIL;
    }
    return (uint32_t)i;
}

static int find_target(const struct slot *s, const char *id, size_t len)
{
    for (uint32_t t = 0; t < s->n_targets; t++) {
        if (s->targets[t].len == len &&
            memcmp(s->targets[t].id, id, len) == 0) {
            return (int)t;
        }
    }
    return -1;
}

/*
 * Keeps a read answer's version if it is the newest so far.  Returns RK_OK
 * or RK_ENOMEM (copying the value).
 */
static int consider_version(struct slot *s, const struct peer_kv_get_reply *r)
{
    struct replica_version in = {
        .value = r->value.ptr,
        .vlen = r->value.len,
        .timestamp = r->timestamp,
        .expire_at_ms = r->expire_at_ms,
        .tombstone = (r->flags & PEER_KV_TOMBSTONE) != 0,
    };
    if (s->has_best) {
        struct replica_version best = {
            .value = s->best_val.base,
            .vlen = s->best_val.len,
            .timestamp = s->best_ts,
            .expire_at_ms = s->best_expire_at_ms,
            .tombstone = s->best_tombstone,
        };
        if (replica_version_cmp(&in, &best) <= 0) {
            return RK_OK;
        }
    }
    rk_buf_clear(&s->best_val);
    if (in.vlen && rk_buf_append(&s->best_val, in.value, in.vlen) != RK_OK) {
        return RK_ENOMEM;
    }
    s->has_best = true;
    s->best_tombstone = in.tombstone;
    s->best_ts = in.timestamp;
    s->best_expire_at_ms = in.expire_at_ms;
    return RK_OK;
}

/*
 * One answer from `from` for req_id: status, and for a successful read with
 * a version, the reply carrying it.  `kind` is the message type.
 */
static void answer(struct coord *c,
                   uint64_t req_id,
                   const char *from,
                   size_t from_len,
                   enum peer_type kind,
                   int status,
                   const struct peer_kv_get_reply *got,
                   uint64_t now_ms)
{
    uint32_t i = lookup(c, req_id);
    if (i == NIL) {
        c->stats.ignored_unknown++;
        return;
    }
    struct slot *s = &c->slots[i];
    if (now_ms >= s->deadline_ms) {
        /* C3: the deadline passed before this answer was handled. */
        emit_reply(c, i, RK_ENOQUORUM, true);
        return;
    }
    bool kind_ok = kind == PEER_ERROR ||
                   (s->op == COORD_OP_PUT && kind == PEER_KV_PUT_REPLY) ||
                   (s->op == COORD_OP_GET && kind == PEER_KV_GET_REPLY);
    int t = from ? find_target(s, from, from_len) : -1;
    if (!kind_ok || t < 0) {
        c->stats.ignored_stranger++;
        return;
    }
    uint64_t bit = UINT64_C(1) << t;
    if (s->answered & bit) {
        c->stats.ignored_duplicate++;
        return;
    }
    s->answered |= bit;
    bool ok =
        status == RK_OK || (s->op == COORD_OP_GET && status == RK_ENOTFOUND);
    if (ok && got != NULL && status == RK_OK) {
        bool tomb = (got->flags & PEER_KV_TOMBSTONE) != 0;
        if (tomb && (got->value.len != 0 || got->expire_at_ms != 0)) {
            ok = false;
            status = RK_EPROTO;
        } else if (consider_version(s, got) != RK_OK) {
            s->successes++;
            emit_reply(c, i, RK_ENOMEM, false);
            return;
        }
    }
    if (ok) {
        s->successes++;
    } else {
        s->failures++;
        if (s->first_error == RK_OK) {
            s->first_error = status < 0 ? status : RK_EPROTO;
        }
    }
    check_done(c, i);
}

void coord_on_reply(struct coord *c,
                    const char *from,
                    size_t from_len,
                    const struct peer_msg *m,
                    uint64_t now_ms)
{
    begin_event(c);
    switch (m->type) {
        case PEER_KV_PUT_REPLY:
            answer(c, m->kv_put_reply.req_id, from, from_len, m->type,
                   m->kv_put_reply.status, NULL, now_ms);
            break;
        case PEER_KV_GET_REPLY:
            answer(c, m->kv_get_reply.req_id, from, from_len, m->type,
                   m->kv_get_reply.status, &m->kv_get_reply, now_ms);
            break;
        case PEER_ERROR:
            if (m->error.req_id == 0) {
                c->stats.ignored_unknown++;
                break;
            }
            answer(c, m->error.req_id, from, from_len, m->type,
                   m->error.status < 0 ? m->error.status : RK_EPROTO, NULL,
                   now_ms);
            break;
        default:
            c->stats.ignored_stranger++;
            break;
    }
}

void coord_on_local_result(struct coord *c,
                           const struct peer_msg *m,
                           uint64_t now_ms)
{
    coord_on_reply(c, c->self_id, c->self_len, m, now_ms);
}

void coord_on_failure(struct coord *c,
                      uint64_t req_id,
                      const char *node,
                      size_t node_len,
                      int status,
                      uint64_t now_ms)
{
    begin_event(c);
    answer(c, req_id, node, node_len, PEER_ERROR, status < 0 ? status : RK_EIO,
           NULL, now_ms);
}

/* ---- time and cancellation -----------------------------------------------
 */

uint64_t coord_next_deadline_ms(const struct coord *c)
{
    return c->head == NIL ? COORD_NO_DEADLINE : c->slots[c->head].deadline_ms;
}

uint64_t coord_tick(struct coord *c, uint64_t now_ms)
{
    begin_event(c);
    while (c->head != NIL && c->slots[c->head].deadline_ms <= now_ms) {
        emit_reply(c, c->head, RK_ENOQUORUM, true);
    }
    return coord_next_deadline_ms(c);
}

size_t coord_cancel(struct coord *c, uint64_t cookie)
{
    begin_event(c);
    size_t n = 0;
    uint32_t i = c->head;
    while (i != NIL) {
        uint32_t next = c->slots[i].next;
        if (c->slots[i].cookie == cookie) {
            slot_retire(c, i);
            c->stats.cancelled++;
            n++;
        }
        i = next;
    }
    return n;
}

/* ---- accessors -----------------------------------------------------------
 */

size_t coord_actions(const struct coord *c, const struct coord_action **out)
{
    *out = c->acts;
    return c->n_acts;
}

size_t coord_inflight(const struct coord *c)
{
    return c->n_waiting;
}

void coord_stats(const struct coord *c, struct coord_stats *st)
{
    *st = c->stats;
}

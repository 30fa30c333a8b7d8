/*
 * coord.c - the quorum coordinator (contract, state diagram and
 * invariants C1-C7 in coord.h).
 *
 * Data structures:
 *   - slots[max_inflight]: the in-flight table.  A req_id is
 *     (sequence << COORD_SLOT_BITS) | slot index, with a sequence number
 *     that only grows, so lookup is O(1) and an id is never reused (C5).
 *   - two doubly linked lists, WAITING and LINGER slots, each ordered by
 *     deadline (dl_first takes the earlier head of the two): inserts
 *     walk back from the tail (O(1) when every request has the same
 *     timeout), the head is the next deadline, a tick pops from the head.
 *   - a free list and a retired list (singly linked through `next`):
 *     finished slots wait on the retired list until the next event call so
 *     the views in the actions just returned stay valid (C6).
 *   - one action array sized at create for the largest event (a tick that
 *     expires every request, or a start with COORD_MAX_TARGETS sends), so
 *     events after start never allocate (C7), except for merging read
 *     answers and growing it for optional read repairs.
 */
#include "cluster/coord.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/dvv.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"

#define COORD_SLOT_BITS 20 /* log2(COORD_MAX_INFLIGHT) */
#define NIL             UINT32_MAX
/* answer()'s `kind` for a failure the transport reported (not a message
 * from the target): an update failing so may or may not have happened. */
#define KIND_TRANSPORT (PEER_TYPE_MAX + 1)

enum slot_state
{
    SLOT_FREE = 0,
    SLOT_WAITING = 1,
    SLOT_RETIRED = 2,
    SLOT_LINGER = 3, /* a read answered, waiting to send its repairs */
};

/* The deadline lists (dl_of). */
enum
{
    DL_WAITING = 0, /* WAITING: the request's deadline */
    DL_LINGER = 1,  /* LINGER: the end of the straggler wait */
    DL_SPEC = 2,    /* WAITING reads with a speculative retry to come */
    DL_N = 3,
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
    uint64_t deadline_ms; /* the next deadline: the speculative retry's
                             while spec_pending, else end_ms (WAITING)
                             or the straggler wait's end (LINGER) */
    uint64_t end_ms;      /* start now_ms + timeout_ms */
    bool spec_pending;    /* a speculative retry at deadline_ms */
    uint32_t n_targets;   /* N */
    uint32_t need;        /* W or R, 1..N */
    uint32_t successes;   /* distinct targets, <= N */
    uint32_t failures;    /* distinct targets, successes + failures <= N */
    uint64_t answered;    /* bit i: target i answered (C2) */
    uint64_t failed;      /* bit i: target i failed */
    uint64_t has_obj;     /* bit i: target i answered with an object */
    uint64_t asked;       /* bit i: target i was sent the request */
    int first_error;
    struct target *targets; /* n_targets, in mem */
    uint64_t *hash;         /* n_targets, in mem: XXH3 of i's object */
    const char **hints;     /* n_targets, in mem: hint_for or NULL */
    char *mem;              /* owned: targets, ids, key, value, context */
    /* the request (views into mem) */
    const char *key;
    size_t klen;
    const char *value; /* PUT: the object; UPDATE: the value */
    size_t vlen;
    const char *context; /* UPDATE */
    size_t clen;
    uint64_t timestamp;
    uint64_t expire_at_ms;
    uint32_t flags;
    uint32_t timeout_ms;
    uint32_t repair_wait_ms;
    /* GET: merged answers; UPDATE: the object returned */
    bool has_best;
    bool best_enc;      /* best_val is best's canonical encoding (a read
                           answered by one distinct object so far: no
                           merge, no re-encoding) */
    uint64_t best_hash; /* XXH3 of best_val when best_enc */
    struct dvv_obj best;
    struct rk_buf best_val; /* owned: encoding of best (GET) or the
                               returned object (UPDATE) */
    /* lists */
    uint32_t prev; /* deadline list (WAITING only) */
    uint32_t next; /* deadline, free or retired list */
};

struct dlist
{
    uint32_t head, tail; /* slot indexes, NIL when empty */
};

struct coord
{
    char self_id[PEER_MAX_NODE_ID + 1];
    size_t self_len;
    struct slot *slots;
    uint32_t cap;          /* slots */
    uint32_t n_waiting;    /* slots in SLOT_WAITING */
    uint64_t seq;          /* last sequence number used in a req_id */
    struct dlist dl[DL_N]; /* deadline lists (DL_*) */
    uint32_t free_head;    /* free list */
    uint32_t retired_head; /* retired list */
    struct coord_action *acts;
    size_t n_acts, cap_acts;
    struct coord_stats stats;
    struct dvv_obj scratch; /* decoded read answers (reused) */
};

/* ---- lists ---------------------------------------------------------------
 */

/* The deadline list a slot is on: WAITING requests and LINGERing reads
 * have one each, so that with one timeout per kind an insert walks back
 * O(1) from the tail (a single list made every linger insert walk past
 * all the requests with later deadlines: 37% of a coordinator's CPU). */
static struct dlist *dl_of(struct coord *c, uint32_t i)
{
    const struct slot *s = &c->slots[i];
    return &c->dl[s->state == SLOT_LINGER ? DL_LINGER
                  : s->spec_pending       ? DL_SPEC
                                          : DL_WAITING];
}

static void dl_insert(struct coord *c, uint32_t i)
{
    struct dlist *l = dl_of(c, i);
    struct slot *s = &c->slots[i];
    uint32_t after = l->tail;
    while (after != NIL && c->slots[after].deadline_ms > s->deadline_ms) {
        after = c->slots[after].prev;
    }
    s->prev = after;
    s->next = after == NIL ? l->head : c->slots[after].next;
    if (s->next != NIL) {
        c->slots[s->next].prev = i;
    } else {
        l->tail = i;
    }
    if (after != NIL) {
        c->slots[after].next = i;
    } else {
        l->head = i;
    }
}

static void dl_remove(struct coord *c, uint32_t i)
{
    struct dlist *l = dl_of(c, i);
    struct slot *s = &c->slots[i];
    if (s->prev != NIL) {
        c->slots[s->prev].next = s->next;
    } else {
        l->head = s->next;
    }
    if (s->next != NIL) {
        c->slots[s->next].prev = s->prev;
    } else {
        l->tail = s->prev;
    }
    s->prev = s->next = NIL;
}

/* The slot with the earliest deadline of all lists, or NIL. */
static uint32_t dl_first(const struct coord *c)
{
    uint32_t best = NIL;
    for (int l = 0; l < DL_N; l++) {
        uint32_t h = c->dl[l].head;
        if (h != NIL && (best == NIL || c->slots[h].deadline_ms <
                                            c->slots[best].deadline_ms)) {
            best = h;
        }
    }
    return best;
}

static void slot_release(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    rk_free(s->mem);
    rk_buf_fini(&s->best_val);
    dvv_fini(&s->best);
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

/* Takes `i` out of WAITING or LINGER into RETIRED (it is freed by the next
 * event). */
static void slot_retire(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    dl_remove(c, i);
    if (s->state == SLOT_WAITING) {
        c->n_waiting--;
    }
    s->state = SLOT_RETIRED;
    s->next = c->retired_head;
    c->retired_head = i;
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

/* An action that may be skipped (a read repair): grows the list when the
 * room reserved for required actions is taken; NULL when out of memory. */
static struct coord_action *push_optional(struct coord *c)
{
    /* keep room for every REPLY this event may still emit (at most one
     * per WAITING request) plus one start's sends (C1, C7) */
    if (c->n_acts + c->n_waiting + COORD_MAX_TARGETS + 1 >= c->cap_acts) {
        size_t cap = c->cap_acts * 2;
        struct coord_action *p = rk_realloc(c->acts, cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        c->acts = p;
        c->cap_acts = cap;
    }
    return push_action(c);
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
    dvv_init(&c->scratch);
    c->cap = (uint32_t)max_inflight;
    /* Room for the largest event's required actions: a tick that expires
     * every request, or a start with N sends.  Read repairs are optional
     * and grow the list (push_optional). */
    c->cap_acts =
        (max_inflight > COORD_MAX_TARGETS ? max_inflight : COORD_MAX_TARGETS) +
        COORD_MAX_TARGETS + 1;
    c->slots = rk_calloc(max_inflight, sizeof(*c->slots));
    c->acts = rk_calloc(c->cap_acts, sizeof(*c->acts));
    if (c->slots == NULL || c->acts == NULL) {
        rk_free(c->slots);
        rk_free(c->acts);
        rk_free(c);
        return RK_ENOMEM;
    }
    for (int l = 0; l < DL_N; l++) {
        c->dl[l].head = c->dl[l].tail = NIL;
    }
    c->retired_head = NIL;
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
        dvv_fini(&c->slots[i].best);
    }
    rk_free(c->slots);
    rk_free(c->acts);
    dvv_fini(&c->scratch);
    rk_free(c);
}

/* ---- replies to the client -----------------------------------------------
 */

static bool is_self(const struct coord *c, const struct target *t)
{
    return t->len == c->self_len && memcmp(t->id, c->self_id, t->len) == 0;
}

/* Makes best_val the canonical encoding of a read's merged answers
 * (bounded to what the format carries); a read answered by one distinct
 * object has it already.  RK_OK or RK_ENOMEM. */
static int encode_best(struct slot *s)
{
    if (s->best_enc) {
        return RK_OK;
    }
    /* merged answers may exceed what the format can carry */
    dvv_bound(&s->best, DVV_MAX_SIBLINGS, DVV_MAX_CLOCK, NULL, NULL);
    rk_buf_clear(&s->best_val);
    int rc = dvv_encode(&s->best, &s->best_val);
    if (rc == RK_OK) {
        s->best_enc = true;
        s->best_hash = XXH3_64bits(s->best_val.base, s->best_val.len);
    }
    return rc;
}

/* Read repair of a finished read: the merged object to every target whose
 * answer differed from it.  Retires the slot. */
static void emit_repairs(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    if (s->has_best) {
        if (encode_best(s) != RK_OK) {
            slot_retire(c, i);
            return;
        }
        uint64_t h = s->best_hash;
        for (uint32_t t = 0; t < s->n_targets; t++) {
            uint64_t bit = UINT64_C(1) << t;
            if (!(s->answered & bit) || (s->failed & bit) ||
                ((s->has_obj & bit) && s->hash[t] == h)) {
                continue;
            }
            struct coord_action *a = push_optional(c);
            if (a == NULL) {
                break;
            }
            a->type = is_self(c, &s->targets[t]) ? COORD_LOCAL_PUT : COORD_SEND;
            a->node = s->targets[t].id;
            a->node_len = s->targets[t].len;
            a->msg.type = PEER_KV_PUT;
            a->msg.kv_put.req_id = 0;
            a->msg.kv_put.key.ptr = s->key;
            a->msg.kv_put.key.len = s->klen;
            a->msg.kv_put.object.ptr = s->best_val.base;
            a->msg.kv_put.object.len = s->best_val.len;
            if (s->hints[t]) {
                a->msg.kv_put.hint_for.ptr = s->hints[t];
                a->msg.kv_put.hint_for.len = strlen(s->hints[t]);
            }
            a->msg.kv_put.deadline_ms = s->timeout_ms;
            c->stats.read_repairs++;
        }
    }
    slot_retire(c, i);
}

static void emit_reply(struct coord *c,
                       uint32_t i,
                       int status,
                       bool timed_out,
                       uint64_t now_ms)
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
        if (s->has_best && status == RK_OK) {
            if (s->op == COORD_OP_GET && encode_best(s) != RK_OK) {
                status = r->status = RK_ENOMEM;
            }
            if (status == RK_OK) {
                r->found = true;
                r->object.ptr = s->best_val.base;
                r->object.len = s->best_val.len;
                if (s->op == COORD_OP_GET) {
                    uint64_t h = s->best_hash;
                    r->uniform = true;
                    for (uint32_t t = 0; t < s->n_targets; t++) {
                        if ((s->has_obj >> t) & 1) {
                            r->with_object++;
                            r->uniform = r->uniform && s->hash[t] == h;
                        }
                    }
                }
            }
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
    bool repair = s->op == COORD_OP_GET && s->repair_wait_ms > 0 &&
                  (status == RK_OK || status == RK_ENOTFOUND);
    if (!repair) {
        slot_retire(c, i);
        return;
    }
    if (s->answered == s->asked) {
        emit_repairs(c, i);
        return;
    }
    /* LINGER: keep taking answers until all are in or the wait ends. */
    dl_remove(c, i);
    c->n_waiting--;
    s->state = SLOT_LINGER;
    s->spec_pending = false;
    uint64_t until = now_ms > UINT64_MAX - s->repair_wait_ms
                         ? UINT64_MAX - 1
                         : now_ms + s->repair_wait_ms;
    s->deadline_ms = until < s->end_ms ? until : s->end_ms;
    dl_insert(c, i);
}

/* After an answer was counted: reply if the request is decided (C2, C4). */
static void check_done(struct coord *c, uint32_t i, uint64_t now_ms)
{
    struct slot *s = &c->slots[i];
    if (s->state == SLOT_LINGER) {
        if (s->answered == s->asked) {
            emit_repairs(c, i);
        }
        return;
    }
    if (s->successes >= s->need) {
        int status = RK_OK;
        if (s->op != COORD_OP_PUT && !s->has_best) {
            status = RK_ENOTFOUND;
        }
        emit_reply(c, i, status, false, now_ms);
        return;
    }
    uint32_t pending = s->n_targets - s->successes - s->failures;
    if (s->successes + pending < s->need) {
        emit_reply(c, i, RK_ENOQUORUM, false, now_ms);
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

/* What a slot copies besides its targets. */
struct slot_copy
{
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    const void *ctx;
    size_t clen;
    const char *const *hints; /* per target, or NULL */
};

static size_t hints_bytes(const char *const *hints, size_t n)
{
    size_t total = 0;
    for (size_t t = 0; hints && t < n; t++) {
        total += hints[t] ? strlen(hints[t]) + 1 : 0;
    }
    return total;
}

static char *copy_in(char **p, const void *src, size_t len)
{
    char *at = *p;
    if (len) {
        memcpy(at, src, len);
    }
    *p += len;
    return len ? at : NULL;
}

/*
 * Takes a free slot and copies targets, hints, key, value and context into
 * one allocation.  Returns the slot index through *idx.  RK_EBUSY or
 * RK_ENOMEM.
 */
static int slot_open(struct coord *c,
                     enum coord_op op,
                     const char *const *targets,
                     size_t n,
                     size_t ids_bytes,
                     const struct slot_copy *cp,
                     uint32_t *idx)
{
    if (c->free_head == NIL) {
        c->stats.busy++;
        return RK_EBUSY;
    }
    size_t size =
        n * (sizeof(struct target) + sizeof(uint64_t) + sizeof(const char *)) +
        ids_bytes + hints_bytes(cp->hints, n) + cp->klen + cp->vlen + cp->clen;
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
    s->hash = (uint64_t *)(void *)(mem + n * sizeof(struct target));
    s->hints = (const char **)(void *)(mem + n * (sizeof(struct target) +
                                                  sizeof(uint64_t)));
    char *p = mem + n * (sizeof(struct target) + sizeof(uint64_t) +
                         sizeof(const char *));
    for (size_t t = 0; t < n; t++) {
        size_t len = strlen(targets[t]);
        s->targets[t].id = copy_in(&p, targets[t], len + 1);
        s->targets[t].len = len;
        s->hash[t] = 0;
        s->hints[t] = NULL;
        if (cp->hints && cp->hints[t]) {
            s->hints[t] = copy_in(&p, cp->hints[t], strlen(cp->hints[t]) + 1);
        }
    }
    s->key = copy_in(&p, cp->key, cp->klen);
    s->klen = cp->klen;
    s->value = copy_in(&p, cp->val, cp->vlen);
    s->vlen = cp->vlen;
    s->context = copy_in(&p, cp->ctx, cp->clen);
    s->clen = cp->clen;
    s->n_targets = (uint32_t)n;
    s->req_id = (++c->seq << COORD_SLOT_BITS) | i;
    s->state = SLOT_WAITING;
    s->prev = s->next = NIL;
    rk_buf_init(&s->best_val);
    dvv_init(&s->best);
    *idx = i;
    return RK_OK;
}

/* The message of slot s for target t. */
static void build_msg(const struct slot *s, uint32_t t, struct peer_msg *m)
{
    memset(m, 0, sizeof(*m));
    switch (s->op) {
        case COORD_OP_PUT:
            m->type = PEER_KV_PUT;
            m->kv_put.req_id = s->req_id;
            m->kv_put.key.ptr = s->key;
            m->kv_put.key.len = s->klen;
            m->kv_put.object.ptr = s->value;
            m->kv_put.object.len = s->vlen;
            if (s->hints[t]) {
                m->kv_put.hint_for.ptr = s->hints[t];
                m->kv_put.hint_for.len = strlen(s->hints[t]);
            }
            m->kv_put.deadline_ms = s->timeout_ms;
            break;
        case COORD_OP_GET:
            m->type = PEER_KV_GET;
            m->kv_get.req_id = s->req_id;
            m->kv_get.key.ptr = s->key;
            m->kv_get.key.len = s->klen;
            m->kv_get.deadline_ms = s->timeout_ms;
            break;
        case COORD_OP_UPDATE:
            m->type = PEER_KV_UPDATE;
            m->kv_update.req_id = s->req_id;
            m->kv_update.key.ptr = s->key;
            m->kv_update.key.len = s->klen;
            m->kv_update.context.ptr = s->context;
            m->kv_update.context.len = s->clen;
            m->kv_update.value.ptr = s->value;
            m->kv_update.value.len = s->vlen;
            m->kv_update.timestamp = s->timestamp;
            m->kv_update.expire_at_ms = s->expire_at_ms;
            m->kv_update.flags = s->flags;
            if (s->hints[t]) {
                m->kv_update.hint_for.ptr = s->hints[t];
                m->kv_update.hint_for.len = strlen(s->hints[t]);
            }
            m->kv_update.deadline_ms = s->timeout_ms;
            break;
    }
}

/*
 * Asks up to k targets not asked nor answered yet: self first when it is
 * one, then target order; emits SEND to each remote one in target order,
 * then LOCAL_* for self.  A start's sends have room reserved (C7); later
 * ones (a read widened from an answer or a tick) grow the list.  Returns
 * how many it asked.
 */
static uint32_t ask(struct coord *c, uint32_t i, uint32_t k, bool at_start)
{
    struct slot *s = &c->slots[i];
    int self = -1;
    uint64_t pick = 0;
    for (uint32_t t = 0; t < s->n_targets && k > 0; t++) {
        if (((s->asked | s->answered) >> t) & 1) {
            continue;
        }
        if (is_self(c, &s->targets[t])) {
            self = (int)t;
            pick |= UINT64_C(1) << t;
            k--;
            break;
        }
    }
    for (uint32_t t = 0; t < s->n_targets && k > 0; t++) {
        uint64_t bit = UINT64_C(1) << t;
        if (((s->asked | s->answered | pick) & bit) == 0) {
            pick |= bit;
            k--;
        }
    }
    s->asked |= pick;
    for (uint32_t t = 0; t < s->n_targets; t++) {
        if (!((pick >> t) & 1) || (int)t == self) {
            continue;
        }
        struct coord_action *a = at_start ? push_action(c) : push_optional(c);
        if (a != NULL) {
            a->type = COORD_SEND;
            a->node = s->targets[t].id;
            a->node_len = s->targets[t].len;
            build_msg(s, t, &a->msg);
        }
    }
    if (self >= 0) {
        struct coord_action *a = at_start ? push_action(c) : push_optional(c);
        if (a != NULL) {
            a->type = s->op == COORD_OP_PUT   ? COORD_LOCAL_PUT
                      : s->op == COORD_OP_GET ? COORD_LOCAL_GET
                                              : COORD_LOCAL_UPDATE;
            a->node = s->targets[self].id;
            a->node_len = s->targets[self].len;
            build_msg(s, (uint32_t)self, &a->msg);
        }
    }
    return (uint32_t)__builtin_popcountll(pick);
}

/* A read asked fewer than N: ask more while the answers still awaited
 * cannot make up R (a target failed). */
static void widen(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    if (s->op != COORD_OP_GET || s->state != SLOT_WAITING ||
        s->successes >= s->need) {
        return;
    }
    uint32_t awaited = (uint32_t)__builtin_popcountll(s->asked & ~s->answered);
    uint32_t missing = s->need - s->successes;
    if (awaited < missing) {
        c->stats.read_widened += ask(c, i, missing - awaited, false);
    }
}

/* A speculative retry came due: ask every target not asked yet. */
static void speculate(struct coord *c, uint32_t i)
{
    struct slot *s = &c->slots[i];
    dl_remove(c, i);
    s->spec_pending = false;
    s->deadline_ms = s->end_ms;
    dl_insert(c, i);
    c->stats.read_widened += ask(c, i, s->n_targets, false);
    c->stats.speculative++;
}

/* Starts slot i: `first` targets asked now (all N: n_targets), the rest
 * on failures or after spec_ms (0 = never). */
static void start_common(struct coord *c,
                         uint32_t i,
                         uint32_t need,
                         uint32_t timeout_ms,
                         uint64_t cookie,
                         uint64_t now_ms,
                         uint64_t *req_id,
                         uint32_t first,
                         uint32_t spec_ms)
{
    struct slot *s = &c->slots[i];
    s->need = need;
    s->timeout_ms = timeout_ms;
    s->cookie = cookie;
    s->end_ms =
        now_ms > UINT64_MAX - timeout_ms ? UINT64_MAX - 1 : now_ms + timeout_ms;
    s->deadline_ms = s->end_ms;
    if (first < s->n_targets && spec_ms > 0 && spec_ms < timeout_ms) {
        s->spec_pending = true;
        s->deadline_ms = now_ms + spec_ms;
    }
    dl_insert(c, i);
    c->n_waiting++;
    c->stats.started++;
    if (first < s->n_targets) {
        c->stats.reads_partial++;
    }
    if (req_id) {
        *req_id = s->req_id;
    }
    (void)ask(c, i, first, true);
    check_done(c, i, now_ms); /* a pre-acked put may be done at once */
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
        req->olen == 0 || req->object == NULL ||
        req->olen > PEER_MAX_VALUE + PEER_MAX_KEY || req->timeout_ms == 0 ||
        req->acked < -1 || req->acked >= (int)req->n_targets) {
        return RK_EINVAL;
    }
    for (size_t t = 0; req->hint_for && t < req->n_targets; t++) {
        size_t l = req->hint_for[t] ? strlen(req->hint_for[t]) : 0;
        if (l > PEER_MAX_NODE_ID) {
            return RK_EINVAL;
        }
    }
    struct slot_copy cp = {req->key, req->klen, req->object,  req->olen,
                           NULL,     0,         req->hint_for};
    uint32_t i;
    rc = slot_open(c, COORD_OP_PUT, req->targets, req->n_targets, ids_bytes,
                   &cp, &i);
    if (rc != RK_OK) {
        return rc;
    }
    struct slot *s = &c->slots[i];
    if (req->acked >= 0) {
        s->answered = UINT64_C(1) << req->acked;
        s->successes = 1;
    }
    start_common(c, i, req->w, req->timeout_ms, req->cookie, now_ms, req_id,
                 req->n_targets, 0);
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
    for (size_t t = 0; req->hint_for && t < req->n_targets; t++) {
        if (req->hint_for[t] && strlen(req->hint_for[t]) > PEER_MAX_NODE_ID) {
            return RK_EINVAL;
        }
    }
    struct slot_copy cp = {req->key, req->klen, NULL,         0,
                           NULL,     0,         req->hint_for};
    uint32_t i;
    rc = slot_open(c, COORD_OP_GET, req->targets, req->n_targets, ids_bytes,
                   &cp, &i);
    if (rc != RK_OK) {
        return rc;
    }
    c->slots[i].repair_wait_ms = req->repair_wait_ms;
    uint32_t first = req->fanout == 0 || req->fanout > req->n_targets
                         ? (uint32_t)req->n_targets
                         : req->fanout;
    start_common(c, i, req->r, req->timeout_ms, req->cookie, now_ms, req_id,
                 first < req->r ? req->r : first, req->speculative_ms);
    return RK_OK;
}

int coord_start_update(struct coord *c,
                       const struct coord_update_req *req,
                       uint64_t now_ms,
                       uint64_t *req_id)
{
    begin_event(c);
    const char *targets[1] = {req->target};
    size_t ids_bytes = 0;
    int rc = check_targets(targets, 1, 1, &ids_bytes);
    if (rc != RK_OK) {
        return rc;
    }
    uint32_t f = req->flags;
    size_t hl = req->hint_for ? strlen(req->hint_for) : 0;
    if (req->klen == 0 || req->klen > PEER_MAX_KEY || req->key == NULL ||
        req->vlen > PEER_MAX_VALUE || (req->vlen && req->value == NULL) ||
        (req->clen && req->context == NULL) || req->timeout_ms == 0 ||
        (f & ~PEER_KV_UPDATE_FLAGS) ||
        ((f & PEER_KV_TOMBSTONE) &&
         ((req->vlen && !(f & PEER_KV_COUNTER_STATE)) || req->expire_at_ms)) ||
        ((f & PEER_KV_COUNTER_STATE) &&
         ((f & (PEER_KV_CTYPE | PEER_KV_CHUNKED | PEER_KV_COUNTER)) ||
          req->vlen == 0)) ||
        ((f & PEER_KV_OWN_CONTEXT) && req->clen) || hl > PEER_MAX_NODE_ID ||
        ((f & PEER_KV_COUNTER) &&
         (!(f & PEER_KV_OWN_CONTEXT) || req->vlen != PEER_KV_COUNTER_LEN ||
          req->expire_at_ms ||
          (f & (PEER_KV_TOMBSTONE | PEER_KV_CTYPE | PEER_KV_CHUNKED))))) {
        return RK_EINVAL;
    }
    const char *hints[1] = {hl ? req->hint_for : NULL};
    struct slot_copy cp = {req->key,     req->klen, req->value, req->vlen,
                           req->context, req->clen, hints};
    uint32_t i;
    rc = slot_open(c, COORD_OP_UPDATE, targets, 1, ids_bytes, &cp, &i);
    if (rc != RK_OK) {
        return rc;
    }
    struct slot *s = &c->slots[i];
    s->timestamp = req->timestamp;
    s->expire_at_ms = req->expire_at_ms;
    s->flags = f;
    start_common(c, i, 1, req->timeout_ms, req->cookie, now_ms, req_id, 1, 0);
    return RK_OK;
}

/* ---- answers -------------------------------------------------------------
 */

/* The WAITING or LINGER slot of req_id, or NIL (C5). */
static uint32_t lookup(const struct coord *c, uint64_t req_id)
{
    uint64_t i = req_id & ((UINT64_C(1) << COORD_SLOT_BITS) - 1);
    if (i >= c->cap) {
        return NIL;
    }
    const struct slot *s = &c->slots[i];
    if ((s->state != SLOT_WAITING && s->state != SLOT_LINGER) ||
        s->req_id != req_id) {
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
 * Takes an answer's object into the slot: GET merges it (remembering its
 * hash for read repair), UPDATE keeps it.  RK_OK, RK_ECORRUPT (does not
 * decode), RK_ENOMEM.
 */
static int take_object(struct coord *c,
                       struct slot *s,
                       uint32_t t,
                       struct peer_bytes obj)
{
    if (s->op == COORD_OP_UPDATE) {
        rk_buf_clear(&s->best_val);
        if (rk_buf_append(&s->best_val, obj.ptr, obj.len) != RK_OK) {
            return RK_ENOMEM;
        }
        s->has_best = true;
        return RK_OK;
    }
    const void *p = obj.ptr ? obj.ptr : "";
    uint64_t h = XXH3_64bits(p, obj.len);
    int rc = RK_OK;
    if (!(s->has_best && s->best_enc && h == s->best_hash &&
          s->best_val.len == obj.len &&
          memcmp(s->best_val.base, p, obj.len) == 0)) {
        /* not the object already taken: decode (which checks it) */
        struct dvv_obj *in = &c->scratch;
        rc = dvv_decode(in, p, obj.len);
        if (rc == RK_OK && s->has_best) {
            rc = dvv_merge_into(&s->best, in);
            s->best_enc = false;
        } else if (rc == RK_OK) {
            /* the first object: keep it and its (canonical) bytes */
            struct dvv_obj tmp = s->best;
            s->best = *in;
            *in = tmp;
            rk_buf_clear(&s->best_val);
            rc = rk_buf_append(&s->best_val, p, obj.len);
            s->best_enc = rc == RK_OK;
            s->best_hash = h;
        } else if (rc != RK_ENOMEM) {
            rc = RK_ECORRUPT;
        }
    }
    if (rc == RK_OK) {
        s->has_best = true;
        s->has_obj |= UINT64_C(1) << t;
        s->hash[t] = h;
    }
    return rc;
}

/*
 * One answer from `from` for req_id: status, and for a successful read or
 * update, the object it carries.  `kind` is the message type.
 */
static void answer(struct coord *c,
                   uint64_t req_id,
                   const char *from,
                   size_t from_len,
                   enum peer_type kind,
                   int status,
                   const struct peer_bytes *obj,
                   uint64_t now_ms)
{
    uint32_t i = lookup(c, req_id);
    if (i == NIL) {
        c->stats.ignored_unknown++;
        return;
    }
    struct slot *s = &c->slots[i];
    if (s->state == SLOT_WAITING && now_ms >= s->end_ms) {
        /* C3: the deadline passed before this answer was handled. */
        emit_reply(c, i, RK_ENOQUORUM, true, now_ms);
        return;
    }
    bool kind_ok = kind == PEER_ERROR || kind == KIND_TRANSPORT ||
                   (s->op == COORD_OP_PUT && kind == PEER_KV_PUT_REPLY) ||
                   (s->op == COORD_OP_GET && kind == PEER_KV_GET_REPLY) ||
                   (s->op == COORD_OP_UPDATE && kind == PEER_KV_UPDATE_REPLY);
    int t = from ? find_target(s, from, from_len) : -1;
    if (!kind_ok || t < 0 || !(((s->asked | s->answered) >> t) & 1)) {
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
    if (ok && obj != NULL && status == RK_OK && s->op != COORD_OP_PUT) {
        int rc = take_object(c, s, (uint32_t)t, *obj);
        if (rc == RK_ENOMEM && s->state == SLOT_WAITING) {
            s->successes++;
            emit_reply(c, i, RK_ENOMEM, false, now_ms);
            return;
        }
        if (rc != RK_OK) {
            ok = false;
            status = rc == RK_ECORRUPT ? RK_EPROTO : rc;
            if (rc == RK_ECORRUPT) {
                c->stats.bad_answers++;
            }
        }
    }
    if (ok) {
        s->successes++;
    } else {
        s->failures++;
        s->failed |= bit;
        if (s->first_error == RK_OK) {
            s->first_error = status < 0 ? status : RK_EPROTO;
        }
    }
    if (s->op == COORD_OP_UPDATE && !ok && kind != KIND_TRANSPORT &&
        status < 0 && status != RK_EPROTO && s->state == SLOT_WAITING) {
        /* the replica refused the write itself: say why, not NOQUORUM */
        emit_reply(c, i, status < 0 ? status : RK_EPROTO, false, now_ms);
        return;
    }
    if (!ok) {
        widen(c, i);
    }
    check_done(c, i, now_ms);
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
                   m->kv_get_reply.status, &m->kv_get_reply.object, now_ms);
            break;
        case PEER_KV_UPDATE_REPLY:
            answer(c, m->kv_update_reply.req_id, from, from_len, m->type,
                   m->kv_update_reply.status, &m->kv_update_reply.object,
                   now_ms);
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
    answer(c, req_id, node, node_len, KIND_TRANSPORT,
           status < 0 ? status : RK_EIO, NULL, now_ms);
}

/* ---- time and cancellation -----------------------------------------------
 */

uint64_t coord_next_deadline_ms(const struct coord *c)
{
    uint32_t i = dl_first(c);
    return i == NIL ? COORD_NO_DEADLINE : c->slots[i].deadline_ms;
}

uint64_t coord_tick(struct coord *c, uint64_t now_ms)
{
    begin_event(c);
    for (uint32_t i = dl_first(c);
         i != NIL && c->slots[i].deadline_ms <= now_ms; i = dl_first(c)) {
        if (c->slots[i].state == SLOT_LINGER) {
            emit_repairs(c, i);
        } else if (c->slots[i].spec_pending) {
            speculate(c, i);
        } else {
            emit_reply(c, i, RK_ENOQUORUM, true, now_ms);
        }
    }
    return coord_next_deadline_ms(c);
}

size_t coord_cancel(struct coord *c, uint64_t cookie)
{
    begin_event(c);
    size_t n = 0;
    uint32_t i = c->dl[0].head;
    while (i != NIL) {
        uint32_t next = c->slots[i].next;
        if (c->slots[i].cookie == cookie && c->slots[i].state == SLOT_WAITING) {
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

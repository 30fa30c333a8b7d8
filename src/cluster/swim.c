/*
 * swim.c - the SWIM-style failure detector of swim.h (DESIGN.md section 4;
 * issue 4 item 4).  Routing only: nothing here reads or writes the
 * membership state or the ring.
 *
 * Protocol (Das, Gupta, Motivala, DSN 2002, sections 3, 4.2, 4.3), per
 * protocol period of T = period_ms, as this node runs it:
 *   1. At the period's start t_p, PING the next peer of the probe order (a
 *      seeded shuffle of the peers, walked round-robin, reshuffled only
 *      when the peer set changes, so each peer is probed exactly every M-1
 *      periods, M counting this node; section 4.3), and PING every SUSPECT
 *      peer again (our addition, replacing SWIM's disseminated
 *      suspicion: a suspect gets a probe every period until it answers or
 *      is declared down, which keeps false downs rare under loss).
 *   2. At t_p + ping_timeout_ms, for each probe not yet answered, send
 *      PING_REQ to k random other peers that are not DOWN; each pings the
 *      target (PING with `target` set) and forwards the ACK to us.
 *   3. At t_p + T, a probe with no ACK (direct or forwarded) and no other
 *      traffic from its target makes an UP target SUSPECT since t_p + T.
 *   4. A peer SUSPECT since t_s and silent until t_s + suspect_timeout_ms
 *      becomes DOWN (NODE_DOWN).
 *   5. Any PING, ACK, PING_REQ or other traffic from a peer makes it UP at
 *      once (NODE_UP if it was DOWN).  DOWN peers are still probed in
 *      their turn, so one that comes back is noticed.
 * Incarnations: PING and ACK carry the sender's incarnation (SWIM section
 * 4.2).  Without dissemination there is no suspicion to refute, so they
 * are only recorded: a larger one means the peer restarted.
 * Storage state (issue 12 item 3): PING and ACK also carry the sender's
 * storage state (peer.h enum peer_storage; a forwarded ACK the target's),
 * recorded per member like the incarnation: the last one heard wins
 * (swim_set_storage, swim_note_storage, swim_member_storage).  It is a
 * routing hint for writes, not a liveness verdict: a degraded peer stays
 * UP.  Each peer hears it within one probe round, (M-1)T.
 *
 * Bounds with the defaults (T = 500, ping_timeout 200, suspect 1500), M
 * nodes, latency well under 200 ms: a peer that stops right after
 * answering a probe at t_p is probed next at t_p + (M-1)T, suspected at
 * t_p + M*T and down at t_p + M*T + 1500: 4000 ms for M = 5, within the
 * 5 s target for M <= 7 (larger clusters add T per node; disseminated
 * suspicion would remove that term).  A peer that resumes is UP at its
 * next probe, at most (M-1)T later, or sooner when its own PING arrives:
 * at most 2000 ms for M = 5.  test_swim.c checks exact virtual times.
 *
 * Local stalls: when a tick comes at or after period start + 2T, this
 * node itself was stopped (SIGSTOP, a long stall) and its silence says
 * nothing about the peers.  The probes in flight are dropped without a
 * verdict, suspicion deadlines move forward by the stall, and a new period
 * starts now.
 *
 * Invariants of struct swim:
 *   (1) members[] holds distinct ids, none equal to self; order[] is a
 *       permutation of 0..n_members-1 and rr < n_members (or both 0);
 *   (2) a member is probing iff a probe of it started at period_start and
 *       is unanswered or answered in this period (acked);
 *   (3) suspect_since_ms is meaningful iff status == SWIM_SUSPECT;
 *   (4) NODE_DOWN and NODE_UP alternate per peer, starting with DOWN.
 *
 * Peer status (per member):
 *
 *        probe period ends unanswered (swim_tick)
 *   UP ------------------------------------------> SUSPECT
 *    ^  ^                                            |   |
 *    |  +--- PING/ACK/PING_REQ/traffic --------------+   | suspect_timeout
 *    |       (swim_on_message, swim_on_traffic)          | passes silent
 *    |                                                   v (swim_tick)
 *    +------- PING/ACK/PING_REQ/traffic: NODE_UP ------ DOWN
 *                                                   (NODE_DOWN)
 */
#include "cluster/swim.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/ring.h"
#include "cluster/rng.h"
#include "common/alloc.h"
#include "common/error.h"

struct sw_member
{
    char id[CL_ID_MAX + 1]; /* NUL-terminated */
    size_t len;
    enum swim_status status;
    uint64_t incarnation;      /* last one reported, 0 = none yet */
    uint8_t storage;           /* enum peer_storage, last one reported */
    uint64_t suspect_since_ms; /* invariant (3) */
    bool probing;              /* invariant (2) */
    bool acked;                /* the probe of this period was answered */
    bool req_sent;             /* PING_REQs went out for it */
    uint64_t probe_seq;
};

struct sw_relay
{
    bool used;
    uint64_t my_seq;   /* seq of our PING to the target */
    uint64_t orig_seq; /* requester's seq, echoed in the forwarded ACK */
    uint64_t expires_ms;
    char requester[CL_ID_MAX + 1];
    char target[CL_ID_MAX + 1];
};

struct swim
{
    char self[CL_ID_MAX + 1];
    uint32_t period_ms, ping_timeout_ms, k, suspect_timeout_ms;
    uint64_t incarnation;
    uint8_t storage; /* this node's enum peer_storage, sent in PING/ACK */
    struct rk_rng rng;

    struct sw_member *members; /* n_members; invariant (1) */
    size_t n_members;
    size_t *order; /* probe order, a permutation */
    size_t rr;     /* next index into order[] */

    bool started;
    uint64_t period_start_ms;
    uint64_t seq; /* last PING seq used */

    struct sw_relay relays[SWIM_RELAYS];
    char ack_target[CL_ID_MAX + 1]; /* view for the ACK of one call */
    struct swim_stats stats;
};

static struct peer_bytes pb(const char *s)
{
    return (struct peer_bytes){.ptr = s, .len = strlen(s)};
}

static struct sw_member *find(const struct swim *s, const char *id, size_t len)
{
    for (size_t i = 0; i < s->n_members; i++) {
        if (s->members[i].len == len &&
            memcmp(s->members[i].id, id, len) == 0) {
            return &s->members[i];
        }
    }
    return NULL;
}

int swim_create(const struct swim_config *cfg, struct swim **out)
{
    if (cfg->node_id == NULL ||
        !ring_member_id_is_valid(cfg->node_id, strlen(cfg->node_id))) {
        return RK_EINVAL;
    }
    uint32_t period = cfg->period_ms ? cfg->period_ms : SWIM_DEFAULT_PERIOD_MS;
    uint32_t pto = cfg->ping_timeout_ms ? cfg->ping_timeout_ms
                                        : SWIM_DEFAULT_PING_TIMEOUT_MS;
    uint32_t k = cfg->k ? cfg->k : SWIM_DEFAULT_K;
    if (pto >= period || k > SWIM_MAX_K) {
        return RK_EINVAL;
    }
    struct swim *s = rk_calloc(1, sizeof(*s));
    if (s == NULL) {
        return RK_ENOMEM;
    }
    snprintf(s->self, sizeof(s->self), "%s", cfg->node_id);
    s->period_ms = period;
    s->ping_timeout_ms = pto;
    s->k = k;
    s->suspect_timeout_ms = cfg->suspect_timeout_ms
                                ? cfg->suspect_timeout_ms
                                : SWIM_DEFAULT_SUSPECT_TIMEOUT_MS;
    s->incarnation = cfg->incarnation;
    rk_rng_seed(&s->rng, cfg->seed);
    *out = s;
    return RK_OK;
}

void swim_destroy(struct swim *s)
{
    if (s == NULL) {
        return;
    }
    rk_free(s->members);
    rk_free(s->order);
    rk_free(s);
}

int swim_set_members(struct swim *s, const char *const *ids, size_t n)
{
    if (n > SWIM_MAX_MEMBERS) {
        return RK_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL ||
            !ring_member_id_is_valid(ids[i], strlen(ids[i]))) {
            return RK_EINVAL;
        }
    }
    struct sw_member *mem = rk_calloc(n ? n : 1, sizeof(*mem));
    size_t *order = rk_calloc(n ? n : 1, sizeof(*order));
    if (mem == NULL || order == NULL) {
        rk_free(mem);
        rk_free(order);
        return RK_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        if (strcmp(ids[i], s->self) == 0) {
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < m && !dup; j++) {
            dup = mem[j].len == len && memcmp(mem[j].id, ids[i], len) == 0;
        }
        if (dup) {
            continue;
        }
        const struct sw_member *old = find(s, ids[i], len);
        if (old != NULL) {
            mem[m] = *old;
        } else {
            memcpy(mem[m].id, ids[i], len);
            mem[m].len = len;
            mem[m].status = SWIM_UP;
        }
        order[m] = m;
        m++;
    }
    /* Fisher-Yates with the seeded generator (SWIM section 4.3). */
    for (size_t i = m; i > 1; i--) {
        size_t j = (size_t)rk_rng_below(&s->rng, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    rk_free(s->members);
    rk_free(s->order);
    s->members = mem;
    s->order = order;
    s->n_members = m;
    s->rr = 0;
    return RK_OK;
}

static void send_ping(struct swim *s,
                      const char *to,
                      const char *target,
                      uint64_t seq,
                      struct cl_actions *acts)
{
    struct cl_action *a = cl_actions_push(acts, CL_ACT_SEND);
    if (a == NULL) {
        return;
    }
    snprintf(a->node, sizeof(a->node), "%s", to);
    a->msg.type = PEER_PING;
    a->msg.ping = (struct peer_ping){
        .seq = seq,
        .from = pb(s->self),
        .target = pb(target),
        .incarnation = s->incarnation,
        .storage = s->storage,
    };
}

/* An ACK from `from` (this node, or the target of a relayed probe) with
 * its incarnation and storage state. */
static void send_ack(struct swim *s,
                     const char *to,
                     uint64_t seq,
                     const char *from,
                     const char *target,
                     uint64_t inc,
                     uint8_t storage,
                     struct cl_actions *acts)
{
    struct cl_action *a = cl_actions_push(acts, CL_ACT_SEND);
    if (a == NULL) {
        return;
    }
    snprintf(a->node, sizeof(a->node), "%s", to);
    a->msg.type = PEER_ACK;
    a->msg.ack = (struct peer_ack){
        .seq = seq,
        .from = pb(from),
        .target = pb(target),
        .incarnation = inc,
        .storage = storage,
    };
    s->stats.acks_sent++;
}

static void node_event(struct cl_actions *acts,
                       enum cl_action_type type,
                       const struct sw_member *mb,
                       const char *why)
{
    struct cl_action *a = cl_actions_push(acts, type);
    if (a != NULL) {
        snprintf(a->node, sizeof(a->node), "%s", mb->id);
        snprintf(a->text, sizeof(a->text), "peer %s is %s (%s)", mb->id,
                 type == CL_ACT_NODE_UP ? "up" : "down", why);
    }
}

static void start_probe(struct swim *s,
                        struct sw_member *mb,
                        struct cl_actions *acts)
{
    mb->probing = true;
    mb->acked = false;
    mb->req_sent = false;
    mb->probe_seq = ++s->seq;
    s->stats.pings_sent++;
    send_ping(s, mb->id, "", mb->probe_seq, acts);
}

/* Steps 3 and 1 of the protocol at the period boundary. */
static void end_period(struct swim *s)
{
    uint64_t end = s->period_start_ms + s->period_ms;
    for (size_t i = 0; i < s->n_members; i++) {
        struct sw_member *mb = &s->members[i];
        if (mb->probing && !mb->acked && mb->status == SWIM_UP) {
            mb->status = SWIM_SUSPECT;
            mb->suspect_since_ms = end;
            s->stats.suspects++;
        }
        mb->probing = false;
    }
    s->period_start_ms = end;
}

static void begin_period(struct swim *s, struct cl_actions *acts)
{
    if (s->n_members == 0) {
        return;
    }
    struct sw_member *rr = &s->members[s->order[s->rr]];
    s->rr = (s->rr + 1) % s->n_members;
    start_probe(s, rr, acts);
    for (size_t i = 0; i < s->n_members; i++) {
        struct sw_member *mb = &s->members[i];
        if (mb->status == SWIM_SUSPECT && !mb->probing) {
            start_probe(s, mb, acts);
        }
    }
}

/* Step 2: PING_REQ through k random non-DOWN peers other than `mb`. */
static void send_ping_reqs(struct swim *s,
                           struct sw_member *mb,
                           struct cl_actions *acts)
{
    mb->req_sent = true;
    size_t cand[SWIM_MAX_MEMBERS];
    size_t n = 0;
    for (size_t i = 0; i < s->n_members; i++) {
        if (&s->members[i] != mb && s->members[i].status != SWIM_DOWN) {
            cand[n++] = i;
        }
    }
    for (uint32_t j = 0; j < s->k && n > 0; j++) {
        size_t pick = (size_t)rk_rng_below(&s->rng, n);
        const struct sw_member *helper = &s->members[cand[pick]];
        cand[pick] = cand[--n];
        struct cl_action *a = cl_actions_push(acts, CL_ACT_SEND);
        if (a == NULL) {
            return;
        }
        snprintf(a->node, sizeof(a->node), "%s", helper->id);
        a->msg.type = PEER_PING_REQ;
        a->msg.ping_req = (struct peer_ping_req){
            .seq = mb->probe_seq,
            .from = pb(s->self),
            .target = pb(mb->id),
        };
        s->stats.ping_reqs_sent++;
    }
}

int swim_tick(struct swim *s, uint64_t now_ms, struct cl_actions *acts)
{
    if (!s->started) {
        s->started = true;
        s->period_start_ms = now_ms;
        begin_period(s, acts);
    }
    if (now_ms >= s->period_start_ms + 2 * (uint64_t)s->period_ms) {
        /* This node stalled: no verdicts on what it could not see. */
        uint64_t gap = now_ms - (s->period_start_ms + s->period_ms);
        for (size_t i = 0; i < s->n_members; i++) {
            struct sw_member *mb = &s->members[i];
            mb->probing = false;
            if (mb->status == SWIM_SUSPECT) {
                mb->suspect_since_ms += gap;
            }
        }
        s->stats.pauses++;
        struct cl_action *a = cl_actions_push(acts, CL_ACT_LOG);
        if (a != NULL) {
            a->status = RK_ETIMEDOUT;
            snprintf(a->text, sizeof(a->text),
                     "failure detector stalled for %" PRIu64
                     " ms; no verdicts on peers for that time",
                     gap);
        }
        s->period_start_ms = now_ms;
        begin_period(s, acts);
    }
    while (now_ms >= s->period_start_ms + s->period_ms) {
        end_period(s);
        begin_period(s, acts);
    }
    for (size_t i = 0; i < s->n_members; i++) {
        struct sw_member *mb = &s->members[i];
        if (mb->status == SWIM_SUSPECT &&
            now_ms >= mb->suspect_since_ms + s->suspect_timeout_ms) {
            mb->status = SWIM_DOWN;
            s->stats.downs++;
            node_event(acts, CL_ACT_NODE_DOWN, mb, "no answer to probes");
        }
    }
    for (size_t i = 0; i < s->n_members; i++) {
        struct sw_member *mb = &s->members[i];
        if (mb->probing && !mb->acked && !mb->req_sent &&
            now_ms >= s->period_start_ms + s->ping_timeout_ms) {
            send_ping_reqs(s, mb, acts);
        }
    }
    for (size_t i = 0; i < SWIM_RELAYS; i++) {
        if (s->relays[i].used && now_ms >= s->relays[i].expires_ms) {
            s->relays[i].used = false;
        }
    }
    return RK_OK;
}

uint64_t swim_next_deadline_ms(const struct swim *s)
{
    if (!s->started) {
        return 0;
    }
    uint64_t d = s->period_start_ms + s->period_ms;
    for (size_t i = 0; i < s->n_members; i++) {
        const struct sw_member *mb = &s->members[i];
        if (mb->probing && !mb->acked && !mb->req_sent) {
            uint64_t t = s->period_start_ms + s->ping_timeout_ms;
            d = t < d ? t : d;
        }
        if (mb->status == SWIM_SUSPECT) {
            uint64_t t = mb->suspect_since_ms + s->suspect_timeout_ms;
            d = t < d ? t : d;
        }
    }
    return d;
}

/* Rule 5: `mb` showed life. */
static void alive(struct swim *s,
                  struct sw_member *mb,
                  uint64_t inc,
                  struct cl_actions *acts)
{
    if (mb->probing) {
        mb->acked = true;
    }
    if (inc > mb->incarnation) {
        if (mb->incarnation != 0) {
            struct cl_action *a = cl_actions_push(acts, CL_ACT_LOG);
            if (a != NULL) {
                snprintf(a->text, sizeof(a->text),
                         "peer %s restarted (incarnation %" PRIu64
                         " -> %" PRIu64 ")",
                         mb->id, mb->incarnation, inc);
            }
        }
        mb->incarnation = inc;
    }
    if (mb->status == SWIM_DOWN) {
        mb->status = SWIM_UP;
        s->stats.ups++;
        node_event(acts, CL_ACT_NODE_UP, mb, "answered again");
    }
    mb->status = SWIM_UP;
}

/* The storage state `mb` reported (or a reply implied); logs a change. */
static void set_storage(struct sw_member *mb,
                        uint8_t storage,
                        struct cl_actions *acts)
{
    if (storage > PEER_STORAGE_DEGRADED || storage == mb->storage) {
        return;
    }
    mb->storage = storage;
    struct cl_action *a = cl_actions_push(acts, CL_ACT_LOG);
    if (a != NULL) {
        a->status = storage == PEER_STORAGE_OK ? RK_OK : RK_EREADONLY;
        snprintf(a->text, sizeof(a->text), "peer %s storage is %s (%s)", mb->id,
                 storage == PEER_STORAGE_OK ? "ok" : "degraded",
                 storage == PEER_STORAGE_OK
                     ? "writes go to it again"
                     : "writes go around it; reads still ask it");
    }
}

void swim_set_storage(struct swim *s, enum peer_storage st)
{
    s->storage = (uint8_t)st;
}

void swim_note_storage(struct swim *s,
                       const char *id,
                       size_t len,
                       enum peer_storage st,
                       struct cl_actions *acts)
{
    struct sw_member *mb = find(s, id, len);
    if (mb != NULL) {
        set_storage(mb, (uint8_t)st, acts);
    }
}

enum peer_storage swim_member_storage(const struct swim *s, const char *id)
{
    const struct sw_member *mb = find(s, id, strlen(id));
    return mb != NULL && mb->storage == PEER_STORAGE_DEGRADED
               ? PEER_STORAGE_DEGRADED
               : PEER_STORAGE_OK;
}

void swim_on_traffic(struct swim *s,
                     const char *id,
                     size_t len,
                     uint64_t now_ms,
                     struct cl_actions *acts)
{
    (void)now_ms;
    struct sw_member *mb = find(s, id, len);
    if (mb != NULL) {
        alive(s, mb, 0, acts);
    }
}

static bool id_ok(struct peer_bytes b, bool may_be_empty)
{
    return (b.len == 0 && may_be_empty) ||
           (b.len >= 1 && b.len <= CL_ID_MAX && b.ptr != NULL);
}

static void copy_id(char *dst, struct peer_bytes b)
{
    if (b.len > 0) {
        memcpy(dst, b.ptr, b.len);
    }
    dst[b.len] = '\0';
}

static void on_ping_req(struct swim *s,
                        const struct peer_ping_req *r,
                        uint64_t now_ms,
                        struct cl_actions *acts)
{
    char from[CL_ID_MAX + 1];
    copy_id(from, r->from);
    if (r->target.len == strlen(s->self) &&
        memcmp(r->target.ptr, s->self, r->target.len) == 0) {
        /* We are the target: answer directly. */
        send_ack(s, from, r->seq, s->self, s->self, s->incarnation, s->storage,
                 acts);
        return;
    }
    struct sw_relay *slot = &s->relays[0];
    for (size_t i = 0; i < SWIM_RELAYS; i++) {
        if (!s->relays[i].used) {
            slot = &s->relays[i];
            break;
        }
        if (s->relays[i].expires_ms < slot->expires_ms) {
            slot = &s->relays[i]; /* all in use: reuse the oldest */
        }
    }
    slot->used = true;
    slot->my_seq = ++s->seq;
    slot->orig_seq = r->seq;
    slot->expires_ms = now_ms + s->period_ms;
    snprintf(slot->requester, sizeof(slot->requester), "%s", from);
    copy_id(slot->target, r->target);
    s->stats.relays++;
    send_ping(s, slot->target, slot->target, slot->my_seq, acts);
}

static void on_ack(struct swim *s,
                   const struct peer_ack *a,
                   uint64_t now_ms,
                   struct cl_actions *acts)
{
    (void)now_ms;
    for (size_t i = 0; i < SWIM_RELAYS; i++) {
        struct sw_relay *r = &s->relays[i];
        if (r->used && r->my_seq == a->seq &&
            strlen(r->target) == a->from.len &&
            memcmp(r->target, a->from.ptr, a->from.len) == 0) {
            r->used = false; /* its strings stay valid for this call */
            send_ack(s, r->requester, r->orig_seq, r->target, r->target,
                     a->incarnation, a->storage, acts);
            break;
        }
    }
    struct sw_member *mb = find(s, a->from.ptr, a->from.len);
    if (mb != NULL) {
        alive(s, mb, a->incarnation, acts);
        set_storage(mb, a->storage, acts);
    }
}

int swim_on_message(struct swim *s,
                    const struct peer_msg *msg,
                    uint64_t now_ms,
                    struct cl_actions *acts)
{
    switch (msg->type) {
        case PEER_PING: {
            const struct peer_ping *p = &msg->ping;
            if (!id_ok(p->from, false) || !id_ok(p->target, true)) {
                return RK_EPROTO;
            }
            char from[CL_ID_MAX + 1];
            copy_id(from, p->from);
            copy_id(s->ack_target, p->target);
            send_ack(s, from, p->seq, s->self, s->ack_target, s->incarnation,
                     s->storage, acts);
            struct sw_member *mb = find(s, p->from.ptr, p->from.len);
            if (mb != NULL) {
                alive(s, mb, p->incarnation, acts);
                set_storage(mb, p->storage, acts);
            }
            return RK_OK;
        }
        case PEER_ACK:
            if (!id_ok(msg->ack.from, false) || !id_ok(msg->ack.target, true)) {
                return RK_EPROTO;
            }
            on_ack(s, &msg->ack, now_ms, acts);
            return RK_OK;
        case PEER_PING_REQ: {
            const struct peer_ping_req *r = &msg->ping_req;
            if (!id_ok(r->from, false) || !id_ok(r->target, false)) {
                return RK_EPROTO;
            }
            on_ping_req(s, r, now_ms, acts);
            struct sw_member *mb = find(s, r->from.ptr, r->from.len);
            if (mb != NULL) {
                alive(s, mb, 0, acts);
            }
            return RK_OK;
        }
        default:
            return RK_OK;
    }
}

bool swim_member_status(const struct swim *s,
                        const char *id,
                        enum swim_status *status,
                        uint64_t *incarnation)
{
    const struct sw_member *mb = find(s, id, strlen(id));
    if (mb == NULL) {
        return false;
    }
    if (status != NULL) {
        *status = mb->status;
    }
    if (incarnation != NULL) {
        *incarnation = mb->incarnation;
    }
    return true;
}

size_t swim_member_count(const struct swim *s)
{
    return s->n_members;
}

struct swim_stats swim_stats(const struct swim *s)
{
    return s->stats;
}

const char *swim_status_name(enum swim_status st)
{
    switch (st) {
        case SWIM_UP:
            return "up";
        case SWIM_SUSPECT:
            return "suspect";
        case SWIM_DOWN:
            return "down";
    }
    return "unknown";
}

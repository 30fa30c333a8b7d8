/*
 * simnet.c - see simnet.h.  A binary min-heap of events keyed by (time,
 * insertion sequence); a side list of the events of paused endpoints;
 * per-endpoint incarnations and timer generations, checked when an event
 * is popped, so nothing is ever searched for and removed from the heap.
 *
 * Invariants:
 *  N1 every queued event has at >= the clock at the time it was queued,
 *     so the clock never moves backwards;
 *  N2 a popped event runs only if its endpoint (and a message's sender)
 *     is still in the incarnation it was queued in and is up, and a timer
 *     event only if it carries its endpoint's current timer generation;
 *  N3 held events (paused endpoint) keep their pop order and go back into
 *     the heap, at the current time, when the endpoint resumes;
 *  N4 every random draw is from net->rng, in an order fixed by the calls.
 */
#include "simnet.h"

#include <string.h>
#include <xxhash.h>

#include "cluster/rng.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "proto/peer.h"

struct simnet_ev
{
    uint64_t at;               /* virtual ms */
    uint64_t seq;              /* insertion order: ties */
    int type;                  /* SIMNET_EV_* or a user type */
    int to;                    /* endpoint, -1: the world's */
    int from;                  /* MSG: the sender, else -1 */
    uint64_t to_inc, from_inc; /* incarnations when queued */
    uint64_t a, b;             /* user arguments; TIMER: a = generation */
    unsigned char *frame;      /* MSG: owned copy */
    size_t len;
};

struct simnet_endpoint
{
    simnet_recv_cb recv;
    simnet_tick_cb tick;
    void *data;
    bool down, paused;
    uint64_t inc;       /* +1 each time it goes down */
    uint64_t timer_at;  /* UINT64_MAX: disarmed */
    uint64_t timer_gen; /* +1 per arm/disarm: older timer events are stale */
};

struct simnet
{
    uint64_t now; /* virtual ms */
    uint64_t seq;
    struct rk_rng rng;
    size_t n;
    struct simnet_endpoint eps[SIMNET_MAX_ENDPOINTS];
    struct simnet_link links[SIMNET_MAX_ENDPOINTS][SIMNET_MAX_ENDPOINTS];
    bool blocked[SIMNET_MAX_ENDPOINTS][SIMNET_MAX_ENDPOINTS];
    struct simnet_ev *heap;
    size_t n_heap, cap_heap;
    struct simnet_ev *held; /* paused endpoints' events, in pop order */
    size_t n_held, cap_held;
    simnet_event_cb ev_cb;
    void *ev_data;
    uint64_t trace;
    bool drop_to_down; /* simnet_set_drop_to_down */
    struct simnet_stats st;
    struct peer_decoder *dec; /* simnet_decode's, created on first use */
    struct rk_buf scratch;    /* simnet_send_msg's encoding */
};

int simnet_create(uint64_t seed, size_t n_endpoints, struct simnet **out)
{
    if (n_endpoints < 1 || n_endpoints > SIMNET_MAX_ENDPOINTS) {
        return RK_EINVAL;
    }
    struct simnet *net = rk_calloc(1, sizeof(*net));
    if (net == NULL) {
        return RK_ENOMEM;
    }
    net->n = n_endpoints;
    rk_rng_seed(&net->rng, seed);
    rk_buf_init(&net->scratch);
    for (size_t i = 0; i < n_endpoints; i++) {
        net->eps[i].timer_at = UINT64_MAX;
    }
    const struct simnet_link one_ms = {.delay_min_ms = 1, .delay_max_ms = 1};
    simnet_set_link(net, SIMNET_ALL, SIMNET_ALL, &one_ms);
    *out = net;
    return RK_OK;
}

void simnet_destroy(struct simnet *net)
{
    if (net == NULL) {
        return;
    }
    for (size_t i = 0; i < net->n_heap; i++) {
        rk_free(net->heap[i].frame);
    }
    for (size_t i = 0; i < net->n_held; i++) {
        rk_free(net->held[i].frame);
    }
    rk_free(net->heap);
    rk_free(net->held);
    peer_decoder_destroy(net->dec);
    rk_buf_fini(&net->scratch);
    rk_free(net);
}

void simnet_endpoint(struct simnet *net,
                     int ep,
                     simnet_recv_cb recv,
                     simnet_tick_cb tick,
                     void *data)
{
    net->eps[ep].recv = recv;
    net->eps[ep].tick = tick;
    net->eps[ep].data = data;
}

void simnet_on_event(struct simnet *net, simnet_event_cb cb, void *data)
{
    net->ev_cb = cb;
    net->ev_data = data;
}

uint64_t simnet_now(const struct simnet *net)
{
    return net->now;
}

struct rk_rng *simnet_rng(struct simnet *net)
{
    return &net->rng;
}

uint64_t simnet_rand(struct simnet *net, uint64_t bound)
{
    return rk_rng_below(&net->rng, bound);
}

void simnet_set_drop_to_down(struct simnet *net, bool drop)
{
    net->drop_to_down = drop;
}

uint64_t simnet_trace(const struct simnet *net)
{
    return net->trace;
}

void simnet_trace_mix(struct simnet *net, uint64_t v)
{
    net->trace = XXH3_64bits_withSeed(&v, sizeof(v), net->trace);
}

struct simnet_stats simnet_stats(const struct simnet *net)
{
    return net->st;
}

/* ---- the heap -------------------------------------------------------------
 */

static bool ev_before(const struct simnet_ev *a, const struct simnet_ev *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

/* Queues ev (taking its frame); on RK_ENOMEM the frame is freed. */
static int push(struct simnet *net, struct simnet_ev ev)
{
    if (net->n_heap == net->cap_heap) {
        size_t cap = net->cap_heap ? net->cap_heap * 2 : 1024;
        struct simnet_ev *h = rk_realloc(net->heap, cap * sizeof(*h));
        if (h == NULL) {
            rk_free(ev.frame);
            net->st.dropped += ev.type == SIMNET_EV_MSG;
            return RK_ENOMEM;
        }
        net->heap = h;
        net->cap_heap = cap;
    }
    if (ev.at < net->now) {
        ev.at = net->now; /* N1 */
    }
    ev.seq = ++net->seq;
    size_t i = net->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(&ev, &net->heap[p])) {
            break;
        }
        net->heap[i] = net->heap[p];
        i = p;
    }
    net->heap[i] = ev;
    return RK_OK;
}

static struct simnet_ev pop(struct simnet *net)
{
    struct simnet_ev top = net->heap[0];
    struct simnet_ev last = net->heap[--net->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct simnet_ev *best = &last;
        if (l < net->n_heap && ev_before(&net->heap[l], best)) {
            m = l;
            best = &net->heap[l];
        }
        if (r < net->n_heap && ev_before(&net->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        net->heap[i] = net->heap[m];
        i = m;
    }
    if (net->n_heap > 0) {
        net->heap[i] = last;
    }
    return top;
}

/* ---- links ----------------------------------------------------------------
 */

/* The index range [*lo, *hi) that `ep` (or SIMNET_ALL) stands for. */
static void span(const struct simnet *net, int ep, size_t *lo, size_t *hi)
{
    *lo = ep == SIMNET_ALL ? 0 : (size_t)ep;
    *hi = ep == SIMNET_ALL ? net->n : (size_t)ep + 1;
}

void simnet_set_link(struct simnet *net,
                     int from,
                     int to,
                     const struct simnet_link *link)
{
    size_t f0, f1, t0, t1;
    span(net, from, &f0, &f1);
    span(net, to, &t0, &t1);
    for (size_t f = f0; f < f1; f++) {
        for (size_t t = t0; t < t1; t++) {
            net->links[f][t] = *link;
        }
    }
}

const struct simnet_link *simnet_link(const struct simnet *net,
                                      int from,
                                      int to)
{
    return &net->links[from][to];
}

void simnet_block(struct simnet *net, int from, int to, bool blocked)
{
    size_t f0, f1, t0, t1;
    span(net, from, &f0, &f1);
    span(net, to, &t0, &t1);
    for (size_t f = f0; f < f1; f++) {
        for (size_t t = t0; t < t1; t++) {
            net->blocked[f][t] = blocked;
        }
    }
}

bool simnet_is_blocked(const struct simnet *net, int from, int to)
{
    return net->blocked[from][to];
}

/* ---- endpoints ------------------------------------------------------------
 */

static void drop_held(struct simnet *net, int ep)
{
    size_t w = 0;
    for (size_t i = 0; i < net->n_held; i++) {
        struct simnet_ev *ev = &net->held[i];
        if (ev->to == ep) {
            net->st.dropped += ev->type == SIMNET_EV_MSG;
            rk_free(ev->frame);
        } else {
            net->held[w++] = *ev;
        }
    }
    net->n_held = w;
}

void simnet_set_down(struct simnet *net, int ep, bool down)
{
    struct simnet_endpoint *e = &net->eps[ep];
    if (e->down == down) {
        return;
    }
    e->down = down;
    if (down) {
        e->inc++; /* N2: nothing queued for the old incarnation runs */
        e->paused = false;
        (void)simnet_arm(net, ep, UINT64_MAX);
        drop_held(net, ep);
    }
}

bool simnet_is_down(const struct simnet *net, int ep)
{
    return net->eps[ep].down;
}

uint64_t simnet_incarnation(const struct simnet *net, int ep)
{
    return net->eps[ep].inc;
}

void simnet_pause(struct simnet *net, int ep, bool paused)
{
    struct simnet_endpoint *e = &net->eps[ep];
    if (e->down || e->paused == paused) {
        return;
    }
    e->paused = paused;
    if (paused) {
        return;
    }
    /* N3: back into the heap at the current time, in their order */
    size_t w = 0;
    for (size_t i = 0; i < net->n_held; i++) {
        struct simnet_ev ev = net->held[i];
        if (ev.to == ep) {
            ev.at = net->now;
            (void)push(net, ev);
        } else {
            net->held[w++] = ev;
        }
    }
    net->n_held = w;
}

bool simnet_is_paused(const struct simnet *net, int ep)
{
    return net->eps[ep].paused;
}

int simnet_arm(struct simnet *net, int ep, uint64_t at_ms)
{
    struct simnet_endpoint *e = &net->eps[ep];
    e->timer_gen++;
    e->timer_at = at_ms;
    if (at_ms == UINT64_MAX) {
        return RK_OK;
    }
    if (at_ms < net->now) {
        e->timer_at = net->now;
    }
    return push(net, (struct simnet_ev){.at = e->timer_at,
                                        .type = SIMNET_EV_TIMER,
                                        .to = ep,
                                        .from = -1,
                                        .to_inc = e->inc,
                                        .a = e->timer_gen});
}

uint64_t simnet_timer(const struct simnet *net, int ep)
{
    return net->eps[ep].timer_at;
}

/* ---- messages and events --------------------------------------------------
 */

int simnet_send(struct simnet *net,
                int from,
                int to,
                const void *frame,
                size_t len)
{
    net->st.sent++;
    const struct simnet_link *l = &net->links[from][to];
    /* to a down endpoint: queued for its next incarnation (N2), which
     * gets it if it is up by then (a datagram to a restarted host) */
    if (net->eps[from].down || (net->drop_to_down && net->eps[to].down) ||
        net->blocked[from][to] ||
        (l->loss_pct && rk_rng_below(&net->rng, 100) < l->loss_pct)) {
        net->st.dropped++;
        return RK_OK;
    }
    int copies =
        l->dup_pct && rk_rng_below(&net->rng, 100) < l->dup_pct ? 2 : 1;
    net->st.duplicated += (uint64_t)(copies - 1);
    for (int c = 0; c < copies; c++) {
        unsigned char *copy = rk_malloc(len ? len : 1);
        if (copy == NULL) {
            net->st.dropped++;
            return RK_ENOMEM;
        }
        memcpy(copy, frame, len);
        uint64_t spread = l->delay_max_ms - l->delay_min_ms + 1;
        uint64_t delay = l->delay_min_ms + rk_rng_below(&net->rng, spread);
        int rc = push(net, (struct simnet_ev){.at = net->now + delay,
                                              .type = SIMNET_EV_MSG,
                                              .to = to,
                                              .from = from,
                                              .to_inc = net->eps[to].inc,
                                              .from_inc = net->eps[from].inc,
                                              .frame = copy,
                                              .len = len});
        if (rc != RK_OK) {
            return rc;
        }
    }
    return RK_OK;
}

int simnet_schedule(struct simnet *net,
                    uint64_t at_ms,
                    int type,
                    int ep,
                    uint64_t a,
                    uint64_t b)
{
    return push(net,
                (struct simnet_ev){.at = at_ms,
                                   .type = type,
                                   .to = ep,
                                   .from = -1,
                                   .to_inc = ep >= 0 ? net->eps[ep].inc : 0,
                                   .a = a,
                                   .b = b});
}

/* ---- running --------------------------------------------------------------
 */

uint64_t simnet_next_at(const struct simnet *net)
{
    return net->n_heap ? net->heap[0].at : UINT64_MAX;
}

/* N2: whether a popped event still belongs to live incarnations. */
static bool is_live(const struct simnet *net, const struct simnet_ev *ev)
{
    if (ev->to < 0) {
        return true;
    }
    const struct simnet_endpoint *e = &net->eps[ev->to];
    if (e->down || e->inc != ev->to_inc) {
        return false;
    }
    if (ev->type == SIMNET_EV_MSG) {
        const struct simnet_endpoint *f = &net->eps[ev->from];
        return !f->down && f->inc == ev->from_inc;
    }
    return ev->type != SIMNET_EV_TIMER || ev->a == e->timer_gen;
}

static void hold(struct simnet *net, struct simnet_ev ev)
{
    if (net->n_held == net->cap_held) {
        size_t cap = net->cap_held ? net->cap_held * 2 : 64;
        struct simnet_ev *h = rk_realloc(net->held, cap * sizeof(*h));
        if (h == NULL) {
            net->st.dropped += ev.type == SIMNET_EV_MSG;
            rk_free(ev.frame);
            return;
        }
        net->held = h;
        net->cap_held = cap;
    }
    net->held[net->n_held++] = ev;
}

static void run_event(struct simnet *net, const struct simnet_ev *ev)
{
    uint64_t v[6] = {ev->at,
                     (uint64_t)ev->type,
                     (uint64_t)(int64_t)ev->to,
                     (uint64_t)(int64_t)ev->from,
                     ev->frame ? XXH3_64bits(ev->frame, ev->len) : ev->a,
                     ev->b};
    net->trace = XXH3_64bits_withSeed(v, sizeof(v), net->trace);
    net->st.events++;
    struct simnet_endpoint *e = ev->to >= 0 ? &net->eps[ev->to] : NULL;
    switch (ev->type) {
        case SIMNET_EV_MSG:
            net->st.delivered++;
            if (e->recv) {
                e->recv(e->data, ev->to, ev->from, ev->frame, ev->len);
            }
            break;
        case SIMNET_EV_TIMER:
            e->timer_at = UINT64_MAX;
            if (e->tick) {
                e->tick(e->data, ev->to);
            }
            break;
        default:
            if (net->ev_cb) {
                net->ev_cb(net->ev_data, ev->type, ev->to, ev->a, ev->b);
            }
            break;
    }
}

bool simnet_step(struct simnet *net, uint64_t until_ms)
{
    while (net->n_heap > 0 && net->heap[0].at <= until_ms) {
        struct simnet_ev ev = pop(net);
        if (!is_live(net, &ev)) {
            net->st.dropped += ev.type == SIMNET_EV_MSG;
            rk_free(ev.frame);
            continue;
        }
        if (ev.to >= 0 && net->eps[ev.to].paused) {
            hold(net, ev);
            continue;
        }
        if (ev.at > net->now) {
            net->now = ev.at;
        }
        run_event(net, &ev);
        rk_free(ev.frame);
        return true;
    }
    if (until_ms > net->now) {
        net->now = until_ms;
    }
    return false;
}

size_t simnet_run(struct simnet *net, uint64_t until_ms, size_t max_events)
{
    size_t done = 0;
    while (done < max_events && simnet_step(net, until_ms)) {
        done++;
    }
    return done;
}

/* ---- peer frames ----------------------------------------------------------
 */

int simnet_send_msg(struct simnet *net,
                    int from,
                    int to,
                    const struct peer_msg *m)
{
    rk_buf_clear(&net->scratch);
    int rc = peer_encode(m, &net->scratch);
    if (rc != RK_OK) {
        return rc;
    }
    return simnet_send(net, from, to, net->scratch.base, net->scratch.len);
}

int simnet_decode(struct simnet *net,
                  const void *frame,
                  size_t len,
                  struct peer_msg *out)
{
    if (net->dec == NULL) {
        int rc = peer_decoder_create(0, &net->dec);
        if (rc != RK_OK) {
            return rc;
        }
    }
    size_t used = 0;
    int rc = peer_decoder_feed(net->dec, frame, len, &used, out);
    if (rc == RK_OK && used != len) {
        rc = RK_EPROTO; /* more than one frame */
    }
    if (rc != RK_OK) {
        /* a decoder that failed mid-stream is not reused */
        peer_decoder_destroy(net->dec);
        net->dec = NULL;
    }
    return rc;
}

/*
 * async.c - the asynchronous API of include/ringkv_async.h on libevent
 * bufferevents (libringkv_event).  Routing, commands, replies and the
 * retry policy are the blocking API's (route.c, cmd.c, reply.c,
 * policy.c); this file only moves bytes and runs the retry loop as
 * events.
 *
 * A request (struct areq) carries its encoded command and goes through
 * these states, each with the function that moves it on:
 *
 *            submit() -> dispatch()
 *                           |
 *     +-------------------> v
 *     |   REQ_INFLIGHT (in its node's FIFO, timer = attempt budget)
 *     |     | reply: reply_arrived()        | error / timeout / close:
 *     |     v                               v node_fail()
 *     |   complete() <--- no retry --- attempt_failed()
 *     |                                     | retry (rkl_route_retry)
 *     |   REQ_BACKOFF (timer = backoff) <---+ pause > 0
 *     +---- timer_cb()                      | pause == 0: dispatch()
 *
 *   REQ_FAILING: the node could not even be opened inside dispatch();
 *   the failure is reported from a 0 ms timer (timer_cb) so that no
 *   callback ever runs inside an API call.
 *
 * Invariants:
 *  (1) a request is in at most one node's FIFO, exactly when it is
 *      REQ_INFLIGHT (req->on is that node);
 *  (2) a node's FIFO holds the requests written on its connection in the
 *      order their replies arrive; a NULL entry is a reply to discard
 *      (the AUTH reply while auth_pending);
 *  (3) the user's callback runs only from libevent callbacks (read, event,
 *      timer) or from ringkv_async_destroy(), never from another API call;
 *  (4) no struct anode or handle memory is freed while a libevent callback
 *      of the handle is on the stack (ra->depth > 0): dead nodes wait in
 *      ra->dead, a destroyed handle in ra->closing, until ra_leave().
 *
 * The topology read (CLUSTER SLOTS) is a request too (op RKL_OP_SLOTS),
 * with no callback, at most one at a time (ra->refresh), that asks the
 * nodes of rkl_route_refresh_order() in turn.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "lib/internal.h"

#define RA_ERRMSG_SIZE 256
#define RA_MAX_DEPTH   64 /* reply nesting, as conn.c */

enum areq_state
{
    REQ_INFLIGHT, /* written on req->on, waiting for its reply */
    REQ_BACKOFF,  /* waiting for the timer to try again */
    REQ_FAILING,  /* the attempt failed before it was written */
};

struct anode;

struct areq
{
    struct ringkv_async *ra;
    struct areq *prev, *next; /* ra->reqs: every user call pending */
    enum rkl_op op;
    size_t n_keys; /* MGET */
    uint32_t slot;
    bool idempotent;
    unsigned flags; /* RINGKV_CALL_* */
    int timeout_ms; /* of the call, all attempts */
    int64_t deadline_ms;
    int attempt; /* attempts started, >= 1 once dispatched */
    enum areq_state state;
    struct anode *on; /* REQ_INFLIGHT: its node */
    int fail_err;     /* REQ_FAILING: the attempt's error */
    struct event *timer;
    size_t *order; /* RKL_OP_SLOTS: nodes to ask, n_order of them */
    size_t n_order;
    ringkv_async_cb cb; /* NULL for RKL_OP_SLOTS */
    void *data;
    char errmsg[RA_ERRMSG_SIZE]; /* the last failed attempt's reason */
    size_t wire_len;
    char wire[]; /* the command, RESP-encoded */
};

struct anode
{
    struct ringkv_async *ra;
    size_t idx;              /* into ra->route.nodes */
    struct bufferevent *bev; /* NULL once dead */
    bool connected;
    bool auth_pending;  /* the FIFO's first NULL is AUTH's reply */
    struct areq **fifo; /* ring of cap entries, len from head */
    size_t head, len, cap;
    size_t need; /* bytes the next reply needs at least */
    struct anode *next_dead;
};

struct ringkv_async
{
    struct event_base *base;
    struct ringkv_options o; /* ints only; the strings are in auth */
    struct rkl_auth auth;
    struct rkl_policy policy;
    struct rkl_route route; /* nodes[i].conn: struct anode * */
    struct areq *reqs;      /* user calls pending */
    size_t n_pending;
    struct areq *refresh; /* the topology read in progress, or NULL */
    struct anode *dead;   /* closed nodes freed at depth 0 */
    struct ringkv_stats st;
    int depth;    /* libevent callbacks of this handle on the stack */
    bool closing; /* ringkv_async_destroy() was called */
};

static void dispatch(struct areq *req);
static void attempt_failed(struct areq *req, int err, bool sent);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

__attribute__((format(printf, 2, 3))) static void req_err(struct areq *req,
                                                          const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    rkl_vformat_line(req->errmsg, sizeof(req->errmsg), fmt, ap);
    va_end(ap);
}

static const char *node_name(const struct anode *an)
{
    return an->ra->route.nodes[an->idx].name;
}

/* ---- the handle's lifetime ------------------------------------------- */

static void free_dead(struct ringkv_async *ra)
{
    while (ra->dead != NULL) {
        struct anode *an = ra->dead;
        ra->dead = an->next_dead;
        rk_free(an->fifo);
        rk_free(an);
    }
}

static void ra_free(struct ringkv_async *ra)
{
    free_dead(ra);
    rkl_route_fini(&ra->route);
    rkl_auth_fini(&ra->auth);
    rk_free(ra);
}

/* Every libevent callback of the handle ends here (invariant 4). */
static void ra_leave(struct ringkv_async *ra)
{
    if (--ra->depth > 0) {
        return;
    }
    if (ra->closing) {
        ra_free(ra);
    } else {
        free_dead(ra);
    }
}

static void free_req(struct areq *req)
{
    if (req->timer != NULL) {
        event_free(req->timer);
    }
    rk_free(req->order);
    rk_free(req);
}

/* ---- nodes ------------------------------------------------------------ */

static int fifo_push(struct anode *an, struct areq *req)
{
    if (an->len == an->cap) {
        size_t cap = an->cap ? an->cap * 2 : 16;
        struct areq **q = rk_malloc(cap * sizeof(*q));
        if (q == NULL) {
            return RINGKV_ENOMEM;
        }
        for (size_t i = 0; i < an->len; i++) {
            q[i] = an->fifo[(an->head + i) % an->cap];
        }
        rk_free(an->fifo);
        an->fifo = q;
        an->cap = cap;
        an->head = 0;
    }
    an->fifo[(an->head + an->len++) % an->cap] = req;
    return RINGKV_OK;
}

static struct areq *fifo_pop(struct anode *an)
{
    struct areq *req = an->fifo[an->head];
    an->head = (an->head + 1) % an->cap;
    an->len--;
    return req;
}

/* Detaches `an` from its route node and frees its connection; the struct
 * waits in ra->dead (invariant 4). */
static void node_close(struct anode *an)
{
    struct ringkv_async *ra = an->ra;
    if (ra->route.nodes[an->idx].conn == an) {
        ra->route.nodes[an->idx].conn = NULL;
    }
    if (an->bev != NULL) {
        bufferevent_free(an->bev);
        an->bev = NULL;
    }
    an->next_dead = ra->dead;
    ra->dead = an;
}

/*
 * The connection of `an` is lost: every request on it fails its attempt
 * with `err` (`culprit`, whose attempt timed out, with culprit_err), sent
 * if the connection had been established.  Callbacks may run.
 */
static void node_fail(struct anode *an,
                      int err,
                      const char *why,
                      struct areq *culprit,
                      int culprit_err)
{
    struct ringkv_async *ra = an->ra;
    if (!an->connected) {
        rkl_route_node_down(&ra->route, an->idx, rkl_now_ms());
    }
    node_close(an);
    while (an->len > 0 && !ra->closing) {
        struct areq *req = fifo_pop(an);
        if (req == NULL) {
            continue;
        }
        req->on = NULL;
        event_del(req->timer);
        if (req == culprit) {
            req_err(req, "%s: no reply within its time (%s)", node_name(an),
                    why);
            attempt_failed(req, culprit_err, an->connected);
        } else {
            req_err(req, "%s: %s", node_name(an), why);
            attempt_failed(req, err, an->connected);
        }
    }
}

static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short events, void *arg);

/* Resolves and connects route node idx (the AUTH command queued first).
 * Returns the node's connection, or NULL with the reason in req. */
static struct anode *node_open(struct ringkv_async *ra,
                               size_t idx,
                               struct areq *req)
{
    struct rkl_node *n = &ra->route.nodes[idx];
    if (n->conn != NULL) {
        return n->conn;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", n->addr.port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM};
    struct evutil_addrinfo *ai = NULL;
    int g = evutil_getaddrinfo(n->addr.host, port, &hints, &ai);
    if (g != 0) {
        req_err(req, "%s: resolve: %s", n->name, evutil_gai_strerror(g));
        return NULL;
    }
    struct anode *an = rk_calloc(1, sizeof(*an));
    struct bufferevent *bev =
        an ? bufferevent_socket_new(ra->base, -1, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (bev == NULL) {
        evutil_freeaddrinfo(ai);
        rk_free(an);
        req_err(req, "%s: out of memory", n->name);
        return NULL;
    }
    an->ra = ra;
    an->idx = idx;
    an->bev = bev;
    bufferevent_setcb(bev, read_cb, NULL, event_cb, an);
    struct timeval tv = {.tv_sec = ra->o.connect_timeout_ms / 1000,
                         .tv_usec = (ra->o.connect_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(bev, NULL, &tv); /* until connected */
    int rc = bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (rc != 0 || bufferevent_enable(bev, EV_READ | EV_WRITE) != 0) {
        req_err(req, "%s: connect: %s", n->name,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        bufferevent_free(bev);
        rk_free(an);
        rkl_route_node_down(&ra->route, idx, rkl_now_ms());
        return NULL;
    }
    int one = 1;
    (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
                     sizeof(one));
    n->conn = an;
    if (ra->auth.password != NULL) {
        const char *argv[3];
        size_t lens[3];
        size_t argc = rkl_auth_argv(&ra->auth, argv, lens);
        struct rk_buf b;
        rk_buf_init(&b);
        if (resp_w_command(&b, argc, argv, lens) != RK_OK ||
            fifo_push(an, NULL) != RINGKV_OK ||
            bufferevent_write(bev, b.base, b.len) != 0) {
            rk_buf_fini(&b);
            node_close(an);
            req_err(req, "%s: out of memory", n->name);
            return NULL;
        }
        rk_buf_fini(&b);
        an->auth_pending = true;
    }
    return an;
}

/* ---- requests --------------------------------------------------------- */

/* Ends a user call: decodes `v` (NULL: err), runs the callback, frees. */
static void complete(struct areq *req, int err, const struct resp_value *v)
{
    struct ringkv_async *ra = req->ra;
    struct ringkv_result res;
    if (v != NULL) {
        err = rkl_cmd_decode(req->op, req->n_keys, v, &res);
        if (err == RINGKV_EPROTO) {
            req_err(req, "%s: unexpected reply type %d", rkl_op_name(req->op),
                    (int)v->type);
        }
    } else {
        memset(&res, 0, sizeof(res));
        res.err = err;
    }
    bool ok = err == RINGKV_OK || err == RINGKV_ENOTFOUND;
    res.errmsg = ok ? "" : req->errmsg[0] ? req->errmsg : ringkv_strerror(err);
    if (!ok) {
        ra->st.errors++;
    }
    if (req->prev != NULL) {
        req->prev->next = req->next;
    } else {
        ra->reqs = req->next;
    }
    if (req->next != NULL) {
        req->next->prev = req->prev;
    }
    ra->n_pending--;
    event_del(req->timer);
    req->cb(ra, &res, req->data);
    rkl_result_fini(&res);
    free_req(req);
}

static void refresh_done(struct areq *req)
{
    req->ra->refresh = NULL;
    free_req(req);
}

/* Starts the topology read if one is due and none runs. */
static void maybe_refresh(struct ringkv_async *ra)
{
    if (ra->closing || ra->refresh != NULL ||
        !rkl_route_refresh_due(&ra->route, rkl_now_ms())) {
        return;
    }
    struct rkl_cmd cmd;
    rkl_cmd_slots(&cmd);
    struct rk_buf b;
    rk_buf_init(&b);
    struct areq *req = NULL;
    if (resp_w_command(&b, cmd.argc, cmd.argv, cmd.lens) == RK_OK) {
        req = rk_calloc(1, sizeof(*req) + b.len);
    }
    if (req != NULL) {
        memcpy(req->wire, b.base, b.len);
        req->wire_len = b.len;
        req->timer = evtimer_new(ra->base, timer_cb, req);
        req->order = rk_malloc(ra->route.n_nodes * sizeof(*req->order));
    }
    rk_buf_fini(&b);
    if (req == NULL || req->timer == NULL || req->order == NULL) {
        if (req != NULL) {
            free_req(req);
        }
        return; /* out of memory: the old topology routes on */
    }
    req->ra = ra;
    req->op = RKL_OP_SLOTS;
    req->idempotent = true;
    req->timeout_ms = ra->o.timeout_ms;
    req->deadline_ms = rkl_now_ms() + ra->o.timeout_ms;
    req->n_order =
        rkl_route_refresh_order(&ra->route, rkl_now_ms(), req->order);
    ra->refresh = req;
    dispatch(req);
}

/* The topology read failed on one node: the next one, or give up (the
 * old topology stays, refresh_needed asks again on the next call). */
static void refresh_next(struct areq *req, int err)
{
    if (req->attempt < (int)req->n_order && rkl_now_ms() < req->deadline_ms &&
        err != RINGKV_EAUTH && err != RINGKV_ENOMEM) {
        dispatch(req);
        return;
    }
    refresh_done(req);
}

static void attempt_failed(struct areq *req, int err, bool sent)
{
    struct ringkv_async *ra = req->ra;
    if (req->op == RKL_OP_SLOTS) {
        refresh_next(req, err);
        return;
    }
    int pause = 0;
    bool again = rkl_route_retry(&ra->route, &ra->policy, req->attempt, err,
                                 sent, req->idempotent, req->flags,
                                 req->deadline_ms - rkl_now_ms(), &pause);
    maybe_refresh(ra);
    if (!again) {
        complete(req, err, NULL);
    } else if (pause == 0) {
        dispatch(req);
    } else {
        req->state = REQ_BACKOFF;
        struct timeval tv = {.tv_sec = pause / 1000,
                             .tv_usec = (pause % 1000) * 1000};
        evtimer_add(req->timer, &tv);
    }
}

/* A reply to `req` from node `an`. */
static void reply_arrived(struct areq *req,
                          struct anode *an,
                          const struct resp_value *v)
{
    struct ringkv_async *ra = req->ra;
    if (req->op == RKL_OP_SLOTS) {
        char err[300] = "";
        int rc = rkl_route_install(&ra->route, an->idx, v, rkl_now_ms(), err,
                                   sizeof(err));
        if (rc == RINGKV_OK) {
            refresh_done(req);
        } else {
            refresh_next(req, rc);
        }
        return;
    }
    if (v->type == RESP_ERROR) {
        req_err(req, "%s: %s", node_name(an), v->str);
        attempt_failed(req, rkl_error_code(v), true);
        return;
    }
    complete(req, RINGKV_OK, v);
}

/* Starts the next attempt of `req` (never runs a callback itself). */
static void dispatch(struct areq *req)
{
    struct ringkv_async *ra = req->ra;
    int64_t now = rkl_now_ms();
    req->attempt++;
    if (req->op != RKL_OP_SLOTS) {
        ra->st.attempts++;
        ra->st.retries += req->attempt > 1;
    }
    int64_t budget = rkl_attempt_budget_ms(&ra->policy, req->attempt,
                                           req->deadline_ms - now);
    size_t idx = req->op == RKL_OP_SLOTS
                     ? req->order[req->attempt - 1]
                     : rkl_route_pick(&ra->route, req->slot, req->attempt, now);
    struct anode *an = NULL;
    if (budget <= 0) {
        req_err(req, "timed out after %d ms", req->timeout_ms);
        req->fail_err = RINGKV_ETIMEDOUT;
    } else if ((an = node_open(ra, idx, req)) == NULL) {
        req->fail_err = RINGKV_EIO;
    } else if (fifo_push(an, req) != RINGKV_OK) {
        req_err(req, "out of memory");
        req->fail_err = RINGKV_ENOMEM;
        an = NULL;
    } else if (bufferevent_write(an->bev, req->wire, req->wire_len) != 0) {
        an->len--; /* the entry just pushed */
        req_err(req, "%s: out of memory", node_name(an));
        req->fail_err = RINGKV_ENOMEM;
        an = NULL;
    }
    struct timeval tv = {0, 0};
    if (an == NULL) {
        req->state = REQ_FAILING; /* reported from the loop (invariant 3) */
    } else {
        req->state = REQ_INFLIGHT;
        req->on = an;
        tv.tv_sec = budget / 1000;
        tv.tv_usec = (budget % 1000) * 1000;
    }
    evtimer_add(req->timer, &tv);
}

/* ---- libevent callbacks ----------------------------------------------- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct areq *req = arg;
    struct ringkv_async *ra = req->ra;
    ra->depth++;
    switch (req->state) {
        case REQ_BACKOFF:
            dispatch(req);
            break;
        case REQ_FAILING:
            attempt_failed(req, req->fail_err, false);
            break;
        case REQ_INFLIGHT:
            /* as the blocking API: a connection with a reply this late is
             * not trusted; the others on it are retried as they may */
            node_fail(req->on, RINGKV_EIO,
                      "connection closed after another request timed out", req,
                      RINGKV_ETIMEDOUT);
            break;
    }
    ra_leave(ra);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct anode *an = arg;
    struct ringkv_async *ra = an->ra;
    struct evbuffer *in = bufferevent_get_input(bev);
    ra->depth++;
    while (an->bev != NULL && !ra->closing) {
        size_t len = evbuffer_get_length(in);
        if (len == 0 || len < an->need) {
            break;
        }
        const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)len);
        size_t consumed = 0, need = 0;
        struct resp_value *v = NULL;
        int p = resp_reply_parse(buf, len, RA_MAX_DEPTH, RESP_DEFAULT_MAX_BULK,
                                 &consumed, &need, &v);
        if (p == RK_EAGAIN) {
            an->need = need > len ? need : len + 1;
            break;
        }
        if (p != RK_OK || an->len == 0) {
            resp_value_free(v);
            node_fail(an, p == RK_ENOMEM ? RINGKV_ENOMEM : RINGKV_EPROTO,
                      p != RK_OK ? "malformed reply" : "unexpected reply", NULL,
                      0);
            break;
        }
        an->need = 0;
        evbuffer_drain(in, consumed);
        struct areq *req = fifo_pop(an);
        if (req == NULL && an->auth_pending) {
            an->auth_pending = false;
            if (v->type == RESP_ERROR) {
                char why[RA_ERRMSG_SIZE];
                snprintf(why, sizeof(why), "AUTH: %s", v->str);
                node_fail(an, RINGKV_EAUTH, why, NULL, 0);
            }
        } else if (req != NULL) {
            req->on = NULL;
            event_del(req->timer);
            reply_arrived(req, an, v);
        }
        resp_value_free(v);
    }
    ra_leave(ra);
}

static void event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct anode *an = arg;
    struct ringkv_async *ra = an->ra;
    ra->depth++;
    if (events & BEV_EVENT_CONNECTED) {
        an->connected = true;
        ra->route.nodes[an->idx].down_until_ms = 0;
        ra->st.connects++;
        bufferevent_set_timeouts(bev, NULL, NULL);
    } else if (events & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
        char why[128];
        int err = RINGKV_EIO;
        if (events & BEV_EVENT_TIMEOUT) {
            snprintf(why, sizeof(why), "%s timed out",
                     an->connected ? "write" : "connect");
            err = RINGKV_ETIMEDOUT;
        } else if (events & BEV_EVENT_EOF) {
            snprintf(why, sizeof(why), "server closed the connection");
        } else {
            snprintf(why, sizeof(why), "%s: %s",
                     an->connected ? "connection" : "connect",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        }
        node_fail(an, err, why, NULL, 0);
    }
    ra_leave(ra);
}

/* ---- the API ---------------------------------------------------------- */

int ringkv_async_create(struct event_base *base,
                        const struct ringkv_options *o,
                        struct ringkv_async **out,
                        char errbuf[256])
{
    char err[256] = "";
    if (base == NULL || out == NULL || !rkl_options_valid(o)) {
        snprintf(err, sizeof(err), "invalid options");
        goto fail_early;
    }
    struct ringkv_async *ra = rk_calloc(1, sizeof(*ra));
    if (ra == NULL) {
        return RINGKV_ENOMEM;
    }
    ra->base = base;
    ra->o = *o;
    ra->o.seeds = NULL;
    ra->o.username = ra->o.password = NULL;
    rkl_policy_from_options(&ra->policy, o);
    int rc = rkl_route_init(
        &ra->route, o->seeds, o->n_seeds, o->refresh_interval_ms, o->down_ms,
        (uint64_t)rkl_now_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)ra, err,
        sizeof(err));
    if (rc == RINGKV_OK) {
        rc = rkl_auth_init(&ra->auth, o);
    }
    if (rc != RINGKV_OK) {
        ra_free(ra);
        if (errbuf != NULL) {
            snprintf(errbuf, 256, "%s", err[0] ? err : ringkv_strerror(rc));
        }
        return rc;
    }
    maybe_refresh(ra); /* starts on the loop; nothing can run a callback */
    *out = ra;
    if (errbuf != NULL) {
        errbuf[0] = '\0';
    }
    return RINGKV_OK;
fail_early:
    if (errbuf != NULL) {
        snprintf(errbuf, 256, "%s", err);
    }
    return RINGKV_EINVAL;
}

void ringkv_async_destroy(struct ringkv_async *ra)
{
    if (ra == NULL || ra->closing) {
        return;
    }
    ra->closing = true;
    ra->depth++;
    for (size_t i = 0; i < ra->route.n_nodes; i++) {
        if (ra->route.nodes[i].conn != NULL) {
            node_close(ra->route.nodes[i].conn);
        }
    }
    if (ra->refresh != NULL) {
        refresh_done(ra->refresh);
    }
    while (ra->reqs != NULL) {
        struct areq *req = ra->reqs;
        req_err(req, "cancelled: the handle was destroyed");
        complete(req, RINGKV_ECANCELED, NULL);
    }
    ra_leave(ra);
}

/* Queues a user call: the command encoded (the caller's bytes are free
 * after this), the first attempt started.  Frees what cmd allocated. */
static int submit(struct ringkv_async *ra,
                  int rc,
                  struct rkl_cmd *cmd,
                  const struct ringkv_call *c,
                  ringkv_async_cb cb,
                  void *data)
{
    if (rc != RINGKV_OK) {
        return rc;
    }
    struct rk_buf b;
    rk_buf_init(&b);
    struct areq *req = NULL;
    if (ra == NULL || ra->closing || cb == NULL) {
        rc = RINGKV_EINVAL;
    } else if (resp_w_command(&b, cmd->argc, cmd->argv, cmd->lens) != RK_OK ||
               (req = rk_calloc(1, sizeof(*req) + b.len)) == NULL) {
        rc = RINGKV_ENOMEM;
    } else {
        memcpy(req->wire, b.base, b.len);
        req->wire_len = b.len;
        req->timer = evtimer_new(ra->base, timer_cb, req);
        rc = req->timer != NULL ? RINGKV_OK : RINGKV_ENOMEM;
    }
    rk_buf_fini(&b);
    rkl_cmd_fini(cmd);
    if (rc != RINGKV_OK) {
        if (req != NULL) {
            free_req(req);
        }
        return rc;
    }
    req->ra = ra;
    req->op = cmd->op;
    req->n_keys = cmd->n_keys;
    req->slot = cmd->slot;
    req->idempotent = cmd->idempotent;
    req->flags = c ? c->flags : 0;
    req->timeout_ms = c && c->timeout_ms > 0 ? c->timeout_ms : ra->o.timeout_ms;
    req->deadline_ms = rkl_now_ms() + req->timeout_ms;
    req->cb = cb;
    req->data = data;
    req->next = ra->reqs;
    if (ra->reqs != NULL) {
        ra->reqs->prev = req;
    }
    ra->reqs = req;
    ra->n_pending++;
    ra->st.calls++;
    maybe_refresh(ra);
    dispatch(req);
    return RINGKV_OK;
}

int ringkv_async_get(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_get(&cmd, key, klen), &cmd, call, cb, data);
}

int ringkv_async_set(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen,
                     int64_t ttl_ms,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_set(&cmd, key, klen, val, vlen, ttl_ms), &cmd,
                  call, cb, data);
}

int ringkv_async_del(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_del(&cmd, key, klen), &cmd, call, cb, data);
}

int ringkv_async_mget(struct ringkv_async *ra,
                      size_t n,
                      const void *const *keys,
                      const size_t *klens,
                      const struct ringkv_call *call,
                      ringkv_async_cb cb,
                      void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_mget(&cmd, n, keys, klens), &cmd, call, cb, data);
}

int ringkv_async_mset(struct ringkv_async *ra,
                      size_t n,
                      const void *const *keys,
                      const size_t *klens,
                      const void *const *vals,
                      const size_t *vlens,
                      const struct ringkv_call *call,
                      ringkv_async_cb cb,
                      void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_mset(&cmd, n, keys, klens, vals, vlens), &cmd,
                  call, cb, data);
}

int ringkv_async_incr(struct ringkv_async *ra,
                      const void *key,
                      size_t klen,
                      int64_t by,
                      const struct ringkv_call *call,
                      ringkv_async_cb cb,
                      void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_incr(&cmd, key, klen, by), &cmd, call, cb, data);
}

int ringkv_async_expire(struct ringkv_async *ra,
                        const void *key,
                        size_t klen,
                        int64_t ttl_ms,
                        const struct ringkv_call *call,
                        ringkv_async_cb cb,
                        void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_expire(&cmd, key, klen, ttl_ms), &cmd, call, cb,
                  data);
}

int ringkv_async_getall(struct ringkv_async *ra,
                        const void *key,
                        size_t klen,
                        const struct ringkv_call *call,
                        ringkv_async_cb cb,
                        void *data)
{
    struct rkl_cmd cmd;
    return submit(ra, rkl_cmd_getall(&cmd, key, klen), &cmd, call, cb, data);
}

int ringkv_async_put(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const char *context,
                     size_t context_len,
                     const void *val,
                     size_t vlen,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data)
{
    struct rkl_cmd cmd;
    return submit(ra,
                  rkl_cmd_put(&cmd, key, klen, context, context_len, val, vlen),
                  &cmd, call, cb, data);
}

size_t ringkv_async_pending(const struct ringkv_async *ra)
{
    return ra->n_pending;
}

void ringkv_async_stats_get(const struct ringkv_async *ra,
                            struct ringkv_stats *st)
{
    *st = ra->st;
    st->refreshes = ra->route.refreshes;
}

size_t ringkv_async_node_count(const struct ringkv_async *ra)
{
    return ra->route.topo.n_nodes;
}

const char *ringkv_async_node_addr(const struct ringkv_async *ra, size_t i)
{
    return rkl_route_topo_addr(&ra->route, i);
}

/*
 * peer_transport.c - TCP connections between ringkv nodes on libevent
 * bufferevents; see peer_transport.h and docs/peer-protocol.md
 * ("Transport").
 *
 * Objects:
 *  - struct peer: a remote node, known by node id and/or dial address.  It
 *    owns `pending` (frames waiting for a connection), the reconnect timer
 *    and its counters.  Peers live until the transport is destroyed, except
 *    an address-only peer, which is merged into the peer of the id its
 *    HELLO announces (peer_merge).
 *  - struct conn: one socket.  Inbound conns have no peer until their HELLO.
 *    With tls-cluster (cfg->tls_ctx) its bufferevent is an OpenSSL one and
 *    HANDSHAKE begins with mutual TLS; the TLS half is peer_tls.c.
 *
 * Connection states:
 *
 *   dial / accept --> HANDSHAKE --(valid HELLO)--> READY (peer->active)
 *                        |                           |
 *       timeout, error,  |      dedupe loser, or     |  EOF with output
 *       bad HELLO        v      superseded           v  left
 *                      freed <---(EOF)--- RETIRING   CLOSING --(drained)-->
 * freed (output flushed, then shutdown(SHUT_WR))
 *
 * Invariants:
 *  1. peer->active is READY, or NULL; at most one per peer.  Frames go to
 *     active's output, else to peer->pending, never to another conn.
 *  2. peer->n_dialing counts the peer's outbound conns in HANDSHAKE.
 *  3. A peer with pending bytes, an address and neither an active nor a
 *     dialing conn has its retry timer armed (peer_kick), except after a
 *     failed dial that had attempts == 0 (then it dials at once).
 *  4. The transport never frees a conn or a peer from inside send, so a
 *     callback may send; conns are freed only from libevent callbacks,
 *     after the state is consistent, and then the callback runs last.
 *  5. The decoder input of a conn holds less than one frame plus one read
 *     (on TLS, a read callback's input plus at most 256 KiB that
 *     pt__tls_drain decrypted): frames are handled as soon as they are
 *     complete, and before the HELLO the body limit is HELLO_MAX_BODY.
 */
#include "server/peer_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cluster/rng.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/peer_chunk.h"
#include "server/peer_transport_internal.h"

/* ---- helpers ------------------------------------------------------------ */

/* A node id made safe for a logfmt value and a quoted message. */
static const char *safe_id(const char *id, size_t len, char *out, size_t cap)
{
    if (id == NULL) {
        return "unknown";
    }
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)id[i];
        bool ok =
            ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '=';
        out[o++] = ok ? (char)ch : '?';
    }
    out[o] = '\0';
    return o ? out : "?";
}

const char *pt__safe_id(const char *id, size_t len, char *out, size_t cap)
{
    return safe_id(id, len, out, cap);
}

static bool bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Lexicographic byte order, a prefix first. */
static int id_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000u),
                         (suseconds_t)(ms % 1000u) * 1000};
    return tv;
}

static const struct fault *fault_find(const struct peer_transport *t,
                                      const char *id,
                                      size_t len)
{
    if (id == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < t->n_faults; i++) {
        if (bytes_eq(t->faults[i].id, strlen(t->faults[i].id), id, len)) {
            return &t->faults[i];
        }
    }
    return NULL;
}

size_t pt__queue_bytes(const struct peer *p)
{
    size_t n = evbuffer_get_length(p->pending) + p->big.bytes;
    if (p->active) {
        n += evbuffer_get_length(bufferevent_get_output(p->active->bev));
    }
    return n;
}

/* ---- peers -------------------------------------------------------------- */

static void retry_cb(evutil_socket_t fd, short what, void *arg);

static struct peer *peer_new(struct peer_transport *t)
{
    struct peer *p = rk_calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->t = t;
    peer_chunkq_init(&p->big);
    p->pending = evbuffer_new();
    p->retry_ev = evtimer_new(t->base, retry_cb, p);
    if (p->pending == NULL || p->retry_ev == NULL) {
        if (p->pending) {
            evbuffer_free(p->pending);
        }
        if (p->retry_ev) {
            event_free(p->retry_ev);
        }
        rk_free(p);
        return NULL;
    }
    p->next = t->peers;
    if (t->peers) {
        t->peers->prev = p;
    }
    t->peers = p;
    return p;
}

static void peer_free(struct peer *p)
{
    struct peer_transport *t = p->t;
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        t->peers = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
    evbuffer_free(p->pending);
    peer_chunkq_fini(&p->big);
    event_free(p->retry_ev);
    rk_free(p->id);
    rk_free(p->host);
    rk_free(p);
}

static int peer_set_id(struct peer *p, const char *id, size_t len)
{
    char *copy = rk_strndup(id, len);
    if (copy == NULL) {
        return RK_ENOMEM;
    }
    rk_free(p->id);
    p->id = copy;
    p->id_len = len;
    return RK_OK;
}

static int peer_set_addr(struct peer *p,
                         const char *host,
                         size_t len,
                         uint16_t port)
{
    if (p->host && bytes_eq(p->host, strlen(p->host), host, len) &&
        p->port == port) {
        return RK_OK;
    }
    char *copy = rk_strndup(host, len);
    if (copy == NULL) {
        return RK_ENOMEM;
    }
    rk_free(p->host);
    p->host = copy;
    p->port = port;
    return RK_OK;
}

struct peer *pt__peer_by_id(const struct peer_transport *t,
                            const char *id,
                            size_t len)
{
    for (struct peer *p = t->peers; p; p = p->next) {
        if (p->id && bytes_eq(p->id, p->id_len, id, len)) {
            return p;
        }
    }
    return NULL;
}

/* A peer dialed at host:port; with `anon`, only one whose id is unknown. */
static struct peer *peer_by_addr(const struct peer_transport *t,
                                 const char *host,
                                 size_t len,
                                 uint16_t port,
                                 bool anon)
{
    for (struct peer *p = t->peers; p; p = p->next) {
        if (p->host && p->port == port &&
            bytes_eq(p->host, strlen(p->host), host, len) &&
            (!anon || p->id == NULL)) {
            return p;
        }
    }
    return NULL;
}

/* Backoff delay before dial number `attempts` + 1: exponential, capped,
 * "equal jitter" (a uniform draw in [d/2, d]). */
static uint64_t backoff_ms(struct peer_transport *t, uint32_t attempts)
{
    uint64_t d = t->backoff_min_ms;
    for (uint32_t i = 1; i < attempts && d < t->backoff_max_ms; i++) {
        d *= 2;
    }
    if (d > t->backoff_max_ms) {
        d = t->backoff_max_ms;
    }
    return d / 2 + rk_rng_below(&t->rng, d - d / 2 + 1);
}

static void peer_dial(struct peer *p);

/* Starts (or schedules) a dial when frames wait and nothing carries them
 * (invariant 3). */
static void peer_kick(struct peer *p)
{
    if (p->active || p->n_dialing > 0 || p->host == NULL ||
        (evbuffer_get_length(p->pending) == 0 && p->big.n_items == 0) ||
        evtimer_pending(p->retry_ev, NULL)) {
        return;
    }
    if (p->attempts == 0) {
        peer_dial(p);
        return;
    }
    struct timeval tv = ms_tv(backoff_ms(p->t, p->attempts));
    evtimer_add(p->retry_ev, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer *p = arg;
    if (p->active || p->n_dialing > 0 || p->host == NULL ||
        (evbuffer_get_length(p->pending) == 0 && p->big.n_items == 0)) {
        return;
    }
    p->st.reconnects++;
    p->t->st.reconnects++;
    peer_dial(p);
}

/* Moves everything of `src` (an address-only peer) into `dst`. */
static void peer_merge(struct peer *dst, struct peer *src)
{
    struct peer_transport *t = dst->t;
    for (struct conn *c = t->conns; c; c = c->next) {
        if (c->peer == src) {
            c->peer = dst;
        }
    }
    dst->n_dialing += src->n_dialing;
    evbuffer_add_buffer(dst->pending, src->pending);
    peer_chunkq_move(&dst->big, &src->big);
    if (src->host) {
        rk_free(dst->host);
        dst->host = src->host;
        dst->port = src->port;
        src->host = NULL;
    }
    dst->st.frames_out += src->st.frames_out;
    dst->st.bytes_out += src->st.bytes_out;
    dst->st.reconnects += src->st.reconnects;
    dst->st.dial_failures += src->st.dial_failures;
    dst->st.busy += src->st.busy;
    peer_free(src);
}

/* ---- connections -------------------------------------------------------- */

/*
 * Moves pieces of the queued large frames to the active connection's
 * output while it holds less than PUMP_WINDOW bytes: CHUNK frames to a
 * version-2 peer, whole frames to a version-1 one.  The write callback
 * calls it again when the output drains to PUMP_LOW.  An allocation
 * failure leaves the rest queued for the next call.
 */
static void peer_pump(struct peer *p)
{
    struct conn *c = p->active;
    if (c == NULL) {
        return;
    }
    struct peer_transport *t = p->t;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (p->big.n_items > 0 && evbuffer_get_length(out) < PUMP_WINDOW) {
        rk_buf_clear(&t->piece);
        if (peer_chunkq_next(&p->big, c->version >= 2, &t->piece) != RK_OK ||
            evbuffer_add(out, t->piece.base, t->piece.len) != 0) {
            break;
        }
    }
    rk_buf_clear(&t->piece);
    rk_buf_shrink(&t->piece, 2 * PEER_CHUNK_MAX);
}

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Frees a conn's resources; no bookkeeping, no callbacks. */
static void conn_release(struct conn *c)
{
    struct peer_transport *t = c->t;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        t->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    if (c->bev) {
        bufferevent_free(c->bev);
    }
    if (c->timer) {
        event_free(c->timer);
    }
    peer_decoder_destroy(c->dec);
    rk_buf_fini(&c->in);
    peer_reasm_fini(&c->reasm);
    OPENSSL_cleanse(&c->auth, sizeof(c->auth));
    rk_free(c);
}

/*
 * Takes `c` away from its peer (dial accounting, active conn), then either
 * frees it now (`linger` false or nothing left to write) or lets it flush
 * its output first (CLOSING, freed by conn_write_cb or the deadline, so
 * that a rejected peer still reads our HELLO and logs why).  Runs
 * on_peer_disconnected if it was the active conn, and kicks a redial.
 */
static void conn_close(struct conn *c, int reason, bool linger)
{
    struct peer_transport *t = c->t;
    struct peer *p = c->peer;
    bool was_active = p && p->active == c;
    if (p && c->outbound && c->state == CONN_HANDSHAKE) {
        p->n_dialing--;
        p->attempts++;
        p->st.dial_failures++;
        t->st.dial_failures++;
        rk_log(RK_LOG_DEBUG, "peer_dial_failed",
               "addr=%s reason=%s attempts=%" PRIu32, c->addr,
               rk_errname(reason), p->attempts);
    }
    if (was_active) {
        p->active = NULL;
        /* the receiver drops a half-received frame with the connection */
        peer_chunkq_drop_started(&p->big);
    }
    if (linger && !c->wr_shut &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        c->peer = NULL;
        c->state = CONN_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        struct timeval tv = ms_tv(2u * (uint64_t)t->connect_ms + 1000u);
        evtimer_add(c->timer, &tv);
    } else {
        conn_release(c);
    }
    if (!was_active) {
        if (p) {
            peer_kick(p);
        }
        return;
    }
    char idbuf[PEER_MAX_NODE_ID + 1];
    rk_log(RK_LOG_INFO, "peer_disconnected", "peer=%s reason=%s",
           safe_id(p->id, p->id_len, idbuf, sizeof(idbuf)), rk_errname(reason));
    if (t->cbs.on_peer_disconnected) {
        t->cbs.on_peer_disconnected(t->data, p->id, p->id_len, reason);
    }
    peer_kick(p);
}

static void conn_shut_if_drained(struct conn *c)
{
    size_t left = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (left > 0) {
        return;
    }
    if (c->state == CONN_CLOSING) {
        conn_close(c, RK_ECLOSED, false);
        return;
    }
    if (c->state == CONN_RETIRING && !c->wr_shut) {
        c->wr_shut = true;
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    }
}

/* Takes `c` out of service: it flushes what it holds, half-closes and is
 * freed on the other side's EOF (or the deadline). */
static void conn_retire(struct conn *c)
{
    c->state = CONN_RETIRING;
    struct timeval tv = ms_tv(2u * (uint64_t)c->t->connect_ms + 1000u);
    evtimer_add(c->timer, &tv);
    conn_shut_if_drained(c);
}

/* Writes `m` (a handshake frame) to c's output.  RK_OK or an error. */
static int conn_write_msg(struct conn *c, const struct peer_msg *m)
{
    struct rk_buf b;
    rk_buf_init(&b);
    int rc = peer_encode(m, &b);
    if (rc == RK_OK && bufferevent_write(c->bev, b.base, b.len) != 0) {
        rc = RK_ENOMEM;
    }
    rk_buf_fini(&b);
    return rc;
}

/* Starts c's handshake (proto/peer_auth.h) and queues its AUTH_CHALLENGE
 * behind the HELLO. */
static int auth_start(struct conn *c)
{
    struct peer_transport *t = c->t;
    unsigned char nonce[PEER_AUTH_NONCE_LEN];
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        return RK_EIO;
    }
    struct peer_msg ch;
    int rc = peer_auth_start(
        &c->auth, c->outbound ? PEER_AUTH_DIALER : PEER_AUTH_ACCEPTOR,
        t->secret, t->secret_len, t->self_id, t->self_len, nonce, &ch);
    return rc == RK_OK ? conn_write_msg(c, &ch) : rc;
}

static struct conn *conn_new(struct peer_transport *t,
                             evutil_socket_t fd,
                             bool outbound,
                             struct peer *p,
                             const char *addr)
{
    struct conn *c = rk_calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->t = t;
    c->outbound = outbound;
    c->peer = p;
    c->state = CONN_HANDSHAKE;
    rk_buf_init(&c->in);
    peer_reasm_init(&c->reasm);
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->tls = t->tls_ctx != NULL;
    c->bev = c->tls
                 ? pt__tls_bev_new(t, fd, outbound)
                 : bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(t->base, conn_timer_cb, c);
    if (c->bev == NULL || c->timer == NULL ||
        peer_decoder_create(HELLO_MAX_BODY, &c->dec) != RK_OK ||
        bufferevent_write(c->bev, t->hello.base, t->hello.len) != 0 ||
        auth_start(c) != RK_OK) {
        if (c->bev == NULL && fd >= 0) {
            evutil_closesocket(fd);
        }
        if (c->bev) {
            bufferevent_free(c->bev);
        }
        if (c->timer) {
            event_free(c->timer);
        }
        peer_decoder_destroy(c->dec);
        OPENSSL_cleanse(&c->auth, sizeof(c->auth));
        rk_free(c);
        return NULL;
    }
    c->next = t->conns;
    if (t->conns) {
        t->conns->prev = c;
    }
    t->conns = c;
    if (outbound) {
        p->n_dialing++;
    }
    if (c->tls && !outbound) {
        pt__tls_watch(c);
    }
    struct timeval tv = ms_tv(t->connect_ms);
    evtimer_add(c->timer, &tv);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

static void set_nodelay(evutil_socket_t fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Dials p->host:p->port.  A failure here counts as a failed dial and arms
 * the backoff timer (attempts > 0 afterwards, so no recursion). */
static void peer_dial(struct peer *p)
{
    struct peer_transport *t = p->t;
    char addr[ADDR_LEN];
    snprintf(addr, sizeof(addr), "%s:%u", p->host, (unsigned)p->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)p->port);
    int gai = getaddrinfo(p->host, port, &hints, &res);
    if (gai != 0 || res == NULL) {
        rk_log(RK_LOG_WARN, "peer_resolve_failed", "addr=%s error=\"%s\"", addr,
               gai_strerror(gai));
        goto fail;
    }
    struct conn *c = conn_new(t, -1, true, p, addr);
    if (c == NULL) {
        freeaddrinfo(res);
        goto fail;
    }
    int rc =
        bufferevent_socket_connect(c->bev, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0) {
        /* Synchronous failure: libevent ran no callback. */
        p->n_dialing--;
        conn_release(c);
        goto fail;
    }
    set_nodelay(bufferevent_getfd(c->bev));
    if (c->tls) {
        pt__tls_watch(c);
    }
    rk_log(RK_LOG_DEBUG, "peer_dial", "addr=%s attempts=%" PRIu32, addr,
           p->attempts);
    return;
fail:
    p->attempts++;
    p->st.dial_failures++;
    t->st.dial_failures++;
    peer_kick(p);
}

/* ---- HELLO and dedupe --------------------------------------------------- */

static void conn_reject(struct conn *c, int reason)
{
    c->t->st.rejected++;
    conn_close(c, reason, true);
}

void pt__conn_refuse(struct conn *c, int reason, bool linger)
{
    c->t->st.rejected++;
    conn_close(c, reason, linger);
}

/* The node that dialed `c`: this node or its peer. */
static bool conn_dialer_is_smaller(const struct conn *c)
{
    const struct peer_transport *t = c->t;
    int cmp = id_cmp(t->self_id, t->self_len, c->peer->id, c->peer->id_len);
    return c->outbound ? cmp < 0 : cmp > 0;
}

/* Finds or makes the peer of a conn whose HELLO announced `h`.  Returns the
 * peer, or NULL after closing `c`. */
static struct peer *hello_peer(struct conn *c, const struct peer_hello *h)
{
    struct peer_transport *t = c->t;
    char a[PEER_MAX_NODE_ID + 1], b[PEER_MAX_NODE_ID + 1];
    const char *id = h->node_id.ptr;
    size_t len = h->node_id.len;
    struct peer *p = c->peer;
    if (p && p->id) {
        if (!bytes_eq(p->id, p->id_len, id, len)) {
            rk_log(RK_LOG_WARN, "peer_id_mismatch",
                   "addr=%s expected=%s got=%s", c->addr,
                   safe_id(p->id, p->id_len, a, sizeof(a)),
                   safe_id(id, len, b, sizeof(b)));
            conn_reject(c, RK_EPROTO);
            return NULL;
        }
        return p;
    }
    struct peer *q = pt__peer_by_id(t, id, len);
    if (p == NULL && q == NULL) {
        /* Inbound from a node we only know by address (a seed we sent a
         * JOIN to, say), or from a new node. */
        q = peer_by_addr(t, h->host.ptr, h->host.len, h->peer_port, true);
        if (q == NULL) {
            q = peer_new(t);
        }
        if (q == NULL || peer_set_id(q, id, len) != RK_OK) {
            conn_close(c, RK_ENOMEM, false);
            return NULL;
        }
    } else if (p && q == NULL) {
        if (peer_set_id(p, id, len) != RK_OK) {
            conn_close(c, RK_ENOMEM, false);
            return NULL;
        }
        q = p;
    } else if (p && q != p) {
        peer_merge(q, p);
    }
    if (q->host == NULL &&
        peer_set_addr(q, h->host.ptr, h->host.len, h->peer_port) != RK_OK) {
        conn_close(c, RK_ENOMEM, false);
        return NULL;
    }
    c->peer = q;
    return q;
}

/* Checks the HELLO of a conn (before the handshake ends: it changes
 * nothing) and keeps a copy in c->hello.  Returns false when `c` was
 * closed. */
static bool conn_check_hello(struct conn *c, const struct peer_hello *h)
{
    struct peer_transport *t = c->t;
    char a[PEER_MAX_NODE_ID + 1], b[PEER_MAX_NODE_ID + 1];
    char cn[PEER_MAX_CLUSTER + 1], cn2[PEER_MAX_CLUSTER + 1];
    if (c->tls && !pt__tls_check_hello(c, h)) {
        return false; /* its certificate is not the HELLO's node's */
    }
    if (h->cluster_name.len > 0 && t->cluster_len > 0 &&
        !bytes_eq(h->cluster_name.ptr, h->cluster_name.len, t->cluster,
                  t->cluster_len)) {
        rk_log(RK_LOG_WARN, "peer_cluster_mismatch",
               "addr=%s peer=%s cluster=%s peer_cluster=%s msg=\"peer belongs "
               "to another cluster\"",
               c->addr, safe_id(h->node_id.ptr, h->node_id.len, a, sizeof(a)),
               safe_id(t->cluster, t->cluster_len, cn, sizeof(cn)),
               safe_id(h->cluster_name.ptr, h->cluster_name.len, cn2,
                       sizeof(cn2)));
        conn_reject(c, RK_EPROTO);
        return false;
    }
    if (bytes_eq(h->node_id.ptr, h->node_id.len, t->self_id, t->self_len)) {
        rk_log(RK_LOG_WARN, "peer_self_connect",
               "addr=%s msg=\"connected to this node itself\"", c->addr);
        if (c->peer && c->peer->id == NULL) {
            /* Nothing sent to our own address can ever be delivered. */
            evbuffer_drain(c->peer->pending,
                           evbuffer_get_length(c->peer->pending));
        }
        conn_reject(c, RK_EINVAL);
        return false;
    }
    if (c->peer && c->peer->id &&
        !bytes_eq(c->peer->id, c->peer->id_len, h->node_id.ptr,
                  h->node_id.len)) {
        rk_log(RK_LOG_WARN, "peer_id_mismatch", "addr=%s expected=%s got=%s",
               c->addr, safe_id(c->peer->id, c->peer->id_len, a, sizeof(a)),
               safe_id(h->node_id.ptr, h->node_id.len, b, sizeof(b)));
        conn_reject(c, RK_EPROTO);
        return false;
    }
    c->hello = *h;
    memcpy(c->hello_id, h->node_id.ptr, h->node_id.len);
    c->hello.node_id.ptr = c->hello_id;
    memcpy(c->hello_cluster, h->cluster_name.ptr, h->cluster_name.len);
    c->hello.cluster_name.ptr = c->hello_cluster;
    memcpy(c->hello_host, h->host.ptr, h->host.len);
    c->hello.host.ptr = c->hello_host;
    return true;
}

static bool conn_activate(struct conn *c, const struct peer_hello *h);

bool pt__auth_log_allowed(struct peer_transport *t)
{
    time_t now = time(NULL);
    if (now != t->auth_log_s) {
        t->auth_log_s = now;
        t->auth_logged = 0;
    }
    return t->auth_logged++ < 10;
}

/* Logs a failed handshake (at most 10 lines a second for the transport,
 * then counted only) and closes `c`. */
static void auth_failed(struct conn *c, int rc)
{
    struct peer_transport *t = c->t;
    char a[PEER_MAX_NODE_ID + 1];
    t->st.auth_failed++;
    if (pt__auth_log_allowed(t)) {
        rk_log(RK_LOG_WARN, "peer_auth_failed",
               "addr=%s peer=%s reason=\"%s\" failures=%" PRIu64
               " msg=\"every node of a cluster needs the same cluster secret "
               "(--cluster-secret-file; docs/security.md)\"",
               c->addr,
               c->auth.peer_len
                   ? safe_id(c->auth.peer_id, c->auth.peer_len, a, sizeof(a))
                   : "unknown",
               c->auth.why ? c->auth.why : "?", t->st.auth_failed);
    }
    if (c->outbound && c->peer && c->peer->host && t->cbs.on_auth_failed) {
        t->cbs.on_auth_failed(t->data, c->peer->host, c->peer->port, rc, false,
                              c->auth.why ? c->auth.why : "?");
    }
    conn_reject(c, rc);
}

/* Feeds a frame of the handshake: HELLO (checked and kept), then
 * AUTH_CHALLENGE (answered with our proof), then AUTH_PROOF (checked: the
 * conn becomes READY with the kept HELLO).  Returns false when `c` was
 * closed. */
static bool conn_on_handshake(struct conn *c, const struct peer_msg *m)
{
    struct peer_msg out;
    bool send = false;
    int rc = peer_auth_on_frame(&c->auth, m, &out, &send);
    if (rc != RK_OK) {
        auth_failed(c, rc);
        return false;
    }
    if (m->type == PEER_HELLO) {
        return conn_check_hello(c, &m->hello);
    }
    if (send && conn_write_msg(c, &out) != RK_OK) {
        conn_close(c, RK_ENOMEM, false);
        return false;
    }
    if (c->auth.state == PEER_AUTH_DONE) {
        return conn_activate(c, &c->hello);
    }
    return true;
}

/* Makes an authenticated conn READY: its peer is found or made from the
 * HELLO, and it becomes the peer's active conn (or loses to one).  Returns
 * false when `c` was closed. */
static bool conn_activate(struct conn *c, const struct peer_hello *h)
{
    struct peer_transport *t = c->t;
    char a[PEER_MAX_NODE_ID + 1], b[PEER_MAX_NODE_ID + 1];
    struct peer *p = hello_peer(c, h);
    if (p == NULL) {
        return false;
    }
    if (c->outbound) {
        p->n_dialing--;
    }
    c->state = CONN_READY;
    c->version = h->max_version < PEER_PROTO_VERSION ? h->max_version
                                                     : PEER_PROTO_VERSION;
    evtimer_del(c->timer);
    peer_decoder_set_max_body(c->dec, t->max_body);
    bufferevent_setwatermark(c->bev, EV_WRITE, PUMP_LOW, 0);
    const char *pid = safe_id(p->id, p->id_len, a, sizeof(a));
    struct conn *old = p->active;
    if (old) {
        /* Both nodes dialed: keep the conn dialed by the smaller id (both
         * sides decide alike); between two conns dialed by the same node,
         * keep the newer (that node gave up on the older one). */
        bool c_small = conn_dialer_is_smaller(c);
        bool keep_new = c_small == conn_dialer_is_smaller(old) || c_small;
        struct conn *loser = keep_new ? old : c;
        if (keep_new) {
            p->active = c;
        }
        rk_log(RK_LOG_DEBUG, "peer_dedupe", "peer=%s kept=%s closed=%s", pid,
               keep_new ? c->addr : old->addr, loser->addr);
        conn_retire(loser);
        /* pending may hold frames of a peer merged by hello_peer. */
        evbuffer_add_buffer(bufferevent_get_output(p->active->bev), p->pending);
        peer_pump(p);
        return true;
    }
    p->active = c;
    p->attempts = 0;
    evtimer_del(p->retry_ev);
    p->st.connects++;
    t->st.connects++;
    evbuffer_add_buffer(bufferevent_get_output(c->bev), p->pending);
    peer_pump(p);
    char tls[32];
    pt__tls_describe(c, tls, sizeof(tls));
    rk_log(RK_LOG_INFO, "peer_connected",
           "peer=%s addr=%s direction=%s host=%s peer_port=%u version=%u%s",
           pid, c->addr, c->outbound ? "out" : "in",
           safe_id(h->host.ptr, h->host.len, b, sizeof(b)),
           (unsigned)h->peer_port, (unsigned)c->version, tls);
    if (t->cbs.on_peer_connected) {
        t->cbs.on_peer_connected(t->data, p->id, p->id_len, h);
    }
    return true;
}

/* ---- reading ------------------------------------------------------------ */

/* Logs a broken chunked frame and closes `c`.  Returns false. */
static bool conn_chunk_error(struct conn *c, const char *why)
{
    char a[PEER_MAX_NODE_ID + 1];
    rk_log(RK_LOG_WARN, "peer_protocol_error", "peer=%s addr=%s reason=\"%s\"",
           safe_id(c->peer->id, c->peer->id_len, a, sizeof(a)), c->addr, why);
    conn_reject(c, RK_EPROTO);
    return false;
}

/*
 * Adds a CHUNK to the frame being gathered; once complete, decodes that
 * frame (the decoder is between frames here) and hands it on like any
 * other.  Returns false when `c` was closed.
 */
static bool conn_on_chunk(struct conn *c, const struct peer_chunk *ch)
{
    struct peer_transport *t = c->t;
    struct peer *p = c->peer;
    bool done = false;
    int rc = peer_reasm_feed(&c->reasm, ch,
                             (size_t)t->max_body + PEER_HEADER_SIZE, &done);
    if (rc == RK_ENOMEM) {
        conn_close(c, RK_ENOMEM, false);
        return false;
    }
    if (rc != RK_OK) {
        return conn_chunk_error(c, "CHUNK out of order or over the limit");
    }
    if (!done) {
        return true;
    }
    struct peer_bytes fr = peer_reasm_frame(&c->reasm);
    size_t consumed = 0;
    struct peer_msg m;
    rc = peer_decoder_feed(c->dec, fr.ptr, fr.len, &consumed, &m);
    if (rc != RK_OK || consumed != fr.len || m.type == PEER_CHUNK ||
        m.type == PEER_HELLO) {
        return conn_chunk_error(c,
                                "chunked frame does not decode as one "
                                "frame");
    }
    const struct fault *f = fault_find(t, p->id, p->id_len);
    if (f && f->drop_in) {
        p->st.dropped_in++;
        t->st.dropped_in++;
    } else if (t->cbs.on_message) {
        t->cbs.on_message(t->data, p->id, p->id_len, &m);
    }
    peer_reasm_fini(&c->reasm);
    return true;
}

/* Handles one decoded frame of `len` bytes.  Returns false when `c` was
 * closed. */
static bool conn_on_frame(struct conn *c, const struct peer_msg *m, size_t len)
{
    struct peer_transport *t = c->t;
    if (c->state == CONN_HANDSHAKE) {
        return conn_on_handshake(c, m);
    }
    struct peer *p = c->peer;
    char a[PEER_MAX_NODE_ID + 1];
    if (m->type == PEER_HELLO) {
        rk_log(RK_LOG_WARN, "peer_protocol_error",
               "peer=%s addr=%s reason=\"second HELLO\"",
               safe_id(p->id, p->id_len, a, sizeof(a)), c->addr);
        conn_reject(c, RK_EPROTO);
        return false;
    }
    p->st.frames_in++;
    p->st.bytes_in += len;
    t->st.frames_in++;
    t->st.bytes_in += len;
    if (m->type == PEER_CHUNK) {
        return conn_on_chunk(c, &m->chunk);
    }
    const struct fault *f = fault_find(t, p->id, p->id_len);
    if (f && f->drop_in) {
        p->st.dropped_in++;
        t->st.dropped_in++;
        return true;
    }
    if (t->cbs.on_message) {
        t->cbs.on_message(t->data, p->id, p->id_len, m);
    }
    return true;
}

static void conn_decode_error(struct conn *c, int rc, size_t pos)
{
    if (!c->tls && c->state == CONN_HANDSHAKE &&
        pt__plain_saw_tls(c, (const unsigned char *)c->in.base + pos,
                          c->in.len - pos)) {
        return; /* a TLS peer (tls-cluster yes): logged, `c` closed */
    }
    char a[PEER_MAX_NODE_ID + 1];
    const char *pid = c->peer
                          ? safe_id(c->peer->id, c->peer->id_len, a, sizeof(a))
                          : "unknown";
    if (rc == RK_EVERSION) {
        unsigned v =
            pos + 4 < c->in.len ? (unsigned char)c->in.base[pos + 4] : 0;
        rk_log(RK_LOG_WARN, "peer_version_unsupported",
               "peer=%s addr=%s version=%u msg=\"peer %s speaks protocol "
               "version %u, this node speaks %u\"",
               pid, c->addr, v, pid, v, (unsigned)PEER_PROTO_VERSION);
    } else {
        char q[256];
        rk_log(RK_LOG_WARN, "peer_protocol_error", "peer=%s addr=%s reason=%s",
               pid, c->addr,
               rk_log_quote(peer_decoder_errmsg(c->dec), q, sizeof(q)));
    }
    conn_reject(c, rc);
}

/* Decodes and handles every complete frame in c->in.  Returns false when
 * `c` was closed. */
static bool conn_process(struct conn *c)
{
    size_t pos = 0;
    while (pos < c->in.len) {
        size_t consumed = 0;
        struct peer_msg m;
        int rc = peer_decoder_feed(c->dec, c->in.base + pos, c->in.len - pos,
                                   &consumed, &m);
        if (rc == RK_EAGAIN) {
            break;
        }
        if (rc != RK_OK) {
            conn_decode_error(c, rc, pos);
            return false;
        }
        if (!conn_on_frame(c, &m, consumed)) {
            return false;
        }
        pos += consumed;
    }
    rk_buf_consume(&c->in, pos);
    if (c->in.len == 0) {
        rk_buf_shrink(&c->in, INBUF_KEEP);
    }
    return true;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (c->state == CONN_CLOSING) {
        evbuffer_drain(in, n);
        return;
    }
    if (n > 0 && rk_buf_reserve(&c->in, n) != RK_OK) {
        conn_close(c, RK_ENOMEM, false);
        return;
    }
    int got = n > 0 ? evbuffer_remove(in, c->in.base + c->in.len, n) : 0;
    if (got > 0) {
        c->in.len += (size_t)got;
    }
    size_t more = 0;
    if (c->tls && pt__tls_drain(c, &c->in, &more) != RK_OK) {
        conn_close(c, RK_ENOMEM, false);
        return;
    }
    if (got > 0 || more > 0) {
        conn_process(c);
    }
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->state == CONN_RETIRING || c->state == CONN_CLOSING) {
        conn_shut_if_drained(c);
    } else if (c->state == CONN_READY && c->peer && c->peer->active == c) {
        peer_pump(c->peer);
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->tls && pt__tls_event(c, what)) {
        return; /* TLS's: its handshake completed, or failed (c closed) */
    }
    if (what & BEV_EVENT_CONNECTED) {
        rk_log(RK_LOG_DEBUG, "peer_tcp_connected", "addr=%s", c->addr);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        /* The other side closed its half: everything it sent has been
         * read.  Deliver what we still hold for it, then close. */
        conn_close(c, RK_ECLOSED, c->state != CONN_HANDSHAKE);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    rk_log(RK_LOG_DEBUG, "peer_socket_error", "addr=%s error=\"%s\"", c->addr,
           evutil_socket_error_to_string(err));
    conn_close(c, RK_EIO, false);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state == CONN_HANDSHAKE) {
        rk_log(RK_LOG_INFO, "peer_handshake_timeout",
               "addr=%s ms=%" PRIu32 "%s", c->addr, c->t->connect_ms,
               !c->tls     ? ""
               : c->tls_up ? " tls=up"
                           : " tls=handshaking");
    }
    conn_close(c, RK_ETIMEDOUT, false);
}

static void accept_cb(struct evconnlistener *l,
                      evutil_socket_t fd,
                      struct sockaddr *sa,
                      int socklen,
                      void *arg)
{
    (void)l;
    (void)socklen;
    struct peer_transport *t = arg;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    char addr[ADDR_LEN];
    snprintf(addr, sizeof(addr), "%s:%u", host, port);
    set_nodelay(fd);
    if (conn_new(t, fd, false, NULL, addr) == NULL) {
        rk_log(RK_LOG_WARN, "peer_accept_failed", "addr=%s reason=oom", addr);
    }
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    rk_log(RK_LOG_WARN, "peer_accept_error", "error=\"%s\"",
           evutil_socket_error_to_string(err));
}

/* ---- public API --------------------------------------------------------- */

static int listen_on(struct peer_transport *t,
                     const char *bind_host,
                     uint16_t port,
                     char *errbuf,
                     size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", (unsigned)port);
    int gai = getaddrinfo(bind_host, ps, &hints, &res);
    if (gai != 0 || res == NULL) {
        snprintf(errbuf, errlen, "cannot resolve peer bind address %s: %s",
                 bind_host, gai_strerror(gai));
        return RK_EIO;
    }
    t->listener = evconnlistener_new_bind(
        t->base, accept_cb, t,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
        res->ai_addr, (int)res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    if (t->listener == NULL) {
        snprintf(errbuf, errlen, "cannot listen on %s:%u (peer port): %s",
                 bind_host, (unsigned)port, strerror(err));
        return RK_EIO;
    }
    evconnlistener_set_error_cb(t->listener, accept_error_cb);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = evconnlistener_get_fd(t->listener);
    t->port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            t->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    return RK_OK;
}

static int config_check(const struct peer_transport_config *cfg,
                        char *errbuf,
                        size_t errlen)
{
    const char *adv = cfg->advertise_host ? cfg->advertise_host
                      : cfg->bind_host    ? cfg->bind_host
                                          : "127.0.0.1";
    size_t idl = cfg->self_id ? strlen(cfg->self_id) : 0;
    if (idl == 0 || idl > PEER_MAX_NODE_ID) {
        snprintf(errbuf, errlen, "node id must be 1..%d bytes",
                 PEER_MAX_NODE_ID);
        return RK_EINVAL;
    }
    if (cfg->cluster_name && strlen(cfg->cluster_name) > PEER_MAX_CLUSTER) {
        snprintf(errbuf, errlen, "cluster name must be 0..%d bytes",
                 PEER_MAX_CLUSTER);
        return RK_EINVAL;
    }
    if (cfg->secret == NULL || cfg->secret_len < PEER_AUTH_SECRET_MIN ||
        cfg->secret_len > PEER_AUTH_SECRET_MAX) {
        snprintf(errbuf, errlen, "a cluster secret of %d..%d bytes is required",
                 PEER_AUTH_SECRET_MIN, PEER_AUTH_SECRET_MAX);
        return RK_EINVAL;
    }
    if (strlen(adv) == 0 || strlen(adv) > PEER_MAX_HOST) {
        snprintf(errbuf, errlen, "advertised host must be 1..%d bytes",
                 PEER_MAX_HOST);
        return RK_EINVAL;
    }
    return RK_OK;
}

static int transport_init(struct peer_transport *t,
                          const struct peer_transport_config *cfg,
                          char *errbuf,
                          size_t errlen)
{
    const char *bind_host = cfg->bind_host ? cfg->bind_host : "127.0.0.1";
    const char *adv = cfg->advertise_host ? cfg->advertise_host : bind_host;
    const char *cluster = cfg->cluster_name ? cfg->cluster_name : "";
    t->self_id = rk_strdup(cfg->self_id);
    t->cluster = rk_strdup(cluster);
    if (t->self_id == NULL || t->cluster == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return RK_ENOMEM;
    }
    t->self_len = strlen(t->self_id);
    t->cluster_len = strlen(t->cluster);
    memcpy(t->secret, cfg->secret, cfg->secret_len);
    t->secret_len = cfg->secret_len;
    int rc = listen_on(t, bind_host, cfg->peer_port, errbuf, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    struct peer_msg h;
    memset(&h, 0, sizeof(h));
    h.type = PEER_HELLO;
    h.hello.node_id = (struct peer_bytes){t->self_id, t->self_len};
    h.hello.cluster_name = (struct peer_bytes){t->cluster, t->cluster_len};
    h.hello.host = (struct peer_bytes){adv, strlen(adv)};
    h.hello.resp_port = cfg->resp_port;
    h.hello.http_port = cfg->http_port;
    h.hello.peer_port = t->port;
    h.hello.max_version = PEER_PROTO_VERSION;
    rc = peer_encode(&h, &t->hello);
    if (rc != RK_OK) {
        snprintf(errbuf, errlen, "cannot encode HELLO: %s", rk_strerror(rc));
    }
    return rc;
}

int peer_transport_create(struct event_base *base,
                          const struct peer_transport_config *cfg,
                          const struct peer_transport_cbs *cbs,
                          void *data,
                          struct peer_transport **out,
                          char *errbuf,
                          size_t errlen)
{
    char dummy[1];
    if (errbuf == NULL || errlen == 0) {
        errbuf = dummy;
        errlen = sizeof(dummy);
    }
    errbuf[0] = '\0';
    if (base == NULL || cfg == NULL || out == NULL) {
        snprintf(errbuf, errlen, "invalid argument");
        return RK_EINVAL;
    }
    int rc = config_check(cfg, errbuf, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    struct peer_transport *t = rk_calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return RK_ENOMEM;
    }
    t->base = base;
    if (cbs) {
        t->cbs = *cbs;
    }
    t->data = data;
    t->max_queue = cfg->max_queue_bytes ? cfg->max_queue_bytes
                                        : PEER_TRANSPORT_DEFAULT_QUEUE;
    t->max_body =
        cfg->max_body_bytes ? cfg->max_body_bytes : PEER_DEFAULT_MAX_BODY;
    t->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                            : PEER_TRANSPORT_DEFAULT_CONNECT_MS;
    t->backoff_min_ms = cfg->backoff_min_ms
                            ? cfg->backoff_min_ms
                            : PEER_TRANSPORT_DEFAULT_BACKOFF_MIN_MS;
    t->backoff_max_ms = cfg->backoff_max_ms
                            ? cfg->backoff_max_ms
                            : PEER_TRANSPORT_DEFAULT_BACKOFF_MAX_MS;
    if (t->backoff_max_ms < t->backoff_min_ms) {
        t->backoff_max_ms = t->backoff_min_ms;
    }
    rk_buf_init(&t->hello);
    rk_buf_init(&t->scratch);
    uint64_t seed = 0;
    evutil_secure_rng_get_bytes(&seed, sizeof(seed));
    rk_rng_seed(&t->rng, seed);
    pt__tls_hold(t, cfg->tls_ctx);
    rc = transport_init(t, cfg, errbuf, errlen);
    if (rc != RK_OK) {
        peer_transport_destroy(t);
        return rc;
    }
    rk_log(RK_LOG_INFO, "peer_listening", "port=%u bind=%s tls=%s",
           (unsigned)t->port, cfg->bind_host ? cfg->bind_host : "127.0.0.1",
           t->tls_ctx ? "yes" : "no");
    *out = t;
    return RK_OK;
}

void peer_transport_destroy(struct peer_transport *t)
{
    if (t == NULL) {
        return;
    }
    while (t->conns) {
        conn_release(t->conns);
    }
    while (t->peers) {
        peer_free(t->peers);
    }
    if (t->listener) {
        evconnlistener_free(t->listener);
    }
    for (size_t i = 0; i < t->n_faults; i++) {
        rk_free(t->faults[i].id);
    }
    rk_free(t->faults);
    rk_buf_fini(&t->hello);
    rk_buf_fini(&t->scratch);
    rk_buf_fini(&t->piece);
    rk_free(t->self_id);
    rk_free(t->cluster);
    pt__tls_hold(t, NULL);
    OPENSSL_cleanse(t->secret, sizeof(t->secret));
    rk_free(t);
}

int peer_transport_set_secret(struct peer_transport *t,
                              const unsigned char *secret,
                              size_t len)
{
    if (t == NULL || secret == NULL || len < PEER_AUTH_SECRET_MIN ||
        len > PEER_AUTH_SECRET_MAX) {
        return RK_EINVAL;
    }
    OPENSSL_cleanse(t->secret, sizeof(t->secret));
    memcpy(t->secret, secret, len);
    t->secret_len = len;
    rk_log(RK_LOG_INFO, "peer_secret_changed",
           "msg=\"new connections authenticate with the new cluster secret\"");
    return RK_OK;
}

uint16_t peer_transport_port(const struct peer_transport *t)
{
    return t->port;
}

/* The peer a send goes to, created if needed.  Returns RK_OK and *out,
 * RK_ENOTFOUND or RK_ENOMEM. */
static int send_peer(struct peer_transport *t,
                     const char *node_id,
                     const char *host,
                     uint16_t port,
                     struct peer **out)
{
    size_t hl = host ? strlen(host) : 0;
    struct peer *p = NULL;
    if (node_id == NULL) {
        p = peer_by_addr(t, host, hl, port, false);
        if (p == NULL && (p = peer_new(t)) == NULL) {
            return RK_ENOMEM;
        }
    } else {
        size_t il = strlen(node_id);
        p = pt__peer_by_id(t, node_id, il);
        if (p == NULL && host) {
            /* Adopt a peer dialed by address whose id is still unknown. */
            p = peer_by_addr(t, host, hl, port, true);
            if (p == NULL && (p = peer_new(t)) == NULL) {
                return RK_ENOMEM;
            }
            if (peer_set_id(p, node_id, il) != RK_OK) {
                return RK_ENOMEM;
            }
        }
        if (p == NULL) {
            return RK_ENOTFOUND;
        }
    }
    if (host && peer_set_addr(p, host, hl, port) != RK_OK) {
        return RK_ENOMEM;
    }
    if (p->active == NULL && p->host == NULL) {
        return RK_ENOTFOUND;
    }
    *out = p;
    return RK_OK;
}

/* Checks the destination arguments shared by both send calls. */
static bool send_args_ok(const char *node_id, const char *host, uint16_t port)
{
    if (node_id && (node_id[0] == '\0' || strlen(node_id) > PEER_MAX_NODE_ID)) {
        return false;
    }
    if ((host == NULL) != (port == 0) || (node_id == NULL && host == NULL) ||
        (host && (host[0] == '\0' || strlen(host) > PEER_MAX_HOST))) {
        return false;
    }
    return true;
}

int peer_transport_send_frame(struct peer_transport *t,
                              const char *node_id,
                              const char *host,
                              uint16_t port,
                              const void *frame,
                              size_t len)
{
    if (t == NULL || frame == NULL || len < PEER_HEADER_SIZE ||
        !send_args_ok(node_id, host, port)) {
        return RK_EINVAL;
    }
    struct peer *p = NULL;
    int rc = send_peer(t, node_id, host, port, &p);
    if (rc != RK_OK) {
        return rc;
    }
    const struct fault *f = fault_find(t, p->id, p->id_len);
    if (f && f->drop_out) {
        p->st.dropped_out++;
        t->st.dropped_out++;
        return RK_OK;
    }
    /* Small frames and large ones are bounded apart, so that a large
     * transfer never makes a probe or a reply bounce: small frames by
     * max_queue over what waits in pending and the output, large ones
     * accepted while less than max_queue of them waits. */
    bool big = len > PEER_CHUNK_THRESHOLD;
    size_t queued = pt__queue_bytes(p) - p->big.bytes;
    if (big ? p->big.bytes >= t->max_queue
            : queued > 0 &&
                  (queued > t->max_queue || len > t->max_queue - queued)) {
        p->st.busy++;
        t->st.busy++;
        return RK_EBUSY;
    }
    if (big) {
        if (peer_chunkq_push(&p->big, frame, len) != RK_OK) {
            return RK_ENOMEM;
        }
        peer_pump(p);
    } else {
        struct evbuffer *dst =
            p->active ? bufferevent_get_output(p->active->bev) : p->pending;
        if (evbuffer_add(dst, frame, len) != 0) {
            return RK_ENOMEM;
        }
    }
    p->st.frames_out++;
    p->st.bytes_out += len;
    t->st.frames_out++;
    t->st.bytes_out += len;
    if (p->active == NULL) {
        peer_kick(p);
    }
    return RK_OK;
}

int peer_transport_send(struct peer_transport *t,
                        const char *node_id,
                        const char *host,
                        uint16_t port,
                        const struct peer_msg *msg)
{
    if (t == NULL || msg == NULL || !send_args_ok(node_id, host, port)) {
        return RK_EINVAL;
    }
    rk_buf_clear(&t->scratch);
    int rc = peer_encode(msg, &t->scratch);
    if (rc == RK_OK) {
        rc = peer_transport_send_frame(t, node_id, host, port, t->scratch.base,
                                       t->scratch.len);
    }
    rk_buf_clear(&t->scratch);
    rk_buf_shrink(&t->scratch, SCRATCH_KEEP);
    return rc;
}

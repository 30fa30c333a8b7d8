/*
 * server.c - the ringkvd event loop: listener, client connections, the
 * durability hand-off from the engine's sync thread, housekeeping ticks and
 * graceful shutdown.  Commands live in commands.c.
 *
 * Client life cycle:
 *
 *   accept --> READING --(batch parsed, replies in obuf)--> flush_client
 *                 ^                                  |
 *                 |            wait_seq > durable?   v
 *                 |       yes: WAITING (on srv->waiting) --durable_ev--+
 *                 |       no : obuf -> bufferevent output              |
 *                 +-----------------------<----------------------------+
 *   QUIT / protocol error / EOF: close_after_reply -> freed once the
 *   output drained (write_cb) ; socket error: freed at once (event_cb).
 *
 * Invariants:
 *  1. A reply is handed to libevent only when every write it follows on
 *     that connection is durable under the sync policy (see internal.h).
 *  2. Replies leave in request order (obuf is FIFO, held as a whole).
 *  3. A client whose pending output passes OUT_SOFT_LIMIT stops being
 *     read until its output drains below half of it (backpressure).
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/slot.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/http.h"
#include "server/internal.h"
#include "server/tls.h"

#define OUT_SOFT_LIMIT    (64u * 1024 * 1024) /* bytes pending per client */
#define QBUF_KEEP         (64u * 1024)        /* shrink idle buffers above */
#define READ_CHUNK        (16u * 1024)
#define QBUF_IDLE_KEEP    1024 /* bytes an emptied query buffer may keep */
#define SHUTDOWN_DRAIN_MS 5000
#define PREAUTH_OUT_LIMIT (64u * 1024) /* CVE-2025-21605: bytes pending */

uint64_t server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t server_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t server_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void client_free(struct client *c);
static bool client_process_input(struct client *c);
static void client_read_off(struct client *c);
static void client_read_on(struct client *c);
static void client_got_input(struct client *c);

static void waiting_add(struct server *s, struct client *c)
{
    if (c->on_waiting) {
        return;
    }
    c->on_waiting = true;
    c->wprev = NULL;
    c->wnext = s->waiting;
    if (s->waiting) {
        s->waiting->wprev = c;
    }
    s->waiting = c;
    s->stats.held_replies++;
}

static void waiting_remove(struct server *s, struct client *c)
{
    if (!c->on_waiting) {
        return;
    }
    if (c->wprev) {
        c->wprev->wnext = c->wnext;
    } else {
        s->waiting = c->wnext;
    }
    if (c->wnext) {
        c->wnext->wprev = c->wprev;
    }
    c->on_waiting = false;
    c->wprev = c->wnext = NULL;
}

/* Sends obuf[0..len) now, directly when nothing is pending.  Returns
 * false after freeing the client on a socket error. */
#define CLIENT_HANDOFF_BYTES (1024 * 1024)

/* evbuffer_add_reference's cleanup: the reply buffer a client handed
 * over (client_send) is sent. */
static void obuf_release(const void *data, size_t len, void *base)
{
    (void)data;
    (void)len;
    rk_free(base);
}

static bool client_send(struct client *c, size_t len)
{
    struct server *s = c->srv;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t off = 0;
    if (evbuffer_get_length(out) == 0 && !c->tls) {
        /* Write at once, as Redis does before the loop sleeps: saves
         * arming a write event (two epoll_ctl calls and a loop turn) per
         * reply.  Whatever the socket does not take goes to the
         * bufferevent, which keeps order from then on. */
        ssize_t n = write(c->fd, c->obuf.base, len);
        if (n > 0) {
            off = (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                   errno != EINTR) {
            client_free(c);
            return false;
        }
    }
    if (off < len && len == c->obuf.len && len - off > CLIENT_HANDOFF_BYTES) {
        /* A large reply (a chunked value): the bufferevent takes the
         * buffer itself instead of a copy of it, and frees it once sent. */
        if (evbuffer_add_reference(out, c->obuf.base + off, len - off,
                                   obuf_release, c->obuf.base) != 0) {
            client_free(c);
            return false;
        }
        rk_buf_init(&c->obuf);
        s->stats.net_output_bytes += len;
        return true;
    }
    if (off < len && evbuffer_add(out, c->obuf.base + off, len - off) != 0) {
        client_free(c);
        return false;
    }
    s->stats.net_output_bytes += len;
    rk_buf_consume(&c->obuf, len);
    return true;
}

/*
 * Hands the durable prefix of obuf to the socket; the rest stays held
 * (sync=always) behind per-batch marks, so a client streaming writes gets
 * each batch's replies as soon as that batch is durable.  May free the
 * client (socket error, or close_after_reply with nothing left to
 * write): returns false then, and `c` must not be used.
 */
static bool client_flush(struct client *c)
{
    struct server *s = c->srv;
    if (c->internal) {
        if (c->obuf.len == 0 || cluster_client_busy(c)) {
            return true;
        }
        if (c->wait_seq > engine_acked_seq(s->engine)) {
            waiting_add(s, c); /* answer once the policy covers it */
            server_want_handoff(s);
            return true;
        }
        waiting_remove(s, c);
        c->ready(c, c->ready_data); /* frees c */
        return false;
    }
    uint64_t durable = engine_acked_seq(s->engine);
    size_t sendable = c->obuf.len;
    if (c->wait_seq > durable) {
        size_t last = c->n_marks ? c->marks[c->n_marks - 1].off : 0;
        if (c->obuf.len > last) {
            size_t i = c->n_marks < 16 ? c->n_marks++ : 15;
            c->marks[i].off = c->obuf.len;
            c->marks[i].seq = c->wait_seq;
        }
        size_t k = 0;
        sendable = 0;
        while (k < c->n_marks && c->marks[k].seq <= durable) {
            sendable = c->marks[k].off;
            k++;
        }
        for (size_t j = k; j < c->n_marks; j++) {
            c->marks[j - k].off = c->marks[j].off - sendable;
            c->marks[j - k].seq = c->marks[j].seq;
        }
        c->n_marks -= k;
    } else {
        c->n_marks = 0;
    }
    if (sendable > 0) {
        if (!client_send(c, sendable)) {
            return false;
        }
        rk_buf_shrink(&c->obuf, QBUF_KEEP);
    }
    if (c->obuf.len > 0) {
        waiting_add(s, c);
        server_want_handoff(s);
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t pending = evbuffer_get_length(out);
    if (c->close_after_reply && pending == 0 && c->obuf.len == 0) {
        client_free(c);
        return false;
    }
    if (!c->authed && pending > PREAUTH_OUT_LIMIT) {
        /* An unauthenticated client that does not read its replies must
         * not pin server memory (Redis CVE-2025-21605). */
        rk_log(RK_LOG_WARN, "preauth_output_limit",
               "client=%s id=%" PRIu64 " pending=%zu", c->addr, c->id, pending);
        client_free(c);
        return false;
    }
    if (c->close_after_reply) {
        client_read_off(c);
    } else if (pending + c->obuf.len > OUT_SOFT_LIMIT && !c->read_paused) {
        /* Backpressure: counts replies held for durability too. */
        c->read_paused = true;
        client_read_off(c);
        bufferevent_setwatermark(c->bev, EV_WRITE, OUT_SOFT_LIMIT / 2, 0);
    }
    return true;
}

/* Resumes reading a paused client once its output is below half the soft
 * limit.  May free the client: returns false then. */
static bool client_maybe_resume(struct client *c)
{
    size_t pending = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (!c->read_paused || pending + c->obuf.len > OUT_SOFT_LIMIT / 2) {
        return true;
    }
    c->read_paused = false;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (!c->srv->shutting_down && !c->close_after_reply && !c->auth_held) {
        client_read_on(c);
    }
    return client_process_input(c);
}

static void process_waiting(struct server *s)
{
    uint64_t durable = engine_acked_seq(s->engine);
    struct client *c = s->waiting;
    while (c) {
        struct client *next = c->wnext;
        if (c->internal) {
            if (c->wait_seq <= durable) {
                client_flush(c); /* answers and frees it */
            }
        } else if (c->n_marks == 0 || c->marks[0].seq <= durable) {
            waiting_remove(s, c);
            if (client_flush(c)) {
                client_maybe_resume(c);
            }
        }
        c = next;
    }
}

static void durable_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct server *s = arg;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    process_waiting(s);
    cluster_on_durable(s);
}

static void fail_waiting_if_read_only(struct server *s);

void server_want_handoff(struct server *s)
{
    if (!s->handoff_pending && s->handoff_ev &&
        s->cfg->sync_mode != ENGINE_SYNC_ALWAYS) {
        s->handoff_pending = true;
        event_active(s->handoff_ev, EV_TIMEOUT, 0);
    }
}

/* The end of a loop pass with writes waiting in the write buffers: hand
 * them to the OS, then release what waited for them (internal.h). */
static void handoff_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    s->handoff_pending = false;
    int rc = engine_handoff(s->engine);
    int hrc = cluster_handoff(s);
    process_waiting(s);
    cluster_on_durable(s);
    if (rc != RK_OK || hrc != RK_OK) {
        fail_waiting_if_read_only(s);
    }
}

/* Engine sync thread: wake the loop. */
static void engine_durable(void *data, uint64_t seq)
{
    (void)seq;
    struct server *s = data;
    uint64_t one = 1;
    ssize_t n = write(s->durable_efd, &one, sizeof(one));
    (void)n;
}

static void client_free(struct client *c)
{
    struct server *s = c->srv;
    cluster_client_gone(c);
    waiting_remove(s, c);
    if (!c->internal) {
        if (c->prev) {
            c->prev->next = c->next;
        } else {
            s->clients = c->next;
        }
        if (c->next) {
            c->next->prev = c->prev;
        }
        s->n_clients--;
        if (c->rev != NULL) {
            event_free(c->rev);
        }
        bufferevent_free(c->bev); /* and the SSL of a TLS client */
    }
    if (c->hold_ev != NULL) {
        event_free(c->hold_ev);
    }
    resp_parser_destroy(c->parser);
    rk_buf_fini(&c->qbuf);
    rk_buf_fini(&c->obuf);
    multi_reset(c);
    server_client_set_user(c, NULL);
    rk_free(c->name);
    rk_free(c->lib_name);
    rk_free(c->lib_ver);
    rk_free(c);
}

#define DONATE_BYTES (1024 * 1024)
/* bytes of read-ahead TLS records one read callback takes (tls_drain) */
#define TLS_CLIENT_DRAIN_MAX (256u * 1024)

/*
 * A command of `consumed` bytes at qbuf[pos] is large (a value a cluster
 * stores in chunks): detaches the input buffer holding it so that the
 * coordinated operation can take it instead of copying it
 * (c->donated), and leaves in qbuf only the bytes after it.  Only a
 * multibulk frame whose every argument is followed by its CR in the
 * buffer qualifies: the CRs become the NULs op_create_owned wants.
 * false: nothing changed (the caller copies as usual).
 */
static bool donate_input(struct client *c,
                         size_t pos,
                         size_t consumed,
                         const struct resp_cmd *cmd)
{
    char *lo = c->qbuf.base + pos, *hi = lo + consumed;
    for (size_t i = 0; i < cmd->argc; i++) {
        const char *p = cmd->argv[i].ptr;
        if (p < lo || p > hi || (size_t)(hi - p) <= cmd->argv[i].len ||
            p[cmd->argv[i].len] != '\r') {
            return false;
        }
    }
    struct rk_buf rest;
    rk_buf_init(&rest);
    size_t after = c->qbuf.len - pos - consumed;
    if (after && rk_buf_append(&rest, hi, after) != RK_OK) {
        return false;
    }
    for (size_t i = 0; i < cmd->argc; i++) {
        ((char *)cmd->argv[i].ptr)[cmd->argv[i].len] = '\0';
    }
    c->donated = c->qbuf.base;
    c->donated_len = pos + consumed;
    c->qbuf = rest;
    return true;
}

static void client_hold_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct client *c = arg;
    c->auth_held = false;
    c->auth_turn = true; /* its wait is over: others' failures meanwhile
                            do not hold it again */
    if (!c->srv->shutting_down && !c->close_after_reply && !c->read_paused) {
        client_read_on(c);
    }
    client_process_input(c);
}

/* Holds a not-yet-authenticated client, or one whose last AUTH failed,
 * while its IP waits out failed AUTHs (auth_guard.h): nothing is read or
 * run until the timer.  Returns true when held. */
static bool client_auth_hold(struct client *c)
{
    char ip[AUTH_GUARD_IP_MAX];
    auth_guard_ip(c->addr, ip);
    uint64_t wait =
        auth_guard_wait_ms(&c->srv->auth_guard, ip, server_mono_ms());
    if (wait == 0 || c->internal) {
        return false;
    }
    if (c->hold_ev == NULL) {
        c->hold_ev = evtimer_new(c->srv->base, client_hold_cb, c);
        if (c->hold_ev == NULL) {
            return false;
        }
    }
    c->auth_held = true;
    client_read_off(c);
    struct timeval tv = {(time_t)(wait / 1000),
                         (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(c->hold_ev, &tv);
    return true;
}

/* Parses and runs what qbuf holds; returns false if the client was freed. */
static bool client_process_input(struct client *c)
{
    size_t pos = 0;
    c->last_ms = server_mono_ms();
    while (!c->close_after_reply && !c->read_paused && !c->auth_held &&
           !cluster_client_blocked(c) && pos < c->qbuf.len) {
        if (((!c->authed && server_auth_required(c->srv)) ||
             c->auth_failed_here) &&
            !c->auth_turn && client_auth_hold(c)) {
            break; /* its IP failed AUTH too often: later */
        }
        size_t consumed = 0;
        struct resp_cmd cmd;
        int rc = resp_parser_feed(c->parser, c->qbuf.base + pos,
                                  c->qbuf.len - pos, &consumed, &cmd);
        if (rc == RK_OK) {
            c->auth_turn = false; /* one command per wait */
            c->n_commands++;
            c->srv->stats.total_commands++;
            if (consumed > DONATE_BYTES &&
                donate_input(c, pos, consumed, &cmd)) {
                /* qbuf now holds only what followed the command */
                command_dispatch(c, cmd.argc, cmd.argv);
                rk_free(c->donated);
                c->donated = NULL;
                pos = 0;
                continue;
            }
            pos += consumed;
            command_dispatch(c, cmd.argc, cmd.argv);
            continue;
        }
        if (rc == RK_EAGAIN) {
            /* No reservation from a declared length: the buffer grows as
             * bytes arrive (a stalled "$536870912" costs nothing). */
            pos += consumed;
            break;
        }
        c->srv->stats.protocol_errors++;
        if (rc == RK_EPROTO) {
            reply_errorf(c, "ERR %s", resp_parser_errmsg(c->parser));
        } else {
            reply_error(c, "ERR out of memory");
        }
        rk_log(RK_LOG_INFO, "protocol_error",
               "client=%s id=%" PRIu64 " reason=\"%s\"", c->addr, c->id,
               rc == RK_EPROTO ? resp_parser_errmsg(c->parser) : "oom");
        c->close_after_reply = true;
        pos = c->qbuf.len;
    }
    rk_buf_consume(&c->qbuf, pos);
    if (c->qbuf.len == 0) {
        rk_buf_shrink(&c->qbuf, QBUF_IDLE_KEEP);
    }
    return client_flush(c);
}

bool server_client_resume(struct client *c)
{
    return client_process_input(c);
}

struct client *server_client_internal(struct server *s,
                                      void (*ready)(struct client *, void *),
                                      void *data)
{
    struct client *c = rk_calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    op_client_init(&c->ops, c);
    c->srv = s;
    c->fd = -1;
    c->internal = true;
    c->ready = ready;
    c->ready_data = data;
    c->id = ++s->next_client_id;
    c->proto = 2;
    c->authed = true;
    server_client_set_user(c, acl_default_user(s->acl));
    c->ks = &s->local_ks;
    c->created_ms = c->last_ms = server_mono_ms();
    rk_buf_init(&c->qbuf);
    rk_buf_init(&c->obuf);
    snprintf(c->addr, sizeof(c->addr), "http");
    return c;
}

void server_client_free(struct client *c)
{
    client_free(c);
}

/* Stops/starts reading a client (our own read event, see accept_cb). */
static void client_read_off(struct client *c)
{
    if (c->tls) {
        bufferevent_disable(c->bev, EV_READ);
    } else {
        event_del(c->rev);
    }
}

static void client_read_on(struct client *c)
{
    if (c->tls) {
        bufferevent_enable(c->bev, EV_READ);
    } else {
        event_add(c->rev, NULL);
    }
}

/* The peer closed its sending side (or reset). */
static void client_eof(struct client *c)
{
    /* Half-close: still deliver replies to what was already read. */
    size_t pending = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (c->obuf.len > 0 || pending > 0) {
        c->close_after_reply = true;
        client_read_off(c);
        return;
    }
    client_free(c);
}

/*
 * Reads straight from the socket into qbuf: one read() per readiness, no
 * intermediate evbuffer copy and no FIONREAD ioctl (libevent's
 * evbuffer_read does one per read).  The bufferevent is used for output
 * only.
 */
static void client_sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct client *c = arg;
    struct server *s = c->srv;
    /* Read into the client's buffer when it has room (a large bulk in
     * progress), else into the server's shared read buffer and append
     * just what came: an idle connection keeps no 16 KiB buffer. */
    bool direct = c->qbuf.cap - c->qbuf.len > READ_CHUNK;
    char *dst = direct ? c->qbuf.base + c->qbuf.len : s->rbuf;
    size_t room = direct ? c->qbuf.cap - c->qbuf.len - 1 : sizeof(s->rbuf);
    ssize_t n = read(fd, dst, room);
    if (n == 0) {
        client_eof(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return;
        }
        client_free(c);
        return;
    }
    s->stats.net_input_bytes += (uint64_t)n;
    if (!direct) {
        if (rk_buf_append(&c->qbuf, s->rbuf, (size_t)n) != RK_OK) {
            client_free(c);
            return;
        }
    } else {
        c->qbuf.len += (size_t)n;
        c->qbuf.base[c->qbuf.len] = '\0';
    }
    client_got_input(c);
}

/* A TLS client's decrypted input (its bufferevent's read callback). */
static void client_tls_read_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (c->close_after_reply) {
        evbuffer_drain(in, n);
        return;
    }
    if (rk_buf_reserve(&c->qbuf, n + 1) != RK_OK) {
        client_free(c);
        return;
    }
    int got = evbuffer_remove(in, c->qbuf.base + c->qbuf.len, n);
    if (got > 0) {
        c->qbuf.len += (size_t)got;
        c->srv->stats.net_input_bytes += (uint64_t)got;
    }
    /* the records read ahead that libevent left in OpenSSL (tls.h) */
    size_t more = 0;
    if (tls_drain(bev, &c->qbuf, TLS_CLIENT_DRAIN_MAX, &more) != RK_OK ||
        rk_buf_reserve(&c->qbuf, 1) != RK_OK) {
        client_free(c);
        return;
    }
    c->srv->stats.net_input_bytes += more;
    c->qbuf.base[c->qbuf.len] = '\0';
    client_got_input(c);
}

/* What a read appended to qbuf: checked against the query buffer limit,
 * then parsed and run. */
static void client_got_input(struct client *c)
{
    struct server *s = c->srv;
    if (c->qbuf.len > s->cfg->client_query_buffer_limit) {
        rk_log(RK_LOG_WARN, "query_buffer_limit",
               "client=%s id=%" PRIu64 " bytes=%zu", c->addr, c->id,
               c->qbuf.len);
        rk_buf_clear(&c->qbuf);
        reply_error(c, "ERR client query buffer limit exceeded");
        c->close_after_reply = true;
        client_flush(c);
        return;
    }
    client_process_input(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    size_t pending = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->close_after_reply && c->obuf.len == 0 && pending == 0) {
        client_free(c);
        return;
    }
    client_maybe_resume(c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* a TLS client's handshake completed; requests read ahead with
         * its last message get no read callback of their own */
        tls_read_pending(bev);
        return;
    }
    if (what & BEV_EVENT_EOF && !(what & BEV_EVENT_ERROR)) {
        client_eof(c);
        return;
    }
    if (c->tls && c->n_commands == 0) {
        /* most likely a failed handshake: no certificate, an old
         * protocol, an unknown CA, or not TLS at all */
        c->srv->tls_handshake_failures++;
        unsigned long e = bufferevent_get_openssl_error(bev);
        char why[256] = "";
        if (e != 0) {
            ERR_error_string_n(e, why, sizeof(why));
        }
        rk_log(RK_LOG_DEBUG, "tls_handshake_failed", "client=%s reason=\"%s\"",
               c->addr, why[0] ? why : "closed");
    }
    client_free(c);
}

/* A new connection on the RESP port (`tls` false) or the TLS port. */
static void client_accept(struct server *s,
                          evutil_socket_t fd,
                          struct sockaddr *sa,
                          bool tls)
{
    if (s->n_clients >= s->cfg->maxclients || s->shutting_down) {
        static const char msg[] = "-ERR max number of clients reached\r\n";
        if (!tls) { /* a TLS client could not read it before a handshake */
            ssize_t w = write(fd, msg, sizeof(msg) - 1);
            (void)w;
        }
        evutil_closesocket(fd);
        s->stats.rejected_connections++;
        return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    bool remote = !auth_guard_is_loopback(host);
    if (s->cfg->protected_mode && !server_auth_required(s) && remote &&
        !(tls && s->cfg->tls_auth_clients == 1)) {
        /* Redis's protected mode: without a password, remote clients get
         * the reason and are closed (a TLS client whose certificate is
         * required is authenticated by it); counted, logged once a
         * minute */
        if (!tls) {
            ssize_t w = write(fd, PROTECTED_MODE_DENIED,
                              sizeof(PROTECTED_MODE_DENIED) - 1);
            (void)w;
        }
        evutil_closesocket(fd);
        s->stats.rejected_connections++;
        s->stats.protected_denied++;
        uint64_t now = server_mono_ms();
        if (s->stats.protected_logged_ms == 0 ||
            now >= s->stats.protected_logged_ms + 60000) {
            s->stats.protected_logged_ms = now;
            rk_log(RK_LOG_WARN, "protected_mode_denied",
                   "client=%s:%d total=%" PRIu64
                   " msg=\"a remote client was refused: no password is set "
                   "(set requirepass, or protected-mode no)\"",
                   host, port, s->stats.protected_denied);
        }
        return;
    }
    struct client *c = rk_calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    op_client_init(&c->ops, c);
    if (tls) {
        SSL *ssl = tls_ssl_new(s->tls_ctx);
        c->bev = ssl ? bufferevent_openssl_socket_new(s->base, fd, ssl,
                                                      BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        tls_set_read_ahead(c->bev); /* one read() per batch of records */
        /* libevent owns ssl from the call on and frees it itself when the
         * call fails; fd is closed below then */
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    bool authed = !server_auth_required(s);
    if (c->bev == NULL || resp_parser_create(authed ? &s->limits : &s->preauth,
                                             &c->parser) != RK_OK) {
        if (c->bev) {
            bufferevent_free(c->bev);
        } else {
            evutil_closesocket(fd);
        }
        rk_free(c);
        return;
    }
    c->tls = tls;
    if (!tls) {
        c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST,
                           client_sock_read_cb, c);
        if (c->rev == NULL) {
            resp_parser_destroy(c->parser);
            bufferevent_free(c->bev);
            rk_free(c);
            return;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->srv = s;
    c->fd = fd;
    c->id = ++s->next_client_id;
    c->proto = 2;
    c->authed = authed;
    if (authed) {
        server_client_set_user(c, acl_default_user(s->acl));
    }
    c->ks = &s->local_ks;
    c->created_ms = c->last_ms = server_mono_ms();
    rk_buf_init(&c->qbuf);
    rk_buf_init(&c->obuf);
    snprintf(c->addr, sizeof(c->addr), "%s:%d", host, port);
    c->next = s->clients;
    if (s->clients) {
        s->clients->prev = c;
    }
    s->clients = c;
    s->n_clients++;
    s->stats.total_connections++;
    if (tls) {
        bufferevent_setcb(c->bev, client_tls_read_cb, client_write_cb,
                          client_event_cb, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    } else {
        bufferevent_setcb(c->bev, NULL, client_write_cb, client_event_cb, c);
        bufferevent_enable(c->bev, EV_WRITE);
        client_read_on(c);
    }
}

static void accept_cb(struct evconnlistener *l,
                      evutil_socket_t fd,
                      struct sockaddr *sa,
                      int socklen,
                      void *arg)
{
    (void)l;
    (void)socklen;
    client_accept(arg, fd, sa, false);
}

static void tls_accept_cb(struct evconnlistener *l,
                          evutil_socket_t fd,
                          struct sockaddr *sa,
                          int socklen,
                          void *arg)
{
    (void)l;
    (void)socklen;
    client_accept(arg, fd, sa, true);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        /* Out of descriptors: stop accepting until the next tick instead
         * of spinning on a listener that stays readable. */
        evconnlistener_disable(l);
        s->listener_paused = true;
    }
    uint64_t now = server_mono_ms();
    if (now - s->accept_errors_logged_ms >= 1000) {
        s->accept_errors_logged_ms = now;
        rk_log(RK_LOG_WARN, "accept_error", "error=\"%s\" paused=%d",
               evutil_socket_error_to_string(err), s->listener_paused);
    }
}

/* Closes the clients whose user ACL DELUSER or ACL LOAD removed. */
static void acl_kill_check(struct server *s)
{
    if (!s->acl_kill_pending) {
        return;
    }
    s->acl_kill_pending = false;
    struct client *c = s->clients;
    while (c) {
        struct client *next = c->next;
        if (c->acl_killed) {
            rk_log(RK_LOG_INFO, "client_closed_acl",
                   "client=%s id=%" PRIu64 " reason=\"its user was removed\"",
                   c->addr, c->id);
            client_free(c);
        }
        c = next;
    }
}

static void idle_check(struct server *s)
{
    if (s->cfg->timeout_s == 0) {
        return;
    }
    uint64_t now = server_mono_ms();
    uint64_t limit = (uint64_t)s->cfg->timeout_s * 1000u;
    struct client *c = s->clients;
    while (c) {
        struct client *next = c->next;
        if (now - c->last_ms > limit && !c->on_waiting && !c->in_multi) {
            rk_log(RK_LOG_DEBUG, "client_idle_timeout", "client=%s", c->addr);
            client_free(c);
        }
        c = next;
    }
}

static void begin_shutdown(struct server *s, const char *why);

/*
 * After a failed write or fsync the engine is read-only and its durable
 * sequence never advances again: the replies held for durability can
 * never be sent.  Tell those clients and close them instead of leaving
 * them hanging (Redis stops the server on an AOF fsync error under
 * appendfsync always; we keep serving reads).
 */
static void fail_waiting_if_read_only(struct server *s)
{
    if (s->waiting == NULL) {
        return;
    }
    if (!engine_read_only(s->engine)) {
        return;
    }
    struct client *c = s->waiting;
    while (c) {
        struct client *next = c->wnext;
        waiting_remove(s, c);
        rk_buf_clear(&c->obuf);
        c->n_marks = 0;
        c->wait_seq = 0;
        reply_error(c,
                    "ERR write not durable: storage is read-only after "
                    "an I/O error (see the server log)");
        c->close_after_reply = true;
        client_flush(c);
        c = next;
    }
}

/* engine_recover of one engine after a full disk; logs the outcome. */
static void recover_engine(struct engine *e, const char *dir)
{
    struct engine_stats st;
    engine_stats(e, &st);
    if (!st.read_only || st.error != RK_ENOSPC) {
        return; /* an I/O error needs a restart (engine.h) */
    }
    char err[256];
    uint64_t t0 = server_mono_ms();
    int rc = engine_recover(e, err, sizeof(err));
    if (rc == RK_OK) {
        rk_log(RK_LOG_INFO, "storage_recovered",
               "dir=%s ms=%" PRIu64
               " msg=\"space returned: writes are "
               "taken again\"",
               dir, server_mono_ms() - t0);
    } else {
        rk_log(RK_LOG_WARN, "storage_recover_failed",
               "dir=%s error=%s reason=\"%s\"", dir, rk_errname(rc), err);
    }
}

/*
 * Issue 12 item 3: an engine read-only after a full disk is recovered in
 * place once free space is above the low-water mark again (tried every
 * DISK_RECOVER_EVERY ms).  What waits for a write made before the failure
 * was never acknowledged and is refused first (engine_recover).
 */
static void recover_storage(struct server *s)
{
    struct engine *hints = cluster_hint_store(s);
    uint64_t now = server_mono_ms();
    if ((!engine_read_only(s->engine) && !(hints && engine_read_only(hints))) ||
        now < s->recover_at_ms || !disk_has_room(&s->disk)) {
        return;
    }
    s->recover_at_ms = now + DISK_RECOVER_EVERY;
    fail_waiting_if_read_only(s);
    cluster_on_durable(s); /* the node refuses the acks it held */
    recover_engine(s->engine, s->cfg->data_dir);
    if (hints) {
        recover_engine(hints, s->cfg->data_dir);
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    uint64_t now_us = server_mono_us();
    if (s->last_tick_us && !s->shutting_down) {
        uint64_t period = 1000000u / s->cfg->hz;
        uint64_t gap = now_us - s->last_tick_us;
        uint64_t lag = gap > period ? gap - period : 0;
        lat_observe(&s->stats.loop_lag, lag);
        if (lag > s->stats.loop_lag_max_us) {
            s->stats.loop_lag_max_us = lag;
        }
    }
    s->last_tick_us = now_us;
    if (s->shutdown_why && !s->shutting_down) {
        begin_shutdown(s, s->shutdown_why);
        return;
    }
    if (s->listener_paused && s->listener) {
        s->listener_paused = false;
        evconnlistener_enable(s->listener);
    }
    int rc = engine_tick(s->engine);
    if (rc != RK_OK) {
        rk_log(RK_LOG_ERROR, "engine_tick_failed", "error=\"%s\"",
               rk_strerror(rc));
    }
    fail_waiting_if_read_only(s);
    disk_watch_check(&s->disk, s->cfg->data_dir, &s->cfg->disk_low_water,
                     server_mono_ms());
    recover_storage(s);
    cluster_storage_check(s);
    if (s->shutting_down) {
        bool drained = true;
        for (struct client *c = s->clients; c; c = c->next) {
            if (c->obuf.len ||
                evbuffer_get_length(bufferevent_get_output(c->bev))) {
                drained = false;
            }
        }
        if (drained ||
            server_mono_ms() - s->shutdown_start_ms > SHUTDOWN_DRAIN_MS) {
            event_base_loopbreak(s->base);
        }
        return;
    }
    /* Active expiry: a slice of the keyspace per tick, more while many
     * sampled keys turn out to be expired (Redis's adaptive cycle); no
     * walk at all while no key has a TTL (expire_cycle). */
    for (int round = 0; round < 16; round++) {
        size_t expired = expire_cycle(s, 2000);
        if (expired < 500) {
            break;
        }
    }
    acl_kill_check(s);
    idle_check(s);
}

void server_shutdown(struct server *s, const char *why)
{
    s->shutdown_why = why;
    event_active(s->tick_ev, EV_TIMEOUT, 1);
}

void server_rearm_tick(struct server *s)
{
    if (s->shutting_down) {
        return;
    }
    struct timeval tv = {0, (long)(1000000u / s->cfg->hz)};
    event_add(s->tick_ev, &tv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    begin_shutdown(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void begin_shutdown(struct server *s, const char *why)
{
    if (s->shutting_down) {
        return;
    }
    s->shutting_down = true;
    rk_log(RK_LOG_INFO, "shutdown_begin", "signal=%s clients=%zu", why,
           s->n_clients);
    if (s->listener) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
    if (s->tls_listener) {
        evconnlistener_free(s->tls_listener);
        s->tls_listener = NULL;
    }
    /* Requests already read have been executed (dispatch is synchronous);
     * stop reading more, make everything durable, release held replies. */
    for (struct client *c = s->clients; c; c = c->next) {
        client_read_off(c);
    }
    int rc = engine_sync(s->engine);
    if (rc != RK_OK) {
        rk_log(RK_LOG_ERROR, "shutdown_sync_failed", "error=\"%s\"",
               rk_strerror(rc));
    }
    process_waiting(s);
    s->shutdown_start_ms = server_mono_ms();
    struct timeval tv = {0, 20 * 1000};
    event_add(s->tick_ev, &tv);
}

/* A listener on bind:port calling cb (the RESP port or the TLS port), or
 * NULL after printing why; `what` goes after the address in the error. */
static struct evconnlistener *listen_tcp(struct server *s,
                                         int port,
                                         evconnlistener_cb cb,
                                         const char *what)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int gai = getaddrinfo(s->cfg->bind, ps, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "ringkvd: error: cannot resolve bind address %s: %s\n",
                s->cfg->bind, gai_strerror(gai));
        return NULL;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        s->base, cb, s,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
        res->ai_addr, (int)res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    if (l == NULL) {
        fprintf(stderr, "ringkvd: error: cannot listen on %s:%d%s: %s\n",
                s->cfg->bind, port, what, strerror(err));
        return NULL;
    }
    evconnlistener_set_error_cb(l, accept_error_cb);
    return l;
}

/* The TLS port (tls-port), when set: its context, then its listener. */
static int open_tls_listener(struct server *s)
{
    const struct rk_config *cfg = s->cfg;
    if (cfg->tls_port == 0 && cfg->https_port == 0) {
        return 0;
    }
    char err[1024] = "";
    s->tls_ctx = tls_ctx_new(cfg, err, sizeof(err));
    if (s->tls_ctx == NULL) {
        fprintf(stderr, "ringkvd: error: TLS: %s\n", err);
        return -1;
    }
    if (cfg->tls_port == 0) {
        return 0; /* the context is for https-port only */
    }
    s->tls_listener = listen_tcp(s, cfg->tls_port, tls_accept_cb, " (TLS)");
    if (s->tls_listener == NULL) {
        return -1;
    }
    rk_log(RK_LOG_INFO, "tls_listening",
           "port=%d bind=%s auth_clients=%s protocols=\"%s\"", cfg->tls_port,
           cfg->bind,
           cfg->tls_auth_clients == 1   ? "yes"
           : cfg->tls_auth_clients == 2 ? "optional"
                                        : "no",
           cfg->tls_protocols[0] ? cfg->tls_protocols : "TLSv1.2 TLSv1.3");
    return 0;
}

int server_tls_reload(struct server *s,
                      const struct rk_config *cfg,
                      char *why,
                      size_t why_len)
{
    /* every new context is made and checked before any is applied */
    SSL_CTX *ctx = NULL, *peers = NULL;
    if (s->tls_ctx && (ctx = tls_ctx_new(cfg, why, why_len)) == NULL) {
        return RK_EINVAL;
    }
    if (cluster_tls_prepare(s, cfg, NULL, &peers, why, why_len) != RK_OK) {
        tls_ctx_free(ctx);
        return RK_EINVAL;
    }
    cluster_tls_set(s, peers);
    if (ctx == NULL) {
        return RK_OK; /* no TLS port: the files are read at the next start */
    }
    tls_ctx_free(s->tls_ctx); /* connections keep their reference */
    s->tls_ctx = ctx;
    rk_log(RK_LOG_INFO, "tls_reloaded",
           "msg=\"new TLS connections use the new certificates and settings\"");
    return RK_OK;
}

static int open_listener(struct server *s)
{
    s->listener = listen_tcp(s, s->cfg->port, accept_cb, "");
    return s->listener ? open_tls_listener(s) : -1;
}

/* mkdir -p for the parents of `dir` (the engine creates dir itself). */
static void make_parents(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0700);
            *p = '/';
        }
    }
}

static void raise_fd_limit(uint32_t maxclients)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t want = (rlim_t)maxclients + 64;
    if (rl.rlim_cur >= want) {
        return;
    }
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        rk_log(RK_LOG_WARN, "fd_limit",
               "maxclients=%" PRIu32
               " fd_limit=%llu msg=\"fewer file "
               "descriptors than maxclients needs\"",
               maxclients, (unsigned long long)rl.rlim_cur);
    }
}

static const char *sync_name(const struct rk_config *c, char *buf, size_t n)
{
    if (c->sync_mode == ENGINE_SYNC_ALWAYS) {
        return "always";
    }
    if (c->sync_mode == ENGINE_SYNC_NONE) {
        return "none";
    }
    snprintf(buf, n, "every:%" PRIu32, c->sync_interval_ms);
    return buf;
}

int server_run(struct rk_config *cfg)
{
    struct server srv;
    struct server *s = &srv;
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->durable_efd = -1;
    s->start_ms = server_now_ms();
    s->start_mono_ms = server_mono_ms();
    rk_buf_init(&s->scratch);
    hlc_init(&s->clock);
    keyspace_local_init(&s->local_ks, s);
    resp_limits_default(&s->limits);
    s->limits.max_bulk = cfg->proto_max_bulk_len;
    s->preauth = s->limits;
    s->preauth.max_args = 10; /* Redis 7: CVE-2021-32675 */
    s->preauth.max_bulk = 16384;
    s->preauth.max_inline = 16384;
    s->preauth.unauthenticated = true;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg->maxclients);

    char syncbuf[32];
    char nid[80];
    cluster_peek_node_id(cfg, nid, sizeof(nid));
    rk_log_set_node(nid);
    rk_log(RK_LOG_INFO, "starting",
           "version=%s pid=%d port=%d bind=%s data_dir=%s engine=%s sync=%s",
           RINGKV_VERSION, (int)getpid(), cfg->port, cfg->bind, cfg->data_dir,
           cfg->engine, sync_name(cfg, syncbuf, sizeof(syncbuf)));

    int exit_code = 1;
    s->cmdstats = rk_calloc(command_count(), sizeof(*s->cmdstats));
    s->durable_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->durable_efd < 0) {
        fprintf(stderr, "ringkvd: eventfd: %s\n", strerror(errno));
        goto out;
    }
    struct engine_opts eo;
    engine_opts_init(&eo);
    eo.dir = cfg->data_dir;
    eo.sync_mode = cfg->sync_mode;
    eo.sync_interval_ms = cfg->sync_interval_ms;
    eo.max_file_size = cfg->max_file_size;
    eo.merge_dead_ratio = cfg->merge_dead_ratio;
    /* room for a versioned object's overhead around a maximal value (a
     * client value itself is bounded by proto_max_bulk_len) */
    eo.max_value_len = cfg->proto_max_bulk_len + 65536;
    eo.repair = cfg->repair;
    eo.durable_cb = engine_durable;
    eo.durable_data = s;
    /* the slot index: CLUSTER COUNTKEYSINSLOT/GETKEYSINSLOT, and a
     * partition's keys (a contiguous slot range) for handoff (issue 14) */
    eo.slot_fn = slot_of_key;
    eo.n_slots = SLOT_COUNT;
    make_parents(cfg->data_dir);
    char err[1024] = "";
    if (disk_check_data_dir(cfg->data_dir, err, sizeof(err)) != RK_OK) {
        fprintf(stderr, "ringkvd: error: %s\n", err[0] ? err : cfg->data_dir);
        goto out;
    }
    if (server_acl_init(s, err, sizeof(err)) != RK_OK) {
        fprintf(stderr, "ringkvd: error: aclfile: %s\n", err);
        goto out;
    }
    uint64_t t0 = server_mono_ms();
    int rc = engine_open(cfg->engine, &eo, &s->engine, err, sizeof(err));
    if (rc != RK_OK) {
        fprintf(stderr, "ringkvd: error: cannot open %s engine in %s: %s\n",
                cfg->engine, cfg->data_dir, err[0] ? err : rk_strerror(rc));
        goto out;
    }
    struct engine_stats st;
    engine_stats(s->engine, &st);
    rk_log(RK_LOG_INFO, "engine_open",
           "engine=%s keys=%" PRIu64 " files=%" PRIu64 " ms=%" PRIu64
           " truncated_bytes=%" PRIu64 " hint_fallbacks=%" PRIu64,
           cfg->engine, st.live_keys, st.files, server_mono_ms() - t0,
           st.recovered_truncated_bytes, st.hint_fallbacks);

    /* The epoll changelist folds the add/delete of a write event within one
     * loop pass into at most one epoll_ctl: without it a peer link that
     * sends one reply per pass pays two epoll_ctl calls per message.  (Its
     * documented caveat, fds shared through dup(), does not apply here.) */
    struct event_config *ecfg = event_config_new();
    if (ecfg) {
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        s->base = event_base_new_with_config(ecfg);
        event_config_free(ecfg);
    }
    if (s->base == NULL) {
        fprintf(stderr, "ringkvd: error: cannot create event loop\n");
        goto out;
    }
    if (open_listener(s) != 0) {
        goto out;
    }
    s->durable_ev = event_new(s->base, s->durable_efd, EV_READ | EV_PERSIST,
                              durable_ev_cb, s);
    s->handoff_ev = event_new(s->base, -1, 0, handoff_cb, s);
    s->tick_ev = event_new(s->base, -1, EV_PERSIST, tick_cb, s);
    s->sig_ev[0] = evsignal_new(s->base, SIGTERM, signal_cb, s);
    s->sig_ev[1] = evsignal_new(s->base, SIGINT, signal_cb, s);
    if (!s->durable_ev || !s->handoff_ev || !s->tick_ev || !s->sig_ev[0] ||
        !s->sig_ev[1]) {
        fprintf(stderr, "ringkvd: error: cannot create events\n");
        goto out;
    }
    struct timeval tv = {0, (long)(1000000u / cfg->hz)};
    event_add(s->durable_ev, NULL);
    event_add(s->tick_ev, &tv);
    event_add(s->sig_ev[0], NULL);
    event_add(s->sig_ev[1], NULL);

    if (cluster_start(s, err, sizeof(err)) != RK_OK) {
        fprintf(stderr, "ringkvd: error: cluster: %s\n", err);
        goto out;
    }
    coll__check_present(s); /* hashes or sets here: no node may join */
    if (http_start(s, err, sizeof(err)) != RK_OK) {
        fprintf(stderr, "ringkvd: error: %s\n", err);
        goto out;
    }
    rk_log(RK_LOG_INFO, "ready", "port=%d bind=%s maxclients=%" PRIu32,
           cfg->port, cfg->bind, cfg->maxclients);
    event_base_dispatch(s->base);

    while (s->clients) {
        client_free(s->clients);
    }
    exit_code = 0;
out:
    while (s->clients) {
        client_free(s->clients);
    }
    http_stop(s);
    cluster_stop(s);
    if (s->listener) {
        evconnlistener_free(s->listener);
    }
    if (s->tls_listener) {
        evconnlistener_free(s->tls_listener);
    }
    tls_ctx_free(s->tls_ctx);
    for (int i = 0; i < 2; i++) {
        if (s->sig_ev[i]) {
            event_free(s->sig_ev[i]);
        }
    }
    if (s->tick_ev) {
        event_free(s->tick_ev);
    }
    if (s->handoff_ev) {
        event_free(s->handoff_ev);
        s->handoff_ev = NULL;
    }
    if (s->durable_ev) {
        event_free(s->durable_ev);
    }
    if (s->engine) {
        rc = engine_close(s->engine);
        if (rc != RK_OK) {
            rk_log(RK_LOG_ERROR, "engine_close_failed", "error=\"%s\"",
                   rk_strerror(rc));
            exit_code = 1;
        }
    }
    if (s->base) {
        event_base_free(s->base);
    }
    if (s->durable_efd >= 0) {
        close(s->durable_efd);
    }
    rk_free(s->cmdstats);
    s->cmdstats = NULL;
    server_acl_fini(s);
    rk_buf_fini(&s->scratch);
    if (exit_code == 0) {
        rk_log(RK_LOG_INFO, "shutdown_complete", "exit_code=0");
    }
    return exit_code;
}

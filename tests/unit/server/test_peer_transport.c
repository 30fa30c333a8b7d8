/*
 * test_peer_transport.c - the peer transport (src/server/peer_transport.h)
 * over real sockets on 127.0.0.1: two or three transports and raw sockets
 * in one process, one event_base driven with EVLOOP_ONCE until a condition
 * or a deadline (a 5 ms tick keeps every loop iteration bounded).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "proto/peer.h"
#include "proto/peer_auth.h"
#include "server/peer_transport.h"

#define WAIT_MS 5000 /* upper bound of every wait; tests finish far sooner */

struct node
{
    struct peer_transport *t;
    char id[16];
    uint16_t port;
    size_t n_msgs;
    uint64_t next_seq; /* PING seq expected next */
    bool in_order;
    char last_from[PEER_MAX_NODE_ID + 1];
    uint64_t last_seq;
    struct rk_buf value; /* last KV_PUT value */
    size_t n_connected, n_disconnected;
    int last_reason;
    uint16_t hello_resp_port;
    uint16_t hello_peer_port;
};

struct fx
{
    struct event_base *base;
    struct event *tick;
    struct node n[3];
    int saved_stderr; /* -1 unless stderr is being captured */
    FILE *log;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define RUN_UNTIL(f, cond, ms)                       \
    do {                                             \
        uint64_t dl_ = now_ms() + (ms);              \
        while (!(cond) && now_ms() < dl_) {          \
            event_base_loop((f)->base, EVLOOP_ONCE); \
        }                                            \
    } while (0)

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void on_message(void *data,
                       const char *id,
                       size_t len,
                       const struct peer_msg *m)
{
    struct node *n = data;
    n->n_msgs++;
    snprintf(n->last_from, sizeof(n->last_from), "%.*s", (int)len, id);
    if (m->type == PEER_PING) {
        if (m->ping.seq != n->next_seq) {
            n->in_order = false;
        }
        n->next_seq = m->ping.seq + 1;
        n->last_seq = m->ping.seq;
    } else if (m->type == PEER_KV_PUT) {
        rk_buf_clear(&n->value);
        assert_int_equal(rk_buf_append(&n->value, m->kv_put.object.ptr,
                                       m->kv_put.object.len),
                         RK_OK);
    }
}

static void on_connected(void *data,
                         const char *id,
                         size_t len,
                         const struct peer_hello *h)
{
    (void)id;
    (void)len;
    struct node *n = data;
    n->n_connected++;
    n->hello_resp_port = h->resp_port;
    n->hello_peer_port = h->peer_port;
}

static void on_disconnected(void *data, const char *id, size_t len, int reason)
{
    (void)id;
    (void)len;
    struct node *n = data;
    n->n_disconnected++;
    n->last_reason = reason;
}

static const struct peer_transport_cbs cbs = {on_message, on_connected,
                                              on_disconnected, NULL};

/* The cluster secret every test node shares (g_other: another cluster's) */
static const unsigned char g_secret[32] = "test-cluster-secret-0123456789a";

struct opts
{
    const unsigned char *secret; /* 32 bytes; NULL = g_secret */
    const char *cluster;
    uint16_t port;
    size_t max_queue;
    uint32_t connect_ms;
};

static void node_reset(struct node *n)
{
    n->n_msgs = 0;
    n->next_seq = 0;
    n->in_order = true;
    n->n_connected = n->n_disconnected = 0;
    n->last_from[0] = '\0';
    rk_buf_clear(&n->value);
}

static void node_start(struct fx *f, int i, const struct opts *o)
{
    struct node *n = &f->n[i];
    node_reset(n);
    snprintf(n->id, sizeof(n->id), "%c", 'a' + i);
    struct peer_transport_config cfg = {
        .self_id = n->id,
        .cluster_name = o && o->cluster ? o->cluster : "test",
        .bind_host = "127.0.0.1",
        .peer_port = o ? o->port : 0,
        .resp_port = (uint16_t)(1000 + i),
        .http_port = (uint16_t)(2000 + i),
        .max_queue_bytes = o ? o->max_queue : 0,
        .connect_timeout_ms = o && o->connect_ms ? o->connect_ms : 1000,
        .backoff_min_ms = 20,
        .backoff_max_ms = 200,
        .secret = o && o->secret ? o->secret : g_secret,
        .secret_len = 32,
    };
    char err[256];
    int rc =
        peer_transport_create(f->base, &cfg, &cbs, n, &n->t, err, sizeof(err));
    if (rc != RK_OK) {
        fail_msg("peer_transport_create: %s", err);
    }
    n->port = peer_transport_port(n->t);
    assert_true(n->port != 0);
}

static void node_stop(struct node *n)
{
    peer_transport_destroy(n->t);
    n->t = NULL;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->saved_stderr = -1;
    f->base = event_base_new();
    assert_non_null(f->base);
    f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(f->tick, &tv);
    for (int i = 0; i < 3; i++) {
        rk_buf_init(&f->n[i].value);
    }
    *state = f;
    return 0;
}

static void capture_end(struct fx *f)
{
    if (f->saved_stderr >= 0) {
        fflush(stderr);
        dup2(f->saved_stderr, 2);
        close(f->saved_stderr);
        f->saved_stderr = -1;
        fclose(f->log);
        f->log = NULL;
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    capture_end(f);
    for (int i = 0; i < 3; i++) {
        node_stop(&f->n[i]);
        rk_buf_fini(&f->n[i].value);
    }
    event_free(f->tick);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Sends stderr (the log) to a temporary file until teardown. */
static void capture_begin(struct fx *f)
{
    fflush(stderr);
    f->log = tmpfile();
    assert_non_null(f->log);
    f->saved_stderr = dup(2);
    assert_true(f->saved_stderr >= 0);
    dup2(fileno(f->log), 2);
}

static bool log_contains(struct fx *f, const char *needle)
{
    static char buf[1 << 16];
    ssize_t n = pread(fileno(f->log), buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* A port nothing listens on (bound and released). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void raw_send(int fd, const void *p, size_t len)
{
    assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* True once the other end closed `fd` (data before the EOF is skipped). */
static bool raw_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            continue;
        }
        if (n == 0) {
            return true;
        }
        return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

/* ---- a raw peer: the handshake by hand ------------------------------------
 */

struct raw
{
    int fd;
    struct rk_buf in;
    struct peer_decoder *dec;
    struct peer_auth auth;
};

static void raw_frame(int fd, const struct peer_msg *m)
{
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(peer_encode(m, &b), RK_OK);
    raw_send(fd, b.base, b.len);
    rk_buf_fini(&b);
}

/* Runs the loop until one whole frame from the node is in r->in; decodes
 * it into *m (views into r->in, valid until raw_next is called again).
 * False when the node closed or nothing came in time. */
static bool raw_next(struct fx *f,
                     struct raw *r,
                     struct peer_msg *m,
                     size_t *used)
{
    if (*used) {
        rk_buf_consume(&r->in, *used);
        *used = 0;
    }
    uint64_t dl = now_ms() + WAIT_MS;
    for (;;) {
        if (r->in.len > 0) {
            int rc = peer_decoder_feed(r->dec, r->in.base, r->in.len, used, m);
            if (rc == RK_OK) {
                return true;
            }
            assert_int_equal(rc, RK_EAGAIN);
        }
        char buf[4096];
        ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            assert_int_equal(rk_buf_append(&r->in, buf, (size_t)n), RK_OK);
            continue;
        }
        if (n == 0 || now_ms() > dl) {
            return false;
        }
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
}

/* Connects to `port` as node `id` (HELLO of protocol `max_version`) and
 * runs the handshake with `secret` (32 bytes) up to sending our proof
 * (`send_proof` false: stops before it).  Returns the node's proof check
 * (RK_OK when the node proved it has `secret`).  r stays open. */
static int raw_handshake(struct fx *f,
                         struct raw *r,
                         uint16_t port,
                         const char *id,
                         const unsigned char *secret,
                         uint8_t max_version,
                         bool send_proof)
{
    memset(r, 0, sizeof(*r));
    r->fd = raw_connect(port);
    rk_buf_init(&r->in);
    assert_int_equal(peer_decoder_create(1024, &r->dec), RK_OK);
    unsigned char nonce[PEER_AUTH_NONCE_LEN];
    for (size_t i = 0; i < sizeof(nonce); i++) {
        nonce[i] = (unsigned char)(rand() & 0xff);
    }
    struct peer_msg ch, h;
    assert_int_equal(peer_auth_start(&r->auth, PEER_AUTH_DIALER, secret, 32, id,
                                     strlen(id), nonce, &ch),
                     RK_OK);
    memset(&h, 0, sizeof(h));
    h.type = PEER_HELLO;
    h.hello.node_id = (struct peer_bytes){id, strlen(id)};
    h.hello.cluster_name = (struct peer_bytes){"test", 4};
    h.hello.host = (struct peer_bytes){"127.0.0.1", 9};
    h.hello.peer_port = 9;
    h.hello.max_version = max_version;
    raw_frame(r->fd, &h);
    raw_frame(r->fd, &ch);
    size_t used = 0;
    struct peer_msg m, out;
    bool send = false;
    for (int i = 0; i < 2; i++) { /* its HELLO, its CHALLENGE */
        assert_true(raw_next(f, r, &m, &used));
        assert_int_equal(peer_auth_on_frame(&r->auth, &m, &out, &send), RK_OK);
    }
    assert_true(send);
    if (!send_proof) {
        rk_buf_consume(&r->in, used);
        return RK_EAGAIN;
    }
    raw_frame(r->fd, &out);
    if (!raw_next(f, r, &m, &used)) {
        return RK_ECLOSED;
    }
    int rc = peer_auth_on_frame(&r->auth, &m, &out, &send);
    rk_buf_consume(&r->in, used);
    return rc;
}

static void raw_done(struct raw *r)
{
    close(r->fd);
    rk_buf_fini(&r->in);
    peer_decoder_destroy(r->dec);
}

static struct peer_msg ping(uint64_t seq, const char *from)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_PING;
    m.ping.seq = seq;
    m.ping.from = (struct peer_bytes){from, strlen(from)};
    m.ping.incarnation = 1;
    return m;
}

static struct peer_msg kv_put(const char *value, size_t len)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_KV_PUT;
    m.kv_put.req_id = 7;
    m.kv_put.key = (struct peer_bytes){"key", 3};
    m.kv_put.object = (struct peer_bytes){value, len};
    m.kv_put.deadline_ms = 1000;
    return m;
}

static struct peer_transport_stats stats(struct node *n, const char *peer)
{
    struct peer_transport_stats st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(peer_transport_stats(n->t, peer, &st), RK_OK);
    return st;
}

/* A and B connected, each having received one PING. */
static void connect_ab(struct fx *f)
{
    struct node *a = &f->n[0], *b = &f->n[1];
    node_start(f, 0, NULL);
    node_start(f, 1, NULL);
    struct peer_msg m = ping(0, "a");
    assert_int_equal(peer_transport_send(a->t, NULL, "127.0.0.1", b->port, &m),
                     RK_OK);
    RUN_UNTIL(f, b->n_msgs == 1 && a->n_connected == 1, WAIT_MS);
    assert_int_equal(b->n_msgs, 1);
    m = ping(0, "b");
    assert_int_equal(peer_transport_send(b->t, "a", NULL, 0, &m), RK_OK);
    RUN_UNTIL(f, a->n_msgs == 1, WAIT_MS);
    assert_int_equal(a->n_msgs, 1);
}

static void test_peer_transport_hello_handshake_maps_address_to_id(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    node_start(f, 0, NULL);
    node_start(f, 1, NULL);
    struct peer_msg m = ping(0, "a");
    /* First contact knows only the address (a JOIN to a seed). */
    assert_int_equal(peer_transport_send(a->t, NULL, "127.0.0.1", b->port, &m),
                     RK_OK);
    RUN_UNTIL(f, b->n_msgs == 1 && a->n_connected == 1 && b->n_connected == 1,
              WAIT_MS);
    assert_int_equal(b->n_msgs, 1);
    assert_string_equal(b->last_from, "a");
    assert_int_equal(a->n_connected, 1);
    assert_int_equal(b->n_connected, 1);
    assert_int_equal(a->hello_resp_port, 1001); /* B's HELLO */
    assert_int_equal(a->hello_peer_port, b->port);
    assert_int_equal(b->hello_resp_port, 1000);
    struct peer_transport_peer list[4];
    assert_int_equal(peer_transport_list(a->t, list, 4), 1);
    assert_string_equal(list[0].node_id, "b");
    assert_true(list[0].connected);
    assert_int_equal(list[0].port, b->port);
    struct peer_transport_stats st = stats(a, "b");
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.frames_out, 1);
    assert_int_equal(st.n_conns, 1);
    st = stats(b, "a");
    assert_int_equal(st.frames_in, 1);
    /* The address now maps to "b": a send by address reuses the conn. */
    m = ping(1, "a");
    assert_int_equal(peer_transport_send(a->t, NULL, "127.0.0.1", b->port, &m),
                     RK_OK);
    RUN_UNTIL(f, b->n_msgs == 2, WAIT_MS);
    assert_int_equal(b->n_msgs, 2);
    assert_int_equal(stats(a, NULL).n_conns, 1);
    assert_int_equal(stats(a, NULL).n_peers, 1);
}

static void test_peer_transport_sends_both_ways_on_one_connection(void **state)
{
    struct fx *f = *state;
    connect_ab(f);
    struct node *a = &f->n[0], *b = &f->n[1];
    assert_string_equal(a->last_from, "b");
    assert_int_equal(stats(a, NULL).n_conns, 1);
    assert_int_equal(stats(b, NULL).n_conns, 1);
    assert_int_equal(stats(b, "a").connects, 1);
}

static void test_peer_transport_delivers_1000_frames_in_order(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    node_start(f, 0, NULL);
    node_start(f, 1, NULL);
    for (uint64_t i = 0; i < 1000; i++) {
        struct peer_msg m = ping(i, "a");
        assert_int_equal(
            peer_transport_send(a->t, "b", "127.0.0.1", b->port, &m), RK_OK);
    }
    RUN_UNTIL(f, b->n_msgs == 1000, WAIT_MS);
    assert_int_equal(b->n_msgs, 1000);
    assert_true(b->in_order);
    assert_int_equal(b->last_seq, 999);
    assert_int_equal(stats(a, "b").frames_out, 1000);
    assert_int_equal(stats(b, "a").frames_in, 1000);
}

static void test_peer_transport_delivers_a_1mb_value(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    node_start(f, 0, NULL);
    node_start(f, 1, NULL);
    size_t len = 1024 * 1024;
    char *v = malloc(len);
    assert_non_null(v);
    for (size_t i = 0; i < len; i++) {
        v[i] = (char)(i * 131 + (i >> 12));
    }
    struct peer_msg m = kv_put(v, len);
    assert_int_equal(peer_transport_send(a->t, "b", "127.0.0.1", b->port, &m),
                     RK_OK);
    RUN_UNTIL(f, b->n_msgs == 1, WAIT_MS);
    assert_int_equal(b->n_msgs, 1);
    assert_int_equal(b->value.len, len);
    assert_memory_equal(b->value.base, v, len);
    assert_true(stats(b, "a").bytes_in > len);
    free(v);
}

static void test_peer_transport_queues_until_peer_starts(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    node_start(f, 0, NULL);
    uint16_t port = free_port();
    for (uint64_t i = 0; i < 3; i++) {
        struct peer_msg m = ping(i, "a");
        assert_int_equal(peer_transport_send(a->t, "b", "127.0.0.1", port, &m),
                         RK_OK);
    }
    /* Refused dials are retried with backoff while the frames wait. */
    RUN_UNTIL(f, stats(a, "b").dial_failures >= 3, WAIT_MS);
    struct peer_transport_stats st = stats(a, "b");
    assert_true(st.dial_failures >= 3);
    assert_true(st.reconnects >= 2);
    assert_true(st.queue_bytes > 0);
    assert_int_equal(st.n_connected, 0);
    node_start(f, 1, &(struct opts){.port = port});
    RUN_UNTIL(f, b->n_msgs == 3, WAIT_MS);
    assert_int_equal(b->n_msgs, 3);
    assert_true(b->in_order);
    assert_int_equal(stats(a, "b").queue_bytes, 0);
    assert_int_equal(a->n_connected, 1);
}

static void test_peer_transport_reconnects_after_peer_restart(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    connect_ab(f);
    uint16_t port = b->port;
    node_stop(b);
    RUN_UNTIL(f, a->n_disconnected == 1, WAIT_MS);
    assert_int_equal(a->n_disconnected, 1);
    assert_int_equal(a->last_reason, RK_ECLOSED);
    assert_int_equal(stats(a, "b").n_connected, 0);
    node_start(f, 1, &(struct opts){.port = port});
    struct peer_msg m = ping(0, "a");
    /* Known id, no address given: the stored one is used. */
    assert_int_equal(peer_transport_send(a->t, "b", NULL, 0, &m), RK_OK);
    RUN_UNTIL(f, b->n_msgs == 1, WAIT_MS);
    assert_int_equal(b->n_msgs, 1);
    assert_int_equal(a->n_connected, 2);
    assert_int_equal(stats(a, "b").connects, 2);
}

static void test_peer_transport_simultaneous_dial_keeps_one_connection(
    void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    node_start(f, 0, NULL);
    node_start(f, 1, NULL);
    for (uint64_t i = 0; i < 5; i++) {
        struct peer_msg m = ping(i, "a");
        assert_int_equal(
            peer_transport_send(a->t, "b", "127.0.0.1", b->port, &m), RK_OK);
        m = ping(i, "b");
        assert_int_equal(
            peer_transport_send(b->t, "a", "127.0.0.1", a->port, &m), RK_OK);
    }
    RUN_UNTIL(f,
              a->n_msgs == 5 && b->n_msgs == 5 && stats(a, NULL).n_conns == 1 &&
                  stats(b, NULL).n_conns == 1,
              WAIT_MS);
    assert_int_equal(a->n_msgs, 5);
    assert_int_equal(b->n_msgs, 5);
    assert_int_equal(stats(a, NULL).n_conns, 1);
    assert_int_equal(stats(b, NULL).n_conns, 1);
    assert_int_equal(stats(a, NULL).n_connected, 1);
    assert_int_equal(stats(b, NULL).n_connected, 1);
    /* The survivor carries traffic both ways. */
    for (uint64_t i = 5; i < 10; i++) {
        struct peer_msg m = ping(i, "a");
        assert_int_equal(peer_transport_send(a->t, "b", NULL, 0, &m), RK_OK);
        m = ping(i, "b");
        assert_int_equal(peer_transport_send(b->t, "a", NULL, 0, &m), RK_OK);
    }
    RUN_UNTIL(f, a->n_msgs == 10 && b->n_msgs == 10, WAIT_MS);
    assert_int_equal(a->n_msgs, 10);
    assert_int_equal(b->n_msgs, 10);
    assert_int_equal(stats(a, NULL).n_conns, 1);
    assert_int_equal(stats(b, NULL).n_conns, 1);
}

static void test_peer_transport_queue_limit_gives_ebusy(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    node_start(f, 0, &(struct opts){.max_queue = 64 * 1024});
    uint16_t port = free_port();
    static char v[10 * 1024];
    memset(v, 'x', sizeof(v));
    struct peer_msg m = kv_put(v, sizeof(v));
    int i = 0;
    int rc = RK_OK;
    for (; i < 100; i++) {
        rc = peer_transport_send(a->t, "b", "127.0.0.1", port, &m);
        if (rc != RK_OK) {
            break;
        }
    }
    assert_int_equal(rc, RK_EBUSY);
    assert_int_equal(i, 6); /* 6 frames of 10,3xx bytes fit in 64 KiB */
    struct peer_transport_stats st = stats(a, "b");
    assert_int_equal(st.busy, 1);
    assert_true(st.queue_bytes <= 64 * 1024);
    assert_int_equal(st.frames_out, 6);
    /* The queued frames are delivered once the peer is up. */
    node_start(f, 1, &(struct opts){.port = port});
    RUN_UNTIL(f, b->n_msgs == 6, WAIT_MS);
    assert_int_equal(b->n_msgs, 6);
    RUN_UNTIL(f, stats(a, "b").queue_bytes == 0, WAIT_MS);
    assert_int_equal(peer_transport_send(a->t, "b", NULL, 0, &m), RK_OK);
}

static void test_peer_transport_rejects_other_cluster(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    capture_begin(f);
    node_start(f, 0, NULL);
    node_start(f, 1, &(struct opts){.cluster = "other"});
    struct peer_msg m = ping(0, "a");
    assert_int_equal(peer_transport_send(a->t, "b", "127.0.0.1", b->port, &m),
                     RK_OK);
    RUN_UNTIL(f, stats(a, NULL).rejected >= 1 && stats(b, NULL).rejected >= 1,
              WAIT_MS);
    assert_true(stats(a, NULL).rejected >= 1);
    assert_true(stats(b, NULL).rejected >= 1);
    assert_int_equal(b->n_msgs, 0);
    assert_int_equal(a->n_connected, 0);
    assert_int_equal(b->n_connected, 0);
    assert_true(log_contains(f, "event=peer_cluster_mismatch"));
    assert_true(log_contains(f, "peer_cluster=other"));
}

static void test_peer_transport_closes_garbage_and_http_and_keeps_working(
    void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    capture_begin(f);
    node_start(f, 0, NULL);
    node_start(f, 1, NULL);
    int http = raw_connect(b->port);
    int junk = raw_connect(b->port);
    int huge = raw_connect(b->port);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_send(http, req, sizeof(req) - 1);
    raw_send(junk, "\x00\x01\x02garbage", 10);
    /* A valid header declaring a 2 GiB HELLO: refused before any body. */
    unsigned char hdr[PEER_HEADER_SIZE] = {'R', 'K', 'V',  'P',  1,    1,
                                           0,   0,   0xff, 0xff, 0xff, 0x7f};
    raw_send(huge, hdr, sizeof(hdr));
    bool h = false, j = false, g = false;
    RUN_UNTIL(f,
              (h = h || raw_closed(http)) && (j = j || raw_closed(junk)) &&
                  (g = g || raw_closed(huge)),
              WAIT_MS);
    assert_true(h && j && g);
    close(http);
    close(junk);
    close(huge);
    assert_int_equal(stats(b, NULL).rejected, 3);
    assert_int_equal(stats(b, NULL).n_peers, 0);
    assert_true(log_contains(f, "event=peer_protocol_error"));
    struct peer_msg m = ping(0, "a");
    assert_int_equal(peer_transport_send(a->t, "b", "127.0.0.1", b->port, &m),
                     RK_OK);
    RUN_UNTIL(f, b->n_msgs == 1, WAIT_MS);
    assert_int_equal(b->n_msgs, 1);
}

static void test_peer_transport_rejects_newer_protocol_version(void **state)
{
    struct fx *f = *state;
    struct node *b = &f->n[1];
    capture_begin(f);
    node_start(f, 1, NULL);
    struct raw r;
    assert_int_equal(raw_handshake(f, &r, b->port, "raw", g_secret, 3, true),
                     RK_OK);
    int fd = r.fd;
    struct rk_buf out;
    rk_buf_init(&out);
    struct peer_msg m = ping(0, "raw");
    assert_int_equal(peer_encode(&m, &out), RK_OK);
    out.base[4] = 3; /* a version-3 frame after the handshake */
    raw_send(fd, out.base, out.len);
    rk_buf_fini(&out);
    RUN_UNTIL(f, raw_closed(fd) && b->n_disconnected == 1, WAIT_MS);
    assert_true(raw_closed(fd));
    raw_done(&r);
    assert_int_equal(b->n_connected, 1);
    assert_int_equal(b->n_disconnected, 1);
    assert_int_equal(b->last_reason, RK_EVERSION);
    assert_int_equal(b->n_msgs, 0);
    assert_true(log_contains(
        f, "peer raw speaks protocol version 3, this node speaks 2"));
    assert_true(log_contains(f, "event=peer_version_unsupported"));
}

static void test_peer_transport_fault_hook_drops_and_clear_restores(
    void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    connect_ab(f);
    /* Outgoing drop at A. */
    assert_int_equal(peer_transport_set_fault(a->t, "b", false, true), RK_OK);
    for (uint64_t i = 1; i <= 5; i++) {
        struct peer_msg m = ping(i, "a");
        assert_int_equal(peer_transport_send(a->t, "b", NULL, 0, &m), RK_OK);
    }
    assert_int_equal(stats(a, "b").dropped_out, 5);
    assert_int_equal(peer_transport_set_fault(a->t, "b", false, false), RK_OK);
    struct peer_msg m = ping(99, "a");
    assert_int_equal(peer_transport_send(a->t, "b", NULL, 0, &m), RK_OK);
    RUN_UNTIL(f, b->n_msgs == 2, WAIT_MS);
    assert_int_equal(b->n_msgs, 2);
    assert_int_equal(b->last_seq, 99); /* nothing of 1..5 arrived */
    /* Incoming drop at B. */
    assert_int_equal(peer_transport_set_fault(b->t, "a", true, false), RK_OK);
    for (uint64_t i = 100; i < 105; i++) {
        m = ping(i, "a");
        assert_int_equal(peer_transport_send(a->t, "b", NULL, 0, &m), RK_OK);
    }
    RUN_UNTIL(f, stats(b, "a").dropped_in == 5, WAIT_MS);
    assert_int_equal(stats(b, "a").dropped_in, 5);
    assert_int_equal(b->n_msgs, 2);
    peer_transport_clear_faults(b->t);
    m = ping(200, "a");
    assert_int_equal(peer_transport_send(a->t, "b", NULL, 0, &m), RK_OK);
    RUN_UNTIL(f, b->n_msgs == 3, WAIT_MS);
    assert_int_equal(b->n_msgs, 3);
    assert_int_equal(b->last_seq, 200);
    assert_int_equal(stats(a, NULL).dropped_out, 5);
}

static void test_peer_transport_port_in_use_is_a_clear_error(void **state)
{
    struct fx *f = *state;
    node_start(f, 0, NULL);
    struct peer_transport_config cfg = {
        .self_id = "c",
        .bind_host = "127.0.0.1",
        .peer_port = f->n[0].port,
        .secret = g_secret,
        .secret_len = 32,
    };
    char err[256] = "";
    struct peer_transport *t = NULL;
    assert_int_equal(
        peer_transport_create(f->base, &cfg, &cbs, NULL, &t, err, sizeof(err)),
        RK_EIO);
    assert_null(t);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
    assert_non_null(strstr(err, "in use"));
    cfg.self_id = "";
    cfg.peer_port = 0;
    assert_int_equal(
        peer_transport_create(f->base, &cfg, &cbs, NULL, &t, err, sizeof(err)),
        RK_EINVAL);
}

static void test_peer_transport_send_validates_arguments(void **state)
{
    struct fx *f = *state;
    node_start(f, 0, NULL);
    struct peer_transport *t = f->n[0].t;
    struct peer_msg m = ping(0, "a");
    assert_int_equal(peer_transport_send(t, NULL, NULL, 0, &m), RK_EINVAL);
    assert_int_equal(peer_transport_send(t, "x", "127.0.0.1", 0, &m),
                     RK_EINVAL);
    assert_int_equal(peer_transport_send(t, "nobody", NULL, 0, &m),
                     RK_ENOTFOUND);
    struct peer_msg bad = ping(0, ""); /* empty `from` */
    assert_int_equal(peer_transport_send(t, "x", "127.0.0.1", 9, &bad),
                     RK_EINVAL);
    assert_int_equal(stats(&f->n[0], NULL).n_peers, 0);
    struct peer_transport_stats st;
    assert_int_equal(peer_transport_stats(t, "nobody", &st), RK_ENOTFOUND);
    assert_int_equal(peer_transport_set_fault(t, "", true, true), RK_EINVAL);
}

static void test_peer_transport_closes_silent_connection_after_timeout(
    void **state)
{
    struct fx *f = *state;
    struct node *b = &f->n[1];
    node_start(f, 1, &(struct opts){.connect_ms = 100});
    int fd = raw_connect(b->port);
    uint64_t t0 = now_ms();
    RUN_UNTIL(f, raw_closed(fd), WAIT_MS);
    assert_true(raw_closed(fd));
    assert_true(now_ms() - t0 >= 90);
    close(fd);
    assert_int_equal(stats(b, NULL).n_conns, 0);
    assert_int_equal(stats(b, NULL).n_peers, 0);
}

static void test_peer_transport_three_nodes_form_a_full_mesh(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++) {
        node_start(f, i, NULL);
    }
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            if (i == j) {
                continue;
            }
            struct peer_msg m = ping(0, f->n[i].id);
            assert_int_equal(peer_transport_send(f->n[i].t, f->n[j].id,
                                                 "127.0.0.1", f->n[j].port, &m),
                             RK_OK);
        }
    }
    RUN_UNTIL(f,
              f->n[0].n_msgs == 2 && f->n[1].n_msgs == 2 &&
                  f->n[2].n_msgs == 2 && stats(&f->n[0], NULL).n_conns == 2 &&
                  stats(&f->n[1], NULL).n_conns == 2 &&
                  stats(&f->n[2], NULL).n_conns == 2,
              WAIT_MS);
    for (int i = 0; i < 3; i++) {
        struct peer_transport_stats st = stats(&f->n[i], NULL);
        assert_int_equal(f->n[i].n_msgs, 2);
        assert_int_equal(st.n_peers, 2);
        assert_int_equal(st.n_connected, 2);
        assert_int_equal(st.n_conns, 2);
    }
}

static void test_peer_transport_refuses_to_talk_to_itself(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0];
    capture_begin(f);
    node_start(f, 0, NULL);
    struct peer_msg m = ping(0, "a");
    assert_int_equal(peer_transport_send(a->t, NULL, "127.0.0.1", a->port, &m),
                     RK_OK);
    RUN_UNTIL(f, stats(a, NULL).rejected >= 2 && stats(a, NULL).n_conns == 0,
              WAIT_MS);
    assert_int_equal(stats(a, NULL).n_conns, 0);
    assert_int_equal(stats(a, NULL).queue_bytes, 0); /* frames dropped */
    assert_int_equal(a->n_msgs, 0);
    assert_true(log_contains(f, "event=peer_self_connect"));
}

static const unsigned char g_other[32] = "another-cluster-secret-012345678";

/* Two nodes with different secrets never connect: no frame crosses, no
 * peer is made from the other's HELLO, both log why, and the dialer's
 * on_auth_failed names the address. */
static void test_peer_transport_refuses_a_peer_without_the_secret(void **state)
{
    struct fx *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];
    capture_begin(f);
    node_start(f, 0, &(struct opts){.secret = g_other});
    node_start(f, 1, NULL);
    struct peer_msg m = ping(0, "a");
    assert_int_equal(peer_transport_send(a->t, NULL, "127.0.0.1", b->port, &m),
                     RK_OK);
    RUN_UNTIL(f, stats(b, NULL).auth_failed >= 2, 3000);
    assert_true(stats(b, NULL).auth_failed >= 2); /* it retries */
    assert_true(stats(a, NULL).auth_failed >= 2);
    assert_int_equal(b->n_msgs, 0);
    assert_int_equal(b->n_connected, 0);
    assert_int_equal(a->n_connected, 0);
    assert_int_equal(stats(b, NULL).n_peers, 0); /* nothing learnt */
    assert_true(log_contains(f, "event=peer_auth_failed"));
    assert_true(log_contains(f, "does not have this cluster's secret"));
}

/* A raw client: frames before the handshake, a PING instead of the
 * challenge, a wrong proof, a frame after its challenge but before its
 * proof, a right proof from the wrong secret's holder: each is closed
 * without a frame delivered or a peer made; then the right secret
 * works. */
static void test_peer_transport_refuses_frames_before_authentication(
    void **state)
{
    struct fx *f = *state;
    struct node *b = &f->n[1];
    capture_begin(f);
    node_start(f, 1, NULL);
    /* 1. HELLO then KV_GET: no challenge */
    int fd = raw_connect(b->port);
    struct peer_msg h;
    memset(&h, 0, sizeof(h));
    h.type = PEER_HELLO;
    h.hello.node_id = (struct peer_bytes){"n1", 2};
    h.hello.cluster_name = (struct peer_bytes){"test", 4};
    h.hello.host = (struct peer_bytes){"127.0.0.1", 9};
    h.hello.peer_port = 9;
    h.hello.max_version = 2;
    raw_frame(fd, &h);
    struct peer_msg g = {.type = PEER_KV_GET};
    g.kv_get.key = (struct peer_bytes){"k", 1};
    raw_frame(fd, &g);
    RUN_UNTIL(f, raw_closed(fd), WAIT_MS);
    assert_true(raw_closed(fd));
    close(fd);
    /* 2. a KV_GET first */
    fd = raw_connect(b->port);
    raw_frame(fd, &g);
    RUN_UNTIL(f, raw_closed(fd), WAIT_MS);
    assert_true(raw_closed(fd));
    close(fd);
    /* 3. the wrong secret: the node's proof does not check out for us,
     * and ours is refused */
    struct raw r;
    assert_int_equal(raw_handshake(f, &r, b->port, "n1", g_other, 2, true),
                     RK_EPERM);
    RUN_UNTIL(f, raw_closed(r.fd), WAIT_MS);
    assert_true(raw_closed(r.fd));
    raw_done(&r);
    /* 4. a frame after our challenge, before our proof */
    assert_int_equal(raw_handshake(f, &r, b->port, "n1", g_secret, 2, false),
                     RK_EAGAIN);
    raw_frame(r.fd, &g);
    RUN_UNTIL(f, raw_closed(r.fd), WAIT_MS);
    assert_true(raw_closed(r.fd));
    raw_done(&r);
    /* 5. a pre-auth frame over 1 KiB is refused unread */
    fd = raw_connect(b->port);
    unsigned char hdr[PEER_HEADER_SIZE];
    static char big[4096];
    peer_header_encode(hdr, PEER_HELLO, big, sizeof(big));
    raw_send(fd, hdr, sizeof(hdr));
    RUN_UNTIL(f, raw_closed(fd), WAIT_MS);
    assert_true(raw_closed(fd));
    close(fd);
    assert_int_equal(b->n_msgs, 0);
    assert_int_equal(b->n_connected, 0);
    assert_int_equal(stats(b, NULL).n_peers, 0);
    assert_true(stats(b, NULL).auth_failed >= 4);
    /* 6. with the secret: connected, and a frame is delivered as n1 */
    assert_int_equal(raw_handshake(f, &r, b->port, "n1", g_secret, 2, true),
                     RK_OK);
    struct peer_msg m = ping(7, "n1");
    raw_frame(r.fd, &m);
    RUN_UNTIL(f, b->n_msgs == 1, WAIT_MS);
    assert_int_equal(b->n_msgs, 1);
    assert_int_equal(b->n_connected, 1);
    assert_string_equal(b->last_from, "n1");
    raw_done(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as ringkvd does (peer_transport.h) */
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_peer_transport_hello_handshake_maps_address_to_id),
        T(test_peer_transport_sends_both_ways_on_one_connection),
        T(test_peer_transport_delivers_1000_frames_in_order),
        T(test_peer_transport_delivers_a_1mb_value),
        T(test_peer_transport_queues_until_peer_starts),
        T(test_peer_transport_reconnects_after_peer_restart),
        T(test_peer_transport_simultaneous_dial_keeps_one_connection),
        T(test_peer_transport_queue_limit_gives_ebusy),
        T(test_peer_transport_rejects_other_cluster),
        T(test_peer_transport_closes_garbage_and_http_and_keeps_working),
        T(test_peer_transport_rejects_newer_protocol_version),
        T(test_peer_transport_fault_hook_drops_and_clear_restores),
        T(test_peer_transport_port_in_use_is_a_clear_error),
        T(test_peer_transport_send_validates_arguments),
        T(test_peer_transport_closes_silent_connection_after_timeout),
        T(test_peer_transport_three_nodes_form_a_full_mesh),
        T(test_peer_transport_refuses_to_talk_to_itself),
        T(test_peer_transport_refuses_a_peer_without_the_secret),
        T(test_peer_transport_refuses_frames_before_authentication),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

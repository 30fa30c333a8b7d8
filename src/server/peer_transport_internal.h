/*
 * peer_transport_internal.h - the structures of the peer transport, shared
 * by its files: peer_transport.c (connections, HELLO, reading, sending),
 * peer_transport_admin.c (fault injection, stats, listing) and
 * peer_tls.c (the TLS half of tls-cluster).  Not a public interface: see
 * peer_transport.h and peer_tls.h.
 */
#ifndef RINGKV_SERVER_PEER_TRANSPORT_INTERNAL_H
#define RINGKV_SERVER_PEER_TRANSPORT_INTERNAL_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/rng.h"
#include "common/buf.h"
#include "proto/peer.h"
#include "proto/peer_auth.h"
#include "proto/peer_chunk.h"
#include "server/peer_transport.h"

#define HELLO_MAX_BODY 1024u /* bytes accepted before the HELLO */
/* Buffers kept between frames: above a handoff FOLD reply (a batch of
 * NODE_HANDOFF_BATCH plus one step's objects, about 130 KiB of 1 KiB
 * values), so that a transfer does not free and grow them again for
 * every batch (measured: docs/benchmarks.md, "Partition handoff"). */
#define SCRATCH_KEEP (256u * 1024) /* shrink the encode buffer above */
#define INBUF_KEEP   (256u * 1024) /* shrink idle input buffers above */
#define ADDR_LEN     (PEER_MAX_HOST + 8)
/* Large frames go out one CHUNK at a time while the connection's output
 * holds less than PUMP_WINDOW bytes; the write callback refills it when
 * the output drains to PUMP_LOW.  So a small frame waits behind at most
 * about PUMP_WINDOW + PEER_CHUNK_MAX bytes of a large one. */
#define PUMP_WINDOW (1024u * 1024)
#define PUMP_LOW    (256u * 1024)

enum conn_state
{
    CONN_HANDSHAKE, /* HELLO sent (or queued until connected), not received */
    CONN_READY,     /* HELLO exchanged; peer->active or about to be */
    CONN_RETIRING,  /* superseded: flush, shutdown(SHUT_WR), wait for EOF */
    CONN_CLOSING,   /* EOF seen: flush the output, then free */
};

struct peer;

struct conn
{
    struct peer_transport *t;
    struct conn *prev, *next; /* t->conns */
    struct bufferevent *bev;  /* owns the socket */
    struct peer_decoder *dec;
    struct rk_buf in;        /* received, not yet decoded bytes */
    struct peer_reasm reasm; /* the chunked frame being received */
    uint8_t version;         /* min(ours, the peer's HELLO max_version) */
    struct event *timer;     /* handshake / retire deadline */
    struct peer *peer;       /* NULL for inbound until its HELLO */
    struct peer_auth auth;   /* the handshake, while HANDSHAKE */
    /* The peer's HELLO, kept from its arrival until the handshake ends
     * (nothing of it is used before): views into the arrays below. */
    struct peer_hello hello;
    char hello_id[PEER_MAX_NODE_ID];
    char hello_cluster[PEER_MAX_CLUSTER];
    char hello_host[PEER_MAX_HOST];
    enum conn_state state;
    bool outbound;          /* dialed by this node */
    bool tls;               /* bev is an OpenSSL bufferevent (tls-cluster) */
    bool tls_up;            /* its TLS handshake completed */
    uint8_t n_first;        /* bytes in first[] */
    unsigned char first[4]; /* the first bytes received, while TLS is
                               not up (tells a plain peer's "RKVP") */
    bool wr_shut;           /* shutdown(SHUT_WR) done */
    char addr[ADDR_LEN];    /* "host:port" of the other end, for logs */
};

struct peer
{
    struct peer_transport *t;
    struct peer *prev, *next; /* t->peers */
    char *id;                 /* NUL-terminated, NULL until learned */
    size_t id_len;            /* bytes */
    char *host;               /* dial address, NULL if none */
    uint16_t port;
    struct conn *active;      /* READY conn carrying our frames, or NULL */
    unsigned n_dialing;       /* outbound conns in HANDSHAKE */
    struct evbuffer *pending; /* frames waiting for a connection */
    struct peer_chunkq big;   /* frames > PEER_CHUNK_THRESHOLD, sent a
                                 piece at a time (peer_pump) */
    struct event *retry_ev;   /* backoff timer */
    uint32_t attempts;        /* failed dials since the last HELLO */
    struct peer_transport_stats st;
};

struct fault
{
    char *id; /* NUL-terminated */
    bool drop_in, drop_out;
};

struct peer_transport
{
    struct event_base *base;
    struct evconnlistener *listener;
    struct peer_transport_cbs cbs;
    void *data;
    char *self_id;
    size_t self_len;
    char *cluster;
    size_t cluster_len;
    uint16_t port; /* bound peer port */
    size_t max_queue;
    uint32_t max_body;
    uint32_t connect_ms;
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    struct peer *peers;
    struct conn *conns;
    struct fault *faults;
    size_t n_faults;
    struct rk_buf hello;        /* our HELLO frame, encoded once */
    struct ssl_ctx_st *tls_ctx; /* our reference; NULL: plain TCP */
    unsigned char secret[PEER_AUTH_SECRET_MAX]; /* the cluster secret */
    size_t secret_len;
    uint64_t auth_logged;  /* failed handshakes logged in this second */
    time_t auth_log_s;     /* that second */
    struct rk_buf scratch; /* encode buffer of send */
    struct rk_buf piece;   /* the CHUNK being moved by peer_pump */
    struct rk_rng rng;     /* backoff jitter */
    struct peer_transport_stats st;
};

/* The peer known by id (NULL: none). */
struct peer *pt__peer_by_id(const struct peer_transport *t,
                            const char *id,
                            size_t len);
/* Bytes queued for p: pending, large frames, and its active conn's output. */
size_t pt__queue_bytes(const struct peer *p);
/* A node id made safe for a logfmt value and a quoted message. */
const char *pt__safe_id(const char *id, size_t len, char *out, size_t cap);
/* Whether a refused handshake may be logged now (10 lines a second). */
bool pt__auth_log_allowed(struct peer_transport *t);
/* Counts `c` as rejected and closes it: at once, or (`linger`) once its
 * output is written (so a plain peer reads our HELLO and can tell). */
void pt__conn_refuse(struct conn *c, int reason, bool linger);

/* ---- peer_tls.c: the TLS half (tls-cluster; peer_tls.h) ---- */
/* Replaces t->tls_ctx by a reference of its own to `ctx` (NULL: none). */
void pt__tls_hold(struct peer_transport *t, struct ssl_ctx_st *ctx);
/* An OpenSSL bufferevent on `fd` (-1: to be connected), dialing or
 * accepting, dirty shutdowns allowed; NULL when it cannot be made (`fd`
 * is then still the caller's). */
struct bufferevent *pt__tls_bev_new(struct peer_transport *t,
                                    evutil_socket_t fd,
                                    bool outbound);
/* Watches what c's socket delivers until its TLS handshake completes
 * (first[]); call once its bufferevent has a socket. */
void pt__tls_watch(struct conn *c);
/* Handles a bufferevent event of a TLS conn that belongs to TLS: its
 * handshake completing, or failing (logged, counted, `c` closed).
 * Returns false when the transport's usual handling applies. */
bool pt__tls_event(struct conn *c, short what);
/* Checks that the certificate of a TLS conn names the node id of its
 * HELLO and may be a node's.  Returns false after closing `c`. */
bool pt__tls_check_hello(struct conn *c, const struct peer_hello *h);
/* A plain conn whose first bytes (`len` at `p`) are not a frame: when
 * they are a TLS record, logs that the peer speaks TLS, counts, and
 * returns true (the caller closes `c`). */
bool pt__plain_saw_tls(struct conn *c, const unsigned char *p, size_t len);
/* After a read callback took libevent's input: decrypts the records
 * OpenSSL read ahead beyond it into `in` (at most PT_TLS_DRAIN_MAX bytes
 * a call; more is left for a deferred read callback).  *added: bytes
 * appended.  RK_OK or RK_ENOMEM. */
int pt__tls_drain(struct conn *c, struct rk_buf *in, size_t *added);
/* " tls=TLSv1.3" of an established TLS conn, "" for a plain one. */
void pt__tls_describe(const struct conn *c, char *out, size_t cap);

#endif

/*
 * peer_transport.h - the socket side of the node-to-node protocol (DESIGN.md
 * sections 1, 2 and 4; issue 4 item 1): TCP connections on the peer port,
 * the HELLO handshake, one connection per peer pair, reconnect with
 * exponential backoff and jitter, bounded send queues, and a fault hook for
 * tests; over mutual TLS with tls-cluster (peer_tls.h).  The bytes are
 * the codec's (src/proto/peer.h); the rules are in docs/peer-protocol.md,
 * section "Transport".
 *
 * Model: the transport lives on one libevent event_base and is driven by
 * that loop.  Callers hand it whole messages (peer_transport_send) and get
 * whole messages back (cbs.on_message), each tagged with the node id the
 * other side announced in its HELLO.  Delivery is best effort: a frame
 * handed to a connection that breaks is lost, and the layers above
 * (coordinator request timeouts, SWIM probes, gossip rounds) retry.
 *
 * Thread: everything here runs on the loop thread of `base` (STYLE.md 1.6,
 * "one loop thread owns every state machine"); no function is thread-safe.
 * The process must ignore SIGPIPE (ringkvd does): libevent writes to peer
 * sockets that the other side may have reset.
 */
#ifndef RINGKV_SERVER_PEER_TRANSPORT_H
#define RINGKV_SERVER_PEER_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/peer.h"

struct event_base;
struct peer_transport; /* opaque */
struct ssl_ctx_st;     /* OpenSSL's SSL_CTX */

#define PEER_TRANSPORT_DEFAULT_QUEUE          (64u * 1024u * 1024u) /* bytes */
#define PEER_TRANSPORT_DEFAULT_CONNECT_MS     1000u
#define PEER_TRANSPORT_DEFAULT_BACKOFF_MIN_MS 100u
#define PEER_TRANSPORT_DEFAULT_BACKOFF_MAX_MS 5000u

/*
 * Why a peer went away (on_peer_disconnected's `reason`), an RK_* code:
 * RK_ECLOSED (the other side closed the connection), RK_EIO (socket
 * error), RK_EPROTO (it sent a malformed frame), RK_EVERSION (a frame of a
 * newer protocol version), RK_ETIMEDOUT (a retired connection's deadline),
 * RK_ENOMEM (this node ran out of memory handling it).
 */

struct peer_transport_config
{
    const char *self_id;        /* this node's id, 1..PEER_MAX_NODE_ID bytes */
    const char *cluster_name;   /* 0..PEER_MAX_CLUSTER bytes; NULL = "" */
    const char *bind_host;      /* listen address; NULL = "127.0.0.1" */
    const char *advertise_host; /* host sent in HELLO; NULL = bind_host */
    uint16_t peer_port;         /* listen port; 0 = any free port (tests) */
    uint16_t resp_port;         /* announced in HELLO */
    uint16_t http_port;         /* announced in HELLO */
    size_t max_queue_bytes;     /* per peer, 0 = PEER_TRANSPORT_DEFAULT_QUEUE */
    uint32_t max_body_bytes;    /* largest body accepted, 0 = codec default */
    uint32_t connect_timeout_ms; /* TCP connect + HELLO exchange; 0 = 1000 */
    uint32_t backoff_min_ms;     /* first reconnect delay; 0 = 100 */
    uint32_t backoff_max_ms;     /* cap of the delay; 0 = 5000 */
    /* The cluster secret (required): PEER_AUTH_SECRET_MIN..MAX bytes,
     * copied.  Every connection runs the handshake of proto/peer_auth.h
     * after HELLO; until it succeeds the peer is unknown (no callback, no
     * peer entry made or changed, frames of at most 1 KiB, the connect
     * timeout as deadline). */
    const unsigned char *secret;
    size_t secret_len;
    /* Mutual TLS (tls-cluster yes; peer_tls.h): NULL for plain TCP, else
     * the context every connection, dialed or accepted, runs TLS with
     * (server/tls.h tls_peer_ctx_new: both ends present and verify a
     * certificate).  The node id of the other end's HELLO must be named
     * by its certificate (peer_tls_cert_names), and the secret's
     * handshake runs inside TLS.  The transport takes its own reference
     * (SSL_CTX_up_ref); the caller keeps and frees its own. */
    struct ssl_ctx_st *tls_ctx;
};

/*
 * Callbacks, all run on the loop thread with `data` = the pointer given to
 * peer_transport_create.  `node_id` (`id_len` bytes, followed by a NUL;
 * the id of the peer's HELLO) and every byte string of `msg`/`hello` are
 * views valid only during the call.  A callback may
 * call peer_transport_send, _set_fault, _clear_faults, _stats and _list;
 * it must not call peer_transport_destroy.  Any callback may be NULL.
 */
struct peer_transport_cbs
{
    /* A frame from a peer whose HELLO was accepted (never the HELLO). */
    void (*on_message)(void *data,
                       const char *node_id,
                       size_t id_len,
                       const struct peer_msg *msg);
    /* A peer's first connection finished the HELLO exchange. */
    void (*on_peer_connected)(void *data,
                              const char *node_id,
                              size_t id_len,
                              const struct peer_hello *hello);
    /* The peer's connection went away; `reason` as listed above. */
    void (*on_peer_disconnected)(void *data,
                                 const char *node_id,
                                 size_t id_len,
                                 int reason);
    /* The handshake of a connection this node dialed to host:port failed:
     * a wrong cluster secret (RK_EPERM) or a broken handshake (RK_EPROTO);
     * with `tls` true, TLS refused it (RK_EPERM: a certificate refused by
     * either end, or one that does not name the peer's id; RK_EPROTO:
     * the other end speaks TLS and this one does not, or the reverse).
     * `why` is a view valid during the call.  The transport retries as
     * after any failed dial. */
    void (*on_auth_failed)(void *data,
                           const char *host,
                           uint16_t port,
                           int reason,
                           bool tls,
                           const char *why);
};

/* Counters: since create, totals or of one peer (see peer_transport_stats). */
struct peer_transport_stats
{
    uint64_t frames_out;    /* frames accepted by send (queued or written) */
    uint64_t bytes_out;     /* their bytes, headers included */
    uint64_t frames_in;     /* frames received after HELLO (dropped too) */
    uint64_t bytes_in;      /* their bytes */
    uint64_t connects;      /* HELLO exchanges completed */
    uint64_t reconnects;    /* dials made by the backoff timer */
    uint64_t dial_failures; /* outbound connections lost before HELLO */
    uint64_t dropped_out;   /* frames discarded by the fault hook on send */
    uint64_t dropped_in;    /* frames discarded by the fault hook on receipt */
    uint64_t busy;          /* sends refused with RK_EBUSY */
    uint64_t rejected;      /* connections closed for a bad frame, version,
                               cluster name or id (totals only) */
    uint64_t auth_failed;   /* of those, for a failed authentication: a
                               wrong secret, a broken handshake, or TLS
                               refused (totals only) */
    uint64_t tls_failed;    /* of those, TLS's: a handshake that failed
                               (no, an expired or an unknown CA's
                               certificate, either end not speaking TLS),
                               or a certificate not naming the HELLO's
                               node id (totals only) */
    size_t queue_bytes;     /* bytes waiting to be written now */
    size_t n_peers;         /* peers known (totals only) */
    size_t n_connected;     /* peers with an established connection */
    size_t n_conns;         /* open sockets, incl. handshaking and retiring */
};

/* One known peer, for peer_transport_list. */
struct peer_transport_peer
{
    const char *node_id; /* NUL-terminated; NULL until its HELLO arrived */
    size_t id_len;
    const char *host;   /* address dialed/announced; NULL if none */
    uint16_t port;      /* its peer port; 0 if none */
    bool connected;     /* an established connection exists */
    size_t queue_bytes; /* bytes waiting to be written */
};

/*
 * Creates a transport on `base` and starts listening on
 * cfg->bind_host:cfg->peer_port.
 * Returns RK_OK and *out (free with peer_transport_destroy); RK_EINVAL
 * for a bad config (empty or too long self_id or names); RK_EIO when the
 * address cannot be resolved or bound (a port in use: errbuf says
 * "cannot listen on HOST:PORT: Address already in use"); RK_ENOMEM.
 * On error *out is untouched and errbuf (errlen bytes, may be 0) holds a
 * one-line reason.  Ownership: cfg's strings are copied; `base` is
 * borrowed and must outlive the transport; `cbs` is copied.
 * Thread: the loop thread of `base`.
 */
int peer_transport_create(struct event_base *base,
                          const struct peer_transport_config *cfg,
                          const struct peer_transport_cbs *cbs,
                          void *data,
                          struct peer_transport **out,
                          char *errbuf,
                          size_t errlen);

/*
 * Closes every connection and the listener and frees `t`; queued frames
 * are discarded and no callback runs.  NULL is a no-op.  Must not be
 * called from inside a transport callback.
 */
void peer_transport_destroy(struct peer_transport *t);

/*
 * Replaces the cluster secret (PEER_AUTH_SECRET_MIN..MAX bytes, copied):
 * connections made from now on authenticate with it; established ones
 * stay.  Used when a node joins a cluster with that cluster's secret.
 * RK_EINVAL on a bad length.  Thread: the loop's.
 */
int peer_transport_set_secret(struct peer_transport *t,
                              const unsigned char *secret,
                              size_t len);

/*
 * Replaces the TLS context (CONFIG SET of tls-* files: peer_tls.h):
 * connections made from now on use `ctx`, established ones keep theirs.
 * The transport takes its own reference.  RK_EINVAL when `ctx` is NULL
 * or the transport runs plain TCP (tls-cluster is fixed at start).
 * Thread: the loop's.
 */
int peer_transport_set_tls(struct peer_transport *t, struct ssl_ctx_st *ctx);

/* Whether connections run TLS (cfg->tls_ctx was given). */
bool peer_transport_is_tls(const struct peer_transport *t);

/* The port actually listened on (useful when cfg->peer_port was 0). */
uint16_t peer_transport_port(const struct peer_transport *t);

/*
 * Encodes `msg` at once and queues the frame for the peer, connecting on
 * demand.
 *  - `node_id` (NUL-terminated) names the peer; it may be NULL on first
 *    contact (a JOIN to a seed), then `host`/`port` name it and the
 *    connection is mapped to the id its HELLO announces.
 *  - `host`/`port`: the peer's address (numeric, or a name resolved with a
 *    blocking getaddrinfo on the loop thread).  May be NULL/0 when the
 *    peer is known already (it connected to us or was sent to before);
 *    when given for a known node id they replace its stored address.
 * Frames are written in send order on one connection.  While the peer is
 * not connected they wait in its queue (kept across failed dials) and go
 * out right after the HELLO exchange; the transport redials with
 * exponential backoff while frames wait.  Frames already handed to a
 * connection that then breaks are lost.
 * Returns RK_OK (also when the fault hook drops the frame); RK_EINVAL
 * (bad arguments or a message the codec refuses); RK_ETOOBIG (body over
 * the codec limit); RK_EBUSY when the peer's queue would pass
 * max_queue_bytes (a frame larger than the limit is still accepted when
 * the queue is empty), the caller treats it as a failed send;
 * RK_ENOTFOUND when node_id is unknown, not connected and no address is
 * given; RK_ENOMEM.  Ownership: `msg` is borrowed for the call.
 * Complexity: O(frame) plus O(peers) for the lookup.
 */
int peer_transport_send(struct peer_transport *t,
                        const char *node_id,
                        const char *host,
                        uint16_t port,
                        const struct peer_msg *msg);

/*
 * Like peer_transport_send for a frame already encoded by the codec
 * (peer_encode: header and body, `len` bytes; cluster/node.h's NODE_SEND).
 * The frame is not re-validated here: the receiver checks it.  Returns
 * and ownership as peer_transport_send (`frame` borrowed for the call).
 */
int peer_transport_send_frame(struct peer_transport *t,
                              const char *node_id,
                              const char *host,
                              uint16_t port,
                              const void *frame,
                              size_t len);

/*
 * Fault hook (tests): drop frames received from (`drop_in`) and/or sent to
 * (`drop_out`) the node `node_id`; both false removes the rule.  Dropped
 * frames count in dropped_in/dropped_out; the connection and HELLO are not
 * affected, so this looks like a silent network partition to the layers
 * above.  Always compiled; ringkvd exposes it only in builds with
 * RK_TEST_BUILD (the sanitizer and TSan builds).
 * Returns RK_OK, RK_EINVAL (bad id) or RK_ENOMEM.
 */
int peer_transport_set_fault(struct peer_transport *t,
                             const char *node_id,
                             bool drop_in,
                             bool drop_out);

/* Removes every fault rule. */
void peer_transport_clear_faults(struct peer_transport *t);

/*
 * Fills *out with the totals (node_id NULL) or the counters of one peer.
 * Returns RK_OK or RK_ENOTFOUND (unknown node id; *out untouched).
 * Complexity: O(peers).
 */
int peer_transport_stats(const struct peer_transport *t,
                         const char *node_id,
                         struct peer_transport_stats *out);

/*
 * Writes up to `cap` known peers into out[] and returns how many peers
 * there are (may exceed cap).  Strings are views valid until the next
 * call into the transport or the next loop iteration.  Complexity: O(peers).
 */
size_t peer_transport_list(const struct peer_transport *t,
                           struct peer_transport_peer *out,
                           size_t cap);

#endif /* RINGKV_SERVER_PEER_TRANSPORT_H */

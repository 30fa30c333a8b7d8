/*
 * peer_tls.c - mutual TLS between peers (tls-cluster yes): the
 * certificate rules of peer_tls.h, and the TLS half of the peer transport
 * (declared in peer_transport_internal.h): OpenSSL bufferevents for its
 * connections, handshake failures told apart and logged, the certificate
 * checked against the node id of the HELLO, and a plain node's view of a
 * TLS peer.  docs/peer-protocol.md section 8, docs/security.md.
 *
 * Where a connection of a TLS transport can fail, and the log event:
 *
 *   TCP connect refused or unreachable, or closed before any byte came
 *   (a port probe)                       as on a plain port (debug)
 *   TLS handshake error, either end      peer_tls_failed, OpenSSL's reason
 *     (no certificate, expired, unknown CA, no common protocol, ...; in
 *     TLS 1.3 a dialer learns that the acceptor refused its certificate
 *     from the alert its first read gets, after its own side of the
 *     handshake completed: still before the peer handshake ends)
 *   closed by the other end after some bytes, before TLS is up
 *                                        peer_tls_failed
 *   the first bytes received are a plain peer's ("RKVP", OpenSSL: wrong
 *     version number)                    peer_tls_mismatch (the other end
 *     runs tls-cluster no); an accepting node answers any bytes that are
 *     not TLS with a TLS alert record in the clear, so that a plain
 *     dialer (or `ringkv cluster join`'s probe) can tell
 *   other bytes that are not TLS (a RESP client)   peer_protocol_error,
 *     not counted as a TLS failure, as on a plain peer port
 *   a plain node receives a TLS record   peer_tls_mismatch
 *   a certificate not naming the HELLO's node id, or a client-only one
 *                                        peer_tls_id_mismatch
 *
 * Every refusal counts in tls_failed and auth_failed, shares the
 * transport's log budget (10 lines a second), closes the connection at
 * once, and on a connection this node dialed reaches on_auth_failed
 * (so a `cluster join` fails at once with the reason).  A handshake that
 * neither completes nor fails is closed by the connection's deadline
 * (connect_timeout_ms), like any handshake.
 */
#include "server/peer_tls.h"

#include <event2/bufferevent_ssl.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/error.h"
#include "common/log.h"
#include "server/peer_transport_internal.h"
#include "server/tls.h"

#define NAMES_LOGGED     8 /* names listed by peer_tls_cert_names_str */
#define PT_TLS_DRAIN_MAX (256u * 1024) /* bytes one pt__tls_drain takes */

/* ---- certificates -------------------------------------------------------- */

/* Called for each name; returning true stops the walk. */
typedef bool (*name_cb)(void *data,
                        const char *kind,
                        const unsigned char *s,
                        size_t len);

/* Walks the subject's CNs, then the SAN entries of type DNS and URI.
 * Returns true when `cb` stopped it. */
static bool each_name(X509 *cert, name_cb cb, void *data)
{
    X509_NAME *subj = X509_get_subject_name(cert);
    int i = -1;
    while (subj &&
           (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0) {
        ASN1_STRING *as =
            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, as);
        bool stop = n >= 0 && cb(data, "CN", utf8, (size_t)n);
        OPENSSL_free(utf8);
        if (stop) {
            return true;
        }
    }
    GENERAL_NAMES *sans =
        X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    bool stop = false;
    for (int k = 0; sans && !stop && k < sk_GENERAL_NAME_num(sans); k++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, k);
        if (g->type != GEN_DNS && g->type != GEN_URI) {
            continue;
        }
        const ASN1_IA5STRING *as =
            g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
        stop = cb(data, g->type == GEN_DNS ? "DNS" : "URI",
                  ASN1_STRING_get0_data(as), (size_t)ASN1_STRING_length(as));
    }
    GENERAL_NAMES_free(sans);
    return stop;
}

struct match
{
    const char *id;
    size_t len;
};

static bool match_cb(void *data,
                     const char *kind,
                     const unsigned char *s,
                     size_t len)
{
    (void)kind;
    const struct match *m = data;
    return len == m->len && len > 0 && memchr(s, 0, len) == NULL &&
           memcmp(s, m->id, len) == 0;
}

bool peer_tls_cert_names(X509 *cert, const char *id, size_t len)
{
    struct match m = {id, len};
    return cert != NULL && id != NULL && each_name(cert, match_cb, &m);
}

bool peer_tls_cert_is_for_nodes(X509 *cert)
{
    return cert != NULL &&
           X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0) == 1 &&
           X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0) == 1;
}

struct names
{
    char *out;
    size_t cap, len;
    unsigned n;
};

static bool names_cb(void *data,
                     const char *kind,
                     const unsigned char *s,
                     size_t len)
{
    struct names *nm = data;
    char esc[PEER_MAX_NODE_ID + 1];
    if (len > PEER_MAX_NODE_ID) {
        len = PEER_MAX_NODE_ID; /* longer than any node id: cut for logs */
    }
    int w = snprintf(nm->out + nm->len, nm->cap - nm->len, "%s%s=%s",
                     nm->n ? "," : "", kind,
                     pt__safe_id((const char *)s, len, esc, sizeof(esc)));
    if (w > 0) {
        nm->len +=
            (size_t)w < nm->cap - nm->len ? (size_t)w : nm->cap - nm->len - 1;
    }
    return ++nm->n >= NAMES_LOGGED || nm->len + 1 >= nm->cap;
}

const char *peer_tls_cert_names_str(X509 *cert, char *out, size_t cap)
{
    struct names nm = {out, cap, 0, 0};
    out[0] = '\0';
    if (cert != NULL && cap > 1) {
        each_name(cert, names_cb, &nm);
    }
    if (nm.n == 0) {
        snprintf(out, cap, "none");
    }
    return out;
}

int peer_tls_ctx_check(SSL_CTX *ctx,
                       const char *node_id,
                       char *err,
                       size_t errlen)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    char id[PEER_MAX_NODE_ID + 1], names[512];
    const char *sid = pt__safe_id(node_id, strlen(node_id), id, sizeof(id));
    if (cert == NULL) {
        snprintf(err, errlen, "tls-cert-file holds no certificate");
        return RK_EINVAL;
    }
    if (!peer_tls_cert_names(cert, node_id, strlen(node_id))) {
        snprintf(err, errlen,
                 "tls-cluster: the certificate of tls-cert-file names %s, "
                 "not this node's id %s: every node needs a certificate "
                 "whose CN or subjectAltName (DNS or URI) is its node id, "
                 "or the other nodes refuse it (scripts/gen-test-certs.sh "
                 "DIR --node %s makes one for tests)",
                 peer_tls_cert_names_str(cert, names, sizeof(names)), sid, sid);
        return RK_EINVAL;
    }
    if (!peer_tls_cert_is_for_nodes(cert)) {
        snprintf(err, errlen,
                 "tls-cluster: the certificate of tls-cert-file is not valid "
                 "for both TLS server and client use: a node both accepts "
                 "and dials peers, so its certificate needs "
                 "extendedKeyUsage serverAuth,clientAuth (or none)");
        return RK_EINVAL;
    }
    return RK_OK;
}

/* ---- the transport's TLS half -------------------------------------------- */

void pt__tls_hold(struct peer_transport *t, SSL_CTX *ctx)
{
    if (ctx != NULL) {
        SSL_CTX_up_ref(ctx);
    }
    SSL_CTX_free(t->tls_ctx); /* conns made from it keep their reference */
    t->tls_ctx = ctx;
}

int peer_transport_set_tls(struct peer_transport *t, SSL_CTX *ctx)
{
    if (t == NULL || ctx == NULL || t->tls_ctx == NULL) {
        return RK_EINVAL;
    }
    pt__tls_hold(t, ctx);
    rk_log(RK_LOG_INFO, "peer_tls_reloaded",
           "msg=\"new peer connections use the new certificates\"");
    return RK_OK;
}

bool peer_transport_is_tls(const struct peer_transport *t)
{
    return t->tls_ctx != NULL;
}

struct bufferevent *pt__tls_bev_new(struct peer_transport *t,
                                    evutil_socket_t fd,
                                    bool outbound)
{
    SSL *ssl = SSL_new(t->tls_ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return NULL;
    }
    /* libevent owns ssl from the call on, and frees it when the call
     * fails (BEV_OPT_CLOSE_ON_FREE); fd stays the caller's then */
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        t->base, fd, ssl,
        outbound ? BUFFEREVENT_SSL_CONNECTING : BUFFEREVENT_SSL_ACCEPTING,
        BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL) {
        /* an EOF without close_notify (every libevent 2.1 close, and the
         * retire's shutdown(SHUT_WR)) is an end of stream, not an error */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        /* one read() takes every record that has arrived instead of two
         * per record (header, then body); pt__tls_drain hands over what
         * libevent's read loop leaves behind */
        tls_set_read_ahead(bev);
    }
    return bev;
}

int pt__tls_drain(struct conn *c, struct rk_buf *in, size_t *added)
{
    return tls_drain(c->bev, in, PT_TLS_DRAIN_MAX, added);
}

/* BIO callback of a conn's socket while its TLS handshake runs: keeps the
 * first bytes received (c->first).  Touches `c` only on a read, which
 * never happens once the conn is released. */
static long watch_cb(BIO *b,
                     int oper,
                     const char *argp,
                     size_t len,
                     int argi,
                     long argl,
                     int ret,
                     size_t *processed)
{
    (void)len;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed) {
        struct conn *c = (struct conn *)BIO_get_callback_arg(b);
        for (size_t i = 0; c && i < *processed && c->n_first < 4; i++) {
            c->first[c->n_first++] = (unsigned char)argp[i];
        }
    }
    return ret;
}

void pt__tls_watch(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    BIO *rbio = ssl ? SSL_get_rbio(ssl) : NULL;
    if (rbio != NULL) {
        BIO_set_callback_arg(rbio, (char *)c);
        BIO_set_callback_ex(rbio, watch_cb);
    }
}

/* Stops pt__tls_watch's callback (TLS is up). */
static void unwatch(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    BIO *rbio = ssl ? SSL_get_rbio(ssl) : NULL;
    if (rbio != NULL) {
        BIO_set_callback_ex(rbio, NULL);
        BIO_set_callback_arg(rbio, NULL);
    }
}

/* Logs (within the budget) and counts a refused TLS connection, tells the
 * cluster driver when this node dialed it, and closes `c`. */
static void tls_refuse(struct conn *c,
                       const char *event,
                       int reason,
                       const char *why,
                       const char *msg)
{
    struct peer_transport *t = c->t;
    t->st.tls_failed++;
    t->st.auth_failed++;
    if (pt__auth_log_allowed(t)) {
        char a[PEER_MAX_NODE_ID + 1], q[700], m[600];
        const struct peer *p = c->peer;
        rk_log(RK_LOG_WARN, event,
               "addr=%s direction=%s peer=%s reason=%s failures=%" PRIu64
               " msg=%s",
               c->addr, c->outbound ? "out" : "in",
               p && p->id ? pt__safe_id(p->id, p->id_len, a, sizeof(a))
                          : "unknown",
               rk_log_quote(why, q, sizeof(q)), t->st.tls_failed,
               rk_log_quote(msg, m, sizeof(m)));
    }
    if (c->outbound && c->peer && c->peer->host && t->cbs.on_auth_failed) {
        t->cbs.on_auth_failed(t->data, c->peer->host, c->peer->port, reason,
                              true, why);
    }
    /* a TLS conn has nothing it could still write; a plain one flushes
     * its HELLO, which tells a TLS dialer that this end is plain */
    pt__conn_refuse(c, reason, !c->tls);
}

/*
 * OpenSSL's reason for c's failure into `why`: the earliest TLS error
 * libevent kept and, when this end's verification of the other's
 * certificate failed, why.  Returns false when there is none (a socket
 * error or an EOF).  *not_tls: the bytes received were not TLS at all.
 */
static bool tls_reason(struct conn *c, char *why, size_t cap, bool *not_tls)
{
    unsigned long e, first = 0;
    while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
        /* libevent also keeps SSL_get_error codes (no library) and
         * socket errors: not TLS's reasons */
        if (ERR_GET_LIB(e) != 0 && ERR_GET_LIB(e) != ERR_LIB_SYS) {
            first = e; /* libevent returns the latest first */
        }
    }
    ERR_clear_error();
    if (first == 0) {
        return false;
    }
    const char *r = ERR_reason_error_string(first);
    char buf[256];
    if (r == NULL) {
        ERR_error_string_n(first, buf, sizeof(buf));
        r = buf;
    }
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        snprintf(why, cap, "%s: %s", r, X509_verify_cert_error_string(vr));
    } else {
        snprintf(why, cap, "%s", r);
    }
    *not_tls = ERR_GET_LIB(first) == ERR_LIB_SSL &&
               ERR_GET_REASON(first) == SSL_R_WRONG_VERSION_NUMBER;
    return true;
}

/* A fatal protocol_version alert record in the clear, as a TLS server
 * sends before any key exists: tells a plain dialer that this end speaks
 * TLS (pt__plain_saw_tls on its side).  Best effort. */
static void send_alert(const struct conn *c)
{
    static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00,
                                          0x02, 0x02, 0x46};
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0) {
        ssize_t w = send(fd, alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
}

static const char same_setting[] =
    "every node of a cluster needs the same tls-cluster setting";

bool pt__tls_event(struct conn *c, short what)
{
    if (what & BEV_EVENT_CONNECTED) {
        c->tls_up = true;
        unwatch(c);
        /* records read ahead with the handshake's last message: no read
         * callback would come for them before more bytes do */
        tls_read_pending(c->bev);
        if (rk_log_enabled(RK_LOG_DEBUG)) {
            char d[64];
            pt__tls_describe(c, d, sizeof(d));
            rk_log(RK_LOG_DEBUG, "peer_tls_handshake", "addr=%s direction=%s%s",
                   c->addr, c->outbound ? "out" : "in", d);
        }
        return true;
    }
    char why[512], msg[300];
    bool not_tls = false;
    if (c->state != CONN_HANDSHAKE) {
        /* an established connection's end: the usual path, with
         * OpenSSL's reason when it has one (a bad record, say) */
        if ((what & BEV_EVENT_ERROR) &&
            tls_reason(c, why, sizeof(why), &not_tls)) {
            char q[600];
            rk_log(RK_LOG_INFO, "peer_tls_error", "addr=%s reason=%s", c->addr,
                   rk_log_quote(why, q, sizeof(q)));
        }
        return false;
    }
    if (!tls_reason(c, why, sizeof(why), &not_tls)) {
        if (c->tls_up || c->n_first == 0) {
            /* a close after TLS, or before a byte came (a refused dial,
             * a port probe such as RINGKV.CLUSTER JOIN's): as on a
             * plain port, no TLS failure */
            return false;
        }
        snprintf(why, sizeof(why),
                 "closed by the other end during the TLS handshake");
    }
    bool plain_peer = c->n_first == 4 && memcmp(c->first, "RKVP", 4) == 0;
    if (not_tls && !c->outbound) {
        /* a plain peer, or a client probing the port (`ringkv cluster
         * join` does): the alert tells either that TLS is spoken here */
        send_alert(c);
    }
    if (not_tls && !plain_peer && !c->outbound) {
        /* not a ringkv peer at all: no TLS failure of a peer, like the
         * protocol errors of the plain port */
        if (pt__auth_log_allowed(c->t)) {
            rk_log(RK_LOG_WARN, "peer_protocol_error",
                   "addr=%s reason=\"not TLS and not a ringkv peer (first "
                   "bytes %02x %02x %02x %02x): this peer port speaks TLS "
                   "(tls-cluster yes)\"",
                   c->addr, c->first[0], c->first[1], c->first[2], c->first[3]);
        }
        pt__conn_refuse(c, RK_EPROTO, false);
        return true;
    }
    if (not_tls) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof(why) - n,
                 plain_peer ? " (the peer speaks the plain peer protocol: "
                              "tls-cluster no)"
                            : " (the other end does not speak TLS)");
        snprintf(msg, sizeof(msg),
                 "the peer does not speak TLS: it runs with tls-cluster no, "
                 "this node with tls-cluster yes; %s",
                 same_setting);
        tls_refuse(c, "peer_tls_mismatch", RK_EPROTO, why, msg);
        return true;
    }
    tls_refuse(c, "peer_tls_failed", RK_EPERM, why,
               "mutual TLS between peers: each node needs a valid "
               "certificate from the cluster's CA (tls-ca-cert-file) that "
               "names its node id, and accepts only such certificates "
               "(docs/security.md)");
    return true;
}

bool pt__tls_check_hello(struct conn *c, const struct peer_hello *h)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    char a[PEER_MAX_NODE_ID + 1], names[400], why[600];
    const char *id = pt__safe_id(h->node_id.ptr, h->node_id.len, a, sizeof(a));
    if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
        /* cannot happen: the context requires a verified certificate */
        snprintf(why, sizeof(why), "no verified certificate (HELLO as %s)", id);
    } else if (!peer_tls_cert_names(cert, h->node_id.ptr, h->node_id.len)) {
        snprintf(why, sizeof(why),
                 "its certificate names %s, not the node id %s of its HELLO",
                 peer_tls_cert_names_str(cert, names, sizeof(names)), id);
    } else if (!peer_tls_cert_is_for_nodes(cert)) {
        snprintf(why, sizeof(why),
                 "its certificate (%s) is not valid for both TLS server and "
                 "client use: a client certificate is no node's",
                 peer_tls_cert_names_str(cert, names, sizeof(names)));
    } else {
        return true;
    }
    tls_refuse(c, "peer_tls_id_mismatch", RK_EPERM, why,
               "a node's certificate must name its own node id (CN or "
               "subjectAltName DNS/URI) and be valid for serverAuth and "
               "clientAuth (docs/security.md)");
    return false;
}

bool pt__plain_saw_tls(struct conn *c, const unsigned char *p, size_t len)
{
    /* a TLS record header: alert (21) or handshake (22), version 3.x */
    if (len < 2 || (p[0] != 0x15 && p[0] != 0x16) || p[1] != 0x03) {
        return false;
    }
    char msg[300];
    snprintf(msg, sizeof(msg),
             "the peer speaks TLS: it runs with tls-cluster yes, this node "
             "with tls-cluster no; %s",
             same_setting);
    tls_refuse(c, "peer_tls_mismatch", RK_EPROTO,
               "the peer speaks TLS (tls-cluster yes), this node does not "
               "(tls-cluster no)",
               msg);
    return true;
}

void pt__tls_describe(const struct conn *c, char *out, size_t cap)
{
    SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    if (ssl == NULL) {
        out[0] = '\0';
        return;
    }
    snprintf(out, cap, " tls=%s", SSL_get_version(ssl));
}

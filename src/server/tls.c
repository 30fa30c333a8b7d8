/*
 * tls.c - see tls.h.  Everything cryptographic is OpenSSL's.
 */
#include "server/tls.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "server/config.h"

/* OpenSSL's reason for the last failure, after `what`. */
static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

/* The protocol range of tls-protocols ("TLSv1.2 TLSv1.3", either, any
 * order); false for anything else (older versions are not allowed). */
static bool protocols(const char *spec, int *lo, int *hi)
{
    bool v12 = false, v13 = false;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", spec[0] ? spec : "TLSv1.2 TLSv1.3");
    for (char *save = NULL, *t = strtok_r(buf, " ,", &save); t;
         t = strtok_r(NULL, " ,", &save)) {
        if (strcasecmp(t, "TLSv1.2") == 0) {
            v12 = true;
        } else if (strcasecmp(t, "TLSv1.3") == 0) {
            v13 = true;
        } else {
            return false;
        }
    }
    if (!v12 && !v13) {
        return false;
    }
    *lo = v12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    *hi = v13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    return true;
}

/* err = `fmt` (one %s: the file `f`), then OpenSSL's reason. */
static void file_err(char *err, size_t errlen, const char *fmt, const char *f)
{
    char what[4200];
    snprintf(what, sizeof(what), fmt, f);
    ssl_err(err, errlen, what);
}

/*
 * A context of `method` with what the RESP port and the peers share: the
 * protocol range, the options, the certificate chain and key (which must
 * match), the CA file when set, the ciphers.  NULL with err set.
 */
static SSL_CTX *ctx_common(const struct rk_config *cfg,
                           const SSL_METHOD *method,
                           char *err,
                           size_t errlen)
{
    int lo = 0, hi = 0;
    if (!protocols(cfg->tls_protocols, &lo, &hi)) {
        snprintf(err, errlen,
                 "tls-protocols must name TLSv1.2 and/or TLSv1.3 (older "
                 "versions are not offered)");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        ssl_err(err, errlen, "cannot make a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* with client verification on, OpenSSL refuses to resume a session of
     * a context without an id (SSL_R_SESSION_ID_CONTEXT_UNINITIALIZED)
     * instead of treating it as a miss: TLS 1.2 reconnects would fail */
    static const unsigned char sid[] = "ringkv";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        file_err(err, errlen, "cannot load tls-cert-file %s",
                 cfg->tls_cert_file);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file,
                                           SSL_FILETYPE_PEM) != 1 ||
               SSL_CTX_check_private_key(ctx) != 1) {
        file_err(err, errlen,
                 "cannot load tls-key-file %s (or it does not match the "
                 "certificate)",
                 cfg->tls_key_file);
    } else if (cfg->tls_ca_cert_file[0] &&
               SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_cert_file,
                                             NULL) != 1) {
        file_err(err, errlen, "cannot load tls-ca-cert-file %s",
                 cfg->tls_ca_cert_file);
    } else if (cfg->tls_ciphers[0] &&
               SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
        ssl_err(err, errlen, "invalid tls-ciphers");
    } else if (cfg->tls_ciphersuites[0] &&
               SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
        ssl_err(err, errlen, "invalid tls-ciphersuites");
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_ctx_new(const struct rk_config *cfg, char *err, size_t errlen)
{
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
        snprintf(err, errlen, "tls-port needs tls-cert-file and tls-key-file");
        return NULL;
    }
    if (cfg->tls_auth_clients != 0 && cfg->tls_ca_cert_file[0] == '\0') {
        snprintf(err, errlen,
                 "tls-auth-clients %s needs tls-ca-cert-file (the CA that "
                 "signs client certificates), or set tls-auth-clients no",
                 cfg->tls_auth_clients == 1 ? "yes" : "optional");
        return NULL;
    }
    SSL_CTX *ctx = ctx_common(cfg, TLS_server_method(), err, errlen);
    if (ctx == NULL) {
        return NULL;
    }
    int mode = cfg->tls_auth_clients == 1
                   ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
               : cfg->tls_auth_clients == 2 ? SSL_VERIFY_PEER
                                            : SSL_VERIFY_NONE;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return ctx;
}

SSL_CTX *tls_peer_ctx_new(const struct rk_config *cfg, char *err, size_t errlen)
{
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0' ||
        cfg->tls_ca_cert_file[0] == '\0') {
        snprintf(err, errlen,
                 "tls-cluster yes needs tls-cert-file and tls-key-file (this "
                 "node's certificate, naming its node id) and "
                 "tls-ca-cert-file (the cluster's CA)");
        return NULL;
    }
    SSL_CTX *ctx = ctx_common(cfg, TLS_method(), err, errlen);
    if (ctx == NULL) {
        return NULL;
    }
    /* Both ends present a certificate and check the other's, whichever
     * dialed (mutual TLS).  A peer that closes without close_notify is an
     * end of stream, not an error: libevent 2.1 closes without one, and
     * frames carry their own length and checksum, so a cut stream loses
     * at most the frame being received, as a closed connection does. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* no resumption between peers (a dial makes a fresh handshake): no
     * TLS 1.3 tickets to send after every handshake */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* a few busy, long-lived connections: keep their record buffers
     * instead of freeing and allocating them around every record */
    SSL_CTX_clear_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

void tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

SSL *tls_ssl_new(SSL_CTX *ctx)
{
    return ctx ? SSL_new(ctx) : NULL;
}

bool tls_peer_verified(SSL *ssl)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    bool ok = cert != NULL && SSL_get_verify_result(ssl) == X509_V_OK;
    X509_free(cert);
    return ok;
}

void tls_describe(SSL *ssl, char *out, size_t cap)
{
    snprintf(out, cap, "tls_version=%s cipher=%s", SSL_get_version(ssl),
             SSL_get_cipher_name(ssl));
}

#define TLS_DRAIN_STEP (16u * 1024) /* bytes asked of one SSL_read */

void tls_set_read_ahead(struct bufferevent *bev)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (ssl != NULL) {
        SSL_set_read_ahead(ssl, 1);
    }
}

void tls_read_pending(struct bufferevent *bev)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (ssl != NULL && SSL_has_pending(ssl)) {
        bufferevent_trigger(
            bev, EV_READ,
            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
}

int tls_drain(struct bufferevent *bev,
              struct rk_buf *in,
              size_t max,
              size_t *added)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    size_t total = 0;
    *added = 0;
    while (ssl != NULL && SSL_has_pending(ssl) && total < max) {
        if (rk_buf_reserve(in, TLS_DRAIN_STEP) != RK_OK) {
            return RK_ENOMEM;
        }
        ERR_clear_error();
        int r = SSL_read(ssl, in->base + in->len, TLS_DRAIN_STEP);
        if (r <= 0) {
            /* a partial record (more comes with the socket's next
             * bytes), or the end or an error, which libevent's next
             * read reports: nothing to do here */
            ERR_clear_error();
            break;
        }
        in->len += (size_t)r;
        total += (size_t)r;
    }
    if (total >= max) {
        tls_read_pending(bev); /* the rest in a later pass of the loop:
                                  others get their turn */
    }
    *added = total;
    return RK_OK;
}

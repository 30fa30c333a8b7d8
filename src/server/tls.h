/*
 * tls.h - TLS for RESP clients (issue 15 item 2) and between peers (item
 * 1, tls-cluster): OpenSSL's SSL_CTX built from Redis's settings
 * (tls-port, tls-cert-file, tls-key-file, tls-ca-cert-file,
 * tls-auth-clients yes|no|optional, tls-protocols, tls-ciphers,
 * tls-ciphersuites), used by server.c and http.c, and by the peer
 * transport (peer_tls.h), with libevent's OpenSSL bufferevents.  TLS 1.2
 * and 1.3 only.  docs/security.md, "TLS".
 */
#ifndef RINGKV_SERVER_TLS_H
#define RINGKV_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct rk_buf;
struct rk_config;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/*
 * Builds a server SSL_CTX from cfg: the certificate chain and key (which
 * must match), the client CA file (required unless tls-auth-clients is
 * no), the allowed protocols (TLSv1.2 and/or TLSv1.3; anything older is
 * refused), the ciphers.  NULL with `err` set on any problem (the file,
 * OpenSSL's reason).  Thread: any; blocking file reads.
 */
SSL_CTX *tls_ctx_new(const struct rk_config *cfg, char *err, size_t errlen);

/*
 * Builds the SSL_CTX of peer connections (tls-cluster yes; peer_tls.h),
 * usable for both ends (TLS_method): this node's certificate chain and
 * key and the CA file, all three required; the same protocols and
 * ciphers as the RESP port; the other end's certificate is always
 * required and verified against the CA (SSL_VERIFY_PEER |
 * SSL_VERIFY_FAIL_IF_NO_PEER_CERT), whichever end dialed; an EOF without
 * close_notify counts as a close (SSL_OP_IGNORE_UNEXPECTED_EOF: the
 * peer protocol frames itself); no session tickets or cache.  NULL with
 * `err` set on any problem.  Returns-owned: free with tls_ctx_free.
 * Thread: any; blocking file reads.
 */
SSL_CTX *tls_peer_ctx_new(const struct rk_config *cfg,
                          char *err,
                          size_t errlen);

/* Frees a context (connections made from it keep their reference). */
void tls_ctx_free(SSL_CTX *ctx);

/* A new server-side SSL for one connection, or NULL. */
SSL *tls_ssl_new(SSL_CTX *ctx);

/* Whether the client of `ssl` presented a certificate that verified. */
bool tls_peer_verified(SSL *ssl);

/*
 * Read-ahead for a connection over libevent's OpenSSL bufferevent: one
 * read() takes every record that has arrived instead of two per record
 * (header, then body).  libevent 2.1 stops its read loop at SSL_pending()
 * == 0, which does not count whole records left in the read-ahead buffer,
 * so after each read callback the owner calls tls_drain: it appends what
 * those records hold to `in` (at most `max` bytes; more stays and a read
 * callback is scheduled for it), *added = bytes appended.  Returns RK_OK
 * or RK_ENOMEM.  Also call it once the handshake completed (records may
 * have come with its last message).  Thread: the bufferevent's loop.
 */
void tls_set_read_ahead(struct bufferevent *bev);
/* Schedules a read callback when OpenSSL holds records already read (after
 * the handshake, or a tls_drain that stopped at its max). */
void tls_read_pending(struct bufferevent *bev);
int tls_drain(struct bufferevent *bev,
              struct rk_buf *in,
              size_t max,
              size_t *added);

/* "tls_version=... cipher=..." of an established connection, into out. */
void tls_describe(SSL *ssl, char *out, size_t cap);

#endif

/*
 * peer_tls.h - mutual TLS between peers (issue 15 item 1, `tls-cluster
 * yes`; docs/security.md "Mutual TLS between peers", docs/peer-protocol.md
 * section 8): which node ids a certificate names, and whether it may be a
 * node's at all.  The peer transport (peer_transport.c) runs every
 * connection over libevent's OpenSSL bufferevents with the context of
 * server/tls.h tls_peer_ctx_new, and its TLS half lives in peer_tls.c too
 * (declared in peer_transport_internal.h).
 *
 * The rule (docs/security.md): a certificate names node id X when X
 * equals, byte for byte, its subject's commonName or one of its
 * subjectAltName entries of type DNS or URI.  A node's certificate must
 * also be valid for both TLS server and client use (no extendedKeyUsage,
 * or one with serverAuth and clientAuth), since every node both accepts
 * and dials: a client-only certificate from the same CA (tls-auth-clients)
 * can therefore never act as a node.
 *
 * Thread: any (pure functions of the certificate).
 */
#ifndef RINGKV_SERVER_PEER_TLS_H
#define RINGKV_SERVER_PEER_TLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct x509_st X509;
typedef struct ssl_ctx_st SSL_CTX;

/*
 * Whether `cert` names node id `id` (`len` bytes, 1..64; not
 * NUL-terminated necessarily): its subject CN or a SAN DNS or URI entry
 * equals it exactly (case matters; a name with an embedded NUL never
 * matches).  `cert` is borrowed.  Complexity: O(names).
 */
bool peer_tls_cert_names(X509 *cert, const char *id, size_t len);

/*
 * Whether `cert` may be a node's: valid for both TLS server and client
 * use (X509_check_purpose SSL_SERVER and SSL_CLIENT).  Borrowed.
 */
bool peer_tls_cert_is_for_nodes(X509 *cert);

/*
 * The names of `cert` for a log line: "CN=a,DNS=b,URI=c" (at most 8),
 * each escaped like every peer-supplied log field (bytes outside
 * 0x21..0x7e and `"`, `\`, `=` become `?`), truncated to `cap` bytes
 * (NUL included); "none" when it has none.  Returns `out`.
 */
const char *peer_tls_cert_names_str(X509 *cert, char *out, size_t cap);

/*
 * Checks this node's own certificate in `ctx` (tls_peer_ctx_new): it must
 * name `node_id` (NUL-terminated) and be valid for nodes, or every peer
 * would refuse this node.  RK_OK, or RK_EINVAL with a one-line reason
 * (what the certificate names, what to do) in err.  `ctx` is borrowed.
 * Thread: start-up or the loop (CONFIG SET).
 */
int peer_tls_ctx_check(SSL_CTX *ctx,
                       const char *node_id,
                       char *err,
                       size_t errlen);

#endif /* RINGKV_SERVER_PEER_TLS_H */

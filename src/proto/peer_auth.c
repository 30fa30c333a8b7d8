/*
 * peer_auth.c - the cluster-secret handshake of peer connections; see
 * peer_auth.h.  HMAC-SHA-256 is OpenSSL's (RFC 2104, FIPS 180-4).
 */
#include "proto/peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/endian.h"
#include "common/error.h"
#include "common/hex.h"

#define LABEL     "ringkv-peer-auth-1"
#define LABEL_LEN (sizeof(LABEL) - 1)

int peer_auth_mac(const void *secret,
                  size_t secret_len,
                  enum peer_auth_role role_a,
                  const char *id_a,
                  size_t len_a,
                  const char *id_b,
                  size_t len_b,
                  const unsigned char nonce_a[PEER_AUTH_NONCE_LEN],
                  const unsigned char nonce_b[PEER_AUTH_NONCE_LEN],
                  unsigned char out[PEER_AUTH_MAC_LEN])
{
    if (secret_len < PEER_AUTH_SECRET_MIN ||
        secret_len > PEER_AUTH_SECRET_MAX || len_a == 0 ||
        len_a > PEER_MAX_NODE_ID || len_b == 0 || len_b > PEER_MAX_NODE_ID ||
        (role_a != PEER_AUTH_DIALER && role_a != PEER_AUTH_ACCEPTOR)) {
        return RK_EINVAL;
    }
    unsigned char msg[LABEL_LEN + 1 + 2 * (2 + PEER_MAX_NODE_ID) +
                      2 * PEER_AUTH_NONCE_LEN];
    size_t n = 0;
    memcpy(msg, LABEL, LABEL_LEN);
    n += LABEL_LEN;
    msg[n++] = (unsigned char)role_a;
    rk_put_le16(msg + n, (uint16_t)len_a);
    n += 2;
    memcpy(msg + n, id_a, len_a);
    n += len_a;
    rk_put_le16(msg + n, (uint16_t)len_b);
    n += 2;
    memcpy(msg + n, id_b, len_b);
    n += len_b;
    memcpy(msg + n, nonce_a, PEER_AUTH_NONCE_LEN);
    n += PEER_AUTH_NONCE_LEN;
    memcpy(msg + n, nonce_b, PEER_AUTH_NONCE_LEN);
    n += PEER_AUTH_NONCE_LEN;
    unsigned int md_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, out, &md_len) ==
            NULL ||
        md_len != PEER_AUTH_MAC_LEN) {
        return RK_ENOMEM;
    }
    return RK_OK;
}

int peer_auth_start(struct peer_auth *a,
                    enum peer_auth_role role,
                    const void *secret,
                    size_t secret_len,
                    const char *self_id,
                    size_t self_len,
                    const unsigned char nonce[PEER_AUTH_NONCE_LEN],
                    struct peer_msg *challenge)
{
    memset(a, 0, sizeof(*a));
    if (secret_len < PEER_AUTH_SECRET_MIN ||
        secret_len > PEER_AUTH_SECRET_MAX || self_len == 0 ||
        self_len > PEER_MAX_NODE_ID ||
        (role != PEER_AUTH_DIALER && role != PEER_AUTH_ACCEPTOR)) {
        a->state = PEER_AUTH_FAILED;
        a->why = "bad handshake parameters";
        return RK_EINVAL;
    }
    a->state = PEER_AUTH_WAIT_HELLO;
    a->role = role;
    memcpy(a->secret, secret, secret_len);
    a->secret_len = secret_len;
    memcpy(a->self_id, self_id, self_len);
    a->self_len = self_len;
    memcpy(a->nonce_self, nonce, PEER_AUTH_NONCE_LEN);
    memset(challenge, 0, sizeof(*challenge));
    challenge->type = PEER_AUTH_CHALLENGE;
    challenge->auth_challenge.nonce =
        (struct peer_bytes){(const char *)a->nonce_self, PEER_AUTH_NONCE_LEN};
    return RK_OK;
}

static int fail(struct peer_auth *a, int rc, const char *why)
{
    a->state = PEER_AUTH_FAILED;
    a->why = why;
    OPENSSL_cleanse(a->secret, sizeof(a->secret));
    return rc;
}

int peer_auth_on_frame(struct peer_auth *a,
                       const struct peer_msg *m,
                       struct peer_msg *out,
                       bool *send)
{
    *send = false;
    switch (a->state) {
        case PEER_AUTH_WAIT_HELLO:
            if (m->type != PEER_HELLO) {
                return fail(a, RK_EPROTO, "a frame before HELLO");
            }
            if (m->hello.node_id.len == 0 ||
                m->hello.node_id.len > PEER_MAX_NODE_ID) {
                return fail(a, RK_EPROTO, "a HELLO without a node id");
            }
            memcpy(a->peer_id, m->hello.node_id.ptr, m->hello.node_id.len);
            a->peer_len = m->hello.node_id.len;
            a->state = PEER_AUTH_WAIT_CHALLENGE;
            return RK_OK;
        case PEER_AUTH_WAIT_CHALLENGE: {
            if (m->type != PEER_AUTH_CHALLENGE) {
                return fail(a, RK_EPROTO,
                            "no AUTH_CHALLENGE after HELLO (a node without "
                            "peer authentication, or not a ringkv node)");
            }
            if (m->auth_challenge.nonce.len != PEER_AUTH_NONCE_LEN) {
                return fail(a, RK_EPROTO, "an AUTH_CHALLENGE of a bad size");
            }
            memcpy(a->nonce_peer, m->auth_challenge.nonce.ptr,
                   PEER_AUTH_NONCE_LEN);
            if (CRYPTO_memcmp(a->nonce_peer, a->nonce_self,
                              PEER_AUTH_NONCE_LEN) == 0) {
                return fail(a, RK_EPROTO, "our own challenge reflected");
            }
            int rc =
                peer_auth_mac(a->secret, a->secret_len, a->role, a->self_id,
                              a->self_len, a->peer_id, a->peer_len,
                              a->nonce_self, a->nonce_peer, a->proof);
            if (rc != RK_OK) {
                return fail(a, rc, "cannot compute the proof");
            }
            memset(out, 0, sizeof(*out));
            out->type = PEER_AUTH_PROOF;
            out->auth_proof.mac =
                (struct peer_bytes){(const char *)a->proof, PEER_AUTH_MAC_LEN};
            *send = true;
            a->state = PEER_AUTH_WAIT_PROOF;
            return RK_OK;
        }
        case PEER_AUTH_WAIT_PROOF: {
            if (m->type != PEER_AUTH_PROOF ||
                m->auth_proof.mac.len != PEER_AUTH_MAC_LEN) {
                return fail(a, RK_EPROTO, "no AUTH_PROOF after the challenge");
            }
            unsigned char want[PEER_AUTH_MAC_LEN];
            enum peer_auth_role theirs = a->role == PEER_AUTH_DIALER
                                             ? PEER_AUTH_ACCEPTOR
                                             : PEER_AUTH_DIALER;
            int rc = peer_auth_mac(a->secret, a->secret_len, theirs, a->peer_id,
                                   a->peer_len, a->self_id, a->self_len,
                                   a->nonce_peer, a->nonce_self, want);
            if (rc != RK_OK) {
                return fail(a, rc, "cannot compute the proof");
            }
            bool ok = CRYPTO_memcmp(want, m->auth_proof.mac.ptr,
                                    PEER_AUTH_MAC_LEN) == 0;
            OPENSSL_cleanse(want, sizeof(want));
            if (!ok) {
                return fail(a, RK_EPERM,
                            "wrong proof: the peer does not have this "
                            "cluster's secret");
            }
            OPENSSL_cleanse(a->secret, sizeof(a->secret));
            a->state = PEER_AUTH_DONE;
            return RK_OK;
        }
        case PEER_AUTH_DONE:
        case PEER_AUTH_FAILED:
        default:
            return fail(a, RK_EPROTO, "a handshake frame after the handshake");
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int peer_auth_secret_parse(const char *text,
                           size_t len,
                           unsigned char *out,
                           size_t *out_len,
                           const char **why)
{
    size_t b = 0, e = len;
    while (b < e && is_space(text[b])) {
        b++;
    }
    while (e > b && is_space(text[e - 1])) {
        e--;
    }
    size_t digits = e - b;
    if (digits % 2 != 0 || digits / 2 < PEER_AUTH_SECRET_MIN ||
        digits / 2 > PEER_AUTH_SECRET_MAX) {
        *why = "a cluster secret is 32 to 128 hex digits (16 to 64 bytes)";
        return RK_EINVAL;
    }
    for (size_t i = 0; i < digits / 2; i++) {
        int hi = rk_hex_digit(text[b + 2 * i]),
            lo = rk_hex_digit(text[b + 2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(out, i);
            *why = "a cluster secret holds hex digits only";
            return RK_EINVAL;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *out_len = digits / 2;
    return RK_OK;
}

size_t peer_auth_secret_format(const unsigned char *secret,
                               size_t len,
                               char *out,
                               size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len && n + 3 < cap; i++) {
        out[n++] = hex[secret[i] >> 4];
        out[n++] = hex[secret[i] & 15];
    }
    if (n + 1 < cap) {
        out[n++] = '\n';
    }
    if (cap > 0) {
        out[n < cap ? n : cap - 1] = '\0';
    }
    return n;
}

/*
 * peer_auth.h - peer authentication with a shared cluster secret (issue 15
 * item 1): the handshake both ends of a peer connection run after HELLO
 * and before any other frame.  Sans-IO: fed decoded frames, it says what
 * to send and when the other end is authenticated; the caller (the peer
 * transport, src/server/peer_transport.c) supplies the random nonce and
 * owns the socket.  docs/peer-protocol.md, "Authentication", is the wire
 * description; docs/security.md the threat model.
 *
 * Protocol (both ends run it at once, symmetric but for the role):
 *
 *   -> HELLO, AUTH_CHALLENGE{nonce_self}           (at connect)
 *   <- HELLO, AUTH_CHALLENGE{nonce_peer}
 *   -> AUTH_PROOF{mac(self -> peer)}                (once both arrived)
 *   <- AUTH_PROOF{mac(peer -> self)}                (checked: done)
 *
 *   mac(A -> B) = HMAC-SHA-256(secret, "ringkv-peer-auth-1" || role(A) ||
 *                 u16 len || id(A) || u16 len || id(B) ||
 *                 nonce(A) || nonce(B))
 *
 * where role is 1 for the end that dialed and 2 for the end that
 * accepted, ids are the HELLO node ids and u16 lengths are little endian.
 * A proof covers the verifier's fresh nonce (no replay), both ids (a proof
 * for another pair is worthless) and the sender's role: an attacker who
 * dials two nodes cannot relay one's proof to the other, since both would
 * be acceptor proofs and each expects a dialer proof from it (the classic
 * reflection / relay attack on symmetric challenge-response).  What it
 * proves is knowledge of the cluster secret, not which member the peer
 * is: any holder of the secret can claim any id (mutual TLS with
 * per-node certificates is the mode that proves identity).
 *
 * Thread: a handshake is used by one thread; the functions keep no global
 * state.
 */
#ifndef RINGKV_PROTO_PEER_AUTH_H
#define RINGKV_PROTO_PEER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/peer.h"

#define PEER_AUTH_SECRET_MIN 16 /* bytes of a cluster secret */
#define PEER_AUTH_SECRET_MAX 64
#define PEER_AUTH_SECRET_GEN 32 /* bytes of a generated secret */
/* A secret file: the secret as hex (2..128 digits, even), optional
 * surrounding whitespace (a trailing newline); nothing else. */
#define PEER_AUTH_SECRET_FILE_MAX 256 /* bytes read from it, at most */

enum peer_auth_role
{
    PEER_AUTH_DIALER = 1,   /* the end that opened the TCP connection */
    PEER_AUTH_ACCEPTOR = 2, /* the end that accepted it */
};

enum peer_auth_state
{
    PEER_AUTH_WAIT_HELLO = 0, /* nothing received yet */
    PEER_AUTH_WAIT_CHALLENGE, /* HELLO received */
    PEER_AUTH_WAIT_PROOF,     /* CHALLENGE received, our proof sent */
    PEER_AUTH_DONE,           /* the peer's proof checked out */
    PEER_AUTH_FAILED,         /* refused: close the connection */
};

struct peer_auth
{
    enum peer_auth_state state;
    enum peer_auth_role role;
    unsigned char secret[PEER_AUTH_SECRET_MAX];
    size_t secret_len;
    char self_id[PEER_MAX_NODE_ID];
    size_t self_len;
    char peer_id[PEER_MAX_NODE_ID]; /* from its HELLO */
    size_t peer_len;
    unsigned char nonce_self[PEER_AUTH_NONCE_LEN];
    unsigned char nonce_peer[PEER_AUTH_NONCE_LEN];
    unsigned char proof[PEER_AUTH_MAC_LEN]; /* ours, once computed */
    const char *why;                        /* static: why FAILED */
};

/*
 * Starts a handshake.  `secret` (secret_len bytes, PEER_AUTH_SECRET_MIN..
 * _MAX) and `self_id` (1..PEER_MAX_NODE_ID bytes) are copied; `nonce` is
 * PEER_AUTH_NONCE_LEN fresh random bytes from a CSPRNG (the caller's:
 * RAND_bytes in the server, a seeded generator in tests).  Fills
 * `challenge` with the AUTH_CHALLENGE to send after HELLO (its nonce views
 * a->nonce_self: valid while `a` lives).  RK_EINVAL on a bad length.
 */
int peer_auth_start(struct peer_auth *a,
                    enum peer_auth_role role,
                    const void *secret,
                    size_t secret_len,
                    const char *self_id,
                    size_t self_len,
                    const unsigned char nonce[PEER_AUTH_NONCE_LEN],
                    struct peer_msg *challenge);

/*
 * Feeds one frame received before the handshake is done.  Expects, in this
 * order, HELLO, AUTH_CHALLENGE, AUTH_PROOF; anything else, a repeated
 * frame, a nonce equal to ours (a reflected challenge), or a wrong proof
 * moves to PEER_AUTH_FAILED with a->why set and returns RK_EPERM (a wrong
 * proof) or RK_EPROTO (the rest).  On the CHALLENGE, sets *send to true
 * and fills *out with the AUTH_PROOF to send (it views a->proof).  The
 * HELLO's other checks (cluster name, self connection) are the caller's.
 * On the PROOF, returns RK_OK with a->state == PEER_AUTH_DONE.  The MAC
 * comparison takes constant time (CRYPTO_memcmp).
 */
int peer_auth_on_frame(struct peer_auth *a,
                       const struct peer_msg *m,
                       struct peer_msg *out,
                       bool *send);

/*
 * mac(A -> B) as the header describes, into out[PEER_AUTH_MAC_LEN]: for
 * tests and tools.  RK_EINVAL on a bad length, RK_ENOMEM if OpenSSL fails.
 */
int peer_auth_mac(const void *secret,
                  size_t secret_len,
                  enum peer_auth_role role_a,
                  const char *id_a,
                  size_t len_a,
                  const char *id_b,
                  size_t len_b,
                  const unsigned char nonce_a[PEER_AUTH_NONCE_LEN],
                  const unsigned char nonce_b[PEER_AUTH_NONCE_LEN],
                  unsigned char out[PEER_AUTH_MAC_LEN]);

/*
 * Parses the text of a secret file (`len` bytes; see
 * PEER_AUTH_SECRET_FILE_MAX) into out[PEER_AUTH_SECRET_MAX]; *out_len is
 * the secret's length.  RK_EINVAL (with a static reason in *why) for
 * anything but PEER_AUTH_SECRET_MIN.._MAX bytes of hex.
 */
int peer_auth_secret_parse(const char *text,
                           size_t len,
                           unsigned char *out,
                           size_t *out_len,
                           const char **why);

/* Writes `secret` as lowercase hex and a newline into out (cap >= 2 *
 * len + 2); returns the length written, without the NUL. */
size_t peer_auth_secret_format(const unsigned char *secret,
                               size_t len,
                               char *out,
                               size_t cap);

#endif

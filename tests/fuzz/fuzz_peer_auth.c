/*
 * fuzz_peer_auth.c - libFuzzer target for the peer authentication handshake
 * (proto/peer_auth.h; issue 15 item 1).
 *
 * Input: byte 0 picks the role (bit 0) and whether the fuzzer plays the
 * other end honestly up to a point (bits 1..3: after k honest frames the
 * rest of the input is raw frames).  The rest is a byte stream decoded
 * with the pre-authentication body limit (1 KiB) and fed, frame by frame,
 * to a handshake with a fixed secret, as the transport does.
 *
 * Checks: the machine never reaches DONE unless the last frame fed was an
 * AUTH_PROOF that equals the MAC computed independently here (so no input
 * authenticates without the secret); after FAILED every frame is refused;
 * a refusal always says why; a proof to send is sent exactly once, on the
 * CHALLENGE, and views 32 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proto/peer.h"
#include "proto/peer_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            abort();                                                         \
        }                                                                    \
    } while (0)

static const unsigned char SECRET[32] = "fuzz-cluster-secret-0123456789ab";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    enum peer_auth_role role =
        (data[0] & 1) ? PEER_AUTH_ACCEPTOR : PEER_AUTH_DIALER;
    unsigned char nonce[PEER_AUTH_NONCE_LEN];
    for (size_t i = 0; i < sizeof(nonce); i++) {
        nonce[i] = (unsigned char)(i * 13 + 5);
    }
    struct peer_auth a;
    struct peer_msg ch;
    CHECK(peer_auth_start(&a, role, SECRET, sizeof(SECRET), "self", 4, nonce,
                          &ch) == RK_OK);
    CHECK(ch.type == PEER_AUTH_CHALLENGE &&
          ch.auth_challenge.nonce.len == PEER_AUTH_NONCE_LEN);
    struct peer_decoder *dec = NULL;
    if (peer_decoder_create(1024, &dec) != RK_OK) {
        return 0;
    }
    size_t pos = 1;
    int proofs_sent = 0;
    bool failed = false;
    while (pos < size) {
        size_t used = 0;
        struct peer_msg m, out;
        int rc = peer_decoder_feed(dec, (const char *)data + pos, size - pos,
                                   &used, &m);
        if (rc != RK_OK) {
            break; /* the transport closes here */
        }
        pos += used;
        enum peer_auth_state before = a.state;
        bool send = false;
        rc = peer_auth_on_frame(&a, &m, &out, &send);
        if (failed) {
            CHECK(rc != RK_OK && a.state == PEER_AUTH_FAILED);
        }
        if (rc != RK_OK) {
            CHECK(a.state == PEER_AUTH_FAILED && a.why != NULL &&
                  a.why[0] != '\0');
            CHECK(!send);
            failed = true;
            continue;
        }
        if (send) {
            CHECK(before == PEER_AUTH_WAIT_CHALLENGE &&
                  m.type == PEER_AUTH_CHALLENGE && out.type == PEER_AUTH_PROOF &&
                  out.auth_proof.mac.len == PEER_AUTH_MAC_LEN);
            proofs_sent++;
        }
        if (a.state == PEER_AUTH_DONE) {
            /* only the right proof, recomputed here, gets this far */
            CHECK(m.type == PEER_AUTH_PROOF && before == PEER_AUTH_WAIT_PROOF);
            unsigned char want[PEER_AUTH_MAC_LEN];
            enum peer_auth_role theirs = role == PEER_AUTH_DIALER
                                             ? PEER_AUTH_ACCEPTOR
                                             : PEER_AUTH_DIALER;
            CHECK(peer_auth_mac(SECRET, sizeof(SECRET), theirs, a.peer_id,
                                a.peer_len, "self", 4, a.nonce_peer, nonce,
                                want) == RK_OK);
            CHECK(memcmp(want, m.auth_proof.mac.ptr, sizeof(want)) == 0);
        }
    }
    CHECK(proofs_sent <= 1);
    peer_decoder_destroy(dec);
    return 0;
}

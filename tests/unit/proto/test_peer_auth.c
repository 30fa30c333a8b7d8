/*
 * test_peer_auth.c - proto/peer_auth: the cluster-secret handshake of peer
 * connections (issue 15 item 1).  Two handshakes run against each other
 * through the real codec (encode, decode); then the attacks: a wrong
 * secret, a relayed proof between two connections (the reflection / relay
 * attack the role byte defeats), a reflected challenge, frames out of
 * order, a replayed proof with a new nonce, a proof for another id, bad
 * lengths; the MAC against an independent HMAC computation (EVP_MAC-free
 * one-shot HMAC over the documented bytes); the secret file parser.
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "proto/peer.h"
#include "proto/peer_auth.h"

static const unsigned char SECRET[32] = "0123456789abcdef0123456789abcde";
static const unsigned char OTHER[32] = "0123456789abcdef0123456789abcdX";

static void nonce_of(unsigned char n[PEER_AUTH_NONCE_LEN], int seed)
{
    for (int i = 0; i < PEER_AUTH_NONCE_LEN; i++) {
        n[i] = (unsigned char)(seed * 31 + i * 7);
    }
}

/* Encodes m and decodes it again, as the wire would: *out views *hold. */
static void wire(const struct peer_msg *m,
                 struct rk_buf *hold,
                 struct peer_msg *out)
{
    rk_buf_clear(hold);
    assert_int_equal(peer_encode(m, hold), RK_OK);
    struct peer_decoder *d = NULL;
    assert_int_equal(peer_decoder_create(1024, &d), RK_OK);
    size_t used = 0;
    assert_int_equal(peer_decoder_feed(d, hold->base, hold->len, &used, out),
                     RK_OK);
    assert_int_equal(used, hold->len);
    peer_decoder_destroy(d);
}

static struct peer_msg hello(const char *id)
{
    struct peer_msg m = {.type = PEER_HELLO};
    m.hello.node_id = (struct peer_bytes){id, strlen(id)};
    m.hello.host = (struct peer_bytes){"127.0.0.1", 9};
    m.hello.max_version = 2;
    return m;
}

struct end
{
    struct peer_auth a;
    struct peer_msg challenge;
    const char *id;
};

static void start(struct end *e,
                  const char *id,
                  enum peer_auth_role role,
                  const unsigned char *secret,
                  int seed)
{
    unsigned char n[PEER_AUTH_NONCE_LEN];
    nonce_of(n, seed);
    e->id = id;
    assert_int_equal(peer_auth_start(&e->a, role, secret, 32, id, strlen(id), n,
                                     &e->challenge),
                     RK_OK);
}

/* Feeds `to` the HELLO and CHALLENGE of `from`; returns to's proof (views
 * to->a.proof through *hold). */
static struct peer_msg greet(struct end *to,
                             const struct end *from,
                             struct rk_buf *hold)
{
    struct peer_msg in, out;
    bool send = false;
    struct peer_msg h = hello(from->id);
    wire(&h, hold, &in);
    assert_int_equal(peer_auth_on_frame(&to->a, &in, &out, &send), RK_OK);
    assert_false(send);
    wire(&from->challenge, hold, &in);
    assert_int_equal(peer_auth_on_frame(&to->a, &in, &out, &send), RK_OK);
    assert_true(send);
    assert_int_equal(out.type, PEER_AUTH_PROOF);
    return out;
}

static int prove(struct end *to, const struct peer_msg *proof)
{
    struct rk_buf hold;
    rk_buf_init(&hold);
    struct peer_msg in, out;
    bool send = true;
    wire(proof, &hold, &in);
    int rc = peer_auth_on_frame(&to->a, &in, &out, &send);
    assert_false(send);
    rk_buf_fini(&hold);
    return rc;
}

static void test_peer_auth_two_ends_with_the_secret_agree(void **state)
{
    (void)state;
    struct end d, c;
    start(&d, "n1", PEER_AUTH_DIALER, SECRET, 1);
    start(&c, "n2", PEER_AUTH_ACCEPTOR, SECRET, 2);
    struct rk_buf h1, h2;
    rk_buf_init(&h1);
    rk_buf_init(&h2);
    struct peer_msg pd = greet(&d, &c, &h1);
    struct peer_msg pc = greet(&c, &d, &h2);
    assert_int_equal(prove(&c, &pd), RK_OK);
    assert_int_equal(prove(&d, &pc), RK_OK);
    assert_int_equal(d.a.state, PEER_AUTH_DONE);
    assert_int_equal(c.a.state, PEER_AUTH_DONE);
    /* anything after the end is refused */
    struct peer_msg out;
    bool send;
    struct peer_msg h = hello("n2");
    assert_int_equal(peer_auth_on_frame(&d.a, &h, &out, &send), RK_EPROTO);
    rk_buf_fini(&h1);
    rk_buf_fini(&h2);
}

static void test_peer_auth_a_wrong_secret_is_refused_both_ways(void **state)
{
    (void)state;
    struct end d, c;
    start(&d, "n1", PEER_AUTH_DIALER, OTHER, 1);
    start(&c, "n2", PEER_AUTH_ACCEPTOR, SECRET, 2);
    struct rk_buf h1, h2;
    rk_buf_init(&h1);
    rk_buf_init(&h2);
    struct peer_msg pd = greet(&d, &c, &h1);
    struct peer_msg pc = greet(&c, &d, &h2);
    assert_int_equal(prove(&c, &pd), RK_EPERM);
    assert_int_equal(c.a.state, PEER_AUTH_FAILED);
    assert_non_null(strstr(c.a.why, "secret"));
    assert_int_equal(prove(&d, &pc), RK_EPERM);
    rk_buf_fini(&h1);
    rk_buf_fini(&h2);
}

/* The attacker X (no secret) dials A claiming to be B and dials B claiming
 * to be A, and copies each node's challenge into the other connection, so
 * that each node's proof is the one the other node expects but for the
 * role: both are acceptor proofs, and each node wants a dialer proof from
 * the end that dialed it. */
static void test_peer_auth_a_relayed_proof_is_refused(void **state)
{
    (void)state;
    struct end a, b;
    start(&a, "A", PEER_AUTH_ACCEPTOR, SECRET, 10);
    start(&b, "B", PEER_AUTH_ACCEPTOR, SECRET, 20);
    struct rk_buf h1, h2;
    rk_buf_init(&h1);
    rk_buf_init(&h2);
    /* X -> A: HELLO "B" and, as its challenge, B's nonce; X -> B: HELLO
     * "A" and A's nonce */
    struct end fake_b = {.id = "B", .challenge = b.challenge};
    struct end fake_a = {.id = "A", .challenge = a.challenge};
    struct peer_msg pa = greet(&a, &fake_b, &h1); /* A's proof, for X */
    struct peer_msg pb = greet(&b, &fake_a, &h2); /* B's proof, for X */
    /* X hands B's proof to A and A's to B */
    assert_int_equal(prove(&a, &pb), RK_EPERM);
    assert_int_equal(prove(&b, &pa), RK_EPERM);
    /* control: with the role byte forged to "dialer" the relay would have
     * worked, so the role is what stops it */
    unsigned char want[PEER_AUTH_MAC_LEN];
    assert_int_equal(peer_auth_mac(SECRET, 32, PEER_AUTH_ACCEPTOR, "B", 1, "A",
                                   1, b.a.nonce_self, a.a.nonce_self, want),
                     RK_OK);
    assert_memory_equal(want, pb.auth_proof.mac.ptr, PEER_AUTH_MAC_LEN);
    unsigned char dialer[PEER_AUTH_MAC_LEN];
    assert_int_equal(peer_auth_mac(SECRET, 32, PEER_AUTH_DIALER, "B", 1, "A", 1,
                                   b.a.nonce_self, a.a.nonce_self, dialer),
                     RK_OK);
    assert_memory_not_equal(want, dialer, PEER_AUTH_MAC_LEN);
    rk_buf_fini(&h1);
    rk_buf_fini(&h2);
}

static void test_peer_auth_replays_and_reflections_are_refused(void **state)
{
    (void)state;
    struct rk_buf h1, h2;
    rk_buf_init(&h1);
    rk_buf_init(&h2);
    /* a proof recorded on one connection, replayed on a new one (new
     * nonce on the verifier's side) */
    struct end d, c;
    start(&d, "n1", PEER_AUTH_DIALER, SECRET, 1);
    start(&c, "n2", PEER_AUTH_ACCEPTOR, SECRET, 2);
    struct peer_msg pd = greet(&d, &c, &h1);
    unsigned char recorded[PEER_AUTH_MAC_LEN];
    memcpy(recorded, pd.auth_proof.mac.ptr, sizeof(recorded));
    struct end c2;
    start(&c2, "n2", PEER_AUTH_ACCEPTOR, SECRET, 3);
    (void)greet(&c2, &d, &h2);
    struct peer_msg replay = {.type = PEER_AUTH_PROOF};
    replay.auth_proof.mac =
        (struct peer_bytes){(const char *)recorded, sizeof(recorded)};
    assert_int_equal(prove(&c2, &replay), RK_EPERM);

    /* our own challenge sent back to us */
    struct end e;
    start(&e, "n1", PEER_AUTH_DIALER, SECRET, 5);
    struct peer_msg in, out;
    bool send;
    struct peer_msg h = hello("n9");
    assert_int_equal(peer_auth_on_frame(&e.a, &h, &out, &send), RK_OK);
    wire(&e.challenge, &h1, &in);
    assert_int_equal(peer_auth_on_frame(&e.a, &in, &out, &send), RK_EPROTO);
    assert_false(send);
    assert_non_null(strstr(e.a.why, "reflected"));

    /* a proof made for another id */
    struct end x, y;
    start(&x, "n1", PEER_AUTH_DIALER, SECRET, 7);
    start(&y, "n2", PEER_AUTH_ACCEPTOR, SECRET, 8);
    (void)greet(&y, &x, &h1);
    (void)greet(&x, &y, &h2);
    unsigned char forged[PEER_AUTH_MAC_LEN];
    assert_int_equal(peer_auth_mac(SECRET, 32, PEER_AUTH_DIALER, "n3", 2, "n2",
                                   2, x.a.nonce_self, y.a.nonce_self, forged),
                     RK_OK);
    struct peer_msg fp = {.type = PEER_AUTH_PROOF};
    fp.auth_proof.mac = (struct peer_bytes){(const char *)forged, 32};
    assert_int_equal(prove(&y, &fp), RK_EPERM);
    rk_buf_fini(&h1);
    rk_buf_fini(&h2);
}

static void test_peer_auth_frames_out_of_order_are_refused(void **state)
{
    (void)state;
    struct peer_msg out;
    bool send;
    struct end e;
    /* a KV_GET where HELLO belongs */
    start(&e, "n1", PEER_AUTH_ACCEPTOR, SECRET, 1);
    struct peer_msg get = {.type = PEER_KV_GET};
    assert_int_equal(peer_auth_on_frame(&e.a, &get, &out, &send), RK_EPROTO);
    assert_int_equal(e.a.state, PEER_AUTH_FAILED);
    /* HELLO, then a GOSSIP where the challenge belongs (an old node) */
    start(&e, "n1", PEER_AUTH_ACCEPTOR, SECRET, 1);
    struct peer_msg h = hello("n2");
    assert_int_equal(peer_auth_on_frame(&e.a, &h, &out, &send), RK_OK);
    struct peer_msg g = {.type = PEER_GOSSIP};
    assert_int_equal(peer_auth_on_frame(&e.a, &g, &out, &send), RK_EPROTO);
    assert_non_null(strstr(e.a.why, "AUTH_CHALLENGE"));
    /* HELLO, CHALLENGE, then a JOIN where the proof belongs */
    start(&e, "n1", PEER_AUTH_ACCEPTOR, SECRET, 1);
    struct end o;
    start(&o, "n2", PEER_AUTH_DIALER, SECRET, 2);
    struct rk_buf hold;
    rk_buf_init(&hold);
    (void)greet(&e, &o, &hold);
    struct peer_msg j = {.type = PEER_JOIN};
    assert_int_equal(peer_auth_on_frame(&e.a, &j, &out, &send), RK_EPROTO);
    rk_buf_fini(&hold);
    /* a proof first */
    start(&e, "n1", PEER_AUTH_ACCEPTOR, SECRET, 1);
    struct peer_msg p = {.type = PEER_AUTH_PROOF};
    p.auth_proof.mac = (struct peer_bytes){(const char *)SECRET, 32};
    assert_int_equal(peer_auth_on_frame(&e.a, &p, &out, &send), RK_EPROTO);
    /* bad parameters */
    unsigned char n[PEER_AUTH_NONCE_LEN] = {0};
    struct peer_msg ch;
    assert_int_equal(
        peer_auth_start(&e.a, PEER_AUTH_DIALER, SECRET, 15, "n1", 2, n, &ch),
        RK_EINVAL);
    assert_int_equal(
        peer_auth_start(&e.a, PEER_AUTH_DIALER, SECRET, 32, "n1", 0, n, &ch),
        RK_EINVAL);
    assert_int_equal(peer_auth_start(&e.a, 3, SECRET, 32, "n1", 2, n, &ch),
                     RK_EINVAL);
}

static void test_peer_auth_codec_refuses_bad_lengths(void **state)
{
    (void)state;
    /* a 31-byte nonce and a 33-byte MAC neither encode nor decode */
    struct rk_buf b;
    rk_buf_init(&b);
    struct peer_msg m = {.type = PEER_AUTH_CHALLENGE};
    m.auth_challenge.nonce = (struct peer_bytes){(const char *)SECRET, 31};
    assert_int_not_equal(peer_encode(&m, &b), RK_OK);
    struct peer_msg p = {.type = PEER_AUTH_PROOF};
    char mac[33] = {0};
    p.auth_proof.mac = (struct peer_bytes){mac, 33};
    assert_int_not_equal(peer_encode(&p, &b), RK_OK);
    /* a well-formed challenge with its length field cut to 31 */
    m.auth_challenge.nonce = (struct peer_bytes){(const char *)SECRET, 32};
    assert_int_equal(peer_encode(&m, &b), RK_OK);
    unsigned char frame[PEER_HEADER_SIZE + 4 + 31];
    memcpy(frame + PEER_HEADER_SIZE, b.base + PEER_HEADER_SIZE, 4 + 31);
    frame[PEER_HEADER_SIZE] = 31; /* the blob's u32 LE length */
    peer_header_encode(frame, PEER_AUTH_CHALLENGE, frame + PEER_HEADER_SIZE,
                       4 + 31); /* a valid checksum over the short body */
    struct peer_decoder *d = NULL;
    assert_int_equal(peer_decoder_create(1024, &d), RK_OK);
    size_t used = 0;
    struct peer_msg out;
    assert_int_equal(
        peer_decoder_feed(d, (const char *)frame, sizeof(frame), &used, &out),
        RK_EPROTO);
    peer_decoder_destroy(d);
    rk_buf_fini(&b);
}

/* The MAC over the documented bytes, computed here independently. */
static void test_peer_auth_mac_is_the_documented_hmac(void **state)
{
    (void)state;
    unsigned char na[32], nb[32];
    nonce_of(na, 1);
    nonce_of(nb, 2);
    unsigned char msg[256];
    size_t n = 0;
    memcpy(msg, "ringkv-peer-auth-1", 18);
    n = 18;
    msg[n++] = 1; /* dialer */
    msg[n++] = 5;
    msg[n++] = 0;
    memcpy(msg + n, "node1", 5);
    n += 5;
    msg[n++] = 5;
    msg[n++] = 0;
    memcpy(msg + n, "node2", 5);
    n += 5;
    memcpy(msg + n, na, 32);
    n += 32;
    memcpy(msg + n, nb, 32);
    n += 32;
    unsigned char want[32];
    unsigned int wl = 0;
    HMAC(EVP_sha256(), SECRET, 32, msg, n, want, &wl);
    assert_int_equal(wl, 32);
    unsigned char got[32];
    assert_int_equal(peer_auth_mac(SECRET, 32, PEER_AUTH_DIALER, "node1", 5,
                                   "node2", 5, na, nb, got),
                     RK_OK);
    assert_memory_equal(got, want, 32);
    assert_int_equal(peer_auth_mac(SECRET, 8, PEER_AUTH_DIALER, "node1", 5,
                                   "node2", 5, na, nb, got),
                     RK_EINVAL);
}

static void test_peer_auth_secret_file_text(void **state)
{
    (void)state;
    unsigned char s[PEER_AUTH_SECRET_MAX];
    size_t len = 0;
    const char *why = NULL;
    char text[200];
    size_t tl = peer_auth_secret_format(SECRET, 32, text, sizeof(text));
    assert_int_equal(tl, 65);
    assert_int_equal(text[64], '\n');
    assert_int_equal(peer_auth_secret_parse(text, tl, s, &len, &why), RK_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(s, SECRET, 32);
    const char *ok = "  00112233445566778899AABBCCDDEEFF\r\n";
    assert_int_equal(peer_auth_secret_parse(ok, strlen(ok), s, &len, &why),
                     RK_OK);
    assert_int_equal(len, 16);
    assert_int_equal(s[10], 0xaa);
    const char *bad[] = {
        "",
        "\n",
        "00112233445566778899aabbccddee",    /* 15 bytes */
        "00112233445566778899aabbccddeef",   /* odd */
        "00112233445566778899aabbccddeefg",  /* not hex */
        "0011223344556677 8899aabbccddeeff", /* inner space */
        "password123password123password12",  /* text */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(
            peer_auth_secret_parse(bad[i], strlen(bad[i]), s, &len, &why),
            RK_EINVAL);
        assert_non_null(why);
    }
    char big[200];
    memset(big, 'a', 130);
    assert_int_equal(peer_auth_secret_parse(big, 130, s, &len, &why),
                     RK_EINVAL);
    assert_int_equal(peer_auth_secret_parse(big, 128, s, &len, &why), RK_OK);
    assert_int_equal(len, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_auth_two_ends_with_the_secret_agree),
        cmocka_unit_test(test_peer_auth_a_wrong_secret_is_refused_both_ways),
        cmocka_unit_test(test_peer_auth_a_relayed_proof_is_refused),
        cmocka_unit_test(test_peer_auth_replays_and_reflections_are_refused),
        cmocka_unit_test(test_peer_auth_frames_out_of_order_are_refused),
        cmocka_unit_test(test_peer_auth_codec_refuses_bad_lengths),
        cmocka_unit_test(test_peer_auth_mac_is_the_documented_hmac),
        cmocka_unit_test(test_peer_auth_secret_file_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

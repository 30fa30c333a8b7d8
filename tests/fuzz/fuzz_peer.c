/*
 * fuzz_peer.c - libFuzzer target for the peer message decoder (proto/peer.h,
 * docs/peer-protocol.md; issue 4).
 *
 * Input: byte 0 is the mode.  Its low 7 bits pick a fragment size (0 = the
 * whole input at once, else 1..127 bytes per read); bit 7 asks for
 * checksum repair: before decoding, every complete frame in the input gets
 * the right checksum for its header and body, so that mutations reach the
 * body decoder instead of all dying at the checksum.  The rest of the input
 * is the byte stream of one connection.  The unconsumed bytes move to a
 * fresh allocation when the buffer grows and every 8th read, so a decoder
 * keeping pointers instead of offsets reads freed memory (ASan).
 *
 * The stream is decoded with the default body limit and with a small one
 * (so short inputs reach the limit check), fragmented and whole: both
 * must give the same messages and the same verdict.
 *
 * Checks: consumed <= len; feed never allocates; on RK_EAGAIN need() is
 * past the bytes held and within header + limit; errors are RK_EPROTO or
 * RK_EVERSION with a one-line message; and every decoded message
 * re-encodes to exactly the bytes it came from (one encoding per message)
 * and decodes again to an equal message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/endian.h"
#include "common/error.h"
#include "proto/peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* ---- an allocator that traps any allocation inside feed ----------------- */

static bool g_in_feed;

static void check_alloc(void)
{
    if (g_in_feed) {
        fprintf(stderr, "peer_decoder_feed allocated\n");
        abort();
    }
}

static void *fz_malloc(void *data, size_t size)
{
    (void)data;
    check_alloc();
    return malloc(size);
}

static void *fz_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    check_alloc();
    return calloc(n, size);
}

static void *fz_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    check_alloc();
    return realloc(ptr, size);
}

static void fz_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static const struct rk_allocator g_fz_alloc = {
    .data = NULL,
    .malloc_fn = fz_malloc,
    .calloc_fn = fz_calloc,
    .realloc_fn = fz_realloc,
    .free_fn = fz_free,
};

/* ---- checks on one decoded message -------------------------------------- */

/* The message re-encodes, in its frame's version (1 or 2: a version-2
 * node reads both), to the very bytes of its frame, and those decode to an
 * equal message. */
static void check_round_trip(const struct peer_msg *m,
                             const char *frame,
                             size_t frame_len)
{
    struct rk_buf out;
    rk_buf_init(&out);
    CHECK(peer_encode_version(m, (uint8_t)frame[4], &out) == RK_OK);
    CHECK(out.len == frame_len);
    CHECK(memcmp(out.base, frame, frame_len) == 0);

    struct peer_decoder *d;
    CHECK(peer_decoder_create(0, &d) == RK_OK);
    size_t consumed = 0;
    struct peer_msg again;
    CHECK(peer_decoder_feed(d, out.base, out.len, &consumed, &again) == RK_OK);
    CHECK(consumed == out.len);
    CHECK(peer_msg_equal(m, &again));
    peer_decoder_destroy(d);
    rk_buf_fini(&out);
}

/*
 * Feeds in[0..size) in fragments of `frag` bytes to a decoder with
 * `max_body`; appends every decoded frame to `frames`.  Returns the final
 * result (RK_EAGAIN when the stream ended without an error) and copies an
 * error message to err.
 */
static int run_stream(uint32_t max_body,
                      const char *in,
                      size_t size,
                      size_t frag,
                      struct rk_buf *frames,
                      char *err,
                      size_t err_size)
{
    struct peer_decoder *d;
    CHECK(peer_decoder_create(max_body, &d) == RK_OK);
    uint64_t limit = max_body == 0 ? PEER_DEFAULT_MAX_BODY : max_body;
    char *q = NULL; /* unconsumed bytes */
    size_t qlen = 0;
    size_t qcap = 0;
    size_t sent = 0;
    size_t reads = 0;
    int rc = RK_EAGAIN;
    while (sent < size && rc == RK_EAGAIN) {
        size_t n = size - sent < frag ? size - sent : frag;
        if (qlen + n > qcap || reads++ % 8 == 0) {
            size_t cap = qcap;
            if (qlen + n > qcap) {
                cap = qcap * 2 > qlen + n ? qcap * 2 : qlen + n;
            }
            char *nq = malloc(cap);
            CHECK(nq != NULL);
            if (qlen > 0) {
                memcpy(nq, q, qlen);
            }
            free(q);
            q = nq;
            qcap = cap;
        }
        memcpy(q + qlen, in + sent, n);
        qlen += n;
        sent += n;
        size_t pos = 0;
        for (;;) {
            size_t consumed = 0;
            struct peer_msg m;
            g_in_feed = true;
            rc = peer_decoder_feed(d, q + pos, qlen - pos, &consumed, &m);
            g_in_feed = false;
            if (rc == RK_EPROTO || rc == RK_EVERSION) {
                const char *e = peer_decoder_errmsg(d);
                CHECK(e[0] != '\0');
                CHECK(strpbrk(e, "\r\n") == NULL);
                CHECK(rc == RK_EPROTO ||
                      strncmp(e, "peer speaks protocol version ", 29) == 0);
                snprintf(err, err_size, "%s", e);
                break;
            }
            if (rc == RK_EAGAIN) {
                size_t need = peer_decoder_need(d);
                CHECK(need > qlen - pos);
                CHECK(need <= PEER_HEADER_SIZE + limit);
                break;
            }
            CHECK(rc == RK_OK);
            CHECK(consumed >= PEER_HEADER_SIZE && consumed <= qlen - pos);
            CHECK(consumed - PEER_HEADER_SIZE <= limit);
            check_round_trip(&m, q + pos, consumed);
            CHECK(rk_buf_append(frames, q + pos, consumed) == RK_OK);
            pos += consumed;
        }
        memmove(q, q + pos, qlen - pos);
        qlen -= pos;
    }
    free(q);
    peer_decoder_destroy(d);
    return rc;
}

static void run_with_limit(uint32_t max_body,
                           const char *in,
                           size_t size,
                           size_t frag)
{
    struct rk_buf a, b;
    char err[256] = "";
    char err2[256] = "";
    rk_buf_init(&a);
    rk_buf_init(&b);
    int rc = run_stream(max_body, in, size, frag, &a, err, sizeof(err));
    if (frag < size) {
        int rc2 = run_stream(max_body, in, size, size, &b, err2, sizeof(err2));
        CHECK(rc == rc2);
        CHECK(strcmp(err, err2) == 0);
        CHECK(a.len == b.len && (a.len == 0 || !memcmp(a.base, b.base, a.len)));
    }
    rk_buf_fini(&a);
    rk_buf_fini(&b);
}

/* Gives every complete frame of buf the checksum its header and body call
 * for (docs/peer-protocol.md: low 32 bits of XXH3-64 of the body seeded
 * with header bytes 4..11). */
static void repair_checksums(unsigned char *buf, size_t size)
{
    size_t pos = 0;
    while (size - pos >= PEER_HEADER_SIZE) {
        unsigned char *h = buf + pos;
        uint32_t body_len = rk_get_le32(h + 8);
        if (body_len > size - pos - PEER_HEADER_SIZE) {
            break;
        }
        uint64_t seed = rk_get_le64(h + 4);
        uint32_t sum = (uint32_t)XXH3_64bits_withSeed(h + PEER_HEADER_SIZE,
                                                      body_len, seed);
        rk_put_le32(h + 12, sum);
        pos += PEER_HEADER_SIZE + body_len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool installed;
    if (!installed) {
        rk_set_allocator(&g_fz_alloc);
        installed = true;
    }
    if (size < 1) {
        return 0;
    }
    size_t frag = data[0] & 0x7f;
    bool repair = (data[0] & 0x80) != 0;
    size--;
    if (frag == 0) {
        frag = size;
    }
    unsigned char *in = malloc(size + 1);
    CHECK(in != NULL);
    memcpy(in, data + 1, size);
    if (repair) {
        repair_checksums(in, size);
    }
    run_with_limit(0, (const char *)in, size, frag);
    run_with_limit(300, (const char *)in, size, frag);
    free(in);
    return 0;
}

/*
 * test_peer_chunk.c - large frames split into CHUNK frames and gathered
 * again (proto/peer_chunk.h; docs/peer-protocol.md section 5.14; issue 12
 * item 4).
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "proto/peer.h"
#include "proto/peer_chunk.h"

#define VALUE_LEN (3u * PEER_CHUNK_MAX + 12345u) /* bytes: 4 pieces */

/* A KV_PUT frame carrying a VALUE_LEN-byte object of a known pattern. */
static void big_frame(struct rk_buf *f, char **obj)
{
    *obj = malloc(VALUE_LEN);
    for (size_t i = 0; i < VALUE_LEN; i++) {
        (*obj)[i] = (char)(i * 7 + i / 4096);
    }
    struct peer_msg m = {.type = PEER_KV_PUT};
    m.kv_put.req_id = 9;
    m.kv_put.key = (struct peer_bytes){"k", 1};
    m.kv_put.object = (struct peer_bytes){*obj, VALUE_LEN};
    m.kv_put.deadline_ms = 100;
    rk_buf_init(f);
    assert_int_equal(peer_encode(&m, f), RK_OK);
}

/* Decodes exactly one frame of buf[0..len). */
static void decode_one(struct peer_decoder *d,
                       const char *buf,
                       size_t len,
                       struct peer_msg *m)
{
    size_t consumed = 0;
    assert_int_equal(peer_decoder_feed(d, buf, len, &consumed, m), RK_OK);
    assert_int_equal(consumed, len);
}

static void test_peer_chunk_round_trips_a_large_frame(void **state)
{
    (void)state;
    struct rk_buf f;
    char *obj;
    big_frame(&f, &obj);
    struct peer_chunkq q;
    peer_chunkq_init(&q);
    assert_int_equal(peer_chunkq_push(&q, f.base, f.len), RK_OK);
    assert_int_equal(q.bytes, f.len);
    struct peer_decoder *d;
    assert_int_equal(peer_decoder_create(0, &d), RK_OK);
    struct peer_reasm r;
    peer_reasm_init(&r);
    struct rk_buf piece;
    rk_buf_init(&piece);
    size_t n_pieces = 0;
    bool done = false;
    while (!done) {
        rk_buf_clear(&piece);
        assert_int_equal(peer_chunkq_next(&q, true, &piece), RK_OK);
        assert_true(piece.len <= PEER_HEADER_SIZE + 12 + PEER_CHUNK_MAX);
        assert_int_equal((unsigned char)piece.base[4], 2); /* version 2 */
        struct peer_msg m;
        decode_one(d, piece.base, piece.len, &m);
        assert_int_equal(m.type, PEER_CHUNK);
        assert_int_equal(m.chunk.total, f.len);
        assert_int_equal(peer_reasm_feed(&r, &m.chunk, f.len, &done), RK_OK);
        n_pieces++;
    }
    assert_int_equal(n_pieces, 4);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.n_items, 0);
    assert_int_equal(peer_chunkq_next(&q, true, &piece), RK_EAGAIN);
    struct peer_bytes whole = peer_reasm_frame(&r);
    assert_int_equal(whole.len, f.len);
    assert_memory_equal(whole.ptr, f.base, f.len);
    struct peer_msg inner;
    decode_one(d, whole.ptr, whole.len, &inner);
    assert_int_equal(inner.type, PEER_KV_PUT);
    assert_int_equal(inner.kv_put.object.len, VALUE_LEN);
    assert_memory_equal(inner.kv_put.object.ptr, obj, VALUE_LEN);
    peer_reasm_fini(&r);
    peer_decoder_destroy(d);
    rk_buf_fini(&piece);
    rk_buf_fini(&f);
    free(obj);
}

static void test_peer_chunk_version1_peer_gets_the_whole_frame(void **state)
{
    (void)state;
    struct rk_buf f;
    char *obj;
    big_frame(&f, &obj);
    struct peer_chunkq q;
    peer_chunkq_init(&q);
    assert_int_equal(peer_chunkq_push(&q, f.base, f.len), RK_OK);
    struct rk_buf out;
    rk_buf_init(&out);
    assert_int_equal(peer_chunkq_next(&q, false, &out), RK_OK);
    assert_int_equal(out.len, f.len);
    assert_memory_equal(out.base, f.base, f.len);
    assert_int_equal(q.n_items, 0);
    rk_buf_fini(&out);
    rk_buf_fini(&f);
    free(obj);
}

static void test_peer_chunk_reasm_rejects_out_of_order_pieces(void **state)
{
    (void)state;
    char data[100] = {0};
    struct peer_reasm r;
    peer_reasm_init(&r);
    bool done = false;
    struct peer_chunk c = {1000, 100, {data, 100}};
    /* a first piece must start at 0 */
    assert_int_equal(peer_reasm_feed(&r, &c, 1 << 20, &done), RK_EPROTO);
    c.offset = 0;
    assert_int_equal(peer_reasm_feed(&r, &c, 1 << 20, &done), RK_OK);
    assert_false(done);
    /* a gap, a repeat, another total, too much data */
    c.offset = 300;
    assert_int_equal(peer_reasm_feed(&r, &c, 1 << 20, &done), RK_EPROTO);
    c.offset = 0;
    assert_int_equal(peer_reasm_feed(&r, &c, 1 << 20, &done), RK_EPROTO);
    c.offset = 100;
    c.total = 2000;
    assert_int_equal(peer_reasm_feed(&r, &c, 1 << 20, &done), RK_EPROTO);
    c.total = 150;
    assert_int_equal(peer_reasm_feed(&r, &c, 1 << 20, &done), RK_EPROTO);
    peer_reasm_fini(&r);
    /* a total over the receiver's limit fails before any allocation */
    struct peer_chunk big = {2000, 0, {data, 100}};
    assert_int_equal(peer_reasm_feed(&r, &big, 1999, &done), RK_EPROTO);
    assert_null(r.buf);
}

static void test_peer_chunk_drop_started_keeps_unstarted_frames(void **state)
{
    (void)state;
    struct rk_buf f;
    char *obj;
    big_frame(&f, &obj);
    struct peer_chunkq q, q2;
    peer_chunkq_init(&q);
    peer_chunkq_init(&q2);
    assert_false(peer_chunkq_drop_started(&q));
    assert_int_equal(peer_chunkq_push(&q, f.base, f.len), RK_OK);
    assert_int_equal(peer_chunkq_push(&q2, f.base, f.len), RK_OK);
    assert_false(peer_chunkq_drop_started(&q)); /* not started */
    struct rk_buf piece;
    rk_buf_init(&piece);
    assert_int_equal(peer_chunkq_next(&q, true, &piece), RK_OK);
    peer_chunkq_move(&q, &q2);
    assert_int_equal(q.n_items, 2);
    assert_int_equal(q2.n_items, 0);
    assert_int_equal(q.bytes, 2 * f.len - PEER_CHUNK_MAX);
    assert_true(peer_chunkq_drop_started(&q));
    assert_int_equal(q.n_items, 1);
    assert_int_equal(q.bytes, f.len);
    assert_int_equal(peer_chunkq_push(&q, f.base, PEER_HEADER_SIZE), RK_EINVAL);
    peer_chunkq_fini(&q);
    assert_int_equal(q.n_items, 0);
    rk_buf_fini(&piece);
    rk_buf_fini(&f);
    free(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_chunk_round_trips_a_large_frame),
        cmocka_unit_test(test_peer_chunk_version1_peer_gets_the_whole_frame),
        cmocka_unit_test(test_peer_chunk_reasm_rejects_out_of_order_pieces),
        cmocka_unit_test(test_peer_chunk_drop_started_keeps_unstarted_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

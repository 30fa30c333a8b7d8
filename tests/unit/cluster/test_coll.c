/*
 * test_coll.c - cluster/types/coll: member keys and headers of hashes and
 * sets (issue 16): the encoding round-trips and refuses what is not one,
 * member keys are ringkv's reserved keys, and a member key has its
 * collection's hash slot (so members sit with their key in the slot index
 * and, in a cluster, on its replicas).
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <string.h>

#include "cluster/chunk.h"
#include "cluster/objtype.h"
#include "cluster/slot.h"
#include "cluster/types/coll.h"
#include "common/buf.h"
#include "common/error.h"

static void test_coll_member_keys_round_trip(void **st)
{
    (void)st;
    struct rk_buf b;
    rk_buf_init(&b);
    const char key[] = "user:{42}:tags";
    assert_int_equal(coll_member_key(key, strlen(key), "red\0x", 5, &b), RK_OK);
    assert_int_equal(b.len, COLL_MEMBER_HDR + strlen(key) + 5);
    assert_true(chunk_key_is_reserved(b.base, b.len));
    const char *k, *m;
    size_t kl, ml;
    assert_true(coll_member_parse(b.base, b.len, &k, &kl, &m, &ml));
    assert_int_equal(kl, strlen(key));
    assert_memory_equal(k, key, kl);
    assert_int_equal(ml, 5);
    assert_memory_equal(m, "red\0x", 5);
    /* a member key has its collection's slot, whatever the member */
    assert_int_equal(slot_of_key(b.base, b.len), slot_of_key(key, strlen(key)));
    for (int i = 0; i < 200; i++) {
        char mem[16];
        int n = snprintf(mem, sizeof(mem), "m%d", i);
        assert_int_equal(coll_member_key("k", 1, mem, (size_t)n, &b), RK_OK);
        assert_int_equal(slot_of_key(b.base, b.len), slot_of_key("k", 1));
    }
    /* the prefix of K's members is the member key of (K, "") */
    struct rk_buf p;
    rk_buf_init(&p);
    assert_int_equal(coll_member_prefix("k", 1, &p), RK_OK);
    assert_int_equal(coll_member_key("k", 1, "zz", 2, &b), RK_OK);
    assert_memory_equal(b.base, p.base, p.len);
    /* the prefix of "k" is not the prefix of "kk"'s members */
    assert_int_equal(coll_member_key("kk", 2, "", 0, &b), RK_OK);
    assert_false(b.len >= p.len && memcmp(b.base, p.base, p.len) == 0);
    /* what is not a member key */
    assert_false(coll_member_parse("plain", 5, &k, &kl, &m, &ml));
    assert_false(coll_member_parse(COLL_MEMBER_PREFIX "\0\0\0\x09k", 11, &k,
                                   &kl, &m, &ml)); /* K longer than the key */
    /* too long for a key */
    assert_false(coll_member_fits(10, COLL_MAX_MEMBER_KEY));
    assert_int_equal(coll_member_key("k", 1, "", COLL_MAX_MEMBER_KEY, &b),
                     RK_ETOOBIG);
    rk_buf_fini(&p);
    rk_buf_fini(&b);
}

static void test_coll_headers(void **st)
{
    (void)st;
    unsigned char h[COLL_HEADER_LEN];
    uint8_t type;
    uint64_t n;
    coll_header_encode(OBJTYPE_SET, 1234567, h);
    assert_int_equal(coll_header_decode(h, sizeof(h), &type, &n), RK_OK);
    assert_int_equal(type, OBJTYPE_SET);
    assert_int_equal(n, 1234567);
    coll_header_encode(OBJTYPE_HASH, 1, h);
    assert_int_equal(coll_header_decode(h, sizeof(h), &type, &n), RK_OK);
    assert_int_equal(type, OBJTYPE_HASH);
    assert_int_equal(coll_header_decode(h, sizeof(h) - 1, &type, &n),
                     RK_ECORRUPT);
    h[0] = 2;
    assert_int_equal(coll_header_decode(h, sizeof(h), &type, &n), RK_ECORRUPT);
    h[0] = COLL_HEADER_VERSION;
    h[1] = OBJTYPE_STRING;
    assert_int_equal(coll_header_decode(h, sizeof(h), &type, &n), RK_ECORRUPT);
    assert_int_equal(coll_header_decode(NULL, 0, &type, &n), RK_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coll_member_keys_round_trip),
        cmocka_unit_test(test_coll_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_slot.c - Redis Cluster hash slots (src/cluster/slot.h, issue 13
 * item 1).  The expected slots were read from a real redis-server 7.0.15
 * started with --cluster-enabled yes (CLUSTER KEYSLOT key).
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

#include "cluster/slot.h"

/* EVIDENCE-OF: CRC16 is XMODEM; the check value of "123456789" is 0x31c3
 * (Redis Cluster specification, "Keys distribution model"). */
static void test_slot_crc16_is_xmodem(void **state)
{
    (void)state;
    assert_int_equal(slot_crc16("123456789", 9), 0x31c3);
    assert_int_equal(slot_crc16(NULL, 0), 0);
    /* every table entry, recomputed bit by bit (poly 0x1021, MSB first) */
    for (unsigned b = 0; b < 256; b++) {
        uint16_t want = (uint16_t)(b << 8);
        for (int i = 0; i < 8; i++) {
            want = (uint16_t)((want & 0x8000) ? (want << 1) ^ 0x1021
                                              : (want << 1));
        }
        unsigned char byte = (unsigned char)b;
        assert_int_equal(slot_crc16(&byte, 1), want);
    }
}

struct known
{
    const char *key;
    size_t len; /* 0: strlen(key) */
    unsigned slot;
};

/* CLUSTER KEYSLOT of a redis-server 7.0.15 in cluster mode. */
static const struct known g_known[] = {
    {"foo", 0, 12182},
    {"bar", 0, 5061},
    {"{user1000}.following", 0, 3443},
    {"{user1000}.followers", 0, 3443},
    {"foo{}{bar}", 0, 8363},    /* empty first tag: the whole key */
    {"foo{{bar}}zap", 0, 4015}, /* the tag is "{bar" */
    {"{bar", 0, 4015},
    {"foo{{bar}}", 0, 4015},
    {"foo{bar}{zap}", 0, 5061}, /* the first tag: "bar" */
    {"{}", 0, 15257},
    {"{", 0, 4092},
    {"}", 0, 12090},
    {"a{b", 0, 13340}, /* no '}' after the '{' */
    {"a}b{c}", 0, 7365},
    {"123456789", 0, 12739},
    {"\x00\xff\x7f{\x01}", 6, 4129}, /* binary-safe */
    {"key:0", 0, 2592},
    {"hello world", 0, 15332},
    {"{a}", 0, 15495},
    {"}{a}", 0, 15495},
    {"a{}", 0, 6082},
};

static void test_slot_of_key_matches_redis(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(g_known) / sizeof(g_known[0]); i++) {
        const struct known *k = &g_known[i];
        size_t len = k->len ? k->len : strlen(k->key);
        unsigned got = slot_of_key(k->key, len);
        if (got != k->slot) {
            fail_msg("slot of key #%zu (%s) is %u, Redis says %u", i, k->key,
                     got, k->slot);
        }
    }
    /* a long key: 1000 x 'x' */
    char big[1000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(slot_of_key(big, sizeof(big)), 3195);
    assert_int_equal(slot_of_key(NULL, 0), 0);
    assert_int_equal(slot_of_key("", 0), 0);
}

/* Keys with the same hash tag share a slot whatever surrounds the tag, and
 * the slot is always below SLOT_COUNT. */
static void test_slot_hash_tags_share_a_slot(void **state)
{
    (void)state;
    unsigned tag = slot_of_key("user1000", 8);
    static const char *keys[] = {"{user1000}",  "{user1000}.a",
                                 "x{user1000}", "a{user1000}b{c}",
                                 "{user1000}}", "}{user1000}"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_int_equal(slot_of_key(keys[i], strlen(keys[i])), tag);
    }
    char k[16];
    for (unsigned i = 0; i < 100000; i++) {
        memcpy(k, &i, sizeof(i));
        assert_true(slot_of_key(k, sizeof(i)) < SLOT_COUNT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_crc16_is_xmodem),
        cmocka_unit_test(test_slot_of_key_matches_redis),
        cmocka_unit_test(test_slot_hash_tags_share_a_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

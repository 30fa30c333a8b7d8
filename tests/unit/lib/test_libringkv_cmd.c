/*
 * test_libringkv_cmd.c - libringkv's commands and their replies
 * (src/lib/cmd.c), the one table both the blocking and the asynchronous API
 * use: each call's argv, slot and idempotence, and the decoding of each reply
 * into a struct ringkv_result.
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
#include "common/error.h"
#include "lib/internal.h"
#include "lib_test.h"

static void assert_argv(const struct rkl_cmd *c, size_t argc, ...)
{
    va_list ap;
    va_start(ap, argc);
    assert_int_equal(c->argc, argc);
    for (size_t i = 0; i < argc; i++) {
        const char *want = va_arg(ap, const char *);
        assert_int_equal(c->lens[i], strlen(want));
        assert_memory_equal(c->argv[i], want, c->lens[i]);
    }
    va_end(ap);
}

static void test_cmd_builds_argv_slot_and_idempotence(void **state)
{
    (void)state;
    struct rkl_cmd c;
    assert_int_equal(rkl_cmd_set(&c, "foo", 3, "bar", 3, 0), RINGKV_OK);
    assert_argv(&c, 3, "SET", "foo", "bar");
    assert_int_equal(c.slot, slot_of_key("foo", 3));
    assert_true(c.idempotent);
    rkl_cmd_fini(&c);
    assert_int_equal(rkl_cmd_set(&c, "foo", 3, NULL, 0, 1500), RINGKV_OK);
    assert_argv(&c, 5, "SET", "foo", "", "PX", "1500");
    rkl_cmd_fini(&c);
    assert_int_equal(rkl_cmd_incr(&c, "n", 1, -7), RINGKV_OK);
    assert_argv(&c, 3, "INCRBY", "n", "-7");
    assert_false(c.idempotent); /* a repeated INCR counts twice */
    rkl_cmd_fini(&c);
    assert_int_equal(rkl_cmd_put(&c, "k", 1, "ctx", 3, "v", 1), RINGKV_OK);
    assert_argv(&c, 4, "RINGKV.PUT", "k", "ctx", "v");
    assert_false(c.idempotent);
    rkl_cmd_fini(&c);
    assert_int_equal(rkl_cmd_expire(&c, "k", 1, 20), RINGKV_OK);
    assert_argv(&c, 3, "PEXPIRE", "k", "20");
    rkl_cmd_fini(&c);

    const void *keys[2] = {"{t}a", "{t}b"};
    size_t klens[2] = {4, 4};
    const void *vals[2] = {"1", "2"};
    size_t vlens[2] = {1, 1};
    assert_int_equal(rkl_cmd_mset(&c, 2, keys, klens, vals, vlens), RINGKV_OK);
    assert_argv(&c, 5, "MSET", "{t}a", "1", "{t}b", "2");
    assert_int_equal(c.slot, slot_of_key("t", 1)); /* the hash tag's */
    rkl_cmd_fini(&c);
    assert_int_equal(rkl_cmd_mget(&c, 2, keys, klens), RINGKV_OK);
    assert_argv(&c, 3, "MGET", "{t}a", "{t}b");
    assert_int_equal(c.n_keys, 2);
    rkl_cmd_fini(&c);
    assert_int_equal(c.op, RKL_OP_MGET); /* kept after fini */
}

static void test_cmd_rejects_bad_arguments(void **state)
{
    (void)state;
    struct rkl_cmd c;
    const void *keys[1] = {NULL};
    size_t klens[1] = {3};
    assert_int_equal(rkl_cmd_get(&c, NULL, 1), RINGKV_EINVAL);
    assert_int_equal(rkl_cmd_set(&c, "k", 1, "v", 1, -1), RINGKV_EINVAL);
    assert_int_equal(rkl_cmd_expire(&c, "k", 1, 0), RINGKV_EINVAL);
    assert_int_equal(rkl_cmd_mget(&c, 0, keys, klens), RINGKV_EINVAL);
    assert_int_equal(rkl_cmd_mget(&c, 1, keys, klens), RINGKV_EINVAL);
    assert_int_equal(rkl_cmd_mset(&c, 1, keys, klens, NULL, NULL),
                     RINGKV_EINVAL);
    /* an empty key is a key */
    assert_int_equal(rkl_cmd_get(&c, NULL, 0), RINGKV_OK);
    rkl_cmd_fini(&c);
}

static void test_cmd_decode_each_reply(void **state)
{
    (void)state;
    struct ringkv_result r;
    struct resp_value *v = lib_test_parse("$3\r\nabc\r\n");
    assert_int_equal(rkl_cmd_decode(RKL_OP_GET, 0, v, &r), RINGKV_OK);
    assert_int_equal(r.value.len, 3);
    assert_string_equal(r.value.data, "abc");
    rkl_result_fini(&r);
    assert_null(r.value.data);
    /* the wrong shape for SET and DEL */
    assert_int_equal(rkl_cmd_decode(RKL_OP_SET, 0, v, &r), RINGKV_EPROTO);
    assert_int_equal(rkl_cmd_decode(RKL_OP_DEL, 0, v, &r), RINGKV_EPROTO);
    assert_int_equal(r.err, RINGKV_EPROTO);
    resp_value_free(v);

    v = lib_test_parse("$-1\r\n");
    assert_int_equal(rkl_cmd_decode(RKL_OP_GET, 0, v, &r), RINGKV_ENOTFOUND);
    assert_null(r.value.data);
    resp_value_free(v);

    v = lib_test_parse(":42\r\n");
    assert_int_equal(rkl_cmd_decode(RKL_OP_INCR, 0, v, &r), RINGKV_OK);
    assert_int_equal(r.integer, 42);
    resp_value_free(v);

    v = lib_test_parse("+OK\r\n");
    assert_int_equal(rkl_cmd_decode(RKL_OP_PUT, 0, v, &r), RINGKV_OK);
    assert_string_equal(r.errmsg, "");
    resp_value_free(v);

    v = lib_test_parse("*2\r\n$1\r\nx\r\n$-1\r\n");
    assert_int_equal(rkl_cmd_decode(RKL_OP_MGET, 2, v, &r), RINGKV_OK);
    assert_int_equal(r.n_values, 2);
    assert_string_equal(r.values[0].data, "x");
    assert_null(r.values[1].data);
    /* the caller takes the array: fini frees nothing more */
    struct ringkv_value *took = r.values;
    r.values = NULL;
    rkl_result_fini(&r);
    ringkv_values_free(took, 2);
    assert_int_equal(rkl_cmd_decode(RKL_OP_MGET, 3, v, &r), RINGKV_EPROTO);
    resp_value_free(v);

    v = lib_test_parse(
        "*2\r\n$4\r\nabcd\r\n*1\r\n*3\r\n$1\r\nv\r\n:7\r\n:9\r\n");
    assert_int_equal(rkl_cmd_decode(RKL_OP_GETALL, 0, v, &r), RINGKV_OK);
    assert_int_equal(r.siblings->n, 1);
    assert_string_equal(r.siblings->context, "abcd");
    rkl_result_fini(&r);
    assert_null(r.siblings);
    resp_value_free(v);
}

static void test_cmd_auth_argv(void **state)
{
    (void)state;
    struct ringkv_options o;
    ringkv_options_init(&o);
    o.password = "pw";
    struct rkl_auth a;
    assert_int_equal(rkl_auth_init(&a, &o), RINGKV_OK);
    const char *argv[3];
    size_t lens[3];
    assert_int_equal(rkl_auth_argv(&a, argv, lens), 2);
    assert_string_equal(argv[1], "pw");
    rkl_auth_fini(&a);
    o.username = "alice";
    assert_int_equal(rkl_auth_init(&a, &o), RINGKV_OK);
    assert_int_equal(rkl_auth_argv(&a, argv, lens), 3);
    assert_string_equal(argv[1], "alice");
    assert_int_equal(lens[2], 2);
    rkl_auth_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_builds_argv_slot_and_idempotence),
        cmocka_unit_test(test_cmd_rejects_bad_arguments),
        cmocka_unit_test(test_cmd_decode_each_reply),
        cmocka_unit_test(test_cmd_auth_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * lib_test.h - what libringkv's unit tests share (tests/unit/lib/).
 */
#ifndef RINGKV_TESTS_UNIT_LIB_LIB_TEST_H
#define RINGKV_TESTS_UNIT_LIB_LIB_TEST_H

#include <string.h>

#include "common/error.h"
#include "lib/internal.h"

/* One complete RESP reply `s` parsed as libringkv parses replies;
 * returned-owned (resp_value_free).  Fails the test otherwise. */
static inline struct resp_value *lib_test_parse(const char *s)
{
    size_t consumed = 0;
    struct resp_value *v = NULL;
    assert_int_equal(
        resp_reply_parse(s, strlen(s), 64, 1u << 20, &consumed, NULL, &v),
        RK_OK);
    assert_int_equal(consumed, strlen(s));
    return v;
}

#endif /* RINGKV_TESTS_UNIT_LIB_LIB_TEST_H */

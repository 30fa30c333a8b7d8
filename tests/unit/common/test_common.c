/*
 * test_common.c - common/: error names, rk_buf growth, glob matching, HLC
 * monotonicity under clock jumps backwards, little-endian helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/hlc.h"
#include "common/log.h"

static void test_error_names_and_messages_cover_every_code(void **state)
{
    (void)state;
    assert_string_equal(rk_errname(RK_OK), "RK_OK");
    assert_string_equal(rk_errname(RK_EIO), "RK_EIO");
    assert_string_equal(rk_strerror(RK_ENOQUORUM), "quorum not reached");
    assert_string_equal(rk_strerror(12345), "unknown error");
    for (int e = -1; e >= RK_EPERM; e--) {
        assert_string_not_equal(rk_errname(e), "RK_UNKNOWN");
    }
}

static void test_buf_appends_consumes_and_formats(void **state)
{
    (void)state;
    struct rk_buf b;
    rk_buf_init(&b);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(rk_buf_append(&b, "ab", 2), RK_OK);
    }
    assert_int_equal(b.len, 2000);
    rk_buf_consume(&b, 1999);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.base[0], 'b');
    assert_int_equal(rk_buf_appendf(&b, "%d-%s", 42, "x"), RK_OK);
    assert_memory_equal(b.base, "b42-x", 5);
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rk_buf_appendf(&b, "%s", big), RK_OK);
    assert_int_equal(b.len, 5 + 999);
    rk_buf_clear(&b);
    rk_buf_shrink(&b, 16);
    assert_null(b.base);
    rk_buf_fini(&b);
    rk_buf_fini(&b);
}

static bool gm(const char *p, const char *s)
{
    return rk_glob_match(p, strlen(p), s, strlen(s), false);
}

static void test_glob_matches_redis_patterns(void **state)
{
    (void)state;
    assert_true(gm("*", ""));
    assert_true(gm("*", "anything"));
    assert_true(gm("h?llo", "hello"));
    assert_true(gm("h*llo", "heeeello"));
    assert_true(gm("h[ae]llo", "hallo"));
    assert_false(gm("h[ae]llo", "hillo"));
    assert_true(gm("h[^e]llo", "hallo"));
    assert_false(gm("h[^e]llo", "hello"));
    assert_true(gm("h[a-b]llo", "hbllo"));
    assert_true(gm("key:\\*", "key:*"));
    assert_false(gm("key:\\*", "key:x"));
    assert_true(gm("user:*:name", "user:42:name"));
    assert_false(gm("user:*:name", "user:42:names"));
    assert_true(rk_glob_match("HEL*", 4, "hello", 5, true));
    /* A hostile pattern must finish quickly (no exponential backtracking). */
    char s[4000], p[200];
    memset(s, 'a', sizeof(s));
    for (size_t i = 0; i < sizeof(p); i += 2) {
        p[i] = 'a';
        p[i + 1] = '*';
    }
    p[sizeof(p) - 1] = 'b';
    assert_false(rk_glob_match(p, sizeof(p), s, sizeof(s), false));
}

static void test_hlc_monotonic_under_clock_jumps_back(void **state)
{
    (void)state;
    struct hlc h;
    hlc_init(&h);
    uint64_t prev = 0;
    uint64_t now = 1700000000000ull;
    for (int i = 0; i < 100000; i++) {
        /* Every 1000 steps the clock jumps back by up to an hour. */
        if (i % 1000 == 999) {
            now -= (uint64_t)(i % 3600) * 1000;
        } else if (i % 3 == 0) {
            now += 1;
        }
        uint64_t t = hlc_now(&h, now);
        assert_true(t > prev);
        prev = t;
    }
    uint64_t remote = prev + (5ull << HLC_LOGICAL_BITS);
    uint64_t t = hlc_update(&h, now, remote);
    assert_true(t > remote);
    assert_true(hlc_now(&h, now) > t);
}

static void test_endian_helpers_round_trip(void **state)
{
    (void)state;
    unsigned char b[8];
    rk_put_le64(b, 0x0102030405060708ull);
    assert_int_equal(b[0], 0x08);
    assert_int_equal(b[7], 0x01);
    assert_true(rk_get_le64(b) == 0x0102030405060708ull);
    rk_put_le32(b, 0xdeadbeef);
    assert_int_equal(rk_get_le32(b), 0xdeadbeef);
    rk_put_le16(b, 0xbeef);
    assert_int_equal(rk_get_le16(b), 0xbeef);
}

/* A peer's or client's string with a newline cannot start a forged log
 * line (issue 15): control bytes in fields become '?'. */
static void test_log_keeps_one_event_on_one_line(void **state)
{
    (void)state;
    char path[] = "/tmp/rk_log_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    rk_log(RK_LOG_WARN, "test_event", "peer=%s",
           "x\ntime=0 level=error event=forged");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[4096] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    int lines = 0;
    for (ssize_t i = 0; i < n; i++) {
        lines += buf[i] == '\n';
    }
    assert_int_equal(lines, 1);
    assert_non_null(strstr(buf, "peer=x?time=0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names_and_messages_cover_every_code),
        cmocka_unit_test(test_buf_appends_consumes_and_formats),
        cmocka_unit_test(test_glob_matches_redis_patterns),
        cmocka_unit_test(test_hlc_monotonic_under_clock_jumps_back),
        cmocka_unit_test(test_endian_helpers_round_trip),
        cmocka_unit_test(test_log_keeps_one_event_on_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

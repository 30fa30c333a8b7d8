/*
 * test_bg_file.c - the background writer of the handoff checkpoint
 * (src/server/bg_file.h): the newest content wins, stop writes what is
 * queued, a failed write is counted, an empty content is written.
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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "server/bg_file.h"
#include "server/fileio.h"

static char *tmp_dir(void)
{
    char tmpl[] = "/tmp/rk-bgfile-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void read_back(const char *path, struct rk_buf *b)
{
    assert_int_equal(rk_file_read(path, 1 << 20, b, NULL), RK_OK);
}

static void test_newest_content_wins(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof(path), "%s/ckpt", dir);
    struct bg_file *f = NULL;
    assert_int_equal(bg_file_start(&f, path), RK_OK);
    char msg[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(msg, sizeof(msg), "content %d", i);
        assert_int_equal(bg_file_put(f, msg, (size_t)n), RK_OK);
    }
    bg_file_stop(f); /* writes what is still queued */
    struct rk_buf b;
    rk_buf_init(&b);
    read_back(path, &b);
    assert_int_equal(b.len, strlen("content 999"));
    assert_memory_equal(b.base, "content 999", b.len);
    /* an empty content (no transfer in progress) replaces it */
    assert_int_equal(bg_file_start(&f, path), RK_OK);
    assert_int_equal(bg_file_put(f, "", 0), RK_OK);
    bg_file_stop(f);
    read_back(path, &b);
    assert_int_equal(b.len, 0);
    rk_buf_fini(&b);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void test_failed_write_is_counted(void **state)
{
    (void)state;
    struct bg_file *f = NULL;
    assert_int_equal(bg_file_start(&f, "/nonexistent-dir-rk/ckpt"), RK_OK);
    assert_int_equal(bg_file_put(f, "x", 1), RK_OK);
    /* the write runs on the thread: wait for it */
    for (int i = 0; i < 500 && bg_file_errors(f) == 0; i++) {
        usleep(2000);
    }
    assert_int_equal(bg_file_errors(f), 1);
    bg_file_stop(f);
    bg_file_stop(NULL); /* a no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_content_wins),
        cmocka_unit_test(test_failed_write_is_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

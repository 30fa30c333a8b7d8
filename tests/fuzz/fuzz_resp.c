/*
 * fuzz_resp.c - libFuzzer target for the RESP request parser (TESTING.md
 * B5).
 *
 * Input: byte 0 picks a fragment size (0 = the whole input at once, else
 * 1..255 bytes per read), the rest is the byte stream of one connection.
 * Fragments arrive as a socket would deliver them (hiredis PR #1367), and
 * the unconsumed bytes move to a fresh allocation often, so a parser
 * keeping pointers instead of offsets reads freed memory.  The
 * stream is parsed with the default limits, with pre-auth limits (10
 * arguments, 16 KiB bulks; TESTING.md B6) and with tiny limits (so short
 * inputs reach every limit check), each time both fragmented and whole:
 * both must give the same commands and the same verdict.
 *
 * Checks: consumed <= len; argc within max_args and every argument within
 * max_bulk (and max_inline when inline); multibulk arguments point inside
 * the buffer; need() is past the bytes held; an error message starts with
 * "Protocol error: "; no single allocation beyond a bound linear in the
 * input; and every parsed command, re-serialized with resp_w_command and
 * parsed again, gives the same argv.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "proto/resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* ---- an allocator that traps allocations beyond a bound ---------------- */

static size_t g_alloc_max; /* 0 = unchecked */

static void check_size(size_t size)
{
    if (g_alloc_max != 0 && size > g_alloc_max) {
        fprintf(stderr, "allocation of %zu bytes over the bound %zu\n", size,
                g_alloc_max);
        abort();
    }
}

static void *fz_malloc(void *data, size_t size)
{
    (void)data;
    check_size(size);
    return malloc(size);
}

static void *fz_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    check_size(n * size);
    return calloc(n, size);
}

static void *fz_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    check_size(size);
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

/* ---- one connection ----------------------------------------------------- */

/* Appends argv in a canonical form: count, then (length, bytes) each. */
static void canon_append(struct rk_buf *canon, const struct resp_cmd *cmd)
{
    uint64_t n = cmd->argc;
    rk_buf_append(canon, &n, sizeof(n));
    for (size_t i = 0; i < cmd->argc; i++) {
        uint64_t len = cmd->argv[i].len;
        rk_buf_append(canon, &len, sizeof(len));
        rk_buf_append(canon, cmd->argv[i].ptr, cmd->argv[i].len);
    }
}

static void check_cmd(const struct resp_limits *lim,
                      const struct resp_cmd *cmd,
                      const char *buf,
                      size_t len)
{
    CHECK(cmd->argc >= 1);
    CHECK(cmd->argc <= lim->max_args);
    for (size_t i = 0; i < cmd->argc; i++) {
        const struct resp_arg *a = &cmd->argv[i];
        CHECK(a->len <= lim->max_bulk);
        if (cmd->is_inline) {
            CHECK(a->len <= lim->max_inline);
        } else {
            CHECK(a->ptr >= buf && a->len <= len &&
                  (size_t)(a->ptr - buf) <= len - a->len);
        }
    }
}

/*
 * Feeds `in` in fragments of `frag` bytes; appends each command to `canon`
 * and, when `ser` is not NULL, its multibulk form to `ser`.  Returns the
 * final result (RK_EAGAIN when the stream ended cleanly).
 */
static int run_stream(const struct resp_limits *lim,
                      const char *in,
                      size_t size,
                      size_t frag,
                      struct rk_buf *canon,
                      struct rk_buf *ser,
                      char *err,
                      size_t err_size)
{
    struct resp_parser *p;
    CHECK(resp_parser_create(lim, &p) == RK_OK);
    char *q = NULL; /* unconsumed bytes */
    size_t qlen = 0;
    size_t qcap = 0;
    size_t sent = 0;
    size_t reads = 0;
    int rc = RK_EAGAIN;
    while (sent < size && rc == RK_EAGAIN) {
        size_t n = size - sent < frag ? size - sent : frag;
        /* Move the bytes to a new allocation when growing and every 8th
         * read anyway, so that a stale pointer in the parser is caught
         * by ASan without making 1-byte reads quadratic. */
        if (qlen + n > qcap || reads++ % 8 == 0) {
            /* Grow geometrically only when the bytes do not fit; a
             * relocation alone keeps the size (doubling on every 8th
             * read made 1-byte fragments ask for 2 GiB: a harness OOM). */
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
            struct resp_cmd cmd;
            g_alloc_max = 64 * size + 64 * 1024;
            rc = resp_parser_feed(p, q + pos, qlen - pos, &consumed, &cmd);
            g_alloc_max = 0;
            CHECK(rc == RK_OK || rc == RK_EAGAIN || rc == RK_EPROTO);
            if (rc == RK_EPROTO) {
                CHECK(strncmp(resp_parser_errmsg(p), "Protocol error: ", 16) ==
                      0);
                snprintf(err, err_size, "%s", resp_parser_errmsg(p));
                break;
            }
            CHECK(consumed <= qlen - pos);
            pos += consumed;
            if (rc == RK_EAGAIN) {
                size_t need = resp_parser_need(p);
                CHECK(need == 0 || need > qlen - pos);
                break;
            }
            check_cmd(lim, &cmd, q + pos - consumed, consumed);
            canon_append(canon, &cmd);
            if (ser != NULL) {
                const char *argv[64];
                size_t lens[64];
                if (cmd.argc <= 64) {
                    for (size_t i = 0; i < cmd.argc; i++) {
                        argv[i] = cmd.argv[i].ptr;
                        lens[i] = cmd.argv[i].len;
                    }
                    CHECK(resp_w_command(ser, cmd.argc, argv, lens) == RK_OK);
                } else {
                    CHECK(resp_w_array(ser, cmd.argc) == RK_OK);
                    for (size_t i = 0; i < cmd.argc; i++) {
                        CHECK(resp_w_bulk(ser, cmd.argv[i].ptr,
                                          cmd.argv[i].len) == RK_OK);
                    }
                }
            }
        }
        memmove(q, q + pos, qlen - pos);
        qlen -= pos;
    }
    free(q);
    resp_parser_destroy(p);
    return rc;
}

static bool same_buf(const struct rk_buf *a, const struct rk_buf *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->base, b->base, a->len) == 0);
}

static void run_with_limits(const struct resp_limits *lim,
                            const char *in,
                            size_t size,
                            size_t frag)
{
    struct rk_buf canon, ser, canon2;
    char err[96] = "";
    char err2[96] = "";
    rk_buf_init(&canon);
    rk_buf_init(&ser);
    rk_buf_init(&canon2);
    int rc = run_stream(lim, in, size, frag, &canon, &ser, err, sizeof(err));
    if (frag < size) {
        /* Split or whole, the same commands and the same verdict. */
        int rc2 =
            run_stream(lim, in, size, size, &canon2, NULL, err2, sizeof(err2));
        CHECK(rc2 == rc);
        CHECK(strcmp(err, err2) == 0);
        CHECK(same_buf(&canon, &canon2));
        rk_buf_clear(&canon2);
    }
    /* Round trip: the multibulk form of every command parses back to the
     * same argv. */
    rc = run_stream(lim, ser.base, ser.len, ser.len + 1, &canon2, NULL, err2,
                    sizeof(err2));
    CHECK(rc == RK_EAGAIN);
    CHECK(same_buf(&canon, &canon2));
    rk_buf_fini(&canon);
    rk_buf_fini(&ser);
    rk_buf_fini(&canon2);
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
    size_t frag = data[0] == 0 ? size : data[0];
    const char *in = (const char *)data + 1;
    size--;

    struct resp_limits lim;
    resp_limits_default(&lim);
    run_with_limits(&lim, in, size, frag);

    struct resp_limits preauth = {
        .max_bulk = 16384,
        .max_args = 10,
        .max_inline = RESP_DEFAULT_MAX_INLINE,
        .unauthenticated = true,
    };
    run_with_limits(&preauth, in, size, frag);

    /* Tiny limits, so that short inputs reach every limit check. */
    struct resp_limits tiny = {.max_bulk = 7, .max_args = 3, .max_inline = 5};
    run_with_limits(&tiny, in, size, frag);
    return 0;
}

/*
 * test_resp.c - proto/resp: the request parser (every frame type, every
 * split point, pipelining, inline quoting, malformed frames with Redis's
 * error texts, limits and memory bombs), the reply writer byte for byte in
 * RESP2 and RESP3, the reply parser (every type, every split point,
 * malformed replies), and allocation-failure loops over all three
 * (STYLE.md 1.7; TESTING.md B1, B6).
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "proto/resp.h"

/* ---- a counting, failing allocator (raft test/lib/heap.h) ------------- */

struct test_heap
{
    long calls;         /* allocation calls (malloc, calloc, realloc) */
    long fail_at;       /* fail the Nth call, 1-based; 0 = never */
    long live;          /* blocks not yet freed */
    size_t live_bytes;  /* bytes in those blocks */
    size_t total_bytes; /* bytes requested by all successful calls */
};

#define HEAP_HDR 16 /* keeps max_align_t alignment */

static struct test_heap g_heap;

static bool heap_should_fail(struct test_heap *h)
{
    h->calls++;
    return h->fail_at != 0 && h->calls == h->fail_at;
}

static void *heap_malloc(void *data, size_t size)
{
    struct test_heap *h = data;
    if (heap_should_fail(h)) {
        return NULL;
    }
    char *p = malloc(size + HEAP_HDR);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    h->live++;
    h->live_bytes += size;
    h->total_bytes += size;
    return p + HEAP_HDR;
}

static void *heap_calloc(void *data, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = heap_malloc(data, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

static void heap_free(void *data, void *ptr)
{
    struct test_heap *h = data;
    char *p = (char *)ptr - HEAP_HDR;
    size_t size;
    memcpy(&size, p, sizeof(size));
    h->live--;
    h->live_bytes -= size;
    free(p);
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
    struct test_heap *h = data;
    if (ptr == NULL) {
        return heap_malloc(data, size);
    }
    if (heap_should_fail(h)) {
        return NULL;
    }
    char *old = (char *)ptr - HEAP_HDR;
    size_t old_size;
    memcpy(&old_size, old, sizeof(old_size));
    char *p = realloc(old, size + HEAP_HDR);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    h->live_bytes = h->live_bytes - old_size + size;
    h->total_bytes += size;
    return p + HEAP_HDR;
}

static const struct rk_allocator g_heap_alloc = {
    .data = &g_heap,
    .malloc_fn = heap_malloc,
    .calloc_fn = heap_calloc,
    .realloc_fn = heap_realloc,
    .free_fn = heap_free,
};

static void heap_install(long fail_at)
{
    memset(&g_heap, 0, sizeof(g_heap));
    g_heap.fail_at = fail_at;
    rk_set_allocator(&g_heap_alloc);
}

static void heap_uninstall(void)
{
    rk_set_allocator(NULL);
}

/* ---- request parser helpers -------------------------------------------- */

/* Appends a readable form of cmd: args joined by '|', then '\n'; bytes
 * outside printable ASCII and '|' '\\' as \xHH; an inline command starts
 * with "i:". */
static void render_cmd(struct rk_buf *out, const struct resp_cmd *cmd)
{
    if (cmd->is_inline) {
        rk_buf_append_str(out, "i:");
    }
    for (size_t i = 0; i < cmd->argc; i++) {
        if (i > 0) {
            rk_buf_append(out, "|", 1);
        }
        for (size_t k = 0; k < cmd->argv[i].len; k++) {
            unsigned char c = (unsigned char)cmd->argv[i].ptr[k];
            if (c < 0x20 || c > 0x7e || c == '|' || c == '\\') {
                rk_buf_appendf(out, "\\x%02x", c);
            } else {
                rk_buf_append(out, &c, 1);
            }
        }
    }
    rk_buf_append(out, "\n", 1);
}

struct parse_result
{
    int rc;            /* RK_EAGAIN when all input parsed cleanly */
    struct rk_buf out; /* rendered commands */
    char err[128];     /* errmsg on RK_EPROTO */
    size_t left;       /* unconsumed bytes at the end */
};

static void result_init(struct parse_result *r)
{
    memset(r, 0, sizeof(*r));
    rk_buf_init(&r->out);
    rk_buf_append(&r->out, "", 0);
}

static void result_fini(struct parse_result *r)
{
    rk_buf_fini(&r->out);
}

/* Feeds buf until RK_EAGAIN or an error; returns the unconsumed count. */
static size_t feed_loop(struct resp_parser *p,
                        const char *buf,
                        size_t len,
                        struct parse_result *r)
{
    size_t pos = 0;
    for (;;) {
        size_t consumed = 0;
        struct resp_cmd cmd;
        int rc = resp_parser_feed(p, buf + pos, len - pos, &consumed, &cmd);
        if (rc == RK_OK || rc == RK_EAGAIN) {
            assert_true(consumed <= len - pos);
            pos += consumed;
        }
        if (rc == RK_OK) {
            assert_true(cmd.argc >= 1);
            render_cmd(&r->out, &cmd);
            continue;
        }
        r->rc = rc;
        if (rc == RK_EPROTO) {
            snprintf(r->err, sizeof(r->err), "%s", resp_parser_errmsg(p));
        }
        return len - pos;
    }
}

/* The whole input in one buffer. */
static void parse_whole(const struct resp_limits *lim,
                        const char *s,
                        size_t len,
                        struct parse_result *r)
{
    struct resp_parser *p;
    result_init(r);
    assert_int_equal(resp_parser_create(lim, &p), RK_OK);
    char *copy = malloc(len + 1);
    memcpy(copy, s, len);
    r->left = feed_loop(p, copy, len, r);
    free(copy);
    resp_parser_destroy(p);
}

/* One byte at a time, as a socket trickling: the unconsumed bytes move to
 * a fresh allocation before every feed, so a parser that kept a pointer
 * instead of an offset reads freed memory (ASan). */
static void parse_bytewise(const struct resp_limits *lim,
                           const char *s,
                           size_t len,
                           struct parse_result *r)
{
    struct resp_parser *p;
    result_init(r);
    assert_int_equal(resp_parser_create(lim, &p), RK_OK);
    char *q = NULL;
    size_t qlen = 0;
    r->rc = RK_EAGAIN;
    for (size_t i = 0; i < len && r->rc == RK_EAGAIN; i++) {
        char *nq = malloc(qlen + 1);
        if (qlen > 0) {
            memcpy(nq, q, qlen);
        }
        nq[qlen++] = s[i];
        free(q);
        q = nq;
        size_t left = feed_loop(p, q, qlen, r);
        memmove(q, q + qlen - left, left);
        qlen = left;
    }
    r->left = qlen;
    free(q);
    resp_parser_destroy(p);
}

/* Two feeds: s[0..k), then the rest appended to what is left. */
static void parse_two_chunks(const struct resp_limits *lim,
                             const char *s,
                             size_t len,
                             size_t k,
                             struct parse_result *r)
{
    struct resp_parser *p;
    result_init(r);
    assert_int_equal(resp_parser_create(lim, &p), RK_OK);
    char *a = malloc(k + 1);
    memcpy(a, s, k);
    size_t left = feed_loop(p, a, k, r);
    if (r->rc == RK_EAGAIN) {
        char *b = malloc(left + (len - k) + 1);
        memcpy(b, a + k - left, left);
        memcpy(b + left, s + k, len - k);
        free(a);
        a = b;
        left = feed_loop(p, b, left + len - k, r);
    }
    r->left = left;
    free(a);
    resp_parser_destroy(p);
}

#define S(lit) lit, sizeof(lit) - 1

/* Parses s in one buffer and asserts the rendering and a clean end. */
static void expect_cmds(const char *s, size_t len, const char *rendered)
{
    struct parse_result r;
    parse_whole(NULL, s, len, &r);
    assert_int_equal(r.rc, RK_EAGAIN);
    assert_string_equal(r.out.base, rendered);
    assert_int_equal(r.left, 0);
    result_fini(&r);
}

static void expect_error(const struct resp_limits *lim,
                         const char *s,
                         size_t len,
                         const char *msg)
{
    struct parse_result r;
    parse_whole(lim, s, len, &r);
    if (r.rc != RK_EPROTO) {
        fail_msg("input \"%.*s\": rc %s, wanted RK_EPROTO", (int)len, s,
                 rk_errname(r.rc));
    }
    assert_string_equal(r.err, msg);
    result_fini(&r);
    /* The same error when the frame trickles in byte by byte. */
    parse_bytewise(lim, s, len, &r);
    assert_int_equal(r.rc, RK_EPROTO);
    assert_string_equal(r.err, msg);
    result_fini(&r);
}

/* ---- request parser: frame types ---------------------------------------- */

static void test_resp_parser_parses_multibulk_command(void **state)
{
    (void)state;
    expect_cmds(S("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
                "SET|key|value\n");
    expect_cmds(S("*1\r\n$4\r\nPING\r\n"), "PING\n");
}

static void test_resp_parser_bulk_is_binary_safe(void **state)
{
    (void)state;
    expect_cmds(S("*2\r\n$4\r\nECHO\r\n$6\r\na\0\r\n|b\r\n"),
                "ECHO|a\\x00\\x0d\\x0a\\x7cb\n");
    char frame[300];
    size_t n = (size_t)snprintf(frame, sizeof(frame), "*1\r\n$256\r\n");
    for (int i = 0; i < 256; i++) {
        frame[n++] = (char)i;
    }
    frame[n++] = '\r';
    frame[n++] = '\n';
    struct parse_result r;
    parse_whole(NULL, frame, n, &r);
    assert_int_equal(r.rc, RK_EAGAIN);
    assert_int_equal(r.left, 0);
    /* 93 printable bytes as themselves, '|' '\\' and 161 others as \xHH,
     * then the newline */
    assert_int_equal(r.out.len, 93 + 4 * 2 + 4 * 161 + 1);
    result_fini(&r);
}

static void test_resp_parser_parses_empty_bulk(void **state)
{
    (void)state;
    expect_cmds(S("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n"), "SET||\n");
}

static void test_resp_parser_argv_points_into_the_buffer(void **state)
{
    (void)state;
    static const char in[] = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    struct resp_parser *p;
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    size_t consumed = 0;
    struct resp_cmd cmd;
    assert_int_equal(resp_parser_feed(p, in, sizeof(in) - 1, &consumed, &cmd),
                     RK_OK);
    assert_int_equal(consumed, sizeof(in) - 1);
    assert_int_equal(cmd.argc, 2);
    assert_false(cmd.is_inline);
    assert_ptr_equal(cmd.argv[0].ptr, in + 8);
    assert_ptr_equal(cmd.argv[1].ptr, in + 17);
    resp_parser_destroy(p);
}

static void test_resp_parser_parses_pipelined_frames(void **state)
{
    (void)state;
    expect_cmds(S("*1\r\n$4\r\nPING\r\n"
                  "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                  "PING\r\n"
                  "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\nxy\r\n"
                  "ECHO hi\n"),
                "PING\nGET|a\ni:PING\nSET|b|xy\ni:ECHO|hi\n");
    /* 1,000 commands in one buffer, as a client pipelining. */
    struct rk_buf in, want;
    rk_buf_init(&in);
    rk_buf_init(&want);
    for (int i = 0; i < 1000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "k%d", i);
        const char *argv[] = {"INCR", k};
        size_t lens[] = {4, (size_t)n};
        assert_int_equal(resp_w_command(&in, 2, argv, lens), RK_OK);
        rk_buf_appendf(&want, "INCR|%s\n", k);
    }
    expect_cmds(in.base, in.len, want.base);
    rk_buf_fini(&in);
    rk_buf_fini(&want);
}

static void test_resp_parser_skips_empty_frames(void **state)
{
    (void)state;
    expect_cmds(S("*0\r\n*-1\r\n*-10\r\n\r\n\n   \r\n\t\n*1\r\n$1\r\nA\r\n*0\r\n"),
                "A\n");
    /* RK_EAGAIN reports the skipped bytes, so the caller can drop them. */
    struct resp_parser *p;
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    size_t consumed = 99;
    struct resp_cmd cmd;
    assert_int_equal(
        resp_parser_feed(p, S("*0\r\n\r\n*2\r\n$3"), &consumed, &cmd),
        RK_EAGAIN);
    assert_int_equal(consumed, 6);
    resp_parser_destroy(p);
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    assert_int_equal(resp_parser_feed(p, S("*0\r\n"), &consumed, &cmd),
                     RK_EAGAIN);
    assert_int_equal(consumed, 4);
    assert_int_equal(resp_parser_feed(p, S(""), &consumed, &cmd), RK_EAGAIN);
    assert_int_equal(consumed, 0);
    resp_parser_destroy(p);
}

static void test_resp_parser_parses_inline_commands(void **state)
{
    (void)state;
    expect_cmds(S("PING\r\n"), "i:PING\n");
    expect_cmds(S("SET k v\r\n"), "i:SET|k|v\n");
    expect_cmds(S("  SET\t k \t v  \r\n"), "i:SET|k|v\n");
    expect_cmds(S("GET a\0b\r\n"), "i:GET|a\\x00b\n");
    /* "*" only starts a multibulk at the first byte of a frame */
    expect_cmds(S(" *1\r\n"), "i:*1\n");
}

static void test_resp_parser_accepts_lone_lf_inline(void **state)
{
    (void)state;
    expect_cmds(S("PING\nECHO x\n\n"), "i:PING\ni:ECHO|x\n");
    /* A CR in mid-line is whitespace, and only one CR before LF is cut. */
    expect_cmds(S("ECHO a\rb\r\r\n"), "i:ECHO|a|b\n");
}

struct quote_case
{
    const char *in;
    const char *want;
};

static void test_resp_parser_splits_inline_quotes_like_redis_cli(void **state)
{
    (void)state;
    static const struct quote_case cases[] = {
        {"set \"a b\" c\r\n", "i:set|a b|c\n"},
        {"set \"\\x41\\x4a\\x7c\" x\r\n", "i:set|AJ\\x7c|x\n"},
        {"set \"\\xZZ\"\r\n", "i:set|xZZ\n"},
        {"set \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n",
         "i:set|\\x0a\\x0d\\x09\\x08\\x07\\x5c\"q\n"},
        {"set 'it\\'s' \"q'q\" 'd\"d'\r\n", "i:set|it's|q'q|d\"d\n"},
        {"set 'a\\nb'\r\n", "i:set|a\\x5cnb\n"},
        {"set \"\" ''\r\n", "i:set||\n"},
        {"set a\"b c\" d\r\n", "i:set|ab c|d\n"},
        {"set a'b c' d\r\n", "i:set|ab c|d\n"},
        {"set \"a\"\r\n", "i:set|a\n"},
        {"set \"x\\x00y\"\r\n", "i:set|x\\x00y\n"},
        {"set \"\\x4\"\r\n", "i:set|x4\n"},
        {"\v\fset a\vb\f\r\n", "i:set|a\\x0bb\\x0c\n"},
        {"set \"a\"\v\r\n", "i:set|a\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_cmds(cases[i].in, strlen(cases[i].in), cases[i].want);
    }
}

static void test_resp_parser_rejects_unbalanced_quotes(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "set \"abc\r\n",  "set 'abc\r\n",  "set \"a\"b\r\n", "set 'a'b\r\n",
        "get \"\\\"\r\n", "get 'x\\'\r\n", "\"\r\n",         "a\"\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_error(NULL, bad[i], strlen(bad[i]),
                     "Protocol error: unbalanced quotes in request");
    }
}

/* ---- request parser: every split point ---------------------------------- */

static const char *const SPLIT_INPUTS[] = {
    "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
    "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
    "*0\r\n*-1\r\n*1\r\n$0\r\n\r\n",
    "PING\r\nSET \"a b\" 'c d'\r\n\n  \r\nECHO x\n",
    "*2\r\n$4\r\nECHO\r\n$12\r\nab\r\ncd\r\n\r\n\r\n\r\nPING\r\n",
    "*12\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n$1\r\nf\r\n"
    "$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n$1\r\nj\r\n$1\r\nk\r\n$10\r\n0123456789"
    "\r\n",
};

static void check_splits(const struct resp_limits *lim,
                         const char *s,
                         size_t len)
{
    struct parse_result whole, r;
    parse_whole(lim, s, len, &whole);
    parse_bytewise(lim, s, len, &r);
    assert_int_equal(r.rc, whole.rc);
    assert_string_equal(r.out.base, whole.out.base);
    assert_string_equal(r.err, whole.err);
    if (whole.rc == RK_EAGAIN) {
        assert_int_equal(r.left, whole.left); /* the incomplete tail */
    }
    result_fini(&r);
    for (size_t k = 0; k <= len; k++) {
        parse_two_chunks(lim, s, len, k, &r);
        assert_int_equal(r.rc, whole.rc);
        assert_string_equal(r.out.base, whole.out.base);
        assert_string_equal(r.err, whole.err);
        result_fini(&r);
    }
    result_fini(&whole);
}

static void test_resp_parser_gives_same_commands_at_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(SPLIT_INPUTS) / sizeof(SPLIT_INPUTS[0]);
         i++) {
        check_splits(NULL, SPLIT_INPUTS[i], strlen(SPLIT_INPUTS[i]));
    }
}

static void test_resp_parser_keeps_offsets_when_buffer_moves(void **state)
{
    (void)state;
    static const char in[] = "*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
    size_t len = sizeof(in) - 1;
    struct resp_parser *p;
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    char *a = malloc(len);
    memcpy(a, in, 20);
    size_t consumed = 1;
    struct resp_cmd cmd;
    assert_int_equal(resp_parser_feed(p, a, 20, &consumed, &cmd), RK_EAGAIN);
    assert_int_equal(consumed, 0);
    assert_int_equal(resp_parser_need(p), len);
    char *b = malloc(len);
    memcpy(b, in, len);
    memset(a, 'X', 20);
    free(a);
    assert_int_equal(resp_parser_feed(p, b, len, &consumed, &cmd), RK_OK);
    assert_int_equal(consumed, len);
    assert_int_equal(cmd.argc, 2);
    assert_memory_equal(cmd.argv[1].ptr, "hello", 5);
    assert_ptr_equal(cmd.argv[1].ptr, b + 17);
    free(b);
    resp_parser_destroy(p);
}

/* ---- request parser: malformed frames ------------------------------------ */

struct bad_case
{
    const char *in;
    size_t len; /* 0 = strlen */
    const char *msg;
};

#define MB  "Protocol error: invalid multibulk length"
#define BL  "Protocol error: invalid bulk length"
#define UQ  "Protocol error: unbalanced quotes in request"
#define CR  "Protocol error: expected CRLF after bulk data"
#define EXP "Protocol error: expected '$', got "

static const struct bad_case BAD_REQUESTS[] = {
    {"*abc\r\n", 0, MB},
    {"*1x\r\n", 0, MB},
    {"*+1\r\n", 0, MB},
    {"*01\r\n", 0, MB},
    {"*-0\r\n", 0, MB},
    {"*\r\n", 0, MB},
    {"* 1\r\n", 0, MB},
    {"*1 \r\n", 0, MB},
    {"*99999999999999999999\r\n", 0, MB},
    {"*9223372036854775808\r\n", 0, MB},
    {"*1048577\r\n", 0, MB},
    {"*1\rx", 0, MB},
    {"*1\r\n$-1\r\n", 0, BL},
    {"*1\r\n$-5\r\n", 0, BL},
    {"*1\r\n$abc\r\n", 0, BL},
    {"*1\r\n$\r\n", 0, BL},
    {"*1\r\n$+3\r\nabc\r\n", 0, BL},
    {"*1\r\n$03\r\nabc\r\n", 0, BL},
    {"*1\r\n$1 \r\na\r\n", 0, BL},
    {"*1\r\n$99999999999999999999\r\n", 0, BL},
    {"*1\r\n$536870913\r\n", 0, BL},
    {"*1\r\n$3\rxabc", 0, BL},
    {"*2\r\n$1\r\na\r\n$-5\r\n", 0, BL},
    {"*1\r\n:1\r\n", 0, EXP "':'"},
    {"*2\r\n$1\r\na\r\n+b\r\n", 0, EXP "'+'"},
    {"*1\r\nfoo\r\n", 0, EXP "'f'"},
    {"*1\r\n\r\n", 0, EXP "'?'"},
    {"*1\r\n\x01", 0, EXP "'?'"},
    {"*1\r\n$3\r\nabcd\r\n", 0, CR},
    {"*1\r\n$3\r\nabc\n\n", 0, CR},
    {"*1\r\n$3\r\nabc\r\r", 0, CR},
    {"*1\r\n$0\r\nxx", 0, CR},
    {"set \"abc\r\n", 0, UQ},
    {"set 'a'b\r\n", 0, UQ},
};

static void test_resp_parser_rejects_malformed_frames(void **state)
{
    (void)state;
    size_t n = sizeof(BAD_REQUESTS) / sizeof(BAD_REQUESTS[0]);
    assert_true(n >= 30);
    for (size_t i = 0; i < n; i++) {
        const struct bad_case *c = &BAD_REQUESTS[i];
        size_t len = c->len ? c->len : strlen(c->in);
        expect_error(NULL, c->in, len, c->msg);
        /* Also after a good command in the same buffer. */
        char buf[128];
        size_t m = (size_t)snprintf(buf, sizeof(buf), "PING\r\n");
        memcpy(buf + m, c->in, len);
        struct parse_result r;
        parse_whole(NULL, buf, m + len, &r);
        assert_int_equal(r.rc, RK_EPROTO);
        assert_string_equal(r.out.base, "i:PING\n");
        result_fini(&r);
    }
}

static void test_resp_parser_rejects_negative_bulk_len(void **state)
{
    (void)state;
    expect_error(NULL, S("*2\r\n$3\r\nGET\r\n$-1\r\n"), BL);
}

static void test_resp_parser_rejects_too_big_count_strings(void **state)
{
    (void)state;
    size_t n = RESP_DEFAULT_MAX_INLINE + 10;
    char *s = malloc(n + 16);
    /* No CR within the inline limit after '*' or '$'. */
    s[0] = '*';
    memset(s + 1, '1', n - 1);
    struct parse_result r;
    parse_whole(NULL, s, n, &r);
    assert_int_equal(r.rc, RK_EPROTO);
    assert_string_equal(r.err, "Protocol error: too big mbulk count string");
    result_fini(&r);
    memcpy(s, "*1\r\n$", 5);
    parse_whole(NULL, s, n, &r);
    assert_int_equal(r.rc, RK_EPROTO);
    assert_string_equal(r.err, "Protocol error: too big bulk count string");
    result_fini(&r);
    free(s);
}

static void test_resp_parser_rejects_too_big_inline_request(void **state)
{
    (void)state;
    size_t max = RESP_DEFAULT_MAX_INLINE;
    char *s = malloc(max + 16);
    memset(s, 'a', max + 16);
    /* exactly max bytes before CRLF: fine */
    memcpy(s + max, "\r\n", 2);
    struct parse_result r;
    parse_whole(NULL, s, max + 2, &r);
    assert_int_equal(r.rc, RK_EAGAIN);
    assert_int_equal(r.out.len, 2 + max + 1);
    result_fini(&r);
    /* one more, with CRLF, LF only, or no line end yet */
    memset(s, 'a', max + 16);
    memcpy(s + max + 1, "\r\n", 2);
    expect_error(NULL, s, max + 3, "Protocol error: too big inline request");
    s[max + 1] = '\n';
    expect_error(NULL, s, max + 2, "Protocol error: too big inline request");
    memset(s, 'a', max + 16);
    expect_error(NULL, s, max + 16, "Protocol error: too big inline request");
    free(s);
}

static void test_resp_parser_error_is_sticky(void **state)
{
    (void)state;
    struct resp_parser *p;
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    size_t consumed = 0;
    struct resp_cmd cmd;
    assert_int_equal(resp_parser_feed(p, S("*x\r\n"), &consumed, &cmd),
                     RK_EPROTO);
    assert_int_equal(resp_parser_feed(p, S("PING\r\n"), &consumed, &cmd),
                     RK_EPROTO);
    assert_string_equal(resp_parser_errmsg(p), MB);
    resp_parser_destroy(p);
    resp_parser_destroy(NULL);
}

/* ---- request parser: limits -----------------------------------------------
 */

#define UM "Protocol error: unauthenticated multibulk length"
#define UB "Protocol error: unauthenticated bulk length"

/* A server's limits before AUTH (TESTING.md B6, Redis 7 texts). */
static const struct resp_limits PREAUTH = {
    .max_bulk = 16384,
    .max_args = 10,
    .max_inline = RESP_DEFAULT_MAX_INLINE,
    .unauthenticated = true,
};

static void build_command(struct rk_buf *b, size_t argc, size_t arg_len)
{
    char *arg = malloc(arg_len + 1);
    memset(arg, 'v', arg_len);
    assert_int_equal(resp_w_array(b, argc), RK_OK);
    for (size_t i = 0; i < argc; i++) {
        assert_int_equal(resp_w_bulk(b, arg, arg_len), RK_OK);
    }
    free(arg);
}

/* A default parser tightened with resp_parser_set_limits, as a server
 * does before AUTH, then fed `s`: RK_EPROTO with `msg`. */
static void expect_error_after_set_limits(const char *s,
                                          size_t len,
                                          const char *msg)
{
    struct resp_parser *p;
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    resp_parser_set_limits(p, &PREAUTH);
    size_t consumed;
    struct resp_cmd cmd;
    assert_int_equal(resp_parser_feed(p, s, len, &consumed, &cmd), RK_EPROTO);
    assert_string_equal(resp_parser_errmsg(p), msg);
    resp_parser_destroy(p);
}

static void test_resp_parser_preauth_limits_reject_11_args(void **state)
{
    (void)state;
    struct rk_buf b;
    rk_buf_init(&b);
    build_command(&b, 10, 1);
    struct parse_result r;
    parse_whole(&PREAUTH, b.base, b.len, &r);
    assert_int_equal(r.rc, RK_EAGAIN);
    assert_int_equal(r.left, 0);
    result_fini(&r);
    rk_buf_clear(&b);
    build_command(&b, 11, 1);
    expect_error(&PREAUTH, b.base, b.len, UM);
    /* Rejected from the header alone, before any argument arrives. */
    expect_error(&PREAUTH, S("*11\r\n"), UM);
    expect_error_after_set_limits(S("*11\r\n"), UM);
    expect_error_after_set_limits(b.base, b.len, UM);
    /* An inline command is held to the same count. */
    expect_error(&PREAUTH, S("a b c d e f g h i j k\r\n"), UM);
    /* Over the defaults too: "invalid", as Redis checks that first. */
    expect_error(&PREAUTH, S("*1048577\r\n"), MB);
    expect_error(&PREAUTH, S("*1\r\n$536870913\r\n"), BL);
    /* The same tight limits without the flag: the plain texts. */
    struct resp_limits plain = PREAUTH;
    plain.unauthenticated = false;
    expect_error(&plain, S("*11\r\n"), MB);
    expect_error(&plain, S("*1\r\n$16385\r\n"), BL);
    rk_buf_fini(&b);
}

static void test_resp_parser_preauth_limits_reject_16k_plus_1_bulk(void **state)
{
    (void)state;
    struct rk_buf b;
    rk_buf_init(&b);
    build_command(&b, 2, 16384);
    struct parse_result r;
    parse_whole(&PREAUTH, b.base, b.len, &r);
    assert_int_equal(r.rc, RK_EAGAIN);
    assert_int_equal(r.left, 0);
    result_fini(&r);
    rk_buf_clear(&b);
    build_command(&b, 2, 16385);
    expect_error(&PREAUTH, b.base, b.len, UB);
    expect_error(&PREAUTH, S("*1\r\n$16385\r\n"), UB);
    expect_error_after_set_limits(S("*1\r\n$16385\r\n"), UB);
    expect_error_after_set_limits(b.base, b.len, UB);
    /* An inline argument too. */
    rk_buf_clear(&b);
    rk_buf_append_str(&b, "SET ");
    for (int i = 0; i < 16385; i++) {
        rk_buf_append(&b, "x", 1);
    }
    rk_buf_append_str(&b, "\r\n");
    expect_error(&PREAUTH, b.base, b.len, UB);
    rk_buf_fini(&b);
}

static void test_resp_parser_set_limits_applies_to_next_frame(void **state)
{
    (void)state;
    struct resp_parser *p;
    assert_int_equal(resp_parser_create(&PREAUTH, &p), RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    build_command(&b, 12, 3);
    size_t consumed;
    struct resp_cmd cmd;
    assert_int_equal(resp_parser_feed(p, b.base, b.len, &consumed, &cmd),
                     RK_EPROTO);
    resp_parser_destroy(p);
    /* After AUTH: relax the limits on a live parser; then tighten. */
    assert_int_equal(resp_parser_create(&PREAUTH, &p), RK_OK);
    resp_parser_set_limits(p, NULL);
    assert_int_equal(resp_parser_feed(p, b.base, b.len, &consumed, &cmd),
                     RK_OK);
    assert_int_equal(cmd.argc, 12);
    resp_parser_set_limits(p, &PREAUTH);
    assert_int_equal(resp_parser_feed(p, b.base, b.len, &consumed, &cmd),
                     RK_EPROTO);
    assert_string_equal(resp_parser_errmsg(p), UM);
    rk_buf_fini(&b);
    resp_parser_destroy(p);
}

static void test_resp_parser_enforces_custom_limits(void **state)
{
    (void)state;
    struct resp_limits lim = {.max_bulk = 5, .max_args = 3, .max_inline = 8};
    expect_error(&lim, S("*4\r\n"), MB);
    expect_error(&lim, S("*1\r\n$6\r\n"), BL);
    expect_error(&lim, S("abcdefghi\r\n"),
                 "Protocol error: too big inline request");
    expect_error(&lim, S("abcdef\r\n"), BL);
    expect_error(&lim, S("*1\r\n$123456789"),
                 "Protocol error: too big bulk count string");
    struct parse_result r;
    parse_whole(&lim, S("abc de\r\n*3\r\n$5\r\nabcde\r\n$0\r\n\r\n$1\r\nx\r\n"),
                &r);
    assert_int_equal(r.rc, RK_EAGAIN);
    assert_string_equal(r.out.base, "i:abc|de\nabcde||x\n");
    result_fini(&r);
    check_splits(&lim, S("a b c\r\n*3\r\n$5\r\nabcde\r\n$0\r\n\r\n$1\r\n"));
    /* Header lines are held to max_inline whether complete or not. */
    struct resp_limits tiny = {
        .max_bulk = 100, .max_args = 100, .max_inline = 1};
    check_splits(&tiny, S("*1\r\n$1\r\na\r\n*2\r\n$10\r\n"));
}

static void test_resp_parser_declared_huge_counts_allocate_nothing(void **state)
{
    (void)state;
    struct resp_parser *p;
    heap_install(0);
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    size_t created = g_heap.total_bytes;
    size_t consumed;
    struct resp_cmd cmd;
    assert_int_equal(resp_parser_feed(p, S("*1048576\r\n"), &consumed, &cmd),
                     RK_EAGAIN);
    assert_int_equal(
        resp_parser_feed(p, S("*1048576\r\n$536870912\r\n"), &consumed, &cmd),
        RK_EAGAIN);
    assert_int_equal(resp_parser_need(p), 22 + 536870912ull + 2);
    assert_int_equal(g_heap.total_bytes, created);
    resp_parser_destroy(p);
    assert_int_equal(g_heap.live, 0);
    heap_uninstall();

    /* *1048576 then 1,000 arguments: argv grows with what arrived. */
    struct rk_buf b;
    rk_buf_init(&b);
    rk_buf_append_str(&b, "*1048576\r\n");
    for (int i = 0; i < 1000; i++) {
        resp_w_bulk(&b, "x", 1);
    }
    heap_install(0);
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    assert_int_equal(resp_parser_feed(p, b.base, b.len, &consumed, &cmd),
                     RK_EAGAIN);
    assert_true(g_heap.live_bytes < 2 * 1000 * (sizeof(struct resp_arg) + 8));
    resp_parser_destroy(p);
    heap_uninstall();
    rk_buf_fini(&b);

    /* The reply parser: a declared count or length with no data. */
    heap_install(0);
    size_t need = 0;
    struct resp_value *v;
    assert_int_equal(resp_reply_parse(S("*1048576\r\n"), 64, UINT64_MAX,
                                      &consumed, &need, &v),
                     RK_EAGAIN);
    assert_int_equal(resp_reply_parse(S("$536870912\r\n"), 64, UINT64_MAX,
                                      &consumed, &need, &v),
                     RK_EAGAIN);
    assert_int_equal(need, 12 + 536870912ull + 2);
    assert_int_equal(g_heap.calls, 0);
    heap_uninstall();
}

static void test_resp_parser_large_bulk_in_pieces_is_linear(void **state)
{
    (void)state;
    const size_t big = 64u << 20;
    const size_t piece = 16u << 10;
    char hdr[64];
    size_t hlen =
        (size_t)snprintf(hdr, sizeof(hdr), "*2\r\n$3\r\nSET\r\n$%zu\r\n", big);
    size_t total = hlen + big + 2;
    struct resp_parser *p;
    assert_int_equal(resp_parser_create(NULL, &p), RK_OK);
    struct rk_buf q;
    rk_buf_init(&q);
    clock_t t0 = clock();
    size_t sent = 0;
    size_t feeds = 0;
    int rc = RK_EAGAIN;
    while (sent < total) {
        size_t n = total - sent < piece ? total - sent : piece;
        assert_int_equal(rk_buf_reserve(&q, n), RK_OK);
        /* header bytes, then 'v' * big, then CRLF */
        for (size_t i = 0; i < n; i++) {
            size_t at = sent + i;
            q.base[q.len + i] = at < hlen          ? hdr[at]
                                : at < hlen + big  ? 'v'
                                : at == hlen + big ? '\r'
                                                   : '\n';
        }
        q.len += n;
        sent += n;
        size_t consumed = 0;
        struct resp_cmd cmd;
        rc = resp_parser_feed(p, q.base, q.len, &consumed, &cmd);
        feeds++;
        if (rc == RK_EAGAIN) {
            size_t need = resp_parser_need(p);
            if (need > q.len) {
                assert_int_equal(need, total);
                assert_int_equal(rk_buf_reserve(&q, need - q.len), RK_OK);
            }
            continue;
        }
        assert_int_equal(rc, RK_OK);
        assert_int_equal(consumed, total);
        assert_int_equal(cmd.argv[1].len, big);
    }
    assert_int_equal(rc, RK_OK);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    /* 4,097 feeds; a parser rescanning its buffer would touch ~128 GB. */
    assert_true(feeds > 4000);
    assert_true(secs < 10.0);
    rk_buf_fini(&q);
    resp_parser_destroy(p);
}

/* Failing the Nth allocation (N = 1, 2, ...) in create and feed: RK_ENOMEM,
 * no leak, no crash; and after an RK_ENOMEM from feed the same bytes fed
 * again (allocations working) give the same commands (resp.h). */
static void test_resp_parser_survives_allocation_failures(void **state)
{
    (void)state;
    struct rk_buf in;
    rk_buf_init(&in);
    build_command(&in, 40, 2);
    rk_buf_append_str(&in,
                      "SET \"a b\" 'c' d e f g h i j k l m n o p q r s\r\n");
    build_command(&in, 3000, 0);
    rk_buf_append_str(&in, "PING\r\n");
    struct parse_result want;
    parse_whole(NULL, in.base, in.len, &want);
    assert_int_equal(want.rc, RK_EAGAIN);

    bool failed_in_feed = false;
    long n;
    for (n = 1; n < 10000; n++) {
        heap_install(n);
        struct resp_parser *p = NULL;
        int rc = resp_parser_create(NULL, &p);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_ENOMEM);
            assert_int_equal(g_heap.live, 0);
            heap_uninstall();
            continue;
        }
        struct rk_buf out;
        rk_buf_init(&out);
        size_t pos = 0;
        bool saw_enomem = false;
        for (;;) {
            size_t consumed = 0;
            struct resp_cmd cmd;
            rc = resp_parser_feed(p, in.base + pos, in.len - pos, &consumed,
                                  &cmd);
            if (rc == RK_ENOMEM) {
                saw_enomem = true;
                g_heap.fail_at = 0; /* retry with working allocations */
                pos += consumed;
                continue;
            }
            if (rc != RK_OK) {
                break;
            }
            pos += consumed;
            rk_set_allocator(NULL); /* the test's own buffer */
            render_cmd(&out, &cmd);
            rk_set_allocator(&g_heap_alloc);
        }
        assert_int_equal(rc, RK_EAGAIN);
        assert_int_equal(pos, in.len);
        assert_string_equal(out.base, want.out.base);
        resp_parser_destroy(p);
        assert_int_equal(g_heap.live, 0);
        heap_uninstall();
        rk_buf_fini(&out);
        failed_in_feed |= saw_enomem;
        if (!saw_enomem && g_heap.calls < n) {
            break; /* ran clean: nothing left to fail */
        }
    }
    assert_true(failed_in_feed);
    assert_true(n > 3);
    result_fini(&want);
    rk_buf_fini(&in);
}

/* ---- reply writer -------------------------------------------------------- */

#define EXPECT_W(call, want)                                  \
    do {                                                      \
        struct rk_buf b_;                                     \
        rk_buf_init(&b_);                                     \
        struct rk_buf *b = &b_;                               \
        assert_int_equal((call), RK_OK);                      \
        assert_int_equal(b_.len, sizeof(want) - 1);           \
        assert_memory_equal(b_.base, want, sizeof(want) - 1); \
        rk_buf_fini(&b_);                                     \
    } while (0)

static void test_resp_writer_simple_and_error_replace_crlf(void **state)
{
    (void)state;
    EXPECT_W(resp_w_simple(b, "OK"), "+OK\r\n");
    EXPECT_W(resp_w_simple(b, ""), "+\r\n");
    EXPECT_W(resp_w_simple(b, "a\r\nb\nc"), "+a  b c\r\n");
    EXPECT_W(resp_w_error(b, "ERR unknown command 'x'"),
             "-ERR unknown command 'x'\r\n");
    EXPECT_W(resp_w_error(b, "WRONGTYPE x\r\ny"), "-WRONGTYPE x  y\r\n");
    EXPECT_W(resp_w_errorf(b, "ERR %s %d", "bad\r\n", 7), "-ERR bad   7\r\n");
    char long_arg[600];
    memset(long_arg, 'z', sizeof(long_arg) - 1);
    long_arg[sizeof(long_arg) - 1] = '\0';
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(resp_w_errorf(&b, "ERR %s", long_arg), RK_OK);
    assert_int_equal(b.len, 1 + 4 + 599 + 2);
    assert_memory_equal(b.base + b.len - 3, "z\r\n", 3);
    rk_buf_fini(&b);
}

static void test_resp_writer_formats_integers(void **state)
{
    (void)state;
    EXPECT_W(resp_w_int(b, 0), ":0\r\n");
    EXPECT_W(resp_w_int(b, -1), ":-1\r\n");
    EXPECT_W(resp_w_int(b, INT64_MAX), ":9223372036854775807\r\n");
    EXPECT_W(resp_w_int(b, INT64_MIN), ":-9223372036854775808\r\n");
    /* Every digit count and both signs against printf. */
    int64_t v = 1;
    for (int i = 0; i < 19; i++, v = i < 19 ? v * 10 : v) {
        int64_t cases[] = {v, v - 1, v + 1, -v, -v + 1, v * 9 / 10 * 10 + 7};
        for (size_t k = 0; k < 6; k++) {
            char want[32];
            int n =
                snprintf(want, sizeof(want), ":%lld\r\n", (long long)cases[k]);
            struct rk_buf b;
            rk_buf_init(&b);
            assert_int_equal(resp_w_int(&b, cases[k]), RK_OK);
            assert_int_equal(b.len, (size_t)n);
            assert_memory_equal(b.base, want, (size_t)n);
            rk_buf_fini(&b);
        }
    }
}

static void test_resp_writer_formats_bulk_strings(void **state)
{
    (void)state;
    EXPECT_W(resp_w_bulk(b, "a\0\r\nb", 5), "$5\r\na\0\r\nb\r\n");
    EXPECT_W(resp_w_bulk(b, NULL, 0), "$0\r\n\r\n");
    EXPECT_W(resp_w_bulk_str(b, "hello"), "$5\r\nhello\r\n");
    EXPECT_W(resp_w_bulk_str(b, ""), "$0\r\n\r\n");
}

static void test_resp_writer_formats_nulls_in_resp2_and_resp3(void **state)
{
    (void)state;
    EXPECT_W(resp_w_null(b, 2), "$-1\r\n");
    EXPECT_W(resp_w_null(b, 3), "_\r\n");
    EXPECT_W(resp_w_null_array(b, 2), "*-1\r\n");
    EXPECT_W(resp_w_null_array(b, 3), "_\r\n");
}

static void test_resp_writer_formats_aggregates_in_resp2_and_resp3(void **state)
{
    (void)state;
    EXPECT_W(resp_w_array(b, 0), "*0\r\n");
    EXPECT_W(resp_w_array(b, 12345), "*12345\r\n");
    EXPECT_W(resp_w_map(b, 3, 2), "%2\r\n");
    EXPECT_W(resp_w_map(b, 2, 2), "*4\r\n");
    EXPECT_W(resp_w_set(b, 3, 3), "~3\r\n");
    EXPECT_W(resp_w_set(b, 2, 3), "*3\r\n");
}

static void test_resp_writer_formats_doubles_like_redis(void **state)
{
    (void)state;
    EXPECT_W(resp_w_double(b, 3, 1.5), ",1.5\r\n");
    EXPECT_W(resp_w_double(b, 3, 0.1), ",0.10000000000000001\r\n");
    EXPECT_W(resp_w_double(b, 3, -3.0), ",-3\r\n");
    EXPECT_W(resp_w_double(b, 3, 1e300), ",1.0000000000000001e+300\r\n");
    EXPECT_W(resp_w_double(b, 3, INFINITY), ",inf\r\n");
    EXPECT_W(resp_w_double(b, 3, -INFINITY), ",-inf\r\n");
    EXPECT_W(resp_w_double(b, 3, NAN), ",nan\r\n");
    EXPECT_W(resp_w_double(b, 2, 1.5), "$3\r\n1.5\r\n");
    EXPECT_W(resp_w_double(b, 2, 0.1), "$19\r\n0.10000000000000001\r\n");
    EXPECT_W(resp_w_double(b, 2, INFINITY), "$3\r\ninf\r\n");
    EXPECT_W(resp_w_double(b, 2, -INFINITY), "$4\r\n-inf\r\n");
    EXPECT_W(resp_w_double(b, 2, NAN), "$3\r\nnan\r\n");
}

static void test_resp_writer_formats_bool_and_verbatim(void **state)
{
    (void)state;
    EXPECT_W(resp_w_bool(b, 3, true), "#t\r\n");
    EXPECT_W(resp_w_bool(b, 3, false), "#f\r\n");
    EXPECT_W(resp_w_bool(b, 2, true), ":1\r\n");
    EXPECT_W(resp_w_bool(b, 2, false), ":0\r\n");
    EXPECT_W(resp_w_verbatim(b, 3, "txt", "hi\r\n", 4), "=8\r\ntxt:hi\r\n\r\n");
    EXPECT_W(resp_w_verbatim(b, 3, "mkd", "", 0), "=4\r\nmkd:\r\n");
    EXPECT_W(resp_w_verbatim(b, 3, NULL, "x", 1), "=5\r\ntxt:x\r\n");
    EXPECT_W(resp_w_verbatim(b, 2, "txt", "hi", 2), "$2\r\nhi\r\n");
}

static void test_resp_writer_formats_commands(void **state)
{
    (void)state;
    const char *argv[] = {"SET", "k", "a\0b"};
    size_t lens[] = {3, 1, 3};
    EXPECT_W(resp_w_command(b, 3, argv, lens),
             "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n");
    EXPECT_W(resp_w_command(b, 2, argv, NULL),
             "*2\r\n$3\r\nSET\r\n$1\r\nk\r\n");
}

static void test_resp_writer_appends_to_existing_content(void **state)
{
    (void)state;
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(resp_w_array(&b, 2), RK_OK);
    assert_int_equal(resp_w_int(&b, 1), RK_OK);
    assert_int_equal(resp_w_bulk_str(&b, "x"), RK_OK);
    assert_int_equal(b.len, 15);
    assert_memory_equal(b.base, "*2\r\n:1\r\n$1\r\nx\r\n", 15);
    assert_int_equal(b.base[b.len], '\0');
    rk_buf_fini(&b);
}

static int write_every_type(struct rk_buf *b, int proto)
{
    int rc = RK_OK;
    rc = rc ? rc : resp_w_array(b, 14);
    rc = rc ? rc : resp_w_simple(b, "OK");
    rc = rc ? rc : resp_w_error(b, "ERR x");
    rc = rc ? rc : resp_w_errorf(b, "ERR %d", 5);
    rc = rc ? rc : resp_w_int(b, -42);
    rc = rc ? rc : resp_w_bulk(b, "b\0b", 3);
    rc = rc ? rc : resp_w_bulk_str(b, "str");
    rc = rc ? rc : resp_w_null(b, proto);
    rc = rc ? rc : resp_w_null_array(b, proto);
    rc = rc ? rc : resp_w_map(b, proto, 1);
    rc = rc ? rc : resp_w_bulk_str(b, "key");
    rc = rc ? rc : resp_w_set(b, proto, 2);
    rc = rc ? rc : resp_w_int(b, 1);
    rc = rc ? rc : resp_w_int(b, 2);
    rc = rc ? rc : resp_w_double(b, proto, 2.5);
    rc = rc ? rc : resp_w_bool(b, proto, true);
    rc = rc ? rc : resp_w_verbatim(b, proto, "mkd", "# hi", 4);
    const char *argv[] = {"GET", "k"};
    rc = rc ? rc : resp_w_command(b, 2, argv, NULL);
    rc = rc ? rc : resp_w_double(b, proto, -INFINITY);
    return rc;
}

static void test_resp_writer_survives_allocation_failures(void **state)
{
    (void)state;
    long n;
    for (n = 1; n < 1000; n++) {
        heap_install(n);
        struct rk_buf b;
        rk_buf_init(&b);
        int rc = write_every_type(&b, 3);
        rk_buf_fini(&b);
        assert_int_equal(g_heap.live, 0);
        bool done = g_heap.calls < n;
        heap_uninstall();
        if (done) {
            assert_int_equal(rc, RK_OK);
            break;
        }
        assert_int_equal(rc, RK_ENOMEM);
    }
    assert_true(n > 1);
}

/* ---- reply parser ---------------------------------------------------------
 */

static struct resp_value *parse_reply_ok(const char *s, size_t len)
{
    size_t consumed = 0;
    size_t need = 0;
    struct resp_value *v = NULL;
    int rc = resp_reply_parse(s, len, 16, 1u << 20, &consumed, &need, &v);
    if (rc != RK_OK) {
        fail_msg("reply \"%.*s\": %s", (int)len, s, rk_errname(rc));
    }
    assert_int_equal(consumed, len);
    return v;
}

static void test_resp_reply_parses_every_type(void **state)
{
    (void)state;
    struct resp_value *v;

    v = parse_reply_ok(S("+OK\r\n"));
    assert_int_equal(v->type, RESP_SIMPLE);
    assert_string_equal(v->str, "OK");
    assert_int_equal(v->len, 2);
    resp_value_free(v);

    v = parse_reply_ok(S("-ERR bad\r\n"));
    assert_int_equal(v->type, RESP_ERROR);
    assert_string_equal(v->str, "ERR bad");
    resp_value_free(v);

    v = parse_reply_ok(S("!8\r\nERR x\r\ny\r\n"));
    assert_int_equal(v->type, RESP_ERROR);
    assert_int_equal(v->len, 8);
    assert_memory_equal(v->str, "ERR x\r\ny", 9);
    resp_value_free(v);

    v = parse_reply_ok(S(":-9223372036854775808\r\n"));
    assert_int_equal(v->type, RESP_INT);
    assert_true(v->integer == INT64_MIN);
    resp_value_free(v);

    v = parse_reply_ok(S(":+7\r\n"));
    assert_int_equal(v->integer, 7);
    resp_value_free(v);

    v = parse_reply_ok(S("$5\r\na\0\r\nb\r\n"));
    assert_int_equal(v->type, RESP_BULK);
    assert_int_equal(v->len, 5);
    assert_memory_equal(v->str, "a\0\r\nb", 6); /* with the NUL after */
    resp_value_free(v);

    v = parse_reply_ok(S("$0\r\n\r\n"));
    assert_int_equal(v->type, RESP_BULK);
    assert_int_equal(v->len, 0);
    assert_string_equal(v->str, "");
    resp_value_free(v);

    static const char *const nulls[] = {"$-1\r\n", "*-1\r\n", "_\r\n"};
    for (size_t i = 0; i < 3; i++) {
        v = parse_reply_ok(nulls[i], strlen(nulls[i]));
        assert_int_equal(v->type, RESP_NULL);
        resp_value_free(v);
    }

    v = parse_reply_ok(S("*3\r\n:1\r\n$1\r\na\r\n*0\r\n"));
    assert_int_equal(v->type, RESP_ARRAY);
    assert_int_equal(v->n, 3);
    assert_int_equal(v->elems[0].integer, 1);
    assert_string_equal(v->elems[1].str, "a");
    assert_int_equal(v->elems[2].type, RESP_ARRAY);
    assert_int_equal(v->elems[2].n, 0);
    resp_value_free(v);

    v = parse_reply_ok(S("%2\r\n+a\r\n:1\r\n+b\r\n_\r\n"));
    assert_int_equal(v->type, RESP_MAP);
    assert_int_equal(v->n, 2);
    assert_string_equal(v->elems[2].str, "b");
    assert_int_equal(v->elems[3].type, RESP_NULL);
    resp_value_free(v);

    v = parse_reply_ok(S("~2\r\n+x\r\n+y\r\n"));
    assert_int_equal(v->type, RESP_SET);
    assert_int_equal(v->n, 2);
    resp_value_free(v);

    v = parse_reply_ok(S(">3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n"));
    assert_int_equal(v->type, RESP_PUSH);
    assert_int_equal(v->n, 3);
    resp_value_free(v);

    v = parse_reply_ok(S(",3.25\r\n"));
    assert_int_equal(v->type, RESP_DOUBLE);
    assert_true(v->dbl == 3.25);
    assert_string_equal(v->str, "3.25");
    resp_value_free(v);

    v = parse_reply_ok(S(",-inf\r\n"));
    assert_true(isinf(v->dbl) && v->dbl < 0);
    resp_value_free(v);

    v = parse_reply_ok(S(",nan\r\n"));
    assert_true(isnan(v->dbl));
    resp_value_free(v);

    v = parse_reply_ok(S(",1e-3\r\n"));
    assert_true(v->dbl == 1e-3);
    resp_value_free(v);

    v = parse_reply_ok(S("#t\r\n"));
    assert_int_equal(v->type, RESP_BOOL);
    assert_int_equal(v->integer, 1);
    resp_value_free(v);

    v = parse_reply_ok(S("#f\r\n"));
    assert_int_equal(v->integer, 0);
    resp_value_free(v);

    v = parse_reply_ok(S("=15\r\ntxt:Some string\r\n"));
    assert_int_equal(v->type, RESP_VERBATIM);
    assert_string_equal(v->fmt3, "txt");
    assert_string_equal(v->str, "Some string");
    assert_int_equal(v->len, 11);
    resp_value_free(v);

    v = parse_reply_ok(S("(-3492890328409238509324850943850943825024385\r\n"));
    assert_int_equal(v->type, RESP_BIGNUM);
    assert_string_equal(v->str, "-3492890328409238509324850943850943825024385");
    resp_value_free(v);
}

static void test_resp_reply_skips_attributes(void **state)
{
    (void)state;
    struct resp_value *v =
        parse_reply_ok(S("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n"
                         "*2\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:5\r\n"));
    assert_int_equal(v->type, RESP_ARRAY);
    assert_int_equal(v->n, 2);
    assert_int_equal(v->elems[0].integer, 2);
    assert_int_equal(v->elems[1].type, RESP_INT);
    assert_int_equal(v->elems[1].integer, 5);
    resp_value_free(v);
}

static void test_resp_reply_round_trips_writer_output(void **state)
{
    (void)state;
    for (int proto = 2; proto <= 3; proto++) {
        struct rk_buf b;
        rk_buf_init(&b);
        assert_int_equal(write_every_type(&b, proto), RK_OK);
        struct resp_value *v = parse_reply_ok(b.base, b.len);
        assert_int_equal(v->type, RESP_ARRAY);
        assert_int_equal(v->n, 14);
        struct resp_value *e = v->elems;
        assert_int_equal(e[0].type, RESP_SIMPLE);
        assert_string_equal(e[0].str, "OK");
        assert_int_equal(e[1].type, RESP_ERROR);
        assert_string_equal(e[2].str, "ERR 5");
        assert_int_equal(e[3].integer, -42);
        assert_int_equal(e[4].len, 3);
        assert_memory_equal(e[4].str, "b\0b", 3);
        assert_string_equal(e[5].str, "str");
        assert_int_equal(e[6].type, RESP_NULL);
        assert_int_equal(e[7].type, RESP_NULL);
        assert_int_equal(e[8].type, proto == 3 ? RESP_MAP : RESP_ARRAY);
        assert_int_equal(e[8].n, proto == 3 ? 1 : 2);
        assert_string_equal(e[8].elems[0].str, "key");
        assert_int_equal(e[8].elems[1].type,
                         proto == 3 ? RESP_SET : RESP_ARRAY);
        assert_int_equal(e[8].elems[1].elems[1].integer, 2);
        if (proto == 3) {
            assert_int_equal(e[9].type, RESP_DOUBLE);
            assert_true(e[9].dbl == 2.5);
            assert_int_equal(e[10].type, RESP_BOOL);
            assert_int_equal(e[11].type, RESP_VERBATIM);
            assert_string_equal(e[11].fmt3, "mkd");
            assert_true(isinf(e[13].dbl));
        } else {
            assert_string_equal(e[9].str, "2.5");
            assert_int_equal(e[10].type, RESP_INT);
            assert_int_equal(e[10].integer, 1);
            assert_int_equal(e[11].type, RESP_BULK);
            assert_string_equal(e[13].str, "-inf");
        }
        assert_string_equal(e[11].str, "# hi");
        assert_int_equal(e[12].type, RESP_ARRAY);
        assert_string_equal(e[12].elems[0].str, "GET");
        resp_value_free(v);
        rk_buf_fini(&b);
    }
}

static const char *const REPLIES[] = {
    "+OK\r\n",
    "-ERR x\r\n",
    ":12345\r\n",
    "$5\r\nhello\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "_\r\n",
    ",3.5\r\n",
    "#t\r\n",
    "!3\r\nERR\r\n",
    "=7\r\ntxt:abc\r\n",
    "(123\r\n",
    "*3\r\n$1\r\na\r\n*1\r\n:1\r\n%1\r\n+k\r\n~1\r\n#f\r\n",
    ">2\r\n+pubsub\r\n$3\r\nmsg\r\n",
    "|1\r\n+a\r\n+b\r\n$2\r\nok\r\n",
};

static void test_resp_reply_needs_more_at_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(REPLIES) / sizeof(REPLIES[0]); i++) {
        const char *s = REPLIES[i];
        size_t len = strlen(s);
        for (size_t k = 0; k < len; k++) {
            char *copy = malloc(k + 1);
            memcpy(copy, s, k);
            size_t consumed = 77;
            size_t need = 0;
            struct resp_value *v = NULL;
            int rc =
                resp_reply_parse(copy, k, 16, 1u << 20, &consumed, &need, &v);
            free(copy);
            if (rc != RK_EAGAIN) {
                fail_msg("reply %zu split at %zu: %s", i, k, rk_errname(rc));
            }
            assert_int_equal(consumed, 77);
            assert_null(v);
            assert_true(need > k);
            assert_true(need <= len);
        }
        /* Complete, with the next reply's bytes after it. */
        char *two = malloc(2 * len);
        memcpy(two, s, len);
        memcpy(two + len, s, len);
        size_t consumed = 0;
        struct resp_value *v = NULL;
        assert_int_equal(
            resp_reply_parse(two, 2 * len, 16, 1u << 20, &consumed, NULL, &v),
            RK_OK);
        assert_int_equal(consumed, len);
        resp_value_free(v);
        free(two);
    }
}

static void test_resp_reply_need_is_exact_for_a_bulk_body(void **state)
{
    (void)state;
    size_t consumed;
    size_t need = 0;
    struct resp_value *v;
    assert_int_equal(resp_reply_parse(S("*2\r\n:1\r\n$1000\r\nab"), 16,
                                      1u << 20, &consumed, &need, &v),
                     RK_EAGAIN);
    assert_int_equal(need, 8 + 7 + 1000 + 2);
    /* incomplete line: one more byte */
    assert_int_equal(
        resp_reply_parse(S("+OK"), 16, 1u << 20, &consumed, &need, &v),
        RK_EAGAIN);
    assert_int_equal(need, 4);
}

struct bad_reply
{
    const char *in;
    size_t max_depth;
    uint64_t max_bulk;
};

static void test_resp_reply_rejects_malformed_replies(void **state)
{
    (void)state;
    static const struct bad_reply bad[] = {
        {"?\r\n", 8, 1024},
        {"\r\n", 8, 1024},
        {":abc\r\n", 8, 1024},
        {":\r\n", 8, 1024},
        {":1.5\r\n", 8, 1024},
        {":99999999999999999999\r\n", 8, 1024},
        {"$-2\r\n", 8, 1024},
        {"$abc\r\n", 8, 1024},
        {"$3\r\nabcd\r\n", 8, 1024},
        {"$2000\r\n", 8, 1024},
        {"!-1\r\n", 8, 1024},
        {"*-2\r\n", 8, 1024},
        {"%-1\r\n", 8, 1024},
        {"~x\r\n", 8, 1024},
        {">-1\r\n", 8, 1024},
        {"#x\r\n", 8, 1024},
        {"#tt\r\n", 8, 1024},
        {"_x\r\n", 8, 1024},
        {",abc\r\n", 8, 1024},
        {",\r\n", 8, 1024},
        {", 1\r\n", 8, 1024},
        {",1x\r\n", 8, 1024},
        {"(12a\r\n", 8, 1024},
        {"(\r\n", 8, 1024},
        {"=3\r\ntxt\r\n", 8, 1024},
        {"=5\r\ntxtxa\r\n", 8, 1024},
        {"+OK\rx", 8, 1024},
        {"*1\r\n?\r\n", 8, 1024},
        {"|1\r\n+a\r\n+b\r\n?", 8, 1024},
        {"*1\r\n*1\r\n*1\r\n:1\r\n", 2, 1024},
        {"*1\r\n:1\r\n", 0, 1024},
        {"|1\r\n+a\r\n+b\r\n:1\r\n", 0, 1024},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t consumed = 0;
        struct resp_value *v = NULL;
        int rc =
            resp_reply_parse(bad[i].in, strlen(bad[i].in), bad[i].max_depth,
                             bad[i].max_bulk, &consumed, NULL, &v);
        if (rc != RK_EPROTO) {
            fail_msg("reply %zu \"%s\": %s", i, bad[i].in, rk_errname(rc));
        }
        assert_null(v);
    }
}

static void test_resp_reply_enforces_max_depth(void **state)
{
    (void)state;
    struct rk_buf b;
    rk_buf_init(&b);
    for (int i = 0; i < 5; i++) {
        rk_buf_append_str(&b, "*1\r\n");
    }
    rk_buf_append_str(&b, ":1\r\n");
    size_t consumed;
    struct resp_value *v = NULL;
    assert_int_equal(
        resp_reply_parse(b.base, b.len, 4, 1024, &consumed, NULL, &v),
        RK_EPROTO);
    assert_int_equal(
        resp_reply_parse(b.base, b.len, 5, 1024, &consumed, NULL, &v), RK_OK);
    resp_value_free(v);
    /* A deep bomb with a huge max_depth stays within the internal cap. */
    rk_buf_clear(&b);
    for (int i = 0; i < 100000; i++) {
        rk_buf_append_str(&b, "*1\r\n");
    }
    assert_int_equal(
        resp_reply_parse(b.base, b.len, SIZE_MAX, 1024, &consumed, NULL, &v),
        RK_EPROTO);
    rk_buf_fini(&b);
}

static void test_resp_reply_survives_allocation_failures(void **state)
{
    (void)state;
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(write_every_type(&b, 3), RK_OK);
    long n;
    for (n = 1; n < 10000; n++) {
        heap_install(n);
        size_t consumed = 0;
        struct resp_value *v = NULL;
        int rc = resp_reply_parse(b.base, b.len, 8, 1024, &consumed, NULL, &v);
        bool done = g_heap.calls < n;
        if (rc == RK_OK) {
            resp_value_free(v);
        } else {
            assert_int_equal(rc, RK_ENOMEM);
            assert_null(v);
        }
        assert_int_equal(g_heap.live, 0);
        heap_uninstall();
        if (done) {
            assert_int_equal(rc, RK_OK);
            break;
        }
    }
    assert_true(n > 10);
    rk_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_parser_parses_multibulk_command),
        cmocka_unit_test(test_resp_parser_bulk_is_binary_safe),
        cmocka_unit_test(test_resp_parser_parses_empty_bulk),
        cmocka_unit_test(test_resp_parser_argv_points_into_the_buffer),
        cmocka_unit_test(test_resp_parser_parses_pipelined_frames),
        cmocka_unit_test(test_resp_parser_skips_empty_frames),
        cmocka_unit_test(test_resp_parser_parses_inline_commands),
        cmocka_unit_test(test_resp_parser_accepts_lone_lf_inline),
        cmocka_unit_test(test_resp_parser_splits_inline_quotes_like_redis_cli),
        cmocka_unit_test(test_resp_parser_rejects_unbalanced_quotes),
        cmocka_unit_test(test_resp_parser_gives_same_commands_at_every_split),
        cmocka_unit_test(test_resp_parser_keeps_offsets_when_buffer_moves),
        cmocka_unit_test(test_resp_parser_rejects_malformed_frames),
        cmocka_unit_test(test_resp_parser_rejects_negative_bulk_len),
        cmocka_unit_test(test_resp_parser_rejects_too_big_count_strings),
        cmocka_unit_test(test_resp_parser_rejects_too_big_inline_request),
        cmocka_unit_test(test_resp_parser_error_is_sticky),
        cmocka_unit_test(test_resp_parser_preauth_limits_reject_11_args),
        cmocka_unit_test(
            test_resp_parser_preauth_limits_reject_16k_plus_1_bulk),
        cmocka_unit_test(test_resp_parser_set_limits_applies_to_next_frame),
        cmocka_unit_test(test_resp_parser_enforces_custom_limits),
        cmocka_unit_test(
            test_resp_parser_declared_huge_counts_allocate_nothing),
        cmocka_unit_test(test_resp_parser_large_bulk_in_pieces_is_linear),
        cmocka_unit_test(test_resp_parser_survives_allocation_failures),
        cmocka_unit_test(test_resp_writer_simple_and_error_replace_crlf),
        cmocka_unit_test(test_resp_writer_formats_integers),
        cmocka_unit_test(test_resp_writer_formats_bulk_strings),
        cmocka_unit_test(test_resp_writer_formats_nulls_in_resp2_and_resp3),
        cmocka_unit_test(
            test_resp_writer_formats_aggregates_in_resp2_and_resp3),
        cmocka_unit_test(test_resp_writer_formats_doubles_like_redis),
        cmocka_unit_test(test_resp_writer_formats_bool_and_verbatim),
        cmocka_unit_test(test_resp_writer_formats_commands),
        cmocka_unit_test(test_resp_writer_appends_to_existing_content),
        cmocka_unit_test(test_resp_writer_survives_allocation_failures),
        cmocka_unit_test(test_resp_reply_parses_every_type),
        cmocka_unit_test(test_resp_reply_skips_attributes),
        cmocka_unit_test(test_resp_reply_round_trips_writer_output),
        cmocka_unit_test(test_resp_reply_needs_more_at_every_split),
        cmocka_unit_test(test_resp_reply_need_is_exact_for_a_bulk_body),
        cmocka_unit_test(test_resp_reply_rejects_malformed_replies),
        cmocka_unit_test(test_resp_reply_enforces_max_depth),
        cmocka_unit_test(test_resp_reply_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

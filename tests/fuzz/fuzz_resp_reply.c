/*
 * fuzz_resp_reply.c - libFuzzer target for the RESP2/RESP3 reply parser
 * (client side; TESTING.md B5).
 *
 * Input: byte 0 sets the parser's bounds and how the reply arrives: bits
 * 0-3 max_depth (0..15), bits 4-6 a read size (1, 2, 3, 7, 16, 64, 512 or
 * all), bit 7 max_bulk (64 bytes or 1 MiB).  The rest is a stream of
 * replies.  Like a client, the target parses a growing prefix and, on
 * RK_EAGAIN, reads up to the need hint, so the hint is checked too.
 *
 * Checks: need > bytes held on RK_EAGAIN; a prefix is RK_EPROTO only when
 * the whole input is; consumed <= len; the tree is
 * well formed (types, NUL-terminated strings, bulk within max_bulk, depth
 * within max_depth); no single allocation beyond a bound linear in the
 * input; and the tree written back as RESP3 parses to an equal tree.
 */
#include <math.h>
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

static bool is_aggregate(enum resp_type t)
{
    return t == RESP_ARRAY || t == RESP_MAP || t == RESP_SET ||
           t == RESP_PUSH || t == RESP_ATTR;
}

static size_t n_elems(const struct resp_value *v)
{
    return v->type == RESP_MAP || v->type == RESP_ATTR ? 2 * v->n : v->n;
}

static void check_tree(const struct resp_value *v,
                       size_t level,
                       size_t max_depth,
                       uint64_t max_bulk)
{
    CHECK(v->type >= RESP_SIMPLE && v->type <= RESP_PUSH);
    CHECK(v->type != RESP_ATTR); /* attributes are skipped */
    if (is_aggregate(v->type)) {
        CHECK(level + 1 <= max_depth);
        CHECK(v->str == NULL);
        CHECK(v->n == 0 || v->elems != NULL);
        for (size_t i = 0; i < n_elems(v); i++) {
            check_tree(&v->elems[i], level + 1, max_depth, max_bulk);
        }
        return;
    }
    CHECK(v->elems == NULL && v->n == 0);
    switch (v->type) {
        case RESP_SIMPLE:
        case RESP_ERROR:
        case RESP_BULK:
        case RESP_VERBATIM:
        case RESP_BIGNUM:
        case RESP_DOUBLE:
            CHECK(v->str != NULL);
            CHECK(v->str[v->len] == '\0');
            if (v->type == RESP_BULK || v->type == RESP_VERBATIM) {
                CHECK(v->len <= max_bulk);
            }
            break;
        case RESP_BOOL:
            CHECK(v->integer == 0 || v->integer == 1);
            break;
        default:
            CHECK(v->str == NULL);
            break;
    }
}

/* Writes v back as RESP3 (raw where the writer would normalise bytes). */
static void write_tree(struct rk_buf *b, const struct resp_value *v)
{
    switch (v->type) {
        case RESP_SIMPLE:
            CHECK(rk_buf_append(b, "+", 1) == RK_OK);
            CHECK(rk_buf_append(b, v->str, v->len) == RK_OK);
            CHECK(rk_buf_append(b, "\r\n", 2) == RK_OK);
            break;
        case RESP_ERROR:
            CHECK(rk_buf_appendf(b, "!%zu\r\n", v->len) == RK_OK);
            CHECK(rk_buf_append(b, v->str, v->len) == RK_OK);
            CHECK(rk_buf_append(b, "\r\n", 2) == RK_OK);
            break;
        case RESP_INT:
            CHECK(resp_w_int(b, v->integer) == RK_OK);
            break;
        case RESP_BULK:
            CHECK(resp_w_bulk(b, v->str, v->len) == RK_OK);
            break;
        case RESP_NULL:
            CHECK(resp_w_null(b, 3) == RK_OK);
            break;
        case RESP_DOUBLE:
            CHECK(rk_buf_append(b, ",", 1) == RK_OK);
            CHECK(rk_buf_append(b, v->str, v->len) == RK_OK);
            CHECK(rk_buf_append(b, "\r\n", 2) == RK_OK);
            break;
        case RESP_BOOL:
            CHECK(resp_w_bool(b, 3, v->integer != 0) == RK_OK);
            break;
        case RESP_VERBATIM:
            if (strlen(v->fmt3) == 3) {
                CHECK(resp_w_verbatim(b, 3, v->fmt3, v->str, v->len) == RK_OK);
            } else {
                CHECK(rk_buf_appendf(b, "=%zu\r\n", v->len + 4) == RK_OK);
                CHECK(rk_buf_append(b, v->fmt3, 3) == RK_OK);
                CHECK(rk_buf_append(b, ":", 1) == RK_OK);
                CHECK(rk_buf_append(b, v->str, v->len) == RK_OK);
                CHECK(rk_buf_append(b, "\r\n", 2) == RK_OK);
            }
            break;
        case RESP_BIGNUM:
            CHECK(rk_buf_append(b, "(", 1) == RK_OK);
            CHECK(rk_buf_append(b, v->str, v->len) == RK_OK);
            CHECK(rk_buf_append(b, "\r\n", 2) == RK_OK);
            break;
        case RESP_ARRAY:
            CHECK(resp_w_array(b, v->n) == RK_OK);
            break;
        case RESP_MAP:
            CHECK(resp_w_map(b, 3, v->n) == RK_OK);
            break;
        case RESP_SET:
            CHECK(resp_w_set(b, 3, v->n) == RK_OK);
            break;
        case RESP_PUSH:
            CHECK(rk_buf_appendf(b, ">%zu\r\n", v->n) == RK_OK);
            break;
        case RESP_ATTR:
            CHECK(0);
            break;
    }
    for (size_t i = 0; i < n_elems(v); i++) {
        write_tree(b, &v->elems[i]);
    }
}

static bool same_tree(const struct resp_value *a, const struct resp_value *b)
{
    if (a->type != b->type || a->n != b->n || a->len != b->len ||
        a->integer != b->integer) {
        return false;
    }
    if ((a->str == NULL) != (b->str == NULL) ||
        (a->str != NULL && memcmp(a->str, b->str, a->len) != 0)) {
        return false;
    }
    if (a->type == RESP_DOUBLE &&
        !(a->dbl == b->dbl || (isnan(a->dbl) && isnan(b->dbl)))) {
        return false;
    }
    if (a->type == RESP_VERBATIM && memcmp(a->fmt3, b->fmt3, 4) != 0) {
        return false;
    }
    for (size_t i = 0; i < n_elems(a); i++) {
        if (!same_tree(&a->elems[i], &b->elems[i])) {
            return false;
        }
    }
    return true;
}

static const size_t READ_SIZES[8] = {1, 2, 3, 7, 16, 64, 512, SIZE_MAX};

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
    size_t max_depth = data[0] & 0x0f;
    size_t step = READ_SIZES[(data[0] >> 4) & 7];
    uint64_t max_bulk = data[0] & 0x80 ? 64 : 1u << 20;
    const char *in = (const char *)data + 1;
    size--;

    size_t off = 0;  /* start of the current reply */
    size_t held = 0; /* bytes "read" past off */
    while (off < size) {
        size_t avail = size - off;
        if (held == 0) {
            held = step < avail ? step : avail;
        }
        /* A fresh copy of what the client holds: no reads past it. */
        char *buf = malloc(held + 1);
        CHECK(buf != NULL);
        memcpy(buf, in + off, held);
        size_t consumed = 0;
        size_t need = 0;
        struct resp_value *v = NULL;
        g_alloc_max = 64 * size + 4096;
        int rc = resp_reply_parse(buf, held, max_depth, max_bulk, &consumed,
                                  &need, &v);
        g_alloc_max = 0;
        free(buf);
        if (rc == RK_EAGAIN) {
            CHECK(need > held);
            CHECK(v == NULL);
            if (held == avail) {
                break; /* the stream ends mid-reply */
            }
            /* read at least one more chunk, and up to the hint */
            size_t next = held + (step < avail - held ? step : avail - held);
            if (need > next) {
                next = need < avail ? need : avail;
            }
            held = next;
            continue;
        }
        if (rc == RK_EPROTO) {
            CHECK(v == NULL);
            if (held < avail) {
                /* A prefix is malformed only if the whole is. */
                rc = resp_reply_parse(in + off, avail, max_depth, max_bulk,
                                      &consumed, &need, &v);
                CHECK(rc == RK_EPROTO);
            }
            break;
        }
        CHECK(rc == RK_OK);
        CHECK(consumed >= 1 && consumed <= held);
        check_tree(v, 0, max_depth, max_bulk);

        /* Round trip through the writer. */
        struct rk_buf w;
        rk_buf_init(&w);
        write_tree(&w, v);
        size_t consumed2 = 0;
        struct resp_value *v2 = NULL;
        rc = resp_reply_parse(w.base, w.len, max_depth, UINT64_MAX, &consumed2,
                              NULL, &v2);
        CHECK(rc == RK_OK);
        CHECK(consumed2 == w.len);
        CHECK(same_tree(v, v2));
        resp_value_free(v2);
        rk_buf_fini(&w);
        resp_value_free(v);

        off += consumed;
        held = 0;
    }
    return 0;
}

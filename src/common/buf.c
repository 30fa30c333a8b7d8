/* buf.c - growable byte buffer; see buf.h. */
#include "common/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

void rk_buf_init(struct rk_buf *b)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
}

void rk_buf_fini(struct rk_buf *b)
{
    rk_free(b->base);
    rk_buf_init(b);
}

int rk_buf_reserve(struct rk_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1) {
        return RK_ENOMEM;
    }
    size_t need = b->len + extra + 1; /* +1 keeps room for a NUL */
    if (need <= b->cap) {
        return RK_OK;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *p = rk_realloc(b->base, cap);
    if (p == NULL) {
        return RK_ENOMEM;
    }
    b->base = p;
    b->cap = cap;
    return RK_OK;
}

int rk_buf_append(struct rk_buf *b, const void *p, size_t len)
{
    int rc = rk_buf_reserve(b, len);
    if (rc != RK_OK) {
        return rc;
    }
    if (len > 0) {
        memcpy(b->base + b->len, p, len);
    }
    b->len += len;
    b->base[b->len] = '\0';
    return RK_OK;
}

int rk_buf_append_str(struct rk_buf *b, const char *s)
{
    return rk_buf_append(b, s, strlen(s));
}

int rk_buf_vappendf(struct rk_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return RK_EINVAL;
    }
    if ((size_t)n < sizeof(small)) {
        return rk_buf_append(b, small, (size_t)n);
    }
    int rc = rk_buf_reserve(b, (size_t)n);
    if (rc != RK_OK) {
        return rc;
    }
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return RK_OK;
}

int rk_buf_appendf(struct rk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = rk_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void rk_buf_consume(struct rk_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else if (n > 0) {
        memmove(b->base, b->base + n, b->len - n);
        b->len -= n;
    }
    if (b->base) {
        b->base[b->len] = '\0';
    }
}

void rk_buf_clear(struct rk_buf *b)
{
    b->len = 0;
    if (b->base) {
        b->base[0] = '\0';
    }
}

void rk_buf_shrink(struct rk_buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) {
        rk_buf_fini(b);
    }
}

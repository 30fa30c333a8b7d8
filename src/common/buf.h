/*
 * buf.h - growable byte buffer (STYLE.md 1.4: base, len, cap, passed by
 * pointer; growing never invalidates the struct, only `base`).
 */
#ifndef RINGKV_COMMON_BUF_H
#define RINGKV_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct rk_buf
{
    char *base; /* owned allocation, NULL when cap == 0 */
    size_t len; /* bytes in use, <= cap */
    size_t cap; /* bytes allocated */
};

/* Empties `b` without allocating (caller storage; pairs with rk_buf_fini). */
void rk_buf_init(struct rk_buf *b);

/* Frees the storage of `b` and leaves it empty; safe to call twice. */
void rk_buf_fini(struct rk_buf *b);

/*
 * Ensures room for `extra` more bytes after len.  Grows geometrically.
 * Returns RK_OK or RK_ENOMEM (b unchanged).  `base` may move.
 */
int rk_buf_reserve(struct rk_buf *b, size_t extra);

/* Appends `len` bytes of `p`; RK_OK or RK_ENOMEM (b unchanged). */
int rk_buf_append(struct rk_buf *b, const void *p, size_t len);

/* Appends a NUL-terminated string (without the NUL). */
int rk_buf_append_str(struct rk_buf *b, const char *s);

/*
 * Appends printf-formatted text; the buffer keeps a NUL after len that is
 * not counted.  RK_OK, RK_ENOMEM or RK_EINVAL (format error).
 */
int rk_buf_appendf(struct rk_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int rk_buf_vappendf(struct rk_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drops the first `n` bytes (n <= len), moving the rest to the front. */
void rk_buf_consume(struct rk_buf *b, size_t n);

/* Sets len to 0, keeping the allocation. */
void rk_buf_clear(struct rk_buf *b);

/*
 * Frees the allocation if it is larger than `keep` bytes and empty, so a
 * one-off huge request does not pin memory (Redis's query buffer shrink).
 */
void rk_buf_shrink(struct rk_buf *b, size_t keep);

#endif /* RINGKV_COMMON_BUF_H */

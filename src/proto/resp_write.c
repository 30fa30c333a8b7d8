/*
 * resp_write.c - the RESP2/RESP3 reply writer and the integer helpers of
 * src/proto; see resp.h part 2.
 *
 * Every element is written with one rk_buf_reserve and direct stores, so a
 * reply costs one bounds check and no printf except for doubles.  RESP3
 * types fall back to their RESP2 forms as redis-server does (map -> flat
 * array, set -> array, double -> bulk string, bool -> integer, verbatim ->
 * bulk, null -> $-1 / *-1).  Spec:
 * https://redis.io/docs/latest/develop/reference/protocol-spec/ .
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "proto/internal.h"
#include "proto/resp.h"

/* "00" "01" ... "99": two digits per division. */
static const char DIGITS2[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "68697071727374757677787980818283848586878889909192939495969798"
    "99";

static size_t u64_digits(uint64_t v)
{
    size_t n = 1;
    while (v >= 10000) {
        v /= 10000;
        n += 4;
    }
    if (v >= 1000) {
        return n + 3;
    }
    if (v >= 100) {
        return n + 2;
    }
    if (v >= 10) {
        return n + 1;
    }
    return n;
}

size_t resp__u64_to_str(uint64_t v, char *dst)
{
    size_t n = u64_digits(v);
    char *d = dst + n;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--d = DIGITS2[i + 1];
        *--d = DIGITS2[i];
    }
    if (v >= 10) {
        unsigned i = (unsigned)v * 2;
        *--d = DIGITS2[i + 1];
        *--d = DIGITS2[i];
    } else {
        *--d = (char)('0' + v);
    }
    return n;
}

size_t resp__i64_to_str(int64_t v, char *dst)
{
    if (v < 0) {
        dst[0] = '-';
        /* -(v + 1) + 1 avoids overflowing on INT64_MIN */
        return 1 + resp__u64_to_str((uint64_t)(-(v + 1)) + 1, dst + 1);
    }
    return resp__u64_to_str((uint64_t)v, dst);
}

bool resp__parse_i64(const char *s, size_t len, bool strict, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len == 0) {
        return false;
    }
    if (s[0] == '-' || (!strict && s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
        if (len == 1) {
            return false;
        }
    }
    if (strict && s[i] == '0' && (len > i + 1 || neg)) {
        return false; /* leading zero, or "-0" (Redis's string2ll) */
    }
    if (len - i > 19 + 20) {
        return false; /* cannot fit even with leading zeros allowed */
    }
    uint64_t v = 0;
    uint64_t max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            return false;
        }
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (neg) {
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        *out = (int64_t)v;
    }
    return true;
}

/* Room for `extra` bytes at b->base + b->len; NULL on RK_ENOMEM. */
static char *w_reserve(struct rk_buf *b, size_t extra)
{
    if (rk_buf_reserve(b, extra) != RK_OK) {
        return NULL;
    }
    return b->base + b->len;
}

/* Commits `n` bytes written after w_reserve, keeping the NUL that rk_buf
 * promises after len. */
static int w_commit(struct rk_buf *b, size_t n)
{
    b->len += n;
    b->base[b->len] = '\0';
    return RK_OK;
}

/* Writes "<type><v>\r\n" into d; returns its length (<= 23). */
static size_t put_header(char *d, char type, int64_t v)
{
    d[0] = type;
    size_t n = 1 + resp__i64_to_str(v, d + 1);
    d[n] = '\r';
    d[n + 1] = '\n';
    return n + 2;
}

#define HDR_MAX (1 + RESP__I64_MAX_CHARS + 2)

static int w_header(struct rk_buf *b, char type, int64_t v)
{
    char *d = w_reserve(b, HDR_MAX);
    if (d == NULL) {
        return RK_ENOMEM;
    }
    return w_commit(b, put_header(d, type, v));
}

static int64_t clamp_count(size_t n)
{
    return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* "<type><s with CR/LF as spaces>\r\n" */
static int w_line(struct rk_buf *b, char type, const char *s, size_t len)
{
    if (len > SIZE_MAX - 3) {
        return RK_ENOMEM;
    }
    char *d = w_reserve(b, len + 3);
    if (d == NULL) {
        return RK_ENOMEM;
    }
    d[0] = type;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        d[1 + i] = c == '\r' || c == '\n' ? ' ' : c;
    }
    d[len + 1] = '\r';
    d[len + 2] = '\n';
    return w_commit(b, len + 3);
}

int resp_w_simple(struct rk_buf *b, const char *s)
{
    return w_line(b, '+', s, strlen(s));
}

int resp_w_error(struct rk_buf *b, const char *msg)
{
    return w_line(b, '-', msg, strlen(msg));
}

int resp_w_errorf(struct rk_buf *b, const char *fmt, ...)
{
    size_t start = b->len;
    char *d = w_reserve(b, 1);
    if (d == NULL) {
        return RK_ENOMEM;
    }
    d[0] = '-';
    w_commit(b, 1);
    va_list ap;
    va_start(ap, fmt);
    int rc = rk_buf_vappendf(b, fmt, ap);
    va_end(ap);
    if (rc != RK_OK) {
        return rc == RK_EINVAL ? RK_ENOMEM : rc;
    }
    for (size_t i = start + 1; i < b->len; i++) {
        if (b->base[i] == '\r' || b->base[i] == '\n') {
            b->base[i] = ' ';
        }
    }
    return rk_buf_append(b, "\r\n", 2);
}

int resp_w_int(struct rk_buf *b, int64_t v)
{
    return w_header(b, ':', v);
}

/* "<type><len>\r\n<p>\r\n" */
static int w_blob(struct rk_buf *b,
                  char type,
                  const char *prefix,
                  size_t prefix_len,
                  const void *p,
                  size_t len)
{
    if (len > SIZE_MAX - HDR_MAX - 2 - prefix_len) {
        return RK_ENOMEM;
    }
    size_t total_len = prefix_len + len;
    char *d = w_reserve(b, HDR_MAX + total_len + 2);
    if (d == NULL) {
        return RK_ENOMEM;
    }
    size_t n = put_header(d, type, clamp_count(total_len));
    if (prefix_len > 0) {
        memcpy(d + n, prefix, prefix_len);
        n += prefix_len;
    }
    if (len > 0) {
        memcpy(d + n, p, len);
        n += len;
    }
    d[n] = '\r';
    d[n + 1] = '\n';
    return w_commit(b, n + 2);
}

int resp_w_bulk(struct rk_buf *b, const void *p, size_t len)
{
    return w_blob(b, '$', NULL, 0, p, len);
}

int resp_w_bulk_str(struct rk_buf *b, const char *s)
{
    return w_blob(b, '$', NULL, 0, s, strlen(s));
}

static int w_fixed(struct rk_buf *b, const char *s, size_t len)
{
    return rk_buf_append(b, s, len);
}

int resp_w_null(struct rk_buf *b, int proto)
{
    return proto >= 3 ? w_fixed(b, "_\r\n", 3) : w_fixed(b, "$-1\r\n", 5);
}

int resp_w_null_array(struct rk_buf *b, int proto)
{
    return proto >= 3 ? w_fixed(b, "_\r\n", 3) : w_fixed(b, "*-1\r\n", 5);
}

int resp_w_array(struct rk_buf *b, size_t n)
{
    return w_header(b, '*', clamp_count(n));
}

int resp_w_map(struct rk_buf *b, int proto, size_t n_pairs)
{
    if (proto >= 3) {
        return w_header(b, '%', clamp_count(n_pairs));
    }
    size_t n = n_pairs > SIZE_MAX / 2 ? SIZE_MAX : n_pairs * 2;
    return w_header(b, '*', clamp_count(n));
}

int resp_w_set(struct rk_buf *b, int proto, size_t n)
{
    return w_header(b, proto >= 3 ? '~' : '*', clamp_count(n));
}

int resp_w_double(struct rk_buf *b, int proto, double v)
{
    char tmp[40];
    const char *s = tmp;
    size_t len;
    if (isinf(v)) {
        s = v > 0 ? "inf" : "-inf";
        len = strlen(s);
    } else if (isnan(v)) {
        s = "nan";
        len = 3;
    } else {
        int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
        len = n > 0 ? (size_t)n : 0;
    }
    if (proto >= 3) {
        return w_line(b, ',', s, len);
    }
    return w_blob(b, '$', NULL, 0, s, len);
}

int resp_w_bool(struct rk_buf *b, int proto, bool v)
{
    if (proto >= 3) {
        return w_fixed(b, v ? "#t\r\n" : "#f\r\n", 4);
    }
    return w_fixed(b, v ? ":1\r\n" : ":0\r\n", 4);
}

int resp_w_verbatim(struct rk_buf *b,
                    int proto,
                    const char *fmt3,
                    const void *p,
                    size_t len)
{
    if (proto < 3) {
        return w_blob(b, '$', NULL, 0, p, len);
    }
    char prefix[4] = {'t', 'x', 't', ':'};
    if (fmt3 != NULL && strlen(fmt3) == 3) {
        memcpy(prefix, fmt3, 3);
    }
    return w_blob(b, '=', prefix, sizeof(prefix), p, len);
}

int resp_w_command(struct rk_buf *b,
                   size_t argc,
                   const char *const *argv,
                   const size_t *lens)
{
    int rc = resp_w_array(b, argc);
    for (size_t i = 0; i < argc && rc == RK_OK; i++) {
        size_t len = lens != NULL ? lens[i] : strlen(argv[i]);
        rc = w_blob(b, '$', NULL, 0, argv[i], len);
    }
    return rc;
}

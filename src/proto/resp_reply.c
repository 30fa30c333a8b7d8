/*
 * resp_reply.c - the RESP2/RESP3 reply parser (client side); see resp.h
 * part 3.  Spec: https://redis.io/docs/latest/develop/reference/protocol-spec/
 * (all RESP3 types: + - : $ * _ , # ! = ( % | ~ >).
 *
 * Two passes over the same recursive descent (r_value):
 *  1. validate (dst == NULL): checks the whole reply is there and well
 *     formed, allocating nothing.  An incomplete reply returns RK_EAGAIN
 *     with the bytes needed at least: exact for a bulk body, so a client
 *     reading a 64 MB bulk sizes its buffer once and calls again only
 *     when it is complete, instead of re-parsing after every read;
 *  2. build (dst != NULL): only runs on a complete, valid reply, so every
 *     element array is allocated with its exact size for elements that
 *     have all arrived: nothing is allocated from a declared count alone.
 *
 * Nesting: a scalar is at level 0 and an aggregate holding it at level 1;
 * an aggregate whose level would exceed max_depth (itself capped at
 * RESP_REPLY_DEPTH_CAP, bounding the C stack) is RK_EPROTO.  Attributes
 * (|) count as aggregates, are validated and skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "proto/internal.h"
#include "proto/resp.h"

#define RESP_REPLY_DEPTH_CAP 512
#define RESP_REPLY_MIN_LINE                     \
    (64u * 1024u) /* simple lines may always be \
                     this long, whatever max_bulk */

struct rctx
{
    const char *buf;   /* the reply, borrowed */
    size_t len;        /* bytes in buf */
    size_t max_depth;  /* aggregate nesting allowed */
    uint64_t max_bulk; /* largest blob length */
    uint64_t max_line; /* longest simple line */
    size_t need;       /* RK_EAGAIN: bytes needed at least */
};

static int r_eagain(struct rctx *c, size_t need)
{
    c->need = need;
    return RK_EAGAIN;
}

/* Finds the CRLF ending the line at buf[start]; *end = offset of '\r'. */
static int r_line(struct rctx *c, size_t start, size_t *end)
{
    size_t avail = c->len - start;
    const char *r = memchr(c->buf + start, '\r', avail);
    if (r == NULL) {
        if ((uint64_t)avail > c->max_line) {
            return RK_EPROTO;
        }
        return r_eagain(c, c->len + 1);
    }
    size_t at = (size_t)(r - c->buf);
    if ((uint64_t)(at - start) > c->max_line) {
        return RK_EPROTO;
    }
    if (at + 1 >= c->len) {
        return r_eagain(c, c->len + 1);
    }
    if (c->buf[at + 1] != '\n') {
        return RK_EPROTO;
    }
    *end = at;
    return RK_OK;
}

/* Reads an integer line at buf[*pos]; moves *pos past its CRLF. */
static int r_int_line(struct rctx *c, size_t *pos, int64_t *v)
{
    size_t end;
    int rc = r_line(c, *pos, &end);
    if (rc != RK_OK) {
        return rc;
    }
    if (!resp__parse_i64(c->buf + *pos, end - *pos, false, v)) {
        return RK_EPROTO;
    }
    *pos = end + 2;
    return RK_OK;
}

static int r_set_str(struct resp_value *dst, const char *s, size_t len)
{
    dst->str = rk_strndup(s, len);
    if (dst->str == NULL) {
        return RK_ENOMEM;
    }
    dst->len = len;
    return RK_OK;
}

static bool is_bignum(const char *s, size_t len)
{
    size_t i = len > 0 && (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i == len) {
        return false;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static bool parse_double(const char *s, size_t len, double *out)
{
    char tmp[128];
    if (len == 0 || len >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (tmp[0] == ' ' || tmp[0] == '\t' || tmp[0] == '\n') {
        return false; /* strtod would skip leading spaces */
    }
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + len) {
        return false;
    }
    *out = v;
    return true;
}

/* Line types: + - : _ , # ( */
static int r_simple(struct rctx *c, char t, size_t *pos, struct resp_value *dst)
{
    size_t start = *pos;
    size_t end;
    int rc = r_line(c, start, &end);
    if (rc != RK_OK) {
        return rc;
    }
    const char *s = c->buf + start;
    size_t len = end - start;
    *pos = end + 2;
    struct resp_value v = {.type = RESP_SIMPLE};
    switch (t) {
        case '+':
        case '-':
            v.type = t == '+' ? RESP_SIMPLE : RESP_ERROR;
            break;
        case ':':
            v.type = RESP_INT;
            if (!resp__parse_i64(s, len, false, &v.integer)) {
                return RK_EPROTO;
            }
            break;
        case '_':
            v.type = RESP_NULL;
            if (len != 0) {
                return RK_EPROTO;
            }
            break;
        case ',':
            v.type = RESP_DOUBLE;
            if (!parse_double(s, len, &v.dbl)) {
                return RK_EPROTO;
            }
            break;
        case '#':
            v.type = RESP_BOOL;
            if (len != 1 || (s[0] != 't' && s[0] != 'f')) {
                return RK_EPROTO;
            }
            v.integer = s[0] == 't';
            break;
        default: /* '(' */
            v.type = RESP_BIGNUM;
            if (!is_bignum(s, len)) {
                return RK_EPROTO;
            }
            break;
    }
    if (dst == NULL) {
        return RK_OK;
    }
    *dst = v;
    /* The text is kept for string types and for doubles (exact display). */
    if (t != ':' && t != '_' && t != '#') {
        return r_set_str(dst, s, len);
    }
    return RK_OK;
}

/* Blob types: $ ! = */
static int r_blob(struct rctx *c, char t, size_t *pos, struct resp_value *dst)
{
    int64_t n;
    int rc = r_int_line(c, pos, &n);
    if (rc != RK_OK) {
        return rc;
    }
    if (n == -1 && t == '$') {
        if (dst != NULL) {
            dst->type = RESP_NULL;
        }
        return RK_OK;
    }
    if (n < 0 || (uint64_t)n > c->max_bulk || (t == '=' && n < 4)) {
        return RK_EPROTO;
    }
    size_t start = *pos;
    uint64_t end = (uint64_t)start + (uint64_t)n;
    if (end + 2 > (uint64_t)c->len) {
        return r_eagain(c, end + 2 > SIZE_MAX ? SIZE_MAX : (size_t)end + 2);
    }
    const char *s = c->buf + start;
    if (s[n] != '\r' || s[n + 1] != '\n') {
        return RK_EPROTO;
    }
    if (t == '=' && s[3] != ':') {
        return RK_EPROTO;
    }
    *pos = (size_t)end + 2;
    if (dst == NULL) {
        return RK_OK;
    }
    if (t == '=') {
        dst->type = RESP_VERBATIM;
        memcpy(dst->fmt3, s, 3);
        dst->fmt3[3] = '\0';
        return r_set_str(dst, s + 4, (size_t)n - 4);
    }
    dst->type = t == '$' ? RESP_BULK : RESP_ERROR;
    return r_set_str(dst, s, (size_t)n);
}

static int r_value(struct rctx *c,
                   size_t *pos,
                   size_t depth,
                   struct resp_value *dst);

/* Aggregates: * % ~ > | ; `depth` is the level of the aggregate. */
static int r_aggregate(struct rctx *c,
                       char t,
                       size_t *pos,
                       size_t depth,
                       struct resp_value *dst)
{
    int64_t n;
    int rc = r_int_line(c, pos, &n);
    if (rc != RK_OK) {
        return rc;
    }
    if (n == -1 && t == '*') {
        if (dst != NULL) {
            dst->type = RESP_NULL;
        }
        return RK_OK;
    }
    if (n < 0 || depth > c->max_depth) {
        return RK_EPROTO;
    }
    bool pairs = t == '%' || t == '|';
    if (pairs && (uint64_t)n > SIZE_MAX / 2 / sizeof(struct resp_value)) {
        return RK_EPROTO;
    }
    size_t count = pairs ? (size_t)n * 2 : (size_t)n;
    if (dst != NULL) {
        switch (t) {
            case '*':
                dst->type = RESP_ARRAY;
                break;
            case '%':
                dst->type = RESP_MAP;
                break;
            case '~':
                dst->type = RESP_SET;
                break;
            case '>':
                dst->type = RESP_PUSH;
                break;
            default:
                dst->type = RESP_ATTR;
                break;
        }
        if (count > 0) {
            /* Pass 1 saw all `count` elements: this is not a declared-count
             * allocation. */
            dst->elems = rk_calloc(count, sizeof(*dst->elems));
            if (dst->elems == NULL) {
                return RK_ENOMEM;
            }
        }
        dst->n = (size_t)n;
    }
    for (size_t i = 0; i < count; i++) {
        rc = r_value(c, pos, depth, dst != NULL ? &dst->elems[i] : NULL);
        if (rc != RK_OK) {
            return rc;
        }
    }
    return RK_OK;
}

/* One value at buf[*pos] whose enclosing aggregates number `depth`. */
static int r_value(struct rctx *c,
                   size_t *pos,
                   size_t depth,
                   struct resp_value *dst)
{
    for (;;) {
        if (*pos >= c->len) {
            return r_eagain(c, c->len + 1);
        }
        char t = c->buf[*pos];
        (*pos)++;
        switch (t) {
            case '+':
            case '-':
            case ':':
            case '_':
            case ',':
            case '#':
            case '(':
                return r_simple(c, t, pos, dst);
            case '$':
            case '!':
            case '=':
                return r_blob(c, t, pos, dst);
            case '*':
            case '%':
            case '~':
            case '>':
                return r_aggregate(c, t, pos, depth + 1, dst);
            case '|': {
                /* An attribute: validate and drop it, then read the value. */
                int rc = r_aggregate(c, t, pos, depth + 1, NULL);
                if (rc != RK_OK) {
                    return rc;
                }
                break;
            }
            default:
                return RK_EPROTO;
        }
    }
}

int resp_reply_parse(const char *buf,
                     size_t len,
                     size_t max_depth,
                     uint64_t max_bulk,
                     size_t *consumed,
                     size_t *need,
                     struct resp_value **out)
{
    struct rctx c = {
        .buf = buf,
        .len = len,
        .max_depth =
            max_depth > RESP_REPLY_DEPTH_CAP ? RESP_REPLY_DEPTH_CAP : max_depth,
        .max_bulk = max_bulk > INT64_MAX ? INT64_MAX : max_bulk,
        .max_line =
            max_bulk > RESP_REPLY_MIN_LINE ? max_bulk : RESP_REPLY_MIN_LINE,
        .need = 0,
    };
    size_t end = 0;
    int rc = r_value(&c, &end, 0, NULL);
    if (rc == RK_EAGAIN && need != NULL) {
        *need = c.need > len ? c.need : len + 1;
    }
    if (rc != RK_OK) {
        return rc;
    }
    struct resp_value *v = rk_calloc(1, sizeof(*v));
    if (v == NULL) {
        return RK_ENOMEM;
    }
    size_t pos = 0;
    rc = r_value(&c, &pos, 0, v);
    if (rc != RK_OK || RK_NEVER(pos != end)) {
        resp_value_free(v);
        return rc != RK_OK ? rc : RK_EPROTO;
    }
    *consumed = end;
    *out = v;
    return RK_OK;
}

/* Frees what v owns (not v itself). */
static void value_fini(struct resp_value *v)
{
    if (v->elems != NULL) {
        size_t count =
            v->type == RESP_MAP || v->type == RESP_ATTR ? v->n * 2 : v->n;
        for (size_t i = 0; i < count; i++) {
            value_fini(&v->elems[i]);
        }
        rk_free(v->elems);
    }
    rk_free(v->str);
}

void resp_value_free(struct resp_value *v)
{
    if (v == NULL) {
        return;
    }
    value_fini(v);
    rk_free(v);
}

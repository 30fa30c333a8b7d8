/*
 * cli_format.c - turns a reply tree into the text the ringkv CLI prints.
 *
 * TTY form (what redis-cli 7 prints on a terminal, observed from
 * redis-cli 7.0.15):
 *   simple "OK" -> OK              error -> (error) ERR ...
 *   integer -> (integer) 1         bulk -> "a\x00\n" (quoted, escaped)
 *   nil -> (nil)                   double -> (double) 1.5
 *   boolean -> (true) / (false)    big number -> (big number) 123
 *   verbatim -> its text as is
 *   array -> "1) elem" lines; set -> "1~ elem"; map -> "1# key => value";
 *   labels are right-aligned to the widest index; a nested aggregate
 *   starts on its parent's line and its later lines are indented by the
 *   parent's label width; a map value that spans several lines starts on
 *   a new line, indented; empty: (empty array) (empty set) (empty hash).
 * RAW form (redis-cli --raw, the default when stdout is not a terminal):
 *   strings as raw bytes, integers and doubles bare, nil as an empty
 *   line, errors as the message plus an extra newline, booleans as
 *   (true)/(false), aggregate elements one per line (flattened), map
 *   pairs as "key value".
 * JSON form: see internal.h.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/error.h"

#define TRY(expr)           \
    do {                    \
        int rc_ = (expr);   \
        if (rc_ != RK_OK) { \
            return rc_;     \
        }                   \
    } while (0)

/* ---- shared helpers --------------------------------------------------- */

static int append_spaces(struct rk_buf *o, size_t n)
{
    TRY(rk_buf_reserve(o, n));
    memset(o->base + o->len, ' ', n);
    o->len += n;
    o->base[o->len] = '\0';
    return RK_OK;
}

static size_t n_digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/*
 * Shortest "%.*g" text that reads back as `d` (so 0.1 prints as 0.1, not
 * 0.10000000000000001); inf/-inf/nan as words.
 */
static void double_text(double d, char *buf, size_t size)
{
    if (isnan(d)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, d > 0 ? "inf" : "-inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            return;
        }
    }
}

/* The text to show for a double: the server's own digits when the
 * parser kept them, else the shortest round-trip form. */
static int append_double(struct rk_buf *o, const struct resp_value *v)
{
    if (v->str != NULL && v->len > 0) {
        return rk_buf_append(o, v->str, v->len);
    }
    char buf[64];
    double_text(v->dbl, buf, sizeof(buf));
    return rk_buf_append_str(o, buf);
}

static bool is_aggregate(enum resp_type t)
{
    return t == RESP_ARRAY || t == RESP_SET || t == RESP_PUSH ||
           t == RESP_MAP || t == RESP_ATTR;
}

static bool is_map(enum resp_type t)
{
    return t == RESP_MAP || t == RESP_ATTR;
}

int cli__append_quoted(struct rk_buf *o, const char *p, size_t len)
{
    TRY(rk_buf_reserve(o, len + 2));
    TRY(rk_buf_append(o, "\"", 1));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        switch (c) {
            case '\\':
                esc = "\\\\";
                break;
            case '"':
                esc = "\\\"";
                break;
            case '\n':
                esc = "\\n";
                break;
            case '\r':
                esc = "\\r";
                break;
            case '\t':
                esc = "\\t";
                break;
            case '\a':
                esc = "\\a";
                break;
            case '\b':
                esc = "\\b";
                break;
            default:
                break;
        }
        if (esc != NULL) {
            TRY(rk_buf_append_str(o, esc));
        } else if (c >= 0x20 && c < 0x7f) {
            TRY(rk_buf_append(o, &p[i], 1));
        } else {
            TRY(rk_buf_appendf(o, "\\x%02x", c));
        }
    }
    return rk_buf_append(o, "\"", 1);
}

/* ---- TTY -------------------------------------------------------------- */

static int tty_value(struct rk_buf *o,
                     const struct resp_value *v,
                     size_t indent);

/* A map value: inline if it fits one line, else on the next lines. */
static int tty_map_value(struct rk_buf *o,
                         const struct resp_value *v,
                         size_t indent)
{
    struct rk_buf tmp;
    rk_buf_init(&tmp);
    int rc = tty_value(&tmp, v, indent);
    if (rc == RK_OK && tmp.len > 0 && memchr(tmp.base, '\n', tmp.len)) {
        rc = rk_buf_append(o, "\n", 1);
        if (rc == RK_OK) {
            rc = append_spaces(o, indent);
        }
    }
    if (rc == RK_OK && tmp.len > 0) {
        rc = rk_buf_append(o, tmp.base, tmp.len);
    }
    rk_buf_fini(&tmp);
    return rc;
}

static int tty_aggregate(struct rk_buf *o,
                         const struct resp_value *v,
                         size_t indent)
{
    if (v->n == 0) {
        return rk_buf_append_str(o, is_map(v->type)       ? "(empty hash)"
                                    : v->type == RESP_SET ? "(empty set)"
                                                          : "(empty array)");
    }
    char mark = is_map(v->type) ? '#' : v->type == RESP_SET ? '~' : ')';
    int width = (int)n_digits(v->n);
    size_t label_len = (size_t)width + 2; /* digits, mark, space */
    for (size_t i = 0; i < v->n; i++) {
        if (i > 0) {
            TRY(rk_buf_append(o, "\n", 1));
            TRY(append_spaces(o, indent));
        }
        TRY(rk_buf_appendf(o, "%*zu%c ", width, i + 1, mark));
        if (is_map(v->type)) {
            TRY(tty_value(o, &v->elems[2 * i], indent + label_len));
            TRY(rk_buf_append_str(o, " => "));
            TRY(tty_map_value(o, &v->elems[2 * i + 1], indent + label_len));
        } else {
            TRY(tty_value(o, &v->elems[i], indent + label_len));
        }
    }
    return RK_OK;
}

static int tty_value(struct rk_buf *o,
                     const struct resp_value *v,
                     size_t indent)
{
    switch (v->type) {
        case RESP_SIMPLE:
        case RESP_VERBATIM:
            return rk_buf_append(o, v->str, v->len);
        case RESP_ERROR:
            TRY(rk_buf_append_str(o, "(error) "));
            return rk_buf_append(o, v->str, v->len);
        case RESP_INT:
            return rk_buf_appendf(o, "(integer) %" PRId64, v->integer);
        case RESP_BULK:
            return cli__append_quoted(o, v->str, v->len);
        case RESP_NULL:
            return rk_buf_append_str(o, "(nil)");
        case RESP_DOUBLE:
            TRY(rk_buf_append_str(o, "(double) "));
            return append_double(o, v);
        case RESP_BOOL:
            return rk_buf_append_str(o, v->integer ? "(true)" : "(false)");
        case RESP_BIGNUM:
            TRY(rk_buf_append_str(o, "(big number) "));
            return rk_buf_append(o, v->str, v->len);
        case RESP_ARRAY:
        case RESP_SET:
        case RESP_PUSH:
        case RESP_MAP:
        case RESP_ATTR:
            return tty_aggregate(o, v, indent);
    }
    return rk_buf_appendf(o, "(unknown reply type %d)", (int)v->type);
}

/* ---- RAW -------------------------------------------------------------- */

static int raw_value(struct rk_buf *o, const struct resp_value *v)
{
    switch (v->type) {
        case RESP_SIMPLE:
        case RESP_VERBATIM:
        case RESP_BULK:
        case RESP_BIGNUM:
            return rk_buf_append(o, v->str, v->len);
        case RESP_ERROR:
            TRY(rk_buf_append(o, v->str, v->len));
            return rk_buf_append(o, "\n", 1);
        case RESP_INT:
            return rk_buf_appendf(o, "%" PRId64, v->integer);
        case RESP_NULL:
            return RK_OK;
        case RESP_DOUBLE:
            return append_double(o, v);
        case RESP_BOOL:
            return rk_buf_append_str(o, v->integer ? "(true)" : "(false)");
        case RESP_ARRAY:
        case RESP_SET:
        case RESP_PUSH:
        case RESP_MAP:
        case RESP_ATTR:
            break;
    }
    if (!is_aggregate(v->type)) {
        return rk_buf_appendf(o, "(unknown reply type %d)", (int)v->type);
    }
    for (size_t i = 0; i < v->n; i++) {
        if (i > 0) {
            TRY(rk_buf_append(o, "\n", 1));
        }
        if (is_map(v->type)) {
            TRY(raw_value(o, &v->elems[2 * i]));
            TRY(rk_buf_append(o, " ", 1));
            TRY(raw_value(o, &v->elems[2 * i + 1]));
        } else {
            TRY(raw_value(o, &v->elems[i]));
        }
    }
    return RK_OK;
}

/* ---- JSON ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p[0..len), or 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF are invalid,
 * per RFC 3629 section 4). */
static size_t utf8_seq_len(const unsigned char *p, size_t len)
{
    unsigned char b = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the 2nd byte */
    if (b < 0x80) {
        return 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        lo = b == 0xe0 ? 0xa0 : 0x80;
        hi = b == 0xed ? 0x9f : 0xbf;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        lo = b == 0xf0 ? 0x90 : 0x80;
        hi = b == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (len < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

static int json_string(struct rk_buf *o, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    TRY(rk_buf_reserve(o, len + 2));
    TRY(rk_buf_append(o, "\"", 1));
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0) {
            /* Not UTF-8: a lone surrogate U+DC80..U+DCFF carries the byte
             * (PEP 383), which no valid UTF-8 text can produce. */
            TRY(rk_buf_appendf(o, "\\udc%02x", c));
            i++;
            continue;
        }
        if (n > 1) {
            TRY(rk_buf_append(o, p + i, n));
        } else if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            TRY(rk_buf_append(o, esc, 2));
        } else if (c == '\n') {
            TRY(rk_buf_append_str(o, "\\n"));
        } else if (c == '\r') {
            TRY(rk_buf_append_str(o, "\\r"));
        } else if (c == '\t') {
            TRY(rk_buf_append_str(o, "\\t"));
        } else if (c < 0x20 || c == 0x7f) {
            TRY(rk_buf_appendf(o, "\\u%04x", c));
        } else {
            TRY(rk_buf_append(o, p + i, 1));
        }
        i += n;
    }
    return rk_buf_append(o, "\"", 1);
}

static bool is_json_integer(const char *s, size_t len)
{
    size_t i = (len > 0 && s[0] == '-') ? 1 : 0;
    if (i == len || (s[i] == '0' && len - i > 1)) {
        return false;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static int json_value(struct rk_buf *o, const struct resp_value *v);

/* An object key must be a string: non-strings become their JSON text. */
static int json_key(struct rk_buf *o, const struct resp_value *k)
{
    if (k->type == RESP_SIMPLE || k->type == RESP_BULK ||
        k->type == RESP_VERBATIM) {
        return json_string(o, k->str, k->len);
    }
    struct rk_buf tmp;
    rk_buf_init(&tmp);
    int rc = json_value(&tmp, k);
    if (rc == RK_OK) {
        rc = json_string(o, tmp.base, tmp.len);
    }
    rk_buf_fini(&tmp);
    return rc;
}

static int json_aggregate(struct rk_buf *o, const struct resp_value *v)
{
    bool map = is_map(v->type);
    TRY(rk_buf_append(o, map ? "{" : "[", 1));
    for (size_t i = 0; i < v->n; i++) {
        if (i > 0) {
            TRY(rk_buf_append(o, ",", 1));
        }
        if (map) {
            TRY(json_key(o, &v->elems[2 * i]));
            TRY(rk_buf_append(o, ":", 1));
            TRY(json_value(o, &v->elems[2 * i + 1]));
        } else {
            TRY(json_value(o, &v->elems[i]));
        }
    }
    return rk_buf_append(o, map ? "}" : "]", 1);
}

static int json_value(struct rk_buf *o, const struct resp_value *v)
{
    char buf[64];
    switch (v->type) {
        case RESP_SIMPLE:
        case RESP_BULK:
        case RESP_VERBATIM:
            return json_string(o, v->str, v->len);
        case RESP_ERROR:
            TRY(rk_buf_append_str(o, "{\"error\":"));
            TRY(json_string(o, v->str, v->len));
            return rk_buf_append(o, "}", 1);
        case RESP_INT:
            return rk_buf_appendf(o, "%" PRId64, v->integer);
        case RESP_BIGNUM:
            if (is_json_integer(v->str, v->len)) {
                return rk_buf_append(o, v->str, v->len);
            }
            return json_string(o, v->str, v->len);
        case RESP_NULL:
            return rk_buf_append_str(o, "null");
        case RESP_DOUBLE:
            double_text(v->dbl, buf, sizeof(buf));
            if (isfinite(v->dbl)) {
                return rk_buf_append_str(o, buf);
            }
            return json_string(o, buf, strlen(buf));
        case RESP_BOOL:
            return rk_buf_append_str(o, v->integer ? "true" : "false");
        case RESP_ARRAY:
        case RESP_SET:
        case RESP_PUSH:
        case RESP_MAP:
        case RESP_ATTR:
            return json_aggregate(o, v);
    }
    return rk_buf_append_str(o, "null");
}

/* ---- entry point ------------------------------------------------------ */

int cli__format_reply(struct rk_buf *out,
                      const struct resp_value *v,
                      enum cli_format fmt)
{
    switch (fmt) {
        case CLI_FMT_TTY:
            TRY(tty_value(out, v, 0));
            break;
        case CLI_FMT_RAW:
            TRY(raw_value(out, v));
            break;
        case CLI_FMT_JSON:
            TRY(json_value(out, v));
            break;
    }
    return rk_buf_append(out, "\n", 1);
}

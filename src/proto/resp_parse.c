/*
 * resp_parse.c - the incremental RESP request parser (server side); see
 * resp.h part 1 and DESIGN.md section 5.
 *
 * A request is one multibulk frame ("*<n>\r\n" then n times
 * "$<len>\r\n<bytes>\r\n") or one inline line ("SET k v\r\n", split with
 * redis-cli style quoting).  Spec:
 * https://redis.io/docs/latest/develop/reference/protocol-spec/ (sections
 * "Sending commands to a Redis server" and "Inline commands").  Error texts
 * match redis-server's where it has one.
 *
 * The parser keeps its progress as offsets from the first byte of the
 * current frame.  That byte is buf[0] of every feed until the frame is
 * consumed, so the caller may move or grow its buffer between feeds.
 *
 * States (p->state) and the functions that move between them:
 *
 *          feed: '*'                 parse_mb: count > 0
 *   START -----------> MB_COUNT -------------------------> ARG_HDR
 *     |                   | count <= 0: skipped, START        |  ^
 *     | feed: other byte  |              parse_mb: "$<len>"  v  | next arg
 *     v                   |                               ARG_BODY
 *   INLINE                |              parse_mb: last arg   |
 *     | parse_inline: '\n'|              done: command, START  |
 *     v                   v                                    v
 *   command (or skipped empty line), START           command, START
 *
 *   any state --malformed or over a limit--> ERROR (sticky: the stream
 *   cannot be trusted any more, STYLE.md 1.3)
 *
 * Invariants:
 *  1. Bytes before p->pos are never read again.  While a header or inline
 *     line is incomplete, p->scan records how far the search for its end
 *     got, so a line arriving byte by byte costs O(its length) in total.
 *  2. A bulk body is never scanned: ARG_BODY only compares lengths until
 *     the body and its CRLF are all there, so a 64 MB bulk arriving in
 *     16 KB pieces costs O(1) per feed here.
 *  3. p->argc <= p->cap.  argv grows geometrically as arguments actually
 *     arrive, capped by the declared count: nothing is allocated from a
 *     declared count or length (CVE-2021-32675 class).
 *  4. argv[i].len and offs[i] are set when argument i is complete; the
 *     pointers are only computed when the command is handed out.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/hex.h"
#include "proto/internal.h"
#include "proto/resp.h"

enum
{
    ST_START,    /* at the first byte of a frame */
    ST_MB_COUNT, /* '*' seen, reading the count line */
    ST_ARG_HDR,  /* expecting "$<len>\r\n" of argument p->argc */
    ST_ARG_BODY, /* expecting p->bulk_len bytes then CRLF */
    ST_INLINE,   /* reading an inline line */
    ST_ERROR,    /* sticky after RK_EPROTO */
};

/* feed-internal result: an empty frame was consumed and no command made */
#define RESP__SKIP 1

#define ARGV_INITIAL_CAP   16   /* small commands never allocate in feed */
#define ARGV_KEEP_CAP      1024 /* larger argv arrays shrink after use */
#define SCRATCH_KEEP_BYTES (64u * 1024u)

struct resp_parser
{
    struct resp_limits lim; /* applied at each frame/argument header */
    int state;              /* ST_* */
    size_t pos;             /* frame offset of the next unparsed byte */
    size_t scan;            /* frame offset up to which the current line was
                               searched for its end; 0 = from its start */
    size_t n_args;          /* declared multibulk count, >= 1 */
    size_t argc;            /* complete arguments, <= cap */
    uint64_t bulk_len;      /* ST_ARG_BODY: bytes of the current bulk */
    size_t cap;             /* entries allocated in argv and offs */
    struct resp_arg *argv;  /* lens set as args complete (invariant 4) */
    size_t *offs;           /* frame (or scratch) offset of each arg */
    struct rk_buf scratch;  /* inline arguments after unquoting */
    const char *err;        /* last RK_EPROTO message */
    char errbuf[64];        /* storage for formatted messages */
};

void resp_limits_default(struct resp_limits *l)
{
    l->max_bulk = RESP_DEFAULT_MAX_BULK;
    l->max_args = RESP_DEFAULT_MAX_ARGS;
    l->max_inline = RESP_DEFAULT_MAX_INLINE;
    l->unauthenticated = false;
}

int resp_parser_create(const struct resp_limits *limits,
                       struct resp_parser **out)
{
    struct resp_parser *p = rk_calloc(1, sizeof(*p));
    if (p == NULL) {
        return RK_ENOMEM;
    }
    if (limits != NULL) {
        p->lim = *limits;
    } else {
        resp_limits_default(&p->lim);
    }
    rk_buf_init(&p->scratch);
    p->err = "";
    p->argv = rk_malloc(ARGV_INITIAL_CAP * sizeof(*p->argv));
    if (p->argv == NULL) {
        goto err;
    }
    p->offs = rk_malloc(ARGV_INITIAL_CAP * sizeof(*p->offs));
    if (p->offs == NULL) {
        goto err;
    }
    p->cap = ARGV_INITIAL_CAP;
    *out = p;
    return RK_OK;

err:
    resp_parser_destroy(p);
    return RK_ENOMEM;
}

void resp_parser_destroy(struct resp_parser *p)
{
    if (p == NULL) {
        return;
    }
    rk_free(p->argv);
    rk_free(p->offs);
    rk_buf_fini(&p->scratch);
    rk_free(p);
}

void resp_parser_set_limits(struct resp_parser *p,
                            const struct resp_limits *limits)
{
    if (limits != NULL) {
        p->lim = *limits;
    } else {
        resp_limits_default(&p->lim);
    }
}

size_t resp_parser_need(const struct resp_parser *p)
{
    if (p->state != ST_ARG_BODY) {
        return 0;
    }
    /* pos <= a buffer size and bulk_len <= INT64_MAX: no overflow */
    uint64_t need = (uint64_t)p->pos + p->bulk_len + 2;
    return need > SIZE_MAX ? SIZE_MAX : (size_t)need;
}

const char *resp_parser_errmsg(const struct resp_parser *p)
{
    return p->err;
}

static int fail(struct resp_parser *p, const char *msg)
{
    p->err = msg;
    p->state = ST_ERROR;
    return RK_EPROTO;
}

static int fail_expected_dollar(struct resp_parser *p, char got)
{
    /* Keep the one-line reply printable whatever byte came. */
    unsigned char c = (unsigned char)got;
    if (c < 0x20 || c > 0x7e) {
        c = '?';
    }
    snprintf(p->errbuf, sizeof(p->errbuf),
             "Protocol error: expected '$', got '%c'", c);
    return fail(p, p->errbuf);
}

/* Grows argv/offs to hold `need` entries, at most `limit` when limit >=
 * need (invariant 3). */
static int argv_reserve(struct resp_parser *p, size_t need, size_t limit)
{
    if (need <= p->cap) {
        return RK_OK;
    }
    size_t cap = p->cap > SIZE_MAX / 2 ? SIZE_MAX : p->cap * 2;
    if (cap < ARGV_INITIAL_CAP) {
        cap = ARGV_INITIAL_CAP;
    }
    if (cap < need) {
        cap = need;
    }
    if (limit >= need && cap > limit) {
        cap = limit;
    }
    if (cap > SIZE_MAX / sizeof(struct resp_arg)) {
        return RK_ENOMEM;
    }
    struct resp_arg *a = rk_realloc(p->argv, cap * sizeof(*a));
    if (a == NULL) {
        return RK_ENOMEM;
    }
    p->argv = a;
    size_t *o = rk_realloc(p->offs, cap * sizeof(*o));
    if (o == NULL) {
        return RK_ENOMEM; /* argv is bigger than cap: harmless */
    }
    p->offs = o;
    p->cap = cap;
    return RK_OK;
}

/* After a huge command, give the memory back (best effort). */
static void argv_shrink(struct resp_parser *p)
{
    if (p->cap <= ARGV_KEEP_CAP) {
        return;
    }
    struct resp_arg *a = rk_realloc(p->argv, ARGV_INITIAL_CAP * sizeof(*a));
    if (a == NULL) {
        return;
    }
    p->argv = a;
    p->cap = ARGV_INITIAL_CAP;
    size_t *o = rk_realloc(p->offs, ARGV_INITIAL_CAP * sizeof(*o));
    if (o != NULL) {
        p->offs = o;
    }
}

/*
 * Finds the CRLF ending the header line that starts at f[from] (its type
 * byte is at from - 1).  RK_OK with *cr = offset of the '\r'; RK_EAGAIN
 * (p->scan remembers how far it looked); RK_EPROTO with `too_big` when
 * no '\r' comes within max_inline bytes, or with `bad` when '\r' is not
 * followed by '\n'.
 */
static int find_crlf(struct resp_parser *p,
                     const char *f,
                     size_t flen,
                     size_t from,
                     size_t *cr,
                     const char *too_big,
                     const char *bad)
{
    size_t start = p->scan > from ? p->scan : from;
    size_t limit = p->lim.max_inline > SIZE_MAX - from - 1
                       ? SIZE_MAX
                       : from + p->lim.max_inline + 1;
    size_t stop = flen < limit ? flen : limit;
    const char *r = NULL;
    if (start < stop) {
        r = memchr(f + start, '\r', stop - start);
    }
    if (r == NULL) {
        if (stop == limit) {
            return fail(p, too_big);
        }
        p->scan = flen;
        return RK_EAGAIN;
    }
    size_t at = (size_t)(r - f);
    if (at + 1 >= flen) {
        p->scan = at;
        return RK_EAGAIN;
    }
    if (f[at + 1] != '\n') {
        return fail(p, bad);
    }
    p->scan = 0;
    *cr = at;
    return RK_OK;
}

/*
 * Fast path for a header line wholly in the buffer: 1 to 18 digits (and
 * at most max_inline) with no leading zero at f[from], then CRLF.  Anything
 * else (signs, partial lines, malformed input) returns false and takes
 * find_crlf + resp__parse_i64, which decide.  Saves a memchr and a second pass
 * on every argument.
 */
static bool fast_len_line(struct resp_parser *p,
                          const char *f,
                          size_t flen,
                          size_t from,
                          uint64_t *v,
                          size_t *cr)
{
    size_t end = flen - from > 19 ? from + 19 : flen;
    size_t i = from;
    uint64_t n = 0;
    while (i < end && (unsigned)(f[i] - '0') <= 9) {
        n = n * 10 + (unsigned)(f[i] - '0');
        i++;
    }
    size_t digits = i - from;
    if (digits == 0 || digits > 18 || digits > p->lim.max_inline ||
        (f[from] == '0' && digits > 1) || i + 1 >= flen || f[i] != '\r' ||
        f[i + 1] != '\n') {
        return false;
    }
    p->scan = 0;
    *v = n;
    *cr = i;
    return true;
}

static const char MSG_BAD_MBULK[] = "Protocol error: invalid multibulk length";
static const char MSG_BAD_BULK[] = "Protocol error: invalid bulk length";
static const char MSG_BIG_MBULK[] =
    "Protocol error: too big mbulk count string";
static const char MSG_BIG_BULK[] = "Protocol error: too big bulk count string";
static const char MSG_BIG_INLINE[] = "Protocol error: too big inline request";
static const char MSG_QUOTES[] = "Protocol error: unbalanced quotes in request";
static const char MSG_BULK_CRLF[] =
    "Protocol error: expected CRLF after bulk data";
static const char MSG_UNAUTH_MBULK[] =
    "Protocol error: unauthenticated multibulk length";
static const char MSG_UNAUTH_BULK[] =
    "Protocol error: unauthenticated bulk length";

/* Over max_args: Redis 7 words it differently before AUTH. */
static int fail_args(struct resp_parser *p, uint64_t n)
{
    bool unauth = p->lim.unauthenticated && n <= RESP_DEFAULT_MAX_ARGS;
    return fail(p, unauth ? MSG_UNAUTH_MBULK : MSG_BAD_MBULK);
}

/* Over max_bulk: likewise. */
static int fail_bulk(struct resp_parser *p, uint64_t len)
{
    bool unauth = p->lim.unauthenticated && len <= RESP_DEFAULT_MAX_BULK;
    return fail(p, unauth ? MSG_UNAUTH_BULK : MSG_BAD_BULK);
}

/* Multibulk frame: from ST_MB_COUNT, ST_ARG_HDR or ST_ARG_BODY. */
static int parse_mb(struct resp_parser *p,
                    const char *f,
                    size_t flen,
                    size_t *frame_len)
{
    int rc;
    size_t cr;
    int64_t v;
    uint64_t u;

    if (p->state == ST_MB_COUNT) {
        if (fast_len_line(p, f, flen, 1, &u, &cr)) {
            v = (int64_t)u;
        } else {
            rc = find_crlf(p, f, flen, 1, &cr, MSG_BIG_MBULK, MSG_BAD_MBULK);
            if (rc != RK_OK) {
                return rc;
            }
            /* any negative count is skipped, as Redis does (issue 17
             * item 4: checked byte for byte against redis-server 7) */
            if (!resp__parse_i64(f + 1, cr - 1, true, &v)) {
                return fail(p, MSG_BAD_MBULK);
            }
        }
        if (v > 0 && (uint64_t)v > p->lim.max_args) {
            return fail_args(p, (uint64_t)v);
        }
        p->pos = cr + 2;
        if (v <= 0) {
            *frame_len = p->pos;
            return RESP__SKIP;
        }
        p->n_args = (size_t)v;
        p->argc = 0;
        p->state = ST_ARG_HDR;
    }
    for (;;) {
        if (p->state == ST_ARG_HDR) {
            size_t pos = p->pos;
            if (pos >= flen) {
                return RK_EAGAIN;
            }
            if (f[pos] != '$') {
                return fail_expected_dollar(p, f[pos]);
            }
            if (fast_len_line(p, f, flen, pos + 1, &u, &cr)) {
                v = (int64_t)u;
            } else {
                rc = find_crlf(p, f, flen, pos + 1, &cr, MSG_BIG_BULK,
                               MSG_BAD_BULK);
                if (rc != RK_OK) {
                    return rc;
                }
                if (!resp__parse_i64(f + pos + 1, cr - pos - 1, true, &v) ||
                    v < 0) {
                    return fail(p, MSG_BAD_BULK);
                }
            }
            if ((uint64_t)v > p->lim.max_bulk) {
                return fail_bulk(p, (uint64_t)v);
            }
            rc = argv_reserve(p, p->argc + 1, p->n_args);
            if (rc != RK_OK) {
                return rc; /* state unchanged: a retry resumes here */
            }
            p->bulk_len = (uint64_t)v;
            p->pos = cr + 2;
            p->state = ST_ARG_BODY;
        }
        /* ST_ARG_BODY (invariant 2) */
        uint64_t end = (uint64_t)p->pos + p->bulk_len;
        if ((uint64_t)flen < end + 2) {
            return RK_EAGAIN;
        }
        if (f[end] != '\r' || f[end + 1] != '\n') {
            return fail(p, MSG_BULK_CRLF);
        }
        p->offs[p->argc] = p->pos;
        p->argv[p->argc].len = (size_t)p->bulk_len;
        p->argc++;
        p->pos = (size_t)end + 2;
        if (p->argc == p->n_args) {
            *frame_len = p->pos;
            return RK_OK;
        }
        p->state = ST_ARG_HDR;
    }
}

/* isspace(): skipped between arguments and required after a closing
 * quote. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Ends an unquoted argument: as redis-cli, \v and \f do not. */
static bool ends_arg(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static char unescape(char c)
{
    switch (c) {
        case 'n':
            return '\n';
        case 'r':
            return '\r';
        case 't':
            return '\t';
        case 'b':
            return '\b';
        case 'a':
            return '\a';
        default:
            return c;
    }
}

/*
 * Reads one argument of an inline line from s[*i..len) into out[*o..],
 * redis-cli style: "double quotes" take \n \r \t \b \a \xHH and \<any>
 * escapes, 'single quotes' take \' only, a closing quote must be followed
 * by a space or the end, and quotes may start in mid-argument.
 */
static int inline_arg(const char *s,
                      size_t len,
                      size_t *i,
                      char *out,
                      size_t *o)
{
    size_t k = *i;
    size_t w = *o;
    int quote = 0; /* 0, '"' or '\'' */
    for (;;) {
        if (k == len) {
            if (quote != 0) {
                return RK_EPROTO;
            }
            break;
        }
        char c = s[k];
        if (quote == 0) {
            if (ends_arg(c)) {
                break;
            }
            if (c == '"' || c == '\'') {
                quote = c;
            } else {
                out[w++] = c;
            }
            k++;
        } else if (c == quote) {
            if (k + 1 < len && !is_space(s[k + 1])) {
                return RK_EPROTO;
            }
            k++;
            break;
        } else if (c == '\\' && quote == '"' && k + 3 < len &&
                   s[k + 1] == 'x' && rk_hex_digit(s[k + 2]) >= 0 &&
                   rk_hex_digit(s[k + 3]) >= 0) {
            out[w++] =
                (char)(rk_hex_digit(s[k + 2]) * 16 + rk_hex_digit(s[k + 3]));
            k += 4;
        } else if (c == '\\' && quote == '"' && k + 1 < len) {
            out[w++] = unescape(s[k + 1]);
            k += 2;
        } else if (c == '\\' && quote == '\'' && k + 1 < len &&
                   s[k + 1] == '\'') {
            out[w++] = '\'';
            k += 2;
        } else {
            out[w++] = c;
            k++;
        }
    }
    *i = k;
    *o = w;
    return RK_OK;
}

/* Splits s[0..len) into p->argv over p->scratch. */
static int split_inline(struct resp_parser *p, const char *s, size_t len)
{
    rk_buf_clear(&p->scratch);
    /* Unquoting never makes an argument longer than its source. */
    int rc = rk_buf_reserve(&p->scratch, len);
    if (rc != RK_OK) {
        return rc;
    }
    size_t i = 0;
    size_t o = 0;
    p->argc = 0;
    for (;;) {
        while (i < len && is_space(s[i])) {
            i++;
        }
        if (i == len) {
            return RK_OK;
        }
        size_t start = o;
        if (inline_arg(s, len, &i, p->scratch.base, &o) != RK_OK) {
            return fail(p, MSG_QUOTES);
        }
        if (p->argc + 1 > p->lim.max_args) {
            return fail_args(p, (uint64_t)p->argc + 1);
        }
        if ((uint64_t)(o - start) > p->lim.max_bulk) {
            return fail_bulk(p, (uint64_t)(o - start));
        }
        rc = argv_reserve(p, p->argc + 1, SIZE_MAX);
        if (rc != RK_OK) {
            return rc;
        }
        p->offs[p->argc] = start;
        p->argv[p->argc].len = o - start;
        p->argc++;
    }
}

/* Inline line: from ST_INLINE. */
static int parse_inline(struct resp_parser *p,
                        const char *f,
                        size_t flen,
                        size_t *frame_len)
{
    /* The '\n' may sit at most at max_inline + 1 (after a '\r'). */
    size_t limit =
        p->lim.max_inline > SIZE_MAX - 2 ? SIZE_MAX : p->lim.max_inline + 2;
    size_t stop = flen < limit ? flen : limit;
    const char *nl = NULL;
    if (p->scan < stop) {
        nl = memchr(f + p->scan, '\n', stop - p->scan);
    }
    if (nl == NULL) {
        if (stop == limit) {
            return fail(p, MSG_BIG_INLINE);
        }
        p->scan = flen;
        return RK_EAGAIN;
    }
    size_t line = (size_t)(nl - f);
    if (line > 0 && f[line - 1] == '\r') {
        line--;
    }
    if (line > p->lim.max_inline) {
        return fail(p, MSG_BIG_INLINE);
    }
    int rc = split_inline(p, f, line);
    if (rc != RK_OK) {
        return rc; /* RK_ENOMEM keeps p->scan: a retry finds '\n' again */
    }
    *frame_len = (size_t)(nl - f) + 1;
    return p->argc == 0 ? RESP__SKIP : RK_OK;
}

static void reset_frame(struct resp_parser *p)
{
    p->state = ST_START;
    p->pos = 0;
    p->scan = 0;
}

int resp_parser_feed(struct resp_parser *p,
                     const char *buf,
                     size_t len,
                     size_t *consumed,
                     struct resp_cmd *cmd)
{
    size_t base = 0; /* bytes of empty frames skipped in this call */
    if (p->state == ST_ERROR) {
        return RK_EPROTO;
    }
    for (;;) {
        const char *f = buf + base;
        size_t flen = len - base;
        size_t frame_len = 0;
        int rc;
        if (p->state == ST_START) {
            if (flen == 0) {
                *consumed = base;
                return RK_EAGAIN;
            }
            argv_shrink(p);
            rk_buf_shrink(&p->scratch, SCRATCH_KEEP_BYTES);
            p->state = f[0] == '*' ? ST_MB_COUNT : ST_INLINE;
        }
        if (p->state == ST_INLINE) {
            rc = parse_inline(p, f, flen, &frame_len);
        } else {
            rc = parse_mb(p, f, flen, &frame_len);
        }
        if (rc == RESP__SKIP) {
            base += frame_len;
            reset_frame(p);
            continue;
        }
        if (rc == RK_EAGAIN || rc == RK_ENOMEM) {
            /* Offsets stay relative to f, so report the skipped bytes. */
            *consumed = base;
            return rc;
        }
        if (rc != RK_OK) {
            return rc;
        }
        const char *argbase = p->state == ST_INLINE ? p->scratch.base : f;
        cmd->is_inline = p->state == ST_INLINE;
        for (size_t i = 0; i < p->argc; i++) {
            p->argv[i].ptr = argbase + p->offs[i];
        }
        cmd->argc = p->argc;
        cmd->argv = p->argv;
        *consumed = base + frame_len;
        reset_frame(p);
        return RK_OK;
    }
}

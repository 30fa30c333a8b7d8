/*
 * resp.h - sans-IO RESP2/RESP3 codec (DESIGN.md section 5).
 *
 * Three parts, none of which touches a socket or a clock:
 *  1. the request parser (server side): incremental; multibulk frames
 *     ("*<n>\r\n$<len>\r\n<bytes>\r\n...") and inline commands
 *     ("SET k v\r\n", with redis-cli style quoting), with limits;
 *  2. the reply writer: appends RESP2 or RESP3 replies to an rk_buf;
 *  3. the reply parser (client side): builds a value tree from a reply.
 * Spec: https://redis.io/docs/latest/develop/reference/protocol-spec/ .
 * Limits follow Redis: proto-max-bulk-len (512 MB), at most 1,048,576
 * multibulk arguments, inline lines at most 64 KiB; and nothing is
 * allocated up front from a declared length (CVE-2021-32675 class).
 */
#ifndef RINGKV_PROTO_RESP_H
#define RINGKV_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define RESP_DEFAULT_MAX_BULK   (512ull * 1024 * 1024) /* bytes */
#define RESP_DEFAULT_MAX_ARGS   (1024u * 1024u)
#define RESP_DEFAULT_MAX_INLINE (64u * 1024u) /* bytes per inline line */

/* ---- 1. request parser ------------------------------------------------ */

struct resp_limits {
    uint64_t max_bulk;  /* largest $<len> accepted, bytes */
    size_t max_args;    /* largest *<n> accepted */
    size_t max_inline;  /* longest inline line, bytes (without CRLF) */
    bool unauthenticated; /* the pre-AUTH limits: a count or length within
                     the RESP_DEFAULT_* values but over these gets Redis's
                     "Protocol error: unauthenticated multibulk length" /
                     "... unauthenticated bulk length" instead of
                     "invalid ..." (default false) */
};

/* Fills `l` with the RESP_DEFAULT_* values (unauthenticated = false). */
void resp_limits_default(struct resp_limits *l);

struct resp_arg {
    const char *ptr; /* view into the caller's buffer (see feed) */
    size_t len;      /* bytes */
};

struct resp_cmd {
    size_t argc;           /* >= 1 when returned by feed with RK_OK */
    struct resp_arg *argv; /* owned by the parser; valid until next feed */
    bool is_inline;        /* came as an inline command */
};

struct resp_parser; /* opaque */

/*
 * Creates a parser with `limits` (copied; NULL = defaults).
 * Returns RK_OK and *out (free with resp_parser_destroy) or RK_ENOMEM.
 * Thread: a parser belongs to one thread.
 */
int resp_parser_create(const struct resp_limits *limits,
                       struct resp_parser **out);

/* Frees the parser; NULL is a no-op. */
void resp_parser_destroy(struct resp_parser *p);

/* Replaces the limits (e.g. tighter before AUTH).  Applies to the next
 * frame header parsed. */
void resp_parser_set_limits(struct resp_parser *p,
                            const struct resp_limits *limits);

/*
 * Parses one request from buf[0..len), which must start at the first
 * unconsumed byte of the stream.
 *  - RK_OK: a full command; *consumed = its bytes; cmd->argv points into
 *    buf and is valid until buf changes or the next feed.  An empty inline
 *    line or a "*0"/"*-1" frame is skipped (consumed, no command) and
 *    parsing goes on with the next frame in buf.
 *  - RK_EAGAIN: incomplete; *consumed = bytes of skipped empty frames (may
 *    be 0).  The parser keeps its progress as offsets, so the caller may
 *    move/grow the buffer, but must call again with the unconsumed bytes
 *    at buf[0] and more data after them.
 *  - RK_EPROTO: malformed or over a limit; resp_parser_errmsg() says why
 *    ("Protocol error: invalid bulk length").  The stream cannot be
 *    trusted: reply with the message and close the connection.
 *  - RK_ENOMEM: *consumed as for RK_EAGAIN; the parser state is kept, so
 *    a later call with the same bytes resumes (or drop the connection).
 * Complexity: O(new bytes) per call (never rescans what it has parsed).
 */
int resp_parser_feed(struct resp_parser *p, const char *buf, size_t len,
                     size_t *consumed, struct resp_cmd *cmd);

/*
 * Total bytes the current incomplete frame needs at least (0 if unknown),
 * so the caller can size its buffer once for a large bulk.
 */
size_t resp_parser_need(const struct resp_parser *p);

/* Message for the last RK_EPROTO, starting "Protocol error: "; static or
 * parser-owned, valid until the next feed. */
const char *resp_parser_errmsg(const struct resp_parser *p);

/* ---- 2. reply writer --------------------------------------------------
 * Each function appends one RESP element to `b` and returns RK_OK or
 * RK_ENOMEM (then b may hold a partial element: callers drop the
 * connection).  `proto` is 2 or 3 and picks the RESP3 type or its RESP2
 * fallback.  Thread: any (touches only b).
 */
int resp_w_simple(struct rk_buf *b, const char *s);  /* +s (CR/LF -> ' ') */
int resp_w_error(struct rk_buf *b, const char *msg); /* -msg; msg starts
                    with its code ("ERR ...", "WRONGTYPE ..."); CR/LF -> ' ' */
int resp_w_errorf(struct rk_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int resp_w_int(struct rk_buf *b, int64_t v);                    /* :v */
int resp_w_bulk(struct rk_buf *b, const void *p, size_t len);  /* $len */
int resp_w_bulk_str(struct rk_buf *b, const char *s);
int resp_w_null(struct rk_buf *b, int proto);       /* $-1 or _ */
int resp_w_null_array(struct rk_buf *b, int proto); /* *-1 or _ */
int resp_w_array(struct rk_buf *b, size_t n);       /* *n */
int resp_w_map(struct rk_buf *b, int proto, size_t n_pairs); /* %n / *2n */
int resp_w_set(struct rk_buf *b, int proto, size_t n);      /* ~n / *n */
int resp_w_double(struct rk_buf *b, int proto, double v);   /* ,v / $ */
int resp_w_bool(struct rk_buf *b, int proto, bool v);       /* #t / :1 */
int resp_w_verbatim(struct rk_buf *b, int proto, const char *fmt3,
                    const void *p, size_t len); /* =len fmt:... / $len */
/* A request in multibulk form (client side). */
int resp_w_command(struct rk_buf *b, size_t argc, const char *const *argv,
                   const size_t *lens);

/* ---- 3. reply parser (client side) ------------------------------------ */

enum resp_type {
    RESP_SIMPLE,   /* + */
    RESP_ERROR,    /* - and RESP3 ! (blob error) */
    RESP_INT,      /* : */
    RESP_BULK,     /* $ */
    RESP_NULL,     /* $-1, *-1, _ */
    RESP_ARRAY,    /* * */
    RESP_MAP,      /* % (elems holds 2*n: key, value, ...) */
    RESP_SET,      /* ~ */
    RESP_DOUBLE,   /* , */
    RESP_BOOL,     /* # */
    RESP_VERBATIM, /* = (str holds "txt:..." minus the 4-byte prefix;
                      fmt3 holds the format) */
    RESP_BIGNUM,   /* ( (str holds the digits) */
    RESP_PUSH,     /* > */
    RESP_ATTR,     /* | (elems as MAP; the parser skips attributes that
                      precede a reply and returns the reply) */
};

struct resp_value {
    enum resp_type type;
    int64_t integer;           /* RESP_INT, RESP_BOOL (0/1) */
    double dbl;                /* RESP_DOUBLE */
    char *str;                 /* SIMPLE/ERROR/BULK/VERBATIM/BIGNUM, and
                                  DOUBLE (its text as sent); owned,
                                  NUL-terminated, may contain NULs */
    size_t len;                /* bytes of str */
    char fmt3[4];              /* RESP_VERBATIM format, NUL-terminated */
    size_t n;                  /* elements (pairs for MAP/ATTR) */
    struct resp_value *elems;  /* owned array: n, or 2n for MAP/ATTR */
};

/*
 * Parses one complete reply from buf[0..len).
 *  - RK_OK: *out is a returned-owned tree (free with resp_value_free),
 *    *consumed its bytes.
 *  - RK_EAGAIN: incomplete; *need (may be NULL) = total bytes needed at
 *    least, when known, else len + 1.
 *  - RK_EPROTO: malformed (nesting deeper than `max_depth`, bad lengths,
 *    bulk over `max_bulk`).  Depth: a flat array is 1 aggregate level;
 *    max_depth is capped at 512.  Simple lines may be up to
 *    max(max_bulk, 64 KiB) bytes.
 *  - RK_ENOMEM.
 */
int resp_reply_parse(const char *buf, size_t len, size_t max_depth,
                     uint64_t max_bulk, size_t *consumed, size_t *need,
                     struct resp_value **out);

/* Frees a tree from resp_reply_parse; NULL is a no-op. */
void resp_value_free(struct resp_value *v);

#endif /* RINGKV_PROTO_RESP_H */

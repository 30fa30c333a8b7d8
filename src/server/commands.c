/*
 * commands.c - the RESP command table and the connection, server and
 * string-key commands of a single node, with Redis's semantics, reply types
 * and error texts (https://redis.io/docs/latest/commands/).
 *
 * Keys live in the storage engine; expiry is an absolute Unix-ms field of
 * each record.  Expired keys are removed lazily when touched and by the
 * active cycle (expire_cycle, called from the housekeeping tick).  Every
 * record's timestamp is an HLC timestamp from the server's clock, strictly
 * increasing, which WATCH uses to detect modification.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/internal.h"

/* ---- replies -------------------------------------------------------- */

void reply_ok(struct client *c)
{
    rk_buf_append(&c->obuf, "+OK\r\n", 5);
}

void reply_simple(struct client *c, const char *s)
{
    resp_w_simple(&c->obuf, s);
}

static void count_error(struct client *c)
{
    if (c->cur_cmd && c->srv->cmdstats) {
        c->srv->cmdstats[command_index(c->cur_cmd)].errors++;
    }
}

void reply_error(struct client *c, const char *msg)
{
    count_error(c);
    resp_w_error(&c->obuf, msg);
}

void reply_errorf(struct client *c, const char *fmt, ...)
{
    count_error(c);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp_w_error(&c->obuf, msg);
}

void reply_int(struct client *c, int64_t v)
{
    resp_w_int(&c->obuf, v);
}

void reply_bulk(struct client *c, const void *p, size_t len)
{
    resp_w_bulk(&c->obuf, p, len);
}

void reply_bulk_str(struct client *c, const char *s)
{
    resp_w_bulk(&c->obuf, s, strlen(s));
}

void reply_null(struct client *c)
{
    resp_w_null(&c->obuf, c->proto);
}

void reply_array(struct client *c, size_t n)
{
    resp_w_array(&c->obuf, n);
}

void reply_map(struct client *c, size_t n_pairs)
{
    resp_w_map(&c->obuf, c->proto, n_pairs);
}

static const char ERR_SYNTAX[] = "ERR syntax error";
static const char ERR_NOT_INT[] = "ERR value is not an integer or out of range";
static const char ERR_OVERFLOW[] = "ERR increment or decrement would overflow";
static const char ERR_NOAUTH[] = "NOAUTH Authentication required.";
static const char ERR_WRONGPASS[] =
    "WRONGPASS invalid username-password pair or user is disabled.";

/* ---- argument helpers ------------------------------------------------ */

static bool arg_is(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
}

/*
 * Parses a strict signed 64-bit decimal (Redis string2ll rules: optional
 * '-', no '+', no leading zeros, no spaces, at most 20 chars).
 */
static bool parse_i64(const char *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) {
        return false;
    }
    if (len == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool neg = false;
    if (p[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1) {
            return false;
        }
    }
    if (p[i] < '1' || p[i] > '9') {
        return false;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)v;
    }
    return true;
}

static bool arg_i64(const struct resp_arg *a, int64_t *out)
{
    return parse_i64(a->ptr, a->len, out);
}

static bool arg_i64_or_reply(struct client *c,
                             const struct resp_arg *a,
                             int64_t *out)
{
    if (!arg_i64(a, out)) {
        reply_error(c, ERR_NOT_INT);
        return false;
    }
    return true;
}

/* ---- keyspace helpers ------------------------------------------------ */

static uint64_t now_ts(struct server *s)
{
    return hlc_now(&s->clock, server_now_ms());
}

static bool is_expired(const struct engine_meta *m, uint64_t now_ms)
{
    return m->expire_at_ms != 0 && m->expire_at_ms <= now_ms;
}

static void note_write(struct client *c, uint64_t seq)
{
    if (c->srv->cluster_exec) {
        return; /* a scratch-engine write: cluster.c replicates it */
    }
    if (c->srv->cfg->sync_mode == ENGINE_SYNC_ALWAYS && seq > c->wait_seq) {
        c->wait_seq = seq;
    }
}

static void reply_storage_error(struct client *c, int rc, const char *what)
{
    struct server *s = c->srv;
    switch (rc) {
        case RK_ETOOBIG:
            reply_error(c,
                        "ERR string exceeds maximum allowed size "
                        "(proto-max-bulk-len)");
            return;
        case RK_EREADONLY:
            s->stats.write_errors++;
            reply_error(c,
                        "ERR storage is read-only after an I/O error; "
                        "writes are refused until restart (see the server "
                        "log)");
            return;
        case RK_ENOSPC:
            s->stats.write_errors++;
            reply_error(c, "ERR write failed: no space left on device");
            return;
        case RK_EINVAL:
            reply_error(c,
                        "ERR invalid key: ringkv does not support empty keys");
            return;
        case RK_ECORRUPT:
            reply_error(c,
                        "ERR storage: checksum mismatch, value not served "
                        "(see the server log)");
            break;
        default:
            s->stats.write_errors++;
            reply_errorf(c, "ERR storage %s failed: %s", what, rk_strerror(rc));
            break;
    }
    rk_log(RK_LOG_ERROR, "storage_error", "op=%s error=%s", what,
           rk_errname(rc));
}

/* Removes an expired key (its tombstone needs no acknowledgement). */
static void expire_key(struct server *s, const void *key, size_t klen)
{
    uint64_t seq;
    if (engine_delete(s->engine, key, klen, now_ts(s), &seq) == RK_OK) {
        s->stats.expired_keys++;
    }
}

/*
 * Looks a key up, expiring it lazily.  val (may be NULL) is cleared and
 * receives the value.  Returns 1 found, 0 missing, -1 error (replied).
 */
static int key_lookup(struct client *c,
                      const struct resp_arg *key,
                      struct rk_buf *val,
                      struct engine_meta *meta)
{
    struct server *s = c->srv;
    if (val) {
        rk_buf_clear(val);
    }
    struct engine_meta m;
    s->lookup_ctlen = 0;
    int rc = engine_get(s->engine, key->ptr, key->len, val, &m);
    if (rc == RK_ENOTFOUND || (rc == RK_OK && cluster_meta_is_tombstone(&m))) {
        if (val) {
            rk_buf_clear(val);
        }
        return 0;
    }
    if (rc != RK_OK) {
        reply_storage_error(c, rc, "read");
        return -1;
    }
    if (is_expired(&m, server_now_ms())) {
        expire_key(s, key->ptr, key->len);
        if (val) {
            rk_buf_clear(val);
        }
        return 0;
    }
    if (m.timestamp & REPLICA_META_CTYPE) {
        /* HTTP PUT's content type: RESP commands see the user's bytes */
        m.timestamp &= REPLICA_PLAIN_TS_MASK;
        size_t skip = 0;
        if (val && val->len > 0) {
            skip = 1 + (unsigned char)val->base[0];
            skip = skip < val->len ? skip : val->len;
            /* remembered for key_restore (a TTL-only rewrite keeps it) */
            s->lookup_ctlen = (uint8_t)(skip > 1 ? skip - 1 : 0);
            memcpy(s->lookup_ct, val->base + 1, s->lookup_ctlen);
            memmove(val->base, val->base + skip, val->len - skip);
            val->len -= skip;
        } else if (m.value_len > 0) {
            /* only the length is wanted: read the prefix's */
            struct rk_buf tmp;
            rk_buf_init(&tmp);
            if (engine_get(s->engine, key->ptr, key->len, &tmp, NULL) ==
                    RK_OK &&
                tmp.len > 0) {
                skip = 1 + (unsigned char)tmp.base[0];
            }
            rk_buf_fini(&tmp);
        }
        m.value_len -= skip < m.value_len ? skip : m.value_len;
    }
    if (meta) {
        *meta = m;
    }
    return 1;
}

/* Stores a value; returns true on success, else replied with the error. */
/* Stores a value with content type ct (ctlen bytes, 0 = none) as the
 * value's prefix (REPLICA_META_CTYPE); replies on error. */
static bool key_store_ct(struct client *c,
                         const struct resp_arg *key,
                         const void *val,
                         size_t vlen,
                         uint64_t expire_at_ms,
                         const char *ct,
                         uint8_t ctlen)
{
    struct server *s = c->srv;
    struct engine_meta m = {now_ts(s), expire_at_ms, vlen};
    uint64_t seq = 0;
    char *pre = NULL;
    if (ctlen) {
        size_t n = 1 + (size_t)ctlen;
        pre = rk_malloc(n + vlen);
        if (pre == NULL) {
            reply_error(c, "ERR out of memory");
            return false;
        }
        pre[0] = (char)ctlen;
        memcpy(pre + 1, ct, ctlen);
        if (vlen) {
            memcpy(pre + n, val, vlen);
        }
        val = pre;
        vlen += n;
        m.timestamp |= REPLICA_META_CTYPE;
    }
    int rc = engine_put(s->engine, key->ptr, key->len, val, vlen, &m, &seq);
    rk_free(pre);
    if (rc != RK_OK) {
        reply_storage_error(c, rc, "write");
        return false;
    }
    note_write(c, seq);
    return true;
}

static bool key_store(struct client *c,
                      const struct resp_arg *key,
                      const void *val,
                      size_t vlen,
                      uint64_t expire_at_ms)
{
    /* HTTP PUT with Content-Type (SET or RINGKV.PUT of an internal
     * client); any other RESP write stores the plain value */
    bool typed = c->ropts.ctlen && c->cur_cmd &&
                 (strcmp(c->cur_cmd->name, "set") == 0 ||
                  strcmp(c->cur_cmd->name, "ringkv.put") == 0);
    return key_store_ct(c, key, val, vlen, expire_at_ms, c->ropts.ctype,
                        typed ? c->ropts.ctlen : 0);
}

/* Rewrites the value key_lookup just read with a new expiry, keeping its
 * content type (EXPIRE, PERSIST, GETEX change only the TTL). */
static bool key_restore(struct client *c,
                        const struct resp_arg *key,
                        const void *val,
                        size_t vlen,
                        uint64_t expire_at_ms)
{
    struct server *s = c->srv;
    return key_store_ct(c, key, val, vlen, expire_at_ms, s->lookup_ct,
                        s->lookup_ctlen);
}

/* Deletes a live key.  Returns 1 deleted, 0 absent, -1 error (replied). */
static int key_delete(struct client *c, const struct resp_arg *key)
{
    struct server *s = c->srv;
    struct engine_meta m;
    int rc = engine_get(s->engine, key->ptr, key->len, NULL, &m);
    if (rc == RK_ENOTFOUND || (rc == RK_OK && cluster_meta_is_tombstone(&m))) {
        return 0;
    }
    if (rc != RK_OK && rc != RK_ECORRUPT) {
        reply_storage_error(c, rc, "read");
        return -1;
    }
    bool expired = rc == RK_OK && is_expired(&m, server_now_ms());
    uint64_t seq = 0;
    rc = engine_delete(s->engine, key->ptr, key->len, now_ts(s), &seq);
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        reply_storage_error(c, rc, "delete");
        return -1;
    }
    note_write(c, seq);
    if (expired) {
        s->stats.expired_keys++;
        return 0;
    }
    return 1;
}

/* Replies with help text, one simple string per line (Redis's HELP). */
static void reply_lines(struct client *c, const char *const *lines, size_t n)
{
    reply_array(c, n);
    for (size_t i = 0; i < n; i++) {
        reply_simple(c, lines[i]);
    }
}

/* The error for a subcommand the handler does not know (normally caught
 * earlier by the dispatcher's subcommand table). */
static void reply_bad_subcommand(struct client *c,
                                 const struct resp_arg *sub,
                                 const char *container)
{
    reply_errorf(c,
                 "ERR unknown subcommand or wrong number of arguments for "
                 "'%.*s'. Try %s HELP.",
                 (int)(sub->len > 128 ? 128 : sub->len), sub->ptr, container);
}

/* ---- connection commands --------------------------------------------- */

static void cmd_ping(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc > 2) {
        reply_error(c, "ERR wrong number of arguments for 'ping' command");
        return;
    }
    if (argc == 2) {
        reply_bulk(c, argv[1].ptr, argv[1].len);
    } else {
        rk_buf_append(&c->obuf, "+PONG\r\n", 7);
    }
}

static void cmd_echo(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    reply_bulk(c, argv[1].ptr, argv[1].len);
}

static void cmd_quit(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    reply_ok(c);
    c->close_after_reply = true;
}

static void cmd_select(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    int64_t db;
    if (!arg_i64(&argv[1], &db)) {
        reply_error(c, ERR_NOT_INT);
    } else if (db != 0) {
        reply_error(c, "ERR DB index is out of range");
    } else {
        reply_ok(c);
    }
}

/* Constant-time comparison of a candidate password with requirepass. */
static bool password_ok(const struct server *s, const struct resp_arg *pw)
{
    const char *want = s->cfg->requirepass;
    size_t wlen = strlen(want);
    unsigned char diff = (unsigned char)(wlen != pw->len);
    for (size_t i = 0; i < pw->len; i++) {
        diff |= (unsigned char)(pw->ptr[i] ^ want[wlen ? i % wlen : 0]);
    }
    return diff == 0 && wlen > 0;
}

static void auth_succeeded(struct client *c)
{
    c->authed = true;
    resp_parser_set_limits(c->parser, &c->srv->limits);
}

/*
 * Checks user/password for AUTH and HELLO AUTH.  Returns true when
 * authenticated; else writes the error reply.
 */
static bool check_auth_or_reply(struct client *c,
                                const struct resp_arg *user,
                                const struct resp_arg *pass)
{
    struct server *s = c->srv;
    if (s->cfg->requirepass[0] == '\0') {
        if (user == NULL) {
            reply_error(c,
                        "ERR AUTH <password> called without any password "
                        "configured for the default user. Are you sure "
                        "your configuration is correct?");
            return false;
        }
        if (arg_is(user, "default")) {
            return true;
        }
    } else if ((user == NULL || arg_is(user, "default")) &&
               password_ok(s, pass)) {
        auth_succeeded(c);
        return true;
    }
    s->stats.auth_failures++;
    rk_log(RK_LOG_WARN, "auth_failed", "client=%s id=%" PRIu64, c->addr, c->id);
    reply_error(c, ERR_WRONGPASS);
    return false;
}

static void cmd_auth(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    const struct resp_arg *user = argc == 3 ? &argv[1] : NULL;
    if (check_auth_or_reply(c, user, &argv[argc - 1])) {
        reply_ok(c);
    }
}

static bool valid_client_name(const struct resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++) {
        if (a->ptr[i] < '!' || a->ptr[i] > '~') {
            return false;
        }
    }
    return true;
}

static void set_client_name(struct client *c, const struct resp_arg *a)
{
    rk_free(c->name);
    c->name = a->len ? rk_strndup(a->ptr, a->len) : NULL;
}

static void cmd_hello(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    struct server *s = c->srv;
    int proto = c->proto;
    size_t i = 1;
    if (argc >= 2) {
        int64_t v;
        if (!arg_i64(&argv[1], &v)) {
            reply_error(c,
                        "ERR Protocol version is not an integer or out of "
                        "range");
            return;
        }
        if (v != 2 && v != 3) {
            reply_error(c, "NOPROTO unsupported protocol version");
            return;
        }
        proto = (int)v;
        i = 2;
    }
    const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (; i < argc; i++) {
        size_t left = argc - i - 1;
        if (arg_is(&argv[i], "AUTH") && left >= 2) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (arg_is(&argv[i], "SETNAME") && left >= 1) {
            name = &argv[i + 1];
            i += 1;
        } else {
            reply_errorf(c, "ERR Syntax error in HELLO option '%.*s'",
                         (int)(argv[i].len > 128 ? 128 : argv[i].len),
                         argv[i].ptr);
            return;
        }
    }
    if (pass) {
        if (!check_auth_or_reply(c, user, pass)) {
            return;
        }
    } else if (!c->authed) {
        reply_error(c,
                    "NOAUTH HELLO must be called with the client already "
                    "authenticated, otherwise the HELLO <proto> AUTH "
                    "<user> <pass> option can be used to authenticate the "
                    "client and select the RESP protocol version at the "
                    "same time");
        return;
    }
    if (name) {
        if (!valid_client_name(name)) {
            reply_error(c,
                        "ERR Client names cannot contain spaces, newlines "
                        "or special characters.");
            return;
        }
        set_client_name(c, name);
    }
    c->proto = proto;
    reply_map(c, 7);
    reply_bulk_str(c, "server");
    reply_bulk_str(c, "redis");
    reply_bulk_str(c, "version");
    reply_bulk_str(c, "7.0.0");
    reply_bulk_str(c, "proto");
    reply_int(c, proto);
    reply_bulk_str(c, "id");
    reply_int(c, (int64_t)c->id);
    reply_bulk_str(c, "mode");
    reply_bulk_str(c, "standalone");
    reply_bulk_str(c, "role");
    reply_bulk_str(c, "master");
    reply_bulk_str(c, "modules");
    reply_array(c, 0);
    (void)s;
}

static void client_info_line(struct client *c,
                             struct client *o,
                             struct rk_buf *out)
{
    uint64_t now = server_mono_ms();
    rk_buf_appendf(out,
                   "id=%" PRIu64 " addr=%s laddr=? fd=%d name=%s age=%" PRIu64
                   " idle=%" PRIu64
                   " flags=%s db=0 sub=0 psub=0 ssub=0 "
                   "multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 "
                   "multi-mem=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r "
                   "cmd=%s user=default redir=-1 resp=%d lib-name=%s "
                   "lib-ver=%s\n",
                   o->id, o->addr, o->fd, o->name ? o->name : "",
                   (now - o->created_ms) / 1000, (now - o->last_ms) / 1000,
                   o->in_multi ? "x" : "N", o->in_multi ? (int)o->mq_len : -1,
                   o->qbuf.len, o->qbuf.cap - o->qbuf.len, o->obuf.len,
                   o->qbuf.cap + o->obuf.cap + sizeof(*o),
                   o->last_cmd ? o->last_cmd : "NULL", o->proto,
                   o->lib_name ? o->lib_name : "",
                   o->lib_ver ? o->lib_ver : "");
    (void)c;
}

static void cmd_client(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    const struct resp_arg *sub = &argv[1];
    if (arg_is(sub, "ID") && argc == 2) {
        reply_int(c, (int64_t)c->id);
    } else if (arg_is(sub, "GETNAME") && argc == 2) {
        if (c->name) {
            reply_bulk_str(c, c->name);
        } else {
            reply_null(c);
        }
    } else if (arg_is(sub, "SETNAME") && argc == 3) {
        if (!valid_client_name(&argv[2])) {
            reply_error(c,
                        "ERR Client names cannot contain spaces, newlines "
                        "or special characters.");
            return;
        }
        set_client_name(c, &argv[2]);
        reply_ok(c);
    } else if (arg_is(sub, "SETINFO") && argc == 4) {
        char **slot = NULL;
        const char *what = NULL;
        if (arg_is(&argv[2], "LIB-NAME")) {
            slot = &c->lib_name;
            what = "lib-name";
        } else if (arg_is(&argv[2], "LIB-VER")) {
            slot = &c->lib_ver;
            what = "lib-ver";
        } else {
            reply_errorf(c, "ERR Unrecognized option '%.*s'",
                         (int)(argv[2].len > 128 ? 128 : argv[2].len),
                         argv[2].ptr);
            return;
        }
        if (!valid_client_name(&argv[3])) {
            reply_errorf(c,
                         "ERR %s cannot contain spaces, newlines or "
                         "special characters.",
                         what);
            return;
        }
        rk_free(*slot);
        *slot = argv[3].len ? rk_strndup(argv[3].ptr, argv[3].len) : NULL;
        reply_ok(c);
    } else if (arg_is(sub, "LIST")) {
        struct rk_buf out;
        rk_buf_init(&out);
        for (struct client *o = c->srv->clients; o; o = o->next) {
            client_info_line(c, o, &out);
        }
        if (c->proto == 3) {
            resp_w_verbatim(&c->obuf, 3, "txt", out.base ? out.base : "",
                            out.len);
        } else {
            reply_bulk(c, out.base ? out.base : "", out.len);
        }
        rk_buf_fini(&out);
    } else if (arg_is(sub, "INFO") && argc == 2) {
        struct rk_buf out;
        rk_buf_init(&out);
        client_info_line(c, c, &out);
        if (c->proto == 3) {
            resp_w_verbatim(&c->obuf, 3, "txt", out.base, out.len);
        } else {
            reply_bulk(c, out.base, out.len);
        }
        rk_buf_fini(&out);
    } else if (arg_is(sub, "HELP")) {
        static const char *help[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST",
            "    Return information about client connections.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "HELP",
            "    Print this help.",
        };
        reply_lines(c, help, sizeof(help) / sizeof(help[0]));
    } else {
        reply_bad_subcommand(c, sub, "CLIENT");
    }
}

/* ---- string commands -------------------------------------------------- */

static void cmd_get(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    int f = key_lookup(c, &argv[1], &s->scratch, NULL);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        s->stats.keyspace_misses++;
        reply_null(c);
        return;
    }
    s->stats.keyspace_hits++;
    reply_bulk(c, s->scratch.base, s->scratch.len);
    rk_buf_shrink(&s->scratch, 1024 * 1024);
}

enum set_flags
{
    SET_NX = 1,
    SET_XX = 2,
    SET_GET = 4,
    SET_KEEPTTL = 8,
    SET_EX = 16,
    SET_PX = 32,
    SET_EXAT = 64,
    SET_PXAT = 128,
};
#define SET_EXPIRE_ANY (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

/*
 * Parses an expire argument of unit `flag` into an absolute Unix-ms time.
 * Replies and returns false on error.  `cmd` names the command in the
 * error text.
 */
static bool expire_arg_or_reply(struct client *c,
                                int flag,
                                const struct resp_arg *a,
                                const char *cmd,
                                uint64_t *at_ms)
{
    int64_t v;
    if (!arg_i64(a, &v)) {
        reply_error(c, ERR_NOT_INT);
        return false;
    }
    bool secs = flag == SET_EX || flag == SET_EXAT;
    if (v <= 0 || (secs && v > INT64_MAX / 1000)) {
        reply_errorf(c, "ERR invalid expire time in '%s' command", cmd);
        return false;
    }
    uint64_t ms = (uint64_t)v * (secs ? 1000u : 1u);
    if (flag == SET_EX || flag == SET_PX) {
        uint64_t now = server_now_ms();
        if (ms > (uint64_t)INT64_MAX - now) {
            reply_errorf(c, "ERR invalid expire time in '%s' command", cmd);
            return false;
        }
        ms += now;
    }
    *at_ms = ms;
    return true;
}

static void cmd_set(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    int flags = 0;
    uint64_t expire_at = 0;
    for (size_t i = 3; i < argc; i++) {
        const struct resp_arg *a = &argv[i];
        bool has_next = i + 1 < argc;
        int unit = 0;
        if (arg_is(a, "NX") && !(flags & SET_XX)) {
            flags |= SET_NX;
        } else if (arg_is(a, "XX") && !(flags & SET_NX)) {
            flags |= SET_XX;
        } else if (arg_is(a, "GET")) {
            flags |= SET_GET;
        } else if (arg_is(a, "KEEPTTL") && !(flags & SET_EXPIRE_ANY)) {
            flags |= SET_KEEPTTL;
        } else if (arg_is(a, "EX")) {
            unit = SET_EX;
        } else if (arg_is(a, "PX")) {
            unit = SET_PX;
        } else if (arg_is(a, "EXAT")) {
            unit = SET_EXAT;
        } else if (arg_is(a, "PXAT")) {
            unit = SET_PXAT;
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
        if (unit) {
            if ((flags & (SET_EXPIRE_ANY | SET_KEEPTTL)) || !has_next) {
                reply_error(c, ERR_SYNTAX);
                return;
            }
            flags |= unit;
            i++;
            if (!expire_arg_or_reply(c, unit, &argv[i], "set", &expire_at)) {
                return;
            }
        }
    }
    struct engine_meta old;
    struct rk_buf *oldval = (flags & SET_GET) ? &s->scratch : NULL;
    int f = 0;
    if (flags & (SET_NX | SET_XX | SET_GET | SET_KEEPTTL)) {
        f = key_lookup(c, &argv[1], oldval, &old);
        if (f < 0) {
            return;
        }
    }
    bool do_set = !((flags & SET_NX) && f) && !((flags & SET_XX) && !f);
    if (do_set) {
        uint64_t exp = expire_at;
        if ((flags & SET_KEEPTTL) && f) {
            exp = old.expire_at_ms;
        }
        if (exp != 0 && exp <= server_now_ms()) {
            /* Already in the past: Redis deletes the key instead. */
            if (key_delete(c, &argv[1]) < 0) {
                return;
            }
        } else if (!key_store(c, &argv[1], argv[2].ptr, argv[2].len, exp)) {
            return;
        }
    }
    if (flags & SET_GET) {
        if (f) {
            reply_bulk(c, s->scratch.base, s->scratch.len);
        } else {
            reply_null(c);
        }
    } else if (do_set) {
        reply_ok(c);
    } else {
        reply_null(c);
    }
}

static void cmd_setnx(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    (void)argc;
    int f = key_lookup(c, &argv[1], NULL, NULL);
    if (f < 0) {
        return;
    }
    if (f) {
        reply_int(c, 0);
        return;
    }
    if (key_store(c, &argv[1], argv[2].ptr, argv[2].len, 0)) {
        reply_int(c, 1);
    }
}

static void cmd_setex_common(struct client *c,
                             const struct resp_arg *argv,
                             int unit,
                             const char *name)
{
    uint64_t at;
    if (!expire_arg_or_reply(c, unit, &argv[2], name, &at)) {
        return;
    }
    if (key_store(c, &argv[1], argv[3].ptr, argv[3].len, at)) {
        reply_ok(c);
    }
}

static void cmd_setex(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    (void)argc;
    cmd_setex_common(c, argv, SET_EX, "setex");
}

static void cmd_psetex(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    cmd_setex_common(c, argv, SET_PX, "psetex");
}

static void cmd_getdel(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    int f = key_lookup(c, &argv[1], &s->scratch, NULL);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        reply_null(c);
        return;
    }
    if (key_delete(c, &argv[1]) < 0) {
        return;
    }
    reply_bulk(c, s->scratch.base, s->scratch.len);
}

static void cmd_getex(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    struct server *s = c->srv;
    int unit = 0;
    bool persist = false;
    uint64_t at = 0;
    for (size_t i = 2; i < argc; i++) {
        const struct resp_arg *a = &argv[i];
        int u = arg_is(a, "EX")     ? SET_EX
                : arg_is(a, "PX")   ? SET_PX
                : arg_is(a, "EXAT") ? SET_EXAT
                : arg_is(a, "PXAT") ? SET_PXAT
                                    : 0;
        if (u && !unit && !persist && i + 1 < argc) {
            unit = u;
            i++;
            if (!expire_arg_or_reply(c, u, &argv[i], "getex", &at)) {
                return;
            }
        } else if (arg_is(a, "PERSIST") && !unit && !persist) {
            persist = true;
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    struct engine_meta m;
    int f = key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        reply_null(c);
        return;
    }
    if (unit && at <= server_now_ms()) {
        if (key_delete(c, &argv[1]) < 0) {
            return;
        }
    } else if ((unit && at != m.expire_at_ms) ||
               (persist && m.expire_at_ms != 0)) {
        if (!key_restore(c, &argv[1], s->scratch.base, s->scratch.len,
                         persist ? 0 : at)) {
            return;
        }
    }
    reply_bulk(c, s->scratch.base, s->scratch.len);
}

static void cmd_del(struct client *c, size_t argc, const struct resp_arg *argv)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        int d = key_delete(c, &argv[i]);
        if (d < 0) {
            return;
        }
        n += d;
    }
    reply_int(c, n);
}

static void cmd_exists(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        int f = key_lookup(c, &argv[i], NULL, NULL);
        if (f < 0) {
            return;
        }
        n += f;
    }
    reply_int(c, n);
}

static void cmd_mget(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    /* A storage error must not leave a half-written array behind. */
    size_t mark = c->obuf.len;
    reply_array(c, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        int f = key_lookup(c, &argv[i], &s->scratch, NULL);
        if (f < 0) {
            /* key_lookup appended an error: replace the partial array. */
            c->obuf.len = mark;
            reply_error(c, "ERR storage read failed during MGET");
            return;
        }
        if (f) {
            s->stats.keyspace_hits++;
            reply_bulk(c, s->scratch.base, s->scratch.len);
        } else {
            s->stats.keyspace_misses++;
            reply_null(c);
        }
    }
}

static void cmd_mset(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc % 2 == 0) {
        reply_error(c, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        if (!key_store(c, &argv[i], argv[i + 1].ptr, argv[i + 1].len, 0)) {
            return;
        }
    }
    reply_ok(c);
}

static void cmd_msetnx(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    if (argc % 2 == 0) {
        reply_error(c, "ERR wrong number of arguments for 'msetnx' command");
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        int f = key_lookup(c, &argv[i], NULL, NULL);
        if (f < 0) {
            return;
        }
        if (f) {
            reply_int(c, 0);
            return;
        }
    }
    for (size_t i = 1; i < argc; i += 2) {
        if (!key_store(c, &argv[i], argv[i + 1].ptr, argv[i + 1].len, 0)) {
            return;
        }
    }
    reply_int(c, 1);
}

static void cmd_strlen(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    struct engine_meta m;
    int f = key_lookup(c, &argv[1], NULL, &m);
    if (f >= 0) {
        reply_int(c, f ? (int64_t)m.value_len : 0);
    }
}

static void cmd_append(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    struct engine_meta m;
    int f = key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    uint64_t exp = f ? m.expire_at_ms : 0;
    if ((uint64_t)s->scratch.len + argv[2].len > s->cfg->proto_max_bulk_len) {
        reply_error(c,
                    "ERR string exceeds maximum allowed size "
                    "(proto-max-bulk-len)");
        return;
    }
    if (rk_buf_append(&s->scratch, argv[2].ptr, argv[2].len) != RK_OK) {
        reply_error(c, "ERR out of memory");
        return;
    }
    if (key_store(c, &argv[1], s->scratch.base, s->scratch.len, exp)) {
        reply_int(c, (int64_t)s->scratch.len);
    }
}

static void incr_by(struct client *c, const struct resp_arg *key, int64_t by)
{
    struct server *s = c->srv;
    struct engine_meta m;
    int f = key_lookup(c, key, &s->scratch, &m);
    if (f < 0) {
        return;
    }
    int64_t v = 0;
    if (f && !parse_i64(s->scratch.base, s->scratch.len, &v)) {
        reply_error(c, ERR_NOT_INT);
        return;
    }
    if ((by > 0 && v > INT64_MAX - by) || (by < 0 && v < INT64_MIN - by)) {
        reply_error(c, ERR_OVERFLOW);
        return;
    }
    v += by;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    if (key_store(c, key, buf, (size_t)n, f ? m.expire_at_ms : 0)) {
        reply_int(c, v);
    }
}

static void cmd_incr(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    incr_by(c, &argv[1], 1);
}

static void cmd_decr(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    incr_by(c, &argv[1], -1);
}

static void cmd_incrby(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    int64_t by;
    if (arg_i64_or_reply(c, &argv[2], &by)) {
        incr_by(c, &argv[1], by);
    }
}

static void cmd_decrby(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    int64_t by;
    if (!arg_i64_or_reply(c, &argv[2], &by)) {
        return;
    }
    if (by == INT64_MIN) {
        reply_error(c, "ERR decrement would overflow");
        return;
    }
    incr_by(c, &argv[1], -by);
}

static void cmd_incrbyfloat(struct client *c,
                            size_t argc,
                            const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    char tmp[5 * 1024]; /* Redis's MAX_LONG_DOUBLE_CHARS */
    if (argv[2].len == 0 || argv[2].len >= sizeof(tmp)) {
        reply_error(c, "ERR value is not a valid float");
        return;
    }
    memcpy(tmp, argv[2].ptr, argv[2].len);
    tmp[argv[2].len] = '\0';
    char *end;
    long double by = strtold(tmp, &end);
    if (*end != '\0' || isspace((unsigned char)tmp[0]) || isnan(by)) {
        reply_error(c, "ERR value is not a valid float");
        return;
    }
    struct engine_meta m;
    int f = key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    long double v = 0;
    if (f) {
        if (s->scratch.len == 0 || s->scratch.len >= sizeof(tmp)) {
            reply_error(c, "ERR value is not a valid float");
            return;
        }
        memcpy(tmp, s->scratch.base, s->scratch.len);
        tmp[s->scratch.len] = '\0';
        v = strtold(tmp, &end);
        if (*end != '\0' || isspace((unsigned char)tmp[0]) || isnan(v)) {
            reply_error(c, "ERR value is not a valid float");
            return;
        }
    }
    v += by;
    if (isnan(v) || isinf(v)) {
        reply_error(c, "ERR increment would produce NaN or Infinity");
        return;
    }
    char out[5 * 1024];
    int n = snprintf(out, sizeof(out), "%.17Lf", v);
    if (n < 0 || (size_t)n >= sizeof(out)) {
        reply_error(c, "ERR increment would produce NaN or Infinity");
        return;
    }
    /* Trim trailing zeros like Redis's humanfriendly long double format. */
    if (strchr(out, '.')) {
        while (n > 0 && out[n - 1] == '0') {
            n--;
        }
        if (n > 0 && out[n - 1] == '.') {
            n--;
        }
    }
    out[n] = '\0';
    if (key_store(c, &argv[1], out, (size_t)n, f ? m.expire_at_ms : 0)) {
        reply_bulk(c, out, (size_t)n);
    }
}

static void cmd_getrange(struct client *c,
                         size_t argc,
                         const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    int64_t start, end;
    if (!arg_i64_or_reply(c, &argv[2], &start) ||
        !arg_i64_or_reply(c, &argv[3], &end)) {
        return;
    }
    int f = key_lookup(c, &argv[1], &s->scratch, NULL);
    if (f < 0) {
        return;
    }
    int64_t len = (int64_t)s->scratch.len;
    if (start < 0 && end < 0 && start > end) {
        reply_bulk(c, "", 0);
        return;
    }
    if (start < 0) {
        start = len + start;
    }
    if (end < 0) {
        end = len + end;
    }
    if (start < 0) {
        start = 0;
    }
    if (end < 0) {
        end = 0;
    }
    if (end >= len) {
        end = len - 1;
    }
    if (!f || len == 0 || start > end) {
        reply_bulk(c, "", 0);
        return;
    }
    reply_bulk(c, s->scratch.base + start, (size_t)(end - start + 1));
}

/* ---- expiry ------------------------------------------------------------ */

enum
{
    EXP_NX = 1,
    EXP_XX = 2,
    EXP_GT = 4,
    EXP_LT = 8
};

static void expire_generic(struct client *c,
                           size_t argc,
                           const struct resp_arg *argv,
                           int unit,
                           const char *name)
{
    struct server *s = c->srv;
    int64_t v;
    if (!arg_i64_or_reply(c, &argv[2], &v)) {
        return;
    }
    int opts = 0;
    for (size_t i = 3; i < argc; i++) {
        if (arg_is(&argv[i], "NX")) {
            opts |= EXP_NX;
        } else if (arg_is(&argv[i], "XX")) {
            opts |= EXP_XX;
        } else if (arg_is(&argv[i], "GT")) {
            opts |= EXP_GT;
        } else if (arg_is(&argv[i], "LT")) {
            opts |= EXP_LT;
        } else {
            reply_errorf(c, "ERR Unsupported option %.*s",
                         (int)(argv[i].len > 128 ? 128 : argv[i].len),
                         argv[i].ptr);
            return;
        }
    }
    if ((opts & EXP_NX) && (opts & (EXP_XX | EXP_GT | EXP_LT))) {
        reply_error(c,
                    "ERR NX and XX, GT or LT options at the same time are "
                    "not compatible");
        return;
    }
    if ((opts & EXP_GT) && (opts & EXP_LT)) {
        reply_error(c,
                    "ERR GT and LT options at the same time are not "
                    "compatible");
        return;
    }
    /* Absolute time in ms, as a signed value (may be in the past). */
    bool secs = unit == SET_EX || unit == SET_EXAT;
    if (secs && (v > INT64_MAX / 1000 || v < INT64_MIN / 1000)) {
        reply_errorf(c, "ERR invalid expire time in '%s' command", name);
        return;
    }
    int64_t ms = secs ? v * 1000 : v;
    if (unit == SET_EX || unit == SET_PX) {
        int64_t now = (int64_t)server_now_ms();
        if (ms > INT64_MAX - now) {
            reply_errorf(c, "ERR invalid expire time in '%s' command", name);
            return;
        }
        ms += now;
    }
    struct engine_meta m;
    int f = key_lookup(c, &argv[1], &s->scratch, &m);
    if (f <= 0) {
        if (f == 0) {
            reply_int(c, 0);
        }
        return;
    }
    bool has = m.expire_at_ms != 0;
    int64_t cur = (int64_t)m.expire_at_ms;
    if (((opts & EXP_NX) && has) || ((opts & EXP_XX) && !has) ||
        ((opts & EXP_GT) && (!has || ms <= cur)) ||
        ((opts & EXP_LT) && has && ms >= cur)) {
        reply_int(c, 0);
        return;
    }
    if (ms <= (int64_t)server_now_ms()) {
        if (key_delete(c, &argv[1]) >= 0) {
            s->stats.expired_keys++;
            reply_int(c, 1);
        }
        return;
    }
    if (key_restore(c, &argv[1], s->scratch.base, s->scratch.len,
                    (uint64_t)ms)) {
        reply_int(c, 1);
    }
}

static void cmd_expire(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_EX, "expire");
}

static void cmd_pexpire(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_PX, "pexpire");
}

static void cmd_expireat(struct client *c,
                         size_t argc,
                         const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_EXAT, "expireat");
}

static void cmd_pexpireat(struct client *c,
                          size_t argc,
                          const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_PXAT, "pexpireat");
}

static void ttl_generic(struct client *c,
                        const struct resp_arg *key,
                        bool ms,
                        bool absolute)
{
    struct engine_meta m;
    int f = key_lookup(c, key, NULL, &m);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        reply_int(c, -2);
        return;
    }
    if (m.expire_at_ms == 0) {
        reply_int(c, -1);
        return;
    }
    if (absolute) {
        reply_int(
            c, (int64_t)(ms ? m.expire_at_ms : (m.expire_at_ms + 500) / 1000));
        return;
    }
    uint64_t now = server_now_ms();
    int64_t left = m.expire_at_ms > now ? (int64_t)(m.expire_at_ms - now) : 0;
    reply_int(c, ms ? left : (left + 500) / 1000);
}

static void cmd_ttl(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], false, false);
}

static void cmd_pttl(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], true, false);
}

static void cmd_expiretime(struct client *c,
                           size_t argc,
                           const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], false, true);
}

static void cmd_pexpiretime(struct client *c,
                            size_t argc,
                            const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], true, true);
}

static void cmd_persist(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    struct engine_meta m;
    int f = key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    if (f == 0 || m.expire_at_ms == 0) {
        reply_int(c, 0);
        return;
    }
    if (key_restore(c, &argv[1], s->scratch.base, s->scratch.len, 0)) {
        reply_int(c, 1);
    }
}

static void cmd_type(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    int f = key_lookup(c, &argv[1], NULL, NULL);
    if (f >= 0) {
        reply_simple(c, f ? "string" : "none");
    }
}

/* ---- keyspace iteration ------------------------------------------------ */

struct key_list
{
    struct rk_buf data; /* concatenated keys */
    size_t *offs;       /* start of each key; offs[n] = end */
    struct engine_meta *metas;
    size_t n, cap;
    bool oom;
};

static void key_list_fini(struct key_list *kl)
{
    rk_buf_fini(&kl->data);
    rk_free(kl->offs);
    rk_free(kl->metas);
}

static bool key_list_cb(void *data,
                        const void *key,
                        size_t klen,
                        const struct engine_meta *meta)
{
    struct key_list *kl = data;
    if (cluster_meta_is_tombstone(meta)) {
        return true; /* a replicated delete marker, not a key */
    }
    if (kl->n + 2 > kl->cap) {
        size_t cap = kl->cap ? kl->cap * 2 : 64;
        size_t *o = rk_realloc(kl->offs, cap * sizeof(*o));
        if (o) {
            kl->offs = o;
        }
        struct engine_meta *m = rk_realloc(kl->metas, cap * sizeof(*m));
        if (m) {
            kl->metas = m;
        }
        if (!o || !m) {
            kl->oom = true;
            return false;
        }
        kl->cap = cap;
    }
    kl->offs[kl->n] = kl->data.len;
    kl->metas[kl->n] = *meta;
    if (rk_buf_append(&kl->data, key, klen) != RK_OK) {
        kl->oom = true;
        return false;
    }
    kl->n++;
    kl->offs[kl->n] = kl->data.len;
    return true;
}

/* Replies with the keys of kl that match and are not expired (expiring
 * those that are). */
static void reply_key_list(struct client *c,
                           struct key_list *kl,
                           const struct resp_arg *pat)
{
    uint64_t now = server_now_ms();
    size_t n = 0;
    bool *keep = rk_calloc(kl->n ? kl->n : 1, sizeof(bool));
    if (keep == NULL) {
        reply_error(c, "ERR out of memory");
        return;
    }
    for (size_t i = 0; i < kl->n; i++) {
        const char *k = kl->data.base + kl->offs[i];
        size_t klen = kl->offs[i + 1] - kl->offs[i];
        if (is_expired(&kl->metas[i], now)) {
            expire_key(c->srv, k, klen);
            continue;
        }
        if (pat && !rk_glob_match(pat->ptr, pat->len, k, klen, false)) {
            continue;
        }
        keep[i] = true;
        n++;
    }
    reply_array(c, n);
    for (size_t i = 0; i < kl->n; i++) {
        if (keep[i]) {
            reply_bulk(c, kl->data.base + kl->offs[i],
                       kl->offs[i + 1] - kl->offs[i]);
        }
    }
    rk_free(keep);
}

static void cmd_scan(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    char tmp[32];
    uint64_t cursor = 0;
    if (argv[1].len == 0 || argv[1].len >= sizeof(tmp)) {
        reply_error(c, "ERR invalid cursor");
        return;
    }
    memcpy(tmp, argv[1].ptr, argv[1].len);
    tmp[argv[1].len] = '\0';
    char *end;
    if (tmp[0] == '-' || tmp[0] == '+') {
        reply_error(c, "ERR invalid cursor");
        return;
    }
    errno = 0;
    cursor = strtoull(tmp, &end, 10);
    if (*end != '\0' || errno) {
        reply_error(c, "ERR invalid cursor");
        return;
    }
    const struct resp_arg *pat = NULL;
    int64_t count = 10;
    bool type_mismatch = false;
    for (size_t i = 2; i < argc; i++) {
        if (i + 1 >= argc) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
        if (arg_is(&argv[i], "MATCH")) {
            pat = &argv[++i];
            if (pat->len == 1 && pat->ptr[0] == '*') {
                pat = NULL;
            }
        } else if (arg_is(&argv[i], "COUNT")) {
            if (!arg_i64_or_reply(c, &argv[++i], &count)) {
                return;
            }
            if (count < 1) {
                reply_error(c, ERR_SYNTAX);
                return;
            }
        } else if (arg_is(&argv[i], "TYPE")) {
            type_mismatch = !arg_is(&argv[++i], "string");
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    struct key_list kl;
    memset(&kl, 0, sizeof(kl));
    rk_buf_init(&kl.data);
    uint64_t next = 0;
    size_t want = count > 100000 ? 100000 : (size_t)count;
    int rc = engine_scan(s->engine, cursor, want, key_list_cb, &kl, &next);
    if (rc != RK_OK || kl.oom) {
        key_list_fini(&kl);
        reply_error(c, rc == RK_OK ? "ERR out of memory" : "ERR scan failed");
        return;
    }
    if (type_mismatch) {
        kl.n = 0;
    }
    reply_array(c, 2);
    char cur[32];
    int n = snprintf(cur, sizeof(cur), "%" PRIu64, next);
    reply_bulk(c, cur, (size_t)n);
    reply_key_list(c, &kl, pat);
    key_list_fini(&kl);
}

static void cmd_keys(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct key_list kl;
    memset(&kl, 0, sizeof(kl));
    rk_buf_init(&kl.data);
    int rc = engine_foreach(c->srv->engine, key_list_cb, &kl);
    if (rc != RK_OK || kl.oom) {
        key_list_fini(&kl);
        reply_error(c, "ERR keys failed");
        return;
    }
    const struct resp_arg *pat = &argv[1];
    reply_key_list(c, &kl, (pat->len == 1 && pat->ptr[0] == '*') ? NULL : pat);
    key_list_fini(&kl);
}

static bool random_key_cb(void *data,
                          const void *key,
                          size_t klen,
                          const struct engine_meta *meta)
{
    if (cluster_meta_is_tombstone(meta)) {
        return true;
    }
    struct rk_buf *b = data;
    rk_buf_append(b, key, klen);
    return false;
}

static void cmd_randomkey(struct client *c,
                          size_t argc,
                          const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    struct server *s = c->srv;
    struct rk_buf k;
    rk_buf_init(&k);
    uint64_t cursor = ((uint64_t)rand() << 32) ^ (uint64_t)rand();
    for (int tries = 0; tries < 64 && k.len == 0; tries++) {
        uint64_t next;
        engine_scan(s->engine, cursor, 1, random_key_cb, &k, &next);
        cursor = next ? next : ((uint64_t)rand() << 32) ^ (uint64_t)rand();
    }
    if (k.len == 0) {
        engine_foreach(s->engine, random_key_cb, &k);
    }
    if (k.len) {
        reply_bulk(c, k.base, k.len);
    } else {
        reply_null(c);
    }
    rk_buf_fini(&k);
}

size_t expire_cycle(struct server *s, size_t budget)
{
    struct key_list kl;
    memset(&kl, 0, sizeof(kl));
    rk_buf_init(&kl.data);
    uint64_t next = 0;
    if (engine_scan(s->engine, s->scan_cursor, budget, key_list_cb, &kl,
                    &next) != RK_OK) {
        key_list_fini(&kl);
        return 0;
    }
    s->scan_cursor = next;
    uint64_t now = server_now_ms();
    size_t expired = 0;
    for (size_t i = 0; i < kl.n; i++) {
        if (is_expired(&kl.metas[i], now)) {
            expire_key(s, kl.data.base + kl.offs[i],
                       kl.offs[i + 1] - kl.offs[i]);
            expired++;
        }
    }
    key_list_fini(&kl);
    return expired;
}

static bool count_tombstones_cb(void *data,
                                const void *key,
                                size_t klen,
                                const struct engine_meta *meta)
{
    (void)key;
    (void)klen;
    if (cluster_meta_is_tombstone(meta)) {
        (*(uint64_t *)data)++;
    }
    return true;
}

/* RINGKV.LOCALGET key: this node's stored value, no coordination (a
 * debugging aid for replicas; tombstones and expired values are nil; of a
 * versioned object, the winning sibling). */
static void cmd_localget(struct client *c,
                         size_t argc,
                         const struct resp_arg *argv)
{
    (void)argc;
    struct rk_buf *val = &c->srv->scratch;
    struct engine_meta m;
    rk_buf_clear(val);
    int rc = engine_get(c->srv->engine, argv[1].ptr, argv[1].len, val, &m);
    if (rc == RK_ENOTFOUND ||
        (rc == RK_OK &&
         (cluster_meta_is_tombstone(&m) || is_expired(&m, server_now_ms())))) {
        reply_null(c);
        return;
    }
    if (rc != RK_OK) {
        reply_storage_error(c, rc, "read");
        return;
    }
    if (!replica_meta_is_object(&m) && (m.timestamp & REPLICA_META_CTYPE) &&
        val->len > 0) {
        size_t skip = 1 + (unsigned char)val->base[0];
        skip = skip < val->len ? skip : val->len;
        reply_bulk(c, val->base + skip, val->len - skip);
        return;
    }
    if (replica_meta_is_object(&m)) {
        struct dvv_obj o;
        dvv_init(&o);
        size_t w = 0;
        rc = dvv_decode(&o, val->base ? val->base : "", val->len);
        if (rc != RK_OK) {
            reply_error(c, "ERR stored object does not decode");
        } else if (replica_winner(&o, server_now_ms(), &w) != RK_OK) {
            reply_null(c);
        } else {
            size_t pl = 0;
            const char *pv = dvv_payload(&o, w, &pl);
            reply_bulk(c, pv, pl);
        }
        dvv_fini(&o);
        return;
    }
    reply_bulk(c, val->base ? val->base : "", val->len);
}

/* RINGKV.LOCALOBJ key: this node's stored record bytes (the canonical
 * versioned object in a cluster), nil when absent: a debugging aid that
 * lets tests compare replicas byte for byte. */
static void cmd_localobj(struct client *c,
                         size_t argc,
                         const struct resp_arg *argv)
{
    (void)argc;
    struct rk_buf *val = &c->srv->scratch;
    rk_buf_clear(val);
    int rc = engine_get(c->srv->engine, argv[1].ptr, argv[1].len, val, NULL);
    if (rc == RK_ENOTFOUND) {
        reply_null(c);
    } else if (rc != RK_OK) {
        reply_storage_error(c, rc, "read");
    } else {
        reply_bulk(c, val->base ? val->base : "", val->len);
    }
}

/* RINGKV.GETALL key on a node that is not in a cluster: one version, so
 * [context "", [[value, hlc, unix ms]]] or [context "", []] (cluster.c
 * answers it from the merged object in a cluster). */
static void cmd_getall(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    struct rk_buf *val = &c->srv->scratch;
    struct engine_meta m;
    /* the content type, when the caller wants it (http.c) */
    char ct[sizeof(c->ropts.ctype)];
    size_t ctlen = 0;
    if (c->ropts.want_ctype) {
        rk_buf_clear(val);
        struct engine_meta raw;
        if (engine_get(c->srv->engine, argv[1].ptr, argv[1].len, val, &raw) ==
                RK_OK &&
            !replica_meta_is_object(&raw) &&
            (raw.timestamp & REPLICA_META_CTYPE) && val->len > 0 &&
            dvv_ctype_valid(val->base, val->len)) {
            ctlen = (unsigned char)val->base[0];
            memcpy(ct, val->base + 1, ctlen);
        }
    }
    int found = key_lookup(c, &argv[1], val, &m);
    if (found < 0) {
        return;
    }
    reply_array(c, 2);
    reply_bulk(c, "", 0);
    reply_array(c, (size_t)found);
    if (found) {
        reply_array(c, c->ropts.want_ctype ? 4 : 3);
        reply_bulk(c, val->base ? val->base : "", val->len);
        reply_int(c, (int64_t)m.timestamp);
        reply_int(c, (int64_t)hlc_physical_ms(m.timestamp));
        if (c->ropts.want_ctype && ctlen) {
            reply_bulk(c, ct, ctlen);
        } else if (c->ropts.want_ctype) {
            reply_null(c);
        }
    }
}

/* Whether a client's causal context parses (standalone RINGKV.PUT/DEL:
 * there are no siblings to supersede, but a bad context is still an
 * error); replies with the error when not. */
static bool context_ok(struct client *c, const struct resp_arg *arg)
{
    struct dvv_obj ctx;
    dvv_init(&ctx);
    int rc = dvv_context_decode(&ctx, arg->ptr, arg->len);
    dvv_fini(&ctx);
    if (rc != RK_OK) {
        reply_error(c, rc == RK_EINVAL
                           ? "ERR invalid causal context (pass the context "
                             "RINGKV.GETALL returned, or an empty string)"
                           : "ERR out of memory");
    }
    return rc == RK_OK;
}

/* RINGKV.PUT key context value on a node that is not in a cluster: the
 * context is checked and the value stored (there are no siblings here). */
static void cmd_ringkv_put(struct client *c,
                           size_t argc,
                           const struct resp_arg *argv)
{
    (void)argc;
    if (!context_ok(c, &argv[2])) {
        return;
    }
    if (key_store(c, &argv[1], argv[3].ptr, argv[3].len, 0)) {
        reply_ok(c);
    }
}

/* RINGKV.DEL key context on a node that is not in a cluster: the context
 * is checked and the key deleted (1 when it existed, else 0). */
static void cmd_ringkv_del(struct client *c,
                           size_t argc,
                           const struct resp_arg *argv)
{
    (void)argc;
    if (!context_ok(c, &argv[2])) {
        return;
    }
    int d = key_delete(c, &argv[1]);
    if (d >= 0) {
        reply_int(c, d);
    }
}

static void cmd_dbsize(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    struct engine_stats st;
    engine_stats(c->srv->engine, &st);
    uint64_t tombs = 0;
    if (c->srv->cluster && !c->srv->cluster_exec) {
        /* Node-local, without replicated delete markers (O(keys)). */
        engine_foreach(c->srv->engine, count_tombstones_cb, &tombs);
    }
    reply_int(c, (int64_t)(st.live_keys - tombs));
}

static void cmd_flushall(struct client *c,
                         size_t argc,
                         const struct resp_arg *argv)
{
    struct server *s = c->srv;
    if (argc > 2 || (argc == 2 && !arg_is(&argv[1], "ASYNC") &&
                     !arg_is(&argv[1], "SYNC"))) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    if (!s->cfg->enable_flushall) {
        reply_error(c,
                    "ERR FLUSHALL and FLUSHDB are disabled on this server; "
                    "start ringkvd with --enable-flushall yes to allow "
                    "them");
        return;
    }
    uint64_t seq = 0;
    int rc = engine_clear(s->engine, &seq);
    if (rc != RK_OK) {
        reply_storage_error(c, rc, "flush");
        return;
    }
    note_write(c, seq);
    rk_log(RK_LOG_INFO, "flushall", "client=%s", c->addr);
    reply_ok(c);
}

/* ---- server commands --------------------------------------------------- */

static void cmd_info(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct rk_buf out;
    rk_buf_init(&out);
    if (argc == 1) {
        info_render(c->srv, c, "default", &out);
    }
    for (size_t i = 1; i < argc; i++) {
        char sec[64];
        size_t n =
            argv[i].len < sizeof(sec) - 1 ? argv[i].len : sizeof(sec) - 1;
        for (size_t j = 0; j < n; j++) {
            sec[j] = (char)tolower((unsigned char)argv[i].ptr[j]);
        }
        sec[n] = '\0';
        info_render(c->srv, c, sec, &out);
    }
    if (c->proto == 3) {
        resp_w_verbatim(&c->obuf, 3, "txt", out.base ? out.base : "", out.len);
    } else {
        reply_bulk(c, out.base ? out.base : "", out.len);
    }
    rk_buf_fini(&out);
}

struct config_reply
{
    struct client *c;
    struct rk_buf names; /* NUL-separated names already emitted */
    size_t n;
    struct rk_buf body; /* replies written into a side buffer */
};

static void config_get_cb(void *data, const char *name, const char *value)
{
    struct config_reply *cr = data;
    /* Skip duplicates when several patterns match the same name. */
    for (size_t o = 0; o < cr->names.len;) {
        const char *nm = cr->names.base + o;
        if (strcmp(nm, name) == 0) {
            return;
        }
        o += strlen(nm) + 1;
    }
    rk_buf_append(&cr->names, name, strlen(name) + 1);
    resp_w_bulk(&cr->body, name, strlen(name));
    resp_w_bulk(&cr->body, value, strlen(value));
    cr->n++;
}

static void cmd_config(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    struct server *s = c->srv;
    const struct resp_arg *sub = &argv[1];
    if (arg_is(sub, "GET") && argc >= 3) {
        struct config_reply cr = {c, {0}, 0, {0}};
        for (size_t i = 2; i < argc; i++) {
            config_each(s->cfg, argv[i].ptr, argv[i].len, config_get_cb, &cr);
        }
        reply_map(c, cr.n);
        rk_buf_append(&c->obuf, cr.body.base ? cr.body.base : "", cr.body.len);
        rk_buf_fini(&cr.names);
        rk_buf_fini(&cr.body);
    } else if (arg_is(sub, "SET") && argc >= 4 && argc % 2 == 0) {
        static const char *settable[] = {
            "loglevel",     "maxclients", "timeout", "hz", "enable-flushall",
            "requirepass",  "n",          "r",       "w",  "request-timeout-ms",
            "log-requests", "slow-log-ms"};
        for (size_t i = 2; i < argc; i += 2) {
            char name[64], value[512];
            if (argv[i].len >= sizeof(name) ||
                argv[i + 1].len >= sizeof(value)) {
                reply_error(c, "ERR CONFIG SET failed: argument too long");
                return;
            }
            memcpy(name, argv[i].ptr, argv[i].len);
            name[argv[i].len] = '\0';
            memcpy(value, argv[i + 1].ptr, argv[i + 1].len);
            value[argv[i + 1].len] = '\0';
            bool ok = false;
            for (size_t k = 0; k < sizeof(settable) / sizeof(settable[0]);
                 k++) {
                ok = ok || strcasecmp(name, settable[k]) == 0;
            }
            if (!ok) {
                reply_errorf(c,
                             "ERR Unknown option or number of arguments "
                             "for CONFIG SET - '%s'",
                             name);
                return;
            }
            struct rk_config tmp = *s->cfg;
            char why[600];
            if (config_set(&tmp, name, value, why, sizeof(why)) != RK_OK) {
                reply_errorf(c,
                             "ERR CONFIG SET failed (possibly related to "
                             "argument '%s') - %s",
                             name, why);
                return;
            }
            bool hz_changed = tmp.hz != s->cfg->hz;
            *s->cfg = tmp;
            rk_log_set_level(s->cfg->loglevel);
            if (hz_changed) {
                server_rearm_tick(s);
            }
        }
        cluster_config_changed(s);
        reply_ok(c);
    } else if (arg_is(sub, "RESETSTAT") && argc == 2) {
        memset(&s->stats, 0, sizeof(s->stats));
        reply_ok(c);
    } else if (arg_is(sub, "HELP") && argc == 2) {
        static const char *help[] = {
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            ("    Return parameters matching the glob-like <pattern> and "
             "their values."),
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "HELP",
            "    Print this help.",
        };
        reply_lines(c, help, sizeof(help) / sizeof(help[0]));
    } else {
        reply_bad_subcommand(c, sub, "CONFIG");
    }
}

static void cmd_time(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char a[32], b[32];
    int na = snprintf(a, sizeof(a), "%lld", (long long)ts.tv_sec);
    int nb = snprintf(b, sizeof(b), "%ld", ts.tv_nsec / 1000);
    reply_array(c, 2);
    reply_bulk(c, a, (size_t)na);
    reply_bulk(c, b, (size_t)nb);
}

static void cmd_save(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    int rc = engine_sync(c->srv->engine);
    if (rc != RK_OK) {
        reply_storage_error(c, rc, "sync");
        return;
    }
    reply_ok(c);
}

static void cmd_shutdown(struct client *c,
                         size_t argc,
                         const struct resp_arg *argv)
{
    for (size_t i = 1; i < argc; i++) {
        if (!arg_is(&argv[i], "NOSAVE") && !arg_is(&argv[i], "SAVE") &&
            !arg_is(&argv[i], "NOW") && !arg_is(&argv[i], "FORCE")) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    rk_log(RK_LOG_INFO, "shutdown_requested", "client=%s", c->addr);
    c->close_after_reply = true;
    server_shutdown(c->srv, "SHUTDOWN"); /* deferred to the next tick */
}

/* ---- transactions ------------------------------------------------------ */

void multi_reset(struct client *c)
{
    for (size_t i = 0; i < c->mq_len; i++) {
        rk_free(c->mq[i].argv);
    }
    rk_free(c->mq);
    c->mq = NULL;
    c->mq_len = c->mq_cap = 0;
    c->in_multi = false;
    c->multi_dirty = false;
    while (c->watched) {
        struct watched_key *w = c->watched;
        c->watched = w->next;
        rk_free(w);
    }
    c->watch_dirty = false;
}

static bool multi_queue(struct client *c,
                        const struct command *cmd,
                        size_t argc,
                        const struct resp_arg *argv)
{
    if (c->mq_len == c->mq_cap) {
        size_t cap = c->mq_cap ? c->mq_cap * 2 : 8;
        struct queued_cmd *q = rk_realloc(c->mq, cap * sizeof(*q));
        if (q == NULL) {
            return false;
        }
        c->mq = q;
        c->mq_cap = cap;
    }
    size_t bytes = argc * sizeof(struct resp_arg);
    for (size_t i = 0; i < argc; i++) {
        bytes += argv[i].len;
    }
    struct resp_arg *copy = rk_malloc(bytes ? bytes : 1);
    if (copy == NULL) {
        return false;
    }
    char *p = (char *)(copy + argc);
    for (size_t i = 0; i < argc; i++) {
        memcpy(p, argv[i].ptr, argv[i].len);
        copy[i].ptr = p;
        copy[i].len = argv[i].len;
        p += argv[i].len;
    }
    c->mq[c->mq_len].cmd = cmd;
    c->mq[c->mq_len].argc = argc;
    c->mq[c->mq_len].argv = copy;
    c->mq_len++;
    return true;
}

static void cmd_multi(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    if (c->in_multi) {
        reply_error(c, "ERR MULTI calls can not be nested");
        return;
    }
    c->in_multi = true;
    c->multi_dirty = false;
    reply_ok(c);
}

static void cmd_discard(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    if (!c->in_multi) {
        reply_error(c, "ERR DISCARD without MULTI");
        return;
    }
    multi_reset(c);
    reply_ok(c);
}

/* True when some watched key changed since WATCH. */
static bool watch_broken(struct client *c)
{
    if (c->watch_dirty) {
        return true;
    }
    for (struct watched_key *w = c->watched; w; w = w->next) {
        struct resp_arg k = {w->key, w->klen};
        struct engine_meta m;
        int rc = engine_get(c->srv->engine, k.ptr, k.len, NULL, &m);
        bool exists = rc == RK_OK && !is_expired(&m, server_now_ms());
        if (rc != RK_OK && rc != RK_ENOTFOUND) {
            return true;
        }
        if (exists != w->existed || (exists && m.timestamp != w->timestamp)) {
            return true;
        }
    }
    return false;
}

static void cmd_exec(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    if (!c->in_multi) {
        reply_error(c, "ERR EXEC without MULTI");
        return;
    }
    if (c->multi_dirty) {
        multi_reset(c);
        reply_error(c,
                    "EXECABORT Transaction discarded because of previous "
                    "errors.");
        return;
    }
    if (watch_broken(c)) {
        multi_reset(c);
        resp_w_null_array(&c->obuf, c->proto);
        return;
    }
    /* One loop thread runs the whole queue: nothing interleaves. */
    struct queued_cmd *q = c->mq;
    size_t n = c->mq_len;
    c->mq = NULL;
    c->mq_len = c->mq_cap = 0;
    c->in_multi = false;
    reply_array(c, n);
    for (size_t i = 0; i < n; i++) {
        c->last_cmd = q[i].cmd->name;
        q[i].cmd->proc(c, q[i].argc, q[i].argv);
        rk_free(q[i].argv);
    }
    rk_free(q);
    multi_reset(c);
}

static void cmd_watch(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    if (c->in_multi) {
        reply_error(c, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        struct engine_meta m;
        int rc = engine_get(c->srv->engine, argv[i].ptr, argv[i].len, NULL, &m);
        struct watched_key *w = rk_malloc(sizeof(*w) + argv[i].len);
        if (w == NULL) {
            c->watch_dirty = true;
            continue;
        }
        w->existed = rc == RK_OK && !is_expired(&m, server_now_ms());
        w->timestamp = rc == RK_OK ? m.timestamp : 0;
        if (rc != RK_OK && rc != RK_ENOTFOUND) {
            c->watch_dirty = true;
        }
        w->klen = argv[i].len;
        memcpy(w->key, argv[i].ptr, argv[i].len);
        w->next = c->watched;
        c->watched = w;
    }
    reply_ok(c);
}

static void cmd_unwatch(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    while (c->watched) {
        struct watched_key *w = c->watched;
        c->watched = w->next;
        rk_free(w);
    }
    c->watch_dirty = false;
    reply_ok(c);
}

/* ---- COMMAND ------------------------------------------------------------ */

static void cmd_command(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv);

static const struct command config_subcommands[] = {
    {"config|get", NULL, -3, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0",
     "Returns the effective values of configuration "
     "parameters.",
     "O(N) when N is the number of configuration parameters "
     "provided",
     NULL},
    {"config|set", NULL, -4, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0", "Sets configuration parameters in-flight.",
     "O(N) when N is the number of configuration parameters provided", NULL},
    {"config|resetstat", NULL, 2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0", "Resets the server's statistics.", "O(1)", NULL},
    {"config|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "5.0.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct command client_subcommands[] = {
    {"client|id", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "5.0.0", "Returns the unique client ID of the connection.", "O(1)", NULL},
    {"client|getname", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "2.6.9", "Returns the name of the connection.", "O(1)", NULL},
    {"client|setname", NULL, 3, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "2.6.9", "Sets the connection name.", "O(1)", NULL},
    {"client|setinfo", NULL, 4, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "7.2.0",
     "Sets information specific to the client or "
     "connection.",
     "O(1)", NULL},
    {"client|list", NULL, -2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "connection", "2.4.0", "Lists open connections.",
     "O(N) where N is the number of client connections", NULL},
    {"client|info", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "6.2.0", "Returns information about the connection.", "O(1)", NULL},
    {"client|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "5.0.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct command command_subcommands[] = {
    {"command|count", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.8.13", "Returns a count of commands.", "O(1)", NULL},
    {"command|docs", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "7.0.0",
     "Returns documentary information about one, multiple or all "
     "commands.",
     "O(N) where N is the number of commands to look up", NULL},
    {"command|info", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.8.13", "Returns information about one, multiple or all commands.",
     "O(N) where N is the number of commands to look up", NULL},
    {"command|list", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "7.0.0", "Returns a list of command names.",
     "O(N) where N is the total number of commands", NULL},
    {"command|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "5.0.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

#define RO   (CMD_READONLY | CMD_FAST)
#define WR   (CMD_WRITE)
#define WRF  (CMD_WRITE | CMD_FAST)
#define CONN (CMD_NOAUTH | CMD_LOADING | CMD_STALE | CMD_FAST)

/* The command table is data, as in Redis (one JSON file per command
 * there); kept sorted by name for binary search. */
static const struct command g_commands[] = {
    {"append", cmd_append, 3, (WR | CMD_CREATE), 1, 1, 1, "string", "2.0.0",
     "Appends a string to the value of a key. Creates the key if it doesn't "
     "exist.",
     "O(1)", NULL},
    {"auth", cmd_auth, -2, CONN, 0, 0, 0, "connection", "1.0.0",
     "Authenticates the connection.",
     "O(N) where N is the number of "
     "passwords defined for the user",
     NULL},
    {"client", cmd_client, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "2.4.0", "A container for client connection commands.",
     "Depends on subcommand.", client_subcommands},
    {"command", cmd_command, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.8.13", "Returns detailed information about all commands.",
     "O(N) where N is the total number of Redis commands", command_subcommands},
    {"config", cmd_config, -2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0", "A container for server configuration commands.",
     "Depends on subcommand.", config_subcommands},
    {"dbsize", cmd_dbsize, 1, RO, 0, 0, 0, "server", "1.0.0",
     "Returns the number of keys in the database (node-local).", "O(1)", NULL},
    {"decr", cmd_decr, 2, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Decrements the integer value of a key by one.", "O(1)", NULL},
    {"decrby", cmd_decrby, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Decrements a number from the integer value of a key.", "O(1)", NULL},
    {"del", cmd_del, -2, WR, 1, -1, 1, "generic", "1.0.0",
     "Deletes one or more keys.", "O(N) where N is the number of keys", NULL},
    {"discard", cmd_discard, 1, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 0, 0, 0,
     "transactions", "2.0.0", "Discards a transaction.",
     "O(N), when N is the number of queued commands", NULL},
    {"echo", cmd_echo, 2, CMD_FAST, 0, 0, 0, "connection", "1.0.0",
     "Returns the given string.", "O(1)", NULL},
    {"exec", cmd_exec, 1, CMD_NOMULTI | CMD_LOADING, 0, 0, 0, "transactions",
     "1.2.0", "Executes all commands in a transaction.",
     "Depends on commands in the transaction", NULL},
    {"exists", cmd_exists, -2, RO, 1, -1, 1, "generic", "1.0.0",
     "Determines whether one or more keys exist.",
     "O(N) where N is the number of keys to check.", NULL},
    {"expire", cmd_expire, -3, WRF, 1, 1, 1, "generic", "1.0.0",
     "Sets the expiration time of a key in seconds.", "O(1)", NULL},
    {"expireat", cmd_expireat, -3, WRF, 1, 1, 1, "generic", "1.2.0",
     "Sets the expiration time of a key to a Unix timestamp.", "O(1)", NULL},
    {"expiretime", cmd_expiretime, 2, RO, 1, 1, 1, "generic", "7.0.0",
     "Returns the expiration time of a key as a Unix timestamp.", "O(1)", NULL},
    {"flushall", cmd_flushall, -1, WR, 0, 0, 0, "server", "1.0.0",
     "Removes all keys (requires --enable-flushall yes).",
     "O(N) where N is the total number of keys", NULL},
    {"flushdb", cmd_flushall, -1, WR, 0, 0, 0, "server", "1.0.0",
     "Removes all keys (same as FLUSHALL: one database).",
     "O(N) where N is the number of keys", NULL},
    {"get", cmd_get, 2, RO, 1, 1, 1, "string", "1.0.0",
     "Returns the string value of a key.", "O(1)", NULL},
    {"getdel", cmd_getdel, 2, WRF, 1, 1, 1, "string", "6.2.0",
     "Returns the string value of a key after deleting the key.", "O(1)", NULL},
    {"getex", cmd_getex, -2, WRF, 1, 1, 1, "string", "6.2.0",
     "Returns the string value of a key after setting its expiration time.",
     "O(1)", NULL},
    {"getrange", cmd_getrange, 4, CMD_READONLY, 1, 1, 1, "string", "2.4.0",
     "Returns a substring of the string stored at a key.",
     "O(N) where N is the length of the returned string.", NULL},
    {"hello", cmd_hello, -1, CONN, 0, 0, 0, "connection", "6.0.0",
     "Handshakes with the server.", "O(1)", NULL},
    {"incr", cmd_incr, 2, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Increments the integer value of a key by one.", "O(1)", NULL},
    {"incrby", cmd_incrby, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Increments the integer value of a key by a number.", "O(1)", NULL},
    {"incrbyfloat", cmd_incrbyfloat, 3, (WRF | CMD_CREATE), 1, 1, 1, "string",
     "2.6.0", "Increment the floating point value of a key by a number.",
     "O(1)", NULL},
    {"info", cmd_info, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, "server", "1.0.0",
     "Returns information and statistics about the server.", "O(1)", NULL},
    {"keys", cmd_keys, 2, CMD_READONLY, 0, 0, 0, "generic", "1.0.0",
     "Returns all key names that match a pattern (node-local).",
     "O(N) with N being the number of keys", NULL},
    {"mget", cmd_mget, -2, RO, 1, -1, 1, "string", "1.0.0",
     "Atomically returns the string values of one or more keys.",
     "O(N) where N is the number of keys to retrieve.", NULL},
    {"mset", cmd_mset, -3, (WR | CMD_CREATE), 1, -1, 2, "string", "1.0.1",
     "Atomically creates or modifies the string values of one or more keys.",
     "O(N) where N is the number of keys to set.", NULL},
    {"msetnx", cmd_msetnx, -3, (WR | CMD_CREATE), 1, -1, 2, "string", "1.0.1",
     "Atomically modifies the string values of one or more keys only when "
     "all keys don't exist.",
     "O(N) where N is the number of keys to set.", NULL},
    {"multi", cmd_multi, 1, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 0, 0, 0,
     "transactions", "1.2.0", "Starts a transaction.", "O(1)", NULL},
    {"persist", cmd_persist, 2, WRF, 1, 1, 1, "generic", "2.2.0",
     "Removes the expiration time of a key.", "O(1)", NULL},
    {"pexpire", cmd_pexpire, -3, WRF, 1, 1, 1, "generic", "2.6.0",
     "Sets the expiration time of a key in milliseconds.", "O(1)", NULL},
    {"pexpireat", cmd_pexpireat, -3, WRF, 1, 1, 1, "generic", "2.6.0",
     "Sets the expiration time of a key to a Unix milliseconds timestamp.",
     "O(1)", NULL},
    {"pexpiretime", cmd_pexpiretime, 2, RO, 1, 1, 1, "generic", "7.0.0",
     "Returns the expiration time of a key as a Unix milliseconds "
     "timestamp.",
     "O(1)", NULL},
    {"ping", cmd_ping, -1, CMD_FAST | CMD_STALE, 0, 0, 0, "connection", "1.0.0",
     "Returns the server's liveliness response.", "O(1)", NULL},
    {"psetex", cmd_psetex, 4, (WR | CMD_CREATE), 1, 1, 1, "string", "2.6.0",
     "Sets both string value and expiration time in milliseconds of a key.",
     "O(1)", NULL},
    {"pttl", cmd_pttl, 2, RO, 1, 1, 1, "generic", "2.6.0",
     "Returns the expiration time in milliseconds of a key.", "O(1)", NULL},
    {"quit", cmd_quit, -1, CONN | CMD_NOMULTI, 0, 0, 0, "connection", "1.0.0",
     "Closes the connection.", "O(1)", NULL},
    {"randomkey", cmd_randomkey, 1, CMD_READONLY, 0, 0, 0, "generic", "1.0.0",
     "Returns a random key name from the database (node-local).", "O(1)", NULL},
    {"ringkv.cluster", cluster_cmd, -2, CMD_ADMIN | CMD_NOMULTI | CMD_NOTX, 0,
     0, 0, "cluster", "0.1.0",
     "Cluster membership: JOIN HOST:PEERPORT, LEAVE, REMOVE NODE, STATUS.",
     "O(N) where N is the number of members", NULL},
    {"ringkv.del", cmd_ringkv_del, 3, WR | CMD_NOTX, 1, 1, 1, "cluster",
     "0.1.0", "Deletes the siblings a causal context covers (a tombstone).",
     "O(siblings)", NULL},
    {"ringkv.getall", cmd_getall, 2, RO | CMD_NOTX, 1, 1, 1, "cluster", "0.1.0",
     "Returns every sibling of a key with its causal context.", "O(siblings)",
     NULL},
    {"ringkv.localget", cmd_localget, 2, CMD_READONLY | CMD_LOCAL, 1, 1, 1,
     "cluster", "0.1.0",
     "Returns this node's stored value of a key, without coordination.", "O(1)",
     NULL},
    {"ringkv.localobj", cmd_localobj, 2, CMD_READONLY | CMD_LOCAL, 1, 1, 1,
     "cluster", "0.1.0",
     "Returns this node's stored record of a key (the versioned object), "
     "without coordination.",
     "O(1)", NULL},
    {"ringkv.put", cmd_ringkv_put, 4, (WR | CMD_CREATE | CMD_NOTX), 1, 1, 1,
     "cluster", "0.1.0",
     "Writes a value that supersedes the siblings a causal context covers.",
     "O(siblings)", NULL},
    {"save", cmd_save, 1, CMD_ADMIN | CMD_NOMULTI | CMD_NOTX, 0, 0, 0, "server",
     "1.0.0", "Makes every write so far durable (fsync).", "O(1)", NULL},
    {"scan", cmd_scan, -2, CMD_READONLY, 0, 0, 0, "generic", "2.8.0",
     "Iterates over the key names in the database (node-local cursor).",
     "O(1) for every call. O(N) for a complete iteration.", NULL},
    {"select", cmd_select, 2, CMD_LOADING | CMD_STALE | CMD_FAST, 0, 0, 0,
     "connection", "1.0.0", "Changes the selected database (only 0 exists).",
     "O(1)", NULL},
    {"set", cmd_set, -3, (WR | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Sets the string value of a key, ignoring its type. The key is created "
     "if it doesn't exist.",
     "O(1)", NULL},
    {"setex", cmd_setex, 4, (WR | CMD_CREATE), 1, 1, 1, "string", "2.0.0",
     "Sets the string value and expiration time of a key.", "O(1)", NULL},
    {"setnx", cmd_setnx, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Set the string value of a key only when the key doesn't exist.", "O(1)",
     NULL},
    {"shutdown", cmd_shutdown, -1,
     CMD_ADMIN | CMD_NOMULTI | CMD_NOTX | CMD_LOADING, 0, 0, 0, "server",
     "1.0.0",
     "Synchronously saves the database(s) to disk and "
     "shuts down the server.",
     "O(1)", NULL},
    {"strlen", cmd_strlen, 2, RO, 1, 1, 1, "string", "2.2.0",
     "Returns the length of a string value.", "O(1)", NULL},
    {"time", cmd_time, 1, CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.6.0", "Returns the server time.", "O(1)", NULL},
    {"ttl", cmd_ttl, 2, RO, 1, 1, 1, "generic", "1.0.0",
     "Returns the expiration time in seconds of a key.", "O(1)", NULL},
    {"type", cmd_type, 2, RO, 1, 1, 1, "generic", "1.0.0",
     "Determines the type of value stored at a key.", "O(1)", NULL},
    {"unlink", cmd_del, -2, WRF, 1, -1, 1, "generic", "4.0.0",
     "Asynchronously deletes one or more keys.",
     "O(1) for each key removed regardless of its size.", NULL},
    {"unwatch", cmd_unwatch, 1, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 0, 0, 0,
     "transactions", "2.2.0", "Forgets about watched keys of a transaction.",
     "O(1)", NULL},
    {"watch", cmd_watch, -2, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 1, -1, 1,
     "transactions", "2.2.0",
     "Monitors changes to keys to determine the execution of a transaction.",
     "O(1) for every key.", NULL},
};

#define N_COMMANDS (sizeof(g_commands) / sizeof(g_commands[0]))

size_t command_count(void)
{
    return N_COMMANDS;
}

size_t command_index(const struct command *cmd)
{
    return (size_t)(cmd - g_commands);
}

const struct command *command_at(size_t i)
{
    return i < N_COMMANDS ? &g_commands[i] : NULL;
}

const struct command *command_lookup(const char *name, size_t len)
{
    char low[32];
    if (len == 0 || len >= sizeof(low)) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        low[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    low[len] = '\0';
    size_t lo = 0, hi = N_COMMANDS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(low, g_commands[mid].name);
        if (cmp == 0) {
            return &g_commands[mid];
        }
        if (cmp < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

static void reply_flag_set(struct client *c, uint32_t flags)
{
    static const struct
    {
        uint32_t bit;
        const char *name;
    } names[] = {
        {CMD_WRITE, "write"},      {CMD_READONLY, "readonly"},
        {CMD_ADMIN, "admin"},      {CMD_NOAUTH, "no_auth"},
        {CMD_NOMULTI, "no_multi"}, {CMD_LOADING, "loading"},
        {CMD_STALE, "stale"},      {CMD_FAST, "fast"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n += (flags & names[i].bit) != 0;
    }
    resp_w_set(&c->obuf, c->proto, n);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (flags & names[i].bit) {
            reply_simple(c, names[i].name);
        }
    }
}

static size_t n_subcommands(const struct command *cmd)
{
    size_t n = 0;
    while (cmd->subcommands && cmd->subcommands[n].name) {
        n++;
    }
    return n;
}

static void reply_command_info(struct client *c, const struct command *cmd)
{
    reply_array(c, 10);
    reply_bulk_str(c, cmd->name);
    reply_int(c, cmd->arity);
    reply_flag_set(c, cmd->flags);
    reply_int(c, cmd->first_key);
    reply_int(c, cmd->last_key);
    reply_int(c, cmd->key_step);
    char cat[32];
    snprintf(cat, sizeof(cat), "@%s", cmd->group);
    bool write = cmd->flags & CMD_WRITE, read = cmd->flags & CMD_READONLY;
    resp_w_set(&c->obuf, c->proto, 1 + (write || read));
    reply_simple(c, cat);
    if (write || read) {
        reply_simple(c, write ? "@write" : "@read");
    }
    reply_array(c, 0); /* tips */
    reply_array(c, 0); /* key specs */
    size_t ns = n_subcommands(cmd);
    reply_array(c, ns);
    for (size_t i = 0; i < ns; i++) {
        reply_command_info(c, &cmd->subcommands[i]);
    }
}

static void reply_command_docs(struct client *c, const struct command *cmd)
{
    size_t ns = n_subcommands(cmd);
    reply_map(c, 4 + (ns > 0));
    reply_bulk_str(c, "summary");
    reply_bulk_str(c, cmd->summary);
    reply_bulk_str(c, "since");
    reply_bulk_str(c, cmd->since);
    reply_bulk_str(c, "group");
    reply_bulk_str(c, cmd->group);
    reply_bulk_str(c, "complexity");
    reply_bulk_str(c, cmd->complexity);
    if (ns) {
        reply_bulk_str(c, "subcommands");
        reply_map(c, ns);
        for (size_t i = 0; i < ns; i++) {
            reply_bulk_str(c, cmd->subcommands[i].name);
            reply_command_docs(c, &cmd->subcommands[i]);
        }
    }
}

static void cmd_command(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    if (argc == 1) {
        reply_array(c, N_COMMANDS);
        for (size_t i = 0; i < N_COMMANDS; i++) {
            reply_command_info(c, &g_commands[i]);
        }
        return;
    }
    const struct resp_arg *sub = &argv[1];
    if (arg_is(sub, "COUNT") && argc == 2) {
        reply_int(c, (int64_t)N_COMMANDS);
    } else if (arg_is(sub, "LIST")) {
        /* COMMAND LIST [FILTERBY MODULE m | ACLCAT cat | PATTERN p] */
        const struct resp_arg *pat = NULL, *cat = NULL;
        bool module = false;
        if (argc == 5 && arg_is(&argv[2], "FILTERBY")) {
            if (arg_is(&argv[3], "PATTERN")) {
                pat = &argv[4];
            } else if (arg_is(&argv[3], "ACLCAT")) {
                cat = &argv[4];
            } else if (arg_is(&argv[3], "MODULE")) {
                module = true;
            } else {
                reply_error(c, ERR_SYNTAX);
                return;
            }
        } else if (argc != 2) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
        bool keep[N_COMMANDS];
        size_t n = 0;
        for (size_t i = 0; i < N_COMMANDS; i++) {
            const struct command *cmd = &g_commands[i];
            bool k = !module;
            if (k && pat) {
                k = rk_glob_match(pat->ptr, pat->len, cmd->name,
                                  strlen(cmd->name), true);
            }
            if (k && cat) {
                const char *cn = cat->ptr;
                size_t cl = cat->len;
                if (cl > 0 && cn[0] == '@') {
                    cn++;
                    cl--;
                }
                bool w = cmd->flags & CMD_WRITE, r = cmd->flags & CMD_READONLY;
                k = (cl == strlen(cmd->group) &&
                     strncasecmp(cn, cmd->group, cl) == 0) ||
                    (w && cl == 5 && strncasecmp(cn, "write", 5) == 0) ||
                    (r && cl == 4 && strncasecmp(cn, "read", 4) == 0) ||
                    ((cmd->flags & CMD_FAST) && cl == 4 &&
                     strncasecmp(cn, "fast", 4) == 0) ||
                    (cmd->first_key && cl == 8 &&
                     strncasecmp(cn, "keyspace", 8) == 0);
            }
            keep[i] = k;
            n += k;
        }
        reply_array(c, n);
        for (size_t i = 0; i < N_COMMANDS; i++) {
            if (keep[i]) {
                reply_bulk_str(c, g_commands[i].name);
            }
        }
    } else if (arg_is(sub, "INFO")) {
        if (argc == 2) {
            reply_array(c, N_COMMANDS);
            for (size_t i = 0; i < N_COMMANDS; i++) {
                reply_command_info(c, &g_commands[i]);
            }
            return;
        }
        reply_array(c, argc - 2);
        for (size_t i = 2; i < argc; i++) {
            const struct command *cmd =
                command_lookup(argv[i].ptr, argv[i].len);
            if (cmd) {
                reply_command_info(c, cmd);
            } else {
                resp_w_null_array(&c->obuf, c->proto);
            }
        }
    } else if (arg_is(sub, "HELP")) {
        static const char *help[] = {
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "LIST",
            "    Return a list of all commands.",
            "HELP",
            "    Print this help.",
        };
        reply_lines(c, help, sizeof(help) / sizeof(help[0]));
    } else if (arg_is(sub, "DOCS")) {
        size_t n = 0;
        if (argc == 2) {
            n = N_COMMANDS;
        } else {
            for (size_t i = 2; i < argc; i++) {
                n += command_lookup(argv[i].ptr, argv[i].len) != NULL;
            }
        }
        reply_map(c, n);
        for (size_t i = 0; i < (argc == 2 ? N_COMMANDS : argc - 2); i++) {
            const struct command *cmd =
                argc == 2 ? &g_commands[i]
                          : command_lookup(argv[i + 2].ptr, argv[i + 2].len);
            if (cmd) {
                reply_bulk_str(c, cmd->name);
                reply_command_docs(c, cmd);
            }
        }
    } else {
        reply_bad_subcommand(c, sub, "COMMAND");
    }
}

/* ---- dispatch ------------------------------------------------------------ */

static void reply_unknown_command(struct client *c,
                                  size_t argc,
                                  const struct resp_arg *argv)
{
    char args[512];
    size_t o = 0;
    args[0] = '\0';
    for (size_t i = 1; i < argc && o < 128; i++) {
        int room = 128 - (int)o;
        int n = snprintf(
            args + o, sizeof(args) - o, "'%.*s' ",
            (int)(argv[i].len < (size_t)room ? argv[i].len : (size_t)room),
            argv[i].ptr);
        if (n < 0) {
            break;
        }
        o += (size_t)n;
        if (o >= sizeof(args)) {
            o = sizeof(args) - 1;
            break;
        }
    }
    reply_errorf(c, "ERR unknown command '%.*s', with args beginning with: %s",
                 (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].ptr,
                 args);
}

/* Finds the subcommand entry ("config|get") named by `a`, or NULL. */
static const struct command *subcommand_lookup(const struct command *cmd,
                                               const struct resp_arg *a)
{
    for (const struct command *sc = cmd->subcommands; sc && sc->name; sc++) {
        const char *bar = strchr(sc->name, '|');
        const char *n = bar ? bar + 1 : sc->name;
        if (strlen(n) == a->len && strncasecmp(n, a->ptr, a->len) == 0) {
            return sc;
        }
    }
    return NULL;
}

/*
 * Rejects a command before it runs.  Inside MULTI the transaction is
 * flagged, and EXEC itself being rejected aborts it (Redis rejectCommand).
 */
static void reject(struct client *c, const struct command *cmd, const char *msg)
{
    if (c->srv->cfg->log_requests) {
        log_request(c, cmd ? cmd->name : "unknown", 0, 0, true);
    }
    if (cmd && c->srv->cmdstats) {
        c->srv->cmdstats[command_index(cmd)].calls++;
        c->srv->cmdstats[command_index(cmd)].errors++;
    }
    if (c->in_multi) {
        if (cmd && cmd->proc == cmd_exec) {
            const char *m = strncmp(msg, "ERR ", 4) == 0 ? msg + 4 : msg;
            multi_reset(c);
            reply_errorf(c, "EXECABORT Transaction discarded because of: %s",
                         m);
            return;
        }
        c->multi_dirty = true;
    }
    reply_error(c, msg);
}

static bool arity_ok(int arity, size_t argc)
{
    return arity > 0 ? argc == (size_t)arity : argc >= (size_t)-arity;
}

/*
 * Whether a command may start while earlier coordinated commands of the
 * same client are still in flight (cluster.c pipelines those): a keyed
 * command that will be routed and can fail only inside its handler.
 * Anything else waits its turn (cluster_defer), so replies stay in order.
 */
static bool pipelineable(struct client *c,
                         const struct command *cmd,
                         size_t argc,
                         const struct resp_arg *argv)
{
    if (cmd == NULL || !c->authed || c->in_multi ||
        !arity_ok(cmd->arity, argc) || cmd->subcommands ||
        cmd->first_key <= 0 ||
        (cmd->flags & (CMD_NOMULTI | CMD_LOCAL | CMD_NOTX))) {
        return false;
    }
    size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
    for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
         i += (size_t)cmd->key_step) {
        if (argv[i].len == 0 || argv[i].len > ENGINE_DEFAULT_MAX_KEY) {
            return false;
        }
    }
    const char *why;
    return cluster_routes(c->srv, c, cmd, &why) && why == NULL;
}

void command_dispatch(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    char msg[512];
    const struct command *cmd = command_lookup(argv[0].ptr, argv[0].len);
    if (cluster_client_busy(c) && !pipelineable(c, cmd, argc, argv)) {
        cluster_defer(c, argc, argv);
        return;
    }
    if (cmd == NULL) {
        if (!c->authed) {
            reject(c, NULL, ERR_NOAUTH);
            return;
        }
        if (c->in_multi) {
            c->multi_dirty = true;
        }
        reply_unknown_command(c, argc, argv);
        if (c->srv->cfg->log_requests) {
            log_request(c, "unknown", argc > 1 ? argc - 1 : 0, 0, true);
        }
        return;
    }
    if (!c->authed && !(cmd->flags & CMD_NOAUTH)) {
        reject(c, cmd, ERR_NOAUTH);
        return;
    }
    if (!arity_ok(cmd->arity, argc)) {
        snprintf(msg, sizeof(msg),
                 "ERR wrong number of arguments for '%s' command", cmd->name);
        reject(c, cmd, msg);
        return;
    }
    if (cmd->subcommands && argc >= 2) {
        const struct command *sc = subcommand_lookup(cmd, &argv[1]);
        if (sc == NULL) {
            char up[32];
            size_t n = strlen(cmd->name) < sizeof(up) - 1 ? strlen(cmd->name)
                                                          : sizeof(up) - 1;
            for (size_t i = 0; i < n; i++) {
                up[i] = (char)toupper((unsigned char)cmd->name[i]);
            }
            up[n] = '\0';
            snprintf(
                msg, sizeof(msg), "ERR unknown subcommand '%.*s'. Try %s HELP.",
                (int)(argv[1].len > 128 ? 128 : argv[1].len), argv[1].ptr, up);
            reject(c, cmd, msg);
            return;
        }
        if (!arity_ok(sc->arity, argc)) {
            snprintf(msg, sizeof(msg),
                     "ERR wrong number of arguments for '%s' command",
                     sc->name);
            reject(c, cmd, msg);
            return;
        }
    }
    if (c->in_multi && (cmd->flags & CMD_NOTX)) {
        reject(c, cmd, "ERR Command not allowed inside a transaction");
        return;
    }
    if (cmd->first_key > 0 && (cmd->flags & CMD_CREATE)) {
        /* Refuse writes of empty keys before the command runs, so a
         * multi-key command never writes part of its keys; reads simply
         * find no such key. */
        size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
        for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
             i += (size_t)cmd->key_step) {
            if (argv[i].len == 0) {
                reject(c, cmd,
                       "ERR invalid key: ringkv does not support "
                       "empty keys");
                return;
            }
            if (argv[i].len > ENGINE_DEFAULT_MAX_KEY) {
                reject(c, cmd, "ERR invalid key: longer than 65536 bytes");
                return;
            }
        }
    }
    if (c->in_multi && !(cmd->flags & CMD_NOMULTI)) {
        if (!multi_queue(c, cmd, argc, argv)) {
            c->multi_dirty = true;
            reply_error(c, "ERR out of memory");
            return;
        }
        reply_simple(c, "QUEUED");
        return;
    }
    c->last_cmd = cmd->name;
    c->cur_cmd = cmd;
    if (c->srv->cmdstats) {
        c->srv->cmdstats[command_index(cmd)].calls++;
    }
    const char *why;
    if (cluster_routes(c->srv, c, cmd, &why)) {
        cluster_run(c, cmd, argc, argv);
        c->cur_cmd = NULL;
        return;
    }
    if (c->srv->cfg->log_requests) {
        struct cmd_stat *st =
            c->srv->cmdstats ? &c->srv->cmdstats[command_index(cmd)] : NULL;
        uint64_t errs = st ? st->errors : 0, t0 = server_mono_us();
        cmd->proc(c, argc, argv);
        log_request(c, cmd->name, argc > 1 ? argc - 1 : 0,
                    server_mono_us() - t0, st && st->errors != errs);
    } else {
        cmd->proc(c, argc, argv);
    }
    c->cur_cmd = NULL;
}

void log_request(struct client *c,
                 const char *cmd,
                 size_t nargs,
                 uint64_t us,
                 bool failed)
{
    rk_log(RK_LOG_INFO, "request",
           "command=%s args=%zu ms=%.3f result=%s client=%s", cmd, nargs,
           (double)us / 1000.0, failed ? "error" : "ok", c->addr);
}

/*
 * cmd/strings.c - string commands: GET SET SETNX SETEX PSETEX GETDEL GETEX DEL
 * EXISTS MGET MSET MSETNX STRLEN APPEND INCR* DECR* INCRBYFLOAT GETRANGE, with
 * Redis's semantics, reply types and error texts
 * (https://redis.io/docs/latest/commands/).  Split from commands.c
 * (issue 11 item 3); see cmd/internal.h.
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
#include "server/cmd/internal.h"
#include "server/internal.h"
#include "server/keyspace.h"

/* ---- string commands -------------------------------------------------- */

void cmd_get(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    if (c->ks->ops->view) {
        /* the coordinated keyspace holds the value: one copy, into the
         * reply (a chunked value is many MiB) */
        const char *v;
        size_t vlen;
        if (c->ks->ops->view(c->ks, argv[1].ptr, argv[1].len, &v, &vlen,
                             NULL) != RK_OK) {
            s->stats.keyspace_misses++;
            reply_null(c);
            return;
        }
        s->stats.keyspace_hits++;
        if (c->ks->ops->move_reply == NULL ||
            c->ks->ops->move_reply(c->ks, argv[1].ptr, argv[1].len, &c->obuf) !=
                RK_OK) {
            reply_bulk(c, v, vlen);
        }
        return;
    }
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, NULL);
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
    if (!cmd__arg_i64(a, &v)) {
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

void cmd_set(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    int flags = 0;
    uint64_t expire_at = 0;
    for (size_t i = 3; i < argc; i++) {
        const struct resp_arg *a = &argv[i];
        bool has_next = i + 1 < argc;
        int unit = 0;
        if (cmd__arg_is(a, "NX") && !(flags & SET_XX)) {
            flags |= SET_NX;
        } else if (cmd__arg_is(a, "XX") && !(flags & SET_NX)) {
            flags |= SET_XX;
        } else if (cmd__arg_is(a, "GET")) {
            flags |= SET_GET;
        } else if (cmd__arg_is(a, "KEEPTTL") && !(flags & SET_EXPIRE_ANY)) {
            flags |= SET_KEEPTTL;
        } else if (cmd__arg_is(a, "EX")) {
            unit = SET_EX;
        } else if (cmd__arg_is(a, "PX")) {
            unit = SET_PX;
        } else if (cmd__arg_is(a, "EXAT")) {
            unit = SET_EXAT;
        } else if (cmd__arg_is(a, "PXAT")) {
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
    struct ks_meta old;
    struct rk_buf *oldval = (flags & SET_GET) ? &s->scratch : NULL;
    int f = 0;
    if (flags & (SET_NX | SET_XX | SET_GET | SET_KEEPTTL)) {
        f = cmd__key_lookup(c, &argv[1], oldval, &old);
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
            if (cmd__key_delete(c, &argv[1]) < 0) {
                return;
            }
        } else if (!cmd__key_store(c, &argv[1], argv[2].ptr, argv[2].len,
                                   exp)) {
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

void cmd_setnx(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    int f = cmd__key_lookup(c, &argv[1], NULL, NULL);
    if (f < 0) {
        return;
    }
    if (f) {
        reply_int(c, 0);
        return;
    }
    if (cmd__key_store(c, &argv[1], argv[2].ptr, argv[2].len, 0)) {
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
    if (cmd__key_store(c, &argv[1], argv[3].ptr, argv[3].len, at)) {
        reply_ok(c);
    }
}

void cmd_setex(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    cmd_setex_common(c, argv, SET_EX, "setex");
}

void cmd_psetex(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    cmd_setex_common(c, argv, SET_PX, "psetex");
}

void cmd_getdel(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, NULL);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        reply_null(c);
        return;
    }
    if (cmd__key_delete(c, &argv[1]) < 0) {
        return;
    }
    reply_bulk(c, s->scratch.base, s->scratch.len);
}

void cmd_getex(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    int unit = 0;
    bool persist = false;
    uint64_t at = 0;
    for (size_t i = 2; i < argc; i++) {
        const struct resp_arg *a = &argv[i];
        int u = cmd__arg_is(a, "EX")     ? SET_EX
                : cmd__arg_is(a, "PX")   ? SET_PX
                : cmd__arg_is(a, "EXAT") ? SET_EXAT
                : cmd__arg_is(a, "PXAT") ? SET_PXAT
                                         : 0;
        if (u && !unit && !persist && i + 1 < argc) {
            unit = u;
            i++;
            if (!expire_arg_or_reply(c, u, &argv[i], "getex", &at)) {
                return;
            }
        } else if (cmd__arg_is(a, "PERSIST") && !unit && !persist) {
            persist = true;
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        reply_null(c);
        return;
    }
    if (unit && at <= server_now_ms()) {
        if (cmd__key_delete(c, &argv[1]) < 0) {
            return;
        }
    } else if ((unit && at != m.expire_at_ms) ||
               (persist && m.expire_at_ms != 0)) {
        if (!cmd__key_restore(c, &argv[1], s->scratch.base, s->scratch.len,
                              persist ? 0 : at, &m)) {
            return;
        }
    }
    reply_bulk(c, s->scratch.base, s->scratch.len);
}

void cmd_del(struct client *c, size_t argc, const struct resp_arg *argv)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        int d = cmd__key_delete(c, &argv[i]);
        if (d < 0) {
            return;
        }
        n += d;
    }
    reply_int(c, n);
}

void cmd_exists(struct client *c, size_t argc, const struct resp_arg *argv)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        int f = cmd__key_lookup(c, &argv[i], NULL, NULL);
        if (f < 0) {
            return;
        }
        n += f;
    }
    reply_int(c, n);
}

void cmd_mget(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    /* A storage error must not leave a half-written array behind. */
    size_t mark = c->obuf.len;
    reply_array(c, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        /* a hash or set is nil to MGET, as in Redis */
        int rc =
            c->ks->ops->get(c->ks, argv[i].ptr, argv[i].len, &s->scratch, NULL);
        int f = rc == RK_OK                                 ? 1
                : rc == RK_ENOTFOUND || rc == RK_EWRONGTYPE ? 0
                                                            : -1;
        if (f < 0) {
            cmd__reply_storage_error(c, rc, "read"); /* logged, counted */
            /* its error text and the partial array give way to one error */
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

void cmd_mset(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc % 2 == 0) {
        reply_error(c, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        if (!cmd__key_store(c, &argv[i], argv[i + 1].ptr, argv[i + 1].len, 0)) {
            return;
        }
    }
    reply_ok(c);
}

void cmd_msetnx(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc % 2 == 0) {
        reply_error(c, "ERR wrong number of arguments for 'msetnx' command");
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        int f = cmd__key_lookup(c, &argv[i], NULL, NULL);
        if (f < 0) {
            return;
        }
        if (f) {
            reply_int(c, 0);
            return;
        }
    }
    for (size_t i = 1; i < argc; i += 2) {
        if (!cmd__key_store(c, &argv[i], argv[i + 1].ptr, argv[i + 1].len, 0)) {
            return;
        }
    }
    reply_int(c, 1);
}

void cmd_strlen(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], NULL, &m);
    if (f > 0 && cmd__is_coll_type(m.type)) {
        reply_error(c, ERR_WRONGTYPE);
    } else if (f >= 0) {
        reply_int(c, f ? (int64_t)m.value_len : 0);
    }
}

void cmd_append(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, &m);
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
    if (cmd__key_store(c, &argv[1], s->scratch.base, s->scratch.len, exp)) {
        reply_int(c, (int64_t)s->scratch.len);
    }
}

/* SETRANGE key offset value: Redis's checks in Redis's order, zero padding
 * up to offset, the key's expiry kept; an empty value writes nothing. */
void cmd_setrange(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    int64_t off;
    if (!cmd__arg_i64_or_reply(c, &argv[2], &off)) {
        return;
    }
    if (off < 0) {
        reply_error(c, "ERR offset is out of range");
        return;
    }
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    const struct resp_arg *v = &argv[3];
    if (v->len == 0) {
        reply_int(c, f ? (int64_t)s->scratch.len : 0);
        return;
    }
    if ((uint64_t)off + v->len > s->cfg->proto_max_bulk_len) {
        reply_error(c,
                    "ERR string exceeds maximum allowed size "
                    "(proto-max-bulk-len)");
        return;
    }
    size_t end = (size_t)off + v->len;
    if (!f) {
        rk_buf_clear(&s->scratch);
    }
    if (end > s->scratch.len) {
        if (rk_buf_reserve(&s->scratch, end - s->scratch.len) != RK_OK) {
            reply_error(c, "ERR out of memory");
            return;
        }
        memset(s->scratch.base + s->scratch.len, 0, end - s->scratch.len);
        s->scratch.len = end;
    }
    memcpy(s->scratch.base + off, v->ptr, v->len);
    if (cmd__key_store(c, &argv[1], s->scratch.base, s->scratch.len,
                       f ? m.expire_at_ms : 0)) {
        reply_int(c, (int64_t)s->scratch.len);
    }
}

/* GETSET key value: SET key value GET (Redis 6.2 deprecates it for that). */
void cmd_getset(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct resp_arg a[4] = {{"SET", 3}, argv[1], argv[2], {"GET", 3}};
    cmd_set(c, 4, a);
}

/* TOUCH key...: how many exist (ringkv keeps no access times to update). */
void cmd_touch(struct client *c, size_t argc, const struct resp_arg *argv)
{
    cmd_exists(c, argc, argv);
}

static void incr_by(struct client *c, const struct resp_arg *key, int64_t by)
{
    struct server *s = c->srv;
    if (c->ks->ops->incr) {
        /* a counter: concurrent increments through other nodes add up */
        int64_t v;
        int rc = c->ks->ops->incr(c->ks, key->ptr, key->len, by, &v);
        if (rc == RK_OK) {
            reply_int(c, v);
        } else if (rc == RK_EINVAL) {
            reply_error(c, ERR_NOT_INT);
        } else if (rc == RK_ERANGE) {
            reply_error(c, ERR_OVERFLOW);
        } else {
            cmd__reply_storage_error(c, rc, "write");
        }
        return;
    }
    struct ks_meta m;
    int f = cmd__key_lookup(c, key, &s->scratch, &m);
    if (f < 0) {
        return;
    }
    int64_t v = 0;
    if (f && !cmd__parse_i64(s->scratch.base, s->scratch.len, &v)) {
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
    if (cmd__key_store(c, key, buf, (size_t)n, f ? m.expire_at_ms : 0)) {
        reply_int(c, v);
    }
}

void cmd_incr(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    incr_by(c, &argv[1], 1);
}

void cmd_decr(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    incr_by(c, &argv[1], -1);
}

void cmd_incrby(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    int64_t by;
    if (cmd__arg_i64_or_reply(c, &argv[2], &by)) {
        incr_by(c, &argv[1], by);
    }
}

void cmd_decrby(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    int64_t by;
    if (!cmd__arg_i64_or_reply(c, &argv[2], &by)) {
        return;
    }
    if (by == INT64_MIN) {
        reply_error(c, "ERR decrement would overflow");
        return;
    }
    incr_by(c, &argv[1], -by);
}

void cmd_incrbyfloat(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    long double by;
    if (!cmd__parse_ldouble(argv[2].ptr, argv[2].len, &by)) {
        reply_error(c, "ERR value is not a valid float");
        return;
    }
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    long double v = 0;
    if (f && !cmd__parse_ldouble(s->scratch.base, s->scratch.len, &v)) {
        reply_error(c, "ERR value is not a valid float");
        return;
    }
    char out[CMD_LDOUBLE_CHARS];
    size_t n = cmd__format_ldouble(v + by, out);
    if (n == 0) {
        reply_error(c, "ERR increment would produce NaN or Infinity");
        return;
    }
    if (cmd__key_store(c, &argv[1], out, n, f ? m.expire_at_ms : 0)) {
        reply_bulk(c, out, n);
    }
}

void cmd_getrange(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    int64_t start, end;
    if (!cmd__arg_i64_or_reply(c, &argv[2], &start) ||
        !cmd__arg_i64_or_reply(c, &argv[3], &end)) {
        return;
    }
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, NULL);
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

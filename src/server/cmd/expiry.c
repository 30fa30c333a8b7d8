/*
 * cmd/expiry.c - expiry commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL
 * EXPIRETIME PEXPIRETIME PERSIST TYPE, with Redis's semantics, reply types and
 * error texts (https://redis.io/docs/latest/commands/).  Split from commands.c
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
#include "cluster/objtype.h"
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
    if (!cmd__arg_i64_or_reply(c, &argv[2], &v)) {
        return;
    }
    int opts = 0;
    for (size_t i = 3; i < argc; i++) {
        if (cmd__arg_is(&argv[i], "NX")) {
            opts |= EXP_NX;
        } else if (cmd__arg_is(&argv[i], "XX")) {
            opts |= EXP_XX;
        } else if (cmd__arg_is(&argv[i], "GT")) {
            opts |= EXP_GT;
        } else if (cmd__arg_is(&argv[i], "LT")) {
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
    struct ks_meta m;
    int f = cmd__key_lookup_any(c, &argv[1], &s->scratch, &m);
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
        if (cmd__key_delete(c, &argv[1]) >= 0) {
            s->stats.expired_keys++;
            reply_int(c, 1);
        }
        return;
    }
    if (cmd__key_set_expiry(c, &argv[1], &s->scratch, (uint64_t)ms, &m)) {
        reply_int(c, 1);
    }
}

void cmd_expire(struct client *c, size_t argc, const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_EX, "expire");
}

void cmd_pexpire(struct client *c, size_t argc, const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_PX, "pexpire");
}

void cmd_expireat(struct client *c, size_t argc, const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_EXAT, "expireat");
}

void cmd_pexpireat(struct client *c, size_t argc, const struct resp_arg *argv)
{
    expire_generic(c, argc, argv, SET_PXAT, "pexpireat");
}

static void ttl_generic(struct client *c,
                        const struct resp_arg *key,
                        bool ms,
                        bool absolute)
{
    struct ks_meta m;
    int f = cmd__key_lookup(c, key, NULL, &m);
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

void cmd_ttl(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], false, false);
}

void cmd_pttl(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], true, false);
}

void cmd_expiretime(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], false, true);
}

void cmd_pexpiretime(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    ttl_generic(c, &argv[1], true, true);
}

void cmd_persist(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct server *s = c->srv;
    struct ks_meta m;
    int f = cmd__key_lookup_any(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    if (f == 0 || m.expire_at_ms == 0) {
        reply_int(c, 0);
        return;
    }
    if (cmd__key_set_expiry(c, &argv[1], &s->scratch, 0, &m)) {
        reply_int(c, 1);
    }
}

void cmd_type(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], NULL, &m);
    if (f >= 0) {
        reply_simple(c, f == 0                   ? "none"
                        : m.type == OBJTYPE_HASH ? "hash"
                        : m.type == OBJTYPE_SET  ? "set"
                                                 : "string");
    }
}

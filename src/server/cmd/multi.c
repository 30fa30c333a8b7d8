/*
 * cmd/multi.c - transactions: MULTI EXEC DISCARD WATCH UNWATCH, with Redis's
 * semantics, reply types and error texts
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

bool cmd__multi_queue(struct client *c,
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

void cmd_multi(struct client *c, size_t argc, const struct resp_arg *argv)
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

void cmd_discard(struct client *c, size_t argc, const struct resp_arg *argv)
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
        struct ks_meta m;
        int rc = c->ks->ops->get(c->ks, w->key, w->klen, NULL, &m);
        bool exists = rc == RK_OK;
        if (rc != RK_OK && rc != RK_ENOTFOUND) {
            return true;
        }
        if (exists != w->existed || (exists && m.ts != w->timestamp)) {
            return true;
        }
    }
    return false;
}

void cmd_exec(struct client *c, size_t argc, const struct resp_arg *argv)
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
        /* checked when queued; again now, as the rules may have changed
         * since (Redis does the same) */
        char msg[256];
        c->in_multi = true; /* ACL LOG context "multi", as Redis */
        bool allowed = cmd__acl_allows(c, q[i].cmd, NULL, q[i].argc, q[i].argv,
                                       msg, sizeof(msg));
        c->in_multi = false;
        if (!allowed) {
            reply_error(c, msg);
        } else {
            q[i].cmd->proc(c, q[i].argc, q[i].argv);
        }
        rk_free(q[i].argv);
    }
    rk_free(q);
    multi_reset(c);
}

void cmd_watch(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (c->in_multi) {
        reply_error(c, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        struct ks_meta m;
        int rc = c->ks->ops->get(c->ks, argv[i].ptr, argv[i].len, NULL, &m);
        struct watched_key *w = rk_malloc(sizeof(*w) + argv[i].len);
        if (w == NULL) {
            c->watch_dirty = true;
            continue;
        }
        w->existed = rc == RK_OK;
        w->timestamp = rc == RK_OK ? m.ts : 0;
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

void cmd_unwatch(struct client *c, size_t argc, const struct resp_arg *argv)
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

/*
 * cmd/rename.c - RENAME, RENAMENX and COPY (issue 16 item 1: the missing
 * keyspace commands), with Redis 7's semantics, replies and error texts
 * (https://redis.io/docs/latest/commands/rename/, .../renamenx/, .../copy/).
 *
 * Each runs over the client's keyspace (cmd/keys.c): on one node the local
 * engine, in a cluster the coordinated keyspace (server/cluster_ops.c),
 * whose reads and writes are quorum operations on each key's own replicas.
 * The value moves with its expiry and content type.  In a cluster the two
 * keys may live on different replicas, so the steps (write the destination,
 * then delete the source) are two coordinated writes, not one atomic
 * change: a reader between them may see both keys (never neither), and a
 * failure between them leaves both, with the error replied.  Redis Cluster
 * refuses keys of different hash slots instead (CROSSSLOT); ringkv's
 * coordinator can reach every key, so it runs them.
 */
#include <string.h>

#include "server/cmd/internal.h"
#include "server/internal.h"

static bool same_key(const struct resp_arg *a, const struct resp_arg *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* RENAME (nx false) and RENAMENX (nx true). */
static void rename_key(struct client *c, const struct resp_arg *argv, bool nx)
{
    struct server *s = c->srv;
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        reply_error(c, "ERR no such key");
        return;
    }
    if (same_key(&argv[1], &argv[2])) {
        /* Redis: renaming a key to itself changes nothing */
        if (nx) {
            reply_int(c, 0);
        } else {
            reply_ok(c);
        }
        return;
    }
    if (nx) {
        int d = cmd__key_lookup(c, &argv[2], NULL, NULL);
        if (d != 0) {
            if (d > 0) {
                reply_int(c, 0);
            }
            return;
        }
    }
    if (!cmd__key_restore(c, &argv[2], s->scratch.base, s->scratch.len,
                          m.expire_at_ms, &m)) {
        return;
    }
    if (cmd__key_delete(c, &argv[1]) < 0) {
        return;
    }
    if (nx) {
        reply_int(c, 1);
    } else {
        reply_ok(c);
    }
}

void cmd_rename(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    rename_key(c, argv, false);
}

void cmd_renamenx(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    rename_key(c, argv, true);
}

/* COPY source destination [DB destination-db] [REPLACE] */
void cmd_copy(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    bool replace = false;
    for (size_t i = 3; i < argc; i++) {
        int64_t db = 0;
        if (cmd__arg_is(&argv[i], "REPLACE")) {
            replace = true;
        } else if (cmd__arg_is(&argv[i], "DB") && i + 1 < argc) {
            if (!cmd__arg_i64(&argv[++i], &db)) {
                reply_error(c, ERR_NOT_INT);
                return;
            }
            if (db != 0) {
                /* one database, as SELECT */
                reply_error(c, "ERR DB index is out of range");
                return;
            }
        } else {
            reply_error(c, "ERR syntax error");
            return;
        }
    }
    if (same_key(&argv[1], &argv[2])) {
        reply_error(c, "ERR source and destination objects are the same");
        return;
    }
    struct ks_meta m;
    int f = cmd__key_lookup(c, &argv[1], &s->scratch, &m);
    if (f <= 0) {
        if (f == 0) {
            reply_int(c, 0);
        }
        return;
    }
    if (!replace) {
        int d = cmd__key_lookup(c, &argv[2], NULL, NULL);
        if (d != 0) {
            if (d > 0) {
                reply_int(c, 0);
            }
            return;
        }
    }
    if (cmd__key_restore(c, &argv[2], s->scratch.base, s->scratch.len,
                         m.expire_at_ms, &m)) {
        reply_int(c, 1);
    }
}

/*
 * cmd/rename.c - RENAME, RENAMENX, COPY and OBJECT (issue 16 item 1: the
 * missing keyspace commands), with Redis 7's semantics, replies and error
 * texts (https://redis.io/docs/latest/commands/rename/, .../renamenx/,
 * .../copy/, .../object-encoding/).
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

#include "cluster/objtype.h"
#include "server/cmd/internal.h"
#include "server/internal.h"

static bool same_key(const struct resp_arg *a, const struct resp_arg *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* Writes src's value (a string read into the scratch buffer, or a hash's
 * or set's members), expiry and content type to dst: false when replied. */
static bool copy_value(struct client *c,
                       const struct resp_arg *src,
                       const struct resp_arg *dst,
                       const struct ks_meta *m)
{
    struct server *s = c->srv;
    if (cmd__is_coll_type(m->type)) {
        return cmd__coll_copy(c, src, dst, m->type, m->expire_at_ms);
    }
    return cmd__key_restore(c, dst, s->scratch.base, s->scratch.len,
                            m->expire_at_ms, m);
}

/* RENAME (nx false) and RENAMENX (nx true). */
static void rename_key(struct client *c, const struct resp_arg *argv, bool nx)
{
    struct server *s = c->srv;
    struct ks_meta m;
    int f = cmd__key_lookup_any(c, &argv[1], &s->scratch, &m);
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
    if (!copy_value(c, &argv[1], &argv[2], &m)) {
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
    int f = cmd__key_lookup_any(c, &argv[1], &s->scratch, &m);
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
    if (copy_value(c, &argv[1], &argv[2], &m)) {
        reply_int(c, 1);
    }
}

/* Whether Redis would keep v as an integer object (string2l: an optional
 * '-', no leading zero or '+', fits a long), and that integer in *x. */
static bool redis_int(const char *v, size_t len, int64_t *x)
{
    if (len == 0 || len > 20 || (len > 1 && v[0] == '0') ||
        (v[0] == '-' && (len == 1 || v[1] == '0'))) {
        return false;
    }
    return cmd__parse_i64(v, len, x);
}

/* OBJECT of a hash or set: ENCODING as Redis 7.0 (Debian 12's) would
 * choose it with its default limits (hash: listpack up to 128 fields of
 * at most 64 bytes, else hashtable; set: intset up to 512 integers, else
 * hashtable; Redis 7.2 added listpack sets), read from the members. */
static void object_coll(struct client *c,
                        const struct resp_arg *sub,
                        const struct resp_arg *key,
                        const struct ks_meta *m)
{
    if (!cmd__arg_is(sub, "ENCODING")) {
        if (cmd__arg_is(sub, "REFCOUNT")) {
            reply_int(c, 1);
        } else if (cmd__arg_is(sub, "IDLETIME")) {
            reply_int(c, 0);
        } else {
            reply_error(c,
                        "ERR An LFU maxmemory policy is not selected, access "
                        "frequency not tracked. Please note that when "
                        "switching between policies at runtime LRU and LFU "
                        "data will take some time to adjust.");
        }
        return;
    }
    struct coll_items items;
    cmd__coll_items_init(&items);
    if (m->n_members <= 512 && cmd__coll_collect(c, key, &items) < 0) {
        cmd__coll_items_fini(&items);
        return;
    }
    bool small = m->n_members <= 128, ints = m->n_members <= 512;
    for (size_t i = 0; i < items.n; i++) {
        int64_t x;
        small = small && items.it[i].mlen <= 64 && items.it[i].vlen <= 64;
        ints = ints &&
               redis_int(cmd__coll_member(&items, i), items.it[i].mlen, &x);
    }
    cmd__coll_items_fini(&items);
    if (m->type == OBJTYPE_SET) {
        reply_bulk_str(c, ints ? "intset" : "hashtable");
    } else {
        reply_bulk_str(c, small ? "listpack" : "hashtable");
    }
}

/*
 * OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP (issue 16 item 1: plausible
 * answers).  ringkv stores every value as bytes; ENCODING names what Redis
 * would use for a value SET to these bytes: "int" (an integer that fits a
 * long), "embstr" (up to 44 bytes), else "raw" (Redis also says "raw" for
 * a short string built by APPEND or SETRANGE; ringkv cannot tell).
 * REFCOUNT is Redis's shared-integer count (2147483647) for integers
 * 0..9999, else 1.  IDLETIME is 0: ringkv keeps no access times.  FREQ
 * answers Redis's error without an LFU policy (ringkv has none).
 */
void cmd_object(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    const struct resp_arg *sub = &argv[1];
    if (cmd__arg_is(sub, "HELP")) {
        static const char *help[] = {
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to "
            "store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned "
            "integer is",
            "    proportional to the logarithm of the recent access frequency "
            "of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated "
            "number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with "
            "the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        };
        cmd__reply_lines(c, help, sizeof(help) / sizeof(help[0]));
        return;
    }
    (void)argc;
    struct ks_meta m;
    int f = cmd__key_lookup_any(c, &argv[2], &s->scratch, &m);
    if (f < 0) {
        return;
    }
    if (f == 0) {
        reply_null(c);
        return;
    }
    if (cmd__is_coll_type(m.type)) {
        object_coll(c, sub, &argv[2], &m);
        return;
    }
    int64_t v = -1;
    bool is_int = redis_int(s->scratch.base, s->scratch.len, &v);
    if (cmd__arg_is(sub, "ENCODING")) {
        reply_bulk_str(c, is_int                 ? "int"
                          : s->scratch.len <= 44 ? "embstr"
                                                 : "raw");
    } else if (cmd__arg_is(sub, "REFCOUNT")) {
        reply_int(c, is_int && v >= 0 && v < 10000 ? 2147483647 : 1);
    } else if (cmd__arg_is(sub, "IDLETIME")) {
        reply_int(c, 0);
    } else {
        reply_error(c,
                    "ERR An LFU maxmemory policy is not selected, access "
                    "frequency not tracked. Please note that when switching "
                    "between policies at runtime LRU and LFU data will take "
                    "some time to adjust.");
    }
}

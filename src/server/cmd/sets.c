/*
 * cmd/sets.c - set commands (issue 16 item 1): SADD SREM SMEMBERS
 * SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER SUNION SDIFF
 * SINTERSTORE SUNIONSTORE SDIFFSTORE SINTERCARD SSCAN, with Redis 7's
 * semantics, reply types (RESP2 and RESP3) and error texts
 * (https://redis.io/docs/latest/commands/), over the keyspace's member
 * operations (one record per member: cluster/types/coll.h).
 *
 * Thread: the event loop only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/objtype.h"
#include "cluster/types/coll.h"
#include "common/alloc.h"
#include "common/error.h"
#include "server/cmd/internal.h"
#include "server/internal.h"

#define S OBJTYPE_SET

/* Adds member m to key: 1 new, 0 there already, -1 replied. */
static int sadd_one(struct client *c,
                    const struct resp_arg *key,
                    const char *m,
                    size_t mlen)
{
    bool created = false;
    uint64_t seq = 0;
    int rc = c->ks->ops->mput(c->ks, key->ptr, key->len, S, m, mlen, "", 0,
                              &created, &seq);
    cmd__note_write(c, seq);
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "write");
        return -1;
    }
    return created;
}

/* Removes member m from key: 1 removed, 0 not there, -1 replied. */
static int srem_one(struct client *c,
                    const struct resp_arg *key,
                    const char *m,
                    size_t mlen)
{
    uint64_t seq = 0;
    int rc = c->ks->ops->mdel(c->ks, key->ptr, key->len, S, m, mlen, &seq);
    cmd__note_write(c, seq);
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "delete");
        return -1;
    }
    return 1;
}

/* Whether m is a member of key: 1, 0, -1 replied. */
static int is_member(struct client *c,
                     const struct resp_arg *key,
                     const char *m,
                     size_t mlen)
{
    if (c->ks->ops->mget == NULL) {
        reply_error(c, ERR_COLL_CLUSTER);
        return -1;
    }
    int rc = c->ks->ops->mget(c->ks, key->ptr, key->len, S, m, mlen, NULL);
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "read");
        return -1;
    }
    return 1;
}

void cmd_sadd(struct client *c, size_t argc, const struct resp_arg *argv)
{
    uint64_t n;
    if (cmd__coll_open(c, &argv[1], S, &n) < 0) {
        return;
    }
    for (size_t i = 2; i < argc; i++) {
        if (!cmd__member_fits_or_reply(c, &argv[1], &argv[i])) {
            return;
        }
    }
    int64_t added = 0;
    for (size_t i = 2; i < argc; i++) {
        int r = sadd_one(c, &argv[1], argv[i].ptr, argv[i].len);
        if (r < 0) {
            return;
        }
        added += r;
    }
    reply_int(c, added);
}

void cmd_srem(struct client *c, size_t argc, const struct resp_arg *argv)
{
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], S, &n);
    if (f <= 0) {
        if (f == 0) {
            reply_int(c, 0);
        }
        return;
    }
    int64_t removed = 0;
    for (size_t i = 2; i < argc; i++) {
        int r = srem_one(c, &argv[1], argv[i].ptr, argv[i].len);
        if (r < 0) {
            return;
        }
        removed += r;
    }
    reply_int(c, removed);
}

void cmd_smembers(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], S, &n);
    if (f < 0) {
        return;
    }
    struct coll_items items;
    cmd__coll_items_init(&items);
    if (f && cmd__coll_collect(c, &argv[1], &items) < 0) {
        cmd__coll_items_fini(&items);
        return;
    }
    resp_w_set(&c->obuf, c->proto, items.n);
    for (size_t i = 0; i < items.n; i++) {
        reply_bulk(c, cmd__coll_member(&items, i), items.it[i].mlen);
    }
    cmd__coll_items_fini(&items);
}

void cmd_sismember(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    /* the member read checks the key's type: one lookup less */
    int r = is_member(c, &argv[1], argv[2].ptr, argv[2].len);
    if (r >= 0) {
        reply_int(c, r);
    }
}

void cmd_smismember(struct client *c, size_t argc, const struct resp_arg *argv)
{
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], S, &n);
    if (f < 0) {
        return;
    }
    size_t mark = c->obuf.len;
    reply_array(c, argc - 2);
    for (size_t i = 2; i < argc; i++) {
        int r = f ? is_member(c, &argv[1], argv[i].ptr, argv[i].len) : 0;
        if (r < 0) {
            /* the error replaces the partial array */
            size_t err = c->obuf.len;
            memmove(c->obuf.base + mark, c->obuf.base + err, c->obuf.len - err);
            c->obuf.len = mark + (c->obuf.len - err);
            return;
        }
        reply_int(c, r);
    }
}

void cmd_scard(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    uint64_t n;
    if (cmd__coll_open(c, &argv[1], S, &n) >= 0) {
        reply_int(c, (int64_t)n);
    }
}

/* SPOP (remove) and SRANDMEMBER. */
static void random_members(struct client *c,
                           size_t argc,
                           const struct resp_arg *argv,
                           bool pop)
{
    int64_t count = 1;
    bool with_count = argc >= 3;
    if (with_count && pop) {
        if (!cmd__arg_i64(&argv[2], &count) || count < 0) {
            reply_error(c, "ERR value is out of range, must be positive");
            return;
        }
    } else if (with_count &&
               !cmd__random_count_or_reply(c, &argv[2], "members", &count)) {
        return;
    }
    struct coll_items items;
    cmd__coll_items_init(&items);
    size_t k = 0, *idx = NULL;
    if (cmd__coll_random(c, &argv[1], S, count, &items, &idx, &k) < 0) {
        cmd__coll_items_fini(&items);
        return;
    }
    for (size_t j = 0; pop && j < k; j++) {
        size_t i = idx[j];
        if (srem_one(c, &argv[1], cmd__coll_member(&items, i),
                     items.it[i].mlen) < 0) {
            rk_free(idx);
            cmd__coll_items_fini(&items);
            return;
        }
    }
    if (!with_count) {
        if (k == 0) {
            reply_null(c);
        } else {
            reply_bulk(c, cmd__coll_member(&items, idx[0]),
                       items.it[idx[0]].mlen);
        }
    } else {
        if (pop) {
            resp_w_set(&c->obuf, c->proto, k);
        } else {
            reply_array(c, k);
        }
        for (size_t j = 0; j < k; j++) {
            reply_bulk(c, cmd__coll_member(&items, idx[j]),
                       items.it[idx[j]].mlen);
        }
    }
    rk_free(idx);
    cmd__coll_items_fini(&items);
}

void cmd_spop(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    random_members(c, argc, argv, true);
}

void cmd_srandmember(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    random_members(c, argc, argv, false);
}

void cmd_smove(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    uint64_t n, dn;
    int f = cmd__coll_open(c, &argv[1], S, &n);
    if (f <= 0) {
        if (f == 0) {
            reply_int(c, 0); /* before the destination's type, as Redis */
        }
        return;
    }
    if (cmd__coll_open(c, &argv[2], S, &dn) < 0) {
        return;
    }
    int r = is_member(c, &argv[1], argv[3].ptr, argv[3].len);
    if (r <= 0) {
        if (r == 0) {
            reply_int(c, 0);
        }
        return;
    }
    if (argv[1].len == argv[2].len &&
        memcmp(argv[1].ptr, argv[2].ptr, argv[1].len) == 0) {
        reply_int(c, 1); /* the same set: nothing moves */
        return;
    }
    if (!cmd__member_fits_or_reply(c, &argv[2], &argv[3]) ||
        sadd_one(c, &argv[2], argv[3].ptr, argv[3].len) < 0 ||
        srem_one(c, &argv[1], argv[3].ptr, argv[3].len) < 0) {
        return;
    }
    reply_int(c, 1);
}

/* ---- SINTER SUNION SDIFF and their STORE forms --------------------------- */

enum setop
{
    OP_INTER,
    OP_UNION,
    OP_DIFF,
};

/*
 * Computes op over keys[0..nk) into out (each member once).  Returns 0,
 * or -1 (replied: WRONGTYPE or a storage error).  A missing key is the
 * empty set.  O(N) in the members of the sets read, each member of the
 * first (INTER, DIFF) probed in the others with one lookup.
 */
static int compute(struct client *c,
                   enum setop op,
                   const struct resp_arg *keys,
                   size_t nk,
                   int64_t limit,
                   struct coll_items *out)
{
    uint64_t *card = rk_calloc(nk ? nk : 1, sizeof(*card));
    int *exists = rk_calloc(nk ? nk : 1, sizeof(*exists));
    int rc = 0;
    if (card == NULL || exists == NULL) {
        reply_error(c, "ERR out of memory");
        rc = -1;
    }
    /* every key's type first: WRONGTYPE wins over an empty result */
    for (size_t i = 0; rc == 0 && i < nk; i++) {
        exists[i] = cmd__coll_open(c, &keys[i], S, &card[i]);
        if (exists[i] < 0) {
            rc = -1;
        }
    }
    if (rc == 0 && op == OP_UNION) {
        /* collect all, then drop duplicates by sorting */
        struct coll_items all;
        cmd__coll_items_init(&all);
        for (size_t i = 0; rc == 0 && i < nk; i++) {
            if (exists[i] && cmd__coll_collect(c, &keys[i], &all) < 0) {
                rc = -1;
            }
        }
        if (rc == 0) {
            rc = cmd__coll_items_unique(c, &all, out);
        }
        cmd__coll_items_fini(&all);
    } else if (rc == 0 && nk > 0 && exists[0]) {
        size_t base = 0;
        if (op == OP_INTER) {
            for (size_t i = 0; i < nk; i++) {
                if (!exists[i]) {
                    base = SIZE_MAX; /* an empty set: empty result */
                    break;
                }
                if (card[i] < card[base]) {
                    base = i; /* probe the others with the smallest */
                }
            }
        }
        struct coll_items first;
        cmd__coll_items_init(&first);
        if (base != SIZE_MAX && cmd__coll_collect(c, &keys[base], &first) < 0) {
            rc = -1;
        }
        for (size_t j = 0; rc == 0 && j < first.n; j++) {
            if (limit > 0 && (int64_t)out->n >= limit) {
                break;
            }
            const char *m = cmd__coll_member(&first, j);
            size_t ml = first.it[j].mlen;
            bool keep = true;
            for (size_t i = 0; keep && i < nk; i++) {
                if (i == base || (op == OP_DIFF && !exists[i])) {
                    continue;
                }
                int r = is_member(c, &keys[i], m, ml);
                if (r < 0) {
                    rc = -1;
                    break;
                }
                keep = op == OP_INTER ? r == 1 : r == 0;
            }
            if (rc == 0 && keep && !cmd__coll_items_add(out, m, ml, "", 0)) {
                reply_error(c, "ERR out of memory");
                rc = -1;
            }
        }
        cmd__coll_items_fini(&first);
    }
    rk_free(card);
    rk_free(exists);
    return rc;
}

static void setop_reply(struct client *c,
                        enum setop op,
                        size_t argc,
                        const struct resp_arg *argv)
{
    struct coll_items out;
    cmd__coll_items_init(&out);
    if (compute(c, op, &argv[1], argc - 1, 0, &out) == 0) {
        resp_w_set(&c->obuf, c->proto, out.n);
        for (size_t i = 0; i < out.n; i++) {
            reply_bulk(c, cmd__coll_member(&out, i), out.it[i].mlen);
        }
    }
    cmd__coll_items_fini(&out);
}

static void setop_store(struct client *c,
                        enum setop op,
                        size_t argc,
                        const struct resp_arg *argv)
{
    struct coll_items out;
    cmd__coll_items_init(&out);
    if (compute(c, op, &argv[2], argc - 2, 0, &out) == 0 &&
        cmd__coll_store(c, &argv[1], S, &out, 0)) {
        reply_int(c, (int64_t)out.n);
    }
    cmd__coll_items_fini(&out);
}

void cmd_sinter(struct client *c, size_t argc, const struct resp_arg *argv)
{
    setop_reply(c, OP_INTER, argc, argv);
}

void cmd_sunion(struct client *c, size_t argc, const struct resp_arg *argv)
{
    setop_reply(c, OP_UNION, argc, argv);
}

void cmd_sdiff(struct client *c, size_t argc, const struct resp_arg *argv)
{
    setop_reply(c, OP_DIFF, argc, argv);
}

void cmd_sinterstore(struct client *c, size_t argc, const struct resp_arg *argv)
{
    setop_store(c, OP_INTER, argc, argv);
}

void cmd_sunionstore(struct client *c, size_t argc, const struct resp_arg *argv)
{
    setop_store(c, OP_UNION, argc, argv);
}

void cmd_sdiffstore(struct client *c, size_t argc, const struct resp_arg *argv)
{
    setop_store(c, OP_DIFF, argc, argv);
}

void cmd_sintercard(struct client *c, size_t argc, const struct resp_arg *argv)
{
    int64_t nk;
    if (!cmd__arg_i64(&argv[1], &nk)) {
        reply_error(c, "ERR numkeys should be greater than 0");
        return;
    }
    if (nk <= 0) {
        reply_error(c, "ERR numkeys should be greater than 0");
        return;
    }
    if ((uint64_t)nk > argc - 2) {
        reply_error(c,
                    "ERR Number of keys can't be greater than number of "
                    "args");
        return;
    }
    int64_t limit = 0;
    for (size_t i = 2 + (size_t)nk; i < argc; i++) {
        if (cmd__arg_is(&argv[i], "LIMIT") && i + 1 < argc) {
            if (!cmd__arg_i64(&argv[++i], &limit)) {
                reply_error(c, "ERR LIMIT can't be negative");
                return;
            }
            if (limit < 0) {
                reply_error(c, "ERR LIMIT can't be negative");
                return;
            }
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    struct coll_items out;
    cmd__coll_items_init(&out);
    if (compute(c, OP_INTER, &argv[2], (size_t)nk, limit, &out) == 0) {
        reply_int(c, (int64_t)out.n);
    }
    cmd__coll_items_fini(&out);
}

void cmd_sscan(struct client *c, size_t argc, const struct resp_arg *argv)
{
    cmd__coll_scan(c, argc, argv, S);
}

/*
 * cmd/hashes.c - hash commands (issue 16 item 1): HSET HSETNX HMSET HGET
 * HMGET HGETALL HDEL HEXISTS HLEN HKEYS HVALS HSTRLEN HINCRBY
 * HINCRBYFLOAT HRANDFIELD HSCAN, with Redis 7's semantics, reply types
 * (RESP2 and RESP3) and error texts (https://redis.io/docs/latest/
 * commands/), over the keyspace's member operations (one record per
 * field: cluster/types/coll.h).
 *
 * Thread: the event loop only.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cluster/objtype.h"
#include "common/alloc.h"
#include "common/error.h"
#include "server/cmd/internal.h"
#include "server/internal.h"

#define H OBJTYPE_HASH

/* Sets one field; 1 new, 0 replaced, -1 replied. */
static int hset_one(struct client *c,
                    const struct resp_arg *key,
                    const struct resp_arg *f,
                    const void *v,
                    size_t vlen)
{
    bool created = false;
    uint64_t seq = 0;
    int rc = c->ks->ops->mput(c->ks, key->ptr, key->len, H, f->ptr, f->len, v,
                              vlen, &created, &seq);
    cmd__note_write(c, seq);
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "write");
        return -1;
    }
    return created;
}

/* The field arguments fit a member key, or a reply says why not. */
static bool fields_fit_or_reply(struct client *c,
                                const struct resp_arg *key,
                                const struct resp_arg *f,
                                size_t n,
                                size_t step)
{
    for (size_t i = 0; i < n; i += step) {
        if (!cmd__member_fits_or_reply(c, key, &f[i])) {
            return false;
        }
    }
    return true;
}

static void hset_pairs(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv,
                       bool reply_count)
{
    if (argc % 2 != 0) {
        reply_errorf(c, "ERR wrong number of arguments for '%s' command",
                     reply_count ? "hset" : "hmset");
        return;
    }
    uint64_t n;
    if (cmd__coll_open(c, &argv[1], H, &n) < 0 ||
        !fields_fit_or_reply(c, &argv[1], &argv[2], argc - 2, 2)) {
        return;
    }
    int64_t added = 0;
    for (size_t i = 2; i + 1 < argc; i += 2) {
        int r =
            hset_one(c, &argv[1], &argv[i], argv[i + 1].ptr, argv[i + 1].len);
        if (r < 0) {
            return;
        }
        added += r;
    }
    if (reply_count) {
        reply_int(c, added);
    } else {
        reply_ok(c);
    }
}

void cmd_hset(struct client *c, size_t argc, const struct resp_arg *argv)
{
    hset_pairs(c, argc, argv, true);
}

void cmd_hmset(struct client *c, size_t argc, const struct resp_arg *argv)
{
    hset_pairs(c, argc, argv, false);
}

/* The value of field f: 1 (into val), 0 absent, -1 replied. */
static int hget_one(struct client *c,
                    const struct resp_arg *key,
                    const struct resp_arg *f,
                    struct rk_buf *val)
{
    if (c->ks->ops->mget == NULL) {
        reply_error(c, ERR_COLL_CLUSTER);
        return -1;
    }
    int rc =
        c->ks->ops->mget(c->ks, key->ptr, key->len, H, f->ptr, f->len, val);
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "read");
        return -1;
    }
    return 1;
}

void cmd_hsetnx(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], H, &n);
    if (f < 0 || !fields_fit_or_reply(c, &argv[1], &argv[2], 1, 1)) {
        return;
    }
    int have = f ? hget_one(c, &argv[1], &argv[2], NULL) : 0;
    if (have < 0) {
        return;
    }
    if (have) {
        reply_int(c, 0);
        return;
    }
    if (hset_one(c, &argv[1], &argv[2], argv[3].ptr, argv[3].len) >= 0) {
        reply_int(c, 1);
    }
}

void cmd_hget(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    /* the member read checks the key's type: one lookup less */
    struct rk_buf *v = &c->srv->scratch;
    int have = hget_one(c, &argv[1], &argv[2], v);
    if (have > 0) {
        reply_bulk(c, v->base ? v->base : "", v->len);
    } else if (have == 0) {
        reply_null(c);
    }
}

void cmd_hmget(struct client *c, size_t argc, const struct resp_arg *argv)
{
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], H, &n);
    if (f < 0) {
        return;
    }
    /* read first: an error must not leave half an array behind */
    struct coll_items got;
    cmd__coll_items_init(&got);
    struct rk_buf *v = &c->srv->scratch;
    for (size_t i = 2; i < argc; i++) {
        int have = f ? hget_one(c, &argv[1], &argv[i], v) : 0;
        if (have < 0) {
            cmd__coll_items_fini(&got);
            return;
        }
        /* a missing field: member length SIZE_MAX marks nil */
        if (!cmd__coll_items_add(&got, "", 0, have ? v->base : "",
                                 have ? v->len : 0)) {
            cmd__coll_items_fini(&got);
            reply_error(c, "ERR out of memory");
            return;
        }
        got.it[got.n - 1].mlen = have ? 0 : SIZE_MAX;
    }
    reply_array(c, argc - 2);
    for (size_t i = 0; i < got.n; i++) {
        if (got.it[i].mlen == SIZE_MAX) {
            reply_null(c);
        } else {
            reply_bulk(c, cmd__coll_value(&got, i), got.it[i].vlen);
        }
    }
    cmd__coll_items_fini(&got);
}

/* HGETALL (keys and values), HKEYS, HVALS. */
static void hgetall_like(struct client *c,
                         const struct resp_arg *key,
                         bool keys,
                         bool vals)
{
    uint64_t n;
    int f = cmd__coll_open(c, key, H, &n);
    if (f < 0) {
        return;
    }
    struct coll_items items;
    cmd__coll_items_init(&items);
    if (f && cmd__coll_collect(c, key, &items) < 0) {
        cmd__coll_items_fini(&items);
        return;
    }
    if (keys && vals) {
        reply_map(c, items.n);
    } else {
        reply_array(c, items.n);
    }
    for (size_t i = 0; i < items.n; i++) {
        if (keys) {
            reply_bulk(c, cmd__coll_member(&items, i), items.it[i].mlen);
        }
        if (vals) {
            reply_bulk(c, cmd__coll_value(&items, i), items.it[i].vlen);
        }
    }
    cmd__coll_items_fini(&items);
}

void cmd_hgetall(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    hgetall_like(c, &argv[1], true, true);
}

void cmd_hkeys(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    hgetall_like(c, &argv[1], true, false);
}

void cmd_hvals(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    hgetall_like(c, &argv[1], false, true);
}

void cmd_hdel(struct client *c, size_t argc, const struct resp_arg *argv)
{
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], H, &n);
    if (f <= 0) {
        if (f == 0) {
            reply_int(c, 0);
        }
        return;
    }
    int64_t removed = 0;
    for (size_t i = 2; i < argc; i++) {
        uint64_t seq = 0;
        int rc = c->ks->ops->mdel(c->ks, argv[1].ptr, argv[1].len, H,
                                  argv[i].ptr, argv[i].len, &seq);
        cmd__note_write(c, seq);
        if (rc == RK_OK) {
            removed++;
        } else if (rc != RK_ENOTFOUND) {
            cmd__reply_storage_error(c, rc, "delete");
            return;
        }
    }
    reply_int(c, removed);
}

void cmd_hexists(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    int have = hget_one(c, &argv[1], &argv[2], NULL);
    if (have >= 0) {
        reply_int(c, have);
    }
}

void cmd_hlen(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    uint64_t n;
    if (cmd__coll_open(c, &argv[1], H, &n) >= 0) {
        reply_int(c, (int64_t)n);
    }
}

void cmd_hstrlen(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct rk_buf *v = &c->srv->scratch;
    int have = hget_one(c, &argv[1], &argv[2], v);
    if (have >= 0) {
        reply_int(c, have ? (int64_t)v->len : 0);
    }
}

void cmd_hincrby(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    int64_t by;
    if (!cmd__arg_i64_or_reply(c, &argv[3], &by)) {
        return;
    }
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], H, &n);
    if (f < 0 || !fields_fit_or_reply(c, &argv[1], &argv[2], 1, 1)) {
        return;
    }
    struct rk_buf *v = &c->srv->scratch;
    int have = f ? hget_one(c, &argv[1], &argv[2], v) : 0;
    if (have < 0) {
        return;
    }
    int64_t cur = 0;
    if (have && !cmd__parse_i64(v->base, v->len, &cur)) {
        reply_error(c, "ERR hash value is not an integer");
        return;
    }
    if ((by > 0 && cur > INT64_MAX - by) || (by < 0 && cur < INT64_MIN - by)) {
        reply_error(c, ERR_OVERFLOW);
        return;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%" PRId64, cur + by);
    if (hset_one(c, &argv[1], &argv[2], buf, (size_t)len) >= 0) {
        reply_int(c, cur + by);
    }
}

void cmd_hincrbyfloat(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    (void)argc;
    long double by;
    if (!cmd__parse_ldouble(argv[3].ptr, argv[3].len, &by)) {
        reply_error(c, "ERR value is not a valid float");
        return;
    }
    if (isinf(by)) {
        reply_error(c, "ERR value is NaN or Infinity"); /* as Redis 7 */
        return;
    }
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], H, &n);
    if (f < 0 || !fields_fit_or_reply(c, &argv[1], &argv[2], 1, 1)) {
        return;
    }
    struct rk_buf *v = &c->srv->scratch;
    int have = f ? hget_one(c, &argv[1], &argv[2], v) : 0;
    if (have < 0) {
        return;
    }
    long double cur = 0;
    if (have && !cmd__parse_ldouble(v->base, v->len, &cur)) {
        reply_error(c, "ERR hash value is not a float");
        return;
    }
    char out[CMD_LDOUBLE_CHARS];
    size_t len = cmd__format_ldouble(cur + by, out);
    if (len == 0) {
        reply_error(c, "ERR increment would produce NaN or Infinity");
        return;
    }
    if (hset_one(c, &argv[1], &argv[2], out, len) >= 0) {
        reply_bulk(c, out, len);
    }
}

void cmd_hrandfield(struct client *c, size_t argc, const struct resp_arg *argv)
{
    int64_t count = 1;
    bool with_count = argc >= 3, withvalues = false;
    if (with_count && !cmd__arg_i64(&argv[2], &count)) {
        reply_error(c, ERR_NOT_INT);
        return;
    }
    if (argc >= 4) {
        if (argc > 4 || !cmd__arg_is(&argv[3], "WITHVALUES")) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
        withvalues = true;
    }
    if (with_count &&
        !cmd__random_count_or_reply(c, &argv[2], "fields", &count)) {
        return;
    }
    struct coll_items items;
    cmd__coll_items_init(&items);
    size_t k = 0, *idx = NULL;
    if (cmd__coll_random(c, &argv[1], H, count, &items, &idx, &k) < 0) {
        cmd__coll_items_fini(&items);
        return;
    }
    if (!with_count) {
        if (k == 0) {
            reply_null(c);
        } else {
            reply_bulk(c, cmd__coll_member(&items, idx[0]),
                       items.it[idx[0]].mlen);
        }
        rk_free(idx);
        cmd__coll_items_fini(&items);
        return;
    }
    bool pairs = withvalues && c->proto == 3;
    reply_array(c, withvalues && !pairs ? 2 * k : k);
    for (size_t j = 0; j < k; j++) {
        size_t i = idx[j];
        if (pairs) {
            reply_array(c, 2);
        }
        reply_bulk(c, cmd__coll_member(&items, i), items.it[i].mlen);
        if (withvalues) {
            reply_bulk(c, cmd__coll_value(&items, i), items.it[i].vlen);
        }
    }
    rk_free(idx);
    cmd__coll_items_fini(&items);
}

void cmd_hscan(struct client *c, size_t argc, const struct resp_arg *argv)
{
    cmd__coll_scan(c, argc, argv, H);
}

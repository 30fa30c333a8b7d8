/*
 * cmd/coll_cmd.c - what the hash and set handlers share (hashes.c,
 * sets.c): opening a key as a collection of one type (WRONGTYPE
 * otherwise), collecting its members, HSCAN/SSCAN, and the random picks of
 * HRANDFIELD/SRANDMEMBER/SPOP, with Redis 7's semantics, reply types and
 * error texts (https://redis.io/docs/latest/commands/).
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
#include "common/glob.h"
#include "server/cmd/internal.h"
#include "server/internal.h"

int cmd__coll_open(struct client *c,
                   const struct resp_arg *key,
                   uint8_t type,
                   uint64_t *n)
{
    *n = 0;
    if (c->ks->ops->mget == NULL) {
        reply_error(c, ERR_COLL_CLUSTER);
        return -1;
    }
    struct ks_meta m;
    int rc = c->ks->ops->get(c->ks, key->ptr, key->len, NULL, &m);
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "read");
        return -1;
    }
    if (m.type != type) {
        reply_error(c, ERR_WRONGTYPE);
        return -1;
    }
    *n = m.n_members;
    return 1;
}

bool cmd__member_fits_or_reply(struct client *c,
                               const struct resp_arg *key,
                               const struct resp_arg *m)
{
    if (coll_member_fits(key->len, m->len)) {
        return true;
    }
    reply_errorf(c,
                 "ERR field or member of %zu bytes too long: a key and each "
                 "of its members together are at most %u bytes",
                 m->len, COLL_MAX_MEMBER_KEY - COLL_MEMBER_HDR);
    return false;
}

void cmd__coll_items_init(struct coll_items *it)
{
    memset(it, 0, sizeof(*it));
    rk_buf_init(&it->data);
}

void cmd__coll_items_fini(struct coll_items *it)
{
    rk_buf_fini(&it->data);
    rk_free(it->it);
    memset(it, 0, sizeof(*it));
}

bool cmd__coll_items_add(struct coll_items *it,
                         const char *m,
                         size_t mlen,
                         const char *v,
                         size_t vlen)
{
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 16;
        struct coll_item *p = rk_realloc(it->it, cap * sizeof(*p));
        if (p == NULL) {
            it->oom = true;
            return false;
        }
        it->it = p;
        it->cap = cap;
    }
    struct coll_item *x = &it->it[it->n];
    x->moff = it->data.len;
    x->mlen = mlen;
    x->voff = it->data.len + mlen;
    x->vlen = vlen;
    if (rk_buf_append(&it->data, m, mlen) != RK_OK ||
        rk_buf_append(&it->data, v, vlen) != RK_OK) {
        it->oom = true;
        return false;
    }
    it->n++;
    return true;
}

static bool collect_cb(void *data,
                       const char *m,
                       size_t mlen,
                       const char *v,
                       size_t vlen)
{
    return cmd__coll_items_add(data, m, mlen, v, vlen);
}

int cmd__coll_collect(struct client *c,
                      const struct resp_arg *key,
                      struct coll_items *out)
{
    uint64_t cur = 0;
    do {
        int rc = c->ks->ops->mfold(c->ks, key->ptr, key->len, cur, 4096,
                                   collect_cb, out, &cur);
        if (rc == RK_OK && out->oom) {
            rc = RK_ENOMEM;
        }
        if (rc != RK_OK) {
            cmd__reply_storage_error(c, rc, "read");
            return -1;
        }
    } while (cur != 0);
    return 0;
}

struct span
{
    const char *p;
    size_t len;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    if (c != 0) {
        return c;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

int cmd__coll_items_unique(struct client *c,
                           const struct coll_items *in,
                           struct coll_items *out)
{
    struct span *s = rk_malloc((in->n ? in->n : 1) * sizeof(*s));
    if (s == NULL) {
        reply_error(c, "ERR out of memory");
        return -1;
    }
    for (size_t i = 0; i < in->n; i++) {
        s[i] = (struct span){cmd__coll_member(in, i), in->it[i].mlen};
    }
    qsort(s, in->n, sizeof(*s), span_cmp);
    for (size_t i = 0; i < in->n; i++) {
        if (i > 0 && span_cmp(&s[i - 1], &s[i]) == 0) {
            continue;
        }
        if (!cmd__coll_items_add(out, s[i].p, s[i].len, "", 0)) {
            rk_free(s);
            reply_error(c, "ERR out of memory");
            return -1;
        }
    }
    rk_free(s);
    return 0;
}

bool cmd__coll_store(struct client *c,
                     const struct resp_arg *dst,
                     uint8_t type,
                     const struct coll_items *items,
                     uint64_t expire_at_ms)
{
    if (c->ks->ops->mput == NULL) {
        reply_error(c, ERR_COLL_CLUSTER);
        return false;
    }
    for (size_t i = 0; i < items->n; i++) {
        if (!coll_member_fits(dst->len, items->it[i].mlen)) {
            reply_error(c, "ERR a member is too long for the destination key");
            return false;
        }
    }
    if (cmd__key_delete(c, dst) < 0) {
        return false;
    }
    for (size_t i = 0; i < items->n; i++) {
        bool created;
        uint64_t seq = 0;
        int rc = c->ks->ops->mput(c->ks, dst->ptr, dst->len, type,
                                  cmd__coll_member(items, i), items->it[i].mlen,
                                  cmd__coll_value(items, i), items->it[i].vlen,
                                  &created, &seq);
        cmd__note_write(c, seq);
        if (rc != RK_OK) {
            cmd__reply_storage_error(c, rc, "write");
            return false;
        }
    }
    if (expire_at_ms && items->n) {
        uint64_t seq = 0;
        int rc =
            c->ks->ops->expire(c->ks, dst->ptr, dst->len, expire_at_ms, &seq);
        cmd__note_write(c, seq);
        if (rc != RK_OK) {
            cmd__reply_storage_error(c, rc, "write");
            return false;
        }
    }
    return true;
}

bool cmd__coll_copy(struct client *c,
                    const struct resp_arg *src,
                    const struct resp_arg *dst,
                    uint8_t type,
                    uint64_t expire_at_ms)
{
    struct coll_items items;
    cmd__coll_items_init(&items);
    bool ok = cmd__coll_collect(c, src, &items) == 0 &&
              cmd__coll_store(c, dst, type, &items, expire_at_ms);
    cmd__coll_items_fini(&items);
    return ok;
}

bool cmd__random_count_or_reply(struct client *c,
                                const struct resp_arg *arg,
                                const char *what,
                                int64_t *count)
{
    if (!cmd__arg_i64(arg, count)) {
        reply_error(c, ERR_NOT_INT);
        return false;
    }
    if (*count > INT64_MAX / 2 || *count < -(INT64_MAX / 2)) {
        reply_error(c, "ERR value is out of range");
        return false;
    }
    if (*count < -(int64_t)COLL_MAX_PICKS) {
        reply_errorf(c,
                     "ERR value is out of range: ringkv answers at most %u "
                     "random %s with repeats",
                     COLL_MAX_PICKS, what);
        return false;
    }
    return true;
}

int cmd__coll_random(struct client *c,
                     const struct resp_arg *key,
                     uint8_t type,
                     int64_t count,
                     struct coll_items *items,
                     size_t **idx,
                     size_t *k)
{
    *idx = NULL;
    *k = 0;
    uint64_t n;
    int f = cmd__coll_open(c, key, type, &n);
    if (f < 0 || (f && cmd__coll_collect(c, key, items) < 0)) {
        return -1;
    }
    if (count != 0 && items->n > 0) {
        *idx =
            cmd__coll_pick(items->n, count < 0 ? -count : count, count > 0, k);
        if (*idx == NULL) {
            reply_error(c, "ERR out of memory");
            return -1;
        }
    }
    return 0;
}

/* ---- HSCAN / SSCAN ------------------------------------------------------- */

struct scan_ctx
{
    struct coll_items *items;
    const struct resp_arg *pat; /* NULL: all */
};

static bool scan_cb(void *data,
                    const char *m,
                    size_t mlen,
                    const char *v,
                    size_t vlen)
{
    struct scan_ctx *s = data;
    if (s->pat && !rk_glob_match(s->pat->ptr, s->pat->len, m, mlen, false)) {
        return true;
    }
    return cmd__coll_items_add(s->items, m, mlen, v, vlen);
}

void cmd__coll_scan(struct client *c,
                    size_t argc,
                    const struct resp_arg *argv,
                    uint8_t type)
{
    uint64_t cursor;
    if (!cmd__cursor_or_reply(c, &argv[2], &cursor)) {
        return;
    }
    const struct resp_arg *pat = NULL;
    int64_t count = 10;
    bool novalues = false;
    for (size_t i = 3; i < argc; i++) {
        if (cmd__arg_is(&argv[i], "NOVALUES") && type == OBJTYPE_HASH) {
            novalues = true;
            continue;
        }
        int o = cmd__scan_opt(c, argc, argv, &i, &pat, &count);
        if (o == 0) {
            reply_error(c, ERR_SYNTAX);
        }
        if (o <= 0) {
            return;
        }
    }
    uint64_t n;
    int f = cmd__coll_open(c, &argv[1], type, &n);
    if (f < 0) {
        return;
    }
    struct coll_items items;
    cmd__coll_items_init(&items);
    struct scan_ctx sc = {&items, pat};
    uint64_t next = 0;
    if (f) {
        size_t want = count > 100000 ? 100000 : (size_t)count;
        int rc = c->ks->ops->mfold(c->ks, argv[1].ptr, argv[1].len, cursor,
                                   want, scan_cb, &sc, &next);
        if (rc == RK_OK && items.oom) {
            rc = RK_ENOMEM;
        }
        if (rc == RK_EINVAL) {
            reply_error(c, "ERR invalid cursor");
            cmd__coll_items_fini(&items);
            return;
        }
        if (rc != RK_OK) {
            cmd__reply_storage_error(c, rc, "scan");
            cmd__coll_items_fini(&items);
            return;
        }
    }
    bool vals = type == OBJTYPE_HASH && !novalues;
    reply_array(c, 2);
    char tmp[32];
    int len = snprintf(tmp, sizeof(tmp), "%" PRIu64, next);
    reply_bulk(c, tmp, (size_t)len);
    reply_array(c, items.n * (vals ? 2 : 1));
    for (size_t i = 0; i < items.n; i++) {
        reply_bulk(c, cmd__coll_member(&items, i), items.it[i].mlen);
        if (vals) {
            reply_bulk(c, cmd__coll_value(&items, i), items.it[i].vlen);
        }
    }
    cmd__coll_items_fini(&items);
}

/* ---- random picks -------------------------------------------------------- */

uint64_t cmd__rand64(void)
{
    /* xorshift64*, seeded once from the clock and the address space */
    static uint64_t x;
    if (x == 0) {
        x = server_mono_us() ^ (uint64_t)(uintptr_t)&x ^ 0x9E3779B97F4A7C15ull;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545F4914F6CDD1Dull;
}

size_t *cmd__coll_pick(size_t n, int64_t count, bool unique, size_t *out_n)
{
    size_t k;
    if (unique) {
        k = (uint64_t)count < n ? (size_t)count : n;
    } else if ((uint64_t)count > COLL_MAX_PICKS) {
        return NULL;
    } else {
        k = (size_t)count;
    }
    size_t *idx = rk_malloc((k ? k : 1) * sizeof(*idx));
    if (idx == NULL) {
        return NULL;
    }
    if (!unique) {
        for (size_t i = 0; i < k; i++) {
            idx[i] = (size_t)(cmd__rand64() % n);
        }
    } else {
        /* a partial Fisher-Yates over 0..n-1: k distinct indexes */
        size_t *perm = rk_malloc((n ? n : 1) * sizeof(*perm));
        if (perm == NULL) {
            rk_free(idx);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            perm[i] = i;
        }
        for (size_t i = 0; i < k; i++) {
            size_t j = i + (size_t)(cmd__rand64() % (n - i));
            size_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            idx[i] = perm[i];
        }
        rk_free(perm);
    }
    *out_n = k;
    return idx;
}

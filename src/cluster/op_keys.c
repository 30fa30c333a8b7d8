/*
 * op_keys.c - see op.h: the keys of a coordinated operation (collected,
 * deduplicated, found), what a quorum read leaves in them, and the
 * coordinated keyspace a handler reads and writes them through, with
 * RINGKV.PUT/DEL's write over a client's causal context.  Moved here from
 * src/server/cluster_ops.c (issue 11 item 1), decisions unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/dvv.h"
#include "cluster/op_internal.h"
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/error.h"

/* ---- keys --------------------------------------------------------------- */

int op_add_key(struct op *op, const void *key, size_t klen)
{
    const char *p = key;
    if (chunk_key_is_reserved(key, klen)) {
        /* ringkv's own (chunk.h): the operation fails, nothing is read */
        if (!op->failed) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err),
                     "ERR keys that start with the bytes \\xffrkv\\xff "
                     "are reserved for ringkv's chunked values");
        }
        return RK_OK;
    }
    uint64_t hash = XXH3_64bits(p, klen);
    for (size_t i = 0; op->nkeys <= 64 && i < op->nkeys; i++) {
        if (op->keys[i].hash == hash && op->keys[i].len == klen &&
            memcmp(op->kbuf.base + op->keys[i].off, p, klen) == 0) {
            return RK_OK;
        }
    }
    if (op->nkeys == op->keys_cap) {
        size_t nc = op->keys_cap ? op->keys_cap * 2 : 4;
        struct op_key *k = rk_realloc(op->keys, nc * sizeof(*k));
        if (k == NULL) {
            return RK_ENOMEM;
        }
        op->keys = k;
        op->keys_cap = nc;
    }
    struct op_key *k = &op->keys[op->nkeys];
    struct rk_buf val, obj, ctx, frame;
    if (op->nkeys < op->keys_init) {
        /* a pooled slot: its buffers are kept, emptied */
        val = k->val;
        obj = k->obj;
        ctx = k->ctx;
        frame = k->frame;
        rk_buf_clear(&val);
        rk_buf_clear(&obj);
        rk_buf_clear(&ctx);
        rk_buf_clear(&frame);
    } else {
        rk_buf_init(&val);
        rk_buf_init(&obj);
        rk_buf_init(&ctx);
        rk_buf_init(&frame);
        op->keys_init++;
    }
    memset(k, 0, sizeof(*k));
    k->val = val;
    k->obj = obj;
    k->ctx = ctx;
    k->frame = frame;
    k->off = op->kbuf.len;
    k->len = klen;
    k->hash = hash;
    if (rk_buf_append(&op->kbuf, p, klen) != RK_OK) {
        return RK_ENOMEM;
    }
    op->nkeys++;
    return RK_OK;
}

int op_add_keys(struct op *op,
                const struct op_keyspec *spec,
                size_t argc,
                const struct resp_arg *argv)
{
    if (spec->first <= 0) {
        return RK_OK;
    }
    size_t last = spec->last < 0 ? argc - 1 : (size_t)spec->last;
    for (size_t i = (size_t)spec->first; i <= last && i < argc;
         i += (size_t)spec->step) {
        if (argv[i].len == 0 || argv[i].len > PEER_MAX_KEY) {
            continue; /* never stored: reads find nothing */
        }
        int rc = op_add_key(op, argv[i].ptr, argv[i].len);
        if (rc != RK_OK) {
            return rc;
        }
    }
    return RK_OK;
}

static int key_cmp(const struct op *op,
                   const struct op_key *k,
                   const void *key,
                   size_t klen)
{
    size_t n = k->len < klen ? k->len : klen;
    int c = memcmp(op->kbuf.base + k->off, key, n);
    if (c != 0) {
        return c;
    }
    return k->len < klen ? -1 : k->len > klen;
}

static int key_cmp_sort(const void *a, const void *b, void *ctx)
{
    const struct op *op = ctx;
    const struct op_key *y = b;
    return key_cmp(op, a, op->kbuf.base + y->off, y->len);
}

/* Removes duplicate keys of big key lists (small ones are deduplicated
 * as they are added) and leaves them sorted for op_find. */
void op__dedupe_keys(struct op *op)
{
    if (op->nkeys <= 64) {
        return;
    }
    qsort_r(op->keys, op->nkeys, sizeof(*op->keys), key_cmp_sort, op);
    /* duplicates are swapped behind the kept keys: every slot keeps its
     * own buffers (a pooled operation reuses them) */
    size_t w = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        if (w > 0 && key_cmp_sort(&op->keys[w - 1], &op->keys[i], op) == 0) {
            continue;
        }
        if (w != i) {
            struct op_key t = op->keys[w];
            op->keys[w] = op->keys[i];
            op->keys[i] = t;
        }
        w++;
    }
    op->nkeys = w;
}

/* The declared key, or NULL.  Big key lists are sorted (dedupe_keys). */
static struct op_key *op_find(struct op *op, const void *key, size_t klen)
{
    if (op->nkeys > 64) {
        size_t lo = 0, hi = op->nkeys;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = key_cmp(op, &op->keys[mid], key, klen);
            if (c == 0) {
                return &op->keys[mid];
            }
            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return NULL;
    }
    for (size_t i = 0; i < op->nkeys; i++) {
        if (key_cmp(op, &op->keys[i], key, klen) == 0) {
            return &op->keys[i];
        }
    }
    return NULL;
}

/* ---- read answers ------------------------------------------------------- */

/* Keeps a read answer: the merged object, its clock as the write
 * context, and its live winner for the handler. */
int op__take_read(struct op_machine *m,
                  struct op_key *k,
                  const struct node_result *r,
                  const struct node_settings *set)
{
    rk_buf_clear(&k->obj);
    rk_buf_clear(&k->ctx);
    k->read = true;
    k->live = false;
    k->chunked = false;
    k->had_chunked = false;
    k->had_counter = false;
    if (!r->found) {
        return RK_OK;
    }
    if (rk_buf_append(&k->obj, r->object.ptr, r->object.len) != RK_OK) {
        return RK_ENOMEM;
    }
    struct dvv_obj o;
    dvv_init(&o);
    int rc = dvv_decode(&o, r->object.ptr, r->object.len);
    size_t dropped = 0;
    if (rc == RK_OK) {
        /* the client sees what the replicas will store: under lww the
         * newest sibling only, and at most max_siblings */
        dropped = set->lww ? dvv_lww(&o) : 0;
        size_t over = 0;
        dvv_bound(&o, set->max_siblings, 0, &over, NULL);
        dropped += over;
    }
    if (rc == RK_OK && dropped > 0) {
        rk_buf_clear(&k->obj);
        rc = dvv_encode(&o, &k->obj);
    }
    /* the value a read returns: the winner, or what counter siblings
     * count (types/counter.h) */
    struct counter st;
    counter_init(&st);
    struct counter_view cv = {.kind = COUNTER_VIEW_DEAD};
    if (rc == RK_OK) {
        rc = counter_resolve(&o, rk_env_wall_ms(m->cfg.env), &st, &cv);
    }
    if (rc == RK_OK && cv.kind == COUNTER_VIEW_PLAIN) {
        size_t w = cv.idx;
        k->live = true;
        k->ts = o.sibs[w].ts;
        k->exp = o.sibs[w].expire_at_ms;
        k->ctype = o.sibs[w].ctype;
        k->chunked = o.sibs[w].chunked;
        k->vview = NULL;
        rk_buf_clear(&k->val);
        rc = rk_buf_append(&k->val, dvv_value(&o, w), o.sibs[w].vlen);
    } else if (rc == RK_OK && cv.kind == COUNTER_VIEW_VALUE) {
        k->live = true;
        k->ts = cv.ts;
        k->exp = cv.expire_at_ms;
        k->ctype = false;
        k->chunked = false;
        k->vview = NULL;
        rk_buf_clear(&k->val);
        rc = rk_buf_append(&k->val, cv.val, cv.vlen);
    } else if (rc == RK_OK) {
        k->ts = dvv_max_ts(&o); /* deleted or expired: remember its clock */
    }
    for (size_t i = 0; rc == RK_OK && i < o.n_sibs; i++) {
        k->had_chunked |= o.sibs[i].chunked;
        k->had_counter |= o.sibs[i].counter;
    }
    if (rc == RK_OK) {
        o.n_sibs = 0; /* the clock alone is the context */
        rc = dvv_encode(&o, &k->ctx);
    }
    counter_fini(&st);
    dvv_fini(&o);
    return rc;
}

/* ---- the coordinated keyspace ------------------------------------------- */

/* Whether k holds a value now (written or read, not deleted or expired). */
static bool key_is_live(const struct op *op, const struct op_key *k)
{
    return k->live && !(k->exp && k->exp <= rk_env_wall_ms(op->m->cfg.env));
}

int op_key_get(struct op *op,
               const void *key,
               size_t klen,
               struct op_value *out)
{
    struct op_key *k = op_find(op, key, klen);
    if (k == NULL || !key_is_live(op, k)) {
        return RK_ENOTFOUND;
    }
    size_t skip = 0;
    uint8_t ctlen = 0;
    const char *v = op__kval(k);
    size_t vlen = op__kval_len(k);
    if (k->ctype && vlen > 0) {
        ctlen = (uint8_t)v[0];
        skip = 1 + (size_t)ctlen;
        skip = skip < vlen ? skip : vlen;
    }
    *out = (struct op_value){
        .val = v ? v + skip : "",
        .vlen = vlen - skip,
        .ct = ctlen ? v + 1 : NULL,
        .ctlen = ctlen,
        .ts = k->ts,
        .expire_at_ms = k->exp,
    };
    return RK_OK;
}

/* A new version's HLC timestamp. */
static uint64_t new_ts(const struct op *op)
{
    struct op_machine *m = op->m;
    return hlc_now(m->cfg.clock, rk_env_wall_ms(m->cfg.env));
}

int op_key_put(struct op *op,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               uint64_t expire_at_ms,
               const char *ct,
               uint8_t ctlen,
               size_t max_vlen)
{
    if (klen == 0) {
        return RK_EINVAL;
    }
    struct op_key *k = op_find(op, key, klen);
    if (k == NULL) {
        return klen > PEER_MAX_KEY ? RK_ETOOBIG : RK_EINVAL;
    }
    if (vlen > max_vlen) {
        return RK_ETOOBIG;
    }
    rk_buf_clear(&k->val);
    k->vview = NULL;
    int rc = RK_OK;
    const char *vp = val;
    if (ctlen == 0 && vp && op->owned && vlen > OP_KEEP_BYTES &&
        vp >= op->owned && vlen <= op->owned_len &&
        (size_t)(vp - op->owned) <= op->owned_len - vlen) {
        /* an argument of this operation's own command bytes: viewed,
         * not copied (they live as long as the operation) */
        k->vview = vp;
        k->vview_len = vlen;
        vlen = 0;
    }
    if (ctlen) {
        rc = rk_buf_append(&k->val, &ctlen, 1);
        if (rc == RK_OK) {
            rc = rk_buf_append(&k->val, ct, ctlen);
        }
    }
    if (rc == RK_OK && k->vview == NULL) {
        rc = rk_buf_append(&k->val, val ? val : "", vlen);
    }
    if (rc != RK_OK) {
        k->live = false; /* the value is gone from k: never write it */
        return rc;
    }
    k->live = true;
    k->write = true;
    k->counter = false;
    k->ctype = ctlen > 0;
    k->chunked = false;
    k->exp = expire_at_ms;
    k->ts = new_ts(op);
    return RK_OK;
}

int op_key_del(struct op *op, const void *key, size_t klen)
{
    struct op_key *k = op_find(op, key, klen);
    if (k == NULL || !key_is_live(op, k)) {
        return RK_ENOTFOUND;
    }
    k->live = false;
    k->write = true;
    k->counter = false;
    k->ts = new_ts(op);
    return RK_OK;
}

int op_key_incr(struct op *op,
                const void *key,
                size_t klen,
                int64_t delta,
                int64_t *result)
{
    struct op_key *k = op_find(op, key, klen);
    if (k == NULL) {
        return RK_EINVAL;
    }
    int64_t cur = 0;
    struct op_value v;
    bool live = op_key_get(op, key, klen, &v) == RK_OK;
    if (live && (k->chunked || !counter_parse_i64(v.val, v.vlen, &cur))) {
        return RK_EINVAL;
    }
    if ((delta > 0 && cur > INT64_MAX - delta) ||
        (delta < 0 && cur < INT64_MIN - delta)) {
        return RK_ERANGE;
    }
    int64_t next = cur + delta;
    char num[32];
    size_t n = (size_t)snprintf(num, sizeof(num), "%lld", (long long)next);
    uint64_t exp = live ? v.expire_at_ms : 0;
    if (k->write && !k->counter) {
        /* this operation wrote a value (or deleted the key) already: the
         * new value is written instead */
        int rc = op_key_put(op, key, klen, num, n, exp, NULL, 0, sizeof(num));
        if (rc == RK_OK) {
            *result = next;
        }
        return rc;
    }
    int64_t sum = k->counter ? k->delta : 0;
    if ((delta > 0 && sum > INT64_MAX - delta) ||
        (delta < 0 && sum < INT64_MIN - delta)) {
        return RK_ERANGE;
    }
    rk_buf_clear(&k->val);
    if (rk_buf_append(&k->val, num, n) != RK_OK) {
        return RK_ENOMEM;
    }
    if (!k->counter) {
        struct rk_env *env = op->m->cfg.env;
        uint64_t id[2] = {rk_env_rand64(env), rk_env_rand64(env)};
        memcpy(k->cid, id, sizeof(k->cid));
    }
    k->counter = true;
    k->delta = sum + delta;
    k->vview = NULL;
    k->live = true;
    k->write = true;
    k->ctype = false;
    k->chunked = false;
    k->exp = exp;
    k->ts = new_ts(op);
    *result = next;
    return RK_OK;
}

int op_key_take_frame(struct op *op,
                      const void *key,
                      size_t klen,
                      struct rk_buf *out)
{
    struct op_key *k = op_find(op, key, klen);
    if (k == NULL || !key_is_live(op, k) || k->frame.len == 0 ||
        k->vview == NULL || out->len != 0 || k->write) {
        return RK_ENOTFOUND;
    }
    struct rk_buf t = *out;
    *out = k->frame;
    k->frame = t;
    return RK_OK;
}

const struct rk_buf *op_key_object(const struct op *op)
{
    return &op->keys[0].obj;
}

/*
 * Limits a client's context to what the key's replicas have actually seen
 * (the clock read just before, in `read`, a clock-only encoding; empty
 * when the key was not found): a context may only forget versions, never
 * invent them, so a forged context cannot cover writes that do not exist
 * yet (they would be dropped as already seen when they come).  RK_OK,
 * RK_EINVAL (read does not decode), RK_ENOMEM.
 */
static int cap_context(struct dvv_obj *ctx, const struct rk_buf *read)
{
    struct dvv_obj seen;
    dvv_init(&seen);
    int rc = read->len ? dvv_decode(&seen, read->base, read->len) : RK_OK;
    if (rc != RK_OK) {
        dvv_fini(&seen);
        return RK_EINVAL;
    }
    size_t w = 0;
    for (size_t i = 0; i < ctx->n_clock; i++) {
        uint64_t have = dvv_counter(&seen, ctx->clock[i].actor);
        if (have == 0) {
            continue;
        }
        ctx->clock[w] = ctx->clock[i];
        if (ctx->clock[w].counter > have) {
            ctx->clock[w].counter = have;
        }
        w++;
    }
    ctx->n_clock = w;
    dvv_fini(&seen);
    return RK_OK;
}

/* Whether the context covers a live sibling of the object read (k->obj).
 * RINGKV.DEL writes nothing otherwise: a retried or stale delete must not
 * pile up tombstones, which would push values out under the sibling
 * bound. */
static bool covers_live(const struct op *op,
                        const struct op_key *k,
                        const struct dvv_obj *ctx)
{
    bool removed = false;
    struct dvv_obj cur;
    dvv_init(&cur);
    if (k->obj.len > 0 && dvv_decode(&cur, k->obj.base, k->obj.len) == RK_OK) {
        uint64_t now = rk_env_wall_ms(op->m->cfg.env);
        for (size_t i = 0; i < cur.n_sibs; i++) {
            const struct dvv_sibling *sb = &cur.sibs[i];
            if (!sb->tombstone &&
                !(sb->expire_at_ms && sb->expire_at_ms <= now) &&
                dvv_covers(ctx, sb->dot)) {
                removed = true;
            }
        }
    }
    dvv_fini(&cur);
    return removed;
}

int op_versioned_put(struct op *op,
                     const char *context,
                     size_t clen,
                     bool del,
                     const void *value,
                     size_t vlen,
                     const char *ct,
                     uint8_t ctlen,
                     int *removed)
{
    struct op_key *k = &op->keys[0];
    k->write = false;
    struct dvv_obj ctx;
    dvv_init(&ctx);
    int rc = dvv_context_decode(&ctx, context, clen);
    if (rc == RK_OK) {
        rc = cap_context(&ctx, &k->ctx);
    }
    if (rc != RK_OK) {
        dvv_fini(&ctx);
        return rc == RK_EINVAL ? RK_EINVAL : RK_ENOMEM;
    }
    bool any = del && covers_live(op, k, &ctx);
    rk_buf_clear(&k->ctx);
    rk_buf_clear(&k->val);
    rc = dvv_encode(&ctx, &k->ctx);
    dvv_fini(&ctx);
    k->ctype = !del && ctlen > 0;
    k->chunked = false;
    k->vview = NULL;
    if (rc == RK_OK && k->ctype) {
        rc = rk_buf_append(&k->val, &ctlen, 1);
        if (rc == RK_OK) {
            rc = rk_buf_append(&k->val, ct, ctlen);
        }
    }
    if (rc == RK_OK && !del) {
        rc = rk_buf_append(&k->val, value, vlen);
    }
    if (rc != RK_OK) {
        return RK_ENOMEM;
    }
    k->write = del ? any : true;
    k->tomb = del;
    k->own_ctx = false;
    k->ts = new_ts(op);
    k->exp = 0;
    if (del) {
        *removed = any ? 1 : 0;
    }
    return RK_OK;
}

/*
 * types/counter.c - the counter state (counter.h): encoding, join, reset,
 * increments, and a key's value from its object.
 */
#include "cluster/types/counter.h"

#include <string.h>

#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"

#define FLAG_BASE    0x1u
#define FLAG_PRESENT 0x2u

void counter_init(struct counter *c)
{
    memset(c, 0, sizeof(*c));
    rk_buf_init(&c->base);
}

void counter_fini(struct counter *c)
{
    rk_free(c->e);
    rk_buf_fini(&c->base);
    memset(c, 0, sizeof(*c));
}

void counter_clear(struct counter *c)
{
    c->n = 0;
    c->has_base = false;
    c->base_present = false;
    c->base_ts = 0;
    c->base_actor = 0;
    rk_buf_clear(&c->base);
}

static int reserve(struct counter *c, size_t n)
{
    if (n <= c->cap) {
        return RK_OK;
    }
    size_t cap = c->cap ? c->cap : 4;
    while (cap < n) {
        cap *= 2;
    }
    struct counter_entry *e = rk_realloc(c->e, cap * sizeof(*e));
    if (e == NULL) {
        return RK_ENOMEM;
    }
    c->e = e;
    c->cap = cap;
    return RK_OK;
}

/* Entry order: by actor, then epoch. */
static int entry_cmp(const struct counter_entry *a,
                     const struct counter_entry *b)
{
    if (a->actor != b->actor) {
        return a->actor < b->actor ? -1 : 1;
    }
    if (a->epoch != b->epoch) {
        return a->epoch < b->epoch ? -1 : 1;
    }
    return 0;
}

/* ---- encoding ------------------------------------------------------------ */

/* Parses the encoding: with c NULL only checks it. */
static int parse(struct counter *c, const unsigned char *p, size_t len)
{
    if (len < 2 || p[0] != COUNTER_VERSION ||
        (p[1] & ~(FLAG_BASE | FLAG_PRESENT)) != 0 ||
        ((p[1] & FLAG_PRESENT) && !(p[1] & FLAG_BASE))) {
        return RK_ECORRUPT;
    }
    size_t pos = 2;
    bool has_base = (p[1] & FLAG_BASE) != 0;
    bool present = (p[1] & FLAG_PRESENT) != 0;
    uint64_t bts = 0, bactor = 0;
    size_t blen = 0;
    const unsigned char *bval = NULL;
    if (has_base) {
        if (len - pos < COUNTER_BASE_HDR) {
            return RK_ECORRUPT;
        }
        bts = rk_get_le64(p + pos);
        bactor = rk_get_le64(p + pos + 8);
        blen = rk_get_le32(p + pos + 16);
        pos += COUNTER_BASE_HDR;
        if (blen > len - pos || (!present && blen != 0)) {
            return RK_ECORRUPT;
        }
        bval = p + pos;
        pos += blen;
    }
    if (len - pos < 4) {
        return RK_ECORRUPT;
    }
    size_t n = rk_get_le32(p + pos);
    pos += 4;
    if (n > COUNTER_MAX_ENTRIES || (len - pos) / COUNTER_ENTRY < n ||
        len - pos != n * COUNTER_ENTRY) {
        return RK_ECORRUPT;
    }
    if (c) {
        counter_clear(c);
        if (reserve(c, n) != RK_OK ||
            (blen && rk_buf_append(&c->base, bval, blen) != RK_OK)) {
            return RK_ENOMEM;
        }
    }
    struct counter_entry prev = {0};
    for (size_t i = 0; i < n; i++, pos += COUNTER_ENTRY) {
        struct counter_entry e = {
            rk_get_le64(p + pos),      rk_get_le64(p + pos + 8),
            rk_get_le64(p + pos + 16), rk_get_le64(p + pos + 24),
            rk_get_le64(p + pos + 32), rk_get_le64(p + pos + 40),
        };
        if ((i > 0 && entry_cmp(&e, &prev) <= 0) || e.rp > e.p || e.rn > e.n ||
            (e.p == 0 && e.n == 0)) {
            if (c) {
                counter_clear(c);
            }
            return RK_ECORRUPT;
        }
        prev = e;
        if (c) {
            c->e[i] = e;
        }
    }
    if (c) {
        c->n = n;
        c->has_base = has_base;
        c->base_present = present;
        c->base_ts = bts;
        c->base_actor = bactor;
    }
    return RK_OK;
}

bool counter_valid(const void *p, size_t len)
{
    return p != NULL && parse(NULL, p, len) == RK_OK;
}

int counter_decode(struct counter *c, const void *p, size_t len)
{
    if (p == NULL) {
        counter_clear(c);
        return RK_ECORRUPT;
    }
    return parse(c, p, len);
}

int counter_encode(const struct counter *c, struct rk_buf *out)
{
    size_t need = COUNTER_HDR + c->n * COUNTER_ENTRY +
                  (c->has_base ? COUNTER_BASE_HDR + c->base.len : 0);
    if (rk_buf_reserve(out, need) != RK_OK) {
        return RK_ENOMEM;
    }
    unsigned char *p = (unsigned char *)out->base + out->len;
    p[0] = COUNTER_VERSION;
    p[1] = (unsigned char)((c->has_base ? FLAG_BASE : 0) |
                           (c->has_base && c->base_present ? FLAG_PRESENT : 0));
    size_t pos = 2;
    if (c->has_base) {
        size_t blen = c->base_present ? c->base.len : 0;
        rk_put_le64(p + pos, c->base_ts);
        rk_put_le64(p + pos + 8, c->base_actor);
        rk_put_le32(p + pos + 16, (uint32_t)blen);
        pos += COUNTER_BASE_HDR;
        if (blen) {
            memcpy(p + pos, c->base.base, blen);
            pos += blen;
        }
    }
    rk_put_le32(p + pos, (uint32_t)c->n);
    pos += 4;
    for (size_t i = 0; i < c->n; i++, pos += COUNTER_ENTRY) {
        rk_put_le64(p + pos, c->e[i].actor);
        rk_put_le64(p + pos + 8, c->e[i].epoch);
        rk_put_le64(p + pos + 16, c->e[i].p);
        rk_put_le64(p + pos + 24, c->e[i].n);
        rk_put_le64(p + pos + 32, c->e[i].rp);
        rk_put_le64(p + pos + 40, c->e[i].rn);
    }
    out->len += pos;
    return RK_OK;
}

/* ---- join, reset, add ---------------------------------------------------- */

/* Index of actor's newest entry (largest epoch), or where an entry of
 * actor would go (*found false: after every entry of smaller actors). */
static size_t find(const struct counter *c, uint64_t actor, bool *found)
{
    size_t lo = 0, hi = c->n; /* first entry of a larger actor */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->e[mid].actor <= actor) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo > 0 && c->e[lo - 1].actor == actor;
    return *found ? lo - 1 : lo;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* > 0 when base (ts, actor, present, val) is newer than c's. */
static int base_cmp(const struct counter *c,
                    uint64_t ts,
                    uint64_t actor,
                    bool present,
                    const void *val,
                    size_t len)
{
    if (!c->has_base) {
        return 1;
    }
    if (ts != c->base_ts) {
        return ts > c->base_ts ? 1 : -1;
    }
    if (actor != c->base_actor) {
        return actor > c->base_actor ? 1 : -1;
    }
    if (present != c->base_present) {
        return present ? 1 : -1;
    }
    size_t m = len < c->base.len ? len : c->base.len;
    int x = m ? memcmp(val, c->base.base, m) : 0;
    if (x != 0) {
        return x > 0 ? 1 : -1;
    }
    return len == c->base.len ? 0 : (len > c->base.len ? 1 : -1);
}

static int set_base(struct counter *c,
                    uint64_t ts,
                    uint64_t actor,
                    bool present,
                    const void *val,
                    size_t len)
{
    struct rk_buf nb; /* copied first: val may be c's own base */
    rk_buf_init(&nb);
    if (present && len && rk_buf_append(&nb, val, len) != RK_OK) {
        return RK_ENOMEM;
    }
    rk_buf_fini(&c->base);
    c->base = nb;
    c->has_base = true;
    c->base_present = present;
    c->base_ts = ts;
    c->base_actor = actor;
    return RK_OK;
}

int counter_offer_base(struct counter *c,
                       uint64_t ts,
                       uint64_t actor,
                       bool present,
                       const void *val,
                       size_t len)
{
    if (!present) {
        len = 0;
    }
    if (base_cmp(c, ts, actor, present, val, len) <= 0) {
        return RK_OK;
    }
    return set_base(c, ts, actor, present, val, len);
}

int counter_join(struct counter *c, const struct counter *other)
{
    if (other->has_base) {
        int rc = counter_offer_base(c, other->base_ts, other->base_actor,
                                    other->base_present, other->base.base,
                                    other->base.len);
        if (rc != RK_OK) {
            return rc;
        }
    }
    /* entries: a sorted merge into fresh memory */
    size_t cap = c->n + other->n;
    if (cap == 0) {
        return RK_OK;
    }
    struct counter_entry *m = rk_malloc(cap * sizeof(*m));
    if (m == NULL) {
        return RK_ENOMEM;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < c->n || j < other->n) {
        int x = j >= other->n ? -1
                : i >= c->n   ? 1
                              : entry_cmp(&c->e[i], &other->e[j]);
        if (x < 0) {
            m[k++] = c->e[i++];
        } else if (x > 0) {
            m[k++] = other->e[j++];
        } else {
            const struct counter_entry *a = &c->e[i++], *b = &other->e[j++];
            m[k++] = (struct counter_entry){
                a->actor,
                a->epoch,
                max64(a->p, b->p),
                max64(a->n, b->n),
                max64(a->rp, b->rp),
                max64(a->rn, b->rn),
            };
        }
    }
    if (k > COUNTER_MAX_ENTRIES) {
        rk_free(m);
        return RK_ERANGE;
    }
    rk_free(c->e);
    c->e = m;
    c->n = k;
    c->cap = cap;
    return RK_OK;
}

int counter_reset(struct counter *c,
                  uint64_t ts,
                  uint64_t actor,
                  bool present,
                  const void *val,
                  size_t len)
{
    int rc = set_base(c, ts, actor, present, val, present ? len : 0);
    if (rc != RK_OK) {
        return rc;
    }
    for (size_t i = 0; i < c->n; i++) {
        c->e[i].rp = c->e[i].p;
        c->e[i].rn = c->e[i].n;
    }
    return RK_OK;
}

int counter_add(struct counter *c,
                uint64_t actor,
                uint64_t epoch,
                int64_t delta)
{
    if (delta == 0) {
        return RK_OK;
    }
    bool found;
    size_t at = find(c, actor, &found);
    if (!found) {
        if (c->n >= COUNTER_MAX_ENTRIES) {
            return RK_ERANGE;
        }
        if (reserve(c, c->n + 1) != RK_OK) {
            return RK_ENOMEM;
        }
        memmove(c->e + at + 1, c->e + at, (c->n - at) * sizeof(*c->e));
        c->e[at] = (struct counter_entry){.actor = actor, .epoch = epoch};
        c->n++;
    }
    struct counter_entry *e = &c->e[at];
    /* |INT64_MIN| fits in a u64 */
    uint64_t mag = delta > 0 ? (uint64_t)delta : (uint64_t)0 - (uint64_t)delta;
    uint64_t *slot = delta > 0 ? &e->p : &e->n;
    if (*slot > UINT64_MAX - mag) {
        if (!found) {
            memmove(c->e + at, c->e + at + 1, (c->n - at - 1) * sizeof(*c->e));
            c->n--;
        }
        return RK_ERANGE;
    }
    *slot += mag;
    return RK_OK;
}

bool counter_is_live(const struct counter *c)
{
    if (c->has_base && c->base_present) {
        return true;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->e[i].p > c->e[i].rp || c->e[i].n > c->e[i].rn) {
            return true;
        }
    }
    return false;
}

/* An integer as Redis's string2ll takes one: optional '-', digits, no
 * leading zero (but "0"), no sign on zero, within int64. */
bool counter_parse_i64(const char *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) {
        return false;
    }
    size_t i = 0;
    bool neg = p[0] == '-';
    if (neg) {
        i = 1;
        if (len == 1) {
            return false;
        }
    }
    if (p[i] == '0' && (len - i > 1 || neg)) {
        return false;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(p[i] - '0');
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

int counter_sum(const struct counter *c, __int128 *out)
{
    __int128 s = 0;
    if (c->has_base && c->base_present) {
        int64_t b;
        if (!counter_parse_i64(c->base.base, c->base.len, &b)) {
            return RK_EINVAL;
        }
        s = b;
    }
    /* at most 65,536 terms of < 2^64 each: no overflow of 128 bits */
    for (size_t i = 0; i < c->n; i++) {
        s += (__int128)(c->e[i].p - c->e[i].rp);
        s -= (__int128)(c->e[i].n - c->e[i].rn);
    }
    *out = s;
    return RK_OK;
}

size_t counter_format(__int128 v, char *buf)
{
    char tmp[48];
    size_t n = 0;
    bool neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)0 - (unsigned __int128)v
                              : (unsigned __int128)v;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    size_t w = 0;
    if (neg) {
        buf[w++] = '-';
    }
    while (n) {
        buf[w++] = tmp[--n];
    }
    buf[w] = '\0';
    return w;
}

/* ---- a key's value ------------------------------------------------------- */

static bool sib_expired(const struct dvv_sibling *s, uint64_t now_ms)
{
    return now_ms && s->expire_at_ms != 0 && s->expire_at_ms <= now_ms;
}

/* Joins every counter sibling of o (and, with ctx, only those ctx
 * covers) into st.  *any: whether there was one. */
static int join_counters(const struct dvv_obj *o,
                         const struct dvv_obj *ctx,
                         struct counter *st,
                         bool *any)
{
    struct counter one;
    counter_init(&one);
    int rc = RK_OK;
    *any = false;
    for (size_t i = 0; rc == RK_OK && i < o->n_sibs; i++) {
        const struct dvv_sibling *s = &o->sibs[i];
        if (!s->counter || (ctx && !dvv_covers(ctx, s->dot))) {
            continue;
        }
        *any = true;
        rc = counter_decode(&one, dvv_value(o, i), s->vlen);
        if (rc == RK_OK) {
            rc = counter_join(st, &one);
        }
    }
    counter_fini(&one);
    return rc;
}

/* Offers o's plain siblings as bases of st: a value as present (one with a
 * content type or in chunks as a delete: its bytes are not a base), a
 * tombstone as a delete; with as_deletes every one as a delete.  *from:
 * the sibling st's base came from afterwards, -1 when none.  RK_OK,
 * RK_ENOMEM. */
static int offer_plain(const struct dvv_obj *o,
                       struct counter *st,
                       bool as_deletes,
                       long *from)
{
    *from = -1;
    for (size_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sibling *s = &o->sibs[i];
        if (s->counter) {
            continue;
        }
        bool present = !as_deletes && !s->tombstone && !s->ctype && !s->chunked;
        const char *val = present ? dvv_value(o, i) : NULL;
        size_t len = present ? s->vlen : 0;
        if (base_cmp(st, s->ts, s->dot.actor, present, val, len) <= 0) {
            continue;
        }
        int rc = set_base(st, s->ts, s->dot.actor, present, val, len);
        if (rc != RK_OK) {
            return rc;
        }
        *from = (long)i;
    }
    return RK_OK;
}

int counter_resolve(const struct dvv_obj *o,
                    uint64_t now_ms,
                    struct counter *st,
                    struct counter_view *v)
{
    memset(v, 0, sizeof(*v));
    counter_clear(st);
    long newest = dvv_winner(o);
    if (newest < 0) {
        return RK_OK;
    }
    v->ts = dvv_max_ts(o);
    bool any = false;
    int rc = join_counters(o, NULL, st, &any);
    if (rc != RK_OK) {
        return rc;
    }
    const struct dvv_sibling *w = &o->sibs[newest];
    if (!any) {
        /* replica_winner's rule */
        if (!w->tombstone && !sib_expired(w, now_ms)) {
            v->kind = COUNTER_VIEW_PLAIN;
            v->idx = (size_t)newest;
            v->expire_at_ms = w->expire_at_ms;
        }
        v->expired = !w->tombstone && sib_expired(w, now_ms);
        return RK_OK;
    }
    if (sib_expired(w, now_ms)) {
        v->expired = true;
        return RK_OK;
    }
    v->expire_at_ms = w->tombstone ? 0 : w->expire_at_ms;
    /* plain siblings are bases; one with a content type or in chunks
     * that is the newest base is the value as it is */
    long from;
    rc = offer_plain(o, st, false, &from);
    if (rc != RK_OK) {
        return rc;
    }
    if (from >= 0 && (o->sibs[from].ctype || o->sibs[from].chunked)) {
        v->kind = COUNTER_VIEW_PLAIN;
        v->idx = (size_t)from;
        v->expire_at_ms = o->sibs[from].expire_at_ms;
        return RK_OK;
    }
    if (!counter_is_live(st)) {
        return RK_OK;
    }
    v->kind = COUNTER_VIEW_VALUE;
    if (counter_sum(st, &v->sum) == RK_OK) {
        v->numeric = true;
        v->vlen = counter_format(v->sum, v->num);
        v->val = v->num;
    } else {
        v->val = st->base.len ? st->base.base : "";
        v->vlen = st->base.len;
    }
    return RK_OK;
}

int counter_incr(const struct dvv_obj *o,
                 uint64_t now_ms,
                 uint64_t ts,
                 uint64_t actor,
                 uint64_t epoch,
                 int64_t delta,
                 struct counter *st,
                 uint64_t *expire_at_ms,
                 int64_t *result)
{
    struct counter_view v;
    int rc = counter_resolve(o, now_ms, st, &v);
    if (rc != RK_OK) {
        return rc;
    }
    __int128 cur = 0;
    uint64_t exp = 0;
    if (v.kind == COUNTER_VIEW_DEAD) {
        /* absent or deleted: the states (a DEL's tombstone carries its
         * reset) count 0 already; plain siblings are offered as bases, so
         * that the state keeps a concurrent SET's value when it is newer
         * than the delete.  Expired: what the states counted is observed
         * (a reset), its base a delete just after the newest sibling, so
         * that the expired value does not come back but a later SET
         * still wins */
        bool any = false;
        long from;
        counter_clear(st);
        rc = join_counters(o, NULL, st, &any);
        if (rc == RK_OK) {
            rc = offer_plain(o, st, true, &from);
        }
        if (rc == RK_OK && v.expired) {
            rc = counter_reset(st, v.ts + 1, actor, false, NULL, 0);
        }
        if (rc != RK_OK) {
            return rc;
        }
    } else if (v.kind == COUNTER_VIEW_PLAIN) {
        const struct dvv_sibling *s = &o->sibs[v.idx];
        size_t plen = 0;
        const char *pv = dvv_payload(o, v.idx, &plen);
        int64_t b;
        if (s->chunked || !counter_parse_i64(pv, plen, &b)) {
            return RK_EINVAL;
        }
        /* the plain value becomes the base, the rest is observed */
        bool any = false;
        counter_clear(st);
        rc = join_counters(o, NULL, st, &any);
        if (rc == RK_OK) {
            rc = counter_reset(st, s->ts, s->dot.actor, true, pv, plen);
        }
        if (rc != RK_OK) {
            return rc;
        }
        cur = b;
        exp = s->expire_at_ms;
    } else {
        if (!v.numeric) {
            return RK_EINVAL;
        }
        if (v.sum > INT64_MAX || v.sum < INT64_MIN) {
            return RK_ERANGE;
        }
        cur = v.sum;
        exp = v.expire_at_ms;
    }
    __int128 next = cur + delta;
    if (next > INT64_MAX || next < INT64_MIN) {
        return RK_ERANGE;
    }
    rc = counter_add(st, actor, epoch, delta);
    if (rc == RK_OK && !counter_is_live(st)) {
        /* INCRBY 0 (or increments that cancel) on a key that does not
         * exist: Redis creates it with 0 */
        rc = counter_reset(st, ts, actor, true, "0", 1);
        next = 0;
    }
    if (rc != RK_OK) {
        return rc;
    }
    *expire_at_ms = exp;
    *result = (int64_t)next;
    return RK_OK;
}

int counter_reset_over(const struct dvv_obj *o,
                       const struct dvv_obj *ctx,
                       uint64_t ts,
                       uint64_t actor,
                       bool present,
                       const void *val,
                       size_t len,
                       struct counter *st,
                       bool *convert)
{
    counter_clear(st);
    bool any = false;
    int rc = join_counters(o, ctx, st, &any);
    if (rc == RK_OK && any) {
        rc = counter_reset(st, ts, actor, present, val, len);
    }
    *convert = rc == RK_OK && any;
    return rc;
}

/*
 * dvv.c - dotted version vector sets with explicit dots (the model, the
 * rules and the encoding are in dvv.h; the paper is cited there).
 */
#include "cluster/dvv.h"

#include <string.h>

#include "cluster/types/counter.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/hex.h"

/* memmove that accepts NULL pointers when n is 0. */
static void mcopy(void *dst, const void *src, size_t n)
{
    if (n) {
        memmove(dst, src, n);
    }
}

void dvv_init(struct dvv_obj *o)
{
    memset(o, 0, sizeof(*o));
    rk_buf_init(&o->vals);
}

void dvv_fini(struct dvv_obj *o)
{
    rk_free(o->clock);
    rk_free(o->sibs);
    rk_buf_fini(&o->vals);
    dvv_init(o);
}

void dvv_clear(struct dvv_obj *o)
{
    o->n_clock = 0;
    o->n_sibs = 0;
    o->type = OBJTYPE_STRING;
    rk_buf_clear(&o->vals);
}

static int reserve_clock(struct dvv_obj *o, size_t n)
{
    if (n <= o->cap_clock) {
        return RK_OK;
    }
    size_t cap = o->cap_clock ? o->cap_clock : 4;
    while (cap < n) {
        cap *= 2;
    }
    struct dvv_entry *p = rk_realloc(o->clock, cap * sizeof(*p));
    if (p == NULL) {
        return RK_ENOMEM;
    }
    o->clock = p;
    o->cap_clock = cap;
    return RK_OK;
}

static int reserve_sibs(struct dvv_obj *o, size_t n)
{
    if (n <= o->cap_sibs) {
        return RK_OK;
    }
    size_t cap = o->cap_sibs ? o->cap_sibs : 2;
    while (cap < n) {
        cap *= 2;
    }
    struct dvv_sibling *p = rk_realloc(o->sibs, cap * sizeof(*p));
    if (p == NULL) {
        return RK_ENOMEM;
    }
    o->sibs = p;
    o->cap_sibs = cap;
    return RK_OK;
}

int dvv_copy(struct dvv_obj *dst, const struct dvv_obj *src)
{
    dvv_clear(dst);
    if (reserve_clock(dst, src->n_clock) != RK_OK ||
        reserve_sibs(dst, src->n_sibs) != RK_OK ||
        rk_buf_append(&dst->vals, src->vals.base ? src->vals.base : "",
                      src->vals.len) != RK_OK) {
        dvv_clear(dst);
        return RK_ENOMEM;
    }
    if (src->n_clock) {
        mcopy(dst->clock, src->clock, src->n_clock * sizeof(*src->clock));
    }
    if (src->n_sibs) {
        mcopy(dst->sibs, src->sibs, src->n_sibs * sizeof(*src->sibs));
    }
    dst->n_clock = src->n_clock;
    dst->n_sibs = src->n_sibs;
    dst->type = src->type;
    return RK_OK;
}

static int dot_cmp(struct dvv_dot a, struct dvv_dot b)
{
    if (a.actor != b.actor) {
        return a.actor < b.actor ? -1 : 1;
    }
    if (a.counter != b.counter) {
        return a.counter < b.counter ? -1 : 1;
    }
    return 0;
}

/* Index of actor's entry, or -1. */
static long clock_find(const struct dvv_obj *o, uint64_t actor)
{
    size_t lo = 0, hi = o->n_clock;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->clock[mid].actor < actor) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < o->n_clock && o->clock[lo].actor == actor ? (long)lo : -1;
}

uint64_t dvv_counter(const struct dvv_obj *o, uint64_t actor)
{
    long i = clock_find(o, actor);
    return i < 0 ? 0 : o->clock[i].counter;
}

bool dvv_covers(const struct dvv_obj *o, struct dvv_dot d)
{
    return dvv_counter(o, d.actor) >= d.counter;
}

/* ---- encoding ------------------------------------------------------------ */

bool dvv_ctype_valid(const void *value, size_t vlen)
{
    const unsigned char *v = value;
    if (vlen == 0 || v[0] == 0 || v[0] > DVV_MAX_CTYPE ||
        (size_t)v[0] + 1 > vlen) {
        return false;
    }
    for (size_t i = 1; i <= v[0]; i++) {
        if (v[i] < 0x20 || v[i] > 0x7e) {
            return false; /* visible ASCII and space only (a header value) */
        }
    }
    return true;
}

size_t dvv_encoded_size(const struct dvv_obj *o)
{
    size_t n = (o->type == OBJTYPE_STRING ? DVV_HDR : DVV_HDR_V2) +
               o->n_clock * DVV_CLOCK_ENTRY;
    for (size_t i = 0; i < o->n_sibs; i++) {
        n += DVV_SIB_HDR + o->sibs[i].vlen;
    }
    return n;
}

int dvv_encode(const struct dvv_obj *o, struct rk_buf *out)
{
    size_t need = dvv_encoded_size(o);
    if (rk_buf_reserve(out, need) != RK_OK) {
        return RK_ENOMEM;
    }
    unsigned char *p = (unsigned char *)out->base + out->len;
    /* the oldest version that holds the object (dvv.h "Encoding") */
    size_t h = o->type == OBJTYPE_STRING ? DVV_HDR : DVV_HDR_V2;
    p[0] = o->type == OBJTYPE_STRING ? DVV_FORMAT_V1 : DVV_FORMAT_VERSION;
    p[1] = 0;
    if (h == DVV_HDR_V2) {
        p[2] = o->type;
    }
    rk_put_le16(p + h - 4, (uint16_t)o->n_clock);
    rk_put_le16(p + h - 2, (uint16_t)o->n_sibs);
    p += h;
    for (size_t i = 0; i < o->n_clock; i++) {
        rk_put_le64(p, o->clock[i].actor);
        rk_put_le64(p + 8, o->clock[i].counter);
        rk_put_le64(p + 16, o->clock[i].ts);
        p += DVV_CLOCK_ENTRY;
    }
    for (size_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sibling *s = &o->sibs[i];
        rk_put_le64(p, s->dot.actor);
        rk_put_le64(p + 8, s->dot.counter);
        rk_put_le64(p + 16, s->ts);
        rk_put_le64(p + 24, s->expire_at_ms);
        p[32] = (unsigned char)((s->tombstone ? DVV_SIB_TOMBSTONE : 0) |
                                (s->ctype ? DVV_SIB_CTYPE : 0) |
                                (s->chunked ? DVV_SIB_CHUNKED : 0) |
                                (s->counter ? DVV_SIB_COUNTER : 0));
        rk_put_le32(p + 33, (uint32_t)s->vlen);
        p += DVV_SIB_HDR;
        if (s->vlen) {
            mcopy(p, o->vals.base + s->voff, s->vlen);
            p += s->vlen;
        }
    }
    out->len += need;
    return RK_OK;
}

int dvv_decode(struct dvv_obj *o, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    dvv_clear(o);
    if (len < DVV_HDR) {
        return RK_ECORRUPT;
    }
    if (p[0] != DVV_FORMAT_V1 && p[0] != DVV_FORMAT_VERSION) {
        return RK_EVERSION;
    }
    size_t h = p[0] == DVV_FORMAT_V1 ? DVV_HDR : DVV_HDR_V2;
    /* version 2 carries a type other than string (canonical form) */
    if (len < h || (h == DVV_HDR_V2 && p[2] == OBJTYPE_STRING)) {
        return RK_ECORRUPT;
    }
    size_t nc = rk_get_le16(p + h - 4), ns = rk_get_le16(p + h - 2);
    if (p[1] != 0 || nc > DVV_MAX_CLOCK || ns > DVV_MAX_SIBLINGS ||
        (len - h) / DVV_CLOCK_ENTRY < nc) {
        return RK_ECORRUPT;
    }
    size_t pos = h;
    if (reserve_clock(o, nc) != RK_OK || reserve_sibs(o, ns) != RK_OK) {
        return RK_ENOMEM;
    }
    for (size_t i = 0; i < nc; i++, pos += DVV_CLOCK_ENTRY) {
        struct dvv_entry e = {rk_get_le64(p + pos), rk_get_le64(p + pos + 8),
                              rk_get_le64(p + pos + 16)};
        if (e.counter == 0 || (i > 0 && o->clock[i - 1].actor >= e.actor)) {
            goto corrupt;
        }
        o->clock[i] = e;
        o->n_clock = i + 1;
    }
    if (rk_buf_reserve(&o->vals, len - pos) != RK_OK) {
        dvv_clear(o);
        return RK_ENOMEM;
    }
    for (size_t i = 0; i < ns; i++) {
        if (len - pos < DVV_SIB_HDR) {
            goto corrupt;
        }
        struct dvv_sibling s = {
            .dot = {rk_get_le64(p + pos), rk_get_le64(p + pos + 8)},
            .ts = rk_get_le64(p + pos + 16),
            .expire_at_ms = rk_get_le64(p + pos + 24),
            .tombstone = (p[pos + 32] & DVV_SIB_TOMBSTONE) != 0,
            .ctype = (p[pos + 32] & DVV_SIB_CTYPE) != 0,
            .chunked = (p[pos + 32] & DVV_SIB_CHUNKED) != 0,
            .counter = (p[pos + 32] & DVV_SIB_COUNTER) != 0,
            .vlen = rk_get_le32(p + pos + 33),
        };
        if ((p[pos + 32] & ~(DVV_SIB_TOMBSTONE | DVV_SIB_CTYPE |
                             DVV_SIB_CHUNKED | DVV_SIB_COUNTER)) != 0 ||
            s.dot.counter == 0) {
            goto corrupt;
        }
        pos += DVV_SIB_HDR;
        if (s.vlen > len - pos ||
            (s.tombstone &&
             ((s.vlen != 0 && !s.counter) || s.expire_at_ms != 0 || s.ctype)) ||
            (s.chunked && (s.tombstone || s.ctype)) ||
            (s.counter &&
             (s.ctype || s.chunked || !counter_valid(p + pos, s.vlen))) ||
            (s.ctype && !dvv_ctype_valid(p + pos, s.vlen)) ||
            (i > 0 && dot_cmp(o->sibs[i - 1].dot, s.dot) >= 0) ||
            !dvv_covers(o, s.dot)) {
            goto corrupt;
        }
        s.voff = o->vals.len;
        mcopy(o->vals.base + o->vals.len, p + pos, s.vlen);
        o->vals.len += s.vlen;
        pos += s.vlen;
        o->sibs[i] = s;
        o->n_sibs = i + 1;
    }
    if (pos != len) {
        goto corrupt;
    }
    o->type = h == DVV_HDR_V2 ? p[2] : OBJTYPE_STRING;
    return RK_OK;
corrupt:
    dvv_clear(o);
    return RK_ECORRUPT;
}

static const char HEX[] = "0123456789abcdef";

int dvv_context_encode(const struct dvv_obj *o, struct rk_buf *out)
{
    size_t nbytes = 3 + o->n_clock * 16;
    if (rk_buf_reserve(out, nbytes * 2) != RK_OK) {
        return RK_ENOMEM;
    }
    unsigned char tmp[16];
    char *w = out->base + out->len;
    tmp[0] = 1;
    rk_put_le16(tmp + 1, (uint16_t)o->n_clock);
    for (size_t i = 0; i < 3; i++) {
        *w++ = HEX[tmp[i] >> 4];
        *w++ = HEX[tmp[i] & 15];
    }
    for (size_t e = 0; e < o->n_clock; e++) {
        rk_put_le64(tmp, o->clock[e].actor);
        rk_put_le64(tmp + 8, o->clock[e].counter);
        for (size_t i = 0; i < 16; i++) {
            *w++ = HEX[tmp[i] >> 4];
            *w++ = HEX[tmp[i] & 15];
        }
    }
    out->len += nbytes * 2;
    return RK_OK;
}

/* Reads n bytes of hex at t into b; false on a non-hex digit. */
static bool unhex(const char *t, unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int h = rk_hex_digit(t[2 * i]), l = rk_hex_digit(t[2 * i + 1]);
        if (h < 0 || l < 0) {
            return false;
        }
        b[i] = (unsigned char)(h << 4 | l);
    }
    return true;
}

int dvv_context_decode(struct dvv_obj *ctx, const char *text, size_t len)
{
    dvv_clear(ctx);
    if (len == 0) {
        return RK_OK;
    }
    unsigned char b[16];
    if (len < 6 || len % 2 != 0 || !unhex(text, b, 3) || b[0] != 1) {
        return RK_EINVAL;
    }
    size_t n = rk_get_le16(b + 1);
    if (n > DVV_MAX_CLOCK || (len - 6) != n * 32) {
        return RK_EINVAL;
    }
    if (reserve_clock(ctx, n) != RK_OK) {
        return RK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!unhex(text + 6 + 32 * i, b, 16)) {
            dvv_clear(ctx);
            return RK_EINVAL;
        }
        struct dvv_entry e = {rk_get_le64(b), rk_get_le64(b + 8), 0};
        if (e.counter == 0 || (i > 0 && ctx->clock[i - 1].actor >= e.actor)) {
            dvv_clear(ctx);
            return RK_EINVAL;
        }
        ctx->clock[i] = e;
        ctx->n_clock = i + 1;
    }
    return RK_OK;
}

/* ---- order -----------------------------------------------------------------
 */

int dvv_sibling_cmp(const struct dvv_obj *ox,
                    const struct dvv_sibling *x,
                    const struct dvv_obj *oy,
                    const struct dvv_sibling *y)
{
    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    int c = dot_cmp(x->dot, y->dot);
    if (c != 0) {
        return c;
    }
    if (x->tombstone != y->tombstone) {
        return x->tombstone ? 1 : -1;
    }
    if (x->ctype != y->ctype) {
        return x->ctype ? 1 : -1;
    }
    if (x->chunked != y->chunked) {
        return x->chunked ? 1 : -1;
    }
    if (x->counter != y->counter) {
        return x->counter ? 1 : -1;
    }
    size_t n = x->vlen < y->vlen ? x->vlen : y->vlen;
    c = n ? memcmp(ox->vals.base + x->voff, oy->vals.base + y->voff, n) : 0;
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    if (x->vlen != y->vlen) {
        return x->vlen < y->vlen ? -1 : 1;
    }
    if (x->expire_at_ms != y->expire_at_ms) {
        return x->expire_at_ms < y->expire_at_ms ? -1 : 1;
    }
    return 0;
}

long dvv_winner(const struct dvv_obj *o)
{
    long best = -1;
    for (size_t i = 0; i < o->n_sibs; i++) {
        if (best < 0 ||
            dvv_sibling_cmp(o, &o->sibs[i], o, &o->sibs[best]) > 0) {
            best = (long)i;
        }
    }
    return best;
}

/* ---- update and merge ------------------------------------------------------
 */

/* Sets actor's entry to max(counter) / max(ts); keeps the clock sorted. */
static int clock_raise(struct dvv_obj *o,
                       uint64_t actor,
                       uint64_t counter,
                       uint64_t ts)
{
    long i = clock_find(o, actor);
    if (i >= 0) {
        struct dvv_entry *e = &o->clock[i];
        if (counter > e->counter) {
            e->counter = counter;
            e->ts = ts > e->ts ? ts : e->ts;
        } else if (counter == e->counter && ts > e->ts) {
            e->ts = ts;
        }
        return RK_OK;
    }
    if (reserve_clock(o, o->n_clock + 1) != RK_OK) {
        return RK_ENOMEM;
    }
    size_t at = 0;
    while (at < o->n_clock && o->clock[at].actor < actor) {
        at++;
    }
    mcopy(o->clock + at + 1, o->clock + at,
          (o->n_clock - at) * sizeof(*o->clock));
    o->clock[at] = (struct dvv_entry){actor, counter, ts};
    o->n_clock++;
    return RK_OK;
}

int dvv_update(struct dvv_obj *o,
               const struct dvv_obj *ctx,
               uint64_t actor,
               uint64_t floor,
               const struct dvv_write *w,
               struct dvv_dot *dot)
{
    if (actor == DVV_ACTOR_LEGACY ||
        (w->tombstone &&
         ((w->vlen != 0 && !w->counter) || w->expire_at_ms != 0 || w->ctype)) ||
        (w->chunked && (w->tombstone || w->ctype)) ||
        (w->counter &&
         (w->ctype || w->chunked || !counter_valid(w->value, w->vlen))) ||
        (w->vlen != 0 && w->value == NULL) ||
        (w->ctype && !dvv_ctype_valid(w->value, w->vlen))) {
        return RK_EINVAL;
    }
    uint64_t base = dvv_counter(o, actor);
    if (ctx && dvv_counter(ctx, actor) > base) {
        base = dvv_counter(ctx, actor);
    }
    if (floor > base) {
        base = floor;
    }
    if (base == UINT64_MAX) {
        return RK_ERANGE;
    }
    /* Work on a copy so that o is untouched on error. */
    struct dvv_obj n;
    dvv_init(&n);
    int rc = reserve_sibs(&n, o->n_sibs + 1);
    if (rc == RK_OK) {
        rc = reserve_clock(&n, o->n_clock + (ctx ? ctx->n_clock : 0) + 1);
    }
    if (rc == RK_OK) {
        rc = rk_buf_reserve(&n.vals, o->vals.len + w->vlen);
    }
    if (rc != RK_OK) {
        dvv_fini(&n);
        return RK_ENOMEM;
    }
    mcopy(n.clock, o->clock, o->n_clock * sizeof(*o->clock));
    n.n_clock = o->n_clock;
    for (size_t i = 0; ctx && i < ctx->n_clock; i++) {
        /* room was reserved: cannot fail */
        (void)clock_raise(&n, ctx->clock[i].actor, ctx->clock[i].counter,
                          w->ts);
    }
    struct dvv_dot d = {actor, base + 1};
    for (size_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sibling *s = &o->sibs[i];
        if (ctx && dvv_covers(ctx, s->dot)) {
            continue; /* superseded by this write */
        }
        struct dvv_sibling c = *s;
        c.voff = n.vals.len;
        mcopy(n.vals.base + n.vals.len, o->vals.base + s->voff, s->vlen);
        n.vals.len += s->vlen;
        n.sibs[n.n_sibs++] = c;
    }
    (void)clock_raise(&n, actor, d.counter, w->ts);
    size_t at = 0;
    while (at < n.n_sibs && dot_cmp(n.sibs[at].dot, d) < 0) {
        at++;
    }
    mcopy(n.sibs + at + 1, n.sibs + at, (n.n_sibs - at) * sizeof(*n.sibs));
    n.sibs[at] = (struct dvv_sibling){
        .dot = d,
        .ts = w->ts,
        .expire_at_ms = w->tombstone ? 0 : w->expire_at_ms,
        .tombstone = w->tombstone,
        .ctype = w->ctype,
        .chunked = w->chunked,
        .counter = w->counter,
        .voff = n.vals.len,
        .vlen = w->vlen,
    };
    if (w->vlen) {
        mcopy(n.vals.base + n.vals.len, w->value, w->vlen);
    }
    n.vals.len += w->vlen;
    n.n_sibs++;
    dvv_fini(o);
    *o = n;
    if (dot) {
        *dot = d;
    }
    return RK_OK;
}

static void add_sib(struct dvv_obj *out,
                    const struct dvv_obj *from,
                    const struct dvv_sibling *s)
{
    struct dvv_sibling c = *s;
    c.voff = out->vals.len;
    if (s->vlen) {
        mcopy(out->vals.base + out->vals.len, from->vals.base + s->voff,
              s->vlen);
    }
    out->vals.len += s->vlen;
    out->sibs[out->n_sibs++] = c;
}

int dvv_merge(struct dvv_obj *out,
              const struct dvv_obj *a,
              const struct dvv_obj *b)
{
    dvv_clear(out);
    if (reserve_clock(out, a->n_clock + b->n_clock) != RK_OK ||
        reserve_sibs(out, a->n_sibs + b->n_sibs) != RK_OK ||
        rk_buf_reserve(&out->vals, a->vals.len + b->vals.len) != RK_OK) {
        dvv_clear(out);
        return RK_ENOMEM;
    }
    out->type = a->type > b->type ? a->type : b->type;
    /* clock: pointwise max, a sorted merge of two sorted lists */
    size_t i = 0, j = 0;
    while (i < a->n_clock || j < b->n_clock) {
        const struct dvv_entry *x = i < a->n_clock ? &a->clock[i] : NULL;
        const struct dvv_entry *y = j < b->n_clock ? &b->clock[j] : NULL;
        struct dvv_entry e;
        if (y == NULL || (x && x->actor < y->actor)) {
            e = *x;
            i++;
        } else if (x == NULL || y->actor < x->actor) {
            e = *y;
            j++;
        } else {
            e = x->counter > y->counter   ? *x
                : y->counter > x->counter ? *y
                : x->ts >= y->ts          ? *x
                                          : *y;
            i++;
            j++;
        }
        out->clock[out->n_clock++] = e;
    }
    /* siblings: sorted merge by dot */
    i = j = 0;
    while (i < a->n_sibs || j < b->n_sibs) {
        const struct dvv_sibling *x = i < a->n_sibs ? &a->sibs[i] : NULL;
        const struct dvv_sibling *y = j < b->n_sibs ? &b->sibs[j] : NULL;
        int c = x == NULL ? 1 : y == NULL ? -1 : dot_cmp(x->dot, y->dot);
        if (c < 0) {
            if (!dvv_covers(b, x->dot)) {
                add_sib(out, a, x);
            }
            i++;
        } else if (c > 0) {
            if (!dvv_covers(a, y->dot)) {
                add_sib(out, b, y);
            }
            j++;
        } else {
            if (dvv_sibling_cmp(a, x, b, y) >= 0) {
                add_sib(out, a, x);
            } else {
                add_sib(out, b, y);
            }
            i++;
            j++;
        }
    }
    return RK_OK;
}

int dvv_merge_into(struct dvv_obj *a, const struct dvv_obj *b)
{
    struct dvv_obj m;
    dvv_init(&m);
    if (dvv_merge(&m, a, b) != RK_OK) {
        dvv_fini(&m);
        return RK_ENOMEM;
    }
    dvv_fini(a);
    *a = m;
    return RK_OK;
}

/* Removes sibling i, compacting the value bytes. */
static void remove_sib(struct dvv_obj *o, size_t i)
{
    size_t off = o->sibs[i].voff, len = o->sibs[i].vlen;
    if (len) {
        mcopy(o->vals.base + off, o->vals.base + off + len,
              o->vals.len - off - len);
        o->vals.len -= len;
        for (size_t k = 0; k < o->n_sibs; k++) {
            if (o->sibs[k].voff > off) {
                o->sibs[k].voff -= len;
            }
        }
    }
    mcopy(o->sibs + i, o->sibs + i + 1, (o->n_sibs - i - 1) * sizeof(*o->sibs));
    o->n_sibs--;
}

size_t dvv_lww(struct dvv_obj *o)
{
    long w = -1;
    for (size_t i = 0; i < o->n_sibs; i++) {
        if (!o->sibs[i].counter &&
            (w < 0 || dvv_sibling_cmp(o, &o->sibs[i], o, &o->sibs[w]) > 0)) {
            w = (long)i;
        }
    }
    size_t dropped = 0;
    for (size_t i = o->n_sibs; i-- > 0;) {
        if (!o->sibs[i].counter && (long)i != w) {
            remove_sib(o, i);
            dropped++;
        }
    }
    return dropped;
}

void dvv_bound(struct dvv_obj *o,
               size_t max_sibs,
               size_t max_clock,
               size_t *dropped_sibs,
               size_t *pruned)
{
    size_t d = 0, p = 0;
    while (max_sibs && o->n_sibs > max_sibs) {
        long lose = -1;
        for (size_t i = 0; i < o->n_sibs; i++) {
            if (!o->sibs[i].counter &&
                (lose < 0 ||
                 dvv_sibling_cmp(o, &o->sibs[i], o, &o->sibs[lose]) < 0)) {
                lose = (long)i;
            }
        }
        if (lose < 0) {
            break; /* counter siblings only: never dropped */
        }
        remove_sib(o, (size_t)lose);
        d++;
    }
    while (max_clock && o->n_clock > max_clock) {
        long victim = -1;
        for (size_t i = 0; i < o->n_clock; i++) {
            bool needed = false;
            for (size_t k = 0; k < o->n_sibs && !needed; k++) {
                needed = o->sibs[k].dot.actor == o->clock[i].actor;
            }
            if (!needed &&
                (victim < 0 || o->clock[i].ts < o->clock[victim].ts)) {
                victim = (long)i;
            }
        }
        if (victim < 0) {
            break; /* every entry backs a sibling */
        }
        mcopy(o->clock + victim, o->clock + victim + 1,
              (o->n_clock - (size_t)victim - 1) * sizeof(*o->clock));
        o->n_clock--;
        p++;
    }
    if (dropped_sibs) {
        *dropped_sibs = d;
    }
    if (pruned) {
        *pruned = p;
    }
}

bool dvv_equal(const struct dvv_obj *a, const struct dvv_obj *b)
{
    if (a->n_clock != b->n_clock || a->n_sibs != b->n_sibs ||
        a->type != b->type) {
        return false;
    }
    for (size_t i = 0; i < a->n_clock; i++) {
        if (a->clock[i].actor != b->clock[i].actor ||
            a->clock[i].counter != b->clock[i].counter ||
            a->clock[i].ts != b->clock[i].ts) {
            return false;
        }
    }
    for (size_t i = 0; i < a->n_sibs; i++) {
        if (dvv_sibling_cmp(a, &a->sibs[i], b, &b->sibs[i]) != 0) {
            return false;
        }
    }
    return true;
}

bool dvv_all_tombstones(const struct dvv_obj *o)
{
    for (size_t i = 0; i < o->n_sibs; i++) {
        if (!o->sibs[i].tombstone) {
            return false;
        }
    }
    return o->n_sibs > 0;
}

uint64_t dvv_max_ts(const struct dvv_obj *o)
{
    uint64_t m = 0;
    for (size_t i = 0; i < o->n_sibs; i++) {
        if (o->sibs[i].ts > m) {
            m = o->sibs[i].ts;
        }
    }
    return m;
}

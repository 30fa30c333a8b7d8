/*
 * replica.c - versioned objects in the local engine: read (with legacy
 * records), store (bounds, policy, metadata), merge (KV_PUT), client
 * writes (KV_UPDATE) and reads (KV_GET).  The contract and the stored form
 * are in replica.h.
 */
#include "cluster/replica.h"

#include <string.h>
#include <xxhash.h>

#include "cluster/chunk.h"
#include "cluster/objtype.h"
#include "cluster/types/counter.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/hlc.h"

/* Data format 1 (before engine_meta.flags): the flags in the timestamp. */
#define V1_OBJECT   (UINT64_C(1) << 63)
#define V1_DELETED  (UINT64_C(1) << 62)
#define V1_EXPIRING (UINT64_C(1) << 61)
#define V1_CTYPE    (UINT64_C(1) << 60) /* plain records only */

void replica_meta_current(const struct engine_meta *m, struct engine_meta *out)
{
    *out = *m;
    if (!(m->flags & ENGINE_FLAG_V1)) {
        return;
    }
    uint64_t ts = m->timestamp;
    uint8_t f = 0;
    if (ts & V1_OBJECT) {
        f = REPLICA_FLAG_OBJECT |
            ((ts & V1_DELETED) ? REPLICA_FLAG_DELETED : 0) |
            ((ts & V1_EXPIRING) ? REPLICA_FLAG_EXPIRING : 0);
        ts &= V1_EXPIRING - 1;
    } else {
        f = (ts & V1_CTYPE) ? REPLICA_FLAG_CTYPE : 0;
        ts &= V1_CTYPE - 1;
    }
    out->timestamp = ts;
    out->flags = f;
    out->type = OBJTYPE_STRING;
}

bool replica_meta_is_object(const struct engine_meta *m)
{
    struct engine_meta c;
    replica_meta_current(m, &c);
    return (c.flags & REPLICA_FLAG_OBJECT) != 0;
}

bool replica_meta_is_dead(const struct engine_meta *m, uint64_t now_ms)
{
    if (replica_meta_is_tombstone(m)) {
        return true;
    }
    struct engine_meta c;
    replica_meta_current(m, &c);
    return (c.flags & REPLICA_FLAG_OBJECT) &&
           (c.flags & REPLICA_FLAG_EXPIRING) &&
           hlc_physical_ms(c.timestamp) <= now_ms;
}

bool replica_meta_is_tombstone(const struct engine_meta *m)
{
    struct engine_meta c;
    replica_meta_current(m, &c);
    if (c.flags & REPLICA_FLAG_OBJECT) {
        return (c.flags & REPLICA_FLAG_DELETED) != 0;
    }
    return m->expire_at_ms == REPLICA_TOMBSTONE_EXPIRE && m->value_len == 0;
}

bool replica_meta_is_reapable(const struct engine_meta *m, uint64_t cutoff_ms)
{
    struct engine_meta c;
    replica_meta_current(m, &c);
    return (c.flags & REPLICA_FLAG_OBJECT) &&
           (c.flags & (REPLICA_FLAG_DELETED | REPLICA_FLAG_EXPIRING)) &&
           hlc_physical_ms(c.timestamp) <= cutoff_ms;
}

void replica_scratch_init(struct replica_scratch *s)
{
    dvv_init(&s->in);
    dvv_init(&s->cur);
    dvv_init(&s->merged);
    dvv_init(&s->ctx);
    rk_buf_init(&s->val);
    rk_buf_init(&s->enc);
    counter_init(&s->cst);
    rk_buf_init(&s->cenc);
}

void replica_scratch_fini(struct replica_scratch *s)
{
    dvv_fini(&s->in);
    dvv_fini(&s->cur);
    dvv_fini(&s->merged);
    dvv_fini(&s->ctx);
    rk_buf_fini(&s->val);
    rk_buf_fini(&s->enc);
    counter_fini(&s->cst);
    rk_buf_fini(&s->cenc);
}

/* Working space: the caller's scratch, or a call-local one (set up by
 * ws_begin, freed by ws_end). */
struct ws
{
    struct replica_scratch *s;
    struct replica_scratch local;
};

static struct replica_scratch *ws_begin(struct ws *w,
                                        const struct replica_cfg *cfg)
{
    w->s = cfg && cfg->scratch ? cfg->scratch : &w->local;
    if (w->s == &w->local) {
        replica_scratch_init(&w->local);
    }
    dvv_clear(&w->s->in);
    dvv_clear(&w->s->cur);
    dvv_clear(&w->s->ctx);
    rk_buf_clear(&w->s->val);
    rk_buf_clear(&w->s->enc);
    return w->s;
}

static void ws_end(struct ws *w)
{
    if (w->s == &w->local) {
        replica_scratch_fini(&w->local);
    } else {
        /* keep the allocations, not a huge value's */
        rk_buf_shrink(&w->s->val, 64 * 1024);
        rk_buf_shrink(&w->s->enc, 64 * 1024);
    }
}

/* The object of a stored record (meta m as the engine returned it, value
 * bytes val) into o (cleared first): RK_OK, RK_ENOTFOUND (a legacy
 * tombstone), RK_ECORRUPT (it does not decode), RK_ENOMEM. */
static int decode_record(const struct engine_meta *raw,
                         const struct rk_buf *val,
                         struct dvv_obj *o)
{
    struct engine_meta m;
    replica_meta_current(raw, &m);
    dvv_clear(o);
    int rc = RK_OK;
    if (m.flags & REPLICA_FLAG_OBJECT) {
        rc = dvv_decode(o, val->base ? val->base : "", val->len);
        if (rc == RK_EVERSION) {
            rc = RK_ECORRUPT; /* a format this build does not know */
        }
    } else if (replica_meta_is_tombstone(&m)) {
        rc = RK_ENOTFOUND;
    } else {
        /* a standalone node's record: one sibling under the legacy actor */
        bool ct = (m.flags & REPLICA_FLAG_CTYPE) != 0;
        struct dvv_write w = {
            .value = val->base,
            .vlen = val->len,
            .ts = m.timestamp,
            .expire_at_ms = m.expire_at_ms,
            .ctype = ct && dvv_ctype_valid(val->base, val->len),
        };
        if (ct && !w.ctype) {
            return RK_ECORRUPT;
        }
        rc = dvv_update(o, NULL, 1, 0, &w, NULL);
        if (rc == RK_OK) {
            o->clock[0].actor = DVV_ACTOR_LEGACY;
            o->sibs[0].dot.actor = DVV_ACTOR_LEGACY;
        }
    }
    return rc;
}

/* replica_read with the record's bytes read into `val` (cleared). */
static int read_into(struct engine *e,
                     const void *key,
                     size_t klen,
                     struct dvv_obj *o,
                     struct rk_buf *val)
{
    struct engine_meta m;
    dvv_clear(o);
    rk_buf_clear(val);
    int rc = engine_get(e, key, klen, val, &m);
    return rc == RK_OK ? decode_record(&m, val, o) : rc;
}

int replica_read(struct engine *e,
                 const void *key,
                 size_t klen,
                 struct dvv_obj *o)
{
    struct rk_buf val;
    rk_buf_init(&val);
    int rc = read_into(e, key, klen, o, &val);
    rk_buf_fini(&val);
    return rc;
}

/* The policy and the bounds (idempotent: a second call changes nothing);
 * counts into st when it is not NULL. */
static void normalize(const struct replica_cfg *cfg,
                      struct dvv_obj *o,
                      struct replica_stats *st)
{
    if (cfg->lww) {
        size_t d = dvv_lww(o);
        if (st) {
            st->lww_discards += d;
        }
    }
    size_t dropped = 0, pruned = 0;
    dvv_bound(o, cfg->max_sibs, cfg->max_clock, &dropped, &pruned);
    if (st) {
        st->bound_dropped += dropped;
        st->clock_pruned += pruned;
    }
}

/* Counts a write timestamped further ahead of this node's clock than the
 * bound (the writer's clock runs ahead; siblings never depend on it). */
static void note_skew(const struct replica_cfg *cfg, uint64_t ts)
{
    uint64_t ms = hlc_physical_ms(ts);
    if (cfg->now_ms == 0 || cfg->stats == NULL ||
        ms <= cfg->now_ms + cfg->max_skew_ms) {
        return;
    }
    cfg->stats->clock_ahead++;
    if (ms - cfg->now_ms > cfg->stats->clock_ahead_max_ms) {
        cfg->stats->clock_ahead_max_ms = ms - cfg->now_ms;
    }
}

/* Whether an incoming object keeps the rules a stored one must: at least
 * one sibling, and HLC timestamps up to REPLICA_MAX_TS. */
static bool object_is_storable(const struct dvv_obj *o)
{
    if (o->n_sibs == 0) {
        return false;
    }
    for (size_t i = 0; i < o->n_sibs; i++) {
        if (o->sibs[i].ts > REPLICA_MAX_TS) {
            return false;
        }
    }
    return true;
}

/* The hash the stored hook gets of a record's value bytes. */
static uint64_t record_hash(const struct rk_buf *val)
{
    return XXH3_64bits(val->base ? val->base : "", val->len);
}

/* Whether normalize(cfg, o) would leave o as it is: the policy (lww)
 * keeps a single sibling, and o is within the bounds. */
static bool is_normal(const struct replica_cfg *cfg, const struct dvv_obj *o)
{
    return (!cfg->lww || o->n_sibs <= 1) &&
           (cfg->max_sibs == 0 || o->n_sibs <= cfg->max_sibs) &&
           (cfg->max_clock == 0 || o->n_clock <= cfg->max_clock);
}

/* Stores enc (len bytes), the canonical encoding of o (normalized), as
 * key's record, with the meta o calls for; then cfg->stored with old_hash
 * (0: no record before). */
static int put_encoded(struct engine *e,
                       const struct replica_cfg *cfg,
                       const void *key,
                       size_t klen,
                       const struct dvv_obj *o,
                       const void *enc,
                       size_t len,
                       uint64_t *seq,
                       uint64_t old_hash)
{
    struct engine_meta m = {
        .timestamp = dvv_max_ts(o),
        .flags = REPLICA_FLAG_OBJECT,
        .type = o->type,
        .value_len = len,
    };
    uint64_t dead_at = replica_dead_at(o);
    if (dvv_all_tombstones(o)) {
        m.flags |= REPLICA_FLAG_DELETED;
    } else if (dead_at != 0) {
        /* every value expires: dead from the last expiry on; the record is
         * kept (no engine expiry) until tombstone reaping agrees */
        m.timestamp = dead_at;
        m.flags |= REPLICA_FLAG_EXPIRING;
    }
    int rc = engine_put(e, key, klen, enc, len, &m, seq);
    if (rc == RK_OK && cfg->stored) {
        cfg->stored(cfg->stored_data, e, key, klen, old_hash,
                    XXH3_64bits(len ? enc : "", len));
    }
    return rc;
}

/* replica_store, knowing the hash of the record it replaces (old_hash, 0
 * when there is none) for cfg->stored. */
static int store_obj(struct engine *e,
                     const struct replica_cfg *cfg,
                     const void *key,
                     size_t klen,
                     struct dvv_obj *o,
                     uint64_t *seq,
                     uint64_t old_hash)
{
    normalize(cfg, o, cfg->stats);
    struct rk_buf local;
    rk_buf_init(&local);
    struct rk_buf *enc = cfg->scratch ? &cfg->scratch->enc : &local;
    rk_buf_clear(enc);
    int rc = dvv_encode(o, enc);
    if (rc == RK_OK) {
        rc = put_encoded(e, cfg, key, klen, o, enc->base, enc->len, seq,
                         old_hash);
    }
    rk_buf_fini(&local);
    return rc;
}

int replica_store(struct engine *e,
                  const struct replica_cfg *cfg,
                  const void *key,
                  size_t klen,
                  struct dvv_obj *o,
                  uint64_t *seq)
{
    uint64_t old_hash = 0;
    if (cfg->stored) {
        struct rk_buf old;
        rk_buf_init(&old);
        struct engine_meta m;
        if (engine_get(e, key, klen, &old, &m) == RK_OK) {
            old_hash = record_hash(&old);
        }
        rk_buf_fini(&old);
    }
    return store_obj(e, cfg, key, klen, o, seq, old_hash);
}

uint64_t replica_dead_at(const struct dvv_obj *o)
{
    uint64_t last = 0;
    bool expiring = false;
    for (size_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sibling *sb = &o->sibs[i];
        uint64_t at;
        if (sb->tombstone) {
            at = sb->ts;
        } else if (sb->expire_at_ms != 0) {
            expiring = true;
            at = sb->expire_at_ms << HLC_LOGICAL_BITS;
        } else {
            return 0; /* a value that never expires */
        }
        if (at > last) {
            last = at;
        }
    }
    return o->n_sibs && (expiring || dvv_all_tombstones(o)) ? last : 0;
}

int replica_winner(const struct dvv_obj *o, uint64_t now_ms, size_t *idx)
{
    long w = dvv_winner(o);
    if (w < 0) {
        return RK_ENOTFOUND;
    }
    const struct dvv_sibling *s = &o->sibs[w];
    if (s->tombstone || (s->expire_at_ms != 0 && s->expire_at_ms <= now_ms)) {
        return RK_ENOTFOUND;
    }
    *idx = (size_t)w;
    return RK_OK;
}

/* Siblings created / resolved by a write that took a key from `before`
 * to `after` siblings (a first write creates none). */
static void count_siblings(struct replica_stats *st,
                           size_t before,
                           size_t after)
{
    if (before > 0 && after > before) {
        st->siblings_created += after - before;
    } else if (after < before) {
        st->siblings_resolved += before - after;
    }
}

/*
 * KV_PUT's merge.  The result is always normalize(merge(stored, incoming))
 * stored when it differs from the stored object, as the general path
 * computes it; two common cases (a handoff batch is mostly them) take a
 * shorter way to the same result, the incoming object being validated
 * (decoded) first either way:
 * - no record (or a legacy tombstone): merge(empty, in) is in, and when
 *   normalize leaves it as it is (is_normal) its canonical encoding is the
 *   received bytes (dvv_decode accepts only the canonical encoding), so
 *   those are stored as they are, without a merge or an encode;
 * - a stored object byte-identical to the incoming one: merge(x, x) is x
 *   and, with x normal, nothing is written.
 */
static int apply_put(struct engine *e,
                     const struct replica_cfg *cfg,
                     const struct peer_kv_put *req,
                     bool *changed,
                     uint64_t *seq)
{
    if (req->key.len == 0) {
        return RK_EINVAL;
    }
    struct ws w;
    struct replica_scratch *sc = ws_begin(&w, cfg);
    dvv_clear(&sc->merged);
    struct dvv_obj *in = &sc->in, *cur = &sc->cur, *merged = &sc->merged;
    const char *ip = req->object.ptr ? req->object.ptr : "";
    size_t ilen = req->object.len;
    int rc = dvv_decode(in, ip, ilen);
    if (rc == RK_OK && !object_is_storable(in)) {
        rc = RK_ECORRUPT;
    }
    if (rc == RK_OK) {
        note_skew(cfg, dvv_max_ts(in));
    }
    if (rc == RK_ECORRUPT || rc == RK_EVERSION) {
        if (cfg->stats) {
            cfg->stats->bad_objects++;
        }
        rc = RK_EINVAL;
    }
    if (rc != RK_OK) {
        ws_end(&w);
        return rc;
    }
    bool normal_in = is_normal(cfg, in);
    bool have_old = false; /* a record read into sc->val: its hash is old */
    struct engine_meta m;
    rk_buf_clear(&sc->val);
    rc = engine_get(e, req->key.ptr, req->key.len, &sc->val, &m);
    if (rc == RK_OK) {
        struct engine_meta cm;
        replica_meta_current(&m, &cm);
        if (normal_in && (cm.flags & REPLICA_FLAG_OBJECT) &&
            sc->val.len == ilen && memcmp(sc->val.base, ip, ilen) == 0) {
            ws_end(&w); /* the same object: merging it changes nothing */
            return RK_OK;
        }
        rc = decode_record(&m, &sc->val, cur);
        have_old = rc == RK_OK;
    }
    if (rc == RK_ENOTFOUND) {
        rc = RK_OK;
        dvv_clear(cur);
        if (normal_in) {
            /* nothing to merge with: the received bytes are the result */
            rc = put_encoded(e, cfg, req->key.ptr, req->key.len, in, ip, ilen,
                             seq, 0);
            if (rc == RK_OK) {
                *changed = true;
                if (cfg->stats) {
                    cfg->stats->merges_written++;
                }
            }
            ws_end(&w);
            return rc;
        }
    }
    if (rc == RK_OK) {
        rc = dvv_merge(merged, cur, in);
    }
    struct replica_stats ns = {0};
    if (rc == RK_OK) {
        /* compare what would be stored with what is: the bounds and the
         * policy were applied to the stored object too */
        normalize(cfg, merged, &ns);
    }
    if (rc == RK_OK && !dvv_equal(merged, cur)) {
        uint64_t old_hash = have_old && cfg->stored ? record_hash(&sc->val) : 0;
        rc = store_obj(e, cfg, req->key.ptr, req->key.len, merged, seq,
                       old_hash);
        if (rc == RK_OK) {
            *changed = true;
            if (cfg->stats) {
                count_siblings(cfg->stats, cur->n_sibs, merged->n_sibs);
                cfg->stats->merges_written++;
                cfg->stats->lww_discards += ns.lww_discards;
                cfg->stats->bound_dropped += ns.bound_dropped;
                cfg->stats->clock_pruned += ns.clock_pruned;
            }
        }
    }
    ws_end(&w);
    return rc;
}

void replica_handle_put(struct engine *e,
                        const struct replica_cfg *cfg,
                        const struct peer_kv_put *req,
                        struct peer_msg *reply,
                        bool *changed,
                        uint64_t *seq)
{
    bool ch = false;
    uint64_t s = 0;
    int rc = apply_put(e, cfg, req, &ch, &s);
    memset(reply, 0, sizeof(*reply));
    reply->type = PEER_KV_PUT_REPLY;
    reply->kv_put_reply.req_id = req->req_id;
    reply->kv_put_reply.status = rc;
    if (changed) {
        *changed = ch;
    }
    if (seq) {
        *seq = ch ? s : 0;
    }
}

void replica_handle_get(struct engine *e,
                        const struct replica_cfg *cfg,
                        const struct peer_kv_get *req,
                        struct rk_buf *out,
                        struct peer_msg *reply)
{
    struct ws w;
    struct replica_scratch *sc = ws_begin(&w, cfg);
    rk_buf_clear(out);
    /* decoded before it is served: a stored object that does not decode
     * is reported (RK_ECORRUPT), never served */
    struct engine_meta m;
    rk_buf_clear(&sc->val);
    int rc = req->key.len == 0
                 ? RK_EINVAL
                 : engine_get(e, req->key.ptr, req->key.len, &sc->val, &m);
    if (rc == RK_OK) {
        rc = decode_record(&m, &sc->val, &sc->cur);
    }
    if (rc == RK_OK && replica_meta_is_object(&m)) {
        /* it decoded, so its bytes are its canonical encoding (dvv.h):
         * served as stored, not encoded again */
        rc = rk_buf_append(out, sc->val.base, sc->val.len);
    } else if (rc == RK_OK) {
        rc = dvv_encode(&sc->cur, out); /* a legacy record's object */
    }
    ws_end(&w);
    memset(reply, 0, sizeof(*reply));
    reply->type = PEER_KV_GET_REPLY;
    struct peer_kv_get_reply *r = &reply->kv_get_reply;
    r->req_id = req->req_id;
    r->status = rc;
    if (rc == RK_OK) {
        r->object.ptr = out->base;
        r->object.len = out->len;
    }
}

/* Appends {dot actor, dot counter, u32 len, value} of every chunked
 * sibling of o to out (best effort: on ENOMEM some are not reported). */
static void collect_manifests(const struct dvv_obj *o, struct rk_buf *out)
{
    for (size_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sibling *s = &o->sibs[i];
        if (!s->chunked) {
            continue;
        }
        uint32_t len = (uint32_t)s->vlen;
        if (rk_buf_append(out, &s->dot.actor, 8) != RK_OK ||
            rk_buf_append(out, &s->dot.counter, 8) != RK_OK ||
            rk_buf_append(out, &len, 4) != RK_OK ||
            rk_buf_append(out, dvv_value(o, i), s->vlen) != RK_OK) {
            return;
        }
    }
}

/* Reports every manifest of `before` (collect_manifests) that no sibling
 * of o holds any more: its sibling was dropped and no other sibling names
 * the same blocks (a duplicated or retried UPDATE of one manifest
 * supersedes its first copy with a second one: those blocks are still
 * in use). */
static void report_dropped(const struct replica_cfg *cfg,
                           const struct peer_kv_update *req,
                           const struct rk_buf *before,
                           const struct dvv_obj *o,
                           uint64_t ts)
{
    size_t pos = 0;
    while (pos + 20 <= before->len) {
        struct dvv_dot d;
        uint32_t len;
        memcpy(&d.actor, before->base + pos, 8);
        memcpy(&d.counter, before->base + pos + 8, 8);
        memcpy(&len, before->base + pos + 16, 4);
        const char *m = before->base + pos + 20;
        pos += 20 + (size_t)len;
        bool kept = false;
        for (size_t i = 0; i < o->n_sibs && !kept; i++) {
            kept = (o->sibs[i].dot.actor == d.actor &&
                    o->sibs[i].dot.counter == d.counter) ||
                   (o->sibs[i].chunked && o->sibs[i].vlen == len &&
                    memcmp(dvv_value(o, i), m, len) == 0);
        }
        if (!kept) {
            cfg->superseded(cfg->superseded_data, req->key.ptr, req->key.len, d,
                            m, len, ts);
        }
    }
}

/* The random id of a chunk manifest value (chunk.h layout), or NULL. */
static const unsigned char *manifest_id(const struct peer_kv_update *req)
{
    if (req->flags & PEER_KV_COUNTER) {
        /* an increment's id (checked: PEER_KV_COUNTER_LEN bytes) */
        return (const unsigned char *)req->value.ptr + 8;
    }
    if (!(req->flags & PEER_KV_CHUNKED) ||
        req->value.len < CHUNK_MANIFEST_HDR ||
        memcmp(req->value.ptr, "RKCM", 4) != 0) {
        return NULL;
    }
    return (const unsigned char *)req->value.ptr + 24;
}

static bool recent_has(const struct replica_recent *r, const unsigned char *id)
{
    for (uint32_t i = 0; r && id && i < r->len; i++) {
        if (memcmp(r->id[i], id, CHUNK_ID_LEN) == 0) {
            return true;
        }
    }
    return false;
}

static void recent_add(struct replica_recent *r, const unsigned char *id)
{
    if (r == NULL || id == NULL) {
        return;
    }
    memcpy(r->id[r->next], id, CHUNK_ID_LEN);
    r->next = (r->next + 1) % REPLICA_RECENT_CHUNKED;
    if (r->len < REPLICA_RECENT_CHUNKED) {
        r->len++;
    }
}

/*
 * What a write of req stores when counters are involved (types/counter.h),
 * into *w: an increment (PEER_KV_COUNTER) becomes the state of this
 * replica's object c with req's delta added to actor's entry; a plain
 * value or delete that supersedes counter siblings of cur (those the
 * write's context c covers) becomes their state reset to it, so that
 * their entries go on (a value with a content type or in chunks stays
 * plain: it resets the counter and its entries start again); a write
 * whose coordinator saw counter siblings under its context comes as a
 * state already (PEER_KV_COUNTER_STATE: their counts, and the value as
 * its base), which takes this replica's covered counts in too.  The
 * state is encoded into enc.  RK_OK (w unchanged when no counter is involved);
 * RK_ERANGE (the value is not an integer, or out of range), RK_ECORRUPT,
 * RK_ENOMEM.
 */
static int counter_value(const struct dvv_obj *cur,
                         const struct dvv_obj *c,
                         const struct replica_cfg *cfg,
                         const struct peer_kv_update *req,
                         uint64_t actor,
                         uint64_t floor,
                         struct counter *st,
                         struct rk_buf *enc,
                         struct dvv_write *w)
{
    int rc;
    if (req->flags & PEER_KV_COUNTER) {
        int64_t delta =
            (int64_t)rk_get_le64((const unsigned char *)req->value.ptr);
        int64_t result;
        uint64_t exp = 0;
        /* the dot dvv_update will give this write: a new entry's epoch */
        uint64_t epoch = dvv_counter(cur, actor);
        epoch = (epoch > floor ? epoch : floor) + 1;
        uint64_t eactor = actor;
        if (req->flags & PEER_KV_FALLBACK) {
            /* A fallback's write has a one-shot actor (its dot), but its
             * increments go to one entry of this run's fallback actor
             * while it holds the key (its object keeps that entry), not
             * to an entry per increment; once it has handed the key over
             * and forgotten it, its next increment starts an entry of a
             * new epoch: the one-shot sequence, which never repeats in a
             * run (and each run has its own actor). */
            uint64_t seed[2] = {cfg->actor, UINT64_C(0x6b6361626c6c6166)};
            eactor = XXH3_64bits(seed, sizeof(seed)) & DVV_ACTOR_MASK;
            eactor = eactor == DVV_ACTOR_LEGACY ? 1 : eactor;
            epoch = *cfg->oneshot;
        }
        rc = counter_incr(cur, cfg->now_ms, req->timestamp, eactor, epoch,
                          delta, st, &exp, &result);
        if (rc == RK_EINVAL) {
            rc = RK_ERANGE; /* not an integer: the client's error */
        }
        w->expire_at_ms = exp;
    } else if (req->flags & PEER_KV_COUNTER_STATE) {
        struct counter sent;
        counter_init(&sent);
        bool convert = false;
        rc = counter_decode(&sent, req->value.ptr, req->value.len);
        if (rc == RK_OK &&
            (!sent.has_base || sent.base_present == (w->tombstone != 0))) {
            rc = RK_EINVAL; /* its base must be the write's value */
        }
        if (rc == RK_OK) {
            rc = counter_reset_over(cur, c, req->timestamp, actor,
                                    sent.base_present, sent.base.base,
                                    sent.base.len, st, &convert);
        }
        if (rc == RK_OK) {
            rc = counter_join(st, &sent);
        }
        if (rc == RK_OK) {
            /* what both saw, reset to the write's value by this actor */
            rc = counter_reset(st, req->timestamp, actor, sent.base_present,
                               sent.base.base, sent.base.len);
        }
        counter_fini(&sent);
    } else if (w->ctype || w->chunked) {
        return RK_OK;
    } else {
        bool convert = false;
        rc = counter_reset_over(cur, c, req->timestamp, actor, !w->tombstone,
                                w->value, w->vlen, st, &convert);
        if (rc != RK_OK || !convert) {
            return rc;
        }
    }
    rk_buf_clear(enc);
    if (rc == RK_OK) {
        rc = counter_encode(st, enc);
    }
    if (rc == RK_OK) {
        w->value = enc->base;
        w->vlen = enc->len;
        w->counter = true;
    }
    return rc;
}

static int apply_update(struct engine *e,
                        const struct replica_cfg *cfg,
                        const struct peer_kv_update *req,
                        struct dvv_obj *cur,
                        uint64_t *seq)
{
    uint32_t f = req->flags;
    if (req->key.len == 0 || (f & ~PEER_KV_UPDATE_FLAGS) ||
        ((f & PEER_KV_TOMBSTONE) &&
         ((req->value.len != 0 && !(f & PEER_KV_COUNTER_STATE)) ||
          req->expire_at_ms != 0)) ||
        ((f & PEER_KV_COUNTER_STATE) &&
         ((f & (PEER_KV_CTYPE | PEER_KV_CHUNKED | PEER_KV_COUNTER)) ||
          !counter_valid(req->value.ptr, req->value.len))) ||
        ((f & PEER_KV_OWN_CONTEXT) && req->context.len != 0) ||
        ((f & PEER_KV_CHUNKED) && (f & (PEER_KV_TOMBSTONE | PEER_KV_CTYPE))) ||
        ((f & PEER_KV_CTYPE) &&
         ((f & PEER_KV_TOMBSTONE) ||
          !dvv_ctype_valid(req->value.ptr, req->value.len))) ||
        ((f & PEER_KV_COUNTER) &&
         (!(f & PEER_KV_OWN_CONTEXT) ||
          (f & (PEER_KV_TOMBSTONE | PEER_KV_CTYPE | PEER_KV_CHUNKED)) ||
          req->value.len != PEER_KV_COUNTER_LEN || req->expire_at_ms != 0)) ||
        req->timestamp > REPLICA_MAX_TS || cfg->actor == DVV_ACTOR_LEGACY) {
        return RK_EINVAL;
    }
    struct ws ws;
    struct replica_scratch *sc = ws_begin(&ws, cfg);
    struct dvv_obj *ctxp = &sc->ctx;
    int rc = RK_OK;
    if (req->context.len) {
        rc = dvv_decode(ctxp, req->context.ptr, req->context.len);
        if (rc == RK_OK && ctxp->n_sibs != 0) {
            rc = RK_ECORRUPT;
        }
        if (rc == RK_ECORRUPT || rc == RK_EVERSION) {
            if (cfg->stats) {
                cfg->stats->bad_objects++;
            }
            rc = RK_EINVAL;
        }
    }
    uint64_t old_hash = 0;
    if (rc == RK_OK) {
        rc = read_into(e, req->key.ptr, req->key.len, cur, &sc->val);
        old_hash = rc == RK_OK && cfg->stored ? record_hash(&sc->val) : 0;
        if (rc == RK_ENOTFOUND) {
            rc = RK_OK;
        }
    }
    size_t stored_sibs = cur->n_sibs;
    /* chunk manifests the object holds now: those the update drops are
     * reported once it is stored (replica_cfg.superseded) */
    struct rk_buf gone;
    rk_buf_init(&gone);
    if (rc == RK_OK && cfg->superseded) {
        collect_manifests(cur, &gone);
    }
    /* A chunk manifest names blocks by a random id, so the object holding
     * it already is this very write applied before (a duplicated or
     * resent UPDATE): applying it again would give the same blocks a
     * second dot, and a later write that supersedes only one of the two
     * would delete blocks the other still names.  The object is stored
     * again as it is (the reply waits for its durability as usual). */
    /* ...and a manifest id applied here before is that write too, even
     * when a later write has superseded it meanwhile */
    const unsigned char *mid = manifest_id(req);
    bool dup = rc == RK_OK && recent_has(cfg->recent, mid);
    for (size_t i = 0; rc == RK_OK && (f & PEER_KV_CHUNKED) && i < cur->n_sibs;
         i++) {
        dup = dup ||
              (cur->sibs[i].chunked && cur->sibs[i].vlen == req->value.len &&
               memcmp(dvv_value(cur, i), req->value.ptr, req->value.len) == 0);
    }
    if (rc == RK_OK && !dup && !(f & PEER_KV_OWN_CONTEXT)) {
        /* A context cannot claim versions of this actor it never issued:
         * a forged counter would exhaust the actor or cover its future
         * dots (which would then be dropped as already seen). */
        uint64_t mine = dvv_counter(cur, cfg->actor);
        if (*cfg->floor > mine) {
            mine = *cfg->floor;
        }
        if (dvv_counter(ctxp, cfg->actor) > mine) {
            if (cfg->stats) {
                cfg->stats->bad_objects++;
            }
            rc = RK_EINVAL;
        }
    }
    if (rc == RK_OK && !dup) {
        note_skew(cfg, req->timestamp);
        struct dvv_write w = {
            .value = req->value.ptr,
            .vlen = req->value.len,
            .ts = req->timestamp,
            .expire_at_ms = req->expire_at_ms,
            .tombstone = (f & PEER_KV_TOMBSTONE) != 0,
            .ctype = (f & PEER_KV_CTYPE) != 0,
            .chunked = (f & PEER_KV_CHUNKED) != 0,
        };
        const struct dvv_obj *c = (f & PEER_KV_OWN_CONTEXT) ? cur : ctxp;
        uint64_t actor = cfg->actor, floor = *cfg->floor;
        if (f & PEER_KV_FALLBACK) {
            /* A fallback forgets the key once its hint is delivered, so it
             * must never issue two dots of one actor for a key: each such
             * write gets an actor of its own (counter 1); its counter
             * entry is the run's fallback entry (counter_value). */
            uint64_t seed[2] = {cfg->actor, ++*cfg->oneshot};
            actor = XXH3_64bits(seed, sizeof(seed)) & DVV_ACTOR_MASK;
            actor = actor == DVV_ACTOR_LEGACY ? 1 : actor;
            floor = 0;
        }
        rc = counter_value(cur, c, cfg, req, actor, floor, &sc->cst, &sc->cenc,
                           &w);
        struct dvv_dot d;
        if (rc == RK_OK) {
            rc = dvv_update(cur, c == cur ? cur : c, actor, floor, &w, &d);
        }
        if (rc == RK_OK && !(f & PEER_KV_FALLBACK) && d.counter > *cfg->floor) {
            *cfg->floor = d.counter;
        }
    }
    size_t before = cur->n_sibs;
    if (rc == RK_OK) {
        /* the object had `before` siblings, minus those superseded, plus
         * the new one: count against what was stored */
        rc = store_obj(e, cfg, req->key.ptr, req->key.len, cur, seq, old_hash);
    }
    if (rc == RK_OK && !dup) {
        recent_add(cfg->recent, mid);
    }
    if (rc == RK_OK && gone.len) {
        report_dropped(cfg, req, &gone, cur, req->timestamp);
    }
    rk_buf_fini(&gone);
    if (rc == RK_OK && cfg->stats) {
        cfg->stats->updates++;
        count_siblings(cfg->stats, stored_sibs, cur->n_sibs);
    }
    (void)before;
    ws_end(&ws);
    return rc;
}

void replica_handle_update(struct engine *e,
                           const struct replica_cfg *cfg,
                           const struct peer_kv_update *req,
                           struct rk_buf *out,
                           struct peer_msg *reply,
                           uint64_t *seq)
{
    struct dvv_obj local;
    dvv_init(&local);
    /* the scratch's merged object is free while an update runs */
    struct dvv_obj *cur = cfg->scratch ? &cfg->scratch->merged : &local;
    uint64_t s = 0;
    rk_buf_clear(out);
    int rc = apply_update(e, cfg, req, cur, &s);
    if (rc == RK_OK) {
        rc = dvv_encode(cur, out);
    }
    dvv_fini(&local);
    memset(reply, 0, sizeof(*reply));
    reply->type = PEER_KV_UPDATE_REPLY;
    struct peer_kv_update_reply *r = &reply->kv_update_reply;
    r->req_id = req->req_id;
    r->status = rc;
    if (rc == RK_OK) {
        r->object.ptr = out->base;
        r->object.len = out->len;
    }
    if (seq) {
        *seq = rc == RK_OK ? s : 0;
    }
}

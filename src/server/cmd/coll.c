/*
 * cmd/coll.c - hashes and sets in the local keyspace (keyspace.h's member
 * operations over the storage engine): a header record under the key and
 * one record per member (cluster/types/coll.h has the layout and why).
 *
 * Every member write rewrites the header too (its count, and a newer
 * timestamp, so that WATCH sees the change); a key whose last member goes
 * is deleted, as Redis deletes an empty hash or set.  Deleting, expiring
 * or overwriting a collection deletes its members (coll__drop_members,
 * O(members), on the loop thread as Redis's DEL does; UNLINK is the same).
 *
 * Thread: the event loop only.
 */
#include "cluster/types/coll.h"

#include <string.h>

#include "cluster/objtype.h"
#include "cluster/replica.h"
#include "cluster/slot.h"
#include "common/error.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/cmd/internal.h"
#include "server/internal.h"

static uint64_t now_ts(struct server *s)
{
    return hlc_now(&s->clock, server_now_ms());
}

bool cmd__is_coll_type(uint8_t type)
{
    return type == OBJTYPE_HASH || type == OBJTYPE_SET;
}

int coll__read_header(struct server *s,
                      const void *key,
                      size_t klen,
                      uint8_t *type,
                      uint64_t *n,
                      struct engine_meta *meta)
{
    struct engine_meta m;
    /* the meta first: a string's value (maybe large) is never read */
    int rc = engine_get(s->engine, key, klen, NULL, &m);
    if (rc != RK_OK) {
        return rc;
    }
    replica_meta_current(&m, &m);
    if (cluster_meta_is_tombstone(&m)) {
        return RK_ENOTFOUND;
    }
    if (cmd__is_expired(&m, server_now_ms())) {
        cmd__expire_key(s, key, klen); /* lazily, with its members */
        return RK_ENOTFOUND;
    }
    bool coll = !(m.flags & REPLICA_FLAG_OBJECT) && cmd__is_coll_type(m.type);
    *type = coll ? m.type : OBJTYPE_STRING;
    if (n && coll) {
        /* the count is in the header's value */
        struct rk_buf v;
        rk_buf_init(&v);
        rc = engine_get(s->engine, key, klen, &v, NULL);
        if (rc == RK_OK) {
            rc = coll_header_decode(v.base, v.len, type, n);
        }
        rk_buf_fini(&v);
        if (rc != RK_OK) {
            return rc;
        }
    } else if (n) {
        *n = 0;
    }
    if (meta) {
        *meta = m;
    }
    return RK_OK;
}

/* Writes key's header: n members of `type`, the expiry kept; n 0 deletes
 * the key. */
static int write_header(struct server *s,
                        const void *key,
                        size_t klen,
                        uint8_t type,
                        uint64_t n,
                        uint64_t expire_at_ms,
                        uint64_t *seq)
{
    if (n == 0) {
        return engine_delete(s->engine, key, klen, now_ts(s), seq);
    }
    unsigned char hdr[COLL_HEADER_LEN];
    coll_header_encode(type, n, hdr);
    struct engine_meta m = {
        .timestamp = now_ts(s),
        .expire_at_ms = expire_at_ms,
        .type = type,
    };
    return engine_put(s->engine, key, klen, hdr, sizeof(hdr), &m, seq);
}

/* What a member fold collects: the member keys of one collection. */
struct drop_list
{
    const char *prefix; /* the member keys' prefix */
    size_t plen;
    struct rk_buf keys; /* u32 length (host order), bytes, ... */
    size_t n;
    bool oom;
};

static bool drop_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *meta)
{
    (void)meta;
    struct drop_list *d = data;
    if (klen < d->plen || memcmp(key, d->prefix, d->plen) != 0) {
        return true;
    }
    uint32_t l = (uint32_t)klen;
    if (rk_buf_append(&d->keys, &l, sizeof(l)) != RK_OK ||
        rk_buf_append(&d->keys, key, klen) != RK_OK) {
        d->oom = true;
        return false;
    }
    d->n++;
    return true;
}

int coll__drop_members(struct server *s, const void *key, size_t klen)
{
    struct rk_buf prefix;
    rk_buf_init(&prefix);
    int rc = coll_member_prefix(key, klen, &prefix);
    if (rc != RK_OK) {
        rk_buf_fini(&prefix);
        return rc == RK_ETOOBIG ? RK_OK : rc; /* no member can exist */
    }
    uint32_t slot = slot_of_key(key, klen);
    struct drop_list d = {.prefix = prefix.base, .plen = prefix.len};
    rk_buf_init(&d.keys);
    uint64_t cur = ENGINE_FOLD_START;
    do {
        d.n = 0;
        rk_buf_clear(&d.keys);
        rc = engine_fold_slots(s->engine, slot, slot, cur, 1024, drop_cb, &d,
                               &cur);
        if (rc == RK_OK && d.oom) {
            rc = RK_ENOMEM;
        }
        /* deleted between batches: the fold goes on where it was */
        size_t off = 0;
        uint64_t ts = now_ts(s);
        for (size_t i = 0; rc == RK_OK && i < d.n; i++) {
            uint32_t l;
            memcpy(&l, d.keys.base + off, sizeof(l));
            off += sizeof(l);
            int drc = engine_delete(s->engine, d.keys.base + off, l, ts, NULL);
            if (drc != RK_OK && drc != RK_ENOTFOUND) {
                rc = drc;
            }
            off += l;
        }
    } while (rc == RK_OK && cur != ENGINE_FOLD_DONE);
    rk_buf_fini(&d.keys);
    rk_buf_fini(&prefix);
    return rc;
}

#define REFUSE_JOINS                                                        \
    "this node holds hashes or sets, which a cluster does not replicate "   \
    "yet (issue 16): a node joining it would hide them; delete them (or "   \
    "move them to another standalone node) and restart this node to allow " \
    "joins"

void coll__note_present(struct server *s)
{
    if (!s->coll_present) {
        s->coll_present = true;
        cluster_refuse_joins(s, REFUSE_JOINS);
    }
}

/* What the start-up walk finds: whether a header exists, and member
 * records whose header does not (orphans, deleted after the walk). */
struct present
{
    struct server *s;
    bool found;
    struct rk_buf orphans; /* u32 length (host order), key bytes, ... */
    size_t n;
};

static bool present_cb(void *data,
                       const void *key,
                       size_t klen,
                       const struct engine_meta *meta)
{
    struct present *p = data;
    struct engine_meta m;
    replica_meta_current(meta, &m);
    const char *k, *mem;
    size_t kl, ml;
    if (!(m.flags & REPLICA_FLAG_OBJECT) && cmd__is_coll_type(m.type)) {
        p->found = true;
    } else if (coll_member_parse(key, klen, &k, &kl, &mem, &ml)) {
        /* a member: its header must be a live collection of its type (the
         * walk must not change the engine: read only) */
        struct engine_meta h;
        bool ok = engine_get(p->s->engine, k, kl, NULL, &h) == RK_OK;
        if (ok) {
            replica_meta_current(&h, &h);
        }
        if (ok && h.type == m.type && !(h.flags & REPLICA_FLAG_OBJECT) &&
            !cmd__is_expired(&h, server_now_ms())) {
            p->found = true;
        } else {
            uint32_t l = (uint32_t)klen;
            if (rk_buf_append(&p->orphans, &l, sizeof(l)) == RK_OK &&
                rk_buf_append(&p->orphans, key, klen) == RK_OK) {
                p->n++;
            }
        }
    }
    return true;
}

void coll__check_present(struct server *s)
{
    struct present p = {.s = s};
    rk_buf_init(&p.orphans);
    (void)engine_foreach(s->engine, present_cb, &p);
    size_t off = 0;
    for (size_t i = 0; i < p.n; i++) {
        uint32_t l;
        memcpy(&l, p.orphans.base + off, sizeof(l));
        off += sizeof(l);
        (void)engine_delete(s->engine, p.orphans.base + off, l, now_ts(s),
                            NULL);
        off += l;
    }
    if (p.n) {
        rk_log(RK_LOG_INFO, "coll_orphans_deleted",
               "members=%zu reason=\"members of hashes or sets whose key is "
               "gone (expired and merged away, or a crash between writes)\"",
               p.n);
    }
    rk_buf_fini(&p.orphans);
    if (p.found) {
        coll__note_present(s);
    }
}

/* A member key: in a stack buffer when it fits (most do: no allocation per
 * HGET or SADD), else allocated. */
struct mkey
{
    unsigned char stack[256];
    struct rk_buf heap;
    const char *p;
    size_t len;
};

/* RK_OK, RK_ETOOBIG (the key and member do not fit a key), RK_ENOMEM. */
static int mkey_make(struct mkey *k,
                     const void *key,
                     size_t klen,
                     const void *member,
                     size_t mlen)
{
    rk_buf_init(&k->heap);
    if (!coll_member_fits(klen, mlen)) {
        return RK_ETOOBIG;
    }
    size_t n = COLL_MEMBER_HDR + klen + mlen;
    unsigned char *dst = k->stack;
    if (n > sizeof(k->stack)) {
        if (rk_buf_reserve(&k->heap, n) != RK_OK) {
            return RK_ENOMEM;
        }
        dst = (unsigned char *)k->heap.base;
    }
    k->len = coll_member_key_write(dst, key, klen, member, mlen);
    k->p = (const char *)dst;
    return RK_OK;
}

/* ---- the local keyspace's member operations ------------------------------ */

int coll__local_mget(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     uint8_t type,
                     const void *member,
                     size_t mlen,
                     struct rk_buf *val)
{
    struct server *s = ks->data;
    /* the header's meta says the type: its value (the count) is not read */
    uint8_t have;
    int rc = coll__read_header(s, key, klen, &have, NULL, NULL);
    if (rc != RK_OK) {
        return rc;
    }
    if (have != type) {
        return RK_EWRONGTYPE;
    }
    struct mkey mk;
    rc = mkey_make(&mk, key, klen, member, mlen);
    if (rc == RK_ETOOBIG) {
        rc = RK_ENOTFOUND; /* could never have been stored */
    } else if (rc == RK_OK) {
        if (val) {
            rk_buf_clear(val);
        }
        rc = engine_get(s->engine, mk.p, mk.len, val, NULL);
    }
    rk_buf_fini(&mk.heap);
    return rc;
}

int coll__local_mput(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     uint8_t type,
                     const void *member,
                     size_t mlen,
                     const void *val,
                     size_t vlen,
                     bool *created,
                     uint64_t *seq)
{
    struct server *s = ks->data;
    uint8_t have = type;
    uint64_t n = 0;
    struct engine_meta hm = {0};
    int rc = coll__read_header(s, key, klen, &have, &n, &hm);
    if (rc == RK_ENOTFOUND) {
        /* a new collection: members of an earlier one whose header went
         * without them (a merge drops an expired header by itself; a
         * crash between a member's and its header's write) go first; with
         * no collection since the start-up sweep there can be none */
        have = type;
        n = 0;
        hm.expire_at_ms = 0;
        rc = s->coll_present ? coll__drop_members(s, key, klen) : RK_OK;
        if (rc != RK_OK) {
            return rc;
        }
    } else if (rc != RK_OK) {
        return rc;
    } else if (have != type) {
        return RK_EWRONGTYPE;
    }
    struct mkey mk;
    rc = mkey_make(&mk, key, klen, member, mlen);
    bool exists = false;
    if (rc == RK_OK) {
        int g = engine_get(s->engine, mk.p, mk.len, NULL, NULL);
        exists = g == RK_OK;
        rc = g == RK_OK || g == RK_ENOTFOUND ? RK_OK : g;
    }
    if (rc == RK_OK && exists && type == OBJTYPE_SET) {
        /* a set member already there: nothing changes, nothing is written
         * (as Redis, whose SADD of a member it has does not touch the key) */
        rk_buf_fini(&mk.heap);
        *created = false;
        if (seq) {
            *seq = 0;
        }
        return RK_OK;
    }
    if (rc == RK_OK) {
        coll__note_present(s);
        struct engine_meta m = {.timestamp = now_ts(s), .type = type};
        rc = engine_put(s->engine, mk.p, mk.len, val, vlen, &m, seq);
    }
    if (rc == RK_OK) {
        rc =
            write_header(s, key, klen, type, n + !exists, hm.expire_at_ms, seq);
    }
    rk_buf_fini(&mk.heap);
    if (rc == RK_OK) {
        *created = !exists;
    }
    return rc;
}

int coll__local_mdel(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     uint8_t type,
                     const void *member,
                     size_t mlen,
                     uint64_t *seq)
{
    struct server *s = ks->data;
    uint8_t have;
    uint64_t n;
    struct engine_meta hm;
    int rc = coll__read_header(s, key, klen, &have, &n, &hm);
    if (rc != RK_OK) {
        return rc;
    }
    if (have != type) {
        return RK_EWRONGTYPE;
    }
    struct mkey mk;
    rc = mkey_make(&mk, key, klen, member, mlen);
    if (rc == RK_ETOOBIG) {
        rc = RK_ENOTFOUND;
    } else if (rc == RK_OK) {
        rc = engine_delete(s->engine, mk.p, mk.len, now_ts(s), seq);
    }
    if (rc == RK_OK) {
        rc = write_header(s, key, klen, type, n > 0 ? n - 1 : 0,
                          hm.expire_at_ms, seq);
    }
    rk_buf_fini(&mk.heap);
    return rc;
}

struct fold_ctx
{
    const char *prefix;
    size_t plen;
    bool (*cb)(void *, const char *, size_t, const char *, size_t);
    void *data;
    struct engine *e;
    struct rk_buf val; /* a member's value */
    int rc;            /* a read that failed */
};

static bool fold_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *meta)
{
    (void)meta;
    struct fold_ctx *f = data;
    if (klen < f->plen || memcmp(key, f->prefix, f->plen) != 0) {
        return true; /* another key of the slot: its value is not read */
    }
    /* a set member's value is empty: no read */
    if (meta->value_len == 0) {
        return f->cb(f->data, (const char *)key + f->plen, klen - f->plen, "",
                     0);
    }
    rk_buf_clear(&f->val);
    f->rc = engine_get(f->e, key, klen, &f->val, NULL);
    if (f->rc != RK_OK) {
        return false;
    }
    return f->cb(f->data, (const char *)key + f->plen, klen - f->plen,
                 f->val.base ? f->val.base : "", f->val.len);
}

int coll__local_mfold(struct keyspace *ks,
                      const void *key,
                      size_t klen,
                      uint64_t cursor,
                      size_t count,
                      bool (*cb)(void *data,
                                 const char *member,
                                 size_t mlen,
                                 const char *val,
                                 size_t vlen),
                      void *data,
                      uint64_t *next)
{
    struct server *s = ks->data;
    struct rk_buf prefix;
    rk_buf_init(&prefix);
    int rc = coll_member_prefix(key, klen, &prefix);
    if (rc == RK_ETOOBIG) {
        *next = 0;
        rk_buf_fini(&prefix);
        return RK_OK;
    }
    struct fold_ctx f = {.prefix = prefix.base,
                         .plen = prefix.len,
                         .cb = cb,
                         .data = data,
                         .e = s->engine};
    rk_buf_init(&f.val);
    uint32_t slot = slot_of_key(key, klen);
    uint64_t nx = ENGINE_FOLD_DONE;
    if (rc == RK_OK) {
        rc = engine_fold_slots(s->engine, slot, slot, cursor, count ? count : 1,
                               fold_cb, &f, &nx);
    }
    if (rc == RK_OK && f.rc != RK_OK) {
        rc = f.rc;
    }
    if (rc == RK_EINVAL && cursor != 0) {
        /* a cursor that is no position of this key's slot (Redis takes
         * any cursor): the walk starts over */
        rc = engine_fold_slots(s->engine, slot, slot, ENGINE_FOLD_START,
                               count ? count : 1, fold_cb, &f, &nx);
    }
    rk_buf_fini(&f.val);
    rk_buf_fini(&prefix);
    if (rc == RK_OK) {
        *next = nx == ENGINE_FOLD_DONE ? 0 : nx;
    }
    return rc;
}

int coll__local_expire(struct keyspace *ks,
                       const void *key,
                       size_t klen,
                       uint64_t expire_at_ms,
                       uint64_t *seq)
{
    struct server *s = ks->data;
    uint8_t type;
    uint64_t n;
    struct engine_meta m;
    int rc = coll__read_header(s, key, klen, &type, &n, &m);
    if (rc != RK_OK) {
        return rc;
    }
    if (cmd__is_coll_type(type)) {
        return write_header(s, key, klen, type, n, expire_at_ms, seq);
    }
    /* a string: rewritten with its value and the new expiry */
    struct rk_buf v;
    rk_buf_init(&v);
    rc = engine_get(s->engine, key, klen, &v, NULL);
    if (rc == RK_OK) {
        m.expire_at_ms = expire_at_ms;
        m.timestamp = now_ts(s);
        rc = engine_put(s->engine, key, klen, v.base, v.len, &m, seq);
    }
    rk_buf_fini(&v);
    return rc;
}

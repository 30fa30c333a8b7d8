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
    *type = OBJTYPE_STRING;
    *n = 0;
    if (!(m.flags & REPLICA_FLAG_OBJECT) && cmd__is_coll_type(m.type)) {
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

static bool present_cb(void *data,
                       const void *key,
                       size_t klen,
                       const struct engine_meta *meta)
{
    struct engine_meta m;
    replica_meta_current(meta, &m);
    bool *found = data;
    const char *k, *mem;
    size_t kl, ml;
    *found = (!(m.flags & REPLICA_FLAG_OBJECT) && cmd__is_coll_type(m.type)) ||
             coll_member_parse(key, klen, &k, &kl, &mem, &ml);
    return !*found;
}

void coll__check_present(struct server *s)
{
    bool found = false;
    (void)engine_foreach(s->engine, present_cb, &found);
    if (found) {
        coll__note_present(s);
    }
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
    struct engine_meta m;
    int rc = engine_get(s->engine, key, klen, NULL, &m);
    if (rc != RK_OK) {
        return rc;
    }
    replica_meta_current(&m, &m);
    if (cluster_meta_is_tombstone(&m)) {
        return RK_ENOTFOUND;
    }
    if (cmd__is_expired(&m, server_now_ms())) {
        cmd__expire_key(s, key, klen);
        return RK_ENOTFOUND;
    }
    if ((m.flags & REPLICA_FLAG_OBJECT) || m.type != type) {
        return RK_EWRONGTYPE;
    }
    struct rk_buf mk;
    rk_buf_init(&mk);
    rc = coll_member_key(key, klen, member, mlen, &mk);
    if (rc == RK_ETOOBIG) {
        rc = RK_ENOTFOUND; /* could never have been stored */
    } else if (rc == RK_OK) {
        if (val) {
            rk_buf_clear(val);
        }
        rc = engine_get(s->engine, mk.base, mk.len, val, NULL);
    }
    rk_buf_fini(&mk);
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
        have = type;
        n = 0;
        hm.expire_at_ms = 0;
    } else if (rc != RK_OK) {
        return rc;
    } else if (have != type) {
        return RK_EWRONGTYPE;
    }
    struct rk_buf mk;
    rk_buf_init(&mk);
    rc = coll_member_key(key, klen, member, mlen, &mk);
    bool exists = false;
    if (rc == RK_OK) {
        int g = engine_get(s->engine, mk.base, mk.len, NULL, NULL);
        exists = g == RK_OK;
        rc = g == RK_OK || g == RK_ENOTFOUND ? RK_OK : g;
    }
    if (rc == RK_OK) {
        coll__note_present(s);
        struct engine_meta m = {.timestamp = now_ts(s), .type = type};
        rc = engine_put(s->engine, mk.base, mk.len, val, vlen, &m, seq);
    }
    if (rc == RK_OK) {
        rc =
            write_header(s, key, klen, type, n + !exists, hm.expire_at_ms, seq);
    }
    rk_buf_fini(&mk);
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
    struct rk_buf mk;
    rk_buf_init(&mk);
    rc = coll_member_key(key, klen, member, mlen, &mk);
    if (rc == RK_ETOOBIG) {
        rc = RK_ENOTFOUND;
    } else if (rc == RK_OK) {
        rc = engine_delete(s->engine, mk.base, mk.len, now_ts(s), seq);
    }
    if (rc == RK_OK) {
        rc = write_header(s, key, klen, type, n > 0 ? n - 1 : 0,
                          hm.expire_at_ms, seq);
    }
    rk_buf_fini(&mk);
    return rc;
}

struct fold_ctx
{
    const char *prefix;
    size_t plen;
    bool (*cb)(void *, const char *, size_t, const char *, size_t);
    void *data;
};

static bool fold_cb(void *data,
                    const void *key,
                    size_t klen,
                    const void *val,
                    size_t vlen,
                    const struct engine_meta *meta)
{
    (void)meta;
    struct fold_ctx *f = data;
    if (klen < f->plen || memcmp(key, f->prefix, f->plen) != 0) {
        return true;
    }
    return f->cb(f->data, (const char *)key + f->plen, klen - f->plen,
                 vlen ? val : "", vlen);
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
    struct fold_ctx f = {prefix.base, prefix.len, cb, data};
    uint32_t slot = slot_of_key(key, klen);
    uint64_t nx = ENGINE_FOLD_DONE;
    if (rc == RK_OK) {
        rc = engine_fold_slots_values(s->engine, slot, slot, cursor,
                                      count ? count : 1, fold_cb, &f, &nx);
    }
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

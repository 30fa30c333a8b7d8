/*
 * replica.c - last-writer-wins application of KV_PUT and answers to KV_GET
 * over the storage engine (the contract, the version order and the
 * tombstone encoding are in replica.h).
 */
#include "cluster/replica.h"

#include <string.h>

#include "common/error.h"

static uint64_t expiry_rank(uint64_t expire_at_ms)
{
    /* 0 means "never expires": the longest-lived, so it ranks highest. */
    return expire_at_ms == 0 ? UINT64_MAX : expire_at_ms;
}

int replica_version_cmp(const struct replica_version *a,
                        const struct replica_version *b)
{
    if (a->timestamp != b->timestamp) {
        return a->timestamp < b->timestamp ? -1 : 1;
    }
    if (a->tombstone != b->tombstone) {
        return a->tombstone ? 1 : -1;
    }
    size_t n = a->vlen < b->vlen ? a->vlen : b->vlen;
    int c = n ? memcmp(a->value, b->value, n) : 0;
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    if (a->vlen != b->vlen) {
        return a->vlen < b->vlen ? -1 : 1;
    }
    uint64_t ea = expiry_rank(a->expire_at_ms);
    uint64_t eb = expiry_rank(b->expire_at_ms);
    if (ea != eb) {
        return ea < eb ? -1 : 1;
    }
    return 0;
}

bool replica_meta_is_tombstone(const struct engine_meta *m)
{
    return m->expire_at_ms == REPLICA_TOMBSTONE_EXPIRE && m->value_len == 0;
}

static int check_put(const struct peer_kv_put *put)
{
    if (put->key.len == 0 || (put->flags & ~(uint32_t)PEER_KV_TOMBSTONE)) {
        return RK_EINVAL;
    }
    if (put->flags & PEER_KV_TOMBSTONE) {
        if (put->value.len != 0 || put->expire_at_ms != 0) {
            return RK_EINVAL;
        }
    } else if (put->expire_at_ms == REPLICA_TOMBSTONE_EXPIRE) {
        return RK_EINVAL;
    }
    if (put->value.len != 0 && put->value.ptr == NULL) {
        return RK_EINVAL;
    }
    return RK_OK;
}

/*
 * Whether `in` is newer than the stored version of its key: *newer true
 * when nothing is stored.  Reads the stored value only on a timestamp tie.
 */
static int is_newer(struct engine *e,
                    const struct replica_version *in,
                    const void *key,
                    size_t klen,
                    bool *newer)
{
    struct engine_meta m;
    int rc = engine_get(e, key, klen, NULL, &m);
    if (rc == RK_ENOTFOUND) {
        *newer = true;
        return RK_OK;
    }
    if (rc != RK_OK) {
        return rc;
    }
    if (m.timestamp != in->timestamp) {
        *newer = in->timestamp > m.timestamp;
        return RK_OK;
    }
    struct rk_buf val;
    rk_buf_init(&val);
    struct replica_version cur;
    rc = replica_get(e, key, klen, &val, &cur);
    if (rc == RK_OK) {
        *newer = replica_version_cmp(in, &cur) > 0;
    } else if (rc == RK_ENOTFOUND) {
        *newer = true;
        rc = RK_OK;
    }
    rk_buf_fini(&val);
    return rc;
}

int replica_apply_put(struct engine *e,
                      const struct peer_kv_put *put,
                      bool *applied,
                      uint64_t *seq)
{
    int rc = check_put(put);
    if (rc != RK_OK) {
        return rc;
    }
    bool tomb = (put->flags & PEER_KV_TOMBSTONE) != 0;
    struct replica_version in = {
        .value = put->value.ptr,
        .vlen = put->value.len,
        .timestamp = put->timestamp,
        .expire_at_ms = put->expire_at_ms,
        .tombstone = tomb,
    };
    bool newer = false;
    rc = is_newer(e, &in, put->key.ptr, put->key.len, &newer);
    if (rc != RK_OK) {
        return rc;
    }
    uint64_t s = 0;
    if (newer) {
        struct engine_meta m = {
            .timestamp = put->timestamp,
            .expire_at_ms = tomb ? REPLICA_TOMBSTONE_EXPIRE : put->expire_at_ms,
            .value_len = put->value.len,
        };
        rc = engine_put(e, put->key.ptr, put->key.len, put->value.ptr,
                        put->value.len, &m, &s);
        if (rc != RK_OK) {
            return rc;
        }
    }
    if (applied) {
        *applied = newer;
    }
    if (seq && newer) {
        *seq = s;
    }
    return RK_OK;
}

int replica_get(struct engine *e,
                const void *key,
                size_t klen,
                struct rk_buf *val,
                struct replica_version *out)
{
    rk_buf_clear(val);
    struct engine_meta m;
    int rc = engine_get(e, key, klen, val, &m);
    if (rc != RK_OK) {
        return rc;
    }
    bool tomb = replica_meta_is_tombstone(&m);
    *out = (struct replica_version){
        .value = val->base,
        .vlen = val->len,
        .timestamp = m.timestamp,
        .expire_at_ms = tomb ? 0 : m.expire_at_ms,
        .tombstone = tomb,
    };
    return RK_OK;
}

void replica_handle_put(struct engine *e,
                        const struct peer_kv_put *req,
                        struct peer_msg *reply,
                        uint64_t *seq)
{
    uint64_t s = 0;
    int rc = replica_apply_put(e, req, NULL, &s);
    memset(reply, 0, sizeof(*reply));
    reply->type = PEER_KV_PUT_REPLY;
    reply->kv_put_reply.req_id = req->req_id;
    reply->kv_put_reply.status = rc;
    if (seq) {
        *seq = s;
    }
}

void replica_handle_get(struct engine *e,
                        const struct peer_kv_get *req,
                        struct rk_buf *val,
                        struct peer_msg *reply)
{
    struct replica_version v;
    int rc = req->key.len == 0
                 ? RK_EINVAL
                 : replica_get(e, req->key.ptr, req->key.len, val, &v);
    memset(reply, 0, sizeof(*reply));
    reply->type = PEER_KV_GET_REPLY;
    struct peer_kv_get_reply *r = &reply->kv_get_reply;
    r->req_id = req->req_id;
    r->status = rc;
    if (rc == RK_OK) {
        r->value.ptr = v.vlen ? (const char *)v.value : NULL;
        r->value.len = v.vlen;
        r->timestamp = v.timestamp;
        r->expire_at_ms = v.expire_at_ms;
        r->flags = v.tombstone ? PEER_KV_TOMBSTONE : 0;
    }
}

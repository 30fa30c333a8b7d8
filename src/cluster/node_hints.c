/*
 * node_hints.c - hinted handoff and tombstone reaping of the node
 * (node.h; moved from src/server/cluster.c, issue 11 item 1).
 *
 * Hinted handoff (Dynamo, DeCandia et al. SOSP 2007, section 4.6): a
 * fallback that stands in for a down owner keeps the write in its hint
 * store, an engine of its own keyed by hint_key(owner, key), so the data
 * of a partition this node does not own never mixes with its keys.  Every
 * NODE_HINT_ROUND_MS a round looks at the next NODE_HINT_BATCH hints and
 * sends those whose owner is up (a KV_PUT through the coordinator, w=1);
 * the hint is deleted once the owner acknowledged it, unless it grew
 * meanwhile (its hash changed: sent again next round).  Delivery merges
 * at the owner, so the order of deliveries does not matter (N3).
 *
 * Tombstone reaping (Cassandra's gc_grace; Riak's delete_mode with a read
 * of all N before the reap): a deleted or expired object is dropped only
 * after tombstone_grace_ms and only when every one of its N primaries is
 * up and answers a read with nothing or exactly this object (N4).  Each
 * replica reaps its own copy.  Hints held elsewhere for longer than the
 * grace can still bring an old value back: keep the grace above the
 * longest outage (docs/consistency.md).
 */
#include <string.h>
#include <xxhash.h>

#include "cluster/dvv.h"
#include "cluster/node_internal.h"
#include "common/error.h"
#include "common/hlc.h"
#include "common/log.h"

/* Hint record key: u8 owner length, owner id, the key. */
static int hint_key(const char *owner,
                    size_t olen,
                    const void *key,
                    size_t klen,
                    struct rk_buf *out)
{
    rk_buf_clear(out);
    unsigned char l = (unsigned char)olen;
    if (olen == 0 || olen > CL_ID_MAX || rk_buf_append(out, &l, 1) != RK_OK ||
        rk_buf_append(out, owner, olen) != RK_OK ||
        rk_buf_append(out, key, klen) != RK_OK) {
        return RK_ENOMEM;
    }
    return RK_OK;
}

/* Splits a hint record key; false when it is malformed. */
static bool hint_split(const char *hk,
                       size_t len,
                       char owner[CL_ID_MAX + 1],
                       const char **key,
                       size_t *klen)
{
    size_t ol = len ? (unsigned char)hk[0] : 0;
    if (ol == 0 || ol > CL_ID_MAX || len < 2 + ol) {
        return false;
    }
    memcpy(owner, hk + 1, ol);
    owner[ol] = '\0';
    *key = hk + 1 + ol;
    *klen = len - 1 - ol;
    return true;
}

bool node__is_hinted(const struct node *n, struct peer_bytes hint_for)
{
    return hint_for.len != 0 &&
           !(hint_for.len == strlen(n->id) &&
             memcmp(hint_for.ptr, n->id, hint_for.len) == 0);
}

void node__hint_store(struct node *n,
                      const struct peer_kv_put *put,
                      struct peer_msg *rep,
                      uint64_t *wait)
{
    struct rk_buf hk;
    rk_buf_init(&hk);
    memset(rep, 0, sizeof(*rep));
    rep->type = PEER_KV_PUT_REPLY;
    rep->kv_put_reply.req_id = put->req_id;
    int rc = put->key.len == 0 || n->hints == NULL
                 ? RK_EINVAL
                 : hint_key(put->hint_for.ptr, put->hint_for.len, put->key.ptr,
                            put->key.len, &hk);
    uint64_t seq = 0;
    bool changed = false;
    if (rc == RK_OK) {
        struct peer_kv_put hp = *put;
        hp.key.ptr = hk.base;
        hp.key.len = hk.len;
        hp.hint_for.len = 0;
        replica_handle_put(n->hints, &n->rcfg, &hp, rep, &changed, &seq);
        rc = rep->kv_put_reply.status;
        if (rc == RK_OK && changed) {
            n->st.hints_stored++;
            n->last_hint_seq = seq > n->last_hint_seq ? seq : n->last_hint_seq;
        }
    }
    if (wait) {
        /* a hint counts toward W only once durable under the sync
         * policy (engine_acked_seq); a merge that changed nothing waits
         * for what was written before */
        uint64_t w = changed ? seq : n->last_hint_seq;
        *wait = rc == RK_OK && w != 0 && engine_acked_seq(n->hints) < w ? w : 0;
    }
    rep->kv_put_reply.status = rc;
    rk_buf_fini(&hk);
}

void node__hint_update(struct node *n,
                       const struct peer_kv_update *up,
                       struct peer_msg *rep)
{
    struct rk_buf hk;
    rk_buf_init(&hk);
    int rc = up->key.len == 0 || up->hint_for.len == 0 || n->hints == NULL
                 ? RK_EINVAL
                 : hint_key(up->hint_for.ptr, up->hint_for.len, up->key.ptr,
                            up->key.len, &hk);
    if (rc != RK_OK) {
        memset(rep, 0, sizeof(*rep));
        rep->type = PEER_KV_UPDATE_REPLY;
        rep->kv_update_reply.req_id = up->req_id;
        rep->kv_update_reply.status = rc;
        rk_buf_fini(&hk);
        return;
    }
    struct peer_kv_update hu = *up;
    hu.key.ptr = hk.base;
    hu.key.len = hk.len;
    uint64_t seq = 0;
    replica_handle_update(n->hints, &n->rcfg, &hu, &n->valbuf, rep, &seq);
    if (rep->kv_update_reply.status == RK_OK) {
        n->st.hints_stored++;
        n->last_hint_seq = seq > n->last_hint_seq ? seq : n->last_hint_seq;
    }
    rk_buf_fini(&hk);
}

void node__hint_for_down(struct node *n,
                         const char *owner,
                         const void *key,
                         size_t klen,
                         const struct rk_buf *obj)
{
    struct peer_kv_put p = {
        .req_id = 0,
        .key = {key, klen},
        .object = {obj->base, obj->len},
        .hint_for = {owner, strlen(owner)},
    };
    if (n->hints == NULL || node__engine_failed(n->hints)) {
        /* a failed hint store (a full disk) keeps nothing: the write is
         * skipped for this owner (issue 12; the store said so once) */
        return;
    }
    struct peer_msg rep;
    node__hint_store(n, &p, &rep, NULL); /* counts toward nothing */
    if (rep.kv_put_reply.status != RK_OK) {
        node__log(n, RK_LOG_WARN, "hint_store_failed", "owner=%s error=%s",
                  owner, rk_errname(rep.kv_put_reply.status));
    }
}

/*
 * One background round over an engine: engine_scan visits about `count`
 * keys from *cursor (the callback must not change the engine), those
 * `want` accepts are copied out, then `fn` runs for each, free to write.
 */
struct key_batch
{
    struct rk_buf keys; /* u32 length + bytes, repeated */
    size_t n;
    bool (*want)(const struct engine_meta *m, uint64_t arg);
    uint64_t arg;
};

static bool batch_collect(void *data,
                          const void *key,
                          size_t klen,
                          const struct engine_meta *meta)
{
    struct key_batch *b = data;
    uint32_t l = (uint32_t)klen;
    if ((b->want == NULL || b->want(meta, b->arg)) &&
        rk_buf_append(&b->keys, &l, sizeof(l)) == RK_OK &&
        rk_buf_append(&b->keys, key, klen) == RK_OK) {
        b->n++;
    }
    return true;
}

static void scan_round(
    struct node *n,
    struct engine *e,
    uint64_t *cursor,
    size_t count,
    bool (*want)(const struct engine_meta *, uint64_t),
    uint64_t arg,
    void (*fn)(struct node *, const char *, size_t, uint64_t),
    uint64_t now_ms)
{
    struct key_batch b = {.n = 0, .want = want, .arg = arg};
    rk_buf_init(&b.keys);
    uint64_t next = 0;
    (void)engine_scan(e, *cursor, count, batch_collect, &b, &next);
    *cursor = next;
    size_t off = 0;
    for (size_t i = 0; i < b.n; i++) {
        uint32_t l;
        memcpy(&l, b.keys.base + off, sizeof(l));
        off += sizeof(l);
        fn(n, b.keys.base + off, l, now_ms);
        off += l;
    }
    rk_buf_fini(&b.keys);
}

/* The XXH3 of the canonical encoding of key's object in e (what a hint
 * delivery or a reaping check sent or saw, compared again on the answer).
 * RK_OK, or replica_read's / dvv_encode's error. */
static int object_hash(struct engine *e,
                       const void *key,
                       size_t klen,
                       uint64_t *hash)
{
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    int rc = replica_read(e, key, klen, &o);
    if (rc == RK_OK) {
        rc = dvv_encode(&o, &enc);
    }
    if (rc == RK_OK) {
        *hash = XXH3_64bits(enc.base, enc.len);
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
    return rc;
}

/* The in-flight operation on `key` in list[0..cap), or NULL. */
static struct node__op *op_on_key(struct node__op *const *list,
                                  size_t cap,
                                  const void *key,
                                  size_t len)
{
    for (size_t i = 0; i < cap; i++) {
        const struct node__op *op = list[i];
        if (op && op->key.len == len && memcmp(op->key.base, key, len) == 0) {
            return list[i];
        }
    }
    return NULL;
}

/* Puts op into a free entry of list[0..cap) (the caller checked room). */
static void track(struct node__op **list, size_t cap, struct node__op *op)
{
    for (size_t i = 0; i < cap; i++) {
        if (list[i] == NULL) {
            list[i] = op;
            return;
        }
    }
}

static void untrack(struct node__op **list, size_t cap, struct node__op *op)
{
    for (size_t i = 0; i < cap; i++) {
        if (list[i] == op) {
            list[i] = NULL;
            return;
        }
    }
}

/* Keeps a background operation (a hint delivery, a reaping check) whose
 * coordinator request `rid` started (rc RK_OK), remembering the hash of
 * the object it is about; otherwise returns it to the pool. */
static void bg_keep(struct node *n,
                    struct node__op *op,
                    int rc,
                    uint64_t rid,
                    const struct rk_buf *enc,
                    struct node__op **list,
                    size_t cap,
                    size_t *count,
                    uint64_t now)
{
    if (rc != RK_OK) {
        node__op_put(n, op);
        return;
    }
    op->coord_req = rid;
    op->hash = XXH3_64bits(enc->base, enc->len);
    (*count)++;
    track(list, cap, op);
    node__drain(n, now);
}

/* A hint whose data now belongs to this node: merged into the data, and
 * dropped once that is durable (under sync=always the merge is repeated
 * on later rounds, a no-op, until the data engine has synced it: no fsync
 * on the loop). */
static void hint_deliver_local(struct node *n,
                               const char *hk,
                               size_t len,
                               const char *key,
                               size_t klen)
{
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    if (replica_read(n->hints, hk, len, &o) == RK_OK &&
        dvv_encode(&o, &enc) == RK_OK) {
        struct peer_kv_put p = {
            .key = {key, klen},
            .object = {enc.base, enc.len},
        };
        struct peer_msg rep;
        uint64_t seq = 0;
        bool changed = false;
        replica_handle_put(n->data, &n->rcfg, &p, &rep, &changed, &seq);
        node__note_write(n, seq);
        if (rep.kv_put_reply.status == RK_OK && changed) {
            (void)node__relay_if_leaving(n, key, klen, enc.base, enc.len);
        }
        uint64_t w = changed ? seq : n->last_seq;
        uint64_t del_seq;
        if (rep.kv_put_reply.status == RK_OK &&
            engine_acked_seq(n->data) >= w &&
            engine_delete(n->hints, hk, len, 0, &del_seq) == RK_OK) {
            n->st.hints_delivered++;
        }
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
}

/* Sends one hint to its owner (a KV_PUT through the coordinator, w=1). */
static void hint_send(struct node *n, const char *hk, size_t len, uint64_t now)
{
    char owner[CL_ID_MAX + 1];
    const char *key;
    size_t klen;
    if (!hint_split(hk, len, owner, &key, &klen) ||
        op_on_key(n->hint_ops, NODE_HINT_SLOTS, hk, len) != NULL) {
        return;
    }
    /* The owner left the cluster (or is this node): the hint goes to the
     * key's current first primary instead, so its data is not stranded. */
    struct membership_member mm;
    const char *dest = owner;
    struct route_targets t;
    if (strcmp(owner, n->id) == 0 ||
        !membership_member_find(n->mem, owner, &mm) ||
        !membership_status_active(mm.status)) {
        node__targets(n, key, klen, n->eff.n, &t);
        dest = NULL;
        for (size_t i = 0; i < t.n && dest == NULL; i++) {
            if (!t.hint_for[i] && node__is_up_or_self(n, t.id[i])) {
                dest = t.id[i];
            }
        }
        if (dest == NULL) {
            return;
        }
        if (strcmp(dest, n->id) == 0) {
            if (!node_is_degraded(n)) {
                hint_deliver_local(n, hk, len, key, klen);
            }
            return;
        }
    }
    /* A degraded owner cannot take it yet: the hint waits (issue 12). */
    if (!node_peer_is_up(n, dest) || node_peer_is_degraded(n, dest) ||
        n->n_hint_ops >= NODE_HINT_SLOTS) {
        return;
    }
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    struct node__op *op = NULL;
    if (replica_read(n->hints, hk, len, &o) == RK_OK &&
        dvv_encode(&o, &enc) == RK_OK &&
        (op = node__op_get(n, NODE__OP_HINT)) != NULL) {
        const char *targets[1] = {dest};
        struct coord_put_req p = {
            .key = key,
            .klen = klen,
            .object = enc.base,
            .olen = enc.len,
            .targets = targets,
            .n_targets = 1,
            .acked = -1,
            .w = 1,
            .timeout_ms = n->set.request_timeout_ms,
            .cookie = op->slot,
        };
        uint64_t rid = 0;
        int rc = rk_buf_append(&op->key, hk, len);
        if (rc == RK_OK) {
            rc = coord_start_put(n->coord, &p, now, &rid);
        }
        if (rc == RK_OK) {
            /* a pending owner may have folded past this key already */
            node__forward_pending(n, key, klen, &enc, n->set.request_timeout_ms,
                                  NULL);
        }
        bg_keep(n, op, rc, rid, &enc, n->hint_ops, NODE_HINT_SLOTS,
                &n->n_hint_ops, now);
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
}

void node__hints_round(struct node *n, uint64_t now)
{
    if (n->hints == NULL || now < n->hint_scan_at) {
        return;
    }
    n->hint_scan_at = now + NODE_HINT_ROUND_MS;
    (void)engine_tick(n->hints); /* merges of the hint store */
    struct engine_stats st;
    engine_stats(n->hints, &st);
    if (st.live_keys == 0) {
        return;
    }
    scan_round(n, n->hints, &n->hint_cursor, NODE_HINT_BATCH, NULL, 0,
               hint_send, now);
}

void node__hint_reply(struct node *n,
                      struct node__op *op,
                      const struct coord_reply *r)
{
    n->n_hint_ops--;
    untrack(n->hint_ops, NODE_HINT_SLOTS, op);
    if (r->status == RK_OK) {
        uint64_t h = 0;
        if (object_hash(n->hints, op->key.base, op->key.len, &h) == RK_OK) {
            uint64_t seq;
            if (h != op->hash) {
                n->st.hints_superseded++; /* grew meanwhile: send again */
            } else if (engine_delete(n->hints, op->key.base, op->key.len, 0,
                                     &seq) == RK_OK) {
                n->st.hints_delivered++;
            }
        }
    }
    node__op_put(n, op); /* failed: kept, the next round retries */
}

uint64_t node_hints_pending(const struct node *n)
{
    if (n->hints == NULL) {
        return 0;
    }
    struct engine_stats st;
    engine_stats(n->hints, &st);
    return st.live_keys;
}

/* Merges into *merged every hint this node holds for key, whatever its
 * owner: RK_OK (some merged), RK_ENOTFOUND (none), or the error of a read
 * that failed (the caller cannot tell what is held). */
static int hint_merge(struct node *n,
                      const char *key,
                      size_t klen,
                      struct dvv_obj *merged)
{
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf hk;
    rk_buf_init(&hk);
    int rc = RK_ENOTFOUND;
    size_t m = membership_member_count(n->mem);
    for (size_t i = 0; n->hints && i < m; i++) {
        struct membership_member mm;
        membership_member_get(n->mem, i, &mm);
        if (hint_key(mm.node_id, strlen(mm.node_id), key, klen, &hk) != RK_OK) {
            rc = RK_ENOMEM;
            break;
        }
        int r = replica_read(n->hints, hk.base, hk.len, &o);
        if (r == RK_OK) {
            r = dvv_merge_into(merged, &o);
            rc = r == RK_OK && rc != RK_ENOMEM ? RK_OK : r;
        } else if (r != RK_ENOTFOUND) {
            rc = r; /* cannot tell: the reaper must not go on */
            break;
        }
    }
    rk_buf_fini(&hk);
    dvv_fini(&o);
    return rc;
}

void node__hint_view(struct node *n,
                     const struct peer_kv_get *req,
                     struct peer_msg *rep)
{
    const char *key = (const char *)req->key.ptr + NODE_HINT_VIEW_PREFIX_LEN;
    size_t klen = req->key.len - NODE_HINT_VIEW_PREFIX_LEN;
    struct dvv_obj merged;
    dvv_init(&merged);
    int rc = hint_merge(n, key, klen, &merged);
    rk_buf_clear(&n->valbuf);
    if (rc == RK_OK) {
        rc = dvv_encode(&merged, &n->valbuf);
    }
    dvv_fini(&merged);
    memset(rep, 0, sizeof(*rep));
    rep->type = PEER_KV_GET_REPLY;
    rep->kv_get_reply.req_id = req->req_id;
    rep->kv_get_reply.status = rc;
    if (rc == RK_OK) {
        rep->kv_get_reply.object.ptr = n->valbuf.base;
        rep->kv_get_reply.object.len = n->valbuf.len;
    }
}

void node__get_with_hints(struct node *n,
                          const struct peer_kv_get *req,
                          struct peer_msg *rep)
{
    int st = rep->kv_get_reply.status;
    if (n->hints == NULL || (st != RK_OK && st != RK_ENOTFOUND)) {
        return;
    }
    if (node_hints_pending(n) == 0) {
        return;
    }
    struct dvv_obj merged;
    dvv_init(&merged);
    int rc = hint_merge(n, req->key.ptr, req->key.len, &merged);
    if (rc == RK_OK && st == RK_OK) {
        struct dvv_obj d;
        dvv_init(&d);
        rc = dvv_decode(&d, rep->kv_get_reply.object.ptr,
                        rep->kv_get_reply.object.len);
        if (rc == RK_OK) {
            rc = dvv_merge_into(&merged, &d);
        }
        dvv_fini(&d);
    }
    if (rc == RK_OK) {
        /* the data's copy was decoded out of n->valbuf above: reusable */
        rk_buf_clear(&n->valbuf);
        rc = dvv_encode(&merged, &n->valbuf);
    }
    dvv_fini(&merged);
    if (rc == RK_ENOTFOUND) {
        return; /* no hint for the key: the data's answer stands */
    }
    rep->kv_get_reply.status = rc;
    rep->kv_get_reply.object.ptr = rc == RK_OK ? n->valbuf.base : NULL;
    rep->kv_get_reply.object.len = rc == RK_OK ? n->valbuf.len : 0;
}

/* ---- tombstone reaping ------------------------------------------------ */

/* Candidates: objects dead (deleted or expired) since before cutoff. */
static bool reap_want(const struct engine_meta *meta, uint64_t cutoff_ms)
{
    return replica_meta_is_reapable(meta, cutoff_ms);
}

static void reap_check(struct node *n,
                       const char *key,
                       size_t klen,
                       uint64_t now)
{
    if (n->n_reap_ops >= NODE_REAP_SLOTS ||
        op_on_key(n->reap_ops, NODE_REAP_SLOTS, key, klen) != NULL) {
        return;
    }
    struct route_targets t;
    node__targets(n, key, klen, n->eff.n, &t);
    for (size_t i = 0; i < t.n; i++) {
        if (t.hint_for[i] || !node__is_up_or_self(n, t.id[i])) {
            return; /* a primary is down: wait */
        }
    }
    if (t.n == 0) {
        return;
    }
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    uint64_t wall = rk_env_wall_ms(n->env);
    uint64_t dead = 0;
    if (replica_read(n->data, key, klen, &o) == RK_OK) {
        dead = replica_dead_at(&o);
    }
    struct node__op *op = NULL;
    if (dead != 0 &&
        hlc_physical_ms(dead) + n->set.tombstone_grace_ms <= wall &&
        dvv_encode(&o, &enc) == RK_OK &&
        (op = node__op_get(n, NODE__OP_REAP)) != NULL) {
        struct coord_get_req q = {
            .key = key,
            .klen = klen,
            .targets = t.id,
            .n_targets = t.n,
            .r = (uint32_t)t.n,
            .timeout_ms = n->set.request_timeout_ms,
            .cookie = op->slot,
        };
        uint64_t rid = 0;
        int rc = rk_buf_append(&op->key, key, klen);
        if (rc == RK_OK) {
            rc = coord_start_get(n->coord, &q, now, &rid);
        }
        bg_keep(n, op, rc, rid, &enc, n->reap_ops, NODE_REAP_SLOTS,
                &n->n_reap_ops, now);
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
}

static bool reap_ask_hints(struct node *n, struct node__op *op, uint64_t now);

void node__reap_round(struct node *n, uint64_t now)
{
    while (n->reap_pending) {
        struct node__op *op = n->reap_pending;
        n->reap_pending = op->next;
        op->next = NULL;
        if (!reap_ask_hints(n, op, now)) {
            n->n_reap_ops--;
            untrack(n->reap_ops, NODE_REAP_SLOTS, op);
            node__op_put(n, op);
        }
    }
    if (now < n->reap_scan_at || !n->multi ||
        membership_next_ring(n->mem) != NULL) {
        /* no reaping during an ownership transition: a pending owner
         * that received the tombstone must not see it reaped away while
         * older copies still travel to it */
        return;
    }
    uint64_t grace_ms = n->set.tombstone_grace_ms;
    n->reap_scan_at = now + (grace_ms / 4 < 1000 ? grace_ms / 4 + 50 : 1000);
    uint64_t wall = rk_env_wall_ms(n->env);
    scan_round(n, n->data, &n->reap_cursor, NODE_REAP_BATCH, reap_want,
               wall > grace_ms ? wall - grace_ms : 0, reap_check, now);
}

/* Asks every member, all up, for the hints it holds for op's key (the
 * hint view): the second step of a reaping check, started from the next
 * round (not from inside the coordinator's reply).  false when it could
 * not start (a member is down: wait for a later check).  op stays
 * tracked either way. */
static bool reap_ask_hints(struct node *n, struct node__op *op, uint64_t now)
{
    const char *ids[COORD_MAX_TARGETS];
    size_t m = membership_member_count(n->mem), k = 0;
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(n->mem, i, &mm);
        if (!membership_status_active(mm.status)) {
            continue;
        }
        if (k == COORD_MAX_TARGETS || !node__is_up_or_self(n, mm.node_id)) {
            return false;
        }
        ids[k++] = mm.node_id;
    }
    struct rk_buf vk;
    rk_buf_init(&vk);
    int rc =
        rk_buf_append(&vk, NODE_HINT_VIEW_PREFIX, NODE_HINT_VIEW_PREFIX_LEN);
    if (rc == RK_OK) {
        rc = rk_buf_append(&vk, op->key.base, op->key.len);
    }
    uint64_t rid = 0;
    if (rc == RK_OK && k > 0) {
        struct coord_get_req q = {
            .key = vk.base,
            .klen = vk.len,
            .targets = ids,
            .n_targets = k,
            .r = (uint32_t)k,
            .timeout_ms = n->set.request_timeout_ms,
            .cookie = op->slot,
        };
        rc = coord_start_get(n->coord, &q, now, &rid);
    }
    rk_buf_fini(&vk);
    if (rc != RK_OK || k == 0) {
        return false;
    }
    op->coord_req = rid;
    op->phase = 1;
    node__drain(n, now);
    return true;
}

void node__reap_reply(struct node *n,
                      struct node__op *op,
                      const struct coord_reply *r)
{
    if (op->phase == 0 && r->status == RK_OK && r->found && r->uniform &&
        r->successes == r->n_targets &&
        XXH3_64bits(r->object.ptr, r->object.len) == op->hash) {
        /* every primary holds this very tombstone: the hints next (the
         * next round starts it: no new request from inside a reply) */
        op->next = n->reap_pending;
        n->reap_pending = op;
        return;
    }
    n->n_reap_ops--;
    untrack(n->reap_ops, NODE_REAP_SLOTS, op);
    if (op->phase == 0) {
        node__op_put(n, op);
        return;
    }
    /* Reaped only when no member holds a hint for the key: a hint of a
     * value the delete superseded, delivered after the reap, would bring
     * it back (the simulator's I5, seeds 932 and 188). */
    if (r->status == RK_ENOTFOUND && !r->found &&
        r->successes == r->n_targets) {
        /* still the same tombstone here (nothing written meanwhile)? */
        uint64_t h = 0;
        if (object_hash(n->data, op->key.base, op->key.len, &h) == RK_OK &&
            h == op->hash) {
            uint64_t seq = 0;
            uint64_t old = node__aae_record_hash(n, op->key.base, op->key.len);
            if (engine_delete(n->data, op->key.base, op->key.len, 0, &seq) ==
                RK_OK) {
                node__aae_deleted(n, op->key.base, op->key.len, old);
                node__note_write(n, seq);
                n->st.tombstones_reaped++;
            }
        }
    }
    node__op_put(n, op);
}

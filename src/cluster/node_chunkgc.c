/*
 * node_chunkgc.c - deleting the blocks of superseded chunk manifests
 * (chunk.h; issue 12 item 4).
 *
 * A large value is a manifest under the user's key plus blocks under
 * internal keys.  When a write drops a manifest from its key's object (a
 * SET over it, a DEL, a read-modify-write, or lww / the sibling bound
 * discarding it), the coordinating replica that applied the write reports
 * it (replica_cfg.superseded, replica_handle_update) and this node queues
 * it.  NODE_CHUNK_GC_DELAY_MS later (so that a reader that fetched the old
 * manifest just before can still read its blocks) a **check** reads the
 * user key from every replica: its N primaries, all up (no fallback), and
 * its pending owners during an ownership transition, R = all of them.
 * The blocks are garbage only when every one answered with the same
 * object, that object's clock covers the dropped sibling's dot and no
 * sibling of it names the same manifest: then no replica can serve the
 * manifest again, and no hint or handoff can bring it back (a merge drops
 * a sibling whose dot the other side's clock covers).  Otherwise (the
 * superseding write reached only some replicas, is not acknowledged, or
 * lives only on a node being removed: simulator seed 744, I9) the check is
 * repeated after NODE_CHUNK_GC_DELAY_MS << attempt, up to
 * NODE_CHUNK_GC_CHECKS times; then the blocks are left on disk and
 * counted (chunk_manifests_kept): leaking space, never a value.
 *
 * Then each block is deleted with an ordinary write: a tombstone over
 * everything the block's replicas have seen (own context), quorum W,
 * hinted when a replica is down.  At most NODE_CHUNK_GC_WINDOW deletes
 * are in flight; a failed one is tried again NODE_CHUNK_GC_RETRY_MS later,
 * up to NODE_CHUNK_GC_RETRIES times.
 *
 * replica.c applies a duplicated UPDATE of a manifest once (a second dot
 * naming the same blocks would let a later write drop one copy while the
 * other lives on; the simulator's I9 found this).
 *
 * The queue is in memory: a crash of this node before its deletes ran
 * leaves those blocks on disk (counted nowhere; docs/operations.md "Large
 * values").
 *
 * Thread: the node's (sans-IO, as node.c).
 */
#include <string.h>

#include "cluster/dvv.h"
#include "cluster/node_internal.h"
#include "common/error.h"

/* A queued check: u64 due (0: not stamped yet), u64 ts, u64 dot actor,
 * u64 dot counter, u32 key length, u32 manifest length, u8 attempt, then
 * the key and the manifest. */
#define GC_ENTRY_HDR 41
#define GC_RETRY_LEN (17 + CHUNK_KEY_LEN) /* u64 due, u64 ts, u8, key */

/* Appends a check entry to the queue (due 0: the next pump stamps it
 * with now + delay_ms).  false on ENOMEM (nothing appended). */
static bool queue_check(struct node *n,
                        const void *key,
                        uint32_t klen,
                        struct dvv_dot dot,
                        const void *manifest,
                        uint32_t mlen,
                        uint64_t ts,
                        uint8_t attempt)
{
    unsigned char h[GC_ENTRY_HDR];
    uint64_t due = 0;
    memcpy(h, &due, 8);
    memcpy(h + 8, &ts, 8);
    memcpy(h + 16, &dot.actor, 8);
    memcpy(h + 24, &dot.counter, 8);
    memcpy(h + 32, &klen, 4);
    memcpy(h + 36, &mlen, 4);
    h[40] = attempt;
    struct rk_buf *q = &n->gcq[attempt].b;
    size_t at = q->len;
    if (rk_buf_append(q, h, sizeof(h)) != RK_OK ||
        rk_buf_append(q, key, klen) != RK_OK ||
        rk_buf_append(q, manifest, mlen) != RK_OK) {
        q->len = at;
        return false;
    }
    return true;
}

void node__gc_enqueue(void *data,
                      const void *key,
                      size_t klen,
                      struct dvv_dot dot,
                      const void *manifest,
                      size_t len,
                      uint64_t ts)
{
    struct node *n = data;
    struct chunk_manifest m;
    if (chunk_manifest_decode(manifest, len, UINT64_MAX, &m) != RK_OK) {
        return; /* not one of ours: nothing to delete */
    }
    if (!queue_check(n, key, (uint32_t)klen, dot, manifest, (uint32_t)len, ts,
                     0)) {
        n->st.chunk_blocks_failed += m.n_blocks; /* dropped: blocks stay */
        return;
    }
    n->st.chunk_gc_queued++;
}

/* Gives every entry queued since the last pump its due time: its
 * attempt's delay from now. */
static void stamp(struct node__gcq *q, uint64_t now)
{
    while (q->stamped + GC_ENTRY_HDR <= q->b.len) {
        unsigned char *e = (unsigned char *)q->b.base + q->stamped;
        uint32_t klen, mlen;
        memcpy(&klen, e + 32, 4);
        memcpy(&mlen, e + 36, 4);
        uint64_t due = now + ((uint64_t)NODE_CHUNK_GC_DELAY_MS << e[40]);
        memcpy(e, &due, 8);
        q->stamped += GC_ENTRY_HDR + (size_t)klen + mlen;
    }
}

/* Fills ids[] with the replicas a check of key asks: the N primaries (all
 * up, none replaced by a fallback) and the pending owners (all up).
 * Returns how many, 0 when one of them is down (check again later). */
static size_t check_targets(struct node *n,
                            const void *key,
                            size_t klen,
                            const char **ids)
{
    struct route_targets t;
    node__targets(n, key, klen, n->eff.n, &t);
    size_t k = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.hint_for[i] || !node__is_up_or_self(n, t.id[i])) {
            return 0;
        }
        ids[k++] = t.id[i];
    }
    for (size_t i = 0; i < t.n_pending && k < COORD_MAX_TARGETS; i++) {
        if (!node__is_up_or_self(n, t.pending[i])) {
            return 0;
        }
        ids[k++] = t.pending[i];
    }
    return k;
}

/* Gives an entry whose check failed (or could not start) another try
 * later, or gives up on it: its blocks stay on disk. */
static void check_again(struct node *n,
                        const void *key,
                        uint32_t klen,
                        struct dvv_dot dot,
                        const void *manifest,
                        uint32_t mlen,
                        uint64_t ts,
                        uint8_t attempt)
{
    n->st.chunk_gc_deferred++;
    if (attempt + 1 < NODE_CHUNK_GC_CHECKS &&
        queue_check(n, key, klen, dot, manifest, mlen, ts,
                    (uint8_t)(attempt + 1))) {
        return;
    }
    n->st.chunk_manifests_kept++;
}

/* Starts the check of the head entry when it is due.  false: none is, or
 * no operation is free (the next tick goes on). */
static bool check_head(struct node *n, struct node__gcq *q, uint64_t now)
{
    if (q->head + GC_ENTRY_HDR > q->stamped) {
        return false;
    }
    const unsigned char *e = (const unsigned char *)q->b.base + q->head;
    uint64_t due, ts;
    struct dvv_dot dot;
    uint32_t klen, mlen;
    memcpy(&due, e, 8);
    memcpy(&ts, e + 8, 8);
    memcpy(&dot.actor, e + 16, 8);
    memcpy(&dot.counter, e + 24, 8);
    memcpy(&klen, e + 32, 4);
    memcpy(&mlen, e + 36, 4);
    uint8_t attempt = e[40];
    if (due > now) {
        return false;
    }
    const char *key = (const char *)e + GC_ENTRY_HDR;
    const char *man = key + klen;
    const char *ids[COORD_MAX_TARGETS];
    size_t k = check_targets(n, key, klen, ids);
    struct node__op *op = NULL;
    if (k > 0) {
        op = node__op_get(n, NODE__OP_GCCHECK);
        if (op == NULL) {
            return false;
        }
    }
    int rc = RK_OK;
    if (op != NULL) {
        op->ts = ts;
        op->gc_attempt = attempt;
        op->gc_dot = dot;
        rc = rk_buf_append(&op->key, key, klen);
        if (rc == RK_OK) {
            rc = rk_buf_append(&op->val, man, mlen);
        }
        uint64_t rid = 0;
        if (rc == RK_OK) {
            struct coord_get_req req = {
                .key = key,
                .klen = klen,
                .targets = ids,
                .n_targets = k,
                .r = (uint32_t)k,
                .timeout_ms = n->set.request_timeout_ms,
                .cookie = op->slot,
                /* a replica found behind is repaired: the next check
                 * can pass */
                .repair_wait_ms = n->set.read_repair_wait_ms,
            };
            rc = coord_start_get(n->coord, &req, now, &rid);
        }
        if (rc == RK_OK) {
            op->coord_req = rid;
            n->gc_checks++;
            n->st.chunk_gc_checks++;
        } else {
            node__op_put(n, op);
        }
    }
    if (op == NULL || rc != RK_OK) {
        /* a replica is down (or no memory): later */
        check_again(n, key, klen, dot, man, mlen, ts, attempt);
    }
    /* check_again appended to another queue (or none): e stays valid */
    q->head += GC_ENTRY_HDR + (size_t)klen + mlen;
    if (q->head == q->b.len) {
        rk_buf_clear(&q->b);
        q->head = q->stamped = 0;
    } else if (q->head > 64 * 1024 && q->head * 2 > q->b.len) {
        rk_buf_consume(&q->b, q->head);
        q->stamped -= q->head;
        q->head = 0;
    }
    if (op != NULL && rc == RK_OK) {
        node__drain(n, now);
    }
    return true;
}

/* Whether a check's answer shows the manifest dead on every replica. */
static bool check_passed(const struct node__op *op, const struct coord_reply *r)
{
    if (r->status != RK_OK || !r->found || !r->uniform ||
        r->successes != r->n_targets || r->with_object != r->n_targets) {
        return false;
    }
    struct dvv_obj o;
    dvv_init(&o);
    bool ok = dvv_decode(&o, r->object.ptr, r->object.len) == RK_OK &&
              dvv_covers(&o, op->gc_dot);
    for (size_t i = 0; ok && i < o.n_sibs; i++) {
        ok = !(o.sibs[i].chunked && o.sibs[i].vlen == op->val.len &&
               memcmp(dvv_value(&o, i), op->val.base, op->val.len) == 0);
    }
    dvv_fini(&o);
    return ok;
}

void node__gc_check_reply(struct node *n,
                          struct node__op *op,
                          const struct coord_reply *r)
{
    if (n->gc_checks > 0) {
        n->gc_checks--;
    }
    if (!check_passed(op, r)) {
        check_again(n, op->key.base, (uint32_t)op->key.len, op->gc_dot,
                    op->val.base, (uint32_t)op->val.len, op->ts,
                    op->gc_attempt);
        node__op_put(n, op);
        return;
    }
    /* garbage: its blocks to the delete queue {u64 ts, u32 len, manifest} */
    uint32_t l = (uint32_t)op->val.len;
    size_t at = n->gcd.len;
    if (rk_buf_append(&n->gcd, &op->ts, 8) != RK_OK ||
        rk_buf_append(&n->gcd, &l, 4) != RK_OK ||
        rk_buf_append(&n->gcd, op->val.base, l) != RK_OK) {
        n->gcd.len = at;
        n->st.chunk_manifests_kept++;
    }
    node__op_put(n, op);
}

/* Takes the next manifest whose blocks are to be deleted.  false: none. */
static bool take_head(struct node *n)
{
    if (n->gcd_head + 12 > n->gcd.len) {
        return false;
    }
    const char *e = n->gcd.base + n->gcd_head;
    uint64_t ts;
    uint32_t len;
    memcpy(&ts, e, 8);
    memcpy(&len, e + 8, 4);
    rk_buf_clear(&n->gc_cur);
    int rc = rk_buf_append(&n->gc_cur, e + 12, len);
    n->gcd_head += 12 + (size_t)len;
    if (n->gcd_head == n->gcd.len) {
        rk_buf_clear(&n->gcd);
        n->gcd_head = 0;
    } else if (n->gcd_head > 64 * 1024 && n->gcd_head * 2 > n->gcd.len) {
        rk_buf_consume(&n->gcd, n->gcd_head);
        n->gcd_head = 0;
    }
    if (rc != RK_OK || chunk_manifest_decode(n->gc_cur.base, n->gc_cur.len,
                                             UINT64_MAX, &n->gc_man) != RK_OK) {
        return true; /* nothing to do for it; try the next */
    }
    n->gc_active = true;
    n->gc_next = 0;
    n->gc_ts = ts;
    return true;
}

/* Starts the retries that are due.  false: the window or the operation
 * table is full. */
static bool pump_retries(struct node *n, uint64_t now)
{
    uint64_t due_new = now + NODE_CHUNK_GC_RETRY_MS;
    for (; n->gcr_stamped + GC_RETRY_LEN <= n->gcr.len;
         n->gcr_stamped += GC_RETRY_LEN) {
        memcpy(n->gcr.base + n->gcr_stamped, &due_new, 8);
    }
    while (n->gcr_head + GC_RETRY_LEN <= n->gcr.len) {
        if (n->gc_inflight >= NODE_CHUNK_GC_WINDOW) {
            return false;
        }
        const char *e = n->gcr.base + n->gcr_head;
        uint64_t due, ts;
        memcpy(&due, e, 8);
        memcpy(&ts, e + 8, 8);
        if (due > now) {
            return true;
        }
        int rc = node__start_own_write(n, e + 17, CHUNK_KEY_LEN, ts,
                                       (uint8_t)e[16], now);
        if (rc == RK_EBUSY) {
            return false;
        }
        n->gcr_head += GC_RETRY_LEN;
        if (rc == RK_OK) {
            n->gc_inflight++;
        } else {
            n->st.chunk_blocks_failed++;
        }
    }
    rk_buf_clear(&n->gcr);
    n->gcr_head = n->gcr_stamped = 0;
    return true;
}

void node__gc_pump(struct node *n, uint64_t now)
{
    for (size_t i = 0; i < NODE_CHUNK_GC_CHECKS; i++) {
        struct node__gcq *q = &n->gcq[i];
        stamp(q, now);
        while (n->gc_checks < NODE_CHUNK_GC_CHECK_WINDOW &&
               check_head(n, q, now)) {
        }
    }
    if (!pump_retries(n, now)) {
        return;
    }
    while (n->gc_inflight < NODE_CHUNK_GC_WINDOW) {
        if (!n->gc_active && !take_head(n)) {
            return;
        }
        if (!n->gc_active) {
            continue;
        }
        if (n->gc_next >= n->gc_man.n_blocks) {
            n->gc_active = false;
            continue;
        }
        unsigned char key[CHUNK_KEY_LEN];
        chunk_block_key(&n->gc_man, n->gc_next, key);
        int rc = node__start_own_write(n, key, sizeof(key), n->gc_ts, 0, now);
        if (rc == RK_EBUSY) {
            return; /* no free operation: the next tick goes on */
        }
        n->gc_next++;
        if (rc == RK_OK) {
            n->gc_inflight++;
        } else {
            n->st.chunk_blocks_failed++;
        }
    }
}

void node__gc_done(struct node *n, const struct node__op *op, int status)
{
    if (n->gc_inflight > 0) {
        n->gc_inflight--;
    }
    if (status == RK_OK) {
        n->st.chunk_blocks_deleted++;
        return;
    }
    if (op->gc_attempt + 1 < NODE_CHUNK_GC_RETRIES &&
        op->key.len == CHUNK_KEY_LEN) {
        /* again later (stamped by the next pump) */
        char e[GC_RETRY_LEN];
        uint64_t due = 0;
        memcpy(e, &due, 8);
        memcpy(e + 8, &op->ts, 8);
        e[16] = (char)(op->gc_attempt + 1);
        memcpy(e + 17, op->key.base, CHUNK_KEY_LEN);
        if (rk_buf_append(&n->gcr, e, sizeof(e)) == RK_OK) {
            n->st.chunk_blocks_retried++;
            return;
        }
    }
    n->st.chunk_blocks_failed++;
}

/*
 * node_chunkgc.c - deleting the blocks of superseded chunk manifests
 * (chunk.h; issue 12 item 4).
 *
 * A large value is a manifest under the user's key plus blocks under
 * internal keys.  When a write drops a manifest from its key's object (a
 * SET over it, a DEL, a read-modify-write, or lww / the sibling bound
 * discarding it), the coordinating replica that applied the write reports
 * it (replica_cfg.superseded, replica_handle_update); this node queues it
 * and, NODE_CHUNK_GC_DELAY_MS later (so that a reader that fetched the old
 * manifest just before can still read its blocks), deletes each block
 * with an ordinary write: a tombstone over everything the block's replicas
 * have seen (own context), quorum W, hinted when a replica is down.  At
 * most NODE_CHUNK_GC_WINDOW deletes are in flight; a failed one is tried
 * again NODE_CHUNK_GC_RETRY_MS later, up to NODE_CHUNK_GC_RETRIES times.
 *
 * A write that drops a manifest is the only trigger: replica.c applies a
 * duplicated UPDATE of a manifest once (a second dot naming the same
 * blocks would let a later write drop one copy while the other lives on;
 * the simulator's I9 found this).
 *
 * Each write is applied at exactly one coordinating replica, so a manifest
 * is reported once per write that drops it.  The queue is in memory: a
 * crash of this node before its deletes ran leaves those blocks on disk
 * (counted nowhere; docs/operations.md "Large values").
 *
 * Thread: the node's (sans-IO, as node.c).
 */
#include <string.h>

#include "cluster/node_internal.h"
#include "common/error.h"

#define GC_ENTRY_HDR 20                   /* u64 due, u64 ts, u32 len */
#define GC_RETRY_LEN (17 + CHUNK_KEY_LEN) /* u64 due, u64 ts, u8, key */

void node__gc_enqueue(void *data, const void *manifest, size_t len, uint64_t ts)
{
    struct node *n = data;
    struct chunk_manifest m;
    if (chunk_manifest_decode(manifest, len, UINT64_MAX, &m) != RK_OK) {
        return; /* not one of ours: nothing to delete */
    }
    uint64_t due = 0;
    uint32_t l = (uint32_t)len;
    size_t at = n->gcq.len;
    if (rk_buf_append(&n->gcq, &due, 8) != RK_OK ||
        rk_buf_append(&n->gcq, &ts, 8) != RK_OK ||
        rk_buf_append(&n->gcq, &l, 4) != RK_OK ||
        rk_buf_append(&n->gcq, manifest, len) != RK_OK) {
        n->gcq.len = at; /* dropped: its blocks stay (counted) */
        n->st.chunk_blocks_failed += m.n_blocks;
        return;
    }
    n->st.chunk_gc_queued++;
}

/* Gives every entry queued since the last pump its due time. */
static void stamp(struct node *n, uint64_t now)
{
    uint64_t due = now + NODE_CHUNK_GC_DELAY_MS;
    while (n->gcq_stamped + GC_ENTRY_HDR <= n->gcq.len) {
        char *e = n->gcq.base + n->gcq_stamped;
        uint32_t len;
        memcpy(&len, e + 16, 4);
        memcpy(e, &due, 8);
        n->gcq_stamped += GC_ENTRY_HDR + (size_t)len;
    }
}

/* Takes the head entry when it is due.  false: none is. */
static bool take_head(struct node *n, uint64_t now)
{
    if (n->gcq_head + GC_ENTRY_HDR > n->gcq.len) {
        return false;
    }
    const char *e = n->gcq.base + n->gcq_head;
    uint64_t due, ts;
    uint32_t len;
    memcpy(&due, e, 8);
    memcpy(&ts, e + 8, 8);
    memcpy(&len, e + 16, 4);
    if (due > now) {
        return false;
    }
    rk_buf_clear(&n->gc_cur);
    int rc = rk_buf_append(&n->gc_cur, e + GC_ENTRY_HDR, len);
    n->gcq_head += GC_ENTRY_HDR + (size_t)len;
    if (n->gcq_head == n->gcq.len) {
        rk_buf_clear(&n->gcq);
        n->gcq_head = n->gcq_stamped = 0;
    } else if (n->gcq_head > 64 * 1024 && n->gcq_head * 2 > n->gcq.len) {
        rk_buf_consume(&n->gcq, n->gcq_head);
        n->gcq_stamped -= n->gcq_head;
        n->gcq_head = 0;
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
    stamp(n, now);
    if (!pump_retries(n, now)) {
        return;
    }
    while (n->gc_inflight < NODE_CHUNK_GC_WINDOW) {
        if (!n->gc_active && !take_head(n, now)) {
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

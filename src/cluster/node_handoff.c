/*
 * node_handoff.c - partition handoff of the node (issue 14 item 2;
 * membership.h "the ownership transition").
 *
 * Receiver (a pending owner): every NODE_HANDOFF_ROUND_MS a round starts
 * transfers for the partitions this node is pending for and has not
 * received, at most handoff_concurrency at once (node_settings; a
 * lowered setting lets running transfers finish).  FOLD batches are
 * asked only while the receive rate limit (handoff_max_kbps, a token
 * bucket of one second) has tokens: with both, an operator bounds what
 * a join or leave takes from the foreground (issue 14 item 2).  A transfer
 * pulls the partition from every current replica of it (its preference list in
 * the current ring, self aside) with FOLD requests, one batch in flight per
 * source, and merges each object into the data engine through the one
 * replica path (replica_handle_put: the DVV merge of every other write,
 * never an overwrite), so writes that reach this node meanwhile (it gets
 * every write as a pending owner) and the batches can arrive in any
 * order.  Pulling from every current replica, not one, gives the pending
 * owner every write that reached W of them: an acknowledged write is on
 * at least one replica that answers, whatever replica missed it.  A
 * source that is down when its turn comes, or goes down (as this node's
 * detector sees it) with a FOLD in flight, is skipped, as long as another
 * source folded to the end (a transfer with every source down waits).
 * When every source is done and the merges are durable under the sync
 * policy (engine_acked_seq), the partition is received here; the round
 * marks received partitions in the cluster state (membership_mark_received,
 * one version for all of them), again while a concurrent change hides the
 * mark.
 *
 * Sender (a current replica): a FOLD from a member that is a pending owner
 * of the partition, while this node is one of its current replicas, is
 * answered with the next batch: keys of the partition from the cursor on
 * (engine_scan: SCAN's guarantee, every key present during the whole fold
 * is visited), their stored objects, and the next cursor.  The cursor is
 * (this run's instance, the scan cursor): a cursor of another run starts
 * over (duplicates merge to the same object).  Anything else is refused
 * with a log line and changes nothing (issue 14 item 6).
 *
 * Drop: once a transition finished (and after a start, and when this
 * node was removed), a scan after handoff_drop_grace_ms deletes from the
 * data engine every key of a partition this node is not a current replica
 * of (all of them on a removed node), NODE_HANDOFF_SCAN keys a round, so
 * an old owner neither keeps stale copies (which could bring back keys
 * whose tombstones were reaped meanwhile, were it to own the partition
 * again) nor keeps a removed node from joining again.  Nothing is dropped
 * during a transition.
 *
 * Failures: a FOLD unanswered for NODE_HANDOFF_TIMEOUT_MS is asked again
 * from the same cursor after NODE_HANDOFF_RETRY_MS; its late answer is
 * ignored (its req_id is no longer the source's).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/node_internal.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

void node__handoff_fini(struct node *n)
{
    rk_free(n->ho.recv);
    rk_buf_fini(&n->ho.saved);
    rk_buf_fini(&n->ho.ckpt);
    rk_buf_fini(&n->ho.keys);
    rk_buf_fini(&n->ho.drop);
    rk_buf_fini(&n->ho.items);
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        rk_buf_fini(&n->ho.vkeys[i]);
    }
    memset(&n->ho, 0, sizeof(n->ho));
}

bool node__is_current_replica(const struct node *n, uint32_t p)
{
    const struct ring *r = membership_ring(n->mem);
    const char *ids[RING_MAX_N];
    size_t cnt = r && p < ring_size(r) ? ring_preflist_ids(r, p, ids) : 0;
    for (size_t i = 0; i < cnt; i++) {
        if (strcmp(ids[i], n->id) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- sender ------------------------------------------------------------- */

struct fold_ctx
{
    struct node *n;
    const struct ring *ring;
    uint32_t partition;
    struct rk_buf *keys; /* {u32 len, key}... */
    size_t n_keys;
    bool oom;
};

static bool fold_key_cb(void *data,
                        const void *key,
                        size_t klen,
                        const struct engine_meta *meta)
{
    (void)meta;
    struct fold_ctx *c = data;
    if (ring_partition_of_key(c->ring, key, klen) != c->partition) {
        return true;
    }
    unsigned char l[4];
    rk_put_le32(l, (uint32_t)klen);
    if (rk_buf_append(c->keys, l, 4) != RK_OK ||
        rk_buf_append(c->keys, key, klen) != RK_OK) {
        c->oom = true;
        return false;
    }
    c->n_keys++;
    return true;
}

void node__handoff_refuse(struct node *n,
                          const char *from,
                          const char *event,
                          uint64_t req_id,
                          uint32_t partition,
                          int status,
                          const char *why)
{
    uint64_t now = rk_env_mono_ms(n->env);
    if (now >= n->ho.refused_logged_ms + 10000) {
        n->ho.refused_logged_ms = now; /* rate-limited */
        node__log(n, RK_LOG_WARN, event,
                  "peer=%s partition=%" PRIu32 " reason=\"%s\"", from,
                  partition, why);
    }
    n->st.handoff_folds_refused++;
    struct peer_msg rep = {.type = PEER_FOLD_REPLY};
    rep.fold_reply.req_id = req_id;
    rep.fold_reply.status = status;
    node__send(n, from, NULL, 0, 0, &rep);
}

static void fold_refuse(struct node *n,
                        const char *from,
                        const struct peer_fold *f,
                        int status,
                        const char *why)
{
    node__handoff_refuse(n, from, "handoff_fold_refused", f->req_id,
                         f->partition, status, why);
}

static void on_fold(struct node *n, const char *from, const struct peer_fold *f)
{
    const struct ring *r = membership_ring(n->mem);
    if (r == NULL || membership_next_ring(n->mem) == NULL) {
        /* most likely the state that started the transition has not
         * reached this node yet: the asker tries again shortly */
        struct peer_msg rep = {.type = PEER_FOLD_REPLY};
        rep.fold_reply.req_id = f->req_id;
        rep.fold_reply.status = RK_EAGAIN;
        node__send(n, from, NULL, 0, 0, &rep);
        return;
    }
    if (f->partition >= ring_size(r) ||
        !membership_pending_for(n->mem, f->partition, from, NULL)) {
        fold_refuse(n, from, f, RK_EINVAL,
                    "the asker is not a pending owner of the partition");
        return;
    }
    if (!node__is_current_replica(n, f->partition)) {
        fold_refuse(n, from, f, RK_EINVAL,
                    "this node is not a current replica of the partition");
        return;
    }
    /* Cursor: u64 tag, u64 position.  Tag 0: a slot-index fold position
     * (engine_fold_slots: valid across restarts of this node); else this
     * run's instance with an engine_scan cursor (a cursor of another run
     * starts over). */
    uint32_t first = 0, last = 0;
    ring_slot_range(r, f->partition, &first, &last);
    uint64_t probe = 0;
    bool by_slot = engine_slot_count(n->data, first, &probe) == RK_OK;
    uint64_t tag = by_slot ? 0 : n->ho.instance;
    uint64_t cursor = by_slot ? ENGINE_FOLD_START : 0;
    if (f->cursor.len == 16 &&
        rk_get_le64((const unsigned char *)f->cursor.ptr) == tag) {
        cursor = rk_get_le64((const unsigned char *)f->cursor.ptr + 8);
    }
    rk_buf_clear(&n->ho.items);
    struct fold_ctx c = {
        .n = n, .ring = r, .partition = f->partition, .keys = &n->ho.keys};
    size_t looked = 0;
    bool done = false;
    int rc = RK_OK;
    uint32_t count = 0;
    /* Scan a few buckets at a time (the callback must not touch the
     * engine), then read those keys' objects; stop after the step that
     * reached max_bytes (a batch overshoots by one step's objects at most)
     * or the scan budget.  The cursor only ever moves past whole steps. */
    while (rc == RK_OK && !done && looked < NODE_HANDOFF_SCAN &&
           n->ho.items.len < f->max_bytes) {
        rk_buf_clear(&n->ho.keys);
        c.oom = false;
        uint64_t next = 0;
        if (by_slot) {
            rc = engine_fold_slots(n->data, first, last, cursor, 64,
                                   fold_key_cb, &c, &next);
            if (rc == RK_EINVAL && cursor != ENGINE_FOLD_START) {
                /* not a position of this engine: start over */
                cursor = ENGINE_FOLD_START;
                continue;
            }
        } else {
            rc = engine_scan(n->data, cursor, 64, fold_key_cb, &c, &next);
        }
        if (rc == RK_OK && c.oom) {
            rc = RK_ENOMEM;
        }
        if (rc != RK_OK) {
            break;
        }
        looked += 64;
        const unsigned char *kp = (const unsigned char *)c.keys->base;
        size_t left = c.keys->len;
        while (rc == RK_OK && left >= 4) {
            uint32_t kl = rk_get_le32(kp);
            const char *key = (const char *)kp + 4;
            kp += 4 + kl;
            left -= 4 + kl;
            struct peer_kv_get g = {.key = {key, kl}};
            struct peer_msg grep;
            replica_handle_get(n->data, &n->rcfg, &g, &n->valbuf, &grep);
            if (grep.kv_get_reply.status == RK_ENOTFOUND) {
                continue; /* deleted since the scan */
            }
            if (grep.kv_get_reply.status != RK_OK) {
                rc = grep.kv_get_reply.status;
                break;
            }
            struct peer_bytes o = grep.kv_get_reply.object;
            unsigned char l[4], ol[4];
            rk_put_le32(l, kl);
            rk_put_le32(ol, (uint32_t)o.len);
            if (rk_buf_append(&n->ho.items, l, 4) != RK_OK ||
                rk_buf_append(&n->ho.items, key, kl) != RK_OK ||
                rk_buf_append(&n->ho.items, ol, 4) != RK_OK ||
                rk_buf_append(&n->ho.items, o.ptr, o.len) != RK_OK) {
                rc = RK_ENOMEM;
                break;
            }
            count++;
        }
        cursor = next;
        done = by_slot ? next == ENGINE_FOLD_DONE : next == 0;
    }
    struct peer_msg rep = {.type = PEER_FOLD_REPLY};
    rep.fold_reply.req_id = f->req_id;
    rep.fold_reply.status = rc;
    unsigned char cur[16];
    if (rc == RK_OK) {
        rk_put_le64(cur, tag);
        rk_put_le64(cur + 8, cursor);
        rep.fold_reply.cursor = (struct peer_bytes){(const char *)cur, 16};
        rep.fold_reply.flags = done ? PEER_FOLD_DONE : 0;
        rep.fold_reply.count = count;
        rep.fold_reply.items =
            (struct peer_bytes){n->ho.items.base, n->ho.items.len};
        n->st.handoff_keys_out += count;
        n->st.handoff_bytes_out += n->ho.items.len;
    } else {
        node__log(n, RK_LOG_WARN, "handoff_fold_failed",
                  "peer=%s partition=%" PRIu32 " error=%s", from, f->partition,
                  rk_errname(rc));
    }
    n->st.handoff_folds_served++;
    node__send(n, from, NULL, 0, 0, &rep);
}

void node__handoff_on_request(struct node *n,
                              const char *from,
                              const struct peer_msg *m)
{
    if (m->type == PEER_FETCH) {
        node__handoff_on_fetch(n, from, &m->fetch);
    } else {
        on_fold(n, from, &m->fold);
    }
}

/* ---- receiver ----------------------------------------------------------- */

static int ensure_recv(struct node *n, uint32_t q)
{
    if (n->ho.recv_cap == q) {
        return RK_OK;
    }
    uint8_t *r = rk_calloc(q ? q : 1, 1);
    if (r == NULL) {
        return RK_ENOMEM;
    }
    rk_free(n->ho.recv);
    n->ho.recv = r;
    n->ho.recv_cap = q;
    return RK_OK;
}

static struct node__xfer *xfer_of(struct node *n, uint32_t p)
{
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        if (n->ho.x[i].used && n->ho.x[i].partition == p) {
            return &n->ho.x[i];
        }
    }
    return NULL;
}

/* How far transfer x is, in per mille, estimated from its sources' fold
 * cursors: a source's cursor of a slot-index fold (tag 0) names the slot
 * it reached (docs/storage-format.md, "Slot index": bits 32..47), and the
 * keys are spread evenly over the partition's slots (a hash), so the slots
 * behind it are the share done.  The transfer is as far as its slowest
 * source that is neither done nor skipped.  *known is false when a source
 * folds without the slot index (an engine_scan cursor says nothing). */
static uint32_t xfer_permille(const struct node *n,
                              const struct node__xfer *x,
                              bool *known)
{
    uint32_t first = 0, last = 0, pm = 1000;
    ring_slot_range(membership_ring(n->mem), x->partition, &first, &last);
    *known = true;
    for (size_t j = 0; j < x->n_src; j++) {
        const struct node__xfer_src *s = &x->src[j];
        uint32_t p = 0;
        if (s->done || s->skipped || s->mode == NODE_XSRC_VERIFY) {
            continue; /* a verify is quick once the folds are done */
        }
        if (s->cursor_len == 16 && rk_get_le64(s->cursor) != 0) {
            *known = false; /* not a slot fold */
        } else if (s->cursor_len == 16) {
            uint64_t pos = rk_get_le64(s->cursor + 8);
            uint32_t slot = (uint32_t)((pos >> 32) & 0xffff);
            if (pos != 0 && slot >= first && slot <= last && last >= first) {
                p = (uint32_t)((uint64_t)(slot - first) * 1000 /
                               (last - first + 1));
            }
        }
        pm = p < pm ? p : pm;
    }
    return pm;
}

static void xfer_start(struct node *n,
                       struct node__xfer *x,
                       uint32_t p,
                       uint64_t now)
{
    memset(x, 0, sizeof(*x));
    x->used = true;
    x->partition = p;
    x->started_ms = now;
    const char *ids[RING_MAX_N];
    size_t cnt = ring_preflist_ids(membership_ring(n->mem), p, ids);
    for (size_t i = 0; i < cnt; i++) {
        if (strcmp(ids[i], n->id) != 0) {
            snprintf(x->src[x->n_src++].id, CL_ID_MAX + 1, "%s", ids[i]);
        } else {
            x->self_src = true;
        }
    }
    node__log(n, RK_LOG_INFO, "handoff_start",
              "partition=%" PRIu32 " sources=%zu epoch=%" PRIu32, p, x->n_src,
              membership_epoch(n->mem));
    node__ckpt_resume(n, x);
    node__verify_init(n, x);
    bool known = false;
    x->start_pm = xfer_permille(n, x, &known);
}

static void xfer_send(struct node *n,
                      struct node__xfer *x,
                      struct node__xfer_src *s,
                      uint64_t now)
{
    s->req_id = ++n->ho.next_req;
    s->sent_ms = now;
    struct peer_msg m = {.type = PEER_FOLD};
    m.fold.req_id = s->req_id;
    m.fold.partition = x->partition;
    m.fold.epoch = membership_epoch(n->mem);
    m.fold.cursor = (struct peer_bytes){(const char *)s->cursor, s->cursor_len};
    m.fold.max_bytes = NODE_HANDOFF_BATCH;
    node__send(n, s->id, NULL, 0, 0, &m);
}

/* Whether the receive rate limit lets this node ask for another batch
 * now (node_settings.handoff_max_kbps; refills the bucket). */
bool node__handoff_budget_ok(struct node *n, uint64_t now)
{
    uint64_t bps = (uint64_t)n->set.handoff_max_kbps * 1024;
    if (bps == 0) {
        return true;
    }
    int64_t cap = (int64_t)bps; /* one second's worth; a batch may take the
                                   bucket below zero, then it refills */
    if (n->ho.tokens_ms == 0 || now < n->ho.tokens_ms) {
        n->ho.tokens = cap;
    } else {
        uint64_t add = (now - n->ho.tokens_ms) * bps / 1000;
        n->ho.tokens = add >= (uint64_t)cap || n->ho.tokens + (int64_t)add > cap
                           ? cap
                           : n->ho.tokens + (int64_t)add;
    }
    n->ho.tokens_ms = now;
    if (n->ho.tokens > 0) {
        return true;
    }
    n->st.handoff_throttled++;
    return false;
}

/* The entry of a source that answered RK_EAGAIN, or NULL. */
static struct node__eagain *eagain_of(struct node *n, const char *id)
{
    for (size_t i = 0; i < NODE_HANDOFF_EAGAIN_SLOTS; i++) {
        if (strcmp(n->ho.eagain[i].id, id) == 0 && id[0]) {
            return &n->ho.eagain[i];
        }
    }
    return NULL;
}

static void note_eagain(struct node *n, const char *id, uint64_t now)
{
    if (eagain_of(n, id) != NULL) {
        return;
    }
    for (size_t i = 0; i < NODE_HANDOFF_EAGAIN_SLOTS; i++) {
        if (n->ho.eagain[i].id[0] == '\0') {
            snprintf(n->ho.eagain[i].id, CL_ID_MAX + 1, "%s", id);
            n->ho.eagain[i].since_ms = now;
            return;
        }
    }
}

static void forget_eagain(struct node *n, const char *id)
{
    struct node__eagain *e = eagain_of(n, id);
    if (e != NULL) {
        e->id[0] = '\0';
    }
}

/* Whether source id has answered "no transition here" for
 * NODE_HANDOFF_EAGAIN_MS: a node that never learns the transition (it
 * adopted a concurrent state that removed it and was wiped; sim seed 207
 * of --spares 2) is skipped like a down source, in every transfer of
 * this transition, so that the transition can finish. */
static bool eagain_for_long(struct node *n, const char *id, uint64_t now)
{
    const struct node__eagain *e = eagain_of(n, id);
    return e != NULL && now - e->since_ms >= NODE_HANDOFF_EAGAIN_MS;
}

static void skip_unaware(struct node *n,
                         struct node__xfer *x,
                         struct node__xfer_src *s)
{
    s->done = s->skipped = true;
    s->req_id = 0;
    struct node__eagain *e = eagain_of(n, s->id);
    if (e == NULL || e->logged_part == x->partition + 1) {
        return; /* logged already for this partition */
    }
    e->logged_part = x->partition + 1;
    node__log(n, RK_LOG_WARN, "handoff_source_skipped",
              "partition=%" PRIu32
              " source=%s reason=\"it has not known "
              "the transition for %u s\"",
              x->partition, s->id, NODE_HANDOFF_EAGAIN_MS / 1000);
}

/* Source s of x failed (event, error): asked again after the retry
 * delay, from the same cursor. */
static void src_retry(struct node *n,
                      struct node__xfer *x,
                      struct node__xfer_src *s,
                      uint64_t now,
                      const char *event,
                      const char *why)
{
    s->req_id = 0; /* a late answer to the failed FOLD is ignored */
    s->retries++;
    s->retry_ms = now + NODE_HANDOFF_RETRY_MS;
    n->st.handoff_retries++;
    node__log(n, RK_LOG_WARN, event,
              "partition=%" PRIu32 " source=%s retries=%" PRIu32
              " reason=\"%s\"",
              x->partition, s->id, s->retries, why);
}

/* Advances one transfer; frees its slot when it finished. */
static void xfer_step(struct node *n, struct node__xfer *x, uint64_t now)
{
    bool all_done = true;
    for (size_t i = 0; i < x->n_src; i++) {
        struct node__xfer_src *s = &x->src[i];
        if (s->done) {
            continue;
        }
        all_done = false;
        if (s->mode == NODE_XSRC_VERIFY) {
            continue; /* node__verify_step */
        }
        if (s->req_id != 0 && !node_peer_is_up(n, s->id)) {
            /* It went down (or was down before this node's detector knew,
             * a new node's case: a replace of a dead node) with a FOLD in
             * flight: skipped as a source down at its turn is, instead of
             * waiting NODE_HANDOFF_TIMEOUT_MS for an answer that will not
             * come; what it sent is merged already. */
            s->req_id = 0;
            s->done = s->skipped = true;
            continue;
        }
        if (s->req_id != 0 && now >= s->sent_ms + NODE_HANDOFF_TIMEOUT_MS) {
            src_retry(n, x, s, now, "handoff_stalled",
                      "no answer in time; asking again");
        }
        if (s->req_id != 0 || now < s->retry_ms) {
            continue;
        }
        if (!node_peer_is_up(n, s->id)) {
            s->done = s->skipped = true;
            continue;
        }
        if (eagain_for_long(n, s->id, now)) {
            skip_unaware(n, x, s);
            continue;
        }
        if (!node__handoff_budget_ok(n, now)) {
            continue; /* the next round asks */
        }
        xfer_send(n, x, s, now);
    }
    if (!all_done) {
        node__verify_step(n, x, now);
        return;
    }
    /* An acknowledged write is on W of the N current replicas: any
     * N - W + 1 of them hold it, so that many must have folded to the
     * end (this node's own copy counts when it is one of them); fewer
     * (every other one down or skipped: sim seed 748 of --spares 2, an
     * isolated pending owner took a partition from the one replica that
     * had missed three acknowledged appends) and the skipped ones are
     * asked again. */
    size_t real = x->self_src ? 1 : 0;
    for (size_t i = 0; i < x->n_src; i++) {
        real += x->src[i].done && !x->src[i].skipped;
    }
    size_t total = x->n_src + (x->self_src ? 1 : 0);
    size_t w = n->eff.w ? n->eff.w : 1;
    size_t need = total >= w ? total - w + 1 : 1;
    if (real < need) {
        for (size_t i = 0; i < x->n_src; i++) {
            if (x->src[i].skipped) {
                x->src[i].done = x->src[i].skipped = false;
                x->src[i].retry_ms = now + NODE_HANDOFF_RETRY_MS;
            }
        }
        return;
    }
    if (node__engine_failed(n->data) ||
        engine_acked_seq(n->data) < x->last_seq) {
        return; /* not durable yet (a failed engine never is: the
                   partition stays pending, and the node is degraded) */
    }
    n->ho.recv[x->partition] = 1;
    n->st.handoff_transfers_done++;
    size_t skipped = 0;
    for (size_t i = 0; i < x->n_src; i++) {
        skipped += x->src[i].skipped;
    }
    node__log(n, RK_LOG_INFO, "handoff_done",
              "partition=%" PRIu32 " keys=%" PRIu64 " bytes=%" PRIu64
              " ms=%" PRIu64 " sources=%zu skipped=%zu",
              x->partition, x->keys, x->bytes, now - x->started_ms, x->n_src,
              skipped);
    x->used = false;
}

int node__handoff_merge(struct node *n,
                        struct node__xfer *x,
                        const struct peer_fold_reply *r,
                        uint32_t *got_out)
{
    const unsigned char *p = (const unsigned char *)r->items.ptr;
    size_t left = r->items.len;
    uint32_t got = 0;
    int bad = RK_OK;
    while (left > 0 && bad == RK_OK) {
        if (left < 4 || rk_get_le32(p) > left - 4 ||
            rk_get_le32(p) > PEER_MAX_KEY) {
            bad = RK_EPROTO;
            break;
        }
        uint32_t kl = rk_get_le32(p);
        const char *key = (const char *)p + 4;
        size_t rest = left - 4 - kl;
        const unsigned char *op = p + 4 + kl;
        if (rest < 4 || rk_get_le32(op) > rest - 4) {
            bad = RK_EPROTO;
            break;
        }
        uint32_t ol = rk_get_le32(op);
        if (kl == 0 || ring_partition_of_key(membership_ring(n->mem), key,
                                             kl) != x->partition) {
            bad = RK_EPROTO; /* not of this partition: refuse the batch */
            break;
        }
        struct peer_kv_put put = {
            .key = {key, kl},
            .object = {(const char *)op + 4, ol},
        };
        struct peer_msg rep;
        bool changed = false;
        uint64_t seq = 0;
        replica_handle_put(n->data, &n->rcfg, &put, &rep, &changed, &seq);
        if (rep.kv_put_reply.status != RK_OK) {
            bad = rep.kv_put_reply.status;
            break;
        }
        node__note_write(n, seq);
        if (seq > x->last_seq) {
            x->last_seq = seq;
        }
        if (!changed && n->last_seq > x->last_seq) {
            x->last_seq = n->last_seq; /* what this node already wrote */
        }
        x->keys++;
        x->bytes += kl + ol;
        got++;
        p = op + 4 + ol;
        left = rest - 4 - ol;
    }
    if (bad == RK_OK && got != r->count) {
        bad = RK_EPROTO;
    }
    *got_out = got;
    if (bad == RK_OK) {
        n->st.handoff_keys_in += got;
        n->st.handoff_bytes_in += r->items.len;
        n->ho.tokens -= (int64_t)r->items.len;
    }
    return bad;
}

static void pump(struct node *n, uint64_t now);

void node__handoff_pump(struct node *n, uint64_t now_ms)
{
    pump(n, now_ms);
}

void node__handoff_on_reply(struct node *n,
                            const char *from,
                            const struct peer_fold_reply *r,
                            uint64_t now_ms)
{
    if (node__verify_on_fetch_reply(n, from, r, now_ms)) {
        return;
    }
    struct node__xfer *x = NULL;
    struct node__xfer_src *s = NULL;
    for (size_t i = 0; i < NODE_HANDOFF_XFERS && s == NULL; i++) {
        struct node__xfer *c = &n->ho.x[i];
        for (size_t j = 0; c->used && j < c->n_src; j++) {
            if (c->src[j].req_id == r->req_id && r->req_id != 0 &&
                strcmp(c->src[j].id, from) == 0) {
                x = c;
                s = &c->src[j];
                break;
            }
        }
    }
    if (s == NULL) {
        return; /* late, or not ours */
    }
    s->req_id = 0;
    if (r->status == RK_EAGAIN) {
        /* the source does not know the transition yet (gossip); one that
         * never learns it (it left the cluster on a concurrent state and
         * was wiped: sim seed 207 of --spares 2) is skipped after a while,
         * like a down source, so that the transition can finish */
        s->retry_ms = now_ms + NODE_HANDOFF_ROUND_MS;
        note_eagain(n, from, now_ms);
        if (eagain_for_long(n, s->id, now_ms)) {
            skip_unaware(n, x, s);
            pump(n, now_ms);
        }
        return;
    }
    forget_eagain(n, from);
    if (r->status != RK_OK) {
        src_retry(n, x, s, now_ms, "handoff_retry", rk_errname(r->status));
        return;
    }
    uint32_t got = 0;
    int bad = node__handoff_merge(n, x, r, &got);
    if (bad != RK_OK) {
        char why[96];
        snprintf(why, sizeof(why), "%s after %" PRIu32 " of %" PRIu32 " items",
                 rk_errname(bad), got, r->count);
        /* the merged ones are merged; the batch is asked again */
        src_retry(n, x, s, now_ms, "handoff_batch_refused", why);
        return;
    }
    memcpy(s->cursor, r->cursor.ptr, r->cursor.len);
    s->cursor_len = r->cursor.len;
    if (r->flags & PEER_FOLD_DONE) {
        s->done = true;
        node__ckpt_note(x, s);
        pump(n, now_ms);
        return;
    }
    node__ckpt_note(x, s);
    if (node__handoff_budget_ok(n, now_ms)) {
        xfer_send(n, x, s, now_ms); /* the next batch at once */
    } /* else the next round asks, once the rate limit allows */
}

/* Marks the partitions received here that the state does not show yet
 * (one version for all), and forgets those no longer pending here. */
static void mark_received(struct node *n, uint64_t now)
{
    const struct ring *nx = membership_next_ring(n->mem);
    uint32_t q = ring_size(nx);
    uint32_t *parts = rk_malloc(q * sizeof(*parts));
    if (parts == NULL) {
        return;
    }
    size_t cnt = 0;
    for (uint32_t p = 0; p < q; p++) {
        bool got = false;
        if (!membership_pending_for(n->mem, p, n->id, &got)) {
            n->ho.recv[p] = 0;
        } else if (n->ho.recv[p] && !got) {
            parts[cnt++] = p;
        }
    }
    if (cnt > 0) {
        int rc = membership_mark_received(n->mem, parts, cnt, now, &n->acts);
        if (rc != RK_OK) {
            node__log(n, RK_LOG_WARN, "handoff_mark_failed",
                      "partitions=%zu error=%s reason=\"%s\"", cnt,
                      rk_errname(rc), membership_errmsg(n->mem));
        }
    }
    rk_free(parts);
}

struct drop_ctx
{
    const struct ring *ring; /* NULL: this node owns nothing (removed) */
    const uint8_t *owned;    /* per partition: a current replica here */
    struct rk_buf *keys;
    bool oom;
};

static bool drop_key_cb(void *data,
                        const void *key,
                        size_t klen,
                        const struct engine_meta *meta)
{
    (void)meta;
    struct drop_ctx *c = data;
    if (c->ring && c->owned[ring_partition_of_key(c->ring, key, klen)]) {
        return true;
    }
    unsigned char l[4];
    rk_put_le32(l, (uint32_t)klen);
    if (rk_buf_append(c->keys, l, 4) != RK_OK ||
        rk_buf_append(c->keys, key, klen) != RK_OK) {
        c->oom = true;
        return false;
    }
    return true;
}

/* Schedules and runs the drop scan (see the header). */
static void drop_round(struct node *n, uint64_t now, bool in_transition)
{
    enum membership_phase ph = membership_phase(n->mem);
    if (ph != MEMBERSHIP_MEMBER && ph != MEMBERSHIP_REMOVED_SELF) {
        n->ho.drop_due_ms = 0; /* not in a cluster: nothing is anyone's */
        n->ho.dropping = false;
        return;
    }
    uint64_t grace = n->set.handoff_drop_grace_ms;
    bool removed = ph == MEMBERSHIP_REMOVED_SELF;
    if ((n->ho.had_next && !in_transition) ||
        (removed && !n->ho.removed_seen) || n->ho.instance == 0) {
        n->ho.drop_due_ms = now + grace;
        n->ho.dropping = false;
    }
    n->ho.had_next = in_transition;
    n->ho.removed_seen = removed;
    if (in_transition || n->ho.drop_due_ms == 0 || now < n->ho.drop_due_ms ||
        node__engine_failed(n->data)) {
        return;
    }
    if (!n->ho.dropping) {
        n->ho.dropping = true;
        n->ho.drop_cursor = 0;
        n->ho.drop_scan_keys = 0;
    }
    rk_buf_clear(&n->ho.drop);
    /* which partitions this node replicates: once per batch, not per key */
    const struct ring *r = removed ? NULL : membership_ring(n->mem);
    uint8_t owned[RING_MAX_SIZE];
    for (uint32_t p = 0; r && p < ring_size(r); p++) {
        owned[p] = node__is_current_replica(n, p);
    }
    struct drop_ctx c = {.ring = r, .owned = owned, .keys = &n->ho.drop};
    uint64_t next = 0;
    if (engine_scan(n->data, n->ho.drop_cursor, 1024, drop_key_cb, &c, &next) !=
            RK_OK ||
        c.oom) {
        return; /* tried again next round */
    }
    const unsigned char *kp = (const unsigned char *)n->ho.drop.base;
    size_t left = n->ho.drop.len;
    uint64_t dropped = 0;
    while (left >= 4) {
        uint32_t kl = rk_get_le32(kp);
        uint64_t seq = 0;
        uint64_t old = node__aae_record_hash(n, kp + 4, kl);
        if (engine_delete(n->data, kp + 4, kl, rk_env_wall_ms(n->env), &seq) ==
            RK_OK) {
            node__aae_deleted(n, kp + 4, kl, old);
            dropped++;
            node__note_write(n, seq);
        }
        kp += 4 + kl;
        left -= 4 + kl;
    }
    n->st.handoff_keys_dropped += dropped;
    n->ho.drop_scan_keys += dropped;
    n->ho.drop_cursor = next;
    if (next == 0) {
        n->ho.dropping = false;
        n->ho.drop_due_ms = 0;
        if (n->ho.drop_scan_keys > 0) {
            node__log(n, RK_LOG_INFO, "handoff_dropped",
                      "keys=%" PRIu64
                      " reason=\"partitions this node no "
                      "longer replicates\"",
                      n->ho.drop_scan_keys);
        }
    }
}

/* Steps every transfer and starts new ones in free slots (after each
 * answer too, so a partition with little data does not wait for the next
 * round). */
static void pump(struct node *n, uint64_t now)
{
    const struct ring *nx = membership_next_ring(n->mem);
    if (nx == NULL || n->ho.recv == NULL ||
        membership_phase(n->mem) != MEMBERSHIP_MEMBER) {
        return;
    }
    uint32_t q = ring_size(nx);
    /* transfers of partitions no longer pending here end */
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        struct node__xfer *x = &n->ho.x[i];
        if (x->used &&
            !membership_pending_for(n->mem, x->partition, n->id, NULL)) {
            x->used = false;
        }
    }
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        if (n->ho.x[i].used) {
            xfer_step(n, &n->ho.x[i], now);
        }
    }
    size_t limit = n->set.handoff_concurrency ? n->set.handoff_concurrency : 2;
    limit = limit > NODE_HANDOFF_XFERS ? NODE_HANDOFF_XFERS : limit;
    size_t active = 0;
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        active += n->ho.x[i].used;
    }
    for (uint32_t p = 0; p < q && active < limit; p++) {
        bool got = false;
        if (n->ho.recv[p] || xfer_of(n, p) ||
            !membership_pending_for(n->mem, p, n->id, &got) || got) {
            continue;
        }
        struct node__xfer *free_x = NULL;
        for (size_t i = 0; i < NODE_HANDOFF_XFERS && !free_x; i++) {
            free_x = n->ho.x[i].used ? NULL : &n->ho.x[i];
        }
        if (free_x == NULL) {
            break;
        }
        xfer_start(n, free_x, p, now);
        xfer_step(n, free_x, now);
        active++;
    }
}

void node__handoff_round(struct node *n, uint64_t now)
{
    const struct ring *nx = membership_next_ring(n->mem);
    drop_round(n, now, nx != NULL);
    if (n->ho.instance == 0) {
        n->ho.instance = rk_env_rand64(n->env) | 1;
    }
    if (nx == NULL || membership_phase(n->mem) != MEMBERSHIP_MEMBER) {
        for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
            n->ho.x[i].used = false;
        }
        if (n->ho.recv) {
            memset(n->ho.recv, 0, n->ho.recv_cap);
        }
        memset(n->ho.eagain, 0, sizeof(n->ho.eagain));
        node__ckpt_round(n, now); /* an empty checkpoint: none runs */
        return;
    }
    if (now < n->ho.next_round_ms) {
        return;
    }
    n->ho.next_round_ms = now + NODE_HANDOFF_ROUND_MS;
    if (ensure_recv(n, ring_size(nx)) != RK_OK) {
        return;
    }
    pump(n, now);
    node__ckpt_round(n, now);
    mark_received(n, now);
    node__run_cl_actions(n);
}

size_t node_transfers(const struct node *n,
                      uint64_t now_ms,
                      struct node_transfer *out,
                      size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        const struct node__xfer *x = &n->ho.x[i];
        if (!x->used) {
            continue;
        }
        if (k < cap) {
            struct node_transfer *t = &out[k];
            memset(t, 0, sizeof(*t));
            t->partition = x->partition;
            t->keys = x->keys;
            t->bytes = x->bytes;
            t->elapsed_ms = now_ms > x->started_ms ? now_ms - x->started_ms : 0;
            t->bytes_per_s =
                t->elapsed_ms ? x->bytes * 1000 / t->elapsed_ms : 0;
            bool known = false;
            uint32_t pm = xfer_permille(n, x, &known);
            t->permille = known ? pm : 0;
            t->eta_s = -1;
            if (known && pm > x->start_pm && t->elapsed_ms >= 100) {
                /* at the rate since the start (or the resume) */
                t->eta_s = (int64_t)(t->elapsed_ms * (1000 - pm) /
                                     (pm - x->start_pm) / 1000);
            }
            t->n_src = x->n_src;
            for (size_t j = 0; j < x->n_src && j < RING_MAX_N; j++) {
                const struct node__xfer_src *s = &x->src[j];
                memcpy(t->src[j].id, s->id, sizeof(t->src[j].id));
                t->src[j].state = s->skipped ? "skipped"
                                  : s->done  ? "done"
                                  : s->mode == NODE_XSRC_VERIFY
                                      ? node__verify_src_state(x, j)
                                  : s->req_id ? "folding"
                                              : "waiting";
                t->src[j].retries = s->retries;
            }
        }
        k++;
    }
    return k;
}

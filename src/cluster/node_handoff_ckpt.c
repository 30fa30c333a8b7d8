/*
 * node_handoff_ckpt.c - the receiver's checkpoint of partition handoff
 * (issue 14 item 2: "a transfer interrupted by kill -9 of either side
 * continues from a checkpoint, not from zero").
 *
 * A pending owner pulls a partition from each current replica with FOLD
 * requests; each answer carries the sender's next cursor (node_handoff.c).
 * After a batch is merged, the source's cursor becomes a *candidate*,
 * tagged with the data engine sequence of the last merge; once the data
 * engine has that sequence durable (engine_acked_seq), the candidate is
 * the source's *durable* cursor: everything before it is on disk here.
 * Every 100 ms, when the durable cursors changed, the node asks
 * its driver to save them (NODE_PERSIST, NODE_FILE_HANDOFF; ringkvd
 * writes handoff.ckpt in the data dir atomically).  A restarted node gets
 * the saved bytes back (node_config.saved_handoff) and a transfer of the
 * same transition (epoch) and partition starts each source from its
 * durable cursor, so only the batches after it are sent again.  The
 * sender's cursor is a position in its slot index, valid across restarts
 * of the sender too; an engine without one (memory) starts over, as a
 * cursor of another run is not honoured there.
 *
 * Encoding (little-endian): "RKHO", u8 version 1, u32 epoch, u32 count,
 * then per transfer: u32 partition, u64 keys, u64 bytes, u8 sources, and
 * per source: u8 id length, id, u8 done, u8 cursor length, cursor.  A
 * checkpoint that does not decode is ignored (the transfers start over).
 * An empty file: no transfer in progress.
 *
 * Thread: the node's (sans-IO, as node.c).
 */
#include <inttypes.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/node_internal.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "common/rd.h"
#include "storage/engine.h"

#define CKPT_MAGIC    "RKHO"
#define CKPT_VERSION  1
#define CKPT_EVERY_MS 100

void node__ckpt_note(struct node__xfer *x, struct node__xfer_src *s)
{
    memcpy(s->ccur, s->cursor, s->cursor_len);
    s->ccur_len = s->cursor_len;
    s->cdone = s->done && !s->skipped;
    s->cseq = x->last_seq;
    s->has_cand = true;
}

static int put_u8(struct rk_buf *b, uint8_t v)
{
    return rk_buf_append(b, &v, 1);
}

static int put_u32(struct rk_buf *b, uint32_t v)
{
    unsigned char p[4];
    rk_put_le32(p, v);
    return rk_buf_append(b, p, 4);
}

static int put_u64(struct rk_buf *b, uint64_t v)
{
    unsigned char p[8];
    rk_put_le64(p, v);
    return rk_buf_append(b, p, 8);
}

/* The checkpoint of every active transfer's durable cursors into out. */
static int encode(struct node *n, struct rk_buf *out)
{
    rk_buf_clear(out);
    uint32_t cnt = 0;
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        cnt += n->ho.x[i].used;
    }
    if (cnt == 0) {
        return RK_OK; /* empty: nothing in progress */
    }
    bool ok = rk_buf_append(out, CKPT_MAGIC, 4) == RK_OK;
    ok = ok && put_u8(out, CKPT_VERSION) == RK_OK;
    ok = ok && put_u32(out, membership_epoch(n->mem)) == RK_OK;
    ok = ok && put_u32(out, cnt) == RK_OK;
    for (size_t i = 0; ok && i < NODE_HANDOFF_XFERS; i++) {
        const struct node__xfer *x = &n->ho.x[i];
        if (!x->used) {
            continue;
        }
        ok = put_u32(out, x->partition) == RK_OK &&
             put_u64(out, x->dkeys) == RK_OK &&
             put_u64(out, x->dbytes) == RK_OK &&
             put_u8(out, (uint8_t)x->n_src) == RK_OK;
        for (size_t j = 0; ok && j < x->n_src; j++) {
            const struct node__xfer_src *s = &x->src[j];
            size_t il = strlen(s->id);
            ok = put_u8(out, (uint8_t)il) == RK_OK &&
                 rk_buf_append(out, s->id, il) == RK_OK &&
                 put_u8(out, s->ddone ? 1 : 0) == RK_OK &&
                 put_u8(out, (uint8_t)s->dcur_len) == RK_OK &&
                 rk_buf_append(out, s->dcur, s->dcur_len) == RK_OK;
        }
    }
    return ok ? RK_OK : RK_ENOMEM;
}

void node__ckpt_round(struct node *n, uint64_t now)
{
    uint64_t acked =
        node__engine_failed(n->data) ? 0 : engine_acked_seq(n->data);
    bool active = false;
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        struct node__xfer *x = &n->ho.x[i];
        if (!x->used) {
            continue;
        }
        active = true;
        for (size_t j = 0; j < x->n_src; j++) {
            struct node__xfer_src *s = &x->src[j];
            if (s->has_cand && s->cseq <= acked) {
                memcpy(s->dcur, s->ccur, s->ccur_len);
                s->dcur_len = s->ccur_len;
                s->ddone = s->cdone;
                s->has_cand = false;
                x->dkeys = x->keys;
                x->dbytes = x->bytes;
            }
        }
    }
    if (!active && !n->ho.ckpt_saved) {
        return;
    }
    if (active && now < n->ho.ckpt_ms + CKPT_EVERY_MS) {
        return;
    }
    n->ho.ckpt_ms = now;
    if (encode(n, &n->ho.ckpt) != RK_OK) {
        return;
    }
    uint64_t h = XXH3_64bits(n->ho.ckpt.base, n->ho.ckpt.len);
    if (n->ho.ckpt_saved && h == n->ho.ckpt_hash) {
        return; /* unchanged */
    }
    struct node__offs *o;
    struct node_action *a = node__push(n, NODE_PERSIST, &o);
    if (a == NULL) {
        return;
    }
    a->file = NODE_FILE_HANDOFF;
    o->bytes = node__arena_put(n, n->ho.ckpt.base, n->ho.ckpt.len, false);
    o->bytes_len = n->ho.ckpt.len;
    n->ho.ckpt_hash = h;
    n->ho.ckpt_saved = n->ho.ckpt.len > 0;
}

void node__ckpt_resume(struct node *n, struct node__xfer *x)
{
    const struct rk_buf *sv = &n->ho.saved;
    if (sv->len < 13 || memcmp(sv->base, CKPT_MAGIC, 4) != 0) {
        return;
    }
    struct rk_rd r = {(const unsigned char *)sv->base + 4, sv->len - 4, false};
    if (rk_rd_u8(&r) != CKPT_VERSION ||
        rk_rd_u32(&r) != membership_epoch(n->mem)) {
        return; /* another transition's: start over */
    }
    uint32_t cnt = rk_rd_u32(&r);
    for (uint32_t i = 0; i < cnt && !r.bad; i++) {
        uint32_t part = rk_rd_u32(&r);
        uint64_t keys = rk_rd_u64(&r), bytes = rk_rd_u64(&r);
        uint8_t ns = rk_rd_u8(&r);
        size_t resumed = 0;
        for (uint8_t j = 0; j < ns && !r.bad; j++) {
            uint8_t il = rk_rd_u8(&r);
            const unsigned char *id = rk_rd_take(&r, il);
            uint8_t done = rk_rd_u8(&r);
            uint8_t cl = rk_rd_u8(&r);
            const unsigned char *cur = rk_rd_take(&r, cl);
            if (r.bad || part != x->partition || cl > PEER_FOLD_CURSOR_MAX) {
                continue;
            }
            for (size_t k = 0; k < x->n_src; k++) {
                struct node__xfer_src *s = &x->src[k];
                if (strlen(s->id) != il || memcmp(s->id, id, il) != 0) {
                    continue;
                }
                memcpy(s->cursor, cur, cl);
                s->cursor_len = cl;
                memcpy(s->dcur, cur, cl);
                s->dcur_len = cl;
                s->done = s->ddone = done != 0;
                resumed++;
            }
        }
        if (!r.bad && part == x->partition && resumed > 0) {
            x->keys = x->dkeys = keys;
            x->bytes = x->dbytes = bytes;
            n->st.handoff_resumed++;
            node__log(n, RK_LOG_INFO, "handoff_resume",
                      "partition=%" PRIu32 " sources=%zu keys=%" PRIu64
                      " bytes=%" PRIu64,
                      x->partition, resumed, keys, bytes);
            return;
        }
    }
}

int node__ckpt_load(struct node *n, const void *saved, size_t len)
{
    rk_buf_clear(&n->ho.saved);
    if (saved == NULL || len == 0) {
        return RK_OK;
    }
    n->ho.ckpt_saved = true; /* cleared (an empty file) once done */
    return rk_buf_append(&n->ho.saved, saved, len);
}

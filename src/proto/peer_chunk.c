/*
 * peer_chunk.c - large frames as CHUNK pieces, and their reassembly; see
 * peer_chunk.h and docs/peer-protocol.md section 5.14.
 *
 * Invariants:
 *  1. q->bytes == sum over items of (len - off); an item with off == len
 *     is removed at once, so every queued item has bytes left.
 *  2. r->buf == NULL iff r->total == 0; then r->have == 0.
 */
#include "proto/peer_chunk.h"

#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

struct peer_chunkq_item
{
    struct peer_chunkq_item *next;
    size_t len; /* bytes of the frame */
    size_t off; /* bytes already taken out */
    char data[];
};

void peer_chunkq_init(struct peer_chunkq *q)
{
    memset(q, 0, sizeof(*q));
}

void peer_chunkq_fini(struct peer_chunkq *q)
{
    struct peer_chunkq_item *it = q->head;
    while (it) {
        struct peer_chunkq_item *next = it->next;
        rk_free(it);
        it = next;
    }
    peer_chunkq_init(q);
}

int peer_chunkq_push(struct peer_chunkq *q, const void *frame, size_t len)
{
    if (frame == NULL || len <= PEER_HEADER_SIZE || len > UINT32_MAX) {
        return RK_EINVAL;
    }
    struct peer_chunkq_item *it = rk_malloc(sizeof(*it) + len);
    if (it == NULL) {
        return RK_ENOMEM;
    }
    it->next = NULL;
    it->len = len;
    it->off = 0;
    memcpy(it->data, frame, len);
    if (q->tail) {
        q->tail->next = it;
    } else {
        q->head = it;
    }
    q->tail = it;
    q->bytes += len;
    q->n_items++;
    return RK_OK;
}

/* Removes the head item (done or dropped). */
static void pop_head(struct peer_chunkq *q)
{
    struct peer_chunkq_item *it = q->head;
    q->bytes -= it->len - it->off;
    q->head = it->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    q->n_items--;
    rk_free(it);
}

int peer_chunkq_next(struct peer_chunkq *q, bool chunked, struct rk_buf *out)
{
    struct peer_chunkq_item *it = q->head;
    if (it == NULL) {
        return RK_EAGAIN;
    }
    size_t left = it->len - it->off;
    size_t n = chunked && left > PEER_CHUNK_MAX ? PEER_CHUNK_MAX : left;
    int rc;
    if (chunked) {
        struct peer_msg m = {.type = PEER_CHUNK};
        m.chunk.total = (uint32_t)it->len;
        m.chunk.offset = (uint32_t)it->off;
        m.chunk.data = (struct peer_bytes){it->data + it->off, n};
        rc = peer_encode(&m, out);
    } else {
        rc = rk_buf_append(out, it->data + it->off, n);
    }
    if (rc != RK_OK) {
        return rc;
    }
    it->off += n;
    q->bytes -= n;
    if (it->off == it->len) {
        pop_head(q); /* invariant 1 */
    }
    return RK_OK;
}

bool peer_chunkq_drop_started(struct peer_chunkq *q)
{
    if (q->head == NULL || q->head->off == 0) {
        return false;
    }
    pop_head(q);
    return true;
}

void peer_chunkq_move(struct peer_chunkq *dst, struct peer_chunkq *src)
{
    if (src->head == NULL) {
        return;
    }
    if (dst->tail) {
        dst->tail->next = src->head;
    } else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    dst->bytes += src->bytes;
    dst->n_items += src->n_items;
    peer_chunkq_init(src);
}

void peer_reasm_init(struct peer_reasm *r)
{
    memset(r, 0, sizeof(*r));
}

void peer_reasm_fini(struct peer_reasm *r)
{
    rk_free(r->buf);
    peer_reasm_init(r);
}

int peer_reasm_feed(struct peer_reasm *r,
                    const struct peer_chunk *c,
                    size_t max_frame,
                    bool *done)
{
    if (c->offset != r->have || c->data.len == 0 ||
        (r->total != 0 && c->total != r->total) ||
        c->total <= PEER_HEADER_SIZE || c->total > max_frame ||
        c->data.len > c->total - c->offset) {
        return RK_EPROTO;
    }
    if (r->buf == NULL) {
        r->buf = rk_malloc(c->total);
        if (r->buf == NULL) {
            return RK_ENOMEM;
        }
        r->total = c->total;
    }
    memcpy(r->buf + r->have, c->data.ptr, c->data.len);
    r->have += (uint32_t)c->data.len;
    *done = r->have == r->total;
    return RK_OK;
}

struct peer_bytes peer_reasm_frame(const struct peer_reasm *r)
{
    return (struct peer_bytes){r->buf, r->have};
}

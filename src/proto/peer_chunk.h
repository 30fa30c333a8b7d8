/*
 * peer_chunk.h - sans-IO splitting of large peer frames into CHUNK frames
 * and their reassembly (docs/peer-protocol.md section 5.14, protocol
 * version 2; issue 12 item 4).
 *
 * A frame of more than PEER_CHUNK_THRESHOLD bytes would hold a connection
 * for as long as it takes to write it, and the receiver's loop for as long
 * as it takes to buffer it: a 100 MiB value kept SWIM probes and small
 * replies waiting for seconds.  The sender therefore queues such frames
 * in a peer_chunkq and takes them out one piece (a CHUNK frame of at most
 * PEER_CHUNK_MAX bytes of the frame) at a time, whenever the connection's
 * output runs low; small frames go straight to the connection, between
 * the pieces.  The receiver gathers the pieces in a peer_reasm and decodes
 * the whole frame once its last piece arrived.
 *
 *   sender:   peer_chunkq_push(frame) ... peer_chunkq_next() -> CHUNK,
 *             CHUNK, ... (or the whole frame for a version-1 peer)
 *   receiver: peer_reasm_feed(chunk) ... -> done: peer_reasm_frame()
 *
 * No sockets, clocks or threads (STYLE.md 1.6).  Thread: one, the owner's.
 */
#ifndef RINGKV_PROTO_PEER_CHUNK_H
#define RINGKV_PROTO_PEER_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "proto/peer.h"

struct peer_chunkq_item; /* private */

/* Large frames waiting to be sent to one peer, oldest first. */
struct peer_chunkq
{
    struct peer_chunkq_item *head, *tail;
    size_t bytes;   /* frame bytes not yet taken out, all items */
    size_t n_items; /* frames queued */
};

/* Initialises an empty queue (caller-provided storage). */
void peer_chunkq_init(struct peer_chunkq *q);

/* Frees every queued frame.  The queue is empty and usable afterwards. */
void peer_chunkq_fini(struct peer_chunkq *q);

/*
 * Queues a copy of one whole encoded frame (`len` bytes, header included,
 * PEER_HEADER_SIZE < len <= UINT32_MAX).  Returns RK_OK, RK_EINVAL (bad
 * length) or RK_ENOMEM (queue unchanged).  Ownership: `frame` borrowed.
 * Complexity: O(len) (one copy).
 */
int peer_chunkq_push(struct peer_chunkq *q, const void *frame, size_t len);

/*
 * Appends the next piece of the oldest frame to `out`: with `chunked`, a
 * CHUNK frame carrying its next min(PEER_CHUNK_MAX, left) bytes (the
 * frame is done after its last piece); without (a version-1 peer), the
 * rest of the frame as it is.  Returns RK_OK, RK_EAGAIN (queue empty,
 * `out` unchanged) or RK_ENOMEM (`out` and the queue unchanged).
 * Complexity: O(piece).
 */
int peer_chunkq_next(struct peer_chunkq *q, bool chunked, struct rk_buf *out);

/*
 * The connection carrying the oldest frame broke: if part of it was taken
 * out already, drops it (the receiver cannot complete it on another
 * connection); frames not started stay queued.  Returns true when a frame
 * was dropped.
 */
bool peer_chunkq_drop_started(struct peer_chunkq *q);

/* Appends all of `src`'s frames to `dst`, leaving `src` empty. */
void peer_chunkq_move(struct peer_chunkq *dst, struct peer_chunkq *src);

/* The reassembly of one chunked frame on one connection. */
struct peer_reasm
{
    char *buf;      /* rk_malloc'ed, `total` bytes; NULL when idle */
    uint32_t total; /* bytes of the frame being gathered */
    uint32_t have;  /* bytes gathered so far */
};

/* Initialises an idle reassembler (caller-provided storage). */
void peer_reasm_init(struct peer_reasm *r);

/* Frees its buffer; idle again afterwards. */
void peer_reasm_fini(struct peer_reasm *r);

/*
 * Adds one CHUNK (a decoded message, its data a view) to the frame being
 * gathered.  `max_frame` bounds `total` (bytes, the body limit plus
 * PEER_HEADER_SIZE).  Returns RK_OK with *done true when the frame is
 * complete (read it with peer_reasm_frame, then peer_reasm_fini), RK_OK
 * with *done false when more pieces are needed, RK_EPROTO when the piece
 * does not continue the frame (offset not where the last piece ended, a
 * first piece with offset != 0, a different total, total over
 * max_frame; reassembler unchanged), RK_ENOMEM (unchanged).  The buffer
 * is allocated once, at the first piece, with `total` bytes.
 * Complexity: O(piece).
 */
int peer_reasm_feed(struct peer_reasm *r,
                    const struct peer_chunk *c,
                    size_t max_frame,
                    bool *done);

/* The completed frame: a view of `total` bytes valid until
 * peer_reasm_fini.  Only after a feed that set *done. */
struct peer_bytes peer_reasm_frame(const struct peer_reasm *r);

#endif /* RINGKV_PROTO_PEER_CHUNK_H */
